//! `interval`: ticks at a fixed period.

use crate::rt::{Auto, Timer};
use futures_lite::Stream;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Ticks every `period` on [`Auto`]'s clock; the first tick is immediate.
///
/// # Panics
///
/// If `period` is zero. And when it waits on [`Auto`]'s timer inside a
/// tokio runtime built without its time driver: see
/// [`Auto`](crate::rt::Auto#panics).
///
/// # Examples
///
/// ```
/// use portasync::interval;
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let mut ticks = interval(Duration::from_millis(2));
/// let first = ticks.tick().await;
/// let second = ticks.tick().await;
/// // A period on, or a few should this task run late: missed ticks are skipped.
/// assert!(second - first >= Duration::from_millis(2));
/// # });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_with(&Auto, period)
}

/// Ticks every `period` on `timer`'s clock; the first tick is immediate.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "test-util")] {
/// use portasync::rt::ManualClock;
/// use portasync::interval_with;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let mut ticks = interval_with(&clock, Duration::from_secs(1));
/// let first = futures_lite::future::block_on(ticks.tick());
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(futures_lite::future::block_on(ticks.tick()) - first, Duration::from_secs(1));
/// # }
/// ```
#[track_caller]
pub fn interval_with<T: Timer>(timer: &T, period: Duration) -> Interval<T> {
    assert!(!period.is_zero(), "interval: `period` must be non-zero");
    Interval {
        timer: timer.clone(),
        period,
        next: Some(timer.now()),
        sleep: None,
    }
}

/// A stream of instants `period` apart, from [`interval`] or
/// [`interval_with`]; also usable through [`tick`](Self::tick).
///
/// Each item is the instant the tick was scheduled for, not the moment it
/// was observed. **A late consumer skips missed ticks:** if one or more
/// periods went by unobserved, the next tick comes at once and the ones
/// after it stay on the original schedule (`start + k * period`), with no
/// burst to catch up (tokio's `MissedTickBehavior::Skip`).
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
/// use portasync::interval;
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let ticks: Vec<_> = interval(Duration::from_millis(1)).take(3).collect().await;
/// assert_eq!(ticks.len(), 3);
/// # });
/// ```
///
/// # Cancel safety
///
/// [`tick`](Self::tick) is cancel safe: dropping it before it completes
/// loses no tick.
#[must_use = "streams do nothing unless polled"]
pub struct Interval<T: Timer = Auto> {
    timer: T,
    period: Duration,
    /// The next tick; `None` once the schedule runs past the clock's end.
    next: Option<Instant>,
    sleep: Option<Pin<Box<T::Sleep>>>,
}

impl<T: Timer> Interval<T> {
    /// Waits for the next tick and returns its scheduled instant.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::interval;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let mut every = interval(Duration::from_millis(1));
    /// every.tick().await; // immediate
    /// every.tick().await; // a millisecond later
    /// # });
    /// ```
    pub fn tick(&mut self) -> Tick<'_, T> {
        Tick { interval: self }
    }

    /// The period between ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let every = portasync::interval(Duration::from_secs(2));
    /// assert_eq!(every.period(), Duration::from_secs(2));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let Some(scheduled) = self.next else {
            return Poll::Pending;
        };
        let timer = &self.timer;
        match &mut self.sleep {
            Some(sleep) => {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            // Due already (the first tick, or a late consumer): no timer.
            None if timer.now() >= scheduled => {}
            None => {
                let mut sleep = Box::pin(timer.sleep_until(scheduled));
                if sleep.as_mut().poll(cx).is_pending() {
                    self.sleep = Some(sleep);
                    return Poll::Pending;
                }
            }
        }
        self.next = next_tick(scheduled, self.period, self.timer.now());
        Poll::Ready(scheduled)
    }
}

/// The first tick of the schedule `scheduled + k * period` that lies after
/// `now`: the next one if on time, a later one if ticks were missed. `None`
/// when that overflows the clock.
fn next_tick(scheduled: Instant, period: Duration, now: Instant) -> Option<Instant> {
    let next = scheduled.checked_add(period)?;
    if next > now {
        return Some(next);
    }
    let late = now.duration_since(scheduled).as_nanos();
    let periods = late / period.as_nanos() + 1;
    let skip = period.as_nanos().checked_mul(periods)?;
    let skip = Duration::new(
        u64::try_from(skip / 1_000_000_000).ok()?,
        (skip % 1_000_000_000) as u32,
    );
    scheduled.checked_add(skip)
}

impl<T: Timer> Stream for Interval<T> {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

// Nothing in it is pinned in place: the sleep is boxed.
impl<T: Timer> Unpin for Interval<T> {}

impl<T: Timer> fmt::Debug for Interval<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("period", &self.period)
            .field("next", &self.next)
            .finish()
    }
}

/// The future of [`Interval::tick`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let mut every = portasync::interval(Duration::from_millis(1));
/// let tick: portasync::Tick<'_> = every.tick();
/// tick.await;
/// # });
/// ```
///
/// # Cancel safety
///
/// Dropping it loses no tick: the next call to `tick` waits for the same one.
#[must_use = "futures do nothing unless awaited"]
pub struct Tick<'a, T: Timer = Auto> {
    interval: &'a mut Interval<T>,
}

impl<T: Timer> Future for Tick<'_, T> {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        self.interval.poll_tick(cx)
    }
}

impl<T: Timer> fmt::Debug for Tick<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tick")
            .field("interval", &self.interval)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::next_tick;
    use std::time::{Duration, Instant};

    #[test]
    fn next_tick_keeps_the_schedule_and_skips_missed_ones() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(next_tick(start, second, start), Some(start + second));
        assert_eq!(
            next_tick(start, second, start + second / 2),
            Some(start + second)
        );
        // Exactly on the next tick: that one was missed, as it is due now.
        assert_eq!(
            next_tick(start, second, start + second),
            Some(start + 2 * second)
        );
        assert_eq!(
            next_tick(start, second, start + 3 * second + second / 2),
            Some(start + 4 * second)
        );
        assert_eq!(next_tick(start, Duration::MAX, start), None);
        assert_eq!(
            next_tick(
                start,
                Duration::from_nanos(1),
                start + Duration::from_secs(1_000_000)
            )
            .map(|t| t > start),
            Some(true)
        );
    }
}
