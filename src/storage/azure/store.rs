//! The core operations on Azure Blob Storage ([`ObjectStore`]).

use super::*;

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

    async fn list_page(&self, token: Option<String>) -> Result<ListPage, StorageError> {
        let page = self.list_blobs(token.as_deref(), "metadata").await?;
        let objects = page
            .blobs
            .blob
            .into_iter()
            .filter_map(|blob| {
                let rel_key = blob.name.strip_prefix(&self.prefix)?.to_string();
                let meta = blob
                    .metadata
                    .as_ref()
                    .map(|m| meta_from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
                Some(ListedObject {
                    rel_key,
                    size: blob.properties.content_length,
                    mtime_ns: http_date_ns(&blob.properties.last_modified),
                    version: Some(quoted(&blob.properties.etag)),
                    meta: Some(meta.unwrap_or_default()),
                    sums: ContentSums {
                        md5: blob
                            .properties
                            .content_md5
                            .as_deref()
                            .and_then(md5_of_base64),
                        ..ContentSums::default()
                    },
                })
            })
            .collect();
        Ok(ListPage {
            objects,
            next: page.next_marker.filter(|m| !m.is_empty()),
            leftovers: Vec::new(),
        })
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
            .send_once("cannot read", &target, call, &activity)
            .await?;
        Ok(crate::storage::rest::body_stream(response, target))
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
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
        if let Some(md5) = md5 {
            headers.push((
                "content-md5".into(),
                base64::engine::general_purpose::STANDARD.encode(md5),
            ));
        }
        headers.extend(condition_headers(expect));
        let meta_headers = meta_headers(meta);
        let url = self.blob_url(key);
        let response = self
            .send("cannot upload", &target, || {
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
        if let (Some(sent), Some(stored)) = (md5, md5_header(&response))
            && sent != stored
        {
            return Err(StorageError::Verification {
                target,
                message: "the stored blob's MD5 differs from what was sent".into(),
            });
        }
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
        let head = source
            .store
            .head(source.key)
            .await?
            .ok_or_else(|| StorageError::Remote {
                op: "cannot copy",
                target: source.store.url_of(source.key),
                kind: RemoteErrorKind::NotFound,
                message: "the source object is gone".into(),
                hints: source.store.hints(),
            })?;
        let meta = meta.cloned().unwrap_or(head.meta);
        if head.size > LIMITS.max_single_copy {
            return Err(StorageError::Transfer {
                target: self.url_of_key(key),
                message: format!("{} bytes is over one block's 4000 MiB", head.size),
            });
        }
        if head.size == 0 {
            let empty = bytes::Bytes::new();
            return self
                .put(key, BodySource::Memory(&empty), 0, &meta, None, expect)
                .await;
        }
        let upload = self.begin_staged(key, &meta).await?;
        let whole = CopyRange {
            start: 0,
            len: head.size,
            expected_md5: None,
            expected_crc32c: None,
        };
        let part = self.stage_copy(&upload, 1, 0, source, whole).await?;
        self.commit_staged(&upload, &[part], &meta, expect).await
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
        headers.extend(meta_headers(meta));
        let response = self
            .send("cannot set the metadata of", &target, || Call {
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
                    .send("cannot delete", &target, || Call {
                        method: Method::DELETE,
                        url: url.clone(),
                        headers: Vec::new(),
                        payload: Payload::Empty,
                        server_side: false,
                    })
                    .await;
                match result {
                    Ok(_)
                    | Err(StorageError::Remote {
                        kind: RemoteErrorKind::NotFound,
                        ..
                    }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(PARALLEL_DELETES)
            .try_collect::<()>()
            .await
    }
}
