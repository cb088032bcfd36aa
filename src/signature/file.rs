//! The `.hssig` sidecar format (docs/hssig-format.md has the byte-by-byte layout).
//!
//! Reading never trusts a length field: every count is checked against the bytes
//! actually present before anything is allocated, and a trailing blake3 over the
//! whole file catches corruption.

use super::{BlockChecksum, BlockRun, Signature, valid_block_size};

pub const MAGIC: [u8; 8] = *b"HSSIG\r\n\x1a";
/// Version 2: strong hashes built from blake3 subtrees (docs/hssig-format.md).
pub const VERSION: u16 = 2;
/// Longest ETag stored (S3's are 34–~50 bytes; GCS generations and Azure ETags
/// are shorter still).
pub const MAX_ETAG_LEN: usize = 1024;
const FIXED_HEADER: usize = 74;
pub const BLOCK_RECORD: usize = 36;
/// A run of a placed signature: count (u32), place (u64), hash offset (u64).
const RUN_RECORD: usize = 20;
/// Flag: the blocks are placed by runs (a signature carried over a delta).
const FLAG_PLACED: u16 = 1;
const TRAILER: usize = 32;
const UNKNOWN_MTIME: i64 = i64::MIN;

/// What the signature was computed from, to tell a fresh sidecar from a stale one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceIdentity {
    /// The object's ETag (or generation) when the signature describes a remote object.
    pub etag: Option<String>,
    /// The file's mtime when it describes a local file.
    pub mtime_ns: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureFileError {
    #[error("signature file too short ({len} bytes)")]
    TooShort { len: usize },
    #[error("not a HugeSync signature (bad magic)")]
    BadMagic,
    #[error("signature format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u16),
    #[error("signature uses unknown flags {0:#06x}")]
    UnknownFlags(u16),
    #[error("signature block size {0} is not {rule}", rule = super::BLOCK_SIZE_RULE)]
    BadBlockSize(u32),
    #[error("signature claims {found} blocks but a file of its size has {expected}")]
    CountMismatch { expected: u64, found: u64 },
    #[error("signature ETag field is {0} bytes, more than the {MAX_ETAG_LEN} allowed")]
    EtagTooLong(usize),
    #[error("signature ETag is not UTF-8")]
    EtagNotUtf8,
    #[error("signature file is {actual} bytes, its header says {expected}")]
    LengthMismatch { expected: u64, actual: u64 },
    #[error("signature file is corrupt (checksum mismatch)")]
    ChecksumMismatch,
    #[error("signature block runs do not account for its blocks within the file")]
    BadRuns,
}

/// The ETag bytes as written (cut to [`MAX_ETAG_LEN`]).
fn etag_bytes(identity: &SourceIdentity) -> &[u8] {
    let etag = identity.etag.as_deref().unwrap_or("").as_bytes();
    &etag[..etag.len().min(MAX_ETAG_LEN)]
}

/// Where the block table starts in the serialized signature: block `i`'s
/// record is the [`BLOCK_RECORD`] bytes at `table_offset + i × BLOCK_RECORD`.
pub fn table_offset(sig: &Signature, identity: &SourceIdentity) -> usize {
    let runs = if sig.is_placed() {
        4 + sig.runs.len() * RUN_RECORD
    } else {
        0
    };
    FIXED_HEADER + etag_bytes(identity).len() + runs
}

/// Serializes a signature with the identity of what it describes.
pub fn write_signature(sig: &Signature, identity: &SourceIdentity) -> Vec<u8> {
    let etag = etag_bytes(identity);
    let table = table_offset(sig, identity);
    let mut out = Vec::with_capacity(table + sig.blocks.len() * BLOCK_RECORD + TRAILER);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let flags = if sig.is_placed() { FLAG_PLACED } else { 0 };
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&sig.block_size.to_le_bytes());
    out.extend_from_slice(&sig.file_size.to_le_bytes());
    out.extend_from_slice(&(sig.blocks.len() as u64).to_le_bytes());
    out.extend_from_slice(&sig.file_hash);
    out.extend_from_slice(&identity.mtime_ns.unwrap_or(UNKNOWN_MTIME).to_le_bytes());
    out.extend_from_slice(&(etag.len() as u16).to_le_bytes());
    out.extend_from_slice(etag);
    if sig.is_placed() {
        out.extend_from_slice(&(sig.runs.len() as u32).to_le_bytes());
        for run in &sig.runs {
            out.extend_from_slice(&run.count.to_le_bytes());
            out.extend_from_slice(&run.at.to_le_bytes());
            out.extend_from_slice(&run.hashed_at.to_le_bytes());
        }
    }
    debug_assert_eq!(out.len(), table);
    for block in &sig.blocks {
        out.extend_from_slice(&block.weak.to_le_bytes());
        out.extend_from_slice(&block.strong);
    }
    let trailer = blake3::hash(&out);
    out.extend_from_slice(trailer.as_bytes());
    out
}

/// Parses and validates a `.hssig` file.
pub fn read_signature(bytes: &[u8]) -> Result<(Signature, SourceIdentity), SignatureFileError> {
    use SignatureFileError as E;
    if bytes.len() < FIXED_HEADER + TRAILER {
        return Err(E::TooShort { len: bytes.len() });
    }
    if bytes[..8] != MAGIC {
        return Err(E::BadMagic);
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(array(&bytes[at..at + 4]));
    let u64_at = |at: usize| u64::from_le_bytes(array(&bytes[at..at + 8]));
    let version = u16_at(8);
    if version != VERSION {
        return Err(E::UnsupportedVersion(version));
    }
    let flags = u16_at(10);
    if flags & !FLAG_PLACED != 0 {
        return Err(E::UnknownFlags(flags));
    }
    let placed = flags & FLAG_PLACED != 0;
    let block_size = u32_at(12);
    if valid_block_size(u64::from(block_size)).is_none() {
        return Err(E::BadBlockSize(block_size));
    }
    let file_size = u64_at(16);
    let count = u64_at(24);
    let expected_count = Signature::block_count(file_size, block_size);
    if !placed && count != expected_count {
        return Err(E::CountMismatch {
            expected: expected_count,
            found: count,
        });
    }
    let etag_len = usize::from(u16_at(72));
    if etag_len > MAX_ETAG_LEN {
        return Err(E::EtagTooLong(etag_len));
    }
    let runs_at = FIXED_HEADER + etag_len;
    let run_count = if placed {
        if bytes.len() < runs_at + 4 + TRAILER {
            return Err(E::TooShort { len: bytes.len() });
        }
        u64::from(u32_at(runs_at))
    } else {
        0
    };
    let runs_len = if placed {
        4 + run_count * RUN_RECORD as u64
    } else {
        0
    };
    let expected_len = count
        .checked_mul(BLOCK_RECORD as u64)
        .and_then(|blocks| blocks.checked_add(runs_len))
        .and_then(|blocks| blocks.checked_add((FIXED_HEADER + etag_len + TRAILER) as u64));
    if expected_len != Some(bytes.len() as u64) {
        return Err(E::LengthMismatch {
            expected: expected_len.unwrap_or(u64::MAX),
            actual: bytes.len() as u64,
        });
    }
    let body_end = bytes.len() - TRAILER;
    if blake3::hash(&bytes[..body_end]).as_bytes() != &bytes[body_end..] {
        return Err(E::ChecksumMismatch);
    }
    let etag = std::str::from_utf8(&bytes[FIXED_HEADER..FIXED_HEADER + etag_len])
        .map_err(|_| E::EtagNotUtf8)?;
    let mtime = i64::from_le_bytes(array(&bytes[64..72]));
    // The counts were checked against the bytes present: these allocations
    // are bounded by the input's length.
    let runs = if placed {
        bytes[runs_at + 4..runs_at + runs_len as usize]
            .chunks_exact(RUN_RECORD)
            .map(|record| BlockRun {
                count: u32::from_le_bytes(array(&record[..4])),
                at: u64::from_le_bytes(array(&record[4..12])),
                hashed_at: u64::from_le_bytes(array(&record[12..20])),
            })
            .collect()
    } else {
        Vec::new()
    };
    let blocks = bytes[runs_at + runs_len as usize..body_end]
        .chunks_exact(BLOCK_RECORD)
        .map(|record| BlockChecksum {
            weak: u32::from_le_bytes(array(&record[..4])),
            strong: array(&record[4..]),
        })
        .collect();
    let signature = Signature {
        block_size,
        file_size,
        blocks,
        file_hash: array(&bytes[32..64]),
        runs,
    };
    if placed && (signature.runs.is_empty() || !signature.runs_are_valid()) {
        return Err(E::BadRuns);
    }
    let identity = SourceIdentity {
        etag: (!etag.is_empty()).then(|| etag.to_string()),
        mtime_ns: (mtime != UNKNOWN_MTIME).then_some(mtime),
    };
    Ok((signature, identity))
}

/// A fixed-size array from a slice whose length the caller has checked.
fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&slice[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::signature_of_bytes;
    use crate::signature::{MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};
    use proptest::prelude::*;

    fn sample() -> (Signature, SourceIdentity, Vec<u8>) {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let sig = signature_of_bytes(&data, MIN_BLOCK_SIZE);
        let id = SourceIdentity {
            etag: Some("\"abc-3\"".into()),
            mtime_ns: Some(1_700_000_000_123_456_789),
        };
        let bytes = write_signature(&sig, &id);
        (sig, id, bytes)
    }

    #[test]
    fn round_trip() {
        let (sig, id, bytes) = sample();
        assert_eq!(read_signature(&bytes).unwrap(), (sig.clone(), id));
        let anonymous = write_signature(&sig, &SourceIdentity::default());
        assert_eq!(
            read_signature(&anonymous).unwrap().1,
            SourceIdentity::default()
        );
        let empty = signature_of_bytes(b"", MAX_BLOCK_SIZE);
        let bytes = write_signature(&empty, &SourceIdentity::default());
        assert_eq!(read_signature(&bytes).unwrap().0, empty);
    }

    #[test]
    fn every_corruption_is_rejected() {
        use SignatureFileError as E;
        let (_, _, good) = sample();
        let patched = |at: usize, value: &[u8]| {
            let mut b = good.clone();
            b[at..at + value.len()].copy_from_slice(value);
            b
        };
        assert_eq!(read_signature(&good[..50]), Err(E::TooShort { len: 50 }));
        assert_eq!(read_signature(&patched(0, b"X")), Err(E::BadMagic));
        assert_eq!(
            read_signature(&patched(8, &[9, 0])),
            Err(E::UnsupportedVersion(9))
        );
        assert_eq!(
            read_signature(&patched(10, &[2, 0])),
            Err(E::UnknownFlags(2))
        );
        assert_eq!(
            read_signature(&patched(12, &100u32.to_le_bytes())),
            Err(E::BadBlockSize(100))
        );
        assert!(matches!(
            read_signature(&patched(24, &u64::MAX.to_le_bytes())),
            Err(E::CountMismatch { .. })
        ));
        assert!(matches!(
            read_signature(&patched(16, &(u64::MAX - 5).to_le_bytes())),
            Err(E::CountMismatch { .. })
        ));
        assert_eq!(
            read_signature(&patched(72, &2000u16.to_le_bytes())),
            Err(E::EtagTooLong(2000))
        );
        assert!(matches!(
            read_signature(&good[..good.len() - 1]),
            Err(E::LengthMismatch { .. })
        ));
        let mut flipped = good.clone();
        flipped[100] ^= 1;
        assert_eq!(read_signature(&flipped), Err(E::ChecksumMismatch));
    }

    #[test]
    fn placed_signatures_round_trip_and_bad_runs_are_refused() {
        let data = crate::delta::compute::tests::noise(6 * 65536, 9);
        let mut new = data.clone();
        new.splice(70_000..70_000, [7u8; 3000]);
        let old = crate::signature::signature_of_bytes(&data, 65536);
        let delta = crate::delta::compute_delta(&new, &old);
        let carried = crate::delta::carry::carry(&old, &delta, &new, [5; 32]).signature;
        assert!(carried.is_placed());
        let identity = SourceIdentity {
            etag: Some("\"v2\"".into()),
            mtime_ns: None,
        };
        let bytes = write_signature(&carried, &identity);
        let table = table_offset(&carried, &identity);
        assert_eq!(
            bytes.len(),
            table + carried.blocks.len() * BLOCK_RECORD + TRAILER
        );
        assert_eq!(
            read_signature(&bytes),
            Ok((carried.clone(), identity.clone()))
        );
        // Runs that claim more of the file than there is are refused, even
        // under a valid trailer.
        let mut wild = carried.clone();
        wild.runs[0].at = wild.file_size;
        let bytes = write_signature(&wild, &identity);
        assert_eq!(read_signature(&bytes), Err(SignatureFileError::BadRuns));
        let mut odd = carried;
        odd.runs[0].hashed_at += 1;
        let bytes = write_signature(&odd, &identity);
        assert_eq!(read_signature(&bytes), Err(SignatureFileError::BadRuns));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes never panic and never allocate past their own length.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_signature(&bytes);
        }

        /// Arbitrary bytes behind a valid magic and version reach the deeper checks.
        #[test]
        fn arbitrary_headers_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&VERSION.to_le_bytes());
            bytes.extend_from_slice(&tail);
            let _ = read_signature(&bytes);
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any single flipped bit of a valid file is caught.
        #[test]
        fn bit_flips_are_caught(at in 0usize..1000, bit in 0u8..8) {
            let (_, _, good) = sample();
            let mut bad = good.clone();
            let at = at % bad.len();
            bad[at] ^= 1 << bit;
            prop_assert!(read_signature(&bad).is_err());
        }
    }
}
