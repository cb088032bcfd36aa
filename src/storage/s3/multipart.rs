//! The multipart family: the object is assembled from parts that are uploaded
//! or copied server-side from existing objects, and appears only at completion.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as SdkCompletedPart};

use super::body::BodySource;
use super::{Expect, ObjectMeta, S3Storage, remote_error};
use crate::retry::{Activity, Budget};
use crate::storage::StorageError;

/// An upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartUpload {
    pub key: String,
    pub upload_id: String,
}

/// A part as the completion request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    pub number: i32,
    pub etag: String,
    pub size: u64,
}

/// An upload found by ListMultipartUploads.
#[derive(Clone, Debug)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated_ns: Option<i64>,
}

fn transfer_error(target: String, message: impl ToString) -> StorageError {
    StorageError::Transfer {
        target,
        message: message.to_string(),
    }
}

impl S3Storage {
    pub async fn create_multipart(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<MultipartUpload, StorageError> {
        let url = self.url_of(key);
        let out = self
            .retry()
            .run(&url, Budget::Quick, || async {
                self.client()
                    .create_multipart_upload()
                    .bucket(self.bucket())
                    .key(key)
                    .set_metadata(Some(meta.to_headers()))
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot start an upload of", url.clone(), e))
            })
            .await?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| transfer_error(self.url_of(key), "the server gave no upload id"))?;
        Ok(MultipartUpload {
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        })
    }

    /// Uploads `len` bytes from `source` as part `number`, retried; with their
    /// MD5 known, the server checks them. The body is streamed, not hashed for
    /// the signature (one hash pass, not two; TLS covers the rest).
    pub async fn upload_part(
        &self,
        upload: &MultipartUpload,
        number: i32,
        source: BodySource<'_>,
        len: u64,
        md5: Option<[u8; 16]>,
    ) -> Result<CompletedPart, StorageError> {
        let url = self.url_of(&upload.key);
        let activity = std::sync::Arc::new(Activity::default());
        let out = self
            .retry()
            .run(&url, Budget::Watched(activity.clone()), || async {
                self.client()
                    .upload_part()
                    .bucket(self.bucket())
                    .key(&upload.key)
                    .upload_id(&upload.upload_id)
                    .part_number(number)
                    .content_length(len as i64)
                    .set_content_md5(md5.map(|m| super::object::content_md5(&m)))
                    .body(source.open(len, &activity).await?)
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot upload a part of", url.clone(), e))
            })
            .await?;
        let etag = out
            .e_tag()
            .ok_or_else(|| transfer_error(url, "the server gave no part ETag"))?;
        Ok(CompletedPart {
            number,
            etag: etag.to_string(),
            size: len,
        })
    }

    /// Copies `len` bytes from `start` of `source`'s object `source_key` as part
    /// `number`, server-side. Callers check the range against the source's size:
    /// some servers silently truncate a range past the end.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        upload: &MultipartUpload,
        number: i32,
        source: &S3Storage,
        source_key: &str,
        start: u64,
        len: u64,
        source_etag: Option<&str>,
    ) -> Result<CompletedPart, StorageError> {
        let url = self.url_of(&upload.key);
        let out = self
            .retry()
            .run(&url, Budget::ServerSide, || async {
                self.client()
                    .upload_part_copy()
                    .bucket(self.bucket())
                    .key(&upload.key)
                    .upload_id(&upload.upload_id)
                    .part_number(number)
                    .copy_source(source.copy_source(source_key))
                    .copy_source_range(format!("bytes={start}-{}", start + len - 1))
                    .set_copy_source_if_match(source_etag.map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot copy a part into", url.clone(), e))
            })
            .await?;
        let etag = out
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .ok_or_else(|| {
                transfer_error(self.url_of(&upload.key), "the server gave no part ETag")
            })?;
        Ok(CompletedPart {
            number,
            etag: etag.to_string(),
            size: len,
        })
    }

    /// Completes the upload: the object appears now, if the key still holds
    /// what `expect` says (where the server honours the condition).
    pub async fn complete_multipart(
        &self,
        upload: &MultipartUpload,
        parts: &[CompletedPart],
        expect: Expect<'_>,
    ) -> Result<Option<String>, StorageError> {
        let parts = parts
            .iter()
            .map(|p| {
                SdkCompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag)
                    .build()
            })
            .collect();
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let url = self.url_of(&upload.key);
        let out = self
            .retry()
            .run(&url, Budget::ServerSide, || async {
                self.client()
                    .complete_multipart_upload()
                    .bucket(self.bucket())
                    .key(&upload.key)
                    .upload_id(&upload.upload_id)
                    .multipart_upload(parts.clone())
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot complete the upload of", url.clone(), e))
            })
            .await?;
        Ok(out.e_tag().map(str::to_string))
    }

    /// Abandons the upload and frees its parts.
    pub async fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StorageError> {
        let url = self.url_of(&upload.key);
        self.retry()
            .run(&url, Budget::Quick, || async {
                self.client()
                    .abort_multipart_upload()
                    .bucket(self.bucket())
                    .key(&upload.key)
                    .upload_id(&upload.upload_id)
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot abort the upload of", url.clone(), e))
            })
            .await?;
        Ok(())
    }

    /// The parts the server holds for an upload, in part order (all pages).
    pub async fn list_parts(
        &self,
        upload: &MultipartUpload,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let url = self.url_of(&upload.key);
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .retry()
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .list_parts()
                        .bucket(self.bucket())
                        .key(&upload.key)
                        .upload_id(&upload.upload_id)
                        .set_part_number_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot list the parts of", url.clone(), e))
                })
                .await?;
            parts.extend(page.parts().iter().filter_map(|p| {
                Some(CompletedPart {
                    number: p.part_number()?,
                    etag: p.e_tag()?.to_string(),
                    size: p.size()?.max(0) as u64,
                })
            }));
            match page.next_part_number_marker() {
                Some(next)
                    if page.is_truncated() == Some(true) && marker.as_deref() != Some(next) =>
                {
                    marker = Some(next.to_string());
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Incomplete multipart uploads below this storage's prefix (all pages).
    pub async fn list_multipart_uploads(&self) -> Result<Vec<PendingUpload>, StorageError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let url = self.url_of(&self.prefix);
            let page = self
                .retry()
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .list_multipart_uploads()
                        .bucket(self.bucket())
                        .prefix(&self.prefix)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot list uploads in", url.clone(), e))
                })
                .await?;
            uploads.extend(page.uploads().iter().filter_map(|u| {
                Some(PendingUpload {
                    key: u.key()?.to_string(),
                    upload_id: u.upload_id()?.to_string(),
                    initiated_ns: u.initiated().map(super::list::timestamp_ns),
                })
            }));
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(uploads)
    }
}
