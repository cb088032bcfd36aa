//! Whole-object requests: HEAD, PUT, server-side copy, batched delete (GETs
//! are in `read`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, Delete, MetadataDirective, ObjectIdentifier};

use super::list::timestamp_ns;
use super::{LIMITS, S3Storage, remote_error};
use crate::retry::{Activity, Budget};
use crate::storage::body::{BodySource, BodySums};
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{Expect, ObjectHead};
use crate::storage::{RemoteErrorKind, StorageError};
use crate::types::ContentSums;

/// The Content-MD5 header value: base64 of the binary digest.
pub(crate) fn content_md5(md5: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

/// The `x-amz-checksum-crc64nvme` value: base64 of the big-endian CRC.
pub(crate) fn crc64nvme_header(crc: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// A CRC64NVME as S3 reports it, back to a number.
pub(crate) fn parse_crc64nvme(value: &str) -> Option<u64> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Checks what the server says it received against the CRC64NVME sent: a
/// server that names none did not check it (an S3-compatible service
/// without the newer checksums), and one that names another got other bytes.
pub(crate) fn check_received_crc64nvme(
    sent: Option<u64>,
    received: Option<&str>,
    url: &str,
) -> Result<(), StorageError> {
    crate::storage::body::check_echoed_crc64(sent, received.map(parse_crc64nvme), url).map(|_| ())
}

/// Whether the object is encrypted with a KMS or customer key, under which
/// its ETag is not the MD5 of its bytes.
fn encrypted_by_key(out: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> bool {
    use aws_sdk_s3::types::ServerSideEncryption as Sse;
    out.sse_customer_algorithm().is_some()
        || matches!(
            out.server_side_encryption(),
            Some(Sse::AwsKms | Sse::AwsKmsDsse)
        )
}

impl S3Storage {
    /// HEADs a key; `None` when there is no such object.
    pub(super) async fn head_object(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        let url = self.url_of_key(key);
        let out = self
            .retry
            .run(&url, Budget::Quick, || async {
                let result = self
                    .client()
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    // The object's own checksum, where S3 keeps one (every
                    // object since 2025 carries a full-object CRC64NVME).
                    .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
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
            version: out.e_tag().map(str::to_string),
            meta: out
                .metadata()
                .map(ObjectMeta::from_headers)
                .unwrap_or_default(),
            sums: ContentSums {
                // Under SSE-KMS and SSE-C the ETag is no MD5 of the bytes.
                md5: out
                    .e_tag()
                    .and_then(super::etag::etag_md5)
                    .filter(|_| !encrypted_by_key(&out)),
                crc64nvme: full_object_crc64nvme(&out),
                ..ContentSums::default()
            },
        }))
    }

    /// The size of part `number` of a multipart object, pinned to `version`
    /// (HEAD with `partNumber`); `None` when the object is gone or changed.
    pub(super) async fn part_size(
        &self,
        key: &str,
        number: i32,
        version: &str,
    ) -> Result<Option<u64>, StorageError> {
        let url = self.url_of_key(key);
        self.retry
            .run(&url, Budget::Quick, || async {
                let result = self
                    .client()
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .part_number(number)
                    .if_match(version)
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out.content_length().map(|len| len.max(0) as u64)),
                    Err(e)
                        if matches!(
                            e.raw_response().map(|r| r.status().as_u16()),
                            Some(404 | 412)
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(remote_error("cannot head", url.clone(), e)),
                }
            })
            .await
    }

    /// One PutObject, retried, conditional on `expect`; with the bytes' MD5
    /// or CRC64NVME the server checks them (Content-MD5,
    /// x-amz-checksum-crc64nvme), and what it reports is checked against them
    /// too. Returns the new ETag.
    pub(super) async fn put_object(
        &self,
        key: &str,
        source: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        sums: BodySums,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let md5 = sums.md5;
        if len > LIMITS.max_single_put {
            return Err(StorageError::Transfer {
                target: self.url_of_key(key),
                message: format!("{len} bytes is more than one PutObject may carry"),
            });
        }
        let url = self.url_of_key(key);
        let attempts = AtomicU32::new(0);
        let activity = Arc::new(Activity::default());
        let result = self
            .retry
            .run(&url, Budget::Watched(activity.clone()), || async {
                attempts.fetch_add(1, Ordering::Relaxed);
                let body = source.open(len, &activity).await?;
                let out = self
                    .client()
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_length(len as i64)
                    .set_content_md5(md5.map(|m| content_md5(&m)))
                    .set_checksum_algorithm(sums.crc64nvme.map(|_| ChecksumAlgorithm::Crc64Nvme))
                    .set_checksum_crc64_nvme(sums.crc64nvme.map(crc64nvme_header))
                    .set_metadata(Some(self.meta_headers(meta)))
                    .set_storage_class(self.class_of(key))
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .body(ByteStream::from_body_1_x(body))
                    .customize()
                    // A streamed body is not hashed for the signature: the
                    // server checks the checksum it carries, TLS the rest.
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot upload", url.clone(), e))?;
                check_received_crc64nvme(sums.crc64nvme, out.checksum_crc64_nvme(), &url)?;
                Ok(out.e_tag().map(str::to_string))
            })
            .await;
        let retried = attempts.load(Ordering::Relaxed) > 1;
        let etag = self
            .settle_conditional_put(key, result, retried, sums)
            .await?
            .ok_or_else(|| StorageError::Transfer {
                target: url.clone(),
                message: "the server gave no ETag".into(),
            })?;
        if let (Some(sent), Some(stored)) = (md5, super::etag::etag_md5(&etag))
            && sent != stored
        {
            return Err(StorageError::Verification {
                target: url,
                message: "the stored object's MD5 differs from what was sent".into(),
            });
        }
        Ok(etag)
    }

    /// A conditional write that was retried can fail its condition on our own
    /// earlier attempt: one that reached the server although its answer was
    /// lost. The object then holds exactly our bytes (same MD5, or same
    /// full-object CRC64NVME), and the write counts as done rather than as a
    /// conflict.
    async fn settle_conditional_put(
        &self,
        key: &str,
        result: Result<Option<String>, StorageError>,
        retried: bool,
        sums: BodySums,
    ) -> Result<Option<String>, StorageError> {
        match result {
            Err(
                error @ StorageError::Remote {
                    kind: RemoteErrorKind::PreconditionFailed,
                    ..
                },
            ) if retried && sums != BodySums::NONE => match self.head_object(key).await? {
                Some(head)
                    if sums.md5.is_some_and(|md5| {
                        head.version
                            .as_deref()
                            .is_some_and(|e| super::etag::etag_md5(e) == Some(md5))
                    }) || sums
                        .crc64nvme
                        .is_some_and(|crc| head.sums.crc64nvme == Some(crc)) =>
                {
                    Ok(head.version)
                }
                _ => Err(error),
            },
            result => result,
        }
    }

    /// CopyObject from `copy_source` (`bucket/key` on this service), keeping
    /// its metadata or replacing it with `meta`.
    pub(super) async fn copy_whole(
        &self,
        copy_source: &str,
        source_version: Option<&str>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let url = self.url_of_key(key);
        let out = self
            .retry
            .run(&url, Budget::ServerSide, || async {
                self.client()
                    .copy_object()
                    .copy_source(copy_source)
                    .set_copy_source_if_match(source_version.map(str::to_string))
                    .bucket(&self.bucket)
                    .key(key)
                    .metadata_directive(if meta.is_some() {
                        MetadataDirective::Replace
                    } else {
                        MetadataDirective::Copy
                    })
                    .set_metadata(meta.map(|meta| self.meta_headers(meta)))
                    // A copy (and a metadata change, a copy onto itself)
                    // would otherwise fall back to STANDARD.
                    .set_storage_class(self.class_of(key))
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot copy", url.clone(), e))
            })
            .await?;
        out.copy_object_result()
            .and_then(|r| r.e_tag())
            .map(str::to_string)
            .ok_or_else(|| StorageError::Transfer {
                target: url,
                message: "the server gave no ETag for the copy".into(),
            })
    }

    /// Deletes keys, a thousand per request. Missing keys are not an error.
    pub(super) async fn delete_objects(&self, keys: &[String]) -> Result<(), StorageError> {
        for batch in keys.chunks(LIMITS.delete_batch) {
            let invalid = |e: aws_sdk_s3::error::BuildError| StorageError::Transfer {
                target: self.url_of_prefix(),
                message: e.to_string(),
            };
            let objects = batch
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(invalid)?;
            let url = self.url_of_key(&batch[0]);
            let out = self
                .retry
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot delete", url.clone(), e))
                })
                .await?;
            if let Some(failed) = out.errors().first() {
                return Err(StorageError::Transfer {
                    target: self.url_of_key(failed.key().unwrap_or_default()),
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

    /// `s3://bucket/key`, for messages.
    pub(super) fn url_of_key(&self, key: &str) -> String {
        crate::storage::ObjectStore::url_of(self, key)
    }
}

/// The object's CRC64NVME when it covers the whole object (a composite
/// checksum of parts cannot be compared with a file's).
fn full_object_crc64nvme(
    out: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
) -> Option<u64> {
    if out.checksum_type() != Some(&aws_sdk_s3::types::ChecksumType::FullObject) {
        return None;
    }
    parse_crc64nvme(out.checksum_crc64_nvme()?)
}

/// `bucket/key`, URL-encoded, as x-amz-copy-source wants it.
pub(super) fn copy_source(bucket: &str, key: &str) -> String {
    const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{bucket}/{}",
        percent_encoding::utf8_percent_encode(key, KEY_ESCAPES)
    )
}
