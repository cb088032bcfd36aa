//! Downloaded bytes checked against the object's own checksum in the pass
//! that writes them: a CRC of each range as it lands, combined in order at
//! the end (CRCs combine; ranges arrive in any order). Only a CRC the store
//! computed itself counts: an MD5 from a listing may be no MD5 of the bytes
//! (S3's ETag under SSE-KMS, Azure's Content-MD5 as a client set it), and a
//! false alarm would refuse good files. A file that fails never takes its
//! name.

use std::sync::Mutex;

use crate::types::ContentSums;

use super::ItemError;

/// The checksum a download is checked by, with the value the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Crc64Nvme(u64),
    Crc32c(u32),
}

impl Expected {
    fn name(self) -> &'static str {
        match self {
            Expected::Crc64Nvme(_) => "CRC64NVME",
            Expected::Crc32c(_) => "CRC32C",
        }
    }
}

/// The CRCs of the ranges received so far, by offset.
#[derive(Default)]
struct Ranges {
    crcs: Vec<(u64, u64, u64)>,
}

/// The check of one download's bytes.
pub(super) struct ReceivedCheck {
    expected: Expected,
    ranges: Mutex<Ranges>,
}

impl ReceivedCheck {
    /// A check of bytes arriving in any order, by a CRC the store holds;
    /// `None` when it holds none.
    pub(super) fn by_crc(held: &ContentSums) -> Option<ReceivedCheck> {
        let expected = match (held.crc64nvme, held.crc32c) {
            (Some(crc), _) => Expected::Crc64Nvme(crc),
            (None, Some(crc)) => Expected::Crc32c(crc),
            (None, None) => return None,
        };
        Some(ReceivedCheck {
            expected,
            ranges: Mutex::default(),
        })
    }

    /// The sum of a range starting at `start`, fed its bytes in order.
    pub(super) fn range(&self, start: u64) -> RangeSum {
        let crc = match self.expected {
            Expected::Crc64Nvme(_) => RangeCrc::Crc64Nvme(Box::new(crc_fast::Digest::new(
                crc_fast::CrcAlgorithm::Crc64Nvme,
            ))),
            Expected::Crc32c(_) => RangeCrc::Crc32c(0),
        };
        RangeSum { start, len: 0, crc }
    }

    /// Records a range received whole.
    pub(super) fn record(&self, range: RangeSum) {
        let crc = match range.crc {
            RangeCrc::Crc64Nvme(digest) => digest.finalize(),
            RangeCrc::Crc32c(crc) => u64::from(crc),
        };
        let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        ranges.crcs.push((range.start, range.len, crc));
    }

    /// Takes `bytes` received whole for `offset`.
    #[cfg(test)]
    fn take(&self, offset: u64, bytes: &[u8]) {
        let mut range = self.range(offset);
        range.update(bytes);
        self.record(range);
    }

    /// Whether the `size` bytes taken are the object's: an error naming the
    /// checksum when they are not, or when some were not taken.
    pub(super) fn finish(self, size: u64) -> Result<&'static str, ItemError> {
        let name = self.expected.name();
        let damaged = Err(ItemError::Damaged { checksum: name });
        let alike = match self.expected {
            Expected::Crc64Nvme(want) => {
                combined(self.ranges, size, |whole, crc, len| {
                    crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Nvme, whole, crc, len)
                }) == Some(want)
            }
            Expected::Crc32c(want) => {
                combined(self.ranges, size, |whole, crc, len| {
                    u64::from(crc32c::crc32c_combine(
                        whole as u32,
                        crc as u32,
                        usize::try_from(len).unwrap_or(usize::MAX),
                    ))
                }) == Some(u64::from(want))
            }
        };
        if alike { Ok(name) } else { damaged }
    }
}

/// The CRC of one range, taken as its bytes arrive in order.
pub(super) struct RangeSum {
    start: u64,
    len: u64,
    crc: RangeCrc,
}

enum RangeCrc {
    Crc64Nvme(Box<crc_fast::Digest>),
    Crc32c(u32),
}

impl RangeSum {
    /// Takes the range's next bytes.
    pub(super) fn update(&mut self, bytes: &[u8]) {
        match &mut self.crc {
            RangeCrc::Crc64Nvme(digest) => digest.update(bytes),
            RangeCrc::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, bytes),
        }
        self.len += bytes.len() as u64;
    }
}

/// The CRC of `size` bytes from the ranges' CRCs, or `None` when the ranges
/// leave a gap, overlap or stop short.
fn combined(
    ranges: Mutex<Ranges>,
    size: u64,
    combine: impl Fn(u64, u64, u64) -> u64,
) -> Option<u64> {
    let mut crcs = ranges.into_inner().unwrap_or_else(|e| e.into_inner()).crcs;
    crcs.sort_unstable_by_key(|&(offset, ..)| offset);
    let mut end = 0;
    let mut whole: Option<u64> = None;
    for (offset, len, crc) in crcs {
        if offset != end {
            return None;
        }
        whole = Some(match whole {
            None => crc,
            Some(before) => combine(before, crc, len),
        });
        end += len;
    }
    if end != size {
        return None;
    }
    // No bytes: the CRC of nothing.
    Some(whole.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes() -> Vec<u8> {
        (0..1_000_003u32)
            .map(|i| ((i * 31) ^ (i >> 7)) as u8)
            .collect()
    }

    fn held(bytes: &[u8]) -> [ContentSums; 2] {
        [
            ContentSums {
                crc64nvme: Some(crate::storage::body::crc64nvme_of(bytes)),
                md5: Some([0; 16]),
                ..ContentSums::default()
            },
            ContentSums {
                crc32c: Some(crc32c::crc32c(bytes)),
                ..ContentSums::default()
            },
        ]
    }

    #[test]
    fn ranges_in_any_order_pass_by_the_objects_crc_and_fail_when_one_byte_differs() {
        let data = bytes();
        let size = data.len() as u64;
        for held in &held(&data) {
            let check = ReceivedCheck::by_crc(held).unwrap();
            for start in [600_000, 0, 250_000] {
                let end = match start {
                    0 => 250_000,
                    250_000 => 600_000,
                    _ => data.len(),
                };
                check.take(start as u64, &data[start..end]);
            }
            assert!(check.finish(size).is_ok());

            let mut damaged = data.clone();
            damaged[400_000] ^= 1;
            let check = ReceivedCheck::by_crc(held).unwrap();
            check.take(0, &damaged);
            assert!(matches!(check.finish(size), Err(ItemError::Damaged { .. })));
            // A range missing is no pass either.
            let check = ReceivedCheck::by_crc(held).unwrap();
            check.take(0, &data[..500_000]);
            assert!(check.finish(size).is_err());
        }
    }

    #[test]
    fn an_md5_alone_is_no_check() {
        let md5 = ContentSums {
            md5: Some(crate::storage::body::md5_of(b"bytes")),
            ..ContentSums::default()
        };
        assert!(ReceivedCheck::by_crc(&md5).is_none());
        assert!(ReceivedCheck::by_crc(&ContentSums::default()).is_none());
    }
}
