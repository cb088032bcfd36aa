//! No file rebuilt by delta is trusted to its sidecar alone: a sidecar that
//! lies (the valid signature of other bytes, stamped with the object's
//! current version so it passes for fresh) must never leave a wrong file,
//! on any store, in either direction. Each rebuilt file is compared with a
//! checksum the sidecar did not supply — the store's own (S3, Azure, GCS),
//! the blake3 in the object's metadata, or a hash computed on an SSH server
//! — and a mismatch sends the file whole and says so. An SSH server that
//! runs no commands gets read-back (uploads) or whole downloads, unless
//! `--unverified-rebuilds`.

mod util;

use std::path::Path;

use util::azure::Container;
use util::gcs::GcsBucket;
use util::s3::Bucket;
use util::sftp::RemoteDir;
use util::{Scratch, local, noise, set_mtime, stderr_of, stdout_of};

const MIB: usize = 1024 * 1024;

/// A store holding the remote side, reached by URL with its own flags and
/// environment.
enum Remote {
    S3(Bucket),
    Azure(Container),
    Gcs(GcsBucket),
    Sftp(RemoteDir),
    /// The same server reached through an `ssh` that hides `b3sum` from
    /// the commands it runs: the server's hash is `sha256sum`'s.
    SftpSha256(RemoteDir, String),
}

impl Remote {
    fn all() -> Vec<Remote> {
        vec![
            Remote::S3(Bucket::new()),
            Remote::Azure(Container::new()),
            Remote::Gcs(GcsBucket::new()),
            Remote::Sftp(RemoteDir::new()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Remote::S3(_) => "S3",
            Remote::Azure(_) => "Azure",
            Remote::Gcs(_) => "GCS",
            Remote::Sftp(_) => "SFTP",
            Remote::SftpSha256(..) => "SFTP (sha256sum)",
        }
    }

    fn url(&self) -> String {
        match self {
            Remote::S3(bucket) => bucket.url("d"),
            Remote::Azure(container) => container.url("d"),
            Remote::Gcs(bucket) => bucket.url("d"),
            Remote::Sftp(dir) | Remote::SftpSha256(dir, _) => dir.url("d"),
        }
    }

    fn command(&self, scratch: &Scratch) -> std::process::Command {
        let mut cmd = scratch.std_cmd();
        match self {
            Remote::S3(bucket) => {
                cmd.args(bucket.args());
            }
            Remote::Azure(container) => {
                cmd.envs(container.env());
            }
            Remote::Gcs(bucket) => {
                cmd.envs(bucket.env());
            }
            Remote::Sftp(dir) => {
                cmd.args(dir.args());
            }
            Remote::SftpSha256(dir, ssh) => {
                cmd.args(dir.args()).env("HUGESYNC_SSH", ssh);
            }
        }
        cmd
    }

    fn get(&self, rel: &str) -> Vec<u8> {
        let key = format!("d/{rel}");
        match self {
            Remote::S3(bucket) => bucket.get(&key),
            Remote::Azure(container) => container.get(&key),
            Remote::Gcs(bucket) => bucket.get(&key),
            Remote::Sftp(dir) | Remote::SftpSha256(dir, _) => {
                std::fs::read(dir.join(&key)).unwrap()
            }
        }
    }

    fn put(&self, rel: &str, bytes: &[u8]) {
        let key = format!("d/{rel}");
        match self {
            Remote::S3(bucket) => bucket.put(&key, bytes),
            Remote::Azure(container) => container.put(&key, bytes),
            Remote::Gcs(bucket) => bucket.put(&key, bytes),
            Remote::Sftp(dir) | Remote::SftpSha256(dir, _) => {
                std::fs::write(dir.join(&key), bytes).unwrap()
            }
        }
    }

    /// The version a sidecar records: ETag, generation, or an SSH server's
    /// `size:mtime`.
    fn version(&self, rel: &str) -> String {
        let key = format!("d/{rel}");
        match self {
            Remote::S3(bucket) => bucket.head(&key).unwrap().etag,
            Remote::Azure(container) => container.head(&key).unwrap().etag,
            Remote::Gcs(bucket) => bucket.head(&key).unwrap().generation,
            Remote::Sftp(dir) | Remote::SftpSha256(dir, _) => {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(dir.join(&key)).unwrap();
                format!("{}:{}", meta.len(), meta.mtime())
            }
        }
    }

    /// Flags that make the test files go by delta, with blocks small enough
    /// for the files here.
    fn delta_flags(&self) -> Vec<&'static str> {
        let mut flags = vec!["--delta-threshold", "4MiB"];
        if !matches!(self, Remote::Sftp(_) | Remote::SftpSha256(..)) {
            flags.extend(["--block-size", "1MiB"]);
        }
        flags
    }
}

fn run(remote: &Remote, scratch: &Scratch, args: &[&str]) -> std::process::Output {
    remote.command(scratch).args(args).output().unwrap()
}

fn sync_ok(remote: &Remote, scratch: &Scratch, from: &str, to: &str, extra: &[&str]) -> String {
    let mut args = vec!["sync", "--yes", from, to];
    args.extend_from_slice(&remote.delta_flags());
    args.extend_from_slice(extra);
    let out = run(remote, scratch, &args);
    let said = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        out.status.success(),
        "{}: sync {from} {to}: {:?}\n{said}",
        remote.name(),
        out.status
    );
    said
}

/// A file time in the past, so the next write is seen as newer.
fn age(path: &Path) {
    set_mtime(path, 1_000_000_000, 0);
}

/// A file time after every object's upload time: the file reads as changed.
fn newer(path: &Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    set_mtime(path, now + 5, 0);
}

/// The object holds X, uploaded by delta; its sidecar is replaced by the
/// signature of the stale local copy Y, stamped with X's version. A delta
/// download must not keep Y: the rebuilt file fails the store's checksum
/// and X comes down whole.
fn a_forged_sidecar_never_rebuilds_a_stale_download(remote: &Remote) {
    let scratch = Scratch::new();
    let stale = noise(12 * MIB, 61);
    let file = scratch.write("src/big.bin", &stale);
    age(&file);
    let (src, url) = (local(&scratch.src()), remote.url());
    sync_ok(remote, &scratch, &src, &url, &[]);
    let stale_sidecar = remote.get("big.bin.hssig");
    // The local copy that will be brought up to date: Y.
    let down = scratch.path("down");
    std::fs::create_dir_all(&down).unwrap();
    std::fs::write(down.join("big.bin"), &stale).unwrap();
    age(&down.join("big.bin"));

    // X: Y with two edits, uploaded by delta.
    let mut fresh = stale.clone();
    fresh[3 * MIB..3 * MIB + 100].fill(b'x');
    fresh[9 * MIB..9 * MIB + 100].fill(b'y');
    std::fs::write(&file, &fresh).unwrap();
    newer(&file);
    sync_ok(remote, &scratch, &src, &url, &[]);
    assert!(remote.get("big.bin") == fresh, "{}", remote.name());
    let forged = util::forged_sidecar(&stale_sidecar, &remote.version("big.bin"));
    remote.put("big.bin.hssig", &forged);

    // The plan names the check each rebuilt file gets.
    let mut args = vec!["plan", "-v", &url, down.to_str().unwrap()];
    args.extend_from_slice(&remote.delta_flags());
    let planned = stdout_of(&run(remote, &scratch, &args));
    let named = match remote {
        Remote::Sftp(_) | Remote::SftpSha256(..) => "hashed on the server",
        _ => "rebuilt file checked against",
    };
    assert!(planned.contains(named), "{}: {planned}", remote.name());
    let said = sync_ok(remote, &scratch, &url, &local(&down), &[]);
    assert!(
        std::fs::read(down.join("big.bin")).unwrap() == fresh,
        "{}: the local file is not the object's bytes\n{said}",
        remote.name()
    );
    assert!(
        said.contains("does not match the object's"),
        "{}: the fallback is said\n{said}",
        remote.name()
    );
    assert!(util::temp_files(&down).is_empty(), "{}", remote.name());
}

#[test]
fn a_forged_sidecar_never_rebuilds_a_stale_download_on_any_store() {
    for remote in Remote::all() {
        a_forged_sidecar_never_rebuilds_a_stale_download(&remote);
    }
}

/// Uploads: two files on the store; the second's sidecar is replaced by the
/// first's, stamped with the second's version; the local second file becomes
/// the first with one byte changed. A delta against the lie would copy the
/// second object's ranges as if they were the first's.
fn a_lying_sidecar_never_rebuilds_a_wrong_upload(remote: &Remote, extra: &[&str]) -> String {
    let scratch = Scratch::new();
    let one = noise(12 * MIB, 71);
    scratch.write("src/one.bin", &one);
    let two = scratch.write("src/two.bin", &noise(12 * MIB, 72));
    age(&two);
    let (src, url) = (local(&scratch.src()), remote.url());
    sync_ok(remote, &scratch, &src, &url, extra);
    let forged = util::forged_sidecar(&remote.get("one.bin.hssig"), &remote.version("two.bin"));
    remote.put("two.bin.hssig", &forged);

    let mut data = one.clone();
    if matches!(remote, Remote::Gcs(_)) {
        // GCS reuses an old object only whole, when the file grew by
        // appending: the lie then claims the old object is the file's start.
        data.extend_from_slice(&noise(MIB, 73));
    } else {
        data[5 * MIB] ^= 1;
    }
    std::fs::write(&two, &data).unwrap();
    newer(&two);
    let said = sync_ok(remote, &scratch, &src, &url, extra);
    assert!(
        remote.get("two.bin") == data,
        "{}: the remote file is not the local file's bytes\n{said}",
        remote.name()
    );
    assert!(
        said.contains("sidecar does not describe the object"),
        "{}: the fallback is said\n{said}",
        remote.name()
    );
    // The sidecar left describes the new bytes: a re-run (the file still
    // reads as newer than the object) rebuilds from it without complaint.
    let again = sync_ok(remote, &scratch, &src, &url, extra);
    assert!(
        !again.contains("sidecar does not describe"),
        "{}: {again}",
        remote.name()
    );
    assert!(remote.get("two.bin") == data, "{}", remote.name());
    said
}

#[test]
fn a_lying_sidecar_never_rebuilds_a_wrong_upload_on_any_store() {
    for remote in Remote::all() {
        a_lying_sidecar_never_rebuilds_a_wrong_upload(&remote, &[]);
    }
}

/// An `ssh` that logs in for SFTP but runs no commands, as an SFTP-only
/// account (`ForceCommand internal-sftp`) does.
fn sftp_only_ssh(scratch: &Scratch) -> String {
    let path = scratch.path("sftp-only-ssh");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         for arg in \"$@\"; do case \"$arg\" in -s|-G) exec ssh \"$@\";; esac; done\n\
         echo 'This service allows sftp connections only.' >&2\n\
         exit 1\n",
    )
    .unwrap();
    util::set_mode(&path, 0o755);
    local(&path)
}

#[test]
fn an_ssh_server_that_runs_no_commands_reads_back_uploads_and_downloads_whole() {
    // Uploads: the lie is caught by reading back the ranges to copy.
    let scratch = Scratch::new();
    let remote = RemoteDir::new();
    let ssh = sftp_only_ssh(&scratch);
    let remote_dir = Remote::Sftp(remote);
    let one = noise(12 * MIB, 81);
    scratch.write("src/one.bin", &one);
    let two = scratch.write("src/two.bin", &noise(12 * MIB, 82));
    age(&two);
    let (src, url) = (local(&scratch.src()), remote_dir.url());
    let sync = |from: &str, to: &str, extra: &[&str]| {
        let mut args = vec!["sync", "--yes", from, to];
        args.extend_from_slice(&remote_dir.delta_flags());
        args.extend_from_slice(extra);
        let out = remote_dir
            .command(&scratch)
            .env("HUGESYNC_SSH", &ssh)
            .args(&args)
            .output()
            .unwrap();
        let said = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert!(out.status.success(), "{said}");
        said
    };
    sync(&src, &url, &[]);
    let forged = util::forged_sidecar(
        &remote_dir.get("one.bin.hssig"),
        &remote_dir.version("two.bin"),
    );
    remote_dir.put("two.bin.hssig", &forged);
    let mut data = one.clone();
    data[5 * MIB] ^= 1;
    std::fs::write(&two, &data).unwrap();
    newer(&two);
    let said = sync(&src, &url, &[]);
    assert!(
        said.contains("delta rebuilds: the server runs no hash command"),
        "the plan names the read-back:\n{said}"
    );
    assert!(said.contains("read back"), "{said}");
    assert!(remote_dir.get("two.bin") == data, "{said}");

    // Downloads: nothing can check a rebuilt file, so changed files come
    // whole; the plan says so per file.
    let down = scratch.path("down");
    std::fs::create_dir_all(&down).unwrap();
    let mut stale = data.clone();
    stale[MIB] ^= 1;
    std::fs::write(down.join("two.bin"), &stale).unwrap();
    age(&down.join("two.bin"));
    let said = sync(
        &url,
        &local(&down),
        &["-v", "--include", "two.bin", "--exclude", "*"],
    );
    assert!(said.contains("downloaded whole"), "{said}");
    assert!(std::fs::read(down.join("two.bin")).unwrap() == data);

    // --unverified-rebuilds trusts the sidecar: a delta again.
    stale[MIB] ^= 1;
    stale[2 * MIB] ^= 1;
    std::fs::write(down.join("two.bin"), &stale).unwrap();
    age(&down.join("two.bin"));
    let said = sync(
        &url,
        &local(&down),
        &[
            "--unverified-rebuilds",
            "--include",
            "two.bin",
            "--exclude",
            "*",
        ],
    );
    assert!(
        said.contains("delta rebuilds: files rebuilt from local blocks are checked against the sidecar's blake3 alone"),
        "{said}"
    );
    assert!(std::fs::read(down.join("two.bin")).unwrap() == data);
}

/// An `ssh` under which the server seems to have no `b3sum` (the name is
/// changed in every command it runs).
fn ssh_without_b3sum(scratch: &Scratch) -> String {
    let path = scratch.path("ssh-without-b3sum");
    std::fs::write(
        &path,
        "#!/bin/bash\nexec ssh \"${@//b3sum/no-such-b3sum}\"\n",
    )
    .unwrap();
    util::set_mode(&path, 0o755);
    local(&path)
}

#[test]
fn an_ssh_server_without_b3sum_checks_rebuilds_with_sha256sum() {
    let scratch = Scratch::new();
    let ssh = ssh_without_b3sum(&scratch);
    let remote = Remote::SftpSha256(RemoteDir::new(), ssh.clone());
    let said = a_lying_sidecar_never_rebuilds_a_wrong_upload(&remote, &[]);
    assert!(said.contains("sha256sum over SSH"), "{said}");
    let remote = Remote::SftpSha256(RemoteDir::new(), ssh);
    a_forged_sidecar_never_rebuilds_a_stale_download(&remote);
}

#[test]
fn the_plan_names_the_server_hash_an_ssh_server_gets() {
    let scratch = Scratch::new();
    let remote = Remote::Sftp(RemoteDir::new());
    let file = scratch.write("src/big.bin", &noise(12 * MIB, 91));
    let (src, url) = (local(&scratch.src()), remote.url());
    sync_ok(&remote, &scratch, &src, &url, &[]);
    let mut data = std::fs::read(&file).unwrap();
    data[MIB] ^= 1;
    std::fs::write(&file, &data).unwrap();
    newer(&file);
    let said = sync_ok(&remote, &scratch, &src, &url, &[]);
    assert!(
        said.contains("delta rebuilds: every file rebuilt by delta is hashed on the server"),
        "{said}"
    );
    assert!(!said.contains("could not be checked"), "{said}");
    assert!(remote.get("big.bin") == data);
}
