//! One set of test bodies, each run as a `#[test]` of its own on every
//! backend: a local directory, an S3 prefix (moto), an Azure container prefix
//! (azurite), a GCS bucket prefix (fake-gcs-server) and a directory on an SSH
//! server (sshd), all started by scripts/test.sh. What a sync promises —
//! mirroring, idempotence, deletes only when asked and within limits,
//! filters, dry runs, attributes kept with `-a`, `check` finding a changed
//! byte — must not depend on where the bytes live. The HTTP stores also run
//! the bodies that need a proxy in front of their server (requests counted,
//! faults injected).

mod util;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use util::azure::Container;
use util::fault_proxy::{FaultProxy, Faults};
use util::gcs::GcsBucket;
use util::s3::Bucket;
use util::{Scratch, local, noise, sample_tree, set_mode, set_mtime, stderr_of, stdout_of, tree};

const MIB: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    S3,
    Azure,
    Gcs,
    Sftp,
}

impl Backend {
    /// Whether its test server is running (a note, and a skip, when not —
    /// a failure under scripts/test.sh).
    fn available(self) -> bool {
        let variable = match self {
            Backend::Local => return true,
            Backend::S3 => "HUGESYNC_TEST_S3_ENDPOINT",
            Backend::Azure => "HUGESYNC_TEST_AZURE_ENDPOINT",
            Backend::Gcs => "HUGESYNC_TEST_GCS_ENDPOINT",
            Backend::Sftp => "HUGESYNC_TEST_SSH_CONFIG",
        };
        util::server_running(variable).is_some()
    }

    /// How finely the backend keeps a file's mtime, in nanoseconds.
    fn time_grain(self) -> u128 {
        match self {
            Backend::Sftp => 1_000_000_000,
            _ => 1,
        }
    }
}

/// One side of a sync on a given backend.
enum Side {
    Local(PathBuf),
    S3(Bucket),
    Azure(Container),
    Gcs(GcsBucket),
    Sftp(util::sftp::RemoteDir),
}

impl Side {
    fn new(backend: Backend, scratch: &Scratch, name: &str) -> Side {
        match backend {
            Backend::Local => Side::Local(scratch.path(name)),
            Backend::S3 => Side::S3(Bucket::new()),
            Backend::Azure => Side::Azure(Container::new()),
            Backend::Gcs => Side::Gcs(GcsBucket::new()),
            Backend::Sftp => Side::Sftp(util::sftp::RemoteDir::new()),
        }
    }

    fn url(&self) -> String {
        match self {
            Side::Local(path) => path.display().to_string(),
            Side::S3(bucket) => bucket.url("root"),
            Side::Azure(container) => container.url("root"),
            Side::Gcs(bucket) => bucket.url("root"),
            Side::Sftp(remote) => remote.url("root"),
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Side::Local(_) => Vec::new(),
            Side::S3(bucket) => bucket.args().to_vec(),
            Side::Azure(_) | Side::Gcs(_) => Vec::new(),
            Side::Sftp(_) => vec!["--ssh-config".into(), util::sftp::config()],
        }
    }

    /// Environment the side needs (Azure's connection string, GCS's emulator).
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Side::Azure(container) => container.env().to_vec(),
            Side::Gcs(bucket) => bucket.env().to_vec(),
            _ => Vec::new(),
        }
    }

    fn put(&self, rel: &str, bytes: &[u8]) {
        match self {
            Side::Local(path) => {
                util::write_file(&path.join(rel), bytes);
            }
            Side::S3(bucket) => bucket.put(&format!("root/{rel}"), bytes),
            Side::Azure(container) => container.put(&format!("root/{rel}"), bytes),
            Side::Gcs(bucket) => bucket.put(&format!("root/{rel}"), bytes),
            // The server is this machine: its files are written on the disk.
            Side::Sftp(remote) => {
                util::write_file(&remote.join(&format!("root/{rel}")), bytes);
            }
        }
    }

    /// Every file below the root and its bytes.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        match self {
            Side::Sftp(remote) => Side::Local(remote.join("root")).files(),
            Side::Local(path) if !path.exists() => BTreeMap::new(),
            Side::Local(path) => walkdir::WalkDir::new(path)
                .into_iter()
                .map(Result::unwrap)
                .filter(|e| e.file_type().is_file())
                .map(|e| {
                    let rel = e.path().strip_prefix(path).unwrap().display().to_string();
                    (rel, fs::read(e.path()).unwrap())
                })
                .collect(),
            Side::S3(bucket) => bucket
                .keys()
                .into_iter()
                .filter_map(|key| {
                    let rel = key.strip_prefix("root/")?.to_string();
                    Some((rel, bucket.get(&key)))
                })
                .collect(),
            Side::Azure(container) => container
                .keys()
                .into_iter()
                .filter_map(|key| {
                    let rel = key.strip_prefix("root/")?.to_string();
                    Some((rel, container.get(&key)))
                })
                .collect(),
            Side::Gcs(bucket) => bucket
                .keys()
                .into_iter()
                .filter_map(|key| {
                    let rel = key.strip_prefix("root/")?.to_string();
                    Some((rel, bucket.get(&key)))
                })
                .collect(),
        }
    }

    /// The names below the root that are not directories (files and links),
    /// sorted.
    fn names(&self) -> Vec<String> {
        match self {
            Side::Sftp(remote) => Side::Local(remote.join("root")).names(),
            Side::Local(path) => walkdir::WalkDir::new(path)
                .min_depth(1)
                .sort_by_file_name()
                .into_iter()
                .map(Result::unwrap)
                .filter(|e| !e.file_type().is_dir())
                .map(|e| e.path().strip_prefix(path).unwrap().display().to_string())
                .collect(),
            Side::S3(bucket) => under_root(bucket.keys()),
            Side::Azure(container) => under_root(container.keys()),
            Side::Gcs(bucket) => under_root(bucket.keys()),
        }
    }

    /// A version of every entry below the root that a rewrite would change:
    /// the ETag or generation of an object, the inode and change time of a
    /// file.
    fn versions(&self) -> BTreeMap<String, String> {
        let names = self.names();
        names
            .into_iter()
            .map(|rel| {
                let key = format!("root/{rel}");
                let version = match self {
                    Side::Local(path) => file_version(&path.join(&rel)),
                    Side::Sftp(remote) => file_version(&remote.join(&key)),
                    Side::S3(bucket) => {
                        let head = bucket.head(&key).unwrap();
                        format!("{} {}", head.etag, head.last_modified)
                    }
                    Side::Azure(container) => container.head(&key).unwrap().etag,
                    Side::Gcs(bucket) => bucket.head(&key).unwrap().generation,
                };
                (rel, version)
            })
            .collect()
    }

    /// A proxy in front of the side's server, counting requests and
    /// injecting `faults` (HTTP stores only).
    fn proxy(&self, faults: Faults) -> Option<FaultProxy> {
        let server = match self {
            Side::S3(bucket) => bucket.endpoint.clone(),
            Side::Azure(container) => container
                .endpoint
                .trim_end_matches(&format!("/{}", util::azure::ACCOUNT))
                .to_string(),
            Side::Gcs(bucket) => bucket.endpoint.clone(),
            Side::Local(_) | Side::Sftp(_) => return None,
        };
        Some(FaultProxy::start(&server, faults))
    }

    /// The flags and environment that reach the side, through `proxy` when
    /// there is one.
    fn route(&self, proxy: Option<&FaultProxy>) -> (Vec<String>, Vec<(String, String)>) {
        match (self, proxy) {
            (Side::S3(_), Some(proxy)) => (proxy.args().to_vec(), Vec::new()),
            (Side::Azure(_), Some(proxy)) => (
                Vec::new(),
                vec![(
                    "AZURE_STORAGE_CONNECTION_STRING".into(),
                    util::azure::connection_string(&format!(
                        "{}/{}",
                        proxy.endpoint,
                        util::azure::ACCOUNT
                    )),
                )],
            ),
            (Side::Gcs(_), Some(proxy)) => (
                Vec::new(),
                vec![("STORAGE_EMULATOR_HOST".into(), proxy.endpoint.clone())],
            ),
            _ => (self.args(), self.env()),
        }
    }
}

/// The keys below `root/`, relative to it.
fn under_root(keys: Vec<String>) -> Vec<String> {
    keys.into_iter()
        .filter_map(|key| key.strip_prefix("root/").map(str::to_string))
        .collect()
}

/// A file's inode and change time: both change when it is rewritten.
fn file_version(path: &Path) -> String {
    let meta = fs::symlink_metadata(path).unwrap();
    format!("{} {}.{}", meta.ino(), meta.ctime(), meta.ctime_nsec())
}

fn source_tree(scratch: &Scratch) -> BTreeMap<String, Vec<u8>> {
    let files = [
        ("top.txt", b"top".to_vec()),
        ("data/one.bin", noise(70_000, 3)),
        ("data/two.bin", noise(1234, 4)),
        ("data/nested/three.txt", b"three".to_vec()),
        ("logs/run.log", b"log line".to_vec()),
    ];
    for (rel, bytes) in &files {
        scratch.write(&format!("src/{rel}"), bytes);
    }
    files.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Runs hugesync with `args` and what reaches `side` (through `proxy` when
/// given), with short stall and retry limits so that faults cost little time.
fn hugesync(
    scratch: &Scratch,
    side: &Side,
    proxy: Option<&FaultProxy>,
    args: &[&str],
) -> std::process::Output {
    let (flags, env) = side.route(proxy);
    scratch
        .cmd()
        .env("HUGESYNC_STALL_TIMEOUT", "2s")
        .env("HUGESYNC_RETRY_MAX_DELAY", "300ms")
        .envs(env)
        .args(args)
        .args(flags)
        .output()
        .unwrap()
}

fn sync_to(scratch: &Scratch, side: &Side, extra: &[&str]) -> std::process::Output {
    let src = local(&scratch.src());
    let url = side.url();
    let mut args = vec!["sync", "--yes", src.as_str(), url.as_str()];
    args.extend_from_slice(extra);
    hugesync(scratch, side, None, &args)
}

fn sync_from(scratch: &Scratch, side: &Side, to: &Path, extra: &[&str]) -> std::process::Output {
    let (url, to) = (side.url(), local(to));
    let mut args = vec!["sync", "--yes", url.as_str(), to.as_str()];
    args.extend_from_slice(extra);
    hugesync(scratch, side, None, &args)
}

/// `sync --yes --json FROM TO` through `proxy`: the summary report,
/// asserting success.
fn sync_json(
    scratch: &Scratch,
    side: &Side,
    proxy: &FaultProxy,
    from: &str,
    to: &str,
) -> serde_json::Value {
    let out = hugesync(
        scratch,
        side,
        Some(proxy),
        &["sync", "--yes", "--json", from, to],
    );
    summary_report(&out, &format!("sync {from} {to}"))
}

/// The summary report of a `--json` run, asserting it succeeded.
fn summary_report(out: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what}: {:?} {}{}",
        out.status,
        stderr_of(out),
        stdout_of(out)
    );
    stdout_of(out)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["event"] == "summary")
        .map(|e| e["report"].clone())
        .expect("a summary event")
}

fn mirrors_a_tree_and_a_rerun_changes_nothing(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    let expected = source_tree(&scratch);
    let out = sync_to(&scratch, &side, &[]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(side.files(), expected, "{backend:?}");
    let before = side.versions();

    // Through a counting proxy where the store speaks HTTP: the re-run
    // lists one page and writes nothing.
    let proxy = side.proxy(Faults::default());
    let (src, url) = (local(&scratch.src()), side.url());
    let again = hugesync(
        &scratch,
        &side,
        proxy.as_ref(),
        &["sync", "--yes", &src, &url],
    );
    assert!(again.status.success(), "{backend:?}: {}", stderr_of(&again));
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{backend:?}: {}",
        stdout_of(&again)
    );
    if let Some(proxy) = proxy {
        assert_eq!(proxy.writes(), 0, "{backend:?}: a no-op re-run wrote");
        assert_eq!(
            proxy.requests(),
            1,
            "{backend:?}: one listing page, no HEAD per object"
        );
    }
    assert_eq!(
        side.versions(),
        before,
        "{backend:?}: an entry was rewritten"
    );

    // --checksum: the checksums the listing carries (S3 ETags, Azure
    // Content-MD5, GCS md5Hash) against the local files' own: the listing
    // page and nothing more, no HEAD per file.
    let proxy = side.proxy(Faults::default());
    let again = hugesync(
        &scratch,
        &side,
        proxy.as_ref(),
        &["sync", "--yes", "--checksum", &src, &url],
    );
    assert!(again.status.success(), "{backend:?}: {}", stderr_of(&again));
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{backend:?}: {}",
        stdout_of(&again)
    );
    if let Some(proxy) = proxy {
        assert_eq!(proxy.requests(), 1, "{backend:?}: --checksum");
        assert_eq!(proxy.writes(), 0, "{backend:?}: --checksum wrote");
    }

    // The plan of an unchanged tree sends nothing.
    let plan = hugesync(&scratch, &side, None, &["plan", "--json", &src, &url]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout)
        .unwrap_or_else(|_| panic!("{backend:?}: {}", stderr_of(&plan)));
    assert_eq!(plan["stats"]["bytes_to_send"], 0, "{backend:?}: {plan}");
}

/// With `-a`, a tree goes up and comes back with its bytes, links, modes and
/// mtimes (to the backend's grain), and nothing else is left at the
/// destination.
fn a_tree_goes_up_and_comes_back_with_its_attributes(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    sample_tree(&scratch);
    std::os::unix::fs::symlink("a.txt", scratch.path("src/link")).unwrap();
    set_mode(&scratch.path("src/a.txt"), 0o640);
    set_mode(&scratch.path("src/dir/b.bin"), 0o751);
    set_mtime(&scratch.path("src/a.txt"), 1_500_000_000, 0);
    set_mtime(&scratch.path("src/dir/b.bin"), 1_600_000_000, 123_456_789);
    let out = sync_to(&scratch, &side, &["-a"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(
        side.names(),
        [
            "a.txt",
            "dir/b.bin",
            "dir/deeper/c.txt",
            "empty.txt",
            "link"
        ],
        "{backend:?}: no temporaries or sidecars of small files"
    );
    assert!(
        side.files()["dir/b.bin"] == noise(100_000, 1),
        "{backend:?}"
    );

    let back = scratch.path("back");
    let out = sync_from(&scratch, &side, &back, &["-a"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(tree(&scratch.src()), tree(&back), "{backend:?}");
    let grain = backend.time_grain();
    for (rel, mode) in [("a.txt", 0o640), ("dir/b.bin", 0o751)] {
        let (src, copy) = (scratch.path(&format!("src/{rel}")), back.join(rel));
        assert_eq!(util::mode(&copy), mode, "{backend:?}: {rel}");
        let ns = |path: &Path| {
            util::mtime(path)
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        };
        assert_eq!(ns(&copy) / grain, ns(&src) / grain, "{backend:?}: {rel}");
    }
}

/// `check` says alike, then finds one changed byte in a file whose size and
/// mtime did not change; each store by the evidence it has.
fn check_finds_a_changed_byte_the_quick_check_misses(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    let small = scratch.write("src/small.txt", b"one byte of this will change");
    scratch.write("src/big.bin", &noise(40 * MIB, 12));
    // No sidecar for big.bin: a store's own checksum or the bytes decide.
    let out = sync_to(&scratch, &side, &["--delta-threshold", "1GiB"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    let (src, url) = (local(&scratch.src()), side.url());
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "--json", src.as_str(), url.as_str()];
        args.extend_from_slice(extra);
        let out = hugesync(&scratch, &side, None, &args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{backend:?}: {}", stderr_of(&out)));
        (out.status.code(), report)
    };
    let (code, report) = check(&[]);
    assert_eq!(code, Some(0), "{backend:?}: {report}");
    let evidence = Evidence::of(backend);
    assert_eq!(
        report["alike"]["md5"], evidence.by_md5,
        "{backend:?}: {report}"
    );
    assert_eq!(
        report["alike"]["blake3"], evidence.by_blake3,
        "{backend:?}: {report}"
    );
    assert_eq!(
        report["alike"]["size_only"], evidence.by_size,
        "{backend:?}: {report}"
    );
    assert_eq!(
        report["requests"], evidence.requests,
        "{backend:?}: {report}"
    );

    let mtime = fs::metadata(&small).unwrap().modified().unwrap();
    let mut bytes = fs::read(&small).unwrap();
    bytes[3] ^= 1;
    fs::write(&small, &bytes).unwrap();
    filetime::set_file_mtime(&small, filetime::FileTime::from_system_time(mtime)).unwrap();
    let (code, report) = check(&["--download"]);
    assert_eq!(code, Some(1), "{backend:?}: {report}");
    assert_eq!(
        report["differ"][0]["path"], "small.txt",
        "{backend:?}: {report}"
    );
    assert_eq!(
        report["differ"][0]["evidence"], evidence.changed_by,
        "{backend:?}: {report}"
    );
    assert_eq!(
        report["alike"]["bytes"], evidence.downloaded,
        "{backend:?}: {report}"
    );
}

/// `sync --checksum` finds a changed byte the quick check misses by the
/// checksums the listing carries: a local file computes the kind its object
/// holds, and the only request beyond the listing is the HEAD that confirms
/// the one MD5 that differs (an S3 ETag under SSE-KMS is no MD5).
fn checksum_sync_compares_what_the_listing_carries(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    for name in ["a.txt", "b.txt", "c.txt"] {
        scratch.write(
            &format!("src/{name}"),
            format!("the content of {name}").as_bytes(),
        );
    }
    let out = sync_to(&scratch, &side, &[]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    let changed = scratch.path("src/b.txt");
    let mtime = fs::metadata(&changed).unwrap().modified().unwrap();
    fs::write(&changed, b"the CONTENT of b.txt").unwrap();
    filetime::set_file_mtime(&changed, filetime::FileTime::from_system_time(mtime)).unwrap();

    let (src, url) = (local(&scratch.src()), side.url());
    let out = hugesync(
        &scratch,
        &side,
        None,
        &["plan", "--json", "--checksum", src.as_str(), url.as_str()],
    );
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{backend:?}: {}", stderr_of(&out)));
    let compared = &plan["scanned"]["compared"];
    assert_eq!(compared["pairs"], 3, "{backend:?}: {compared}");
    let (by, differ, unsettled, requests) = match backend {
        Backend::Local => ("blake3", 1, 0, 0),
        // The listing's MD5 (an ETag, a Content-MD5, GCS's md5Hash) against
        // the local file's; one HEAD confirms the difference.
        Backend::S3 | Backend::Azure | Backend::Gcs => ("md5", 1, 0, 1),
        // An SFTP server lists no checksum and a stat holds none (a stat
        // and a sidecar read per pair found nothing): the times decide.
        Backend::Sftp => ("md5", 0, 3, 6),
    };
    assert_eq!(compared["differ"], differ, "{backend:?}: {compared}");
    assert_eq!(compared["unsettled"], unsettled, "{backend:?}: {compared}");
    assert_eq!(compared["requests"], requests, "{backend:?}: {compared}");
    if matches!(backend, Backend::Sftp) {
        return;
    }
    assert_eq!(compared["alike"][by], 2, "{backend:?}: {compared}");
    let out = sync_to(&scratch, &side, &["--checksum"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(
        side.files().get("b.txt").map(Vec::as_slice),
        Some(&b"the CONTENT of b.txt"[..]),
        "{backend:?}"
    );
    assert!(
        stdout_of(&out).contains("1 differ"),
        "{backend:?}: {}",
        stdout_of(&out)
    );
}

/// What `check` decides by on each backend, for the two files of
/// [`check_finds_a_changed_byte_the_quick_check_misses`].
struct Evidence {
    /// Alike by the MD5 a listing (or HEAD) carries.
    by_md5: u64,
    /// Alike by the blake3 of both sides' bytes (read where they lie).
    by_blake3: u64,
    /// Alike by size alone (nothing better without `--download`).
    by_size: u64,
    /// Requests beyond the listing.
    requests: u64,
    /// How the changed byte is found.
    changed_by: &'static str,
    /// Alike after `--download` compared the bytes.
    downloaded: u64,
}

impl Evidence {
    fn of(backend: Backend) -> Evidence {
        match backend {
            // Both sides are read here: blake3 of each, no request.
            Backend::Local => Evidence {
                by_md5: 0,
                by_blake3: 2,
                by_size: 0,
                requests: 0,
                changed_by: "blake3",
                downloaded: 0,
            },
            // small.txt by the MD5 the listing carries (an ETag, a
            // Content-MD5); big.bin (a multipart object, a block list: no
            // MD5) by its size alone, after one HEAD and one sidecar GET found
            // nothing more — and by its bytes with --download.
            Backend::S3 | Backend::Azure => Evidence {
                by_md5: 1,
                by_blake3: 0,
                by_size: 1,
                requests: 2,
                changed_by: "md5",
                downloaded: 1,
            },
            // Both by the MD5 the listing carries (on real GCS, the CRC32C of
            // a composite object): no request beyond the listing.
            Backend::Gcs => Evidence {
                by_md5: 2,
                by_blake3: 0,
                by_size: 0,
                requests: 0,
                changed_by: "md5",
                downloaded: 0,
            },
            // An SFTP server computes no checksum (OpenSSH has no
            // `check-file`): by size until --download reads the bytes.
            Backend::Sftp => Evidence {
                by_md5: 0,
                by_blake3: 0,
                by_size: 2,
                requests: 4,
                changed_by: "bytes",
                downloaded: 1,
            },
        }
    }
}

/// A tree goes up and comes back whole through a proxy that resets,
/// refuses (503) or stalls one request in ten; an unchanged re-run sends
/// nothing, and no staged upload is left behind.
fn a_tree_goes_up_and_comes_back_through_ten_percent_faults(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    for i in 0..40usize {
        scratch.write(
            &format!("src/d{}/f{i:02}.bin", i % 4),
            &noise(500 + i * 1733, i as u64),
        );
    }
    // Large enough for a staged upload and a ranged download.
    scratch.write("src/big.bin", &noise(40 * MIB, 99));
    let proxy = side.proxy(Faults::mixed(0.10)).expect("an HTTP store");
    let (src, url) = (local(&scratch.src()), side.url());
    let report = sync_json(&scratch, &side, &proxy, &src, &url);
    assert!(
        report["bytes_sent"].as_u64().unwrap() >= 40 * MIB as u64,
        "{backend:?}: {report}"
    );
    assert!(
        report["retries"].as_u64().unwrap() > 0,
        "{backend:?}: faults met, yet no retries counted"
    );
    let stored = side.files();
    let sent = Side::Local(scratch.src()).files();
    assert_eq!(sent.len(), 41);
    for (rel, bytes) in &sent {
        assert!(stored.get(rel) == Some(bytes), "{backend:?}: {rel} differs");
    }
    // Nothing else but big.bin's sidecar.
    assert_eq!(stored.len(), 42, "{backend:?}: {:?}", stored.keys());
    let uploads = hugesync(&scratch, &side, None, &["uploads", &url]);
    assert!(
        stdout_of(&uploads).contains("No incomplete"),
        "{backend:?}: {}",
        stdout_of(&uploads)
    );

    // Unchanged: nothing to send, though the listing meets faults too.
    let report = sync_json(&scratch, &side, &proxy, &src, &url);
    assert_eq!(report["bytes_sent"], 0, "{backend:?}: {report}");

    let back = scratch.path("back");
    sync_json(&scratch, &side, &proxy, &url, &local(&back));
    assert_eq!(tree(&back), tree(&scratch.src()), "{backend:?}");
    assert!(
        proxy.faults() >= 5,
        "{backend:?}: only {} of {} requests met a fault",
        proxy.faults(),
        proxy.requests()
    );
}

fn deletes_only_when_asked_and_within_the_limit(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    let mut expected = source_tree(&scratch);
    assert!(sync_to(&scratch, &side, &[]).status.success());
    side.put("extra-1.txt", b"1");
    side.put("deep/extra-2.txt", b"2");
    side.put("deep/extra-3.txt", b"3");
    let with_extras = side.files();

    assert!(sync_to(&scratch, &side, &[]).status.success());
    assert_eq!(
        side.files(),
        with_extras,
        "{backend:?}: no --delete, no deletes"
    );

    let refused = sync_to(&scratch, &side, &["--delete", "--max-delete", "2"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{backend:?}: {}",
        stderr_of(&refused)
    );
    assert_eq!(
        side.files(),
        with_extras,
        "{backend:?}: a refused plan changes nothing"
    );

    fs::remove_file(scratch.path("src/top.txt")).unwrap();
    expected.remove("top.txt");
    let out = sync_to(&scratch, &side, &["--delete"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(side.files(), expected, "{backend:?}");
}

fn excluded_paths_are_neither_sent_nor_deleted(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    let mut expected = source_tree(&scratch);
    side.put("logs/old.log", b"kept: excluded at the destination too");
    let out = sync_to(&scratch, &side, &["--delete", "--exclude", "*.log"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    expected.remove("logs/run.log");
    expected.insert(
        "logs/old.log".into(),
        b"kept: excluded at the destination too".to_vec(),
    );
    assert_eq!(side.files(), expected, "{backend:?}");
}

fn a_dry_run_changes_nothing(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    source_tree(&scratch);
    side.put("stale.txt", b"stale");
    let before = side.files();
    let out = sync_to(&scratch, &side, &["--delete", "--dry-run"]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(side.files(), before, "{backend:?}");
}

fn serves_as_a_source_for_a_local_copy(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "remote");
    let mut expected = BTreeMap::new();
    for (rel, bytes) in [
        ("a.txt", b"a".to_vec()),
        ("d/b.bin", noise(50_000, 8)),
        ("d/e/c", vec![]),
    ] {
        side.put(rel, &bytes);
        expected.insert(rel.to_string(), bytes);
    }
    let out = sync_from(&scratch, &side, &scratch.dst(), &[]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(Side::Local(scratch.dst()).files(), expected, "{backend:?}");
}

/// `sync --yes --json` of the scratch source to `side` with `extra`: the
/// summary report, asserting success.
fn sync_report(scratch: &Scratch, side: &Side, extra: &[&str]) -> serde_json::Value {
    let out = sync_to(scratch, side, &[&["--json"], extra].concat());
    summary_report(&out, &format!("sync {extra:?}"))
}

/// `--sidecars hidden` keeps signatures under `.hugesync/sig/` at the root;
/// switching layouts moves them (nothing is sent again), a delta finds them
/// where they are, and `--delete` takes them with their files.
fn sidecars_move_between_layouts_without_resending(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    // Large enough for S3, whose copied parts are 5 MiB at least.
    let big = noise(12 * MIB, 31);
    scratch.write("src/t/part-0.bin", &big);
    scratch.write("src/t/small.txt", b"small");
    let delta = ["--delta-threshold", "1MiB", "--block-size", "64KiB"];
    let hidden = [&delta[..], &["--sidecars", "hidden"]].concat();
    let beside = [&delta[..], &["--sidecars", "beside"]].concat();
    let (beside_key, hidden_key) = ("t/part-0.bin.hssig", ".hugesync/sig/t/part-0.bin.hssig");

    sync_report(&scratch, &side, &delta);
    let names = side.names();
    assert!(
        names.contains(&beside_key.to_string()),
        "{backend:?}: {names:?}"
    );
    let sidecar = side.files()[beside_key].clone();
    let data_version = side.versions()["t/part-0.bin"].clone();

    // Beside → hidden: the sidecar moves, its file stays as it was.
    let report = sync_report(&scratch, &side, &hidden);
    assert_eq!(report["bytes_sent"], 0, "{backend:?}: {report}");
    assert_eq!(report["metadata"], 1, "{backend:?}: {report}");
    // One copy and one delete, counted like every store's requests.
    assert!(
        report["requests"]["copy"].as_u64() >= Some(1),
        "{backend:?}: {report}"
    );
    assert!(
        report["requests"]["delete"].as_u64() >= Some(1),
        "{backend:?}: {report}"
    );
    let files = side.files();
    assert!(
        !files.contains_key(beside_key),
        "{backend:?}: {:?}",
        side.names()
    );
    assert_eq!(files.get(hidden_key), Some(&sidecar), "{backend:?}");
    assert_eq!(side.versions()["t/part-0.bin"], data_version, "{backend:?}");
    let again = sync_report(&scratch, &side, &hidden);
    assert_eq!(
        again["metadata"], 0,
        "{backend:?}: nothing left to move: {again}"
    );
    // One left behind in the old layout (a move whose delete failed) goes;
    // the one where sidecars are kept now stays as it is.
    side.put(beside_key, b"left behind");
    let report = sync_report(&scratch, &side, &hidden);
    assert_eq!(report["metadata"], 1, "{backend:?}: {report}");
    let files = side.files();
    assert!(!files.contains_key(beside_key), "{backend:?}");
    assert_eq!(files.get(hidden_key), Some(&sidecar), "{backend:?}");

    // A change goes by delta from the hidden sidecar, which is replaced there.
    let mut edited = big.clone();
    edited.extend_from_slice(b"appended");
    scratch.write("src/t/part-0.bin", &edited);
    let report = sync_report(&scratch, &side, &hidden);
    assert_eq!(report["delta"], 1, "{backend:?}: {report}");
    assert!(
        report["bytes_sent"].as_u64().unwrap() < MIB as u64,
        "{backend:?}: {report}"
    );
    let files = side.files();
    assert_eq!(files["t/part-0.bin"], edited, "{backend:?}");
    assert!(
        files.contains_key(hidden_key),
        "{backend:?}: {:?}",
        side.names()
    );
    assert!(!files.contains_key(beside_key), "{backend:?}");

    // Hidden → beside, then --delete takes the file and its sidecar.
    let report = sync_report(&scratch, &side, &beside);
    assert_eq!(report["bytes_sent"], 0, "{backend:?}: {report}");
    let names = side.names();
    assert!(
        names.contains(&beside_key.to_string()),
        "{backend:?}: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with(".hugesync")),
        "{backend:?}: {names:?}"
    );
    fs::remove_file(scratch.path("src/t/part-0.bin")).unwrap();
    sync_report(&scratch, &side, &[&beside[..], &["--delete"]].concat());
    assert_eq!(side.names(), ["t/small.txt"], "{backend:?}");
}

/// Runs one body on one backend, when its server is running.
fn run(backend: Backend, body: fn(Backend)) {
    if backend.available() {
        body(backend);
    }
}

/// One test per body on each backend: a failure on one no longer hides the
/// others. `plus [...]` adds the bodies only some backends can run.
macro_rules! on_every_backend {
    ($($module:ident => $backend:expr $(, plus [$($extra:ident),* $(,)?])?);* $(;)?) => {
        $(
            mod $module {
                use super::*;

                on_every_backend!(@bodies $backend;
                    mirrors_a_tree_and_a_rerun_changes_nothing,
                    deletes_only_when_asked_and_within_the_limit,
                    excluded_paths_are_neither_sent_nor_deleted,
                    a_dry_run_changes_nothing,
                    serves_as_a_source_for_a_local_copy,
                    a_tree_goes_up_and_comes_back_with_its_attributes,
                    check_finds_a_changed_byte_the_quick_check_misses,
                    checksum_sync_compares_what_the_listing_carries
                    $($(, $extra)*)?
                );
            }
        )*
    };
    (@bodies $backend:expr; $($body:ident),*) => {
        $(
            #[test]
            fn $body() {
                run($backend, super::$body);
            }
        )*
    };
}

on_every_backend!(
    local => Backend::Local;
    s3 => Backend::S3, plus [
        a_tree_goes_up_and_comes_back_through_ten_percent_faults,
        sidecars_move_between_layouts_without_resending,
    ];
    azure => Backend::Azure, plus [
        a_tree_goes_up_and_comes_back_through_ten_percent_faults,
        sidecars_move_between_layouts_without_resending,
    ];
    gcs => Backend::Gcs, plus [
        a_tree_goes_up_and_comes_back_through_ten_percent_faults,
        sidecars_move_between_layouts_without_resending,
    ];
    sftp => Backend::Sftp, plus [sidecars_move_between_layouts_without_resending];
);
