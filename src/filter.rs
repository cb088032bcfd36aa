//! `--include` / `--exclude` rules with rsync's semantics.
//!
//! - Rules are tried in the order given on the command line; the first rule that
//!   matches decides. A path no rule matches is included.
//! - A pattern without `/` matches the last component at any depth (`*.log`).
//! - A pattern with a leading `/` is anchored at the sync root (`/build`); any other
//!   pattern containing `/` matches the end of the path (`cache/*.bin`).
//! - A trailing `/` makes the rule match directories only (`target/`).
//! - `*` and `?` do not cross `/`; `**` does; `[abc]` classes work as in globs.
//! - An excluded directory is not descended into, so nothing below it is synced or
//!   deleted (as rsync without `--delete-excluded`).

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::types::RelPath;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Include,
    Exclude,
}

/// One rule as the user wrote it; kept in plans so `apply --replan` filters alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    pub kind: RuleKind,
    pub pattern: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid filter pattern `{pattern}`: {reason}")]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

struct CompiledRule {
    kind: RuleKind,
    dir_only: bool,
    matcher: GlobMatcher,
}

/// The compiled rule list, and the `--files-from` list when there is one.
#[derive(Default)]
pub struct Filter {
    rules: Vec<CompiledRule>,
    only: Option<crate::filelist::PathList>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Filter {
    pub fn new(rules: &[FilterRule]) -> Result<Filter, FilterError> {
        Filter::with_list(rules, None)
    }

    /// The rules, within the paths of a `--files-from` list (when given):
    /// an entry takes part only if the list selects it and the rules do.
    pub fn with_list(
        rules: &[FilterRule],
        files_from: Option<&[RelPath]>,
    ) -> Result<Filter, FilterError> {
        let rules = rules.iter().map(compile).collect::<Result<_, _>>()?;
        Ok(Filter {
            rules,
            only: files_from.map(crate::filelist::PathList::new),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.only.is_none()
    }

    /// Whether `path` (relative to the sync root) takes part in the sync.
    pub fn includes(&self, path: &RelPath, is_dir: bool) -> bool {
        use std::os::unix::ffi::OsStrExt;
        if let Some(only) = &self.only
            && !only.includes(path, is_dir)
        {
            return false;
        }
        if self.rules.is_empty() {
            return true;
        }
        let candidate = globset::Candidate::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
        for rule in &self.rules {
            if rule.dir_only && !is_dir {
                continue;
            }
            if rule.matcher.is_match_candidate(&candidate) {
                return rule.kind == RuleKind::Include;
            }
        }
        true
    }
}

fn compile(rule: &FilterRule) -> Result<CompiledRule, FilterError> {
    let error = |reason: String| FilterError {
        pattern: rule.pattern.clone(),
        reason,
    };
    let mut pattern = rule.pattern.as_str();
    if pattern.is_empty() {
        return Err(error("the pattern is empty".into()));
    }
    let dir_only = pattern.len() > 1 && pattern.ends_with('/');
    if dir_only {
        pattern = &pattern[..pattern.len() - 1];
    }
    // rsync's `**` matches across `/` anywhere; globset's only as a whole path
    // component, so `a/**.bin` becomes `a/**/*.bin` (which also matches `a/x.bin`).
    let rewritten = rewrite_double_star(pattern);
    let pattern = rewritten.as_str();
    let glob = if let Some(anchored) = pattern.strip_prefix('/') {
        if anchored.is_empty() {
            return Err(error(
                "`/` alone matches nothing; name a path below the root".into(),
            ));
        }
        anchored.to_string()
    } else {
        // Unanchored: match the last component(s) at any depth. `**/x` also matches
        // `x` at the root.
        format!("**/{pattern}")
    };
    let matcher = GlobBuilder::new(&glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| error(e.kind().to_string()))?
        .compile_matcher();
    Ok(CompiledRule {
        kind: rule.kind,
        dir_only,
        matcher,
    })
}

fn rewrite_double_star(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut rest = pattern;
    while let Some(at) = rest.find("**") {
        out.push_str(&rest[..at]);
        out.push_str("**");
        rest = &rest[at + 2..];
        if !rest.is_empty() && !rest.starts_with('/') && !rest.starts_with('*') {
            out.push_str("/*");
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rules: &[(&str, RuleKind)]) -> Filter {
        Filter::new(
            &rules
                .iter()
                .map(|(p, k)| FilterRule {
                    kind: *k,
                    pattern: p.to_string(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    use RuleKind::{Exclude as X, Include as I};

    #[test]
    fn basename_patterns_match_at_any_depth() {
        let f = filter(&[("*.log", X)]);
        assert!(!f.includes(&"a.log".into(), false));
        assert!(!f.includes(&"deep/er/a.log".into(), false));
        assert!(f.includes(&"a.log.txt".into(), false));
    }

    #[test]
    fn anchored_and_dir_only() {
        let f = filter(&[("/build", X), ("cache/", X)]);
        assert!(!f.includes(&"build".into(), true));
        assert!(f.includes(&"src/build".into(), true));
        assert!(!f.includes(&"x/cache".into(), true));
        assert!(
            f.includes(&"x/cache".into(), false),
            "dir-only rule skips files"
        );
    }

    #[test]
    fn first_match_wins() {
        let f = filter(&[("keep.tmp", I), ("*.tmp", X)]);
        assert!(f.includes(&"a/keep.tmp".into(), false));
        assert!(!f.includes(&"a/other.tmp".into(), false));
        let f = filter(&[("*.rs", I), ("*/", I), ("*", X)]);
        assert!(f.includes(&"src/main.rs".into(), false));
        assert!(f.includes(&"src".into(), true));
        assert!(!f.includes(&"README.md".into(), false));
    }

    #[test]
    fn star_does_not_cross_slash_but_double_star_does() {
        let f = filter(&[("/a/*.bin", X)]);
        assert!(!f.includes(&"a/x.bin".into(), false));
        assert!(f.includes(&"a/b/x.bin".into(), false));
        let f = filter(&[("/a/**.bin", X)]);
        assert!(!f.includes(&"a/b/x.bin".into(), false));
    }

    #[test]
    fn bad_patterns_are_reported() {
        let err = Filter::new(&[FilterRule {
            kind: X,
            pattern: "[unclosed".into(),
        }])
        .unwrap_err();
        assert!(err.to_string().contains("[unclosed"));
    }
}
