//! The trait impls: each method routes to the file that does its job.

use super::*;
use crate::storage::body::BodySums;
use crate::storage::object::ListQuery;

#[async_trait::async_trait]
impl ObjectStore for S3Storage {
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

    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        self.list_objects(query, token).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.head_object(key).await
    }

    /// The HEAD's checksums, and for a multipart object with neither an MD5
    /// nor a CRC64NVME its ETag with the first part's size (one more HEAD),
    /// so that bytes cut as its parts were can be checked against it.
    async fn content_sums(&self, key: &str) -> Result<Option<ContentSums>, StorageError> {
        let Some(head) = self.head_object(key).await? else {
            return Ok(None);
        };
        let mut sums = crate::storage::object::with_recorded_blake3(head.sums, Some(&head.meta));
        if sums.md5.is_none()
            && sums.crc64nvme.is_none()
            && let Some(version) = head.version.as_deref()
            && let Some((md5_of_parts, parts)) = etag::multipart_digest(version)
            && let Some(first_part) = self.part_size(key, 1, version).await?
        {
            sums.multipart = Some(crate::types::MultipartEtag {
                md5_of_parts,
                parts,
                first_part,
            });
        }
        Ok(Some(sums))
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        self.get_object(key, range, version).await
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
        self.put_object(key, body, len, meta, sums, expect).await
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        self.same_service(source).is_some()
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let from = self.copy_source_of(source)?;
        self.copy_whole(&from, source.version, key, meta, expect)
            .await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        // S3 rewrites metadata by copying the object onto itself.
        let version = match expect {
            Expect::Version(version) => Some(version),
            _ => None,
        };
        self.copy_whole(
            &object::copy_source(&self.bucket, key),
            version,
            key,
            Some(meta),
            expect,
        )
        .await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        self.delete_objects(keys).await
    }
}

#[async_trait::async_trait]
impl StagedObjects for S3Storage {
    async fn begin_staged(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        self.create_multipart(key, meta).await
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        body: BodySource<'_>,
        len: u64,
        sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        self.upload_part(upload, number, body, len, sums).await
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        self.list_parts(upload).await
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        _meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        // The metadata went with CreateMultipartUpload.
        self.complete_multipart(upload, parts, expect).await
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        self.abort_multipart(upload).await
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        self.list_multipart_uploads().await
    }
}

#[async_trait::async_trait]
impl StagedCopies for S3Storage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        let from = self.copy_source_of(source)?;
        self.upload_part_copy(upload, number, &from, source.version, range)
            .await
    }
}

#[async_trait::async_trait]
impl ReadableUrls for S3Storage {
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError> {
        self.presigned_get(key, ttl).await.map(Some)
    }
}

impl S3Storage {
    /// The `x-amz-copy-source` of an object on this service.
    pub(super) fn copy_source_of(&self, source: CopySource<'_>) -> Result<String, StorageError> {
        let bucket = self
            .same_service(source.store)
            .ok_or_else(|| StorageError::Transfer {
                target: source.store.url_of(source.key),
                message: "S3 copies server-side only from buckets of the same service".into(),
            })?;
        Ok(object::copy_source(bucket, source.key))
    }

    /// PUTs bytes held in memory (sidecars, small objects), with the
    /// checksum the store's bodies carry.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let sums = BodySums::of(
            &bytes,
            crate::storage::ObjectStore::limits(self).body_checksum,
        );
        let len = bytes.len() as u64;
        self.put_object(key, BodySource::Memory(&bytes), len, meta, sums, expect)
            .await
    }
}
