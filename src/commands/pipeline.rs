//! What the commands that run a plan share: both sides opened and scanned
//! through the engine's session (a spinner on a terminal), the plan
//! printed and confirmed, the run reported.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::printed::{PlanOutput, print_plan_to_run};
use super::{Context, Listing, Verbosity, listing_for, print_json_line, report};
use crate::cli::RunFlags;
use crate::cost::Usage;
use crate::error::{Error, ExitStatus};
use crate::progress::{BarReporter, JsonLinesReporter, LineReporter, Reporter};
use crate::sync::execute::PlanToRun;
use crate::sync::session::{RunKind, Session};
use crate::sync::{self, Scan, ScanProgress, SyncOptions};
use crate::uri::Location;

/// Opens both sides and scans them (with a spinner on a terminal unless
/// `quiet`); what the scan passed over is printed.
pub(super) async fn open_and_scan(
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
    ctx: &Context,
    quiet: bool,
) -> Result<(Scan, Session), Error> {
    let session = Session::open(
        source,
        destination,
        options,
        &ctx.settings,
        ctx.cancel.clone(),
    )
    .await?;
    let progress = ScanProgress::default();
    let spinner =
        (!quiet && std::io::stderr().is_terminal()).then(|| scan_spinner(progress.clone()));
    let scanned = session.scan(options, &progress).await;
    if let Some(spinner) = spinner {
        spinner.abort();
    }
    let scan = scanned.ok_or(Error::Interrupted)??;
    print_scan_notes(&scan, ctx);
    Ok((scan, session))
}

/// What a run still needs from the scans once the plan is made. The manifests
/// themselves are dropped before anything executes: on a large tree they are
/// the biggest thing in memory after the plan.
pub(super) struct ScanVerdict {
    /// Some entries could not be read: the run is at best a partial success.
    pub(super) partial: bool,
    pub(super) withhold_deletes: Option<String>,
}

impl ScanVerdict {
    pub(super) fn of(scan: &Scan, session: &Session) -> ScanVerdict {
        ScanVerdict {
            partial: scan.error_count() > 0,
            withhold_deletes: session.withheld_deletes(scan),
        }
    }
}

/// What the scans passed over or could not read, on stderr unless -q (the exit
/// code reports unreadable entries either way).
pub(super) fn print_scan_notes(scan: &Scan, ctx: &Context) {
    for line in scan_notes(scan, ctx) {
        eprintln!("{line}");
    }
}

/// What the scans passed over or could not read, a line each (none with -q).
pub(super) fn scan_notes(scan: &Scan, ctx: &Context) -> Vec<String> {
    if ctx.verbosity == Verbosity::Quiet {
        return Vec::new();
    }
    let issues: Vec<_> = scan
        .source
        .issues
        .iter()
        .chain(&scan.destination.issues)
        .collect();
    report::scan_notes(&issues, ctx.verbosity == Verbosity::Verbose)
}

/// A stderr spinner with both sides' live counts while a scan runs.
fn scan_spinner(progress: ScanProgress) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new_spinner();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let started = std::time::Instant::now();
        loop {
            tick.tick().await;
            let elapsed = started.elapsed();
            let mut message = format!(
                "scanning: source {}, destination {}",
                progress.source.describe(elapsed),
                progress.destination.describe(elapsed),
            );
            if let Some(content) = progress.content.describe() {
                message = format!("comparing content (--checksum): {content}");
            }
            bar.set_message(message);
            bar.tick();
        }
    })
}

/// Prints, confirms and executes a plan; the common tail of `sync` and
/// `apply`. `counted`: what the plan's items cost, where a pass over them
/// counted it already.
pub(super) async fn finish_run(
    plan: PlanToRun,
    counted: Option<Usage>,
    (scan, session): (ScanVerdict, Session),
    run: &RunFlags,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let partial_scan = scan.partial;
    let head = plan.head().clone();
    let human = !run.json && ctx.verbosity != Verbosity::Quiet;
    if run.dry_run {
        if run.json {
            print_plan_to_run(&plan, PlanOutput::Json, counted).await?;
        } else if human {
            print_plan_to_run(&plan, PlanOutput::Text(listing_for(ctx.verbosity)), counted).await?;
        }
        return Ok(if partial_scan {
            ExitStatus::Partial
        } else {
            ExitStatus::Success
        });
    }
    if human {
        let listing = if ctx.verbosity == Verbosity::Verbose {
            Listing::Changes
        } else {
            Listing::None
        };
        print_plan_to_run(&plan, PlanOutput::Text(listing), counted).await?;
    }
    // With nothing to change, the run still removes the temp files dead runs
    // left in the destination (a connection dropped before their removal):
    // they are HugeSync's own, so no confirmation is asked for them.
    if head.stats.changes() == 0 && head.leftovers.is_empty() {
        if run.json {
            // A script reading the events gets its summary either way.
            let report = sync::ExecReport {
                skipped: head.stats.skip.count,
                ..sync::ExecReport::default()
            };
            print_json_line(&serde_json::json!({ "event": "summary", "report": report }))?;
        }
        return Ok(if partial_scan {
            ExitStatus::Partial
        } else {
            ExitStatus::Success
        });
    }
    head.check_safety()?;
    if !run.yes && head.stats.changes() > 0 {
        confirm(ctx).await?;
    }

    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if run.json {
        reporters.push(Box::new(JsonLinesReporter));
    } else {
        reporters.push(Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        }));
        if ctx.settings.progress.value && std::io::stderr().is_terminal() {
            reporters.push(Box::new(BarReporter::new()));
        }
    }
    let options = session.exec_options(RunKind::Whole, scan.withhold_deletes);
    let report = session.execute(plan, options, reporters).await;

    if run.json {
        print_json_line(&serde_json::json!({ "event": "summary", "report": report }))?;
    } else if ctx.verbosity != Verbosity::Quiet {
        print!("{}", report::summary_text(&report, &head));
    }
    Ok(match ExitStatus::of_report(&report) {
        ExitStatus::Success if partial_scan => ExitStatus::Partial,
        status => status,
    })
}

/// Asks on the terminal; refuses when nobody can answer.
pub(super) async fn confirm(ctx: &Context) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "refusing to run without confirmation: stdin is not a terminal; pass --yes to run, or --dry-run to only see the plan".into(),
        ));
    }
    eprint!("Proceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    let line = tokio::select! {
        answer = answer => answer.map_err(|e| Error::Output(std::io::Error::other(e)))?.map_err(Error::Output)?,
        () = ctx.cancel.cancelled() => return Err(Error::Interrupted),
    };
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was changed".into()))
    }
}
