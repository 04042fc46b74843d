//! Async utilities that do not tie their users to one executor.
//!
//! portasync gives library authors timeouts, retries, semaphores, rate
//! limits, task groups and scoped spawning written once against two small
//! traits, [`rt::Timer`] and [`rt::Spawn`]. Applications pick the executor
//! with a cargo feature: smol is the default and the reference; tokio and
//! async-std are adapters. Code that never names a runtime uses
//! [`rt::Auto`], which picks tokio inside a tokio runtime and smol (or
//! async-std) elsewhere.
//!
//! # Patterns
//!
//! | pattern | where | asyncio / trio |
//! |---|---|---|
//! | spawn a task, await or cancel it | [`spawn`], [`JoinHandle`] | `asyncio.create_task`, `Task.cancel()` |
//! | run blocking code off the executor | [`spawn_blocking`] | `loop.run_in_executor`, `asyncio.to_thread` |
//! | sleep | [`sleep`], [`sleep_until`] | `asyncio.sleep` |
//! | time limit on one await | [`timeout`], [`FutureExt::timeout`] | `asyncio.wait_for`, trio's `fail_after` |
//! | a deadline shared and moved while work runs | [`Deadline`] | `asyncio.timeout()` with `reschedule`, trio's cancel scope deadline |
//! | periodic ticks | [`interval`] | a `while True: ...; await asyncio.sleep(p)` loop, without drift |
//! | retry with exponential backoff | [`retry`], [`Backoff`], [`RetryPolicy`], [`RetryBudget`] | tenacity's `@retry(wait=wait_exponential(), stop=stop_after_attempt(n))` |
//! | a group of tasks with structured shutdown | [`TaskGroup`] (`spawn`, `join_next`, `join`, `try_join`, `shutdown_graceful`, `max_concurrent`) | `asyncio.TaskGroup`, trio nursery, `create_task` + a tracking set |
//! | run futures together in place | [`join_all`], [`try_join_all`], [`race`] (unlike `gather` and `wait`, the losers, and the rest after an error, are dropped, not left running) | `asyncio.gather` (with and without `return_exceptions`), `asyncio.wait(FIRST_COMPLETED)` |
//! | children that borrow the caller's locals | [`scope`] (concurrent, in place), [`scope_boxed`] (the same, `Send`), [`scope_blocking`] (parallel on a runtime's threads, blocks) | trio nursery / anyio task group with borrowing, `std::thread::scope` |
//! | cancel a tree of work | [`CancelToken`], [`FutureExt::cancel_on`] | `Task.cancel()`, trio's `CancelScope.cancel()` |
//! | virtual time in tests | [`rt::ManualClock`] (feature `test-util`) | trio's `MockClock` |
//! | a library that runs anywhere | [`rt::Runtime`], [`rt::Auto`] | anyio |
//! | bound concurrency, weighted and resizable | [`Semaphore`] (fair, closable, cancel-safe) | `asyncio.Semaphore`, `asyncio.BoundedSemaphore`, trio's `CapacityLimiter` |
//! | n per period, with bursts; wait your turn | [`RateLimiter`], [`Quota`], [`throttle`] (exact GCRA, FIFO, cancel-safe) | aiolimiter's `async with AsyncLimiter(n, period):` |
//! | at most n in any window; one limit per key | [`SlidingWindow`], [`KeyedRateLimiter`] | the asyncio sliding-window recipe (a deque of timestamps) |
//! | `Lock`, `Queue`, `Barrier` | [async-lock], [async-channel] (not rewritten here) | `asyncio.Lock`, `asyncio.Queue`, `asyncio.Barrier` |
//! | a flag set once, seen even by those who wait after it was set | [`CancelToken`] (`cancel`, `cancelled().await`) | `asyncio.Event` |
//! | wake whoever waits now | [event-listener] (a notification nobody listens for is lost; pair it with an atomic flag, or an `async_lock::Mutex` for a condition) | `asyncio.Condition` |
//!
//! [async-lock]: https://docs.rs/async-lock
//! [event-listener]: https://docs.rs/event-listener
//! [async-channel]: https://docs.rs/async-channel
//!
//! # Runtimes and features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `smol` | yes | [`rt::Smol`]: smol's global executor or any `Arc<async_executor::Executor<'static>>` |
//! | `tokio` | no | [`rt::Tokio`]: a `tokio::runtime::Handle`, with tokio's timer (`tokio::time::pause` works) |
//! | `async-std` | no | [`rt::AsyncStd`] (async-std is discontinued upstream; prefer smol) |
//! | `test-util` | no | [`rt::ManualClock`]: virtual time for deterministic tests |
//!
//! [`rt::Auto`] uses tokio when called inside a tokio runtime, otherwise smol
//! when enabled, otherwise async-std (with only `tokio` enabled, spawning
//! through it outside a tokio runtime panics). Its timer needs no runtime
//! feature at all (async-io). Features are additive: any combination builds
//! and works.
//!
//! Library authors depend on portasync with `default-features = false` and
//! take an `R: Runtime` in what they publish; the application's features
//! decide the executor. Timers through [`rt::Auto`] work in any build, but
//! spawning through it compiles only where some crate in the build enables a
//! runtime feature (a library's own tests can, through a dev-dependency).
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let task = portasync::spawn(async { 40 + 2 });
//!     portasync::sleep(Duration::from_millis(1)).await;
//!     assert_eq!(task.await.unwrap(), 42);
//! });
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[macro_use]
mod macros;
mod primitives;

pub mod guide;
pub mod prelude;
pub mod rt;

mod ext;
mod rate;
mod retry;
mod sync;
mod task;
mod time;
mod wake;

pub use retry::{
    Backoff, Delays, Jitter, Retry, RetryBudget, RetryError, RetryFuture, RetryPolicy, StopReason,
    retry,
};
pub use sync::{
    Acquire, AcquireError, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
    TryAcquireError,
};
pub use sync::{CancelGuard, CancelOn, CancelToken, Cancelled, WaitForCancel, WaitForCancelOwned};
pub use task::{
    AbortHandle, GroupError, Join, JoinAll, JoinNext, Race, Shutdown, ShutdownAll,
    ShutdownGraceful, TaskGroup, TryJoin, TryJoinAll, join_all, race, try_join_all,
};
pub use time::{
    Deadline, DeadlineRun, Elapsed, Interval, Tick, Timeout, interval, interval_with, timeout,
    timeout_at, timeout_with,
};

pub use ext::FutureExt;
pub use rate::{
    InsufficientCapacity, KeyedAcquire, KeyedAcquireN, KeyedRateLimiter, Limiter, NotUntil, Quota,
    QuotaError, RateAcquire, RateAcquireN, RateLimited, RateLimiter, SlidingWindow, Throttle,
    WindowAcquire, WindowAcquireN, throttle,
};
pub use rt::{JoinError, JoinHandle, Sleep};
pub use task::{
    BlockingJoinHandle, BlockingScope, Scope, ScopeBoxedFuture, ScopeFuture, ScopedJoinHandle,
    scope, scope_blocking, scope_boxed,
};

use rt::{Auto, Spawn, Timer};
use std::future::Future;
use std::time::{Duration, Instant};

/// Spawns `future` on [`Auto`]'s executor: tokio inside a tokio runtime,
/// smol (or async-std) elsewhere.
///
/// Dropping the returned handle cancels the task; see [`JoinHandle`].
/// With no runtime feature enabled, calling this is a compile error that
/// names the features.
///
/// # Panics
///
/// With only the `tokio` feature enabled, when called outside a tokio
/// runtime: there is no executor to fall back to.
#[cfg_attr(
    not(any(feature = "smol", feature = "tokio", feature = "async-std")),
    doc = "```compile_fail,E0277\nlet _task = portasync::spawn(async {});\n```"
)]
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let handle = portasync::spawn(async { "hello" });
///     assert_eq!(handle.await.unwrap(), "hello");
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    // Higher-ranked so that the crate builds without a runtime feature and
    // the error (with `Spawn`'s message) appears where this is called.
    for<'a> Auto: Spawn,
{
    Auto.spawn(future)
}

/// Runs `f` on the blocking pool of [`Auto`]'s executor.
///
/// # Blocking
///
/// This is where blocking work belongs. A closure that has started cannot be
/// cancelled; see [`JoinHandle`].
///
/// # Panics
///
/// With only the `tokio` feature enabled, when called outside a tokio
/// runtime: there is no blocking pool to fall back to.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let handle = portasync::spawn_blocking(|| std::env::var("HOME").is_ok());
///     let _has_home: bool = handle.await.unwrap();
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    for<'a> Auto: Spawn,
{
    Auto.spawn_blocking(f)
}

/// Sleeps for `duration` on [`Auto`]'s timer. A duration too long for the
/// clock (up to `Duration::MAX`) never overflows: it sleeps 30 years, which
/// is for ever on a real clock (a paused tokio clock, which jumps to the
/// next timer when idle, gets there at once, as with tokio's own sleep).
///
/// The timer is chosen when the sleep is made, as for [`Auto`]'s every
/// sleep: see there.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// futures_lite::future::block_on(portasync::sleep(Duration::from_millis(1)));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Auto.sleep(duration)
}

/// Sleeps until `deadline` on [`Auto`]'s timer (at once if it has passed).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(1);
/// futures_lite::future::block_on(portasync::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Auto.sleep_until(deadline)
}
