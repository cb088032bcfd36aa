//! Estimating what delta transfers will send, before anything is sent: the
//! destination's signature against the source's bytes. Local → local signs the
//! destination file; an object store's signature is its `.hssig` sidecar, and a
//! file whose sidecar is missing, stale or corrupt is planned as a whole upload,
//! with the reason in its note.

use crate::delta::{compute_delta, plan_append, plan_parts};
use crate::signature::signature_of_file;
use crate::storage::local::map_readonly;
use crate::storage::{Direction, LocalStorage, ObjectStore, RebuildCheck, Storage, StorageError};
use crate::types::{Entry, SyncAction};

use super::plan::{PlanItem, SyncPlan};
use super::sidecar::{self, Sidecar};
use super::transfer::chunked;
use super::transfer::delta_download::match_local;
use super::transfer::upload::part_size;
use super::transfer::verify::{check_of, effective_check};

/// Fills in `bytes_to_send` and `bytes_saved` of every delta item, and
/// records how the plan's rebuilds are checked (`SyncPlan::rebuild_check`).
/// An item that cannot be estimated (unreadable file) keeps the whole-file
/// estimate; execution reports its error.
pub async fn estimate_deltas(plan: &mut SyncPlan, source: &Storage, destination: &Storage) {
    match (source, destination) {
        (Storage::Local(src), Storage::Object(dst)) => {
            plan.rebuild_check = Some(upload_check(plan, dst.as_ref()).await);
            return estimate_uploads(plan, src, dst.as_ref()).await;
        }
        (Storage::Object(src), Storage::Local(dst)) => {
            return estimate_downloads(plan, src.as_ref(), dst).await;
        }
        (Storage::Local(_), Storage::Local(_)) => {}
        _ => return,
    }
    let (Storage::Local(src), Storage::Local(dst)) = (source.clone(), destination.clone()) else {
        return;
    };
    let block_size = plan.options.block_size as u32;
    let mut items: Vec<(usize, PlanItem)> = plan
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.action == SyncAction::Delta)
        .map(|(i, item)| (i, item.clone()))
        .collect();
    if items.is_empty() {
        return;
    }
    let estimated = tokio::task::spawn_blocking(move || {
        for (_, item) in &mut items {
            let estimate = (|| -> std::io::Result<(u64, u64)> {
                let sig = signature_of_file(&dst.path_of(&item.path), block_size)?;
                let file = std::fs::File::open(src.path_of(&item.path))?;
                let new = map_readonly(&file)?;
                let delta = compute_delta(&new, &sig);
                if new.faulted() {
                    return Err(crate::mapguard::ChangedWhileRead::io());
                }
                Ok((delta.bytes_new(), delta.bytes_reused()))
            })();
            match estimate {
                Ok((send, saved)) => {
                    item.bytes_to_send = send;
                    item.bytes_saved = saved;
                }
                Err(e) => tracing::warn!("{}: cannot estimate the delta: {e}", item.path),
            }
        }
        items
    })
    .await;
    if let Ok(items) = estimated {
        for (i, item) in items {
            plan.items[i] = item;
        }
        plan.refresh_stats();
    }
}

/// What replaces a delta without a usable sidecar, as plan notes say it.
pub(crate) const UPLOAD_INSTEAD: &str = "sent whole, and signed for next time";
/// The note of a delta candidate on a store that reuses only whole objects,
/// when the file did not grow by appending.
const NOT_AN_APPEND: &str = "this store reuses an object only whole (compose), and the file did not grow by appending: sent whole";
pub(crate) const DOWNLOAD_INSTEAD: &str = "fetched whole";
/// The note of a delta download whose object holds no checksum to check the
/// rebuilt file against.
pub(crate) const NO_CHECKSUM: &str = "the store holds no checksum of the object that could check a file rebuilt by delta: fetched whole (--unverified-rebuilds trusts the sidecar)";

/// Sidecars fetched at once while planning.
const PARALLEL_SIDECARS: usize = 8;

/// The sidecars of the plan's delta candidates (those `wanted` says), fetched
/// a few at a time; `object` picks the item's entry on the object store's side.
async fn fetch_sidecars(
    plan: &SyncPlan,
    store: &dyn ObjectStore,
    object: fn(&PlanItem) -> Option<&Entry>,
    wanted: impl Fn(&PlanItem) -> bool,
) -> Vec<(usize, Result<Sidecar, StorageError>)> {
    use futures::stream::{self, StreamExt};
    let candidates: Vec<usize> = (0..plan.items.len())
        .filter(|&i| plan.items[i].action == SyncAction::Delta && wanted(&plan.items[i]))
        .collect();
    stream::iter(candidates)
        .map(|i| {
            let item = &plan.items[i];
            async move {
                let result = match object(item) {
                    Some(entry) => sidecar::fetch(store, &item.path, entry).await,
                    None => Ok(Sidecar::Missing),
                };
                (i, result)
            }
        })
        .buffer_unordered(PARALLEL_SIDECARS)
        .collect()
        .await
}

/// Puts an estimate of (bytes to send, bytes saved) on its item; a failed one
/// leaves the whole-file figures (the execution meets the error and reports it).
fn record(
    item: &mut PlanItem,
    estimate: Result<std::io::Result<(u64, u64)>, tokio::task::JoinError>,
) {
    match estimate {
        Ok(Ok((send, saved))) => {
            item.bytes_to_send = send;
            item.bytes_saved = saved;
        }
        Ok(Err(e)) => tracing::warn!("{}: cannot estimate the delta: {e}", item.path),
        Err(e) => tracing::warn!("{}: cannot estimate the delta: {e}", item.path),
    }
}

/// Local → object store: each delta candidate's sidecar, then the part plan
/// the upload would make from it; the bytes it uploads are the estimate.
async fn estimate_uploads(plan: &mut SyncPlan, src: &LocalStorage, dst: &dyn ObjectStore) {
    if let Some(why) = dst.cannot_rebuild() {
        for item in plan
            .items
            .iter_mut()
            .filter(|i| i.action == SyncAction::Delta)
        {
            item.action = SyncAction::Upload;
            item.note = Some(why.into());
            item.bytes_saved = 0;
        }
        return;
    }
    let part_limits = dst.limits().part_limits();
    // A store of whole objects (compose) can reuse the old object only when
    // the file grew by appending.
    let whole_objects = !dst.limits().range_copy();
    let generate = plan.options.remote_signature == super::RemoteSignature::Generate;
    // Files kept as chunks are estimated from the chunks, not a sidecar.
    let in_chunks =
        |item: &PlanItem| chunked::goes_in_chunks(dst, item.src.as_ref().map_or(0, |e| e.size));
    estimate_chunked_uploads(plan, src, dst, &in_chunks).await;
    let fetched =
        fetch_sidecars(plan, dst, |item| item.dst.as_ref(), |item| !in_chunks(item)).await;
    for (i, fetched) in fetched {
        let item = &mut plan.items[i];
        let signature = match fetched {
            Ok(Sidecar::Fresh(signature, ..)) => signature,
            Ok(unusable) if generate => {
                // The upload will read the object to sign it; what the delta
                // saves is only known then, so the estimate stays the whole file.
                item.note = unusable
                    .unusable_reason(
                        "the object will be read once to sign it (--remote-signature=generate)",
                    )
                    .map(Into::into);
                continue;
            }
            Ok(unusable) => {
                if let Sidecar::Corrupt(why) = &unusable {
                    tracing::warn!(
                        "{}: signature sidecar unreadable ({why}); sending it whole",
                        item.path
                    );
                }
                item.action = SyncAction::Upload;
                item.note = unusable.unusable_reason(UPLOAD_INSTEAD).map(Into::into);
                item.bytes_saved = 0;
                continue;
            }
            // The execution meets the same error and reports it.
            Err(e) => {
                tracing::warn!("{}: cannot read its signature sidecar: {e}", item.path);
                continue;
            }
        };
        let path = src.path_of(&item.path);
        let old_size = item.dst.as_ref().map_or(0, |d| d.size);
        let new_size = item.src.as_ref().map_or(0, |e| e.size);
        let append_part = part_size(new_size, dst.limits());
        let estimate =
            tokio::task::spawn_blocking(move || -> std::io::Result<Option<(u64, u64)>> {
                let file = std::fs::File::open(&path)?;
                let new = map_readonly(&file)?;
                let parts = if whole_objects {
                    plan_append(&new, &signature, append_part)
                } else {
                    let delta = compute_delta(&new, &signature);
                    Some(
                        plan_parts(&delta, old_size, &part_limits)
                            .map_err(std::io::Error::other)?,
                    )
                };
                if new.faulted() {
                    return Err(crate::mapguard::ChangedWhileRead::io());
                }
                Ok(parts.map(|p| (p.bytes_uploaded(), p.bytes_copied())))
            })
            .await;
        if let Ok(Ok(None)) = estimate {
            item.action = SyncAction::Upload;
            item.note = Some(NOT_AN_APPEND.into());
            item.bytes_saved = 0;
            continue;
        }
        record(
            item,
            estimate.map(|sizes| sizes.map(Option::unwrap_or_default)),
        );
    }
    plan.refresh_stats();
}

/// Local → a store that keeps objects as chunks: the file's chunks against
/// those kept for its object; the chunks that differ are what the upload sends.
async fn estimate_chunked_uploads(
    plan: &mut SyncPlan,
    src: &LocalStorage,
    dst: &dyn ObjectStore,
    in_chunks: &dyn Fn(&PlanItem) -> bool,
) {
    let Some(chunks) = dst.chunks() else {
        return;
    };
    let block = plan.options.block_size as u32;
    for i in 0..plan.items.len() {
        let item = &plan.items[i];
        if item.action != SyncAction::Delta || !in_chunks(item) {
            continue;
        }
        let kept = match chunks.kept_chunks(&dst.key_of(&item.path)).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!("{}: cannot list the chunks it is kept as: {e}", item.path);
                continue;
            }
        };
        let path = src.path_of(&item.path);
        let size = item.src.as_ref().map_or(0, |e| e.size);
        let chunk = chunked::chunk_size(size, dst.limits(), block);
        let estimate = tokio::task::spawn_blocking(move || -> std::io::Result<chunked::Reuse> {
            let file = std::fs::File::open(&path)?;
            let new = map_readonly(&file)?;
            let local = chunked::local_chunks(&new, chunk);
            if new.faulted() {
                return Err(crate::mapguard::ChangedWhileRead::io());
            }
            Ok(chunked::reuse_of(&local, &kept))
        })
        .await;
        let item = &mut plan.items[i];
        if let Ok(Ok(reuse)) = &estimate {
            item.note = Some(
                format!(
                    "kept as chunks of {} (stored twice): {} of {} unchanged",
                    crate::format::bytes(chunk),
                    reuse.chunks_reused,
                    reuse.chunks
                )
                .into(),
            );
        }
        record(item, estimate.map(|r| r.map(|r| (r.sent, r.reused))));
    }
    plan.refresh_stats();
}

/// How delta uploads to `dst` are checked. Only a plan with delta items asks
/// an SSH server which hash command it runs.
async fn upload_check(plan: &SyncPlan, dst: &dyn ObjectStore) -> RebuildCheck {
    if plan.stats.delta.count == 0 {
        return dst.limits().rebuild_check;
    }
    effective_check(dst, Direction::Upload, plan.options.unverified_rebuilds).await
}

/// Object store → local: the object's sidecar against the local file; the
/// blocks not found locally are what the download fetches. A store that
/// cannot check a rebuilt file (an SSH server without hash commands) gets
/// whole downloads, unless `--unverified-rebuilds`.
async fn estimate_downloads(plan: &mut SyncPlan, src: &dyn ObjectStore, dst: &LocalStorage) {
    if plan.stats.delta.count == 0 {
        return;
    }
    let check = effective_check(src, Direction::Download, plan.options.unverified_rebuilds).await;
    plan.rebuild_check = Some(check);
    if check == RebuildCheck::DownloadWhole {
        for item in plan
            .items
            .iter_mut()
            .filter(|i| i.action == SyncAction::Delta)
        {
            item.action = SyncAction::Download;
            item.note = Some(check.describe().into());
            item.bytes_saved = 0;
        }
        plan.refresh_stats();
        return;
    }
    let fetched = fetch_sidecars(plan, src, |item| item.src.as_ref(), |_| true).await;
    // Which checksum of the store's own each rebuilt file will be checked
    // against: a HEAD per object with a usable sidecar, a few at a time (an
    // SSH server's check is the same for every file).
    let held: std::collections::HashMap<usize, _> = if check == RebuildCheck::StoreChecksum {
        use futures::stream::{self, StreamExt};
        let fresh: Vec<usize> = fetched
            .iter()
            .filter(|(_, f)| matches!(f, Ok(Sidecar::Fresh(..))))
            .map(|(i, _)| *i)
            .collect();
        let items = &plan.items;
        stream::iter(fresh)
            .map(|i| async move { (i, src.content_sums(&src.key_of(&items[i].path)).await) })
            .buffer_unordered(PARALLEL_SIDECARS)
            .collect()
            .await
    } else {
        Default::default()
    };
    for (i, fetched) in fetched {
        let item = &mut plan.items[i];
        let signature = match fetched {
            Ok(Sidecar::Fresh(signature, ..)) => signature,
            Ok(unusable) => {
                item.action = SyncAction::Download;
                item.note = unusable.unusable_reason(DOWNLOAD_INSTEAD).map(Into::into);
                continue;
            }
            Err(e) => {
                tracing::warn!("{}: cannot read its signature sidecar: {e}", item.path);
                continue;
            }
        };
        if let Some(looked_up) = held.get(&i) {
            match looked_up {
                Ok(Some(held)) => match check_of(held) {
                    Some(check) => {
                        item.note = Some(format!("rebuilt file checked against {check}").into());
                    }
                    None if !plan.options.unverified_rebuilds => {
                        item.action = SyncAction::Download;
                        item.note = Some(NO_CHECKSUM.into());
                        item.bytes_saved = 0;
                        continue;
                    }
                    None => {}
                },
                Ok(None) => {}
                Err(e) => tracing::warn!("{}: cannot look the object up: {e}", item.path),
            }
        }
        let path = dst.path_of(&item.path);
        let estimate = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, u64)> {
            let file = std::fs::File::open(&path)?;
            let local = map_readonly(&file)?;
            let missing = match_local(&local, &signature).bytes_missing();
            if local.faulted() {
                return Err(crate::mapguard::ChangedWhileRead::io());
            }
            Ok((missing, signature.file_size - missing))
        })
        .await;
        record(item, estimate);
    }
    plan.refresh_stats();
}
