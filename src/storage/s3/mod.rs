//! Amazon S3 and S3-compatible stores (MinIO, R2, Ceph) through aws-sdk-s3.
//!
//! One `S3Storage` is a bucket and a key prefix; paths below the sync root are
//! keys below the prefix. One file per job: building the client (`connect`),
//! the trait impls that route to the rest (`store`), listing (`list`),
//! ranged reads (`read`), whole-object calls (`object`), the multipart family
//! (`multipart`) that server-side stitching is built from, and the error
//! table (`errors`). Object metadata (`meta`) carries the POSIX
//! attributes a plain object store does not have.

mod connect;
mod errors;
pub mod etag;
mod kind;
pub use kind::KIND;
mod list;
mod multipart;
mod object;
pub mod providers;
mod read;
mod store;

pub(crate) use errors::remote_error;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use bytes::Bytes;

use super::body::{BodyChecksum, BodySource};
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
/// per copied range, 10,000 parts; 5 GiB per PutObject and CopyObject. Bodies
/// carry their CRC64NVME; copies are checked by their MD5 ETags.
const LIMITS: StoreLimits = StoreLimits {
    checksums: &[ChecksumKind::Crc64Nvme, ChecksumKind::Md5],
    body_checksum: Some(ChecksumKind::Crc64Nvme),
    ..LIMITS_MD5
};

/// The same for a service that lacks the newer checksums: bodies carry
/// Content-MD5.
const LIMITS_MD5: StoreLimits = StoreLimits {
    min_part: 5 * 1024 * 1024,
    max_part: 5 * 1024 * 1024 * 1024,
    max_parts: 10_000,
    max_single_put: 5 * 1024 * 1024 * 1024,
    max_single_copy: 5 * 1024 * 1024 * 1024,
    stitching: Stitching::Ranges,
    delete_batch: 1000,
    checksums: &[ChecksumKind::Md5],
    body_checksum: Some(ChecksumKind::Md5),
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
    /// The checksum every uploaded body carries.
    pub body_checksum: BodyChecksum,
    /// Another tool's metadata keys written too (`--metadata-compat`).
    pub metadata_compat: Option<crate::storage::meta::MetadataCompat>,
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
    metadata_compat: Option<crate::storage::meta::MetadataCompat>,
}

impl S3Storage {
    /// What a write's metadata headers say: HugeSync's keys, and another
    /// tool's where `--metadata-compat` asks (rclone's `mtime` as seconds).
    pub(super) fn meta_headers(
        &self,
        meta: &ObjectMeta,
    ) -> std::collections::HashMap<String, String> {
        meta.to_headers_for(
            self.metadata_compat,
            crate::storage::meta::CompatTime::Seconds,
        )
    }
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

#[cfg(test)]
mod body_checksum_tests {
    use crate::storage::body::BodyChecksum;

    #[test]
    fn upload_checksums_are_named_as_the_setting_takes_them() {
        for kind in [BodyChecksum::Crc64Nvme, BodyChecksum::Md5] {
            assert_eq!(BodyChecksum::parse(kind.name()), Some(kind));
        }
        assert_eq!(
            BodyChecksum::parse(" CRC64NVME "),
            Some(BodyChecksum::Crc64Nvme)
        );
        assert_eq!(BodyChecksum::parse("sha1"), None);
        assert_eq!(BodyChecksum::default(), BodyChecksum::Crc64Nvme);
        let md5_providers: Vec<_> = super::providers::PROVIDERS
            .iter()
            .filter(|p| p.upload_checksum == BodyChecksum::Md5)
            .map(|p| p.name)
            .collect();
        assert!(!md5_providers.contains(&"aws") && md5_providers.contains(&"b2"));
    }
}
