//! Amazon S3 and S3-compatible stores (MinIO, R2, Ceph) through aws-sdk-s3.
//!
//! One `S3Storage` is a bucket and a key prefix; paths below the sync root are
//! keys below the prefix. Operations come in three files: listing (`list`),
//! whole-object calls (`object`), and the multipart family (`multipart`) that
//! server-side stitching is built from. Object metadata (`meta`) carries the POSIX
//! attributes a plain object store does not have.

mod body;
pub mod etag;
mod list;
pub mod meta;
pub mod multipart;
mod object;
mod read;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::StorageError;
use crate::retry::RetryPolicy;
use crate::types::RelPath;

pub use body::BodySource;
pub use meta::ObjectMeta;
pub use multipart::{CompletedPart, MultipartUpload};
pub use object::ObjectHead;

/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Suffix of the signature sidecar kept next to an object (`KEY.hssig`). Keys
/// ending so are HugeSync's bookkeeping, never user files.
pub const SIDECAR_SUFFIX: &str = ".hssig";

/// Whether a relative path names a sidecar rather than a user file.
pub fn is_sidecar(path: &[u8]) -> bool {
    path.ends_with(SIDECAR_SUFFIX.as_bytes())
}

/// What must be at a key for a write to go ahead: the guard against replacing
/// an object that someone else changed (or created) since the plan was made.
/// Sent as `If-Match` / `If-None-Match: *`, which S3 honours on PutObject,
/// CopyObject and CompleteMultipartUpload; callers that complete uploads also
/// look once more first, for servers that ignore the headers there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect<'a> {
    /// Whatever is there (sidecars, which follow their object).
    Any,
    /// No object: the plan saw none.
    Absent,
    /// The object with this ETag: the one the plan saw.
    ETag(&'a str),
}

impl Expect<'_> {
    pub(crate) fn if_match(self) -> Option<String> {
        match self {
            Expect::ETag(etag) => Some(etag.to_string()),
            _ => None,
        }
    }

    pub(crate) fn if_none_match(self) -> Option<String> {
        (self == Expect::Absent).then(|| "*".to_string())
    }

    /// Whether a HEAD's answer (`None`: no object) meets the expectation.
    pub fn holds_for(self, found: Option<&ObjectHead>) -> bool {
        match (self, found) {
            (Expect::Any, _) | (Expect::Absent, None) => true,
            (Expect::ETag(etag), Some(head)) => head
                .etag
                .as_deref()
                .is_some_and(|e| etag::same_etag(e, etag)),
            _ => false,
        }
    }
}

/// How to reach S3: aws-cli's settings, from flags, env or config.toml. Anything
/// unset falls back to the SDK's own chain (AWS_* variables, ~/.aws, SSO, IMDS).
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub path_style: bool,
    /// Retries and stall detection for every request.
    pub retry: RetryPolicy,
}

/// A bucket and a prefix, with a client shared by every clone.
#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    retry: RetryPolicy,
    /// The endpoint URL, or `aws`: which store this is, for resume state.
    endpoint: String,
}

impl std::fmt::Debug for S3Storage {
    // The client's configuration holds credentials providers: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Builds a client from the settings and the SDK's configuration chain. No
    /// request is made yet: credentials are resolved on first use.
    pub async fn connect(settings: &S3Settings, bucket: &str, prefix: &str) -> S3Storage {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            // Checksums only where S3 demands them (DeleteObjects): integrity is
            // checked end to end by size and ETag, and by blake3 for delta
            // transfers, without a CRC pass over every byte sent or received.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Our retry layer is the only one (see `crate::retry`), and it times
            // attempts itself: the SDK's read timeout would cover the whole
            // upload of a body, cutting slow parts off.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.retry.stall_timeout.min(CONNECT_TIMEOUT))
                    .build(),
            );
        if shared.region().is_none() {
            // S3-compatible stores rarely care; AWS itself redirects.
            config = config.region(Region::new("us-east-1"));
        }
        let prefix = prefix.trim_matches('/');
        S3Storage {
            client: Client::from_conf(config.build()),
            retry: settings.retry.clone(),
            endpoint: settings
                .endpoint_url
                .clone()
                .unwrap_or_else(|| "aws".into()),
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The prefix without its trailing `/`.
    pub fn prefix(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// The key of a path below the root. Paths are UTF-8 by the time they reach
    /// S3 (local names that are not are refused before, per file).
    pub fn key_of(&self, path: &RelPath) -> String {
        format!(
            "{}{}",
            self.prefix,
            String::from_utf8_lossy(path.as_bytes())
        )
    }

    /// The sidecar key of a path.
    pub fn sidecar_key_of(&self, path: &RelPath) -> String {
        format!("{}{SIDECAR_SUFFIX}", self.key_of(path))
    }

    /// `s3://bucket/key`, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The endpoint URL, or `aws` for AWS itself.
    pub fn endpoint_id(&self) -> &str {
        &self.endpoint
    }

    /// The retry policy of this store's requests (with its count of retries).
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
}

/// What went wrong with a request, as far as a caller needs to tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// Missing, wrong or expired credentials, or access denied (403).
    Denied,
    /// No such bucket or key (404).
    NotFound,
    /// A conditional request's condition failed (412): someone else wrote.
    PreconditionFailed,
    /// Throttled (503 SlowDown, 429) or a server error (5xx).
    Unavailable,
    /// The request never got an answer (connection refused, reset, timeout).
    Network,
    /// The request was refused as malformed or invalid (4xx).
    Rejected,
}

impl RemoteErrorKind {
    fn of(status: Option<u16>, code: Option<&str>) -> Self {
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
            (None, _) => RemoteErrorKind::Network,
            _ => RemoteErrorKind::Rejected,
        }
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
        _ => RemoteErrorKind::of(status, code.as_deref()),
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
    }
}

/// The error and its sources, one after the other (no debug dumps: they can be
/// long, and must never risk printing secrets).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
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
        assert_eq!(K::of(Some(403), Some("InvalidAccessKeyId")), K::Denied);
        assert_eq!(K::of(Some(400), Some("ExpiredToken")), K::Denied);
        assert_eq!(K::of(Some(404), None), K::NotFound);
        assert_eq!(K::of(Some(412), None), K::PreconditionFailed);
        assert_eq!(K::of(Some(503), Some("SlowDown")), K::Unavailable);
        assert_eq!(K::of(Some(400), Some("InvalidRequest")), K::Rejected);
        assert_eq!(K::of(None, None), K::Network);
    }

    #[test]
    fn sidecars_are_recognised() {
        assert!(is_sidecar(b"a/b.bin.hssig"));
        assert!(!is_sidecar(b"a/b.bin"));
    }
}
