//! A bucket of generated objects for the simulations at 10⁷–10⁸ objects
//! (`plan_sim`, `shard_sim`): keys, sizes, times and ETags a function of the
//! index, nothing stored; every listing request and HEAD delayed as a
//! network would, and counted.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hugesync::retry::RetryPolicy;
use hugesync::storage::body::BodySource;
use hugesync::storage::memory::{MemoryOptions, MemoryStore};
use hugesync::storage::object::{
    ByteStream, CopySource, ListPage, ListQuery, ListedObject, ObjectHead,
};
use hugesync::storage::{Expect, ObjectMeta, ObjectStore, StorageError, StoreInfo};
use hugesync::types::ContentSums;

/// The process's peak resident set so far, in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Hive-style keys in index order: a partition per 5,000 files
/// (`table/day=00012/part-01234.parquet`). Written digit by digit: the
/// simulated store runs on the client's cores, and a real store's work of
/// making its pages is not the client's (`format!` took a third of the
/// listing's CPU here).
pub fn key(i: u64) -> String {
    let mut key = String::with_capacity(36);
    key.push_str("table/day=");
    push_digits(&mut key, i / 5_000);
    key.push_str("/part-");
    push_digits(&mut key, i % 5_000);
    key.push_str(".parquet");
    key
}

/// `n` in five decimal digits, zero-padded (wider when it needs more).
fn push_digits(out: &mut String, n: u64) {
    let digits = n.checked_ilog10().unwrap_or(0).max(4) + 1;
    for place in (0..digits).rev() {
        out.push(char::from(b'0' + (n / 10u64.pow(place) % 10) as u8));
    }
}

/// A quoted lowercase-hex ETag of `digest`, in one allocation.
pub fn quoted_hex(digest: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(34);
    text.push('"');
    for byte in digest {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text.push('"');
    text
}

/// A bucket of `n` objects generated from their index: the in-memory store
/// answers everything but listings (it is empty), and listings come from
/// `key`, with sizes, times and MD5 ETags a function of the index.
#[derive(Debug)]
pub struct Generated {
    empty: MemoryStore,
    n: u64,
    latency: Duration,
    /// Every this many objects differ in size and content (0: none).
    changed_every: u64,
    /// Every this many objects (at an offset of half of it) are named
    /// `KEY.old` instead of `KEY`: where another side has `KEY`, a side
    /// with these has one to delete and one to make (0: none).
    renamed_every: u64,
    pub lists: AtomicU64,
    pub heads: AtomicU64,
}

impl Generated {
    /// The key of object `i` in this bucket.
    fn key_of(&self, i: u64) -> String {
        let mut key = key(i);
        if self.renamed_every > 0 && i % self.renamed_every == self.renamed_every / 2 {
            key.push_str(".old");
        }
        key
    }

    fn object(&self, i: u64) -> ListedObject {
        let differs = self.changed_every > 0 && i.is_multiple_of(self.changed_every);
        let size = 1_000_000 + (i % 7_919) + u64::from(differs);
        let mut digest = [0u8; 16];
        digest[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        digest[15] = u8::from(differs);
        let sums = ContentSums {
            md5: Some(digest),
            ..ContentSums::default()
        };
        ListedObject {
            rel_key: self.key_of(i),
            size,
            mtime_ns: 1_700_000_000_000_000_000 + (i as i64 % 86_400) * 1_000_000_000,
            version: Some(quoted_hex(&digest)),
            meta: None,
            sums,
        }
    }

    /// The first index whose key is at or after `bound`.
    fn index_at(&self, bound: &str) -> u64 {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key_of(mid).as_str() < bound {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[async_trait::async_trait]
impl ObjectStore for Generated {
    fn info(&self) -> &StoreInfo {
        self.empty.info()
    }

    async fn list_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        assert!(!query.delimited, "the generated store lists by ranges");
        self.lists.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
        let start = match token {
            Some(next) => next.parse().unwrap(),
            None => self.index_at(query.from.as_deref().unwrap_or(&query.prefix)),
        };
        // As a store does, the listing ends where keys leave the prefix.
        let prefix_end = prefix_successor(&query.prefix).map_or(self.n, |end| self.index_at(&end));
        let end = query
            .to
            .as_deref()
            .map_or(self.n, |to| self.index_at(to))
            .min(prefix_end);
        let page = u64::from(self.info().page_size);
        let mut listed = ListPage::default();
        let stop = end.min(start + page);
        listed.objects = (start..stop)
            .map(|i| self.object(i))
            .filter(|o| o.rel_key.starts_with(&query.prefix))
            .collect();
        listed.next = (stop < end).then(|| stop.to_string());
        Ok(listed)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.heads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
        let i = self.index_at(key);
        Ok((i < self.n && self.key_of(i) == key).then(|| {
            let object = self.object(i);
            ObjectHead {
                size: object.size,
                mtime_ns: object.mtime_ns,
                version: object.version,
                meta: ObjectMeta::default(),
                sums: object.sums,
            }
        }))
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        self.empty.open_read(key, range, version).await
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        sums: hugesync::storage::body::BodySums,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.empty.put(key, body, len, meta, sums, expect).await
    }

    fn copies_from(&self, _source: &dyn ObjectStore) -> bool {
        false
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.empty.copy_object(source, key, meta, expect).await
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        self.empty.set_metadata(key, meta, expect).await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        self.empty.delete_keys(keys).await
    }
}

/// A bucket of `n` objects, every `changed_every`-th of them changed (0:
/// none).
pub fn generated(name: &str, n: u64, latency: Duration, changed_every: u64) -> Arc<Generated> {
    generated_with(name, n, latency, changed_every, 0)
}

/// The same, every `renamed_every`-th object renamed `KEY.old`.
pub fn generated_with(
    name: &str,
    n: u64,
    latency: Duration,
    changed_every: u64,
    renamed_every: u64,
) -> Arc<Generated> {
    Arc::new(Generated {
        empty: MemoryStore::new(name, "", MemoryOptions::default(), &RetryPolicy::default()),
        n,
        latency,
        changed_every,
        renamed_every,
        lists: AtomicU64::new(0),
        heads: AtomicU64::new(0),
    })
}

/// The least key greater than every key starting with `prefix` (`None`:
/// the empty prefix, which holds every key).
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}
