//! `finalize PLAN`: the last step of a sharded run. It scans neither tree:
//! what the shards finished comes from their reports, the cut files are put
//! together from the pieces the reports name, and each planned deletion is
//! looked up on both sides (its source still absent, its destination as
//! planned) before anything is deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::super::{Context, Error, Verbosity};
use super::reports::{ReportDir, ShardReport};
use super::{open_sharded, open_sides, read_items, refuse_changed_sources, refuse_stale, sides};
use crate::error::ExitStatus;
use crate::progress::{LineReporter, Reporter};
use crate::sync::execute::PlanToRun;
use crate::sync::plan::parts::{PartsWriter, PlanParts, TemporaryPlace};
use crate::sync::session::RunKind;
use crate::sync::shard::{self, ShardId};
use crate::sync::{self, ExecReport};
use crate::types::SyncAction;

/// `finalize PLAN`: every shard's report present and clean, then the cut
/// files put together, then what must come last (deletions, directory
/// times), and the whole run's summary.
pub(in crate::commands) async fn finalize(
    plan: &str,
    report_dir: Option<&str>,
    json: bool,
    yes: bool,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let sharded = open_sharded(plan, None, ctx).await?;
    let plan_id = sharded.id.clone();
    let count = sharded.layout.count;
    let reports_dir = ReportDir::open(&sharded.at, report_dir, ctx).await?;
    let by_shard = reports_of(&reports_dir, &plan_id, count, &sharded.at.to_string()).await?;

    let head = &sharded.head;
    let session = open_sides(head, ctx).await?;
    let sides = sides(&session, head, ctx);

    // Deletions and directories, checked before anything is done: read
    // from the parts that hold them alone, never the whole plan.
    let parts = &sharded.parts;
    let check = shard::check_later(parts, &sharded.layout, &sides).await?;
    refuse_stale(&check)?;

    // The cut files: every piece in a report, each file's source as
    // planned, then put together (unless an earlier finalize did).
    let sent: std::collections::BTreeSet<(usize, u32)> = by_shard
        .values()
        .flat_map(|r| r.pieces_done.iter().copied())
        .collect();
    for cut in &sharded.layout.cut {
        if let Some((gap, _)) = cut
            .pieces()
            .find(|(p, _)| !sent.contains(&(p.item, p.number)))
        {
            return Err(Error::Usage(format!(
                "refusing to finalize: piece {} of {} of item {} is in no shard's report",
                gap.number + 1,
                gap.of,
                cut.item
            )));
        }
    }
    let cut_items = read_items(parts, sharded.layout.cut.iter().map(|c| c.item)).await?;
    refuse_changed_sources(&sides, cut_items.values()).await?;
    // Finalize changes the destination (files put together, deletions):
    // said and asked for, unless --yes (which a scheduled job passes).
    let to_finish = check.stats.changes();
    if !yes && (to_finish > 0 || !sharded.layout.cut.is_empty()) {
        if !json && ctx.verbosity != Verbosity::Quiet {
            eprintln!(
                "Finalize plan {plan_id}: {} cut file(s) to put together, {} item(s) to finish (deletions, directories).",
                sharded.layout.cut.len(),
                crate::format::count(to_finish),
            );
        }
        super::super::pipeline::confirm(ctx).await?;
    }
    let paths: Vec<&crate::types::RelPath> = cut_items.values().map(|i| &i.path).collect();
    let (dst_now, _) = session
        .destination
        .entries_at(&paths, paths.len() as u64, sides.lookup)
        .await?;
    let dst_now: BTreeMap<usize, Option<crate::types::Entry>> =
        cut_items.keys().copied().zip(dst_now).collect();
    let fsync = ctx.settings.fsync.value;
    let (mut assembled, mut failures) = (0u64, 0u64);
    for cut in &sharded.layout.cut {
        let Some(item) = cut_items.get(&cut.item) else {
            continue;
        };
        // Put together by an earlier finalize (its source is as planned).
        if let (Some(src), Some(Some(dst))) = (&item.src, dst_now.get(&cut.item))
            && !sync::plan::same_entry(item.dst.as_ref(), Some(dst))
            && sync::diff::up_to_date(src, dst, &sides.diff)
        {
            continue;
        }
        let pieces: Vec<shard::Piece> = cut.pieces().map(|(p, _)| p).collect();
        match sync::pieces::assemble(item, &plan_id, &pieces, &session.destination, fsync).await {
            Ok(()) => assembled += 1,
            Err(e) => {
                failures += 1;
                eprintln!("error: {}: cannot put the file together: {e}", item.path);
            }
        }
    }

    let reporters: Vec<Box<dyn Reporter>> = if json {
        Vec::new()
    } else {
        vec![Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        })]
    };
    let withheld =
        (failures > 0).then(|| format!("{failures} cut file(s) could not be put together"));
    let options = session.exec_options(RunKind::Finalize, withheld);
    let (to_run, _temporary) = later_to_run(parts, head, &check.done).await?;
    let report = session.execute(to_run, options, reporters).await;

    let whole = Summary::of(&by_shard, &report, assembled, failures, check.done.count());
    if json {
        super::super::print_json_line(
            &serde_json::json!({ "event": "finalized", "summary": whole }),
        )?;
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

/// The later items still to run (not found done), as a temporary plan of
/// their own, written a part at a time.
async fn later_to_run(
    parts: &PlanParts,
    head: &sync::SyncPlan,
    done: &shard::IdRanges,
) -> Result<(PlanToRun, TemporaryPlace), Error> {
    let temporary = TemporaryPlace::new("finalize").await?;
    let mut writer = PartsWriter::new(&temporary.place, head.created_ns);
    for n in 0..parts.later_count() {
        for (id, item) in parts.read_later(n).await? {
            if item.action != SyncAction::Skip && shard::finalize_takes(&item) && !done.contains(id)
            {
                writer.push(&item).await?;
            }
        }
    }
    let written = sync::SyncPlan {
        stats: writer.stats().clone(),
        unlisted: Default::default(),
        ..head.head_only()
    };
    writer.finish(&written).await?;
    let to_run = PlanToRun::in_parts(Arc::new(written), Arc::new(temporary.open().await?));
    Ok((to_run, temporary))
}

/// Every shard's report of this plan, each present, clean and of this run;
/// anything else refuses, naming what is wrong.
async fn reports_of(
    dir: &ReportDir,
    plan_id: &str,
    count: u32,
    plan: &str,
) -> Result<BTreeMap<u32, ShardReport>, Error> {
    let mut by_shard: BTreeMap<u32, ShardReport> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut foreign = Vec::new();
    let mut found_any = false;
    for (name, parsed) in dir.read_all().await? {
        match parsed {
            Err(why) => problems.push(format!("{name}: {why}")),
            Ok(report) if report.shard.count != count => {
                if report.plan_id == plan_id {
                    problems.push(format!(
                        "{name}: shard {} belongs to a run of {} shards; the plan has {count}",
                        report.shard, report.shard.count
                    ));
                }
            }
            Ok(report) if report.plan_id != plan_id => {
                foreign.push(format!("{name} (plan {})", report.plan_id));
            }
            Ok(report) => {
                found_any = true;
                by_shard.insert(report.shard.index, report);
            }
        }
    }
    if !found_any && problems.is_empty() && foreign.is_empty() {
        return Err(Error::Usage(format!(
            "no shard report of this plan ({plan_id}) at {}: run `hugesync apply {plan} --shard K/{count}` for every shard first",
            dir.describe(ShardId { index: 1, count })
                .replace(&format!("shard-1-of-{count}.json"), ""),
        )));
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| !by_shard.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    let failed: Vec<String> = by_shard
        .values()
        .filter(|r| !r.is_clean())
        .map(|r| match &r.stale {
            Some(stale) => format!(
                "{} (refused: {} of its entries changed since the plan, first {}; make the plan again)",
                r.shard, stale.count, stale.first
            ),
            None => {
                let first = r.failed.first().map_or("interrupted".to_string(), |f| {
                    format!("{}: {}", f.path, f.error)
                });
                format!("{} ({} failed; {first})", r.shard, r.failed.len())
            }
        })
        .collect();
    if missing.is_empty() && failed.is_empty() && problems.is_empty() && foreign.is_empty() {
        return Ok(by_shard);
    }
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
    if !foreign.is_empty() {
        why.push(format!(
            "reports of another plan are in the same place: {} (give each plan its own --report-dir, or remove them)",
            foreign.join(", ")
        ));
    }
    why.extend(problems);
    Err(Error::Usage(format!(
        "refusing to finalize {plan}: {}",
        why.join("; ")
    )))
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
        deleted_before: u64,
    ) -> Summary {
        Summary {
            shards: reports.len() as u32,
            transferred: reports.values().map(|r| r.done.count()).sum(),
            already_done: reports
                .values()
                .map(|r| r.already_done.count())
                .sum::<u64>()
                + deleted_before,
            assembled,
            deleted: last.deleted,
            failed: last.failed + failures,
            bytes_sent: reports.values().map(|r| r.bytes_sent).sum(),
            longest_shard_s: reports.values().map(|r| r.duration_s).fold(0.0, f64::max),
        }
    }
}
