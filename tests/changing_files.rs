//! Files cut short by another process while HugeSync reads them: every path
//! that reads through a memory map (`signature`, `delta`, a local delta sync, a
//! delta download) ends in the right result or a per-file "changed while it
//! was read" error — never a signal, never a misleading OS message, never a
//! destination that is neither its old nor its new version. Each path runs
//! with the cut at several moments, and the outcome class is asserted each time.

mod util;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use util::s3::Bucket;
use util::{Scratch, noise, stderr_of, temp_files};

const MIB: usize = 1024 * 1024;
/// When the file is cut, after the command starts.
const DELAYS_MS: [u64; 5] = [0, 15, 40, 90, 200];

/// Runs `cmd`, cuts `victim` to 1 MiB after `delay`, and returns the output.
fn run_and_cut(mut cmd: std::process::Command, victim: &Path, delay: u64) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(delay));
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(victim) {
        let _ = file.set_len(MIB as u64);
    }
    child.wait_with_output().unwrap()
}

/// The outcome is a success or the per-file error, never a crash.
fn assert_clean_outcome(out: &std::process::Output, what: &str) -> bool {
    let stderr = stderr_of(out);
    assert_eq!(
        out.status.signal(),
        None,
        "{what}: killed by a signal; {stderr}"
    );
    assert!(!stderr.contains("Bad address"), "{what}: {stderr}");
    assert!(
        !stderr.contains("failed to fill whole buffer"),
        "{what}: {stderr}"
    );
    match out.status.code() {
        Some(0) => true,
        Some(1) => {
            assert!(
                stderr.contains("changed while it was read")
                    || stderr.contains("changed since it was scanned")
                    || stderr.contains("destination changed"),
                "{what}: {stderr}"
            );
            false
        }
        other => panic!("{what}: exit {other:?}: {stderr}"),
    }
}

/// Says which runs the cut reached (for a reader of the test log: the delays
/// are meant to land before, during and after the reads).
fn log_outcome(what: &str, done: bool) {
    eprintln!(
        "{what}: {}",
        if done { "completed" } else { "per-file error" }
    );
}

#[test]
fn signature_and_delta_of_a_file_cut_short() {
    let s = Scratch::new();
    let data = noise(256 * MIB, 1);
    let template = s.write("template.bin", &data);
    let basis = s.write("basis.bin", &noise(4 * MIB, 2));
    let sig = s.path("basis.hssig");
    let out = s
        .std_cmd()
        .args(["signature", "-o"])
        .arg(&sig)
        .arg(&basis)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    for delay in DELAYS_MS {
        let file = s.path("in.bin");
        std::fs::copy(&template, &file).unwrap();
        let mut cmd = s.std_cmd();
        cmd.args(["signature", "-o"])
            .arg(s.path("in.hssig"))
            .arg(&file);
        let out = run_and_cut(cmd, &file, delay);
        let what = format!("signature, cut after {delay} ms");
        log_outcome(&what, assert_clean_outcome(&out, &what));

        std::fs::copy(&template, &file).unwrap();
        let mut cmd = s.std_cmd();
        cmd.args(["delta", "-o"])
            .arg(s.path("out.delta"))
            .arg(&sig)
            .arg(&file);
        let out = run_and_cut(cmd, &file, delay);
        let what = format!("delta, cut after {delay} ms");
        log_outcome(&what, assert_clean_outcome(&out, &what));
    }
}

#[test]
fn a_local_delta_sync_whose_source_or_basis_is_cut_keeps_a_whole_version() {
    let s = Scratch::new();
    let old = noise(128 * MIB, 3);
    let mut new = old.clone();
    new[64 * MIB..64 * MIB + 100].fill(7);
    let (old_template, new_template) = (s.write("old.bin", &old), s.write("new.bin", &new));
    for delay in DELAYS_MS {
        for cut_source in [true, false] {
            let (src, dst) = (s.path("src/big.bin"), s.path("dst/big.bin"));
            std::fs::create_dir_all(s.src()).unwrap();
            std::fs::create_dir_all(s.dst()).unwrap();
            std::fs::copy(&new_template, &src).unwrap();
            std::fs::copy(&old_template, &dst).unwrap();
            util::set_mtime(&src, 2_000_000_000, 0);
            util::set_mtime(&dst, 1_000_000_000, 0);
            let mut cmd = s.std_cmd();
            cmd.args(["sync", "--yes"]).arg(s.src()).arg(s.dst());
            let victim = if cut_source { &src } else { &dst };
            let what = format!(
                "local delta, {} cut after {delay} ms",
                if cut_source { "source" } else { "basis" }
            );
            let out = run_and_cut(cmd, victim, delay);
            let done = assert_clean_outcome(&out, &what);
            log_outcome(&what, done);
            let now = std::fs::read(&dst).unwrap();
            if done && cut_source {
                // Finished before the cut, or the cut file was sent as it is now.
                assert!(now == new || now.len() == MIB, "{what}: a mixed file");
            } else if done {
                assert!(now == new, "{what}: a mixed file");
            } else if cut_source {
                assert!(now == old, "{what}: the destination lost its old version");
            }
            assert!(temp_files(&s.dst()).is_empty(), "{what}: temp files left");
        }
    }
}

#[test]
fn a_delta_download_whose_local_basis_is_cut() {
    let (s, bucket) = (Scratch::new(), Bucket::new());
    let remote = noise(96 * MIB, 5);
    let mut local = remote.clone();
    local[10 * MIB..10 * MIB + 100].fill(9);
    s.write("up/big.bin", &remote);
    let out = s
        .std_cmd()
        .args(["sync", "--yes"])
        .arg(s.path("up"))
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let template = s.write("local.bin", &local);
    for delay in DELAYS_MS {
        let basis = s.path("dst/big.bin");
        std::fs::create_dir_all(s.dst()).unwrap();
        std::fs::copy(&template, &basis).unwrap();
        util::set_mtime(&basis, 1_000_000_000, 0);
        let mut cmd = s.std_cmd();
        cmd.args(["sync", "--yes"])
            .arg(bucket.url("d"))
            .arg(s.dst())
            .args(bucket.args());
        let what = format!("delta download, basis cut after {delay} ms");
        let out = run_and_cut(cmd, &basis, delay);
        let done = assert_clean_outcome(&out, &what);
        if done {
            assert!(
                std::fs::read(&basis).unwrap() == remote,
                "{what}: wrong bytes"
            );
        }
        assert!(temp_files(&s.dst()).is_empty(), "{what}: temp files left");
    }
}
