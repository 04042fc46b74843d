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
//!
//! A dropped waiter's give-back also lets the waiters behind it fit
//! earlier, but not by one amount (a booking depends on the events in its
//! own window), so they book again one by one, each on its own task: the
//! one behind the dropped waiter is woken, books again, and wakes the next
//! (see [`Cursor`]) for as long as the change can reach it. A waiter only
//! ever moves earlier, and never ahead of the one before it, so a booking
//! that has not been redone yet still holds; a waiter that does not poll
//! holds up the moving up behind it, never anyone's service. Each waiter
//! books again in O(log runs), and is woken once more per give-back that
//! reaches it.

use super::{
    Booking, CLOCK_END, InsufficientCapacity, Nap, NotUntil, Origin, QuotaError, RateLimited, Turn,
    lock,
};
use crate::primitives::{Arc, Mutex, MutexGuard};
use crate::rt::{Auto, Timer};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
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
///   window. [`NotUntil::wait_time`] is exact to the nanosecond (before the
///   clock's end, below).
/// - **Fair**: waiters are served in the order they first polled, each
///   woken once by its own timer; `check` never takes a waiter's place.
///   When a waiter gives up, those behind it move up to the first times
///   they now fit, in order (each woken once more to book again).
/// - **Memory**: one entry per distinct admission time in the last period,
///   at most `n`, plus one per waiter.
/// - **Clock's end**: the window counts nanoseconds from when it was made,
///   for 584 years. Past that, time stands still for it: no event leaves
///   the window any more, and a refusal is for good (its `wait_time` is
///   `Duration::MAX`). A period that would end later never ends; a waiter
///   that only such an end would serve waits until one ahead of it gives
///   way.
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
/// come removes its events, and the waiters behind it move up into the
/// room, each booking again when next polled (the one right behind is
/// woken for it, and wakes the next). A check is never admitted ahead of a
/// booking. Dropped after its time came, its events count as admitted.
pub struct SlidingWindow<T = Auto> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    timer: T,
    origin: Origin,
    state: Mutex<Window>,
}

impl<T: Timer> Shared<T> {
    /// The clock, in nanoseconds since the origin: short of [`NEVER`].
    fn now(&self) -> u64 {
        self.origin.read(&self.timer)
    }
}

struct Window {
    limit: u32,
    period: Duration,
    /// The period in nanoseconds, saturated: an event whose period ends past
    /// the clock's end ([`NEVER`]) stays in every later window.
    span: u64,
    runs: VecDeque<Run>,
    /// Events admitted before the first run kept. Only differences of the
    /// running totals matter, so all of them, this included, may be moved
    /// by the same amount (see [`give_back`](Self::give_back)).
    start: u64,
    /// The latest clock reading seen, so that every run is later than the
    /// one before even when callers race.
    last: u64,
    /// The waiters with a booked time, by id: in the order they booked,
    /// which is the order of their times. Kept until served or dropped.
    waiters: BTreeMap<u64, Waiter>,
    next_id: u64,
    /// The waiter to re-book next, after one ahead of it was dropped.
    cursor: Option<Cursor>,
}

/// A waiting caller's booking: `n` events at `at`.
#[derive(Debug)]
struct Waiter {
    at: u64,
    n: u32,
    /// Woken to re-book when it is the [`Cursor`].
    waker: Option<Waker>,
}

/// Where the re-booking after a give-back has got to: the waiter `id` may
/// now fit earlier, and is woken to re-book.
///
/// Only events at or before `frontier` (the latest time that events were
/// given back or moved from) were taken away, so only a waiter that could
/// count them in its window, one less than a period after `frontier`, or
/// one behind a waiter that moved, can move in turn: re-booking goes on
/// from waiter to waiter until neither holds (see
/// [`pass_cursor`](Window::pass_cursor)).
#[derive(Clone, Copy, Debug)]
struct Cursor {
    id: u64,
    frontier: u64,
}

/// Events admitted at one nanosecond.
#[derive(Clone, Copy, Debug)]
struct Run {
    at: u64,
    /// Events ever admitted up to and including this run.
    total: u64,
}

/// A time the window's clock never reaches: its readings stop one
/// nanosecond short, 584 years after the window was made. An event whose
/// period would end later never leaves the window, and a booking at `NEVER`
/// is not served until those ahead of it give way.
const NEVER: u64 = CLOCK_END;

/// `time` on the window's clock: [`NEVER`] if it lies past the end.
fn on_clock(time: u128) -> u64 {
    u64::try_from(time).unwrap_or(NEVER)
}

impl Window {
    fn total(&self) -> u64 {
        self.runs.back().map_or(self.start, |run| run.total)
    }

    /// The first time at or after `now` (clamped) at which `n` more events
    /// fit, forgetting the runs that can no longer matter. Exact, so that a
    /// `wait_time` past the clock's end is right too: [`on_clock`] gives it
    /// on the clock.
    fn earliest(&mut self, now: u64, n: u32) -> u128 {
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
            return u128::from(newest);
        }
        let index = total - must_pass;
        // A single event refused while nobody waits waits for the oldest
        // kept one (at most `limit` events are kept then): no search.
        let run = if self.runs.front().is_some_and(|front| front.total > index) {
            0
        } else {
            self.runs.partition_point(|run| run.total <= index)
        };
        let ends = u128::from(self.runs[run].at) + self.period.as_nanos();
        ends.max(u128::from(newest))
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

    /// Books `n` events (at most the limit) at the first time they fit
    /// at or after `now`: `None` if that is now (they are admitted), else
    /// the waiter's id and time.
    fn book(&mut self, now: u64, n: u32, waker: &Waker) -> Option<(u64, u64)> {
        let at = on_clock(self.earliest(now, n));
        self.admit(at, n);
        if at <= self.last {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let waker = Some(waker.clone());
        self.waiters.insert(id, Waiter { at, n, waker });
        Some((id, at))
    }

    /// Waiter `id`, which is kept until it is served or dropped.
    fn waiter(&mut self, id: u64) -> &mut Waiter {
        let Some(waiter) = self.waiters.get_mut(&id) else {
            unreachable!("a waiter is kept until it is served or dropped")
        };
        waiter
    }

    /// The waiter behind waiter `id`.
    fn behind(&self, id: u64) -> Option<(u64, &Waiter)> {
        let (&next, waiter) = self.waiters.range(id + 1..).next()?;
        Some((next, waiter))
    }

    /// Moves the events of the waiter at `index` to the first time they
    /// now fit, at or after `now` and the waiter ahead of it; whether they
    /// moved. Their new time is before their old one, and after every
    /// event ahead of them, so no window can hold more than before but
    /// those ending between the two times, which hold only the events
    /// ahead and these: no more than the limit, as the new time was found.
    fn rebook(&mut self, id: u64, now: u64) -> bool {
        let Waiter { at, n, .. } = *self.waiter(id);
        let ahead = self
            .waiters
            .range(..id)
            .next_back()
            .map_or(0, |(_, ahead)| ahead.at);
        let lower = now.max(ahead);
        // Booked with a waiter ahead at the same time: it stays behind it.
        if lower >= at {
            return false;
        }
        let Ok(run) = self.runs.binary_search_by_key(&at, |run| run.at) else {
            unreachable!("a booking is kept until its time")
        };
        // The events ahead of this waiter's, which are all before `at`.
        let before = if run == 0 {
            self.start
        } else {
            self.runs[run - 1].total
        };
        let must_pass = u64::from(self.limit - n) + 1;
        let fits = if before - self.start < must_pass {
            lower
        } else {
            let index = before - must_pass;
            // The run of that event: the first with a total above it,
            // among the runs ahead.
            let (mut low, mut high) = (0, run);
            while low < high {
                let middle = low + (high - low) / 2;
                if self.runs[middle].total <= index {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            lower.max(self.runs[low].at.saturating_add(self.span))
        };
        if fits >= at {
            return false;
        }
        let n = u64::from(n);
        let alone = self.runs[run].total - before == n;
        if run > 0 && self.runs[run - 1].at == fits {
            self.runs[run - 1].total += n;
            if alone {
                self.runs.remove(run);
            }
        } else if alone {
            self.runs[run].at = fits;
        } else {
            // Waiters behind it share its old time: split the run.
            self.runs.insert(
                run,
                Run {
                    at: fits,
                    total: before + n,
                },
            );
        }
        self.waiter(id).at = fits;
        true
    }

    /// Passes the cursor from waiter `id`, whose events are at `at` and
    /// moved (from `from`) or not, to the next waiter if that one may move
    /// now; the waker to wake.
    fn pass_cursor(&mut self, id: u64, at: u64, moved: Option<u64>) -> Option<Waker> {
        let cursor = self.cursor.take()?;
        let frontier = moved.map_or(cursor.frontier, |from| cursor.frontier.max(from));
        if moved.is_none() && at >= frontier.saturating_add(self.span) {
            return None;
        }
        let (next, waiter) = self.behind(id)?;
        let waker = waiter.waker.clone();
        self.cursor = Some(Cursor { id: next, frontier });
        waker
    }

    /// Forgets waiter `id`, served (its time came) or dropped. A dropped
    /// one's events are given back if its time has not come; then the
    /// waiter behind it (unless the cursor is already ahead of it) is the
    /// cursor, and is returned to wake.
    fn remove(&mut self, id: u64, dropped: bool) -> Option<Waker> {
        let Waiter { at, n, .. } = *self.waiter(id);
        let wake = if !(dropped && self.last < at) {
            // Served: its events stay where they are.
            match self.cursor {
                Some(cursor) if cursor.id == id => self.pass_cursor(id, at, None),
                _ => None,
            }
        } else {
            self.give_back(at, n);
            match self.cursor {
                Some(cursor) if cursor.id < id => {
                    self.cursor = Some(Cursor {
                        id: cursor.id,
                        frontier: cursor.frontier.max(at),
                    });
                    None
                }
                cursor => {
                    let frontier = cursor.map_or(at, |cursor| cursor.frontier.max(at));
                    let behind = self
                        .behind(id)
                        .map(|(next, waiter)| (next, waiter.waker.clone()));
                    self.cursor = behind
                        .as_ref()
                        .map(|&(next, _)| Cursor { id: next, frontier });
                    behind.and_then(|(_, waker)| waker)
                }
            }
        };
        self.waiters.remove(&id);
        wake
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
            waiters: BTreeMap::new(),
            next_id: 0,
            cursor: None,
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
        let nanos = self.shared.now();
        let mut window = lock(&self.shared.state);
        if n > window.limit {
            return Err(RateLimited::InsufficientCapacity(window.limit));
        }
        if n == 0 {
            return Ok(());
        }
        let at = window.earliest(nanos, n);
        if at <= u128::from(window.last) {
            window.admit(on_clock(at), n);
            return Ok(());
        }
        Err(NotUntil::new(self.shared.origin, nanos, at, 1).into())
    }

    /// Waits until one event fits, in FIFO order with the other waiters.
    ///
    /// # Cancel safety
    ///
    /// See [`WindowAcquire`].
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
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
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
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
        let nanos = shared.now();
        let mut window = lock(&shared.state);
        let (id, at) = match *turn.booking {
            Some(Booking { id, .. }) => {
                let now = nanos.max(window.last);
                window.last = now;
                let waiter = window.waiter(id);
                let from = waiter.at;
                if from <= now {
                    return serve(window, id, turn);
                }
                if !waiter
                    .waker
                    .as_ref()
                    .is_some_and(|filed| filed.will_wake(cx.waker()))
                {
                    waiter.waker = Some(cx.waker().clone());
                }
                let mut wake = None;
                if window.cursor.is_some_and(|cursor| cursor.id == id) {
                    let moved = window.rebook(id, now).then_some(from);
                    let at = window.waiter(id).at;
                    wake = window.pass_cursor(id, at, moved);
                }
                let at = window.waiter(id).at;
                drop(window);
                if let Some(waker) = wake {
                    waker.wake();
                }
                (id, at)
            }
            None => {
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
                let Some(booked) = window.book(nanos, n, cx.waker()) else {
                    return Poll::Ready(Ok(()));
                };
                // Unlocked before the sleep: one already due is served
                // below, under the lock again.
                drop(window);
                booked
            }
        };
        *turn.booking = Some(Booking { id });
        let at = u128::from(at);
        let sleep = || shared.origin.sleep(&shared.timer, at);
        if Turn::poll_nap(turn.nap.as_mut(), at, sleep, cx).is_pending() {
            return Poll::Pending;
        }
        // The timer says its time has come.
        let mut window = lock(&shared.state);
        window.last = window.last.max(window.waiter(id).at);
        serve(window, id, turn)
    }

    /// Removes the events of a waiter dropped before its time, and hands
    /// its place on to the waiters behind it.
    pub(super) fn leave(&self, turn: Pin<&mut Turn<T::Sleep>>) {
        let Some(Booking { id, .. }) = turn.project().booking.take() else {
            return;
        };
        let nanos = self.shared.now();
        let mut window = lock(&self.shared.state);
        window.last = window.last.max(nanos);
        let wake = window.remove(id, true);
        drop(window);
        if let Some(waker) = wake {
            waker.wake();
        }
    }
}

/// Serves waiter `id`, whose time has come: forgets it, and passes the
/// cursor on if it held it.
fn serve<S>(
    mut window: MutexGuard<'_, Window>,
    id: u64,
    mut turn: super::TurnProj<'_, S>,
) -> Poll<Result<(), InsufficientCapacity>> {
    let wake = window.remove(id, false);
    drop(window);
    turn.nap.set(Nap::Idle);
    *turn.booking = None;
    if let Some(waker) = wake {
        waker.wake();
    }
    Poll::Ready(Ok(()))
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
    /// Dropped before its time, it removes its events from the window, and
    /// the waiters behind it move up into the room they leave. Dropped
    /// after its time came, its events count as admitted.
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
            this.window.leave(this.turn);
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
            waiters: BTreeMap::new(),
            next_id: 0,
            cursor: None,
        };
        for at in (0..100u64).step_by(10) {
            assert_eq!(window.earliest(at, u32::MAX), u128::from(at));
            window.admit(at, u32::MAX);
            assert_eq!(
                window.earliest(at, 1),
                u128::from(at + 10),
                "the window is full"
            );
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
