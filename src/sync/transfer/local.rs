//! Local disk to local disk: a chunked copy (copy_file_range underneath) or a
//! delta rebuild, always into a temp file renamed over the target.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;

use crate::delta::{DeltaOp, compute_delta};
use crate::progress::ExecEvent;
use crate::signature::signature_of_bytes;
use crate::storage::local::{map_readonly, mtime_ns};
use crate::storage::{LocalStorage, StorageError};
use crate::types::{Entry, EntryKind, SyncAction};

use super::super::plan::PlanItem;
use super::{ItemContext, ItemError, Outcome, planned_source, write_meta};

/// Copy granularity: progress is reported, and cancellation checked, per chunk.
const CHUNK: u64 = 8 * 1024 * 1024;

pub(super) fn run(
    id: usize,
    item: &PlanItem,
    src: &LocalStorage,
    dst: &LocalStorage,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let planned = planned_source(item)?;
    check_destination_unchanged(dst, item)?;
    match (item.action, planned.kind) {
        (SyncAction::Metadata, kind) => {
            dst.set_meta(
                &item.path,
                kind,
                write_meta(planned, item.dst.as_ref(), ctx.archive),
            )?;
            Ok(Outcome::default())
        }
        (_, EntryKind::Symlink) => {
            let target = planned.link_target().ok_or(ItemError::Incomplete {
                side: "link target",
            })?;
            dst.write_symlink_atomic(&item.path, target, Some(planned.mtime_ns))?;
            Ok(Outcome::default())
        }
        (_, EntryKind::Dir) => {
            dst.create_dir(&item.path)?;
            Ok(Outcome::default())
        }
        (SyncAction::Delta, EntryKind::File) => delta_local_file(id, item, planned, src, dst, ctx),
        (_, EntryKind::File) => copy_local_file(id, item, planned, src, dst, ctx),
    }
}

/// Refuses to overwrite a destination entry that changed after planning (someone
/// else wrote it); the next run plans it again.
pub(super) fn check_destination_unchanged(
    dst: &LocalStorage,
    item: &PlanItem,
) -> Result<(), ItemError> {
    let now = dst.head(&item.path)?;
    let unchanged = match (&item.dst, &now) {
        (None, None) => true,
        (Some(planned), Some(now)) => {
            planned.kind == now.kind
                && (planned.kind == EntryKind::Dir || planned.same_size_and_mtime(now))
        }
        _ => false,
    };
    if unchanged {
        Ok(())
    } else {
        Err(ItemError::DestinationChanged)
    }
}

/// A source file opened for reading, checked against what the plan saw.
pub(super) struct SourceFile<'a> {
    pub(super) file: File,
    pub(super) path: std::path::PathBuf,
    planned: &'a Entry,
    pub(super) mode: u32,
}

impl<'a> SourceFile<'a> {
    pub(super) fn open(path: std::path::PathBuf, planned: &'a Entry) -> Result<Self, ItemError> {
        let file = File::open(&path).map_err(|e| StorageError::io("cannot open", &path, e))?;
        let mut source = SourceFile {
            file,
            path,
            planned,
            mode: 0,
        };
        source.mode = source.check("before it was read")?.mode();
        Ok(source)
    }

    /// Fails unless size and mtime are still the planned ones.
    pub(super) fn check(&self, when: &'static str) -> Result<std::fs::Metadata, ItemError> {
        let now = self
            .file
            .metadata()
            .map_err(|e| StorageError::io("cannot stat", &self.path, e))?;
        if now.len() != self.planned.size || mtime_ns(&now) != self.planned.mtime_ns {
            return Err(ItemError::SourceChanged { what: when });
        }
        Ok(now)
    }
}

fn copy_local_file(
    id: usize,
    item: &PlanItem,
    planned: &Entry,
    src: &LocalStorage,
    dst: &LocalStorage,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let source = SourceFile::open(src.path_of(&item.path), planned)?;
    let meta = write_meta(planned, item.dst.as_ref(), ctx.archive);
    // New files get the source's permission bits filtered by the umask, as cp does.
    let create_mode = source.mode;
    let mut copied = 0u64;
    dst.write_file_atomic(&item.path, create_mode, meta, ctx.fsync, |out| {
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(ItemError::Cancelled);
            }
            // `io::copy` between files uses copy_file_range (reflinks where the
            // filesystem has them), a chunk at a time for progress, cancellation
            // and `--bwlimit`'s pace.
            let n = io::copy(
                &mut (&source.file).take(crate::bandwidth::piece(CHUNK)),
                out,
            )
            .map_err(|e| StorageError::io("cannot copy", &source.path, e))?;
            if n == 0 {
                break;
            }
            crate::bandwidth::take_blocking(n as usize);
            copied += n;
            let _ = ctx
                .events
                .blocking_send(ExecEvent::Advanced { id, bytes: n });
        }
        source.check("while it was copied")?;
        if copied != planned.size {
            return Err(ItemError::SourceChanged {
                what: "while it was copied",
            });
        }
        Ok(())
    })?;
    Ok(Outcome::sent(copied, 0))
}

/// Rebuilds the destination file from its own unchanged blocks plus the source's
/// new bytes, into a temp file that replaces it: the same delta core the object
/// stores use, with the local file as both basis and target.
fn delta_local_file(
    id: usize,
    item: &PlanItem,
    planned: &Entry,
    src: &LocalStorage,
    dst: &LocalStorage,
    ctx: &ItemContext,
) -> Result<Outcome, ItemError> {
    let source = SourceFile::open(src.path_of(&item.path), planned)?;
    let src_path = &source.path;
    let dst_path = dst.path_of(&item.path);
    let basis_file =
        File::open(&dst_path).map_err(|e| StorageError::io("cannot open", &dst_path, e))?;
    let new =
        map_readonly(&source.file).map_err(|e| StorageError::io("cannot map", src_path, e))?;
    let basis =
        map_readonly(&basis_file).map_err(|e| StorageError::io("cannot map", &dst_path, e))?;
    let block_size = ctx.block_size;
    let delta = compute_delta(&new, &signature_of_bytes(&basis, block_size));
    // Either file cut short by another process meanwhile: what was computed
    // describes neither version (the pages past the cut read as zeros).
    let changed = || {
        if new.faulted() {
            Some(ItemError::SourceChanged {
                what: "while it was read",
            })
        } else if basis.faulted() {
            Some(ItemError::DestinationChanged)
        } else {
            None
        }
    };
    if let Some(error) = changed() {
        return Err(error);
    }
    let meta = write_meta(planned, item.dst.as_ref(), ctx.archive);
    dst.write_file_atomic(&item.path, source.mode, meta, ctx.fsync, |out| {
        use std::io::Write;
        for op in &delta.ops {
            if ctx.cancel.is_cancelled() {
                return Err(ItemError::Cancelled);
            }
            let (bytes, sent) = match *op {
                DeltaOp::Copy { src_offset, len } => {
                    (&basis[src_offset as usize..(src_offset + len) as usize], 0)
                }
                DeltaOp::Insert { new_offset, len } => {
                    (&new[new_offset as usize..(new_offset + len) as usize], len)
                }
            };
            if let Err(e) = out.write_all(bytes) {
                // EFAULT: the kernel met a mapped page past a new end.
                return Err(match changed() {
                    Some(error) => error,
                    None if crate::mapguard::ChangedWhileRead::is(&e) => ItemError::SourceChanged {
                        what: "while it was read",
                    },
                    None => ItemError::Storage(StorageError::io("cannot write", &dst_path, e)),
                });
            }
            if sent > 0 {
                crate::bandwidth::take_blocking(sent as usize);
                let _ = ctx
                    .events
                    .blocking_send(ExecEvent::Advanced { id, bytes: sent });
            }
        }
        if let Some(error) = changed() {
            return Err(error);
        }
        source.check("while it was read")?;
        Ok(())
    })?;
    Ok(Outcome::sent(delta.bytes_new(), delta.bytes_reused()))
}
