//! Whole-object requests: HEAD, (ranged) GET, PUT, server-side copy, batched
//! delete.

use std::path::Path;

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use bytes::Bytes;

use super::list::timestamp_ns;
use super::{ObjectMeta, S3Storage, remote_error};
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

/// `bytes=a-b` for `len` bytes from `start` (`len` > 0).
fn range_header(start: u64, len: u64) -> String {
    format!("bytes={start}-{}", start + len - 1)
}

impl S3Storage {
    /// HEADs a key; `None` when there is no such object.
    pub async fn head_key(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        let result = self
            .client()
            .head_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                return Ok(None);
            }
            Err(e) => return Err(remote_error("cannot head", self.url_of(key), e)),
        };
        Ok(Some(ObjectHead {
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

    /// Starts a GET of `len` bytes from `start` (the whole object when `None`),
    /// returning the body stream and the object's ETag.
    pub async fn get_stream(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> Result<(ByteStream, Option<String>), StorageError> {
        let out = self
            .client()
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .set_range(
                range
                    .filter(|&(_, len)| len > 0)
                    .map(|(s, l)| range_header(s, l)),
            )
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| remote_error("cannot read", self.url_of(key), e))?;
        let etag = out.e_tag().map(str::to_string);
        Ok((out.body, etag))
    }

    /// Reads `len` bytes from `start` into memory (callers bound `len`).
    pub async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> Result<Bytes, StorageError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let (body, _) = self.get_stream(key, Some((start, len)), if_match).await?;
        let bytes = body
            .collect()
            .await
            .map_err(|e| StorageError::Transfer {
                target: self.url_of(key),
                message: e.to_string(),
            })?
            .into_bytes();
        if bytes.len() as u64 != len {
            return Err(StorageError::Transfer {
                target: self.url_of(key),
                message: format!("asked for {len} bytes at {start}, got {}", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// PUTs `len` bytes of a local file from `offset`, streamed from disk.
    /// With the bytes' MD5 the server checks them (Content-MD5) and the SDK skips
    /// its SHA-256 of the payload. Returns the new ETag.
    pub async fn put_file(
        &self,
        key: &str,
        file: &Path,
        offset: u64,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
    ) -> Result<Option<String>, StorageError> {
        let body = ByteStream::read_from()
            .path(file)
            .offset(offset)
            .length(Length::Exact(len))
            .build()
            .await
            .map_err(|e| StorageError::Transfer {
                target: file.display().to_string(),
                message: e.to_string(),
            })?;
        let request = self
            .client()
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_length(len as i64)
            .set_content_md5(md5.map(|m| content_md5(&m)))
            .set_metadata(Some(meta.to_headers()))
            .body(body)
            .customize();
        let request = if md5.is_some() {
            request.disable_payload_signing()
        } else {
            request
        };
        let out = request
            .send()
            .await
            .map_err(|e| remote_error("cannot upload", self.url_of(key), e))?;
        Ok(out.e_tag().map(str::to_string))
    }

    /// PUTs bytes held in memory (sidecars, small objects), with Content-MD5.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        meta: &ObjectMeta,
    ) -> Result<Option<String>, StorageError> {
        let out = self
            .client()
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_length(bytes.len() as i64)
            .content_md5(content_md5(&super::etag::md5(&bytes)))
            .set_metadata(Some(meta.to_headers()))
            .body(ByteStream::from(bytes))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| remote_error("cannot upload", self.url_of(key), e))?;
        Ok(out.e_tag().map(str::to_string))
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
    ) -> Result<Option<String>, StorageError> {
        let out = self
            .client()
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
            .send()
            .await
            .map_err(|e| remote_error("cannot copy", self.url_of(key), e))?;
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
            let out = self
                .client()
                .delete_objects()
                .bucket(self.bucket())
                .delete(delete)
                .send()
                .await
                .map_err(|e| remote_error("cannot delete", self.url_of(&batch[0]), e))?;
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
