//! Where the bytes live: local disks (`local`) and object stores behind one
//! interface (`object`: the [`ObjectStore`] trait, its limits as data, and the
//! helpers in `objects` layered on it). A store is a module under `storage/`
//! (`s3/`, `azure/`, `gcs/`), registered in [`Storage::open`]; nothing above this module
//! names one.

pub mod azure;
pub mod body;
pub mod capability;
pub mod class;
mod entries;
pub mod gcs;
pub mod kind;
pub mod limits;
pub mod listing;
pub mod local;
pub mod memory;
pub mod meta;
pub mod names;
pub mod object;
pub mod objects;
pub mod requests;
pub(crate) mod rest;
pub mod s3;
pub mod sftp;
pub mod sidecars;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::filter::Filter;
use crate::retry::RetryPolicy;
use crate::types::{Entry, EntryKind, Manifest, RelPath};
use crate::uri::Location;

pub use azure::AzureSettings;
pub use class::{ClassAccess, StorageClass, StorageClassError};
pub use entries::{LookupOptions, Lookups};
pub use gcs::GcsSettings;
pub use local::LocalStorage;
pub use meta::ObjectMeta;
pub use object::{
    Direction, Expect, ObjectHead, ObjectStore, RebuildCheck, RecordedPart, ResolvedRoot,
    StoreInfo, StoreLimits, is_sidecar, same_version,
};
pub use s3::S3Settings;
pub use sftp::SftpSettings;

/// An object store shared by every task of a run.
pub type SharedStore = Arc<dyn ObjectStore>;

/// What went wrong with a request, as far as a caller needs to tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// Missing, wrong or expired credentials, or access denied (401, 403).
    Denied,
    /// No such bucket, container or key (404).
    NotFound,
    /// A conditional request's condition failed (412, or 409 where a store
    /// says so): someone else wrote.
    PreconditionFailed,
    /// Throttled (503, 429) or a server error (5xx).
    Unavailable,
    /// The request never got an answer (connection refused, reset, timeout).
    Network,
    /// The request was refused as malformed or invalid (4xx).
    Rejected,
    /// The store could not read the source of a server-side copy (another
    /// store's URL it cannot reach, or that refused it).
    SourceUnreachable,
    /// The bytes a request sent or copied do not have the checksum it gave
    /// (S3 `BadDigest`, Azure `Md5Mismatch`): the store refused them.
    ChecksumMismatch,
}

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
    #[error("{location}: the listing task failed: {reason}")]
    Task { location: String, reason: String },
    /// A request to an object store failed. `hints` say in the store's own
    /// terms what to check (said once, with the error).
    #[error("{op} {target}: {message}{hint}", hint = remote_hint(*kind, hints))]
    Remote {
        op: &'static str,
        target: String,
        kind: RemoteErrorKind,
        message: String,
        hints: &'static StoreHints,
    },
    /// What the store holds after a write is not what was sent (size, checksum):
    /// the object must not stay.
    #[error("{target}: {message}")]
    Verification { target: String, message: String },
    /// A transfer's bytes did not arrive as expected.
    #[error("{target}: {message}")]
    Transfer { target: String, message: String },
    /// The bytes read differ from the checksum the store gave with them:
    /// damaged on the way. Not resumed (the damage may lie in what was
    /// already received): the reader fetches the object again, whole.
    #[error("{target}: the bytes received differ from the object's {checksum}: damaged on the way")]
    Damaged {
        target: String,
        checksum: &'static str,
    },
    /// A request was cut off or stalled: a body ended early, no answer came in
    /// time. Worth another attempt.
    #[error("{target}: interrupted: {message}")]
    Interrupted { target: String, message: String },
}

/// A request an HTTP client could not complete: no answer (connection
/// refused or reset, a timeout) is a network error; a body cut off midway is
/// an interruption. The URL is left out: a signed query is a credential.
pub(crate) fn http_error(
    op: &'static str,
    target: &str,
    error: reqwest::Error,
    hints: &'static StoreHints,
) -> StorageError {
    let error = error.without_url();
    let message = error_chain(&error);
    if error.is_timeout() || error.is_connect() || error.is_request() || error.is_body() {
        StorageError::Remote {
            op,
            target: target.to_string(),
            kind: RemoteErrorKind::Network,
            message,
            hints,
        }
    } else {
        StorageError::Interrupted {
            target: target.to_string(),
            message,
        }
    }
}

/// What to do about a failed request, said once where the error is shown.
fn remote_hint(kind: RemoteErrorKind, hints: &StoreHints) -> String {
    match kind {
        RemoteErrorKind::Denied => format!(" (check the credentials: {})", hints.credentials),
        RemoteErrorKind::Network => " (is the endpoint reachable? see --endpoint-url)".into(),
        RemoteErrorKind::NotFound => format!(
            " (does the {0} exist? HugeSync does not create {0}s)",
            hints.bucket
        ),
        _ => String::new(),
    }
}

/// What a request found: `None` when the store answered "not found" (a
/// HEAD of a missing object, a delete of one already gone).
pub(crate) fn found<T>(result: Result<T, StorageError>) -> Result<Option<T>, StorageError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StorageError::Remote {
            kind: RemoteErrorKind::NotFound,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A key prefix as stores keep it: empty, or ending in one `/`.
pub(crate) fn folder_prefix(prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => String::new(),
        prefix => format!("{prefix}/"),
    }
}

/// An error and its sources, one after the other, for messages (no debug
/// dumps: they can be long, and must never risk printing secrets).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// What a store's errors tell the user to check, in its own terms.
#[derive(Debug)]
pub struct StoreHints {
    /// Where credentials come from (`AWS_ACCESS_KEY_ID/…, --profile`).
    pub credentials: &'static str,
    /// The store's word for a bucket (`bucket`, `container`).
    pub bucket: &'static str,
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
    /// Listing requests in flight (`None`: the store's own default).
    pub list_requests: Option<usize>,
    /// Memory the listing may hold before it spills to a temporary file
    /// (`None`: no limit).
    pub memory_budget: Option<u64>,
}

impl ListOptions {
    /// The manifest builder for a listing under these options.
    pub(crate) fn manifest_builder(&self) -> crate::types::ManifestBuilder {
        match self.memory_budget {
            Some(bytes) => crate::types::ManifestBuilder::with_budget(bytes, &std::env::temp_dir()),
            None => crate::types::ManifestBuilder::default(),
        }
    }
}

/// Live counts of a running scan, read by progress displays while it runs.
#[derive(Debug, Default)]
pub struct ScanCounter {
    entries: AtomicU64,
    bytes: AtomicU64,
    /// Listing requests in flight now.
    listing: AtomicU64,
}

impl ScanCounter {
    /// Sets how many listing requests are in flight.
    pub fn set_listing(&self, in_flight: usize) {
        self.listing.store(in_flight as u64, Ordering::Relaxed);
    }

    /// Listing requests in flight now.
    pub fn listing(&self) -> u64 {
        self.listing.load(Ordering::Relaxed)
    }

    /// The side's line of a scan's progress, `elapsed` into it.
    pub fn describe(&self, elapsed: std::time::Duration) -> String {
        let (entries, bytes) = self.get();
        crate::format::scan_side(entries, bytes, self.listing(), elapsed)
    }

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

/// How to reach each kind of store: flags, environment and config.toml merged.
#[derive(Clone, Debug, Default)]
pub struct StoreSettings {
    pub s3: S3Settings,
    pub azure: AzureSettings,
    pub gcs: GcsSettings,
    pub sftp: SftpSettings,
    /// Retries and stall detection for every request, on every store.
    pub retry: RetryPolicy,
    /// Where object stores keep signature sidecars (`--sidecars`).
    pub sidecars: sidecars::SidecarLayout,
}

impl StoreSettings {
    /// The same, writing files in `class` (the destination's settings).
    pub fn writing_in(&self, class: Option<&StorageClass>) -> StoreSettings {
        let mut settings = self.clone();
        let name = class.map(|c| c.name.clone());
        settings.s3.storage_class.clone_from(&name);
        settings.azure.storage_class.clone_from(&name);
        settings.gcs.storage_class = name;
        settings
    }
}

/// One side of a sync. Cheap to clone (stores share their clients).
#[derive(Clone, Debug)]
pub enum Storage {
    Local(LocalStorage),
    Object(SharedStore),
}

impl Storage {
    /// The requests made to the side so far, by class (`None`: a local
    /// disk, which makes none).
    pub fn requests(&self) -> Option<std::sync::Arc<requests::RequestCounts>> {
        match self {
            Storage::Local(_) => None,
            Storage::Object(store) => Some(store.info().requests.clone()),
        }
    }

    /// Opens the store for a location (its kind connects to it).
    pub async fn open(
        location: &Location,
        settings: &StoreSettings,
    ) -> Result<Storage, StorageError> {
        match location {
            Location::Local(path) => Ok(Storage::Local(LocalStorage::new(path.clone()))),
            Location::Remote(remote) => {
                Ok(Storage::Object((remote.kind.open)(remote, settings).await?))
            }
        }
    }

    pub fn location(&self) -> Location {
        match self {
            Storage::Local(local) => Location::Local(local.root().to_path_buf()),
            Storage::Object(store) => {
                let location = store.url_of(store.prefix());
                Location::parse(&location).unwrap_or(Location::Local(location.into()))
            }
        }
    }

    /// The object store, if this side is one.
    pub fn object_store(&self) -> Option<&SharedStore> {
        match self {
            Storage::Object(store) => Some(store),
            Storage::Local(_) => None,
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
            Storage::Object(store) => {
                objects::list_tree(store.as_ref(), &filter, options, &counter).await
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
            Storage::Object(store) => objects::head_path(store.as_ref(), path).await,
        }
    }

    /// Removes one entry, as planned (a directory only when it is empty).
    pub async fn delete(&self, path: &RelPath, planned: &Entry) -> Result<(), StorageError> {
        let kind = planned.kind;
        match self {
            Storage::Local(local) => {
                let local = local.clone();
                let path = path.clone();
                run_blocking(move || local.delete(&path, kind)).await
            }
            // A directory is implied by keys, or stands as a `dir/` marker
            // (an empty one, kept with -a): the marker goes, if there is one.
            Storage::Object(store) if kind == EntryKind::Dir => {
                let marker = format!("{}/", store.key_of(path));
                store.delete_keys(&[marker]).await
            }
            Storage::Object(store) => {
                objects::delete_path(store.as_ref(), path, planned.sidecar_in()).await
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
