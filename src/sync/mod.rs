//! The sync pipeline: scan → diff → plan → execute, each step a module.

pub mod backup;
pub mod check;
pub mod conflict;
pub mod diff;
pub mod estimate;
pub mod execute;
pub mod pieces;
pub mod plan;
pub mod refine;
mod report;
pub mod scan;
pub mod session;
pub mod shard;
pub mod sidecar;
pub mod sidecar_update;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod transfer;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::filter::FilterRule;
use crate::types::SyncAction;
use crate::uri::Location;

pub use backup::{Backup, BackupDir, BackupDirError, BackupTarget};
pub use execute::{ExecOptions, execute};
pub use plan::{PlanError, PlanItem, PlanStats, SyncPlan, build_plan};
pub use report::ExecReport;
pub use scan::{Scan, ScanError, ScanProgress, scan};

/// Everything that decides what a plan contains. Saved inside the plan so that
/// `apply --replan` plans again exactly alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOptions {
    pub delete: bool,
    pub max_delete: Option<u64>,
    /// Listing requests in flight per side (`None`: the store's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_requests: Option<usize>,
    /// Memory both scans may hold before they spill (`None`: no limit). A
    /// setting of the run, not of the plan: never saved.
    #[serde(skip)]
    pub memory_budget: Option<u64>,
    pub archive: bool,
    pub checksum: bool,
    pub delta_threshold: u64,
    pub block_size: u64,
    pub allow_empty_source: bool,
    pub filters: Vec<FilterRule>,
    /// What a delta upload does when the object has no usable sidecar.
    #[serde(default)]
    pub remote_signature: RemoteSignature,
    /// `--unverified-rebuilds`: where no checksum of the store's own can
    /// check a file rebuilt by delta (an SSH server without hash commands,
    /// an object without checksums), trust its sidecar rather than sending
    /// the file whole (or, uploading to an SSH server, reading back what is
    /// copied).
    #[serde(default)]
    pub unverified_rebuilds: bool,
    /// rsync's selection and comparison flags.
    #[serde(default)]
    pub selection: Selection,
    /// `--backup` / `--backup-dir`: where replaced and deleted files are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Backup>,
    /// `--storage-class`: the class files are written in at the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<crate::storage::StorageClass>,
    /// `--files-from`: only these paths (and what is below them) take part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_from: Option<Vec<crate::types::RelPath>>,
    /// `--sidecars`: where both sides keep signature sidecars. Saved with
    /// the plan, whose sidecar moves were planned for it.
    #[serde(default)]
    pub sidecars: crate::storage::sidecars::SidecarLayout,
}

impl Default for SyncOptions {
    /// What `hugesync sync SRC DST` does with no flags and no config file.
    fn default() -> Self {
        SyncOptions {
            delete: false,
            max_delete: None,
            list_requests: None,
            memory_budget: None,
            archive: false,
            checksum: false,
            delta_threshold: 32 * 1024 * 1024,
            block_size: u64::from(crate::signature::DEFAULT_BLOCK_SIZE),
            allow_empty_source: false,
            filters: Vec::new(),
            remote_signature: RemoteSignature::default(),
            unverified_rebuilds: false,
            selection: Selection::default(),
            backup: None,
            storage_class: None,
            files_from: None,
            sidecars: Default::default(),
        }
    }
}

/// rsync's selection and comparison flags, with rsync's meanings: which files
/// a plan transfers, and when two files count as the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Selection {
    /// `-u`: skip files that are newer at the destination.
    pub update: bool,
    /// Skip every file that exists at the destination.
    pub ignore_existing: bool,
    /// Skip every file that does not exist at the destination.
    pub existing: bool,
    /// Files of equal size are the same, whatever their times.
    pub size_only: bool,
    /// `-I`: transfer files even when size and time match.
    pub ignore_times: bool,
    /// Times within this many seconds of each other are equal.
    pub modify_window_s: u64,
    /// Files smaller than this are not transferred.
    pub min_size: Option<u64>,
    /// Files larger than this are not transferred.
    pub max_size: Option<u64>,
    /// `-W`: never by delta.
    pub whole_file: bool,
}

impl Selection {
    /// The flags in effect, as the plan header names them (empty: none).
    pub fn describe(&self) -> Vec<String> {
        let mut on = Vec::new();
        let flags = [
            (self.update, "--update"),
            (self.ignore_existing, "--ignore-existing"),
            (self.existing, "--existing"),
            (self.size_only, "--size-only"),
            (self.ignore_times, "--ignore-times"),
            (self.whole_file, "--whole-file"),
        ];
        on.extend(
            flags
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, f)| f.to_string()),
        );
        if self.modify_window_s > 0 {
            on.push(format!("--modify-window {}", self.modify_window_s));
        }
        if let Some(min) = self.min_size {
            on.push(format!("--min-size {}", crate::format::bytes(min)));
        }
        if let Some(max) = self.max_size {
            on.push(format!("--max-size {}", crate::format::bytes(max)));
        }
        on
    }
}

/// Where a delta upload gets the old object's signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RemoteSignature {
    /// Only from its `.hssig` sidecar; without one the file is uploaded whole.
    #[default]
    Sidecar,
    /// Without a usable sidecar, read the object once to sign it: for links where
    /// downloading is cheaper than uploading.
    Generate,
}

impl RemoteSignature {
    pub fn name(self) -> &'static str {
        match self {
            RemoteSignature::Sidecar => "sidecar",
            RemoteSignature::Generate => "generate",
        }
    }
}

/// The whole-entry action for a pair of sides.
pub fn transfer_action(source: &Location, destination: &Location) -> SyncAction {
    match (source.is_local(), destination.is_local()) {
        (true, false) => SyncAction::Upload,
        (false, true) => SyncAction::Download,
        _ => SyncAction::Copy,
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocationConflict {
    #[error("source and destination are the same location ({path})")]
    Same { path: String },
    #[error(
        "the destination {inner} lies inside the source {outer}; choose a destination outside it"
    )]
    DestinationInsideSource { outer: String, inner: String },
    #[error(
        "the source {inner} lies inside the destination {outer}; syncing would overwrite or delete the source itself"
    )]
    SourceInsideDestination { outer: String, inner: String },
}

/// Refuses roots that overlap, on local disks and on one object store alike:
/// syncing a tree into itself copies its own output, and with `--delete` a
/// source inside the destination would be deleted.
pub fn check_locations(source: &Location, destination: &Location) -> Result<(), LocationConflict> {
    match (source, destination) {
        (Location::Local(src), Location::Local(dst)) => {
            let (src, dst) = (resolve(src), resolve(dst));
            overlap(&src, &dst, |p| p.display().to_string())
        }
        _ => match (object_root(source), object_root(destination)) {
            // Keys compare as paths of `/`-separated segments below the bucket.
            (Some(src), Some(dst)) => overlap(&src, &dst, |p| {
                let text = p.display().to_string();
                text.trim_end_matches('/').to_string()
            }),
            _ => Ok(()),
        },
    }
}

/// The same refusal for roots as their servers resolve them (an SSH server:
/// aliases, `~`, `..`, symbolic links), where both sides are on one server.
pub fn check_resolved_roots(
    source: &crate::storage::ResolvedRoot,
    destination: &crate::storage::ResolvedRoot,
) -> Result<(), LocationConflict> {
    if source.server != destination.server {
        return Ok(());
    }
    let show = |p: &Path| format!("{}:{}", source.server, p.display());
    overlap(Path::new(&source.path), Path::new(&destination.path), show)
}

/// `scheme://bucket/prefix` of an object-store location, as a path, so that
/// `bkt/ov` and `bkt/ov/sub` nest and `bkt/ov` and `bkt/overflow` do not.
fn object_root(location: &Location) -> Option<PathBuf> {
    let (bucket, prefix) = location.bucket_and_prefix()?;
    let scheme = location.scheme();
    Some(PathBuf::from(format!("{scheme}://{bucket}/")).join(prefix.trim_end_matches('/')))
}

fn overlap(src: &Path, dst: &Path, show: impl Fn(&Path) -> String) -> Result<(), LocationConflict> {
    if src == dst {
        Err(LocationConflict::Same { path: show(src) })
    } else if dst.starts_with(src) {
        Err(LocationConflict::DestinationInsideSource {
            outer: show(src),
            inner: show(dst),
        })
    } else if src.starts_with(dst) {
        Err(LocationConflict::SourceInsideDestination {
            outer: show(dst),
            inner: show(src),
        })
    } else {
        Ok(())
    }
}

/// Canonicalizes the longest existing ancestor and appends the rest, so paths that
/// do not exist yet compare correctly too.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut out = canonical;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_roots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Location::Local(dir.path().join("a"));
        let inner = Location::Local(dir.path().join("a/b"));
        let b = Location::Local(dir.path().join("b"));
        std::fs::create_dir(dir.path().join("a")).unwrap();
        assert!(matches!(
            check_locations(&a, &a),
            Err(LocationConflict::Same { .. })
        ));
        assert!(matches!(
            check_locations(&a, &inner),
            Err(LocationConflict::DestinationInsideSource { .. })
        ));
        assert!(matches!(
            check_locations(&inner, &a),
            Err(LocationConflict::SourceInsideDestination { .. })
        ));
        assert!(check_locations(&a, &b).is_ok());
        let dotted = Location::Local(dir.path().join("a/../a"));
        assert!(check_locations(&a, &dotted).is_err());
    }

    #[test]
    fn roots_resolved_on_one_server_are_compared_as_paths() {
        use crate::storage::ResolvedRoot;
        let root = |server: &str, path: &str| ResolvedRoot {
            server: server.into(),
            path: path.into(),
        };
        let (d, sub) = (root("u@h:22", "/srv/d"), root("u@h:22", "/srv/d/sub"));
        assert!(matches!(
            check_resolved_roots(&d, &d),
            Err(LocationConflict::Same { .. })
        ));
        assert!(matches!(
            check_resolved_roots(&sub, &d),
            Err(LocationConflict::SourceInsideDestination { .. })
        ));
        assert!(matches!(
            check_resolved_roots(&d, &sub),
            Err(LocationConflict::DestinationInsideSource { .. })
        ));
        assert!(check_resolved_roots(&d, &root("u@h:22", "/srv/dd")).is_ok());
        assert!(check_resolved_roots(&d, &root("u@other:22", "/srv/d")).is_ok());
    }

    #[test]
    fn overlapping_prefixes_on_one_store_are_refused() {
        let at = |uri: &str| Location::parse(uri).unwrap();
        assert!(matches!(
            check_locations(&at("s3://bkt/ov"), &at("s3://bkt/ov/")),
            Err(LocationConflict::Same { .. })
        ));
        assert!(matches!(
            check_locations(&at("s3://bkt/ov"), &at("s3://bkt/ov/sub")),
            Err(LocationConflict::DestinationInsideSource { .. })
        ));
        assert!(matches!(
            check_locations(&at("az://ctr/ov/sub"), &at("az://ctr/ov")),
            Err(LocationConflict::SourceInsideDestination { .. })
        ));
        assert!(matches!(
            check_locations(&at("s3://bkt"), &at("s3://bkt/x")),
            Err(LocationConflict::DestinationInsideSource { .. })
        ));
        // Other prefixes, buckets or stores do not overlap.
        assert!(check_locations(&at("s3://bkt/ov"), &at("s3://bkt/overflow")).is_ok());
        assert!(check_locations(&at("s3://bkt/ov"), &at("s3://other/ov")).is_ok());
        assert!(check_locations(&at("s3://bkt/ov"), &at("az://bkt/ov")).is_ok());
        let message = check_locations(&at("s3://bkt/ov"), &at("s3://bkt/ov/sub"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("s3://bkt/ov/sub"), "{message}");
    }
}
