//! Fixtures for tests that need scans and plans without touching a disk.

use crate::storage::Listing;
use crate::types::{Entry, EntryKind, Manifest, ManifestEntry};
use crate::uri::Location;

use super::{Scan, SyncOptions, SyncPlan, build_plan};

/// A listing from `(path, size, mtime)`; a `None` size is a directory.
pub fn listing(entries: &[(&str, Option<u64>, i64)]) -> Listing {
    let entries = entries
        .iter()
        .map(|(path, size, mtime)| ManifestEntry {
            path: (*path).into(),
            entry: match size {
                Some(size) => Entry::file(*size, *mtime, 0o644),
                None => Entry {
                    kind: EntryKind::Dir,
                    size: 0,
                    mtime_ns: *mtime,
                    mode: 0o755,
                    extra: None,
                },
            },
        })
        .collect();
    Listing {
        manifest: Manifest::new(entries, Vec::new(), true),
        issues: Vec::new(),
        leftovers: Vec::new(),
    }
}

/// Options with `--delete`, a 100-byte delta threshold and 64 KiB blocks.
pub fn options() -> SyncOptions {
    SyncOptions {
        delete: true,
        max_delete: None,
        list_requests: None,
        memory_budget: None,
        archive: false,
        checksum: false,
        delta_threshold: 100,
        block_size: 65536,
        allow_empty_source: false,
        filters: Vec::new(),
        remote_signature: Default::default(),
        unverified_rebuilds: false,
        selection: Default::default(),
        files_from: None,
        backup: None,
        storage_class: None,
        sidecars: Default::default(),
    }
}

/// A local `/s` → `/d` plan from two listings.
pub fn plan_of(source: Listing, destination: Listing, options: SyncOptions) -> SyncPlan {
    build_plan(
        Location::Local("/s".into()),
        Location::Local("/d".into()),
        &Scan {
            source,
            destination,
            compared: None,
        },
        options,
    )
}
