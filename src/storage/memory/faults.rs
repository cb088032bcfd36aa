//! A store wrapper that adds what networks do to requests: latency, and
//! faults armed for the next requests of a kind — a reset before or after
//! the request is made, a 503, a body that stalls, someone else writing the
//! key first. It wraps any store and hands out the same families, so the
//! engine's handling of each fault is tested without a server.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;

use super::lock;
use crate::storage::body::{BodySource, BodySums};
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{
    ByteStream, CopyRange, CopySource, Expect, ListPage, ListQuery, ObjectHead, ObjectStore,
    PendingUpload, StagedCopies, StagedObjects, StagedPart, StagedUpload, StoreInfo, StreamAck,
    StreamEnd, StreamUpload, UploadStreams,
};
use crate::storage::{RemoteErrorKind, SharedStore, StorageError};

/// Which requests a fault waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Any,
    List,
    Head,
    Read,
    /// PUT, copies, metadata, staged parts and stream pieces: writes.
    Write,
    Commit,
    Delete,
}

/// What happens to the request a fault meets.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The connection resets before the request reaches the store.
    ResetBefore,
    /// The store does the request; the answer is lost.
    ResetAfter,
    /// The store is busy (503): nothing is done.
    Unavailable,
    /// A read's body stops after this many bytes and never goes on.
    StallAfter(u64),
    /// Someone else writes these bytes at the request's key just before it.
    ConcurrentWrite(bytes::Bytes),
    /// A read's body arrives with the byte at this offset of it flipped.
    Damage(u64),
}

/// A store with latency and armed faults.
pub struct Faulty {
    inner: SharedStore,
    latency: Duration,
    armed: Mutex<VecDeque<(Request, Fault)>>,
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faulty")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Faulty {
    pub fn new(inner: SharedStore, latency: Duration) -> Faulty {
        Faulty {
            inner,
            latency,
            armed: Mutex::default(),
        }
    }

    /// Arms `fault` for the next request of kind `on`.
    pub fn arm(&self, on: Request, fault: Fault) {
        lock(&self.armed).push_back((on, fault));
    }

    /// Whether every armed fault has met its request.
    pub fn spent(&self) -> bool {
        lock(&self.armed).is_empty()
    }

    /// Waits the latency, and takes the first fault armed for `request`.
    async fn meet(&self, request: Request) -> Option<Fault> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let mut armed = lock(&self.armed);
        let at = armed
            .iter()
            .position(|(on, _)| *on == request || *on == Request::Any)?;
        armed.remove(at).map(|(_, fault)| fault)
    }

    fn failure(&self, key: &str, kind: RemoteErrorKind, message: &str) -> StorageError {
        StorageError::Remote {
            op: "cannot reach",
            hints: self.inner.hints(),
            kind,
            target: self.inner.url_of(key),
            message: message.to_string(),
        }
    }

    /// Runs a request on the inner store as a store client does: each
    /// attempt (`attempt` makes it) meets the next fault armed for its
    /// kind, and is retried within the store's policy as a network store
    /// retries its requests.
    async fn run<T, F, Fut>(
        &self,
        kind: Request,
        key: &str,
        mut attempt: F,
    ) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StorageError>>,
    {
        let url = self.inner.url_of(key);
        let policy = self.inner.retry();
        policy
            .run(&url, crate::retry::Budget::Unbounded, || {
                let request = attempt();
                async move {
                    match self.meet(kind).await {
                        None | Some(Fault::StallAfter(_) | Fault::Damage(_)) => request.await,
                        Some(Fault::ResetBefore) => {
                            Err(self.failure(key, RemoteErrorKind::Network, "connection reset"))
                        }
                        Some(Fault::Unavailable) => {
                            Err(self.failure(key, RemoteErrorKind::Unavailable, "503 Slow Down"))
                        }
                        Some(Fault::ResetAfter) => {
                            let _ = request.await;
                            Err(self.failure(
                                key,
                                RemoteErrorKind::Network,
                                "connection reset after the request",
                            ))
                        }
                        Some(Fault::ConcurrentWrite(bytes)) => {
                            self.write_first(key, &bytes).await?;
                            request.await
                        }
                    }
                }
            })
            .await
    }

    /// Someone else's write of `bytes` at `key`.
    async fn write_first(&self, key: &str, bytes: &bytes::Bytes) -> Result<(), StorageError> {
        let len = bytes.len() as u64;
        self.inner
            .put(
                key,
                BodySource::Memory(bytes),
                len,
                &ObjectMeta::default(),
                BodySums::NONE,
                Expect::Any,
            )
            .await
            .map(|_| ())
    }
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    fn info(&self) -> &StoreInfo {
        self.inner.info()
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        self.inner.staged().map(|_| self as &dyn StagedObjects)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        self.inner
            .staged_copies()
            .map(|_| self as &dyn StagedCopies)
    }

    fn streams(&self) -> Option<&dyn UploadStreams> {
        self.inner.streams().map(|_| self as &dyn UploadStreams)
    }

    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let prefix = self.inner.prefix().to_string();
        self.run(Request::List, &prefix, || {
            self.inner.list_page(query, token.clone())
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.run(Request::Head, key, || self.inner.head(key)).await
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        match self.meet(Request::Read).await {
            Some(Fault::StallAfter(bytes)) => {
                let body = self.inner.open_read(key, range, version).await?;
                let mut left = bytes;
                let cut = body.flat_map(move |piece| {
                    let piece = match piece {
                        Ok(piece) => {
                            let keep = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                            left -= keep as u64;
                            Ok(piece.slice(..keep))
                        }
                        Err(e) => Err(e),
                    };
                    futures::stream::iter([piece])
                });
                // What was let through, then nothing, ever.
                let through: Vec<_> = cut.collect().await;
                Ok(futures::stream::iter(through)
                    .chain(futures::stream::pending())
                    .boxed())
            }
            Some(Fault::Damage(at)) => {
                let body = self.inner.open_read(key, range, version).await?;
                let mut whole: Vec<u8> = Vec::new();
                let pieces: Vec<_> = body.collect().await;
                for piece in pieces {
                    whole.extend_from_slice(&piece?);
                }
                if let Some(byte) = usize::try_from(at).ok().and_then(|at| whole.get_mut(at)) {
                    *byte ^= 0x20;
                }
                Ok(futures::stream::iter([Ok(bytes::Bytes::from(whole))]).boxed())
            }
            Some(Fault::ResetBefore) => {
                Err(self.failure(key, RemoteErrorKind::Network, "connection reset"))
            }
            Some(Fault::Unavailable) => {
                Err(self.failure(key, RemoteErrorKind::Unavailable, "503 Slow Down"))
            }
            Some(Fault::ResetAfter) => {
                // The body starts, then the connection drops.
                let mut body = self.inner.open_read(key, range, version).await?;
                let first = body.next().await;
                let failure =
                    self.failure(key, RemoteErrorKind::Network, "connection reset mid-body");
                Ok(futures::stream::iter(first.into_iter().chain([Err(failure)])).boxed())
            }
            Some(Fault::ConcurrentWrite(bytes)) => {
                let len = bytes.len() as u64;
                self.inner
                    .put(
                        key,
                        BodySource::Memory(&bytes),
                        len,
                        &ObjectMeta::default(),
                        BodySums::NONE,
                        Expect::Any,
                    )
                    .await?;
                self.inner.open_read(key, range, version).await
            }
            None => self.inner.open_read(key, range, version).await,
        }
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
        self.run(Request::Write, key, || {
            self.inner.put(key, body, len, meta, sums, expect)
        })
        .await
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        self.inner.copies_from(source)
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.run(Request::Write, key, || {
            self.inner.copy_object(source, key, meta, expect)
        })
        .await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.run(Request::Write, key, || {
            self.inner.set_metadata(key, meta, expect)
        })
        .await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        let first = keys.first().cloned().unwrap_or_default();
        self.run(Request::Delete, &first, || self.inner.delete_keys(keys))
            .await
    }
}

#[async_trait::async_trait]
impl StagedObjects for Faulty {
    async fn begin_staged(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        let staged = self.inner.need_staged()?;
        self.run(Request::Write, key, || staged.begin_staged(key, meta))
            .await
    }

    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        body: BodySource<'_>,
        len: u64,
        sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        let staged = self.inner.need_staged()?;
        self.run(Request::Write, &upload.key, || {
            staged.stage_bytes(upload, number, at, body, len, sums)
        })
        .await
    }

    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        let staged = self.inner.need_staged()?;
        self.run(Request::List, &upload.key, || staged.list_staged(upload))
            .await
    }

    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let staged = self.inner.need_staged()?;
        self.run(Request::Commit, &upload.key, || {
            staged.commit_staged(upload, parts, meta, expect)
        })
        .await
    }

    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        let staged = self.inner.need_staged()?;
        self.run(Request::Delete, &upload.key, || staged.abort_staged(upload))
            .await
    }

    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        let staged = self.inner.need_staged()?;
        let prefix = self.inner.prefix().to_string();
        self.run(Request::List, &prefix, || staged.list_pending())
            .await
    }
}

#[async_trait::async_trait]
impl StagedCopies for Faulty {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        let copies = self.inner.need_staged_copies()?;
        self.run(Request::Write, &upload.key, || {
            copies.stage_copy(upload, number, at, source, range)
        })
        .await
    }
}

#[async_trait::async_trait]
impl UploadStreams for Faulty {
    async fn begin_stream(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        let streams = self.inner.need_streams()?;
        self.run(Request::Write, key, || {
            streams.begin_stream(key, meta, expect)
        })
        .await
    }

    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        recorded: u64,
    ) -> Result<u64, StorageError> {
        let streams = self.inner.need_streams()?;
        self.run(Request::Head, &upload.key, || {
            streams.stream_persisted(upload, recorded)
        })
        .await
    }

    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        let streams = self.inner.need_streams()?;
        self.run(Request::Write, &upload.key, || {
            streams.stream_bytes(upload, offset, body, len, end)
        })
        .await
    }

    async fn abort_stream(&self, upload: &StreamUpload) -> Result<(), StorageError> {
        let streams = self.inner.need_streams()?;
        self.run(Request::Delete, &upload.key, || {
            streams.abort_stream(upload)
        })
        .await
    }
}
