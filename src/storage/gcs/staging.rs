//! Where a parallel composite upload keeps its parts: temporary objects
//! under one reserved folder at the top of the bucket,
//! `.hugesync-staging/STEM/NUMBER/KEY` — the stem tells one upload's parts from
//! another's, the number is the part's place, the key is the object they will
//! make (so a listing of the folder alone finds every pending upload and what
//! it was for). Listings of user files never show this folder; the parts go
//! when the object is composed or the upload aborted.

use super::*;
use crate::storage::body::BodySums;

/// The reserved folder, at the top of the bucket.
pub const STAGING: &str = ".hugesync-staging/";

/// Digits of a part number in a name: sorted listings list parts in order.
const NUMBER_DIGITS: usize = 5;

/// A fresh stem: random, so concurrent uploads of one key never meet.
pub fn new_stem() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The folder of one upload's parts.
pub fn upload_folder(stem: &str) -> String {
    format!("{STAGING}{stem}/")
}

/// The temporary object holding part `number` of the upload `stem` of `key`.
pub fn part_name(stem: &str, number: u32, key: &str) -> String {
    format!(
        "{}{number:0width$}/{key}",
        upload_folder(stem),
        width = NUMBER_DIGITS
    )
}

/// An intermediate composite of a compose tree (past 32 sources a call):
/// level `level`, `index`-th of its level.
pub fn composite_name(stem: &str, level: u32, index: usize, key: &str) -> String {
    format!("{}c{level}-{index:05}/{key}", upload_folder(stem))
}

/// What a temporary object's name says: `(stem, part number, key)`; `None`
/// for intermediates and foreign names.
pub fn parse_part_name(name: &str) -> Option<(&str, u32, &str)> {
    let rest = name.strip_prefix(STAGING)?;
    let (stem, rest) = rest.split_once('/')?;
    let (number, key) = rest.split_once('/')?;
    if number.len() != NUMBER_DIGITS || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem, number.parse().ok()?, key))
}

/// A staged part's tag: the object and generation compose takes it from.
pub fn tag(name: &str, generation: &str) -> String {
    format!("{name}#{generation}")
}

/// `(name, generation)` of a tag (the generation follows the last `#`).
pub fn parse_tag(tag: &str) -> Option<(&str, &str)> {
    let (name, generation) = tag.rsplit_once('#')?;
    (!generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit()))
        .then_some((name, generation))
}

#[async_trait::async_trait]
impl StagedObjects for GcsStorage {
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        // Nothing to ask the service: parts are objects of their own, the
        // metadata goes with the compose.
        Ok(StagedUpload {
            key: key.to_string(),
            id: staging::new_stem(),
        })
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        body: BodySource<'_>,
        len: u64,
        sums: BodySums,
    ) -> Result<StagedPart, StorageError> {
        if number == 0 || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target: self.url_of_key(&upload.key),
                message: format!("part number {number} is outside 1..={}", LIMITS.max_parts),
            });
        }
        if len > LIMITS.max_part {
            return Err(StorageError::Transfer {
                target: self.url_of_key(&upload.key),
                message: format!("a {len}-byte part is over the 5 TiB an object may hold"),
            });
        }
        let name = if self.chunked {
            chunks::name(&upload.key, number)
        } else {
            staging::part_name(&upload.id, number, &upload.key)
        };
        let object = self
            .upload(&name, body, len, HashMap::new(), sums, Expect::Any)
            .await?;
        let stored_md5 = object.md5();
        let generation = Self::generation_of(object, &self.url_of_key(&upload.key))?;
        Ok(StagedPart {
            crc64nvme: None,
            number,
            tag: staging::tag(&name, &generation),
            size: len,
            md5: stored_md5,
        })
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        if self.chunked {
            // What is staged for the key is its chunks.
            let parts: Vec<StagedPart> = self
                .chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(number, o)| StagedPart {
                    crc64nvme: None,
                    number,
                    tag: staging::tag(&o.name, o.generation.as_deref().unwrap_or_default()),
                    size: o.size(),
                    md5: o.md5(),
                })
                .collect();
            if parts.is_empty() {
                return Err(StorageError::Remote {
                    op: "cannot resume",
                    target: self.url_of_key(&upload.key),
                    kind: RemoteErrorKind::NotFound,
                    message: "no chunk of the upload is left".into(),
                    hints: &HINTS,
                });
            }
            return Ok(parts);
        }
        let objects = self.list_all(&staging::upload_folder(&upload.id)).await?;
        if objects.is_empty() {
            return Err(StorageError::Remote {
                op: "cannot resume",
                target: self.url_of_key(&upload.key),
                kind: RemoteErrorKind::NotFound,
                message: "no part of the upload is left".into(),
                hints: &HINTS,
            });
        }
        let mut parts: Vec<StagedPart> = objects
            .iter()
            .filter_map(|o| {
                let (_, number, key) = staging::parse_part_name(&o.name)?;
                (key == upload.key).then(|| StagedPart {
                    crc64nvme: None,
                    number,
                    tag: staging::tag(&o.name, o.generation.as_deref().unwrap_or_default()),
                    size: o.size(),
                    md5: o.md5(),
                })
            })
            .collect();
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(&upload.key);
        let sources = parts
            .iter()
            .map(|p| {
                staging::parse_tag(&p.tag)
                    .map(|(name, generation)| (name.to_string(), generation.to_string()))
                    .ok_or_else(|| StorageError::Transfer {
                        target: target.clone(),
                        message: format!("part {} has no object to compose from", p.number),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sources.is_empty() {
            return Err(StorageError::Transfer {
                target,
                message: "an object needs at least one part".into(),
            });
        }
        // One listing of the parts serves the checksum and, once the object
        // is made, the removal of what it no longer needs: the upload's
        // folder, or with chunked objects the key's chunks (those past the
        // new last one are stale).
        let staged = if self.chunked {
            self.chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(_, object)| object)
                .collect()
        } else {
            self.list_all(&staging::upload_folder(&upload.id)).await?
        };
        let expected_crc32c = self.combined_crc32c(&staged, &sources).await?;
        let (object, intermediates) = self
            .compose(&upload.id, &upload.key, sources.clone(), meta, expect)
            .await?;
        // The parts were checked against the file's bytes (MD5) as they went
        // up; the composite is checked against the parts: its CRC32C must be
        // theirs, combined in order.
        if let (Some(expected), Some(actual)) = (expected_crc32c, object.crc32c())
            && expected != actual
        {
            return Err(StorageError::Verification {
                target,
                message: format!(
                    "the composed object's CRC32C {actual:08x} is not its parts' {expected:08x}"
                ),
            });
        }
        let expected: u64 = parts.iter().map(|p| p.size).sum();
        if object.size() != expected {
            return Err(StorageError::Verification {
                target,
                message: format!(
                    "the composed object holds {} bytes, not the {expected} of its parts",
                    object.size()
                ),
            });
        }
        let generation = Self::generation_of(object, &target)?;
        if self.chunked {
            // The chunks composed stay; any other chunk of the key goes.
            let (kept, stale): (Vec<String>, Vec<String>) = staged
                .into_iter()
                .map(|o| o.name)
                .partition(|name| sources.iter().any(|(source, _)| source == name));
            if let Some(index) = self.chunk_index.lock().await.as_mut() {
                index.insert(upload.key.clone(), kept);
            }
            let unneeded: Vec<String> = stale.into_iter().chain(intermediates).collect();
            if let Err(e) = self.delete_names(&unneeded).await {
                tracing::warn!("{target}: cannot remove the chunks it no longer has: {e}");
            }
            return Ok(generation);
        }
        // The object is made: its temporaries go (a failure here leaves
        // only them, which `hugesync uploads --abort` removes).
        let temporaries: Vec<String> = staged
            .into_iter()
            .map(|o| o.name)
            .chain(intermediates)
            .filter(|name| name.starts_with(staging::STAGING))
            .collect();
        if let Err(e) = self.delete_names(&temporaries).await {
            tracing::warn!("{target}: cannot remove the upload's temporary parts: {e}");
        }
        self.drop_chunks_after_write(&upload.key).await;
        Ok(generation)
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        if upload.id != chunks::ORPHANED {
            self.remove_upload_folder(&upload.id).await?;
        }
        // Chunks stay for the next upload of an object that exists; those of
        // an object that never came to be go with the upload.
        if (self.chunked || upload.id == chunks::ORPHANED)
            && self.head_object(&upload.key).await?.is_none()
        {
            let names: Vec<String> = self
                .chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(_, o)| o.name)
                .collect();
            self.delete_names(&names).await?;
        }
        Ok(())
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        let mut pending: Vec<PendingUpload> = Vec::new();
        for object in self.list_all(staging::STAGING).await? {
            let Some((stem, _, key)) = staging::parse_part_name(&object.name) else {
                continue;
            };
            if !key.starts_with(&self.prefix) {
                continue;
            }
            let created = object.time_created.as_deref().map(rfc3339_ns);
            match pending.iter_mut().find(|p| p.id == stem && p.key == key) {
                Some(found) => {
                    found.initiated_ns = found.initiated_ns.min(created).or(created);
                }
                None => pending.push(PendingUpload {
                    key: key.to_string(),
                    id: stem.to_string(),
                    initiated_ns: created,
                }),
            }
        }
        // Chunks kept for an object that does not exist (its first upload
        // was interrupted, and never run again).
        let mut orphaned: Vec<PendingUpload> = Vec::new();
        let folder = format!("{}{}", chunks::CHUNKS, self.prefix);
        for object in self.list_all(&folder).await? {
            let Some((key, _)) = chunks::parse(&object.name) else {
                continue;
            };
            let created = object.time_created.as_deref().map(rfc3339_ns);
            match orphaned.iter_mut().find(|p| p.key == key) {
                Some(found) => found.initiated_ns = found.initiated_ns.min(created).or(created),
                None => orphaned.push(PendingUpload {
                    key: key.to_string(),
                    id: chunks::ORPHANED.to_string(),
                    initiated_ns: created,
                }),
            }
        }
        for candidate in orphaned {
            if self.head_object(&candidate.key).await?.is_none() {
                pending.push(candidate);
            }
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_in_part_order() {
        let name = part_name("00ab", 7, "data/model #1.bin");
        assert_eq!(name, ".hugesync-staging/00ab/00007/data/model #1.bin");
        assert_eq!(
            parse_part_name(&name),
            Some(("00ab", 7, "data/model #1.bin"))
        );
        assert!(part_name("s", 9, "k") < part_name("s", 10, "k"));
        assert_eq!(parse_part_name(&composite_name("s", 1, 0, "k")), None);
        assert_eq!(parse_part_name("data/x"), None);
        let t = tag("a#b", "123");
        assert_eq!(parse_tag(&t), Some(("a#b", "123")));
        assert_eq!(parse_tag("no-generation"), None);
    }
}
