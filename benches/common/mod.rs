//! Baselines that more than one bench sets beside portasync.

use std::hint::black_box;

/// How many trivial tasks the spawn benches start.
pub(crate) const TASKS: u64 = 10_000;

/// The raw smol baseline: `TASKS` trivial tasks through `smol::spawn` (the
/// global executor's threads run them), their handles kept in a `Vec` and
/// awaited in order, summed.
pub(crate) async fn smol_spawn_vec_sum() -> u64 {
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| smol::spawn(async move { black_box(i) }))
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await;
    }
    sum
}
