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

#[test]
fn staleness_and_edit_carry_over() {
    let mut p = plan(&[("a", 1, 1), ("b", 2, 2)], &[], options());
    p.items[0].edit = Some(UserEdit::Skipped(SyncAction::Copy));
    p.items[0].action = SyncAction::Skip;
    let now = Scan {
        source: listing(&[("a", 1, 1), ("b", 3, 3)]),
        destination: listing(&[]),
    };
    let stale = p.stale_items(&now);
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].path, RelPath::from("b"));

    let mut fresh = build_plan(p.source.clone(), p.destination.clone(), &now, options());
    fresh.carry_edits_from(&p);
    assert_eq!(fresh.items[0].action, SyncAction::Skip);
    assert_eq!(fresh.items[1].action, SyncAction::Copy);
    assert_eq!(fresh.stats.copy.count, 1);
}
