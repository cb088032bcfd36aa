//! Sending one Blob service request: signed (Shared Key, SAS or an Entra ID
//! bearer token, by reqsign), retried within the store's policy, with errors
//! turned into [`StorageError`]s in the store's terms. Credentials never reach
//! a message: only status, error code and the service's own message do.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use super::{AzureStorage, HINTS};
use crate::retry::{Activity, Budget};
use crate::storage::body::BodySource;
pub(super) use crate::storage::error_chain;
use crate::storage::{RemoteErrorKind, StorageError};

/// The REST API version every request asks for.
pub(super) const API_VERSION: &str = "2024-08-04";

/// What a request sends.
#[derive(Clone, Copy)]
pub(super) enum Payload<'a> {
    Empty,
    Text(&'a str),
    Body { source: BodySource<'a>, len: u64 },
}

/// A header name: most are fixed, metadata names are made per field.
pub(super) type Header = std::borrow::Cow<'static, str>;

/// One request, built afresh for every attempt.
pub(super) struct Call<'a> {
    pub method: Method,
    /// The full URL, query included (a SAS token is added when signing).
    pub url: String,
    pub headers: Vec<(Header, String)>,
    pub payload: Payload<'a>,
    /// The service does the work before it answers (a copy from a URL, a
    /// commit): allowed the longer server-side budget.
    pub server_side: bool,
}

fn invalid(target: &str, message: impl std::fmt::Display) -> StorageError {
    StorageError::Transfer {
        target: target.to_string(),
        message: message.to_string(),
    }
}

/// The kind of a failed request, from its status and the service's code.
fn kind_of(status: StatusCode, code: &str) -> RemoteErrorKind {
    match (status.as_u16(), code) {
        (401 | 403, _) | (_, "AuthenticationFailed" | "AuthorizationFailure") => {
            RemoteErrorKind::Denied
        }
        (412, _) | (409, "BlobAlreadyExists" | "ConditionNotMet" | "TargetConditionNotMet") => {
            RemoteErrorKind::PreconditionFailed
        }
        // The service could not read a copy source (its answer, other than a
        // failed source condition, wrapped in this code).
        (_, "CannotVerifyCopySource") => RemoteErrorKind::SourceUnreachable,
        (_, "Md5Mismatch" | "Crc64Mismatch" | "InvalidMd5") => RemoteErrorKind::ChecksumMismatch,
        (404, _) => RemoteErrorKind::NotFound,
        (408 | 429 | 500..=599, _) | (_, "OperationTimedOut" | "ServerBusy") => {
            RemoteErrorKind::Unavailable
        }
        _ => RemoteErrorKind::Rejected,
    }
}

impl AzureStorage {
    /// Sends the call `build` makes, retried within `budget`; a non-success
    /// status is an error naming `op` and `target`.
    pub(super) async fn send<'a>(
        &self,
        op: &'static str,
        target: &str,
        build: impl Fn() -> Call<'a>,
    ) -> Result<Response, StorageError> {
        let activity = Arc::new(Activity::default());
        let call = build();
        let budget = match call.payload {
            Payload::Body { len, .. } if len > 0 => Budget::Watched(activity.clone()),
            _ if call.server_side => Budget::ServerSide,
            _ => Budget::Quick,
        };
        self.retry
            .run(target, budget, || {
                self.send_once(op, target, build(), &activity)
            })
            .await
    }

    /// One attempt: signs, sends, and checks the status.
    pub(super) async fn send_once(
        &self,
        op: &'static str,
        target: &str,
        call: Call<'_>,
        activity: &Arc<Activity>,
    ) -> Result<Response, StorageError> {
        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str| -> Result<(), StorageError> {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(target, e))?;
            let value = HeaderValue::from_str(value).map_err(|e| invalid(target, e))?;
            headers.insert(name, value);
            Ok(())
        };
        put("x-ms-version", API_VERSION)?;
        let len = match call.payload {
            Payload::Empty => 0,
            Payload::Text(text) => text.len() as u64,
            Payload::Body { len, .. } => len,
        };
        if call.method == Method::PUT || len > 0 {
            put("content-length", &len.to_string())?;
        }
        for (name, value) in &call.headers {
            put(name, value)?;
        }
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(&call.url)
            .body(())
            .map_err(|e| invalid(target, e))?;
        *request.headers_mut() = headers;
        let (mut parts, ()) = request.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| self.credentials_error(op, target, &e))?;
        let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|e| invalid(target, e))?;
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        *request.body_mut() = match call.payload {
            Payload::Empty => None,
            Payload::Text(text) => Some(reqwest::Body::from(text.to_string())),
            Payload::Body { source, len } => {
                Some(reqwest::Body::wrap(source.open(len, activity).await?))
            }
        };
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| crate::storage::http_error(op, target, e, &HINTS))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.bytes().await.unwrap_or_default();
        let detail = std::str::from_utf8(&body)
            .ok()
            .and_then(|text| super::xml::parse::<super::xml::ErrorBody>(text).ok())
            .and_then(|e| e.message)
            .map(|m| m.lines().next().unwrap_or_default().trim().to_string())
            .filter(|m| !m.is_empty());
        let message = match (code.is_empty(), detail) {
            (false, Some(detail)) => format!("{code}: {detail}"),
            (false, None) => format!("{code} (HTTP {})", status.as_u16()),
            (true, Some(detail)) => format!("HTTP {}: {detail}", status.as_u16()),
            (true, None) => format!("HTTP {}", status.as_u16()),
        };
        Err(StorageError::Remote {
            op,
            target: target.to_string(),
            kind: kind_of(status, &code),
            message,
            hints: &HINTS,
        })
    }

    /// A credential that could not be had (or used) is a refusal: exit code 4.
    fn credentials_error(
        &self,
        op: &'static str,
        target: &str,
        error: &reqsign_core::Error,
    ) -> StorageError {
        StorageError::Remote {
            op,
            target: target.to_string(),
            kind: RemoteErrorKind::Denied,
            message: format!("no usable Azure credentials: {error}"),
            hints: &HINTS,
        }
    }
}

/// A response body read whole (small answers: listings, block lists).
pub(super) async fn body_text(response: Response, target: &str) -> Result<String, StorageError> {
    let bytes: Bytes = response
        .bytes()
        .await
        .map_err(|e| StorageError::Interrupted {
            target: target.to_string(),
            message: error_chain(&e.without_url()),
        })?;
    String::from_utf8(bytes.to_vec()).map_err(|e| invalid(target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_from_status_and_code() {
        use RemoteErrorKind as K;
        assert_eq!(
            kind_of(StatusCode::FORBIDDEN, "AuthenticationFailed"),
            K::Denied
        );
        assert_eq!(
            kind_of(StatusCode::PRECONDITION_FAILED, ""),
            K::PreconditionFailed
        );
        assert_eq!(
            kind_of(StatusCode::CONFLICT, "BlobAlreadyExists"),
            K::PreconditionFailed
        );
        assert_eq!(kind_of(StatusCode::CONFLICT, "LeaseIdMissing"), K::Rejected);
        assert_eq!(
            kind_of(StatusCode::NOT_FOUND, "CannotVerifyCopySource"),
            K::SourceUnreachable
        );
        assert_eq!(
            kind_of(StatusCode::PRECONDITION_FAILED, "CannotVerifyCopySource"),
            K::PreconditionFailed
        );
        assert_eq!(kind_of(StatusCode::NOT_FOUND, "BlobNotFound"), K::NotFound);
        assert_eq!(
            kind_of(StatusCode::SERVICE_UNAVAILABLE, "ServerBusy"),
            K::Unavailable
        );
        assert_eq!(
            kind_of(StatusCode::BAD_REQUEST, "InvalidBlockList"),
            K::Rejected
        );
    }
}
