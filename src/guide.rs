//! From asyncio and trio to portasync: each idiom beside its counterpart.
//!
//! This module holds no code, only this page. Every example runs (as a
//! doctest) on smol; the same code runs on tokio or async-std when the
//! application enables that feature, because none of it names a runtime.
//!
//! | asyncio / trio | portasync or smol-rs |
//! |---|---|
//! | `asyncio.wait_for(aw, t)`, trio `fail_after` | [`timeout`](crate::timeout), `fut.timeout(t)` |
//! | `async with asyncio.timeout(t) as cm: cm.reschedule(..)` | [`Deadline`](crate::Deadline) |
//! | `asyncio.gather(*aws)` | [`join_all`](crate::join_all), [`try_join_all`](crate::try_join_all) |
//! | `asyncio.gather(*aws, return_exceptions=True)` | [`join_all`](crate::join_all) of futures returning `Result` |
//! | `asyncio.create_task` + a set of tasks + shutdown | [`TaskGroup`](crate::TaskGroup) with [`shutdown_graceful`](crate::TaskGroup::shutdown_graceful) |
//! | `async with asyncio.TaskGroup()`, trio nursery | [`TaskGroup::try_join`](crate::TaskGroup::try_join), [`scope`](crate::scope) |
//! | `asyncio.Semaphore`, trio `CapacityLimiter` | [`Semaphore`](crate::Semaphore), [`TaskGroup::max_concurrent`](crate::TaskGroup::max_concurrent) |
//! | sliding-window limiter ("n per period") | [`SlidingWindow`](crate::SlidingWindow), [`RateLimiter`](crate::RateLimiter) |
//! | tenacity `@retry(wait=wait_exponential())` | [`retry`](crate::retry) |
//! | `asyncio.Queue`, `Lock` | [async-channel], [async-lock] |
//! | `asyncio.Event` (a flag that stays set) | [`CancelToken`](crate::CancelToken) |
//! | `asyncio.Condition` (wake whoever waits now) | [event-listener], with a flag or a lock |
//! | `loop.run_in_executor`, `asyncio.to_thread` | [`spawn_blocking`](crate::spawn_blocking) |
//! | `asyncio.wait(aws, return_when=FIRST_COMPLETED)` | [`race`](crate::race) (the others are dropped, not left running) |
//! | `task.cancel()`, trio `CancelScope.cancel()` | [`JoinHandle::abort`](crate::JoinHandle::abort), [`CancelToken`](crate::CancelToken) |
//!
//! [async-channel]: https://docs.rs/async-channel
//! [async-lock]: https://docs.rs/async-lock
//! [event-listener]: https://docs.rs/event-listener
//!
//! # `wait_for`: a limit on one await
//!
//! asyncio cancels the awaitable and raises `TimeoutError`; here the inner
//! future is dropped and the result is `Err(Elapsed)`. A result that is
//! ready is never thrown away.
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use portasync::prelude::*;
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let slow = portasync::sleep(Duration::from_secs(10));
//!     assert!(slow.timeout(Duration::from_millis(5)).await.is_err());
//! });
//! # }
//! ```
//!
//! # `asyncio.timeout()`: one deadline over several steps, movable
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use portasync::Deadline;
//! use std::time::{Duration, Instant};
//!
//! smol::block_on(async {
//!     let deadline = Deadline::after(Duration::from_millis(50));
//!     let steps = async {
//!         portasync::sleep(Duration::from_millis(1)).await;
//!         // More time, granted while the steps run: the run sees it at once.
//!         deadline.reschedule(Some(Instant::now() + Duration::from_secs(1)));
//!         portasync::sleep(Duration::from_millis(1)).await;
//!     };
//!     assert!(deadline.run(steps).await.is_ok());
//! });
//! # }
//! ```
//!
//! # `gather`, with and without `return_exceptions`
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! async fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
//!     s.parse()
//! }
//!
//! smol::block_on(async {
//!     // gather(*aws): the first error is returned; unlike gather, which
//!     // lets the others run on, they are dropped (cancelled) at once.
//!     assert!(portasync::try_join_all(["1", "x"].map(parse)).await.is_err());
//!     // gather(*aws, return_exceptions=True): every result, errors included.
//!     let all = portasync::join_all(["1", "x"].map(parse)).await;
//!     assert!(all[0].is_ok() && all[1].is_err());
//! });
//! # }
//! ```
//!
//! # `create_task` with a tracked set and an orderly shutdown
//!
//! Background workers that watch a token and get a grace period to finish:
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use portasync::TaskGroup;
//! use portasync::prelude::*;
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let mut workers = TaskGroup::new();
//!     for _ in 0..3 {
//!         let stop = workers.token();
//!         workers.spawn(async move {
//!             let serve = async {
//!                 loop {
//!                     portasync::sleep(Duration::from_millis(1)).await; // a unit of work
//!                 }
//!             };
//!             // Woken by the cancel, it stops at its next await.
//!             let _: Result<(), _> = serve.cancel_on(&stop).await;
//!         });
//!     }
//!     let report = workers.shutdown_graceful(Duration::from_secs(1)).await;
//!     assert_eq!((report.finished().len(), report.aborted()), (3, 0));
//! });
//! # }
//! ```
//!
//! # `asyncio.TaskGroup` and trio nurseries
//!
//! The first failure cancels the siblings; dropping the group cancels
//! everything in it.
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! smol::block_on(async {
//!     let mut group = portasync::TaskGroup::new();
//!     group.spawn(async { Ok(1) });
//!     group.spawn(async { Err("failed") });
//!     assert_eq!(*group.try_join().await.unwrap_err().first(), "failed");
//! });
//! # }
//! ```
//!
//! # `Semaphore`
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! smol::block_on(async {
//!     let semaphore = portasync::Semaphore::new(2);
//!     let permit = semaphore.acquire().await.unwrap();
//!     assert_eq!(semaphore.available_permits(), 1);
//!     drop(permit);
//!     assert_eq!(semaphore.available_permits(), 2);
//! });
//! # }
//! ```
//!
//! # A sliding-window limiter: at most `n` in any window
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let window = portasync::SlidingWindow::new(3, Duration::from_millis(20));
//!     for _ in 0..3 {
//!         window.acquire().await; // the first three pass at once
//!     }
//!     assert!(window.check().is_err()); // a fourth must wait for the window to slide
//! });
//! # }
//! ```
//!
//! # Retry with exponential backoff
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use portasync::{Backoff, Jitter, retry};
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let mut failures = 2;
//!     let value = retry(|| {
//!         let fail = failures > 0;
//!         failures -= 1;
//!         async move { if fail { Err("flaky") } else { Ok(42) } }
//!     })
//!     .backoff(Backoff::exponential(Duration::from_millis(1)).jitter(Jitter::Full))
//!     .max_attempts(5)
//!     .await;
//!     assert_eq!(value.unwrap(), 42);
//! });
//! # }
//! ```
//!
//! # `Queue`, `Lock`, `Event`, `Condition`
//!
//! `Queue` and `Lock` are smol-rs crates, not rewritten. `asyncio.Event` is
//! a flag that stays set, which a [`CancelToken`](crate::CancelToken) is:
//! waiting after it was set returns at once. event-listener's `Event`
//! wakes only those already listening (a notification nobody listens for
//! is lost), the way `asyncio.Condition.notify` does; pair it with a flag
//! or a lock that holds the condition.
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! smol::block_on(async {
//!     let (tx, rx) = async_channel::bounded(8); // asyncio.Queue(maxsize=8)
//!     tx.send(1).await.unwrap();
//!     assert_eq!(rx.recv().await.unwrap(), 1);
//!
//!     let lock = async_lock::Mutex::new(0); // asyncio.Lock guarding a value
//!     *lock.lock().await += 1;
//!
//!     let ready = portasync::CancelToken::new(); // asyncio.Event
//!     ready.cancel(); // event.set()
//!     ready.cancelled().await; // await event.wait(): set already, returns at once
//!
//!     let changed = event_listener::Event::new(); // asyncio.Condition
//!     let listener = changed.listen(); // listen first, then check the condition
//!     changed.notify(1); // condition.notify()
//!     listener.await;
//! });
//! # }
//! ```
//!
//! # `run_in_executor` / `to_thread`
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! smol::block_on(async {
//!     let digest = portasync::spawn_blocking(|| (1..=1_000u64).sum::<u64>()).await.unwrap();
//!     assert_eq!(digest, 500_500);
//! });
//! # }
//! ```
//!
//! # `asyncio.wait(..., return_when=FIRST_COMPLETED)`
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let sleeps = [Duration::from_secs(5), Duration::from_millis(1)].map(portasync::sleep);
//!     // The others are dropped at once (asyncio.wait leaves them running).
//!     let (first, ()) = portasync::race(sleeps).await;
//!     assert_eq!(first, 1);
//! });
//! # }
//! ```
