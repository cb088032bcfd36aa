//! Output paths that are not regular files (devices, FIFOs, symbolic links,
//! standard output) and special files at a sync's destination. Everything is
//! made in a temporary directory: the machine's own `/dev/null` is never used
//! as an output.

mod util;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use util::{Scratch, noise};

/// A character device like `/dev/null` (1, 3) at `path`, or `None` with a
/// message where this process may not make one (not root). Under
/// `scripts/test.sh` (HUGESYNC_TEST_STRICT) that is a failure, not a skip.
fn null_device(path: &Path) -> Option<PathBuf> {
    let made = StdCommand::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        return Some(path.to_path_buf());
    }
    let why = format!("mknod {} c 1 3 was refused (not root?)", path.display());
    assert!(
        std::env::var_os("HUGESYNC_TEST_STRICT").is_none(),
        "{why}: the device tests cannot be skipped here"
    );
    eprintln!("SKIP: {why}");
    None
}

fn mkfifo(path: &Path) -> PathBuf {
    let status = StdCommand::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
    path.to_path_buf()
}

/// Reads a FIFO to its end in the background, as `cat FIFO` would.
fn fifo_reader(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    })
}

fn assert_still_null_device(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(
        meta.file_type().is_char_device(),
        "{} is no longer a character device",
        path.display()
    );
    assert_eq!(meta.rdev(), fs::metadata("/dev/null").unwrap().rdev());
}

fn assert_still_fifo(path: &Path) {
    assert!(
        fs::symlink_metadata(path).unwrap().file_type().is_fifo(),
        "{} is no longer a FIFO",
        path.display()
    );
}

/// What each engine command writes, made once into regular files to compare
/// the other outputs with: the old file, the new one, their signature and delta.
struct Engine {
    scratch: Scratch,
}

impl Engine {
    fn new() -> Self {
        let scratch = Scratch::new();
        let old = noise(3 << 20, 7);
        let mut new = old.clone();
        new[1_000_000..1_000_100].copy_from_slice(&[0xAB; 100]);
        new.extend_from_slice(&noise(50_000, 8));
        scratch.write("old.bin", &old);
        scratch.write("new.bin", &new);
        let engine = Self { scratch };
        engine.run_ok(&["signature", "old.bin", "-o", "old.hssig"]);
        engine.run_ok(&["delta", "old.hssig", "new.bin", "-o", "new.delta"]);
        engine
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.scratch.path(rel)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.path(rel)).unwrap()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.scratch
            .std_cmd()
            .current_dir(self.scratch.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn run_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hugesync {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The engine commands with `OUT` standing for the output path, and the
    /// bytes each writes there.
    fn commands(&self) -> Vec<(Vec<&'static str>, Vec<u8>)> {
        vec![
            (
                vec!["signature", "old.bin", "-o", "OUT"],
                self.read("old.hssig"),
            ),
            (
                vec!["delta", "old.hssig", "new.bin", "-o", "OUT"],
                self.read("new.delta"),
            ),
            (
                vec!["patch", "old.bin", "new.delta", "OUT"],
                self.read("new.bin"),
            ),
        ]
    }
}

fn with_output<'a>(args: &[&'a str], out: &'a str) -> Vec<&'a str> {
    args.iter()
        .map(|arg| if *arg == "OUT" { out } else { *arg })
        .collect()
}

#[test]
fn engine_commands_write_into_a_device_and_never_replace_it() {
    let engine = Engine::new();
    let Some(device) = null_device(&engine.path("null")) else {
        return;
    };
    for (args, _) in engine.commands() {
        engine.run_ok(&with_output(&args, "null"));
        assert_still_null_device(&device);
    }
    // No temp file was left beside it either.
    let leftovers: Vec<_> = fs::read_dir(engine.path(""))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".hugesync-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn engine_commands_write_into_a_fifo_whose_reader_gets_the_bytes() {
    let engine = Engine::new();
    let fifo = mkfifo(&engine.path("pipe"));
    for (args, expected) in engine.commands() {
        let reader = fifo_reader(&fifo);
        engine.run_ok(&with_output(&args, "pipe"));
        let got = reader.join().unwrap();
        assert!(got == expected, "{args:?}: the reader got other bytes");
        assert_still_fifo(&fifo);
    }
}

#[test]
fn a_dash_writes_to_standard_output() {
    let engine = Engine::new();
    for (args, expected) in engine.commands() {
        let stdout = engine.run_ok(&with_output(&args, "-"));
        assert!(stdout == expected, "{args:?}: stdout differs");
    }
    assert!(!engine.path("-").exists(), "`-` was taken as a file name");
    // The statistics would mix with the delta on stdout.
    let out = engine.run(&["delta", "old.hssig", "new.bin", "-o", "-", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json"));
}

#[test]
fn a_symbolic_link_as_output_is_followed_and_kept() {
    let engine = Engine::new();
    fs::write(engine.path("target.hssig"), b"old").unwrap();
    util::set_mode(&engine.path("target.hssig"), 0o640);
    std::os::unix::fs::symlink("target.hssig", engine.path("link.hssig")).unwrap();
    engine.run_ok(&["signature", "old.bin", "-o", "link.hssig"]);
    let link = fs::symlink_metadata(engine.path("link.hssig")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    assert_eq!(engine.read("target.hssig"), engine.read("old.hssig"));
    // A replaced regular file keeps its mode.
    assert_eq!(util::mode(&engine.path("target.hssig")), 0o640);

    // A dangling link: the file is made where it points.
    std::os::unix::fs::symlink("made.hssig", engine.path("dangling.hssig")).unwrap();
    engine.run_ok(&["signature", "old.bin", "-o", "dangling.hssig"]);
    assert!(
        fs::symlink_metadata(engine.path("dangling.hssig"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(engine.read("made.hssig"), engine.read("old.hssig"));

    // A link to a device writes into the device.
    if let Some(device) = null_device(&engine.path("null")) {
        std::os::unix::fs::symlink("null", engine.path("to-null")).unwrap();
        engine.run_ok(&["delta", "old.hssig", "new.bin", "-o", "to-null"]);
        assert_still_null_device(&device);
        assert!(
            fs::symlink_metadata(engine.path("to-null"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

#[test]
fn a_directory_as_output_is_refused_with_its_name() {
    let engine = Engine::new();
    fs::create_dir(engine.path("adir")).unwrap();
    let out = engine.run(&["signature", "old.bin", "-o", "adir"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("adir"), "{stderr}");
    assert!(stderr.contains("directory"), "{stderr}");
    assert!(engine.path("adir").is_dir());
}

/// `plan -o` into a device, a FIFO and standard output: the plan is one JSON
/// document with the items a directory of parts gets, and the summary goes
/// to stderr.
#[test]
fn plan_output_goes_into_devices_fifos_and_standard_output() {
    let scratch = Scratch::new();
    util::sample_tree(&scratch);
    fs::create_dir(scratch.dst()).unwrap();
    let plan = |out: &Path| {
        let mut cmd = scratch.std_cmd();
        cmd.arg("plan")
            .arg(scratch.src())
            .arg(scratch.dst())
            .arg("-o")
            .arg(out);
        cmd
    };
    let items_of = |json: &[u8]| {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(value["format"], "hugesync-plan");
        value["items"].as_array().unwrap().len()
    };
    let parts = scratch.path("plan");
    assert!(plan(&parts).output().unwrap().status.success());
    let header: serde_json::Value =
        serde_json::from_slice(&fs::read(parts.join("plan.json")).unwrap()).unwrap();
    assert_eq!(header["format"], "hugesync-plan");
    let items = header["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["items"].as_u64().unwrap() as usize)
        .sum::<usize>();
    assert!(items >= 4);

    if let Some(device) = null_device(&scratch.path("null")) {
        let out = plan(&device).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_still_null_device(&device);
    }

    let fifo = mkfifo(&scratch.path("plan.pipe"));
    let reader = fifo_reader(&fifo);
    let out = plan(&fifo).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(items_of(&reader.join().unwrap()), items);
    assert_still_fifo(&fifo);

    let out = plan(Path::new("-")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(items_of(&out.stdout), items);
    assert!(String::from_utf8_lossy(&out.stderr).contains("copy"));

    let out = plan(Path::new("-")).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A sync's destination: special files are handled as rsync handles them
/// without `--devices --specials`. One where a file or directory goes is
/// replaced; a source's special file is skipped with a note and protects the
/// destination's entry of its name; one the source lacks stays, even with
/// `--delete`.
#[test]
fn special_files_at_the_destination_are_replaced_as_rsync_does() {
    let scratch = Scratch::new();
    scratch.write("src/fifo-here.txt", b"was a fifo");
    scratch.write("src/device-here.txt", b"was a device");
    scratch.write("src/dir-here/x.txt", b"inside");
    scratch.write("dst/kept.txt", b"the source has a fifo by this name");
    mkfifo(&scratch.src().join("kept.txt"));
    mkfifo(&scratch.src().join("only-at-source"));
    mkfifo(&scratch.dst().join("fifo-here.txt"));
    mkfifo(&scratch.dst().join("dir-here"));
    mkfifo(&scratch.dst().join("extra-fifo"));
    let device = null_device(&scratch.dst().join("device-here.txt"));
    if device.is_none() {
        scratch.write("dst/device-here.txt", b"stand-in");
    }

    let out = scratch.sync(&["--delete"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("special file skipped"), "{stderr}");

    for (rel, content) in [
        ("fifo-here.txt", &b"was a fifo"[..]),
        ("device-here.txt", b"was a device"),
        ("dir-here/x.txt", b"inside"),
        ("kept.txt", b"the source has a fifo by this name"),
    ] {
        let path = scratch.dst().join(rel);
        assert!(fs::symlink_metadata(&path).unwrap().is_file(), "{rel}");
        assert_eq!(fs::read(&path).unwrap(), content, "{rel}");
    }
    assert_still_fifo(&scratch.dst().join("extra-fifo"));
    assert!(!scratch.dst().join("only-at-source").exists());
}
