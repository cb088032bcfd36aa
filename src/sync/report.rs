//! What a run achieved: the counts behind the closing summary and the exit
//! code, and the summary's lines, shared by every front end.

use std::time::Duration;

use serde::Serialize;

/// The outcome of a run, for the final summary and the exit code.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExecReport {
    /// Entries written whole (files, links, directories).
    pub copied: u64,
    pub delta: u64,
    pub metadata: u64,
    pub deleted: u64,
    /// Items the plan skipped.
    pub skipped: u64,
    pub failed: u64,
    pub bytes_sent: u64,
    pub bytes_saved: u64,
    pub duration: Duration,
    /// Ctrl+C (or SIGTERM) stopped the run before it finished.
    pub interrupted: bool,
    /// Deletions left out because transfers failed.
    pub deletes_withheld: u64,
    /// Why they were withheld.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes_withheld_because: Option<String>,
    /// Items the destination changed under since the plan (re-planned, kept,
    /// or the reason the run stopped).
    pub conflicts: u64,
    /// `--fail-on-conflict` stopped the run: no new item started after it.
    pub stopped_on_conflict: bool,
    /// A store refused an item for want of permission (403, a bucket policy,
    /// a read-only SAS), as it would refuse every other: the run stopped
    /// after it. What the store said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_on_denial: Option<String>,
    /// A part of a plan in parts could not be read back (changed or
    /// damaged since the run began): the run stopped. Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_on_plan: Option<String>,
    /// Requests to object stores that failed and were tried again (the scan's
    /// included).
    #[serde(default)]
    pub retries: u64,
    /// Requests made to both sides since they were opened (the scan's
    /// listing included), by the classes the cost estimate counts.
    #[serde(default)]
    pub requests: crate::cost::Requests,
}

impl ExecReport {
    /// The closing summary, one line per fact, for every front end.
    pub fn summary_lines(&self) -> Vec<String> {
        use crate::format;
        let mut lines = vec![
            format!(
                "{} {}: {} copied, {} by delta, {} metadata, {} deleted, {} unchanged, {} failed.",
                if self.interrupted {
                    "Interrupted after"
                } else {
                    "Done in"
                },
                format::duration(self.duration),
                format::count(self.copied),
                format::count(self.delta),
                format::count(self.metadata),
                format::count(self.deleted),
                format::count(self.skipped),
                format::count(self.failed),
            ),
            format!(
                "Sent {} at {}; saved {} by delta.",
                format::bytes(self.bytes_sent),
                format::rate(self.bytes_sent, self.duration),
                format::bytes(self.bytes_saved),
            ),
        ];
        let r = self.requests;
        if r.total() > 0 {
            lines.push(format!(
                "Requests: {} ({} put/part, {} copy, {} get/head, {} list, {} delete).",
                format::count(r.total()),
                format::count(r.put),
                format::count(r.copy),
                format::count(r.get),
                format::count(r.list),
                format::count(r.delete),
            ));
        }
        if self.deletes_withheld > 0 {
            lines.push(format!(
                "{} deletion(s) withheld: {}.",
                format::count(self.deletes_withheld),
                self.deletes_withheld_because
                    .as_deref()
                    .unwrap_or("because of failures")
            ));
        }
        if self.retries > 0 {
            lines.push(format!(
                "{} request(s) failed and were retried (-v shows them).",
                format::count(self.retries)
            ));
        }
        if let Some(refusal) = &self.stopped_on_denial {
            lines.push(format!(
                "Stopped: the store refused access ({refusal}); every other item would be refused too. Grant the permission it names and re-run."
            ));
        }
        if let Some(unreadable) = &self.stopped_on_plan {
            lines.push(format!(
                "Stopped: {unreadable}. What was done stays done; make the plan again and run it."
            ));
        }
        if self.stopped_on_conflict {
            lines.push(
                "Stopped: the destination changed since the plan (--fail-on-conflict); plan again to see the new state."
                    .into(),
            );
        } else if self.conflicts > 0 {
            lines.push(format!(
                "{} item(s) changed at the destination since the plan and were planned again.",
                format::count(self.conflicts)
            ));
        }
        lines
    }
}
