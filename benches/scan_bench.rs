//! Listing a 100,000-file tree: HugeSync's jwalk scanner (parallel walk, `fstatat`
//! per entry) against a serial walkdir walk doing the same `lstat` per entry.
//!
//! The tree (20×50 directories × 100 files of 0–4 KiB) is generated once under
//! target/scan-bench-tree and reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hugesync::filter::Filter;
use hugesync::storage::{ListOptions, LocalStorage, ScanCounter};

fn tree() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scan-bench-tree");
    let done = root.join(".complete");
    if done.exists() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let mut seed = 42u64;
    for a in 0..20 {
        for b in 0..50 {
            let dir = root.join(format!("d{a:02}/e{b:02}"));
            std::fs::create_dir_all(&dir).expect("create bench tree");
            for f in 0..100 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let len = (seed >> 33) as usize % 4097;
                std::fs::write(dir.join(format!("f{f:03}.dat")), vec![b'x'; len])
                    .expect("write bench file");
            }
        }
    }
    std::fs::write(&done, b"").expect("mark bench tree");
    root
}

fn scan(c: &mut Criterion) {
    let root = tree();
    let mut group = c.benchmark_group("scan_100k");
    group.sample_size(10);
    group.bench_function("hugesync_jwalk", |b| {
        let storage = LocalStorage::new(root.clone());
        let filter = Arc::new(Filter::default());
        b.iter(|| {
            let listing = storage
                .list(
                    &filter,
                    ListOptions {
                        symlinks: false,
                        list_requests: None,
                        memory_budget: None,
                    },
                    &ScanCounter::default(),
                )
                .expect("list");
            assert!(listing.manifest.len() > 100_000);
        });
    });
    group.bench_function("walkdir_serial", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for entry in walkdir::WalkDir::new(&root).min_depth(1) {
                let entry = entry.expect("walk");
                let meta = entry.metadata().expect("lstat");
                n += usize::from(meta.len() > 0 || meta.is_dir());
            }
            assert!(n > 100_000);
        });
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
