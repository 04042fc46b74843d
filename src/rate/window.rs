//! `SlidingWindow`: at most `n` events in any window of length `period`.
//!
//! # How
//!
//! The window keeps the admission times (nanoseconds since its origin) of
//! the events that can still matter, as runs of events admitted at the same
//! nanosecond, each with the running total of events up to it. `n` more
//! events at `t` (later than every event kept) fit exactly when the
//! `(limit - n + 1)`-th newest event is at least `period` before `t`. The
//! runs that fell out of the window are dropped from the front as time
//! passes (O(1) each), so when what is left, plus `n`, is within the limit,
//! the events fit without looking further: an admitted event costs O(1)
//! (amortized over the drops). A refused single event while nobody waits
//! waits for the oldest event kept (no more than the limit are kept then):
//! O(1) too. Only a refusal of several events at once, or one made while
//! waiters have booked, and a waiter's booking find their event by a binary
//! search on the running totals: O(log runs). Memory is one run per
//! distinct admission time within the last period, plus one per waiter.
//!
//! A waiter books the first time at which its events fit, after every event
//! already kept, and sleeps until then: FIFO order, one wake each from its
//! own timer. Only events older than `period` are ever forgotten, so giving
//! a dropped waiter's events back can never let a later check exceed the
//! limit.

use super::{
    Booking, InsufficientCapacity, Nap, NotUntil, Origin, QuotaError, RateLimited, Turn, lock,
};
use crate::primitives::{Arc, Mutex};
use crate::rt::{Auto, Timer};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A strict sliding-window limit: at most `n` events in **any** window of
/// length `period`, exactly.
///
/// This is the asyncio sliding-window recipe (a deque of timestamps,
/// dropping those older than the period) without its scans: `check`
/// costs O(1) (amortized) whether it admits or refuses, while nobody
/// waits; `check_n` refusals, and checks and bookings while waiters are
/// booked, O(log k) for k distinct admission times in the last period
/// (the refusal says when to come back). Use it when the other side counts requests per
/// window and refuses the `n + 1`-th; a [`RateLimiter`](crate::RateLimiter)
/// with the same `n` and `period` smooths the rate instead, and can allow
/// up to `2n - 1` events in some windows (a full burst, then the refill).
///
/// - **Exact**: an event at `t` is allowed when fewer than `n` events were
///   allowed in `(t - period, t]`; events `period` apart never share a
///   window. [`NotUntil::wait_time`] is exact to the nanosecond.
/// - **Fair**: waiters are served in the order they first polled, each
///   woken once by its own timer; `check` never takes a waiter's place.
/// - **Memory**: one entry per distinct admission time in the last period,
///   at most `n`, plus one per waiter.
///
/// # Examples
///
/// ```
/// use portasync::SlidingWindow;
/// use std::time::Duration;
///
/// let window = SlidingWindow::new(3, Duration::from_secs(1));
/// for _ in 0..3 {
///     assert!(window.check().is_ok());
/// }
/// assert!(window.check().is_err()); // until the first of the three is a second old
/// ```
///
/// # Cancel safety
///
/// A dropped [`WindowAcquireN`] (or [`WindowAcquire`]) whose time has not
/// come removes its events. The waiters behind it keep their times, and a
/// check is never admitted ahead of a booking, so the room it frees is used
/// once the bookings behind it are past.
pub struct SlidingWindow<T = Auto> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    timer: T,
    origin: Origin,
    state: Mutex<Window>,
}

struct Window {
    limit: u32,
    period: Duration,
    /// The period in nanoseconds, saturated: a period beyond 584 years never
    /// ends on this clock.
    span: u64,
    runs: VecDeque<Run>,
    /// Events admitted before the first run kept. Only differences of the
    /// running totals matter, so all of them, this included, may be moved
    /// by the same amount (see [`give_back`](Self::give_back)).
    start: u64,
    /// The latest clock reading seen, so that every run is later than the
    /// one before even when callers race.
    last: u64,
}

/// Events admitted at one nanosecond.
#[derive(Clone, Copy, Debug)]
struct Run {
    at: u64,
    /// Events ever admitted up to and including this run.
    total: u64,
}

impl Window {
    fn total(&self) -> u64 {
        self.runs.back().map_or(self.start, |run| run.total)
    }

    /// The first time at or after `now` (clamped) at which `n` more events
    /// fit, forgetting the runs that can no longer matter.
    fn earliest(&mut self, now: u64, n: u32) -> u64 {
        let now = now.max(self.last);
        self.last = now;
        while let Some(front) = self.runs.front().copied() {
            if front.at.saturating_add(self.span) > now {
                break;
            }
            self.start = front.total;
            self.runs.pop_front();
        }
        let newest = self.runs.back().map_or(now, |run| run.at.max(now));
        // The (limit - n + 1)-th newest event must be a period old.
        let must_pass = u64::from(self.limit - n) + 1;
        let (total, kept) = (self.total(), self.total() - self.start);
        if kept < must_pass {
            return newest;
        }
        let index = total - must_pass;
        // A single event refused while nobody waits waits for the oldest
        // kept one (at most `limit` events are kept then): no search.
        let run = if self.runs.front().is_some_and(|front| front.total > index) {
            0
        } else {
            self.runs.partition_point(|run| run.total <= index)
        };
        newest.max(self.runs[run].at.saturating_add(self.span))
    }

    fn admit(&mut self, at: u64, n: u32) {
        self.rebase();
        let total = self.total() + u64::from(n);
        match self.runs.back_mut() {
            Some(back) if back.at == at => back.total = total,
            _ => self.runs.push_back(Run { at, total }),
        }
    }

    /// Removes `n` events booked at `at`, if that run is still kept.
    fn give_back(&mut self, at: u64, n: u32) {
        let Ok(index) = self.runs.binary_search_by_key(&at, |run| run.at) else {
            return;
        };
        let n = u64::from(n);
        // Lower the totals from this run on, or, when fewer runs are ahead
        // of it, raise `start` and those ahead instead: the same change to
        // every difference, at O(1) at either end of the runs. A raised
        // total stays within this run's, which holds these `n` events.
        if index < self.runs.len() - index {
            self.start += n;
            for run in self.runs.range_mut(..index) {
                run.total += n;
            }
        } else {
            for run in self.runs.range_mut(index..) {
                run.total -= n;
            }
        }
        let before = if index == 0 {
            self.start
        } else {
            self.runs[index - 1].total
        };
        if self.runs[index].total == before {
            self.runs.remove(index);
        }
    }

    /// Takes `start` off every total once they grow large, so that no sum
    /// overflows however many events pass: each total is at most the
    /// events kept past `start` after this, and this runs at most once
    /// per 2^62 events admitted.
    fn rebase(&mut self) {
        if self.total() > u64::MAX / 4 {
            let start = std::mem::take(&mut self.start);
            for run in &mut self.runs {
                run.total -= start;
            }
        }
    }
}

impl SlidingWindow<Auto> {
    /// At most `n` events in any window of length `period`, on [`Auto`]'s
    /// clock.
    ///
    /// # Panics
    ///
    /// If `n` or `period` is zero; see [`try_new`](Self::try_new) for values
    /// read at run time.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// let window = SlidingWindow::new(100, Duration::from_secs(60));
    /// assert!(window.check_n(100).is_ok());
    /// assert!(window.check().is_err());
    /// ```
    #[track_caller]
    pub fn new(n: u32, period: Duration) -> Self {
        Self::with_timer(n, period, Auto)
    }

    /// [`new`](Self::new) for values that come from run-time input.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ZeroCount`] if `n` is zero, [`QuotaError::ZeroPeriod`]
    /// if `period` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{QuotaError, SlidingWindow};
    /// use std::time::Duration;
    ///
    /// assert!(SlidingWindow::try_new(5, Duration::from_secs(1)).is_ok());
    /// assert_eq!(SlidingWindow::try_new(0, Duration::from_secs(1)).unwrap_err(), QuotaError::ZeroCount);
    /// ```
    pub fn try_new(n: u32, period: Duration) -> Result<Self, QuotaError> {
        Self::try_with_timer(n, period, Auto)
    }
}

impl<T: Timer> SlidingWindow<T> {
    /// At most `n` events in any window of length `period`, on `timer`'s
    /// clock.
    ///
    /// # Panics
    ///
    /// If `n` or `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use portasync::rt::ManualClock;
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let window = SlidingWindow::with_timer(2, Duration::from_secs(10), clock.clone());
    /// window.check().unwrap();
    /// clock.advance(Duration::from_secs(9));
    /// window.check().unwrap();
    /// assert!(window.check().is_err());
    /// clock.advance(Duration::from_secs(1)); // the first event left the window
    /// assert!(window.check().is_ok());
    /// assert!(window.check().is_err()); // the second is still in it
    /// # }
    /// ```
    #[track_caller]
    pub fn with_timer(n: u32, period: Duration, timer: T) -> Self {
        match Self::try_with_timer(n, period, timer) {
            Ok(window) => window,
            Err(QuotaError::ZeroPeriod) => {
                panic!("SlidingWindow: `period` must be greater than zero")
            }
            Err(_) => panic!("SlidingWindow: `n` must be greater than zero"),
        }
    }

    /// [`with_timer`](Self::with_timer) for values that come from run-time
    /// input.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ZeroCount`] if `n` is zero, [`QuotaError::ZeroPeriod`]
    /// if `period` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::Auto;
    /// use portasync::{QuotaError, SlidingWindow};
    /// use std::time::Duration;
    ///
    /// let err = SlidingWindow::try_with_timer(1, Duration::ZERO, Auto).unwrap_err();
    /// assert_eq!(err, QuotaError::ZeroPeriod);
    /// ```
    pub fn try_with_timer(n: u32, period: Duration, timer: T) -> Result<Self, QuotaError> {
        if n == 0 {
            return Err(QuotaError::ZeroCount);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        let span = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let origin = Origin::new(timer.now());
        let window = Window {
            limit: n,
            period,
            span,
            runs: VecDeque::new(),
            start: 0,
            last: 0,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                timer,
                origin,
                state: Mutex::new(window),
            }),
        })
    }

    /// Admits one event if the window allows it now.
    ///
    /// # Errors
    ///
    /// [`NotUntil`] when it does not, with the time at which it would.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// let window = SlidingWindow::new(1, Duration::from_secs(60));
    /// assert!(window.check().is_ok());
    /// assert!(window.check().unwrap_err().wait_time() <= Duration::from_secs(60));
    /// ```
    pub fn check(&self) -> Result<(), NotUntil> {
        self.check_n(1).map_err(|err| match err {
            RateLimited::NotUntil(not_until) => not_until,
            RateLimited::InsufficientCapacity(_) => unreachable!("every limit is at least 1"),
        })
    }

    /// Admits `n` events at once if the window allows it now: all or none.
    /// `check_n(0)` always succeeds.
    ///
    /// # Errors
    ///
    /// [`RateLimited::NotUntil`] when the window allows it later;
    /// [`RateLimited::InsufficientCapacity`] when `n` is above the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{RateLimited, SlidingWindow};
    /// use std::time::Duration;
    ///
    /// let window = SlidingWindow::new(10, Duration::from_secs(1));
    /// assert!(window.check_n(7).is_ok());
    /// assert!(matches!(window.check_n(4), Err(RateLimited::NotUntil(_))));
    /// assert_eq!(window.check_n(11), Err(RateLimited::InsufficientCapacity(10)));
    /// ```
    pub fn check_n(&self, n: u32) -> Result<(), RateLimited> {
        let nanos = self.shared.origin.read(&self.shared.timer);
        let mut window = lock(&self.shared.state);
        if n > window.limit {
            return Err(RateLimited::InsufficientCapacity(window.limit));
        }
        if n == 0 {
            return Ok(());
        }
        let at = window.earliest(nanos, n);
        if at <= window.last {
            window.admit(at, n);
            return Ok(());
        }
        Err(NotUntil::new(self.shared.origin, nanos, u128::from(at), 1).into())
    }

    /// Waits until one event fits, in FIFO order with the other waiters.
    ///
    /// # Cancel safety
    ///
    /// See [`WindowAcquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let window = SlidingWindow::new(2, Duration::from_millis(5));
    /// for _ in 0..4 {
    ///     window.acquire().await; // the last two wait about 5 ms
    /// }
    /// # });
    /// ```
    pub fn acquire(&self) -> WindowAcquire<'_, T> {
        WindowAcquire {
            inner: self.acquire_n(1),
        }
    }

    /// Waits until `n` events fit at once, in FIFO order with the other
    /// waiters.
    ///
    /// # Errors
    ///
    /// The output is [`InsufficientCapacity`] at once when `n` is above the
    /// limit.
    ///
    /// # Cancel safety
    ///
    /// See [`WindowAcquireN`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let window = SlidingWindow::new(10, Duration::from_secs(1));
    /// window.acquire_n(10).await.unwrap();
    /// assert!(window.acquire_n(11).await.is_err());
    /// # });
    /// ```
    pub fn acquire_n(&self, n: u32) -> WindowAcquireN<'_, T> {
        WindowAcquireN {
            window: self,
            n,
            turn: Turn::new(),
        }
    }

    /// The most events allowed in one window.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// assert_eq!(SlidingWindow::new(4, Duration::from_secs(1)).limit(), 4);
    /// ```
    pub fn limit(&self) -> u32 {
        lock(&self.shared.state).limit
    }

    /// The window's length.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::SlidingWindow;
    /// use std::time::Duration;
    ///
    /// assert_eq!(SlidingWindow::new(4, Duration::from_secs(1)).period(), Duration::from_secs(1));
    /// ```
    pub fn period(&self) -> Duration {
        lock(&self.shared.state).period
    }

    pub(super) fn poll_turn(
        &self,
        n: u32,
        turn: Pin<&mut Turn<T::Sleep>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), InsufficientCapacity>> {
        let shared = &*self.shared;
        let mut turn = turn.project();
        let at = match *turn.booking {
            Some(Booking { at, .. }) => at,
            None => {
                let nanos = shared.origin.read(&shared.timer);
                let mut window = lock(&shared.state);
                if n > window.limit {
                    let capacity = window.limit;
                    return Poll::Ready(Err(InsufficientCapacity {
                        requested: n,
                        capacity,
                    }));
                }
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                let at = window.earliest(nanos, n);
                window.admit(at, n);
                if at <= window.last {
                    return Poll::Ready(Ok(()));
                }
                let at = u128::from(at);
                *turn.booking = Some(Booking { id: 0, at });
                at
            }
        };
        let sleep = || shared.origin.sleep(&shared.timer, at);
        if Turn::poll_nap(turn.nap.as_mut(), at, sleep, cx).is_pending() {
            return Poll::Pending;
        }
        turn.nap.set(Nap::Idle);
        *turn.booking = None;
        Poll::Ready(Ok(()))
    }

    /// Removes the events of a waiter dropped before its time.
    pub(super) fn leave(&self, n: u32, turn: Pin<&mut Turn<T::Sleep>>) {
        let Some(Booking { at, .. }) = turn.project().booking.take() else {
            return;
        };
        let nanos = self.shared.origin.read(&self.shared.timer);
        let mut window = lock(&self.shared.state);
        // Booked times fit a u64: they are nanoseconds on this clock.
        let at = u64::try_from(at).unwrap_or(u64::MAX);
        if nanos.max(window.last) < at {
            window.give_back(at, n);
        }
    }
}

impl<T> Clone for SlidingWindow<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for SlidingWindow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let window = lock(&self.shared.state);
        f.debug_struct("SlidingWindow")
            .field("limit", &window.limit)
            .field("period", &window.period)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SlidingWindow::acquire`]: ready when the event is
    /// admitted.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{SlidingWindow, WindowAcquire};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let window = SlidingWindow::new(5, Duration::from_secs(1));
    /// let turn: WindowAcquire<'_> = window.acquire();
    /// turn.await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`WindowAcquireN`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct WindowAcquire<'a, T: Timer = Auto> {
        #[pin]
        inner: WindowAcquireN<'a, T>,
    }
}

impl<T: Timer> Future for WindowAcquire<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // One event always fits the limit: the error cannot happen.
        self.project().inner.poll(cx).map(|_| ())
    }
}

impl<T: Timer> fmt::Debug for WindowAcquire<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowAcquire")
            .field("turn", &self.inner.turn)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SlidingWindow::acquire_n`]: ready when the events
    /// are admitted, or at once with [`InsufficientCapacity`] for more than
    /// the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{SlidingWindow, WindowAcquireN};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let window = SlidingWindow::new(5, Duration::from_secs(1));
    /// let turn: WindowAcquireN<'_> = window.acquire_n(3);
    /// turn.await.unwrap();
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropped before its time, it removes its events from the window, so
    /// later checks may use them; the waiters behind it keep their times.
    /// Dropped after its time came, its events count as admitted.
    #[must_use = "futures do nothing unless awaited"]
    pub struct WindowAcquireN<'a, T: Timer = Auto> {
        window: &'a SlidingWindow<T>,
        n: u32,
        #[pin]
        turn: Turn<T::Sleep>,
    }

    impl<'a, T: Timer> PinnedDrop for WindowAcquireN<'a, T> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.window.leave(*this.n, this.turn);
        }
    }
}

impl<T: Timer> Future for WindowAcquireN<'_, T> {
    type Output = Result<(), InsufficientCapacity>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.window.poll_turn(*this.n, this.turn, cx)
    }
}

impl<T: Timer> fmt::Debug for WindowAcquireN<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowAcquireN")
            .field("n", &self.n)
            .field("turn", &self.turn)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Running totals as if nearly 2^64 events had passed: admitting and
    /// giving back go on with the same answers, and nothing overflows.
    #[test]
    fn totals_never_overflow() {
        let most = u64::from(u32::MAX);
        let mut window = Window {
            limit: u32::MAX,
            period: Duration::from_nanos(10),
            span: 10,
            runs: VecDeque::new(),
            start: u64::MAX - most,
            last: 0,
        };
        for at in (0..100).step_by(10) {
            assert_eq!(window.earliest(at, u32::MAX), at);
            window.admit(at, u32::MAX);
            assert_eq!(window.earliest(at, 1), at + 10, "the window is full");
        }
        // Two bookings ahead; the first given back leaves room for one
        // event at once, behind the second booking.
        window.admit(100, u32::MAX);
        window.admit(110, 1);
        window.give_back(100, u32::MAX);
        assert_eq!(window.runs.len(), 2, "the runs at 90 and 110");
        assert_eq!(window.earliest(95, u32::MAX - 1), 110);
        assert_eq!(window.earliest(95, u32::MAX), 120);
    }
}
