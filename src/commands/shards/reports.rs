//! Shard reports: what each shard did, kept next to the plan, in a local
//! directory or under an object-store prefix every worker reaches.

use crate::storage::body::BodySums;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::super::{Context, Error};
use crate::storage::{Expect, ObjectMeta, SharedStore, Storage};
use crate::sync::shard::{IdRanges, ShardId};
use crate::uri::Location;

pub(super) const REPORT_FORMAT: &str = "hugesync-shard-report-2";

/// Reports and journal segments are small; anything larger is not one.
const REPORT_LIMIT: u64 = 256 << 20;

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
    /// Items this shard transferred (over all its attempts), as ranges.
    pub done: IdRanges,
    /// Items found already done at the destination (by an attempt that
    /// left no record of them).
    pub already_done: IdRanges,
    /// Pieces of cut files this shard sent: (item, piece number).
    pub pieces_done: Vec<(usize, u32)>,
    pub failed: Vec<ShardFailure>,
    pub bytes_sent: u64,
    pub duration_s: f64,
    /// What checking its entries took (the last attempt's).
    #[serde(default)]
    pub checked: CheckFigures,
    /// Entries of its share that changed since the plan: the shard refused
    /// to run (exit 2), and so does finalize until the plan is made again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<StaleEntries>,
}

/// Entries a shard found changed since the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StaleEntries {
    pub count: u64,
    pub first: String,
}

/// What a shard read and asked to check its entries.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct CheckFigures {
    pub entries: u64,
    pub plan_bytes_read: u64,
    pub parts_read: u64,
    pub source_lists: u64,
    pub source_heads: u64,
    pub destination_lists: u64,
    pub destination_heads: u64,
    /// Seconds from start to the first transfer.
    pub ready_s: f64,
}

/// What a shard finished since the last segment of its journal: written as
/// it goes, so that a re-run after a kill skips it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JournalSegment {
    pub plan_id: String,
    pub done: IdRanges,
    pub pieces_done: Vec<(usize, u32)>,
    pub bytes_sent: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFailure {
    pub item: usize,
    pub path: String,
    pub error: String,
}

impl ShardReport {
    /// A report of plan `plan_id` by `shard` that did nothing yet.
    pub(super) fn empty(plan_id: &str, shard: ShardId) -> ShardReport {
        ShardReport {
            format: REPORT_FORMAT.into(),
            plan_id: plan_id.to_string(),
            shard,
            complete: false,
            done: IdRanges::default(),
            already_done: IdRanges::default(),
            pieces_done: Vec::new(),
            failed: Vec::new(),
            bytes_sent: 0,
            duration_s: 0.0,
            checked: CheckFigures::default(),
            stale: None,
        }
    }

    pub(super) fn is_clean(&self) -> bool {
        self.complete && self.failed.is_empty() && self.stale.is_none()
    }
}

/// Where reports are kept: with the plan (in its directory or under its
/// prefix), or in a local directory or object-store prefix every worker
/// reaches.
pub(super) enum ReportDir {
    /// Files named `shard-K-of-N.json` in `dir`.
    Local(PathBuf),
    Store(SharedStore),
}

impl ReportDir {
    /// `report_dir`, else the plan's own place.
    pub(super) async fn open(
        plan: &Location,
        report_dir: Option<&str>,
        ctx: &Context,
    ) -> Result<ReportDir, Error> {
        let location = match report_dir {
            Some(dir) => Location::parse(dir)?,
            None => plan.clone(),
        };
        match location {
            Location::Local(dir) => Ok(ReportDir::Local(dir)),
            remote => match Storage::open(&remote, &ctx.settings.store_settings()).await? {
                Storage::Object(store) => Ok(ReportDir::Store(store)),
                Storage::Local(local) => Ok(ReportDir::Local(local.root().to_path_buf())),
            },
        }
    }

    fn name(shard: ShardId) -> String {
        format!("shard-{}-of-{}.json", shard.index, shard.count)
    }

    /// The journal segments of `shard` are named this and a number.
    fn journal_stem(shard: ShardId) -> String {
        format!("shard-{}-of-{}.journal-", shard.index, shard.count)
    }

    fn shown(&self, name: &str) -> String {
        match self {
            ReportDir::Local(dir) => dir.join(name).display().to_string(),
            ReportDir::Store(store) => store.url_of(&format!("{}{name}", store.prefix())),
        }
    }

    pub(super) fn describe(&self, shard: ShardId) -> String {
        self.shown(&Self::name(shard))
    }

    /// Writes `name` whole (a temp file renamed, or one PUT).
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        match self {
            ReportDir::Local(dir) => {
                let path = dir.join(name);
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
                let key = format!("{}{name}", store.prefix());
                let body = bytes::Bytes::from(bytes);
                store
                    .put(
                        &key,
                        crate::storage::body::BodySource::Memory(&body),
                        body.len() as u64,
                        &ObjectMeta::default(),
                        BodySums::NONE,
                        Expect::Any,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Reads `name`; `None` when it is not there.
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            ReportDir::Local(dir) => {
                let path = dir.join(name);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                }
            }
            ReportDir::Store(store) => {
                let key = format!("{}{name}", store.prefix());
                match crate::storage::objects::read_small(store.as_ref(), &key, REPORT_LIMIT).await
                {
                    Ok(crate::storage::objects::SmallObject::Bytes(bytes)) => {
                        Ok(Some(bytes.to_vec()))
                    }
                    Ok(crate::storage::objects::SmallObject::Missing) => Ok(None),
                    Ok(other) => Err(format!("{}: unreadable ({other:?})", store.url_of(&key))),
                    Err(e) => Err(format!("{}: {e}", store.url_of(&key))),
                }
            }
        }
    }

    /// The names here that start with `prefix`, in order.
    async fn names(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        match self {
            ReportDir::Local(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
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
                    if name.starts_with(prefix) {
                        names.push(name);
                    }
                }
            }
            ReportDir::Store(store) => {
                let query = crate::storage::object::ListQuery {
                    prefix: prefix.to_string(),
                    ..Default::default()
                };
                let mut token = None;
                loop {
                    let page = store.list_page(&query, token.take()).await?;
                    names.extend(
                        page.objects
                            .into_iter()
                            .map(|o| o.rel_key)
                            .filter(|k| !k.contains('/') && k.starts_with(prefix)),
                    );
                    match page.next {
                        Some(next) => token = Some(next),
                        None => break,
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes `names`; a failure only leaves them behind.
    async fn remove(&self, names: &[String]) {
        match self {
            ReportDir::Local(dir) => {
                for name in names {
                    let _ = std::fs::remove_file(dir.join(name));
                }
            }
            ReportDir::Store(store) => {
                let keys: Vec<String> = names
                    .iter()
                    .map(|n| format!("{}{n}", store.prefix()))
                    .collect();
                if let Err(e) = store.delete_keys(&keys).await {
                    tracing::warn!("shard journal segments left behind: {e}");
                }
            }
        }
    }

    /// Writes the shard's report, then drops its journal (the report holds
    /// all of it).
    pub(super) async fn write(&self, report: &ShardReport) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(report).map_err(|e| Error::Output(e.into()))?;
        self.put(&Self::name(report.shard), bytes).await?;
        let segments = self.names(&Self::journal_stem(report.shard)).await?;
        self.remove(&segments).await;
        Ok(())
    }

    /// Every report found, by shard (unreadable ones as errors).
    pub(super) async fn read_all(
        &self,
    ) -> Result<Vec<(String, Result<ShardReport, String>)>, Error> {
        let mut found = Vec::new();
        for name in self.names("shard-").await? {
            if !is_report_name(&name) {
                continue;
            }
            let parsed = match self.get(&name).await {
                Ok(Some(bytes)) => parse_report(&bytes),
                Ok(None) => Err("it went missing while being read".into()),
                Err(e) => Err(e),
            };
            found.push((self.shown(&name), parsed));
        }
        Ok(found)
    }

    /// The report of `shard`, if there is a readable one.
    pub(super) async fn read(&self, shard: ShardId) -> Option<ShardReport> {
        let bytes = self.get(&Self::name(shard)).await.ok()??;
        parse_report(&bytes).ok()
    }

    /// What the journal of `shard` holds for plan `plan_id` (segments of
    /// another plan are passed over), and the next segment's number.
    pub(super) async fn read_journal(
        &self,
        shard: ShardId,
        plan_id: &str,
    ) -> Result<(JournalSegment, u64), Error> {
        let stem = Self::journal_stem(shard);
        let mut all = JournalSegment {
            plan_id: plan_id.to_string(),
            ..Default::default()
        };
        let mut next = 0;
        for name in self.names(&stem).await? {
            let Some(number) = name
                .strip_prefix(&stem)
                .and_then(|r| r.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            next = next.max(number + 1);
            let Ok(Some(bytes)) = self.get(&name).await else {
                continue;
            };
            // A segment cut short by a kill is a segment not written.
            let Ok(segment) = serde_json::from_slice::<JournalSegment>(&bytes) else {
                continue;
            };
            if segment.plan_id != plan_id {
                continue;
            }
            all.done.extend(&segment.done);
            all.pieces_done.extend(segment.pieces_done);
            all.bytes_sent += segment.bytes_sent;
        }
        Ok((all, next))
    }

    /// Writes segment `number` of the journal of `shard`.
    pub(super) async fn write_journal(
        &self,
        shard: ShardId,
        number: u64,
        segment: &JournalSegment,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(segment).map_err(|e| Error::Output(e.into()))?;
        self.put(
            &format!("{}{number:08}.json", Self::journal_stem(shard)),
            bytes,
        )
        .await
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
    #[derive(Deserialize)]
    struct Kind {
        format: Option<String>,
    }
    let kind: Kind = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if kind.format.as_deref() != Some(REPORT_FORMAT) {
        return Err(format!(
            "not a shard report of this version (format {}): re-run the shard",
            kind.format.as_deref().unwrap_or("(none)")
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names() {
        assert!(is_report_name("shard-2-of-8.json"));
        assert!(!is_report_name("shard-2-of-8.json.tmp"));
        assert!(!is_report_name("shard-2-of-8.journal-00000001.json"));
        assert!(!is_report_name("plan.json"));
    }
}
