//! The compact form of manifest entries: paths front-coded against the
//! previous entry of their block, numbers as LEB128 varints, times as the
//! difference from the previous entry's, digests as bytes rather than hex
//! text, and nothing at all for a field an entry does not have.
//!
//! A listed object costs ~40–60 bytes here against ~400 as a `ManifestEntry`
//! with its boxed extras; at 10⁸ objects that is the difference between a
//! plan that fits and one that does not.

use super::ManifestEntry;
use crate::types::{ContentSums, Entry, EntryExtra, EntryKind, MultipartEtag, RelPath};

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A reader over one block's bytes. The bytes were written by this module in
/// this process, so they never run out mid-entry; were they to, the reader
/// gives zeros rather than panicking (and debug builds assert).
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn take(&mut self, len: usize) -> &'a [u8] {
        debug_assert!(len <= self.bytes.len(), "manifest block ends early");
        let (head, rest) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let bytes = self.take(N);
        out[..bytes.len()].copy_from_slice(bytes);
        out
    }

    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte();
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

// The entry's tag byte.
const KIND_MASK: u8 = 0b11;
const HAS_MODE: u8 = 1 << 2;
const HAS_EXTRA: u8 = 1 << 3;

// The extra's flags.
const LINK: u16 = 1 << 0;
const ETAG: u16 = 1 << 1;
const SUM_BLAKE3: u16 = 1 << 2;
const SUM_MD5: u16 = 1 << 3;
/// The MD5 is the one the ETag spells (an S3 object uploaded whole): it is
/// not stored twice.
const SUM_MD5_IS_ETAG: u16 = 1 << 4;
const SUM_CRC32C: u16 = 1 << 5;
const SUM_CRC64NVME: u16 = 1 << 6;
const SUM_SHA256: u16 = 1 << 7;
const SUM_MULTIPART: u16 = 1 << 8;

// How an ETag is held.
const TEXT_RAW: u8 = 0;
/// `"` + 32 lowercase hex digits + `"`: an S3 or GCS-style MD5 ETag.
const TEXT_QUOTED_MD5: u8 = 1;
/// 64 lowercase hex digits, held as the 32 bytes they spell.
const TEXT_HEX32: u8 = 2;

fn kind_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => 0,
        EntryKind::Dir => 1,
        EntryKind::Symlink => 2,
    }
}

fn kind_of(code: u8) -> EntryKind {
    match code & KIND_MASK {
        0 => EntryKind::File,
        1 => EntryKind::Dir,
        _ => EntryKind::Symlink,
    }
}

/// The bytes `text` spells in lowercase hex, exactly `N` of them (an ETag
/// in any other form is kept as text, so that it reads back as it was).
fn lower_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// The MD5 a text spells as a quoted ETag, if it is one.
fn quoted_md5(text: &str) -> Option<[u8; 16]> {
    lower_hex(text.strip_prefix('"')?.strip_suffix('"')?.as_bytes())
}

fn put_text(out: &mut Vec<u8>, text: &str, as_md5: Option<[u8; 16]>) {
    if let Some(md5) = as_md5 {
        out.push(TEXT_QUOTED_MD5);
        out.extend_from_slice(&md5);
    } else if let Some(digest) = lower_hex::<32>(text.as_bytes()) {
        out.push(TEXT_HEX32);
        out.extend_from_slice(&digest);
    } else {
        out.push(TEXT_RAW);
        put_varint(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
}

fn read_text(reader: &mut Reader<'_>) -> String {
    match reader.byte() {
        TEXT_QUOTED_MD5 => {
            // One allocation: ETags are decoded once per listed object.
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut text = Vec::with_capacity(34);
            text.push(b'"');
            for byte in reader.array::<16>() {
                text.push(DIGITS[usize::from(byte >> 4)]);
                text.push(DIGITS[usize::from(byte & 15)]);
            }
            text.push(b'"');
            String::from_utf8(text).unwrap_or_default()
        }
        TEXT_HEX32 => hex::encode(reader.array::<32>()),
        _ => {
            let len = reader.varint() as usize;
            String::from_utf8_lossy(reader.take(len)).into_owned()
        }
    }
}

/// What an entry is written against: the previous entry's path and time in
/// its block (empty and zero at a block's start, whose first entry is
/// written whole).
#[derive(Default)]
pub(super) struct Previous {
    path: Vec<u8>,
    mtime_ns: i64,
}

impl Previous {
    fn follow(&mut self, path: &[u8], mtime_ns: i64) {
        self.path.clear();
        self.path.extend_from_slice(path);
        self.mtime_ns = mtime_ns;
    }
}

/// Appends `item` to a block after `previous`, which it then becomes.
pub(super) fn put_entry(out: &mut Vec<u8>, previous: &mut Previous, item: &ManifestEntry) {
    let path = item.path.as_bytes();
    let shared = previous
        .path
        .iter()
        .zip(path)
        .take_while(|(a, b)| a == b)
        .count();
    put_varint(out, shared as u64);
    put_varint(out, (path.len() - shared) as u64);
    out.extend_from_slice(&path[shared..]);

    let entry = &item.entry;
    let mut tag = kind_code(entry.kind);
    if entry.mode != 0 {
        tag |= HAS_MODE;
    }
    if entry.extra.is_some() {
        tag |= HAS_EXTRA;
    }
    out.push(tag);
    put_varint(out, entry.size);
    put_varint(out, zigzag(entry.mtime_ns.wrapping_sub(previous.mtime_ns)));
    previous.follow(path, entry.mtime_ns);
    if entry.mode != 0 {
        put_varint(out, u64::from(entry.mode));
    }
    if let Some(extra) = &entry.extra {
        put_extra(out, extra);
    }
}

fn put_extra(out: &mut Vec<u8>, extra: &EntryExtra) {
    let sums = &extra.sums;
    let etag_md5 = extra.etag.as_deref().and_then(quoted_md5);
    let md5_is_etag = sums.md5.is_some() && sums.md5 == etag_md5;
    let mut flags = 0u16;
    for (present, flag) in [
        (extra.link_target.is_some(), LINK),
        (extra.etag.is_some(), ETAG),
        (sums.blake3.is_some(), SUM_BLAKE3),
        (sums.md5.is_some() && !md5_is_etag, SUM_MD5),
        (md5_is_etag, SUM_MD5_IS_ETAG),
        (sums.crc32c.is_some(), SUM_CRC32C),
        (sums.crc64nvme.is_some(), SUM_CRC64NVME),
        (sums.sha256.is_some(), SUM_SHA256),
        (sums.multipart.is_some(), SUM_MULTIPART),
    ] {
        if present {
            flags |= flag;
        }
    }
    out.extend_from_slice(&flags.to_le_bytes());
    if let Some(target) = &extra.link_target {
        put_varint(out, target.as_bytes().len() as u64);
        out.extend_from_slice(target.as_bytes());
    }
    if let Some(etag) = &extra.etag {
        put_text(out, etag, etag_md5);
    }
    if let Some(digest) = sums.blake3 {
        out.extend_from_slice(&digest);
    }
    if let Some(md5) = sums.md5.filter(|_| !md5_is_etag) {
        out.extend_from_slice(&md5);
    }
    if let Some(crc) = sums.crc32c {
        out.extend_from_slice(&crc.to_le_bytes());
    }
    if let Some(crc) = sums.crc64nvme {
        out.extend_from_slice(&crc.to_le_bytes());
    }
    if let Some(digest) = sums.sha256 {
        out.extend_from_slice(&digest);
    }
    if let Some(multipart) = sums.multipart {
        out.extend_from_slice(&multipart.md5_of_parts);
        put_varint(out, u64::from(multipart.parts));
        put_varint(out, multipart.first_part);
    }
}

/// Reads the entry after `previous`, which it then becomes.
pub(super) fn read_entry(reader: &mut Reader<'_>, previous: &mut Previous) -> ManifestEntry {
    let shared = reader.varint() as usize;
    let suffix_len = reader.varint() as usize;
    previous.path.truncate(shared);
    previous.path.extend_from_slice(reader.take(suffix_len));

    let tag = reader.byte();
    let size = reader.varint();
    let mtime_ns = previous.mtime_ns.wrapping_add(unzigzag(reader.varint()));
    previous.mtime_ns = mtime_ns;
    let mode = if tag & HAS_MODE != 0 {
        reader.varint() as u32
    } else {
        0
    };
    let extra = (tag & HAS_EXTRA != 0).then(|| Box::new(read_extra(reader)));
    ManifestEntry {
        path: RelPath::from_bytes(&previous.path),
        entry: Entry {
            kind: kind_of(tag),
            size,
            mtime_ns,
            mode,
            extra,
        },
    }
}

fn read_extra(reader: &mut Reader<'_>) -> EntryExtra {
    let flags = u16::from_le_bytes(reader.array());
    let has = |flag: u16| flags & flag != 0;
    let link_target = has(LINK).then(|| {
        let len = reader.varint() as usize;
        RelPath::from_bytes(reader.take(len))
    });
    let etag = has(ETAG).then(|| read_text(reader));
    let mut sums = ContentSums {
        blake3: has(SUM_BLAKE3).then(|| reader.array()),
        md5: has(SUM_MD5).then(|| reader.array()),
        crc32c: has(SUM_CRC32C).then(|| u32::from_le_bytes(reader.array())),
        crc64nvme: has(SUM_CRC64NVME).then(|| u64::from_le_bytes(reader.array())),
        sha256: has(SUM_SHA256).then(|| reader.array()),
        multipart: None,
    };
    if has(SUM_MULTIPART) {
        let md5_of_parts = reader.array();
        let parts = reader.varint() as u32;
        let first_part = reader.varint();
        sums.multipart = Some(MultipartEtag {
            md5_of_parts,
            parts,
            first_part,
        });
    }
    if has(SUM_MD5_IS_ETAG) {
        sums.md5 = etag.as_deref().and_then(quoted_md5);
    }
    EntryExtra {
        link_target,
        etag,
        sums,
        // Not kept in manifests: the diff marks it on plan items.
        sidecar_in: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(items: &[ManifestEntry]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut previous = Previous::default();
        for item in items {
            put_entry(&mut bytes, &mut previous, item);
        }
        bytes
    }

    fn round_trip(items: &[ManifestEntry]) -> Vec<ManifestEntry> {
        let bytes = encode(items);
        let mut reader = Reader::new(&bytes);
        let mut previous = Previous::default();
        let mut back = Vec::new();
        while !reader.is_empty() {
            back.push(read_entry(&mut reader, &mut previous));
        }
        back
    }

    #[test]
    fn every_field_round_trips() {
        let mut linked = Entry::file(0, -5, 0o777);
        linked.kind = EntryKind::Symlink;
        linked.extra = Some(Box::new(EntryExtra {
            link_target: Some(RelPath::from_bytes(b"../t\xff")),
            ..Default::default()
        }));
        let mut object = Entry::file(u64::MAX, i64::MAX, 0);
        object.set_etag("\"0123456789abcdef0123456789abcdef\"".into());
        object.set_sums(ContentSums {
            blake3: Some([7; 32]),
            md5: Some(
                hex::decode("0123456789abcdef0123456789abcdef")
                    .unwrap()
                    .try_into()
                    .unwrap(),
            ),
            crc32c: Some(0xdead_beef),
            crc64nvme: Some(u64::MAX - 1),
            sha256: Some([9; 32]),
            multipart: Some(MultipartEtag {
                md5_of_parts: [3; 16],
                parts: 12,
                first_part: 8 << 20,
            }),
        });
        let mut foreign = Entry::file(3, i64::MIN, 0);
        foreign.set_etag("\"0x8DB5A1F2C3D4E5F\"".into());
        foreign.set_sums(ContentSums {
            md5: Some([1; 16]),
            ..Default::default()
        });
        let items = vec![
            ManifestEntry {
                path: "a".into(),
                entry: Entry {
                    kind: EntryKind::Dir,
                    ..Entry::file(0, 0, 0o755)
                },
            },
            ManifestEntry {
                path: "a/caf\u{e9}".into(),
                entry: linked,
            },
            ManifestEntry {
                path: "a/café/x".into(),
                entry: object,
            },
            ManifestEntry {
                path: RelPath::from_bytes(b"b\xfe"),
                entry: foreign,
            },
        ];
        assert_eq!(round_trip(&items), items);
    }

    #[test]
    fn a_listed_object_costs_tens_of_bytes() {
        let items: Vec<ManifestEntry> = (0..64)
            .map(|i| {
                let mut entry = Entry::file(1_000_000 + i, 1_700_000_000_000_000_000 + i as i64, 0);
                let etag = format!("\"{:032x}\"", i * 7919);
                entry.set_sums(ContentSums {
                    md5: quoted_md5(&etag),
                    ..Default::default()
                });
                entry.set_etag(etag);
                ManifestEntry {
                    path: format!("table/day=0001/hour=02/part-{i:05}.parquet")
                        .as_str()
                        .into(),
                    entry,
                }
            })
            .collect();
        let bytes = encode(&items);
        // Path suffix ~11, size 3, time 1, flags 2, ETag (and MD5) 17.
        assert!(
            bytes.len() / items.len() <= 40,
            "{} B each",
            bytes.len() / 64
        );
        assert_eq!(round_trip(&items), items);
    }
}
