//! What `check` asks a store beyond its listing: one HEAD per object (the
//! blake3 in its metadata, the store's own checksums), its fresh sidecar's
//! blake3 when the metadata has none, and with `--download` the bytes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::stream::{self, StreamExt};

use super::{CheckProgress, CheckReport, Known, Pair, Side, Unchecked, merge};
use crate::storage::object::ObjectStore;
use crate::storage::{SharedStore, StorageError};
use crate::sync::sidecar;
use crate::types::{ContentSums, Entry, RelPath};

/// Requests in flight while looking objects up, at the least: a store that
/// takes more listing requests at once takes as many HEADs.
const PARALLEL_LOOKUPS: usize = 16;
/// Objects read at once with `--download` (each a stream of its own).
const PARALLEL_READS: usize = 4;

/// Looks up every object side of the pairs at `indices`, adding what each
/// holds to the pair's known checksums.
pub(super) async fn look_up(
    pairs: &mut [Pair],
    indices: &[usize],
    sides: [Side<'_>; 2],
    requests: Option<usize>,
    progress: &CheckProgress,
    report: &mut CheckReport,
) {
    let jobs = object_sides(indices, sides);
    let in_flight = requests.unwrap_or_else(|| {
        jobs.iter()
            .map(|(_, _, store)| store.info().kind.list_requests)
            .max()
            .unwrap_or(0)
            .max(PARALLEL_LOOKUPS)
    });
    let found: Vec<(usize, usize, Result<ContentSums, StorageError>)> = {
        let pairs = &*pairs;
        stream::iter(jobs)
            .map(|(i, side, store)| async move {
                let (path, entry) = (&pairs[i].path, &pairs[i].entries[side]);
                (
                    i,
                    side,
                    object_sums(store.as_ref(), path, entry, progress).await,
                )
            })
            .buffer_unordered(in_flight)
            .collect()
            .await
    };
    for (i, side, result) in found {
        let pair = &mut pairs[i];
        pair.looked_up = true;
        match result {
            Ok(sums) => {
                if let Known::Held(held) = &mut pair.known[side] {
                    merge(held, sums);
                }
            }
            Err(e) => report.unchecked.push(Unchecked {
                path: pair.path.clone(),
                error: e.to_string(),
            }),
        }
    }
}

/// Each object side of the pairs at `indices`: (pair, side, store).
fn object_sides<'a>(
    indices: &[usize],
    sides: [Side<'a>; 2],
) -> Vec<(usize, usize, &'a SharedStore)> {
    indices
        .iter()
        .flat_map(|&i| {
            sides
                .into_iter()
                .enumerate()
                .filter_map(move |(side, s)| match s {
                    Side::Object(store) => Some((i, side, store)),
                    Side::Local(_) => None,
                })
        })
        .collect()
}

/// What one object holds: its HEAD's checksums and recorded blake3, else
/// its fresh sidecar's blake3.
async fn object_sums(
    store: &dyn ObjectStore,
    path: &RelPath,
    entry: &Entry,
    progress: &CheckProgress,
) -> Result<ContentSums, StorageError> {
    progress.requests.fetch_add(1, Ordering::Relaxed);
    let key = store.key_of(path);
    let head = store
        .head(&key)
        .await?
        .ok_or_else(|| StorageError::Transfer {
            target: store.url_of(&key),
            message: "the object was deleted while the check ran".into(),
        })?;
    if head.meta.blake3.is_none() {
        // The sidecar GET that recorded_blake3 makes.
        progress.requests.fetch_add(1, Ordering::Relaxed);
    }
    let sums = ContentSums {
        blake3: sidecar::recorded_blake3(store, path, entry, &head).await?,
        ..head.sums
    };
    Ok(sums)
}

/// Reads every object side of the pairs at `indices` whole, keeping the
/// blake3 of its bytes (`--download`).
pub(super) async fn read_bytes(
    pairs: &mut [Pair],
    indices: &[usize],
    sides: [Side<'_>; 2],
    progress: &Arc<CheckProgress>,
    report: &mut CheckReport,
) {
    let jobs = object_sides(indices, sides);
    let read: Vec<(usize, usize, Result<[u8; 32], StorageError>)> = {
        let pairs = &*pairs;
        stream::iter(jobs)
            .map(|(i, side, store)| async move {
                let (path, entry) = (&pairs[i].path, &pairs[i].entries[side]);
                (i, side, hash_object(store, path, entry, progress).await)
            })
            .buffer_unordered(PARALLEL_READS)
            .collect()
            .await
    };
    for (i, side, result) in read {
        let pair = &mut pairs[i];
        match result {
            Ok(hash) => pair.sums[side].blake3 = Some(hash),
            Err(e) => report.unchecked.push(Unchecked {
                path: pair.path.clone(),
                error: e.to_string(),
            }),
        }
    }
}

/// The blake3 of an object's bytes, read as the listing saw it (a replaced
/// object fails the read rather than be mixed in).
async fn hash_object(
    store: &SharedStore,
    path: &RelPath,
    entry: &Entry,
    progress: &CheckProgress,
) -> Result<[u8; 32], StorageError> {
    progress.requests.fetch_add(1, Ordering::Relaxed);
    let key = store.key_of(path);
    let body = crate::storage::objects::read_object(store.clone(), &key, entry.size, entry.etag());
    futures::pin_mut!(body);
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        progress
            .bytes_read
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        hasher.update(&chunk);
    }
    Ok(*hasher.finalize().as_bytes())
}
