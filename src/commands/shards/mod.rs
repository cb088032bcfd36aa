//! A saved plan run as shards by a batch engine (`apply PLAN --shard K/N`),
//! then finished once (`finalize PLAN`). The plan's header says who does
//! what (`sync::shard`, written by `plan --shards N`); this module runs one
//! shard from its own parts (which one: `spec`), journals and reports what
//! it did where every worker can reach it (`journal`, `reports`), and
//! `finalize` finishes the run when every report is in and clean.

mod finalize;
mod journal;
mod reports;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::{Context, Error, Verbosity};
use crate::error::ExitStatus;
use crate::progress::{ExecEvent, LineReporter, Progress, Reporter};
use crate::storage::LookupOptions;
use crate::sync::execute::PlanToRun;
use crate::sync::plan::OpenedPlan;
use crate::sync::plan::parts::PlanParts;
use crate::sync::session::{RunKind, Session};
use crate::sync::shard::{
    self, IdRanges, Piece, SelectionCheck, ShardLayout, ShardSpec, Sides, shard_from_env,
};
use crate::sync::{self, PlanItem, SyncPlan};

pub(super) use finalize::finalize;
use journal::{Finished, Journal};
use reports::{CheckFigures, REPORT_FORMAT, ReportDir, ShardFailure, ShardReport, StaleEntries};

/// A plan written for shards, opened: its header and layout read, its
/// parts left where they are.
struct ShardedPlan {
    head: SyncPlan,
    parts: Arc<PlanParts>,
    layout: ShardLayout,
    id: String,
    /// Its directory or prefix.
    at: crate::uri::Location,
}

/// Opens the plan at `plan`, which must have been written for shards
/// (`count` of them, when given).
async fn open_sharded(plan: &str, count: Option<u32>, ctx: &Context) -> Result<ShardedPlan, Error> {
    let location = crate::uri::Location::parse(plan)?;
    let opened = OpenedPlan::open(&location, &ctx.settings.store_settings()).await?;
    let how = |n: &str| {
        format!(
            "write it with `hugesync plan SRC DST -o {plan} --shards {n}`, then run `hugesync apply {plan} --shard K/{n}` on each worker"
        )
    };
    let n = count.map_or("N".to_string(), |c| c.to_string());
    let PlanToRun::InParts { head, parts, .. } = opened.plan else {
        return Err(Error::Usage(format!(
            "{plan} is a plan file of an earlier version, which shards cannot run: {}",
            how(&n)
        )));
    };
    let Some(layout) = parts.layout().cloned() else {
        return Err(Error::Usage(format!(
            "{plan} was not written for shards: {}",
            how(&n)
        )));
    };
    if let Some(count) = count
        && count != layout.count
    {
        return Err(Error::Usage(format!(
            "{plan} was written for {} shards, not {count}: run `--shard K/{}`, or write it again with `--shards {count}`",
            layout.count, layout.count
        )));
    }
    Ok(ShardedPlan {
        head: Arc::unwrap_or_clone(head),
        parts,
        layout,
        id: opened.id,
        at: location,
    })
}

/// Opens both sides of the plan.
async fn open_sides(plan: &SyncPlan, ctx: &Context) -> Result<Session, Error> {
    Ok(Session::open(
        &plan.source,
        &plan.destination,
        &plan.options,
        &ctx.settings,
        ctx.cancel.clone(),
    )
    .await?)
}

/// How a shard or finalize looks entries up on the sides.
fn sides<'a>(session: &'a Session, plan: &SyncPlan, ctx: &Context) -> Sides<'a> {
    Sides {
        source: &session.source,
        destination: &session.destination,
        lookup: LookupOptions {
            symlinks: plan.options.archive,
            in_flight: ctx.settings.jobs.value.max(1),
        },
        diff: sync::plan::diff_options(&plan.source, &plan.destination, &plan.options),
    }
}

/// Refuses a selection with stale entries, as `apply` refuses a stale plan.
fn refuse_stale(check: &SelectionCheck) -> Result<(), Error> {
    match &check.first_stale {
        None => Ok(()),
        Some(first) => Err(sync::PlanError::Stale {
            count: check.stale as usize,
            first: first.display(),
        }
        .into()),
    }
}

/// Refuses, as stale, the first of `items` whose source is no longer what
/// the plan saw.
async fn refuse_changed_sources<'a>(
    sides: &Sides<'_>,
    items: impl Iterator<Item = &'a PlanItem>,
) -> Result<(), Error> {
    let items: Vec<&PlanItem> = items.collect();
    let paths: Vec<&crate::types::RelPath> = items.iter().map(|i| &i.path).collect();
    let (now, _) = sides
        .source
        .entries_at(&paths, paths.len() as u64, sides.lookup)
        .await?;
    match items
        .iter()
        .zip(&now)
        .find(|(item, now)| !sync::plan::same_entry(item.src.as_ref(), now.as_ref()))
    {
        Some((item, _)) => Err(sync::PlanError::Stale {
            count: 1,
            first: item.path.display(),
        }
        .into()),
        None => Ok(()),
    }
}

/// Items `ids` of the plan, read from the parts that hold them.
async fn read_items(
    parts: &PlanParts,
    ids: impl IntoIterator<Item = usize>,
) -> Result<BTreeMap<usize, PlanItem>, Error> {
    let wanted: BTreeSet<usize> = ids.into_iter().collect();
    let mut found = BTreeMap::new();
    let mut by_part: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &id in &wanted {
        if let Some(n) = parts.part_of(id) {
            by_part.entry(n).or_default().push(id);
        }
    }
    for (n, ids) in by_part {
        let first = parts.first_id(n);
        let items = parts.read(n).await?;
        for id in ids {
            if let Some(item) = items.get(id - first) {
                found.insert(id, item.clone());
            }
        }
    }
    Ok(found)
}

/// Records which items finished and failed, for the report and the journal.
#[derive(Default)]
struct Outcomes {
    done: IdRanges,
    failed: Vec<ShardFailure>,
}

struct Recorder {
    outcomes: Arc<Mutex<Outcomes>>,
    journal: tokio::sync::mpsc::UnboundedSender<Finished>,
}

impl Reporter for Recorder {
    fn event(&mut self, event: &ExecEvent, _: &Progress) {
        let Ok(mut outcomes) = self.outcomes.lock() else {
            return;
        };
        match event {
            ExecEvent::Finished { id, bytes_sent, .. } => {
                outcomes.done.insert(*id);
                let _ = self.journal.send(Finished::Item {
                    id: *id,
                    bytes: *bytes_sent,
                });
            }
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
    let started = std::time::Instant::now();
    let sharded = open_sharded(plan, Some(shard.count), ctx).await?;
    if run.dry_run {
        print_layout(&sharded, Some(shard.index), json)?;
        return Ok(ExitStatus::Success);
    }
    let ShardedPlan {
        head,
        parts,
        layout,
        id: plan_id,
        at,
    } = sharded;
    let reports = Arc::new(ReportDir::open(&at, report_dir, ctx).await?);
    let quiet = json || ctx.verbosity == Verbosity::Quiet;

    // What earlier attempts of this shard finished: its report, and the
    // journal a killed attempt left.
    let previous = reports
        .read(shard)
        .await
        .filter(|report| report.plan_id == plan_id);
    let (journaled, next_segment) = reports.read_journal(shard, &plan_id).await?;
    let mut finished_before = journaled.done.clone();
    let mut pieces_before: BTreeSet<(usize, u32)> = journaled.pieces_done.iter().copied().collect();
    if let Some(previous) = &previous {
        finished_before.extend(&previous.done);
        finished_before.extend(&previous.already_done);
        pieces_before.extend(previous.pieces_done.iter().copied());
    }

    // This shard's items: its runs, less what earlier attempts finished and
    // the files cut into pieces (sent piece by piece, below).
    let mut selection = shard::shard_selection(&layout, shard.index, finished_before.clone());
    let session = open_sides(&head, ctx).await?;
    let sides = sides(&session, &head, ctx);
    let check = shard::check_selection(&parts, &layout, &selection, &sides).await?;
    if let Some(first) = &check.first_stale {
        // Said in the report too, so that finalize names why it waits.
        let refused = ShardReport {
            done: finished_before.clone(),
            pieces_done: pieces_before.iter().copied().collect(),
            bytes_sent: journaled.bytes_sent + previous.as_ref().map_or(0, |p| p.bytes_sent),
            duration_s: started.elapsed().as_secs_f64(),
            stale: Some(StaleEntries {
                count: check.stale,
                first: first.display(),
            }),
            ..ShardReport::empty(&plan_id, shard)
        };
        reports.write(&refused).await?;
    }
    refuse_stale(&check)?;
    selection.done.extend(&check.done);

    // The pieces of cut files this shard sends, and their files' items,
    // whose sources are checked as the shard's own.
    let my_pieces: Vec<Piece> = layout
        .pieces_of(shard.index)
        .into_iter()
        .filter(|p| !pieces_before.contains(&(p.item, p.number)))
        .collect();
    let cut_items = read_items(&parts, my_pieces.iter().map(|p| p.item)).await?;
    refuse_changed_sources(&sides, cut_items.values()).await?;
    let piece_bytes_planned: u64 = my_pieces.iter().map(|p| p.len).sum();
    if !quiet {
        eprintln!(
            "Shard {shard} of plan {plan_id}: {} item(s), {} piece(s) of cut files, {} to send; {} already done. Checked {} entries ({} listing pages, {} lookups) from {} of the plan.",
            crate::format::count(check.stats.changes()),
            my_pieces.len(),
            crate::format::bytes(check.stats.bytes_to_send + piece_bytes_planned),
            crate::format::count(finished_before.count() + check.done.count()),
            crate::format::count(check.checked),
            crate::format::count(check.source_lookups.lists + check.destination_lookups.lists),
            crate::format::count(check.source_lookups.heads + check.destination_lookups.heads),
            crate::format::bytes(check.plan_bytes),
        );
    }
    // A shard changes the destination: asked for, as `apply` and `sync` do,
    // unless --yes (which a scheduled job passes).
    if !run.yes && (check.stats.changes() > 0 || !my_pieces.is_empty()) {
        super::pipeline::confirm(ctx).await?;
    }
    let figures = CheckFigures {
        entries: check.checked,
        plan_bytes_read: check.plan_bytes,
        parts_read: check.parts_read,
        source_lists: check.source_lookups.lists,
        source_heads: check.source_lookups.heads,
        destination_lists: check.destination_lookups.lists,
        destination_heads: check.destination_lookups.heads,
        ready_s: started.elapsed().as_secs_f64(),
    };
    let already_done = check.done.clone();

    let journal = Journal::start(reports.clone(), shard, plan_id.clone(), next_segment);
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Recorder {
        outcomes: outcomes.clone(),
        journal: journal.sender(),
    })];
    if !json {
        reporters.push(Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        }));
    }
    let head = SyncPlan {
        stats: check.stats.clone(),
        unlisted: Default::default(),
        ..head
    };
    let to_run = PlanToRun::InParts {
        head: Arc::new(head),
        parts: parts.clone(),
        only: Some(Arc::new(selection)),
    };
    let options = session.exec_options(RunKind::Shard, None);
    let report = session.execute(to_run, options, reporters).await;

    let mut outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|e| e.into_inner()));
    let (pieces_done, piece_bytes) = send_pieces(
        my_pieces,
        &cut_items,
        &plan_id,
        &session,
        &journal,
        &mut outcomes,
        ctx,
    )
    .await;
    journal.close().await?;

    let complete = !report.interrupted
        && !report.stopped_on_conflict
        && report.stopped_on_denial.is_none()
        && report.stopped_on_plan.is_none()
        && !ctx.cancel.is_cancelled();
    // A re-run adds to what the earlier attempts of this shard did.
    let mut done = outcomes.done;
    done.extend(&journaled.done);
    let mut all_pieces: Vec<(usize, u32)> = pieces_before.into_iter().collect();
    all_pieces.extend(pieces_done);
    all_pieces.sort_unstable();
    all_pieces.dedup();
    let mut already = already_done;
    let mut bytes_sent = report.bytes_sent + piece_bytes + journaled.bytes_sent;
    let mut duration_s = started.elapsed().as_secs_f64();
    if let Some(previous) = &previous {
        done.extend(&previous.done);
        already.extend(&previous.already_done);
        bytes_sent += previous.bytes_sent;
        duration_s += previous.duration_s;
    }
    let shard_report = ShardReport {
        format: REPORT_FORMAT.into(),
        plan_id,
        shard,
        complete,
        done,
        already_done: already,
        pieces_done: all_pieces,
        failed: outcomes.failed,
        bytes_sent,
        duration_s,
        checked: figures,
        stale: None,
    };
    reports.write(&shard_report).await?;
    let clean = shard_report.is_clean();
    if json {
        super::print_json_line(&serde_json::json!({ "event": "shard", "report": shard_report }))?;
    } else if ctx.verbosity != Verbosity::Quiet {
        println!(
            "Shard {shard}: {} done, {} piece(s), {} failed, {} sent in {:.1}s; report: {}",
            crate::format::count(shard_report.done.count()),
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

/// Sends this shard's pieces of cut files, `--jobs` at once, each journaled
/// as it is sent; returns the pieces sent and their bytes.
async fn send_pieces(
    pieces: Vec<Piece>,
    items: &BTreeMap<usize, PlanItem>,
    plan_id: &str,
    session: &Session,
    journal: &Journal,
    outcomes: &mut Outcomes,
    ctx: &Context,
) -> (Vec<(usize, u32)>, u64) {
    let jobs = ctx.settings.jobs.value.max(1);
    let fsync = ctx.settings.fsync.value;
    let mut sent_pieces = Vec::new();
    let mut bytes = 0;
    let mut running = tokio::task::JoinSet::new();
    let mut pending = pieces.into_iter();
    loop {
        while running.len() < jobs && !ctx.cancel.is_cancelled() {
            let Some(piece) = pending.next() else {
                break;
            };
            let Some(item) = items.get(&piece.item).cloned() else {
                continue;
            };
            let (plan_id, source, destination) = (
                plan_id.to_string(),
                session.source.clone(),
                session.destination.clone(),
            );
            running.spawn(async move {
                let sent =
                    sync::pieces::send_piece(&item, &plan_id, piece, &source, &destination, fsync)
                        .await;
                (piece, item.path, sent)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((piece, _, Ok(sent))) => {
                sent_pieces.push((piece.item, piece.number));
                bytes += sent;
                let _ = journal.sender().send(Finished::Piece {
                    item: piece.item,
                    number: piece.number,
                    bytes: sent,
                });
            }
            Ok((piece, path, Err(e))) => {
                let path = path.display();
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
            Err(e) => eprintln!("error: a piece's task failed: {e}"),
        }
    }
    (sent_pieces, bytes)
}

/// The memory one shard needs to run its share, transfers in flight aside:
/// what the process holds whatever the share, and the parts of the plan it
/// holds at once (four while checking, two while running).
pub(super) fn memory_needed(layout: &ShardLayout, index: u32, parts: &PlanParts) -> u64 {
    // Measured (docs/performance.md): a shard checking 100,000 entries of a
    // 10-million-object plan of S3 objects peaked at 72–77 MiB, four parts
    // of 10,000 items at once; shards of scripts/bench-shards.sh at 47–52 MiB.
    const BASE: u64 = 48 << 20;
    const PARTS_HELD: u64 = 4;
    const PER_ITEM_HELD: u64 = 1000;
    let own: u64 = layout
        .runs_of(index)
        .map(|run| (run.end - run.start) as u64)
        .sum();
    let largest_part = (0..parts.count())
        .map(|n| parts.ids_of(n).len() as u64)
        .max()
        .unwrap_or(0);
    BASE + PARTS_HELD * own.min(largest_part) * PER_ITEM_HELD
}

/// The shares of the plan just saved at `place` (`plan --shards`): on
/// standard output, or on stderr when the plan's JSON goes there.
pub(super) async fn print_saved_shares(
    place: &crate::sync::plan::parts::PlanPlace,
    at: &crate::uri::Location,
    json: bool,
) -> Result<(), Error> {
    let parts = PlanParts::open(place.clone())
        .await?
        .ok_or_else(|| sync::PlanError::NotFound {
            plan: at.to_string(),
        })?;
    let Some(layout) = parts.layout() else {
        return Ok(());
    };
    if json {
        print_shares(layout, &parts, None, false, &mut std::io::stderr().lock())
    } else {
        print_shares(layout, &parts, None, false, &mut std::io::stdout().lock())
    }
}

/// Every shard's share (`plan --shards`, `apply --shard -n`): items,
/// pieces, bytes, requests, runs, the memory a shard needs; `mine` marked.
fn print_layout(plan: &ShardedPlan, mine: Option<u32>, json: bool) -> Result<(), Error> {
    print_shares(
        &plan.layout,
        &plan.parts,
        mine,
        json,
        &mut std::io::stdout().lock(),
    )
}

pub(super) fn print_shares(
    layout: &ShardLayout,
    parts: &PlanParts,
    mine: Option<u32>,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), Error> {
    let shares: Vec<serde_json::Value> = layout
        .loads
        .iter()
        .enumerate()
        .map(|(k, load)| {
            let index = k as u32 + 1;
            serde_json::json!({
                "shard": format!("{index}/{}", layout.count),
                "items": load.items,
                "pieces": load.pieces,
                "bytes": load.bytes,
                "requests": load.requests,
                "runs": layout.runs_of(index).count(),
                "memory_bytes": memory_needed(layout, index, parts),
            })
        })
        .collect();
    let (bytes_ratio, requests_ratio) = layout.balance();
    let memory = shares
        .iter()
        .filter_map(|s| s["memory_bytes"].as_u64())
        .max()
        .unwrap_or(0);
    if json {
        super::print_json_line(&serde_json::json!({
            "event": "shares",
            "shard": mine.map(|k| format!("{k}/{}", layout.count)),
            "shards": shares,
            "largest_over_mean": { "bytes": bytes_ratio, "requests": requests_ratio },
            "memory_per_shard_bytes": memory,
        }))?;
        return Ok(());
    }
    for (k, share) in shares.iter().enumerate() {
        writeln!(
            out,
            "{} shard {}: {} item(s), {} piece(s), {} to send, {} request(s), {} run(s), needs {}",
            if mine == Some(k as u32 + 1) {
                "→"
            } else {
                " "
            },
            share["shard"].as_str().unwrap_or_default(),
            crate::format::count(share["items"].as_u64().unwrap_or(0)),
            share["pieces"],
            crate::format::bytes(share["bytes"].as_u64().unwrap_or(0)),
            crate::format::count(share["requests"].as_u64().unwrap_or(0)),
            share["runs"],
            crate::format::bytes(share["memory_bytes"].as_u64().unwrap_or(0)),
        )
        .map_err(Error::Output)?;
    }
    writeln!(
        out,
        "largest shard over the mean: {bytes_ratio:.3}× the bytes, {requests_ratio:.3}× the requests; memory per shard: {}",
        crate::format::bytes(memory)
    )
    .map_err(Error::Output)?;
    Ok(())
}
