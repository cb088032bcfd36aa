//! Local-to-local sync through the real binary, on real temp trees.

mod util;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;

use util::*;

fn basic_tree(s: &Scratch) {
    s.write("src/a.txt", b"alpha");
    s.write("src/dir/b.txt", b"bravo");
    s.write("src/dir/deeper/c.bin", &noise(100_000, 1));
    s.write("src/.hidden", b"dot");
    s.write("src/empty", b"");
    fs::create_dir_all(s.path("src/empty-dir")).unwrap();
}

#[test]
fn creates_the_tree_and_second_run_plans_nothing() {
    let s = Scratch::new();
    basic_tree(&s);
    s.sync(&[]).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
    assert_eq!(
        mtime(&s.path("src/dir/b.txt")),
        mtime(&s.path("dst/dir/b.txt"))
    );
    assert!(temp_files(&s.dst()).is_empty());

    let out = s
        .cmd()
        .arg("plan")
        .arg("--json")
        .arg(s.src())
        .arg(s.dst())
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = plan["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["action"] == "skip"), "{items:?}");
    assert_eq!(plan["stats"]["bytes_to_send"], 0);

    let out = s.sync(&[]).output().unwrap();
    assert!(out.status.success());
    assert!(stdout_of(&out).contains("Nothing to do"));
}

#[test]
fn modified_files_are_copied_again() {
    let s = Scratch::new();
    basic_tree(&s);
    s.sync(&[]).assert().success();
    s.write("src/a.txt", b"alpha, longer now");
    // Same size, different content and mtime.
    s.write("src/dir/b.txt", b"BRAVO");
    set_mtime(&s.path("src/dir/b.txt"), 1_600_000_000, 123_456_789);
    s.sync(&[]).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
    assert_eq!(fs::read(s.path("dst/dir/b.txt")).unwrap(), b"BRAVO");
    assert_eq!(
        mtime(&s.path("dst/dir/b.txt")),
        mtime(&s.path("src/dir/b.txt"))
    );
}

#[test]
fn checksum_mode_catches_same_size_same_mtime_changes() {
    let s = Scratch::new();
    s.write("src/f", b"one");
    s.sync(&[]).assert().success();
    s.write("dst/f", b"two");
    let t = mtime(&s.path("src/f"));
    filetime::set_file_mtime(s.path("dst/f"), filetime::FileTime::from_system_time(t)).unwrap();
    s.sync(&[]).assert().success();
    assert_eq!(
        fs::read(s.path("dst/f")).unwrap(),
        b"two",
        "quick check sees no change"
    );
    s.sync(&["--checksum"]).assert().success();
    assert_eq!(fs::read(s.path("dst/f")).unwrap(), b"one");
}

#[test]
fn deletes_only_with_delete_and_within_max_delete() {
    let s = Scratch::new();
    basic_tree(&s);
    s.sync(&[]).assert().success();
    fs::remove_file(s.path("src/a.txt")).unwrap();
    fs::remove_dir_all(s.path("src/dir")).unwrap();

    s.sync(&[]).assert().success();
    assert!(
        s.path("dst/a.txt").exists(),
        "no --delete keeps extra files"
    );

    let before = tree(&s.dst());
    let out = s.sync(&["--delete", "--max-delete", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("--max-delete 2"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(tree(&s.dst()), before, "a refused plan changes nothing");

    s.sync(&["--delete", "--max-delete", "5"])
        .assert()
        .success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn empty_source_with_delete_is_refused_unless_allowed() {
    let s = Scratch::new();
    basic_tree(&s);
    s.sync(&[]).assert().success();
    fs::remove_dir_all(s.src()).unwrap();
    fs::create_dir(s.src()).unwrap();
    let out = s.sync(&["--delete"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--allow-empty-source"));
    assert!(s.path("dst/a.txt").exists());
    s.sync(&["--delete", "--allow-empty-source"])
        .assert()
        .success();
    assert!(tree(&s.dst()).is_empty());
}

#[test]
fn missing_source_is_an_error_and_nothing_is_deleted() {
    let s = Scratch::new();
    s.write("dst/keep", b"x");
    let mut cmd = s.cmd();
    cmd.args(["sync", "--yes", "--delete"])
        .arg(s.path("nope"))
        .arg(s.dst());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("does not exist"),
        "{}",
        stderr_of(&out)
    );
    assert!(s.path("dst/keep").exists());
}

#[test]
fn filters_follow_rsync_rules_and_protect_excluded_destination_entries() {
    let s = Scratch::new();
    s.write("src/keep.txt", b"k");
    s.write("src/debug.log", b"l");
    s.write("src/logs/important.log", b"i");
    s.write("src/target/out.o", b"o");
    s.write("src/sub/target/x", b"x");
    s.write("dst/other.log", b"protected");
    s.sync(&[
        "--delete",
        "--include",
        "important.log",
        "--exclude",
        "*.log",
        "--exclude",
        "/target/",
    ])
    .assert()
    .success();
    let names: Vec<String> = tree(&s.dst())
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "keep.txt",
            "logs",
            "logs/important.log",
            "other.log",
            "sub",
            "sub/target",
            "sub/target/x"
        ]
    );
}

#[test]
fn dry_run_changes_nothing_and_reports_the_plan() {
    let s = Scratch::new();
    basic_tree(&s);
    s.write("dst/stale", b"s");
    let before = tree(&s.dst());
    let out = s.sync(&["--dry-run", "--delete"]).output().unwrap();
    assert!(out.status.success());
    let text = stdout_of(&out);
    assert!(text.contains("dir/deeper/c.bin"), "{text}");
    assert!(text.contains("delete"), "{text}");
    assert_eq!(tree(&s.dst()), before);

    let out = s.sync(&["-n", "--json", "--delete"]).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["stats"]["delete"]["count"], 1);
    assert_eq!(plan["stats"]["copy"]["count"], 8);
    assert_eq!(tree(&s.dst()), before);
}

#[test]
fn refuses_without_a_terminal_or_yes() {
    let s = Scratch::new();
    basic_tree(&s);
    let out = s
        .cmd()
        .arg("sync")
        .arg(s.src())
        .arg(s.dst())
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--yes"));
    assert!(!s.dst().exists());
}

#[test]
fn archive_mode_round_trips_mtime_mode_and_links() {
    let s = Scratch::new();
    let script = s.write("src/bin/run.sh", b"#!/bin/sh\n");
    set_mode(&script, 0o750);
    set_mtime(&script, 1_500_000_000, 987_654_321);
    std::os::unix::fs::symlink("bin/run.sh", s.path("src/run")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", s.path("src/dangling")).unwrap();
    set_mode(&s.path("src/bin"), 0o700);
    set_mtime(&s.path("src/bin"), 1_400_000_000, 5);

    // Without -a links are skipped with a note.
    let out = s.sync(&[]).output().unwrap();
    assert!(out.status.success());
    assert!(stderr_of(&out).contains("symbolic link skipped"));
    assert!(!s.path("dst/run").exists());

    s.sync(&["-a"]).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
    assert_eq!(mode(&s.path("dst/bin/run.sh")), 0o750);
    assert_eq!(mtime(&s.path("dst/bin/run.sh")), mtime(&script));
    assert_eq!(mode(&s.path("dst/bin")), 0o700);
    assert_eq!(mtime(&s.path("dst/bin")), mtime(&s.path("src/bin")));
    assert_eq!(
        fs::read_link(s.path("dst/dangling")).unwrap(),
        Path::new("/nowhere/at/all")
    );

    // A mode-only change is a metadata update, not a copy.
    set_mode(&script, 0o755);
    let out = s.sync(&["-a", "-n", "--json"]).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["stats"]["metadata"]["count"], 1);
    assert_eq!(plan["stats"]["bytes_to_send"], 0);
    s.sync(&["-a"]).assert().success();
    assert_eq!(mode(&s.path("dst/bin/run.sh")), 0o755);
}

#[test]
fn unicode_and_non_utf8_names_survive() {
    let s = Scratch::new();
    s.write("src/café/日本語.txt", b"u");
    let raw = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe-name");
    write_file(&s.src().join(raw), b"raw");
    s.sync(&[]).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
    assert_eq!(fs::read(s.dst().join(raw)).unwrap(), b"raw");

    // And through a saved plan.
    s.write("src/café/new.txt", b"n");
    let plan = s.path("plan.json");
    s.cmd()
        .arg("plan")
        .arg(s.src())
        .arg(s.dst())
        .arg("-o")
        .arg(&plan)
        .assert()
        .success();
    s.cmd()
        .arg("apply")
        .arg("--yes")
        .arg(&plan)
        .assert()
        .success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn a_100_mib_file_is_copied_exactly() {
    let s = Scratch::new();
    let data = noise(100 * 1024 * 1024, 7);
    s.write("src/big.img", &data);
    s.sync(&["-P"]).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn stale_plans_are_refused_and_replan_works() {
    let s = Scratch::new();
    basic_tree(&s);
    let plan = s.path("plan.json");
    s.cmd()
        .arg("plan")
        .arg(s.src())
        .arg(s.dst())
        .arg("-o")
        .arg(&plan)
        .assert()
        .success();
    s.write("src/a.txt", b"changed after planning");
    let out = s
        .cmd()
        .arg("apply")
        .arg("--yes")
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("stale"), "{}", stderr_of(&out));
    assert!(!s.dst().exists(), "nothing was executed");

    s.cmd()
        .arg("apply")
        .arg("--yes")
        .arg("--replan")
        .arg(&plan)
        .assert()
        .success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));

    let out = s
        .cmd()
        .arg("apply")
        .arg("--yes")
        .arg(s.path("src/a.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("not a HugeSync plan"));
}

#[test]
fn apply_n_prints_a_plan_in_parts_as_plan_printed_it() {
    let s = Scratch::new();
    basic_tree(&s);
    s.sync(&[]).assert().success();
    s.write("src/a.txt", b"changed");
    s.write("src/new/one.txt", b"1");
    s.write("dst/gone.txt", b"g");
    let plan = s.path("plan");
    let planned = s
        .cmd()
        .args(["plan", "--delete", "--json", "-o"])
        .arg(&plan)
        .arg(s.src())
        .arg(s.dst())
        .output()
        .unwrap();
    assert!(planned.status.success(), "{}", stderr_of(&planned));
    let planned: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();

    let out = s
        .cmd()
        .args(["apply", "-n", "--json"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = |plan: &serde_json::Value| -> Vec<serde_json::Value> {
        plan["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["action"] != "skip")
            .cloned()
            .collect()
    };
    assert_eq!(changes(&shown).len(), 4, "{shown}");
    assert_eq!(changes(&shown), changes(&planned));
    assert_eq!(shown["stats"], planned["stats"]);
    assert_eq!(shown["cost"], planned["cost"]);

    // The text lists the same changes.
    let text = s.cmd().args(["apply", "-n"]).arg(&plan).output().unwrap();
    let text = stdout_of(&text);
    for path in ["a.txt", "new/one.txt", "gone.txt"] {
        assert!(text.contains(path), "{text}");
    }
    s.cmd()
        .args(["apply", "--yes"])
        .arg(&plan)
        .assert()
        .success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn json_events_and_summary() {
    let s = Scratch::new();
    basic_tree(&s);
    let out = s.sync(&["--json"]).output().unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["event"], "begin");
    let finished = events.iter().filter(|e| e["event"] == "finished").count();
    assert_eq!(finished, 8);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["report"]["copied"], 8);
    assert_eq!(summary["report"]["bytes_sent"], 100_000 + 5 + 5 + 3);
    // Nothing left to do: still one summary line, all zeros.
    let again = s.sync(&["--json"]).output().unwrap();
    let last: serde_json::Value =
        serde_json::from_str(stdout_of(&again).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "summary", "{last}");
    assert_eq!(last["report"]["copied"], 0);
    assert_eq!(last["report"]["bytes_sent"], 0);
}

#[test]
fn bad_input_gets_clear_errors_and_exit_code_2() {
    let s = Scratch::new();
    basic_tree(&s);
    let cases: &[(&[&str], &str)] = &[
        (
            &["sync", "--yes", "s3://Bad_Bucket/x", "d"],
            "invalid bucket name",
        ),
        (&["sync", "--yes", "ftp://host/x", "d"], "unknown scheme"),
        (&["plan", "gs://Bad_Bucket/x", "d"], "invalid bucket name"),
        (&["plan", "a", "b", "--block-size", "10MiB"], "block_size"),
        (&["plan", "a", "b", "--jobs", "0"], "jobs"),
        (
            &["plan", "a", "b", "--exclude", "[oops"],
            "invalid filter pattern",
        ),
        (&["tui", "a", "b"], "needs a terminal"),
    ];
    for (args, expected) in cases {
        let out = s
            .cmd()
            .current_dir(s.dir.path())
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(expected),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    let inside = s.src().join("nested");
    let out = s
        .cmd()
        .arg("plan")
        .arg(s.src())
        .arg(&inside)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("inside the source"));

    s.write("src-file", b"x");
    let out = s
        .cmd()
        .arg("plan")
        .arg(s.path("src-file"))
        .arg(s.dst())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("not a directory"));
}

#[test]
fn config_layers_and_reports_origins() {
    let s = Scratch::new();
    s.write(
        "config/hugesync/config.toml",
        b"jobs = 3\nblock_size = \"1MiB\"\n",
    );
    let out = s
        .cmd()
        .env("HUGESYNC_DELETE", "true")
        .arg("config")
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["settings"]["jobs"]["value"], 3);
    assert!(
        v["settings"]["jobs"]["origin"]
            .as_str()
            .unwrap()
            .starts_with("file ")
    );
    assert_eq!(v["settings"]["delete"]["origin"], "env HUGESYNC_DELETE");
    assert_eq!(v["settings"]["block_size"]["value"], 1024 * 1024);
    assert_eq!(v["settings"]["archive"]["origin"], "default");

    s.write("config/hugesync/config.toml", b"jobz = 3\n");
    let out = s.cmd().arg("config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("jobz"), "{}", stderr_of(&out));

    let out = s
        .cmd()
        .arg("--config")
        .arg(s.path("missing.toml"))
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("missing.toml"));
}

#[test]
fn stale_temp_files_are_ignored_and_never_synced() {
    let s = Scratch::new();
    s.write("src/a", b"a");
    s.write("src/.hugesync-abc123.tmp", b"left by a crash");
    s.sync(&[]).assert().success();
    assert!(!s.path("dst/.hugesync-abc123.tmp").exists());
    assert!(s.path("dst/a").exists());
}

/// Runs `hugesync` as an unprivileged user, so permission bits bite even when the
/// tests run as root.
fn as_unprivileged(s: &Scratch) -> std::process::Command {
    let binary = assert_cmd::cargo::cargo_bin("hugesync");
    let copy = s.path("hugesync-bin");
    // Copied by another process: a write handle of ours, inherited by a
    // child another test forks meanwhile, would make the exec below fail
    // with "Text file busy" until that child execs.
    let copied = std::process::Command::new("cp")
        .arg(&binary)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    set_mode(&copy, 0o755);
    set_mode(s.dir.path(), 0o777);
    let is_root = unsafe_free_is_root();
    let mut cmd = if is_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy);
        c
    } else {
        std::process::Command::new(&copy)
    };
    cmd.env("XDG_CONFIG_HOME", s.path("config"))
        .env("HOME", s.dir.path());
    cmd
}

fn unsafe_free_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // A file we create is owned by our effective uid.
    let probe = tempfile::NamedTempFile::new().unwrap();
    fs::metadata(probe.path()).unwrap().uid() == 0
}

#[test]
fn unreadable_files_fail_alone_and_the_rest_is_synced() {
    let s = Scratch::new();
    s.write("src/ok.txt", b"fine");
    let secret = s.write("src/secret.txt", b"no");
    s.write("src/locked/inner.txt", b"hidden");
    s.write("dst/locked/old.txt", b"must survive --delete");
    s.write(
        "dst/stale.txt",
        b"gone from the source, kept while it is unread",
    );
    for dir in ["src", "src/locked", "dst", "dst/locked"] {
        set_mode(&s.path(dir), 0o777);
    }
    for f in ["src/ok.txt", "dst/locked/old.txt", "dst/stale.txt"] {
        set_mode(&s.path(f), 0o666);
    }
    set_mode(&secret, 0o000);
    set_mode(&s.path("src/locked"), 0o000);

    let out = as_unprivileged(&s)
        .arg("sync")
        .arg("--yes")
        .arg("--delete")
        .arg(s.src())
        .arg(s.dst())
        .output()
        .unwrap();
    set_mode(&s.path("src/locked"), 0o777);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("secret.txt"), "{stderr}");
    assert!(stderr.contains("locked"), "{stderr}");
    assert_eq!(fs::read(s.path("dst/ok.txt")).unwrap(), b"fine");
    assert!(!s.path("dst/secret.txt").exists());
    assert!(
        s.path("dst/locked/old.txt").exists(),
        "nothing below an unreadable source dir is deleted"
    );
    // As rsync: a source scan error withholds every deletion, and says so.
    assert!(
        s.path("dst/stale.txt").exists(),
        "deleted despite a scan error"
    );
    let said = format!("{stderr}{}", stdout_of(&out));
    assert!(said.contains("deletion(s) withheld"), "{said}");
    assert!(said.contains("--ignore-errors"), "{said}");
    assert!(temp_files(&s.dst()).is_empty());

    // --ignore-errors deletes what is missing at the source, still never what
    // lies below the unreadable directory (the secret file is readable now:
    // a failed transfer withholds deletions whatever the flag says).
    set_mode(&secret, 0o644);
    set_mode(&s.path("src/locked"), 0o000);
    let out = as_unprivileged(&s)
        .args(["sync", "--yes", "--delete", "--ignore-errors"])
        .arg(s.src())
        .arg(s.dst())
        .output()
        .unwrap();
    set_mode(&s.path("src/locked"), 0o777);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(!s.path("dst/stale.txt").exists());
    assert!(s.path("dst/locked/old.txt").exists());
}

#[test]
fn unreadable_or_invalid_settings_are_usage_errors_naming_them() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    s.write("src/a", b"a");
    let bad = std::ffi::OsStr::from_bytes(b"8\xff");
    let out = s.sync(&[]).env("HUGESYNC_JOBS", bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("HUGESYNC_JOBS"),
        "{}",
        stderr_of(&out)
    );
    let out = s.sync(&[]).env("HUGESYNC_CONFIG", bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("HUGESYNC_CONFIG"),
        "{}",
        stderr_of(&out)
    );

    let out = s.sync(&["--endpoint-url", "not a url"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("endpoint_url"),
        "{}",
        stderr_of(&out)
    );
    s.write(
        "config/hugesync/config.toml",
        b"endpoint_url = \"http://a\\u0000b\"\n",
    );
    let out = s.sync(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains('\0'), "a raw NUL was printed");
    assert!(
        stderr_of(&out).contains("endpoint_url"),
        "{}",
        stderr_of(&out)
    );
    fs::remove_file(s.path("config/hugesync/config.toml")).unwrap();

    let out = s.sync(&["--block-size", "65537"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("65537"), "{}", stderr_of(&out));
}

#[test]
fn ctrl_c_stops_cleanly_with_exit_130_and_no_partial_files() {
    let s = Scratch::new();
    for i in 0..12 {
        s.write(&format!("src/f{i:02}.bin"), &noise(16 * 1024 * 1024, i));
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hugesync"))
        .args(["sync", "--yes", "--json", "-j", "1"])
        .arg(s.src())
        .arg(s.dst())
        .env("XDG_CONFIG_HOME", s.path("config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // Interrupt once the first bytes of a file are on their way.
    for line in lines.by_ref() {
        if line.unwrap().contains("\"advanced\"") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.last().unwrap().contains("\"interrupted\":true"),
        "{rest:?}"
    );
    let src = tree(&s.src());
    for (path, node) in tree(&s.dst()) {
        assert_eq!(
            src.get(&path),
            Some(&node),
            "{:?} is partial",
            String::from_utf8_lossy(&path)
        );
    }
    assert!(temp_files(&s.dst()).is_empty());
    // And the next run converges.
    s.sync(&[]).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn large_changed_files_go_by_delta_and_the_plan_estimates_savings() {
    let s = Scratch::new();
    let old = noise(8 * 1024 * 1024, 21);
    s.write("src/disk.img", &old);
    s.sync(&[]).assert().success();
    let mut new = old.clone();
    new[3_000_000..3_000_100].copy_from_slice(&[1; 100]);
    new.splice(100..100, noise(1024, 22));
    s.write("src/disk.img", &new);

    let args = ["--delta-threshold", "1MiB", "--block-size", "64KiB"];
    let mut cmd = s.cmd();
    cmd.arg("plan")
        .arg("--json")
        .arg(s.src())
        .arg(s.dst())
        .args(args);
    let plan: serde_json::Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    let item = &plan["items"][0];
    assert_eq!(item["action"], "delta", "{item}");
    assert!(
        item["bytes_to_send"].as_u64().unwrap() <= 3 * 65536,
        "{item}"
    );
    assert!(
        item["bytes_saved"].as_u64().unwrap() >= 8 * 1024 * 1024 - 3 * 65536,
        "{item}"
    );

    let mut full = args.to_vec();
    full.push("--json");
    let out = s.sync(&full).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value =
        serde_json::from_str(stdout_of(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["report"]["delta"], 1);
    assert!(
        summary["report"]["bytes_sent"].as_u64().unwrap() <= 3 * 65536,
        "{summary}"
    );
    assert_eq!(fs::read(s.path("dst/disk.img")).unwrap(), new);
    assert!(temp_files(&s.dst()).is_empty());
    s.sync(&args).assert().success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn apply_keeps_the_deletion_guards_set_now() {
    let s = Scratch::new();
    s.write("src/keep.txt", b"k");
    for name in ["x1", "x2", "x3"] {
        s.write(&format!("dst/{name}"), b"extra");
    }
    let plan = s.path("plan.json");
    s.cmd()
        .args(["plan", "--delete"])
        .arg(s.src())
        .arg(s.dst())
        .arg("-o")
        .arg(&plan)
        .assert()
        .success();
    // The plan recorded no limit; the config file now says one deletion at most.
    s.write("config/hugesync/config.toml", b"max_delete = 1\n");
    let out = s
        .cmd()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    for name in ["x1", "x2", "x3"] {
        assert!(
            s.path(&format!("dst/{name}")).exists(),
            "{name} was deleted"
        );
    }
    // With a looser limit now, the plan runs.
    s.write("config/hugesync/config.toml", b"max_delete = 5\n");
    s.cmd()
        .args(["apply", "--yes"])
        .arg(&plan)
        .assert()
        .success();
    assert!(!s.path("dst/x1").exists());
}

#[test]
fn a_destination_link_without_a_is_noted_not_a_conflict() {
    let s = Scratch::new();
    s.write("src/link", b"a regular file at the source");
    s.write("src/other.txt", b"o");
    fs::create_dir_all(s.dst()).unwrap();
    std::os::unix::fs::symlink("elsewhere", s.dst().join("link")).unwrap();
    let out = s.sync(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let said = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(said.contains("symbolic link skipped"), "{said}");
    assert!(!said.contains("conflict"), "{said}");
    assert!(
        fs::symlink_metadata(s.dst().join("link"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(fs::read(s.dst().join("other.txt")).unwrap(), b"o");
}

/// `plan -o` saves a header and parts; `apply` refuses a part changed since,
/// still runs a one-document plan (`plan -o -`, or an earlier version's
/// file), and `-o` inside either side is refused.
#[test]
fn plans_in_parts_are_checked_and_kept_outside_both_sides() {
    let s = Scratch::new();
    basic_tree(&s);
    let plan = |out: &std::path::Path| {
        s.cmd()
            .arg("plan")
            .arg(s.src())
            .arg(s.dst())
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };
    for inside in [s.src().join("plans"), s.dst().join("plans/run-1")] {
        let out = plan(&inside);
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("overlaps the"),
            "{}",
            stderr_of(&out)
        );
        assert!(!inside.exists());
    }

    let parts = s.path("plan");
    assert!(plan(&parts).status.success());
    let part = fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let text = fs::read_to_string(&part).unwrap();
    fs::write(&part, text.replacen("\"copy\"", "\"skip\"", 1)).unwrap();
    let out = s
        .cmd()
        .arg("apply")
        .arg("--yes")
        .arg(&parts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("does not match the plan's header"),
        "{}",
        stderr_of(&out)
    );
    assert!(!s.dst().exists(), "nothing was executed");

    // One JSON document, as `plan -o -` writes it and earlier versions saved.
    let document = s
        .cmd()
        .arg("plan")
        .arg(s.src())
        .arg(s.dst())
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert!(document.status.success());
    let file = s.path("plan.json");
    fs::write(&file, &document.stdout).unwrap();
    s.cmd()
        .arg("apply")
        .arg("--yes")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

/// `plan -o` prints its text read back from the parts it saved (nothing of
/// the plan held in memory): the same text as a plan printed whole, cost
/// lines included where a side is a store.
#[test]
fn a_saved_plan_prints_what_a_plan_printed_whole_does() {
    let s = Scratch::new();
    basic_tree(&s);
    s.sync(&[]).assert().success();
    s.write("src/a.txt", b"alpha, longer now");
    s.write("src/new.txt", b"new");
    fs::remove_file(s.path("src/dir/b.txt")).unwrap();
    let src = s.src().display().to_string();
    for (n, dst) in [
        s.dst().display().to_string(),
        "mem://plans-text/dst".to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let plan = |extra: &[String]| {
            let out = s
                .cmd()
                .arg("plan")
                .arg("--delete")
                .args(extra)
                .arg(&src)
                .arg(&dst)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            (stdout_of(&out), stderr_of(&out))
        };
        let (whole, _) = plan(&[]);
        let place = s.path(&format!("plan-{n}"));
        let (saved, note) = plan(&["-o".into(), place.display().to_string()]);
        assert_eq!(saved, whole, "{dst}");
        assert!(whole.contains("new.txt"), "{whole}");
        assert!(note.contains("Plan saved to"), "{note}");
    }
}
