//! The reviewed plan as the user left it: the plan's items, each given the
//! facts the review's edits left it with, to run or to save. A plan in
//! parts is written again a part at a time, never held whole.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::SyncPlan;
use crate::sync::execute::PlanToRun;
use crate::sync::plan::parts::{self, PlanPlace, TemporaryPlace};
use crate::sync::plan::{ItemFacts, PlanError};

/// The edits of a review: the items it changed, by index, with their facts.
pub type Edited = HashMap<usize, ItemFacts>;

/// The plan to run: a plan held whole is copied with the edits made (or
/// shared as it is, without any); a plan in parts is written again, edits
/// made, into a temporary directory that lives as long as the run (the
/// second value).
pub async fn to_run(
    head: &SyncPlan,
    items: &PlanToRun,
    edited: &Edited,
) -> Result<(PlanToRun, Option<TemporaryPlace>), PlanError> {
    match items {
        PlanToRun::InMemory(plan) => {
            let plan = if edited.is_empty() && head.options == plan.options {
                plan.clone()
            } else {
                let items = plan
                    .items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let mut item = item.clone();
                        if let Some(facts) = edited.get(&index) {
                            item.take_edit(facts);
                        }
                        item
                    })
                    .collect();
                Arc::new(SyncPlan {
                    items,
                    ..head.head_only()
                })
            };
            Ok((PlanToRun::InMemory(plan), None))
        }
        PlanToRun::InParts { .. } => {
            let temporary = TemporaryPlace::new("review").await?;
            let written = write(head, items, edited, &temporary.place).await?;
            let plan = PlanToRun::in_parts(Arc::new(written), Arc::new(temporary.open().await?));
            Ok((plan, Some(temporary)))
        }
    }
}

/// Saves the plan as edited in parts at `place`; the head of the plan
/// written is returned.
pub async fn write(
    head: &SyncPlan,
    items: &PlanToRun,
    edited: &Edited,
    place: &PlanPlace,
) -> Result<SyncPlan, PlanError> {
    parts::write_edited(head, items, place, |index, item| {
        if let Some(facts) = edited.get(&index) {
            item.take_edit(facts);
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::parts::{PartsWriter, PlanParts};
    use crate::sync::testing::{listing, options, plan_of};
    use crate::tui::action::Action;
    use crate::tui::app::App;
    use crate::tui::model::TreeBuilder;
    use crate::types::SyncAction;
    use crate::uri::Location;

    /// A review of a plan in parts of 4 items, every entry listed, as
    /// `hugesync tui` makes it.
    async fn review_in_parts(at: &std::path::Path) -> App {
        let names: Vec<String> = (0..20).map(|i| format!("f{i:02}")).collect();
        let src: Vec<_> = names.iter().map(|n| (n.as_str(), Some(10), 1)).collect();
        let dst: Vec<_> = names[..10]
            .iter()
            .map(|n| (n.as_str(), Some(10), 1))
            .collect();
        let plan = plan_of(listing(&src), listing(&dst), options());
        let place = PlanPlace::open(&Location::Local(at.into()), &Default::default())
            .await
            .unwrap();
        let mut writer = PartsWriter::new(&place, plan.created_ns)
            .listing_unchanged()
            .with_items_per_part(4);
        let mut tree = TreeBuilder::default();
        for item in &plan.items {
            writer.push(item).await.unwrap();
            tree.push(item);
        }
        writer.finish(&plan.head_only()).await.unwrap();
        let parts = PlanParts::open(place).await.unwrap().unwrap();
        assert_eq!(parts.count(), 5);
        let items = PlanToRun::in_parts(Arc::new(plan.head_only()), Arc::new(parts));
        App::with_tree(plan.head_only(), items, tree.finish())
    }

    #[tokio::test]
    async fn the_details_of_a_plan_in_parts_are_read_when_shown() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = review_in_parts(dir.path()).await;
        app.update(Action::End);
        let index = app.tree.node(app.tree.rows()[app.selected]).item().unwrap();
        assert_eq!(app.item(index), None, "not read yet");
        let wanted = app.wanted_part().unwrap();
        assert_eq!(wanted, 4);
        app.take_part(app.items.part(wanted).await.unwrap());
        assert_eq!(app.wanted_part(), None);
        let item = app.item(index).unwrap();
        assert_eq!(item.path.display(), "f19");
        assert_eq!(item.action, SyncAction::Copy);
        // An unchanged entry is listed too: the first part holds f00.
        app.update(Action::Home);
        assert_eq!(app.wanted_part(), Some(0));
    }

    #[tokio::test]
    async fn a_run_of_a_reviewed_plan_in_parts_takes_its_edits() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = review_in_parts(&dir.path().join("review")).await;
        assert_eq!(app.plan.stats.changes(), 10);
        // Skip the last entry (f19).
        app.update(Action::End);
        app.update(Action::ToggleSkip);
        assert_eq!(app.plan.stats.changes(), 9);
        let edited = app.edited();
        assert_eq!(edited.len(), 1);

        let (plan, _kept) = to_run(&app.plan, &app.items, &edited).await.unwrap();
        let head = plan.head().clone();
        assert_eq!(head.stats.changes(), 9);
        assert_eq!(
            head.unlisted.count, 10,
            "unchanged entries counted, not listed"
        );
        let mut listed = Vec::new();
        for n in 0..plan.part_count() {
            for (_, item) in plan.part(n).await.unwrap().items() {
                listed.push((item.path.display(), item.action, item.edit));
            }
        }
        assert_eq!(listed.len(), 10);
        assert_eq!(
            listed.last().unwrap(),
            &(
                "f19".to_string(),
                SyncAction::Skip,
                Some(crate::sync::plan::UserEdit::Skipped(SyncAction::Copy))
            )
        );

        // Saved as the review's `w` saves it: the same plan.
        let at = Location::Local(dir.path().join("saved"));
        let place = PlanPlace::open(&at, &Default::default()).await.unwrap();
        let saved = write(&app.plan, &app.items, &edited, &place).await.unwrap();
        assert_eq!(saved.stats, head.stats);
    }
}
