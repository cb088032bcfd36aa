//! Deltas: how to rebuild a new file from an old one (whose signature we have)
//! plus the bytes that are new. Pure code: no network, no async.

pub mod carry;
pub mod coalesce;
pub mod compute;
pub mod file;
#[cfg(target_arch = "x86_64")]
mod scan_avx2;

pub use coalesce::{Part, PartLimits, PartPlan, PartPlanError, plan_append, plan_parts};
pub use compute::compute_delta;

/// One step of rebuilding the new file, in new-file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaOp {
    /// `len` bytes that exist in the old file at `src_offset`.
    Copy { src_offset: u64, len: u64 },
    /// `len` bytes of the new file, starting at `new_offset`, that must be sent.
    Insert { new_offset: u64, len: u64 },
}

impl DeltaOp {
    pub fn len(&self) -> u64 {
        match *self {
            DeltaOp::Copy { len, .. } | DeltaOp::Insert { len, .. } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The operations that turn the old file into the new one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub ops: Vec<DeltaOp>,
    pub new_size: u64,
}

impl Delta {
    /// Bytes taken from the old file.
    pub fn bytes_reused(&self) -> u64 {
        self.ops
            .iter()
            .filter(|op| matches!(op, DeltaOp::Copy { .. }))
            .map(DeltaOp::len)
            .sum()
    }

    /// Bytes that must be sent.
    pub fn bytes_new(&self) -> u64 {
        self.new_size - self.bytes_reused()
    }

    /// Appends an op, merging it into the previous one when they continue each other.
    pub(crate) fn push(&mut self, op: DeltaOp) {
        if op.is_empty() {
            return;
        }
        match (self.ops.last_mut(), op) {
            (
                Some(DeltaOp::Copy { src_offset, len }),
                DeltaOp::Copy {
                    src_offset: next,
                    len: more,
                },
            ) if *src_offset + *len == next => *len += more,
            (
                Some(DeltaOp::Insert { new_offset, len }),
                DeltaOp::Insert {
                    new_offset: next,
                    len: more,
                },
            ) if *new_offset + *len == next => *len += more,
            _ => self.ops.push(op),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyError {
    #[error("delta copies {len} bytes at offset {offset}, past the end of the {size}-byte basis")]
    CopyOutOfRange { offset: u64, len: u64, size: u64 },
    #[error(
        "delta inserts bytes at {offset}..{end}, past the end of the {size}-byte literal source"
    )]
    InsertOutOfRange { offset: u64, end: u64, size: u64 },
}

/// Rebuilds the new file from `old` and the delta, taking inserted bytes from
/// `literals` (the new file itself when verifying locally).
pub fn apply_delta(old: &[u8], delta: &Delta, literals: &[u8]) -> Result<Vec<u8>, ApplyError> {
    let mut out = Vec::with_capacity(delta.new_size as usize);
    for op in &delta.ops {
        match *op {
            DeltaOp::Copy { src_offset, len } => {
                let range = checked_range(src_offset, len, old.len()).ok_or(
                    ApplyError::CopyOutOfRange {
                        offset: src_offset,
                        len,
                        size: old.len() as u64,
                    },
                )?;
                out.extend_from_slice(&old[range]);
            }
            DeltaOp::Insert { new_offset, len } => {
                let range = checked_range(new_offset, len, literals.len()).ok_or(
                    ApplyError::InsertOutOfRange {
                        offset: new_offset,
                        end: new_offset.saturating_add(len),
                        size: literals.len() as u64,
                    },
                )?;
                out.extend_from_slice(&literals[range]);
            }
        }
    }
    Ok(out)
}

fn checked_range(offset: u64, len: u64, size: usize) -> Option<std::ops::Range<usize>> {
    let end = offset.checked_add(len)?;
    (end <= size as u64).then_some(offset as usize..end as usize)
}
