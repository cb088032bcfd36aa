//! `hugesync check`: are two trees alike, without moving their data? Each
//! file present on both sides is compared by the best evidence both hold:
//! blake3 (a local file's own; an object's recorded in its metadata or in its
//! fresh sidecar — what the scan with `checksum` collects), then a plain MD5
//! ETag against the local file's MD5 (S3 objects sent in one request), and
//! otherwise the size alone, which the report says.

use serde::Serialize;

use super::scan::Scan;
use crate::storage::Storage;
use crate::types::{EntryKind, ManifestEntry, RelPath};

/// How a pair was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Blake3,
    Md5,
    /// Neither side holds a checksum the other can be compared with.
    SizeOnly,
}

/// One pair that differs, and how that was found.
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    pub path: RelPath,
    pub evidence: Evidence,
    pub why: &'static str,
}

/// What `check` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Files alike, by evidence.
    pub equal_blake3: u64,
    pub equal_md5: u64,
    pub equal_size_only: u64,
    pub differ: Vec<Difference>,
    /// Files at the source that the destination lacks.
    pub missing: Vec<RelPath>,
    /// Files at the destination that the source lacks.
    pub extra: Vec<RelPath>,
}

impl CheckReport {
    pub fn alike(&self) -> bool {
        self.differ.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

/// The files of a manifest (directories and links are not compared).
fn files(entries: &[ManifestEntry]) -> Vec<&ManifestEntry> {
    entries
        .iter()
        .filter(|e| e.entry.kind == EntryKind::File)
        .collect()
}

/// A pair the blake3s could not settle, for the MD5 step.
struct Unsettled<'a> {
    src: &'a ManifestEntry,
    dst: &'a ManifestEntry,
}

/// Compares the scan's two sides (scanned with `checksum` on, so that
/// blake3s are collected wherever they exist).
pub async fn check(scan: &Scan, source: &Storage, destination: &Storage) -> CheckReport {
    let mut report = CheckReport::default();
    let (s, d) = (
        files(scan.source.manifest.entries()),
        files(scan.destination.manifest.entries()),
    );
    let mut unsettled = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < s.len() || j < d.len() {
        match (s.get(i), d.get(j)) {
            (Some(a), Some(b)) if a.path == b.path => {
                i += 1;
                j += 1;
                if a.entry.size != b.entry.size {
                    report.differ.push(Difference {
                        path: a.path.clone(),
                        evidence: Evidence::SizeOnly,
                        why: "sizes differ",
                    });
                } else if let (Some(x), Some(y)) = (a.entry.blake3(), b.entry.blake3()) {
                    if x == y {
                        report.equal_blake3 += 1;
                    } else {
                        report.differ.push(Difference {
                            path: a.path.clone(),
                            evidence: Evidence::Blake3,
                            why: "content differs (blake3)",
                        });
                    }
                } else {
                    unsettled.push(Unsettled { src: a, dst: b });
                }
            }
            (Some(a), Some(b)) if a.path < b.path => {
                i += 1;
                report.missing.push(a.path.clone());
            }
            (Some(a), None) => {
                i += 1;
                report.missing.push(a.path.clone());
            }
            (_, Some(b)) => {
                j += 1;
                report.extra.push(b.path.clone());
            }
            (None, None) => break,
        }
    }
    for pair in unsettled {
        match md5_verdict(&pair, source, destination).await {
            Some(true) => report.equal_md5 += 1,
            Some(false) => report.differ.push(Difference {
                path: pair.src.path.clone(),
                evidence: Evidence::Md5,
                why: "content differs (MD5 of the local file against the object's ETag)",
            }),
            None => report.equal_size_only += 1,
        }
    }
    report
}

/// An object's ETag when it is a plain MD5 of its bytes (one-request S3
/// uploads: 32 hex digits, no part count).
fn md5_etag(entry: &ManifestEntry) -> Option<String> {
    let etag = entry.entry.etag()?.trim_matches('"').to_ascii_lowercase();
    (etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(etag)
}

/// Local file against object by MD5, where the object's ETag is one.
async fn md5_verdict(
    pair: &Unsettled<'_>,
    source: &Storage,
    destination: &Storage,
) -> Option<bool> {
    let (local, object) = match (source, destination) {
        (Storage::Local(local), Storage::Object(_)) => (local, pair.dst),
        (Storage::Object(_), Storage::Local(local)) => (local, pair.src),
        _ => return None,
    };
    let etag = md5_etag(object)?;
    let path = local.path_of(&pair.src.path);
    let digest = tokio::task::spawn_blocking(move || {
        use md5::Digest;
        let file = std::fs::File::open(&path).ok()?;
        let map = crate::storage::local::map_readonly(&file).ok()?;
        let digest = md5::Md5::digest(&map[..]);
        (!map.faulted()).then(|| hex::encode(digest))
    })
    .await
    .ok()??;
    Some(digest == etag)
}
