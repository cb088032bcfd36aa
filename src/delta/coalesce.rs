//! Turning a delta into a multipart plan that an object store accepts: every part
//! but the last at least `min_part`, no part over `max_part`, at most `max_parts`
//! parts. A `Copy` part is copied server-side from the old object; an `Upload` part
//! is sent from the new file, so a short literal must absorb neighbouring bytes.
//!
//! Among valid plans we choose one that uploads the fewest bytes, by dynamic
//! programming over candidate cut points: segment boundaries and the points one or
//! two minimum part sizes away from them (where an optimal cut always lies: a part
//! that absorbs bytes absorbs exactly enough to reach the minimum). The limits are
//! parameters so GCS compose and Azure block lists can use their own.

use super::{Delta, DeltaOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartLimits {
    pub min_part: u64,
    pub max_part: u64,
    pub max_parts: usize,
}

impl PartLimits {
    /// S3 multipart upload: 5 MiB minimum (except the last part), 5 GiB maximum,
    /// 10,000 parts.
    pub const S3: PartLimits = PartLimits {
        min_part: 5 * 1024 * 1024,
        max_part: 5 * 1024 * 1024 * 1024,
        max_parts: 10_000,
    };
}

/// One part of the rebuilt object, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Copied server-side from the old object.
    Copy { src_offset: u64, len: u64 },
    /// Sent from the new file.
    Upload { new_offset: u64, len: u64 },
}

impl Part {
    pub fn len(&self) -> u64 {
        match *self {
            Part::Copy { len, .. } | Part::Upload { len, .. } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartPlan {
    pub parts: Vec<Part>,
}

impl PartPlan {
    pub fn bytes_uploaded(&self) -> u64 {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Upload { .. }))
            .map(Part::len)
            .sum()
    }

    pub fn bytes_copied(&self) -> u64 {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Copy { .. }))
            .map(Part::len)
            .sum()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartPlanError {
    #[error("invalid part limits {0:?}: need min_part ≥ 1, max_part ≥ 2 × min_part, max_parts ≥ 2")]
    BadLimits(PartLimits),
    #[error("a {size}-byte object does not fit in {max_parts} parts of at most {max_part} bytes")]
    TooLarge {
        size: u64,
        max_parts: usize,
        max_part: u64,
    },
    #[error(
        "the delta copies {len} bytes at {offset}, past the end of the {old_size}-byte old object"
    )]
    CopyOutOfRange {
        offset: u64,
        len: u64,
        old_size: u64,
    },
    #[error("the delta's ops do not add up to its new size")]
    Inconsistent,
}

/// For stores that reuse whole objects only (GCS compose): the plan of an
/// append — the old object as it is, then the new bytes after it in parts of
/// at most `part_size` — when `new` starts with the old content (whose
/// signature's `file_hash` is its blake3); `None` when it does not.
pub fn plan_append(
    new: &[u8],
    old: &crate::signature::Signature,
    part_size: u64,
) -> Option<PartPlan> {
    let old_size = usize::try_from(old.file_size).ok()?;
    if old_size == 0 || new.len() < old_size || part_size == 0 {
        return None;
    }
    let prefix = blake3::Hasher::new()
        .update_rayon(&new[..old_size])
        .finalize();
    if prefix.as_bytes() != &old.file_hash {
        return None;
    }
    let mut parts = vec![Part::Copy {
        src_offset: 0,
        len: old.file_size,
    }];
    let mut offset = old.file_size;
    while offset < new.len() as u64 {
        let len = part_size.min(new.len() as u64 - offset);
        parts.push(Part::Upload {
            new_offset: offset,
            len,
        });
        offset += len;
    }
    Some(PartPlan { parts })
}

/// A stretch of the new file: copyable from `src` (when `Some`) or new bytes.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: u64,
    end: u64,
    src: Option<u64>,
}

/// The multipart plan that uploads the fewest bytes. An empty file has no parts.
pub fn plan_parts(
    delta: &Delta,
    old_size: u64,
    limits: &PartLimits,
) -> Result<PartPlan, PartPlanError> {
    if limits.min_part == 0 || limits.max_part < 2 * limits.min_part || limits.max_parts < 2 {
        return Err(PartPlanError::BadLimits(*limits));
    }
    let segments = segments(delta, old_size)?;
    let size = delta.new_size;
    if size == 0 {
        return Ok(PartPlan::default());
    }
    let too_large = PartPlanError::TooLarge {
        size,
        max_parts: limits.max_parts,
        max_part: limits.max_part,
    };
    if size.div_ceil(limits.max_part) > limits.max_parts as u64 {
        return Err(too_large);
    }
    let plan = plan_with_min(&segments, size, limits.min_part, limits.max_part);
    if plan.parts.len() <= limits.max_parts {
        return Ok(plan);
    }
    // Too many parts: raise the minimum so that any valid plan fits the count. This
    // gives up strict optimality only for objects that need it to be valid at all.
    let min = limits
        .min_part
        .max(size.div_ceil(limits.max_parts as u64 - 1));
    if 2 * min > limits.max_part {
        return Err(too_large);
    }
    let plan = plan_with_min(&segments, size, min, limits.max_part);
    if plan.parts.len() > limits.max_parts {
        return Err(too_large);
    }
    Ok(plan)
}

fn segments(delta: &Delta, old_size: u64) -> Result<Vec<Segment>, PartPlanError> {
    let mut out: Vec<Segment> = Vec::with_capacity(delta.ops.len());
    let mut at = 0u64;
    for op in &delta.ops {
        let len = op.len();
        if len == 0 {
            continue;
        }
        let src = match *op {
            DeltaOp::Copy { src_offset, len } => {
                // Checked here, not left to the server: some servers silently
                // truncate a copy range past the end of the source.
                if src_offset.checked_add(len).is_none_or(|end| end > old_size) {
                    return Err(PartPlanError::CopyOutOfRange {
                        offset: src_offset,
                        len,
                        old_size,
                    });
                }
                Some(src_offset)
            }
            DeltaOp::Insert { .. } => None,
        };
        let end = at.checked_add(len).ok_or(PartPlanError::Inconsistent)?;
        match (out.last_mut(), src) {
            // Adjacent new bytes, or copies that continue each other, are one segment.
            (Some(prev), None) if prev.src.is_none() => prev.end = end,
            (Some(prev), Some(s)) if prev.src.is_some_and(|p| p + (prev.end - prev.start) == s) => {
                prev.end = end
            }
            _ => out.push(Segment {
                start: at,
                end,
                src,
            }),
        }
        at = end;
    }
    if at != delta.new_size {
        return Err(PartPlanError::Inconsistent);
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Start,
    Upload(usize),
    Copy(usize),
}

/// The DP proper (parts of any length ≥ `min`, the last of any length), then long
/// parts split under `max`.
fn plan_with_min(segments: &[Segment], size: u64, min: u64, max: u64) -> PartPlan {
    let points = candidate_points(segments, size, min);
    let count = points.len();
    const INF: u64 = u64::MAX / 4;
    let mut cost = vec![INF; count];
    let mut choice = vec![Choice::Start; count];
    cost[0] = 0;
    // best_upload[i]: index j ≤ i minimizing cost[j] − points[j].
    let mut best_upload: Vec<usize> = Vec::with_capacity(count);
    // best_copy[i]: index j ≤ i within the copy segment of points[i] minimizing cost[j].
    let mut best_copy: Vec<usize> = Vec::with_capacity(count);
    let segment_starts: Vec<u64> = segments.iter().map(|s| s.start).collect();
    let mut segment = 0usize;
    for i in 0..count {
        let p = points[i];
        // The segment that bytes just before `p` belong to.
        while segment + 1 < segments.len() && segments[segment].end < p {
            segment += 1;
        }
        if i > 0 {
            let last = p == size;
            // Latest start q for a part ending at p.
            let reach = if last {
                points[i - 1]
            } else {
                p.saturating_sub(min)
            };
            if last || p >= min {
                let j = points.partition_point(|&q| q <= reach) - 1;
                if j < i {
                    let k = best_upload[j];
                    let c = cost[k].saturating_add(p - points[k]);
                    if c < cost[i] {
                        cost[i] = c;
                        choice[i] = Choice::Upload(k);
                    }
                }
                let seg = segments[segment];
                if seg.src.is_some() && seg.start < p && p <= seg.end {
                    let lo = points.partition_point(|&q| q < seg.start);
                    if lo <= j && j < i {
                        let k = best_copy[j];
                        if points[k] >= seg.start && cost[k] < cost[i] {
                            cost[i] = cost[k];
                            choice[i] = Choice::Copy(k);
                        }
                    }
                }
            }
        }
        let key = |k: usize| i128::from(cost[k]) - i128::from(points[k]);
        best_upload.push(match i.checked_sub(1).map(|j| best_upload[j]) {
            Some(k) if key(k) <= key(i) => k,
            _ => i,
        });
        // The copy prefix-minimum restarts at each segment start.
        let starts_segment = i == 0 || segment_starts.binary_search(&p).is_ok();
        let prev_copy = if starts_segment {
            None
        } else {
            i.checked_sub(1).map(|j| best_copy[j])
        };
        best_copy.push(match prev_copy {
            Some(k) if cost[k] <= cost[i] => k,
            _ => i,
        });
    }
    let mut parts = Vec::new();
    let mut i = count - 1;
    while i > 0 {
        let (from, upload) = match choice[i] {
            Choice::Upload(k) => (k, true),
            Choice::Copy(k) => (k, false),
            Choice::Start => break,
        };
        let (start, end) = (points[from], points[i]);
        parts.push(if upload {
            Part::Upload {
                new_offset: start,
                len: end - start,
            }
        } else {
            let seg = segments[segments.partition_point(|s| s.end <= start)];
            let src = seg.src.unwrap_or(0) + (start - seg.start);
            Part::Copy {
                src_offset: src,
                len: end - start,
            }
        });
        i = from;
    }
    parts.reverse();
    PartPlan {
        parts: split_long(merge_adjacent(parts), max),
    }
}

/// Segment boundaries, the file's end, and the points one or two minimum part
/// sizes on either side of each boundary.
fn candidate_points(segments: &[Segment], size: u64, min: u64) -> Vec<u64> {
    let mut points = Vec::with_capacity(segments.len() * 5 + 2);
    points.push(0);
    points.push(size);
    for s in segments {
        for base in [s.start, s.end] {
            for k in 0..=2u64 {
                points.push(base.saturating_add(k * min).min(size));
                points.push(base.saturating_sub(k * min));
            }
        }
    }
    points.sort_unstable();
    points.dedup();
    points
}

/// Joins uploads that touch, and copies whose sources continue each other.
fn merge_adjacent(parts: Vec<Part>) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for part in parts {
        match (out.last_mut(), part) {
            (Some(Part::Upload { len, .. }), Part::Upload { len: more, .. }) => *len += more,
            (
                Some(Part::Copy { src_offset, len }),
                Part::Copy {
                    src_offset: next,
                    len: more,
                },
            ) if *src_offset + *len == next => *len += more,
            _ => out.push(part),
        }
    }
    out
}

impl PartPlan {
    /// Splits copied parts longer than `piece` into equal pieces, so a store
    /// copies one long unchanged run in parallel rather than in one request —
    /// where the plan stays within `limits` (a piece of at least twice the
    /// floor keeps every piece above it; too many parts leaves the plan as is).
    pub fn with_copies_split(self, piece: u64, limits: &PartLimits) -> PartPlan {
        let piece = piece.max(2 * limits.min_part).min(limits.max_part);
        let extra: u64 = self
            .parts
            .iter()
            .filter(|p| matches!(p, Part::Copy { .. }))
            .map(|p| p.len().div_ceil(piece).saturating_sub(1))
            .sum();
        if self.parts.len() as u64 + extra > limits.max_parts as u64 {
            return self;
        }
        let parts = self
            .parts
            .into_iter()
            .flat_map(|part| match part {
                Part::Copy { .. } => split_long(vec![part], piece),
                Part::Upload { .. } => vec![part],
            })
            .collect();
        PartPlan { parts }
    }
}

/// Splits parts longer than `max` into equal pieces (each ≥ max/2 ≥ the minimum).
fn split_long(parts: Vec<Part>, max: u64) -> Vec<Part> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let len = part.len();
        let pieces = len.div_ceil(max).max(1);
        let mut done = 0;
        for k in 0..pieces {
            let piece = (len - done) / (pieces - k);
            out.push(match part {
                Part::Copy { src_offset, .. } => Part::Copy {
                    src_offset: src_offset + done,
                    len: piece,
                },
                Part::Upload { new_offset, .. } => Part::Upload {
                    new_offset: new_offset + done,
                    len: piece,
                },
            });
            done += piece;
        }
    }
    out
}

#[cfg(test)]
mod tests;
