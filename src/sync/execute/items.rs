//! Where a run takes a plan's items from, a part at a time: the plan in
//! memory, or its parts at their place. A plan in parts is never held whole:
//! a run reads each part when its turn comes, and reads again, backwards,
//! the few that hold deletions and directories once the transfers are done.

use std::ops::Range;
use std::sync::Arc;

use super::super::plan::parts::PlanParts;
use super::super::plan::{PlanError, PlanItem, SyncPlan};
use crate::sync::shard::IdRanges;
use crate::types::SyncAction;

/// A plan a run can carry out.
#[derive(Clone)]
pub enum PlanToRun {
    /// Every item in memory (a plan just made, or one the review edited).
    InMemory(Arc<SyncPlan>),
    /// A plan in parts: `head` is the plan without its items (its totals
    /// counted from the parts, not taken from the header).
    InParts {
        head: Arc<SyncPlan>,
        parts: Arc<PlanParts>,
        /// The items this run may carry out (a shard's, finalize's); the
        /// rest are left alone, and parts holding none are never read.
        only: Option<Arc<Selection>>,
    },
}

/// Which items of a plan in parts one run carries out: those in `ranges`
/// that `takes` accepts and an earlier attempt did not finish. Its head's
/// totals are the selection's, counted when it was made.
pub struct Selection {
    /// Ids, disjoint, in order.
    pub ranges: IdRanges,
    pub takes: fn(&PlanItem) -> bool,
    /// Ids finished by an earlier attempt.
    pub done: IdRanges,
}

impl Selection {
    pub fn holds(&self, id: usize, item: &PlanItem) -> bool {
        self.ranges.contains(id) && !self.done.contains(id) && (self.takes)(item)
    }
}

impl PlanToRun {
    /// A plan in parts, the whole of it to run.
    pub fn in_parts(head: Arc<SyncPlan>, parts: Arc<PlanParts>) -> PlanToRun {
        PlanToRun::InParts {
            head,
            parts,
            only: None,
        }
    }
}

impl From<Arc<SyncPlan>> for PlanToRun {
    fn from(plan: Arc<SyncPlan>) -> Self {
        PlanToRun::InMemory(plan)
    }
}

impl From<SyncPlan> for PlanToRun {
    fn from(plan: SyncPlan) -> Self {
        PlanToRun::InMemory(Arc::new(plan))
    }
}

/// Items of a plan in memory taken as one part: what a pass holds at once
/// beyond the plan itself is bounded by it.
const IN_MEMORY_PART: usize = 100_000;

/// The items of part `n` of a plan held whole.
fn in_memory_part(plan: &SyncPlan, n: usize) -> Range<usize> {
    let start = n.saturating_mul(IN_MEMORY_PART).min(plan.items.len());
    start..(start + IN_MEMORY_PART).min(plan.items.len())
}

/// One part's items, and the id of its first (ids run on across parts in
/// the plan's order: the index in a plan held whole).
pub enum Part {
    Shared {
        plan: Arc<SyncPlan>,
        range: Range<usize>,
    },
    Read {
        first_id: usize,
        items: Vec<PlanItem>,
    },
}

impl Part {
    /// Item `id`, if this part holds it.
    pub fn get(&self, id: usize) -> Option<&PlanItem> {
        let (first_id, items) = self.slice();
        items.get(id.checked_sub(first_id)?)
    }

    /// The id of its first item, and its items.
    fn slice(&self) -> (usize, &[PlanItem]) {
        match self {
            Part::Shared { plan, range } => (range.start, &plan.items[range.clone()]),
            Part::Read { first_id, items } => (*first_id, &items[..]),
        }
    }

    /// Its items with their ids, in path order (reversible).
    pub fn items(&self) -> impl DoubleEndedIterator<Item = (usize, &PlanItem)> + '_ {
        let (first_id, items) = self.slice();
        items
            .iter()
            .enumerate()
            .map(move |(i, item)| (first_id + i, item))
    }
}

impl PlanToRun {
    /// The plan, with its items when it holds them.
    pub fn head(&self) -> &Arc<SyncPlan> {
        match self {
            PlanToRun::InMemory(plan) => plan,
            PlanToRun::InParts { head, .. } => head,
        }
    }

    /// The plan to change before it runs: a plan held whole by this value
    /// only is changed in place; a head shared is copied (without items).
    pub fn head_mut(&mut self) -> &mut SyncPlan {
        match self {
            PlanToRun::InMemory(plan) => Arc::make_mut(plan),
            PlanToRun::InParts { head, .. } => Arc::make_mut(head),
        }
    }

    /// How many items change something, and how many of them delete:
    /// counted from a plan in memory (its totals may predate an edit), the
    /// counted totals of a plan in parts.
    pub fn changes_and_deletes(&self) -> (u64, u64) {
        match self {
            PlanToRun::InMemory(plan) => {
                plan.items.iter().fold((0, 0), |(changes, deletes), item| {
                    (
                        changes + u64::from(item.action != SyncAction::Skip),
                        deletes + u64::from(item.action == SyncAction::Delete),
                    )
                })
            }
            PlanToRun::InParts { head, .. } => (head.stats.changes(), head.stats.delete.count),
        }
    }

    /// Whether any item updates metadata (a directory's among them, maybe).
    pub fn updates_metadata(&self) -> bool {
        match self {
            PlanToRun::InMemory(plan) => plan
                .items
                .iter()
                .any(|item| item.action == SyncAction::Metadata),
            PlanToRun::InParts { head, .. } => head.stats.metadata.count > 0,
        }
    }

    pub fn part_count(&self) -> usize {
        match self {
            PlanToRun::InMemory(plan) => plan.items.len().div_ceil(IN_MEMORY_PART),
            PlanToRun::InParts { parts, .. } => parts.count(),
        }
    }

    /// The part that holds item `id`.
    pub fn part_of(&self, id: usize) -> Option<usize> {
        match self {
            PlanToRun::InMemory(plan) => (id < plan.items.len()).then_some(id / IN_MEMORY_PART),
            PlanToRun::InParts { parts, .. } => parts.part_of(id),
        }
    }

    /// Part `n`, read (and checked against the plan's header) if it is not
    /// in memory.
    pub async fn part(&self, n: usize) -> Result<Part, PlanError> {
        match self {
            PlanToRun::InMemory(plan) => Ok(Part::Shared {
                plan: plan.clone(),
                range: in_memory_part(plan, n),
            }),
            PlanToRun::InParts { parts, only, .. } => {
                let first_id = parts.first_id(n);
                let Some(only) = only else {
                    return Ok(Part::Read {
                        first_id,
                        items: parts.read(n).await?,
                    });
                };
                if !only.ranges.overlaps(&parts.ids_of(n)) {
                    return Ok(Part::Read {
                        first_id,
                        items: Vec::new(),
                    });
                }
                let mut items = parts.read(n).await?;
                for (i, item) in items.iter_mut().enumerate() {
                    if !only.holds(first_id + i, item) {
                        item.leave_alone();
                    }
                }
                Ok(Part::Read { first_id, items })
            }
        }
    }

    /// Whether part `n` may hold items that run after every transfer.
    pub fn holds_later_work(&self, n: usize) -> bool {
        match self {
            PlanToRun::InMemory(plan) => plan.items[in_memory_part(plan, n)]
                .iter()
                .any(PlanItem::runs_after_transfers),
            PlanToRun::InParts { parts, only, .. } => {
                parts.holds_later_work(n)
                    && only
                        .as_ref()
                        .is_none_or(|only| only.ranges.overlaps(&parts.ids_of(n)))
            }
        }
    }

    /// Reads the parts `order` names one ahead of their use: the next is
    /// fetched while this one runs.
    pub fn read_ahead(&self, order: Vec<usize>) -> ReadAhead {
        let mut ahead = ReadAhead {
            plan: self.clone(),
            order: order.into_iter(),
            next: None,
        };
        ahead.fetch_next();
        ahead
    }
}

/// Parts read one ahead of their use.
pub struct ReadAhead {
    plan: PlanToRun,
    order: std::vec::IntoIter<usize>,
    next: Option<tokio::task::JoinHandle<Result<Part, PlanError>>>,
}

impl ReadAhead {
    fn fetch_next(&mut self) {
        self.next = self.order.next().map(|n| {
            let plan = self.plan.clone();
            tokio::spawn(async move { plan.part(n).await })
        });
    }

    /// The next part; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Part, String>> {
        let fetching = self.next.take()?;
        self.fetch_next();
        Some(match fetching.await {
            Ok(read) => read.map_err(|e| e.to_string()),
            Err(e) => Err(format!("reading a part of the plan failed: {e}")),
        })
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        if let Some(fetching) = self.next.take() {
            fetching.abort();
        }
    }
}
