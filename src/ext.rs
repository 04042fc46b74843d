//! `FutureExt`: timeouts and cancellation as methods on any future.

use crate::rt::Auto;
use crate::{CancelOn, CancelToken, Timeout};
use std::future::IntoFuture;
use std::time::{Duration, Instant};

/// Timeouts and cancellation as methods on every future, and on everything
/// that becomes one when awaited (such as a [`retry`](crate::retry));
/// imported for its methods alone by [`prelude`](crate::prelude).
///
/// # Examples
///
/// ```
/// use portasync::CancelToken;
/// use portasync::prelude::*;
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// let result = async { 1 }.timeout(Duration::from_secs(1)).cancel_on(&token).await;
/// assert_eq!(result, Ok(Ok(1)));
/// # });
/// ```
///
/// Named at the crate root, as a bound:
///
/// ```
/// use portasync::{FutureExt, Timeout};
/// use std::time::Duration;
///
/// fn within_a_second<F: FutureExt>(work: F) -> Timeout<F::IntoFuture> {
///     work.timeout(Duration::from_secs(1))
/// }
/// # assert_eq!(futures_lite::future::block_on(within_a_second(async { 2 })), Ok(2));
/// ```
pub trait FutureExt: IntoFuture + Sized {
    /// Limits this future to `duration` on [`Auto`]'s clock, fixed now; see
    /// [`timeout`](crate::timeout).
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::prelude::*;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// assert!(std::future::pending::<()>().timeout(Duration::ZERO).await.is_err());
    /// # });
    /// ```
    fn timeout(self, duration: Duration) -> Timeout<Self::IntoFuture> {
        crate::timeout(duration, self)
    }

    /// Limits this future to `deadline` on [`Auto`]'s clock; see
    /// [`timeout_at`](crate::timeout_at).
    ///
    /// Off tokio, [`Auto`]'s clock may read up to a few hundred nanoseconds
    /// ahead of `Instant::now()`: see [`timeout_at`](crate::timeout_at).
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::prelude::*;
    /// use std::time::{Duration, Instant};
    ///
    /// # futures_lite::future::block_on(async {
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(async { 2 }.timeout_at(deadline).await, Ok(2));
    /// # });
    /// ```
    fn timeout_at(self, deadline: Instant) -> Timeout<Self::IntoFuture, Auto> {
        crate::timeout_at(deadline, self)
    }

    /// Stops this future when `token` is cancelled; see
    /// [`CancelToken::run`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::CancelToken;
    /// use portasync::prelude::*;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// token.cancel();
    /// assert!(std::future::pending::<()>().cancel_on(&token).await.is_err());
    /// # });
    /// ```
    fn cancel_on(self, token: &CancelToken) -> CancelOn<Self::IntoFuture> {
        CancelOn::new(self.into_future(), token)
    }
}

impl<F: IntoFuture> FutureExt for F {}
