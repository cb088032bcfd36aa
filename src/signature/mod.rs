//! Block signatures of a file: per block an rsync-style rolling (weak) checksum and
//! a blake3 (strong) hash. Pure code: no network, no async, no IO beyond the bytes
//! or reader it is given.

pub mod file;
pub mod generate;
pub mod rolling;
mod strong;

pub use file::{SignatureFileError, SourceIdentity, read_signature, write_signature};
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
/// be shorter) in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub block_size: u32,
    pub file_size: u64,
    pub blocks: Vec<BlockChecksum>,
    /// blake3 of the whole file.
    pub file_hash: [u8; 32],
}

impl Signature {
    /// Number of blocks a file of `file_size` has.
    pub fn block_count(file_size: u64, block_size: u32) -> u64 {
        file_size.div_ceil(u64::from(block_size))
    }

    /// Length of block `index` (the last block may be short).
    pub fn block_len(&self, index: usize) -> u64 {
        let start = index as u64 * u64::from(self.block_size);
        (self.file_size - start).min(u64::from(self.block_size))
    }
}
