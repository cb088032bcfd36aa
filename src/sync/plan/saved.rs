//! Plans saved and loaded: a plan in parts at a directory or an
//! object-store prefix (`parts`), or one JSON document (version 1, and what
//! `plan -o -` writes), each read back as input to be checked.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::Deserialize;

use super::{PLAN_FORMAT, PLAN_VERSION, PlanError, SyncPlan, parts};
use crate::sync::execute::PlanToRun;
use crate::uri::Location;

/// Where a saved plan is.
#[derive(Clone, Debug)]
pub enum PlanAt {
    /// A plan file of version 1 (one JSON document).
    File(PathBuf),
    /// A plan in parts: a local directory or an object-store prefix.
    Parts(Location),
}

impl std::fmt::Display for PlanAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanAt::File(path) => write!(f, "{}", path.display()),
            PlanAt::Parts(location) => write!(f, "{location}"),
        }
    }
}

/// A plan loaded from where it was saved.
#[derive(Debug)]
pub struct SavedPlan {
    pub plan: SyncPlan,
    /// Names this plan among others (16 hex digits of a blake3 over the
    /// file, or over the header that names every part's blake3).
    pub id: String,
    pub at: PlanAt,
}

impl SyncPlan {
    /// Saves the plan as JSON, atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        let write_err = |source| PlanError::Write {
            path: path.to_path_buf(),
            source,
        };
        crate::outfile::write_output(path, write_err, |out| {
            serde_json::to_writer_pretty(out, self).map_err(|e| write_err(e.into()))
        })
    }

    /// Loads and validates a saved plan.
    ///
    /// Read as a stream, twice: first only the header (so a plan of another
    /// format or version is named as such, not reported as whichever field
    /// changed), then the plan itself straight into its items. Neither pass
    /// holds the file's text or a JSON tree: a million-item plan costs what its
    /// items cost.
    pub fn load(path: &Path) -> Result<SyncPlan, PlanError> {
        Self::load_hashed(path).map(|(plan, _)| plan)
    }

    /// [`SyncPlan::load`], with the blake3 of the file's bytes, taken as the
    /// first pass reads them (it reads to the end, past the header).
    fn load_hashed(path: &Path) -> Result<(SyncPlan, blake3::Hash), PlanError> {
        let invalid = |reason: String| PlanError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let read_err = |source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        };
        let parse_err = |e: serde_json::Error| {
            if e.is_io() {
                read_err(e.into())
            } else if e.is_syntax() || e.is_eof() {
                invalid(format!("not JSON ({e})"))
            } else {
                invalid(e.to_string())
            }
        };
        let open = || std::fs::File::open(path).map_err(read_err);
        fn buffered<R: std::io::Read>(reader: R) -> std::io::BufReader<R> {
            std::io::BufReader::with_capacity(1 << 20, reader)
        }

        /// The fields that say what a file is; everything else is skipped
        /// unread in this pass.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u64>,
        }
        let mut hashing = blake3::Hasher::new();
        let header: Header = serde_json::from_reader(buffered(Hashing {
            inner: open()?,
            hasher: &mut hashing,
        }))
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => invalid("not a JSON object".into()),
            _ => parse_err(e),
        })?;
        let hash = hashing.finalize();
        if header.format.as_deref() != Some(PLAN_FORMAT) {
            return Err(invalid("the `format` field is missing or wrong".into()));
        }
        match header.version {
            Some(v) if v == u64::from(PLAN_VERSION) => {}
            Some(v) if v == u64::from(parts::PARTS_VERSION) => {
                return Err(invalid(format!(
                    "this is the header of a plan in parts: name its directory or prefix{}",
                    path.parent()
                        .map(|dir| format!(" (`{}`)", dir.display()))
                        .unwrap_or_default()
                )));
            }
            Some(v) => {
                return Err(invalid(format!(
                    "plan format version {v} is not supported (this build reads version {PLAN_VERSION})"
                )));
            }
            None => return Err(invalid("the `version` field is missing".into())),
        }
        let mut plan: SyncPlan = serde_json::from_reader(buffered(open()?)).map_err(parse_err)?;
        plan.items.shrink_to_fit();
        plan.validate().map_err(invalid)?;
        Ok((plan, hash))
    }

    /// A plan read from a file or store is input: nothing in it may point
    /// outside the roots or configure the engine out of its range, and its
    /// totals are its items' own.
    fn validate(&mut self) -> Result<(), String> {
        if let Some(item) = self.items.iter().find(|item| !item.path.is_contained()) {
            return Err(format!(
                "entry path {:?} would leave the sync root",
                item.path.display()
            ));
        }
        // A run and its checks go through the items in path order.
        if let Some(pair) = self
            .items
            .windows(2)
            .find(|pair| pair[0].path >= pair[1].path)
        {
            return Err(format!(
                "entry {:?} is out of path order (after {:?}); make the plan again",
                pair[1].path.display(),
                pair[0].path.display()
            ));
        }
        self.validate_options()?;
        self.refresh_stats();
        Ok(())
    }

    /// The options a saved plan configures the engine with are in range.
    fn validate_options(&self) -> Result<(), String> {
        let block = self.options.block_size;
        if crate::signature::valid_block_size(block).is_none() {
            return Err(format!(
                "block size {block} is not {}",
                crate::signature::BLOCK_SIZE_RULE
            ));
        }
        Ok(())
    }

    /// Saves the plan in parts at `location`: a local directory (made if
    /// need be) or an object-store prefix.
    pub async fn save_to(
        &self,
        location: &Location,
        settings: &crate::storage::StoreSettings,
    ) -> Result<(), PlanError> {
        let place = parts::PlanPlace::open(location, settings).await?;
        parts::save(self, &place).await
    }

    /// Loads the plan at `location` whole: a plan in parts (a directory or
    /// an object-store prefix), or a plan file of version 1.
    pub async fn load_saved(
        location: &Location,
        settings: &crate::storage::StoreSettings,
    ) -> Result<SavedPlan, PlanError> {
        let OpenedPlan { plan, id, at } = OpenedPlan::open(location, settings).await?;
        let plan = match plan {
            // A plan file: read whole and checked as it was opened.
            PlanToRun::InMemory(plan) => Arc::unwrap_or_clone(plan),
            PlanToRun::InParts { head, parts, .. } => {
                let mut plan = head.head_only();
                for n in 0..parts.count() {
                    plan.items.extend(parts.read(n).await?);
                }
                plan.validate().map_err(|reason| PlanError::Invalid {
                    path: location.to_string().into(),
                    reason,
                })?;
                plan
            }
        };
        Ok(SavedPlan { plan, id, at })
    }
}

/// A saved plan opened to run: a plan file of version 1 read whole, or a
/// plan in parts of which only the header is read — each part is read and
/// checked against it when its turn comes, so the plan is never held whole.
pub struct OpenedPlan {
    pub plan: crate::sync::execute::PlanToRun,
    /// As [`SavedPlan::id`].
    pub id: String,
    pub at: PlanAt,
}

impl OpenedPlan {
    /// Opens the plan at `location` (a plan in parts, or a plan file of
    /// version 1).
    pub async fn open(
        location: &Location,
        settings: &crate::storage::StoreSettings,
    ) -> Result<OpenedPlan, PlanError> {
        if let Location::Local(path) = location
            && path.is_file()
        {
            let (plan, hash) = SyncPlan::load_hashed(path)?;
            return Ok(OpenedPlan {
                plan: PlanToRun::from(plan),
                id: plan_id(hash),
                at: PlanAt::File(path.clone()),
            });
        }
        let place = parts::PlanPlace::open(location, settings).await?;
        let parts = parts::PlanParts::open(place)
            .await?
            .ok_or_else(|| PlanError::NotFound {
                plan: location.to_string(),
            })?;
        let head = parts.plan_without_items();
        head.validate_options()
            .map_err(|reason| PlanError::Invalid {
                path: location.to_string().into(),
                reason,
            })?;
        Ok(OpenedPlan {
            id: plan_id(parts.id),
            plan: PlanToRun::in_parts(Arc::new(head), Arc::new(parts)),
            at: PlanAt::Parts(location.clone()),
        })
    }
}

/// How a plan is named among others: 16 hex digits of its blake3.
fn plan_id(hash: blake3::Hash) -> String {
    hash.to_hex()[..16].to_string()
}

/// A reader that hashes what passes through it.
struct Hashing<'h, R> {
    inner: R,
    hasher: &'h mut blake3::Hasher,
}

impl<R: std::io::Read> std::io::Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
