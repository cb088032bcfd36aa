//! Google Cloud Storage over the JSON API (reqwest), authorised by reqsign
//! with Application Default Credentials (or nothing, for an emulator).
//!
//! One `GcsStorage` is a bucket and a key prefix. Small files are one
//! multipart upload (resource and bytes in one request, MD5 checked by the
//! service). Large ones are parallel composite uploads: parts go up at once as
//! temporary objects (`staging`), are composed into the object — in a tree
//! when there are more than 32 — and removed. Compose joins whole objects
//! only, so a delta cannot reuse a range of the old object: the store says so
//! in its limits (`Stitching::WholeObjects`) and the planner sends such files
//! whole. Versions are generations: `ifGenerationMatch` guards every write
//! (`0`: the object must not exist) and pins every read.

mod chunks;
mod compose;
mod connect;
mod copy;
mod credentials;
mod json;
mod kind;
mod list;
mod naming;
mod object;
mod request;
mod staging;
mod store;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use self::credentials::{Auth, Resolved};
use self::request::{Call, Payload};
use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::{
    ByteStream, ChecksumKind, CopyRange, CopySource, Expect, KeptChunk, KeptChunks, ListPage,
    ListedObject, ObjectHead, ObjectStore, PendingUpload, ReadableUrl, ReadableUrls, RebuildCheck,
    StagedCopies, StagedObjects, StagedPart, StagedUpload, Stitching, StoreId, StoreInfo,
    StoreLimits, UploadStreams,
};
use super::{RemoteErrorKind, StorageError, StoreHints};
use crate::retry::RetryPolicy;
use crate::types::ContentSums;

pub use credentials::GcsSettings;
pub use kind::KIND;

/// What to check when GCS refuses a request.
pub(crate) const HINTS: StoreHints = StoreHints {
    credentials: "GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the metadata server on GCE/GKE; STORAGE_EMULATOR_HOST for an emulator",
    bucket: "bucket",
};

const TIB: u64 = 1024 * 1024 * 1024 * 1024;

/// Objects up to 5 TiB; compose takes 1–32 whole objects of one bucket per
/// call. The count of parts is ours (a compose tree has no limit of its own):
/// it keeps parts of a 5 TiB file at 512 MiB or less.
const LIMITS: StoreLimits = StoreLimits {
    min_part: 1,
    max_part: 5 * TIB,
    max_parts: 10_000,
    max_single_put: 5 * TIB,
    max_single_copy: 5 * TIB,
    stitching: Stitching::WholeObjects {
        sources: COMPOSE_SOURCES,
    },
    delete_batch: 100,
    checksums: &[ChecksumKind::Md5, ChecksumKind::Crc32c],
    body_checksum: Some(ChecksumKind::Crc32c),
    keeps_metadata: true,
    cheap_range_copies: false,
    rebuild_check: RebuildCheck::WholeObjectCompared,
};

/// With chunked objects, a staged part is a chunk kept past the commit, and
/// reused by a later upload after its checksums are compared.
const CHUNKED_LIMITS: StoreLimits = StoreLimits {
    rebuild_check: RebuildCheck::ChunksCompared,
    ..LIMITS
};

/// Sources of one compose call.
const COMPOSE_SOURCES: usize = 32;
/// Deletes in flight at once.
const PARALLEL_DELETES: usize = 16;
/// Objects per listing page.
const PAGE_SIZE: u32 = 1000;
/// The content type of every object HugeSync writes.
const CONTENT_TYPE: &str = "application/octet-stream";

/// Characters left as they are in a path segment or query value (an object's
/// name is one segment: its `/`s are escaped too).
const ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escaped(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, ESCAPES).to_string()
}

/// Nanoseconds since the epoch of an RFC 3339 time (0 when unreadable).
fn rfc3339_ns(text: &str) -> i64 {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The `ifGenerationMatch` a write carries for an expectation.
fn generation_condition(expect: Expect<'_>) -> Option<String> {
    match expect {
        Expect::Any => None,
        Expect::Absent => Some("0".into()),
        Expect::Version(version) => Some(version.trim_matches('"').to_string()),
    }
}

impl GcsStorage {
    /// What a write's metadata says: HugeSync's keys, and another tool's
    /// where `--metadata-compat` asks (rclone's `mtime` in RFC 3339).
    fn meta_headers(&self, meta: &ObjectMeta) -> HashMap<String, String> {
        meta.to_headers_for(
            self.metadata_compat,
            crate::storage::meta::CompatTime::Rfc3339,
        )
    }
}

/// Chunk objects by the key they are kept for.
type ChunkIndex = HashMap<String, Vec<String>>;

/// A bucket and a prefix, with a client and signer shared by every clone.
#[derive(Clone)]
pub struct GcsStorage {
    http: crate::storage::rest::HttpClient,
    /// `None` for an emulator.
    signer: Option<Arc<reqsign_core::Signer<reqsign_google::Credential>>>,
    resolved: Resolved,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    retry: RetryPolicy,
    info: StoreInfo,
    list_page_size: u32,
    /// Objects are kept as chunks too (`chunks`).
    chunked: bool,
    /// Large uploads go as one resumable stream, not composite parts.
    streams: bool,
    /// The keys below the prefix that have chunks, and their chunks' names:
    /// listed once, at the first write or delete that may leave them behind.
    chunk_index: Arc<tokio::sync::Mutex<Option<ChunkIndex>>>,
    storage_class: Option<String>,
    metadata_compat: Option<crate::storage::meta::MetadataCompat>,
}

impl std::fmt::Debug for GcsStorage {
    // The signer holds tokens: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStorage")
            .field("endpoint", &self.resolved.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl GcsStorage {
    pub(super) fn bucket_url(&self) -> String {
        self.bucket_url_of(&self.bucket)
    }

    /// The URL of a bucket of this service.
    pub(super) fn bucket_url_of(&self, bucket: &str) -> String {
        format!(
            "{}/storage/v1/b/{}",
            self.resolved.endpoint,
            escaped(bucket)
        )
    }

    /// The bucket of `source` when it is on this GCS service, which rewrite
    /// and compose read from.
    pub(super) fn same_service<'a>(&self, source: &'a dyn ObjectStore) -> Option<&'a str> {
        let info = source.info();
        (info.kind.scheme == self.info.kind.scheme && info.id.endpoint == self.info.id.endpoint)
            .then_some(info.bucket.as_str())
    }

    /// The object resource's URL (its name is one escaped segment).
    pub(super) fn object_url(&self, key: &str) -> String {
        format!("{}/o/{}", self.bucket_url(), escaped(key))
    }

    pub(super) fn upload_url(&self) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
            self.resolved.endpoint,
            escaped(&self.bucket)
        )
    }

    pub(super) fn url_of_key(&self, key: &str) -> String {
        ObjectStore::url_of(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_carry_the_generation_they_expect() {
        // fake-gcs-server ignores these: what is sent is checked here.
        assert_eq!(generation_condition(Expect::Any), None);
        assert_eq!(generation_condition(Expect::Absent).as_deref(), Some("0"));
        assert_eq!(
            generation_condition(Expect::Version("\"1795909674699645\"")).as_deref(),
            Some("1795909674699645")
        );
    }

    #[test]
    fn names_are_one_escaped_segment() {
        assert_eq!(escaped("a/b c#d.bin"), "a%2Fb%20c%23d.bin");
        assert_eq!(
            rfc3339_ns("2026-11-28T23:47:54.699616Z") % 1_000_000_000,
            699_616_000
        );
        assert_eq!(rfc3339_ns("not a time"), 0);
    }
}
