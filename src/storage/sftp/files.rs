//! Files on the server: reads and writes as many pipelined requests at their
//! offsets (one SFTP request moves at most a few hundred KiB, so one at a
//! time would leave the link idle for a round trip each), server-side range
//! copies, and the translation of attributes and errors.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt, TryStreamExt};
use openssh_sftp_client::Error as SftpError;
use openssh_sftp_client::file::File;
use openssh_sftp_client::metadata::{MetaData, MetaDataBuilder, Permissions};
use tokio::io::AsyncSeekExt;

use super::{REQUEST_BYTES, SftpStorage};
use crate::storage::body::BodySource;
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{ByteStream, ObjectHead, ObjectStore, same_version};
use crate::storage::{RemoteErrorKind, StorageError};
use crate::types::RelPath;

/// Requests of one transfer in flight at once (each up to the server's
/// largest write or read, 255 KiB for OpenSSH).
const IN_FLIGHT: usize = 32;

pub(super) fn is_not_found(e: &SftpError) -> bool {
    use openssh_sftp_client::error::SftpErrorKind;
    matches!(e, SftpError::SftpError(SftpErrorKind::NoSuchFile, _))
}

/// What SFTP's generic status becomes in a message: the protocol (version
/// 3) has no code for a full disk and most other causes, and OpenSSH's
/// server sends this one for them all. [`super::SftpStorage`] looks for the
/// cause where it can (the free space, for writes).
pub(super) const GENERIC_FAILURE: &str =
    "the server reported a failure without a cause (SFTP's generic status)";

/// An SFTP failure as the store's error, its kind told from the status. A
/// refused permission is the server's file system's (a mode, an owner, an
/// immutable directory), not a login's: it fails the item, never asks for
/// credentials.
pub(super) fn storage_error(op: &'static str, target: &str, e: SftpError) -> StorageError {
    use openssh_sftp_client::error::SftpErrorKind;
    let kind = match &e {
        SftpError::SftpError(SftpErrorKind::NoSuchFile, _) => RemoteErrorKind::NotFound,
        SftpError::SftpError(..) => RemoteErrorKind::Rejected,
        // A request that could not be written (a link target that is not
        // UTF-8): refused here, the session is fine.
        SftpError::FormatError(_) => RemoteErrorKind::Rejected,
        // The session itself failed (the connection dropped): nothing more
        // can go over it this run.
        _ => RemoteErrorKind::Network,
    };
    let message = match &e {
        SftpError::SftpError(SftpErrorKind::PermDenied, _) => {
            "permission denied by the server's file system (check the mode and owner of the file and of its directory there)".to_string()
        }
        SftpError::SftpError(SftpErrorKind::Failure, _) => GENERIC_FAILURE.to_string(),
        SftpError::SftpError(code, message) => {
            let (text, _) = message.get();
            format!("{text} ({code:?})")
        }
        other => other.to_string(),
    };
    StorageError::Remote {
        op,
        hints: &super::HINTS,
        kind,
        target: target.to_string(),
        message,
    }
}

/// A link target as the manifest keeps it (bytes).
pub(super) fn rel_of_path(path: &Path) -> RelPath {
    RelPath::from_bytes(path.as_os_str().as_bytes())
}

pub(super) fn path_of_rel(rel: &RelPath) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(rel.as_bytes()))
}

/// The version tag of a file: its size and mtime (what SFTP tells).
pub(super) fn version_of(size: u64, mtime_s: u32) -> String {
    format!("{size}:{mtime_s}")
}

/// What a stat says, as a HEAD would.
pub(super) fn head_of(meta: &MetaData, link_target: Option<RelPath>) -> ObjectHead {
    let size = meta.len().unwrap_or(0);
    let mtime_s = meta.modified().map_or(0, |t| t.into_raw());
    let mtime_ns = i64::from(mtime_s) * 1_000_000_000;
    let is_link = link_target.is_some();
    ObjectHead {
        size: if is_link { 0 } else { size },
        mtime_ns,
        version: Some(version_of(size, mtime_s)),
        meta: ObjectMeta {
            mtime_ns: Some(mtime_ns),
            mode: meta.permissions().map(|p| p.as_raw().bits() & 0o7777),
            uid: meta.uid(),
            gid: meta.gid(),
            link_target,
            blake3: None,
        },
        sums: Default::default(),
    }
}

/// The mtime a written file gets, in whole seconds (SFTP v3's unit).
pub(super) fn mtime_seconds(meta: &ObjectMeta) -> Option<u32> {
    meta.mtime_ns
        .map(|ns| u32::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0))
}

/// The attributes a written file gets: its mtime (to the second: SFTP v3
/// carries no finer time) and, with `-a`, its mode.
pub(super) fn attrs_of(meta: &ObjectMeta) -> MetaData {
    let mut builder = MetaDataBuilder::new();
    if let Some(seconds) = mtime_seconds(meta)
        && let Some(time) = openssh_sftp_client::UnixTimeStamp::from_raw(seconds)
    {
        builder.time(time, time);
    }
    if let Some(mode) = meta.mode {
        builder.permissions(Permissions::from((mode & 0o7777) as u16));
    }
    builder.create()
}

/// A new temp file, open for writing (never an existing file).
pub(super) async fn create(store: &SftpStorage, key: &str) -> Result<File, StorageError> {
    store
        .session()
        .await?
        .sftp
        .options()
        .write(true)
        .create_new(true)
        .open(store.path_of(key))
        .await
        .map_err(|e| store.error("cannot create", key, e))
}

/// An existing temp file, open for writing in place.
pub(super) async fn open_write(store: &SftpStorage, key: &str) -> Result<File, StorageError> {
    store
        .session()
        .await?
        .sftp
        .options()
        .write(true)
        .open(store.path_of(key))
        .await
        .map_err(|e| store.error("cannot open", key, e))
}

/// Flushes a written file to the server's disk (`fsync@openssh.com`, where
/// the server has it, unless `--no-fsync`) and closes it; with `attrs`, its
/// mode and mtime are set on the open handle first. The attributes and the
/// flush go out together: one round trip for both.
pub(super) async fn flush(
    store: &SftpStorage,
    file: File,
    key: &str,
    attrs: Option<MetaData>,
) -> Result<(), StorageError> {
    let set = async {
        match attrs {
            Some(attrs) => file
                .clone()
                .set_metadata(attrs)
                .await
                .map_err(|e| store.error("cannot set the mode and time of", key, e)),
            None => Ok(()),
        }
    };
    let sync = async {
        if store.fsync && store.fsyncs {
            file.clone()
                .sync_all()
                .await
                .map_err(|e| store.error("cannot flush", key, e))
        } else {
            Ok(())
        }
    };
    futures::try_join!(set, sync)?;
    file.close()
        .await
        .map_err(|e| store.error("cannot close", key, e))
}

/// Writes `len` bytes of `body` at `at` in `file`: pieces read in order, cut
/// to the server's largest write, and written by up to [`IN_FLIGHT`]
/// requests at their offsets (the bytes are not copied on the way).
pub(super) async fn write_body(
    store: &SftpStorage,
    file: &File,
    key: &str,
    at: u64,
    body: BodySource<'_>,
    len: u64,
) -> Result<(), StorageError> {
    if len == 0 {
        return Ok(());
    }
    let activity = std::sync::Arc::new(crate::retry::Activity::default());
    let pieces = body.open(len, &activity).await?.into_pieces();
    let most = REQUEST_BYTES as usize;
    let mut offset = at;
    let target = store.url_of(key);
    let writes = pieces
        .map_err(|e| StorageError::io("cannot read", PathBuf::from(&target), e))
        .map_ok(move |piece: Bytes| {
            let cuts: Vec<(u64, Bytes)> = (0..piece.len())
                .step_by(most)
                .map(|from| {
                    let cut = piece.slice(from..piece.len().min(from + most));
                    (offset + from as u64, cut)
                })
                .collect();
            offset += piece.len() as u64;
            stream::iter(cuts.into_iter().map(Ok::<_, StorageError>))
        })
        .try_flatten();
    let written: u64 = writes
        .map_ok(|(start, cut)| {
            let mut handle = file.clone();
            async move {
                handle
                    .seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|e| store.error("cannot write", key, SftpError::IOError(e)))?;
                let n = cut.len() as u64;
                handle
                    .write_all_zero_copy(&mut [cut])
                    .await
                    .map_err(|e| store.error("cannot write", key, e))?;
                Ok::<u64, StorageError>(n)
            }
        })
        .try_buffer_unordered(IN_FLIGHT)
        .try_fold(0, |sum, n| async move { Ok(sum + n) })
        .await?;
    if written != len {
        return Err(StorageError::Transfer {
            target,
            message: format!("{written} bytes written of {len}"),
        });
    }
    Ok(())
}

/// Copies `len` bytes from `from_start` of the file at `from` (pinned to
/// `version`) to `at` in `file`, server-side (`copy-data`).
pub(super) async fn copy_range(
    store: &SftpStorage,
    from: &str,
    version: Option<&str>,
    from_start: u64,
    file: &File,
    at: u64,
    len: u64,
) -> Result<(), StorageError> {
    let mut source = open_read_checked(store, from, version).await?;
    let Some(count) = std::num::NonZeroU64::new(len) else {
        return Ok(());
    };
    let mut dst = file.clone();
    source
        .seek(std::io::SeekFrom::Start(from_start))
        .await
        .map_err(|e| store.error("cannot copy from", from, SftpError::IOError(e)))?;
    dst.seek(std::io::SeekFrom::Start(at))
        .await
        .map_err(|e| store.error("cannot copy from", from, SftpError::IOError(e)))?;
    source
        .copy_to(&mut dst, count)
        .await
        .map_err(|e| store.error("cannot copy from", from, e))?;
    source
        .close()
        .await
        .map_err(|e| store.error("cannot close", from, e))
}

/// Opens a file for reading, failing with `PreconditionFailed` when it is
/// no longer the version given.
async fn open_read_checked(
    store: &SftpStorage,
    key: &str,
    version: Option<&str>,
) -> Result<File, StorageError> {
    let mut file = store
        .session()
        .await?
        .sftp
        .options()
        .read(true)
        .open(store.path_of(key))
        .await
        .map_err(|e| store.error("cannot open", key, e))?;
    if let Some(version) = version {
        let meta = file
            .metadata()
            .await
            .map_err(|e| store.error("cannot stat", key, e))?;
        let now = version_of(
            meta.len().unwrap_or(0),
            meta.modified().map_or(0, |t| t.into_raw()),
        );
        if !same_version(&now, version) {
            return Err(StorageError::Remote {
                op: "cannot read",
                hints: &super::HINTS,
                kind: RemoteErrorKind::PreconditionFailed,
                target: store.url_of(key),
                message: "the file changed since it was listed".into(),
            });
        }
    }
    Ok(file)
}

/// The bytes of a file (a range of it), read by up to [`IN_FLIGHT`]
/// requests at once and handed out in order.
pub(super) async fn read_stream(
    store: &SftpStorage,
    key: &str,
    range: Option<(u64, u64)>,
    version: Option<&str>,
) -> Result<ByteStream, StorageError> {
    let file = open_read_checked(store, key, version).await?;
    let (start, len) = match range {
        Some(range) => range,
        None => {
            let mut f = file.clone();
            let size = f
                .metadata()
                .await
                .map_err(|e| store.error("cannot stat", key, e))?
                .len()
                .unwrap_or(0);
            (0, size)
        }
    };
    let target = store.url_of(key);
    // One request per piece: the largest read.
    let piece = u64::from(REQUEST_BYTES);
    let pieces = (0..len.div_ceil(piece)).map(move |i| {
        let offset = start + i * piece;
        (offset, piece.min(start + len - offset))
    });
    let reads = stream::iter(pieces)
        .map(move |(offset, want)| {
            let mut handle = file.clone();
            let target = target.clone();
            async move { read_exact(&mut handle, offset, want, &target).await }
        })
        .buffered(IN_FLIGHT);
    Ok(reads.boxed())
}

/// Reads `want` bytes at `offset` (several requests if the server returns
/// fewer at once); a file that ends first is an error.
async fn read_exact(
    file: &mut File,
    offset: u64,
    want: u64,
    target: &str,
) -> Result<Bytes, StorageError> {
    let fail = |e: SftpError| storage_error("cannot read", target, e);
    let mut out = BytesMut::with_capacity(want as usize);
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| fail(SftpError::IOError(e)))?;
    while (out.len() as u64) < want {
        let left = (want - out.len() as u64).min(u64::from(u32::MAX)) as u32;
        match file.read(left, BytesMut::new()).await.map_err(fail)? {
            Some(bytes) if !bytes.is_empty() => {
                out.extend_from_slice(&bytes);
                file.seek(std::io::SeekFrom::Start(offset + out.len() as u64))
                    .await
                    .map_err(|e| fail(SftpError::IOError(e)))?;
            }
            _ => {
                return Err(StorageError::Transfer {
                    target: target.to_string(),
                    message: format!(
                        "the file ended at {} of {}",
                        offset + out.len() as u64,
                        offset + want
                    ),
                });
            }
        }
    }
    Ok(out.freeze())
}
