//! The TUI's state and its one update function: actions and engine events in,
//! effects out. Views only read it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::progress::{ExecEvent, Progress};
use crate::sync::execute::{Part, PlanToRun};
use crate::sync::plan::{ItemFacts, PlanItem};
use crate::sync::{ExecReport, SyncPlan};
use crate::types::SyncAction;

use super::action::Action;
use super::model::{Edit, PlanTree};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Review,
    Confirm,
    Executing,
    Done,
}

/// What the event loop must do after an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    StartExecution,
    /// Ask the engine to stop (Ctrl+C while executing).
    Cancel,
    /// Save the edited plan.
    WritePlan,
    /// Stop (`true`) or resume scheduling new items.
    Pause(bool),
    Quit,
}

pub struct App {
    /// The plan without its items: what it syncs, its options (with the
    /// review's exclusions) and its totals, as edited.
    pub plan: SyncPlan,
    /// Where the plan's items are: in memory, or in parts read when the
    /// details pane shows one of them. The tree keeps their facts.
    pub items: PlanToRun,
    /// The part of the plan last read for the details pane.
    part: Option<Part>,
    pub tree: PlanTree,
    pub screen: Screen,
    /// Index into the tree's rows.
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
    /// Rows the tree pane showed last time it was drawn (for paging).
    pub page: usize,
    pub show_help: bool,
    pub hide_skipped: bool,
    pub progress: Progress,
    pub report: Option<ExecReport>,
    pub cancelling: bool,
    /// Ctrl+C was pressed while executing: asking whether to stop.
    pub confirm_cancel: bool,
    /// `p`: no new items start until pressed again.
    pub paused: bool,
    /// The path filter, while typed or active.
    pub filter: Option<String>,
    pub typing: bool,
    /// A one-line message for the status bar.
    pub message: Option<String>,
    /// What the plan will cost, as edited so far.
    pub cost: Option<crate::cost::CostEstimate>,
    /// The time the screen is drawn at, when fixed (snapshot tests); else
    /// the clock's.
    pub frozen_now: Option<std::time::Instant>,
    /// The requests each side (source, destination) has made so far; `None`
    /// for a local disk.
    pub requests: [Option<Arc<crate::storage::requests::RequestCounts>>; 2],
}

impl App {
    /// The review of a plan held whole.
    pub fn new(plan: SyncPlan) -> Self {
        let tree = PlanTree::build(&plan);
        let head = plan.head_only();
        Self::with_tree(head, PlanToRun::InMemory(Arc::new(plan)), tree)
    }

    /// The review of a plan whose items are in `items` and whose tree was
    /// built as they were planned.
    pub fn with_tree(plan: SyncPlan, items: PlanToRun, tree: PlanTree) -> Self {
        let cost = crate::cost::estimate_of_facts(&plan, tree.all_facts().iter());
        Self {
            cost,
            plan,
            items,
            part: None,
            tree,
            screen: Screen::Review,
            selected: 0,
            offset: 0,
            page: 20,
            show_help: false,
            hide_skipped: false,
            progress: Progress::default(),
            report: None,
            cancelling: false,
            confirm_cancel: false,
            paused: false,
            filter: None,
            typing: false,
            message: None,
            frozen_now: None,
            requests: [None, None],
        }
    }

    /// Now, as the screen shows it.
    pub fn now(&self) -> std::time::Instant {
        self.frozen_now.unwrap_or_else(std::time::Instant::now)
    }

    pub fn update(&mut self, action: Action) -> Effect {
        // `n` is "no" everywhere but the tree, where it walks the changes.
        let action = match action {
            Action::NextChange if self.screen != Screen::Review || self.show_help => Action::Back,
            other => other,
        };
        if self.screen == Screen::Executing {
            return self.executing(action);
        }
        if action == Action::Interrupt {
            return Effect::Quit;
        }
        if self.show_help {
            if matches!(action, Action::ToggleHelp | Action::Back | Action::Quit) {
                self.show_help = false;
            }
            return Effect::None;
        }
        match self.screen {
            Screen::Review => self.review(action),
            Screen::Confirm => match action {
                Action::Confirm => {
                    self.screen = Screen::Executing;
                    Effect::StartExecution
                }
                Action::Back | Action::Quit => {
                    self.screen = Screen::Review;
                    Effect::None
                }
                _ => Effect::None,
            },
            Screen::Executing => Effect::None,
            Screen::Done => match action {
                Action::Quit | Action::Back => Effect::Quit,
                _ => Effect::None,
            },
        }
    }

    /// While the engine runs: Ctrl+C asks, `y` stops, `n` carries on; a second
    /// Ctrl+C stops without asking again.
    fn executing(&mut self, action: Action) -> Effect {
        match (action, self.confirm_cancel) {
            (Action::Interrupt, false) if !self.cancelling => {
                self.confirm_cancel = true;
                Effect::None
            }
            (Action::Interrupt | Action::Confirm, true) => {
                self.confirm_cancel = false;
                self.cancelling = true;
                Effect::Cancel
            }
            (Action::Back, true) => {
                self.confirm_cancel = false;
                Effect::None
            }
            (Action::TogglePause, false) if !self.cancelling => {
                self.paused = !self.paused;
                Effect::Pause(self.paused)
            }
            _ => Effect::None,
        }
    }

    fn review(&mut self, action: Action) -> Effect {
        let rows = self.tree.rows().len();
        let last = rows.saturating_sub(1);
        self.message = None;
        if self.typing {
            match action {
                Action::Input(c) => {
                    let query = self.filter.get_or_insert_with(String::new);
                    query.push(c);
                    let query = query.clone();
                    self.tree.set_filter(&query);
                    self.selected = 0;
                }
                Action::Erase => {
                    let query = self.filter.get_or_insert_with(String::new);
                    query.pop();
                    let query = query.clone();
                    self.tree.set_filter(&query);
                    self.selected = 0;
                }
                Action::Accept => self.typing = false,
                Action::Back => {
                    self.typing = false;
                    self.filter = None;
                    self.tree.set_filter("");
                }
                Action::Up => self.selected = self.selected.saturating_sub(1),
                Action::Down => self.selected = (self.selected + 1).min(last),
                _ => {}
            }
            self.selected = self.selected.min(self.tree.rows().len().saturating_sub(1));
            return Effect::None;
        }
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(self.page.max(1)),
            Action::PageDown => self.selected = (self.selected + self.page.max(1)).min(last),
            Action::Home => self.selected = 0,
            Action::End => self.selected = last,
            Action::Toggle => self.tree.toggle(self.selected),
            Action::Expand | Action::Collapse => {
                if let Some(&id) = self.tree.rows().get(self.selected) {
                    let node = self.tree.node(id);
                    if node.is_dir() && node.expanded == (action == Action::Collapse) {
                        self.tree.toggle(self.selected);
                    }
                }
            }
            Action::ToggleSkip => self.edit(Edit::ToggleSkip),
            Action::ForceFull => self.edit(Edit::ForceFull),
            Action::VetoDelete => self.edit(Edit::VetoDelete),
            Action::Exclude => self.edit(Edit::Exclude),
            Action::Filter => {
                self.typing = true;
                self.filter = Some(String::new());
            }
            Action::Back if self.filter.is_some() => {
                self.filter = None;
                self.tree.set_filter("");
            }
            Action::WritePlan => return Effect::WritePlan,
            Action::CycleSort => {
                let next = self.tree.sort().next();
                self.tree.set_sort(next);
            }
            Action::Undo => {
                self.tree.undo(&mut self.plan);
            }
            Action::ToggleHideSkipped => {
                self.hide_skipped = !self.hide_skipped;
                self.tree.set_hide_skipped(self.hide_skipped);
            }
            Action::ToggleHelp => self.show_help = true,
            Action::NextChange => self.jump_to_change(true),
            Action::PrevChange => self.jump_to_change(false),
            Action::Approve if self.plan.stats.changes() > 0 => self.screen = Screen::Confirm,
            Action::Quit => return Effect::Quit,
            _ => {}
        }
        self.selected = self.selected.min(self.tree.rows().len().saturating_sub(1));
        Effect::None
    }

    /// Selects the next (or previous) row that changes something: a file
    /// whose action is not skip, or a closed directory with changes below.
    fn jump_to_change(&mut self, forward: bool) {
        let rows = self.tree.rows().to_vec();
        let changes = |&id: &crate::tui::model::NodeId| {
            let node = self.tree.node(id);
            if node.is_dir() {
                !node.expanded && self.tree.totals_of(id).changes() > 0
            } else {
                node.item()
                    .is_some_and(|i| self.tree.facts(i).action != SyncAction::Skip)
            }
        };
        let found = if forward {
            rows.iter()
                .enumerate()
                .skip(self.selected + 1)
                .find(|(_, id)| changes(id))
        } else {
            rows.iter()
                .enumerate()
                .take(self.selected)
                .rev()
                .find(|(_, id)| changes(id))
        };
        match found {
            Some((row, _)) => self.selected = row,
            None => {
                self.message = Some(
                    if forward {
                        "no change below"
                    } else {
                        "no change above"
                    }
                    .into(),
                )
            }
        }
    }

    fn edit(&mut self, edit: Edit) {
        if let Some(&id) = self.tree.rows().get(self.selected) {
            self.tree.edit(&mut self.plan, id, edit);
            self.cost = crate::cost::estimate_of_facts(&self.plan, self.tree.all_facts().iter());
        }
    }

    /// Plan item `index` as edited, when it is at hand: a plan in parts
    /// has only the part last read (see [`App::wanted_part`]).
    pub fn item(&self, index: usize) -> Option<PlanItem> {
        let mut item = match &self.items {
            PlanToRun::InMemory(plan) => plan.items.get(index)?.clone(),
            PlanToRun::InParts { .. } => self.part.as_ref()?.get(index)?.clone(),
        };
        item.take_edit(self.tree.facts(index));
        Some(item)
    }

    /// The part of the plan the selected entry's details need read, when
    /// it is not at hand.
    pub fn wanted_part(&self) -> Option<usize> {
        let index = self
            .tree
            .rows()
            .get(self.selected)
            .and_then(|&id| self.tree.node(id).item())?;
        match &self.items {
            PlanToRun::InMemory(_) => None,
            PlanToRun::InParts { .. }
                if self.part.as_ref().is_some_and(|p| p.get(index).is_some()) =>
            {
                None
            }
            PlanToRun::InParts { .. } => self.items.part_of(index),
        }
    }

    /// Keeps a part read for the details pane (in place of the last).
    pub fn take_part(&mut self, part: Part) {
        self.part = Some(part);
    }

    /// The items the review changed, with their facts as edited now: what
    /// a run or a saved plan takes in place of the plan's.
    pub fn edited(&self) -> HashMap<usize, ItemFacts> {
        self.tree
            .edited_items()
            .into_iter()
            .map(|index| (index, *self.tree.facts(index)))
            .collect()
    }

    /// Folds an engine event into the progress shown.
    pub fn on_event(&mut self, event: &ExecEvent) {
        match event {
            ExecEvent::Failed { path, error, .. } => tracing::error!("{path}: {error}"),
            ExecEvent::Warning { message } => tracing::warn!("{message}"),
            ExecEvent::Conflict {
                path, resolution, ..
            } => tracing::warn!("conflict: {path}: {resolution}"),
            _ => {}
        }
        let now = self.now();
        self.progress.apply_at(event, now);
    }

    pub fn on_finished(&mut self, report: ExecReport) {
        self.report = Some(report);
        self.screen = Screen::Done;
    }

    /// Keeps the selection on screen for a pane of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        self.page = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + self.page {
            self.offset = self.selected + 1 - self.page;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncOptions;
    use crate::sync::testing::{listing, options, plan_of};

    fn app(changes: bool) -> App {
        let files = |names: &[&str]| {
            let entries: Vec<_> = names.iter().map(|n| (*n, Some(1), 1)).collect();
            listing(&entries)
        };
        let dst = files(if changes { &["a"] } else { &["a", "b"] });
        let options = SyncOptions {
            delete: false,
            delta_threshold: 1 << 20,
            block_size: 1 << 20,
            ..options()
        };
        App::new(plan_of(files(&["a", "b"]), dst, options))
    }

    #[test]
    fn approve_confirm_execute_done_quit() {
        let mut app = app(true);
        assert_eq!(app.update(Action::Approve), Effect::None);
        assert_eq!(app.screen, Screen::Confirm);
        assert_eq!(app.update(Action::Back), Effect::None);
        assert_eq!(app.screen, Screen::Review);
        app.update(Action::Approve);
        assert_eq!(app.update(Action::Confirm), Effect::StartExecution);
        assert_eq!(
            app.update(Action::Quit),
            Effect::None,
            "q does not abandon a running sync"
        );
        assert_eq!(
            app.update(Action::Interrupt),
            Effect::None,
            "Ctrl+C asks first"
        );
        assert!(app.confirm_cancel);
        assert_eq!(app.update(Action::Back), Effect::None);
        assert!(!app.confirm_cancel);
        app.update(Action::Interrupt);
        assert_eq!(app.update(Action::Confirm), Effect::Cancel);
        assert_eq!(
            app.update(Action::Interrupt),
            Effect::None,
            "already stopping"
        );
        app.on_finished(ExecReport::default());
        assert_eq!(app.update(Action::Quit), Effect::Quit);
    }

    #[test]
    fn nothing_to_approve_and_navigation_bounds() {
        let mut app = app(false);
        app.update(Action::Approve);
        assert_eq!(
            app.screen,
            Screen::Review,
            "an empty plan has nothing to approve"
        );
        app.update(Action::End);
        assert_eq!(app.selected, 1);
        app.update(Action::Down);
        assert_eq!(app.selected, 1);
        app.update(Action::PageUp);
        assert_eq!(app.selected, 0);
        app.update(Action::ToggleHelp);
        assert!(app.show_help);
        assert_eq!(
            app.update(Action::Quit),
            Effect::None,
            "q closes help first"
        );
        assert!(!app.show_help);
        assert_eq!(app.update(Action::Interrupt), Effect::Quit);
    }

    #[test]
    fn pause_while_executing() {
        let mut app = app(true);
        app.update(Action::Approve);
        app.update(Action::Confirm);
        assert_eq!(app.update(Action::TogglePause), Effect::Pause(true));
        assert!(app.paused);
        assert_eq!(app.update(Action::TogglePause), Effect::Pause(false));
    }

    #[test]
    fn sort_cycles() {
        let mut app = app(true);
        app.update(Action::CycleSort);
        assert_eq!(app.tree.sort(), crate::tui::model::SortKey::Size);
        app.update(Action::CycleSort);
        app.update(Action::CycleSort);
        assert_eq!(app.tree.sort(), crate::tui::model::SortKey::Path);
    }

    #[test]
    fn typing_a_filter() {
        let mut app = app(true);
        app.update(Action::Filter);
        assert!(app.typing);
        app.update(Action::Input('b'));
        assert_eq!(app.tree.rows().len(), 1);
        app.update(Action::Erase);
        assert_eq!(app.tree.rows().len(), 2);
        app.update(Action::Input('a'));
        app.update(Action::Accept);
        assert!(!app.typing);
        assert_eq!(app.tree.rows().len(), 1);
        assert_eq!(app.update(Action::WritePlan), Effect::WritePlan);
        app.update(Action::Back);
        assert_eq!(app.tree.rows().len(), 2, "Esc clears the filter");
    }

    #[test]
    fn edits_go_through_the_tree() {
        let mut app = app(true);
        app.update(Action::Down);
        app.update(Action::ToggleSkip);
        assert_eq!(app.plan.stats.changes(), 0);
        app.update(Action::Undo);
        assert_eq!(app.plan.stats.changes(), 1);
        app.update(Action::ToggleHideSkipped);
        assert_eq!(app.tree.rows().len(), 1);
        assert_eq!(app.selected, 0, "selection stays within the rows");
    }
}
