//! The checksums of a local file that `check` compares with a store's: the
//! file is mapped once and every kind wanted is computed from those bytes.

use std::path::Path;

use md5::Digest;

use super::Evidence;
use crate::types::ContentSums;

/// Which checksums of one file are wanted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub blake3: bool,
    pub md5: bool,
    pub crc32c: bool,
    pub crc64nvme: bool,
    pub sha256: bool,
}

impl Wanted {
    pub fn of(kind: Evidence) -> Wanted {
        let mut wanted = Wanted::default();
        match kind {
            Evidence::Blake3 | Evidence::Bytes => wanted.blake3 = true,
            Evidence::Md5 => wanted.md5 = true,
            Evidence::Crc32c => wanted.crc32c = true,
            Evidence::Crc64nvme => wanted.crc64nvme = true,
            Evidence::SizeOnly => {}
        }
        wanted
    }
}

/// Below this a file is hashed on one thread: splitting it costs more than
/// it saves (and `check` hashes many files in parallel anyway).
const PARALLEL_HASH_FROM: usize = 4 << 20;

/// The wanted checksums of the file at `path`.
pub fn file_sums(path: &Path, wanted: Wanted) -> std::io::Result<ContentSums> {
    let file = std::fs::File::open(path)?;
    let map = crate::storage::local::map_readonly(&file)?;
    let sums = sums_of(&map, wanted);
    if map.faulted() {
        return Err(std::io::Error::other(
            "the file was truncated while it was read",
        ));
    }
    Ok(sums)
}

/// The wanted checksums of `bytes`.
pub fn sums_of(bytes: &[u8], wanted: Wanted) -> ContentSums {
    let mut sums = ContentSums::default();
    if wanted.blake3 {
        let mut hasher = blake3::Hasher::new();
        if bytes.len() >= PARALLEL_HASH_FROM {
            hasher.update_rayon(bytes);
        } else {
            hasher.update(bytes);
        }
        sums.blake3 = Some(*hasher.finalize().as_bytes());
    }
    if wanted.md5 {
        sums.md5 = Some(md5::Md5::digest(bytes).into());
    }
    if wanted.crc32c {
        sums.crc32c = Some(crc32c::crc32c(bytes));
    }
    if wanted.crc64nvme {
        sums.crc64nvme = Some(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes));
    }
    if wanted.sha256 {
        sums.sha256 = Some(sha2::Sha256::digest(bytes).into());
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_matches_its_reference_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"123456789").unwrap();
        let all = Wanted {
            blake3: true,
            md5: true,
            crc32c: true,
            crc64nvme: true,
            sha256: true,
        };
        let sums = file_sums(&path, all).unwrap();
        // The check values of the CRC catalogue, for "123456789".
        assert_eq!(sums.crc32c, Some(0xe306_9283));
        assert_eq!(sums.crc64nvme, Some(0xae8b_1486_0a79_9888));
        assert_eq!(
            hex::encode(sums.md5.unwrap()),
            "25f9e794323b453885f5181f1b624d0b"
        );
        assert_eq!(sums.blake3, Some(*blake3::hash(b"123456789").as_bytes()));
        assert_eq!(
            hex::encode(sums.sha256.unwrap()),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        let only_md5 = file_sums(&path, Wanted::of(Evidence::Md5)).unwrap();
        assert_eq!(only_md5.blake3, None);
        assert_eq!(only_md5.md5, sums.md5);
    }

    #[test]
    fn an_empty_file_has_checksums_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let sums = file_sums(&path, Wanted::of(Evidence::Md5)).unwrap();
        assert_eq!(
            hex::encode(sums.md5.unwrap()),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }
}
