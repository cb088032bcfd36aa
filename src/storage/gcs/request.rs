//! Sending one JSON API request: authorised (a bearer token from Application
//! Default Credentials, or nothing for an emulator), retried within the
//! store's policy, with errors turned into [`StorageError`]s in the store's
//! terms. Tokens never reach a message: only the status, the error's reason
//! and the service's own message do.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use super::credentials::Auth;
use super::{GcsStorage, HINTS, json};
use crate::retry::{Activity, Budget};
use crate::storage::body::BodySource;
pub(super) use crate::storage::error_chain;
use crate::storage::{RemoteErrorKind, StorageError};

/// The boundary between a multipart upload's metadata and its media; the
/// media is never scanned for it, so any fixed string that cannot occur in
/// the JSON part does.
const BOUNDARY: &str = "hugesync-b6f1d0a7c2e94f3b";

/// What a request sends.
#[derive(Clone, Copy)]
pub(super) enum Payload<'a> {
    Empty,
    Json(&'a str),
    /// Bytes alone (a piece of a resumable upload).
    Media {
        source: BodySource<'a>,
        len: u64,
    },
    /// A multipart upload: the object's resource (JSON) and its bytes.
    Upload {
        resource: &'a str,
        source: BodySource<'a>,
        len: u64,
    },
}

/// One request, built afresh for every attempt.
pub(super) struct Call<'a> {
    pub method: Method,
    pub url: String,
    /// Headers besides those the payload implies (a read's `range`).
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload<'a>,
    /// The service does the work before it answers (compose, rewrite).
    pub server_side: bool,
    /// A piece of a resumable upload: 308 ("go on") is an answer, not an
    /// error.
    pub resumable: bool,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, url: &str) -> Call<'a> {
        Call {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            payload: Payload::Empty,
            server_side: false,
            resumable: false,
        }
    }
}

fn invalid(target: &str, message: impl std::fmt::Display) -> StorageError {
    StorageError::Transfer {
        target: target.to_string(),
        message: message.to_string(),
    }
}

/// The kind of a failed request, from its status and the service's reason.
pub(super) fn kind_of(status: StatusCode, reason: &str, message: &str) -> RemoteErrorKind {
    match (status.as_u16(), reason) {
        (401 | 403, _) => RemoteErrorKind::Denied,
        (412, _) | (_, "conditionNotMet") => RemoteErrorKind::PreconditionFailed,
        // 410: an upload session that ended or expired.
        (404 | 410, _) => RemoteErrorKind::NotFound,
        (400, _) if message.contains("doesn't match calculated") => {
            RemoteErrorKind::ChecksumMismatch
        }
        (408 | 429 | 500..=599, _) | (_, "rateLimitExceeded" | "backendError") => {
            RemoteErrorKind::Unavailable
        }
        _ => RemoteErrorKind::Rejected,
    }
}

impl GcsStorage {
    /// Sends the call `build` makes, retried within the policy; a non-success
    /// status is an error naming `op` and `target`. The answer's body is
    /// not read: callers that need it use [`GcsStorage::json`].
    pub(super) async fn send<'a>(
        &self,
        op: &'static str,
        target: &str,
        build: impl Fn() -> Call<'a>,
    ) -> Result<Response, StorageError> {
        let activity = Arc::new(Activity::default());
        let budget = budget_of(&build(), &activity);
        self.retry
            .run(target, budget, || {
                self.send_once(op, target, build(), &activity)
            })
            .await
    }

    /// One attempt: authorises, sends, and checks the status.
    pub(super) async fn send_once(
        &self,
        op: &'static str,
        target: &str,
        call: Call<'_>,
        activity: &Arc<Activity>,
    ) -> Result<Response, StorageError> {
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: &str| -> Result<(), StorageError> {
            let value = HeaderValue::from_str(value).map_err(|e| invalid(target, e))?;
            headers.insert(HeaderName::from_static(name), value);
            Ok(())
        };
        for (name, value) in &call.headers {
            put(name, value)?;
        }
        let (head, tail) = match call.payload {
            Payload::Empty => {
                if call.method == Method::POST || call.method == Method::PUT {
                    put("content-length", "0")?;
                }
                (None, None)
            }
            Payload::Json(text) => {
                put("content-type", "application/json")?;
                put("content-length", &text.len().to_string())?;
                (None, None)
            }
            Payload::Media { len, .. } => {
                put("content-type", super::CONTENT_TYPE)?;
                put("content-length", &len.to_string())?;
                (None, None)
            }
            Payload::Upload { resource, len, .. } => {
                let head = format!(
                    "--{BOUNDARY}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{resource}\r\n--{BOUNDARY}\r\ncontent-type: application/octet-stream\r\n\r\n"
                );
                let tail = format!("\r\n--{BOUNDARY}--\r\n");
                put(
                    "content-type",
                    &format!("multipart/related; boundary={BOUNDARY}"),
                )?;
                let total = head.len() as u64 + len + tail.len() as u64;
                put("content-length", &total.to_string())?;
                (Some(Bytes::from(head)), Some(Bytes::from(tail)))
            }
        };
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(&call.url)
            .body(())
            .map_err(|e| invalid(target, e))?;
        *request.headers_mut() = headers;
        let (mut parts, ()) = request.into_parts();
        if let (Auth::Adc, Some(signer)) = (self.resolved.auth, &self.signer) {
            signer
                .sign(&mut parts, None)
                .await
                .map_err(|e| credentials_error(op, target, &e))?;
        }
        let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|e| invalid(target, e))?;
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        *request.body_mut() = match call.payload {
            Payload::Empty => None,
            Payload::Json(text) => Some(reqwest::Body::from(text.to_string())),
            Payload::Media { source, len } => {
                let media = source.open(len, activity).await?;
                Some(reqwest::Body::wrap(media))
            }
            Payload::Upload { source, len, .. } => {
                let media = source.open(len, activity).await?;
                Some(reqwest::Body::wrap(
                    media.framed(head.unwrap_or_default(), tail.unwrap_or_default()),
                ))
            }
        };
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| crate::storage::http_error(op, target, e, &HINTS))?;
        let status = response.status();
        if status.is_success() || (call.resumable && status.as_u16() == 308) {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        let error = serde_json::from_slice::<json::ErrorBody>(&body).ok();
        let reason = error
            .as_ref()
            .and_then(|e| e.error.errors.iter().find_map(|i| i.reason.clone()))
            .unwrap_or_default();
        let detail = error
            .and_then(|e| e.error.message)
            .or_else(|| {
                // Emulators answer some errors in plain text.
                std::str::from_utf8(&body)
                    .ok()
                    .map(|t| t.lines().next().unwrap_or_default().trim().to_string())
            })
            .filter(|m| !m.is_empty());
        let kind = kind_of(status, &reason, detail.as_deref().unwrap_or_default());
        let message = match (reason.is_empty(), detail) {
            (false, Some(detail)) => format!("{reason}: {detail}"),
            (false, None) => format!("{reason} (HTTP {})", status.as_u16()),
            (true, Some(detail)) => format!("HTTP {}: {detail}", status.as_u16()),
            (true, None) => format!("HTTP {}", status.as_u16()),
        };
        Err(StorageError::Remote {
            op,
            target: target.to_string(),
            kind,
            message,
            hints: &HINTS,
        })
    }

    /// A request whose answer is a JSON resource. The answer is read within
    /// the attempt, so an answer that stalls or is cut off midway is retried
    /// like a request that got none.
    pub(super) async fn json<'a, T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        target: &str,
        build: impl Fn() -> Call<'a>,
    ) -> Result<T, StorageError> {
        let activity = Arc::new(Activity::default());
        let budget = budget_of(&build(), &activity);
        self.retry
            .run(target, budget, || async {
                let response = self.send_once(op, target, build(), &activity).await?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| StorageError::Interrupted {
                        target: target.to_string(),
                        message: error_chain(&e.without_url()),
                    })?;
                serde_json::from_slice(&bytes).map_err(|e| StorageError::Transfer {
                    target: target.to_string(),
                    message: format!("unreadable answer: {e}"),
                })
            })
            .await
    }
}

/// How long an attempt of `call` may take: a body is watched piece by piece,
/// server-side work gets longer, anything else is quick.
fn budget_of(call: &Call<'_>, activity: &Arc<Activity>) -> Budget {
    match call.payload {
        Payload::Upload { len, .. } | Payload::Media { len, .. } if len > 0 => {
            Budget::Watched(activity.clone())
        }
        _ if call.server_side => Budget::ServerSide,
        _ => Budget::Quick,
    }
}

/// A credential that could not be had (or used) is a refusal: exit code 4.
fn credentials_error(op: &'static str, target: &str, error: &reqsign_core::Error) -> StorageError {
    StorageError::Remote {
        op,
        target: target.to_string(),
        kind: RemoteErrorKind::Denied,
        message: format!("no usable Google credentials: {error}"),
        hints: &HINTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_from_status_and_reason() {
        use RemoteErrorKind as K;
        assert_eq!(kind_of(StatusCode::UNAUTHORIZED, "", ""), K::Denied);
        assert_eq!(kind_of(StatusCode::FORBIDDEN, "forbidden", ""), K::Denied);
        assert_eq!(
            kind_of(StatusCode::PRECONDITION_FAILED, "conditionNotMet", ""),
            K::PreconditionFailed
        );
        assert_eq!(kind_of(StatusCode::NOT_FOUND, "notFound", ""), K::NotFound);
        assert_eq!(
            kind_of(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Provided MD5 hash \"x\" doesn't match calculated MD5 hash \"y\"."
            ),
            K::ChecksumMismatch
        );
        assert_eq!(
            kind_of(StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded", ""),
            K::Unavailable
        );
        assert_eq!(kind_of(StatusCode::BAD_REQUEST, "invalid", ""), K::Rejected);
    }
}
