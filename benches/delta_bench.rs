//! Throughput of the delta engine on 64 MiB in memory: the weak checksum alone,
//! signature generation, and delta computation when the file barely changed and
//! when nothing matches. `scripts/bench-delta.sh` compares with b3sum and rdiff on
//! 1 GiB files.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hugesync::delta::compute_delta;
use hugesync::signature::rolling::checksum;
use hugesync::signature::signature_of_bytes;

const SIZE: usize = 64 * 1024 * 1024;
const BLOCK: u32 = 5 * 1024 * 1024;

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn engine(c: &mut Criterion) {
    let old = noise(SIZE, 1);
    let mut edited = old.clone();
    for at in [SIZE / 5, SIZE / 2, 4 * SIZE / 5] {
        edited[at..at + 65536].fill(7);
    }
    edited.splice(SIZE / 3..SIZE / 3, noise(1000, 2));
    edited.drain(2 * SIZE / 3..2 * SIZE / 3 + 500);
    let unrelated = noise(SIZE, 3);
    let sig = signature_of_bytes(&old, BLOCK);

    let mut group = c.benchmark_group("delta_64MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("weak_checksum", |b| b.iter(|| checksum(&old)));
    group.bench_function("blake3_rayon", |b| {
        b.iter(|| blake3::Hasher::new().update_rayon(&old).finalize())
    });
    group.bench_function("signature", |b| b.iter(|| signature_of_bytes(&old, BLOCK)));
    group.bench_function("delta_edited", |b| b.iter(|| compute_delta(&edited, &sig)));
    group.bench_function("delta_unrelated", |b| {
        b.iter(|| compute_delta(&unrelated, &sig))
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
