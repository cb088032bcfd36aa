//! The object-store interface: the few operations every object store has, and
//! the *staged object* family that S3 multipart uploads, Azure block lists and
//! GCS compose all fit. Each store implements [`ObjectStore`] in a module of its
//! own under `storage/`; everything above (`sync/`, the commands) is written once
//! against this trait and the helpers layered on it (`storage::objects`).
//!
//! Keys here are full keys (prefix included): [`ObjectStore::key_of`] maps a
//! path below the sync root to one. Versions are the store's own tag for one
//! state of an object (an ETag, a generation) — opaque, compared with
//! [`same_version`].

use crate::storage::body::BodySums;
use std::fmt::Debug;

use bytes::Bytes;
use futures::stream::BoxStream;

use super::StorageError;
use super::body::BodySource;
pub use super::capability::{
    CopyRange, KeptChunk, KeptChunks, PendingUpload, ReadableUrl, ReadableUrls, RecordedPart,
    StagedCopies, StagedObjects, StagedPart, StagedUpload, StreamAck, StreamEnd, StreamUpload,
    UploadStreams,
};
pub use super::limits::{
    ChecksumKind, LimitError, PlannedPart, RebuildCheck, Stitching, StoreLimits,
};
use super::meta::ObjectMeta;
use super::sidecars::SidecarLayout;
use crate::retry::RetryPolicy;
use crate::types::{ContentSums, Entry, EntryKind, RelPath};

/// Suffix of the signature sidecar kept next to an object (`KEY.hssig`). Keys
/// ending so are HugeSync's bookkeeping, never user files.
pub const SIDECAR_SUFFIX: &str = ".hssig";

/// Whether a relative path names a sidecar rather than a user file.
pub fn is_sidecar(path: &[u8]) -> bool {
    path.ends_with(SIDECAR_SUFFIX.as_bytes())
}

/// Whether two version tags name the same object version (ETags come quoted
/// from some calls and bare from others).
pub fn same_version(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// What a HEAD (or a listing) says about an object.
#[derive(Clone, Debug, Default)]
pub struct ObjectHead {
    pub size: u64,
    pub mtime_ns: i64,
    /// The store's tag for this version of the object (ETag, generation).
    pub version: Option<String>,
    pub meta: ObjectMeta,
    /// The store's checksums of the content (HEAD answers carry some).
    pub sums: ContentSums,
}

impl ObjectHead {
    /// The entry a listing would have given, with link targets resolved.
    pub fn entry(&self) -> Entry {
        let mut entry = Entry::file(self.size, self.mtime_ns, 0);
        if let Some(version) = &self.version {
            entry.set_etag(version.clone());
        }
        entry.set_sums(with_recorded_blake3(self.sums, Some(&self.meta)));
        if self.size == 0
            && let Some(target) = &self.meta.link_target
        {
            entry.kind = EntryKind::Symlink;
            entry.extra.get_or_insert_with(Default::default).link_target = Some(target.clone());
        }
        entry
    }
}

/// A root as its server resolves it (see [`ObjectStore::resolved_root`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRoot {
    /// The server, as the connection resolves it (`user@hostname:port`).
    pub server: String,
    /// The root's canonical absolute path there.
    pub path: String,
}

/// Which way bytes go between this machine and a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// `sums` and the blake3 that metadata records, if any.
pub fn with_recorded_blake3(sums: ContentSums, meta: Option<&ObjectMeta>) -> ContentSums {
    ContentSums {
        blake3: meta
            .and_then(|m| m.blake3.as_deref())
            .and_then(ContentSums::blake3_of_hex),
        ..sums
    }
}

/// One object of a listing page, its key relative to the store's prefix.
#[derive(Clone, Debug)]
pub struct ListedObject {
    pub rel_key: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub version: Option<String>,
    /// Metadata, where the listing carries it (Azure does; S3 does not).
    pub meta: Option<ObjectMeta>,
    /// The store's checksums of the content, where the listing carries them.
    pub sums: ContentSums,
}

/// Which keys one listing asks for, all relative to the store's prefix: those
/// starting with `prefix`, from `from` (inclusive) up to `to` (exclusive).
/// With `delimited`, keys with a `/` after `prefix` are rolled up into their
/// common prefixes (one per "directory"), as S3's delimiter does.
///
/// A store may return keys outside the range (S3 has no end key): the lister
/// keeps those in range. A page token continues the query it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub delimited: bool,
}

impl ListQuery {
    /// Whether `rel_key` is one this query asks for.
    pub fn holds(&self, rel_key: &str) -> bool {
        rel_key.starts_with(&self.prefix)
            && self.from.as_deref().is_none_or(|from| rel_key >= from)
            && self.to.as_deref().is_none_or(|to| rel_key < to)
    }
}

/// How a store's listing can be split across requests in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListSplit {
    /// Key ranges and delimiters (S3 `start-after`, GCS
    /// `startOffset`/`endOffset`): any range can be listed on its own.
    Ranges {
        /// Whether a request can name where its range ends (GCS
        /// `endOffset`); S3 cannot, so a range's last page reads past it.
        end_key: bool,
    },
    /// Prefixes and delimiters only (Azure): a listing splits by "directory".
    Prefixes,
    /// One listing of the whole prefix (an SSH server walks its directories
    /// itself).
    Whole,
}

/// A page of a listing, and where the next one starts.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// With a delimited query: the common prefixes (relative, each ending in
    /// `/`) this page rolled keys up into.
    pub prefixes: Vec<String>,
    pub next: Option<String>,
    /// Keys (relative, as `rel_key`) of temp files that interrupted runs
    /// left, for stores that write files in place (SFTP): removed when a
    /// plan runs.
    pub leftovers: Vec<String>,
}

/// What must be at a key for a write to go ahead: the guard against replacing
/// an object that someone else changed (or created) since the plan was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect<'a> {
    /// Whatever is there (sidecars, which follow their object).
    Any,
    /// No object: the plan saw none.
    Absent,
    /// The object with this version: the one the plan saw.
    Version(&'a str),
}

impl Expect<'_> {
    /// Whether a HEAD's answer (`None`: no object) meets the expectation.
    pub fn holds_for(self, found: Option<&ObjectHead>) -> bool {
        match (self, found) {
            (Expect::Any, _) | (Expect::Absent, None) => true,
            (Expect::Version(version), Some(head)) => head
                .version
                .as_deref()
                .is_some_and(|v| same_version(v, version)),
            _ => false,
        }
    }
}

/// An existing object to stage a range of, or to copy whole, server-side.
#[derive(Clone, Copy, Debug)]
pub struct CopySource<'a> {
    pub store: &'a dyn ObjectStore,
    pub key: &'a str,
    /// The version the bytes must come from (a replaced source fails the copy).
    pub version: Option<&'a str>,
}

/// Which store, bucket and prefix: the identity resume state is recorded under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreId {
    /// The endpoint (URL, or the provider's name for its default).
    pub endpoint: String,
    /// Bucket or container.
    pub bucket: String,
}

/// What a store is and the facts about it, as data: filled by the store
/// when it connects, read by everything above it.
#[derive(Clone, Debug)]
pub struct StoreInfo {
    /// The kind of store it is: its scheme, and the facts about every store
    /// of that kind (time precision, storage classes, price service).
    pub kind: &'static super::kind::StoreKind,
    /// Bucket, container or host: what follows the scheme in its URLs.
    pub bucket: String,
    /// The key prefix: empty, or ending in `/`.
    pub prefix: String,
    /// The identity resume state is recorded under.
    pub id: StoreId,
    pub limits: &'static StoreLimits,
    /// The policy its requests are retried by (clones share its count).
    pub retry: RetryPolicy,
    /// What to tell a user whose request was refused, in the store's terms.
    pub hints: &'static super::StoreHints,
    /// Keys a listing request returns.
    pub page_size: u32,
    /// How its listing may be split across requests in flight.
    pub list_split: ListSplit,
    /// The requests made to it so far, by class (clones share them).
    pub requests: std::sync::Arc<super::requests::RequestCounts>,
    /// Where it keeps the signature sidecars of its objects.
    pub sidecars: super::sidecars::SidecarLayout,
}

impl StoreInfo {
    /// Requests to keep in flight on this store: those `asked` for
    /// (`--list-requests`), else its kind's own.
    pub fn requests_in_flight(&self, asked: Option<usize>) -> usize {
        asked.unwrap_or(self.kind.list_requests).max(1)
    }
}

/// A raw body of one read attempt.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// One object store: a bucket (or container) and a key prefix.
///
/// Required operations make one logical request each, retried by the store
/// within its [`RetryPolicy`] where the request is safe to repeat; reads are one
/// attempt ([`ObjectStore::open_read`]) and the helpers in `storage::objects`
/// resume them from where a cut-off body stopped.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + Debug {
    /// What this store is and the facts about it, as data.
    fn info(&self) -> &StoreInfo;

    /// One page of the objects `query` asks for (as far as the store can
    /// narrow them: see [`ListQuery`] and [`StoreInfo::list_split`]), from
    /// `token` (`None`: the first page).
    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError>;

    /// Describes the object at `key` now, or `None` when there is none.
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError>;

    /// Starts one GET of `len` bytes from `start` (all of it when `None`),
    /// pinned to `version` when given: a replaced object fails with
    /// `PreconditionFailed`. Not retried: see `storage::objects`.
    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError>;

    /// Writes a whole object in one request if the key still holds what
    /// `expect` says. With the bytes' MD5 given, stores that can check it do.
    /// Returns the new version.
    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        sums: BodySums,
        expect: Expect<'_>,
    ) -> Result<String, StorageError>;

    /// Whether this store can copy from `source` server-side (the bytes never
    /// pass through this machine).
    fn copies_from(&self, source: &dyn ObjectStore) -> bool;

    /// Copies an object whole, server-side (up to `max_single_copy`), keeping
    /// its metadata or replacing it with `meta`; the source may be the key
    /// itself (to rewrite metadata). Returns the new version.
    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError>;

    /// Replaces the metadata of the object at `key` (same bytes), if it is
    /// still what `expect` says. Returns the new version.
    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError>;

    /// Deletes keys, batched where the store can. Missing keys are no error.
    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError>;

    // The optional families, each handed out when the store has it.

    /// Objects assembled from staged parts.
    fn staged(&self) -> Option<&dyn StagedObjects> {
        None
    }

    /// Parts staged server-side from existing objects.
    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        None
    }

    /// Large uploads as one resumable stream rather than staged parts.
    fn streams(&self) -> Option<&dyn UploadStreams> {
        None
    }

    /// Chunks of objects kept past the commit, reused by later uploads.
    fn chunks(&self) -> Option<&dyn KeptChunks> {
        None
    }

    /// URLs other services can read objects from.
    fn readable_urls(&self) -> Option<&dyn ReadableUrls> {
        None
    }

    // Facts from [`ObjectStore::info`], by name.

    /// The URL scheme of locations on this store (`s3`, `az`).
    fn scheme(&self) -> &'static str {
        self.info().kind.scheme
    }

    /// Bucket, container or host: what follows the scheme in its URLs.
    fn bucket(&self) -> &str {
        &self.info().bucket
    }

    /// The key prefix: empty, or ending in `/`.
    fn prefix(&self) -> &str {
        &self.info().prefix
    }

    /// Which store this is, for resume state.
    fn id(&self) -> StoreId {
        self.info().id.clone()
    }

    fn limits(&self) -> &StoreLimits {
        self.info().limits
    }

    /// The retry policy of this store's requests (with its count of retries).
    fn retry(&self) -> &RetryPolicy {
        &self.info().retry
    }

    /// What to tell a user whose request was refused, in the store's terms.
    fn hints(&self) -> &'static super::StoreHints {
        self.info().hints
    }

    /// Whether the root (bucket prefix, server directory) exists. Object
    /// stores have no directories: a prefix exists as soon as it is listed.
    async fn root_exists(&self) -> Result<bool, StorageError> {
        Ok(true)
    }

    /// The root as its server resolves it, on stores where two spellings can
    /// name one place (an SSH server: aliases, `~`, `..`, symbolic links):
    /// which server, and the canonical path there. `None` elsewhere (a
    /// bucket and prefix are already canonical).
    async fn resolved_root(&self) -> Result<Option<ResolvedRoot>, StorageError> {
        Ok(None)
    }

    /// Checksums of the object's whole content that the store holds or
    /// computes itself — never read from a sidecar: what a file rebuilt by
    /// delta is checked against. `None` when the object is gone.
    async fn content_sums(&self, key: &str) -> Result<Option<ContentSums>, StorageError> {
        Ok(self
            .head(key)
            .await?
            .map(|head| with_recorded_blake3(head.sums, Some(&head.meta))))
    }

    /// How an object rebuilt by delta is checked on this store, in each
    /// direction. An SSH server's answer depends on the commands it runs,
    /// asked once.
    async fn rebuild_check(&self, direction: Direction) -> RebuildCheck {
        match direction {
            Direction::Upload => self.limits().rebuild_check,
            Direction::Download => RebuildCheck::StoreChecksum,
        }
    }

    /// Why this store cannot rebuild an object server-side from ranges of the
    /// old one, when it cannot (no server-side staged copies; an SSH server
    /// without `copy-data` says why): delta uploads are then planned whole,
    /// with this as the reason.
    fn cannot_rebuild(&self) -> Option<&'static str> {
        self.staged_copies()
            .is_none()
            .then_some("the store cannot copy parts of objects server-side")
    }

    /// Why the store would refuse (or mangle) an object of this key, if it
    /// would, beyond the length every store limits: the characters and
    /// shapes of names its service documents as refused.
    fn refuses_key(&self, _key: &str) -> Option<&'static str> {
        None
    }

    /// The key of a path below the root: its name as is when it is UTF-8,
    /// otherwise encoded reversibly (`storage::names`).
    fn key_of(&self, path: &RelPath) -> String {
        format!("{}{}", self.prefix(), super::names::encode(path.as_bytes()))
    }

    /// The sidecar key of a path, where this store keeps sidecars now.
    fn sidecar_key_of(&self, path: &RelPath) -> String {
        self.sidecar_key_in(path, self.info().sidecars)
    }

    /// The sidecar key of a path in `layout` (where one listed in another
    /// layout than the store's is read from, and moved from).
    fn sidecar_key_in(&self, path: &RelPath, layout: SidecarLayout) -> String {
        let rel = super::names::encode(path.as_bytes());
        format!("{}{}", self.prefix(), layout.sidecar_of(&rel))
    }

    /// The sidecar key of the object at `key` (a key below the prefix),
    /// where this store keeps sidecars now.
    fn sidecar_key_of_key(&self, key: &str) -> String {
        let rel = key.strip_prefix(self.prefix()).unwrap_or(key);
        format!("{}{}", self.prefix(), self.info().sidecars.sidecar_of(rel))
    }

    /// `scheme://bucket/key`, for messages.
    fn url_of(&self, key: &str) -> String {
        use crate::types::EscapeNonUtf8;
        // For messages: a key's control characters are shown escaped.
        let key = key.as_bytes().escape_ascii_non_utf8();
        format!("{}://{}/{key}", self.scheme(), self.bucket())
    }
}

impl dyn ObjectStore + '_ {
    /// The staged family, for callers that cannot go on without it.
    pub fn need_staged(&self) -> Result<&dyn StagedObjects, StorageError> {
        self.staged()
            .ok_or_else(|| self.lacks("assemble an object from staged parts"))
    }

    /// Server-side staged copies, for callers that cannot go on without them.
    pub fn need_staged_copies(&self) -> Result<&dyn StagedCopies, StorageError> {
        self.staged_copies()
            .ok_or_else(|| self.lacks("copy parts of objects server-side"))
    }

    /// Upload streams, for callers that cannot go on without them.
    pub fn need_streams(&self) -> Result<&dyn UploadStreams, StorageError> {
        self.streams()
            .ok_or_else(|| self.lacks("take an upload as one resumable stream"))
    }

    fn lacks(&self, what: &str) -> StorageError {
        StorageError::Transfer {
            target: self.url_of(self.prefix()),
            message: format!("this store cannot {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_without_quotes() {
        assert!(same_version("\"x\"", "x"));
        assert!(!same_version("x", "y"));
    }
}
