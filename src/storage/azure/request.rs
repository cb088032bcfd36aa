//! Blob service requests over the shared HTTP layer (`storage::rest`): what
//! is Azure's own — signing (Shared Key, SAS or an Entra ID bearer token, by
//! reqsign), the API version and lengths each request carries, and the
//! service's error codes. Credentials never reach a message: only status,
//! error code and the service's own message do.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use super::{AzureStorage, HINTS};
use crate::storage::body::BodySource;
use crate::storage::rest;
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

/// The kind of a failed request, from its status and the service's code.
fn kind_of(status: StatusCode, code: &str) -> RemoteErrorKind {
    match (status.as_u16(), code) {
        (_, "AuthenticationFailed" | "AuthorizationFailure") => RemoteErrorKind::Denied,
        (409, "BlobAlreadyExists" | "ConditionNotMet" | "TargetConditionNotMet") => {
            RemoteErrorKind::PreconditionFailed
        }
        // The service could not read a copy source (its answer, other than a
        // failed source condition, wrapped in this code).
        (status, "CannotVerifyCopySource") if status != 412 => RemoteErrorKind::SourceUnreachable,
        (_, "Md5Mismatch" | "Crc64Mismatch" | "InvalidMd5") => RemoteErrorKind::ChecksumMismatch,
        (_, "OperationTimedOut" | "ServerBusy") => RemoteErrorKind::Unavailable,
        // 410 is no answer of the Blob service's: a refusal like any other.
        (410, _) => RemoteErrorKind::Rejected,
        _ => rest::kind_of_status(status),
    }
}

#[async_trait::async_trait]
impl rest::Service for AzureStorage {
    async fn sign(
        &self,
        head: &mut http::request::Parts,
        op: &'static str,
        target: &str,
    ) -> Result<(), StorageError> {
        self.signer
            .sign(head, None)
            .await
            .map_err(|e| credentials_error(op, target, &e))
    }

    fn refusal(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (RemoteErrorKind, String) {
        let code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let detail = std::str::from_utf8(body)
            .ok()
            .and_then(|text| super::xml::parse::<super::xml::ErrorBody>(text).ok())
            .and_then(|e| e.message)
            .map(|m| m.lines().next().unwrap_or_default().trim().to_string())
            .filter(|m| !m.is_empty());
        (
            kind_of(status, code),
            rest::refusal_message(status, code, detail),
        )
    }

    fn class_of(
        &self,
        method: &Method,
        url: &str,
        headers: &[(String, String)],
    ) -> crate::storage::requests::RequestClass {
        class_of(method, url, headers)
    }
}

/// The class of a Blob service request: List Blobs is a list; Put Block
/// From URL and Copy Blob copy; other writes put.
fn class_of(
    method: &Method,
    url: &str,
    headers: &[(String, String)],
) -> crate::storage::requests::RequestClass {
    use crate::storage::requests::{RequestClass, query_of};
    let query = query_of(url);
    let copies = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("x-ms-copy-source"));
    match *method {
        Method::DELETE => RequestClass::Delete,
        Method::GET if query.split('&').any(|pair| pair == "comp=list") => RequestClass::List,
        Method::GET | Method::HEAD => RequestClass::Get,
        _ if copies => RequestClass::Copy,
        _ => RequestClass::Put,
    }
}

/// A call as it goes out: the API version, its length, its headers.
impl<'a> rest::Request<'a> for Call<'a> {
    fn outgoing(self) -> rest::Outgoing<'a> {
        let call = self;
        let len = match call.payload {
            Payload::Empty => 0,
            Payload::Text(text) => text.len() as u64,
            Payload::Body { len, .. } => len,
        };
        let mut headers = vec![("x-ms-version".to_string(), API_VERSION.to_string())];
        if call.method == Method::PUT || len > 0 {
            headers.push(("content-length".to_string(), len.to_string()));
        }
        headers.extend(
            call.headers
                .into_iter()
                .map(|(name, value)| (name.into_owned(), value)),
        );
        rest::Outgoing {
            method: call.method,
            url: call.url,
            headers,
            body: match call.payload {
                Payload::Empty => rest::Body::Empty,
                Payload::Text(text) => rest::Body::Text(text.to_string()),
                Payload::Body { source, len } => rest::Body::Stream {
                    source,
                    len,
                    frame: None,
                },
            },
            also_ok: None,
            server_side: call.server_side,
        }
    }
}

/// A credential that could not be had (or used) is a refusal: exit code 4.
fn credentials_error(op: &'static str, target: &str, error: &reqsign_core::Error) -> StorageError {
    StorageError::Remote {
        op,
        target: target.to_string(),
        kind: RemoteErrorKind::Denied,
        message: format!("no usable Azure credentials: {error}"),
        hints: &HINTS,
    }
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

#[cfg(test)]
mod class_tests {
    use super::*;
    use crate::storage::requests::RequestClass;

    #[test]
    fn blob_requests_are_classed_as_billed() {
        let blob = "http://h/acct/ctr/k";
        let none: &[(String, String)] = &[];
        let copy = [("x-ms-copy-source".to_string(), "http://src".to_string())];
        assert_eq!(class_of(&Method::PUT, blob, none), RequestClass::Put);
        assert_eq!(
            class_of(
                &Method::PUT,
                "http://h/acct/ctr/k?comp=block&blockid=x",
                &copy
            ),
            RequestClass::Copy
        );
        assert_eq!(
            class_of(
                &Method::GET,
                "http://h/acct/ctr?restype=container&comp=list",
                none
            ),
            RequestClass::List
        );
        assert_eq!(
            class_of(&Method::GET, "http://h/acct/ctr/k?comp=blocklist", none),
            RequestClass::Get
        );
        assert_eq!(class_of(&Method::HEAD, blob, none), RequestClass::Get);
        assert_eq!(class_of(&Method::DELETE, blob, none), RequestClass::Delete);
    }
}
