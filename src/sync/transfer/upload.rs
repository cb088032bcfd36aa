//! Local disk up to an object store: one PUT for small files, a parallel staged
//! upload (multipart, block list) for large ones, streamed from disk either way
//! (memory does not grow with the file).

use std::os::unix::fs::MetadataExt;

use crate::storage::body::{BodySource, BodySums};
use crate::storage::object::ChecksumKind;
use crate::storage::{LocalStorage, ObjectMeta, SharedStore, StorageError, StoreLimits};
use crate::types::{Entry, EntryKind, SyncAction};

use super::super::plan::PlanItem;
use super::delta_upload::{Target, upload_delta};
use super::local::SourceFile;
use super::parts::Assembly;
use super::resumable;
use super::signed::{upload_signed, whole_file_parts};
use super::{
    ItemContext, ItemError, Outcome, checked_key, conflict_or, expect_of, planned_source,
    settle_write,
};

pub use crate::sending::MULTIPART_THRESHOLD;

/// Part size for a file of `size` bytes on a store with these limits
/// (`sending::part_size_within`).
pub fn part_size(size: u64, limits: &StoreLimits) -> u64 {
    crate::sending::part_size_within(size, limits.max_parts as u64, limits.min_part)
}

/// The metadata that travels with an uploaded file.
fn object_meta(planned: &Entry, metadata: Option<&std::fs::Metadata>) -> ObjectMeta {
    ObjectMeta {
        mtime_ns: Some(planned.mtime_ns),
        mode: Some(planned.mode),
        uid: metadata.map(MetadataExt::uid),
        gid: metadata.map(MetadataExt::gid),
        link_target: planned.link_target().cloned(),
        blake3: None,
    }
}

pub(super) async fn run(
    id: usize,
    item: &PlanItem,
    src: &LocalStorage,
    dst: &SharedStore,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let planned = planned_source(item)?;
    let key = checked_key(dst.as_ref(), &item.path)?;
    match planned.kind {
        // An empty directory (the plan has no other): a `dir/` marker, as
        // rclone's --s3-directory-markers writes them, carrying its times.
        EntryKind::Dir => {
            let empty = bytes::Bytes::new();
            let meta = object_meta(planned, None);
            dst.put(
                &format!("{key}/"),
                BodySource::Memory(&empty),
                0,
                &meta,
                BodySums::NONE,
                expect_of(item),
            )
            .await
            .map_err(conflict_or)?;
            Ok(Outcome::default())
        }
        EntryKind::Symlink => {
            let empty = bytes::Bytes::new();
            let meta = object_meta(planned, None);
            dst.put(
                &key,
                BodySource::Memory(&empty),
                0,
                &meta,
                BodySums::NONE,
                expect_of(item),
            )
            .await
            .map_err(conflict_or)?;
            Ok(Outcome::default())
        }
        EntryKind::File if item.action == SyncAction::Metadata => {
            // Same bytes, new attributes: rewrite the metadata server-side.
            let source = SourceFile::open(src.path_of(&item.path), planned)?;
            let meta = source
                .file
                .metadata()
                .map_err(|e| StorageError::io("cannot stat", &source.path, e))?;
            dst.set_metadata(&key, &object_meta(planned, Some(&meta)), expect_of(item))
                .await
                .map_err(conflict_or)?;
            Ok(Outcome::default())
        }
        EntryKind::File
            if item.action == SyncAction::Delta || planned.size >= ctx.delta_threshold =>
        {
            let source = SourceFile::open(src.path_of(&item.path), planned)?;
            let file_meta = source
                .file
                .metadata()
                .map_err(|e| StorageError::io("cannot stat", &source.path, e))?;
            let meta = object_meta(planned, Some(&file_meta));
            let target = Target {
                id,
                item,
                planned,
                dst,
                key: &key,
                meta: &meta,
                ctx,
            };
            if item.action == SyncAction::Delta {
                upload_delta(&target, &source).await
            } else {
                upload_signed(&target, &source).await
            }
        }
        EntryKind::File => upload_file(id, item, planned, src, dst, &key, ctx).await,
    }
}

/// Files up to this size are read once into memory, hashed there and sent
/// from there: one blocking task a file, where a body read from the disk
/// costs one per file operation.
const READ_WHOLE: u64 = 1024 * 1024;

/// Files up to this size are read and hashed where the upload runs: a few
/// microseconds from the page cache, less than handing the read to a
/// blocking thread and back costs.
const READ_IN_PLACE: u64 = 64 * 1024;

/// A small file as read for its upload.
#[derive(Default)]
struct SmallRead {
    /// Its bytes, when read whole (up to [`READ_WHOLE`]).
    bytes: Option<bytes::Bytes>,
    /// Its blake3 (hex), when asked for.
    blake3: Option<String>,
    /// The checksum its body carries.
    sums: BodySums,
}

/// Reads a small file for its upload: its blake3 if asked for and the
/// checksum `kind` the store wants, and the bytes themselves when small
/// enough. Nothing when the file cannot be read whole or no longer has
/// `size` bytes (the upload then finds out why).
async fn read_small_file(
    path: std::path::PathBuf,
    size: u64,
    want_blake3: bool,
    kind: Option<ChecksumKind>,
) -> SmallRead {
    let read_whole = move |path: &std::path::Path| {
        let bytes = std::fs::read(path)
            .ok()
            .filter(|bytes| bytes.len() as u64 == size)?;
        Some(SmallRead {
            blake3: want_blake3.then(|| blake3::hash(&bytes).to_hex().to_string()),
            sums: BodySums::of(&bytes, kind),
            bytes: Some(bytes.into()),
        })
    };
    if size <= READ_IN_PLACE {
        return read_whole(&path).unwrap_or_default();
    }
    let read = tokio::task::spawn_blocking(move || {
        if size <= READ_WHOLE {
            return read_whole(&path);
        }
        let map = std::fs::File::open(&path).and_then(|f| crate::storage::local::map_readonly(&f));
        map.ok().filter(|map| map.len() as u64 == size).map(|map| {
            let (blake3, sums) = rayon::join(
                || want_blake3.then(|| blake3::hash(&map).to_hex().to_string()),
                || BodySums::of(&map, kind),
            );
            SmallRead {
                bytes: None,
                blake3,
                sums,
            }
        })
    })
    .await;
    read.ok().flatten().unwrap_or_default()
}

async fn upload_file(
    id: usize,
    item: &PlanItem,
    planned: &Entry,
    src: &LocalStorage,
    dst: &SharedStore,
    key: &str,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let source = SourceFile::open(src.path_of(&item.path), planned)?;
    let file_meta = source
        .file
        .metadata()
        .map_err(|e| StorageError::io("cannot stat", &source.path, e))?;
    let mut meta = object_meta(planned, Some(&file_meta));
    let size = planned.size;
    // A store of the core alone takes every file in one request.
    let whole = dst.staged().is_none() && dst.streams().is_none() && dst.chunks().is_none();
    if size <= MULTIPART_THRESHOLD || whole {
        // Small files carry their blake3 (for --checksum) where the store
        // keeps metadata, and are sent with the checksum the server checks:
        // one read of a small file for both, and the upload sends the bytes
        // read. A store that wants neither (an SSH server) costs no hashing.
        let limits = dst.limits();
        let (want_blake3, kind) = (limits.keeps_metadata, limits.body_checksum);
        let read = if want_blake3 || kind.is_some() {
            read_small_file(source.path.clone(), size, want_blake3, kind).await
        } else {
            SmallRead::default()
        };
        meta.blake3 = read.blake3;
        let body = match &read.bytes {
            Some(bytes) => BodySource::Memory(bytes),
            None => BodySource::File {
                path: &source.path,
                offset: 0,
            },
        };
        let result = dst
            .put(key, body, size, &meta, read.sums, expect_of(item))
            .await;
        if result.is_err() {
            // A body that ended early is the file changing, not the network.
            source.check("while it was uploaded")?;
        }
        settle_write(dst.as_ref(), key, result).await?;
        if let Err(changed) = source.check("while it was uploaded") {
            // The object may hold a mix of old and new bytes, yet look newer
            // than the file: remove it so the next run uploads it again.
            let _ = dst.delete_keys(&[key.to_string()]).await;
            return Err(changed);
        }
        ctx.advanced(id, size).await;
        return Ok(Outcome::sent(size, 0));
    }
    if dst.chunks().is_some() || dst.streams().is_some() {
        let target = Target {
            id,
            item,
            planned,
            dst,
            key,
            meta: &meta,
            ctx,
        };
        if dst.chunks().is_some() {
            return super::chunked::upload_chunked(&target, &source, false).await;
        }
        return super::stream::upload_streamed(&target, &source, false).await;
    }
    let part = part_size(size, dst.limits());
    let mut started = resumable::start(
        dst.as_ref(),
        key,
        &meta,
        &source.path,
        planned,
        part,
        None,
        ctx,
    )
    .await?;
    let specs = whole_file_parts(size, part, &started.done_numbers());
    let assembly = Assembly {
        id,
        dst: dst.as_ref(),
        upload: &started.upload,
        meta: &meta,
        file: &source.path,
        ctx,
        base: None,
        expect: expect_of(item),
        sign_block_size: None,
        journal: started.journal.as_ref(),
    };
    let resumed = std::mem::take(&mut started.resumed);
    let result = async {
        let assembled = assembly.run(specs, resumed).await?;
        // Checked before completing: a file that changed under the upload never
        // becomes the object.
        source.check("while it was uploaded")?;
        assembly.complete(&assembled, size).await?;
        Ok::<_, ItemError>(assembled.uploaded)
    }
    .await;
    match result {
        Ok(uploaded) => {
            started.completed();
            Ok(Outcome::sent(uploaded, 0))
        }
        Err(error) => Err(started.fail(dst.as_ref(), error).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::object::Stitching;

    #[test]
    fn parts_stay_within_the_limit() {
        const MIB: u64 = 1024 * 1024;
        let limits = StoreLimits {
            min_part: 5 * MIB,
            max_part: 5 * 1024 * MIB,
            max_parts: 10_000,
            max_single_put: 5 * 1024 * MIB,
            max_single_copy: 5 * 1024 * MIB,
            stitching: Stitching::Ranges,
            delete_batch: 1000,
            checksums: &[],
            body_checksum: None,
            keeps_metadata: true,
            cheap_range_copies: false,
            rebuild_check: crate::storage::RebuildCheck::SizeOnly,
        };
        assert_eq!(part_size(64 * MIB, &limits), 16 * MIB);
        let five_tib = 5 * 1024 * 1024 * MIB;
        assert!(five_tib.div_ceil(part_size(five_tib, &limits)) <= 10_000);
        assert_eq!(part_size(five_tib, &limits) % MIB, 0);
    }
}
