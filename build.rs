//! Records the commit the binary is built from, for `hugesync --version`.

use std::process::Command;

fn main() {
    // A source tree without git (a crate tarball) says so rather than guess.
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| !out.stdout.is_empty());
    let commit = match commit {
        Some(commit) if dirty => format!("{commit}-modified"),
        Some(commit) => commit,
        None => "commit unknown".to_string(),
    };
    println!("cargo:rustc-env=HUGESYNC_GIT_COMMIT={commit}");
    // Rebuilt when HEAD moves (a commit, a checkout) or the index changes.
    for path in [".git/HEAD", ".git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        let path = format!(".git/{reference}");
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
