//! S3's error codes, and SDK errors turned into [`StorageError`]s.

use super::*;

/// The kind of an S3 error, from its status and code.
fn kind_of(status: Option<u16>, code: Option<&str>) -> RemoteErrorKind {
    match (status, code) {
        (
            _,
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "AccessDenied"
                | "ExpiredToken"
                | "InvalidToken"
                | "AuthorizationHeaderMalformed",
            ),
        )
        | (Some(401 | 403), _) => RemoteErrorKind::Denied,
        (_, Some("NoSuchBucket" | "NoSuchKey" | "NoSuchUpload")) | (Some(404), _) => {
            RemoteErrorKind::NotFound
        }
        (Some(412), _) | (_, Some("PreconditionFailed")) => RemoteErrorKind::PreconditionFailed,
        (Some(429 | 500..=599), _)
        | (
            _,
            Some(
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"
                | "IncompleteBody",
            ),
        ) => RemoteErrorKind::Unavailable,
        (_, Some("BadDigest" | "InvalidDigest")) => RemoteErrorKind::ChecksumMismatch,
        (None, _) => RemoteErrorKind::Network,
        _ => RemoteErrorKind::Rejected,
    }
}

/// Turns an SDK error into a [`StorageError`] naming the operation and object.
pub(crate) fn remote_error<E, R>(
    op: &'static str,
    target: String,
    err: SdkError<E, R>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let status = err.raw_response().map(HttpStatus::status_code);
    let code = err.code().map(str::to_string);
    let chain = error_chain(&err);
    let kind = match &err {
        // Credentials are resolved while the request is dispatched: their
        // failure looks like a network error but is not one.
        _ if chain.contains("credentials") => RemoteErrorKind::Denied,
        SdkError::ConstructionFailure(_) => RemoteErrorKind::Rejected,
        // No answer, or one cut off before it could be read whole.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            RemoteErrorKind::Network
        }
        _ => kind_of(status, code.as_deref()),
    };
    let detail = err.message().filter(|m| !m.is_empty());
    let message = match (&code, detail) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => match status {
            Some(status) => format!("{code} (HTTP {status})"),
            None => code.clone(),
        },
        _ => match status {
            Some(status) => format!("HTTP {status}"),
            None => chain,
        },
    };
    StorageError::Remote {
        op,
        target,
        kind,
        message,
        hints: &HINTS,
    }
}

/// The HTTP status of a raw response, whatever the SDK's response type.
pub(crate) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_from_status_and_code() {
        use RemoteErrorKind as K;
        assert_eq!(kind_of(Some(403), Some("InvalidAccessKeyId")), K::Denied);
        assert_eq!(kind_of(Some(400), Some("ExpiredToken")), K::Denied);
        assert_eq!(kind_of(Some(404), None), K::NotFound);
        assert_eq!(kind_of(Some(412), None), K::PreconditionFailed);
        assert_eq!(kind_of(Some(503), Some("SlowDown")), K::Unavailable);
        assert_eq!(kind_of(Some(400), Some("InvalidRequest")), K::Rejected);
        assert_eq!(kind_of(None, None), K::Network);
    }
}
