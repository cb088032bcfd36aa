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

use super::{ItemContext, ItemError};

/// Largest single ranged GET of missing blocks.
const MAX_RANGE: u64 = 16 * 1024 * 1024;

/// Where each of the remote object's blocks can be found in the local file.
pub(crate) struct BlockSources {
    /// Per remote block, the local offset holding its bytes.
    pub(crate) local: Vec<Option<u64>>,
    block_size: u64,
    size: u64,
}

impl BlockSources {
    /// Reads a delta of the local file against the remote signature: its copy
    /// ops name remote ranges found locally, in local-file order.
    pub fn from_delta(delta: &Delta, remote: &Signature) -> Self {
        let block = u64::from(remote.block_size);
        let mut local = vec![None; remote.blocks.len()];
        let mut local_pos = 0u64;
        for op in &delta.ops {
            if let DeltaOp::Copy { src_offset, len } = *op {
                let end = src_offset + len;
                // Only blocks wholly inside the copied range count.
                let mut b = src_offset.div_ceil(block);
                while b < local.len() as u64 {
                    let start = b * block;
                    let block_end = (start + block).min(remote.file_size);
                    if block_end > end {
                        break;
                    }
                    local[b as usize] = Some(local_pos + (start - src_offset));
                    b += 1;
                }
            }
            local_pos += op.len();
        }
        BlockSources {
            local,
            block_size: block,
            size: remote.file_size,
        }
    }

    fn block_range(&self, b: usize) -> (u64, u64) {
        let start = b as u64 * self.block_size;
        (start, (start + self.block_size).min(self.size) - start)
    }

    /// The remote ranges to fetch: runs of missing blocks, cut at `MAX_RANGE`.
    pub fn missing_ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for (b, found) in self.local.iter().enumerate() {
            if found.is_some() {
                continue;
            }
            let (start, len) = self.block_range(b);
            match ranges.last_mut() {
                Some((s, l)) if *s + *l == start && *l + len <= MAX_RANGE => *l += len,
                _ => ranges.push((start, len)),
            }
        }
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
/// file hash. Returns the bytes fetched.
#[allow(clippy::too_many_arguments)]
pub(super) async fn assemble(
    id: usize,
    src: &dyn ObjectStore,
    key: &str,
    etag: Option<&str>,
    local: &[u8],
    sources: &BlockSources,
    remote: &Signature,
    out: &std::fs::File,
    ctx: &ItemContext,
) -> Result<u64, ItemError> {
    let write_error = |e| StorageError::io("cannot write", format!("temp file for {key}"), e);
    out.set_len(remote.file_size).map_err(write_error)?;
    for (b, found) in sources.local.iter().enumerate() {
        if let Some(at) = *found {
            let (start, len) = sources.block_range(b);
            out.write_all_at(&local[at as usize..(at + len) as usize], start)
                .map_err(write_error)?;
        }
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
        for (b, found) in sources.local.iter().enumerate() {
            if let Some(at) = found {
                let (start, len) = sources.block_range(b);
                assert_eq!(
                    &local[*at as usize..(*at + len) as usize],
                    &remote[start as usize..(start + len) as usize]
                );
            }
        }
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
