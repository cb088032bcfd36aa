//! Uploads to a store that keeps objects as chunks too (GCS chunked objects):
//! the file is cut at fixed places, each chunk's MD5 and CRC32C computed in
//! one read, and a chunk whose kept twin at the same place has the same
//! checksums is staged from it server-side; the others are sent. The first
//! upload sends every chunk; an edit in place re-sends the chunks it touches.
//! Bytes inserted or removed move every later chunk, which is then sent
//! again (docs/stores/gcs.md says so).
//!
//! Not journaled: the chunks a killed run left are kept chunks, and the next
//! run reuses those that match the file.

use rayon::prelude::*;

use crate::signature::signature_of_bytes;
use crate::storage::body::md5_of;
use crate::storage::local::map_readonly;
use crate::storage::object::{CopySource, KeptChunk, StoreLimits};
use crate::storage::{ObjectStore, StorageError};

use super::delta_upload::{MIN_SIGNED_PART, Target, warn};
use super::local::SourceFile;
use super::parts::{Assembly, PartSpec};
use super::{ItemError, Outcome, expect_of};
use crate::sync::sidecar;

/// Whether an upload of `size` bytes to `store` goes in chunks (one request
/// carries smaller files whole).
pub(crate) fn goes_in_chunks(store: &dyn ObjectStore, size: u64) -> bool {
    store.chunks().is_some() && size > super::upload::MULTIPART_THRESHOLD
}

/// The checksums of one chunk of the local file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalChunk {
    pub start: u64,
    pub len: u64,
    pub md5: [u8; 16],
    pub crc32c: u32,
}

/// The chunk size for a file of `size` bytes: the parts of a signed upload
/// (whole blocks, at least 16 MiB, few enough for the store), so that the
/// same file cuts the same way on every run.
pub(crate) fn chunk_size(size: u64, limits: &StoreLimits, block: u32) -> u64 {
    (super::upload::part_size(size, limits).max(MIN_SIGNED_PART)).div_ceil(u64::from(block))
        * u64::from(block)
}

/// The chunks of `bytes`, cut every `chunk` bytes, checksummed in parallel.
pub(crate) fn local_chunks(bytes: &[u8], chunk: u64) -> Vec<LocalChunk> {
    let chunk = usize::try_from(chunk).unwrap_or(usize::MAX).max(1);
    bytes
        .par_chunks(chunk)
        .enumerate()
        .map(|(i, piece)| LocalChunk {
            start: (i * chunk) as u64,
            len: piece.len() as u64,
            md5: md5_of(piece),
            crc32c: crc32c::crc32c(piece),
        })
        .collect()
}

/// Whether the kept chunk can stand for the local one: the same place, the
/// same length, the same checksums (both, where the store reports both).
fn reusable(local: &LocalChunk, kept: &KeptChunk) -> bool {
    kept.start == local.start
        && kept.len == local.len
        && kept.crc32c == Some(local.crc32c)
        && kept.md5.is_none_or(|md5| md5 == local.md5)
}

/// The parts of the upload, numbered as the chunks: a copy of each kept
/// chunk that matches, an upload of every other.
pub(super) fn chunk_parts(local: &[LocalChunk], kept: &[KeptChunk]) -> Vec<(u32, PartSpec)> {
    local
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let number = i as u32 + 1;
            let spec = match kept.get(i) {
                Some(twin) if twin.number == number && reusable(chunk, twin) => PartSpec::Copy {
                    src_offset: chunk.start,
                    new_offset: chunk.start,
                    len: chunk.len,
                },
                _ => PartSpec::Upload {
                    offset: chunk.start,
                    len: chunk.len,
                },
            };
            (number, spec)
        })
        .collect()
}

/// What an upload of the local chunks would reuse of the kept ones: the
/// plan's estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reuse {
    pub sent: u64,
    pub reused: u64,
    pub chunks: usize,
    pub chunks_reused: usize,
}

pub(crate) fn reuse_of(local: &[LocalChunk], kept: &[KeptChunk]) -> Reuse {
    let parts = chunk_parts(local, kept);
    let (sent, reused) = bytes_sent_and_reused(&parts);
    Reuse {
        sent,
        reused,
        chunks: parts.len(),
        chunks_reused: parts
            .iter()
            .filter(|(_, spec)| matches!(spec, PartSpec::Copy { .. }))
            .count(),
    }
}

/// Bytes the parts send, and bytes they reuse.
fn bytes_sent_and_reused(parts: &[(u32, PartSpec)]) -> (u64, u64) {
    parts
        .iter()
        .fold((0, 0), |(sent, reused), (_, spec)| match *spec {
            PartSpec::Upload { len, .. } => (sent + len, reused),
            PartSpec::Copy { len, .. } => (sent, reused + len),
        })
}

/// Uploads the file as chunks, reusing the kept ones that match; with `sign`,
/// writes its signature sidecar too (from the same read).
pub(super) async fn upload_chunked(
    t: &Target<'_>,
    source: &SourceFile<'_>,
    sign: bool,
) -> Result<Outcome, ItemError> {
    let size = t.planned.size;
    let block = t.ctx.block_size;
    let chunk = chunk_size(size, t.dst.limits(), block);
    let path = source.path.clone();
    let (local, signature) = crate::storage::run_blocking(move || {
        let file =
            std::fs::File::open(&path).map_err(|e| StorageError::io("cannot open", &path, e))?;
        let map = map_readonly(&file).map_err(|e| StorageError::io("cannot map", &path, e))?;
        let (local, signature) = rayon::join(
            || local_chunks(&map, chunk),
            || sign.then(|| signature_of_bytes(&map, block)),
        );
        let intact = !map.faulted() && map.len() as u64 == size;
        Ok((intact.then_some(local), signature))
    })
    .await?;
    let Some(local) = local else {
        return Err(ItemError::SourceChanged {
            what: "while it was read",
        });
    };
    let kept = match t.dst.chunks() {
        Some(chunks) => chunks.kept_chunks(t.key).await?,
        None => Vec::new(),
    };
    let parts = chunk_parts(&local, &kept);
    let (outcome, version) = match assemble(t, source, parts).await {
        Err(ItemError::CopiedRangeMismatch { detail }) => {
            // A kept chunk changed between its listing and its reuse: every
            // chunk is sent instead.
            warn(
                t,
                format!(
                    "{}: a kept chunk no longer matches ({detail}); sending every chunk",
                    t.item.path
                ),
            )
            .await;
            assemble(t, source, chunk_parts(&local, &[])).await
        }
        other => other,
    }?;
    if let Some(signature) = signature {
        sidecar::store(t.dst.as_ref(), &t.item.path, &signature, &version).await?;
    }
    Ok(outcome)
}

/// One attempt: the parts staged, the object composed and checked. Returns
/// what was sent and the object's new version.
async fn assemble(
    t: &Target<'_>,
    source: &SourceFile<'_>,
    parts: Vec<(u32, PartSpec)>,
) -> Result<(Outcome, String), ItemError> {
    let upload = t.dst.need_staged()?.begin_staged(t.key, t.meta).await?;
    let assembly = Assembly {
        id: t.id,
        dst: t.dst.as_ref(),
        upload: &upload,
        meta: t.meta,
        file: &source.path,
        ctx: t.ctx,
        base: Some(CopySource {
            store: t.dst.as_ref(),
            key: t.key,
            version: None,
        }),
        expect: expect_of(t.item),
        sign_block_size: None,
        journal: None,
    };
    let result = async {
        let assembled = assembly.run(parts, Vec::new()).await?;
        source.check("while it was uploaded")?;
        let version = assembly.complete(&assembled, t.planned.size).await?;
        Ok::<_, ItemError>((Outcome::sent(assembled.uploaded, assembled.copied), version))
    }
    .await;
    match result {
        Ok(done) => Ok(done),
        Err(error) => {
            // An interruption leaves everything for the next run, which
            // reuses the chunks sent; anything else abandons the upload (the
            // chunks stay only if the object they belong to exists).
            if !error.is_interruption()
                && let Some(staged) = t.dst.staged()
            {
                let _ = staged.abort_staged(&upload).await;
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_of(local: &[LocalChunk]) -> Vec<KeptChunk> {
        local
            .iter()
            .enumerate()
            .map(|(i, c)| KeptChunk {
                number: i as u32 + 1,
                start: c.start,
                len: c.len,
                md5: Some(c.md5),
                crc32c: Some(c.crc32c),
            })
            .collect()
    }

    #[test]
    fn an_edit_in_place_sends_only_the_chunk_it_touches() {
        let old: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        new[4500] ^= 1;
        let kept = kept_of(&local_chunks(&old, 1000));
        let parts = chunk_parts(&local_chunks(&new, 1000), &kept);
        assert_eq!(parts.len(), 10);
        assert_eq!(bytes_sent_and_reused(&parts), (1000, 9000));
        assert!(matches!(
            parts[4].1,
            PartSpec::Upload {
                offset: 4000,
                len: 1000
            }
        ));
    }

    #[test]
    fn growth_and_a_shorter_last_chunk_are_sent() {
        let old = vec![3u8; 2500];
        let mut new = old.clone();
        new.extend_from_slice(&[4u8; 700]);
        let kept = kept_of(&local_chunks(&old, 1000));
        let parts = chunk_parts(&local_chunks(&new, 1000), &kept);
        // Chunks 1 and 2 are as they were; the third grew, the fourth is new.
        assert_eq!(bytes_sent_and_reused(&parts), (1200, 2000));
    }

    #[test]
    fn a_chunk_with_other_checksums_or_place_is_not_reused() {
        let bytes = vec![9u8; 3000];
        let local = local_chunks(&bytes, 1000);
        let mut kept = kept_of(&local);
        kept[0].md5 = Some([0; 16]);
        kept[1].crc32c = None;
        kept[2].start = 1;
        assert_eq!(
            bytes_sent_and_reused(&chunk_parts(&local, &kept)),
            (3000, 0)
        );
        // Nothing kept: the first upload sends everything.
        assert_eq!(bytes_sent_and_reused(&chunk_parts(&local, &[])), (3000, 0));
    }
}
