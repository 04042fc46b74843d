//! The `fetch_many` example's core, run against its flaky local server on
//! every runtime: every URL ends fetched or failed with its reason, none
//! lost, within a time bound.
#![cfg(feature = "smol")]

mod common;

#[path = "../examples/fetch_many/client.rs"]
#[allow(dead_code, unreachable_pub)]
mod client;
#[path = "../examples/fetch_many/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use client::{Config, Outcome, Progress};
use common::{Harness, within};
use portasync::CancelToken;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const URLS: u64 = 60;

async fn fetch_everything<R: portasync::rt::Runtime>(rt: R) {
    // Every 10th item is missing; some first attempts are 503 or hang.
    let flakiness = server::Flakiness {
        seed: 11,
        busy: 15,
        hang: 10,
        not_found: 10,
        max_delay_ms: 10,
    };
    let addr = server::start(flakiness);
    let paths: Vec<String> = (0..URLS).map(|i| format!("/item/{i}")).collect();
    let config = Config {
        concurrency: 8,
        requests_per_second: 1_000,
        request_timeout: Duration::from_millis(300),
        max_attempts: 5,
    };
    let progress = Arc::new(Progress::default());
    let outcomes = within(client::fetch_all(
        rt,
        addr,
        paths.clone(),
        config,
        progress.clone(),
        CancelToken::new(),
    ))
    .await;

    assert_eq!(outcomes.len(), paths.len(), "a URL was lost");
    for ((path, outcome), expected) in outcomes.iter().zip(&paths) {
        assert_eq!(path, expected, "outcomes out of order");
        let item: u64 = path.trim_start_matches("/item/").parse().unwrap();
        match outcome {
            Outcome::Fetched { bytes, attempts } => {
                assert_ne!(item % 10, 9, "{path} should be missing");
                assert!(*bytes > 0 && *attempts >= 1);
            }
            Outcome::Failed { reason, attempts } => {
                assert_eq!(
                    item % 10,
                    9,
                    "{path} failed: {reason} after {attempts} attempts"
                );
                assert_eq!(reason, "HTTP 404 (not retryable)");
                assert_eq!(*attempts, 1, "a 404 is not retried");
            }
        }
    }
    assert_eq!(
        progress.done.load(Ordering::Relaxed) + progress.failed.load(Ordering::Relaxed),
        URLS as usize
    );
    assert!(
        progress.retrying.load(Ordering::Relaxed) > 0,
        "the flaky server caused no retry at all"
    );
}

#[test]
fn on_smol() {
    common::SmolGlobal::run(fetch_everything);
}

#[cfg(feature = "tokio")]
#[test]
fn on_tokio() {
    common::Tokio::run(fetch_everything);
}

#[cfg(feature = "async-std")]
#[test]
fn on_async_std() {
    common::AsyncStd::run(fetch_everything);
}

/// Cancelling the token stops every fetch in order: each URL is reported
/// "stopped" (or already finished), none lost.
#[test]
fn an_orderly_stop() {
    common::SmolGlobal::run(|rt| async move {
        // Every request hangs on its first two attempts: nothing can finish fast.
        let flakiness = server::Flakiness {
            seed: 3,
            busy: 0,
            hang: 100,
            not_found: 0,
            max_delay_ms: 0,
        };
        let addr = server::start(flakiness);
        let paths: Vec<String> = (0..20).map(|i| format!("/item/{i}")).collect();
        let config = Config {
            concurrency: 4,
            requests_per_second: 1_000,
            request_timeout: Duration::from_secs(30),
            max_attempts: 3,
        };
        let stop = CancelToken::new();
        let stopper = stop.clone();
        let timer = rt.clone();
        portasync::rt::Spawn::spawn(&rt, async move {
            portasync::rt::Timer::sleep(&timer, Duration::from_millis(50)).await;
            stopper.cancel();
        })
        .detach();
        let outcomes = within(client::fetch_all(
            rt,
            addr,
            paths,
            config,
            Arc::new(Progress::default()),
            stop,
        ))
        .await;
        assert_eq!(outcomes.len(), 20);
        assert!(
            outcomes
                .iter()
                .all(|(_, o)| matches!(o, Outcome::Failed { reason, .. } if reason == "stopped"))
        );
    });
}
