//! A saved plan run as shards by a batch engine (`apply PLAN --shard K/N`),
//! then finished once (`finalize PLAN`). `sync::shard` decides who does what;
//! this module runs one shard, keeps its report where every worker can reach
//! it, and finishes the run when every report is in and clean.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{Context, Error, Sides, Verbosity, conflict_policy, scan_sides};
use crate::error::ExitStatus;
use crate::progress::{ExecEvent, LineReporter, Progress, Reporter};
use crate::storage::{Expect, ObjectMeta, SharedStore, Storage};
use crate::sync::shard::{self, Assignment, Piece, ShardId, Unit};
use crate::sync::{self, ExecOptions, ExecReport, Scan, SyncPlan};
use crate::types::{EntryKind, SyncAction};
use crate::uri::Location;

const REPORT_FORMAT: &str = "hugesync-shard-report";

/// `--shard`: given, or from the batch engine's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    Given(ShardId),
    Auto,
}

/// Parses `K/N` (1 ≤ K ≤ N) or `auto`.
pub fn parse_shard(text: &str) -> Result<ShardSpec, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(ShardSpec::Auto);
    }
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}`: expected K/N (shard K of N, from 1) or auto"))?;
    let parse = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{text}`: expected K/N with whole numbers, e.g. 2/8"))
    };
    let (index, count) = (parse(k)?, parse(n)?);
    if count == 0 || index == 0 || index > count {
        return Err(format!(
            "`{text}`: K must be 1 to N (shards count from 1; N is at least 1)"
        ));
    }
    Ok(ShardSpec::Given(ShardId { index, count }))
}

/// K and N from the environment of Kubernetes Indexed Jobs, Slurm job
/// arrays or AWS Batch array jobs; engines that number from 0 are shifted.
pub fn shard_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ShardId, String> {
    let number = |name: &str| -> Result<Option<u32>, String> {
        match env(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={text} is not a whole number")),
        }
    };
    let engines: [(&str, &str, &str, u32); 3] = [
        (
            "JOB_COMPLETION_INDEX",
            "JOB_COMPLETIONS",
            "set JOB_COMPLETIONS to the Job's spec.completions in its pod template (deploy/kubernetes-job.yaml does)",
            0,
        ),
        (
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "submit with sbatch --array (Slurm sets it)",
            0,
        ),
        (
            "AWS_BATCH_JOB_ARRAY_INDEX",
            "AWS_BATCH_JOB_ARRAY_SIZE",
            "set AWS_BATCH_JOB_ARRAY_SIZE to the array size in the job's environment (deploy/aws-batch-submit.sh does)",
            0,
        ),
    ];
    for (index_var, count_var, how, _) in engines {
        let Some(index) = number(index_var)? else {
            continue;
        };
        let count = number(count_var)?
            .ok_or_else(|| format!("{index_var} is set but {count_var} is not: {how}"))?;
        // Slurm numbers tasks as the --array range says (0-3, 1-4, …).
        let first = if index_var == "SLURM_ARRAY_TASK_ID" {
            number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0)
        } else {
            0
        };
        let k = index
            .checked_sub(first)
            .map(|k| k + 1)
            .filter(|k| *k <= count && count > 0)
            .ok_or_else(|| {
                format!("{index_var}={index} is outside an array of {count} ({count_var})")
            })?;
        return Ok(ShardId { index: k, count });
    }
    Err("--shard auto: no batch engine's array index is set (JOB_COMPLETION_INDEX for Kubernetes, \
         SLURM_ARRAY_TASK_ID for Slurm, AWS_BATCH_JOB_ARRAY_INDEX for AWS Batch); give --shard K/N instead"
        .into())
}

/// What one shard did, kept where `finalize` can read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardReport {
    pub format: String,
    /// blake3 of the plan file (16 hex digits): reports of another plan are
    /// never mixed in.
    pub plan_id: String,
    pub shard: ShardId,
    /// Ran to the end (not interrupted, not stopped on a conflict).
    pub complete: bool,
    /// Items this run transferred.
    pub done: Vec<usize>,
    /// Items found already done at the destination (an earlier attempt).
    pub already_done: Vec<usize>,
    /// Pieces of cut files this shard sent: (item, piece number).
    pub pieces_done: Vec<(usize, u32)>,
    pub failed: Vec<ShardFailure>,
    pub bytes_sent: u64,
    pub duration_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFailure {
    pub item: usize,
    pub path: String,
    pub error: String,
}

impl ShardReport {
    fn is_clean(&self) -> bool {
        self.complete && self.failed.is_empty()
    }
}

/// Where reports are kept: next to the plan, a local directory, or a prefix
/// on an object store every worker reaches.
enum ReportDir {
    /// Files named `STEM` + `shard-K-of-N.json` in `dir`.
    Local {
        dir: PathBuf,
        stem: String,
    },
    Store(SharedStore),
}

impl ReportDir {
    async fn open(
        plan_file: &Path,
        report_dir: Option<&str>,
        ctx: &Context,
    ) -> Result<ReportDir, Error> {
        let Some(dir) = report_dir else {
            let stem = plan_file
                .file_name()
                .map(|n| format!("{}.", n.to_string_lossy()))
                .unwrap_or_default();
            let dir = plan_file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            return Ok(ReportDir::Local { dir, stem });
        };
        match Location::parse(dir)? {
            Location::Local(dir) => Ok(ReportDir::Local {
                dir,
                stem: String::new(),
            }),
            remote => match Storage::open(&remote, &super::store_settings(&ctx.settings)).await? {
                Storage::Object(store) => Ok(ReportDir::Store(store)),
                Storage::Local(local) => Ok(ReportDir::Local {
                    dir: local.root().to_path_buf(),
                    stem: String::new(),
                }),
            },
        }
    }

    fn name(shard: ShardId) -> String {
        format!("shard-{}-of-{}.json", shard.index, shard.count)
    }

    fn describe(&self, shard: ShardId) -> String {
        match self {
            ReportDir::Local { dir, stem } => dir
                .join(format!("{stem}{}", Self::name(shard)))
                .display()
                .to_string(),
            ReportDir::Store(store) => {
                store.url_of(&format!("{}{}", store.prefix(), Self::name(shard)))
            }
        }
    }

    async fn write(&self, report: &ShardReport) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(report).map_err(|e| Error::Output(e.into()))?;
        match self {
            ReportDir::Local { dir, stem } => {
                let path = dir.join(format!("{stem}{}", Self::name(report.shard)));
                let temp = dir.join(format!(
                    "{}{stem}{}{}",
                    crate::storage::local::TEMP_PREFIX,
                    Self::name(report.shard),
                    crate::storage::local::TEMP_SUFFIX
                ));
                std::fs::create_dir_all(dir)
                    .and_then(|()| std::fs::write(&temp, &bytes))
                    .and_then(|()| std::fs::rename(&temp, &path))
                    .map_err(|e| {
                        crate::storage::StorageError::io("cannot write the shard report", &path, e)
                    })?;
            }
            ReportDir::Store(store) => {
                let key = format!("{}{}", store.prefix(), Self::name(report.shard));
                let body = bytes::Bytes::from(bytes);
                store
                    .put(
                        &key,
                        crate::storage::body::BodySource::Memory(&body),
                        body.len() as u64,
                        &ObjectMeta::default(),
                        None,
                        Expect::Any,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Every report found, by shard (unreadable ones as errors).
    async fn read_all(&self) -> Result<Vec<(String, Result<ShardReport, String>)>, Error> {
        let mut found = Vec::new();
        match self {
            ReportDir::Local { dir, stem } => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
                    Err(e) => {
                        return Err(crate::storage::StorageError::io(
                            "cannot list the shard reports in",
                            dir,
                            e,
                        )
                        .into());
                    }
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some(rest) = name.strip_prefix(stem.as_str()) else {
                        continue;
                    };
                    if !is_report_name(rest) {
                        continue;
                    }
                    let parsed = std::fs::read(entry.path())
                        .map_err(|e| e.to_string())
                        .and_then(|bytes| parse_report(&bytes));
                    found.push((entry.path().display().to_string(), parsed));
                }
            }
            ReportDir::Store(store) => {
                let mut token = None;
                loop {
                    let page = store.list_page(token.take()).await?;
                    for object in page.objects {
                        if object.rel_key.contains('/') || !is_report_name(&object.rel_key) {
                            continue;
                        }
                        let key = format!("{}{}", store.prefix(), object.rel_key);
                        let parsed = match crate::storage::objects::read_small(
                            store.as_ref(),
                            &key,
                            64 << 20,
                        )
                        .await?
                        {
                            crate::storage::objects::SmallObject::Bytes(bytes) => {
                                parse_report(&bytes)
                            }
                            other => Err(format!("unreadable ({other:?})")),
                        };
                        found.push((store.url_of(&key), parsed));
                    }
                    match page.next {
                        Some(next) => token = Some(next),
                        None => break,
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    async fn read(&self, shard: ShardId) -> Option<ShardReport> {
        self.read_all()
            .await
            .ok()?
            .into_iter()
            .filter_map(|(_, report)| report.ok())
            .find(|report| report.shard == shard)
    }
}

fn is_report_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("shard-")
        .and_then(|r| r.strip_suffix(".json"))
    else {
        return false;
    };
    rest.split_once("-of-")
        .is_some_and(|(k, n)| k.parse::<u32>().is_ok() && n.parse::<u32>().is_ok())
}

fn parse_report(bytes: &[u8]) -> Result<ShardReport, String> {
    let report: ShardReport = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if report.format != REPORT_FORMAT {
        return Err(format!("not a shard report (format {})", report.format));
    }
    Ok(report)
}

/// blake3 of the plan file, the first 16 hex digits.
fn plan_id_of(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| sync::PlanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(blake3::hash(&bytes).to_hex()[..16].to_string())
}

/// Whether a file can be put together from ranges sent separately on this
/// pair of sides (one side local; copies between stores stay whole).
fn splittable(plan: &SyncPlan) -> bool {
    plan.source.is_local() || plan.destination.is_local()
}

/// Loads the plan, scans both sides and checks the plan is still current —
/// tolerating what shards have done since: an entry whose destination
/// already holds what the plan would make of it is done, not stale.
async fn load_and_scan(
    plan_file: &Path,
    ctx: &Context,
    quiet: bool,
) -> Result<(SyncPlan, Scan, Sides, BTreeSet<usize>), Error> {
    let plan = SyncPlan::load(plan_file)?;
    let (scan, sides) =
        scan_sides(&plan.source, &plan.destination, &plan.options, ctx, quiet).await?;
    let diff = sync::plan::diff_options(&plan.source, &plan.destination, &plan.options);
    let mut done = BTreeSet::new();
    let mut stale = Vec::new();
    for (i, item) in plan.items.iter().enumerate() {
        if item.action == SyncAction::Skip {
            continue;
        }
        let src_now = scan.source.manifest.get(&item.path);
        let dst_now = scan.destination.manifest.get(&item.path);
        if !sync::plan::same_entry(item.src.as_ref(), src_now) {
            stale.push(item.path.display());
            continue;
        }
        if sync::plan::same_entry(item.dst.as_ref(), dst_now) {
            continue;
        }
        let finished = match (item.action, src_now, dst_now) {
            (SyncAction::Delete, _, None) => true,
            (_, Some(src), Some(dst)) if item.action != SyncAction::Delete => {
                sync::diff::up_to_date(src, dst, &diff)
            }
            _ => false,
        };
        if finished {
            done.insert(i);
        } else {
            stale.push(item.path.display());
        }
    }
    if let Some(first) = stale.first() {
        return Err(sync::PlanError::Stale {
            count: stale.len(),
            first: first.clone(),
        }
        .into());
    }
    Ok((plan, scan, sides, done))
}

/// Leaves an item to others (another shard, finalize, or an earlier attempt).
fn skip(item: &mut sync::PlanItem) {
    item.action = SyncAction::Skip;
    item.bytes_to_send = 0;
    item.bytes_saved = 0;
}

/// Records which items finished and failed, for the report.
#[derive(Default)]
struct Outcomes {
    done: Vec<usize>,
    failed: Vec<ShardFailure>,
}

struct Recorder(Arc<Mutex<Outcomes>>);

impl Reporter for Recorder {
    fn event(&mut self, event: &ExecEvent, _: &Progress) {
        let Ok(mut outcomes) = self.0.lock() else {
            return;
        };
        match event {
            ExecEvent::Finished { id, .. } => outcomes.done.push(*id),
            ExecEvent::Failed {
                id, path, error, ..
            } => outcomes.failed.push(ShardFailure {
                item: *id,
                path: path.display(),
                error: error.clone(),
            }),
            _ => {}
        }
    }
}

/// `apply PLAN --shard K/N|auto`.
pub(super) async fn run_shard(
    plan_file: &Path,
    spec: ShardSpec,
    report_dir: Option<&str>,
    run: &crate::cli::RunFlags,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let json = run.json;
    let shard = match spec {
        ShardSpec::Given(shard) => shard,
        ShardSpec::Auto => {
            shard_from_env(&|name| std::env::var(name).ok()).map_err(Error::Usage)?
        }
    };
    if run.dry_run {
        return print_shares(plan_file, shard, json);
    }
    let plan_id = plan_id_of(plan_file)?;
    let reports = ReportDir::open(plan_file, report_dir, ctx).await?;
    let started = std::time::Instant::now();
    let quiet = json || ctx.verbosity == Verbosity::Quiet;
    let (plan, _scan, sides, done_before) = load_and_scan(plan_file, ctx, quiet).await?;
    let assignment = shard::assign(&plan, shard.count, splittable(&plan));
    let mine = &assignment.shards[(shard.index - 1) as usize];
    let my_items: BTreeSet<usize> = mine
        .iter()
        .filter_map(|unit| match unit {
            Unit::Item(i) => Some(*i),
            Unit::Piece(_) => None,
        })
        .collect();
    // Pieces sent by an earlier attempt of this shard are not sent again.
    let previous = reports
        .read(shard)
        .await
        .filter(|report| report.plan_id == plan_id);
    let pieces_before: BTreeSet<(usize, u32)> = previous
        .as_ref()
        .map(|r| r.pieces_done.iter().copied().collect())
        .unwrap_or_default();
    let my_pieces: Vec<Piece> = mine
        .iter()
        .filter_map(|unit| match unit {
            // A file finalize has already put together needs none of them.
            Unit::Piece(p)
                if !pieces_before.contains(&(p.item, p.number))
                    && !done_before.contains(&p.item) =>
            {
                Some(*p)
            }
            _ => None,
        })
        .collect();

    // This shard's part of the plan: its items; the directories its files
    // need (every shard on a disk; the first on an object store, where
    // they are markers); nothing of finalize's.
    let mut part = plan.clone();
    let mut already_done = Vec::new();
    for (i, item) in part.items.iter_mut().enumerate() {
        let is_dir =
            item.src.as_ref().or(item.dst.as_ref()).map(|e| e.kind) == Some(EntryKind::Dir);
        let keep = if shard::is_finalize_work(item) {
            false
        } else if is_dir {
            item.action.transfers() && (plan.destination.is_local() || shard.index == 1)
        } else {
            my_items.contains(&i)
        };
        if keep && done_before.contains(&i) && !is_dir {
            already_done.push(i);
        }
        if !keep || (done_before.contains(&i) && !is_dir) {
            skip(item);
        }
    }
    part.refresh_stats();
    if !quiet {
        eprintln!(
            "Shard {shard} of plan {plan_id}: {} item(s), {} piece(s) of cut files, {} to send; {} already done.",
            crate::format::count(part.stats.changes()),
            my_pieces.len(),
            crate::format::bytes(
                part.stats.bytes_to_send + my_pieces.iter().map(|p| p.len).sum::<u64>()
            ),
            already_done.len(),
        );
    }

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(1024);
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Recorder(outcomes.clone()))];
    if !json {
        reporters.push(Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        }));
    }
    let consumer = tokio::spawn(crate::progress::consume(events_rx, reporters));
    let options = ExecOptions {
        jobs: ctx.settings.jobs.value,
        fsync: ctx.settings.fsync.value,
        pause: None,
        conflicts: conflict_policy(&ctx.settings),
        resume: crate::resume::ResumeStore::default_location(),
        withhold_deletes: None,
        leave_for_finalize: true,
    };
    let (source, destination) = (sides.source.clone(), sides.destination.clone());
    let report = sync::execute(
        Arc::new(part),
        sides.source,
        sides.destination,
        options,
        events_tx,
        ctx.cancel.clone(),
    )
    .await;
    let _ = consumer.await;

    let mut pieces_done: Vec<(usize, u32)> = pieces_before.into_iter().collect();
    let mut piece_bytes = 0;
    let mut outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|e| e.into_inner()));
    let jobs = ctx.settings.jobs.value.max(1);
    let mut running = tokio::task::JoinSet::new();
    let plan = Arc::new(plan);
    for piece in my_pieces {
        if ctx.cancel.is_cancelled() {
            break;
        }
        while running.len() >= jobs {
            collect_piece(
                running.join_next().await,
                &plan,
                &mut pieces_done,
                &mut piece_bytes,
                &mut outcomes,
            );
        }
        let (plan, plan_id, source, destination) = (
            plan.clone(),
            plan_id.clone(),
            source.clone(),
            destination.clone(),
        );
        let fsync = ctx.settings.fsync.value;
        running.spawn(async move {
            let sent =
                sync::pieces::send_piece(&plan, &plan_id, piece, &source, &destination, fsync)
                    .await;
            (piece, sent)
        });
    }
    while let Some(joined) = running.join_next().await {
        collect_piece(
            Some(joined),
            &plan,
            &mut pieces_done,
            &mut piece_bytes,
            &mut outcomes,
        );
    }
    pieces_done.sort_unstable();
    let complete = !report.interrupted && !report.stopped_on_conflict && !ctx.cancel.is_cancelled();
    // Directories are every shard's; the report counts the shard's own work.
    outcomes
        .done
        .retain(|&i| shard::is_shard_work(&plan.items[i]));
    // A re-run adds to what the earlier attempt of this shard did.
    let (mut done, mut bytes_sent) = (outcomes.done, report.bytes_sent + piece_bytes);
    if let Some(previous) = &previous {
        done.extend(&previous.done);
        bytes_sent += previous.bytes_sent;
        already_done.retain(|i| !previous.done.contains(i));
        already_done.extend(&previous.already_done);
    }
    done.sort_unstable();
    done.dedup();
    already_done.sort_unstable();
    already_done.dedup();
    let shard_report = ShardReport {
        format: REPORT_FORMAT.into(),
        plan_id,
        shard,
        complete,
        done,
        already_done,
        pieces_done,
        failed: outcomes.failed,
        bytes_sent,
        duration_s: started.elapsed().as_secs_f64()
            + previous.as_ref().map_or(0.0, |p| p.duration_s),
    };
    reports.write(&shard_report).await?;
    let clean = shard_report.is_clean();
    if json {
        super::print_json_line(&serde_json::json!({ "event": "shard", "report": shard_report }))?;
    } else if ctx.verbosity != Verbosity::Quiet {
        println!(
            "Shard {shard}: {} done, {} piece(s), {} failed, {} sent in {:.1}s; report: {}",
            crate::format::count(shard_report.done.len() as u64),
            crate::format::count(shard_report.pieces_done.len() as u64),
            crate::format::count(shard_report.failed.len() as u64),
            crate::format::bytes(shard_report.bytes_sent),
            shard_report.duration_s,
            reports.describe(shard),
        );
    }
    Ok(if ctx.cancel.is_cancelled() {
        ExitStatus::Interrupted
    } else if !complete {
        ExitStatus::of_report(&report)
    } else if clean {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}

/// `apply PLAN --shard K/N -n`: what this shard and every other would do,
/// and how even the split is, without scanning or sending anything.
fn print_shares(plan_file: &Path, shard: ShardId, json: bool) -> Result<ExitStatus, Error> {
    let plan = SyncPlan::load(plan_file)?;
    let assignment = shard::assign(&plan, shard.count, splittable(&plan));
    let shares: Vec<serde_json::Value> = assignment
        .shards
        .iter()
        .zip(&assignment.loads)
        .enumerate()
        .map(|(k, (units, load))| {
            let pieces = units.iter().filter(|u| matches!(u, Unit::Piece(_))).count();
            serde_json::json!({
                "shard": format!("{}/{}", k + 1, shard.count),
                "items": units.len() - pieces,
                "pieces": pieces,
                "bytes": load.bytes,
                "requests": load.requests,
            })
        })
        .collect();
    let (bytes_ratio, requests_ratio) = assignment.balance();
    if json {
        super::print_json_line(&serde_json::json!({
            "event": "shares",
            "shard": shard,
            "shards": shares,
            "largest_over_mean": { "bytes": bytes_ratio, "requests": requests_ratio },
        }))?;
        return Ok(ExitStatus::Success);
    }
    for (k, share) in shares.iter().enumerate() {
        println!(
            "{} shard {}: {} item(s), {} piece(s), {} to send, {} request(s)",
            if k + 1 == shard.index as usize {
                "→"
            } else {
                " "
            },
            share["shard"].as_str().unwrap_or_default(),
            crate::format::count(share["items"].as_u64().unwrap_or(0)),
            share["pieces"],
            crate::format::bytes(share["bytes"].as_u64().unwrap_or(0)),
            crate::format::count(share["requests"].as_u64().unwrap_or(0)),
        );
    }
    println!(
        "largest shard over the mean: {bytes_ratio:.3}× the bytes, {requests_ratio:.3}× the requests"
    );
    Ok(ExitStatus::Success)
}

/// A piece's task, joined: the piece, and what sending it came to.
type JoinedPiece =
    Result<(Piece, Result<u64, crate::sync::transfer::ItemError>), tokio::task::JoinError>;

fn collect_piece(
    joined: Option<JoinedPiece>,
    plan: &SyncPlan,
    done: &mut Vec<(usize, u32)>,
    bytes: &mut u64,
    outcomes: &mut Outcomes,
) {
    match joined {
        Some(Ok((piece, Ok(sent)))) => {
            done.push((piece.item, piece.number));
            *bytes += sent;
        }
        Some(Ok((piece, Err(e)))) => {
            let path = plan.items[piece.item].path.display();
            eprintln!(
                "error: {path} (piece {} of {}): {e}",
                piece.number + 1,
                piece.of
            );
            outcomes.failed.push(ShardFailure {
                item: piece.item,
                path,
                error: format!("piece {} of {}: {e}", piece.number + 1, piece.of),
            });
        }
        Some(Err(e)) => eprintln!("error: a piece's task failed: {e}"),
        None => {}
    }
}

/// `finalize PLAN`: every shard's report present and clean, then the cut
/// files put together, then what must come last (deletions, directory
/// times), and the whole run's summary.
pub(super) async fn finalize(
    plan_file: &Path,
    report_dir: Option<&str>,
    json: bool,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let plan_id = plan_id_of(plan_file)?;
    let reports_dir = ReportDir::open(plan_file, report_dir, ctx).await?;
    let mut by_shard: BTreeMap<u32, ShardReport> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut count = None;
    for (name, parsed) in reports_dir.read_all().await? {
        match parsed {
            Err(why) => problems.push(format!("{name}: {why}")),
            Ok(report) if report.plan_id != plan_id => {}
            Ok(report) => {
                if *count.get_or_insert(report.shard.count) != report.shard.count {
                    problems.push(format!(
                        "{name}: shard {} belongs to a run of {} shards, others to {}",
                        report.shard,
                        report.shard.count,
                        count.unwrap_or(0)
                    ));
                }
                by_shard.insert(report.shard.index, report);
            }
        }
    }
    let Some(count) = count else {
        return Err(Error::Usage(format!(
            "no shard report of this plan ({plan_id}) at {}: run `hugesync apply {} --shard K/N` for every shard first",
            reports_dir
                .describe(ShardId { index: 1, count: 1 })
                .replace("shard-1-of-1.json", ""),
            plan_file.display()
        )));
    };
    let missing: Vec<String> = (1..=count)
        .filter(|k| !by_shard.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    let failed: Vec<String> = by_shard
        .values()
        .filter(|r| !r.is_clean())
        .map(|r| {
            let first = r.failed.first().map_or("interrupted".to_string(), |f| {
                format!("{}: {}", f.path, f.error)
            });
            format!("{} ({} failed; {first})", r.shard, r.failed.len())
        })
        .collect();
    if !missing.is_empty() || !failed.is_empty() || !problems.is_empty() {
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("no report from shard(s) {}", missing.join(", ")));
        }
        if !failed.is_empty() {
            why.push(format!(
                "shard(s) {} did not finish cleanly: re-run them (`apply --shard K/N` redoes only their unfinished items)",
                failed.join("; ")
            ));
        }
        why.extend(problems);
        return Err(Error::Usage(format!(
            "refusing to finalize {}: {}",
            plan_file.display(),
            why.join("; ")
        )));
    }

    let quiet = json || ctx.verbosity == Verbosity::Quiet;
    let (plan, _scan, sides, done_before) = load_and_scan(plan_file, ctx, quiet).await?;
    let assignment: Assignment = shard::assign(&plan, count, splittable(&plan));
    let fsync = ctx.settings.fsync.value;
    let mut failures = 0u64;
    let mut assembled = 0u64;
    for (item, pieces) in assignment.pieces_by_item() {
        if done_before.contains(&item) {
            continue;
        }
        let sent: BTreeSet<(usize, u32)> = by_shard
            .values()
            .flat_map(|r| r.pieces_done.iter().copied())
            .collect();
        if let Some(gap) = pieces.iter().find(|p| !sent.contains(&(p.item, p.number))) {
            return Err(Error::Usage(format!(
                "refusing to finalize: piece {} of {} of {} is in no shard's report",
                gap.number + 1,
                gap.of,
                plan.items[item].path
            )));
        }
        match sync::pieces::assemble(&plan, &plan_id, &pieces, &sides.destination, fsync).await {
            Ok(()) => assembled += 1,
            Err(e) => {
                failures += 1;
                eprintln!(
                    "error: {}: cannot put the file together: {e}",
                    plan.items[item].path
                );
            }
        }
    }

    // What only finalize does: deletions, directory times (and the
    // directories themselves once more, so that their times are set).
    let mut last = plan.clone();
    for item in &mut last.items {
        let is_dir =
            item.src.as_ref().or(item.dst.as_ref()).map(|e| e.kind) == Some(EntryKind::Dir);
        let keep = shard::is_finalize_work(item) || (is_dir && item.action.transfers());
        if !keep {
            skip(item);
        }
    }
    for &i in &done_before {
        if last.items[i].action == SyncAction::Delete {
            skip(&mut last.items[i]);
        }
    }
    last.refresh_stats();
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(1024);
    let reporters: Vec<Box<dyn Reporter>> = if json {
        Vec::new()
    } else {
        vec![Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        })]
    };
    let consumer = tokio::spawn(crate::progress::consume(events_rx, reporters));
    let options = ExecOptions {
        jobs: ctx.settings.jobs.value,
        fsync,
        pause: None,
        conflicts: conflict_policy(&ctx.settings),
        resume: None,
        withhold_deletes: (failures > 0)
            .then(|| format!("{failures} cut file(s) could not be put together")),
        leave_for_finalize: false,
    };
    let report = sync::execute(
        Arc::new(last),
        sides.source,
        sides.destination,
        options,
        events_tx,
        ctx.cancel.clone(),
    )
    .await;
    let _ = consumer.await;

    let whole = Summary::of(&by_shard, &report, assembled, failures);
    if json {
        super::print_json_line(&serde_json::json!({ "event": "finalized", "summary": whole }))?;
    } else if ctx.verbosity != Verbosity::Quiet {
        println!(
            "Finalized {} shard(s): {} transferred, {} already done, {} cut file(s) put together, {} deleted, {} failed; {} sent by the shards.",
            count,
            crate::format::count(whole.transferred),
            crate::format::count(whole.already_done),
            crate::format::count(whole.assembled),
            crate::format::count(whole.deleted),
            crate::format::count(whole.failed),
            crate::format::bytes(whole.bytes_sent),
        );
    }
    Ok(if whole.failed > 0 || report.deletes_withheld > 0 {
        ExitStatus::Partial
    } else {
        ExitStatus::of_report(&report)
    })
}

/// The whole sharded run, as finalize tells it.
#[derive(Debug, Serialize)]
struct Summary {
    shards: u32,
    transferred: u64,
    already_done: u64,
    assembled: u64,
    deleted: u64,
    failed: u64,
    bytes_sent: u64,
    /// The slowest shard's time, seconds.
    longest_shard_s: f64,
}

impl Summary {
    fn of(
        reports: &BTreeMap<u32, ShardReport>,
        last: &ExecReport,
        assembled: u64,
        failures: u64,
    ) -> Summary {
        Summary {
            shards: reports.len() as u32,
            transferred: reports.values().map(|r| r.done.len() as u64).sum(),
            already_done: reports.values().map(|r| r.already_done.len() as u64).sum(),
            assembled,
            deleted: last.deleted,
            failed: last.failed + failures,
            bytes_sent: reports.values().map(|r| r.bytes_sent).sum(),
            longest_shard_s: reports.values().map(|r| r.duration_s).fold(0.0, f64::max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_shard("2/8"),
            Ok(ShardSpec::Given(ShardId { index: 2, count: 8 }))
        );
        assert_eq!(parse_shard("auto"), Ok(ShardSpec::Auto));
        for bad in ["0/4", "5/4", "1/0", "x/4", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_engine_names_its_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0"), ("JOB_COMPLETIONS", "4")]);
        assert_eq!(shard_from_env(&k8s), Ok(ShardId { index: 1, count: 4 }));
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(shard_from_env(&slurm), Ok(ShardId { index: 4, count: 4 }));
        let batch = env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
        ]);
        assert_eq!(shard_from_env(&batch), Ok(ShardId { index: 3, count: 3 }));
        let half = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert!(
            shard_from_env(&half)
                .unwrap_err()
                .contains("JOB_COMPLETIONS")
        );
        let none = env(&[]);
        assert!(shard_from_env(&none).unwrap_err().contains("--shard K/N"));
        let outside = env(&[("JOB_COMPLETION_INDEX", "4"), ("JOB_COMPLETIONS", "4")]);
        assert!(shard_from_env(&outside).is_err());
    }

    #[test]
    fn report_names() {
        assert!(is_report_name("shard-2-of-8.json"));
        assert!(!is_report_name("shard-2-of-8.json.tmp"));
        assert!(!is_report_name("plan.json"));
    }
}
