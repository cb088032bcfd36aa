//! Comparing two manifests: a pure function, no IO.
//!
//! Rules, per path (source `S`, destination `D`):
//! - only in S → whole transfer (copy / upload / download);
//! - only in D → delete with `--delete` (never below a subtree the source scan could
//!   not read), otherwise kept and shown as skipped;
//! - kinds differ → whole transfer (replaces D);
//! - files: with `--checksum` different content → transfer, same content with a
//!   different mtime (or mode under `-a`) → metadata update; without it, a different
//!   size or mtime → transfer, a different mode under `-a` → metadata update;
//!   a changed file of at least `--delta-threshold` bytes is a delta candidate;
//! - symlinks: a different target → transfer;
//! - directories: under `-a`, a different mode or mtime → metadata update.

use serde::{Deserialize, Serialize};

use super::plan::PlanItem;
use crate::types::{Entry, EntryKind, Manifest, ManifestEntry, SyncAction};

/// Why the planner chose an item's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Exists only at the source.
    New,
    SizeChanged,
    MtimeChanged,
    /// `--checksum` found different content.
    ContentChanged,
    /// A file became a directory, a link became a file, …
    TypeChanged,
    LinkTargetChanged,
    /// Same content; only the permission bits differ (`-a`).
    ModeChanged,
    /// `--checksum` found the same content under a different mtime.
    MtimeOnly,
    Unchanged,
    /// Exists only at the destination and `--delete` is off.
    OnlyAtDestination,
    /// Exists only at the destination; `--delete` removes it.
    MissingAtSource,
    /// Only at the destination, but below a source directory that could not be read,
    /// so it is kept.
    SourceUnreadable,
    /// The destination holds a symbolic link there, which the scan passed over
    /// without `-a`: not replaced unseen.
    DestinationLinkSkipped,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::New => "new at the source",
            Reason::SizeChanged => "size differs",
            Reason::MtimeChanged => "modification time differs",
            Reason::ContentChanged => "content differs (checksum)",
            Reason::TypeChanged => "entry type differs",
            Reason::LinkTargetChanged => "link target differs",
            Reason::ModeChanged => "permissions differ",
            Reason::MtimeOnly => "same content, modification time differs",
            Reason::Unchanged => "unchanged",
            Reason::OnlyAtDestination => "only at the destination (no --delete)",
            Reason::MissingAtSource => "missing at the source (--delete)",
            Reason::SourceUnreadable => "kept: the source directory could not be read",
            Reason::DestinationLinkSkipped => {
                "kept: the destination is a symbolic link (use -a to sync links)"
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DiffOptions {
    pub delete: bool,
    pub checksum: bool,
    pub archive: bool,
    pub delta_threshold: u64,
    /// The whole-entry action for this pair of sides.
    pub transfer: SyncAction,
    /// Whether a delta transfer exists for this pair of sides.
    pub delta_supported: bool,
    /// Whether the destination keeps directories (local disks do, object stores don't).
    pub destination_has_dirs: bool,
    /// How modification times are compared for this pair of sides.
    pub times: TimeRule,
    /// Whether both sides list permission bits (object stores don't).
    pub modes_listed: bool,
}

/// The quick check's time rule. Object stores list only LastModified, the time
/// an object was written, so each pairing with them has its own rule (README,
/// "When is a file unchanged?").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRule {
    /// Local to local: mtimes equal to the nanosecond.
    Exact,
    /// To an object store: unchanged while the object was written no earlier
    /// than the source's mtime (whole seconds; LastModified has no finer grain).
    WrittenAfterSource,
    /// From an object store to a disk: downloads take LastModified as their
    /// mtime, so unchanged while they agree to the second.
    SameSecond,
}

impl TimeRule {
    pub fn for_sides(source_is_local: bool, destination_is_local: bool) -> TimeRule {
        match (source_is_local, destination_is_local) {
            (true, true) => TimeRule::Exact,
            (false, true) => TimeRule::SameSecond,
            (_, false) => TimeRule::WrittenAfterSource,
        }
    }

    fn unchanged(self, src_ns: i64, dst_ns: i64) -> bool {
        let seconds = |ns: i64| ns.div_euclid(1_000_000_000);
        match self {
            TimeRule::Exact => src_ns == dst_ns,
            TimeRule::WrittenAfterSource => seconds(dst_ns) >= seconds(src_ns),
            TimeRule::SameSecond => seconds(dst_ns) == seconds(src_ns),
        }
    }
}

/// Merges the two sorted manifests into plan items, in path order.
pub fn diff(src: &Manifest, dst: &Manifest, opts: &DiffOptions) -> Vec<PlanItem> {
    let (s, d) = (src.entries(), dst.entries());
    let mut items = Vec::with_capacity(s.len().max(d.len()));
    let (mut i, mut j) = (0, 0);
    while i < s.len() || j < d.len() {
        let order = match (s.get(i), d.get(j)) {
            (Some(a), Some(b)) => a.path.cmp(&b.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let item = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                only_at_source(&s[i - 1], opts)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                Some(only_at_destination(&d[j - 1], src, opts))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                on_both_sides(&s[i - 1], &d[j - 1], opts)
            }
        };
        items.extend(item);
    }
    items
}

fn only_at_source(src: &ManifestEntry, opts: &DiffOptions) -> Option<PlanItem> {
    if src.entry.kind == EntryKind::Dir && !opts.destination_has_dirs {
        return None;
    }
    let mut item = PlanItem::new(src.path.clone(), opts.transfer, Reason::New);
    item.bytes_to_send = transferred_size(&src.entry);
    item.src = Some(src.entry.clone());
    Some(item)
}

fn only_at_destination(dst: &ManifestEntry, src: &Manifest, opts: &DiffOptions) -> PlanItem {
    let (action, reason) = if !opts.delete {
        (SyncAction::Skip, Reason::OnlyAtDestination)
    } else if src.is_incomplete_at(&dst.path) {
        (SyncAction::Skip, Reason::SourceUnreadable)
    } else {
        (SyncAction::Delete, Reason::MissingAtSource)
    };
    let mut item = PlanItem::new(dst.path.clone(), action, reason);
    item.dst = Some(dst.entry.clone());
    item
}

fn on_both_sides(src: &ManifestEntry, dst: &ManifestEntry, opts: &DiffOptions) -> Option<PlanItem> {
    let (s, d) = (&src.entry, &dst.entry);
    if s.kind == EntryKind::Dir && d.kind == EntryKind::Dir && !opts.destination_has_dirs {
        return None;
    }
    let (action, reason) = if s.kind != d.kind {
        (opts.transfer, Reason::TypeChanged)
    } else {
        match s.kind {
            EntryKind::File => compare_files(s, d, opts),
            EntryKind::Symlink if s.link_target() != d.link_target() => {
                (opts.transfer, Reason::LinkTargetChanged)
            }
            EntryKind::Symlink => (SyncAction::Skip, Reason::Unchanged),
            EntryKind::Dir if !opts.modes_listed => (SyncAction::Skip, Reason::Unchanged),
            EntryKind::Dir if opts.archive && s.mode != d.mode => {
                (SyncAction::Metadata, Reason::ModeChanged)
            }
            EntryKind::Dir if opts.archive && s.mtime_ns != d.mtime_ns => {
                (SyncAction::Metadata, Reason::MtimeChanged)
            }
            EntryKind::Dir => (SyncAction::Skip, Reason::Unchanged),
        }
    };
    let mut item = PlanItem::new(src.path.clone(), action, reason);
    if action == SyncAction::Delta && !opts.delta_supported {
        item.action = opts.transfer;
        item.note = Some(
            "delta candidate sent whole: delta transfer is not available for this pair of sides yet".into(),
        );
    }
    if item.action.transfers() {
        item.bytes_to_send = transferred_size(s);
    }
    item.src = Some(s.clone());
    item.dst = Some(d.clone());
    Some(item)
}

fn compare_files(s: &Entry, d: &Entry, opts: &DiffOptions) -> (SyncAction, Reason) {
    let changed = |reason| {
        let delta = d.size > 0 && s.size >= opts.delta_threshold;
        (
            if delta {
                SyncAction::Delta
            } else {
                opts.transfer
            },
            reason,
        )
    };
    let mode_differs = opts.archive && opts.modes_listed && s.mode != d.mode;
    let same_time = opts.times.unchanged(s.mtime_ns, d.mtime_ns);
    if opts.checksum {
        if s.size != d.size {
            return changed(Reason::SizeChanged);
        }
        if let (Some(a), Some(b)) = (s.blake3(), d.blake3())
            && a != b
        {
            return changed(Reason::ContentChanged);
        }
        if !same_time {
            return (SyncAction::Metadata, Reason::MtimeOnly);
        }
    } else if s.size != d.size {
        return changed(Reason::SizeChanged);
    } else if !same_time {
        return changed(Reason::MtimeChanged);
    }
    if mode_differs {
        (SyncAction::Metadata, Reason::ModeChanged)
    } else {
        (SyncAction::Skip, Reason::Unchanged)
    }
}

/// Bytes a whole transfer of this entry sends.
fn transferred_size(entry: &Entry) -> u64 {
    match entry.kind {
        EntryKind::File => entry.size,
        EntryKind::Dir | EntryKind::Symlink => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EntryExtra, RelPath};

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
            destination_has_dirs: true,
            times: TimeRule::Exact,
            modes_listed: true,
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
                ..opts()
            },
        );
        assert_eq!(items[0].action, SyncAction::Copy);
        assert!(items[0].note.is_some());
    }

    #[test]
    fn checksum_mode_compares_content() {
        let mut same = file("same", 4, 1);
        same.entry.set_blake3("aa".into());
        let mut moved = file("same", 4, 2);
        moved.entry.set_blake3("aa".into());
        let mut other = file("other", 4, 1);
        other.entry.set_blake3("bb".into());
        let mut other_dst = file("other", 4, 1);
        other_dst.entry.set_blake3("cc".into());
        let o = DiffOptions {
            checksum: true,
            ..opts()
        };
        let items = diff(
            &manifest(vec![same, other]),
            &manifest(vec![moved, other_dst]),
            &o,
        );
        assert_eq!(
            actions(&items),
            vec![
                ("other".into(), SyncAction::Copy, Reason::ContentChanged),
                ("same".into(), SyncAction::Metadata, Reason::MtimeOnly),
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
}
