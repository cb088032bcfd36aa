//! A saved plan divided into shards that separate workers run at once
//! (`apply --shard K/N`), and what only `finalize` may do after all of them.
//!
//! The assignment is made once, as the plan is written (`plan --shards N`),
//! and kept in the plan's header (`layout`): every shard reads the same one
//! and no shard reads more of the plan than its own parts. Work is what
//! moves bytes or makes requests: files, links and attribute changes. A
//! shard's share is a few runs of consecutive items, so that it checks its
//! entries by listing a few key ranges; the directories in its runs it makes
//! itself (a file's missing parents are made as it is written); deletions
//! and directory times wait for `finalize`, so that no shard deletes what
//! another one still reads, and no directory's time is set before its
//! contents stop changing.
//!
//! Shards are balanced on two loads at once, their share of the plan's
//! bytes and of its requests. No unit is large next to a shard's fair
//! share: a file over half of it is cut into byte ranges (pieces) of about
//! a quarter, spread over every shard, where the destination can put ranges
//! together (a local file written at offsets, an object assembled from
//! parts server-side).

mod check;
mod ids;
mod layout;
mod spec;

pub use check::{CheckError, SelectionCheck, Sides, check_later, check_selection};
pub use ids::IdRanges;

pub use layout::{
    BALANCE_GOAL, CutFile, LayoutBuilder, PIECE_ALIGN, Run, ShardLayout, ShardLoad, balance,
};
pub use spec::{ShardSpec, parse_shard, shard_from_env};

use serde::{Deserialize, Serialize};

use super::execute::Selection;
use super::plan::{PlanItem, SyncPlan};
use crate::types::{EntryKind, SyncAction};

/// `K/N`: shard K (1-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardId {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A byte range of one file that a shard sends on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// The plan item.
    pub item: usize,
    /// 0-based, in file order.
    pub number: u32,
    /// How many pieces the file is cut into.
    pub of: u32,
    pub start: u64,
    pub len: u64,
}

/// Whether an item is shard work (the rest is every shard's, or finalize's).
pub fn is_shard_work(item: &PlanItem) -> bool {
    let kind = item.src.as_ref().or(item.dst.as_ref()).map(|e| e.kind);
    match item.action {
        SyncAction::Skip | SyncAction::Delete => false,
        _ => kind != Some(EntryKind::Dir),
    }
}

/// Whether an item is done by `finalize` (deletions, directory times).
pub fn is_finalize_work(item: &PlanItem) -> bool {
    let kind = item.src.as_ref().or(item.dst.as_ref()).map(|e| e.kind);
    item.action == SyncAction::Delete
        || (item.action == SyncAction::Metadata && kind == Some(EntryKind::Dir))
}

/// The requests a unit makes, as far as balance goes: one for a small file,
/// one per 16 MiB part for a large one.
pub(crate) fn requests_of(bytes: u64) -> u64 {
    const PART: u64 = 16 * 1024 * 1024;
    bytes.div_ceil(PART).max(1)
}

/// A whole-file transfer (not a delta, an attribute change or a link) can be
/// sent in ranges.
pub(crate) fn can_cut(item: &PlanItem) -> bool {
    matches!(
        item.action,
        SyncAction::Upload | SyncAction::Download | SyncAction::Copy
    ) && item.src.as_ref().map(|e| e.kind) == Some(EntryKind::File)
}

/// What a shard runs of its runs: its files, links and attribute changes,
/// and the directories it makes (their times are finalize's).
pub fn shard_takes(item: &PlanItem) -> bool {
    is_shard_work(item) || (item.is_dir() && item.action.transfers())
}

/// What finalize runs: deletions, and directories (made again, so that
/// their times are set once their contents stopped changing).
pub fn finalize_takes(item: &PlanItem) -> bool {
    is_finalize_work(item) || (item.is_dir() && item.action.transfers())
}

/// What shard `index` runs: its runs, less what earlier attempts
/// `finished` and the files cut into pieces (sent piece by piece).
pub fn shard_selection(layout: &ShardLayout, index: u32, finished: IdRanges) -> Selection {
    let ranges: IdRanges = layout
        .runs_of(index)
        .map(|run| [run.start, run.end])
        .collect::<Vec<_>>()
        .into();
    let mut left = finished;
    for cut in &layout.cut {
        left.insert(cut.item);
    }
    Selection {
        ranges,
        takes: shard_takes,
        done: left,
    }
}

/// Whether a file can be put together from ranges sent separately on this
/// pair of sides (one side local; copies between stores stay whole).
pub fn splittable(plan: &SyncPlan) -> bool {
    plan.source.is_local() || plan.destination.is_local()
}

/// The layout of a plan held whole, as a writer of its parts would make it.
#[cfg(test)]
pub fn layout_of(plan: &SyncPlan, count: u32, splittable: bool) -> ShardLayout {
    let mut builder = LayoutBuilder::new(count, splittable);
    for item in &plan.items {
        builder.push(item, true);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::{listing, options, plan_of};

    const MIB: u64 = 1024 * 1024;

    fn plan(files: &[(String, u64)]) -> SyncPlan {
        let entries: Vec<(&str, Option<u64>, i64)> = files
            .iter()
            .map(|(name, size)| (name.as_str(), Some(*size), 1))
            .collect();
        let mut opts = options();
        opts.delta_threshold = u64::MAX;
        plan_of(listing(&entries), listing(&[]), opts)
    }

    fn tree(n: usize) -> Vec<(String, u64)> {
        // Sizes spread over four orders of magnitude, deterministically.
        (0..n)
            .map(|i| {
                let size = 1 + (i as u64 * 2_654_435_761) % (4 * MIB);
                (format!("d{}/f{i:06}", i % 97), size)
            })
            .collect()
    }

    /// The shard of every shard-work item and of every piece.
    fn owners(plan: &SyncPlan, layout: &ShardLayout) -> Vec<(usize, Option<u32>, u32)> {
        let mut seen = Vec::new();
        for run in &layout.runs {
            for id in run.start..run.end {
                if is_shard_work(&plan.items[id]) && !layout.is_cut(id) {
                    seen.push((id, None, run.shard));
                }
            }
        }
        for cut in &layout.cut {
            for (piece, owner) in cut.pieces() {
                seen.push((piece.item, Some(piece.number), owner));
            }
        }
        seen.sort_unstable();
        seen
    }

    #[test]
    fn every_item_is_in_exactly_one_run_and_the_runs_are_few() {
        let plan = plan(&tree(5000));
        let layout = layout_of(&plan, 8, false);
        layout.validate(plan.items.len()).unwrap();
        let work: Vec<usize> = (0..plan.items.len())
            .filter(|&i| is_shard_work(&plan.items[i]))
            .collect();
        let seen: Vec<usize> = owners(&plan, &layout).iter().map(|o| o.0).collect();
        assert_eq!(seen, work);
        // Sizes spread evenly over the keys: one run a shard is enough.
        assert_eq!(layout.runs.len(), 8, "{:?}", layout.runs);
        let (b, r) = layout.balance();
        assert!(b <= BALANCE_GOAL && r <= BALANCE_GOAL, "{b} {r}");
    }

    #[test]
    fn shards_are_balanced_by_bytes_and_by_requests() {
        // The benchmark's shape: 100,000 files and one a quarter of the bytes.
        let mut files = tree(100_000);
        files.push(("big.raw".into(), 64 * 1024 * MIB));
        let plan = plan(&files);
        for count in [4, 8, 100] {
            let layout = layout_of(&plan, count, true);
            layout.validate(plan.items.len()).unwrap();
            let (b, r) = layout.balance();
            assert!(b <= BALANCE_GOAL && r <= BALANCE_GOAL, "{count}: {b} {r}");
            assert_eq!(layout.cut.len(), 1);
        }
    }

    #[test]
    fn keys_that_cluster_their_weight_take_more_runs_to_balance() {
        // Every large file sorts before every small one: one run a shard
        // would give the first shards the bytes and the last the requests.
        let mut files: Vec<(String, u64)> =
            (0..400).map(|i| (format!("a/{i:04}"), 40 * MIB)).collect();
        files.extend((0..40_000).map(|i| (format!("b/{i:06}"), 1000)));
        let plan = plan(&files);
        let layout = layout_of(&plan, 8, false);
        layout.validate(plan.items.len()).unwrap();
        let (b, r) = layout.balance();
        assert!(b <= BALANCE_GOAL && r <= BALANCE_GOAL, "{b} {r}");
        assert!(layout.runs.len() > 8, "{}", layout.runs.len());
        assert!(layout.runs.len() <= 8 * 128);
    }

    #[test]
    fn the_layout_is_stable_and_survives_many_blocks() {
        // More items than blocks: merged as they come.
        let plan = plan(&tree(200_000));
        let layout = layout_of(&plan, 16, true);
        assert_eq!(layout, layout_of(&plan, 16, true));
        layout.validate(plan.items.len()).unwrap();
        let (b, r) = layout.balance();
        assert!(b <= BALANCE_GOAL && r <= BALANCE_GOAL, "{b} {r}");
        let json = serde_json::to_string(&layout).unwrap();
        let back: ShardLayout = serde_json::from_str(&json).unwrap();
        assert_eq!(back, layout);
        // Entries are counted per run, every one once.
        let entries: u64 = layout.runs.iter().map(|r| r.source_entries).sum();
        assert_eq!(entries as usize, plan.items.len());
    }

    #[test]
    fn a_file_far_over_a_fair_share_is_cut_into_aligned_ranges() {
        let mut files = tree(200);
        files.push(("huge.img".into(), 10 * 1024 * MIB + 12345));
        let plan = plan(&files);
        let layout = layout_of(&plan, 4, true);
        layout.validate(plan.items.len()).unwrap();
        assert_eq!(layout.cut.len(), 1);
        let cut = &layout.cut[0];
        assert_eq!(plan.items[cut.item].path.as_bytes(), b"huge.img");
        // Contiguous, aligned, covering the file.
        let mut next = 0;
        for (piece, _) in cut.pieces() {
            assert_eq!(piece.start, next);
            assert_eq!(piece.start % PIECE_ALIGN, 0);
            next += piece.len;
        }
        assert_eq!(next, plan.items[cut.item].bytes_to_send);
        // Spread over every shard.
        for k in 1..=4 {
            assert!(!layout.pieces_of(k).is_empty());
        }
        let (b, _) = layout.balance();
        assert!(b <= BALANCE_GOAL, "{:?}", layout.loads);
        // Where the destination cannot assemble ranges, it stays whole.
        assert!(layout_of(&plan, 4, false).cut.is_empty());
    }

    #[test]
    fn a_damaged_layout_is_refused() {
        let plan = plan(&tree(100));
        let layout = layout_of(&plan, 2, false);
        assert!(layout.validate(plan.items.len() + 1).is_err());
        let mut gap = layout.clone();
        gap.runs[0].end -= 1;
        assert!(gap.validate(plan.items.len()).is_err());
        let mut foreign = layout.clone();
        foreign.runs[0].shard = 3;
        assert!(foreign.validate(plan.items.len()).is_err());
    }
}
