//! Whole uploads that leave a sidecar: the file signed as it is sent, so
//! that its next change can go up by delta.

use crate::signature::{assemble_signature, signature_of_bytes};
use crate::storage::body::{BodySource, BodySums};
use crate::storage::{ObjectMeta, StorageError};

use super::super::sidecar;
use super::delta_upload::{SINGLE_PUT_MAX, Target, task_error};
use super::local::SourceFile;
use super::parts::{Assembly, PartSpec};
use super::resumable;
use super::{ItemError, Outcome, expect_of, settle_write};

/// A large file to a store of the core alone (no staged parts, no
/// streams): one request of the whole file, read from the disk as it goes
/// (up to the store's `max_single_put`, which refuses beyond), its signature
/// from a read of its own.
async fn upload_signed_whole(
    t: &Target<'_>,
    source: &SourceFile<'_>,
) -> Result<Outcome, ItemError> {
    let size = t.planned.size;
    let (path, block) = (source.path.clone(), t.ctx.block_size);
    let signature = tokio::task::spawn_blocking(move || {
        crate::signature::signature_of_file(&path, block)
            .map_err(|e| StorageError::io("cannot read", &path, e))
    })
    .await
    .map_err(task_error)??;
    let body = BodySource::File {
        path: &source.path,
        offset: 0,
    };
    let result = t
        .dst
        .put(t.key, body, size, t.meta, BodySums::NONE, expect_of(t.item))
        .await;
    let etag = settle_write(t.dst.as_ref(), t.key, result).await?;
    source.check("while it was uploaded")?;
    t.ctx.advanced(t.id, size).await;
    sidecar::store(t.dst.as_ref(), &t.item.path, &signature, &etag).await?;
    Ok(Outcome::sent(size, 0))
}

/// Uploads the whole file and writes its sidecar, reading it once.
pub(super) async fn upload_signed(
    t: &Target<'_>,
    source: &SourceFile<'_>,
) -> Result<Outcome, ItemError> {
    let size = t.planned.size;
    let block = t.ctx.block_size;
    let path = source.path.clone();
    if size <= SINGLE_PUT_MAX {
        let (bytes, signature) = tokio::task::spawn_blocking(move || {
            let bytes =
                std::fs::read(&path).map_err(|e| StorageError::io("cannot read", &path, e))?;
            let signature = signature_of_bytes(&bytes, block);
            Ok::<_, StorageError>((bytes, signature))
        })
        .await
        .map_err(task_error)??;
        if bytes.len() as u64 != size {
            return Err(ItemError::SourceChanged {
                what: "before it was uploaded",
            });
        }
        let sums = BodySums::of(&bytes, t.dst.limits().body_checksum);
        let bytes = bytes::Bytes::from(bytes);
        let body = BodySource::Memory(&bytes);
        let result = t
            .dst
            .put(t.key, body, size, t.meta, sums, expect_of(t.item))
            .await;
        let etag = settle_write(t.dst.as_ref(), t.key, result).await?;
        source.check("while it was uploaded")?;
        t.ctx.advanced(t.id, size).await;
        sidecar::store(t.dst.as_ref(), &t.item.path, &signature, &etag).await?;
        return Ok(Outcome::sent(size, 0));
    }
    if t.dst.chunks().is_some() {
        return super::chunked::upload_chunked(t, source, true).await;
    }
    if t.dst.streams().is_some() {
        return super::stream::upload_streamed(t, source, true).await;
    }
    if t.dst.staged().is_none() {
        return upload_signed_whole(t, source).await;
    }
    let part = super::chunked::chunk_size(size, t.dst.limits(), block);
    let mut started = resumable::start(
        t.dst.as_ref(),
        t.key,
        t.meta,
        &source.path,
        t.planned,
        part,
        Some(block),
        t.ctx,
    )
    .await?;
    let specs = whole_file_parts(size, part, &started.done_numbers());
    let assembly = Assembly {
        id: t.id,
        dst: t.dst.as_ref(),
        upload: &started.upload,
        meta: t.meta,
        file: &source.path,
        ctx: t.ctx,
        base: None,
        expect: expect_of(t.item),
        sign_block_size: Some(block),
        journal: started.journal.as_ref(),
    };
    let resumed = std::mem::take(&mut started.resumed);
    let result = async {
        let mut assembled = assembly.run(specs, resumed).await?;
        source.check("while it was uploaded")?;
        let signature = assemble_signature(std::mem::take(&mut assembled.signed), block, size)
            .ok_or_else(|| StorageError::Transfer {
                target: t.dst.url_of(t.key),
                message: "the signed parts do not cover the file".into(),
            })?;
        // The file's blake3, known now, goes with the commit where the store
        // takes metadata then: what a later delta download is checked with.
        let meta = ObjectMeta {
            blake3: Some(hex::encode(signature.file_hash)),
            ..t.meta.clone()
        };
        let etag = assembly.complete_with(&assembled, size, &meta).await?;
        Ok::<_, ItemError>((etag, signature, assembled.uploaded))
    }
    .await;
    let (etag, signature, uploaded) = match result {
        Ok(done) => done,
        Err(error) => return Err(started.fail(t.dst.as_ref(), error).await),
    };
    started.completed();
    sidecar::store(t.dst.as_ref(), &t.item.path, &signature, &etag).await?;
    Ok(Outcome::sent(uploaded, 0))
}

/// The parts of a whole-file upload in `part`-sized pieces, numbered, less
/// those already on the server.
pub(super) fn whole_file_parts(
    size: u64,
    part: u64,
    done: &std::collections::HashSet<u32>,
) -> Vec<(u32, PartSpec)> {
    (0..size.div_ceil(part))
        .map(|i| {
            let spec = PartSpec::Upload {
                offset: i * part,
                len: part.min(size - i * part),
            };
            (i as u32 + 1, spec)
        })
        .filter(|(number, _)| !done.contains(number))
        .collect()
}
