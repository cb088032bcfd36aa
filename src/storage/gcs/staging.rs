//! Where a parallel composite upload keeps its parts: temporary objects
//! under one reserved folder at the top of the bucket,
//! `.hugesync-staging/STEM/NUMBER/KEY` — the stem tells one upload's parts from
//! another's, the number is the part's place, the key is the object they will
//! make (so a listing of the folder alone finds every pending upload and what
//! it was for). Listings of user files never show this folder; the parts go
//! when the object is composed or the upload aborted.

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
