//! Shard reports: what each shard did, kept next to the plan, in a local
//! directory or under an object-store prefix every worker reaches.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::{Context, Error};
use crate::storage::{Expect, ObjectMeta, SharedStore, Storage};
use crate::sync::plan::PlanAt;
use crate::sync::shard::ShardId;
use crate::uri::Location;

pub(super) const REPORT_FORMAT: &str = "hugesync-shard-report";

/// What one shard did, kept where `finalize` can read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardReport {
    pub format: String,
    /// blake3 of the plan file (16 hex digits): reports of another plan are
    /// never mixed in.
    pub plan_id: String,
    pub shard: ShardId,
    /// Ran to the end (not interrupted, not stopped on a conflict).
    pub complete: bool,
    /// Items this run transferred.
    pub done: Vec<usize>,
    /// Items found already done at the destination (an earlier attempt).
    pub already_done: Vec<usize>,
    /// Pieces of cut files this shard sent: (item, piece number).
    pub pieces_done: Vec<(usize, u32)>,
    pub failed: Vec<ShardFailure>,
    pub bytes_sent: u64,
    pub duration_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFailure {
    pub item: usize,
    pub path: String,
    pub error: String,
}

impl ShardReport {
    pub(super) fn is_clean(&self) -> bool {
        self.complete && self.failed.is_empty()
    }
}

/// Where reports are kept: next to the plan, a local directory, or a prefix
/// on an object store every worker reaches.
pub(super) enum ReportDir {
    /// Files named `STEM` + `shard-K-of-N.json` in `dir`.
    Local {
        dir: PathBuf,
        stem: String,
    },
    Store(SharedStore),
}

impl ReportDir {
    pub(super) async fn open(
        plan: &PlanAt,
        report_dir: Option<&str>,
        ctx: &Context,
    ) -> Result<ReportDir, Error> {
        let location = match (report_dir, plan) {
            (Some(dir), _) => Location::parse(dir)?,
            // With a plan in parts: in its directory or under its prefix.
            (None, PlanAt::Parts(location)) => location.clone(),
            // With a plan file: beside it, named after it.
            (None, PlanAt::File(plan_file)) => {
                let stem = plan_file
                    .file_name()
                    .map(|n| format!("{}.", n.to_string_lossy()))
                    .unwrap_or_default();
                let dir = plan_file
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                return Ok(ReportDir::Local { dir, stem });
            }
        };
        match location {
            Location::Local(dir) => Ok(ReportDir::Local {
                dir,
                stem: String::new(),
            }),
            remote => match Storage::open(&remote, &ctx.settings.store_settings()).await? {
                Storage::Object(store) => Ok(ReportDir::Store(store)),
                Storage::Local(local) => Ok(ReportDir::Local {
                    dir: local.root().to_path_buf(),
                    stem: String::new(),
                }),
            },
        }
    }

    fn name(shard: ShardId) -> String {
        format!("shard-{}-of-{}.json", shard.index, shard.count)
    }

    pub(super) fn describe(&self, shard: ShardId) -> String {
        match self {
            ReportDir::Local { dir, stem } => dir
                .join(format!("{stem}{}", Self::name(shard)))
                .display()
                .to_string(),
            ReportDir::Store(store) => {
                store.url_of(&format!("{}{}", store.prefix(), Self::name(shard)))
            }
        }
    }

    pub(super) async fn write(&self, report: &ShardReport) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(report).map_err(|e| Error::Output(e.into()))?;
        match self {
            ReportDir::Local { dir, stem } => {
                let path = dir.join(format!("{stem}{}", Self::name(report.shard)));
                let io_error = |e| {
                    Error::from(crate::storage::StorageError::io(
                        "cannot write the shard report",
                        &path,
                        e,
                    ))
                };
                std::fs::create_dir_all(dir).map_err(io_error)?;
                crate::outfile::write_output(&path, io_error, |out| {
                    out.write_all(&bytes).map_err(io_error)
                })?;
            }
            ReportDir::Store(store) => {
                let key = format!("{}{}", store.prefix(), Self::name(report.shard));
                let body = bytes::Bytes::from(bytes);
                store
                    .put(
                        &key,
                        crate::storage::body::BodySource::Memory(&body),
                        body.len() as u64,
                        &ObjectMeta::default(),
                        None,
                        Expect::Any,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Every report found, by shard (unreadable ones as errors).
    pub(super) async fn read_all(
        &self,
    ) -> Result<Vec<(String, Result<ShardReport, String>)>, Error> {
        let mut found = Vec::new();
        match self {
            ReportDir::Local { dir, stem } => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
                    Err(e) => {
                        return Err(crate::storage::StorageError::io(
                            "cannot list the shard reports in",
                            dir,
                            e,
                        )
                        .into());
                    }
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some(rest) = name.strip_prefix(stem.as_str()) else {
                        continue;
                    };
                    if !is_report_name(rest) {
                        continue;
                    }
                    let parsed = std::fs::read(entry.path())
                        .map_err(|e| e.to_string())
                        .and_then(|bytes| parse_report(&bytes));
                    found.push((entry.path().display().to_string(), parsed));
                }
            }
            ReportDir::Store(store) => {
                let mut token = None;
                loop {
                    let page = store
                        .list_page(&crate::storage::object::ListQuery::default(), token.take())
                        .await?;
                    for object in page.objects {
                        if object.rel_key.contains('/') || !is_report_name(&object.rel_key) {
                            continue;
                        }
                        let key = format!("{}{}", store.prefix(), object.rel_key);
                        let parsed = match crate::storage::objects::read_small(
                            store.as_ref(),
                            &key,
                            64 << 20,
                        )
                        .await?
                        {
                            crate::storage::objects::SmallObject::Bytes(bytes) => {
                                parse_report(&bytes)
                            }
                            other => Err(format!("unreadable ({other:?})")),
                        };
                        found.push((store.url_of(&key), parsed));
                    }
                    match page.next {
                        Some(next) => token = Some(next),
                        None => break,
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// The report of `shard`, if there is a readable one.
    pub(super) async fn read(&self, shard: ShardId) -> Option<ShardReport> {
        let bytes = match self {
            ReportDir::Local { dir, stem } => {
                std::fs::read(dir.join(format!("{stem}{}", Self::name(shard)))).ok()?
            }
            ReportDir::Store(store) => {
                let key = format!("{}{}", store.prefix(), Self::name(shard));
                match crate::storage::objects::read_small(store.as_ref(), &key, 64 << 20).await {
                    Ok(crate::storage::objects::SmallObject::Bytes(bytes)) => bytes.to_vec(),
                    _ => return None,
                }
            }
        };
        parse_report(&bytes).ok()
    }
}

fn is_report_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("shard-")
        .and_then(|r| r.strip_suffix(".json"))
    else {
        return false;
    };
    rest.split_once("-of-")
        .is_some_and(|(k, n)| k.parse::<u32>().is_ok() && n.parse::<u32>().is_ok())
}

fn parse_report(bytes: &[u8]) -> Result<ShardReport, String> {
    let report: ShardReport = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if report.format != REPORT_FORMAT {
        return Err(format!("not a shard report (format {})", report.format));
    }
    Ok(report)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names() {
        assert!(is_report_name("shard-2-of-8.json"));
        assert!(!is_report_name("shard-2-of-8.json.tmp"));
        assert!(!is_report_name("plan.json"));
    }
}
