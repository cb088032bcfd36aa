//! `--bwlimit`: one byte rate shared by every transfer of the run, uploads and
//! downloads alike. A virtual clock: each piece of a body is paid for in time
//! at the rate, and waits until its turn — so the run's bytes, summed over
//! all requests in flight, follow the rate within a piece (256 KiB on
//! uploads, the HTTP client's chunks on downloads), with at most a quarter
//! second's worth in a burst after an idle spell.
//!
//! The limit is the run's, so it lives here for the process: set once by the
//! command before anything is sent (`install`), consulted where body bytes
//! pass (`storage::body` for uploads, `storage::objects` for downloads).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How far behind the clock may fall after an idle spell (the burst allowed).
const BURST: Duration = Duration::from_millis(250);

/// A byte rate and the time until which the bytes taken so far are paid.
#[derive(Debug)]
pub struct Limiter {
    bytes_per_second: f64,
    paid_until: Mutex<Instant>,
}

impl Limiter {
    pub fn new(bytes_per_second: u64) -> Limiter {
        Limiter {
            bytes_per_second: bytes_per_second.max(1) as f64,
            // The first burst is allowed too.
            paid_until: Mutex::new(
                Instant::now()
                    .checked_sub(BURST)
                    .unwrap_or_else(Instant::now),
            ),
        }
    }

    /// The rate, bytes per second.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second as u64
    }

    /// How long `bytes` must wait, from `now`, for their turn; books them.
    fn book(&self, bytes: usize, now: Instant) -> Duration {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        let Ok(mut paid) = self.paid_until.lock() else {
            return Duration::ZERO;
        };
        let start = (*paid).max(now.checked_sub(BURST).unwrap_or(now));
        *paid = start + cost;
        paid.saturating_duration_since(now)
    }

    /// Waits until `bytes` more may pass.
    pub async fn take(&self, bytes: usize) {
        let wait = self.book(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

static LIMIT: OnceLock<Limiter> = OnceLock::new();

/// Sets the run's limit (the first call wins: one run, one limit).
pub fn install(bytes_per_second: u64) {
    let _ = LIMIT.set(Limiter::new(bytes_per_second));
}

/// The run's limit, when there is one.
pub fn limit() -> Option<&'static Limiter> {
    LIMIT.get()
}

/// Waits until `bytes` more may pass under the run's limit (at once without).
pub async fn take(bytes: usize) {
    if let Some(limiter) = limit() {
        limiter.take(bytes).await;
    }
}

/// The same for a blocking thread (local copies run on one): the thread
/// sleeps until `bytes` more may pass.
pub fn take_blocking(bytes: usize) {
    if let Some(limiter) = limit() {
        let wait = limiter.book(bytes, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// The most a blocking copy should move between two [`take_blocking`]s for
/// the rate to hold within a piece: `unlimited` without a limit.
pub fn piece(unlimited: u64) -> u64 {
    if limit().is_some() {
        unlimited.min(PIECE)
    } else {
        unlimited
    }
}

/// Pieces of paced local copies, as uploads send them.
const PIECE: u64 = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_wait_their_turn_at_the_rate() {
        let limiter = Limiter::new(1000);
        let now = Instant::now();
        // A burst of a quarter second's worth passes at once…
        assert_eq!(limiter.book(250, now), Duration::ZERO);
        // …then each byte costs a millisecond.
        assert_eq!(limiter.book(500, now), Duration::from_millis(500));
        assert_eq!(limiter.book(500, now), Duration::from_millis(1000));
        // After an idle spell the clock catches up, less the burst.
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.book(100, later), Duration::ZERO);
    }

    #[test]
    fn a_stream_of_pieces_follows_the_rate() {
        // 10 MiB in 256 KiB pieces at 2 MiB/s: 5 s, less the burst.
        let limiter = Limiter::new(2 << 20);
        let now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..40 {
            last = limiter.book(256 << 10, now);
        }
        let expected = 5.0 - BURST.as_secs_f64();
        assert!((last.as_secs_f64() - expected).abs() < 0.01, "{last:?}");
    }
}
