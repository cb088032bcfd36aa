//! Whole-file staged uploads that outlive the process: started, or picked up
//! where an earlier run left them (`crate::resume` keeps the state), and
//! journaled part by part.

use std::path::Path;
use std::sync::Mutex;

use crate::resume::{DonePart, PartDigest, ResumeStore, STATE_VERSION, UploadState, UploadTarget};
use crate::signature::{SignedBlocks, sign_blocks};
use crate::storage::object::{StagedPart, StagedUpload};
use crate::storage::{ObjectMeta, ObjectStore, RecordedPart, RemoteErrorKind, StorageError};
use crate::types::{ContentSums, Entry};

use super::{ItemContext, ItemError};

/// A part an earlier run uploaded, checked against the file as it is now.
pub(super) struct ResumedPart {
    pub part: StagedPart,
    pub signed: Option<SignedBlocks>,
}

/// The state of an upload in progress, rewritten after each part.
pub(super) struct Journal {
    store: ResumeStore,
    state: Mutex<UploadState>,
}

impl Journal {
    /// Records a completed part. A state that cannot be written costs only the
    /// ability to resume: the upload goes on.
    pub fn record(&self, part: DonePart) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.parts.push(part);
        if let Err(e) = self.store.save(&state) {
            tracing::warn!("{e}");
        }
    }

    /// The upload completed or was abandoned: nothing to resume.
    pub fn forget(&self) {
        if let Ok(state) = self.state.lock() {
            self.store.remove(&state.target);
        }
    }
}

/// An upload ready for its remaining parts.
pub(super) struct Started {
    pub upload: StagedUpload,
    pub resumed: Vec<ResumedPart>,
    pub journal: Option<Journal>,
}

impl Started {
    /// After a failure: an interruption (Ctrl+C, a network that stayed down)
    /// leaves the upload and its state for the next run; anything else (the
    /// file or the object changed, a refusal) abandons them.
    pub async fn fail(self, dst: &dyn ObjectStore, error: ItemError) -> ItemError {
        if !(error.is_interruption() && self.journal.is_some()) {
            if let Some(staged) = dst.staged() {
                let _ = staged.abort_staged(&self.upload).await;
            }
            self.completed();
        }
        error
    }

    /// The upload completed (or was abandoned): its state goes.
    pub fn completed(&self) {
        if let Some(journal) = &self.journal {
            journal.forget();
        }
    }

    /// Parts already on the server.
    pub fn done_numbers(&self) -> std::collections::HashSet<u32> {
        self.resumed.iter().map(|r| r.part.number).collect()
    }
}

/// Starts the staged upload of `source` to `key` in parts of `part_size`,
/// or resumes the one an earlier run left, keeping the parts that are on the
/// server and still match the file.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start(
    dst: &dyn ObjectStore,
    key: &str,
    meta: &ObjectMeta,
    source: &Path,
    planned: &Entry,
    part_size: u64,
    block_size: Option<u32>,
    ctx: &ItemContext,
) -> Result<Started, ItemError> {
    let Some(store) = ctx.resume.clone() else {
        let upload = dst.need_staged()?.begin_staged(key, meta).await?;
        return Ok(Started {
            upload,
            resumed: Vec::new(),
            journal: None,
        });
    };
    let id = dst.id();
    let target = UploadTarget {
        scheme: dst.scheme().to_string(),
        endpoint: id.endpoint,
        bucket: id.bucket,
        key: key.to_string(),
        source: std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf()),
    };
    let earlier = match store.load(&target) {
        Ok(state) => state,
        Err(e) => {
            warn(ctx, e.to_string()).await;
            None
        }
    };
    if let Some(state) = earlier {
        let upload = StagedUpload {
            key: key.to_string(),
            id: state.upload_id.clone(),
        };
        let same_plan = state.size == planned.size
            && state.mtime_ns == planned.mtime_ns
            && state.part_size == part_size
            && state.block_size == block_size;
        if same_plan {
            match resume(dst, &upload, &state, source, block_size).await {
                Ok(resumed) => {
                    tracing::info!(
                        "{}: resuming the upload: {} of its parts are on the server already",
                        dst.url_of(key),
                        resumed.len()
                    );
                    let mut state = state;
                    state
                        .parts
                        .retain(|p| resumed.iter().any(|r| r.part.number == p.number));
                    return Ok(Started {
                        upload,
                        resumed,
                        journal: Some(Journal {
                            store,
                            state: Mutex::new(state),
                        }),
                    });
                }
                Err(StorageError::Remote {
                    kind: RemoteErrorKind::NotFound,
                    ..
                }) => {} // the upload was completed or aborted meanwhile
                Err(e) => return Err(e.into()),
            }
        } else {
            // The file changed since: its parts are of no use.
            if let Some(staged) = dst.staged() {
                let _ = staged.abort_staged(&upload).await;
            }
        }
        store.remove(&target);
    }
    let upload = dst.need_staged()?.begin_staged(key, meta).await?;
    let state = UploadState {
        version: STATE_VERSION,
        target,
        upload_id: upload.id.clone(),
        size: planned.size,
        mtime_ns: planned.mtime_ns,
        part_size,
        block_size,
        parts: Vec::new(),
        started_ns: now_ns(),
    };
    if let Err(e) = store.save(&state) {
        warn(ctx, e.to_string()).await;
    }
    Ok(Started {
        upload,
        resumed: Vec::new(),
        journal: Some(Journal {
            store,
            state: Mutex::new(state),
        }),
    })
}

/// The recorded parts that the server still has with the same tag and whose
/// file range still hashes the same, re-signed for the sidecar.
async fn resume(
    dst: &dyn ObjectStore,
    upload: &StagedUpload,
    state: &UploadState,
    source: &Path,
    block_size: Option<u32>,
) -> Result<Vec<ResumedPart>, StorageError> {
    let recorded: Vec<RecordedPart> = state
        .parts
        .iter()
        .filter_map(|done| {
            Some(RecordedPart {
                number: done.number,
                offset: done.offset,
                len: done.len,
                tag: done.etag.clone(),
                blake3: match done.digest {
                    PartDigest::Bytes => Some(ContentSums::blake3_of_hex(&done.blake3)?),
                    PartDigest::Blocks => None,
                },
            })
        })
        .collect();
    let held = dst
        .need_staged()?
        .staged_matching(upload, &recorded)
        .await?;
    let on_server: Vec<(DonePart, StagedPart)> = state
        .parts
        .iter()
        .filter_map(|done| {
            let part = held.iter().find(|p| p.number == done.number)?;
            Some((done.clone(), part.clone()))
        })
        .collect();
    let path = source.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file =
            std::fs::File::open(&path).map_err(|e| StorageError::io("cannot open", &path, e))?;
        let mut kept = Vec::new();
        for (done, part) in on_server {
            let mut bytes = vec![0u8; done.len as usize];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, done.offset)
                .map_err(|e| StorageError::io("cannot read", &path, e))?;
            let signed = block_size.map(|block| sign_blocks(&bytes, done.offset, block));
            let now = match (done.digest, &signed) {
                (PartDigest::Bytes, _) => blake3::hash(&bytes),
                (PartDigest::Blocks, Some(signed)) => signed.digest(),
                (PartDigest::Blocks, None) => continue, // nothing to check it by
            };
            if now.to_hex().as_str() != done.blake3 {
                continue; // changed in place: uploaded again
            }
            kept.push(ResumedPart { signed, part });
        }
        Ok(kept)
    })
    .await
    .map_err(|e| StorageError::Task {
        location: "resume".into(),
        reason: e.to_string(),
    })?
}

async fn warn(ctx: &ItemContext, message: String) {
    let _ = ctx
        .events
        .send(crate::progress::ExecEvent::Warning { message })
        .await;
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::body::{BodySource, BodySums};
    use crate::storage::memory::{MemoryOptions, MemoryStore};

    /// Stages `data` in parts of `part_len` as a killed run left them, with
    /// the journal it kept: each part by its signed blocks' digest.
    async fn left_by_a_killed_run(
        store: &MemoryStore,
        data: &[u8],
        part_len: usize,
        block: u32,
    ) -> (StagedUpload, UploadState) {
        let store: &dyn ObjectStore = store;
        let staged = store.need_staged().unwrap();
        let upload = staged
            .begin_staged("big.bin", &ObjectMeta::default())
            .await
            .unwrap();
        let mut parts = Vec::new();
        for (i, chunk) in data.chunks(part_len).enumerate() {
            let (number, offset) = (i as u32 + 1, (i * part_len) as u64);
            let body = bytes::Bytes::copy_from_slice(chunk);
            let part = staged
                .stage_bytes(
                    &upload,
                    number,
                    offset,
                    BodySource::Memory(&body),
                    chunk.len() as u64,
                    BodySums::NONE,
                )
                .await
                .unwrap();
            parts.push(DonePart {
                number,
                offset,
                len: chunk.len() as u64,
                etag: part.tag,
                blake3: sign_blocks(chunk, offset, block)
                    .digest()
                    .to_hex()
                    .to_string(),
                digest: PartDigest::Blocks,
            });
        }
        let state = UploadState {
            version: STATE_VERSION,
            target: UploadTarget {
                scheme: "mem".into(),
                endpoint: String::new(),
                bucket: String::new(),
                key: "big.bin".into(),
                source: "big.bin".into(),
            },
            upload_id: upload.id.clone(),
            size: data.len() as u64,
            mtime_ns: 0,
            part_size: part_len as u64,
            block_size: Some(block),
            parts,
            started_ns: 0,
        };
        (upload, state)
    }

    #[tokio::test]
    async fn a_part_journaled_by_its_blocks_is_kept_only_while_the_file_holds_them() {
        let block = 64 * 1024;
        let part_len = 4 * block as usize;
        let data: Vec<u8> = (0..3 * part_len).map(|i| (i * 7 % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, &data).unwrap();
        let store = MemoryStore::new(
            "resume-by-blocks",
            "",
            MemoryOptions::default(),
            &crate::retry::RetryPolicy::default(),
        );
        let dyn_store: &dyn ObjectStore = &store;
        assert!(!dyn_store.need_staged().unwrap().resumes_by_blake3());
        let (upload, state) = left_by_a_killed_run(&store, &data, part_len, block).await;

        let kept = resume(&store, &upload, &state, &path, Some(block))
            .await
            .unwrap();
        assert_eq!(kept.len(), 3);
        for (i, part) in kept.iter().enumerate() {
            let at = i * part_len;
            let fresh = sign_blocks(&data[at..at + part_len], at as u64, block);
            assert_eq!(part.signed.as_ref().unwrap().digest(), fresh.digest());
        }

        // A byte changed in place (same size, the mtime put back): that
        // part goes again, the others stay.
        let mut edited = data.clone();
        edited[part_len + 5] ^= 1;
        std::fs::write(&path, &edited).unwrap();
        let kept = resume(&store, &upload, &state, &path, Some(block))
            .await
            .unwrap();
        let numbers: Vec<u32> = kept.iter().map(|p| p.part.number).collect();
        assert_eq!(numbers, [1, 3]);

        // Without a signature there is nothing to check a blocks digest by.
        let kept = resume(&store, &upload, &state, &path, None).await.unwrap();
        assert!(kept.is_empty());
    }
}
