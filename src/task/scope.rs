//! Scoped spawn: children that borrow from the caller, soundly.
//!
//! No sound API has all three of concurrency, parallelism and borrowing in
//! a future that can be forgotten (the "scoped task trilemma"): a leaked
//! future never runs its destructor, so it cannot stop children that run
//! elsewhere. portasync offers two corners of it:
//!
//! - [`scope`] and [`scope_boxed`]: concurrent, borrowing, awaitable. The
//!   children live and run inside the scope's own future, like `join_all`;
//!   nothing is spawned on an executor, so leaking the future only stops
//!   them. The scope, its children's set and the body's future all sit in
//!   one async block, which the compiler checks; each child is one
//!   allocation (future, output and waker state together), built in
//!   `scope/raw.rs`.
//! - [`scope_blocking`]: parallel and borrowing, like `std::thread::scope`.
//!   Children run on a runtime's threads and the call blocks until every one
//!   has been dropped. The lifetime-erasing step that this takes is in
//!   `scope/raw.rs` too.

mod blocking;
// The only module with `unsafe`, each block with its SAFETY argument.
#[allow(unsafe_code)]
mod raw;
mod slot;

pub use blocking::{BlockingJoinHandle, BlockingScope, scope_blocking};

use raw::{Child, Handle, Polled};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
// loom's under `--cfg portasync_loom`, for the models in `raw`.
use crate::primitives::{AtomicBool, Mutex, MutexGuard, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Runs `body` with a [`Scope`] whose children may borrow anything that
/// outlives this call; completes when the body and every child have
/// completed, with the body's output.
///
/// Children run concurrently inside the returned future (nothing is spawned
/// on an executor, so no `'static` bound and no runtime is needed). The
/// future is not `Send`: today's rustc cannot prove an async closure's future
/// `Send` through a higher-ranked bound (rust-lang/rust#110338). Inside a
/// spawned task, use [`scope_boxed`], which is the same scope.
///
/// # Panics
///
/// A panic in the body or in a child drops the body and every other child,
/// then resumes in the caller when the returned future is polled.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let hits = AtomicU32::new(0);
/// let words = vec!["a", "bc", "def"];
/// let total = futures_lite::future::block_on(portasync::scope(async |s| {
///     let lens: Vec<_> = words
///         .iter()
///         .map(|w| {
///             s.spawn(async {
///                 hits.fetch_add(1, Ordering::Relaxed);
///                 w.len()
///             })
///         })
///         .collect();
///     let mut total = 0;
///     for len in lens {
///         total += len.await;
///     }
///     total
/// }));
/// assert_eq!(total, 6);
/// assert_eq!(hits.load(Ordering::Relaxed), 3);
/// ```
pub fn scope<'env, B, T>(body: B) -> ScopeFuture<'env, T>
where
    B: for<'scope> AsyncFnOnce(&'scope Scope<'scope, 'env>) -> T + 'env,
    T: 'env,
{
    ScopeFuture {
        inner: Box::pin(run_scope(body)),
    }
}

/// [`scope`] for `Send` contexts: the body is a closure that returns its
/// future boxed, `|s| Box::pin(async move { .. })`, and the returned future
/// is `Send`, so it can run inside a spawned task. Same [`Scope`], same
/// rules.
///
/// # Panics
///
/// As for [`scope`]: a panic in the body or in a child drops the rest, then
/// resumes in the caller.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::sync::Arc;
///
/// smol::block_on(async {
///     let data = Arc::new(vec![1, 2, 3, 4]);
///     // Spawned, so the scope's future must be `Send`.
///     let sum = portasync::spawn(async move {
///         let data = &data;
///         portasync::scope_boxed(|s| {
///             Box::pin(async move {
///                 let (left, right) = data.split_at(2);
///                 let a = s.spawn(async move { left.iter().sum::<i32>() });
///                 let b = s.spawn(async move { right.iter().sum::<i32>() });
///                 a.await + b.await
///             })
///         })
///         .await
///     });
///     assert_eq!(sum.await.unwrap(), 10);
/// });
/// # }
/// ```
pub fn scope_boxed<'env, B, T>(body: B) -> ScopeBoxedFuture<'env, T>
where
    B: for<'scope> FnOnce(
            &'scope Scope<'scope, 'env>,
        ) -> Pin<Box<dyn Future<Output = T> + Send + 'scope>>
        + Send
        + 'env,
    T: Send + 'env,
{
    ScopeBoxedFuture {
        inner: Box::pin(run_scope_boxed(body)),
    }
}

// The two entry points differ only in how the body is called. Each is an
// async block so that the scope, the children's guard and the body's future
// (which borrows the scope) can live side by side in one future, checked by
// the compiler; a named future would need `unsafe` self-references.
async fn run_scope<'env, B, T>(body: B) -> T
where
    B: for<'scope> AsyncFnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    // `ManuallyDrop`: a scope's children may borrow the scope itself, so the
    // scope must have no drop glue of its own for the compiler to accept
    // that borrow; `Children` empties it instead, while it is still alive.
    let scope = ManuallyDrop::new(Scope::new(Arc::default()));
    let scope = &*scope;
    let mut children = Children::new(scope);
    let body = body(scope);
    Driver::new(body, &mut children).await
}

async fn run_scope_boxed<'env, B, T>(body: B) -> T
where
    B: for<'scope> FnOnce(
        &'scope Scope<'scope, 'env>,
    ) -> Pin<Box<dyn Future<Output = T> + Send + 'scope>>,
{
    let scope = ManuallyDrop::new(Scope::new(Arc::default()));
    let scope = &*scope;
    let mut children = Children::new(scope);
    let body = body(scope);
    Driver::new(body, &mut children).await
}

/// The future of [`scope`]: the body and its children, run concurrently.
///
/// It is boxed once per scope (the scope and the body's future that borrows
/// it live in one allocation), then each child costs one allocation: its
/// future, its output and its waker's state together, like a task of
/// `FuturesUnordered`. Only children that were woken are polled.
///
/// # Examples
///
/// ```
/// let doubled: portasync::ScopeFuture<'_, u32> =
///     portasync::scope(async |s| s.spawn(async { 21 * 2 }).await);
/// assert_eq!(futures_lite::future::block_on(doubled), 42);
/// ```
///
/// # Cancel safety
///
/// Dropping it drops the body and every child before the drop returns.
/// Leaking it (`std::mem::forget`, `Box::leak`) stops them where they are:
/// they live inside this future's memory and are never polled again, so
/// nothing they borrow can be used after it is gone.
#[must_use = "futures do nothing unless awaited"]
pub struct ScopeFuture<'env, T> {
    inner: Pin<Box<dyn Future<Output = T> + 'env>>,
}

impl<T> Future for ScopeFuture<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for ScopeFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeFuture").finish_non_exhaustive()
    }
}

/// The `Send` future of [`scope_boxed`]; otherwise the same as
/// [`ScopeFuture`].
///
/// # Examples
///
/// ```
/// fn is_send<T: Send>(_: &T) {}
///
/// let answer = portasync::scope_boxed(|s| Box::pin(async move { s.spawn(async { 7 }).await }));
/// is_send(&answer);
/// assert_eq!(futures_lite::future::block_on(answer), 7);
/// ```
///
/// # Cancel safety
///
/// As for [`ScopeFuture`]: dropping it drops the body and every child before
/// the drop returns; leaking it stops them.
#[must_use = "futures do nothing unless awaited"]
pub struct ScopeBoxedFuture<'env, T> {
    inner: Pin<Box<dyn Future<Output = T> + Send + 'env>>,
}

impl<T> Future for ScopeBoxedFuture<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for ScopeBoxedFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeBoxedFuture").finish_non_exhaustive()
    }
}

/// Spawns children that borrow from outside the scope; given to the body of
/// [`scope`] and [`scope_boxed`].
///
/// `'env` is what the children may borrow: anything that outlives the
/// `scope` call, and the scope itself (a child can spawn siblings). The
/// body's own locals are not in it: they may be gone while a child still
/// runs.
///
/// The scoped task trilemma says no API can give concurrency, parallelism
/// and borrowing at once in a future that may be forgotten. This scope keeps
/// concurrency and borrowing: its children run inside the scope's future
/// (so a leak only stops them), on the thread that polls it. For parallel
/// children that borrow, see [`scope_blocking`], which blocks instead.
///
/// # Examples
///
/// ```
/// let mut results = Vec::new();
/// let input = [3, 1, 2];
/// futures_lite::future::block_on(portasync::scope(async |s| {
///     let handles: Vec<_> = input.iter().map(|&x| s.spawn(async move { x * 10 })).collect();
///     for handle in handles {
///         results.push(handle.await);
///     }
/// }));
/// assert_eq!(results, [30, 10, 20]);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    incoming: Mutex<Incoming<'scope>>,
    // Invariant in both, as `std::thread::Scope` is: a scope must not be
    // usable as one with a shorter or longer lifetime.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// Children spawned since the driver last looked, and how to wake it.
#[derive(Default)]
struct Incoming<'scope> {
    /// In chunks of [`CHUNK`] (see there).
    children: Vec<Vec<Child<'scope>>>,
    count: usize,
    waker: Option<Waker>,
    /// Where the children's wakers report; taken when the scope is torn
    /// down.
    queue: Option<Arc<ReadyQueue>>,
}

impl<'scope> Scope<'scope, '_> {
    fn new(queue: Arc<ReadyQueue>) -> Self {
        Self {
            incoming: Mutex::new(Incoming {
                children: Vec::new(),
                count: 0,
                waker: None,
                queue: Some(queue),
            }),
            _scope: PhantomData,
            _env: PhantomData,
        }
    }

    fn incoming(&self) -> MutexGuard<'_, Incoming<'scope>> {
        // No user code runs while the lock is held (wakers are called after).
        self.incoming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `future` as a child of this scope and returns a handle to its
    /// output.
    ///
    /// The child runs concurrently with the body and its siblings, inside
    /// the scope's future. It may borrow anything that outlives the `scope`
    /// call, and the scope itself. Dropping the handle does not cancel it:
    /// the scope runs every child to its end.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let count = AtomicU32::new(0);
    /// futures_lite::future::block_on(portasync::scope(async |s| {
    ///     for _ in 0..3 {
    ///         // No one awaits it; the scope still runs it to its end.
    ///         s.spawn(async {
    ///             count.fetch_add(1, Ordering::Relaxed);
    ///         }).detach();
    ///     }
    /// }));
    /// assert_eq!(count.load(Ordering::Relaxed), 3);
    /// ```
    pub fn spawn<F>(&'scope self, future: F) -> ScopedJoinHandle<'scope, F::Output>
    where
        F: Future + Send + 'scope,
        F::Output: Send + 'scope,
    {
        let mut incoming = self.incoming();
        let Some(queue) = &incoming.queue else {
            // Torn down already (no code that can reach the scope runs by
            // then, but just in case): the child is dropped unstarted.
            drop(incoming);
            let (child, handle) = Child::new(future, &Arc::default());
            drop(child);
            return ScopedJoinHandle {
                handle,
                _scope: PhantomData,
            };
        };
        // Made under the lock, which runs no user code: one lock a child.
        let (child, handle) = Child::new(future, queue);
        match incoming.children.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(child),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(child);
                incoming.children.push(chunk);
            }
        }
        incoming.count += 1;
        // Only the first child since the driver last looked needs to wake
        // it; it takes them all at once.
        let waker = if incoming.count == 1 {
            incoming.waker.clone()
        } else {
            None
        };
        drop(incoming);
        if let Some(waker) = waker {
            waker.wake();
        }
        ScopedJoinHandle {
            handle,
            _scope: PhantomData,
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// Awaits the output of a child spawned with [`Scope::spawn`].
///
/// Dropping it does not cancel the child. It cannot leave the scope.
///
/// # Panics
///
/// Awaiting it panics if the child was dropped before it finished, which
/// can only be seen from code that runs while the scope is being torn down
/// (a destructor), or if it is polled again after it resolved.
///
/// # Examples
///
/// ```
/// let text = String::from("borrowed");
/// let n = futures_lite::future::block_on(portasync::scope(async |s| {
///     let handle = s.spawn(async { text.len() });
///     assert!(!handle.is_finished());
///     handle.await
/// }));
/// assert_eq!(n, 8);
/// ```
///
/// # Cancel safety
///
/// Dropping it while it is being awaited loses the output, nothing else: the
/// child runs on.
#[must_use = "futures do nothing unless awaited; dropping the handle lets the child run on"]
pub struct ScopedJoinHandle<'scope, T> {
    handle: Handle<'scope, T>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Lets the child run to its end unobserved; its output is dropped.
    /// The same as dropping the handle, said out loud.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let ran = AtomicBool::new(false);
    /// futures_lite::future::block_on(portasync::scope(async |s| {
    ///     s.spawn(async { ran.store(true, Ordering::Relaxed) }).detach();
    /// }));
    /// assert!(ran.load(Ordering::Relaxed));
    /// ```
    pub fn detach(self) {}

    /// Whether the child has finished, so that awaiting this would resolve
    /// at once.
    ///
    /// # Examples
    ///
    /// ```
    /// futures_lite::future::block_on(portasync::scope(async |s| {
    ///     let handle = s.spawn(async { 1 });
    ///     futures_lite::future::yield_now().await; // the child runs
    ///     assert!(handle.is_finished());
    /// }));
    /// ```
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl<T> Future for ScopedJoinHandle<'_, T> {
    type Output = T;

    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.handle.poll(cx) {
            Poll::Ready(Some(value)) => Poll::Ready(value),
            Poll::Ready(None) => panic!(
                "ScopedJoinHandle polled after it resolved, or its child was dropped unfinished \
                 while the scope was being torn down"
            ),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// Polls the body and the children. The part that does not depend on
    /// the body's type lives in [`Children`].
    struct Driver<'a, 'scope, 'env, F: Future> {
        // Declared first, so dropped first: anything the body spawns while
        // being dropped is still collected and dropped by `Children`.
        #[pin]
        body: Option<F>,
        output: Option<F::Output>,
        children: &'a mut Children<'scope, 'env>,
    }
}

impl<'a, 'scope, 'env, F: Future> Driver<'a, 'scope, 'env, F> {
    fn new(body: F, children: &'a mut Children<'scope, 'env>) -> Self {
        Self {
            body: Some(body),
            output: None,
            children,
        }
    }
}

/// How many rounds one poll of the scope runs before it yields to the
/// executor, when children keep waking each other or spawning.
const ROUNDS: usize = 16;

impl<F: Future> Future for Driver<'_, '_, '_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        for _ in 0..ROUNDS {
            let ready = this.children.take_ready(cx.waker());
            if ready.is_empty() {
                this.children.recycle(ready);
                break;
            }
            for &index in &ready {
                let polled = if index == BODY {
                    poll_body(this.body.as_mut(), this.output, this.children)
                } else {
                    this.children.poll_child(index)
                };
                if let Err(payload) = polled {
                    // Everything in the scope goes, then the panic resumes:
                    // this one, not a destructor's on the way.
                    // Every payload but this one is dropped where its
                    // destructor (the user's) cannot unwind in its place.
                    let mut body = this.body.as_mut();
                    crate::rt::discard(catch_unwind(AssertUnwindSafe(|| body.set(None))));
                    // A finished body's output too: dropped later, while
                    // unwinding, a panic of its destructor would abort.
                    crate::rt::discard(this.output.take());
                    crate::rt::discard(this.children.drop_all());
                    resume_unwind(payload);
                }
            }
            this.children.recycle(ready);
        }
        if this.body.is_none() && this.children.is_empty() {
            if let Some(output) = this.output.take() {
                return Poll::Ready(output);
            }
        }
        if !this.children.requeued.is_empty() {
            // Out of rounds with children that woke themselves (no one else
            // will): yield, and come back for them.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

type Panic = Box<dyn Any + Send>;

fn poll_body<F: Future>(
    mut body: Pin<&mut Option<F>>,
    output: &mut Option<F::Output>,
    children: &Children<'_, '_>,
) -> Result<(), Panic> {
    let Some(future) = body.as_mut().as_pin_mut() else {
        return Ok(()); // finished already
    };
    let (flag, waker) = &children.body;
    // A read-modify-write for the reason given at the child's poll
    // (`raw.rs`): a wake since the body was queued left it to this poll,
    // which must see what that waker published.
    flag.queued.swap(false, Ordering::AcqRel);
    let mut cx = Context::from_waker(waker);
    if let Poll::Ready(value) = catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx)))? {
        *output = Some(value);
        body.set(None);
    }
    Ok(())
}

/// The index of the body in the ready queue.
const BODY: usize = usize::MAX;

/// New children come in chunks of this many, and freed entries are chained
/// through the entries themselves, so that a scope of many children makes
/// few allocations of 1 KiB or more. Those make glibc's allocator sweep its
/// caches of small blocks, which then serve the next children more slowly.
const CHUNK: usize = 32;

/// The end of the chain of free entries.
const NO_ENTRY: usize = usize::MAX;

enum Entry<'scope> {
    Live(Child<'scope>),
    /// The next free entry.
    Free(usize),
}

/// The children of one scope, owned by the scope's future.
///
/// Dropping it drops every child (and any child spawned while dropping),
/// then frees what the scope held, while the scope is still alive.
struct Children<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    /// Indexed by child.
    entries: Vec<Entry<'scope>>,
    /// The first free entry, or [`NO_ENTRY`].
    free: usize,
    live: usize,
    queue: Arc<ReadyQueue>,
    body: (Arc<BodyWaker>, Waker),
    /// A spare ready list, so rounds do not allocate.
    spare: Vec<usize>,
    /// Children woken while they ran, for the next round.
    requeued: Vec<usize>,
}

/// Indices of children (and the body) woken since the driver last looked.
#[derive(Default)]
struct ReadyQueue {
    inner: Mutex<ReadyInner>,
}

#[derive(Default)]
struct ReadyInner {
    ready: Vec<usize>,
    parent: Option<Waker>,
}

impl ReadyQueue {
    fn lock(&self) -> MutexGuard<'_, ReadyInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `index`; the first wake since the driver last looked wakes
    /// it, later ones join the same list.
    fn push(&self, index: usize) {
        let mut inner = self.lock();
        inner.ready.push(index);
        let parent = if inner.ready.len() == 1 {
            inner.parent.clone()
        } else {
            None
        };
        drop(inner);
        if let Some(parent) = parent {
            parent.wake();
        }
    }
}

/// The body's waker.
struct BodyWaker {
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl Wake for BodyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(BODY);
        }
    }
}

impl<'scope, 'env> Children<'scope, 'env> {
    fn new(scope: &'scope Scope<'scope, 'env>) -> Self {
        let queue = scope
            .incoming()
            .queue
            .clone()
            .expect("a new scope has its queue");
        // The body is polled first.
        queue.lock().ready.push(BODY);
        let body = Arc::new(BodyWaker {
            queued: AtomicBool::new(true),
            queue: queue.clone(),
        });
        Self {
            scope,
            entries: Vec::new(),
            free: NO_ENTRY,
            live: 0,
            queue,
            body: (body.clone(), Waker::from(body)),
            spare: Vec::new(),
            requeued: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.live == 0 && self.scope.incoming().count == 0
    }

    /// Registers the scope's waker, adopts newly spawned children (ready at
    /// once) and returns everything woken since the last look.
    fn take_ready(&mut self, parent: &Waker) -> Vec<usize> {
        let (new, count) = {
            let mut incoming = self.scope.incoming();
            update(&mut incoming.waker, parent);
            let count = std::mem::take(&mut incoming.count);
            (std::mem::take(&mut incoming.children), count)
        };
        // New children first: a body that spawns and then yields lets them
        // run before it goes on.
        let mut ready = std::mem::take(&mut self.spare);
        ready.reserve(count + self.requeued.len());
        self.entries.reserve(count);
        for child in new.into_iter().flatten() {
            let index = self.insert(child);
            ready.push(index);
        }
        ready.append(&mut self.requeued);
        let mut inner = self.queue.lock();
        update(&mut inner.parent, parent);
        ready.append(&mut inner.ready);
        // Room for every child (and the body) to wake once, made now rather
        // than while children finish (see `CHUNK`).
        inner.ready.reserve(self.live + 1);
        drop(inner);
        self.requeued.reserve(self.live);
        ready
    }

    fn recycle(&mut self, mut ready: Vec<usize>) {
        ready.clear();
        if self.spare.capacity() < ready.capacity() {
            self.spare = ready;
        }
    }

    fn insert(&mut self, mut child: Child<'scope>) -> usize {
        self.live += 1;
        if let Some(Entry::Free(next)) = self.entries.get(self.free) {
            let index = std::mem::replace(&mut self.free, *next);
            child.set_index(index);
            self.entries[index] = Entry::Live(child);
            return index;
        }
        let index = self.entries.len();
        child.set_index(index);
        self.entries.push(Entry::Live(child));
        index
    }

    fn poll_child(&mut self, index: usize) -> Result<(), Panic> {
        let Some(Entry::Live(child)) = self.entries.get_mut(index) else {
            return Ok(()); // gone already
        };
        match catch_unwind(AssertUnwindSafe(|| child.poll()))? {
            Polled::Finished => {
                self.entries[index] = Entry::Free(self.free);
                self.free = index;
                self.live -= 1;
            }
            Polled::Woken => self.requeued.push(index),
            Polled::Pending => {}
        }
        Ok(())
    }

    /// Drops every child, and every child their destructors spawn. A
    /// destructor that panics stops nothing: the others are still dropped
    /// (and their memory freed), and the first panic is returned.
    fn drop_all(&mut self) -> Option<Panic> {
        self.requeued.clear();
        let had_live = self.live > 0;
        let mut panic = None;
        loop {
            let mut dropped = false;
            if self.live > 0 {
                for entry in &mut self.entries {
                    if let Entry::Live(_) = entry {
                        let child = std::mem::replace(entry, Entry::Free(NO_ENTRY));
                        first_panic(&mut panic, child);
                        dropped = true;
                    }
                }
                self.live = 0;
            }
            let late = {
                let mut incoming = self.scope.incoming();
                incoming.count = 0;
                std::mem::take(&mut incoming.children)
            };
            for child in late.into_iter().flatten() {
                first_panic(&mut panic, child);
                dropped = true;
            }
            if !dropped {
                break;
            }
        }
        if had_live {
            // Every entry is free: chain them again.
            self.free = NO_ENTRY;
            for (index, entry) in self.entries.iter_mut().enumerate().rev() {
                *entry = Entry::Free(self.free);
                self.free = index;
            }
        }
        panic
    }
}

/// Drops `value`, keeping the panic of its destructor in `panic` unless one
/// is kept already (a later payload is dropped where its own destructor
/// cannot unwind).
fn first_panic<T>(panic: &mut Option<Panic>, value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(value))) {
        match panic {
            None => *panic = Some(payload),
            Some(_) => crate::rt::discard(payload),
        }
    }
}

impl Drop for Children<'_, '_> {
    fn drop(&mut self) {
        let panic = self.drop_all();
        // The scope has no drop glue (see `run_scope`): free what it holds.
        drop(std::mem::take(&mut *self.scope.incoming()));
        // Stale wakers may keep the queue alive: leave it empty, holding no
        // one's waker.
        drop(std::mem::take(&mut *self.queue.lock()));
        // A destructor's panic goes on once everything is dropped, unless
        // one is unwinding already (a second would abort).
        if let Some(payload) = panic {
            if std::thread::panicking() {
                crate::rt::discard(payload);
            } else {
                resume_unwind(payload);
            }
        }
    }
}

/// Stores `waker` unless the one stored already wakes the same task.
fn update(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
