//! Reading objects: one GET per call, whole or ranged, pinned to an ETag
//! (`storage::objects` retries and resumes them); presigned GET URLs for
//! services that read from S3 themselves.

use futures::StreamExt;

use super::{S3Storage, remote_error};
use crate::storage::StorageError;
use crate::storage::object::{ByteStream, ReadableUrl};

/// `bytes=a-b` for `len` bytes from `start` (`len` > 0).
fn range_header(start: u64, len: u64) -> String {
    format!("bytes={start}-{}", start + len - 1)
}

impl S3Storage {
    /// One GET, not retried.
    pub(super) async fn get_object(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        let url = self.url_of_key(key);
        let out = self
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(
                range
                    .filter(|&(_, len)| len > 0)
                    .map(|(s, l)| range_header(s, l)),
            )
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| remote_error("cannot read", url.clone(), e))?;
        let body = futures::stream::unfold(out.body, move |mut body| {
            let url = url.clone();
            async move {
                let next = body.next().await?;
                let item = next.map_err(|e| StorageError::Interrupted {
                    target: url,
                    message: e.to_string(),
                });
                Some((item, body))
            }
        });
        Ok(body.boxed())
    }

    /// A GET URL for `key`, signed for `ttl`.
    pub(super) async fn presigned_get(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<ReadableUrl, StorageError> {
        let url = self.url_of_key(key);
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(|e| {
            StorageError::Transfer {
                target: url.clone(),
                message: e.to_string(),
            }
        })?;
        let request = self
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| remote_error("cannot sign a URL for", url, e))?;
        Ok(ReadableUrl {
            url: request.uri().to_string(),
            authorization: None,
        })
    }
}
