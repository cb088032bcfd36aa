//! The JSON API's resources, as far as HugeSync reads and writes them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// An object resource (a listing item, a HEAD, an upload's answer).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    pub name: String,
    /// Decimal, as a string.
    #[serde(default)]
    pub size: Option<String>,
    /// The content's version: changes with every write of the bytes (not
    /// with metadata updates). Decimal, as a string.
    #[serde(default)]
    pub generation: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub updated: Option<String>,
    #[serde(default)]
    pub time_created: Option<String>,
    /// Base64; absent on composite objects.
    #[serde(default)]
    pub md5_hash: Option<String>,
    /// Base64 of the big-endian CRC32C; every object has one.
    #[serde(default)]
    pub crc32c: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

impl Object {
    pub fn size(&self) -> u64 {
        self.size
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn md5(&self) -> Option<[u8; 16]> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.md5_hash.as_deref()?)
            .ok()?;
        bytes.try_into().ok()
    }

    pub fn crc32c(&self) -> Option<u32> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.crc32c.as_deref()?)
            .ok()?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// One page of a listing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectList {
    #[serde(default)]
    pub items: Vec<Object>,
    /// With a delimiter: the common prefixes of this page.
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// What an upload or compose writes besides the bytes.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewObject<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub content_type: &'a str,
    /// Base64 MD5 of the bytes: the service refuses an upload that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5_hash: Option<String>,
    /// Base64 big-endian CRC32C of the bytes: refused likewise, and a tenth
    /// of MD5's cost to compute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
    /// `--storage-class`; absent: the bucket's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<&'a str>,
}

/// A metadata update: keys set to `None` are removed.
#[derive(Debug, Serialize)]
pub struct MetadataPatch {
    pub metadata: HashMap<String, Option<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeRequest<'a> {
    pub source_objects: Vec<ComposeSource<'a>>,
    pub destination: NewObject<'a>,
}

#[derive(Debug, Serialize)]
pub struct ComposeSource<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<&'a str>,
}

/// A rewrite's answer: done, or a token to continue with.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewriteResponse {
    pub done: bool,
    #[serde(default)]
    pub rewrite_token: Option<String>,
    #[serde(default)]
    pub resource: Option<Object>,
}

/// The JSON API's error body.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_objects_crc32c_goes_as_base64_of_its_big_endian_bytes() {
        use base64::Engine;
        let crc = crc32c::crc32c(b"123456789");
        assert_eq!(crc, 0xe306_9283);
        let resource = NewObject {
            name: Some("k"),
            content_type: "application/octet-stream",
            crc32c: Some(base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())),
            ..NewObject::default()
        };
        let json = serde_json::to_string(&resource).unwrap();
        assert!(json.contains(r#""crc32c":"4waSgw==""#), "{json}");
        assert!(!json.contains("md5Hash"), "{json}");
        // As the service reports it back.
        let stored: Object = serde_json::from_str(r#"{"name":"k","crc32c":"4waSgw=="}"#).unwrap();
        assert_eq!(stored.crc32c(), Some(crc));
    }
}
