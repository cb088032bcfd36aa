//! What a package installs besides the binary: completion scripts, manual
//! pages, and a version that names its commit.

use std::process::{Command, Output};

fn hugesync(args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("hugesync"))
        .args(args)
        .env("HUGESYNC_CONFIG", "/nonexistent/hugesync-config.toml")
        .output()
        .unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn completion_scripts_come_for_every_shell_and_bash_parses_its_own() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&hugesync(&["completions", shell]));
        assert!(script.contains("hugesync"), "{shell}");
        assert!(script.contains("--delete"), "{shell}: subcommand flags");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hugesync.bash");
    std::fs::write(&path, stdout_of(&hugesync(&["completions", "bash"]))).unwrap();
    let parsed = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    // Loaded into a shell, it completes a subcommand.
    let script = format!(
        "source {}; COMP_WORDS=(hugesync sy); COMP_CWORD=1; _hugesync hugesync sy hugesync; echo \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let completed = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&completed.stdout).trim(), "sync");
    let out = hugesync(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn manual_pages_render_under_man_with_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = hugesync(&["man", "--dir", dir.path().to_str().unwrap()]);
    stdout_of(&out);
    for page in [
        "hugesync.1",
        "hugesync-sync.1",
        "hugesync-check.1",
        "hugesync-man.1",
    ] {
        let path = dir.path().join(page);
        let rendered = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(
            rendered.status.success(),
            "{page}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{page}: {text}"
        );
    }
    let sync = std::fs::read_to_string(dir.path().join("hugesync-sync.1")).unwrap();
    assert!(sync.contains("delete"), "sync's page lists its flags");
    // One page on stdout is the same page.
    let printed = stdout_of(&hugesync(&["man", "sync"]));
    assert_eq!(printed, sync);
    let out = hugesync(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manual page for `nope`"));
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let version = stdout_of(&hugesync(&["--version"]));
    let expected = format!("hugesync {} (", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");
    let commit = version
        .trim()
        .trim_start_matches(&expected)
        .trim_end_matches(')');
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(commit.starts_with(&head), "{commit} is not HEAD {head}");
    } else {
        assert_eq!(commit, "commit unknown");
    }
}
