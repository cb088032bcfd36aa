//! The optional families an SSH server has: staged objects and their server-side
//! copies.

use super::*;
use crate::storage::body::BodySums;

#[async_trait::async_trait]
impl StagedObjects for SftpStorage {
    async fn staged_sums(
        &self,
        upload: &StagedUpload,
    ) -> Result<Option<crate::types::ContentSums>, StorageError> {
        self.server_sums(&upload.id).await.map(Some)
    }
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        self.count(RequestClass::Put);
        self.make_parents(key).await?;
        let temp = Self::temp_beside(key);
        let file = files::create(self, &temp).await?;
        file.close()
            .await
            .map_err(|e| self.error("cannot write", &temp, e))?;
        Ok(StagedUpload {
            key: key.to_string(),
            id: temp,
        })
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        body: BodySource<'_>,
        len: u64,
        _sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        self.count(RequestClass::Put);
        if len > LIMITS.max_part || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target: self.url_of(&upload.key),
                message: format!("part {number} of {len} bytes is past this store's limits"),
            });
        }
        // A write at an offset of the temp file: written again whole over
        // a new connection when the old one drops.
        let url = self.url_of(&upload.key);
        self.retry
            .run(&url, crate::retry::Budget::Unbounded, || async {
                let written = async {
                    let file = files::open_write(self, &upload.id).await?;
                    files::write_body(self, &file, &upload.id, at, body, len).await?;
                    file.close()
                        .await
                        .map_err(|e| self.error("cannot write", &upload.id, e))
                }
                .await;
                self.explained(&upload.id, written).await
            })
            .await?;
        Ok(StagedPart {
            crc64nvme: None,
            number,
            tag: at.to_string(),
            size: len,
            md5: None,
        })
    }
    fn resumes_by_blake3(&self) -> bool {
        true
    }

    /// The recorded parts whose bytes the temp file still holds, checked on
    /// the server (`b3sum` of each range) where it can, else read back.
    async fn staged_matching(
        &self,
        upload: &StagedUpload,
        recorded: &[crate::storage::RecordedPart],
    ) -> Result<Vec<StagedPart>, StorageError> {
        let Some(temp) = self.stat(&upload.id).await? else {
            return Err(StorageError::Remote {
                op: "cannot resume",
                hints: &HINTS,
                kind: RemoteErrorKind::NotFound,
                target: self.url_of(&upload.id),
                message: "the temp file of the upload is gone".into(),
            });
        };
        let within: Vec<&crate::storage::RecordedPart> = recorded
            .iter()
            .filter(|part| part.offset + part.len <= temp.size)
            .collect();
        let ranges: Vec<(u64, u64)> = within.iter().map(|p| (p.offset, p.len)).collect();
        let path = self.path_of(&upload.id).to_string_lossy().into_owned();
        let on_server = match self.hash_command().await {
            Some(hash::HashCommand::B3sum) => {
                let control = self.link.control();
                hash::blake3_of_ranges(
                    &self.settings,
                    &self.target,
                    control.as_deref(),
                    &path,
                    &ranges,
                )
                .await
            }
            _ => None,
        };
        let digests = match on_server {
            Some(digests) => digests,
            None => {
                // Read back: the temp file's ranges, hashed here.
                let mut digests = Vec::with_capacity(ranges.len());
                for &(offset, len) in &ranges {
                    let mut stream = self
                        .open_read(&upload.id, Some((offset, len)), None)
                        .await?;
                    let mut hasher = blake3::Hasher::new();
                    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                        hasher.update(&chunk?);
                    }
                    digests.push(*hasher.finalize().as_bytes());
                }
                digests
            }
        };
        Ok(within
            .iter()
            .zip(digests)
            .filter(|(part, digest)| part.blake3 == Some(*digest))
            .map(|(part, _)| StagedPart {
                crc64nvme: None,
                number: part.number,
                tag: part.offset.to_string(),
                size: part.len,
                md5: None,
            })
            .collect())
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        self.count(RequestClass::List);
        // Which ranges of a temp file were written cannot be told from the
        // file: a resumed upload writes every part again, in place.
        match self.stat(&upload.id).await? {
            Some(_) => Ok(Vec::new()),
            None => Err(StorageError::Remote {
                op: "cannot resume",
                hints: &HINTS,
                kind: RemoteErrorKind::NotFound,
                target: self.url_of(&upload.id),
                message: "the temp file of the upload is gone".into(),
            }),
        }
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.count(RequestClass::Put);
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let flushed = async {
            let mut file = files::open_write(self, &upload.id).await?;
            // A resumed upload may have left bytes past the end.
            file.set_len(size)
                .await
                .map_err(|e| self.error("cannot truncate", &upload.id, e))?;
            files::flush(self, file, &upload.id, Some(files::attrs_of(meta))).await
        }
        .await;
        self.explained(&upload.id, flushed).await?;
        self.finish_temp(&upload.id, &upload.key, meta, expect, size)
            .await
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        self.count(RequestClass::Delete);
        self.remove_quietly(&upload.id).await;
        Ok(())
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        self.count(RequestClass::List);
        walk::temp_files(self).await
    }
}

#[async_trait::async_trait]
impl StagedCopies for SftpStorage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        self.count(RequestClass::Copy);
        if !self.copies_from(source.store) {
            return Err(StorageError::Remote {
                op: "cannot copy",
                hints: &HINTS,
                kind: RemoteErrorKind::SourceUnreachable,
                target: self.url_of(&upload.key),
                message: "only a file of the same SFTP session can be copied server-side".into(),
            });
        }
        let copied = async {
            let file = files::open_write(self, &upload.id).await?;
            files::copy_range(
                self,
                source.key,
                source.version,
                range.start,
                &file,
                at,
                range.len,
            )
            .await?;
            file.close()
                .await
                .map_err(|e| self.error("cannot write", &upload.id, e))
        }
        .await;
        self.explained(&upload.id, copied).await?;
        // copy-data carries no checksum: the rebuilt file is checked whole
        // before its commit (a hash run on the server) or its copied ranges
        // are read back first, as `rebuild_check` says.
        Ok(StagedPart {
            crc64nvme: None,
            number,
            tag: at.to_string(),
            size: range.len,
            md5: None,
        })
    }
}
