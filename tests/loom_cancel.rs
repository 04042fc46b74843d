//! Loom models of `CancelToken` (to merge into tests/loom.rs).
#![cfg(portasync_loom)]

use loom::future::block_on;
use loom::thread;
use portasync::CancelToken;

/// A waiter on another thread always sees a cancel, whatever the interleaving.
#[test]
fn cancel_vs_wait() {
    loom::model(|| {
        let token = CancelToken::new();
        let waiting = token.clone();
        let waiter = thread::spawn(move || block_on(waiting.cancelled()));
        token.cancel();
        waiter.join().unwrap();
    });
}

/// A child made concurrently with its parent's cancel is cancelled too.
#[test]
fn cancel_vs_child() {
    loom::model(|| {
        let token = CancelToken::new();
        let parent = token.clone();
        let maker = thread::spawn(move || {
            let child = parent.child();
            block_on(child.cancelled());
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
        let token = CancelToken::new();
        let child = token.child();
        let kept = child.clone();
        let dropper = thread::spawn(move || drop(child));
        token.cancel();
        dropper.join().unwrap();
        assert!(kept.is_cancelled());
    });
}
