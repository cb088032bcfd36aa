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

use crate::storage::body::BodySums;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{PLAN_FORMAT, PlanError, PlanItem, PlanStats, ScanTotals};
use crate::storage::objects::{SmallObject, read_small};
use crate::storage::{Expect, ObjectMeta, Storage, StoreSettings};
use crate::types::RelPath;
use crate::uri::Location;

mod read;
mod write;

pub use read::PlanParts;
#[cfg(test)]
pub(crate) use write::save_in_parts_of;
pub use write::{PartsWriter, save, write_edited};

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
#[derive(Deserialize)]
struct LaterLine {
    id: usize,
    item: PlanItem,
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
                        BodySums::NONE,
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
