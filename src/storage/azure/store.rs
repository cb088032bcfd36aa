//! The core operations on Azure Blob Storage ([`ObjectStore`]).

use super::*;
use crate::storage::body::BodySums;
use crate::storage::object::ListQuery;

#[async_trait::async_trait]
impl ObjectStore for AzureStorage {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        Some(self)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        Some(self)
    }

    fn readable_urls(&self) -> Option<&dyn ReadableUrls> {
        Some(self)
    }

    fn refuses_key(&self, key: &str) -> Option<&'static str> {
        naming::refusal(key)
    }

    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        self.list_blob_page(query, token).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.head_blob(key).await
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        let target = self.url_of_key(key);
        let mut headers = Vec::new();
        if let Some((start, len)) = range.filter(|&(_, len)| len > 0) {
            headers.push((
                "x-ms-range".into(),
                format!("bytes={start}-{}", start + len - 1),
            ));
        }
        if let Some(version) = version {
            headers.push(("if-match".into(), version.to_string()));
        }
        let call = Call {
            method: Method::GET,
            url: self.blob_url(key),
            headers,
            payload: Payload::Empty,
            server_side: false,
        };
        let activity = Arc::default();
        let response = self
            .http
            .send_once(self, "cannot read", &target, call, &activity)
            .await?;
        Ok(crate::storage::rest::body_stream(response, target))
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        sums: BodySums,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(key);
        if len > LIMITS.max_single_put {
            return Err(StorageError::Transfer {
                target,
                message: format!("{len} bytes is more than one Put Blob may carry"),
            });
        }
        let mut headers: Vec<(Header, String)> =
            vec![("x-ms-blob-type".into(), "BlockBlob".to_string())];
        headers.extend(self.tier_header(key));
        headers.extend(body_sum_headers(&sums));
        headers.extend(condition_headers(expect));
        let meta_headers = meta_headers(meta, self.metadata_compat);
        let url = self.blob_url(key);
        let response = self
            .http
            .send(self, "cannot upload", &target, || {
                let mut headers = headers.clone();
                headers.extend(meta_headers.iter().cloned());
                Call {
                    method: Method::PUT,
                    url: url.clone(),
                    headers,
                    payload: Payload::Body { source: body, len },
                    server_side: false,
                }
            })
            .await?;
        // The service refuses a body whose checksum differs (Md5Mismatch,
        // Crc64Mismatch); what it says it stored is compared too, where it
        // says (Put Blob need not echo a CRC64).
        if let (Some(sent), Some(stored)) = (sums.md5, md5_header(&response))
            && sent != stored
        {
            return Err(StorageError::Verification {
                target,
                message: "the stored blob's MD5 differs from what was sent".into(),
            });
        }
        check_received_crc64(sums.crc64nvme, &response, &target, false)?;
        etag_of(&response, &target)
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        // Put Block From URL reads any URL the service can reach: this
        // account's blobs, another account's, another store's presigned
        // (S3) or signed (GCS) URLs.
        source.readable_urls().is_some()
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.copy_blob(source, key, meta, expect).await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(key);
        let url = format!("{}?comp=metadata", self.blob_url(key));
        let mut headers: Vec<(Header, String)> = condition_headers(expect);
        headers.extend(meta_headers(meta, self.metadata_compat));
        let response = self
            .http
            .send(self, "cannot set the metadata of", &target, || Call {
                method: Method::PUT,
                url: url.clone(),
                headers: headers.clone(),
                payload: Payload::Empty,
                server_side: false,
            })
            .await?;
        etag_of(&response, &target)
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        futures::stream::iter(keys.iter().cloned())
            .map(|key| async move {
                let target = self.url_of_key(&key);
                let url = self.blob_url(&key);
                let result = self
                    .http
                    .send(self, "cannot delete", &target, || Call {
                        method: Method::DELETE,
                        url: url.clone(),
                        headers: Vec::new(),
                        payload: Payload::Empty,
                        server_side: false,
                    })
                    .await;
                crate::storage::found(result).map(drop)
            })
            .buffer_unordered(PARALLEL_DELETES)
            .try_collect::<()>()
            .await
    }
}

impl AzureStorage {
    pub(super) async fn head_blob(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        let target = self.url_of_key(key);
        let url = self.blob_url(key);
        let result = self
            .http
            .send(self, "cannot head", &target, || Call {
                method: Method::HEAD,
                url: url.clone(),
                headers: Vec::new(),
                payload: Payload::Empty,
                server_side: false,
            })
            .await;
        let Some(response) = crate::storage::found(result)? else {
            return Ok(None);
        };
        let meta = meta_from_pairs(response.headers().iter().filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-ms-meta-")?;
            Some((name, value.to_str().ok()?))
        }));
        Ok(Some(ObjectHead {
            size: header(&response, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            mtime_ns: header(&response, "last-modified").map_or(0, http_date_ns),
            version: header(&response, "etag").map(str::to_string),
            meta,
            sums: ContentSums {
                md5: md5_header(&response),
                ..ContentSums::default()
            },
        }))
    }
}
