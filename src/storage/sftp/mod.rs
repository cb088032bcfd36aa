//! SSH servers as a side of a sync, on the object-store interface: keys are
//! paths below the root directory, an object is a file, its version its size
//! and mtime. One SFTP session over one `ssh` process carries the whole run,
//! with many requests in flight (`connect.rs`).
//!
//! The guarantees are a local disk's: every file is written into a temp file
//! (`.hugesync-<random>.tmp`) in its own directory, flushed with
//! `fsync@openssh.com`, given its mode and mtime, then renamed over the old
//! one with `posix-rename@openssh.com` — never a partial file under a final
//! name. Staged objects are temp files written at their parts' offsets; a
//! range of the old file is staged server-side with the `copy-data`
//! extension, so a delta upload sends only the new bytes (`Stitching::Ranges`
//! with no floor on a part, as Azure's blocks).

mod cipher;
mod connect;
mod families;
mod files;
mod hash;
mod kind;
mod session;
mod store;
mod target;
mod temp_name;
mod walk;

use std::collections::HashSet;
use std::path::PathBuf;

use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::Stitching;
use super::object::{
    ByteStream, CopyRange, CopySource, Expect, ListPage, ObjectHead, ObjectStore, PendingUpload,
    StagedCopies, StagedObjects, StagedPart, StagedUpload, StoreId, StoreInfo,
};
use super::{RebuildCheck, RemoteErrorKind, StorageError, StoreHints, StoreLimits};
use crate::retry::RetryPolicy;
use crate::storage::requests::RequestClass;
pub use kind::KIND;
pub use target::SftpTarget;

pub use connect::SftpSettings;

/// What to check when an SSH server refuses.
const HINTS: StoreHints = StoreHints {
    credentials: "your ssh setup: `ssh HOST` must log in without a prompt (keys, ssh-agent, ~/.ssh/config)",
    bucket: "directory",
};

/// The most one read or write request moves: the limit OpenSSH states
/// (`limits@openssh.com`: its 256 KiB packet less 1 KiB). Against a server
/// with a lower one the library splits each request.
const REQUEST_BYTES: u32 = 255 * 1024;

/// Files have no parts of their own: a part is any range, copied from the old
/// file server-side (`copy-data`) or written, as small or large as the delta
/// needs. The only limits are the planner's.
const LIMITS: StoreLimits = StoreLimits {
    min_part: 1,
    max_part: 1 << 40,
    max_parts: 1_000_000,
    max_single_put: 64 * 1024 * 1024,
    max_single_copy: u64::MAX,
    stitching: Stitching::Ranges,
    delete_batch: 64,
    checksums: &[],
    body_checksum: None,
    keeps_metadata: false,
    cheap_range_copies: true,
    rebuild_check: RebuildCheck::SizeOnly,
};

/// Free space under which a write's generic failure is taken for a full disk.
const FULL_BELOW: u64 = 1 << 20;

/// A directory on an SSH server.
pub struct SftpStorage {
    target: SftpTarget,
    /// The SSH connection, made again when it drops.
    link: session::Link,
    /// Whether the server has `copy-data` and `fsync@openssh.com` (asked
    /// of the first session; a reconnection reaches the same server).
    copies: bool,
    fsyncs: bool,
    retry: RetryPolicy,
    info: StoreInfo,
    /// fsync each written file (`--no-fsync` turns it off).
    fsync: bool,
    /// Directories known to exist (made or seen), so each is made once.
    made_dirs: std::sync::Mutex<HashSet<String>>,
    walks: walk::Walks,
    /// How to run commands on the server (its hash command).
    settings: SftpSettings,
    /// The hash command the server runs, asked the first time it matters.
    hash_command: tokio::sync::OnceCell<Option<hash::HashCommand>>,
}

impl std::fmt::Debug for SftpStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpStorage")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl SftpStorage {
    /// Counts one store operation by class: an SSH server bills nothing,
    /// but the run screen and the summary set requests beside the plan's
    /// estimate, which counts the same operations.
    fn count(&self, class: RequestClass) {
        self.info.requests.add(class);
    }

    /// Connects (one `ssh`, one SFTP session for the run) and checks the root.
    pub async fn connect(
        settings: &SftpSettings,
        retry: &RetryPolicy,
        target: &SftpTarget,
    ) -> Result<SftpStorage, StorageError> {
        let link = session::Link::open(settings, target, retry).await?;
        let (copies, fsyncs) = {
            let session = link.session().await?;
            (session.sftp.support_copy(), session.sftp.support_fsync())
        };
        let store = SftpStorage {
            target: target.clone(),
            link,
            copies,
            fsyncs,
            retry: retry.clone(),
            info: StoreInfo {
                kind: &KIND,
                bucket: target.host.clone(),
                prefix: target.path.clone(),
                id: StoreId {
                    endpoint: format!("sftp://{}", target.authority()),
                    bucket: target.path.clone(),
                },
                limits: &LIMITS,
                retry: retry.clone(),
                hints: &HINTS,
                page_size: KIND.list_page as u32,
                list_split: crate::storage::object::ListSplit::Whole,
                requests: std::sync::Arc::default(),
                // Set from the settings when the store is opened.
                sidecars: Default::default(),
            },
            fsync: settings.fsync,
            made_dirs: std::sync::Mutex::default(),
            walks: walk::Walks::default(),
            settings: settings.clone(),
            hash_command: tokio::sync::OnceCell::new(),
        };
        Ok(store)
    }

    /// The key of the root directory itself.
    fn prefix_key(&self) -> &str {
        &self.target.path
    }

    /// The remote path of a key: the key's text itself. The SFTP library
    /// sends paths as UTF-8 only, so a local name that is not UTF-8 lives on
    /// the server under the reversible encoding object keys use
    /// (`storage::names`) and comes back with its original bytes.
    fn path_of(&self, key: &str) -> PathBuf {
        if key.is_empty() {
            PathBuf::from(".")
        } else {
            PathBuf::from(key)
        }
    }

    fn error(&self, op: &'static str, key: &str, e: openssh_sftp_client::Error) -> StorageError {
        files::storage_error(op, &self.url_of(key), e)
    }

    /// Makes the directories above `key` that are not known to exist. Never
    /// writes through a symbolic link: each directory on the way must be a
    /// real one (or is made as one), so a link on the server cannot redirect
    /// a write outside the root.
    async fn make_parents(&self, key: &str) -> Result<(), StorageError> {
        let mut missing = Vec::new();
        let mut dir = key.rsplit_once('/').map(|(d, _)| d);
        while let Some(d) = dir.filter(|d| !d.is_empty()) {
            if self
                .made_dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(d)
            {
                break;
            }
            missing.push(d.to_string());
            dir = d.rsplit_once('/').map(|(d, _)| d);
        }
        let session = self.session().await?;
        let mut fs = session.sftp.fs();
        for d in missing.into_iter().rev() {
            match fs.create_dir(self.path_of(&d)).await {
                Ok(()) => {}
                // SFTP v3 says only "failure" for an existing directory: it
                // is checked (without following a link), not assumed.
                Err(e) => match fs.symlink_metadata(self.path_of(&d)).await {
                    Ok(meta) if meta.file_type().is_some_and(|t| t.is_dir()) => {}
                    Ok(meta) if meta.file_type().is_some_and(|t| t.is_symlink()) => {
                        return Err(StorageError::Remote {
                            op: "refusing to write through a symbolic link at",
                            hints: &HINTS,
                            kind: RemoteErrorKind::Rejected,
                            target: self.url_of(&d),
                            message: "the server has a link where a directory belongs (-a replaces it with the directory)".into(),
                        });
                    }
                    Ok(_) => {
                        return Err(StorageError::Remote {
                            op: "cannot make the directory",
                            hints: &HINTS,
                            kind: RemoteErrorKind::Rejected,
                            target: self.url_of(&d),
                            message: "something that is not a directory is in the way".into(),
                        });
                    }
                    _ => return Err(self.error("cannot make the directory", &d, e)),
                },
            }
            self.made_dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(d);
        }
        Ok(())
    }

    /// What is at `key` now (`None`: nothing, or a directory).
    async fn stat(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        let session = self.session().await?;
        let mut fs = session.sftp.fs();
        let path = self.path_of(key);
        match fs.symlink_metadata(&path).await {
            Ok(meta) => {
                if meta.file_type().is_some_and(|t| t.is_dir()) {
                    return Ok(None);
                }
                let link_target = if meta.file_type().is_some_and(|t| t.is_symlink()) {
                    let target = fs
                        .read_link(&path)
                        .await
                        .map_err(|e| self.error("cannot read the link", key, e))?;
                    Some(files::rel_of_path(&target))
                } else {
                    None
                };
                Ok(Some(files::head_of(&meta, link_target)))
            }
            Err(e) if files::is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error("cannot stat", key, e)),
        }
    }

    /// Whether `key` holds what `expect` says (checked just before a rename:
    /// SFTP has no conditional write, so a writer racing us within that
    /// moment is not seen).
    async fn check_expect(&self, key: &str, expect: Expect<'_>) -> Result<(), StorageError> {
        if expect == Expect::Any {
            return Ok(());
        }
        let found = self.stat(key).await?;
        if expect.holds_for(found.as_ref()) {
            Ok(())
        } else {
            Err(StorageError::Remote {
                op: "cannot write",
                hints: &HINTS,
                kind: RemoteErrorKind::PreconditionFailed,
                target: self.url_of(key),
                message: "the file changed since it was listed".into(),
            })
        }
    }

    /// Renames a written, flushed temp file (its mode and mtime set by
    /// [`files::flush`]) over `key`; returns the new version. The version is
    /// the size and the mtime just set, so no stat is needed to learn it.
    async fn finish_temp(
        &self,
        temp: &str,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
        size: u64,
    ) -> Result<String, StorageError> {
        let version = match files::mtime_seconds(meta) {
            Some(seconds) => files::version_of(size, seconds),
            // No mtime given: the server's clock set it.
            None => self
                .stat(temp)
                .await?
                .and_then(|h| h.version)
                .unwrap_or_default(),
        };
        self.check_expect(key, expect).await?;
        self.session()
            .await?
            .sftp
            .fs()
            .rename(self.path_of(temp), self.path_of(key))
            .await
            .map_err(|e| self.error("cannot rename into place", key, e))?;
        Ok(version)
    }

    /// A temp file's key beside `key`, its name telling which run writes it
    /// (`walk::is_leftover` reads it back).
    fn temp_beside(key: &str) -> String {
        let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
        let name = temp_name::make();
        if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        }
    }

    /// A write's failure with its cause where SFTP gave none: the free space
    /// of the file system the key is on (`statvfs@openssh.com`), so a full
    /// disk is named as one.
    async fn explain(&self, key: &str, error: StorageError) -> StorageError {
        let StorageError::Remote {
            op,
            hints,
            kind,
            target,
            message,
        } = error
        else {
            return error;
        };
        if message != files::GENERIC_FAILURE {
            return StorageError::Remote {
                op,
                hints,
                kind,
                target,
                message,
            };
        }
        let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
        let statvfs = match self.session().await {
            Ok(session) => session.sftp.fs().statvfs(self.path_of(dir)).await.ok(),
            Err(_) => None,
        };
        let message = match statvfs {
            Some(fs) if fs.bavail.saturating_mul(fs.frsize) < FULL_BELOW => format!(
                "no space left on the server's file system ({} free)",
                crate::format::bytes(fs.bavail.saturating_mul(fs.frsize))
            ),
            Some(fs) if fs.favail == 0 && fs.files > 0 => {
                "no inodes left on the server's file system".to_string()
            }
            Some(fs) if fs.flag & 1 != 0 => "the server's file system is read-only".to_string(),
            _ => message,
        };
        StorageError::Remote {
            op,
            hints,
            kind,
            target,
            message,
        }
    }

    /// `result`, its failure [explained](Self::explain).
    async fn explained<T>(
        &self,
        key: &str,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => Err(self.explain(key, error).await),
        }
    }

    /// A symbolic link made as a temp link beside `key`, renamed into place.
    async fn put_link(
        &self,
        key: &str,
        target: &crate::types::RelPath,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.make_parents(key).await?;
        let temp = Self::temp_beside(key);
        let made = self
            .session()
            .await?
            .sftp
            .fs()
            .symlink(files::path_of_rel(target), self.path_of(&temp))
            .await;
        made.map_err(|e| self.error("cannot make the link", key, e))?;
        self.check_expect(key, expect).await?;
        let renamed = self
            .session()
            .await?
            .sftp
            .fs()
            .rename(self.path_of(&temp), self.path_of(key))
            .await;
        if let Err(e) = renamed {
            self.remove_quietly(&temp).await;
            return Err(self.error("cannot rename into place", key, e));
        }
        Ok(self
            .stat(key)
            .await?
            .and_then(|h| h.version)
            .unwrap_or_default())
    }

    /// A regular file written to a temp file beside `key` and renamed into
    /// place. A dropped connection fails only the attempt: the write starts
    /// again over the new one (the body is read afresh), as an object store's
    /// PUT is retried, instead of failing the item.
    async fn put_file(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let url = self.url_of(key);
        self.retry
            .run(&url, crate::retry::Budget::Unbounded, || async {
                self.make_parents(key).await?;
                let temp = Self::temp_beside(key);
                let result = async {
                    let file = files::create(self, &temp).await?;
                    files::write_body(self, &file, &temp, 0, body, len).await?;
                    files::flush(self, file, &temp, Some(files::attrs_of(meta))).await?;
                    self.finish_temp(&temp, key, meta, expect, len).await
                }
                .await;
                let result = self.explained(key, result).await;
                if result.is_err() {
                    self.remove_quietly(&temp).await;
                }
                result
            })
            .await
    }

    /// The session to send requests over (made again if the connection
    /// dropped).
    async fn session(&self) -> Result<std::sync::Arc<session::Session>, StorageError> {
        self.link.session().await
    }

    /// The hash command the server runs, if any (asked once).
    async fn hash_command(&self) -> Option<hash::HashCommand> {
        *self
            .hash_command
            .get_or_init(|| async {
                let control = self.link.control();
                hash::probe(&self.settings, &self.target, control.as_deref()).await
            })
            .await
    }

    /// The file at `key` hashed on the server; empty sums when the server
    /// runs no hash command.
    async fn server_sums(&self, key: &str) -> Result<crate::types::ContentSums, StorageError> {
        let Some(command) = self.hash_command().await else {
            return Ok(crate::types::ContentSums::default());
        };
        let path = self.path_of(key);
        let control = self.link.control();
        hash::hash_file(
            &self.settings,
            &self.target,
            control.as_deref(),
            command,
            &path.to_string_lossy(),
        )
        .await
        .map_err(|message| StorageError::Transfer {
            target: self.url_of(key),
            message,
        })
    }

    /// Removes a temp file, quietly (it may never have been made).
    async fn remove_quietly(&self, key: &str) {
        if let Ok(session) = self.session().await {
            let _ = session.sftp.fs().remove_file(self.path_of(key)).await;
        }
    }
}
