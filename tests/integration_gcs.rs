//! local ↔ Google Cloud Storage, GCS → GCS and GCS ↔ S3 / Azure through the
//! real binary, against fake-gcs-server (and moto, azurite) on loopback,
//! started by scripts/test.sh. Each test has a bucket of its own.

mod util;

use std::sync::atomic::Ordering;

use util::fault_proxy::{FaultProxy, Faults};
use util::gcs::GcsBucket;
use util::{Scratch, local, noise, sample_tree, stderr_of, stdout_of, tree};

const MIB: usize = 1024 * 1024;

fn hugesync(scratch: &Scratch, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    scratch
        .cmd()
        .envs(env.iter().cloned())
        .args(args)
        .output()
        .unwrap()
}

fn sync(
    scratch: &Scratch,
    bucket: &GcsBucket,
    src: &str,
    dst: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["sync", "--yes", src, dst];
    args.extend_from_slice(extra);
    hugesync(scratch, &bucket.env(), &args)
}

/// `sync --yes --json`: (bytes sent, warnings), asserting success.
fn sync_json(
    scratch: &Scratch,
    env: &[(String, String)],
    from: &str,
    to: &str,
    extra: &[&str],
) -> (u64, Vec<String>) {
    let out = scratch
        .cmd()
        .envs(env.iter().cloned())
        .args(["sync", "--yes", "--json", from, to])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sync {from} {to}: {:?} {}{}",
        out.status,
        stderr_of(&out),
        stdout_of(&out)
    );
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let sent = events
        .iter()
        .find(|e| e["event"] == "summary")
        .map_or(0, |s| s["report"]["bytes_sent"].as_u64().unwrap());
    let warnings = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    (sent, warnings)
}

fn set_newer(path: &std::path::Path) {
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    filetime::set_file_mtime(path, filetime::FileTime::from_system_time(later)).unwrap();
}

#[test]
fn a_large_file_is_composed_from_parallel_parts_and_leaves_no_temporaries() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    let data = noise(40 * MIB, 61);
    scratch.write("src/big.bin", &data);
    let src = local(&scratch.src());
    let out = sync(&scratch, &bucket, &src, &bucket.url(""), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(bucket.get("big.bin") == data, "the composed object differs");
    assert_eq!(
        bucket.keys(),
        ["big.bin", "big.bin.hssig"],
        "the parts were removed once composed"
    );
    let back = scratch.path("back");
    let out = sync(&scratch, &bucket, &bucket.url(""), &local(&back), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(std::fs::read(back.join("big.bin")).unwrap() == data);
}

#[test]
fn an_append_sends_only_the_new_bytes_and_an_edit_goes_whole() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    let mut data = noise(64 * MIB, 62);
    let file = scratch.write("src/log.bin", &data);
    let src = local(&scratch.src());
    sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &[]);

    // 1 MiB appended to 64 MiB: the old object is composed with the tail,
    // whose bytes are all that cross the wire.
    data.extend_from_slice(&noise(MIB, 63));
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let plan = hugesync(&scratch, &bucket.env(), &["plan", &src, &bucket.url("d")]);
    let text = stdout_of(&plan);
    assert!(text.contains("delta"), "{text}");
    assert!(
        text.contains("delta rebuilds: the old object is reused only whole"),
        "{text}"
    );
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let env = [("STORAGE_EMULATOR_HOST".to_string(), proxy.endpoint.clone())];
    let (sent, warnings) = sync_json(&scratch, &env, &src, &bucket.url("d"), &[]);
    assert_eq!(sent, MIB as u64, "{warnings:?}");
    let on_wire = proxy.counters.body_bytes.load(Ordering::Relaxed);
    assert!(
        on_wire <= 2 * MIB as u64,
        "{on_wire} bytes crossed the wire for a 1 MiB append (the sidecar is the rest)"
    );
    assert!(
        bucket.get("d/log.bin") == data,
        "the appended object differs"
    );
    assert!(
        !bucket
            .keys()
            .iter()
            .any(|k| k.starts_with(".hugesync-staging/")),
        "{:?}",
        bucket.keys()
    );

    // The new sidecar describes the new object: the next append is a delta too.
    data.extend_from_slice(&noise(1000, 64));
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _) = sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &[]);
    assert_eq!(sent, 1000);
    assert!(bucket.get("d/log.bin") == data);

    // An edit inside: compose cannot reuse part of an object; the plan says
    // so and the whole file goes.
    data[1000] ^= 0xff;
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let plan = hugesync(&scratch, &bucket.env(), &["plan", &src, &bucket.url("d")]);
    assert!(
        stdout_of(&plan).contains("did not grow by appending: sent whole"),
        "{}",
        stdout_of(&plan)
    );
    let (sent, _) = sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &[]);
    assert_eq!(sent, data.len() as u64);
    assert!(bucket.get("d/log.bin") == data);
}

#[test]
fn with_chunked_objects_an_edit_inside_sends_only_the_chunks_it_touches() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    let mut data = noise(64 * MIB, 65);
    let file = scratch.write("src/disk.img", &data);
    let src = local(&scratch.src());
    let chunked = ["--gcs-chunked-objects"];
    let (sent, _) = sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &chunked);
    assert_eq!(sent, data.len() as u64);
    // Kept as chunks of 20 MiB (whole 5 MiB blocks of at least 16 MiB).
    let chunk_keys: Vec<String> = bucket
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(".hugesync-chunks/"))
        .collect();
    assert_eq!(
        chunk_keys,
        (1..=4)
            .map(|n| format!(".hugesync-chunks/d/disk.img/{n:05}"))
            .collect::<Vec<_>>()
    );
    let chunk = 20 * MIB as u64;

    // An edit across a chunk boundary and one inside another chunk: the plan
    // says what is reused and the price, the wire carries the three chunks.
    for at in [20 * MIB - 50, 50 * MIB] {
        for b in &mut data[at..at + 100] {
            *b ^= 0x5a;
        }
    }
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let plan = hugesync(
        &scratch,
        &bucket.env(),
        &["plan", &src, &bucket.url("d"), "--gcs-chunked-objects"],
    );
    let text = stdout_of(&plan);
    assert!(text.contains("1 of 4 unchanged"), "{text}");
    assert!(text.contains("keep the data twice"), "{text}");
    assert!(text.contains("send 60 MiB"), "{text}");
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let env = [("STORAGE_EMULATOR_HOST".to_string(), proxy.endpoint.clone())];
    let (sent, warnings) = sync_json(&scratch, &env, &src, &bucket.url("d"), &chunked);
    assert_eq!(sent, 3 * chunk, "{warnings:?}");
    let on_wire = proxy.counters.body_bytes.load(Ordering::Relaxed);
    assert!(
        on_wire <= 3 * chunk + MIB as u64,
        "{on_wire} bytes crossed the wire for edits in three chunks"
    );
    assert!(
        bucket.get("d/disk.img") == data,
        "the composed object differs"
    );

    // One more edit: one chunk.
    data[5] ^= 1;
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _) = sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &chunked);
    assert_eq!(sent, chunk);
    assert!(bucket.get("d/disk.img") == data);

    // Chunks are never files: a download brings the object alone.
    let back = scratch.path("back");
    let out = sync(&scratch, &bucket, &bucket.url("d"), &local(&back), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&back).len(), 1, "{:?}", tree(&back));

    // Replaced without chunks (the flag off, a small file), then deleted:
    // the chunks go with what they were kept for.
    data.truncate(1000);
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &[]);
    assert!(bucket.get("d/disk.img") == data);
    assert!(
        !bucket
            .keys()
            .iter()
            .any(|k| k.starts_with(".hugesync-chunks/")),
        "{:?}",
        bucket.keys()
    );
    let big = noise(40 * MIB, 66);
    std::fs::write(&file, &big).unwrap();
    set_newer(&file);
    sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &chunked);
    assert_eq!(
        bucket
            .keys()
            .iter()
            .filter(|k| k.starts_with(".hugesync-chunks/"))
            .count(),
        2
    );
    std::fs::remove_file(&file).unwrap();
    scratch.write("src/other", b"x");
    sync_json(
        &scratch,
        &bucket.env(),
        &src,
        &bucket.url("d"),
        &["--delete"],
    );
    assert_eq!(bucket.keys(), ["d/other"]);
}

#[test]
fn a_sidecar_that_lies_cannot_make_the_object() {
    // big2's sidecar replaced by big1's (with big2's generation written in):
    // the local file is big1 plus an appended tail, so the sidecar claims an
    // append. The old object's CRC32C is compared with the file's first bytes
    // before compose: refused, and the whole file goes.
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    let big1 = noise(36 * MIB, 65);
    scratch.write("src/big1.bin", &big1);
    let file = scratch.write("src/big2.bin", &noise(36 * MIB, 66));
    let src = local(&scratch.src());
    sync_json(&scratch, &bucket.env(), &src, &bucket.url("fg"), &[]);
    let generation = bucket.head("fg/big2.bin").unwrap().generation;
    let forged = util::forged_sidecar(&bucket.get("fg/big1.bin.hssig"), &generation);
    bucket.put("fg/big2.bin.hssig", &forged);

    let mut data = big1.clone();
    data.extend_from_slice(&noise(MIB, 67));
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, warnings) = sync_json(&scratch, &bucket.env(), &src, &bucket.url("fg"), &[]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("sidecar does not describe the object")),
        "{warnings:?}"
    );
    assert_eq!(sent, data.len() as u64, "the whole file went");
    assert!(bucket.get("fg/big2.bin") == data, "the object is the file");
    // Its new sidecar is true: the next append is a delta again.
    data.extend_from_slice(&noise(1000, 68));
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _) = sync_json(&scratch, &bucket.env(), &src, &bucket.url("fg"), &[]);
    assert_eq!(sent, 1000);
    assert!(bucket.get("fg/big2.bin") == data);
}

#[test]
fn temporaries_of_an_interrupted_upload_are_never_files_and_are_found_by_uploads() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    // What a killed parallel composite upload leaves: parts under the
    // staging folder at the top of the bucket.
    bucket.put(
        ".hugesync-staging/00000000000000aa/00001/big.bin",
        b"part one",
    );
    bucket.put(
        ".hugesync-staging/00000000000000aa/00002/big.bin",
        b"part two",
    );
    bucket.put("kept.txt", b"kept");
    let back = scratch.path("back");
    let out = sync(&scratch, &bucket, &bucket.url(""), &local(&back), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&back).len(), 1, "{:?}", tree(&back));

    let listed = hugesync(&scratch, &bucket.env(), &["uploads", &bucket.url("")]);
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert!(
        stdout_of(&listed).contains("big.bin"),
        "{}",
        stdout_of(&listed)
    );
    let aborted = hugesync(
        &scratch,
        &bucket.env(),
        &["uploads", &bucket.url(""), "--abort", "--all"],
    );
    assert!(aborted.status.success(), "{}", stderr_of(&aborted));
    assert_eq!(bucket.keys(), ["kept.txt"]);
}

#[test]
fn gcs_to_gcs_copies_server_side_and_s3_and_azure_go_both_ways() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    let s3 = util::s3::Bucket::new();
    let container = util::azure::Container::new();
    sample_tree(&scratch);
    scratch.write("src/big.bin", &noise(36 * MIB, 69));
    let src = local(&scratch.src());
    let mut env: Vec<(String, String)> = bucket.env().to_vec();
    env.extend(container.env());
    let s3_args: Vec<String> = s3.args().to_vec();
    let s3_args: Vec<&str> = s3_args.iter().map(String::as_str).collect();
    sync_json(&scratch, &env, &src, &bucket.url("a"), &[]);

    // GCS → GCS: rewritten by the service, nothing through this machine.
    let (sent, _) = sync_json(&scratch, &env, &bucket.url("a"), &bucket.url("b"), &[]);
    assert_eq!(sent, 0, "a server-side copy sends nothing");
    // GCS → S3 → GCS and GCS → Azure → GCS, streamed.
    sync_json(&scratch, &env, &bucket.url("b"), &s3.url("c"), &s3_args);
    sync_json(&scratch, &env, &s3.url("c"), &bucket.url("d"), &s3_args);
    // Azure is handed a URL to pull each object from GCS itself; azurite reads
    // only its own blobs, so here the copy falls back to this machine.
    let (_, warnings) = sync_json(&scratch, &env, &bucket.url("d"), &container.url("e"), &[]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("copied through this machine instead")),
        "{warnings:?}"
    );
    sync_json(&scratch, &env, &container.url("e"), &bucket.url("f"), &[]);
    let back = scratch.path("back");
    sync_json(&scratch, &env, &bucket.url("f"), &local(&back), &[]);
    assert_eq!(tree(&scratch.src()), tree(&back));
}

#[test]
fn without_credentials_the_run_ends_with_exit_4_and_says_where_they_come_from() {
    // No emulator, and an ADC file that is not there: refused before any
    // request reaches a server, with the places credentials come from.
    let scratch = Scratch::new();
    sample_tree(&scratch);
    let out = scratch
        .cmd()
        .env_remove("STORAGE_EMULATOR_HOST")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            scratch.path("missing-key.json"),
        )
        .args(["plan", &local(&scratch.src()), "gs://some-bucket/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("no usable Google credentials"), "{stderr}");
    assert!(
        stderr.contains("missing-key.json"),
        "the file is named: {stderr}"
    );
    assert!(
        stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{stderr}"
    );
}

#[test]
fn a_remote_change_downloads_only_the_changed_blocks() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    let mut data = noise(48 * MIB, 70);
    let file = scratch.write("src/f.bin", &data);
    let src = local(&scratch.src());
    let dst = local(&scratch.dst());
    sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &[]);
    let (fetched, _) = sync_json(&scratch, &bucket.env(), &bucket.url("d"), &dst, &[]);
    assert_eq!(fetched, data.len() as u64);

    // The object changes (an edited block and an insertion, so it goes up
    // whole with a fresh sidecar); the local copy fetches only what differs.
    data[30 * MIB + 5] ^= 1;
    data.splice(MIB..MIB, noise(500, 71));
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    sync_json(&scratch, &bucket.env(), &src, &bucket.url("d"), &[]);
    let (fetched, _) = sync_json(&scratch, &bucket.env(), &bucket.url("d"), &dst, &[]);
    assert!(
        fetched <= 3 * 5 * MIB as u64,
        "fetched {} MiB",
        fetched / MIB as u64
    );
    assert!(std::fs::read(scratch.path("dst/f.bin")).unwrap() == data);
}

#[test]
fn a_name_gcs_refuses_fails_alone_with_a_clear_error() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    scratch.write("src/fine.txt", b"fine");
    scratch.write("src/line\nbreak.txt", b"refused");
    let (src, dst) = (local(&scratch.src()), bucket.url("n"));
    let out = sync(&scratch, &bucket, &src, &dst, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("line\\nbreak.txt: Google Cloud Storage refuses carriage returns and line feeds in object names; rename it to sync it"),
        "{err}"
    );
    assert_eq!(bucket.keys(), ["n/fine.txt"]);
}

#[test]
fn a_storage_class_is_written_for_files_not_sidecars() {
    let (scratch, bucket) = (Scratch::new(), GcsBucket::new());
    // One request each (fake-gcs-server ignores a compose's class; the
    // request carries it, as the upload's does).
    scratch.write("src/signed.bin", &noise(3 << 20, 5));
    scratch.write("src/small.txt", b"small");
    let src = local(&scratch.src());
    let out = sync(
        &scratch,
        &bucket,
        &src,
        &bucket.url("d"),
        &["--storage-class", "nearline", "--delta-threshold", "1MiB"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let class = |key: &str| bucket.head(key).unwrap().storage_class;
    assert_eq!(class("d/signed.bin"), "NEARLINE");
    assert_eq!(class("d/small.txt"), "NEARLINE");
    assert_eq!(class("d/signed.bin.hssig"), "STANDARD");
}
