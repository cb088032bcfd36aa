//! How a file is sent, as a pure rule: whole or in parts (and how large),
//! in one GET or in ranges. The uploader and the downloader follow it, and
//! the cost estimate counts the requests it makes, so that what a plan
//! says it will cost is what the run does.

/// Files above this go up in parts (and can later be rebuilt by delta).
pub const MULTIPART_THRESHOLD: u64 = 32 * 1024 * 1024;
/// Smallest part of a whole upload; larger files get larger parts to stay
/// within the store's count of parts.
const MIN_PART_SIZE: u64 = 16 * 1024 * 1024;
/// Objects above this come down in ranges fetched in parallel.
pub const RANGED_THRESHOLD: u64 = 32 * 1024 * 1024;
/// Bytes per ranged GET (held in memory until written: at most `jobs` of
/// them across the run).
pub const RANGE_SIZE: u64 = 16 * 1024 * 1024;

/// The part size for a file of `size` bytes on a store of at most
/// `max_parts` parts of at least `min_part` bytes: at least 16 MiB (and the
/// store's floor), whole MiB, and few enough parts for the store's limit.
pub fn part_size_within(size: u64, max_parts: u64, min_part: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let fitting = size.div_ceil(max_parts.max(1)).div_ceil(MIB).max(1) * MIB;
    fitting.max(MIN_PART_SIZE).max(min_part)
}

/// Requests to write `len` bytes as one object: one PUT, or a staged upload
/// (begin, the parts, commit).
pub fn put_requests(len: u64, max_parts: u64, min_part: u64) -> u64 {
    if len <= MULTIPART_THRESHOLD {
        1
    } else {
        len.div_ceil(part_size_within(len, max_parts, min_part)) + 2
    }
}

/// Requests to read `len` bytes of one object: one GET, or its ranges.
pub fn get_requests(len: u64) -> u64 {
    if len <= RANGED_THRESHOLD {
        1
    } else {
        len.div_ceil(RANGE_SIZE)
    }
}
