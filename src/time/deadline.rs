//! `Deadline`: one deadline shared by many futures and movable while they run.

use super::timeout::{Elapsed, SleepSlot};
use crate::primitives::{Arc, Mutex, MutexGuard};
use crate::rt::{Auto, Timer};
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A shared deadline that can be moved while futures run under it, like
/// asyncio's `asyncio.timeout()` context (`reschedule`, `when`, `expired`)
/// or a trio cancel scope's deadline.
///
/// Clones share one deadline. [`run`](Self::run) guards a future with it;
/// [`reschedule`](Self::reschedule), from any task or thread, takes effect
/// at once on every `run` in progress, earlier or later, or removes the
/// deadline (`None`).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "test-util")] {
/// use portasync::rt::{ManualClock, Timer};
/// use portasync::Deadline;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let deadline = Deadline::with_timer(clock.clone(), Some(clock.now() + Duration::from_secs(10)));
/// let mut work = Box::pin(deadline.run(std::future::pending::<()>()));
/// # let poll = |work: &mut std::pin::Pin<Box<_>>| futures_lite::future::block_on(futures_lite::future::poll_once(work));
/// assert!(poll(&mut work).is_none());
///
/// // Someone grants more time while the work is running.
/// deadline.reschedule(Some(clock.now() + Duration::from_secs(60)));
/// clock.advance(Duration::from_secs(30));
/// assert!(poll(&mut work).is_none());
/// clock.advance(Duration::from_secs(30));
/// assert!(poll(&mut work).unwrap().is_err());
/// # }
/// ```
pub struct Deadline<T: Timer = Auto> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    timer: T,
    state: Mutex<State>,
}

struct State {
    when: Option<Instant>,
    /// Bumped by every reschedule; a run re-arms its sleep when it changes.
    version: u64,
    next_id: u64,
    /// The runs waiting under this deadline, told of each reschedule.
    waiters: HashMap<u64, Waker>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Deadline<Auto> {
    /// A deadline `duration` from now on [`Auto`]'s clock; one too far away
    /// to represent (`Duration::MAX`) is no deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    /// use std::time::Duration;
    ///
    /// assert!(Deadline::after(Duration::from_secs(1)).when().is_some());
    /// assert!(Deadline::after(Duration::MAX).when().is_none());
    /// ```
    pub fn after(duration: Duration) -> Self {
        Self::with_timer(Auto, super::checked_deadline(&Auto, duration))
    }

    /// A deadline at `deadline` on [`Auto`]'s clock.
    ///
    /// Off tokio, [`Auto`]'s clock may read up to a few hundred nanoseconds
    /// ahead of `Instant::now()`: a `deadline` made from `Instant::now()` can
    /// pass that much before `Instant::now()` reaches it (never before
    /// `Auto.now()` does).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(5);
    /// assert_eq!(Deadline::at(at).when(), Some(at));
    /// ```
    pub fn at(deadline: Instant) -> Self {
        Self::with_timer(Auto, Some(deadline))
    }

    /// No deadline, until one is set with [`reschedule`](Self::reschedule).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    ///
    /// let deadline = Deadline::never();
    /// assert_eq!(deadline.when(), None);
    /// assert!(!deadline.expired());
    /// ```
    pub fn never() -> Self {
        Self::with_timer(Auto, None)
    }
}

impl<T: Timer> Deadline<T> {
    /// A deadline at `when` (`None`: no deadline) on `timer`'s clock.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use portasync::rt::{ManualClock, Timer};
    /// use portasync::Deadline;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let deadline = Deadline::with_timer(clock.clone(), Some(clock.now() + Duration::from_secs(1)));
    /// clock.advance(Duration::from_secs(1));
    /// assert!(deadline.expired());
    /// # }
    /// ```
    pub fn with_timer(timer: T, when: Option<Instant>) -> Self {
        let state = State {
            when,
            version: 0,
            next_id: 0,
            waiters: HashMap::new(),
        };
        Self {
            shared: Arc::new(Shared {
                timer,
                state: Mutex::new(state),
            }),
        }
    }

    /// The current deadline, or `None` if there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    ///
    /// assert_eq!(Deadline::never().when(), None);
    /// ```
    pub fn when(&self) -> Option<Instant> {
        self.shared.lock().when
    }

    /// Whether the deadline has passed on the timer's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    /// use std::time::Duration;
    ///
    /// assert!(Deadline::after(Duration::ZERO).expired());
    /// assert!(!Deadline::after(Duration::from_secs(60)).expired());
    /// ```
    pub fn expired(&self) -> bool {
        self.when()
            .is_some_and(|when| self.shared.timer.now() >= when)
    }

    /// Moves the deadline, earlier or later, or removes it (`None`). Every
    /// [`run`](Self::run) in progress sees the change at once: one moved
    /// into the past fails its futures on their next poll, which this
    /// triggers. `when` is on the timer's clock (on [`Auto`]'s, see
    /// [`at`](Self::at)).
    ///
    /// # Panics
    ///
    /// If a run's waker panics: the first such panic is resumed here, once
    /// every run has been woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    /// use std::time::{Duration, Instant};
    ///
    /// let deadline = Deadline::never();
    /// let later = Instant::now() + Duration::from_secs(3);
    /// deadline.reschedule(Some(later));
    /// assert_eq!(deadline.when(), Some(later));
    /// ```
    pub fn reschedule(&self, when: Option<Instant>) {
        let waiters: Vec<Waker> = {
            let mut state = self.shared.lock();
            state.when = when;
            state.version = state.version.wrapping_add(1);
            state.waiters.values().cloned().collect()
        };
        // Woken with the lock released: a waker may call back in. Should one
        // panic, the others are woken all the same.
        crate::wake::wake_all(waiters);
    }

    /// Runs `future` under this deadline.
    ///
    /// # Errors
    ///
    /// The output is [`Elapsed`] if the deadline (as it stands at each
    /// poll) passes before `future` finishes.
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let (a, b) = futures_lite::future::zip(deadline.run(async { 1 }), deadline.run(async { 2 })).await;
    /// assert_eq!((a, b), (Ok(1), Ok(2)));
    /// # });
    /// ```
    pub fn run<F: IntoFuture>(&self, future: F) -> DeadlineRun<F::IntoFuture, T> {
        DeadlineRun {
            future: future.into_future(),
            sleep: SleepSlot::Unarmed,
            shared: self.shared.clone(),
            armed_version: None,
            id: None,
        }
    }
}

impl<T: Timer> Clone for Deadline<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Timer> fmt::Debug for Deadline<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("when", &self.when())
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// A future running under a [`Deadline`], from [`Deadline::run`].
    ///
    /// The inner future is polled first, so a ready result is never thrown
    /// away. No timer is made while the deadline is `None`, or until the
    /// inner future first returns `Pending`. Like a
    /// [`Timeout`](crate::Timeout), it is not to be polled again once it
    /// returned `Ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Deadline;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let deadline = Deadline::after(Duration::from_millis(5));
    /// assert!(deadline.run(std::future::pending::<()>()).await.is_err());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner future and its timer and leaves the
    /// deadline's list of runs; nothing else.
    #[must_use = "futures do nothing unless awaited"]
    pub struct DeadlineRun<F, T: Timer = Auto> {
        #[pin]
        future: F,
        #[pin]
        sleep: SleepSlot<T::Sleep>,
        shared: Arc<Shared<T>>,
        // The deadline version the sleep was made for.
        armed_version: Option<u64>,
        // Where this run's waker sits in the deadline's list.
        id: Option<u64>,
    }

    impl<F, T: Timer> PinnedDrop for DeadlineRun<F, T> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(id) = this.id.take() {
                let waker = this.shared.lock().waiters.remove(&id);
                drop(waker); // outside the lock: a waker's drop may call back in
            }
        }
    }
}

impl<F: Future, T: Timer> Future for DeadlineRun<F, T> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        // Register for reschedules and read the deadline in one critical
        // section, so a reschedule is either seen now or wakes us later.
        let (when, version, stale) = {
            let mut state = this.shared.lock();
            let id = *this.id.get_or_insert_with(|| {
                let id = state.next_id;
                state.next_id = state.next_id.wrapping_add(1);
                id
            });
            let stale = match state.waiters.get_mut(&id) {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                Some(waker) => Some(std::mem::replace(waker, cx.waker().clone())),
                None => {
                    state.waiters.insert(id, cx.waker().clone());
                    None
                }
            };
            (state.when, state.version, stale)
        };
        drop(stale);
        if *this.armed_version != Some(version) {
            this.sleep.set(SleepSlot::Unarmed);
            *this.armed_version = Some(version);
        }
        match when {
            Some(when)
                if this
                    .sleep
                    .as_mut()
                    .poll_elapsed(&this.shared.timer, when, cx) =>
            {
                Poll::Ready(Err(Elapsed::new()))
            }
            _ => Poll::Pending,
        }
    }
}

impl<F: fmt::Debug, T: Timer> fmt::Debug for DeadlineRun<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineRun")
            .field("future", &self.future)
            .field("when", &self.shared.lock().when)
            .finish()
    }
}
