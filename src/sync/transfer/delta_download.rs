//! Delta download (zsync-style): the local file is matched against the remote
//! object's signature; blocks found locally (at any offset) are copied from it,
//! only the missing ones are fetched with ranged GETs, and the result is verified
//! against the sidecar's blake3 before it replaces the local file.

use std::os::unix::fs::FileExt;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::delta::{Delta, DeltaOp, compute_delta};
use crate::signature::Signature;
use crate::storage::objects::read_range;
use crate::storage::{ObjectStore, StorageError};
use crate::types::ContentSums;

use super::verify::{Verdict, compare};
use super::{ItemContext, ItemError};

/// Largest single ranged GET of missing blocks.
const MAX_RANGE: u64 = 16 * 1024 * 1024;

/// A range of the remote object whose bytes the local file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub remote: u64,
    pub len: u64,
    pub local: u64,
}

/// Which ranges of the remote object the local file holds, and where. Works
/// for any signature: one that tiles the object or one whose blocks are
/// placed by runs (and may leave bytes of it uncovered, which are fetched).
pub(crate) struct BlockSources {
    /// Sorted by remote offset, not overlapping.
    pub(crate) found: Vec<Found>,
    size: u64,
}

impl BlockSources {
    /// Reads a delta of the local file against the remote signature: its copy
    /// ops name remote ranges found locally (whole matched blocks), in
    /// local-file order.
    pub fn from_delta(delta: &Delta, remote: &Signature) -> Self {
        let mut copies = Vec::new();
        let mut local_pos = 0u64;
        for op in &delta.ops {
            if let DeltaOp::Copy { src_offset, len } = *op {
                copies.push(Found {
                    remote: src_offset,
                    len,
                    local: local_pos,
                });
            }
            local_pos += op.len();
        }
        copies.sort_by_key(|f| f.remote);
        // A remote range found twice locally is taken once.
        let mut found: Vec<Found> = Vec::with_capacity(copies.len());
        let mut covered = 0u64;
        for f in copies {
            let end = (f.remote + f.len).min(remote.file_size);
            if end <= covered {
                continue;
            }
            let cut = covered.saturating_sub(f.remote);
            found.push(Found {
                remote: f.remote + cut,
                len: end - (f.remote + cut),
                local: f.local + cut,
            });
            covered = end;
        }
        BlockSources {
            found,
            size: remote.file_size,
        }
    }

    /// The remote ranges to fetch: what no found range covers, cut at
    /// `MAX_RANGE`.
    pub fn missing_ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges = Vec::new();
        let mut push_gap = |from: u64, to: u64| {
            let mut at = from;
            while at < to {
                let len = (to - at).min(MAX_RANGE);
                ranges.push((at, len));
                at += len;
            }
        };
        let mut pos = 0u64;
        for f in &self.found {
            push_gap(pos, f.remote);
            pos = pos.max(f.remote + f.len);
        }
        push_gap(pos, self.size);
        ranges
    }

    pub fn bytes_missing(&self) -> u64 {
        self.missing_ranges().iter().map(|(_, len)| len).sum()
    }
}

/// The delta of the local file against the remote signature, and what it means.
pub(crate) fn match_local(local: &[u8], remote: &Signature) -> BlockSources {
    BlockSources::from_delta(&compute_delta(local, remote), remote)
}

/// Fills `out` (an empty temp file) with the remote object's bytes: local blocks
/// first, then the fetched ranges; then checks the whole against the signature's
/// file hash and against `held`, the object's checksums of the store's own
/// (none held: the caller chose to trust the sidecar). Returns the bytes
/// fetched.
#[allow(clippy::too_many_arguments)]
pub(super) async fn assemble(
    id: usize,
    src: &dyn ObjectStore,
    key: &str,
    etag: Option<&str>,
    local: &[u8],
    sources: &BlockSources,
    remote: &Signature,
    held: &ContentSums,
    out: &std::fs::File,
    ctx: &ItemContext,
) -> Result<u64, ItemError> {
    let write_error = |e| StorageError::io("cannot write", format!("temp file for {key}"), e);
    out.set_len(remote.file_size).map_err(write_error)?;
    for found in &sources.found {
        let bytes = &local[found.local as usize..(found.local + found.len) as usize];
        out.write_all_at(bytes, found.remote).map_err(write_error)?;
    }
    let ranges = sources.missing_ranges();
    let fetched: u64 = ranges.iter().map(|(_, len)| len).sum();
    stream::iter(ranges)
        .map(|(start, len)| async move {
            let _slot = ctx.request_slot().await?;
            let bytes = read_range(src, key, start, len, etag).await?;
            out.write_all_at(&bytes, start).map_err(write_error)?;
            ctx.advanced(id, len).await;
            Ok::<_, ItemError>(())
        })
        .buffer_unordered(ctx.parallel_requests())
        .try_collect::<()>()
        .await?;
    let map = crate::storage::local::map_readonly(out).map_err(write_error)?;
    let hash = blake3::Hasher::new().update_rayon(&map).finalize();
    if hash.as_bytes() != &remote.file_hash {
        return Err(ItemError::Storage(StorageError::Transfer {
            target: src.url_of(key),
            message: "the assembled file does not match the object's signature (blake3); nothing was replaced".into(),
        }));
    }
    // The sidecar agrees with itself; the store's own checksum says whether
    // it describes the object at all.
    if let Verdict::Differ(checksum) = compare(held, &map, Some(remote.file_hash)) {
        return Err(ItemError::RebuildMismatch { checksum });
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::compute::tests::noise;
    use crate::signature::signature_of_bytes;

    #[test]
    fn finds_remote_blocks_at_shifted_local_offsets() {
        const B: usize = 64 * 1024;
        let remote = noise(10 * B + 100, 1);
        let remote_sig = signature_of_bytes(&remote, B as u32);
        // The local copy lacks block 3 and has 777 bytes inserted before block 6.
        let mut local = remote.clone();
        local[3 * B + 10] ^= 1;
        local.splice(6 * B..6 * B, noise(777, 2));
        let sources = match_local(&local, &remote_sig);
        assert_eq!(sources.missing_ranges(), vec![(3 * B as u64, B as u64)]);
        for f in &sources.found {
            assert_eq!(
                &local[f.local as usize..(f.local + f.len) as usize],
                &remote[f.remote as usize..(f.remote + f.len) as usize]
            );
        }
    }

    #[test]
    fn a_placed_signature_fetches_its_uncovered_bytes_too() {
        const B: usize = 64 * 1024;
        let old = noise(8 * B, 5);
        let mut remote = old.clone();
        remote.splice(100_000..100_000, noise(5000, 6));
        let old_sig = signature_of_bytes(&old, B as u32);
        let delta = compute_delta(&remote, &old_sig);
        let remote_sig = crate::delta::carry::carry(&old_sig, &delta, &remote, [0; 32]).signature;
        assert!(remote_sig.is_placed());
        // The local file is the remote one: only the bytes no block covers
        // (around the insertion) are fetched.
        let sources = match_local(&remote, &remote_sig);
        let missing = sources.bytes_missing();
        assert!(missing > 0 && missing < 2 * B as u64 + 5000, "{missing}");
        let mut rebuilt = vec![0u8; remote.len()];
        for f in &sources.found {
            rebuilt[f.remote as usize..(f.remote + f.len) as usize]
                .copy_from_slice(&remote[f.local as usize..(f.local + f.len) as usize]);
        }
        for (start, len) in sources.missing_ranges() {
            rebuilt[start as usize..(start + len) as usize]
                .copy_from_slice(&remote[start as usize..(start + len) as usize]);
        }
        assert_eq!(rebuilt, remote);
    }

    #[test]
    fn an_unrelated_local_file_fetches_everything_in_bounded_ranges() {
        const B: usize = 5 * 1024 * 1024;
        let remote_sig = signature_of_bytes(&noise(7 * B, 3), B as u32);
        let sources = match_local(&noise(B, 4), &remote_sig);
        let ranges = sources.missing_ranges();
        assert_eq!(sources.bytes_missing(), 7 * B as u64);
        assert!(ranges.iter().all(|(_, len)| *len <= MAX_RANGE));
    }
}
