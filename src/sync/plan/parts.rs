//! A plan saved in parts: a header (`plan.json`: what the plan syncs, with
//! what options, its totals, and for each part its name, item count, byte
//! length, blake3 and first and last path) and parts of compact JSON lines,
//! one item a line, in path order. Entries the plan leaves alone because
//! they are the same on both sides are counted in the header, not listed:
//! a plan's bytes grow with what it changes, not with the tree.
//!
//! The place is a local directory or an object-store prefix
//! (`s3://bucket/plans/run-1/`), so workers need no shared disk. Parts are
//! written first and the header last, in one step (a rename, or a single
//! PUT): a reader finds the old plan or the new one, never half of one.
//! Each part is checked against the header's blake3 before any of its items
//! is used, so a part edited, truncated or left from another plan is refused.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{PLAN_FORMAT, PlanError, PlanItem, PlanStats, ScanTotals, SyncPlan};
use crate::storage::objects::{SmallObject, read_small};
use crate::storage::{Expect, ObjectMeta, Storage, StoreSettings};
use crate::types::RelPath;
use crate::uri::Location;

/// The version of plans in parts (a single JSON document is version 1).
pub const PARTS_VERSION: u32 = 2;

/// The header's name in the plan's place.
pub const HEADER_NAME: &str = "plan.json";

/// Items per part: ~25–60 MB of JSON lines, read and checked one at a time.
const ITEMS_PER_PART: usize = 100_000;

/// Items per part of a temporary plan (`sync`'s, the review's): a run
/// holds the part it runs and the next, so its memory beyond the scans is
/// a few megabytes; a local directory minds no number of files.
const ITEMS_PER_TEMPORARY_PART: usize = 10_000;

/// Items per part of a plan written for shards.
const ITEMS_PER_SHARDED_PART: usize = 10_000;

/// The header's own size limit: it holds no items, only one line per part.
const HEADER_LIMIT: u64 = 256 << 20;

/// A part longer than this is not a part this build wrote.
const PART_LIMIT: u64 = 1 << 30;

/// One part as the header describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub blake3: String,
    pub first: RelPath,
    pub last: RelPath,
    /// How many of its items run after every transfer (deletions,
    /// directories), so that a run's second pass reads only the parts
    /// holding some. Absent in plans of earlier builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub later: Option<u64>,
}

/// Everything of a plan but its items, and where they are.
#[derive(Clone, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    source: Location,
    destination: Location,
    options: super::super::SyncOptions,
    created_ns: i64,
    scanned: ScanTotals,
    stats: PlanStats,
    /// Unchanged entries counted, not listed in the parts.
    #[serde(default)]
    unchanged: super::ActionTotals,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leftovers: Vec<RelPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rebuild_check: Option<crate::storage::RebuildCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost_model: Option<crate::cost::CostModel>,
    parts: Vec<PartInfo>,
    /// Every shard's share, when the plan was written for shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shards: Option<crate::sync::shard::ShardLayout>,
    /// With shards: the items that run after every transfer (deletions,
    /// directories) again, each with its id, in parts of their own, so that
    /// `finalize` reads them and nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    later_parts: Vec<PartInfo>,
}

/// A line of a part of later items: an item and its id in the plan.
#[derive(Serialize, Deserialize)]
struct LaterLine {
    id: usize,
    item: PlanItem,
}

/// A [`LaterLine`] written from a borrowed item.
#[derive(Serialize)]
struct LaterLineRef<'a> {
    id: usize,
    item: &'a PlanItem,
}

/// Later items (deletions, directories) being copied into parts of their own.
#[derive(Default)]
struct LaterParts {
    buffer: PartBuffer,
    parts: Vec<PartInfo>,
}

/// The part being written: its lines, how many, its first and last paths.
#[derive(Default)]
struct PartBuffer {
    bytes: Vec<u8>,
    items: u64,
    first: Option<RelPath>,
    last: Option<RelPath>,
}

impl PartBuffer {
    /// Adds one line, `value` as JSON, for the entry at `path`.
    fn push(&mut self, path: &RelPath, value: &impl Serialize) -> serde_json::Result<()> {
        serde_json::to_writer(&mut self.bytes, value)?;
        self.bytes.push(b'\n');
        if self.first.is_none() {
            self.first = Some(path.clone());
        }
        self.last = Some(path.clone());
        self.items += 1;
        Ok(())
    }

    /// The part sealed under `name`, its description and its bytes; `None`
    /// when it holds nothing. The buffer starts again empty.
    fn seal(&mut self, name: String, later: Option<u64>) -> Option<(PartInfo, Bytes)> {
        let (Some(first), Some(last)) = (self.first.take(), self.last.take()) else {
            return None;
        };
        let bytes = Bytes::from(std::mem::take(&mut self.bytes));
        let info = PartInfo {
            name,
            items: std::mem::take(&mut self.items),
            bytes: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            first,
            last,
            later,
        };
        Some((info, bytes))
    }
}

/// Where a plan in parts lives: a local directory or an object-store prefix.
#[derive(Clone)]
pub struct PlanPlace {
    storage: Storage,
    shown: String,
    /// How many items a part written here holds.
    items_per_part: usize,
}

impl PlanPlace {
    pub async fn open(location: &Location, settings: &StoreSettings) -> Result<Self, PlanError> {
        let shown = location.to_string();
        let storage =
            Storage::open(location, settings)
                .await
                .map_err(|source| PlanError::Place {
                    plan: shown.clone(),
                    source,
                })?;
        Ok(Self {
            storage,
            shown,
            items_per_part: ITEMS_PER_PART,
        })
    }

    fn place_err(&self) -> impl Fn(crate::storage::StorageError) -> PlanError + '_ {
        |source| PlanError::Place {
            plan: self.shown.clone(),
            source,
        }
    }

    /// Writes `name` whole: a temp file renamed into place, or one PUT.
    async fn put(&self, name: &str, bytes: Bytes) -> Result<(), PlanError> {
        match &self.storage {
            Storage::Local(local) => {
                let path = local.root().join(name);
                let write_err = |source| PlanError::Write {
                    path: path.clone(),
                    source,
                };
                std::fs::create_dir_all(local.root()).map_err(write_err)?;
                crate::outfile::write_output(&path, write_err, |out| {
                    std::io::Write::write_all(out, &bytes).map_err(write_err)
                })
            }
            Storage::Object(store) => {
                let key = store.key_of(&RelPath::from(name));
                store
                    .put(
                        &key,
                        crate::storage::body::BodySource::Memory(&bytes),
                        bytes.len() as u64,
                        &ObjectMeta::default(),
                        None,
                        Expect::Any,
                    )
                    .await
                    .map(drop)
                    .map_err(self.place_err())
            }
        }
    }

    /// Reads `name` whole, up to `limit` bytes; `None` when it is not there.
    async fn get(&self, name: &str, limit: u64) -> Result<Option<Bytes>, PlanError> {
        let too_large = || PlanError::Invalid {
            path: self.shown.clone().into(),
            reason: format!("{name} is larger than {limit} bytes"),
        };
        match &self.storage {
            Storage::Local(local) => {
                let path = local.root().join(name);
                let read_err = |source| PlanError::Read {
                    path: path.clone(),
                    source,
                };
                match std::fs::metadata(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(read_err(e)),
                    Ok(meta) if meta.len() > limit => return Err(too_large()),
                    Ok(_) => {}
                }
                std::fs::read(&path)
                    .map(|b| Some(b.into()))
                    .map_err(read_err)
            }
            Storage::Object(store) => {
                let key = store.key_of(&RelPath::from(name));
                match read_small(store.as_ref(), &key, limit)
                    .await
                    .map_err(self.place_err())?
                {
                    SmallObject::Bytes(bytes) => Ok(Some(bytes)),
                    SmallObject::Missing => Ok(None),
                    SmallObject::TooLarge => Err(too_large()),
                }
            }
        }
    }

    /// Removes parts an earlier plan at this place left (once the new
    /// header no longer names them). A failure only leaves them behind.
    async fn remove(&self, names: &[String]) {
        match &self.storage {
            Storage::Local(local) => {
                for name in names {
                    let _ = std::fs::remove_file(local.root().join(name));
                }
            }
            Storage::Object(store) => {
                let keys: Vec<String> = names
                    .iter()
                    .map(|name| store.key_of(&RelPath::from(name.as_str())))
                    .collect();
                if let Err(e) = store.delete_keys(&keys).await {
                    tracing::warn!("{}: old plan parts left behind: {e}", self.shown);
                }
            }
        }
    }

    fn invalid(&self, reason: String) -> PlanError {
        PlanError::Invalid {
            path: self.shown.clone().into(),
            reason,
        }
    }

    /// The header at this place, checked for format and version, with its
    /// bytes' blake3 (which, naming every part's, names the whole plan).
    async fn header(&self) -> Result<Option<(Header, blake3::Hash)>, PlanError> {
        let Some(bytes) = self.get(HEADER_NAME, HEADER_LIMIT).await? else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Kind {
            format: Option<String>,
            version: Option<u64>,
        }
        let kind: Kind = serde_json::from_slice(&bytes)
            .map_err(|e| self.invalid(format!("{HEADER_NAME} is not a JSON object ({e})")))?;
        if kind.format.as_deref() != Some(PLAN_FORMAT) {
            return Err(self.invalid(format!(
                "the `format` field of {HEADER_NAME} is missing or wrong"
            )));
        }
        if kind.version != Some(u64::from(PARTS_VERSION)) {
            return Err(self.invalid(format!(
                "{HEADER_NAME} has plan format version {}, not {PARTS_VERSION} (a plan in parts)",
                kind.version.map_or("(none)".into(), |v| v.to_string())
            )));
        }
        serde_json::from_slice(&bytes)
            .map(|header| Some((header, blake3::hash(&bytes))))
            .map_err(|e| self.invalid(format!("{HEADER_NAME}: {e}")))
    }
}

/// A plan's place in a new temporary directory (under `$TMPDIR`), removed
/// when this is dropped: where `sync`, the review and `apply --replan` keep
/// the plan they run, so that it is never held whole in memory.
pub struct TemporaryPlace {
    pub place: PlanPlace,
    dir: tempfile::TempDir,
}

impl TemporaryPlace {
    /// `purpose` names the directory (`hugesync-PURPOSE-…`).
    pub async fn new(purpose: &str) -> Result<TemporaryPlace, PlanError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hugesync-{purpose}-"))
            .tempdir()
            .map_err(|source| PlanError::Temporary {
                dir: std::env::temp_dir(),
                source,
            })?;
        let place = PlanPlace {
            items_per_part: ITEMS_PER_TEMPORARY_PART,
            ..PlanPlace::open(
                &Location::Local(dir.path().to_path_buf()),
                &StoreSettings::default(),
            )
            .await?
        };
        Ok(TemporaryPlace { place, dir })
    }

    /// The plan written there, opened to be read a part at a time.
    pub async fn open(&self) -> Result<PlanParts, PlanError> {
        PlanParts::open(self.place.clone())
            .await?
            .ok_or_else(|| PlanError::NotFound {
                plan: self.dir.path().display().to_string(),
            })
    }
}

/// Writes a plan's items into parts as they come, then its header.
pub struct PartsWriter<'a> {
    place: &'a PlanPlace,
    /// Names parts apart from any an earlier plan at the place left.
    run: String,
    part: PartBuffer,
    later: u64,
    parts: Vec<PartInfo>,
    stats: PlanStats,
    unchanged: super::ActionTotals,
    items_per_part: usize,
    /// Unchanged items are listed too (the review's own plan, whose
    /// details pane shows any entry), not only counted.
    list_unchanged: bool,
    /// The shards' shares, weighed as the items come.
    layout: Option<crate::sync::shard::LayoutBuilder>,
    /// With shards, the later items copied apart.
    later_parts: LaterParts,
    /// The id the next item listed gets.
    next_id: usize,
}

impl<'a> PartsWriter<'a> {
    pub fn new(place: &'a PlanPlace, created_ns: i64) -> Self {
        Self {
            items_per_part: place.items_per_part,
            place,
            run: format!("{created_ns:x}"),
            part: PartBuffer::default(),
            later: 0,
            parts: Vec::new(),
            stats: PlanStats::default(),
            unchanged: super::ActionTotals::default(),
            list_unchanged: false,
            layout: None,
            later_parts: LaterParts::default(),
            next_id: 0,
        }
    }

    /// A writer that divides the plan into `count` shards (`splittable`:
    /// large files may be cut into pieces) and keeps the layout in the
    /// header.
    pub fn with_shards(mut self, count: u32, splittable: bool) -> Self {
        self.layout = Some(crate::sync::shard::LayoutBuilder::new(count, splittable));
        // A shard reads the parts its runs touch: smaller parts make what it
        // reads beyond its share smaller (at most a part at each end of a run).
        self.items_per_part = self.items_per_part.min(ITEMS_PER_SHARDED_PART);
        self
    }

    /// A writer that seals a part every `items` items.
    #[cfg(test)]
    pub(crate) fn with_items_per_part(mut self, items: usize) -> Self {
        self.items_per_part = items;
        self
    }

    /// A writer that lists unchanged items too.
    pub fn listing_unchanged(mut self) -> Self {
        self.list_unchanged = true;
        self
    }

    pub async fn push(&mut self, item: &PlanItem) -> Result<(), PlanError> {
        self.stats.add(item);
        let listed = !item.is_unchanged() || self.list_unchanged;
        if let Some(layout) = &mut self.layout {
            layout.push(item, listed);
        }
        if !listed {
            self.unchanged.add(item.size());
            return Ok(());
        }
        self.part
            .push(&item.path, item)
            .map_err(|e| self.write_err(e))?;
        let id = self.next_id;
        self.next_id += 1;
        self.later += u64::from(item.runs_after_transfers());
        if self.layout.is_some() && item.runs_after_transfers() {
            self.push_later(id, item).await?;
        }
        if self.part.items as usize == self.items_per_part {
            self.seal().await?;
        }
        Ok(())
    }

    /// Copies a later item, with its id, into the later parts.
    async fn push_later(&mut self, id: usize, item: &PlanItem) -> Result<(), PlanError> {
        self.later_parts
            .buffer
            .push(&item.path, &LaterLineRef { id, item })
            .map_err(|e| self.write_err(e))?;
        if self.later_parts.buffer.items as usize == self.items_per_part {
            self.seal_later().await?;
        }
        Ok(())
    }

    async fn seal_later(&mut self) -> Result<(), PlanError> {
        let later = &mut self.later_parts;
        let name = format!("later-{}-{:05}.jsonl", self.run, later.parts.len());
        let Some((info, bytes)) = later.buffer.seal(name.clone(), None) else {
            return Ok(());
        };
        later.parts.push(info);
        self.place.put(&name, bytes).await
    }

    fn write_err(&self, e: serde_json::Error) -> PlanError {
        PlanError::Write {
            path: self.place.shown.clone().into(),
            source: e.into(),
        }
    }

    /// The totals of the items pushed so far.
    pub fn stats(&self) -> &PlanStats {
        &self.stats
    }

    /// The unchanged items among them, counted and not written.
    pub fn unchanged(&self) -> super::ActionTotals {
        self.unchanged
    }

    async fn seal(&mut self) -> Result<(), PlanError> {
        let name = format!("part-{}-{:05}.jsonl", self.run, self.parts.len());
        let later = Some(self.later);
        let Some((info, bytes)) = self.part.seal(name.clone(), later) else {
            return Ok(());
        };
        self.later = 0;
        self.parts.push(info);
        self.place.put(&name, bytes).await
    }

    /// Writes the last part and the header, which makes the plan the one at
    /// the place; then removes the parts of the plan it replaced.
    pub async fn finish(mut self, plan: &SyncPlan) -> Result<(), PlanError> {
        self.seal().await?;
        self.seal_later().await?;
        let replaced = self.place.header().await.ok().flatten();
        let header = Header {
            format: PLAN_FORMAT.into(),
            version: PARTS_VERSION,
            source: plan.source.clone(),
            destination: plan.destination.clone(),
            options: plan.options.clone(),
            created_ns: plan.created_ns,
            scanned: plan.scanned,
            stats: self.stats.clone(),
            unchanged: self.unchanged,
            leftovers: plan.leftovers.clone(),
            rebuild_check: plan.rebuild_check,
            cost_model: plan.cost_model.clone(),
            parts: self.parts,
            shards: self.layout.map(crate::sync::shard::LayoutBuilder::finish),
            later_parts: self.later_parts.parts,
        };
        let bytes = serde_json::to_vec_pretty(&header).map_err(|e| PlanError::Write {
            path: self.place.shown.clone().into(),
            source: e.into(),
        })?;
        self.place.put(HEADER_NAME, bytes.into()).await?;
        if let Some((replaced, _)) = replaced {
            let stale: Vec<String> = replaced
                .parts
                .into_iter()
                .chain(replaced.later_parts)
                .map(|p| p.name)
                .filter(|name| {
                    header
                        .parts
                        .iter()
                        .chain(&header.later_parts)
                        .all(|p| p.name != *name)
                })
                .collect();
            self.place.remove(&stale).await;
        }
        Ok(())
    }
}

/// Saves `plan` in parts at `place`.
pub async fn save(plan: &SyncPlan, place: &PlanPlace) -> Result<(), PlanError> {
    save_in_parts_of(plan, place, place.items_per_part).await
}

pub(crate) async fn save_in_parts_of(
    plan: &SyncPlan,
    place: &PlanPlace,
    items_per_part: usize,
) -> Result<(), PlanError> {
    let mut writer = PartsWriter::new(place, plan.created_ns);
    writer.items_per_part = items_per_part;
    for item in &plan.items {
        writer.push(item).await?;
    }
    writer.finish(plan).await
}

/// Writes `plan` (the items of `items`, each given the edit `edit` makes of
/// it by its id) as a plan in parts at `place`, a part at a time. The head
/// of the plan written is returned, its totals counted.
pub async fn write_edited(
    plan: &SyncPlan,
    items: &crate::sync::execute::PlanToRun,
    place: &PlanPlace,
    mut edit: impl FnMut(usize, &mut PlanItem),
) -> Result<SyncPlan, PlanError> {
    let mut writer = PartsWriter::new(place, plan.created_ns);
    for n in 0..items.part_count() {
        let part = items.part(n).await?;
        for (id, item) in part.items() {
            let mut item = item.clone();
            edit(id, &mut item);
            writer.push(&item).await?;
        }
    }
    let written = SyncPlan {
        stats: writer.stats().clone(),
        unlisted: writer.unchanged(),
        ..plan.head_only()
    };
    writer.finish(&written).await?;
    Ok(written)
}

/// The side (its name and root) a plan's place overlaps, if any: a plan
/// there would be synced, or deleted, with it.
pub fn side_holding<'a>(
    at: &Location,
    sides: [&'a Location; 2],
) -> Option<(&'static str, &'a Location)> {
    ["source", "destination"]
        .into_iter()
        .zip(sides)
        .find(|(_, root)| crate::sync::check_locations(root, at).is_err())
}

/// A plan in parts, its header read: each part is read when asked for
/// (any number of times, in any order), and checked against the header
/// (length, blake3, count, bounds, path order) before its items are given.
/// The header's bounds are checked in order when it is opened, so parts
/// read one by one give the plan's items in path order, each path once.
pub struct PlanParts {
    place: PlanPlace,
    header: Header,
    /// The blake3 of the header: the plan's id.
    pub id: blake3::Hash,
    /// Where each part's items begin in the plan's order.
    first_ids: Vec<usize>,
}

impl PlanParts {
    /// `None` when no plan is at `place`.
    pub async fn open(place: PlanPlace) -> Result<Option<PlanParts>, PlanError> {
        let Some((header, id)) = place.header().await? else {
            return Ok(None);
        };
        let mut first_ids = Vec::with_capacity(header.parts.len());
        let mut next = 0usize;
        let mut previous: Option<&RelPath> = None;
        for part in &header.parts {
            let damaged = |why: &str| PlanError::PartDamaged {
                plan: place.shown.clone(),
                part: part.name.clone(),
                why: why.into(),
            };
            if part.name.contains('/') || part.name == HEADER_NAME {
                return Err(damaged("the header names a part outside the plan"));
            }
            // Items in path order, each path once: what the executor, the
            // shards and the header's bounds all rely on.
            if part.items == 0
                || part.first > part.last
                || previous.is_some_and(|last| *last >= part.first)
            {
                return Err(damaged("the header's bounds for it are out of path order"));
            }
            previous = Some(&part.last);
            first_ids.push(next);
            next = usize::try_from(part.items)
                .ok()
                .and_then(|items| next.checked_add(items))
                .ok_or_else(|| damaged("the header's item count is out of range"))?;
        }
        if header
            .later_parts
            .iter()
            .any(|p| p.name.contains('/') || p.name == HEADER_NAME || p.items == 0)
        {
            return Err(PlanError::PartDamaged {
                plan: place.shown.clone(),
                part: HEADER_NAME.into(),
                why: "the header names a later part outside the plan".into(),
            });
        }
        if let Some(layout) = &header.shards {
            layout.validate(next).map_err(|why| PlanError::Invalid {
                path: place.shown.clone().into(),
                reason: format!("{HEADER_NAME}: its shard layout is damaged: {why}"),
            })?;
        }
        Ok(Some(PlanParts {
            place,
            header,
            id,
            first_ids,
        }))
    }

    /// The plan the header describes, its items left in the parts.
    pub fn plan_without_items(&self) -> SyncPlan {
        let header = self.header.clone();
        SyncPlan {
            format: header.format,
            version: super::PLAN_VERSION,
            source: header.source,
            destination: header.destination,
            options: header.options,
            created_ns: header.created_ns,
            scanned: header.scanned,
            stats: header.stats,
            items: Vec::new(),
            unlisted: header.unchanged,
            leftovers: header.leftovers,
            rebuild_check: header.rebuild_check,
            cost_model: header.cost_model,
        }
    }

    /// Every shard's share, when the plan was written for shards.
    pub fn layout(&self) -> Option<&crate::sync::shard::ShardLayout> {
        self.header.shards.as_ref()
    }

    /// How many items the plan lists.
    pub fn item_count(&self) -> usize {
        self.first_ids.last().copied().unwrap_or(0)
            + self
                .header
                .parts
                .last()
                .map_or(0, |p| usize::try_from(p.items).unwrap_or(0))
    }

    /// Part `n`'s length in bytes, as the header gives it.
    pub fn part_bytes(&self, n: usize) -> u64 {
        self.header.parts.get(n).map_or(0, |p| p.bytes)
    }

    /// The ids of part `n`'s items.
    pub fn ids_of(&self, n: usize) -> std::ops::Range<usize> {
        let first = self.first_id(n);
        first
            ..first
                + self
                    .header
                    .parts
                    .get(n)
                    .map_or(0, |p| usize::try_from(p.items).unwrap_or(0))
    }

    /// The parts that hold ids `ids`.
    pub fn parts_holding(&self, ids: std::ops::Range<usize>) -> std::ops::Range<usize> {
        if ids.is_empty() {
            return 0..0;
        }
        let first = self
            .first_ids
            .partition_point(|f| *f <= ids.start)
            .saturating_sub(1);
        let end = self.first_ids.partition_point(|f| *f < ids.end);
        first..end
    }

    /// How many parts the plan has.
    pub fn count(&self) -> usize {
        self.header.parts.len()
    }

    /// The id (place in the plan's order) of part `n`'s first item.
    pub fn first_id(&self, n: usize) -> usize {
        self.first_ids.get(n).copied().unwrap_or(0)
    }

    /// The part that holds item `id`.
    pub fn part_of(&self, id: usize) -> Option<usize> {
        let n = self
            .first_ids
            .partition_point(|first| *first <= id)
            .checked_sub(1)?;
        let items = usize::try_from(self.header.parts[n].items).ok()?;
        (id < self.first_ids[n] + items).then_some(n)
    }

    /// Whether part `n` holds items that run after every transfer
    /// (deletions, directories); a header of a build that did not count
    /// them says yes.
    pub fn holds_later_work(&self, n: usize) -> bool {
        self.header
            .parts
            .get(n)
            .is_none_or(|part| part.later.is_none_or(|later| later > 0))
    }

    /// Part `n`'s items, in path order, once checked against the header.
    pub async fn read(&self, n: usize) -> Result<Vec<PlanItem>, PlanError> {
        let Some(part) = self.header.parts.get(n) else {
            return Ok(Vec::new());
        };
        let bytes = self.checked_bytes(part).await?;
        self.parse(part, &bytes, |item: PlanItem| Ok(item), |item| &item.path)
    }

    /// How many parts of later items (deletions, directories, with their
    /// ids) the plan has: a plan written for shards has them.
    pub fn later_count(&self) -> usize {
        self.header.later_parts.len()
    }

    /// Later part `n`'s items with their ids, in path order, once checked
    /// against the header (and each id against the plan's items).
    pub async fn read_later(&self, n: usize) -> Result<Vec<(usize, PlanItem)>, PlanError> {
        let Some(part) = self.header.later_parts.get(n) else {
            return Ok(Vec::new());
        };
        let bytes = self.checked_bytes(part).await?;
        let items = self.item_count();
        let mut previous: Option<usize> = None;
        self.parse(
            part,
            &bytes,
            |line: LaterLine| {
                if line.id >= items || previous.is_some_and(|p| p >= line.id) {
                    return Err(format!("item id {} is out of order or range", line.id));
                }
                previous = Some(line.id);
                Ok((line.id, line.item))
            },
            |(_, item)| &item.path,
        )
    }

    /// Part `n` of the later items' length in bytes.
    pub fn later_bytes(&self, n: usize) -> u64 {
        self.header.later_parts.get(n).map_or(0, |p| p.bytes)
    }

    /// A part's bytes, checked against the header's length and blake3.
    async fn checked_bytes(&self, part: &PartInfo) -> Result<Bytes, PlanError> {
        let place = &self.place;
        let damaged = |why: String| PlanError::PartDamaged {
            plan: place.shown.clone(),
            part: part.name.clone(),
            why,
        };
        let bytes = place
            .get(&part.name, PART_LIMIT.min(part.bytes))
            .await
            .map_err(|e| match e {
                PlanError::Invalid { .. } => damaged(format!(
                    "it is longer than the {} bytes the header gives",
                    part.bytes
                )),
                other => other,
            })?
            .ok_or_else(|| damaged("it is missing".into()))?;
        if bytes.len() as u64 != part.bytes {
            return Err(damaged(format!(
                "it holds {} bytes, the header says {}",
                bytes.len(),
                part.bytes
            )));
        }
        if blake3::hash(&bytes).to_hex().as_str() != part.blake3 {
            return Err(damaged("its blake3 is not the one in the header".into()));
        }
        Ok(bytes)
    }

    /// A part's lines, each read as `L` and made a value by `take`, checked
    /// (by the path `path_of` gives) for path order, count and the header's
    /// bounds.
    fn parse<L: serde::de::DeserializeOwned, T>(
        &self,
        part: &PartInfo,
        bytes: &[u8],
        mut take: impl FnMut(L) -> Result<T, String>,
        path_of: fn(&T) -> &RelPath,
    ) -> Result<Vec<T>, PlanError> {
        let damaged = |why: String| PlanError::PartDamaged {
            plan: self.place.shown.clone(),
            part: part.name.clone(),
            why,
        };
        // The header's count is checked below, not trusted for memory.
        let mut items: Vec<T> =
            Vec::with_capacity(usize::try_from(part.items).unwrap_or(0).min(1 << 17));
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let read: L = serde_json::from_slice(line)
                .map_err(|e| damaged(format!("line {}: {e}", n + 1)))?;
            let value = take(read).map_err(|why| damaged(format!("line {}: {why}", n + 1)))?;
            if items.last().is_some_and(|p| path_of(p) >= path_of(&value)) {
                return Err(damaged(format!(
                    "line {}: {} is out of path order",
                    n + 1,
                    path_of(&value)
                )));
            }
            items.push(value);
        }
        if items.len() as u64 != part.items
            || items.first().map(path_of) != Some(&part.first)
            || items.last().map(path_of) != Some(&part.last)
        {
            return Err(damaged(
                "its items are not the count or the bounds the header gives".into(),
            ));
        }
        Ok(items)
    }
}
