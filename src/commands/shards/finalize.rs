//! `finalize PLAN`: the last step of a sharded run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::super::{Context, Error, Verbosity};
use super::reports::{ReportDir, ShardReport};
use super::{load_and_scan, load_saved, skip, splittable};
use crate::error::ExitStatus;
use crate::progress::{LineReporter, Reporter};
use crate::sync::session::RunKind;
use crate::sync::shard::{self, Assignment, ShardId};
use crate::sync::{self, ExecReport};
use crate::types::{EntryKind, SyncAction};

/// `finalize PLAN`: every shard's report present and clean, then the cut
/// files put together, then what must come last (deletions, directory
/// times), and the whole run's summary.
pub(in crate::commands) async fn finalize(
    plan: &str,
    report_dir: Option<&str>,
    json: bool,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let saved = load_saved(plan, ctx).await?;
    let plan_id = saved.id.clone();
    let reports_dir = ReportDir::open(&saved.at, report_dir, ctx).await?;
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
            saved.at
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
            saved.at,
            why.join("; ")
        )));
    }

    let quiet = json || ctx.verbosity == Verbosity::Quiet;
    let (plan, _scan, session, done_before) = load_and_scan(saved.plan, ctx, quiet).await?;
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
        match sync::pieces::assemble(&plan, &plan_id, &pieces, &session.destination, fsync).await {
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
    let report = session.execute(Arc::new(last), options, reporters).await;

    let whole = Summary::of(&by_shard, &report, assembled, failures);
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
