//! Where a scoped child leaves its output for its handle.
//!
//! One allocation per child, shared by the child's wrapper (the sending
//! side) and the handle. The handle may wait by waker (awaiting it) or by
//! parking its thread ([`BlockingJoinHandle::join`](super::BlockingJoinHandle::join)).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;

pub(super) struct Slot<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Option<T>,
    /// The child finished (its output is in `value` until taken) or was
    /// dropped without finishing.
    done: bool,
    waker: Option<Waker>,
    parked: Option<Thread>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held; the state is consistent
        // either way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes a slot: the sending half for the child, the receiving half for its
/// handle.
pub(super) fn slot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State {
            value: None,
            done: false,
            waker: None,
            parked: None,
        }),
    });
    (Sender(slot.clone()), Receiver(slot))
}

/// The child's half. Dropping it unsent (the child was dropped before it
/// finished) tells the handle that no output will come.
pub(super) struct Sender<T>(Arc<Slot<T>>);

impl<T> Sender<T> {
    pub(super) fn send(self, value: T) {
        self.finish(Some(value));
    }

    fn finish(&self, value: Option<T>) {
        let mut state = self.0.lock();
        if state.done {
            return;
        }
        state.done = true;
        state.value = value;
        let waker = state.waker.take();
        let parked = state.parked.take();
        drop(state);
        // The parked thread first: the waker is the caller's code, and
        // should it panic, the thread has been unparked.
        if let Some(thread) = parked {
            thread.unpark();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// The handle's half.
pub(super) struct Receiver<T>(Arc<Slot<T>>);

impl<T> Receiver<T> {
    /// `Ready(None)`: the child was dropped unfinished, or the output was
    /// taken already.
    pub(super) fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.0.lock();
        if state.done {
            return Poll::Ready(state.value.take());
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Parks the thread until the child is done.
    pub(super) fn wait(&self) -> Option<T> {
        loop {
            let mut state = self.0.lock();
            if state.done {
                return state.value.take();
            }
            state.parked = Some(std::thread::current());
            drop(state);
            // A wake between the unlock and here leaves the unpark token
            // set, so this returns at once.
            std::thread::park();
        }
    }

    pub(super) fn is_finished(&self) -> bool {
        self.0.lock().done
    }
}

pin_project_lite::pin_project! {
    /// A child's future, sending its output to its handle's slot.
    ///
    /// A struct rather than an async block: if the future panics, the
    /// sender stays in place until whoever caught the panic drops this, so
    /// the handle learns of it only after the panic was recorded.
    pub(super) struct ChildTask<F: Future> {
        #[pin]
        future: F,
        sender: Option<Sender<F::Output>>,
    }
}

impl<F: Future> ChildTask<F> {
    pub(super) fn new(future: F, sender: Sender<F::Output>) -> Self {
        Self {
            future,
            sender: Some(sender),
        }
    }
}

impl<F: Future> Future for ChildTask<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let value = std::task::ready!(this.future.poll(cx));
        if let Some(sender) = this.sender.take() {
            sender.send(value);
        }
        Poll::Ready(())
    }
}
