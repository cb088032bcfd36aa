//! Helpers shared by the integration tests: run the real binary in an isolated
//! environment, build trees, and read trees back for comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use assert_cmd::Command;

pub mod azure;
pub mod fault_proxy;
pub mod gcs;
pub mod s3;
pub mod sftp;

/// Whether the test server `variable` points to is running: `None`, with a
/// note, when it is not set — except under scripts/test.sh, which sets
/// `HUGESYNC_TEST_STRICT` so that a skip fails the suite instead.
pub fn server_running(variable: &str) -> Option<()> {
    if std::env::var_os(variable).is_some() {
        return Some(());
    }
    assert!(
        std::env::var_os("HUGESYNC_TEST_STRICT").is_none(),
        "{variable} is not set, and scripts/test.sh never skips: its server did not start"
    );
    eprintln!("skipped: {variable} is not set (scripts/test.sh starts its server)");
    None
}

/// A peer tool's path from `variable` (scripts/test.sh installs the peers and
/// sets it); `None` skips the test, except under scripts/test.sh.
pub fn peer_tool(variable: &str) -> Option<PathBuf> {
    server_running(variable)?;
    std::env::var_os(variable).map(PathBuf::from)
}

/// A bucket or container name no other test (or run) uses.
pub fn unique_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// A local path as a command-line argument.
pub fn local(path: &Path) -> String {
    path.display().to_string()
}

/// The small tree the object-store tests send up: a text file, a binary one in
/// a subdirectory, a deeper one, and an empty file.
pub fn sample_tree(scratch: &Scratch) {
    scratch.write("src/a.txt", b"alpha");
    scratch.write("src/dir/b.bin", &noise(100_000, 1));
    scratch.write("src/dir/deeper/c.txt", b"gamma");
    scratch.write("src/empty.txt", b"");
}

/// A scratch area with `src/`, `dst/` and an empty config home.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::create_dir(dir.path().join("config")).unwrap();
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn src(&self) -> PathBuf {
        self.path("src")
    }

    pub fn dst(&self) -> PathBuf {
        self.path("dst")
    }

    /// The binary, with the user's config and HUGESYNC_* variables kept out.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same, as a plain `std::process::Command` (to spawn and kill).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("hugesync"));
        for (key, _) in std::env::vars() {
            if key.starts_with("HUGESYNC_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("XDG_CONFIG_HOME", self.path("config"));
        cmd.env("HOME", self.dir.path());
        cmd.env("NO_COLOR", "1");
        // S3 tests talk to moto, which takes any key; nothing may reach a real
        // account or the instance metadata service.
        cmd.env("AWS_ACCESS_KEY_ID", "test");
        cmd.env("AWS_SECRET_ACCESS_KEY", "test");
        cmd.env("AWS_REGION", "us-east-1");
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.env("AWS_CONFIG_FILE", self.path("no-aws-config"));
        cmd.env(
            "AWS_SHARED_CREDENTIALS_FILE",
            self.path("no-aws-credentials"),
        );
        for key in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"] {
            cmd.env_remove(key);
        }
        // Azure tests name azurite themselves; nothing reaches a real account
        // (and no Entra ID login is tried: the Azure CLI is not on PATH here).
        for (key, _) in std::env::vars() {
            if key.starts_with("AZURE_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// `hugesync sync --yes SRC DST ARGS…`
    pub fn sync(&self, args: &[&str]) -> Command {
        let mut cmd = self.cmd();
        cmd.arg("sync")
            .arg("--yes")
            .arg(self.src())
            .arg(self.dst())
            .args(args);
        cmd
    }

    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        write_file(&self.path(rel), content)
    }
}

pub fn write_file(path: &Path, content: &[u8]) -> PathBuf {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
    path.to_path_buf()
}

/// What a tree holds, for comparing two trees.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Node {
    File { content_hash: String, size: u64 },
    Dir,
    Link(Vec<u8>),
}

/// Every entry below `root` (not following links), keyed by raw relative path.
pub fn tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = entry.file_type();
        let node = if ft.is_symlink() {
            Node::Link(
                fs::read_link(entry.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_dir() {
            Node::Dir
        } else {
            let bytes = fs::read(entry.path()).unwrap();
            Node::File {
                content_hash: blake3::hash(&bytes).to_hex().to_string(),
                size: bytes.len() as u64,
            }
        };
        out.insert(rel, node);
    }
    out
}

pub fn mtime(path: &Path) -> SystemTime {
    fs::symlink_metadata(path).unwrap().modified().unwrap()
}

pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    filetime::set_symlink_file_times(
        path,
        filetime::FileTime::from_unix_time(secs, nanos),
        filetime::FileTime::from_unix_time(secs, nanos),
    )
    .unwrap();
}

/// Temp files HugeSync may have left anywhere below `root`.
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().as_bytes().starts_with(b".hugesync-"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
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

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A sidecar that lies: the signature `real` holds (of other bytes), with
/// `etag` written in as the version it describes, so it passes for fresh.
pub fn forged_sidecar(real: &[u8], etag: &str) -> Vec<u8> {
    let (signature, _) = hugesync::signature::read_signature(real).unwrap();
    let identity = hugesync::signature::SourceIdentity {
        etag: Some(etag.to_string()),
        mtime_ns: None,
    };
    hugesync::signature::write_signature(&signature, &identity)
}
