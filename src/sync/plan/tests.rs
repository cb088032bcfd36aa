use super::*;
use crate::storage::Listing;
use crate::sync::testing::{self, options};

fn listing(files: &[(&str, u64, i64)]) -> Listing {
    let entries: Vec<_> = files
        .iter()
        .map(|(p, size, mtime)| (*p, Some(*size), *mtime))
        .collect();
    testing::listing(&entries)
}

fn plan(src: &[(&str, u64, i64)], dst: &[(&str, u64, i64)], options: SyncOptions) -> SyncPlan {
    testing::plan_of(listing(src), listing(dst), options)
}

#[test]
fn stats_add_up() {
    let p = plan(
        &[("a", 10, 1), ("b", 20, 1), ("big", 500, 2)],
        &[("b", 20, 1), ("big", 400, 1), ("gone", 7, 1)],
        options(),
    );
    assert_eq!(
        p.stats.copy,
        ActionTotals {
            count: 1,
            bytes: 10
        }
    );
    assert_eq!(
        p.stats.delta,
        ActionTotals {
            count: 1,
            bytes: 500
        }
    );
    assert_eq!(p.stats.skip.count, 1);
    assert_eq!(p.stats.delete, ActionTotals { count: 1, bytes: 7 });
    assert_eq!(p.stats.bytes_to_send, 510);
    assert_eq!(p.stats.changes(), 3);
    let big = p
        .items
        .iter()
        .find(|i| i.path == RelPath::from("big"))
        .unwrap();
    assert_eq!(
        big.action,
        SyncAction::Delta,
        "local → local runs the delta engine"
    );
    assert_eq!(big.bytes_to_send, 500, "sent whole until estimated");
}

#[test]
fn safety_guards() {
    let p = plan(
        &[("a", 1, 1)],
        &[("x", 1, 1), ("y", 1, 1)],
        SyncOptions {
            max_delete: Some(1),
            ..options()
        },
    );
    assert!(matches!(
        p.check_safety(),
        Err(PlanError::TooManyDeletes { count: 2, max: 1 })
    ));
    let p = plan(&[], &[("x", 1, 1)], options());
    assert!(matches!(
        p.check_safety(),
        Err(PlanError::EmptySource { .. })
    ));
    let p = plan(
        &[],
        &[("x", 1, 1)],
        SyncOptions {
            allow_empty_source: true,
            ..options()
        },
    );
    assert!(p.check_safety().is_ok());
}

#[test]
fn save_load_round_trip_and_rejects_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let p = plan(&[("a", 1, 1)], &[("b", 2, 2)], options());
    p.save(&path).unwrap();
    assert_eq!(SyncPlan::load(&path).unwrap(), p);

    std::fs::write(&path, "{\"format\":\"other\"}").unwrap();
    assert!(matches!(
        SyncPlan::load(&path),
        Err(PlanError::Invalid { .. })
    ));
    std::fs::write(&path, "{\"format\":\"hugesync-plan\",\"version\":99}").unwrap();
    let err = SyncPlan::load(&path).unwrap_err().to_string();
    assert!(err.contains("version 99"), "{err}");
    let mut hostile = p.clone();
    hostile.items[0].path = RelPath::from("../../etc/cron.d/x");
    hostile.save(&path).unwrap();
    let err = SyncPlan::load(&path).unwrap_err().to_string();
    assert!(err.contains("would leave the sync root"), "{err}");
    let mut wild = p.clone();
    wild.options.block_size = 0;
    wild.save(&path).unwrap();
    let err = SyncPlan::load(&path).unwrap_err().to_string();
    assert!(err.contains("block size 0"), "{err}");
    std::fs::write(&path, "not json").unwrap();
    assert!(matches!(
        SyncPlan::load(&path),
        Err(PlanError::Invalid { .. })
    ));
    std::fs::write(&path, "[1, 2]").unwrap();
    let err = SyncPlan::load(&path).unwrap_err().to_string();
    assert!(err.contains("not a JSON object"), "{err}");
    // A plan cut short (a copy interrupted half way) is named as such.
    p.save(&path).unwrap();
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = SyncPlan::load(&path).unwrap_err().to_string();
    assert!(err.contains("not JSON"), "{err}");
    let err = SyncPlan::load(&dir.path().join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot read plan"), "{err}");
}

#[tokio::test]
async fn staleness_and_edit_carry_over() {
    let mut p = plan(
        &[("a", 1, 1), ("b", 2, 2), ("c", 4, 4), ("d", 5, 5)],
        &[("d", 9, 9)],
        options(),
    );
    p.items[0].edit = Some(UserEdit::Skipped(SyncAction::Copy));
    p.items[0].action = SyncAction::Skip;
    p.refresh_stats();
    let now = Scan {
        source: listing(&[("a", 1, 1), ("b", 3, 3), ("c", 4, 4), ("d", 5, 5)]),
        destination: listing(&[("c", 4, 4), ("d", 9, 9)]),
        compared: None,
    };
    let check = check_current(&p.clone().into(), &now).await.unwrap();
    // b changed at the source, c appeared at the destination; a is
    // skipped (not checked), d is as planned.
    assert_eq!(check.stale, 2);
    assert_eq!(check.first_stale, Some(RelPath::from("b")));
    assert_eq!(check.stats, p.stats);
    assert_eq!(
        check.edits.get(&RelPath::from("a")),
        Some(&UserEdit::Skipped(SyncAction::Copy))
    );

    let mut fresh = build_plan(p.source.clone(), p.destination.clone(), &now, options());
    for item in &mut fresh.items {
        carry_edit(item, &check.edits, SyncAction::Copy);
    }
    fresh.refresh_stats();
    assert_eq!(fresh.items[0].action, SyncAction::Skip);
    assert_eq!(
        fresh.items[0].edit,
        Some(UserEdit::Skipped(SyncAction::Copy))
    );
    assert_eq!(fresh.items[1].action, SyncAction::Copy);
    assert_eq!(fresh.stats.copy.count, 2);
}

mod in_parts {
    use super::*;
    use crate::storage::StoreSettings;

    fn many(n: usize) -> SyncPlan {
        let files: Vec<(String, u64, i64)> = (0..n)
            .map(|i| (format!("d/f{i:05}"), i as u64, 1))
            .collect();
        let src: Vec<(&str, u64, i64)> =
            files.iter().map(|(p, s, t)| (p.as_str(), *s, *t)).collect();
        plan(&src, &src[..n / 2], options())
    }

    /// `plan` as its parts hold it: unchanged entries counted, not listed.
    fn as_saved(plan: &SyncPlan) -> SyncPlan {
        let mut saved = plan.clone();
        saved.items.retain(|item| !item.is_unchanged());
        for item in plan.items.iter().filter(|item| item.is_unchanged()) {
            saved.unlisted.add(item.size());
        }
        saved
    }

    async fn saved(plan: &SyncPlan, at: &Location) -> parts::PlanPlace {
        let place = parts::PlanPlace::open(at, &StoreSettings::default())
            .await
            .unwrap();
        parts::save_in_parts_of(plan, &place, 7).await.unwrap();
        place
    }

    async fn load(at: &Location) -> Result<SavedPlan, PlanError> {
        SyncPlan::load_saved(at, &StoreSettings::default()).await
    }

    fn parts_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut parts: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        parts.sort();
        parts
    }

    #[tokio::test]
    async fn a_plan_in_parts_reads_back_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::Local(dir.path().join("plan"));
        let plan = many(40);
        saved(&plan, &at).await;
        assert_eq!(
            parts_in(&dir.path().join("plan")).len(),
            3,
            "20 changes (20 unchanged counted), 7 a part"
        );
        let back = load(&at).await.unwrap();
        assert_eq!(back.plan, as_saved(&plan));
        assert_eq!(back.plan.stats, plan.stats);
        assert_eq!(back.plan.unlisted.count, 20);
        assert!(matches!(back.at, PlanAt::Parts(_)));

        // Saved again over itself: one plan's parts remain, the id changes.
        let mut again = many(10);
        again.created_ns += 1;
        saved(&again, &at).await;
        assert_eq!(parts_in(&dir.path().join("plan")).len(), 1, "5 changes");
        let second = load(&at).await.unwrap();
        assert_eq!(second.plan, as_saved(&again));
        assert_ne!(second.id, back.id);
    }

    #[tokio::test]
    async fn a_part_that_does_not_match_the_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("plan");
        let at = Location::Local(root.clone());
        saved(&many(20), &at).await;
        let part = parts_in(&root)[1].clone();
        let text = std::fs::read_to_string(&part).unwrap();

        // One byte changed, the length kept: only the hash can tell.
        assert!(text.contains("\"size\":18"), "{text}");
        std::fs::write(&part, text.replacen("\"size\":18", "\"size\":19", 1)).unwrap();
        let err = load(&at).await.unwrap_err();
        assert!(matches!(err, PlanError::PartDamaged { .. }), "{err}");
        assert!(err.to_string().contains("blake3"), "{err}");
        assert!(err.to_string().contains("make the plan again"), "{err}");

        std::fs::write(&part, &text[..text.len() - 1]).unwrap();
        assert!(load(&at).await.unwrap_err().to_string().contains("bytes"));

        std::fs::remove_file(&part).unwrap();
        assert!(load(&at).await.unwrap_err().to_string().contains("missing"));
    }

    #[tokio::test]
    async fn a_plan_file_of_version_1_still_loads_and_no_plan_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.json");
        let plan = many(6);
        plan.save(&file).unwrap();
        let back = load(&Location::Local(file.clone())).await.unwrap();
        assert_eq!(back.plan, plan);
        assert!(matches!(back.at, PlanAt::File(_)));

        let nothing = Location::Local(dir.path().join("nothing"));
        let err = load(&nothing).await.unwrap_err();
        assert!(matches!(err, PlanError::NotFound { .. }), "{err}");
    }

    /// A plan written for shards keeps its layout and, apart, its later
    /// items with their ids: what finalize reads instead of the plan.
    #[tokio::test]
    async fn a_plan_for_shards_keeps_its_layout_and_its_later_items_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("plan");
        let at = Location::Local(root.clone());
        // 20 files to send, 10 to delete (--delete), in between each other.
        let files: Vec<(String, u64, i64)> = (0..20)
            .map(|i| (format!("d/f{:03}", 2 * i), 10, 1))
            .collect();
        let extra: Vec<(String, u64, i64)> = (0..10)
            .map(|i| (format!("d/f{:03}", 4 * i + 1), 10, 1))
            .collect();
        let src: Vec<(&str, u64, i64)> =
            files.iter().map(|(p, s, t)| (p.as_str(), *s, *t)).collect();
        let dst: Vec<(&str, u64, i64)> =
            extra.iter().map(|(p, s, t)| (p.as_str(), *s, *t)).collect();
        let mut opts = options();
        opts.delete = true;
        let plan = plan(&src, &dst, opts);
        let place = parts::PlanPlace::open(&at, &StoreSettings::default())
            .await
            .unwrap();
        let mut writer = parts::PartsWriter::new(&place, plan.created_ns)
            .with_shards(3, true)
            .with_items_per_part(4);
        for item in &plan.items {
            writer.push(item).await.unwrap();
        }
        writer.finish(&plan).await.unwrap();

        let opened = parts::PlanParts::open(place.clone())
            .await
            .unwrap()
            .unwrap();
        let layout = opened.layout().unwrap();
        assert_eq!(layout.count, 3);
        assert_eq!(opened.item_count(), plan.items.len());
        let mut later = Vec::new();
        for n in 0..opened.later_count() {
            later.extend(opened.read_later(n).await.unwrap());
        }
        let deletions: Vec<(usize, PlanItem)> = plan
            .items
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, item)| item.runs_after_transfers())
            .collect();
        assert!(deletions.len() >= 10);
        assert_eq!(later, deletions);

        // A later part edited after the plan was written is refused.
        let part = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("later-")
            })
            .unwrap();
        let text = std::fs::read_to_string(&part).unwrap();
        std::fs::write(&part, text.replacen("\"id\":", "\"id\": ", 1)).unwrap();
        let opened = parts::PlanParts::open(place).await.unwrap().unwrap();
        let mut refused = None;
        for n in 0..opened.later_count() {
            if let Err(e) = opened.read_later(n).await {
                refused = Some(e);
            }
        }
        assert!(
            matches!(refused, Some(PlanError::PartDamaged { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_plan_lives_under_an_object_store_prefix() {
        let at = Location::parse("mem://plans-in-parts/plans/run-1/").unwrap();
        let plan = many(30);
        saved(&plan, &at).await;
        assert_eq!(load(&at).await.unwrap().plan, as_saved(&plan));
    }
}

/// A tiny memory budget makes both scans spill to disk; the plan is the one
/// made in memory.
#[test]
fn a_plan_from_spilled_scans_equals_the_one_made_in_memory() {
    use crate::storage::{ListOptions, LocalStorage, ScanCounter};
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    for i in 0..3000 {
        let path = format!("d{:02}/file-{i:05}.bin", i % 30);
        for (root, len) in [(&src, i % 7), (&dst, i % 5)] {
            if root == &dst && i % 3 == 0 {
                continue;
            }
            std::fs::create_dir_all(root.join(format!("d{:02}", i % 30))).unwrap();
            std::fs::write(root.join(&path), vec![b'x'; len]).unwrap();
        }
    }
    let list = |root: &std::path::Path, budget| {
        LocalStorage::new(root.to_path_buf())
            .list(
                &std::sync::Arc::new(crate::filter::Filter::default()),
                ListOptions {
                    symlinks: false,
                    list_requests: None,
                    memory_budget: budget,
                },
                &ScanCounter::default(),
            )
            .unwrap()
    };
    let scan = |budget| crate::sync::Scan {
        source: list(&src, budget),
        destination: list(&dst, budget),
        compared: None,
    };
    let spilled = scan(Some(16 << 10));
    // ~10 bytes an entry: 3,030 at the source, 2,030 at the destination.
    assert!(spilled.source.manifest.spilled_bytes() > 20_000);
    assert!(spilled.destination.manifest.spilled_bytes() > 10_000);
    let options = SyncOptions {
        delete: true,
        ..options()
    };
    let (from, to) = (Location::Local(src.clone()), Location::Local(dst.clone()));
    let in_memory = build_plan(from.clone(), to.clone(), &scan(None), options.clone());
    let from_disk = build_plan(from, to, &spilled, options);
    assert_eq!(from_disk.items, in_memory.items);
    assert_eq!(from_disk.stats, in_memory.stats);
    assert_eq!(from_disk.scanned, in_memory.scanned);
    assert!(in_memory.stats.changes() > 1000);
}

#[test]
fn a_plan_place_inside_either_side_is_found() {
    use super::parts::side_holding;
    let local = |p: &str| Location::Local(p.into());
    let (src, dst) = (local("/data/src"), local("/data/dst"));
    assert_eq!(
        side_holding(&local("/data/src/hugesync-plan"), [&src, &dst]).map(|(side, _)| side),
        Some("source")
    );
    assert_eq!(
        side_holding(&local("/data/dst"), [&src, &dst]).map(|(side, _)| side),
        Some("destination")
    );
    assert!(side_holding(&local("/data/plans/run-1"), [&src, &dst]).is_none());
    let bucket = Location::parse("s3://bucket/data/").unwrap();
    let inside = Location::parse("s3://bucket/data/plans/").unwrap();
    assert!(side_holding(&inside, [&src, &bucket]).is_some());
    assert!(
        side_holding(
            &Location::parse("s3://bucket/plans/").unwrap(),
            [&src, &bucket]
        )
        .is_none()
    );
}

#[test]
fn an_entry_is_the_same_only_with_the_same_version_tag() {
    let planned = {
        let mut e = crate::types::Entry::file(10, 1_000_000_000, 0o644);
        e.set_etag("\"abc\"".into());
        e
    };
    let mut now = planned.clone();
    assert!(same_entry(Some(&planned), Some(&now)));
    // Quoted or not, one version.
    now.set_etag("abc".into());
    assert!(same_entry(Some(&planned), Some(&now)));
    // Rewritten with the same size within the same second.
    now.set_etag("\"def\"".into());
    assert!(!same_entry(Some(&planned), Some(&now)));
    // A side that keeps no tag (a local file) goes by size and mtime.
    let local = crate::types::Entry::file(10, 1_000_000_000, 0o644);
    assert!(same_entry(Some(&planned), Some(&local)));
}
