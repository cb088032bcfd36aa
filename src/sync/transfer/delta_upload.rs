//! Uploads that keep a signature sidecar next to the object: every file of at
//! least `--delta-threshold` is signed as it is read for the upload, so its next
//! change can go by delta; and the delta upload itself, which rebuilds the object
//! server-side from its unchanged ranges (staged copies: UploadPartCopy, Put
//! Block From URL) plus the new bytes on stores that can copy ranges, or — on
//! stores that reuse whole objects only (GCS compose) — from the old object
//! whole plus the appended bytes, when the file grew by appending.

use crate::delta::{Delta, Part, PartPlan, compute_delta, plan_append, plan_parts};
use crate::progress::ExecEvent;
use crate::signature::{Signature, signature_of_bytes, signature_of_reader};
use crate::storage::local::map_readonly;
use crate::storage::object::{CopySource, PlannedPart};
use crate::storage::objects::{read_object, read_range};
use crate::storage::{Direction, Expect, ObjectMeta, RebuildCheck, SharedStore, StorageError};
use crate::types::{ContentSums, Entry};

use super::super::RemoteSignature;
use super::super::plan::PlanItem;
use super::super::sidecar::{self, Sidecar};
use super::local::SourceFile;
use super::parts::{Assembly, PartSpec};
use super::signed::upload_signed;
use super::verify::{Verdict, compare_sums, effective_check};
use super::{ItemContext, ItemError, Outcome, conflict_or};

/// Parts of a signed whole upload: whole blocks, at least this large.
pub(super) const MIN_SIGNED_PART: u64 = 16 * 1024 * 1024;
/// Unchanged runs longer than this are copied server-side in pieces of about
/// this size, in parallel within the run's request slots.
const COPY_PIECE: u64 = 128 * 1024 * 1024;
/// Largest object sent with a single PUT when signing (read into memory once).
pub(super) const SINGLE_PUT_MAX: u64 = 32 * 1024 * 1024;

/// How the object will be rebuilt, as the file's one read found it.
/// The sidecar a delta upload leaves: the file signed anew, or the old
/// sidecar's signature carried over the delta (written by copying the old
/// sidecar's records, which lie as `OldSidecar` says).
enum NewSidecar {
    Signed(crate::signature::Signature),
    Carried(
        crate::delta::carry::Carried,
        crate::sync::sidecar_update::OldSidecar,
    ),
}

/// What the pass over the new file yields besides the delta.
enum Signed {
    Signature(crate::signature::Signature),
    /// Only the file's blake3, for a sidecar carried over the delta.
    FileHash([u8; 32]),
}

enum Rebuild {
    /// From any unchanged ranges of the old object, by the delta.
    Ranges(Delta),
    /// The old object whole, then the appended bytes (`None`: the file did
    /// not grow by appending), with the bytes the read saw.
    Append(Option<PartPlan>, u64),
}

pub(super) struct Target<'a> {
    pub id: usize,
    pub item: &'a PlanItem,
    pub planned: &'a Entry,
    pub dst: &'a SharedStore,
    pub key: &'a str,
    pub meta: &'a ObjectMeta,
    pub ctx: &'a ItemContext,
}

pub(super) fn task_error(e: tokio::task::JoinError) -> ItemError {
    ItemError::Storage(StorageError::Task {
        location: "upload".into(),
        reason: e.to_string(),
    })
}

/// Reads the current object once (streamed, with `If-Match`) to sign it.
async fn sign_object(t: &Target<'_>, old: &Entry) -> Result<Signature, ItemError> {
    use futures::TryStreamExt;
    // Streamed (a cut-off body resumes where it stopped), pinned to the ETag the
    // plan saw: a replaced object fails with 412, a conflict.
    let failure: std::sync::Arc<std::sync::Mutex<Option<StorageError>>> = Default::default();
    let body = read_object(t.dst.clone(), t.key, old.size, old.etag()).map_err({
        let failure = failure.clone();
        move |e| {
            let message = e.to_string();
            if let Ok(mut slot) = failure.lock() {
                *slot = Some(e);
            }
            std::io::Error::other(message)
        }
    });
    let reader =
        tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(body)));
    let block = t.ctx.block_size;
    let signature = tokio::task::spawn_blocking(move || signature_of_reader(reader, block))
        .await
        .map_err(task_error)?
        .map_err(
            |e| match failure.lock().ok().and_then(|mut slot| slot.take()) {
                Some(storage) => conflict_or(storage),
                None => ItemError::Storage(StorageError::Transfer {
                    target: t.dst.url_of(t.key),
                    message: format!("cannot read the object to sign it: {e}"),
                }),
            },
        )?;
    if signature.file_size != old.size {
        return Err(ItemError::DestinationChanged);
    }
    Ok(signature)
}

/// Rebuilds the object from its unchanged ranges plus the file's new bytes,
/// when its sidecar is fresh; otherwise uploads the whole file (signed).
pub(super) async fn upload_delta(
    t: &Target<'_>,
    source: &SourceFile<'_>,
) -> Result<Outcome, ItemError> {
    if t.dst.chunks().is_some() && t.planned.size > SINGLE_PUT_MAX {
        // The object's kept chunks, not its sidecar, say what can be reused.
        return super::chunked::upload_chunked(t, source, true).await;
    }
    let old = t.item.dst.as_ref().ok_or(ItemError::Incomplete {
        side: "destination",
    })?;
    let (old_sig, old_etag, old_layout) = match sidecar::fetch(t.dst.as_ref(), &t.item.path, old)
        .await?
    {
        Sidecar::Fresh(signature, etag, layout) => (signature, etag, Some(layout)),
        _ if t.ctx.remote_signature == RemoteSignature::Generate => {
            let etag = old.etag().ok_or(ItemError::Incomplete {
                side: "destination ETag",
            })?;
            (sign_object(t, old).await?, etag.to_string(), None)
        }
        unusable => {
            if let Some(reason) = unusable.unusable_reason(super::super::estimate::UPLOAD_INSTEAD) {
                warn(t, format!("{}: {reason}", t.item.path)).await;
            }
            return upload_signed(t, source).await;
        }
    };
    let size = t.planned.size;
    let block = t.ctx.block_size;
    let path = source.path.clone();
    let limits = t.dst.limits();
    let check = effective_check(t.dst.as_ref(), Direction::Upload, t.ctx.unverified_rebuilds).await;
    let want_sha256 = check == RebuildCheck::ServerSha256sum;
    // A store of whole objects (compose) reuses the old object only when the
    // file grew by appending; others reuse any unchanged range.
    let whole_objects = !limits.range_copy();
    let append_part = super::upload::part_size(size, limits);
    let old_size = old.size;
    // Where ranges are copied for a round trip, the new sidecar is the old
    // one's records carried over the delta, copied server-side (see
    // `sidecar_update`); it needs the old sidecar's block size. Then the file
    // is not signed anew: only its blake3 is computed.
    let carry_into = old_layout
        .filter(|_| limits.cheap_range_copies && old_sig.block_size == block && !whole_objects);
    // One read of the file from disk: the matcher and the new signature (or
    // the file's hash) both run over the same mapping.
    let (rebuild, new_sidecar, local_sums) = tokio::task::spawn_blocking(move || {
        let file =
            std::fs::File::open(&path).map_err(|e| StorageError::io("cannot open", &path, e))?;
        let map = map_readonly(&file).map_err(|e| StorageError::io("cannot map", &path, e))?;
        let ((rebuild, sha256), signed) = rayon::join(
            || {
                rayon::join(
                    || {
                        if whole_objects {
                            Rebuild::Append(
                                plan_append(&map, &old_sig, append_part),
                                map.len() as u64,
                            )
                        } else {
                            Rebuild::Ranges(compute_delta(&map, &old_sig))
                        }
                    },
                    // What a server's sha256sum is compared with.
                    || {
                        want_sha256.then(|| {
                            let wanted = crate::sync::check::local::Wanted {
                                sha256: true,
                                ..Default::default()
                            };
                            crate::sync::check::local::sums_of(&map, wanted).sha256
                        })
                    },
                )
            },
            || match carry_into {
                Some(_) => Signed::FileHash(
                    *blake3::Hasher::new()
                        .update_rayon(&map)
                        .finalize()
                        .as_bytes(),
                ),
                None => Signed::Signature(signature_of_bytes(&map, block)),
            },
        );
        let file_blake3 = match &signed {
            Signed::FileHash(hash) => *hash,
            Signed::Signature(signature) => signature.file_hash,
        };
        let local_sums = ContentSums {
            blake3: Some(file_blake3),
            sha256: sha256.flatten(),
            ..ContentSums::default()
        };
        let new_sidecar = match (signed, &rebuild, carry_into) {
            (Signed::Signature(signature), ..) => NewSidecar::Signed(signature),
            (Signed::FileHash(file_hash), Rebuild::Ranges(delta), Some(layout)) => {
                let carried = crate::delta::carry::carry(&old_sig, delta, &map, file_hash);
                if carried.worth_keeping() {
                    NewSidecar::Carried(carried, layout)
                } else {
                    NewSidecar::Signed(signature_of_bytes(&map, block))
                }
            }
            (Signed::FileHash(_), ..) => NewSidecar::Signed(signature_of_bytes(&map, block)),
        };
        if map.faulted() {
            return Err(ItemError::SourceChanged {
                what: "while it was read",
            });
        }
        Ok::<_, ItemError>((rebuild, new_sidecar, local_sums))
    })
    .await
    .map_err(task_error)??;
    let no_plan = |message: String| StorageError::Transfer {
        target: t.dst.url_of(t.key),
        message,
    };
    let plan = match rebuild {
        Rebuild::Ranges(delta) if delta.new_size == size => {
            plan_parts(&delta, old_size, &limits.part_limits())
                .map_err(|e| no_plan(format!("no valid part plan: {e}")))?
                .with_copies_split(COPY_PIECE, &limits.part_limits())
        }
        Rebuild::Append(plan, read) if read == size => match plan {
            Some(plan) => plan,
            // Not an append: nothing of the old object can be reused (the
            // plan said so, unless the file changed since).
            None => return upload_signed(t, source).await,
        },
        _ => {
            return Err(ItemError::SourceChanged {
                what: "before it was uploaded",
            });
        }
    };
    let planned_parts: Vec<PlannedPart> = plan
        .parts
        .iter()
        .map(|part| PlannedPart {
            len: part.len(),
            copy_from: match *part {
                Part::Copy { src_offset, .. } => Some(src_offset),
                Part::Upload { .. } => None,
            },
        })
        .collect();
    // Enforced here, whatever the server would accept.
    limits
        .check_parts(&planned_parts, old_size)
        .map_err(|e| no_plan(format!("the part plan breaks the store's limits: {e}")))?;
    if plan.parts.is_empty() {
        // An empty file: nothing to stitch.
        return upload_signed(t, source).await;
    }
    if check == RebuildCheck::ReadBack
        && let Err(error) = read_back(t, source, &plan.parts, &old_etag).await
    {
        return sidecar_lied(t, source, error).await;
    }
    // Parts follow each other through the new file: a copy's place in it is
    // where the parts before it end.
    let mut new_offset = 0;
    let specs = plan
        .parts
        .iter()
        .map(|part| {
            let spec = match *part {
                Part::Copy { src_offset, len } => PartSpec::Copy {
                    src_offset,
                    new_offset,
                    len,
                },
                Part::Upload { new_offset, len } => PartSpec::Upload {
                    offset: new_offset,
                    len,
                },
            };
            new_offset += part.len();
            spec
        })
        .enumerate()
        .map(|(i, spec)| (i as u32 + 1, spec))
        .collect();
    // The file's blake3 travels with the object (from the start: S3 takes
    // metadata only then), for the check of a later delta download.
    let meta = ObjectMeta {
        blake3: local_sums.blake3.map(hex::encode),
        ..t.meta.clone()
    };
    // Not journaled: a delta is small to send again, and its copied parts are
    // only valid against the object as it is now.
    let upload = t.dst.need_staged()?.begin_staged(t.key, &meta).await?;
    let assembly = Assembly {
        id: t.id,
        dst: t.dst.as_ref(),
        upload: &upload,
        meta: &meta,
        file: &source.path,
        ctx: t.ctx,
        base: Some(CopySource {
            store: t.dst.as_ref(),
            key: t.key,
            version: Some(&old_etag),
        }),
        expect: Expect::Version(&old_etag),
        sign_block_size: None,
        journal: None,
    };
    let result = async {
        let assembled = assembly.run(specs, Vec::new()).await?;
        source.check("while it was uploaded")?;
        if matches!(
            check,
            RebuildCheck::ServerB3sum | RebuildCheck::ServerSha256sum
        ) {
            // The staged file as the server holds it, hashed there.
            let held = t
                .dst
                .need_staged()?
                .staged_sums(&upload)
                .await?
                .unwrap_or_default();
            match compare_sums(&held, &local_sums) {
                Verdict::Alike(_) => {}
                Verdict::Differ(checksum) => {
                    return Err(ItemError::RebuildMismatch { checksum });
                }
                Verdict::NoChecksum => {
                    return Err(ItemError::Storage(StorageError::Transfer {
                        target: t.dst.url_of(t.key),
                        message: "the server's hash of the rebuilt file could not be compared"
                            .into(),
                    }));
                }
            }
        }
        let etag = assembly.complete(&assembled, size).await?;
        Ok::<_, ItemError>((etag, assembled))
    }
    .await;
    let (etag, assembled) = match result {
        Ok(done) => done,
        Err(error) => {
            if let Some(staged) = t.dst.staged() {
                let _ = staged.abort_staged(&upload).await;
            }
            return sidecar_lied(t, source, error).await;
        }
    };
    if check == RebuildCheck::SizeOnly && assembled.copied_unchecked > 0 {
        warn(
            t,
            format!(
                "{}: {} copied server-side could not be checked against the file (the store reports no checksum for copied ranges; the object's size and the parts' order were checked)",
                t.item.path,
                crate::format::bytes(assembled.copied_unchecked)
            ),
        )
        .await;
    }
    match new_sidecar {
        NewSidecar::Carried(carried, layout) => {
            crate::sync::sidecar_update::store_carried(
                t.dst.as_ref(),
                &t.item.path,
                &carried,
                layout,
                &etag,
            )
            .await?;
        }
        NewSidecar::Signed(signature) => {
            sidecar::store(t.dst.as_ref(), &t.item.path, &signature, &etag).await?
        }
    }
    Ok(Outcome::sent(assembled.uploaded, assembled.copied))
}

/// After a failed rebuild (nothing committed): when the failure shows that
/// the sidecar describes other bytes than the object holds, the whole file
/// replaces the object and its sidecar, and a warning says so; any other
/// error is the item's.
async fn sidecar_lied(
    t: &Target<'_>,
    source: &SourceFile<'_>,
    error: ItemError,
) -> Result<Outcome, ItemError> {
    let detail = match &error {
        ItemError::CopiedRangeMismatch { detail } => detail.clone(),
        ItemError::RebuildMismatch { checksum } => {
            format!("the rebuilt file's {checksum}, computed on the server, is not the file's")
        }
        _ => return Err(error),
    };
    warn(
        t,
        format!(
            "{}: the signature sidecar does not describe the object ({detail}); uploading the whole file instead",
            t.item.path
        ),
    )
    .await;
    upload_signed(t, source).await
}

/// Reads back every range the rebuild would copy server-side from the old
/// object (pinned to its version) and compares it with the local file's
/// bytes at its place: on a store that cannot check a copy any other way,
/// a sidecar that lies is caught before anything is staged.
async fn read_back(
    t: &Target<'_>,
    source: &SourceFile<'_>,
    parts: &[Part],
    old_version: &str,
) -> Result<(), ItemError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    use std::os::unix::fs::FileExt;
    /// Bytes compared per request (held twice in memory while compared).
    const PIECE: u64 = 16 * 1024 * 1024;
    let mut pieces = Vec::new();
    let mut new_offset = 0;
    for part in parts {
        if let Part::Copy { src_offset, len } = *part {
            let mut done = 0;
            while done < len {
                let piece = PIECE.min(len - done);
                pieces.push((src_offset + done, new_offset + done, piece));
                done += piece;
            }
        }
        new_offset += part.len();
    }
    let file = std::sync::Arc::new(
        std::fs::File::open(&source.path)
            .map_err(|e| StorageError::io("cannot open", &source.path, e))?,
    );
    stream::iter(pieces)
        .map(|(remote_at, local_at, len)| {
            let file = file.clone();
            async move {
                let _slot = t.ctx.request_slot().await?;
                let theirs = read_range(t.dst.as_ref(), t.key, remote_at, len, Some(old_version))
                    .await
                    .map_err(conflict_or)?;
                let path = source.path.clone();
                let ours = tokio::task::spawn_blocking(move || {
                    let mut bytes = vec![0; len as usize];
                    file.read_exact_at(&mut bytes, local_at)
                        .map(|()| bytes)
                        .map_err(|e| StorageError::io("cannot read", &path, e))
                })
                .await
                .map_err(task_error)??;
                if theirs[..] != ours[..] {
                    return Err(ItemError::CopiedRangeMismatch {
                        detail: format!(
                            "bytes {remote_at}..{} of the object, read back, differ from the file's at {local_at}",
                            remote_at + len
                        ),
                    });
                }
                Ok(())
            }
        })
        .buffer_unordered(t.ctx.parallel_requests())
        .try_collect::<()>()
        .await
}

pub(super) async fn warn(t: &Target<'_>, message: String) {
    let _ = t.ctx.events.send(ExecEvent::Warning { message }).await;
}
