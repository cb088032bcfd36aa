//! Whether a saved plan is still current: one pass over its items, a part
//! at a time, against fresh scans of both sides. Items and manifests are
//! both in path order, so the pass is a merge: each manifest is read once,
//! whatever the plan's size, and nothing of either is held beyond a part.

use std::iter::Peekable;

use super::{Edits, PlanError, PlanStats, same_entry};
use crate::cost::Usage;
use crate::sync::execute::PlanToRun;
use crate::sync::scan::Scan;
use crate::types::{Entry, ManifestEntry, RelPath, SyncAction};

/// What the pass over a saved plan found.
#[derive(Debug, Default)]
pub struct PlanCheck {
    /// The totals, counted from the items (a header's are not trusted),
    /// the unchanged entries it counts but does not list among the skips.
    pub stats: PlanStats,
    /// Planned entries that no longer look as the plan saw them.
    pub stale: usize,
    /// The first of them.
    pub first_stale: Option<RelPath>,
    /// The user's edits, by path: what a new plan keeps.
    pub edits: Edits,
    /// What the items will cost (for the estimate the plan's text shows).
    pub usage: Usage,
}

/// Checks every planned item of `plan` against `scan`: its path stays
/// inside the roots, its source and destination still have the kind, size
/// and mtime (and link target) the plan saw. Parts are read and checked
/// against the header as they come.
pub async fn check_current(plan: &PlanToRun, scan: &Scan) -> Result<PlanCheck, PlanError> {
    let head = plan.head();
    let mut source = Cursor::new(scan.source.manifest.iter());
    let mut destination = Cursor::new(scan.destination.manifest.iter());
    let mut check = PlanCheck::default();
    for n in 0..plan.part_count() {
        let part = plan.part(n).await?;
        for (_, item) in part.items() {
            if !item.path.is_contained() {
                return Err(PlanError::Invalid {
                    path: head.source.to_string().into(),
                    reason: format!(
                        "entry path {:?} would leave the sync root",
                        item.path.display()
                    ),
                });
            }
            check.stats.add(item);
            if let Some(model) = &head.cost_model {
                check.usage.add(head, model, &item.facts());
            }
            if let Some(edit) = item.edit {
                check.edits.insert(item.path.clone(), edit);
            }
            // Both cursors move on for every item, so each stays in step.
            let src_now = source.at(&item.path);
            let dst_now = destination.at(&item.path);
            if item.action == SyncAction::Skip {
                continue;
            }
            if !same_entry(item.src.as_ref(), src_now) || !same_entry(item.dst.as_ref(), dst_now) {
                check.stale += 1;
                if check.first_stale.is_none() {
                    check.first_stale = Some(item.path.clone());
                }
            }
        }
    }
    if let PlanToRun::InParts { head, .. } = plan {
        check.stats.skip.count += head.unlisted.count;
        check.stats.skip.bytes += head.unlisted.bytes;
    }
    Ok(check)
}

/// A manifest read forward, to the paths asked for in increasing order.
struct Cursor<I: Iterator<Item = ManifestEntry>> {
    entries: Peekable<I>,
}

impl<I: Iterator<Item = ManifestEntry>> Cursor<I> {
    fn new(entries: I) -> Self {
        Self {
            entries: entries.peekable(),
        }
    }

    /// The entry at `path`, if the manifest has one; entries before it are
    /// passed over for good.
    fn at(&mut self, path: &RelPath) -> Option<&Entry> {
        while self.entries.next_if(|e| e.path < *path).is_some() {}
        self.entries
            .peek()
            .filter(|e| e.path == *path)
            .map(|e| &e.entry)
    }
}
