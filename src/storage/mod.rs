//! The storage interface: one enum over backends, each able to list a tree into a
//! [`Manifest`], describe and delete single entries, and take part in transfers.
//!
//! Object-store backends (S3, then GCS and Azure) add ranged reads and server-side
//! stitching (multipart copy / compose / block lists) as operations of their own;
//! the executor picks the transfer path from the (source, destination) pair.

pub mod local;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::filter::Filter;
use crate::types::{Entry, EntryKind, Manifest, RelPath};
use crate::uri::Location;

pub use local::LocalStorage;
pub use s3::{RemoteErrorKind, S3Settings, S3Storage};

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
    /// A request to an object store failed.
    #[error("{op} {target}: {message}{hint}", hint = remote_hint(*kind))]
    Remote {
        op: &'static str,
        target: String,
        kind: RemoteErrorKind,
        message: String,
    },
    /// A transfer's bytes did not arrive as expected.
    #[error("{target}: {message}")]
    Transfer { target: String, message: String },
    /// A request was cut off or stalled: a body ended early, no answer came in
    /// time. Worth another attempt.
    #[error("{target}: interrupted: {message}")]
    Interrupted { target: String, message: String },
}

/// What to do about a failed request, said once where the error is shown.
fn remote_hint(kind: RemoteErrorKind) -> &'static str {
    match kind {
        RemoteErrorKind::Denied => {
            " (check the credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile, or `aws sso login`)"
        }
        RemoteErrorKind::Network => " (is the endpoint reachable? see --endpoint-url)",
        RemoteErrorKind::NotFound => " (does the bucket exist? HugeSync does not create buckets)",
        _ => "",
    }
}

impl StorageError {
    /// Whether credentials or permissions are the problem.
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            StorageError::Remote {
                kind: RemoteErrorKind::Denied,
                ..
            }
        )
    }

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
    /// An object key that cannot be a path below the root (`..`, `.`, empty or
    /// absolute segments): refused rather than written outside the destination.
    UnsafeKey(String),
}

impl ScanIssue {
    /// Unreadable entries are failures (exit code 1); skipped ones are notes.
    pub fn is_error(&self) -> bool {
        matches!(
            self.kind,
            ScanIssueKind::Unreadable(_) | ScanIssueKind::UnsafeKey(_)
        )
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
            ScanIssueKind::UnsafeKey(key) => format!(
                "object key {key:?} refused: it would leave the sync root (`..`, `.`, empty or absolute segments)"
            ),
        }
    }
}

/// A listed tree and the notes taken while listing it.
#[derive(Debug, Default)]
pub struct Listing {
    pub manifest: Manifest,
    pub issues: Vec<ScanIssue>,
    /// Temp files of interrupted runs (local disks), never part of the manifest.
    pub leftovers: Vec<RelPath>,
}

/// One side of a sync. Cheap to clone (backends share their clients).
#[derive(Clone, Debug)]
pub enum Storage {
    Local(LocalStorage),
    S3(S3Storage),
}

impl Storage {
    /// Opens the backend for a location. Schemes without a backend yet are a clear
    /// error rather than a surprise later.
    pub async fn open(location: &Location, s3: &S3Settings) -> Result<Storage, StorageError> {
        match location {
            Location::Local(path) => Ok(Storage::Local(LocalStorage::new(path.clone()))),
            Location::S3 { bucket, prefix } => {
                Ok(Storage::S3(S3Storage::connect(s3, bucket, prefix).await))
            }
            other => Err(StorageError::Unsupported {
                location: other.to_string(),
                scheme: other.scheme(),
            }),
        }
    }

    pub fn location(&self) -> Location {
        match self {
            Storage::Local(local) => Location::Local(local.root().to_path_buf()),
            Storage::S3(s3) => Location::S3 {
                bucket: s3.bucket().to_string(),
                prefix: s3.prefix().to_string(),
            },
        }
    }

    /// Whether the backend keeps directories of its own (object stores only
    /// imply them from keys).
    pub fn has_directories(&self) -> bool {
        matches!(self, Storage::Local(_))
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
            Storage::S3(s3) => s3.list(&filter, options, &counter).await,
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
            Storage::S3(s3) => s3.head(path).await,
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
            // Directories are only implied by keys; nothing to remove.
            Storage::S3(_) if kind == EntryKind::Dir => Ok(()),
            Storage::S3(s3) => s3.delete(path).await,
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
