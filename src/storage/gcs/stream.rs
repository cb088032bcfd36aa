//! Resumable uploads: one session per object, its bytes sent front to back in
//! pieces (multiples of 256 KiB but the last), the object made when the last
//! piece arrives. The session URI is the upload's handle across processes —
//! the caller keeps it in its resume state — and a credential in itself (it
//! grants the upload), so it is never printed.

use super::*;

use std::sync::Arc;

use base64::Engine;
use reqwest::Method;

use super::credentials::Auth;
use super::request::{Call, Payload};
use super::{CONTENT_TYPE, GcsStorage, HINTS, escaped, generation_condition, json};
use crate::storage::body::BodySource;
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{Expect, StreamAck, StreamEnd, StreamUpload};
use crate::storage::{RemoteErrorKind, StorageError};

/// Pieces of a stream but the last are multiples of this (GCS's rule).
pub const GRANULE: u64 = 256 * 1024;

/// Bytes held according to a 308's `Range` header (`bytes=0-N`: N + 1; no
/// header: none yet).
pub fn persisted_from(range: Option<&str>) -> Option<u64> {
    let Some(range) = range else {
        return Some(0);
    };
    let last: u64 = range.trim().strip_prefix("bytes=0-")?.parse().ok()?;
    last.checked_add(1)
}

/// The `Content-Range` of a piece: `bytes A-B/TOTAL` (`*` until the end is
/// known; `bytes */TOTAL` for an empty last piece).
pub fn content_range(offset: u64, len: u64, total: Option<u64>) -> String {
    let total = total.map_or("*".to_string(), |t| t.to_string());
    if len == 0 {
        format!("bytes */{total}")
    } else {
        format!("bytes {offset}-{}/{total}", offset + len - 1)
    }
}

impl GcsStorage {
    /// The URL a session answers on. An emulator names itself by the address
    /// it was started with, which may not be the one this machine reaches it
    /// by (a proxy in front): its path goes to the endpoint we were given.
    fn session_url(&self, location: &str) -> String {
        if self.resolved.auth != Auth::Anonymous {
            return location.to_string();
        }
        match reqwest::Url::parse(location) {
            Ok(url) => {
                let query = url.query().map_or(String::new(), |q| format!("?{q}"));
                format!("{}{}{query}", self.resolved.endpoint, url.path())
            }
            Err(_) => location.to_string(),
        }
    }

    pub(super) async fn start_session(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        let target = self.url_of_key(key);
        let resource = serde_json::to_string(&json::NewObject {
            name: Some(key),
            content_type: CONTENT_TYPE,
            md5_hash: None,
            crc32c: None,
            metadata: self.meta_headers(meta),
            storage_class: self.class_for(key),
        })
        .map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: e.to_string(),
        })?;
        let mut url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.resolved.endpoint,
            escaped(&self.bucket),
            escaped(key)
        );
        if let Some(generation) = generation_condition(expect) {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let response = self
            .http
            .send(self, "cannot start the upload of", &target, || Call {
                payload: Payload::Json(&resource),
                ..Call::new(Method::POST, &url)
            })
            .await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StorageError::Transfer {
                target: target.clone(),
                message: "the service named no upload session".into(),
            })?;
        Ok(StreamUpload {
            key: key.to_string(),
            session: self.session_url(location),
        })
    }

    pub(super) async fn session_persisted(
        &self,
        upload: &StreamUpload,
        recorded: u64,
    ) -> Result<u64, StorageError> {
        if self.resolved.auth == Auth::Anonymous {
            // fake-gcs-server ends an upload when asked where it stands
            // (docs/TESTING): with an emulator, what this machine recorded
            // is the answer, and the object's checksums catch a wrong one.
            return Ok(recorded);
        }
        let target = self.url_of_key(&upload.key);
        let response = self
            .http
            .send(self, "cannot resume the upload of", &target, || Call {
                headers: vec![("content-range", "bytes */*".to_string())],
                resumable: true,
                ..Call::new(Method::PUT, &upload.session)
            })
            .await?;
        if response.status().as_u16() != 308 {
            // Finished already (before the last answer was heard): there is
            // no stream to go on with.
            return Err(gone(&target, "the upload session has already ended"));
        }
        let range = response
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok());
        persisted_from(range).ok_or_else(|| StorageError::Transfer {
            target,
            message: "the session's answer says no readable range".into(),
        })
    }

    pub(super) async fn send_piece(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        let target = self.url_of_key(&upload.key);
        if end.is_none() && (len == 0 || !len.is_multiple_of(GRANULE)) {
            return Err(StorageError::Transfer {
                target,
                message: format!("a {len}-byte piece of a stream is not a multiple of 256 KiB"),
            });
        }
        let range = content_range(offset, len, end.map(|e| e.size));
        let activity = Arc::default();
        let budget = if len > 0 {
            crate::retry::Budget::Watched(Arc::clone(&activity))
        } else {
            crate::retry::Budget::ServerSide
        };
        // One attempt (within the stall watchdog): after a failure the caller
        // asks where the session stands and goes on from there.
        let mut once = self.retry.clone();
        once.retries = 0;
        let response = once
            .run(&target, budget, || {
                let call = Call {
                    headers: vec![("content-range", range.clone())],
                    payload: Payload::Media { source: body, len },
                    resumable: true,
                    ..Call::new(Method::PUT, &upload.session)
                };
                self.http
                    .send_once(self, "cannot upload", &target, call, &activity)
            })
            .await?;
        if response.status().as_u16() == 308 {
            let range = response
                .headers()
                .get(reqwest::header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return persisted_from(range.as_deref())
                .map(StreamAck::Persisted)
                .ok_or_else(|| StorageError::Transfer {
                    target,
                    message: "the session's answer says no readable range".into(),
                });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| StorageError::Interrupted {
                target: target.clone(),
                message: super::request::error_chain(&e.without_url()),
            })?;
        let object: json::Object =
            serde_json::from_slice(&bytes).map_err(|e| StorageError::Transfer {
                target: target.clone(),
                message: format!("unreadable answer: {e}"),
            })?;
        let Some(end) = end else {
            return Err(StorageError::Verification {
                target,
                message: "the object was made before its last bytes were sent".into(),
            });
        };
        check_made(&target, &object, end)?;
        Self::generation_of(object, &target).map(StreamAck::Done)
    }

    pub(super) async fn cancel_session(&self, upload: &StreamUpload) -> Result<(), StorageError> {
        let target = self.url_of_key(&upload.key);
        match self
            .http
            .send_once(
                self,
                "cannot abandon the upload of",
                &target,
                Call::new(Method::DELETE, &upload.session),
                &Arc::default(),
            )
            .await
        {
            // GCS answers 499 to a cancelled session; an ended one is gone.
            Ok(_) => Ok(()),
            Err(StorageError::Remote { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn gone(target: &str, message: &str) -> StorageError {
    StorageError::Remote {
        op: "cannot resume the upload of",
        target: target.to_string(),
        kind: RemoteErrorKind::NotFound,
        message: message.to_string(),
        hints: &HINTS,
    }
}

/// The object a stream made must be the bytes sent: size, CRC32C (every
/// object has one) and MD5 (where given).
fn check_made(target: &str, object: &json::Object, end: &StreamEnd) -> Result<(), StorageError> {
    let fail = |message: String| {
        Err(StorageError::Verification {
            target: target.to_string(),
            message,
        })
    };
    if object.size() != end.size {
        return fail(format!(
            "{} bytes were sent but {} stored",
            end.size,
            object.size()
        ));
    }
    if object.crc32c().is_some_and(|crc| crc != end.crc32c) {
        return fail("the stored object's CRC32C differs from the file's".into());
    }
    if object.md5().is_some_and(|md5| md5 != end.md5) {
        return fail(format!(
            "the stored object's MD5 ({}) differs from the file's",
            base64::engine::general_purpose::STANDARD.encode(object.md5().unwrap_or_default())
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl UploadStreams for GcsStorage {
    async fn begin_stream(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        self.start_session(key, meta, expect).await
    }
    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        recorded: u64,
    ) -> Result<u64, StorageError> {
        self.session_persisted(upload, recorded).await
    }
    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        let ack = self.send_piece(upload, offset, body, len, end).await?;
        if matches!(ack, StreamAck::Done(_)) {
            self.drop_chunks_after_write(&upload.key).await;
        }
        Ok(ack)
    }
    async fn abort_stream(&self, upload: &StreamUpload) -> Result<(), StorageError> {
        self.cancel_session(upload).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_say_where_a_stream_stands() {
        assert_eq!(persisted_from(None), Some(0));
        assert_eq!(persisted_from(Some("bytes=0-262143")), Some(262_144));
        assert_eq!(persisted_from(Some("bytes=5-9")), None);
        assert_eq!(persisted_from(Some("junk")), None);
        assert_eq!(content_range(0, 262_144, None), "bytes 0-262143/*");
        assert_eq!(
            content_range(262_144, 100, Some(262_244)),
            "bytes 262144-262243/262244"
        );
        assert_eq!(content_range(500, 0, Some(500)), "bytes */500");
    }
}
