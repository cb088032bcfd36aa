//! Sharding simulation at 10⁷ objects: both sides are generated buckets
//! (`common/generated.rs`; every listing request and HEAD delayed, 20 ms by
//! default, and counted). Every source object differs from its destination
//! (a plan of N uploads) and 1% of the destination's are named apart (an
//! upload and a deletion each), so the plan lists about 1.01 N items.
//!
//! Each step is its own process, so that its peak RSS is its own:
//!
//! - `plan DIR N LATENCY_MS SHARDS`: scans both sides and writes the plan in
//!   parts at DIR, divided into SHARDS shards, as `plan -o DIR --shards`.
//! - `apply DIR N LATENCY_MS`: what one `apply` does before its first
//!   transfer: both sides scanned, every part read and checked against them.
//! - `shard DIR N LATENCY_MS K`: what shard K does before its first transfer:
//!   the header and its own parts read, its entries looked up.
//! - `finalize DIR N LATENCY_MS`: what finalize looks up before deleting.
//!
//! Each prints one line of `key=value` figures. scripts/bench-shard-sim.sh
//! runs them and compares a shard with a hundredth of an apply.

#[path = "common/generated.rs"]
mod generated;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use generated::{Generated, generated, generated_with, peak_rss};
use hugesync::config::{Overrides, Settings};
use hugesync::storage::{LookupOptions, ObjectStore, Storage};
use hugesync::sync::ScanProgress;
use hugesync::sync::execute::PlanToRun;
use hugesync::sync::plan::parts::{PlanParts, PlanPlace};
use hugesync::sync::session::{self, Keep, Saving, Selectors, Session};
use hugesync::sync::shard::{self, IdRanges, Sides};
use hugesync::uri::Location;
use tokio_util::sync::CancellationToken;

fn settings() -> Settings {
    let env = |name: &str| match name {
        "XDG_CONFIG_HOME" | "HOME" => Some("/nonexistent/hugesync-bench".to_string()),
        _ => None,
    };
    Settings::resolve(None, &env, Overrides::default())
        .unwrap()
        .0
}

struct World {
    source: Arc<Generated>,
    destination: Arc<Generated>,
    session: Session,
    settings: Settings,
}

fn world(n: u64, latency: Duration) -> World {
    let settings = settings();
    let source = generated("shard-sim-src", n, latency, 1);
    let destination = generated_with("shard-sim-dst", n, latency, 0, 100);
    let session = Session::with_stores(
        Storage::Object(source.clone() as Arc<dyn ObjectStore>),
        Storage::Object(destination.clone() as Arc<dyn ObjectStore>),
        &settings,
        CancellationToken::new(),
    );
    World {
        source,
        destination,
        session,
        settings,
    }
}

impl World {
    fn requests(&self) -> String {
        format!(
            "lists={} heads={}",
            self.source.lists.load(Ordering::Relaxed)
                + self.destination.lists.load(Ordering::Relaxed),
            self.source.heads.load(Ordering::Relaxed)
                + self.destination.heads.load(Ordering::Relaxed),
        )
    }

    fn sides(&self, parts: &PlanParts) -> Sides<'_> {
        let head = parts.plan_without_items();
        Sides {
            source: &self.session.source,
            destination: &self.session.destination,
            lookup: LookupOptions {
                symlinks: false,
                in_flight: self.settings.jobs.value.max(1),
            },
            diff: hugesync::sync::plan::diff_options(
                &head.source,
                &head.destination,
                &head.options,
            ),
        }
    }
}

async fn open(dir: &str, settings: &Settings) -> PlanParts {
    let place = PlanPlace::open(&Location::Local(dir.into()), &settings.store_settings())
        .await
        .unwrap();
    PlanParts::open(place).await.unwrap().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let step = args.first().map(String::as_str).unwrap_or("");
    let dir = args.get(1).cloned().unwrap_or_default();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let n = number(2, 10_000_000);
    let latency = Duration::from_millis(number(3, 20));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let world = world(n, latency);
        let started = Instant::now();
        match step {
            "plan" => {
                let shards = number(4, 100) as u32;
                let (from, to) = (
                    Location::parse("mem://shard-sim-src/").unwrap(),
                    Location::parse("mem://shard-sim-dst/").unwrap(),
                );
                let mut options =
                    session::sync_options(&world.settings, Selectors::default(), (&from, &to))
                        .unwrap();
                options.delete = true;
                let scan = world
                    .session
                    .scan(&options, &ScanProgress::default())
                    .await
                    .unwrap()
                    .unwrap();
                let place = PlanPlace::open(
                    &Location::Local(dir.clone().into()),
                    &world.settings.store_settings(),
                )
                .await
                .unwrap();
                let (plan, _) = world
                    .session
                    .plan_into(
                        (from, to),
                        scan,
                        options,
                        &place,
                        Saving {
                            shards: Some(shards),
                            ..Saving::keeping(Keep::Nothing)
                        },
                    )
                    .await
                    .unwrap();
                let parts = open(&dir, &world.settings).await;
                let bytes: u64 = (0..parts.count()).map(|p| parts.part_bytes(p)).sum();
                let layout = parts.layout().unwrap();
                let (b, r) = layout.balance();
                println!(
                    "step=plan items={} changes={} plan_bytes={bytes} parts={} runs={} balance_bytes={b:.3} balance_requests={r:.3} seconds={:.1} peak_rss={} {}",
                    parts.item_count(),
                    plan.stats.changes(),
                    parts.count(),
                    layout.runs.len(),
                    started.elapsed().as_secs_f64(),
                    peak_rss(),
                    world.requests(),
                );
            }
            "apply" => {
                let parts = open(&dir, &world.settings).await;
                let head = parts.plan_without_items();
                let scan = world
                    .session
                    .scan(&head.options, &ScanProgress::default())
                    .await
                    .unwrap()
                    .unwrap();
                let bytes: u64 = (0..parts.count()).map(|p| parts.part_bytes(p)).sum();
                let plan = PlanToRun::in_parts(Arc::new(head), Arc::new(parts));
                let check = hugesync::sync::plan::check_current(&plan, &scan).await.unwrap();
                assert_eq!(check.stale, 0);
                println!(
                    "step=apply plan_bytes_read={bytes} seconds={:.2} peak_rss={} {}",
                    started.elapsed().as_secs_f64(),
                    peak_rss(),
                    world.requests(),
                );
            }
            "shard" => {
                let index = number(4, 1) as u32;
                let parts = open(&dir, &world.settings).await;
                let layout = parts.layout().unwrap().clone();
                let selection = shard::shard_selection(&layout, index, IdRanges::default());
                let sides = world.sides(&parts);
                let check = shard::check_selection(&parts, &layout, &selection, &sides)
                    .await
                    .unwrap();
                assert_eq!(check.stale, 0, "{:?}", check.first_stale);
                println!(
                    "step=shard shard={index}/{} entries={} plan_bytes_read={} parts_read={} seconds={:.2} peak_rss={} {}",
                    layout.count,
                    check.checked,
                    check.plan_bytes,
                    check.parts_read,
                    started.elapsed().as_secs_f64(),
                    peak_rss(),
                    world.requests(),
                );
            }
            "finalize" => {
                let parts = open(&dir, &world.settings).await;
                let layout = parts.layout().unwrap().clone();
                let sides = world.sides(&parts);
                let check = shard::check_later(&parts, &layout, &sides).await.unwrap();
                assert_eq!(check.stale, 0, "{:?}", check.first_stale);
                println!(
                    "step=finalize deletions={} plan_bytes_read={} parts_read={} seconds={:.2} peak_rss={} {}",
                    check.checked,
                    check.plan_bytes,
                    check.parts_read,
                    started.elapsed().as_secs_f64(),
                    peak_rss(),
                    world.requests(),
                );
            }
            other => panic!("unknown step {other:?}: plan, apply, shard or finalize"),
        }
    });
}
