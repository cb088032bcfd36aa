//! Core domain types shared by every layer: relative paths, entries, manifests and
//! the actions a plan can hold.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod manifest;
pub use manifest::{
    IntoIter as ManifestIntoIter, Manifest, ManifestBuilder, ManifestEntry, ReadWatch, by_path,
};

/// A path relative to a sync root, with `/` separators.
///
/// Stored as raw bytes so that local file names that are not valid UTF-8 survive a
/// round trip (scan → plan JSON → apply) unchanged. Byte order is the manifest order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Box<[u8]>);

impl RelPath {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    /// The path these bytes spell, without copying them where the vector
    /// holds no spare capacity.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self(bytes.into_boxed_slice())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// A printable form; invalid UTF-8 bytes are shown as `\xNN` escapes so that two
    /// different names never print the same.
    pub fn display(&self) -> String {
        self.0.escape_ascii_non_utf8()
    }

    /// The path on a local filesystem under `root`.
    pub fn to_local(&self, root: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        if self.0.is_empty() {
            return root.to_path_buf();
        }
        root.join(std::ffi::OsStr::from_bytes(&self.0))
    }

    /// The parent path, or `None` for a top-level entry.
    pub fn parent(&self) -> Option<RelPath> {
        self.0
            .iter()
            .rposition(|&b| b == b'/')
            .map(|i| RelPath::from_bytes(&self.0[..i]))
    }

    /// The last component.
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// Number of components (`a` is 1, `a/b` is 2).
    pub fn depth(&self) -> usize {
        self.0.iter().filter(|&&b| b == b'/').count() + 1
    }

    /// Whether the path stays below the root it is joined to: not empty, not
    /// absolute, no empty, `.` or `..` components, no NUL bytes. Paths from a
    /// scan always are; paths read from a file must be checked.
    pub fn is_contained(&self) -> bool {
        !self.0.is_empty()
            && !self.0.contains(&0)
            && self
                .0
                .split(|&b| b == b'/')
                .all(|part| !part.is_empty() && part != b"." && part != b"..")
    }

    /// True when `self` equals or lies below one of `ancestors`.
    pub fn is_within_any(&self, ancestors: &[RelPath]) -> bool {
        ancestors.iter().any(|dir| self.is_within(dir))
    }

    /// True when `self` equals `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &RelPath) -> bool {
        if ancestor.0.is_empty() {
            return true; // the root contains everything
        }
        self.0.starts_with(&ancestor.0)
            && (self.0.len() == ancestor.0.len() || self.0[ancestor.0.len()] == b'/')
    }
}

pub(crate) trait EscapeNonUtf8 {
    fn escape_ascii_non_utf8(&self) -> String;
}

impl EscapeNonUtf8 for [u8] {
    fn escape_ascii_non_utf8(&self) -> String {
        let mut out = String::with_capacity(self.len());
        for chunk in self.utf8_chunks() {
            // Control characters are shown escaped too: a name holding a line
            // break or an escape sequence must not break a line of output or
            // drive the terminal.
            for c in chunk.valid().chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
                    c => out.push(c),
                }
            }
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl From<&str> for RelPath {
    fn from(s: &str) -> Self {
        Self::from_bytes(s.as_bytes())
    }
}

/// UTF-8 paths serialize as strings; others as an array of byte values, so that a
/// saved plan names exactly the file it was made for.
impl Serialize for RelPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            Some(text) => s.serialize_str(text),
            None => s.collect_seq(self.0.iter()),
        }
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Bytes(Vec<u8>),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Text(t) => RelPath::from_bytes(t.as_bytes()),
            Repr::Bytes(b) => RelPath::from_bytes(&b),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// What a scan knows about one entry on one side.
///
/// Kept small (a plan holds two of these per item, and plans may hold millions of
/// items); rarely present fields live behind one box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Unix permission bits (`st_mode & 0o7777`), 0 when the side has none.
    #[serde(default)]
    pub mode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<EntryExtra>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryExtra {
    /// Target of a symbolic link, as raw bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<RelPath>,
    /// The object's ETag, for entries listed from an object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Checksums of the whole content that the listing carried (`check` reads
    /// them; a saved plan has no use for them).
    #[serde(skip)]
    pub sums: ContentSums,
    /// The layout its sidecar was listed in, when that is not the one its
    /// store keeps sidecars in now: read from there, and moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_in: Option<crate::storage::sidecars::SidecarLayout>,
}

/// Checksums of an object's whole content as its store holds them: those the
/// store computed itself (MD5, CRC32C, CRC64NVME; on an SSH server, blake3 or
/// SHA-256 computed there) and the blake3 HugeSync recorded in its metadata.
/// Each is `None` where the store has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContentSums {
    pub blake3: Option<[u8; 32]>,
    pub md5: Option<[u8; 16]>,
    pub crc32c: Option<u32>,
    pub crc64nvme: Option<u64>,
    /// SHA-256, as an SSH server's `sha256sum` computes it.
    pub sha256: Option<[u8; 32]>,
    /// An S3 multipart object's ETag, with what it takes to compute it.
    pub multipart: Option<MultipartEtag>,
}

/// A multipart object's ETag as S3 computes it: the MD5 of its parts' MD5s.
/// With the size of its first part, bytes can be checked against it where
/// every part but the last has that size, as whole uploads make them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultipartEtag {
    pub md5_of_parts: [u8; 16],
    pub parts: u32,
    pub first_part: u64,
}

impl MultipartEtag {
    /// The ETag `bytes` would have uploaded in parts of `first_part` bytes,
    /// or `None` when `bytes` cannot be cut into that many such parts.
    pub fn of_bytes(&self, bytes: &[u8]) -> Option<[u8; 16]> {
        use md5::Digest;
        let (len, part) = (bytes.len() as u64, self.first_part);
        let parts = u64::from(self.parts);
        if part == 0 || parts == 0 || len > parts * part || len <= (parts - 1) * part {
            return None;
        }
        let mut outer = md5::Md5::new();
        for chunk in bytes.chunks(part as usize) {
            outer.update(md5::Md5::digest(chunk));
        }
        Some(outer.finalize().into())
    }
}

impl ContentSums {
    pub fn is_empty(&self) -> bool {
        *self == ContentSums::default()
    }

    /// Whether two contents are the same, by the strongest checksum both
    /// hold — the store's own before the blake3 HugeSync records (a rewrite
    /// that copied the metadata carries that over unchanged), as `check`
    /// ranks them: `None` where they hold none in common.
    pub fn same_content(&self, other: &ContentSums) -> Option<bool> {
        fn same<T: PartialEq>(a: Option<T>, b: Option<T>) -> Option<bool> {
            Some(a? == b?)
        }
        same(self.crc64nvme, other.crc64nvme)
            .or_else(|| same(self.md5, other.md5))
            .or_else(|| same(self.crc32c, other.crc32c))
            .or_else(|| same(self.blake3, other.blake3))
    }

    /// The blake3 of a hex text (as metadata carries it).
    pub fn blake3_of_hex(hex_text: &str) -> Option<[u8; 32]> {
        let mut out = [0; 32];
        hex::decode_to_slice(hex_text, &mut out).ok()?;
        Some(out)
    }
}

impl Entry {
    pub fn file(size: u64, mtime_ns: i64, mode: u32) -> Self {
        Self {
            kind: EntryKind::File,
            size,
            mtime_ns,
            mode,
            extra: None,
        }
    }

    pub fn link_target(&self) -> Option<&RelPath> {
        self.extra.as_ref()?.link_target.as_ref()
    }

    pub fn etag(&self) -> Option<&str> {
        self.extra.as_ref()?.etag.as_deref()
    }

    pub fn set_etag(&mut self, etag: String) {
        self.extra.get_or_insert_with(Default::default).etag = Some(etag);
    }

    /// The layout its sidecar was listed in, when not its store's own.
    pub fn sidecar_in(&self) -> Option<crate::storage::sidecars::SidecarLayout> {
        self.extra.as_ref()?.sidecar_in
    }

    pub fn set_sidecar_in(&mut self, layout: crate::storage::sidecars::SidecarLayout) {
        self.extra.get_or_insert_with(Default::default).sidecar_in = Some(layout);
    }

    /// The store's checksums of an object's content, from its listing.
    pub fn sums(&self) -> ContentSums {
        self.extra.as_ref().map(|e| e.sums).unwrap_or_default()
    }

    pub fn set_sums(&mut self, sums: ContentSums) {
        if !sums.is_empty() {
            self.extra.get_or_insert_with(Default::default).sums = sums;
        }
    }

    /// The quick-check identity: two files with the same size and mtime are taken to
    /// be the same (rsync's and rclone's default rule).
    pub fn same_size_and_mtime(&self, other: &Entry) -> bool {
        self.size == other.size && self.mtime_ns == other.mtime_ns
    }
}

/// What a plan does with one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncAction {
    /// Send the whole entry from a local source to a remote destination.
    Upload,
    /// Fetch the whole entry from a remote source to a local destination.
    Download,
    /// Copy the whole entry between two sides of the same kind (local → local).
    Copy,
    /// Send only the changed parts of a file.
    Delta,
    /// Update metadata (mtime, mode) of an entry whose content is unchanged.
    Metadata,
    /// Remove an entry that no longer exists at the source (`--delete`).
    Delete,
    /// Leave the entry alone.
    Skip,
}

impl SyncAction {
    pub const ALL: [SyncAction; 7] = [
        SyncAction::Upload,
        SyncAction::Download,
        SyncAction::Copy,
        SyncAction::Delta,
        SyncAction::Metadata,
        SyncAction::Delete,
        SyncAction::Skip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncAction::Upload => "upload",
            SyncAction::Download => "download",
            SyncAction::Copy => "copy",
            SyncAction::Delta => "delta",
            SyncAction::Metadata => "metadata",
            SyncAction::Delete => "delete",
            SyncAction::Skip => "skip",
        }
    }

    /// Whether this action writes entry content to the destination.
    pub fn transfers(self) -> bool {
        matches!(
            self,
            SyncAction::Upload | SyncAction::Download | SyncAction::Copy | SyncAction::Delta
        )
    }
}

impl fmt::Display for SyncAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_parts() {
        let p = RelPath::from("a/b/c.txt");
        assert_eq!(p.parent(), Some(RelPath::from("a/b")));
        assert_eq!(p.file_name(), b"c.txt");
        assert_eq!(p.depth(), 3);
        assert!(p.is_within(&RelPath::from("a/b")));
        assert!(!p.is_within(&RelPath::from("a/b/c")));
        assert!(!RelPath::from("a/bc").is_within(&RelPath::from("a/b")));
        assert_eq!(RelPath::from("top").parent(), None);
    }

    #[test]
    fn containment() {
        for ok in ["a", "a/b.txt", "..a", "a/.hidden"] {
            assert!(RelPath::from(ok).is_contained(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "a/../../x", "..", "a//b", "./a", "a/"] {
            assert!(!RelPath::from(bad).is_contained(), "{bad}");
        }
        assert!(!RelPath::from_bytes(b"a\0b").is_contained());
    }

    #[test]
    fn non_utf8_path_round_trips_through_json() {
        let p = RelPath::from_bytes(b"dir/caf\xe9.txt");
        assert_eq!(p.display(), "dir/caf\\xE9.txt");
        let odd = RelPath::from("line\nbreak\x1b[31m");
        assert_eq!(odd.display(), "line\\nbreak\\u{1b}[31m");
        let json = serde_json::to_string(&p).unwrap();
        let back: RelPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let utf8 = RelPath::from("dir/café.txt");
        assert_eq!(serde_json::to_string(&utf8).unwrap(), "\"dir/café.txt\"");
    }

    #[test]
    fn manifest_lookup_and_incomplete() {
        let m = Manifest::new(
            vec![
                ManifestEntry {
                    path: "b".into(),
                    entry: Entry::file(1, 0, 0o644),
                },
                ManifestEntry {
                    path: "a".into(),
                    entry: Entry::file(2, 0, 0o644),
                },
            ],
            vec!["locked".into()],
            true,
        );
        assert_eq!(m.iter().next().map(|e| e.path), Some(RelPath::from("a")));
        assert_eq!(m.get(&"b".into()).map(|e| e.size), Some(1));
        assert!(m.is_incomplete_at(&"locked/x".into()));
        assert!(!m.is_incomplete_at(&"lockedx".into()));
        assert_eq!(m.total_bytes(), 3);
    }
}
