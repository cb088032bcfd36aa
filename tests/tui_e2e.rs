//! `hugesync tui` end to end through a real terminal: tmux runs it on a temp tree,
//! keys approve the plan, the test waits for the summary, quits, and checks the
//! destination and the exit code.

mod util;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

struct Session {
    name: String,
}

impl Session {
    fn start(command: &str) -> Session {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("hugesync-e2e-{}-{n}", std::process::id());
        let status = Command::new("tmux")
            // CI may have no TERM at all; the UI inside tmux gets tmux's own.
            .env(
                "TERM",
                std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()),
            )
            .args([
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
                "-s",
                &name,
                command,
            ])
            .status()
            .expect("tmux must be installed (scripts/test.sh installs it)");
        assert!(status.success());
        Session { name }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until the screen shows `text`.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The session may be gone already (tmux then says so on stderr).
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `hugesync tui --delete SRC DST` with its own config and state homes, writing
/// its exit code to `exit_file` when it ends.
fn tui_delete_command(s: &Scratch, exit_file: &Path) -> String {
    format!(
        "XDG_CONFIG_HOME={config} XDG_STATE_HOME={state} {bin} tui --delete {src} {dst}; echo $? > {exit}",
        config = s.path("config").display(),
        state = s.path("state").display(),
        bin = assert_cmd::cargo::cargo_bin("hugesync").display(),
        src = s.src().display(),
        dst = s.dst().display(),
        exit = exit_file.display(),
    )
}

#[test]
fn approve_run_and_quit_through_tmux() {
    let s = Scratch::new();
    s.write("src/docs/readme.txt", b"hello");
    s.write("src/data/blob.bin", &noise(3 * 1024 * 1024, 9));
    s.write("dst/stale.txt", b"old");
    let exit_file = s.path("exit-code");
    let session = Session::start(&tui_delete_command(&s, &exit_file));
    let review = session.wait_for("HugeSync plan");
    assert!(review.contains("delete"), "{review}");
    session.keys(&["a"]);
    session.wait_for("Run this plan?");
    session.keys(&["y"]);
    session.wait_for("Done in");
    session.keys(&["q"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
    assert_eq!(tree(&s.src()), tree(&s.dst()));
}

#[test]
fn veto_a_delete_then_run() {
    let s = Scratch::new();
    s.write("src/a.txt", b"a");
    s.write("dst/keep.txt", b"k");
    let exit_file = s.path("exit-code");
    let session = Session::start(&tui_delete_command(&s, &exit_file));
    session.wait_for("keep.txt");
    // Rows: a.txt, keep.txt. The details pane reads keep.txt's entries
    // from the plan's parts; veto the delete, approve, run.
    session.keys(&["Down"]);
    session.wait_for("dest.: 1 B");
    session.keys(&["d"]);
    let screen = session.wait_for("1 skip");
    assert!(!screen.contains("1 delete"), "{screen}");
    session.keys(&["a"]);
    session.wait_for("Run this plan?");
    session.keys(&["y"]);
    session.wait_for("Done in");
    session.keys(&["q"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
    assert!(
        s.path("dst/keep.txt").exists(),
        "the vetoed delete did not happen"
    );
    assert!(s.path("dst/a.txt").exists());
}

/// Requests the server throttles are retried, and the log pane says so as
/// it happens: the run screen is run against moto through a proxy that
/// answers some requests with 503 SlowDown.
#[test]
fn the_log_pane_shows_retries_as_they_happen() {
    if util::server_running("HUGESYNC_TEST_S3_ENDPOINT").is_none() {
        return;
    }
    let s = Scratch::new();
    let bucket = util::s3::Bucket::new();
    for i in 0..30 {
        s.write(&format!("src/f{i:02}.txt"), format!("file {i}").as_bytes());
    }
    let proxy = util::fault_proxy::FaultProxy::start(
        &bucket.endpoint,
        util::fault_proxy::Faults {
            slow_down: 0.25,
            ..Default::default()
        },
    );
    let exit_file = s.path("exit-code");
    let command = format!(
        "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
         AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE={none} AWS_SHARED_CREDENTIALS_FILE={none} \
         HUGESYNC_RETRY_MAX_DELAY=100ms XDG_CONFIG_HOME={config} XDG_STATE_HOME={state} \
         {bin} tui {src} {dst} --endpoint-url {endpoint} --path-style; echo $? > {exit}",
        none = s.path("none").display(),
        config = s.path("config").display(),
        state = s.path("state").display(),
        bin = assert_cmd::cargo::cargo_bin("hugesync").display(),
        src = s.src().display(),
        dst = bucket.url("p"),
        endpoint = proxy.endpoint,
        exit = exit_file.display(),
    );
    let session = Session::start(&command);
    session.wait_for("HugeSync plan");
    session.keys(&["a"]);
    session.wait_for("Run this plan?");
    session.keys(&["y"]);
    let done = session.wait_for("Done in");
    let log = done
        .split_once("log ─")
        .map(|(_, pane)| pane)
        .unwrap_or_default();
    assert!(
        log.contains("SlowDown") && log.contains("; retry "),
        "the log pane shows no retry:\n{done}"
    );
    assert!(proxy.faults() > 0);
    session.keys(&["q"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
    assert_eq!(bucket.keys().len(), 30);
}
