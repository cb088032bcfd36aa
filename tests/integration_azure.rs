//! local ↔ Azure Blob Storage, Azure → Azure and S3 ↔ Azure through the real
//! binary, against azurite (and moto) on loopback, started by scripts/test.sh.
//! Each test has a container of its own.

mod util;

use util::azure::Container;
use util::fault_proxy::{FaultProxy, Faults};
use util::{Scratch, noise, set_mode, set_mtime, stderr_of, stdout_of, tree};

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

fn local(path: &std::path::Path) -> String {
    path.display().to_string()
}

fn sample_tree(scratch: &Scratch) {
    scratch.write("src/a.txt", b"alpha");
    scratch.write("src/dir/b.bin", &noise(100_000, 1));
    scratch.write("src/dir/deeper/c.txt", b"gamma");
    scratch.write("src/empty.txt", b"");
}

#[test]
fn tree_up_and_down_is_byte_identical_with_metadata() {
    let (scratch, container) = (Scratch::new(), Container::new());
    sample_tree(&scratch);
    std::os::unix::fs::symlink("a.txt", scratch.path("src/link")).unwrap();
    set_mode(&scratch.path("src/a.txt"), 0o640);
    set_mtime(&scratch.path("src/dir/b.bin"), 1_600_000_000, 123_456_789);
    let src = local(&scratch.src());
    let out = sync(&scratch, &container, &src, &container.url("data"), &["-a"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        container.keys(),
        [
            "data/a.txt",
            "data/dir/b.bin",
            "data/dir/deeper/c.txt",
            "data/empty.txt",
            "data/link"
        ]
    );
    assert_eq!(container.get("data/dir/b.bin"), noise(100_000, 1));
    let head = container.head("data/dir/b.bin").unwrap();
    assert_eq!(
        head.metadata.get("hugesync_mtime").map(String::as_str),
        Some("1600000000123456789")
    );

    let back = scratch.path("back");
    let out = sync(
        &scratch,
        &container,
        &container.url("data"),
        &local(&back),
        &["-a"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(tree(&scratch.src()), tree(&back));
}

#[test]
fn a_noop_resync_lists_once_and_writes_nothing() {
    let (scratch, container) = (Scratch::new(), Container::new());
    sample_tree(&scratch);
    let src = local(&scratch.src());
    let out = sync(&scratch, &container, &src, &container.url("data"), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let before: Vec<_> = container
        .keys()
        .iter()
        .map(|k| container.head(k).unwrap().etag)
        .collect();

    let proxy = FaultProxy::start(
        &container.endpoint.replace("/devstoreaccount1", ""),
        Faults::default(),
    );
    let endpoint = format!("{}/devstoreaccount1", proxy.endpoint);
    let again = scratch
        .cmd()
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            util::azure::connection_string(&endpoint),
        )
        .args(["sync", "--yes", &src, &container.url("data")])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );
    assert_eq!(proxy.writes(), 0, "a no-op re-run wrote");
    assert_eq!(proxy.requests(), 1, "one listing page, no HEAD per blob");
    let after: Vec<_> = container
        .keys()
        .iter()
        .map(|k| container.head(k).unwrap().etag)
        .collect();
    assert_eq!(before, after);
}
