//! Executing a plan: bounded concurrency, cancellation, events out.
//!
//! Phases, in order: create directories (parents first); transfer files, links and
//! metadata with at most `jobs` at once; delete (entries before their directories,
//! and only when every transfer succeeded, as rsync does); set directory metadata
//! (deepest first, after their contents stopped changing); fsync the directories
//! that received entries.

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

struct Runner {
    plan: Arc<SyncPlan>,
    ctx: ItemContext,
    report: ExecReport,
    touched_dirs: BTreeSet<Option<RelPath>>,
    pause: Option<tokio::sync::watch::Receiver<bool>>,
    conflicts: ConflictPolicy,
    withhold_deletes: Option<String>,
    leave_for_finalize: bool,
}

/// Runs the plan's items. Per-item failures are reported as events and counted;
/// the rest of the plan goes on.
pub async fn execute(
    plan: Arc<SyncPlan>,
    source: Storage,
    destination: Storage,
    options: ExecOptions,
    events: mpsc::Sender<ExecEvent>,
    cancel: CancellationToken,
) -> ExecReport {
    let started = Instant::now();
    let ctx = ItemContext {
        source,
        destination,
        archive: plan.options.archive,
        fsync: options.fsync,
        block_size: u32::try_from(plan.options.block_size)
            .unwrap_or(crate::signature::DEFAULT_BLOCK_SIZE),
        delta_threshold: plan.options.delta_threshold,
        remote_signature: plan.options.remote_signature,
        unverified_rebuilds: plan.options.unverified_rebuilds,
        backup: plan.options.backup.clone(),
        requests: Arc::new(Semaphore::new(options.jobs.max(1))),
        request_limit: options.jobs.max(1),
        events,
        cancel,
        resume: options.resume.clone(),
    };
    let mut runner = Runner {
        report: ExecReport {
            skipped: plan.stats.skip.count,
            ..ExecReport::default()
        },
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
    runner.report
}

impl Runner {
    async fn run(&mut self, jobs: usize) {
        let plan = self.plan.clone();
        let work: Vec<usize> = (0..plan.items.len())
            .filter(|&i| plan.items[i].action != SyncAction::Skip)
            .collect();
        self.emit(ExecEvent::Begin {
            items: work.len() as u64,
            bytes: plan.stats.bytes_to_send,
        })
        .await;
        if work.is_empty() {
            // Nothing to send; the temp files of dead runs still go.
            self.remove_leftovers().await;
            return;
        }
        let is_dir = |i: &usize| {
            plan.items[*i]
                .src
                .as_ref()
                .or(plan.items[*i].dst.as_ref())
                .map(|e| e.kind)
                == Some(EntryKind::Dir)
        };
        let (mkdirs, rest): (Vec<usize>, Vec<usize>) = work
            .iter()
            .partition(|i| is_dir(i) && plan.items[**i].action.transfers());
        let (dir_meta, rest): (Vec<usize>, Vec<usize>) = rest
            .into_iter()
            .partition(|i| is_dir(i) && plan.items[*i].action == SyncAction::Metadata);
        let (deletes, transfers): (Vec<usize>, Vec<usize>) = rest
            .into_iter()
            .partition(|i| plan.items[*i].action == SyncAction::Delete);

        if let Err(e) = self.ensure_destination_root().await {
            self.emit(ExecEvent::Warning {
                message: e.to_string(),
            })
            .await;
        }
        self.remove_leftovers().await;
        for &id in &mkdirs {
            if self.ctx.cancel.is_cancelled() || self.stopped() {
                break;
            }
            let outcome = self.run_dir(id).await;
            self.finish(id, outcome).await;
        }
        self.run_transfers(&transfers, jobs).await;
        if self.ctx.cancel.is_cancelled() {
            self.report.interrupted = true;
            return;
        }
        if !self.leave_for_finalize {
            self.run_deletes(deletes).await;
            self.run_dir_metadata(&mkdirs, &dir_meta).await;
        }
        self.sync_touched_dirs().await;
        self.report.interrupted = self.ctx.cancel.is_cancelled();
    }

    /// Temp files an interrupted run left in the destination go before new
    /// ones are written beside them.
    async fn remove_leftovers(&self) {
        if self.plan.leftovers.is_empty() {
            return;
        }
        let removed = match &self.ctx.destination {
            Storage::Local(dst) => {
                let (dst, leftovers) = (dst.clone(), self.plan.leftovers.clone());
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
                    .plan
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

    async fn run_dir(&mut self, id: usize) -> Result<Outcome, ItemError> {
        self.started(id).await;
        match &self.ctx.destination {
            Storage::Local(dst) => {
                let (dst, path) = (dst.clone(), self.plan.items[id].path.clone());
                crate::storage::run_blocking(move || dst.create_dir(&path)).await?;
                Ok(Outcome::default())
            }
            // An empty directory kept with -a: its marker object.
            Storage::Object(_) => {
                transfer::run(id, self.plan.items[id].clone(), self.ctx.clone()).await
            }
        }
    }

    /// Files, links and metadata updates, `jobs` at a time. New work stops being
    /// scheduled on cancellation; running items notice it and discard their temp
    /// files.
    async fn run_transfers(&mut self, ids: &[usize], jobs: usize) {
        type Done = (usize, Result<Outcome, ItemError>);
        let mut running: JoinSet<Done> = JoinSet::new();
        'schedule: for &id in ids {
            self.wait_while_paused().await;
            // Reap what finished meanwhile so events flow in order of
            // completion; with every slot busy, wait for one. An item that
            // stops the run (a refusal, a conflict under --fail-on-conflict)
            // is seen before the next starts.
            while let Some(joined) = running.try_join_next() {
                self.reap(joined).await;
            }
            while running.len() >= jobs {
                tokio::select! {
                    Some(joined) = running.join_next() => self.reap(joined).await,
                    () = self.ctx.cancel.cancelled() => break 'schedule,
                }
            }
            if self.stopped() || self.ctx.cancel.is_cancelled() {
                break;
            }
            self.started(id).await;
            let item = self.plan.items[id].clone();
            let ctx = self.ctx.clone();
            let (plan, policy) = (self.plan.clone(), self.conflicts);
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
                (id, outcome)
            });
        }
        while let Some(joined) = running.join_next().await {
            self.reap(joined).await;
        }
    }

    /// Records one finished transfer task.
    async fn reap(
        &mut self,
        joined: Result<(usize, Result<Outcome, ItemError>), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, outcome)) => self.finish(id, outcome).await,
            Err(e) => {
                self.report.failed += 1;
                self.emit(ExecEvent::Warning {
                    message: format!("a transfer task failed: {e}"),
                })
                .await;
            }
        }
    }

    /// Deletes entries before their directories (deepest first). Withheld entirely
    /// when any transfer failed: a half-applied sync should not also lose data.
    async fn run_deletes(&mut self, mut ids: Vec<usize>) {
        if ids.is_empty() {
            return;
        }
        let withheld_because = match &self.withhold_deletes {
            Some(reason) => Some(reason.clone()),
            None if self.report.failed > 0 => Some(format!(
                "{} item(s) failed; fix the errors and re-run",
                self.report.failed
            )),
            None => None,
        };
        if let Some(reason) = withheld_because {
            self.report.deletes_withheld = ids.len() as u64;
            self.emit(ExecEvent::Warning {
                message: format!("{} deletion(s) withheld: {reason}", ids.len()),
            })
            .await;
            self.report.deletes_withheld_because = Some(reason);
            return;
        }
        let plan = self.plan.clone();
        ids.sort_by(|a, b| {
            let (a, b) = (&plan.items[*a].path, &plan.items[*b].path);
            b.depth().cmp(&a.depth()).then_with(|| a.cmp(b))
        });
        for id in ids {
            if self.ctx.cancel.is_cancelled() || self.stopped() {
                return;
            }
            self.started(id).await;
            let outcome = match self.delete_one(&plan.items[id]).await {
                // Something written since the plan is never deleted unseen.
                Err(ItemError::DestinationChanged) if self.conflicts == ConflictPolicy::Replan => {
                    self.emit(ExecEvent::Conflict {
                        id,
                        path: plan.items[id].path.clone(),
                        resolution: "changed at the destination since the plan; kept".into(),
                    })
                    .await;
                    Ok(Outcome {
                        replanned: Some(SyncAction::Skip),
                        ..Outcome::default()
                    })
                }
                other => other,
            };
            self.finish(id, outcome).await;
        }
    }

    async fn delete_one(&self, item: &PlanItem) -> Result<Outcome, ItemError> {
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
        self.ctx
            .destination
            .delete(&item.path, planned.kind)
            .await?;
        Ok(Outcome::default())
    }

    /// Directory times are set last, deepest first: writing into a directory
    /// changes its mtime.
    async fn run_dir_metadata(&mut self, created: &[usize], updated: &[usize]) {
        let plan = self.plan.clone();
        let mut ids: Vec<usize> = updated.to_vec();
        if plan.options.archive {
            ids.extend_from_slice(created);
        }
        ids.sort_by(|a, b| {
            plan.items[*b]
                .path
                .depth()
                .cmp(&plan.items[*a].path.depth())
        });
        let Storage::Local(dst) = self.ctx.destination.clone() else {
            return; // object stores keep no directory attributes
        };
        if !self.ctx.source.has_directories() {
            // Directories implied by object keys have no attributes to
            // copy: created ones keep what creation gave them (not mode 0
            // and the epoch).
            return;
        }
        for id in ids {
            let item = &plan.items[id];
            let Some(src) = item.src.as_ref() else {
                continue;
            };
            let meta = WriteMeta {
                mtime_ns: src.mtime_ns,
                mode: Some(src.mode),
            };
            let is_update = item.action == SyncAction::Metadata;
            if is_update {
                self.started(id).await;
            }
            let (dst, path) = (dst.clone(), item.path.clone());
            let result =
                crate::storage::run_blocking(move || dst.set_meta(&path, EntryKind::Dir, meta))
                    .await;
            match (is_update, result) {
                (true, result) => {
                    self.finish(id, result.map(|()| Outcome::default()).map_err(Into::into))
                        .await
                }
                (false, Err(e)) => {
                    self.emit(ExecEvent::Warning {
                        message: e.to_string(),
                    })
                    .await
                }
                (false, Ok(())) => {}
            }
        }
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

    async fn started(&self, id: usize) {
        let item = &self.plan.items[id];
        self.emit(ExecEvent::Started {
            id,
            path: item.path.clone(),
            action: item.action,
            bytes: item.bytes_to_send,
        })
        .await;
    }

    async fn finish(&mut self, id: usize, outcome: Result<Outcome, ItemError>) {
        let item = &self.plan.items[id];
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
        self.report.stopped_on_conflict || self.report.stopped_on_denial.is_some()
    }

    async fn emit(&self, event: ExecEvent) {
        // A consumer that went away (e.g. the UI quit) must not stop the engine.
        let _ = self.ctx.events.send(event).await;
    }
}
