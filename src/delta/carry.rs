//! The signature of a file rebuilt by a delta, made from the old file's
//! signature rather than from scratch. Its blocks wholly inside a copied range
//! keep their checksums at their new places; only the inserted bytes are
//! signed anew. A sidecar written this way repeats the old one's block records
//! for everything the delta kept — records a store that copies ranges can copy
//! from the old sidecar server-side — so after an edit only the records of the
//! edit are sent, not a table of the whole file (after an insertion every
//! block of a re-tiled file would hash differently).

use crate::signature::rolling::checksum;
use crate::signature::{
    BLOCK_SIZE_UNIT, BlockChecksum, BlockRun, Placement, Signature, strong_hash,
};

use super::{Delta, DeltaOp};

/// Where a block of the carried signature came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOrigin {
    /// Block `index` of the old signature, moved.
    Old { index: usize },
    /// Signed from the new file's bytes.
    New,
}

/// A signature carried over a delta, with where each of its blocks came from
/// (in order), for a writer that reuses the old sidecar's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carried {
    pub signature: Signature,
    pub origins: Vec<BlockOrigin>,
}

impl Carried {
    /// Share of the new file its blocks cover (0.0 to 1.0).
    pub fn coverage(&self) -> f64 {
        let size = self.signature.file_size;
        if size == 0 {
            return 1.0;
        }
        let covered = self.signature.blocks.len() as u64 * u64::from(self.signature.block_size);
        covered as f64 / size as f64
    }

    /// Whether this signature is worth keeping over a fresh tiling: it covers
    /// nearly all of the file in few runs. Edits pile up as runs and
    /// uncovered gaps; past these bounds the next upload re-tiles.
    pub fn worth_keeping(&self) -> bool {
        const MAX_RUNS: usize = 4096;
        const MIN_COVERAGE: f64 = 0.98;
        self.signature.runs.len() <= MAX_RUNS && self.coverage() >= MIN_COVERAGE
    }
}

/// The signature of the file `delta` builds from the file `old` describes.
/// `new` is the new file's bytes (only its inserted ranges are read);
/// `file_hash` its blake3, computed by the caller's pass over it.
pub fn carry(old: &Signature, delta: &Delta, new: &[u8], file_hash: [u8; 32]) -> Carried {
    let n = u64::from(old.block_size);
    let old_places = old.placements();
    let mut out = Builder {
        block_size: n,
        blocks: Vec::new(),
        runs: Vec::new(),
        origins: Vec::new(),
    };
    let mut new_pos = 0u64;
    for op in &delta.ops {
        match *op {
            DeltaOp::Copy { src_offset, len } => {
                let end = src_offset + len;
                // Old blocks wholly inside the copied range, in order (the
                // placements are sorted by place).
                let first = old_places.partition_point(|p| p.at < src_offset);
                for (index, place) in old_places.iter().enumerate().skip(first) {
                    if place.at + n > end {
                        break;
                    }
                    if old.block_len(index) != n {
                        continue;
                    }
                    out.push(
                        old.blocks[index],
                        Placement {
                            at: new_pos + (place.at - src_offset),
                            hashed_at: place.hashed_at,
                        },
                        BlockOrigin::Old { index },
                    );
                }
            }
            DeltaOp::Insert { new_offset, len } => {
                // Whole blocks from the start of the insertion; its last few
                // bytes stay uncovered. Hashed at the 1 KiB boundary at or
                // below their place.
                let unit = u64::from(BLOCK_SIZE_UNIT);
                let hashed_from = new_offset / unit * unit;
                let mut at = new_offset;
                while at + n <= new_offset + len && at + n <= new.len() as u64 {
                    let bytes = &new[at as usize..(at + n) as usize];
                    let hashed_at = hashed_from + (at - new_offset);
                    out.push(
                        BlockChecksum {
                            weak: checksum(bytes),
                            strong: strong_hash(bytes, hashed_at),
                        },
                        Placement { at, hashed_at },
                        BlockOrigin::New,
                    );
                    at += n;
                }
            }
        }
        new_pos += op.len();
    }
    Carried {
        signature: Signature {
            block_size: old.block_size,
            file_size: delta.new_size,
            blocks: out.blocks,
            file_hash,
            runs: out.runs,
        },
        origins: out.origins,
    }
}

struct Builder {
    block_size: u64,
    blocks: Vec<BlockChecksum>,
    runs: Vec<BlockRun>,
    origins: Vec<BlockOrigin>,
}

impl Builder {
    /// Adds a block, extending the last run when it continues it both in
    /// place and in hash offset.
    fn push(&mut self, block: BlockChecksum, place: Placement, origin: BlockOrigin) {
        let n = self.block_size;
        match self.runs.last_mut() {
            Some(run)
                if run.at + u64::from(run.count) * n == place.at
                    && run.hashed_at + u64::from(run.count) * n == place.hashed_at
                    && run.count < u32::MAX =>
            {
                run.count += 1;
            }
            _ => self.runs.push(BlockRun {
                count: 1,
                at: place.at,
                hashed_at: place.hashed_at,
            }),
        }
        self.blocks.push(block);
        self.origins.push(origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::compute::tests::noise;
    use crate::delta::{apply_delta, compute_delta};
    use crate::signature::signature_of_bytes;

    const BLOCK: u32 = 64 * 1024;

    fn hash(bytes: &[u8]) -> [u8; 32] {
        *blake3::hash(bytes).as_bytes()
    }

    /// Carries the signature of `old` over to `new`, checking it on the way.
    fn carried(old_sig: &Signature, new: &[u8]) -> Carried {
        let delta = compute_delta(new, old_sig);
        let carried = carry(old_sig, &delta, new, hash(new));
        assert!(carried.signature.runs_are_valid());
        // Every block describes the new file's bytes at its place.
        for (place, block) in carried
            .signature
            .placements()
            .iter()
            .zip(&carried.signature.blocks)
        {
            let bytes = &new[place.at as usize..(place.at + u64::from(BLOCK)) as usize];
            assert_eq!(checksum(bytes), block.weak);
            assert_eq!(strong_hash(bytes, place.hashed_at), block.strong);
        }
        carried
    }

    #[test]
    fn an_insertion_keeps_every_block_and_a_delta_against_the_carried_signature_is_small() {
        let old = noise(40 * BLOCK as usize, 1);
        let mut new = old.clone();
        new.splice(1_000_000..1_000_000, noise(1000, 2));
        let carried = carried(&signature_of_bytes(&old, BLOCK), &new);
        // Only the block the insertion split is lost (its bytes, with the
        // insertion, make one new block).
        let old_blocks = carried
            .origins
            .iter()
            .filter(|o| matches!(o, BlockOrigin::Old { .. }))
            .count();
        assert_eq!(old_blocks, 39);
        assert!(carried.signature.runs.len() <= 3);
        // The next edit, matched against the carried signature, sends about
        // one block per edit, not the rest of the file.
        let mut newer = new.clone();
        newer[2_000_000..2_000_100].copy_from_slice(&noise(100, 3));
        let delta = compute_delta(&newer, &carried.signature);
        assert!(
            delta.bytes_new() <= 2 * u64::from(BLOCK),
            "{}",
            delta.bytes_new()
        );
        assert_eq!(apply_delta(&new, &delta, &newer).unwrap(), newer);
    }

    #[test]
    fn inserted_bytes_are_signed_and_matched_later() {
        let old = noise(10 * BLOCK as usize, 3);
        let mut new = old.clone();
        // Three whole blocks of new bytes at an odd place.
        new.splice(300_001..300_001, noise(3 * BLOCK as usize + 10, 8));
        let carried = carried(&signature_of_bytes(&old, BLOCK), &new);
        let fresh = carried
            .origins
            .iter()
            .filter(|o| **o == BlockOrigin::New)
            .count();
        assert!(fresh >= 3, "{fresh}");
        // Moving the new bytes elsewhere still finds them.
        let moved: Vec<u8> = [&new[300_001..], &new[..300_001]].concat();
        let delta = compute_delta(&moved, &carried.signature);
        assert!(delta.bytes_reused() >= 10 * u64::from(BLOCK));
        assert_eq!(apply_delta(&new, &delta, &moved).unwrap(), moved);
    }

    #[test]
    fn carrying_twice_keeps_round_trips_exact() {
        let mut current = noise(20 * BLOCK as usize + 777, 6);
        let mut sig = signature_of_bytes(&current, BLOCK);
        for round in 0..5u64 {
            let mut next = current.clone();
            let at = (round as usize * 211_111) % next.len();
            next.splice(at..at, noise(500 + round as usize, 20 + 2 * round));
            let cut = (at + 400_000) % next.len();
            next.drain(cut..(cut + 300).min(next.len()));
            let delta = compute_delta(&next, &sig);
            assert_eq!(apply_delta(&current, &delta, &next).unwrap(), next);
            sig = carried(&sig, &next).signature;
            current = next;
        }
        let delta = compute_delta(&current, &sig);
        assert_eq!(apply_delta(&current, &delta, &current).unwrap(), current);
        assert!(delta.bytes_new() < 5 * u64::from(BLOCK) + 777);
    }

    #[test]
    fn an_unchanged_file_carries_its_tiling_whole() {
        let data = noise(8 * BLOCK as usize, 7);
        let sig = signature_of_bytes(&data, BLOCK);
        let carried = carried(&sig, &data);
        assert_eq!(carried.signature.blocks, sig.blocks);
        assert_eq!(carried.signature.runs.len(), 1);
        assert!(carried.worth_keeping());
    }
}
