//! Reading a plan in parts: its header, then any part when asked for, each
//! checked against the header before its items are given.

use bytes::Bytes;

use super::super::{PlanError, PlanItem, SyncPlan};
use super::{HEADER_NAME, Header, LaterLine, PART_LIMIT, PartInfo, PlanPlace};
use crate::types::RelPath;

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
            version: super::super::PLAN_VERSION,
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
