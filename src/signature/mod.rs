//! Block signatures of a file: per block an rsync-style rolling (weak) checksum and
//! a blake3 (strong) hash. Pure code: no network, no async, no IO beyond the bytes
//! or reader it is given.

pub mod file;
pub mod generate;
pub mod rolling;
mod strong;

pub use file::{
    BLOCK_RECORD, SignatureFileError, SourceIdentity, read_signature, table_offset, write_signature,
};
pub use generate::{
    SignedBlocks, assemble_signature, sign_blocks, signature_of_bytes, signature_of_file,
    signature_of_reader,
};
pub(crate) use strong::strong_hash;

/// Smallest and largest block sizes (seed plan: 64 KiB up to S3's 5 MiB minimum part).
pub const MIN_BLOCK_SIZE: u32 = 64 * 1024;
pub const MAX_BLOCK_SIZE: u32 = 5 * 1024 * 1024;
pub const DEFAULT_BLOCK_SIZE: u32 = MAX_BLOCK_SIZE;
/// Block sizes are whole multiples of blake3's 1 KiB chunk, so that every block
/// starts on a chunk and the block hashes add up to the file's hash.
pub const BLOCK_SIZE_UNIT: u32 = blake3::CHUNK_LEN as u32;

/// What `--block-size`, config files, plans and `.hssig` headers may say.
pub const BLOCK_SIZE_RULE: &str = "64 KiB to 5 MiB, a multiple of 1 KiB";

/// `size` as a block size, if it is one HugeSync can use.
pub fn valid_block_size(size: u64) -> Option<u32> {
    let size = u32::try_from(size).ok()?;
    ((MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&size) && size % BLOCK_SIZE_UNIT == 0)
        .then_some(size)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockChecksum {
    /// [`rolling::Rolling`] checksum of the block.
    pub weak: u32,
    /// blake3-based hash of the block at its offset (see `strong`).
    pub strong: [u8; 32],
}

/// The signature of one file: every block of `block_size` bytes (the last one may
/// be shorter) in order — or, when `runs` is not empty, blocks placed by runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub block_size: u32,
    pub file_size: u64,
    pub blocks: Vec<BlockChecksum>,
    /// blake3 of the whole file.
    pub file_hash: [u8; 32],
    /// Where the blocks lie when they do not tile the file from its start:
    /// a signature carried over a delta (`delta::carry`) keeps the old
    /// file's blocks at their new places, hashed where they were hashed. Runs
    /// cover `blocks` in order, every block a whole `block_size`, and may
    /// leave bytes of the file uncovered. Empty: block `i` is at
    /// `i × block_size` and hashed there.
    pub runs: Vec<BlockRun>,
}

/// Consecutive blocks of a placed signature: `count` blocks from `at` in the
/// file, whose strong hashes were computed as if they started at `hashed_at`
/// (strong hashes are bound to an offset, a multiple of 1 KiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRun {
    pub count: u32,
    pub at: u64,
    pub hashed_at: u64,
}

/// Where one block lies and where its strong hash was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub at: u64,
    pub hashed_at: u64,
}

impl Signature {
    /// Number of blocks a file of `file_size` has.
    pub fn block_count(file_size: u64, block_size: u32) -> u64 {
        file_size.div_ceil(u64::from(block_size))
    }

    /// Length of block `index` (the last block of a tiling may be short).
    pub fn block_len(&self, index: usize) -> u64 {
        if self.is_placed() {
            return u64::from(self.block_size);
        }
        let start = index as u64 * u64::from(self.block_size);
        (self.file_size - start).min(u64::from(self.block_size))
    }

    /// Whether the blocks are placed by runs rather than tiling the file.
    pub fn is_placed(&self) -> bool {
        !self.runs.is_empty()
    }

    /// Where every block lies, in order.
    pub fn placements(&self) -> Vec<Placement> {
        let n = u64::from(self.block_size);
        if !self.is_placed() {
            return (0..self.blocks.len() as u64)
                .map(|i| Placement {
                    at: i * n,
                    hashed_at: i * n,
                })
                .collect();
        }
        self.runs
            .iter()
            .flat_map(|run| {
                (0..u64::from(run.count)).map(move |k| Placement {
                    at: run.at + k * n,
                    hashed_at: run.hashed_at + k * n,
                })
            })
            .collect()
    }

    /// Whether the runs are well formed: they account for every block, lie
    /// in order without overlapping inside the file, and hash at multiples
    /// of 1 KiB. A sidecar that breaks this is refused, never trusted.
    pub fn runs_are_valid(&self) -> bool {
        if !self.is_placed() {
            return true;
        }
        let n = u64::from(self.block_size);
        let total: u64 = self.runs.iter().map(|r| u64::from(r.count)).sum();
        let mut end = 0u64;
        total == self.blocks.len() as u64
            && self.runs.iter().all(|run| {
                let Some(run_end) = u64::from(run.count)
                    .checked_mul(n)
                    .and_then(|len| run.at.checked_add(len))
                else {
                    return false;
                };
                let ok = run.count > 0
                    && run.at >= end
                    && run_end <= self.file_size
                    && run.hashed_at % u64::from(BLOCK_SIZE_UNIT) == 0
                    && run
                        .hashed_at
                        .checked_add(u64::from(run.count) * n)
                        .is_some();
                end = run_end;
                ok
            })
    }
}
