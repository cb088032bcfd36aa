//! The listing of an SSH server's directory tree, as pages of an object
//! listing: each page reads a batch of directories (many `readdir`s in
//! flight), and the directories it finds wait for later pages under the
//! token. Directories are listed as `dir/` entries (so empty ones survive),
//! links with their targets, and HugeSync's temp files never.

use std::collections::{HashMap, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::SftpStorage;
use super::files;
use crate::storage::object::{ListPage, ListedObject, ObjectStore, PendingUpload};
use crate::storage::{RemoteErrorKind, StorageError};

/// Directories read for one page.
const DIRS_PER_PAGE: usize = 64;
/// `readdir`s in flight.
const IN_FLIGHT: usize = 16;

/// The directories still to read, per walk in progress.
#[derive(Default)]
pub(super) struct Walks {
    next: AtomicU64,
    pending: Mutex<HashMap<String, VecDeque<String>>>,
}

/// What one directory holds.
struct Read {
    objects: Vec<ListedObject>,
    dirs: Vec<String>,
    temps: Vec<PendingUpload>,
    leftovers: Vec<String>,
}

/// One page of the walk `token` continues (`None`: a new walk from the root).
pub(super) async fn page(
    store: &SftpStorage,
    token: Option<String>,
) -> Result<ListPage, StorageError> {
    let (page, _) = page_with_temps(store, token).await?;
    Ok(page)
}

async fn page_with_temps(
    store: &SftpStorage,
    token: Option<String>,
) -> Result<(ListPage, Vec<PendingUpload>), StorageError> {
    let mut queue = match &token {
        None => VecDeque::from([String::new()]),
        Some(token) => store
            .walks
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token)
            .ok_or_else(|| StorageError::Remote {
                op: "cannot list",
                hints: &super::HINTS,
                kind: RemoteErrorKind::Rejected,
                target: store.url_of(store.prefix_key()),
                message: "the listing lost its place".into(),
            })?,
    };
    let batch: Vec<String> = queue.drain(..queue.len().min(DIRS_PER_PAGE)).collect();
    let reads: Vec<Read> = stream::iter(batch)
        .map(|dir| read_dir(store, dir))
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    let mut objects = Vec::new();
    let mut temps = Vec::new();
    let mut leftovers = Vec::new();
    for read in reads {
        objects.extend(read.objects);
        queue.extend(read.dirs);
        temps.extend(read.temps);
        leftovers.extend(read.leftovers);
    }
    let next = if queue.is_empty() {
        None
    } else {
        let token = store.walks.next.fetch_add(1, Ordering::Relaxed).to_string();
        store
            .walks
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), queue);
        Some(token)
    };
    let page = ListPage {
        objects,
        prefixes: Vec::new(),
        next,
        leftovers,
    };
    Ok((page, temps))
}

/// The entries of the directory `rel_dir` (below the root, `/`-terminated
/// unless the root itself).
async fn read_dir(store: &SftpStorage, rel_dir: String) -> Result<Read, StorageError> {
    let key = format!("{}{rel_dir}", store.prefix_key());
    let session = store.session().await?;
    let mut fs = session.sftp.fs();
    let mut read = Read {
        objects: Vec::new(),
        dirs: Vec::new(),
        temps: Vec::new(),
        leftovers: Vec::new(),
    };
    let dir = match fs.open_dir(store.path_of(&key)).await {
        Ok(dir) => dir,
        // A root that does not exist yet lists as empty, as a prefix does.
        Err(e) if files::is_not_found(&e) && rel_dir.is_empty() => return Ok(read),
        Err(e) => return Err(store.error("cannot list", &key, e)),
    };
    let entries: Vec<_> = dir
        .read_dir()
        .try_collect()
        .await
        .map_err(|e| store.error("cannot list", &key, e))?;
    for entry in entries {
        let name = entry.filename().as_os_str().as_bytes();
        if name == b"." || name == b".." || name.is_empty() {
            continue;
        }
        // A server name is its key (see `path_of`). One that is not UTF-8
        // was not written by HugeSync and cannot be named through the
        // SFTP library: it is left alone, and said.
        let Ok(name_text) = std::str::from_utf8(name) else {
            tracing::warn!(
                "{}: skipped: the name is not UTF-8, which the SFTP library cannot address",
                store.url_of(&format!("{key}{}", crate::storage::names::encode(name)))
            );
            continue;
        };
        let rel = format!("{rel_dir}{name_text}");
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let meta = entry.metadata();
        if kind.is_dir() {
            read.dirs.push(format!("{rel}/"));
            read.objects
                .push(listed(format!("{rel}/"), files::head_of(&meta, None)));
        } else if kind.is_symlink() {
            let target = fs
                .read_link(store.path_of(&format!("{}{rel}", store.prefix_key())))
                .await
                .map_err(|e| store.error("cannot read the link", &rel, e))?;
            let head = files::head_of(&meta, Some(files::rel_of_path(&target)));
            read.objects.push(listed(rel, head));
        } else if kind.is_file() {
            let head = files::head_of(&meta, None);
            if crate::storage::local::is_temp_name(name) {
                if super::temp_name::is_leftover(name, head.mtime_ns, now_ns()) {
                    read.leftovers.push(rel.clone());
                }
                read.temps.push(PendingUpload {
                    key: format!("{}{rel}", store.prefix_key()),
                    id: format!("{}{rel}", store.prefix_key()),
                    initiated_ns: Some(head.mtime_ns),
                });
                continue;
            }
            read.objects.push(listed(rel, head));
        }
        // Sockets, pipes and devices are not synced.
    }
    Ok(read)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn listed(rel_key: String, head: crate::storage::object::ObjectHead) -> ListedObject {
    ListedObject {
        rel_key,
        size: head.size,
        mtime_ns: head.mtime_ns,
        version: head.version,
        meta: Some(head.meta),
        sums: head.sums,
    }
}

/// HugeSync's temp files anywhere below the root: what interrupted runs
/// left (`hugesync uploads` lists them; `--abort` removes them).
pub(super) async fn temp_files(store: &SftpStorage) -> Result<Vec<PendingUpload>, StorageError> {
    let mut token = None;
    let mut temps = Vec::new();
    loop {
        let (page, found) = page_with_temps(store, token.take()).await?;
        temps.extend(found);
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(temps),
        }
    }
}
