//! A plan run from its parts: the same outcome as the plan held whole, and
//! a part damaged after the run began stops it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::PlanToRun;
use crate::config::{Overrides, Settings};
use crate::progress::ExecEvent;
use crate::storage::{LocalStorage, Storage};
use crate::sync::plan::parts::{self, PlanParts, PlanPlace};
use crate::sync::session::{self, RunKind, Selectors, Session};
use crate::sync::{ExecReport, ScanProgress, SyncPlan};
use crate::uri::Location;

fn settings() -> Settings {
    let env: HashMap<&str, &str> = [
        ("XDG_CONFIG_HOME", "/nonexistent/hugesync-test"),
        ("HOME", "/nonexistent/hugesync-test"),
        ("HUGESYNC_DELETE", "true"),
        ("HUGESYNC_ARCHIVE", "true"),
    ]
    .into_iter()
    .collect();
    Settings::resolve(
        None,
        &|name| env.get(name).map(|v| v.to_string()),
        Overrides::default(),
    )
    .unwrap()
    .0
}

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// Every entry under `root`: its contents (files) and mtime (directories).
fn tree(root: &Path) -> BTreeMap<String, (Option<Vec<u8>>, i64)> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let mtime = filetime::FileTime::from_last_modification_time(&meta).unix_seconds();
            let body = meta.is_file().then(|| std::fs::read(e.path()).unwrap());
            (rel, (body, mtime))
        })
        .collect()
}

/// Source and destination trees whose plan makes directories, sends files,
/// deletes a file and a nested subtree, and sets directories' times.
fn sides(at: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (src, dst) = (at.join("src"), at.join("dst"));
    for (rel, body) in [
        ("a/x", "x"),
        ("a/y", "yy"),
        ("b/c/d/f", "f"),
        ("b/c/g", "g"),
        ("e", "new"),
        ("h-i", "h"),
    ] {
        write(&src, rel, body);
    }
    for (rel, body) in [("a/old", "old"), ("e", "was"), ("z/q/w", "w"), ("z/v", "v")] {
        write(&dst, rel, body);
    }
    for dir in ["a", "b", "b/c", "b/c/d"] {
        filetime::set_file_mtime(
            src.join(dir),
            filetime::FileTime::from_unix_time(1_000_000, 0),
        )
        .unwrap();
    }
    (src, dst)
}

async fn planned(src: &Path, dst: &Path, settings: &Settings) -> (SyncPlan, Session) {
    let (from, to) = (Location::Local(src.into()), Location::Local(dst.into()));
    let options = session::sync_options(settings, Selectors::default(), (&from, &to)).unwrap();
    let session = Session::with_stores(
        Storage::Local(LocalStorage::new(src.into())),
        Storage::Local(LocalStorage::new(dst.into())),
        settings,
        CancellationToken::new(),
    );
    let scan = session
        .scan(&options, &ScanProgress::default())
        .await
        .unwrap()
        .unwrap();
    let plan = session.plan(from, to, &scan, options).await.unwrap();
    (plan, session)
}

/// Runs `plan`, with the ids and paths of the items it finished.
async fn run(session: &Session, plan: PlanToRun) -> (ExecReport, BTreeMap<usize, String>) {
    let (events, mut received) = tokio::sync::mpsc::channel(4096);
    let collect = tokio::spawn(async move {
        let mut finished = BTreeMap::new();
        while let Some(event) = received.recv().await {
            if let ExecEvent::Finished { id, path, .. } = event {
                assert!(finished.insert(id, path.display()).is_none(), "{id} twice");
            }
        }
        finished
    });
    let options = session.exec_options(RunKind::Whole, None);
    let report = session.execute_to(plan, options, events).await;
    (report, collect.await.unwrap())
}

async fn in_parts(plan: &SyncPlan, at: &Path, per_part: usize) -> PlanToRun {
    let place = PlanPlace::open(&Location::Local(at.into()), &Default::default())
        .await
        .unwrap();
    parts::save_in_parts_of(plan, &place, per_part)
        .await
        .unwrap();
    let parts = PlanParts::open(place).await.unwrap().unwrap();
    assert!(parts.count() > 2, "{} parts", parts.count());
    PlanToRun::in_parts(
        Arc::new(SyncPlan {
            items: Vec::new(),
            ..plan.clone()
        }),
        Arc::new(parts),
    )
}

#[tokio::test]
async fn a_plan_run_from_its_parts_does_what_the_plan_held_whole_does() {
    let settings = settings();
    let whole = tempfile::tempdir().unwrap();
    let (src, dst) = sides(whole.path());
    let (plan, session) = planned(&src, &dst, &settings).await;
    assert!(plan.stats.delete.count >= 4, "{:?}", plan.stats);

    let split = tempfile::tempdir().unwrap();
    let (src2, dst2) = sides(split.path());
    let (plan2, session2) = planned(&src2, &dst2, &settings).await;
    let from_parts = in_parts(&plan2, &split.path().join("plan"), 3).await;

    let (report, finished) = run(&session, PlanToRun::from(plan.clone())).await;
    let (report2, finished2) = run(&session2, from_parts).await;
    assert_eq!(report.failed + report2.failed, 0);
    assert_eq!(
        (report.copied, report.deleted, report.metadata),
        (report2.copied, report2.deleted, report2.metadata)
    );
    // Ids are the items' places in the plan either way.
    assert_eq!(finished, finished2);
    assert_eq!(tree(&src2), tree(&dst2));
    assert_eq!(tree(&dst), tree(&dst2));
    assert!(!dst2.join("z").exists());
}

#[tokio::test]
async fn a_part_damaged_after_the_run_began_stops_it_before_any_deletion() {
    let settings = settings();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = sides(dir.path());
    let (plan, session) = planned(&src, &dst, &settings).await;
    let at = dir.path().join("plan");
    let from_parts = in_parts(&plan, &at, 3).await;
    // The last part (names sort in order) is changed under the run.
    let mut names: Vec<_> = std::fs::read_dir(&at)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    let last = names.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    bytes[2] ^= 1;
    std::fs::write(last, bytes).unwrap();

    let (report, finished) = run(&session, from_parts).await;
    let why = report.stopped_on_plan.clone().unwrap();
    assert!(why.contains("does not match the plan's header"), "{why}");
    assert_eq!(
        crate::error::ExitStatus::of_report(&report),
        crate::error::ExitStatus::Fatal
    );
    assert!(!finished.is_empty());
    assert_eq!(report.deleted, 0);
    assert!(dst.join("z/q/w").exists());
    assert_eq!(std::fs::read(dst.join("a/x")).unwrap(), b"x");
}
