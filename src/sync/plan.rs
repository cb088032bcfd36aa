//! The sync plan: a plain, serializable value that can be printed, saved, reviewed,
//! edited and applied later.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::sync_checksum::ContentCompared;
use super::diff::{self, DiffOptions, Reason};
use super::scan::Scan;
use super::{SyncOptions, transfer_action};
use crate::types::{Entry, RelPath, SyncAction};
use crate::uri::Location;

/// Identifies plan files; bumped whenever their meaning changes.
pub const PLAN_FORMAT: &str = "hugesync-plan";
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error(
        "the plan deletes {count} entries, more than --max-delete {max}; review it with `hugesync plan` and raise the limit if that is intended"
    )]
    TooManyDeletes { count: u64, max: u64 },
    #[error(
        "the source {source_location} is empty, so --delete would remove all {count} entries at the destination; pass --allow-empty-source if that is really intended"
    )]
    EmptySource { source_location: String, count: u64 },
    #[error("cannot read plan {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a HugeSync plan: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "cannot make a temporary directory for the plan in {}: {source}; set TMPDIR to a directory with room for it",
        dir.display()
    )]
    Temporary {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write plan {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the plan is stale: {count} planned entries changed since it was made (first: {first}); run `hugesync apply --replan` to plan them again, or make a new plan"
    )]
    Stale { count: usize, first: String },
    #[error("plan {plan}: {source}")]
    Place {
        plan: String,
        #[source]
        source: crate::storage::StorageError,
    },
    #[error(
        "plan {plan}: part {part} does not match the plan's header ({why}); it was changed, damaged or left by another plan: make the plan again with `hugesync plan -o`"
    )]
    PartDamaged {
        plan: String,
        part: String,
        why: String,
    },
    #[error("no plan at {plan}: it holds no {header}; make one with `hugesync plan SRC DST -o {plan}`", header = parts::HEADER_NAME)]
    NotFound { plan: String },
    #[error("the scan could not be read back whole, so no plan is made: {reason}")]
    ScanLost { reason: String },
}

/// A user's edit of an item during review; kept so a re-plan can honour it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "edit", content = "was")]
pub enum UserEdit {
    /// Skipped by the user; `was` is the planned action.
    Skipped(SyncAction),
    /// A delta replaced by a whole transfer.
    ForcedFull(SyncAction),
}

/// One path and what the plan does with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub path: RelPath,
    pub action: SyncAction,
    pub reason: Reason,
    /// The source entry as scanned (absent for deletes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Entry>,
    /// The destination entry as scanned (absent for new entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Entry>,
    /// Estimated bytes this item sends.
    pub bytes_to_send: u64,
    /// Estimated bytes a delta transfer avoids sending.
    #[serde(default)]
    pub bytes_saved: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<UserEdit>,
}

/// What the review's tree, the totals and the cost estimate need of an
/// item: its action and estimates, its entry's kind and size and the
/// destination's — not its path, times or checksums (those stay in the
/// plan, read back when an item is shown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemFacts {
    pub action: SyncAction,
    pub edit: Option<UserEdit>,
    /// The kind of its entry: the source's, or the destination's for a delete.
    pub kind: crate::types::EntryKind,
    /// The size of that entry.
    pub size: u64,
    /// The destination's entry, when there is one: its kind and size.
    pub dst: Option<(crate::types::EntryKind, u64)>,
    pub bytes_to_send: u64,
    pub bytes_saved: u64,
}

impl ItemFacts {
    pub fn is_dir(&self) -> bool {
        self.kind == crate::types::EntryKind::Dir
    }
}

impl PlanItem {
    /// What the tree and the estimates need of it.
    pub fn facts(&self) -> ItemFacts {
        let entry = self.src.as_ref().or(self.dst.as_ref());
        ItemFacts {
            action: self.action,
            edit: self.edit,
            kind: entry.map_or(crate::types::EntryKind::File, |e| e.kind),
            size: entry.map_or(0, |e| e.size),
            dst: self.dst.as_ref().map(|e| (e.kind, e.size)),
            bytes_to_send: self.bytes_to_send,
            bytes_saved: self.bytes_saved,
        }
    }

    /// Takes what a review edit changes (action, edit, estimates) from
    /// `facts` of the same item.
    pub fn take_edit(&mut self, facts: &ItemFacts) {
        self.action = facts.action;
        self.edit = facts.edit;
        self.bytes_to_send = facts.bytes_to_send;
        self.bytes_saved = facts.bytes_saved;
    }

    /// The size of its entry: the source's, or the destination's for a delete.
    pub fn size(&self) -> u64 {
        self.src
            .as_ref()
            .or(self.dst.as_ref())
            .map_or(0, |e| e.size)
    }

    /// An entry the plan leaves alone because it is the same on both sides
    /// (not one a flag or the user held back).
    pub fn is_unchanged(&self) -> bool {
        self.action == SyncAction::Skip && self.reason == Reason::Unchanged && self.edit.is_none()
    }

    /// Made a skip: left to another run (another shard, finalize, an
    /// earlier attempt).
    pub fn leave_alone(&mut self) {
        self.action = SyncAction::Skip;
        self.bytes_to_send = 0;
        self.bytes_saved = 0;
    }

    /// Whether it is a directory's (made, updated or deleted).
    pub fn is_dir(&self) -> bool {
        self.src.as_ref().or(self.dst.as_ref()).map(|e| e.kind)
            == Some(crate::types::EntryKind::Dir)
    }

    /// Whether a run comes to it after every transfer: a deletion, or a
    /// directory (whose times are set once its contents stopped changing).
    pub fn runs_after_transfers(&self) -> bool {
        self.action == SyncAction::Delete || (self.action != SyncAction::Skip && self.is_dir())
    }

    pub fn new(path: RelPath, action: SyncAction, reason: Reason) -> Self {
        Self {
            path,
            action,
            reason,
            src: None,
            dst: None,
            bytes_to_send: 0,
            bytes_saved: 0,
            note: None,
            edit: None,
        }
    }
}

/// Count and bytes of one action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTotals {
    pub count: u64,
    /// Size of the entries concerned (source size; destination size for deletes).
    pub bytes: u64,
}

impl ActionTotals {
    pub fn is_zero(&self) -> bool {
        *self == ActionTotals::default()
    }

    /// Counts one more entry of `bytes`.
    pub fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// Totals derived from the items; recomputed, never trusted from a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStats {
    pub upload: ActionTotals,
    pub download: ActionTotals,
    pub copy: ActionTotals,
    pub delta: ActionTotals,
    pub metadata: ActionTotals,
    pub delete: ActionTotals,
    pub skip: ActionTotals,
    pub bytes_to_send: u64,
    pub bytes_saved: u64,
}

impl PlanStats {
    pub fn of(items: &[PlanItem]) -> PlanStats {
        let mut stats = PlanStats::default();
        for item in items {
            stats.add(item);
        }
        stats
    }

    /// Counts one more item.
    pub fn add(&mut self, item: &PlanItem) {
        self.totals_mut(item.action).add(item.size());
        self.bytes_to_send += item.bytes_to_send;
        self.bytes_saved += item.bytes_saved;
    }

    /// Adds the totals of `other`.
    pub fn absorb(&mut self, other: &PlanStats) {
        for action in SyncAction::ALL {
            let theirs = other.totals(action);
            let ours = self.totals_mut(action);
            ours.count += theirs.count;
            ours.bytes += theirs.bytes;
        }
        self.bytes_to_send += other.bytes_to_send;
        self.bytes_saved += other.bytes_saved;
    }

    /// Counts one more item (`sign` 1), or one less (−1), from its facts.
    pub fn count(&mut self, facts: &ItemFacts, sign: i8) {
        let totals = self.totals_mut(facts.action);
        if sign >= 0 {
            totals.add(facts.size);
            self.bytes_to_send += facts.bytes_to_send;
            self.bytes_saved += facts.bytes_saved;
        } else {
            totals.count = totals.count.saturating_sub(1);
            totals.bytes = totals.bytes.saturating_sub(facts.size);
            self.bytes_to_send = self.bytes_to_send.saturating_sub(facts.bytes_to_send);
            self.bytes_saved = self.bytes_saved.saturating_sub(facts.bytes_saved);
        }
    }

    pub fn totals(&self, action: SyncAction) -> ActionTotals {
        match action {
            SyncAction::Upload => self.upload,
            SyncAction::Download => self.download,
            SyncAction::Copy => self.copy,
            SyncAction::Delta => self.delta,
            SyncAction::Metadata => self.metadata,
            SyncAction::Delete => self.delete,
            SyncAction::Skip => self.skip,
        }
    }

    fn totals_mut(&mut self, action: SyncAction) -> &mut ActionTotals {
        match action {
            SyncAction::Upload => &mut self.upload,
            SyncAction::Download => &mut self.download,
            SyncAction::Copy => &mut self.copy,
            SyncAction::Delta => &mut self.delta,
            SyncAction::Metadata => &mut self.metadata,
            SyncAction::Delete => &mut self.delete,
            SyncAction::Skip => &mut self.skip,
        }
    }

    /// Items that change something at the destination.
    pub fn changes(&self) -> u64 {
        SyncAction::ALL
            .iter()
            .filter(|a| **a != SyncAction::Skip)
            .map(|a| self.totals(*a).count)
            .sum()
    }
}

/// What the scans saw, for the summary and the empty-source guard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTotals {
    pub source_entries: u64,
    pub source_bytes: u64,
    pub destination_entries: u64,
    pub destination_bytes: u64,
    /// What `--checksum` compared, and by which checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<ContentCompared>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncPlan {
    pub format: String,
    pub version: u32,
    pub source: Location,
    pub destination: Location,
    pub options: SyncOptions,
    /// When the plan was made, nanoseconds since the epoch.
    pub created_ns: i64,
    pub scanned: ScanTotals,
    pub stats: PlanStats,
    pub items: Vec<PlanItem>,
    /// Unchanged entries a saved plan counts but does not list (a plan in
    /// parts lists what it changes: at 10⁸ objects and 1% changed, the rest
    /// would be 99% of its bytes). Counted among the skips.
    #[serde(default, skip_serializing_if = "ActionTotals::is_zero")]
    pub unlisted: ActionTotals,
    /// Temp files of interrupted runs found in the (local) destination: removed
    /// when the plan runs, unless a live process still writes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<RelPath>,
    /// How the destination store checks a delta upload's server-side rebuild
    /// (absent where nothing is rebuilt server-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild_check: Option<crate::storage::RebuildCheck>,
    /// What the cost estimate needs of both sides (`crate::cost`), fixed
    /// when the plan is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_model: Option<crate::cost::CostModel>,
}

/// How the diff compares entries for this pair of sides and these options.
pub fn diff_options(
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
) -> DiffOptions {
    DiffOptions {
        delete: options.delete,
        checksum: options.checksum,
        archive: options.archive,
        delta_threshold: options.delta_threshold,
        transfer: transfer_action(source, destination),
        // Every pair with a local side runs the delta engine; server-side
        // copies between buckets send nothing through us anyway.
        delta_supported: source.is_local() || destination.is_local(),
        old_objects_sealed: options
            .storage_class
            .as_ref()
            .filter(|class| class.access == crate::storage::ClassAccess::RestoreFirst)
            .map(|class| {
                format!(
                    "{} objects cannot be read, copied or changed until restored",
                    class.name
                )
            }),
        destination_has_dirs: destination.is_local(),
        times: diff::TimeRule::for_sides(source.time_grain(), destination.time_grain()),
        modes_listed: source.lists_modes() && destination.lists_modes(),
        selection: options.selection,
    }
}

/// Plans a sync from two scans.
pub fn build_plan(
    source: Location,
    destination: Location,
    scan: &Scan,
    options: SyncOptions,
) -> SyncPlan {
    let mut plan = plan_head(source, destination, scan, options);
    let diff_options = diff_options(&plan.source, &plan.destination, &plan.options);
    plan.items = diff::diff(
        &scan.source.manifest,
        &scan.destination.manifest,
        &diff_options,
    );
    keep_skipped_destination_links(&mut plan.items, &skipped_links(&scan.destination.issues));
    plan.refresh_stats();
    plan
}

/// A plan of a scan without its items yet: what it syncs, with what
/// options, and what the scan saw.
pub(crate) fn plan_head(
    source: Location,
    destination: Location,
    scan: &Scan,
    options: SyncOptions,
) -> SyncPlan {
    let src = &scan.source.manifest;
    let dst = &scan.destination.manifest;
    let scanned = ScanTotals {
        source_entries: src.len() as u64,
        source_bytes: src.total_bytes(),
        destination_entries: dst.len() as u64,
        destination_bytes: dst.total_bytes(),
        compared: scan.compared,
    };
    let created_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    SyncPlan {
        format: PLAN_FORMAT.into(),
        version: PLAN_VERSION,
        source,
        destination,
        options,
        created_ns,
        scanned,
        stats: PlanStats::default(),
        items: Vec::new(),
        unlisted: ActionTotals::default(),
        leftovers: scan.destination.leftovers.clone(),
        rebuild_check: None,
        cost_model: None,
    }
}

/// Whether both manifests were read back whole (a spilled block that could
/// not be read ends a reading early: a plan made from it would take what
/// follows for missing).
pub(crate) fn scan_read_whole(scan: &Scan) -> Result<(), PlanError> {
    match scan
        .source
        .manifest
        .read_failure()
        .or(scan.destination.manifest.read_failure())
    {
        Some(reason) => Err(PlanError::ScanLost {
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

/// The destination's symbolic links the scan passed over.
pub(crate) fn skipped_links(
    issues: &[crate::storage::ScanIssue],
) -> std::collections::HashSet<RelPath> {
    issues
        .iter()
        .filter(|i| i.kind == crate::storage::ScanIssueKind::SkippedSymlink)
        .map(|i| i.path.clone())
        .collect()
}

/// A destination symbolic link the scan passed over (no `-a`) is not in the
/// destination's manifest, yet it is there: an item that would write over it is
/// skipped with the scan's note, instead of meeting it as a conflict.
pub(crate) fn keep_skipped_destination_links(
    items: &mut [PlanItem],
    skipped: &std::collections::HashSet<RelPath>,
) {
    if skipped.is_empty() {
        return;
    }
    for item in items.iter_mut() {
        if item.dst.is_none() && item.action != SyncAction::Skip && skipped.contains(&item.path) {
            item.action = SyncAction::Skip;
            item.reason = diff::Reason::DestinationLinkSkipped;
            item.bytes_to_send = 0;
            item.bytes_saved = 0;
        }
    }
}

impl SyncPlan {
    /// A copy of the plan without its items.
    pub fn head_only(&self) -> SyncPlan {
        SyncPlan {
            format: self.format.clone(),
            version: self.version,
            source: self.source.clone(),
            destination: self.destination.clone(),
            options: self.options.clone(),
            created_ns: self.created_ns,
            scanned: self.scanned,
            stats: self.stats.clone(),
            items: Vec::new(),
            unlisted: self.unlisted,
            leftovers: self.leftovers.clone(),
            rebuild_check: self.rebuild_check,
            cost_model: self.cost_model.clone(),
        }
    }

    /// What the plan says about verifying server-side rebuilds: only when it
    /// holds delta uploads to a store that rebuilds them (or any upload to a
    /// store keeping chunks, whose price — the data stored twice — it states).
    pub fn rebuild_check_note(&self) -> Option<&'static str> {
        use crate::storage::RebuildCheck;
        self.rebuild_check
            .filter(|check| {
                self.stats.delta.count > 0
                    || (*check == RebuildCheck::ChunksCompared && self.stats.upload.count > 0)
            })
            .map(RebuildCheck::describe)
    }

    /// Recomputes the totals after the items were edited.
    pub fn refresh_stats(&mut self) {
        self.stats = PlanStats::of(&self.items);
        self.stats.skip.count += self.unlisted.count;
        self.stats.skip.bytes += self.unlisted.bytes;
    }

    /// The guards that stand between a plan and its execution.
    pub fn check_safety(&self) -> Result<(), PlanError> {
        let deletes = self.stats.delete.count;
        if let Some(max) = self.options.max_delete
            && deletes > max
        {
            return Err(PlanError::TooManyDeletes {
                count: deletes,
                max,
            });
        }
        if deletes > 0 && self.scanned.source_entries == 0 && !self.options.allow_empty_source {
            return Err(PlanError::EmptySource {
                source_location: self.source.to_string(),
                count: deletes,
            });
        }
        Ok(())
    }
}

/// The user's edits of a plan, by path: what a new plan of the same sides
/// keeps.
pub type Edits = std::collections::HashMap<RelPath, UserEdit>;

/// Gives a freshly planned `item` the edit the user made of its path, where
/// it still applies (`transfer`: what a whole transfer is between the sides).
pub fn carry_edit(item: &mut PlanItem, edits: &Edits, transfer: SyncAction) {
    match edits.get(&item.path) {
        Some(UserEdit::Skipped(_)) if item.action != SyncAction::Skip => {
            item.edit = Some(UserEdit::Skipped(item.action));
            item.action = SyncAction::Skip;
            item.bytes_to_send = 0;
            item.bytes_saved = 0;
        }
        Some(UserEdit::ForcedFull(_)) if item.action == SyncAction::Delta => {
            item.edit = Some(UserEdit::ForcedFull(item.action));
            item.action = transfer;
            item.bytes_to_send = item.src.as_ref().map_or(0, |e| e.size);
            item.bytes_saved = 0;
        }
        _ => {}
    }
}

/// The quick-check identity used for staleness: kind, size, mtime, link
/// target, and the store's version tag (ETag, generation) where both
/// entries carry one — an object rewritten within its mtime's second with
/// the same size is another object.
pub fn same_entry(planned: Option<&Entry>, now: Option<&Entry>) -> bool {
    match (planned, now) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.kind == b.kind
                && a.same_size_and_mtime(b)
                && a.link_target() == b.link_target()
                && match (a.etag(), b.etag()) {
                    (Some(x), Some(y)) => crate::storage::same_version(x, y),
                    _ => true,
                }
        }
        _ => false,
    }
}

mod current;
pub mod parts;
mod saved;
#[cfg(test)]
mod tests;

pub use current::{PlanCheck, check_current};
pub use saved::{OpenedPlan, PlanAt, SavedPlan};
