//! One object store to another (or to another bucket of the same). Where the
//! destination can read the source itself, the bytes never pass through this
//! machine: one whole-object copy up to the store's limit, beyond it a staged
//! object of server-side range copies. Otherwise the object is streamed
//! through in parts, with memory bounded by the run's request slots.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::storage::body::{BodySource, BodySums};
use crate::storage::object::{CopyRange, CopySource, StagedPart, StagedUpload};
use crate::storage::objects::read_range;
use crate::storage::{ObjectMeta, ObjectStore, SharedStore, StorageError};
use crate::types::{Entry, EntryKind, SyncAction};

use super::super::plan::PlanItem;
use super::upload::{MULTIPART_THRESHOLD, part_size};
use super::{
    ItemContext, ItemError, Outcome, checked_key, conflict_or, expect_of, planned_source, recheck,
    settle_write, source_changed,
};

/// Range per server-side part copy for objects over the single-copy limit.
const COPY_PART: u64 = 512 * 1024 * 1024;

pub(super) async fn run(
    id: usize,
    item: &PlanItem,
    src: &SharedStore,
    dst: &SharedStore,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let planned = planned_source(item)?;
    let source_key = src.key_of(&item.path);
    let key = checked_key(dst.as_ref(), &item.path)?;
    match planned.kind {
        EntryKind::Dir => return Ok(Outcome::default()),
        EntryKind::Symlink => {
            let meta = ObjectMeta {
                mtime_ns: Some(planned.mtime_ns),
                link_target: planned.link_target().cloned(),
                ..ObjectMeta::default()
            };
            let empty = bytes::Bytes::new();
            let body = BodySource::Memory(&empty);
            dst.put(&key, body, 0, &meta, BodySums::NONE, expect_of(item))
                .await
                .map_err(conflict_or)?;
            return Ok(Outcome::default());
        }
        EntryKind::File if item.action == SyncAction::Metadata => return Ok(Outcome::default()),
        EntryKind::File => {}
    }
    let source = CopySource {
        store: src.as_ref(),
        key: &source_key,
        version: planned.etag(),
    };
    let copy = ObjectCopy {
        id,
        item,
        planned,
        src: source,
        dst: dst.as_ref(),
        key: &key,
        ctx,
    };
    if !dst.copies_from(src.as_ref()) {
        return copy.streamed().await;
    }
    match copy.server_side().await {
        // Another store's URL the destination could not read (a private
        // endpoint, an emulator that reads only itself): through this machine.
        Err(ItemError::Storage(StorageError::Remote {
            kind: crate::storage::RemoteErrorKind::SourceUnreachable,
            message,
            ..
        })) if src.scheme() != dst.scheme() => {
            let _ = ctx
                .events
                .send(crate::progress::ExecEvent::Warning {
                    message: format!(
                        "{}: {} could not read the source itself ({message}); copied through this machine instead",
                        item.path,
                        dst.scheme()
                    ),
                })
                .await;
            copy.streamed().await
        }
        other => other,
    }
}

struct ObjectCopy<'a> {
    id: usize,
    item: &'a PlanItem,
    planned: &'a Entry,
    src: CopySource<'a>,
    dst: &'a dyn ObjectStore,
    key: &'a str,
    ctx: &'a ItemContext,
}

impl ObjectCopy<'_> {
    /// The POSIX attributes stored with the source object (one HEAD).
    async fn source_meta(&self) -> Result<ObjectMeta, ItemError> {
        Ok(self
            .src
            .store
            .head(self.src.key)
            .await?
            .map(|head| head.meta)
            .unwrap_or_default())
    }

    async fn server_side(&self) -> Result<Outcome, ItemError> {
        let size = self.planned.size;
        let limits = *self.dst.limits();
        // Within one store the copy keeps the metadata itself; across stores
        // it is given.
        let same_store = self.src.store.scheme() == self.dst.scheme();
        if size <= limits.max_single_copy {
            let meta = if same_store {
                None
            } else {
                Some(self.source_meta().await?)
            };
            let result = self
                .dst
                .copy_object(self.src, self.key, meta.as_ref(), expect_of(self.item))
                .await;
            settle_write(self.dst, self.key, result).await?;
            self.ctx.advanced(self.id, size).await;
            // Nothing crossed our network: the servers copied it.
            return Ok(Outcome::default());
        }
        let part = COPY_PART
            .min(limits.max_part)
            .max(size.div_ceil(limits.max_parts as u64));
        let ranges = (0..size.div_ceil(part))
            .map(|i| (i as u32 + 1, i * part, part.min(size - i * part)))
            .collect::<Vec<_>>();
        let meta = self.source_meta().await?;
        let upload = &self
            .dst
            .need_staged()?
            .begin_staged(self.key, &meta)
            .await?;
        let result = self
            .stage_all(upload, &meta, ranges, |number, start, len| async move {
                let range = CopyRange {
                    start,
                    len,
                    expected_md5: None,
                    expected_crc32c: None,
                };
                let part = self
                    .dst
                    .need_staged_copies()?
                    .stage_copy(upload, number, start, self.src, range)
                    .await?;
                Ok(part)
            })
            .await;
        self.finish(upload, result).await?;
        Ok(Outcome::default())
    }

    /// Through this machine: parts read from the source (pinned to the
    /// version planned) and staged at the destination, at most one part per
    /// request slot in memory.
    async fn streamed(&self) -> Result<Outcome, ItemError> {
        let size = self.planned.size;
        let meta = self.source_meta().await?;
        let version = self.src.version;
        if size <= MULTIPART_THRESHOLD {
            let bytes = {
                let _slot = self.ctx.request_slot().await?;
                read_range(self.src.store, self.src.key, 0, size, version)
                    .await
                    .map_err(source_changed)?
            };
            let body = BodySource::Memory(&bytes);
            let sums = BodySums::of(&bytes, self.dst.limits().body_checksum);
            let result = self
                .dst
                .put(self.key, body, size, &meta, sums, expect_of(self.item))
                .await;
            settle_write(self.dst, self.key, result).await?;
            self.ctx.advanced(self.id, size).await;
            return Ok(Outcome::sent(size, 0));
        }
        let part = part_size(size, self.dst.limits());
        let ranges = (0..size.div_ceil(part))
            .map(|i| (i as u32 + 1, i * part, part.min(size - i * part)))
            .collect::<Vec<_>>();
        let upload = &self
            .dst
            .need_staged()?
            .begin_staged(self.key, &meta)
            .await?;
        let result = self
            .stage_all(upload, &meta, ranges, |number, start, len| async move {
                let bytes = read_range(self.src.store, self.src.key, start, len, version)
                    .await
                    .map_err(source_changed)?;
                let sums = BodySums::of(&bytes, self.dst.limits().body_checksum);
                let part = self
                    .dst
                    .need_staged()?
                    .stage_bytes(upload, number, start, BodySource::Memory(&bytes), len, sums)
                    .await?;
                if part
                    .md5
                    .is_some_and(|theirs| sums.md5.is_some_and(|ours| theirs != ours))
                {
                    return Err(ItemError::Storage(StorageError::Verification {
                        target: self.dst.url_of(self.key),
                        message: format!("part {number} arrived with other bytes than were sent"),
                    }));
                }
                Ok(part)
            })
            .await;
        self.finish(upload, result).await?;
        Ok(Outcome::sent(size, 0))
    }

    /// Stages every range within the run's request slots, then commits.
    async fn stage_all<F, Fut>(
        &self,
        upload: &StagedUpload,
        meta: &ObjectMeta,
        ranges: Vec<(u32, u64, u64)>,
        stage: F,
    ) -> Result<(), ItemError>
    where
        F: Fn(u32, u64, u64) -> Fut,
        Fut: Future<Output = Result<StagedPart, ItemError>>,
    {
        let stage = &stage;
        let staging = stream::iter(ranges)
            .map(|(number, start, len)| async move {
                let _slot = self.ctx.request_slot().await?;
                let part = stage(number, start, len).await?;
                self.ctx.advanced(self.id, len).await;
                Ok::<_, ItemError>(part)
            })
            .buffer_unordered(self.ctx.parallel_requests())
            .try_collect::<Vec<StagedPart>>();
        let mut parts = tokio::select! {
            parts = staging => parts?,
            () = self.ctx.cancel.cancelled() => return Err(ItemError::Cancelled),
        };
        parts.sort_by_key(|p| p.number);
        recheck(self.dst, self.key, expect_of(self.item)).await?;
        let result = self
            .dst
            .need_staged()?
            .commit_staged(upload, &parts, meta, expect_of(self.item))
            .await;
        settle_write(self.dst, self.key, result).await?;
        Ok(())
    }

    /// Abandons the staged object after a failure.
    async fn finish(
        &self,
        upload: &StagedUpload,
        result: Result<(), ItemError>,
    ) -> Result<(), ItemError> {
        if result.is_err()
            && let Some(staged) = self.dst.staged()
        {
            let _ = staged.abort_staged(upload).await;
        }
        result
    }
}
