//! What HugeSync knows about each kind of store before it connects to one:
//! how its locations are written and checked, and its facts as data (time
//! precision, listing page, storage classes, price service). Each store
//! declares its [`StoreKind`] in its own folder; [`KINDS`] registers them,
//! and everything outside `storage/` asks a location's kind instead of
//! matching on which store it is (rclone registers each backend's `RegInfo`
//! the same way).

use futures::future::BoxFuture;

use super::{SharedStore, StorageError, StoreSettings};
use crate::uri::{LocationError, RemoteLocation, TimeGrain};

/// A location's container and prefix, as a kind parses them.
pub type Parsed = Result<(String, String), LocationError>;

/// One kind of store, as data.
pub struct StoreKind {
    /// The URL scheme of its locations (`s3`, `az`, `gs`, `sftp`).
    pub scheme: &'static str,
    /// The service's name in messages (`S3`, `Azure Blob Storage`).
    pub service: &'static str,
    /// What the part after the scheme names (`bucket`, `container`,
    /// `server`), in messages.
    pub container: &'static str,
    /// Parses what follows `scheme://` into the container and the prefix
    /// (empty, or ending in `/`). `uri` is the whole text, for messages.
    pub parse: fn(uri: &str, rest: &str) -> Parsed,
    /// Parses rsync's `[USER@]HOST:PATH`, on the kind that takes that form.
    pub parse_host_path: Option<fn(uri: &str) -> Parsed>,
    /// The store's key prefix for a location's prefix (the same text on
    /// most stores; an SSH server's keys are paths: `/srv/d/`, or `d/`
    /// below the home).
    pub key_prefix: fn(prefix: &str) -> String,
    /// Whether an absolute path (`/x/y`) names a directory on the store,
    /// as on an SSH server (`--backup-dir /x/y`).
    pub absolute_paths: bool,
    /// How finely its files keep their modification times.
    pub time_grain: TimeGrain,
    /// Whether its listings carry each file's permission bits.
    pub lists_modes: bool,
    /// The delta block size for files kept there, when it is not the
    /// default (`signature::DEFAULT_BLOCK_SIZE`).
    pub delta_block_size: Option<u32>,
    /// Keys a listing request returns (for the cost estimate).
    pub list_page: u64,
    /// Listing requests in flight at once by default (`--list-requests`):
    /// what the service takes from one client without slowing down.
    pub list_requests: usize,
    /// Its storage classes (`--storage-class`), if it has any.
    pub classes: Option<&'static ClassTable>,
    /// Whose prices its requests are charged at.
    pub prices: PriceService,
    /// Connects to a location of this kind.
    pub open: for<'a> fn(
        &'a RemoteLocation,
        &'a StoreSettings,
    ) -> BoxFuture<'a, Result<SharedStore, StorageError>>,
}

impl std::fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.scheme)
    }
}

/// A store's storage classes, in its spelling, with their access.
#[derive(Debug)]
pub struct ClassTable {
    /// What the store calls them (`storage class`, `access tier`).
    pub word: &'static str,
    pub classes: &'static [(&'static str, super::ClassAccess)],
}

/// Whose price sheet a store's requests and bytes are charged at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceService {
    /// Nothing is charged per request (a local disk, an SSH server).
    Free,
    /// The sheet of this service (`azure`, `gcs`).
    Named(&'static str),
    /// An S3-compatible service: AWS's sheet, or the `--provider`'s, or
    /// none known for an endpoint of unknown ownership.
    S3Compatible,
}

/// Every kind of store, by scheme: the registration list.
pub static KINDS: &[&StoreKind] = &[
    &super::s3::KIND,
    &super::azure::KIND,
    &super::gcs::KIND,
    &super::sftp::KIND,
    &super::memory::KIND,
];

/// The kind of store with this scheme (any case).
pub fn by_scheme(scheme: &str) -> Option<&'static StoreKind> {
    KINDS
        .iter()
        .copied()
        .find(|kind| kind.scheme.eq_ignore_ascii_case(scheme))
}

/// The schemes known, for messages (`s3://, gs://, …`).
pub fn schemes() -> String {
    KINDS
        .iter()
        .map(|kind| format!("{}://", kind.scheme))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key prefix of stores whose keys are the location's prefix itself.
pub fn same_prefix(prefix: &str) -> String {
    prefix.to_string()
}

/// The bucket-and-prefix form most stores share: `NAME/prefix`, the name
/// checked by `check_name` (the service's naming rules, so that a typo fails
/// here and not after a scan).
pub fn parse_bucket(
    uri: &str,
    rest: &str,
    kind: &'static StoreKind,
    check_name: fn(&str) -> Result<(), &'static str>,
) -> Result<(String, String), LocationError> {
    let (bucket, raw_prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(LocationError::MissingBucket {
            uri: uri.into(),
            what: kind.container,
            scheme: kind.scheme,
        });
    }
    if let Err(why) = check_name(bucket) {
        return Err(LocationError::BadBucket {
            uri: uri.into(),
            what: kind.container,
            name: bucket.into(),
            why,
        });
    }
    let prefix =
        crate::uri::normalize_prefix(raw_prefix).map_err(|why| LocationError::BadPrefix {
            uri: uri.into(),
            why,
        })?;
    Ok((bucket.to_string(), prefix))
}

/// The naming rules S3, GCS and Azure share: 3 to `max` characters of
/// `allowed`, a letter or digit at each end, no `..`.
pub fn check_bucket_name(
    name: &str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_text: &'static str,
) -> Result<(), &'static str> {
    if name.len() < 3 || name.len() > max {
        return Err("must be 3 to 63 characters long");
    }
    if !name.chars().all(allowed) {
        return Err(allowed_text);
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err("must start and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("consecutive `.` or `-` are not allowed");
    }
    Ok(())
}
