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

/// A directory on an SSH server: `sftp://[USER@]HOST[:PORT]/PATH` or rsync's
/// `[USER@]HOST:PATH`. `host` is what `ssh` is given — a name, an address, or
/// a `Host` alias of the ssh config, which may set the user and port itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SftpTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The directory, with a trailing `/`: absolute (`/srv/data/`), or
    /// relative to the login's home directory (`data/`; empty: the home).
    pub path: String,
}

impl SftpTarget {
    /// `[user@]host[:port]`, as the location shows it.
    pub fn authority(&self) -> String {
        let mut text = String::new();
        if let Some(user) = &self.user {
            text.push_str(user);
            text.push('@');
        }
        if self.host.contains(':') {
            text.push_str(&format!("[{}]", self.host));
        } else {
            text.push_str(&self.host);
        }
        if let Some(port) = self.port {
            text.push_str(&format!(":{port}"));
        }
        text
    }

    /// The URL of a path on this server (`sftp://host/abs/x`, `sftp://host/~/x`).
    pub fn url_of(&self, path: &str) -> String {
        match path.strip_prefix('/') {
            Some(absolute) => format!("sftp://{}/{absolute}", self.authority()),
            None => format!("sftp://{}/~/{path}", self.authority()),
        }
    }
}

impl fmt::Display for SftpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_of(&self.path))
    }
}

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
                    parse_rsync_form(uri).map(Location::Sftp)
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
            "sftp" => return parse_sftp_url(uri, rest).map(Location::Sftp),
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

/// `sftp://[USER@]HOST[:PORT]/PATH`; `/~/PATH` (or no path) is relative to
/// the login's home directory.
fn parse_sftp_url(uri: &str, rest: &str) -> Result<SftpTarget, LocationError> {
    let bad = |why| LocationError::BadSftp {
        uri: uri.into(),
        why,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (user, host, port) = parse_authority(authority).map_err(bad)?;
    let path = match path.strip_prefix("/~") {
        Some("") => String::new(),
        Some(home) if home.starts_with('/') => sftp_path(&home[1..], false).map_err(bad)?,
        _ if path.is_empty() => String::new(),
        _ => sftp_path(path, true).map_err(bad)?,
    };
    Ok(SftpTarget {
        user,
        host,
        port,
        path,
    })
}

/// rsync's `[USER@]HOST:PATH`: an absolute PATH, or one relative to the home
/// directory (`HOST:` is the home itself). No port: the ssh config sets it.
fn parse_rsync_form(uri: &str) -> Result<SftpTarget, LocationError> {
    let bad = |why| LocationError::BadSftp {
        uri: uri.into(),
        why,
    };
    // An IPv6 address in brackets holds colons of its own.
    let split = if uri.contains('[') {
        uri.find("]:").map(|i| i + 1)
    } else {
        uri.find(':')
    };
    let Some(split) = split else {
        return Err(bad("no `:` after the host"));
    };
    let (authority, path) = (&uri[..split], &uri[split + 1..]);
    let (user, host, port) = parse_authority(authority).map_err(bad)?;
    if port.is_some() {
        return Err(bad("HOST:PATH takes no port; use sftp://HOST:PORT/PATH"));
    }
    let path = match path.strip_prefix('/') {
        Some(_) => sftp_path(path, true).map_err(bad)?,
        None => sftp_path(path.strip_prefix("~/").unwrap_or(path), false).map_err(bad)?,
    };
    Ok(SftpTarget {
        user,
        host,
        port: None,
        path,
    })
}

type Authority = (Option<String>, String, Option<u16>);

fn parse_authority(authority: &str) -> Result<Authority, &'static str> {
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
        Some(_) => return Err("the user before `@` is empty"),
        None => (None, authority),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address lacks its `]`")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the host name is not valid");
    }
    let port = match port {
        None => None,
        Some(text) => Some(
            text.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the port must be a number from 1 to 65535")?,
        ),
    };
    Ok((user, host.to_string(), port))
}

/// A directory path with a trailing `/`: `/a/b/` when absolute, `a/b/` when
/// relative to the home, the empty path for the home itself.
fn sftp_path(raw: &str, absolute: bool) -> Result<String, &'static str> {
    let inner = if absolute {
        raw.trim_start_matches('/')
    } else {
        raw
    };
    let normalized = normalize_prefix(inner)?;
    Ok(if absolute {
        format!("/{normalized}")
    } else {
        normalized
    })
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
    fn ssh_servers_in_both_forms() {
        let sftp = |uri: &str| match Location::parse(uri) {
            Ok(Location::Sftp(t)) => (t.user, t.host, t.port, t.path),
            other => panic!("{uri}: {other:?}"),
        };
        assert_eq!(
            sftp("sftp://me@box:2222/srv/data"),
            (
                Some("me".into()),
                "box".into(),
                Some(2222),
                "/srv/data/".into()
            )
        );
        assert_eq!(
            sftp("sftp://box/~/data/"),
            (None, "box".into(), None, "data/".into())
        );
        assert_eq!(
            sftp("sftp://box/~"),
            (None, "box".into(), None, String::new())
        );
        assert_eq!(
            sftp("sftp://box"),
            (None, "box".into(), None, String::new())
        );
        assert_eq!(sftp("sftp://box/"), (None, "box".into(), None, "/".into()));
        assert_eq!(
            sftp("sftp://[::1]:22/x"),
            (None, "::1".into(), Some(22), "/x/".into())
        );
        assert_eq!(
            sftp("me@box:data"),
            (Some("me".into()), "box".into(), None, "data/".into())
        );
        assert_eq!(
            sftp("box:/srv/x/"),
            (None, "box".into(), None, "/srv/x/".into())
        );
        assert_eq!(sftp("box:"), (None, "box".into(), None, String::new()));
        assert_eq!(sftp("box:~/x"), (None, "box".into(), None, "x/".into()));
        // A colon after a slash is part of a local path.
        assert_eq!(
            Location::parse("./name:x").unwrap(),
            Location::Local("./name:x".into())
        );
        assert_eq!(
            Location::parse("/a/b:c").unwrap(),
            Location::Local("/a/b:c".into())
        );
        for bad in [
            "sftp://:22/x",
            "sftp://box:99999/x",
            "sftp://@box/x",
            "box:2222:x/../y",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        // Shown as given, and parsed back to the same.
        for uri in [
            "sftp://me@box:2222/srv/data/",
            "sftp://box/~/data/",
            "sftp://[::1]/x/",
        ] {
            assert_eq!(Location::parse(uri).unwrap().to_string(), uri);
        }
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
