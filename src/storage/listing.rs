//! Listing a store with many requests in flight, split as the key space is
//! discovered, with no hints from the user.
//!
//! A listing starts as one request for the whole prefix, so a tree that fits
//! a page costs one request. A listing whose page comes back full while
//! requests are free is split: on a store that lists key ranges (S3
//! `start-after`, GCS `startOffset`/`endOffset`) the rest of its range is cut
//! at points guessed from the page's keys (the next values of the character
//! that varies, within its class: digits, letters), the listing going on from
//! its token up to the first point; on a store that narrows by prefix alone
//! (Azure) a flat listing becomes a delimited one, so that its directories
//! ("common prefixes") are listed on their own. Each piece is split again when it too
//! comes back full, so the requests in flight grow with the key space, up to
//! the bound. A range piece asks with the longest prefix its keys share, so
//! the store looks at those keys alone. Every page is retried on its own by
//! the store.
//!
//! Together the pieces hold every key once: ranges are half-open and
//! disjoint, a prefix is listed within the range that found it, and keys a
//! store returns outside a piece's range (S3 has no end key) are dropped
//! here. The pages arrive out of order; the caller sorts (a manifest does).

use std::collections::VecDeque;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::object::{ListPage, ListQuery, ListSplit, ListedObject, ObjectStore};
use super::{ScanCounter, StorageError};

/// Pages a ranged listing reads before it is first split: a listing of a few
/// pages is cheaper read page after page than probed in pieces (each probe a
/// request, and on S3, with no end key, a page past its end; a no-op re-sync
/// of 10,000 objects on moto took 1.4–3.8× longer split), and a large one
/// hardly notices the wait. Pieces split off it split at their first full
/// page: by then the listing is known to be large.
const SPLIT_AFTER_PAGES: u32 = 16;
/// The same where a request names its range's end (GCS): a probe of an
/// empty range is one short answer, while waiting costs a round trip a page
/// (on fake-gcs-server, which reads every object under the prefix for each
/// page, 2.6 s a page at 100,000 objects), so the first full page splits.
const SPLIT_AFTER_PAGES_WITH_END_KEY: u32 = 1;

/// What a listing found, page by page.
pub struct Found {
    pub objects: Vec<ListedObject>,
    /// Temp files of interrupted runs (SFTP), relative keys.
    pub leftovers: Vec<String>,
}

/// Figures of a finished listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Requests made (pages, including empty ones).
    pub requests: u64,
    /// The most requests that were in flight at once.
    pub most_in_flight: usize,
}

/// One piece of a listing: a query, where its pages have got to, and the key
/// its range was cut at since it began (a token continues the query it came
/// from, so the cut is kept here).
struct Piece {
    query: ListQuery,
    token: Option<String>,
    /// Keys at or past this belong to pieces split off from this one.
    stop: Option<String>,
    /// The last common prefix taken from this piece's pages: pages list
    /// prefixes in order, and one already taken is never taken again
    /// (fake-gcs-server repeats those past a page on every later page).
    last_prefix: Option<String>,
    pages: u32,
}

impl Piece {
    /// A piece for a range split off another: its prefix narrowed to what
    /// every key of the range shares ([`narrowest_prefix`]).
    fn of_range(query: ListQuery) -> Piece {
        let prefix = narrowest_prefix(&query);
        Piece::new(ListQuery { prefix, ..query })
    }

    fn new(query: ListQuery) -> Piece {
        let stop = query.to.clone();
        Piece {
            query,
            token: None,
            stop,
            last_prefix: None,
            pages: 0,
        }
    }

    fn holds(&self, key: &str) -> bool {
        self.query.holds(key) && self.stop.as_deref().is_none_or(|stop| key < stop)
    }

    /// Whether a common prefix has keys in this piece's range.
    fn reaches(&self, prefix: &str) -> bool {
        self.stop.as_deref().is_none_or(|stop| prefix < stop)
            && self
                .query
                .from
                .as_deref()
                .is_none_or(|from| prefix_end(prefix).is_none_or(|end| end.as_str() > from))
    }
}

/// Lists every object below the store's prefix with up to `in_flight`
/// requests at once, handing each page's objects to `each` as it arrives and
/// keeping `counter`'s count of requests in flight.
pub async fn list_all(
    store: &dyn ObjectStore,
    in_flight: usize,
    counter: &ScanCounter,
    mut each: impl FnMut(Found),
) -> Result<ListStats, StorageError> {
    let in_flight = in_flight.max(1);
    let split = store.info().list_split;
    // One request at a time is a plain listing, page after page. A listing
    // that fits a page is one request, whatever the store.
    let splits = in_flight > 1 && split != ListSplit::Whole;
    let root = ListQuery::default();
    let mut stats = ListStats::default();
    let mut waiting: VecDeque<Piece> = VecDeque::from([Piece::new(root)]);
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < in_flight
            && let Some(piece) = waiting.pop_front()
        {
            running.push(async move {
                let page = store.list_page(&piece.query, piece.token.clone()).await;
                (piece, page)
            });
        }
        stats.most_in_flight = stats.most_in_flight.max(running.len());
        counter.set_listing(running.len());
        let Some((mut piece, page)) = running.next().await else {
            return Ok(stats);
        };
        stats.requests += 1;
        piece.pages += 1;
        let ListPage {
            mut objects,
            prefixes,
            next,
            leftovers,
        } = page?;
        // A key past the cut ends the piece: the rest is another's. So does a
        // prefix past it on a page of prefixes alone (a page with keys may
        // name prefixes beyond them: fake-gcs-server names every one left).
        let past_stop = |key: &str| piece.stop.as_deref().is_some_and(|stop| key >= stop);
        let ended = next.is_none()
            || objects.last().is_some_and(|o| past_stop(&o.rel_key))
            || (objects.is_empty() && prefixes.last().is_some_and(|p| past_stop(p)));
        objects.retain(|o| piece.holds(&o.rel_key));
        let prefixes: Vec<String> = prefixes
            .into_iter()
            .filter(|p| piece.reaches(p) && piece.last_prefix.as_ref().is_none_or(|last| p > last))
            .collect();
        if let Some(last) = prefixes.last() {
            piece.last_prefix = Some(last.clone());
        }
        // The directories a delimited page found are listed on their own,
        // within this piece's range as it stands now (later cuts fall after
        // them: see `last_mark`).
        for prefix in &prefixes {
            waiting.push_back(Piece::new(ListQuery {
                prefix: prefix.clone(),
                from: piece.query.from.clone(),
                to: piece.stop.clone(),
                delimited: false,
            }));
        }
        let free = in_flight.saturating_sub(waiting.len() + running.len());
        if let (false, Some(token)) = (ended, next) {
            piece.token = Some(token);
            match split {
                ListSplit::Ranges { end_key }
                    if splits
                        && free > 1
                        && (piece.pages >= split_after(end_key) || piece.query.from.is_some()) =>
                {
                    let marks = objects
                        .first()
                        .map(|o| o.rel_key.clone())
                        .zip(last_mark(&objects, piece.last_prefix.as_deref()));
                    let upper = [piece.stop.clone(), prefix_end(&piece.query.prefix)]
                        .into_iter()
                        .flatten()
                        .min();
                    let points = marks.map_or_else(Vec::new, |(first, last)| {
                        split_points(
                            &piece.query.prefix,
                            &first,
                            &last,
                            upper.as_deref(),
                            free - 1,
                        )
                    });
                    if let Some(cut) = points.first().cloned() {
                        let ends: Vec<Option<String>> = points
                            .iter()
                            .skip(1)
                            .cloned()
                            .map(Some)
                            .chain([piece.stop.clone()])
                            .collect();
                        for (from, to) in points.into_iter().zip(ends) {
                            waiting.push_back(Piece::of_range(ListQuery {
                                prefix: piece.query.prefix.clone(),
                                from: Some(from),
                                to,
                                delimited: piece.query.delimited,
                            }));
                        }
                        piece.stop = Some(cut);
                    }
                    waiting.push_front(piece);
                }
                // A flat listing of a prefix on a store without ranges: its
                // directories are listed on their own instead. What this
                // first page held comes again from the delimited listing.
                ListSplit::Prefixes
                    if splits && free > 1 && !piece.query.delimited && piece.pages == 1 =>
                {
                    waiting.push_front(Piece::new(ListQuery {
                        delimited: true,
                        ..piece.query
                    }));
                    continue;
                }
                _ => waiting.push_front(piece),
            }
        }
        if !objects.is_empty() || !leftovers.is_empty() {
            each(Found { objects, leftovers });
        }
    }
}

/// The longest prefix every key of `query`'s range shares: its own prefix,
/// extended along `from` as far as the range's end allows (every key in
/// `[from, to)` starts with `p` when `from` does and `to` is at or below the
/// end of `p`). A store then looks at those keys alone: fake-gcs-server
/// reads and sorts every key under the prefix for each page, and S3, which
/// has no end key, stops at the prefix's end instead of a page past the
/// range. A delimited query's prefix is not extended past a `/`, which
/// would change the directories it rolls keys up into.
pub fn narrowest_prefix(query: &ListQuery) -> String {
    let (Some(from), Some(to)) = (query.from.as_deref(), query.to.as_deref()) else {
        return query.prefix.clone();
    };
    let Some(rest) = from.strip_prefix(query.prefix.as_str()) else {
        return query.prefix.clone();
    };
    let longest = match (query.delimited, rest.find('/')) {
        (true, Some(slash)) => query.prefix.len() + slash,
        _ => from.len(),
    };
    (query.prefix.len()..=longest)
        .rev()
        .filter(|&end| from.is_char_boundary(end))
        .map(|end| &from[..end])
        .find(|candidate| prefix_end(candidate).is_none_or(|end| end.as_str() >= to))
        .unwrap_or(&query.prefix)
        .to_string()
}

fn split_after(end_key: bool) -> u32 {
    if end_key {
        SPLIT_AFTER_PAGES_WITH_END_KEY
    } else {
        SPLIT_AFTER_PAGES
    }
}

/// The point past everything a piece has listed: its page's last key, or
/// the end of the last common prefix it took (whose keys are listed within
/// the piece's range as it stood then: a cut must come after them).
fn last_mark(objects: &[ListedObject], last_prefix: Option<&str>) -> Option<String> {
    let key = objects.last().map(|o| o.rel_key.clone());
    let prefix = last_prefix.and_then(prefix_end);
    key.into_iter().chain(prefix).max()
}

/// The least key greater than every key starting with `prefix` (`None`:
/// nothing is, for the empty prefix).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A key just below `key`, for stores whose listings start after a key
/// (S3's `start-after`); `None` for the empty key. Keys between it and `key`
/// are few and unlikely; a listing drops them, as they precede its range.
pub fn key_before(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let last = chars.next_back()?;
    let stem = chars.as_str();
    Some(match last {
        // The key is the least one after `stem`.
        '\0' => stem.to_string(),
        last => format!("{stem}{}{}", prev_char(last), char::MAX),
    })
}

fn next_char(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        c => char::from_u32(c as u32 + 1),
    }
}

fn prev_char(c: char) -> char {
    match c {
        '\u{E000}' => '\u{D7FF}',
        c => char::from_u32((c as u32).saturating_sub(1)).unwrap_or('\0'),
    }
}

/// The byte length of the longest common prefix of `a` and `b` that ends on
/// a character boundary.
fn common_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((at, _), _)| at)
}

/// Where to cut the rest of a range whose last full page ran from `first` to
/// `last`, up to `upper` (exclusive; `None`: the end of the key space): at
/// most `most` points, in order, each past `last` and before `upper`.
///
/// Keys are guessed to vary like those of the page: at a digit the page
/// shares (a counter's leading digit, the first of a hash), else at the last
/// character the page shares (a counter's next carry), else from the first
/// character the range leaves open. The cut points are the next values of
/// that character within its class (`0-9`, `a-z`, `A-Z`), then one past the
/// class, so that the last piece runs to `upper` whatever the keys are.
pub fn split_points(
    prefix: &str,
    first: &str,
    last: &str,
    upper: Option<&str>,
    most: usize,
) -> Vec<String> {
    if most == 0 {
        return Vec::new();
    }
    let fixed = upper
        .map_or(0, |upper| common_len(last, upper))
        .max(prefix.len().min(last.len()));
    let agreed = common_len(first, last).max(fixed);
    let positions: Vec<(usize, char)> = last[fixed..]
        .char_indices()
        .map(|(at, c)| (fixed + at, c))
        .collect();
    let digits = positions
        .iter()
        .filter(|(at, c)| *at < agreed && c.is_ascii_digit());
    let carry = positions
        .iter()
        .filter(|(at, c)| *at + c.len_utf8() == agreed);
    for &(at, c) in digits.chain(carry).chain(&positions).take(12) {
        let class_end = match c {
            '0'..='9' => '9',
            'a'..='z' => 'z',
            'A'..='Z' => 'Z',
            c => c,
        };
        let stem = &last[..at];
        let mut points = Vec::new();
        let mut next = next_char(c);
        while let Some(x) = next.filter(|x| *x <= class_end) {
            points.push(format!("{stem}{x}"));
            next = next_char(x);
        }
        if let Some(beyond) = next_char(class_end) {
            points.push(format!("{stem}{beyond}"));
        }
        points.retain(|point| upper.is_none_or(|upper| point.as_str() < upper));
        if points.is_empty() {
            continue;
        }
        if points.len() > most {
            let len = points.len();
            points = (1..=most)
                .map(|i| points[i * len / most - 1].clone())
                .collect();
        }
        return points;
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::retry::RetryPolicy;
    use crate::storage::body::BodySource;
    use crate::storage::memory::{MemoryOptions, MemoryStore};
    use crate::storage::meta::ObjectMeta;
    use crate::storage::object::Expect;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// How the store splits, and whether its delimited pages name prefixes
    /// past them (as fake-gcs-server's do).
    type Split = (ListSplit, bool);

    const SPLITS: [Split; 5] = [
        (ListSplit::Ranges { end_key: true }, false),
        (ListSplit::Ranges { end_key: false }, false),
        (ListSplit::Prefixes, false),
        (ListSplit::Prefixes, true),
        (ListSplit::Whole, false),
    ];

    /// A memory store holding `keys` below `data/`, and keys just outside it.
    async fn store_with(keys: &BTreeSet<String>, page_size: usize, split: Split) -> MemoryStore {
        let name = format!("listing-{}", fastrand::u64(..));
        let options = MemoryOptions {
            page_size,
            list_split: split.0,
            prefixes_past_the_page: split.1,
            ..MemoryOptions::default()
        };
        let outside = MemoryStore::new(&name, "", options, &RetryPolicy::default());
        let empty = Bytes::new();
        for key in keys
            .iter()
            .map(|k| format!("data/{k}"))
            .chain(["datb".to_string(), "dat".to_string()])
        {
            outside
                .put(
                    &key,
                    BodySource::Memory(&empty),
                    0,
                    &ObjectMeta::default(),
                    crate::storage::body::BodySums::NONE,
                    Expect::Any,
                )
                .await
                .unwrap();
        }
        MemoryStore::new(&name, "data/", options, &RetryPolicy::default())
    }

    async fn listed(store: &MemoryStore, in_flight: usize) -> (Vec<String>, ListStats) {
        let mut keys = Vec::new();
        let stats = list_all(store, in_flight, &ScanCounter::default(), |found| {
            keys.extend(found.objects.into_iter().map(|o| o.rel_key));
        })
        .await
        .unwrap();
        keys.sort();
        (keys, stats)
    }

    fn key() -> impl Strategy<Value = String> {
        // Separators and the characters that sort around `/`, digits and
        // letters that splits cut at, a character past ASCII; keys that are
        // prefixes of others and "directory" markers come up often.
        proptest::collection::vec(
            prop_oneof![
                Just("/"),
                Just("-"),
                Just("."),
                Just("0"),
                Just("1"),
                Just("9"),
                Just("a"),
                Just("b"),
                Just("z"),
                Just("A"),
                Just("é"),
                Just("~"),
                Just(".hssig"),
            ],
            1..7,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn a_parallel_listing_equals_the_sequential_one(
            keys in proptest::collection::btree_set(key(), 0..120),
            page_size in 1usize..6,
            in_flight in 2usize..40,
        ) {
            runtime().block_on(async {
                let expected: Vec<String> = keys.iter().cloned().collect();
                for split in SPLITS {
                    let store = store_with(&keys, page_size, split).await;
                    let (sequential, _) = listed(&store, 1).await;
                    assert_eq!(sequential, expected, "{split:?}: sequential");
                    let (parallel, stats) = listed(&store, in_flight).await;
                    assert_eq!(parallel, expected, "{split:?}, {in_flight} in flight");
                    assert!(stats.most_in_flight <= in_flight);
                }
            });
        }
    }

    #[test]
    fn a_flat_counter_keyspace_fans_out_and_lists_each_key_once() {
        runtime().block_on(async {
            let keys: BTreeSet<String> = (0..20_000)
                .map(|i| format!("part-{i:07}.parquet"))
                .collect();
            let store = store_with(&keys, 100, (ListSplit::Ranges { end_key: true }, false)).await;
            let (sequential, one) = listed(&store, 1).await;
            let (parallel, many) = listed(&store, 64).await;
            assert_eq!(parallel, sequential);
            assert_eq!(sequential.len(), 20_000);
            assert_eq!(one.requests, 200);
            // Pieces split off as pages came back full: many in flight,
            // few requests beyond the pages themselves.
            assert!(many.most_in_flight >= 32, "{many:?}");
            assert!(many.requests < 320, "{many:?}");
        });
    }

    #[test]
    fn a_range_narrows_its_prefix_to_what_its_keys_share() {
        let range = |prefix: &str, from: &str, to: Option<&str>, delimited| ListQuery {
            prefix: prefix.into(),
            from: Some(from.into()),
            to: to.map(Into::into),
            delimited,
        };
        let narrowed = |q: ListQuery| narrowest_prefix(&q);
        // A cut at the next digit: everything below it starts with the stem.
        assert_eq!(
            narrowed(range(
                "t/",
                "t/day=012/part-5",
                Some("t/day=012/part-6"),
                false
            )),
            "t/day=012/part-5"
        );
        assert_eq!(
            narrowed(range("t/", "t/day=01", Some("t/day=02"), false)),
            "t/day=01"
        );
        // Keys from "t/day=012/part-5" up to "t/day=013" share less.
        assert_eq!(
            narrowed(range("t/", "t/day=012/part-5", Some("t/day=013"), false)),
            "t/day=012"
        );
        // No end, or a start outside the prefix: the prefix stays.
        assert_eq!(narrowed(range("t/", "t/a", None, false)), "t/");
        assert_eq!(narrowed(range("t/", "s", Some("t/b"), false)), "t/");
        // Delimited: never past a `/`, which would change the directories.
        assert_eq!(
            narrowed(range(
                "t/",
                "t/day=012/part-5",
                Some("t/day=012/part-6"),
                true
            )),
            "t/day=012"
        );
        // Unicode: cut on character boundaries only.
        assert_eq!(narrowed(range("", "é1", Some("é2"), false)), "é1");
        assert_eq!(narrowed(range("", "éa", Some("ê"), false)), "é");
    }

    #[test]
    fn split_points_follow_the_character_that_varies() {
        // A counter: its leading digit first.
        assert_eq!(
            split_points("", "part-0000000", "part-0000999", None, 100),
            [
                "part-1", "part-2", "part-3", "part-4", "part-5", "part-6", "part-7", "part-8",
                "part-9", "part-:"
            ]
        );
        // Within a cut, the next digit.
        assert_eq!(
            split_points("", "part-0001000", "part-0001999", Some("part-1"), 3),
            ["part-03", "part-06", "part-0:"]
        );
        // Hex names: the first character, digits then the rest of the range.
        assert_eq!(
            split_points("d/", "d/00a1", "d/04ff", Some("d0"), 100)
                .first()
                .unwrap(),
            "d/1"
        );
        // Letters: the last shared one carries next.
        assert_eq!(
            split_points("", "file-aaaa", "file-aazz", None, 100)[..2],
            ["file-ab", "file-ac"]
        );
        assert!(split_points("", "a", "b", Some("b"), 10).is_empty());
        assert!(split_points("", "a", "b", None, 0).is_empty());
    }

    #[test]
    fn bounds_around_a_key() {
        assert_eq!(prefix_end("data/").as_deref(), Some("data0"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(key_before("b").as_deref(), Some("a\u{10FFFF}"));
        assert_eq!(key_before("ab\0").as_deref(), Some("ab"));
        assert_eq!(key_before(""), None);
        assert!(key_before("data/part-1").unwrap().as_str() < "data/part-1");
        assert!(key_before("data/part-1").unwrap().as_str() > "data/part-0zzzz");
    }
}
