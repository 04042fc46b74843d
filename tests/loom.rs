//! loom models of the lock-free paths: the semaphore's fast paths racing its
//! locked slow paths (acquire, release, cancel, close, resize), the cancel
//! token's cancel racing waiters and children, the rate limiter's
//! lock-free check racing another check and a waiter's give-back, and the
//! wakers of the in-place combinators and of a scope firing from other
//! threads; on two or three
//! threads with bounded preemptions. loom explores every interleaving within
//! the bound and fails on a lost wake-up (as a deadlock) or a broken count.
//!
//! Run with:
//! `RUSTFLAGS="--cfg portasync_loom" cargo test --release --test loom --no-default-features`
#![cfg(portasync_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use portasync::Semaphore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// Two threads take turns on one permit: never both inside, and it ends
/// free.
#[test]
fn mutual_exclusion() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (semaphore, inside) = (semaphore.clone(), inside.clone());
                thread::spawn(move || {
                    let permit = loom::future::block_on(semaphore.acquire()).unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(semaphore.available_permits(), 1);
        assert_eq!(semaphore.waiters(), 0);
    });
}

/// A release on the lock-free path racing a waiter joining the queue: the
/// waiter is never left asleep with a free permit.
#[test]
fn release_races_enqueue() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire_owned().unwrap();
        let waiter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let permit = loom::future::block_on(semaphore.acquire_many(1)).unwrap();
                assert_eq!(permit.num_permits(), 1);
            })
        };
        drop(held);
        waiter.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
    });
}

/// A head waiter that collected part of its permits is cancelled while a
/// release is under way: its permits reach the next waiter, who wakes.
#[test]
fn cancel_of_a_partly_served_waiter_races_release() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let mut held = semaphore.try_acquire_many_owned(2).unwrap();
        let first_half = held.split(1).unwrap();

        let canceller = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let mut big = semaphore.acquire_many(2);
                if let Poll::Ready(permit) = poll_once(&mut big) {
                    drop(permit);
                }
                thread::yield_now();
                drop(big);
            })
        };
        let small = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                drop(loom::future::block_on(semaphore.acquire()).unwrap());
            })
        };
        drop(first_half);
        drop(held);
        canceller.join().unwrap();
        small.join().unwrap();
        assert_eq!(semaphore.available_permits(), 2);
        assert_eq!(semaphore.waiters(), 0);
    });
}

/// A waiter granted and not yet polled keeps its slot's outcome cell; the
/// next waiter queues (reusing a slot if its cell is free) while the granted
/// one looks at its cell on another thread: the grant is seen, the permit
/// reaches the next waiter, and it all ends free.
#[test]
fn a_slot_is_reused_while_its_last_waiter_looks() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire_owned().unwrap();
        let mut granted = semaphore.acquire_owned();
        assert!(poll_once(&mut granted).is_pending());
        let mut cancelled = semaphore.acquire_owned();
        assert!(poll_once(&mut cancelled).is_pending());
        drop(held);
        // Two vacant slots now: the granted waiter's first, its cell still
        // held, then the cancelled one's, free.
        drop(cancelled);
        let looker = thread::spawn(move || {
            let Poll::Ready(Ok(permit)) = poll_once(&mut granted) else {
                panic!("the grant was lost")
            };
            drop(permit);
        });
        drop(loom::future::block_on(semaphore.acquire()).unwrap());
        looker.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
        assert_eq!(semaphore.waiters(), 0);
    });
}

/// A head waiter that collected part of its permits is cancelled while the
/// semaphore closes: every permit comes back once, and nobody waits.
#[test]
fn cancel_of_a_partly_served_waiter_races_close() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let mut held = semaphore.try_acquire_many_owned(2).unwrap();
        let first_half = held.split(1).unwrap();
        let mut big = semaphore.acquire_many_owned(2);
        assert!(poll_once(&mut big).is_pending());
        drop(first_half); // collected by `big`
        let canceller = thread::spawn(move || drop(big));
        let releaser = thread::spawn(move || drop(held));
        semaphore.close();
        canceller.join().unwrap();
        releaser.join().unwrap();
        assert_eq!(semaphore.available_permits(), 2);
        assert_eq!(semaphore.waiters(), 0);
    });
}

/// `close` racing a waiter: the waiter always finishes (with an error if it
/// was not granted first) and the permits all come back.
#[test]
fn close_races_acquire() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire_owned().unwrap();
        let waiter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let _ = loom::future::block_on(semaphore.acquire());
            })
        };
        let releaser = thread::spawn(move || drop(held));
        semaphore.close();
        waiter.join().unwrap();
        releaser.join().unwrap();
        assert!(semaphore.is_closed());
        assert_eq!(semaphore.available_permits(), 1);
        assert!(semaphore.try_acquire().is_err());
    });
}

/// A shrink racing returns on the lock-free path: the count ends exactly at
/// the new capacity.
#[test]
fn shrink_races_release() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let a = semaphore.try_acquire_owned().unwrap();
        let b = semaphore.try_acquire_owned().unwrap();
        let releaser = thread::spawn(move || {
            drop(a);
            drop(b);
        });
        semaphore.set_capacity(1);
        releaser.join().unwrap();
        assert_eq!(semaphore.capacity(), 1);
        assert_eq!(semaphore.available_permits(), 1);
        // No withholding left: the fast path is back.
        drop(semaphore.try_acquire().unwrap());
    });
}

/// A grant racing the waiter's own re-poll with a new waker: whichever
/// wins, the waiter ends with its permit.
#[test]
fn grant_races_a_waker_change() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire_owned().unwrap();
        let waiter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let mut acquire = semaphore.acquire();
                if poll_once(&mut acquire).is_ready() {
                    return;
                }
                // Now wait with a different (real) waker.
                assert!(loom::future::block_on(acquire).is_ok());
            })
        };
        drop(held);
        waiter.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
    });
}

/// Forgetting, adding and acquiring at once keep the capacity and the free
/// count in step.
#[test]
fn forget_and_add_race_acquire() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let acquirer = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let permit = loom::future::block_on(semaphore.acquire()).unwrap();
                drop(permit);
            })
        };
        let forgot = semaphore.forget_permits(1);
        semaphore.add_permits(forgot);
        acquirer.join().unwrap();
        assert_eq!(semaphore.capacity(), 2);
        assert_eq!(semaphore.available_permits(), 2);
    });
}

// CancelToken: cancel racing waiters, new children and dropped children.

/// A root, its child and its grandchild.
fn three_generations() -> [portasync::CancelToken; 3] {
    let root = portasync::CancelToken::new();
    let child = root.child();
    let grandchild = child.child();
    [root, child, grandchild]
}

/// Runs `there` on a thread of its own while this one runs `here`, then
/// waits for `there`.
fn alongside(there: impl FnOnce() + Send + 'static, here: impl FnOnce()) {
    let thread = thread::spawn(there);
    here();
    thread.join().unwrap();
}

/// Waits on `token` until it is cancelled.
fn wait(token: &portasync::CancelToken) {
    loom::future::block_on(token.cancelled());
}

/// A waiter on another thread always sees a cancel, whatever the interleaving.
#[test]
fn cancel_vs_wait() {
    loom::model(|| {
        let token = portasync::CancelToken::new();
        let waiting = token.clone();
        alongside(move || wait(&waiting), || token.cancel());
    });
}

/// A child made concurrently with its parent's cancel is cancelled too.
#[test]
fn cancel_vs_child() {
    loom::model(|| {
        let token = portasync::CancelToken::new();
        let parent = token.clone();
        alongside(move || wait(&parent.child()), || token.cancel());
    });
}

/// A child dropped while its parent is being cancelled: no deadlock, no
/// lost cancel for the child's other handle.
#[test]
fn child_drop_vs_cancel() {
    loom::model(|| {
        let token = portasync::CancelToken::new();
        let child = token.child();
        let kept = child.clone();
        alongside(move || drop(child), || token.cancel());
        assert!(kept.is_cancelled());
    });
}

/// Cancels generation `here` of three on this thread while generation
/// `there` is cancelled on another: when this thread's `cancel` returns,
/// the grandchild reads as cancelled.
fn cancel_at_two_levels(here: usize, there: usize) {
    let tokens = three_generations();
    let other = tokens[there].clone();
    alongside(
        move || other.cancel(),
        || {
            tokens[here].cancel();
            assert!(tokens[2].is_cancelled());
        },
    );
}

/// A cancel racing another cancel lower in the tree: when the root's
/// `cancel` returns, the grandchild reads as cancelled, whichever of the
/// two got to the middle first.
#[test]
fn cancel_vs_cancel_below() {
    loom::model(|| cancel_at_two_levels(0, 1));
}

/// A cancel of a token that a cancel from above has already reached returns
/// only once the token's children read as cancelled too (it returned at
/// once, leaving them to the other cancel; from a review).
#[test]
fn cancel_below_a_cancel_in_progress() {
    loom::model(|| cancel_at_two_levels(1, 0));
}

/// A grandchild made while a cancel from above walks the tree, perhaps
/// after it took the middle: it is cancelled too (the walk comes back to a
/// node for children added while it waited).
#[test]
fn child_made_below_a_cancel_in_progress() {
    loom::model(|| {
        let root = portasync::CancelToken::new();
        let child = root.child();
        alongside(move || root.cancel(), || wait(&child.child()));
    });
}

/// Flags are set children first: a token that reads as cancelled has its
/// whole subtree cancelled.
#[test]
fn a_cancelled_token_has_its_subtree_cancelled() {
    loom::model(|| {
        let [root, child, grandchild] = three_generations();
        alongside(
            move || root.cancel(),
            || assert!(!child.is_cancelled() || grandchild.is_cancelled()),
        );
    });
}

/// Two tokens of a chain dropped at once, each handing its children up to
/// its parent: the last one still hangs from the root, whose cancel reaches
/// it.
#[test]
fn chain_drop_vs_chain_drop() {
    loom::model(|| {
        let root = portasync::CancelToken::new();
        let upper = root.child();
        let lower = upper.child();
        let last = lower.child();
        alongside(move || drop(upper), || drop(lower));
        root.cancel();
        assert!(last.is_cancelled());
    });
}

/// A token dropped while its parent is cancelled and its child waits: the
/// child is cancelled and its waiter woken, whichever went first.
#[test]
fn chain_drop_vs_cancel() {
    loom::model(|| {
        let [root, middle, last] = three_generations();
        let waiting = last.clone();
        let waiter = thread::spawn(move || wait(&waiting));
        alongside(move || drop(middle), || root.cancel());
        waiter.join().unwrap();
        assert!(last.is_cancelled());
    });
}

/// The middle of three dropped while the root is cancelled: the grandchild's
/// waiter is woken either way (the middle hands it up to the root, or the
/// cancel reaches it through the middle).
#[test]
fn middle_drop_vs_cancel() {
    loom::model(|| {
        let [root, child, grandchild] = three_generations();
        let waiter = move || {
            drop(child);
            wait(&grandchild);
        };
        alongside(waiter, || root.cancel());
    });
}

/// A clock the model moves by hand: nanoseconds past a fixed instant, in a
/// loom atomic, so that reading and moving it are interleaved too. Its
/// sleeps never end (the models only book turns, never wait them out).
#[derive(Clone)]
struct Hand {
    base: std::time::Instant,
    nanos: Arc<loom::sync::atomic::AtomicU64>,
}

impl Hand {
    fn new() -> Self {
        Self {
            base: std::time::Instant::now(),
            nanos: Arc::new(loom::sync::atomic::AtomicU64::new(0)),
        }
    }

    fn set(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::SeqCst);
    }
}

impl portasync::rt::Timer for Hand {
    type Sleep = std::future::Pending<()>;

    fn now(&self) -> std::time::Instant {
        self.base + std::time::Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Self::Sleep {
        std::future::pending()
    }
}

const MS: u64 = 1_000_000;

/// A limiter with a burst of one, 1,000 per second, and a thread that
/// checks it once (its join gives whether it got the cell).
fn burst_of_one_and_a_checker() -> (Arc<portasync::RateLimiter<Hand>>, thread::JoinHandle<bool>) {
    let limiter = Arc::new(portasync::RateLimiter::with_timer(
        portasync::Quota::per_second(1000).burst(1),
        Hand::new(),
    ));
    let other = {
        let limiter = limiter.clone();
        thread::spawn(move || limiter.check().is_ok())
    };
    (limiter, other)
}

/// Two lock-free checks at the same instant on a burst of one: exactly one
/// gets the cell, and a third, after both, gets nothing.
#[test]
fn rate_checks_race_for_the_last_cell() {
    model(|| {
        let (limiter, other) = burst_of_one_and_a_checker();
        let mine = limiter.check().is_ok();
        let theirs = other.join().unwrap();
        assert!(mine != theirs, "both or neither: {mine} {theirs}");
        assert!(limiter.check().is_err());
    });
}

/// A lock-free check races a quota change, which rewrites the parameters
/// the check reads: the check uses the old quota or the new one, never a
/// mix, and the state carries over. One cell was free under both quotas,
/// and three are under the new one, in all.
#[test]
fn rate_check_races_a_quota_change() {
    model(|| {
        let (limiter, other) = burst_of_one_and_a_checker();
        limiter.set_quota(portasync::Quota::per_second(1000).burst(3));
        assert!(other.join().unwrap(), "a cell was free under either quota");
        let mine = (0..3).filter(|_| limiter.check().is_ok()).count();
        assert_eq!(mine, 2, "three cells in all under a burst of three");
    });
}

/// What a limiter on `from` does, one step at a time: a check at `reading`
/// before or after the clock moves to 5 ms and the quota changes to `to`,
/// then a check at 5 ms. Gives whether the first check got its cell, and
/// the second's outcome (its wait when refused).
fn in_turn(
    from: portasync::Quota,
    to: portasync::Quota,
    reading: u64,
    check_first: bool,
) -> (bool, Result<(), std::time::Duration>) {
    let clock = Hand::new();
    let limiter = portasync::RateLimiter::with_timer(from, clock.clone());
    let mut first = false;
    if check_first {
        clock.set(reading);
        first = limiter.check().is_ok();
    }
    clock.set(5 * MS);
    limiter.set_quota(to);
    if !check_first {
        clock.set(reading);
        first = limiter.check().is_ok();
    }
    clock.set(5 * MS);
    (first, limiter.check().map_err(|e| e.wait_time()))
}

/// A check races a quota change that also changes the ticks per nanosecond
/// (1,000 per second is one tick per nanosecond, 3 per second three) while
/// the clock moves, so the limiter's parameters are all rewritten: the
/// outcome is one that the steps in some order give.
#[test]
fn rate_check_races_a_change_of_scale() {
    let (from, to) = (
        portasync::Quota::per_second(1000).burst(1),
        portasync::Quota::per_second(3).burst(2),
    );
    model(move || {
        let clock = Hand::new();
        let limiter = Arc::new(portasync::RateLimiter::with_timer(from, clock.clone()));
        let other = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check().is_ok())
        };
        clock.set(5 * MS);
        limiter.set_quota(to);
        let theirs = other.join().unwrap();
        let seen = (theirs, limiter.check().map_err(|e| e.wait_time()));
        // The other check read the clock at 0 or at 5 ms.
        let orders = [0, 5 * MS].into_iter().flat_map(|reading| {
            [true, false].map(|check_first| in_turn(from, to, reading, check_first))
        });
        assert!(
            orders.clone().any(|order| order == seen),
            "{seen:?} is none of {:?}",
            orders.collect::<Vec<_>>()
        );
    });
}

/// A waiter booked for 1 ms is dropped while, on another thread, the clock
/// moves to 3 ms and a check finds the bucket full, which spends the
/// booking. In every order the check gets its cell, and the drop gives back
/// nothing already spent: a burst of one allows no second cell at 3 ms.
#[test]
fn rate_give_back_races_a_check_that_spends_it() {
    model(|| {
        let clock = Hand::new();
        let limiter = Arc::new(portasync::RateLimiter::with_timer(
            portasync::Quota::per_second(1000).burst(1),
            clock.clone(),
        ));
        assert!(limiter.check().is_ok());
        let mut waiter = Box::pin(limiter.acquire());
        assert!(poll_once(&mut waiter).is_pending(), "booked for 1 ms");
        let checker = {
            let (limiter, clock) = (limiter.clone(), clock.clone());
            thread::spawn(move || {
                clock.set(3 * MS);
                limiter.check().is_ok()
            })
        };
        drop(waiter);
        assert!(checker.join().unwrap(), "the bucket was full at 3 ms");
        assert!(
            limiter.check().is_err(),
            "a second cell at 3 ms with a burst of one"
        );
    });
}

// The in-place combinators: each future's waker, woken from other threads
// while the combinator polls.

/// A one-shot signal that another thread fires: what the futures in the
/// combinator models wait for.
#[derive(Default)]
struct Signal {
    fired: loom::sync::atomic::AtomicBool,
    waker: loom::sync::Mutex<Option<Waker>>,
}

impl Signal {
    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready with `value` once fired; files the waker before looking.
    async fn wait(&self, value: u8) -> u8 {
        std::future::poll_fn(|cx| {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.fired.load(Ordering::SeqCst) {
                Poll::Ready(value)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// A thread that fires `signals` one after the other.
fn fire_in_turn(signals: &[Arc<Signal>]) -> thread::JoinHandle<()> {
    let signals = signals.to_vec();
    thread::spawn(move || signals.iter().for_each(|signal| signal.fire()))
}

/// A flag that another thread sets between two wakes of the waker filed
/// here: a bare wake first, which queues the waiter, then the flag, then a
/// second wake, which can land while the first one's poll is under way.
#[derive(Clone, Default)]
struct News {
    published: Arc<loom::sync::atomic::AtomicBool>,
    waker: Arc<loom::sync::Mutex<Option<Waker>>>,
}

impl News {
    /// The thread that wakes, publishes and wakes again, once a waker is
    /// filed.
    fn publish_between_wakes(&self) -> thread::JoinHandle<()> {
        let news = self.clone();
        thread::spawn(move || {
            let waker = loop {
                if let Some(waker) = news.waker.lock().unwrap().take() {
                    break waker;
                }
                thread::yield_now();
            };
            waker.wake_by_ref();
            news.published.store(true, Ordering::Release);
            waker.wake();
        })
    }

    /// Ready once published; files the waker otherwise.
    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.published.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A scope's body woken again after the driver took it from the ready
/// queue and before its poll (a bare wake first queues it; then another
/// thread publishes and wakes as the driver takes it): the poll sees what
/// was published, or the body is queued again. Clearing the body's queued
/// flag with a plain store lost that wake and hung (from a review).
#[test]
fn scope_body_woken_just_before_its_poll() {
    model(|| {
        let news = News::default();
        let other = news.publish_between_wakes();
        loom::future::block_on(portasync::scope(async |_| {
            std::future::poll_fn(|cx| news.poll(cx)).await
        }));
        other.join().unwrap();
    });
}

/// A `join_all` future woken again after the combinator took it from its
/// ready queue and before its poll (a bare wake first queues it; then
/// another thread publishes and wakes): the poll sees what was published,
/// or the future is queued again. Clearing its queued flag with a plain
/// store lost that wake and hung (the same defect a review found in
/// `scope`).
#[test]
fn join_all_future_woken_just_before_its_poll() {
    model(|| {
        let news = News::default();
        let other = news.publish_between_wakes();
        let mut polls = 0;
        let waits = std::future::poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                // The first poll has the combinator's own waker: come back
                // with this future's.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            news.poll(cx).map(|()| 7u8)
        });
        assert_eq!(
            loom::future::block_on(portasync::join_all(vec![waits])),
            [7]
        );
        other.join().unwrap();
    });
}

/// Two futures of a `join_all` woken from threads of their own while the
/// combinator polls, the first twice in a row (one thread fires both its
/// signals): no wake is lost, and the outputs keep their order.
#[test]
fn join_all_wakes_from_other_threads() {
    model(|| {
        let signals: [Arc<Signal>; 3] = Default::default();
        let twice = fire_in_turn(&signals[..2]);
        let once = fire_in_turn(&signals[2..]);
        let first = async { signals[0].wait(0).await + signals[1].wait(1).await };
        let second = async { signals[2].wait(2).await };
        let outputs = loom::future::block_on(portasync::join_all([
            Box::pin(first) as Pin<Box<dyn Future<Output = u8>>>,
            Box::pin(second),
        ]));
        assert_eq!(outputs, [1, 2]);
        twice.join().unwrap();
        once.join().unwrap();
    });
}

/// A `race` whose one future that can finish is fired from another thread
/// while the combinator polls: it wins.
#[test]
fn race_wakes_from_another_thread() {
    model(|| {
        let signal = Arc::new(Signal::default());
        let firer = fire_in_turn(std::slice::from_ref(&signal));
        let never = Arc::new(Signal::default());
        let winner = loom::future::block_on(portasync::race([never.wait(0), signal.wait(1)]));
        assert_eq!(winner, (1, 1));
        firer.join().unwrap();
    });
}

/// A scope whose child and body each wait for a signal that another thread
/// fires, one after the other, while the scope's driver polls: the
/// child's wake reaches the ready queue and the body's its own waker, and
/// neither is lost.
#[test]
fn scope_wakes_from_another_thread() {
    model(|| {
        let signals: [Arc<Signal>; 2] = Default::default();
        let firer = fire_in_turn(&signals);
        let total = loom::future::block_on(portasync::scope(async |s| {
            let child = s.spawn(signals[0].wait(1));
            let body = signals[1].wait(2).await;
            child.await + body
        }));
        assert_eq!(total, 3);
        firer.join().unwrap();
    });
}
