//! Where a file about to be replaced or deleted at the destination is kept
//! first (rsync's `--backup`, `--backup-dir`, `--suffix`). The directory is
//! placed once against the destination, before anything runs: backups are a
//! rename or a server-side copy, never data through this machine, so they
//! can only go where the destination can reach by itself.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::filter::FilterRule;
use crate::storage::{Storage, StorageError};
use crate::types::RelPath;
use crate::uri::Location;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// `None`: next to the file.
    pub dir: Option<BackupDir>,
    /// Appended to the kept file's name.
    pub suffix: String,
}

/// A `--backup-dir`, placed against the destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupDir {
    /// A directory below the destination root (`/`-separated segments).
    Below(String),
    /// An absolute path on this machine, for a local destination.
    LocalPath(PathBuf),
    /// Outside the destination root but on its own bucket, container or
    /// server: `key_prefix` is the store's key of that directory.
    Elsewhere { shown: String, key_prefix: String },
}

/// Where one backup goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupTarget {
    Below(RelPath),
    LocalPath(PathBuf),
    /// `name` below the store key `key_prefix` (the store encodes the name
    /// as it does every key).
    Elsewhere {
        key_prefix: String,
        name: RelPath,
    },
}

/// Keeps a copy of the entry at `path` (a file or a link) at `target`
/// before it is replaced or deleted: a hard link (a copy across file
/// systems) on a local disk, a server-side copy pinned to `version` in an
/// object store — never through this machine.
pub async fn keep_copy(
    storage: &Storage,
    path: &RelPath,
    target: &BackupTarget,
    size: u64,
    version: Option<&str>,
) -> Result<(), StorageError> {
    match (storage, target) {
        (Storage::Local(local), BackupTarget::Below(rel)) => {
            let (from, to) = (local.path_of(path), local.path_of(rel));
            crate::storage::run_blocking(move || crate::storage::local::keep_copy(&from, &to)).await
        }
        (Storage::Local(local), BackupTarget::LocalPath(to)) => {
            let (from, to) = (local.path_of(path), to.clone());
            crate::storage::run_blocking(move || crate::storage::local::keep_copy(&from, &to)).await
        }
        (Storage::Object(store), BackupTarget::Below(rel)) => {
            let key = store.key_of(rel);
            crate::storage::objects::copy_within(
                store.as_ref(),
                &store.key_of(path),
                &key,
                size,
                version,
            )
            .await
        }
        (Storage::Object(store), BackupTarget::Elsewhere { key_prefix, name }) => {
            let key = format!(
                "{key_prefix}{}",
                crate::storage::names::encode(name.as_bytes())
            );
            crate::storage::objects::copy_within(
                store.as_ref(),
                &store.key_of(path),
                &key,
                size,
                version,
            )
            .await
        }
        // `BackupDir::place` gives local paths to local destinations and
        // store keys to stores only.
        (Storage::Local(local), BackupTarget::Elsewhere { key_prefix, .. }) => {
            Err(StorageError::Transfer {
                target: local.path_of(path).display().to_string(),
                message: format!("--backup-dir {key_prefix} is not a local path"),
            })
        }
        (Storage::Object(store), BackupTarget::LocalPath(dir)) => Err(StorageError::Transfer {
            target: store.url_of(&store.key_of(path)),
            message: format!(
                "--backup-dir {} is a local path; on an object store give a prefix below the destination",
                dir.display()
            ),
        }),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackupDirError {
    #[error(
        "--backup-dir {dir}: it leaves the destination (`..` or `.`); give a directory below it, or an absolute path"
    )]
    Escapes { dir: String },
    #[error(
        "--backup-dir {dir} is a location, but the destination {destination} is a local directory: give a path (below the destination, or absolute)"
    )]
    LocationForLocal { dir: String, destination: String },
    #[error(
        "--backup-dir {dir} is not on the destination's {what} ({destination}): backups are server-side copies, so they stay there; give a prefix on it, or a directory below the destination"
    )]
    OtherStore {
        dir: String,
        what: &'static str,
        destination: String,
    },
    #[error(
        "--backup-dir {dir} is a local path, but the destination {destination} is an object store: give a prefix below the destination, or a location in the same {what} ({scheme}://…)"
    )]
    LocalPathForStore {
        dir: String,
        destination: String,
        what: &'static str,
        scheme: &'static str,
    },
    #[error("--backup-dir {dir}: {reason}")]
    Location { dir: String, reason: String },
}

impl BackupDir {
    /// Places `dir` as given on the command line or in config.toml: a
    /// relative path is below the destination; an absolute path is on the
    /// destination's machine (this one, or the SSH server); `scheme://…` is a
    /// location on the destination's own bucket, container or server.
    pub fn place(dir: &str, destination: &Location) -> Result<BackupDir, BackupDirError> {
        if dir.contains("://") {
            return Self::place_location(dir, destination);
        }
        if dir.starts_with('/') {
            return match destination {
                Location::Local(_) => Ok(BackupDir::LocalPath(PathBuf::from(dir))),
                Location::Remote(remote) if remote.kind.absolute_paths => Ok(Self::on_store(
                    dir,
                    &(remote.kind.key_prefix)(&remote.prefix),
                    &slashed(dir.to_string()),
                )),
                other => Err(BackupDirError::LocalPathForStore {
                    dir: dir.to_string(),
                    destination: other.to_string(),
                    what: other.container(),
                    scheme: other.scheme(),
                }),
            };
        }
        below(dir).map(BackupDir::Below)
    }

    fn place_location(dir: &str, destination: &Location) -> Result<BackupDir, BackupDirError> {
        let location = Location::parse(dir).map_err(|e| BackupDirError::Location {
            dir: dir.to_string(),
            reason: e.to_string(),
        })?;
        let other_store = || BackupDirError::OtherStore {
            dir: dir.to_string(),
            what: destination.container(),
            destination: destination.to_string(),
        };
        match (&location, destination) {
            (_, Location::Local(_)) => Err(BackupDirError::LocationForLocal {
                dir: dir.to_string(),
                destination: destination.to_string(),
            }),
            (Location::Remote(there), Location::Remote(here))
                if there.kind.scheme == here.kind.scheme && there.bucket == here.bucket =>
            {
                let root = (here.kind.key_prefix)(&here.prefix);
                let key_prefix = (there.kind.key_prefix)(&there.prefix);
                // A path below an SSH login's home and an absolute one
                // cannot be compared: which one holds the other is unknown.
                if root.starts_with('/') != key_prefix.starts_with('/') {
                    return Err(other_store());
                }
                Ok(Self::on_store(dir, &root, &key_prefix))
            }
            _ => Err(other_store()),
        }
    }

    /// A directory whose store key is `key_prefix`, on a store whose root
    /// key is `root_prefix`: below the root when it is (so that the sync
    /// leaves it alone), elsewhere otherwise.
    fn on_store(shown: &str, root_prefix: &str, key_prefix: &str) -> BackupDir {
        let key_prefix = slashed(key_prefix.to_string());
        match key_prefix.strip_prefix(root_prefix) {
            Some(rest) if root_prefix.is_empty() || root_prefix.ends_with('/') => {
                BackupDir::Below(rest.trim_end_matches('/').to_string())
            }
            _ => BackupDir::Elsewhere {
                shown: shown.to_string(),
                key_prefix,
            },
        }
    }

    fn shown(&self) -> String {
        match self {
            BackupDir::Below(dir) => format!("{dir}/"),
            BackupDir::LocalPath(path) => format!("{}/", path.display()),
            BackupDir::Elsewhere { shown, .. } => slashed(shown.clone()),
        }
    }
}

impl Backup {
    /// Where the backup of `path` goes.
    pub fn target_of(&self, path: &RelPath) -> BackupTarget {
        let mut name = path.as_bytes().to_vec();
        name.extend_from_slice(self.suffix.as_bytes());
        match &self.dir {
            Some(BackupDir::LocalPath(dir)) => {
                use std::os::unix::ffi::OsStrExt;
                BackupTarget::LocalPath(dir.join(std::ffi::OsStr::from_bytes(&name)))
            }
            Some(BackupDir::Below(dir)) if !dir.is_empty() => {
                let mut full = dir.as_bytes().to_vec();
                full.push(b'/');
                full.extend_from_slice(&name);
                BackupTarget::Below(RelPath::from_bytes(&full))
            }
            Some(BackupDir::Elsewhere { key_prefix, .. }) => BackupTarget::Elsewhere {
                key_prefix: key_prefix.clone(),
                name: RelPath::from_bytes(&name),
            },
            Some(BackupDir::Below(_)) | None => BackupTarget::Below(RelPath::from_bytes(&name)),
        }
    }

    /// The filter rule that keeps backups out of the sync (never synced,
    /// never deleted): the backup directory below the root, or names ending
    /// in the suffix.
    pub fn exclusion(&self) -> Option<FilterRule> {
        let pattern = match &self.dir {
            Some(BackupDir::Below(dir)) if !dir.is_empty() => format!("/{}/", glob_escaped(dir)),
            Some(_) => return None,
            None if self.suffix.is_empty() => return None,
            None => format!("*{}", glob_escaped(&self.suffix)),
        };
        Some(FilterRule {
            kind: crate::filter::RuleKind::Exclude,
            pattern,
        })
    }

    /// How the plan header says it.
    pub fn describe(&self) -> String {
        match (&self.dir, self.suffix.is_empty()) {
            (Some(dir), true) => {
                format!(
                    "replaced and deleted files are kept first under {}",
                    dir.shown()
                )
            }
            (Some(dir), false) => format!(
                "replaced and deleted files are kept first under {}, with `{}` appended",
                dir.shown(),
                self.suffix
            ),
            (None, _) => format!(
                "replaced and deleted files are kept first next to themselves, with `{}` appended",
                self.suffix
            ),
        }
    }
}

/// A relative `--backup-dir` as clean segments below the root.
fn below(dir: &str) -> Result<String, BackupDirError> {
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") || segments.is_empty() {
        return Err(BackupDirError::Escapes {
            dir: dir.to_string(),
        });
    }
    Ok(segments.join("/"))
}

fn slashed(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('/') {
        text.push('/');
    }
    text
}

/// A suffix as a literal in a glob.
fn glob_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(uri: &str) -> Location {
        Location::parse(uri).unwrap()
    }

    #[test]
    fn a_relative_dir_is_below_the_destination_and_may_not_leave_it() {
        let dst = at("s3://bkt/data");
        assert_eq!(
            BackupDir::place("old//v1/", &dst),
            Ok(BackupDir::Below("old/v1".into()))
        );
        for bad in ["../old", "a/../../b", ".", ""] {
            assert!(
                matches!(
                    BackupDir::place(bad, &dst),
                    Err(BackupDirError::Escapes { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_location_must_be_on_the_destinations_own_bucket() {
        let dst = at("az://ctr/data");
        assert_eq!(
            BackupDir::place("az://ctr/data/old", &dst),
            Ok(BackupDir::Below("old".into()))
        );
        assert_eq!(
            BackupDir::place("az://ctr/backups", &dst),
            Ok(BackupDir::Elsewhere {
                shown: "az://ctr/backups".into(),
                key_prefix: "backups/".into()
            })
        );
        // `data-old` is beside `data/`, not below it.
        assert!(matches!(
            BackupDir::place("az://ctr/data-old", &dst),
            Ok(BackupDir::Elsewhere { .. })
        ));
        let message = BackupDir::place("az://other/x", &dst)
            .unwrap_err()
            .to_string();
        assert!(message.contains("container"), "{message}");
        assert!(matches!(
            BackupDir::place("s3://ctr/x", &dst),
            Err(BackupDirError::OtherStore { .. })
        ));
        assert!(matches!(
            BackupDir::place("/var/backups", &dst),
            Err(BackupDirError::LocalPathForStore { .. })
        ));
        assert!(matches!(
            BackupDir::place("s3://bkt/x", &at("/srv/data")),
            Err(BackupDirError::LocationForLocal { .. })
        ));
        // The bucket's root holds every prefix.
        assert_eq!(
            BackupDir::place("gs://bkt/old", &at("gs://bkt")),
            Ok(BackupDir::Below("old".into()))
        );
    }

    #[test]
    fn an_absolute_dir_is_on_the_destinations_machine() {
        assert_eq!(
            BackupDir::place("/var/backups", &at("/srv/data")),
            Ok(BackupDir::LocalPath("/var/backups".into()))
        );
        let sftp = at("sftp://host/srv/data");
        assert_eq!(
            BackupDir::place("/srv/old", &sftp),
            Ok(BackupDir::Elsewhere {
                shown: "/srv/old".into(),
                key_prefix: "/srv/old/".into()
            })
        );
        assert_eq!(
            BackupDir::place("/srv/data/old", &sftp),
            Ok(BackupDir::Below("old".into()))
        );
        assert!(matches!(
            BackupDir::place("sftp://other/srv/old", &sftp),
            Err(BackupDirError::OtherStore { .. })
        ));
    }

    #[test]
    fn targets_and_exclusions() {
        let path = RelPath::from_bytes(b"a/x.bin");
        let elsewhere = Backup {
            dir: Some(BackupDir::Elsewhere {
                shown: "s3://b/old".into(),
                key_prefix: "old/".into(),
            }),
            suffix: ".1".into(),
        };
        assert_eq!(
            elsewhere.target_of(&path),
            BackupTarget::Elsewhere {
                key_prefix: "old/".into(),
                name: RelPath::from_bytes(b"a/x.bin.1")
            }
        );
        assert_eq!(elsewhere.exclusion(), None);
        let below = Backup {
            dir: Some(BackupDir::Below("old".into())),
            suffix: String::new(),
        };
        assert_eq!(
            below.target_of(&path),
            BackupTarget::Below(RelPath::from_bytes(b"old/a/x.bin"))
        );
        assert_eq!(below.exclusion().unwrap().pattern, "/old/");
        let beside = Backup {
            dir: None,
            suffix: "~".into(),
        };
        assert_eq!(beside.exclusion().unwrap().pattern, "*~");
        assert!(below.describe().contains("under old/"));
    }
}
