//! Interrupted runs: a multipart upload killed with SIGKILL resumes without
//! sending its finished parts again; a local sync killed midway leaves no
//! partial file and converges; unusable resume state is ignored with a warning.
//! Runs are stopped by what the proxy has seen, never by sleeping.

mod util;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use util::fault_proxy::{FaultProxy, Faults};
use util::s3::Bucket;
use util::{Scratch, noise, stderr_of, temp_files, tree};

const MIB: u64 = 1024 * 1024;

fn state_dir(scratch: &Scratch) -> PathBuf {
    scratch.path(".cache/hugesync/uploads")
}

fn state_files(scratch: &Scratch) -> Vec<PathBuf> {
    std::fs::read_dir(state_dir(scratch))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Waits until `done` holds (or fails the test after a minute).
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `hugesync sync --yes SRC s3://…/d ARGS…` through the proxy, to the end.
fn sync_to(
    scratch: &Scratch,
    proxy: &FaultProxy,
    bucket: &Bucket,
    args: &[&str],
) -> std::process::Output {
    scratch
        .cmd()
        .args(["sync", "--yes"])
        .args(args)
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .args(proxy.args())
        .output()
        .unwrap()
}

/// Starts `hugesync sync --yes -j 2 SRC DST` and SIGKILLs it once the proxy has
/// passed `kill_at` bytes of parts.
fn upload_and_kill(scratch: &Scratch, proxy: &FaultProxy, dst: &str, kill_at: u64) {
    let mut child = scratch
        .std_cmd()
        .args(["sync", "--yes", "-j", "2"])
        .arg(scratch.src())
        .arg(dst)
        .args(proxy.args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the upload to get going", || proxy.part_bytes() >= kill_at);
    child.kill().unwrap(); // SIGKILL: nothing runs after it
    child.wait().unwrap();
}

/// `src/big.bin` of `mib` MiB (seeded noise) whose upload through a fresh
/// proxy was SIGKILLed after `kill_at_mib` MiB of parts.
fn killed_upload(mib: u64, seed: u64, kill_at_mib: u64) -> (Scratch, Bucket, FaultProxy, Vec<u8>) {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let data = noise((mib * MIB) as usize, seed);
    scratch.write("src/big.bin", &data);
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    upload_and_kill(&scratch, &proxy, &bucket.url("d"), kill_at_mib * MIB);
    (scratch, bucket, proxy, data)
}

#[test]
fn a_killed_multipart_upload_resumes_without_resending_parts() {
    let (scratch, bucket, proxy, data) = killed_upload(128, 41, 64);
    assert!(
        bucket.head("d/big.bin").is_none(),
        "no object before completion"
    );
    assert_eq!(bucket.pending_uploads(), 1);
    assert_eq!(state_files(&scratch).len(), 1, "resume state on disk");

    let listed = scratch
        .cmd()
        .args(["uploads", &bucket.url("d")])
        .args(proxy.args())
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        text.contains("d/big.bin") && text.contains("HugeSync's"),
        "{text}"
    );

    let before = proxy.part_bytes();
    let out = sync_to(&scratch, &proxy, &bucket, &["-j", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let resent = proxy.part_bytes() - before;
    // At least the parts the server had finished before the kill stay there.
    assert!(
        resent <= 128 * MIB - 40 * MIB,
        "the resumed run sent {} MiB of parts",
        resent / MIB
    );
    assert!(bucket.get("d/big.bin") == data, "the object differs");
    assert_eq!(bucket.pending_uploads(), 0);
    assert!(
        state_files(&scratch).is_empty(),
        "state left after completion"
    );

    // The sidecar covers the resumed parts too: an unchanged file sends nothing,
    // and its signature is right (a delta against it rebuilds the file).
    let out = sync_to(&scratch, &proxy, &bucket, &["--json"]);
    assert!(out.status.success());
    let mut edited = data.clone();
    edited[100 * MIB as usize] ^= 1;
    scratch.write("src/big.bin", &edited);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    util::set_mtime(&scratch.src().join("big.bin"), now + 5, 0);
    let before = proxy.part_bytes();
    let out = sync_to(&scratch, &proxy, &bucket, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(proxy.part_bytes() - before <= 10 * MIB, "not a delta");
    assert!(bucket.get("d/big.bin") == edited);
}

#[test]
fn uploads_abort_removes_what_a_killed_run_left() {
    let (scratch, bucket, proxy, _) = killed_upload(60, 42, 20);
    assert_eq!(bucket.pending_uploads(), 1);
    let out = scratch
        .cmd()
        .args(["uploads", "--abort", &bucket.url("d")])
        .args(proxy.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.pending_uploads(), 0);
    assert!(state_files(&scratch).is_empty());
}

#[test]
fn unusable_resume_state_is_ignored_with_a_warning() {
    let (scratch, bucket, proxy, data) = killed_upload(60, 43, 20);
    let state = state_files(&scratch).pop().expect("a state file");
    let json = std::fs::read(&state).unwrap();
    std::fs::write(&state, &json[..json.len() / 2]).unwrap(); // truncated

    let out = sync_to(&scratch, &proxy, &bucket, &[]);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ignoring resume state"), "{stderr}");
    assert!(bucket.get("d/big.bin") == data);
    assert!(state_files(&scratch).is_empty());
}

/// Files under their final names below `dir`, counted without reading them:
/// they are being written and renamed.
fn landed(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".hugesync-"))
        .count()
}

/// Files in `dst` under their final names are whole copies of `src`'s.
fn no_partial_files(src: &Path, dst: &Path) {
    for (rel, node) in tree(dst) {
        let name = String::from_utf8_lossy(&rel).into_owned();
        if name.contains(".hugesync-") {
            continue;
        }
        assert_eq!(tree(src).get(&rel), Some(&node), "{name} is partial");
    }
}

#[test]
fn a_killed_local_sync_leaves_no_partial_file_and_converges() {
    let scratch = Scratch::new();
    for i in 0..24u64 {
        scratch.write(
            &format!("src/d{}/f{i:02}.bin", i % 3),
            &noise(6 * MIB as usize, i),
        );
    }
    let (src, dst) = (scratch.src(), scratch.dst());
    let mut child = scratch
        .std_cmd()
        .args(["sync", "--yes", "-j", "2"])
        .arg(&src)
        .arg(&dst)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("some files to land", || landed(&dst) >= 6);
    child.kill().unwrap();
    child.wait().unwrap();
    no_partial_files(&src, &dst);
    // Whatever temp files the kill left, one more from a writer long dead.
    util::write_file(&dst.join("d0/.hugesync-dead0.tmp"), b"half a file");

    let out = scratch.sync(&[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&dst), tree(&src), "the re-run converges");
    assert!(
        temp_files(&dst).is_empty(),
        "temp files of the killed run are gone"
    );
}

#[test]
fn sigterm_stops_an_upload_resumably_with_exit_130() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let data = noise(80 * MIB as usize, 44);
    scratch.write("src/big.bin", &data);
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let mut child = scratch
        .std_cmd()
        .args(["sync", "--yes", "-j", "2"])
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .args(proxy.args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the upload to get going", || proxy.part_bytes() >= 20 * MIB);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(bucket.head("d/big.bin").is_none());
    assert_eq!(bucket.pending_uploads(), 1, "left to resume, not aborted");
    assert_eq!(state_files(&scratch).len(), 1);

    let out = sync_to(&scratch, &proxy, &bucket, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(bucket.get("d/big.bin") == data);
    assert_eq!(bucket.pending_uploads(), 0);
    assert!(state_files(&scratch).is_empty());
}

#[test]
fn foreign_resume_state_is_ignored_with_a_warning() {
    let (scratch, bucket, proxy, data) = killed_upload(40, 45, 20);
    // The state file at this upload's name describes some other upload.
    let state = state_files(&scratch).pop().expect("a state file");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    json["target"]["key"] = "d/someone-else.bin".into();
    std::fs::write(&state, serde_json::to_vec(&json).unwrap()).unwrap();

    let out = sync_to(&scratch, &proxy, &bucket, &[]);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("describes another upload"), "{stderr}");
    assert!(bucket.get("d/big.bin") == data);
    // The killed run's upload was not ours to trust: `uploads --abort --all`
    // is how it goes.
    assert_eq!(bucket.pending_uploads(), 1);
    let out = scratch
        .cmd()
        .args(["uploads", "--abort", "--all", &bucket.url("d")])
        .args(proxy.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.pending_uploads(), 0);
}

#[test]
fn a_second_interrupt_stops_at_once_without_partial_files() {
    let scratch = Scratch::new();
    for i in 0..24u64 {
        scratch.write(
            &format!("src/f{i:02}.bin"),
            &noise(6 * MIB as usize, 100 + i),
        );
    }
    let (src, dst) = (scratch.src(), scratch.dst());
    let mut child = scratch
        .std_cmd()
        .args(["sync", "--yes", "-j", "2"])
        .arg(&src)
        .arg(&dst)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("some files to land", || landed(&dst) >= 2);
    for _ in 0..2 {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(child.wait().unwrap().code(), Some(130));
    no_partial_files(&src, &dst);
    let out = scratch.sync(&[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&dst), tree(&src));
}

#[test]
fn a_killed_composite_upload_to_gcs_resumes_from_the_parts_it_left() {
    use std::sync::atomic::Ordering;
    let (scratch, bucket) = (Scratch::new(), util::gcs::GcsBucket::new());
    let data = noise((128 * MIB) as usize, 43);
    scratch.write("src/big.bin", &data);
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let sent = || proxy.counters.body_bytes.load(Ordering::Relaxed);
    let mut child = scratch
        .std_cmd()
        .env("STORAGE_EMULATOR_HOST", &proxy.endpoint)
        .args(["sync", "--yes", "-j", "2"])
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the upload to get going", || sent() >= 64 * MIB);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        bucket.head("d/big.bin").is_none(),
        "no object before compose"
    );
    assert!(
        bucket
            .keys()
            .iter()
            .any(|k| k.starts_with(".hugesync-staging/")),
        "the finished parts are on the server"
    );
    assert_eq!(state_files(&scratch).len(), 1, "resume state on disk");

    let before = sent();
    let out = scratch
        .cmd()
        .env("STORAGE_EMULATOR_HOST", &proxy.endpoint)
        .args(["sync", "--yes", "-j", "2"])
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let resent = sent() - before;
    // Signed parts are whole 5 MiB blocks: 20 MiB each. With two in flight,
    // the fourth had started when the kill came, so the first two had landed:
    // at most 88 MiB of parts go again, plus the requests' JSON (resources,
    // the compose) and the sidecar — well under a MiB.
    assert!(
        resent <= 128 * MIB - 40 * MIB + MIB,
        "the resumed run sent {} bytes",
        resent
    );
    assert!(bucket.get("d/big.bin") == data, "the object differs");
    assert_eq!(
        bucket.keys(),
        ["d/big.bin", "d/big.bin.hssig"],
        "the parts went once composed"
    );
    assert!(
        state_files(&scratch).is_empty(),
        "state left after completion"
    );
}

#[test]
fn a_killed_resumable_upload_to_gcs_goes_on_from_where_the_session_stands() {
    use std::sync::atomic::Ordering;
    let (scratch, bucket) = (Scratch::new(), util::gcs::GcsBucket::new());
    let data = noise((96 * MIB) as usize, 44);
    scratch.write("src/big.bin", &data);
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let sent = || proxy.counters.body_bytes.load(Ordering::Relaxed);
    let run = |scratch: &Scratch| {
        let mut cmd = scratch.std_cmd();
        cmd.env("STORAGE_EMULATOR_HOST", &proxy.endpoint)
            .args(["sync", "--yes", "--gcs-no-composite"])
            .arg(scratch.src())
            .arg(bucket.url("d"));
        cmd
    };
    let mut child = run(&scratch)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Pieces of 16 MiB go one after another, each once the one before was
    // held and journaled. The proxy forwards a request once its body is
    // whole, and holds the third halfway: killed then, the server has two.
    proxy.hold_bodies_after(40 * MIB);
    let received = || proxy.counters.received_bytes.load(Ordering::Relaxed);
    wait_for("the upload to get going", || received() >= 40 * MIB);
    child.kill().unwrap();
    child.wait().unwrap();
    proxy.release();
    assert!(
        bucket.head("d/big.bin").is_none(),
        "no object before the end"
    );
    assert_eq!(state_files(&scratch).len(), 1, "resume state on disk");
    let state = std::fs::read_to_string(&state_files(&scratch)[0]).unwrap();
    assert!(state.contains("upload_id"), "{state}");

    let before = sent();
    let out = run(&scratch).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let resent = sent() - before;
    assert!(
        resent <= 96 * MIB - 32 * MIB + MIB,
        "the resumed run sent {resent} bytes"
    );
    assert!(bucket.get("d/big.bin") == data, "the object differs");
    // One stream: never a temporary object.
    assert_eq!(bucket.keys(), ["d/big.bin", "d/big.bin.hssig"]);
    assert!(
        state_files(&scratch).is_empty(),
        "state left after completion"
    );
}
