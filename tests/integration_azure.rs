//! local ↔ Azure Blob Storage, Azure → Azure and S3 ↔ Azure through the real
//! binary, against azurite (and moto) on loopback, started by scripts/test.sh.
//! Each test has a container of its own.

mod util;

use util::azure::Container;
use util::fault_proxy::{FaultProxy, Faults};
use util::{Scratch, local, noise, sample_tree, set_mtime, stderr_of, stdout_of, tree};

fn hugesync(scratch: &Scratch, container: &Container, args: &[&str]) -> std::process::Output {
    scratch
        .cmd()
        .envs(container.env())
        .args(args)
        .output()
        .unwrap()
}

fn sync(
    scratch: &Scratch,
    container: &Container,
    src: &str,
    dst: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["sync", "--yes", src, dst];
    args.extend_from_slice(extra);
    hugesync(scratch, container, &args)
}

const MIB: usize = 1024 * 1024;

/// The connection string that sends hugesync through `proxy` to azurite.
fn via(proxy: &FaultProxy) -> (String, String) {
    (
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        util::azure::connection_string(&format!("{}/{}", proxy.endpoint, util::azure::ACCOUNT)),
    )
}

/// A proxy in front of azurite.
fn proxy_for(container: &Container, faults: Faults) -> FaultProxy {
    let server = container
        .endpoint
        .trim_end_matches(&format!("/{}", util::azure::ACCOUNT))
        .to_string();
    FaultProxy::start(&server, faults)
}

/// Runs `sync --yes --json FROM TO EXTRA…` with `env`; returns (bytes sent,
/// conflicts met, retries), asserting success.
fn sync_json(
    scratch: &Scratch,
    env: &[(String, String)],
    from: &str,
    to: &str,
    extra: &[&str],
) -> (u64, Vec<String>, u64) {
    let out = scratch
        .cmd()
        .env("HUGESYNC_STALL_TIMEOUT", "2s")
        .env("HUGESYNC_RETRY_MAX_DELAY", "300ms")
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
    let summary = events.iter().find(|e| e["event"] == "summary");
    let sent = summary.map_or(0, |s| s["report"]["bytes_sent"].as_u64().unwrap());
    let retries = summary.map_or(0, |s| s["report"]["retries"].as_u64().unwrap());
    let mut conflicts: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "conflict")
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    conflicts.sort();
    (sent, conflicts, retries)
}

/// Makes a file's mtime later than anything the store has, so the quick
/// check sees it as changed whatever the clocks say.
fn set_newer(path: &std::path::Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    set_mtime(path, now + 100, 0);
}

#[test]
fn deletes_propagate_and_sidecars_go_with_their_blobs() {
    let (scratch, container) = (Scratch::new(), Container::new());
    sample_tree(&scratch);
    scratch.write("src/large.bin", &noise(2 * MIB, 5));
    let env = container.env();
    let src = local(&scratch.src());
    sync_json(
        &scratch,
        &env,
        &src,
        &container.url("d"),
        &["--delta-threshold", "1MiB"],
    );
    assert!(container.keys().contains(&"d/large.bin.hssig".to_string()));
    std::fs::remove_file(scratch.path("src/large.bin")).unwrap();
    std::fs::remove_file(scratch.path("src/a.txt")).unwrap();
    sync_json(&scratch, &env, &src, &container.url("d"), &[]);
    assert!(
        container.keys().contains(&"d/a.txt".to_string()),
        "no --delete, no deletes"
    );
    sync_json(&scratch, &env, &src, &container.url("d"), &["--delete"]);
    assert_eq!(
        container.keys(),
        ["d/dir/b.bin", "d/dir/deeper/c.txt", "d/empty.txt"]
    );
}

#[test]
fn a_small_edit_to_a_large_blob_sends_about_one_block() {
    let (scratch, container) = (Scratch::new(), Container::new());
    let mut data = noise(64 * MIB, 21);
    let file = scratch.write("src/model.bin", &data);
    let src = local(&scratch.src());
    let blocks = ["--block-size", "64KiB"];
    let (sent, _, _) = sync_json(
        &scratch,
        &container.env(),
        &src,
        &container.url("d"),
        &blocks,
    );
    assert_eq!(sent, data.len() as u64);
    assert!(
        container.head("d/model.bin.hssig").is_some(),
        "large uploads are signed"
    );

    // A 100-byte overwrite in the middle and a 1 KiB insert near the start.
    for b in &mut data[32 * MIB..32 * MIB + 100] {
        *b ^= 0x5a;
    }
    data.splice(4096..4096, noise(1024, 22));
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let proxy = proxy_for(&container, Faults::default());
    let (sent, _, _) = sync_json(&scratch, &[via(&proxy)], &src, &container.url("d"), &blocks);
    // Counted on the wire: every request body (blocks, block list, sidecar).
    let wire = proxy
        .counters
        .body_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("delta of a 64 MiB blob: {sent} bytes of blocks, {wire} bytes of request bodies");
    assert!(
        wire <= MIB as u64,
        "{wire} bytes on the wire for a 1 KiB edit"
    );
    assert!(sent <= 3 * 64 * 1024, "sent {sent} bytes of blocks");
    assert!(
        container.get("d/model.bin") == data,
        "the rebuilt blob differs"
    );
    assert_eq!(container.uncommitted_blocks("d/model.bin"), 0);

    // The new sidecar describes the new blob: nothing more to send, and a
    // delta download of the blob into a stale copy fetches about one block.
    let (sent, _, _) = sync_json(
        &scratch,
        &container.env(),
        &src,
        &container.url("d"),
        &blocks,
    );
    assert_eq!(sent, 0);
    let stale = scratch.write("back/model.bin", &noise(64 * MIB, 21));
    set_mtime(&stale, 1_000_000, 0);
    let (fetched, _, _) = sync_json(
        &scratch,
        &container.env(),
        &container.url("d"),
        &local(&scratch.path("back")),
        &[],
    );
    assert!(fetched <= 4 * 64 * 1024, "fetched {fetched} bytes");
    assert!(std::fs::read(scratch.path("back/model.bin")).unwrap() == data);
}

#[test]
fn a_block_damaged_on_the_way_is_refused_by_its_crc64_and_never_committed() {
    let (scratch, container) = (Scratch::new(), Container::new());
    let data = noise(40 * MIB, 43);
    scratch.write("src/big.bin", &data);
    let proxy = proxy_for(&container, Faults::default());
    proxy.damage_parts(1);
    let out = scratch
        .cmd()
        .envs([via(&proxy)])
        .args(["sync", "--yes", "-j", "2"])
        .arg(scratch.src())
        .arg(container.url("d"))
        .output()
        .unwrap();
    assert_eq!(proxy.damaged(), 1);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Crc64Mismatch"),
        "{}",
        stderr_of(&out)
    );
    assert!(container.head("d/big.bin").is_none(), "nothing committed");
    // Every block carried Azure's CRC64 (CRC-64/NVME, little-endian), not an MD5.
    let heads = proxy.counters.part_heads.lock().unwrap().clone();
    assert!(!heads.is_empty());
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("x-ms-content-crc64:") && !lower.contains("content-md5:"),
            "{head}"
        );
    }

    // Undamaged, the next run sends it, and the service confirms each block.
    let (sent, _, _) = sync_json(
        &scratch,
        &[via(&proxy)],
        &local(&scratch.src()),
        &container.url("d"),
        &["-j", "2"],
    );
    assert!(sent >= data.len() as u64 / 2, "sent {sent}");
    assert!(container.get("d/big.bin") == data, "the blob differs");

    // --upload-checksum md5 sends Content-MD5 instead, refused the same way.
    scratch.write("src/big.bin", &noise(40 * MIB, 44));
    set_newer(&scratch.src().join("big.bin"));
    proxy.damage_parts(1);
    let out = scratch
        .cmd()
        .envs([via(&proxy)])
        .args(["sync", "--yes", "--upload-checksum", "md5"])
        .arg(scratch.src())
        .arg(container.url("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Md5Mismatch"),
        "{}",
        stderr_of(&out)
    );
    assert!(container.get("d/big.bin") == data, "the old blob stays");
}

#[test]
fn a_sidecar_that_lies_is_refused_by_the_service_and_the_whole_file_goes() {
    // As on S3 (tests/delta_s3.rs): a forged sidecar that passes for fresh.
    // Each Put Block From URL carries the MD5 the range must have; the service
    // refuses the first lying range, nothing is committed, the whole file goes.
    let scratch = Scratch::new();
    scratch.write(
        "config/hugesync/config.toml",
        b"delta_threshold = \"8MiB\"\n",
    );
    let container = Container::new();
    let big1 = noise(24 * MIB, 51);
    scratch.write("src/big1.bin", &big1);
    let file = scratch.write("src/big2.bin", &noise(24 * MIB, 52));
    let src = local(&scratch.src());
    let blocks = ["--block-size", "1MiB"];
    sync_json(
        &scratch,
        &container.env(),
        &src,
        &container.url("d"),
        &blocks,
    );
    let etag2 = container.head("d/big2.bin").unwrap().etag;
    let forged = util::forged_sidecar(&container.get("d/big1.bin.hssig"), &etag2);
    container.put("d/big2.bin.hssig", &forged);

    let mut data = big1.clone();
    data[5 * MIB] ^= 1;
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let out = hugesync(
        &scratch,
        &container,
        &[
            "sync",
            "--yes",
            &src,
            &container.url("d"),
            blocks[0],
            blocks[1],
        ],
    );
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("delta rebuilds: every range copied server-side carries the MD5"),
        "the plan names the check the store makes:\n{stdout}"
    );
    assert!(
        stderr.contains("sidecar does not describe the object"),
        "{stderr}"
    );
    assert!(
        container.get("d/big2.bin") == data,
        "the blob is the file's bytes"
    );
    // The blocks staged before the refusal stay uncommitted (never part of
    // the blob) until the service discards them: Azure does on the whole
    // upload's Put Blob, azurite keeps them.
    // The new sidecar is true: the next edit is a delta.
    data[20 * MIB] ^= 1;
    std::fs::write(&file, &data).unwrap();
    set_newer(&file);
    let (sent, _, _) = sync_json(
        &scratch,
        &container.env(),
        &src,
        &container.url("d"),
        &blocks,
    );
    assert!(sent <= 2 * MIB as u64, "sent {sent}");
    assert!(container.get("d/big2.bin") == data);
}

#[test]
fn a_killed_upload_resumes_from_its_uncommitted_blocks() {
    let (scratch, container) = (Scratch::new(), Container::new());
    let data = noise(128 * MIB, 41);
    scratch.write("src/big.bin", &data);
    let proxy = proxy_for(&container, Faults::default());
    let mut child = scratch
        .std_cmd()
        .envs([via(&proxy)])
        .args(["sync", "--yes", "-j", "2"])
        .arg(scratch.src())
        .arg(container.url("d"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while proxy.part_bytes() < 64 * MIB as u64 {
        assert!(
            start.elapsed().as_secs() < 120,
            "the upload never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: nothing runs after it
    child.wait().unwrap();
    assert!(
        container.head("d/big.bin").is_none(),
        "no blob before the commit"
    );
    assert!(container.uncommitted_blocks("d/big.bin") > 0);

    // Through the same endpoint as the upload: the resume state names it.
    let listed = scratch
        .cmd()
        .envs([via(&proxy)])
        .args(["uploads", &container.url("d")])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    let text = stdout_of(&listed);
    assert!(
        text.contains("d/big.bin") && text.contains("HugeSync's"),
        "{text}"
    );

    let before = proxy.part_bytes();
    let (_, _, _) = sync_json(
        &scratch,
        &[via(&proxy)],
        &local(&scratch.src()),
        &container.url("d"),
        &["-j", "2"],
    );
    let resent = proxy.part_bytes() - before;
    assert!(
        resent <= 128 * MIB as u64 - 40 * MIB as u64,
        "the resumed run sent {} MiB of blocks",
        resent / MIB as u64
    );
    assert!(container.get("d/big.bin") == data, "the blob differs");
    let listed = hugesync(&scratch, &container, &["uploads", &container.url("d")]);
    assert!(
        stdout_of(&listed).contains("No incomplete"),
        "{}",
        stdout_of(&listed)
    );
}

#[test]
fn a_blob_written_by_someone_else_before_the_commit_is_a_conflict() {
    use util::fault_proxy::{Interference, Store};
    let (scratch, container) = (Scratch::new(), Container::new());
    scratch.write("src/a.txt", b"ours, version one");
    let src = local(&scratch.src());
    sync_json(&scratch, &container.env(), &src, &container.url("d"), &[]);
    scratch.write("src/a.txt", b"ours, version two: longer");
    scratch.write("src/big.bin", &noise(40 * MIB, 3));
    let proxy = proxy_for(&container, Faults::default());
    let account = util::azure::ACCOUNT;
    for (trigger, name) in [
        (
            format!("PUT /{account}/{}/d/a.txt ", container.name),
            "a.txt",
        ),
        (
            format!("PUT /{account}/{}/d/big.bin?comp=blocklist", container.name),
            "big.bin",
        ),
    ] {
        proxy.interfere(Interference {
            trigger,
            path: format!("{}/d/{name}", container.name),
            body: b"theirs".to_vec(),
            store: Store::Azure,
        });
    }
    let (_, conflicts, _) = sync_json(&scratch, &[via(&proxy)], &src, &container.url("d"), &[]);
    assert!(proxy.interfered());
    assert_eq!(conflicts, ["a.txt", "big.bin"]);
    // Planned again from what is there now, then written over it knowingly.
    assert_eq!(container.get("d/a.txt"), b"ours, version two: longer");
    assert!(container.get("d/big.bin") == noise(40 * MIB, 3));

    // With --fail-on-conflict the run stops (exit 5) and theirs stays.
    scratch.write("src/a.txt", b"ours, version three");
    proxy.interfere(Interference {
        trigger: format!("PUT /{account}/{}/d/a.txt ", container.name),
        path: format!("{}/d/a.txt", container.name),
        body: b"theirs again".to_vec(),
        store: Store::Azure,
    });
    let out = scratch
        .cmd()
        .envs([via(&proxy)])
        .args([
            "sync",
            "--yes",
            "--fail-on-conflict",
            &src,
            &container.url("d"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert_eq!(container.get("d/a.txt"), b"theirs again");
}

#[test]
fn s3_to_azure_and_back() {
    let (scratch, container) = (Scratch::new(), Container::new());
    let bucket = util::s3::Bucket::new();
    bucket.put("src/small.txt", b"small");
    bucket.put("src/dir/big.bin", &noise(40 * MIB, 8));
    let mut env = container.env().to_vec();
    env.push(("HUGESYNC_ENDPOINT_URL".into(), bucket.endpoint.clone()));
    env.push(("HUGESYNC_PATH_STYLE".into(), "true".into()));
    // S3 → Azure asks Azure to read presigned S3 URLs itself (Put Block From
    // URL). azurite reads only its own blobs and refuses them, as a real
    // account refuses an endpoint it cannot reach: the copy then goes through
    // this machine, with a warning.
    let out = scratch
        .cmd()
        .envs(env.iter().cloned())
        .args(["sync", "--yes", &bucket.url("src"), &container.url("copy")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        said.contains("copied through this machine instead"),
        "{said}"
    );
    assert_eq!(container.get("copy/small.txt"), b"small");
    assert!(container.get("copy/dir/big.bin") == noise(40 * MIB, 8));
    let (sent, _, _) = sync_json(
        &scratch,
        &env,
        &bucket.url("src"),
        &container.url("copy"),
        &[],
    );
    assert_eq!(sent, 0, "a re-run finds nothing to do");

    // Azure → Azure (another container, through a counting proxy): the
    // service copies; no object bytes leave this machine.
    let other = Container::new();
    let proxy = proxy_for(&container, Faults::default());
    let (sent, _, _) = sync_json(
        &scratch,
        &[via(&proxy)],
        &container.url("copy"),
        &other.url("again"),
        &[],
    );
    assert_eq!(sent, 0);
    let wire = proxy
        .counters
        .body_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        wire < 64 * 1024,
        "{wire} bytes of request bodies for a server-side copy"
    );
    assert!(other.get("again/dir/big.bin") == noise(40 * MIB, 8));

    // Azure → S3: streamed through in parts, memory bounded by -j.
    let (sent, _, _) = sync_json(
        &scratch,
        &env,
        &container.url("copy"),
        &bucket.url("back"),
        &[],
    );
    assert_eq!(sent, 40 * MIB as u64 + 5);
    assert_eq!(bucket.get("back/small.txt"), b"small");
    assert!(bucket.get("back/dir/big.bin") == noise(40 * MIB, 8));
}

#[test]
fn a_refused_key_is_exit_4_with_the_variables_to_check() {
    let (scratch, container) = (Scratch::new(), Container::new());
    scratch.write("src/a.txt", b"a");
    let wrong = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        util::azure::ACCOUNT,
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=",
        container.endpoint
    );
    let out = scratch
        .cmd()
        .env("AZURE_STORAGE_CONNECTION_STRING", &wrong)
        .args(["sync", "--yes", &local(&scratch.src()), &container.url("d")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("AZURE_STORAGE_CONNECTION_STRING"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("d3Jvbmcta2V5"),
        "the key was printed: {stderr}"
    );

    // No account at all: the same exit code, the same hint.
    let out = scratch
        .cmd()
        .args(["sync", "--yes", &local(&scratch.src()), &container.url("d")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("AZURE_STORAGE_ACCOUNT"),
        "{}",
        stderr_of(&out)
    );

    // `hugesync config` names the origin of a key, never the key.
    let out = scratch
        .cmd()
        .env("AZURE_STORAGE_KEY", "c2VjcmV0LWtleS12YWx1ZQ==")
        .args(["config"])
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(text.contains("azure_key"), "{text}");
    assert!(!text.contains("c2VjcmV0LWtleS12YWx1ZQ"), "{text}");
}

#[test]
fn unicode_spaced_and_reserved_character_names_survive_both_ways() {
    let (scratch, container) = (Scratch::new(), Container::new());
    let names = [
        "ünï cödé/fïlé 1.txt",
        "odd/a+b=c&d;e,f@g$h.bin",
        "odd/per%cent #hash ?query.txt",
        "emoji/🦀 crab.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        scratch.write(&format!("src/{name}"), &noise(1000 + i, i as u64));
    }
    let src = local(&scratch.src());
    let out = sync(&scratch, &container, &src, &container.url("u"), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut expected: Vec<String> = names.iter().map(|n| format!("u/{n}")).collect();
    expected.sort();
    assert_eq!(container.keys(), expected);
    let back = scratch.path("back");
    let out = sync(
        &scratch,
        &container,
        &container.url("u"),
        &local(&back),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&scratch.src()), tree(&back));
    let again = sync(&scratch, &container, &src, &container.url("u"), &[]);
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
}

#[test]
fn a_name_azure_would_change_fails_alone_with_a_clear_error() {
    let (scratch, container) = (Scratch::new(), Container::new());
    scratch.write("src/fine.txt", b"fine");
    scratch.write("src/notes.", b"would become notes");
    let (src, dst) = (local(&scratch.src()), container.url("n"));
    let out = sync(&scratch, &container, &src, &dst, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("notes.: Azure Blob Storage drops the dots that end a name"),
        "{err}"
    );
    assert_eq!(container.keys(), ["n/fine.txt"]);
}

#[test]
fn an_access_tier_is_written_for_files_not_sidecars() {
    let (scratch, container) = (Scratch::new(), Container::new());
    // Past the multipart threshold: the tier goes on Put Block List too.
    scratch.write("src/big.bin", &noise(33 << 20, 3));
    scratch.write("src/small.txt", b"small");
    let src = local(&scratch.src());
    let out = sync(
        &scratch,
        &container,
        &src,
        &container.url("d"),
        &["--storage-class", "cool"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let tier = |key: &str| container.head(key).unwrap().access_tier;
    assert_eq!(tier("d/big.bin").as_deref(), Some("Cool"));
    assert_eq!(tier("d/small.txt").as_deref(), Some("Cool"));
    assert_ne!(tier("d/big.bin.hssig").as_deref(), Some("Cool"));
    let out = sync(
        &scratch,
        &container,
        &src,
        &container.url("d"),
        &["--storage-class", "GLACIER"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Hot, Cool, Cold, Archive"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_read_only_sas_stops_the_run_at_the_first_refusal_with_exit_4() {
    let scratch = Scratch::new();
    for i in 0..6 {
        scratch.write(&format!("src/f{i}.txt"), format!("file {i}").as_bytes());
    }
    let container = Container::new();
    // A container SAS that may read and list, not write.
    let (token, _) = util::azure::container_sas(
        &container.name,
        "rl",
        reqsign_core::time::Timestamp::now() + std::time::Duration::from_secs(3600),
    );
    let read_only = format!(
        "BlobEndpoint={};SharedAccessSignature={token}",
        container.endpoint
    );
    let out = scratch
        .cmd()
        .env("AZURE_STORAGE_CONNECTION_STRING", &read_only)
        .args(["sync", "--yes", "--json", "-j", "1"])
        .arg(scratch.src())
        .arg(container.url("ro"))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let summary = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["event"] == "summary")
        .map(|e| e["report"].clone())
        .expect("a summary event");
    assert_eq!(summary["failed"], 1, "stopped after the first: {summary}");
    let refusal = summary["stopped_on_denial"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("AuthorizationPermissionMismatch") || refusal.contains("403"),
        "the store's word is kept: {summary}"
    );
    assert!(container.keys().is_empty());
}
