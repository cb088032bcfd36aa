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

use hugesync::config::{Overrides, Settings};
use hugesync::retry::RetryPolicy;
use hugesync::storage::body::BodySource;
use hugesync::storage::listing::list_all;
use hugesync::storage::memory::{MemoryOptions, MemoryStore};
use hugesync::storage::object::{
    ByteStream, CopySource, ListPage, ListQuery, ListedObject, ObjectHead,
};
use hugesync::storage::{
    Expect, ObjectMeta, ObjectStore, ScanCounter, Storage, StorageError, StoreInfo,
};
use hugesync::sync::ScanProgress;
use hugesync::sync::plan::parts::PlanPlace;
use hugesync::sync::session::{self, Keep, Saving, Selectors, Session};
use hugesync::types::ContentSums;
use hugesync::uri::Location;
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

/// Hive-style keys in index order: a partition per 5,000 files
/// (`table/day=00012/part-01234.parquet`). Written digit by digit: the
/// simulated store runs on the client's cores, and a real store's work of
/// making its pages is not the client's (`format!` took a third of the
/// listing's CPU here).
fn key(i: u64) -> String {
    let mut key = String::with_capacity(36);
    key.push_str("table/day=");
    push_digits(&mut key, i / 5_000);
    key.push_str("/part-");
    push_digits(&mut key, i % 5_000);
    key.push_str(".parquet");
    key
}

/// `n` in five decimal digits, zero-padded (wider when it needs more).
fn push_digits(out: &mut String, n: u64) {
    let digits = n.checked_ilog10().unwrap_or(0).max(4) + 1;
    for place in (0..digits).rev() {
        out.push(char::from(b'0' + (n / 10u64.pow(place) % 10) as u8));
    }
}

/// A quoted lowercase-hex ETag of `digest`, in one allocation.
fn quoted_hex(digest: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(34);
    text.push('"');
    for byte in digest {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text.push('"');
    text
}

/// A bucket of `n` objects generated from their index: the in-memory store
/// answers everything but listings (it is empty), and listings come from
/// `key`, with sizes, times and MD5 ETags a function of the index.
#[derive(Debug)]
struct Generated {
    empty: MemoryStore,
    n: u64,
    latency: Duration,
    /// The source's 1% differ in size and content.
    changed: bool,
}

impl Generated {
    fn object(&self, i: u64) -> ListedObject {
        let differs = self.changed && i.is_multiple_of(100);
        let size = 1_000_000 + (i % 7_919) + u64::from(differs);
        let mut digest = [0u8; 16];
        digest[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        digest[15] = u8::from(differs);
        let sums = ContentSums {
            md5: Some(digest),
            ..ContentSums::default()
        };
        ListedObject {
            rel_key: key(i),
            size,
            mtime_ns: 1_700_000_000_000_000_000 + (i as i64 % 86_400) * 1_000_000_000,
            version: Some(quoted_hex(&digest)),
            meta: None,
            sums,
        }
    }

    /// The first index whose key is at or after `bound`.
    fn index_at(&self, bound: &str) -> u64 {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(mid).as_str() < bound {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[async_trait::async_trait]
impl ObjectStore for Generated {
    fn info(&self) -> &StoreInfo {
        self.empty.info()
    }

    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        assert!(!query.delimited, "the generated store lists by ranges");
        tokio::time::sleep(self.latency).await;
        let start = match token {
            Some(next) => next.parse().unwrap(),
            None => self.index_at(query.from.as_deref().unwrap_or(&query.prefix)),
        };
        let end = query.to.as_deref().map_or(self.n, |to| self.index_at(to));
        let page = u64::from(self.info().page_size);
        let mut listed = ListPage::default();
        let stop = end.min(start + page);
        listed.objects = (start..stop)
            .map(|i| self.object(i))
            .filter(|o| o.rel_key.starts_with(&query.prefix))
            .collect();
        listed.next = (stop < end).then(|| stop.to_string());
        Ok(listed)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.empty.head(key).await
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        self.empty.open_read(key, range, version).await
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.empty.put(key, body, len, meta, md5, expect).await
    }

    fn copies_from(&self, _source: &dyn ObjectStore) -> bool {
        false
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.empty.copy_object(source, key, meta, expect).await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.empty.set_metadata(key, meta, expect).await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        self.empty.delete_keys(keys).await
    }
}

fn generated(name: &str, n: u64, latency: Duration, changed: bool) -> Arc<Generated> {
    Arc::new(Generated {
        empty: MemoryStore::new(name, "", MemoryOptions::default(), &RetryPolicy::default()),
        n,
        latency,
        changed,
    })
}

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
        let source = generated("plan-sim-src", n, latency, true);
        let destination = generated("plan-sim-dst", n, latency, false);

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
