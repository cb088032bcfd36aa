//! The delta engine on its own, as `hugesync signature`, `delta` and `patch`
//! use it: sign a file, edit it a little, match the edit against the
//! signature, rebuild the new file from the old one plus only the new bytes,
//! and print what the delta saved.
//!
//! ```sh
//! cargo run --release --example delta_demo            # 64 MiB of generated data
//! cargo run --release --example delta_demo -- FILE    # or a file of yours (read only)
//! ```

use hugesync::delta::{apply_delta, compute_delta};
use hugesync::signature::{DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE, signature_of_bytes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let old = match std::env::args().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => generated(64 << 20),
    };

    // A small edit: 100 bytes overwritten, 1 KiB inserted, 500 bytes cut.
    let mut new = old.clone();
    let (a, b, c) = (new.len() / 4, new.len() / 2, new.len() * 3 / 4);
    new[a..(a + 100).min(old.len())].fill(b'x');
    new.splice(b..b, std::iter::repeat_n(b'y', 1024));
    new.drain(c..(c + 500).min(new.len()));

    // Object stores' default blocks (S3's 5 MiB part floor), then SSH
    // servers' (64 KiB): smaller blocks, fewer bytes around each edit.
    for block in [DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE] {
        // The old file's signature: what a sidecar (`.hssig`) holds.
        let signature = signature_of_bytes(&old, block);
        println!(
            "old file: {} bytes, {} blocks of {} bytes, blake3 {}",
            old.len(),
            signature.blocks.len(),
            block,
            hex(&signature.file_hash)
        );
        // Matched against the signature alone: the old bytes are not needed.
        let delta = compute_delta(&new, &signature);
        println!(
            "  delta: {} ops, {} bytes reused from the old file, {} bytes new",
            delta.ops.len(),
            delta.bytes_reused(),
            delta.bytes_new()
        );
        // Rebuilt from the old file and the new bytes, then checked.
        let rebuilt = apply_delta(&old, &delta, &new)?;
        assert_eq!(rebuilt, new, "the rebuilt file is the new one");
        let saved = 100.0 * delta.bytes_reused() as f64 / new.len().max(1) as f64;
        println!(
            "  patched: {} bytes, identical to the new file; {saved:.2}% of it never had to be sent",
            rebuilt.len()
        );
    }
    Ok(())
}

/// Deterministic bytes that do not repeat (xorshift).
fn generated(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
