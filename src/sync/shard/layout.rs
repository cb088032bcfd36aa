//! The assignment of a plan's items to shards, made once as the plan is
//! written and kept in its header (`ShardLayout`), so that a shard reads the
//! header and its own parts, never the whole plan.
//!
//! A shard's share is a few runs of consecutive items (consecutive keys, so
//! its entries can be checked by listing a few key ranges), plus pieces of
//! files cut across every shard. The writer sees items one at a time and
//! cannot know the totals until the end, so it keeps a histogram of blocks
//! of consecutive items, merged pairwise whenever there are too many: at
//! most `MAX_BLOCKS` blocks, each a small fraction of any shard's fair share,
//! whatever the plan's size. At the end, the blocks are cut into chunks of
//! equal weight (bytes and requests), and chunks go, largest first, to the
//! shard where the larger of its two shares stays smallest. One chunk per
//! shard (one run each) is tried first; more, smaller chunks only when the
//! shards would otherwise be more than 5% apart.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Piece, can_cut, is_shard_work, requests_of};
use crate::sync::plan::PlanItem;

/// Blocks the writer keeps at most: 64 Ki blocks of ~56 bytes.
const MAX_BLOCKS: usize = 1 << 16;

/// A shard's largest share over the mean that needs no more runs.
pub const BALANCE_GOAL: f64 = 1.05;

/// Chunks per shard tried, in order, until the balance is within the goal.
const RUNS_PER_SHARD: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// Pieces are whole multiples of this (and so each at least S3's 5 MiB part
/// floor, except a file's last).
pub const PIECE_ALIGN: u64 = 8 * 1024 * 1024;

/// A file is cut when it is more than a shard's fair share divided by this,
/// into pieces of about a fair share divided by twice this.
const CUT_DIVISOR: u64 = 2;

/// Every shard's share of a plan, as its header keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLayout {
    pub count: u32,
    /// Runs of consecutive item ids, in order, together covering every item
    /// of the plan once.
    pub runs: Vec<Run>,
    /// Files cut into pieces, each piece sent by its own shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<CutFile>,
    /// What each shard moves, by shard.
    pub loads: Vec<ShardLoad>,
}

/// Items `start..end` of the plan, and the shard (1-based) that runs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub start: usize,
    pub end: usize,
    pub shard: u32,
    /// Entries the plan's scans saw on each side over the run's paths,
    /// unchanged ones included: what listing the run's key range returns.
    pub source_entries: u64,
    pub destination_entries: u64,
}

/// A file cut into pieces of `piece_len` (the last shorter).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutFile {
    pub item: usize,
    pub size: u64,
    pub piece_len: u64,
    /// The shard (1-based) of each piece, in file order.
    pub owners: Vec<u32>,
}

/// What one shard moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLoad {
    /// Items it runs whole (files, links, attribute changes).
    pub items: u64,
    pub pieces: u64,
    pub bytes: u64,
    pub requests: u64,
}

impl CutFile {
    /// Its pieces, in file order.
    pub fn pieces(&self) -> impl Iterator<Item = (Piece, u32)> + '_ {
        let of = self.owners.len() as u32;
        self.owners.iter().enumerate().map(move |(n, &owner)| {
            let start = n as u64 * self.piece_len;
            let piece = Piece {
                item: self.item,
                number: n as u32,
                of,
                start,
                len: self.piece_len.min(self.size.saturating_sub(start)),
            };
            (piece, owner)
        })
    }
}

impl ShardLayout {
    /// The runs of shard `index` (1-based), in order.
    pub fn runs_of(&self, index: u32) -> impl Iterator<Item = &Run> + '_ {
        self.runs.iter().filter(move |run| run.shard == index)
    }

    /// The pieces shard `index` sends.
    pub fn pieces_of(&self, index: u32) -> Vec<Piece> {
        self.cut
            .iter()
            .flat_map(CutFile::pieces)
            .filter(|(_, owner)| *owner == index)
            .map(|(piece, _)| piece)
            .collect()
    }

    /// Whether item `id` is a cut file (sent in pieces, not whole).
    #[cfg(test)]
    pub fn is_cut(&self, id: usize) -> bool {
        self.cut.binary_search_by_key(&id, |c| c.item).is_ok()
    }

    /// The largest shard over the mean, by bytes and by requests (1.0: even).
    pub fn balance(&self) -> (f64, f64) {
        balance(&self.loads)
    }

    /// Checks what a header read from outside says: runs in order, covering
    /// `items` ids once, owners within the count.
    pub fn validate(&self, items: usize) -> Result<(), String> {
        if self.count == 0 || self.loads.len() != self.count as usize {
            return Err("its shard count and loads disagree".into());
        }
        let mut next = 0;
        for run in &self.runs {
            if run.start != next || run.end <= run.start || !(1..=self.count).contains(&run.shard) {
                return Err(format!(
                    "run {}..{} of shard {} does not follow the one before it",
                    run.start, run.end, run.shard
                ));
            }
            next = run.end;
        }
        if next != items {
            return Err(format!("its runs cover {next} items, the plan has {items}"));
        }
        let mut previous = None;
        for cut in &self.cut {
            let pieces = cut.owners.len() as u64;
            let pieces_cover = cut.piece_len > 0
                && pieces > 0
                && pieces.checked_mul(cut.piece_len) >= Some(cut.size)
                && (pieces - 1).saturating_mul(cut.piece_len) < cut.size.max(1);
            if cut.item >= items
                || previous.is_some_and(|p| p >= cut.item)
                || !pieces_cover
                || cut.owners.iter().any(|o| !(1..=self.count).contains(o))
            {
                return Err(format!("cut file {} is out of bounds", cut.item));
            }
            previous = Some(cut.item);
        }
        Ok(())
    }
}

/// Largest over mean, by bytes and requests.
pub fn balance(loads: &[ShardLoad]) -> (f64, f64) {
    let ratio = |value: fn(&ShardLoad) -> u64| {
        let total: u64 = loads.iter().map(value).sum();
        let max = loads.iter().map(value).max().unwrap_or(0);
        if total == 0 {
            1.0
        } else {
            max as f64 * loads.len() as f64 / total as f64
        }
    };
    (ratio(|l| l.bytes), ratio(|l| l.requests))
}

/// Consecutive items, weighed.
#[derive(Clone, Copy, Debug, Default)]
struct Block {
    start: usize,
    end: usize,
    /// Shard work in it: items, bytes, requests.
    items: u64,
    bytes: u64,
    requests: u64,
    source_entries: u64,
    destination_entries: u64,
    /// A single file that may be cut into pieces.
    cuttable: bool,
}

impl Block {
    fn absorb(&mut self, next: &Block) {
        self.end = next.end;
        self.items += next.items;
        self.bytes += next.bytes;
        self.requests += next.requests;
        self.source_entries += next.source_entries;
        self.destination_entries += next.destination_entries;
        self.cuttable = false;
    }
}

/// Builds a layout from the items as they are written, in path order.
pub struct LayoutBuilder {
    count: u32,
    /// Whether the pair of sides can put a file together from ranges.
    splittable: bool,
    blocks: Vec<Block>,
    open: Block,
    /// A block holds at most this many work items and bytes (both double
    /// whenever the blocks are merged).
    item_limit: u64,
    byte_limit: u64,
    /// Ids given so far.
    next_id: usize,
}

impl LayoutBuilder {
    pub fn new(count: u32, splittable: bool) -> LayoutBuilder {
        LayoutBuilder {
            count: count.max(1),
            splittable,
            blocks: Vec::new(),
            open: Block::default(),
            item_limit: 1,
            byte_limit: 64 * 1024,
            next_id: 0,
        }
    }

    /// Counts one item of the plan: `listed` when it is written to the
    /// parts (it then has the next id), not when it is only counted.
    pub fn push(&mut self, item: &PlanItem, listed: bool) {
        self.open.source_entries += u64::from(item.src.is_some());
        self.open.destination_entries += u64::from(item.dst.is_some());
        if !listed {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if !is_shard_work(item) {
            self.open.end = id + 1;
            return;
        }
        let bytes = item.bytes_to_send;
        let large = bytes > self.byte_limit;
        let full = self.open.items + 1 > self.item_limit
            || self.open.bytes.saturating_add(bytes) > self.byte_limit;
        // A large file is a block of its own (its start is its id).
        if (large && self.open.end > self.open.start) || (self.open.items > 0 && full) {
            self.close(id);
        }
        self.open.end = id + 1;
        self.open.items += 1;
        self.open.bytes += bytes;
        self.open.requests += requests_of(bytes);
        if large {
            self.open.cuttable = can_cut(item);
            self.close(id + 1);
        }
    }

    /// Ends the open block before id `at` (its entries so far stay in it).
    fn close(&mut self, at: usize) {
        let next = Block {
            start: at,
            end: at,
            ..Block::default()
        };
        let mut done = std::mem::replace(&mut self.open, next);
        done.end = at;
        self.blocks.push(done);
        while self.blocks.len() >= MAX_BLOCKS {
            self.merge();
        }
    }

    /// Doubles the limits and merges neighbours that fit them.
    fn merge(&mut self) {
        self.item_limit = self.item_limit.saturating_mul(2);
        self.byte_limit = self.byte_limit.saturating_mul(2);
        let mut merged: Vec<Block> = Vec::with_capacity(self.blocks.len() / 2 + 1);
        for block in self.blocks.drain(..) {
            match merged.last_mut() {
                Some(last)
                    if last.items + block.items <= self.item_limit
                        && last.bytes + block.bytes <= self.byte_limit =>
                {
                    last.absorb(&block);
                }
                _ => merged.push(block),
            }
        }
        self.blocks = merged;
    }

    /// The layout of the items pushed.
    pub fn finish(mut self) -> ShardLayout {
        let total = self.next_id;
        self.open.end = total;
        if self.open.end > self.open.start
            || self.open.source_entries + self.open.destination_entries > 0
        {
            let open = self.open;
            self.blocks.push(open);
        }
        // Entries counted after the last id belong to the last block.
        let mut blocks: Vec<Block> = Vec::with_capacity(self.blocks.len());
        for block in self.blocks {
            match blocks.last_mut() {
                Some(last) if block.end <= block.start => {
                    last.source_entries += block.source_entries;
                    last.destination_entries += block.destination_entries;
                }
                _ => blocks.push(block),
            }
        }
        layout(self.count, self.splittable, blocks, total)
    }
}

/// Cuts large files, then divides the rest into runs.
fn layout(count: u32, splittable: bool, blocks: Vec<Block>, total: usize) -> ShardLayout {
    let n = count as usize;
    let total_bytes: u64 = blocks.iter().map(|b| b.bytes).sum();
    let fair = total_bytes.div_ceil(u64::from(count)).max(1);
    let mut loads = vec![ShardLoad::default(); n];
    let mut cut = Vec::new();
    let mut whole: Vec<Block> = Vec::with_capacity(blocks.len());
    // Pieces first: equal ones, as many as a whole number of rounds over the
    // shards, each to the least loaded; the runs pack around them.
    for block in blocks {
        if splittable && count > 1 && block.cuttable && block.bytes > fair / CUT_DIVISOR {
            let size = block.bytes;
            let piece_target = (fair / (2 * CUT_DIVISOR)).max(1);
            let rounds = size.div_ceil(piece_target * u64::from(count)).max(1);
            let piece_len = size
                .div_ceil(rounds * u64::from(count))
                .div_ceil(PIECE_ALIGN)
                .max(1)
                * PIECE_ALIGN;
            let pieces = size.div_ceil(piece_len);
            let mut owners = Vec::with_capacity(pieces as usize);
            for number in 0..pieces {
                let len = piece_len.min(size - number * piece_len);
                let least = (0..n)
                    .min_by_key(|&k| (loads[k].bytes, loads[k].requests, k))
                    .unwrap_or(0);
                loads[least].pieces += 1;
                loads[least].bytes += len;
                loads[least].requests += requests_of(len);
                owners.push(least as u32 + 1);
            }
            cut.push(CutFile {
                item: block.start,
                size,
                piece_len,
                owners,
            });
            // Its id stays in a run (the run's shard leaves it alone).
            whole.push(Block {
                items: 0,
                bytes: 0,
                requests: 0,
                cuttable: false,
                ..block
            });
        } else {
            whole.push(block);
        }
    }
    let total_requests: u64 = whole.iter().map(|b| b.requests).sum::<u64>()
        + loads.iter().map(|l| l.requests).sum::<u64>();
    let all_bytes = total_bytes.max(1);
    let all_requests = total_requests.max(1);
    // A weight as (share of all bytes, share of all requests), in parts per
    // billion, so that the arithmetic is exact.
    const SCALE: u128 = 1_000_000_000;
    let share = |bytes: u64, requests: u64| -> (u128, u128) {
        (
            u128::from(bytes) * SCALE / u128::from(all_bytes),
            u128::from(requests) * SCALE / u128::from(all_requests),
        )
    };
    let mut best: Option<(f64, Vec<Run>, Vec<ShardLoad>)> = None;
    for per_shard in RUNS_PER_SHARD {
        let chunks = chunks_of(&whole, n * per_shard, &share, total);
        let mut tried = loads.clone();
        let owners = pack(&chunks, &mut tried, &share);
        let (b, r) = balance(&tried);
        let worst = b.max(r);
        let runs = runs_of(&chunks, &owners);
        if best.as_ref().is_none_or(|(w, _, _)| worst < *w) {
            best = Some((worst, runs, tried));
        }
        if worst <= BALANCE_GOAL || chunks.len() < n * per_shard {
            break;
        }
    }
    let (_, runs, loads) = best.unwrap_or_default();
    ShardLayout {
        count,
        runs,
        cut,
        loads,
    }
}

/// A chunk: consecutive blocks, weighed.
struct Chunk {
    ids: Range<usize>,
    block: Block,
}

/// The blocks cut into at most `wanted` chunks of about equal weight (the
/// sum of the two shares); every id in exactly one.
fn chunks_of(
    blocks: &[Block],
    wanted: usize,
    share: &impl Fn(u64, u64) -> (u128, u128),
    total: usize,
) -> Vec<Chunk> {
    let weight = |b: &Block| {
        let (x, y) = share(b.bytes, b.requests);
        x + y
    };
    let all: u128 = blocks.iter().map(weight).sum();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut so_far: u128 = 0;
    for block in blocks {
        // Where this block's middle falls decides its chunk: a chunk closes
        // once the weight before it passes its share of the whole.
        let k = chunks.len() as u128;
        let boundary = all * k / wanted as u128;
        let opens = chunks.is_empty() || (so_far >= boundary && all > 0 && chunks.len() < wanted);
        so_far += weight(block);
        match chunks.last_mut() {
            Some(chunk) if !opens => {
                chunk.ids.end = block.end;
                chunk.block.absorb(block);
            }
            _ => chunks.push(Chunk {
                ids: block.start..block.end,
                block: Block {
                    cuttable: false,
                    ..*block
                },
            }),
        }
    }
    if total == 0 {
        return Vec::new();
    }
    // The first chunk starts at the plan's start, the last ends at its end.
    if let Some(first) = chunks.first_mut() {
        first.ids.start = 0;
    }
    if let Some(last) = chunks.last_mut() {
        last.ids.end = total;
    }
    chunks
}

/// Gives each chunk, heaviest first, to the shard where the larger of its
/// two shares stays smallest; returns the owner (0-based) of each chunk.
fn pack(
    chunks: &[Chunk],
    loads: &mut [ShardLoad],
    share: &impl Fn(u64, u64) -> (u128, u128),
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    let key = |c: &Chunk| {
        let (b, r) = share(c.block.bytes, c.block.requests);
        (b.max(r), b + r)
    };
    order.sort_by(|&a, &b| key(&chunks[b]).cmp(&key(&chunks[a])).then(a.cmp(&b)));
    let mut owners = vec![0; chunks.len()];
    for c in order {
        let block = &chunks[c].block;
        let best = (0..loads.len())
            .min_by_key(|&k| {
                let (b, r) = share(
                    loads[k].bytes + block.bytes,
                    loads[k].requests + block.requests,
                );
                (b.max(r), b + r, k)
            })
            .unwrap_or(0);
        loads[best].items += block.items;
        loads[best].bytes += block.bytes;
        loads[best].requests += block.requests;
        owners[c] = best;
    }
    owners
}

/// Chunks as runs, neighbours of one shard joined.
fn runs_of(chunks: &[Chunk], owners: &[usize]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (chunk, &owner) in chunks.iter().zip(owners) {
        let shard = owner as u32 + 1;
        match runs.last_mut() {
            Some(last) if last.shard == shard => {
                last.end = chunk.ids.end;
                last.source_entries += chunk.block.source_entries;
                last.destination_entries += chunk.block.destination_entries;
            }
            _ => runs.push(Run {
                start: chunk.ids.start,
                end: chunk.ids.end,
                shard,
                source_entries: chunk.block.source_entries,
                destination_entries: chunk.block.destination_entries,
            }),
        }
    }
    runs
}
