//! An object store down to local disk: one streamed GET for small objects,
//! parallel ranged GETs for large ones, into a temp file renamed into place once
//! complete. Every GET is pinned to the version the listing saw, so a file is
//! never assembled from two versions of an object.

use std::io::Write;
use std::os::unix::fs::FileExt;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::progress::ExecEvent;
use crate::storage::local::{WriteMeta, map_readonly};
use crate::storage::object::ChecksumKind;
use crate::storage::objects::{read_object, read_range_into};
use crate::storage::{
    Direction, LocalStorage, ObjectMeta, RebuildCheck, SharedStore, StorageError, run_blocking,
};
use crate::types::{ContentSums, Entry, EntryKind, SyncAction};

use super::super::plan::PlanItem;
use super::super::sidecar::{self, Sidecar};
use super::delta_download::{assemble, match_local};
use super::local::check_destination_unchanged;
use super::received::ReceivedCheck;
use super::verify::effective_check;
use super::{ItemContext, ItemError, Outcome, planned_source, source_changed};

use crate::sending::{RANGE_SIZE, RANGED_THRESHOLD};

/// The local attributes of a downloaded entry: mtime is the object's
/// LastModified (what the next listing compares against), or with `-a` the
/// original file's mtime and mode as HugeSync stored them.
fn local_meta(planned: &Entry, meta: Option<&ObjectMeta>, archive: bool) -> WriteMeta {
    let stored = meta.filter(|_| archive);
    WriteMeta {
        mtime_ns: stored.and_then(|m| m.mtime_ns).unwrap_or(planned.mtime_ns),
        mode: stored.and_then(|m| m.mode),
    }
}

pub(super) async fn run(
    id: usize,
    item: &PlanItem,
    src: &SharedStore,
    dst: &LocalStorage,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let planned = planned_source(item)?.clone();
    {
        let (dst, item) = (dst.clone(), item.clone());
        tokio::task::spawn_blocking(move || check_destination_unchanged(&dst, &item))
            .await
            .map_err(|e| StorageError::Task {
                location: "transfer".into(),
                reason: e.to_string(),
            })??;
    }
    let key = src.key_of(&item.path);
    // The stored attributes are only needed with -a (one HEAD per file then).
    let stored = if ctx.archive {
        src.head(&key).await?.map(|head| head.meta)
    } else {
        None
    };
    let meta = local_meta(&planned, stored.as_ref(), ctx.archive);
    let (dst, path) = (dst.clone(), item.path.clone());
    match planned.kind {
        EntryKind::Dir => {
            run_blocking(move || dst.create_dir(&path)).await?;
            Ok(Outcome::default())
        }
        EntryKind::Symlink => {
            let target = planned
                .link_target()
                .cloned()
                .ok_or(ItemError::Incomplete {
                    side: "link target",
                })?;
            run_blocking(move || dst.write_symlink_atomic(&path, &target, Some(meta.mtime_ns)))
                .await?;
            Ok(Outcome::default())
        }
        EntryKind::File if item.action == SyncAction::Metadata => {
            run_blocking(move || dst.set_meta(&path, EntryKind::File, meta)).await?;
            Ok(Outcome::default())
        }
        EntryKind::File => {
            let rebuild = if item.action == SyncAction::Delta {
                rebuild_basis(item, &planned, src, &key, ctx).await?
            } else {
                None
            };
            let handle = tokio::runtime::Handle::current();
            let (src, ctx) = (src.clone(), ctx.clone());
            let create_mode = meta.mode.unwrap_or(0o644);
            let size = planned.size;
            let fetched = tokio::task::spawn_blocking(move || {
                let whole = || {
                    let attempt = || {
                        dst.write_file_atomic(&path, create_mode, meta, ctx.fsync, |out| {
                            handle.block_on(fetch_into(id, &planned, &src, &key, out, &ctx))
                        })
                    };
                    match attempt() {
                        // Damaged on the way (the version is pinned): once more.
                        Err(ItemError::Damaged { checksum }) => {
                            let message = format!(
                                "{path}: the bytes received differ from the object's {checksum}; downloading it again"
                            );
                            let _ =
                                handle.block_on(ctx.events.send(ExecEvent::Warning { message }));
                            attempt()
                        }
                        other => other,
                    }
                };
                let Some((remote_sig, held)) = rebuild else {
                    whole()?;
                    return Ok(size);
                };
                // The old local file is the basis: matched, then copied from.
                let basis_path = dst.path_of(&path);
                let basis = std::fs::File::open(&basis_path)
                    .map_err(|e| StorageError::io("cannot open", &basis_path, e))?;
                let local = map_readonly(&basis)
                    .map_err(|e| StorageError::io("cannot map", &basis_path, e))?;
                let sources = match_local(&local, &remote_sig);
                let mut fetched = 0;
                let result = dst.write_file_atomic(&path, create_mode, meta, ctx.fsync, |out| {
                    fetched = handle.block_on(assemble(
                        id,
                        src.as_ref(),
                        &key,
                        planned.etag(),
                        &local,
                        &sources,
                        &remote_sig,
                        &held,
                        out,
                        &ctx,
                    ))?;
                    Ok::<_, ItemError>(())
                });
                // The local copy cut short while it was read: its zeros fail the
                // assembled file's check; say what happened instead.
                if local.faulted() {
                    return Err(ItemError::DestinationChanged);
                }
                if let Err(ItemError::RebuildMismatch { checksum }) = result {
                    // Nothing was replaced: the sidecar describes other bytes.
                    let message = format!(
                        "{path}: the file rebuilt by delta does not match the object's {checksum} (its signature sidecar describes other bytes); downloading it whole instead"
                    );
                    let _ = handle.block_on(ctx.events.send(ExecEvent::Warning { message }));
                    drop(local);
                    whole()?;
                    return Ok(size);
                }
                result?;
                Ok::<_, ItemError>(fetched)
            })
            .await
            .map_err(|e| StorageError::Task {
                location: "transfer".into(),
                reason: e.to_string(),
            })??;
            Ok(Outcome::sent(fetched, size - fetched.min(size)))
        }
    }
}

/// What a delta download rebuilds from: the object's fresh sidecar and the
/// checksums of the store's own the rebuilt file is checked against. `None`
/// (said in a warning) sends the file whole: no usable sidecar, or nothing
/// but the sidecar to check a rebuilt file with (unless
/// `--unverified-rebuilds`).
async fn rebuild_basis(
    item: &PlanItem,
    planned: &Entry,
    src: &SharedStore,
    key: &str,
    ctx: &ItemContext,
) -> Result<Option<(crate::signature::Signature, ContentSums)>, ItemError> {
    let warn = |message: String| async move {
        let _ = ctx.events.send(ExecEvent::Warning { message }).await;
    };
    let signature = match sidecar::fetch(src.as_ref(), &item.path, planned).await? {
        Sidecar::Fresh(signature, ..) => signature,
        unusable => {
            if let Some(reason) = unusable.unusable_reason(super::super::estimate::DOWNLOAD_INSTEAD)
            {
                warn(format!("{}: {reason}", item.path)).await;
            }
            return Ok(None);
        }
    };
    if effective_check(src.as_ref(), Direction::Download, ctx.unverified_rebuilds).await
        == RebuildCheck::DownloadWhole
    {
        warn(format!(
            "{}: {}",
            item.path,
            RebuildCheck::DownloadWhole.describe()
        ))
        .await;
        return Ok(None);
    }
    let held = src
        .content_sums(key)
        .await?
        .ok_or(ItemError::SourceChanged {
            what: "the object is gone",
        })?;
    if held.is_empty() && !ctx.unverified_rebuilds {
        warn(format!(
            "{}: {}",
            item.path,
            super::super::estimate::NO_CHECKSUM
        ))
        .await;
        return Ok(None);
    }
    Ok(Some((signature, held)))
}

/// Writes the object's bytes into `out` (an empty temp file).
async fn fetch_into(
    id: usize,
    planned: &Entry,
    src: &SharedStore,
    key: &str,
    out: &mut std::fs::File,
    ctx: &ItemContext,
) -> Result<(), ItemError> {
    let etag = planned.etag();
    let size = planned.size;
    let write_error = |e| StorageError::io("cannot write", format!("temp file for {key}"), e);
    if size <= RANGED_THRESHOLD {
        // Streamed; a cut-off body resumes where it stopped.
        let check = ReceivedCheck::by_crc(&planned.sums());
        let mut sum = check.as_ref().map(|check| check.range(0));
        let mut body = std::pin::pin!(read_object(src.clone(), key, size, etag));
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            if ctx.cancel.is_cancelled() {
                return Err(ItemError::Cancelled);
            }
            let chunk = chunk.map_err(source_changed)?;
            if let Some(sum) = sum.as_mut() {
                sum.update(&chunk);
            }
            out.write_all(&chunk).map_err(write_error)?;
            received += chunk.len() as u64;
            ctx.advanced(id, chunk.len() as u64).await;
        }
        if received != size {
            return Err(ItemError::SourceChanged {
                what: "the object's size differs from its listing",
            });
        }
        if let (Some(check), Some(sum)) = (&check, sum) {
            check.record(sum);
        }
        return finish_check(check, size);
    }
    let check = ReceivedCheck::by_crc(&held_crcs(planned, src, key).await?);
    let ranges: Vec<(u64, u64)> = (0..size.div_ceil(RANGE_SIZE))
        .map(|i| (i * RANGE_SIZE, RANGE_SIZE.min(size - i * RANGE_SIZE)))
        .collect();
    let file: &std::fs::File = out;
    let check_ref = check.as_ref();
    stream::iter(ranges)
        .map(|(start, len)| async move {
            let _slot = ctx.request_slot().await?;
            // Each piece written where it goes as it arrives, and summed.
            let mut sum = check_ref.map(|check| check.range(start));
            read_range_into(src.as_ref(), key, start, len, etag, |at, piece| {
                if let Some(sum) = sum.as_mut() {
                    sum.update(piece);
                }
                file.write_all_at(piece, at).map_err(write_error)
            })
            .await
            .map_err(source_changed)?;
            if let (Some(check), Some(sum)) = (check_ref, sum) {
                check.record(sum);
            }
            ctx.advanced(id, len).await;
            Ok::<(), ItemError>(())
        })
        .buffer_unordered(ctx.parallel_requests())
        .try_collect::<()>()
        .await?;
    finish_check(check, size)
}

/// The object's checksums a ranged download can be checked by: the
/// listing's, or where it has no CRC and the store keeps one, a HEAD's
/// (S3 reports its full-object CRC64NVME there only), taken only when it
/// describes the version the ranges are pinned to.
async fn held_crcs(
    planned: &Entry,
    src: &SharedStore,
    key: &str,
) -> Result<ContentSums, ItemError> {
    let listed = planned.sums();
    let limits = src.limits();
    let keeps_crc = limits.checks(ChecksumKind::Crc64Nvme) || limits.checks(ChecksumKind::Crc32c);
    if listed.crc64nvme.is_some() || listed.crc32c.is_some() || !keeps_crc {
        return Ok(listed);
    }
    Ok(match src.head(key).await? {
        Some(head) if head.version.as_deref() == planned.etag() => head.sums,
        _ => listed,
    })
}

/// The verdict of a download's check, said in the log.
fn finish_check(check: Option<ReceivedCheck>, size: u64) -> Result<(), ItemError> {
    if let Some(check) = check {
        let checksum = check.finish(size)?;
        tracing::debug!("downloaded bytes match the object's {checksum}");
    }
    Ok(())
}
