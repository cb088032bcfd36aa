//! Local disk up to S3: one PUT for small files, a parallel multipart upload for
//! large ones, streamed from disk either way (memory does not grow with the file).

use std::os::unix::fs::MetadataExt;

use crate::storage::s3::{ObjectMeta, S3Storage, is_sidecar};
use crate::storage::{LocalStorage, StorageError};
use crate::types::{Entry, EntryKind, RelPath, SyncAction};

use super::super::plan::PlanItem;
use super::delta_upload::{Target, upload_delta, upload_signed, whole_file_parts};
use super::local::SourceFile;
use super::parts::Assembly;
use super::resumable;
use super::{ItemContext, ItemError, Outcome, conflict_or, expect_of, planned_source};

/// Files above this go up in parts (and can later be rebuilt by delta).
pub const MULTIPART_THRESHOLD: u64 = 32 * 1024 * 1024;
/// Smallest part; larger files get larger parts to stay within 10,000 parts.
const MIN_PART_SIZE: u64 = 16 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// Part size for a file of `size` bytes: at least 16 MiB, whole MiB, and few
/// enough parts for S3's limit.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    size.div_ceil(MAX_PARTS).div_ceil(MIB).max(1) * MIB
}

/// The object key for a path, refusing names an object store cannot hold.
pub(super) fn checked_key(dst: &S3Storage, path: &RelPath) -> Result<String, ItemError> {
    if path.as_str().is_none() {
        return Err(ItemError::NotUtf8Name);
    }
    if is_sidecar(path.as_bytes()) {
        return Err(ItemError::ReservedName);
    }
    Ok(dst.key_of(path))
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
    dst: &S3Storage,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let planned = planned_source(item)?;
    let key = checked_key(dst, &item.path)?;
    match planned.kind {
        // Implied by keys: nothing to store.
        EntryKind::Dir => Ok(Outcome::default()),
        EntryKind::Symlink => {
            dst.put_bytes(
                &key,
                bytes::Bytes::new(),
                &object_meta(planned, None),
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
            dst.copy_object(
                dst,
                &key,
                &key,
                Some(&object_meta(planned, Some(&meta))),
                expect_of(item),
            )
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

async fn upload_file(
    id: usize,
    item: &PlanItem,
    planned: &Entry,
    src: &LocalStorage,
    dst: &S3Storage,
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
    if size <= MULTIPART_THRESHOLD {
        // Small files carry their blake3 (for --checksum) and are sent with
        // their MD5 (the server checks it): one read of a small file for both
        // hashes, and the upload then reads it from the page cache.
        let path = source.path.clone();
        let hashes = tokio::task::spawn_blocking(move || {
            let map =
                std::fs::File::open(&path).and_then(|f| crate::storage::local::map_readonly(&f));
            map.ok().map(|map| {
                let (blake3, md5) = rayon::join(
                    || blake3::hash(&map).to_hex().to_string(),
                    || crate::storage::s3::etag::md5(&map),
                );
                (blake3, md5, map.len() as u64)
            })
        })
        .await
        .ok()
        .flatten()
        .filter(|&(_, _, len)| len == size);
        meta.blake3 = hashes.as_ref().map(|(blake3, _, _)| blake3.clone());
        let md5 = hashes.map(|(_, md5, _)| md5);
        dst.put_file(key, &source.path, size, &meta, md5, expect_of(item))
            .await
            .map_err(conflict_or)?;
        if let Err(changed) = source.check("while it was uploaded") {
            // The object may hold a mix of old and new bytes, yet look newer
            // than the file: remove it so the next run uploads it again.
            let _ = dst.delete_keys(&[key.to_string()]).await;
            return Err(changed);
        }
        ctx.advanced(id, size).await;
        return Ok(Outcome::sent(size, 0));
    }
    let part = part_size(size).max(MIN_PART_SIZE);
    let mut started =
        resumable::start(dst, key, &meta, &source.path, planned, part, None, ctx).await?;
    let specs = whole_file_parts(size, part, &started.done_numbers());
    let assembly = Assembly {
        id,
        dst,
        upload: &started.upload,
        file: &source.path,
        ctx,
        base_etag: None,
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
        Err(error) => Err(started.fail(dst, error).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_the_limit() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size(64 * MIB).max(MIN_PART_SIZE), 16 * MIB);
        let five_tib = 5 * 1024 * 1024 * MIB;
        assert!(five_tib.div_ceil(part_size(five_tib)) <= MAX_PARTS);
        assert_eq!(part_size(five_tib) % MIB, 0);
    }
}
