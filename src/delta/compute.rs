//! Finding the old file's blocks in the new file at any byte offset: slide a
//! rolling checksum over the new bytes, look it up in a compact filter then a
//! table of the old blocks' weak sums, and confirm a hit with blake3.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::{Delta, DeltaOp};
use crate::signature::Placement;
use crate::signature::rolling::{Rolling, checksum};
use crate::signature::{Signature, strong_hash};

/// Hashes a weak checksum by one multiply: the checksums are already well mixed
/// enough for bucketing, and this runs once per byte of input.
#[derive(Default)]
struct WeakHasher(u64);

impl Hasher for WeakHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The pre-filter's bit for a weak sum, before masking to the filter's size: a
/// 32-bit multiply and a constant shift, the same in the scalar loop and in
/// eight lanes at once (`scan_avx2`).
pub(super) const FILTER_MIX: u32 = 0x9E37_79B1;

#[inline(always)]
fn filter_hash(weak: u32) -> u32 {
    weak.wrapping_mul(FILTER_MIX) >> (32 - FILTER_MAX_BITS_LOG2)
}

/// The pre-filter holds 64 bits per block, between 16 KiB and 2 MiB. The floor
/// matters: each false positive leaves the hot loop for a table lookup, and at
/// 4 KiB a 200-block signature let one window in 160 through (~7% slower on
/// unrelated data); 16 KiB still sits in L1 cache. Large signatures keep false
/// positives near 1/64.
const FILTER_MIN_BITS_LOG2: u32 = 17;
pub(super) const FILTER_MAX_BITS_LOG2: u32 = 24;
/// 32-bit words, the unit a vector gather loads.
pub(super) const FILTER_WORDS: usize = 1 << (FILTER_MAX_BITS_LOG2 - 5);

/// New-file bytes each parallel matcher takes at least.
const PARALLEL_MIN: usize = 16 * 1024 * 1024;

/// The old file's full blocks, by weak checksum, behind a bitmap that rejects
/// almost every non-matching window with one cached memory access.
struct BlockIndex {
    /// Always the largest filter's size, so that an index taken from the top
    /// `FILTER_MAX_BITS_LOG2` bits of a product needs no bounds check; only the
    /// first `bit_mask + 1` bits are used (calloc'd pages never touched stay free).
    bits: Box<[u32; FILTER_WORDS]>,
    bit_mask: u32,
    blocks: HashMap<u32, Vec<u32>, BuildHasherDefault<WeakHasher>>,
    full_blocks: usize,
    places: Places,
    /// Whether the scan runs eight windows at a time (`scan_avx2`).
    vector: bool,
}

/// Where the old file's blocks lie and were hashed: at `i × n` for a tiling
/// signature, as its runs say for a placed one.
enum Places {
    Tiled(u64),
    Placed(Vec<Placement>),
}

impl Places {
    #[inline(always)]
    fn at(&self, block: usize) -> u64 {
        match self {
            Places::Tiled(n) => block as u64 * n,
            Places::Placed(places) => places[block].at,
        }
    }

    #[inline(always)]
    fn hashed_at(&self, block: usize) -> u64 {
        match self {
            Places::Tiled(n) => block as u64 * n,
            Places::Placed(places) => places[block].hashed_at,
        }
    }
}

impl BlockIndex {
    fn new(sig: &Signature, full_blocks: usize) -> Self {
        let log2 = (full_blocks.max(1) * 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(FILTER_MIN_BITS_LOG2, FILTER_MAX_BITS_LOG2);
        let bits: Box<[u32]> = vec![0; FILTER_WORDS].into_boxed_slice();
        let Ok(bits) = bits.try_into() else {
            unreachable!("the vector has FILTER_WORDS elements")
        };
        let mut index = BlockIndex {
            bits,
            bit_mask: (1u32 << log2) - 1,
            blocks: HashMap::default(),
            full_blocks,
            #[cfg(target_arch = "x86_64")]
            vector: super::scan_avx2::available(),
            #[cfg(not(target_arch = "x86_64"))]
            vector: false,
            places: if sig.is_placed() {
                Places::Placed(sig.placements())
            } else {
                Places::Tiled(u64::from(sig.block_size))
            },
        };
        for (i, block) in sig.blocks[..full_blocks].iter().enumerate() {
            let bit = index.bit(block.weak);
            index.bits[(bit >> 5) as usize] |= 1 << (bit & 31);
            index.blocks.entry(block.weak).or_default().push(i as u32);
        }
        index
    }

    #[inline(always)]
    fn bit(&self, weak: u32) -> u32 {
        // A constant shift (a variable one costs three µops in the hot loop).
        filter_hash(weak) & self.bit_mask
    }

    #[inline(always)]
    fn may_contain(&self, weak: u32) -> bool {
        let bit = self.bit(weak);
        self.bits[(bit >> 5) as usize] & (1 << (bit & 31)) != 0
    }

    /// The old block equal to `window`, if any. Strong hashes are bound to their
    /// block's offset, so each candidate costs a hash: blocks sharing a weak sum
    /// are almost always copies of each other (runs of zeroes), where the first
    /// try matches, so only the first few are tried.
    fn find(&self, sig: &Signature, weak: u32, window: &[u8]) -> Option<usize> {
        const MAX_TRIES: usize = 4;
        self.blocks
            .get(&weak)?
            .iter()
            .take(MAX_TRIES)
            .map(|&i| i as usize)
            .find(|&i| strong_hash(window, self.places.hashed_at(i)) == sig.blocks[i].strong)
    }
}

/// A stretch of the new file found in the old one.
#[derive(Clone, Copy, Debug)]
struct Match {
    new_pos: usize,
    src_offset: u64,
    len: usize,
}

/// The delta from the file `sig` describes to `new`.
///
/// `new` may be a memory map of a file larger than RAM: it is read front to back
/// (in as many stretches as there are cores), and only the matches are kept.
pub fn compute_delta(new: &[u8], sig: &Signature) -> Delta {
    let pieces = rayon::current_num_threads()
        .min(new.len() / PARALLEL_MIN)
        .max(1);
    delta_in_pieces(new, sig, pieces, true)
}

/// [`compute_delta`] with the new file split into `pieces` stretches matched in
/// parallel, by the vector scan where the CPU has it and `vector` allows.
fn delta_in_pieces(new: &[u8], sig: &Signature, pieces: usize, vector: bool) -> Delta {
    let n = sig.block_size as usize;
    let len = new.len();
    let mut delta = Delta {
        ops: Vec::new(),
        new_size: len as u64,
    };
    // A placed signature holds whole blocks only; a tiling one may end short.
    let tail_len = if sig.is_placed() {
        0
    } else {
        (sig.file_size % u64::from(sig.block_size)) as usize
    };
    let full_blocks = sig.blocks.len() - usize::from(tail_len > 0);
    // Bytes of `new` the ops cover so far.
    let mut covered = 0usize;

    if full_blocks > 0 && len >= n {
        let mut index = BlockIndex::new(sig, full_blocks);
        index.vector &= vector;
        let pieces = pieces.clamp(1, len);
        // Stretches start on block boundaries, where an unchanged file's matches are.
        let cut = |i: usize| {
            if i == pieces {
                len
            } else {
                (len / pieces * i) / n * n
            }
        };
        let bounds: Vec<(usize, usize)> = (0..pieces)
            .map(|i| (cut(i), cut(i + 1)))
            .filter(|(start, end)| start < end)
            .collect();
        let found: Vec<Vec<Match>> = bounds
            .par_iter()
            .map(|&(start, end)| find_matches(new, start, end, sig, &index))
            .collect();
        // A match near a stretch's end may run into the next stretch: the next
        // stretch's overlapping matches are trimmed to start where it ended.
        for m in found.into_iter().flatten() {
            let end = m.new_pos + m.len;
            if end <= covered {
                continue;
            }
            let cut = covered.saturating_sub(m.new_pos);
            delta.push(insert(covered, m.new_pos.max(covered)));
            delta.push(DeltaOp::Copy {
                src_offset: m.src_offset + cut as u64,
                len: (m.len - cut) as u64,
            });
            covered = end;
        }
    }

    // The old file's short last block can only match the new file's end.
    if tail_len > 0 && len >= covered + tail_len {
        let at = len - tail_len;
        let tail = &sig.blocks[sig.blocks.len() - 1];
        let tail_offset = (full_blocks * n) as u64;
        if checksum(&new[at..]) == tail.weak && strong_hash(&new[at..], tail_offset) == tail.strong
        {
            delta.push(insert(covered, at));
            delta.push(DeltaOp::Copy {
                src_offset: tail_offset,
                len: tail_len as u64,
            });
            covered = len;
        }
    }
    delta.push(insert(covered, len));
    delta
}

/// Matches of old blocks starting in `start..end` of `new` (they may extend past
/// `end`), in order and not overlapping.
fn find_matches(
    new: &[u8],
    start: usize,
    end: usize,
    sig: &Signature,
    index: &BlockIndex,
) -> Vec<Match> {
    let n = sig.block_size as usize;
    let len = new.len();
    let mut found = Vec::new();
    let mut pos = start;
    // After a match the next old block is the likeliest next match: checking it
    // directly skips the weak checksum on unchanged stretches.
    let mut expected: Option<usize> = None;
    let record = |found: &mut Vec<Match>, pos: usize, block: usize| {
        found.push(Match {
            new_pos: pos,
            src_offset: index.places.at(block),
            len: n,
        })
    };
    'outer: while pos < end && pos + n <= len {
        if let Some(e) = expected.take()
            && e < index.full_blocks
            && strong_hash(&new[pos..pos + n], index.places.hashed_at(e)) == sig.blocks[e].strong
        {
            record(&mut found, pos, e);
            pos += n;
            expected = Some(e + 1);
            continue;
        }
        let mut rolling = Rolling::new(&new[pos..pos + n]);
        loop {
            match next_candidate(new, n, pos, end, &mut rolling, index) {
                Some(candidate) => pos = candidate,
                None => break 'outer,
            }
            if let Some(block) = index.find(sig, rolling.value(), &new[pos..pos + n]) {
                record(&mut found, pos, block);
                pos += n;
                expected = Some(block + 1);
                continue 'outer;
            }
            if pos + 1 >= end || pos + n >= len {
                break 'outer;
            }
            rolling.roll(new[pos], new[pos + n]);
            pos += 1;
        }
    }
    found
}

/// Slides the window (whose checksum `rolling` holds, starting at `pos`) to the
/// first start before `end` that may match, or `None`. The hot loop: two slices
/// zipped so no index is bounds-checked per byte. Kept out of line so the loop
/// gets registers of its own instead of spilling its caller's state.
#[inline(never)]
fn next_candidate(
    new: &[u8],
    n: usize,
    pos: usize,
    end: usize,
    rolling: &mut Rolling,
    index: &BlockIndex,
) -> Option<usize> {
    if index.may_contain(rolling.value()) {
        return Some(pos);
    }
    let last_start = (end - 1).min(new.len() - n);
    if pos >= last_start {
        return None;
    }
    let mut pos = pos;
    #[cfg(target_arch = "x86_64")]
    if index.vector {
        // SAFETY: AVX2 is present; the window at `pos` and at `last_start`
        // both lie within `new` (`last_start <= new.len() - n`).
        let stop = unsafe {
            super::scan_avx2::scan(
                new,
                pos,
                last_start,
                rolling.parts(),
                &index.bits,
                index.bit_mask,
            )
        };
        *rolling = Rolling::from_parts(stop.a, stop.b, rolling.parts().2);
        if stop.found {
            return Some(stop.start);
        }
        pos = stop.start;
        if pos >= last_start {
            return None;
        }
    }
    let outgoing = &new[pos..last_start];
    let incoming = &new[pos + n..last_start + n];
    // A local copy keeps the sums in registers for the whole loop.
    let mut local = *rolling;
    for (k, (&out, &inc)) in outgoing.iter().zip(incoming).enumerate() {
        local.roll(out, inc);
        if index.may_contain(local.value()) {
            *rolling = local;
            return Some(pos + k + 1);
        }
    }
    *rolling = local;
    None
}

fn insert(from: usize, to: usize) -> DeltaOp {
    DeltaOp::Insert {
        new_offset: from as u64,
        len: (to - from) as u64,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::delta::apply_delta;
    use crate::signature::signature_of_bytes;
    use proptest::prelude::*;

    const BLOCK: u32 = 64 * 1024;

    /// Deterministic pseudo-random bytes (xorshift), for tests across the crate.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn round_trip(old: &[u8], new: &[u8]) -> Delta {
        let sig = signature_of_bytes(old, BLOCK);
        let delta = compute_delta(new, &sig);
        assert_eq!(apply_delta(old, &delta, new).unwrap(), new);
        assert_eq!(delta.new_size, new.len() as u64);
        delta
    }

    #[test]
    fn unchanged_file_is_one_copy() {
        let old = noise(5 * BLOCK as usize + 123, 1);
        let delta = round_trip(&old, &old);
        assert_eq!(
            delta.ops,
            vec![DeltaOp::Copy {
                src_offset: 0,
                len: old.len() as u64
            }]
        );
    }

    #[test]
    fn insertion_shifts_are_found() {
        let old = noise(8 * BLOCK as usize, 2);
        let mut new = old.clone();
        new.splice(1000..1000, noise(777, 3));
        let delta = round_trip(&old, &new);
        assert!(
            delta.bytes_new() <= u64::from(BLOCK) + 777,
            "{}",
            delta.bytes_new()
        );
    }

    #[test]
    fn the_vector_scan_finds_what_the_scalar_one_finds() {
        // Old blocks shuffled into new noise at odd offsets, some near the end
        // (where the vector scan hands over to the scalar loop).
        let old = noise(12 * BLOCK as usize, 5);
        let block = |i: usize| &old[i * BLOCK as usize..(i + 1) * BLOCK as usize];
        let mut new = noise(3001, 6);
        for (i, gap) in [(7, 13), (2, 1), (11, 4099), (0, 7), (5, 0)] {
            new.extend_from_slice(block(i));
            new.extend(noise(gap, i as u64 + 10));
        }
        let sig = signature_of_bytes(&old, BLOCK);
        let scalar = delta_in_pieces(&new, &sig, 1, false);
        let vector = delta_in_pieces(&new, &sig, 1, true);
        assert_eq!(scalar.ops, vector.ops);
        assert_eq!(scalar.bytes_reused(), 5 * u64::from(BLOCK));
        assert_eq!(apply_delta(&old, &vector, &new).unwrap(), new);
    }

    #[test]
    fn identical_blocks_stay_contiguous() {
        let old = vec![7u8; 6 * BLOCK as usize];
        let delta = round_trip(&old, &old);
        assert_eq!(delta.ops.len(), 1);
    }

    #[test]
    fn small_and_empty_files() {
        round_trip(b"", b"");
        round_trip(b"", b"new");
        round_trip(b"old", b"");
        round_trip(b"short old", b"short new");
        let old = noise(BLOCK as usize + 10, 4);
        let delta = round_trip(&old, &old[..BLOCK as usize]);
        assert_eq!(delta.bytes_new(), 0);
    }

    #[derive(Clone, Debug)]
    enum Edit {
        Overwrite { at: usize, data: Vec<u8> },
        Insert { at: usize, data: Vec<u8> },
        Delete { at: usize, len: usize },
        Move { from: usize, len: usize, to: usize },
        Truncate { len: usize },
        Append { data: Vec<u8> },
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let data = proptest::collection::vec(any::<u8>(), 1..3000);
        prop_oneof![
            (any::<usize>(), data.clone()).prop_map(|(at, data)| Edit::Overwrite { at, data }),
            (any::<usize>(), data.clone()).prop_map(|(at, data)| Edit::Insert { at, data }),
            (any::<usize>(), 1usize..100_000).prop_map(|(at, len)| Edit::Delete { at, len }),
            (any::<usize>(), 1usize..200_000, any::<usize>())
                .prop_map(|(from, len, to)| Edit::Move { from, len, to }),
            any::<usize>().prop_map(|len| Edit::Truncate { len }),
            data.prop_map(|data| Edit::Append { data }),
        ]
    }

    fn apply_edit(file: &mut Vec<u8>, edit: &Edit) {
        let size = file.len();
        let pick = |x: usize| if size == 0 { 0 } else { x % (size + 1) };
        match edit {
            Edit::Overwrite { at, data } => {
                let at = pick(*at);
                let end = (at + data.len()).min(size);
                file.splice(at..end, data.iter().copied());
            }
            Edit::Insert { at, data } => {
                let at = pick(*at);
                file.splice(at..at, data.iter().copied());
            }
            Edit::Delete { at, len } => {
                let at = pick(*at);
                file.drain(at..(at + len).min(size));
            }
            Edit::Move { from, len, to } => {
                let from = pick(*from);
                let moved: Vec<u8> = file.drain(from..(from + len).min(size)).collect();
                let to = if file.is_empty() {
                    0
                } else {
                    to % (file.len() + 1)
                };
                file.splice(to..to, moved);
            }
            Edit::Truncate { len } => file.truncate(pick(*len)),
            Edit::Append { data } => file.extend_from_slice(data),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn apply_of_delta_rebuilds_new(
            size in prop_oneof![0usize..1000, 60_000usize..70_000, 200_000usize..600_000],
            seed in any::<u64>(),
            repeated in any::<bool>(),
            edits in proptest::collection::vec(edit(), 0..5),
            pieces in 1usize..5,
            vector in any::<bool>(),
        ) {
            let old = if repeated { vec![0xAB; size] } else { noise(size, seed) };
            let mut new = old.clone();
            for e in &edits {
                apply_edit(&mut new, e);
            }
            let sig = signature_of_bytes(&old, BLOCK);
            let delta = delta_in_pieces(&new, &sig, pieces, vector);
            prop_assert_eq!(apply_delta(&old, &delta, &new).unwrap(), new.clone());
            if edits.is_empty() && !new.is_empty() {
                prop_assert_eq!(delta.bytes_new(), 0, "an unchanged file is all copies");
            }
            prop_assert_eq!(delta.bytes_reused() + delta.bytes_new(), new.len() as u64);
        }
    }
}
