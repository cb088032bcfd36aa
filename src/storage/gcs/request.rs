//! JSON API requests over the shared HTTP layer (`storage::rest`): what is
//! GCS's own — authorisation (a bearer token from Application Default
//! Credentials, or nothing for an emulator), the multipart upload's framing,
//! and the service's error reasons. Tokens never reach a message: only the
//! status, the error's reason and the service's own message do.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use super::credentials::Auth;
use super::{GcsStorage, HINTS, json};
use crate::storage::body::BodySource;
pub(super) use crate::storage::error_chain;
use crate::storage::rest;
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

/// The kind of a failed request, from its status and the service's reason.
pub(super) fn kind_of(status: StatusCode, reason: &str, message: &str) -> RemoteErrorKind {
    match (status.as_u16(), reason) {
        (401 | 403, _) => RemoteErrorKind::Denied,
        (_, "conditionNotMet") => RemoteErrorKind::PreconditionFailed,
        (400, _) if message.contains("doesn't match calculated") => {
            RemoteErrorKind::ChecksumMismatch
        }
        (_, "rateLimitExceeded" | "backendError") => RemoteErrorKind::Unavailable,
        // 410: an upload session that ended or expired.
        _ => rest::kind_of_status(status),
    }
}

#[async_trait::async_trait]
impl rest::Service for GcsStorage {
    async fn sign(
        &self,
        head: &mut http::request::Parts,
        op: &'static str,
        target: &str,
    ) -> Result<(), StorageError> {
        match (self.resolved.auth, &self.signer) {
            (Auth::Adc, Some(signer)) => signer
                .sign(head, None)
                .await
                .map_err(|e| credentials_error(op, target, &e)),
            _ => Ok(()),
        }
    }

    fn refusal(
        &self,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> (RemoteErrorKind, String) {
        let error = serde_json::from_slice::<json::ErrorBody>(body).ok();
        let reason = error
            .as_ref()
            .and_then(|e| e.error.errors.iter().find_map(|i| i.reason.clone()))
            .unwrap_or_default();
        let detail = error
            .and_then(|e| e.error.message)
            .or_else(|| {
                // Emulators answer some errors in plain text.
                std::str::from_utf8(body)
                    .ok()
                    .map(|t| t.lines().next().unwrap_or_default().trim().to_string())
            })
            .filter(|m| !m.is_empty());
        let kind = kind_of(status, &reason, detail.as_deref().unwrap_or_default());
        (kind, rest::refusal_message(status, &reason, detail))
    }

    fn class_of(
        &self,
        method: &Method,
        url: &str,
        _headers: &[(String, String)],
    ) -> crate::storage::requests::RequestClass {
        class_of(method, url)
    }
}

/// The class of a JSON API request: listing objects is a GET of `…/o`;
/// rewrite and compose copy server-side; other writes put.
fn class_of(method: &Method, url: &str) -> crate::storage::requests::RequestClass {
    use crate::storage::requests::{RequestClass, path_of};
    let path = path_of(url);
    match *method {
        Method::DELETE => RequestClass::Delete,
        Method::GET if path.ends_with("/o") => RequestClass::List,
        Method::GET | Method::HEAD => RequestClass::Get,
        _ if path.contains("/rewriteTo/") || path.ends_with("/compose") => RequestClass::Copy,
        _ => RequestClass::Put,
    }
}

/// A call as it goes out: its length and content type, its headers.
impl<'a> rest::Request<'a> for Call<'a> {
    fn outgoing(self) -> rest::Outgoing<'a> {
        let call = self;
        let mut headers: Vec<(String, String)> = call
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        let mut head = |name: &str, value: String| headers.push((name.to_string(), value));
        let body = match call.payload {
            Payload::Empty => {
                if call.method == Method::POST || call.method == Method::PUT {
                    head("content-length", "0".into());
                }
                rest::Body::Empty
            }
            Payload::Json(text) => {
                head("content-type", "application/json".into());
                head("content-length", text.len().to_string());
                rest::Body::Text(text.to_string())
            }
            Payload::Media { source, len } => {
                head("content-type", super::CONTENT_TYPE.into());
                head("content-length", len.to_string());
                rest::Body::Stream {
                    source,
                    len,
                    frame: None,
                }
            }
            Payload::Upload {
                resource,
                source,
                len,
            } => {
                let front = format!(
                    "--{BOUNDARY}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{resource}\r\n--{BOUNDARY}\r\ncontent-type: application/octet-stream\r\n\r\n"
                );
                let back = format!("\r\n--{BOUNDARY}--\r\n");
                head(
                    "content-type",
                    format!("multipart/related; boundary={BOUNDARY}"),
                );
                let total = front.len() as u64 + len + back.len() as u64;
                head("content-length", total.to_string());
                rest::Body::Stream {
                    source,
                    len,
                    frame: Some((Bytes::from(front), Bytes::from(back))),
                }
            }
        };
        rest::Outgoing {
            method: call.method,
            url: call.url,
            headers,
            body,
            // A piece of a resumable upload: 308 ("go on") is an answer.
            also_ok: call.resumable.then_some(308),
            server_side: call.server_side,
        }
    }
}

impl GcsStorage {
    /// A request whose answer is a JSON resource, read within the attempt:
    /// an answer that stalls or is cut off midway is retried like a request
    /// that got none.
    pub(super) async fn json<'a, T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        target: &str,
        build: impl Fn() -> Call<'a>,
    ) -> Result<T, StorageError> {
        let bytes = self.http.answer(self, op, target, build).await?;
        serde_json::from_slice(&bytes).map_err(|e| StorageError::Transfer {
            target: target.to_string(),
            message: format!("unreadable answer: {e}"),
        })
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

#[cfg(test)]
mod class_tests {
    use super::*;
    use crate::storage::requests::RequestClass;

    #[test]
    fn json_api_requests_are_classed_as_billed() {
        let api = "http://h/storage/v1/b/bkt/o";
        assert_eq!(
            class_of(&Method::GET, &format!("{api}?prefix=a")),
            RequestClass::List
        );
        assert_eq!(
            class_of(&Method::GET, &format!("{api}/k?alt=media")),
            RequestClass::Get
        );
        assert_eq!(
            class_of(
                &Method::POST,
                "http://h/upload/storage/v1/b/bkt/o?uploadType=media"
            ),
            RequestClass::Put
        );
        assert_eq!(
            class_of(&Method::POST, &format!("{api}/k/compose")),
            RequestClass::Copy
        );
        assert_eq!(
            class_of(&Method::POST, &format!("{api}/a/rewriteTo/b/bkt/o/b")),
            RequestClass::Copy
        );
        assert_eq!(
            class_of(&Method::DELETE, &format!("{api}/k")),
            RequestClass::Delete
        );
    }
}
