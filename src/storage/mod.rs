//! The storage interface: one enum over backends, each able to list a tree into a
//! [`Manifest`], describe and delete single entries, and take part in transfers.
//!
//! Object-store backends (S3, then GCS and Azure) add ranged reads and server-side
//! stitching (multipart copy / compose / block lists) as operations of their own;
//! the executor picks the transfer path from the (source, destination) pair.

pub mod local;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::filter::Filter;
use crate::types::{Entry, EntryKind, Manifest, RelPath};
use crate::uri::Location;

pub use local::LocalStorage;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{location}: {scheme}:// storage is not supported yet (local paths work today)")]
    Unsupported {
        location: String,
        scheme: &'static str,
    },
    #[error("{location}: the listing task failed: {reason}")]
    Task { location: String, reason: String },
}

impl StorageError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// What listing options a scan needs from a backend.
#[derive(Clone, Copy, Debug)]
pub struct ListOptions {
    /// Report symbolic links as links (`-a`); otherwise they are skipped with a note.
    pub symlinks: bool,
}

/// Live counts of a running scan, read by progress displays while it runs.
#[derive(Debug, Default)]
pub struct ScanCounter {
    entries: AtomicU64,
    bytes: AtomicU64,
}

impl ScanCounter {
    pub fn add(&self, bytes: u64) {
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `(entries, bytes)` seen so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.entries.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// Something a scan passed over or could not read; reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanIssue {
    pub path: RelPath,
    pub kind: ScanIssueKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanIssueKind {
    /// A symbolic link seen without `-a`.
    SkippedSymlink,
    /// A FIFO, socket or device node.
    SkippedSpecial,
    /// Could not be read (permissions, vanished during the scan).
    Unreadable(String),
}

impl ScanIssue {
    /// Unreadable entries are failures (exit code 1); skipped ones are notes.
    pub fn is_error(&self) -> bool {
        matches!(self.kind, ScanIssueKind::Unreadable(_))
    }

    pub fn message(&self) -> String {
        match &self.kind {
            ScanIssueKind::SkippedSymlink => {
                format!(
                    "{}: symbolic link skipped (use -a to copy links as links)",
                    self.path
                )
            }
            ScanIssueKind::SkippedSpecial => format!("{}: special file skipped", self.path),
            ScanIssueKind::Unreadable(why) => format!("{}: cannot read: {why}", self.path),
        }
    }
}

/// A listed tree and the notes taken while listing it.
#[derive(Debug, Default)]
pub struct Listing {
    pub manifest: Manifest,
    pub issues: Vec<ScanIssue>,
}

/// One side of a sync. Cheap to clone (backends share their clients).
#[derive(Clone, Debug)]
pub enum Storage {
    Local(LocalStorage),
}

impl Storage {
    /// Opens the backend for a location. Schemes without a backend yet are a clear
    /// error rather than a surprise later.
    pub fn open(location: &Location) -> Result<Storage, StorageError> {
        match location {
            Location::Local(path) => Ok(Storage::Local(LocalStorage::new(path.clone()))),
            other => Err(StorageError::Unsupported {
                location: other.to_string(),
                scheme: other.scheme(),
            }),
        }
    }

    pub fn location(&self) -> Location {
        match self {
            Storage::Local(local) => Location::Local(local.root().to_path_buf()),
        }
    }

    /// Lists every entry below the root that `filter` includes.
    pub async fn list(
        &self,
        filter: Arc<Filter>,
        options: ListOptions,
        counter: Arc<ScanCounter>,
    ) -> Result<Listing, StorageError> {
        match self {
            Storage::Local(local) => {
                let local = local.clone();
                let location = local.root().display().to_string();
                tokio::task::spawn_blocking(move || local.list(&filter, options, &counter))
                    .await
                    .map_err(|e| StorageError::Task {
                        location,
                        reason: e.to_string(),
                    })?
            }
        }
    }

    /// Describes one entry now, or `None` when it does not exist.
    pub async fn head(&self, path: &RelPath) -> Result<Option<Entry>, StorageError> {
        match self {
            Storage::Local(local) => {
                let local = local.clone();
                let path = path.clone();
                run_blocking(move || local.head(&path)).await
            }
        }
    }

    /// Removes one entry (a directory only when it is empty).
    pub async fn delete(&self, path: &RelPath, kind: EntryKind) -> Result<(), StorageError> {
        match self {
            Storage::Local(local) => {
                let local = local.clone();
                let path = path.clone();
                run_blocking(move || local.delete(&path, kind)).await
            }
        }
    }
}

/// Runs blocking filesystem work off the async workers.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Task {
            location: "local".into(),
            reason: e.to_string(),
        })?
}
