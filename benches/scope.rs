//! Scoped spawn beside its peers, in the same run:
//!
//! - `scope` with 1,000 children beside `FuturesUnordered` polling the same
//!   futures (both in place, on this thread): outputs through handles, and
//!   results written to a borrowed counter with the handles dropped;
//! - `scope_blocking` summing a large slice in 4 chunks beside
//!   `std::thread::scope` with 4 threads (smol executor with 4 threads).
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{Criterion, criterion_group, criterion_main};
use futures_lite::future::{block_on, yield_now};
use futures_util::stream::{FuturesUnordered, StreamExt};
use portasync::rt::Smol;
use portasync::{scope, scope_blocking};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const CHILDREN: u64 = 1_000;

/// The child both sides run: waits once, then answers.
async fn child(i: u64) -> u64 {
    yield_now().await;
    black_box(i)
}

async fn add_to(i: u64, total: &AtomicU64) {
    yield_now().await;
    total.fetch_add(black_box(i), Ordering::Relaxed);
}

fn children(c: &mut Criterion) {
    let mut group = c.benchmark_group("1000_children");
    group.bench_function("outputs/scope", |b| {
        b.iter(|| {
            block_on(scope(async |s| {
                let handles: Vec<_> = (0..CHILDREN).map(|i| s.spawn(child(i))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await;
                }
                sum
            }))
        })
    });
    group.bench_function("outputs/FuturesUnordered", |b| {
        b.iter(|| {
            block_on(async {
                let mut all: FuturesUnordered<_> = (0..CHILDREN).map(child).collect();
                let mut sum = 0;
                while let Some(out) = all.next().await {
                    sum += out;
                }
                sum
            })
        })
    });
    group.bench_function("borrowing/scope", |b| {
        b.iter(|| {
            let total = AtomicU64::new(0);
            block_on(scope(async |s| {
                for i in 0..CHILDREN {
                    s.spawn(add_to(i, &total)).detach();
                }
            }));
            total.into_inner()
        })
    });
    group.bench_function("borrowing/FuturesUnordered", |b| {
        b.iter(|| {
            let total = AtomicU64::new(0);
            block_on(async {
                let mut all: FuturesUnordered<_> =
                    (0..CHILDREN).map(|i| add_to(i, &total)).collect();
                while all.next().await.is_some() {}
            });
            total.into_inner()
        })
    });
    group.finish();
}

/// A smol executor run by `threads` threads for the rest of the process.
fn executor(threads: usize) -> Smol {
    let executor = Arc::new(async_executor::Executor::new());
    for _ in 0..threads {
        let executor = executor.clone();
        std::thread::spawn(move || block_on(executor.run(std::future::pending::<()>())));
    }
    Smol::new(executor)
}

fn parallel_sum(c: &mut Criterion) {
    const LEN: usize = 1 << 22; // 32 MiB of u64
    const CHUNKS: usize = 4;
    let data: Vec<u64> = (0..LEN as u64).collect();
    let chunk = LEN / CHUNKS;
    let rt = executor(CHUNKS);

    let mut group = c.benchmark_group("sum_4_chunks");
    group.sample_size(30);
    group.bench_function("scope_blocking", |b| {
        b.iter(|| {
            scope_blocking(&rt, |s| {
                let handles: Vec<_> = data
                    .chunks(chunk)
                    .map(|part| s.spawn(async move { part.iter().sum::<u64>() }))
                    .collect();
                handles.into_iter().map(|h| h.join()).sum::<u64>()
            })
        })
    });
    group.bench_function("std::thread::scope", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = data
                    .chunks(chunk)
                    .map(|part| s.spawn(move || part.iter().sum::<u64>()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
        })
    });
    group.bench_function("sequential", |b| b.iter(|| data.iter().sum::<u64>()));
    group.finish();
}

criterion_group!(benches, children, parallel_sum);
criterion_main!(benches);
