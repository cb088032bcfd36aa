//! The worked example of docs/cost.md ("Storage classes and what a push costs"),
//! figure by figure, and the other directions.

use super::*;
use crate::sync::testing::{listing, options};
use crate::sync::{Scan, build_plan};
use crate::uri::Location;

const MIB: u64 = 1024 * 1024;
/// Two times a day apart (nanoseconds): the later is newer on any side.
const EARLY: i64 = 1_700_000_000_000_000_000;
const LATE: i64 = EARLY + 86_400_000_000_000;
const GIB: u64 = 1024 * MIB;

fn s3_store() -> StoreModel {
    StoreModel {
        min_part: 5 * MIB,
        max_parts: 10_000,
        delete_batch: 1000,
        max_single_copy: 5 * GIB,
        list_page: 1000,
        sidecars: true,
    }
}

fn priced(service: Service, class: Option<&str>) -> Billing {
    Billing::Priced(prices::sheet(&service, class, &PriceOverrides::new()).unwrap())
}

fn bucket() -> Location {
    Location::parse("s3://bucket/data").unwrap()
}

/// docs/cost.md's example: 1,000 new 1 MiB files, a new 10 GiB image, a 1 GiB
/// checkpoint edited (a delta sending 48 MiB and reusing 976 MiB), and ten
/// 1 MiB files deleted, pushed to S3 in STANDARD_IA.
fn worked_example() -> SyncPlan {
    let mut source: Vec<(String, Option<u64>, i64)> = (0..1000)
        .map(|i| (format!("small/f{i:04}"), Some(MIB), LATE))
        .collect();
    source.push(("big.img".into(), Some(10 * GIB), LATE));
    source.push(("model.ckpt".into(), Some(GIB), LATE));
    let mut destination: Vec<(String, Option<u64>, i64)> = (0..10)
        .map(|i| (format!("old/o{i}"), Some(MIB), EARLY))
        .collect();
    destination.push(("model.ckpt".into(), Some(GIB), EARLY));
    let as_refs = |entries: &[(String, Option<u64>, i64)]| {
        let refs: Vec<(&str, Option<u64>, i64)> = entries
            .iter()
            .map(|(p, s, m)| (p.as_str(), *s, *m))
            .collect();
        listing(&refs)
    };
    let mut opts = options();
    opts.delta_threshold = 32 * MIB;
    let mut plan = build_plan(
        Location::Local("/s".into()),
        bucket(),
        &Scan {
            source: as_refs(&source),
            destination: as_refs(&destination),
            compared: None,
        },
        opts,
    );
    let delta = plan
        .items
        .iter_mut()
        .find(|item| item.path.as_bytes() == b"model.ckpt")
        .unwrap();
    assert_eq!(delta.action, SyncAction::Delta);
    delta.bytes_to_send = 48 * MIB;
    delta.bytes_saved = 976 * MIB;
    plan.refresh_stats();
    plan.cost_model = Some(CostModel {
        source: SideModel {
            store: None,
            billing: Billing::Free,
        },
        destination: SideModel {
            store: Some(s3_store()),
            billing: priced(Service::Aws, Some("STANDARD_IA")),
        },
        same_service: false,
        listed: (1002, 11),
    });
    plan
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_worked_example_of_the_cost_page() {
    let plan = worked_example();
    let cost = estimate(&plan).unwrap();
    // 1,000 small PUTs; the image's 640 parts of 16 MiB, the two requests
    // around them and its sidecar; the delta's 3 parts, two, and the sidecar.
    assert_eq!(cost.requests.put, 1000 + 643 + 6);
    assert_eq!(cost.requests.copy, 61, "976 MiB in 16 MiB part copies");
    assert_eq!(cost.requests.get, 0);
    assert_eq!(cost.requests.list, 1);
    assert_eq!(cost.requests.delete, 1, "ten keys in one DeleteObjects");
    assert_eq!(cost.bytes_up, (1000 + 10240 + 48) * MIB);
    assert_eq!(cost.bytes_down, 0);
    let money = cost.money.unwrap();
    assert!(close(money.requests, 0.017105), "{money:?}");
    assert!(close(money.retrieval, 0.010_234_101_76), "{money:?}");
    assert!(close(money.egress, 0.0));
    assert!(close(money.total, 0.027_339_101_76), "{money:?}");
    assert!(close(money.storage_per_month, 0.147_193_856), "{money:?}");
    assert_eq!(cost.delta_saved_bytes, 976 * MIB);
    assert!(close(cost.delta_saved_money.unwrap(), -0.010_234_101_76));
    let text = cost.lines(plan.cost_model.as_ref().unwrap()).join("\n");
    assert!(
        text.contains("cost: ≈ $0.0273 at AWS S3 STANDARD_IA prices"),
        "{text}"
    );
    assert!(
        text.contains("requests: 1,649 PUT/part, 61 COPY/part-copy, 0 GET, 1 LIST, 1 DELETE"),
        "{text}"
    );
    assert!(text.contains("costs $0.0102 more"), "{text}");
    assert!(text.contains("$0.1472 a month"), "{text}");
    // docs/cost.md shows these lines as they are printed.
    let page = include_str!("../../docs/cost.md");
    let shown = page
        .split("details and in the approval dialog:\n\n```\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the cost example of docs/cost.md");
    assert_eq!(text, shown);

    // The same push in STANDARD: cheaper requests, no retrieval.
    let mut standard = plan.clone();
    if let Some(model) = &mut standard.cost_model {
        model.destination.billing = priced(Service::Aws, Some("STANDARD"));
    }
    let money = estimate(&standard).unwrap().money.unwrap();
    assert!(close(money.total, 0.008_555), "{money:?}");
}

#[test]
fn a_delta_download_saves_egress_and_a_whole_one_pays_it() {
    let mut opts = options();
    opts.delta_threshold = 32 * MIB;
    let mut plan = build_plan(
        bucket(),
        Location::Local("/d".into()),
        &Scan {
            source: listing(&[("a.bin", Some(GIB), LATE), ("b.bin", Some(100 * MIB), LATE)]),
            destination: listing(&[("a.bin", Some(GIB), EARLY)]),
            compared: None,
        },
        opts,
    );
    for item in &mut plan.items {
        if item.action == SyncAction::Delta {
            item.bytes_to_send = 24 * MIB;
            item.bytes_saved = GIB - 24 * MIB;
        }
    }
    plan.refresh_stats();
    plan.cost_model = Some(CostModel {
        source: SideModel {
            store: Some(s3_store()),
            billing: priced(Service::Aws, None),
        },
        destination: SideModel {
            store: None,
            billing: Billing::Free,
        },
        same_service: false,
        listed: (2, 1),
    });
    let cost = estimate(&plan).unwrap();
    // b.bin: 7 ranges of 16 MiB; a.bin's missing 24 MiB in 5 MiB reads,
    // its sidecar, and the HEAD its rebuilt file is checked with.
    assert_eq!(cost.requests.get, 7 + 5 + 2);
    assert_eq!(cost.bytes_down, 124 * MIB);
    let money = cost.money.unwrap();
    assert!(
        close(money.egress, (124 * MIB) as f64 / 1e9 * 0.09),
        "{money:?}"
    );
    let saved = cost.delta_saved_money.unwrap();
    assert!(
        close(saved, (GIB - 24 * MIB) as f64 / 1e9 * 0.09),
        "{saved}"
    );
}

#[test]
fn unknown_prices_count_requests_without_money_and_backups_add_copies() {
    let mut plan = worked_example();
    plan.options.backup = Some(crate::sync::Backup {
        dir: None,
        suffix: "~".into(),
    });
    if let Some(model) = &mut plan.cost_model {
        model.destination.billing = Billing::Unknown {
            service: "s3-compatible".into(),
        };
    }
    let cost = estimate(&plan).unwrap();
    assert_eq!(cost.money, None);
    // The checkpoint replaced and ten files deleted: eleven copies kept.
    assert_eq!(cost.requests.copy, 61 + 11);
    let text = cost.lines(plan.cost_model.as_ref().unwrap()).join("\n");
    assert!(text.contains("[prices.\"s3-compatible\"]"), "{text}");
}

#[test]
fn dollars_read_at_both_scales() {
    assert_eq!(dollars(0.027_339), "$0.0273");
    assert_eq!(dollars(12.345), "$12.35");
    assert_eq!(dollars(-0.0102), "−$0.0102");
    assert_eq!(dollars(0.0), "$0");
    assert_eq!(dollars(0.000_045), "<$0.0001");
}
