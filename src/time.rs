//! Time limits on futures: [`timeout`], a shared movable [`Deadline`], and
//! [`interval`]s.
//!
//! All of them read time through a [`Timer`](crate::rt::Timer): [`Auto`](crate::rt::Auto)
//! by default (tokio's clock inside tokio, async-io's elsewhere), or any
//! timer you pass, such as [`ManualClock`](crate::rt::ManualClock) in tests.
//!
//! A future that never returns `Pending` cannot be timed out on any executor:
//! a timeout is only checked when the future it guards yields.

mod deadline;
mod interval;
mod timeout;

pub use deadline::{Deadline, DeadlineRun};
pub use interval::{Interval, Tick, interval, interval_with};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at, timeout_with};

/// `deadline`, or `None` (never) when `now + duration` overflows the clock.
pub(crate) fn checked_deadline<T: crate::rt::Timer>(
    timer: &T,
    duration: std::time::Duration,
) -> Option<std::time::Instant> {
    timer.now().checked_add(duration)
}
