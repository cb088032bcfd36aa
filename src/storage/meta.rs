//! POSIX attributes in object metadata (`x-amz-meta-hugesync-*`): written on
//! upload, read back on download to restore them with `-a`.
//!
//! | key | value |
//! | --- | --- |
//! | `hugesync-mtime` | modification time, nanoseconds since the epoch (decimal) |
//! | `hugesync-mode` | permission bits, octal |
//! | `hugesync-uid`, `hugesync-gid` | owner, decimal |
//! | `hugesync-link` | symbolic link target, percent-encoded (the object is empty) |
//! | `hugesync-blake3` | blake3 of the content, hex (files sent with one PUT) |

use std::collections::HashMap;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode, percent_encode};

use crate::types::RelPath;

const MTIME: &str = "hugesync-mtime";
const MODE: &str = "hugesync-mode";
const UID: &str = "hugesync-uid";
const GID: &str = "hugesync-gid";
const LINK: &str = "hugesync-link";
const BLAKE3: &str = "hugesync-blake3";

/// Header values must be printable ASCII: everything else, and `%`, is escaped.
const HEADER_UNSAFE: &AsciiSet = &CONTROLS.add(b'%').add(b' ').add(b'"');

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub mtime_ns: Option<i64>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub link_target: Option<RelPath>,
    pub blake3: Option<String>,
}

impl ObjectMeta {
    /// Every metadata key HugeSync writes (a store that merges metadata
    /// updates is told to drop those a new value lacks).
    pub const KEYS: [&'static str; 6] = [MTIME, MODE, UID, GID, LINK, BLAKE3];

    pub fn to_headers(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        if let Some(mtime) = self.mtime_ns {
            map.insert(MTIME.into(), mtime.to_string());
        }
        if let Some(mode) = self.mode {
            map.insert(MODE.into(), format!("{mode:o}"));
        }
        if let Some(uid) = self.uid {
            map.insert(UID.into(), uid.to_string());
        }
        if let Some(gid) = self.gid {
            map.insert(GID.into(), gid.to_string());
        }
        if let Some(hash) = &self.blake3 {
            map.insert(BLAKE3.into(), hash.clone());
        }
        if let Some(target) = &self.link_target {
            // percent_encode escapes every non-ASCII byte as well.
            let encoded = percent_encode(target.as_bytes(), HEADER_UNSAFE).to_string();
            map.insert(LINK.into(), encoded);
        }
        map
    }

    /// Reads what is there; malformed values are ignored (another tool's or an
    /// older version's metadata must not fail a download).
    pub fn from_headers(map: &HashMap<String, String>) -> Self {
        let get = |key: &str| map.get(key).map(|v| v.trim());
        ObjectMeta {
            mtime_ns: get(MTIME).and_then(|v| v.parse().ok()),
            mode: get(MODE).and_then(|v| u32::from_str_radix(v, 8).ok()),
            uid: get(UID).and_then(|v| v.parse().ok()),
            gid: get(GID).and_then(|v| v.parse().ok()),
            blake3: get(BLAKE3)
                .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string),
            link_target: get(LINK)
                .map(|v| RelPath::from_bytes(&percent_decode(v.as_bytes()).collect::<Vec<u8>>())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_headers() {
        let meta = ObjectMeta {
            mtime_ns: Some(1_700_000_000_123_456_789),
            mode: Some(0o640),
            uid: Some(1000),
            gid: Some(100),
            link_target: Some(RelPath::from_bytes("../dir/ünï cödé%".as_bytes())),
            blake3: Some("ab".repeat(32)),
        };
        let headers = meta.to_headers();
        assert!(headers.values().all(|v| v.is_ascii()));
        assert_eq!(headers["hugesync-mode"], "640");
        assert_eq!(ObjectMeta::from_headers(&headers), meta);
    }

    #[test]
    fn malformed_values_are_ignored() {
        let headers = HashMap::from([
            ("hugesync-mtime".to_string(), "yesterday".to_string()),
            ("hugesync-mode".to_string(), "999".to_string()),
        ]);
        assert_eq!(ObjectMeta::from_headers(&headers), ObjectMeta::default());
    }
}
