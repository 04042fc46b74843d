//! One task handle for every executor.
//!
//! tokio's handle already does what ours promises except cancel-on-drop, so it
//! is used as it is. smol's and async-std's handles cannot abort through a
//! shared reference, so their tasks run inside [`Supervised`], which catches
//! panics and watches an abort flag in a small shared [`Ctl`]. Blocking
//! closures check the same flag before they start: a closure that is already
//! running cannot be stopped on any runtime, so an aborted handle gives up on
//! it at once.

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
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        self.0
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The panic message, when the payload is a string (as it is for
    /// `panic!("...")` with or without format arguments).
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
/// - A panic in the task is caught and delivered as [`JoinError::Panicked`].
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

enum State<T> {
    /// Spawned on smol (`blocking: false`), or a closure on the `blocking`
    /// pool that smol and async-std share (`blocking: true`).
    #[cfg(any(feature = "smol", feature = "async-std"))]
    Task {
        task: async_task::FallibleTask<Result<T, JoinError>>,
        ctl: std::sync::Arc<Ctl>,
        blocking: bool,
    },
    #[cfg(feature = "tokio")]
    Tokio(::tokio::task::JoinHandle<T>),
    /// `None` means aborted before it started.
    #[cfg(feature = "tokio")]
    TokioBlocking {
        handle: ::tokio::task::JoinHandle<Option<T>>,
        ctl: std::sync::Arc<Ctl>,
    },
    #[cfg(feature = "async-std")]
    AsyncStd {
        handle: async_std::task::JoinHandle<Result<T, JoinError>>,
        ctl: std::sync::Arc<Ctl>,
    },
    /// Resolved or detached.
    Done,
    /// Keeps `T` used when no runtime feature is enabled (no handle can be
    /// made then).
    #[allow(dead_code)]
    Never(std::convert::Infallible, PhantomData<fn() -> T>),
}

impl<T> JoinHandle<T> {
    /// Asks the task to stop and returns at once, without waiting.
    ///
    /// The handle then resolves to [`JoinError::Cancelled`], or to the
    /// task's output if it finished first. Aborting a finished or already
    /// aborted task does nothing.
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
            State::Task { ctl, .. } => ctl.abort(),
            #[cfg(feature = "tokio")]
            State::Tokio(handle) => handle.abort(),
            #[cfg(feature = "tokio")]
            State::TokioBlocking { ctl, .. } => ctl.abort(),
            #[cfg(feature = "async-std")]
            State::AsyncStd { ctl, .. } => ctl.abort(),
            State::Done | State::Never(..) => {}
        }
    }

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
            State::Task { task, .. } => task.detach(),
            // tokio and async-std handles detach when dropped.
            #[cfg(feature = "tokio")]
            State::Tokio(handle) => drop(handle),
            #[cfg(feature = "tokio")]
            State::TokioBlocking { handle, .. } => drop(handle),
            #[cfg(feature = "async-std")]
            State::AsyncStd { handle, .. } => drop(handle),
            State::Done | State::Never(..) => {}
        }
    }

    /// Whether the task has finished: completed, panicked, or stopped after
    /// an abort. It may still be `false` for a moment after
    /// [`abort`](Self::abort), until the executor has dropped the task.
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
            State::Task { task, .. } => task.is_finished(),
            #[cfg(feature = "tokio")]
            State::Tokio(handle) => handle.is_finished(),
            #[cfg(feature = "tokio")]
            State::TokioBlocking { handle, .. } => handle.is_finished(),
            #[cfg(feature = "async-std")]
            State::AsyncStd { ctl, .. } => ctl.is_finished(),
            State::Done => true,
            State::Never(never, _) => match *never {},
        }
    }
}

cfg_any_runtime! {
    impl<T> JoinHandle<T> {
        /// A closure already running on the blocking pool cannot be stopped:
        /// once aborted, its handle resolves at once unless it finished first.
        fn blocking_gave_up(ctl: &Ctl, finished: bool) -> bool {
            ctl.is_aborted() && !finished
        }
    }
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
            State::Task {
                task,
                ctl,
                blocking,
            } => {
                if *blocking && Self::blocking_gave_up(ctl, task.is_finished()) {
                    Err(JoinError::Cancelled)
                } else {
                    match Pin::new(task).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        // `None`: the executor dropped the task unfinished.
                        Poll::Ready(output) => output.unwrap_or(Err(JoinError::Cancelled)),
                    }
                }
            }
            #[cfg(feature = "tokio")]
            State::Tokio(handle) => match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(output) => output.map_err(from_tokio),
            },
            #[cfg(feature = "tokio")]
            State::TokioBlocking { handle, ctl } => {
                if Self::blocking_gave_up(ctl, handle.is_finished()) {
                    Err(JoinError::Cancelled)
                } else {
                    match Pin::new(handle).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(output) => output
                            .map_err(from_tokio)
                            .and_then(|value| value.ok_or(JoinError::Cancelled)),
                    }
                }
            }
            #[cfg(feature = "async-std")]
            State::AsyncStd { handle, .. } => match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(output) => output,
            },
            State::Done => panic!("JoinHandle polled after it resolved"),
            State::Never(never, _) => match *never {},
        };
        // Dropping the resolved handle here must not cancel anything, and a
        // blocking closure we gave up on keeps running detached.
        self.finish();
        Poll::Ready(output)
    }
}

impl<T> JoinHandle<T> {
    /// Leaves the `Done` state behind without cancelling what was there.
    fn finish(&mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { task, .. } => task.detach(),
            other => drop(other),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        match &self.state {
            // Dropping an async-task handle cancels natively: the executor
            // drops the future, and a blocking closure that has not started
            // never will.
            #[cfg(any(feature = "smol", feature = "async-std"))]
            State::Task { .. } => {}
            #[cfg(feature = "tokio")]
            State::Tokio(handle) => handle.abort(),
            #[cfg(feature = "tokio")]
            State::TokioBlocking { ctl, .. } => ctl.abort(),
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

cfg_any_runtime! {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    const ABORTED: u8 = 1;
    const FINISHED: u8 = 2;

    /// What a handle shares with its task when the executor's own handle
    /// cannot abort through `&self`: an abort flag, a finished flag, and the
    /// task's waker so an abort is seen at once.
    #[derive(Default)]
    pub(crate) struct Ctl {
        state: AtomicU8,
        #[cfg(any(feature = "smol", feature = "async-std"))]
        waker: atomic_waker::AtomicWaker,
    }

    impl Ctl {
        pub(crate) fn new() -> Arc<Self> {
            Arc::default()
        }

        pub(crate) fn abort(&self) {
            self.state.fetch_or(ABORTED, Ordering::AcqRel);
            #[cfg(any(feature = "smol", feature = "async-std"))]
            self.waker.wake();
        }

        pub(crate) fn is_aborted(&self) -> bool {
            self.state.load(Ordering::Acquire) & ABORTED != 0
        }

        #[cfg(feature = "async-std")]
        fn is_finished(&self) -> bool {
            self.state.load(Ordering::Acquire) & FINISHED != 0
        }

        #[cfg_attr(not(any(feature = "smol", feature = "async-std")), allow(dead_code))]
        fn set_finished(&self) {
            self.state.fetch_or(FINISHED, Ordering::AcqRel);
        }

        /// Registers the task's waker, then reports whether to stop. In that
        /// order, an abort between the two cannot go unnoticed.
        #[cfg(any(feature = "smol", feature = "async-std"))]
        fn poll_aborted(&self, cx: &Context<'_>) -> bool {
            self.waker.register(cx.waker());
            self.is_aborted()
        }
    }

    /// Runs a blocking closure unless its handle was aborted before it
    /// started. Panics are left to the caller's pool to catch.
    #[cfg(feature = "tokio")]
    pub(crate) fn unless_aborted<T>(ctl: &Ctl, f: impl FnOnce() -> T) -> Option<T> {
        (!ctl.is_aborted()).then(f)
    }

    impl<T> JoinHandle<T> {
        #[cfg(feature = "tokio")]
        pub(crate) fn from_tokio(handle: ::tokio::task::JoinHandle<T>) -> Self {
            Self { state: State::Tokio(handle) }
        }

        #[cfg(feature = "tokio")]
        pub(crate) fn from_tokio_blocking(
            handle: ::tokio::task::JoinHandle<Option<T>>,
            ctl: Arc<Ctl>,
        ) -> Self {
            Self { state: State::TokioBlocking { handle, ctl } }
        }
    }
}

#[cfg(any(feature = "smol", feature = "async-std"))]
mod supervised {
    use super::{Ctl, JoinError, JoinHandle, State};
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    pin_project_lite::pin_project! {
        /// A spawned future as smol and async-std run it: stops when its
        /// handle aborts, and turns a panic into a [`JoinError`] instead of
        /// unwinding into the executor thread.
        pub(crate) struct Supervised<F> {
            #[pin]
            future: F,
            ctl: Arc<Ctl>,
        }
    }

    impl<F: Future> Supervised<F> {
        pub(crate) fn new(future: F, ctl: Arc<Ctl>) -> Self {
            Self { future, ctl }
        }
    }

    impl<F: Future> Future for Supervised<F> {
        type Output = Result<F::Output, JoinError>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            if this.ctl.poll_aborted(cx) {
                // The executor drops the inner future as soon as this
                // returns, before the handle sees the output.
                return Poll::Ready(Err(JoinError::Cancelled));
            }
            let future = this.future;
            let output = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(value)) => Ok(value),
                Err(payload) => Err(JoinError::panicked(payload)),
            };
            this.ctl.set_finished();
            Poll::Ready(output)
        }
    }

    impl<T> JoinHandle<T> {
        pub(crate) fn from_task(
            task: async_task::Task<Result<T, JoinError>>,
            ctl: Arc<Ctl>,
            blocking: bool,
        ) -> Self {
            Self {
                state: State::Task {
                    task: task.fallible(),
                    ctl,
                    blocking,
                },
            }
        }

        #[cfg(feature = "async-std")]
        pub(crate) fn from_async_std(
            handle: async_std::task::JoinHandle<Result<T, JoinError>>,
            ctl: Arc<Ctl>,
        ) -> Self {
            Self {
                state: State::AsyncStd { handle, ctl },
            }
        }

        /// A closure on the `blocking` pool, which smol and async-std share.
        pub(crate) fn unblock<F>(f: F) -> Self
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            let ctl = Ctl::new();
            let flag = ctl.clone();
            let task = blocking::unblock(move || {
                if flag.is_aborted() {
                    return Err(JoinError::Cancelled);
                }
                catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked)
            });
            Self::from_task(task, ctl, true)
        }
    }
}

#[cfg(any(feature = "smol", feature = "async-std"))]
pub(crate) use supervised::Supervised;
