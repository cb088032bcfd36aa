//! Blocks of encoded entries: written in path order, read back an entry at a
//! time, held in memory or, past a memory budget, in a spill file.

use std::borrow::Cow;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::{ManifestEntry, codec, file_bytes};
use crate::types::RelPath;

/// Entries per block: a lookup decodes at most this many; each block costs
/// its first and last paths and a header, ~3 bytes per entry at this size.
pub(super) const BLOCK_ENTRIES: usize = 64;

/// Where blocks go past a memory budget: an unnamed temporary file, gone
/// with the process however it ends.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: std::fs::File,
    end: AtomicU64,
    /// The first error reading it back: what was read until then is not
    /// the whole manifest, and whoever uses it must say so.
    failed: OnceLock<String>,
}

impl SpillFile {
    pub(super) fn create(dir: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile_in(dir)?,
            end: AtomicU64::new(0),
            failed: OnceLock::new(),
        })
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<u64> {
        let at = self.end.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.file.write_all_at(bytes, at)?;
        Ok(at)
    }

    fn read(&self, at: u64, len: u32) -> Option<Vec<u8>> {
        let mut bytes = vec![0; len as usize];
        match self.file.read_exact_at(&mut bytes, at) {
            Ok(()) => Some(bytes),
            Err(e) => {
                let _ = self
                    .failed
                    .set(format!("cannot read the scan's spill file back: {e}"));
                None
            }
        }
    }

    pub(super) fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    /// Bytes written to it.
    pub(super) fn len(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug)]
pub(super) enum Stored {
    Memory(Box<[u8]>),
    Spilled { at: u64, len: u32 },
}

#[derive(Clone, Debug)]
pub(super) struct Block {
    /// The paths of the block's first entry (for lookups) and last (so a
    /// merge can move a block whole past the other runs).
    pub(super) first: RelPath,
    pub(super) last: RelPath,
    pub(super) count: u32,
    pub(super) file_bytes: u64,
    pub(super) stored: Stored,
}

impl Block {
    /// Its bytes in memory, read back if spilled (`None`: the read failed,
    /// which the spill file records).
    pub(super) fn bytes<'a>(&'a self, spill: Option<&SpillFile>) -> Option<Cow<'a, [u8]>> {
        match &self.stored {
            Stored::Memory(bytes) => Some(Cow::Borrowed(bytes)),
            Stored::Spilled { at, len } => spill?.read(*at, *len).map(Cow::Owned),
        }
    }

    /// The memory its bytes take.
    pub(super) fn memory(&self) -> u64 {
        match &self.stored {
            Stored::Memory(bytes) => bytes.len() as u64,
            Stored::Spilled { .. } => 0,
        }
    }

    /// Moves its bytes to `spill`; on a write error it stays in memory.
    pub(super) fn spill_to(&mut self, spill: &SpillFile) -> std::io::Result<()> {
        if let Stored::Memory(bytes) = &self.stored {
            let at = spill.write(bytes)?;
            self.stored = Stored::Spilled {
                at,
                len: bytes.len() as u32,
            };
        }
        Ok(())
    }
}

/// Memory a manifest's blocks may take before they go to a spill file.
#[derive(Clone, Debug)]
pub(super) struct Budget {
    pub(super) bytes: u64,
    pub(super) spill: Arc<SpillFile>,
}

/// Encodes entries, already in path order, into blocks.
#[derive(Default)]
pub(super) struct BlockWriter {
    blocks: Vec<Block>,
    bytes: Vec<u8>,
    count: u32,
    file_bytes: u64,
    first: Option<RelPath>,
    previous: codec::Previous,
    last: Option<RelPath>,
    /// Entries and file bytes of every block written.
    pub(super) len: usize,
    pub(super) total_file_bytes: u64,
    /// Past this, blocks are written to the spill file as they are sealed.
    budget: Option<Budget>,
    memory: u64,
}

impl BlockWriter {
    pub(super) fn with_budget(budget: Option<Budget>) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    pub(super) fn push(&mut self, item: ManifestEntry) {
        if self.count as usize == BLOCK_ENTRIES {
            self.seal();
        }
        if self.count == 0 {
            self.first = Some(item.path.clone());
        }
        codec::put_entry(&mut self.bytes, &mut self.previous, &item);
        self.count += 1;
        self.file_bytes += file_bytes(&item);
        self.last = Some(item.path);
    }

    /// Appends a block whose entries all follow the last one written.
    pub(super) fn push_block(&mut self, block: Block) {
        self.seal();
        self.last = Some(block.last.clone());
        self.len += block.count as usize;
        self.total_file_bytes += block.file_bytes;
        self.memory += block.memory();
        self.blocks.push(block);
    }

    pub(super) fn last_path(&self) -> Option<&RelPath> {
        self.last.as_ref()
    }

    pub(super) fn seal(&mut self) {
        let (Some(first), Some(last)) = (self.first.take(), &self.last) else {
            return;
        };
        self.len += self.count as usize;
        self.total_file_bytes += self.file_bytes;
        let mut block = Block {
            first,
            last: last.clone(),
            count: std::mem::take(&mut self.count),
            file_bytes: std::mem::take(&mut self.file_bytes),
            stored: Stored::Memory(std::mem::take(&mut self.bytes).into_boxed_slice()),
        };
        self.previous = codec::Previous::default();
        if let Some(budget) = &self.budget
            && self.memory + block.memory() > budget.bytes
            && block.spill_to(&budget.spill).is_ok()
        {
            self.blocks.push(block);
            return;
        }
        self.memory += block.memory();
        self.blocks.push(block);
    }

    pub(super) fn finish(mut self) -> Vec<Block> {
        self.seal();
        self.blocks.shrink_to_fit();
        self.blocks
    }
}

/// Decodes the entries of blocks it owns, in order, freeing each block once
/// it is read: a merge that consumes manifests holds little more than its
/// output.
pub(super) struct BlockReader {
    pub(super) blocks: std::vec::IntoIter<Block>,
    spill: Option<Arc<SpillFile>>,
    current: Box<[u8]>,
    at: usize,
    previous: codec::Previous,
}

impl BlockReader {
    pub(super) fn new(blocks: Vec<Block>, spill: Option<Arc<SpillFile>>) -> Self {
        Self {
            blocks: blocks.into_iter(),
            spill,
            current: Box::default(),
            at: 0,
            previous: codec::Previous::default(),
        }
    }

    /// The next entry of the block being read, if one is left in it.
    pub(super) fn next_in_block(&mut self) -> Option<ManifestEntry> {
        if self.at == self.current.len() {
            return None;
        }
        let mut reader = codec::Reader::new(&self.current[self.at..]);
        let entry = codec::read_entry(&mut reader, &mut self.previous);
        self.at = self.current.len() - reader.remaining();
        Some(entry)
    }

    /// Starts reading `block` (its first entry returned; `None` if its
    /// bytes cannot be read back, which the spill file records).
    pub(super) fn open(&mut self, block: Block) -> Option<ManifestEntry> {
        self.current = match block.stored {
            Stored::Memory(bytes) => bytes,
            Stored::Spilled { at, len } => self.spill.as_ref()?.read(at, len)?.into(),
        };
        self.at = 0;
        self.previous = codec::Previous::default();
        self.next_in_block()
    }
}

impl Iterator for BlockReader {
    type Item = ManifestEntry;

    fn next(&mut self) -> Option<ManifestEntry> {
        if let Some(entry) = self.next_in_block() {
            return Some(entry);
        }
        // A block holds an entry at least: `None` here is a spilled block
        // that could not be read back, and the reading stops.
        let block = self.blocks.next()?;
        self.open(block)
    }
}
