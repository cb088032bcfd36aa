//! Upload streams in memory, with a GCS resumable upload's rules: pieces but
//! the last are whole multiples of 256 KiB, each starts where the stream
//! stands, and the last is checked against the whole object's size, MD5
//! and CRC32C before the object appears.

use bytes::Bytes;

use super::{MemoryStore, lock, read_body};
use crate::storage::body::BodySource;
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{
    Expect, ObjectStore, StreamAck, StreamEnd, StreamUpload, UploadStreams,
};
use crate::storage::requests::RequestClass;
use crate::storage::{RemoteErrorKind, StorageError};

/// Pieces but the last are multiples of this.
const QUANTUM: u64 = 256 * 1024;

/// A stream being written.
pub(super) struct Streaming {
    key: String,
    meta: ObjectMeta,
    /// The condition the object is made under, as a version (`None`: any;
    /// `Some("")`: none there).
    expect: Option<String>,
    held: Vec<u8>,
}

impl MemoryStore {
    fn no_stream(&self, upload: &StreamUpload) -> StorageError {
        self.error(
            "cannot stream",
            &upload.key,
            RemoteErrorKind::NotFound,
            "no such upload stream",
        )
    }
}

#[async_trait::async_trait]
impl UploadStreams for MemoryStore {
    async fn begin_stream(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        self.counted(RequestClass::Put);
        let session = format!("stream-{}", self.bucket.next_generation());
        let expect = match expect {
            Expect::Any => None,
            Expect::Absent => Some(String::new()),
            Expect::Version(version) => Some(version.to_string()),
        };
        lock(&self.bucket.streams).insert(
            session.clone(),
            Streaming {
                key: key.to_string(),
                meta: meta.clone(),
                expect,
                held: Vec::new(),
            },
        );
        Ok(StreamUpload {
            key: key.to_string(),
            session,
        })
    }

    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        _recorded: u64,
    ) -> Result<u64, StorageError> {
        self.counted(RequestClass::Get);
        let streams = lock(&self.bucket.streams);
        let streaming = streams
            .get(&upload.session)
            .ok_or_else(|| self.no_stream(upload))?;
        Ok(streaming.held.len() as u64)
    }

    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        self.counted(RequestClass::Put);
        if end.is_none() && !len.is_multiple_of(QUANTUM) {
            return Err(self.error(
                "cannot stream",
                &upload.key,
                RemoteErrorKind::Rejected,
                "a piece but the last must be a multiple of 256 KiB",
            ));
        }
        let bytes = read_body(body, len, &self.url_of(&upload.key)).await?;
        let (key, meta, expect, whole) = {
            let mut streams = lock(&self.bucket.streams);
            let streaming = streams
                .get_mut(&upload.session)
                .ok_or_else(|| self.no_stream(upload))?;
            if offset != streaming.held.len() as u64 {
                return Err(self.error(
                    "cannot stream",
                    &upload.key,
                    RemoteErrorKind::Rejected,
                    "the piece does not start where the stream stands",
                ));
            }
            streaming.held.extend_from_slice(&bytes);
            let Some(end) = end else {
                return Ok(StreamAck::Persisted(streaming.held.len() as u64));
            };
            let whole = Bytes::from(std::mem::take(&mut streaming.held));
            let verdict = if whole.len() as u64 != end.size {
                Some(format!(
                    "{} bytes arrived, {} were announced",
                    whole.len(),
                    end.size
                ))
            } else if crate::storage::body::md5_of(&whole) != end.md5
                || crc32c::crc32c(&whole) != end.crc32c
            {
                Some("the object's checksums are not the ones announced".to_string())
            } else {
                None
            };
            let streaming = streams
                .remove(&upload.session)
                .ok_or_else(|| self.no_stream(upload))?;
            if let Some(message) = verdict {
                return Err(StorageError::Verification {
                    target: self.url_of(&upload.key),
                    message,
                });
            }
            (streaming.key, streaming.meta, streaming.expect, whole)
        };
        let expect = match expect.as_deref() {
            None => Expect::Any,
            Some("") => Expect::Absent,
            Some(version) => Expect::Version(version),
        };
        self.write(&key, whole, meta, expect).map(StreamAck::Done)
    }

    async fn abort_stream(&self, upload: &StreamUpload) -> Result<(), StorageError> {
        self.counted(RequestClass::Delete);
        lock(&self.bucket.streams).remove(&upload.session);
        Ok(())
    }
}
