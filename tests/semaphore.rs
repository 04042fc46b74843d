//! `Semaphore`: poll-level rules, a two-thread stress test, and the
//! behaviour that involves an executor, on smol, tokio and async-std.
//!
//! The poll-level tests drive futures by hand with counting wakers, so they
//! check exactly who is woken and how often; none of them depends on timing.

mod common;

use portasync::{
    Acquire, AcquireError, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
    TryAcquireError,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Counter {
    fn waker() -> (Arc<Self>, Waker) {
        let counter = Arc::new(Self::default());
        (counter.clone(), Waker::from(counter))
    }

    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[track_caller]
fn pending<F: Future + Unpin>(future: &mut F, waker: &Waker) {
    assert!(poll(future, waker).is_pending(), "expected Pending");
}

#[track_caller]
fn ready<F: Future + Unpin>(future: &mut F, waker: &Waker) -> F::Output {
    match poll(future, waker) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("expected Ready"),
    }
}

fn noop() -> Waker {
    Counter::waker().1
}

#[global_allocator]
static ALLOCATOR: common::Counting = common::Counting;

/// A waiter granted, the next one queued before the granted one looks, then
/// the granted one polled: the queue's slots take turns, and once they have
/// been made nothing is allocated.
#[test]
fn a_steady_hand_over_allocates_nothing() {
    let semaphore = Semaphore::new(1);
    let waker = noop();
    let mut held = semaphore.try_acquire().unwrap();
    let mut granted = semaphore.acquire();
    pending(&mut granted, &waker);
    let mut made = 0;
    for round in 0..1_000 {
        if round == 10 {
            made = common::Counting::made();
        }
        drop(held); // grants `granted`
        let mut next = semaphore.acquire();
        pending(&mut next, &waker);
        held = ready(&mut granted, &waker).unwrap();
        granted = next;
    }
    assert_eq!(common::Counting::made() - made, 0, "allocations");
    drop(held);
    drop(ready(&mut granted, &waker).unwrap());
}

#[test]
fn counts_and_basic_acquire() {
    let semaphore = Semaphore::new(3);
    assert_eq!(semaphore.available_permits(), 3);
    assert_eq!(semaphore.capacity(), 3);
    assert_eq!(semaphore.waiters(), 0);
    assert!(!semaphore.is_closed());

    let one = ready(&mut semaphore.acquire(), &noop()).unwrap();
    let two = ready(&mut semaphore.acquire_many(2), &noop()).unwrap();
    assert_eq!((one.num_permits(), two.num_permits()), (1, 2));
    assert_eq!(semaphore.available_permits(), 0);
    assert_eq!(semaphore.capacity(), 3);
    drop(two);
    assert_eq!(semaphore.available_permits(), 2);
    drop(one);
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
fn waiters_are_served_in_order() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let counters: Vec<_> = (0..3).map(|_| Counter::waker()).collect();
    let mut futures: Vec<_> = (0..3).map(|_| semaphore.acquire()).collect();
    for (future, (_, waker)) in futures.iter_mut().zip(&counters) {
        pending(future, waker);
    }
    assert_eq!(semaphore.waiters(), 3);

    let mut permit = held;
    for i in 0..3 {
        drop(permit);
        for (j, (counter, _)) in counters.iter().enumerate() {
            assert_eq!(counter.wakes(), usize::from(j <= i), "after release {i}");
        }
        permit = ready(&mut futures[i], &counters[i].1).unwrap();
        for (later, (_, waker)) in futures[i + 1..].iter_mut().zip(&counters[i + 1..]) {
            pending(later, waker);
        }
    }
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_large_waiter_at_the_head_holds_back_smaller_ones() {
    let semaphore = Semaphore::new(3);
    let mut held = semaphore.try_acquire_many(3).unwrap();
    let (big_wakes, big_waker) = Counter::waker();
    let (small_wakes, small_waker) = Counter::waker();
    let mut big = semaphore.acquire_many(2);
    let mut small = semaphore.acquire();
    pending(&mut big, &big_waker);
    pending(&mut small, &small_waker);

    // One permit comes back: the big waiter collects it, the small one
    // (which would fit) stays asleep.
    drop(held.split(1).unwrap());
    assert_eq!(semaphore.available_permits(), 0);
    assert_eq!((big_wakes.wakes(), small_wakes.wakes()), (0, 0));
    pending(&mut big, &big_waker);
    pending(&mut small, &small_waker);
    assert_eq!(
        semaphore.try_acquire().unwrap_err(),
        TryAcquireError::NoPermits
    );

    // The second completes the big one; the small one still waits.
    drop(held.split(1).unwrap());
    assert_eq!((big_wakes.wakes(), small_wakes.wakes()), (1, 0));
    let big_permit = ready(&mut big, &big_waker).unwrap();
    assert_eq!(big_permit.num_permits(), 2);
    pending(&mut small, &small_waker);

    drop(held);
    assert_eq!(small_wakes.wakes(), 1);
    assert_eq!(ready(&mut small, &small_waker).unwrap().num_permits(), 1);
    drop(big_permit);
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
fn try_acquire_never_jumps_the_queue() {
    let semaphore = Semaphore::new(2);
    let held = semaphore.try_acquire_many(2).unwrap();
    let mut waiter = semaphore.acquire();
    pending(&mut waiter, &noop());
    drop(held);
    // One permit is the waiter's (granted, not yet polled), one is free.
    assert_eq!(semaphore.available_permits(), 1);
    let other = semaphore.try_acquire().unwrap();
    assert_eq!(
        semaphore.try_acquire().unwrap_err(),
        TryAcquireError::NoPermits
    );
    let mine = ready(&mut waiter, &noop()).unwrap();
    drop((mine, other));

    // A waiter that needs more than is free, with nobody holding it back:
    // free permits are its, not try_acquire's.
    let held = semaphore.try_acquire().unwrap();
    let mut two = semaphore.acquire_many(2);
    pending(&mut two, &noop());
    assert_eq!(semaphore.available_permits(), 0);
    assert_eq!(
        semaphore.try_acquire().unwrap_err(),
        TryAcquireError::NoPermits
    );
    assert!(semaphore.try_acquire_many(1).is_err());
    drop(held);
    assert_eq!(ready(&mut two, &noop()).unwrap().num_permits(), 2);
}

#[test]
fn try_acquire_owned_never_jumps_the_queue() {
    let semaphore = Arc::new(Semaphore::new(1));
    let held = semaphore.try_acquire_owned().unwrap();
    let mut waiter = semaphore.acquire_owned();
    pending(&mut waiter, &noop());
    drop(held);
    assert_eq!(
        semaphore.try_acquire_owned().unwrap_err(),
        TryAcquireError::NoPermits
    );
    assert_eq!(
        semaphore.try_acquire_many_owned(1).unwrap_err(),
        TryAcquireError::NoPermits
    );
    let permit = ready(&mut waiter, &noop()).unwrap();
    assert!(Arc::ptr_eq(permit.semaphore(), &semaphore));
}

#[test]
fn cancelling_a_partly_served_waiter_returns_its_permits_and_wakes_the_next() {
    let semaphore = Semaphore::new(3);
    let mut held = semaphore.try_acquire_many(3).unwrap();
    let mut big = semaphore.acquire_many(3);
    let (next_wakes, next_waker) = Counter::waker();
    let mut next = semaphore.acquire_many(2);
    pending(&mut big, &noop());
    pending(&mut next, &next_waker);

    drop(held.split(2).unwrap());
    assert_eq!(semaphore.available_permits(), 0, "the head collected two");
    assert_eq!(next_wakes.wakes(), 0);

    drop(big);
    assert_eq!(
        next_wakes.wakes(),
        1,
        "the next waiter is woken, not only credited"
    );
    assert_eq!(semaphore.waiters(), 0);
    let permit = ready(&mut next, &next_waker).unwrap();
    assert_eq!(permit.num_permits(), 2);
    assert_eq!(semaphore.available_permits(), 0);
    drop((permit, held));
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
fn cancelling_a_granted_but_unpolled_waiter_passes_the_permits_on() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let mut first = semaphore.acquire();
    let (second_wakes, second_waker) = Counter::waker();
    let mut second = semaphore.acquire();
    pending(&mut first, &noop());
    pending(&mut second, &second_waker);
    drop(held); // granted to `first`
    assert_eq!(second_wakes.wakes(), 0);
    drop(first);
    assert_eq!(second_wakes.wakes(), 1);
    assert!(ready(&mut second, &second_waker).is_ok());
}

#[test]
fn cancelling_a_waiter_that_holds_nothing_wakes_nobody() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let (first_wakes, first_waker) = Counter::waker();
    let (third_wakes, third_waker) = Counter::waker();
    let mut first = semaphore.acquire();
    let mut second = semaphore.acquire();
    let mut third = semaphore.acquire();
    pending(&mut first, &first_waker);
    pending(&mut second, &noop());
    pending(&mut third, &third_waker);
    drop(second);
    assert_eq!(semaphore.waiters(), 2);
    assert_eq!((first_wakes.wakes(), third_wakes.wakes()), (0, 0));
    drop(held);
    assert_eq!((first_wakes.wakes(), third_wakes.wakes()), (1, 0));
    drop(ready(&mut first, &first_waker).unwrap());
    assert_eq!(third_wakes.wakes(), 1);
    assert!(ready(&mut third, &third_waker).is_ok());
}

#[test]
fn dropping_an_unpolled_or_finished_future_changes_nothing() {
    let semaphore = Semaphore::new(1);
    drop(semaphore.acquire_many(1));
    let mut done = semaphore.acquire();
    let permit = ready(&mut done, &noop()).unwrap();
    drop(done);
    assert_eq!(semaphore.available_permits(), 0);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
    assert_eq!(semaphore.waiters(), 0);
}

#[test]
fn a_repolled_waiter_wakes_only_its_newest_waker_and_never_spins() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let (old_wakes, old_waker) = Counter::waker();
    let (new_wakes, new_waker) = Counter::waker();
    let mut waiter = semaphore.acquire();
    for _ in 0..5 {
        pending(&mut waiter, &old_waker);
    }
    assert_eq!(old_wakes.wakes(), 0, "a pending poll never wakes itself");
    pending(&mut waiter, &new_waker);
    pending(&mut waiter, &new_waker);
    assert_eq!(semaphore.waiters(), 1);
    drop(held);
    assert_eq!((old_wakes.wakes(), new_wakes.wakes()), (0, 1));
    assert!(ready(&mut waiter, &new_waker).is_ok());
    assert_eq!(new_wakes.wakes(), 1);
}

#[test]
fn the_replaced_waker_is_released() {
    let semaphore = Semaphore::new(0);
    let (old, old_waker) = Counter::waker();
    let mut waiter = semaphore.acquire();
    pending(&mut waiter, &old_waker);
    assert_eq!(Arc::strong_count(&old), 3, "the semaphore keeps a clone");
    pending(&mut waiter, &noop());
    assert_eq!(Arc::strong_count(&old), 2, "the clone was dropped");
    let (new, new_waker) = Counter::waker();
    pending(&mut waiter, &new_waker);
    drop(waiter);
    assert_eq!(
        Arc::strong_count(&new),
        2,
        "cancelling drops the stored waker"
    );
}

/// Two waiters for a permit of `semaphore`: the first polled with a waker
/// that panics, the second with a counting one (returned, with its counter
/// and the other's).
fn behind_a_panicking_waker(
    semaphore: &Semaphore,
) -> (
    [Acquire<'_>; 2],
    Arc<common::Panicking>,
    Arc<Counter>,
    Waker,
) {
    let (bad_wakes, bad_waker) = common::panicking();
    let (good_wakes, good_waker) = Counter::waker();
    let mut waiters = [semaphore.acquire(), semaphore.acquire()];
    pending(&mut waiters[0], &bad_waker);
    pending(&mut waiters[1], &good_waker);
    (waiters, bad_wakes, good_wakes, good_waker)
}

/// A release that grants two waiters, the first of whose wakers panics:
/// the second is woken all the same (else it would hold its permit, never
/// polled again), then the panic reaches the releasing caller.
#[test]
fn a_waker_that_panics_leaves_no_granted_waiter_unwoken() {
    let semaphore = Semaphore::new(2);
    let held = semaphore.try_acquire_many(2).unwrap();
    let ([mut first, mut second], bad_wakes, good_wakes, good_waker) =
        behind_a_panicking_waker(&semaphore);

    let released = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(held)));
    assert!(released.is_err(), "the waker's panic goes on to the caller");
    assert_eq!(
        (bad_wakes.0.load(Ordering::SeqCst), good_wakes.wakes()),
        (1, 1)
    );
    assert!(ready(&mut second, &good_waker).is_ok());
    assert!(ready(&mut first, &good_waker).is_ok());
}

/// `close` wakes every waiter it shuts out, also past one whose waker panics.
#[test]
fn close_wakes_every_waiter_past_a_waker_that_panics() {
    let semaphore = Semaphore::new(0);
    let ([_first, mut second], bad_wakes, good_wakes, good_waker) =
        behind_a_panicking_waker(&semaphore);

    let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| semaphore.close()));
    assert!(closed.is_err(), "the waker's panic goes on to the caller");
    assert_eq!(
        (bad_wakes.0.load(Ordering::SeqCst), good_wakes.wakes()),
        (1, 1)
    );
    assert!(semaphore.is_closed());
    assert!(ready(&mut second, &good_waker).is_err());
    assert_eq!(semaphore.waiters(), 0);
}

#[test]
fn close_fails_pending_and_later_acquires_and_keeps_held_permits() {
    let semaphore = Arc::new(Semaphore::new(3));
    let held = semaphore.try_acquire().unwrap();
    let (head_wakes, head_waker) = Counter::waker();
    let (tail_wakes, tail_waker) = Counter::waker();
    let mut head = semaphore.acquire_many(3); // collects the two free ones
    let mut tail = semaphore.acquire_many_owned(1);
    pending(&mut head, &head_waker);
    pending(&mut tail, &tail_waker);
    assert_eq!(semaphore.available_permits(), 0);

    semaphore.close();
    assert!(semaphore.is_closed());
    assert_eq!((head_wakes.wakes(), tail_wakes.wakes()), (1, 1));
    assert_eq!(ready(&mut head, &head_waker).unwrap_err(), closed_error());
    assert!(ready(&mut tail, &tail_waker).is_err());
    assert_eq!(semaphore.waiters(), 0);
    assert_eq!(semaphore.available_permits(), 2, "the head's two came back");

    assert!(ready(&mut semaphore.acquire(), &noop()).is_err());
    assert!(ready(&mut semaphore.acquire_many(0), &noop()).is_err());
    assert!(ready(&mut semaphore.acquire_owned(), &noop()).is_err());
    assert_eq!(
        semaphore.try_acquire().unwrap_err(),
        TryAcquireError::Closed
    );
    assert_eq!(
        semaphore.try_acquire_many(0).unwrap_err(),
        TryAcquireError::Closed
    );
    assert_eq!(
        semaphore.try_acquire_owned().unwrap_err(),
        TryAcquireError::Closed
    );

    assert_eq!(held.num_permits(), 1);
    drop(held);
    assert_eq!(semaphore.available_permits(), 3);
    assert_eq!(semaphore.capacity(), 3);
}

/// `AcquireError` has no public constructor; get one the way users do.
fn closed_error() -> AcquireError {
    let semaphore = Semaphore::new(0);
    semaphore.close();
    ready(&mut semaphore.acquire(), &noop()).unwrap_err()
}

#[test]
fn nothing_reopens_a_closed_semaphore() {
    let semaphore = Semaphore::new(2);
    semaphore.close();
    semaphore.add_permits(3);
    assert!(semaphore.is_closed());
    assert_eq!(semaphore.forget_permits(1), 1);
    assert!(semaphore.is_closed());
    semaphore.set_capacity(1);
    assert!(semaphore.is_closed());
    semaphore.set_capacity(10);
    assert!(semaphore.is_closed());
    semaphore.close();
    assert!(semaphore.is_closed());
    assert_eq!(
        semaphore.try_acquire().unwrap_err(),
        TryAcquireError::Closed
    );
    assert!(ready(&mut semaphore.acquire(), &noop()).is_err());
    assert_eq!(semaphore.available_permits(), 10);
}

#[test]
fn acquiring_zero_permits_resolves_at_once() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    let mut waiter = semaphore.acquire();
    pending(&mut waiter, &noop());
    let zero = ready(&mut semaphore.acquire_many(0), &noop()).unwrap();
    assert_eq!(zero.num_permits(), 0);
    assert_eq!(semaphore.try_acquire_many(0).unwrap().num_permits(), 0);
    assert_eq!(semaphore.waiters(), 1);
    drop(zero);
    drop(held);
    assert!(ready(&mut waiter, &noop()).is_ok());
}

#[test]
fn more_than_the_capacity_waits_until_it_grows() {
    let semaphore = Semaphore::new(2);
    assert_eq!(
        semaphore.try_acquire_many(3).unwrap_err(),
        TryAcquireError::NoPermits
    );
    let (wakes, waker) = Counter::waker();
    let mut five = semaphore.acquire_many(5);
    pending(&mut five, &waker);
    assert_eq!(semaphore.available_permits(), 0);
    semaphore.add_permits(2);
    assert_eq!(wakes.wakes(), 0);
    pending(&mut five, &waker);
    semaphore.set_capacity(5);
    assert_eq!(wakes.wakes(), 1);
    assert_eq!(ready(&mut five, &waker).unwrap().num_permits(), 5);

    let mut too_many = semaphore.acquire_many(6);
    pending(&mut too_many, &waker);
    semaphore.close();
    assert!(ready(&mut too_many, &waker).is_err());
    assert_eq!(semaphore.available_permits(), 5);
}

#[test]
fn shrinking_takes_free_permits_and_withholds_returns_until_they_fit() {
    let semaphore = Semaphore::new(4);
    let mut held = semaphore.try_acquire_many(3).unwrap();
    semaphore.set_capacity(2);
    assert_eq!(semaphore.capacity(), 2);
    assert_eq!(
        semaphore.available_permits(),
        0,
        "the free one is taken now"
    );

    // Three are out, two fit: the first to come back is withheld.
    drop(held.split(1).unwrap());
    assert_eq!(semaphore.available_permits(), 0);
    drop(held.split(1).unwrap());
    assert_eq!(semaphore.available_permits(), 1);
    drop(held);
    assert_eq!(semaphore.available_permits(), 2);
    assert_eq!(semaphore.capacity(), 2);
}

#[test]
fn withheld_permits_do_not_reach_waiters() {
    let semaphore = Semaphore::new(3);
    let mut held = semaphore.try_acquire_many(3).unwrap();
    semaphore.set_capacity(1);
    let (wakes, waker) = Counter::waker();
    let mut waiter = semaphore.acquire();
    pending(&mut waiter, &waker);
    drop(held.split(1).unwrap());
    drop(held.split(1).unwrap());
    assert_eq!(wakes.wakes(), 0, "both went to the shrink");
    drop(held);
    assert_eq!(wakes.wakes(), 1);
    let permit = ready(&mut waiter, &waker).unwrap();
    assert_eq!(semaphore.available_permits(), 0);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn growing_after_a_shrink_cancels_the_withholding_first() {
    let semaphore = Semaphore::new(4);
    let held = semaphore.try_acquire_many(4).unwrap();
    semaphore.set_capacity(1); // three withheld
    semaphore.add_permits(2); // capacity 3: one still withheld
    assert_eq!(semaphore.capacity(), 3);
    assert_eq!(semaphore.available_permits(), 0);
    drop(held);
    assert_eq!(semaphore.available_permits(), 3);
    semaphore.set_capacity(3);
    assert_eq!(semaphore.available_permits(), 3);
}

#[test]
fn forgetting() {
    let semaphore = Semaphore::new(5);
    let held = semaphore.try_acquire_many(2).unwrap();
    assert_eq!(semaphore.forget_permits(2), 2);
    assert_eq!(semaphore.capacity(), 3);
    assert_eq!(semaphore.forget_permits(5), 1, "only free permits");
    assert_eq!(semaphore.forget_permits(5), 0);
    assert_eq!(semaphore.capacity(), 2);
    held.forget();
    assert_eq!(semaphore.capacity(), 0);
    assert_eq!(semaphore.available_permits(), 0);

    // After a shrink, a forgotten permit settles what is withheld.
    let semaphore = Semaphore::new(4);
    let mut held = semaphore.try_acquire_many(4).unwrap();
    semaphore.set_capacity(2);
    held.split(1).unwrap().forget();
    assert_eq!(semaphore.capacity(), 2);
    held.split(2).unwrap().forget();
    assert_eq!(semaphore.capacity(), 1);
    drop(held);
    assert_eq!(semaphore.available_permits(), 1);
    // The withholding is over: the fast path is back.
    assert!(semaphore.try_acquire().is_ok());
}

#[test]
fn split_and_merge() {
    let semaphore = Arc::new(Semaphore::new(4));
    let mut permit = semaphore.try_acquire_many(3).unwrap();
    assert!(permit.split(4).is_none());
    let two = permit.split(2).unwrap();
    assert_eq!((permit.num_permits(), two.num_permits()), (1, 2));
    let zero = permit.split(0).unwrap();
    assert_eq!(zero.num_permits(), 0);
    permit.merge(two);
    assert_eq!(permit.num_permits(), 3);
    drop(zero);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 4);

    let mut owned = semaphore.try_acquire_many_owned(4).unwrap();
    let one = owned.split(1).unwrap();
    assert!(owned.split(5).is_none());
    drop(one);
    assert_eq!(semaphore.available_permits(), 1);
    owned.merge(semaphore.try_acquire_owned().unwrap());
    assert_eq!(owned.num_permits(), 4);
    drop(owned);
    assert_eq!(semaphore.available_permits(), 4);
}

#[test]
fn merging_permits_of_two_semaphores_panics() {
    let (a, b) = (Semaphore::new(1), Semaphore::new(1));
    let mut permit = a.try_acquire().unwrap();
    let message = panic_message(|| permit.merge(b.try_acquire().unwrap()));
    assert!(message.contains("`other`"), "{message}");
}

/// Runs `f`, which must panic, and returns its message, checking that the
/// panic points at this file (`#[track_caller]`).
fn panic_message(f: impl FnOnce()) -> String {
    use std::cell::RefCell;
    thread_local! {
        static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = LOCATION.with(|location| {
                let mut location = location.borrow_mut();
                if location.as_deref() == Some("expecting") {
                    *location = info.location().map(|l| l.file().to_owned());
                    true
                } else {
                    false
                }
            });
            if !quiet {
                default(info);
            }
        }));
    });
    LOCATION.with(|location| *location.borrow_mut() = Some("expecting".to_owned()));
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("expected a panic");
    let file = LOCATION.with(|location| location.borrow_mut().take());
    assert_eq!(
        file.as_deref(),
        Some(file!()),
        "the panic blames the caller"
    );
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn more_than_max_permits_panics_naming_the_argument() {
    let too_many = Semaphore::MAX_PERMITS + 1;
    let message = panic_message(|| drop(Semaphore::new(too_many)));
    assert!(message.contains("`permits`"), "{message}");

    let semaphore = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    type Call = Box<dyn Fn(&Arc<Semaphore>)>;
    let calls: Vec<(&str, Call)> = vec![
        (
            "acquire_many",
            Box::new(move |s| drop(s.acquire_many(too_many))),
        ),
        (
            "acquire_many_owned",
            Box::new(move |s| drop(s.acquire_many_owned(too_many))),
        ),
        (
            "try_acquire_many",
            Box::new(move |s| drop(s.try_acquire_many(too_many))),
        ),
        (
            "try_acquire_many_owned",
            Box::new(move |s| drop(s.try_acquire_many_owned(too_many))),
        ),
        (
            "forget_permits",
            Box::new(move |s| {
                s.forget_permits(too_many);
            }),
        ),
        ("set_capacity", Box::new(move |s| s.set_capacity(too_many))),
        ("add_permits", Box::new(move |s| s.add_permits(too_many))),
        ("add_permits", Box::new(|s| s.add_permits(1))), // capacity is full
        ("add_permits", Box::new(|s| s.add_permits(usize::MAX))),
    ];
    for (name, call) in calls {
        let message = panic_message(|| call(&semaphore));
        assert!(
            message.contains(name) && message.contains("`n`"),
            "{message}"
        );
    }
    // Nothing was changed, and the semaphore still works.
    assert_eq!(semaphore.capacity(), Semaphore::MAX_PERMITS);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    let all = semaphore.try_acquire_many(Semaphore::MAX_PERMITS).unwrap();
    drop(all);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
fn max_permits_in_flight_does_not_overflow() {
    let semaphore = Semaphore::new(Semaphore::MAX_PERMITS);
    let all = semaphore.try_acquire_many(Semaphore::MAX_PERMITS).unwrap();
    let mut waiter = semaphore.acquire_many(Semaphore::MAX_PERMITS);
    pending(&mut waiter, &noop());
    semaphore.set_capacity(0);
    semaphore.set_capacity(Semaphore::MAX_PERMITS);
    drop(all);
    let again = ready(&mut waiter, &noop()).unwrap();
    assert_eq!(again.num_permits(), Semaphore::MAX_PERMITS);
    again.forget();
    assert_eq!(semaphore.capacity(), 0);
    semaphore.add_permits(Semaphore::MAX_PERMITS);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
}

/// A waker whose `wake` and `drop` both call back into the semaphore: the
/// semaphore must never hold its lock across either.
struct Hostile {
    semaphore: Arc<Semaphore>,
    stash: Mutex<Option<OwnedSemaphorePermit>>,
    wakes: AtomicUsize,
    drops: Arc<AtomicUsize>,
}

impl Wake for Hostile {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        // Every kind of call that takes the lock.
        let _ = (self.semaphore.capacity(), self.semaphore.waiters());
        self.semaphore.add_permits(1);
        assert_eq!(self.semaphore.forget_permits(1), 1);
        drop(self.stash.lock().unwrap().take());
        let _ = self.semaphore.try_acquire();
        let _ = format!("{:?}", self.semaphore);
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = (self.semaphore.capacity(), self.semaphore.waiters());
        drop(self.stash.get_mut().unwrap().take());
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn hostile(semaphore: &Arc<Semaphore>, drops: &Arc<AtomicUsize>) -> (Arc<Hostile>, Waker) {
    let hostile = Arc::new(Hostile {
        semaphore: semaphore.clone(),
        stash: Mutex::new(None),
        wakes: AtomicUsize::new(0),
        drops: drops.clone(),
    });
    (hostile.clone(), Waker::from(hostile))
}

/// Runs `body` on a thread and fails (instead of hanging) on a deadlock.
fn no_deadlock(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        done.send(()).unwrap();
    });
    if finished.recv_timeout(common::HANG).is_err() {
        panic!("deadlock: a waker callback could not get into the semaphore");
    }
    thread.join().unwrap();
}

#[test]
fn a_hostile_waker_cannot_deadlock_the_semaphore() {
    no_deadlock(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let drops = Arc::new(AtomicUsize::new(0));
        let held = semaphore.try_acquire_many_owned(2).unwrap();

        // The semaphore holds the only reference to the first waker, so
        // replacing it with a new one runs its drop, which calls back.
        let (first, first_waker) = hostile(&semaphore, &drops);
        let mut waiter = semaphore.acquire_owned();
        pending(&mut waiter, &first_waker);
        drop((first, first_waker));
        let (second, second_waker) = hostile(&semaphore, &drops);
        pending(&mut waiter, &second_waker);
        drop(second_waker);
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        // A release grants the waiter; the wake calls back in every way.
        drop(held);
        assert_eq!(second.wakes.load(Ordering::SeqCst), 1);
        assert!(ready(&mut waiter, &noop()).is_ok());

        // Cancelling drops the stored waker, which calls back.
        let blocker = semaphore
            .try_acquire_many_owned(semaphore.available_permits())
            .unwrap();
        let (third, third_waker) = hostile(&semaphore, &drops);
        let mut cancelled = semaphore.acquire_many_owned(1);
        pending(&mut cancelled, &third_waker);
        drop((third, third_waker));
        drop(cancelled);
        assert_eq!(drops.load(Ordering::SeqCst), 2);

        // Closing wakes a hostile waker, whose wake releases a permit.
        let (fourth, fourth_waker) = hostile(&semaphore, &drops);
        *fourth.stash.lock().unwrap() = Some(blocker);
        let mut closing = semaphore.acquire_owned();
        pending(&mut closing, &fourth_waker);
        drop(fourth_waker);
        semaphore.close();
        assert_eq!(fourth.wakes.load(Ordering::SeqCst), 1);
        assert!(ready(&mut closing, &noop()).is_err());
        drop(closing);
        drop(fourth);
        assert_eq!(semaphore.available_permits(), semaphore.capacity());
    });
}

#[test]
fn a_release_that_grants_many_waiters_wakes_each_once() {
    // More waiters than one batch of wakers: the release loops.
    let semaphore = Semaphore::new(100);
    let held = semaphore.try_acquire_many(100).unwrap();
    let counters: Vec<_> = (0..100).map(|_| Counter::waker()).collect();
    let mut waiters: Vec<_> = (0..100).map(|_| semaphore.acquire()).collect();
    for (waiter, (_, waker)) in waiters.iter_mut().zip(&counters) {
        pending(waiter, waker);
    }
    drop(held);
    assert!(counters.iter().all(|(counter, _)| counter.wakes() == 1));
    assert_eq!(semaphore.waiters(), 0);
    let permits: Vec<_> = waiters
        .iter_mut()
        .zip(&counters)
        .map(|(waiter, (_, waker))| ready(waiter, waker).unwrap())
        .collect();
    assert_eq!(semaphore.available_permits(), 0);
    drop(permits);
    assert_eq!(semaphore.available_permits(), 100);
}

#[test]
fn close_with_many_waiters_wakes_all() {
    let semaphore = Semaphore::new(0);
    let counters: Vec<_> = (0..70).map(|_| Counter::waker()).collect();
    let mut waiters: Vec<_> = (0..70).map(|_| semaphore.acquire()).collect();
    for (waiter, (_, waker)) in waiters.iter_mut().zip(&counters) {
        pending(waiter, waker);
    }
    semaphore.close();
    assert!(counters.iter().all(|(counter, _)| counter.wakes() == 1));
    for waiter in &mut waiters {
        assert!(ready(waiter, &noop()).is_err());
    }
}

#[test]
fn slots_are_reused_without_confusion() {
    // Waiters come and go in a mixed order; each sees only its own outcome.
    let semaphore = Semaphore::new(1);
    let mut held = Some(semaphore.try_acquire().unwrap());
    for round in 0..20 {
        let mut a = semaphore.acquire();
        let mut b = semaphore.acquire();
        let mut c = semaphore.acquire();
        pending(&mut a, &noop());
        pending(&mut b, &noop());
        pending(&mut c, &noop());
        if round % 2 == 0 {
            drop(b);
            drop(held.take());
            held = Some(ready(&mut a, &noop()).unwrap());
            drop(a);
            pending(&mut c, &noop());
            drop(c);
        } else {
            drop(a);
            drop(held.take());
            drop(c);
            held = Some(ready(&mut b, &noop()).unwrap());
        }
        assert_eq!(semaphore.waiters(), 0);
        assert_eq!(semaphore.available_permits(), 0);
    }
    drop(held);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn debug_output_shows_counts() {
    let semaphore = Semaphore::new(2);
    let permit = semaphore.try_acquire().unwrap();
    let text = format!("{semaphore:?}");
    assert!(
        text.contains("available_permits: 1") && text.contains("capacity: 2"),
        "{text}"
    );
    assert!(format!("{permit:?}").contains("permits: 1"));
    assert!(format!("{:?}", semaphore.acquire_many(2)).contains("permits: 2"));
}

#[test]
fn errors_read_well() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let closed = closed_error();
    assert_error(&closed);
    assert_error(&TryAcquireError::Closed);
    assert_eq!(closed.to_string(), "semaphore closed");
    assert_eq!(TryAcquireError::Closed.to_string(), "semaphore closed");
    assert_eq!(
        TryAcquireError::NoPermits.to_string(),
        "no permits available"
    );
}

#[test]
fn send_sync_unpin() {
    fn send_sync<T: Send + Sync>() {}
    fn unpin<T: Unpin>() {}
    fn is_static<T: 'static>() {}
    send_sync::<Semaphore>();
    send_sync::<SemaphorePermit<'_>>();
    send_sync::<OwnedSemaphorePermit>();
    send_sync::<Acquire<'_>>();
    send_sync::<AcquireOwned>();
    send_sync::<AcquireError>();
    send_sync::<TryAcquireError>();
    unpin::<Acquire<'_>>();
    unpin::<AcquireOwned>();
    is_static::<AcquireOwned>();
    is_static::<OwnedSemaphorePermit>();
}

#[test]
fn a_semaphore_can_be_a_static() {
    static LIMIT: Semaphore = Semaphore::new(2);
    let permit = LIMIT.try_acquire().unwrap();
    assert_eq!(LIMIT.available_permits(), 1);
    drop(permit);
}

/// Two threads, 10,000 random operations between them: acquire 1..=3 (some
/// waited for, some cancelled mid-wait), release, forget, try_acquire. Holders
/// never exceed the capacity, and every permit comes back.
#[test]
fn two_thread_stress() {
    const START: usize = 16;
    const FORGET_BUDGET: usize = 10;
    const OPS_PER_THREAD: usize = 5_000;

    #[derive(Default)]
    struct Counts {
        held: usize,
        forgotten: usize,
    }

    let semaphore = Arc::new(Semaphore::new(START));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let start = Arc::new(std::sync::Barrier::new(2));
    let cancelled_while_queued = Arc::new(AtomicUsize::new(0));
    let check = |counts: &Mutex<Counts>, add: usize| {
        let mut counts = counts.lock().unwrap();
        counts.held += add;
        assert!(
            counts.held + counts.forgotten <= START,
            "{} held with {} forgotten out of {START}",
            counts.held,
            counts.forgotten
        );
    };

    let threads: Vec<_> = (0..2u64)
        .map(|seed| {
            let semaphore = semaphore.clone();
            let counts = counts.clone();
            let start = start.clone();
            let cancelled_while_queued = cancelled_while_queued.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(0x5eed + seed);
                start.wait();
                let mut held: Vec<OwnedSemaphorePermit> = Vec::new();
                for _ in 0..OPS_PER_THREAD {
                    let n = rng.usize(1..=3);
                    match rng.u8(0..6) {
                        // Wait, with empty hands only: a thread never waits
                        // while holding, so the two cannot deadlock.
                        0 if held.is_empty() => {
                            let permit =
                                futures_lite::future::block_on(semaphore.acquire_many_owned(n))
                                    .unwrap();
                            check(&counts, n);
                            held.push(permit);
                        }
                        // Start waiting, then give up.
                        1 => {
                            let mut waiter = semaphore.acquire_many_owned(n);
                            let mut polls = rng.usize(1..=3);
                            while polls > 0 {
                                if let Poll::Ready(permit) = poll(&mut waiter, &noop()) {
                                    check(&counts, n);
                                    held.push(permit.unwrap());
                                    break;
                                }
                                std::thread::yield_now();
                                polls -= 1;
                            }
                            if polls == 0 {
                                cancelled_while_queued.fetch_add(1, Ordering::Relaxed);
                            }
                            drop(waiter);
                        }
                        2 => {
                            if let Ok(permit) = semaphore.try_acquire_many_owned(n) {
                                check(&counts, n);
                                held.push(permit);
                            }
                        }
                        3 | 4 => {
                            if let Some(permit) = held.pop() {
                                counts.lock().unwrap().held -= permit.num_permits();
                            }
                        }
                        _ => {
                            if let Some(permit) = held.pop() {
                                let k = permit.num_permits();
                                let mut c = counts.lock().unwrap();
                                if c.forgotten + k <= FORGET_BUDGET {
                                    c.held -= k;
                                    c.forgotten += k;
                                    drop(c);
                                    permit.forget();
                                } else {
                                    c.held -= k;
                                    drop(c);
                                    drop(permit);
                                }
                            }
                        }
                    }
                }
                let left: usize = held.iter().map(|p| p.num_permits()).sum();
                counts.lock().unwrap().held -= left;
            })
        })
        .collect();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for thread in threads {
            let result = thread.join();
            let _ = done.send(result.is_ok());
        }
    });
    for _ in 0..2 {
        let ok = finished
            .recv_timeout(common::HANG)
            .expect("the stress test hung");
        assert!(ok, "a stress thread panicked");
    }
    let counts = counts.lock().unwrap();
    eprintln!(
        "{} forgotten, {} acquires cancelled while queued",
        counts.forgotten,
        cancelled_while_queued.load(Ordering::Relaxed)
    );
    assert_eq!(counts.held, 0);
    assert!(counts.forgotten > 0, "the mix exercised forget");
    assert_eq!(semaphore.capacity(), START - counts.forgotten);
    assert_eq!(semaphore.available_permits(), START - counts.forgotten);
    assert_eq!(semaphore.waiters(), 0);
}

/// What involves an executor, written once and run on every runtime.
#[allow(dead_code)]
mod suite {
    use crate::common::within;
    use futures_lite::future;
    use portasync::Semaphore;
    use portasync::rt::Runtime;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Waits (yielding) until `n` acquires are queued.
    async fn until_waiters(semaphore: &Semaphore, n: usize) {
        within(async {
            while semaphore.waiters() != n {
                future::yield_now().await;
            }
        })
        .await;
    }

    pub(crate) async fn bounds_concurrency<R: Runtime>(rt: R) {
        let semaphore = Arc::new(Semaphore::new(4));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (semaphore, running, peak) = (semaphore.clone(), running.clone(), peak.clone());
                rt.spawn(async move {
                    let _permit = semaphore.acquire().await.unwrap();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    for _ in 0..3 {
                        future::yield_now().await;
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(within(task).await.unwrap(), i);
        }
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert!(peak.load(Ordering::SeqCst) >= 1);
        assert_eq!(semaphore.available_permits(), 4);
    }

    pub(crate) async fn tasks_acquire_in_queue_order<R: Runtime>(rt: R) {
        let semaphore = Arc::new(Semaphore::new(2));
        let held = semaphore.clone().acquire_many_owned(2).await.unwrap();
        let (order_tx, order) = async_channel::unbounded();
        let mut tasks = Vec::new();
        for i in 0..6usize {
            let (mine, order_tx) = (semaphore.clone(), order_tx.clone());
            let weight = 1 + i % 2;
            tasks.push(rt.spawn(async move {
                let permit = mine.acquire_many(weight).await.unwrap();
                order_tx.send(i).await.unwrap();
                drop(permit);
            }));
            until_waiters(&semaphore, i + 1).await;
        }
        drop(held);
        for task in tasks {
            within(task).await.unwrap();
        }
        let order: Vec<usize> = (0..6).map(|_| order.try_recv().unwrap()).collect();
        // Weights alternate 1, 2, 1, 2 over two permits: each waiter for two
        // collects the permit left over by the one before it, so no two ever
        // hold at once and the order is exact. A waiter for one overtaking a
        // waiter for two would show here.
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
        assert_eq!(semaphore.available_permits(), 2);
    }

    pub(crate) async fn close_wakes_waiting_tasks<R: Runtime>(rt: R) {
        let semaphore = Arc::new(Semaphore::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let semaphore = semaphore.clone();
                rt.spawn(async move { semaphore.acquire_owned().await.is_err() })
            })
            .collect();
        until_waiters(&semaphore, 4).await;
        semaphore.close();
        for task in tasks {
            assert!(within(task).await.unwrap());
        }
    }

    pub(crate) async fn aborting_a_waiting_task_passes_its_permits_on<R: Runtime>(rt: R) {
        let semaphore = Arc::new(Semaphore::new(3));
        let mut held = semaphore.clone().acquire_many_owned(3).await.unwrap();
        let big = {
            let semaphore = semaphore.clone();
            rt.spawn(async move { drop(semaphore.acquire_many(3).await) })
        };
        until_waiters(&semaphore, 1).await;
        let small = {
            let semaphore = semaphore.clone();
            rt.spawn(async move { semaphore.acquire_many(2).await.unwrap().num_permits() })
        };
        until_waiters(&semaphore, 2).await;
        drop(held.split(2).unwrap()); // the big waiter collects them
        big.abort();
        assert!(within(big).await.unwrap_err().is_cancelled());
        assert_eq!(within(small).await.unwrap(), 2);
        drop(held);
        assert_eq!(semaphore.available_permits(), 3);
    }

    pub(crate) async fn owned_permits_move_into_tasks<R: Runtime>(rt: R) {
        let semaphore = Arc::new(Semaphore::new(3));
        let mut tasks = Vec::new();
        for _ in 0..9 {
            let permit = semaphore.clone().acquire_owned().await.unwrap();
            tasks.push(rt.spawn(async move {
                future::yield_now().await;
                drop(permit);
            }));
        }
        for task in tasks {
            within(task).await.unwrap();
        }
        assert_eq!(semaphore.available_permits(), 3);
    }
}

#[allow(unused_macros)] // every harness needs a runtime feature
macro_rules! on_runtime {
    ($module:ident, $harness:ty) => {
        mod $module {
            use crate::common::Harness;

            on_runtime!(@tests $harness;
                bounds_concurrency,
                tasks_acquire_in_queue_order,
                close_wakes_waiting_tasks,
                aborting_a_waiting_task_passes_its_permits_on,
                owned_permits_move_into_tasks,
            );
        }
    };
    (@tests $harness:ty; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                <$harness>::run(crate::suite::$test);
            }
        )*
    };
}

#[cfg(feature = "smol")]
on_runtime!(smol_global, crate::common::SmolGlobal);
#[cfg(feature = "smol")]
on_runtime!(smol_own_executor, crate::common::SmolOwn);
#[cfg(feature = "tokio")]
on_runtime!(tokio, crate::common::Tokio);
#[cfg(feature = "async-std")]
on_runtime!(async_std, crate::common::AsyncStd);
