//! Helpers layered on [`ObjectStore`]'s required operations, the same for every
//! store: a listing turned into a manifest, reads that survive being cut off,
//! small whole-object reads, deletes of an object with its sidecar.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::object::{ByteStream, ObjectStore};
use super::sidecars::{Bookkeeping, MisplacedSidecars, bookkeeping};
use super::{ListOptions, Listing, ScanCounter, ScanIssue, ScanIssueKind, StorageError};
use crate::filter::Filter;
use crate::retry::Budget;
use crate::types::{Entry, EntryKind, ManifestEntry, RelPath};

/// Whether every directory above `path` passes the filter (rsync semantics: an
/// excluded directory hides its subtree), remembering answers per directory.
struct AncestorFilter<'a> {
    filter: &'a Filter,
    decided: HashMap<RelPath, bool>,
}

impl AncestorFilter<'_> {
    fn parents_included(&mut self, path: &RelPath) -> bool {
        let Some(parent) = path.parent() else {
            return true;
        };
        if let Some(&known) = self.decided.get(&parent) {
            return known;
        }
        let included = self.parents_included(&parent) && self.filter.includes(&parent, true);
        self.decided.insert(parent, included);
        included
    }
}

/// Lists every object below the store's prefix into a manifest, page by page.
///
/// Object stores have no directories; keys with `/` imply them, and the
/// manifest gets those implied directories so that a local side can be
/// compared with it (and `--delete` does not take a local directory for one the
/// source lacks). Sidecars are bookkeeping, never entries.
pub async fn list_tree(
    store: &dyn ObjectStore,
    filter: &Filter,
    options: ListOptions,
    counter: &ScanCounter,
) -> Result<Listing, StorageError> {
    let mut entries = options.manifest_builder();
    let mut dirs: HashSet<RelPath> = HashSet::new();
    let mut issues = Vec::new();
    let mut empty_objects = Vec::new();
    let mut listed = 0u64;
    let mut last_parent: Option<Vec<u8>> = None;
    let mut leftovers = Vec::new();
    // Sidecars listed where the store no longer keeps them (the layout
    // changed): as many as files large enough to be signed, never more.
    let mut misplaced: Vec<RelPath> = Vec::new();
    let kept_in = store.info().sidecars;
    let mut ancestors = AncestorFilter {
        filter,
        decided: HashMap::new(),
    };
    // Many pages in flight, each retried on its own by the store: a failure
    // on page 900 of a large bucket does not start the listing over. Pages
    // come in any order; the manifest sorts.
    let in_flight = store.info().requests_in_flight(options.list_requests);
    super::listing::list_all(store, in_flight, counter, |page| {
        leftovers.extend(
            page.leftovers
                .iter()
                .map(|rel| RelPath::from_bytes(&super::names::decode(rel))),
        );
        for object in page.objects {
            let rel = object.rel_key.as_str();
            // Pieces of files cut across shards wait there for `finalize`.
            if rel.is_empty() || rel.starts_with(SPLIT_DIR) {
                continue;
            }
            // Sidecars are bookkeeping in either layout; those in the layout
            // not in use are noted, for the plan to move them.
            match bookkeeping(rel) {
                None => {}
                Some(Bookkeeping::Sidecar { layout, signs }) if layout != kept_in => {
                    misplaced.push(RelPath::from_vec(super::names::decode(signs)));
                    continue;
                }
                Some(_) => continue,
            }
            // A "folder" marker object (`dir/`) stands for a directory.
            let (rel, is_dir) = match rel.strip_suffix('/') {
                Some(dir) => (dir, true),
                None => (rel, false),
            };
            let path = RelPath::from_vec(super::names::decode(rel));
            if !path.is_contained() {
                issues.push(ScanIssue {
                    path,
                    kind: ScanIssueKind::UnsafeKey(format!("{}{}", store.prefix(), object.rel_key)),
                });
                continue;
            }
            // Keys of a page come in order, most below the same directory
            // as the one before: that directory is known to pass the filter
            // and to be implied already, so nothing is asked of it again.
            let parent_bytes = path
                .as_bytes()
                .iter()
                .rposition(|&b| b == b'/')
                .map(|end| &path.as_bytes()[..end]);
            let known_parent = parent_bytes.is_some() && parent_bytes == last_parent.as_deref();
            if !known_parent && !ancestors.parents_included(&path) {
                continue;
            }
            if !filter.includes(&path, is_dir) {
                continue;
            }
            if !known_parent {
                let mut parent = path.parent();
                while let Some(dir) = parent {
                    parent = dir.parent();
                    if !dirs.insert(dir.clone()) {
                        break;
                    }
                    // In the run of the page that implies it (it sorts just
                    // before the keys below it), not in one run of all
                    // directories that would overlap every page.
                    entries.push(implied_dir(dir));
                }
                last_parent = parent_bytes.map(<[u8]>::to_vec);
            }
            if is_dir {
                if dirs.insert(path.clone()) {
                    entries.push(implied_dir(path));
                }
                continue;
            }
            let listed_link = object.meta.as_ref().and_then(|m| m.link_target.clone());
            if listed_link.is_some() && !options.symlinks {
                // As on a local disk: links travel with -a only.
                issues.push(ScanIssue {
                    path,
                    kind: ScanIssueKind::SkippedSymlink,
                });
                continue;
            }
            // The mode, where the listing carries it (SFTP; metadata -a wrote).
            let mode = object.meta.as_ref().and_then(|m| m.mode).unwrap_or(0);
            let mut entry = Entry::file(object.size, object.mtime_ns, mode);
            if let Some(version) = object.version {
                entry.set_etag(version);
            }
            entry.set_sums(super::object::with_recorded_blake3(
                object.sums,
                object.meta.as_ref(),
            ));
            counter.add(object.size);
            if object.size == 0 && options.symlinks {
                match object.meta {
                    // The listing carried the metadata: no HEAD needed.
                    Some(meta) => {
                        if let Some(target) = meta.link_target {
                            set_link(&mut entry, target, meta.mtime_ns);
                        }
                    }
                    None => empty_objects.push(ManifestEntry {
                        path: path.clone(),
                        entry: entry.clone(),
                    }),
                }
            }
            listed += 1;
            entries.push(ManifestEntry { path, entry });
        }
        // A page is one stretch of keys no other page overlaps: as a run of
        // its own, the final merge moves it across in whole blocks.
        entries.end_run();
    })
    .await?;
    // With -a, an empty object may be a symbolic link stored by HugeSync: only
    // its metadata says so. Empty objects are rare, so they alone are HEADed.
    let mut links = Vec::new();
    for mut empty in empty_objects {
        if let Some(head) = store.head(&store.key_of(&empty.path)).await?
            && let Some(target) = head.meta.link_target
        {
            set_link(&mut empty.entry, target, head.meta.mtime_ns);
            links.push(empty);
        }
    }
    let has_entries = listed > 0 || !dirs.is_empty();
    drop(dirs);
    let root_exists = has_entries || store.root_exists().await?;
    let mut manifest = entries.finish(Vec::new(), root_exists);
    manifest.replace(links);
    if !misplaced.is_empty() {
        misplaced.sort_unstable();
        misplaced.dedup();
        manifest.set_misplaced_sidecars(MisplacedSidecars {
            layout: kept_in.other(),
            paths: misplaced,
        });
    }
    Ok(Listing {
        manifest,
        issues,
        leftovers,
    })
}

/// A directory the keys imply: it has no attributes of its own.
fn implied_dir(path: RelPath) -> ManifestEntry {
    ManifestEntry {
        path,
        entry: Entry {
            kind: EntryKind::Dir,
            ..Entry::file(0, 0, 0)
        },
    }
}

pub(crate) fn set_link(entry: &mut Entry, target: RelPath, mtime_ns: Option<i64>) {
    entry.kind = EntryKind::Symlink;
    entry.extra.get_or_insert_with(Default::default).link_target = Some(target);
    if let Some(mtime) = mtime_ns {
        entry.mtime_ns = mtime;
    }
}

/// Describes the object at `path` now, or `None`.
pub async fn head_path(
    store: &dyn ObjectStore,
    path: &RelPath,
) -> Result<Option<Entry>, StorageError> {
    Ok(store
        .head(&store.key_of(path))
        .await?
        .map(|head| head.entry()))
}

/// Describes the object at `path` now as a scan's listing would (a link's
/// time is the one its metadata keeps), or `None`.
pub async fn head_as_listed(
    store: &dyn ObjectStore,
    path: &RelPath,
) -> Result<Option<Entry>, StorageError> {
    let Some(head) = store.head(&store.key_of(path)).await? else {
        return Ok(None);
    };
    let mut entry = head.entry();
    if entry.kind == EntryKind::Symlink
        && let Some(target) = head.meta.link_target.clone()
    {
        set_link(&mut entry, target, head.meta.mtime_ns);
    }
    Ok(Some(entry))
}

/// Deletes the object at `path` and its signature sidecar — also the one
/// listed in `misplaced`, a layout the store no longer keeps sidecars in.
pub async fn delete_path(
    store: &dyn ObjectStore,
    path: &RelPath,
    misplaced: Option<super::sidecars::SidecarLayout>,
) -> Result<(), StorageError> {
    let mut keys = vec![store.key_of(path), store.sidecar_key_of(path)];
    if let Some(layout) = misplaced {
        keys.push(store.sidecar_key_in(path, layout));
    }
    store.delete_keys(&keys).await
}

fn stalled(target: &str, limit: std::time::Duration) -> StorageError {
    StorageError::Interrupted {
        target: target.to_string(),
        message: format!("no bytes for {}", humantime::format_duration(limit)),
    }
}

/// Reads a body whole, up to `limit` bytes, giving up when no bytes come for
/// `stall`. `None` when the body is longer than `limit`.
async fn collect_body(
    mut body: ByteStream,
    limit: u64,
    target: &str,
    stall: std::time::Duration,
) -> Result<Option<Bytes>, StorageError> {
    let mut bytes = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(stall, body.next()).await {
            Err(_) => return Err(stalled(target, stall)),
            Ok(None) => return Ok(Some(bytes.freeze())),
            Ok(Some(Ok(chunk))) => {
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Ok(None);
                }
                bytes.extend_from_slice(&chunk);
                crate::bandwidth::take(chunk.len()).await;
            }
            Ok(Some(Err(e))) => return Err(e),
        }
    }
}

/// Reads `len` bytes from `start` into memory (callers bound `len`), pinned
/// to `version`: [`read_range_into`] a buffer of that size.
pub async fn read_range(
    store: &dyn ObjectStore,
    key: &str,
    start: u64,
    len: u64,
    version: Option<&str>,
) -> Result<Bytes, StorageError> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    read_range_into(store, key, start, len, version, |_, piece| {
        bytes.extend_from_slice(piece);
        Ok(())
    })
    .await?;
    Ok(Bytes::from(bytes))
}

/// Reads `len` bytes from `start`, pinned to `version`, handing each piece
/// to `take` with its offset as it arrives: nothing is held in memory. A
/// body that stalls or ends early is asked for again from where it stopped,
/// so each byte is handed over once, in order.
pub async fn read_range_into<F>(
    store: &dyn ObjectStore,
    key: &str,
    start: u64,
    len: u64,
    version: Option<&str>,
    take: F,
) -> Result<(), StorageError>
where
    F: FnMut(u64, &[u8]) -> Result<(), StorageError>,
{
    if len == 0 {
        return Ok(());
    }
    let url = store.url_of(key);
    let policy = store.retry();
    // Bytes handed over so far, kept across attempts.
    let state = std::sync::Mutex::new((0u64, take));
    let got = || state.lock().unwrap_or_else(|e| e.into_inner()).0;
    policy
        .run(&url, Budget::Unbounded, || async {
            let stall = policy.stall_timeout;
            let from = got();
            if from == len {
                // Every byte came before the connection failed.
                return Ok(());
            }
            let mut body = tokio::time::timeout(
                stall,
                store.open_read(key, Some((start + from, len - from)), version),
            )
            .await
            .map_err(|_| stalled(&url, stall))??;
            loop {
                let chunk = match tokio::time::timeout(stall, body.next()).await {
                    Err(_) => return Err(stalled(&url, stall)),
                    Ok(None) => break,
                    Ok(Some(chunk)) => chunk?,
                };
                {
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    let (got, take) = &mut *state;
                    if *got + chunk.len() as u64 > len {
                        return Err(StorageError::Interrupted {
                            target: url.clone(),
                            message: format!("asked for {len} bytes at {start}, got more"),
                        });
                    }
                    take(start + *got, &chunk)?;
                    *got += chunk.len() as u64;
                }
                crate::bandwidth::take(chunk.len()).await;
            }
            match got() {
                got if got == len => Ok(()),
                got => Err(StorageError::Interrupted {
                    target: url.clone(),
                    message: format!("asked for {len} bytes at {start}, got {got}"),
                }),
            }
        })
        .await
}

/// Reads a small object whole (a sidecar), refusing to hold more than `limit`
/// bytes of it in memory.
pub async fn read_small(
    store: &dyn ObjectStore,
    key: &str,
    limit: u64,
) -> Result<SmallObject, StorageError> {
    let url = store.url_of(key);
    let policy = store.retry();
    let result = policy
        .run(&url, Budget::Quick, || async {
            let body = store.open_read(key, None, None).await?;
            collect_body(body, limit, &url, policy.stall_timeout).await
        })
        .await;
    match result {
        Ok(Some(bytes)) => Ok(SmallObject::Bytes(bytes)),
        Ok(None) => Ok(SmallObject::TooLarge),
        Err(StorageError::Remote {
            kind: super::RemoteErrorKind::NotFound,
            ..
        }) => Ok(SmallObject::Missing),
        Err(other) => Err(other),
    }
}

/// What [`read_small`] found.
#[derive(Debug)]
pub enum SmallObject {
    Bytes(Bytes),
    Missing,
    TooLarge,
}

/// The object's bytes as a stream that survives interruptions: when the body
/// fails or stalls, the rest is asked for again (a ranged GET from where it
/// stopped, pinned to `version` so a replaced object is never mixed in),
/// within the store's retry policy.
pub fn read_object(
    store: Arc<dyn ObjectStore>,
    key: &str,
    size: u64,
    version: Option<&str>,
) -> impl futures::Stream<Item = Result<Bytes, StorageError>> + Send + 'static {
    struct Reader {
        store: Arc<dyn ObjectStore>,
        key: String,
        version: Option<String>,
        size: u64,
        offset: u64,
        body: Option<ByteStream>,
        failures: u32,
    }
    let reader = Reader {
        store,
        key: key.to_string(),
        version: version.map(str::to_string),
        size,
        offset: 0,
        body: None,
        failures: 0,
    };
    futures::stream::try_unfold(reader, |mut r| async move {
        let policy = r.store.retry().clone();
        let url = r.store.url_of(&r.key);
        loop {
            if r.offset >= r.size {
                return Ok(None);
            }
            let step = async {
                if r.body.is_none() {
                    // Whole at first (a store may check a whole object's
                    // bytes against its checksum as they stream), ranged
                    // from where a cut-off body stopped.
                    let range = (r.offset > 0).then(|| (r.offset, r.size - r.offset));
                    let body = r
                        .store
                        .open_read(&r.key, range, r.version.as_deref())
                        .await?;
                    r.body = Some(body);
                }
                match r.body.as_mut() {
                    Some(body) => body.next().await.transpose(),
                    None => Ok(None),
                }
            };
            let result = tokio::time::timeout(policy.stall_timeout, step)
                .await
                .unwrap_or_else(|_| Err(stalled(&url, policy.stall_timeout)));
            match result {
                Ok(Some(chunk)) => {
                    r.offset += chunk.len() as u64;
                    r.failures = 0;
                    crate::bandwidth::take(chunk.len()).await;
                    return Ok(Some((chunk, r)));
                }
                Ok(None) => {
                    return Err(StorageError::Transfer {
                        target: url,
                        message: format!("the object ended at {} of {} bytes", r.offset, r.size),
                    });
                }
                Err(error) if error.is_retryable() && r.failures < policy.retries => {
                    r.body = None;
                    let delay = policy.delay(r.failures);
                    r.failures += 1;
                    tracing::info!(
                        "{error}; resuming at byte {} in {} ms",
                        r.offset,
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    })
}

/// Range per server-side part copy for objects over the single-copy limit.
pub(crate) const COPY_PART: u64 = 512 * 1024 * 1024;

/// Copies the object at `from` to `to` in the same store, server-side: one
/// copy up to the store's limit, beyond it a staged object of range copies.
/// Pinned to `version`: a replaced source fails the copy.
/// Where the pieces of files cut across shards wait for `finalize`, below a
/// destination's root (`sync::pieces`). Listings skip it.
pub const SPLIT_DIR: &str = ".hugesync-split/";

/// Makes the object `to` from whole objects `sources` (key, size), in order,
/// server-side: part copies of at most `COPY_PART` where the store copies
/// ranges, whole sources where it composes objects. Aborted on any error.
pub async fn assemble(
    store: &dyn ObjectStore,
    sources: &[(String, u64)],
    to: &str,
    meta: &super::ObjectMeta,
    expect: super::Expect<'_>,
) -> Result<String, StorageError> {
    use super::object::{CopyRange, CopySource};
    let limits = *store.limits();
    let (assembly, copier) = (store.need_staged()?, store.need_staged_copies()?);
    let upload = assembly.begin_staged(to, meta).await?;
    let staged = async {
        let mut parts = Vec::new();
        let mut at = 0u64;
        for (key, size) in sources {
            let source = CopySource {
                store,
                key,
                version: None,
            };
            let step = if limits.range_copy() {
                COPY_PART.min(limits.max_part)
            } else {
                (*size).max(1)
            };
            let mut start = 0;
            while start < *size || (*size == 0 && start == 0) {
                let len = step.min(size - start);
                let range = CopyRange {
                    start,
                    len,
                    expected_md5: None,
                    expected_crc32c: None,
                };
                let number = parts.len() as u32 + 1;
                parts.push(
                    copier
                        .stage_copy(&upload, number, at + start, source, range)
                        .await?,
                );
                start += len.max(1);
            }
            at += size;
        }
        assembly.commit_staged(&upload, &parts, meta, expect).await
    }
    .await;
    if staged.is_err() {
        let _ = assembly.abort_staged(&upload).await;
    }
    staged
}

pub async fn copy_within(
    store: &dyn ObjectStore,
    from: &str,
    to: &str,
    size: u64,
    version: Option<&str>,
) -> Result<(), StorageError> {
    use super::object::{CopyRange, CopySource};
    let source = CopySource {
        store,
        key: from,
        version,
    };
    let limits = *store.limits();
    let (Some(assembly), Some(copier)) = (store.staged(), store.staged_copies()) else {
        store
            .copy_object(source, to, None, super::Expect::Any)
            .await?;
        return Ok(());
    };
    if size <= limits.max_single_copy || !limits.range_copy() {
        store
            .copy_object(source, to, None, super::Expect::Any)
            .await?;
        return Ok(());
    }
    let meta = store
        .head(from)
        .await?
        .map(|head| head.meta)
        .unwrap_or_default();
    let part = COPY_PART
        .min(limits.max_part)
        .max(size.div_ceil(limits.max_parts as u64));
    let upload = assembly.begin_staged(to, &meta).await?;
    let staged = async {
        let mut parts = Vec::new();
        for (i, start) in (0..size).step_by(part as usize).enumerate() {
            let range = CopyRange {
                start,
                len: part.min(size - start),
                expected_md5: None,
                expected_crc32c: None,
            };
            parts.push(
                copier
                    .stage_copy(&upload, i as u32 + 1, start, source, range)
                    .await?,
            );
        }
        assembly
            .commit_staged(&upload, &parts, &meta, super::Expect::Any)
            .await
    }
    .await;
    if staged.is_err() {
        let _ = assembly.abort_staged(&upload).await;
    }
    staged.map(|_| ())
}
