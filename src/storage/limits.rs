//! What each store can do and the limits it imposes, as data: the part
//! planner (`delta::coalesce`) plans within them, and
//! [`StoreLimits::check_parts`] refuses a part list before any request is made,
//! whatever a server would accept.

/// Checksums a store verifies or reports for bytes it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumKind {
    /// Content-MD5 checked on every body; single-part version tags are MD5s.
    Md5,
    /// CRC32C (GCS).
    Crc32c,
    /// CRC64NVME sent with each body and checked by the server (S3's
    /// `x-amz-checksum-crc64nvme`), which reports the object's whole.
    Crc64Nvme,
}

/// What a store can do and the limits it imposes, as data: the part planner
/// takes them, and [`StoreLimits::check_parts`] enforces them before a request
/// is made, whatever a server would accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Smallest staged part but the last (1: no floor).
    pub min_part: u64,
    /// Largest staged part (uploaded or copied).
    pub max_part: u64,
    /// Most parts in one object.
    pub max_parts: usize,
    /// Largest object sent with one request.
    pub max_single_put: u64,
    /// Largest object copied server-side with one request.
    pub max_single_copy: u64,
    /// What the store can reuse of existing objects server-side.
    pub stitching: Stitching,
    /// Keys per batched delete request.
    pub delete_batch: usize,
    /// Checksums the store verifies on upload and reports of what it holds
    /// (server-side copies are checked by these).
    pub checksums: &'static [ChecksumKind],
    /// The checksum sent with every body: the cheapest the server verifies
    /// (`None`: nothing is hashed for the store).
    pub body_checksum: Option<ChecksumKind>,
    /// Whether objects keep user metadata (the blake3 HugeSync records for
    /// `--checksum` and `check`); an SSH server's files keep only mode and
    /// times, so nothing is hashed for it.
    pub keeps_metadata: bool,
    /// Whether a range of any length is copied server-side for no more than
    /// a round trip (an SSH server's `copy-data`): a sidecar is then updated
    /// by copying its unchanged records instead of being sent whole.
    pub cheap_range_copies: bool,
    /// How a range copied server-side is checked against the local bytes it
    /// stands for, before the rebuilt object is committed.
    pub rebuild_check: RebuildCheck,
}

/// How far a server-side rebuild can be verified on a store: a plan with
/// delta uploads says it, so nobody takes a weaker check for a stronger one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildCheck {
    /// The copy request carries the local bytes' checksum and the store
    /// refuses a range that differs (Azure Put Block From URL).
    StoreRefusesMismatch,
    /// The store returns the copied range's checksum, compared with the local
    /// bytes' before committing (S3 UploadPartCopy's MD5 ETag).
    ComparedBeforeCommit,
    /// Only a whole old object is reused (an append), after its checksum is
    /// compared with the local bytes it stands for (GCS compose).
    WholeObjectCompared,
    /// Unchanged chunks of the object, kept as objects of their own, are
    /// reused whole after their MD5 and CRC32C are compared with the file's
    /// bytes there (GCS chunked objects).
    ChunksCompared,
    /// Nothing checks a copied range; only the rebuilt object's size is
    /// (an SSH server without hash commands, with `--unverified-rebuilds`).
    SizeOnly,
    /// The rebuilt file is hashed on the server (`b3sum` over SSH) and
    /// compared with the local file's hash before it takes its name.
    ServerB3sum,
    /// The same with `sha256sum`, where the server has no `b3sum`.
    ServerSha256sum,
    /// The server runs no hash command: every range to be copied
    /// server-side is first read back and compared with the local bytes.
    ReadBack,
    /// Downloads: a file rebuilt from local blocks is compared with the
    /// object's own checksum (else the blake3 in its metadata) before it
    /// replaces the local file.
    StoreChecksum,
    /// Downloads from a server that runs no hash command: files come whole.
    DownloadWhole,
    /// Downloads checked against the sidecar's own hash alone
    /// (`--unverified-rebuilds`).
    SidecarOnly,
}

impl RebuildCheck {
    pub fn describe(self) -> &'static str {
        match self {
            RebuildCheck::StoreRefusesMismatch => {
                "every range copied server-side carries the MD5 of the local bytes; the store refuses one that differs"
            }
            RebuildCheck::ComparedBeforeCommit => {
                "every range copied server-side is compared (MD5) with the local bytes before the object is committed (not under SSE-KMS or SSE-C, which the summary reports)"
            }
            RebuildCheck::WholeObjectCompared => {
                "the old object is reused only whole, when the file grew by appending, after its CRC32C is compared with the file's first bytes"
            }
            RebuildCheck::ChunksCompared => {
                "unchanged chunks are reused only after their MD5 and CRC32C are compared with the file's bytes; chunked objects keep the data twice (object and chunks)"
            }
            RebuildCheck::SizeOnly => {
                "ranges copied server-side are not checked (--unverified-rebuilds: the server runs no hash command); only the rebuilt file's size is verified"
            }
            RebuildCheck::ServerB3sum => {
                "every file rebuilt by delta is hashed on the server (b3sum over SSH) and compared with the local file's blake3 before it takes its name; a mismatch sends it whole"
            }
            RebuildCheck::ServerSha256sum => {
                "every file rebuilt by delta is hashed on the server (sha256sum over SSH) and compared with the local file's SHA-256 before it takes its name; a mismatch sends it whole"
            }
            RebuildCheck::ReadBack => {
                "the server runs no hash command (b3sum, sha256sum): every range to be copied server-side is read back first and compared with the local bytes; a mismatch sends the file whole"
            }
            RebuildCheck::StoreChecksum => {
                "every file rebuilt from local blocks is compared with the object's own checksum (CRC64NVME, CRC32C, MD5, else the blake3 in its metadata) before it replaces the local file; a mismatch downloads it whole"
            }
            RebuildCheck::DownloadWhole => {
                "the server runs no hash command (b3sum, sha256sum) that could check a file rebuilt from local blocks: changed files are downloaded whole (--unverified-rebuilds trusts the sidecar)"
            }
            RebuildCheck::SidecarOnly => {
                "files rebuilt from local blocks are checked against the sidecar's blake3 alone (--unverified-rebuilds)"
            }
        }
    }
}

/// What a store can build a new object from, server-side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stitching {
    /// Byte ranges of existing objects (S3 UploadPartCopy, Azure Put Block
    /// From URL): a delta reuses the unchanged ranges of the old object.
    Ranges,
    /// Whole objects only, up to `sources` of them per call (GCS compose):
    /// an append reuses the old object; an edit inside it reuses nothing.
    WholeObjects { sources: usize },
}

/// A part list our code refuses before the store sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    #[error("{count} parts exceed the store's limit of {max}")]
    TooManyParts { count: usize, max: usize },
    #[error("part {number} is {len} bytes, over the store's limit of {max}")]
    PartTooLarge { number: usize, len: u64, max: u64 },
    #[error(
        "part {number} is {len} bytes, under the store's floor of {min} (only the last may be)"
    )]
    PartTooSmall { number: usize, len: u64, min: u64 },
    #[error("part {number} is empty")]
    EmptyPart { number: usize },
    #[error(
        "part {number} copies bytes {start}..{end} of a {source_size}-byte object: past its end"
    )]
    CopyPastEnd {
        number: usize,
        start: u64,
        end: u64,
        source_size: u64,
    },
    #[error("this store cannot copy a byte range of an object server-side, only whole objects")]
    NoRangeCopy,
}

/// A part as planned, for [`StoreLimits::check_parts`]: its length, and for a
/// server-side copy the range's start in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedPart {
    pub len: u64,
    pub copy_from: Option<u64>,
}

impl StoreLimits {
    /// Whether the store verifies `kind` on what it is sent: the checksum is
    /// computed only then.
    pub fn checks(&self, kind: ChecksumKind) -> bool {
        self.checksums.contains(&kind)
    }

    /// Whether a byte range of an existing object can be staged server-side.
    pub fn range_copy(&self) -> bool {
        self.stitching == Stitching::Ranges
    }

    /// The limits the part planner works within.
    pub fn part_limits(&self) -> crate::delta::PartLimits {
        crate::delta::PartLimits {
            min_part: self.min_part.max(1),
            max_part: self.max_part,
            max_parts: self.max_parts,
        }
    }

    /// Refuses a part list the store must not be asked to commit: too many
    /// parts, parts outside the size bounds, copies past the source's end (some
    /// servers truncate those silently, or accept one part too many).
    pub fn check_parts(&self, parts: &[PlannedPart], source_size: u64) -> Result<(), LimitError> {
        if parts.len() > self.max_parts {
            return Err(LimitError::TooManyParts {
                count: parts.len(),
                max: self.max_parts,
            });
        }
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            let number = i + 1;
            if part.len == 0 {
                return Err(LimitError::EmptyPart { number });
            }
            if part.len > self.max_part {
                return Err(LimitError::PartTooLarge {
                    number,
                    len: part.len,
                    max: self.max_part,
                });
            }
            if i != last && part.len < self.min_part {
                return Err(LimitError::PartTooSmall {
                    number,
                    len: part.len,
                    min: self.min_part,
                });
            }
            if let Some(start) = part.copy_from {
                // A store of whole objects reuses only a source as it is.
                let whole = start == 0 && part.len == source_size;
                if !self.range_copy() && !whole {
                    return Err(LimitError::NoRangeCopy);
                }
                let end = start.saturating_add(part.len);
                if end > source_size {
                    return Err(LimitError::CopyPastEnd {
                        number,
                        start,
                        end,
                        source_size,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: StoreLimits = StoreLimits {
        min_part: 5,
        max_part: 100,
        max_parts: 3,
        max_single_put: 100,
        max_single_copy: 100,
        stitching: Stitching::Ranges,
        delete_batch: 10,
        checksums: &[],
        body_checksum: None,
        keeps_metadata: false,
        cheap_range_copies: false,
        rebuild_check: RebuildCheck::SizeOnly,
    };

    fn upload(len: u64) -> PlannedPart {
        PlannedPart {
            len,
            copy_from: None,
        }
    }

    #[test]
    fn part_lists_within_the_limits_pass() {
        assert_eq!(
            LIMITS.check_parts(&[upload(5), upload(100), upload(1)], 0),
            Ok(())
        );
        let copy = PlannedPart {
            len: 10,
            copy_from: Some(90),
        };
        assert_eq!(LIMITS.check_parts(&[copy, upload(1)], 100), Ok(()));
    }

    #[test]
    fn limits_are_enforced_whatever_a_server_accepts() {
        assert!(matches!(
            LIMITS.check_parts(&[upload(5); 4], 0),
            Err(LimitError::TooManyParts { count: 4, max: 3 })
        ));
        assert!(matches!(
            LIMITS.check_parts(&[upload(101)], 0),
            Err(LimitError::PartTooLarge { number: 1, .. })
        ));
        assert!(matches!(
            LIMITS.check_parts(&[upload(4), upload(5)], 0),
            Err(LimitError::PartTooSmall { number: 1, .. })
        ));
        // A copy range running past the end of the source is refused, not
        // truncated (azurite and moto truncate it).
        let past_end = PlannedPart {
            len: 20,
            copy_from: Some(90),
        };
        assert!(matches!(
            LIMITS.check_parts(&[past_end], 100),
            Err(LimitError::CopyPastEnd { end: 110, .. })
        ));
        let no_ranges = StoreLimits {
            stitching: Stitching::WholeObjects { sources: 32 },
            ..LIMITS
        };
        let copy = PlannedPart {
            len: 10,
            copy_from: Some(0),
        };
        assert_eq!(
            no_ranges.check_parts(&[copy], 100),
            Err(LimitError::NoRangeCopy)
        );
        // …but the whole source, as it is (an append's old content), is.
        let whole = PlannedPart {
            len: 100,
            copy_from: Some(0),
        };
        assert_eq!(no_ranges.check_parts(&[whole, upload(5)], 100), Ok(()));
    }
}
