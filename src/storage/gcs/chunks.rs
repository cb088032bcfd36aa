//! Chunked objects (opt-in, `--gcs-chunked-objects`): an object HugeSync
//! uploads is also kept as its parts, hidden objects named
//! `.hugesync-chunks/KEY/NUMBER`, and composed from them. Compose reuses whole
//! objects only, so a later upload of the file re-sends just the chunks whose
//! bytes changed and composes the others as they are. The price is storage:
//! the data is kept twice (the object and its chunks).
//!
//! A chunk is reused only after its MD5 and CRC32C (both computed by the
//! service) are those of the file's bytes at its place, so a chunk left by an
//! interrupted run, or changed by anyone, is never taken for other bytes.

use super::*;

/// The reserved folder, at the top of the bucket.
pub const CHUNKS: &str = ".hugesync-chunks/";

/// The upload id under which `uploads` lists (and `--abort` removes) the
/// chunks of an object that does not exist.
pub const ORPHANED: &str = "chunks";

/// Digits of a chunk number: sorted listings list chunks in order.
const NUMBER_DIGITS: usize = 5;

/// The folder of one object's chunks. Its direct children are that object's
/// chunks only: a longer key's chunks sit one folder deeper.
pub fn folder(key: &str) -> String {
    format!("{CHUNKS}{key}/")
}

/// The chunk `number` (1-based) of `key`.
pub fn name(key: &str, number: u32) -> String {
    format!("{}{number:0width$}", folder(key), width = NUMBER_DIGITS)
}

/// `(key, number)` of a chunk's name; `None` for anything else.
pub fn parse(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix(CHUNKS)?;
    let (key, number) = rest.rsplit_once('/')?;
    if key.is_empty()
        || number.len() != NUMBER_DIGITS
        || !number.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((key, number.parse().ok()?))
}

use super::{ChunkIndex, GcsStorage, HINTS, json, staging};
use crate::storage::object::{CopyRange, StagedPart, StagedUpload};
use crate::storage::{RemoteErrorKind, StorageError};

impl GcsStorage {
    /// Whether `key` is a user object (not a sidecar or a reserved name),
    /// which may have chunks.
    fn may_have_chunks(key: &str) -> bool {
        !crate::storage::is_sidecar(key.as_bytes())
            && !key.starts_with(staging::STAGING)
            && !key.starts_with(CHUNKS)
    }

    /// Removes the chunks of objects that were deleted, or replaced by a
    /// write that keeps none. The chunk folder below the prefix is listed
    /// once per run, at the first such write.
    pub(super) async fn drop_chunks_of(&self, keys: &[String]) -> Result<(), StorageError> {
        let keys: Vec<&String> = keys.iter().filter(|k| Self::may_have_chunks(k)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = {
            let mut slot = self.chunk_index.lock().await;
            let index = match slot.as_mut() {
                Some(index) => index,
                None => {
                    let mut found = ChunkIndex::new();
                    let folder = format!("{}{}", CHUNKS, self.prefix);
                    for object in self.list_all(&folder).await? {
                        if let Some((key, _)) = parse(&object.name) {
                            found.entry(key.to_string()).or_default().push(object.name);
                        }
                    }
                    slot.insert(found)
                }
            };
            keys.iter()
                .filter_map(|k| index.remove(*k))
                .flatten()
                .collect()
        };
        self.delete_names(&names).await
    }

    /// The same as [`Self::drop_chunks_of`] after a write that succeeded: a
    /// failure leaves hidden chunks only, and is reported, not returned.
    pub(super) async fn drop_chunks_after_write(&self, key: &str) {
        if let Err(e) = self.drop_chunks_of(&[key.to_string()]).await {
            tracing::warn!(
                "{}: cannot remove the chunks the object was kept as: {e}",
                self.url_of_key(key)
            );
        }
    }

    /// The chunk objects listed for `key`, in order.
    pub(super) async fn chunk_objects(
        &self,
        key: &str,
    ) -> Result<Vec<(u32, json::Object)>, StorageError> {
        let mut found: Vec<(u32, json::Object)> = self
            .list_all(&folder(key))
            .await?
            .into_iter()
            .filter_map(|o| {
                let number = match parse(&o.name) {
                    Some((k, number)) if k == key => number,
                    _ => return None,
                };
                Some((number, o))
            })
            .collect();
        found.sort_by_key(|(number, _)| *number);
        Ok(found)
    }

    /// Stages chunk `number` of the object as it is kept, when its size is
    /// the range's and its checksums are the file's bytes'; `None` when no
    /// chunk of that number has the range's size.
    pub(super) async fn stage_kept_chunk(
        &self,
        upload: &StagedUpload,
        number: u32,
        range: &CopyRange,
    ) -> Result<Option<StagedPart>, StorageError> {
        let name = name(&upload.key, number);
        let Some(object) = self.head_object(&name).await? else {
            return Ok(None);
        };
        if object.size() != range.len {
            // Kept for another range.
            return Ok(None);
        }
        let checked = self.compare_reused(range, &object, &name)?;
        if !checked {
            return Err(StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(&name),
                kind: RemoteErrorKind::ChecksumMismatch,
                message: "the chunk carries no checksum to compare".into(),
                hints: &HINTS,
            });
        }
        let generation = Self::generation_of(object, &self.url_of_key(&name))?;
        Ok(Some(StagedPart {
            crc64nvme: None,
            number,
            tag: staging::tag(&name, &generation),
            size: range.len,
            md5: range.expected_md5,
        }))
    }
}

#[async_trait::async_trait]
impl KeptChunks for GcsStorage {
    async fn kept_chunks(&self, key: &str) -> Result<Vec<KeptChunk>, StorageError> {
        // Chunks are placed by the sizes of those before them: a gap (a
        // chunk removed meanwhile) leaves the rest unplaced.
        let mut kept = Vec::new();
        let mut start = 0;
        for (number, object) in self.chunk_objects(key).await? {
            if number as usize != kept.len() + 1 {
                break;
            }
            kept.push(KeptChunk {
                number,
                start,
                len: object.size(),
                md5: object.md5(),
                crc32c: object.crc32c(),
            });
            start += object.size();
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_keys_apart() {
        let chunk = name("data/disk.img", 12);
        assert_eq!(chunk, ".hugesync-chunks/data/disk.img/00012");
        assert_eq!(parse(&chunk), Some(("data/disk.img", 12)));
        // The chunks of `a/00001` are not chunks of `a`.
        let deeper = name("a/00001", 1);
        assert!(deeper.starts_with(&folder("a")));
        assert_eq!(parse(&deeper), Some(("a/00001", 1)));
        assert!(name("k", 9) < name("k", 10));
        assert_eq!(parse(".hugesync-chunks/k/x"), None);
        assert_eq!(parse("k/00001"), None);
    }
}
