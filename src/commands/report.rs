//! Headless text: the plan table, scan notes and the final summary.

use std::fmt::Write as _;

use crate::format;
use crate::storage::ScanIssue;
use crate::sync::{ExecReport, SyncPlan};
use crate::types::SyncAction;

/// Which items the plan text lists one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Totals only.
    None,
    /// Every item that changes something.
    Changes,
    /// Every item, skipped ones too.
    All,
}

/// What `--checksum` compared: "3 pairs compared: 2 alike (MD5 2), 1
/// differ; 1 requests beyond the listings, 60 B of local files read".
fn describe_compared(c: &crate::sync::check::ContentCompared) -> String {
    let by: Vec<String> = c
        .alike
        .by_evidence()
        .into_iter()
        .map(|(name, n)| format!("{name} {}", format::count(n)))
        .collect();
    let mut text = format!(
        "{} pairs compared: {} alike",
        format::count(c.pairs),
        format::count(c.alike.total())
    );
    if !by.is_empty() {
        write!(text, " ({})", by.join(", ")).ok();
    }
    write!(text, ", {} differ", format::count(c.differ)).ok();
    if c.unsettled > 0 {
        write!(
            text,
            ", {} unsettled (their times decide)",
            format::count(c.unsettled)
        )
        .ok();
    }
    write!(
        text,
        "; {} requests beyond the listings, {} of local files read",
        format::count(c.requests),
        format::bytes(c.bytes_read)
    )
    .ok();
    text
}

/// The plan as a table grouped by action, with totals, written as it is
/// made: a million-item listing never sits in memory as one string.
pub fn write_plan_text(
    out: &mut impl std::io::Write,
    plan: &SyncPlan,
    listing: Listing,
) -> std::io::Result<()> {
    write_plan_head(out, plan)?;
    write_plan_items(out, &plan.items, listing)?;
    write_plan_tail(out, plan, crate::cost::estimate(plan))
}

/// What the plan syncs, how, and its totals by action.
pub fn write_plan_head(out: &mut impl std::io::Write, plan: &SyncPlan) -> std::io::Result<()> {
    let s = &plan.stats;
    writeln!(out, "Plan: {} → {}", plan.source, plan.destination)?;
    writeln!(
        out,
        "  scanned: source {} entries ({}), destination {} entries ({})",
        format::count(plan.scanned.source_entries),
        format::bytes(plan.scanned.source_bytes),
        format::count(plan.scanned.destination_entries),
        format::bytes(plan.scanned.destination_bytes),
    )?;
    if let Some(compared) = &plan.scanned.compared {
        writeln!(out, "  --checksum: {}", describe_compared(compared))?;
    }
    if let Some(check) = plan.rebuild_check_note() {
        writeln!(out, "  delta rebuilds: {check}")?;
    }
    let mut selection = plan.options.selection.describe();
    if let Some(list) = &plan.options.files_from {
        selection.push(format!(
            "--files-from ({} paths)",
            format::count(list.len() as u64)
        ));
    }
    if !selection.is_empty() {
        writeln!(out, "  selection: {}", selection.join(", "))?;
    }
    if let Some(backup) = &plan.options.backup {
        writeln!(out, "  backups: {}", backup.describe())?;
    }
    if let Some(class) = &plan.options.storage_class {
        match class.delta_consequence() {
            Some(consequence) => writeln!(out, "  storage class: {consequence}")?,
            None => writeln!(out, "  storage class: {}", class.name)?,
        }
    }
    if let Some(limit) = crate::bandwidth::limit() {
        writeln!(
            out,
            "  bandwidth: at most {}/s (--bwlimit), uploads and downloads together",
            format::bytes(limit.bytes_per_second())
        )?;
    }
    for action in SyncAction::ALL {
        let totals = s.totals(action);
        if totals.count == 0 {
            continue;
        }
        let size = if action == SyncAction::Skip || action == SyncAction::Metadata {
            String::new()
        } else {
            format::bytes(totals.bytes)
        };
        writeln!(
            out,
            "  {:<9} {:>12} {:>12}{}",
            action.name(),
            format::count(totals.count),
            size,
            if action == SyncAction::Delete {
                "   ← deleted at the destination"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

/// The items the listing shows, one line each.
pub fn write_plan_items(
    out: &mut impl std::io::Write,
    items: &[crate::sync::PlanItem],
    listing: Listing,
) -> std::io::Result<()> {
    if listing != Listing::None {
        for item in items {
            // Skips are listed when asked for, or when a selection flag
            // made them (the user wants to see what it held back).
            if item.action == SyncAction::Skip
                && listing != Listing::All
                && !item.reason.is_selection()
            {
                continue;
            }
            let size = item
                .src
                .as_ref()
                .or(item.dst.as_ref())
                .map_or(0, |e| e.size);
            write!(
                out,
                "    {:<9}{:>12}  {}  ({})",
                item.action.name(),
                format::bytes(size),
                item.path,
                item.reason.describe()
            )?;
            if item.action == SyncAction::Delta {
                write!(
                    out,
                    " send {}, saves {}",
                    format::bytes(item.bytes_to_send),
                    format::bytes(item.bytes_saved)
                )?;
            }
            if let Some(note) = &item.note {
                write!(out, " [{note}]")?;
            }
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// What the plan sends and what it costs (`cost`: the estimate of its items).
pub fn write_plan_tail(
    out: &mut impl std::io::Write,
    plan: &SyncPlan,
    cost: Option<crate::cost::CostEstimate>,
) -> std::io::Result<()> {
    let s = &plan.stats;
    if s.changes() == 0 {
        writeln!(out, "Nothing to do: the destination is up to date.")?;
    } else {
        writeln!(
            out,
            "To send: {}; saved by delta: {}; {} change(s), {} deletion(s).",
            format::bytes(s.bytes_to_send),
            format::bytes(s.bytes_saved),
            format::count(s.changes()),
            format::count(s.delete.count),
        )?;
        if let (Some(model), Some(cost)) = (&plan.cost_model, cost) {
            for line in cost.lines(model) {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// One line per scan note; errors first.
pub fn scan_notes(issues: &[&ScanIssue], verbose: bool) -> Vec<String> {
    let mut lines: Vec<String> = issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| format!("error: {}", i.message()))
        .collect();
    let skipped: Vec<&&ScanIssue> = issues.iter().filter(|i| !i.is_error()).collect();
    if verbose {
        lines.extend(skipped.iter().map(|i| format!("note: {}", i.message())));
    } else if let Some(first) = skipped.first() {
        lines.push(format!(
            "note: {}{}",
            first.message(),
            match skipped.len() {
                1 => String::new(),
                n => format!(" (and {} more; -v lists them)", n - 1),
            }
        ));
    }
    lines
}

/// The closing summary of an execution.
pub fn summary_text(report: &ExecReport, plan: &SyncPlan) -> String {
    let mut out = String::new();
    for line in report.summary_lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "Scanned {} source and {} destination entries.",
        format::count(plan.scanned.source_entries),
        format::count(plan.scanned.destination_entries),
    );
    out
}

/// `hugesync check`'s findings: what differs, then the counts and by what
/// evidence the rest were found alike.
pub fn print_check(report: &crate::sync::check::CheckReport) {
    for path in &report.missing {
        println!("missing  {path}  (at the source only)");
    }
    for path in &report.extra {
        println!("extra    {path}  (at the destination only)");
    }
    for difference in &report.differ {
        println!("differ   {}  ({})", difference.path, difference.why);
    }
    for unchecked in &report.unchecked {
        println!("error    {}  ({})", unchecked.path, unchecked.error);
    }
    let alike = &report.alike;
    let evidence: Vec<String> = alike
        .by_evidence()
        .into_iter()
        .map(|(name, n)| format!("{} by {name}", format::count(n)))
        .collect();
    println!(
        "{} alike{}, {} differ, {} missing, {} extra{}.",
        format::count(alike.total()),
        if evidence.is_empty() {
            String::new()
        } else {
            format!(" ({})", evidence.join(", "))
        },
        format::count(report.differ.len() as u64),
        format::count(report.missing.len() as u64),
        format::count(report.extra.len() as u64),
        if report.unchecked.is_empty() {
            String::new()
        } else {
            format!(
                ", {} not checked",
                format::count(report.unchecked.len() as u64)
            )
        },
    );
    println!(
        "{} read to hash, {} requests beyond the listings.",
        format::bytes(report.bytes_read),
        format::count(report.requests),
    );
    if alike.size_only > 0 {
        println!(
            "note: {} file(s) were compared by size alone: neither side holds a checksum of them the other can be compared with (--download compares their bytes).",
            format::count(alike.size_only)
        );
    }
}
