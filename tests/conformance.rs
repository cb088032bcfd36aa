//! One set of test bodies, each run as a `#[test]` of its own on every
//! backend: a local directory, an S3 prefix (moto), an Azure container prefix
//! (azurite), a GCS bucket prefix (fake-gcs-server) and a directory on an SSH
//! server (sshd), all started by scripts/test.sh. What a sync promises —
//! mirroring, idempotence, deletes only when asked and within limits,
//! filters, dry runs — must not depend on where the bytes live.

mod util;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use util::azure::Container;
use util::gcs::GcsBucket;
use util::s3::Bucket;
use util::{Scratch, noise, stderr_of, stdout_of};

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

fn sync_to(scratch: &Scratch, side: &Side, extra: &[&str]) -> std::process::Output {
    scratch
        .cmd()
        .args(["sync", "--yes"])
        .arg(scratch.src())
        .arg(side.url())
        .args(side.args())
        .envs(side.env())
        .args(extra)
        .output()
        .unwrap()
}

fn mirrors_a_tree_and_a_rerun_changes_nothing(backend: Backend) {
    let scratch = Scratch::new();
    let side = Side::new(backend, &scratch, "dst");
    let expected = source_tree(&scratch);
    let out = sync_to(&scratch, &side, &[]);
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(side.files(), expected, "{backend:?}");
    let again = sync_to(&scratch, &side, &[]);
    assert!(again.status.success());
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{backend:?}: {}",
        stdout_of(&again)
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
    let out = scratch
        .cmd()
        .args(["sync", "--yes"])
        .arg(side.url())
        .arg(scratch.dst())
        .args(side.args())
        .envs(side.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{backend:?}: {}", stderr_of(&out));
    assert_eq!(Side::Local(scratch.dst()).files(), expected, "{backend:?}");
}

/// Runs one body on one backend, when its server is running.
fn run(backend: Backend, body: fn(Backend)) {
    if backend.available() {
        body(backend);
    }
}

/// One test per body on each backend: a failure on one no longer hides the
/// others.
macro_rules! on_every_backend {
    ($($module:ident => $backend:expr),* $(,)?) => {
        $(
            mod $module {
                use super::*;

                #[test]
                fn mirrors_a_tree_and_a_rerun_changes_nothing() {
                    run($backend, super::mirrors_a_tree_and_a_rerun_changes_nothing);
                }

                #[test]
                fn deletes_only_when_asked_and_within_the_limit() {
                    run($backend, super::deletes_only_when_asked_and_within_the_limit);
                }

                #[test]
                fn excluded_paths_are_neither_sent_nor_deleted() {
                    run($backend, super::excluded_paths_are_neither_sent_nor_deleted);
                }

                #[test]
                fn a_dry_run_changes_nothing() {
                    run($backend, super::a_dry_run_changes_nothing);
                }

                #[test]
                fn serves_as_a_source_for_a_local_copy() {
                    run($backend, super::serves_as_a_source_for_a_local_copy);
                }
            }
        )*
    };
}

on_every_backend!(
    local => Backend::Local,
    s3 => Backend::S3,
    azure => Backend::Azure,
    gcs => Backend::Gcs,
    sftp => Backend::Sftp,
);
