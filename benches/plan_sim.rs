//! Planning simulation on the in-memory store: both sides hold N objects
//! (Hive-style keys, 1% of them changed in size at the source), and a plan is
//! made as `hugesync plan` makes it. Prints the scan and plan times and how
//! much the peak RSS grew over the filled stores: the planner's own memory per
//! item, the figure issue #28 sets a target for (≤ 150 B/item at 10M).
//!
//! `cargo bench --bench plan_sim -- [ITEMS]` (default 1000000).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hugesync::config::{Overrides, Settings};
use hugesync::retry::RetryPolicy;
use hugesync::storage::body::BodySource;
use hugesync::storage::memory::{MemoryOptions, MemoryStore};
use hugesync::storage::{Expect, ObjectMeta, ObjectStore, Storage};
use hugesync::sync::ScanProgress;
use hugesync::sync::session::{self, Selectors, Session};
use tokio_util::sync::CancellationToken;

/// The process's peak resident set so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn key(i: usize) -> String {
    format!(
        "table/day={:04}/hour={:02}/part-{:05}.parquet",
        i / 2_000,
        i / 100 % 20,
        i % 2_000
    )
}

async fn fill(name: &str, n: usize, changed: impl Fn(usize) -> bool) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new(
        name,
        "",
        MemoryOptions::default(),
        &RetryPolicy::default(),
    ));
    let one = Bytes::from_static(b"x");
    let two = Bytes::from_static(b"xy");
    let meta = ObjectMeta::default();
    for i in 0..n {
        let body = if changed(i) { &two } else { &one };
        store
            .put(
                &key(i),
                BodySource::Memory(body),
                body.len() as u64,
                &meta,
                None,
                Expect::Any,
            )
            .await
            .unwrap();
    }
    store
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let env: HashMap<String, String> = [
        ("XDG_CONFIG_HOME", "/nonexistent/hugesync-bench"),
        ("HOME", "/nonexistent/hugesync-bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let settings = Settings::resolve(None, &|name| env.get(name).cloned(), Overrides::default())
        .unwrap()
        .0;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let source = fill("plan-sim-src", n, |i| i % 100 == 0).await;
        let destination = fill("plan-sim-dst", n, |_| false).await;
        let filled = peak_rss();
        let (source, destination) = (
            Storage::Object(source as Arc<dyn ObjectStore>),
            Storage::Object(destination as Arc<dyn ObjectStore>),
        );
        let (from, to) = (source.location(), destination.location());
        let options = session::sync_options(&settings, Selectors::default(), (&from, &to)).unwrap();
        let session = Session::with_stores(source, destination, &settings, CancellationToken::new());
        let started = Instant::now();
        let scan = session
            .scan(&options, &ScanProgress::default())
            .await
            .unwrap()
            .unwrap();
        let scanned = started.elapsed();
        let plan = session.plan(from, to, &scan, options).await.unwrap();
        let planned = started.elapsed() - scanned;
        let grown = peak_rss().saturating_sub(filled);
        let items = plan.items.len();
        println!(
            "plan of {n} objects a side (memory store, 1% changed): scan {:.2} s, plan {:.2} s, \
             {items} plan items; peak RSS grew {} MiB over the filled stores = {} B per object a side",
            scanned.as_secs_f64(),
            planned.as_secs_f64(),
            grown >> 20,
            grown / n as u64
        );
    });
}
