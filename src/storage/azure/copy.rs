//! Server-side copies: a whole blob, a range staged from a URL (Put Block
//! From URL), and the URLs (SAS or bearer) the service reads a copy from.

use super::*;
use crate::storage::body::BodySums;

impl AzureStorage {
    pub(super) async fn copy_blob(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let head = source
            .store
            .head(source.key)
            .await?
            .ok_or_else(|| StorageError::Remote {
                op: "cannot copy",
                target: source.store.url_of(source.key),
                kind: RemoteErrorKind::NotFound,
                message: "the source object is gone".into(),
                hints: source.store.hints(),
            })?;
        let meta = meta.cloned().unwrap_or(head.meta);
        if head.size > LIMITS.max_single_copy {
            return Err(StorageError::Transfer {
                target: self.url_of_key(key),
                message: format!("{} bytes is over one block's 4000 MiB", head.size),
            });
        }
        if head.size == 0 {
            let empty = bytes::Bytes::new();
            return self
                .put(
                    key,
                    BodySource::Memory(&empty),
                    0,
                    &meta,
                    BodySums::NONE,
                    expect,
                )
                .await;
        }
        let upload = self.begin_staged(key, &meta).await?;
        let whole = CopyRange {
            start: 0,
            len: head.size,
            expected_md5: None,
            expected_crc32c: None,
        };
        let part = self.stage_copy(&upload, 1, 0, source, whole).await?;
        self.commit_staged(&upload, &[part], &meta, expect).await
    }

    /// A read-only SAS for a blob of this account, signed with the key.
    pub(super) fn service_sas(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<String, StorageError> {
        let Auth::SharedKey {
            account,
            key: secret,
        } = &self.resolved.auth
        else {
            return Ok(String::new());
        };
        let expiry = reqsign_core::time::Timestamp::now() + ttl;
        let sas = reqsign_azure_storage::ServiceSharedAccessSignature::new(
            account.clone(),
            secret.clone(),
            reqsign_azure_storage::ServiceSasResource::Blob {
                container: self.container.clone(),
                blob: key.to_string(),
            },
            "r".into(),
            expiry,
        );
        let pairs = sas.token().map_err(|e| StorageError::Transfer {
            target: self.url_of_key(key),
            message: format!("cannot sign a read grant: {e}"),
        })?;
        Ok(pairs
            .iter()
            .map(|(k, v)| format!("{}={}", query_value(k), query_value(v)))
            .collect::<Vec<_>>()
            .join("&"))
    }

    /// A bearer token's `Authorization` value, for a copy source under Entra ID.
    pub(super) async fn bearer(
        &self,
        url: &str,
        target: &str,
    ) -> Result<Option<String>, StorageError> {
        let request = http::Request::get(url)
            .header("x-ms-version", request::API_VERSION)
            .body(())
            .map_err(|e| StorageError::Transfer {
                target: target.to_string(),
                message: e.to_string(),
            })?;
        let (mut parts, ()) = request.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| StorageError::Remote {
                op: "cannot authorise a copy from",
                target: target.to_string(),
                kind: RemoteErrorKind::Denied,
                message: e.to_string(),
                hints: &HINTS,
            })?;
        Ok(parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
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
            .put_block(upload, number, headers, Payload::Empty, len, None)
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
