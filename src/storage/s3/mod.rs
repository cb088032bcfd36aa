//! Amazon S3 and S3-compatible stores (MinIO, R2, Ceph) through aws-sdk-s3.
//!
//! One `S3Storage` is a bucket and a key prefix; paths below the sync root are
//! keys below the prefix. Operations come in three files: listing (`list`),
//! whole-object calls (`object`), and the multipart family (`multipart`) that
//! server-side stitching is built from. Object metadata (`meta`) carries the POSIX
//! attributes a plain object store does not have.

pub mod etag;
mod kind;
pub use kind::KIND;
mod list;
mod multipart;
mod object;
pub mod providers;
mod read;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use bytes::Bytes;

use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::{
    ByteStream, ChecksumKind, CopyRange, CopySource, Expect, ListPage, ObjectHead, ObjectStore,
    PendingUpload, ReadableUrl, ReadableUrls, RebuildCheck, StagedCopies, StagedObjects,
    StagedPart, StagedUpload, Stitching, StoreId, StoreInfo, StoreLimits,
};
use super::{RemoteErrorKind, StorageError, StoreHints, error_chain};
use crate::retry::RetryPolicy;
use crate::types::ContentSums;

/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What to check when S3 refuses a request.
const HINTS: StoreHints = StoreHints {
    credentials: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile, or `aws sso login`",
    bucket: "bucket",
};

/// S3's multipart rules: 5 MiB floor but for the last part, 5 GiB per part and
/// per copied range, 10,000 parts; 5 GiB per PutObject and CopyObject.
const LIMITS: StoreLimits = StoreLimits {
    min_part: 5 * 1024 * 1024,
    max_part: 5 * 1024 * 1024 * 1024,
    max_parts: 10_000,
    max_single_put: 5 * 1024 * 1024 * 1024,
    max_single_copy: 5 * 1024 * 1024 * 1024,
    stitching: Stitching::Ranges,
    delete_batch: 1000,
    checksums: &[ChecksumKind::Md5],
    keeps_metadata: true,
    cheap_range_copies: false,
    rebuild_check: RebuildCheck::ComparedBeforeCommit,
};

impl Expect<'_> {
    pub(crate) fn if_match(self) -> Option<String> {
        match self {
            Expect::Version(etag) => Some(etag.to_string()),
            _ => None,
        }
    }

    pub(crate) fn if_none_match(self) -> Option<String> {
        (self == Expect::Absent).then(|| "*".to_string())
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
    /// Keys per listing page (`None`: S3's most, 1000). Smaller pages only
    /// make tests of paging cheap.
    pub list_page_size: Option<u32>,
    /// The storage class files are written in (`--storage-class`, S3's
    /// spelling); sidecars and directory markers stay STANDARD.
    pub storage_class: Option<String>,
}

/// A bucket and a prefix, with a client shared by every clone.
#[derive(Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    retry: RetryPolicy,
    info: StoreInfo,
    list_page_size: Option<u32>,
    storage_class: Option<String>,
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
    pub async fn connect(
        settings: &S3Settings,
        retry: &RetryPolicy,
        bucket: &str,
        prefix: &str,
    ) -> S3Storage {
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
                    .connect_timeout(retry.stall_timeout.min(CONNECT_TIMEOUT))
                    .build(),
            );
        if shared.region().is_none() {
            // S3-compatible stores rarely care; AWS itself redirects.
            config = config.region(Region::new("us-east-1"));
        }
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        S3Storage {
            client: Client::from_conf(config.build()),
            retry: retry.clone(),
            list_page_size: settings.list_page_size,
            storage_class: settings.storage_class.clone(),
            info: StoreInfo {
                kind: &KIND,
                bucket: bucket.to_string(),
                prefix: prefix.clone(),
                id: StoreId {
                    // The endpoint URL, or `aws`.
                    endpoint: settings
                        .endpoint_url
                        .clone()
                        .unwrap_or_else(|| "aws".into()),
                    bucket: bucket.to_string(),
                },
                limits: &LIMITS,
                retry: retry.clone(),
                hints: &HINTS,
                page_size: settings.list_page_size.unwrap_or(1000),
            },
            bucket: bucket.to_string(),
            prefix,
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The storage class a write of `key` asks for: the run's, for files;
    /// none (STANDARD) for sidecars and directory markers, which every plan
    /// reads.
    fn class_of(&self, key: &str) -> Option<aws_sdk_s3::types::StorageClass> {
        let class = self.storage_class.as_deref()?;
        (!crate::storage::is_sidecar(key.as_bytes()) && !key.ends_with('/'))
            .then(|| aws_sdk_s3::types::StorageClass::from(class))
    }

    /// The bucket of `source` when it is on the same S3 service as this
    /// store, which CopyObject and UploadPartCopy can read from.
    fn same_service<'a>(&self, source: &'a dyn ObjectStore) -> Option<&'a str> {
        let info = source.info();
        (info.kind.scheme == self.info.kind.scheme && info.id.endpoint == self.info.id.endpoint)
            .then_some(info.bucket.as_str())
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Storage {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        Some(self)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        Some(self)
    }

    fn readable_urls(&self) -> Option<&dyn ReadableUrls> {
        Some(self)
    }

    async fn list_page(&self, token: Option<String>) -> Result<ListPage, StorageError> {
        self.list_objects(token).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.head_object(key).await
    }

    /// The HEAD's checksums, and for a multipart object with neither an MD5
    /// nor a CRC64NVME its ETag with the first part's size (one more HEAD),
    /// so that bytes cut as its parts were can be checked against it.
    async fn content_sums(&self, key: &str) -> Result<Option<ContentSums>, StorageError> {
        let Some(head) = self.head_object(key).await? else {
            return Ok(None);
        };
        let mut sums = super::object::with_recorded_blake3(head.sums, Some(&head.meta));
        if sums.md5.is_none()
            && sums.crc64nvme.is_none()
            && let Some(version) = head.version.as_deref()
            && let Some((md5_of_parts, parts)) = etag::multipart_digest(version)
            && let Some(first_part) = self.part_size(key, 1, version).await?
        {
            sums.multipart = Some(crate::types::MultipartEtag {
                md5_of_parts,
                parts,
                first_part,
            });
        }
        Ok(Some(sums))
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        self.get_object(key, range, version).await
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.put_object(key, body, len, meta, md5, expect).await
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        self.same_service(source).is_some()
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let from = self.copy_source_of(source)?;
        self.copy_whole(&from, source.version, key, meta, expect)
            .await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        // S3 rewrites metadata by copying the object onto itself.
        let version = match expect {
            Expect::Version(version) => Some(version),
            _ => None,
        };
        self.copy_whole(
            &object::copy_source(&self.bucket, key),
            version,
            key,
            Some(meta),
            expect,
        )
        .await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        self.delete_objects(keys).await
    }
}

#[async_trait::async_trait]
impl StagedObjects for S3Storage {
    async fn begin_staged(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        self.create_multipart(key, meta).await
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        body: BodySource<'_>,
        len: u64,
        md5: Option<[u8; 16]>,
    ) -> Result<StagedPart, StorageError> {
        self.upload_part(upload, number, body, len, md5).await
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        self.list_parts(upload).await
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        _meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        // The metadata went with CreateMultipartUpload.
        self.complete_multipart(upload, parts, expect).await
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        self.abort_multipart(upload).await
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        self.list_multipart_uploads().await
    }
}

#[async_trait::async_trait]
impl StagedCopies for S3Storage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        let from = self.copy_source_of(source)?;
        self.upload_part_copy(upload, number, &from, source.version, range)
            .await
    }
}

#[async_trait::async_trait]
impl ReadableUrls for S3Storage {
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError> {
        self.presigned_get(key, ttl).await.map(Some)
    }
}

impl S3Storage {
    /// The `x-amz-copy-source` of an object on this service.
    fn copy_source_of(&self, source: CopySource<'_>) -> Result<String, StorageError> {
        let bucket = self
            .same_service(source.store)
            .ok_or_else(|| StorageError::Transfer {
                target: source.store.url_of(source.key),
                message: "S3 copies server-side only from buckets of the same service".into(),
            })?;
        Ok(object::copy_source(bucket, source.key))
    }

    /// PUTs bytes held in memory (sidecars, small objects), with Content-MD5.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let md5 = etag::md5(&bytes);
        let len = bytes.len() as u64;
        self.put_object(
            key,
            BodySource::Memory(&bytes),
            len,
            meta,
            Some(md5),
            expect,
        )
        .await
    }
}

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
