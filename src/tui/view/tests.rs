//! Snapshots of every screen at 80×24 and 120×40, drawn from hand-made plans and
//! hand-fed engine events.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{Palette, draw};
use crate::progress::ExecEvent;
use crate::sync::testing::{listing, options};
use crate::sync::{ExecReport, Scan, SyncOptions, build_plan};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::types::SyncAction;
use crate::uri::Location;

fn app() -> App {
    App::new(plan())
}

fn plan() -> crate::sync::SyncPlan {
    const T: i64 = 1_700_000_000_000_000_000;
    let src = listing(&[
        ("datasets", None, T),
        ("datasets/train.parquet", Some(40 << 30), T + 5),
        ("datasets/labels.csv", Some(12_345), T),
        ("models", None, T),
        ("models/checkpoint-final.bin", Some(7 << 30), T + 9),
        ("README.md", Some(2048), T + 1),
    ]);
    let dst = listing(&[
        ("datasets", None, T),
        ("datasets/train.parquet", Some(39 << 30), T),
        ("datasets/labels.csv", Some(12_345), T),
        ("old-notes.txt", Some(512), T),
        ("README.md", Some(2048), T),
    ]);
    let options = SyncOptions {
        delta_threshold: 32 << 20,
        block_size: 5 << 20,
        ..options()
    };
    let mut plan = build_plan(
        Location::Local("/data/src".into()),
        Location::Local("/backup/dst".into()),
        &Scan {
            source: src,
            destination: dst,
            compared: None,
        },
        options,
    );
    // What the delta estimate would have found.
    for item in &mut plan.items {
        if item.action == SyncAction::Delta {
            item.bytes_to_send = 600 << 20;
            item.bytes_saved = (40 << 30) - (600 << 20);
        }
    }
    plan.refresh_stats();
    plan
}

fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    app.scroll_into_view(super::tree_rows(ratatui::layout::Rect::new(
        0, 0, width, height,
    )));
    let palette = Palette { color: false };
    terminal.draw(|frame| draw(frame, app, &palette)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn review_screen() {
    let mut app = app();
    insta::assert_snapshot!("review_80x24", render(&mut app, 80, 24));
    app.update(Action::Down);
    app.update(Action::Toggle);
    insta::assert_snapshot!("review_expanded_120x40", render(&mut app, 120, 40));
}

#[test]
fn confirm_and_help() {
    let mut app = app();
    app.update(Action::Approve);
    insta::assert_snapshot!("confirm_80x24", render(&mut app, 80, 24));
    app.update(Action::Back);
    app.update(Action::ToggleHelp);
    insta::assert_snapshot!("help_120x40", render(&mut app, 120, 40));
}

#[test]
fn execution_and_summary() {
    let mut app = app();
    app.update(Action::Approve);
    app.update(Action::Confirm);
    let path = plan()
        .items
        .iter()
        .find(|i| i.action == SyncAction::Delta)
        .map(|i| i.path.clone())
        .unwrap();
    // A fixed clock: the rates, the sparkline and the times are the screen's.
    let t0 = std::time::Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    for (ms, event) in [
        (
            0,
            ExecEvent::Begin {
                items: 5,
                bytes: 2 << 30,
            },
        ),
        (
            0,
            ExecEvent::Started {
                id: 1,
                path: path.clone(),
                action: SyncAction::Delta,
                bytes: 600 << 20,
            },
        ),
        (
            1500,
            ExecEvent::Advanced {
                id: 1,
                bytes: 100 << 20,
            },
        ),
        (
            2500,
            ExecEvent::Advanced {
                id: 1,
                bytes: 200 << 20,
            },
        ),
        (
            2600,
            ExecEvent::Failed {
                id: 3,
                path: "models/checkpoint-final.bin".into(),
                action: SyncAction::Copy,
                error: "cannot open: Permission denied".into(),
            },
        ),
        (
            2700,
            ExecEvent::Conflict {
                id: 4,
                path: "logs/run.log".into(),
                resolution: "changed at the destination since the plan; planned again: upload"
                    .into(),
            },
        ),
    ] {
        app.frozen_now = Some(at(ms));
        app.on_event(&event);
    }
    app.frozen_now = Some(at(4000));
    // The destination's requests so far, read as the screen draws.
    let counts = std::sync::Arc::new(crate::storage::requests::RequestCounts::default());
    for class in [
        crate::storage::requests::RequestClass::List,
        crate::storage::requests::RequestClass::Put,
        crate::storage::requests::RequestClass::Put,
    ] {
        counts.add(class);
    }
    app.requests = [None, Some(counts)];
    for (width, height) in [(80, 24), (120, 40)] {
        let text = render(&mut app, width, height);
        assert!(text.contains("requests 3"), "{text}");
        // The item's own bar and rate (300 MiB in 4 s), the whole run's.
        assert!(text.contains("█████░░░░░"), "{text}");
        assert!(text.contains("75 MiB/s"), "{text}");
        assert!(text.contains("elapsed 4.0s"), "{text}");
        assert!(text.contains("datasets/train.parquet"), "{text}");
        assert!(text.contains("Permission denied"), "{text}");
        assert!(text.contains("conflict logs/run.log"), "{text}");
        assert!(text.contains("failed 1"), "{text}");
        insta::assert_snapshot!(format!("execution_{width}x{height}"), text);
    }
    // Past the first seconds the rate gives the run's estimated time: 400 MiB
    // of 2 GiB in 6 s.
    app.frozen_now = Some(at(6000));
    app.on_event(&ExecEvent::Advanced {
        id: 1,
        bytes: 100 << 20,
    });
    app.on_finished(ExecReport {
        copied: 3,
        delta: 1,
        failed: 1,
        bytes_sent: 700 << 20,
        bytes_saved: 39 << 30,
        duration: std::time::Duration::from_secs(83),
        conflicts: 1,
        ..ExecReport::default()
    });
    for (width, height) in [(80, 24), (120, 40)] {
        let text = render(&mut app, width, height);
        assert!(text.contains("3 copied, 1 by delta"), "{text}");
        assert!(text.contains("Planned:"), "{text}");
        assert!(
            text.contains("Took 1m 23s; estimated 30.7s after the first 6.0s."),
            "{text}"
        );
        insta::assert_snapshot!(format!("summary_{width}x{height}"), text);
    }
}

#[test]
fn details_show_object_etags_and_the_delta_estimate() {
    let mut plan = plan();
    for item in &mut plan.items {
        if let Some(dst) = item.dst.as_mut() {
            dst.set_etag("\"9b2cf535f27731c974343645a3985328-8\"".into());
        }
    }
    let mut app = App::new(plan);
    // Open every directory, then select the delta item (datasets/train.parquet).
    let mut row = 0;
    while row < app.tree.rows().len() {
        let node = app.tree.node(app.tree.rows()[row]);
        if node.is_dir() && !node.expanded {
            app.tree.toggle(row);
        }
        row += 1;
    }
    app.selected = app
        .tree
        .rows()
        .iter()
        .position(|&id| {
            app.tree
                .node(id)
                .item()
                .is_some_and(|i| app.tree.facts(i).action == SyncAction::Delta)
        })
        .unwrap();
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("ETag 9b2cf535f27731c974343645a3985328-8"),
        "{screen}"
    );
    assert!(screen.contains("delta: sends 600 MiB"), "{screen}");
    insta::assert_snapshot!("details_delta_120x40", screen);
}

/// A tree where one file of 200 was deleted at the source: the directory row
/// says what its subtree does, not "delete" with the subtree's size; names sort
/// naturally; `n` walks the changes and the details pane sums the subtree.
#[test]
fn a_directory_row_summarises_its_subtree() {
    const T: i64 = 1_700_000_000_000_000_000;
    let names: Vec<String> = (1..=200).map(|i| format!("data/s{i}.bin")).collect();
    let mut src: Vec<(&str, Option<u64>, i64)> = vec![("data", None, T)];
    src.extend(names.iter().skip(1).map(|n| (n.as_str(), Some(53_739), T)));
    let mut dst = src.clone();
    dst.push((names[0].as_str(), Some(53_739), T));
    let plan = build_plan(
        Location::Local("/src".into()),
        Location::Local("/dst".into()),
        &Scan {
            source: listing(&src),
            destination: listing(&dst),
            compared: None,
        },
        options(),
    );
    let mut app = App::new(plan);
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("▾ data  1 delete 52.48 KiB · 199 unchanged"),
        "{screen}"
    );
    assert!(!screen.contains("✗ ▾ data"), "{screen}");
    insta::assert_snapshot!("dir_summary_80x24", screen);
    // Opened: s1 (the deleted one), s2, …, s10 in natural order; `n` from
    // the top lands on the only change, `N` finds none above it.
    app.update(Action::Home);
    app.update(Action::NextChange);
    assert_eq!(app.selected, 1);
    let screen = render(&mut app, 120, 40);
    let order: Vec<usize> = ["s1.bin", "s2.bin", "s9.bin", "s10.bin", "s100.bin"]
        .iter()
        .map(|n| screen.find(&format!(" {n} ")).unwrap_or(usize::MAX))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{screen}");
    assert!(screen.contains("delete:"), "{screen}");
    app.update(Action::PrevChange);
    assert_eq!(app.message.as_deref(), Some("no change above"));
    // On the directory, the details pane sums its subtree.
    app.update(Action::Home);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("1 delete: 52.48 KiB"), "{screen}");
    assert!(screen.contains("199 unchanged: 10.20 MiB"), "{screen}");
    insta::assert_snapshot!("dir_summary_details_120x40", screen);
}

#[test]
fn a_priced_plan_shows_its_cost_in_the_header_details_and_dialog() {
    use crate::cost::{Billing, CostModel, PriceOverrides, Service, SideModel, StoreModel};
    const T: i64 = 1_700_000_000_000_000_000;
    let options = SyncOptions {
        delta_threshold: 32 << 20,
        ..options()
    };
    let mut plan = build_plan(
        Location::Local("/data/src".into()),
        Location::parse("s3://bucket/backup").unwrap(),
        &Scan {
            source: listing(&[
                ("checkpoint.bin", Some(1 << 30), T + 86_400_000_000_000),
                ("notes.txt", Some(4096), T),
            ]),
            destination: listing(&[("checkpoint.bin", Some(1 << 30), T)]),
            compared: None,
        },
        options,
    );
    for item in &mut plan.items {
        if item.action == SyncAction::Delta {
            item.bytes_to_send = 48 << 20;
            item.bytes_saved = (1 << 30) - (48 << 20);
        }
    }
    plan.refresh_stats();
    let sheet = crate::cost::prices::sheet(&Service::Aws, None, &PriceOverrides::new());
    plan.cost_model = Some(CostModel {
        source: SideModel {
            store: None,
            billing: Billing::Free,
        },
        destination: SideModel {
            store: Some(StoreModel {
                min_part: 5 << 20,
                max_parts: 10_000,
                delete_batch: 1000,
                max_single_copy: 5 << 30,
                list_page: 1000,
                sidecars: true,
            }),
            billing: Billing::Priced(sheet.unwrap()),
        },
        same_service: false,
        listed: (2, 1),
    });
    let mut app = App::new(plan);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("cost ≈ $0.0003"), "{screen}");
    // The checkpoint's own requests in its details.
    assert!(
        screen.contains("cost: ≈ $0.0003 (6 PUT 61 COPY)"),
        "{screen}"
    );
    insta::assert_snapshot!("priced_120x40", screen);
    app.update(Action::Approve);
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("cost: ≈ $0.0003 (7 PUT 61 COPY 1 LIST)"),
        "{screen}"
    );
}
