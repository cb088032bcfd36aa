//! Hashes computed on the server, over SSH: the check a file rebuilt by
//! delta gets on an SSH server, where SFTP itself carries no checksum.
//! `b3sum` is preferred (its blake3 is what HugeSync computes anyway), then
//! `sha256sum` (coreutils: on nearly every server). An SFTP-only account
//! runs neither; the caller then falls back (read-back, whole transfers).

use std::path::Path;

use super::SftpTarget;
use super::connect::{self, SftpSettings};
use crate::storage::RebuildCheck;
use crate::types::ContentSums;

/// A hash command the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashCommand {
    B3sum,
    Sha256sum,
}

impl HashCommand {
    fn program(self) -> &'static str {
        match self {
            HashCommand::B3sum => "b3sum",
            HashCommand::Sha256sum => "sha256sum",
        }
    }

    pub fn rebuild_check(self) -> RebuildCheck {
        match self {
            HashCommand::B3sum => RebuildCheck::ServerB3sum,
            HashCommand::Sha256sum => RebuildCheck::ServerSha256sum,
        }
    }
}

/// Which hash command the server runs, asked once per run: `None` when it
/// runs neither, or no commands at all.
pub async fn probe(
    settings: &SftpSettings,
    target: &SftpTarget,
    control: Option<&Path>,
) -> Option<HashCommand> {
    // POSIX sh and fish both read this; a login that runs no commands
    // answers with an error or nothing.
    let output = connect::run_command(
        settings,
        target,
        control,
        "command -v b3sum >/dev/null 2>&1 && echo hugesync-has-b3sum; \
         command -v sha256sum >/dev/null 2>&1 && echo hugesync-has-sha256sum; true",
    )
    .await?;
    let said = String::from_utf8_lossy(&output.stdout);
    let found = if said.contains("hugesync-has-b3sum") {
        Some(HashCommand::B3sum)
    } else if said.contains("hugesync-has-sha256sum") {
        Some(HashCommand::Sha256sum)
    } else {
        None
    };
    match found {
        Some(command) => tracing::info!(
            "{}: rebuilt files are checked with `{}` on the server",
            target.host,
            command.program()
        ),
        None => tracing::info!(
            "{}: the server runs neither b3sum nor sha256sum for this login",
            target.host
        ),
    }
    found
}

/// The hash of the file at `path` (relative to the login directory, as SFTP
/// paths are), computed on the server.
pub async fn hash_file(
    settings: &SftpSettings,
    target: &SftpTarget,
    control: Option<&Path>,
    command: HashCommand,
    path: &str,
) -> Result<ContentSums, String> {
    let line = format!("{} -- {}", command.program(), shell_quote(path));
    let output = connect::run_command(settings, target, control, &line)
        .await
        .ok_or_else(|| format!("cannot run `{}` on the server", command.program()))?;
    if !output.status.success() {
        return Err(format!(
            "`{}` failed on the server: {}",
            command.program(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let digest = parse_digest(&output.stdout).ok_or_else(|| {
        format!(
            "`{}` on the server printed no hash: {}",
            command.program(),
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })?;
    Ok(match command {
        HashCommand::B3sum => ContentSums {
            blake3: Some(digest),
            ..ContentSums::default()
        },
        HashCommand::Sha256sum => ContentSums {
            sha256: Some(digest),
            ..ContentSums::default()
        },
    })
}

/// The blake3 of each range (offset, length) of the file at `path`, hashed
/// on the server (`dd` with GNU's byte offsets into `b3sum`): one command for
/// them all. `None` where the server cannot (no `b3sum`, another `dd`).
pub async fn blake3_of_ranges(
    settings: &SftpSettings,
    target: &SftpTarget,
    control: Option<&Path>,
    path: &str,
    ranges: &[(u64, u64)],
) -> Option<Vec<[u8; 32]>> {
    if ranges.is_empty() {
        return Some(Vec::new());
    }
    let file = shell_quote(path);
    let script = ranges
        .iter()
        .map(|(offset, len)| {
            format!(
                "dd if={file} iflag=skip_bytes,count_bytes skip={offset} count={len} bs=1048576 status=none | b3sum --no-names"
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    let output = connect::run_command(settings, target, control, &script).await?;
    if !output.status.success() {
        return None;
    }
    let digests: Option<Vec<[u8; 32]>> = output
        .stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(parse_digest)
        .collect();
    digests.filter(|d| d.len() == ranges.len())
}

/// The 32-byte hash at the start of a `b3sum`/`sha256sum` line (a name with
/// a newline or backslash makes the line start with `\`).
fn parse_digest(stdout: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(stdout).ok()?;
    let word = text.split_whitespace().next()?;
    let hex_text = word.strip_prefix('\\').unwrap_or(word);
    let mut digest = [0; 32];
    hex::decode_to_slice(hex_text, &mut digest).ok()?;
    Some(digest)
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_read_from_either_tool() {
        let hex_text = "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225";
        let mut want = [0; 32];
        hex::decode_to_slice(hex_text, &mut want).unwrap();
        assert_eq!(
            parse_digest(format!("{hex_text}  a b\n").as_bytes()),
            Some(want)
        );
        assert_eq!(
            parse_digest(format!("\\{hex_text}  a\\nb\n").as_bytes()),
            Some(want)
        );
        assert_eq!(parse_digest(b"b3sum: nope: No such file\n"), None);
        assert_eq!(parse_digest(b""), None);
    }

    #[test]
    fn quoting_keeps_every_name_one_word() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }
}
