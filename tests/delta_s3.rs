//! Delta uploads to S3 (moto): objects rebuilt server-side from their unchanged
//! ranges plus the new bytes, verified byte for byte, with the bytes sent counted
//! from the request bodies the run reports.

mod util;

use std::fs;

use util::s3::Bucket;
use util::{Scratch, noise, stderr_of};

const MIB: usize = 1024 * 1024;
/// S3's minimum part, and the default block size.
const PART: u64 = 5 * MIB as u64;

/// `hugesync sync --yes --json SRC s3://…/d`, returning (bytes sent, bytes
/// saved, stderr and the run's warnings) from the run's summary.
fn upload(scratch: &Scratch, bucket: &Bucket, extra: &[&str]) -> (u64, u64, String) {
    let out = scratch
        .cmd()
        .args(["sync", "--yes", "--json"])
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .args(extra)
        .output()
        .unwrap();
    let mut stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    for event in stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
    {
        if event["event"] == "warning"
            && let Some(message) = event["message"].as_str()
        {
            stderr.push_str(&format!("warning: {message}\n"));
        }
    }
    // A plan with nothing to do (the object was written after the file's
    // mtime, so it is current) sends and saves nothing.
    let Some(summary) = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "summary")
    else {
        return (0, 0, stderr);
    };
    let report = &summary["report"];
    (
        report["bytes_sent"].as_u64().unwrap(),
        report["bytes_saved"].as_u64().unwrap(),
        stderr,
    )
}

fn assert_object_is(bucket: &Bucket, key: &str, expected: &[u8]) {
    let got = bucket.get(key);
    assert_eq!(got.len(), expected.len(), "{key}: size");
    assert!(got == expected, "{key}: bytes differ");
}

#[test]
fn a_small_edit_to_a_large_file_sends_a_few_parts() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let mut data = noise(64 * MIB, 21);
    let file = scratch.write("src/model.bin", &data);
    let (sent, _, _) = upload(&scratch, &bucket, &[]);
    assert_eq!(sent, data.len() as u64);
    assert!(
        bucket.head("d/model.bin.hssig").is_some(),
        "every large upload is signed"
    );

    // 100 bytes changed in the middle, 1 KiB inserted near the start.
    for b in &mut data[32 * MIB..32 * MIB + 100] {
        *b ^= 0x5a;
    }
    data.splice(4096..4096, noise(1024, 22));
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let plan = scratch
        .cmd()
        .arg("plan")
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("delta rebuilds: every range copied server-side is compared (MD5)"),
        "the plan names the check the store makes:\n{text}"
    );
    let (sent, saved, _) = upload(&scratch, &bucket, &[]);
    assert!(sent <= 3 * PART, "sent {sent} bytes");
    assert_eq!(sent + saved, data.len() as u64);
    assert_object_is(&bucket, "d/model.bin", &data);
    assert_eq!(bucket.pending_uploads(), 0);

    let (sent, _, _) = upload(&scratch, &bucket, &[]);
    assert_eq!(sent, 0, "an unchanged file sends nothing");

    // The new sidecar describes the new object: the next edit is a delta too.
    data[60 * MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, _) = upload(&scratch, &bucket, &[]);
    assert!(sent <= 2 * PART, "sent {sent} bytes");
    assert_object_is(&bucket, "d/model.bin", &data);
}

#[test]
fn a_stale_sidecar_means_a_whole_upload() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let mut data = noise(40 * MIB, 31);
    let file = scratch.write("src/f.bin", &data);
    upload(&scratch, &bucket, &[]);
    // Someone replaces the object behind our back; its sidecar stays.
    bucket.put("d/f.bin", &noise(40 * MIB, 32));
    data[MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, _) = upload(&scratch, &bucket, &[]);
    assert_eq!(sent, data.len() as u64);
    assert_object_is(&bucket, "d/f.bin", &data);
}

#[test]
fn a_corrupt_sidecar_means_a_whole_upload_with_a_warning() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let mut data = noise(40 * MIB, 41);
    let file = scratch.write("src/f.bin", &data);
    upload(&scratch, &bucket, &[]);
    let mut sidecar = bucket.get("d/f.bin.hssig");
    let middle = sidecar.len() / 2;
    sidecar[middle] ^= 0xff;
    bucket.put("d/f.bin.hssig", &sidecar);
    data[MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, stderr) = upload(&scratch, &bucket, &[]);
    assert_eq!(sent, data.len() as u64);
    assert!(stderr.contains("sidecar"), "{stderr}");
    assert_object_is(&bucket, "d/f.bin", &data);
    // …and the whole upload wrote a good sidecar again.
    data[2 * MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, _) = upload(&scratch, &bucket, &[]);
    assert!(sent <= 2 * PART, "sent {sent}");
    assert_object_is(&bucket, "d/f.bin", &data);
}

#[test]
fn a_sidecar_that_lies_is_caught_before_the_object_is_made() {
    // big2's sidecar replaced by big1's with big2's ETag written in: it passes
    // for fresh, and the local big2 (now big1's bytes, one edited) matches it
    // almost everywhere, so the delta would copy big2's old ranges. Each copy
    // is checked against the file's bytes: the lie is found, nothing is
    // committed from it, and the whole file goes instead.
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let big1 = noise(40 * MIB, 51);
    scratch.write("src/big1.bin", &big1);
    let file = scratch.write("src/big2.bin", &noise(40 * MIB, 52));
    upload(&scratch, &bucket, &[]);
    let etag2 = bucket.head("d/big2.bin").unwrap().etag;
    let forged = util::forged_sidecar(&bucket.get("d/big1.bin.hssig"), &etag2);
    bucket.put("d/big2.bin.hssig", &forged);

    let mut data = big1.clone();
    data[7 * MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, stderr) = upload(&scratch, &bucket, &[]);
    assert!(
        stderr.contains("sidecar does not describe the object"),
        "{stderr}"
    );
    assert_eq!(sent, data.len() as u64, "the whole file is sent");
    assert_object_is(&bucket, "d/big2.bin", &data);
    assert_eq!(bucket.pending_uploads(), 0, "the rebuild was aborted");
    // The sidecar written with the whole upload is true: the next edit is a
    // delta again.
    data[30 * MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, stderr) = upload(&scratch, &bucket, &[]);
    assert!(sent <= 2 * PART, "sent {sent}: {stderr}");
    assert_object_is(&bucket, "d/big2.bin", &data);
}

#[test]
fn shrinking_growing_and_truncating_stay_correct() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let data = noise(40 * MIB + 777, 51);
    let file = scratch.write("src/f.bin", &data);
    upload(&scratch, &bucket, &["--delta-threshold", "1MiB"]);
    let versions: Vec<Vec<u8>> = vec![
        // grown, last part small
        [data.clone(), noise(3000, 52)].concat(),
        // shrunk below one part
        data[..3 * MIB].to_vec(),
        // grown again from the small one
        [data[..3 * MIB].to_vec(), noise(20 * MIB, 53)].concat(),
        // a prefix dropped
        data[7 * MIB..].to_vec(),
        // truncated to nothing
        Vec::new(),
        // back from nothing
        data.clone(),
    ];
    for (i, version) in versions.iter().enumerate() {
        fs::write(&file, version).unwrap();
        set_newer(&file);
        upload(&scratch, &bucket, &["--delta-threshold", "1MiB"]);
        let got = bucket.get("d/f.bin");
        assert!(
            got == *version,
            "version {i}: {} bytes vs {}",
            got.len(),
            version.len()
        );
    }
    assert_eq!(bucket.pending_uploads(), 0);
}

/// Moves a file's mtime a few seconds ahead, so that a rewrite within the same
/// second as the previous upload still reads as newer than the object.
fn set_newer(path: &std::path::Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    util::set_mtime(path, now + 5, 0);
}

#[test]
fn a_remote_change_downloads_only_the_changed_blocks() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let mut data = noise(48 * MIB, 61);
    let file = scratch.write("src/f.bin", &data);
    upload(&scratch, &bucket, &[]);
    let download = |scratch: &Scratch| {
        let out = scratch
            .cmd()
            .args(["sync", "--yes", "--json"])
            .arg(bucket.url("d"))
            .arg(scratch.dst())
            .args(bucket.args())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let summary: serde_json::Value = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "summary")
            .unwrap();
        summary["report"]["bytes_sent"].as_u64().unwrap()
    };
    assert_eq!(download(&scratch), data.len() as u64);

    // The remote changes: two blocks' worth of edits and an insertion.
    data[10 * MIB] ^= 1;
    data[30 * MIB + 5] ^= 1;
    data.splice(MIB..MIB, noise(500, 62));
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    upload(&scratch, &bucket, &[]);

    let fetched = download(&scratch);
    // Blocks 0 (insert), the one at 10 MiB and the one at 30 MiB: three 5 MiB
    // blocks at most.
    assert!(fetched <= 3 * PART, "fetched {fetched} bytes");
    let local = fs::read(scratch.path("dst/f.bin")).unwrap();
    assert!(local == data, "the delta-downloaded file differs");
    assert!(util::temp_files(&scratch.dst()).is_empty());
}

#[test]
fn without_a_sidecar_generate_mode_reads_the_object_to_sign_it() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let mut data = noise(40 * MIB, 81);
    let file = scratch.write("src/f.bin", &data);
    // Uploaded by a tool that keeps no sidecar.
    bucket.put("d/f.bin", &data);
    data[20 * MIB] ^= 1;
    fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, saved, _) = upload(&scratch, &bucket, &["--remote-signature", "generate"]);
    assert!(sent <= 2 * PART, "sent {sent}");
    assert_eq!(sent + saved, data.len() as u64);
    assert_object_is(&bucket, "d/f.bin", &data);
    assert!(bucket.head("d/f.bin.hssig").is_some());
}
