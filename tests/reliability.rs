//! Failure on the wire and concurrent change, against moto through a
//! fault-injecting proxy (tests/util/fault_proxy.rs): syncs that meet resets,
//! 503 SlowDown and stalls complete with the right bytes; refusals are not
//! retried; an object changed between plan and write is noticed.

mod util;

use std::fs;

use util::fault_proxy::{FaultProxy, Faults, Interference, Store};
use util::s3::{Bucket, auth_endpoint};
use util::{Scratch, noise, stderr_of};

const MIB: usize = 1024 * 1024;

/// The binary with quick stall detection and short backoff, so that injected
/// faults cost the test seconds, not minutes.
fn hugesync(scratch: &Scratch) -> assert_cmd::Command {
    let mut cmd = scratch.cmd();
    cmd.env("HUGESYNC_STALL_TIMEOUT", "2s")
        .env("HUGESYNC_RETRY_MAX_DELAY", "300ms");
    cmd
}

/// Runs `sync --yes --json FROM TO` through the proxy; returns the bytes sent
/// the paths of the conflicts met and the requests retried, asserting success.
fn sync_via(
    scratch: &Scratch,
    proxy: &FaultProxy,
    from: &str,
    to: &str,
    extra: &[&str],
) -> (u64, Vec<String>, u64) {
    let out = hugesync(scratch)
        .args(["sync", "--yes", "--json", from, to])
        .args(proxy.args())
        .args(extra)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "sync {from} {to} failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let summary = events.iter().find(|event| event["event"] == "summary");
    let sent = summary.map_or(0, |s| s["report"]["bytes_sent"].as_u64().unwrap());
    let retries = summary.map_or(0, |s| s["report"]["retries"].as_u64().unwrap());
    let mut conflicts: Vec<String> = events
        .iter()
        .filter(|event| event["event"] == "conflict")
        .map(|event| event["path"].as_str().unwrap().to_string())
        .collect();
    conflicts.sort();
    (sent, conflicts, retries)
}

fn text(path: &std::path::Path) -> String {
    path.to_str().unwrap().to_string()
}

#[test]
fn a_delta_upload_completes_through_faults() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let mut data = noise(64 * MIB, 5);
    let file = scratch.write("src/model.bin", &data);
    let direct = FaultProxy::start(&bucket.endpoint, Faults::default());
    let src = text(&scratch.src());
    sync_via(&scratch, &direct, &src, &bucket.url("d"), &[]);

    data[40 * MIB..40 * MIB + 100].fill(0xAB);
    data.splice(MIB..MIB, noise(1024, 6));
    fs::write(&file, &data).unwrap();
    let flaky = FaultProxy::start(&bucket.endpoint, Faults::mixed(0.10));
    let (sent, _, _) = sync_via(&scratch, &flaky, &src, &bucket.url("d"), &[]);
    assert!(sent < 32 * MIB as u64, "sent {sent} bytes: not a delta");
    assert!(
        bucket.get("d/model.bin") == data,
        "the rebuilt object differs"
    );
    assert_eq!(bucket.pending_uploads(), 0);

    // The sidecar written through the faults describes the new object.
    let (sent, _, _) = sync_via(&scratch, &direct, &src, &bucket.url("d"), &[]);
    assert_eq!(sent, 0);
}

#[test]
fn refused_credentials_stop_at_once_without_retries() {
    let scratch = Scratch::new();
    scratch.write("src/a.txt", b"a");
    let proxy = FaultProxy::start(&auth_endpoint(), Faults::default());
    let out = hugesync(&scratch)
        .args(["sync", "--yes"])
        .arg(scratch.src())
        .arg("s3://no-such-access/d")
        .args(proxy.args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(
        proxy.requests() <= 2,
        "{} requests for a refusal",
        proxy.requests()
    );
}

/// Uploads `src/` once directly, then arms the proxy so that "someone else"
/// writes `theirs` over `d/a.txt` and creates `d/new.txt` just before our
/// writes of them reach the server.
fn race_setup(scratch: &Scratch, bucket: &Bucket) -> FaultProxy {
    scratch.write("src/a.txt", b"ours, version one");
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    sync_via(
        scratch,
        &proxy,
        &text(&scratch.src()),
        &bucket.url("d"),
        &[],
    );
    scratch.write("src/a.txt", b"ours, version two: longer");
    scratch.write("src/new.txt", b"our new file");
    for name in ["a.txt", "new.txt"] {
        proxy.interfere(Interference {
            trigger: format!("PUT /{}/d/{name}", bucket.name),
            path: format!("{}/d/{name}", bucket.name),
            body: b"theirs".to_vec(),
            store: Store::S3,
        });
    }
    proxy
}

#[test]
fn an_object_changed_after_the_plan_is_planned_again() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let proxy = race_setup(&scratch, &bucket);
    let (_, conflicts, _) = sync_via(
        &scratch,
        &proxy,
        &text(&scratch.src()),
        &bucket.url("d"),
        &[],
    );
    assert!(proxy.interfered());
    assert_eq!(conflicts, ["a.txt", "new.txt"]);
    // Planned again from what is there now, then written over it knowingly.
    assert_eq!(bucket.get("d/a.txt"), b"ours, version two: longer");
    assert_eq!(bucket.get("d/new.txt"), b"our new file");
}

#[test]
fn fail_on_conflict_stops_and_keeps_their_version() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let proxy = race_setup(&scratch, &bucket);
    let out = hugesync(&scratch)
        .args(["sync", "--yes", "-j", "1", "--fail-on-conflict"])
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .args(proxy.args())
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("--fail-on-conflict"), "{stderr}");
    assert_eq!(bucket.get("d/a.txt"), b"theirs");
}

#[test]
fn a_multipart_upload_looks_before_it_completes() {
    // moto ignores conditions on CompleteMultipartUpload: the HEAD just
    // before completing is what notices the object someone else created.
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    let data = noise(40 * MIB, 3);
    scratch.write("src/big.bin", &data);
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    proxy.interfere(Interference {
        trigger: format!("HEAD /{}/d/big.bin ", bucket.name),
        path: format!("{}/d/big.bin", bucket.name),
        body: b"theirs".to_vec(),
        store: Store::S3,
    });
    let (_, conflicts, _) = sync_via(
        &scratch,
        &proxy,
        &text(&scratch.src()),
        &bucket.url("d"),
        &[],
    );
    assert!(proxy.interfered(), "no HEAD before completing");
    assert_eq!(conflicts, ["big.bin"]);
    assert!(bucket.get("d/big.bin") == data);
    assert_eq!(bucket.pending_uploads(), 0);
}

#[test]
fn a_server_that_keeps_failing_gets_a_bounded_number_of_attempts() {
    let (scratch, bucket) = (Scratch::new(), Bucket::new());
    scratch.write("src/a.txt", b"a");
    let proxy = FaultProxy::start(
        &bucket.endpoint,
        Faults {
            slow_down: 1.0,
            ..Faults::default()
        },
    );
    let out = hugesync(&scratch)
        .args(["sync", "--yes", "--retries", "3"])
        .arg(scratch.src())
        .arg(bucket.url("d"))
        .args(proxy.args())
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SlowDown"), "{stderr}");
    // The listing: one attempt and three retries, then the run gives up.
    assert_eq!(proxy.requests(), 4);
}
