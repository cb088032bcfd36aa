//! Everything a scan found on one side, held compactly.
//!
//! Entries live in blocks of up to [`BLOCK_ENTRIES`] in path order, each
//! block one byte buffer in the form `codec` writes (paths front-coded, digests
//! as bytes). Reading decodes an entry at a time; a lookup by path
//! binary-searches the blocks' first paths and decodes within one block. A
//! scan adds entries in any order through a [`ManifestBuilder`], which sorts
//! them in runs and merges the runs once at the end.

mod codec;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Entry, EntryKind, RelPath};

/// Entries per block: a lookup decodes at most this many; each block costs
/// its first path and a buffer header, ~1 byte per entry at this size.
const BLOCK_ENTRIES: usize = 64;

/// Entries a builder sorts before it encodes them as a run: bounds what it
/// holds decoded (~400 B each) while a scan adds entries.
const RUN_ENTRIES: usize = 8192;

/// One path and what a scan found there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: RelPath,
    pub entry: Entry,
}

#[derive(Clone, Debug)]
struct Block {
    /// The paths of the block's first entry (for lookups) and last (so a
    /// merge can move a block whole past the other runs).
    first: RelPath,
    last: RelPath,
    count: u32,
    file_bytes: u64,
    bytes: Box<[u8]>,
}

/// Encodes entries, already in path order, into blocks.
#[derive(Default)]
struct BlockWriter {
    blocks: Vec<Block>,
    bytes: Vec<u8>,
    count: u32,
    file_bytes: u64,
    first: Option<RelPath>,
    previous: codec::Previous,
    last: Option<RelPath>,
    /// Entries and file bytes of every block written.
    len: usize,
    total_file_bytes: u64,
}

impl BlockWriter {
    fn push(&mut self, item: ManifestEntry) {
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
    fn push_block(&mut self, block: Block) {
        self.seal();
        self.last = Some(block.last.clone());
        self.len += block.count as usize;
        self.total_file_bytes += block.file_bytes;
        self.blocks.push(block);
    }

    fn last_path(&self) -> Option<&RelPath> {
        self.last.as_ref()
    }

    fn seal(&mut self) {
        if let (Some(first), Some(last)) = (self.first.take(), &self.last) {
            self.len += self.count as usize;
            self.total_file_bytes += self.file_bytes;
            self.blocks.push(Block {
                first,
                last: last.clone(),
                count: std::mem::take(&mut self.count),
                file_bytes: std::mem::take(&mut self.file_bytes),
                bytes: std::mem::take(&mut self.bytes).into_boxed_slice(),
            });
            self.previous = codec::Previous::default();
        }
    }

    fn finish(mut self) -> Vec<Block> {
        self.seal();
        self.blocks.shrink_to_fit();
        self.blocks
    }
}

/// Decodes the entries of blocks it owns, in order, freeing each block once
/// it is read: a merge that consumes manifests holds little more than its
/// output.
struct BlockReader {
    blocks: std::vec::IntoIter<Block>,
    current: Box<[u8]>,
    at: usize,
    previous: codec::Previous,
}

impl BlockReader {
    fn new(blocks: Vec<Block>) -> Self {
        Self {
            blocks: blocks.into_iter(),
            current: Box::default(),
            at: 0,
            previous: codec::Previous::default(),
        }
    }

    /// The next entry of the block being read, if one is left in it.
    fn next_in_block(&mut self) -> Option<ManifestEntry> {
        if self.at == self.current.len() {
            return None;
        }
        let mut reader = codec::Reader::new(&self.current[self.at..]);
        let entry = codec::read_entry(&mut reader, &mut self.previous);
        self.at = self.current.len() - reader.remaining();
        Some(entry)
    }

    /// Starts reading `block` (its first entry returned).
    fn open(&mut self, block: Block) -> Option<ManifestEntry> {
        self.current = block.bytes;
        self.at = 0;
        self.previous = codec::Previous::default();
        self.next_in_block()
    }
}

impl Iterator for BlockReader {
    type Item = ManifestEntry;

    fn next(&mut self) -> Option<ManifestEntry> {
        loop {
            if let Some(entry) = self.next_in_block() {
                return Some(entry);
            }
            let block = self.blocks.next()?;
            if let Some(entry) = self.open(block) {
                return Some(entry);
            }
        }
    }
}

/// Everything a scan found on one side, sorted by path, plus the subtrees it could
/// not read completely (nothing below those may be deleted on the other side).
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    blocks: Vec<Block>,
    len: usize,
    file_bytes: u64,
    incomplete: Vec<RelPath>,
    /// Whether the root itself exists (a missing destination is simply empty).
    pub root_exists: bool,
}

impl Manifest {
    /// A manifest of `entries` in any order; of several entries with one
    /// path, one is kept.
    pub fn new(entries: Vec<ManifestEntry>, incomplete: Vec<RelPath>, root_exists: bool) -> Self {
        let mut builder = ManifestBuilder::default();
        for entry in entries {
            builder.push(entry);
        }
        builder.finish(incomplete, root_exists)
    }

    /// The entries in path order, decoded one at a time.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            blocks: self.blocks.iter(),
            current: None,
            previous: codec::Previous::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block that would hold `path`.
    fn block_of(&self, path: &RelPath) -> Option<usize> {
        // The last block whose first path is not after `path`.
        self.blocks
            .partition_point(|b| b.first <= *path)
            .checked_sub(1)
    }

    pub fn get(&self, path: &RelPath) -> Option<Entry> {
        let block = &self.blocks[self.block_of(path)?];
        Iter::of_block(block)
            .find(|e| e.path >= *path)
            .filter(|e| e.path == *path)
            .map(|e| e.entry)
    }

    /// Puts each entry of `updates` in place of the entry with its path (a
    /// path the manifest lacks is ignored). Only the blocks concerned are
    /// written again.
    pub fn replace(&mut self, mut updates: Vec<ManifestEntry>) {
        updates.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let mut updates = updates.into_iter().peekable();
        while let Some(next) = updates.peek() {
            let Some(index) = self.block_of(&next.path) else {
                updates.next();
                continue;
            };
            let end = self.blocks.get(index + 1).map(|b| b.first.clone());
            let mut writer = BlockWriter::default();
            for mut entry in Iter::of_block(&self.blocks[index]) {
                while updates.peek().is_some_and(|u| u.path < entry.path) {
                    updates.next();
                }
                if updates.peek().is_some_and(|u| u.path == entry.path)
                    && let Some(update) = updates.next()
                {
                    self.file_bytes -= file_bytes(&entry);
                    self.file_bytes += file_bytes(&update);
                    entry = update;
                }
                writer.push(entry);
            }
            // Updates before the next block's first path are not here.
            while updates
                .peek()
                .is_some_and(|u| end.as_ref().is_none_or(|end| u.path < *end))
            {
                updates.next();
            }
            // A block in, a block out: the entries and their count are kept.
            if let Some(block) = writer.finish().pop() {
                self.blocks[index] = block;
            }
        }
    }

    /// Subtrees whose listing failed part way (unreadable directories).
    pub fn incomplete(&self) -> &[RelPath] {
        &self.incomplete
    }

    pub fn is_incomplete_at(&self, path: &RelPath) -> bool {
        self.incomplete.iter().any(|dir| path.is_within(dir))
    }

    /// The bytes of its files.
    pub fn total_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The bytes the manifest holds its entries in (the measure of its memory).
    pub fn encoded_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.bytes.len() + std::mem::size_of::<Block>() + b.first.as_bytes().len())
            .sum()
    }
}

impl IntoIterator for Manifest {
    type Item = ManifestEntry;
    type IntoIter = IntoIter;

    /// The entries in path order; each block is freed once read.
    fn into_iter(self) -> IntoIter {
        IntoIter(BlockReader::new(self.blocks))
    }
}

/// A manifest's entries by value, its memory given back as they are read.
pub struct IntoIter(BlockReader);

impl Iterator for IntoIter {
    type Item = ManifestEntry;

    fn next(&mut self) -> Option<ManifestEntry> {
        self.0.next()
    }
}

/// A manifest's entries, decoded as they are read.
pub struct Iter<'a> {
    blocks: std::slice::Iter<'a, Block>,
    current: Option<codec::Reader<'a>>,
    previous: codec::Previous,
}

impl<'a> Iter<'a> {
    fn of_block(block: &'a Block) -> Iter<'a> {
        Iter {
            blocks: std::slice::from_ref(block).iter(),
            current: None,
            previous: codec::Previous::default(),
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = ManifestEntry;

    fn next(&mut self) -> Option<ManifestEntry> {
        loop {
            if let Some(reader) = &mut self.current
                && !reader.is_empty()
            {
                return Some(codec::read_entry(reader, &mut self.previous));
            }
            self.current = Some(codec::Reader::new(&self.blocks.next()?.bytes));
            self.previous = codec::Previous::default();
        }
    }
}

fn file_bytes(item: &ManifestEntry) -> u64 {
    if item.entry.kind == EntryKind::File {
        item.entry.size
    } else {
        0
    }
}

/// Gathers a scan's entries, in any order, into a [`Manifest`]: sorted runs
/// of [`RUN_ENTRIES`] are encoded as they fill, and merged at the end.
pub struct ManifestBuilder {
    pending: Vec<ManifestEntry>,
    runs: Vec<Vec<Block>>,
    run_entries: usize,
}

impl Default for ManifestBuilder {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            runs: Vec::new(),
            run_entries: RUN_ENTRIES,
        }
    }
}

impl ManifestBuilder {
    pub fn push(&mut self, entry: ManifestEntry) {
        self.pending.push(entry);
        if self.pending.len() >= self.run_entries {
            self.seal_run();
        }
    }

    /// Ends the current run: entries pushed since the last run began are
    /// sorted and encoded now. A caller whose input comes in stretches
    /// that do not overlap (pages of a listing) ends a run after each, so
    /// that `finish` moves their blocks whole instead of merging entries.
    pub fn end_run(&mut self) {
        self.seal_run();
    }

    fn seal_run(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_by(|a, b| a.path.cmp(&b.path));
        let mut writer = BlockWriter::default();
        for entry in self.pending.drain(..) {
            // Of several entries with one path, the first added is kept.
            if writer.last_path() != Some(&entry.path) {
                writer.push(entry);
            }
        }
        self.runs.push(writer.finish());
    }

    pub fn finish(mut self, incomplete: Vec<RelPath>, root_exists: bool) -> Manifest {
        self.seal_run();
        let mut writer = BlockWriter::default();
        // The runs merged by path. A block that ends before every other
        // run's next path moves across whole, not decoded (the runs of a
        // listing hold long stretches no other run interleaves); each run's
        // blocks are freed as the merge passes them.
        let mut heap = BinaryHeap::new();
        for (index, run) in self.runs.into_iter().enumerate() {
            let mut reader = BlockReader::new(run);
            if let Some(block) = reader.blocks.next() {
                heap.push(RunHead {
                    head: Head::Block(block),
                    index,
                    reader,
                });
            }
        }
        while let Some(RunHead {
            head,
            index,
            mut reader,
        }) = heap.pop()
        {
            let next = match head {
                Head::Block(block) => {
                    let clear = heap.peek().is_none_or(|other| block.last < *other.path());
                    if clear && writer.last_path() != Some(&block.first) {
                        writer.push_block(block);
                        reader.blocks.next().map(Head::Block)
                    } else {
                        reader.open(block).map(Head::Entry)
                    }
                }
                Head::Entry(entry) => {
                    // Of several entries with one path, the first added is kept.
                    if writer.last_path() != Some(&entry.path) {
                        writer.push(entry);
                    }
                    match reader.next_in_block() {
                        Some(entry) => Some(Head::Entry(entry)),
                        None => reader.blocks.next().map(Head::Block),
                    }
                }
            };
            if let Some(head) = next {
                heap.push(RunHead {
                    head,
                    index,
                    reader,
                });
            }
        }
        writer.seal();
        let (len, file_bytes) = (writer.len, writer.total_file_bytes);
        Manifest {
            blocks: writer.finish(),
            len,
            file_bytes,
            incomplete,
            root_exists,
        }
    }
}

/// What a run offers the merge next: a block not yet opened, or the next
/// entry of the block it reads.
enum Head {
    Block(Block),
    Entry(ManifestEntry),
}

/// A run in the merge, ordered for a min-heap by its next path, then by run
/// (the earlier run's entry wins a tie).
struct RunHead {
    head: Head,
    index: usize,
    reader: BlockReader,
}

impl RunHead {
    fn path(&self) -> &RelPath {
        match &self.head {
            Head::Block(block) => &block.first,
            Head::Entry(entry) => &entry.path,
        }
    }
}

impl PartialEq for RunHead {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RunHead {}

impl PartialOrd for RunHead {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RunHead {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .path()
            .cmp(self.path())
            .then(other.index.cmp(&self.index))
    }
}

#[cfg(test)]
mod tests;
