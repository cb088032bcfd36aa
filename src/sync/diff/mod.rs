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
//!
//! rsync's selection flags (`Selection`) then narrow what is sent, with rsync's
//! meanings: `--existing` / `--ignore-existing` skip new / existing entries,
//! `--min-size` / `--max-size` skip files outside the bounds, `-u` skips files
//! newer at the destination; `--size-only`, `-I` and `--modify-window` change
//! when two files count as the same, and `-W` sends changed files whole.

use serde::{Deserialize, Serialize};

use super::plan::PlanItem;
use itertools::{EitherOrBoth, Itertools};

use crate::storage::sidecars::MisplacedSidecars;
use crate::types::{
    Entry, EntryKind, Manifest, ManifestEntry, ManifestIntoIter, RelPath, SyncAction, by_path,
};
use crate::uri::TimeGrain;

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
    /// `-u`: the destination's copy is newer.
    NewerAtDestination,
    /// `--ignore-existing`: it exists at the destination.
    ExistsAtDestination,
    /// `--existing`: it does not exist at the destination.
    NotAtDestination,
    /// `--min-size`.
    BelowMinSize,
    /// `--max-size`.
    AboveMaxSize,
    /// `--size-only`: the sizes are equal.
    SameSize,
    /// `-I`: sent although size and time match.
    IgnoreTimes,
    /// Its signature sidecar is in the layout the destination no longer
    /// keeps sidecars in (`--sidecars` changed): moved, nothing sent.
    SidecarMoved,
}

impl Reason {
    /// Whether a selection flag (`-u`, `--existing`, `--max-size`, …) made
    /// this item a skip.
    pub fn is_selection(self) -> bool {
        matches!(
            self,
            Reason::NewerAtDestination
                | Reason::ExistsAtDestination
                | Reason::NotAtDestination
                | Reason::BelowMinSize
                | Reason::AboveMaxSize
        )
    }

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
            Reason::NewerAtDestination => "newer at the destination (--update)",
            Reason::ExistsAtDestination => "exists at the destination (--ignore-existing)",
            Reason::NotAtDestination => "not at the destination (--existing)",
            Reason::BelowMinSize => "smaller than --min-size",
            Reason::AboveMaxSize => "larger than --max-size",
            Reason::SameSize => "same size (--size-only)",
            Reason::IgnoreTimes => "sent although size and time match (--ignore-times)",
            Reason::SidecarMoved => {
                "its signature sidecar moves to where --sidecars keeps them (nothing is sent)"
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct DiffOptions {
    pub delete: bool,
    pub checksum: bool,
    pub archive: bool,
    pub delta_threshold: u64,
    /// The whole-entry action for this pair of sides.
    pub transfer: SyncAction,
    /// Whether a delta transfer exists for this pair of sides.
    pub delta_supported: bool,
    /// Why the destination's old objects cannot be read or changed in place
    /// (an archive storage class): changed files then go whole, and
    /// attribute changes rewrite the file.
    pub old_objects_sealed: Option<String>,
    /// Whether the destination keeps directories (local disks do, object stores don't).
    pub destination_has_dirs: bool,
    /// How modification times are compared for this pair of sides.
    pub times: TimeRule,
    /// Whether both sides list permission bits (object stores don't).
    pub modes_listed: bool,
    pub selection: super::Selection,
}

/// The quick check's time rule. Object stores list only LastModified, the time
/// an object was written, so each pairing with them has its own rule
/// (docs/planning.md, "When is a file unchanged?").
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
    pub fn for_sides(source: TimeGrain, destination: TimeGrain) -> TimeRule {
        match (source, destination) {
            (_, TimeGrain::WrittenOnly) => TimeRule::WrittenAfterSource,
            (TimeGrain::Nanoseconds, TimeGrain::Nanoseconds) => TimeRule::Exact,
            // A side with whole seconds (SFTP), or a download (which takes
            // the object's time as its mtime).
            _ => TimeRule::SameSecond,
        }
    }

    /// Whether the destination's time is later than the source's by more
    /// than `window_s` seconds (`-u`); to the second where a side has no
    /// finer grain.
    fn newer(self, dst_ns: i64, src_ns: i64, window_s: u64) -> bool {
        let window_s = i64::try_from(window_s).unwrap_or(i64::MAX);
        match self {
            TimeRule::Exact => {
                dst_ns > src_ns.saturating_add(window_s.saturating_mul(1_000_000_000))
            }
            TimeRule::WrittenAfterSource | TimeRule::SameSecond => {
                dst_ns.div_euclid(1_000_000_000)
                    > src_ns.div_euclid(1_000_000_000).saturating_add(window_s)
            }
        }
    }

    /// Whether the times say "unchanged", within `window_s` seconds
    /// (`--modify-window`).
    fn unchanged(self, src_ns: i64, dst_ns: i64, window_s: u64) -> bool {
        let seconds = |ns: i64| ns.div_euclid(1_000_000_000);
        let window_s = i64::try_from(window_s).unwrap_or(i64::MAX);
        match self {
            TimeRule::Exact if window_s == 0 => src_ns == dst_ns,
            TimeRule::Exact => {
                src_ns.abs_diff(dst_ns)
                    <= u64::try_from(window_s).unwrap_or(u64::MAX) * 1_000_000_000
            }
            TimeRule::WrittenAfterSource => {
                seconds(dst_ns) >= seconds(src_ns).saturating_sub(window_s)
            }
            TimeRule::SameSecond => seconds(dst_ns).abs_diff(seconds(src_ns)) <= window_s as u64,
        }
    }
}

/// Merges the two sorted manifests into plan items, in path order.
pub fn diff(src: &Manifest, dst: &Manifest, opts: &DiffOptions) -> Vec<PlanItem> {
    let facts = SourceFacts::of(src, opts);
    let sidecars = SidecarMarks::new(
        src.misplaced_sidecars().cloned(),
        dst.misplaced_sidecars().cloned(),
    );
    DiffItems::new(src.iter(), dst.iter(), facts, sidecars, opts).collect()
}

/// The same as [`diff`], item by item, consuming the manifests: each side's
/// memory is given back as the merge passes it.
pub fn diff_owned(
    mut src: Manifest,
    mut dst: Manifest,
    opts: &DiffOptions,
) -> DiffItems<'_, ManifestIntoIter, ManifestIntoIter> {
    let facts = SourceFacts::of(&src, opts);
    let sidecars = SidecarMarks::new(src.take_misplaced_sidecars(), dst.take_misplaced_sidecars());
    DiffItems::new(src.into_iter(), dst.into_iter(), facts, sidecars, opts)
}

/// Marks the entries of items whose sidecars were listed in the layout
/// their store does not keep them in: read from there by a delta, and
/// moved by the run on the destination.
struct SidecarMarks {
    source: Option<MisplacedSidecars>,
    destination: Option<MisplacedSidecars>,
}

impl SidecarMarks {
    fn new(source: Option<MisplacedSidecars>, destination: Option<MisplacedSidecars>) -> Self {
        Self {
            source,
            destination,
        }
    }

    fn mark(&self, item: &mut PlanItem) {
        if let (Some(misplaced), Some(src)) = (&self.source, item.src.as_mut()) {
            misplaced.mark(&item.path, src);
        }
        if let (Some(misplaced), Some(dst)) = (&self.destination, item.dst.as_mut())
            && misplaced.mark(&item.path, dst)
            // A file the run leaves alone still gets its sidecar moved:
            // bookkeeping, not the user's data.
            && item.action == SyncAction::Skip
            && item.reason != Reason::DestinationLinkSkipped
        {
            item.action = SyncAction::Metadata;
            item.reason = Reason::SidecarMoved;
            item.bytes_to_send = 0;
            item.bytes_saved = 0;
        }
    }
}

/// What the diff needs of the source beyond its entries.
struct SourceFacts {
    /// Subtrees the source could not read whole: nothing below them is deleted.
    incomplete: Vec<RelPath>,
    /// With -a to an object store, the source's directories that hold
    /// entries: an empty one goes as a `dir/` marker (one with entries is
    /// implied by their keys).
    non_empty: std::collections::HashSet<RelPath>,
}

impl SourceFacts {
    fn of(source: &Manifest, opts: &DiffOptions) -> Self {
        let non_empty = if opts.archive && !opts.destination_has_dirs {
            source.iter().filter_map(|e| e.path.parent()).collect()
        } else {
            Default::default()
        };
        Self {
            incomplete: source.incomplete().to_vec(),
            non_empty,
        }
    }
}

type ByPath = fn(&ManifestEntry, &ManifestEntry) -> std::cmp::Ordering;

/// Plan items from two sorted streams of entries, in path order.
pub struct DiffItems<'o, S: Iterator<Item = ManifestEntry>, D: Iterator<Item = ManifestEntry>> {
    pairs: itertools::MergeJoinBy<S, D, ByPath>,
    source: SourceFacts,
    sidecars: SidecarMarks,
    opts: &'o DiffOptions,
}

impl<'o, S, D> DiffItems<'o, S, D>
where
    S: Iterator<Item = ManifestEntry>,
    D: Iterator<Item = ManifestEntry>,
{
    fn new(
        src: S,
        dst: D,
        source: SourceFacts,
        sidecars: SidecarMarks,
        opts: &'o DiffOptions,
    ) -> Self {
        Self {
            pairs: src.merge_join_by(dst, by_path as ByPath),
            source,
            sidecars,
            opts,
        }
    }
}

impl<S, D> Iterator for DiffItems<'_, S, D>
where
    S: Iterator<Item = ManifestEntry>,
    D: Iterator<Item = ManifestEntry>,
{
    type Item = PlanItem;

    fn next(&mut self) -> Option<PlanItem> {
        let opts = self.opts;
        loop {
            let item = match self.pairs.next()? {
                EitherOrBoth::Left(a) => only_at_source(a, opts, &self.source.non_empty),
                EitherOrBoth::Right(b) => {
                    Some(only_at_destination(b, &self.source.incomplete, opts))
                }
                EitherOrBoth::Both(a, b) => on_both_sides(a, b, opts),
            };
            if let Some(mut item) = item {
                self.sidecars.mark(&mut item);
                return Some(item);
            }
        }
    }
}

fn only_at_source(
    src: ManifestEntry,
    opts: &DiffOptions,
    non_empty: &std::collections::HashSet<RelPath>,
) -> Option<PlanItem> {
    let marker = opts.archive && !non_empty.contains(&src.path);
    if src.entry.kind == EntryKind::Dir && !opts.destination_has_dirs && !marker {
        return None;
    }
    let skipped = if opts.selection.existing {
        Some(Reason::NotAtDestination)
    } else {
        outside_size_bounds(&src.entry, opts)
    };
    let mut item = match skipped {
        Some(reason) => PlanItem::new(src.path, SyncAction::Skip, reason),
        None => {
            let mut item = PlanItem::new(src.path, opts.transfer, Reason::New);
            item.bytes_to_send = transferred_size(&src.entry);
            item
        }
    };
    item.src = Some(src.entry);
    Some(item)
}

/// `--min-size` / `--max-size`: a file outside the bounds is not sent.
fn outside_size_bounds(entry: &Entry, opts: &DiffOptions) -> Option<Reason> {
    if entry.kind != EntryKind::File {
        return None;
    }
    let selection = &opts.selection;
    if selection.min_size.is_some_and(|min| entry.size < min) {
        return Some(Reason::BelowMinSize);
    }
    if selection.max_size.is_some_and(|max| entry.size > max) {
        return Some(Reason::AboveMaxSize);
    }
    None
}

/// Whether `dst` already holds what `src` would be synced as: the diff would
/// leave the pair alone. (A sharded run asks this of entries another shard,
/// or an earlier attempt, has already done.)
pub fn up_to_date(
    src: &crate::types::Entry,
    dst: &crate::types::Entry,
    opts: &DiffOptions,
) -> bool {
    if src.kind != dst.kind {
        return false;
    }
    match src.kind {
        EntryKind::File => {
            // Never selection-held: the question is only whether it is done.
            let opts = DiffOptions {
                selection: super::Selection::default(),
                ..opts.clone()
            };
            compare_files(src, dst, &opts).0 == SyncAction::Skip
        }
        EntryKind::Symlink => src.link_target() == dst.link_target(),
        EntryKind::Dir => true,
    }
}

fn only_at_destination(
    dst: ManifestEntry,
    source_incomplete: &[RelPath],
    opts: &DiffOptions,
) -> PlanItem {
    let (action, reason) = if !opts.delete {
        (SyncAction::Skip, Reason::OnlyAtDestination)
    } else if dst.path.is_within_any(source_incomplete) {
        (SyncAction::Skip, Reason::SourceUnreadable)
    } else {
        (SyncAction::Delete, Reason::MissingAtSource)
    };
    let mut item = PlanItem::new(dst.path, action, reason);
    item.dst = Some(dst.entry);
    item
}

fn on_both_sides(src: ManifestEntry, dst: ManifestEntry, opts: &DiffOptions) -> Option<PlanItem> {
    let (s, d) = (&src.entry, &dst.entry);
    if s.kind == EntryKind::Dir && d.kind == EntryKind::Dir && !opts.destination_has_dirs {
        return None;
    }
    let selected = if opts.selection.ignore_existing && s.kind != EntryKind::Dir {
        Some(Reason::ExistsAtDestination)
    } else {
        outside_size_bounds(s, opts)
    };
    let (action, reason) = if let Some(reason) = selected {
        (SyncAction::Skip, reason)
    } else if s.kind != d.kind {
        (opts.transfer, Reason::TypeChanged)
    } else {
        match s.kind {
            EntryKind::File => compare_files(s, d, opts),
            EntryKind::Symlink if s.link_target() != d.link_target() => {
                (opts.transfer, Reason::LinkTargetChanged)
            }
            EntryKind::Symlink => (SyncAction::Skip, Reason::Unchanged),
            // Directories have attributes only where both sides keep them.
            EntryKind::Dir if !opts.modes_listed || !opts.destination_has_dirs => {
                (SyncAction::Skip, Reason::Unchanged)
            }
            EntryKind::Dir if opts.archive && s.mode != d.mode => {
                (SyncAction::Metadata, Reason::ModeChanged)
            }
            EntryKind::Dir if opts.archive && s.mtime_ns != d.mtime_ns => {
                (SyncAction::Metadata, Reason::MtimeChanged)
            }
            EntryKind::Dir => (SyncAction::Skip, Reason::Unchanged),
        }
    };
    let mut item = PlanItem::new(src.path, action, reason);
    if action == SyncAction::Delta && !opts.delta_supported {
        item.action = opts.transfer;
        item.note = Some(
            "delta candidate sent whole: delta transfer is not available for this pair of sides yet".into(),
        );
    }
    if let Some(why) = &opts.old_objects_sealed
        && s.kind == EntryKind::File
        && matches!(item.action, SyncAction::Delta | SyncAction::Metadata)
    {
        item.note = Some(
            match item.action {
                SyncAction::Delta => format!("sent whole, not by delta: {why}"),
                _ => format!("sent again for its attributes: {why}"),
            }
            .into(),
        );
        item.action = opts.transfer;
    }
    if item.action.transfers() {
        item.bytes_to_send = transferred_size(s);
    }
    item.src = Some(src.entry);
    item.dst = Some(dst.entry);
    Some(item)
}

fn compare_files(s: &Entry, d: &Entry, opts: &DiffOptions) -> (SyncAction, Reason) {
    let selection = &opts.selection;
    let window_s = selection.modify_window_s;
    if selection.update && opts.times.newer(d.mtime_ns, s.mtime_ns, window_s) {
        return (SyncAction::Skip, Reason::NewerAtDestination);
    }
    let changed = |reason| {
        let delta = !selection.whole_file && d.size > 0 && s.size >= opts.delta_threshold;
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
    let same_time = opts.times.unchanged(s.mtime_ns, d.mtime_ns, window_s);
    if selection.size_only {
        if s.size != d.size {
            return changed(Reason::SizeChanged);
        }
        return if mode_differs {
            (SyncAction::Metadata, Reason::ModeChanged)
        } else {
            (SyncAction::Skip, Reason::SameSize)
        };
    }
    if opts.checksum {
        if s.size != d.size {
            return changed(Reason::SizeChanged);
        }
        // The checksums the scan recorded (see check::sync_checksum).
        match s.sums().same_content(&d.sums()) {
            Some(false) => return changed(Reason::ContentChanged),
            Some(true) if !same_time => {
                return (SyncAction::Metadata, Reason::MtimeOnly);
            }
            // A pair no checksum settled: the times decide, as without
            // --checksum, never "same content" on no evidence.
            None if !same_time => return changed(Reason::MtimeChanged),
            _ => {}
        }
    } else if s.size != d.size {
        return changed(Reason::SizeChanged);
    } else if !same_time {
        return changed(Reason::MtimeChanged);
    } else if selection.ignore_times {
        return changed(Reason::IgnoreTimes);
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
mod tests;
