//! Review edits of plan items, entry by entry or a whole subtree, and their undo.

use super::{NodeId, PlanTree, Totals};
use crate::sync::plan::{ItemFacts, UserEdit};
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
    previous: Vec<(u32, ItemFacts)>,
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
    /// items changed. The plan's stats follow.
    pub fn edit(&mut self, plan: &mut SyncPlan, id: NodeId, edit: Edit) -> usize {
        let targets = self.items_below(id);
        let user_skipped = |item: &ItemFacts| matches!(item.edit, Some(UserEdit::Skipped(_)));
        let unskip = edit == Edit::ToggleSkip
            && targets.iter().any(|(_, i)| user_skipped(&self.facts[*i]))
            && targets.iter().all(|(_, i)| {
                user_skipped(&self.facts[*i]) || self.facts[*i].action == SyncAction::Skip
            });
        let whole = transfer_action(&plan.source, &plan.destination);
        let mut undo = Undo {
            previous: Vec::new(),
            filters_before: None,
        };
        if edit == Edit::Exclude && id != 0 {
            let path = self.path_of(id);
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
        for (_, index) in targets {
            let before = self.facts[index];
            let mut after = before;
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
                    // A delta's entry is the source's.
                    after.bytes_to_send = after.size;
                    after.bytes_saved = 0;
                }
            }
            self.replace_facts(plan, index, after);
            undo.previous.push((index as u32, before));
        }
        let changed = undo.previous.len();
        if changed > 0 || undo.filters_before.is_some() {
            self.undo.push(undo);
            if self.hide_skipped {
                self.rebuild_rows();
            }
        }
        changed
    }

    /// Puts `facts` in place of item `index`'s, in the totals of its
    /// directories and the plan's.
    fn replace_facts(&mut self, plan: &mut SyncPlan, index: usize, facts: ItemFacts) {
        let node = self.item_node[index];
        let before = self.facts[index];
        self.add_to_ancestors(node, &Totals::of_item(&before), -1);
        self.add_to_ancestors(node, &Totals::of_item(&facts), 1);
        plan.stats.count(&before, -1);
        plan.stats.count(&facts, 1);
        self.facts[index] = facts;
    }

    /// The items an edit still in effect changed (an undone one's are not).
    pub fn edited_items(&self) -> std::collections::BTreeSet<usize> {
        self.undo
            .iter()
            .flat_map(|undo| undo.previous.iter().map(|(index, _)| *index as usize))
            .collect()
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
            self.replace_facts(plan, index as usize, before);
        }
        if self.hide_skipped {
            self.rebuild_rows();
        }
        true
    }
}

/// An unskipped item gets its planned estimates back (whole size for transfers;
/// a delta's estimate is re-derived on the next plan).
fn restore_estimates(item: &mut ItemFacts, whole: SyncAction) {
    if item.action == whole || item.action == SyncAction::Delta {
        // What is sent is the source's entry.
        item.bytes_to_send = item.size;
    }
}
