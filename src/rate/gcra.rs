//! `RateLimiter`: the generic cell rate algorithm, exact, with FIFO waiting.
//!
//! # Arithmetic
//!
//! Time is counted in ticks of `1 / count` nanoseconds (count and period in
//! lowest terms), so the emission interval `period / count` is a whole
//! number of ticks and nothing is ever rounded while the limiter runs: no
//! drift over any number of cells, and no zero interval for `u32::MAX` per
//! second. Everything fits a `u128`: 584 years of nanoseconds times a `u32`
//! count is below 2^97, and `u32::MAX` cells of a `Duration::MAX` period
//! below 2^127; sums saturate.
//!
//! The state is the theoretical arrival time `tat`: the instant the bucket
//! would be full again. A request for `n` cells at `now` is allowed when
//! `max(tat, now) + n·interval - now <= burst·interval`, and then moves
//! `tat` there (a request within the nanosecond after `tat` counts as made
//! at `tat`: the clock cannot say more). The clock is read before anything
//! else; a reading that is stale by the time it is used only ever refuses
//! more, never allows more. The one decision a stale reading could get
//! wrong, whether a dropped waiter's turn has passed, uses the latest
//! reading anything under the lock was done at instead.
//!
//! A plain `check` works on the same numbers taken relative to a recent
//! base, so that they fit one 64-bit word, and commits with one
//! compare-and-swap (see [`Fast`]); everything else takes the lock.
//!
//! # Waiting
//!
//! A waiter books its cells at once (it moves `tat`, as an allowed request
//! would) and sleeps until the booked time, when a `check` for the same
//! cells would have succeeded. Bookings are made under the lock in arrival
//! order, so their times increase: FIFO order with one wake each, from the
//! waiter's own timer, and nothing shared to stall on if a waiter is leaked.
//!
//! A waiter dropped before its time gives its cells back: `tat` and every
//! later booking move earlier by its share, exactly as if it had never
//! asked. The later waiters' sleeps are then late. Rather than wake them all,
//! each is woken (to re-arm) only when the waiter ahead of it is served or
//! dropped, so a cancellation costs one extra wake per waiter behind it, at
//! most once each, spread over their turns. A leaked waiter is never served
//! nor dropped: those behind it keep the times they booked.
//!
//! Moving every later booking would make n waiters that time out together,
//! oldest first, cost O(n²) under the lock. The queue stores its times plus
//! an offset they all share instead, so a give-back changes the waiters on
//! the shorter side of it: none at either end of the queue, as removing the
//! entry moves none (see [`Waiters`]).

use super::{
    Booking, InsufficientCapacity, Nap, NotUntil, Origin, Quota, RateLimited, Reading, Turn, lock,
};
use crate::primitives::{Arc, Mutex, MutexGuard};
use crate::primitives::{AtomicU64, Ordering, fence};
use crate::rt::{Auto, Timer};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A rate limiter: the generic cell rate algorithm (GCRA), exact in integer
/// nanoseconds, with fair async waiting.
///
/// It allows [`Quota::burst_size`] cells at once after an idle spell, then
/// one every `period / count`. [`check`](Self::check) answers at once;
/// [`acquire`](Self::acquire) waits its turn. Clones share one limit.
///
/// - **Exact**: `Quota::per_second(3)` allows exactly 3,000,000 cells in
///   1,000,000 seconds, not one every 333,333,333 ns (integer arithmetic in
///   ticks of `1 / count` ns, no floats, no rounding while it runs).
///   [`NotUntil::wait_time`] is exact: no success before it, success at it
///   (before the clock's end, below).
/// - **Fair**: waiters are served in the order they first polled; each books
///   its time at once and is woken once, by its own timer. There is no
///   leader: a dropped waiter gives its cells back, and a leaked one keeps
///   them (as if served) without stalling anyone: those behind it are served
///   by their booked times. (They wait for the times they booked before
///   anything ahead of the leaked waiter was given back, since the wake
///   that moves them up is handed down the queue through it.) `check`
///   never takes the cells a waiter has booked.
/// - **Live**: [`set_quota`](Self::set_quota) changes the rate and burst
///   while the limiter runs, keeping what has been used.
/// - **Cost**: `check` reads the timer once and commits with one
///   compare-and-swap, no lock and no allocation; a refusal writes nothing.
///   That holds whenever what is booked ahead of the clock fits 2^58
///   ticks (`1 / count` ns in lowest terms): nine years for every quota of
///   whole nanoseconds (10 per second, a billion per second, 1 per hour,
///   with any burst), a third of a second at `u32::MAX` per second. Beyond
///   that, and while a waiter is queued (so that a waiter that is dropped
///   can tell whether its cells were spent meanwhile), `check` takes a
///   small lock.
///   Waiting, giving back and `set_quota` take the lock. A waiter costs one
///   queue entry; a dropped one costs O(log n) at either end of the queue
///   (the oldest, or the newest), O(min(ahead, behind)) in the middle.
/// - **Clock's end**: the limiter counts nanoseconds from when it was made,
///   for 584 years. Past that, time stands still for it: the bucket no
///   longer refills, a refusal is for good (its `wait_time` is
///   `Duration::MAX`), and a waiter whose time lies past the end waits
///   until one ahead of it gives way.
///
/// It plays the part of governor's direct `RateLimiter` (`check`,
/// `check_n`, `until_ready`) and of Python's `aiolimiter.AsyncLimiter`
/// (`async with limiter:` is `limiter.acquire().await`), on any executor.
/// For a hard "at most n in any window" limit, see
/// [`SlidingWindow`](crate::SlidingWindow); for one limit per user or
/// address, [`KeyedRateLimiter`](crate::KeyedRateLimiter).
///
/// # Examples
///
/// ```
/// use portasync::{Quota, RateLimiter};
///
/// # futures_lite::future::block_on(async {
/// let limiter = RateLimiter::new(Quota::per_second(50).burst(5));
/// for _ in 0..5 {
///     assert!(limiter.check().is_ok()); // the burst
/// }
/// assert!(limiter.check().is_err()); // then one every 20 ms
/// limiter.acquire().await; // waits about 20 ms
/// # });
/// ```
///
/// On a [`ManualClock`](crate::rt::ManualClock), to the nanosecond:
///
/// ```
/// # #[cfg(feature = "test-util")] {
/// use portasync::rt::ManualClock;
/// use portasync::{Quota, RateLimiter};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::with_timer(Quota::per_second(10), clock.clone());
/// for _ in 0..10 {
///     limiter.check().unwrap();
/// }
/// assert_eq!(limiter.check().unwrap_err().wait_time(), Duration::from_millis(100));
/// clock.advance(Duration::from_millis(100));
/// assert!(limiter.check().is_ok());
/// # }
/// ```
///
/// # Cancel safety
///
/// Dropping a [`RateAcquire`] or [`RateAcquireN`] before its turn gives its cells back: the waiters
/// behind it move up, and `check` sees the capacity. Dropped after its turn
/// came but before it was polled, its cells count as used.
pub struct RateLimiter<T = Auto> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    timer: T,
    origin: Origin,
    fast: Fast,
    state: Mutex<State>,
}

/// The lock-free path of `check`: the state as one word, for as long as it
/// fits in one.
///
/// The word holds `tat - base` in its low [`TAT_BITS`] bits, a generation
/// above them and [`SLOW`] on top. The current generation's quota and `base`
/// sit in `slot`. A `check` reads the word and the slot (both at once: which
/// slot to read does not wait for the word), decides,
/// and commits with one compare-and-swap of the word; anything else (a
/// booking, a give-back, a quota change, a value that does not fit) takes
/// the lock, sets the word to [`SLOW`] (so every `check` in flight fails its
/// swap and every new one waits for the lock), works on `State::tat`, and
/// puts the result back, unless a waiter is queued: then the word stays
/// [`SLOW`] until the queue is empty.
///
/// The generation moves only when the slot's contents change: on a quota
/// change, or when `base` has to move (every 2^58 to 2^59 ticks of the
/// clock: nine years for a quota of whole nanoseconds, down to 67 ms at
/// 2^32 ticks per nanosecond). Otherwise the state goes back under the same generation, and a word that
/// reads the same means the same state, so a `check` that read it before a
/// lock holder came and swaps it after is still right (as if it had checked
/// a little earlier). The slot is rewritten for a new generation only after
/// the word was set to [`SLOW`] and a release fence, and read before an
/// acquire fence and the word's swap, so a `check` that read the slot while
/// it was rewritten sees the word changed and starts over; only a generation that came round again
/// ([`GEN_BITS`] bits: 16 quota or base changes between a check's two
/// accesses to the word) with the very same state bits could fool it.
struct Fast {
    word: AtomicU64,
    slot: Slot,
}

/// One generation's quota in ticks, and its `base`, bounded so that the
/// fast path's arithmetic cannot overflow (see [`Fast::check`]).
#[derive(Default)]
struct Slot {
    per_nano: AtomicU64,
    /// Ticks per cell, at most [`CAP`]: a larger one never fits the word.
    interval: AtomicU64,
    /// Ticks a full bucket holds, at most [`CAP`]: a larger one allows
    /// every state that fits the word.
    tau: AtomicU64,
    burst: AtomicU64,
    /// Nanoseconds since the origin at which the word's ticks start.
    base: AtomicU64,
    /// The most nanoseconds past `base` whose ticks fit the word.
    span: AtomicU64,
}

/// What a [`Slot`] holds, as last published; kept under the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Params {
    words: Words,
    base: u64,
}

const GEN_BITS: u32 = 4;
const TAT_BITS: u32 = 63 - GEN_BITS;
const TAT_MASK: u64 = (1 << TAT_BITS) - 1;
const GEN_MASK: u64 = ((1 << GEN_BITS) - 1) << TAT_BITS;
/// The state lives in `State::tat`, under the lock.
const SLOW: u64 = 1 << 63;
/// The largest state (and time since `base`) put in the word: half its
/// range, so that the fast path serves a while before `base` must move.
const FAST_LIMIT: u64 = TAT_MASK / 2;
/// What a slot's `interval` and `tau` are clamped to: above every value the
/// word holds, and small enough that a sum of two never overflows.
const CAP: u64 = TAT_MASK + 1;

impl Fast {
    /// `n` cells at `reading`, without the lock: `None` when the lock is
    /// needed (`n` above the burst, a value that does not fit the word).
    /// A refusal gives the earliest time in ticks since the origin, and the
    /// ticks per nanosecond.
    ///
    /// The slot's bounds keep every step in range: `now` and `tat` are at
    /// most [`TAT_MASK`], `interval` and `tau` at most [`CAP`], so no sum
    /// below overflows. A slot being rewritten may be read torn; the
    /// arithmetic wraps rather than panics then, and the swap fails.
    #[inline]
    fn check(&self, reading: Reading, n: u32) -> Option<Result<(), (u128, u32)>> {
        // Ticks of a nanosecond (a whole number of nanoseconds a cell: most
        // quotas) spare the multiplication on the way from the clock to the
        // swap.
        if self.slot.per_nano.load(Ordering::Relaxed) == 1 {
            self.check_in::<true>(reading, n)
        } else {
            self.check_in::<false>(reading, n)
        }
    }

    /// [`check`](Self::check), with ticks known to be nanoseconds when
    /// `NANO_TICKS` (should the slot say otherwise by the time it is read,
    /// the lock decides).
    #[inline(always)]
    fn check_in<const NANO_TICKS: bool>(
        &self,
        reading: Reading,
        n: u32,
    ) -> Option<Result<(), (u128, u32)>> {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            if word & SLOW != 0 {
                return None;
            }
            let slot = &self.slot;
            let per_nano = if NANO_TICKS {
                if slot.per_nano.load(Ordering::Relaxed) != 1 {
                    return None;
                }
                1
            } else {
                slot.per_nano.load(Ordering::Relaxed)
            };
            let interval = slot.interval.load(Ordering::Relaxed);
            let tau = slot.tau.load(Ordering::Relaxed);
            let base = slot.base.load(Ordering::Relaxed);
            let span = slot.span.load(Ordering::Relaxed);
            // One cell never exceeds a burst; only a larger request reads it.
            let burst = if n > 1 {
                slot.burst.load(Ordering::Relaxed)
            } else {
                1
            };
            // Pairs with the release fence in `publish`: if any load above
            // saw a later generation's slot, the word has changed by now.
            fence(Ordering::Acquire);
            // A reading from before `base` (another thread's, taken a
            // little later, moved it) goes to the lock: a branch there
            // rather than a saturating subtraction keeps the path from the
            // clock to the swap a step shorter.
            let since = reading.since(base)?;
            if since > span || u64::from(n) > burst {
                return None; // time to move `base`, or no wait would do
            }
            let now = since.wrapping_mul(per_nano);
            let tat = word & TAT_MASK;
            // A request in the nanosecond after `tat` counts as made at `tat`.
            let start = if tat.wrapping_add(per_nano) > now {
                tat
            } else {
                now
            };
            let cost = if n == 1 {
                interval
            } else {
                u64::from(n).checked_mul(interval)?
            };
            let new = start.checked_add(cost)?;
            if new > TAT_MASK {
                return None;
            }
            if new > now.wrapping_add(tau) {
                let current = self.word.load(Ordering::Acquire);
                if current != word {
                    word = current;
                    continue;
                }
                let earliest =
                    u128::from(new.wrapping_sub(tau)) + u128::from(base) * u128::from(per_nano);
                return Some(Err((earliest, per_nano as u32)));
            }
            let next = (word & !TAT_MASK) | new;
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Ok(())),
                Err(current) => word = current,
            }
        }
    }

    /// Takes the state out of the word (which is left [`SLOW`]) into
    /// `state.tat`. Called with the lock held.
    fn freeze(&self, state: &mut State) {
        // Only a lock holder leaves SLOW: a SLOW word stays so while we hold
        // the lock, and needs no swap.
        if self.word.load(Ordering::Acquire) & SLOW != 0 {
            return;
        }
        let word = self.word.swap(SLOW, Ordering::AcqRel);
        if word & SLOW == 0 {
            let base = self.slot.base.load(Ordering::Relaxed);
            state.tat = u128::from(word & TAT_MASK) + u128::from(base) * state.gcra.per_nano;
        }
    }

    /// Puts `state.tat` back into the word, under the same generation if
    /// the quota and `base` still serve, otherwise under a new one with a
    /// new `base`; leaves the word [`SLOW`] if the state does not fit.
    /// Called with the lock held, after [`freeze`](Self::freeze); `nanos` is
    /// a recent clock reading.
    fn publish(&self, state: &mut State, nanos: u64) {
        // While a waiter is queued, every check takes the lock: a check
        // that finds the bucket full then spends the waiter's booking with
        // its reading noted in `State::latest`, which a give-back needs.
        if !state.queue.is_empty() {
            return;
        }
        let gcra = state.gcra;
        // A bucket that has been full for over a nanosecond is the same at
        // any earlier `tat`: raise it to keep the numbers small.
        let now = gcra.ticks(nanos);
        let tat = state.tat.max(now.saturating_sub(gcra.per_nano));
        // `tat` and the time as words relative to `base`, if they fit.
        let relative = |base: u64| {
            let start = u128::from(base) * gcra.per_nano;
            let rel = tat.checked_sub(start)?;
            let limit = u128::from(FAST_LIMIT);
            (rel <= limit && now.saturating_sub(start) <= limit).then_some(rel as u64)
        };
        let words = gcra.words();
        if let Some(published) = state.published {
            if published.words == words {
                if let Some(rel) = relative(published.base) {
                    let generation = (state.generation << TAT_BITS) & GEN_MASK;
                    self.word.store(generation | rel, Ordering::Release);
                    return;
                }
            }
        }
        let Ok(base) =
            u64::try_from((tat / gcra.per_nano).min(u128::from(nanos.saturating_sub(1))))
        else {
            return;
        };
        let Some(rel) = relative(base) else {
            return; // booked far ahead: stay slow until it is not
        };
        state.published = Some(Params { words, base });
        state.generation = state.generation.wrapping_add(1);
        let generation = (state.generation << TAT_BITS) & GEN_MASK;
        let slot = &self.slot;
        // Pairs with the acquire fence in `check`: the swap to SLOW in
        // `freeze` is visible to any check that sees the stores below.
        fence(Ordering::Release);
        slot.per_nano.store(words.per_nano, Ordering::Relaxed);
        slot.interval
            .store(words.interval.min(CAP), Ordering::Relaxed);
        slot.tau.store(words.tau.min(CAP), Ordering::Relaxed);
        slot.burst.store(u64::from(words.burst), Ordering::Relaxed);
        slot.base.store(base, Ordering::Relaxed);
        slot.span
            .store(TAT_MASK / words.per_nano, Ordering::Relaxed);
        self.word.store(generation | rel, Ordering::Release);
    }
}

/// The state, locked and taken out of the fast word; put back when dropped.
struct Frozen<'a> {
    fast: &'a Fast,
    state: MutexGuard<'a, State>,
    nanos: u64,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.fast.publish(&mut self.state, self.nanos);
    }
}

impl std::ops::Deref for Frozen<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Frozen<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl<T> Shared<T> {
    /// Locks the state and takes it out of the fast word, for anything but
    /// a plain `check`; `nanos` is a recent clock reading.
    fn freeze(&self, nanos: u64) -> Frozen<'_> {
        freeze(&self.fast, &self.state, nanos)
    }
}

fn freeze<'a>(fast: &'a Fast, state: &'a Mutex<State>, nanos: u64) -> Frozen<'a> {
    let mut state = lock(state);
    fast.freeze(&mut state);
    state.latest = state.latest.max(nanos);
    Frozen { fast, state, nanos }
}

struct State {
    quota: Quota,
    gcra: Gcra,
    /// The theoretical arrival time, in ticks since the origin, while the
    /// word of [`Fast`] is [`SLOW`].
    tat: u128,
    /// The last generation published to [`Fast`], and its slot's contents.
    generation: u64,
    published: Option<Params>,
    /// Waiters with a booked time.
    queue: Waiters,
    /// The latest clock reading (nanoseconds since the origin) that any
    /// work under the lock was done at.
    latest: u64,
}

/// Booked waiters, in booking (and so time) order: the queue of a
/// `RateLimiter`, and of each key of a `KeyedRateLimiter` that has waiters.
/// Times are in ticks.
pub(super) struct Waiters {
    queue: VecDeque<Waiter>,
    /// Taken off every stored `at`: a give-back lowers the times of the
    /// waiters behind it, or, when fewer are ahead of it, raises the stored
    /// times of those ahead and this. So a give-back changes as many entries
    /// as removing the waiter from the queue moves, none at either end, and
    /// waiters timing out oldest first cost O(log n) each (finding them).
    lift: u128,
    next_id: u64,
}

struct Waiter {
    id: u64,
    /// When it is served, plus `lift`.
    at: u128,
    /// How far it moved `tat`: what it gives back if dropped early.
    size: u128,
    /// The time its sleep was made for: later than its time when a waiter
    /// ahead of it gave its cells back and it has not re-armed yet.
    armed: u128,
    waker: Option<Waker>,
}

/// What a queued waiter found when polled again.
pub(super) enum Polled {
    /// Its time has come: it has left the queue.
    Served(Wakes),
    /// It is served at `at`; `stale` is the waker it filed before.
    Waiting { at: u128, stale: Option<Waker> },
}

/// Wakers taken out under the lock, to be used once it is released (a
/// waker may call back into the limiter): the next waiter's, to re-arm,
/// and the one of the waiter that left, to drop.
#[must_use = "the next waiter waits for this wake"]
pub(super) struct Wakes {
    next: Option<Waker>,
    own: Option<Waker>,
}

impl Wakes {
    pub(super) const NONE: Self = Self {
        next: None,
        own: None,
    };

    /// Wakes the next waiter; call with no lock held. The next waiter is
    /// woken first: should the dropped waker panic, it has been.
    pub(super) fn finish(self) {
        let Self { next, own } = self;
        if let Some(next) = next {
            // Should this panic, `own` is still dropped while unwinding.
            next.wake();
        }
        drop(own);
    }
}

impl Waiters {
    pub(super) const fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            lift: 0,
            next_id: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn at(&self, waiter: &Waiter) -> u128 {
        waiter.at.saturating_sub(self.lift)
    }

    fn index(&self, id: u64) -> Option<usize> {
        self.queue
            .binary_search_by_key(&id, |waiter| waiter.id)
            .ok()
    }

    /// Queues a waiter served at `at`, whose booking moved `tat` by `size`;
    /// returns its id. `at` is no earlier than any queued waiter's.
    /// `waker` comes cloned: a waker's `clone` may panic, and the caller
    /// clones it before it changes anything.
    pub(super) fn push(&mut self, at: u128, size: u128, waker: Waker) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        // Times saturate at `u128::MAX` (a quota of `Duration::MAX` periods
        // and a huge burst), so the lift may not fit on top of one: then the
        // times are stored without it. That costs O(n) only for times
        // within the lift of the end of `u128`.
        let stored = match at.checked_add(self.lift) {
            Some(stored) => stored,
            None => {
                self.settle();
                at
            }
        };
        self.queue.push_back(Waiter {
            id,
            at: stored,
            size,
            armed: at,
            waker: Some(waker),
        });
        id
    }

    /// Waiter `id`, polled again at `now` (ticks), with `waker`. `None` if
    /// it is not queued.
    pub(super) fn poll(&mut self, id: u64, now: u128, waker: &Waker) -> Option<Polled> {
        let index = self.index(id)?;
        let at = self.at(&self.queue[index]);
        if at <= now {
            return Some(Polled::Served(self.remove(index, now, None)));
        }
        let waiter = &mut self.queue[index];
        waiter.armed = at;
        let stale = match &mut waiter.waker {
            Some(filed) if filed.will_wake(waker) => None,
            slot => slot.replace(waker.clone()),
        };
        Some(Polled::Waiting { at, stale })
    }

    /// Removes waiter `id`: served (`tat` is `None`), or dropped at `now`
    /// (ticks), when it gives its cells back to `tat` and to the waiters
    /// behind it if its time has not come.
    pub(super) fn leave(&mut self, id: u64, now: u128, tat: Option<&mut u128>) -> Wakes {
        match self.index(id) {
            Some(index) => self.remove(index, now, tat),
            None => Wakes::NONE,
        }
    }

    fn remove(&mut self, index: usize, now: u128, tat: Option<&mut u128>) -> Wakes {
        let Some(waiter) = self.queue.remove(index) else {
            return Wakes::NONE;
        };
        let at = self.at(&waiter);
        if let Some(tat) = tat.filter(|_| now < at) {
            // Exactly as if it had never booked: `tat` has been ahead of the
            // clock ever since it did, so every later booking only added to
            // it, and each moves back by this waiter's share.
            //
            // That needs `now` no earlier than any reading the state was
            // changed at since the booking. While the waiter is queued,
            // `tat` stays at least `at`, and a change made at a reading
            // past `tat` (a full bucket) spends the booking: that reading is
            // past `at`. Such changes are all made under the lock and noted
            // by the caller, who passes the latest, so a spent booking is
            // never given back; an older reading would give back cells
            // already spent, and allow that many more than the burst at
            // once. Taking the latest reading rather than a fresh one also
            // holds on a clock whose cores disagree a little.
            *tat = tat.saturating_sub(waiter.size);
            let size = waiter.size;
            let raise = index < self.queue.len() - index
                && self.lift.checked_add(size).is_some()
                && self
                    .queue
                    .range(..index)
                    .all(|ahead| ahead.at.checked_add(size).is_some());
            if raise {
                self.lift += size;
                for ahead in self.queue.range_mut(..index) {
                    ahead.at += size;
                }
            } else {
                for later in self.queue.range_mut(index..) {
                    later.at = later.at.saturating_sub(size).max(self.lift);
                }
            }
        }
        if self.queue.is_empty() {
            self.lift = 0;
        }
        // The next waiter re-arms now only if nobody ahead of it is still
        // waiting to be served; otherwise that one wakes it when served.
        let ahead_done = index == 0
            || self
                .queue
                .get(index - 1)
                .is_some_and(|ahead| self.at(ahead) <= now);
        let lift = self.lift;
        let next = self
            .queue
            .get_mut(index)
            .filter(|next| next.armed > next.at.saturating_sub(lift) && ahead_done);
        Wakes {
            next: next.and_then(|next| next.waker.take()),
            own: waiter.waker,
        }
    }

    /// Stores every time without the lift.
    fn settle(&mut self) {
        let lift = std::mem::take(&mut self.lift);
        for waiter in &mut self.queue {
            waiter.at = waiter.at.saturating_sub(lift);
        }
    }

    /// Moves every time and size from `old` to `new`'s ticks.
    pub(super) fn rescale(&mut self, old: &Gcra, new: &Gcra) {
        self.settle();
        for waiter in &mut self.queue {
            waiter.at = old.rescale(waiter.at, new, true);
            waiter.armed = old.rescale(waiter.armed, new, true);
            waiter.size = old.rescale(waiter.size, new, false);
        }
    }
}

/// The quota in ticks of `1 / count` nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gcra {
    /// Ticks per nanosecond: the count (divided by its greatest common
    /// divisor with the period in nanoseconds).
    per_nano: u128,
    /// Ticks between two cells: the period in nanoseconds (divided alike).
    interval: u128,
    /// Ticks a full bucket holds: burst × interval.
    tau: u128,
    burst: u32,
}

impl Gcra {
    pub(super) fn new(quota: Quota) -> Self {
        // In lowest terms, so that common quotas (10 per second, 600 per
        // minute) tick in whole nanoseconds and their numbers stay small.
        let (count, period) = (u128::from(quota.count()), quota.period().as_nanos());
        let common = gcd(count, period);
        let (per_nano, interval) = (count / common, period / common);
        Self {
            per_nano,
            interval,
            tau: interval.saturating_mul(u128::from(quota.burst_size())),
            burst: quota.burst_size(),
        }
    }

    #[inline]
    pub(super) fn burst(&self) -> u32 {
        self.burst
    }

    /// Ticks per nanosecond.
    #[inline]
    pub(super) fn per_nano(&self) -> u32 {
        // A divisor of a u32 count.
        self.per_nano as u32
    }

    /// The ticks `n` cells take.
    #[inline]
    pub(super) fn cells(&self, n: u32) -> u128 {
        u128::from(n) * self.interval
    }

    /// A clock reading, in ticks.
    #[inline]
    pub(super) fn ticks(&self, nanos: u64) -> u128 {
        u128::from(nanos) * self.per_nano
    }

    /// The first nanosecond at or after `ticks`.
    pub(super) fn nanos(&self, ticks: u128) -> u128 {
        ticks.div_ceil(self.per_nano)
    }

    /// What `n` cells (at most the burst) at `now` do to `tat`: `Ok(new
    /// tat)` if allowed now, `Err((earliest, new tat))` if first allowed at
    /// `earliest`, when they would move `tat` to the same place.
    #[inline]
    pub(super) fn test(&self, tat: u128, now: u128, n: u32) -> Result<u128, (u128, u128)> {
        // A request in the first nanosecond at or after `tat` is on time:
        // the clock cannot tell how late within that nanosecond it came, and
        // counting it late would lose up to a nanosecond per cell (at burst
        // 1, all the rate above one cell per nanosecond). Counting it at
        // `tat` never allows more than burst + rate × elapsed, since `tat`
        // still only grows by the cells taken.
        let start = if tat < now && now - tat < self.per_nano {
            tat
        } else {
            tat.max(now)
        };
        let new = start.saturating_add(self.cells(n));
        let earliest = new.saturating_sub(self.tau);
        if earliest <= now {
            Ok(new)
        } else {
            Err((earliest, new))
        }
    }

    /// Whether the bucket at `tat` answers as a new one does from `now` on.
    /// A check starts from `tat` while `tat` is behind by less than a
    /// nanosecond (the rest of that nanosecond's cells, at rates above one
    /// per nanosecond), and from its own reading otherwise, as a new bucket
    /// does; readings are whole nanoseconds, so after `now` the next is a
    /// nanosecond on.
    pub(super) fn is_idle(&self, tat: u128, now: u128) -> bool {
        tat == now || tat.saturating_add(self.per_nano) <= now
    }

    /// `ticks` of `self` in ticks of `to`, rounded up (a time) or down (an
    /// amount to give back), so that a change of quota never allows more.
    fn rescale(&self, ticks: u128, to: &Gcra, round_up: bool) -> u128 {
        if self.per_nano == to.per_nano {
            return ticks;
        }
        let (whole, part) = (ticks / self.per_nano, ticks % self.per_nano);
        // part < 2^32 and to.per_nano < 2^32: the product fits.
        let part = part * to.per_nano;
        let part = if round_up {
            part.div_ceil(self.per_nano)
        } else {
            part / self.per_nano
        };
        whole.saturating_mul(to.per_nano).saturating_add(part)
    }
}

/// A quota's numbers as words, for [`Words::test`]; `interval` and `tau`
/// clamped to `u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Words {
    pub(super) per_nano: u64,
    pub(super) interval: u64,
    pub(super) tau: u64,
    pub(super) burst: u32,
}

impl Words {
    /// [`Gcra::test`] on words: `n` cells (at most the burst) at `now`,
    /// given `tat`, both in ticks from the same base. `Ok(new tat)` if
    /// allowed, `Err(earliest)` if first allowed then, `None` when a value
    /// would exceed `limit` or reach [`CLAMPED`] (the caller then does it
    /// in `u128`). A clamped `interval` or `tau` is then larger than any
    /// value that fits, so the answer is still exact.
    #[inline]
    pub(super) fn test(&self, tat: u64, now: u64, n: u32, limit: u64) -> Option<Result<u64, u64>> {
        // A request in the nanosecond after `tat` counts as made at `tat`.
        let start = if tat.saturating_add(self.per_nano) > now {
            tat
        } else {
            now
        };
        let new = start.checked_add(u64::from(n).checked_mul(self.interval)?)?;
        // A clamped interval alone reaches `CLAMPED` (from a `start` of 0,
        // for one cell): taken as exact, it let a cell of 25 s through after
        // 4.6 s (from a review).
        if new > limit || new == CLAMPED {
            return None;
        }
        // Exact: `new` fits, and a clamped `tau` is larger than it either way.
        let earliest = new.saturating_sub(self.tau);
        Some(if earliest <= now {
            Ok(new)
        } else {
            Err(earliest)
        })
    }
}

/// What [`Gcra::words`] makes of an interval or tau past a word; no value
/// [`Words::test`] answers with reaches it.
const CLAMPED: u64 = u64::MAX;

impl Gcra {
    pub(super) fn words(&self) -> Words {
        Words {
            // A divisor of a u32 count.
            per_nano: self.per_nano as u64,
            interval: u64::try_from(self.interval).unwrap_or(CLAMPED),
            tau: u64::try_from(self.tau).unwrap_or(CLAMPED),
            burst: self.burst,
        }
    }
}

/// Euclid's greatest common divisor; `a` is not zero.
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What a first poll of an acquire found.
enum Booked {
    Now,
    Later(u128),
}

impl State {
    /// Takes `n` cells at `now` (ticks), or books them and queues a waiter.
    fn take_or_book(&mut self, now: u128, n: u32, waker: &Waker) -> (Booked, u64) {
        match self.gcra.test(self.tat, now, n) {
            Ok(tat) => {
                self.tat = tat;
                (Booked::Now, 0)
            }
            Err((at, tat)) => {
                // Cloned before anything changes: a waker's `clone` may
                // panic, and cells booked with no waiter would stay taken.
                let waker = waker.clone();
                let size = tat - self.tat;
                self.tat = tat;
                (Booked::Later(at), self.queue.push(at, size, waker))
            }
        }
    }

    fn set_quota(&mut self, quota: Quota) {
        let (old, new) = (self.gcra, Gcra::new(quota));
        self.tat = old.rescale(self.tat, &new, true);
        self.queue.rescale(&old, &new);
        self.quota = quota;
        self.gcra = new;
    }
}

impl RateLimiter<Auto> {
    /// A limiter for `quota` on [`Auto`]'s clock, starting with a full
    /// bucket.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(Quota::per_minute(60).burst(3));
    /// assert!(limiter.check_n(3).is_ok());
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::with_timer(quota, Auto)
    }
}

impl<T: Timer> RateLimiter<T> {
    /// A limiter for `quota` on `timer`'s clock (such as a
    /// [`ManualClock`](crate::rt::ManualClock) in tests), starting with a
    /// full bucket.
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
    /// let limiter = RateLimiter::with_timer(Quota::per_hour(1), clock.clone());
    /// assert!(limiter.check().is_ok());
    /// clock.advance(Duration::from_secs(3599));
    /// assert!(limiter.check().is_err());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(limiter.check().is_ok());
    /// # }
    /// ```
    pub fn with_timer(quota: Quota, timer: T) -> Self {
        let origin = Origin::new(timer.now());
        let mut state = State {
            quota,
            gcra: Gcra::new(quota),
            tat: 0,
            generation: 0,
            published: None,
            queue: Waiters::new(),
            latest: 0,
        };
        let fast = Fast {
            word: AtomicU64::new(SLOW),
            slot: Slot::default(),
        };
        fast.publish(&mut state, 0);
        Self {
            shared: Arc::new(Shared {
                timer,
                origin,
                fast,
                state: Mutex::new(state),
            }),
        }
    }

    /// Takes one cell if the limit allows it now.
    ///
    /// # Errors
    ///
    /// [`NotUntil`] when it does not, with the time at which it would.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(Quota::per_hour(2));
    /// assert!(limiter.check().is_ok());
    /// assert!(limiter.check().is_ok());
    /// let refused = limiter.check().unwrap_err();
    /// assert!(refused.wait_time().as_secs() > 1700); // half an hour, less the time this took
    /// ```
    // Inlined into the caller whole, with its clock reading: as a call (a
    // generic one, too large for the inliner's own choice), a refused
    // check cost about 19 ns here against governor's 11; inlined, 13 ns.
    #[inline(always)]
    pub fn check(&self) -> Result<(), NotUntil> {
        let shared = &*self.shared;
        let reading = shared.origin.reading(&shared.timer);
        match shared.fast.check(reading, 1) {
            Some(Ok(())) => Ok(()),
            Some(Err((earliest, per_nano))) => Err(NotUntil::new(
                shared.origin,
                reading.nanos(),
                earliest,
                per_nano,
            )),
            None => check_one_locked(&shared.fast, &shared.state, shared.origin, reading.nanos()),
        }
    }

    /// Takes `n` cells at once if the limit allows it now: all or none.
    /// `check_n(0)` always succeeds.
    ///
    /// # Errors
    ///
    /// [`RateLimited::NotUntil`] when the limit allows it later;
    /// [`RateLimited::InsufficientCapacity`] when `n` is above the burst, so
    /// that no wait would do.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimited, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(Quota::per_second(100).burst(10));
    /// assert!(limiter.check_n(6).is_ok());
    /// assert!(matches!(limiter.check_n(6), Err(RateLimited::NotUntil(_))));
    /// assert!(limiter.check_n(4).is_ok());
    /// assert_eq!(limiter.check_n(11), Err(RateLimited::InsufficientCapacity(10)));
    /// ```
    #[inline]
    pub fn check_n(&self, n: u32) -> Result<(), RateLimited> {
        if n == 0 {
            return Ok(());
        }
        let shared = &*self.shared;
        let reading = shared.origin.reading(&shared.timer);
        match shared.fast.check(reading, n) {
            Some(Ok(())) => Ok(()),
            Some(Err((earliest, per_nano))) => {
                Err(NotUntil::new(shared.origin, reading.nanos(), earliest, per_nano).into())
            }
            None => shared.locked(reading.nanos(), n),
        }
    }

    /// Waits for one cell: at once if the limit allows it, otherwise until
    /// this caller's turn, in FIFO order.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before its turn gives the cell back (see
    /// [`RateLimiter`]).
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(1000).burst(1));
    /// let start = std::time::Instant::now();
    /// for _ in 0..3 {
    ///     limiter.acquire().await;
    /// }
    /// assert!(start.elapsed() >= std::time::Duration::from_millis(2));
    /// # });
    /// ```
    pub fn acquire(&self) -> RateAcquire<'_, T> {
        RateAcquire {
            inner: self.acquire_n(1),
        }
    }

    /// Waits for `n` cells at once, in FIFO order with every other waiter:
    /// a large request is not overtaken by small ones behind it.
    ///
    /// # Errors
    ///
    /// The output is [`InsufficientCapacity`] at once when `n` is above the
    /// burst, since no wait would do.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before its turn gives the cells back (see
    /// [`RateLimiter`]).
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// # futures_lite::future::block_on(async {
    /// // 1 MB/s of bandwidth, in 64 KiB chunks at most.
    /// let bandwidth = RateLimiter::new(Quota::per_second(1_000_000).burst(65_536));
    /// bandwidth.acquire_n(4096).await.unwrap();
    /// assert!(bandwidth.acquire_n(100_000).await.is_err());
    /// # });
    /// ```
    pub fn acquire_n(&self, n: u32) -> RateAcquireN<'_, T> {
        RateAcquireN {
            limiter: self,
            n,
            turn: Turn::new(),
        }
    }

    /// Changes the quota while the limiter runs. What has been used is kept:
    /// the instant at which the bucket would be full again stays where it
    /// is, so a limiter booked half a second ahead is still booked half a
    /// second ahead, now at the new rate. Waiters already booked keep their
    /// times; later ones are booked at the new rate.
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
    /// let limiter = RateLimiter::with_timer(Quota::per_second(1), clock.clone());
    /// limiter.check().unwrap();
    /// // The server says we may go faster: 10 per second from now on.
    /// limiter.set_quota(Quota::per_second(10));
    /// // The cell just taken still counts: 1 s is booked, the burst is 1 s.
    /// assert_eq!(limiter.check().unwrap_err().wait_time(), Duration::from_millis(100));
    /// # }
    /// ```
    pub fn set_quota(&self, quota: Quota) {
        let nanos = self.shared.origin.read(&self.shared.timer);
        self.shared.freeze(nanos).set_quota(quota);
    }

    /// The current quota.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(Quota::per_second(3));
    /// limiter.set_quota(Quota::per_second(5));
    /// assert_eq!(limiter.quota(), Quota::per_second(5));
    /// ```
    pub fn quota(&self) -> Quota {
        lock(&self.shared.state).quota
    }

    /// How many [`acquire`](Self::acquire) calls are waiting for their turn.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// assert_eq!(RateLimiter::new(Quota::per_second(1)).waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        lock(&self.shared.state).queue.len()
    }

    /// The body of every acquire future's `poll`.
    pub(super) fn poll_turn(
        &self,
        n: u32,
        turn: Pin<&mut Turn<T::Sleep>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), InsufficientCapacity>> {
        let shared = &*self.shared;
        let mut turn = turn.project();
        let nanos = shared.origin.read(&shared.timer);
        let mut state = shared.freeze(nanos);
        let gcra = state.gcra;
        let now = gcra.ticks(nanos);
        let (at, stale) = match *turn.booking {
            None => {
                if n > gcra.burst {
                    return Poll::Ready(Err(InsufficientCapacity {
                        requested: n,
                        capacity: gcra.burst,
                    }));
                }
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                match state.take_or_book(now, n, cx.waker()) {
                    (Booked::Now, _) => return Poll::Ready(Ok(())),
                    (Booked::Later(at), id) => {
                        *turn.booking = Some(Booking { id });
                        (at, None)
                    }
                }
            }
            Some(Booking { id, .. }) => match state.queue.poll(id, now, cx.waker()) {
                Some(Polled::Served(wakes)) => {
                    drop(state);
                    *turn.booking = None;
                    turn.nap.set(Nap::Idle);
                    wakes.finish();
                    return Poll::Ready(Ok(()));
                }
                Some(Polled::Waiting { at, stale }) => (at, stale),
                None => unreachable!("a waiter stays queued until its future is served or dropped"),
            },
        };
        drop(state);
        drop(stale);
        let sleep = || shared.origin.sleep(&shared.timer, gcra.nanos(at));
        if Turn::poll_nap(turn.nap.as_mut(), at, sleep, cx).is_pending() {
            return Poll::Pending;
        }
        // The timer says the booked time has come.
        turn.nap.set(Nap::Idle);
        let Some(Booking { id, .. }) = turn.booking.take() else {
            unreachable!("booked above")
        };
        let nanos = shared.origin.read(&shared.timer);
        let mut state = shared.freeze(nanos);
        let now = state.gcra.ticks(nanos);
        let wakes = state.queue.leave(id, now, None);
        drop(state);
        wakes.finish();
        Poll::Ready(Ok(()))
    }

    /// Leaves the queue, for a future dropped while waiting.
    pub(super) fn leave(&self, turn: Pin<&mut Turn<T::Sleep>>) {
        let Some(Booking { id, .. }) = turn.project().booking.take() else {
            return;
        };
        let nanos = self.shared.origin.read(&self.shared.timer);
        let mut state = self.shared.freeze(nanos);
        // The latest reading anything under the lock was done at, not only
        // this one: see `Waiters::remove`.
        let now = state.gcra.ticks(state.latest);
        let State { queue, tat, .. } = &mut *state;
        let wakes = queue.leave(id, now, Some(tat));
        drop(state);
        wakes.finish();
    }
}

impl<T> Shared<T> {
    /// A check of `n` cells at `nanos` that [`Fast::check`] could not
    /// decide, under the lock.
    #[inline]
    fn locked(&self, nanos: u64, n: u32) -> Result<(), RateLimited> {
        check_locked(&self.fast, &self.state, self.origin, nanos, n)
    }
}

/// `check_n` for what [`Fast`] does not serve, under the lock: kept out of
/// line (and out of the timer's generics) so that the lock-free path inlines
/// small.
#[cold]
#[inline(never)]
fn check_locked(
    fast: &Fast,
    state: &Mutex<State>,
    origin: Origin,
    nanos: u64,
    n: u32,
) -> Result<(), RateLimited> {
    let mut state = freeze(fast, state, nanos);
    let gcra = state.gcra;
    if n > gcra.burst {
        return Err(RateLimited::InsufficientCapacity(gcra.burst));
    }
    match gcra.test(state.tat, gcra.ticks(nanos), n) {
        Ok(tat) => {
            state.tat = tat;
            Ok(())
        }
        Err((earliest, _)) => Err(NotUntil::new(origin, nanos, earliest, gcra.per_nano()).into()),
    }
}

/// `check` for what [`Fast`] does not serve: out of line, so that the
/// lock-free path needs no registers saved.
#[cold]
#[inline(never)]
fn check_one_locked(
    fast: &Fast,
    state: &Mutex<State>,
    origin: Origin,
    nanos: u64,
) -> Result<(), NotUntil> {
    match check_locked(fast, state, origin, nanos, 1) {
        Ok(()) => Ok(()),
        Err(RateLimited::NotUntil(not_until)) => Err(not_until),
        Err(RateLimited::InsufficientCapacity(_)) => unreachable!("every burst is at least 1"),
    }
}

impl<T> Clone for RateLimiter<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for RateLimiter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("RateLimiter")
            .field("quota", &state.quota)
            .field("waiters", &state.queue.len())
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RateLimiter::acquire`]: ready when the cell is taken.
    ///
    /// Its first poll takes the cell or books this caller's turn; it then
    /// sleeps on the limiter's timer until that turn.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateAcquire, RateLimiter};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(5));
    /// let turn: RateAcquire<'_> = limiter.acquire();
    /// turn.await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`RateAcquireN`]: dropped before its turn, it gives its cell back.
    #[must_use = "futures do nothing unless awaited"]
    pub struct RateAcquire<'a, T: Timer = Auto> {
        #[pin]
        inner: RateAcquireN<'a, T>,
    }
}

impl<T: Timer> Future for RateAcquire<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // One cell always fits a burst: the error cannot happen.
        self.project().inner.poll(cx).map(|_| ())
    }
}

impl<T: Timer> fmt::Debug for RateAcquire<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateAcquire")
            .field("turn", &self.inner.turn)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RateLimiter::acquire_n`]: ready when the cells are
    /// taken, or at once with [`InsufficientCapacity`] for more than the
    /// burst.
    ///
    /// Its first poll takes the cells or books this caller's turn; it then
    /// sleeps on the limiter's timer until that turn.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateAcquireN, RateLimiter};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = RateLimiter::new(Quota::per_second(5));
    /// let turn: RateAcquireN<'_> = limiter.acquire_n(2);
    /// turn.await.unwrap();
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropped before its turn, it gives its cells back and the waiters
    /// behind it move up. Dropped after its turn came but before it was
    /// polled, its cells count as used.
    #[must_use = "futures do nothing unless awaited"]
    pub struct RateAcquireN<'a, T: Timer = Auto> {
        limiter: &'a RateLimiter<T>,
        n: u32,
        #[pin]
        turn: Turn<T::Sleep>,
    }

    impl<'a, T: Timer> PinnedDrop for RateAcquireN<'a, T> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.limiter.leave(this.turn);
        }
    }
}

impl<T: Timer> Future for RateAcquireN<'_, T> {
    type Output = Result<(), InsufficientCapacity>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.limiter.poll_turn(*this.n, this.turn, cx)
    }
}

impl<T: Timer> fmt::Debug for RateAcquireN<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateAcquireN")
            .field("n", &self.n)
            .field("turn", &self.turn)
            .finish()
    }
}
