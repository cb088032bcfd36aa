//! S3 to S3 (same or another bucket): the bytes never leave the servers. One
//! CopyObject up to 5 GiB; beyond, a multipart upload of UploadPartCopy ranges.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::storage::s3::{CompletedPart, ObjectMeta, S3Storage};
use crate::types::{EntryKind, SyncAction};

use super::super::plan::PlanItem;
use super::upload::checked_key;
use super::{ItemContext, ItemError, Outcome, conflict_or, expect_of, planned_source, recheck};

/// CopyObject's limit.
const SINGLE_COPY_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Range per UploadPartCopy for larger objects.
const COPY_PART: u64 = 512 * 1024 * 1024;

pub(super) async fn run(
    id: usize,
    item: &PlanItem,
    src: &S3Storage,
    dst: &S3Storage,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let planned = planned_source(item)?;
    let source_key = src.key_of(&item.path);
    let key = checked_key(dst, &item.path)?;
    match planned.kind {
        EntryKind::Dir => return Ok(Outcome::default()),
        EntryKind::Symlink => {
            let meta = ObjectMeta {
                mtime_ns: Some(planned.mtime_ns),
                link_target: planned.link_target().cloned(),
                ..ObjectMeta::default()
            };
            dst.put_bytes(&key, bytes::Bytes::new(), &meta, expect_of(item))
                .await
                .map_err(conflict_or)?;
            return Ok(Outcome::default());
        }
        EntryKind::File if item.action == SyncAction::Metadata => return Ok(Outcome::default()),
        EntryKind::File => {}
    }
    let size = planned.size;
    if size <= SINGLE_COPY_MAX {
        dst.copy_object(src, &source_key, &key, None, expect_of(item))
            .await
            .map_err(conflict_or)?;
        ctx.advanced(id, size).await;
        // Nothing crossed our network: the servers copied it.
        return Ok(Outcome::default());
    }
    let stored = src
        .head_key(&source_key)
        .await?
        .map(|head| head.meta)
        .unwrap_or_default();
    let upload = dst.create_multipart(&key, &stored).await?;
    let etag = planned.etag();
    let result = async {
        let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(COPY_PART))
            .map(|i| {
                (
                    i as i32 + 1,
                    i * COPY_PART,
                    COPY_PART.min(size - i * COPY_PART),
                )
            })
            .collect();
        let mut parts: Vec<CompletedPart> = stream::iter(ranges)
            .map(|(number, start, len)| {
                let (upload, source_key) = (&upload, &source_key);
                async move {
                    let _slot = ctx.request_slot().await?;
                    let part = dst
                        .upload_part_copy(upload, number, src, source_key, start, len, etag)
                        .await?;
                    ctx.advanced(id, len).await;
                    Ok::<_, ItemError>(part)
                }
            })
            .buffer_unordered(ctx.parallel_requests())
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.number);
        recheck(dst, &key, expect_of(item)).await?;
        dst.complete_multipart(&upload, &parts, expect_of(item))
            .await
            .map_err(conflict_or)?;
        Ok::<_, ItemError>(())
    }
    .await;
    if let Err(error) = result {
        let _ = dst.abort_multipart(&upload).await;
        return Err(error);
    }
    Ok(Outcome::default())
}
