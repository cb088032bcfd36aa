//! Computing signatures: from bytes in memory, from a file (memory-mapped a window
//! at a time, so resident memory does not grow with the file), or from any reader
//! (pipes, remote streams) with memory bounded by a few blocks.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rayon::prelude::*;

use super::rolling::checksum;
use super::strong::{TreeMerger, hash_block};
use super::{BlockChecksum, Signature};

/// Bytes mapped at once when signing a file: a multiple of the block size near
/// 64 MiB, enough to keep every core busy.
const WINDOW_TARGET: u64 = 64 * 1024 * 1024;

/// Checksums of the blocks of `data`, which starts `offset` bytes into its file,
/// hashed in parallel; their blake3 subtrees go to `merger` in file order.
fn block_checksums(
    data: &[u8],
    offset: u64,
    block_size: u32,
    merger: &mut TreeMerger,
) -> Vec<BlockChecksum> {
    sign_blocks(data, offset, block_size)
        .blocks
        .into_iter()
        .map(|(checksum, hash)| {
            merger.push_block(&hash);
            checksum
        })
        .collect()
}

/// The signature of `data`, blocks hashed in parallel.
pub fn signature_of_bytes(data: &[u8], block_size: u32) -> Signature {
    let mut merger = TreeMerger::default();
    let blocks = block_checksums(data, 0, block_size, &mut merger);
    Signature {
        block_size,
        file_size: data.len() as u64,
        blocks,
        file_hash: merger.finish(),
        runs: Vec::new(),
    }
}

/// The signature of a file on disk.
pub fn signature_of_file(path: &Path, block_size: u32) -> io::Result<Signature> {
    let file = File::open(path)?;
    let file_size = file.metadata()?.len();
    let window = (WINDOW_TARGET / u64::from(block_size)).max(1) * u64::from(block_size);
    let mut blocks = Vec::with_capacity(Signature::block_count(file_size, block_size) as usize);
    let mut merger = TreeMerger::default();
    let mut offset = 0;
    while offset < file_size {
        let len = window.min(file_size - offset);
        // SAFETY: the map is read-only and dropped before the next window. A file
        // truncated by another process meanwhile reads as zeros past its new end
        // (the guard answers the fault) and is reported below.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len as usize)
                .map(&file)?
        };
        let guard = crate::mapguard::Guard::register(map.as_ptr(), map.len());
        blocks.extend(block_checksums(&map, offset, block_size, &mut merger));
        if guard.faulted() {
            return Err(crate::mapguard::ChangedWhileRead::io());
        }
        drop(guard);
        offset += len;
    }
    if file.metadata()?.len() != file_size {
        return Err(crate::mapguard::ChangedWhileRead::io());
    }
    Ok(Signature {
        block_size,
        file_size,
        blocks,
        file_hash: merger.finish(),
        runs: Vec::new(),
    })
}

/// The checksums of a run of whole blocks taken from a file at a block-aligned
/// offset: uploads sign each part as it passes, in any order, and
/// [`assemble_signature`] puts the parts together.
pub struct SignedBlocks {
    offset: u64,
    blocks: Vec<(BlockChecksum, super::strong::BlockHash)>,
}

impl SignedBlocks {
    /// A digest of the signed bytes, from their blocks' hashes (each a blake3
    /// subtree bound to its offset): runs signed apart compare by it, and a
    /// resume journal records it for a part instead of an extra blake3 pass.
    pub fn digest(&self) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.offset.to_le_bytes());
        for (checksum, _) in &self.blocks {
            hasher.update(&checksum.strong);
        }
        hasher.finalize()
    }

    /// Consecutive runs, in order (each starting where the one before ends),
    /// as one.
    pub fn concat(runs: Vec<SignedBlocks>) -> SignedBlocks {
        let mut runs = runs.into_iter();
        let Some(mut whole) = runs.next() else {
            return SignedBlocks {
                offset: 0,
                blocks: Vec::new(),
            };
        };
        for run in runs {
            whole.blocks.extend(run.blocks);
        }
        whole
    }
}

/// Signs `data`, which starts `offset` bytes into its file (a multiple of
/// `block_size`; only the file's last run may end in a short block).
pub fn sign_blocks(data: &[u8], offset: u64, block_size: u32) -> SignedBlocks {
    let blocks = data
        .par_chunks(block_size as usize)
        .enumerate()
        .map(|(i, block)| {
            let hash = hash_block(block, offset + i as u64 * u64::from(block_size));
            let checksum = BlockChecksum {
                weak: checksum(block),
                strong: hash.strong,
            };
            (checksum, hash)
        })
        .collect();
    SignedBlocks { offset, blocks }
}

/// The signature of a file from the signed runs covering all of it, or `None`
/// when they leave a gap or overlap.
pub fn assemble_signature(
    mut runs: Vec<SignedBlocks>,
    block_size: u32,
    file_size: u64,
) -> Option<Signature> {
    runs.sort_by_key(|run| run.offset);
    let mut merger = TreeMerger::default();
    let mut blocks = Vec::with_capacity(Signature::block_count(file_size, block_size) as usize);
    for run in runs {
        if run.offset != blocks.len() as u64 * u64::from(block_size) {
            return None;
        }
        for (checksum, hash) in run.blocks {
            merger.push_block(&hash);
            blocks.push(checksum);
        }
    }
    (blocks.len() as u64 == Signature::block_count(file_size, block_size)).then(|| Signature {
        block_size,
        file_size,
        blocks,
        file_hash: merger.finish(),
        runs: Vec::new(),
    })
}

/// The signature of a stream, reading `BATCH` blocks at a time and hashing them in
/// parallel; memory stays at `BATCH × block_size`.
pub fn signature_of_reader(mut reader: impl Read, block_size: u32) -> io::Result<Signature> {
    const BATCH: usize = 8;
    let block = block_size as usize;
    let mut buffer = vec![0u8; block * BATCH];
    let mut blocks = Vec::new();
    let mut merger = TreeMerger::default();
    let mut file_size = 0u64;
    loop {
        let filled = read_full(&mut reader, &mut buffer)?;
        if filled == 0 {
            break;
        }
        blocks.extend(block_checksums(
            &buffer[..filled],
            file_size,
            block_size,
            &mut merger,
        ));
        file_size += filled as u64;
        if filled < buffer.len() {
            break;
        }
    }
    Ok(Signature {
        block_size,
        file_size,
        blocks,
        file_hash: merger.finish(),
        runs: Vec::new(),
    })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_sources_agree() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let block = 65536;
        let from_bytes = signature_of_bytes(&data, block);
        assert_eq!(from_bytes.blocks.len(), 5);
        assert_eq!(from_bytes.file_hash, *blake3::hash(&data).as_bytes());
        assert_eq!(signature_of_reader(&data[..], block).unwrap(), from_bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        assert_eq!(signature_of_file(&path, block).unwrap(), from_bytes);
        let runs = vec![
            sign_blocks(&data[2 * block as usize..], 2 * u64::from(block), block),
            sign_blocks(&data[..2 * block as usize], 0, block),
        ];
        assert_eq!(
            assemble_signature(runs, block, data.len() as u64),
            Some(from_bytes.clone())
        );
        let gap = vec![sign_blocks(&data[..block as usize], 0, block)];
        assert_eq!(assemble_signature(gap, block, data.len() as u64), None);
        std::fs::write(&path, b"").unwrap();
        let empty = signature_of_file(&path, block).unwrap();
        assert!(empty.blocks.is_empty());
        assert_eq!(empty, signature_of_bytes(b"", block));
    }
}
