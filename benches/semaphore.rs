//! portasync's `Semaphore` beside tokio's and async-lock's, in the same run.
//!
//! - `uncontended`: acquire one permit (one poll, no executor) and drop it.
//! - `contended-*/{64,1024}`: that many tasks on two threads share 8
//!   permits; each takes a permit once and yields once while holding it (the
//!   bounded-concurrency pattern). portasync and tokio's semaphore on a
//!   2-worker tokio runtime; portasync and async-lock's on a smol executor
//!   run by two threads.
//! - `contended-*-4rounds`: the same, but each task takes a permit four times
//!   in a loop. Here async-lock's semaphore, which is not fair, lets a task
//!   that just released take its permit straight back while others wait; a
//!   strictly FIFO semaphore (portasync's, tokio's) sends it to the back of
//!   the queue, which costs a task switch per round.
//!
//! `cargo bench --bench semaphore -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const PERMITS: usize = 8;

/// Polls `future` once; it must be ready (nothing contends here).
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("an uncontended acquire is ready at once"),
    }
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("semaphore/uncontended");
    let portasync = portasync::Semaphore::new(PERMITS);
    group.bench_function("portasync", |b| {
        b.iter(|| drop(black_box(now(portasync.acquire()).unwrap())))
    });
    let tokio = tokio::sync::Semaphore::new(PERMITS);
    group.bench_function("tokio", |b| {
        b.iter(|| drop(black_box(now(tokio.acquire()).unwrap())))
    });
    let async_lock = async_lock::Semaphore::new(PERMITS);
    group.bench_function("async-lock", |b| {
        b.iter(|| drop(black_box(now(async_lock.acquire()))))
    });
    group.finish();
}

/// Spawns `tasks` tasks that each take a permit `rounds` times, yielding
/// while they hold it, and waits for them all.
macro_rules! contend {
    ($spawn:expr, $join:expr, $semaphore:expr, $tasks:expr, $rounds:expr, $acquire:ident, $yield:expr) => {{
        let handles: Vec<_> = (0..$tasks)
            .map(|_| {
                let semaphore = $semaphore.clone();
                $spawn(async move {
                    for _ in 0..$rounds {
                        let permit = semaphore.$acquire().await;
                        $yield.await;
                        drop(black_box(permit));
                    }
                })
            })
            .collect();
        for handle in handles {
            $join(handle).await;
        }
    }};
}

fn contended_tokio(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    for (name, rounds) in [("contended-tokio", 1), ("contended-tokio-4rounds", 4)] {
        let mut group = c.benchmark_group(format!("semaphore/{name}"));
        for tasks in [64usize, 1024] {
            let portasync = Arc::new(portasync::Semaphore::new(PERMITS));
            group.bench_with_input(BenchmarkId::new("portasync", tasks), &tasks, |b, &tasks| {
                b.iter(|| {
                    runtime.block_on(async {
                        contend!(
                            tokio::spawn,
                            |h: tokio::task::JoinHandle<()>| async { h.await.unwrap() },
                            portasync,
                            tasks,
                            rounds,
                            acquire,
                            tokio::task::yield_now()
                        )
                    })
                })
            });
            let tokio = Arc::new(tokio::sync::Semaphore::new(PERMITS));
            group.bench_with_input(BenchmarkId::new("tokio", tasks), &tasks, |b, &tasks| {
                b.iter(|| {
                    runtime.block_on(async {
                        contend!(
                            tokio::spawn,
                            |h: tokio::task::JoinHandle<()>| async { h.await.unwrap() },
                            tokio,
                            tasks,
                            rounds,
                            acquire,
                            tokio::task::yield_now()
                        )
                    })
                })
            });
        }
        group.finish();
    }
}

fn contended_smol(c: &mut Criterion) {
    let executor = Arc::new(async_executor::Executor::<'static>::new());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (executor, stopped) = (executor.clone(), stopped.clone());
            std::thread::spawn(move || smol::block_on(executor.run(stopped.recv())))
        })
        .collect();

    for (name, rounds) in [("contended-smol", 1), ("contended-smol-4rounds", 4)] {
        let mut group = c.benchmark_group(format!("semaphore/{name}"));
        for tasks in [64usize, 1024] {
            let portasync = Arc::new(portasync::Semaphore::new(PERMITS));
            group.bench_with_input(BenchmarkId::new("portasync", tasks), &tasks, |b, &tasks| {
                b.iter(|| {
                    smol::block_on(async {
                        contend!(
                            |f| executor.spawn(f),
                            |h: async_executor::Task<()>| h,
                            portasync,
                            tasks,
                            rounds,
                            acquire,
                            futures_lite::future::yield_now()
                        )
                    })
                })
            });
            let async_lock = Arc::new(async_lock::Semaphore::new(PERMITS));
            group.bench_with_input(
                BenchmarkId::new("async-lock", tasks),
                &tasks,
                |b, &tasks| {
                    b.iter(|| {
                        smol::block_on(async {
                            contend!(
                                |f| executor.spawn(f),
                                |h: async_executor::Task<()>| h,
                                async_lock,
                                tasks,
                                rounds,
                                acquire,
                                futures_lite::future::yield_now()
                            )
                        })
                    })
                },
            );
        }
        group.finish();
    }
    drop(stop);
    for thread in threads {
        let _ = thread.join();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = uncontended, contended_tokio, contended_smol
}
criterion_main!(benches);
