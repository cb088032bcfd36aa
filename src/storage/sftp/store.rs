//! The core operations on an SSH server ([`ObjectStore`]).

use super::*;
use crate::storage::body::BodySums;

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

    async fn list_page(
        &self,
        _query: &crate::storage::object::ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        self.count(RequestClass::List);
        // A walk of the whole tree (`ListSplit::Whole`): the lister keeps
        // what a narrower query asks for.
        walk::page(self, token).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.count(RequestClass::Get);
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
        self.count(RequestClass::Get);
        files::read_stream(self, key, range, version).await
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        _sums: BodySums,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.count(RequestClass::Put);
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
        self.count(RequestClass::Copy);
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
        self.count(RequestClass::Copy);
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
        self.count(RequestClass::Delete);
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
