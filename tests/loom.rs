//! loom models of the lock-free paths: the semaphore's fast paths racing its
//! locked slow paths (acquire, release, cancel, close, resize), and the
//! cancel token's cancel racing waiters and children; on two or three
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

/// A waiter on another thread always sees a cancel, whatever the interleaving.
#[test]
fn cancel_vs_wait() {
    loom::model(|| {
        let token = portasync::CancelToken::new();
        let waiting = token.clone();
        let waiter = thread::spawn(move || loom::future::block_on(waiting.cancelled()));
        token.cancel();
        waiter.join().unwrap();
    });
}

/// A child made concurrently with its parent's cancel is cancelled too.
#[test]
fn cancel_vs_child() {
    loom::model(|| {
        let token = portasync::CancelToken::new();
        let parent = token.clone();
        let maker = thread::spawn(move || {
            let child = parent.child();
            loom::future::block_on(child.cancelled());
        });
        token.cancel();
        maker.join().unwrap();
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
        let dropper = thread::spawn(move || drop(child));
        token.cancel();
        dropper.join().unwrap();
        assert!(kept.is_cancelled());
    });
}
