//! Concurrent change at the destination: an object replaced, created or
//! removed by someone else between the plan and our write of it.
//!
//! Writes to object stores are conditional (`storage::Expect`: `If-Match`
//! the version the plan saw, `If-None-Match: *` where it saw none, plus a HEAD
//! just before committing a staged object), and deletes look first; a
//! change surfaces as [`ItemError::DestinationChanged`]. By default that path
//! is planned once more from fresh looks at both sides and carried out as the
//! new plan says (which may be nothing: someone else wrote the same version);
//! with `--fail-on-conflict` the run stops and reports it instead.

use super::diff;
use super::plan::{PlanItem, SyncPlan, UserEdit, diff_options};
use super::transfer::{self, ItemContext, ItemError, Outcome};
use crate::progress::ExecEvent;
use crate::storage::Storage;
use crate::types::{Entry, Manifest, ManifestEntry, SyncAction};

/// What a run does when the destination changed under an item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Plan the path again once and carry out the new plan.
    #[default]
    Replan,
    /// Stop scheduling work and report (`--fail-on-conflict`).
    Fail,
}

/// Plans `item`'s path again from what both sides hold now, with the plan's
/// options. A user's "force full copy" edit carries over.
pub async fn replan(
    item: &PlanItem,
    plan: &SyncPlan,
    source: &Storage,
    destination: &Storage,
) -> Result<PlanItem, ItemError> {
    let (src, dst) = tokio::try_join!(source.head(&item.path), destination.head(&item.path))?;
    let manifest = |entry: Option<Entry>| {
        let entries = entry
            .into_iter()
            .map(|entry| ManifestEntry {
                path: item.path.clone(),
                entry,
            })
            .collect();
        Manifest::new(entries, Vec::new(), true)
    };
    let options = diff_options(&plan.source, &plan.destination, &plan.options);
    let fresh = diff::diff(&manifest(src), &manifest(dst), &options)
        .pop()
        .filter(|fresh| fresh.path == item.path);
    let Some(mut fresh) = fresh else {
        // Neither side has it any more, or only a directory an object store
        // does not keep: nothing left to do.
        return Ok(PlanItem::new(
            item.path.clone(),
            SyncAction::Skip,
            diff::Reason::Unchanged,
        ));
    };
    if matches!(item.edit, Some(UserEdit::ForcedFull(_))) && fresh.action == SyncAction::Delta {
        fresh.action = options.transfer;
        fresh.edit = item.edit;
    }
    Ok(fresh)
}

/// After a conflict: plans the path again from both sides as they are now, says
/// so, and carries out the new plan (a second conflict is an error).
pub(super) async fn replan_and_run(
    id: usize,
    item: &PlanItem,
    plan: &SyncPlan,
    ctx: ItemContext,
) -> Result<Outcome, ItemError> {
    let fresh = replan(item, plan, &ctx.source, &ctx.destination).await?;
    let action = fresh.action;
    let resolution = match action {
        SyncAction::Skip => "changed at the destination since the plan; now up to date".into(),
        _ => format!(
            "changed at the destination since the plan; planned again: {action} ({})",
            fresh.reason.describe()
        ),
    };
    let _ = ctx
        .events
        .send(ExecEvent::Conflict {
            id,
            path: item.path.clone(),
            resolution,
        })
        .await;
    let outcome = match action {
        SyncAction::Skip => Outcome::default(),
        _ => {
            transfer::keep_backup(&fresh, &ctx).await?;
            transfer::run(id, fresh, ctx).await?
        }
    };
    Ok(Outcome {
        replanned: Some(action),
        ..outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;
    use crate::sync::SyncOptions;
    use crate::types::RelPath;
    use crate::uri::Location;

    fn options() -> SyncOptions {
        SyncOptions {
            delete: false,
            max_delete: None,
            list_requests: None,
            memory_budget: None,
            archive: false,
            checksum: false,
            delta_threshold: 1 << 40,
            block_size: 1 << 20,
            allow_empty_source: false,
            filters: Vec::new(),
            remote_signature: Default::default(),
            unverified_rebuilds: false,
            selection: Default::default(),
            files_from: None,
            backup: None,
            storage_class: None,
            sidecars: Default::default(),
        }
    }

    #[tokio::test]
    async fn replanning_looks_at_both_sides_again() {
        let src_dir = tempfile::tempdir().unwrap();
        let dst_dir = tempfile::tempdir().unwrap();
        std::fs::write(src_dir.path().join("a.txt"), b"new").unwrap();
        let source = Storage::Local(LocalStorage::new(src_dir.path().to_path_buf()));
        let destination = Storage::Local(LocalStorage::new(dst_dir.path().to_path_buf()));
        let plan = crate::sync::build_plan(
            Location::Local(src_dir.path().to_path_buf()),
            Location::Local(dst_dir.path().to_path_buf()),
            &crate::sync::Scan::default(),
            options(),
        );
        let stale = PlanItem::new(RelPath::from("a.txt"), SyncAction::Copy, diff::Reason::New);

        // Someone else wrote the same bytes and time meanwhile: nothing to do.
        std::fs::copy(src_dir.path().join("a.txt"), dst_dir.path().join("a.txt")).unwrap();
        let mtime = filetime::FileTime::from_last_modification_time(
            &std::fs::metadata(src_dir.path().join("a.txt")).unwrap(),
        );
        filetime::set_file_mtime(dst_dir.path().join("a.txt"), mtime).unwrap();
        let fresh = replan(&stale, &plan, &source, &destination).await.unwrap();
        assert_eq!(fresh.action, SyncAction::Skip);

        // Someone else wrote other bytes: copy over them, knowing they are there.
        std::fs::write(dst_dir.path().join("a.txt"), b"theirs!").unwrap();
        let fresh = replan(&stale, &plan, &source, &destination).await.unwrap();
        assert_eq!(fresh.action, SyncAction::Copy);
        assert!(fresh.dst.is_some());
    }
}
