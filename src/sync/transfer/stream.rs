//! Large uploads to a store that takes them as one resumable stream (GCS
//! resumable uploads, when composite uploads are off): pieces of 16 MiB sent
//! front to back, each journaled once the store holds it, so a killed run's
//! successor goes on from where the store stands. The whole file's MD5 and
//! CRC32C go with the last piece, and the object made is checked against
//! them — bytes held from an earlier run included.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use md5::Digest;

use crate::resume::{DonePart, PartDigest, ResumeStore, STATE_VERSION, UploadState, UploadTarget};
use crate::signature::{Signature, signature_of_file};
use crate::storage::body::BodySource;
use crate::storage::object::{StreamAck, StreamEnd, StreamUpload};
use crate::storage::{ObjectStore, RemoteErrorKind, StorageError};

use super::delta_upload::Target;
use super::local::SourceFile;
use super::{ItemError, Outcome, expect_of, recheck, settle_write};
use crate::sync::sidecar;

/// Bytes per piece: a multiple of 256 KiB, as GCS requires of all but the
/// last; held in memory one at a time.
pub(super) const PIECE: u64 = 16 * 1024 * 1024;

/// The file's MD5 and CRC32C, taken over its bytes in order.
#[derive(Clone)]
struct WholeHash {
    md5: md5::Md5,
    crc32c: u32,
    /// Bytes hashed so far: the file's first `upto`.
    upto: u64,
}

impl WholeHash {
    fn new() -> Self {
        WholeHash {
            md5: md5::Md5::new(),
            crc32c: 0,
            upto: 0,
        }
    }

    /// Hashes the part of `bytes` (the file's from `offset`) not hashed yet.
    fn take(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset + bytes.len() as u64;
        if end <= self.upto || offset > self.upto {
            return;
        }
        let fresh = &bytes[(self.upto - offset) as usize..];
        self.md5.update(fresh);
        self.crc32c = crc32c::crc32c_append(self.crc32c, fresh);
        self.upto = end;
    }

    fn end(self, size: u64) -> StreamEnd {
        StreamEnd {
            size,
            md5: self.md5.finalize().into(),
            crc32c: self.crc32c,
        }
    }
}

/// Reads `len` bytes of the file at `offset`.
fn read_at(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
    let file = std::fs::File::open(path).map_err(|e| StorageError::io("cannot open", path, e))?;
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|e| StorageError::io("cannot read", path, e))?;
    Ok(bytes)
}

async fn read_piece(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, ItemError> {
    let path = path.to_path_buf();
    crate::storage::run_blocking(move || read_at(&path, offset, len))
        .await
        .map_err(ItemError::of_read)
}

/// The session and its journal: where the stream stands, kept on disk after
/// every piece the store acknowledged.
struct Session {
    upload: StreamUpload,
    /// Bytes the store was last heard to hold.
    held: u64,
    journal: Option<(ResumeStore, Mutex<UploadState>)>,
}

impl Session {
    fn record(&mut self, offset: u64, bytes: &[u8]) {
        let Some((store, state)) = &self.journal else {
            return;
        };
        let Ok(mut state) = state.lock() else {
            return;
        };
        let number = state.parts.len() as u32 + 1;
        state.parts.push(DonePart {
            number,
            offset,
            len: bytes.len() as u64,
            etag: String::new(),
            blake3: blake3::hash(bytes).to_hex().to_string(),
            digest: PartDigest::Bytes,
        });
        if let Err(e) = store.save(&state) {
            tracing::warn!("{e}");
        }
    }

    fn forget(&self) {
        if let Some((store, state)) = &self.journal
            && let Ok(state) = state.lock()
        {
            store.remove(&state.target);
        }
    }
}

/// Uploads the file as one stream (resuming the one an earlier run left);
/// with `sign`, writes its signature sidecar too.
pub(super) async fn upload_streamed(
    t: &Target<'_>,
    source: &SourceFile<'_>,
    sign: bool,
) -> Result<Outcome, ItemError> {
    let size = t.planned.size;
    let dst = t.dst.as_ref();
    // The signature comes from a read of its own, alongside the stream.
    let signing = sign.then(|| {
        let path = source.path.clone();
        let block = t.ctx.block_size;
        tokio::task::spawn_blocking(move || signature_of_file(&path, block))
    });
    let mut session = open_session(t, &source.path).await?;
    let resumed_from = session.held;
    let result = send_rest(t, source, &mut session).await;
    let version = match result {
        Ok(version) => version,
        Err(error) => {
            if !(error.is_interruption() && session.journal.is_some()) {
                if let Some(streams) = dst.streams() {
                    let _ = streams.abort_stream(&session.upload).await;
                }
                session.forget();
            }
            return Err(error);
        }
    };
    session.forget();
    if let Some(signing) = signing {
        let signature: Signature = signing
            .await
            .map_err(|e| StorageError::Task {
                location: "signature".into(),
                reason: e.to_string(),
            })?
            .map_err(|e| StorageError::io("cannot read", &source.path, e))?;
        source.check("while it was uploaded")?;
        sidecar::store(dst, &t.item.path, &signature, &version).await?;
    }
    Ok(Outcome::sent(size - resumed_from, 0))
}

/// The stream an earlier run left for this file, where the store still has
/// it and the file is as it was; otherwise a new one.
async fn open_session(t: &Target<'_>, path: &Path) -> Result<Session, ItemError> {
    let dst = t.dst.as_ref();
    let Some(store) = t.ctx.resume.clone() else {
        let upload = dst
            .need_streams()?
            .begin_stream(t.key, t.meta, expect_of(t.item))
            .await?;
        return Ok(Session {
            upload,
            held: 0,
            journal: None,
        });
    };
    let id = dst.id();
    let target = UploadTarget {
        scheme: dst.scheme().to_string(),
        endpoint: id.endpoint,
        bucket: id.bucket,
        key: t.key.to_string(),
        source: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    };
    if let Ok(Some(state)) = store.load(&target)
        && state.size == t.planned.size
        && state.mtime_ns == t.planned.mtime_ns
        && state.part_size == PIECE
        && state.block_size.is_none()
    {
        let upload = StreamUpload {
            key: t.key.to_string(),
            session: state.upload_id.clone(),
        };
        if let Some(held) = still_held(dst, &upload, &state, path).await? {
            tracing::info!(
                "{}: resuming the upload: {} of {} are on the server already",
                dst.url_of(t.key),
                crate::format::bytes(held),
                crate::format::bytes(state.size)
            );
            let mut state = state;
            state.parts.retain(|p| p.offset + p.len <= held);
            return Ok(Session {
                upload,
                held,
                journal: Some((store, Mutex::new(state))),
            });
        }
        if let Some(streams) = dst.streams() {
            let _ = streams.abort_stream(&upload).await;
        }
        store.remove(&target);
    }
    let upload = dst
        .need_streams()?
        .begin_stream(t.key, t.meta, expect_of(t.item))
        .await?;
    let state = UploadState {
        version: STATE_VERSION,
        target,
        upload_id: upload.session.clone(),
        size: t.planned.size,
        mtime_ns: t.planned.mtime_ns,
        part_size: PIECE,
        block_size: None,
        parts: Vec::new(),
        started_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
    };
    if let Err(e) = store.save(&state) {
        tracing::warn!("{e}");
    }
    Ok(Session {
        upload,
        held: 0,
        journal: Some((store, Mutex::new(state))),
    })
}

/// How much of the file the store holds for the recorded stream, when the
/// journaled pieces still hash the same in the file; `None` when the stream
/// or the file moved on.
async fn still_held(
    dst: &dyn ObjectStore,
    upload: &StreamUpload,
    state: &UploadState,
    path: &Path,
) -> Result<Option<u64>, ItemError> {
    let mut recorded = 0;
    for part in &state.parts {
        if part.offset != recorded {
            break;
        }
        recorded += part.len;
    }
    let held = match dst.need_streams()?.stream_persisted(upload, recorded).await {
        Ok(held) => held,
        Err(StorageError::Remote {
            kind: RemoteErrorKind::NotFound,
            ..
        }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if held > state.size {
        return Ok(None);
    }
    // The bytes the store holds were read from the file as it was: those
    // journaled must hash the same now (the object's checksums at the end
    // cover the rest).
    let parts: Vec<DonePart> = state
        .parts
        .iter()
        .filter(|p| p.offset + p.len <= held)
        .cloned()
        .collect();
    let path: PathBuf = path.to_path_buf();
    let same = crate::storage::run_blocking(move || {
        for part in parts {
            let bytes = read_at(&path, part.offset, part.len)?;
            if part.digest != PartDigest::Bytes
                || blake3::hash(&bytes).to_hex().as_str() != part.blake3
            {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    Ok(same.then_some(held))
}

/// A piece read from the file, and the whole-file hash taken up to its end.
struct ReadPiece {
    offset: u64,
    bytes: bytes::Bytes,
    hash: WholeHash,
}

/// Reads the piece at `offset` and hashes what of it is new to `hash`, off
/// the async threads (the next piece is read and hashed while one is sent).
fn read_ahead(
    path: &Path,
    offset: u64,
    size: u64,
    mut hash: WholeHash,
) -> tokio::task::JoinHandle<Result<ReadPiece, ItemError>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let len = PIECE.min(size - offset);
        let bytes = read_at(&path, offset, len).map_err(ItemError::of_read)?;
        hash.take(offset, &bytes);
        Ok(ReadPiece {
            offset,
            bytes: bytes.into(),
            hash,
        })
    })
}

async fn joined(
    task: tokio::task::JoinHandle<Result<ReadPiece, ItemError>>,
) -> Result<ReadPiece, ItemError> {
    task.await.map_err(|e| {
        ItemError::Storage(StorageError::Task {
            location: "upload".into(),
            reason: e.to_string(),
        })
    })?
}

/// Sends the file from where the store stands to its end, going on from the
/// store's answer after each failure (within the retry policy). Returns the
/// object's version.
async fn send_rest(
    t: &Target<'_>,
    source: &SourceFile<'_>,
    session: &mut Session,
) -> Result<String, ItemError> {
    let dst = t.dst.as_ref();
    let size = t.planned.size;
    let path = source.path.as_path();
    // The bytes held already are hashed from the file, not sent.
    let mut hash = WholeHash::new();
    let mut at = 0;
    while at < session.held {
        let len = PIECE.min(session.held - at);
        let bytes = read_piece(path, at, len).await?;
        hash.take(at, &bytes);
        at += len;
    }
    let policy = dst.retry().clone();
    let mut failures = 0;
    let mut ahead = read_ahead(path, session.held, size, hash);
    loop {
        let piece = joined(ahead).await?;
        let (offset, len) = (piece.offset, piece.bytes.len() as u64);
        let last = offset + len == size;
        let end = if last {
            // Checked before the object is made: a file that changed under
            // the upload never becomes it.
            source.check("while it was uploaded")?;
            recheck(dst, t.key, expect_of(t.item)).await?;
            Some(piece.hash.clone().end(size))
        } else {
            None
        };
        // The next piece is read while this one goes.
        let next_offset = offset + len;
        ahead = read_ahead(path, next_offset.min(size), size, piece.hash.clone());
        let body = BodySource::Memory(&piece.bytes);
        let sent = tokio::select! {
            sent = dst.need_streams()?.stream_bytes(&session.upload, offset, body, len, end.as_ref()) => sent,
            () = t.ctx.cancel.cancelled() => return Err(ItemError::Cancelled),
        };
        match sent {
            Ok(StreamAck::Done(version)) => {
                t.ctx.advanced(t.id, len).await;
                return Ok(version);
            }
            Ok(StreamAck::Persisted(held)) if held > offset && held <= next_offset => {
                session.record(offset, &piece.bytes[..(held - offset) as usize]);
                session.held = held;
                t.ctx.advanced(t.id, held - offset).await;
                failures = 0;
                if held < next_offset {
                    // Part of the piece was kept: the rest goes again.
                    ahead.abort();
                    ahead = read_ahead(path, held, size, piece.hash);
                }
            }
            Ok(StreamAck::Persisted(held)) => {
                return Err(StorageError::Transfer {
                    target: dst.url_of(t.key),
                    message: format!(
                        "the service holds {held} bytes after a piece of {offset}..{next_offset}"
                    ),
                }
                .into());
            }
            Err(e) if e.is_retryable() && failures < policy.retries => {
                let delay = policy.delay(failures);
                failures += 1;
                tracing::info!(
                    "{e}; retry {failures} of {} in {} ms",
                    policy.retries,
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
                let held = dst
                    .need_streams()?
                    .stream_persisted(&session.upload, session.held)
                    .await?;
                if held < session.held || held > size {
                    return Err(StorageError::Transfer {
                        target: dst.url_of(t.key),
                        message: format!(
                            "the service holds {held} bytes of the stream, {} were acknowledged",
                            session.held
                        ),
                    }
                    .into());
                }
                session.held = held;
                // Whatever was read ahead, the stream goes on from `held`
                // (the hash has every byte before it already).
                ahead.abort();
                ahead = read_ahead(path, held, size, piece.hash);
            }
            Err(e) => {
                ahead.abort();
                let result: Result<String, StorageError> = Err(e);
                return settle_write(dst, t.key, result).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_hash_takes_each_byte_once_in_order() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let mut hash = WholeHash::new();
        hash.take(0, &data[..3000]);
        // A piece sent again overlaps what was hashed.
        hash.take(2000, &data[2000..5000]);
        hash.take(1000, &data[1000..2000]);
        let end = hash.end(5000);
        assert_eq!(end.md5, crate::storage::body::md5_of(&data));
        assert_eq!(end.crc32c, crc32c::crc32c(&data));
    }
}
