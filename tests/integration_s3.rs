//! local ↔ S3 and S3 → S3 through the real binary, against moto on loopback
//! (started by scripts/test.sh). Each test has a bucket of its own.

mod util;

use std::fs;

use util::fault_proxy::{FaultProxy, Faults};
use util::s3::{Bucket, auth_endpoint};
use util::{Scratch, local, noise, sample_tree, set_mode, set_mtime, stderr_of, stdout_of, tree};

fn sync(
    scratch: &Scratch,
    bucket: &Bucket,
    src: &str,
    dst: &str,
    extra: &[&str],
) -> std::process::Output {
    scratch
        .cmd()
        .arg("sync")
        .arg("--yes")
        .arg(src)
        .arg(dst)
        .args(bucket.args())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn changes_and_deletes_propagate_and_sidecars_go_with_their_objects() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    sample_tree(&scratch);
    assert!(
        sync(
            &scratch,
            &bucket,
            &local(&scratch.src()),
            &bucket.url("p"),
            &[]
        )
        .status
        .success()
    );
    bucket.put("p/a.txt.hssig", b"sidecar of a.txt");
    scratch.write("src/dir/deeper/c.txt", b"gamma, longer now");
    fs::remove_file(scratch.path("src/a.txt")).unwrap();

    // Without --delete the extra object stays.
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("p"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.get("p/dir/deeper/c.txt"), b"gamma, longer now");
    assert!(bucket.head("p/a.txt").is_some());

    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("p"),
        &["--delete"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(bucket.head("p/a.txt").is_none());
    assert!(
        bucket.head("p/a.txt.hssig").is_none(),
        "the sidecar goes with its object"
    );
    assert_eq!(
        bucket.keys(),
        ["p/dir/b.bin", "p/dir/deeper/c.txt", "p/empty.txt"]
    );
}

#[test]
fn download_to_an_empty_directory_gives_the_same_bytes() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    sample_tree(&scratch);
    assert!(
        sync(
            &scratch,
            &bucket,
            &local(&scratch.src()),
            &bucket.url(""),
            &[]
        )
        .status
        .success()
    );
    bucket.put("dir/b.bin.hssig", b"bookkeeping, never a user file");
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url(""),
        &local(&scratch.dst()),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&scratch.src()), tree(&scratch.dst()));
    assert!(!scratch.path("dst/dir/b.bin.hssig").exists());

    let again = sync(
        &scratch,
        &bucket,
        &bucket.url(""),
        &local(&scratch.dst()),
        &[],
    );
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
}

#[test]
fn archive_mode_round_trips_mode_and_nanosecond_mtime() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let file = scratch.write("src/script.sh", b"#!/bin/sh\necho hi\n");
    set_mode(&file, 0o751);
    set_mtime(&file, 1_600_000_000, 123_456_789);
    scratch.write("src/sub/data.txt", b"data");
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("m"),
        &["-a"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let head = bucket.head("m/script.sh").unwrap();
    assert_eq!(head.metadata["hugesync-mtime"], "1600000000123456789");
    assert_eq!(head.metadata["hugesync-mode"], "751");

    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("m"),
        &local(&scratch.dst()),
        &["-a"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let copy = scratch.path("dst/script.sh");
    assert_eq!(util::mode(&copy), 0o751);
    assert_eq!(util::mtime(&copy), util::mtime(&file));
    // A directory implied by keys has no attributes to restore: it keeps what
    // creation gave it, not mode 0 and the epoch.
    let sub = scratch.path("dst/sub");
    assert_eq!(util::mode(&sub) & 0o700, 0o700, "dst/sub is usable");
    assert!(
        util::mtime(&sub) > std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000),
        "dst/sub has a real mtime"
    );

    // Restored times differ from LastModified; the plan asks the object's
    // metadata before calling the file changed.
    let again = sync(
        &scratch,
        &bucket,
        &bucket.url("m"),
        &local(&scratch.dst()),
        &["-a"],
    );
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
    set_mode(&copy, 0o700);
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("m"),
        &local(&scratch.dst()),
        &["-a"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(util::mode(&copy), 0o751);
}

/// rclone against the bucket's endpoint, its S3 settings on the command line.
fn rclone(tool: &std::path::Path, bucket: &Bucket, args: &[&str]) -> std::process::Output {
    std::process::Command::new(tool)
        .env("RCLONE_CONFIG", "/dev/null")
        .args([
            "--s3-provider=Other",
            "--s3-access-key-id=test",
            "--s3-secret-access-key=test",
            "--s3-region=us-east-1",
            "--s3-force-path-style=true",
        ])
        .arg(format!("--s3-endpoint={}", bucket.endpoint))
        .args(args)
        .output()
        .unwrap()
}

/// Writes and reads Parquet with pyarrow: `write DIR NAME ROWS SEED` makes a
/// file of ROWS rows; `read ENDPOINT PATH` reads the dataset at PATH
/// (`bucket/prefix`) over S3 and prints its row count, or fails as pyarrow
/// does.
const PARQUET_PEER: &str = r#"
import sys
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.dataset as ds, pyarrow.fs as pafs
if sys.argv[1] == "write":
    _, _, path, rows, seed = sys.argv
    rows, seed = int(rows), int(seed)
    ids = pa.array(range(seed * rows, (seed + 1) * rows), type=pa.int64())
    values = pa.array([(i * 2654435761) % 1000003 / 7.0 for i in range(rows)], type=pa.float64())
    pq.write_table(pa.table({"id": ids, "value": values}), path, compression="none")
else:
    _, _, endpoint, path = sys.argv
    s3 = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                           endpoint_override=endpoint, scheme="http")
    print(ds.dataset(path, filesystem=s3, format="parquet").to_table().num_rows)
"#;

/// A table's Parquet files synced by delta read back as a dataset over the
/// S3 prefix with pyarrow: with sidecars beside them it fails on the first
/// `.hssig`; with `--sidecars hidden` every row is read.
#[test]
fn a_parquet_dataset_reads_back_over_s3_with_hidden_sidecars() {
    let Some(python) = util::peer_tool("HUGESYNC_TEST_PYARROW") else {
        return;
    };
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let script = scratch.write("peer.py", PARQUET_PEER.as_bytes());
    let pyarrow = |args: &[&str]| {
        std::process::Command::new(&python)
            .arg(&script)
            .args(args)
            .output()
            .unwrap()
    };
    let rows = 150_000;
    for (part, seed) in [("part-0", "0"), ("part-1", "1")] {
        let path = scratch.path(&format!("src/t/{part}.parquet"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let out = pyarrow(&["write", &local(&path), &rows.to_string(), seed]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(fs::metadata(&path).unwrap().len() > 2 * 1024 * 1024);
    }
    let src = local(&scratch.src());
    let lake = bucket.url("lake");
    let delta = ["--delta-threshold", "1MiB"];
    let dataset = format!("{}/lake/t", bucket.name);
    let read = || pyarrow(&["read", &bucket.endpoint, &dataset]);

    // Signed on upload, then the table grows: its files go by delta.
    let out = sync(&scratch, &bucket, &src, &lake, &delta);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let grown = scratch.path("src/t/part-1.parquet");
    let out = pyarrow(&["write", &local(&grown), &(rows + 20_000).to_string(), "1"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = sync(
        &scratch,
        &bucket,
        &src,
        &lake,
        &[&delta[..], &["--json"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains(r#""delta":1"#),
        "{}",
        stdout_of(&out)
    );
    assert!(
        bucket
            .keys()
            .contains(&"lake/t/part-1.parquet.hssig".to_string())
    );
    let beside = read();
    assert!(!beside.status.success(), "{}", stdout_of(&beside));
    assert!(
        stderr_of(&beside).contains("part-0.parquet.hssig")
            || stderr_of(&beside).contains("part-1.parquet.hssig"),
        "{}",
        stderr_of(&beside)
    );

    // Hidden: the sidecars move under lake/.hugesync/sig/, the data stays.
    let out = sync(
        &scratch,
        &bucket,
        &src,
        &lake,
        &[&delta[..], &["--sidecars", "hidden"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let keys = bucket.keys();
    assert!(
        keys.contains(&"lake/.hugesync/sig/t/part-0.parquet.hssig".to_string()),
        "{keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("lake/t/") && k.ends_with(".hssig")),
        "{keys:?}"
    );
    let hidden = read();
    assert!(hidden.status.success(), "{}", stderr_of(&hidden));
    assert_eq!(stdout_of(&hidden).trim(), (2 * rows + 20_000).to_string());
    // The whole lake too: pyarrow skips the dot-folder.
    let whole = pyarrow(&["read", &bucket.endpoint, &format!("{}/lake", bucket.name)]);
    assert!(whole.status.success(), "{}", stderr_of(&whole));
    assert_eq!(stdout_of(&whole).trim(), (2 * rows + 20_000).to_string());
}

#[test]
fn times_and_modes_cross_between_rclone_and_hugesync() {
    let Some(tool) = util::peer_tool("HUGESYNC_TEST_RCLONE") else {
        return;
    };
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let a = scratch.write("src/a.txt", b"alpha");
    set_mtime(&a, 1_600_000_000, 123_456_789);
    set_mode(&a, 0o640);
    let b = scratch.write("src/sub/b.bin", &noise(5000, 3));
    set_mtime(&b, 1_500_000_000, 0);
    let remote = |prefix: &str| format!(":s3:{}/{prefix}", bucket.name);

    // A bucket filled by rclone (--metadata: its mode, uid and gid too)…
    let out = rclone(
        &tool,
        &bucket,
        &["copy", "--metadata", &local(&scratch.src()), &remote("rc")],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !bucket
            .head("rc/a.txt")
            .unwrap()
            .metadata
            .contains_key("hugesync-mtime")
    );
    // …comes down with -a with its times and modes,
    let down = scratch.path("down");
    let out = sync(&scratch, &bucket, &bucket.url("rc"), &local(&down), &["-a"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(util::mtime(&down.join("a.txt")), util::mtime(&a));
    assert_eq!(util::mtime(&down.join("sub/b.bin")), util::mtime(&b));
    assert_eq!(util::mode(&down.join("a.txt")), 0o640);
    // and a second run finds nothing changed (the times match rclone's).
    let again = sync(&scratch, &bucket, &bucket.url("rc"), &local(&down), &["-a"]);
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );

    // Uploaded by HugeSync with --metadata-compat rclone, rclone sees the
    // files' own times and modes; without it, only the upload's time.
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("hs"),
        &["-a", "--metadata-compat", "rclone"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("plain"),
        &["-a"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let listed = |prefix: &str| -> Vec<serde_json::Value> {
        let out = rclone(
            &tool,
            &bucket,
            &["lsjson", "-R", "--metadata", &remote(prefix)],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let entry = |entries: &[serde_json::Value], path: &str| {
        entries
            .iter()
            .find(|e| e["Path"] == path)
            .unwrap_or_else(|| panic!("{path} in {entries:?}"))
            .clone()
    };
    let compat = listed("hs");
    let a_listed = entry(&compat, "a.txt");
    assert!(
        a_listed["ModTime"]
            .as_str()
            .unwrap()
            .starts_with("2020-09-13T12:26:40.123456789"),
        "{a_listed}"
    );
    assert_eq!(a_listed["Metadata"]["mode"], "100640", "{a_listed}");
    let b_listed = entry(&compat, "sub/b.bin");
    assert!(
        b_listed["ModTime"]
            .as_str()
            .unwrap()
            .starts_with("2017-07-14T02:40:00"),
        "{b_listed}"
    );
    let plain = entry(&listed("plain"), "a.txt");
    assert!(
        !plain["ModTime"].as_str().unwrap().starts_with("2020-09-13"),
        "{plain}"
    );
}

#[test]
fn listings_page_past_a_thousand_keys() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    for i in 0..1100 {
        scratch.write(
            &format!("src/d{}/f{i:04}", i % 7),
            format!("{i}").as_bytes(),
        );
    }
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("many"),
        &["-j", "16"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.keys().len(), 1100);
    let again = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("many"),
        &[],
    );
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("many"),
        &local(&scratch.dst()),
        &["-j", "16"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&scratch.src()), tree(&scratch.dst()));
}

#[test]
fn unicode_and_spaced_names_survive_both_ways() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    scratch.write("src/ünïcödé/файл 1.txt", b"one");
    scratch.write("src/emoji 😀 + plus&amp.bin", b"two");
    assert!(
        sync(
            &scratch,
            &bucket,
            &local(&scratch.src()),
            &bucket.url("u"),
            &[]
        )
        .status
        .success()
    );
    assert!(bucket.keys().contains(&"u/ünïcödé/файл 1.txt".to_string()));
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("u"),
        &local(&scratch.dst()),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&scratch.src()), tree(&scratch.dst()));
}

#[test]
fn large_files_go_by_multipart_and_come_back_by_ranges() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let data = noise(64 * 1024 * 1024 + 12345, 9);
    scratch.write("src/big.bin", &data);
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("big"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let head = bucket.head("big/big.bin").unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert!(head.etag.contains('-'), "a multipart ETag: {}", head.etag);
    assert_eq!(bucket.pending_uploads(), 0);
    assert!(bucket.get("big/big.bin") == data);

    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("big"),
        &local(&scratch.dst()),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(fs::read(scratch.path("dst/big.bin")).unwrap() == data);
    assert!(util::temp_files(&scratch.dst()).is_empty());
}

/// CRC-64/NVME bit by bit, as the standard defines it (reflected
/// 0xad93d23594c93659, all ones in and out), base64 of its big-endian bytes as
/// S3 writes it: independent of the crate the tool computes it with.
fn crc64nvme_header(data: &[u8]) -> String {
    use base64::Engine;
    let mut crc = u64::MAX;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x9a6c_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    base64::engine::general_purpose::STANDARD.encode((!crc).to_be_bytes())
}

#[test]
fn uploads_carry_the_files_crc64nvme_or_with_the_setting_their_md5() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    assert_eq!(crc64nvme_header(b"123456789"), "rosUhgp5mIg=");
    let small = noise(3000, 5);
    let big = noise(40 << 20, 6);
    scratch.write("src/small.bin", &small);
    scratch.write("src/big.bin", &big);
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("crc"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    // A single PutObject: the server holds the CRC the body carried, which is
    // the file's.
    let head = bucket.head("crc/small.bin").unwrap();
    assert_eq!(head.crc64nvme, Some(crc64nvme_header(&small)));
    // A multipart upload (parts of 5 MiB and more, each with its CRC; moto
    // keeps no full-object value of its own) whose bytes arrive whole.
    let head = bucket.head("crc/big.bin").unwrap();
    assert!(head.etag.contains('-'), "multipart: {}", head.etag);
    assert!(bucket.get("crc/big.bin") == big);
    assert_eq!(bucket.pending_uploads(), 0);

    // For a service without the newer checksums: Content-MD5, so the
    // single PUT's ETag is the file's MD5 and no CRC is stored.
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("md5"),
        &["--upload-checksum", "md5"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let head = bucket.head("md5/small.bin").unwrap();
    assert_eq!(head.crc64nvme, None);
    assert_eq!(
        head.etag.trim_matches('"'),
        hex::encode(hugesync::storage::body::md5_of(&small))
    );
    assert!(bucket.get("md5/big.bin") == big);

    // A bad value is a usage error naming the choices.
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("bad"),
        &["--upload-checksum", "sha1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("crc64nvme"), "{}", stderr_of(&out));
}

#[test]
fn an_object_damaged_on_the_way_down_never_takes_its_name_and_is_fetched_again() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let data = noise(300_000, 7);
    scratch.write("src/small.bin", &data);
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("d"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let down = scratch.path("down");
    let download = || {
        scratch
            .cmd()
            .args(["sync", "--yes"])
            .arg(bucket.url("d"))
            .arg(local(&down))
            .args(proxy.args())
            .output()
            .unwrap()
    };

    // One GET damaged: the whole GET's CRC64NVME (which S3 sends when asked)
    // catches it, and the object is fetched again.
    proxy.damage_answers(1);
    let out = download();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(proxy.damaged(), 1);
    assert!(
        stderr_of(&out).contains("CRC64NVME") && stderr_of(&out).contains("again"),
        "{}{}",
        stderr_of(&out),
        stdout_of(&out)
    );
    assert!(fs::read(down.join("small.bin")).unwrap() == data);

    // Damaged every time: the file fails, and nothing takes its name.
    fs::remove_dir_all(&down).unwrap();
    proxy.damage_answers(100);
    let out = download();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("damaged"), "{}", stderr_of(&out));
    let left: Vec<_> = fs::read_dir(&down)
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_summary_counts_the_requests_made_by_class() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    for name in ["a", "b", "c"] {
        scratch.write(&format!("src/{name}.txt"), name.as_bytes());
    }
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("r"),
        &["--json"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = stdout_of(&out)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "summary")
        .unwrap();
    let requests = &summary["report"]["requests"];
    // Three PutObjects, the destination's listing; nothing else.
    assert_eq!(requests["put"], 3, "{requests}");
    assert!(requests["list"].as_u64().unwrap() >= 1, "{requests}");
    assert_eq!(requests["copy"], 0, "{requests}");
    assert_eq!(requests["delete"], 0, "{requests}");

    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("r"),
        &["--delete"],
    );
    assert!(out.status.success());
    std::fs::remove_file(scratch.src().join("c.txt")).unwrap();
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("r"),
        &["--delete"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("Requests: "),
        "{}",
        stdout_of(&out)
    );
    assert!(stdout_of(&out).contains("1 delete)"), "{}", stdout_of(&out));
}

#[test]
fn keys_that_would_escape_the_destination_are_refused() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    bucket.put("in/ok.txt", b"fine");
    bucket.put("in/../outside.txt", b"escape");
    bucket.put("in/a//b.txt", b"empty segment");
    bucket.put("in/./dot.txt", b"dot");
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("in"),
        &local(&scratch.dst()),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("in/../outside.txt"), "{stderr}");
    assert_eq!(fs::read(scratch.path("dst/ok.txt")).unwrap(), b"fine");
    assert!(!scratch.path("outside.txt").exists());
    assert_eq!(tree(&scratch.dst()).len(), 1);
}

#[test]
fn server_side_copy_between_prefixes() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    sample_tree(&scratch);
    assert!(
        sync(
            &scratch,
            &bucket,
            &local(&scratch.src()),
            &bucket.url("one"),
            &[]
        )
        .status
        .success()
    );
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("one"),
        &bucket.url("two"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.get("two/dir/b.bin"), noise(100_000, 1));
    let again = sync(
        &scratch,
        &bucket,
        &bucket.url("one"),
        &bucket.url("two"),
        &[],
    );
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
}

#[test]
fn names_an_object_store_cannot_hold_fail_per_file_and_others_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    scratch.write("src/fine.txt", b"ok");
    scratch.write("src/looks-like.hssig", b"reserved");
    // The folder hidden sidecars live in, whatever the layout set.
    scratch.write("src/.hugesync/notes.txt", b"reserved too");
    // Each name within the file system's 255 bytes, the path over S3's 1024.
    let long = format!("src/{}", vec!["x".repeat(220); 5].join("/"));
    scratch.write(&long, b"too long a key");
    // Not UTF-8: encoded in the key, and back as the same bytes.
    let latin1 = scratch
        .src()
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    fs::write(&latin1, b"not utf-8").unwrap();
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("n"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("looks-like.hssig: names ending in .hssig"),
        "{stderr}"
    );
    assert!(
        stderr.contains(".hugesync/notes.txt: names ending in .hssig"),
        "{stderr}"
    );
    assert!(
        stderr.contains("object key would be 1106 bytes, over the 1018"),
        "{stderr}"
    );
    assert_eq!(bucket.keys(), ["n/caf\u{F7E9}.txt", "n/fine.txt"]);
    let back = scratch.path("back");
    let out = sync(&scratch, &bucket, &bucket.url("n"), &local(&back), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let name = back.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    assert_eq!(fs::read(name).unwrap(), b"not utf-8");
    // The next run finds both sides alike: nothing to send.
    let again = sync(&scratch, &bucket, &local(&back), &bucket.url("n"), &["-n"]);
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
}

#[test]
fn missing_or_wrong_credentials_stop_with_exit_4() {
    let scratch = Scratch::new();
    scratch.write("src/a.txt", b"a");
    let secret = "wJalrXUtnFEMI-not-a-real-secret";
    let out = scratch
        .cmd()
        .args(["sync", "--yes"])
        .arg(scratch.src())
        .arg("s3://some-bucket/x")
        .args(["--endpoint-url", &auth_endpoint(), "--path-style"])
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("credentials"), "{stderr}");
    assert!(!stderr.contains(secret) && !stdout_of(&out).contains(secret));

    let out = scratch
        .cmd()
        .args(["sync", "--yes"])
        .arg(scratch.src())
        .arg("s3://some-bucket/x")
        .args(["--endpoint-url", &auth_endpoint(), "--path-style"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
}

#[test]
fn a_missing_bucket_is_a_clear_fatal_error() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    scratch.write("src/a.txt", b"a");
    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        "s3://no-such-bucket-here/x",
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("does the bucket exist"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn checksum_mode_compares_recorded_blake3_of_objects() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let small = scratch.write("src/small.txt", b"version one");
    let big_data = noise(40 * 1024 * 1024, 71);
    let big = scratch.write("src/big.bin", &big_data);
    for path in [&small, &big] {
        set_mtime(path, 1_600_000_000, 0);
    }
    let args = ["--delta-threshold", "32MiB"];
    assert!(
        sync(
            &scratch,
            &bucket,
            &local(&scratch.src()),
            &bucket.url("c"),
            &args
        )
        .status
        .success()
    );

    // Same sizes, same (old) mtimes, other bytes: only content can tell.
    fs::write(&small, b"version two").unwrap();
    let mut changed = big_data.clone();
    changed[123] ^= 1;
    fs::write(&big, &changed).unwrap();
    for path in [&small, &big] {
        set_mtime(path, 1_600_000_000, 0);
    }
    let quick = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("c"),
        &args,
    );
    assert!(
        stdout_of(&quick).contains("Nothing to do"),
        "{}",
        stdout_of(&quick)
    );

    let out = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("c"),
        &["--checksum", "--delta-threshold", "32MiB"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.get("c/small.txt"), b"version two");
    assert!(bucket.get("c/big.bin") == changed);
    let again = sync(
        &scratch,
        &bucket,
        &local(&scratch.src()),
        &bucket.url("c"),
        &["--checksum"],
    );
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
}

#[test]
fn overlapping_prefixes_on_one_bucket_are_refused() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    bucket.put("ov/a.txt", b"a");
    bucket.put("ov/sub/b.txt", b"b");
    for (src, dst) in [
        ("ov", "ov/sub"),
        ("ov/sub", "ov"),
        ("ov", "ov"),
        ("ov", "ov/"),
    ] {
        let out = sync(
            &scratch,
            &bucket,
            &bucket.url(src),
            &bucket.url(dst),
            &["--delete"],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{src} -> {dst}: {}",
            stderr_of(&out)
        );
        assert!(
            stderr_of(&out).contains(&bucket.url("")),
            "{}",
            stderr_of(&out)
        );
    }
    assert_eq!(
        bucket.keys(),
        ["ov/a.txt", "ov/sub/b.txt"],
        "nothing was touched"
    );
    // A sibling prefix that merely starts with the same letters is fine.
    let out = sync(
        &scratch,
        &bucket,
        &bucket.url("ov"),
        &bucket.url("overflow"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// `--provider minio` supplies path-style addressing and a signing region:
/// with only the endpoint given, a sync against the server works; a provider
/// missing what it needs is refused before anything is read, naming it.
#[test]
fn a_provider_by_name_fills_in_addressing_and_asks_for_what_it_lacks() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    sample_tree(&scratch);
    let out = scratch
        .cmd()
        .args(["sync", "--yes", "--provider", "minio", "--endpoint-url"])
        .arg(&bucket.endpoint)
        .arg(local(&scratch.src()))
        .arg(bucket.url("p"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.get("p/dir/b.bin"), noise(100_000, 1));

    let out = scratch
        .cmd()
        .args(["sync", "--yes", "--provider", "r2"])
        .arg(local(&scratch.src()))
        .arg(bucket.url("q"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("--provider-account"),
        "{}",
        stderr_of(&out)
    );
    assert!(bucket.keys().iter().all(|k| k.starts_with("p/")));

    // `config` shows what the provider made of the settings.
    let out = scratch
        .cmd()
        .args(["config", "--provider", "r2", "--provider-account", "abc123"])
        .output()
        .unwrap();
    assert!(
        stdout_of(&out).contains(
            "provider r2 gives: endpoint https://abc123.r2.cloudflarestorage.com, region auto"
        ),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn a_storage_class_is_written_for_files_not_sidecars_and_archive_classes_send_files_whole() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    // Past the multipart threshold (CreateMultipartUpload carries the class
    // too) and past the delta threshold (a sidecar is written).
    let big = scratch.write("src/big.bin", &noise(33 << 20, 7));
    scratch.write("src/small.txt", b"small");
    let (src, dst) = (local(&scratch.src()), bucket.url("d"));
    let out = sync(
        &scratch,
        &bucket,
        &src,
        &dst,
        &["--storage-class", "standard-ia"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let class = |key: &str| bucket.head(key).unwrap().storage_class;
    assert_eq!(class("d/big.bin").as_deref(), Some("STANDARD_IA"));
    assert_eq!(class("d/small.txt").as_deref(), Some("STANDARD_IA"));
    // Every plan reads the sidecar: it stays STANDARD.
    assert_eq!(class("d/big.bin.hssig"), None);

    // An edit under an archive class: the old object cannot be copied, so
    // the plan sends the file whole and says why.
    let mut bytes = fs::read(&big).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&big, &bytes).unwrap();
    set_mtime(&big, 4_000_000_000, 0);
    let plan = scratch
        .cmd()
        .args(["plan", "-v", "--storage-class", "GLACIER", &src, &dst])
        .args(bucket.args())
        .output()
        .unwrap();
    let text = stdout_of(&plan);
    assert!(plan.status.success(), "{}", stderr_of(&plan));
    assert!(
        text.contains(
            "storage class: GLACIER: objects cannot be read, copied or changed until restored"
        ),
        "{text}"
    );
    assert!(text.contains("sent whole, not by delta"), "{text}");
    let out = sync(
        &scratch,
        &bucket,
        &src,
        &dst,
        &["--storage-class", "GLACIER"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(class("d/big.bin").as_deref(), Some("GLACIER"));
    // Unchanged files keep theirs.
    assert_eq!(class("d/small.txt").as_deref(), Some("STANDARD_IA"));

    // Another store's class, or a class for a local directory: exit 2.
    for (to, says) in [
        (dst.as_str(), "S3 has no such storage class"),
        (
            &*scratch.path("local").display().to_string(),
            "no storage classes",
        ),
    ] {
        let out = sync(
            &scratch,
            &bucket,
            &src,
            to,
            &["--storage-class", "NEARLINE"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains(says), "{}", stderr_of(&out));
    }
}

#[test]
fn every_plan_carries_a_cost_estimate_in_text_and_json() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    scratch.write("src/a.txt", b"a");
    scratch.write("src/b.txt", b"b");
    scratch.write("src/big.bin", &noise(33 << 20, 9));
    let (src, dst) = (local(&scratch.src()), bucket.url("d"));
    let plan = |extra: &[&str]| {
        let out = scratch
            .cmd()
            .args(["plan", &src, &dst])
            .args(bucket.args())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out)
    };
    // AWS's prices by name (the endpoint stays moto's).
    let json: serde_json::Value =
        serde_json::from_str(&plan(&["--json", "--provider", "aws"])).unwrap();
    let cost = &json["cost"];
    // Two small PUTs; 33 MiB in three 16 MiB parts, the two around them
    // and the sidecar.
    assert_eq!(cost["requests"]["put"], 2 + 3 + 2 + 1, "{cost}");
    assert_eq!(cost["requests"]["list"], 1, "{cost}");
    assert_eq!(cost["bytes_up"], 2 + (33 << 20), "{cost}");
    assert_eq!(cost["prices"][0], "AWS S3 STANDARD", "{cost}");
    let total = cost["money"]["total"].as_f64().unwrap();
    assert!(
        (total - (8.0 * 0.005 + 0.005) / 1000.0).abs() < 1e-12,
        "{cost}"
    );
    let text = plan(&["--provider", "aws"]);
    assert!(
        text.contains("cost: ≈ <$0.0001 at AWS S3 STANDARD prices"),
        "{text}"
    );
    assert!(
        text.contains("requests: 8 PUT/part, 0 COPY/part-copy, 0 GET, 1 LIST, 0 DELETE"),
        "{text}"
    );

    // An endpoint of unknown prices: requests counted, money asked for…
    let text = plan(&[]);
    assert!(
        text.contains("no prices for this S3-compatible endpoint"),
        "{text}"
    );
    // … and given in config.toml.
    scratch.write(
        "config/hugesync/config.toml",
        b"[prices.\"s3-compatible\"]\nput_per_1000 = 1000.0\n",
    );
    let text = plan(&[]);
    assert!(
        text.contains("cost: ≈ $8.00 at s3-compatible prices"),
        "{text}"
    );
}
