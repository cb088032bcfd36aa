//! Whole-object requests: HEAD, PUT, server-side copy, batched delete (GETs
//! are in `read`).

use std::path::Path;

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use bytes::Bytes;

use super::body::BodySource;
use super::list::timestamp_ns;
use super::{Expect, ObjectMeta, RemoteErrorKind, S3Storage, remote_error};
use crate::retry::{Activity, Budget};
use crate::storage::StorageError;
use crate::types::{Entry, EntryKind, RelPath};

/// Keys per DeleteObjects request (S3's limit).
const DELETE_BATCH: usize = 1000;

/// What a HEAD says about an object.
#[derive(Clone, Debug)]
pub struct ObjectHead {
    pub size: u64,
    pub mtime_ns: i64,
    pub etag: Option<String>,
    pub meta: ObjectMeta,
}

impl ObjectHead {
    /// The entry a listing would have given, with link targets resolved.
    pub fn entry(&self) -> Entry {
        let mut entry = Entry::file(self.size, self.mtime_ns, 0);
        if let Some(etag) = &self.etag {
            entry.set_etag(etag.clone());
        }
        if self.size == 0
            && let Some(target) = &self.meta.link_target
        {
            entry.kind = EntryKind::Symlink;
            entry.extra.get_or_insert_with(Default::default).link_target = Some(target.clone());
        }
        entry
    }
}

/// The Content-MD5 header value: base64 of the binary digest.
pub(crate) fn content_md5(md5: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

impl S3Storage {
    /// HEADs a key; `None` when there is no such object.
    pub async fn head_key(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        let url = self.url_of(key);
        let out = self
            .retry()
            .run(&url, Budget::Quick, || async {
                let result = self
                    .client()
                    .head_object()
                    .bucket(self.bucket())
                    .key(key)
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(Some(out)),
                    Err(e)
                        if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(remote_error("cannot head", url.clone(), e)),
                }
            })
            .await?;
        Ok(out.map(|out| ObjectHead {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            mtime_ns: out.last_modified().map_or(0, timestamp_ns),
            etag: out.e_tag().map(str::to_string),
            meta: out
                .metadata()
                .map(ObjectMeta::from_headers)
                .unwrap_or_default(),
        }))
    }

    /// Describes the object at `path` now, or `None`.
    pub async fn head(&self, path: &RelPath) -> Result<Option<Entry>, StorageError> {
        Ok(self
            .head_key(&self.key_of(path))
            .await?
            .map(|head| head.entry()))
    }

    /// PUTs the first `len` bytes of a local file (all of it, as its size
    /// was planned), streamed from disk. With the bytes' MD5 the server checks
    /// them (Content-MD5). Returns the new ETag.
    pub async fn put_file(
        &self,
        key: &str,
        file: &Path,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StorageError> {
        let source = BodySource::File {
            path: file,
            offset: 0,
        };
        self.put(key, source, len, meta, md5, expect).await
    }

    /// PUTs bytes held in memory (sidecars, small objects), with Content-MD5.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StorageError> {
        let md5 = super::etag::md5(&bytes);
        let len = bytes.len() as u64;
        self.put(
            key,
            BodySource::Memory(&bytes),
            len,
            meta,
            Some(md5),
            expect,
        )
        .await
    }

    /// The PutObject both of the above make, retried, conditional on `expect`.
    async fn put(
        &self,
        key: &str,
        source: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StorageError> {
        let url = self.url_of(key);
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let activity = std::sync::Arc::new(Activity::default());
        let result = self
            .retry()
            .run(&url, Budget::Watched(activity.clone()), || async {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let out = self
                    .client()
                    .put_object()
                    .bucket(self.bucket())
                    .key(key)
                    .content_length(len as i64)
                    .set_content_md5(md5.map(|m| content_md5(&m)))
                    .set_metadata(Some(meta.to_headers()))
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .body(source.open(len, &activity).await?)
                    .customize()
                    // A streamed body is not hashed for the signature: the
                    // server checks Content-MD5 where we have it, TLS the rest.
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot upload", url.clone(), e))?;
                Ok(out.e_tag().map(str::to_string))
            })
            .await;
        let retried = attempts.load(std::sync::atomic::Ordering::Relaxed) > 1;
        self.settle_conditional_put(key, result, retried, md5).await
    }

    /// A conditional write that was retried can fail its condition on our own
    /// earlier attempt: one that reached the server although its answer was
    /// lost. The object then holds exactly our bytes (same MD5), and the write
    /// counts as done rather than as a conflict.
    async fn settle_conditional_put(
        &self,
        key: &str,
        result: Result<Option<String>, StorageError>,
        retried: bool,
        md5: Option<[u8; 16]>,
    ) -> Result<Option<String>, StorageError> {
        match (result, md5) {
            (
                Err(
                    error @ StorageError::Remote {
                        kind: RemoteErrorKind::PreconditionFailed,
                        ..
                    },
                ),
                Some(md5),
            ) if retried => match self.head_key(key).await? {
                Some(head)
                    if head
                        .etag
                        .as_deref()
                        .is_some_and(|e| super::etag::etag_md5(e) == Some(md5)) =>
                {
                    Ok(head.etag)
                }
                _ => Err(error),
            },
            (result, _) => result,
        }
    }

    /// Copies an object within S3 (≤ 5 GiB; larger ones go by multipart copy),
    /// keeping its metadata, or replacing it with `meta`. `source` may be another
    /// storage's bucket, or the same key (to rewrite metadata).
    pub async fn copy_object(
        &self,
        source: &S3Storage,
        source_key: &str,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StorageError> {
        let url = self.url_of(key);
        let out = self
            .retry()
            .run(&url, Budget::ServerSide, || async {
                self.client()
                    .copy_object()
                    .copy_source(source.copy_source(source_key))
                    .bucket(self.bucket())
                    .key(key)
                    .metadata_directive(if meta.is_some() {
                        MetadataDirective::Replace
                    } else {
                        MetadataDirective::Copy
                    })
                    .set_metadata(meta.map(ObjectMeta::to_headers))
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot copy", url.clone(), e))
            })
            .await?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(str::to_string))
    }

    /// `bucket/key`, URL-encoded, as x-amz-copy-source wants it.
    pub(crate) fn copy_source(&self, key: &str) -> String {
        const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        format!(
            "{}/{}",
            self.bucket(),
            percent_encoding::utf8_percent_encode(key, KEY_ESCAPES)
        )
    }

    /// Deletes keys, a thousand per request. Missing keys are not an error.
    pub async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StorageError::Transfer {
                    target: self.url_of(""),
                    message: e.to_string(),
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::Transfer {
                    target: self.url_of(""),
                    message: e.to_string(),
                })?;
            let url = self.url_of(&batch[0]);
            let out = self
                .retry()
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .delete_objects()
                        .bucket(self.bucket())
                        .delete(delete.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot delete", url.clone(), e))
                })
                .await?;
            if let Some(failed) = out.errors().first() {
                return Err(StorageError::Transfer {
                    target: self.url_of(failed.key().unwrap_or_default()),
                    message: format!(
                        "not deleted: {}",
                        failed
                            .message()
                            .or(failed.code())
                            .unwrap_or("unknown error")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Deletes the object at `path` and its signature sidecar.
    pub async fn delete(&self, path: &RelPath) -> Result<(), StorageError> {
        self.delete_keys(&[self.key_of(path), self.sidecar_key_of(path)])
            .await
    }
}
