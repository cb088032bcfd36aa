//! SSH server locations: `sftp://[USER@]HOST[:PORT]/PATH`, `sftp://HOST/~/PATH`
//! and rsync's `[USER@]HOST:PATH`.

use std::fmt;

use crate::uri::{LocationError, RemoteLocation, normalize_prefix};

/// The forms of an SSH server's location, for messages.
const FORMS: &str = "sftp://[USER@]HOST[:PORT]/PATH, sftp://HOST/~/PATH or USER@HOST:PATH";

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

/// `sftp://…` as a location's server and prefix (see [`SftpTarget::parts`]).
pub(super) fn parse_url(uri: &str, rest: &str) -> Result<(String, String), LocationError> {
    parse_sftp_url(uri, rest).map(|target| target.parts())
}

/// rsync's `[USER@]HOST:PATH` as a location's server and prefix.
pub(super) fn parse_host_path(uri: &str) -> Result<(String, String), LocationError> {
    parse_rsync_form(uri).map(|target| target.parts())
}

/// The directory a location's prefix names: `/srv/data/` for `srv/data/`,
/// `data/` (below the home) for `~/data/`.
pub(super) fn path_of_prefix(prefix: &str) -> String {
    match prefix.strip_prefix("~/") {
        Some(below_home) => below_home.to_string(),
        None => format!("/{prefix}"),
    }
}

impl SftpTarget {
    /// The location's server and prefix: `[user@]host[:port]`, and the
    /// directory written as the URL's path shows it — `srv/data/` for
    /// `/srv/data/`, `~/data/` below the home, empty for `/`.
    pub fn parts(&self) -> (String, String) {
        let prefix = match self.path.strip_prefix('/') {
            Some(absolute) => absolute.to_string(),
            None => format!("~/{}", self.path),
        };
        (self.authority(), prefix)
    }

    /// The target a location of this kind names.
    pub fn of(location: &RemoteLocation) -> Result<SftpTarget, LocationError> {
        let (user, host, port) =
            parse_authority(&location.bucket).map_err(|why| LocationError::Malformed {
                uri: location.to_string(),
                why,
                forms: FORMS,
            })?;
        Ok(SftpTarget {
            user,
            host,
            port,
            path: path_of_prefix(&location.prefix),
        })
    }
}

impl fmt::Display for SftpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_of(&self.path))
    }
}

/// `sftp://[USER@]HOST[:PORT]/PATH`; `/~/PATH` (or no path) is relative to
/// the login's home directory.
fn parse_sftp_url(uri: &str, rest: &str) -> Result<SftpTarget, LocationError> {
    let bad = |why| LocationError::Malformed {
        uri: uri.into(),
        why,
        forms: FORMS,
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
    let bad = |why| LocationError::Malformed {
        uri: uri.into(),
        why,
        forms: FORMS,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Location;

    #[test]
    fn ssh_servers_in_both_forms() {
        let sftp = |uri: &str| match Location::parse(uri) {
            Ok(Location::Remote(remote)) if remote.kind.scheme == "sftp" => {
                let t = SftpTarget::of(&remote).unwrap();
                (t.user, t.host, t.port, t.path)
            }
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
}
