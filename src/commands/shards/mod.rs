//! A saved plan run as shards by a batch engine (`apply PLAN --shard K/N`),
//! then finished once (`finalize PLAN`). `sync::shard` decides who does what;
//! this module runs one shard (which one: `spec`), keeps its report where
//! every worker can reach it (`reports`), and `finalize` finishes the run
//! when every report is in and clean.

mod finalize;
mod reports;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::pipeline::open_and_scan;
use super::{Context, Error, Verbosity};
use crate::error::ExitStatus;
use crate::progress::{ExecEvent, LineReporter, Progress, Reporter};
use crate::sync::session::{RunKind, Session};
use crate::sync::shard::{self, Piece, ShardId, ShardSpec, Unit, shard_from_env};
use crate::sync::{self, Scan, SyncPlan};
use crate::types::{EntryKind, SyncAction};

pub(super) use finalize::finalize;
use reports::{REPORT_FORMAT, ReportDir, ShardFailure, ShardReport};

/// The saved plan a shard or `finalize` names.
async fn load_saved(plan: &str, ctx: &Context) -> Result<sync::plan::SavedPlan, Error> {
    let location = crate::uri::Location::parse(plan)?;
    Ok(SyncPlan::load_saved(&location, &ctx.settings.store_settings()).await?)
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
    plan: SyncPlan,
    ctx: &Context,
    quiet: bool,
) -> Result<(SyncPlan, Scan, Session, BTreeSet<usize>), Error> {
    let (scan, session) =
        open_and_scan(&plan.source, &plan.destination, &plan.options, ctx, quiet).await?;
    let diff = sync::plan::diff_options(&plan.source, &plan.destination, &plan.options);
    let mut done = BTreeSet::new();
    let mut stale = Vec::new();
    for (i, item) in plan.items.iter().enumerate() {
        if item.action == SyncAction::Skip {
            continue;
        }
        let src_now = scan.source.manifest.get(&item.path);
        let dst_now = scan.destination.manifest.get(&item.path);
        if !sync::plan::same_entry(item.src.as_ref(), src_now.as_ref()) {
            stale.push(item.path.display());
            continue;
        }
        if sync::plan::same_entry(item.dst.as_ref(), dst_now.as_ref()) {
            continue;
        }
        let finished = match (item.action, src_now, dst_now) {
            (SyncAction::Delete, _, None) => true,
            (_, Some(src), Some(dst)) if item.action != SyncAction::Delete => {
                sync::diff::up_to_date(&src, &dst, &diff)
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
    Ok((plan, scan, session, done))
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
    plan: &str,
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
    let saved = load_saved(plan, ctx).await?;
    if run.dry_run {
        return print_shares(&saved.plan, shard, json);
    }
    let plan_id = saved.id;
    let reports = ReportDir::open(&saved.at, report_dir, ctx).await?;
    let started = std::time::Instant::now();
    let quiet = json || ctx.verbosity == Verbosity::Quiet;
    let (plan, _scan, session, done_before) = load_and_scan(saved.plan, ctx, quiet).await?;
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
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Recorder(outcomes.clone()))];
    if !json {
        reporters.push(Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        }));
    }
    let options = session.exec_options(RunKind::Shard, None);
    let (source, destination) = (session.source.clone(), session.destination.clone());
    let report = session.execute(Arc::new(part), options, reporters).await;

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
    let complete = !report.interrupted
        && !report.stopped_on_conflict
        && report.stopped_on_denial.is_none()
        && !ctx.cancel.is_cancelled();
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
fn print_shares(plan: &SyncPlan, shard: ShardId, json: bool) -> Result<ExitStatus, Error> {
    let assignment = shard::assign(plan, shard.count, splittable(plan));
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
