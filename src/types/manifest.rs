//! Everything a scan found on one side, held compactly.
//!
//! Entries live in blocks of up to 64 in path order, each block one byte
//! buffer in the form `codec` writes (paths front-coded, digests as bytes).
//! Reading decodes an entry at a time; a lookup by path binary-searches the
//! blocks' first paths and decodes within one block. A scan adds entries in
//! any order through a [`ManifestBuilder`], which sorts them in runs, spills
//! runs past a memory budget to a temporary file, and merges them at the end.

mod block;
mod build;
mod codec;

use std::borrow::Cow;
use std::sync::Arc;

use super::{Entry, EntryKind, RelPath};
use block::{Block, BlockReader, BlockWriter, SpillFile};
pub use build::ManifestBuilder;

/// One path and what a scan found there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: RelPath,
    pub entry: Entry,
}

/// Orders entries by path: the order of a manifest, and how two are joined
/// (`itertools::merge_join_by(a, b, by_path)`).
pub fn by_path(a: &ManifestEntry, b: &ManifestEntry) -> std::cmp::Ordering {
    a.path.cmp(&b.path)
}

/// Everything a scan found on one side, sorted by path, plus the subtrees it could
/// not read completely (nothing below those may be deleted on the other side).
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    blocks: Vec<Block>,
    /// Where blocks past the scan's memory budget are.
    spill: Option<Arc<SpillFile>>,
    len: usize,
    file_bytes: u64,
    incomplete: Vec<RelPath>,
    /// Objects whose sidecars were listed in the layout their store does not
    /// keep them in (object stores only).
    misplaced_sidecars: Option<crate::storage::sidecars::MisplacedSidecars>,
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
        self.iter_blocks(0)
    }

    /// The entries of the blocks from `first` on.
    fn iter_blocks(&self, first: usize) -> Iter<'_> {
        Iter {
            blocks: self.blocks[first..].iter(),
            spill: self.spill.as_deref(),
            current: Cow::Borrowed(&[]),
            at: 0,
            previous: codec::Previous::default(),
        }
    }

    /// The entries from `path` on (those at or after it), in path order:
    /// the blocks before its own are skipped unread.
    pub fn iter_from<'a>(&'a self, path: &'a RelPath) -> impl Iterator<Item = ManifestEntry> + 'a {
        self.iter_blocks(self.block_of(path).unwrap_or(0))
            .skip_while(move |e| e.path < *path)
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
        self.iter_block(block)
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
            let block = &self.blocks[index];
            let entries: Vec<ManifestEntry> = self.iter_block(block).collect();
            // A spilled block that cannot be read back stays as it is (its
            // `read_failure` is recorded); it is never cut short.
            let readable = entries.len() == block.count as usize;
            let mut writer = BlockWriter::default();
            let (mut removed, mut added) = (0, 0);
            for mut entry in entries {
                while updates.peek().is_some_and(|u| u.path < entry.path) {
                    updates.next();
                }
                if updates.peek().is_some_and(|u| u.path == entry.path)
                    && let Some(update) = updates.next()
                {
                    removed += file_bytes(&entry);
                    added += file_bytes(&update);
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
            if let Some(block) = writer.finish().pop().filter(|_| readable) {
                self.blocks[index] = block;
                self.file_bytes = self.file_bytes - removed + added;
            }
        }
    }

    /// Notes the objects whose sidecars are in the layout their store does
    /// not keep them in.
    pub fn set_misplaced_sidecars(
        &mut self,
        misplaced: crate::storage::sidecars::MisplacedSidecars,
    ) {
        self.misplaced_sidecars = Some(misplaced);
    }

    /// The objects whose sidecars are in the layout their store does not
    /// keep them in, taken out (the diff marks their items).
    pub fn take_misplaced_sidecars(
        &mut self,
    ) -> Option<crate::storage::sidecars::MisplacedSidecars> {
        self.misplaced_sidecars.take()
    }

    /// The same, left in place.
    pub fn misplaced_sidecars(&self) -> Option<&crate::storage::sidecars::MisplacedSidecars> {
        self.misplaced_sidecars.as_ref()
    }

    /// Subtrees whose listing failed part way (unreadable directories).
    pub fn incomplete(&self) -> &[RelPath] {
        &self.incomplete
    }

    pub fn is_incomplete_at(&self, path: &RelPath) -> bool {
        path.is_within_any(&self.incomplete)
    }

    /// The bytes of its files.
    pub fn total_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The memory its entries take (the measure of what a scan costs).
    pub fn encoded_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| {
                b.memory() as usize
                    + std::mem::size_of::<Block>()
                    + b.first.as_bytes().len()
                    + b.last.as_bytes().len()
            })
            .sum()
    }

    /// The bytes it spilled to disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.len())
    }

    /// Why reading it back stopped short, if it did: a spilled block could
    /// not be read. Whatever was made from such a reading is incomplete.
    pub fn read_failure(&self) -> Option<&str> {
        self.spill.as_ref().and_then(|s| s.failure())
    }

    /// What tells, after the manifest is consumed, whether it was read
    /// back whole.
    pub fn read_watch(&self) -> ReadWatch {
        ReadWatch(self.spill.clone())
    }

    fn iter_block<'a>(&'a self, block: &'a Block) -> Iter<'a> {
        Iter {
            blocks: std::slice::from_ref(block).iter(),
            ..self.iter()
        }
    }
}

impl IntoIterator for Manifest {
    type Item = ManifestEntry;
    type IntoIter = IntoIter;

    /// The entries in path order; each block is freed once read.
    fn into_iter(self) -> IntoIter {
        IntoIter(BlockReader::new(self.blocks, self.spill))
    }
}

/// Whether a manifest's spilled blocks were all read back (see
/// [`Manifest::read_failure`]), kept past the manifest itself.
#[derive(Clone, Debug, Default)]
pub struct ReadWatch(Option<Arc<SpillFile>>);

impl ReadWatch {
    pub fn failure(&self) -> Option<String> {
        self.0.as_ref()?.failure().map(str::to_string)
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
    spill: Option<&'a SpillFile>,
    current: Cow<'a, [u8]>,
    at: usize,
    previous: codec::Previous,
}

impl Iterator for Iter<'_> {
    type Item = ManifestEntry;

    fn next(&mut self) -> Option<ManifestEntry> {
        if self.at == self.current.len() {
            // `None` from `bytes`: a spilled block could not be read back
            // (the manifest's `read_failure` says so); the reading stops.
            self.current = self.blocks.next()?.bytes(self.spill)?;
            self.at = 0;
            self.previous = codec::Previous::default();
        }
        let mut reader = codec::Reader::new(&self.current[self.at..]);
        let entry = codec::read_entry(&mut reader, &mut self.previous);
        self.at = self.current.len() - reader.remaining();
        Some(entry)
    }
}

fn file_bytes(item: &ManifestEntry) -> u64 {
    if item.entry.kind == EntryKind::File {
        item.entry.size
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
