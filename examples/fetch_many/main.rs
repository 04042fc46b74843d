//! Fetches 200 URLs from a deliberately flaky local HTTP server, with every
//! pattern working together: a TaskGroup bounded by `max_concurrent`, a
//! timeout per request, retries with backoff that honour `Retry-After`, a
//! rate limiter, and a CancelToken for an orderly stop.
//!
//! The fetching code is written once, for any `R: Runtime`; pick the
//! executor at run time (its cargo feature must be enabled):
//!
//! ```text
//! cargo run --example fetch_many
//! cargo run --example fetch_many --features tokio -- --runtime tokio
//! cargo run --example fetch_many --features async-std -- --runtime async-std
//! ```
//!
//! Options: `--urls N` (default 200), `--seed S`. Nothing leaves 127.0.0.1,
//! and the run stops itself after 60 seconds at most.

mod client;
mod server;

use client::{Config, Outcome, Progress};
use portasync::CancelToken;
use portasync::rt::{Runtime, Smol};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn main() {
    let mut runtime = "smol".to_owned();
    let mut urls = 200u64;
    let mut seed = 7u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--runtime" => runtime = value(),
            "--urls" => {
                urls = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--urls takes a number"))
            }
            "--seed" => {
                seed = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seed takes a number"))
            }
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    let flakiness = server::Flakiness {
        seed,
        busy: 15,
        hang: 8,
        not_found: 40,
        max_delay_ms: 30,
    };
    let addr = server::start(flakiness);
    println!("flaky server on http://{addr}; fetching {urls} URLs on {runtime}");
    let paths: Vec<String> = (0..urls).map(|i| format!("/item/{i}")).collect();
    let config = Config {
        concurrency: 32,
        requests_per_second: 400,
        request_timeout: Duration::from_millis(250),
        max_attempts: 4,
    };
    let started = Instant::now();
    let outcomes = match runtime.as_str() {
        "smol" => smol::block_on(demo(Smol::global(), addr, paths, config)),
        #[cfg(feature = "tokio")]
        "tokio" => {
            let tokio = tokio::runtime::Runtime::new().expect("a tokio runtime");
            let rt = portasync::rt::Tokio::from_handle(tokio.handle().clone());
            tokio.block_on(demo(rt, addr, paths, config))
        }
        #[cfg(feature = "async-std")]
        "async-std" => {
            async_std::task::block_on(demo(portasync::rt::AsyncStd, addr, paths, config))
        }
        other => usage(&format!(
            "runtime {other:?} is unknown, or its cargo feature is not enabled"
        )),
    };
    summary(&outcomes, started.elapsed());
}

fn usage(problem: &str) -> ! {
    eprintln!("fetch_many: {problem}");
    eprintln!("usage: fetch_many [--runtime smol|tokio|async-std] [--urls N] [--seed S]");
    std::process::exit(2)
}

/// Runs the fetch on `rt` with a live progress line and an overall limit.
async fn demo<R: Runtime>(
    rt: R,
    addr: std::net::SocketAddr,
    paths: Vec<String>,
    config: Config,
) -> Vec<(String, Outcome)> {
    let total = paths.len();
    let progress = Arc::new(Progress::default());
    let stop = CancelToken::new();
    // An orderly stop if the run takes too long: in-flight fetches end as "stopped".
    let limit = {
        let (rt2, stop) = (rt.clone(), stop.clone());
        rt.spawn(async move {
            rt2.sleep(Duration::from_secs(60)).await;
            stop.cancel();
        })
    };
    let reporter = rt.spawn(report(rt.clone(), progress.clone(), total));
    let outcomes = client::fetch_all(rt, addr, paths, config, progress, stop).await;
    drop(limit); // dropping a handle cancels its task
    drop(reporter);
    if std::io::stdout().is_terminal() {
        println!();
    }
    outcomes
}

/// Prints progress: one updating line on a terminal, plain lines otherwise.
async fn report<R: Runtime>(rt: R, progress: Arc<Progress>, total: usize) {
    let terminal = std::io::stdout().is_terminal();
    let mut last = (usize::MAX, 0, 0);
    loop {
        let now = (
            progress.done.load(Ordering::Relaxed),
            progress.failed.load(Ordering::Relaxed),
            progress.retrying.load(Ordering::Relaxed),
        );
        if now != last {
            let (done, failed, retries) = now;
            let line =
                format!("done {done:>4}/{total}  failed {failed:>3}  retries so far {retries:>4}");
            if terminal {
                print!("\r{line}");
                let _ = std::io::stdout().flush();
            } else {
                println!("{line}");
            }
            last = now;
        }
        rt.sleep(Duration::from_millis(if terminal { 100 } else { 500 }))
            .await;
    }
}

fn summary(outcomes: &[(String, Outcome)], elapsed: Duration) {
    let fetched: Vec<_> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Fetched { bytes, attempts } => Some((*bytes, *attempts)),
            Outcome::Failed { .. } => None,
        })
        .collect();
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut attempts: BTreeMap<u32, usize> = BTreeMap::new();
    for (_, outcome) in outcomes {
        let (Outcome::Fetched { attempts: n, .. } | Outcome::Failed { attempts: n, .. }) = outcome;
        *attempts.entry(*n).or_default() += 1;
        if let Outcome::Failed { reason, .. } = outcome {
            *failures.entry(reason).or_default() += 1;
        }
    }
    println!("\n{:<36} {:>6}", "outcome", "URLs");
    println!("{}", "-".repeat(43));
    println!("{:<36} {:>6}", "fetched", fetched.len());
    for (reason, count) in &failures {
        println!("{:<36} {:>6}", format!("failed: {reason}"), count);
    }
    println!("{:<36} {:>6}", "total", outcomes.len());
    println!("\n{:<36} {:>6}", "attempts needed", "URLs");
    println!("{}", "-".repeat(43));
    for (n, count) in &attempts {
        println!("{:<36} {:>6}", n, count);
    }
    let bytes: usize = fetched.iter().map(|(b, _)| b).sum();
    println!("\n{} bytes in {:.2?}", bytes, elapsed);
}
