//! Block ids and block lists: `STEM` + the part number, base64 — one length
//! for every block of a blob, as the service requires; the stem (a staged
//! upload's id) tells one upload's blocks from another's.

use base64::Engine;

use super::LIMITS;
use crate::storage::StorageError;
use crate::storage::object::StagedPart;

/// Length of a staged upload's block-id stem (hex).
const STEM_LEN: usize = 16;
/// Digits of the part number in a block id (up to 50,000 parts).
const NUMBER_DIGITS: usize = 6;

/// A fresh stem for a new staged upload.
pub(super) fn new_stem() -> String {
    format!("{:0width$x}", fastrand::u64(..), width = STEM_LEN)
}

/// The block id of part `number` of the upload with this stem.
pub(super) fn block_id(stem: &str, number: u32) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("{stem}{number:0width$}", width = NUMBER_DIGITS))
}

/// The stem and part number a block id was made from, if it is one of ours.
pub(super) fn parse_block_id(id: &str) -> Option<(String, u32)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(id).ok()?;
    let text = String::from_utf8(raw).ok()?;
    if text.len() != STEM_LEN + NUMBER_DIGITS {
        return None;
    }
    let (stem, number) = text.split_at(STEM_LEN);
    Some((stem.to_string(), number.parse().ok()?))
}

/// Refuses a block list the service must not be asked to commit (azurite
/// would accept some of these).
pub(super) fn check_block_list(parts: &[StagedPart], target: &str) -> Result<(), StorageError> {
    let refuse = |message: String| {
        Err(StorageError::Transfer {
            target: target.to_string(),
            message,
        })
    };
    if parts.len() > LIMITS.max_parts {
        return refuse(format!(
            "{} blocks exceed the 50,000 a blob may have",
            parts.len()
        ));
    }
    if let Some(first) = parts.first()
        && parts.iter().any(|p| p.tag.len() != first.tag.len())
    {
        return refuse("block ids of one blob must all have the same length".into());
    }
    if let Some(big) = parts.iter().find(|p| p.size > LIMITS.max_part) {
        return refuse(format!("block {} is over 4000 MiB", big.number));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, tag: &str, size: u64) -> StagedPart {
        StagedPart {
            crc64nvme: None,
            number,
            tag: tag.into(),
            size,
            md5: None,
        }
    }

    #[test]
    fn block_ids_round_trip_with_one_length() {
        let stem = "0123456789abcdef";
        let ids: Vec<String> = [1, 9, 50_000].iter().map(|&n| block_id(stem, n)).collect();
        assert!(ids.iter().all(|id| id.len() == ids[0].len()));
        assert_eq!(parse_block_id(&ids[2]), Some((stem.to_string(), 50_000)));
        assert_eq!(parse_block_id("bm90IG91cnM="), None);
    }

    #[test]
    fn block_lists_over_the_limits_are_refused_before_the_service_sees_them() {
        // azurite accepts 50,001 blocks: the real service does not.
        let id = block_id("0123456789abcdef", 1);
        let too_many: Vec<StagedPart> = (1..=50_001).map(|n| part(n, &id, 1)).collect();
        assert!(check_block_list(&too_many, "t").is_err());
        assert!(check_block_list(&too_many[..50_000], "t").is_ok());
        let mixed = [part(1, &id, 1), part(2, "c2hvcnQ=", 1)];
        assert!(check_block_list(&mixed, "t").is_err());
        let huge = [part(1, &id, LIMITS.max_part + 1)];
        assert!(check_block_list(&huge, "t").is_err());
    }
}
