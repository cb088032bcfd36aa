//! Gathering a scan's entries, in any order, into a manifest: sorted runs
//! encoded as they fill, spilled past a memory budget, merged at the end.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::block::{Block, BlockReader, BlockWriter, Budget, SpillFile};
use super::{Manifest, ManifestEntry};
use crate::types::RelPath;

/// Entries a builder sorts before it encodes them as a run: bounds what it
/// holds decoded (~400 B each) while a scan adds entries.
const RUN_ENTRIES: usize = 8192;

/// Gathers a scan's entries, in any order, into a [`Manifest`]: sorted runs
/// of up to [`RUN_ENTRIES`] are encoded as they fill, and merged at the end.
/// With a memory budget, runs past it go to a spill file in a temporary
/// directory, so a scan of any size completes.
pub struct ManifestBuilder {
    pending: Vec<ManifestEntry>,
    runs: Vec<Vec<Block>>,
    pub(super) run_entries: usize,
    budget: Option<Budget>,
    /// Bytes of the runs' blocks held in memory.
    memory: u64,
}

impl Default for ManifestBuilder {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            runs: Vec::new(),
            run_entries: RUN_ENTRIES,
            budget: None,
            memory: 0,
        }
    }
}

impl ManifestBuilder {
    /// A builder that holds at most `bytes` of encoded entries in memory,
    /// the rest in an unnamed file in `dir`. Where that file cannot be
    /// made, it says so and holds everything in memory.
    pub fn with_budget(bytes: u64, dir: &std::path::Path) -> Self {
        let budget = match SpillFile::create(dir) {
            Ok(spill) => Some(Budget {
                bytes,
                spill: Arc::new(spill),
            }),
            Err(e) => {
                tracing::warn!(
                    "cannot make a spill file in {}: {e}; the scan is held in memory",
                    dir.display()
                );
                None
            }
        };
        Self {
            budget,
            ..Self::default()
        }
    }

    pub fn push(&mut self, entry: ManifestEntry) {
        self.pending.push(entry);
        if self.pending.len() >= self.run_entries {
            self.end_run();
        }
    }

    /// Ends the current run: entries pushed since the last run began are
    /// sorted and encoded now. A caller whose input comes in stretches
    /// that do not overlap (pages of a listing) ends a run after each, so
    /// that `finish` moves their blocks whole instead of merging entries.
    pub fn end_run(&mut self) {
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
        let run = writer.finish();
        self.memory += run.iter().map(Block::memory).sum::<u64>();
        self.runs.push(run);
        self.spill_past_budget();
    }

    /// Past the budget, every run's blocks go to the spill file (a write
    /// error leaves them in memory, and says so).
    fn spill_past_budget(&mut self) {
        let Some(budget) = &self.budget else {
            return;
        };
        if self.memory <= budget.bytes {
            return;
        }
        for block in self.runs.iter_mut().flatten() {
            let held = block.memory();
            match block.spill_to(&budget.spill) {
                Ok(()) => self.memory -= held,
                Err(e) => {
                    tracing::warn!("cannot write the scan's spill file: {e}; held in memory");
                    self.budget = None;
                    return;
                }
            }
        }
    }

    pub fn finish(mut self, incomplete: Vec<RelPath>, root_exists: bool) -> Manifest {
        self.end_run();
        let spill = self.budget.as_ref().map(|b| b.spill.clone());
        let mut writer = BlockWriter::with_budget(self.budget.clone());
        // The runs merged by path. A block that ends before every other
        // run's next path moves across whole, not decoded (the runs of a
        // listing hold long stretches no other run interleaves); each run's
        // blocks are freed as the merge passes them.
        let mut heap = BinaryHeap::new();
        for (index, run) in self.runs.into_iter().enumerate() {
            let mut reader = BlockReader::new(run, spill.clone());
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
            spill,
            len,
            file_bytes,
            incomplete,
            misplaced_sidecars: None,
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
