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

/// The CRC64NVME of some bytes (S3's full-object checksum): a tenth of
/// MD5's cost per byte, by carry-less multiplication.
pub fn crc64nvme_of(bytes: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes)
}

/// What an upload's bodies carry for the server to check (`--upload-checksum`,
/// s3:// and az://).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyChecksum {
    /// CRC-64/NVME on every body: S3's `x-amz-checksum-crc64nvme` (the
    /// upload made a full-object CRC64NVME one: S3's own default), Azure's
    /// `x-ms-content-crc64` (Azure Storage's CRC64 is the same function).
    /// A tenth of MD5's CPU.
    #[default]
    Crc64Nvme,
    /// Content-MD5, for services that lack the newer checksums.
    Md5,
}

impl BodyChecksum {
    pub const NAMES: &'static str = "crc64nvme, md5";

    pub fn parse(text: &str) -> Option<BodyChecksum> {
        match text.trim().to_ascii_lowercase().as_str() {
            "crc64nvme" => Some(BodyChecksum::Crc64Nvme),
            "md5" => Some(BodyChecksum::Md5),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BodyChecksum::Crc64Nvme => "crc64nvme",
            BodyChecksum::Md5 => "md5",
        }
    }
}

/// Checks the CRC-64/NVME a server says it computed of a body against the one
/// sent (`echoed`: what it named, `None` when it named none, `Some(None)`
/// when it named something unreadable). A server that names none is taken
/// not to check it (an S3-compatible service or an emulator without CRC64):
/// the upload stops and says how to send MD5 instead.
pub(crate) fn check_echoed_crc64(
    sent: Option<u64>,
    echoed: Option<Option<u64>>,
    target: &str,
) -> Result<Option<u64>, super::StorageError> {
    let Some(sent) = sent else { return Ok(None) };
    match echoed {
        Some(Some(received)) if received == sent => Ok(Some(received)),
        Some(_) => Err(super::StorageError::Verification {
            target: target.to_string(),
            message: "the server's CRC64 of what it received differs from what was sent".into(),
        }),
        None => Err(super::StorageError::Verification {
            target: target.to_string(),
            message: "the server did not confirm the body's CRC64, so it may not check it: \
                      use --upload-checksum md5 (config upload_checksum) for this endpoint"
                .into(),
        }),
    }
}

/// Checksums of a request body, taken by the caller in the pass that read
/// its bytes, for the store to send where its server checks them (which one
/// a store wants: `StoreLimits::body_checksum`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodySums {
    pub md5: Option<[u8; 16]>,
    pub crc64nvme: Option<u64>,
    pub crc32c: Option<u32>,
}

impl BodySums {
    /// No checksum: the store sends the body as it is.
    pub const NONE: BodySums = BodySums {
        md5: None,
        crc64nvme: None,
        crc32c: None,
    };

    /// The sums `kind` asks for, of `bytes`.
    pub fn of(bytes: &[u8], kind: Option<super::limits::ChecksumKind>) -> BodySums {
        use super::limits::ChecksumKind;
        BodySums {
            md5: (kind == Some(ChecksumKind::Md5)).then(|| md5_of(bytes)),
            crc64nvme: (kind == Some(ChecksumKind::Crc64Nvme)).then(|| crc64nvme_of(bytes)),
            crc32c: (kind == Some(ChecksumKind::Crc32c)).then(|| crc32c::crc32c(bytes)),
        }
    }

    pub fn md5(md5: Option<[u8; 16]>) -> BodySums {
        BodySums {
            md5,
            ..BodySums::NONE
        }
    }
}

/// [`BodySums`] of bytes fed a piece at a time.
pub struct BodyHasher {
    md5: Option<md5::Md5>,
    crc64nvme: Option<crc_fast::Digest>,
    crc32c: Option<u32>,
}

impl BodyHasher {
    /// A hasher of the sum `kind` asks for (none: it computes nothing).
    pub fn new(kind: Option<super::limits::ChecksumKind>) -> BodyHasher {
        use super::limits::ChecksumKind;
        use md5::Digest;
        BodyHasher {
            md5: (kind == Some(ChecksumKind::Md5)).then(md5::Md5::new),
            crc64nvme: (kind == Some(ChecksumKind::Crc64Nvme))
                .then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme)),
            crc32c: (kind == Some(ChecksumKind::Crc32c)).then_some(0),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        use md5::Digest;
        if let Some(md5) = self.md5.as_mut() {
            md5.update(bytes);
        }
        if let Some(crc) = self.crc64nvme.as_mut() {
            crc.update(bytes);
        }
        if let Some(crc) = self.crc32c.as_mut() {
            *crc = crc32c::crc32c_append(*crc, bytes);
        }
    }

    pub fn finish(self) -> BodySums {
        use md5::Digest;
        BodySums {
            md5: self.md5.map(|md5| md5.finalize().into()),
            crc64nvme: self.crc64nvme.map(|crc| crc.finalize()),
            crc32c: self.crc32c,
        }
    }
}

/// The sums `kind` asks for of `len` bytes of `file` from `offset`, read a
/// mebibyte at a time.
pub fn sums_of_range(
    file: &std::fs::File,
    path: &Path,
    offset: u64,
    len: u64,
    kind: Option<super::limits::ChecksumKind>,
) -> Result<BodySums, StorageError> {
    use std::os::unix::fs::FileExt;
    let mut hasher = BodyHasher::new(kind);
    let mut buffer = vec![0u8; (1 << 20).min(len.max(1) as usize)];
    let mut done = 0;
    while done < len {
        let n = (buffer.len() as u64).min(len - done) as usize;
        file.read_exact_at(&mut buffer[..n], offset + done)
            .map_err(|e| StorageError::io("cannot read", path, e))?;
        hasher.update(&buffer[..n]);
        done += n as u64;
    }
    Ok(hasher.finish())
}

/// Where a request body comes from; opened afresh for every attempt.
#[derive(Clone, Copy, Debug)]
pub enum BodySource<'a> {
    /// Bytes of a local file from `offset`, read as the client sends them.
    File { path: &'a Path, offset: u64 },
    /// Bytes held in memory, handed out piece by piece.
    Memory(&'a Bytes),
    /// A memory map of the file's bytes, handed out piece by piece straight
    /// from the page cache; each piece's pages are given back once the client
    /// has sent it, so a request holds a few pieces of its body, not all.
    Mapped(&'a Arc<super::local::MappedFile>),
}

/// A piece of a mapped body; its pages are released when the client drops it.
struct MappedPiece {
    map: Arc<super::local::MappedFile>,
    at: usize,
    len: usize,
}

impl AsRef<[u8]> for MappedPiece {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.at..self.at + self.len]
    }
}

impl Drop for MappedPiece {
    fn drop(&mut self) {
        self.map.release(self.at, self.len);
    }
}

impl BodySource<'_> {
    /// The sums `kind` asks for of the body's `len` bytes, read for them (for
    /// the few bodies whose caller had no pass of its own to take them in).
    pub async fn sums(
        self,
        len: u64,
        kind: Option<super::limits::ChecksumKind>,
    ) -> Result<BodySums, StorageError> {
        match self {
            BodySource::Memory(bytes) => Ok(BodySums::of(bytes, kind)),
            BodySource::Mapped(map) => Ok(BodySums::of(map, kind)),
            BodySource::File { path, offset } => {
                let path = path.to_path_buf();
                super::run_blocking(move || {
                    let file = std::fs::File::open(&path)
                        .map_err(|e| StorageError::io("cannot open", &path, e))?;
                    sums_of_range(&file, &path, offset, len, kind)
                })
                .await
            }
        }
    }

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
            BodySource::Mapped(map) => {
                let (map, size) = (Arc::clone(map), map.len());
                let pieces = (0..size).step_by(PIECE).map(move |at| {
                    Ok(Bytes::from_owner(MappedPiece {
                        map: Arc::clone(&map),
                        at,
                        len: PIECE.min(size - at),
                    }))
                });
                Ok(watched(
                    Box::pin(futures::stream::iter(pieces)),
                    len,
                    activity,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_crc64_must_be_the_one_sent_and_must_be_there() {
        assert_eq!(check_echoed_crc64(None, None, "t").unwrap(), None);
        assert_eq!(
            check_echoed_crc64(Some(7), Some(Some(7)), "t").unwrap(),
            Some(7)
        );
        for echoed in [Some(Some(8)), Some(None)] {
            let error = check_echoed_crc64(Some(7), echoed, "t").unwrap_err();
            assert!(error.to_string().contains("differs"), "{error}");
        }
        let error = check_echoed_crc64(Some(7), None, "t").unwrap_err();
        assert!(
            error.to_string().contains("--upload-checksum md5"),
            "{error}"
        );
    }
    use crate::storage::limits::ChecksumKind;

    #[test]
    fn sums_fed_in_pieces_equal_sums_of_the_whole() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
        for kind in [
            None,
            Some(ChecksumKind::Md5),
            Some(ChecksumKind::Crc64Nvme),
            Some(ChecksumKind::Crc32c),
        ] {
            let mut hasher = BodyHasher::new(kind);
            for piece in bytes.chunks(77_777) {
                hasher.update(piece);
            }
            assert_eq!(hasher.finish(), BodySums::of(&bytes, kind));
        }
        let crc = BodySums::of(&bytes, Some(ChecksumKind::Crc64Nvme));
        assert!(crc.md5.is_none() && crc.crc64nvme.is_some());
        // The standard's check value.
        assert_eq!(crc64nvme_of(b"123456789"), 0xae8b_1486_0a79_9888);
    }

    #[test]
    fn a_file_range_is_summed_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let kind = Some(ChecksumKind::Crc64Nvme);
        let sums = sums_of_range(&file, &path, 1000, 2_500_000, kind).unwrap();
        assert_eq!(sums, BodySums::of(&bytes[1000..2_501_000], kind));
    }

    #[tokio::test]
    async fn a_mapped_body_hands_out_its_range_and_reads_the_same_once_given_back() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let range = 5000..2_905_000;
        let map = Arc::new(
            crate::storage::local::map_range(&file, range.start, range.end - range.start).unwrap(),
        );
        let len = map.len() as u64;
        let activity = Arc::new(Activity::default());
        let body = BodySource::Mapped(&map).open(len, &activity).await.unwrap();
        let sent: Vec<u8> = body
            .into_pieces()
            .map(|piece| piece.unwrap().to_vec())
            .concat()
            .await;
        let range = range.start as usize..range.end as usize;
        assert_eq!(sent, bytes[range.clone()]);
        // Every piece dropped: the pages were given back, and read again.
        assert_eq!(&map[..], &bytes[range]);
        assert!(!map.faulted());
    }
}
