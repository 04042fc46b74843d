//! One task handle for every executor.
//!
//! tokio's handle already does what ours promises except cancel-on-drop, so it
//! is used as it is. smol's and async-std's handles (async-task underneath)
//! can only be cancelled by value, so they sit in a small lock inside ours:
//! `abort(&self)` takes the native handle out and starts its cancellation,
//! which costs an allocation on that path only; spawning and joining pay for
//! nothing but the lock. Their futures run inside [`Supervised`], which turns
//! a panic, of a poll or of the future's destructor, into a [`JoinError`]. A
//! blocking closure that is already running cannot be stopped on any
//! runtime, so an aborted handle gives up on it at once; one that has not
//! started never will.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// Why a task produced no value: it was cancelled, or it panicked.
///
/// A panic inside a spawned task never unwinds into an executor thread, on any
/// runtime: it is caught and delivered here, to whoever awaits the handle.
/// That includes a panic of the task's destructors as its finished future is
/// dropped. Once a handle was aborted before its task finished, it resolves
/// to `Cancelled` whatever the task does on its way out: a panic then is
/// caught too, and left to the panic hook, which has reported it. So is the
/// panic of an output nobody takes (its task aborted or detached) as it is
/// dropped.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let handle = portasync::spawn(async { panic!("boom") });
///     let err = handle.await.unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// });
/// ```
#[derive(thiserror::Error)]
pub enum JoinError {
    /// The task was aborted, or its handle dropped, before it finished; or
    /// its executor shut down first.
    #[error("task was cancelled")]
    Cancelled,
    /// The task panicked; the payload is what `panic!` was given.
    #[error("task panicked{}", .0.message_suffix())]
    Panicked(PanicPayload),
}

impl JoinError {
    #[cfg_attr(
        not(any(feature = "smol", feature = "tokio", feature = "async-std")),
        allow(dead_code)
    )]
    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> Self {
        Self::Panicked(PanicPayload(Mutex::new(payload)))
    }

    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(portasync::JoinError::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!portasync::JoinError::Cancelled.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// The panic payload, to inspect or to pass to
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the task was cancelled rather than panicked; use
    /// [`try_into_panic`](Self::try_into_panic) when either can happen.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let err = portasync::spawn(async { panic!("boom") }).await.unwrap_err();
    ///     let payload = err.into_panic();
    ///     assert_eq!(*payload.downcast::<&str>().unwrap(), "boom");
    /// });
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(_) => panic!("JoinError::into_panic called on a cancelled task"),
        }
    }

    /// The panic payload, or the error itself if the task was cancelled.
    ///
    /// # Errors
    ///
    /// Gives back `self` when it is [`JoinError::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// let err = portasync::JoinError::Cancelled;
    /// assert!(err.try_into_panic().unwrap_err().is_cancelled());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, Self> {
        match self {
            Self::Panicked(payload) => Ok(payload.into_inner()),
            Self::Cancelled => Err(self),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cancelled => f.write_str("Cancelled"),
            Self::Panicked(payload) => f.debug_tuple("Panicked").field(payload).finish(),
        }
    }
}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> Self {
        std::io::Error::other(err)
    }
}

/// A panic payload, held so that [`JoinError`] is `Sync`: the payload itself
/// is only `Send`, so it is reachable by value only ([`into_inner`](Self::into_inner)).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let err = portasync::spawn(async { panic!("boom") }).await.unwrap_err();
///     if let portasync::JoinError::Panicked(payload) = err {
///         assert_eq!(payload.message(), Some("boom".to_owned()));
///         std::mem::drop(payload.into_inner());
///     }
/// });
/// ```
pub struct PanicPayload(Mutex<Box<dyn Any + Send + 'static>>);

impl PanicPayload {
    /// The payload `panic!` was given.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let err = portasync::spawn(async { panic!("boom") }).await.unwrap_err();
    ///     let portasync::JoinError::Panicked(payload) = err else { unreachable!() };
    ///     assert_eq!(*payload.into_inner().downcast::<&str>().unwrap(), "boom");
    /// });
    /// ```
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        self.0
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The panic message, when the payload is a string (as it is for
    /// `panic!("...")` with or without format arguments).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let err = portasync::spawn(async { panic!("boom") }).await.unwrap_err();
    ///     let portasync::JoinError::Panicked(payload) = err else { unreachable!() };
    ///     assert_eq!(payload.message().as_deref(), Some("boom"));
    /// });
    /// ```
    pub fn message(&self) -> Option<String> {
        let payload = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        }
    }

    fn message_suffix(&self) -> String {
        self.message().map(|m| format!(": {m}")).unwrap_or_default()
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(message) => fmt::Debug::fmt(&message, f),
            None => f.write_str("Any { .. }"),
        }
    }
}

/// An owned handle to a spawned task, the same type on every runtime.
///
/// Awaiting it gives the task's output, or a [`JoinError`] if the task was
/// cancelled or panicked.
///
/// - **Dropping the handle cancels the task**, on every runtime (tokio and
///   async-std detach by default; portasync does not). Call
///   [`detach`](Self::detach) to let a task run unobserved.
/// - [`abort`](Self::abort) asks the task to stop and returns at once; the
///   handle then resolves to [`JoinError::Cancelled`] once the task's future
///   has been dropped, or to its output if it had already finished.
/// - A panic in the task, or in its destructors as its finished future is
///   dropped, is caught and delivered as [`JoinError::Panicked`].
///
/// For a task from [`Spawn::spawn_blocking`](crate::rt::Spawn::spawn_blocking),
/// aborting or dropping the handle keeps the closure from starting; a closure
/// that is already running cannot be interrupted on any runtime: it runs to
/// its end, its result is discarded, and an aborted handle resolves at once.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let handle = portasync::spawn(async { 1 + 1 });
///     assert_eq!(handle.await.unwrap(), 2);
/// });
/// ```
///
/// # Cancel safety
///
/// Dropping a `JoinHandle` that is being awaited cancels the task (see above).
/// To stop waiting without cancelling, keep the handle, or detach it.
#[must_use = "dropping a JoinHandle cancels its task; call `.detach()` to let it run"]
pub struct JoinHandle<T> {
    state: State<T>,
}

/// What `abort` leaves behind of a native handle that cancels only by value.
#[cfg(any(feature = "smol", feature = "async-std"))]
type Cancelling<T> = Pin<Box<dyn Future<Output = Option<Outcome<T>>> + Send>>;

/// A native handle that can only be cancelled by value, behind a lock so
/// that `abort(&self)` can take it.
#[cfg(any(feature = "smol", feature = "async-std"))]
enum Slot<H, T> {
    Running(H),
    /// Cancellation started: resolves once the executor dropped the future.
    /// With the waker of the handle's last poll: the native future keeps
    /// only the waker it was last polled with, so a look that is not a
    /// poll (`is_finished`) polls with that one again rather than
    /// replacing it.
    Cancelling(Cancelling<T>, Option<std::task::Waker>),
    /// Done, the output not yet taken; `None`: cancelled, or an aborted
    /// blocking closure we stopped waiting for.
    Stopped(Option<Outcome<T>>),
}

enum State<T> {
    /// Spawned on smol (`blocking: false`), or a closure on the `blocking`
    /// pool that smol and async-std share (`blocking: true`).
    #[cfg(any(feature = "smol", feature = "async-std"))]
    Task {
        slot: Mutex<Slot<async_task::FallibleTask<Outcome<T>>, T>>,
        blocking: bool,
    },
    /// `stopped`: aborted before it finished, so that it resolves to
    /// `Cancelled` whatever it did after (tokio keeps the output of a poll
    /// that an abort lands in, and reports a destructor's panic as the
    /// task's; smol and async-std do neither).
    #[cfg(feature = "tokio")]
    Tokio {
        handle: ::tokio::task::JoinHandle<T>,
        stopped: AtomicBool,
    },
    /// `None` means aborted before it started. `stopped`: aborted before
    /// it finished, so given up at once, whenever it ends.
    #[cfg(feature = "tokio")]
    TokioBlocking {
        handle: ::tokio::task::JoinHandle<Option<T>>,
        aborted: std::sync::Arc<AtomicBool>,
        stopped: AtomicBool,
    },
    /// async-std's handle detaches when dropped and cancels only by value
    /// (from an `async fn`), so its task watches an abort flag instead, and
    /// hands its output over through `ctl` (async-std's own handle only
    /// keeps the task detached when dropped).
    #[cfg(feature = "async-std")]
    AsyncStd {
        /// Only held: dropped with ours, it detaches the task, and the task's
        /// memory is freed here rather than on an executor thread.
        _task: async_std::task::JoinHandle<()>,
        ctl: std::sync::Arc<Ctl<T>>,
    },
    /// Resolved or detached.
    Done,
    /// Keeps `T` used when no runtime feature is enabled (no handle can be
    /// made then).
    #[allow(dead_code)]
    Never(std::convert::Infallible, PhantomData<fn() -> T>),
}

#[cfg(any(feature = "smol", feature = "async-std"))]
fn lock<S>(slot: &Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    // Nothing panics while the lock is held but a user's waker; the slot is
    // consistent either way.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Send + 'static> JoinHandle<T> {
    /// Asks the task to stop and returns at once, without waiting.
    ///
    /// The handle then resolves to [`JoinError::Cancelled`], or to the
    /// task's output if it had finished before this call. An abort that
    /// lands while the task is being polled cancels it even if that poll
    /// finishes it (the output is dropped), on every runtime. Aborting a
    /// finished or already aborted task does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let handle = portasync::spawn(std::future::pending::<()>());
    ///     handle.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        match &self.state {
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { slot, blocking } => {
                let mut slot = lock(slot);
                if !matches!(*slot, Slot::Running(_)) {
                    return; // aborted already
                }
                let Slot::Running(task) = std::mem::replace(&mut *slot, Slot::Stopped(None)) else {
                    unreachable!("checked just above")
                };
                if *blocking && !task.is_finished() {
                    // Dropping it keeps a queued closure from starting; a
                    // running one finishes unobserved.
                    drop(slot);
                    drop(task);
                } else {
                    *slot = start_cancel(Box::pin(task.cancel()));
                }
            }
            #[cfg(feature = "tokio")]
            State::Tokio { handle, stopped } => {
                if !handle.is_finished() {
                    stopped.store(true, Ordering::Release);
                }
                handle.abort();
            }
            #[cfg(feature = "tokio")]
            State::TokioBlocking {
                handle,
                aborted,
                stopped,
            } => {
                if !handle.is_finished() {
                    stopped.store(true, Ordering::Release);
                }
                aborted.store(true, Ordering::Release);
            }
            #[cfg(feature = "async-std")]
            State::AsyncStd { ctl, .. } => ctl.abort(),
            State::Done | State::Never(..) => {}
        }
    }
}

/// Polls a native `cancel()` once so that cancelling starts now, not when
/// the handle is next polled. A finished task's output is kept.
#[cfg(any(feature = "smol", feature = "async-std"))]
fn start_cancel<H, T>(cancel: Cancelling<T>) -> Slot<H, T> {
    let mut slot = Slot::Cancelling(cancel, None);
    poll_cancel_now(&mut slot);
    slot
}

/// Whether a cancellation in progress has completed; its output is kept.
#[cfg(any(feature = "smol", feature = "async-std"))]
fn poll_cancel_now<H, T>(slot: &mut Slot<H, T>) -> bool {
    match slot {
        Slot::Running(_) => false,
        Slot::Stopped(_) => true,
        Slot::Cancelling(cancel, waker) => {
            let waker = waker.as_ref().unwrap_or(std::task::Waker::noop());
            match cancel.as_mut().poll(&mut Context::from_waker(waker)) {
                Poll::Ready(output) => {
                    *slot = Slot::Stopped(output);
                    true
                }
                Poll::Pending => false,
            }
        }
    }
}

impl<T> JoinHandle<T> {
    /// Lets the task run to its end with nobody watching; its output is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let (tx, rx) = async_channel::bounded(1);
    ///     portasync::spawn(async move { tx.send(7).await.unwrap() }).detach();
    ///     assert_eq!(rx.recv().await.unwrap(), 7);
    /// });
    /// ```
    pub fn detach(mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { slot, .. } => {
                if let Slot::Running(task) = slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                    task.detach();
                }
            }
            // tokio and async-std handles detach when dropped.
            other => drop(other),
        }
    }

    /// Whether awaiting the handle would resolve at once: the task completed
    /// or panicked, or it was aborted and has stopped. Right after
    /// [`abort`](Self::abort) it can still be `false` for a moment, until
    /// the executor has dropped the task.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let (tx, rx) = async_channel::bounded::<()>(1);
    ///     let handle = portasync::spawn(async move { rx.recv().await.ok() });
    ///     assert!(!handle.is_finished());
    ///     drop(tx);
    ///     handle.await.unwrap();
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.state {
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { slot, .. } => match &mut *lock(slot) {
                Slot::Running(task) => task.is_finished(),
                other => poll_cancel_now(other),
            },
            #[cfg(feature = "tokio")]
            State::Tokio { handle, .. } => handle.is_finished(),
            #[cfg(feature = "tokio")]
            State::TokioBlocking {
                handle, stopped, ..
            } => stopped.load(Ordering::Acquire) || handle.is_finished(),
            #[cfg(feature = "async-std")]
            State::AsyncStd { ctl, .. } => ctl.is_finished(),
            State::Done => true,
            State::Never(never, _) => match *never {},
        }
    }
}

/// Polls a native handle kept in a [`Slot`].
#[cfg(any(feature = "smol", feature = "async-std"))]
fn poll_slot<H, T>(slot: &Mutex<Slot<H, T>>, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>
where
    H: Future<Output = Option<Outcome<T>>> + Unpin,
{
    let output = match &mut *lock(slot) {
        Slot::Running(handle) => std::task::ready!(Pin::new(handle).poll(cx)),
        Slot::Cancelling(cancel, waker) => {
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
            std::task::ready!(cancel.as_mut().poll(cx))
        }
        Slot::Stopped(output) => output.take(),
    };
    // `None`: cancelled, or the executor dropped the task unfinished.
    Poll::Ready(output.map_or(Err(JoinError::Cancelled), Outcome::take))
}

/// A task's result while the executor holds it, until its handle takes it.
/// Dropped untaken (an abort landed in the last poll, or the handle was
/// dropped or detached), it drops the result under `catch_unwind`: the
/// executor drops it where a panic would abort the process (async-task
/// does so under an abort-on-panic guard).
#[cfg(any(feature = "smol", feature = "async-std"))]
pub(crate) struct Outcome<T>(Option<Result<T, JoinError>>);

#[cfg(any(feature = "smol", feature = "async-std"))]
impl<T> Outcome<T> {
    pub(crate) fn new(result: Result<T, JoinError>) -> Self {
        Self(Some(result))
    }

    fn take(mut self) -> Result<T, JoinError> {
        self.0.take().unwrap_or(Err(JoinError::Cancelled))
    }
}

#[cfg(any(feature = "smol", feature = "async-std"))]
impl<T> Drop for Outcome<T> {
    fn drop(&mut self) {
        if let Some(result) = self.0.take() {
            discard(result);
        }
    }
}

/// Drops `value`, catching a panic of its destructor (the panic hook has
/// reported it): for values nobody will see, dropped where a panic must
/// not unwind. That panic's payload is dropped the same way; should its
/// destructor panic too, the payload of that is forgotten (a leak in that
/// odd case, where std would abort the process).
pub(crate) fn discard<V>(value: V) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// Drops a future where it is pinned; a panic of its destructor is returned
/// as the error.
pub(crate) fn drop_in_place<F>(mut future: Pin<&mut Option<F>>) -> Result<(), JoinError> {
    // A panicking destructor still leaves `None` in place: an assignment
    // writes the new value on unwinding too.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.set(None)))
        .map_err(JoinError::panicked)
}

// The handle never pins `T`: it only ever moves it out once ready.
impl<T> Unpin for JoinHandle<T> {}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    // With no runtime feature every arm is uninhabited.
    #[cfg_attr(
        not(any(feature = "smol", feature = "tokio", feature = "async-std")),
        allow(unreachable_code, unused_variables)
    )]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let output = match &mut self.state {
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { slot, .. } => std::task::ready!(poll_slot(slot, cx)),
            #[cfg(feature = "tokio")]
            State::Tokio { handle, stopped } => {
                let output = std::task::ready!(Pin::new(handle).poll(cx)).map_err(from_tokio);
                if stopped.load(Ordering::Acquire) {
                    // Nobody sees it: its destructor must not unwind into
                    // the caller.
                    discard(output);
                    Err(JoinError::Cancelled)
                } else {
                    output
                }
            }
            #[cfg(feature = "tokio")]
            State::TokioBlocking {
                handle, stopped, ..
            } => {
                if stopped.load(Ordering::Acquire) {
                    Err(JoinError::Cancelled)
                } else {
                    std::task::ready!(Pin::new(handle).poll(cx))
                        .map_err(from_tokio)
                        .and_then(|value| value.ok_or(JoinError::Cancelled))
                }
            }
            #[cfg(feature = "async-std")]
            State::AsyncStd { ctl, .. } => std::task::ready!(ctl.poll_output(cx))
                .map_or(Err(JoinError::Cancelled), Outcome::take),
            State::Done => panic!("JoinHandle polled after it resolved"),
            State::Never(never, _) => match *never {},
        };
        // What is left (a finished native handle, or a blocking closure we
        // gave up on) must be let go without cancelling anything.
        self.detach_in_place();
        Poll::Ready(output)
    }
}

impl<T> JoinHandle<T> {
    fn detach_in_place(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Done);
        JoinHandle { state }.detach();
    }
}

#[cfg(all(test, portasync_loom))]
impl<T> JoinHandle<T> {
    /// A handle to nothing, for a model's runtime whose tasks are loom
    /// threads that nobody joins.
    pub(crate) fn detached() -> Self {
        Self { state: State::Done }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        match &self.state {
            // Dropping an async-task handle cancels natively: the executor
            // drops the future, and a blocking closure that has not started
            // never will. async-std's handle detaches when dropped, so its
            // task is told to stop, without waiting.
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { .. } => {}
            #[cfg(feature = "tokio")]
            State::Tokio { handle, .. } => handle.abort(),
            #[cfg(feature = "tokio")]
            State::TokioBlocking { aborted, .. } => aborted.store(true, Ordering::Release),
            #[cfg(feature = "async-std")]
            State::AsyncStd { ctl, .. } => ctl.abort(),
            State::Done | State::Never(..) => {}
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(feature = "tokio")]
fn from_tokio(err: ::tokio::task::JoinError) -> JoinError {
    match err.try_into_panic() {
        Ok(payload) => JoinError::panicked(payload),
        Err(_) => JoinError::Cancelled,
    }
}

#[cfg(any(feature = "tokio", feature = "async-std"))]
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// What an async-std handle shares with its task: an abort flag, the
/// task's waker so that an abort is seen at once, and the output with a
/// finished flag set only once the output is in (async-std's own handle
/// learns of the output after the future is dropped, so a flag set by the
/// future's end could read finished while the handle still had to wait).
#[cfg(feature = "async-std")]
pub(crate) struct Ctl<T> {
    aborted: AtomicBool,
    /// Aborted before it finished: the handle gives `Cancelled` whatever
    /// the task delivers after (as on tokio and smol).
    stopped: AtomicBool,
    finished: AtomicBool,
    waker: atomic_waker::AtomicWaker,
    /// The handle's waker, woken once finished.
    joiner: atomic_waker::AtomicWaker,
    output: Mutex<Option<Outcome<T>>>,
}

#[cfg(feature = "async-std")]
impl<T> Ctl<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            aborted: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            waker: atomic_waker::AtomicWaker::new(),
            joiner: atomic_waker::AtomicWaker::new(),
            output: Mutex::new(None),
        })
    }

    fn abort(&self) {
        if !self.is_finished() {
            self.stopped.store(true, Ordering::Release);
        }
        self.aborted.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The output once finished, registering the handle's waker before it
    /// looks (a finish in between wakes it); `None` inside for a task that
    /// ended without one (aborted, or dropped by its executor).
    fn poll_output(&self, cx: &Context<'_>) -> Poll<Option<Outcome<T>>> {
        if !self.is_finished() {
            self.joiner.register(cx.waker());
            if !self.is_finished() {
                return Poll::Pending;
            }
        }
        let output = lock(&self.output).take();
        if self.stopped.load(Ordering::Acquire) {
            drop(output); // an `Outcome`: a panic is caught
            return Poll::Ready(None);
        }
        Poll::Ready(output)
    }
}

/// The flags a [`Supervised`] future on async-std reads and sets, whatever
/// its output type.
#[cfg(feature = "async-std")]
pub(crate) trait Flags: Send + Sync {
    /// Registers the task's waker, then reports whether to stop. In that
    /// order, an abort between the two cannot go unnoticed.
    fn poll_aborted(&self, cx: &Context<'_>) -> bool;
    fn is_aborted(&self) -> bool;
    /// Marks the task finished (its output, if any, is in) and wakes the
    /// handle.
    fn finish(&self);
}

#[cfg(feature = "async-std")]
impl<T: Send> Flags for Ctl<T> {
    fn poll_aborted(&self, cx: &Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.aborted.load(Ordering::Acquire)
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.joiner.wake();
    }
}

#[cfg(feature = "async-std")]
pin_project_lite::pin_project! {
    /// An async-std task: puts the output in `ctl`, where the handle takes
    /// it; the task is marked finished once its future is dropped.
    pub(crate) struct Deliver<F: Future> {
        #[pin]
        inner: Supervised<F>,
        ctl: Arc<Ctl<F::Output>>,
    }
}

#[cfg(feature = "async-std")]
impl<F: Future> Deliver<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(future: F, ctl: Arc<Ctl<F::Output>>) -> Self {
        let flags: Arc<dyn Flags> = ctl.clone();
        Self {
            inner: Supervised::with_flags(future, flags),
            ctl,
        }
    }
}

#[cfg(feature = "async-std")]
impl<F: Future> Future for Deliver<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        *lock(&this.ctl.output) = Some(output);
        Poll::Ready(())
    }
}

#[cfg(any(feature = "smol", feature = "async-std"))]
mod supervised {
    use super::{JoinError, JoinHandle, Outcome, Slot, State, drop_in_place};
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    #[cfg(feature = "async-std")]
    type Control = Option<std::sync::Arc<dyn super::Flags>>;
    #[cfg(not(feature = "async-std"))]
    type Control = Option<std::convert::Infallible>;

    /// Marks the async-std task finished when dropped. Declared after the
    /// future in [`Supervised`], so it drops after it: a task reads as
    /// finished only once its future is gone, however it ended (done,
    /// aborted, or dropped unpolled by the executor).
    struct FinishOnDrop(Control);

    impl Drop for FinishOnDrop {
        fn drop(&mut self) {
            #[cfg(feature = "async-std")]
            if let Some(ctl) = &self.0 {
                ctl.finish();
            }
        }
    }

    pin_project_lite::pin_project! {
        /// A spawned future as smol and async-std run it: a panic becomes a
        /// [`JoinError`] instead of unwinding into the executor thread, and
        /// so does a panic of the future's destructor (async-task aborts
        /// the process on a panic while it drops a future, so the future is
        /// dropped here first). On async-std it also stops when its handle
        /// aborts.
        pub(crate) struct Supervised<F> {
            // `None` once dropped.
            #[pin]
            future: Option<F>,
            ctl: FinishOnDrop,
        }

        impl<F> PinnedDrop for Supervised<F> {
            fn drop(this: Pin<&mut Self>) {
                // Dropped unfinished: cancelled, or its executor shut down.
                // A panic on the way is caught; the handle, if any, resolves
                // to `Cancelled` (the panic hook has reported the panic).
                drop(drop_in_place(this.project().future));
            }
        }
    }

    impl<F: Future> Supervised<F> {
        /// smol: the native handle cancels, so only panics need catching.
        #[cfg(feature = "smol")]
        pub(crate) fn new(future: F) -> Self {
            Self {
                future: Some(future),
                ctl: FinishOnDrop(None),
            }
        }

        #[cfg(feature = "async-std")]
        pub(crate) fn with_flags(future: F, flags: std::sync::Arc<dyn super::Flags>) -> Self {
            Self {
                future: Some(future),
                ctl: FinishOnDrop(Some(flags)),
            }
        }
    }

    impl<F: Future> Future for Supervised<F> {
        type Output = Outcome<F::Output>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let mut slot = this.future;
            let Some(future) = slot.as_mut().as_pin_mut() else {
                // Executors never poll a task again once it returned
                // `Ready`; should one, there is nothing more to give.
                return Poll::Pending;
            };
            #[cfg(feature = "async-std")]
            if this.ctl.0.as_ref().is_some_and(|ctl| ctl.poll_aborted(cx)) {
                // Stops here, dropping the future now, before the handle
                // sees anything: aborted before it finished.
                drop(drop_in_place(slot));
                return Poll::Ready(Outcome::new(Err(JoinError::Cancelled)));
            }
            let output = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(value)) => Ok(value),
                Err(payload) => Err(JoinError::panicked(payload)),
            };
            // Dropped now, where a panic can still be caught: a finished
            // future may hold more (an unfinished branch of a `select`).
            let dropped = drop_in_place(slot);
            let result = match (output, dropped) {
                // The first panic is the one kept.
                (Err(first), _) => Err(first),
                (Ok(value), Err(panic)) => {
                    super::discard(value);
                    Err(panic)
                }
                (Ok(value), Ok(())) => Ok(value),
            };
            #[cfg(feature = "async-std")]
            if this.ctl.0.as_ref().is_some_and(|ctl| ctl.is_aborted()) {
                // Aborted while this poll ran, before it finished: as on
                // smol, whose handle then finds the task closed.
                super::discard(result);
                return Poll::Ready(Outcome::new(Err(JoinError::Cancelled)));
            }
            Poll::Ready(Outcome::new(result))
        }
    }

    impl<T> JoinHandle<T> {
        pub(crate) fn from_task(task: async_task::Task<Outcome<T>>, blocking: bool) -> Self {
            let slot = Mutex::new(Slot::Running(task.fallible()));
            Self {
                state: State::Task { slot, blocking },
            }
        }

        #[cfg(feature = "async-std")]
        pub(crate) fn from_async_std(
            handle: async_std::task::JoinHandle<()>,
            ctl: std::sync::Arc<super::Ctl<T>>,
        ) -> Self {
            Self {
                state: State::AsyncStd { _task: handle, ctl },
            }
        }

        /// A closure on the `blocking` pool, which smol and async-std share.
        /// Dropping its task before it starts keeps it from running.
        pub(crate) fn unblock<F>(f: F) -> Self
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            let task = blocking::unblock(move || {
                Outcome::new(catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked))
            });
            Self::from_task(task, true)
        }
    }
}

#[cfg(any(feature = "smol", feature = "async-std"))]
pub(crate) use supervised::Supervised;

cfg_feature! { "tokio" =>
    impl<T> JoinHandle<T> {
        pub(crate) fn from_tokio(handle: ::tokio::task::JoinHandle<T>) -> Self {
            Self { state: State::Tokio { handle, stopped: AtomicBool::new(false) } }
        }

        /// A closure on tokio's blocking pool; it does not start once its
        /// handle was aborted or dropped (tokio alone would still run it).
        pub(crate) fn tokio_blocking<F>(handle: &::tokio::runtime::Handle, f: F) -> Self
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            let aborted = Arc::new(AtomicBool::new(false));
            let flag = aborted.clone();
            let handle = handle.spawn_blocking(move || (!flag.load(Ordering::Acquire)).then(f));
            Self {
                state: State::TokioBlocking { handle, aborted, stopped: AtomicBool::new(false) },
            }
        }
    }
}
