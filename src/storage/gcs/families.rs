//! The optional families Google Cloud Storage has: staged objects and their server-side
//! copies, upload streams, kept chunks and readable URLs.

use super::*;

#[async_trait::async_trait]
impl StagedObjects for GcsStorage {
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        // Nothing to ask the service: parts are objects of their own, the
        // metadata goes with the compose.
        Ok(StagedUpload {
            key: key.to_string(),
            id: staging::new_stem(),
        })
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        body: BodySource<'_>,
        len: u64,
        md5: Option<[u8; 16]>,
    ) -> Result<StagedPart, StorageError> {
        if number == 0 || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target: self.url_of_key(&upload.key),
                message: format!("part number {number} is outside 1..={}", LIMITS.max_parts),
            });
        }
        if len > LIMITS.max_part {
            return Err(StorageError::Transfer {
                target: self.url_of_key(&upload.key),
                message: format!("a {len}-byte part is over the 5 TiB an object may hold"),
            });
        }
        let name = if self.chunked {
            chunks::name(&upload.key, number)
        } else {
            staging::part_name(&upload.id, number, &upload.key)
        };
        let object = self
            .upload(&name, body, len, HashMap::new(), md5, Expect::Any)
            .await?;
        let stored_md5 = object.md5();
        let generation = Self::generation_of(object, &self.url_of_key(&upload.key))?;
        Ok(StagedPart {
            number,
            tag: staging::tag(&name, &generation),
            size: len,
            md5: stored_md5,
        })
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        if self.chunked {
            // What is staged for the key is its chunks.
            let parts: Vec<StagedPart> = self
                .chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(number, o)| StagedPart {
                    number,
                    tag: staging::tag(&o.name, o.generation.as_deref().unwrap_or_default()),
                    size: o.size(),
                    md5: o.md5(),
                })
                .collect();
            if parts.is_empty() {
                return Err(StorageError::Remote {
                    op: "cannot resume",
                    target: self.url_of_key(&upload.key),
                    kind: RemoteErrorKind::NotFound,
                    message: "no chunk of the upload is left".into(),
                    hints: &HINTS,
                });
            }
            return Ok(parts);
        }
        let objects = self.list_all(&staging::upload_folder(&upload.id)).await?;
        if objects.is_empty() {
            return Err(StorageError::Remote {
                op: "cannot resume",
                target: self.url_of_key(&upload.key),
                kind: RemoteErrorKind::NotFound,
                message: "no part of the upload is left".into(),
                hints: &HINTS,
            });
        }
        let mut parts: Vec<StagedPart> = objects
            .iter()
            .filter_map(|o| {
                let (_, number, key) = staging::parse_part_name(&o.name)?;
                (key == upload.key).then(|| StagedPart {
                    number,
                    tag: staging::tag(&o.name, o.generation.as_deref().unwrap_or_default()),
                    size: o.size(),
                    md5: o.md5(),
                })
            })
            .collect();
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(&upload.key);
        let sources = parts
            .iter()
            .map(|p| {
                staging::parse_tag(&p.tag)
                    .map(|(name, generation)| (name.to_string(), generation.to_string()))
                    .ok_or_else(|| StorageError::Transfer {
                        target: target.clone(),
                        message: format!("part {} has no object to compose from", p.number),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sources.is_empty() {
            return Err(StorageError::Transfer {
                target,
                message: "an object needs at least one part".into(),
            });
        }
        // One listing of the parts serves the checksum and, once the object
        // is made, the removal of what it no longer needs: the upload's
        // folder, or with chunked objects the key's chunks (those past the
        // new last one are stale).
        let staged = if self.chunked {
            self.chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(_, object)| object)
                .collect()
        } else {
            self.list_all(&staging::upload_folder(&upload.id)).await?
        };
        let expected_crc32c = self.combined_crc32c(&staged, &sources).await?;
        let (object, intermediates) = self
            .compose(&upload.id, &upload.key, sources.clone(), meta, expect)
            .await?;
        // The parts were checked against the file's bytes (MD5) as they went
        // up; the composite is checked against the parts: its CRC32C must be
        // theirs, combined in order.
        if let (Some(expected), Some(actual)) = (expected_crc32c, object.crc32c())
            && expected != actual
        {
            return Err(StorageError::Verification {
                target,
                message: format!(
                    "the composed object's CRC32C {actual:08x} is not its parts' {expected:08x}"
                ),
            });
        }
        let expected: u64 = parts.iter().map(|p| p.size).sum();
        if object.size() != expected {
            return Err(StorageError::Verification {
                target,
                message: format!(
                    "the composed object holds {} bytes, not the {expected} of its parts",
                    object.size()
                ),
            });
        }
        let generation = Self::generation_of(object, &target)?;
        if self.chunked {
            // The chunks composed stay; any other chunk of the key goes.
            let (kept, stale): (Vec<String>, Vec<String>) = staged
                .into_iter()
                .map(|o| o.name)
                .partition(|name| sources.iter().any(|(source, _)| source == name));
            if let Some(index) = self.chunk_index.lock().await.as_mut() {
                index.insert(upload.key.clone(), kept);
            }
            let unneeded: Vec<String> = stale.into_iter().chain(intermediates).collect();
            if let Err(e) = self.delete_names(&unneeded).await {
                tracing::warn!("{target}: cannot remove the chunks it no longer has: {e}");
            }
            return Ok(generation);
        }
        // The object is made: its temporaries go (a failure here leaves
        // only them, which `hugesync uploads --abort` removes).
        let temporaries: Vec<String> = staged
            .into_iter()
            .map(|o| o.name)
            .chain(intermediates)
            .filter(|name| name.starts_with(staging::STAGING))
            .collect();
        if let Err(e) = self.delete_names(&temporaries).await {
            tracing::warn!("{target}: cannot remove the upload's temporary parts: {e}");
        }
        self.drop_chunks_after_write(&upload.key).await;
        Ok(generation)
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        if upload.id != chunks::ORPHANED {
            self.remove_upload_folder(&upload.id).await?;
        }
        // Chunks stay for the next upload of an object that exists; those of
        // an object that never came to be go with the upload.
        if (self.chunked || upload.id == chunks::ORPHANED)
            && self.head_object(&upload.key).await?.is_none()
        {
            let names: Vec<String> = self
                .chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(_, o)| o.name)
                .collect();
            self.delete_names(&names).await?;
        }
        Ok(())
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        let mut pending: Vec<PendingUpload> = Vec::new();
        for object in self.list_all(staging::STAGING).await? {
            let Some((stem, _, key)) = staging::parse_part_name(&object.name) else {
                continue;
            };
            if !key.starts_with(&self.prefix) {
                continue;
            }
            let created = object.time_created.as_deref().map(rfc3339_ns);
            match pending.iter_mut().find(|p| p.id == stem && p.key == key) {
                Some(found) => {
                    found.initiated_ns = found.initiated_ns.min(created).or(created);
                }
                None => pending.push(PendingUpload {
                    key: key.to_string(),
                    id: stem.to_string(),
                    initiated_ns: created,
                }),
            }
        }
        // Chunks kept for an object that does not exist (its first upload
        // was interrupted, and never run again).
        let mut orphaned: Vec<PendingUpload> = Vec::new();
        let folder = format!("{}{}", chunks::CHUNKS, self.prefix);
        for object in self.list_all(&folder).await? {
            let Some((key, _)) = chunks::parse(&object.name) else {
                continue;
            };
            let created = object.time_created.as_deref().map(rfc3339_ns);
            match orphaned.iter_mut().find(|p| p.key == key) {
                Some(found) => found.initiated_ns = found.initiated_ns.min(created).or(created),
                None => orphaned.push(PendingUpload {
                    key: key.to_string(),
                    id: chunks::ORPHANED.to_string(),
                    initiated_ns: created,
                }),
            }
        }
        for candidate in orphaned {
            if self.head_object(&candidate.key).await?.is_none() {
                pending.push(candidate);
            }
        }
        Ok(pending)
    }
}

#[async_trait::async_trait]
impl StagedCopies for GcsStorage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        // Compose takes whole objects of this bucket: an existing object
        // becomes a part as it is (an append's old content), by reference.
        let target = self.url_of_key(&upload.key);
        let same_bucket = self.same_service(source.store) == Some(self.bucket.as_str());
        if !same_bucket {
            return Err(StorageError::Transfer {
                target,
                message: "GCS composes objects of the same bucket only".into(),
            });
        }
        if self.chunked && source.key == upload.key {
            // A chunk the object is kept as; without one, the first range
            // may still be the old object whole (an append to an object
            // uploaded before chunks were kept).
            match self.stage_kept_chunk(upload, number, &range).await? {
                Some(part) => return Ok(part),
                None if range.start == 0 => {}
                None => {
                    return Err(StorageError::Remote {
                        op: "cannot compose from",
                        target: self.url_of_key(&chunks::name(&upload.key, number)),
                        kind: RemoteErrorKind::ChecksumMismatch,
                        message: "no kept chunk holds this range any more".into(),
                        hints: &HINTS,
                    });
                }
            }
        }
        let object = self
            .head_object(source.key)
            .await?
            .ok_or_else(|| StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(source.key),
                kind: RemoteErrorKind::NotFound,
                message: "the source object is gone".into(),
                hints: &HINTS,
            })?;
        let generation = object.generation.clone().unwrap_or_default();
        if let Some(version) = source.version
            && version.trim_matches('"') != generation
        {
            return Err(StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(source.key),
                kind: RemoteErrorKind::PreconditionFailed,
                message: "the source object changed".into(),
                hints: &HINTS,
            });
        }
        if range.start != 0 || range.len != object.size() {
            return Err(StorageError::Transfer {
                target,
                message: format!(
                    "GCS cannot reuse bytes {}..{} of a {}-byte object: compose takes whole objects",
                    range.start,
                    range.start + range.len,
                    object.size()
                ),
            });
        }
        let checked = self.compare_reused(&range, &object, source.key)?;
        let md5 = range.expected_md5.filter(|_| checked);
        Ok(StagedPart {
            number,
            tag: staging::tag(source.key, &generation),
            size: range.len,
            md5,
        })
    }
}

#[async_trait::async_trait]
impl UploadStreams for GcsStorage {
    async fn begin_stream(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        self.start_session(key, meta, expect).await
    }
    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        recorded: u64,
    ) -> Result<u64, StorageError> {
        self.session_persisted(upload, recorded).await
    }
    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        let ack = self.send_piece(upload, offset, body, len, end).await?;
        if matches!(ack, StreamAck::Done(_)) {
            self.drop_chunks_after_write(&upload.key).await;
        }
        Ok(ack)
    }
    async fn abort_stream(&self, upload: &StreamUpload) -> Result<(), StorageError> {
        self.cancel_session(upload).await
    }
}

#[async_trait::async_trait]
impl KeptChunks for GcsStorage {
    async fn kept_chunks(&self, key: &str) -> Result<Vec<KeptChunk>, StorageError> {
        // Chunks are placed by the sizes of those before them: a gap (a
        // chunk removed meanwhile) leaves the rest unplaced.
        let mut kept = Vec::new();
        let mut start = 0;
        for (number, object) in self.chunk_objects(key).await? {
            if number as usize != kept.len() + 1 {
                break;
            }
            kept.push(KeptChunk {
                number,
                start,
                len: object.size(),
                md5: object.md5(),
                crc32c: object.crc32c(),
            });
            start += object.size();
        }
        Ok(kept)
    }
}

#[async_trait::async_trait]
impl ReadableUrls for GcsStorage {
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError> {
        let Some(signer) = &self.signer else {
            // An emulator serves anyone.
            return Ok(Some(ReadableUrl {
                url: format!("{}?alt=media", self.object_url(key)),
                authorization: None,
            }));
        };
        // A V4 signed URL needs a service account's key (or a signer email):
        // credentials that cannot sign grant no URL, and copies go through
        // this machine instead.
        let url = format!(
            "{}/{}/{}",
            self.resolved.endpoint,
            escaped(&self.bucket),
            percent_encoding::utf8_percent_encode(key, ESCAPES)
                .to_string()
                .replace("%2F", "/")
        );
        let Ok(request) = http::Request::get(&url).body(()) else {
            return Ok(None);
        };
        let (mut parts, ()) = request.into_parts();
        if signer.sign(&mut parts, Some(ttl)).await.is_err() {
            return Ok(None);
        }
        Ok(Some(ReadableUrl {
            url: parts.uri.to_string(),
            authorization: None,
        }))
    }
}
