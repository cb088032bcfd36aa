//! Writing a plan in parts: its items into parts as they come (and, for a
//! plan written for shards, its later items again with their ids, and the
//! shards' layout), then its header.

use bytes::Bytes;
use serde::Serialize;

use super::super::{PLAN_FORMAT, PlanError, PlanItem, PlanStats, SyncPlan};
use super::{HEADER_NAME, Header, PARTS_VERSION, PartInfo, PlanPlace};
use crate::types::RelPath;

/// Items per part of a plan written for shards.
const ITEMS_PER_SHARDED_PART: usize = 10_000;

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

/// Writes a plan's items into parts as they come, then its header.
pub struct PartsWriter<'a> {
    place: &'a PlanPlace,
    /// Names parts apart from any an earlier plan at the place left.
    run: String,
    part: PartBuffer,
    later: u64,
    parts: Vec<PartInfo>,
    stats: PlanStats,
    unchanged: super::super::ActionTotals,
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
            unchanged: super::super::ActionTotals::default(),
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
    pub fn unchanged(&self) -> super::super::ActionTotals {
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
