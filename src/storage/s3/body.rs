//! Request bodies that report their progress: each piece handed to the HTTP
//! client marks the request's [`Activity`], so the retry layer can tell a slow
//! upload (still moving) from a stalled one (nothing moved for the stall
//! timeout) without a time limit that grows with the body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::Stream;
use http_body::{Body, Frame, SizeHint};

use crate::retry::Activity;

/// Pieces handed to the client at a time: small enough to notice a stall
/// early, large enough to cost nothing.
const PIECE: usize = 256 * 1024;

type Pieces = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + Sync>>;

struct WatchedBody {
    pieces: Pieces,
    remaining: u64,
    activity: Arc<Activity>,
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

fn watched(pieces: Pieces, len: u64, activity: &Arc<Activity>) -> ByteStream {
    ByteStream::from_body_1_x(WatchedBody {
        pieces,
        remaining: len,
        activity: activity.clone(),
    })
}

/// Bytes held in memory, handed out piece by piece.
pub(crate) fn from_bytes(bytes: &Bytes, activity: &Arc<Activity>) -> ByteStream {
    let len = bytes.len();
    let pieces: Vec<std::io::Result<Bytes>> = (0..len)
        .step_by(PIECE)
        .map(|at| Ok(bytes.slice(at..len.min(at + PIECE))))
        .collect();
    watched(
        Box::pin(futures::stream::iter(pieces)),
        len as u64,
        activity,
    )
}

/// `len` bytes of a file from `offset`, read as the client sends them.
pub(crate) async fn from_file(
    path: &std::path::Path,
    offset: u64,
    len: u64,
    activity: &Arc<Activity>,
) -> std::io::Result<ByteStream> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let reader = tokio_util::io::ReaderStream::with_capacity(file.take(len), PIECE);
    Ok(watched(Box::pin(reader), len, activity))
}
