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

use itertools::{EitherOrBoth, Itertools};
use serde::{Deserialize, Serialize};

use super::{Alike, CheckOptions, CheckProgress, CheckReport, Known, Pair, Side, compare};
use crate::storage::Storage;
use crate::sync::scan::Scan;
use crate::types::{EntryKind, Manifest, ManifestEntry, RelPath, by_path};

/// Pairs compared at once: enough to keep every request and core busy, few
/// enough that a tree of 10⁸ files never has them all in memory.
const CHUNK: usize = 50_000;

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
) -> ContentCompared {
    let sides = [Side::of(source), Side::of(destination)];
    let progress = Arc::new(CheckProgress::default());
    let mut compared = ContentCompared::default();
    let mut after: Option<RelPath> = None;
    loop {
        let mut pairs = next_pairs(scan, after.as_ref(), sides);
        let Some(last) = pairs.last() else {
            break;
        };
        after = Some(last.path.clone());
        compared.pairs += pairs.len() as u64;
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
    compared.requests = progress.requests.load(std::sync::atomic::Ordering::Relaxed);
    compared.bytes_read = progress
        .bytes_read
        .load(std::sync::atomic::Ordering::Relaxed);
    compared
}

/// The next [`CHUNK`] file pairs of one size past `after`, in path order.
fn next_pairs(scan: &Scan, after: Option<&RelPath>, sides: [Side<'_>; 2]) -> Vec<Pair> {
    files_after(&scan.source.manifest, after)
        .merge_join_by(files_after(&scan.destination.manifest, after), by_path)
        .filter_map(|joined| match joined {
            EitherOrBoth::Both(s, d) if s.entry.size == d.entry.size => {
                Some(Pair::new(s.path, [s.entry, d.entry], sides))
            }
            _ => None,
        })
        .take(CHUNK)
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
    entries.filter(|e| e.entry.kind == EntryKind::File)
}
