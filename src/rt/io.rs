//! The async-io timer: smol's and async-std's timer, and `Auto`'s outside tokio.
//! It needs no executor: async-io drives it from its own reactor thread when
//! nothing else does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The sleep future of [`Smol`](crate::rt::Smol) and [`AsyncStd`](crate::rt::AsyncStd): an
/// [`async_io::Timer`] that completes once.
///
/// It completes once the timer's own clock ([`Timer::now`](crate::rt::Timer::now))
/// reaches the deadline. That clock may run a few hundred nanoseconds ahead
/// of `Instant::now()`, so a sleep until an instant read from
/// `Instant::now()` can end that much before `Instant::now()` gets there.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use portasync::rt::{Smol, Timer};
/// use std::time::Duration;
///
/// smol::block_on(async {
///     let rt = Smol::global();
///     let start = rt.now();
///     rt.sleep(Duration::from_millis(5)).await;
///     assert!(rt.now() - start >= Duration::from_millis(5));
/// });
/// # }
/// ```
///
/// # Cancel safety
///
/// Dropping it deregisters the timer; nothing else happens.
#[must_use = "futures do nothing unless awaited"]
pub struct IoSleep {
    timer: async_io::Timer,
    deadline: Instant,
}

impl IoSleep {
    pub(crate) fn at(deadline: Instant) -> Self {
        Self {
            timer: async_io::Timer::at(deadline),
            deadline,
        }
    }

    /// A duration too long to add to the current instant sleeps forever.
    pub(crate) fn after(duration: Duration) -> Self {
        Self::at(crate::rt::deadline_after(super::clock::now(), duration))
    }
}

impl Future for IoSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Done once the clock these runtimes read says so. async-io's timer
        // goes by `Instant::now()`, which the counter clock may lead by a
        // few hundred nanoseconds: without this, a sleep until the counter
        // clock's `now()` would wait for a reactor round trip.
        if super::clock::now() >= self.deadline {
            return Poll::Ready(());
        }
        std::task::ready!(Pin::new(&mut self.timer).poll(cx));
        // The real clock has reached the deadline; the counter clock may
        // trail it by up to a few hundred nanoseconds. Waited out here (a
        // bounded spin, in case the counter clock is far off), so that
        // `now()` after the sleep is never before its deadline.
        for _ in 0..1_000 {
            if super::clock::now() >= self.deadline {
                break;
            }
            std::hint::spin_loop();
        }
        Poll::Ready(())
    }
}

impl fmt::Debug for IoSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoSleep").finish_non_exhaustive()
    }
}
