use proptest::prelude::*;

use super::block::BLOCK_ENTRIES;
use super::*;

const RUN_ENTRIES: usize = 8192;
use crate::types::ContentSums;

fn entry(path: &[u8], size: u64, mtime_ns: i64, tagged: bool) -> ManifestEntry {
    let mut entry = Entry::file(
        size,
        mtime_ns,
        if size.is_multiple_of(3) { 0o644 } else { 0 },
    );
    if size.is_multiple_of(5) {
        entry.kind = EntryKind::Dir;
    }
    if tagged {
        entry.set_etag(format!("\"{size:032x}\""));
        entry.set_sums(ContentSums {
            crc32c: Some(size as u32),
            ..Default::default()
        });
    }
    ManifestEntry {
        path: RelPath::from_bytes(path),
        entry,
    }
}

/// Paths from a small alphabet, so that many share prefixes and some are
/// prefixes of others.
fn path_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'/', b'-', b'.', 0xc3, 0xa9, 0xff]),
        1..12,
    )
}

proptest! {
    /// Whatever order entries come in, the manifest reads back as the
    /// sorted entries with one per path (the first added), and finds each.
    #[test]
    fn reads_back_sorted_and_finds_every_path(
        raw in prop::collection::vec((path_strategy(), 0u64..1 << 40, any::<i64>(), any::<bool>()), 0..600)
    ) {
        let entries: Vec<ManifestEntry> =
            raw.iter().map(|(p, size, t, tagged)| entry(p, *size, *t, *tagged)).collect();
        let mut expected: Vec<ManifestEntry> = Vec::new();
        for e in &entries {
            if !expected.iter().any(|x| x.path == e.path) {
                expected.push(e.clone());
            }
        }
        expected.sort_by(|a, b| a.path.cmp(&b.path));

        // Small runs exercise the merge as a large scan would.
        let mut builder = ManifestBuilder::default();
        builder.run_entries = 7;
        for e in entries {
            builder.push(e);
        }
        let manifest = builder.finish(Vec::new(), true);
        prop_assert_eq!(manifest.iter().collect::<Vec<_>>(), expected.clone());
        prop_assert_eq!(manifest.len(), expected.len());
        let bytes: u64 = expected.iter().filter(|e| e.entry.kind == EntryKind::File).map(|e| e.entry.size).sum();
        prop_assert_eq!(manifest.total_bytes(), bytes);
        for e in &expected {
            prop_assert_eq!(manifest.get(&e.path), Some(e.entry.clone()));
            let mut absent = e.path.as_bytes().to_vec();
            absent.push(0);
            prop_assert_eq!(manifest.get(&RelPath::from_bytes(&absent)), None);
        }
        prop_assert_eq!(manifest.get(&RelPath::from("")), None);
        prop_assert_eq!(manifest.clone().into_iter().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn runs_merge_across_many_blocks() {
    // Three runs, interleaved: every third path in each.
    let n = RUN_ENTRIES * 3;
    let mut builder = ManifestBuilder::default();
    for phase in 0..3 {
        for i in (phase..n).step_by(3) {
            builder.push(entry(
                format!("dir/{i:08}").as_bytes(),
                i as u64,
                i as i64,
                i % 2 == 0,
            ));
        }
    }
    let manifest = builder.finish(Vec::new(), true);
    assert_eq!(manifest.len(), n);
    let paths: Vec<String> = manifest.iter().map(|e| e.path.to_string()).collect();
    assert!(paths.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        manifest.get(&"dir/00012345".into()).map(|e| e.size),
        Some(12345)
    );
    assert!(manifest.blocks.len() >= n / BLOCK_ENTRIES);
}

#[test]
fn replace_rewrites_only_the_entries_named() {
    let entries: Vec<ManifestEntry> = (0..1000u64)
        .map(|i| entry(format!("f{i:04}").as_bytes(), i * 10 + 1, 7, false))
        .collect();
    let mut manifest = Manifest::new(entries.clone(), Vec::new(), true);
    let before = manifest.total_bytes();
    let mut changed = entries[500].clone();
    changed.entry.set_etag("\"changed\"".into());
    changed.entry.size += 4;
    let mut last = entries[999].clone();
    last.entry.set_etag("\"last\"".into());
    manifest.replace(vec![
        last.clone(),
        entry(b"absent", 1, 1, false),
        changed.clone(),
    ]);
    let mut expected = entries;
    expected[500] = changed;
    expected[999] = last;
    assert_eq!(manifest.iter().collect::<Vec<_>>(), expected);
    assert_eq!(manifest.total_bytes(), before + 4);
    assert_eq!(manifest.get(&"absent".into()), None);
}

#[test]
fn runs_of_separate_ranges_merge_by_whole_blocks() {
    // As a parallel listing gives them: each run one stretch of keys, the
    // stretches out of order, one path listed twice.
    let n = RUN_ENTRIES * 3;
    let mut builder = ManifestBuilder::default();
    for stretch in [2, 0, 1] {
        for i in stretch * RUN_ENTRIES..(stretch + 1) * RUN_ENTRIES {
            builder.push(entry(
                format!("k/{i:08}").as_bytes(),
                i as u64 + 1,
                5,
                false,
            ));
        }
    }
    builder.push(entry(b"k/00000100", 999, 5, false));
    let manifest = builder.finish(Vec::new(), true);
    assert_eq!(manifest.len(), n);
    let all: Vec<ManifestEntry> = manifest.iter().collect();
    assert!(all.windows(2).all(|w| w[0].path < w[1].path));
    assert_eq!(
        manifest.get(&"k/00000100".into()).map(|e| e.size),
        Some(101)
    );
    let files: u64 = all
        .iter()
        .filter(|e| e.entry.kind == EntryKind::File)
        .map(|e| e.entry.size)
        .sum();
    assert_eq!(manifest.total_bytes(), files);
}

#[test]
fn a_tiny_memory_budget_spills_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<ManifestEntry> = (0..20_000u64)
        .map(|i| {
            // Out of order, a few duplicates, every kind of extra.
            let k = (i * 7919) % 20_000;
            entry(
                format!("p/{:03}/f{k:06}", k % 97).as_bytes(),
                k + 1,
                k as i64,
                k % 3 == 0,
            )
        })
        .collect();
    let in_memory = Manifest::new(entries.clone(), Vec::new(), true);
    let mut builder = ManifestBuilder::with_budget(4096, dir.path());
    builder.run_entries = 1000;
    for e in entries {
        builder.push(e);
    }
    let spilled = builder.finish(vec!["p/001".into()], true);
    assert!(
        spilled.spilled_bytes() > 100_000,
        "{}",
        spilled.spilled_bytes()
    );
    assert!(spilled.encoded_bytes() < in_memory.encoded_bytes() / 2);
    assert_eq!(
        spilled.iter().collect::<Vec<_>>(),
        in_memory.iter().collect::<Vec<_>>()
    );
    assert_eq!(spilled.len(), in_memory.len());
    assert_eq!(spilled.total_bytes(), in_memory.total_bytes());
    let probe = RelPath::from(format!("p/{:03}/f{:06}", 9741 % 97, 9741).as_str());
    assert_eq!(spilled.get(&probe), in_memory.get(&probe));
    assert!(spilled.get(&probe).is_some());
    assert_eq!(spilled.read_failure(), None);
    assert_eq!(
        spilled.into_iter().collect::<Vec<_>>(),
        in_memory.into_iter().collect::<Vec<_>>()
    );
}
