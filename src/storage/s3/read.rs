//! Reading objects: GETs, whole or ranged, and bodies that survive being cut
//! off (a stalled or broken body is asked for again from where it stopped).

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{S3Storage, remote_error};
use crate::retry::Budget;
use crate::storage::StorageError;

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
}
