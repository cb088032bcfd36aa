//! Building an object from staged parts, shared by whole uploads and delta
//! uploads: parts uploaded from the local file or copied server-side from the
//! current object, in parallel within the run's request slots; then a checked
//! commit — the source unchanged, the old object still the one we copied from,
//! what the store reports matching the parts (checked by the store), the size
//! right.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::signature::{SignedBlocks, sign_blocks};
use crate::storage::body::{BodySource, BodySums};
use crate::storage::local::MappedFile;
use crate::storage::object::{ChecksumKind, CopyRange, CopySource, StagedPart, StagedUpload};
use crate::storage::{Expect, ObjectMeta, ObjectStore, RemoteErrorKind, StorageError};

use super::resumable::{Journal, ResumedPart};
use super::{ItemContext, ItemError, recheck, settle_write};
use crate::resume::PartDigest;

/// Parts up to this size are held in memory between reading and sending (at
/// most one per request slot); larger ones are streamed from the file.
const KEEP_IN_MEMORY: u64 = 64 * 1024 * 1024;

/// One part of the new object, in order.
#[derive(Clone, Copy, Debug)]
pub(super) enum PartSpec {
    /// Bytes `offset..offset + len` of the local file.
    Upload { offset: u64, len: u64 },
    /// Bytes `src_offset..src_offset + len` of the object being replaced,
    /// which must equal the file's bytes at `new_offset`.
    Copy {
        src_offset: u64,
        new_offset: u64,
        len: u64,
    },
}

pub(super) struct Assembly<'a> {
    pub id: usize,
    pub dst: &'a dyn ObjectStore,
    pub upload: &'a StagedUpload,
    /// What the object carries once committed.
    pub meta: &'a ObjectMeta,
    pub file: &'a Path,
    pub ctx: &'a ItemContext,
    /// The object copied ranges come from, pinned to the version seen.
    pub base: Option<CopySource<'a>>,
    /// What the key must still hold when the upload completes.
    pub expect: Expect<'a>,
    /// Block size to sign uploaded parts with (whole uploads: parts are block
    /// aligned and read into memory once, for the sidecar and the upload).
    pub sign_block_size: Option<u32>,
    /// Where completed parts are recorded for a later run to resume from.
    pub journal: Option<&'a Journal>,
}

/// What the parts came to.
#[derive(Default)]
pub(super) struct Assembled {
    pub parts: Vec<StagedPart>,
    pub signed: Vec<SignedBlocks>,
    pub uploaded: u64,
    pub copied: u64,
    /// Bytes copied server-side that the store could not check against the
    /// file's (it reports no checksum for them).
    pub copied_unchecked: u64,
}

/// A file range as read for a part.
struct RangeRead {
    /// Its MD5, for stores that check bodies and copies by it.
    md5: Option<[u8; 16]>,
    /// Its CRC64NVME, for stores that check bodies by it.
    crc64nvme: Option<u64>,
    /// Its CRC32C, for stores that check copies by it.
    crc32c: Option<u32>,
    /// Its blake3, when a journal records it.
    blake3: Option<blake3::Hash>,
    /// Its blocks' signatures, when the upload leaves a sidecar.
    signed: Option<SignedBlocks>,
    /// The file's range mapped, when kept for the request.
    map: Option<Arc<MappedFile>>,
}

/// Bytes of a mapped range hashed before their pages are given back: the
/// process holds this much of a part at a time, not the part.
const HASH_WINDOW: usize = 1 << 20;

/// Reads `len` bytes at `offset`, hashing them as they pass (MD5, CRC64NVME,
/// blake3 and CRC32C, those asked for) and signing their blocks of `sign`
/// bytes if asked, keeping the range if asked. A kept range is a memory map
/// of the file, sent from the page cache as it is: no buffer to zero and
/// fill, no copy. Its pages are given back window by window as they are
/// hashed, and piece by piece as they are sent (a cut-short file reads as
/// zeros there and is reported).
fn read_range(
    path: &Path,
    offset: u64,
    len: u64,
    keep: bool,
    want: WantedSums,
    sign: Option<u32>,
) -> Result<RangeRead, StorageError> {
    let file = std::fs::File::open(path).map_err(|e| StorageError::io("cannot open", path, e))?;
    let read_err = |e| StorageError::io("cannot read", path, e);
    let mut sums = RangeHasher::new(want);
    if keep && len > 0 {
        let map = crate::storage::local::map_range(&file, offset, len).map_err(read_err)?;
        // Windows of whole blocks, so each is signed on its own.
        let window = sign.map_or(HASH_WINDOW, |block| {
            let block = block as usize;
            block * HASH_WINDOW.div_ceil(block)
        });
        let mut runs = Vec::new();
        for at in (0..map.len()).step_by(window) {
            let bytes = &map[at..map.len().min(at + window)];
            sums.update(bytes);
            if let Some(block) = sign {
                runs.push(sign_blocks(bytes, offset + at as u64, block));
            }
            map.release(at, bytes.len());
        }
        if map.faulted() {
            return Err(read_err(crate::mapguard::ChangedWhileRead::io()));
        }
        return Ok(sums.finish(
            sign.map(|_| SignedBlocks::concat(runs)),
            Some(Arc::new(map)),
        ));
    }
    let mut buffer = vec![0u8; (1 << 20).min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = buffer.len().min((len - done) as usize);
        file.read_exact_at(&mut buffer[..n], offset + done)
            .map_err(read_err)?;
        sums.update(&buffer[..n]);
        done += n as u64;
    }
    Ok(sums.finish(None, None))
}

/// The sums a read asked for, fed the bytes as they pass.
struct RangeHasher {
    md5: Option<md5::Md5>,
    blake3: Option<blake3::Hasher>,
    crc32c: Option<u32>,
    crc64nvme: Option<crc_fast::Digest>,
}

impl RangeHasher {
    fn new(want: WantedSums) -> RangeHasher {
        use md5::Digest;
        RangeHasher {
            md5: want.md5.then(md5::Md5::new),
            blake3: want.blake3.then(blake3::Hasher::new),
            crc32c: want.crc32c.then_some(0),
            crc64nvme: want
                .crc64nvme
                .then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme)),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        use md5::Digest;
        let RangeHasher {
            md5,
            blake3,
            crc32c,
            crc64nvme,
        } = self;
        let with_blake3 = blake3.is_some();
        let mut rest = || {
            if let Some(tree) = blake3 {
                tree.update(bytes);
            }
            if let Some(crc) = crc32c {
                *crc = crc32c::crc32c_append(*crc, bytes);
            }
            if let Some(crc) = crc64nvme {
                crc.update(bytes);
            }
        };
        match md5 {
            // MD5 (the slowest, one core at most) beside the blake3.
            Some(md5) if with_blake3 => {
                rayon::join(|| md5.update(bytes), rest);
            }
            Some(md5) => {
                md5.update(bytes);
                rest();
            }
            None => rest(),
        }
    }

    fn finish(self, signed: Option<SignedBlocks>, map: Option<Arc<MappedFile>>) -> RangeRead {
        use md5::Digest;
        RangeRead {
            md5: self.md5.map(|h| h.finalize().into()),
            crc64nvme: self.crc64nvme.map(|d| d.finalize()),
            crc32c: self.crc32c,
            blake3: self.blake3.map(|t| t.finalize()),
            signed,
            map,
        }
    }
}

/// Which checksums a read computes.
#[derive(Clone, Copy, Default)]
struct WantedSums {
    md5: bool,
    crc64nvme: bool,
    blake3: bool,
    crc32c: bool,
}

impl WantedSums {
    fn any(self) -> bool {
        self.md5 || self.crc64nvme || self.blake3 || self.crc32c
    }
}

/// Runs a blocking read of the local file for a part; a file that ends
/// before the part does was cut meanwhile.
async fn read_part<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ItemError> {
    crate::storage::run_blocking(read)
        .await
        .map_err(ItemError::of_read)
}

enum PartDone {
    Uploaded(StagedPart, Option<SignedBlocks>),
    Copied(StagedPart),
}

impl Assembly<'_> {
    /// Uploads or copies the numbered parts, and adds those an earlier run
    /// uploaded (`resumed`) to the result.
    pub async fn run(
        &self,
        numbered: Vec<(u32, PartSpec)>,
        resumed: Vec<ResumedPart>,
    ) -> Result<Assembled, ItemError> {
        // Ctrl+C drops the parts in flight (an upload is left to resume, not
        // completed: a large file must not hold the interrupt for minutes).
        let parts = stream::iter(numbered)
            .map(|(number, spec)| self.part(number, spec))
            .buffer_unordered(self.ctx.parallel_requests())
            .try_collect::<Vec<PartDone>>();
        let done = tokio::select! {
            done = parts => done?,
            () = self.ctx.cancel.cancelled() => return Err(ItemError::Cancelled),
        };
        let mut assembled = Assembled::default();
        for earlier in resumed {
            assembled.signed.extend(earlier.signed);
            assembled.parts.push(earlier.part);
        }
        for part in done {
            match part {
                PartDone::Uploaded(part, signed) => {
                    assembled.uploaded += part.size;
                    assembled.signed.extend(signed);
                    assembled.parts.push(part);
                }
                PartDone::Copied(part) => {
                    assembled.copied += part.size;
                    if part.md5.is_none() {
                        assembled.copied_unchecked += part.size;
                    }
                    assembled.parts.push(part);
                }
            }
        }
        assembled.parts.sort_by_key(|part| part.number);
        Ok(assembled)
    }

    async fn part(&self, number: u32, spec: PartSpec) -> Result<PartDone, ItemError> {
        let _slot = self.ctx.request_slot().await?;
        let (dst, upload) = (self.dst, self.upload);
        match spec {
            PartSpec::Upload { offset, len } => {
                let path = self.file.to_path_buf();
                let sign = self.sign_block_size;
                let journaled = self.journal.is_some();
                // Parts of ordinary size are read once, into memory, for their
                // hashes and the request alike; only a huge one (a delta's long
                // run of new bytes) is hashed first and streamed from disk after.
                let keep = sign.is_some() || len <= KEEP_IN_MEMORY;
                let body_checksum = dst.limits().body_checksum;
                let want = WantedSums {
                    md5: body_checksum == Some(ChecksumKind::Md5),
                    crc64nvme: body_checksum == Some(ChecksumKind::Crc64Nvme),
                    // The journal keeps a signed part's blocks' digest, which
                    // comes with the signature; the bytes' own blake3 only
                    // where there is none, or the store checks a resumed part
                    // by it (an SSH server's b3sum of the range).
                    blake3: journaled && (sign.is_none() || dst.need_staged()?.resumes_by_blake3()),
                    crc32c: body_checksum == Some(ChecksumKind::Crc32c),
                };
                let hashing = self.ctx.hashing_slot().await?;
                let mut read =
                    read_part(move || read_range(&path, offset, len, keep, want, sign)).await?;
                drop(hashing);
                let signed = read.signed.take();
                let md5 = read.md5;
                let sums = BodySums {
                    md5,
                    crc64nvme: read.crc64nvme,
                    crc32c: read.crc32c,
                };
                let source = match &read.map {
                    Some(map) => BodySource::Mapped(map),
                    None => BodySource::File {
                        path: self.file,
                        offset,
                    },
                };
                let part = dst
                    .need_staged()?
                    .stage_bytes(upload, number, offset, source, len, sums)
                    .await?;
                // The store's MD5 of what it received (where it says) must be
                // ours of what we read: otherwise the file changed in between,
                // or bytes were lost.
                if part
                    .md5
                    .is_some_and(|theirs| md5.is_some_and(|ours| theirs != ours))
                {
                    return Err(ItemError::SourceChanged {
                        what: "while its part was uploaded",
                    });
                }
                if let Some(journal) = self.journal {
                    let digest = match (read.blake3, &signed) {
                        (Some(bytes), _) => Some((bytes, PartDigest::Bytes)),
                        (None, Some(signed)) => Some((signed.digest(), PartDigest::Blocks)),
                        (None, None) => None,
                    };
                    if let Some((hash, digest)) = digest {
                        journal.record(crate::resume::DonePart {
                            number,
                            offset,
                            len,
                            etag: part.tag.clone(),
                            blake3: hash.to_hex().to_string(),
                            digest,
                        });
                    }
                }
                self.ctx.advanced(self.id, len).await;
                Ok(PartDone::Uploaded(part, signed))
            }
            PartSpec::Copy {
                src_offset,
                new_offset,
                len,
            } => {
                let base = self.base.ok_or(ItemError::Incomplete {
                    side: "object to copy from",
                })?;
                // What the copied range must hold is the file's own bytes
                // there: the store checks the copy against their MD5, so a
                // sidecar that lies about the object cannot make it. A store
                // that checks nothing (`RebuildCheck::SizeOnly`, which the
                // plan states) is spared the read.
                let path = self.file.to_path_buf();
                let limits = dst.limits();
                let want = WantedSums {
                    md5: limits.checks(ChecksumKind::Md5),
                    crc64nvme: false,
                    blake3: false,
                    crc32c: limits.checks(ChecksumKind::Crc32c),
                };
                let (expected_md5, expected_crc32c) = if want.any() {
                    let read =
                        read_part(move || read_range(&path, new_offset, len, false, want, None))
                            .await?;
                    (read.md5, read.crc32c)
                } else {
                    (None, None)
                };
                let range = CopyRange {
                    start: src_offset,
                    len,
                    expected_md5,
                    expected_crc32c,
                };
                match dst
                    .need_staged_copies()?
                    .stage_copy(upload, number, new_offset, base, range)
                    .await
                {
                    Ok(part) => Ok(PartDone::Copied(part)),
                    Err(StorageError::Remote {
                        kind: RemoteErrorKind::ChecksumMismatch,
                        message,
                        ..
                    }) => Err(ItemError::CopiedRangeMismatch {
                        detail: format!(
                            "the object's bytes {src_offset}..{} are not the file's at {new_offset} ({message})",
                            src_offset + len
                        ),
                    }),
                    Err(other) => Err(other.into()),
                }
            }
        }
    }

    /// Commits the object after the last checks, and verifies the result:
    /// an object that fails is removed. Returns the new version.
    pub async fn complete(&self, assembled: &Assembled, size: u64) -> Result<String, ItemError> {
        self.complete_with(assembled, size, self.meta).await
    }

    /// [`Assembly::complete`] with the metadata the commit gives the object
    /// (on stores that take it then: Azure's block list, GCS's compose), as
    /// when the file's blake3 is known only once every part is read.
    pub async fn complete_with(
        &self,
        assembled: &Assembled,
        size: u64,
        meta: &ObjectMeta,
    ) -> Result<String, ItemError> {
        let key = &self.upload.key;
        recheck(self.dst, key, self.expect).await?;
        let result = self
            .dst
            .need_staged()?
            .commit_staged(self.upload, &assembled.parts, meta, self.expect)
            .await;
        let version = settle_write(self.dst, key, result).await?;
        let head = self.dst.head(key).await?;
        if head.as_ref().is_none_or(|h| h.size != size) {
            let found = head.map_or("no object".into(), |h| format!("{} bytes", h.size));
            let result = Err(StorageError::Verification {
                target: self.dst.url_of(key),
                message: format!("the committed object holds {found}, expected {size} bytes"),
            });
            return settle_write(self.dst, key, result).await;
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_range_is_summed_and_signed_window_by_window_as_it_would_be_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..7_000_000u32).map(|i| (i ^ (i >> 11)) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let block = 64 * 1024;
        let (offset, len) = (2 * u64::from(block), 6_000_000);
        let range = &bytes[offset as usize..(offset + len) as usize];
        let want = WantedSums {
            md5: true,
            crc64nvme: true,
            blake3: true,
            crc32c: true,
        };
        let kept = read_range(&path, offset, len, true, want, Some(block)).unwrap();
        assert_eq!(kept.md5, Some(crate::storage::body::md5_of(range)));
        assert_eq!(
            kept.crc64nvme,
            Some(crate::storage::body::crc64nvme_of(range))
        );
        assert_eq!(kept.crc32c, Some(crc32c::crc32c(range)));
        assert_eq!(kept.blake3, Some(blake3::hash(range)));
        assert_eq!(
            kept.signed.unwrap().digest(),
            sign_blocks(range, offset, block).digest()
        );
        assert_eq!(&kept.map.unwrap()[..], range);
        // Streamed from the file (no map kept), the sums are the same.
        let streamed = read_range(&path, offset, len, false, want, None).unwrap();
        assert_eq!(
            (
                streamed.md5,
                streamed.crc64nvme,
                streamed.crc32c,
                streamed.blake3
            ),
            (
                Some(crate::storage::body::md5_of(range)),
                kept.crc64nvme,
                kept.crc32c,
                kept.blake3
            )
        );
        assert!(streamed.map.is_none() && streamed.signed.is_none());
    }
}
