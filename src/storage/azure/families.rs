//! The optional families Azure Blob Storage has: staged objects and their server-side
//! copies and readable URLs.

use super::*;

#[async_trait::async_trait]
impl StagedObjects for AzureStorage {
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        // Nothing to ask the service: blocks are staged against the blob's name,
        // and the metadata goes with Put Block List.
        Ok(StagedUpload {
            key: key.to_string(),
            id: blocks::new_stem(),
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
        let headers = md5
            .map(|m| {
                vec![(
                    Header::from("content-md5"),
                    base64::engine::general_purpose::STANDARD.encode(m),
                )]
            })
            .unwrap_or_default();
        self.put_block(
            upload,
            number,
            headers,
            Payload::Body { source: body, len },
            len,
        )
        .await
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        let mut parts: Vec<StagedPart> = self
            .uncommitted_blocks(&upload.key)
            .await?
            .into_iter()
            .filter_map(|block| {
                let (stem, number) = parse_block_id(&block.name)?;
                (stem == upload.id).then_some(StagedPart {
                    number,
                    tag: block.name,
                    size: block.size,
                    md5: None,
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
        check_block_list(parts, &target)?;
        let ids: Vec<String> = parts.iter().map(|p| p.tag.clone()).collect();
        let body = xml::block_list_body(&ids);
        let url = format!("{}?comp=blocklist", self.blob_url(&upload.key));
        let mut headers: Vec<(Header, String)> = condition_headers(expect);
        headers.extend(meta_headers(meta));
        headers.extend(self.tier_header(&upload.key));
        headers.push(("content-type".into(), "application/xml".into()));
        let response = self
            .send("cannot commit the blocks of", &target, || Call {
                method: Method::PUT,
                url: url.clone(),
                headers: headers.clone(),
                payload: Payload::Text(&body),
                server_side: true,
            })
            .await?;
        etag_of(&response, &target)
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        // Uncommitted blocks cannot be dropped one by one: a blob that was
        // never committed goes with them; an existing blob keeps them until the
        // service discards them (a week) or its next commit does.
        if self.head_blob(&upload.key).await?.is_none() {
            self.delete_keys(std::slice::from_ref(&upload.key)).await?;
        }
        Ok(())
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        // Blobs with uncommitted blocks are not marked in a listing: each blob
        // is asked for its uncommitted blocks, a few at a time.
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .list_blobs(marker.as_deref(), "uncommittedblobs")
                .await?;
            keys.extend(page.blobs.blob.into_iter().map(|b| b.name));
            match page.next_marker.filter(|m| !m.is_empty()) {
                Some(next) => marker = Some(next),
                None => break,
            }
        }
        let found: Vec<Vec<PendingUpload>> = futures::stream::iter(keys)
            .map(|key| async move {
                let blocks = match self.uncommitted_blocks(&key).await {
                    Ok(blocks) => blocks,
                    Err(StorageError::Remote {
                        kind: RemoteErrorKind::NotFound,
                        ..
                    }) => Vec::new(),
                    Err(e) => return Err(e),
                };
                let mut stems: Vec<String> = blocks
                    .iter()
                    .filter_map(|b| parse_block_id(&b.name).map(|(stem, _)| stem))
                    .collect();
                stems.sort();
                stems.dedup();
                Ok(stems
                    .into_iter()
                    .map(|stem| PendingUpload {
                        key: key.clone(),
                        id: stem,
                        initiated_ns: None,
                    })
                    .collect())
            })
            .buffer_unordered(PARALLEL_DELETES)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }
}

#[async_trait::async_trait]
impl StagedCopies for AzureStorage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        let CopyRange { start, len, .. } = range;
        let grant = match source.store.readable_urls() {
            Some(urls) => urls.readable_url(source.key, COPY_SOURCE_TTL).await?,
            None => None,
        }
        // Credentials that cannot sign a URL (a GCS user login) leave
        // the copy to go through this machine.
        .ok_or_else(|| StorageError::Remote {
            op: "cannot copy from",
            target: source.store.url_of(source.key),
            kind: RemoteErrorKind::SourceUnreachable,
            message: "its credentials cannot grant a URL to read it".into(),
            hints: source.store.hints(),
        })?;
        let mut headers: Vec<(Header, String)> = vec![
            ("x-ms-copy-source".into(), grant.url),
            (
                "x-ms-source-range".into(),
                format!("bytes={start}-{}", start + len.max(1) - 1),
            ),
        ];
        if let Some(version) = source.version {
            headers.push(("x-ms-source-if-match".into(), version.to_string()));
        }
        if let Some(authorization) = grant.authorization {
            headers.push(("x-ms-copy-source-authorization".into(), authorization));
        }
        // The service hashes the range it read and refuses the block
        // (Md5Mismatch) unless it has this MD5: checked before it is staged.
        if let Some(md5) = range.expected_md5 {
            headers.push((
                "x-ms-source-content-md5".into(),
                base64::engine::general_purpose::STANDARD.encode(md5),
            ));
        }
        let mut part = self
            .put_block(upload, number, headers, Payload::Empty, len)
            .await?;
        if range.expected_md5.is_some() {
            part.md5 = range.expected_md5;
        }
        Ok(part)
    }
}

#[async_trait::async_trait]
impl ReadableUrls for AzureStorage {
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError> {
        let url = self.blob_url(key);
        Ok(Some(match &self.resolved.auth {
            Auth::SharedKey { .. } => ReadableUrl {
                url: format!("{url}?{}", self.service_sas(key, ttl)?),
                authorization: None,
            },
            Auth::Sas { token } => ReadableUrl {
                url: format!("{url}?{token}"),
                authorization: None,
            },
            Auth::EntraId => ReadableUrl {
                authorization: self.bearer(&url, &self.url_of_key(key)).await?,
                url,
            },
        }))
    }
}
