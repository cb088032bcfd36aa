//! local ↔ SSH server (SFTP) through the real binary, against OpenSSH's sshd on
//! loopback, started by scripts/test.sh with keys made for the run and an ssh
//! config file naming it `hugesync-test` (a Host alias: HostName, Port, User,
//! IdentityFile, known_hosts). The server is this machine, so each test reads
//! what it holds straight from the disk.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use util::sftp::{HOST, RemoteDir};
use util::{
    Scratch, local, mode, noise, sample_tree, set_mode, set_mtime, stderr_of, stdout_of, tree,
};

fn hugesync(scratch: &Scratch, args: &[&str], config: &str) -> std::process::Output {
    scratch
        .cmd()
        .args(args)
        .args(["--ssh-config", config])
        .output()
        .unwrap()
}

/// `sync --yes --json`: the summary report, asserting success.
fn sync_json(scratch: &Scratch, from: &str, to: &str, extra: &[&str]) -> serde_json::Value {
    sync_json_via(scratch, from, to, extra, &util::sftp::config())
}

fn sync_json_via(
    scratch: &Scratch,
    from: &str,
    to: &str,
    extra: &[&str],
    config: &str,
) -> serde_json::Value {
    let mut args = vec!["sync", "--yes", "--json", from, to];
    args.extend_from_slice(extra);
    let out = hugesync(scratch, &args, config);
    assert!(
        out.status.success(),
        "sync {from} {to}: {:?} {}{}",
        out.status,
        stderr_of(&out),
        stdout_of(&out)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["event"] == "summary")
        .map(|e| e["report"].clone())
        .expect("a summary event")
}

#[test]
fn the_server_keeps_modes_mtimes_links_and_empty_directories() {
    // The round trip is tests/conformance.rs's; what the server holds in
    // between is read here, from its disk.
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    sample_tree(&scratch);
    std::fs::create_dir_all(scratch.path("src/empty-dir")).unwrap();
    std::os::unix::fs::symlink("a.txt", scratch.path("src/link")).unwrap();
    set_mode(&scratch.path("src/a.txt"), 0o600);
    set_mode(&scratch.path("src/dir/b.bin"), 0o751);
    set_mtime(&scratch.path("src/dir/b.bin"), 1_500_000_000, 0);
    let src = local(&scratch.src());
    sync_json(&scratch, &src, &remote.url("t"), &["-a"]);
    // The same bytes, modes, mtimes (to the second), link, empty directory;
    // no temp files.
    assert_eq!(tree(&scratch.src()), tree(&remote.join("t")));
    assert_eq!(mode(&remote.join("t/a.txt")), 0o600);
    assert_eq!(mode(&remote.join("t/dir/b.bin")), 0o751);
    assert_eq!(
        util::mtime(&remote.join("t/dir/b.bin")),
        util::mtime(&scratch.path("src/dir/b.bin"))
    );
    assert!(util::temp_files(&remote.join("t")).is_empty());
}

#[test]
fn a_name_that_is_not_utf8_comes_back_with_its_bytes_and_backups_stay_on_the_server() {
    use std::os::unix::ffi::OsStrExt;
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::create_dir_all(scratch.src()).unwrap();
    std::fs::write(scratch.src().join(latin1), b"latin-1").unwrap();
    let kept = scratch.write("src/kept.txt", b"version 1");
    let (src, dst) = (local(&scratch.src()), remote.url("t"));
    sync_json(&scratch, &src, &dst, &[]);
    // The SFTP library sends UTF-8 paths only: the name travels encoded,
    // as object keys do, and comes back as its bytes.
    let down = scratch.path("down");
    sync_json(&scratch, &dst, &local(&down), &[]);
    assert_eq!(std::fs::read(down.join(latin1)).unwrap(), b"latin-1");
    let again = hugesync(&scratch, &["sync", "-n", &src, &dst], &util::sftp::config());
    assert!(
        stdout_of(&again).contains("Nothing to do"),
        "{}",
        stdout_of(&again)
    );

    // An absolute --backup-dir is a directory on the server, outside the root.
    // The new version has the old one's size: its mtime, a few seconds on,
    // is what shows the change (the server keeps whole seconds, and this
    // runs within one).
    std::fs::write(&kept, b"version 2").unwrap();
    let later = filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() + 5, 0);
    filetime::set_file_mtime(&kept, later).unwrap();
    let backups = remote.join("kept");
    let report = sync_json(
        &scratch,
        &src,
        &dst,
        &["--backup-dir", backups.to_str().unwrap()],
    );
    assert_eq!(report["copied"], 1, "{report}");
    assert_eq!(
        std::fs::read(backups.join("kept.txt")).unwrap(),
        b"version 1"
    );
    assert_eq!(
        std::fs::read(remote.join("t/kept.txt")).unwrap(),
        b"version 2"
    );
}

/// A TCP relay in front of sshd that counts the bytes the client sends, and
/// can cut every connection it carries (a network that drops).
struct CountingRelay {
    port: u16,
    sent: Arc<AtomicU64>,
    open: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl CountingRelay {
    fn start(upstream_port: u16) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let open: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
        let carried = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let server = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
                carried.lock().unwrap().push(client.try_clone().unwrap());
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_read, mut c_write) = (server, client);
                let up = counter.clone();
                std::thread::spawn(move || pump(&mut c_read, &mut s_write, Some(&up)));
                std::thread::spawn(move || pump(&mut s_read, &mut c_write, None));
            }
        });
        CountingRelay { port, sent, open }
    }

    /// Cuts every connection open now; later ones go through.
    fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// An ssh config (and its known_hosts) naming this relay `alias`.
    fn config(&self, scratch: &Scratch, alias: &str) -> String {
        let text = config_for(alias, self.port, None);
        let key = text
            .lines()
            .last()
            .unwrap()
            .trim_start_matches("# key ")
            .to_string();
        let known = scratch.path(&format!("known_hosts_{alias}"));
        std::fs::write(&known, format!("{alias} {key}\n")).unwrap();
        let config = scratch.path(&format!("ssh_config_{alias}"));
        std::fs::write(&config, config_for(alias, self.port, Some(&known))).unwrap();
        local(&config)
    }
}

fn pump(from: &mut TcpStream, to: &mut TcpStream, count: Option<&AtomicU64>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(count) = count {
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// The test server's config lines, with `Host` and `Port` swapped for
/// `alias` at `port`, the host key still the server's (HostKeyAlias).
fn config_for(alias: &str, port: u16, known_hosts: Option<&std::path::Path>) -> String {
    let base = std::fs::read_to_string(util::sftp::config()).unwrap();
    let mut lines = vec![format!("Host {alias}"), format!("  Port {port}")];
    let mut known = None;
    for line in base.lines().skip(1) {
        let trimmed = line.trim();
        if trimmed.starts_with("Port ") {
            continue;
        }
        if let Some(file) = trimmed.strip_prefix("UserKnownHostsFile ") {
            known = Some(file.to_string());
            if known_hosts.is_some() {
                continue;
            }
        }
        lines.push(line.to_string());
    }
    if let Some(file) = known_hosts {
        lines.push(format!("  UserKnownHostsFile {}", file.display()));
    }
    lines.push(format!("  HostKeyAlias {alias}"));
    // The server's key under the alias, so the relay is trusted as the server.
    let known = std::fs::read_to_string(known.unwrap()).unwrap();
    let key = known.split_once(' ').unwrap().1.trim().to_string();
    // The key itself closes the text, as a comment, for the tests' own
    // known_hosts files.
    lines.push(format!("# key {key}"));
    lines.join("\n") + "\n"
}

fn server_port() -> u16 {
    let base = std::fs::read_to_string(util::sftp::config()).unwrap();
    base.lines()
        .find_map(|l| l.trim().strip_prefix("Port "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_delta_upload_sends_only_what_changed_counted_on_the_wire() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    let mut data = noise(64 << 20, 5);
    scratch.write("src/big.bin", &data);
    let relay = CountingRelay::start(server_port());
    // A config naming the relay: the host alias and the host key the
    // server's, under the alias.
    let config_text = config_for("hugesync-relay", relay.port, None);
    let key = config_text
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("# key ")
        .to_string();
    let known = scratch.path("known_hosts_relay");
    std::fs::write(&known, format!("hugesync-relay {key}\n")).unwrap();
    let config = scratch.path("ssh_config_relay");
    std::fs::write(
        &config,
        config_for("hugesync-relay", relay.port, Some(&known)),
    )
    .unwrap();
    let config = local(&config);
    let dst = format!("sftp://hugesync-relay{}/t", remote.path().display());
    let src = local(&scratch.src());
    sync_json_via(&scratch, &src, &dst, &[], &config);
    assert!(remote.join("t/big.bin.hssig").exists(), "signed on upload");
    let whole = relay.sent.swap(0, Ordering::Relaxed);
    assert!(whole > 64 << 20, "{whole}");

    // 100 bytes overwritten, 1 KiB inserted.
    data[5_000_000..5_000_100].fill(b'x');
    data.splice(40_000_000..40_000_000, std::iter::repeat_n(b'y', 1024));
    scratch.write("src/big.bin", &data);
    let report = sync_json_via(&scratch, &src, &dst, &[], &config);
    assert_eq!(report["delta"], 1, "{report}");
    let on_wire = relay.sent.load(Ordering::Relaxed);
    println!("delta upload: {on_wire} bytes on the wire (whole upload: {whole})");
    assert!(on_wire <= 12 << 20, "{on_wire} bytes sent for a delta");
    assert_eq!(std::fs::read(remote.join("t/big.bin")).unwrap(), data);
    assert!(util::temp_files(&remote.join("t")).is_empty());

    // The sidecar was carried over the delta (its unchanged records copied
    // server-side), not signed anew: a second edit is matched against it and
    // again sends about what changed.
    data.splice(50_000_000..50_000_000, std::iter::repeat_n(b'w', 3000));
    scratch.write("src/big.bin", &data);
    relay.sent.store(0, Ordering::Relaxed);
    let report = sync_json_via(&scratch, &src, &dst, &[], &config);
    assert_eq!(report["delta"], 1, "{report}");
    let second = relay.sent.load(Ordering::Relaxed);
    println!("second delta upload: {second} bytes on the wire");
    assert!(
        second <= 1 << 20,
        "{second} bytes sent for the second delta"
    );
    assert_eq!(std::fs::read(remote.join("t/big.bin")).unwrap(), data);

    // Down again into a copy with one block changed: only what it lacks is
    // read, by ranged reads against the server's sidecar.
    let mut stale = data.clone();
    stale[30_000_000..30_000_100].fill(b'z');
    let down = scratch.path("down");
    util::write_file(&down.join("big.bin"), &stale);
    util::set_mtime(&down.join("big.bin"), 1_000_000_000, 0);
    relay.sent.store(0, Ordering::Relaxed);
    let report = sync_json_via(&scratch, &dst, &local(&down), &[], &config);
    assert_eq!(report["delta"], 1, "{report}");
    assert!(
        report["bytes_saved"].as_u64().unwrap() > 50 << 20,
        "{report}"
    );
    assert_eq!(std::fs::read(down.join("big.bin")).unwrap(), data);
}

#[test]
fn an_unknown_host_key_is_refused_with_its_fingerprint_and_nothing_is_written() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("src/a.txt", b"never sent");
    let empty_known = scratch.path("known_hosts_empty");
    std::fs::write(&empty_known, "").unwrap();
    let config = scratch.path("ssh_config_unknown");
    std::fs::write(
        &config,
        config_for("hugesync-stranger", server_port(), Some(&empty_known)),
    )
    .unwrap();
    let config = local(&config);
    let dst = format!("sftp://hugesync-stranger{}/t", remote.path().display());
    let src = local(&scratch.src());
    let out = hugesync(&scratch, &["sync", "--yes", &src, &dst], &config);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("hugesync-stranger"), "{err}");
    assert!(err.contains("not in known_hosts"), "{err}");
    assert!(err.contains("ED25519 SHA256:"), "{err}");
    assert!(!remote.join("t").exists());
    assert_eq!(std::fs::read_to_string(&empty_known).unwrap(), "");

    // --ssh-accept-new adds it, and the sync goes.
    let out = hugesync(
        &scratch,
        &["sync", "--yes", "--ssh-accept-new", &src, &dst],
        &config,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        std::fs::read(remote.join("t/a.txt")).unwrap(),
        b"never sent"
    );
    assert!(
        std::fs::read_to_string(&empty_known)
            .unwrap()
            .contains("hugesync-stranger")
    );
}

#[test]
fn overlapping_locations_on_one_server_are_refused_whatever_the_spelling() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    util::write_file(&remote.join("D/sub/x.txt"), b"x");
    util::write_file(&remote.join("D/y.txt"), b"y");
    std::os::unix::fs::symlink(remote.join("D"), remote.join("L")).unwrap();
    let root = remote.path().display().to_string();
    let before = tree(remote.path());
    for (src, dst) in [
        // A source inside the destination, with --delete: the source would go.
        (format!("{HOST}:{root}/D/sub"), format!("{HOST}:{root}/D")),
        // A destination inside the source: it would copy into itself.
        (
            format!("{HOST}:{root}/D"),
            format!("sftp://{HOST}{root}/D/sub"),
        ),
        // One directory, spelled two ways.
        (
            format!("sftp://{HOST}{root}/D"),
            format!("{HOST}:{root}/D/"),
        ),
        // A symbolic link to the source.
        (format!("{HOST}:{root}/L"), format!("{HOST}:{root}/D/new")),
    ] {
        let out = hugesync(
            &scratch,
            &["sync", "--yes", "--delete", &src, &dst],
            &util::sftp::config(),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{src} → {dst}: {}",
            stderr_of(&out)
        );
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains("same location") || stderr.contains("lies inside"),
            "{stderr}"
        );
    }
    assert_eq!(tree(remote.path()), before, "nothing changed");
}

#[test]
fn uploads_never_write_through_a_link_on_the_server() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("src/d/x.txt", b"x");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(remote.join("D")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), remote.join("D/d")).unwrap();
    let dst = format!("{HOST}:{}/D", remote.path().display());
    let out = hugesync(
        &scratch,
        &["sync", "--yes", &local(&scratch.src()), &dst],
        &util::sftp::config(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("d/x.txt") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    // -a replaces the link with the source's directory.
    sync_json(&scratch, &local(&scratch.src()), &dst, &["-a"]);
    assert!(
        std::fs::symlink_metadata(remote.join("D/d"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(std::fs::read(remote.join("D/d/x.txt")).unwrap(), b"x");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// Runs `command`, or says why this test cannot (not root) and returns
/// false; under scripts/test.sh (HUGESYNC_TEST_STRICT) that is a failure.
fn privileged(command: &mut std::process::Command) -> bool {
    if command.status().is_ok_and(|s| s.success()) {
        return true;
    }
    let why = format!("{command:?} was refused (not root?)");
    assert!(
        std::env::var_os("HUGESYNC_TEST_STRICT").is_none(),
        "{why}: this test cannot be skipped here"
    );
    eprintln!("SKIP: {why}");
    false
}

#[test]
fn a_full_disk_and_a_refused_directory_on_the_server_are_named() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("src/big.bin", &noise(3 << 20, 41));
    scratch.write("src/a.txt", b"a");
    let full = remote.join("full");
    std::fs::create_dir_all(&full).unwrap();
    if !privileged(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&full),
    ) {
        return;
    }
    let dst = format!("{HOST}:{}/d", full.display());
    let out = hugesync(
        &scratch,
        &["sync", "--yes", &local(&scratch.src()), &dst],
        &util::sftp::config(),
    );
    let stderr = stderr_of(&out);
    let _ = std::process::Command::new("umount").arg(&full).status();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("big.bin") && stderr.contains("no space left"),
        "{stderr}"
    );
    assert!(!stderr.contains("Failure (Failure)"), "{stderr}");

    // A directory even root may not write into (immutable): the file
    // system's refusal, not a credentials hint.
    let locked = remote.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    if !privileged(std::process::Command::new("chattr").arg("+i").arg(&locked)) {
        return;
    }
    let dst = format!("{HOST}:{}", locked.display());
    let out = hugesync(
        &scratch,
        &["sync", "--yes", &local(&scratch.src()), &dst],
        &util::sftp::config(),
    );
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(&locked)
        .status();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("permission denied by the server's file system"),
        "{stderr}"
    );
    assert!(!stderr.contains("credentials"), "{stderr}");
}

#[test]
fn a_dead_runs_temp_file_goes_even_when_nothing_else_changes() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("src/a.txt", b"kept");
    let dst = remote.url("t");
    sync_json(&scratch, &local(&scratch.src()), &dst, &[]);
    // What a run whose connection dropped before it could clean up leaves:
    // another machine's temp file, untouched for two days.
    let stale = remote.join("t/.hugesync-00000000-1-0000000000000000.tmp");
    std::fs::write(&stale, b"half a file").unwrap();
    let two_days_ago = filetime::FileTime::from_unix_time(
        filetime::FileTime::now().unix_seconds() - 2 * 24 * 3600,
        0,
    );
    filetime::set_file_mtime(&stale, two_days_ago).unwrap();
    let report = sync_json(&scratch, &local(&scratch.src()), &dst, &[]);
    assert_eq!(report["copied"], 0, "{report}");
    assert!(!stale.exists(), "the leftover is removed");
    assert_eq!(tree(&scratch.src()), tree(&remote.join("t")));
}

#[test]
fn a_dropped_connection_is_made_again_and_the_rest_of_the_run_goes_on() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    const FILES: usize = 24;
    for i in 0..FILES {
        scratch.write(&format!("src/f{i:02}.bin"), &noise(1 << 20, i as u64));
    }
    let relay = CountingRelay::start(server_port());
    let config = relay.config(&scratch, "hugesync-cut");
    let dst = format!("sftp://hugesync-cut{}/t", remote.path().display());
    let child = scratch
        .std_cmd()
        .args(["sync", "--yes", "--json", "-j", "2", "--bwlimit", "6MiB"])
        .args(["--ssh-config", &config])
        .env("HUGESYNC_RETRY_MAX_DELAY", "1s")
        .arg(scratch.src())
        .arg(&dst)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-run (about a third of the files sent): the network drops.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    relay.cut();
    let out = child.wait_with_output().unwrap();
    let stderr = stderr_of(&out);
    let report = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["event"] == "summary")
        .map(|e| e["report"].clone())
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    // The writes in flight when it dropped are written again over the new
    // connection, as an object store's PUT is retried: no item fails.
    assert_eq!(report["failed"], 0, "{report}\n{stderr}");
    assert_eq!(report["copied"], FILES as u64, "{report}\n{stderr}");
    assert!(stderr.contains("connecting again"), "{stderr}");
    for i in 0..FILES {
        let name = format!("f{i:02}.bin");
        let bytes = std::fs::read(remote.join(&format!("t/{name}"))).unwrap();
        assert!(bytes == noise(1 << 20, i as u64), "{name}");
    }
    // A re-run finds nothing to send and removes the temp file the dropped
    // session could not; the tree is then exactly the source's.
    let rerun = sync_json_via(&scratch, &local(&scratch.src()), &dst, &[], &config);
    assert_eq!(rerun["copied"], 0, "{rerun}");
    assert_eq!(tree(&scratch.src()), tree(&remote.join("t")));
}

#[test]
fn a_missing_source_directory_is_refused_not_taken_for_an_empty_one() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("dst/keep.txt", b"keep");
    let src = format!("{HOST}:{}/nope", remote.path().display());
    let out = hugesync(
        &scratch,
        &[
            "sync",
            "--yes",
            "--delete",
            "--allow-empty-source",
            &src,
            &local(&scratch.dst()),
        ],
        &util::sftp::config(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("does not exist"),
        "{}",
        stderr_of(&out)
    );
    assert!(scratch.dst().join("keep.txt").exists());
}

#[test]
fn rsync_style_host_path_names_the_same_place() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("src/a.txt", b"by HOST:PATH");
    let dst = format!("{HOST}:{}/r", remote.path().display());
    sync_json(&scratch, &local(&scratch.src()), &dst, &[]);
    assert_eq!(
        std::fs::read(remote.join("r/a.txt")).unwrap(),
        b"by HOST:PATH"
    );
}

#[test]
fn kill_9_mid_transfer_leaves_no_partial_file_and_a_rerun_converges() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    let data = noise(48 << 20, 9);
    scratch.write("src/big.bin", &data);
    let (src, dst) = (local(&scratch.src()), remote.url("t"));
    let mut child = scratch
        .std_cmd()
        .args([
            "sync",
            "--yes",
            "-q",
            "-j",
            "1",
            "--bwlimit",
            "8MiB",
            &src,
            &dst,
        ])
        .args(["--ssh-config", &util::sftp::config()])
        .spawn()
        .unwrap();
    // Wait until the first 16 MiB part is written and the next is arriving,
    // then kill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let temps = util::temp_files(&remote.join("t"));
        let size: u64 = temps
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        if size > 20 << 20 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !remote.join("t/big.bin").exists(),
        "no file under its final name"
    );
    assert_eq!(
        util::temp_files(&remote.join("t")).len(),
        1,
        "the temp file stays hidden"
    );

    let report = sync_json(&scratch, &src, &dst, &[]);
    assert_eq!(report["copied"], 1, "{report}");
    assert_eq!(std::fs::read(remote.join("t/big.bin")).unwrap(), data);
    // The re-run went on from the temp file: the parts it holds (checked
    // against the file's bytes, on the server or read back) were not sent.
    let sent = report["bytes_sent"].as_u64().unwrap();
    assert!(
        sent <= 32 << 20,
        "{sent} bytes sent again of 48 MiB: {report}"
    );
    // The killed run's temp file became the file.
    assert!(util::temp_files(&remote.join("t")).is_empty());
}

#[test]
fn a_passphrase_protected_key_without_an_agent_is_named_with_the_fix() {
    let (scratch, remote) = (Scratch::new(), RemoteDir::new());
    scratch.write("src/a.txt", b"never sent");
    let key = scratch.path("locked_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    // The test server's config, with this key as the only identity.
    let base = std::fs::read_to_string(util::sftp::config()).unwrap();
    let config_text: String = base
        .lines()
        .map(|line| match line.trim().strip_prefix("IdentityFile ") {
            Some(_) => format!("  IdentityFile {}", key.display()),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = scratch.path("ssh_config_locked");
    std::fs::write(&config, config_text + "\n").unwrap();
    let out = scratch
        .cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args(["sync", "--yes", &local(&scratch.src()), &remote.url("t")])
        .args(["--ssh-config", &local(&config)])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("protected by a passphrase"), "{err}");
    assert!(err.contains(&format!("ssh-add {}", key.display())), "{err}");
    assert!(!remote.join("t").exists());
}
