//! Sets of item ids kept as ranges: what a shard finished comes mostly in
//! order, so a million ids are a few hundred ranges in its report.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Item ids, as disjoint ranges in order (`[start, end)` pairs in JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<[usize; 2]>", into = "Vec<[usize; 2]>")]
pub struct IdRanges {
    ranges: Vec<Range<usize>>,
}

impl From<Vec<[usize; 2]>> for IdRanges {
    fn from(pairs: Vec<[usize; 2]>) -> Self {
        // Read from outside: any order, overlaps and empty pairs allowed.
        let mut ids = IdRanges::default();
        let mut ranges: Vec<Range<usize>> = pairs
            .into_iter()
            .filter(|[a, b]| a < b)
            .map(|[a, b]| a..b)
            .collect();
        ranges.sort_by_key(|r| r.start);
        for range in ranges {
            ids.add_range(range);
        }
        ids
    }
}

impl From<IdRanges> for Vec<[usize; 2]> {
    fn from(ids: IdRanges) -> Self {
        ids.ranges.into_iter().map(|r| [r.start, r.end]).collect()
    }
}

impl FromIterator<usize> for IdRanges {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut ids: Vec<usize> = iter.into_iter().collect();
        ids.sort_unstable();
        let mut set = IdRanges::default();
        for id in ids {
            set.add_range(id..id + 1);
        }
        set
    }
}

impl IdRanges {
    /// Adds `range`, which starts at or after every range's start (the
    /// common case, ids finished in order, is a push or a widening).
    fn add_range(&mut self, range: Range<usize>) {
        match self.ranges.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => self.ranges.push(range),
        }
    }

    /// Adds one id, anywhere.
    pub fn insert(&mut self, id: usize) {
        if self.ranges.last().is_none_or(|last| id >= last.start) {
            self.add_range(id..id + 1);
            return;
        }
        if self.contains(id) {
            return;
        }
        let at = self.ranges.partition_point(|r| r.start <= id);
        self.ranges.insert(at, id..id + 1);
        self.coalesce(at);
    }

    /// Joins range `at` with its neighbours where they touch.
    fn coalesce(&mut self, at: usize) {
        if at + 1 < self.ranges.len() && self.ranges[at].end >= self.ranges[at + 1].start {
            self.ranges[at].end = self.ranges[at].end.max(self.ranges[at + 1].end);
            self.ranges.remove(at + 1);
        }
        if at > 0 && self.ranges[at - 1].end >= self.ranges[at].start {
            self.ranges[at - 1].end = self.ranges[at - 1].end.max(self.ranges[at].end);
            self.ranges.remove(at);
        }
    }

    /// Every id of `other` added.
    pub fn extend(&mut self, other: &IdRanges) {
        let mut all: Vec<Range<usize>> = self
            .ranges
            .drain(..)
            .chain(other.ranges.iter().cloned())
            .collect();
        all.sort_by_key(|r| r.start);
        for range in all {
            self.add_range(range);
        }
    }

    pub fn contains(&self, id: usize) -> bool {
        let at = self.ranges.partition_point(|r| r.end <= id);
        self.ranges.get(at).is_some_and(|r| r.start <= id)
    }

    /// How many ids.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|r| (r.end - r.start) as u64).sum()
    }

    /// Whether any id of `ids` is in the set.
    pub fn overlaps(&self, ids: &Range<usize>) -> bool {
        let at = self.ranges.partition_point(|r| r.end <= ids.start);
        self.ranges.get(at).is_some_and(|r| r.start < ids.end)
    }

    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_any_order_make_the_same_ranges() {
        let mut a = IdRanges::default();
        for id in [5, 1, 2, 3, 9, 4, 10, 0] {
            a.insert(id);
        }
        let b: IdRanges = [0, 1, 2, 3, 4, 5, 9, 10].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(a.ranges(), &[0..6, 9..11]);
        assert!(a.contains(10) && !a.contains(6) && !a.contains(11));
        assert_eq!(a.count(), 8);
        assert!(a.overlaps(&(6..10)) && !a.overlaps(&(6..9)));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "[[0,6],[9,11]]");
        let back: IdRanges = serde_json::from_str("[[9,11],[0,3],[2,6],[7,7]]").unwrap();
        assert_eq!(back, a);
        let mut c: IdRanges = [7].into_iter().collect();
        c.extend(&a);
        assert_eq!(c.ranges(), &[0..6, 7..8, 9..11]);
    }
}
