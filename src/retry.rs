//! Retrying failed requests: exponential backoff with full jitter, for errors
//! that a later attempt can cure.
//!
//! This is the only retry layer. The AWS SDK's own is switched off (see
//! `storage::s3::S3Storage::connect`): stacked layers multiply attempts (the
//! SDK's three inside each of ours make a throttled server see nine requests
//! where we meant three), the SDK cannot retry what fails after it returns (a
//! body cut off mid-stream), and its retry quota fails requests outright under a
//! sustained error rate. One policy here also serves the GCS and Azure backends.
//!
//! The schedule is "full jitter" (AWS Architecture Blog, "Exponential Backoff
//! And Jitter"): before retry `n` sleep a uniformly random time in
//! `[0, min(max_delay, base × 2ⁿ)]`. Of the schedules compared there it spreads
//! a crowd of clients best; backoff crates offer "delay plus jitter" instead,
//! which keeps clients in step, so the two lines are written here.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::storage::{RemoteErrorKind, StorageError};

/// How a request is retried, and when an attempt counts as stalled.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`--retries`).
    pub retries: u32,
    /// The first retry's delay cap; each further retry doubles it.
    pub base_delay: Duration,
    /// No retry waits longer than this.
    pub max_delay: Duration,
    /// An attempt that makes no progress (no answer; no body bytes going out
    /// or coming in) for this long is abandoned, a retryable failure.
    pub stall_timeout: Duration,
    /// Retries made so far, across every clone of the policy.
    retried: Arc<AtomicU64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(6, Duration::from_secs(20), Duration::from_secs(60))
    }
}

/// How long an attempt may take before it is abandoned.
#[derive(Clone, Debug)]
pub enum Budget {
    /// A request with a small body and a small answer.
    Quick,
    /// Server-side work whose time grows with the data (copies, completions).
    ServerSide,
    /// A request whose body reports its progress here: abandoned once nothing
    /// moved for the stall timeout, however long the whole body takes.
    Watched(Arc<Activity>),
    /// No limit here: the caller bounds each step itself (streamed bodies).
    Unbounded,
}

/// When a request last made progress (a piece of its body went out).
#[derive(Debug)]
pub struct Activity {
    /// tokio's clock, which the watchdog's sleeps run on.
    origin: tokio::time::Instant,
    /// Milliseconds after `origin`.
    last: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            origin: tokio::time::Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl Activity {
    pub fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// How long since the last progress.
    pub fn idle(&self) -> Duration {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

impl RetryPolicy {
    pub fn new(retries: u32, max_delay: Duration, stall_timeout: Duration) -> Self {
        RetryPolicy {
            retries,
            base_delay: Duration::from_millis(200).min(max_delay),
            max_delay,
            stall_timeout,
            retried: Arc::default(),
        }
    }

    /// Retries made so far by this policy and its clones.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// The delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=cap_ms))
    }

    /// Runs one attempt within its budget.
    async fn attempt<T, Fut>(
        &self,
        what: &str,
        budget: &Budget,
        attempt: Fut,
    ) -> Result<T, StorageError>
    where
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let limit = match budget {
            Budget::Quick => self.stall_timeout,
            Budget::ServerSide => self.stall_timeout.saturating_mul(10),
            Budget::Unbounded => return attempt.await,
            Budget::Watched(activity) => {
                activity.touch();
                let watchdog = async {
                    loop {
                        let idle = activity.idle();
                        if idle >= self.stall_timeout {
                            return;
                        }
                        tokio::time::sleep(self.stall_timeout - idle).await;
                    }
                };
                return tokio::select! {
                    result = attempt => result,
                    () = watchdog => Err(StorageError::Interrupted {
                        target: what.to_string(),
                        message: format!(
                            "no progress for {}",
                            humantime::format_duration(self.stall_timeout)
                        ),
                    }),
                };
            }
        };
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(StorageError::Interrupted {
                    target: what.to_string(),
                    message: format!("no answer within {}", humantime::format_duration(limit)),
                })
            })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are
    /// spent. `what` names the request in log lines.
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        budget: Budget,
        mut attempt: F,
    ) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let mut retry = 0;
        loop {
            let result = self.attempt(what, &budget, attempt()).await;
            match result {
                Err(error) if error.is_retryable() && retry < self.retries => {
                    let delay = self.delay(retry);
                    retry += 1;
                    self.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        "{error}; retry {retry} of {} in {} ms",
                        self.retries,
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

impl StorageError {
    /// Whether another attempt can succeed: throttling, server errors, network
    /// failures, timeouts and cut-off bodies are; refusals (403, 404, 412, bad
    /// requests) and local disk errors are not — retrying them only repeats the
    /// failure, more slowly.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Remote { kind, .. } => {
                matches!(
                    kind,
                    RemoteErrorKind::Unavailable | RemoteErrorKind::Network
                )
            }
            StorageError::Interrupted { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: RemoteErrorKind) -> StorageError {
        StorageError::Remote {
            op: "cannot read",
            target: "s3://b/k".into(),
            kind,
            message: "test".into(),
            hints: &crate::storage::StoreHints {
                credentials: "test credentials",
                bucket: "bucket",
            },
        }
    }

    fn quick_policy(retries: u32) -> RetryPolicy {
        let mut policy =
            RetryPolicy::new(retries, Duration::from_millis(4), Duration::from_secs(5));
        policy.base_delay = Duration::from_millis(1);
        policy
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let policy = RetryPolicy::new(10, Duration::from_secs(20), Duration::from_secs(60));
        for retry in 0..40 {
            let cap = Duration::from_millis(200)
                .saturating_mul(1 << retry.min(20))
                .min(Duration::from_secs(20));
            for _ in 0..50 {
                assert!(policy.delay(retry) <= cap);
            }
        }
        // Full jitter: the late retries spread over the whole range.
        let late: Vec<_> = (0..200).map(|_| policy.delay(30)).collect();
        assert!(late.iter().any(|d| *d < Duration::from_secs(5)));
        assert!(late.iter().any(|d| *d > Duration::from_secs(15)));
    }

    #[test]
    fn classification() {
        assert!(failure(RemoteErrorKind::Unavailable).is_retryable());
        assert!(failure(RemoteErrorKind::Network).is_retryable());
        assert!(!failure(RemoteErrorKind::Denied).is_retryable());
        assert!(!failure(RemoteErrorKind::NotFound).is_retryable());
        assert!(!failure(RemoteErrorKind::PreconditionFailed).is_retryable());
        assert!(!failure(RemoteErrorKind::Rejected).is_retryable());
        let disk_full =
            StorageError::io("cannot write", "/x", std::io::Error::from_raw_os_error(28));
        assert!(!disk_full.is_retryable());
    }

    #[tokio::test]
    async fn retries_until_success_then_stops() {
        let policy = quick_policy(5);
        let mut calls = 0;
        let result = policy
            .run("test", Budget::Quick, || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(failure(RemoteErrorKind::Unavailable))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(policy.retried(), 2);
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried() {
        let policy = quick_policy(5);
        let mut calls = 0;
        let result: Result<(), _> = policy
            .run("test", Budget::Quick, || {
                calls += 1;
                async { Err(failure(RemoteErrorKind::Denied)) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let policy = quick_policy(3);
        let mut calls = 0;
        let result: Result<(), _> = policy
            .run("test", Budget::Quick, || {
                calls += 1;
                async { Err(failure(RemoteErrorKind::Network)) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_moves_is_not_stalled_but_silence_is() {
        let policy = quick_policy(0); // stall timeout 5 s
        let activity = Arc::new(Activity::default());
        // Sends for 60 s in 1 s steps: slow, never stalled.
        let moving = activity.clone();
        let result = policy
            .run("slow", Budget::Watched(activity.clone()), || {
                let moving = moving.clone();
                async move {
                    for _ in 0..60 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        moving.touch();
                    }
                    Ok(())
                }
            })
            .await;
        assert!(result.is_ok(), "{result:?}");
        // Sends for 3 s, then nothing: abandoned 5 s after the last piece.
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = policy
            .run("stalled", Budget::Watched(activity.clone()), || {
                let moving = moving.clone();
                async move {
                    for _ in 0..3 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        moving.touch();
                    }
                    std::future::pending().await
                }
            })
            .await;
        assert!(matches!(result, Err(StorageError::Interrupted { .. })));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(8) && waited < Duration::from_secs(9),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_attempts_time_out_and_are_retried() {
        let policy = quick_policy(1);
        let mut calls = 0;
        let result = policy
            .run("test", Budget::Quick, || {
                calls += 1;
                let n = calls;
                async move {
                    if n == 1 {
                        std::future::pending::<()>().await;
                    }
                    Ok(n)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 2);
    }
}
