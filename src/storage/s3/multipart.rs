//! The staged object family on S3: a multipart upload whose parts are uploaded
//! or copied server-side from existing objects, and which appears only at
//! completion. Every part's MD5 is known (ours for uploads, the server's part
//! ETag for copies), so a completed object's ETag — the MD5 of its parts' MD5s
//! — is checked against the parts that made it.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};

use super::etag::{etag_md5, multipart_etag};
use super::object::{check_received_crc64nvme, content_md5, crc64nvme_header, parse_crc64nvme};
use super::{LIMITS, S3Storage, remote_error};
use crate::retry::{Activity, Budget};
use crate::storage::body::{BodySource, BodySums};
use crate::storage::limits::ChecksumKind;
use crate::storage::meta::ObjectMeta;
use crate::storage::object::{
    CopyRange, Expect, PendingUpload, StagedPart, StagedUpload, same_version,
};
use crate::storage::{RemoteErrorKind, StorageError};

fn transfer_error(target: String, message: impl ToString) -> StorageError {
    StorageError::Transfer {
        target,
        message: message.to_string(),
    }
}

/// The MD5 a part's ETag carries: none under SSE-KMS or SSE-C, whose ETags
/// are not MD5s of the bytes.
fn md5_of_part(
    etag: &str,
    encryption: Option<&ServerSideEncryption>,
    customer_algorithm: Option<&str>,
) -> Option<[u8; 16]> {
    let encrypted_with_keys = customer_algorithm.is_some()
        || matches!(
            encryption,
            Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
        );
    if encrypted_with_keys {
        None
    } else {
        etag_md5(etag)
    }
}

/// The CRC64NVME of the object `parts` make, when every part's is known.
fn whole_crc64nvme(parts: &[StagedPart]) -> Option<u64> {
    let mut parts = parts.iter();
    let first = parts.next()?;
    parts.try_fold(first.crc64nvme?, |whole, part| {
        Some(crc_fast::checksum_combine(
            crc_fast::CrcAlgorithm::Crc64Nvme,
            whole,
            part.crc64nvme?,
            part.size,
        ))
    })
}

impl S3Storage {
    /// Whether this store's bodies carry CRC64NVME (uploads are made
    /// full-object CRC64NVME ones).
    fn sends_crc64nvme(&self) -> bool {
        crate::storage::ObjectStore::limits(self).body_checksum == Some(ChecksumKind::Crc64Nvme)
    }
}

/// S3 numbers parts from 1 to 10,000: anything else is refused here.
fn part_number(number: u32, target: &str) -> Result<i32, StorageError> {
    if number == 0 || number as usize > LIMITS.max_parts {
        return Err(transfer_error(
            target.to_string(),
            format!("part number {number} is outside 1..={}", LIMITS.max_parts),
        ));
    }
    Ok(number as i32)
}

impl S3Storage {
    pub(super) async fn create_multipart(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        let url = self.url_of_key(key);
        let out = self
            .retry
            .run(&url, Budget::Quick, || async {
                self.client()
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_metadata(Some(self.meta_headers(meta)))
                    .set_storage_class(self.class_of(key))
                    // Parts carry their CRC64NVME, and the object gets the
                    // whole file's (S3 combines the parts').
                    .set_checksum_algorithm(
                        self.sends_crc64nvme()
                            .then_some(ChecksumAlgorithm::Crc64Nvme),
                    )
                    .set_checksum_type(self.sends_crc64nvme().then_some(ChecksumType::FullObject))
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot start an upload of", url.clone(), e))
            })
            .await?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| transfer_error(url, "the server gave no upload id"))?;
        Ok(StagedUpload {
            key: key.to_string(),
            id: upload_id.to_string(),
        })
    }

    /// Uploads `len` bytes from `source` as part `number`, retried; with their
    /// MD5 or CRC64NVME known, the server checks them. The body is streamed,
    /// not hashed for the signature (one hash pass, not two; TLS covers the
    /// rest).
    pub(super) async fn upload_part(
        &self,
        upload: &StagedUpload,
        number: u32,
        source: BodySource<'_>,
        len: u64,
        sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        // An upload made a CRC64NVME one takes no part without its CRC.
        let sums = if self.sends_crc64nvme() && sums.crc64nvme.is_none() {
            BodySums {
                crc64nvme: source
                    .sums(len, Some(ChecksumKind::Crc64Nvme))
                    .await?
                    .crc64nvme,
                ..sums
            }
        } else {
            sums
        };
        let md5 = sums.md5;
        let url = self.url_of_key(&upload.key);
        let sdk_number = part_number(number, &url)?;
        if len > LIMITS.max_part {
            return Err(transfer_error(
                url,
                format!("a {len}-byte part is over 5 GiB"),
            ));
        }
        let activity = std::sync::Arc::new(Activity::default());
        let out = self
            .retry
            .run(&url, Budget::Watched(activity.clone()), || async {
                let body = source.open(len, &activity).await?;
                let out = self
                    .client()
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(&upload.key)
                    .upload_id(&upload.id)
                    .part_number(sdk_number)
                    .content_length(len as i64)
                    .set_content_md5(md5.map(|m| content_md5(&m)))
                    .set_checksum_algorithm(sums.crc64nvme.map(|_| ChecksumAlgorithm::Crc64Nvme))
                    .set_checksum_crc64_nvme(sums.crc64nvme.map(crc64nvme_header))
                    .body(ByteStream::from_body_1_x(body))
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot upload a part of", url.clone(), e))?;
                check_received_crc64nvme(sums.crc64nvme, out.checksum_crc64_nvme(), &url)?;
                Ok(out)
            })
            .await?;
        let etag = out
            .e_tag()
            .ok_or_else(|| transfer_error(url, "the server gave no part ETag"))?;
        Ok(StagedPart {
            crc64nvme: sums.crc64nvme,
            number,
            tag: etag.to_string(),
            size: len,
            md5: md5_of_part(
                etag,
                out.server_side_encryption(),
                out.sse_customer_algorithm(),
            ),
        })
    }

    /// Copies `range` of `copy_source` as part `number`, server-side, pinned
    /// to the source's ETag. The part's ETag is the MD5 of the bytes copied
    /// (unless encryption makes it something else): compared with the MD5 the
    /// range must have, a sidecar or a version that lies is caught here,
    /// before the part can become part of an object.
    pub(super) async fn upload_part_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        copy_source: &str,
        source_etag: Option<&str>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        let CopyRange { start, len, .. } = range;
        let url = self.url_of_key(&upload.key);
        let sdk_number = part_number(number, &url)?;
        if len == 0 || len > LIMITS.max_part {
            return Err(transfer_error(
                url,
                format!("cannot copy a {len}-byte part"),
            ));
        }
        let out = self
            .retry
            .run(&url, Budget::ServerSide, || async {
                self.client()
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(&upload.key)
                    .upload_id(&upload.id)
                    .part_number(sdk_number)
                    .copy_source(copy_source)
                    .copy_source_range(format!("bytes={start}-{}", start + len - 1))
                    .set_copy_source_if_match(source_etag.map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot copy a part into", url.clone(), e))
            })
            .await?;
        let etag = out
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .ok_or_else(|| transfer_error(url.clone(), "the server gave no part ETag"))?;
        let md5 = md5_of_part(
            etag,
            out.server_side_encryption(),
            out.sse_customer_algorithm(),
        );
        if let (Some(expected), Some(copied)) = (range.expected_md5, md5)
            && expected != copied
        {
            return Err(StorageError::Remote {
                op: "cannot copy a part into",
                target: url,
                kind: RemoteErrorKind::ChecksumMismatch,
                message: format!(
                    "bytes {start}..{} of the source have MD5 {}, not the expected {}",
                    start + len,
                    hex::encode(copied),
                    hex::encode(expected)
                ),
                hints: &super::HINTS,
            });
        }
        Ok(StagedPart {
            crc64nvme: out
                .copy_part_result()
                .and_then(|r| r.checksum_crc64_nvme())
                .and_then(parse_crc64nvme),
            number,
            tag: etag.to_string(),
            size: len,
            md5,
        })
    }

    /// Completes the upload: the object appears now, if the key still holds
    /// what `expect` says (where the server honours the condition). The ETag it
    /// gets must be the MD5 of the parts' MD5s.
    pub(super) async fn complete_multipart(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let url = self.url_of_key(&upload.key);
        if parts.len() > LIMITS.max_parts {
            return Err(transfer_error(
                url,
                format!("{} parts exceed S3's 10,000", parts.len()),
            ));
        }
        let expected = parts
            .iter()
            .map(|p| p.md5)
            .collect::<Option<Vec<_>>>()
            .map(|md5s| multipart_etag(&md5s));
        let sdk_parts = parts
            .iter()
            .map(|p| {
                Ok(CompletedPart::builder()
                    .part_number(part_number(p.number, &url)?)
                    .e_tag(&p.tag)
                    .set_checksum_crc64_nvme(p.crc64nvme.map(crc64nvme_header))
                    .build())
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        // The whole object's CRC64NVME, combined from its parts': S3 checks
        // it against the object it assembles.
        let whole_crc = if self.sends_crc64nvme() {
            whole_crc64nvme(parts)
        } else {
            None
        };
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(sdk_parts))
            .build();
        let result = self
            .retry
            .run(&url, Budget::ServerSide, || async {
                self.client()
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&upload.key)
                    .upload_id(&upload.id)
                    .multipart_upload(completed.clone())
                    .set_checksum_crc64_nvme(whole_crc.map(crc64nvme_header))
                    .set_checksum_type(whole_crc.map(|_| ChecksumType::FullObject))
                    .set_if_match(expect.if_match())
                    .set_if_none_match(expect.if_none_match())
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot complete the upload of", url.clone(), e))
            })
            .await;
        let etag = match result {
            Ok(out) => out.e_tag().map(str::to_string),
            // A completion retried after its answer was lost finds the upload
            // gone (or its condition failed by our own object): done, if the
            // object is the one these parts make.
            Err(
                error @ StorageError::Remote {
                    kind: RemoteErrorKind::PreconditionFailed | RemoteErrorKind::NotFound,
                    ..
                },
            ) => {
                let now = self.head_object(&upload.key).await?;
                match (now.and_then(|h| h.version), &expected) {
                    (Some(now), Some(expected)) if same_version(&now, expected) => Some(now),
                    _ => return Err(error),
                }
            }
            Err(error) => return Err(error),
        }
        .ok_or_else(|| transfer_error(url.clone(), "the server gave no ETag for the object"))?;
        if let Some(expected) = expected
            && !same_version(&expected, &etag)
        {
            return Err(StorageError::Verification {
                target: url,
                message: format!(
                    "the completed object's ETag is {etag}, but its parts make {expected}"
                ),
            });
        }
        Ok(etag)
    }

    /// Abandons the upload and frees its parts.
    pub(super) async fn abort_multipart(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        let url = self.url_of_key(&upload.key);
        self.retry
            .run(&url, Budget::Quick, || async {
                self.client()
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&upload.key)
                    .upload_id(&upload.id)
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot abort the upload of", url.clone(), e))
            })
            .await?;
        Ok(())
    }

    /// The parts the server holds for an upload, in part order (all pages).
    pub(super) async fn list_parts(
        &self,
        upload: &StagedUpload,
    ) -> Result<Vec<StagedPart>, StorageError> {
        let url = self.url_of_key(&upload.key);
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .retry
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .list_parts()
                        .bucket(&self.bucket)
                        .key(&upload.key)
                        .upload_id(&upload.id)
                        .set_part_number_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot list the parts of", url.clone(), e))
                })
                .await?;
            parts.extend(page.parts().iter().filter_map(|p| {
                let etag = p.e_tag()?;
                Some(StagedPart {
                    crc64nvme: p.checksum_crc64_nvme().and_then(parse_crc64nvme),
                    number: u32::try_from(p.part_number()?).ok()?,
                    tag: etag.to_string(),
                    size: p.size()?.max(0) as u64,
                    md5: etag_md5(etag),
                })
            }));
            match page.next_part_number_marker() {
                Some(next)
                    if page.is_truncated() == Some(true) && marker.as_deref() != Some(next) =>
                {
                    marker = Some(next.to_string());
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Incomplete multipart uploads below this storage's prefix (all pages).
    pub(super) async fn list_multipart_uploads(&self) -> Result<Vec<PendingUpload>, StorageError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        let url = self.url_of_prefix();
        loop {
            let page = self
                .retry
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(&self.prefix)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot list uploads in", url.clone(), e))
                })
                .await?;
            uploads.extend(page.uploads().iter().filter_map(|u| {
                Some(PendingUpload {
                    key: u.key()?.to_string(),
                    id: u.upload_id()?.to_string(),
                    initiated_ns: u.initiated().map(super::list::timestamp_ns),
                })
            }));
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(uploads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, bytes: &[u8]) -> StagedPart {
        StagedPart {
            crc64nvme: Some(crate::storage::body::crc64nvme_of(bytes)),
            number,
            tag: String::new(),
            size: bytes.len() as u64,
            md5: None,
        }
    }

    #[test]
    fn the_whole_objects_crc_is_its_parts_combined() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let parts = [
            part(1, &bytes[..4096]),
            part(2, &bytes[4096..9000]),
            part(3, &bytes[9000..]),
        ];
        assert_eq!(
            whole_crc64nvme(&parts),
            Some(crate::storage::body::crc64nvme_of(&bytes))
        );
        let unknown = StagedPart {
            crc64nvme: None,
            ..parts[1].clone()
        };
        assert_eq!(
            whole_crc64nvme(&[parts[0].clone(), unknown, parts[2].clone()]),
            None
        );
    }
}
