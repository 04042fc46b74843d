//! Rate limits: an exact GCRA limiter ([`RateLimiter`]), one per key
//! ([`KeyedRateLimiter`]), a strict sliding window ([`SlidingWindow`]) and a
//! stream adaptor ([`throttle`]).
//!
//! # Which one
//!
//! - [`RateLimiter`]: "n per period, with bursts of up to b". The generic
//!   cell rate algorithm (a leaky bucket kept as one timestamp), like
//!   governor's direct limiter and Python's aiolimiter, but exact: the
//!   arithmetic is integer nanoseconds scaled by the count, so `3 per second`
//!   means exactly three per second forever, not one every 333,333,333 ns.
//! - [`KeyedRateLimiter`]: the same, one state per key (per user, per IP),
//!   like governor's keyed limiter; [`retain_recent`](KeyedRateLimiter::retain_recent)
//!   forgets keys that are back to a full bucket.
//! - [`SlidingWindow`]: "at most n in any window of length `period`", the
//!   asyncio sliding-window recipe, when a server counts requests per window
//!   and a GCRA's smoothing is not what it checks.
//! - [`throttle`]: a stream that yields no faster than a limiter allows.
//!
//! # Waiting
//!
//! `acquire` reserves the caller's turn at once and sleeps until it, on the
//! limiter's [`Timer`](crate::rt::Timer): waiters are served in the order
//! they first polled, each is woken about once (by its own timer), and there
//! is no leader whose loss would stall the others. `check` never jumps the
//! queue: a reservation is taken from the same state.
//!
//! Everything reads time through the timer, so a
//! [`ManualClock`](crate::rt::ManualClock) makes every rule here testable
//! without sleeping.

mod gcra;
mod keyed;
mod quota;
mod throttle;
mod window;

pub use gcra::{RateAcquire, RateAcquireN, RateLimiter};
pub use keyed::{KeyedAcquire, KeyedAcquireN, KeyedRateLimiter};
pub use quota::{Quota, QuotaError};
pub use throttle::{Limiter, Throttle, throttle};
pub use window::{SlidingWindow, WindowAcquire, WindowAcquireN};

use crate::rt::clock::Counter;
use crate::rt::deadline_after;
use std::fmt;
use std::time::{Duration, Instant};

/// The error of a refused [`RateLimiter::check`]: when the same request
/// would be allowed.
///
/// # Examples
///
/// ```
/// use portasync::{NotUntil, Quota, RateLimiter};
///
/// let limiter = RateLimiter::new(Quota::per_second(1));
/// limiter.check().unwrap();
/// let refused: NotUntil = limiter.check().unwrap_err();
/// assert!(refused.wait_time() > std::time::Duration::ZERO);
/// assert!(refused.wait_time() <= std::time::Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, thiserror::Error)]
#[error("rate limit reached: retry in {wait:?}", wait = self.wait_time())]
pub struct NotUntil {
    // The raw numbers of the refused check: turning them into a time takes
    // 128-bit divisions and `Instant` arithmetic, done only when asked for,
    // so a refusal costs no more than an admission.
    /// The limiter's origin.
    origin: Instant,
    /// The limiter's clock reading at the check, in nanoseconds since the
    /// origin.
    nanos: u64,
    /// When the request would be allowed, in ticks since the origin.
    earliest: u128,
    /// Ticks per nanosecond.
    per_nano: u32,
}

impl NotUntil {
    fn new(origin: Origin, nanos: u64, earliest: u128, per_nano: u32) -> Self {
        Self {
            origin: origin.at,
            nanos,
            earliest,
            per_nano,
        }
    }

    /// The limiter's clock reading at the check.
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.nanos)
    }

    fn wait_nanos(&self) -> u128 {
        let earliest = self.earliest.div_ceil(u128::from(self.per_nano));
        if earliest >= u128::from(CLOCK_END) {
            return u128::MAX; // at or past the clock's end: never
        }
        earliest.saturating_sub(u128::from(self.nanos))
    }

    /// The earliest instant, on the limiter's clock, at which the same
    /// request would be allowed (if nobody else takes the capacity first).
    ///
    /// A time too far away for an `Instant` (a quota with a period of
    /// centuries) reads as decades from the check; [`wait_time`](Self::wait_time)
    /// is exact (or `Duration::MAX`, past the limiter's clock's end).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use portasync::rt::{ManualClock, Timer};
    /// use portasync::{Quota, RateLimiter};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::with_timer(Quota::per_second(2), clock.clone());
    /// limiter.check().unwrap();
    /// limiter.check().unwrap();
    /// let refused = limiter.check().unwrap_err();
    /// assert_eq!(refused.earliest(), clock.now() + Duration::from_millis(500));
    /// # }
    /// ```
    pub fn earliest(&self) -> Instant {
        deadline_after(self.now(), self.wait_time())
    }

    /// How long after the refused check the request would be allowed: exact
    /// to the nanosecond, and the same request made exactly then succeeds
    /// (if nobody else takes the capacity first). `Duration::MAX` when that
    /// time lies past the end of the limiter's clock, 584 years after the
    /// limiter was made, where time stands still for it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use portasync::rt::ManualClock;
    /// use portasync::{Quota, RateLimiter};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::with_timer(Quota::per_second(3), clock.clone());
    /// for _ in 0..3 {
    ///     limiter.check().unwrap();
    /// }
    /// let wait = limiter.check().unwrap_err().wait_time();
    /// assert_eq!(wait, Duration::from_nanos(333_333_334)); // 1/3 s, rounded up
    /// clock.advance(wait - Duration::from_nanos(1));
    /// assert!(limiter.check().is_err());
    /// clock.advance(Duration::from_nanos(1));
    /// assert!(limiter.check().is_ok());
    /// # }
    /// ```
    pub fn wait_time(&self) -> Duration {
        duration_from_nanos(self.wait_nanos())
    }
}

impl PartialEq for NotUntil {
    fn eq(&self, other: &Self) -> bool {
        (self.now(), self.wait_nanos()) == (other.now(), other.wait_nanos())
    }
}

impl Eq for NotUntil {}

impl std::hash::Hash for NotUntil {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.now(), self.wait_nanos()).hash(state);
    }
}

impl fmt::Debug for NotUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotUntil")
            .field("wait_time", &self.wait_time())
            .finish()
    }
}

/// The error of a refused `check_n`: not yet, or never (more than the
/// limiter can ever allow at once).
///
/// # Examples
///
/// ```
/// use portasync::{Quota, RateLimited, RateLimiter};
///
/// let limiter = RateLimiter::new(Quota::per_second(10));
/// assert!(limiter.check_n(10).is_ok());
/// assert!(matches!(limiter.check_n(1), Err(RateLimited::NotUntil(_))));
/// assert_eq!(limiter.check_n(11), Err(RateLimited::InsufficientCapacity(10)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RateLimited {
    /// Allowed later: see [`NotUntil::wait_time`].
    #[error(transparent)]
    NotUntil(NotUntil),
    /// Never allowed at once: the request is larger than the limiter's
    /// capacity (a [`Quota`]'s burst, a [`SlidingWindow`]'s count), given
    /// here. Split the request, or raise the burst.
    #[error("request exceeds the limiter's capacity of {0}")]
    InsufficientCapacity(u32),
}

impl From<NotUntil> for RateLimited {
    fn from(not_until: NotUntil) -> Self {
        Self::NotUntil(not_until)
    }
}

impl From<InsufficientCapacity> for RateLimited {
    fn from(err: InsufficientCapacity) -> Self {
        Self::InsufficientCapacity(err.capacity)
    }
}

/// The error of an `acquire_n` for more than the limiter can ever allow at
/// once: waiting would never end, so it fails at once instead.
///
/// # Examples
///
/// ```
/// use portasync::{InsufficientCapacity, Quota, RateLimiter};
///
/// # futures_lite::future::block_on(async {
/// let limiter = RateLimiter::new(Quota::per_second(10));
/// let err: InsufficientCapacity = limiter.acquire_n(11).await.unwrap_err();
/// assert_eq!(err.capacity(), 10);
/// assert_eq!(err.to_string(), "request for 11 exceeds the limiter's capacity of 10");
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("request for {requested} exceeds the limiter's capacity of {capacity}")]
pub struct InsufficientCapacity {
    requested: u32,
    capacity: u32,
}

impl InsufficientCapacity {
    /// The most the limiter allows at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(5).burst(2));
    /// assert_eq!(limiter.acquire_n(3).await.unwrap_err().capacity(), 2);
    /// # });
    /// ```
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many the refused request asked for.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(5));
    /// assert_eq!(limiter.acquire_n(6).await.unwrap_err().requested(), 6);
    /// # });
    /// ```
    pub fn requested(&self) -> u32 {
        self.requested
    }
}

/// The end of a limiter's clock, 584 years after it was made: a time it
/// never reaches. Readings stop a nanosecond short of it, and time stands
/// still there for the limiter (see the limiters' "clock's end"); a time at
/// or past it never comes: nothing sleeps for it, and a wait for it is
/// `Duration::MAX`.
const CLOCK_END: u64 = u64::MAX;

/// A limiter's own time axis: nanoseconds since it was made, read from its
/// timer, up to a nanosecond short of [`CLOCK_END`].
#[derive(Clone, Copy, Debug)]
struct Origin {
    at: Instant,
    /// The counter clock and `at` in nanoseconds past its base, when there
    /// is one and `at` is not before it: then a timer that reads the counter
    /// clock is read in nanoseconds directly (see [`read`](Self::read)).
    counter: Option<(Counter, u64)>,
}

impl Origin {
    fn new(at: Instant) -> Self {
        let counter = crate::rt::clock::counter().and_then(|counter| {
            let since = at.checked_duration_since(counter.base())?;
            Some((counter, u64::try_from(since.as_nanos()).ok()?))
        });
        Self { at, counter }
    }

    /// `timer`'s reading in nanoseconds since the origin. A timer on the
    /// counter clock is read without building an `Instant` only to take it
    /// apart here (std's `Instant` arithmetic is not inlined: about 8 ns).
    #[inline]
    fn read<T: crate::rt::Timer>(&self, timer: &T) -> u64 {
        self.reading(timer).nanos()
    }

    /// [`read`](Self::read), with the last subtraction left to the caller,
    /// who may fold it into one of its own.
    // Always inlined: see `RateLimiter::check`.
    #[inline(always)]
    fn reading<T: crate::rt::Timer>(&self, timer: &T) -> Reading {
        if let Some((counter, past_base)) = self.counter {
            if crate::rt::reads_counter(timer) {
                return Reading {
                    raw: counter.nanos(),
                    offset: past_base,
                };
            }
        }
        Reading {
            raw: self.nanos(timer.now()),
            offset: 0,
        }
    }

    #[inline]
    fn nanos(self, now: Instant) -> u64 {
        // In u64 rather than through `as_nanos`'s u128.
        let since = now.saturating_duration_since(self.at);
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
            .min(CLOCK_END - 1)
    }

    /// A sleep until `nanos` after the origin on `timer`; `None` for a time
    /// at or past [`CLOCK_END`], which never comes (a sleep for it would
    /// fire once the timer got there, where the limiter's time stands
    /// still). When the instant cannot be represented, the longest sleep
    /// the timer has (decades on the real-time timers).
    fn sleep<T: crate::rt::Timer>(self, timer: &T, nanos: u128) -> Option<T::Sleep> {
        if nanos >= u128::from(CLOCK_END) {
            return None;
        }
        Some(match self.at.checked_add(duration_from_nanos(nanos)) {
            Some(deadline) => timer.sleep_until(deadline),
            None => timer.sleep(Duration::MAX),
        })
    }
}

/// A clock reading as [`Origin::reading`] gives it: `raw - offset`
/// nanoseconds since the origin, saturating at zero.
#[derive(Clone, Copy, Debug)]
struct Reading {
    raw: u64,
    offset: u64,
}

impl Reading {
    /// Nanoseconds since the origin.
    #[inline]
    fn nanos(self) -> u64 {
        self.raw.saturating_sub(self.offset)
    }

    /// Nanoseconds since `base` nanoseconds after the origin, in one
    /// subtraction; `None` for a reading before it.
    #[inline]
    fn since(self, base: u64) -> Option<u64> {
        self.raw.checked_sub(self.offset.saturating_add(base))
    }
}

/// `nanos` as a `Duration`, saturating at `Duration::MAX`.
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9, so it fits a u32.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// Takes a lock, ignoring poison: every critical section in this module
/// leaves the state consistent before anything that could panic (a user's
/// waker, the key's `Hash`, `Eq` or `Clone`) runs under it.
#[inline]
fn lock<T>(mutex: &crate::primitives::Mutex<T>) -> crate::primitives::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pin_project_lite::pin_project! {
    /// A waiting caller's booking and its sleep: the part of every acquire
    /// future that does not depend on the kind of limiter.
    #[project = TurnProj]
    pub struct Turn<S> {
        // Set once the caller has booked a time; cleared when it is served.
        booking: Option<Booking>,
        #[pin]
        nap: Nap<S>,
    }
}

/// A caller's place among its limiter's waiters.
#[derive(Clone, Copy, Debug)]
struct Booking {
    /// Which waiter this is in the limiter's queue.
    id: u64,
}

pin_project_lite::pin_project! {
    #[project = NapProj]
    enum Nap<S> {
        Idle,
        // `at`: the booked time the sleep was made for.
        Armed { at: u128, #[pin] sleep: S },
    }
}

impl<S> Turn<S> {
    fn new() -> Self {
        Self {
            booking: None,
            nap: Nap::Idle,
        }
    }
}

impl<S: std::future::Future<Output = ()>> Turn<S> {
    /// Sleeps with `sleep()`, made for the booked time `at`: a sleep made
    /// for another `at` is replaced. Ready once the sleep has fired; for a
    /// time that never comes (`sleep()` is `None`), pending with no sleep:
    /// the waiter is woken only if one ahead of it gives way.
    fn poll_nap(
        mut nap: std::pin::Pin<&mut Nap<S>>,
        at: u128,
        sleep: impl FnOnce() -> Option<S>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if !matches!(nap.as_mut().project(), NapProj::Armed { at: armed, .. } if *armed == at) {
            let Some(sleep) = sleep() else {
                nap.set(Nap::Idle);
                return std::task::Poll::Pending;
            };
            nap.set(Nap::Armed { at, sleep });
        }
        match nap.project() {
            NapProj::Armed { sleep, .. } => sleep.poll(cx),
            NapProj::Idle => unreachable!("armed just above"),
        }
    }
}

impl<S> fmt::Debug for Turn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Turn")
            .field("booked", &self.booking.is_some())
            .field("sleeping", &matches!(self.nap, Nap::Armed { .. }))
            .finish()
    }
}
