//! Headers of Blob service requests and answers: metadata in Azure's naming,
//! conditions, ETags, checksums and dates.

use std::collections::HashMap;

use base64::Engine;
use reqwest::Response;

use super::request::Header;
use crate::storage::StorageError;
use crate::storage::body::BodySums;
use crate::storage::meta::ObjectMeta;
use crate::storage::object::Expect;

/// Nanoseconds since the epoch of an HTTP date (`Last-Modified`).
pub(super) fn http_date_ns(text: &str) -> i64 {
    httpdate::parse_http_date(text.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Azure metadata names must be C# identifiers: `hugesync_mtime`, not the
/// `hugesync-mtime` of S3.
pub(super) fn meta_headers(
    meta: &ObjectMeta,
    compat: Option<crate::storage::meta::MetadataCompat>,
) -> Vec<(Header, String)> {
    // rclone writes `mtime` on Azure in RFC 3339.
    meta.to_headers_for(compat, crate::storage::meta::CompatTime::Rfc3339)
        .into_iter()
        .map(|(name, value)| {
            let name = format!("x-ms-meta-{}", name.replace('-', "_"));
            (Header::Owned(name), value)
        })
        .collect()
}

pub(super) fn meta_from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> ObjectMeta {
    let map: HashMap<String, String> = pairs
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase().replace('_', "-"),
                value.to_string(),
            )
        })
        .collect();
    ObjectMeta::from_headers(&map)
}

pub(super) fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn md5_header(response: &Response) -> Option<[u8; 16]> {
    md5_of_base64(header(response, "content-md5")?)
}

/// The checksum headers of a body: `x-ms-content-crc64` (base64 of the
/// little-endian CRC-64/NVME, as Azure's SDKs and the service write it) or
/// Content-MD5, whichever the caller took (never both: the service refuses
/// that).
pub(super) fn body_sum_headers(sums: &BodySums) -> Vec<(Header, String)> {
    let base64 = &base64::engine::general_purpose::STANDARD;
    if let Some(crc) = sums.crc64nvme {
        vec![(
            "x-ms-content-crc64".into(),
            base64.encode(crc.to_le_bytes()),
        )]
    } else if let Some(md5) = sums.md5 {
        vec![("content-md5".into(), base64.encode(md5))]
    } else {
        Vec::new()
    }
}

/// A CRC64 as Azure writes it (base64 of the little-endian value); `None`
/// for a malformed one.
fn crc64_of_base64(value: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Checks the CRC64 the service says it computed of what it received
/// against the one sent. `required`: a missing (or unreadable) one fails too
/// (Put Block always answers with one when no MD5 was sent; Put Blob need
/// not, and is then checked by the service alone).
pub(super) fn check_received_crc64(
    sent: Option<u64>,
    response: &Response,
    target: &str,
    required: bool,
) -> Result<Option<u64>, StorageError> {
    let echoed = header(response, "x-ms-content-crc64").map(crc64_of_base64);
    if !required && !matches!(echoed, Some(Some(_))) {
        return Ok(None);
    }
    crate::storage::body::check_echoed_crc64(sent, echoed, target)
}

/// An MD5 as Azure writes it (base64); `None` for an empty or malformed one.
pub(super) fn md5_of_base64(value: &str) -> Option<[u8; 16]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    bytes.try_into().ok()
}

pub(super) fn etag_of(response: &Response, target: &str) -> Result<String, StorageError> {
    header(response, "etag")
        .map(str::to_string)
        .ok_or_else(|| StorageError::Transfer {
            target: target.to_string(),
            message: "the service gave no ETag".into(),
        })
}

/// An ETag as headers give it (quoted): listings give it bare.
pub(super) fn quoted(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

pub(super) fn condition_headers(expect: Expect<'_>) -> Vec<(Header, String)> {
    match expect {
        Expect::Any => Vec::new(),
        Expect::Absent => vec![("if-none-match".into(), "*".into())],
        Expect::Version(etag) => vec![("if-match".into(), etag.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_are_identifiers() {
        let meta = ObjectMeta {
            mtime_ns: Some(12),
            mode: Some(0o600),
            ..ObjectMeta::default()
        };
        let headers = meta_headers(&meta, None);
        assert!(
            headers
                .iter()
                .all(|(n, _)| n.starts_with("x-ms-meta-hugesync_") && !n[10..].contains('-'))
        );
        let back = meta_from_pairs(
            headers
                .iter()
                .map(|(n, v)| (n.strip_prefix("x-ms-meta-").unwrap_or(n), v.as_str())),
        );
        assert_eq!(back, meta);
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            http_date_ns("Sun, 06 Nov 1994 08:49:37 GMT"),
            784_111_777_000_000_000
        );
        assert_eq!(http_date_ns("yesterday"), 0);
    }

    #[test]
    fn a_body_crc64_is_azures_crc64_little_endian() {
        // Azure's own CRC64 test vector (azure-sdk-for-java's
        // StorageCrc64CalculatorTests): the service's CRC64 is CRC-64/NVME.
        let crc = crate::storage::body::crc64nvme_of(b"Hello World!");
        assert_eq!(crc, 208_604_604_655_264_165);
        let sums = BodySums {
            crc64nvme: Some(crc),
            md5: Some([0; 16]),
            crc32c: None,
        };
        let headers = body_sum_headers(&sums);
        assert_eq!(headers.len(), 1, "never both: the service refuses that");
        assert_eq!(headers[0].0, "x-ms-content-crc64");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&headers[0].1)
            .unwrap();
        assert_eq!(bytes, crc.to_le_bytes());
        let md5_only = body_sum_headers(&BodySums::md5(Some([7; 16])));
        assert_eq!(md5_only[0].0, "content-md5");
    }
}
