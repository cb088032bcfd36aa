//! Planning simulation at 10⁷–10⁸ objects: both sides are in-memory stores
//! whose objects are generated from their index, not stored (sizes, times and
//! ETags a function of it; 1% of them changed at the source), every listing
//! request delayed as a network would (20 ms by default), pages of 1,000 keys.
//!
//! It makes the plan as `hugesync plan -o DIR` does (scan both sides, diff,
//! save in parts as it is made) and prints the scan and plan times, the peak
//! RSS growth per object and the plan's bytes. With `--sequential` it also
//! times one side listed page after page against the parallel listing, in the
//! same run.
//!
//! `cargo bench --bench plan_sim -- [ITEMS] [LATENCY_MS] [--sequential]
//! [--list-requests N] [--budget SIZE]` (defaults 1000000 20; the parallel
//! listing keeps the store's default of requests in flight, 32, unless N is
//! given; the budget defaults to the setting's, half of the machine's
//! memory). scripts/bench-plan-sim.sh runs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/generated.rs"]
mod generated;

use generated::{generated, key, peak_rss, quoted_hex};
use hugesync::config::{Overrides, Settings};
use hugesync::storage::listing::list_all;
use hugesync::storage::{ObjectStore, ScanCounter, Storage};
use hugesync::sync::ScanProgress;
use hugesync::sync::plan::parts::PlanPlace;
use hugesync::sync::session::{self, Keep, Saving, Selectors, Session};
use hugesync::uri::Location;
use tokio_util::sync::CancellationToken;

fn main() {
    assert_eq!(key(61_234), "table/day=00012/part-01234.parquet");
    assert_eq!(quoted_hex(&[0xab; 16]), format!("\"{}\"", "ab".repeat(16)));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut numbers = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .filter(|a| a.parse::<u64>().is_ok());
    let n: u64 = numbers
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let latency = Duration::from_millis(numbers.next().and_then(|a| a.parse().ok()).unwrap_or(20));
    let sequential = args.iter().any(|a| a == "--sequential");
    let list_requests: Option<usize> = args
        .iter()
        .position(|a| a == "--list-requests")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let budget = args
        .iter()
        .position(|a| a == "--budget")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut env: HashMap<String, String> = [
        ("XDG_CONFIG_HOME", "/nonexistent/hugesync-bench"),
        ("HOME", "/nonexistent/hugesync-bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(budget) = &budget {
        env.insert("HUGESYNC_MEMORY_BUDGET".into(), budget.clone());
    }
    let settings = Settings::resolve(None, &|name| env.get(name).cloned(), Overrides::default())
        .unwrap()
        .0;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let source = generated("plan-sim-src", n, latency, 100);
        let destination = generated("plan-sim-dst", n, latency, 0);

        if sequential {
            // The same listing, page after page and then many at once.
            let mut times = Vec::new();
            for in_flight in [1, list_requests.unwrap_or(source.info().kind.list_requests)] {
                let started = Instant::now();
                let mut listed = 0u64;
                let stats = list_all(source.as_ref(), in_flight, &ScanCounter::default(), |found| {
                    listed += found.objects.len() as u64;
                })
                .await
                .unwrap();
                assert_eq!(listed, n);
                let took = started.elapsed();
                println!(
                    "listing {n} keys, {in_flight} request(s) in flight: {:.1} s, {} requests, at most {} in flight",
                    took.as_secs_f64(),
                    stats.requests,
                    stats.most_in_flight
                );
                times.push(took);
            }
            println!(
                "parallel listing: {:.1}x faster than sequential",
                times[0].as_secs_f64() / times[1].as_secs_f64()
            );
        }

        let baseline = peak_rss();
        let (from, to) = (
            Location::parse("mem://plan-sim-src/").unwrap(),
            Location::parse("mem://plan-sim-dst/").unwrap(),
        );
        let options = session::sync_options(&settings, Selectors::default(), (&from, &to)).unwrap();
        let session = Session::with_stores(
            Storage::Object(source as Arc<dyn ObjectStore>),
            Storage::Object(destination as Arc<dyn ObjectStore>),
            &settings,
            CancellationToken::new(),
        );
        let started = Instant::now();
        let scan = session
            .scan(&options, &ScanProgress::default())
            .await
            .unwrap()
            .unwrap();
        let scanned = started.elapsed();
        let spilled = scan.source.manifest.spilled_bytes() + scan.destination.manifest.spilled_bytes();
        let held = scan.source.manifest.encoded_bytes() + scan.destination.manifest.encoded_bytes();
        let dir = tempfile::tempdir().unwrap();
        let at = Location::Local(dir.path().join("plan"));
        let place = PlanPlace::open(&at, &settings.store_settings()).await.unwrap();
        let (plan, _) = session
            .plan_into((from, to), scan, options, &place, Saving::keeping(Keep::Changes))
            .await
            .unwrap();
        let planned = started.elapsed() - scanned;
        let grown = peak_rss().saturating_sub(baseline);
        let plan_bytes: u64 = std::fs::read_dir(dir.path().join("plan"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        println!(
            "plan -o of {n} objects a side ({} ms a request, 1% changed): scan {:.1} s, plan {:.1} s; \
             {} changes, {} unchanged counted; scans held {} MiB in memory, spilled {} MiB; \
             peak RSS grew {} MiB = {} B per object; plan {:.1} MiB ({:.1} B per object)",
            latency.as_millis(),
            scanned.as_secs_f64(),
            planned.as_secs_f64(),
            plan.stats.changes(),
            plan.unlisted.count,
            held >> 20,
            spilled >> 20,
            grown >> 20,
            grown / n,
            plan_bytes as f64 / f64::from(1 << 20),
            plan_bytes as f64 / n as f64,
        );
    });
}
