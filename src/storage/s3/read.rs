//! Reading objects: one GET per call, whole or ranged, pinned to an ETag
//! (`storage::objects` retries and resumes them); presigned GET URLs for
//! services that read from S3 themselves.

use futures::StreamExt;

use super::{S3Storage, remote_error};
use crate::storage::StorageError;
use crate::storage::object::{ByteStream, ReadableUrl};

/// Whether a GET's checksum is of the whole object (not a composite of
/// part checksums). moto names no type: a CRC64NVME is only ever a
/// full-object one, and a composite value (`…-N`) does not parse.
fn is_full_object(kind: Option<&aws_sdk_s3::types::ChecksumType>) -> bool {
    matches!(
        kind,
        None | Some(aws_sdk_s3::types::ChecksumType::FullObject)
    )
}

/// A whole object's bytes summed as they stream, against the CRC64NVME S3
/// sent with them.
struct Check {
    held: u64,
    digest: crc_fast::Digest,
    /// Bytes still to come (`None`: not said).
    left: Option<u64>,
}

impl Check {
    /// Sums `chunk`; at the last byte, whether the whole matches.
    fn update(&mut self, chunk: &[u8]) -> Option<bool> {
        self.digest.update(chunk);
        let left = self.left.as_mut()?;
        *left = left.saturating_sub(chunk.len() as u64);
        (*left == 0).then(|| self.digest.finalize() == self.held)
    }
}

fn damaged(target: String) -> StorageError {
    StorageError::Damaged {
        target,
        checksum: "CRC64NVME",
    }
}

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
        let range = range.filter(|&(_, len)| len > 0);
        let request = self
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(|(s, l)| range_header(s, l)))
            .set_if_match(if_match.map(str::to_string))
            .customize();
        // A whole object comes with the CRC S3 keeps of it, checked below as
        // it streams. Asked for by header: the SDK's own check (checksum_mode)
        // fails only after the last byte was handed on, which a resuming
        // reader would take for a cut-off body and go on from.
        let request = if range.is_none() {
            request.mutate_request(|request| {
                request
                    .headers_mut()
                    .insert("x-amz-checksum-mode", "ENABLED");
            })
        } else {
            request
        };
        let out = request
            .send()
            .await
            .map_err(|e| remote_error("cannot read", url.clone(), e))?;
        let held = out
            .checksum_crc64_nvme()
            .filter(|_| range.is_none() && is_full_object(out.checksum_type()))
            .and_then(super::object::parse_crc64nvme);
        let check = held.map(|crc| Check {
            held: crc,
            digest: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme),
            // Judged at the last byte: a reader that has all it asked for
            // need not poll for the end.
            left: out.content_length().and_then(|n| u64::try_from(n).ok()),
        });
        let body = futures::stream::unfold(Some((out.body, check)), move |state| {
            let url = url.clone();
            async move {
                let (mut body, mut check) = state?;
                match body.next().await {
                    Some(Ok(chunk)) => {
                        let whole = check.as_mut().map(|c| c.update(&chunk));
                        if whole == Some(Some(false)) {
                            return Some((Err(damaged(url)), None));
                        }
                        Some((Ok(chunk), Some((body, check))))
                    }
                    Some(Err(e)) => Some((
                        Err(StorageError::Interrupted {
                            target: url,
                            message: e.to_string(),
                        }),
                        Some((body, check)),
                    )),
                    // The end, where the length was not given.
                    None => match check {
                        Some(c) if c.left.is_none() && c.digest.finalize() != c.held => {
                            Some((Err(damaged(url)), None))
                        }
                        _ => None,
                    },
                }
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
