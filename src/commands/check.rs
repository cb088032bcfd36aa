//! `hugesync check SRC DST`: verifies without downloading.

use std::io::IsTerminal;
use std::time::Duration;

use super::pipeline::open_and_scan;
use super::{Context, Verbosity, print_json, report};
use crate::error::{Error, ExitStatus};
use crate::sync::{self, session};
use crate::uri::Location;

/// `hugesync check SRC DST`: both sides listed, then each pair compared by
/// the best checksum both hold (see `sync::check`).
pub(super) async fn check_command(
    args: crate::cli::CheckArgs,
    selectors: crate::cli::Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let mut options = session::sync_options(&ctx.settings, selectors, (&source, &destination))?;
    // Checksums are gathered by the check itself, only where needed.
    options.checksum = false;
    options.archive = false;
    let quiet = args.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, session) = open_and_scan(&source, &destination, &options, ctx, quiet).await?;
    let progress = std::sync::Arc::new(sync::check::CheckProgress::default());
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| check_bar(progress.clone()));
    let check_options = sync::check::CheckOptions {
        download: args.download,
        requests: options.list_requests,
    };
    let checked = tokio::select! {
        report = sync::check::check(&scan, &session.source, &session.destination, check_options, progress) => report,
        () = ctx.cancel.cancelled() => return Err(Error::Interrupted),
    };
    if let Some(bar) = bar {
        bar.abort();
    }
    if args.json {
        print_json(&checked)?;
    } else if ctx.verbosity != Verbosity::Quiet {
        report::print_check(&checked);
    }
    Ok(if !checked.alike() || scan.error_count() > 0 {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

/// The check's progress on stderr: pairs settled, bytes hashed, requests.
fn check_bar(progress: std::sync::Arc<sync::check::CheckProgress>) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("checking [{bar:30}] {pos}/{len} files  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            bar.set_length(progress.pairs.load(Ordering::Relaxed));
            bar.set_position(progress.settled.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} read, {} requests",
                crate::format::bytes(progress.bytes_read.load(Ordering::Relaxed)),
                crate::format::count(progress.requests.load(Ordering::Relaxed)),
            ));
        }
    })
}
