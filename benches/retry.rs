//! An operation that succeeds on the first try: what retry adds, beside
//! calling it directly and beside backon, in the same run.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use backon::Retryable;
use criterion::{Criterion, criterion_group, criterion_main};
use portasync::{Backoff, retry};
use std::future::{Future, IntoFuture};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Polls a future once, as an executor would; all of these finish at once.
fn run<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the operation succeeds at once"),
    }
}

async fn fetch(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x) + 1)
}

fn first_try_success(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry_first_try_success");
    group.bench_function("direct call", |b| {
        b.iter(|| run(fetch(black_box(1))).unwrap())
    });
    group.bench_function("portasync/retry", |b| {
        b.iter(|| {
            let backoff =
                Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(5));
            run(retry(|| fetch(black_box(1)))
                .backoff(backoff)
                .max_attempts(5)
                .into_future())
            .unwrap()
        })
    });
    group.bench_function("portasync/retry+when", |b| {
        b.iter(|| {
            run(retry(|| fetch(black_box(1)))
                .when(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound)
                .max_attempts(5)
                .into_future())
            .unwrap()
        })
    });
    group.bench_function("backon/retry", |b| {
        b.iter(|| {
            let backoff = backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(4);
            run((|| fetch(black_box(1))).retry(backoff).into_future()).unwrap()
        })
    });
    group.bench_function("backon/retry+when", |b| {
        b.iter(|| {
            run((|| fetch(black_box(1)))
                .retry(backon::ExponentialBuilder::default().with_max_times(4))
                .when(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound)
                .into_future())
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, first_try_success);
criterion_main!(benches);
