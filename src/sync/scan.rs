//! Scanning both sides concurrently, and (with `--checksum`) hashing the files
//! whose sizes match so the pure diff can compare content.

use std::sync::Arc;

use rayon::prelude::*;

use super::SyncOptions;
use crate::filter::{Filter, FilterError};
use crate::storage::{ListOptions, Listing, ScanCounter, Storage, StorageError};
use crate::types::{EntryKind, RelPath};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("cannot scan the source: {0}")]
    Source(#[source] StorageError),
    #[error("cannot scan the destination: {0}")]
    Destination(#[source] StorageError),
    #[error("the source {location} does not exist")]
    SourceMissing { location: String },
}

/// Live counters for a scan in progress, one per side.
#[derive(Debug, Default, Clone)]
pub struct ScanProgress {
    pub source: Arc<ScanCounter>,
    pub destination: Arc<ScanCounter>,
}

/// Both listings.
#[derive(Debug, Default)]
pub struct Scan {
    pub source: Listing,
    pub destination: Listing,
}

impl Scan {
    /// Unreadable entries on either side (they make the run a partial failure).
    pub fn error_count(&self) -> usize {
        self.source
            .issues
            .iter()
            .chain(&self.destination.issues)
            .filter(|i| i.is_error())
            .count()
    }
}

/// Lists both sides at once, applying the options' filters to each.
pub async fn scan(
    source: &Storage,
    destination: &Storage,
    options: &SyncOptions,
    progress: &ScanProgress,
) -> Result<Scan, ScanError> {
    let filter = Arc::new(Filter::new(&options.filters)?);
    let list_options = ListOptions {
        symlinks: options.archive,
    };
    let (src, dst) = tokio::join!(
        source.list(filter.clone(), list_options, progress.source.clone()),
        destination.list(filter, list_options, progress.destination.clone()),
    );
    let mut scan = Scan {
        source: src.map_err(ScanError::Source)?,
        destination: dst.map_err(ScanError::Destination)?,
    };
    if !scan.source.manifest.root_exists {
        return Err(ScanError::SourceMissing {
            location: source.location().to_string(),
        });
    }
    if options.checksum {
        let (source, destination) = (source.clone(), destination.clone());
        scan = tokio::task::spawn_blocking(move || {
            add_checksums(&mut scan, &source, &destination);
            scan
        })
        .await
        .map_err(|e| {
            ScanError::Source(StorageError::Task {
                location: "checksum".into(),
                reason: e.to_string(),
            })
        })?;
    }
    Ok(scan)
}

/// Hashes (blake3, in parallel) every file present on both sides with equal sizes;
/// files of different sizes differ anyway. A file that cannot be read keeps no hash
/// and so is compared by size and mtime.
fn add_checksums(scan: &mut Scan, source: &Storage, destination: &Storage) {
    let dst_sizes: std::collections::HashMap<&RelPath, u64> = scan
        .destination
        .manifest
        .entries()
        .iter()
        .filter(|e| e.entry.kind == EntryKind::File)
        .map(|e| (&e.path, e.entry.size))
        .collect();
    let wanted: Vec<RelPath> = scan
        .source
        .manifest
        .entries()
        .iter()
        .filter(|e| {
            e.entry.kind == EntryKind::File && dst_sizes.get(&e.path) == Some(&e.entry.size)
        })
        .map(|e| e.path.clone())
        .collect();
    drop(dst_sizes);
    let hash_side = |storage: &Storage| -> Vec<Option<String>> {
        wanted
            .par_iter()
            .map(|path| content_hash(storage, path))
            .collect()
    };
    let src_hashes = hash_side(source);
    let dst_hashes = hash_side(destination);
    set_hashes(&mut scan.source, &wanted, src_hashes);
    set_hashes(&mut scan.destination, &wanted, dst_hashes);
}

fn set_hashes(listing: &mut Listing, paths: &[RelPath], hashes: Vec<Option<String>>) {
    let mut wanted = paths.iter().zip(hashes).peekable();
    // Both sequences are in path order: one merge pass.
    for entry in listing.manifest.entries_mut() {
        while wanted.peek().is_some_and(|(p, _)| **p < entry.path) {
            wanted.next();
        }
        if let Some((path, hash)) = wanted.peek_mut()
            && **path == entry.path
            && let Some(hash) = hash.take()
        {
            entry.entry.set_blake3(hash);
        }
    }
}

fn content_hash(storage: &Storage, path: &RelPath) -> Option<String> {
    match storage {
        Storage::Local(local) => {
            let mut hasher = blake3::Hasher::new();
            match hasher.update_mmap_rayon(local.path_of(path)) {
                Ok(_) => Some(hasher.finalize().to_hex().to_string()),
                Err(e) => {
                    tracing::warn!("{path}: cannot read for --checksum: {e}");
                    None
                }
            }
        }
        // The object's blake3 comes from its sidecar (delta upload); without one
        // the file is compared by size and time.
        Storage::S3(_) => None,
    }
}
