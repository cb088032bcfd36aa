//! Carrying out one plan item. Whether each side is a local disk or an object
//! store picks the path: local disk to local disk (`local`), up to an object
//! store (`upload`), down from one (`download`), or between two (`remote`).
//! Object stores are reached only through `storage::ObjectStore`: which store
//! it is, this module never knows.

pub(crate) mod chunked;
pub(super) mod delta_download;
mod delta_upload;
pub(crate) mod download;
mod local;
mod parts;
mod received;
mod remote;
mod resumable;
mod signed;
mod stream;
#[cfg(test)]
mod tests;
pub(crate) mod upload;
pub(crate) mod verify;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::progress::ExecEvent;
use crate::storage::local::WriteMeta;
use crate::storage::{Expect, ObjectStore, Storage, StorageError};
use crate::types::Entry;

use super::plan::PlanItem;

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the source changed since it was scanned ({what}); re-run to pick up the new version")]
    SourceChanged { what: &'static str },
    #[error("the destination changed since the plan was made; re-run to plan it again")]
    DestinationChanged,
    #[error("the plan item has no {side} entry")]
    Incomplete { side: &'static str },
    #[error(
        "its object key would be {len} bytes, over the {max} an object store accepts; shorten the path to sync it"
    )]
    KeyTooLong { len: usize, max: usize },
    #[error("{why}; rename it to sync it")]
    NameRefused { why: &'static str },
    #[error(
        "names ending in .hssig, and the folder .hugesync at the sync root, are reserved for HugeSync's signature sidecars on object stores and SSH servers; rename it to sync it"
    )]
    ReservedName,
    /// A server-side copy of the old object's range is not the file's bytes
    /// there: the signature sidecar does not describe the object.
    #[error("a range copied server-side is not the file's: {detail}")]
    CopiedRangeMismatch { detail: String },
    /// A file rebuilt by delta differs from the source by a checksum its
    /// sidecar did not supply: the sidecar does not describe the source.
    #[error("the file rebuilt by delta differs from the source by its {checksum}")]
    RebuildMismatch { checksum: &'static str },
    /// Bytes downloaded differ from the object's own checksum: damaged on
    /// the way (the download is pinned to the object's version).
    #[error(
        "the bytes received differ from the object's {checksum}: damaged on the way; nothing was written, re-run to download it again"
    )]
    Damaged { checksum: &'static str },
    #[error("cancelled")]
    Cancelled,
}

impl ItemError {
    /// An interruption (Ctrl+C, a network that stayed down), after which an
    /// upload is left for the next run to resume rather than abandoned.
    pub fn is_interruption(&self) -> bool {
        match self {
            ItemError::Cancelled => true,
            ItemError::Storage(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// A failed read of the local file: one that ended early is the file
    /// being cut while it was read.
    fn of_read(error: StorageError) -> ItemError {
        match error {
            StorageError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::UnexpectedEof
                    || crate::mapguard::ChangedWhileRead::is(&source) =>
            {
                ItemError::SourceChanged {
                    what: "while it was read",
                }
            }
            other => ItemError::Storage(other),
        }
    }
}

/// What finishing one item achieved.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub bytes_sent: u64,
    pub bytes_saved: u64,
    /// Set when a conflict made the item be planned again: what was done instead.
    pub replanned: Option<crate::types::SyncAction>,
}

impl Outcome {
    pub fn sent(bytes_sent: u64, bytes_saved: u64) -> Self {
        Outcome {
            bytes_sent,
            bytes_saved,
            replanned: None,
        }
    }
}

#[derive(Clone)]
pub struct ItemContext {
    pub source: Storage,
    pub destination: Storage,
    pub archive: bool,
    pub fsync: bool,
    /// Delta block size.
    pub block_size: u32,
    /// Files from this size are signed on upload (and sent by delta once signed).
    pub delta_threshold: u64,
    pub remote_signature: super::RemoteSignature,
    /// Rebuilds no checksum of the store's own can check trust the sidecar.
    pub unverified_rebuilds: bool,
    /// Where replaced and deleted files are kept first (`--backup`).
    pub backup: Option<super::Backup>,
    /// Part and range requests in flight across the whole run (`jobs` of them):
    /// one large file can use them all, many files share them, and memory held
    /// by ranged downloads stays at `jobs × range size`.
    pub requests: std::sync::Arc<tokio::sync::Semaphore>,
    /// The number of permits `requests` was made with.
    pub request_limit: usize,
    /// Parts read and hashed at once, one per core: more would hash no
    /// faster, and each holds a window of the file's pages meanwhile.
    pub hashing: std::sync::Arc<tokio::sync::Semaphore>,
    pub events: mpsc::Sender<ExecEvent>,
    pub cancel: CancellationToken,
    /// Where staged uploads keep their resume state (`None`: they do not).
    pub resume: Option<crate::resume::ResumeStore>,
}

impl ItemContext {
    async fn advanced(&self, id: usize, bytes: u64) {
        let _ = self.events.send(ExecEvent::Advanced { id, bytes }).await;
    }

    /// How many of an item's part requests may wait for a slot at once.
    fn parallel_requests(&self) -> usize {
        self.request_limit.max(1)
    }

    /// Waits for a request slot (or cancellation).
    async fn request_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ItemError> {
        tokio::select! {
            permit = self.requests.clone().acquire_owned() => permit.map_err(|_| ItemError::Cancelled),
            () = self.cancel.cancelled() => Err(ItemError::Cancelled),
        }
    }

    /// Waits for a turn to read and hash a part (or cancellation).
    async fn hashing_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ItemError> {
        tokio::select! {
            permit = self.hashing.clone().acquire_owned() => permit.map_err(|_| ItemError::Cancelled),
            () = self.cancel.cancelled() => Err(ItemError::Cancelled),
        }
    }
}

/// Keeps the destination's file first, when the plan asks for backups and the
/// item replaces or deletes one: pinned to the version planned, so a file
/// changed since is a conflict, not a backup of something unseen.
pub async fn keep_backup(item: &PlanItem, ctx: &ItemContext) -> Result<(), ItemError> {
    let Some(backup) = &item_backup(item, ctx) else {
        return Ok(());
    };
    let Some(old) = &item.dst else {
        return Ok(());
    };
    if old.kind == crate::types::EntryKind::Dir {
        return Ok(());
    }
    super::backup::keep_copy(
        &ctx.destination,
        &item.path,
        &backup.target_of(&item.path),
        old.size,
        old.etag(),
    )
    .await
    .map_err(conflict_or)
}

fn item_backup(item: &PlanItem, ctx: &ItemContext) -> Option<super::Backup> {
    let replaces = item.action.transfers() || item.action == crate::types::SyncAction::Delete;
    ctx.backup
        .clone()
        .filter(|_| replaces && item.dst.is_some())
}

/// Runs one non-directory item (directories are handled by the executor's phases).
pub async fn run(id: usize, item: PlanItem, ctx: ItemContext) -> Result<Outcome, ItemError> {
    match (ctx.source.clone(), ctx.destination.clone()) {
        (Storage::Local(src), Storage::Local(dst)) => {
            tokio::task::spawn_blocking(move || local::run(id, &item, &src, &dst, &ctx))
                .await
                .map_err(|e| {
                    ItemError::Storage(StorageError::Task {
                        location: "transfer".into(),
                        reason: e.to_string(),
                    })
                })?
        }
        (Storage::Local(src), Storage::Object(dst)) => {
            moving_sidecars(
                &item,
                dst.as_ref(),
                upload::run(id, &item, &src, &dst, &ctx),
            )
            .await
        }
        (Storage::Object(src), Storage::Local(dst)) => {
            download::run(id, &item, &src, &dst, &ctx).await
        }
        (Storage::Object(src), Storage::Object(dst)) => {
            moving_sidecars(
                &item,
                dst.as_ref(),
                remote::run(id, &item, &src, &dst, &ctx),
            )
            .await
        }
    }
}

/// Runs `write`, the item's write to an object store, minding a sidecar it
/// has in the layout the store keeps sidecars in no longer: moved when that
/// is all the item does (`write` is then never run); otherwise the object
/// is written anew (its new sidecar where sidecars are kept now) and the old
/// sidecar goes after it.
async fn moving_sidecars(
    item: &PlanItem,
    dst: &dyn ObjectStore,
    write: impl std::future::Future<Output = Result<Outcome, ItemError>>,
) -> Result<Outcome, ItemError> {
    let Some(layout) = item.dst.as_ref().and_then(Entry::sidecar_in) else {
        return write.await;
    };
    if item.reason == super::diff::Reason::SidecarMoved {
        super::sidecar::relocate(dst, &item.path, layout).await?;
        return Ok(Outcome::default());
    }
    let outcome = write.await?;
    if item.action == crate::types::SyncAction::Metadata {
        super::sidecar::relocate(dst, &item.path, layout).await?;
    } else {
        super::sidecar::remove_misplaced(dst, &item.path, layout).await?;
    }
    Ok(outcome)
}

/// What the destination must still hold for this item's write: the object the
/// plan saw, or none.
fn expect_of(item: &PlanItem) -> Expect<'_> {
    match &item.dst {
        None => Expect::Absent,
        Some(entry) => entry.etag().map_or(Expect::Any, Expect::Version),
    }
}

/// Looks at the destination key once more before an upload completes, for
/// servers that ignore the completion's condition headers.
async fn recheck(dst: &dyn ObjectStore, key: &str, expect: Expect<'_>) -> Result<(), ItemError> {
    if expect == Expect::Any {
        return Ok(());
    }
    if expect.holds_for(dst.head(key).await?.as_ref()) {
        Ok(())
    } else {
        Err(ItemError::DestinationChanged)
    }
}

/// A failed condition on a write is a conflict, not an error of the request.
pub(super) fn conflict_or(error: StorageError) -> ItemError {
    match error {
        StorageError::Remote {
            kind: crate::storage::RemoteErrorKind::PreconditionFailed,
            ..
        } => ItemError::DestinationChanged,
        other => ItemError::Storage(other),
    }
}

/// Longest key S3, Azure Blob Storage and GCS accept (bytes of UTF-8).
const MAX_KEY_LEN: usize = 1024;

/// The object key for a path, refusing names an object store cannot hold
/// (names that are not UTF-8 are encoded: `storage::names`).
fn checked_key(dst: &dyn ObjectStore, path: &crate::types::RelPath) -> Result<String, ItemError> {
    if crate::storage::sidecars::is_reserved(path.as_bytes()) {
        return Err(ItemError::ReservedName);
    }
    let key = dst.key_of(path);
    // Room for the sidecar's key, which large files get.
    let sidecar = dst.sidecar_key_of(path);
    if sidecar.len() > MAX_KEY_LEN {
        return Err(ItemError::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_LEN - (sidecar.len() - key.len()),
        });
    }
    if let Some(why) = dst.refuses_key(&key) {
        return Err(ItemError::NameRefused { why });
    }
    Ok(key)
}

/// The outcome of a write: a failed condition is a conflict; an object that
/// failed verification is removed before the error is reported (it must not
/// look current: the next run sends it again).
async fn settle_write(
    dst: &dyn ObjectStore,
    key: &str,
    result: Result<String, StorageError>,
) -> Result<String, ItemError> {
    match result {
        Err(StorageError::Verification { target, message }) => {
            let sidecar = dst.sidecar_key_of_key(key);
            let _ = dst.delete_keys(&[key.to_string(), sidecar]).await;
            Err(ItemError::Storage(StorageError::Verification {
                target,
                message: format!("{message}; it was removed"),
            }))
        }
        other => other.map_err(conflict_or),
    }
}

/// A read pinned to the planned version that found another version, or none:
/// the source object changed since the scan.
fn source_changed(error: StorageError) -> ItemError {
    match error {
        StorageError::Remote {
            kind:
                crate::storage::RemoteErrorKind::PreconditionFailed
                | crate::storage::RemoteErrorKind::NotFound,
            ..
        } => ItemError::SourceChanged {
            what: "the object was replaced or removed",
        },
        StorageError::Damaged { checksum, .. } => ItemError::Damaged { checksum },
        other => ItemError::Storage(other),
    }
}

/// The planned source entry of an item.
fn planned_source(item: &PlanItem) -> Result<&Entry, ItemError> {
    item.src
        .as_ref()
        .ok_or(ItemError::Incomplete { side: "source" })
}

/// mtime is always kept (the quick check depends on it); the mode is copied with
/// `-a`, and otherwise an existing destination file keeps its own.
fn write_meta(src: &Entry, dst: Option<&Entry>, archive: bool) -> WriteMeta {
    let mode = if archive {
        Some(src.mode)
    } else {
        dst.filter(|d| d.kind == src.kind).map(|d| d.mode)
    };
    WriteMeta {
        mtime_ns: src.mtime_ns,
        mode,
    }
}
