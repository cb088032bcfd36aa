//! Plan-time checks that take a request per entry, made only where a listing
//! cannot decide.
//!
//! With `-a`, a download restores the uploaded file's own mtime (kept in the
//! object's metadata) rather than the object's LastModified, so the next
//! listing cannot tell an unchanged file from a changed one. Only same-size files
//! whose times disagree are asked about, one HEAD each, in parallel.

use futures::stream::{self, StreamExt};

use super::diff::Reason;
use super::plan::SyncPlan;
use crate::storage::Storage;
use crate::types::{EntryKind, SyncAction};

/// HEAD requests in flight at once, at the least: a store that takes more
/// listing requests at once takes as many HEADs.
const PARALLEL_HEADS: usize = 16;

pub async fn confirm_restored_times(plan: &mut SyncPlan, source: &Storage, destination: &Storage) {
    let (Storage::Object(src), Storage::Local(_)) = (source, destination) else {
        return;
    };
    if !plan.options.archive {
        return;
    }
    let candidates: Vec<usize> = plan
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            matches!(item.action, SyncAction::Download | SyncAction::Delta)
                && item.reason == Reason::MtimeChanged
                && matches!((&item.src, &item.dst), (Some(s), Some(d))
                    if s.kind == EntryKind::File && d.kind == EntryKind::File && s.size == d.size)
        })
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let in_flight = src.info().kind.list_requests.max(PARALLEL_HEADS);
    let heads: Vec<_> = stream::iter(candidates)
        .map(|i| {
            let key = src.key_of(&plan.items[i].path);
            async move { (i, src.head(&key).await) }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    for (i, head) in heads {
        let item = &mut plan.items[i];
        let (Ok(Some(head)), Some(src_entry), Some(dst_entry)) = (head, &item.src, &item.dst)
        else {
            continue; // an error here is the transfer's to report
        };
        let same_object = matches!(
            (head.version.as_deref(), src_entry.etag()),
            (Some(a), Some(b)) if crate::storage::same_version(a, b)
        );
        if !same_object || head.meta.mtime_ns != Some(dst_entry.mtime_ns) {
            continue;
        }
        let (action, reason) = match head.meta.mode {
            Some(mode) if mode != dst_entry.mode => (SyncAction::Metadata, Reason::ModeChanged),
            _ => (SyncAction::Skip, Reason::Unchanged),
        };
        item.action = action;
        item.reason = reason;
        item.bytes_to_send = 0;
        item.bytes_saved = 0;
    }
    plan.refresh_stats();
}
