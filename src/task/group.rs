//! `TaskGroup`: a set of spawned tasks that the group owns.
//!
//! Each child runs inside a [`Child`] wrapper whose [`Reporter`] is dropped
//! after the child's future, and reports the result (or `Cancelled`) into
//! the group's list of finished children: so a result is only seen once the
//! child's destructors have run, and completion order comes for free. The
//! children's `JoinHandle`s are kept only to cancel them (dropping one
//! cancels its task). Children over the `max_concurrent` limit wait as
//! boxed starters in FIFO order and are spawned by the reporter of the child
//! whose slot they take, outside the group's lock.

use crate::rt::{Auto, JoinError, JoinHandle, Runtime, Spawn, Timer};
use crate::sync::CancelToken;
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

type Starter<R> = Box<dyn FnOnce(&R) -> JoinHandle<()> + Send>;

/// Child ids are handed out in increasing order and never reused, so they
/// need no hashing: the id itself spreads the map's buckets.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread the low bits over the whole word (hashbrown reads the top
        // bits too).
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

type Children<R> = HashMap<u64, Status<R>, std::hash::BuildHasherDefault<IdHasher>>;

enum Status<R> {
    /// Waiting for a slot under `max_concurrent`.
    Queued(Starter<R>),
    /// Spawned (its handle arrives just after the spawn), or being spawned.
    Running {
        handle: Option<JoinHandle<()>>,
        aborted: bool,
    },
}

struct State<T, R> {
    next_id: u64,
    /// Children not yet reported: queued or running.
    children: Children<R>,
    /// Queued children in the order they were spawned.
    queue: VecDeque<u64>,
    /// Reported results, in completion order, not yet joined.
    done: VecDeque<(u64, Result<T, JoinError>)>,
    /// Children started and not yet reported.
    active: usize,
    max_concurrent: usize,
    joiner: Option<Waker>,
    /// The group is gone: start nothing more.
    closed: bool,
}

struct Shared<T, R> {
    rt: R,
    token: CancelToken,
    state: Mutex<State<T, R>>,
}

impl<T, R> Shared<T, R> {
    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Takes the next queued child that may start now, counting it as active.
fn next_to_start<T, R>(state: &mut State<T, R>) -> Option<(u64, Starter<R>)> {
    while !state.closed && state.active < state.max_concurrent {
        let id = state.queue.pop_front()?;
        if let Some(Status::Queued(_)) = state.children.get(&id) {
            let Some(Status::Queued(start)) = state.children.insert(
                id,
                Status::Running {
                    handle: None,
                    aborted: false,
                },
            ) else {
                unreachable!("checked just above")
            };
            state.active += 1;
            return Some((id, start));
        }
    }
    None
}

/// Spawns a queued child outside the lock, then files its handle.
fn start<T, R>(shared: &Shared<T, R>, id: u64, starter: Starter<R>) {
    file_handle(shared, id, starter(&shared.rt));
}

/// Files a just-spawned child's handle, unless it was aborted or has
/// already finished meanwhile.
fn file_handle<T, R>(shared: &Shared<T, R>, id: u64, handle: JoinHandle<()>) {
    let mut state = shared.lock();
    match state.children.get_mut(&id) {
        Some(Status::Running {
            handle: slot @ None,
            aborted: false,
        }) => {
            *slot = Some(handle);
        }
        Some(_) => {
            // Aborted while being spawned: dropping the handle cancels it.
            drop(state);
            drop(handle);
        }
        None => {
            // Finished already.
            drop(state);
            handle.detach();
        }
    }
}

/// Reports a child's result when it completes, or `Cancelled` when it is
/// dropped unfinished; declared after the future in [`Child`], so it runs
/// after the future's destructors.
struct Reporter<T, R> {
    id: u64,
    shared: Arc<Shared<T, R>>,
    started: bool,
    reported: bool,
}

impl<T, R> Reporter<T, R> {
    fn report(&mut self, result: Result<T, JoinError>) {
        self.reported = true;
        let shared = &*self.shared;
        let (own, joiner, next) = {
            let mut state = shared.lock();
            let own = state.children.remove(&self.id);
            state.done.push_back((self.id, result));
            if self.started {
                state.active -= 1;
            }
            let next = next_to_start(&mut state);
            (own, state.joiner.take(), next)
        };
        // This task's own handle: let it go without cancelling anything.
        if let Some(Status::Running {
            handle: Some(handle),
            ..
        }) = own
        {
            handle.detach();
        }
        if let Some(joiner) = joiner {
            joiner.wake();
        }
        if let Some((id, starter)) = next {
            start(shared, id, starter);
        }
    }
}

impl<T, R> Drop for Reporter<T, R> {
    fn drop(&mut self) {
        if !self.reported {
            self.report(Err(JoinError::Cancelled));
        }
    }
}

pin_project_lite::pin_project! {
    /// A child as it runs on the executor: catches its panic and reports.
    struct Child<F, T, R> {
        #[pin]
        future: F,
        // After `future`: dropped after it.
        reporter: Reporter<T, R>,
    }
}

impl<F: Future<Output = T>, T, R> Future for Child<F, T, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let future = this.future;
        let result = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(JoinError::panicked(payload)),
        };
        this.reporter.report(result);
        Poll::Ready(())
    }
}

/// What an [`AbortHandle`] needs of its group, whatever the output type.
trait Control: Send + Sync {
    fn abort(&self, id: u64);
    fn is_finished(&self, id: u64) -> bool;
}

impl<T: Send + 'static, R: Send + Sync + 'static> Control for Shared<T, R> {
    fn abort(&self, id: u64) {
        let mut state = self.lock();
        let stop: Option<Box<dyn Any + Send>> = match state.children.get_mut(&id) {
            Some(Status::Running { handle, aborted }) => {
                *aborted = true;
                handle.take().map(|h| Box::new(h) as Box<dyn Any + Send>)
            }
            Some(Status::Queued(_)) => match state.children.remove(&id) {
                Some(Status::Queued(starter)) => Some(Box::new(starter)),
                _ => None,
            },
            None => None,
        };
        drop(state);
        // Dropping a handle cancels its task; dropping a starter drops the
        // never-started future, whose reporter reports the cancellation.
        drop(stop);
    }

    fn is_finished(&self, id: u64) -> bool {
        !self.lock().children.contains_key(&id)
    }
}

/// Stops one child of a [`TaskGroup`] without touching the others; from
/// [`TaskGroup::spawn`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     let stuck = group.spawn(std::future::pending::<u8>());
///     group.spawn(async { 1 });
///     stuck.abort();
///     let mut outputs = Vec::new();
///     while let Some(result) = group.join_next().await {
///         outputs.push(result.ok());
///     }
///     outputs.sort();
///     assert_eq!(outputs, [None, Some(1)]);
///     assert!(stuck.is_finished());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    id: u64,
    group: Arc<dyn Control>,
}

impl AbortHandle {
    /// Asks this child to stop; returns at once. A queued child never
    /// starts. The group then reports it as [`JoinError::Cancelled`] (unless
    /// it finished first).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     let child = group.spawn(std::future::pending::<()>());
    ///     child.abort();
    ///     assert!(group.join_next().await.unwrap().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        self.group.abort(self.id);
    }

    /// Whether this child has finished: completed, panicked, or stopped
    /// after an abort.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     let child = group.spawn(std::future::pending::<()>());
    ///     assert!(!child.is_finished());
    ///     group.shutdown().await;
    ///     assert!(child.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.group.is_finished(self.id)
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle").field("id", &self.id).finish()
    }
}

/// A group of spawned tasks that it owns: spawn into it, collect results as
/// they finish or all at once, and shut it down, gracefully or not. Like
/// tokio's `JoinSet` and tokio-util's `TaskTracker`, asyncio's `TaskGroup`,
/// or a trio nursery, on any runtime.
///
/// - **Dropping the group cancels every task in it**: no orphans.
/// - [`join_next`](Self::join_next) yields results in completion order and
///   is cancel-safe; [`join`](Self::join) and [`try_join`](Self::try_join)
///   collect everything in spawn order.
/// - [`max_concurrent`](Self::max_concurrent) bounds how many children run
///   at once; the rest wait and start in the order they were spawned, as
///   slots free up, whether or not anyone is polling the group.
/// - [`token`](Self::token) gives children a [`CancelToken`] to watch;
///   [`shutdown_graceful`](Self::shutdown_graceful) cancels it, waits up to
///   a grace period, then aborts the rest.
///
/// Cost: one small allocation per child besides the runtime's own task, and
/// a lock taken briefly when a child starts and when it finishes.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new().max_concurrent(2);
///     for n in 1..=5u64 {
///         group.spawn(async move { n * n });
///     }
///     assert_eq!(group.join().await, [1, 4, 9, 16, 25]);
/// });
/// ```
pub struct TaskGroup<T, R = Auto> {
    shared: Arc<Shared<T, R>>,
}

impl<T> TaskGroup<T, Auto> {
    /// An empty group on [`Auto`]: tokio inside a tokio runtime, smol (or
    /// async-std) elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = portasync::TaskGroup::<u32>::new();
    /// assert!(group.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_runtime(Auto)
    }
}

impl<T> Default for TaskGroup<T, Auto> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, R> TaskGroup<T, R> {
    /// An empty group that spawns on `rt`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let group = portasync::TaskGroup::<u32, _>::with_runtime(portasync::rt::Smol::global());
    /// # let _ = group;
    /// # }
    /// ```
    pub fn with_runtime(rt: R) -> Self {
        let state = State {
            next_id: 0,
            children: Children::default(),
            queue: VecDeque::new(),
            done: VecDeque::new(),
            active: 0,
            max_concurrent: usize::MAX,
            joiner: None,
            closed: false,
        };
        Self {
            shared: Arc::new(Shared {
                rt,
                token: CancelToken::new(),
                state: Mutex::new(state),
            }),
        }
    }

    /// Runs at most `limit` children at once; the others wait and start in
    /// the order they were spawned.
    ///
    /// # Panics
    ///
    /// If `limit` is zero: no child could ever run.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = portasync::TaskGroup::<()>::new().max_concurrent(8);
    /// # let _ = group;
    /// ```
    #[track_caller]
    pub fn max_concurrent(self, limit: usize) -> Self {
        assert!(
            limit > 0,
            "TaskGroup::max_concurrent: `limit` must be at least 1"
        );
        self.shared.lock().max_concurrent = limit;
        self
    }

    /// How many children have not been joined yet: queued, running, or
    /// finished with their result waiting for [`join_next`](Self::join_next).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(portasync::TaskGroup::<()>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        let state = self.shared.lock();
        state.children.len() + state.done.len()
    }

    /// Whether every child has been joined (or none was spawned).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(portasync::TaskGroup::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group's cancel token, for children to watch: it is cancelled by
    /// [`shutdown_graceful`](Self::shutdown_graceful) and when the group is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     let token = group.token();
    ///     group.spawn(async move { token.cancelled().await; "stopped cleanly" });
    ///     let report = group.shutdown_graceful(std::time::Duration::from_secs(5)).await;
    ///     assert_eq!(report.aborted(), 0);
    /// });
    /// ```
    pub fn token(&self) -> CancelToken {
        self.shared.token.clone()
    }

    /// Aborts every child; returns at once. Their results (mostly
    /// [`JoinError::Cancelled`]) still arrive through
    /// [`join_next`](Self::join_next).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(std::future::pending::<()>());
    ///     group.abort_all();
    ///     assert!(group.join_next().await.unwrap().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort_all(&self) {
        let (handles, starters) = {
            let mut state = self.shared.lock();
            state.queue.clear();
            let mut handles = Vec::new();
            let mut queued = Vec::new();
            for (id, status) in state.children.iter_mut() {
                match status {
                    Status::Running { handle, aborted } => {
                        *aborted = true;
                        handles.extend(handle.take());
                    }
                    Status::Queued(_) => queued.push(*id),
                }
            }
            let starters: Vec<_> = queued
                .into_iter()
                .filter_map(|id| state.children.remove(&id))
                .collect();
            (handles, starters)
        };
        // Outside the lock: the reporters of dropped starters take it.
        drop(handles);
        drop(starters);
    }

    /// Polls for the next finished child, in completion order.
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<(u64, Result<T, JoinError>)>> {
        let mut state = self.shared.lock();
        if let Some(done) = state.done.pop_front() {
            return Poll::Ready(Some(done));
        }
        if state.children.is_empty() {
            return Poll::Ready(None);
        }
        let stale = match &state.joiner {
            Some(joiner) if joiner.will_wake(cx.waker()) => None,
            _ => state.joiner.replace(cx.waker().clone()),
        };
        drop(state);
        drop(stale);
        Poll::Pending
    }

    /// Waits for the next child to finish and returns its result; `None`
    /// once the group is empty. Results come in completion order.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future (say, when it loses a `select`)
    /// loses no result; the next call returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { 1 });
    ///     let mut total = 0;
    ///     while let Some(result) = group.join_next().await {
    ///         total += result.unwrap();
    ///     }
    ///     assert_eq!(total, 1);
    /// });
    /// ```
    pub fn join_next(&mut self) -> JoinNext<'_, T, R> {
        JoinNext { group: self }
    }

    /// Aborts every child and waits until all have stopped; their results
    /// are discarded.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(std::future::pending::<()>());
    ///     group.shutdown().await;
    ///     assert!(group.is_empty());
    /// });
    /// ```
    pub fn shutdown(&mut self) -> ShutdownAll<'_, T, R> {
        self.abort_all();
        ShutdownAll { group: self }
    }
}

impl<T, R> TaskGroup<T, R>
where
    T: Send + 'static,
    R: Spawn,
{
    /// Spawns `future` into the group (or queues it, under
    /// [`max_concurrent`](Self::max_concurrent)) and returns a handle to
    /// abort this child alone.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     let handle = group.spawn(async { "hi" });
    ///     assert_eq!(group.join_next().await.unwrap().unwrap(), "hi");
    ///     assert!(handle.is_finished());
    /// });
    /// ```
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        let shared = &self.shared;
        let (id, now) = {
            let mut state = shared.lock();
            let id = state.next_id;
            state.next_id += 1;
            let reporter = Reporter {
                id,
                shared: shared.clone(),
                started: false,
                reported: false,
            };
            let mut child = Child { future, reporter };
            if state.active < state.max_concurrent {
                state.active += 1;
                child.reporter.started = true;
                state.children.insert(
                    id,
                    Status::Running {
                        handle: None,
                        aborted: false,
                    },
                );
                (id, Some(child))
            } else {
                let starter: Starter<R> = Box::new(move |rt: &R| {
                    child.reporter.started = true;
                    rt.spawn(child)
                });
                state.children.insert(id, Status::Queued(starter));
                state.queue.push_back(id);
                (id, None)
            }
        };
        // Spawned outside the lock: a runtime that is shutting down may drop
        // the child at once, and its reporter takes the lock.
        if let Some(child) = now {
            file_handle(shared, id, shared.rt.spawn(child));
        }
        AbortHandle {
            id,
            group: self.shared.clone(),
        }
    }

    /// Waits for every child and returns their outputs in spawn order
    /// (children aborted through an [`AbortHandle`] are left out).
    ///
    /// # Panics
    ///
    /// If a child panicked: the other children are cancelled and waited
    /// for, then the panic is resumed here.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     for word in ["a", "b", "c"] {
    ///         group.spawn(async move { word.to_uppercase() });
    ///     }
    ///     assert_eq!(group.join().await, ["A", "B", "C"]);
    /// });
    /// ```
    pub fn join(self) -> Join<T, R> {
        Join {
            group: self,
            outputs: Vec::new(),
            panic: None,
        }
    }
}

impl<U, E, R> TaskGroup<Result<U, E>, R>
where
    U: Send + 'static,
    E: Send + 'static,
    R: Spawn,
{
    /// Waits for every child; the first `Err` cancels every sibling still
    /// running and waits until they have stopped.
    ///
    /// # Errors
    ///
    /// A [`GroupError`] with every error that completed (a cancelled child
    /// is not an error) and how many children were cancelled.
    ///
    /// # Panics
    ///
    /// If a child panicked: the others are cancelled and waited for, then
    /// the panic is resumed here.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { Ok(1) });
    ///     group.spawn(async { Err("broken") });
    ///     group.spawn(std::future::pending());
    ///     let err = group.try_join().await.unwrap_err();
    ///     assert_eq!(*err.first(), "broken");
    ///     assert_eq!(err.cancelled(), 1);
    /// });
    /// ```
    pub fn try_join(self) -> TryJoin<U, E, R> {
        TryJoin {
            group: self,
            outputs: Vec::new(),
            errors: Vec::new(),
            cancelled: 0,
            panic: None,
        }
    }
}

impl<T, R> TaskGroup<T, R>
where
    T: Send + 'static,
    R: Runtime,
{
    /// Cancels the group's [`token`](Self::token), waits up to `grace` for
    /// the children to finish on their own, then aborts the rest and waits
    /// for them to stop. Queued children that never started are aborted at
    /// once. The group's timer measures `grace`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     use std::time::Duration;
    ///     let mut group = portasync::TaskGroup::new();
    ///     let token = group.token();
    ///     group.spawn(async move { token.cancelled().await; 1 }); // listens
    ///     group.spawn(async { std::future::pending::<u32>().await }); // does not
    ///     let report = group.shutdown_graceful(Duration::from_millis(20)).await;
    ///     assert_eq!(report.finished().len(), 1);
    ///     assert_eq!(report.aborted(), 1);
    /// });
    /// ```
    pub fn shutdown_graceful(&mut self, grace: Duration) -> ShutdownGraceful<'_, T, R> {
        self.shared.token.cancel();
        // Queued children have not started: there is nothing to wait for.
        let starters: Vec<_> = {
            let mut state = self.shared.lock();
            let queued: Vec<u64> = state.queue.drain(..).collect();
            queued
                .into_iter()
                .filter_map(|id| state.children.remove(&id))
                .collect()
        };
        drop(starters);
        let sleep = Box::pin(self.shared.rt.sleep(grace));
        ShutdownGraceful {
            group: self,
            sleep: Some(sleep),
            finished: Vec::new(),
            aborted: 0,
        }
    }
}

impl<T, R> Drop for TaskGroup<T, R> {
    fn drop(&mut self) {
        self.shared.token.cancel();
        let (handles, starters) = {
            let mut state = self.shared.lock();
            state.closed = true;
            state.queue.clear();
            let children = std::mem::take(&mut state.children);
            let mut handles = Vec::new();
            let mut starters = Vec::new();
            for (_, status) in children {
                match status {
                    Status::Running { handle, .. } => handles.extend(handle),
                    Status::Queued(starter) => starters.push(starter),
                }
            }
            (handles, starters)
        };
        drop(handles);
        drop(starters);
    }
}

impl<T, R> fmt::Debug for TaskGroup<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("TaskGroup")
            .field("running", &state.active)
            .field("queued", &state.queue.len())
            .field("finished", &state.done.len())
            .finish()
    }
}

/// The future of [`TaskGroup::join_next`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(async { 1 });
///     let next: portasync::JoinNext<'_, i32> = group.join_next();
///     assert_eq!(next.await.unwrap().unwrap(), 1);
/// });
/// ```
///
/// # Cancel safety
///
/// Cancel-safe: a result is taken only when this future returns it.
#[must_use = "futures do nothing unless awaited"]
pub struct JoinNext<'a, T, R = Auto> {
    group: &'a mut TaskGroup<T, R>,
}

impl<T, R> Future for JoinNext<'_, T, R> {
    type Output = Option<Result<T, JoinError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.group
            .poll_next(cx)
            .map(|next| next.map(|(_, result)| result))
    }
}

impl<T, R> fmt::Debug for JoinNext<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinNext")
            .field("group", &self.group)
            .finish()
    }
}

/// The future of [`TaskGroup::shutdown`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(std::future::pending::<()>());
///     let stopping: portasync::ShutdownAll<'_, ()> = group.shutdown();
///     stopping.await;
/// });
/// ```
///
/// # Cancel safety
///
/// Dropping it stops waiting; the children are aborted already.
#[must_use = "futures do nothing unless awaited"]
pub struct ShutdownAll<'a, T, R = Auto> {
    group: &'a mut TaskGroup<T, R>,
}

impl<T, R> Future for ShutdownAll<'_, T, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        while std::task::ready!(self.group.poll_next(cx)).is_some() {}
        Poll::Ready(())
    }
}

impl<T, R> fmt::Debug for ShutdownAll<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownAll")
            .field("group", &self.group)
            .finish()
    }
}

/// The future of [`TaskGroup::join`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(async { 1 });
///     let all: portasync::Join<i32> = group.join();
///     assert_eq!(all.await, [1]);
/// });
/// ```
///
/// # Cancel safety
///
/// Dropping it drops the group, which cancels every child.
#[must_use = "futures do nothing unless awaited"]
pub struct Join<T, R = Auto> {
    group: TaskGroup<T, R>,
    outputs: Vec<(u64, T)>,
    panic: Option<Box<dyn Any + Send>>,
}

// Nothing in it is pinned in place.
impl<T, R> Unpin for Join<T, R> {}

impl<T, R> Future for Join<T, R> {
    type Output = Vec<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = &mut *self;
        while let Some((id, result)) = std::task::ready!(this.group.poll_next(cx)) {
            match result {
                Ok(value) => this.outputs.push((id, value)),
                Err(JoinError::Cancelled) => {}
                Err(err @ JoinError::Panicked(_)) => {
                    if this.panic.is_none() {
                        this.panic = Some(err.into_panic());
                        this.group.abort_all();
                    }
                }
            }
        }
        if let Some(payload) = this.panic.take() {
            resume_unwind(payload);
        }
        let mut outputs = std::mem::take(&mut this.outputs);
        outputs.sort_unstable_by_key(|(id, _)| *id);
        Poll::Ready(outputs.into_iter().map(|(_, value)| value).collect())
    }
}

impl<T, R> fmt::Debug for Join<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join").field("group", &self.group).finish()
    }
}

/// The errors of a [`TaskGroup::try_join`] that failed: every error that
/// completed, in completion order, and how many children were cancelled.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(async { Err::<(), _>("first") });
///     let err = group.try_join().await.unwrap_err();
///     assert_eq!(err.to_string(), "1 task failed, 0 cancelled: first");
///     assert_eq!(err.into_errors(), ["first"]);
/// });
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct GroupError<E> {
    errors: Vec<E>,
    cancelled: usize,
}

impl<E> GroupError<E> {
    /// Every error that completed, first one first.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { Err::<(), _>("bad") });
    ///     let err = group.try_join().await.unwrap_err();
    ///     assert_eq!(err.errors(), ["bad"]);
    /// });
    /// ```
    pub fn errors(&self) -> &[E] {
        &self.errors
    }

    /// Every error that completed, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { Err::<(), _>("bad") });
    ///     let err = group.try_join().await.unwrap_err();
    ///     assert_eq!(err.into_errors(), ["bad"]);
    /// });
    /// ```
    pub fn into_errors(self) -> Vec<E> {
        self.errors
    }

    /// The error that triggered the cancellation.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { Err::<(), _>("bad") });
    ///     let err = group.try_join().await.unwrap_err();
    ///     assert_eq!(*err.first(), "bad");
    /// });
    /// ```
    pub fn first(&self) -> &E {
        &self.errors[0]
    }

    /// How many children were cancelled because of it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { Err::<(), _>("bad") });
    ///     let err = group.try_join().await.unwrap_err();
    ///     assert_eq!(err.cancelled(), 0);
    /// });
    /// ```
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }
}

// By hand: the message reads the first error, which thiserror cannot bound.
impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(
            f,
            "{count} task{plural} failed, {} cancelled: {}",
            self.cancelled,
            self.first()
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GroupError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.first())
    }
}

impl<E: fmt::Debug> fmt::Debug for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupError")
            .field("errors", &self.errors)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

/// The future of [`TaskGroup::try_join`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(async { Ok::<_, ()>(1) });
///     let all: portasync::TryJoin<i32, ()> = group.try_join();
///     assert_eq!(all.await, Ok(vec![1]));
/// });
/// ```
///
/// # Cancel safety
///
/// Dropping it drops the group, which cancels every child.
#[must_use = "futures do nothing unless awaited"]
pub struct TryJoin<U, E, R = Auto> {
    group: TaskGroup<Result<U, E>, R>,
    outputs: Vec<(u64, U)>,
    errors: Vec<E>,
    cancelled: usize,
    panic: Option<Box<dyn Any + Send>>,
}

// Nothing in it is pinned in place.
impl<U, E, R> Unpin for TryJoin<U, E, R> {}

impl<U, E, R> Future for TryJoin<U, E, R> {
    type Output = Result<Vec<U>, GroupError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some((id, result)) = std::task::ready!(this.group.poll_next(cx)) {
            let failing = !this.errors.is_empty() || this.panic.is_some();
            match result {
                Ok(Ok(value)) => {
                    if !failing {
                        this.outputs.push((id, value));
                    }
                }
                Ok(Err(error)) => {
                    this.errors.push(error);
                    if !failing {
                        this.group.abort_all();
                    }
                }
                Err(JoinError::Cancelled) => {
                    if failing {
                        this.cancelled += 1;
                    }
                }
                Err(err @ JoinError::Panicked(_)) => {
                    if this.panic.is_none() {
                        this.panic = Some(err.into_panic());
                        this.group.abort_all();
                    }
                }
            }
        }
        if let Some(payload) = this.panic.take() {
            resume_unwind(payload);
        }
        if !this.errors.is_empty() {
            let errors = std::mem::take(&mut this.errors);
            return Poll::Ready(Err(GroupError {
                errors,
                cancelled: this.cancelled,
            }));
        }
        let mut outputs = std::mem::take(&mut this.outputs);
        outputs.sort_unstable_by_key(|(id, _)| *id);
        Poll::Ready(Ok(outputs.into_iter().map(|(_, value)| value).collect()))
    }
}

impl<U, E, R> fmt::Debug for TryJoin<U, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoin")
            .field("group", &self.group)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

/// What a graceful shutdown found: the results of the children that
/// finished on their own (or had finished before), and how many were
/// aborted.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(async { 5 });
///     let report = group.shutdown_graceful(std::time::Duration::from_secs(1)).await;
///     assert_eq!(report.aborted(), 0);
///     assert_eq!(report.into_finished().pop().unwrap().unwrap(), 5);
/// });
/// ```
#[derive(Debug)]
pub struct Shutdown<T> {
    finished: Vec<Result<T, JoinError>>,
    aborted: usize,
}

impl<T> Shutdown<T> {
    /// The results of the children that finished (a panic included), in
    /// completion order.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { 1 });
    ///     group.spawn(std::future::pending::<i32>());
    ///     let report = group.shutdown_graceful(std::time::Duration::from_millis(10)).await;
    ///     assert_eq!(report.finished().len(), 1);
    /// });
    /// ```
    pub fn finished(&self) -> &[Result<T, JoinError>] {
        &self.finished
    }

    /// The results, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { 1 });
    ///     group.spawn(std::future::pending::<i32>());
    ///     let report = group.shutdown_graceful(std::time::Duration::from_millis(10)).await;
    ///     assert_eq!(report.into_finished().pop().unwrap().unwrap(), 1);
    /// });
    /// ```
    pub fn into_finished(self) -> Vec<Result<T, JoinError>> {
        self.finished
    }

    /// How many children were aborted: still running when the grace period
    /// ended, or queued and never started.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     let mut group = portasync::TaskGroup::new();
    ///     group.spawn(async { 1 });
    ///     group.spawn(std::future::pending::<i32>());
    ///     let report = group.shutdown_graceful(std::time::Duration::from_millis(10)).await;
    ///     assert_eq!(report.aborted(), 1);
    /// });
    /// ```
    pub fn aborted(&self) -> usize {
        self.aborted
    }
}

/// The future of [`TaskGroup::shutdown_graceful`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")]
/// smol::block_on(async {
///     let mut group = portasync::TaskGroup::new();
///     group.spawn(async { 1 });
///     let stopping = group.shutdown_graceful(std::time::Duration::from_secs(1));
///     assert_eq!(stopping.await.aborted(), 0);
/// });
/// ```
///
/// # Cancel safety
///
/// Dropping it stops waiting; children still running go on until the group
/// is dropped or shut down.
#[must_use = "futures do nothing unless awaited"]
pub struct ShutdownGraceful<'a, T, R: Timer = Auto> {
    group: &'a mut TaskGroup<T, R>,
    /// The grace period; `None` once it ended and the rest were aborted.
    sleep: Option<Pin<Box<R::Sleep>>>,
    finished: Vec<Result<T, JoinError>>,
    aborted: usize,
}

// Nothing in it is pinned in place: the sleep is boxed.
impl<T, R: Timer> Unpin for ShutdownGraceful<'_, T, R> {}

impl<T, R: Timer> Future for ShutdownGraceful<'_, T, R> {
    type Output = Shutdown<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Shutdown<T>> {
        let this = &mut *self;
        loop {
            match this.group.poll_next(cx) {
                Poll::Ready(Some((_, Err(JoinError::Cancelled)))) => this.aborted += 1,
                Poll::Ready(Some((_, result))) => this.finished.push(result),
                Poll::Ready(None) => {
                    let finished = std::mem::take(&mut this.finished);
                    return Poll::Ready(Shutdown {
                        finished,
                        aborted: this.aborted,
                    });
                }
                Poll::Pending => {
                    let Some(sleep) = this.sleep.as_mut() else {
                        return Poll::Pending;
                    };
                    std::task::ready!(sleep.as_mut().poll(cx));
                    this.sleep = None;
                    this.group.abort_all();
                }
            }
        }
    }
}

impl<T, R: Timer> fmt::Debug for ShutdownGraceful<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownGraceful")
            .field("grace_over", &self.sleep.is_none())
            .field("aborted", &self.aborted)
            .finish()
    }
}
