//! A file or object rebuilt by delta is checked against a checksum its
//! sidecar did not supply before it takes its final name: a sidecar can be
//! stale or forged, and a rebuild that trusted it alone would put the wrong
//! bytes in place with nothing said.

use crate::storage::{Direction, ObjectStore, RebuildCheck};
use crate::sync::check::local::{Wanted, sums_of};
use crate::types::ContentSums;

/// How a rebuild by delta between this machine and `store` is checked, the
/// user's `--unverified-rebuilds` taken into account: where the store has no
/// check of its own, the opt-in trusts the sidecar (no read-back, no whole
/// download).
pub(crate) async fn effective_check(
    store: &dyn ObjectStore,
    direction: Direction,
    unverified_rebuilds: bool,
) -> RebuildCheck {
    match store.rebuild_check(direction).await {
        RebuildCheck::ReadBack if unverified_rebuilds => RebuildCheck::SizeOnly,
        RebuildCheck::DownloadWhole if unverified_rebuilds => RebuildCheck::SidecarOnly,
        check => check,
    }
}

/// Which checksum [`compare`] will check bytes against, as a plan note
/// says it; `None` when `held` has none.
pub(crate) fn check_of(held: &ContentSums) -> Option<&'static str> {
    if held.crc64nvme.is_some() {
        Some("the object's CRC64NVME")
    } else if held.crc32c.is_some() {
        Some("the object's CRC32C")
    } else if held.sha256.is_some() {
        Some("a SHA-256 computed on the server")
    } else if held.md5.is_some() {
        Some("the object's MD5")
    } else if held.multipart.is_some() {
        Some("the object's multipart ETag")
    } else if held.blake3.is_some() {
        Some("the blake3 in the object's metadata")
    } else {
        None
    }
}

/// What comparing rebuilt bytes with the store's checksums found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Equal by the named checksum.
    Alike(&'static str),
    /// Different by the named checksum.
    Differ(&'static str),
    /// The store holds no checksum to compare with.
    NoChecksum,
}

/// Compares `bytes` with the first checksum `held` has, in this order: the
/// store's CRC64NVME and CRC32C, a SHA-256 computed on the server, the
/// store's MD5, then blake3 (computed on the server, or recorded in the
/// object's metadata). An MD5 that differs yields to a blake3 when both are
/// held: an ETag is no MD5 under SSE-KMS. `blake3_of_bytes` is the bytes'
/// blake3 when the caller has it already.
pub(crate) fn compare(
    held: &ContentSums,
    bytes: &[u8],
    blake3_of_bytes: Option<[u8; 32]>,
) -> Verdict {
    let verdict = |alike: bool, name| {
        if alike {
            Verdict::Alike(name)
        } else {
            Verdict::Differ(name)
        }
    };
    let computed = |wanted: Wanted| sums_of(bytes, wanted);
    let blake3_verdict = |held_blake3: [u8; 32]| {
        let ours = blake3_of_bytes.or_else(|| {
            computed(Wanted {
                blake3: true,
                ..Wanted::default()
            })
            .blake3
        });
        verdict(ours == Some(held_blake3), "blake3")
    };
    if let Some(crc) = held.crc64nvme {
        let ours = computed(Wanted {
            crc64nvme: true,
            ..Wanted::default()
        });
        return verdict(ours.crc64nvme == Some(crc), "CRC64NVME");
    }
    if let Some(crc) = held.crc32c {
        let ours = computed(Wanted {
            crc32c: true,
            ..Wanted::default()
        });
        return verdict(ours.crc32c == Some(crc), "CRC32C");
    }
    if let Some(sha) = held.sha256 {
        let ours = computed(Wanted {
            sha256: true,
            ..Wanted::default()
        });
        return verdict(ours.sha256 == Some(sha), "SHA-256");
    }
    if let Some(md5) = held.md5 {
        let ours = computed(Wanted {
            md5: true,
            ..Wanted::default()
        });
        if ours.md5 == Some(md5) {
            return Verdict::Alike("MD5");
        }
        return match held.blake3 {
            Some(held_blake3) => blake3_verdict(held_blake3),
            None => Verdict::Differ("MD5"),
        };
    }
    if let Some(multipart) = held.multipart {
        // Computed as if every part but the last had the first's size: a
        // match proves the bytes; a miss may be another cut of the parts.
        match (multipart.of_bytes(bytes), held.blake3) {
            (Some(ours), _) if ours == multipart.md5_of_parts => {
                return Verdict::Alike("multipart ETag");
            }
            (_, Some(held_blake3)) => return blake3_verdict(held_blake3),
            (Some(_), None) => return Verdict::Differ("multipart ETag"),
            (None, None) => return Verdict::NoChecksum,
        }
    }
    match held.blake3 {
        Some(held_blake3) => blake3_verdict(held_blake3),
        None => Verdict::NoChecksum,
    }
}

/// Compares checksums a store computed of a staged object with the local
/// file's, kind by kind (those both hold).
pub(crate) fn compare_sums(held: &ContentSums, local: &ContentSums) -> Verdict {
    let same = |name, theirs: [u8; 32], ours: [u8; 32]| {
        if theirs == ours {
            Verdict::Alike(name)
        } else {
            Verdict::Differ(name)
        }
    };
    match (held.blake3, local.blake3, held.sha256, local.sha256) {
        (Some(theirs), Some(ours), ..) => same("blake3", theirs, ours),
        (.., Some(theirs), Some(ours)) => same("SHA-256", theirs, ours),
        _ => Verdict::NoChecksum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_for(bytes: &[u8], wanted: Wanted) -> ContentSums {
        sums_of(bytes, wanted)
    }

    #[test]
    fn each_kind_tells_alike_from_different() {
        let (good, bad) = (b"the object's bytes".as_slice(), b"a stale file".as_slice());
        for (wanted, name) in [
            (
                Wanted {
                    crc64nvme: true,
                    ..Wanted::default()
                },
                "CRC64NVME",
            ),
            (
                Wanted {
                    crc32c: true,
                    ..Wanted::default()
                },
                "CRC32C",
            ),
            (
                Wanted {
                    sha256: true,
                    ..Wanted::default()
                },
                "SHA-256",
            ),
            (
                Wanted {
                    md5: true,
                    ..Wanted::default()
                },
                "MD5",
            ),
            (
                Wanted {
                    blake3: true,
                    ..Wanted::default()
                },
                "blake3",
            ),
        ] {
            let held = held_for(good, wanted);
            assert_eq!(compare(&held, good, None), Verdict::Alike(name));
            assert_eq!(compare(&held, bad, None), Verdict::Differ(name));
        }
        assert_eq!(
            compare(&ContentSums::default(), good, None),
            Verdict::NoChecksum
        );
    }

    #[test]
    fn an_md5_that_is_no_md5_yields_to_the_recorded_blake3() {
        let bytes = b"encrypted with SSE-KMS";
        let held = ContentSums {
            md5: Some([7; 16]),
            blake3: Some(*blake3::hash(bytes).as_bytes()),
            ..ContentSums::default()
        };
        assert_eq!(compare(&held, bytes, None), Verdict::Alike("blake3"));
        assert_eq!(compare(&held, b"other", None), Verdict::Differ("blake3"));
    }

    #[test]
    fn a_multipart_etag_checks_bytes_cut_as_its_parts_were() {
        use md5::Digest;
        let bytes: Vec<u8> = (0..25u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut outer = md5::Md5::new();
        for chunk in bytes.chunks(40) {
            outer.update(md5::Md5::digest(chunk));
        }
        let held = ContentSums {
            multipart: Some(crate::types::MultipartEtag {
                md5_of_parts: outer.finalize().into(),
                parts: 3,
                first_part: 40,
            }),
            ..ContentSums::default()
        };
        assert_eq!(
            compare(&held, &bytes, None),
            Verdict::Alike("multipart ETag")
        );
        let mut other = bytes.clone();
        other[50] ^= 1;
        assert_eq!(
            compare(&held, &other, None),
            Verdict::Differ("multipart ETag")
        );
        // Bytes that cannot be cut into three such parts: nothing to say,
        // unless a blake3 is held.
        assert_eq!(compare(&held, &bytes[..60], None), Verdict::NoChecksum);
        let with_blake3 = ContentSums {
            blake3: Some(*blake3::hash(&bytes[..60]).as_bytes()),
            ..held
        };
        assert_eq!(
            compare(&with_blake3, &bytes[..60], None),
            Verdict::Alike("blake3")
        );
    }

    #[test]
    fn a_servers_hash_is_compared_kind_with_kind() {
        let local = ContentSums {
            blake3: Some([1; 32]),
            sha256: Some([2; 32]),
            ..ContentSums::default()
        };
        let b3 = |b| ContentSums {
            blake3: Some(b),
            ..ContentSums::default()
        };
        let sha = |b| ContentSums {
            sha256: Some(b),
            ..ContentSums::default()
        };
        assert_eq!(compare_sums(&b3([1; 32]), &local), Verdict::Alike("blake3"));
        assert_eq!(
            compare_sums(&b3([9; 32]), &local),
            Verdict::Differ("blake3")
        );
        assert_eq!(
            compare_sums(&sha([2; 32]), &local),
            Verdict::Alike("SHA-256")
        );
        assert_eq!(
            compare_sums(&sha([9; 32]), &local),
            Verdict::Differ("SHA-256")
        );
        assert_eq!(
            compare_sums(&ContentSums::default(), &local),
            Verdict::NoChecksum
        );
    }

    #[test]
    fn a_known_blake3_is_used_as_given() {
        let held = ContentSums {
            blake3: Some([1; 32]),
            ..ContentSums::default()
        };
        assert_eq!(
            compare(&held, b"x", Some([1; 32])),
            Verdict::Alike("blake3")
        );
    }
}
