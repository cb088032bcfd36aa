//! A sync through the library, as `hugesync sync --yes SRC DST` makes it:
//! the same settings (config file, `HUGESYNC_*` environment), the same
//! session — both sides opened and checked, scanned, planned with restored
//! times, delta estimates, rebuild checks and cost, refused when unsafe —
//! executed with the engine's events printed as they come, and the same
//! exit code.
//!
//! ```sh
//! cargo run --example basic_sync -- ./data s3://my-bucket/data
//! ```
//!
//! Any two locations work (local paths, s3://, gs://, az://, sftp://,
//! mem://); credentials come from each store's usual chain (AWS_PROFILE, …).

use std::sync::Arc;

use hugesync::config::{Overrides, Settings, process_env};
use hugesync::error::ExitStatus;
use hugesync::progress::LineReporter;
use hugesync::sync::ScanProgress;
use hugesync::sync::session::{self, RunKind, Selectors, Session};
use hugesync::uri::Location;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(src), Some(dst)) = (args.next(), args.next()) else {
        eprintln!("usage: basic_sync SRC DST");
        std::process::exit(2);
    };
    let (source, destination) = (Location::parse(&src)?, Location::parse(&dst)?);
    let (settings, _config_file) = Settings::resolve(None, &process_env, Overrides::default())?;

    // Settings → options → both sides → scan → plan: pure data until run.
    let options = session::sync_options(&settings, Selectors::default(), (&source, &destination))?;
    let cancel = CancellationToken::new();
    let session = Session::open(&source, &destination, &options, &settings, cancel).await?;
    let Some(scanned) = session.scan(&options, &ScanProgress::default()).await else {
        return Err("interrupted".into());
    };
    let scan = scanned?;
    let plan = session.plan(source, destination, &scan, options).await?;
    println!(
        "plan: {} changes, {} bytes to send, {} saved by delta",
        plan.stats.changes(),
        plan.stats.bytes_to_send,
        plan.stats.bytes_saved
    );
    plan.check_safety()?;

    // Run, with the events as `hugesync sync` prints them.
    let options = session.exec_options(RunKind::Whole, session.withheld_deletes(&scan));
    let partial_scan = scan.error_count() > 0;
    drop(scan);
    let reporters: Vec<Box<dyn hugesync::progress::Reporter>> =
        vec![Box::new(LineReporter { verbose: true })];
    let report = session.execute(Arc::new(plan), options, reporters).await;
    println!(
        "done: {} copied, {} by delta, {} deleted, {} failed; {} bytes sent, {} saved",
        report.copied,
        report.delta,
        report.deleted,
        report.failed,
        report.bytes_sent,
        report.bytes_saved
    );
    let status = match ExitStatus::of_report(&report) {
        ExitStatus::Success if partial_scan => ExitStatus::Partial,
        status => status,
    };
    std::process::exit(status as i32);
}
