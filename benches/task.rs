//! Spawn and join 10,000 trivial tasks through a TaskGroup beside raw
//! spawning (smol, and async-std with its feature) and tokio's JoinSet;
//! join_all beside futures' join_all; all in the same run.
//!
//! The raw smol row varies more from one run to the next than within one:
//! its spawning loop fights smol's executor thread for the executor's task
//! registry lock, and how that fight goes settles early in a run. On the
//! 2-core development machine its median ranged from 3.7 to 5.7 ms over
//! eighteen runs, so compare the two rows over several runs. (The group,
//! spawning from `block_on`'s thread, hands its children to a launcher task
//! on the executor past the first 64, and stays out of that fight.)
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{Criterion, criterion_group, criterion_main};
use portasync::TaskGroup;
use portasync::rt::{Smol, Spawn, Tokio};
use std::future::ready;
use std::hint::black_box;

mod common;
use common::TASKS;

/// Spawns TASKS trivial tasks into a TaskGroup on `rt` and sums them as they finish.
async fn group_sum<R: Spawn>(rt: R) -> u64 {
    let mut tasks = TaskGroup::with_runtime(rt);
    for i in 0..TASKS {
        tasks.spawn(async move { black_box(i) });
    }
    let mut sum = 0;
    while let Some(result) = tasks.join_next().await {
        sum += result.unwrap();
    }
    sum
}

fn groups(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join_10k");
    group.sample_size(30);
    group.bench_function("smol/raw spawn + Vec", |b| {
        b.iter(|| smol::block_on(common::smol_spawn_vec_sum()))
    });
    group.bench_function("smol/TaskGroup", |b| {
        b.iter(|| smol::block_on(group_sum(Smol::global())))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("tokio/JoinSet", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..TASKS {
                    tasks.spawn(async move { black_box(i) });
                }
                let mut sum = 0;
                while let Some(result) = tasks.join_next().await {
                    sum += result.unwrap();
                }
                sum
            })
        })
    });
    group.bench_function("tokio/TaskGroup", |b| {
        b.iter(|| runtime.block_on(group_sum(Tokio::from_handle(runtime.handle().clone()))))
    });
    #[cfg(feature = "async-std")]
    {
        group.bench_function("async-std/raw spawn + Vec", |b| {
            b.iter(|| {
                async_std::task::block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|i| async_std::task::spawn(async move { black_box(i) }))
                        .collect();
                    let mut sum = 0;
                    for task in tasks {
                        sum += task.await;
                    }
                    sum
                })
            })
        });
        group.bench_function("async-std/TaskGroup", |b| {
            b.iter(|| async_std::task::block_on(group_sum(portasync::rt::AsyncStd)))
        });
    }
    group.finish();
}

fn combinators(c: &mut Criterion) {
    let mut group = c.benchmark_group("join_all_10k_ready");
    group.bench_function("futures::join_all", |b| {
        b.iter(|| {
            futures_lite::future::block_on(futures::future::join_all(
                (0..TASKS).map(|i| ready(black_box(i))),
            ))
        })
    });
    group.bench_function("portasync::join_all", |b| {
        b.iter(|| {
            futures_lite::future::block_on(portasync::join_all(
                (0..TASKS).map(|i| ready(black_box(i))),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, groups, combinators);
criterion_main!(benches);
