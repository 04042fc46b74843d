//! Timeouts and cancel checks beside tokio's, async-io's and tokio-util's,
//! in the same run.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{Criterion, criterion_group, criterion_main};
use futures_lite::future;
use portasync::rt::Smol;
use portasync::{CancelToken, timeout, timeout_at, timeout_with};
use std::future::{Future, pending, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

/// Polls a future once, as an executor would on its first poll.
fn poll_once<F: Future>(future: F) -> bool {
    let future = pin!(future);
    future
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
}

fn timeout_on_a_ready_future(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Inside the runtime's context, as code awaiting a timeout would be.
    let _context = runtime.enter();
    let mut group = c.benchmark_group("timeout_ready");
    let second = Duration::from_secs(1);
    let deadline = Instant::now() + 3600 * second;
    group.bench_function("bare future", |b| b.iter(|| poll_once(ready(black_box(1)))));
    // The floor for anything that fixes its deadline at the call.
    group.bench_function("one clock read (Instant::now)", |b| b.iter(Instant::now));
    group.bench_function("portasync/timeout", |b| {
        b.iter(|| poll_once(timeout(second, ready(black_box(1)))))
    });
    group.bench_function("portasync/timeout_at", |b| {
        b.iter(|| poll_once(timeout_at(deadline, ready(black_box(1)))))
    });
    group.bench_function("portasync/timeout_with(Smol)", |b| {
        let smol = Smol::global();
        b.iter(|| poll_once(timeout_with(&smol, second, ready(black_box(1)))))
    });
    group.bench_function("tokio/timeout", |b| {
        b.iter(|| poll_once(tokio::time::timeout(second, ready(black_box(1)))))
    });
    group.finish();
    drop(_context);
    // Outside any tokio runtime (on smol, say), where `Auto` need not ask
    // tokio whether its clock may be paused.
    let mut group = c.benchmark_group("timeout_ready_outside_tokio");
    group.bench_function("portasync/timeout", |b| {
        b.iter(|| poll_once(timeout(second, ready(black_box(1)))))
    });
    group.finish();
}

fn timeout_that_fires(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeout_fires_1ms");
    group.sample_size(20);
    let ms = Duration::from_millis(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("tokio runtime/portasync", |b| {
        b.iter(|| runtime.block_on(async { timeout(ms, pending::<()>()).await.unwrap_err() }))
    });
    group.bench_function("tokio runtime/tokio", |b| {
        b.iter(|| {
            runtime.block_on(async { tokio::time::timeout(ms, pending::<()>()).await.unwrap_err() })
        })
    });
    let smol = Smol::global();
    group.bench_function("smol/portasync", |b| {
        b.iter(|| {
            smol::block_on(async { timeout_with(&smol, ms, pending::<()>()).await.unwrap_err() })
        })
    });
    group.bench_function("smol/async-io race", |b| {
        b.iter(|| {
            smol::block_on(future::or(pending::<()>(), async {
                async_io::Timer::after(ms).await;
            }))
        })
    });
    group.finish();
}

fn cancel_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("cancel");
    let ours = CancelToken::new();
    let theirs = tokio_util::sync::CancellationToken::new();
    group.bench_function("portasync/is_cancelled", |b| {
        b.iter(|| black_box(&ours).is_cancelled())
    });
    group.bench_function("tokio-util/is_cancelled", |b| {
        b.iter(|| black_box(&theirs).is_cancelled())
    });
    group.bench_function("portasync/poll cancelled() once", |b| {
        b.iter(|| poll_once(black_box(&ours).cancelled()))
    });
    group.bench_function("tokio-util/poll cancelled() once", |b| {
        b.iter(|| poll_once(black_box(&theirs).cancelled()))
    });
    group.bench_function("portasync/child + drop", |b| {
        b.iter(|| drop(black_box(&ours).child()))
    });
    group.bench_function("tokio-util/child + drop", |b| {
        b.iter(|| drop(black_box(&theirs).child_token()))
    });
    group.finish();
}

criterion_group!(
    benches,
    timeout_on_a_ready_future,
    timeout_that_fires,
    cancel_checks
);
criterion_main!(benches);
