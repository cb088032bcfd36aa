//! A shard's journal: what it finished, written to its report location as it
//! goes, a segment every few seconds, so that a shard killed midway and run
//! again skips what it had finished without looking at the destination.
//! The final report holds everything; the segments go once it is written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::reports::{JournalSegment, ReportDir};
use crate::error::Error;
use crate::sync::shard::ShardId;

/// A segment is written at least this often while work finishes.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Or as soon as it holds this many finished items.
const FLUSH_AT: usize = 10_000;

/// One thing finished.
pub(super) enum Finished {
    Item {
        id: usize,
        bytes: u64,
    },
    Piece {
        item: usize,
        number: u32,
        bytes: u64,
    },
}

/// The journal's writer, running beside the shard.
pub(super) struct Journal {
    sender: mpsc::UnboundedSender<Finished>,
    writer: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Journal {
    /// Starts writing segments from number `next`.
    pub(super) fn start(
        reports: Arc<ReportDir>,
        shard: ShardId,
        plan_id: String,
        mut next: u64,
    ) -> Journal {
        let (sender, mut finished) = mpsc::unbounded_channel::<Finished>();
        let writer = tokio::spawn(async move {
            let empty = || JournalSegment {
                plan_id: plan_id.clone(),
                ..Default::default()
            };
            let mut segment = empty();
            let mut held = 0usize;
            let mut written = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let open = tokio::select! {
                    got = finished.recv() => match got {
                        Some(Finished::Item { id, bytes }) => {
                            segment.done.insert(id);
                            segment.bytes_sent += bytes;
                            held += 1;
                            true
                        }
                        Some(Finished::Piece { item, number, bytes }) => {
                            segment.pieces_done.push((item, number));
                            segment.bytes_sent += bytes;
                            held += 1;
                            true
                        }
                        None => false,
                    },
                    _ = tick.tick() => true,
                };
                let due = held >= FLUSH_AT || !open || written.elapsed() >= FLUSH_EVERY;
                if held > 0 && due {
                    written = tokio::time::Instant::now();
                    reports.write_journal(shard, next, &segment).await?;
                    next += 1;
                    segment = empty();
                    held = 0;
                }
                if !open {
                    return Ok(());
                }
            }
        });
        Journal { sender, writer }
    }

    pub(super) fn sender(&self) -> mpsc::UnboundedSender<Finished> {
        self.sender.clone()
    }

    /// Writes what is left and stops.
    pub(super) async fn close(self) -> Result<(), Error> {
        drop(self.sender);
        match self.writer.await {
            Ok(written) => written,
            Err(e) => Err(Error::Usage(format!(
                "the shard's journal writer failed: {e}"
            ))),
        }
    }
}
