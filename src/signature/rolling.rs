//! The weak checksum: rsync's rolling sum, `a = Σ xᵢ`, `b = Σ (n − i)·xᵢ`, each
//! modulo 2¹⁶, packed as `a | b << 16`. It can slide one byte in O(1), and a whole
//! block is summed a chunk at a time so the compiler vectorizes it.

/// The weak checksum of `data` (as one window).
pub fn checksum(data: &[u8]) -> u32 {
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
    let mut a = fold(&sums);
    let mut b = fold(&prefix)
        .wrapping_mul(LANES as u32)
        .wrapping_add(fold(&weighted));
    for &x in rest {
        a = a.wrapping_add(u32::from(x));
        b = b.wrapping_add(a);
    }
    pack(a, b)
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

    proptest! {
        #[test]
        fn chunked_equals_serial(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(checksum(&data), serial(&data));
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
