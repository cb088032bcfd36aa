//! The core operations on Google Cloud Storage ([`ObjectStore`]).

use super::*;
use crate::storage::body::BodySums;
use crate::storage::object::ListQuery;

#[async_trait::async_trait]
impl ObjectStore for GcsStorage {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        Some(self)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        Some(self)
    }

    fn streams(&self) -> Option<&dyn UploadStreams> {
        self.streams.then_some(self as &dyn UploadStreams)
    }

    fn chunks(&self) -> Option<&dyn KeptChunks> {
        self.chunked.then_some(self as &dyn KeptChunks)
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
        self.list_object_page(query, token).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        Ok(self.head_object(key).await?.as_ref().map(Self::head_of))
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        let target = self.url_of_key(key);
        let mut url = format!("{}?alt=media", self.object_url(key));
        if let Some(version) = version {
            // The generation itself is read: a replaced object is no longer
            // there under it, whether or not a server honours the condition.
            let generation = version.trim_matches('"');
            url.push_str(&format!(
                "&generation={generation}&ifGenerationMatch={generation}"
            ));
        }
        let mut call = Call::new(Method::GET, &url);
        if let Some((start, len)) = range.filter(|&(_, len)| len > 0) {
            call.headers
                .push(("range", format!("bytes={start}-{}", start + len - 1)));
        }
        let activity = Arc::default();
        let response = self
            .http
            .send_once(self, "cannot read", &target, call, &activity)
            .await
            .map_err(|e| match e {
                // Under a pinned generation, "not found" means replaced or
                // deleted since it was listed.
                StorageError::Remote {
                    op,
                    target,
                    kind: RemoteErrorKind::NotFound,
                    message,
                    hints,
                } if version.is_some() => StorageError::Remote {
                    op,
                    target,
                    kind: RemoteErrorKind::PreconditionFailed,
                    message,
                    hints,
                },
                other => other,
            })?;
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
        let object = self
            .upload(key, body, len, self.meta_headers(meta), sums, expect)
            .await?;
        let generation = Self::generation_of(object, &self.url_of_key(key))?;
        self.drop_chunks_after_write(key).await;
        Ok(generation)
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        // Rewrite copies between buckets of the same service.
        self.same_service(source).is_some()
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.rewrite_object(source, key, meta, expect).await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(key);
        // A patch merges keys: every key HugeSync writes is named, those
        // without a value now are removed.
        let mut metadata: HashMap<String, Option<String>> = ObjectMeta::KEYS
            .iter()
            .map(|k| ((*k).to_string(), None))
            .collect();
        metadata.extend(
            self.meta_headers(meta)
                .into_iter()
                .map(|(k, v)| (k, Some(v))),
        );
        let body = serde_json::to_string(&json::MetadataPatch { metadata }).map_err(|e| {
            StorageError::Transfer {
                target: target.clone(),
                message: e.to_string(),
            }
        })?;
        let mut url = format!("{}?projection=noAcl", self.object_url(key));
        if let Some(generation) = generation_condition(expect) {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let object: json::Object = self
            .json("cannot set the metadata of", &target, || Call {
                payload: Payload::Json(&body),
                ..Call::new(Method::PATCH, &url)
            })
            .await?;
        Self::generation_of(object, &target)
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        self.delete_names(keys).await?;
        self.drop_chunks_of(keys).await
    }
}
