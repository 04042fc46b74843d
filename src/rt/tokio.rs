//! The tokio adapter: a `tokio::runtime::Handle`, tokio's blocking pool and
//! tokio's timer (so `tokio::time::pause` governs it).

use super::join::JoinHandle;
use super::{Spawn, Timer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, TryCurrentError};
use tokio::task::coop::{Unconstrained, unconstrained};

/// Runs tasks on a tokio runtime, through its [`Handle`].
///
/// Timers are tokio's, so a runtime with paused time (`tokio::time::pause`,
/// `start_paused`) governs them, and the runtime must have its time driver
/// enabled (`enable_time` or `enable_all`).
///
/// # Examples
///
/// ```
/// use portasync::rt::{Spawn, Tokio};
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let rt = Tokio::from_handle(runtime.handle().clone());
/// let answer = runtime.block_on(async { rt.spawn(async { 6 * 7 }).await });
/// assert_eq!(answer.unwrap(), 42);
/// ```
#[derive(Clone, Debug)]
pub struct Tokio {
    handle: Handle,
}

impl Tokio {
    /// The runtime the caller is running in.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime; use [`try_current`](Self::try_current) when
    /// that can happen.
    ///
    /// # Examples
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new().unwrap();
    /// runtime.block_on(async {
    ///     let rt = portasync::rt::Tokio::current();
    /// #   let _ = rt;
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Self {
        Self {
            handle: Handle::current(),
        }
    }

    /// The runtime the caller is running in, if any.
    ///
    /// # Errors
    ///
    /// Outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(portasync::rt::Tokio::try_current().is_err());
    /// ```
    pub fn try_current() -> Result<Self, TryCurrentError> {
        Handle::try_current().map(Self::from_handle)
    }

    /// A runtime given by its handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let rt = portasync::rt::Tokio::from_handle(runtime.handle().clone());
    /// # let _ = rt;
    /// ```
    pub fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }

    /// The runtime's handle.
    ///
    /// # Examples
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let rt = portasync::rt::Tokio::from_handle(runtime.handle().clone());
    /// let _guard = rt.handle().enter();
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The current tokio clock: the runtime's paused clock inside a runtime whose
/// time is paused, the real clock otherwise.
pub(crate) fn tokio_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The clock of the runtime behind `handle`. Only a current-thread runtime
/// can pause time (`tokio::time::pause` panics on any other), so a
/// multi-thread runtime's clock is the real one, read the cheap way; any
/// other is read inside its context, as its sleeps are made (read from the
/// caller's context, a paused runtime's `now` and its sleeps disagreed
/// outside it; from a review).
pub(crate) fn clock_of(handle: &Handle) -> Instant {
    match handle.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => super::clock::now(),
        _ => {
            let _context = handle.enter();
            tokio_now()
        }
    }
}

impl Timer for Tokio {
    type Sleep = TokioSleep;

    /// Reads tokio's clock: the real clock for a multi-thread runtime (which
    /// cannot pause time); for any other, that runtime's clock, paused or
    /// not, from whatever context it is called (the clock its sleeps use).
    fn now(&self) -> Instant {
        clock_of(&self.handle)
    }

    /// # Panics
    ///
    /// If the runtime was built without its time driver.
    fn sleep_until(&self, deadline: Instant) -> TokioSleep {
        let _context = self.handle.enter();
        TokioSleep::until(deadline)
    }

    /// # Panics
    ///
    /// If the runtime was built without its time driver.
    fn sleep(&self, duration: Duration) -> TokioSleep {
        let _context = self.handle.enter();
        TokioSleep::after(duration)
    }
}

impl Spawn for Tokio {
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        JoinHandle::from_tokio(self.handle.spawn(future))
    }

    fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        JoinHandle::tokio_blocking(&self.handle, f)
    }
}

pin_project_lite::pin_project! {
    /// The sleep future of [`Tokio`]: a `tokio::time::Sleep`, polled outside
    /// tokio's cooperative budget, so that a timeout still fires when the
    /// future it guards spends the whole budget on every poll (tokio issue
    /// 4314). A sleep completes once, so it cannot starve anything.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{Timer, Tokio};
    /// use std::time::Duration;
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// runtime.block_on(async {
    ///     Tokio::current().sleep(Duration::from_millis(1)).await;
    /// });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping it deregisters the timer; nothing else happens.
    #[must_use = "futures do nothing unless awaited"]
    pub struct TokioSleep {
        #[pin]
        inner: Unconstrained<tokio::time::Sleep>,
    }
}

impl TokioSleep {
    /// Must be called inside a runtime context.
    ///
    /// tokio rounds a deadline up to its next millisecond with an addition
    /// that panics in the last millisecond of the clock: such a deadline is
    /// moved a millisecond earlier, which changes nothing (the end of the
    /// clock never comes either way).
    pub(crate) fn until(deadline: Instant) -> Self {
        const ROUNDING: Duration = Duration::from_millis(1);
        let deadline = match deadline.checked_add(ROUNDING) {
            Some(_) => deadline,
            None => deadline.checked_sub(ROUNDING).unwrap_or(deadline),
        };
        Self {
            inner: unconstrained(tokio::time::sleep_until(deadline.into())),
        }
    }

    /// Must be called inside a runtime context. A duration that overflows
    /// the clock sleeps until a deadline decades away, as tokio's own
    /// `sleep` does (its deadline is made here, so that [`until`]'s guard
    /// covers a sum that lands in the clock's last millisecond).
    ///
    /// [`until`]: Self::until
    pub(crate) fn after(duration: Duration) -> Self {
        let now = tokio::time::Instant::now().into_std();
        Self::until(crate::rt::deadline_after(now, duration))
    }
}

impl std::fmt::Debug for TokioSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioSleep").finish_non_exhaustive()
    }
}

impl Future for TokioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}
