//! Spawn and await 10,000 trivial tasks: portasync's uniform handle beside
//! each runtime's own spawn, in the same run.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{Criterion, criterion_group, criterion_main};
use portasync::rt::{Smol, Spawn, Tokio};
use std::hint::black_box;

mod common;
use common::TASKS;

fn spawn_and_await(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_await_10k");
    group.sample_size(30);

    // smol's global executor: its threads run the tasks, this one waits.
    group.bench_function("smol/raw", |b| {
        b.iter(|| smol::block_on(common::smol_spawn_vec_sum()))
    });
    group.bench_function("smol/portasync", |b| {
        let rt = Smol::global();
        b.iter(|| {
            smol::block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| rt.spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for task in tasks {
                    sum += task.await.unwrap();
                }
                sum
            })
        })
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("tokio/raw", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| tokio::spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for task in tasks {
                    sum += task.await.unwrap();
                }
                sum
            })
        })
    });
    group.bench_function("tokio/portasync", |b| {
        let rt = Tokio::from_handle(runtime.handle().clone());
        b.iter(|| {
            runtime.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| rt.spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for task in tasks {
                    sum += task.await.unwrap();
                }
                sum
            })
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_and_await);
criterion_main!(benches);
