//! S3 ETags as integrity checks: a single-part object's ETag is the MD5 of its
//! bytes; a multipart object's is the MD5 of its parts' binary MD5s, then `-N`.
//! (Objects encrypted with SSE-KMS/SSE-C have other ETags; their checks are
//! skipped, see `md5_of_part` in multipart.rs.)

use md5::{Digest, Md5};

/// The MD5 of some bytes.
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// The MD5 an ETag carries, if it is a plain (single-part) one.
pub fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let hex_text = etag.trim_matches('"');
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// The digest and part count of a multipart ETag (`"HEX-N"`).
pub fn multipart_digest(etag: &str) -> Option<([u8; 16], u32)> {
    let (hex_text, count) = etag.trim_matches('"').split_once('-')?;
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some((out, count.parse().ok()?))
}

/// The ETag S3 gives a multipart object made of parts with these MD5s.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut hasher = Md5::new();
    for part in part_md5s {
        hasher.update(part);
    }
    format!("\"{}-{}\"", hex::encode(hasher.finalize()), part_md5s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_are_md5_of_md5s() {
        // Two parts "a" and "b": md5(md5("a") || md5("b")) with "-2".
        let parts = [md5(b"a"), md5(b"b")];
        let etag = multipart_etag(&parts);
        assert!(etag.ends_with("-2\""));
        let mut joined = Vec::new();
        joined.extend_from_slice(&parts[0]);
        joined.extend_from_slice(&parts[1]);
        assert!(etag.contains(&hex::encode(md5(&joined))));
        assert_eq!(
            etag_md5("\"0cc175b9c0f1b6a831c399e269772661\""),
            Some(md5(b"a"))
        );
        assert_eq!(etag_md5("\"abc-2\""), None);
        let (digest, parts) = multipart_digest(&etag).unwrap();
        assert_eq!(parts, 2);
        assert_eq!(digest, md5(&joined));
        assert_eq!(
            multipart_digest("\"0cc175b9c0f1b6a831c399e269772661\""),
            None
        );
    }
}
