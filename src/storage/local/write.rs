//! The write side of the local backend: directories, files and links that only
//! ever appear whole, never written through a symbolic link.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use super::{LocalStorage, TEMP_PREFIX, TEMP_SUFFIX, WriteMeta};
use crate::storage::StorageError;
use crate::types::{EntryKind, RelPath};

impl LocalStorage {
    /// Creates the directories leading to `rel` (not `rel` itself).
    ///
    /// Never writes through a symbolic link: each directory on the way must be a
    /// real directory (or is created as one), so a link planted in the destination
    /// cannot redirect a write outside the root.
    pub fn create_parents(&self, rel: &RelPath) -> Result<(), StorageError> {
        fs::create_dir_all(&*self.root)
            .map_err(|e| StorageError::io("cannot create directory", &*self.root, e))?;
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut missing = Vec::new();
        let mut at = Some(parent);
        while let Some(dir) = at {
            if self.is_verified(&dir) {
                break;
            }
            at = dir.parent();
            missing.push(dir);
        }
        // Outermost first.
        for dir in missing.into_iter().rev() {
            let path = self.path_of(&dir);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(StorageError::io(
                        "refusing to write through a symbolic link at",
                        path,
                        io::Error::other("the destination has a link where a directory belongs"),
                    ));
                }
                Ok(_) => {
                    return Err(StorageError::NotADirectory { path });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(StorageError::io("cannot create directory", path, e)),
                },
                Err(e) => return Err(StorageError::io("cannot stat", path, e)),
            }
            if let Ok(mut verified) = self.verified_dirs.lock() {
                verified.insert(dir);
            }
        }
        Ok(())
    }

    fn is_verified(&self, dir: &RelPath) -> bool {
        self.verified_dirs.lock().is_ok_and(|v| v.contains(dir))
    }

    /// Creates directory `rel`; an existing directory is fine, and a file or link
    /// in the way is replaced (the plan said the source has a directory there).
    pub fn create_dir(&self, rel: &RelPath) -> Result<(), StorageError> {
        self.create_parents(rel)?;
        let path = self.path_of(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                fs::remove_file(&path).map_err(|e| StorageError::io("cannot replace", &path, e))?
            }
            Err(_) => {}
        }
        match fs::create_dir(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StorageError::io("cannot create directory", path, e)),
        }
    }

    /// Writes a file so that it only ever appears whole: `fill` writes the content
    /// into a temp file in the target's directory, which is then fsynced (when asked),
    /// given its metadata and renamed over the target. On any error, or when `fill`
    /// fails, the temp file is removed and the target is untouched.
    pub fn write_file_atomic<E>(
        &self,
        rel: &RelPath,
        create_mode: u32,
        meta: WriteMeta,
        fsync: bool,
        fill: impl FnOnce(&mut File) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StorageError>,
    {
        self.create_parents(rel)?;
        let target = self.path_of(rel);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .permissions(fs::Permissions::from_mode(create_mode & 0o777))
            .tempfile_in(&dir)
            .map_err(|e| StorageError::io("cannot create temp file in", &dir, e))?;
        // Held until the file is renamed into place and closed: a later run that
        // finds this temp file removes it only if no live process holds it.
        rustix::fs::flock(temp.as_file(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StorageError::io("cannot lock temp file in", &dir, e.into()))?;
        fill(temp.as_file_mut())?;
        ready_to_replace(temp.as_file(), &target, meta, fsync)?;
        temp.persist(&target)
            .map_err(|e| StorageError::io("cannot rename into place", &target, e.error))?;
        Ok(())
    }

    /// Writes bytes into the shared temp file `temp` of a file cut into
    /// pieces (`sync::pieces`), which will be `size` bytes once every piece is
    /// in: created if missing (several shards may race to it), sized, then
    /// `fill` writes its range at its offsets. Nothing appears under the
    /// final name until [`LocalStorage::commit_pieces`].
    pub fn write_piece(
        &self,
        temp: &RelPath,
        size: u64,
        fsync: bool,
        fill: impl FnOnce(&File) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        use std::os::unix::fs::OpenOptionsExt;
        self.create_parents(temp)?;
        let path = self.path_of(temp);
        let file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StorageError::io("cannot open the shared temp file", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io("cannot stat", &path, e))?
            .len();
        if len < size {
            file.set_len(size)
                .map_err(|e| StorageError::io("cannot size", &path, e))?;
        }
        fill(&file)?;
        if fsync {
            file.sync_data()
                .map_err(|e| StorageError::io("cannot fsync", &path, e))?;
        }
        Ok(())
    }

    /// Puts a file whose pieces are all in `temp` under its name: the size
    /// checked, metadata given, flushed, renamed over the target.
    pub fn commit_pieces(
        &self,
        temp: &RelPath,
        rel: &RelPath,
        size: u64,
        meta: WriteMeta,
        fsync: bool,
    ) -> Result<(), StorageError> {
        let (from, target) = (self.path_of(temp), self.path_of(rel));
        let file = File::options()
            .write(true)
            .open(&from)
            .map_err(|e| StorageError::io("cannot open the pieces of", &target, e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io("cannot stat", &from, e))?
            .len();
        if len != size {
            return Err(StorageError::io(
                "the pieces do not make the whole file at",
                &target,
                io::Error::other(format!("{len} bytes where the plan has {size}")),
            ));
        }
        let meta = WriteMeta {
            mode: Some(meta.mode.unwrap_or(0o644)),
            ..meta
        };
        ready_to_replace(&file, &target, meta, fsync)?;
        fs::rename(&from, &target)
            .map_err(|e| StorageError::io("cannot rename into place", &target, e))
    }

    /// Creates (or replaces) a symbolic link atomically.
    pub fn write_symlink_atomic(
        &self,
        rel: &RelPath,
        target: &RelPath,
        mtime_ns: Option<i64>,
    ) -> Result<(), StorageError> {
        self.create_parents(rel)?;
        let path = self.path_of(rel);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let link_target = std::ffi::OsStr::from_bytes(target.as_bytes());
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .make_in(&dir, |temp_path| {
                std::os::unix::fs::symlink(link_target, temp_path)
            })
            .map_err(|e| StorageError::io("cannot create symlink in", &dir, e))?;
        if let Some(ns) = mtime_ns {
            filetime::set_symlink_file_times(temp.path(), file_time(ns), file_time(ns))
                .map_err(|e| StorageError::io("cannot set mtime of", &path, e))?;
        }
        temp.persist(&path)
            .map_err(|e| StorageError::io("cannot rename into place", &path, e.error))?;
        Ok(())
    }

    /// Sets mtime and, when given, mode of an existing entry (not following links).
    pub fn set_meta(
        &self,
        rel: &RelPath,
        kind: EntryKind,
        meta: WriteMeta,
    ) -> Result<(), StorageError> {
        let path = self.path_of(rel);
        if kind == EntryKind::Symlink {
            return filetime::set_symlink_file_times(
                &path,
                file_time(meta.mtime_ns),
                file_time(meta.mtime_ns),
            )
            .map_err(|e| StorageError::io("cannot set mtime of", path, e));
        }
        if let Some(mode) = meta.mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| StorageError::io("cannot set mode of", &path, e))?;
        }
        filetime::set_file_mtime(&path, file_time(meta.mtime_ns))
            .map_err(|e| StorageError::io("cannot set mtime of", path, e))
    }

    /// Flushes a directory's entries (renames, creations) to disk.
    pub fn sync_dir(&self, rel: Option<&RelPath>) -> Result<(), StorageError> {
        let path = rel.map_or_else(|| self.root.to_path_buf(), |r| self.path_of(r));
        File::open(&path)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StorageError::io("cannot fsync directory", path, e))
    }
}

/// A complete temp file made ready to be renamed over `target`: its mode and
/// mtime given, flushed when asked, and an empty directory in the way removed
/// (where the source has a file).
fn ready_to_replace(
    file: &File,
    target: &std::path::Path,
    meta: WriteMeta,
    fsync: bool,
) -> Result<(), StorageError> {
    if let Some(mode) = meta.mode {
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| StorageError::io("cannot set mode of", target, e))?;
    }
    filetime::set_file_handle_times(file, None, Some(file_time(meta.mtime_ns)))
        .map_err(|e| StorageError::io("cannot set mtime of", target, e))?;
    if fsync {
        file.sync_all()
            .map_err(|e| StorageError::io("cannot fsync", target, e))?;
    }
    if let Ok(existing) = fs::symlink_metadata(target)
        && existing.is_dir()
    {
        fs::remove_dir(target)
            .map_err(|e| StorageError::io("cannot replace directory", target, e))?;
    }
    Ok(())
}

fn file_time(mtime_ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::WriteMeta;

    #[test]
    fn writes_never_go_through_a_planted_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("a")).unwrap();
        let storage = LocalStorage::new(root.path().to_path_buf());
        let meta = WriteMeta {
            mtime_ns: 0,
            mode: None,
        };
        let result = storage.write_file_atomic(&RelPath::from("a/x"), 0o644, meta, false, |f| {
            use std::io::Write;
            f.write_all(b"x")
                .map_err(|e| StorageError::io("write", "x", e))
        });
        assert!(result.is_err());
        assert!(!outside.path().join("x").exists());
        // A real directory path works, and deep parents are created.
        storage
            .write_file_atomic(&RelPath::from("b/c/d"), 0o644, meta, false, |_| {
                Ok::<(), StorageError>(())
            })
            .unwrap();
        assert!(root.path().join("b/c/d").is_file());
    }
}
