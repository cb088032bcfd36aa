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
//!
//! Where HugeSync's keys are absent, those other tools write are read instead
//! (a bucket filled by rclone or s3fs-fuse keeps its times under `-a`):
//! `mtime` (seconds with or without a fraction, as rclone writes it on S3 and
//! s3fs everywhere; RFC 3339, as rclone writes it on Azure and GCS),
//! `goog-reserved-file-mtime` (rclone on GCS, seconds), `mode` (the whole
//! `st_mode`: octal from rclone, decimal from s3fs — told apart by which reading
//! names a file type), `uid`, `gid`. `--metadata-compat rclone|s3fs` writes
//! them too, in that tool's form ([`ObjectMeta::to_headers_for`]).

use std::collections::HashMap;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode, percent_encode};

use crate::types::RelPath;

const MTIME: &str = "hugesync-mtime";
const MODE: &str = "hugesync-mode";
const UID: &str = "hugesync-uid";
const GID: &str = "hugesync-gid";
const LINK: &str = "hugesync-link";
const BLAKE3: &str = "hugesync-blake3";

/// Other tools' keys ([`MetadataCompat`]).
const COMPAT_MTIME: &str = "mtime";
const GCS_MTIME: &str = "goog-reserved-file-mtime";
const COMPAT_MODE: &str = "mode";
const COMPAT_UID: &str = "uid";
const COMPAT_GID: &str = "gid";

/// File type bits of an `st_mode`.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// Another tool whose metadata keys are written beside HugeSync's
/// (`--metadata-compat`), so a bucket moves between tools without losing its
/// times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataCompat {
    /// `mtime`, `mode` (octal `st_mode`), `uid`, `gid`, as `rclone --metadata`
    /// writes them.
    Rclone,
    /// `mtime` (whole seconds), `mode` (decimal `st_mode`), `uid`, `gid`, as
    /// s3fs-fuse writes them.
    S3fs,
}

impl MetadataCompat {
    pub const NAMES: &'static str = "rclone, s3fs";

    pub fn parse(text: &str) -> Option<MetadataCompat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "rclone" => Some(MetadataCompat::Rclone),
            "s3fs" => Some(MetadataCompat::S3fs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MetadataCompat::Rclone => "rclone",
            MetadataCompat::S3fs => "s3fs",
        }
    }
}

/// How rclone writes `mtime` on a store: seconds with nanoseconds on S3,
/// RFC 3339 on Azure and GCS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompatTime {
    Seconds,
    Rfc3339,
}

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

    /// [`to_headers`](Self::to_headers), plus another tool's keys where
    /// `compat` names one; `time` is how that tool writes `mtime` on the
    /// store at hand.
    pub fn to_headers_for(
        &self,
        compat: Option<MetadataCompat>,
        time: CompatTime,
    ) -> HashMap<String, String> {
        let mut map = self.to_headers();
        let Some(compat) = compat else { return map };
        if let Some(mtime) = self.mtime_ns {
            let (secs, nanos) = (
                mtime.div_euclid(1_000_000_000),
                mtime.rem_euclid(1_000_000_000),
            );
            let value = match (compat, time) {
                (MetadataCompat::S3fs, _) => secs.to_string(),
                (MetadataCompat::Rclone, CompatTime::Seconds) => format!("{secs}.{nanos:09}"),
                (MetadataCompat::Rclone, CompatTime::Rfc3339) => u64::try_from(secs)
                    .ok()
                    .map(|secs| {
                        let at =
                            std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos as u32);
                        humantime::format_rfc3339_nanos(at).to_string()
                    })
                    .unwrap_or_default(),
            };
            if !value.is_empty() {
                map.insert(COMPAT_MTIME.into(), value);
            }
        }
        if let Some(mode) = self.mode {
            // The whole st_mode, as both tools keep it: a link or a file.
            let kind = if self.link_target.is_some() {
                S_IFLNK
            } else {
                S_IFREG
            };
            let st_mode = kind | (mode & 0o7777);
            let value = match compat {
                MetadataCompat::Rclone => format!("{st_mode:o}"),
                MetadataCompat::S3fs => st_mode.to_string(),
            };
            map.insert(COMPAT_MODE.into(), value);
        }
        if let Some(uid) = self.uid {
            map.insert(COMPAT_UID.into(), uid.to_string());
        }
        if let Some(gid) = self.gid {
            map.insert(COMPAT_GID.into(), gid.to_string());
        }
        map
    }

    /// Reads what is there; malformed values are ignored (another tool's or an
    /// older version's metadata must not fail a download). HugeSync's keys
    /// win; other tools' stand in where they are absent.
    pub fn from_headers(map: &HashMap<String, String>) -> Self {
        let get = |key: &str| map.get(key).map(|v| v.trim());
        ObjectMeta {
            mtime_ns: get(MTIME)
                .and_then(|v| v.parse().ok())
                .or_else(|| get(COMPAT_MTIME).and_then(foreign_time))
                .or_else(|| get(GCS_MTIME).and_then(foreign_time)),
            mode: get(MODE)
                .and_then(|v| u32::from_str_radix(v, 8).ok())
                .or_else(|| get(COMPAT_MODE).and_then(foreign_mode)),
            uid: get(UID)
                .or_else(|| get(COMPAT_UID))
                .and_then(|v| v.parse().ok()),
            gid: get(GID)
                .or_else(|| get(COMPAT_GID))
                .and_then(|v| v.parse().ok()),
            blake3: get(BLAKE3)
                .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string),
            link_target: get(LINK)
                .map(|v| RelPath::from_bytes(&percent_decode(v.as_bytes()).collect::<Vec<u8>>())),
        }
    }
}

/// Nanoseconds since the epoch of another tool's `mtime`: seconds, with or
/// without a fraction (`1704164645.123456789`), or RFC 3339.
fn foreign_time(text: &str) -> Option<i64> {
    if let Some(at) = text
        .contains('T')
        .then(|| humantime::parse_rfc3339_weak(text).ok())
        .flatten()
    {
        let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
        return i64::try_from(since.as_nanos()).ok();
    }
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = format!("{fraction:0<9}").parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The permission bits of another tool's `mode`: a whole `st_mode`, octal
/// (rclone) or decimal (s3fs). The reading that names a file type is taken;
/// where both do, the regular file's.
fn foreign_mode(text: &str) -> Option<u32> {
    let typed = |mode: u32| {
        (mode & !0o177777 == 0 && matches!(mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK))
            .then_some(mode)
    };
    let octal = u32::from_str_radix(text, 8).ok().and_then(typed);
    let decimal = text.parse::<u32>().ok().and_then(typed);
    let mode = match (octal, decimal) {
        (Some(octal), Some(decimal))
            if decimal & S_IFMT == S_IFREG && octal & S_IFMT != S_IFREG =>
        {
            decimal
        }
        (octal, decimal) => octal.or(decimal)?,
    };
    Some(mode & 0o7777)
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

    #[test]
    fn other_tools_keys_stand_in_where_hugesyncs_are_absent() {
        let of = |pairs: &[(&str, &str)]| {
            ObjectMeta::from_headers(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        // As rclone 1.75 --metadata wrote them to moto.
        let rclone = of(&[
            ("mtime", "1704164645.123456789"),
            ("mode", "100640"),
            ("uid", "1000"),
            ("gid", "100"),
            ("atime", "2026-12-04T18:27:30.450752252Z"),
        ]);
        assert_eq!(rclone.mtime_ns, Some(1_704_164_645_123_456_789));
        assert_eq!(rclone.mode, Some(0o640));
        assert_eq!((rclone.uid, rclone.gid), (Some(1000), Some(100)));
        // s3fs: whole seconds, a decimal st_mode (0o100644 and 0o100600, the
        // latter all octal digits).
        let s3fs = of(&[("mtime", "1704164645"), ("mode", "33188")]);
        assert_eq!(s3fs.mtime_ns, Some(1_704_164_645_000_000_000));
        assert_eq!(s3fs.mode, Some(0o644));
        assert_eq!(of(&[("mode", "33152")]).mode, Some(0o600));
        // rclone on Azure and GCS: RFC 3339; on GCS also whole seconds.
        assert_eq!(
            of(&[("mtime", "2024-01-02T03:04:05.5Z")]).mtime_ns,
            Some(1_704_164_645_500_000_000)
        );
        assert_eq!(
            of(&[("goog-reserved-file-mtime", "1704164645")]).mtime_ns,
            Some(1_704_164_645_000_000_000)
        );
        // HugeSync's own win.
        let both = of(&[
            ("hugesync-mtime", "7"),
            ("mtime", "1704164645"),
            ("hugesync-mode", "600"),
            ("mode", "33188"),
        ]);
        assert_eq!((both.mtime_ns, both.mode), (Some(7), Some(0o600)));
        // Nonsense is ignored.
        let bad = of(&[("mtime", "soon"), ("mode", "9"), ("uid", "-1")]);
        assert_eq!(bad, ObjectMeta::default());
    }

    #[test]
    fn compat_keys_are_written_in_each_tools_form_and_read_back() {
        let meta = ObjectMeta {
            mtime_ns: Some(1_704_164_645_123_456_789),
            mode: Some(0o640),
            uid: Some(1000),
            gid: Some(100),
            ..ObjectMeta::default()
        };
        let rclone = meta.to_headers_for(Some(MetadataCompat::Rclone), CompatTime::Seconds);
        assert_eq!(rclone["mtime"], "1704164645.123456789");
        assert_eq!(rclone["mode"], "100640");
        assert_eq!(
            (rclone["uid"].as_str(), rclone["gid"].as_str()),
            ("1000", "100")
        );
        assert_eq!(rclone["hugesync-mtime"], "1704164645123456789");
        let on_azure = meta.to_headers_for(Some(MetadataCompat::Rclone), CompatTime::Rfc3339);
        assert_eq!(on_azure["mtime"], "2024-01-02T03:04:05.123456789Z");
        let s3fs = meta.to_headers_for(Some(MetadataCompat::S3fs), CompatTime::Seconds);
        assert_eq!(s3fs["mtime"], "1704164645");
        assert_eq!(s3fs["mode"], "33184");
        assert_eq!(
            meta.to_headers_for(None, CompatTime::Seconds),
            meta.to_headers()
        );
        // Read back without HugeSync's keys: the other tool's form suffices.
        for mut map in [rclone, on_azure] {
            map.retain(|k, _| !k.starts_with("hugesync-"));
            assert_eq!(ObjectMeta::from_headers(&map), meta);
        }
    }
}
