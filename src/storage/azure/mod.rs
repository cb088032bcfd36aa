//! Azure Blob Storage: block blobs over the REST API (reqwest), signed by
//! reqsign (Shared Key, SAS, Microsoft Entra ID).
//!
//! One `AzureStorage` is a container and a key prefix. Small files are one Put
//! Blob; large ones a staged object — Put Block (bytes) and Put Block From URL
//! (a byte range of any object the service can read: this account's blobs under
//! a short-lived SAS or bearer token, another store's presigned URL) committed
//! by Put Block List. Azure has no floor on block size, so a delta's parts follow
//! the signature's blocks. Block ids are `STEM` + the part number, base64: one
//! length for every block of a blob, as the service requires, and the stem
//! (the staged upload's id) tells one upload's blocks from another's.

mod blocks;
mod connect;
mod copy;
mod credentials;
mod headers;
mod kind;
mod list;
mod naming;
mod request;
mod staged;
mod store;
mod xml;

use std::sync::Arc;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use self::blocks::{block_id, check_block_list, parse_block_id};
use self::credentials::{Auth, Resolved};
use self::headers::{
    body_sum_headers, check_received_crc64, condition_headers, etag_of, header, http_date_ns,
    md5_header, md5_of_base64, meta_from_pairs, meta_headers, quoted,
};
use self::request::{Call, Header, Payload};
use super::body::{BodyChecksum, BodySource};
use super::meta::ObjectMeta;
use super::object::{
    ByteStream, ChecksumKind, CopyRange, CopySource, Expect, ListPage, ListedObject, ObjectHead,
    ObjectStore, PendingUpload, ReadableUrl, ReadableUrls, RebuildCheck, StagedCopies,
    StagedObjects, StagedPart, StagedUpload, Stitching, StoreId, StoreInfo, StoreLimits,
};
use super::{RemoteErrorKind, StorageError, StoreHints};
use crate::retry::RetryPolicy;
use crate::types::ContentSums;

pub use credentials::{AzureSettings, CredentialsError};
pub use kind::KIND;

/// What to check when Azure refuses a request.
pub(crate) const HINTS: StoreHints = StoreHints {
    credentials: "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or an Entra ID login (`az login`)",
    bucket: "container",
};

const MIB: u64 = 1024 * 1024;

/// Block blob limits: no floor on a block, 4000 MiB per block (staged or
/// copied from a URL), 50,000 committed blocks; 5000 MiB per Put Blob.
/// Enforced here: azurite accepts 50,001 blocks and truncates source ranges
/// past the end of their object.
const LIMITS: StoreLimits = StoreLimits {
    min_part: 1,
    max_part: 4000 * MIB,
    max_parts: 50_000,
    max_single_put: 5000 * MIB,
    max_single_copy: 4000 * MIB,
    stitching: Stitching::Ranges,
    delete_batch: 256,
    // Ranges copied from a URL are checked by MD5 (x-ms-source-content-md5);
    // the service keeps no CRC of a whole blob to report.
    checksums: &[ChecksumKind::Md5],
    // x-ms-content-crc64: Azure Storage's CRC64 is CRC-64/NVME (its SDKs'
    // test vectors agree), sent little-endian.
    body_checksum: Some(ChecksumKind::Crc64Nvme),
    keeps_metadata: true,
    cheap_range_copies: false,
    rebuild_check: RebuildCheck::StoreRefusesMismatch,
};

/// The same with Content-MD5 on every body (`--upload-checksum md5`), for an
/// emulator older than CRC64 support.
const LIMITS_MD5: StoreLimits = StoreLimits {
    body_checksum: Some(ChecksumKind::Md5),
    ..LIMITS
};

/// Deletes in flight at once.
const PARALLEL_DELETES: usize = 16;
/// Blobs per List Blobs page.
const PAGE_SIZE: u32 = 5000;
/// How long a copy source's SAS (or a presigned URL) stays valid: long enough
/// for one Put Block From URL of the largest block.
const COPY_SOURCE_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Characters left as they are in a blob's URL path.
const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Characters left as they are in a query value.
const QUERY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_ESCAPES).to_string()
}

/// A container and a prefix, with a client and signer shared by every clone.
#[derive(Clone)]
pub struct AzureStorage {
    http: crate::storage::rest::HttpClient,
    signer: Arc<reqsign_core::Signer<reqsign_azure_storage::Credential>>,
    resolved: Resolved,
    container: String,
    /// Empty, or ending in `/`.
    prefix: String,
    info: StoreInfo,
    list_page_size: u32,
    access_tier: Option<String>,
    metadata_compat: Option<crate::storage::meta::MetadataCompat>,
}

impl std::fmt::Debug for AzureStorage {
    // The signer holds keys and tokens: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStorage")
            .field("account", &self.resolved.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl AzureStorage {
    /// The access tier a write of `key` asks for: the run's, for files;
    /// none (the account's default) for sidecars and directory markers,
    /// which every plan reads.
    pub(super) fn tier_header(&self, key: &str) -> Option<(Header, String)> {
        let tier = self.access_tier.as_ref()?;
        (!crate::storage::is_sidecar(key.as_bytes()) && !key.ends_with('/'))
            .then(|| ("x-ms-access-tier".into(), tier.clone()))
    }

    pub(super) fn container_url(&self) -> String {
        format!("{}/{}", self.resolved.endpoint, self.container)
    }

    pub(super) fn blob_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.container_url(),
            percent_encoding::utf8_percent_encode(key, PATH_ESCAPES)
        )
    }

    pub(super) fn url_of_key(&self, key: &str) -> String {
        ObjectStore::url_of(self, key)
    }
}
