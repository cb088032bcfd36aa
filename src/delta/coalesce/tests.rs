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
            Part::Copy { src_offset, len } => {
                rebuilt.extend_from_slice(&old[src_offset as usize..(src_offset + len) as usize])
            }
            Part::Upload { new_offset, len } => {
                rebuilt.extend_from_slice(&new[new_offset as usize..(new_offset + len) as usize])
            }
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

#[test]
fn long_copies_split_for_parallel_copying_within_the_limits() {
    let plan = PartPlan {
        parts: vec![
            Part::Upload {
                new_offset: 0,
                len: 10,
            },
            Part::Copy {
                src_offset: 5,
                len: 1000,
            },
            Part::Upload {
                new_offset: 1010,
                len: 3,
            },
        ],
    };
    let l = limits(10, 500, 100);
    let split = plan.clone().with_copies_split(300, &l);
    assert_eq!(split.parts.len(), 6);
    assert_eq!(split.bytes_copied(), 1000);
    assert_eq!(split.bytes_uploaded(), 13);
    // Pieces stay contiguous in the old object and in order.
    let mut at = 5;
    for part in &split.parts[1..5] {
        match *part {
            Part::Copy { src_offset, len } => {
                assert_eq!(src_offset, at);
                assert!((20..=300).contains(&len));
                at += len;
            }
            Part::Upload { .. } => panic!("{split:?}"),
        }
    }
    // Too many parts for the store: left as planned.
    assert_eq!(
        plan.clone().with_copies_split(300, &limits(10, 500, 4)),
        plan
    );
}

#[test]
fn an_append_reuses_the_old_object_whole_and_nothing_else_does() {
    let old: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let signature = crate::signature::signature_of_bytes(&old, 1024);
    let mut grown = old.clone();
    grown.extend((0..2500u32).map(|i| (i % 13) as u8));
    let plan = plan_append(&grown, &signature, 1000).unwrap();
    check(&plan, &old, &grown, &limits(1, 1 << 20, 100));
    assert_eq!(plan.bytes_copied(), old.len() as u64);
    assert_eq!(plan.bytes_uploaded(), 2500);
    assert_eq!(
        plan.parts.len(),
        4,
        "the tail in parts of at most 1000: {plan:?}"
    );

    // An edit inside the old content, a shrink, an empty old object: no plan.
    let mut edited = grown.clone();
    edited[5000] ^= 1;
    assert_eq!(plan_append(&edited, &signature, 1000), None);
    assert_eq!(plan_append(&old[..9000], &signature, 1000), None);
    let empty = crate::signature::signature_of_bytes(&[], 1024);
    assert_eq!(plan_append(&grown, &empty, 1000), None);
    // Unchanged content is the old object alone.
    let same = plan_append(&old, &signature, 1000).unwrap();
    assert_eq!(same.parts.len(), 1);
}
