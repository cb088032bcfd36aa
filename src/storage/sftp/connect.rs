//! One SSH connection per run, made by the system's `ssh` exactly as the user's
//! own `ssh HOST` would make it: `~/.ssh/config` (Host aliases, HostName, Port,
//! User, IdentityFile, IdentitiesOnly, ProxyJump), the ssh-agent, key files and
//! known_hosts all come from OpenSSH itself. HugeSync only adds
//! `BatchMode=yes` (never a prompt in the middle of a run) and strict host key
//! checking (`accept-new` with `--ssh-accept-new`), then speaks SFTP over the
//! `sftp` subsystem's pipes, as rsync `-e ssh` and rclone's `--sftp-ssh` do.
//!
//! When `ssh` fails, its own words are kept, and two cases get more: an unknown
//! or changed host key is named with its fingerprint (what `ssh-keyscan` sees),
//! and a refused login whose only keys are passphrase-protected says so.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::SftpTarget;
use crate::storage::{RemoteErrorKind, StorageError};

/// How to reach SSH servers (config keys `ssh_config`, `ssh_accept_new`).
#[derive(Clone, Debug)]
pub struct SftpSettings {
    /// An ssh config file used instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// Add the key of a host not yet in known_hosts (never a changed one).
    pub accept_new: bool,
    /// The `ssh` program (`HUGESYNC_SSH`; default `ssh` on the PATH).
    pub program: Option<PathBuf>,
    /// Flush each written file to the server's disk before its rename
    /// (`fsync@openssh.com`); `--no-fsync` turns it off, as for local disks.
    pub fsync: bool,
}

impl Default for SftpSettings {
    fn default() -> Self {
        SftpSettings {
            config_file: None,
            accept_new: false,
            program: None,
            fsync: true,
        }
    }
}

impl SftpSettings {
    pub(super) fn program(&self) -> &Path {
        self.program.as_deref().unwrap_or(Path::new("ssh"))
    }

    /// The options every `ssh` HugeSync runs gets: the config file, and
    /// nothing that would make it ask a question.
    pub(super) fn common_args(&self, target: &SftpTarget) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(file) = &self.config_file {
            args.push("-F".into());
            args.push(file.display().to_string());
        }
        if let Some(port) = target.port {
            args.push("-p".into());
            args.push(port.to_string());
        }
        if let Some(user) = &target.user {
            args.push("-l".into());
            args.push(user.clone());
        }
        args
    }
}

/// A running `ssh` carrying the SFTP subsystem.
pub struct SshProcess {
    pub child: Child,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub stderr: tokio::process::ChildStderr,
}

/// What `ssh` said on stderr (once it has exited).
pub async fn said(stderr: &mut tokio::process::ChildStderr) -> String {
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text).await;
    text
}

/// `ssh` with the options every connection HugeSync makes gets: the config
/// file, nothing that would ask a question, strict host keys (or
/// `accept-new`), a bounded connect.
fn unattended(settings: &SftpSettings, target: &SftpTarget) -> Command {
    let mut command = Command::new(settings.program());
    command
        .args(settings.common_args(target))
        .args(["-o", "BatchMode=yes"])
        .args([
            "-o",
            if settings.accept_new {
                "StrictHostKeyChecking=accept-new"
            } else {
                "StrictHostKeyChecking=yes"
            },
        ])
        .args(["-o", "ConnectTimeout=30"]);
    command
}

/// Starts `ssh … HOST -s sftp`. The process dies with HugeSync (kill on
/// drop; on a kill -9 its stdin closes and it ends by itself). `ciphers` is
/// an order to ask for (`cipher::preferred`).
pub fn spawn(
    settings: &SftpSettings,
    target: &SftpTarget,
    ciphers: Option<&str>,
    control: Option<&Path>,
) -> Result<SshProcess, StorageError> {
    let mut command = unattended(settings, target);
    if let Some(ciphers) = ciphers {
        command.arg("-o").arg(format!("Ciphers={ciphers}"));
    }
    // The session's connection also carries the commands run on the server
    // (its hash command), without a login each.
    if let Some(socket) = control {
        command
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=no"])
            .arg("-o")
            .arg(format!("ControlPath={}", socket.display()));
    }
    command
        // A dead link is noticed within a minute rather than by TCP's hours.
        .args([
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
        ])
        .arg("-s")
        .arg("--")
        .arg(&target.host)
        .arg("sftp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| StorageError::Remote {
        op: "cannot connect to",
        hints: &super::HINTS,
        kind: RemoteErrorKind::Rejected,
        target: target.to_string(),
        message: format!(
            "cannot run `{}`: {e} (HugeSync reaches SSH servers through OpenSSH's ssh; install it or set HUGESYNC_SSH)",
            settings.program().display()
        ),
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(StorageError::Remote {
            op: "cannot connect to",
            hints: &super::HINTS,
            kind: RemoteErrorKind::Network,
            target: target.to_string(),
            message: "ssh started without its pipes".into(),
        });
    };
    Ok(SshProcess {
        child,
        stdin,
        stdout,
        stderr,
    })
}

/// Runs one shell command on the server (`ssh … HOST -- COMMAND`), with the
/// options the SFTP session has, over its connection (`control`). `None`
/// when the server runs no commands for this login (an SFTP-only account,
/// `ForceCommand internal-sftp`) or `ssh` cannot run at all.
pub async fn run_command(
    settings: &SftpSettings,
    target: &SftpTarget,
    control: Option<&Path>,
    command: &str,
) -> Option<std::process::Output> {
    let mut ssh = unattended(settings, target);
    // Over the session's connection where it is up (ssh connects on its
    // own where it is not).
    if let Some(socket) = control {
        ssh.args(["-o", "ControlMaster=no"])
            .arg("-o")
            .arg(format!("ControlPath={}", socket.display()));
    }
    ssh.arg("--")
        .arg(&target.host)
        .arg(command)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .ok()
}

/// The error for a connection that failed, from what `ssh` said, made
/// actionable where the cause is known.
pub async fn diagnose(settings: &SftpSettings, target: &SftpTarget, said: &str) -> StorageError {
    let said = said.trim();
    let last_words: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let mut message = if last_words.is_empty() {
        "ssh ended before the SFTP session started".to_string()
    } else {
        format!("ssh: {}", last_words.join(" / "))
    };
    let mut kind = RemoteErrorKind::Network;
    if said.contains("host key is known for")
        || said.contains("Host key verification failed")
        || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        kind = RemoteErrorKind::Denied;
        let changed = said.contains("HAS CHANGED");
        let fingerprints = host_fingerprints(settings, target).await;
        message = format!(
            "the host key of {} is {}; refused{}. {}",
            target.host,
            if changed {
                "not the one known_hosts holds (it changed: someone may be intercepting the connection, or the server was reinstalled)"
            } else {
                "not in known_hosts"
            },
            if fingerprints.is_empty() {
                String::new()
            } else {
                format!(" (the server offers {})", fingerprints.join(", "))
            },
            if changed {
                "Check the fingerprint with the server's administrator, then remove the old key with `ssh-keygen -R HOST`."
            } else {
                "Check the fingerprint with the server's administrator, then connect once with `ssh` to add it, or pass --ssh-accept-new."
            }
        );
    } else if said.contains("Permission denied") {
        kind = RemoteErrorKind::Denied;
        let locked = passphrase_keys(settings, target).await;
        if !locked.is_empty() && !agent_has_keys().await {
            message = format!(
                "{message}. The key {} is protected by a passphrase and no ssh-agent holds it (HugeSync never prompts): run `ssh-add {}` first",
                locked.join(", "),
                locked.join(" ")
            );
        } else {
            message = format!(
                "{message}. Check that `ssh {}` logs in without a prompt (keys, agent, User)",
                target.host
            );
        }
    }
    StorageError::Remote {
        op: "cannot connect to",
        hints: &super::HINTS,
        kind,
        target: target.to_string(),
        message,
    }
}

/// `ssh -G`: the options ssh would use for the host, after the config.
async fn resolved_options(settings: &SftpSettings, target: &SftpTarget) -> Vec<(String, String)> {
    let output = Command::new(settings.program())
        .args(settings.common_args(target))
        .arg("-G")
        .arg("--")
        .arg(&target.host)
        .stdin(Stdio::null())
        .output()
        .await;
    let Ok(output) = output else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// The server `ssh` reaches for this target, after the config's aliases:
/// `user@hostname:port`.
pub async fn resolved_server(settings: &SftpSettings, target: &SftpTarget) -> String {
    let options = resolved_options(settings, target).await;
    let get = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (get("user"), get("hostname"), get("port")) {
        (Some(user), Some(host), Some(port)) => format!("{user}@{host}:{port}"),
        // ssh could not say: the location's own words.
        _ => target.authority(),
    }
}

/// The fingerprints of the keys the host offers (`ssh-keyscan`, then
/// `ssh-keygen -l`), for the message that refuses it.
async fn host_fingerprints(settings: &SftpSettings, target: &SftpTarget) -> Vec<String> {
    let options = resolved_options(settings, target).await;
    let get = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(host), Some(port)) = (get("hostname"), get("port")) else {
        return Vec::new();
    };
    let scan = Command::new("ssh-keyscan")
        .args(["-T", "5", "-p", &port, "--", &host])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    let Ok(scan) = scan else {
        return Vec::new();
    };
    let mut keygen = match Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => return Vec::new(),
    };
    if let Some(mut stdin) = keygen.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&scan.stdout).await;
    }
    let Ok(listed) = keygen.wait_with_output().await else {
        return Vec::new();
    };
    // "256 SHA256:abc… [host]:port (ED25519)" → "ED25519 SHA256:abc…"
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let _bits = words.next()?;
            let fingerprint = words.next()?;
            let kind = words.last()?.trim_matches(['(', ')']);
            Some(format!("{kind} {fingerprint}"))
        })
        .collect()
}

/// The identity files ssh would offer that exist and need a passphrase.
async fn passphrase_keys(settings: &SftpSettings, target: &SftpTarget) -> Vec<String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    resolved_options(settings, target)
        .await
        .into_iter()
        .filter(|(k, _)| k == "identityfile")
        .map(|(_, v)| match (v.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(v),
        })
        .filter(|path| std::fs::read(path).is_ok_and(|bytes| needs_passphrase(&bytes)))
        .map(|path| path.display().to_string())
        .collect()
}

/// Whether ssh-agent is reachable and holds at least one key.
async fn agent_has_keys() -> bool {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return false;
    }
    Command::new("ssh-add")
        .arg("-l")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Whether a private key file is encrypted: an OpenSSH-format key whose
/// cipher is not `none`, or a PEM key with an encryption header.
pub fn needs_passphrase(file: &[u8]) -> bool {
    use base64::Engine;
    let text = String::from_utf8_lossy(file);
    if text.contains("ENCRYPTED") {
        return true;
    }
    let Some(body) = text
        .split("-----BEGIN OPENSSH PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END").next())
    else {
        return false;
    };
    let joined: String = body.split_whitespace().collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(joined) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as a length-prefixed string.
    let Some(rest) = bytes.strip_prefix(b"openssh-key-v1\0") else {
        return false;
    };
    let Some(len) = rest.get(..4) else {
        return false;
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    rest.get(4..4 + len).is_some_and(|cipher| cipher != b"none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_are_told_from_plain_ones() {
        use base64::Engine;
        let key = |cipher: &[u8]| {
            let mut bytes = b"openssh-key-v1\0".to_vec();
            bytes.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
            bytes.extend_from_slice(cipher);
            bytes.extend_from_slice(&[0; 40]);
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        };
        assert!(!needs_passphrase(key(b"none").as_bytes()));
        assert!(needs_passphrase(key(b"aes256-ctr").as_bytes()));
        assert!(needs_passphrase(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        ));
        assert!(!needs_passphrase(b"not a key"));
    }
}
