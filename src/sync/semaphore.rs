//! A strictly FIFO-fair, weighted, closable, resizable async semaphore.
//!
//! # Design
//!
//! One atomic word holds the free permits and two flags: `CLOSED`, and
//! `SLOW`, which says that some waiter is queued or that a shrink still
//! withholds returned permits. While `SLOW` is clear, acquiring and releasing
//! are one compare-and-swap each and never touch the lock. While it is set,
//! every change goes through the mutex that guards the waiter queue, and the
//! free count stays at zero: the queue absorbs every permit that comes back,
//! head first, so a permit can only be free when nobody waits for it. That is
//! what makes the fast path unable to jump the queue.
//!
//! The queue is a slab of slots linked in FIFO order by index, with no
//! unsafe code. A waiting future remembers its slot and shares a small
//! `Outcome` cell with it. Whoever ends the wait (a grant, `close`) writes the
//! cell under the lock and vacates the slot; the woken future reads the cell
//! without locking. While the cell says "waiting", the slot is still the
//! future's, which is what lets it update its waker or cancel under the
//! lock. A vacated slot keeps its cell for the next waiter when nobody else
//! holds it any more (one still held by a granted future that has not
//! looked yet goes to the back of the vacant list, see `Queue::reusable`),
//! so a steady stream of waiters allocates nothing once the slab has grown
//! to its peak, one slot more than the most waiters at once (but for a
//! fresh cell where granted futures are kept unpolled and every vacant
//! slot's cell is still held: see `Queue::reusable`).
//!
//! No waker is cloned, woken or dropped while the lock is held: a waker whose
//! methods call back into the semaphore cannot deadlock it.

#![forbid(unsafe_code)]

// The outcome cells' `Arc` is loom's under `--cfg portasync_loom`, so that
// the models see a slot's reuse (`get_mut`) against its last reader.
use crate::primitives::{Arc as CellArc, AtomicUsize, Mutex, MutexGuard, Ordering};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// The state word: free permits shifted left, and two flags.
const CLOSED: usize = 0b01;
const SLOW: usize = 0b10;
const SHIFT: u32 = 2;

/// "No slot": the end of a list.
const NIL: usize = usize::MAX;

/// An async semaphore: strictly FIFO-fair, weighted, closable and resizable.
///
/// A semaphore holds a number of permits. [`acquire`](Self::acquire) waits
/// for one, [`acquire_many`](Self::acquire_many) for several at once, and
/// the permit returned gives them back when it is dropped. Use it to bound
/// concurrency: at most `n` requests in flight, at most `n` open files.
///
/// # Fairness
///
/// Waiters are served strictly in the order in which they first polled their
/// acquire future. A waiter for many permits at the head of the queue holds
/// back every later waiter, even one that asks for fewer permits than are
/// free: permits that come back go to the head waiter until it has all it
/// asked for. [`try_acquire`](Self::try_acquire) never takes a permit while
/// anybody is waiting. A large request therefore never starves, at the price
/// that small ones wait behind it.
///
/// # Cancel safety
///
/// Dropping an acquire future at any point is safe: it loses its place in
/// the queue and nothing else. Permits already handed to it (a waiter at the
/// head collects permits as they come back) are returned at once and go to
/// the next waiters, who are woken.
///
/// # Resizing and closing
///
/// [`capacity`](Self::capacity) is the number of permits the semaphore
/// manages, free or held. [`add_permits`](Self::add_permits) and
/// [`set_capacity`](Self::set_capacity) change it at run time (as anyio's
/// `CapacityLimiter.total_tokens` does); shrinking takes free permits now and
/// keeps the ones that come back until the permits held fit the new capacity.
/// [`close`](Self::close) makes every acquire not yet granted fail, and every
/// later one; permits already held (or granted to a future not yet polled)
/// stay valid. Nothing reopens a closed semaphore.
///
/// Whatever wakes waiters (a permit dropped, `add_permits`, `set_capacity`,
/// `close`) wakes them all even if one's waker panics, then resumes that
/// panic in the caller.
///
/// # Cost
///
/// Acquiring a free permit and dropping it are one compare-and-swap each, as
/// long as nobody waits, with no lock and no allocation. A waiter takes one
/// short critical section to join the queue, and a release that hands its
/// permits on takes one; the granted waiter learns of its grant without the
/// lock. The queue's storage grows to the largest number of simultaneous
/// waiters and is then reused. Strict fairness has a price under contention:
/// a task that releases and at once acquires again goes to the back of the
/// queue (a task switch), where an unfair semaphore would let it barge in.
/// All counts are `usize`, and no count can overflow: every argument above
/// [`MAX_PERMITS`](Self::MAX_PERMITS) panics.
///
/// # Coming from tokio or async-lock
///
/// - `tokio::sync::Semaphore`: the same names and semantics (fair, weighted,
///   `close`, `forget_permits`, owned permits on `Arc<Semaphore>`), with
///   `usize` counts where tokio's `acquire_many` takes `u32`, and a
///   `const fn new` where tokio has `const_new`. New here:
///   [`capacity`](Self::capacity), [`set_capacity`](Self::set_capacity) and
///   [`waiters`](Self::waiters).
/// - `async_lock::Semaphore`: `acquire_arc` is
///   [`acquire_owned`](Self::acquire_owned) and `SemaphoreGuard` is
///   [`SemaphorePermit`]. async-lock's semaphore is not fair and cannot
///   close; this one is and can.
/// - Python: asyncio's `Semaphore` (use `async with` → hold the permit in a
///   scope) and trio's `CapacityLimiter` (`total_tokens` →
///   [`set_capacity`](Self::set_capacity)). asyncio's `BoundedSemaphore`
///   needs nothing extra: permits return only by being dropped, so the count
///   can never be released above what was acquired.
///
/// # Examples
///
/// At most two jobs run at once, whichever executor runs them:
///
/// ```
/// use futures_lite::future;
/// use portasync::Semaphore;
///
/// # future::block_on(async {
/// let semaphore = Semaphore::new(2);
/// let job = |i: u32| {
///     let semaphore = &semaphore;
///     async move {
///         let _permit = semaphore.acquire().await.expect("never closed");
///         future::yield_now().await; // the work, done while holding a permit
///         i * 10
///     }
/// };
/// let (a, (b, c)) = future::zip(job(1), future::zip(job(2), job(3))).await;
/// assert_eq!((a, b, c), (10, 20, 30));
/// assert_eq!(semaphore.available_permits(), 2);
/// # });
/// ```
pub struct Semaphore {
    /// Free permits `<< SHIFT`, `CLOSED` and `SLOW`.
    state: AtomicUsize,
    queue: Mutex<Queue>,
}

impl Semaphore {
    /// The largest number of permits a semaphore can hold, and the largest
    /// any one call can ask for: `usize::MAX >> 3`, as in tokio.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(Semaphore::MAX_PERMITS);
    /// assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    /// ```
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` permits, all free. It is a `const fn`, so a
    /// semaphore can live in a `static`.
    ///
    /// # Panics
    ///
    /// If `permits` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// static DOWNLOADS: Semaphore = Semaphore::new(4);
    ///
    /// # futures_lite::future::block_on(async {
    /// let _permit = DOWNLOADS.acquire().await.unwrap();
    /// assert_eq!(DOWNLOADS.available_permits(), 3);
    /// # });
    /// ```
    #[cfg(not(portasync_loom))]
    #[track_caller]
    #[must_use]
    pub const fn new(permits: usize) -> Self {
        assert!(
            permits <= Self::MAX_PERMITS,
            "Semaphore::new: `permits` is more than Semaphore::MAX_PERMITS"
        );
        Self {
            state: AtomicUsize::new(permits << SHIFT),
            queue: Mutex::new(Queue::new(permits)),
        }
    }

    /// A semaphore with `permits` permits (loom's types are not `const`).
    #[cfg(portasync_loom)]
    #[track_caller]
    #[must_use]
    pub fn new(permits: usize) -> Self {
        assert!(
            permits <= Self::MAX_PERMITS,
            "Semaphore::new: `permits` is more than Semaphore::MAX_PERMITS"
        );
        Self {
            state: AtomicUsize::new(permits << SHIFT),
            queue: Mutex::new(Queue::new(permits)),
        }
    }

    /// The number of permits free right now. While anybody waits this is
    /// zero: the head waiter collects every permit that comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(3);
    /// let permit = semaphore.try_acquire_many(2).unwrap();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// drop(permit);
    /// assert_eq!(semaphore.available_permits(), 3);
    /// ```
    #[inline]
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Acquire) >> SHIFT
    }

    /// The number of permits the semaphore manages: free, held by permits,
    /// or collected by the head waiter. It changes only through
    /// [`add_permits`](Self::add_permits),
    /// [`forget_permits`](Self::forget_permits),
    /// [`set_capacity`](Self::set_capacity), [`SemaphorePermit::forget`] and
    /// [`OwnedSemaphorePermit::forget`].
    ///
    /// After a shrink it is the target: until enough permits have come back
    /// to pay the shrink off, the permits held can exceed it (the
    /// semaphore keeps the ones that come back, and none are free).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(3);
    /// let _permit = semaphore.try_acquire().unwrap();
    /// assert_eq!(semaphore.capacity(), 3);
    /// semaphore.add_permits(2);
    /// assert_eq!(semaphore.capacity(), 5);
    /// ```
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// The number of acquire futures waiting in the queue: polled at least
    /// once, not yet granted, not dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::future;
    /// use portasync::Semaphore;
    ///
    /// # future::block_on(async {
    /// let semaphore = Semaphore::new(0);
    /// let mut acquire = semaphore.acquire();
    /// assert!(future::poll_once(&mut acquire).await.is_none());
    /// assert_eq!(semaphore.waiters(), 1);
    /// drop(acquire);
    /// assert_eq!(semaphore.waiters(), 0);
    /// # });
    /// ```
    pub fn waiters(&self) -> usize {
        self.lock().len
    }

    /// Whether [`close`](Self::close) has been called.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(1);
    /// assert!(!semaphore.is_closed());
    /// semaphore.close();
    /// assert!(semaphore.is_closed());
    /// ```
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Waits for one permit. Same as [`acquire_many(1)`](Self::acquire_many).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed before the permit is
    /// granted.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses its place in the queue and
    /// nothing else.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// # futures_lite::future::block_on(async {
    /// let semaphore = Semaphore::new(1);
    /// let permit = semaphore.acquire().await.unwrap();
    /// assert_eq!(permit.num_permits(), 1);
    /// assert_eq!(semaphore.available_permits(), 0);
    /// # });
    /// ```
    #[inline]
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            semaphore: self,
            waiter: Waiter::new(1),
        }
    }

    /// Waits for `n` permits, granted all at once.
    ///
    /// The future takes its place in the queue when first polled. At the
    /// head, it collects permits as they come back until it has `n`, holding
    /// back every later waiter (see [Fairness](Semaphore#fairness)).
    /// `acquire_many(0)` resolves on its first poll. If `n` is more than the
    /// [`capacity`](Self::capacity), the future waits until the capacity
    /// grows enough or the semaphore closes, and it holds back the queue
    /// meanwhile.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed before the permits are
    /// granted (also for `n == 0`).
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future gives back at once any permits it
    /// had collected (waking the waiters they now go to) and loses its place
    /// in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// # futures_lite::future::block_on(async {
    /// let semaphore = Semaphore::new(10);
    /// let permit = semaphore.acquire_many(4).await.unwrap();
    /// assert_eq!(permit.num_permits(), 4);
    /// assert_eq!(semaphore.available_permits(), 6);
    /// # });
    /// ```
    #[track_caller]
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        check_max("acquire_many", "n", n);
        Acquire {
            semaphore: self,
            waiter: Waiter::new(n),
        }
    }

    /// Waits for one permit that owns a reference to the semaphore, so it
    /// can be moved into a spawned task. Same as
    /// [`acquire_many_owned(1)`](Self::acquire_many_owned).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed before the permit is
    /// granted.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    /// use std::sync::Arc;
    ///
    /// # futures_lite::future::block_on(async {
    /// let semaphore = Arc::new(Semaphore::new(1));
    /// let permit = semaphore.acquire_owned().await.unwrap();
    /// let worker = std::thread::spawn(move || {
    ///     let _permit = permit; // released when the thread is done
    /// });
    /// worker.join().unwrap();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// # });
    /// ```
    pub fn acquire_owned(self: &Arc<Self>) -> AcquireOwned {
        AcquireOwned {
            semaphore: Arc::clone(self),
            waiter: Waiter::new(1),
        }
    }

    /// Waits for `n` permits that own a reference to the semaphore. Same
    /// rules as [`acquire_many`](Self::acquire_many).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed before the permits are
    /// granted.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`acquire_many`](Self::acquire_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    /// use std::sync::Arc;
    ///
    /// # futures_lite::future::block_on(async {
    /// let semaphore = Arc::new(Semaphore::new(4));
    /// let permit = semaphore.acquire_many_owned(3).await.unwrap();
    /// assert_eq!(permit.num_permits(), 3);
    /// assert!(Arc::ptr_eq(permit.semaphore(), &semaphore));
    /// # });
    /// ```
    #[track_caller]
    pub fn acquire_many_owned(self: &Arc<Self>, n: usize) -> AcquireOwned {
        check_max("acquire_many_owned", "n", n);
        AcquireOwned {
            semaphore: Arc::clone(self),
            waiter: Waiter::new(n),
        }
    }

    /// Takes one permit if one is free and nobody waits.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if the semaphore is closed,
    /// [`TryAcquireError::NoPermits`] if no permit is free or somebody is
    /// waiting (it never jumps the queue).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Semaphore, TryAcquireError};
    ///
    /// let semaphore = Semaphore::new(1);
    /// let permit = semaphore.try_acquire().unwrap();
    /// assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    /// drop(permit);
    /// semaphore.close();
    /// assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::Closed);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(1)?;
        Ok(SemaphorePermit {
            semaphore: self,
            permits: 1,
        })
    }

    /// Takes `n` permits if that many are free and nobody waits.
    /// `try_acquire_many(0)` succeeds unless the semaphore is closed.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if the semaphore is closed,
    /// [`TryAcquireError::NoPermits`] if fewer than `n` permits are free
    /// (always so when `n` is more than the capacity) or somebody is waiting.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Semaphore, TryAcquireError};
    ///
    /// let semaphore = Semaphore::new(4);
    /// let permit = semaphore.try_acquire_many(3).unwrap();
    /// assert_eq!(permit.num_permits(), 3);
    /// assert_eq!(semaphore.try_acquire_many(2).unwrap_err(), TryAcquireError::NoPermits);
    /// ```
    #[track_caller]
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        check_max("try_acquire_many", "n", n);
        self.try_take(n)?;
        Ok(SemaphorePermit {
            semaphore: self,
            permits: n,
        })
    }

    /// Takes one owned permit if one is free and nobody waits.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let semaphore = Arc::new(Semaphore::new(1));
    /// let permit = semaphore.try_acquire_owned().unwrap();
    /// assert!(semaphore.try_acquire_owned().is_err());
    /// drop(permit);
    /// assert!(semaphore.try_acquire_owned().is_ok());
    /// ```
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(1)?;
        Ok(OwnedSemaphorePermit {
            semaphore: Arc::clone(self),
            permits: 1,
        })
    }

    /// Takes `n` owned permits if that many are free and nobody waits.
    ///
    /// # Errors
    ///
    /// As [`try_acquire_many`](Self::try_acquire_many).
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let semaphore = Arc::new(Semaphore::new(5));
    /// let permit = semaphore.try_acquire_many_owned(5).unwrap();
    /// assert_eq!(permit.num_permits(), 5);
    /// ```
    #[track_caller]
    pub fn try_acquire_many_owned(
        self: &Arc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        check_max("try_acquire_many_owned", "n", n);
        self.try_take(n)?;
        Ok(OwnedSemaphorePermit {
            semaphore: Arc::clone(self),
            permits: n,
        })
    }

    /// Adds `n` permits: the capacity grows by `n`, and the new permits go
    /// to the waiters in order, then to the free count. If a shrink still
    /// withholds permits (see [`set_capacity`](Self::set_capacity)), the new
    /// ones cancel that first. A closed semaphore stays closed.
    ///
    /// # Panics
    ///
    /// If the capacity would be more than [`MAX_PERMITS`](Self::MAX_PERMITS)
    /// (`n` is too large).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(0);
    /// semaphore.add_permits(2);
    /// assert_eq!(semaphore.available_permits(), 2);
    /// assert_eq!(semaphore.capacity(), 2);
    /// ```
    #[track_caller]
    pub fn add_permits(&self, n: usize) {
        check_max("add_permits", "n", n);
        if n == 0 {
            return;
        }
        let mut queue = self.lock();
        let grown = queue.capacity + n;
        if grown > Self::MAX_PERMITS {
            drop(queue);
            panic!(
                "Semaphore::add_permits: `n` ({n}) would take the capacity past \
                 Semaphore::MAX_PERMITS ({})",
                Self::MAX_PERMITS
            );
        }
        queue.capacity = grown;
        self.hand_out(queue, n);
    }

    /// Removes up to `n` free permits for good and returns how many it
    /// removed; the capacity shrinks by as many. Permits that are held or
    /// collected by a waiter are not touched. A closed semaphore stays closed.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(5);
    /// let _held = semaphore.try_acquire_many(2).unwrap();
    /// assert_eq!(semaphore.forget_permits(10), 3);
    /// assert_eq!(semaphore.available_permits(), 0);
    /// assert_eq!(semaphore.capacity(), 2);
    /// ```
    #[track_caller]
    pub fn forget_permits(&self, n: usize) -> usize {
        check_max("forget_permits", "n", n);
        if n == 0 {
            return 0;
        }
        let mut queue = self.lock();
        let taken = self.take_free(n, false);
        queue.capacity -= taken;
        taken
    }

    /// Sets the capacity to `n` permits.
    ///
    /// Growing works as [`add_permits`](Self::add_permits). Shrinking takes
    /// free permits now; if too few are free, the permits that come back are
    /// kept (not freed, not given to waiters) until the permits held fit
    /// within the new capacity. Permits already held stay valid. A waiter
    /// that asks for more than the new capacity waits until it grows again
    /// or the semaphore closes, and, fairness being strict, so does every
    /// waiter behind it, however few permits they ask for. A closed
    /// semaphore stays closed.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(4);
    /// let held = semaphore.try_acquire_many(3).unwrap();
    /// semaphore.set_capacity(2);
    /// assert_eq!(semaphore.available_permits(), 0);
    /// drop(held); // 3 come back, 2 fit: 1 is withheld for good
    /// assert_eq!(semaphore.available_permits(), 2);
    /// assert_eq!(semaphore.capacity(), 2);
    /// ```
    #[track_caller]
    pub fn set_capacity(&self, n: usize) {
        check_max("set_capacity", "n", n);
        let mut queue = self.lock();
        let capacity = queue.capacity;
        queue.capacity = n;
        if n > capacity {
            self.hand_out(queue, n - capacity);
        } else if n < capacity {
            let shrink = capacity - n;
            // Sets `SLOW` if it cannot take all of it, so that returns are
            // withheld from now on.
            let taken = self.take_free(shrink, true);
            queue.debt += shrink - taken;
        }
    }

    /// Closes the semaphore: every acquire not yet granted fails with
    /// [`AcquireError`] (its waker is woken), and so does every later one.
    /// Permits already held stay valid and still return when dropped, and
    /// so does a grant made before the close to a future not yet polled
    /// since: that future returns its permit. Nothing reopens a closed
    /// semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Semaphore;
    ///
    /// # futures_lite::future::block_on(async {
    /// let semaphore = Semaphore::new(1);
    /// let held = semaphore.acquire().await.unwrap();
    /// semaphore.close();
    /// assert!(semaphore.acquire().await.is_err());
    /// drop(held);
    /// assert_eq!(semaphore.available_permits(), 1);
    /// # });
    /// ```
    pub fn close(&self) {
        let mut queue = self.lock();
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut wakers = Vec::with_capacity(queue.len);
        let mut returned = 0;
        while queue.head != NIL {
            let key = queue.head;
            let slot = &mut queue.slots[key];
            slot.outcome.set(SHUT_OUT);
            returned += slot.got;
            wakers.extend(slot.waker.take());
            queue.unlink(key);
            queue.vacate(key);
        }
        // The queue is empty now, so the collected permits only settle the
        // shrink debt and become free.
        self.hand_out(queue, returned);
        crate::wake::wake_all(wakers);
    }

    /// Locks the queue. Nothing panics or runs foreign code while it is held,
    /// so poisoning cannot happen; ignore it all the same.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lock-free path: takes `n` permits if nobody waits and no shrink is
    /// pending.
    #[inline]
    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                return Err(TryAcquireError::Closed);
            }
            if n == 0 {
                return Ok(());
            }
            if state & SLOW != 0 || state >> SHIFT < n {
                return Err(TryAcquireError::NoPermits);
            }
            match self.state.compare_exchange_weak(
                state,
                state - (n << SHIFT),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    /// Takes up to `n` free permits (under the lock) and returns how many;
    /// sets `SLOW` if `slow_if_short` and fewer than `n` were free.
    fn take_free(&self, n: usize, slow_if_short: bool) -> usize {
        let previous = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                let taken = n.min(state >> SHIFT);
                let mut next = state - (taken << SHIFT);
                if slow_if_short && taken < n {
                    next |= SLOW;
                }
                Some(next)
            })
            .unwrap_or_else(|state| state);
        n.min(previous >> SHIFT)
    }

    /// Returns `permits` (a permit was dropped).
    #[inline]
    fn release(&self, permits: usize) {
        if permits == 0 {
            return;
        }
        let mut state = self.state.load(Ordering::Relaxed);
        while state & SLOW == 0 {
            // Free permits + permits held never exceed the capacity while
            // `SLOW` is clear, so this stays within `MAX_PERMITS`.
            match self.state.compare_exchange_weak(
                state,
                state + (permits << SHIFT),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
        self.release_slow(permits);
    }

    /// Somebody waits or a shrink withholds: the permits go through the
    /// queue.
    #[inline(never)]
    fn release_slow(&self, permits: usize) {
        self.hand_out(self.lock(), permits);
    }

    /// Gives `permits` that just came back (or were added) to, in order: the
    /// shrink debt, the waiters from the head, the free count. Lets the lock
    /// go, then wakes whoever was granted.
    fn hand_out<'a>(&'a self, mut queue: MutexGuard<'a, Queue>, mut permits: usize) {
        let paid = permits.min(queue.debt);
        queue.debt -= paid;
        permits -= paid;
        let mut wakers = WakeList::default();
        while permits > 0 && queue.head != NIL {
            let key = queue.head;
            let slot = &mut queue.slots[key];
            let given = permits.min(slot.need - slot.got);
            slot.got += given;
            permits -= given;
            if slot.got < slot.need {
                break;
            }
            slot.outcome.set(GRANTED);
            wakers.push(slot.waker.take());
            queue.unlink(key);
            queue.vacate(key);
        }
        let slow = queue.head != NIL || queue.debt > 0;
        // `SLOW` is only ever set or cleared under the lock, so when it stays
        // set and no permit is left over (the usual hand-over from a release
        // to the next waiter) the state word needs no write.
        if permits > 0 || !slow {
            let _ = self
                .state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                    let state = state + (permits << SHIFT);
                    Some(if slow { state | SLOW } else { state & !SLOW })
                });
        }
        drop(queue);
        wakers.wake_all();
    }

    /// Permits that were held are forgotten instead of returned: they settle
    /// the shrink debt first, then the capacity shrinks by the rest.
    fn forget_held(&self, permits: usize) {
        if permits == 0 {
            return;
        }
        let mut queue = self.lock();
        let paid = permits.min(queue.debt);
        queue.debt -= paid;
        queue.capacity -= permits - paid;
        if paid > 0 && queue.debt == 0 && queue.head == NIL {
            self.state.fetch_and(!SLOW, Ordering::AcqRel);
        }
    }

    /// The slow path of an acquire's first poll: takes the permits if it
    /// can, or joins the queue with whatever is free.
    fn enqueue(&self, need: usize, waker: Waker) -> Enqueued {
        let mut queue = self.lock();
        // Under the lock, the flags cannot change; while `SLOW` is set the
        // free count cannot change either.
        let state = self.state.load(Ordering::Acquire);
        if state & CLOSED == 0 && state & SLOW != 0 {
            debug_assert_eq!(state >> SHIFT, 0, "free permits while waiters queue");
            let (key, grant) = queue.push(need, 0, waker);
            return Enqueued::Waiting(key, grant);
        }
        let mut got = 0;
        let mut granted = false;
        let result = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                if state & CLOSED != 0 {
                    return None;
                }
                let free = state >> SHIFT;
                if state & SLOW == 0 && free >= need {
                    granted = true;
                    return Some(state - (need << SHIFT));
                }
                // Nobody is queued or withheld while anything is free, so
                // collecting it does not jump the queue.
                granted = false;
                got = free.min(need);
                Some((state - (got << SHIFT)) | SLOW)
            });
        match result {
            Err(_) => {
                drop(queue);
                drop(waker);
                Enqueued::Closed
            }
            Ok(_) if granted => {
                drop(queue);
                drop(waker);
                Enqueued::Granted
            }
            Ok(_) => {
                let (key, grant) = queue.push(need, got, waker);
                Enqueued::Waiting(key, grant)
            }
        }
    }
}

enum Enqueued {
    Granted,
    Closed,
    Waiting(usize, CellArc<Outcome>),
}

/// Panics with the argument's name if it is more than `MAX_PERMITS`.
#[track_caller]
fn check_max(method: &str, argument: &str, value: usize) {
    if value > Semaphore::MAX_PERMITS {
        panic!(
            "Semaphore::{method}: `{argument}` ({value}) is more than Semaphore::MAX_PERMITS ({})",
            Semaphore::MAX_PERMITS
        );
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = self.lock();
        let (capacity, waiters) = (queue.capacity, queue.len);
        drop(queue);
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("capacity", &capacity)
            .field("waiters", &waiters)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Why an acquire failed: the semaphore was closed.
///
/// # Examples
///
/// ```
/// use portasync::{AcquireError, Semaphore};
///
/// # futures_lite::future::block_on(async {
/// let semaphore = Semaphore::new(1);
/// semaphore.close();
/// let error: AcquireError = semaphore.acquire().await.unwrap_err();
/// assert_eq!(error.to_string(), "semaphore closed");
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("semaphore closed")]
pub struct AcquireError(());

/// Why a `try_acquire` failed.
///
/// # Examples
///
/// ```
/// use portasync::{Semaphore, TryAcquireError};
///
/// let semaphore = Semaphore::new(0);
/// let error = semaphore.try_acquire().unwrap_err();
/// assert_eq!(error, TryAcquireError::NoPermits);
/// assert_eq!(error.to_string(), "no permits available");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TryAcquireError {
    /// The semaphore is closed.
    #[error("semaphore closed")]
    Closed,
    /// Too few permits are free, or somebody is waiting.
    #[error("no permits available")]
    NoPermits,
}

/// Permits borrowed from a [`Semaphore`]; dropping it gives them back (to
/// the waiters first, in order).
///
/// # Examples
///
/// ```
/// use portasync::Semaphore;
///
/// let semaphore = Semaphore::new(2);
/// {
///     let permit = semaphore.try_acquire_many(2).unwrap();
///     assert_eq!(permit.num_permits(), 2);
///     assert_eq!(semaphore.available_permits(), 0);
/// }
/// assert_eq!(semaphore.available_permits(), 2);
/// ```
#[must_use = "the permits go back as soon as this is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
}

impl<'a> SemaphorePermit<'a> {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = portasync::Semaphore::new(3);
    /// assert_eq!(semaphore.try_acquire_many(3).unwrap().num_permits(), 3);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Drops the permits without giving them back: the semaphore's capacity
    /// shrinks by as many (or, after a shrink, they settle the permits it
    /// still withholds).
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = portasync::Semaphore::new(3);
    /// semaphore.try_acquire().unwrap().forget();
    /// assert_eq!(semaphore.available_permits(), 2);
    /// assert_eq!(semaphore.capacity(), 2);
    /// ```
    pub fn forget(mut self) {
        self.semaphore
            .forget_held(std::mem::take(&mut self.permits));
    }

    /// Splits off `n` of the permits into a new permit, or `None` if this
    /// holds fewer than `n`.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = portasync::Semaphore::new(3);
    /// let mut permit = semaphore.try_acquire_many(3).unwrap();
    /// let one = permit.split(1).unwrap();
    /// assert_eq!((permit.num_permits(), one.num_permits()), (2, 1));
    /// assert!(permit.split(5).is_none());
    /// drop(one);
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Self> {
        self.permits = self.permits.checked_sub(n)?;
        Some(Self {
            semaphore: self.semaphore,
            permits: n,
        })
    }

    /// Moves `other`'s permits into this one.
    ///
    /// # Panics
    ///
    /// If `other` comes from a different semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = portasync::Semaphore::new(3);
    /// let mut permit = semaphore.try_acquire().unwrap();
    /// permit.merge(semaphore.try_acquire_many(2).unwrap());
    /// assert_eq!(permit.num_permits(), 3);
    /// ```
    #[track_caller]
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            std::ptr::eq(self.semaphore, other.semaphore),
            "SemaphorePermit::merge: `other` comes from a different semaphore"
        );
        // Both are held from one semaphore, and the permits held never add
        // up to more than `MAX_PERMITS`: no overflow.
        self.permits += std::mem::take(&mut other.permits);
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.semaphore.release(self.permits);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

/// Permits that own a reference to their [`Semaphore`], for moving into
/// spawned tasks; dropping it gives them back (to the waiters first, in
/// order).
///
/// # Examples
///
/// ```
/// use portasync::Semaphore;
/// use std::sync::Arc;
///
/// let semaphore = Arc::new(Semaphore::new(1));
/// let permit = semaphore.try_acquire_owned().unwrap();
/// std::thread::spawn(move || drop(permit)).join().unwrap();
/// assert_eq!(semaphore.available_permits(), 1);
/// ```
#[must_use = "the permits go back as soon as this is dropped"]
pub struct OwnedSemaphorePermit {
    semaphore: Arc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = std::sync::Arc::new(portasync::Semaphore::new(2));
    /// assert_eq!(semaphore.try_acquire_owned().unwrap().num_permits(), 1);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore these permits come from.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let semaphore = Arc::new(portasync::Semaphore::new(2));
    /// let permit = semaphore.try_acquire_owned().unwrap();
    /// assert!(Arc::ptr_eq(permit.semaphore(), &semaphore));
    /// ```
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// Drops the permits without giving them back: the semaphore's capacity
    /// shrinks by as many (or, after a shrink, they settle the permits it
    /// still withholds).
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = std::sync::Arc::new(portasync::Semaphore::new(3));
    /// semaphore.try_acquire_owned().unwrap().forget();
    /// assert_eq!(semaphore.capacity(), 2);
    /// ```
    pub fn forget(mut self) {
        self.semaphore
            .forget_held(std::mem::take(&mut self.permits));
    }

    /// Splits off `n` of the permits into a new permit, or `None` if this
    /// holds fewer than `n`.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = std::sync::Arc::new(portasync::Semaphore::new(2));
    /// let mut permit = semaphore.try_acquire_many_owned(2).unwrap();
    /// let one = permit.split(1).unwrap();
    /// assert_eq!((permit.num_permits(), one.num_permits()), (1, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Self> {
        self.permits = self.permits.checked_sub(n)?;
        Some(Self {
            semaphore: Arc::clone(&self.semaphore),
            permits: n,
        })
    }

    /// Moves `other`'s permits into this one.
    ///
    /// # Panics
    ///
    /// If `other` comes from a different semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = std::sync::Arc::new(portasync::Semaphore::new(3));
    /// let mut permit = semaphore.try_acquire_owned().unwrap();
    /// permit.merge(semaphore.try_acquire_many_owned(2).unwrap());
    /// assert_eq!(permit.num_permits(), 3);
    /// ```
    #[track_caller]
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            Arc::ptr_eq(&self.semaphore, &other.semaphore),
            "OwnedSemaphorePermit::merge: `other` comes from a different semaphore"
        );
        // As in `SemaphorePermit::merge`: no overflow.
        self.permits += std::mem::take(&mut other.permits);
    }
}

impl Drop for OwnedSemaphorePermit {
    #[inline]
    fn drop(&mut self) {
        self.semaphore.release(self.permits);
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// It takes its place in the queue when first polled and is `Unpin`: no pin
/// projection is needed to poll it by hand.
///
/// # Panics
///
/// If polled again after it returned `Ready`.
///
/// # Cancel safety
///
/// Dropping it gives back any permits it had collected (waking the waiters
/// they go to) and loses its place in the queue.
///
/// # Examples
///
/// ```
/// use futures_lite::future;
/// use portasync::Semaphore;
///
/// # future::block_on(async {
/// let semaphore = Semaphore::new(1);
/// let held = semaphore.acquire().await.unwrap();
/// let mut waiting = semaphore.acquire();
/// assert!(future::poll_once(&mut waiting).await.is_none());
/// drop(held);
/// assert!(waiting.await.is_ok());
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    waiter: Waiter,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.waiter.poll(this.semaphore, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(permits)) => Poll::Ready(Ok(SemaphorePermit {
                semaphore: this.semaphore,
                permits,
            })),
        }
    }
}

impl Drop for Acquire<'_> {
    #[inline]
    fn drop(&mut self) {
        self.waiter.cancel(self.semaphore);
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("permits", &self.waiter.need)
            .finish_non_exhaustive()
    }
}

/// The future of [`Semaphore::acquire_owned`] and
/// [`Semaphore::acquire_many_owned`].
///
/// It takes its place in the queue when first polled and is `Unpin`.
///
/// # Panics
///
/// If polled again after it returned `Ready`.
///
/// # Cancel safety
///
/// Dropping it gives back any permits it had collected (waking the waiters
/// they go to) and loses its place in the queue.
///
/// # Examples
///
/// ```
/// use portasync::Semaphore;
/// use std::sync::Arc;
///
/// # futures_lite::future::block_on(async {
/// let semaphore = Arc::new(Semaphore::new(1));
/// let acquire = semaphore.acquire_owned(); // 'static: can be stored
/// let permit = acquire.await.unwrap();
/// assert_eq!(permit.num_permits(), 1);
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireOwned {
    semaphore: Arc<Semaphore>,
    waiter: Waiter,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.waiter.poll(&this.semaphore, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(permits)) => Poll::Ready(Ok(OwnedSemaphorePermit {
                semaphore: Arc::clone(&this.semaphore),
                permits,
            })),
        }
    }
}

impl Drop for AcquireOwned {
    #[inline]
    fn drop(&mut self) {
        self.waiter.cancel(&self.semaphore);
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("permits", &self.waiter.need)
            .finish_non_exhaustive()
    }
}

/// The state of one acquire, shared by both futures and not generic.
struct Waiter {
    need: usize,
    phase: Phase,
}

enum Phase {
    /// Not polled yet: no place in the queue.
    Start,
    /// Waiting in slot `key`, which stays ours while `outcome` is `WAITING`.
    Queued {
        key: usize,
        outcome: CellArc<Outcome>,
    },
    /// Resolved; its permits (if any) belong to a permit now.
    Done,
}

impl Waiter {
    #[inline]
    fn new(need: usize) -> Self {
        Self {
            need,
            phase: Phase::Start,
        }
    }

    /// Polls the acquire; `Ok` carries the number of permits granted.
    #[inline]
    fn poll(
        &mut self,
        semaphore: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<usize, AcquireError>> {
        if let Phase::Start = self.phase {
            if semaphore.try_take(self.need).is_ok() {
                self.phase = Phase::Done;
                return Poll::Ready(Ok(self.need));
            }
        }
        self.poll_slow(semaphore, cx)
    }

    /// Everything but a first poll that finds its permits free.
    #[inline(never)]
    fn poll_slow(
        &mut self,
        semaphore: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<usize, AcquireError>> {
        let (key, outcome) = match &self.phase {
            Phase::Start => {
                let enqueued = match semaphore.try_take(self.need) {
                    Ok(()) => Enqueued::Granted,
                    Err(TryAcquireError::Closed) => Enqueued::Closed,
                    // Cloned before locking: a waker's `clone` is foreign
                    // code too.
                    Err(TryAcquireError::NoPermits) => {
                        semaphore.enqueue(self.need, cx.waker().clone())
                    }
                };
                return match enqueued {
                    Enqueued::Granted => self.finish(GRANTED),
                    Enqueued::Closed => self.finish(SHUT_OUT),
                    Enqueued::Waiting(key, outcome) => {
                        self.phase = Phase::Queued { key, outcome };
                        Poll::Pending
                    }
                };
            }
            Phase::Queued { key, outcome } => (*key, outcome),
            Phase::Done => panic!("a semaphore's acquire future was polled after it completed"),
        };
        // The usual case: woken because the wait is over. No lock needed.
        let resolved = outcome.get();
        if resolved != WAITING {
            return self.finish(resolved);
        }
        let queue = semaphore.lock();
        let resolved = outcome.get();
        if resolved != WAITING {
            drop(queue);
            return self.finish(resolved);
        }
        let current = queue.slots[key].waker.as_ref();
        if current.is_some_and(|waker| waker.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        drop(queue);
        let fresh = cx.waker().clone();
        let mut queue = semaphore.lock();
        let resolved = outcome.get();
        if resolved != WAITING {
            drop(queue);
            drop(fresh);
            return self.finish(resolved);
        }
        let stale = queue.slots[key].waker.replace(fresh);
        drop(queue);
        drop(stale);
        Poll::Pending
    }

    fn finish(&mut self, outcome: usize) -> Poll<Result<usize, AcquireError>> {
        self.phase = Phase::Done;
        Poll::Ready(if outcome == GRANTED {
            Ok(self.need)
        } else {
            Err(AcquireError(()))
        })
    }

    /// Called on drop: gives back whatever the wait holds and leaves the
    /// queue.
    #[inline]
    fn cancel(&mut self, semaphore: &Semaphore) {
        if let Phase::Queued { .. } = self.phase {
            self.leave(semaphore);
        }
    }

    #[inline(never)]
    fn leave(&mut self, semaphore: &Semaphore) {
        let Phase::Queued { key, outcome } = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        match outcome.get() {
            // Granted but never seen: pass the permits on as a release does.
            GRANTED => return semaphore.release(self.need),
            SHUT_OUT => return,
            _ => {}
        }
        let mut queue = semaphore.lock();
        match outcome.get() {
            GRANTED => {
                drop(queue);
                semaphore.release(self.need);
            }
            SHUT_OUT => drop(queue),
            _ => {
                let got = queue.slots[key].got;
                queue.unlink(key);
                let stale = queue.vacate(key);
                // Even with nothing to give back: with the queue empty (and
                // no shrink to pay off), this clears `SLOW`, and releases
                // take the lock-free path again.
                semaphore.hand_out(queue, got);
                drop(stale);
            }
        }
    }
}

/// How a queued wait ended, shared by the waiting future and its slot: the
/// future reads it without the lock; it is written under the lock.
struct Outcome(AtomicUsize);

const WAITING: usize = 0;
const GRANTED: usize = 1;
/// The semaphore closed first.
const SHUT_OUT: usize = 2;

impl Outcome {
    fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, outcome: usize) {
        self.0.store(outcome, Ordering::Release);
    }
}

/// The waiter queue and the counts that change only under its lock.
struct Queue {
    slots: Vec<Slot>,
    /// Vacant slots, oldest first: the oldest is the likeliest to have an
    /// `Outcome` nobody else holds any more, so it can be reused.
    vacant_head: usize,
    vacant_tail: usize,
    /// FIFO order of the queued slots.
    head: usize,
    tail: usize,
    /// Number of queued slots.
    len: usize,
    capacity: usize,
    /// Permits to withhold from those that come back, after a shrink below
    /// the number held.
    debt: usize,
}

struct Slot {
    need: usize,
    /// Permits collected so far (only the head collects).
    got: usize,
    waker: Option<Waker>,
    outcome: CellArc<Outcome>,
    /// Links: in FIFO order while queued, in the vacant list otherwise.
    prev: usize,
    next: usize,
}

impl Queue {
    const fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            vacant_head: NIL,
            vacant_tail: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
            capacity,
            debt: 0,
        }
    }

    /// Appends a waiter at the tail; returns its slot and outcome.
    fn push(&mut self, need: usize, got: usize, waker: Waker) -> (usize, CellArc<Outcome>) {
        let key = match self.reusable() {
            Some(key) => {
                let slot = &mut self.slots[key];
                slot.need = need;
                slot.got = got;
                slot.waker = Some(waker);
                slot.outcome.set(WAITING);
                key
            }
            None => {
                self.slots.push(Slot {
                    need,
                    got,
                    waker: Some(waker),
                    outcome: CellArc::new(Outcome(AtomicUsize::new(WAITING))),
                    prev: NIL,
                    next: NIL,
                });
                self.slots.len() - 1
            }
        };
        self.slots[key].prev = self.tail;
        self.slots[key].next = NIL;
        match self.tail {
            NIL => self.head = key,
            tail => self.slots[tail].next = key,
        }
        self.tail = key;
        self.len += 1;
        (key, CellArc::clone(&self.slots[key].outcome))
    }

    /// Takes a vacant slot off the vacant list for a new waiter, oldest
    /// first, preferring one whose outcome cell nobody else holds any more
    /// (its last waiter was granted and has not looked yet otherwise):
    ///
    /// - The only vacant slot, held: none (the caller adds a slot). So a
    ///   steady hand-over (a waiter granted, the next one queued, then the
    ///   granted one polled) settles on two slots that take turns, and
    ///   allocates nothing.
    /// - Else a held slot goes to the back of the list and the next is
    ///   tried; after two held in a row, the one at the front is taken,
    ///   with a cell of its own if it is held too (one allocation, no new
    ///   slot). So granted
    ///   futures kept unpolled never make the slab grow: it stays within
    ///   one slot of the most waiters at once.
    fn reusable(&mut self) -> Option<usize> {
        let first = self.vacant_head;
        if first == NIL || (self.vacant_tail == first && self.is_held(first)) {
            return None;
        }
        for _ in 0..2 {
            let key = self.vacant_head;
            if !self.is_held(key) {
                return Some(self.take_vacant());
            }
            if self.vacant_tail != key {
                self.vacant_head = self.slots[key].next;
                self.slots[key].next = NIL;
                self.slots[self.vacant_tail].next = key;
                self.vacant_tail = key;
            }
        }
        let key = self.take_vacant();
        // With three or more vacant, the front one has not been looked at.
        if self.is_held(key) {
            self.slots[key].outcome = CellArc::new(Outcome(AtomicUsize::new(WAITING)));
        }
        Some(key)
    }

    /// Whether the last waiter of vacant slot `key` still holds its cell.
    fn is_held(&mut self, key: usize) -> bool {
        CellArc::get_mut(&mut self.slots[key].outcome).is_none()
    }

    /// Takes the slot at the front of the vacant list off it.
    fn take_vacant(&mut self) -> usize {
        let key = self.vacant_head;
        self.vacant_head = self.slots[key].next;
        self.slots[key].next = NIL;
        if self.vacant_head == NIL {
            self.vacant_tail = NIL;
        }
        key
    }

    /// Takes a queued slot out of the FIFO order.
    fn unlink(&mut self, key: usize) {
        let Slot { prev, next, .. } = self.slots[key];
        match prev {
            NIL => self.head = next,
            prev => self.slots[prev].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.slots[next].prev = prev,
        }
        self.len -= 1;
    }

    /// Puts an unlinked slot on the vacant list and hands back its waker, to
    /// be dropped after the lock is let go.
    fn vacate(&mut self, key: usize) -> Option<Waker> {
        let slot = &mut self.slots[key];
        slot.got = 0;
        slot.next = NIL;
        let waker = slot.waker.take();
        match self.vacant_tail {
            NIL => self.vacant_head = key,
            tail => self.slots[tail].next = key,
        }
        self.vacant_tail = key;
        waker
    }
}

/// Wakers collected under the lock, woken after it is let go. The usual
/// hand-over grants one waiter, which needs no allocation.
#[derive(Default)]
struct WakeList {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl WakeList {
    fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.more.push(waker);
        }
    }

    /// Wakes them all, even if one panics (then the panic goes on once
    /// every waiter has been woken).
    fn wake_all(self) {
        crate::wake::wake_all(self.first.into_iter().chain(self.more));
    }
}

#[cfg(all(test, not(portasync_loom)))]
mod tests {
    use super::*;

    fn slow(semaphore: &Semaphore) -> bool {
        semaphore.state.load(Ordering::Acquire) & SLOW != 0
    }

    /// The only waiter leaving with nothing collected empties the queue:
    /// the lock-free path is open again for the next release.
    #[test]
    fn the_last_waiter_leaving_empty_handed_reopens_the_fast_path() {
        let semaphore = Semaphore::new(1);
        let held = semaphore.try_acquire().unwrap();
        let mut waiting = semaphore.acquire();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
        assert!(slow(&semaphore));
        drop(waiting);
        assert!(!slow(&semaphore), "the empty queue still takes the lock");
        drop(held);
        assert_eq!(semaphore.available_permits(), 1);
    }

    /// Granted futures kept unpolled (holding their slots' cells) do not
    /// make the slab grow as waiters come and go.
    #[test]
    fn unpolled_grants_do_not_grow_the_slab() {
        let semaphore = Semaphore::new(3);
        let mut cx = Context::from_waker(Waker::noop());
        let held = semaphore.try_acquire_many(3).unwrap();
        let (mut a, mut b) = (semaphore.acquire(), semaphore.acquire());
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        drop(held); // `a` and `b` granted, kept, never polled again
        let mut permit = semaphore.try_acquire().unwrap();
        for _ in 0..10_000 {
            let mut next = semaphore.acquire();
            assert!(Pin::new(&mut next).poll(&mut cx).is_pending());
            drop(permit);
            let Poll::Ready(granted) = Pin::new(&mut next).poll(&mut cx) else {
                panic!("the released permit went to `next`")
            };
            permit = granted.unwrap();
        }
        let slots = semaphore.lock().slots.len();
        assert!(slots <= 4, "{slots} slots after 10,000 hand-overs");
        drop((a, b, permit));
        assert_eq!(semaphore.available_permits(), 3);
    }
}
