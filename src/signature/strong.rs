//! Strong block hashes that add up to the whole file's blake3.
//!
//! blake3 hashes a file as a tree of 1 KiB chunks. A block at offset `o` is
//! covered by a few complete subtrees of that tree (aligned power-of-two runs of
//! chunks). Hashing those subtrees gives their chaining values; the block's strong
//! hash is a derived-key blake3 of them, and the file's blake3 is the same chaining
//! values merged up the tree. So one pass over the bytes yields both, and
//! `file_hash` stays equal to what `b3sum` prints.
//!
//! The price: a strong hash is bound to its block's offset (chaining values carry
//! the chunk counter). A window of the new file is therefore hashed *as if* it sat
//! where the candidate block sits in the old file — the matcher always knows which
//! block it is confirming.

use blake3::CHUNK_LEN;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

const CHUNK: u64 = CHUNK_LEN as u64;

/// Domain separation for block hashes (blake3's derive-key mode).
const BLOCK_CONTEXT: &str = "HugeSync 2026-11 block strong hash over blake3 subtrees";

/// The hashes of one block.
pub(crate) struct BlockHash {
    pub strong: [u8; 32],
    /// Chaining values of the block's subtrees with the chunk index each starts at.
    pub subtrees: Vec<(u64, ChainingValue)>,
    /// The whole file's hash, when the block is the whole file and one subtree.
    pub root: Option<[u8; 32]>,
}

/// Largest aligned power-of-two run of chunks starting at chunk `start` and
/// fitting in `len` bytes (at least one, possibly partial, chunk).
fn subtree_len(start_chunk: u64, len: u64) -> u64 {
    if len <= CHUNK {
        return len;
    }
    let fit = 1u64 << (len / CHUNK).ilog2();
    let aligned = if start_chunk == 0 {
        fit
    } else {
        1u64 << start_chunk.trailing_zeros().min(63)
    };
    fit.min(aligned) * CHUNK
}

/// Hashes `data` as the block that starts `offset` bytes into its file.
/// `offset` must be a multiple of 1 KiB (block sizes are).
pub(crate) fn hash_block(data: &[u8], offset: u64) -> BlockHash {
    debug_assert_eq!(offset % CHUNK, 0);
    let mut strong = blake3::Hasher::new_derive_key(BLOCK_CONTEXT);
    strong.update(&(data.len() as u64).to_le_bytes());
    let mut subtrees = Vec::with_capacity(4);
    let mut root = None;
    let mut pos = 0usize;
    if data.is_empty() {
        return BlockHash {
            strong: *strong.finalize().as_bytes(),
            subtrees,
            root,
        };
    }
    while pos < data.len() {
        let start = offset + pos as u64;
        let len = subtree_len(start / CHUNK, (data.len() - pos) as u64) as usize;
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(start);
        hasher.update(&data[pos..pos + len]);
        let cv = hasher.finalize_non_root();
        if start == 0 && len == data.len() {
            root = Some(*hasher.finalize().as_bytes());
        }
        strong.update(&cv);
        subtrees.push((start / CHUNK, cv));
        pos += len;
    }
    BlockHash {
        strong: *strong.finalize().as_bytes(),
        subtrees,
        root,
    }
}

/// The strong hash alone, for confirming a match.
pub(crate) fn strong_hash(data: &[u8], offset: u64) -> [u8; 32] {
    hash_block(data, offset).strong
}

/// Merges subtree chaining values, fed in file order, into the file's blake3 —
/// the same lazy merging blake3's own hasher does with chunks.
#[derive(Default)]
pub(crate) struct TreeMerger {
    stack: Vec<ChainingValue>,
    /// The last subtree pushed, held back: it may be the tree's right edge.
    pending: Option<(u64, ChainingValue)>,
    /// The root hash of the first block, should it turn out to be the whole file.
    first_block_root: Option<[u8; 32]>,
}

impl TreeMerger {
    pub fn push_block(&mut self, block: &BlockHash) {
        if self.pending.is_none() {
            self.first_block_root = block.root;
        }
        for &(start_chunk, cv) in &block.subtrees {
            if let Some((pending_start, pending_cv)) = self.pending.take() {
                self.merge_stack(pending_start);
                self.stack.push(pending_cv);
            }
            self.pending = Some((start_chunk, cv));
        }
    }

    /// Merges completed sibling pairs until the stack holds one subtree per set
    /// bit of `chunks_before` (blake3's `merge_cv_stack`).
    fn merge_stack(&mut self, chunks_before: u64) {
        let keep = chunks_before.count_ones() as usize;
        while self.stack.len() > keep {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                break;
            };
            self.stack
                .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
    }

    /// The blake3 of the whole file.
    pub fn finish(mut self) -> [u8; 32] {
        let Some((last_start, mut output)) = self.pending.take() else {
            return *blake3::hash(b"").as_bytes();
        };
        self.merge_stack(last_start);
        while let Some(left) = self.stack.pop() {
            if self.stack.is_empty() {
                return *merge_subtrees_root(&left, &output, Mode::Hash).as_bytes();
            }
            output = merge_subtrees_non_root(&left, &output, Mode::Hash);
        }
        // One subtree is the whole file: it is the first block, hashed as a root.
        self.first_block_root
            .unwrap_or_else(|| *merge_subtrees_root(&output, &output, Mode::Hash).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file_hash(data: &[u8], block: usize) -> [u8; 32] {
        let mut merger = TreeMerger::default();
        for (i, chunk) in data.chunks(block).enumerate() {
            merger.push_block(&hash_block(chunk, (i * block) as u64));
        }
        merger.finish()
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 253) as u8).collect()
    }

    #[test]
    fn edge_sizes_give_blake3() {
        for block in [1024, 3 * 1024, 5 * 1024, 8 * 1024] {
            for len in [
                0, 1, 1023, 1024, 1025, 2048, 3072, 4096, 5119, 5120, 5121, 16384, 40_000,
            ] {
                let bytes = data(len);
                assert_eq!(
                    file_hash(&bytes, block),
                    *blake3::hash(&bytes).as_bytes(),
                    "block {block} len {len}"
                );
            }
        }
    }

    #[test]
    fn strong_hash_depends_on_content_and_offset() {
        let bytes = data(8192);
        assert_eq!(strong_hash(&bytes, 0), strong_hash(&bytes, 0));
        assert_ne!(strong_hash(&bytes, 0), strong_hash(&bytes, 8192));
        assert_ne!(strong_hash(&bytes, 0), strong_hash(&bytes[..8191], 0));
    }

    proptest! {
        #[test]
        fn any_size_and_block_gives_blake3(len in 0usize..300_000, block_kib in 1usize..40) {
            let bytes = data(len);
            prop_assert_eq!(file_hash(&bytes, block_kib * 1024), *blake3::hash(&bytes).as_bytes());
        }
    }
}
