//! A sync planned and executed through the library, as `hugesync sync --yes`
//! does it: scan both sides, build the plan, estimate its deltas, execute it
//! on a background task and print the engine's events as they come.
//!
//! ```sh
//! cargo run --example basic_sync -- ./data s3://my-bucket/data
//! ```
//!
//! Any two locations work (local paths, s3://, gs://, az://, sftp://);
//! credentials come from each store's usual chain (AWS_PROFILE, …).

use std::sync::Arc;

use hugesync::progress::ExecEvent;
use hugesync::storage::{Storage, StoreSettings};
use hugesync::sync::{self, ExecOptions, ScanProgress, SyncOptions};
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
    sync::check_locations(&source, &destination)?;

    // Scan → plan: pure data until `execute`.
    let stores = StoreSettings::default();
    let source_store = Storage::open(&source, &stores).await?;
    let destination_store = Storage::open(&destination, &stores).await?;
    let options = SyncOptions::default();
    let scan = sync::scan(
        &source_store,
        &destination_store,
        &options,
        &ScanProgress::default(),
    )
    .await?;
    let mut plan = sync::build_plan(source, destination, &scan, options);
    sync::estimate::estimate_deltas(&mut plan, &source_store, &destination_store).await;
    println!(
        "plan: {} items, {} bytes to send, {} saved by delta",
        plan.items.len(),
        plan.stats.bytes_to_send,
        plan.stats.bytes_saved
    );

    // Execute on a task of its own; the events arrive on a channel.
    let (events, mut received) = tokio::sync::mpsc::channel(1024);
    let options = ExecOptions {
        jobs: 8,
        fsync: true,
        pause: None,
        conflicts: Default::default(),
        resume: None,
        withhold_deletes: None,
        leave_for_finalize: false,
    };
    let run = tokio::spawn(sync::execute(
        Arc::new(plan),
        source_store,
        destination_store,
        options,
        events,
        CancellationToken::new(),
    ));
    while let Some(event) = received.recv().await {
        match event {
            ExecEvent::Finished {
                path,
                action,
                bytes_sent,
                bytes_saved,
                ..
            } => println!("{action:?} {path}: sent {bytes_sent}, saved {bytes_saved}"),
            ExecEvent::Failed { path, error, .. } => println!("failed {path}: {error}"),
            ExecEvent::Warning { message } => println!("warning: {message}"),
            _ => {}
        }
    }
    let report = run.await?;
    println!(
        "done: {} copied, {} by delta, {} deleted, {} failed; {} bytes sent, {} saved",
        report.copied,
        report.delta,
        report.deleted,
        report.failed,
        report.bytes_sent,
        report.bytes_saved
    );
    if report.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
