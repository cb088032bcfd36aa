//! The optional families of object-store operations, each a trait of its own
//! that a store implements when it has it and hands out through an
//! [`ObjectStore`](super::ObjectStore) accessor (`staged()`, `staged_copies()`, `streams()`,
//! `chunks()`, `readable_urls()`): callers ask for the family, never for
//! which store it is (object_store keeps `MultipartStore` apart from
//! `ObjectStore` the same way; rclone fills `fs.Features` per backend).

use crate::storage::body::BodySums;
use std::fmt::Debug;

use super::StorageError;
use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::{CopySource, Expect, same_version};
use crate::types::ContentSums;

/// A part an earlier run staged, as its journal recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPart {
    pub number: u32,
    /// Where the part's bytes are in the file (and the object).
    pub offset: u64,
    pub len: u64,
    /// The tag the store gave the part.
    pub tag: String,
    /// blake3 of the part's bytes, where the journal kept it: always for a
    /// store that [checks resumed parts by it](StagedObjects::resumes_by_blake3).
    pub blake3: Option<[u8; 32]>,
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
    /// Their CRC64NVME as the store computed it, where it says (S3 names
    /// each part's again when the upload is completed).
    pub crc64nvme: Option<u64>,
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

/// Objects assembled from parts staged one by one, which appear only when
/// committed (S3 multipart uploads, Azure block lists, GCS compose, an SSH
/// server's temp file written at offsets).
#[async_trait::async_trait]
pub trait StagedObjects: Send + Sync {
    /// Whether [`staged_matching`](Self::staged_matching) checks a recorded
    /// part by the blake3 of its bytes (a store that cannot list its parts,
    /// and so hashes what it holds): uploads then journal that blake3, an
    /// extra pass over a signed part the others are spared.
    fn resumes_by_blake3(&self) -> bool {
        false
    }

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
        sums: BodySums,
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

    /// Checksums of a staged object's whole content before it is committed,
    /// where the store can compute them (an SSH server's hash command):
    /// what a rebuilt object is checked against. `None` otherwise.
    async fn staged_sums(
        &self,
        _upload: &StagedUpload,
    ) -> Result<Option<ContentSums>, StorageError> {
        Ok(None)
    }
}

/// Parts staged server-side from existing objects (S3 UploadPartCopy, Azure
/// Put Block From URL, GCS compose of whole objects, SFTP `copy-data`): the
/// bytes never pass through this machine. What the store can reuse — byte
/// ranges or only whole objects — is [`StoreLimits::stitching`](super::StoreLimits).
#[async_trait::async_trait]
pub trait StagedCopies: Send + Sync {
    /// Stages `len` bytes from `start` of an existing object as part `number`
    /// (at byte `at` of the new object), server-side. Callers check the range
    /// against the source's size first ([`StoreLimits::check_parts`](super::StoreLimits::check_parts)).
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
}

/// Large uploads written front to back as one stream that outlives the
/// process (a GCS resumable upload) rather than staged parts in parallel.
#[async_trait::async_trait]
pub trait UploadStreams: Send + Sync {
    /// Starts a stream that will make the object at `key` with `meta`, if
    /// the key still holds what `expect` says when it ends.
    async fn begin_stream(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError>;

    /// How many bytes of the stream the store holds, where the next piece
    /// must start; `recorded` is what this machine last heard it hold.
    /// `NotFound` when the stream is gone (finished, expired, abandoned).
    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        recorded: u64,
    ) -> Result<u64, StorageError>;

    /// Sends `len` bytes of the stream from `offset` (one attempt: callers
    /// ask [`UploadStreams::stream_persisted`] where to go on from after a
    /// failure). With `end`, these are the last bytes, and the object made is
    /// checked against it.
    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError>;

    /// Abandons a stream (what it held is freed).
    async fn abort_stream(&self, upload: &StreamUpload) -> Result<(), StorageError>;
}

/// What a store keeps of an object as chunks of its own, reused by later
/// uploads of the key (GCS with `--gcs-chunked`: [`KeptChunk`]).
#[async_trait::async_trait]
pub trait KeptChunks: Send + Sync {
    /// The chunks kept for `key`, in order.
    /// [`StagedCopies::stage_copy`] stages one as part `number` when given its
    /// `start` and `len` as the range, after checking its checksums against
    /// the expected ones.
    async fn kept_chunks(&self, key: &str) -> Result<Vec<KeptChunk>, StorageError>;
}

/// URLs another service can read an object from for a limited time
/// (presigned S3 URLs, Azure SAS, GCS signed URLs).
#[async_trait::async_trait]
pub trait ReadableUrls: Send + Sync {
    /// A URL other services can read `key` from for `ttl` (presigned), if the
    /// store can grant one.
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError>;
}
