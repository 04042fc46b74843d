//! `KeyedRateLimiter`: one GCRA state per key.
//!
//! The map holds, per key, only its theoretical arrival time: a `u64` while
//! every value fits (decades, for most quotas), two `u64`s after the first
//! that does not. One lock is held for a hash lookup and a few integer
//! operations. A key absent from the map
//! has a full bucket, which is why [`KeyedRateLimiter::retain_recent`] may
//! drop every key whose bucket has refilled without changing any answer.
//!
//! Keys with waiters also have a queue, in a second map that holds only
//! them: the same queue as a `RateLimiter`'s, so a waiter dropped before
//! its turn gives its cells back to its key and to the waiters behind it.

use super::gcra::{Gcra, Polled, Waiters, Wakes, Words};
use super::{Booking, InsufficientCapacity, Nap, NotUntil, Origin, Quota, RateLimited, Turn, lock};
use crate::primitives::{Arc, Mutex};
use crate::rt::{Auto, Timer};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A rate limiter with one independent limit per key: per user, per client
/// address, per API token.
///
/// Each key gets the [`Quota`] on its own, with the exact arithmetic of
/// [`RateLimiter`](crate::RateLimiter). Clones share the same keys.
///
/// - **Memory**: bounded by live keys. A key's state is its key plus 8
///   bytes in a `HashMap` (16 for quotas whose tick count outgrows 64 bits); [`retain_recent`](Self::retain_recent) drops
///   every key whose bucket is full again (which changes no answer: an absent
///   key has a full bucket) and gives the map's memory back. Call it now and
///   then, for example from a periodic task.
/// - **Fairness**: the waiters for one key are served in the order they
///   first polled, each woken once by its own timer, exactly as the
///   waiters of a [`RateLimiter`](crate::RateLimiter): a waiter dropped
///   before its turn gives its cells back, and the waiters behind it move
///   up. Keys never wait for each other. A key with waiters also has a
///   queue (a second clone of the key, 64 bytes, and an entry per waiter)
///   while they wait.
/// - **Cost**: one clock read, one lock held for a hash lookup and a few
///   integer operations; `check` clones the key only when it is new (a
///   waiter holds a clone of its own, and its queue another). The map
///   hashes with secret per-limiter seeds and a multiply per word of key
///   (hashbrown's default scheme), several times cheaper than SipHash for
///   integer and address keys.
/// - **Clock's end**: as for [`RateLimiter`](crate::RateLimiter), time
///   stands still 584 years after the limiter was made; a key used after
///   that never refills, so `retain_recent` keeps it.
///
/// It plays the part of governor's keyed `RateLimiter` (`check_key`,
/// `retain_recent`, `len`) on any executor.
///
/// # Examples
///
/// ```
/// use portasync::{KeyedRateLimiter, Quota};
///
/// let per_client = KeyedRateLimiter::new(Quota::per_second(2));
/// assert!(per_client.check(&"10.0.0.1").is_ok());
/// assert!(per_client.check(&"10.0.0.1").is_ok());
/// assert!(per_client.check(&"10.0.0.1").is_err());
/// assert!(per_client.check(&"10.0.0.2").is_ok()); // another client, another limit
/// assert_eq!(per_client.len(), 2);
/// ```
///
/// # Cancel safety
///
/// A dropped [`KeyedAcquireN`] (or [`KeyedAcquire`]) whose turn has not
/// come gives its cells back to its key: the waiters behind it move up by
/// its share, as if it had never asked.
pub struct KeyedRateLimiter<K, T = Auto> {
    shared: Arc<Shared<K, T>>,
}

struct Shared<K, T> {
    timer: T,
    origin: Origin,
    /// The quota's numbers as words, for the common case of `check`.
    words: Words,
    state: Mutex<State<K>>,
}

struct State<K> {
    quota: Quota,
    gcra: Gcra,
    keys: Keys<K>,
    /// The queue of every key with waiters.
    waiting: HashMap<K, Waiters, KeyHash>,
    /// The latest clock reading (nanoseconds since the origin) that any
    /// work under the lock was done at: whether a dropped waiter's turn has
    /// passed is decided at it (see `Waiters::remove`).
    latest: u64,
}

/// Each key's theoretical arrival time, in the quota's ticks: in 8 bytes
/// while every value fits (a quota's ticks are nanoseconds, or a few per
/// nanosecond, so for decades at least with most quotas), in 16 from the
/// first one that does not, for good.
enum Keys<K> {
    Narrow(HashMap<K, u64, KeyHash>),
    Wide(HashMap<K, Tat, KeyHash>),
}

/// The maps' hasher: one folded multiply (a 64×64→128-bit product, its
/// halves xored) per word of key, with two secret words drawn for each
/// limiter from std's `RandomState` (so from the operating system). It is
/// the scheme of hashbrown's default hasher (foldhash): a nanosecond or two
/// for an integer key or an address, where SipHash takes about twenty.
/// Since the seeds are secret, keys chosen from outside (client addresses,
/// user names) cannot be picked ahead of time to collide; that is the
/// protection hashbrown's default gives (SipHash's keyed PRF also resists an
/// attacker who can time a great many lookups, at that price on every
/// check).
#[derive(Clone, Copy)]
struct KeyHash {
    seed: u64,
    multiplier: u64,
}

impl KeyHash {
    fn new() -> Self {
        use std::hash::BuildHasher as _;
        let random = std::collections::hash_map::RandomState::new();
        Self {
            seed: random.hash_one(0_u64),
            // Odd, so that no bit of a key is lost in the product.
            multiplier: random.hash_one(1_u64) | 1,
        }
    }
}

impl std::hash::BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            state: self.seed,
            multiplier: self.multiplier,
        }
    }
}

struct KeyHasher {
    state: u64,
    multiplier: u64,
}

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn write_u64(&mut self, word: u64) {
        let product = u128::from(self.state ^ word) * u128::from(self.multiplier);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }

    #[inline]
    fn write_u8(&mut self, word: u8) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_u16(&mut self, word: u16) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0; 8];
            buf.copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0; 8];
            buf[..rest.len()].copy_from_slice(rest);
            // The length too, so that a short tail and its zero padding differ.
            self.write_u64(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 60));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// One key's state in either map.
enum Slot<'a> {
    Narrow(&'a mut u64),
    Wide(&'a mut Tat),
}

impl Slot<'_> {
    fn get(&self) -> u128 {
        match self {
            Slot::Narrow(tat) => u128::from(**tat),
            Slot::Wide(tat) => tat.get(),
        }
    }

    /// Stores `tat`; false if it does not fit a narrow map.
    fn set(&mut self, ticks: u128) -> bool {
        match self {
            Slot::Narrow(tat) => match u64::try_from(ticks) {
                Ok(ticks) => {
                    **tat = ticks;
                    true
                }
                Err(_) => false,
            },
            Slot::Wide(tat) => {
                **tat = Tat::new(ticks);
                true
            }
        }
    }
}

impl<K> Keys<K> {
    fn len(&self) -> usize {
        match self {
            Keys::Narrow(map) => map.len(),
            Keys::Wide(map) => map.len(),
        }
    }
}

impl<K: Hash + Eq + Clone> Keys<K> {
    fn get(&mut self, key: &K) -> Option<Slot<'_>> {
        match self {
            Keys::Narrow(map) => map.get_mut(key).map(Slot::Narrow),
            Keys::Wide(map) => map.get_mut(key).map(Slot::Wide),
        }
    }

    /// Sets `key`'s state, adding the key if it is new.
    fn set(&mut self, key: &K, ticks: u128) {
        if let Some(mut slot) = self.get(key) {
            if slot.set(ticks) {
                return;
            }
        } else if let Keys::Narrow(map) = self {
            if let Ok(narrow) = u64::try_from(ticks) {
                map.insert(key.clone(), narrow);
                return;
            }
        }
        self.widen();
        if let Keys::Wide(map) = self {
            map.insert(key.clone(), Tat::new(ticks));
        }
    }

    /// Moves every key to 16-byte state: once, when a value first does not
    /// fit in 8 bytes.
    ///
    /// The keys are copied, not moved: should a key's `Hash` (or `Clone`)
    /// panic, every key keeps its state in the narrow map, where a moving
    /// drain would have lost them all.
    fn widen(&mut self) {
        if let Keys::Narrow(map) = self {
            let mut wide = HashMap::with_capacity_and_hasher(map.len(), *map.hasher());
            wide.extend(
                map.iter()
                    .map(|(key, tat)| (key.clone(), Tat::new(u128::from(*tat)))),
            );
            *self = Keys::Wide(wide);
        }
    }

    /// Keeps only the keys whose bucket is not full at `now`, and gives back
    /// spare memory once the map is mostly empty.
    fn retain_recent(&mut self, gcra: &Gcra, now: u128) {
        match self {
            Keys::Narrow(map) => {
                map.retain(|_, tat| !gcra.is_idle(u128::from(*tat), now));
                shrink(map);
            }
            Keys::Wide(map) => {
                map.retain(|_, tat| !gcra.is_idle(tat.get(), now));
                shrink(map);
            }
        }
    }
}

/// Gives back a map's spare memory once it is mostly empty.
fn shrink<K: Hash + Eq, V>(map: &mut HashMap<K, V, KeyHash>) {
    if map.len() < map.capacity() / 4 {
        map.shrink_to(map.len().saturating_mul(2));
    }
}

/// A theoretical arrival time, in the quota's ticks, as two `u64`s so that
/// an entry is not padded to a `u128`'s alignment.
#[derive(Clone, Copy)]
struct Tat {
    high: u64,
    low: u64,
}

impl Tat {
    fn new(ticks: u128) -> Self {
        Self {
            high: (ticks >> 64) as u64,
            low: ticks as u64,
        }
    }

    fn get(self) -> u128 {
        (u128::from(self.high) << 64) | u128::from(self.low)
    }
}

/// What a first poll of a keyed acquire found.
enum Outcome {
    Taken,
    /// To be served at `at`, once [`State::book`] has moved the key's
    /// state to `end`.
    Booked {
        at: u128,
        end: u128,
    },
}

impl<K: Hash + Eq + Clone> State<K> {
    /// Takes `n` cells (at most the burst) for `key` at `now`, or, if
    /// `book`, says when they could be booked for; otherwise the earliest
    /// time they would be allowed.
    fn take(&mut self, key: &K, now: u128, n: u32, book: bool) -> Result<Outcome, u128> {
        let gcra = self.gcra;
        let Some(mut slot) = self.keys.get(key) else {
            // A key we do not hold has a full bucket.
            let tat = gcra.test(0, now, n).unwrap_or_else(|(_, tat)| tat);
            self.keys.set(key, tat);
            return Ok(Outcome::Taken);
        };
        let (outcome, tat) = match gcra.test(slot.get(), now, n) {
            Ok(tat) => (Outcome::Taken, tat),
            Err((at, end)) if book => return Ok(Outcome::Booked { at, end }),
            Err((earliest, _)) => return Err(earliest),
        };
        if !slot.set(tat) {
            self.keys.set(key, tat);
        }
        Ok(outcome)
    }

    /// Moves `key`'s state to `end` and queues a waiter served at `at`;
    /// returns its id.
    fn book(&mut self, key: &K, at: u128, end: u128, waker: &Waker) -> u64 {
        // Cloned before anything changes: a key's `Clone` may panic, and so
        // may a waker's.
        let owned = (!self.waiting.contains_key(key)).then(|| key.clone());
        let waker = waker.clone();
        let size = end - self.keys.get(key).map_or(0, |slot| slot.get());
        self.keys.set(key, end);
        match owned {
            Some(owned) => {
                let mut queue = Waiters::new();
                let id = queue.push(at, size, waker);
                self.waiting.insert(owned, queue);
                id
            }
            None => match self.waiting.get_mut(key) {
                Some(queue) => queue.push(at, size, waker),
                None => unreachable!("the key's queue was found above"),
            },
        }
    }

    /// Removes waiter `id` of `key`: served, or dropped at `now` (ticks),
    /// when it gives its cells back if its time has not come.
    fn leave(&mut self, key: &K, id: u64, now: u128, served: bool) -> Wakes {
        let Some(queue) = self.waiting.get_mut(key) else {
            return Wakes::NONE;
        };
        let wakes = match self.keys.get(key).filter(|_| !served) {
            Some(mut slot) => {
                let mut tat = slot.get();
                let wakes = queue.leave(id, now, Some(&mut tat));
                // Never more than a value that fit: it fits.
                let fits = slot.set(tat);
                debug_assert!(fits, "a give-back only lowers the state");
                wakes
            }
            // Served, or dropped with its key gone: a key's state goes
            // only once its bucket is full, when every booking has passed.
            None => queue.leave(id, now, None),
        };
        if queue.is_empty() {
            self.waiting.remove(key);
        }
        wakes
    }
}

impl<K> KeyedRateLimiter<K, Auto>
where
    K: Hash + Eq + Clone,
{
    /// A keyed limiter giving each key `quota`, on [`Auto`]'s clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// let per_user: KeyedRateLimiter<u64> = KeyedRateLimiter::new(Quota::per_minute(100));
    /// assert!(per_user.is_empty());
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::with_timer(quota, Auto)
    }
}

impl<K, T> KeyedRateLimiter<K, T>
where
    K: Hash + Eq + Clone,
    T: Timer,
{
    /// A keyed limiter giving each key `quota`, on `timer`'s clock.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use portasync::rt::ManualClock;
    /// use portasync::{KeyedRateLimiter, Quota};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let limiter = KeyedRateLimiter::with_timer(Quota::per_second(1), clock.clone());
    /// limiter.check(&'a').unwrap();
    /// assert!(limiter.check(&'a').is_err());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(limiter.check(&'a').is_ok());
    /// # }
    /// ```
    pub fn with_timer(quota: Quota, timer: T) -> Self {
        let origin = Origin::new(timer.now());
        let state = State {
            quota,
            gcra: Gcra::new(quota),
            keys: Keys::Narrow(HashMap::with_hasher(KeyHash::new())),
            waiting: HashMap::with_hasher(KeyHash::new()),
            latest: 0,
        };
        Self {
            shared: Arc::new(Shared {
                timer,
                origin,
                words: state.gcra.words(),
                state: Mutex::new(state),
            }),
        }
    }

    /// Takes one cell for `key` if its limit allows it now.
    ///
    /// # Errors
    ///
    /// [`NotUntil`] when it does not, with the time at which it would.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::new(Quota::per_hour(1));
    /// assert!(limiter.check(&"alice").is_ok());
    /// assert!(limiter.check(&"alice").is_err());
    /// assert!(limiter.check(&"bob").is_ok());
    /// ```
    pub fn check(&self, key: &K) -> Result<(), NotUntil> {
        self.check_n(key, 1).map_err(|err| match err {
            RateLimited::NotUntil(not_until) => not_until,
            RateLimited::InsufficientCapacity(_) => unreachable!("every burst is at least 1"),
        })
    }

    /// Takes `n` cells for `key` at once if its limit allows it now: all or
    /// none. `check_n(key, 0)` always succeeds.
    ///
    /// # Errors
    ///
    /// [`RateLimited::NotUntil`] when the limit allows it later;
    /// [`RateLimited::InsufficientCapacity`] when `n` is above the burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota, RateLimited};
    ///
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(10));
    /// assert!(limiter.check_n(&1, 10).is_ok());
    /// assert!(matches!(limiter.check_n(&1, 1), Err(RateLimited::NotUntil(_))));
    /// assert_eq!(limiter.check_n(&2, 11), Err(RateLimited::InsufficientCapacity(10)));
    /// ```
    pub fn check_n(&self, key: &K, n: u32) -> Result<(), RateLimited> {
        let shared = &*self.shared;
        let words = shared.words;
        if n > words.burst {
            return Err(RateLimited::InsufficientCapacity(words.burst));
        }
        if n == 0 {
            return Ok(());
        }
        let nanos = shared.origin.read(&shared.timer);
        let mut state = lock(&shared.state);
        state.latest = state.latest.max(nanos);
        // The common case in one word: a state that fits, for a key we hold
        // or a new one (a full bucket: always allowed, as `n` fits the burst).
        if let (Keys::Narrow(map), Some(now_ticks)) =
            (&mut state.keys, nanos.checked_mul(words.per_nano))
        {
            match map.get_mut(key) {
                Some(tat) => match words.test(*tat, now_ticks, n, u64::MAX) {
                    Some(Ok(new)) => {
                        *tat = new;
                        return Ok(());
                    }
                    Some(Err(earliest)) => {
                        drop(state);
                        let earliest = u128::from(earliest);
                        return Err(NotUntil::new(
                            shared.origin,
                            nanos,
                            earliest,
                            words.per_nano as u32,
                        )
                        .into());
                    }
                    None => {}
                },
                None => {
                    if let Some(Ok(new)) = words.test(0, now_ticks, n, u64::MAX) {
                        map.insert(key.clone(), new);
                        return Ok(());
                    }
                }
            }
        }
        let gcra = state.gcra;
        match state.take(key, gcra.ticks(nanos), n, false) {
            Ok(_) => Ok(()),
            Err(earliest) => {
                Err(NotUntil::new(shared.origin, nanos, earliest, gcra.per_nano()).into())
            }
        }
    }

    /// Waits for one cell for `key`: at once if its limit allows it,
    /// otherwise until this caller's turn, in FIFO order among the waiters
    /// for the same key.
    ///
    /// # Cancel safety
    ///
    /// See [`KeyedAcquire`].
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(1000).burst(1));
    /// limiter.acquire(&"feed-a").await;
    /// limiter.acquire(&"feed-a").await; // about 1 ms later
    /// limiter.acquire(&"feed-b").await; // at once
    /// # });
    /// ```
    pub fn acquire(&self, key: &K) -> KeyedAcquire<'_, K, T> {
        KeyedAcquire {
            inner: self.acquire_n(key, 1),
        }
    }

    /// Waits for `n` cells at once for `key`.
    ///
    /// # Errors
    ///
    /// The output is [`InsufficientCapacity`] at once when `n` is above the
    /// burst.
    ///
    /// # Cancel safety
    ///
    /// See [`KeyedAcquireN`].
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(100));
    /// limiter.acquire_n(&7, 50).await.unwrap();
    /// assert!(limiter.acquire_n(&7, 101).await.is_err());
    /// # });
    /// ```
    pub fn acquire_n(&self, key: &K, n: u32) -> KeyedAcquireN<'_, K, T> {
        KeyedAcquireN {
            limiter: self,
            key: key.clone(),
            n,
            turn: Turn::new(),
        }
    }

    /// How many keys the limiter holds state for. Keys whose bucket has
    /// refilled count until [`retain_recent`](Self::retain_recent) drops
    /// them.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(1));
    /// limiter.check(&1).unwrap();
    /// limiter.check(&2).unwrap();
    /// assert_eq!(limiter.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.shared.state).keys.len()
    }

    /// Whether the limiter holds no keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// assert!(KeyedRateLimiter::<u32>::new(Quota::per_second(1)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key whose bucket is full again, and gives back the map's
    /// spare memory when it has shrunk well below its capacity. No answer
    /// changes: an absent key has a full bucket. (At rates above one per
    /// nanosecond, a bucket that filled up part-way through the last
    /// nanosecond still holds the rest of that nanosecond's cells, so it
    /// stays until the next.) Keys with waiters whose turn has not come
    /// stay.
    ///
    /// Takes the lock for one pass over the map: O(keys).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "test-util")] {
    /// use portasync::rt::ManualClock;
    /// use portasync::{KeyedRateLimiter, Quota};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let limiter = KeyedRateLimiter::with_timer(Quota::per_second(10), clock.clone());
    /// for client in 0..1000 {
    ///     limiter.check(&client).unwrap();
    /// }
    /// clock.advance(Duration::from_millis(100)); // every bucket has refilled
    /// limiter.retain_recent();
    /// assert!(limiter.is_empty());
    /// # }
    /// ```
    pub fn retain_recent(&self) {
        let nanos = self.shared.origin.read(&self.shared.timer);
        let mut state = lock(&self.shared.state);
        state.latest = state.latest.max(nanos);
        let gcra = state.gcra;
        let now = gcra.ticks(nanos);
        state.keys.retain_recent(&gcra, now);
        shrink(&mut state.waiting);
    }

    /// The quota every key gets.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::<String>::new(Quota::per_second(3));
    /// assert_eq!(limiter.quota(), Quota::per_second(3));
    /// ```
    pub fn quota(&self) -> Quota {
        lock(&self.shared.state).quota
    }

    fn poll_turn(
        &self,
        key: &K,
        n: u32,
        turn: Pin<&mut Turn<T::Sleep>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), InsufficientCapacity>> {
        let shared = &*self.shared;
        let mut turn = turn.project();
        let nanos = shared.origin.read(&shared.timer);
        let mut state = lock(&shared.state);
        state.latest = state.latest.max(nanos);
        let gcra = state.gcra;
        let now = gcra.ticks(nanos);
        let (at, stale) = match *turn.booking {
            None => {
                if n > gcra.burst() {
                    let capacity = gcra.burst();
                    return Poll::Ready(Err(InsufficientCapacity {
                        requested: n,
                        capacity,
                    }));
                }
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                match state.take(key, now, n, true) {
                    Ok(Outcome::Booked { at, end }) => {
                        let id = state.book(key, at, end, cx.waker());
                        *turn.booking = Some(Booking { id });
                        (at, None)
                    }
                    Ok(Outcome::Taken) => return Poll::Ready(Ok(())),
                    Err(_) => unreachable!("a booking is always possible"),
                }
            }
            Some(Booking { id, .. }) => {
                let polled = match state.waiting.get_mut(key) {
                    Some(queue) => queue.poll(id, now, cx.waker()),
                    None => None,
                };
                match polled {
                    Some(Polled::Served(wakes)) => {
                        *turn.booking = None;
                        turn.nap.set(Nap::Idle);
                        if state.waiting.get(key).is_some_and(Waiters::is_empty) {
                            state.waiting.remove(key);
                        }
                        drop(state);
                        wakes.finish();
                        return Poll::Ready(Ok(()));
                    }
                    Some(Polled::Waiting { at, stale }) => (at, stale),
                    None => {
                        unreachable!("a waiter stays queued until its future is served or dropped")
                    }
                }
            }
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
        let mut state = lock(&shared.state);
        state.latest = state.latest.max(nanos);
        let now = state.gcra.ticks(nanos);
        let wakes = state.leave(key, id, now, true);
        drop(state);
        wakes.finish();
        Poll::Ready(Ok(()))
    }

    /// Leaves `key`'s queue, for a future dropped while waiting.
    fn leave(&self, key: &K, turn: Pin<&mut Turn<T::Sleep>>) {
        let Some(Booking { id, .. }) = turn.project().booking.take() else {
            return;
        };
        let nanos = self.shared.origin.read(&self.shared.timer);
        let mut state = lock(&self.shared.state);
        state.latest = state.latest.max(nanos);
        // The latest reading anything under the lock was done at, not only
        // this one: see `Waiters::remove`.
        let now = state.gcra.ticks(state.latest);
        let wakes = state.leave(key, id, now, false);
        drop(state);
        wakes.finish();
    }
}

impl<K, T> Clone for KeyedRateLimiter<K, T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K, T> fmt::Debug for KeyedRateLimiter<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &state.quota)
            .field("keys", &state.keys.len())
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`KeyedRateLimiter::acquire`]: ready when the cell is
    /// taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedAcquire, KeyedRateLimiter, Quota};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(5));
    /// let turn: KeyedAcquire<'_, &str> = limiter.acquire(&"key");
    /// turn.await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`KeyedAcquireN`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct KeyedAcquire<'a, K, T: Timer = Auto>
    where
        K: Hash,
        K: Eq,
        K: Clone,
    {
        #[pin]
        inner: KeyedAcquireN<'a, K, T>,
    }
}

impl<K, T> Future for KeyedAcquire<'_, K, T>
where
    K: Hash + Eq + Clone,
    T: Timer,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // One cell always fits a burst: the error cannot happen.
        self.project().inner.poll(cx).map(|_| ())
    }
}

impl<K, T> fmt::Debug for KeyedAcquire<'_, K, T>
where
    K: Hash + Eq + Clone,
    T: Timer,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedAcquire")
            .field("turn", &self.inner.turn)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`KeyedRateLimiter::acquire_n`]: ready when the cells
    /// are taken, or at once with [`InsufficientCapacity`] for more than the
    /// burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{KeyedAcquireN, KeyedRateLimiter, Quota};
    ///
    /// # futures_lite::future::block_on(async {
    /// let limiter = KeyedRateLimiter::new(Quota::per_second(5));
    /// let turn: KeyedAcquireN<'_, &str> = limiter.acquire_n(&"key", 2);
    /// turn.await.unwrap();
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropped before its turn, it gives its cells back to its key, and
    /// the waiters behind it move up by its share, exactly as with
    /// [`RateLimiter`](crate::RateLimiter). Dropped after its turn came,
    /// its cells count as used.
    #[must_use = "futures do nothing unless awaited"]
    pub struct KeyedAcquireN<'a, K, T: Timer = Auto>
    where
        K: Hash,
        K: Eq,
        K: Clone,
    {
        limiter: &'a KeyedRateLimiter<K, T>,
        key: K,
        n: u32,
        #[pin]
        turn: Turn<T::Sleep>,
    }

    impl<'a, K, T: Timer> PinnedDrop for KeyedAcquireN<'a, K, T>
    where
        K: Hash,
        K: Eq,
        K: Clone,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.limiter.leave(this.key, this.turn);
        }
    }
}

impl<K, T> Future for KeyedAcquireN<'_, K, T>
where
    K: Hash + Eq + Clone,
    T: Timer,
{
    type Output = Result<(), InsufficientCapacity>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.limiter.poll_turn(this.key, *this.n, this.turn, cx)
    }
}

impl<K, T> fmt::Debug for KeyedAcquireN<'_, K, T>
where
    K: Hash + Eq + Clone,
    T: Timer,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedAcquireN")
            .field("n", &self.n)
            .field("turn", &self.turn)
            .finish()
    }
}
