//! The engine's one entry: settings → options → both sides opened → scan →
//! plan (diff, restored times confirmed, deltas estimated, rebuild checks,
//! cost) → execute with reporters. `sync`, `plan`, `apply`, `tui`, a shard,
//! `finalize` and the examples all go through it, so that a change to the
//! pipeline is made here once; it knows no terminal and renders nothing
//! (gitui keeps its engine in `asyncgit`, which knows no UI, the same way).

use tokio_util::sync::CancellationToken;

use super::conflict::ConflictPolicy;
use super::{
    Backup, BackupDir, BackupDirError, ExecOptions, ExecReport, LocationConflict, Scan, ScanError,
    ScanProgress, SyncOptions, SyncPlan,
};
use crate::config::{Origin, Settings};
use crate::filter::{FilterRule, RuleKind};
use crate::progress::{ExecEvent, Reporter};
use crate::storage::{Storage, StorageClass, StorageClassError, StorageError};
use crate::types::{ReadWatch, RelPath};
use crate::uri::Location;

/// Why a session could not begin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Overlap(#[from] LocationConflict),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    StorageClass(#[from] StorageClassError),
    #[error(transparent)]
    BackupDir(#[from] BackupDirError),
}

/// What to sync beyond the settings: the rules and the list given on the
/// command line (`--include`/`--exclude` in order, `--files-from`).
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    pub filters: Vec<FilterRule>,
    pub files_from: Option<Vec<RelPath>>,
}

/// The options of a sync of `source` → `destination` under `settings`.
pub fn sync_options(
    settings: &Settings,
    selectors: Selectors,
    (source, destination): (&Location, &Location),
) -> Result<SyncOptions, SessionError> {
    let Selectors {
        mut filters,
        files_from,
    } = selectors;
    let storage_class = settings
        .storage_class
        .value
        .as_deref()
        .map(|class| StorageClass::for_destination(class, destination))
        .transpose()?;
    let backup = if settings.backup.value || settings.backup_dir.value.is_some() {
        let dir = settings
            .backup_dir
            .value
            .as_deref()
            .map(|dir| BackupDir::place(dir, destination))
            .transpose()?;
        let suffix = settings
            .suffix
            .value
            .clone()
            .unwrap_or_else(|| if dir.is_some() { "" } else { "~" }.to_string());
        Some(Backup { dir, suffix })
    } else {
        None
    };
    // Backups are never synced or deleted: their rule comes first.
    if let Some(rule) = backup.as_ref().and_then(Backup::exclusion) {
        filters.insert(0, rule);
    }
    filters.extend(settings.exclude.value.iter().map(|pattern| FilterRule {
        kind: RuleKind::Exclude,
        pattern: pattern.clone(),
    }));
    Ok(SyncOptions {
        delete: settings.delete.value,
        max_delete: settings.max_delete.value,
        list_requests: settings.list_requests.value.0,
        memory_budget: None,
        archive: settings.archive.value,
        checksum: settings.checksum.value,
        delta_threshold: settings.delta_threshold.value.0,
        block_size: block_size(settings, (source, destination)),
        allow_empty_source: settings.allow_empty_source.value,
        filters,
        remote_signature: settings.remote_signature.value,
        unverified_rebuilds: settings.unverified_rebuilds.value,
        selection: super::Selection {
            update: settings.update.value,
            ignore_existing: settings.ignore_existing.value,
            existing: settings.existing.value,
            size_only: settings.size_only.value,
            ignore_times: settings.ignore_times.value,
            modify_window_s: settings.modify_window.value.0.as_secs(),
            min_size: settings.min_size.value.map(|s| s.0),
            max_size: settings.max_size.value.map(|s| s.0),
            whole_file: settings.whole_file.value,
        },
        files_from,
        backup,
        storage_class,
        sidecars: settings.sidecars.value,
    })
}

/// The delta block size: the one set (flag, environment, config), else the
/// one suited to the side that keeps the sidecars (the destination, else the
/// source).
fn block_size(settings: &Settings, (source, destination): (&Location, &Location)) -> u64 {
    if settings.block_size.origin != Origin::Default {
        return settings.block_size.value.0;
    }
    destination
        .delta_block_size()
        .or_else(|| source.delta_block_size())
        .map_or(settings.block_size.value.0, u64::from)
}

/// How a run is to go, besides its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// A whole plan (`sync`, `apply`, `tui`).
    Whole,
    /// One shard's share: deletions and directory times are left for
    /// `finalize`.
    Shard,
    /// `finalize`: what the shards left. Uploads it makes are not resumable
    /// (each is a directory's times or a deletion).
    Finalize,
}

/// Which items a plan saved as it is made keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// None: the plan's text is read back from its parts (a plan of 10⁸
    /// new files never sits in memory).
    Nothing,
    /// Those that change something, and those a selection flag held back
    /// (what a summary lists).
    Changes,
    /// Every item (what `-v` or `--json` prints).
    All,
}

/// How [`Session::plan_into`] saves a plan, besides where.
pub struct Saving<'a> {
    pub keep: Keep,
    /// The user's edits of an earlier plan, carried over by path.
    pub edits: &'a super::plan::Edits,
    /// Unchanged items listed in the parts too, not only counted (the
    /// review's own plan, whose details pane shows any entry).
    pub list_unchanged: bool,
    /// Given every item as it is written (the review builds its tree so).
    pub each: Option<&'a mut (dyn FnMut(&super::PlanItem) + Send)>,
    /// Divided into this many shards, the layout kept in the header.
    pub shards: Option<u32>,
}

impl Saving<'static> {
    /// Saved as `plan -o` saves, keeping `keep` in memory.
    pub fn keeping(keep: Keep) -> Saving<'static> {
        static NO_EDITS: std::sync::LazyLock<super::plan::Edits> =
            std::sync::LazyLock::new(Default::default);
        Saving {
            keep,
            edits: &NO_EDITS,
            list_unchanged: false,
            each: None,
            shards: None,
        }
    }
}

/// Both sides of one sync, opened, with the settings the run goes by.
/// Cheap to clone: the stores share their clients.
#[derive(Clone)]
pub struct Session {
    pub source: Storage,
    pub destination: Storage,
    settings: Settings,
    cancel: CancellationToken,
}

impl Session {
    /// Opens both sides, refusing roots that overlap — as written, and as
    /// their servers resolve them (an SSH server's aliases, `~`, links).
    pub async fn open(
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        settings: &Settings,
        cancel: CancellationToken,
    ) -> Result<Session, SessionError> {
        super::check_locations(source, destination)?;
        let mut stores = settings.store_settings();
        // The plan's layout (a saved plan's moves were planned for it).
        stores.sidecars = options.sidecars;
        let source_store = Storage::open(source, &stores).await?;
        let destination_store = Storage::open(
            destination,
            &stores.writing_in(options.storage_class.as_ref()),
        )
        .await?;
        if let (Storage::Object(src), Storage::Object(dst)) = (&source_store, &destination_store)
            && let (Some(src), Some(dst)) = (src.resolved_root().await?, dst.resolved_root().await?)
        {
            super::check_resolved_roots(&src, &dst)?;
        }
        Ok(Session {
            source: source_store,
            destination: destination_store,
            settings: settings.clone(),
            cancel,
        })
    }

    /// A session on stores opened elsewhere (a wrapper such as
    /// `storage::memory::faults::Faulty`, a store built by hand). The caller
    /// has checked that their roots do not overlap.
    pub fn with_stores(
        source: Storage,
        destination: Storage,
        settings: &Settings,
        cancel: CancellationToken,
    ) -> Session {
        Session {
            source,
            destination,
            settings: settings.clone(),
            cancel,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Scans both sides; `None` when the run is cancelled first.
    pub async fn scan(
        &self,
        options: &SyncOptions,
        progress: &ScanProgress,
    ) -> Option<Result<Scan, ScanError>> {
        // The budget is the run's (this session's settings), also for a
        // saved plan's options.
        let options = &SyncOptions {
            memory_budget: Some(self.settings.memory_budget.value.bytes()),
            ..options.clone()
        };
        tokio::select! {
            scanned = super::scan(&self.source, &self.destination, options, progress) => Some(scanned),
            () = self.cancel.cancelled() => None,
        }
    }

    /// The plan for a scan: the diff, restored times confirmed, deltas and
    /// how their rebuilds are checked estimated, and what it will cost.
    pub async fn plan(
        &self,
        source: Location,
        destination: Location,
        scan: &Scan,
        options: SyncOptions,
    ) -> Result<SyncPlan, super::PlanError> {
        let mut plan = super::build_plan(source, destination, scan, options);
        super::plan::scan_read_whole(scan)?;
        super::refine::confirm_restored_times(&mut plan, &self.source, &self.destination).await;
        super::estimate::estimate_deltas(&mut plan, &self.source, &self.destination).await;
        plan.cost_model = Some(self.cost_model(&plan));
        Ok(plan)
    }

    /// Makes the plan of `scan` and saves it in parts at `place` as it is
    /// made, never holding it whole: the scan is consumed as the diff
    /// passes it, and items go to the parts a chunk at a time, each chunk
    /// checked and estimated as [`Session::plan`] does a whole plan, and
    /// given the user's `edits` of an earlier plan. The plan returned has
    /// the totals of all items but holds only those `keep` asks for (the
    /// changes, to print them); with it, what its items will cost (for the
    /// estimate, without reading the parts again).
    pub async fn plan_into(
        &self,
        (source, destination): (Location, Location),
        scan: Scan,
        options: SyncOptions,
        place: &super::plan::parts::PlanPlace,
        saving: Saving<'_>,
    ) -> Result<(SyncPlan, crate::cost::Usage), super::PlanError> {
        let Saving {
            keep,
            edits,
            list_unchanged,
            mut each,
            shards,
        } = saving;
        /// Items planned, checked and estimated together: enough for the
        /// HEADs and sidecar reads of one chunk to go many at once.
        const CHUNK: usize = 10_000;
        let mut plan = super::plan::plan_head(source, destination, &scan, options);
        let model = self.cost_model(&plan);
        let mut usage = crate::cost::Usage::default();
        let diff_options =
            super::plan::diff_options(&plan.source, &plan.destination, &plan.options);
        let skipped = super::plan::skipped_links(&scan.destination.issues);
        let Scan {
            source: src,
            destination: dst,
            ..
        } = scan;
        let watches = [src.manifest.read_watch(), dst.manifest.read_watch()];
        let mut items = super::diff::diff_owned(src.manifest, dst.manifest, &diff_options);
        let mut writer = super::plan::parts::PartsWriter::new(place, plan.created_ns);
        if list_unchanged {
            writer = writer.listing_unchanged();
        }
        if let Some(count) = shards {
            writer = writer.with_shards(count, super::shard::splittable(&plan));
        }
        let mut chunk = SyncPlan {
            items: Vec::with_capacity(CHUNK),
            ..plan.clone()
        };
        let mut kept = Vec::new();
        let mut delta_check_found = false;
        loop {
            chunk.items.extend(items.by_ref().take(CHUNK));
            if chunk.items.is_empty() {
                break;
            }
            super::plan::keep_skipped_destination_links(&mut chunk.items, &skipped);
            chunk.refresh_stats();
            chunk.rebuild_check = None;
            let had_deltas = chunk.stats.delta.count > 0;
            super::refine::confirm_restored_times(&mut chunk, &self.source, &self.destination)
                .await;
            super::estimate::estimate_deltas(&mut chunk, &self.source, &self.destination).await;
            // The check of a chunk with deltas is the plan's (the store's
            // default otherwise, where it has one).
            if (had_deltas && !delta_check_found) || plan.rebuild_check.is_none() {
                plan.rebuild_check = chunk.rebuild_check;
                delta_check_found |= had_deltas;
            }
            for mut item in chunk.items.drain(..) {
                super::plan::carry_edit(&mut item, edits, diff_options.transfer);
                writer.push(&item).await?;
                usage.add(&plan, &model, &item.facts());
                if let Some(each) = each.as_mut() {
                    each(&item);
                }
                if keep == Keep::All
                    || (keep == Keep::Changes
                        && (item.action != crate::types::SyncAction::Skip
                            || item.reason.is_selection()))
                {
                    kept.push(item);
                }
            }
        }
        drop(items);
        // Before the header makes the plan the one at the place.
        if let Some(reason) = watches.iter().find_map(ReadWatch::failure) {
            return Err(super::PlanError::ScanLost { reason });
        }
        plan.stats = writer.stats().clone();
        plan.unlisted = writer.unchanged();
        plan.cost_model = Some(model);
        writer.finish(&plan).await?;
        // What it holds now: the changes (or, with `Keep::All`, every item,
        // none of them left uncounted).
        if keep == Keep::All {
            plan.unlisted = super::plan::ActionTotals::default();
        }
        plan.items = kept;
        Ok((plan, usage))
    }

    /// What the plan's cost estimate needs: each side's store limits and
    /// prices.
    fn cost_model(&self, plan: &SyncPlan) -> crate::cost::CostModel {
        use crate::cost::{SideModel, StoreModel, billing_for, list_page_of};
        let settings = &self.settings;
        let provider = settings.price_provider();
        let endpoint_set = settings.endpoint_url.value.is_some();
        let side = |location: &Location, storage: &Storage, class: Option<&str>| SideModel {
            store: storage
                .object_store()
                .map(|store| StoreModel::of(store.limits(), list_page_of(location))),
            billing: billing_for(location, provider, endpoint_set, class, &settings.prices),
        };
        let class = plan.options.storage_class.as_ref().map(|c| c.name.as_str());
        crate::cost::CostModel {
            source: side(&plan.source, &self.source, None),
            destination: side(&plan.destination, &self.destination, class),
            same_service: match (self.source.object_store(), self.destination.object_store()) {
                (Some(src), Some(dst)) => dst.copies_from(src.as_ref()),
                _ => false,
            },
            listed: (
                plan.scanned.source_entries,
                plan.scanned.destination_entries,
            ),
        }
    }

    /// Why no deletion may run, from the scan: as rsync does ("IO error
    /// encountered -- skipping file deletion"), when part of the source
    /// could not be read, what looks missing there may only be unread, so
    /// no deletion runs unless `--ignore-errors` says so.
    pub fn withheld_deletes(&self, scan: &Scan) -> Option<String> {
        let unread = scan.source.issues.iter().filter(|i| i.is_error()).count();
        (unread > 0 && !self.settings.ignore_errors.value).then(|| {
            format!(
                "{unread} source entr{} could not be read (--ignore-errors deletes anyway)",
                if unread == 1 { "y" } else { "ies" }
            )
        })
    }

    /// The options of a run of `kind` under the settings: the one place
    /// they are made. `withhold_deletes` says why no deletion may run.
    pub fn exec_options(&self, kind: RunKind, withhold_deletes: Option<String>) -> ExecOptions {
        let settings = &self.settings;
        ExecOptions {
            jobs: settings.jobs.value,
            fsync: settings.fsync.value,
            pause: None,
            conflicts: if settings.fail_on_conflict.value {
                ConflictPolicy::Fail
            } else {
                ConflictPolicy::Replan
            },
            resume: match kind {
                RunKind::Whole | RunKind::Shard => crate::resume::ResumeStore::default_location(),
                RunKind::Finalize => None,
            },
            withhold_deletes,
            leave_for_finalize: kind == RunKind::Shard,
        }
    }

    /// Executes `plan`, its events sent to `events` as they happen.
    pub async fn execute_to(
        &self,
        plan: impl Into<super::execute::PlanToRun>,
        options: ExecOptions,
        events: tokio::sync::mpsc::Sender<ExecEvent>,
    ) -> ExecReport {
        super::execute(
            plan,
            self.source.clone(),
            self.destination.clone(),
            options,
            events,
            self.cancel.clone(),
        )
        .await
    }

    /// Executes `plan`, its events folded and shown by `reporters`; returns
    /// once they have shown the last one.
    pub async fn execute(
        &self,
        plan: impl Into<super::execute::PlanToRun>,
        options: ExecOptions,
        reporters: Vec<Box<dyn Reporter>>,
    ) -> ExecReport {
        let (events, received) = tokio::sync::mpsc::channel(1024);
        let consumer = tokio::spawn(crate::progress::consume(received, reporters));
        let report = self.execute_to(plan, options, events).await;
        let _ = consumer.await;
        report
    }
}
