//! Whole-object requests: HEAD, (ranged) GET, PUT, server-side copy, batched
//! delete.

use std::path::Path;

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use bytes::Bytes;

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

fn stalled(target: &str, limit: std::time::Duration) -> StorageError {
    StorageError::Interrupted {
        target: target.to_string(),
        message: format!("no bytes for {}", humantime::format_duration(limit)),
    }
}

/// Reads a body of `len` bytes whole, giving up when no bytes come for `stall`.
async fn collect_body(
    mut body: ByteStream,
    len: u64,
    target: &str,
    stall: std::time::Duration,
) -> Result<Bytes, StorageError> {
    let mut bytes = bytes::BytesMut::with_capacity(len as usize);
    loop {
        match tokio::time::timeout(stall, body.next()).await {
            Err(_) => return Err(stalled(target, stall)),
            Ok(None) => return Ok(bytes.freeze()),
            Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => {
                return Err(StorageError::Interrupted {
                    target: target.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
}

/// `bytes=a-b` for `len` bytes from `start` (`len` > 0).
fn range_header(start: u64, len: u64) -> String {
    format!("bytes={start}-{}", start + len - 1)
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

    /// Starts a GET of `len` bytes from `start` (the whole object when `None`),
    /// returning the body stream and the object's ETag. Reading the body is the
    /// caller's: [`S3Storage::get_range`] and [`S3Storage::read_object`] also
    /// retry a body cut off midway.
    pub async fn get_stream(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> Result<(ByteStream, Option<String>), StorageError> {
        let url = self.url_of(key);
        self.retry()
            .run(&url, Budget::Quick, || self.get_once(key, range, if_match))
            .await
    }

    /// One GET, not retried.
    async fn get_once(
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

    /// Reads `len` bytes from `start` into memory (callers bound `len`), with
    /// the whole exchange retried: a body that stalls or ends early is asked
    /// for again.
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
        let url = self.url_of(key);
        self.retry()
            .run(&url, Budget::Unbounded, || async {
                let stall = self.retry().stall_timeout;
                let (body, _) =
                    tokio::time::timeout(stall, self.get_once(key, Some((start, len)), if_match))
                        .await
                        .map_err(|_| stalled(&url, stall))??;
                let bytes = collect_body(body, len, &url, stall).await?;
                if bytes.len() as u64 != len {
                    return Err(StorageError::Interrupted {
                        target: url.clone(),
                        message: format!("asked for {len} bytes at {start}, got {}", bytes.len()),
                    });
                }
                Ok(bytes)
            })
            .await
    }

    /// The object's bytes from `start` as a stream that survives interruptions:
    /// when the body fails or stalls, the rest is asked for again (a ranged GET
    /// from where it stopped, pinned to `etag` so a replaced object is never
    /// mixed in), within the retry policy.
    pub fn read_object(
        &self,
        key: &str,
        size: u64,
        etag: Option<&str>,
    ) -> impl futures::Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
        struct Reader {
            store: S3Storage,
            key: String,
            etag: Option<String>,
            size: u64,
            offset: u64,
            body: Option<ByteStream>,
            failures: u32,
        }
        let reader = Reader {
            store: self.clone(),
            key: key.to_string(),
            etag: etag.map(str::to_string),
            size,
            offset: 0,
            body: None,
            failures: 0,
        };
        futures::stream::try_unfold(reader, |mut r| async move {
            let policy = r.store.retry().clone();
            let url = r.store.url_of(&r.key);
            loop {
                if r.offset >= r.size {
                    return Ok(None);
                }
                let step = async {
                    if r.body.is_none() {
                        let range = Some((r.offset, r.size - r.offset));
                        let (body, _) = r.store.get_once(&r.key, range, r.etag.as_deref()).await?;
                        r.body = Some(body);
                    }
                    match r.body.as_mut().map(ByteStream::next) {
                        Some(next) => match next.await {
                            Some(Ok(chunk)) => Ok(Some(chunk)),
                            Some(Err(e)) => Err(StorageError::Interrupted {
                                target: url.clone(),
                                message: e.to_string(),
                            }),
                            None => Ok(None),
                        },
                        None => Ok(None),
                    }
                };
                let result = tokio::time::timeout(policy.stall_timeout, step)
                    .await
                    .unwrap_or_else(|_| Err(stalled(&url, policy.stall_timeout)));
                match result {
                    Ok(Some(chunk)) => {
                        r.offset += chunk.len() as u64;
                        r.failures = 0;
                        return Ok(Some((chunk, r)));
                    }
                    Ok(None) => {
                        return Err(StorageError::Transfer {
                            target: url,
                            message: format!(
                                "the object ended at {} of {} bytes",
                                r.offset, r.size
                            ),
                        });
                    }
                    Err(error) if error.is_retryable() && r.failures < policy.retries => {
                        r.body = None;
                        let delay = policy.delay(r.failures);
                        r.failures += 1;
                        tracing::info!(
                            "{error}; resuming at byte {} in {} ms",
                            r.offset,
                            delay.as_millis()
                        );
                        tokio::time::sleep(delay).await;
                    }
                    Err(error) => return Err(error),
                }
            }
        })
    }

    /// PUTs the first `len` bytes of a local file (all of it, as its size
    /// was planned), streamed from disk.
    /// With the bytes' MD5 the server checks them (Content-MD5) and the SDK skips
    /// its SHA-256 of the payload. Returns the new ETag.
    pub async fn put_file(
        &self,
        key: &str,
        file: &Path,
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
                let body = super::body::from_file(file, 0, len, &activity)
                    .await
                    .map_err(|e| StorageError::io("cannot read", file, e))?;
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
                    .body(body)
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

    /// PUTs bytes held in memory (sidecars, small objects), with Content-MD5.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StorageError> {
        let url = self.url_of(key);
        let digest = super::etag::md5(&bytes);
        let md5 = content_md5(&digest);
        let len = bytes.len() as u64;
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
                    .content_md5(&md5)
                    .set_metadata(Some(meta.to_headers()))
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .body(super::body::from_bytes(&bytes, &activity))
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot upload", url.clone(), e))?;
                Ok(out.e_tag().map(str::to_string))
            })
            .await;
        let retried = attempts.load(std::sync::atomic::Ordering::Relaxed) > 1;
        self.settle_conditional_put(key, result, retried, Some(digest))
            .await
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
