//! The fetching code, written once for any `R: Runtime`: a TaskGroup bounded
//! by `max_concurrent`, each request under a timeout, retried with backoff
//! that honours `Retry-After`, paced by a rate limiter, stopped in order by
//! a CancelToken. Networking is async-io's, which works under any executor.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use portasync::prelude::*;
use portasync::rt::Runtime;
use portasync::{
    Backoff, CancelToken, Elapsed, Jitter, Quota, RateLimiter, StopReason, TaskGroup, retry,
    timeout_with,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How to fetch.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) concurrency: usize,
    pub(crate) requests_per_second: u32,
    pub(crate) request_timeout: Duration,
    pub(crate) max_attempts: u32,
}

/// Live counters, for a progress line.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) done: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    pub(crate) retrying: AtomicUsize,
}

/// How one URL ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Fetched { bytes: usize, attempts: u32 },
    Failed { reason: String, attempts: u32 },
}

/// One request's failure.
#[derive(Debug)]
pub(crate) enum FetchError {
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    Io(std::io::Error),
    TimedOut,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status { code, .. } => write!(f, "HTTP {code}"),
            Self::Io(err) => write!(f, "i/o: {err}"),
            Self::TimedOut => f.write_str("timed out"),
        }
    }
}

impl From<Elapsed> for FetchError {
    fn from(_: Elapsed) -> Self {
        Self::TimedOut
    }
}

impl FetchError {
    fn retryable(&self) -> bool {
        !matches!(
            self,
            Self::Status {
                code: 400..=499,
                ..
            }
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One GET over a fresh connection; returns the body.
async fn get(addr: SocketAddr, path: &str) -> Result<Vec<u8>, FetchError> {
    let mut stream = smol::net::TcpStream::connect(addr)
        .await
        .map_err(FetchError::Io)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(FetchError::Io)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(FetchError::Io)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            FetchError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no end of headers",
            ))
        })?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if code != 200 {
        let retry_after = head
            .lines()
            .find_map(|line| line.strip_prefix("Retry-After: "))
            .and_then(|s| s.trim().parse().ok())
            .map(Duration::from_secs);
        return Err(FetchError::Status { code, retry_after });
    }
    Ok(response[split + 4..].to_vec())
}

/// Fetches every path from the server at `addr`; each ends fetched or
/// failed with its reason, in the order given. `stop` ends everything early.
pub(crate) async fn fetch_all<R: Runtime>(
    rt: R,
    addr: SocketAddr,
    paths: Vec<String>,
    config: Config,
    progress: Arc<Progress>,
    stop: CancelToken,
) -> Vec<(String, Outcome)> {
    let limiter =
        RateLimiter::with_timer(Quota::per_second(config.requests_per_second), rt.clone());
    let mut group = TaskGroup::with_runtime(rt.clone()).max_concurrent(config.concurrency);
    for (index, path) in paths.iter().cloned().enumerate() {
        let (rt, limiter, progress, stop, config) = (
            rt.clone(),
            limiter.clone(),
            progress.clone(),
            stop.clone(),
            config.clone(),
        );
        group.spawn(async move {
            let attempts = AtomicUsize::new(0);
            let fetch = retry(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                limiter.acquire().await;
                timeout_with(&rt, config.request_timeout, get(addr, &path)).await?
            })
            .backoff(
                Backoff::exponential(Duration::from_millis(20))
                    .max_delay(Duration::from_millis(400))
                    .jitter(Jitter::Full),
            )
            .max_attempts(config.max_attempts)
            .when(FetchError::retryable)
            .hint(FetchError::retry_after)
            .notify(|_, _| {
                progress.retrying.fetch_add(1, Ordering::Relaxed);
            })
            .timer(rt.clone());
            let result = fetch.cancel_on(&stop).await;
            let attempts = attempts.load(Ordering::Relaxed) as u32;
            let outcome = match result {
                Ok(Ok(body)) => Outcome::Fetched {
                    bytes: body.len(),
                    attempts,
                },
                Ok(Err(err)) => {
                    let why = match err.reason() {
                        StopReason::NotRetryable => "not retryable",
                        _ => "gave up",
                    };
                    Outcome::Failed {
                        reason: format!("{} ({why})", err.error()),
                        attempts,
                    }
                }
                Err(_) => Outcome::Failed {
                    reason: "stopped".to_owned(),
                    attempts,
                },
            };
            let counter = if matches!(outcome, Outcome::Fetched { .. }) {
                &progress.done
            } else {
                &progress.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            (index, outcome)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; paths.len()];
    while let Some(result) = group.join_next().await {
        match result {
            Ok((index, outcome)) => outcomes[index] = Some(outcome),
            Err(err) => std::panic::panic_any(format!("a fetch task failed: {err}")),
        }
    }
    paths
        .into_iter()
        .zip(outcomes)
        .map(|(path, outcome)| (path, outcome.expect("every task reports its outcome")))
        .collect()
}
