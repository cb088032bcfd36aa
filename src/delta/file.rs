//! The delta file format (`hugesync delta` / `hugesync patch`), documented byte by
//! byte in docs/delta-format.md. Written and read as streams: a delta of a huge file
//! never has to fit in memory.

use std::io::{self, Read, Write};

use super::{Delta, DeltaOp};

pub const MAGIC: [u8; 8] = *b"HSDELTA\x1a";
pub const VERSION: u16 = 1;
const HEADER: usize = 64;
const TAG_COPY: u8 = 0;
const TAG_INSERT: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaFileError {
    #[error("not a HugeSync delta (bad magic)")]
    BadMagic,
    #[error("delta format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u16),
    #[error("delta uses unknown flags {0:#06x}")]
    UnknownFlags(u16),
    #[error("delta is truncated")]
    Truncated,
    #[error("delta op {index} has unknown tag {tag}")]
    BadTag { index: u64, tag: u8 },
    #[error(
        "delta op {index} copies {len} bytes at {offset}, past the end of the {size}-byte basis"
    )]
    CopyOutOfRange {
        index: u64,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error("delta ops produce {actual} bytes, the header says {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("delta file is corrupt (checksum mismatch)")]
    ChecksumMismatch,
    #[error("the rebuilt file does not match the delta's blake3: wrong basis file?")]
    ResultMismatch,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `delta` with the inserted bytes taken from `new`.
///
/// Layout: header (magic, version, flags, op count, new size, blake3 of the new
/// file), then per op a tag and its fields (inserts followed by their bytes), then
/// a blake3 of everything before it.
pub fn write_delta(out: impl Write, delta: &Delta, new: &[u8]) -> io::Result<()> {
    let mut out = Hashing {
        inner: out,
        hasher: blake3::Hasher::new(),
    };
    let new_hash = blake3::Hasher::new().update_rayon(new).finalize();
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&(delta.ops.len() as u64).to_le_bytes());
    header[24..32].copy_from_slice(&delta.new_size.to_le_bytes());
    header[32..64].copy_from_slice(new_hash.as_bytes());
    out.write_all(&header)?;
    for op in &delta.ops {
        match *op {
            DeltaOp::Copy { src_offset, len } => {
                out.write_all(&[TAG_COPY])?;
                out.write_all(&src_offset.to_le_bytes())?;
                out.write_all(&len.to_le_bytes())?;
            }
            DeltaOp::Insert { new_offset, len } => {
                out.write_all(&[TAG_INSERT])?;
                out.write_all(&len.to_le_bytes())?;
                let bytes = new
                    .get(new_offset as usize..(new_offset + len) as usize)
                    .ok_or_else(|| io::Error::other("delta insert past the end of the new file"))?;
                out.write_all(bytes)?;
            }
        }
    }
    let trailer = out.hasher.finalize();
    out.inner.write_all(trailer.as_bytes())?;
    out.inner.flush()
}

/// A reader that hashes what passes through it and refuses to read past `limit`.
struct Checked<R> {
    inner: R,
    hasher: blake3::Hasher,
    remaining: u64,
}

impl<R: Read> Checked<R> {
    fn take(&mut self, buf: &mut [u8]) -> Result<(), DeltaFileError> {
        if (buf.len() as u64) > self.remaining {
            return Err(DeltaFileError::Truncated);
        }
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => DeltaFileError::Truncated,
            _ => DeltaFileError::Io(e),
        })?;
        self.hasher.update(buf);
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    fn u64(&mut self) -> Result<u64, DeltaFileError> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Rebuilds the new file into `out` from `basis` and a delta stream of
/// `delta_len` bytes. Every field is checked before use; the output is verified
/// against the blake3 the delta carries. Returns the bytes written.
pub fn apply_delta_stream(
    basis: &[u8],
    delta: impl Read,
    delta_len: u64,
    out: impl Write,
) -> Result<u64, DeltaFileError> {
    if delta_len < (HEADER + 32) as u64 {
        return Err(DeltaFileError::Truncated);
    }
    let mut input = Checked {
        inner: delta,
        hasher: blake3::Hasher::new(),
        remaining: delta_len - 32,
    };
    let mut header = [0u8; HEADER];
    input.take(&mut header)?;
    if header[..8] != MAGIC {
        return Err(DeltaFileError::BadMagic);
    }
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != VERSION {
        return Err(DeltaFileError::UnsupportedVersion(version));
    }
    let flags = u16::from_le_bytes([header[10], header[11]]);
    if flags != 0 {
        return Err(DeltaFileError::UnknownFlags(flags));
    }
    let count = u64::from_le_bytes(
        header[16..24]
            .try_into()
            .map_err(|_| DeltaFileError::Truncated)?,
    );
    let new_size = u64::from_le_bytes(
        header[24..32]
            .try_into()
            .map_err(|_| DeltaFileError::Truncated)?,
    );
    let mut output = Hashing {
        inner: out,
        hasher: blake3::Hasher::new(),
    };
    let mut written = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    for index in 0..count {
        let mut tag = [0u8; 1];
        input.take(&mut tag)?;
        match tag[0] {
            TAG_COPY => {
                let (offset, len) = (input.u64()?, input.u64()?);
                let end = offset
                    .checked_add(len)
                    .filter(|&e| e <= basis.len() as u64)
                    .ok_or(DeltaFileError::CopyOutOfRange {
                        index,
                        offset,
                        len,
                        size: basis.len() as u64,
                    })?;
                output.write_all(&basis[offset as usize..end as usize])?;
                written += len;
            }
            TAG_INSERT => {
                let mut len = input.u64()?;
                while len > 0 {
                    let n = len.min(buffer.len() as u64) as usize;
                    input.take(&mut buffer[..n])?;
                    output.write_all(&buffer[..n])?;
                    len -= n as u64;
                    written += n as u64;
                }
            }
            tag => return Err(DeltaFileError::BadTag { index, tag }),
        }
        if written > new_size {
            break;
        }
    }
    if written != new_size || input.remaining != 0 {
        return Err(DeltaFileError::SizeMismatch {
            expected: new_size,
            actual: written,
        });
    }
    let mut trailer = [0u8; 32];
    input
        .inner
        .read_exact(&mut trailer)
        .map_err(|_| DeltaFileError::Truncated)?;
    if input.hasher.finalize().as_bytes() != &trailer {
        return Err(DeltaFileError::ChecksumMismatch);
    }
    output.flush()?;
    if output.hasher.finalize().as_bytes() != &header[32..64] {
        return Err(DeltaFileError::ResultMismatch);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::compute_delta;
    use crate::signature::signature_of_bytes;
    use proptest::prelude::*;

    fn sample() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let old: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 241) as u8).collect();
        let mut new = old.clone();
        new.splice(70_000..70_000, b"inserted bytes".iter().copied());
        new.truncate(250_000);
        let delta = compute_delta(&new, &signature_of_bytes(&old, 65536));
        let mut file = Vec::new();
        write_delta(&mut file, &delta, &new).unwrap();
        (old, new, file)
    }

    #[test]
    fn round_trip_and_rejections() {
        let (old, new, file) = sample();
        let mut out = Vec::new();
        assert_eq!(
            apply_delta_stream(&old, &file[..], file.len() as u64, &mut out).unwrap(),
            new.len() as u64
        );
        assert_eq!(out, new);

        let run = |bytes: &[u8], basis: &[u8]| {
            apply_delta_stream(basis, bytes, bytes.len() as u64, Vec::new())
        };
        assert!(run(&file[..file.len() - 1], &old).is_err());
        let mut bad = file.clone();
        bad[0] = b'X';
        assert!(matches!(run(&bad, &old), Err(DeltaFileError::BadMagic)));
        let mut bad = file.clone();
        bad[8] = 7;
        assert!(matches!(
            run(&bad, &old),
            Err(DeltaFileError::UnsupportedVersion(7))
        ));
        let mut bad = file.clone();
        let last = bad.len() - 40;
        bad[last] ^= 1;
        assert!(run(&bad, &old).is_err());
        let mut other_basis = old.clone();
        other_basis[10] ^= 1;
        assert!(matches!(
            run(&file, &other_basis),
            Err(DeltaFileError::ResultMismatch)
        ));
        assert!(matches!(
            run(&file, &old[..1000]),
            Err(DeltaFileError::CopyOutOfRange { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn arbitrary_deltas_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&VERSION.to_le_bytes());
            bytes.extend_from_slice(&tail);
            let _ = apply_delta_stream(b"basis", &bytes[..], bytes.len() as u64, Vec::new());
            let _ = apply_delta_stream(b"basis", &tail[..], tail.len() as u64, Vec::new());
        }
    }
}
