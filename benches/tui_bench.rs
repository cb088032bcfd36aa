//! The review screen on a synthetic 1,000,000-entry plan: a keypress (move down,
//! expand a directory, a filter character) plus the redraw into a
//! TestBackend, and the memory the plan and its tree take per entry.

use criterion::{Criterion, criterion_group, criterion_main};
use hugesync::storage::Listing;
use hugesync::sync::{Scan, SyncOptions, build_plan};
use hugesync::tui::action::Action;
use hugesync::tui::app::App;
use hugesync::tui::model::TreeBuilder;
use hugesync::tui::view::{self, Palette};
use hugesync::types::{Entry, EntryKind, Manifest, ManifestEntry};
use hugesync::uri::Location;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const ENTRIES: usize = 1_000_000;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// 1,000 directories of 1,000 files; every tenth file changed, a few deleted.
fn app() -> App {
    let mut src = Vec::with_capacity(ENTRIES + 1000);
    let mut dst = Vec::with_capacity(ENTRIES + 1000);
    for d in 0..1000 {
        let dir = ManifestEntry {
            path: format!("dir{d:04}").as_str().into(),
            entry: Entry {
                kind: EntryKind::Dir,
                size: 0,
                mtime_ns: 1,
                mode: 0o755,
                extra: None,
            },
        };
        src.push(dir.clone());
        dst.push(dir);
        for f in 0..1000 {
            let path = format!("dir{d:04}/file{f:04}.bin");
            let size = (f * 4096) as u64;
            src.push(ManifestEntry {
                path: path.as_str().into(),
                entry: Entry::file(size, if f % 10 == 0 { 2 } else { 1 }, 0o644),
            });
            if f % 100 != 7 {
                dst.push(ManifestEntry {
                    path: path.as_str().into(),
                    entry: Entry::file(size, 1, 0o644),
                });
            }
        }
    }
    let listing = |entries| Listing {
        manifest: Manifest::new(entries, Vec::new(), true),
        issues: Vec::new(),
        leftovers: Vec::new(),
    };
    let options = SyncOptions {
        delete: true,
        delta_threshold: 1 << 30,
        block_size: 5 << 20,
        ..SyncOptions::default()
    };
    let scan = Scan {
        source: listing(src),
        destination: listing(dst),
        compared: None,
    };
    let before = resident_bytes();
    let plan = build_plan(
        Location::Local("/s".into()),
        Location::Local("/d".into()),
        &scan,
        options,
    );
    drop(scan);
    let entries = plan.items.len();
    // What `hugesync tui` holds: the tree, built as the items are planned
    // (the plan itself goes to parts on disk).
    let planned = resident_bytes();
    let mut builder = TreeBuilder::default();
    for item in &plan.items {
        builder.push(item);
    }
    let tree = builder.finish();
    let with_tree = resident_bytes();
    eprintln!(
        "tree alone for {entries} entries: {:.0} bytes per entry (resident)",
        with_tree.saturating_sub(planned) as f64 / entries as f64
    );
    drop(tree);
    let app = App::new(plan);
    let after = resident_bytes();
    eprintln!(
        "plan in memory + tree for {entries} entries: {:.0} bytes per entry (resident)",
        after.saturating_sub(before) as f64 / entries as f64
    );
    app
}

fn keypress_and_redraw(c: &mut Criterion) {
    let mut app = app();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let palette = Palette { color: true };
    let area = ratatui::layout::Rect::new(0, 0, 120, 40);
    let mut step = |app: &mut App, action: Action| {
        app.update(action);
        app.scroll_into_view(view::tree_rows(area));
        terminal
            .draw(|frame| view::draw(frame, app, &palette))
            .expect("draw");
    };
    let mut group = c.benchmark_group("tui_1M");
    group.bench_function("move_down", |b| b.iter(|| step(&mut app, Action::Down)));
    group.bench_function("expand_collapse", |b| {
        b.iter(|| step(&mut app, Action::Toggle))
    });
    group.sample_size(10);
    // Each filter keypress timed on its own: the first character searches every
    // path, the second narrows the first one's matches, Esc restores the tree.
    let mut timed = |app: &mut App, keys: &[Action], timed_key: usize| {
        let mut elapsed = std::time::Duration::ZERO;
        for (i, &key) in keys.iter().enumerate() {
            let start = std::time::Instant::now();
            step(app, key);
            if i == timed_key {
                elapsed = start.elapsed();
            }
        }
        elapsed
    };
    let typing = [
        Action::Filter,
        Action::Input('9'),
        Action::Input('1'),
        Action::Back,
    ];
    for (name, key) in [
        ("filter_first_char", 1),
        ("filter_next_char", 2),
        ("filter_clear", 3),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| timed(&mut app, &typing, key)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, keypress_and_redraw);
criterion_main!(benches);
