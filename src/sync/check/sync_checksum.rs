//! `--checksum` on a sync: every file present on both sides with one size is
//! compared as `check` compares it — by what the listings carry (S3 ETags,
//! GCS MD5/CRC32C, Azure Content-MD5, the blake3 in listed metadata), a
//! local file computing whichever kind the other side holds, a HEAD only
//! where a listing holds no checksum of the whole content (or to confirm a
//! difference found by a listed MD5) — and the checksums it took are
//! recorded on the scan's entries, for the diff to compare
//! ([`ContentSums::same_content`]).
//!
//! Pairs are taken a chunk at a time, so what this holds follows the chunk,
//! not the tree.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use itertools::{EitherOrBoth, Itertools};
use serde::{Deserialize, Serialize};

use super::{
    Alike, CheckOptions, CheckProgress, CheckReport, Known, PAIRS_AT_ONCE, Pair, Side, compare,
};
use crate::storage::Storage;
use crate::sync::scan::Scan;
use crate::types::{EntryKind, Manifest, ManifestEntry, RelPath, by_path};

/// What `--checksum` compared, for the plan's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentCompared {
    /// Same-path, same-size file pairs.
    pub pairs: u64,
    /// Pairs found alike, by the checksum that settled them.
    pub alike: Alike,
    /// Pairs whose content differs.
    pub differ: u64,
    /// Pairs no checksum could settle (a file unreadable, an object with
    /// none the other side can compute): their times decide.
    pub unsettled: u64,
    /// Requests beyond the listings (HEADs, sidecar GETs).
    pub requests: u64,
    /// Bytes of local files read to compute checksums.
    pub bytes_read: u64,
}

/// Compares the content of every same-size file pair of `scan` and records
/// on both sides' entries the checksums that settled it.
pub async fn record_content_sums(
    scan: &mut Scan,
    source: &Storage,
    destination: &Storage,
    requests: Option<usize>,
    progress: &crate::sync::ScanProgress,
) -> ContentCompared {
    let progress = progress.content.clone();
    record_in_chunks(
        scan,
        [source, destination],
        requests,
        progress,
        PAIRS_AT_ONCE,
    )
    .await
}

async fn record_in_chunks(
    scan: &mut Scan,
    [source, destination]: [&Storage; 2],
    requests: Option<usize>,
    progress: Arc<CheckProgress>,
    chunk: usize,
) -> ContentCompared {
    let sides = [Side::of(source), Side::of(destination)];
    let (requests_before, bytes_before) = (
        progress.requests.load(Relaxed),
        progress.bytes_read.load(Relaxed),
    );
    let mut compared = ContentCompared::default();
    let mut after: Option<RelPath> = None;
    loop {
        let mut pairs = next_pairs(scan, after.as_ref(), sides, chunk);
        let Some(last) = pairs.last() else {
            break;
        };
        after = Some(last.path.clone());
        compared.pairs += pairs.len() as u64;
        progress.pairs.fetch_add(pairs.len() as u64, Relaxed);
        let mut report = CheckReport::default();
        let settled = compare(
            &mut pairs,
            sides,
            CheckOptions {
                download: false,
                requests,
            },
            &progress,
            &mut report,
        )
        .await;
        for unchecked in &report.unchecked {
            tracing::warn!(
                "{}: cannot compare for --checksum ({}); its times decide",
                unchecked.path,
                unchecked.error
            );
        }
        let mut updates: [Vec<ManifestEntry>; 2] = Default::default();
        for (pair, evidence) in pairs.into_iter().zip(settled) {
            match evidence.and_then(|e| pair.verdict(e).map(|same| (e, same))) {
                Some((evidence, true)) => compared.alike.count(evidence),
                Some((_, false)) => compared.differ += 1,
                None => compared.unsettled += 1,
            }
            for (side, update) in updates.iter_mut().enumerate() {
                // What this side holds now that it did not when listed: a
                // local file's computed checksums, an object's looked-up ones.
                let sums = match pair.known[side] {
                    Known::Computable => pair.sums[side],
                    Known::Held(held) if pair.looked_up => held,
                    Known::Held(_) => continue,
                };
                if sums.is_empty() {
                    continue;
                }
                let mut entry = pair.entries[side].clone();
                entry.set_sums(sums);
                update.push(ManifestEntry {
                    path: pair.path.clone(),
                    entry,
                });
            }
        }
        let [src, dst] = updates;
        scan.source.manifest.replace(src);
        scan.destination.manifest.replace(dst);
    }
    // This comparison's share of the counters (they may have counted before).
    compared.requests = progress.requests.load(Relaxed) - requests_before;
    compared.bytes_read = progress.bytes_read.load(Relaxed) - bytes_before;
    compared
}

/// The next `chunk` file pairs of one size past `after`, in path order.
fn next_pairs(
    scan: &Scan,
    after: Option<&RelPath>,
    sides: [Side<'_>; 2],
    chunk: usize,
) -> Vec<Pair> {
    files_after(&scan.source.manifest, after)
        .merge_join_by(files_after(&scan.destination.manifest, after), by_path)
        .filter_map(|joined| match joined {
            EitherOrBoth::Both(s, d) if s.entry.size == d.entry.size => {
                Some(Pair::new(s.path, [s.entry, d.entry], sides))
            }
            _ => None,
        })
        .take(chunk)
        .collect()
}

/// The files of `manifest` past `after` (all with `None`), in path order.
fn files_after<'a>(
    manifest: &'a Manifest,
    after: Option<&'a RelPath>,
) -> impl Iterator<Item = ManifestEntry> + 'a {
    let entries: Box<dyn Iterator<Item = ManifestEntry> + 'a> = match after {
        Some(after) => Box::new(
            manifest
                .iter_from(after)
                .skip_while(move |e| e.path <= *after),
        ),
        None => Box::new(manifest.iter()),
    };
    let misplaced = manifest.misplaced_sidecars();
    entries
        .filter(|e| e.entry.kind == EntryKind::File)
        .map(move |mut e| {
            if let Some(misplaced) = misplaced {
                misplaced.mark(&e.path, &mut e.entry);
            }
            e
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ListOptions, LocalStorage, ScanCounter};

    #[test]
    fn checksums_recorded_in_chunks_are_those_of_one_chunk() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..30u8 {
            let name = format!("d{}/f{i:02}", i % 3);
            for (root, byte) in [(&src, i), (&dst, if i % 4 == 0 { i ^ 1 } else { i })] {
                std::fs::create_dir_all(root.path().join(format!("d{}", i % 3))).unwrap();
                std::fs::write(root.path().join(&name), [byte; 6]).unwrap();
            }
        }
        let local = |dir: &tempfile::TempDir| LocalStorage::new(dir.path().to_path_buf());
        let (src_local, dst_local) = (local(&src), local(&dst));
        let scan = || Scan {
            source: list(&src_local),
            destination: list(&dst_local),
            compared: None,
        };
        let (source, destination) = (
            Storage::Local(src_local.clone()),
            Storage::Local(dst_local.clone()),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut results = Vec::new();
        let progress = Arc::new(CheckProgress::default());
        for chunk in [PAIRS_AT_ONCE, 4] {
            let mut scan = scan();
            let compared = runtime.block_on(record_in_chunks(
                &mut scan,
                [&source, &destination],
                None,
                progress.clone(),
                chunk,
            ));
            let sums: Vec<_> = scan
                .source
                .manifest
                .iter()
                .chain(scan.destination.manifest.iter())
                .map(|e| (e.path, e.entry.sums()))
                .collect();
            results.push((compared, sums));
        }
        assert!(
            results[1] == results[0],
            "chunks of 4 differ from one chunk"
        );
        // Both runs counted on the scan's progress line.
        assert_eq!(
            progress.describe().as_deref(),
            Some("60 of 60 pairs settled, 720 B read, 0 requests")
        );
        let (compared, sums) = &results[0];
        assert_eq!((compared.pairs, compared.differ), (30, 8));
        assert_eq!(compared.alike.blake3, 22);
        assert_eq!(sums.iter().filter(|(_, s)| s.blake3.is_some()).count(), 60);
    }

    fn list(local: &LocalStorage) -> crate::storage::Listing {
        local
            .list(
                &Arc::new(crate::filter::Filter::default()),
                ListOptions {
                    symlinks: false,
                    list_requests: None,
                    memory_budget: None,
                },
                &ScanCounter::default(),
            )
            .unwrap()
    }
}
