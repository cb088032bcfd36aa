//! An object store held in this process's memory (`mem://NAME/prefix`, like
//! rclone's `:memory:` and object_store's `InMemory`): buckets live as long
//! as the process, shared by every store opened on the same name. Each
//! optional family can be switched off ([`MemoryOptions`]) so that the
//! engine's paths for stores without it are tested too; with
//! [`faults::Faulty`] it also carries latency and injected faults, for unit
//! tests and for simulations at sizes no emulator holds.

pub mod faults;
mod kind;
mod staged;
mod stream;

use crate::storage::body::BodySums;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use futures::StreamExt;

pub use kind::KIND;

use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::{
    ByteStream, ChecksumKind, CopySource, Expect, ListPage, ListQuery, ListSplit, ListedObject,
    ObjectHead, ObjectStore, RebuildCheck, StagedCopies, StagedObjects, Stitching, StoreId,
    StoreInfo, StoreLimits, UploadStreams,
};
use super::{RemoteErrorKind, StorageError, StoreHints};
use crate::retry::RetryPolicy;
use crate::storage::requests::RequestClass;
use crate::types::ContentSums;

/// What to tell a user whose request this store refused.
const HINTS: StoreHints = StoreHints {
    credentials: "nothing (an in-memory store has no credentials)",
    bucket: "bucket",
};

/// Limits shaped like S3's, without its 5 MiB part floor so that small
/// tests stage several parts.
pub static LIMITS: StoreLimits = StoreLimits {
    min_part: 1,
    max_part: 5 * 1024 * 1024 * 1024,
    max_parts: 10_000,
    max_single_put: 5 * 1024 * 1024 * 1024,
    max_single_copy: 5 * 1024 * 1024 * 1024,
    stitching: Stitching::Ranges,
    delete_batch: 1000,
    checksums: &[ChecksumKind::Md5],
    body_checksum: Some(ChecksumKind::Md5),
    keeps_metadata: true,
    cheap_range_copies: false,
    rebuild_check: RebuildCheck::ComparedBeforeCommit,
};

/// Which optional families a memory store has, and how it pages.
#[derive(Clone, Copy, Debug)]
pub struct MemoryOptions {
    pub staged: bool,
    pub staged_copies: bool,
    pub streams: bool,
    /// Keys per listing page.
    pub page_size: usize,
    /// How its listing may be split (ranges, as S3 and GCS; prefixes
    /// alone, as Azure; or whole).
    pub list_split: ListSplit,
    /// A delimited page also names the common prefixes of every key past it,
    /// as fake-gcs-server does (and does again on the next page).
    pub prefixes_past_the_page: bool,
    pub limits: &'static StoreLimits,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            staged: true,
            staged_copies: true,
            streams: false,
            page_size: 1000,
            list_split: ListSplit::Ranges { end_key: true },
            prefixes_past_the_page: false,
            limits: &LIMITS,
        }
    }
}

/// One object as the bucket holds it.
#[derive(Clone, Debug)]
struct Object {
    bytes: Bytes,
    meta: ObjectMeta,
    generation: u64,
    written_ns: i64,
    md5: [u8; 16],
}

/// A named bucket: its objects, and what is being staged or streamed into it.
#[derive(Default)]
pub struct Bucket {
    objects: Mutex<BTreeMap<String, Object>>,
    staged: Mutex<HashMap<String, staged::Staging>>,
    streams: Mutex<HashMap<String, stream::Streaming>>,
    generations: AtomicU64,
    /// Requests made, by every store on this bucket.
    requests: AtomicU64,
}

impl Bucket {
    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Requests made so far on this bucket.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The number of objects held.
    pub fn len(&self) -> usize {
        lock(&self.objects).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every bucket of the process, by name.
static BUCKETS: LazyLock<Mutex<HashMap<String, Arc<Bucket>>>> = LazyLock::new(Default::default);

/// The bucket of this name, made empty the first time it is asked for.
pub fn bucket(name: &str) -> Arc<Bucket> {
    lock(&BUCKETS).entry(name.to_string()).or_default().clone()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bucket and a prefix in this process's memory.
pub struct MemoryStore {
    bucket: Arc<Bucket>,
    info: StoreInfo,
    options: MemoryOptions,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("bucket", &self.info.bucket)
            .field("prefix", &self.info.prefix)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// The store on bucket `name` below `prefix` (empty, or ending in `/`).
    pub fn new(name: &str, prefix: &str, options: MemoryOptions, retry: &RetryPolicy) -> Self {
        MemoryStore {
            bucket: bucket(name),
            info: StoreInfo {
                kind: &KIND,
                bucket: name.to_string(),
                prefix: prefix.to_string(),
                id: StoreId {
                    endpoint: "memory".into(),
                    bucket: name.to_string(),
                },
                limits: options.limits,
                retry: retry.clone(),
                hints: &HINTS,
                page_size: u32::try_from(options.page_size).unwrap_or(u32::MAX),
                list_split: options.list_split,
                requests: std::sync::Arc::default(),
                // Set from the settings when the store is opened.
                sidecars: Default::default(),
            },
            options,
        }
    }

    /// The bucket this store is on.
    pub fn bucket_handle(&self) -> &Arc<Bucket> {
        &self.bucket
    }

    /// Counts one request: on the bucket (every store on it), and by class
    /// on this store (what the run screen and the summary show).
    fn counted(&self, class: RequestClass) {
        self.bucket.requests.fetch_add(1, Ordering::Relaxed);
        self.info.requests.add(class);
    }

    fn error(
        &self,
        op: &'static str,
        key: &str,
        kind: RemoteErrorKind,
        message: &str,
    ) -> StorageError {
        StorageError::Remote {
            op,
            hints: &HINTS,
            kind,
            target: self.url_of(key),
            message: message.to_string(),
        }
    }

    /// Refuses a write when the key does not hold what `expect` says.
    fn check_expect(
        &self,
        objects: &BTreeMap<String, Object>,
        key: &str,
        expect: Expect<'_>,
    ) -> Result<(), StorageError> {
        let found = objects.get(key).map(head_of);
        if expect.holds_for(found.as_ref()) {
            Ok(())
        } else {
            Err(self.error(
                "cannot write",
                key,
                RemoteErrorKind::PreconditionFailed,
                "the object is not the one expected",
            ))
        }
    }

    /// Stores `bytes` at `key` if `expect` holds: the new version.
    fn write(
        &self,
        key: &str,
        bytes: Bytes,
        meta: ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let mut objects = lock(&self.bucket.objects);
        self.check_expect(&objects, key, expect)?;
        let generation = self.bucket.next_generation();
        let md5 = super::body::md5_of(&bytes);
        objects.insert(
            key.to_string(),
            Object {
                bytes,
                meta,
                generation,
                written_ns: now_ns(),
                md5,
            },
        );
        Ok(generation.to_string())
    }

    /// The object at `key` if it is still `version` (any, when `None`).
    fn pinned(&self, key: &str, version: Option<&str>) -> Result<Object, StorageError> {
        let objects = lock(&self.bucket.objects);
        let object = objects.get(key).ok_or_else(|| {
            self.error(
                "cannot read",
                key,
                RemoteErrorKind::NotFound,
                "no such object",
            )
        })?;
        match version {
            Some(version) if !super::same_version(version, &object.generation.to_string()) => {
                Err(self.error(
                    "cannot read",
                    key,
                    RemoteErrorKind::PreconditionFailed,
                    "the object changed since it was listed",
                ))
            }
            _ => Ok(object.clone()),
        }
    }
}

fn head_of(object: &Object) -> ObjectHead {
    ObjectHead {
        size: object.bytes.len() as u64,
        mtime_ns: object.written_ns,
        version: Some(object.generation.to_string()),
        meta: object.meta.clone(),
        sums: ContentSums {
            md5: Some(object.md5),
            crc32c: Some(crc32c::crc32c(&object.bytes)),
            ..ContentSums::default()
        },
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The bytes of a body, read whole (`len` of them, or the source was cut).
async fn read_body(body: BodySource<'_>, len: u64, target: &str) -> Result<Bytes, StorageError> {
    let activity = Arc::new(crate::retry::Activity::default());
    let mut pieces = Box::pin(body.open(len, &activity).await?.into_pieces());
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(|e| StorageError::Transfer {
            target: target.to_string(),
            message: e.to_string(),
        })?;
        bytes.extend_from_slice(&piece);
    }
    if bytes.len() as u64 != len {
        return Err(StorageError::Transfer {
            target: target.to_string(),
            message: format!("the body had {} bytes, not {len}", bytes.len()),
        });
    }
    Ok(Bytes::from(bytes))
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        self.options.staged.then_some(self as &dyn StagedObjects)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        (self.options.staged && self.options.staged_copies).then_some(self as &dyn StagedCopies)
    }

    fn streams(&self) -> Option<&dyn UploadStreams> {
        self.options.streams.then_some(self as &dyn UploadStreams)
    }

    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        self.counted(RequestClass::List);
        let objects = lock(&self.bucket.objects);
        let store_prefix = self.info.prefix.as_str();
        let prefix = format!("{store_prefix}{}", query.prefix);
        // What this kind of store narrows by; the rest is the lister's.
        let (from, to) = match self.info.list_split {
            ListSplit::Ranges { end_key } => (
                query.from.as_deref(),
                query.to.as_deref().filter(|_| end_key),
            ),
            ListSplit::Prefixes | ListSplit::Whole => (None, None),
        };
        let to = to.map(|to| format!("{store_prefix}{to}"));
        // The token is the key the next page starts at.
        let mut start = match (token, from) {
            (Some(next), _) => next,
            (None, Some(from)) => format!("{store_prefix}{from}").max(prefix.clone()),
            (None, None) => prefix.clone(),
        };
        let delimited = query.delimited && self.info.list_split != ListSplit::Whole;
        // The common prefix a delimited listing rolls a key (relative) up into.
        let rolled_up = |rel: &'_ str| -> Option<String> {
            let slash = rel[query.prefix.len()..].find('/')?;
            Some(rel[..query.prefix.len() + slash + 1].to_string())
        };
        let page_size = self.options.page_size.max(1);
        let mut page = ListPage::default();
        let mut listed = 0;
        'pages: loop {
            let range = (
                std::ops::Bound::Included(start.as_str()),
                std::ops::Bound::Unbounded,
            );
            for (key, object) in objects.range::<str, _>(range) {
                if !key.starts_with(&prefix) || to.as_deref().is_some_and(|to| key.as_str() >= to) {
                    break 'pages;
                }
                if listed == page_size {
                    page.next = Some(key.clone());
                    break 'pages;
                }
                listed += 1;
                let rel = &key[store_prefix.len()..];
                if let Some(common) = delimited.then(|| rolled_up(rel)).flatten() {
                    // Every key below this common prefix is rolled up into
                    // it: the listing goes on after the last of them.
                    start = format!("{store_prefix}{}0", &common[..common.len() - 1]);
                    page.prefixes.push(common);
                    continue 'pages;
                }
                let head = head_of(object);
                page.objects.push(ListedObject {
                    rel_key: rel.to_string(),
                    size: head.size,
                    mtime_ns: head.mtime_ns,
                    version: head.version,
                    meta: Some(head.meta),
                    sums: head.sums,
                });
            }
            break;
        }
        if let (true, true, Some(next)) =
            (delimited, self.options.prefixes_past_the_page, &page.next)
        {
            let range = (
                std::ops::Bound::Included(next.as_str()),
                std::ops::Bound::Unbounded,
            );
            for key in objects.range::<str, _>(range).map(|(key, _)| key) {
                if !key.starts_with(&prefix) || to.as_deref().is_some_and(|to| key.as_str() >= to) {
                    break;
                }
                if let Some(common) = rolled_up(&key[store_prefix.len()..])
                    && page.prefixes.last() != Some(&common)
                {
                    page.prefixes.push(common);
                }
            }
        }
        Ok(page)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.counted(RequestClass::Get);
        Ok(lock(&self.bucket.objects).get(key).map(head_of))
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        self.counted(RequestClass::Get);
        let object = self.pinned(key, version)?;
        let size = object.bytes.len() as u64;
        let (start, len) = range.unwrap_or((0, size));
        if start.saturating_add(len) > size {
            return Err(self.error(
                "cannot read",
                key,
                RemoteErrorKind::Rejected,
                "the range is past the object's end",
            ));
        }
        let bytes = object.bytes.slice(start as usize..(start + len) as usize);
        // Handed out in pieces, as a network body would be.
        let pieces: Vec<Result<Bytes, StorageError>> = (0..bytes.len())
            .step_by(256 * 1024)
            .map(|at| Ok(bytes.slice(at..bytes.len().min(at + 256 * 1024))))
            .collect();
        Ok(futures::stream::iter(pieces).boxed())
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        sums: BodySums,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let md5 = sums.md5;
        self.counted(RequestClass::Put);
        if len > self.info.limits.max_single_put {
            return Err(self.error(
                "cannot write",
                key,
                RemoteErrorKind::Rejected,
                "the object is larger than one request takes",
            ));
        }
        let bytes = read_body(body, len, &self.url_of(key)).await?;
        if md5.is_some_and(|md5| md5 != super::body::md5_of(&bytes)) {
            return Err(self.error(
                "cannot write",
                key,
                RemoteErrorKind::ChecksumMismatch,
                "the body's MD5 is not the one sent with it",
            ));
        }
        self.write(key, bytes, meta.clone(), expect)
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        // Any bucket of this process.
        source.info().kind.scheme == self.info.kind.scheme
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.counted(RequestClass::Copy);
        if !self.copies_from(source.store) {
            return Err(self.error(
                "cannot copy",
                key,
                RemoteErrorKind::SourceUnreachable,
                "only objects in this process's memory can be copied here",
            ));
        }
        let from = bucket(&source.store.info().bucket);
        let object = {
            let objects = lock(&from.objects);
            let object = objects.get(source.key).cloned().ok_or_else(|| {
                self.error(
                    "cannot copy",
                    source.key,
                    RemoteErrorKind::NotFound,
                    "no such object",
                )
            })?;
            if source
                .version
                .is_some_and(|v| !super::same_version(v, &object.generation.to_string()))
            {
                return Err(self.error(
                    "cannot copy",
                    source.key,
                    RemoteErrorKind::PreconditionFailed,
                    "the source changed since it was listed",
                ));
            }
            object
        };
        let meta = meta.cloned().unwrap_or(object.meta);
        self.write(key, object.bytes, meta, expect)
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.counted(RequestClass::Copy);
        let bytes = self.pinned(key, None)?.bytes;
        self.write(key, bytes, meta.clone(), expect)
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        for batch in keys.chunks(self.info.limits.delete_batch.max(1)) {
            self.counted(RequestClass::Delete);
            let mut objects = lock(&self.bucket.objects);
            for key in batch {
                objects.remove(key);
            }
        }
        Ok(())
    }
}
