//! `throttle`: a stream that yields no faster than a limiter allows.

use super::{RateLimiter, SlidingWindow, Turn};
use crate::rt::Timer;
use futures_lite::Stream;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A limiter that [`throttle`] can wait on: [`RateLimiter`] and
/// [`SlidingWindow`], on any timer.
///
/// This trait is sealed: it cannot be implemented outside portasync.
///
/// # Examples
///
/// ```
/// use portasync::{Limiter, Quota, RateLimiter};
///
/// fn takes_any_limiter(_: &impl Limiter) {}
/// takes_any_limiter(&RateLimiter::new(Quota::per_second(1)));
/// ```
pub trait Limiter: Clone + sealed::Sealed {}

impl<T: Timer> Limiter for RateLimiter<T> {}
impl<T: Timer> Limiter for SlidingWindow<T> {}

mod sealed {
    // The sealed-trait pattern: public in a private module, so that
    // `Limiter` can name it and nobody outside can implement it.
    #![allow(unreachable_pub)]

    use super::super::{RateLimiter, SlidingWindow, Turn};
    use crate::rt::Timer;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub trait Sealed {
        type Sleep: Future<Output = ()>;
        fn poll_one(&self, turn: Pin<&mut Turn<Self::Sleep>>, cx: &mut Context<'_>) -> Poll<()>;
        fn leave_one(&self, turn: Pin<&mut Turn<Self::Sleep>>);
    }

    impl<T: Timer> Sealed for RateLimiter<T> {
        type Sleep = T::Sleep;

        fn poll_one(&self, turn: Pin<&mut Turn<T::Sleep>>, cx: &mut Context<'_>) -> Poll<()> {
            // One cell always fits a burst.
            self.poll_turn(1, turn, cx).map(|_| ())
        }

        fn leave_one(&self, turn: Pin<&mut Turn<T::Sleep>>) {
            self.leave(turn);
        }
    }

    impl<T: Timer> Sealed for SlidingWindow<T> {
        type Sleep = T::Sleep;

        fn poll_one(&self, turn: Pin<&mut Turn<T::Sleep>>, cx: &mut Context<'_>) -> Poll<()> {
            self.poll_turn(1, turn, cx).map(|_| ())
        }

        fn leave_one(&self, turn: Pin<&mut Turn<T::Sleep>>) {
            self.leave(turn);
        }
    }
}

/// Yields the items of `stream` no faster than `limiter` allows: each item
/// takes one cell (or one event of a [`SlidingWindow`]), in the limiter's
/// FIFO order with every other user of the same limiter.
///
/// An item is taken from `stream` first and held until its turn, so the
/// times at which items come out are the times the limiter allowed, even
/// when the stream itself is slow. The end of the stream takes no cell.
/// The limiter is cloned (clones share one limit).
///
/// This is tokio-stream's `throttle`, but shared: several throttled streams
/// and direct callers can draw on one limiter.
///
/// # Panics
///
/// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
/// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
/// use portasync::{Quota, RateLimiter, throttle};
///
/// # futures_lite::future::block_on(async {
/// let limiter = RateLimiter::new(Quota::per_second(1000).burst(2));
/// let start = std::time::Instant::now();
/// let items: Vec<u32> = throttle(futures_lite::stream::iter(0..4), &limiter).collect().await;
/// assert_eq!(items, [0, 1, 2, 3]);
/// assert!(start.elapsed() >= std::time::Duration::from_millis(2)); // two came at once, two waited
/// # });
/// ```
///
/// # Cancel safety
///
/// Dropping the stream while an item waits for its turn drops the item and
/// gives its cell back, as dropping an acquire does.
pub fn throttle<S: Stream, L: Limiter>(stream: S, limiter: &L) -> Throttle<S, L> {
    Throttle {
        stream,
        limiter: limiter.clone(),
        item: None,
        turn: Turn::new(),
    }
}

pin_project_lite::pin_project! {
    /// The stream of [`throttle`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::StreamExt;
    /// use portasync::{SlidingWindow, Throttle, throttle};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let window = SlidingWindow::new(10, Duration::from_secs(1));
    /// let paced: Throttle<_, SlidingWindow> = throttle(futures_lite::stream::iter(["a", "b"]), &window);
    /// let mut paced = std::pin::pin!(paced); // it holds the timer's sleep, which may be !Unpin
    /// assert_eq!(paced.next().await, Some("a"));
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// See [`throttle`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Throttle<S: Stream, L: Limiter> {
        #[pin]
        stream: S,
        limiter: L,
        item: Option<S::Item>,
        #[pin]
        turn: Turn<L::Sleep>,
    }

    impl<S: Stream, L: Limiter> PinnedDrop for Throttle<S, L> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.limiter.leave_one(this.turn);
        }
    }
}

impl<S: Stream, L: Limiter> Throttle<S, L> {
    /// The inner stream, by reference.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter, throttle};
    ///
    /// let limiter = RateLimiter::new(Quota::per_second(1));
    /// let paced = throttle(futures_lite::stream::once(1), &limiter);
    /// let _inner: &futures_lite::stream::Once<i32> = paced.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: Stream, L: Limiter> Stream for Throttle<S, L> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if this.item.is_none() {
            match this.stream.poll_next(cx) {
                Poll::Ready(Some(item)) => *this.item = Some(item),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        match this.limiter.poll_one(this.turn, cx) {
            Poll::Ready(()) => Poll::Ready(this.item.take()),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let held = usize::from(self.item.is_some());
        let (low, high) = self.stream.size_hint();
        (
            low.saturating_add(held),
            high.and_then(|high| high.checked_add(held)),
        )
    }
}

impl<S: Stream, L: Limiter> fmt::Debug for Throttle<S, L>
where
    S: fmt::Debug,
    L: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("stream", &self.stream)
            .field("limiter", &self.limiter)
            .field("waiting", &self.item.is_some())
            .finish()
    }
}
