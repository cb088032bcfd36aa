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
mod files;
mod hash;
mod kind;
mod session;
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
                scheme: "sftp",
                bucket: target.host.clone(),
                prefix: target.path.clone(),
                id: StoreId {
                    endpoint: format!("sftp://{}", target.authority()),
                    bucket: target.path.clone(),
                },
                limits: &LIMITS,
                retry: retry.clone(),
                hints: &HINTS,
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

#[async_trait::async_trait]
impl ObjectStore for SftpStorage {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        Some(self)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        // copy-data (OpenSSH 9.0 and later) is what copies server-side.
        self.copies.then_some(self as &dyn StagedCopies)
    }

    fn cannot_rebuild(&self) -> Option<&'static str> {
        // Without copy-data (OpenSSH before 9.0) nothing can be reused
        // server-side.
        (!self.copies).then_some(
            "the server cannot copy ranges server-side (no copy-data extension: OpenSSH before 9.0); sending it whole",
        )
    }

    fn url_of(&self, key: &str) -> String {
        use crate::types::EscapeNonUtf8;
        self.target.url_of(&key.as_bytes().escape_ascii_non_utf8())
    }

    async fn list_page(&self, token: Option<String>) -> Result<ListPage, StorageError> {
        walk::page(self, token).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.stat(key).await
    }

    async fn root_exists(&self) -> Result<bool, StorageError> {
        let path = self.path_of(self.prefix_key());
        match self.session().await?.sftp.fs().metadata(&path).await {
            Ok(meta) => Ok(meta.file_type().is_some_and(|t| t.is_dir())),
            Err(e) if files::is_not_found(&e) => Ok(false),
            Err(e) => Err(self.error("cannot stat", self.prefix_key(), e)),
        }
    }

    /// `realpath` of the root on the server, or of its longest existing
    /// ancestor with the rest appended (a destination may not exist yet).
    async fn resolved_root(&self) -> Result<Option<crate::storage::ResolvedRoot>, StorageError> {
        let root = self.path_of(self.prefix_key());
        let mut existing = root.as_path();
        let mut rest = Vec::new();
        let session = self.session().await?;
        let mut fs = session.sftp.fs();
        let canonical = loop {
            match fs.canonicalize(existing).await {
                Ok(canonical) => break canonical,
                Err(e) if files::is_not_found(&e) => {}
                Err(e) => return Err(self.error("cannot resolve", self.prefix_key(), e)),
            }
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = if parent.as_os_str().is_empty() {
                        std::path::Path::new(".")
                    } else {
                        parent
                    };
                }
                _ => break PathBuf::from("/"),
            }
        };
        let mut path = canonical;
        path.extend(rest.iter().rev());
        Ok(Some(crate::storage::ResolvedRoot {
            server: connect::resolved_server(&self.settings, &self.target).await,
            path: path.to_string_lossy().into_owned(),
        }))
    }

    async fn content_sums(
        &self,
        key: &str,
    ) -> Result<Option<crate::types::ContentSums>, StorageError> {
        if self.stat(key).await?.is_none() {
            return Ok(None);
        }
        self.server_sums(key).await.map(Some)
    }

    async fn rebuild_check(&self, direction: crate::storage::Direction) -> RebuildCheck {
        match (self.hash_command().await, direction) {
            (Some(command), _) => command.rebuild_check(),
            (None, crate::storage::Direction::Upload) => RebuildCheck::ReadBack,
            (None, crate::storage::Direction::Download) => RebuildCheck::DownloadWhole,
        }
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        files::read_stream(self, key, range, version).await
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        _md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        if let Some(dir) = key.strip_suffix('/') {
            // A directory kept with -a (object stores' `dir/` marker). The
            // plan saw the source's directory here: a link in its place is
            // replaced by it, as on local disks.
            let path = self.path_of(dir);
            if let Ok(meta) = self
                .session()
                .await?
                .sftp
                .fs()
                .symlink_metadata(&path)
                .await
                && meta.file_type().is_some_and(|t| t.is_symlink())
            {
                self.session()
                    .await?
                    .sftp
                    .fs()
                    .remove_file(&path)
                    .await
                    .map_err(|e| self.error("cannot replace the link", dir, e))?;
            }
            self.make_parents(&format!("{dir}/.")).await?;
            return Ok(String::new());
        }
        match &meta.link_target {
            Some(target) => self.put_link(key, target, expect).await,
            None => self.put_file(key, body, len, meta, expect).await,
        }
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        // copy-data works between handles of one session: this store's.
        self.copies && std::ptr::addr_eq(source, self)
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let head = self
            .stat(source.key)
            .await?
            .ok_or_else(|| StorageError::Remote {
                op: "cannot copy",
                hints: &HINTS,
                kind: RemoteErrorKind::NotFound,
                target: self.url_of(source.key),
                message: "the file to copy is gone".into(),
            })?;
        let meta = meta.cloned().unwrap_or_else(|| head.meta.clone());
        self.make_parents(key).await?;
        let temp = Self::temp_beside(key);
        let result = async {
            let file = files::create(self, &temp).await?;
            if head.size > 0 {
                files::copy_range(self, source.key, source.version, 0, &file, 0, head.size).await?;
            }
            files::flush(self, file, &temp, Some(files::attrs_of(&meta))).await?;
            self.finish_temp(&temp, key, &meta, expect, head.size).await
        }
        .await;
        if result.is_err() {
            self.remove_quietly(&temp).await;
        }
        result
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.check_expect(key, expect).await?;
        self.session()
            .await?
            .sftp
            .fs()
            .set_metadata(self.path_of(key), files::attrs_of(meta))
            .await
            .map_err(|e| self.error("cannot set the mode and time of", key, e))?;
        Ok(self
            .stat(key)
            .await?
            .and_then(|h| h.version)
            .unwrap_or_default())
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        // Files first, then directories deepest first (each emptied by then).
        let (dirs, plain): (Vec<&String>, Vec<&String>) =
            keys.iter().partition(|k| k.ends_with('/'));
        let plain: Vec<String> = plain.into_iter().cloned().collect();
        stream::iter(plain)
            .map(|key| async move {
                match self
                    .session()
                    .await?
                    .sftp
                    .fs()
                    .remove_file(self.path_of(&key))
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(e) if files::is_not_found(&e) => Ok(()),
                    Err(e) => Err(self.error("cannot delete", &key, e)),
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        let mut dirs = dirs;
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        for dir in dirs {
            let key = dir.trim_end_matches('/');
            match self
                .session()
                .await?
                .sftp
                .fs()
                .remove_dir(self.path_of(key))
                .await
            {
                Ok(()) => {
                    self.made_dirs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(key);
                }
                Err(e) if files::is_not_found(&e) => {}
                Err(e) => return Err(self.error("cannot remove the directory", key, e)),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl StagedObjects for SftpStorage {
    async fn staged_sums(
        &self,
        upload: &StagedUpload,
    ) -> Result<Option<crate::types::ContentSums>, StorageError> {
        self.server_sums(&upload.id).await.map(Some)
    }
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        self.make_parents(key).await?;
        let temp = Self::temp_beside(key);
        let file = files::create(self, &temp).await?;
        file.close()
            .await
            .map_err(|e| self.error("cannot write", &temp, e))?;
        Ok(StagedUpload {
            key: key.to_string(),
            id: temp,
        })
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        body: BodySource<'_>,
        len: u64,
        _md5: Option<[u8; 16]>,
    ) -> Result<StagedPart, StorageError> {
        if len > LIMITS.max_part || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target: self.url_of(&upload.key),
                message: format!("part {number} of {len} bytes is past this store's limits"),
            });
        }
        // A write at an offset of the temp file: written again whole over
        // a new connection when the old one drops.
        let url = self.url_of(&upload.key);
        self.retry
            .run(&url, crate::retry::Budget::Unbounded, || async {
                let written = async {
                    let file = files::open_write(self, &upload.id).await?;
                    files::write_body(self, &file, &upload.id, at, body, len).await?;
                    file.close()
                        .await
                        .map_err(|e| self.error("cannot write", &upload.id, e))
                }
                .await;
                self.explained(&upload.id, written).await
            })
            .await?;
        Ok(StagedPart {
            number,
            tag: at.to_string(),
            size: len,
            md5: None,
        })
    }
    /// The recorded parts whose bytes the temp file still holds, checked on
    /// the server (`b3sum` of each range) where it can, else read back.
    async fn staged_matching(
        &self,
        upload: &StagedUpload,
        recorded: &[crate::storage::RecordedPart],
    ) -> Result<Vec<StagedPart>, StorageError> {
        let Some(temp) = self.stat(&upload.id).await? else {
            return Err(StorageError::Remote {
                op: "cannot resume",
                hints: &HINTS,
                kind: RemoteErrorKind::NotFound,
                target: self.url_of(&upload.id),
                message: "the temp file of the upload is gone".into(),
            });
        };
        let within: Vec<&crate::storage::RecordedPart> = recorded
            .iter()
            .filter(|part| part.offset + part.len <= temp.size)
            .collect();
        let ranges: Vec<(u64, u64)> = within.iter().map(|p| (p.offset, p.len)).collect();
        let path = self.path_of(&upload.id).to_string_lossy().into_owned();
        let on_server = match self.hash_command().await {
            Some(hash::HashCommand::B3sum) => {
                let control = self.link.control();
                hash::blake3_of_ranges(
                    &self.settings,
                    &self.target,
                    control.as_deref(),
                    &path,
                    &ranges,
                )
                .await
            }
            _ => None,
        };
        let digests = match on_server {
            Some(digests) => digests,
            None => {
                // Read back: the temp file's ranges, hashed here.
                let mut digests = Vec::with_capacity(ranges.len());
                for &(offset, len) in &ranges {
                    let mut stream = self
                        .open_read(&upload.id, Some((offset, len)), None)
                        .await?;
                    let mut hasher = blake3::Hasher::new();
                    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                        hasher.update(&chunk?);
                    }
                    digests.push(*hasher.finalize().as_bytes());
                }
                digests
            }
        };
        Ok(within
            .iter()
            .zip(digests)
            .filter(|(part, digest)| part.blake3 == *digest)
            .map(|(part, _)| StagedPart {
                number: part.number,
                tag: part.offset.to_string(),
                size: part.len,
                md5: None,
            })
            .collect())
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        // Which ranges of a temp file were written cannot be told from the
        // file: a resumed upload writes every part again, in place.
        match self.stat(&upload.id).await? {
            Some(_) => Ok(Vec::new()),
            None => Err(StorageError::Remote {
                op: "cannot resume",
                hints: &HINTS,
                kind: RemoteErrorKind::NotFound,
                target: self.url_of(&upload.id),
                message: "the temp file of the upload is gone".into(),
            }),
        }
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let flushed = async {
            let mut file = files::open_write(self, &upload.id).await?;
            // A resumed upload may have left bytes past the end.
            file.set_len(size)
                .await
                .map_err(|e| self.error("cannot truncate", &upload.id, e))?;
            files::flush(self, file, &upload.id, Some(files::attrs_of(meta))).await
        }
        .await;
        self.explained(&upload.id, flushed).await?;
        self.finish_temp(&upload.id, &upload.key, meta, expect, size)
            .await
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        self.remove_quietly(&upload.id).await;
        Ok(())
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        walk::temp_files(self).await
    }
}

#[async_trait::async_trait]
impl StagedCopies for SftpStorage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        if !self.copies_from(source.store) {
            return Err(StorageError::Remote {
                op: "cannot copy",
                hints: &HINTS,
                kind: RemoteErrorKind::SourceUnreachable,
                target: self.url_of(&upload.key),
                message: "only a file of the same SFTP session can be copied server-side".into(),
            });
        }
        let copied = async {
            let file = files::open_write(self, &upload.id).await?;
            files::copy_range(
                self,
                source.key,
                source.version,
                range.start,
                &file,
                at,
                range.len,
            )
            .await?;
            file.close()
                .await
                .map_err(|e| self.error("cannot write", &upload.id, e))
        }
        .await;
        self.explained(&upload.id, copied).await?;
        // copy-data carries no checksum: the rebuilt file is checked whole
        // before its commit (a hash run on the server) or its copied ranges
        // are read back first, as `rebuild_check` says.
        Ok(StagedPart {
            number,
            tag: at.to_string(),
            size: range.len,
            md5: None,
        })
    }
}
