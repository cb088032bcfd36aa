//! Lists read from files, as rsync reads them: `--files-from` (paths below the
//! source root: only those take part) and `--exclude-from` / `--include-from`
//! (one filter pattern per line). `-` reads standard input; `--from0` splits on
//! NUL instead of newlines, the way `find -print0` feeds a pipeline.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::types::RelPath;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot read the list {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: entry {line}: `{entry}` {reason}", path.display())]
    BadEntry {
        path: PathBuf,
        line: usize,
        entry: String,
        reason: &'static str,
    },
}

/// The entries of a list file, split on newlines (a trailing `\r` dropped) or
/// on NUL with `from0`; empty entries are skipped.
pub fn read_entries(path: &Path, from0: bool) -> Result<Vec<Vec<u8>>, ListError> {
    let read_error = |source| ListError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
    } else {
        bytes = std::fs::read(path).map_err(read_error)?;
    }
    let separator = if from0 { b'\0' } else { b'\n' };
    Ok(bytes
        .split(|&b| b == separator)
        .map(|entry| {
            if from0 {
                entry
            } else {
                entry.strip_suffix(b"\r").unwrap_or(entry)
            }
        })
        .filter(|entry| !entry.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Filter patterns from a file: blank lines and lines starting with `#` or
/// `;` are comments (as in rsync's rule files, unless NUL-separated).
pub fn read_patterns(path: &Path, from0: bool) -> Result<Vec<String>, ListError> {
    let mut patterns = Vec::new();
    for (i, entry) in read_entries(path, from0)?.into_iter().enumerate() {
        if !from0 && (entry.starts_with(b"#") || entry.starts_with(b";")) {
            continue;
        }
        let text = String::from_utf8(entry).map_err(|e| ListError::BadEntry {
            path: path.to_path_buf(),
            line: i + 1,
            entry: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "is not valid UTF-8 (patterns are text)",
        })?;
        let pattern = if from0 {
            text.as_str()
        } else {
            text.trim_end()
        };
        if !pattern.is_empty() {
            patterns.push(pattern.to_string());
        }
    }
    Ok(patterns)
}

/// `--files-from`: paths relative to the source root (a leading `/` or `./`
/// is dropped), never leaving it.
pub fn read_paths(path: &Path, from0: bool) -> Result<Vec<RelPath>, ListError> {
    read_entries(path, from0)?
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            normalise(&entry).map_err(|reason| ListError::BadEntry {
                path: path.to_path_buf(),
                line: i + 1,
                entry: String::from_utf8_lossy(&entry).into_owned(),
                reason,
            })
        })
        .collect()
}

/// A listed path as a relative path: `.` and empty components dropped, a
/// leading `/` too (rsync reads it as the root); `..` refused.
fn normalise(entry: &[u8]) -> Result<RelPath, &'static str> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in entry.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("leaves the source root (`..`)"),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("names the source root itself, not a path below it");
    }
    Ok(RelPath::from_bytes(&parts.join(&b'/')))
}

/// The paths of a `--files-from` list, for the filter: a listed path takes
/// part with everything below it; the directories above it take part so that
/// the walk reaches it (and nothing else below them does).
#[derive(Debug, Default)]
pub struct PathList {
    listed: HashSet<RelPath>,
    ancestors: HashSet<RelPath>,
}

impl PathList {
    pub fn new(paths: &[RelPath]) -> PathList {
        let mut list = PathList::default();
        for path in paths {
            let mut parent = path.parent();
            while let Some(dir) = parent {
                if !list.ancestors.insert(dir.clone()) {
                    break;
                }
                parent = dir.parent();
            }
            list.listed.insert(path.clone());
        }
        list
    }

    /// Whether `path` takes part: listed, below a listed path, or a directory
    /// on the way to one.
    pub fn includes(&self, path: &RelPath, is_dir: bool) -> bool {
        if self.listed.contains(path) || (is_dir && self.ancestors.contains(path)) {
            return true;
        }
        let mut parent = path.parent();
        while let Some(dir) = parent {
            if self.listed.contains(&dir) {
                return true;
            }
            parent = dir.parent();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(s: &str) -> RelPath {
        RelPath::from_bytes(s.as_bytes())
    }

    #[test]
    fn listed_paths_are_relative_and_stay_below_the_root() {
        assert_eq!(normalise(b"./a//b/").unwrap(), rel("a/b"));
        assert_eq!(normalise(b"/x").unwrap(), rel("x"));
        assert!(normalise(b"a/../../etc").is_err());
        assert!(normalise(b"./").is_err());
        assert_eq!(normalise(b"caf\xe9").unwrap().as_bytes(), b"caf\xe9");
    }

    #[test]
    fn a_list_selects_its_paths_their_subtrees_and_the_way_there() {
        let list = PathList::new(&[rel("data/2024/jan.csv"), rel("models")]);
        assert!(list.includes(&rel("data/2024/jan.csv"), false));
        assert!(list.includes(&rel("data"), true));
        assert!(list.includes(&rel("data/2024"), true));
        assert!(!list.includes(&rel("data/2024/feb.csv"), false));
        assert!(!list.includes(&rel("data/other"), true));
        // A directory on the way is not a file of that name.
        assert!(!list.includes(&rel("data"), false));
        assert!(list.includes(&rel("models/a/b.bin"), false));
        assert!(!list.includes(&rel("modelsx"), true));
    }

    #[test]
    fn entries_split_on_newlines_or_nul_and_patterns_skip_comments() {
        let dir = tempfile::tempdir().unwrap();
        let lines = dir.path().join("lines");
        std::fs::write(&lines, b"a\r\n\n# comment\n; also\nb c \n").unwrap();
        assert_eq!(read_patterns(&lines, false).unwrap(), ["a", "b c"]);
        let nul = dir.path().join("nul");
        std::fs::write(&nul, b"x\ny\0z\0").unwrap();
        assert_eq!(
            read_paths(&nul, true).unwrap(),
            [rel("x\ny"), rel("z")],
            "a newline is part of a name when NUL separates"
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, b"ok\n../up\n").unwrap();
        let error = read_paths(&bad, false).unwrap_err().to_string();
        assert!(
            error.contains("entry 2: `../up` leaves the source root"),
            "{error}"
        );
    }
}
