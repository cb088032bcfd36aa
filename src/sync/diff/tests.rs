use super::*;
use crate::types::{ContentSums, EntryExtra, RelPath};

fn file(path: &str, size: u64, mtime: i64) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        entry: Entry::file(size, mtime, 0o644),
    }
}

fn dir(path: &str) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        entry: Entry {
            kind: EntryKind::Dir,
            size: 0,
            mtime_ns: 5,
            mode: 0o755,
            extra: None,
        },
    }
}

fn manifest(entries: Vec<ManifestEntry>) -> Manifest {
    Manifest::new(entries, Vec::new(), true)
}

fn opts() -> DiffOptions {
    DiffOptions {
        delete: false,
        checksum: false,
        archive: false,
        delta_threshold: 1000,
        transfer: SyncAction::Copy,
        delta_supported: true,
        old_objects_sealed: None,
        destination_has_dirs: true,
        times: TimeRule::Exact,
        modes_listed: true,
        selection: Default::default(),
    }
}

fn with(selection: crate::sync::Selection) -> DiffOptions {
    DiffOptions {
        selection,
        ..opts()
    }
}

fn actions(items: &[PlanItem]) -> Vec<(String, SyncAction, Reason)> {
    items
        .iter()
        .map(|i| (i.path.display(), i.action, i.reason))
        .collect()
}

#[test]
fn new_changed_unchanged_and_extra() {
    let src = manifest(vec![
        file("a", 1, 1),
        file("b", 2, 2),
        file("c", 3, 3),
        file("e", 9, 9),
    ]);
    let dst = manifest(vec![
        file("b", 2, 2),
        file("c", 4, 3),
        file("d", 1, 1),
        file("e", 9, 8),
    ]);
    let items = diff(&src, &dst, &opts());
    assert_eq!(
        actions(&items),
        vec![
            ("a".into(), SyncAction::Copy, Reason::New),
            ("b".into(), SyncAction::Skip, Reason::Unchanged),
            ("c".into(), SyncAction::Copy, Reason::SizeChanged),
            ("d".into(), SyncAction::Skip, Reason::OnlyAtDestination),
            ("e".into(), SyncAction::Copy, Reason::MtimeChanged),
        ]
    );
    assert_eq!(items[0].bytes_to_send, 1);
    assert_eq!(items[1].bytes_to_send, 0);
}

#[test]
fn delete_only_with_flag_and_not_below_unreadable_source() {
    let src = Manifest::new(vec![dir("locked")], vec![RelPath::from("locked")], true);
    let dst = manifest(vec![dir("locked"), file("locked/x", 1, 1), file("y", 1, 1)]);
    let items = diff(
        &src,
        &dst,
        &DiffOptions {
            delete: true,
            ..opts()
        },
    );
    assert_eq!(
        actions(&items)[1..],
        [
            (
                "locked/x".into(),
                SyncAction::Skip,
                Reason::SourceUnreadable
            ),
            ("y".into(), SyncAction::Delete, Reason::MissingAtSource),
        ]
    );
}

#[test]
fn delta_candidates_by_threshold() {
    let src = manifest(vec![
        file("big", 5000, 2),
        file("grown", 5000, 2),
        file("small", 10, 2),
    ]);
    let dst = manifest(vec![
        file("big", 4000, 1),
        file("grown", 0, 1),
        file("small", 11, 1),
    ]);
    let items = diff(&src, &dst, &opts());
    assert_eq!(items[0].action, SyncAction::Delta);
    assert_eq!(
        items[1].action,
        SyncAction::Copy,
        "an empty old file has nothing to reuse"
    );
    assert_eq!(items[2].action, SyncAction::Copy);
    let items = diff(
        &src,
        &dst,
        &DiffOptions {
            delta_supported: false,
            old_objects_sealed: None,
            ..opts()
        },
    );
    assert_eq!(items[0].action, SyncAction::Copy);
    assert!(items[0].note.is_some());
}

#[test]
fn checksum_mode_compares_content() {
    let with = |mut item: ManifestEntry, sums: ContentSums| {
        item.entry.set_sums(sums);
        item
    };
    let blake3 = |b: u8| ContentSums {
        blake3: Some([b; 32]),
        ..ContentSums::default()
    };
    let md5 = |b: u8| ContentSums {
        md5: Some([b; 16]),
        ..ContentSums::default()
    };
    let same = with(file("same", 4, 1), blake3(0xaa));
    let moved = with(file("same", 4, 2), blake3(0xaa));
    let other = with(file("other", 4, 1), blake3(0xbb));
    let other_dst = with(file("other", 4, 1), blake3(0xcc));
    // No checksum at the destination (an object nobody recorded one for):
    // the times decide, not a metadata-only change taken on trust.
    let unknown = with(file("unknown", 4, 1), blake3(0xdd));
    let unknown_dst = file("unknown", 4, 2);
    // Checksums of different kinds settle nothing either.
    let unlike = with(file("unlike", 4, 1), md5(1));
    let unlike_dst = with(file("unlike", 4, 2), blake3(1));
    // The store's own MD5 outranks a recorded blake3 (a rewrite that kept
    // the metadata): the MD5s differ, so the content does.
    let stale = with(
        file("stale", 4, 1),
        ContentSums {
            md5: Some([2; 16]),
            ..blake3(0xee)
        },
    );
    let stale_dst = with(
        file("stale", 4, 1),
        ContentSums {
            md5: Some([3; 16]),
            ..blake3(0xee)
        },
    );
    let o = DiffOptions {
        checksum: true,
        ..opts()
    };
    let items = diff(
        &manifest(vec![same, other, unknown, unlike, stale]),
        &manifest(vec![moved, other_dst, unknown_dst, unlike_dst, stale_dst]),
        &o,
    );
    assert_eq!(
        actions(&items),
        vec![
            ("other".into(), SyncAction::Copy, Reason::ContentChanged),
            ("same".into(), SyncAction::Metadata, Reason::MtimeOnly),
            ("stale".into(), SyncAction::Copy, Reason::ContentChanged),
            ("unknown".into(), SyncAction::Copy, Reason::MtimeChanged),
            ("unlike".into(), SyncAction::Copy, Reason::MtimeChanged),
        ]
    );
}

#[test]
fn archive_mode_and_types_and_links() {
    let mut exec = file("run.sh", 1, 1);
    exec.entry.mode = 0o755;
    let link = |target: &str| ManifestEntry {
        path: "ln".into(),
        entry: Entry {
            kind: EntryKind::Symlink,
            size: 1,
            mtime_ns: 0,
            mode: 0o777,
            extra: Some(Box::new(EntryExtra {
                link_target: Some(target.into()),
                ..Default::default()
            })),
        },
    };
    let src = manifest(vec![dir("d"), link("a"), exec, file("x", 1, 1)]);
    let dst = manifest(vec![
        file("d", 1, 1),
        link("b"),
        file("run.sh", 1, 1),
        dir("x"),
    ]);
    let items = diff(
        &src,
        &dst,
        &DiffOptions {
            archive: true,
            ..opts()
        },
    );
    assert_eq!(
        actions(&items),
        vec![
            ("d".into(), SyncAction::Copy, Reason::TypeChanged),
            ("ln".into(), SyncAction::Copy, Reason::LinkTargetChanged),
            ("run.sh".into(), SyncAction::Metadata, Reason::ModeChanged),
            ("x".into(), SyncAction::Copy, Reason::TypeChanged),
        ]
    );
}

#[test]
fn object_store_destinations_ignore_directories() {
    let src = manifest(vec![dir("d"), file("d/f", 1, 1)]);
    let items = diff(
        &src,
        &manifest(vec![]),
        &DiffOptions {
            destination_has_dirs: false,
            transfer: SyncAction::Upload,
            ..opts()
        },
    );
    assert_eq!(
        actions(&items),
        vec![("d/f".into(), SyncAction::Upload, Reason::New)]
    );
}

#[test]
fn identical_manifests_plan_nothing_but_skips() {
    let m = manifest(vec![dir("d"), file("d/f", 1, 1), file("g", 2, 2)]);
    let items = diff(
        &m,
        &m,
        &DiffOptions {
            delete: true,
            archive: true,
            ..opts()
        },
    );
    assert!(items.iter().all(|i| i.action == SyncAction::Skip));
}

const S: i64 = 1_000_000_000;

#[test]
fn update_skips_files_newer_at_the_destination_only() {
    use crate::sync::Selection;
    let src = manifest(vec![
        file("newer", 5, 10 * S),
        file("older", 5, 30 * S),
        file("same", 6, 10 * S),
    ]);
    let dst = manifest(vec![
        file("newer", 9, 20 * S),
        file("older", 9, 20 * S),
        file("same", 7, 10 * S),
    ]);
    let update = Selection {
        update: true,
        ..Selection::default()
    };
    assert_eq!(
        actions(&diff(&src, &dst, &with(update))),
        [
            ("newer".into(), SyncAction::Skip, Reason::NewerAtDestination),
            ("older".into(), SyncAction::Copy, Reason::SizeChanged),
            // Equal times, other sizes: rsync updates it.
            ("same".into(), SyncAction::Copy, Reason::SizeChanged),
        ]
    );
    // Within the window the destination is not newer.
    let windowed = Selection {
        modify_window_s: 10,
        ..update
    };
    assert_eq!(
        diff(&src, &dst, &with(windowed))[0].action,
        SyncAction::Copy
    );
    // Object stores have whole seconds only.
    let to_store = DiffOptions {
        times: TimeRule::WrittenAfterSource,
        ..with(update)
    };
    let src = manifest(vec![file("f", 1, 10 * S + 900_000_000)]);
    let dst = manifest(vec![file("f", 2, 10 * S + 100)]);
    assert_eq!(diff(&src, &dst, &to_store)[0].action, SyncAction::Copy);
}

#[test]
fn existing_and_ignore_existing_pick_new_or_old_entries() {
    use crate::sync::Selection;
    let src = manifest(vec![file("kept", 1, 1), file("new", 1, 1)]);
    let dst = manifest(vec![file("kept", 2, 1)]);
    let existing = Selection {
        existing: true,
        ..Selection::default()
    };
    assert_eq!(
        actions(&diff(&src, &dst, &with(existing))),
        [
            ("kept".into(), SyncAction::Copy, Reason::SizeChanged),
            ("new".into(), SyncAction::Skip, Reason::NotAtDestination),
        ]
    );
    let ignore = Selection {
        ignore_existing: true,
        ..Selection::default()
    };
    assert_eq!(
        actions(&diff(&src, &dst, &with(ignore))),
        [
            ("kept".into(), SyncAction::Skip, Reason::ExistsAtDestination),
            ("new".into(), SyncAction::Copy, Reason::New),
        ]
    );
    assert!(Reason::NotAtDestination.is_selection());
    assert!(!Reason::Unchanged.is_selection());
}

#[test]
fn size_bounds_size_only_ignore_times_window_and_whole_file() {
    use crate::sync::Selection;
    let src = manifest(vec![
        file("big", 5000, 1),
        file("mid", 2000, 7 * S),
        file("tiny", 10, 1),
    ]);
    let dst = manifest(vec![file("mid", 3000, 5 * S)]);
    let bounds = Selection {
        min_size: Some(100),
        max_size: Some(4000),
        ..Selection::default()
    };
    assert_eq!(
        actions(&diff(&src, &dst, &with(bounds))),
        [
            ("big".into(), SyncAction::Skip, Reason::AboveMaxSize),
            ("mid".into(), SyncAction::Delta, Reason::SizeChanged),
            ("tiny".into(), SyncAction::Skip, Reason::BelowMinSize),
        ]
    );
    let whole = Selection {
        whole_file: true,
        ..bounds
    };
    assert_eq!(diff(&src, &dst, &with(whole))[1].action, SyncAction::Copy);

    let src = manifest(vec![file("f", 10, 7 * S)]);
    let same_size = manifest(vec![file("f", 10, 5 * S)]);
    let size_only = Selection {
        size_only: true,
        ..Selection::default()
    };
    assert_eq!(
        actions(&diff(&src, &same_size, &with(size_only))),
        [("f".into(), SyncAction::Skip, Reason::SameSize)]
    );
    // Two seconds apart: equal within a FAT-style window of 2.
    let window = Selection {
        modify_window_s: 2,
        ..Selection::default()
    };
    assert_eq!(
        diff(&src, &same_size, &with(window))[0].action,
        SyncAction::Skip
    );
    assert_eq!(
        diff(&src, &same_size, &opts())[0].reason,
        Reason::MtimeChanged
    );
    let identical = manifest(vec![file("f", 10, 7 * S)]);
    let ignore_times = Selection {
        ignore_times: true,
        ..Selection::default()
    };
    assert_eq!(
        actions(&diff(&src, &identical, &with(ignore_times))),
        [("f".into(), SyncAction::Copy, Reason::IgnoreTimes)]
    );
}

#[test]
fn sidecars_in_the_other_layout_are_marked_and_unchanged_files_move_theirs() {
    use crate::storage::sidecars::{MisplacedSidecars, SidecarLayout};
    let src = manifest(vec![
        file("a", 10, 1),
        file("b", 10, 1),
        file("c", 20, 2),
        file("d", 10, 1),
    ]);
    let mut dst = manifest(vec![
        file("a", 10, 1),
        file("b", 10, 1),
        file("c", 10, 1),
        file("e", 10, 1),
        file("z", 10, 1),
    ]);
    dst.set_misplaced_sidecars(MisplacedSidecars {
        layout: SidecarLayout::Beside,
        // `gone` signs nothing listed; `z` is kept without --delete.
        paths: vec!["a".into(), "c".into(), "gone".into(), "z".into()],
    });
    let mut items = diff_owned(src, dst, &opts()).collect::<Vec<_>>();
    items.retain(|i| i.path.display() != "d");
    assert_eq!(
        actions(&items),
        [
            ("a".into(), SyncAction::Metadata, Reason::SidecarMoved),
            ("b".into(), SyncAction::Skip, Reason::Unchanged),
            ("c".into(), SyncAction::Copy, Reason::SizeChanged),
            ("e".into(), SyncAction::Skip, Reason::OnlyAtDestination),
            ("z".into(), SyncAction::Metadata, Reason::SidecarMoved),
        ]
    );
    let marked = |i: usize| items[i].dst.as_ref().and_then(Entry::sidecar_in);
    assert_eq!(marked(0), Some(SidecarLayout::Beside));
    assert_eq!(marked(1), None);
    // A changed file keeps its action: a delta reads the sidecar where it
    // was listed, and the run removes it there once the file is written.
    assert_eq!(marked(2), Some(SidecarLayout::Beside));
    assert_eq!(items[0].bytes_to_send, 0);
}
