//! Request bodies that report their progress: each piece handed to the HTTP
//! client marks the request's [`Activity`], so the retry layer can tell a slow
//! upload (still moving) from a stalled one (nothing moved for the stall
//! timeout) without a time limit that grows with the body.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http_body::{Body, Frame, SizeHint};

use crate::retry::Activity;
use crate::storage::StorageError;

/// Pieces handed to the client at a time: small enough to notice a stall
/// early, large enough to cost nothing.
const PIECE: usize = 256 * 1024;

type Pieces = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + Sync>>;

/// A request body that marks its request's activity with every piece; an
/// `http_body::Body`, so any HTTP client can send it.
pub struct WatchedBody {
    pieces: Pieces,
    remaining: u64,
    activity: Arc<Activity>,
}

impl WatchedBody {
    /// The same body between `head` and `tail` (a multipart request's other
    /// parts around the media), still watched piece by piece.
    pub fn framed(self, head: Bytes, tail: Bytes) -> WatchedBody {
        use futures::StreamExt;
        let remaining = self.remaining + head.len() as u64 + tail.len() as u64;
        let pieces = futures::stream::iter([Ok(head)])
            .chain(self.pieces)
            .chain(futures::stream::iter([Ok(tail)]));
        WatchedBody {
            pieces: Box::pin(pieces),
            remaining,
            activity: self.activity,
        }
    }
}

impl WatchedBody {
    /// The pieces as a plain stream (for stores that are not HTTP), each
    /// still marking the activity as it is handed out.
    pub fn into_pieces(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        use futures::StreamExt;
        let activity = self.activity;
        self.pieces.inspect(move |_| activity.touch())
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.pieces.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(piece))) => {
                self.activity.touch();
                self.remaining = self.remaining.saturating_sub(piece.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn watched(pieces: Pieces, len: u64, activity: &Arc<Activity>) -> WatchedBody {
    WatchedBody {
        pieces,
        remaining: len,
        activity: activity.clone(),
    }
}

/// The MD5 of some bytes (sent as Content-MD5 where the store checks it).
pub fn md5_of(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}

/// Where a request body comes from; opened afresh for every attempt.
#[derive(Clone, Copy, Debug)]
pub enum BodySource<'a> {
    /// Bytes of a local file from `offset`, read as the client sends them.
    File { path: &'a Path, offset: u64 },
    /// Bytes held in memory, handed out piece by piece.
    Memory(&'a Bytes),
}

impl BodySource<'_> {
    /// A body of `len` bytes reporting its progress to `activity`, its pieces
    /// paced by the run's `--bwlimit` when there is one.
    pub async fn open(
        self,
        len: u64,
        activity: &Arc<Activity>,
    ) -> Result<WatchedBody, StorageError> {
        let body = self.open_unpaced(len, activity).await?;
        if crate::bandwidth::limit().is_none() {
            return Ok(body);
        }
        use futures::StreamExt;
        let paced = body.pieces.then(|piece| async move {
            if let Ok(bytes) = &piece {
                crate::bandwidth::take(bytes.len()).await;
            }
            piece
        });
        Ok(watched(Box::pin(paced), len, activity))
    }

    async fn open_unpaced(
        self,
        len: u64,
        activity: &Arc<Activity>,
    ) -> Result<WatchedBody, StorageError> {
        match self {
            BodySource::File { path, offset } => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let read_error = |e| StorageError::io("cannot read", path, e);
                let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
                file.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(read_error)?;
                let reader = tokio_util::io::ReaderStream::with_capacity(file.take(len), PIECE);
                Ok(watched(Box::pin(reader), len, activity))
            }
            BodySource::Memory(bytes) => {
                let size = bytes.len();
                let pieces: Vec<std::io::Result<Bytes>> = (0..size)
                    .step_by(PIECE)
                    .map(|at| Ok(bytes.slice(at..size.min(at + PIECE))))
                    .collect();
                Ok(watched(
                    Box::pin(futures::stream::iter(pieces)),
                    len,
                    activity,
                ))
            }
        }
    }
}
