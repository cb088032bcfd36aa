//! Files cut across shards (`shard::Piece`): each shard sends its byte ranges
//! on its own, and `finalize` puts the file together under its name.
//!
//! On a local destination every piece is written at its offsets into one
//! shared temp file in the target's directory (`.hugesync-split-PLAN-ITEM.tmp`,
//! a temp name: never listed as a file); finalize checks its size, gives it
//! the file's metadata and renames it into place. On an object store each
//! piece is a temporary object below the destination's root
//! (`.hugesync-split/PLAN/ITEM/NUMBER`, never listed either), and finalize
//! makes the object from them server-side through the staged interface (S3
//! part copies, Azure blocks from URL, GCS compose), then removes them.
//! Nothing is visible under the file's name before finalize.

use crate::storage::body::BodySums;
use std::os::unix::fs::FileExt;

use super::plan::PlanItem;
use super::shard::Piece;
use super::transfer::ItemError;
use crate::storage::{Expect, ObjectMeta, ObjectStore, Storage, StorageError};
use crate::types::RelPath;

pub use crate::storage::objects::SPLIT_DIR;

/// Bytes a piece moves per read and write.
const CHUNK: u64 = 16 * 1024 * 1024;

/// The shared temp file of a cut file on a local destination.
pub fn local_temp(plan_id: &str, item_index: usize, item: &PlanItem) -> RelPath {
    let name = format!(
        "{}split-{plan_id}-{item_index}{}",
        crate::storage::local::TEMP_PREFIX,
        crate::storage::local::TEMP_SUFFIX
    );
    match item.path.parent() {
        Some(dir) => {
            let mut bytes = dir.as_bytes().to_vec();
            bytes.push(b'/');
            bytes.extend_from_slice(name.as_bytes());
            RelPath::from_bytes(&bytes)
        }
        None => RelPath::from_bytes(name.as_bytes()),
    }
}

/// The temporary object of one piece.
pub fn piece_key(store: &dyn ObjectStore, plan_id: &str, piece: &Piece) -> String {
    format!(
        "{}{SPLIT_DIR}{plan_id}/{}/{}",
        store.prefix(),
        piece.item,
        piece.number
    )
}

/// Sends one piece of a file.
pub async fn send_piece(
    item: &PlanItem,
    plan_id: &str,
    piece: Piece,
    source: &Storage,
    destination: &Storage,
    fsync: bool,
) -> Result<u64, ItemError> {
    let planned = item
        .src
        .as_ref()
        .ok_or(ItemError::Incomplete { side: "source" })?;
    let size = planned.size;
    match (source, destination) {
        (Storage::Local(src), Storage::Local(dst)) => {
            let (from, dst) = (src.path_of(&item.path), dst.clone());
            let temp = local_temp(plan_id, piece.item, item);
            crate::storage::run_blocking(move || {
                let file = open_unchanged(&from, size)?;
                dst.write_piece(&temp, size, fsync, |out| {
                    copy_range(
                        piece,
                        |at, buf| {
                            file.read_exact_at(buf, at)
                                .map_err(|e| StorageError::io("cannot read", &from, e))
                        },
                        out,
                    )
                })
            })
            .await?;
        }
        (Storage::Local(src), Storage::Object(dst)) => {
            let from = src.path_of(&item.path);
            // The store checks the body against the checksum its bodies
            // carry, as for every other upload.
            let kind = dst.limits().body_checksum;
            let sums = {
                let path = from.clone();
                crate::storage::run_blocking(move || {
                    let file = open_unchanged(&path, size)?;
                    match kind {
                        Some(_) => crate::storage::body::sums_of_range(
                            &file,
                            &path,
                            piece.start,
                            piece.len,
                            kind,
                        ),
                        None => Ok(BodySums::NONE),
                    }
                })
                .await?
            };
            let key = piece_key(dst.as_ref(), plan_id, &piece);
            dst.put(
                &key,
                crate::storage::body::BodySource::File {
                    path: &from,
                    offset: piece.start,
                },
                piece.len,
                &ObjectMeta::default(),
                sums,
                Expect::Any,
            )
            .await?;
        }
        (Storage::Object(src), Storage::Local(dst)) => {
            let key = src.key_of(&item.path);
            let temp = local_temp(plan_id, piece.item, item);
            let version = planned.etag().map(str::to_string);
            let mut at = piece.start;
            while at < piece.start + piece.len {
                let len = CHUNK.min(piece.start + piece.len - at);
                let bytes = crate::storage::objects::read_range(
                    src.as_ref(),
                    &key,
                    at,
                    len,
                    version.as_deref(),
                )
                .await?;
                let (dst, temp) = (dst.clone(), temp.clone());
                crate::storage::run_blocking(move || {
                    dst.write_piece(&temp, size, fsync, |out| {
                        out.write_all_at(&bytes, at).map_err(|e| {
                            StorageError::io("cannot write", "the shared temp file", e)
                        })
                    })
                })
                .await?;
                at += len;
            }
        }
        // `shard::assign` cuts no copy between stores (they are one
        // server-side request, or streamed whole).
        (Storage::Object(_), Storage::Object(_)) => {
            return Err(ItemError::Incomplete {
                side: "local (a file cut into pieces)",
            });
        }
    }
    Ok(piece.len)
}

/// Opens the source file, refusing one whose size is no longer the plan's.
fn open_unchanged(path: &std::path::Path, size: u64) -> Result<std::fs::File, StorageError> {
    let file = std::fs::File::open(path).map_err(|e| StorageError::io("cannot open", path, e))?;
    let now = file
        .metadata()
        .map_err(|e| StorageError::io("cannot stat", path, e))?
        .len();
    if now != size {
        return Err(StorageError::io(
            "the source changed since the plan:",
            path,
            std::io::Error::other(format!("{now} bytes where the plan has {size}")),
        ));
    }
    Ok(file)
}

/// Copies a piece's range chunk by chunk: `read(at, buf)` fills `buf` with the
/// bytes at `at`; they go to the same offsets of `out`.
fn copy_range(
    piece: Piece,
    read: impl Fn(u64, &mut [u8]) -> Result<(), StorageError>,
    out: &std::fs::File,
) -> Result<(), StorageError> {
    let mut buf = vec![0u8; CHUNK.min(piece.len.max(1)) as usize];
    let mut at = piece.start;
    let end = piece.start + piece.len;
    while at < end {
        let len = CHUNK.min(end - at) as usize;
        read(at, &mut buf[..len])?;
        out.write_all_at(&buf[..len], at)
            .map_err(|e| StorageError::io("cannot write", "the shared temp file", e))?;
        at += len as u64;
    }
    Ok(())
}

/// Puts a cut file together from all its pieces, under its name.
pub async fn assemble(
    item: &PlanItem,
    plan_id: &str,
    pieces: &[Piece],
    destination: &Storage,
    fsync: bool,
) -> Result<(), ItemError> {
    let Some(first) = pieces.first() else {
        return Ok(());
    };
    let planned = item
        .src
        .as_ref()
        .ok_or(ItemError::Incomplete { side: "source" })?;
    match destination {
        Storage::Local(dst) => {
            let temp = local_temp(plan_id, first.item, item);
            let meta = crate::storage::local::WriteMeta {
                mtime_ns: planned.mtime_ns,
                // As a whole copy is created: with the source's mode (an
                // object without one: the usual 0644).
                mode: Some(if planned.mode & 0o777 != 0 {
                    planned.mode
                } else {
                    0o644
                }),
            };
            let (dst, rel, size) = (dst.clone(), item.path.clone(), planned.size);
            crate::storage::run_blocking(move || dst.commit_pieces(&temp, &rel, size, meta, fsync))
                .await?;
        }
        Storage::Object(store) => {
            let keys: Vec<(String, u64)> = pieces
                .iter()
                .map(|piece| (piece_key(store.as_ref(), plan_id, piece), piece.len))
                .collect();
            let meta = ObjectMeta {
                mtime_ns: Some(planned.mtime_ns),
                mode: Some(planned.mode),
                link_target: None,
                ..ObjectMeta::default()
            };
            let expect = match &item.dst {
                None => Expect::Absent,
                Some(entry) => entry.etag().map_or(Expect::Any, Expect::Version),
            };
            crate::storage::objects::assemble(
                store.as_ref(),
                &keys,
                &store.key_of(&item.path),
                &meta,
                expect,
            )
            .await?;
            let temps: Vec<String> = keys.into_iter().map(|(key, _)| key).collect();
            store.delete_keys(&temps).await?;
            // Stores with directories (SSH servers) keep the emptied ones
            // until asked; one still holding another file's pieces stays.
            let root = format!("{}{SPLIT_DIR}", store.prefix());
            for dir in [
                format!("{root}{plan_id}/{}/", first.item),
                format!("{root}{plan_id}/"),
                root.clone(),
            ] {
                let _ = store.delete_keys(&[dir]).await;
            }
        }
    }
    Ok(())
}
