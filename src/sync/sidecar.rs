//! Signature sidecars on object stores: `KEY.hssig` describes the object `KEY`
//! as it was when signed. A sidecar is used only when it is fresh — its recorded
//! ETag and size are the object's now — so it never describes other bytes.

use crate::signature::{
    MIN_BLOCK_SIZE, Signature, SourceIdentity, read_signature, write_signature,
};
use crate::storage::body::{BodySource, BodySums};
use crate::storage::object::CopySource;
use crate::storage::objects::{SmallObject, read_small};
use crate::storage::sidecars::SidecarLayout;
use crate::storage::{Expect, ObjectMeta, ObjectStore, RemoteErrorKind, StorageError};
use crate::types::{Entry, RelPath};

/// What the sidecar of an object says about it.
#[derive(Debug)]
pub enum Sidecar {
    /// It describes the object as it is, whose ETag this is; where its
    /// block records lie, for a writer that copies them.
    Fresh(Signature, String, crate::sync::sidecar_update::OldSidecar),
    Missing,
    /// It describes another version of the object.
    Stale,
    /// It cannot be read as a signature.
    Corrupt(String),
}

impl Sidecar {
    /// Why a delta cannot use this sidecar, for the plan's note; `instead` says
    /// what happens instead ("sent whole", "fetched whole").
    pub fn unusable_reason(&self, instead: &str) -> Option<String> {
        match self {
            Sidecar::Fresh(..) => None,
            Sidecar::Missing => Some(format!("no signature sidecar yet: {instead}")),
            Sidecar::Stale => Some(format!(
                "the signature sidecar describes another version of the object: {instead}"
            )),
            Sidecar::Corrupt(why) => Some(format!(
                "the signature sidecar is unreadable ({why}): {instead}"
            )),
        }
    }
}

/// Largest sidecar an object of `size` bytes can have (smallest blocks, longest
/// ETag, a run per block): a longer one is corrupt, and is never read whole
/// into memory.
fn max_sidecar_len(size: u64) -> u64 {
    let blocks = size.div_ceil(u64::from(MIN_BLOCK_SIZE));
    74 + 1024 + 4 + (36 + 20) * blocks + 32
}

/// The blake3 of an object's content as HugeSync recorded it: in its
/// metadata (`head`, what a HEAD said), else in its fresh sidecar (one small
/// GET). `None` when neither holds one.
pub async fn recorded_blake3(
    store: &dyn ObjectStore,
    path: &RelPath,
    object: &Entry,
    head: &crate::storage::object::ObjectHead,
) -> Result<Option<[u8; 32]>, StorageError> {
    let listed = head
        .meta
        .blake3
        .as_deref()
        .and_then(crate::types::ContentSums::blake3_of_hex);
    if listed.is_some() {
        return Ok(listed);
    }
    // A sidecar describing another version (or none at all) says nothing.
    Ok(match fetch(store, path, object).await? {
        Sidecar::Fresh(signature, ..) => Some(signature.file_hash),
        _ => None,
    })
}

/// Fetches and checks the sidecar of `path`, whose object the listing (or a
/// HEAD) described as `object`, where the listing found it.
pub async fn fetch(
    store: &dyn ObjectStore,
    path: &RelPath,
    object: &Entry,
) -> Result<Sidecar, StorageError> {
    // Where the listing found it: the store's layout, or the one it keeps
    // no longer (until the run moves it).
    let layout = object.sidecar_in().unwrap_or(store.info().sidecars);
    let key = store.sidecar_key_in(path, layout);
    let limit = max_sidecar_len(object.size);
    let bytes = match read_small(store, &key, limit).await? {
        SmallObject::Bytes(bytes) => bytes,
        SmallObject::Missing => return Ok(Sidecar::Missing),
        SmallObject::TooLarge => {
            return Ok(Sidecar::Corrupt(format!(
                "longer than a signature of a {}-byte object can be",
                object.size
            )));
        }
    };
    let (signature, identity) = match read_signature(&bytes) {
        Ok(read) => read,
        Err(e) => return Ok(Sidecar::Corrupt(e.to_string())),
    };
    let layout = crate::sync::sidecar_update::OldSidecar {
        table_offset: crate::signature::table_offset(&signature, &identity),
        len: bytes.len() as u64,
        layout,
    };
    // Some S3-compatible stores list objects without ETags: then a HEAD says.
    let current = match object.etag() {
        Some(etag) => Some(etag.to_string()),
        None => store
            .head(&store.key_of(path))
            .await?
            .filter(|head| head.size == object.size)
            .and_then(|head| head.version),
    };
    Ok(match (identity.etag, current) {
        (Some(recorded), Some(current))
            if crate::storage::same_version(&recorded, &current)
                && signature.file_size == object.size =>
        {
            Sidecar::Fresh(signature, current, layout)
        }
        _ => Sidecar::Stale,
    })
}

/// Writes the sidecar of `path` for the object version `etag`.
pub async fn store(
    store: &dyn ObjectStore,
    path: &RelPath,
    signature: &Signature,
    etag: &str,
) -> Result<(), StorageError> {
    let identity = SourceIdentity {
        etag: Some(etag.to_string()),
        mtime_ns: None,
    };
    let bytes = bytes::Bytes::from(write_signature(signature, &identity));
    let sums = BodySums::of(&bytes, store.limits().body_checksum);
    store
        .put(
            &store.sidecar_key_of(path),
            BodySource::Memory(&bytes),
            bytes.len() as u64,
            &ObjectMeta::default(),
            sums,
            Expect::Any,
        )
        .await?;
    Ok(())
}

/// Moves the sidecar of `path` from `from`, a layout the store no longer
/// keeps sidecars in, to where it keeps them now: copied server-side, then
/// the old one removed. A sidecar gone since it was listed has nothing to
/// move; one already where sidecars are kept now (written by a run with the
/// layout in use, or left by a move whose delete failed) is kept, and only
/// the old one goes. What either describes is not trusted here: every read
/// checks a sidecar against the object's version.
pub async fn relocate(
    store: &dyn ObjectStore,
    path: &RelPath,
    from: SidecarLayout,
) -> Result<(), StorageError> {
    let Some(old) = misplaced_key(store, path, from) else {
        return Ok(());
    };
    let new = store.sidecar_key_of(path);
    if store.head(&new).await?.is_some() {
        return store.delete_keys(&[old]).await;
    }
    let source = CopySource {
        store,
        key: &old,
        version: None,
    };
    match store.copy_object(source, &new, None, Expect::Any).await {
        Ok(_) => {}
        Err(StorageError::Remote {
            kind: RemoteErrorKind::NotFound,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    }
    store.delete_keys(&[old]).await
}

/// Removes the sidecar of `path` left in `from`, a layout the store no
/// longer keeps sidecars in, once the object was written anew (its new
/// sidecar, if it has one, is where the store keeps them now).
pub async fn remove_misplaced(
    store: &dyn ObjectStore,
    path: &RelPath,
    from: SidecarLayout,
) -> Result<(), StorageError> {
    match misplaced_key(store, path, from) {
        Some(old) => store.delete_keys(&[old]).await,
        None => Ok(()),
    }
}

/// The key of the sidecar of `path` in `from`, unless that is where the
/// store keeps sidecars now (nothing is then misplaced).
fn misplaced_key(store: &dyn ObjectStore, path: &RelPath, from: SidecarLayout) -> Option<String> {
    (from != store.info().sidecars).then(|| store.sidecar_key_in(path, from))
}
