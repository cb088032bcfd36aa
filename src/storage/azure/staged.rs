//! Staged objects: blocks put (Put Block) and committed (Put Block List).

use super::*;
use crate::storage::body::BodySums;

impl AzureStorage {
    pub(super) async fn put_block(
        &self,
        upload: &StagedUpload,
        number: u32,
        extra: Vec<(Header, String)>,
        payload: Payload<'_>,
        len: u64,
        sent_crc64: Option<u64>,
    ) -> Result<StagedPart, StorageError> {
        let target = self.url_of_key(&upload.key);
        if number == 0 || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target,
                message: format!("block number {number} is outside 1..=50000"),
            });
        }
        if len == 0 || len > LIMITS.max_part {
            return Err(StorageError::Transfer {
                target,
                message: format!("a {len}-byte block is outside 1 byte..4000 MiB"),
            });
        }
        let id = block_id(&upload.id, number);
        let url = format!(
            "{}?comp=block&blockid={}",
            self.blob_url(&upload.key),
            query_value(&id)
        );
        let response = self
            .http
            .send(self, "cannot stage a block of", &target, || Call {
                method: Method::PUT,
                url: url.clone(),
                headers: extra.clone(),
                payload,
                // A block copied from a URL is read by the service first.
                server_side: matches!(payload, Payload::Empty),
            })
            .await?;
        Ok(StagedPart {
            crc64nvme: check_received_crc64(sent_crc64, &response, &target, true)?,
            number,
            tag: id,
            size: len,
            md5: md5_header(&response),
        })
    }

    /// The uncommitted blocks of a blob (`NotFound` when it has none and no
    /// committed content either).
    pub(super) async fn uncommitted_blocks(
        &self,
        key: &str,
    ) -> Result<Vec<xml::Block>, StorageError> {
        let url = format!(
            "{}?comp=blocklist&blocklisttype=uncommitted",
            self.blob_url(key)
        );
        let list: xml::BlockList = self
            .get_xml("cannot list the blocks of", self.url_of_key(key), url)
            .await?;
        Ok(list.uncommitted_blocks.block)
    }
}

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
        sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        self.put_block(
            upload,
            number,
            body_sum_headers(&sums),
            Payload::Body { source: body, len },
            len,
            sums.crc64nvme,
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
                    crc64nvme: None,
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
        headers.extend(meta_headers(meta, self.metadata_compat));
        headers.extend(self.tier_header(&upload.key));
        headers.push(("content-type".into(), "application/xml".into()));
        let response = self
            .http
            .send(self, "cannot commit the blocks of", &target, || Call {
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
                .list_blobs(&self.prefix, false, marker.as_deref(), "uncommittedblobs")
                .await?;
            keys.extend(page.blobs.into_parts().0.into_iter().map(|b| b.name));
            match page.next_marker.filter(|m| !m.is_empty()) {
                Some(next) => marker = Some(next),
                None => break,
            }
        }
        let found: Vec<Vec<PendingUpload>> = futures::stream::iter(keys)
            .map(|key| async move {
                let blocks =
                    crate::storage::found(self.uncommitted_blocks(&key).await)?.unwrap_or_default();
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
