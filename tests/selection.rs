//! rsync's selection and comparison flags through the real binary, the same
//! bodies on local → local and local → S3 (moto, started by scripts/test.sh):
//! `--existing`, `--ignore-existing`, `--min-size`/`--max-size`, `-u`,
//! `--size-only`, `-I`, `--modify-window`, `-W`. What reached the destination
//! is read back; what was held back is named in the plan.

mod util;

use util::s3::Bucket;
use util::{Scratch, noise, set_mtime, stderr_of, stdout_of};

/// Where a test syncs to.
enum Dest {
    Local,
    S3(Bucket),
}

impl Dest {
    fn all() -> Vec<Dest> {
        vec![Dest::Local, Dest::S3(Bucket::new())]
    }

    fn name(&self) -> &'static str {
        match self {
            Dest::Local => "local",
            Dest::S3(_) => "s3",
        }
    }

    fn url(&self, s: &Scratch) -> String {
        match self {
            Dest::Local => s.dst().display().to_string(),
            Dest::S3(bucket) => bucket.url("d"),
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Dest::Local => Vec::new(),
            Dest::S3(bucket) => bucket.args().to_vec(),
        }
    }

    /// The destination's copy of `rel`, if any.
    fn read(&self, s: &Scratch, rel: &str) -> Option<Vec<u8>> {
        match self {
            Dest::Local => std::fs::read(s.dst().join(rel)).ok(),
            Dest::S3(bucket) => bucket
                .head(&format!("d/{rel}"))
                .map(|_| bucket.get(&format!("d/{rel}"))),
        }
    }

    /// Puts `bytes` at `rel` on the destination directly.
    fn put(&self, s: &Scratch, rel: &str, bytes: &[u8]) {
        match self {
            Dest::Local => {
                s.write(&format!("dst/{rel}"), bytes);
            }
            Dest::S3(bucket) => bucket.put(&format!("d/{rel}"), bytes),
        }
    }
}

/// `hugesync COMMAND SRC DST FLAGS…`, asserting success; returns stdout.
fn run(s: &Scratch, dest: &Dest, command: &[&str], flags: &[&str]) -> String {
    let out = s
        .cmd()
        .args(command)
        .arg(s.src())
        .arg(dest.url(s))
        .args(dest.args())
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {command:?} {flags:?}: {}",
        dest.name(),
        stderr_of(&out)
    );
    stdout_of(&out)
}

fn sync(s: &Scratch, dest: &Dest, flags: &[&str]) -> String {
    run(s, dest, &["sync", "--yes"], flags)
}

/// Bytes the run sent and saved by delta, from its JSON summary.
fn sync_sent(s: &Scratch, dest: &Dest, flags: &[&str]) -> (u64, u64) {
    let out = run(s, dest, &["sync", "--yes", "--json"], flags);
    let summary = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "summary");
    summary.map_or((0, 0), |summary| {
        (
            summary["report"]["bytes_sent"].as_u64().unwrap(),
            summary["report"]["bytes_saved"].as_u64().unwrap(),
        )
    })
}

fn plan(s: &Scratch, dest: &Dest, flags: &[&str]) -> String {
    run(s, dest, &["plan"], flags)
}

/// An hour ago, in seconds since the epoch (files older than any upload).
fn an_hour_ago() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - 3600
}

#[test]
fn existing_and_ignore_existing_choose_updates_or_new_files() {
    for dest in Dest::all() {
        let s = Scratch::new();
        s.write("src/old.txt", b"new content");
        s.write("src/new.txt", b"brand new");
        dest.put(&s, "old.txt", b"old");
        let text = plan(&s, &dest, &["--existing"]);
        assert!(text.contains("selection: --existing"), "{text}");
        assert!(
            text.contains("new.txt  (not at the destination (--existing))"),
            "{text}"
        );
        sync(&s, &dest, &["--existing"]);
        assert_eq!(dest.read(&s, "old.txt").unwrap(), b"new content");
        assert_eq!(dest.read(&s, "new.txt"), None, "{}", dest.name());

        let s = Scratch::new();
        s.write("src/old.txt", b"new content");
        s.write("src/new.txt", b"brand new");
        dest.put(&s, "old.txt", b"old");
        sync(&s, &dest, &["--ignore-existing"]);
        assert_eq!(dest.read(&s, "old.txt").unwrap(), b"old", "{}", dest.name());
        assert_eq!(dest.read(&s, "new.txt").unwrap(), b"brand new");
    }
}

#[test]
fn size_bounds_hold_back_files_outside_them() {
    for dest in Dest::all() {
        let s = Scratch::new();
        s.write("src/tiny", &[1; 10]);
        s.write("src/mid", &[2; 1000]);
        s.write("src/big", &[3; 100_000]);
        let flags = ["--min-size", "100", "--max-size", "10KiB"];
        let text = plan(&s, &dest, &flags);
        assert!(text.contains("big  (larger than --max-size)"), "{text}");
        assert!(text.contains("tiny  (smaller than --min-size)"), "{text}");
        assert!(
            text.contains("selection: --min-size 100 B, --max-size 10 KiB"),
            "{text}"
        );
        let json = run(&s, &dest, &["plan", "--json"], &flags);
        assert!(json.contains("\"below_min_size\""), "{json}");
        sync(&s, &dest, &flags);
        assert_eq!(dest.read(&s, "mid").unwrap(), vec![2; 1000]);
        assert_eq!(dest.read(&s, "tiny"), None, "{}", dest.name());
        assert_eq!(dest.read(&s, "big"), None, "{}", dest.name());
    }
}

#[test]
fn update_keeps_files_that_are_newer_at_the_destination() {
    for dest in Dest::all() {
        let s = Scratch::new();
        // The source was last changed an hour ago; the destination's copy
        // was written since (on S3: its LastModified is now).
        let file = s.write("src/f.txt", b"source, an hour old");
        set_mtime(&file, an_hour_ago(), 0);
        dest.put(&s, "f.txt", b"edited at the destination since");
        if let Dest::Local = dest {
            set_mtime(&s.dst().join("f.txt"), an_hour_ago() + 60, 0);
        }
        let text = plan(&s, &dest, &["-u"]);
        assert!(
            text.contains("f.txt  (newer at the destination (--update))"),
            "{text}"
        );
        sync(&s, &dest, &["--update"]);
        assert_eq!(
            dest.read(&s, "f.txt").unwrap(),
            b"edited at the destination since",
            "{}",
            dest.name()
        );
        sync(&s, &dest, &[]);
        assert_eq!(dest.read(&s, "f.txt").unwrap(), b"source, an hour old");
    }
}

#[test]
fn size_only_ignore_times_and_modify_window_decide_sameness() {
    for dest in Dest::all() {
        let s = Scratch::new();
        let file = s.write("src/f.bin", b"AAAA");
        set_mtime(&file, an_hour_ago(), 0);
        sync(&s, &dest, &[]);
        // Same size, other bytes, a later time: only --size-only keeps it.
        s.write("src/f.bin", b"BBBB");
        set_mtime(&file, an_hour_ago() + 7200, 0);
        sync(&s, &dest, &["--size-only"]);
        assert_eq!(dest.read(&s, "f.bin").unwrap(), b"AAAA", "{}", dest.name());
        sync(&s, &dest, &[]);
        assert_eq!(dest.read(&s, "f.bin").unwrap(), b"BBBB");

        // Size and time match: -I sends it anyway.
        let s = Scratch::new();
        let file = s.write("src/g.bin", b"GGGG");
        set_mtime(&file, an_hour_ago(), 0);
        sync(&s, &dest, &[]);
        let (sent, _) = sync_sent(&s, &dest, &[]);
        assert_eq!(sent, 0, "{}", dest.name());
        let (sent, _) = sync_sent(&s, &dest, &["--ignore-times"]);
        assert_eq!(sent, 4, "{}", dest.name());
    }
    // A window: times a second apart are equal within 2 s (FAT's grain).
    let (s, dest) = (Scratch::new(), Dest::Local);
    let file = s.write("src/f", b"one");
    set_mtime(&file, 1_600_000_001, 0);
    s.write("dst/f", b"two");
    set_mtime(&s.dst().join("f"), 1_600_000_000, 0);
    sync(&s, &dest, &["--modify-window", "2"]);
    assert_eq!(dest.read(&s, "f").unwrap(), b"two");
    sync(&s, &dest, &[]);
    assert_eq!(dest.read(&s, "f").unwrap(), b"one");
}

#[test]
fn whole_file_sends_changed_files_without_delta() {
    for dest in Dest::all() {
        let s = Scratch::new();
        let mut data = noise(3 << 20, 81);
        let file = s.write("src/f.bin", &data);
        let small = ["--delta-threshold", "1MiB", "--block-size", "64KiB"];
        sync(&s, &dest, &small);
        data[100] ^= 1;
        std::fs::write(&file, &data).unwrap();
        set_mtime(&file, an_hour_ago() + 7200, 0);
        let mut whole: Vec<&str> = small.to_vec();
        whole.push("-W");
        let text = plan(&s, &dest, &whole);
        assert!(text.contains("selection: --whole-file"), "{text}");
        assert!(!text.contains("delta  "), "{text}");
        let (sent, saved) = sync_sent(&s, &dest, &whole);
        assert_eq!((sent, saved), (data.len() as u64, 0), "{}", dest.name());
        assert_eq!(dest.read(&s, "f.bin").unwrap(), data);
    }
}

#[test]
fn files_from_limits_the_sync_to_the_listed_paths_and_deletes_only_there() {
    for dest in Dest::all() {
        let s = Scratch::new();
        s.write("src/data/2024/jan.csv", b"jan");
        s.write("src/data/2024/feb.csv", b"feb");
        s.write("src/models/a.bin", b"a");
        s.write("src/models/deep/b.bin", b"b");
        s.write("src/other.txt", b"other");
        // Below a listed directory, an entry gone from the source goes with
        // --delete; outside the list nothing is touched.
        dest.put(&s, "models/stale.bin", b"stale");
        dest.put(&s, "kept.txt", b"not listed");
        let list = s.write("list.txt", b"data/2024/jan.csv\n./models/\n");
        let list = list.display().to_string();
        let text = plan(&s, &dest, &["--files-from", &list, "--delete"]);
        assert!(text.contains("selection: --files-from (2 paths)"), "{text}");
        sync(&s, &dest, &["--files-from", &list, "--delete"]);
        assert_eq!(dest.read(&s, "data/2024/jan.csv").unwrap(), b"jan");
        assert_eq!(dest.read(&s, "data/2024/feb.csv"), None, "{}", dest.name());
        assert_eq!(dest.read(&s, "models/deep/b.bin").unwrap(), b"b");
        assert_eq!(dest.read(&s, "other.txt"), None);
        assert_eq!(dest.read(&s, "models/stale.bin"), None, "{}", dest.name());
        assert_eq!(dest.read(&s, "kept.txt").unwrap(), b"not listed");
    }
}

#[test]
fn lists_come_from_stdin_nul_separated_and_rule_files_keep_their_place() {
    use std::io::Write;
    for dest in Dest::all() {
        let s = Scratch::new();
        s.write("src/keep.log", b"1");
        s.write("src/drop.log", b"2");
        // A newline is part of a name when NUL separates the list (moto
        // cannot store such a key: it routes the request to no bucket).
        let odd = match dest {
            Dest::Local => "name with\nnewline",
            Dest::S3(_) => "name with spaces",
        };
        s.write(&format!("src/{odd}"), b"3");
        s.write("src/x.tmp", b"4");
        // `find -print0 | hugesync sync --files-from - --from0`.
        let mut child = s
            .std_cmd()
            .args(["sync", "--yes", "--files-from", "-", "--from0"])
            .arg(s.src())
            .arg(dest.url(&s))
            .args(dest.args())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("keep.log\0{odd}\0").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(dest.read(&s, "keep.log").unwrap(), b"1");
        assert_eq!(dest.read(&s, "drop.log"), None, "{}", dest.name());
        assert_eq!(dest.read(&s, "x.tmp"), None);
        assert_eq!(dest.read(&s, odd).unwrap(), b"3");

        // An include file before an exclude: first match wins, as in rsync.
        let s = Scratch::new();
        s.write("src/keep.log", b"1");
        s.write("src/drop.log", b"2");
        s.write("src/x.tmp", b"4");
        let includes = s.write("inc", b"# logs worth keeping\nkeep.log\n");
        let excludes = s.write("exc", b"*.log\n; and temporaries\n*.tmp\n");
        let (inc, exc) = (
            includes.display().to_string(),
            excludes.display().to_string(),
        );
        sync(&s, &dest, &["--include-from", &inc, "--exclude-from", &exc]);
        assert_eq!(dest.read(&s, "keep.log").unwrap(), b"1");
        assert_eq!(dest.read(&s, "drop.log"), None, "{}", dest.name());
        assert_eq!(dest.read(&s, "x.tmp"), None);
    }
    // A list that leaves the root is refused before anything runs (exit 2).
    let s = Scratch::new();
    s.write("src/a", b"a");
    let bad = s.write("bad", b"a\n../../etc/passwd\n");
    let out = s
        .cmd()
        .args(["sync", "--yes", "--files-from"])
        .arg(&bad)
        .arg(s.src())
        .arg(s.dst())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("entry 2: `../../etc/passwd` leaves the source root"),
        "{}",
        stderr_of(&out)
    );
    assert!(!s.dst().join("a").exists());
}

#[test]
fn bwlimit_holds_uploads_and_downloads_to_the_rate() {
    // 8 MiB up and back at 2 MiB/s: at least 3.75 s each way (a quarter
    // second's burst is allowed). A lower bound only: a slow machine can be
    // slower, never faster.
    let bucket = Bucket::new();
    let s = Scratch::new();
    let data = noise(8 << 20, 91);
    s.write("src/f.bin", &data);
    let timed = |from: String, to: String| {
        let started = std::time::Instant::now();
        let out = s
            .cmd()
            .args(["sync", "--yes", "--bwlimit", "2MiB"])
            .arg(from)
            .arg(to)
            .args(bucket.args())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        started.elapsed().as_secs_f64()
    };
    let up = timed(s.src().display().to_string(), bucket.url("d"));
    assert!(
        up >= 3.75,
        "8 MiB went up in {up:.2} s under a 2 MiB/s limit"
    );
    let text = run(
        &s,
        &Dest::S3(Bucket::new()),
        &["sync", "-n"],
        &["--bwlimit", "2MiB/s"],
    );
    assert!(
        text.contains("bandwidth: at most 2 MiB/s (--bwlimit)"),
        "{text}"
    );
    let back = s.path("back");
    let down = timed(bucket.url("d"), back.display().to_string());
    assert!(
        down >= 3.75,
        "8 MiB came down in {down:.2} s under a 2 MiB/s limit"
    );
    // Local disk to local disk is paced too, as rsync paces it.
    let copy = s.path("copy");
    let local = timed(s.src().display().to_string(), copy.display().to_string());
    assert!(
        local >= 3.75,
        "8 MiB were copied locally in {local:.2} s under a 2 MiB/s limit"
    );
    assert!(std::fs::read(copy.join("f.bin")).unwrap() == data);
    assert!(std::fs::read(back.join("f.bin")).unwrap() == data);
}

#[test]
fn backups_keep_replaced_and_deleted_files_without_sending_them_again() {
    for dest in Dest::all() {
        // Next to the file, with the default suffix.
        let s = Scratch::new();
        let file = s.write("src/a.txt", b"version 1");
        s.write("src/gone.txt", b"soon deleted");
        sync(&s, &dest, &[]);
        std::fs::write(&file, b"version 2, longer").unwrap();
        std::fs::remove_file(s.path("src/gone.txt")).unwrap();
        let text = plan(&s, &dest, &["--backup", "--delete"]);
        assert!(
            text.contains("backups: replaced and deleted files are kept first next to themselves, with `~` appended"),
            "{text}"
        );
        let (sent, _) = sync_sent(&s, &dest, &["--backup", "--delete"]);
        assert_eq!(sent, 17, "{}: only the new version is sent", dest.name());
        assert_eq!(dest.read(&s, "a.txt").unwrap(), b"version 2, longer");
        assert_eq!(
            dest.read(&s, "a.txt~").unwrap(),
            b"version 1",
            "{}",
            dest.name()
        );
        assert_eq!(dest.read(&s, "gone.txt"), None);
        assert_eq!(dest.read(&s, "gone.txt~").unwrap(), b"soon deleted");
        // Backups are neither synced back nor deleted by the next run.
        let (sent, _) = sync_sent(&s, &dest, &["--backup", "--delete"]);
        assert_eq!(sent, 0);
        assert_eq!(dest.read(&s, "a.txt~").unwrap(), b"version 1");

        // Under a directory of the destination, the same tree.
        let s = Scratch::new();
        let file = s.write("src/d/b.bin", b"old bytes");
        sync(&s, &dest, &[]);
        std::fs::write(&file, b"new bytes!").unwrap();
        sync(&s, &dest, &["--backup-dir", "old", "--delete"]);
        assert_eq!(dest.read(&s, "d/b.bin").unwrap(), b"new bytes!");
        assert_eq!(
            dest.read(&s, "old/d/b.bin").unwrap(),
            b"old bytes",
            "{}",
            dest.name()
        );
        // The backup directory is out of the sync: not deleted with --delete.
        sync(&s, &dest, &["--backup-dir", "old", "--delete"]);
        assert_eq!(dest.read(&s, "old/d/b.bin").unwrap(), b"old bytes");
    }
    // An empty suffix with no directory would back a file up onto itself.
    let s = Scratch::new();
    s.write("src/a", b"a");
    let out = s.sync(&["--backup", "--suffix", ""]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("suffix"), "{}", stderr_of(&out));
}

#[test]
fn a_backup_dir_elsewhere_in_the_bucket_is_a_server_side_copy_and_other_places_are_refused() {
    let dest = Dest::S3(Bucket::new());
    let Dest::S3(bucket) = &dest else {
        unreachable!()
    };
    let s = Scratch::new();
    let file = s.write("src/d/b.bin", b"old bytes");
    sync(&s, &dest, &[]);
    std::fs::write(&file, b"new bytes!").unwrap();
    // Beside the destination's prefix, in its bucket: a copy on the server.
    let elsewhere = bucket.url("kept");
    let text = plan(&s, &dest, &["--backup-dir", &elsewhere]);
    assert!(
        text.contains(&format!("kept first under {elsewhere}/")),
        "{text}"
    );
    let (sent, _) = sync_sent(&s, &dest, &["--backup-dir", &elsewhere]);
    assert_eq!(sent, 10, "only the new version is sent");
    assert_eq!(bucket.get("kept/d/b.bin"), b"old bytes");
    assert_eq!(bucket.get("d/d/b.bin"), b"new bytes!");

    // Places a server-side copy cannot reach are refused before anything
    // runs (exit 2), with the way out named.
    std::fs::write(&file, b"newer bytes").unwrap();
    for (dir, says) in [
        (
            "s3://another-bucket/kept",
            "not on the destination's bucket",
        ),
        ("/var/kept", "is a local path"),
        ("../kept", "without `..`"),
    ] {
        let out = s
            .cmd()
            .args(["sync", "--yes", "--backup-dir", dir])
            .arg(s.src())
            .arg(dest.url(&s))
            .args(dest.args())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{dir}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(says), "{dir}: {}", stderr_of(&out));
    }
    assert_eq!(
        bucket.get("d/d/b.bin"),
        b"new bytes!",
        "nothing was written"
    );
}

#[test]
fn with_archive_empty_directories_survive_a_round_trip_through_s3() {
    let bucket = Bucket::new();
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("src/empty/deeper")).unwrap();
    std::fs::create_dir_all(s.path("src/also-empty")).unwrap();
    s.write("src/full/f.txt", b"f");
    let out = s
        .cmd()
        .args(["sync", "--yes", "-a"])
        .arg(s.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Only empty directories need a marker: the others are implied.
    assert_eq!(
        bucket.keys(),
        ["d/also-empty/", "d/empty/deeper/", "d/full/f.txt"]
    );
    let back = s.path("back");
    let out = s
        .cmd()
        .args(["sync", "--yes", "-a"])
        .arg(bucket.url("d"))
        .arg(&back)
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(back.join("empty/deeper").is_dir());
    assert!(back.join("also-empty").is_dir());
    assert_eq!(std::fs::read(back.join("full/f.txt")).unwrap(), b"f");
    // A re-run has nothing to do; a directory gone from the source takes its
    // marker with it under --delete.
    let rerun = s
        .cmd()
        .args(["sync", "-n", "-a"])
        .arg(s.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(
        stdout_of(&rerun).contains("Nothing to do"),
        "{}",
        stdout_of(&rerun)
    );
    std::fs::remove_dir(s.path("src/also-empty")).unwrap();
    let out = s
        .cmd()
        .args(["sync", "--yes", "-a", "--delete"])
        .arg(s.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.keys(), ["d/empty/deeper/", "d/full/f.txt"]);
}

#[test]
fn check_trusts_the_stores_checksum_over_metadata_a_rewrite_copied() {
    // Another tool rewrote the object with bytes of the same size and kept
    // HugeSync's metadata (its blake3 among it): the store's MD5 says they
    // differ, and the copied blake3 must not say otherwise.
    let bucket = Bucket::new();
    let s = Scratch::new();
    s.write("src/f.txt", b"the original bytes, forty of them......");
    let out = s
        .cmd()
        .args(["sync", "--yes"])
        .arg(s.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let metadata = bucket.head("d/f.txt").unwrap().metadata;
    assert!(metadata.contains_key("hugesync-blake3"), "{metadata:?}");
    bucket.put_with_metadata(
        "d/f.txt",
        b"other bytes, the same length as before.",
        &metadata,
    );
    let out = s
        .cmd()
        .args(["check", "--json"])
        .arg(s.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["differ"][0]["path"], "f.txt", "{report}");
    assert_eq!(report["differ"][0]["evidence"], "md5", "{report}");
}

#[test]
fn check_finds_a_changed_byte_without_reading_the_object() {
    use util::fault_proxy::{FaultProxy, Faults};
    let bucket = Bucket::new();
    let s = Scratch::new();
    let small = s.write("src/small.txt", b"the same size and time, one byte apart");
    s.write("src/alike.txt", b"alike");
    s.write("src/big.bin", &noise(3 << 20, 95));
    s.write("src/only-here.txt", b"not uploaded");
    let flags = ["--delta-threshold", "1MiB", "--block-size", "64KiB"];
    let out = s
        .cmd()
        .args(["sync", "--yes", "--exclude", "only-here.txt"])
        .arg(s.src())
        .arg(bucket.url("d"))
        .args(bucket.args())
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    bucket.put("d/extra.txt", b"extra");
    let check = |proxy: &FaultProxy, json: bool| {
        let mut cmd = s.cmd();
        cmd.arg("check").arg(s.src()).arg(bucket.url("d"));
        cmd.args(["--endpoint-url", &proxy.endpoint, "--path-style"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let out = check(&proxy, false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("missing  only-here.txt"), "{text}");
    assert!(text.contains("extra    extra.txt"), "{text}");
    assert!(!text.contains("differ   "), "{text}");
    // All three by the MD5 their single-request uploads' ETags carry, which
    // the listing gave: no request beyond it (extra.txt, put by another tool,
    // is not compared: it is extra).
    assert!(text.contains("3 alike (3 by MD5)"), "{text}");
    assert!(text.contains(" 0 requests beyond the listings"), "{text}");

    // One byte changed, size and mtime kept: the MD5s differ, and the
    // difference is confirmed by a HEAD (the ETag is an MD5: no SSE-KMS),
    // never a GET of the object.
    let mtime = std::fs::metadata(&small).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&small).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&small, &bytes).unwrap();
    filetime::set_file_mtime(&small, filetime::FileTime::from_system_time(mtime)).unwrap();
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let out = check(&proxy, true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["differ"][0]["path"], "small.txt", "{report}");
    assert_eq!(report["differ"][0]["evidence"], "md5");
    let lines = proxy.counters.lines.lock().unwrap().clone();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("GET ") && l.contains("small.txt")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("HEAD ") && l.contains("small.txt"))
    );

    // Alike: exit 0.
    std::fs::remove_file(s.path("src/only-here.txt")).unwrap();
    bucket.put("d/only-here.txt", b"x");
    let s2 = Scratch::new();
    s2.write("src/a.txt", b"a");
    let out = s2
        .cmd()
        .args(["sync", "--yes"])
        .arg(s2.src())
        .arg(bucket.url("e"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = s2
        .cmd()
        .arg("check")
        .arg(s2.src())
        .arg(bucket.url("e"))
        .args(bucket.args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("1 alike (1 by MD5)"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn check_uses_the_sidecar_for_parts_and_download_compares_the_bytes_nothing_else_covers() {
    let bucket = Bucket::new();
    let s = Scratch::new();
    // Over the single-request limit: uploaded in parts, whose ETag is no MD5.
    let signed = noise(33 << 20, 3);
    s.write("src/signed.bin", &signed);
    let plain = s.write("src/plain.bin", &noise(33 << 20, 4));
    let upload = |dst: &str, flags: &[&str]| {
        let out = s
            .cmd()
            .args(["sync", "--yes"])
            .arg(s.src())
            .arg(bucket.url(dst))
            .args(bucket.args())
            .args(flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    };
    upload("d", &["--exclude", "plain.bin"]);
    // plain.bin without a sidecar: nothing but its size to compare.
    upload("d", &["--delta-threshold", "1GiB"]);
    let check = |flags: &[&str]| {
        s.cmd()
            .arg("check")
            .arg(s.src())
            .arg(bucket.url("d"))
            .args(bucket.args())
            .args(flags)
            .output()
            .unwrap()
    };
    let out = check(&[]);
    let text = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("2 alike (1 by blake3, 1 by size only)"),
        "{text}"
    );
    assert!(text.contains("compared by size alone"), "{text}");

    // A changed byte that only the bytes show: --download finds it.
    let mtime = std::fs::metadata(&plain).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&plain).unwrap();
    bytes[20 << 20] ^= 1;
    std::fs::write(&plain, &bytes).unwrap();
    filetime::set_file_mtime(&plain, filetime::FileTime::from_system_time(mtime)).unwrap();
    assert_eq!(check(&[]).status.code(), Some(0));
    let out = check(&["--download", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["differ"][0]["path"], "plain.bin", "{report}");
    assert_eq!(report["differ"][0]["evidence"], "bytes");
    assert_eq!(report["alike"]["blake3"], 1, "{report}");
    // signed.bin hashed here (its sidecar gave the object's blake3), plain.bin
    // hashed here and its object read once: 3 × 33 MiB.
    assert_eq!(report["bytes_read"], 3 * (33u64 << 20), "{report}");
}

#[test]
fn selection_flags_hold_on_downloads_from_s3_too() {
    let bucket = Bucket::new();
    bucket.put("d/old.txt", b"new content");
    bucket.put("d/new.txt", b"brand new");
    bucket.put("d/tiny", &[1; 10]);
    bucket.put("d/big", &[3; 100_000]);
    let down = |s: &Scratch, flags: &[&str]| {
        let out = s
            .cmd()
            .args(["sync", "--yes"])
            .arg(bucket.url("d"))
            .arg(s.dst())
            .args(bucket.args())
            .args(flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags:?}: {}", stderr_of(&out));
    };
    let read = |s: &Scratch, rel: &str| std::fs::read(s.dst().join(rel)).ok();

    let s = Scratch::new();
    s.write("dst/old.txt", b"old");
    down(&s, &["--existing"]);
    assert_eq!(read(&s, "old.txt").unwrap(), b"new content");
    assert_eq!(read(&s, "new.txt"), None);

    let s = Scratch::new();
    s.write("dst/old.txt", b"old");
    down(
        &s,
        &[
            "--ignore-existing",
            "--min-size",
            "5",
            "--max-size",
            "10KiB",
        ],
    );
    assert_eq!(read(&s, "old.txt").unwrap(), b"old");
    assert_eq!(read(&s, "new.txt").unwrap(), b"brand new");
    assert_eq!(read(&s, "tiny").unwrap(), vec![1; 10]);
    assert_eq!(read(&s, "big"), None);

    // -u: a local copy newer than the object (written since) is kept.
    let s = Scratch::new();
    let local = s.write("dst/old.txt", b"edited here later");
    set_mtime(&local, an_hour_ago() + 7200, 0);
    down(&s, &["-u"]);
    assert_eq!(read(&s, "old.txt").unwrap(), b"edited here later");

    // --files-from, listing object paths.
    let s = Scratch::new();
    let list = s.write("list", b"new.txt\n");
    down(&s, &["--files-from", &list.display().to_string()]);
    assert_eq!(read(&s, "new.txt").unwrap(), b"brand new");
    assert_eq!(read(&s, "old.txt"), None);
}
