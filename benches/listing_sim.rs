//! Listing simulation on the in-memory store: N keys, every request delayed
//! as a network would (20 ms by default), pages of 1,000 keys. Lists the same
//! keys page after page and with many requests in flight, in the same run, and
//! prints both times, the requests made and the most in flight.
//!
//! `cargo bench --bench listing_sim -- [KEYS] [LATENCY_MS] [IN_FLIGHT]`
//! (defaults 1000000 20 64); scripts/bench-listing.sh runs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hugesync::retry::RetryPolicy;
use hugesync::storage::body::BodySource;
use hugesync::storage::listing::list_all;
use hugesync::storage::memory::faults::Faulty;
use hugesync::storage::memory::{MemoryOptions, MemoryStore};
use hugesync::storage::{Expect, ObjectMeta, ObjectStore, ScanCounter, SharedStore};

/// Two shapes of key space: one flat run of counters, and Hive-style
/// partitions (a directory per day, files numbered within it).
fn keys(shape: &str, n: usize) -> Vec<String> {
    match shape {
        "flat" => (0..n).map(|i| format!("part-{i:09}.parquet")).collect(),
        _ => (0..n)
            .map(|i| {
                let day = i / 2_000;
                format!(
                    "table/day={}-{:02}-{:02}/hour={:02}/part-{:05}.parquet",
                    2000 + day / 336,
                    1 + day / 28 % 12,
                    1 + day % 28,
                    i / 100 % 20,
                    i % 2_000
                )
            })
            .collect(),
    }
}

async fn fill(name: &str, keys: &[String]) {
    let store = MemoryStore::new(name, "", MemoryOptions::default(), &RetryPolicy::default());
    let empty = Bytes::new();
    let meta = ObjectMeta::default();
    for key in keys {
        store
            .put(
                key,
                BodySource::Memory(&empty),
                0,
                &meta,
                hugesync::storage::body::BodySums::NONE,
                Expect::Any,
            )
            .await
            .unwrap();
    }
}

async fn list(store: &dyn ObjectStore, in_flight: usize) -> (Duration, u64, usize, u64) {
    let started = Instant::now();
    let mut listed = 0u64;
    let stats = list_all(store, in_flight, &ScanCounter::default(), |found| {
        listed += found.objects.len() as u64;
    })
    .await
    .unwrap();
    (
        started.elapsed(),
        stats.requests,
        stats.most_in_flight,
        listed,
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let latency = Duration::from_millis(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20));
    let in_flight: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for shape in ["flat", "partitions"] {
            let name = format!("sim-{shape}");
            fill(&name, &keys(shape, n)).await;
            let inner: SharedStore = Arc::new(MemoryStore::new(
                &name,
                "",
                MemoryOptions::default(),
                &RetryPolicy::default(),
            ));
            let store = Faulty::new(inner, latency);
            let (one, one_requests, _, one_listed) = list(&store, 1).await;
            let (many, many_requests, most, many_listed) = list(&store, in_flight).await;
            assert_eq!(one_listed, n as u64);
            assert_eq!(many_listed, n as u64);
            println!(
                "{shape}: {n} keys, {} ms a request, pages of 1000: sequential {:.2} s ({one_requests} requests); \
                 {in_flight} in flight {:.2} s ({many_requests} requests, at most {most} at once) -> {:.1}x faster",
                latency.as_millis(),
                one.as_secs_f64(),
                many.as_secs_f64(),
                one.as_secs_f64() / many.as_secs_f64()
            );
        }
    });
}
