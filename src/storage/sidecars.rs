//! Where an object store keeps the signature sidecars of its objects. Two
//! layouts, one name for each sidecar in each:
//!
//! - `beside`: `KEY.hssig` next to the object — the format's documented
//!   place, and the default;
//! - `hidden`: `ROOT/.hugesync/sig/REL.hssig`, all of them under one
//!   dot-folder at the sync root, where the readers of a data lake (Spark,
//!   Hive, Trino, pyarrow's datasets) never look: they skip names that start
//!   with `.` or `_`, not ones that end in `.hssig`.
//!
//! Listings know both layouts whatever the store writes, so that neither is
//! ever taken for user files, and a sidecar found in the layout not in use
//! is moved by the next run rather than its file sent again.

use serde::{Deserialize, Serialize};

use super::object::SIDECAR_SUFFIX;

/// The folder below the sync root that holds HugeSync's bookkeeping on a
/// store (`hidden` sidecars). Nothing below it is ever a user file.
pub const BOOKKEEPING_DIR: &str = ".hugesync/";

/// Where `hidden` sidecars are, below the sync root.
pub const HIDDEN_SIDECARS: &str = ".hugesync/sig/";

/// Where a store keeps the sidecars of its objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarLayout {
    /// `KEY.hssig`, next to the object.
    #[default]
    Beside,
    /// `ROOT/.hugesync/sig/REL.hssig`, out of readers' sight.
    Hidden,
}

impl SidecarLayout {
    pub const NAMES: &'static str = "beside, hidden";

    pub fn name(self) -> &'static str {
        match self {
            SidecarLayout::Beside => "beside",
            SidecarLayout::Hidden => "hidden",
        }
    }

    pub fn parse(text: &str) -> Option<SidecarLayout> {
        match text.trim().to_ascii_lowercase().as_str() {
            "beside" => Some(SidecarLayout::Beside),
            "hidden" => Some(SidecarLayout::Hidden),
            _ => None,
        }
    }

    /// The layout a store does not keep sidecars in, when it keeps them in
    /// this one.
    pub fn other(self) -> SidecarLayout {
        match self {
            SidecarLayout::Beside => SidecarLayout::Hidden,
            SidecarLayout::Hidden => SidecarLayout::Beside,
        }
    }

    /// Where this layout puts a sidecar, for messages.
    pub fn place(self) -> &'static str {
        match self {
            SidecarLayout::Beside => "beside its file",
            SidecarLayout::Hidden => "in .hugesync/sig/",
        }
    }

    /// The sidecar key, below the sync root, of the object whose key below
    /// the root is `rel_key`.
    pub fn sidecar_of(self, rel_key: &str) -> String {
        match self {
            SidecarLayout::Beside => format!("{rel_key}{SIDECAR_SUFFIX}"),
            SidecarLayout::Hidden => format!("{HIDDEN_SIDECARS}{rel_key}{SIDECAR_SUFFIX}"),
        }
    }
}

/// The objects of a listing whose sidecars are in `layout`, the one their
/// store does not keep sidecars in (it was switched since they were
/// written): their paths, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MisplacedSidecars {
    pub layout: SidecarLayout,
    pub paths: Vec<crate::types::RelPath>,
}

impl MisplacedSidecars {
    /// Marks `entry`, at `path` in the listing these were found in, with the
    /// layout its sidecar is in when it is a file among them. Returns
    /// whether it was.
    pub fn mark(&self, path: &crate::types::RelPath, entry: &mut crate::types::Entry) -> bool {
        let marked =
            entry.kind == crate::types::EntryKind::File && self.paths.binary_search(path).is_ok();
        if marked {
            entry.set_sidecar_in(self.layout);
        }
        marked
    }
}

/// What a key listed below the sync root is to HugeSync, beyond a user's
/// object.
#[derive(Debug, PartialEq, Eq)]
pub enum Bookkeeping<'k> {
    /// The sidecar, in `layout`, of the object whose key below the root is
    /// `signs`.
    Sidecar {
        layout: SidecarLayout,
        signs: &'k str,
    },
    /// Something else below [`BOOKKEEPING_DIR`].
    Other,
}

/// Reads a key below the sync root as bookkeeping, or `None` for a user's
/// object.
pub fn bookkeeping(rel_key: &str) -> Option<Bookkeeping<'_>> {
    if let Some(below) = rel_key.strip_prefix(BOOKKEEPING_DIR) {
        let signs = below
            .strip_prefix(&HIDDEN_SIDECARS[BOOKKEEPING_DIR.len()..])
            .and_then(|rest| rest.strip_suffix(SIDECAR_SUFFIX))
            .filter(|signs| !signs.is_empty());
        return Some(match signs {
            Some(signs) => Bookkeeping::Sidecar {
                layout: SidecarLayout::Hidden,
                signs,
            },
            None => Bookkeeping::Other,
        });
    }
    rel_key
        .strip_suffix(SIDECAR_SUFFIX)
        .map(|signs| Bookkeeping::Sidecar {
            layout: SidecarLayout::Beside,
            signs,
        })
}

/// Whether a path below the sync root is reserved for HugeSync on an object
/// store: a sidecar's name, or anything in the bookkeeping folder.
pub fn is_reserved(path: &[u8]) -> bool {
    path.ends_with(SIDECAR_SUFFIX.as_bytes())
        || path.starts_with(BOOKKEEPING_DIR.as_bytes())
        || path == &BOOKKEEPING_DIR.as_bytes()[..BOOKKEEPING_DIR.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layout_names_the_sidecar_and_reads_it_back() {
        for layout in [SidecarLayout::Beside, SidecarLayout::Hidden] {
            let key = layout.sidecar_of("t/part-0.parquet");
            assert_eq!(
                bookkeeping(&key),
                Some(Bookkeeping::Sidecar {
                    layout,
                    signs: "t/part-0.parquet"
                }),
                "{key}"
            );
        }
        assert_eq!(
            SidecarLayout::Hidden.sidecar_of("a b/c"),
            ".hugesync/sig/a b/c.hssig"
        );
        assert_eq!(SidecarLayout::Beside.sidecar_of("a b/c"), "a b/c.hssig");
    }

    #[test]
    fn user_objects_and_other_bookkeeping_are_told_apart() {
        assert_eq!(bookkeeping("t/part-0.parquet"), None);
        assert_eq!(bookkeeping(".hugesyncx/a"), None);
        assert_eq!(bookkeeping(".hugesync-split/a"), None);
        assert_eq!(bookkeeping(".hugesync/"), Some(Bookkeeping::Other));
        assert_eq!(bookkeeping(".hugesync/sig/"), Some(Bookkeeping::Other));
        assert_eq!(
            bookkeeping(".hugesync/sig/.hssig"),
            Some(Bookkeeping::Other)
        );
        assert_eq!(bookkeeping(".hugesync/notes"), Some(Bookkeeping::Other));
        assert!(is_reserved(b".hugesync"));
        assert!(is_reserved(b".hugesync/sig/x.hssig"));
        assert!(is_reserved(b"a/b.hssig"));
        assert!(!is_reserved(b"a/.hugesync/x"));
        assert!(!is_reserved(b".hugesyncx"));
    }

    #[test]
    fn layouts_parse_by_name() {
        assert_eq!(SidecarLayout::parse("Hidden"), Some(SidecarLayout::Hidden));
        assert_eq!(SidecarLayout::parse("beside"), Some(SidecarLayout::Beside));
        assert_eq!(SidecarLayout::parse("nearby"), None);
    }
}
