//! `CancelToken`: waking, trees, guards, `run`/`cancel_on`, threads.
//! (Cross-task behaviour on each runtime is in tests/time.rs's suite.)

mod common;

use futures_lite::future::{block_on, poll_once};
use portasync::prelude::*;
use portasync::{CancelToken, Cancelled};
use std::future::{Future, pending, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use common::{counter, poll};

#[test]
fn cancel_wakes_every_waiter_exactly_once() {
    let token = CancelToken::new();
    let child = token.child();
    let mut waiters: Vec<_> = (0..10)
        .map(|_| (Box::pin(token.cancelled()), counter()))
        .collect();
    let mut child_waiter = (Box::pin(child.cancelled_owned()), counter());
    for (future, (_, waker)) in &mut waiters {
        assert!(poll(future, waker).is_pending());
    }
    assert!(poll(&mut child_waiter.0, &child_waiter.1.1).is_pending());

    token.cancel();
    token.cancel(); // a second cancel wakes nobody again
    for (future, (count, waker)) in &mut waiters {
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(future, waker).is_ready());
    }
    assert_eq!(child_waiter.1.0.0.load(Ordering::SeqCst), 1);
    assert!(poll(&mut child_waiter.0, &child_waiter.1.1).is_ready());
}

/// A waiter whose waker panics stops neither the waking of the others on
/// its token nor the cancel of the token's children (and their waiters);
/// the panic then reaches the caller of `cancel`.
#[test]
fn a_waker_that_panics_stops_no_part_of_a_cancel() {
    let token = CancelToken::new();
    let child = token.child();
    let grandchild = child.child();
    let (bad_wakes, bad) = common::panicking();
    let (sibling_wakes, sibling) = counter();
    let (child_wakes, child_waker) = counter();
    let (grandchild_wakes, grandchild_waker) = counter();
    let mut failing = Box::pin(token.cancelled());
    let mut beside = Box::pin(token.cancelled());
    let mut below = Box::pin(child.cancelled());
    let mut further = Box::pin(grandchild.cancelled());
    assert!(poll(&mut failing, &bad).is_pending());
    assert!(poll(&mut beside, &sibling).is_pending());
    assert!(poll(&mut below, &child_waker).is_pending());
    assert!(poll(&mut further, &grandchild_waker).is_pending());

    let cancel = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| token.cancel()));
    assert!(cancel.is_err(), "the waker's panic goes on to the caller");
    assert_eq!(bad_wakes.0.load(Ordering::SeqCst), 1);
    for wakes in [&sibling_wakes, &child_wakes, &grandchild_wakes] {
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }
    assert!(child.is_cancelled() && grandchild.is_cancelled());
    assert!(poll(&mut beside, &sibling).is_ready());
    assert!(poll(&mut below, &child_waker).is_ready());
    assert!(poll(&mut further, &grandchild_waker).is_ready());
}

#[test]
fn only_the_newest_waker_is_woken() {
    let token = CancelToken::new();
    let (old_count, old) = counter();
    let (new_count, new) = counter();
    let mut waiting = Box::pin(token.cancelled());
    assert!(poll(&mut waiting, &old).is_pending());
    assert!(poll(&mut waiting, &new).is_pending());
    token.cancel();
    assert_eq!(old_count.0.load(Ordering::SeqCst), 0);
    assert_eq!(new_count.0.load(Ordering::SeqCst), 1);
}

#[test]
fn children_follow_parents_never_the_reverse() {
    let root = CancelToken::new();
    let child = root.child();
    let grandchild = child.child();
    let sibling = root.child();

    grandchild.cancel();
    assert!(!child.is_cancelled() && !root.is_cancelled());

    child.cancel();
    assert!(!root.is_cancelled() && !sibling.is_cancelled());

    root.cancel();
    assert!(sibling.is_cancelled());
    assert!(
        root.child().is_cancelled(),
        "a child made after the cancel starts cancelled"
    );
}

/// A token whose handles are all gone still passes its parent's cancel on
/// to its children: to their flags and to their waiters.
#[test]
fn cancel_reaches_grandchildren_past_a_dropped_middle() {
    let root = CancelToken::new();
    let grandchild = root.child().child(); // the middle is a temporary
    let (count, waker) = counter();
    let mut waiting = Box::pin(grandchild.cancelled());
    assert!(poll(&mut waiting, &waker).is_pending());
    root.cancel();
    assert!(grandchild.is_cancelled());
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(poll(&mut waiting, &waker).is_ready());

    // Deeper, with the middles dropped in every order.
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]] {
        let root = CancelToken::new();
        let mut chain = vec![root.child()];
        for _ in 0..3 {
            let next = chain.last().unwrap().child();
            chain.push(next);
        }
        let leaf = chain.pop().unwrap();
        let mut middles: Vec<_> = chain.into_iter().map(Some).collect();
        for index in order {
            middles[index] = None;
        }
        root.cancel();
        assert!(leaf.is_cancelled(), "dropped in order {order:?}");
    }
}

#[test]
fn clones_share_the_token() {
    let token = CancelToken::new();
    let clone = token.clone();
    clone.cancel();
    assert!(token.is_cancelled());
    assert!(
        !CancelToken::default()
            .child()
            .child()
            .clone()
            .is_cancelled()
    );
}

#[test]
fn drop_guard_cancels_on_drop_unless_disarmed() {
    let token = CancelToken::new();
    let guard = token.drop_guard();
    let token_back = guard.disarm();
    assert!(!token_back.is_cancelled());

    common::quiet_expected_panics();
    let result = std::panic::catch_unwind(|| {
        let _guard = token.drop_guard();
        panic!("expected panic: unwinding cancels too");
    });
    assert!(result.is_err());
    assert!(token.is_cancelled());
}

#[test]
fn run_prefers_a_ready_result() {
    let token = CancelToken::new();
    token.cancel();
    assert_eq!(block_on(token.run(ready(1))), Ok(1));
    assert_eq!(block_on(ready(2).cancel_on(&token)), Ok(2));
    assert!(block_on(token.run(pending::<()>())).is_err());
}

/// A future that counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Future for Tracked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn run_stops_when_cancelled_and_drops_the_future_once() {
    let token = CancelToken::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let (woken, waker) = counter();
    let mut run = Box::pin(Tracked(drops.clone()).cancel_on(&token));
    assert!(poll(&mut run, &waker).is_pending());
    token.cancel();
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    let output: Poll<Result<(), Cancelled>> = poll(&mut run, &waker);
    assert!(matches!(output, Poll::Ready(Err(_))));
    drop(run);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn cancelled_error_message() {
    let token = CancelToken::new();
    token.cancel();
    let err = block_on(token.run(pending::<()>())).unwrap_err();
    assert_eq!(err.to_string(), "operation was cancelled");
}

/// A waker that calls back into the token when woken and when dropped.
struct Hostile(CancelToken);

impl Wake for Hostile {
    fn wake(self: Arc<Self>) {
        self.0.cancel();
        let _ = self.0.child();
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.0.is_cancelled();
        let _ = self.0.child();
    }
}

#[test]
fn wakers_may_call_back_into_the_token() {
    let token = CancelToken::new();
    let hostile = || Waker::from(Arc::new(Hostile(token.clone())));
    let mut waiting = Box::pin(token.cancelled());
    assert!(poll(&mut waiting, &hostile()).is_pending());
    assert!(poll(&mut waiting, &hostile()).is_pending()); // drops the first waker
    let mut other = Box::pin(token.cancelled());
    assert!(poll(&mut other, &hostile()).is_pending());
    drop(other); // drops a hostile waker
    token.cancel(); // wakes one
    assert!(poll(&mut waiting, Waker::noop()).is_ready());
}

#[test]
fn cancel_from_another_thread_wakes_a_blocked_waiter() {
    let token = CancelToken::new();
    let waiter = {
        let token = token.child();
        std::thread::spawn(move || block_on(token.cancelled_owned()))
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    token.cancel();
    waiter.join().unwrap();
}

/// Threads race to wait, make children and cancel: every waiter finishes
/// and every child ends cancelled. Bounded in rounds.
#[test]
fn racing_cancel_child_and_wait() {
    for _ in 0..200 {
        let token = CancelToken::new();
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let token = token.clone();
                std::thread::spawn(move || match i {
                    0 => block_on(token.cancelled()),
                    1 => {
                        let child = token.child();
                        block_on(child.cancelled());
                    }
                    _ => token.cancel(),
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut late = Box::pin(token.child().cancelled_owned());
        assert!(block_on(poll_once(&mut late)).is_some());
    }
}
