//! A tour of portasync on smol, one short section per pattern.
//!
//! Run it with `cargo run --example tour`.

use portasync::rt::{Auto, Runtime, Smol, Spawn, Timer};
use std::time::Duration;

fn main() {
    smol::block_on(async {
        runtime_layer().await;
    });
}

/// Spawning, cancelling and sleeping through the executor-neutral traits.
async fn runtime_layer() {
    println!("== runtime layer ==");

    // Code written against `R: Runtime` runs on whichever executor it is given.
    let sum = parallel_sum(&Smol::global(), (1..=1_000).collect()).await;
    println!("sum of 1..=1000 on smol, in four tasks: {sum}");

    // `Auto` picks the executor per call: smol here, tokio inside a tokio runtime.
    let blocking = Auto.spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    println!("spawn_blocking ran on thread {:?}", blocking.await.unwrap());

    // Dropping a handle cancels its task, on every runtime.
    let (tx, rx) = async_channel::bounded::<()>(1);
    let forever = portasync::spawn(async move {
        let _tx = tx; // closes the channel when the task is dropped
        std::future::pending::<()>().await
    });
    drop(forever);
    println!(
        "dropping the handle cancelled the task: {}",
        rx.recv().await.is_err()
    );

    // A panic arrives at the handle instead of killing an executor thread.
    // (The default hook would print it as well; keep the tour's output tidy.)
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let err = portasync::spawn(async { panic!("tour panic") })
        .await
        .unwrap_err();
    std::panic::set_hook(hook);
    println!("a panicking task gives: {err}");

    let start = Auto.now();
    portasync::sleep(Duration::from_millis(20)).await;
    println!("slept {:?} (asked for 20ms)", Auto.now() - start);
}

async fn parallel_sum<R: Runtime>(rt: &R, numbers: Vec<u64>) -> u64 {
    let chunks: Vec<Vec<u64>> = numbers
        .chunks(numbers.len().div_ceil(4))
        .map(<[u64]>::to_vec)
        .collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| rt.spawn(async move { chunk.iter().sum::<u64>() }))
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("summing tasks do not panic");
    }
    total
}
