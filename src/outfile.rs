//! Writing a file the user named (`-o`, plan files, shard reports, resume
//! state, manual pages) the way a Unix tool does.
//!
//! A regular file, or a path where nothing is yet, is written whole or not at
//! all: a temp file beside it, flushed and fsynced, renamed over it. Anything
//! else that already exists — a character or block device such as `/dev/null`,
//! a FIFO, a socket — is written into directly: renaming over it would replace
//! the device with a regular file (as root, `/dev/null` for the whole machine).
//! A symbolic link is followed to its target, which is then treated the same
//! way; the link itself stays. `-` is standard output.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::storage::local::{TEMP_PREFIX, TEMP_SUFFIX};

/// Links followed before giving up, as the kernel's own limit (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Where the bytes of an output go while it is written.
pub enum Sink {
    /// A temp file, renamed over `target` when complete.
    Temp {
        file: tempfile::NamedTempFile,
        target: PathBuf,
    },
    /// A device, FIFO or socket that already exists, opened for writing.
    Special(File),
    Stdout(io::StdoutLock<'static>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Temp { file, .. } => file.as_file_mut().write(buf),
            Sink::Special(file) => file.write(buf),
            Sink::Stdout(out) => out.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Temp { file, .. } => file.as_file_mut().write_all(buf),
            Sink::Special(file) => file.write_all(buf),
            Sink::Stdout(out) => out.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Temp { file, .. } => file.as_file_mut().flush(),
            Sink::Special(file) => file.flush(),
            Sink::Stdout(out) => out.flush(),
        }
    }
}

/// Whether `path` names standard output (`-`).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `path` (its links followed) is a device, FIFO or socket that
/// exists: what an output is written into, as a stream, never replaced.
pub fn is_special(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

/// `path` as messages name it.
pub fn describe(path: &Path) -> String {
    if is_stdout(path) {
        "standard output".to_string()
    } else {
        path.display().to_string()
    }
}

/// Writes `path` as a user asked for it (see the module's doc): `fill` gets a
/// buffered writer; its result is returned once every byte is where it
/// belongs. A new file gets mode 0666 less the umask, a replaced file keeps its
/// mode (and, where the process may, its owner). `io_error` turns this
/// function's own IO failures into the caller's error.
pub fn write_output<T, E>(
    path: &Path,
    io_error: impl Fn(io::Error) -> E,
    fill: impl FnOnce(&mut BufWriter<Sink>) -> Result<T, E>,
) -> Result<T, E> {
    write_with_mode(path, 0o666, io_error, fill)
}

/// [`write_output`] for files only their owner should read (a new one gets
/// 0600): HugeSync's own state.
pub fn write_private<T, E>(
    path: &Path,
    io_error: impl Fn(io::Error) -> E,
    fill: impl FnOnce(&mut BufWriter<Sink>) -> Result<T, E>,
) -> Result<T, E> {
    write_with_mode(path, 0o600, io_error, fill)
}

fn write_with_mode<T, E>(
    path: &Path,
    new_mode: u32,
    io_error: impl Fn(io::Error) -> E,
    fill: impl FnOnce(&mut BufWriter<Sink>) -> Result<T, E>,
) -> Result<T, E> {
    let sink = if is_stdout(path) {
        Sink::Stdout(io::stdout().lock())
    } else {
        open_sink(path, new_mode).map_err(&io_error)?
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let value = fill(&mut out)?;
    let sink = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    finish(sink).map_err(io_error)?;
    Ok(value)
}

/// Opens what the bytes of `path` go into.
fn open_sink(path: &Path, new_mode: u32) -> io::Result<Sink> {
    let target = follow_links(path)?;
    match fs::metadata(&target) {
        Ok(meta) if meta.is_file() => {
            let temp = temp_beside(&target, Permissions::from_mode(meta.mode() & 0o7777))?;
            // The temp file was made with the umask applied; the replaced
            // file's mode is kept exactly, and its owner where allowed (root).
            temp.as_file().set_permissions(meta.permissions())?;
            let mine = temp.as_file().metadata()?;
            if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
                let _ =
                    std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()));
            }
            Ok(Sink::Temp { file: temp, target })
        }
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory: name a file to write",
        )),
        // A device, FIFO or socket: into it, never over it. A FIFO's open waits
        // for its reader, as a shell redirection does.
        Ok(_) => Ok(Sink::Special(OpenOptions::new().write(true).open(&target)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Sink::Temp {
            file: temp_beside(&target, Permissions::from_mode(new_mode))?,
            target,
        }),
        Err(e) => Err(e),
    }
}

/// A temp file in `target`'s directory, where a rename cannot cross devices.
fn temp_beside(target: &Path, mode: Permissions) -> io::Result<tempfile::NamedTempFile> {
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .permissions(mode)
        .tempfile_in(dir)
}

/// Makes the written bytes final: a temp file is fsynced and renamed over its
/// target; a block device is flushed to its medium; a pipe, character device
/// or socket has nothing to flush.
fn finish(sink: Sink) -> io::Result<()> {
    match sink {
        Sink::Temp { file, target } => {
            file.as_file().sync_all()?;
            file.persist(&target).map_err(|e| e.error)?;
            Ok(())
        }
        Sink::Special(file) => {
            use std::os::unix::fs::FileTypeExt;
            if file.metadata()?.file_type().is_block_device() {
                file.sync_all()?;
            }
            Ok(())
        }
        Sink::Stdout(mut out) => out.flush(),
    }
}

/// `path` with every symbolic link along its final component followed (up to
/// [`MAX_LINKS`]): the file a write through the link reaches. A dangling
/// link gives the path its target would have.
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links to follow"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
        write_output(path, |e| e, |out| out.write_all(bytes))
    }

    #[test]
    fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write(&path, b"one").unwrap();
        let umask_mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(umask_mode & 0o600, 0o600);
        assert_eq!(umask_mode & 0o111, 0);
        fs::set_permissions(&path, Permissions::from_mode(0o604)).unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o604);
        let private = dir.path().join("state");
        write_private(&private, |e| e, |out| out.write_all(b"s")).unwrap();
        assert_eq!(fs::metadata(&private).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write(&path, b"old").unwrap();
        let result: io::Result<()> = write_output(
            &path,
            |e| e,
            |out| {
                out.write_all(b"half")?;
                Err(io::Error::other("stopped"))
            },
        );
        assert!(result.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_loop_of_links_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let error = write(&dir.path().join("a"), b"x").unwrap_err();
        assert!(error.to_string().contains("symbolic links"), "{error}");
    }
}
