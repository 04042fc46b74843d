//! `scope_blocking`: parallel children that borrow the caller's stack.
//!
//! A child's future borrows for `'scope`, but [`Spawn::spawn`] takes only
//! `'static` futures, so its lifetime is erased (in `scope/raw.rs`, the
//! one module of `scope` with `unsafe`: `Erased::new`). That is sound
//! because of how [`scope_blocking`] is built: every erased future is
//! counted, counts itself down only once it has been dropped, and
//! `scope_blocking` does not return or unwind before the count is zero. The
//! wait is on its own stack frame, which the caller cannot skip, leak or
//! forget: this is the shape of `std::thread::scope`.

use super::raw::Erased;
use super::slot::{self, ChildTask, Receiver};
use crate::rt::{JoinHandle, Spawn};
use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

type Panic = Box<dyn Any + Send>;

/// Runs `body` with a [`BlockingScope`] whose children run in parallel on
/// `rt`'s threads and may borrow anything that outlives this call, then
/// blocks until every child has finished; returns the body's output.
///
/// This is `std::thread::scope` with tasks instead of threads: children are
/// futures spawned through [`Spawn::spawn`], so they share the runtime's
/// threads and may await. For borrowing children inside async code, use
/// [`scope`](crate::scope), which does not block.
///
/// # Blocking
///
/// The call blocks its thread until every child is done. Do not call it on
/// an executor thread: a blocked worker cannot run the children it waits
/// for, which can deadlock (always on a single-threaded executor). Call it
/// from `main`, a `std::thread`, or the blocking pool of smol or async-std
/// (`spawn_blocking`). These cases are detected and panic at once instead
/// of hanging:
///
/// - inside a child of another `scope_blocking`, on any runtime;
/// - on a thread of smol's global executor (threads named `smol-N`) or of
///   async-std's (`async-std/runtime`);
/// - with the `tokio` feature: inside a tokio task, or in the context of a
///   current-thread tokio runtime. tokio runs `spawn_blocking` closures as
///   tasks too and offers no way to tell them apart, so those are refused
///   as well: from tokio, call it on a `std::thread`.
///
/// Not detected: a task of an executor of your own (`Smol::new`) or a
/// thread you named after one of the above.
///
/// # Panics
///
/// On an executor thread, as above. If the body or a child panics, the
/// children still running are cancelled (dropped at their next await), the
/// call waits until all of them are gone, then resumes the first panic.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use portasync::rt::Smol;
///
/// let data: Vec<u64> = (1..=1000).collect();
/// let total = portasync::scope_blocking(&Smol::global(), |s| {
///     let handles: Vec<_> = data.chunks(250).map(|chunk| s.spawn(async move { chunk.iter().sum::<u64>() })).collect();
///     handles.into_iter().map(|h| h.join()).sum::<u64>()
/// });
/// assert_eq!(total, 500_500);
/// # }
/// ```
#[track_caller]
pub fn scope_blocking<'env, R, F, T>(rt: &R, body: F) -> T
where
    R: Spawn,
    F: for<'scope> FnOnce(&'scope BlockingScope<'scope, 'env, R>) -> T,
{
    refuse_executor_threads();
    let scope = BlockingScope {
        rt: rt.clone(),
        shared: Arc::new(Shared::default()),
        _scope: PhantomData,
        _env: PhantomData,
    };
    // Waits for every erased future on every way out of here, an unwind
    // included: they borrow for `'scope`.
    let mut all_dropped = WaitForAll {
        shared: &scope.shared,
        returning: false,
    };
    let output = match catch_unwind(AssertUnwindSafe(|| body(&scope))) {
        Ok(output) => Some(output),
        Err(payload) => {
            scope.shared.panicked(payload);
            None
        }
    };
    // Not one erased future outlives this line (see the module doc).
    all_dropped.returning = true;
    drop(all_dropped);
    let first_panic = scope.shared.lock().panic.take();
    match (output, first_panic) {
        (Some(output), None) => output,
        (output, Some(payload)) => {
            // Dropped here, where its destructor cannot unwind: dropped
            // during the unwind, a destructor that panicked aborted the
            // process (from a review).
            crate::rt::discard(output);
            resume_unwind(payload)
        }
        (None, None) => unreachable!("the body's panic is recorded"),
    }
}

/// Spawns parallel children that borrow from outside; given to the body of
/// [`scope_blocking`].
///
/// `'env` is what children may borrow: anything that outlives the
/// `scope_blocking` call, and the scope itself.
///
/// Of the scoped task trilemma (concurrency, parallelism, borrowing: pick
/// two in a future that can be forgotten), this scope gives parallelism and
/// borrowing by not being a future at all: it blocks, so it cannot be
/// forgotten while its children run.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// let mut names = vec![String::from("a"), String::from("b")];
/// portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
///     for name in names.iter_mut() {
///         s.spawn(async move { name.push('!') }).detach();
///     }
/// });
/// assert_eq!(names, ["a!", "b!"]);
/// # }
/// ```
pub struct BlockingScope<'scope, 'env: 'scope, R> {
    rt: R,
    /// What `scope_blocking` waits on: `Erased::new` relies on it.
    pub(super) shared: Arc<Shared>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, R: Spawn> BlockingScope<'scope, '_, R> {
    /// Spawns `future` on the scope's runtime and returns a handle to its
    /// output.
    ///
    /// The child may borrow anything that outlives the `scope_blocking`
    /// call, and the scope. Dropping the handle does not cancel it: the
    /// scope waits for it all the same. Once the body or a child has
    /// panicked, new children are dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let answer = 42;
    /// let got = portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
    ///     s.spawn(async { answer }).join()
    /// });
    /// assert_eq!(got, 42);
    /// # }
    /// ```
    pub fn spawn<F>(&'scope self, future: F) -> BlockingJoinHandle<'scope, F::Output>
    where
        F: Future + Send + 'scope,
        F::Output: Send + 'scope,
    {
        let (sender, receiver) = slot::slot();
        let erased = Erased::new(self, Box::pin(ChildTask::new(future, sender)));
        if self.shared.lock().cancelled {
            drop(erased); // never runs; its handle finds it cancelled
        } else {
            // Not under the lock: a panic in `spawn` drops `erased`, which
            // takes the lock to count itself down.
            let handle = self.rt.spawn(erased);
            let mut state = self.shared.lock();
            if state.cancelled {
                // A sibling panicked meanwhile: cancel this one too.
                drop(state);
                drop(handle);
            } else {
                prune(&mut state.handles);
                state.handles.push(handle);
            }
        }
        BlockingJoinHandle {
            receiver,
            _scope: PhantomData,
        }
    }
}

/// Forgets the handles of finished children now and then, so a long scope
/// does not grow without bound.
fn prune(handles: &mut Vec<JoinHandle<()>>) {
    if handles.len() >= 64 && handles.len().is_power_of_two() {
        handles.retain(|handle| !handle.is_finished());
    }
}

impl<R> fmt::Debug for BlockingScope<'_, '_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingScope").finish_non_exhaustive()
    }
}

/// The output of a child spawned with [`BlockingScope::spawn`]: wait for
/// it with [`join`](Self::join) from the body, or await it from another
/// child.
///
/// Dropping it does not cancel the child.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
///     let first = s.spawn(async { 20 });
///     // A sibling awaits it.
///     let second = s.spawn(async move { first.await + 1 });
///     assert_eq!(second.join(), 21);
/// });
/// # }
/// ```
///
/// # Cancel safety
///
/// Dropping it while it is being awaited loses the output, nothing else.
#[must_use = "dropping the handle lets the child run on; call `join` to wait for its output"]
pub struct BlockingJoinHandle<'scope, T> {
    receiver: Receiver<T>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> BlockingJoinHandle<'_, T> {
    /// Lets the child run to its end unobserved; its output is dropped.
    /// The same as dropping the handle: the scope still waits for it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let ran = AtomicBool::new(false);
    /// portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
    ///     s.spawn(async { ran.store(true, Ordering::Relaxed) }).detach();
    /// });
    /// assert!(ran.load(Ordering::Relaxed));
    /// # }
    /// ```
    pub fn detach(self) {}

    /// Blocks until the child finishes and returns its output.
    ///
    /// # Blocking
    ///
    /// Blocks the thread; meant for the body of [`scope_blocking`], which
    /// runs on the caller's thread. From a child, `.await` the handle
    /// instead.
    ///
    /// # Panics
    ///
    /// If the child panicked, or was cancelled because the body or another
    /// child panicked. The scope then resumes the first panic once every
    /// child is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let n = portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
    ///     s.spawn(async { 5 }).join()
    /// });
    /// assert_eq!(n, 5);
    /// # }
    /// ```
    #[track_caller]
    pub fn join(self) -> T {
        match self.receiver.wait() {
            Some(value) => value,
            None => cancelled(),
        }
    }

    /// Whether the child has finished (or was cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
    ///     let (tx, rx) = async_channel::bounded::<()>(1);
    ///     let handle = s.spawn(async move { rx.recv().await.ok() });
    ///     assert!(!handle.is_finished());
    ///     drop(tx);
    ///     handle.join();
    /// });
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.receiver.is_finished()
    }
}

#[track_caller]
fn cancelled() -> ! {
    panic!("scoped child did not finish: it panicked, or the scope cancelled it after a panic")
}

impl<T> Future for BlockingJoinHandle<'_, T> {
    type Output = T;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.receiver.poll(cx) {
            Poll::Ready(Some(value)) => Poll::Ready(value),
            Poll::Ready(None) => cancelled(),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for BlockingJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// What the scope shares with its erased children.
#[derive(Default)]
pub(super) struct Shared {
    state: Mutex<State>,
    all_dropped: Condvar,
}

#[derive(Default)]
struct State {
    /// Erased futures not yet dropped.
    live: usize,
    /// Set by the first panic: later children are dropped unspawned.
    cancelled: bool,
    panic: Option<Panic>,
    handles: Vec<JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a waker or a drop.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one more erased future; the count goes down when the returned
    /// guard is dropped.
    pub(super) fn count_one(self: &Arc<Self>) -> Live {
        self.lock().live += 1;
        Live(self.clone())
    }

    /// Cancels every child: dropping a [`JoinHandle`] cancels its task on
    /// every runtime.
    fn cancel(&self) {
        let handles = {
            let mut state = self.lock();
            state.cancelled = true;
            std::mem::take(&mut state.handles)
        };
        drop(handles);
    }

    /// Records the first panic (of a child or the body) and cancels. A
    /// later payload is dropped where its destructor cannot unwind (it is
    /// the user's, and may panic): as `std::thread::scope` does, nothing
    /// here unwinds past the wait for the children.
    fn panicked(&self, payload: Panic) {
        let later = {
            let mut state = self.lock();
            match state.panic {
                None => {
                    state.panic = Some(payload);
                    None
                }
                Some(_) => Some(payload),
            }
        };
        crate::rt::discard(later);
        self.cancel();
    }

    /// Blocks until every erased future has been dropped.
    fn wait(&self) {
        let mut state = self.lock();
        while state.live > 0 {
            state = self
                .all_dropped
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// Waits, when dropped, until every erased future of the scope has been
/// dropped; dropped by an unwind, it cancels them first (catching a panic
/// of that), so that the wait ends.
struct WaitForAll<'a> {
    shared: &'a Shared,
    /// Set on the way out that returns. Not `thread::panicking()`: a call
    /// from a destructor during another panic returns normally, and its
    /// children must run to their end, not be cancelled.
    returning: bool,
}

impl Drop for WaitForAll<'_> {
    fn drop(&mut self) {
        if !self.returning {
            crate::rt::discard(catch_unwind(AssertUnwindSafe(|| self.shared.cancel())));
        }
        self.shared.wait();
    }
}

/// One erased future's place in the count.
pub(super) struct Live(Arc<Shared>);

impl Live {
    /// Records the first panic (of a child or the body) and cancels.
    pub(super) fn panicked(&self, payload: Panic) {
        self.0.panicked(payload);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.live -= 1;
        if state.live == 0 {
            self.0.all_dropped.notify_all();
        }
    }
}

thread_local! {
    /// Whether this thread is polling a `scope_blocking` child.
    static INSIDE_CHILD: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as polling a `scope_blocking` child while it lives.
pub(super) struct InsideChild(bool);

impl InsideChild {
    pub(super) fn enter() -> Self {
        Self(INSIDE_CHILD.with(|inside| inside.replace(true)))
    }
}

impl Drop for InsideChild {
    fn drop(&mut self) {
        INSIDE_CHILD.with(|inside| inside.set(self.0));
    }
}

/// Panics, instead of deadlocking later, where blocking is known to be
/// wrong; see `# Blocking` on [`scope_blocking`].
#[track_caller]
fn refuse_executor_threads() {
    let on_executor = if INSIDE_CHILD.with(Cell::get) {
        Some("inside a child of another scope_blocking")
    } else if on_named_executor_thread() {
        Some("on an executor thread of smol or async-std")
    } else if in_tokio_task() {
        Some("inside a tokio task or a current-thread tokio runtime")
    } else {
        None
    };
    if let Some(place) = on_executor {
        panic!(
            "portasync::scope_blocking called {place}: blocking this thread could keep the \
             children from running (a deadlock); call it from a plain thread, or use \
             portasync::scope in async code"
        );
    }
}

fn on_named_executor_thread() -> bool {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or_default();
    let smol = name
        .strip_prefix("smol-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    smol || name == "async-std/runtime"
}

#[cfg(feature = "tokio")]
fn in_tokio_task() -> bool {
    match ::tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            ::tokio::task::try_id().is_some()
                || handle.runtime_flavor() == ::tokio::runtime::RuntimeFlavor::CurrentThread
        }
        Err(_) => false,
    }
}

#[cfg(not(feature = "tokio"))]
fn in_tokio_task() -> bool {
    false
}
