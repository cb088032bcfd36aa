//! Some entries of a side as they are now, looked up by path: a stat each on
//! a disk; on an object store a HEAD each when they are few next to the keys
//! around them, else listings of the key range they span (a listing page
//! answers for a thousand keys, a HEAD for one). What `apply --shard` and
//! `finalize` check a plan's entries with, instead of listing whole trees.

use std::collections::HashMap;

use futures::StreamExt;

use super::object::{ListQuery, ListSplit, ListedObject, ObjectStore, with_recorded_blake3};
use super::{Storage, StorageError};
use crate::types::{Entry, EntryKind, RelPath};

/// Requests made to look entries up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Listing pages.
    pub lists: u64,
    /// HEADs (or stats, on a disk).
    pub heads: u64,
}

impl std::ops::AddAssign for Lookups {
    fn add_assign(&mut self, other: Lookups) {
        self.lists += other.lists;
        self.heads += other.heads;
    }
}

/// A range is listed rather than HEADed entry by entry once the entries
/// outnumber its pages by this.
const ENTRIES_PER_PAGE_TO_LIST: u64 = 2;

/// A range listed in pieces at once has at least this many pages a piece
/// (each piece reads one page past its end on a store with no end key).
const PAGES_PER_PIECE: u64 = 4;

/// How to look entries up.
#[derive(Clone, Copy, Debug)]
pub struct LookupOptions {
    /// Links are entries (`-a`); without it a link is as absent, as a scan
    /// skips it.
    pub symlinks: bool,
    /// Requests in flight at once.
    pub in_flight: usize,
}

impl Storage {
    /// The entries at `paths` (in increasing order) now, in their order:
    /// `None` where there is none. `around` is about how many keys the
    /// range from the first path to the last holds (what the plan's scan
    /// saw there), which decides between HEADs and listings.
    pub async fn entries_at(
        &self,
        paths: &[&RelPath],
        around: u64,
        options: LookupOptions,
    ) -> Result<(Vec<Option<Entry>>, Lookups), StorageError> {
        if paths.is_empty() {
            return Ok((Vec::new(), Lookups::default()));
        }
        let found = match self {
            Storage::Local(local) => {
                let local = local.clone();
                let owned: Vec<RelPath> = paths.iter().map(|p| (*p).clone()).collect();
                let heads = owned.len() as u64;
                let entries = super::run_blocking(move || {
                    owned
                        .iter()
                        .map(|path| local.head(path))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
                (entries, Lookups { lists: 0, heads })
            }
            Storage::Object(store) => {
                let info = store.info();
                let pages = around.div_ceil(u64::from(info.page_size.max(1))).max(1);
                let ranges = matches!(info.list_split, ListSplit::Ranges { .. });
                if ranges && paths.len() as u64 > ENTRIES_PER_PAGE_TO_LIST * pages {
                    listed(store.as_ref(), paths, pages, options).await?
                } else {
                    headed(store.as_ref(), paths, options).await?
                }
            }
        };
        let (mut entries, lookups) = found;
        if !options.symlinks {
            for entry in &mut entries {
                if entry.as_ref().is_some_and(|e| e.kind == EntryKind::Symlink) {
                    *entry = None;
                }
            }
        }
        Ok((entries, lookups))
    }
}

/// A HEAD each, `in_flight` at once.
async fn headed(
    store: &dyn ObjectStore,
    paths: &[&RelPath],
    options: LookupOptions,
) -> Result<(Vec<Option<Entry>>, Lookups), StorageError> {
    let entries: Vec<Result<Option<Entry>, StorageError>> = futures::stream::iter(paths)
        .map(|path| super::objects::head_as_listed(store, path))
        .buffered(options.in_flight.max(1))
        .collect()
        .await;
    let entries = entries.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((
        entries,
        Lookups {
            lists: 0,
            heads: paths.len() as u64,
        },
    ))
}

/// Listings of the key range from the first path to the last, in pieces cut
/// at the paths themselves (they are spread over the range), at once.
async fn listed(
    store: &dyn ObjectStore,
    paths: &[&RelPath],
    pages: u64,
    options: LookupOptions,
) -> Result<(Vec<Option<Entry>>, Lookups), StorageError> {
    let keys: Vec<String> = paths
        .iter()
        .map(|path| super::names::encode(path.as_bytes()))
        .collect();
    let wanted: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    // Encoding keeps the order of almost every name; the range is taken
    // over the keys themselves, so it holds every one whatever their order.
    let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let pieces = (pages / PAGES_PER_PIECE)
        .clamp(1, options.in_flight.max(1) as u64)
        .min(sorted.len() as u64) as usize;
    let bounds: Vec<(&str, Option<&str>)> = (0..pieces)
        .map(|k| {
            let from = sorted[k * sorted.len() / pieces];
            let to = (k + 1 < pieces).then(|| sorted[(k + 1) * sorted.len() / pieces]);
            (from, to)
        })
        .collect();
    let last = sorted[sorted.len() - 1];
    let lists =
        futures::future::try_join_all(bounds.iter().map(|&(from, to)| {
            list_between(store, from, to.unwrap_or(last), to.is_some(), &wanted)
        }))
        .await?;
    let mut entries: Vec<Option<Entry>> = vec![None; paths.len()];
    let mut lookups = Lookups::default();
    let mut empties = Vec::new();
    for (found, requests) in lists {
        lookups.lists += requests;
        for (i, object) in found {
            let has_meta = object.meta.is_some();
            let empty = object.size == 0;
            entries[i] = Some(entry_of(object));
            // An empty object may be a link only its metadata tells of.
            if empty && !has_meta && options.symlinks {
                empties.push(i);
            }
        }
    }
    for i in empties {
        lookups.heads += 1;
        entries[i] = super::objects::head_as_listed(store, paths[i]).await?;
    }
    Ok((entries, lookups))
}

/// The objects from `from` on, up to `to` (exclusive when `open_end`, else
/// inclusive), that `wanted` names, page after page; and the pages read.
async fn list_between(
    store: &dyn ObjectStore,
    from: &str,
    to: &str,
    open_end: bool,
    wanted: &HashMap<&str, usize>,
) -> Result<(Vec<(usize, ListedObject)>, u64), StorageError> {
    let query = ListQuery {
        prefix: common_prefix(from, to).to_string(),
        from: Some(from.to_string()),
        to: None,
        delimited: false,
    };
    let past = |key: &str| if open_end { key >= to } else { key > to };
    let mut token = None;
    let mut requests = 0;
    let mut found = Vec::new();
    loop {
        let page = store.list_page(&query, token.take()).await?;
        requests += 1;
        let mut ended = page.next.is_none();
        for object in page.objects {
            if past(&object.rel_key) {
                ended = true;
                break;
            }
            if object.rel_key.as_str() < from {
                continue;
            }
            if let Some(&i) = wanted.get(object.rel_key.as_str()) {
                found.push((i, object));
            }
        }
        if ended {
            return Ok((found, requests));
        }
        token = page.next;
    }
}

/// The longest prefix two keys share, cut at a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

/// The entry a listing gives of an object (as a scan's listing does).
fn entry_of(object: ListedObject) -> Entry {
    let mode = object.meta.as_ref().and_then(|m| m.mode).unwrap_or(0);
    let mut entry = Entry::file(object.size, object.mtime_ns, mode);
    if let Some(version) = object.version {
        entry.set_etag(version);
    }
    entry.set_sums(with_recorded_blake3(object.sums, object.meta.as_ref()));
    if object.size == 0
        && let Some(meta) = object.meta
        && let Some(target) = meta.link_target
    {
        super::objects::set_link(&mut entry, target, meta.mtime_ns);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_where_keys_differ() {
        assert_eq!(common_prefix("d1/f001", "d1/f099"), "d1/f0");
        assert_eq!(common_prefix("a", "b"), "");
        assert_eq!(common_prefix("é/x", "é/y"), "é/");
    }
}
