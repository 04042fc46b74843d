//! Virtual time for deterministic tests.

use super::Timer;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A [`Timer`] whose time moves only when told to: [`advance`](Self::advance)
/// moves it and wakes, in deadline order, every sleeper whose deadline it
/// passed.
///
/// Clones share one clock. It is `Send + Sync`: sleepers on any thread and any
/// executor (or none) can wait on it while a test drives it from elsewhere.
/// Nothing here reads the wall clock after [`new`](Self::new), so tests built
/// on it never depend on how loaded the machine is.
///
/// # Examples
///
/// ```
/// use portasync::rt::{ManualClock, Timer};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let mut sleep = Box::pin(clock.sleep(Duration::from_secs(60)));
/// assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut sleep)).is_none());
/// assert_eq!(clock.sleepers(), 1);
///
/// clock.advance(Duration::from_secs(60));
/// futures_lite::future::block_on(sleep); // ready: no real time passed
/// assert_eq!(clock.sleepers(), 0);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

struct Shared {
    start: Instant,
    state: Mutex<State>,
}

struct State {
    now: Instant,
    next_id: u64,
    sleepers: BTreeMap<Key, Waker>,
}

/// Sleepers in deadline order; `Never` after every instant; ties by arrival.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Key {
    At(Instant, u64),
    Never(u64),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code below panics while holding the lock, but a waker passed in
        // by a user could; the state stays consistent either way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ManualClock {
    /// A clock that reads the current instant and then stands still.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{ManualClock, Timer};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), clock.now());
    /// ```
    pub fn new() -> Self {
        let start = Instant::now();
        let state = State {
            now: start,
            next_id: 0,
            sleepers: BTreeMap::new(),
        };
        Self {
            shared: Arc::new(Shared {
                start,
                state: Mutex::new(state),
            }),
        }
    }

    /// Moves the clock forward by `duration`, then wakes every sleeper whose
    /// deadline is now reached, earliest deadline first (ties in the order
    /// they first slept). Wakers run after the clock's lock is released, so a
    /// waker may call back into the clock.
    ///
    /// # Panics
    ///
    /// If `duration` moves the clock past the largest `Instant` the platform
    /// can represent (centuries away; `Duration::MAX` does). If a sleeper's
    /// waker panics, the first such panic is resumed once every due sleeper
    /// has been woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{ManualClock, Timer};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let start = clock.now();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(clock.now() - start, Duration::from_secs(5));
    /// ```
    #[track_caller]
    pub fn advance(&self, duration: Duration) {
        let due = {
            let mut state = self.shared.lock();
            state.now = state.now.checked_add(duration).expect(
                "ManualClock::advance: `duration` moves the clock past the largest Instant",
            );
            let now = state.now;
            let mut due = Vec::new();
            while let Some(entry) = state.sleepers.first_entry() {
                match *entry.key() {
                    Key::At(deadline, _) if deadline <= now => due.push(entry.remove()),
                    _ => break,
                }
            }
            due
        };
        crate::wake::wake_all(due);
    }

    /// How many sleeps are waiting on this clock: polled at least once, not
    /// yet due, not dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::ManualClock;
    ///
    /// assert_eq!(ManualClock::new().sleepers(), 0);
    /// ```
    pub fn sleepers(&self) -> usize {
        self.shared.lock().sleepers.len()
    }

    /// How far the clock has been advanced since it was made.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::ManualClock;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(250));
    /// assert_eq!(clock.elapsed(), Duration::from_millis(250));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.shared.lock().now - self.shared.start
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .field("sleepers", &self.sleepers())
            .finish()
    }
}

impl Timer for ManualClock {
    type Sleep = ManualSleep;

    fn now(&self) -> Instant {
        self.shared.lock().now
    }

    fn sleep_until(&self, deadline: Instant) -> ManualSleep {
        ManualSleep {
            shared: self.shared.clone(),
            deadline: Some(deadline),
            key: None,
        }
    }

    /// A duration that overflows the clock sleeps forever.
    fn sleep(&self, duration: Duration) -> ManualSleep {
        let deadline = self.now().checked_add(duration);
        ManualSleep {
            shared: self.shared.clone(),
            deadline,
            key: None,
        }
    }
}

/// The sleep future of [`ManualClock`]: ready once the clock reaches its
/// deadline.
///
/// # Examples
///
/// ```
/// use portasync::rt::{ManualClock, Timer};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let sleep = clock.sleep(Duration::from_secs(1));
/// clock.advance(Duration::from_secs(1));
/// futures_lite::future::block_on(sleep);
/// ```
///
/// # Cancel safety
///
/// Dropping it removes it from the clock's sleepers.
#[must_use = "futures do nothing unless awaited"]
pub struct ManualSleep {
    shared: Arc<Shared>,
    /// `None`: never (the duration overflowed the clock).
    deadline: Option<Instant>,
    /// Where this sleep waits in the clock's map, once polled.
    key: Option<Key>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.shared.lock();
        // A replaced waker is dropped after the lock is released: a waker's
        // drop may call back into the clock.
        let stale;
        let poll = if this.deadline.is_some_and(|deadline| deadline <= state.now) {
            stale = this.key.take().and_then(|key| state.sleepers.remove(&key));
            Poll::Ready(())
        } else {
            match this.key.and_then(|key| state.sleepers.get_mut(&key)) {
                Some(waker) if waker.will_wake(cx.waker()) => stale = None,
                Some(waker) => stale = Some(std::mem::replace(waker, cx.waker().clone())),
                None => {
                    stale = None;
                    let id = state.next_id;
                    state.next_id = state.next_id.wrapping_add(1);
                    let key = match this.deadline {
                        Some(deadline) => Key::At(deadline, id),
                        None => Key::Never(id),
                    };
                    state.sleepers.insert(key, cx.waker().clone());
                    this.key = Some(key);
                }
            }
            Poll::Pending
        };
        drop(state);
        drop(stale);
        poll
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            // The waker is dropped after the lock is released: a waker's drop
            // may call back into the clock.
            let waker = self.shared.lock().sleepers.remove(&key);
            drop(waker);
        }
    }
}

impl fmt::Debug for ManualSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualSleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}
