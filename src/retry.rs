//! Retrying a fallible async operation: backoff with jitter, server hints,
//! budgets, reusable policies, on any runtime's clock.

mod backoff;
mod budget;

pub use backoff::{Backoff, Delays, Jitter};
pub use budget::RetryBudget;

use crate::rt::{Auto, Timer};
use crate::time::Elapsed;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Why a retry gave up.
///
/// # Examples
///
/// ```
/// use portasync::{StopReason, retry};
///
/// # futures_lite::future::block_on(async {
/// let err = retry(|| async { Err::<(), _>("nope") }).when(|_: &&str| false).await.unwrap_err();
/// assert_eq!(err.reason(), StopReason::NotRetryable);
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The `when` predicate said this error is not worth retrying.
    NotRetryable,
    /// The last allowed attempt failed.
    MaxAttempts,
    /// The next sleep would have ended past `max_elapsed`.
    MaxElapsed,
    /// The [`RetryBudget`] had no retry left.
    BudgetExhausted,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotRetryable => "not retryable",
            Self::MaxAttempts => "max attempts",
            Self::MaxElapsed => "max elapsed",
            Self::BudgetExhausted => "budget exhausted",
        })
    }
}

/// The last error of a retry that gave up, with how many attempts were made
/// and why it stopped.
///
/// Displays as `gave up after 4 attempts (max attempts): <error>`. As
/// that message already ends with the last error's, its
/// [`source`](std::error::Error::source) is the last error's own source
/// (as with a std `io::Error` that wraps another error), so a printed chain
/// of causes shows each message once; the last error itself is
/// [`error`](Self::error).
///
/// # Examples
///
/// ```
/// use portasync::{StopReason, retry};
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let err = retry(|| async { Err::<(), _>(std::io::Error::other("down")) })
///     .backoff(portasync::Backoff::constant(Duration::ZERO))
///     .max_attempts(4)
///     .await
///     .unwrap_err();
/// assert_eq!(err.attempts(), 4);
/// assert_eq!(err.reason(), StopReason::MaxAttempts);
/// assert_eq!(err.to_string(), "gave up after 4 attempts (max attempts): down");
/// let io: std::io::Error = err.into_inner();
/// # let _ = io;
/// # });
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RetryError<E> {
    error: E,
    attempts: u32,
    reason: StopReason,
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            error,
            attempts,
            reason,
        } = self;
        let plural = if *attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {attempts} attempt{plural} ({reason}): {error}"
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Not the error itself: the message carries it already.
        self.error.source()
    }
}

impl<E> RetryError<E> {
    /// The last attempt's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let err = portasync::retry(|| async { Err::<(), _>("down") })
    ///     .backoff(portasync::Backoff::constant(std::time::Duration::ZERO))
    ///     .max_attempts(2)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(*err.error(), "down");
    /// # });
    /// ```
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The last attempt's error, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let err = portasync::retry(|| async { Err::<(), _>("down") })
    ///     .backoff(portasync::Backoff::constant(std::time::Duration::ZERO))
    ///     .max_attempts(2)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.into_inner(), "down");
    /// # });
    /// ```
    pub fn into_inner(self) -> E {
        self.error
    }

    /// How many times the operation was called.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let err = portasync::retry(|| async { Err::<(), _>("down") })
    ///     .backoff(portasync::Backoff::constant(std::time::Duration::ZERO))
    ///     .max_attempts(2)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.attempts(), 2);
    /// # });
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why retrying stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let err = portasync::retry(|| async { Err::<(), _>("down") })
    ///     .backoff(portasync::Backoff::constant(std::time::Duration::ZERO))
    ///     .max_attempts(2)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.reason(), portasync::StopReason::MaxAttempts);
    /// # });
    /// ```
    pub fn reason(&self) -> StopReason {
        self.reason
    }
}

impl<E: fmt::Debug> fmt::Debug for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryError")
            .field("error", &self.error)
            .field("attempts", &self.attempts)
            .field("reason", &self.reason)
            .finish()
    }
}

/// The parts of a retry that do not depend on the error or timer type:
/// backoff, attempt limit, time limit, budget. `Clone` and cheap to share
/// across call sites.
///
/// The default: exponential from 100 ms, factor 2, `max_delay` 30 s, no
/// jitter, 3 attempts, no time limit, no budget.
///
/// # Examples
///
/// ```
/// use portasync::{Backoff, Jitter, RetryPolicy, retry};
/// use std::time::Duration;
///
/// let policy = RetryPolicy::default()
///     .backoff(Backoff::exponential(Duration::from_millis(1)).jitter(Jitter::Full))
///     .max_attempts(5);
/// # futures_lite::future::block_on(async {
/// let mut calls = 0;
/// let value = retry(|| {
///     calls += 1;
///     let ok = calls == 3;
///     async move { if ok { Ok(calls) } else { Err("flaky") } }
/// })
/// .policy(policy.clone())
/// .await;
/// assert_eq!(value.unwrap(), 3);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    backoff: Backoff,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    budget: Option<RetryBudget>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            backoff: Backoff::exponential(Duration::from_millis(100))
                .max_delay(Duration::from_secs(30)),
            max_attempts: 3,
            max_elapsed: None,
            budget: None,
        }
    }
}

impl RetryPolicy {
    /// The default policy; see the type's docs.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = portasync::RetryPolicy::new().max_attempts(10);
    /// # let _ = policy;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The schedule of delays between attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, RetryPolicy};
    /// use std::time::Duration;
    ///
    /// let policy = RetryPolicy::new().backoff(Backoff::fibonacci(Duration::from_millis(50)));
    /// # let _ = policy;
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How many times the operation may be called in all (the first attempt
    /// included).
    ///
    /// # Panics
    ///
    /// If `max_attempts` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = portasync::RetryPolicy::new().max_attempts(1); // no retries
    /// # let _ = policy;
    /// ```
    #[track_caller]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = check_attempts(max_attempts);
        self
    }

    /// A limit on the whole retry, counted from the first attempt and
    /// checked before each sleep: a sleep that would end past it is not
    /// started. A running attempt is never cut short by it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let policy = portasync::RetryPolicy::new().max_attempts(u32::MAX).max_elapsed(Duration::from_secs(30));
    /// # let _ = policy;
    /// ```
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = Some(max_elapsed);
        self
    }

    /// A budget shared with other call sites; see [`RetryBudget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{RetryBudget, RetryPolicy};
    /// use std::time::Duration;
    ///
    /// let policy = RetryPolicy::new().budget(RetryBudget::new(Duration::from_secs(10), 1, 0.1));
    /// # let _ = policy;
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }
}

#[track_caller]
fn check_attempts(max_attempts: u32) -> u32 {
    assert!(
        max_attempts > 0,
        "max_attempts: `max_attempts` must be at least 1"
    );
    max_attempts
}

/// Retries `op` until it succeeds or a limit is reached: the builder for a
/// retry, awaited directly.
///
/// `op` is called for each attempt and returns a future of
/// `Result<T, E>`. With no setter called, the [`RetryPolicy`] default
/// applies (3 attempts, exponential backoff from 100 ms) and every error is
/// retried.
///
/// # Errors
///
/// Awaited, it fails with a [`RetryError`] that holds the last attempt's
/// error, how many attempts were made, and why it stopped
/// ([`StopReason`]): `when` refused the error (`NotRetryable`), no attempt
/// was left (`MaxAttempts`), the next sleep would have ended past
/// `max_elapsed` (`MaxElapsed`), or the budget had no retry left
/// (`BudgetExhausted`).
///
/// # Panics
///
/// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
/// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
///
/// # Examples
///
/// ```
/// use portasync::{Backoff, Jitter, retry};
/// use std::io;
/// use std::time::Duration;
///
/// async fn fetch(url: &str) -> io::Result<String> {
///     Ok(format!("body of {url}"))
/// }
///
/// # futures_lite::future::block_on(async {
/// let url = "http://example.test/";
/// let body = retry(|| fetch(url))
///     .backoff(Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(5)).jitter(Jitter::Full))
///     .max_attempts(5)
///     .when(|e: &io::Error| e.kind() != io::ErrorKind::NotFound)
///     .await?;
/// assert_eq!(body, "body of http://example.test/");
/// # Ok::<(), portasync::RetryError<io::Error>>(())
/// # }).unwrap();
/// ```
pub fn retry<Op, Fut, T, E>(op: Op) -> Retry<Op, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Retry {
        op,
        policy: RetryPolicy::default(),
        timer: Auto,
        when: always,
        hint: no_hint,
        notify: no_notify,
        attempt_timeout: None,
        _error: PhantomData,
    }
}

/// A time limit per attempt and how its expiry becomes the caller's error.
type AttemptTimeout<E> = (Duration, fn(Elapsed) -> E);

fn always<E>(_: &E) -> bool {
    true
}

fn no_hint<E>(_: &E) -> Option<Duration> {
    None
}

fn no_notify<E>(_: &E, _: Duration) {}

/// A retry being set up, from [`retry`]; await it to run it.
///
/// The type parameters are the operation, its error type, the timer, and
/// the `when`, `hint` and `notify` callbacks: each setter keeps the
/// callback's own type, so none of them costs an allocation.
///
/// # Examples
///
/// ```
/// use portasync::retry;
///
/// # futures_lite::future::block_on(async {
/// let answer = retry(|| async { Ok::<_, std::io::Error>(42) }).await;
/// assert_eq!(answer.unwrap(), 42);
/// # });
/// ```
#[must_use = "a retry does nothing unless awaited"]
pub struct Retry<
    Op,
    E,
    T = Auto,
    W = fn(&E) -> bool,
    H = fn(&E) -> Option<Duration>,
    N = fn(&E, Duration),
> {
    op: Op,
    policy: RetryPolicy,
    timer: T,
    when: W,
    hint: H,
    notify: N,
    /// A time limit per attempt, with the conversion of its expiry into `E`.
    attempt_timeout: Option<AttemptTimeout<E>>,
    _error: PhantomData<fn(&E)>,
}

impl<Op, E, T, W, H, N> Retry<Op, E, T, W, H, N> {
    /// The schedule of delays between attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, retry};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let value = retry(|| async { Ok::<_, ()>(1) }).backoff(Backoff::constant(Duration::from_millis(10))).await;
    /// assert_eq!(value.unwrap(), 1);
    /// # });
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.policy.backoff = backoff;
        self
    }

    /// How many times the operation may be called in all.
    ///
    /// # Panics
    ///
    /// If `max_attempts` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::retry;
    ///
    /// # futures_lite::future::block_on(async {
    /// let err = retry(|| async { Err::<(), _>("down") }).max_attempts(1).await.unwrap_err();
    /// assert_eq!(err.attempts(), 1);
    /// # });
    /// ```
    #[track_caller]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.policy.max_attempts = check_attempts(max_attempts);
        self
    }

    /// A limit on the whole retry, checked before each sleep; see
    /// [`RetryPolicy::max_elapsed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, StopReason, retry};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let err = retry(|| async { Err::<(), _>("down") })
    ///     .backoff(Backoff::constant(Duration::from_secs(60)))
    ///     .max_elapsed(Duration::from_secs(5))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.reason(), StopReason::MaxElapsed); // did not sleep a minute
    /// # });
    /// ```
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.policy.max_elapsed = Some(max_elapsed);
        self
    }

    /// A budget shared with other call sites; see [`RetryBudget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{RetryBudget, retry};
    /// use std::time::Duration;
    ///
    /// let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.1);
    /// # futures_lite::future::block_on(async {
    /// let value = retry(|| async { Ok::<_, ()>(5) }).budget(budget.clone()).await;
    /// assert_eq!(value.unwrap(), 5);
    /// # });
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.policy.budget = Some(budget);
        self
    }

    /// Backoff, attempt limit, time limit and budget at once, from a shared
    /// policy. Setters called after it override its fields.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{RetryPolicy, retry};
    ///
    /// let policy = RetryPolicy::default().max_attempts(2);
    /// # futures_lite::future::block_on(async {
    /// let err = retry(|| async { Err::<(), _>("down") }).policy(policy.clone()).await.unwrap_err();
    /// assert_eq!(err.attempts(), 2);
    /// # });
    /// ```
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Only errors for which `when` returns `true` are retried; any other
    /// ends the retry at once ([`StopReason::NotRetryable`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{StopReason, retry};
    /// use std::io::{Error, ErrorKind};
    ///
    /// # futures_lite::future::block_on(async {
    /// let err = retry(|| async { Err::<(), _>(Error::from(ErrorKind::NotFound)) })
    ///     .when(|e: &Error| e.kind() != ErrorKind::NotFound)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!((err.attempts(), err.reason()), (1, StopReason::NotRetryable));
    /// # });
    /// ```
    pub fn when<W2: Fn(&E) -> bool>(self, when: W2) -> Retry<Op, E, T, W2, H, N> {
        Retry {
            op: self.op,
            policy: self.policy,
            timer: self.timer,
            when,
            hint: self.hint,
            notify: self.notify,
            attempt_timeout: self.attempt_timeout,
            _error: PhantomData,
        }
    }

    /// A delay read from the error, such as a server's `Retry-After`: when it
    /// returns `Some`, that delay is used instead of the backoff's, as given
    /// (no jitter, not capped by `max_delay`, still bounded by
    /// `max_elapsed`). The backoff's schedule moves on all the same: once
    /// the hints stop, its next delay is the one for this attempt, as if it
    /// had been used all along.
    ///
    /// It is asked only about an error that will be retried (one `when`
    /// accepts, with attempts left), once per error.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::retry;
    /// use std::time::Duration;
    ///
    /// struct Busy { retry_after: Duration }
    ///
    /// # futures_lite::future::block_on(async {
    /// let mut first = true;
    /// let value = retry(|| {
    ///     let busy = std::mem::replace(&mut first, false);
    ///     async move { if busy { Err(Busy { retry_after: Duration::from_millis(1) }) } else { Ok("served") } }
    /// })
    /// .hint(|e: &Busy| Some(e.retry_after))
    /// .await;
    /// assert_eq!(value.ok(), Some("served"));
    /// # });
    /// ```
    pub fn hint<H2: Fn(&E) -> Option<Duration>>(self, hint: H2) -> Retry<Op, E, T, W, H2, N> {
        Retry {
            op: self.op,
            policy: self.policy,
            timer: self.timer,
            when: self.when,
            hint,
            notify: self.notify,
            attempt_timeout: self.attempt_timeout,
            _error: PhantomData,
        }
    }

    /// Called once before each sleep, with the error that caused it and the
    /// delay about to be slept: the place to log.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, retry};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let mut log = Vec::new();
    /// let _ = retry(|| async { Err::<(), _>("down") })
    ///     .backoff(Backoff::exponential(Duration::from_millis(1)))
    ///     .notify(|e: &&str, delay| log.push(format!("{e}, retrying in {delay:?}")))
    ///     .await;
    /// assert_eq!(log, ["down, retrying in 1ms", "down, retrying in 2ms"]);
    /// # });
    /// ```
    pub fn notify<N2: FnMut(&E, Duration)>(self, notify: N2) -> Retry<Op, E, T, W, H, N2> {
        Retry {
            op: self.op,
            policy: self.policy,
            timer: self.timer,
            when: self.when,
            hint: self.hint,
            notify,
            attempt_timeout: self.attempt_timeout,
            _error: PhantomData,
        }
    }

    /// The clock to sleep on and to measure `max_elapsed` with: a runtime,
    /// or a [`ManualClock`](crate::rt::ManualClock) in tests.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use portasync::retry;
    ///
    /// smol::block_on(async {
    ///     let value = retry(|| async { Ok::<_, ()>(1) }).timer(portasync::rt::Smol::global()).await;
    ///     assert_eq!(value.unwrap(), 1);
    /// });
    /// # }
    /// ```
    pub fn timer<T2: Timer>(self, timer: T2) -> Retry<Op, E, T2, W, H, N> {
        Retry {
            op: self.op,
            policy: self.policy,
            timer,
            when: self.when,
            hint: self.hint,
            notify: self.notify,
            attempt_timeout: self.attempt_timeout,
            _error: PhantomData,
        }
    }
}

impl<Op, E: From<Elapsed>, T, W, H, N> Retry<Op, E, T, W, H, N> {
    /// A time limit on each attempt: an attempt that runs longer fails with
    /// `E::from(Elapsed)`, which is then retried like any error. Only for
    /// error types that can say "timed out" (`std::io::Error` can).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::retry;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let err = retry(|| async {
    ///     std::future::pending::<()>().await;
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .attempt_timeout(Duration::from_millis(1))
    /// .backoff(portasync::Backoff::constant(Duration::ZERO))
    /// .max_attempts(2)
    /// .await
    /// .unwrap_err();
    /// assert_eq!(err.error().kind(), std::io::ErrorKind::TimedOut);
    /// # });
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some((timeout, E::from));
        self
    }
}

impl<Op, E, T, W, H, N> fmt::Debug for Retry<Op, E, T, W, H, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("policy", &self.policy)
            .field("attempt_timeout", &self.attempt_timeout.map(|(d, _)| d))
            .finish_non_exhaustive()
    }
}

impl<Op, Fut, R, E, T, W, H, N> IntoFuture for Retry<Op, E, T, W, H, N>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<R, E>>,
    T: Timer,
    W: Fn(&E) -> bool,
    H: Fn(&E) -> Option<Duration>,
    N: FnMut(&E, Duration),
{
    type Output = Result<R, RetryError<E>>;
    type IntoFuture = RetryFuture<Op, Fut, E, T, W, H, N>;

    fn into_future(self) -> Self::IntoFuture {
        RetryFuture {
            state: State::Idle,
            retry: self,
            sleep: None,
            attempt_deadline: None,
            delays: None,
            attempts: 0,
            started: None,
        }
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        Idle,
        Attempt { #[pin] attempt: Fut },
        Sleeping,
        Done,
    }
}

pin_project_lite::pin_project! {
    /// A retry in progress: the future a [`Retry`] becomes when awaited.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::retry;
    /// use std::future::IntoFuture;
    ///
    /// # futures_lite::future::block_on(async {
    /// let running = retry(|| async { Ok::<_, ()>(3) }).into_future(); // a RetryFuture
    /// assert_eq!(running.await.unwrap(), 3);
    /// # });
    /// ```
    ///
    /// Each poll starts one attempt at most. When an attempt fails at once
    /// and its delay is over at once (a zero backoff, say), the future
    /// wakes itself and yields before the next one, so that it never holds
    /// the executor's thread for a whole run of attempts, and an enclosing
    /// timeout or cancel gets to look in between.
    ///
    /// It is not to be polled again once it returned `Ready`: it panics.
    ///
    /// # Cancel safety
    ///
    /// Dropping it stops the retry where it is: an attempt in flight is
    /// dropped, and during a sleep the operation is never called again. A
    /// retry that a [`RetryBudget`] paid for before the sleep stays paid.
    #[must_use = "futures do nothing unless awaited"]
    pub struct RetryFuture<Op, Fut, E, T: Timer, W, H, N> {
        #[pin]
        state: State<Fut>,
        retry: Retry<Op, E, T, W, H, N>,
        // The backoff sleep, or the attempt's timeout once armed; boxed so a
        // first-try success carries no sleep around (tokio's is large).
        sleep: Option<Pin<Box<T::Sleep>>>,
        attempt_deadline: Option<Instant>,
        // Made on the first failure: a first-try success never pays for it.
        delays: Option<Box<Delays>>,
        attempts: u32,
        // When the first attempt started; read only if `max_elapsed` is set.
        started: Option<Instant>,
    }
}

/// What to do after a failed attempt.
enum Next {
    Sleep(Duration),
    Stop(StopReason),
}

/// Decides what follows a failed attempt. The decision does not depend on
/// the operation's types, so it is made by one non-generic function (the
/// hint and the clock come as `dyn`). They are asked only when their
/// answers are used: a hint may parse headers or log, and the clock costs a
/// read.
#[allow(clippy::too_many_arguments)]
fn after_failure(
    retryable: bool,
    attempts: u32,
    policy: &RetryPolicy,
    hint: &dyn Fn() -> Option<Duration>,
    delays: &mut Option<Box<Delays>>,
    started: Option<Instant>,
    now: &dyn Fn() -> Instant,
) -> Next {
    if !retryable {
        return Next::Stop(StopReason::NotRetryable);
    }
    if attempts >= policy.max_attempts {
        return Next::Stop(StopReason::MaxAttempts);
    }
    // The schedule moves on under a hint as well, so that once the hints
    // stop, the backoff goes on from this attempt, not from its start.
    let backoff = delays
        .get_or_insert_with(|| Box::new(policy.backoff.delays()))
        .next();
    let delay = hint().or(backoff).unwrap_or(Duration::MAX);
    let needs_now = policy.max_elapsed.is_some() || policy.budget.is_some();
    let now = needs_now.then(now);
    if let (Some(limit), Some(started), Some(now)) = (policy.max_elapsed, started, now) {
        let end = now.checked_add(delay);
        let deadline = started.checked_add(limit);
        let past_limit = match (end, deadline) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(end), Some(deadline)) => end > deadline,
        };
        if past_limit {
            return Next::Stop(StopReason::MaxElapsed);
        }
    }
    if let (Some(budget), Some(now)) = (&policy.budget, now) {
        if !budget.withdraw(now) {
            return Next::Stop(StopReason::BudgetExhausted);
        }
    }
    Next::Sleep(delay)
}

impl<Op, Fut, R, E, T, W, H, N> Future for RetryFuture<Op, Fut, E, T, W, H, N>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<R, E>>,
    T: Timer,
    W: Fn(&E) -> bool,
    H: Fn(&E) -> Option<Duration>,
    N: FnMut(&E, Duration),
{
    type Output = Result<R, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // One attempt starts per poll at most: an attempt that fails at
        // once, behind a delay that is over at once (zero, or a clock that
        // has moved past it), would otherwise retry inside this poll until
        // the attempts ran out, holding the executor's thread, and an
        // enclosing timeout or cancel would never get to look.
        let mut started_here = false;
        loop {
            match this.state.as_mut().project() {
                StateProj::Idle => {
                    if started_here {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    started_here = true;
                    let retry = &mut *this.retry;
                    if this.started.is_none() && retry.policy.max_elapsed.is_some() {
                        *this.started = Some(retry.timer.now());
                    }
                    *this.attempts = this.attempts.saturating_add(1);
                    *this.attempt_deadline = retry
                        .attempt_timeout
                        .and_then(|(limit, _)| crate::time::checked_deadline(&retry.timer, limit));
                    let attempt = (retry.op)();
                    this.state.set(State::Attempt { attempt });
                }
                StateProj::Attempt { attempt } => {
                    let error = match attempt.poll(cx) {
                        Poll::Ready(Ok(value)) => {
                            let retry = &*this.retry;
                            if let Some(budget) = &retry.policy.budget {
                                budget.deposit(retry.timer.now());
                            }
                            // The attempt's timer, if armed: registered no
                            // longer than needed.
                            *this.sleep = None;
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(value));
                        }
                        Poll::Ready(Err(error)) => error,
                        Poll::Pending => {
                            let Some(deadline) = *this.attempt_deadline else {
                                return Poll::Pending;
                            };
                            if !poll_deadline(&this.retry.timer, deadline, this.sleep, cx) {
                                return Poll::Pending;
                            }
                            match this.retry.attempt_timeout {
                                Some((_, into_error)) => into_error(Elapsed::new()),
                                None => unreachable!(
                                    "an attempt has a deadline only with attempt_timeout"
                                ),
                            }
                        }
                    };
                    *this.sleep = None;
                    let retry = &mut *this.retry;
                    let (timer, hint) = (&retry.timer, &retry.hint);
                    let next = after_failure(
                        (retry.when)(&error),
                        *this.attempts,
                        &retry.policy,
                        &|| hint(&error),
                        this.delays,
                        *this.started,
                        &|| timer.now(),
                    );
                    match next {
                        Next::Stop(reason) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(RetryError {
                                error,
                                attempts: *this.attempts,
                                reason,
                            }));
                        }
                        Next::Sleep(delay) => {
                            // The sleep first: its end is fixed now, where
                            // `max_elapsed` was checked, however long the
                            // callback takes (a slow one pushed the next
                            // attempt past the limit; from a review).
                            *this.sleep = Some(Box::pin(retry.timer.sleep(delay)));
                            (retry.notify)(&error, delay);
                            this.state.set(State::Sleeping);
                        }
                    }
                }
                StateProj::Sleeping => {
                    if let Some(sleep) = this.sleep.as_mut() {
                        std::task::ready!(sleep.as_mut().poll(cx));
                    }
                    *this.sleep = None;
                    this.state.set(State::Idle);
                }
                StateProj::Done => panic!("RetryFuture polled after it completed"),
            }
        }
    }
}

/// Whether `deadline` has passed: read off the clock before a sleep is
/// made (a deadline already reached does not wait for a timer tick), then
/// off the sleep.
fn poll_deadline<T: Timer>(
    timer: &T,
    deadline: Instant,
    sleep: &mut Option<Pin<Box<T::Sleep>>>,
    cx: &mut Context<'_>,
) -> bool {
    let sleep = match sleep {
        Some(sleep) => sleep,
        None if timer.now() >= deadline => return true,
        None => sleep.insert(Box::pin(timer.sleep_until(deadline))),
    };
    sleep.as_mut().poll(cx).is_ready()
}

impl<Op, Fut, E, T: Timer, W, H, N> fmt::Debug for RetryFuture<Op, Fut, E, T, W, H, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryFuture")
            .field("attempts", &self.attempts)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}
