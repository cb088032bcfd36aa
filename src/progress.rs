//! What the executor reports while it runs ([`ExecEvent`]), the one fold of those
//! events into a [`Progress`] value, and the headless consumers of the stream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::format;
use crate::types::{RelPath, SyncAction};

/// One thing the executor did. Ids are the item's index in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExecEvent {
    /// Execution begins: how many items will be worked on and the bytes to send.
    Begin { items: u64, bytes: u64 },
    Started {
        id: usize,
        path: RelPath,
        action: SyncAction,
        bytes: u64,
    },
    /// `bytes` more were sent for item `id`.
    Advanced { id: usize, bytes: u64 },
    Finished {
        id: usize,
        path: RelPath,
        action: SyncAction,
        bytes_sent: u64,
        bytes_saved: u64,
    },
    Failed {
        id: usize,
        path: RelPath,
        action: SyncAction,
        error: String,
    },
    /// The destination changed under item `id` since the plan was made.
    Conflict {
        id: usize,
        path: RelPath,
        /// What became of it: planned again, kept, or the run stopped.
        resolution: String,
    },
    /// Something worth telling that is not tied to one item's failure.
    Warning { message: String },
}

/// An item being worked on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveItem {
    pub path: RelPath,
    pub action: SyncAction,
    pub total: u64,
    pub done: u64,
    /// When it started, for its own rate.
    pub started: Instant,
}

impl ActiveItem {
    /// Bytes per second since it started (`None` before a whole tenth of a
    /// second has passed, when a rate would mean little).
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let secs = now.saturating_duration_since(self.started).as_secs_f64();
        (secs >= 0.1).then(|| self.done as f64 / secs)
    }
}

/// Seconds of rate history kept (the sparkline's widest).
const HISTORY_SECONDS: usize = 600;

/// The fold of the event stream; every display draws from this value.
#[derive(Clone, Debug)]
pub struct Progress {
    pub started: Instant,
    pub total_items: u64,
    pub total_bytes: u64,
    pub done_items: u64,
    pub failed_items: u64,
    /// Bytes sent so far, counted as they go.
    pub bytes_sent: u64,
    pub bytes_saved: u64,
    pub active: BTreeMap<usize, ActiveItem>,
    pub failures: Vec<(RelPath, String)>,
    /// Paths the destination changed under, with what became of them.
    pub conflicts: Vec<(RelPath, String)>,
    pub warnings: Vec<String>,
    pub per_action: BTreeMap<SyncAction, u64>,
    /// Bytes sent in each whole second since the start, the last
    /// [`HISTORY_SECONDS`] of them: `history[i]` is second `history_from + i`.
    history: std::collections::VecDeque<u64>,
    history_from: u64,
    /// The run's whole time as first estimated, once the rate had
    /// [`SETTLE`] to settle: (when, the estimate). What the summary sets
    /// beside the time the run took.
    first_estimate: Option<(Duration, Duration)>,
}

/// How long a run goes before its rate is taken as an estimate of its time:
/// the first seconds are connections opening and slow starts.
const SETTLE: Duration = Duration::from_secs(5);

impl Default for Progress {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            total_items: 0,
            total_bytes: 0,
            done_items: 0,
            failed_items: 0,
            bytes_sent: 0,
            bytes_saved: 0,
            active: BTreeMap::new(),
            failures: Vec::new(),
            conflicts: Vec::new(),
            warnings: Vec::new(),
            per_action: BTreeMap::new(),
            history: std::collections::VecDeque::new(),
            history_from: 0,
            first_estimate: None,
        }
    }
}

impl Progress {
    pub fn apply(&mut self, event: &ExecEvent) {
        self.apply_at(event, Instant::now());
    }

    /// [`apply`](Self::apply) with the time it happened (tests give their own).
    pub fn apply_at(&mut self, event: &ExecEvent, at: Instant) {
        match event {
            ExecEvent::Begin { items, bytes } => {
                self.total_items = *items;
                self.total_bytes = *bytes;
                self.started = at;
                self.history.clear();
                self.history_from = 0;
                self.first_estimate = None;
            }
            ExecEvent::Started {
                id,
                path,
                action,
                bytes,
            } => {
                self.active.insert(
                    *id,
                    ActiveItem {
                        path: path.clone(),
                        action: *action,
                        total: *bytes,
                        done: 0,
                        started: at,
                    },
                );
            }
            ExecEvent::Advanced { id, bytes } => {
                self.bytes_sent += bytes;
                self.record(*bytes, at);
                if let Some(item) = self.active.get_mut(id) {
                    item.done += bytes;
                }
            }
            ExecEvent::Finished {
                id,
                action,
                bytes_sent,
                bytes_saved,
                ..
            } => {
                // Bytes not reported by Advanced (small items) are counted here.
                let advanced = self.active.remove(id).map_or(0, |a| a.done);
                let unreported = bytes_sent.saturating_sub(advanced);
                self.bytes_sent += unreported;
                self.bytes_saved += bytes_saved;
                self.done_items += 1;
                // With the item counted: the estimate weighs items too.
                self.record(unreported, at);
                *self.per_action.entry(*action).or_default() += 1;
            }
            ExecEvent::Failed {
                id, path, error, ..
            } => {
                self.active.remove(id);
                self.done_items += 1;
                self.failed_items += 1;
                self.failures.push((path.clone(), error.clone()));
            }
            ExecEvent::Conflict {
                path, resolution, ..
            } => self.conflicts.push((path.clone(), resolution.clone())),
            ExecEvent::Warning { message } => self.warnings.push(message.clone()),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed_at(Instant::now())
    }

    pub fn elapsed_at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// The run's whole time as estimated once its rate settled, and when
    /// (time since the start); `None` for a run that ended before.
    pub fn first_estimate(&self) -> Option<(Duration, Duration)> {
        self.first_estimate
    }

    /// Counts `bytes` in the second they were sent.
    fn record(&mut self, bytes: u64, at: Instant) {
        if self.first_estimate.is_none() {
            let elapsed = self.elapsed_at(at);
            if elapsed >= SETTLE
                && let Some(eta) = self.eta_at(at)
            {
                self.first_estimate = Some((elapsed, elapsed + eta));
            }
        }
        let second = at.saturating_duration_since(self.started).as_secs();
        let end = self.history_from + self.history.len() as u64;
        if second >= end {
            self.history
                .extend(std::iter::repeat_n(0, (second + 1 - end) as usize));
        }
        while self.history.len() > HISTORY_SECONDS {
            self.history.pop_front();
            self.history_from += 1;
        }
        if let Some(slot) = second
            .checked_sub(self.history_from)
            .and_then(|i| self.history.get_mut(i as usize))
        {
            *slot += bytes;
        }
    }

    /// Bytes sent in each of the last `seconds` whole seconds before `now`
    /// (oldest first; seconds before the start or with nothing sent are 0).
    pub fn rate_history(&self, now: Instant, seconds: usize) -> Vec<u64> {
        let current = now.saturating_duration_since(self.started).as_secs();
        (0..seconds as u64)
            .rev()
            .map(|back| {
                current
                    .checked_sub(back + 1)
                    .and_then(|second| second.checked_sub(self.history_from))
                    .and_then(|i| self.history.get(i as usize).copied())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Estimated time left from the byte rate so far.
    pub fn eta(&self) -> Option<Duration> {
        self.eta_at(Instant::now())
    }

    /// The time left: the longer of what the bytes left take at the byte
    /// rate so far and what the items left take at the item rate so far —
    /// a tree of many small files is bound by its items long after its
    /// bytes are sent. `None` before either has a rate, or once both are done.
    pub fn eta_at(&self, now: Instant) -> Option<Duration> {
        let secs = self.elapsed_at(now).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let left = |done: u64, total: u64| {
            (done > 0 && total > done).then(|| (total - done) as f64 * secs / done as f64)
        };
        match (
            left(self.bytes_sent, self.total_bytes),
            left(self.done_items, self.total_items),
        ) {
            (None, None) => None,
            (by_bytes, by_items) => Some(Duration::from_secs_f64(
                by_bytes.unwrap_or(0.0).max(by_items.unwrap_or(0.0)),
            )),
        }
    }

    pub fn count(&self, action: SyncAction) -> u64 {
        self.per_action.get(&action).copied().unwrap_or(0)
    }
}

/// Something that shows the event stream to a person or a program.
pub trait Reporter: Send {
    fn event(&mut self, event: &ExecEvent, progress: &Progress);
    fn finish(&mut self, _progress: &Progress) {}
}

/// Default headless output: failures and warnings as they happen on stderr, and
/// with `-v` every finished item on stdout (like `rsync -v`).
pub struct LineReporter {
    pub verbose: bool,
}

impl Reporter for LineReporter {
    fn event(&mut self, event: &ExecEvent, _: &Progress) {
        match event {
            ExecEvent::Finished { path, action, .. } if self.verbose => {
                println!("{action:>8}  {path}")
            }
            ExecEvent::Failed { path, error, .. } => eprintln!("error: {path}: {error}"),
            ExecEvent::Conflict {
                path, resolution, ..
            } => eprintln!("conflict: {path}: {resolution}"),
            ExecEvent::Warning { message } => eprintln!("warning: {message}"),
            _ => {}
        }
    }
}

/// `--json`: one JSON object per event per line on stdout.
pub struct JsonLinesReporter;

impl Reporter for JsonLinesReporter {
    fn event(&mut self, event: &ExecEvent, _: &Progress) {
        if let Ok(line) = serde_json::to_string(event) {
            println!("{line}");
        }
    }
}

/// `-P`: an overall bar (bytes, files, rate, ETA) and one line per active file.
pub struct BarReporter {
    bars: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    files: BTreeMap<usize, indicatif::ProgressBar>,
}

impl BarReporter {
    pub fn new() -> Self {
        let bars = indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        let overall = bars.add(indicatif::ProgressBar::new(0));
        overall.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self {
            bars,
            overall,
            files: BTreeMap::new(),
        }
    }
}

impl Default for BarReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for BarReporter {
    fn event(&mut self, event: &ExecEvent, progress: &Progress) {
        match event {
            ExecEvent::Begin { bytes, .. } => self.overall.set_length(*bytes),
            ExecEvent::Started {
                id, path, bytes, ..
            } if *bytes >= 1024 * 1024 => {
                let bar = self.bars.add(indicatif::ProgressBar::new(*bytes));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "  {bar:20} {bytes:>10}/{total_bytes:<10} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_message(path.display());
                self.files.insert(*id, bar);
            }
            ExecEvent::Advanced { id, bytes } => {
                if let Some(bar) = self.files.get(id) {
                    bar.inc(*bytes);
                }
            }
            ExecEvent::Finished { id, .. } | ExecEvent::Failed { id, .. } => {
                if let Some(bar) = self.files.remove(id) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
            }
            ExecEvent::Warning { message } => {
                let _ = self.bars.println(format!("warning: {message}"));
            }
            ExecEvent::Conflict {
                path, resolution, ..
            } => {
                let _ = self.bars.println(format!("conflict: {path}: {resolution}"));
            }
            _ => {}
        }
        if let ExecEvent::Failed { path, error, .. } = event {
            let _ = self.bars.println(format!("error: {path}: {error}"));
        }
        self.overall
            .set_position(progress.bytes_sent.min(progress.total_bytes));
        self.overall.set_message(format!(
            "{}/{} items",
            format::count(progress.done_items),
            format::count(progress.total_items)
        ));
    }

    fn finish(&mut self, _: &Progress) {
        for bar in self.files.values() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
}

/// Drains the event channel into a [`Progress`], showing each event to every
/// reporter, until the executor drops its sender.
pub async fn consume(
    mut events: tokio::sync::mpsc::Receiver<ExecEvent>,
    mut reporters: Vec<Box<dyn Reporter>>,
) -> Progress {
    let mut progress = Progress::default();
    while let Some(event) = events.recv().await {
        progress.apply(&event);
        for reporter in &mut reporters {
            reporter.event(&event, &progress);
        }
    }
    for reporter in &mut reporters {
        reporter.finish(&progress);
    }
    progress
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_history_counts_each_second_and_items_their_own_rate() {
        let mut p = Progress::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let path = RelPath::from("f");
        p.apply_at(
            &ExecEvent::Begin {
                items: 2,
                bytes: 100,
            },
            at(0),
        );
        p.apply_at(
            &ExecEvent::Started {
                id: 0,
                path: path.clone(),
                action: SyncAction::Copy,
                bytes: 90,
            },
            at(0),
        );
        p.apply_at(&ExecEvent::Advanced { id: 0, bytes: 10 }, at(200));
        p.apply_at(&ExecEvent::Advanced { id: 0, bytes: 30 }, at(1500));
        p.apply_at(&ExecEvent::Advanced { id: 0, bytes: 40 }, at(3100));
        // A small item's bytes come with its Finished.
        p.apply_at(
            &ExecEvent::Finished {
                id: 1,
                path: path.clone(),
                action: SyncAction::Copy,
                bytes_sent: 5,
                bytes_saved: 0,
            },
            at(3200),
        );
        // Seconds 0..4 as of 4.5 s: the current second is not whole yet.
        assert_eq!(p.rate_history(at(4500), 5), [0, 10, 30, 0, 45]);
        assert_eq!(p.rate_history(at(4500), 2), [0, 45]);
        let item = &p.active[&0];
        assert_eq!(item.rate(at(4000)), Some(20.0));
        assert_eq!(item.rate(at(50)), None);
        assert_eq!(p.elapsed_at(at(4000)), Duration::from_secs(4));
    }

    #[test]
    fn the_estimate_follows_items_when_they_outlast_the_bytes() {
        let mut p = Progress::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        p.apply_at(
            &ExecEvent::Begin {
                items: 100,
                bytes: 1000,
            },
            at(0),
        );
        // One large file's 900 bytes and 9 small files in the first 6 s:
        // the bytes say 0.7 s more, the items say 54 s.
        for i in 0..10u64 {
            p.apply_at(
                &ExecEvent::Finished {
                    id: i as usize,
                    path: RelPath::from("f"),
                    action: SyncAction::Copy,
                    bytes_sent: if i == 0 { 900 } else { 0 },
                    bytes_saved: 0,
                },
                at(600 * (i + 1)),
            );
        }
        assert_eq!(p.eta_at(at(6000)), Some(Duration::from_secs(54)));
        // First estimated at 5.4 s (9 items done): the whole run, 60 s.
        let (when, whole) = p.first_estimate().unwrap();
        assert_eq!(when, Duration::from_millis(5400));
        assert_eq!(whole, Duration::from_secs(60));
        // Before any item or byte is done there is no estimate.
        let mut fresh = Progress::default();
        fresh.apply_at(
            &ExecEvent::Begin {
                items: 1,
                bytes: 10,
            },
            at(0),
        );
        assert_eq!(fresh.eta_at(at(1000)), None);
    }

    #[test]
    fn fold_counts_bytes_once() {
        let mut p = Progress::default();
        let path = RelPath::from("f");
        for event in [
            ExecEvent::Begin {
                items: 2,
                bytes: 30,
            },
            ExecEvent::Started {
                id: 0,
                path: path.clone(),
                action: SyncAction::Copy,
                bytes: 20,
            },
            ExecEvent::Advanced { id: 0, bytes: 15 },
            ExecEvent::Finished {
                id: 0,
                path: path.clone(),
                action: SyncAction::Copy,
                bytes_sent: 20,
                bytes_saved: 0,
            },
            ExecEvent::Started {
                id: 1,
                path: path.clone(),
                action: SyncAction::Copy,
                bytes: 10,
            },
            ExecEvent::Failed {
                id: 1,
                path: path.clone(),
                action: SyncAction::Copy,
                error: "boom".into(),
            },
        ] {
            p.apply(&event);
        }
        assert_eq!(p.bytes_sent, 20);
        assert_eq!(p.done_items, 2);
        assert_eq!(p.failed_items, 1);
        assert_eq!(p.count(SyncAction::Copy), 1);
        assert!(p.active.is_empty());
        assert_eq!(p.failures, vec![(path, "boom".to_string())]);
    }
}
