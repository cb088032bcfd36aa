//! `hugesync check`: are two trees alike, without moving their data?
//!
//! Each file present on both sides with the same size is compared by a
//! checksum both sides hold, the store's own before HugeSync's bookkeeping,
//! cheapest first:
//!
//! 1. What the listings already carry costs nothing more: the store's own
//!    checksums (S3 single-part ETags, Azure Content-MD5, GCS md5Hash and
//!    CRC32C), else the blake3 HugeSync records in metadata (Azure and GCS
//!    list metadata) — which a rewrite that copied the metadata would carry
//!    over, so it never outranks the store's. A local file computes
//!    whichever kind the object holds.
//! 2. Where the listing holds no checksum of the whole content (multipart
//!    uploads, composite objects), one HEAD per object: S3's full-object
//!    CRC64NVME, else the blake3 in its metadata, else its fresh sidecar's.
//! 3. Otherwise the size alone, which the report says — or, with
//!    `--download`, the bytes themselves.
//!
//! A difference found by a listed MD5 is confirmed by a HEAD: under SSE-KMS
//! and SSE-C an S3 ETag is no MD5, which only the HEAD tells; then the next
//! checksum decides. Otherwise the difference stands.

pub(crate) mod local;
mod lookup;
pub(crate) mod sync_checksum;

pub use sync_checksum::ContentCompared;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::scan::Scan;
use crate::storage::local::LocalStorage;
use crate::storage::{SharedStore, Storage};
use itertools::{EitherOrBoth, Itertools};

use crate::types::{ContentSums, Entry, EntryKind, Manifest, ManifestEntry, RelPath, by_path};

/// How a pair was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Blake3,
    Md5,
    Crc64nvme,
    Crc32c,
    /// Both sides' bytes read (`--download`).
    Bytes,
    /// Neither side holds a checksum the other can be compared with.
    SizeOnly,
}

impl Evidence {
    /// The checksums, strongest first.
    /// The store's own checksums first: the blake3 in an object's metadata
    /// is HugeSync's bookkeeping, which a rewrite that copied the metadata
    /// carries over unchanged.
    const CHECKSUMS: [Evidence; 4] = [
        Evidence::Crc64nvme,
        Evidence::Md5,
        Evidence::Crc32c,
        Evidence::Blake3,
    ];

    fn name(self) -> &'static str {
        match self {
            Evidence::Blake3 => "blake3",
            Evidence::Md5 => "MD5",
            Evidence::Crc64nvme => "CRC64NVME",
            Evidence::Crc32c => "CRC32C",
            Evidence::Bytes => "bytes read",
            Evidence::SizeOnly => "size only",
        }
    }

    /// The checksum of this kind in `sums`, as bytes (compared only with
    /// another of the same kind).
    fn of(self, sums: &ContentSums) -> Option<Vec<u8>> {
        match self {
            Evidence::Blake3 | Evidence::Bytes => sums.blake3.map(|b| b.to_vec()),
            Evidence::Md5 => sums.md5.map(|b| b.to_vec()),
            Evidence::Crc64nvme => sums.crc64nvme.map(|c| c.to_be_bytes().to_vec()),
            Evidence::Crc32c => sums.crc32c.map(|c| c.to_be_bytes().to_vec()),
            Evidence::SizeOnly => None,
        }
    }
}

/// One pair that differs, and how that was found.
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    pub path: RelPath,
    pub evidence: Evidence,
    pub why: String,
}

/// A pair that could not be compared (a file unreadable, an object gone).
#[derive(Clone, Debug, Serialize)]
pub struct Unchecked {
    pub path: RelPath,
    pub error: String,
}

/// How many pairs were found alike, by evidence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Alike {
    pub blake3: u64,
    pub md5: u64,
    pub crc64nvme: u64,
    pub crc32c: u64,
    pub bytes: u64,
    pub size_only: u64,
}

impl Alike {
    fn count(&mut self, evidence: Evidence) {
        *match evidence {
            Evidence::Blake3 => &mut self.blake3,
            Evidence::Md5 => &mut self.md5,
            Evidence::Crc64nvme => &mut self.crc64nvme,
            Evidence::Crc32c => &mut self.crc32c,
            Evidence::Bytes => &mut self.bytes,
            Evidence::SizeOnly => &mut self.size_only,
        } += 1;
    }

    pub fn total(&self) -> u64 {
        self.blake3 + self.md5 + self.crc64nvme + self.crc32c + self.bytes + self.size_only
    }

    /// The non-zero counts with their evidence's name, strongest first.
    pub fn by_evidence(&self) -> Vec<(&'static str, u64)> {
        [
            (Evidence::Blake3, self.blake3),
            (Evidence::Md5, self.md5),
            (Evidence::Crc64nvme, self.crc64nvme),
            (Evidence::Crc32c, self.crc32c),
            (Evidence::Bytes, self.bytes),
            (Evidence::SizeOnly, self.size_only),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(e, n)| (e.name(), n))
        .collect()
    }
}

/// What `check` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub alike: Alike,
    pub differ: Vec<Difference>,
    /// Files at the source that the destination lacks.
    pub missing: Vec<RelPath>,
    /// Files at the destination that the source lacks.
    pub extra: Vec<RelPath>,
    pub unchecked: Vec<Unchecked>,
    /// Requests made beyond the listings (HEADs, sidecar and `--download` GETs).
    pub requests: u64,
    /// Bytes read to compute checksums: local files, and objects with `--download`.
    pub bytes_read: u64,
}

impl CheckReport {
    pub fn alike(&self) -> bool {
        self.differ.is_empty()
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.unchecked.is_empty()
    }
}

/// How `check` may compare.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions {
    /// Read both sides' bytes where no checksum can settle a pair.
    pub download: bool,
    /// Requests in flight while looking objects up (`--list-requests`);
    /// `None`: the store's listing requests, at least 16.
    pub requests: Option<usize>,
}

/// Where a check stands, for a progress bar (shared with the caller).
#[derive(Debug, Default)]
pub struct CheckProgress {
    /// Pairs to compare (same path, same size).
    pub pairs: AtomicU64,
    pub settled: AtomicU64,
    pub requests: AtomicU64,
    pub bytes_read: AtomicU64,
}

impl CheckProgress {
    /// "412 of 1,000 pairs settled, 3.2 GiB read, 12 requests"; `None`
    /// before any pair is known.
    pub fn describe(&self) -> Option<String> {
        let pairs = self.pairs.load(Ordering::Relaxed);
        (pairs > 0).then(|| {
            format!(
                "{} of {} pairs settled, {} read, {} requests",
                crate::format::count(self.settled.load(Ordering::Relaxed)),
                crate::format::count(pairs),
                crate::format::bytes(self.bytes_read.load(Ordering::Relaxed)),
                crate::format::count(self.requests.load(Ordering::Relaxed)),
            )
        })
    }
}

/// One side of the check.
#[derive(Clone, Copy)]
enum Side<'a> {
    Local(&'a LocalStorage),
    Object(&'a SharedStore),
}

impl<'a> Side<'a> {
    fn of(storage: &'a Storage) -> Side<'a> {
        match storage {
            Storage::Local(local) => Side::Local(local),
            Storage::Object(store) => Side::Object(store),
        }
    }
}

/// What is known of one side of a pair. A local file can give any checksum
/// (`None`: computed when chosen); an object only those its store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Computable,
    Held(ContentSums),
}

impl Known {
    fn has(&self, kind: Evidence) -> bool {
        match self {
            Known::Computable => true,
            Known::Held(sums) => kind.of(sums).is_some(),
        }
    }
}

/// A pair of files with one path and one size, being compared.
struct Pair {
    path: RelPath,
    entries: [Entry; 2],
    known: [Known; 2],
    /// Computed or looked-up checksums, per side.
    sums: [ContentSums; 2],
    looked_up: bool,
}

impl Pair {
    fn new(path: RelPath, entries: [Entry; 2], sides: [Side<'_>; 2]) -> Pair {
        let known = |side: Side<'_>, entry: &Entry| match side {
            Side::Local(_) => Known::Computable,
            Side::Object(_) => Known::Held(entry.sums()),
        };
        Pair {
            known: [known(sides[0], &entries[0]), known(sides[1], &entries[1])],
            path,
            entries,
            sums: [ContentSums::default(); 2],
            looked_up: false,
        }
    }

    /// The checksum to compare by: blake3 between two local files, else the
    /// first both sides hold (or can compute), the store's own first.
    fn common(&self) -> Option<Evidence> {
        if self.known == [Known::Computable; 2] {
            return Some(Evidence::Blake3);
        }
        // The order of ContentSums::same_content, which the diff follows.
        Evidence::CHECKSUMS
            .into_iter()
            .find(|&kind| self.known[0].has(kind) && self.known[1].has(kind))
    }

    /// Equal, different, or not known (a side's checksum is missing).
    fn verdict(&self, kind: Evidence) -> Option<bool> {
        let held = |side: usize| match self.known[side] {
            Known::Held(sums) if kind != Evidence::Bytes => kind.of(&sums),
            _ => kind.of(&self.sums[side]),
        };
        Some(held(0)? == held(1)?)
    }
}

/// Pairs compared at once: enough to keep every request and core busy, few
/// enough that a tree of 10⁸ files never has them all in memory.
const PAIRS_AT_ONCE: usize = 50_000;

/// The files of a manifest (directories and links are not compared).
fn files(manifest: &Manifest) -> impl Iterator<Item = ManifestEntry> + '_ {
    let misplaced = manifest.misplaced_sidecars();
    manifest
        .iter()
        .filter(|e| e.entry.kind == EntryKind::File)
        .map(move |mut e| {
            if let Some(misplaced) = misplaced {
                misplaced.mark(&e.path, &mut e.entry);
            }
            e
        })
}

/// Compares the scan's two sides, [`PAIRS_AT_ONCE`] pairs at a time: what
/// it holds follows the chunk and the differences found, not the tree.
pub async fn check(
    scan: &Scan,
    source: &Storage,
    destination: &Storage,
    options: CheckOptions,
    progress: Arc<CheckProgress>,
) -> CheckReport {
    check_in_chunks(
        scan,
        [source, destination],
        options,
        progress,
        PAIRS_AT_ONCE,
    )
    .await
}

async fn check_in_chunks(
    scan: &Scan,
    [source, destination]: [&Storage; 2],
    options: CheckOptions,
    progress: Arc<CheckProgress>,
    chunk: usize,
) -> CheckReport {
    let sides = [Side::of(source), Side::of(destination)];
    let mut report = CheckReport::default();
    let mut joined =
        files(&scan.source.manifest).merge_join_by(files(&scan.destination.manifest), by_path);
    loop {
        let mut pairs = pair_up(&mut joined, sides, chunk, &mut report);
        if pairs.is_empty() {
            break;
        }
        progress
            .pairs
            .fetch_add(pairs.len() as u64, Ordering::Relaxed);
        let settled = compare(&mut pairs, sides, options, &progress, &mut report).await;
        for (pair, evidence) in pairs.iter().zip(settled) {
            let Some(evidence) = evidence else {
                continue;
            };
            match pair.verdict(evidence) {
                Some(false) => report.differ.push(Difference {
                    path: pair.path.clone(),
                    evidence,
                    why: format!("content differs ({})", evidence.name()),
                }),
                _ => report.alike.count(evidence),
            }
        }
    }
    report.differ.sort_by(|a, b| a.path.cmp(&b.path));
    report.unchecked.sort_by(|a, b| a.path.cmp(&b.path));
    report.unchecked.dedup_by(|a, b| a.path == b.path);
    report.requests = progress.requests.load(Ordering::Relaxed);
    report.bytes_read = progress.bytes_read.load(Ordering::Relaxed);
    report
}

/// Settles each pair by the strongest checksum both sides hold or can
/// compute (a listed MD5 difference confirmed by a HEAD), else by the bytes
/// (`--download`) or the size: the evidence each pair was settled by, `None`
/// where it could not be compared (in `report.unchecked`).
async fn compare(
    pairs: &mut [Pair],
    sides: [Side<'_>; 2],
    options: CheckOptions,
    progress: &Arc<CheckProgress>,
    report: &mut CheckReport,
) -> Vec<Option<Evidence>> {
    let mut settled = vec![None::<Evidence>; pairs.len()];

    // The listings' checksums; one lookup per object where they hold none.
    let unknown: Vec<usize> = (0..pairs.len())
        .filter(|&i| pairs[i].common().is_none())
        .collect();
    lookup::look_up(pairs, &unknown, sides, options.requests, progress, report).await;
    let mut chosen: Vec<Option<Evidence>> = pairs.iter().map(Pair::common).collect();
    // The local files' checksums of the chosen kinds.
    local_sums(pairs, &chosen, sides, progress, report).await;
    decide(pairs, &chosen, &mut settled, progress);

    // A difference by a listed MD5 is confirmed by a HEAD: a listing cannot
    // tell an S3 ETag that is no MD5 (SSE-KMS, SSE-C), and the HEAD's
    // answer drops it. Where the MD5 stands, so does the difference.
    let doubtful: Vec<usize> = (0..pairs.len())
        .filter(|&i| settled[i] == Some(Evidence::Md5))
        .filter(|&i| pairs[i].verdict(Evidence::Md5) == Some(false))
        .filter(|&i| !pairs[i].looked_up)
        .collect();
    if !doubtful.is_empty() {
        lookup::look_up(pairs, &doubtful, sides, options.requests, progress, report).await;
        let mut again = vec![None; pairs.len()];
        for &i in &doubtful {
            let kind = pairs[i].common();
            if kind != Some(Evidence::Md5) {
                again[i] = kind;
                chosen[i] = kind;
                settled[i] = None;
                progress.settled.fetch_sub(1, Ordering::Relaxed);
            }
        }
        local_sums(pairs, &again, sides, progress, report).await;
        decide(pairs, &again, &mut settled, progress);
    }

    // What no checksum settles: the bytes, when allowed, else the size.
    let failed: std::collections::HashSet<&RelPath> =
        report.unchecked.iter().map(|u| &u.path).collect();
    let rest: Vec<usize> = (0..pairs.len())
        .filter(|&i| chosen[i].is_none() && !failed.contains(&pairs[i].path))
        .collect();
    drop(failed);
    if options.download && !rest.is_empty() {
        let mut only_rest = vec![None; pairs.len()];
        for &i in &rest {
            only_rest[i] = Some(Evidence::Bytes);
        }
        lookup::read_bytes(pairs, &rest, sides, progress, report).await;
        local_sums(pairs, &only_rest, sides, progress, report).await;
        decide(pairs, &only_rest, &mut settled, progress);
    } else {
        for &i in &rest {
            settled[i] = Some(Evidence::SizeOnly);
            progress.settled.fetch_add(1, Ordering::Relaxed);
        }
    }

    settled
}

/// The next `chunk` pairs of files with one path and one size, the
/// files between them reported as missing, extra or of different sizes.
fn pair_up(
    joined: &mut impl Iterator<Item = EitherOrBoth<ManifestEntry, ManifestEntry>>,
    sides: [Side<'_>; 2],
    chunk: usize,
    report: &mut CheckReport,
) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for joined in joined.by_ref() {
        match joined {
            EitherOrBoth::Left(a) => report.missing.push(a.path),
            EitherOrBoth::Right(b) => report.extra.push(b.path),
            EitherOrBoth::Both(a, b) if a.entry.size == b.entry.size => {
                pairs.push(Pair::new(a.path, [a.entry, b.entry], sides));
                if pairs.len() == chunk {
                    break;
                }
            }
            EitherOrBoth::Both(a, b) => report.differ.push(Difference {
                why: format!(
                    "sizes differ ({} at the source, {} at the destination)",
                    a.entry.size, b.entry.size
                ),
                path: a.path,
                evidence: Evidence::SizeOnly,
            }),
        }
    }
    pairs
}

/// Marks as settled the pairs given a kind whose verdict is now known.
fn decide(
    pairs: &[Pair],
    kinds: &[Option<Evidence>],
    settled: &mut [Option<Evidence>],
    progress: &CheckProgress,
) {
    for (i, kind) in kinds.iter().enumerate() {
        if let Some(kind) = *kind
            && settled[i].is_none()
            && pairs[i].verdict(kind).is_some()
        {
            settled[i] = Some(kind);
            progress.settled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Computes, on every local side, the checksum of the kind chosen per pair,
/// many files at once.
async fn local_sums(
    pairs: &mut [Pair],
    kinds: &[Option<Evidence>],
    sides: [Side<'_>; 2],
    progress: &Arc<CheckProgress>,
    report: &mut CheckReport,
) {
    for (side_index, side) in sides.into_iter().enumerate() {
        let Side::Local(local) = side else {
            continue;
        };
        let jobs: Vec<(usize, std::path::PathBuf, local::Wanted)> = pairs
            .iter()
            .enumerate()
            .filter_map(|(i, pair)| {
                let kind = kinds[i]?;
                Some((i, local.path_of(&pair.path), local::Wanted::of(kind)))
            })
            .collect();
        if jobs.is_empty() {
            continue;
        }
        let sizes: Vec<u64> = jobs
            .iter()
            .map(|(i, ..)| pairs[*i].entries[side_index].size)
            .collect();
        let counter = progress.clone();
        let results = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            jobs.into_par_iter()
                .zip(sizes)
                .map(|((i, path, wanted), size)| {
                    let result = local::file_sums(&path, wanted);
                    counter.bytes_read.fetch_add(size, Ordering::Relaxed);
                    (i, result)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (i, result) in results {
            match result {
                Ok(sums) => merge(&mut pairs[i].sums[side_index], sums),
                Err(e) => report.unchecked.push(Unchecked {
                    path: pairs[i].path.clone(),
                    error: format!("cannot read the local file: {e}"),
                }),
            }
        }
    }
}

/// Adds the checksums `more` holds to `sums`.
fn merge(sums: &mut ContentSums, more: ContentSums) {
    sums.blake3 = more.blake3.or(sums.blake3);
    // The HEAD says whether the ETag is an MD5 at all; a listing cannot.
    sums.md5 = more.md5;
    sums.crc32c = more.crc32c.or(sums.crc32c);
    sums.crc64nvme = more.crc64nvme.or(sums.crc64nvme);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_with(a: Known, b: Known) -> Pair {
        Pair {
            path: RelPath::from("f"),
            entries: [Entry::file(1, 0, 0), Entry::file(1, 0, 0)],
            known: [a, b],
            sums: [ContentSums::default(); 2],
            looked_up: false,
        }
    }

    #[test]
    fn the_strongest_checksum_both_sides_hold_is_chosen() {
        let md5_and_crc = ContentSums {
            md5: Some([1; 16]),
            crc32c: Some(7),
            ..ContentSums::default()
        };
        let crc_only = ContentSums {
            crc32c: Some(7),
            ..ContentSums::default()
        };
        let local = Known::Computable;
        assert_eq!(pair_with(local, local).common(), Some(Evidence::Blake3));
        assert_eq!(
            pair_with(local, Known::Held(md5_and_crc)).common(),
            Some(Evidence::Md5)
        );
        assert_eq!(
            pair_with(Known::Held(md5_and_crc), Known::Held(crc_only)).common(),
            Some(Evidence::Crc32c)
        );
        assert_eq!(
            pair_with(Known::Held(ContentSums::default()), local).common(),
            None
        );
        // The store's MD5 outranks the blake3 in the object's metadata.
        let md5_and_blake3 = ContentSums {
            md5: Some([1; 16]),
            blake3: Some([2; 32]),
            ..ContentSums::default()
        };
        assert_eq!(
            pair_with(local, Known::Held(md5_and_blake3)).common(),
            Some(Evidence::Md5)
        );
    }

    #[test]
    fn a_check_in_chunks_reports_what_one_chunk_does() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..40u8 {
            let name = format!("f{i:02}");
            std::fs::write(src.path().join(&name), [i; 8]).unwrap();
            match i % 5 {
                0 => {}
                1 => std::fs::write(dst.path().join(&name), [i ^ 1; 8]).unwrap(),
                2 => std::fs::write(dst.path().join(&name), [i; 9]).unwrap(),
                _ => std::fs::write(dst.path().join(&name), [i; 8]).unwrap(),
            }
        }
        std::fs::write(dst.path().join("only-here"), b"x").unwrap();
        let local = |dir: &tempfile::TempDir| LocalStorage::new(dir.path().to_path_buf());
        let list = |local: &LocalStorage| {
            local
                .list(
                    &Arc::new(crate::filter::Filter::default()),
                    crate::storage::ListOptions {
                        symlinks: false,
                        list_requests: None,
                        memory_budget: None,
                    },
                    &crate::storage::ScanCounter::default(),
                )
                .unwrap()
        };
        let (src_local, dst_local) = (local(&src), local(&dst));
        let scan = Scan {
            source: list(&src_local),
            destination: list(&dst_local),
            compared: None,
        };
        let (source, destination) = (Storage::Local(src_local), Storage::Local(dst_local));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |chunk| {
            runtime.block_on(check_in_chunks(
                &scan,
                [&source, &destination],
                CheckOptions::default(),
                Arc::new(CheckProgress::default()),
                chunk,
            ))
        };
        let (whole, chunked) = (run(PAIRS_AT_ONCE), run(3));
        let json = |report: &CheckReport| serde_json::to_value(report).unwrap();
        assert_eq!(json(&chunked), json(&whole));
        assert_eq!(whole.alike.blake3, 16);
        assert_eq!(whole.differ.len(), 16);
        assert_eq!((whole.missing.len(), whole.extra.len()), (8, 1));
    }

    #[test]
    fn the_diff_ranks_checksums_as_check_does() {
        // Each kind with the weaker ones beside it: check chooses it, and the
        // diff (ContentSums::same_content) decides by it.
        for (at, &kind) in Evidence::CHECKSUMS.iter().enumerate() {
            let held = |differing: u8| {
                let mut sums = ContentSums::default();
                for &weaker in &Evidence::CHECKSUMS[at..] {
                    let byte = if weaker == kind { differing } else { 9 };
                    match weaker {
                        Evidence::Crc64nvme => sums.crc64nvme = Some(u64::from(byte)),
                        Evidence::Md5 => sums.md5 = Some([byte; 16]),
                        Evidence::Crc32c => sums.crc32c = Some(u32::from(byte)),
                        _ => sums.blake3 = Some([byte; 32]),
                    }
                }
                sums
            };
            let pair = pair_with(Known::Held(held(1)), Known::Held(held(2)));
            assert_eq!(pair.common(), Some(kind));
            assert_eq!(held(1).same_content(&held(2)), Some(false), "{kind:?}");
            assert_eq!(held(1).same_content(&held(1)), Some(true), "{kind:?}");
        }
    }

    #[test]
    fn a_verdict_needs_both_sides_checksums() {
        let held = ContentSums {
            md5: Some([1; 16]),
            ..ContentSums::default()
        };
        let mut pair = pair_with(Known::Computable, Known::Held(held));
        assert_eq!(pair.verdict(Evidence::Md5), None);
        pair.sums[0].md5 = Some([1; 16]);
        assert_eq!(pair.verdict(Evidence::Md5), Some(true));
        pair.sums[0].md5 = Some([2; 16]);
        assert_eq!(pair.verdict(Evidence::Md5), Some(false));
    }
}
