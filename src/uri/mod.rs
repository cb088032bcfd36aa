//! Parsing `SRC`/`DST` arguments into a [`Location`].

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where one side of a sync lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
    Gcs { bucket: String, prefix: String },
    Azure { container: String, prefix: String },
    Sftp(SftpTarget),
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

mod sftp;

pub use sftp::SftpTarget;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocationError {
    #[error("`{uri}`: empty location")]
    Empty { uri: String },
    #[error(
        "`{uri}`: unknown scheme `{scheme}://` (use a local path, s3://, gs://, az://, sftp:// or HOST:PATH)"
    )]
    UnknownScheme { uri: String, scheme: String },
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
    #[error(
        "`{uri}`: {why} (expected sftp://[USER@]HOST[:PORT]/PATH, sftp://HOST/~/PATH or USER@HOST:PATH)"
    )]
    BadSftp { uri: String, why: &'static str },
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
            return match uri.split_once(':') {
                Some((host, _)) if !host.is_empty() && !host.contains('/') => {
                    sftp::parse_rsync_form(uri).map(Location::Sftp)
                }
                _ => Ok(Location::Local(PathBuf::from(uri))),
            };
        };
        // A local path may legitimately contain "://" after a slash (`./a://b`).
        if scheme.contains('/') || scheme.is_empty() {
            return Ok(Location::Local(PathBuf::from(uri)));
        }
        let (kind, scheme) = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if rest.is_empty() {
                    return Err(LocationError::Empty { uri: uri.into() });
                }
                return Ok(Location::Local(PathBuf::from(rest)));
            }
            "sftp" => return sftp::parse_sftp_url(uri, rest).map(Location::Sftp),
            "s3" => (BucketKind::S3, "s3"),
            "gs" => (BucketKind::Gcs, "gs"),
            "az" => (BucketKind::Azure, "az"),
            other => {
                return Err(LocationError::UnknownScheme {
                    uri: uri.into(),
                    scheme: other.into(),
                });
            }
        };
        let (bucket, raw_prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(LocationError::MissingBucket {
                uri: uri.into(),
                what: kind.what(),
                scheme,
            });
        }
        if let Err(why) = kind.validate(bucket) {
            return Err(LocationError::BadBucket {
                uri: uri.into(),
                what: kind.what(),
                name: bucket.into(),
                why,
            });
        }
        let prefix = normalize_prefix(raw_prefix).map_err(|why| LocationError::BadPrefix {
            uri: uri.into(),
            why,
        })?;
        let bucket = bucket.to_string();
        Ok(match kind {
            BucketKind::S3 => Location::S3 { bucket, prefix },
            BucketKind::Gcs => Location::Gcs { bucket, prefix },
            BucketKind::Azure => Location::Azure {
                container: bucket,
                prefix,
            },
        })
    }

    /// The bucket (or container) and prefix of an object-store location.
    pub fn bucket_and_prefix(&self) -> Option<(&str, &str)> {
        match self {
            Location::Local(_) | Location::Sftp(_) => None,
            Location::S3 { bucket, prefix } | Location::Gcs { bucket, prefix } => {
                Some((bucket, prefix))
            }
            Location::Azure { container, prefix } => Some((container, prefix)),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }

    /// How finely this side keeps a file's modification time.
    pub fn time_grain(&self) -> TimeGrain {
        match self {
            Location::Local(_) => TimeGrain::Nanoseconds,
            // SFTP v3 carries whole seconds.
            Location::Sftp(_) => TimeGrain::Seconds,
            Location::S3 { .. } | Location::Gcs { .. } | Location::Azure { .. } => {
                TimeGrain::WrittenOnly
            }
        }
    }

    /// The delta block size for files kept on this side, when it is not the
    /// default (`signature::DEFAULT_BLOCK_SIZE`, S3's 5 MiB part floor). An
    /// SSH server copies ranges of any length, and a sidecar there is updated
    /// by copying its unchanged records, so the smallest block costs only its
    /// first upload's sidecar (0.05% of the file) and keeps an edit's cost
    /// near the bytes edited.
    pub fn delta_block_size(&self) -> Option<u32> {
        match self {
            Location::Sftp(_) => Some(crate::signature::MIN_BLOCK_SIZE),
            Location::Local(_)
            | Location::S3 { .. }
            | Location::Gcs { .. }
            | Location::Azure { .. } => None,
        }
    }

    /// Whether a listing of this side carries each file's permission bits.
    pub fn lists_modes(&self) -> bool {
        matches!(self, Location::Local(_) | Location::Sftp(_))
    }

    /// The scheme name shown in messages (`local`, `s3`, `gs`, `az`).
    pub fn scheme(&self) -> &'static str {
        match self {
            Location::Local(_) => "local",
            Location::S3 { .. } => "s3",
            Location::Gcs { .. } => "gs",
            Location::Azure { .. } => "az",
            Location::Sftp(_) => "sftp",
        }
    }
}

/// Turns `a/b/` or `a/b` into `a/b/` (empty stays empty), rejecting segments that
/// would make keys ambiguous or escape the prefix.
fn normalize_prefix(raw: &str) -> Result<String, &'static str> {
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

#[derive(Clone, Copy)]
enum BucketKind {
    S3,
    Gcs,
    Azure,
}

impl BucketKind {
    fn what(self) -> &'static str {
        match self {
            BucketKind::S3 | BucketKind::Gcs => "bucket",
            BucketKind::Azure => "container",
        }
    }

    /// The providers' naming rules, so that a typo fails here and not after a scan.
    fn validate(self, name: &str) -> Result<(), &'static str> {
        let max = match self {
            BucketKind::Gcs if name.contains('.') => 222,
            _ => 63,
        };
        if name.len() < 3 || name.len() > max {
            return Err("must be 3 to 63 characters long");
        }
        let allowed = |c: char| match self {
            BucketKind::S3 => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
            BucketKind::Gcs => {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            }
            BucketKind::Azure => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
        };
        if !name.chars().all(allowed) {
            return Err(match self {
                BucketKind::S3 => "only lowercase letters, digits, `-` and `.` are allowed",
                BucketKind::Gcs => "only lowercase letters, digits, `-`, `_` and `.` are allowed",
                BucketKind::Azure => "only lowercase letters, digits and `-` are allowed",
            });
        }
        let edge_ok =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
            return Err("must start and end with a letter or digit");
        }
        if name.contains("..") || name.contains("--") && matches!(self, BucketKind::Azure) {
            return Err("consecutive `.` or `-` are not allowed");
        }
        Ok(())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Gcs { bucket, prefix } => write!(f, "gs://{bucket}/{prefix}"),
            Location::Azure { container, prefix } => write!(f, "az://{container}/{prefix}"),
            Location::Sftp(target) => write!(f, "{target}"),
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
        assert_eq!(
            Location::parse("s3://my-bucket").unwrap(),
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("s3://my-bucket/a/b").unwrap(),
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b/".into()
            }
        );
        assert_eq!(
            Location::parse("gs://b_1/x/").unwrap(),
            Location::Gcs {
                bucket: "b_1".into(),
                prefix: "x/".into()
            }
        );
        assert_eq!(
            Location::parse("az://cont/p").unwrap(),
            Location::Azure {
                container: "cont".into(),
                prefix: "p/".into()
            }
        );
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
