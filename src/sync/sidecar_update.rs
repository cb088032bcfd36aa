//! Writing a sidecar after a delta upload without sending all of it. The new
//! sidecar holds a signature carried over the delta (`delta::carry`), whose
//! block records are mostly the old sidecar's, in runs: on a store that copies
//! ranges for no more than a round trip (an SSH server's `copy-data`), those
//! runs are copied from the old sidecar server-side and only the header, the
//! new records and the trailer are sent. A 1 GiB file's edit then costs a few
//! KiB of sidecar instead of a table of the whole file.

use crate::delta::carry::{BlockOrigin, Carried};
use crate::signature::{BLOCK_RECORD, SourceIdentity, table_offset, write_signature};
use crate::storage::body::{BodySource, BodySums};
use crate::storage::object::{CopyRange, CopySource, StagedPart};
use crate::storage::{Expect, ObjectMeta, ObjectStore, StorageError};
use crate::types::RelPath;

/// Shared stretches shorter than this are sent rather than copied: a round
/// trip costs more than the bytes.
const MIN_COPY: u64 = 4096;

/// Where the old sidecar's block records are, to copy them from.
#[derive(Clone, Copy, Debug)]
pub struct OldSidecar {
    /// Byte offset of its block table.
    pub table_offset: usize,
    /// Its length in bytes (checked against the file before copying).
    pub len: u64,
    /// The layout it was read in (the store's, or the one it keeps no
    /// longer, until the run moves it).
    pub layout: crate::storage::sidecars::SidecarLayout,
}

/// One piece of the new sidecar.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Send { at: u64, len: u64 },
    Copy { from: u64, at: u64, len: u64 },
}

/// The pieces of the new sidecar (`new_table`: where its block table starts,
/// `total`: its length): runs of records taken in order from the old table
/// are copied, the rest is sent.
fn pieces(
    carried: &Carried,
    new_table: u64,
    old_table: u64,
    total: u64,
    old_blocks: usize,
) -> Vec<Piece> {
    let record = BLOCK_RECORD as u64;
    let mut out = Vec::new();
    let mut sent_from = 0u64;
    let mut j = 0usize;
    while j < carried.origins.len() {
        let BlockOrigin::Old { index } = carried.origins[j] else {
            j += 1;
            continue;
        };
        let mut k = 1usize;
        while j + k < carried.origins.len()
            && carried.origins[j + k] == (BlockOrigin::Old { index: index + k })
            && index + k < old_blocks
        {
            k += 1;
        }
        let len = k as u64 * record;
        if len >= MIN_COPY && index + k <= old_blocks {
            let at = new_table + j as u64 * record;
            if at > sent_from {
                out.push(Piece::Send {
                    at: sent_from,
                    len: at - sent_from,
                });
            }
            out.push(Piece::Copy {
                from: old_table + index as u64 * record,
                at,
                len,
            });
            sent_from = at + len;
        }
        j += k;
    }
    if total > sent_from {
        out.push(Piece::Send {
            at: sent_from,
            len: total - sent_from,
        });
    }
    out
}

/// Writes the sidecar of `path` for the object version `etag` from a carried
/// signature, copying what it shares with the old sidecar. Returns the bytes
/// sent. Falls back to sending it whole where nothing is worth copying or
/// the old sidecar is not what it was when read.
pub async fn store_carried(
    store: &dyn ObjectStore,
    path: &RelPath,
    carried: &Carried,
    old: OldSidecar,
    etag: &str,
) -> Result<u64, StorageError> {
    let identity = SourceIdentity {
        etag: Some(etag.to_string()),
        mtime_ns: None,
    };
    let bytes = bytes::Bytes::from(write_signature(&carried.signature, &identity));
    let new_table = table_offset(&carried.signature, &identity) as u64;
    let old_blocks =
        ((old.len.saturating_sub(old.table_offset as u64 + 32)) / BLOCK_RECORD as u64) as usize;
    let plan = pieces(
        carried,
        new_table,
        old.table_offset as u64,
        bytes.len() as u64,
        old_blocks,
    );
    let key = store.sidecar_key_of(path);
    let old_key = store.sidecar_key_in(path, old.layout);
    if !plan.iter().any(|p| matches!(p, Piece::Copy { .. })) {
        return send_whole(store, &key, &bytes).await;
    }
    // The old sidecar, pinned: its records are copied only from the file
    // that was read.
    let version = match store.head(&old_key).await? {
        Some(head) if head.size == old.len => head.version,
        _ => None,
    };
    let Some(version) = version else {
        return send_whole(store, &key, &bytes).await;
    };
    let upload = store
        .need_staged()?
        .begin_staged(&key, &ObjectMeta::default())
        .await?;
    let staged = async {
        let mut parts: Vec<StagedPart> = Vec::with_capacity(plan.len());
        for (i, piece) in plan.iter().enumerate() {
            let number = i as u32 + 1;
            let part = match *piece {
                Piece::Send { at, len } => {
                    let body = bytes.slice(at as usize..(at + len) as usize);
                    store
                        .need_staged()?
                        .stage_bytes(
                            &upload,
                            number,
                            at,
                            BodySource::Memory(&body),
                            len,
                            BodySums::NONE,
                        )
                        .await?
                }
                Piece::Copy { from, at, len } => {
                    let source = CopySource {
                        store,
                        key: &old_key,
                        version: Some(&version),
                    };
                    let range = CopyRange {
                        start: from,
                        len,
                        expected_md5: None,
                        expected_crc32c: None,
                    };
                    store
                        .need_staged_copies()?
                        .stage_copy(&upload, number, at, source, range)
                        .await?
                }
            };
            parts.push(part);
        }
        store
            .need_staged()?
            .commit_staged(&upload, &parts, &ObjectMeta::default(), Expect::Any)
            .await
    }
    .await;
    match staged {
        Ok(_) => Ok(plan
            .iter()
            .map(|p| match p {
                Piece::Send { len, .. } => *len,
                Piece::Copy { .. } => 0,
            })
            .sum()),
        Err(e) => {
            if let Some(staged) = store.staged() {
                let _ = staged.abort_staged(&upload).await;
            }
            tracing::info!(
                "{key}: copying the old sidecar's records failed ({e}); sending it whole"
            );
            send_whole(store, &key, &bytes).await
        }
    }
}

async fn send_whole(
    store: &dyn ObjectStore,
    key: &str,
    bytes: &bytes::Bytes,
) -> Result<u64, StorageError> {
    let sums = BodySums::of(bytes, store.limits().body_checksum);
    store
        .put(
            key,
            BodySource::Memory(bytes),
            bytes.len() as u64,
            &ObjectMeta::default(),
            sums,
            Expect::Any,
        )
        .await?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{BlockChecksum, BlockRun, Signature};

    fn carried(origins: Vec<BlockOrigin>) -> Carried {
        let blocks = vec![
            BlockChecksum {
                weak: 0,
                strong: [0; 32]
            };
            origins.len()
        ];
        Carried {
            signature: Signature {
                block_size: 65536,
                file_size: origins.len() as u64 * 65536,
                blocks,
                file_hash: [0; 32],
                runs: vec![BlockRun {
                    count: origins.len() as u32,
                    at: 0,
                    hashed_at: 0,
                }],
            },
            origins,
        }
    }

    #[test]
    fn long_runs_of_old_records_are_copied_and_the_rest_sent() {
        let old = |from: usize, n: usize| (from..from + n).map(|index| BlockOrigin::Old { index });
        let origins: Vec<BlockOrigin> = old(0, 200)
            .chain([BlockOrigin::New])
            .chain(old(201, 3)) // too short to copy
            .chain(old(300, 150))
            .collect();
        let c = carried(origins);
        let (new_table, old_table) = (100u64, 80u64);
        let total = new_table + c.origins.len() as u64 * 36 + 32;
        let plan = pieces(&c, new_table, old_table, total, 1000);
        assert_eq!(
            plan,
            vec![
                Piece::Send { at: 0, len: 100 },
                Piece::Copy {
                    from: 80,
                    at: 100,
                    len: 200 * 36
                },
                Piece::Send {
                    at: 100 + 200 * 36,
                    len: 4 * 36
                },
                Piece::Copy {
                    from: 80 + 300 * 36,
                    at: 100 + 204 * 36,
                    len: 150 * 36
                },
                Piece::Send {
                    at: 100 + 354 * 36,
                    len: 32
                },
            ]
        );
        // Records past the old table's end are never copied.
        let plan = pieces(&c, new_table, old_table, total, 100);
        assert!(plan.iter().all(|p| match p {
            Piece::Copy { from, len, .. } => from + len <= old_table + 100 * 36,
            Piece::Send { .. } => true,
        }));
    }
}
