//! Model tests: no rendering.

use super::*;
use crate::sync::testing::{listing, options, plan_of};

fn sample() -> SyncPlan {
    let src = listing(&[
        ("a", None, 1),
        ("a/b", None, 1),
        ("a/b/big", Some(1000), 1),
        ("a/b/c", Some(10), 1),
        ("a.txt", Some(5), 1),
        ("same", Some(3), 1),
    ]);
    let dst = listing(&[
        ("a", None, 1),
        ("a/b", None, 1),
        ("a/b/big", Some(900), 1),
        ("old", Some(7), 1),
        ("same", Some(3), 1),
    ]);
    plan_of(src, dst, options())
}

fn names(tree: &PlanTree) -> Vec<String> {
    tree.rows()
        .iter()
        .map(|&id| {
            let node = tree.node(id);
            format!(
                "{}{}",
                "  ".repeat(node.depth as usize - 1),
                String::from_utf8_lossy(&node.name)
            )
        })
        .collect()
}

#[test]
fn builds_directories_before_siblings_and_aggregates() {
    let plan = sample();
    let tree = PlanTree::build(&plan);
    assert_eq!(tree.len(), 7);
    // Root level shows changes (a.txt, old), so only the root is expanded.
    assert_eq!(names(&tree), ["a", "a.txt", "old", "same"]);
    let a = tree.rows()[0];
    let t = tree.totals_of(a);
    assert_eq!(t.count(SyncAction::Delta), 1);
    assert_eq!(t.count(SyncAction::Copy), 1);
    assert_eq!(t.bytes_to_send, 1010);
    assert_eq!(tree.totals().changes(), 4, "big, c, a.txt, old");
    assert_eq!(tree.totals().count(SyncAction::Delete), 1);
}

#[test]
fn expand_and_collapse_move_only_the_rows_below() {
    let plan = sample();
    let mut tree = PlanTree::build(&plan);
    tree.toggle(0);
    assert_eq!(names(&tree), ["a", "  b", "a.txt", "old", "same"]);
    tree.toggle(1);
    assert_eq!(
        names(&tree),
        ["a", "  b", "    big", "    c", "a.txt", "old", "same"]
    );
    tree.toggle(0);
    assert_eq!(names(&tree), ["a", "a.txt", "old", "same"]);
    tree.toggle(0);
    assert_eq!(
        names(&tree),
        ["a", "  b", "    big", "    c", "a.txt", "old", "same"],
        "b stays open"
    );
    tree.toggle(6);
    assert_eq!(tree.rows().len(), 7, "files do not toggle");
}

#[test]
fn filter_narrows_and_shows_directories_of_matches() {
    let plan = sample();
    let mut tree = PlanTree::build(&plan);
    tree.set_filter("b");
    assert_eq!(names(&tree), ["a", "  b", "    big", "    c"]);
    tree.set_filter("bi");
    assert_eq!(names(&tree), ["a", "  b", "    big"]);
    tree.set_filter("txt");
    assert_eq!(names(&tree), ["a.txt"]);
    tree.set_filter("");
    assert_eq!(names(&tree), ["a", "a.txt", "old", "same"]);
}

#[test]
fn sort_orders_siblings_lazily() {
    let plan = sample();
    let mut tree = PlanTree::build(&plan);
    tree.toggle(0);
    tree.toggle(1);
    tree.set_sort(SortKey::Size);
    assert_eq!(
        names(&tree),
        ["a", "  b", "    big", "    c", "old", "a.txt", "same"]
    );
    tree.set_sort(SortKey::Path);
    assert_eq!(
        names(&tree),
        ["a", "  b", "    big", "    c", "a.txt", "old", "same"]
    );
    tree.set_sort(SortKey::Size);
    tree.set_filter("a");
    assert_eq!(
        names(&tree),
        ["a", "  b", "    big", "    c", "a.txt", "same"]
    );
}

#[test]
fn hide_skipped_keeps_only_changes() {
    let mut plan = sample();
    let mut tree = PlanTree::build(&plan);
    tree.set_hide_skipped(true);
    assert_eq!(names(&tree), ["a", "a.txt", "old"]);
    let txt = tree.rows()[1];
    tree.edit(&mut plan, txt, Edit::ToggleSkip);
    assert_eq!(names(&tree), ["a", "old"]);
    tree.undo(&mut plan);
    assert_eq!(names(&tree), ["a", "a.txt", "old"]);
}

#[test]
fn subtree_edits_update_totals_and_undo_restores() {
    let mut plan = sample();
    let mut tree = PlanTree::build(&plan);
    let original = plan.clone();
    let a = tree.rows()[0];
    assert_eq!(tree.edit(&mut plan, a, Edit::ForceFull), 1);
    assert_eq!(plan.stats.delta.count, 0);
    assert_eq!(tree.totals_of(a).count(SyncAction::Copy), 2);
    assert_eq!(tree.edit(&mut plan, a, Edit::ToggleSkip), 2);
    assert_eq!(tree.totals_of(a).changes(), 0);
    assert_eq!(tree.totals().changes(), 2);
    assert_eq!(plan.stats.bytes_to_send, 5);
    // Space again unskips what the user skipped.
    assert_eq!(tree.edit(&mut plan, a, Edit::ToggleSkip), 2);
    assert_eq!(tree.totals_of(a).changes(), 2);

    let old = tree.rows()[2];
    assert_eq!(tree.edit(&mut plan, old, Edit::VetoDelete), 1);
    assert_eq!(plan.stats.delete.count, 0);
    assert_eq!(
        tree.edit(&mut plan, old, Edit::VetoDelete),
        0,
        "nothing left to veto"
    );

    while tree.undo(&mut plan) {}
    assert_eq!(plan, original);
    assert_eq!(tree.totals(), PlanTree::build(&original).totals());
}

#[test]
fn filter_finds_directories_known_only_from_their_entries() {
    // Only files are listed: "deep" and "deep/er" exist as implied directories.
    let src = listing(&[
        ("deep/er/one", Some(1), 1),
        ("deep/er/two", Some(2), 1),
        ("flat", Some(3), 1),
    ]);
    let plan = plan_of(src, listing(&[]), options());
    let mut tree = PlanTree::build(&plan);
    tree.set_sort(SortKey::Size);
    tree.set_sort(SortKey::Path);
    tree.set_filter("er");
    assert_eq!(names(&tree), ["deep", "  er", "    one", "    two"]);
    tree.set_filter("er/t");
    assert_eq!(names(&tree), ["deep", "  er", "    two"]);
    tree.set_filter("a");
    assert_eq!(names(&tree), ["flat"]);
}

#[test]
fn names_sort_naturally_and_never_tie() {
    use super::natural_order;
    use std::cmp::Ordering::*;
    let mut names: Vec<&[u8]> = vec![
        b"s10", b"s2", b"s1", b"s02", b"s100", b"a", b"s", b"s2a", b"S3", b"007", b"7",
    ];
    names.sort_by(|a, b| natural_order(a, b));
    let sorted: Vec<&str> = names
        .iter()
        .map(|n| std::str::from_utf8(n).unwrap())
        .collect();
    assert_eq!(
        sorted,
        [
            "7", "007", "S3", "a", "s", "s1", "s2", "s2a", "s02", "s10", "s100"
        ]
    );
    assert_eq!(natural_order(b"x9", b"x9"), Equal);
    assert_eq!(natural_order(b"x09", b"x9"), Greater);
    assert_eq!(natural_order(b"x0", b"x00"), Less);
    assert_eq!(
        natural_order(b"99999999999999999999999", b"100000000000000000000000"),
        Less
    );
}
