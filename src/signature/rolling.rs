//! The weak checksum: rsync's rolling sum, `a = Σ xᵢ`, `b = Σ (n − i)·xᵢ`, each
//! modulo 2¹⁶, packed as `a | b << 16`. It can slide one byte in O(1), and a whole
//! block is summed a chunk at a time so the compiler vectorizes it.

/// The weak checksum of `data` (as one window).
pub fn checksum(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present.
        return unsafe { checksum_avx2(data) };
    }
    checksum_portable(data)
}

/// [`checksum`] 32 bytes an instruction: the byte sums by `vpsadbw`, the
/// weighted sums by `vpmaddubsw` against the weights 32…1, as SIMD Adler-32
/// implementations do. About three times the portable version's speed, which
/// matters because every signed byte passes through here once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn checksum_avx2(data: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_add_epi64, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_maddubs_epi16, _mm256_sad_epu8, _mm256_set1_epi16, _mm256_setr_epi8,
        _mm256_setzero_si256, _mm256_storeu_si256,
    };
    const LANES: usize = 32;
    let (chunks, rest) = data.as_chunks::<LANES>();
    // SAFETY: register arithmetic, and unaligned loads of whole 32-byte chunks.
    let (a, b) = unsafe {
        let zero = _mm256_setzero_si256();
        let weights = _mm256_setr_epi8(
            32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
            10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
        );
        let ones = _mm256_set1_epi16(1);
        // Four 64-bit lanes: the bytes' sum, and the sum of that sum as it
        // stood before each chunk; eight 32-bit lanes of weighted sums.
        let (mut sums, mut prefix, mut weighted) = (zero, zero, zero);
        for chunk in chunks {
            let bytes = _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>());
            prefix = _mm256_add_epi64(prefix, sums);
            sums = _mm256_add_epi64(sums, _mm256_sad_epu8(bytes, zero));
            // Pairs of byte × weight (at most 255 × 63, within i16), then pairs
            // of those into i32.
            let pairs = _mm256_maddubs_epi16(bytes, weights);
            weighted = _mm256_add_epi32(weighted, _mm256_madd_epi16(pairs, ones));
        }
        let words = |v: __m256i| {
            let mut out = [0u32; 8];
            _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), v);
            out
        };
        let fold = |words: &[u32]| words.iter().fold(0u32, |acc, &x| acc.wrapping_add(x));
        // Modulo 2³² a 64-bit lane is its low word (the even ones).
        let low_words = |v: __m256i| {
            let w = words(v);
            fold(&[w[0], w[2], w[4], w[6]])
        };
        let a = low_words(sums);
        let b = low_words(prefix)
            .wrapping_mul(LANES as u32)
            .wrapping_add(fold(&words(weighted)));
        (a, b)
    };
    finish(a, b, rest)
}

/// Adds the bytes after the last whole chunk, one at a time.
fn finish(mut a: u32, mut b: u32, rest: &[u8]) -> u32 {
    for &x in rest {
        a = a.wrapping_add(u32::from(x));
        b = b.wrapping_add(a);
    }
    pack(a, b)
}

/// [`checksum`] in portable code the compiler vectorizes.
fn checksum_portable(data: &[u8]) -> u32 {
    const LANES: usize = 32;
    // Serially each byte does `a += x; b += a`. Split into 32 lanes: `sums[j]`
    // adds up lane j's bytes, `prefix[j]` adds up `sums[j]` as it stood before each
    // chunk (so Σ prefix is the `a` every chunk started from), and `weighted[j]`
    // adds `(32 − j)·x`. Element-wise array updates vectorize; the wrapping
    // arithmetic is exact modulo 2³², hence modulo 2¹⁶.
    let (chunks, rest) = data.as_chunks::<LANES>();
    let mut sums = [0u32; LANES];
    let mut prefix = [0u32; LANES];
    let mut weighted = [0u32; LANES];
    for chunk in chunks {
        for j in 0..LANES {
            let x = u32::from(chunk[j]);
            prefix[j] = prefix[j].wrapping_add(sums[j]);
            sums[j] = sums[j].wrapping_add(x);
            weighted[j] = weighted[j].wrapping_add((LANES - j) as u32 * x);
        }
    }
    let fold = |v: &[u32; LANES]| v.iter().fold(0u32, |acc, &x| acc.wrapping_add(x));
    let a = fold(&sums);
    let b = fold(&prefix)
        .wrapping_mul(LANES as u32)
        .wrapping_add(fold(&weighted));
    finish(a, b, rest)
}

fn pack(a: u32, b: u32) -> u32 {
    (a & 0xffff) | (b << 16)
}

/// A window's checksum that slides one byte at a time.
#[derive(Clone, Copy, Debug)]
pub struct Rolling {
    a: u32,
    b: u32,
    len: u32,
}

impl Rolling {
    pub fn new(window: &[u8]) -> Self {
        // Only the sums modulo 2¹⁶ are ever compared, and wrapping arithmetic
        // keeps them exact, so the packed halves are a valid starting state.
        let packed = checksum(window);
        Self {
            a: packed & 0xffff,
            b: packed >> 16,
            len: window.len() as u32,
        }
    }

    /// Slides the window: `out` leaves at the front, `incoming` joins at the back.
    #[inline(always)]
    pub fn roll(&mut self, out: u8, incoming: u8) {
        self.a = self
            .a
            .wrapping_sub(u32::from(out))
            .wrapping_add(u32::from(incoming));
        self.b = self
            .b
            .wrapping_sub(self.len.wrapping_mul(u32::from(out)))
            .wrapping_add(self.a);
    }

    /// The running sums and the window length, for a scan that slides many
    /// windows at once and hands the state back ([`Rolling::from_parts`]).
    #[inline(always)]
    pub(crate) fn parts(&self) -> (u32, u32, u32) {
        (self.a, self.b, self.len)
    }

    #[inline(always)]
    pub(crate) fn from_parts(a: u32, b: u32, len: u32) -> Self {
        Self { a, b, len }
    }

    #[inline(always)]
    pub fn value(&self) -> u32 {
        pack(self.a, self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn serial(data: &[u8]) -> u32 {
        let (mut a, mut b) = (0u32, 0u32);
        for &x in data {
            a = a.wrapping_add(u32::from(x));
            b = b.wrapping_add(a);
        }
        pack(a, b)
    }

    #[test]
    fn long_windows_of_high_bytes_wrap_alike() {
        // Sums that overflow 32 bits: the vector lanes must wrap as the serial sum does.
        let data: Vec<u8> = (0..3_000_000u32).map(|i| 200 + (i % 56) as u8).collect();
        assert_eq!(checksum(&data), serial(&data));
        assert_eq!(checksum_portable(&data), serial(&data));
    }

    proptest! {
        #[test]
        fn chunked_equals_serial(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(checksum(&data), serial(&data));
            prop_assert_eq!(checksum_portable(&data), serial(&data));
        }

        #[test]
        fn rolling_equals_recomputing(
            data in proptest::collection::vec(any::<u8>(), 2..400),
            window in 1usize..64,
        ) {
            let window = window.min(data.len() - 1);
            let mut rolling = Rolling::new(&data[..window]);
            for start in 1..=data.len() - window {
                rolling.roll(data[start - 1], data[start + window - 1]);
                prop_assert_eq!(rolling.value(), checksum(&data[start..start + window]));
            }
        }
    }
}
