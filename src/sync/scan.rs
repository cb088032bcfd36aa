//! Scanning both sides concurrently, and (with `--checksum`) hashing the files
//! whose sizes match so the pure diff can compare content.

use std::sync::Arc;

use rayon::prelude::*;

use super::SyncOptions;
use crate::filter::{Filter, FilterError};
use crate::storage::{
    ListOptions, Listing, LocalStorage, ObjectStore, ScanCounter, Storage, StorageError,
};
use itertools::{EitherOrBoth, Itertools};

use crate::types::{Entry, EntryKind, ManifestEntry, RelPath, by_path};

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
    let filter = Arc::new(Filter::with_list(
        &options.filters,
        options.files_from.as_deref(),
    )?);
    let list_options = ListOptions {
        symlinks: options.archive,
        list_requests: options.list_requests,
        // Both sides scan at once: half each.
        memory_budget: options.memory_budget.map(|b| b / 2),
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
        let wanted = checksum_candidates(&scan);
        let requests = options.list_requests;
        let src_hashes = hash_side(source, &scan.source, &wanted, requests).await;
        let dst_hashes = hash_side(destination, &scan.destination, &wanted, requests).await;
        set_hashes(&mut scan.source, &wanted, src_hashes);
        set_hashes(&mut scan.destination, &wanted, dst_hashes);
    }
    Ok(scan)
}

/// Every file present on both sides with equal sizes (files of different sizes
/// differ anyway), in path order.
fn checksum_candidates(scan: &Scan) -> Arc<Vec<RelPath>> {
    let (src, dst) = (&scan.source.manifest, &scan.destination.manifest);
    Arc::new(
        src.iter()
            .merge_join_by(dst.iter(), by_path)
            .filter_map(|joined| match joined {
                EitherOrBoth::Both(s, d)
                    if s.entry.kind == EntryKind::File
                        && d.entry.kind == EntryKind::File
                        && s.entry.size == d.entry.size =>
                {
                    Some(s.path)
                }
                _ => None,
            })
            .collect(),
    )
}

/// The entries of `manifest` at the `wanted` paths (both in path order), in
/// that order: `None` where it has none.
fn entries_at<'a>(
    manifest: &'a crate::types::Manifest,
    wanted: &'a [RelPath],
) -> impl Iterator<Item = (&'a RelPath, Option<Entry>)> + 'a {
    let mut entries = manifest.iter().peekable();
    wanted.iter().map(move |path| {
        while entries.next_if(|e| e.path < *path).is_some() {}
        (path, entries.next_if(|e| e.path == *path).map(|e| e.entry))
    })
}

/// blake3 of each wanted file on one side. Local files are hashed in parallel;
/// objects carry theirs in metadata (small uploads) or in their fresh sidecar
/// (signed uploads). A file with no hash is compared by size and time.
///
/// Where the listing carried the metadata (Azure, GCS), its blake3 is taken
/// as it is; a HEAD is made only where a listing cannot say (S3), as many in
/// flight as the store's listing requests (`requests` overrides).
async fn hash_side(
    storage: &Storage,
    listing: &Listing,
    wanted: &Arc<Vec<RelPath>>,
    requests: Option<usize>,
) -> Vec<Option<String>> {
    match storage {
        Storage::Local(local) => {
            let (local, paths) = (local.clone(), wanted.clone());
            tokio::task::spawn_blocking(move || {
                paths
                    .par_iter()
                    .map(|path| local_hash(&local, path))
                    .collect()
            })
            .await
            .unwrap_or_else(|_| vec![None; wanted.len()])
        }
        Storage::Object(store) => {
            use futures::stream::{self, StreamExt};
            let in_flight = store.info().requests_in_flight(requests);
            stream::iter(entries_at(&listing.manifest, wanted))
                .map(|(path, entry)| async move {
                    recorded_hash(store.as_ref(), path, &entry?).await
                })
                .buffered(in_flight)
                .collect()
                .await
        }
    }
}

async fn recorded_hash(store: &dyn ObjectStore, path: &RelPath, entry: &Entry) -> Option<String> {
    if let Some(listed) = entry.sums().blake3 {
        return Some(blake3::Hash::from_bytes(listed).to_hex().to_string());
    }
    let head = store.head(&store.key_of(path)).await.ok()??;
    let hash = super::sidecar::recorded_blake3(store, path, entry, &head)
        .await
        .ok()??;
    Some(blake3::Hash::from_bytes(hash).to_hex().to_string())
}

fn set_hashes(listing: &mut Listing, paths: &[RelPath], hashes: Vec<Option<String>>) {
    let updates = entries_at(&listing.manifest, paths)
        .zip(hashes)
        .filter_map(|((path, entry), hash)| {
            let mut entry = entry?;
            entry.set_blake3(hash?);
            Some(ManifestEntry {
                path: path.clone(),
                entry,
            })
        })
        .collect();
    listing.manifest.replace(updates);
}

fn local_hash(local: &LocalStorage, path: &RelPath) -> Option<String> {
    let mut hasher = blake3::Hasher::new();
    match hasher.update_mmap_rayon(local.path_of(path)) {
        Ok(_) => Some(hasher.finalize().to_hex().to_string()),
        Err(e) => {
            tracing::warn!("{path}: cannot read for --checksum: {e}");
            None
        }
    }
}
