//! Parsing `SRC`/`DST` arguments into a [`Location`]: a local path, or a
//! location on a kind of store registered in `storage::kind`, which parses
//! what follows its scheme and knows the facts about itself.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::storage::kind::{self, StoreKind};

/// Where one side of a sync lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Local(PathBuf),
    Remote(RemoteLocation),
}

/// A location on a store: its kind, the bucket, container or server, and
/// the prefix below it.
#[derive(Clone, Debug)]
pub struct RemoteLocation {
    pub kind: &'static StoreKind,
    /// Bucket, container or server (`[USER@]HOST[:PORT]`), as written.
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
}

impl PartialEq for RemoteLocation {
    fn eq(&self, other: &Self) -> bool {
        self.kind.scheme == other.kind.scheme
            && self.bucket == other.bucket
            && self.prefix == other.prefix
    }
}

impl Eq for RemoteLocation {}

impl std::hash::Hash for RemoteLocation {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.kind.scheme, &self.bucket, &self.prefix).hash(state);
    }
}

/// How a side keeps modification times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeGrain {
    /// A file's own mtime, to the nanosecond (local disks).
    Nanoseconds,
    /// A file's own mtime, to the second (SFTP).
    Seconds,
    /// Only when the object was written (object stores' LastModified).
    WrittenOnly,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocationError {
    #[error("`{uri}`: empty location")]
    Empty { uri: String },
    #[error("`{uri}`: unknown scheme `{scheme}://` (use a local path, {known} or HOST:PATH)")]
    UnknownScheme {
        uri: String,
        scheme: String,
        known: String,
    },
    #[error("`{uri}`: the {what} name is missing (expected {scheme}://NAME/prefix)")]
    MissingBucket {
        uri: String,
        what: &'static str,
        scheme: &'static str,
    },
    #[error("`{uri}`: invalid {what} name `{name}`: {why}")]
    BadBucket {
        uri: String,
        what: &'static str,
        name: String,
        why: &'static str,
    },
    #[error("`{uri}`: invalid prefix: {why}")]
    BadPrefix { uri: String, why: &'static str },
    /// A location that is not in any of its kind's forms.
    #[error("`{uri}`: {why} (expected {forms})")]
    Malformed {
        uri: String,
        why: &'static str,
        forms: &'static str,
    },
}

impl Location {
    /// Parses a command-line location. Anything without a `scheme://` is a local path;
    /// `file://` is accepted too.
    pub fn parse(uri: &str) -> Result<Location, LocationError> {
        if uri.is_empty() {
            return Err(LocationError::Empty { uri: uri.into() });
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            // rsync's HOST:PATH: a colon before the first slash (`./a:b` and
            // `/x/a:b` stay local paths).
            let host_path = kind::KINDS
                .iter()
                .find_map(|kind| kind.parse_host_path.map(|parse| (*kind, parse)));
            return match (uri.split_once(':'), host_path) {
                (Some((host, _)), Some((kind, parse)))
                    if !host.is_empty() && !host.contains('/') =>
                {
                    let (bucket, prefix) = parse(uri)?;
                    Ok(Location::Remote(RemoteLocation {
                        kind,
                        bucket,
                        prefix,
                    }))
                }
                _ => Ok(Location::Local(PathBuf::from(uri))),
            };
        };
        // A local path may legitimately contain "://" after a slash (`./a://b`).
        if scheme.contains('/') || scheme.is_empty() {
            return Ok(Location::Local(PathBuf::from(uri)));
        }
        if scheme.eq_ignore_ascii_case("file") {
            if rest.is_empty() {
                return Err(LocationError::Empty { uri: uri.into() });
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        let kind = kind::by_scheme(scheme).ok_or_else(|| LocationError::UnknownScheme {
            uri: uri.into(),
            scheme: scheme.to_ascii_lowercase(),
            known: kind::schemes(),
        })?;
        let (bucket, prefix) = (kind.parse)(uri, rest)?;
        Ok(Location::Remote(RemoteLocation {
            kind,
            bucket,
            prefix,
        }))
    }

    /// The store location, unless this is a local path.
    pub fn remote(&self) -> Option<&RemoteLocation> {
        match self {
            Location::Local(_) => None,
            Location::Remote(remote) => Some(remote),
        }
    }

    /// The bucket (container, server) and prefix of a store location.
    pub fn bucket_and_prefix(&self) -> Option<(&str, &str)> {
        self.remote()
            .map(|remote| (remote.bucket.as_str(), remote.prefix.as_str()))
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }

    /// How finely this side keeps a file's modification time.
    pub fn time_grain(&self) -> TimeGrain {
        self.remote()
            .map_or(TimeGrain::Nanoseconds, |remote| remote.kind.time_grain)
    }

    /// The delta block size for files kept on this side, when it is not the
    /// default (`signature::DEFAULT_BLOCK_SIZE`, S3's 5 MiB part floor).
    pub fn delta_block_size(&self) -> Option<u32> {
        self.remote()
            .and_then(|remote| remote.kind.delta_block_size)
    }

    /// Whether a listing of this side carries each file's permission bits.
    pub fn lists_modes(&self) -> bool {
        self.remote().is_none_or(|remote| remote.kind.lists_modes)
    }

    /// The scheme name shown in messages (`local`, `s3`, `gs`, `az`).
    pub fn scheme(&self) -> &'static str {
        self.remote().map_or("local", |remote| remote.kind.scheme)
    }

    /// What the root lives on, in messages (`disk`, `bucket`, `container`,
    /// `server`).
    pub fn container(&self) -> &'static str {
        self.remote().map_or("disk", |remote| remote.kind.container)
    }
}

/// Turns `a/b/` or `a/b` into `a/b/` (empty stays empty), rejecting segments that
/// would make keys ambiguous or escape the prefix.
pub fn normalize_prefix(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        match segment {
            "" => return Err("empty path segment (`//`)"),
            "." | ".." => return Err("`.` and `..` segments are not allowed"),
            s if s.chars().any(char::is_control) => {
                return Err("control characters are not allowed");
            }
            _ => {}
        }
    }
    Ok(format!("{trimmed}/"))
}

impl fmt::Display for RemoteLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.kind.scheme, self.bucket, self.prefix)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Remote(remote) => remote.fmt(f),
        }
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Location::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths() {
        assert_eq!(
            Location::parse("data").unwrap(),
            Location::Local("data".into())
        );
        assert_eq!(
            Location::parse("/a/b/").unwrap(),
            Location::Local("/a/b/".into())
        );
        assert_eq!(
            Location::parse("file:///x").unwrap(),
            Location::Local("/x".into())
        );
        assert_eq!(
            Location::parse("./a://b").unwrap(),
            Location::Local("./a://b".into())
        );
    }

    #[test]
    fn buckets_and_prefixes() {
        let parts = |uri: &str| {
            let location = Location::parse(uri).unwrap();
            let (bucket, prefix) = location.bucket_and_prefix().unwrap();
            (location.scheme(), bucket.to_string(), prefix.to_string())
        };
        assert_eq!(
            parts("s3://my-bucket"),
            ("s3", "my-bucket".into(), String::new())
        );
        assert_eq!(
            parts("s3://my-bucket/a/b"),
            ("s3", "my-bucket".into(), "a/b/".into())
        );
        assert_eq!(parts("gs://b_1/x/"), ("gs", "b_1".into(), "x/".into()));
        assert_eq!(parts("az://cont/p"), ("az", "cont".into(), "p/".into()));
    }

    #[test]
    fn precise_errors() {
        assert!(matches!(
            Location::parse("s3:///x"),
            Err(LocationError::MissingBucket { .. })
        ));
        assert!(matches!(
            Location::parse("s3://My_Bucket/x"),
            Err(LocationError::BadBucket { .. })
        ));
        assert!(matches!(
            Location::parse("s3://ab"),
            Err(LocationError::BadBucket { .. })
        ));
        assert!(matches!(
            Location::parse("s3://-abc"),
            Err(LocationError::BadBucket { .. })
        ));
        assert!(matches!(
            Location::parse("az://a--b"),
            Err(LocationError::BadBucket { .. })
        ));
        assert!(matches!(
            Location::parse("s3://bucket/a//b"),
            Err(LocationError::BadPrefix { .. })
        ));
        assert!(matches!(
            Location::parse("s3://bucket/a/../b"),
            Err(LocationError::BadPrefix { .. })
        ));
        assert!(matches!(
            Location::parse("ftp://host/x"),
            Err(LocationError::UnknownScheme { .. })
        ));
        assert!(matches!(
            Location::parse(""),
            Err(LocationError::Empty { .. })
        ));
        let msg = Location::parse("s3://Bad").unwrap_err().to_string();
        assert!(msg.contains("invalid bucket name `Bad`"), "{msg}");
    }

    #[test]
    fn display_round_trips() {
        for uri in ["s3://bucket/a/b/", "gs://bucket/", "az://container/x/"] {
            assert_eq!(Location::parse(uri).unwrap().to_string(), uri);
        }
    }
}
