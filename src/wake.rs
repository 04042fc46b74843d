//! Waking several tasks at once, when any of their wakers may panic.
//!
//! A waker is the caller's code. Woken in a plain loop, one that panics
//! would drop the wakers after it unwoken, and their tasks would wait for
//! good on a state that has already moved on: a permit granted, a token
//! cancelled, a deadline passed. So every waker runs, and the first panic
//! goes on once they all have.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Waker;

/// A panic's payload.
pub(crate) type Panic = Box<dyn Any + Send>;

/// Wakes every one of `wakers`, in order, even if some panic; returns the
/// first panic's payload (later ones are dropped), for the caller to resume
/// once its own work is done.
#[must_use = "a waker's panic is returned to be resumed"]
pub(crate) fn wake_each(wakers: impl IntoIterator<Item = Waker>) -> Option<Panic> {
    let mut first = None;
    for waker in wakers {
        keep_first(
            &mut first,
            catch_unwind(AssertUnwindSafe(|| waker.wake())).err(),
        );
    }
    first
}

/// Keeps in `first` the first panic it is given; drops the later ones.
pub(crate) fn keep_first(first: &mut Option<Panic>, panic: Option<Panic>) {
    match (first.is_some(), panic) {
        (false, panic) => *first = panic,
        (true, Some(later)) => crate::rt::discard(later),
        (true, None) => {}
    }
}

/// Wakes every one of `wakers`, in order, even if some panic; then resumes
/// the first panic.
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    resume(wake_each(wakers));
}

/// Resumes a panic that [`wake_each`] returned, if any.
pub(crate) fn resume(panic: Option<Panic>) {
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

#[cfg(all(test, not(portasync_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// Counts its wakes; panics after counting if `panics` is set.
    struct Counted {
        woken: AtomicUsize,
        panics: bool,
    }

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.woken.fetch_add(1, Ordering::SeqCst);
            if self.panics {
                panic!("a waker that panics");
            }
        }
    }

    fn counted(panics: bool) -> Arc<Counted> {
        Arc::new(Counted {
            woken: AtomicUsize::new(0),
            panics,
        })
    }

    #[test]
    fn every_waker_runs_and_the_first_panic_goes_on() {
        let all = [
            counted(false),
            counted(true),
            counted(false),
            counted(true),
            counted(false),
        ];
        let wakers: Vec<Waker> = all.iter().map(|c| Waker::from(c.clone())).collect();
        let panic = std::panic::catch_unwind(|| wake_all(wakers)).unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"a waker that panics"));
        for c in &all {
            assert_eq!(c.woken.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn no_panic_returns_none() {
        let c = counted(false);
        assert!(wake_each([Waker::from(c.clone()), Waker::from(c.clone())]).is_none());
        assert_eq!(c.woken.load(Ordering::SeqCst), 2);
    }
}
