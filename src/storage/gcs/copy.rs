//! Server-side copies: rewrite of a whole object, a range staged by
//! reusing an object whose checksums agree, and signed URLs others read.

use super::*;

impl GcsStorage {
    pub(super) async fn rewrite_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(key);
        let Some(from_bucket) = self.same_service(source.store) else {
            return Err(StorageError::Transfer {
                target,
                message: "GCS copies server-side only from GCS".into(),
            });
        };
        // Without a resource the copy keeps the source's metadata; with one
        // it takes the resource's (and the run's class, which a rewrite
        // would otherwise leave to the bucket's default).
        let body = match (meta, self.class_for(key)) {
            (None, None) => "{}".to_string(),
            (meta, storage_class) => {
                let head;
                let meta = match meta {
                    Some(meta) => meta,
                    None => {
                        head = source.store.head(source.key).await?.ok_or_else(|| {
                            StorageError::Transfer {
                                target: source.store.url_of(source.key),
                                message: "the source object is gone".into(),
                            }
                        })?;
                        &head.meta
                    }
                };
                serde_json::to_string(&json::NewObject {
                    name: None,
                    content_type: CONTENT_TYPE,
                    md5_hash: None,
                    crc32c: None,
                    metadata: self.meta_headers(meta),
                    storage_class,
                })
                .map_err(|e| StorageError::Transfer {
                    target: target.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let mut base = format!(
            "{}/o/{}/rewriteTo/b/{}/o/{}?projection=noAcl",
            self.bucket_url_of(from_bucket),
            escaped(source.key),
            escaped(&self.bucket),
            escaped(key)
        );
        if let Some(generation) = source.version {
            base.push_str(&format!(
                "&ifSourceGenerationMatch={}",
                generation.trim_matches('"')
            ));
        }
        if let Some(generation) = generation_condition(expect) {
            base.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        // Large copies across locations or classes take several calls.
        let mut token: Option<String> = None;
        loop {
            let url = match &token {
                Some(token) => format!("{base}&rewriteToken={}", escaped(token)),
                None => base.clone(),
            };
            let answer: json::RewriteResponse = self
                .json("cannot copy to", &target, || Call {
                    payload: Payload::Json(&body),
                    server_side: true,
                    ..Call::new(Method::POST, &url)
                })
                .await?;
            if answer.done {
                let object = answer.resource.ok_or_else(|| StorageError::Transfer {
                    target: target.clone(),
                    message: "the finished copy's answer has no object".into(),
                })?;
                let generation = Self::generation_of(object, &target)?;
                if source.key != key {
                    self.drop_chunks_after_write(key).await;
                }
                return Ok(generation);
            }
            token = answer.rewrite_token;
            if token.is_none() {
                return Err(StorageError::Transfer {
                    target,
                    message: "an unfinished copy's answer has no token to continue with".into(),
                });
            }
        }
    }

    /// Checks an object about to be reused whole against the bytes it stands
    /// for: its MD5 (single-request uploads) and its CRC32C (every object,
    /// composites too). Either disagreeing refuses it; returns whether one
    /// was compared at all.
    pub(super) fn compare_reused(
        &self,
        range: &CopyRange,
        object: &json::Object,
        name: &str,
    ) -> Result<bool, StorageError> {
        let md5_agrees = match (range.expected_md5, object.md5()) {
            (Some(expected), Some(actual)) => Some(expected == actual),
            _ => None,
        };
        let crc_agrees = match (range.expected_crc32c, object.crc32c()) {
            (Some(expected), Some(actual)) => Some(expected == actual),
            _ => None,
        };
        if md5_agrees == Some(false) || crc_agrees == Some(false) {
            return Err(StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(name),
                kind: RemoteErrorKind::ChecksumMismatch,
                message: "the object's checksum is not that of the file's bytes".into(),
                hints: &HINTS,
            });
        }
        Ok(md5_agrees == Some(true) || crc_agrees == Some(true))
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
            crc64nvme: None,
            number,
            tag: staging::tag(source.key, &generation),
            size: range.len,
            md5,
        })
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
