//! Sets of completion indexes as sorted, merged intervals, and the interval strings of
//! `completedIndexes` / `failedIndexes` (spec §2.8).

use std::fmt;

/// A set of non-negative indexes stored as sorted, disjoint, non-adjacent inclusive ranges.
///
/// Memory grows with the number of ranges, not the number of indexes: 1,000,000 succeeded
/// indexes in a row are one range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct IndexSet {
    ranges: Vec<(i32, i32)>,
}

impl IndexSet {
    /// The empty set.
    pub fn new() -> Self {
        IndexSet::default()
    }

    /// Reads an interval string the lenient way the Job controller does: items `a` or `a-b`
    /// separated by commas; an item that does not parse is skipped; the first item starting
    /// at or beyond `completions` ends the reading; an end beyond is clamped to
    /// `completions - 1`. Both `"5,6"` and `"5-6"` read as {5, 6}.
    pub fn parse_lenient(text: &str, completions: i32) -> Self {
        let mut set = IndexSet::new();
        for item in text.split(',') {
            let parsed = match item.split_once('-') {
                None => item.parse::<i32>().ok().map(|a| (a, a)),
                Some((a, b)) => match (a.parse::<i32>(), b.parse::<i32>()) {
                    (Ok(a), Ok(b)) => Some((a, b)),
                    _ => None,
                },
            };
            let Some((start, end)) = parsed else { continue };
            // The first item starting at or beyond completions ends the reading, before any
            // other check of the item (spec §2.8).
            if start >= completions {
                break;
            }
            if start < 0 || end < start {
                continue;
            }
            set.insert_range(start, end.min(completions.saturating_sub(1)));
        }
        set
    }

    /// Whether the set holds `index`.
    pub fn contains(&self, index: i32) -> bool {
        let pos = self.ranges.partition_point(|(_, end)| *end < index);
        self.ranges
            .get(pos)
            .is_some_and(|(start, _)| *start <= index)
    }

    /// The number of indexes in the set.
    pub fn len(&self) -> i64 {
        self.ranges
            .iter()
            .map(|(a, b)| i64::from(*b) - i64::from(*a) + 1)
            .sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(i32, i32)] {
        &self.ranges
    }

    /// Adds one index.
    pub fn insert(&mut self, index: i32) {
        self.insert_range(index, index);
    }

    /// Adds the indexes `start..=end` (nothing when `end < start`).
    pub fn insert_range(&mut self, start: i32, end: i32) {
        if end < start {
            return;
        }
        // Ranges that overlap or touch [start, end] are merged into it.
        let first = self
            .ranges
            .partition_point(|(_, e)| i64::from(*e) + 1 < i64::from(start));
        let mut last = first;
        let (mut lo, mut hi) = (start, end);
        while let Some(&(a, b)) = self.ranges.get(last) {
            if i64::from(a) > i64::from(hi) + 1 {
                break;
            }
            lo = lo.min(a);
            hi = hi.max(b);
            last += 1;
        }
        self.ranges.splice(first..last, [(lo, hi)]);
    }

    /// Adds every index of `other`.
    pub fn extend(&mut self, other: &IndexSet) {
        for &(a, b) in &other.ranges {
            self.insert_range(a, b);
        }
    }

    /// The indexes in order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The number of indexes of this set that are also in `other`.
    pub fn count_in(&self, other: &IndexSet) -> i64 {
        let mut count = 0;
        let mut j = 0;
        for &(a, b) in &self.ranges {
            while let Some(&(c, d)) = other.ranges.get(j) {
                if d < a {
                    j += 1;
                    continue;
                }
                if c > b {
                    break;
                }
                count += i64::from(b.min(d)) - i64::from(a.max(c)) + 1;
                if d > b {
                    break;
                }
                j += 1;
            }
        }
        count
    }
}

impl FromIterator<i32> for IndexSet {
    fn from_iter<I: IntoIterator<Item = i32>>(iter: I) -> Self {
        let mut set = IndexSet::new();
        for i in iter {
            set.insert(i);
        }
        set
    }
}

impl fmt::Display for IndexSet {
    /// Kubernetes' interval string: a run of one is `5`, of two `5,6`, of three or more `5-7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match i64::from(b) - i64::from(a) {
                0 => write!(f, "{a}")?,
                1 => write!(f, "{a},{b}")?,
                _ => write!(f, "{a}-{b}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::IndexSet;

    #[test]
    fn writes_kubernetes_interval_strings() {
        let set: IndexSet = [1, 3, 4, 5, 7].into_iter().collect();
        assert_eq!(set.to_string(), "1,3-5,7");
        assert_eq!([0, 1].into_iter().collect::<IndexSet>().to_string(), "0,1");
        assert_eq!(IndexSet::new().to_string(), "");
        assert_eq!(
            [2, 4, 5, 7, 8, 9]
                .into_iter()
                .collect::<IndexSet>()
                .to_string(),
            "2,4,5,7-9"
        );
    }

    #[test]
    fn reads_leniently() {
        assert_eq!(IndexSet::parse_lenient("0-5,8-10", 8).to_string(), "0-5");
        assert_eq!(
            IndexSet::parse_lenient("0-5,8-10", 10).to_string(),
            "0-5,8,9"
        );
        assert_eq!(IndexSet::parse_lenient("0,1-foo,bar", 10).to_string(), "0");
        assert_eq!(
            IndexSet::parse_lenient("5,6", 10),
            IndexSet::parse_lenient("5-6", 10)
        );
        assert_eq!(IndexSet::parse_lenient("", 10), IndexSet::new());
        assert_eq!(IndexSet::parse_lenient("3-3,4", 10).to_string(), "3,4");
    }

    #[test]
    fn merges_and_counts() {
        let mut set = IndexSet::new();
        set.insert_range(10, 20);
        set.insert_range(0, 5);
        set.insert(6);
        set.insert_range(8, 9);
        assert_eq!(set.ranges(), &[(0, 6), (8, 20)]);
        set.insert(7);
        assert_eq!(set.ranges(), &[(0, 20)]);
        assert_eq!(set.len(), 21);
        assert!(set.contains(0) && set.contains(20) && !set.contains(21));
        let other: IndexSet = [3, 4, 25].into_iter().collect();
        assert_eq!(other.count_in(&set), 2);
        assert_eq!(set.count_in(&other), 2);
        set.insert(i32::MAX);
        set.insert(i32::MAX - 1);
        assert_eq!(set.ranges().last(), Some(&(i32::MAX - 1, i32::MAX)));
    }
}
