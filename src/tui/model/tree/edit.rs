//! Review edits of plan items, entry by entry or a whole subtree, and their undo.

use super::{NodeId, PlanTree, Totals};
use crate::sync::plan::{PlanItem, UserEdit};
use crate::sync::{SyncPlan, transfer_action};
use crate::types::SyncAction;

/// One review edit of an entry or a whole subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Skip every changing entry (or, when all are skipped by the user, unskip them).
    ToggleSkip,
    /// Send deltas whole.
    ForceFull,
    /// Keep entries the plan would delete.
    VetoDelete,
    /// Leave the subtree out: skip everything in it, and record an exclude rule
    /// in the plan so `apply --replan` leaves it out too.
    Exclude,
}

/// What an edit changed, to undo it.
#[derive(Clone, Debug)]
pub struct Undo {
    previous: Vec<(u32, PlanItem)>,
    /// Filter rules the plan had before the edit added one.
    filters_before: Option<usize>,
}

impl PlanTree {
    /// Plan items in the subtree of `id` (its own included).
    fn items_below(&self, id: NodeId) -> Vec<(NodeId, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if let Some(item) = self.nodes[n as usize].item() {
                out.push((n, item));
            }
            stack.extend(self.children(n));
        }
        out
    }

    /// Applies an edit to the entry at `id` or its whole subtree; returns how many
    /// items changed. The plan's stats are refreshed.
    pub fn edit(&mut self, plan: &mut SyncPlan, id: NodeId, edit: Edit) -> usize {
        let targets = self.items_below(id);
        let user_skipped = |item: &PlanItem| matches!(item.edit, Some(UserEdit::Skipped(_)));
        let unskip = edit == Edit::ToggleSkip
            && targets.iter().any(|(_, i)| user_skipped(&plan.items[*i]))
            && targets.iter().all(|(_, i)| {
                user_skipped(&plan.items[*i]) || plan.items[*i].action == SyncAction::Skip
            });
        let whole = transfer_action(&plan.source, &plan.destination);
        let mut undo = Undo {
            previous: Vec::new(),
            filters_before: None,
        };
        if edit == Edit::Exclude && id != 0 {
            let path = self.path_of(id, plan);
            let mut pattern = format!("/{}", String::from_utf8_lossy(&path));
            if self.nodes[id as usize].is_dir() {
                pattern.push('/');
            }
            let rule = crate::filter::FilterRule {
                kind: crate::filter::RuleKind::Exclude,
                pattern,
            };
            if !plan.options.filters.contains(&rule) {
                undo.filters_before = Some(plan.options.filters.len());
                // First matching rule wins: the user's exclusion goes first.
                plan.options.filters.insert(0, rule);
            }
        }
        for (node, index) in targets {
            let before = plan.items[index].clone();
            let mut after = before.clone();
            match edit {
                Edit::ToggleSkip if unskip => {
                    let Some(UserEdit::Skipped(was)) = before.edit else {
                        continue;
                    };
                    after.action = was;
                    after.edit = None;
                    restore_estimates(&mut after, whole);
                }
                Edit::ToggleSkip | Edit::VetoDelete | Edit::Exclude => {
                    if before.action == SyncAction::Skip
                        || (edit == Edit::VetoDelete && before.action != SyncAction::Delete)
                    {
                        continue;
                    }
                    after.edit = Some(UserEdit::Skipped(before.action));
                    after.action = SyncAction::Skip;
                    after.bytes_to_send = 0;
                    after.bytes_saved = 0;
                }
                Edit::ForceFull => {
                    if before.action != SyncAction::Delta {
                        continue;
                    }
                    after.edit = Some(UserEdit::ForcedFull(SyncAction::Delta));
                    after.action = whole;
                    after.bytes_to_send = after.src.as_ref().map_or(0, |e| e.size);
                    after.bytes_saved = 0;
                }
            }
            self.add_to_ancestors(node, &Totals::of_item(&before), -1);
            self.add_to_ancestors(node, &Totals::of_item(&after), 1);
            plan.items[index] = after;
            undo.previous.push((index as u32, before));
        }
        let changed = undo.previous.len();
        if changed > 0 || undo.filters_before.is_some() {
            plan.refresh_stats();
            self.undo.push(undo);
            if self.hide_skipped {
                self.rebuild_rows(plan);
            }
        }
        changed
    }

    /// Reverts the last edit; false when there is none.
    pub fn undo(&mut self, plan: &mut SyncPlan) -> bool {
        let Some(undo) = self.undo.pop() else {
            return false;
        };
        if undo.filters_before.is_some() {
            plan.options.filters.remove(0);
        }
        for (index, before) in undo.previous.into_iter().rev() {
            let node = self.item_node[index as usize];
            let current = Totals::of_item(&plan.items[index as usize]);
            self.add_to_ancestors(node, &current, -1);
            self.add_to_ancestors(node, &Totals::of_item(&before), 1);
            plan.items[index as usize] = before;
        }
        plan.refresh_stats();
        if self.hide_skipped {
            self.rebuild_rows(plan);
        }
        true
    }
}

/// An unskipped item gets its planned estimates back (whole size for transfers;
/// a delta's estimate is re-derived on the next plan).
fn restore_estimates(item: &mut PlanItem, whole: SyncAction) {
    if item.action == whole || item.action == SyncAction::Delta {
        item.bytes_to_send = item.src.as_ref().map_or(0, |e| e.size);
    }
}
