//! A tour of portasync on smol, one short section per pattern.
//!
//! Run it with `cargo run --example tour`.

use futures_lite::StreamExt;
use portasync::prelude::*;
use portasync::rt::{Auto, Runtime, Smol, Spawn, Timer};
use portasync::{
    Backoff, CancelToken, Deadline, Jitter, RetryPolicy, Semaphore, StopReason, TaskGroup,
    interval, join_all, race, retry, timeout,
};
use portasync::{KeyedRateLimiter, Quota, RateLimiter, SlidingWindow, throttle};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

fn main() {
    smol::block_on(async {
        runtime_layer().await;
        timeouts().await;
        semaphores().await;
        retries().await;
        task_groups().await;
        rate_limits().await;
        scoped_spawn().await;
    });
    scoped_blocking();
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

/// Time limits: one await, a shared movable deadline, ticks, cancel tokens.
async fn timeouts() {
    println!("\n== timeouts ==");
    let ms = Duration::from_millis;

    // asyncio.wait_for: a limit on one await. A ready result always wins.
    let slow = async {
        portasync::sleep(ms(200)).await;
        "slow answer"
    };
    println!(
        "200ms of work with a 20ms limit: {:?}",
        timeout(ms(20), slow).await
    );
    println!(
        "ready work with a zero limit: {:?}",
        async { "instant" }.timeout(Duration::ZERO).await
    );

    // asyncio.timeout() with reschedule: one deadline for several steps,
    // extended while they run.
    let deadline = Deadline::after(ms(30));
    let extender = deadline.clone();
    let steps = async {
        for step in 1..=3 {
            portasync::sleep(ms(15)).await;
            println!("  step {step} done");
            extender.reschedule(Some(Auto.now() + ms(30))); // made progress: more time
        }
    };
    println!(
        "three 15ms steps under a 30ms deadline that grows: {:?}",
        deadline.run(steps).await
    );

    // Ticks on a fixed schedule, without drift.
    let mut ticks = interval(ms(10));
    let first = ticks.tick().await;
    let mut last = first;
    for _ in 0..3 {
        last = ticks.tick().await;
    }
    println!("four ticks 10ms apart span {:?} of schedule", last - first);

    // Task.cancel() for a whole tree of work: cancel the parent, every child stops.
    let shutdown = CancelToken::new();
    let workers: Vec<_> = (0..3)
        .map(|id| {
            let token = shutdown.child();
            portasync::spawn(async move {
                let mut done = 0u32;
                let work = async {
                    loop {
                        portasync::sleep(ms(5)).await;
                        done += 1;
                    }
                };
                let _ = work.cancel_on(&token).await;
                format!("worker {id} stopped after {done} rounds")
            })
        })
        .collect();
    portasync::sleep(ms(30)).await;
    shutdown.cancel();
    for worker in workers {
        println!("  {}", worker.await.unwrap());
    }
}

/// Bounded concurrent work: a fair, weighted, resizable, closable semaphore.
async fn semaphores() {
    println!("\n== semaphore ==");

    // Ten jobs, at most three at once (asyncio's `Semaphore(3)`).
    let limit = Arc::new(Semaphore::new(3));
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let jobs: Vec<_> = (0..10)
        .map(|i| {
            let (limit, running, peak) = (limit.clone(), running.clone(), peak.clone());
            portasync::spawn(async move {
                let _permit = limit.acquire().await.expect("not closed");
                peak.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                portasync::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, SeqCst);
                i * i
            })
        })
        .collect();
    let mut squares = Vec::new();
    for job in jobs {
        squares.push(job.await.unwrap());
    }
    println!(
        "10 jobs with a limit of 3: at most {} ran at once; {squares:?}",
        peak.load(SeqCst)
    );

    // Weighted and strictly fair: a job that needs all three permits waits at
    // the head of the queue, collecting permits as they come back, and nobody
    // overtakes it, not even `try_acquire`.
    let two = limit.acquire_many(2).await.unwrap();
    let mut big = limit.acquire_many(3);
    let waiting = futures_lite::future::poll_once(&mut big).await.is_none();
    println!(
        "a job for 3 permits waits: {waiting}; free now: {}; try_acquire: {:?}",
        limit.available_permits(),
        limit.try_acquire().err()
    );
    drop(two);
    let all = big.await.unwrap();
    println!("after the release it holds {} permits", all.num_permits());
    drop(all);

    // Resizable at run time, like trio's `CapacityLimiter.total_tokens`.
    limit.set_capacity(5);
    println!(
        "capacity raised to {}: {} free",
        limit.capacity(),
        limit.available_permits()
    );

    // Closing fails every pending and later acquire; held permits stay valid.
    limit.close();
    println!("after close(): {}", limit.acquire().await.unwrap_err());
}

/// A simulated flaky service: busy (with a Retry-After hint), or down, or fine.
#[derive(Debug)]
enum ServiceError {
    Busy { retry_after: Duration },
    Unavailable,
    NotFound,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy { retry_after } => write!(f, "busy, retry after {retry_after:?}"),
            Self::Unavailable => f.write_str("service unavailable"),
            Self::NotFound => f.write_str("not found"),
        }
    }
}

/// Retry with backoff, jitter, a server's hint, and a policy shared by call sites.
async fn retries() {
    println!("\n== retry ==");
    let ms = Duration::from_millis;
    // One policy for every call to this service.
    let policy = RetryPolicy::default()
        .backoff(
            Backoff::exponential(ms(5))
                .max_delay(ms(40))
                .jitter(Jitter::Full),
        )
        .max_attempts(6);

    // The service answers: unavailable, busy (retry after 15ms), then fine.
    let mut answers = vec![
        Ok("the page"),
        Err(ServiceError::Busy {
            retry_after: ms(15),
        }),
        Err(ServiceError::Unavailable),
    ];
    let start = Auto.now();
    let page = retry(|| {
        let answer = answers.pop().expect("asked too often");
        async move { answer }
    })
    .policy(policy.clone())
    .hint(|e: &ServiceError| match e {
        ServiceError::Busy { retry_after } => Some(*retry_after),
        _ => None,
    })
    .when(|e: &ServiceError| !matches!(e, ServiceError::NotFound))
    .notify(|e: &ServiceError, delay| println!("  attempt failed ({e}); retrying in {delay:?}"))
    .await;
    println!(
        "got {:?} after {:?}",
        page.map_err(|e| e.to_string()),
        Auto.now() - start
    );

    // A missing page is not worth retrying: it stops at once.
    let missing = retry(|| async { Err::<(), _>(ServiceError::NotFound) })
        .policy(policy)
        .when(|e: &ServiceError| !matches!(e, ServiceError::NotFound))
        .await
        .unwrap_err();
    assert_eq!(missing.reason(), StopReason::NotRetryable);
    println!("{missing}");
}

/// Task groups: bounded concurrency, fail-fast, graceful shutdown; and the
/// in-place combinators.
async fn task_groups() {
    println!("\n== task group ==");
    let ms = Duration::from_millis;

    // Ten jobs, at most three at a time; results in spawn order.
    let mut group = TaskGroup::new().max_concurrent(3);
    for job in 1..=10u64 {
        group.spawn(async move {
            portasync::sleep(ms(2 * (11 - job))).await; // later jobs are quicker
            job * job
        });
    }
    println!("squares, three at a time: {:?}", group.join().await);

    // Fail fast: the first error cancels the siblings still running.
    let mut group = TaskGroup::new();
    group.spawn(async { Ok("fetched a") });
    group.spawn(async move {
        portasync::sleep(ms(5)).await;
        Err("b: connection reset")
    });
    group.spawn(async move {
        portasync::sleep(ms(10_000)).await;
        Ok("fetched c, eventually")
    });
    match group.try_join().await {
        Ok(pages) => println!("all fetched: {pages:?}"),
        Err(err) => println!("try_join: {err}"),
    }

    // Background workers with an orderly stop: watch the token, get a grace period.
    let mut workers = TaskGroup::new();
    for id in 0..3 {
        let stop = workers.token();
        workers.spawn(async move {
            let mut rounds = 0u32;
            // The token is checked between units of work, so a unit in
            // progress is finished, not cut (`cancel_on` would cut it).
            while !stop.is_cancelled() {
                if id == 2 {
                    std::future::pending::<()>().await; // a worker that never checks
                }
                portasync::sleep(ms(3)).await; // a unit of work
                rounds += 1;
            }
            rounds
        });
    }
    portasync::sleep(ms(20)).await;
    let report = workers.shutdown_graceful(ms(50)).await;
    println!(
        "graceful shutdown: {} finished on their own, {} aborted",
        report.finished().len(),
        report.aborted()
    );

    // asyncio.gather and asyncio.wait(FIRST_COMPLETED), in place, no spawning.
    let lengths = join_all(["a", "bb", "ccc"].map(|s| async move { s.len() })).await;
    println!("join_all: {lengths:?}");
    let quick = portasync::sleep(ms(1));
    let slow = portasync::sleep(ms(1_000));
    let (winner, ()) = race([quick, slow]).await;
    println!("race: sleep #{winner} finished first");
}

/// Rate limits: an exact GCRA with fair waiting, a throttled stream, one
/// limit per key, and a strict sliding window.
async fn rate_limits() {
    println!("\n== rate limit ==");
    let since = |start: std::time::Instant| (Auto.now() - start).as_millis();

    // aiolimiter's `async with AsyncLimiter(20, 1):`, with bursts of 5.
    let limiter = RateLimiter::new(Quota::per_second(20).burst(5));
    let start = Auto.now();
    for cell in 0..8 {
        limiter.acquire().await;
        println!("  cell {cell} at {:>3} ms", since(start));
    }
    // `check` answers at once, with the exact time to come back.
    match limiter.check() {
        Ok(()) => println!("check: allowed"),
        Err(refused) => println!("check: refused, retry in {:?}", refused.wait_time()),
    }

    // A stream can be paced by the same kind of limiter. (Concurrent
    // waiters are served in the order they arrived, each woken once.)
    let paced = throttle(
        futures_lite::stream::iter(["a", "b", "c"]),
        &RateLimiter::new(Quota::per_second(10).burst(1)),
    );
    let mut paced = std::pin::pin!(paced);
    let start = Auto.now();
    while let Some(item) = paced.next().await {
        println!("  throttled item {item:?} at {:>3} ms", since(start));
    }

    // One limit per key: per user, per client address.
    let per_client = KeyedRateLimiter::new(Quota::per_minute(2));
    for client in ["alice", "alice", "alice", "bob"] {
        let verdict = if per_client.check(&client).is_ok() {
            "allowed"
        } else {
            "limited"
        };
        println!("  {client}: {verdict}");
    }

    // The strict "at most n in any window" of the asyncio recipe.
    let window = SlidingWindow::new(3, Duration::from_millis(100));
    let admitted = (0..5).filter(|_| window.check().is_ok()).count();
    println!("sliding window of 3 per 100ms: {admitted} of 5 admitted at once");
    let start = Auto.now();
    window.acquire().await;
    println!(
        "the 4th waited {} ms for the first to leave the window",
        since(start)
    );
}

/// Children that borrow the caller's data: `scope` (concurrent, in place),
/// `scope_boxed` (the same, `Send`, inside a spawned task).
async fn scoped_spawn() {
    println!("\n== scoped spawn ==");
    let words = ["alpha", "beta", "gamma"];
    let seen = AtomicUsize::new(0);
    let total = portasync::scope(async |s| {
        let handles: Vec<_> = words
            .iter()
            .map(|w| {
                s.spawn(async {
                    seen.fetch_add(1, SeqCst);
                    w.len()
                })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await;
        }
        total
    })
    .await;
    println!(
        "scope: {} children borrowed `words`, total length {total}",
        seen.load(SeqCst)
    );

    let data: Vec<u64> = (1..=100).collect();
    let sum = portasync::spawn(async move {
        let data = &data;
        portasync::scope_boxed(|s| {
            Box::pin(async move {
                let (left, right) = data.split_at(50);
                let a = s.spawn(async move { left.iter().sum::<u64>() });
                let b = s.spawn(async move { right.iter().sum::<u64>() });
                a.await + b.await
            })
        })
        .await
    })
    .await
    .unwrap();
    println!("scope_boxed in a spawned task: sum of 1..=100 = {sum}");

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let (tx, rx) = async_channel::bounded::<()>(1);
    let outcome = futures_lite::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        portasync::scope(async |s| {
            s.spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await
            })
            .detach();
            s.spawn(async { panic!("child failed") }).await
        }),
    ))
    .await;
    std::panic::set_hook(hook);
    println!(
        "a child's panic reached the caller: {}; its sibling was dropped first: {}",
        outcome.is_err(),
        rx.is_closed()
    );
}

/// `scope_blocking`: parallel children on the runtime's threads that borrow
/// the caller's stack; it blocks, so it is called outside any executor.
fn scoped_blocking() {
    let mut data: Vec<u64> = (1..=1_000_000).collect();
    let sum = portasync::scope_blocking(&Smol::global(), |s| {
        let handles: Vec<_> = data
            .chunks_mut(250_000)
            .map(|chunk| {
                s.spawn(async move {
                    chunk.iter_mut().for_each(|n| *n *= 2);
                    chunk.iter().sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).sum::<u64>()
    });
    println!(
        "scope_blocking: doubled 1..=1000000 in place in 4 children, sum {sum}; data[0] = {}",
        data[0]
    );
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
