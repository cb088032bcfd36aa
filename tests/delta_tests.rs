//! The delta engine through the real binary: signature → delta → patch, and the
//! byte savings on known edits.

mod util;

use std::fs;

use util::*;

fn engine(s: &Scratch, args: &[&str]) -> std::process::Output {
    let out = s
        .cmd()
        .current_dir(s.dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    out
}

#[test]
fn one_small_edit_in_64_mib_costs_at_most_two_blocks() {
    let s = Scratch::new();
    let old = noise(64 * 1024 * 1024, 11);
    let mut new = old.clone();
    new[40_000_000..40_000_100].copy_from_slice(&[0x5A; 100]);
    s.write("old.bin", &old);
    s.write("new.bin", &new);
    engine(
        &s,
        &[
            "signature",
            "old.bin",
            "-o",
            "old.hssig",
            "--block-size",
            "64KiB",
        ],
    );
    let out = engine(
        &s,
        &["delta", "old.hssig", "new.bin", "-o", "new.delta", "--json"],
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        stats["bytes_new"].as_u64().unwrap() <= 2 * 64 * 1024,
        "{stats}"
    );
    engine(&s, &["patch", "old.bin", "new.delta", "rebuilt.bin"]);
    assert_eq!(fs::read(s.path("rebuilt.bin")).unwrap(), new);
    assert!(fs::metadata(s.path("new.delta")).unwrap().len() < 200_000);
}

#[test]
fn shifted_data_is_found_and_patch_rebuilds_exactly() {
    let s = Scratch::new();
    let old = noise(3 * 1024 * 1024 + 777, 5);
    let mut new = old.clone();
    new.splice(12_345..12_345, noise(1000, 6));
    new.drain(2_000_000..2_000_500);
    new.extend_from_slice(b"appended");
    s.write("old.bin", &old);
    s.write("new.bin", &new);
    engine(&s, &["signature", "old.bin", "--block-size", "64KiB"]);
    let out = engine(
        &s,
        &["delta", "old.bin.hssig", "new.bin", "-o", "d", "--json"],
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        stats["bytes_new"].as_u64().unwrap() <= 3 * 64 * 1024 + 2000,
        "{stats}"
    );
    engine(&s, &["patch", "old.bin", "d", "out.bin"]);
    assert_eq!(fs::read(s.path("out.bin")).unwrap(), new);
}

#[test]
fn corrupt_inputs_are_refused_and_nothing_is_written() {
    let s = Scratch::new();
    let old = noise(300_000, 1);
    let mut new = old.clone();
    new[1000] ^= 0xFF;
    s.write("old.bin", &old);
    s.write("new.bin", &new);
    engine(
        &s,
        &["signature", "old.bin", "-o", "sig", "--block-size", "64KiB"],
    );
    engine(&s, &["delta", "sig", "new.bin", "-o", "d"]);

    let mut sig = fs::read(s.path("sig")).unwrap();
    sig[100] ^= 1;
    s.write("bad.sig", &sig);
    let out = s
        .cmd()
        .current_dir(s.dir.path())
        .args(["delta", "bad.sig", "new.bin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("corrupt"), "{}", stderr_of(&out));

    // Patching the wrong basis is detected, and the target is never created.
    let mut other = old.clone();
    other[200_000] ^= 0xFF;
    s.write("other.bin", &other);
    let out = s
        .cmd()
        .current_dir(s.dir.path())
        .args(["patch", "other.bin", "d", "out.bin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("wrong basis"),
        "{}",
        stderr_of(&out)
    );
    assert!(!s.path("out.bin").exists());
    assert!(
        fs::read_dir(s.dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp"))
    );

    let out = s
        .cmd()
        .current_dir(s.dir.path())
        .args(["signature", "old.bin", "--block-size", "1KiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
