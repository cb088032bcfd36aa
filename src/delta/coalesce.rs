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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(min: u64, max: u64, count: usize) -> PartLimits {
        PartLimits {
            min_part: min,
            max_part: max,
            max_parts: count,
        }
    }

    /// Checks a plan against the limits and rebuilds the new file from it.
    fn check(plan: &PartPlan, old: &[u8], new: &[u8], l: &PartLimits) {
        let mut rebuilt = Vec::new();
        for (i, part) in plan.parts.iter().enumerate() {
            let last = i + 1 == plan.parts.len();
            assert!(!part.is_empty());
            assert!(
                last || part.len() >= l.min_part,
                "part {i} too small: {plan:?}"
            );
            assert!(part.len() <= l.max_part, "part {i} too large");
            match *part {
                Part::Copy { src_offset, len } => rebuilt
                    .extend_from_slice(&old[src_offset as usize..(src_offset + len) as usize]),
                Part::Upload { new_offset, len } => rebuilt
                    .extend_from_slice(&new[new_offset as usize..(new_offset + len) as usize]),
            }
        }
        assert!(plan.parts.len() <= l.max_parts);
        assert_eq!(rebuilt, new);
    }

    /// Every way to cut [0, n) into valid parts; the fewest uploaded bytes.
    fn brute_force(segments: &[Segment], n: u64, min: u64, max: u64) -> Option<u64> {
        fn go(at: u64, segments: &[Segment], n: u64, min: u64, max: u64) -> Option<u64> {
            if at == n {
                return Some(0);
            }
            let mut best: Option<u64> = None;
            for end in at + 1..=n {
                let len = end - at;
                if (end < n && len < min) || len > max {
                    continue;
                }
                let copyable = segments
                    .iter()
                    .any(|s| s.src.is_some() && s.start <= at && end <= s.end);
                let here = if copyable { 0 } else { len };
                if let Some(rest) = go(end, segments, n, min, max) {
                    best = Some(best.map_or(here + rest, |b| b.min(here + rest)));
                }
            }
            best
        }
        go(0, segments, n, min, max)
    }

    fn delta_strategy() -> impl Strategy<Value = Delta> {
        proptest::collection::vec((any::<bool>(), 1u64..5, 0u64..20), 1..6).prop_map(|ops| {
            let mut delta = Delta::default();
            for (copy, len, src) in ops {
                let at = delta.new_size;
                delta.push(if copy {
                    DeltaOp::Copy {
                        src_offset: src,
                        len,
                    }
                } else {
                    DeltaOp::Insert {
                        new_offset: at,
                        len,
                    }
                });
                delta.new_size += len;
            }
            delta
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The DP finds the optimum that exhaustive search finds (scaled-down limits).
        #[test]
        fn dp_matches_brute_force(delta in delta_strategy(), min in 1u64..5, extra in 0u64..3) {
            let max = 2 * min + extra;
            let l = limits(min, max, 1000);
            let old: Vec<u8> = (0..40u8).collect();
            let new: Vec<u8> = delta.ops.iter().flat_map(|op| match *op {
                DeltaOp::Copy { src_offset, len } => old[src_offset as usize..(src_offset + len) as usize].to_vec(),
                DeltaOp::Insert { len, .. } => vec![200; len as usize],
            }).collect();
            let plan = plan_parts(&delta, old.len() as u64, &l).unwrap();
            check(&plan, &old, &new, &l);
            let segs = segments(&delta, old.len() as u64).unwrap();
            prop_assert_eq!(Some(plan.bytes_uploaded()), brute_force(&segs, delta.new_size, min, max));
        }
    }

    #[test]
    fn a_small_change_in_a_large_file_uploads_one_minimum_part() {
        let mib = 1024 * 1024;
        let delta = Delta {
            ops: vec![
                DeltaOp::Copy {
                    src_offset: 0,
                    len: 30 * mib,
                },
                DeltaOp::Insert {
                    new_offset: 30 * mib,
                    len: 100,
                },
                DeltaOp::Copy {
                    src_offset: 30 * mib + 100,
                    len: 34 * mib - 100,
                },
            ],
            new_size: 64 * mib,
        };
        let plan = plan_parts(&delta, 64 * mib, &PartLimits::S3).unwrap();
        assert_eq!(plan.bytes_uploaded(), 5 * mib);
        assert_eq!(plan.parts.len(), 3);
    }

    #[test]
    fn limits_and_errors() {
        let d = Delta {
            ops: vec![DeltaOp::Copy {
                src_offset: 5,
                len: 10,
            }],
            new_size: 10,
        };
        assert!(matches!(
            plan_parts(&d, 12, &limits(1, 4, 10)),
            Err(PartPlanError::CopyOutOfRange { .. })
        ));
        assert!(matches!(
            plan_parts(&d, 20, &limits(3, 4, 10)),
            Err(PartPlanError::BadLimits(_))
        ));
        assert!(matches!(
            plan_parts(&d, 20, &limits(1, 2, 4)),
            Err(PartPlanError::TooLarge { .. })
        ));
        assert_eq!(
            plan_parts(&Delta::default(), 0, &PartLimits::S3)
                .unwrap()
                .parts,
            vec![]
        );
        // The count limit raises the minimum part size instead of failing.
        let many = Delta {
            ops: (0..20)
                .map(|i| {
                    if i % 2 == 0 {
                        DeltaOp::Copy {
                            src_offset: i * 10,
                            len: 10,
                        }
                    } else {
                        DeltaOp::Insert {
                            new_offset: i * 10,
                            len: 10,
                        }
                    }
                })
                .collect(),
            new_size: 200,
        };
        let l = limits(10, 100, 5);
        let plan = plan_parts(&many, 200, &l).unwrap();
        assert!(plan.parts.len() <= 5, "{plan:?}");
        let new = vec![0u8; 200];
        let old = vec![0u8; 200];
        check(&plan, &old, &new, &l);
    }
}
