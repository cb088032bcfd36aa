//! Scanning both sides concurrently, and (with `--checksum`) taking the
//! checksums of the files whose sizes match so the pure diff can compare
//! content.

use std::sync::Arc;

use super::SyncOptions;
use super::check::CheckProgress;
use super::check::sync_checksum::{ContentCompared, record_content_sums};
use crate::filter::{Filter, FilterError};
use crate::storage::{ListOptions, Listing, ScanCounter, Storage, StorageError};

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
    /// `--checksum`'s comparison of the same-size pairs, once listed.
    pub content: Arc<CheckProgress>,
}

/// Both listings.
#[derive(Debug, Default)]
pub struct Scan {
    pub source: Listing,
    pub destination: Listing,
    /// What `--checksum` compared (its checksums are on the entries).
    pub compared: Option<ContentCompared>,
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
        compared: None,
    };
    if !scan.source.manifest.root_exists {
        return Err(ScanError::SourceMissing {
            location: source.location().to_string(),
        });
    }
    if options.checksum {
        let compared = record_content_sums(
            &mut scan,
            source,
            destination,
            options.list_requests,
            progress,
        )
        .await;
        scan.compared = Some(compared);
    }
    Ok(scan)
}
