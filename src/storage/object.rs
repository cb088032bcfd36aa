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

use std::any::Any;
use std::fmt::Debug;

use bytes::Bytes;
use futures::stream::BoxStream;

use super::StorageError;
use super::body::BodySource;
pub use super::limits::{
    ChecksumKind, LimitError, PlannedPart, RebuildCheck, Stitching, StoreLimits,
};
use super::meta::ObjectMeta;
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

/// `sums` and the blake3 that metadata records, if any.
/// A part an earlier run staged, as its journal recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPart {
    pub number: u32,
    /// Where the part's bytes are in the file (and the object).
    pub offset: u64,
    pub len: u64,
    /// The tag the store gave the part.
    pub tag: String,
    /// blake3 of the part's bytes.
    pub blake3: [u8; 32],
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

/// A page of a listing, and where the next one starts.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
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

/// An object being assembled from staged parts: it appears only at commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedUpload {
    pub key: String,
    /// The store's handle on the upload (an S3 upload id; the block-id stem of
    /// an Azure block list).
    pub id: String,
}

/// A staged part as the commit names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedPart {
    /// 1-based position in the object.
    pub number: u32,
    /// The store's name for the staged bytes (a part ETag, a block id).
    pub tag: String,
    pub size: u64,
    /// The MD5 of the part's bytes as the store computed it, where it says.
    pub md5: Option<[u8; 16]>,
}

/// An upload left incomplete (by this tool or another), found on the store.
#[derive(Clone, Debug)]
pub struct PendingUpload {
    pub key: String,
    pub id: String,
    pub initiated_ns: Option<i64>,
}

/// An object being written front to back as one stream that outlives the
/// process (a GCS resumable upload): it appears when its last bytes arrive.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamUpload {
    pub key: String,
    /// The store's handle on the stream (a session URI: it grants the upload,
    /// so it is never printed).
    pub session: String,
}

impl Debug for StreamUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamUpload")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What the whole object of a stream must be, given with its last bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEnd {
    pub size: u64,
    pub md5: [u8; 16],
    pub crc32c: u32,
}

/// What the store holds after a piece of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamAck {
    /// The first this many bytes are kept; the stream goes on from there.
    Persisted(u64),
    /// The object is made (and checked against the [`StreamEnd`]): its version.
    Done(String),
}

/// A piece of an object that the store keeps as an object of its own
/// (chunked objects), which a later upload of the same key can stage whole
/// as the part of the same number when the file's bytes there are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptChunk {
    /// 1-based: the part it was, and will be again.
    pub number: u32,
    /// Where it sits in the object (chunks before it, summed).
    pub start: u64,
    pub len: u64,
    /// Its checksums as the service computed them.
    pub md5: Option<[u8; 16]>,
    pub crc32c: Option<u32>,
}

/// An existing object to stage a range of, or to copy whole, server-side.
#[derive(Clone, Copy, Debug)]
pub struct CopySource<'a> {
    pub store: &'a dyn ObjectStore,
    pub key: &'a str,
    /// The version the bytes must come from (a replaced source fails the copy).
    pub version: Option<&'a str>,
}

/// Which bytes of a source a staged copy takes, and what they must be.
#[derive(Clone, Copy, Debug)]
pub struct CopyRange {
    pub start: u64,
    pub len: u64,
    /// The MD5 the copied bytes must have, when the caller knows it.
    pub expected_md5: Option<[u8; 16]>,
    /// Their CRC32C (Castagnoli), for stores that report that instead
    /// (GCS's composite objects carry no MD5).
    pub expected_crc32c: Option<u32>,
}

/// A URL another service can read an object from for a limited time (a
/// presigned S3 URL, a SAS URL), or with the header given.
#[derive(Clone)]
pub struct ReadableUrl {
    pub url: String,
    /// `Authorization` value to present with it (a bearer token), if the URL
    /// itself does not carry the grant.
    pub authorization: Option<String>,
}

impl Debug for ReadableUrl {
    // Presigned URLs are credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadableUrl(..)")
    }
}

/// Which store, bucket and prefix: the identity resume state is recorded under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreId {
    /// The endpoint (URL, or the provider's name for its default).
    pub endpoint: String,
    /// Bucket or container.
    pub bucket: String,
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
pub trait ObjectStore: Send + Sync + Debug + Any {
    /// The URL scheme of locations on this store (`s3`, `az`).
    fn scheme(&self) -> &'static str;
    /// Bucket or container.
    fn bucket(&self) -> &str;
    /// The key prefix: empty, or ending in `/`.
    fn prefix(&self) -> &str;
    /// Which store this is, for resume state.
    fn id(&self) -> StoreId;
    fn limits(&self) -> &StoreLimits;
    /// The retry policy of this store's requests (with its count of retries).
    fn retry(&self) -> &RetryPolicy;
    /// What to tell a user whose request was refused, in the store's terms.
    fn hints(&self) -> &'static super::StoreHints;
    fn as_any(&self) -> &dyn Any;

    /// One page of the objects below the prefix, from `token` (`None`: the
    /// first page).
    async fn list_page(&self, token: Option<String>) -> Result<ListPage, StorageError>;

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
        md5: Option<[u8; 16]>,
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

    /// A URL other services can read `key` from for `ttl` (presigned), if the
    /// store can grant one.
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError>;

    // The staged object family.

    /// Begins an object at `key` that will carry `meta`.
    async fn begin_staged(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError>;

    /// Stages `len` bytes from `body` as part `number`, which will sit at
    /// byte `at` of the object (stores that write in place use it; the
    /// others number their parts).
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        body: BodySource<'_>,
        len: u64,
        md5: Option<[u8; 16]>,
    ) -> Result<StagedPart, StorageError>;

    /// Stages `len` bytes from `start` of an existing object as part `number`
    /// (at byte `at` of the new object), server-side (stores with `range_copy`). Callers check the range against
    /// the source's size first ([`StoreLimits::check_parts`]).
    ///
    /// With `expected_md5` (the MD5 of the bytes the part must hold, known from
    /// a local file), the store makes sure the copied bytes have it — it hands
    /// it to the service to check, or compares the MD5 the service reports —
    /// and fails with [`RemoteErrorKind::ChecksumMismatch`](crate::storage::RemoteErrorKind)
    /// when they differ (a store may keep such a part until it is staged again
    /// or the upload aborted: callers abort). The part's `md5` is then `Some`
    /// only if the check was made: `None` says the store could not check it.
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError>;

    /// The parts staged so far, in order (to resume an upload). `NotFound`
    /// when the upload is gone.
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError>;

    /// Of the parts an earlier run recorded, those the store still holds
    /// with the bytes recorded, to resume an upload. By default the store's
    /// own list of staged parts, matched by number, size and tag; a store
    /// that cannot list them (an SSH server's temp file, written at offsets)
    /// checks the recorded bytes themselves. `NotFound` when the upload is
    /// gone.
    async fn staged_matching(
        &self,
        upload: &StagedUpload,
        recorded: &[RecordedPart],
    ) -> Result<Vec<StagedPart>, StorageError> {
        let listed = self.list_staged(upload).await?;
        Ok(recorded
            .iter()
            .filter_map(|done| {
                listed
                    .iter()
                    .find(|p| {
                        p.number == done.number
                            && p.size == done.len
                            && same_version(&p.tag, &done.tag)
                    })
                    .cloned()
            })
            .collect())
    }

    /// Makes the object from `parts`, if the key still holds what `expect`
    /// says; checks what the store reports against the parts' checksums (a
    /// `Verification` error leaves an object that must not stay). Returns the
    /// new version.
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError>;

    /// Abandons the upload and frees what was staged.
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError>;

    /// Uploads left incomplete below the prefix (stores whose staged parts
    /// expire by themselves list none).
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError>;

    /// Whether large uploads go to this store as one resumable stream
    /// ([`ObjectStore::begin_stream`]) rather than staged parts in parallel.
    fn streams_uploads(&self) -> bool {
        false
    }

    /// Starts a stream that will make the object at `key` with `meta`, if
    /// the key still holds what `expect` says when it ends. Stores that do
    /// not stream (`streams_uploads` false) refuse.
    async fn begin_stream(
        &self,
        key: &str,
        _meta: &ObjectMeta,
        _expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        Err(StorageError::Transfer {
            target: self.url_of(key),
            message: "this store takes large uploads as staged parts, not as a stream".into(),
        })
    }

    /// How many bytes of the stream the store holds, where the next piece
    /// must start; `recorded` is what this machine last heard it hold.
    /// `NotFound` when the stream is gone (finished, expired, abandoned).
    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        _recorded: u64,
    ) -> Result<u64, StorageError> {
        Err(StorageError::Transfer {
            target: self.url_of(&upload.key),
            message: "this store has no upload streams".into(),
        })
    }

    /// Sends `len` bytes of the stream from `offset` (one attempt: callers
    /// ask [`ObjectStore::stream_persisted`] where to go on from after a
    /// failure). With `end`, these are the last bytes, and the object made is
    /// checked against it.
    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        _offset: u64,
        _body: BodySource<'_>,
        _len: u64,
        _end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        Err(StorageError::Transfer {
            target: self.url_of(&upload.key),
            message: "this store has no upload streams".into(),
        })
    }

    /// Abandons a stream (what it held is freed).
    async fn abort_stream(&self, _upload: &StreamUpload) -> Result<(), StorageError> {
        Ok(())
    }

    /// Whether this store keeps what it stages as chunks of the object (kept
    /// past the commit, reused by later uploads of the key: [`KeptChunk`]).
    fn keeps_chunks(&self) -> bool {
        false
    }

    /// The chunks kept for `key`, in order (none on stores that keep none).
    /// [`ObjectStore::stage_copy`] stages one as part `number` when given its
    /// `start` and `len` as the range, after checking its checksums against
    /// the expected ones.
    async fn kept_chunks(&self, _key: &str) -> Result<Vec<KeptChunk>, StorageError> {
        Ok(Vec::new())
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

    /// The same for a staged object before it is committed, where the store
    /// can compute them (an SSH server's hash command); `None` otherwise.
    async fn staged_sums(
        &self,
        _upload: &StagedUpload,
    ) -> Result<Option<ContentSums>, StorageError> {
        Ok(None)
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
    /// old one, when it cannot (an SSH server without `copy-data`): delta
    /// uploads are then planned whole, with this as the reason.
    fn cannot_rebuild(&self) -> Option<&'static str> {
        None
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

    /// The sidecar key of a path.
    fn sidecar_key_of(&self, path: &RelPath) -> String {
        format!("{}{SIDECAR_SUFFIX}", self.key_of(path))
    }

    /// `scheme://bucket/key`, for messages.
    fn url_of(&self, key: &str) -> String {
        use crate::types::EscapeNonUtf8;
        // For messages: a key's control characters are shown escaped.
        let key = key.as_bytes().escape_ascii_non_utf8();
        format!("{}://{}/{key}", self.scheme(), self.bucket())
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
