//! Resume state of multipart uploads: what a killed or interrupted run had
//! already uploaded, so the next run of the same sync sends only the rest.
//!
//! One JSON file per upload under `$XDG_CACHE_HOME/hugesync/uploads/`
//! (`~/.cache/hugesync/uploads/<hash>.json`), named by a hash of what the
//! upload is for (endpoint, bucket, key, local file). It holds the upload id,
//! the part plan (part size and block size), the local file's size and mtime
//! when the upload began, and every completed part with its ETag and the
//! blake3 of the file range it was read from. It is rewritten atomically (temp
//! file + rename) after each part, and removed when the upload completes or is
//! abandoned. A state file that cannot be read, is of another version, or
//! describes another upload is ignored with a warning, never trusted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bumped when the layout changes; other versions are ignored.
pub const STATE_VERSION: u32 = 1;

/// Largest state file read (10,000 parts of ~200 bytes fit many times over).
const MAX_STATE_LEN: u64 = 16 * 1024 * 1024;

/// What an upload is for: the same four values find the same state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTarget {
    /// The store's URL scheme (`s3`, `az`); state written before there was
    /// more than one store is S3's.
    #[serde(default = "s3_scheme")]
    pub scheme: String,
    /// The endpoint URL, or the provider's name for its default.
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    /// The local file, as an absolute path.
    pub source: PathBuf,
}

fn s3_scheme() -> String {
    "s3".into()
}

/// One part on the server, and the file range it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    pub number: u32,
    pub offset: u64,
    pub len: u64,
    pub etag: String,
    /// A digest of the file's bytes `offset..offset + len`, hex: their blake3,
    /// or by `digest` the blake3 of their signed blocks' hashes.
    pub blake3: String,
    /// What `blake3` is a digest of (state written before there was a choice:
    /// the bytes).
    #[serde(default, skip_serializing_if = "PartDigest::is_bytes")]
    pub digest: PartDigest,
}

/// What a journaled part's digest was taken over. A signed part's blocks'
/// hashes come with the signature that is computed anyway; the bytes' own
/// blake3 is an extra pass, taken only for a store that checks a resumed part
/// by it (an SSH server's `b3sum`). Either tells a file changed in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartDigest {
    /// blake3 of the bytes.
    #[default]
    Bytes,
    /// blake3 over the offset and each signed block's (offset-bound) hash:
    /// `SignedBlocks::digest`.
    Blocks,
}

impl PartDigest {
    fn is_bytes(&self) -> bool {
        *self == PartDigest::Bytes
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub version: u32,
    pub target: UploadTarget,
    pub upload_id: String,
    /// The local file when the upload began: a file that changed since
    /// invalidates the state.
    pub size: u64,
    pub mtime_ns: i64,
    pub part_size: u64,
    /// Block size the parts were signed with, for uploads that write a sidecar.
    pub block_size: Option<u32>,
    /// Completed parts, in completion order.
    pub parts: Vec<DonePart>,
    /// When the upload began (ns since the epoch), for `hugesync uploads`.
    pub started_ns: i64,
}

/// Why a state file was not used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read resume state {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ignoring resume state {}: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error("cannot write resume state {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The directory of state files.
#[derive(Clone, Debug)]
pub struct ResumeStore {
    dir: PathBuf,
}

impl ResumeStore {
    pub fn new(dir: PathBuf) -> Self {
        ResumeStore { dir }
    }

    /// `$XDG_CACHE_HOME/hugesync/uploads` (`~/.cache/hugesync/uploads`), or
    /// `None` without a home directory (uploads then simply do not resume).
    pub fn default_location() -> Option<ResumeStore> {
        use etcetera::BaseStrategy;
        let base = etcetera::choose_base_strategy().ok()?;
        Some(ResumeStore::new(
            base.cache_dir().join("hugesync").join("uploads"),
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of an upload target.
    pub fn path_of(&self, target: &UploadTarget) -> PathBuf {
        let mut hasher = blake3::Hasher::new();
        for field in [
            target.endpoint.as_bytes(),
            target.bucket.as_bytes(),
            target.key.as_bytes(),
            target.source.as_os_str().as_encoded_bytes(),
        ] {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field);
        }
        let name = hasher.finalize().to_hex();
        self.dir.join(format!("{}.json", &name[..32]))
    }

    /// The state for `target`: `Ok(None)` when there is none, an error (to
    /// warn about, then ignore) when there is one that cannot be used.
    pub fn load(&self, target: &UploadTarget) -> Result<Option<UploadState>, StateError> {
        let path = self.path_of(target);
        let state = match read_state(&path) {
            Ok(state) => state,
            Err(StateError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if state.target != *target {
            return Err(StateError::Unusable {
                path,
                reason: format!(
                    "it describes another upload ({}://{}/{} from {})",
                    state.target.scheme,
                    state.target.bucket,
                    state.target.key,
                    state.target.source.display()
                ),
            });
        }
        Ok(Some(state))
    }

    /// Writes `state` atomically: readers see the old file or the new one.
    pub fn save(&self, state: &UploadState) -> Result<(), StateError> {
        let path = self.path_of(&state.target);
        let write_error = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(write_error)?;
        let json = serde_json::to_vec(state).map_err(|e| write_error(std::io::Error::other(e)))?;
        crate::outfile::write_private(&path, write_error, |out| {
            std::io::Write::write_all(out, &json).map_err(write_error)
        })
    }

    /// Forgets an upload (completed or abandoned). Missing is fine.
    pub fn remove(&self, target: &UploadTarget) {
        let _ = std::fs::remove_file(self.path_of(target));
    }

    /// Every state file, read or not, for `hugesync uploads`.
    pub fn all(&self) -> Vec<(PathBuf, Result<UploadState, StateError>)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut states: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|path| {
                let state = read_state(&path);
                (path, state)
            })
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// Removes a state file by path (for `hugesync uploads --abort`).
    pub fn remove_file(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }
}

fn read_state(path: &Path) -> Result<UploadState, StateError> {
    let unusable = |reason: String| StateError::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let read_error = |source| StateError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_STATE_LEN {
        return Err(unusable(format!("{len} bytes is not a resume state")));
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let state: UploadState = serde_json::from_slice(&bytes)
        .map_err(|e| unusable(format!("not a resume state ({e})")))?;
    if state.version != STATE_VERSION {
        return Err(unusable(format!(
            "format version {} (this HugeSync reads {STATE_VERSION})",
            state.version
        )));
    }
    let in_file = |p: &DonePart| {
        p.offset
            .checked_add(p.len)
            .is_some_and(|end| end <= state.size)
    };
    if state.part_size == 0 || !state.parts.iter().all(in_file) {
        return Err(unusable("its parts do not fit the file it names".into()));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(key: &str) -> UploadTarget {
        UploadTarget {
            scheme: "s3".into(),
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "b".into(),
            key: key.into(),
            source: "/data/big.bin".into(),
        }
    }

    fn state(key: &str) -> UploadState {
        UploadState {
            version: STATE_VERSION,
            target: target(key),
            upload_id: "u-1".into(),
            size: 100 << 20,
            mtime_ns: 1_700_000_000_000_000_000,
            part_size: 16 << 20,
            block_size: Some(5 << 20),
            parts: vec![DonePart {
                number: 1,
                offset: 0,
                len: 16 << 20,
                etag: "\"abc\"".into(),
                blake3: "00".repeat(32),
                digest: PartDigest::Blocks,
            }],
            started_ns: 1,
        }
    }

    #[test]
    fn round_trip_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResumeStore::new(dir.path().join("uploads"));
        assert!(store.load(&target("k")).unwrap().is_none());
        store.save(&state("k")).unwrap();
        assert_eq!(store.load(&target("k")).unwrap(), Some(state("k")));
        assert_eq!(store.all().len(), 1);
        store.remove(&target("k"));
        assert!(store.load(&target("k")).unwrap().is_none());
    }

    #[test]
    fn unusable_states_are_refused_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResumeStore::new(dir.path().to_path_buf());
        let path = store.path_of(&target("k"));
        let cases: Vec<Vec<u8>> = vec![
            b"{\"version\": 1, \"target\"".to_vec(),
            b"\x00\x01garbage".to_vec(),
            serde_json::to_vec(&UploadState {
                version: 99,
                ..state("k")
            })
            .unwrap(),
            serde_json::to_vec(&state("another key")).unwrap(),
            serde_json::to_vec(&UploadState {
                size: 1,
                ..state("k")
            })
            .unwrap(),
        ];
        for bytes in cases {
            std::fs::write(&path, &bytes).unwrap();
            let err = store.load(&target("k")).unwrap_err();
            assert!(
                matches!(err, StateError::Unusable { .. }),
                "{}: {err}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
