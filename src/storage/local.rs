//! The local filesystem backend: a parallel walk with jwalk, and writes that only
//! ever make a file appear whole (temp file beside the target, fsync, rename).

use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jwalk::{Parallelism, WalkDirGeneric};

use super::{ListOptions, Listing, ScanCounter, ScanIssue, ScanIssueKind, StorageError};
use crate::filter::Filter;
use crate::types::{Entry, EntryExtra, EntryKind, Manifest, ManifestEntry, RelPath};

/// Temp files are named `.hugesync-<random>.tmp` in the target's directory; scans
/// never report them, so an interrupted run leaves nothing that looks like data.
pub const TEMP_PREFIX: &str = ".hugesync-";
pub const TEMP_SUFFIX: &str = ".tmp";

pub fn is_temp_name(name: &[u8]) -> bool {
    name.starts_with(TEMP_PREFIX.as_bytes()) && name.ends_with(TEMP_SUFFIX.as_bytes())
}

#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: Arc<Path>,
    /// Directories below the root already checked to be real directories (not
    /// symlinks), so each is checked once per run.
    verified_dirs: Arc<std::sync::Mutex<std::collections::HashSet<RelPath>>>,
}

/// What a walk records per entry, computed on the walker's threads so that the
/// `lstat` calls run in parallel.
type WalkState = ((), Option<(RelPath, Result<Entry, ScanIssueKind>)>);

/// Metadata to give a written entry.
#[derive(Clone, Copy, Debug)]
pub struct WriteMeta {
    pub mtime_ns: i64,
    /// Permission bits to set explicitly (`-a`), or `None` to keep what creation gave.
    pub mode: Option<u32>,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root: root.into(),
            verified_dirs: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path_of(&self, rel: &RelPath) -> PathBuf {
        rel.to_local(&self.root)
    }

    /// Walks the tree. A missing root is an empty listing (`root_exists == false`);
    /// a root that is not a directory, or cannot be read at all, is an error.
    pub fn list(
        &self,
        filter: &Arc<Filter>,
        options: ListOptions,
        counter: &ScanCounter,
    ) -> Result<Listing, StorageError> {
        match fs::metadata(&*self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Listing {
                    manifest: Manifest::new(Vec::new(), Vec::new(), false),
                    issues: Vec::new(),
                });
            }
            Err(e) => return Err(StorageError::io("cannot access", &*self.root, e)),
            Ok(meta) if !meta.is_dir() => {
                return Err(StorageError::NotADirectory {
                    path: self.root.to_path_buf(),
                });
            }
            Ok(_) => {}
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
        let root = self.root.clone();
        let walk_filter = filter.clone();
        let symlinks = options.symlinks;
        let walker = WalkDirGeneric::<WalkState>::new(&*self.root)
            .skip_hidden(false)
            .follow_links(false)
            .sort(false)
            .parallelism(Parallelism::RayonNewPool(threads))
            .process_read_dir(move |depth, dir, _, children| {
                if depth.is_none() {
                    return; // the root entry itself
                }
                let rel_dir = relative(&root, dir);
                // One directory handle per directory: `fstatat` on a bare name
                // costs far less than resolving every full path again.
                let dir_fd = open_dir(dir).ok();
                children.retain_mut(|child| {
                    let Ok(child) = child else { return true };
                    let name = child.file_name.as_bytes();
                    if is_temp_name(name) {
                        return false;
                    }
                    let rel = join(&rel_dir, name);
                    if !walk_filter.includes(&rel, child.file_type.is_dir()) {
                        return false; // also keeps jwalk out of excluded directories
                    }
                    let entry = match &dir_fd {
                        Some(fd) => stat_entry(fd, Path::new(&child.file_name), symlinks),
                        None => stat_entry(rustix::fs::CWD, &dir.join(&child.file_name), symlinks),
                    };
                    child.client_state = Some((rel, entry));
                    true
                });
            });

        let mut entries = Vec::new();
        let mut incomplete = Vec::new();
        let mut issues = Vec::new();
        for item in walker {
            let mut dir_entry = match item {
                Ok(dir_entry) => dir_entry,
                Err(e) => {
                    let rel = e
                        .path()
                        .map(|p| relative(&self.root, p))
                        .unwrap_or_else(|| RelPath::from(""));
                    incomplete.push(rel.clone());
                    issues.push(ScanIssue {
                        path: rel,
                        kind: ScanIssueKind::Unreadable(e.to_string()),
                    });
                    continue;
                }
            };
            if dir_entry.depth == 0 {
                if let Some(e) = dir_entry.read_children_error {
                    return Err(StorageError::io(
                        "cannot list",
                        &*self.root,
                        e.into_io_error()
                            .unwrap_or_else(|| io::Error::other("walk failed")),
                    ));
                }
                continue;
            }
            let Some((rel, entry)) = dir_entry.client_state.take() else {
                continue;
            };
            if let Some(e) = dir_entry.read_children_error.take() {
                incomplete.push(rel.clone());
                issues.push(ScanIssue {
                    path: rel.clone(),
                    kind: ScanIssueKind::Unreadable(describe_walk_error(e)),
                });
            }
            match entry {
                Ok(entry) => {
                    counter.add(if entry.kind == EntryKind::File {
                        entry.size
                    } else {
                        0
                    });
                    entries.push(ManifestEntry { path: rel, entry });
                }
                Err(kind) => {
                    // Whatever we skipped or could not read must not look "missing at
                    // the source": nothing at this path may be deleted on the other side.
                    incomplete.push(rel.clone());
                    issues.push(ScanIssue { path: rel, kind });
                }
            }
        }
        issues.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Listing {
            manifest: Manifest::new(entries, incomplete, true),
            issues,
        })
    }

    /// Describes one entry, or `None` when nothing is there.
    pub fn head(&self, rel: &RelPath) -> Result<Option<Entry>, StorageError> {
        let path = self.path_of(rel);
        match rustix::fs::statat(
            rustix::fs::CWD,
            &path,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => Ok(entry_from_stat(rustix::fs::CWD, &path, &stat, true).ok()),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(StorageError::io("cannot stat", path, e.into())),
        }
    }

    /// Removes a file or link, or an empty directory.
    pub fn delete(&self, rel: &RelPath, kind: EntryKind) -> Result<(), StorageError> {
        let path = self.path_of(rel);
        let result = match kind {
            EntryKind::Dir => fs::remove_dir(&path),
            EntryKind::File | EntryKind::Symlink => fs::remove_file(&path),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("cannot delete", path, e)),
        }
    }

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
        fill(temp.as_file_mut())?;
        let file = temp.as_file();
        if let Some(mode) = meta.mode {
            file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| StorageError::io("cannot set mode of", &target, e))?;
        }
        filetime::set_file_handle_times(file, None, Some(file_time(meta.mtime_ns)))
            .map_err(|e| StorageError::io("cannot set mtime of", &target, e))?;
        if fsync {
            file.sync_all()
                .map_err(|e| StorageError::io("cannot fsync", &target, e))?;
        }
        if let Ok(existing) = fs::symlink_metadata(&target)
            && existing.is_dir()
        {
            // A directory where the source has a file: replace it only if empty.
            fs::remove_dir(&target)
                .map_err(|e| StorageError::io("cannot replace directory", &target, e))?;
        }
        temp.persist(&target)
            .map_err(|e| StorageError::io("cannot rename into place", &target, e.error))?;
        Ok(())
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

fn file_time(mtime_ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// Nanoseconds since the epoch from `lstat` data.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::openat(
        rustix::fs::CWD,
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` relative to `dir`, as an [`Entry`], or why it is skipped.
fn stat_entry<Fd: AsFd>(dir: Fd, name: &Path, symlinks: bool) -> Result<Entry, ScanIssueKind> {
    let stat = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| ScanIssueKind::Unreadable(io::Error::from(e).to_string()))?;
    entry_from_stat(dir, name, &stat, symlinks)
}

fn entry_from_stat<Fd: AsFd>(
    dir: Fd,
    name: &Path,
    stat: &rustix::fs::Stat,
    symlinks: bool,
) -> Result<Entry, ScanIssueKind> {
    use rustix::fs::FileType;
    // `st_mtime`'s C type differs between targets; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    let mtime_secs = stat.st_mtime as i64;
    let mut entry = Entry {
        kind: EntryKind::File,
        size: 0,
        mtime_ns: mtime_secs
            .saturating_mul(1_000_000_000)
            .saturating_add(stat.st_mtime_nsec as i64),
        mode: stat.st_mode & 0o7777,
        extra: None,
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => entry.size = u64::try_from(stat.st_size).unwrap_or(0),
        FileType::Directory => entry.kind = EntryKind::Dir,
        FileType::Symlink if !symlinks => return Err(ScanIssueKind::SkippedSymlink),
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| ScanIssueKind::Unreadable(io::Error::from(e).to_string()))?;
            entry.kind = EntryKind::Symlink;
            entry.extra = Some(Box::new(EntryExtra {
                link_target: Some(RelPath::from_bytes(target.as_bytes())),
                blake3: None,
            }));
        }
        _ => return Err(ScanIssueKind::SkippedSpecial),
    }
    Ok(entry)
}

fn relative(root: &Path, path: &Path) -> RelPath {
    let rel = path.strip_prefix(root).unwrap_or(path);
    RelPath::from_bytes(rel.as_os_str().as_bytes())
}

fn join(dir: &RelPath, name: &[u8]) -> RelPath {
    if dir.as_bytes().is_empty() {
        return RelPath::from_bytes(name);
    }
    let mut bytes = Vec::with_capacity(dir.as_bytes().len() + 1 + name.len());
    bytes.extend_from_slice(dir.as_bytes());
    bytes.push(b'/');
    bytes.extend_from_slice(name);
    RelPath::from_bytes(&bytes)
}

fn describe_walk_error(e: jwalk::Error) -> String {
    match e.io_error() {
        Some(io) => io.to_string(),
        None => e.to_string(),
    }
}

/// A read-only view of a whole file: a memory map, or nothing for an empty file
/// (which cannot be mapped).
pub struct MappedFile(Option<memmap2::Mmap>);

impl std::ops::Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Maps `file` read-only. The caller must not rely on the bytes staying the same if
/// another process writes the file meanwhile; HugeSync re-checks size and mtime
/// after using a mapping.
pub fn map_readonly(file: &File) -> io::Result<MappedFile> {
    if file.metadata()?.len() == 0 {
        return Ok(MappedFile(None));
    }
    // SAFETY: read-only mapping; concurrent truncation by another process can
    // fault, as with any mmap reader (documented above).
    unsafe { memmap2::Mmap::map(file) }.map(|m| MappedFile(Some(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
