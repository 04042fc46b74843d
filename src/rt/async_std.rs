//! The async-std adapter. async-std was discontinued in 2025 and points its
//! users to smol; this adapter stays thin and is never the default.

use super::join::{Ctl, Deliver, JoinHandle};
use super::{IoSleep, Spawn, Timer};
use std::future::Future;
use std::time::{Duration, Instant};

/// Runs tasks on async-std's global executor.
///
/// **Deprecated upstream:** async-std was discontinued in 2025 and recommends
/// smol. This adapter is kept for code that cannot move yet; prefer
/// [`Smol`](crate::rt::Smol). Blocking closures go to the same `blocking` pool
/// async-std uses; timers are async-io's, as async-std's own are.
///
/// # Examples
///
/// ```
/// use portasync::rt::{AsyncStd, Spawn};
///
/// async_std::task::block_on(async {
///     assert_eq!(AsyncStd.spawn(async { 6 * 7 }).await.unwrap(), 42);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Timer for AsyncStd {
    type Sleep = IoSleep;

    /// The monotonic clock, read through the processor's invariant
    /// time-stamp counter where there is one (x86-64), else
    /// `Instant::now()`: the same time, to within a few hundred nanoseconds
    /// (it may run that much ahead of `Instant::now()`, never backwards),
    /// at well under half the cost.
    fn now(&self) -> Instant {
        super::clock::now()
    }

    fn sleep_until(&self, deadline: Instant) -> IoSleep {
        IoSleep::at(deadline)
    }

    fn sleep(&self, duration: Duration) -> IoSleep {
        IoSleep::after(duration)
    }
}

impl Spawn for AsyncStd {
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let ctl = Ctl::new();
        let handle = async_std::task::spawn(Deliver::new(future, ctl.clone()));
        JoinHandle::from_async_std(handle, ctl)
    }

    fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        JoinHandle::unblock(f)
    }
}

/// Whether this thread is one of async-std's executor threads, which it
/// names after `ASYNC_STD_THREAD_NAME` (`async-std/runtime` unless that is
/// set); looked up once per thread.
pub(crate) fn on_runtime_thread() -> bool {
    thread_local! {
        static RUNTIME: bool = {
            let name = std::env::var("ASYNC_STD_THREAD_NAME");
            let name = name.as_deref().unwrap_or("async-std/runtime");
            std::thread::current().name() == Some(name)
        };
    }
    RUNTIME.with(|runtime| *runtime)
}
