//! The SSH server scripts/test.sh starts (OpenSSH's sshd on loopback, keys
//! made for the run): a directory of its own per test, reached through the
//! ssh config file the script wrote, whose `Host hugesync-test` names it.
//! The server is this machine, so what it holds is read back from the disk.

use std::path::{Path, PathBuf};

/// The ssh config file naming the test server.
pub fn config() -> String {
    std::env::var("HUGESYNC_TEST_SSH_CONFIG").expect(
        "HUGESYNC_TEST_SSH_CONFIG is not set: run the suite with scripts/test.sh \
         (or start sshd with scripts/sshd.sh and point it at target/emu/sshd-PORT/config)",
    )
}

/// The alias the config gives the server.
pub const HOST: &str = "hugesync-test";

/// A directory on the server for one test, removed afterwards.
pub struct RemoteDir {
    pub dir: tempfile::TempDir,
}

impl RemoteDir {
    pub fn new() -> RemoteDir {
        RemoteDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The directory as the server sees it (this machine's path).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `sftp://hugesync-test/ABS/rel`
    pub fn url(&self, rel: &str) -> String {
        format!("sftp://{HOST}{}/{rel}", self.dir.path().display())
    }

    /// The flags that point hugesync at the server's config.
    pub fn args(&self) -> [String; 2] {
        ["--ssh-config".into(), config()]
    }
}
