//! The delta's hot loop eight windows at a time (AVX2): the rolling sums of
//! eight consecutive windows come from prefix sums of the bytes leaving and
//! entering, their filter bits are looked up by one gather, and only a batch
//! with a possible match leaves the vector code. About twice the scalar loop's
//! bytes per second on one core; the scalar loop stays for other CPUs and for
//! the few windows before the end.

use std::arch::x86_64::{
    __m128i, __m256i, _mm_loadl_epi64, _mm256_add_epi32, _mm256_and_si256, _mm256_castsi256_ps,
    _mm256_cmpeq_epi32, _mm256_cvtepu8_epi32, _mm256_i32gather_epi32, _mm256_movemask_ps,
    _mm256_mullo_epi32, _mm256_or_si256, _mm256_permute2x128_si256, _mm256_permutevar8x32_epi32,
    _mm256_set1_epi32, _mm256_shuffle_epi32, _mm256_slli_epi32, _mm256_slli_si256,
    _mm256_srli_epi32, _mm256_srlv_epi32, _mm256_storeu_si256, _mm256_sub_epi32,
};

use super::compute::{FILTER_MAX_BITS_LOG2, FILTER_MIX, FILTER_WORDS};

/// Where a vector scan stopped: at a window the filter may hold, or at the
/// last window it could reach in whole batches. Either way the sums are
/// those of the window starting there.
pub(super) struct Stop {
    pub start: usize,
    pub a: u32,
    pub b: u32,
    pub found: bool,
}

/// Whether this CPU runs [`scan`] (detected once; the check is a load).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Running sums of eight lanes: lane j becomes the sum of lanes 0..=j.
#[inline(always)]
unsafe fn prefix_sums(x: __m256i) -> __m256i {
    // SAFETY (all intrinsics here): register-only AVX2 operations; the caller
    // runs only where AVX2 is present.
    unsafe {
        let x = _mm256_add_epi32(x, _mm256_slli_si256::<4>(x));
        let x = _mm256_add_epi32(x, _mm256_slli_si256::<8>(x));
        // Carry the low half's total into every lane of the high half.
        let last = _mm256_shuffle_epi32::<0xFF>(x);
        _mm256_add_epi32(x, _mm256_permute2x128_si256::<0x08>(last, last))
    }
}

/// Slides the window at `pos` (sums `a`, `b` over `len` bytes) one byte at a
/// time towards `last_start`, eight windows a batch, and stops at the first
/// window whose weak sum the filter (`bits`, `mask`) may hold.
///
/// # Safety
/// The CPU must have AVX2 ([`available`]); `pos + len <= new.len()` and
/// `last_start + len <= new.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn scan(
    new: &[u8],
    pos: usize,
    last_start: usize,
    (a, b, len): (u32, u32, u32),
    bits: &[u32; FILTER_WORDS],
    mask: u32,
) -> Stop {
    let n = len as usize;
    debug_assert!(last_start + n <= new.len());
    let bytes = new.as_ptr();
    let mut at = pos;
    let mut stop = Stop {
        start: pos,
        a,
        b,
        found: false,
    };
    // SAFETY: every load reads 8 bytes at `at` or `at + n` with
    // `at + 8 <= last_start`, so within `new`; every gathered index is a
    // masked filter bit shifted to its word, below FILTER_WORDS.
    unsafe {
        let seventh = _mm256_set1_epi32(7);
        let window = _mm256_set1_epi32(len as i32);
        let low_half = _mm256_set1_epi32(0xffff);
        let mix = _mm256_set1_epi32(FILTER_MIX as i32);
        let bit_mask = _mm256_set1_epi32(mask as i32);
        let thirty_one = _mm256_set1_epi32(31);
        let one = _mm256_set1_epi32(1);
        let mut carry_a = _mm256_set1_epi32(a as i32);
        let mut carry_b = _mm256_set1_epi32(b as i32);
        while at + 8 <= last_start {
            let leaving = _mm256_cvtepu8_epi32(_mm_loadl_epi64(bytes.add(at).cast::<__m128i>()));
            let entering =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64(bytes.add(at + n).cast::<__m128i>()));
            // Lane j: the window starting at at + j + 1.
            let sums_a =
                _mm256_add_epi32(carry_a, prefix_sums(_mm256_sub_epi32(entering, leaving)));
            let steps_b = _mm256_sub_epi32(sums_a, _mm256_mullo_epi32(leaving, window));
            let sums_b = _mm256_add_epi32(carry_b, prefix_sums(steps_b));
            carry_a = _mm256_permutevar8x32_epi32(sums_a, seventh);
            carry_b = _mm256_permutevar8x32_epi32(sums_b, seventh);
            let weak = _mm256_or_si256(
                _mm256_and_si256(sums_a, low_half),
                _mm256_slli_epi32::<16>(sums_b),
            );
            let bit = _mm256_and_si256(
                _mm256_srli_epi32::<{ 32 - FILTER_MAX_BITS_LOG2 as i32 }>(_mm256_mullo_epi32(
                    weak, mix,
                )),
                bit_mask,
            );
            let words = _mm256_i32gather_epi32::<4>(
                bits.as_ptr().cast::<i32>(),
                _mm256_srli_epi32::<5>(bit),
            );
            let hit = _mm256_and_si256(
                _mm256_srlv_epi32(words, _mm256_and_si256(bit, thirty_one)),
                one,
            );
            let lanes = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(hit, one)));
            if lanes != 0 {
                let lane = lanes.trailing_zeros() as usize;
                let (mut all_a, mut all_b) = ([0u32; 8], [0u32; 8]);
                _mm256_storeu_si256(all_a.as_mut_ptr().cast::<__m256i>(), sums_a);
                _mm256_storeu_si256(all_b.as_mut_ptr().cast::<__m256i>(), sums_b);
                return Stop {
                    start: at + lane + 1,
                    a: all_a[lane],
                    b: all_b[lane],
                    found: true,
                };
            }
            at += 8;
        }
        if at > pos {
            let (mut all_a, mut all_b) = ([0u32; 8], [0u32; 8]);
            _mm256_storeu_si256(all_a.as_mut_ptr().cast::<__m256i>(), carry_a);
            _mm256_storeu_si256(all_b.as_mut_ptr().cast::<__m256i>(), carry_b);
            stop = Stop {
                start: at,
                a: all_a[0],
                b: all_b[0],
                found: false,
            };
        }
    }
    stop
}
