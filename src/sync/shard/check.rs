//! Whether the entries of a selection of a saved plan (a shard's runs,
//! finalize's deletions) are still as the plan saw them, looked up by path
//! on both sides — a few key ranges listed, or a HEAD each — never by
//! listing the whole trees. A few parts are read and checked at once (one's
//! lookups wait on the network while the next is parsed); nothing of a part
//! is kept past its check.

use std::ops::Range;

use futures::StreamExt;

use super::{IdRanges, ShardLayout};
use crate::storage::{LookupOptions, Lookups, Storage, StorageError};
use crate::sync::diff::{DiffOptions, up_to_date};
use crate::sync::execute::Selection;
use crate::sync::plan::parts::PlanParts;
use crate::sync::plan::{PlanError, PlanItem, PlanStats, same_entry};
use crate::types::{RelPath, SyncAction};

/// What checking a selection found.
#[derive(Debug, Default)]
pub struct SelectionCheck {
    /// The totals of the items left to run.
    pub stats: PlanStats,
    /// Items whose entries were looked up.
    pub checked: u64,
    /// Items that no longer look as the plan saw them.
    pub stale: u64,
    pub first_stale: Option<RelPath>,
    /// Items found done already (by an earlier attempt that left no record).
    pub done: IdRanges,
    /// Requests made on each side.
    pub source_lookups: Lookups,
    pub destination_lookups: Lookups,
    /// Bytes of the plan's parts read.
    pub plan_bytes: u64,
    /// Parts read.
    pub parts_read: u64,
}

/// Why a selection could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot look the plan's entries up on the {side}: {source}")]
    Lookup {
        side: &'static str,
        #[source]
        source: StorageError,
    },
}

/// The two sides and how to look entries up on them.
pub struct Sides<'a> {
    pub source: &'a Storage,
    pub destination: &'a Storage,
    pub lookup: LookupOptions,
    pub diff: DiffOptions,
}

/// Checks every item `only` holds: its path stays inside the roots, its
/// source and destination still have the kind, size, mtime, link target and
/// version tag the plan saw. An item whose destination already holds what
/// the plan would make of it (a deletion: nothing there) is done, not stale.
pub async fn check_selection(
    parts: &PlanParts,
    layout: &ShardLayout,
    only: &Selection,
    sides: &Sides<'_>,
) -> Result<SelectionCheck, CheckError> {
    let wanted = (0..parts.count()).filter(|&n| only.ranges.overlaps(&parts.ids_of(n)));
    // A few parts at once: one's lookups wait on the network while the next
    // is read and parsed.
    gathered(
        futures::stream::iter(wanted)
            .map(|n| check_part(parts, n, layout, only, sides))
            .buffered(PARTS_AT_ONCE),
    )
    .await
}

/// The checks of parts, in order, added up.
async fn gathered(
    mut parts: impl futures::Stream<Item = Result<SelectionCheck, CheckError>> + Unpin,
) -> Result<SelectionCheck, CheckError> {
    let mut check = SelectionCheck::default();
    while let Some(part) = parts.next().await {
        check.absorb(part?);
    }
    Ok(check)
}

/// Parts checked at once.
const PARTS_AT_ONCE: usize = 4;

/// Checks the items `only` holds in part `n`.
async fn check_part(
    parts: &PlanParts,
    n: usize,
    layout: &ShardLayout,
    only: &Selection,
    sides: &Sides<'_>,
) -> Result<SelectionCheck, CheckError> {
    let mut check = SelectionCheck::default();
    let ids = parts.ids_of(n);
    let items = parts.read(n).await?;
    check.plan_bytes += parts.part_bytes(n);
    check.parts_read += 1;
    for range in only.ranges.ranges() {
        let chunk = range.start.max(ids.start)..range.end.min(ids.end);
        if chunk.is_empty() {
            continue;
        }
        let slice = &items[chunk.start - ids.start..chunk.end - ids.start];
        check_chunk(
            chunk.start,
            slice,
            layout.entries_around(&chunk),
            only,
            sides,
            &mut check,
        )
        .await?;
    }
    Ok(check)
}

/// Checks what finalize runs: the plan's later items (deletions,
/// directories), read from their own parts (a plan written for shards keeps
/// them apart), each deletion looked up on both sides.
pub async fn check_later(
    parts: &PlanParts,
    layout: &ShardLayout,
    sides: &Sides<'_>,
) -> Result<SelectionCheck, CheckError> {
    let checked = futures::stream::iter(0..parts.later_count())
        .map(|n| async move {
            let items = parts.read_later(n).await?;
            let mut check = SelectionCheck {
                plan_bytes: parts.later_bytes(n),
                parts_read: 1,
                ..SelectionCheck::default()
            };
            let ids = match (items.first(), items.last()) {
                (Some((first, _)), Some((last, _))) => *first..*last + 1,
                _ => 0..0,
            };
            let held = items
                .iter()
                .map(|(id, item)| (*id, item))
                .filter(|(_, item)| item.action != SyncAction::Skip && super::finalize_takes(item));
            check_held(
                contained(held)?,
                layout.entries_around(&ids),
                sides,
                &mut check,
            )
            .await?;
            Ok::<_, CheckError>(check)
        })
        .buffered(PARTS_AT_ONCE);
    gathered(std::pin::pin!(checked)).await
}

impl SelectionCheck {
    /// Adds what a later part's check found.
    fn absorb(&mut self, later: SelectionCheck) {
        self.stats.absorb(&later.stats);
        self.checked += later.checked;
        self.stale += later.stale;
        if self.first_stale.is_none() {
            self.first_stale = later.first_stale;
        }
        self.done.extend(&later.done);
        self.source_lookups += later.source_lookups;
        self.destination_lookups += later.destination_lookups;
        self.plan_bytes += later.plan_bytes;
        self.parts_read += later.parts_read;
    }
}

/// Checks the items of one stretch of ids (`first` is the first's id) whose
/// key range holds about `around` entries on each side.
async fn check_chunk(
    first: usize,
    items: &[PlanItem],
    around: (u64, u64),
    only: &Selection,
    sides: &Sides<'_>,
    check: &mut SelectionCheck,
) -> Result<(), CheckError> {
    let held = items
        .iter()
        .enumerate()
        .map(|(i, item)| (first + i, item))
        .filter(|(id, item)| item.action != SyncAction::Skip && only.holds(*id, item));
    check_held(contained(held)?, around, sides, check).await
}

/// The items, each refused if its path would leave the roots.
fn contained<'a>(
    items: impl Iterator<Item = (usize, &'a PlanItem)>,
) -> Result<Vec<(usize, &'a PlanItem)>, CheckError> {
    items
        .map(|(id, item)| {
            if item.path.is_contained() {
                Ok((id, item))
            } else {
                Err(PlanError::Invalid {
                    path: item.path.display().into(),
                    reason: "an entry path would leave the sync root".into(),
                }
                .into())
            }
        })
        .collect()
}

/// Looks `held` (in path order) up on both sides and judges each.
async fn check_held<'a>(
    held: Vec<(usize, &PlanItem)>,
    around: (u64, u64),
    sides: &Sides<'a>,
    check: &mut SelectionCheck,
) -> Result<(), CheckError> {
    // A directory is made (again) whatever its times: its kind is all a
    // run relies on, and other shards' files change its times.
    let looked: Vec<&RelPath> = held
        .iter()
        .filter(|(_, item)| !item.is_dir())
        .map(|(_, item)| &item.path)
        .collect();
    let look_up = |side: &'static str, storage: &'a Storage, around: u64| {
        let looked = &looked;
        async move {
            storage
                .entries_at(looked, around, sides.lookup)
                .await
                .map_err(|source| CheckError::Lookup { side, source })
        }
    };
    let (source_now, destination_now) = tokio::try_join!(
        look_up("source", sides.source, around.0),
        look_up("destination", sides.destination, around.1),
    )?;
    check.source_lookups += source_now.1;
    check.destination_lookups += destination_now.1;
    let mut now = source_now.0.into_iter().zip(destination_now.0);
    for (id, item) in held {
        if item.is_dir() {
            check.stats.add(item);
            continue;
        }
        let Some((src, dst)) = now.next() else {
            break;
        };
        check.checked += 1;
        let verdict = verdict(item, src.as_ref(), dst.as_ref(), &sides.diff);
        match verdict {
            Verdict::Current => check.stats.add(item),
            Verdict::Done => check.done.insert(id),
            Verdict::Stale => {
                check.stale += 1;
                if check.first_stale.is_none() {
                    check.first_stale = Some(item.path.clone());
                }
            }
        }
    }
    Ok(())
}

enum Verdict {
    Current,
    Done,
    Stale,
}

fn verdict(
    item: &PlanItem,
    src: Option<&crate::types::Entry>,
    dst: Option<&crate::types::Entry>,
    diff: &DiffOptions,
) -> Verdict {
    if !same_entry(item.src.as_ref(), src) {
        return Verdict::Stale;
    }
    if same_entry(item.dst.as_ref(), dst) {
        return Verdict::Current;
    }
    match (item.action, src, dst) {
        (SyncAction::Delete, _, None) => Verdict::Done,
        (action, Some(src), Some(dst))
            if action != SyncAction::Delete && up_to_date(src, dst, diff) =>
        {
            Verdict::Done
        }
        _ => Verdict::Stale,
    }
}

impl ShardLayout {
    /// About how many entries each side holds over the paths of `ids`, from
    /// the runs' counts.
    pub fn entries_around(&self, ids: &Range<usize>) -> (u64, u64) {
        let at = self.runs.partition_point(|run| run.end <= ids.start);
        let mut around = (0u64, 0u64);
        for run in self.runs[at..].iter().take_while(|run| run.start < ids.end) {
            let overlap = (run.end.min(ids.end) - run.start.max(ids.start)) as u128;
            let len = (run.end - run.start).max(1) as u128;
            around.0 += (u128::from(run.source_entries) * overlap).div_ceil(len) as u64;
            around.1 += (u128::from(run.destination_entries) * overlap).div_ceil(len) as u64;
        }
        around
    }
}
