//! Listing a prefix into a manifest: ListObjectsV2, page after page.
//!
//! S3 has no directories; keys with `/` imply them, and the manifest gets those
//! implied directories so that a local side can be compared with it (and
//! `--delete` does not take a local directory for one the source lacks).

use std::collections::{BTreeSet, HashMap};

use super::{S3Storage, is_sidecar, remote_error};
use crate::filter::Filter;
use crate::retry::Budget;
use crate::storage::{ListOptions, Listing, ScanCounter, ScanIssue, ScanIssueKind, StorageError};
use crate::types::{Entry, EntryKind, Manifest, ManifestEntry, RelPath};

/// Nanoseconds since the epoch of an S3 timestamp.
pub(crate) fn timestamp_ns(time: &aws_sdk_s3::primitives::DateTime) -> i64 {
    time.secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(time.subsec_nanos()))
}

/// Whether every directory above `path` passes the filter (rsync semantics: an
/// excluded directory hides its subtree), remembering answers per directory.
struct AncestorFilter<'a> {
    filter: &'a Filter,
    decided: HashMap<RelPath, bool>,
}

impl AncestorFilter<'_> {
    fn parents_included(&mut self, path: &RelPath) -> bool {
        let Some(parent) = path.parent() else {
            return true;
        };
        if let Some(&known) = self.decided.get(&parent) {
            return known;
        }
        let included = self.parents_included(&parent) && self.filter.includes(&parent, true);
        self.decided.insert(parent, included);
        included
    }
}

impl S3Storage {
    pub async fn list(
        &self,
        filter: &Filter,
        options: ListOptions,
        counter: &ScanCounter,
    ) -> Result<Listing, StorageError> {
        let url = self.url_of(&self.prefix);
        let mut token: Option<String> = None;
        let mut entries = Vec::new();
        let mut dirs: BTreeSet<RelPath> = BTreeSet::new();
        let mut issues = Vec::new();
        let mut empty_objects = Vec::new();
        let mut ancestors = AncestorFilter {
            filter,
            decided: HashMap::new(),
        };
        loop {
            // Page by page, each retried on its own: a failure on page 900 of a
            // large bucket does not start the listing over.
            let page = self
                .retry()
                .run(&url, Budget::Quick, || async {
                    self.client()
                        .list_objects_v2()
                        .bucket(self.bucket())
                        .prefix(&self.prefix)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| remote_error("cannot list", url.clone(), e))
                })
                .await?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(rel) = key.strip_prefix(&self.prefix) else {
                    continue;
                };
                if rel.is_empty() || is_sidecar(rel.as_bytes()) {
                    continue;
                }
                // A "folder" marker object (`dir/`) stands for a directory.
                let (rel, is_dir) = match rel.strip_suffix('/') {
                    Some(dir) => (dir, true),
                    None => (rel, false),
                };
                let path = RelPath::from_bytes(rel.as_bytes());
                if !path.is_contained() {
                    issues.push(ScanIssue {
                        path,
                        kind: ScanIssueKind::UnsafeKey(key.to_string()),
                    });
                    continue;
                }
                if !ancestors.parents_included(&path) || !filter.includes(&path, is_dir) {
                    continue;
                }
                let mut parent = path.parent();
                while let Some(dir) = parent {
                    parent = dir.parent();
                    if !dirs.insert(dir) {
                        break;
                    }
                }
                if is_dir {
                    dirs.insert(path);
                    continue;
                }
                let size = object.size().unwrap_or(0).max(0) as u64;
                let mtime_ns = object.last_modified().map_or(0, timestamp_ns);
                let mut entry = Entry::file(size, mtime_ns, 0);
                if let Some(etag) = object.e_tag() {
                    entry.set_etag(etag.to_string());
                }
                counter.add(size);
                if size == 0 && options.symlinks {
                    empty_objects.push(entries.len());
                }
                entries.push(ManifestEntry { path, entry });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        // With -a, an empty object may be a symbolic link stored by HugeSync: only
        // its metadata says so. Empty objects are rare, so they alone are HEADed.
        for index in empty_objects {
            let entry: &mut ManifestEntry = &mut entries[index];
            if let Some(head) = self.head_key(&self.key_of(&entry.path)).await?
                && let Some(target) = head.meta.link_target
            {
                entry.entry.kind = EntryKind::Symlink;
                entry
                    .entry
                    .extra
                    .get_or_insert_with(Default::default)
                    .link_target = Some(target);
                if let Some(mtime) = head.meta.mtime_ns {
                    entry.entry.mtime_ns = mtime;
                }
            }
        }
        for dir in dirs {
            // Implied directories have no attributes of their own.
            let entry = Entry {
                kind: EntryKind::Dir,
                ..Entry::file(0, 0, 0)
            };
            entries.push(ManifestEntry { path: dir, entry });
        }
        Ok(Listing {
            manifest: Manifest::new(entries, Vec::new(), true),
            issues,
            leftovers: Vec::new(),
        })
    }
}
