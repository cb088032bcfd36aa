//! The local filesystem backend: a parallel walk with jwalk, and writes that only
//! ever make a file appear whole (temp file beside the target, fsync, rename).

use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jwalk::{Parallelism, WalkDirGeneric};

mod write;

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
                    leftovers: Vec::new(),
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
        let leftovers: Arc<std::sync::Mutex<Vec<RelPath>>> = Arc::default();
        let temps = leftovers.clone();
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
                        if let Ok(mut temps) = temps.lock() {
                            temps.push(join(&rel_dir, name));
                        }
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

        let mut entries = options.manifest_builder();
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
        let leftovers = std::mem::take(&mut *leftovers.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(Listing {
            manifest: entries.finish(incomplete, true),
            issues,
            leftovers,
        })
    }

    /// Removes the temp file of an interrupted run, unless a live writer holds
    /// it: writers keep an exclusive `flock` on their temp file until it is
    /// renamed into place, and the kernel drops the lock when its process dies.
    /// Returns whether it was removed.
    pub fn remove_leftover(&self, rel: &RelPath) -> Result<bool, StorageError> {
        let path = self.path_of(rel);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StorageError::io("cannot stat", path, e)),
        };
        if meta.is_file() {
            let file = File::open(&path).map_err(|e| StorageError::io("cannot open", &path, e))?;
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
            {
                return Ok(false); // being written right now
            }
        } else if !meta.file_type().is_symlink() {
            return Ok(false);
        }
        fs::remove_file(&path).map_err(|e| StorageError::io("cannot remove", &path, e))?;
        Ok(true)
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
                ..Default::default()
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
/// (which cannot be mapped). A file cut short by another process while it is
/// read does not kill the process: the missing pages read as zeros and
/// [`MappedFile::faulted`] says so (`crate::mapguard`).
#[derive(Debug)]
pub struct MappedFile {
    // The guard goes first: it is unregistered before the map is unmapped.
    guard: Option<crate::mapguard::Guard>,
    map: Option<memmap2::Mmap>,
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl MappedFile {
    /// Whether a read met the end of the file cut short: whatever was computed
    /// from these bytes describes no version of the file.
    pub fn faulted(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(crate::mapguard::Guard::faulted)
    }

    /// Gives back the pages holding `len` bytes from `offset` once they have
    /// been read: the process stops counting them (they stay in the page
    /// cache, and a later read maps them again), so a large map read front to
    /// back holds a window of it, not all of it.
    pub fn release(&self, offset: usize, len: usize) {
        let Some(map) = &self.map else { return };
        let len = len.min(map.len().saturating_sub(offset));
        if len == 0 {
            return;
        }
        // SAFETY: the map is a read-only view of a file: dropping its pages
        // discards no data (a later read faults them in from the page cache,
        // or as zeros past a new end, which the guard reports).
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
}

/// Maps `file` read-only. The caller must not rely on the bytes staying the same if
/// another process writes the file meanwhile; HugeSync re-checks size and mtime
/// after using a mapping, and [`MappedFile::faulted`] for a file cut short.
pub fn map_readonly(file: &File) -> io::Result<MappedFile> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(MappedFile {
            guard: None,
            map: None,
        });
    }
    map_range(file, 0, len)
}

/// Maps `len` bytes of `file` from `offset` (any offset: the map starts at
/// the page holding it).
pub fn map_range(file: &File, offset: u64, len: u64) -> io::Result<MappedFile> {
    // SAFETY: read-only mapping; a truncation by another process meanwhile is
    // caught by the guard (the pages read as zeros, `faulted` tells).
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(usize::try_from(len).map_err(io::Error::other)?)
            .map(file)?
    };
    Ok(MappedFile {
        guard: Some(crate::mapguard::Guard::register(map.as_ptr(), map.len())),
        map: Some(map),
    })
}

/// Keeps `from` (a file or a symbolic link) at `to` as well: a hard link,
/// or a copy with its times where the two are on different file systems. An
/// older backup at `to` is replaced.
pub fn keep_copy(from: &Path, to: &Path) -> Result<(), StorageError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| StorageError::io("cannot create the backup directory", parent, e))?;
    }
    match std::fs::remove_file(to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io("cannot replace the older backup", to, e)),
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            let meta = std::fs::symlink_metadata(from)
                .map_err(|e| StorageError::io("cannot stat", from, e))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(from)
                    .map_err(|e| StorageError::io("cannot read the link", from, e))?;
                return std::os::unix::fs::symlink(target, to)
                    .map_err(|e| StorageError::io("cannot keep the link", to, e));
            }
            std::fs::copy(from, to)
                .map_err(|e| StorageError::io("cannot keep a copy of", from, e))?;
            let mtime = filetime::FileTime::from_last_modification_time(&meta);
            filetime::set_file_mtime(to, mtime)
                .map_err(|e| StorageError::io("cannot set the time of", to, e))
        }
    }
}
