//! Executing a plan: bounded concurrency, cancellation, events out.
//!
//! The plan is taken a part at a time (`items`: in memory, or read from a
//! plan in parts), in two passes. Forward: each part's directories are
//! created (parents first), then its files, links and metadata are sent
//! with at most `jobs` at once, across parts. Backward, over the parts that
//! hold them: deletions (entries before their directories, and only when
//! every transfer succeeded, as rsync does) and directory metadata (deepest
//! first, after their contents stopped changing). Last, the directories
//! that received entries are fsynced.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::conflict::{self, ConflictPolicy};
use super::plan::{PlanItem, SyncPlan};
use super::report::ExecReport;
use super::transfer::{self, ItemContext, ItemError, Outcome};
use crate::progress::ExecEvent;
use crate::storage::Storage;
use crate::storage::local::WriteMeta;
use crate::storage::same_version;
use crate::types::{EntryKind, RelPath, SyncAction};

#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub jobs: usize,
    pub fsync: bool,
    /// While it holds `true`, no new item starts (running ones finish).
    pub pause: Option<tokio::sync::watch::Receiver<bool>>,
    /// What to do when the destination changed under an item.
    pub conflicts: ConflictPolicy,
    /// Where staged uploads keep resume state (`None`: not resumable).
    pub resume: Option<crate::resume::ResumeStore>,
    /// Why no deletion may run, known before the run (the source could not
    /// be listed completely: what looks missing there may only be unread).
    pub withhold_deletes: Option<String>,
    /// A shard of a sharded run (`apply --shard`): deletions and directory
    /// times are left for `finalize`.
    pub leave_for_finalize: bool,
}

mod items;

pub use items::{Part, PlanToRun, Selection};

struct Runner {
    /// The plan without need of its items: what it syncs and how.
    head: Arc<SyncPlan>,
    plan: PlanToRun,
    ctx: ItemContext,
    report: ExecReport,
    touched_dirs: BTreeSet<Option<RelPath>>,
    pause: Option<tokio::sync::watch::Receiver<bool>>,
    conflicts: ConflictPolicy,
    withhold_deletes: Option<String>,
    leave_for_finalize: bool,
}

/// Runs the plan's items. Per-item failures are reported as events and counted;
/// the rest of the plan goes on. A plan in parts is read a part at a time.
pub async fn execute(
    plan: impl Into<PlanToRun>,
    source: Storage,
    destination: Storage,
    options: ExecOptions,
    events: mpsc::Sender<ExecEvent>,
    cancel: CancellationToken,
) -> ExecReport {
    let started = Instant::now();
    let plan: PlanToRun = plan.into();
    let head = plan.head().clone();
    let ctx = ItemContext {
        source,
        destination,
        archive: head.options.archive,
        fsync: options.fsync,
        block_size: u32::try_from(head.options.block_size)
            .unwrap_or(crate::signature::DEFAULT_BLOCK_SIZE),
        delta_threshold: head.options.delta_threshold,
        remote_signature: head.options.remote_signature,
        unverified_rebuilds: head.options.unverified_rebuilds,
        backup: head.options.backup.clone(),
        requests: Arc::new(Semaphore::new(options.jobs.max(1))),
        request_limit: options.jobs.max(1),
        hashing: Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        )),
        events,
        cancel,
        resume: options.resume.clone(),
    };
    let mut runner = Runner {
        report: ExecReport {
            skipped: head.stats.skip.count,
            ..ExecReport::default()
        },
        head,
        plan,
        ctx,
        touched_dirs: BTreeSet::new(),
        pause: options.pause.clone(),
        conflicts: options.conflicts,
        withhold_deletes: options.withhold_deletes.clone(),
        leave_for_finalize: options.leave_for_finalize,
    };
    runner.run(options.jobs.max(1)).await;
    runner.report.duration = started.elapsed();
    runner.report.retries = match (&runner.ctx.source, &runner.ctx.destination) {
        // Both sides of a run share one policy, and so one count.
        (_, Storage::Object(store)) | (Storage::Object(store), _) => store.retry().retried(),
        _ => 0,
    };
    // Both sides' requests since they were opened: the scan's listing too,
    // as the plan's estimate counts it.
    for side in [&runner.ctx.source, &runner.ctx.destination] {
        if let Some(counts) = side.requests() {
            runner.report.requests.add(counts.snapshot());
        }
    }
    runner.report
}

/// A finished transfer task: its item and how it went.
type Done = (usize, PlanItem, Result<Outcome, ItemError>);

/// What the forward pass does with an item.
enum Turn {
    /// A directory made before anything is written into it.
    MakeDir,
    /// A file, link or metadata update, `jobs` at a time.
    Transfer,
    /// Left for the backward pass (a deletion, a directory's times), or
    /// nothing to do.
    NotNow,
}

impl Turn {
    fn of(item: &PlanItem) -> Turn {
        match item.action {
            SyncAction::Skip | SyncAction::Delete => Turn::NotNow,
            action if item.is_dir() && action.transfers() => Turn::MakeDir,
            _ if item.is_dir() => Turn::NotNow,
            _ => Turn::Transfer,
        }
    }
}

impl Runner {
    /// Two passes over the plan's parts: forward, directories made and
    /// transfers run; then, unless shards leave them to `finalize`,
    /// backward over the parts that hold them, deletions and directory
    /// times. In reverse path order an entry comes before its directory,
    /// so entries go before their directories and a directory's times are
    /// set once nothing below it changes any more — what sorting every
    /// deletion by depth gave, without holding them.
    async fn run(&mut self, jobs: usize) {
        let (changes, deletes) = self.plan.changes_and_deletes();
        self.emit(ExecEvent::Begin {
            items: changes,
            bytes: self.head.stats.bytes_to_send,
        })
        .await;
        if changes == 0 {
            // Nothing to send; the temp files of dead runs still go.
            self.remove_leftovers().await;
            return;
        }
        if let Err(e) = self.ensure_destination_root().await {
            self.emit(ExecEvent::Warning {
                message: e.to_string(),
            })
            .await;
        }
        self.remove_leftovers().await;
        self.run_forward(jobs).await;
        if self.ctx.cancel.is_cancelled() {
            self.report.interrupted = true;
            return;
        }
        if !self.leave_for_finalize && self.report.stopped_on_plan.is_none() {
            self.run_backward(deletes).await;
        }
        self.sync_touched_dirs().await;
        self.report.interrupted = self.ctx.cancel.is_cancelled();
    }

    /// Temp files an interrupted run left in the destination go before new
    /// ones are written beside them.
    async fn remove_leftovers(&self) {
        if self.head.leftovers.is_empty() {
            return;
        }
        let removed = match &self.ctx.destination {
            Storage::Local(dst) => {
                let (dst, leftovers) = (dst.clone(), self.head.leftovers.clone());
                crate::storage::run_blocking(move || {
                    Ok(leftovers
                        .iter()
                        .filter(|rel| dst.remove_leftover(rel).unwrap_or(false))
                        .count())
                })
                .await
                .unwrap_or(0)
            }
            // The store listed only temp files no live run writes; those an
            // upload's resume state names (an SSH server's staged temp
            // file) are kept for it to go on from.
            Storage::Object(store) => {
                let resumable: std::collections::HashSet<String> = match &self.ctx.resume {
                    Some(states) => states
                        .all()
                        .into_iter()
                        .filter_map(|(_, state)| state.ok())
                        .filter(|state| state.target.endpoint == store.id().endpoint)
                        .map(|state| state.upload_id)
                        .collect(),
                    None => Default::default(),
                };
                let keys: Vec<String> = self
                    .head
                    .leftovers
                    .iter()
                    .map(|rel| store.key_of(rel))
                    .filter(|key| !resumable.contains(key))
                    .collect();
                if keys.is_empty() {
                    return;
                }
                match store.delete_keys(&keys).await {
                    Ok(()) => keys.len(),
                    Err(e) => {
                        tracing::warn!("cannot remove temp files of an interrupted run: {e}");
                        0
                    }
                }
            }
        };
        if removed > 0 {
            tracing::info!("removed {removed} temp file(s) left by an interrupted run");
        }
    }

    async fn ensure_destination_root(&self) -> Result<(), crate::storage::StorageError> {
        match &self.ctx.destination {
            Storage::Local(dst) => {
                let dst = dst.clone();
                crate::storage::run_blocking(move || dst.create_dir(&RelPath::from(""))).await
            }
            // A bucket is not created for the user: the listing already proved it.
            Storage::Object(_) => Ok(()),
        }
    }

    async fn run_dir(&mut self, id: usize, item: &PlanItem) -> Result<Outcome, ItemError> {
        self.started(id, item).await;
        match &self.ctx.destination {
            Storage::Local(dst) => {
                let (dst, path) = (dst.clone(), item.path.clone());
                crate::storage::run_blocking(move || dst.create_dir(&path)).await?;
                Ok(Outcome::default())
            }
            // An empty directory kept with -a: its marker object.
            Storage::Object(_) => transfer::run(id, item.clone(), self.ctx.clone()).await,
        }
    }

    /// The forward pass: directories made (parents come first in path
    /// order), then files, links and metadata updates, `jobs` at a time
    /// across parts (the next part is read while this one runs). New work
    /// stops being scheduled on cancellation; running items notice it and
    /// discard their temp files.
    async fn run_forward(&mut self, jobs: usize) {
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut parts = self.plan.read_ahead((0..self.plan.part_count()).collect());
        'parts: while let Some(part) = parts.next().await {
            let part = match part {
                Ok(part) => part,
                Err(unreadable) => {
                    self.stop_on_plan(unreadable).await;
                    break;
                }
            };
            // The part's directories first, parents before children (path
            // order), then its transfers: every file's directory is in this
            // part or an earlier one. Made in one go, as a whole tree's
            // were, a filesystem places them apart (ext4 spreads new
            // directories over its groups); made between the files of
            // their neighbours, creating and renaming files in them took
            // twice as long here.
            for (id, item) in part.items() {
                if !matches!(Turn::of(item), Turn::MakeDir) {
                    continue;
                }
                self.pause_and_reap(&mut running).await;
                if self.stopped() || self.ctx.cancel.is_cancelled() {
                    break 'parts;
                }
                let outcome = self.run_dir(id, item).await;
                self.finish(id, item, outcome).await;
            }
            for (id, item) in part.items() {
                if !matches!(Turn::of(item), Turn::Transfer) {
                    continue;
                }
                self.pause_and_reap(&mut running).await;
                // With every slot busy, wait for one.
                while running.len() >= jobs {
                    tokio::select! {
                        Some(joined) = running.join_next() => self.reap(joined).await,
                        () = self.ctx.cancel.cancelled() => break 'parts,
                    }
                }
                if self.stopped() || self.ctx.cancel.is_cancelled() {
                    break 'parts;
                }
                self.started(id, item).await;
                let item = item.clone();
                let ctx = self.ctx.clone();
                let (plan, policy) = (self.head.clone(), self.conflicts);
                running.spawn(async move {
                    let ran = match transfer::keep_backup(&item, &ctx).await {
                        Ok(()) => transfer::run(id, item.clone(), ctx.clone()).await,
                        Err(kept) => Err(kept),
                    };
                    let outcome = match ran {
                        Err(ItemError::DestinationChanged) if policy == ConflictPolicy::Replan => {
                            conflict::replan_and_run(id, &item, &plan, ctx).await
                        }
                        other => other,
                    };
                    (id, item, outcome)
                });
            }
        }
        drop(parts);
        while let Some(joined) = running.join_next().await {
            self.reap(joined).await;
        }
    }

    /// Before the next item: holds back while paused, then reaps what
    /// finished meanwhile, so events flow in order of completion and an item
    /// that stops the run (a refusal, a conflict under --fail-on-conflict)
    /// is seen before the next starts.
    async fn pause_and_reap(&mut self, running: &mut JoinSet<Done>) {
        self.wait_while_paused().await;
        while let Some(joined) = running.try_join_next() {
            self.reap(joined).await;
        }
    }

    /// Records one finished transfer task.
    async fn reap(&mut self, joined: Result<Done, tokio::task::JoinError>) {
        match joined {
            Ok((id, item, outcome)) => self.finish(id, &item, outcome).await,
            Err(e) => {
                self.report.failed += 1;
                self.emit(ExecEvent::Warning {
                    message: format!("a transfer task failed: {e}"),
                })
                .await;
            }
        }
    }

    /// A part of the plan could not be read (changed or damaged since the
    /// run began): nothing more starts.
    async fn stop_on_plan(&mut self, unreadable: String) {
        self.emit(ExecEvent::Warning {
            message: format!("the run stopped: {unreadable}"),
        })
        .await;
        self.report.stopped_on_plan = Some(unreadable);
    }

    /// Why the plan's deletions may not run, if they may not: withheld
    /// entirely when any transfer failed (a half-applied sync should not
    /// also lose data), or for the reason known before the run.
    fn deletes_withheld_because(&self) -> Option<String> {
        match &self.withhold_deletes {
            Some(reason) => Some(reason.clone()),
            None if self.report.failed > 0 => Some(format!(
                "{} item(s) failed; fix the errors and re-run",
                self.report.failed
            )),
            None => None,
        }
    }

    /// The backward pass: deletions (entries before their directories) and
    /// directory times (deepest first, once their contents stopped
    /// changing), over the parts that hold any, last part first.
    async fn run_backward(&mut self, deletes: u64) {
        let mut deleting = deletes > 0;
        if deleting && let Some(reason) = self.deletes_withheld_because() {
            self.report.deletes_withheld = deletes;
            self.emit(ExecEvent::Warning {
                message: format!("{deletes} deletion(s) withheld: {reason}"),
            })
            .await;
            self.report.deletes_withheld_because = Some(reason);
            deleting = false;
        }
        // Object stores keep no directory attributes; directories implied
        // by object keys have none to copy (created ones keep what creation
        // gave them, not mode 0 and the epoch).
        let dir_times = match &self.ctx.destination {
            Storage::Local(dst) if self.ctx.source.has_directories() => Some(dst.clone()),
            _ => None,
        };
        // Directories' times are set where they were updated (metadata) or,
        // with -a, made; without either, and nothing to delete, the parts
        // are not read again.
        let times_to_set =
            dir_times.is_some() && (self.head.options.archive || self.plan.updates_metadata());
        if !deleting && !times_to_set {
            return;
        }
        let order: Vec<usize> = (0..self.plan.part_count())
            .rev()
            .filter(|n| self.plan.holds_later_work(*n))
            .collect();
        let mut parts = self.plan.read_ahead(order);
        while let Some(part) = parts.next().await {
            let part = match part {
                Ok(part) => part,
                Err(unreadable) => {
                    self.stop_on_plan(unreadable).await;
                    return;
                }
            };
            for (id, item) in part.items().rev() {
                if self.ctx.cancel.is_cancelled() {
                    return;
                }
                match item.action {
                    SyncAction::Delete if deleting && !self.stopped() => {
                        self.started(id, item).await;
                        let outcome = self.delete_one(id, item).await;
                        self.finish(id, item, outcome).await;
                    }
                    SyncAction::Metadata if item.is_dir() => {
                        if let Some(dst) = &dir_times {
                            self.started(id, item).await;
                            let set = set_dir_times(dst, item).await.map(|()| Outcome::default());
                            self.finish(id, item, set.map_err(Into::into)).await;
                        }
                    }
                    action if action.transfers() && item.is_dir() && self.head.options.archive => {
                        if let Some(dst) = &dir_times
                            && let Err(e) = set_dir_times(dst, item).await
                        {
                            self.emit(ExecEvent::Warning {
                                message: e.to_string(),
                            })
                            .await;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Deletes one entry, unless it changed since the plan: something
    /// written since is never deleted unseen.
    async fn delete_one(&self, id: usize, item: &PlanItem) -> Result<Outcome, ItemError> {
        match self.check_and_delete(item).await {
            Err(ItemError::DestinationChanged) if self.conflicts == ConflictPolicy::Replan => {
                self.emit(ExecEvent::Conflict {
                    id,
                    path: item.path.clone(),
                    resolution: "changed at the destination since the plan; kept".into(),
                })
                .await;
                Ok(Outcome {
                    replanned: Some(SyncAction::Skip),
                    ..Outcome::default()
                })
            }
            other => other,
        }
    }

    async fn check_and_delete(&self, item: &PlanItem) -> Result<Outcome, ItemError> {
        let planned = item.dst.as_ref().ok_or(ItemError::Incomplete {
            side: "destination",
        })?;
        match self.ctx.destination.head(&item.path).await? {
            // An object store's directory has no object of its own to find,
            // only perhaps a `dir/` marker, which the delete removes.
            None if planned.kind == EntryKind::Dir
                && matches!(self.ctx.destination, Storage::Object(_)) => {}
            None => return Ok(Outcome::default()),
            Some(now)
                if now.kind != planned.kind
                    || (now.kind != EntryKind::Dir && !now.same_size_and_mtime(planned))
                    || matches!((now.etag(), planned.etag()), (Some(a), Some(b)) if !same_version(a, b)) =>
            {
                return Err(ItemError::DestinationChanged);
            }
            Some(_) => {}
        }
        transfer::keep_backup(item, &self.ctx).await?;
        self.ctx.destination.delete(&item.path, planned).await?;
        Ok(Outcome::default())
    }

    async fn sync_touched_dirs(&mut self) {
        if !self.ctx.fsync || self.touched_dirs.is_empty() {
            return;
        }
        let Storage::Local(dst) = &self.ctx.destination else {
            return;
        };
        let dst = dst.clone();
        let dirs = std::mem::take(&mut self.touched_dirs);
        let result = crate::storage::run_blocking(move || {
            for dir in &dirs {
                dst.sync_dir(dir.as_ref())?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = result {
            self.emit(ExecEvent::Warning {
                message: e.to_string(),
            })
            .await;
        }
    }

    /// Holds back new work while paused (cancellation ends the wait).
    async fn wait_while_paused(&mut self) {
        let Some(pause) = self.pause.as_mut() else {
            return;
        };
        while *pause.borrow_and_update() {
            tokio::select! {
                changed = pause.changed() => if changed.is_err() { return },
                () = self.ctx.cancel.cancelled() => return,
            }
        }
    }

    async fn started(&self, id: usize, item: &PlanItem) {
        self.emit(ExecEvent::Started {
            id,
            path: item.path.clone(),
            action: item.action,
            bytes: item.bytes_to_send,
        })
        .await;
    }

    async fn finish(&mut self, id: usize, item: &PlanItem, outcome: Result<Outcome, ItemError>) {
        let event = match outcome {
            Ok(outcome) => {
                let report = &mut self.report;
                if outcome.replanned.is_some() {
                    report.conflicts += 1;
                }
                let action = outcome.replanned.unwrap_or(item.action);
                match action {
                    SyncAction::Delta => report.delta += 1,
                    SyncAction::Metadata => report.metadata += 1,
                    SyncAction::Delete => report.deleted += 1,
                    SyncAction::Skip => report.skipped += 1,
                    SyncAction::Upload | SyncAction::Download | SyncAction::Copy => {
                        report.copied += 1
                    }
                }
                report.bytes_sent += outcome.bytes_sent;
                report.bytes_saved += outcome.bytes_saved;
                self.touched_dirs.insert(item.path.parent());
                if action == SyncAction::Delete {
                    // A deleted directory has nothing left to flush.
                    self.touched_dirs.remove(&Some(item.path.clone()));
                }
                ExecEvent::Finished {
                    id,
                    path: item.path.clone(),
                    action,
                    bytes_sent: outcome.bytes_sent,
                    bytes_saved: outcome.bytes_saved,
                }
            }
            Err(ItemError::Cancelled) => return,
            Err(ItemError::DestinationChanged) if self.conflicts == ConflictPolicy::Fail => {
                self.report.failed += 1;
                self.report.conflicts += 1;
                self.report.stopped_on_conflict = true;
                self.emit(ExecEvent::Conflict {
                    id,
                    path: item.path.clone(),
                    resolution:
                        "changed at the destination since the plan; stopping (--fail-on-conflict)"
                            .into(),
                })
                .await;
                ExecEvent::Failed {
                    id,
                    path: item.path.clone(),
                    action: item.action,
                    error: ItemError::DestinationChanged.to_string(),
                }
            }
            Err(error) => {
                self.report.failed += 1;
                if let ItemError::Storage(refusal) = &error
                    && refusal.is_denied()
                    && self.report.stopped_on_denial.is_none()
                {
                    self.report.stopped_on_denial = Some(refusal.to_string());
                }
                ExecEvent::Failed {
                    id,
                    path: item.path.clone(),
                    action: item.action,
                    error: error.to_string(),
                }
            }
        };
        self.emit(event).await;
    }

    /// Whether a failure stopped the run: no new item starts after it.
    fn stopped(&self) -> bool {
        self.report.stopped_on_conflict
            || self.report.stopped_on_denial.is_some()
            || self.report.stopped_on_plan.is_some()
    }

    async fn emit(&self, event: ExecEvent) {
        // A consumer that went away (e.g. the UI quit) must not stop the engine.
        let _ = self.ctx.events.send(event).await;
    }
}

/// Gives a directory the source's times and mode.
async fn set_dir_times(
    dst: &crate::storage::LocalStorage,
    item: &PlanItem,
) -> Result<(), crate::storage::StorageError> {
    let Some(src) = item.src.as_ref() else {
        return Ok(());
    };
    let meta = WriteMeta {
        mtime_ns: src.mtime_ns,
        mode: Some(src.mode),
    };
    let (dst, path) = (dst.clone(), item.path.clone());
    crate::storage::run_blocking(move || dst.set_meta(&path, EntryKind::Dir, meta)).await
}

#[cfg(test)]
mod tests;
