//! The transfer paths over the in-memory store, through the engine's
//! session as the commands use it: whole and delta uploads, downloads, and
//! what each injected fault does to a run.

use crate::storage::body::BodySums;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::config::{Overrides, Settings};
use crate::storage::memory::faults::{Fault, Faulty, Request};
use crate::storage::memory::{MemoryOptions, MemoryStore};
use crate::storage::objects::{self, SmallObject};
use crate::storage::{LocalStorage, ObjectStore, SharedStore, Storage};
use crate::sync::session::{self, RunKind, Selectors, Session};
use crate::sync::{ExecReport, ScanProgress, SyncPlan};
use crate::uri::Location;

/// Settings as a fresh machine has them, with `pairs` in the environment
/// and no config file.
fn settings(pairs: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert(
        "XDG_CONFIG_HOME".into(),
        "/nonexistent/hugesync-test".into(),
    );
    env.insert("HOME".into(), "/nonexistent/hugesync-test".into());
    // Quick retries: the faults here are injected, not waited out.
    env.entry("HUGESYNC_RETRY_MAX_DELAY".into())
        .or_insert_with(|| "50ms".into());
    Settings::resolve(None, &|name| env.get(name).cloned(), Overrides::default())
        .unwrap()
        .0
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn memory(options: MemoryOptions, settings: &Settings) -> Arc<MemoryStore> {
    let name = format!("transfer-{}", fastrand::u64(..));
    Arc::new(MemoryStore::new(
        &name,
        "data/",
        options,
        &settings.retry_policy(),
    ))
}

/// Plans and runs `source` → `destination` as `hugesync sync --yes` does.
async fn sync(
    source: Storage,
    destination: Storage,
    settings: &Settings,
) -> (SyncPlan, ExecReport) {
    let location = |storage: &Storage| storage.location();
    let (from, to) = (location(&source), location(&destination));
    let options = session::sync_options(settings, Selectors::default(), (&from, &to)).unwrap();
    let session = Session::with_stores(source, destination, settings, CancellationToken::new());
    let scan = session
        .scan(&options, &ScanProgress::default())
        .await
        .unwrap()
        .unwrap();
    let plan = session.plan(from, to, &scan, options).await.unwrap();
    let exec = session.exec_options(RunKind::Whole, session.withheld_deletes(&scan));
    let report = session
        .execute(Arc::new(plan.clone()), exec, Vec::new())
        .await;
    (plan, report)
}

async fn object(store: &dyn ObjectStore, rel: &str) -> Option<Vec<u8>> {
    match objects::read_small(store, &format!("{}{rel}", store.prefix()), 1 << 30)
        .await
        .unwrap()
    {
        SmallObject::Bytes(bytes) => Some(bytes.to_vec()),
        _ => None,
    }
}

fn local(dir: &std::path::Path) -> Storage {
    Storage::Local(LocalStorage::new(dir.to_path_buf()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_goes_up_whole_and_a_second_run_has_nothing_to_do() {
    let settings = settings(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("a.txt"), b"alpha").unwrap();
    std::fs::write(dir.path().join("sub/b.bin"), noise(300_000, 1)).unwrap();
    let store = memory(MemoryOptions::default(), &settings);
    let (_, report) = sync(local(dir.path()), Storage::Object(store.clone()), &settings).await;
    assert_eq!((report.copied, report.failed), (2, 0), "{report:?}");
    assert_eq!(object(store.as_ref(), "a.txt").await.unwrap(), b"alpha");
    assert_eq!(
        object(store.as_ref(), "sub/b.bin").await.unwrap(),
        noise(300_000, 1)
    );
    let (plan, _) = sync(local(dir.path()), Storage::Object(store.clone()), &settings).await;
    assert_eq!(plan.stats.changes(), 0, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_file_goes_up_by_delta_and_comes_back_whole() {
    let settings = settings(&[
        ("HUGESYNC_DELTA_THRESHOLD", "64KiB"),
        ("HUGESYNC_BLOCK_SIZE", "64KiB"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut data = noise(4 << 20, 2);
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();
    let store = memory(MemoryOptions::default(), &settings);
    sync(local(dir.path()), Storage::Object(store.clone()), &settings).await;
    // An edit in the middle, a second later.
    data[2_000_000..2_000_100].fill(7);
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();
    let later = filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() + 5, 0);
    filetime::set_file_mtime(dir.path().join("big.bin"), later).unwrap();
    let (plan, report) = sync(local(dir.path()), Storage::Object(store.clone()), &settings).await;
    assert_eq!((report.delta, report.failed), (1, 0), "{report:?}");
    assert!(
        report.bytes_sent < 1 << 20,
        "sent {} of {}",
        report.bytes_sent,
        data.len()
    );
    assert!(plan.stats.bytes_saved > 0);
    assert!(object(store.as_ref(), "big.bin").await.unwrap() == data);

    // And down again, into an empty directory.
    let down = tempfile::tempdir().unwrap();
    let (_, report) = sync(
        Storage::Object(store.clone()),
        local(down.path()),
        &settings,
    )
    .await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(std::fs::read(down.path().join("big.bin")).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_core_alone_takes_every_file_whole() {
    let settings = settings(&[
        ("HUGESYNC_DELTA_THRESHOLD", "64KiB"),
        ("HUGESYNC_BLOCK_SIZE", "64KiB"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut data = noise(1 << 20, 3);
    std::fs::write(dir.path().join("f.bin"), &data).unwrap();
    let core_only = MemoryOptions {
        staged: false,
        staged_copies: false,
        streams: false,
        ..MemoryOptions::default()
    };
    let store = memory(core_only, &settings);
    sync(local(dir.path()), Storage::Object(store.clone()), &settings).await;
    data[10] ^= 1;
    std::fs::write(dir.path().join("f.bin"), &data).unwrap();
    let later = filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() + 5, 0);
    filetime::set_file_mtime(dir.path().join("f.bin"), later).unwrap();
    let (_, report) = sync(local(dir.path()), Storage::Object(store.clone()), &settings).await;
    assert_eq!((report.copied, report.failed), (1, 0), "{report:?}");
    assert!(object(store.as_ref(), "f.bin").await.unwrap() == data);
}

/// Uploads one file through a store with `fault` armed for `on`.
async fn upload_through(on: Request, fault: Fault) -> (ExecReport, Arc<Faulty>, SharedStore) {
    let settings = settings(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.bin"), noise(200_000, 4)).unwrap();
    let inner: SharedStore = memory(MemoryOptions::default(), &settings);
    let faulty = Arc::new(Faulty::new(inner.clone(), Duration::ZERO));
    faulty.arm(on, fault);
    let (_, report) = sync(
        local(dir.path()),
        Storage::Object(faulty.clone()),
        &settings,
    )
    .await;
    (report, faulty, inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_or_a_busy_store_is_retried_and_the_file_lands() {
    for fault in [Fault::ResetBefore, Fault::ResetAfter, Fault::Unavailable] {
        let (report, faulty, inner) = upload_through(Request::Write, fault.clone()).await;
        assert!(faulty.spent(), "{fault:?} met its request");
        assert_eq!(report.failed, 0, "{fault:?}: {report:?}");
        if matches!(fault, Fault::ResetAfter) {
            // The first attempt landed and its answer was lost: the retry
            // of a conditional PUT is refused, and the item, looked at
            // again, is found done — a conflict resolved, not a blind write.
            assert_eq!((report.conflicts, report.skipped), (1, 1), "{report:?}");
        } else {
            assert_eq!(report.copied, 1, "{fault:?}: {report:?}");
        }
        assert!(report.retries >= 1, "{fault:?}: {report:?}");
        assert!(object(inner.as_ref(), "f.bin").await.unwrap() == noise(200_000, 4));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_writing_the_key_first_is_a_conflict_not_an_overwrite() {
    // The plan saw no object; another writer makes one just before the PUT.
    let theirs = Bytes::from_static(b"someone else's");
    let (report, faulty, inner) =
        upload_through(Request::Write, Fault::ConcurrentWrite(theirs.clone())).await;
    assert!(faulty.spent());
    assert_eq!(report.conflicts, 1, "{report:?}");
    // Replanned (the default policy): theirs was seen, then replaced
    // knowingly — never overwritten blind.
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(object(inner.as_ref(), "f.bin").await.unwrap() == noise(200_000, 4));
}

/// Puts `data` as a new object `name` under the store's prefix.
async fn put_new(store: &SharedStore, name: &str, data: &[u8]) {
    let key = format!("{}{name}", store.prefix());
    store
        .put(
            &key,
            crate::storage::body::BodySource::Memory(&Bytes::copy_from_slice(data)),
            data.len() as u64,
            &crate::storage::ObjectMeta::default(),
            BodySums::NONE,
            crate::storage::Expect::Absent,
        )
        .await
        .unwrap();
}

/// Downloads everything in `inner` through a store with each of `faults`
/// armed, in turn, for reads; the report, whether every fault met its
/// request, and the directory downloaded to.
async fn download_through(
    inner: &SharedStore,
    faults: &[Fault],
    settings: &Settings,
) -> (ExecReport, bool, tempfile::TempDir) {
    let faulty = Arc::new(Faulty::new(inner.clone(), Duration::ZERO));
    for fault in faults {
        faulty.arm(Request::Read, fault.clone());
    }
    let down = tempfile::tempdir().unwrap();
    let (_, report) = sync(
        Storage::Object(faulty.clone()),
        local(down.path()),
        settings,
    )
    .await;
    (report, faulty.spent(), down)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_is_abandoned_and_asked_for_again() {
    let settings = settings(&[("HUGESYNC_STALL_TIMEOUT", "1s")]);
    let inner: SharedStore = memory(MemoryOptions::default(), &settings);
    let data = noise(600_000, 5);
    put_new(&inner, "f.bin", &data).await;
    let (report, spent, down) =
        download_through(&inner, &[Fault::StallAfter(100_000)], &settings).await;
    assert!(spent);
    assert_eq!((report.copied, report.failed), (1, 0), "{report:?}");
    assert!(std::fs::read(down.path().join("f.bin")).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_damaged_on_the_way_never_takes_its_name_and_is_fetched_again() {
    let settings = settings(&[]);
    let inner: SharedStore = memory(MemoryOptions::default(), &settings);
    // One streamed in one GET, one fetched in ranges.
    let small = noise(600_000, 6);
    let large = noise((crate::sending::RANGED_THRESHOLD + 1_000_000) as usize, 7);
    for (name, data) in [("small.bin", &small), ("large.bin", &large)] {
        put_new(&inner, name, data).await;
    }
    for twice in [false, true] {
        // The first read damaged, or (twice) every read: the small file's
        // one and the large one's three, each fetched twice.
        let damaged = vec![Fault::Damage(12_345); if twice { 8 } else { 1 }];
        let (report, spent, down) = download_through(&inner, &damaged, &settings).await;
        assert!(spent);
        let files: Vec<_> = std::fs::read_dir(down.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        if twice {
            // Damaged again: an error each, and no file (nor a temp one) left.
            assert_eq!((report.copied, report.failed), (0, 2), "{report:?}");
            assert!(files.is_empty(), "{files:?}");
        } else {
            assert_eq!((report.copied, report.failed), (2, 0), "{report:?}");
            assert_eq!(files.len(), 2, "{files:?}");
            for (name, data) in [("small.bin", &small), ("large.bin", &large)] {
                assert!(&std::fs::read(down.path().join(name)).unwrap() == data);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_cut_off_goes_on_from_where_it_stopped() {
    let settings = settings(&[("HUGESYNC_STALL_TIMEOUT", "1s")]);
    let inner: SharedStore = memory(MemoryOptions::default(), &settings);
    let data = noise((crate::sending::RANGED_THRESHOLD + 3_000_000) as usize, 8);
    put_new(&inner, "big.bin", &data).await;
    for fault in [Fault::StallAfter(1_000_000), Fault::ResetAfter] {
        let (report, spent, down) =
            download_through(&inner, std::slice::from_ref(&fault), &settings).await;
        assert!(spent, "{fault:?}");
        assert_eq!(
            (report.copied, report.failed),
            (1, 0),
            "{fault:?}: {report:?}"
        );
        assert!(report.retries >= 1, "{fault:?}: {report:?}");
        assert!(std::fs::read(down.path().join("big.bin")).unwrap() == data);
    }
}

#[test]
fn memory_locations_parse_and_name_their_kind() {
    let location = Location::parse("mem://scratch/a/b").unwrap();
    assert_eq!(location.scheme(), "mem");
    assert_eq!(location.bucket_and_prefix(), Some(("scratch", "a/b/")));
    assert_eq!(location.to_string(), "mem://scratch/a/b/");
}
