//! `timeout`: a future with a fixed deadline.

use super::checked_deadline;
use crate::rt::{Auto, Timer};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The error of a future that did not finish before its deadline.
///
/// # Examples
///
/// ```
/// use portasync::{Elapsed, timeout};
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let err: Elapsed = timeout(Duration::ZERO, std::future::pending::<()>()).await.unwrap_err();
/// assert_eq!(err.to_string(), "deadline has elapsed");
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
/// # });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed(());

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elapsed")
    }
}

impl Elapsed {
    pub(crate) fn new() -> Self {
        Self(())
    }
}

impl From<Elapsed> for std::io::Error {
    fn from(err: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, err)
    }
}

/// Runs `future` with a time limit of `duration` on [`Auto`]'s clock,
/// like asyncio's `wait_for`.
///
/// The deadline is fixed now, when `timeout` is called, not when the result
/// is first polled. See [`Timeout`] for the rules.
///
/// # Errors
///
/// The output is [`Elapsed`] if the deadline passes before `future`
/// finishes.
///
/// # Panics
///
/// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
/// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
///
/// # Examples
///
/// ```
/// use portasync::timeout;
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let fast = timeout(Duration::from_secs(1), async { 5 }).await;
/// assert_eq!(fast, Ok(5));
///
/// let slow = timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
/// assert!(slow.is_err());
/// # });
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    timeout_with(&Auto, duration, future)
}

/// Runs `future` until `deadline` on [`Auto`]'s clock.
///
/// Off tokio, [`Auto`]'s clock may read up to a few hundred nanoseconds
/// ahead of `Instant::now()`: a `deadline` made from `Instant::now()` can
/// pass that much before `Instant::now()` reaches it (never before
/// `Auto.now()` does).
///
/// # Errors
///
/// The output is [`Elapsed`] if `deadline` passes before `future` finishes.
///
/// # Panics
///
/// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
/// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
///
/// # Examples
///
/// ```
/// use portasync::timeout_at;
/// use std::time::{Duration, Instant};
///
/// # futures_lite::future::block_on(async {
/// let deadline = Instant::now() + Duration::from_millis(5);
/// assert!(timeout_at(deadline, std::future::pending::<()>()).await.is_err());
/// # });
/// ```
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout::new(future.into_future(), Auto, Some(deadline))
}

/// Runs `future` with a time limit of `duration` on `timer`'s clock: the
/// form for code generic over the runtime, and for tests on a
/// [`ManualClock`](crate::rt::ManualClock).
///
/// # Errors
///
/// The output is [`Elapsed`] if the deadline passes before `future`
/// finishes.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "test-util")] {
/// use portasync::rt::ManualClock;
/// use portasync::timeout_with;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let mut guarded = Box::pin(timeout_with(&clock, Duration::from_secs(30), std::future::pending::<()>()));
/// assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut guarded)).is_none());
/// clock.advance(Duration::from_secs(30));
/// assert!(futures_lite::future::block_on(guarded).is_err());
/// # }
/// ```
pub fn timeout_with<T: Timer, F: IntoFuture>(
    timer: &T,
    duration: Duration,
    future: F,
) -> Timeout<F::IntoFuture, T> {
    Timeout {
        future: future.into_future(),
        sleep: SleepSlot::Unarmed,
        timer: timer.clone(),
        due: Due::after(timer, duration),
    }
}

/// A deadline as its timer gave it: an `Instant`, or, for a timer on the
/// counter clock, nanoseconds past that clock's base, which become an
/// `Instant` only if a timer must be armed (or the deadline is asked for).
/// A timeout on a future that is ready at once then never pays for `Instant`
/// arithmetic, which std does not inline.
#[derive(Clone, Copy, Debug)]
enum Due {
    At(Instant),
    Counter(u64),
    /// Too far away to represent: never fires.
    Never,
}

impl Due {
    #[inline(always)]
    fn after<T: Timer>(timer: &T, duration: Duration) -> Self {
        let counter = crate::rt::real_nanos(timer).and_then(|now| {
            let duration = u64::try_from(duration.as_nanos()).ok()?;
            now.checked_add(duration)
        });
        match counter {
            Some(nanos) => Due::Counter(nanos),
            None => checked_deadline(timer, duration).map_or(Due::Never, Due::At),
        }
    }

    fn instant(self) -> Option<Instant> {
        match self {
            Due::At(at) => Some(at),
            Due::Counter(nanos) => {
                crate::rt::clock::base()?.checked_add(Duration::from_nanos(nanos))
            }
            Due::Never => None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future with a deadline, from [`timeout`], [`timeout_at`],
    /// [`timeout_with`] or [`FutureExt::timeout`](crate::FutureExt::timeout).
    ///
    /// - The inner future is polled first: a result that is ready is never
    ///   thrown away, even past the deadline.
    /// - No timer is registered until the inner future first returns
    ///   `Pending`, so a future that is ready at once costs one clock read
    ///   (none with [`timeout_at`]). The timer's sleep is then boxed, once:
    ///   a `Timeout` adds only its deadline, a word and the timer itself to
    ///   its inner future (24 bytes on 64-bit Linux with [`Auto`], which
    ///   takes no room; a `Tokio` timer adds its handle), however large the
    ///   runtime's sleep (tokio's is 112 bytes), which keeps it cheap to
    ///   move.
    /// - `Duration::ZERO` fails a pending future on its first poll; a
    ///   deadline too far to represent (`Duration::MAX`) never fires and never
    ///   panics.
    /// - Like the futures of `async` blocks, it is not to be polled again
    ///   once it returned `Ready`: it would poll its inner future again
    ///   (which may panic), and after `Err(Elapsed)` could still return the
    ///   inner future's output.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::prelude::*;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let answer = async { 42 }.timeout(Duration::from_secs(1)).await;
    /// assert_eq!(answer, Ok(42));
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping a `Timeout` drops the inner future and its timer, nothing
    /// else. Whether that is safe depends on the inner future.
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F, T: Timer = Auto> {
        #[pin]
        future: F,
        #[pin]
        sleep: SleepSlot<T::Sleep>,
        timer: T,
        due: Due,
    }
}

pin_project_lite::pin_project! {
    /// A sleep made only when first needed, and boxed then: an unarmed slot
    /// is one word, where a runtime's sleep can be over a hundred bytes that
    /// every move of the future would copy.
    #[project = SleepSlotProj]
    pub(crate) enum SleepSlot<S> {
        Unarmed,
        Armed { sleep: Pin<Box<S>> },
    }
}

impl<S: Future<Output = ()>> SleepSlot<S> {
    /// Whether `deadline` has passed: checked on `timer`'s clock when the
    /// sleep is first made (so a deadline already reached never waits for a
    /// timer tick), on the sleep afterwards.
    pub(crate) fn poll_elapsed<T>(
        mut self: Pin<&mut Self>,
        timer: &T,
        deadline: Instant,
        cx: &mut Context<'_>,
    ) -> bool
    where
        T: Timer<Sleep = S>,
    {
        if let SleepSlotProj::Unarmed = self.as_mut().project() {
            if timer.now() >= deadline {
                return true;
            }
            self.set(SleepSlot::Armed {
                sleep: Box::pin(timer.sleep_until(deadline)),
            });
        }
        match self.project() {
            SleepSlotProj::Armed { sleep } => sleep.as_mut().poll(cx).is_ready(),
            SleepSlotProj::Unarmed => unreachable!("armed just above"),
        }
    }

    pub(crate) fn is_armed(&self) -> bool {
        matches!(self, SleepSlot::Armed { .. })
    }
}

impl<F, T: Timer> Timeout<F, T> {
    pub(crate) fn new(future: F, timer: T, deadline: Option<Instant>) -> Self {
        Self {
            future,
            sleep: SleepSlot::Unarmed,
            timer,
            due: deadline.map_or(Due::Never, Due::At),
        }
    }

    /// The deadline, or `None` if it is too far away to represent.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::timeout;
    /// use std::time::Duration;
    ///
    /// assert!(timeout(Duration::MAX, async {}).deadline().is_none());
    /// assert!(timeout(Duration::from_secs(1), async {}).deadline().is_some());
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.due.instant()
    }

    /// The inner future, by reference.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::timeout;
    /// use std::time::Duration;
    ///
    /// let guarded = timeout(Duration::from_secs(1), std::future::ready(3));
    /// let _inner: &std::future::Ready<i32> = guarded.get_ref();
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The inner future, by value; the deadline is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::timeout;
    /// use std::time::Duration;
    ///
    /// let guarded = timeout(Duration::from_secs(1), std::future::ready(3));
    /// assert_eq!(futures_lite::future::block_on(guarded.into_inner()), 3);
    /// ```
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future, T: Timer> Future for Timeout<F, T> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if let Some(deadline) = poll_deadline(this.due) {
            if this.sleep.poll_elapsed(this.timer, deadline, cx) {
                return Poll::Ready(Err(Elapsed::new()));
            }
        }
        Poll::Pending
    }
}

/// The deadline as an `Instant`, converted once, on the first poll that
/// finds the inner future pending (not generic, to keep it out of every
/// `Timeout`'s code).
fn poll_deadline(due: &mut Due) -> Option<Instant> {
    if let Due::Counter(_) = *due {
        *due = due.instant().map_or(Due::Never, Due::At);
    }
    match *due {
        Due::At(at) => Some(at),
        _ => None,
    }
}

impl<F: fmt::Debug, T: Timer> fmt::Debug for Timeout<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("future", &self.future)
            .field("deadline", &self.deadline())
            .field("armed", &self.sleep.is_armed())
            .finish()
    }
}
