//! The object-store interface itself, one set of bodies run against every
//! store on its real server: S3 (moto), Azure Blob Storage (azurite), GCS
//! (fake-gcs-server) and SFTP (OpenSSH's sshd), all started by scripts/test.sh. What `sync/` relies on — paged listings with
//! metadata, pinned ranged reads, conditional writes, server-side copies, the
//! staged family, limits enforced before a request — must hold on each.
//! (Local disks are not object stores; tests/conformance.rs runs the sync's
//! own promises on them too.)

mod util;

use bytes::Bytes;
use hugesync::filter::Filter;
use hugesync::storage::body::{BodySource, BodySums};
use hugesync::storage::object::{CopyRange, CopySource, PlannedPart};
use hugesync::storage::objects::{self, SmallObject};
use hugesync::storage::{
    AzureSettings, Expect, GcsSettings, ListOptions, ObjectMeta, ObjectStore, RebuildCheck,
    RemoteErrorKind, S3Settings, ScanCounter, SftpSettings, SharedStore, Storage, StorageError,
    StoreSettings,
};
use hugesync::uri::Location;
use util::azure::Container;
use util::gcs::GcsBucket;
use util::noise;
use util::s3::Bucket;

/// Listing pages this small make paging cheap to test.
const PAGE: u32 = 7;

/// Requests are retried twice, quickly: the servers are local.
fn retry() -> hugesync::retry::RetryPolicy {
    hugesync::retry::RetryPolicy::new(
        2,
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(30),
    )
}

/// A store on a fresh bucket, container or directory of its own, with what
/// keeps that alive for the test.
struct Fixture {
    store: Made,
    _holds: Box<dyn std::any::Any>,
}

/// A store, or where to open one (in the test's runtime).
enum Made {
    At(Location, Box<StoreSettings>),
    Store(SharedStore),
}

async fn open(location: Location, settings: StoreSettings) -> SharedStore {
    match Storage::open(&location, &settings).await.unwrap() {
        Storage::Object(store) => store,
        Storage::Local(_) => unreachable!("an object store location"),
    }
}

/// Each store's fixture, or `None` (with a note) where its server is not
/// running outside scripts/test.sh.
mod fixtures {
    use super::*;

    pub fn s3() -> Option<Fixture> {
        util::server_running("HUGESYNC_TEST_S3_ENDPOINT")?;
        let bucket = Bucket::new();
        // SAFETY of the environment: the SDK reads credentials from it;
        // every test of this binary sets the same values.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "test");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
        let settings = StoreSettings {
            s3: S3Settings {
                endpoint_url: Some(bucket.endpoint.clone()),
                path_style: true,
                region: Some("us-east-1".into()),
                list_page_size: Some(PAGE),
                ..S3Settings::default()
            },
            retry: retry(),
            ..StoreSettings::default()
        };
        let location = Location::parse(&format!("s3://{}/root/", bucket.name)).unwrap();
        Some(Fixture {
            store: Made::At(location, Box::new(settings)),
            _holds: Box::new(bucket),
        })
    }

    pub fn azure() -> Option<Fixture> {
        util::server_running("HUGESYNC_TEST_AZURE_ENDPOINT")?;
        let container = Container::new();
        let settings = StoreSettings {
            azure: AzureSettings {
                connection_string: Some(util::azure::connection_string(&container.endpoint)),
                list_page_size: Some(PAGE),
                ..AzureSettings::default()
            },
            retry: retry(),
            ..StoreSettings::default()
        };
        let location = Location::parse(&format!("az://{}/root/", container.name)).unwrap();
        Some(Fixture {
            store: Made::At(location, Box::new(settings)),
            _holds: Box::new(container),
        })
    }

    /// GCS composing parts (`chunked`: keeping them as chunks of the object;
    /// `streamed`: taking large uploads as one resumable stream instead).
    fn gcs(chunked: bool, streamed: bool) -> Option<Fixture> {
        util::server_running("HUGESYNC_TEST_GCS_ENDPOINT")?;
        let bucket = GcsBucket::new();
        let settings = StoreSettings {
            gcs: GcsSettings {
                endpoint_url: Some(bucket.endpoint.clone()),
                list_page_size: Some(PAGE),
                chunked_objects: chunked,
                composite_uploads: !streamed,
                storage_class: None,
                metadata_compat: None,
            },
            retry: retry(),
            ..StoreSettings::default()
        };
        let location = Location::parse(&format!("gs://{}/root/", bucket.name)).unwrap();
        Some(Fixture {
            store: Made::At(location, Box::new(settings)),
            _holds: Box::new(bucket),
        })
    }

    pub fn gcs_composite() -> Option<Fixture> {
        gcs(false, false)
    }

    pub fn gcs_chunked() -> Option<Fixture> {
        gcs(true, false)
    }

    pub fn gcs_streamed() -> Option<Fixture> {
        gcs(false, true)
    }

    pub fn sftp() -> Option<Fixture> {
        util::server_running("HUGESYNC_TEST_SSH_CONFIG")?;
        let remote = util::sftp::RemoteDir::new();
        let settings = StoreSettings {
            sftp: SftpSettings {
                config_file: Some(util::sftp::config().into()),
                ..SftpSettings::default()
            },
            retry: retry(),
            ..StoreSettings::default()
        };
        let location = Location::parse(&remote.url("")).expect("the test server's location parses");
        Some(Fixture {
            store: Made::At(location, Box::new(settings)),
            _holds: Box::new(remote),
        })
    }

    /// This process's memory, every family on, pages as small as the others'.
    pub fn memory() -> Option<Fixture> {
        use hugesync::storage::memory::{MemoryOptions, MemoryStore};
        let options = MemoryOptions {
            streams: true,
            page_size: PAGE as usize,
            ..MemoryOptions::default()
        };
        let store = MemoryStore::new(&util::unique_name(), "root/", options, &retry());
        Some(Fixture {
            store: Made::Store(std::sync::Arc::new(store)),
            _holds: Box::new(()),
        })
    }

    /// Memory without any optional family: what the engine does for a
    /// store that only has the core.
    pub fn memory_core_only() -> Option<Fixture> {
        use hugesync::storage::memory::{MemoryOptions, MemoryStore};
        let options = MemoryOptions {
            staged: false,
            staged_copies: false,
            streams: false,
            page_size: PAGE as usize,
            ..MemoryOptions::default()
        };
        let store = MemoryStore::new(&util::unique_name(), "root/", options, &retry());
        Some(Fixture {
            store: Made::Store(std::sync::Arc::new(store)),
            _holds: Box::new(()),
        })
    }
}

/// Runs one body against the fixture `make` makes, on a runtime of its own
/// (the fixtures' own helpers block on theirs, so they are made outside it).
fn run<B, BF>(make: fn() -> Option<Fixture>, body: B)
where
    B: FnOnce(SharedStore) -> BF,
    BF: std::future::Future<Output = ()>,
{
    let Some(fixture) = make() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = match &fixture.store {
        Made::At(location, settings) => {
            runtime.block_on(open(location.clone(), (**settings).clone()))
        }
        Made::Store(store) => store.clone(),
    };
    runtime.block_on(body(store));
    drop(runtime);
    drop(fixture);
}

/// One test per body on one store: a failure on one store no longer hides
/// the others.
macro_rules! conformance {
    ($store:ident: $($body:ident),* $(,)?) => {
        mod $store {
            $(
                #[test]
                fn $body() {
                    super::run(super::fixtures::$store, super::$body);
                }
            )*
        }
    };
}

macro_rules! every_body {
    ($($store:ident),* $(,)?) => {
        $(
            conformance!($store:
                listings_page_and_carry_size_version_and_metadata,
                ranged_reads_are_pinned_to_a_version,
                conditional_writes_refuse_a_changed_destination,
                staged_objects_join_uploaded_and_copied_ranges,
                copies_and_batched_deletes,
                limits_are_enforced_before_the_server_is_asked,
                readable_urls_serve_the_object_to_any_client,
                streams_make_the_object_front_to_back_and_check_it,
                a_listing_split_across_requests_equals_the_sequential_one,
                entries_looked_up_by_path_are_what_a_listing_says,
            );
        )*
    };
}

every_body!(
    s3,
    azure,
    gcs_composite,
    gcs_chunked,
    gcs_streamed,
    sftp,
    memory,
    memory_core_only,
);

/// Metadata with an mtime of `mtime` whole seconds (SFTP keeps no finer).
fn meta(mtime: i64) -> ObjectMeta {
    ObjectMeta {
        mtime_ns: Some(mtime * 1_000_000_000),
        mode: Some(0o640),
        ..ObjectMeta::default()
    }
}

async fn put(store: &dyn ObjectStore, key: &str, bytes: &[u8], expect: Expect<'_>) -> String {
    try_put(store, key, bytes, expect).await.unwrap()
}

async fn try_put(
    store: &dyn ObjectStore,
    key: &str,
    bytes: &[u8],
    expect: Expect<'_>,
) -> Result<String, StorageError> {
    let bytes = Bytes::copy_from_slice(bytes);
    // Each store's own body checksum (S3's CRC64NVME, elsewhere MD5).
    let sums = BodySums::of(&bytes, store.limits().body_checksum);
    store
        .put(
            key,
            BodySource::Memory(&bytes),
            bytes.len() as u64,
            &meta(42),
            sums,
            expect,
        )
        .await
}

/// The metadata a store gives back, as written: a file on an SSH server also
/// has an owner, which was not asked for.
fn as_written(mut got: ObjectMeta) -> ObjectMeta {
    got.uid = None;
    got.gid = None;
    got
}

/// The full key of `rel` below the store's root (`root/` in a bucket; the
/// test's own directory on the SSH server). Leaked: a test's few keys live
/// as long as it does.
fn key(store: &dyn ObjectStore, rel: &str) -> &'static str {
    Box::leak(format!("{}{rel}", store.prefix()).into_boxed_str())
}

fn kind(error: &StorageError) -> Option<RemoteErrorKind> {
    match error {
        StorageError::Remote { kind, .. } => Some(*kind),
        _ => None,
    }
}

async fn read_all(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    match objects::read_small(store, key, 1 << 30).await.unwrap() {
        SmallObject::Bytes(bytes) => bytes.to_vec(),
        other => panic!("{key}: {other:?}"),
    }
}

/// Pages of 7 keys make a listing of these split many times: directories,
/// a flat run of counters (cut by ranges where the store lists them), names
/// that sort around `/`, a name past ASCII.
async fn a_listing_split_across_requests_equals_the_sequential_one(store: SharedStore) {
    let mut rels: Vec<String> = (0..60).map(|i| format!("a/{i:03}.bin")).collect();
    rels.extend((0..60).map(|i| format!("flat-{i:04}")));
    rels.extend(
        [
            "b.txt",
            "b-",
            "b/c/d.txt",
            "b/c/d/e.txt",
            "é/ü.txt",
            "x.y/z",
            "x/y",
            "z",
        ]
        .map(String::from),
    );
    for rel in &rels {
        put(
            store.as_ref(),
            key(store.as_ref(), rel),
            rel.as_bytes(),
            Expect::Absent,
        )
        .await;
    }
    let list = |in_flight: usize| {
        let store = store.clone();
        async move {
            let mut keys = Vec::new();
            let counter = ScanCounter::default();
            let stats = hugesync::storage::listing::list_all(
                store.as_ref(),
                in_flight,
                &counter,
                |found| {
                    keys.extend(found.objects.into_iter().map(|o| o.rel_key));
                },
            )
            .await
            .unwrap();
            keys.sort();
            (keys, stats)
        }
    };
    let (sequential, one) = list(1).await;
    let (parallel, many) = list(16).await;
    let name = store.scheme();
    assert_eq!(parallel, sequential, "{name}: {many:?}");
    for rel in &rels {
        assert!(sequential.contains(rel), "{name}: {rel} not listed");
    }
    assert_eq!(one.most_in_flight, 1, "{name}");
    if store.info().list_split != hugesync::storage::object::ListSplit::Whole {
        assert!(many.most_in_flight > 1, "{name}: {many:?}");
    }
}

/// What `apply --shard` and `finalize` check entries with: a few looked up
/// by HEAD, many by listing the key range they span, either way what a
/// listing of the whole tree says of them (absent ones too).
async fn entries_looked_up_by_path_are_what_a_listing_says(store: SharedStore) {
    use hugesync::storage::{LookupOptions, Storage};
    use hugesync::types::RelPath;
    let name = store.scheme();
    let mut rels: Vec<String> = (0..40).map(|i| format!("d/{i:03}.bin")).collect();
    rels.extend(["d/é/ü.txt", "e", "e-f", "f/g"].map(String::from));
    for (i, rel) in rels.iter().enumerate() {
        put(
            store.as_ref(),
            key(store.as_ref(), rel),
            &noise(10 + i, i as u64),
            Expect::Absent,
        )
        .await;
    }
    let listing = store_list(&store).await;
    let mut asked: Vec<RelPath> = rels
        .iter()
        .step_by(3)
        .map(|r| RelPath::from(r.as_str()))
        .collect();
    asked.extend(["d/000.bin.missing", "d/zz", "e-e"].map(RelPath::from));
    asked.sort();
    let paths: Vec<&RelPath> = asked.iter().collect();
    let side = Storage::Object(store.clone());
    let options = LookupOptions {
        symlinks: true,
        in_flight: 4,
    };
    // Many entries next to the keys around them (listed where the store
    // lists ranges), then few (a HEAD each).
    for around in [paths.len() as u64, 1_000_000] {
        let (found, lookups) = side.entries_at(&paths, around, options).await.unwrap();
        assert_eq!(found.len(), paths.len(), "{name}");
        for (path, now) in paths.iter().zip(&found) {
            let listed = listing.manifest.get(path);
            match (&listed, now) {
                (None, None) => {}
                (Some(listed), Some(now)) => {
                    assert_eq!(listed.kind, now.kind, "{name}: {path}");
                    assert!(
                        listed.same_size_and_mtime(now),
                        "{name}: {path}: {listed:?} {now:?}"
                    );
                    if let (Some(a), Some(b)) = (listed.etag(), now.etag()) {
                        assert!(hugesync::storage::same_version(a, b), "{name}: {path}");
                    }
                }
                _ => panic!("{name}: {path}: listed {listed:?}, looked up {now:?}"),
            }
        }
        let ranges = matches!(
            store.info().list_split,
            hugesync::storage::object::ListSplit::Ranges { .. }
        );
        if around == 1_000_000 || !ranges {
            assert_eq!(lookups.lists, 0, "{name}: {lookups:?}");
            assert_eq!(lookups.heads, paths.len() as u64, "{name}");
        } else {
            assert!(
                lookups.lists >= 1 && lookups.heads == 0,
                "{name}: {lookups:?}"
            );
        }
    }
}

async fn listings_page_and_carry_size_version_and_metadata(store: SharedStore) {
    let name = store.scheme();
    let mut written = Vec::new();
    for i in 0..(2 * PAGE + 3) {
        let key = format!("{}dir/{i:03}.bin", store.prefix());
        let version = put(store.as_ref(), &key, &noise(i as usize, 1), Expect::Absent).await;
        written.push((key, version));
    }
    // A sidecar is bookkeeping, never an entry.
    put(
        store.as_ref(),
        key(store.as_ref(), "dir/000.bin.hssig"),
        b"sig",
        Expect::Any,
    )
    .await;
    // An SSH server's listing pages by directories, in the server's
    // order, and names the directories themselves (`dir/`).
    let walks_dirs = name == "sftp";
    let mut pages = 0;
    let mut token = None;
    let mut listed = Vec::new();
    loop {
        let page = store
            .list_page(&hugesync::storage::object::ListQuery::default(), token)
            .await
            .unwrap();
        assert!(walks_dirs || page.objects.len() <= PAGE as usize, "{name}");
        pages += 1;
        listed.extend(page.objects);
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert!(walks_dirs || pages >= 3, "{name}: {pages} pages");
    if walks_dirs {
        assert!(listed.iter().any(|o| o.rel_key == "dir/"), "{name}");
        listed.retain(|o| !o.rel_key.ends_with('/'));
        listed.sort_by(|a, b| a.rel_key.cmp(&b.rel_key));
    }
    assert_eq!(listed.len(), written.len() + 1, "{name}");
    let objects = listed.iter().filter(|o| !o.rel_key.ends_with(".hssig"));
    for (object, (key, version)) in objects.zip(&written) {
        assert_eq!(
            format!("{}{}", store.prefix(), object.rel_key),
            *key,
            "{name}"
        );
        assert!(
            hugesync::storage::same_version(object.version.as_deref().unwrap(), version),
            "{name}"
        );
    }
    assert_eq!(
        listed
            .iter()
            .find(|o| o.rel_key == "dir/005.bin")
            .map(|o| o.size),
        Some(5),
        "{name}"
    );

    // The tree listing: implied directories, no sidecars, metadata where
    // the listing or a HEAD gives it.
    let listing = store_list(&store).await;
    let paths: Vec<String> = listing
        .manifest
        .iter()
        .map(|e| e.path.to_string())
        .collect();
    assert!(paths.contains(&"dir".to_string()), "{name}: {paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with(".hssig")), "{name}");
    let head = store
        .head(key(store.as_ref(), "dir/003.bin"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.size, 3, "{name}");
    assert_eq!(as_written(head.meta), meta(42), "{name}");
    assert!(
        store
            .head(key(store.as_ref(), "missing"))
            .await
            .unwrap()
            .is_none(),
        "{name}"
    );
}

async fn store_list(store: &SharedStore) -> hugesync::storage::Listing {
    let filter = Filter::new(&[]).unwrap();
    objects::list_tree(
        store.as_ref(),
        &filter,
        ListOptions {
            symlinks: true,
            list_requests: None,
            memory_budget: None,
        },
        &ScanCounter::default(),
    )
    .await
    .unwrap()
}

async fn ranged_reads_are_pinned_to_a_version(store: SharedStore) {
    let name = store.scheme();
    let bytes = noise(300_000, 7);
    let version = put(
        store.as_ref(),
        key(store.as_ref(), "r.bin"),
        &bytes,
        Expect::Absent,
    )
    .await;
    let range = objects::read_range(
        store.as_ref(),
        key(store.as_ref(), "r.bin"),
        1000,
        5000,
        Some(&version),
    )
    .await
    .unwrap();
    assert_eq!(&range[..], &bytes[1000..6000], "{name}");
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(objects::read_object(
        store.clone(),
        key(store.as_ref(), "r.bin"),
        bytes.len() as u64,
        Some(&version),
    ))
    .await
    .unwrap();
    let streamed = chunks.concat();
    assert_eq!(streamed, bytes, "{name}");
    // Replaced: a read pinned to the old version fails, never mixes.
    put(
        store.as_ref(),
        key(store.as_ref(), "r.bin"),
        b"other",
        Expect::Any,
    )
    .await;
    let stale = objects::read_range(
        store.as_ref(),
        key(store.as_ref(), "r.bin"),
        0,
        3,
        Some(&version),
    )
    .await
    .unwrap_err();
    assert_eq!(
        kind(&stale),
        Some(RemoteErrorKind::PreconditionFailed),
        "{name}: {stale}"
    );
}

async fn conditional_writes_refuse_a_changed_destination(store: SharedStore) {
    let name = store.scheme();
    // fake-gcs-server ignores ifGenerationMatch on every write
    // (TESTING.md): GCS's refusals are the real service's, and the
    // conditions our requests carry are unit-tested in storage::gcs.
    let refuses = name != "gs";
    let first = put(
        store.as_ref(),
        key(store.as_ref(), "c.txt"),
        b"one",
        Expect::Absent,
    )
    .await;
    if refuses {
        let again = try_put(
            store.as_ref(),
            key(store.as_ref(), "c.txt"),
            b"two",
            Expect::Absent,
        )
        .await
        .unwrap_err();
        assert_eq!(
            kind(&again),
            Some(RemoteErrorKind::PreconditionFailed),
            "{name}: {again}"
        );
    }
    let second = put(
        store.as_ref(),
        key(store.as_ref(), "c.txt"),
        b"two",
        Expect::Version(&first),
    )
    .await;
    // An SSH server's versions are size and mtime: "three" written over
    // "two" (same size, same mtime) is not seen as a change there.
    if refuses && name != "sftp" {
        let stale = try_put(
            store.as_ref(),
            key(store.as_ref(), "c.txt"),
            b"three",
            Expect::Version(&first),
        )
        .await
        .unwrap_err();
        assert_eq!(
            kind(&stale),
            Some(RemoteErrorKind::PreconditionFailed),
            "{name}: {stale}"
        );
    }
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "c.txt")).await,
        b"two",
        "{name}"
    );

    // Metadata rewritten in place, under the same condition.
    let updated = store
        .set_metadata(
            key(store.as_ref(), "c.txt"),
            &meta(7),
            Expect::Version(&second),
        )
        .await
        .unwrap();
    let head = store
        .head(key(store.as_ref(), "c.txt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.meta.mtime_ns, meta(7).mtime_ns, "{name}");
    assert!(
        hugesync::storage::same_version(head.version.as_deref().unwrap(), &updated),
        "{name}"
    );
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "c.txt")).await,
        b"two",
        "{name}"
    );
}

async fn staged_objects_join_uploaded_and_copied_ranges(store: SharedStore) {
    if store.staged().is_none() {
        return; // a store of the core alone stages nothing
    }
    let name = store.scheme();
    let limits = *store.limits();
    if !limits.range_copy() {
        return whole_object_staging(store).await;
    }
    let old = noise(12 * 1024 * 1024, 9);
    let old_version = put(
        store.as_ref(),
        key(store.as_ref(), "big.bin"),
        &old,
        Expect::Absent,
    )
    .await;
    // Parts: new bytes (at the floor), then a copied range of the old
    // object, then a short last part of new bytes.
    let first = noise(limits.min_part.max(64 * 1024) as usize, 10);
    let copied = (1_000_000u64, 6 * 1024 * 1024u64);
    let last = b"tail".to_vec();
    let plan = [
        PlannedPart {
            len: first.len() as u64,
            copy_from: None,
        },
        PlannedPart {
            len: copied.1,
            copy_from: Some(copied.0),
        },
        PlannedPart {
            len: last.len() as u64,
            copy_from: None,
        },
    ];
    limits.check_parts(&plan, old.len() as u64).unwrap();

    let upload = store
        .staged()
        .expect("staged")
        .begin_staged(key(store.as_ref(), "big.bin"), &meta(99))
        .await
        .unwrap();
    let first_bytes = Bytes::from(first.clone());
    let md5 = hugesync::storage::body::md5_of(&first_bytes);
    let p1 = store
        .staged()
        .expect("staged")
        .stage_bytes(
            &upload,
            1,
            0,
            BodySource::Memory(&first_bytes),
            first.len() as u64,
            BodySums::of(&first_bytes, store.limits().body_checksum),
        )
        .await
        .unwrap();
    assert!(p1.md5.is_none_or(|m| m == md5), "{name}");
    let source = CopySource {
        store: store.as_ref(),
        key: key(store.as_ref(), "big.bin"),
        version: Some(&old_version),
    };
    // A copy is checked against the MD5 its bytes must have: a range that
    // is not what the caller expects fails (S3 keeps the part until it is
    // staged again or the upload aborted; it is never committed).
    let range = |expected_md5| CopyRange {
        start: copied.0,
        len: copied.1,
        expected_md5: Some(expected_md5),
        expected_crc32c: None,
    };
    // SFTP's copy-data carries no checksum: a store that cannot check a
    // copied range says so (no MD5 on the part; the plan says so too).
    let checks_copies = limits.rebuild_check != RebuildCheck::SizeOnly;
    let at = first.len() as u64;
    if checks_copies {
        let wrong = store
            .staged_copies()
            .expect("staged copies")
            .stage_copy(&upload, 2, at, source, range([7u8; 16]))
            .await
            .unwrap_err();
        assert_eq!(
            kind(&wrong),
            Some(RemoteErrorKind::ChecksumMismatch),
            "{name}: {wrong}"
        );
    }
    let copied_md5 =
        hugesync::storage::body::md5_of(&old[copied.0 as usize..(copied.0 + copied.1) as usize]);
    let p2 = store
        .staged_copies()
        .expect("staged copies")
        .stage_copy(&upload, 2, at, source, range(copied_md5))
        .await
        .unwrap();
    assert_eq!(
        p2.md5,
        checks_copies.then_some(copied_md5),
        "{name}: the copy was checked where the store can"
    );
    let last_bytes = Bytes::from(last.clone());
    let p3 = store
        .staged()
        .expect("staged")
        .stage_bytes(
            &upload,
            3,
            at + copied.1,
            BodySource::Memory(&last_bytes),
            4,
            BodySums::NONE,
        )
        .await
        .unwrap();
    // What is staged can be listed (to resume), in order — except in an
    // SSH server's temp file, where a resumed upload writes every part
    // again in place.
    let staged = store
        .staged()
        .expect("staged")
        .list_staged(&upload)
        .await
        .unwrap();
    if name == "sftp" {
        assert!(staged.is_empty(), "{name}");
    } else {
        let numbers: Vec<u32> = staged.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 3], "{name}");
        assert_eq!(staged[1].size, copied.1, "{name}");
    }
    // Nothing is visible before the commit.
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "big.bin"))
            .await
            .len(),
        old.len()
    );

    // A commit under a stale condition is refused — where the server
    // honours the condition: moto ignores it on CompleteMultipartUpload,
    // which is why the sync also looks once more before committing
    // (tests/reliability.rs and integration_azure.rs cover that path).
    if name == "az" {
        let stale = store
            .staged()
            .expect("staged")
            .commit_staged(
                &upload,
                &[p1.clone(), p2.clone(), p3.clone()],
                &meta(99),
                Expect::Absent,
            )
            .await
            .unwrap_err();
        assert_eq!(
            kind(&stale),
            Some(RemoteErrorKind::PreconditionFailed),
            "{name}: {stale}"
        );
    }
    store
        .staged()
        .expect("staged")
        .commit_staged(
            &upload,
            &[p1, p2, p3],
            &meta(99),
            Expect::Version(&old_version),
        )
        .await
        .unwrap();
    let mut expected = first.clone();
    expected.extend_from_slice(&old[copied.0 as usize..(copied.0 + copied.1) as usize]);
    expected.extend_from_slice(&last);
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "big.bin")).await,
        expected,
        "{name}"
    );
    assert_eq!(
        store
            .head(key(store.as_ref(), "big.bin"))
            .await
            .unwrap()
            .unwrap()
            .meta
            .mtime_ns,
        meta(99).mtime_ns,
        "{name}"
    );

    // An abandoned upload leaves no object behind.
    let abandoned = store
        .staged()
        .expect("staged")
        .begin_staged(key(store.as_ref(), "never.bin"), &meta(1))
        .await
        .unwrap();
    store
        .staged()
        .expect("staged")
        .stage_bytes(
            &abandoned,
            1,
            0,
            BodySource::Memory(&last_bytes),
            4,
            BodySums::NONE,
        )
        .await
        .unwrap();
    store
        .staged()
        .expect("staged")
        .abort_staged(&abandoned)
        .await
        .unwrap();
    assert!(
        store
            .head(key(store.as_ref(), "never.bin"))
            .await
            .unwrap()
            .is_none(),
        "{name}"
    );
}

/// Stores that compose whole objects (GCS): an existing object becomes a
/// part as it is — the append case — beside uploaded parts; a byte range of
/// one cannot; more parts than one compose takes are joined in a tree; the
/// temporaries never outlive the commit or an abort.
async fn whole_object_staging(store: SharedStore) {
    let name = store.scheme();
    let old = noise(300_000, 31);
    let old_version = put(
        store.as_ref(),
        key(store.as_ref(), "log.bin"),
        &old,
        Expect::Absent,
    )
    .await;
    let source = CopySource {
        store: store.as_ref(),
        key: key(store.as_ref(), "log.bin"),
        version: Some(&old_version),
    };
    let upload = store
        .staged()
        .expect("staged")
        .begin_staged(key(store.as_ref(), "log.bin"), &meta(5))
        .await
        .unwrap();
    let whole = |expected_md5| CopyRange {
        start: 0,
        len: old.len() as u64,
        expected_md5: Some(expected_md5),
        expected_crc32c: None,
    };
    let wrong = store
        .staged_copies()
        .expect("staged copies")
        .stage_copy(&upload, 1, 0, source, whole([7u8; 16]))
        .await
        .unwrap_err();
    assert_eq!(
        kind(&wrong),
        Some(RemoteErrorKind::ChecksumMismatch),
        "{name}: {wrong}"
    );
    // By CRC32C alone (what a composite object carries on GCS): a wrong one
    // is refused too, the right one accepted.
    let by_crc = |crc| CopyRange {
        start: 0,
        len: old.len() as u64,
        expected_md5: None,
        expected_crc32c: Some(crc),
    };
    let wrong = store
        .staged_copies()
        .expect("staged copies")
        .stage_copy(&upload, 1, 0, source, by_crc(0xdead_beef))
        .await
        .unwrap_err();
    assert_eq!(
        kind(&wrong),
        Some(RemoteErrorKind::ChecksumMismatch),
        "{name}: {wrong}"
    );
    store
        .staged_copies()
        .expect("staged copies")
        .stage_copy(&upload, 1, 0, source, by_crc(crc32c::crc32c(&old)))
        .await
        .unwrap();
    let old_md5 = hugesync::storage::body::md5_of(&old);
    let p1 = store
        .staged_copies()
        .expect("staged copies")
        .stage_copy(&upload, 1, 0, source, whole(old_md5))
        .await
        .unwrap();
    assert_eq!(
        p1.md5,
        Some(old_md5),
        "{name}: the reused object was checked"
    );
    let part_of_it = CopyRange {
        start: 10,
        len: 100,
        expected_md5: None,
        expected_crc32c: None,
    };
    assert!(
        store
            .staged_copies()
            .expect("staged copies")
            .stage_copy(&upload, 1, 0, source, part_of_it)
            .await
            .is_err(),
        "{name}: no byte ranges"
    );
    let tail = Bytes::from(noise(70_000, 32));
    let p2 = store
        .staged()
        .expect("staged")
        .stage_bytes(
            &upload,
            2,
            old.len() as u64,
            BodySource::Memory(&tail),
            tail.len() as u64,
            BodySums::md5(Some(hugesync::storage::body::md5_of(&tail))),
        )
        .await
        .unwrap();
    let staged = store
        .staged()
        .expect("staged")
        .list_staged(&upload)
        .await
        .unwrap();
    assert_eq!(
        staged.iter().map(|p| p.number).collect::<Vec<_>>(),
        [2],
        "{name}: uploaded parts are listed (a reused object is not staged)"
    );
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "log.bin")).await,
        old,
        "{name}"
    );
    store
        .staged()
        .expect("staged")
        .commit_staged(&upload, &[p1, p2], &meta(5), Expect::Version(&old_version))
        .await
        .unwrap();
    let mut appended = old.clone();
    appended.extend_from_slice(&tail);
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "log.bin")).await,
        appended,
        "{name}"
    );
    let head = store
        .head(key(store.as_ref(), "log.bin"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.meta.mtime_ns, meta(5).mtime_ns, "{name}");

    // 40 parts: more than one compose call takes.
    let many = store
        .staged()
        .expect("staged")
        .begin_staged(key(store.as_ref(), "many.bin"), &meta(6))
        .await
        .unwrap();
    let mut expected = Vec::new();
    let mut parts = Vec::new();
    for number in 1..=40u32 {
        let bytes = Bytes::from(noise(1000 + number as usize, number as u64));
        expected.extend_from_slice(&bytes);
        parts.push(
            store
                .staged()
                .expect("staged")
                .stage_bytes(
                    &many,
                    number,
                    expected.len() as u64 - bytes.len() as u64,
                    BodySource::Memory(&bytes),
                    bytes.len() as u64,
                    BodySums::NONE,
                )
                .await
                .unwrap(),
        );
    }
    store
        .staged()
        .expect("staged")
        .commit_staged(&many, &parts, &meta(6), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "many.bin")).await,
        expected,
        "{name}"
    );

    // Abandoned: nothing left behind, and nothing pending.
    let abandoned = store
        .staged()
        .expect("staged")
        .begin_staged(key(store.as_ref(), "never.bin"), &meta(1))
        .await
        .unwrap();
    store
        .staged()
        .expect("staged")
        .stage_bytes(
            &abandoned,
            1,
            0,
            BodySource::Memory(&tail),
            tail.len() as u64,
            BodySums::NONE,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .staged()
            .expect("staged")
            .list_pending()
            .await
            .unwrap()
            .len(),
        1,
        "{name}"
    );
    store
        .staged()
        .expect("staged")
        .abort_staged(&abandoned)
        .await
        .unwrap();
    assert!(
        store
            .head(key(store.as_ref(), "never.bin"))
            .await
            .unwrap()
            .is_none(),
        "{name}"
    );
    assert!(
        store
            .staged()
            .expect("staged")
            .list_pending()
            .await
            .unwrap()
            .is_empty(),
        "{name}"
    );
    // The temporaries never show as entries.
    let listing = store_list(&store).await;
    let paths: Vec<String> = listing
        .manifest
        .iter()
        .map(|e| e.path.to_string())
        .collect();
    assert_eq!(paths, ["log.bin", "many.bin"], "{name}");
}

async fn copies_and_batched_deletes(store: SharedStore) {
    let name = store.scheme();
    let version = put(
        store.as_ref(),
        key(store.as_ref(), "a.bin"),
        &noise(70_000, 3),
        Expect::Absent,
    )
    .await;
    let source = CopySource {
        store: store.as_ref(),
        key: key(store.as_ref(), "a.bin"),
        version: Some(&version),
    };
    assert!(store.copies_from(store.as_ref()), "{name}");
    store
        .copy_object(
            source,
            key(store.as_ref(), "copy/a.bin"),
            None,
            Expect::Absent,
        )
        .await
        .unwrap();
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "copy/a.bin")).await,
        noise(70_000, 3),
        "{name}"
    );
    assert_eq!(
        as_written(
            store
                .head(key(store.as_ref(), "copy/a.bin"))
                .await
                .unwrap()
                .unwrap()
                .meta
        ),
        meta(42),
        "{name}: the copy keeps the metadata"
    );
    let keys = vec![
        key(store.as_ref(), "a.bin").to_string(),
        key(store.as_ref(), "copy/a.bin").to_string(),
        key(store.as_ref(), "never-there").to_string(),
    ];
    store.delete_keys(&keys).await.unwrap();
    for key in &keys {
        assert!(store.head(key).await.unwrap().is_none(), "{name}: {key}");
    }
}

async fn limits_are_enforced_before_the_server_is_asked(store: SharedStore) {
    let name = store.scheme();
    let limits = *store.limits();
    // One part too many: moto rejects part 10,001, azurite accepts block
    // 50,001; our check refuses both first.
    let too_many = vec![
        PlannedPart {
            len: limits.min_part.max(1),
            copy_from: None,
        };
        limits.max_parts + 1
    ];
    assert!(limits.check_parts(&too_many, 0).is_err(), "{name}");
    // A copy range past the source's end (moto and azurite truncate it).
    let past_end = [PlannedPart {
        len: 100,
        copy_from: Some(950),
    }];
    assert!(limits.check_parts(&past_end, 1000).is_err(), "{name}");
    if store.staged().is_none() {
        return; // no parts to stage
    }
    // A part over the ceiling is refused by the store itself, unsent.
    let upload = store
        .staged()
        .expect("staged")
        .begin_staged(key(store.as_ref(), "x.bin"), &meta(1))
        .await
        .unwrap();
    let empty = Bytes::new();
    let refused = store
        .staged()
        .expect("staged")
        .stage_bytes(
            &upload,
            1,
            0,
            BodySource::Memory(&empty),
            limits.max_part + 1,
            BodySums::NONE,
        )
        .await
        .unwrap_err();
    assert!(
        kind(&refused).is_none(),
        "{name}: refused locally: {refused}"
    );
    let refused = store
        .staged()
        .expect("staged")
        .stage_bytes(
            &upload,
            limits.max_parts as u32 + 1,
            0,
            BodySource::Memory(&empty),
            1,
            BodySums::NONE,
        )
        .await
        .unwrap_err();
    assert!(
        kind(&refused).is_none(),
        "{name}: refused locally: {refused}"
    );
    let _ = store.staged().expect("staged").abort_staged(&upload).await;
}

/// What Put Block From URL (S3 → Azure, Azure → Azure) hands the
/// destination service: a URL a plain HTTP client can read, no credentials.
async fn readable_urls_serve_the_object_to_any_client(store: SharedStore) {
    let name = store.scheme();
    // An SSH server grants no URLs: its copies are within the session.
    let Some(urls) = store.readable_urls() else {
        return;
    };
    let bytes = noise(100_000, 12);
    put(
        store.as_ref(),
        key(store.as_ref(), "u.bin"),
        &bytes,
        Expect::Absent,
    )
    .await;
    let grant = urls
        .readable_url(
            key(store.as_ref(), "u.bin"),
            std::time::Duration::from_secs(300),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(grant.authorization.is_none(), "{name}: signed into the URL");
    let got = reqwest::get(&grant.url).await.unwrap();
    assert!(got.status().is_success(), "{name}: {}", got.status());
    assert!(got.bytes().await.unwrap() == bytes, "{name}");
}

async fn streams_make_the_object_front_to_back_and_check_it(store: SharedStore) {
    use hugesync::storage::object::{StreamAck, StreamEnd};
    if store.streams().is_none() {
        return;
    }
    let name = store.scheme();
    let data = Bytes::from(noise(3 * 256 * 1024 + 1000, 71));
    let end = StreamEnd {
        size: data.len() as u64,
        md5: hugesync::storage::body::md5_of(&data),
        crc32c: crc32c::crc32c(&data),
    };
    let piece = 256 * 1024;
    let upload = store
        .streams()
        .expect("streams")
        .begin_stream(key(store.as_ref(), "s.bin"), &meta(9), Expect::Absent)
        .await
        .unwrap();
    assert!(
        !format!("{upload:?}").contains("upload_id"),
        "{name}: the session is never printed"
    );
    // Pieces but the last are whole multiples of 256 KiB.
    let odd = data.slice(..1000);
    assert!(
        store
            .streams()
            .expect("streams")
            .stream_bytes(&upload, 0, BodySource::Memory(&odd), 1000, None)
            .await
            .is_err(),
        "{name}"
    );
    let first = data.slice(..2 * piece);
    let ack = store
        .streams()
        .expect("streams")
        .stream_bytes(
            &upload,
            0,
            BodySource::Memory(&first),
            2 * piece as u64,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ack, StreamAck::Persisted(2 * piece as u64), "{name}");
    assert!(
        store
            .head(key(store.as_ref(), "s.bin"))
            .await
            .unwrap()
            .is_none(),
        "{name}"
    );
    let held = store
        .streams()
        .expect("streams")
        .stream_persisted(&upload, 2 * piece as u64)
        .await
        .unwrap();
    assert_eq!(held, 2 * piece as u64, "{name}");
    let rest = data.slice(2 * piece..);
    let ack = store
        .streams()
        .expect("streams")
        .stream_bytes(
            &upload,
            held,
            BodySource::Memory(&rest),
            rest.len() as u64,
            Some(&end),
        )
        .await
        .unwrap();
    assert!(matches!(ack, StreamAck::Done(_)), "{name}: {ack:?}");
    assert_eq!(
        read_all(store.as_ref(), key(store.as_ref(), "s.bin")).await,
        data,
        "{name}"
    );
    let head = store
        .head(key(store.as_ref(), "s.bin"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.meta.mtime_ns, meta(9).mtime_ns, "{name}");

    // An end that is not the bytes sent is refused.
    let wrong = store
        .streams()
        .expect("streams")
        .begin_stream(key(store.as_ref(), "w.bin"), &meta(9), Expect::Absent)
        .await
        .unwrap();
    let small = data.slice(..piece);
    let bad_end = StreamEnd {
        crc32c: end.crc32c ^ 1,
        size: piece as u64,
        ..end
    };
    let refused = store
        .streams()
        .expect("streams")
        .stream_bytes(
            &wrong,
            0,
            BodySource::Memory(&small),
            piece as u64,
            Some(&bad_end),
        )
        .await;
    assert!(
        matches!(refused, Err(StorageError::Verification { .. })),
        "{name}: {refused:?}"
    );
    store
        .streams()
        .expect("streams")
        .abort_stream(&upload)
        .await
        .unwrap();
}
