//! Staged objects and server-side copies in memory: parts held by number
//! until the commit joins them, copies checked against the checksum the
//! caller expects, as S3's UploadPartCopy ETag lets it be.

use crate::storage::body::BodySums;
use std::collections::BTreeMap;

use bytes::Bytes;

use super::{MemoryStore, lock, read_body};
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{
    CopyRange, CopySource, Expect, ObjectStore, PendingUpload, StagedCopies, StagedObjects,
    StagedPart, StagedUpload,
};
use crate::storage::requests::RequestClass;
use crate::storage::{RemoteErrorKind, StorageError};

/// An object being staged.
pub(super) struct Staging {
    key: String,
    parts: BTreeMap<u32, Bytes>,
    begun_ns: i64,
}

impl MemoryStore {
    /// Adds a part to the upload, which must still be open.
    fn stage(&self, upload: &StagedUpload, number: u32, bytes: Bytes) -> Result<(), StorageError> {
        let mut staged = lock(&self.bucket.staged);
        let staging = staged
            .get_mut(&upload.id)
            .ok_or_else(|| self.gone(upload))?;
        staging.parts.insert(number, bytes);
        Ok(())
    }

    fn gone(&self, upload: &StagedUpload) -> StorageError {
        self.error(
            "cannot stage",
            &upload.key,
            RemoteErrorKind::NotFound,
            "no such upload",
        )
    }
}

fn part(number: u32, bytes: &Bytes, md5: Option<[u8; 16]>) -> StagedPart {
    StagedPart {
        crc64nvme: None,
        number,
        tag: hex::encode(crate::storage::body::md5_of(bytes)),
        size: bytes.len() as u64,
        md5,
    }
}

#[async_trait::async_trait]
impl StagedObjects for MemoryStore {
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        self.counted(RequestClass::Put);
        let id = format!("upload-{}", self.bucket.next_generation());
        lock(&self.bucket.staged).insert(
            id.clone(),
            Staging {
                key: key.to_string(),
                parts: BTreeMap::new(),
                begun_ns: super::now_ns(),
            },
        );
        Ok(StagedUpload {
            key: key.to_string(),
            id,
        })
    }

    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        body: crate::storage::body::BodySource<'_>,
        len: u64,
        sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        let md5 = sums.md5;
        self.counted(RequestClass::Put);
        let limits = self.info.limits;
        if len > limits.max_part || number as usize > limits.max_parts || number == 0 {
            return Err(StorageError::Transfer {
                target: self.url_of(&upload.key),
                message: format!("part {number} of {len} bytes is past this store's limits"),
            });
        }
        let bytes = read_body(body, len, &self.url_of(&upload.key)).await?;
        let computed = crate::storage::body::md5_of(&bytes);
        if md5.is_some_and(|md5| md5 != computed) {
            return Err(self.error(
                "cannot stage",
                &upload.key,
                RemoteErrorKind::ChecksumMismatch,
                "the part's MD5 is not the one sent with it",
            ));
        }
        let staged = part(number, &bytes, Some(computed));
        self.stage(upload, number, bytes)?;
        Ok(staged)
    }

    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        self.counted(RequestClass::List);
        let staged = lock(&self.bucket.staged);
        let staging = staged.get(&upload.id).ok_or_else(|| self.gone(upload))?;
        Ok(staging
            .parts
            .iter()
            .map(|(number, bytes)| part(*number, bytes, None))
            .collect())
    }

    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.counted(RequestClass::Put);
        let joined = {
            let staged = lock(&self.bucket.staged);
            let staging = staged.get(&upload.id).ok_or_else(|| self.gone(upload))?;
            let mut joined = Vec::new();
            for wanted in parts {
                let held = staging.parts.get(&wanted.number).filter(|bytes| {
                    bytes.len() as u64 == wanted.size
                        && crate::storage::same_version(
                            &wanted.tag,
                            &hex::encode(crate::storage::body::md5_of(bytes)),
                        )
                });
                let Some(held) = held else {
                    return Err(self.error(
                        "cannot commit",
                        &upload.key,
                        RemoteErrorKind::Rejected,
                        &format!("part {} is not staged as named", wanted.number),
                    ));
                };
                joined.extend_from_slice(held);
            }
            joined
        };
        let version = self.write(&upload.key, Bytes::from(joined), meta.clone(), expect)?;
        lock(&self.bucket.staged).remove(&upload.id);
        Ok(version)
    }

    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        self.counted(RequestClass::Delete);
        lock(&self.bucket.staged).remove(&upload.id);
        Ok(())
    }

    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        self.counted(RequestClass::List);
        Ok(lock(&self.bucket.staged)
            .iter()
            .filter(|(_, staging)| staging.key.starts_with(&self.info.prefix))
            .map(|(id, staging)| PendingUpload {
                key: staging.key.clone(),
                id: id.clone(),
                initiated_ns: Some(staging.begun_ns),
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl StagedCopies for MemoryStore {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        self.counted(RequestClass::Copy);
        if !self.copies_from(source.store) {
            return Err(self.error(
                "cannot copy",
                &upload.key,
                RemoteErrorKind::SourceUnreachable,
                "only objects in this process's memory can be copied here",
            ));
        }
        let from = super::bucket(&source.store.info().bucket);
        let object = {
            let objects = lock(&from.objects);
            objects.get(source.key).cloned()
        }
        .ok_or_else(|| {
            self.error(
                "cannot copy",
                source.key,
                RemoteErrorKind::NotFound,
                "no such object",
            )
        })?;
        if source
            .version
            .is_some_and(|v| !crate::storage::same_version(v, &object.generation.to_string()))
        {
            return Err(self.error(
                "cannot copy",
                source.key,
                RemoteErrorKind::PreconditionFailed,
                "the source changed since it was listed",
            ));
        }
        let end = range.start.saturating_add(range.len);
        if end > object.bytes.len() as u64 {
            return Err(self.error(
                "cannot copy",
                source.key,
                RemoteErrorKind::Rejected,
                "the range is past the object's end",
            ));
        }
        let bytes = object.bytes.slice(range.start as usize..end as usize);
        let md5 = crate::storage::body::md5_of(&bytes);
        let mismatch = range.expected_md5.is_some_and(|want| want != md5)
            || range
                .expected_crc32c
                .is_some_and(|want| want != crc32c::crc32c(&bytes));
        if mismatch {
            return Err(self.error(
                "cannot copy",
                source.key,
                RemoteErrorKind::ChecksumMismatch,
                "the copied range is not the bytes expected",
            ));
        }
        let staged = part(number, &bytes, range.expected_md5.map(|_| md5));
        self.stage(upload, number, bytes)?;
        Ok(staged)
    }
}
