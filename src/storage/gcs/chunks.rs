//! Chunked objects (opt-in, `--gcs-chunked-objects`): an object HugeSync
//! uploads is also kept as its parts, hidden objects named
//! `.hugesync-chunks/KEY/NUMBER`, and composed from them. Compose reuses whole
//! objects only, so a later upload of the file re-sends just the chunks whose
//! bytes changed and composes the others as they are. The price is storage:
//! the data is kept twice (the object and its chunks).
//!
//! A chunk is reused only after its MD5 and CRC32C (both computed by the
//! service) are those of the file's bytes at its place, so a chunk left by an
//! interrupted run, or changed by anyone, is never taken for other bytes.

/// The reserved folder, at the top of the bucket.
pub const CHUNKS: &str = ".hugesync-chunks/";

/// The upload id under which `uploads` lists (and `--abort` removes) the
/// chunks of an object that does not exist.
pub const ORPHANED: &str = "chunks";

/// Digits of a chunk number: sorted listings list chunks in order.
const NUMBER_DIGITS: usize = 5;

/// The folder of one object's chunks. Its direct children are that object's
/// chunks only: a longer key's chunks sit one folder deeper.
pub fn folder(key: &str) -> String {
    format!("{CHUNKS}{key}/")
}

/// The chunk `number` (1-based) of `key`.
pub fn name(key: &str, number: u32) -> String {
    format!("{}{number:0width$}", folder(key), width = NUMBER_DIGITS)
}

/// `(key, number)` of a chunk's name; `None` for anything else.
pub fn parse(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix(CHUNKS)?;
    let (key, number) = rest.rsplit_once('/')?;
    if key.is_empty()
        || number.len() != NUMBER_DIGITS
        || !number.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((key, number.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_keys_apart() {
        let chunk = name("data/disk.img", 12);
        assert_eq!(chunk, ".hugesync-chunks/data/disk.img/00012");
        assert_eq!(parse(&chunk), Some(("data/disk.img", 12)));
        // The chunks of `a/00001` are not chunks of `a`.
        let deeper = name("a/00001", 1);
        assert!(deeper.starts_with(&folder("a")));
        assert_eq!(parse(&deeper), Some(("a/00001", 1)));
        assert!(name("k", 9) < name("k", 10));
        assert_eq!(parse(".hugesync-chunks/k/x"), None);
        assert_eq!(parse("k/00001"), None);
    }
}
