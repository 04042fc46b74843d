//! The smol adapter: smol's global executor or any `Arc<Executor<'static>>`,
//! the `blocking` pool, and async-io's timer.

use super::join::{JoinHandle, Supervised};
use super::{IoSleep, Spawn, Timer};
use async_executor::Executor;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs tasks on smol: its global executor ([`Smol::global`]) or an executor
/// of your own ([`Smol::new`]). Blocking closures go to the `blocking` crate's
/// pool; timers are async-io's.
///
/// smol's global executor runs on `SMOL_THREADS` threads (1 unless that
/// variable is set), started the first time something is spawned on it.
/// A [`Smol::new`] executor runs only while something drives it (for example
/// `executor.run(..)` on threads of your own).
///
/// # Examples
///
/// ```
/// use portasync::rt::{Smol, Spawn};
///
/// smol::block_on(async {
///     let rt = Smol::global();
///     assert_eq!(rt.spawn(async { 6 * 7 }).await.unwrap(), 42);
/// });
/// ```
#[derive(Clone, Default)]
pub struct Smol {
    executor: Option<Arc<Executor<'static>>>,
}

impl Smol {
    /// smol's global executor (`smol::spawn`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = portasync::rt::Smol::global();
    /// # let _ = rt;
    /// ```
    pub fn global() -> Self {
        Self { executor: None }
    }

    /// An executor of your own; its tasks run only while something drives it.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{Smol, Spawn};
    /// use std::sync::Arc;
    ///
    /// let executor = Arc::new(async_executor::Executor::new());
    /// let rt = Smol::new(executor.clone());
    /// let handle = rt.spawn(async { "done" });
    /// assert_eq!(smol::block_on(executor.run(handle)).unwrap(), "done");
    /// ```
    pub fn new(executor: Arc<Executor<'static>>) -> Self {
        Self {
            executor: Some(executor),
        }
    }
}

impl fmt::Debug for Smol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let executor = if self.executor.is_some() {
            "custom"
        } else {
            "global"
        };
        f.debug_struct("Smol").field("executor", &executor).finish()
    }
}

impl Timer for Smol {
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

impl Spawn for Smol {
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let future = Supervised::new(future);
        let task = match &self.executor {
            None => smol::spawn(future),
            Some(executor) => executor.spawn(future),
        };
        JoinHandle::from_task(task, false)
    }

    fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        JoinHandle::unblock(f)
    }
}

impl Smol {
    /// Whether this is smol's global executor.
    pub(crate) fn is_global(&self) -> bool {
        self.executor.is_none()
    }

    /// The executor's own handle, for a future that catches its panics
    /// itself (async-executor would keep one off its threads anyway).
    pub(crate) fn spawn_bare<F>(&self, future: F) -> async_task::Task<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.executor {
            None => smol::spawn(future),
            Some(executor) => executor.spawn(future),
        }
    }
}

/// Whether this thread is one of smol's global executor threads (smol
/// names them `smol-N`); looked up once per thread.
pub(crate) fn on_global_thread() -> bool {
    thread_local! {
        static GLOBAL: bool = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("smol-"));
    }
    GLOBAL.with(|global| *global)
}
