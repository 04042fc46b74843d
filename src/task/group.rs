//! `TaskGroup`: a set of spawned tasks that the group owns.
//!
//! Each child runs inside a [`Child`] wrapper that drops the child's future
//! in place as soon as it is done (finished, panicked or aborted), then has
//! its [`Reporter`] report the result (or `Cancelled`) into the group's
//! queue of finished children: so a result is only seen once the child's
//! destructors have run, and completion order comes for free.
//!
//! The wrapper itself stops the child when it is aborted, so the group needs
//! no handle to stop it. It keeps the executor's own handle all the same
//! ([`Held`]), only so that a finished child's task is freed on the joiner's
//! thread when its result is taken (on a runtime of the caller's own, the
//! task is detached at once). On smol's global executor and async-std's, a
//! group with more than 64 children unjoined, spawning from a thread that
//! is not the executor's, hands the next to a launcher task instead
//! ([`Launch`]), which spawns them on the
//! executor's side and detaches them there (not under `max_concurrent`,
//! whose queued children start directly). Children spawned one after
//! another share a [`Batch`], which holds a bit per child for "aborted" and
//! one for "finished", and the task waker of each child that has waited, so
//! that an abort can wake it to stop. Spawning thus takes no lock but the
//! launcher's buffer; a finishing child takes one, `done`, where the joiner
//! takes every result reported so far at once. Under `max_concurrent`,
//! children over the limit wait as boxed starters in `queue` (FIFO); each
//! finishing child then starts the next ones, outside the lock. Lock order:
//! `queue` before `done`; a batch's `wakers` under neither.

use crate::rt::{Auto, BareTask, JoinError, Launch, Runtime, Spawn, Timer, drop_in_place};
use crate::sync::CancelToken;
use crate::wake::{Panic, keep_first, resume, wake_each};
use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
// loom's under `--cfg portasync_loom`, for the models at the end of this
// file; the reference counts stay std's (loom has no `Weak`).
use crate::primitives::{AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

type Starter<R> = Box<dyn FnOnce(&R) -> Option<BareTask> + Send>;

/// Past how many unjoined children a group may hand the next to a launcher
/// (see [`Launch`]).
const LAUNCH_PAST: usize = 64;

/// How many consecutive spawns share one [`Batch`]: one bit each in a word.
const BATCH: usize = 64;
// A child's index in its batch is a bit of a `u64` and is kept in a `u8`.
const _: () = assert!(BATCH <= 64);

/// Keeps what it holds off the cache lines of its neighbours (128 bytes:
/// x86 prefetches lines in pairs).
#[repr(align(128))]
struct Padded<T>(T);

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // Nothing panics while these locks are held but a user's waker; the
    // state is consistent either way.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Children waiting under `max_concurrent`: behind `Shared::queue`.
struct Queue<R> {
    /// `(seq, starter)` in spawn order.
    waiting: VecDeque<(u64, Starter<R>)>,
    /// Children started under a limit (the others are counted by the
    /// group until a limit is set); less `Done::started_reported`, the
    /// number running (wrapping: both only grow).
    started: usize,
    /// The group is gone: start nothing more.
    closed: bool,
    /// A caller of [`start_queued`] is starting children.
    starting: bool,
}

/// A child's result as it reported it.
struct Finished<T> {
    seq: u64,
    result: Result<T, JoinError>,
}

/// What the finishing children and the joiner share: behind `Shared::done`.
struct Done<T> {
    /// Results in completion order, not yet taken by the joiner.
    queue: VecDeque<Finished<T>>,
    /// Reports of children that had started (a queued child aborted before
    /// it started reports too).
    started_reported: usize,
    /// The joiner, when it waits for a result.
    joiner: Option<Waker>,
    /// The group is gone: results are dropped as they come.
    closed: bool,
}

struct Shared<T, R> {
    queue: Padded<Mutex<Queue<R>>>,
    done: Padded<Mutex<Done<T>>>,
    /// Set once a limit is set, never cleared: until then a finishing child
    /// need not look at the queue.
    limited: AtomicBool,
    /// `max_concurrent`.
    limit: AtomicUsize,
    rt: R,
    token: CancelToken,
}

impl<T, R> Shared<T, R> {
    fn queue(&self) -> MutexGuard<'_, Queue<R>> {
        lock(&self.queue.0)
    }

    fn done(&self) -> MutexGuard<'_, Done<T>> {
        lock(&self.done.0)
    }

    /// Children started under a limit and not yet reported; takes `done`
    /// under `queue`.
    fn running(&self, queue: &Queue<R>) -> usize {
        queue.started.wrapping_sub(self.done().started_reported)
    }
}

/// Starts waiting children, oldest first, while the limit allows; each is
/// spawned outside the lock and detached.
///
/// One caller at a time does the starting (`Queue::starting`): any other
/// leaves it to that one, which looks again after every start. Without
/// that, a runtime that drops what is spawned on it (one shutting down)
/// would recurse here once per queued child (the dropped child reports, and
/// its report starts the next) until the stack overflowed.
///
/// A start that panics (a runtime refusing the spawn) stops nothing: its
/// child is dropped, and so reports `Cancelled`, and the next is started.
/// The first such panic is returned, for the caller to resume once its own
/// work is done. (Unwinding out of here instead, the refused child's report
/// found the starting still taken and left it, and nobody started the rest:
/// a group waited for good.)
#[must_use = "a start's panic is returned to be resumed"]
fn start_queued<T, R>(shared: &Shared<T, R>) -> Option<Panic> {
    let mut owner = false;
    let mut panic = None;
    loop {
        let starter = {
            let mut queue = shared.queue();
            if !owner && queue.starting {
                return panic;
            }
            let limit = shared.limit.load(Ordering::Acquire);
            if queue.closed || queue.waiting.is_empty() || shared.running(&queue) >= limit {
                // Under the lock, where the others look: none of them can
                // have left work to this one since it looked.
                queue.starting = false;
                return panic;
            }
            let Some((_, starter)) = queue.waiting.pop_front() else {
                unreachable!("checked just above")
            };
            queue.started = queue.started.wrapping_add(1);
            queue.starting = true;
            owner = true;
            starter
        };
        match catch_unwind(AssertUnwindSafe(|| starter(&shared.rt))) {
            Ok(Some(task)) => task.detach(),
            Ok(None) => {}
            Err(payload) => {
                panic.get_or_insert(payload);
            }
        }
    }
}

/// What the children of one batch share with each other, their abort
/// handles and the group: an allocation per [`BATCH`] spawns instead of one
/// per child. Aligned so that it shares its cache lines with nothing else.
#[repr(align(128))]
struct Batch<T, R> {
    shared: Arc<Shared<T, R>>,
    /// The spawn number of child 0: child `i` is number `first + i`.
    first: u64,
    /// Bit `i`: child `i` was aborted.
    aborted: AtomicU64,
    /// Bit `i`: child `i` has reported.
    finished: AtomicU64,
    /// The task waker of each child that has waited and not yet finished:
    /// what an abort wakes so that the child sees it. Empty until one waits.
    wakers: Mutex<Vec<Option<Waker>>>,
}

impl<T, R> Batch<T, R> {
    fn new(shared: Arc<Shared<T, R>>, first: u64) -> Self {
        Self {
            shared,
            first,
            aborted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Marks the children in `mask` aborted and wakes those that wait; the
    /// first panic of their wakers is returned once all have been woken.
    #[must_use = "a waker's panic is returned to be resumed"]
    fn abort_bits(&self, mask: u64) -> Option<Panic> {
        self.aborted.fetch_or(mask, Ordering::SeqCst);
        let woken: Vec<Waker> = {
            let mut wakers = lock(&self.wakers);
            (0..wakers.len())
                .filter(|i| mask & (1 << i) != 0)
                .filter_map(|i| wakers[i].take())
                .collect()
        };
        // Outside the lock: a waker is the caller's code.
        wake_each(woken)
    }

    /// Files the task waker of child `index`; returns the one it replaces.
    fn register(&self, index: usize, waker: &Waker) -> Option<Waker> {
        let mut wakers = lock(&self.wakers);
        if wakers.len() <= index {
            wakers.resize(BATCH, None);
        }
        wakers[index].replace(waker.clone())
    }
}

/// Reports a child's result when it completes, or `Cancelled` when it is
/// dropped unfinished; declared after the future in [`Child`], so it runs
/// after the future's destructors.
///
/// Kept to four words (its spawn number comes from the batch, its index is a
/// byte): it rides in every child's task, and a smaller task stays in the
/// allocator's cheaper size classes.
struct Reporter<T, R> {
    batch: Arc<Batch<T, R>>,
    /// The waker filed in the batch, if any: a copy to compare against.
    filed: Option<Waker>,
    /// Its bit in the batch, below [`BATCH`].
    index: u8,
    started: bool,
    reported: bool,
}

impl<T, R> Reporter<T, R> {
    fn aborted(&self) -> bool {
        self.batch.aborted.load(Ordering::SeqCst) & (1 << self.index) != 0
    }

    /// The child's spawn number.
    fn seq(&self) -> u64 {
        self.batch.first + u64::from(self.index)
    }

    /// Files the task's waker unless the one filed wakes the same task;
    /// whether the child was aborted meanwhile. Filing before looking at the
    /// bit: an abort either shows here or finds the waker and wakes it.
    fn wait(&mut self, waker: &Waker) -> bool {
        if self
            .filed
            .as_ref()
            .is_some_and(|filed| filed.will_wake(waker))
        {
            return false;
        }
        let stale = self.batch.register(usize::from(self.index), waker);
        self.filed = Some(waker.clone());
        drop(stale);
        self.aborted()
    }

    fn report(&mut self, result: Result<T, JoinError>) {
        self.reported = true;
        let batch = &*self.batch;
        let shared = &*batch.shared;
        if self.filed.take().is_some() {
            // A finished task needs no waking, and its waker would keep its
            // memory alive.
            let stale = lock(&batch.wakers)[usize::from(self.index)].take();
            drop(stale);
        }
        let mut done = shared.done();
        if self.started {
            done.started_reported = done.started_reported.wrapping_add(1);
        }
        // Under `done`: whoever sees the result sees the bit. Every report
        // sets its bit holding `done`, so a load and a store do (no
        // read-modify-write on the executor's hot path).
        let finished = batch.finished.load(Ordering::Relaxed) | 1 << self.index;
        batch.finished.store(finished, Ordering::Release);
        let mut joiner = None;
        if done.closed {
            drop(done);
            drop(result);
        } else {
            done.queue.push_back(Finished {
                seq: self.seq(),
                result,
            });
            joiner = done.joiner.take();
            drop(done);
        }
        // Read after the report is in `done`: should `max_concurrent` set a
        // limit meanwhile, either this sees it, or the next spawn to decide
        // against the limit sees this report.
        if shared.limited.load(Ordering::Acquire) {
            // A refused start's panic is not resumed here: it would unwind
            // into the executor from a child that has finished. The panic
            // hook has reported it, and the refused child reports itself.
            drop(start_queued(shared));
        }
        // Last: the joiner's waker is the caller's code, and should it
        // panic, the queued children have been started all the same.
        if let Some(joiner) = joiner {
            joiner.wake();
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
    /// A child as it runs on the executor: stops when aborted, catches its
    /// panic, and reports. The future is dropped in place before any
    /// report, so that whoever sees a result also sees the child's
    /// destructors done (a hand-written future may hold a permit or a
    /// connection until it is dropped, after it returned `Ready`).
    struct Child<F, T, R> {
        // `None` once dropped.
        #[pin]
        future: Option<F>,
        reporter: Reporter<T, R>,
    }

    impl<F, T, R> PinnedDrop for Child<F, T, R> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped unfinished: by the runtime (shutting down, or a
            // dropped handle), or with its starter while queued.
            let this = this.project();
            if !this.reporter.reported {
                let panic = drop_in_place(this.future).err();
                this.reporter.report(Err(panic.unwrap_or(JoinError::Cancelled)));
            }
        }
    }
}

impl<F: Future<Output = T>, T, R> Future for Child<F, T, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let reporter = this.reporter;
        let mut slot = this.future;
        let result = match slot.as_mut().as_pin_mut() {
            // Polled again after it reported: nothing more to do.
            None => return Poll::Ready(()),
            Some(_) if reporter.aborted() => Err(JoinError::Cancelled),
            Some(future) => match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                Ok(Poll::Pending) => {
                    if !reporter.wait(cx.waker()) {
                        return Poll::Pending;
                    }
                    Err(JoinError::Cancelled) // aborted meanwhile
                }
                Ok(Poll::Ready(value)) => Ok(value),
                Err(payload) => Err(JoinError::panicked(payload)),
            },
        };
        let dropped = drop_in_place(slot);
        reporter.report(match (result, dropped) {
            (Err(JoinError::Panicked(first)), _) => Err(JoinError::Panicked(first)),
            (_, Err(panic)) => Err(panic),
            (result, Ok(())) => result,
        });
        Poll::Ready(())
    }
}

/// What an [`AbortHandle`] needs of its group, whatever the output type.
trait Control: Send + Sync {
    fn abort(&self, index: usize, seq: u64);
    fn is_finished(&self, index: usize) -> bool;
}

impl<T: Send + 'static, R: Send + Sync + 'static> Control for Batch<T, R> {
    fn abort(&self, index: usize, seq: u64) {
        let panic = self.abort_bits(1 << index);
        if self.shared.limited.load(Ordering::Acquire) {
            // Waiting still: it never starts. Dropping its starter drops the
            // future, whose reporter reports the cancellation.
            let starter = {
                let mut queue = self.shared.queue();
                let at = queue.waiting.iter().position(|(id, _)| *id == seq);
                at.and_then(|at| queue.waiting.remove(at))
            };
            drop(starter);
        }
        resume(panic);
    }

    fn is_finished(&self, index: usize) -> bool {
        // Every child reports, also after the group is gone.
        self.finished.load(Ordering::Acquire) & (1 << index) != 0
    }
}

/// What the abort handles of one batch hold: their own count, so that
/// making and dropping handles on the spawning thread never touches the
/// count that the batch's children drop on the executor's. Aligned so that
/// the count shares its cache line with nothing the executor writes.
#[repr(align(128))]
struct Anchor<T, R>(Arc<Batch<T, R>>);

impl<T: Send + 'static, R: Send + Sync + 'static> Control for Anchor<T, R> {
    fn abort(&self, index: usize, seq: u64) {
        self.0.abort(index, seq);
    }

    fn is_finished(&self, index: usize) -> bool {
        self.0.is_finished(index)
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
    /// The child's bit in its batch.
    index: usize,
    /// The child's spawn number.
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
        self.group.abort(self.index, self.id);
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
        self.group.is_finished(self.index)
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
/// - **Dropping the group cancels every task in it**: no orphans, even if
///   a waker of its token's waiters panics (that panic is resumed from the
///   drop afterwards, unless the thread is already unwinding).
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
/// Cost: besides the runtime's own task, no allocation per child (one per
/// 64 spawns, and a child waiting under `max_concurrent` is boxed while it
/// waits). Spawning takes no lock (without a limit); a child takes one
/// briefly as it finishes, and the joiner once for every result reported so
/// far. A child that waits files its task's waker once (again only if it
/// changes), so that an abort can wake it. On smol, tokio and async-std the
/// group keeps the runtime's handle of each child until its result is
/// taken, as a `JoinSet` or a `Vec` of handles would: a finished child's
/// task is then freed on the joiner's thread, not the executor's, which
/// the allocator serves faster. A child that runs on while those spawned
/// after it are joined cannot make the group hold more than twice its
/// unjoined children.
///
/// On smol's global executor and on async-std (both run on
/// async-executor), a group with more than 64 children unjoined, spawning
/// from a thread that is not one of the executor's (`smol::block_on`'s,
/// say), hands the next to a task of its own on the executor, which spawns
/// them there in bulk and lets them go: the spawning thread then only
/// pushes each child, boxed, onto a buffer, and no longer fights the
/// executor's threads for its task registry, which both sides lock for
/// every task. Such a child starts once the launcher has had its turn on
/// the executor (it spawns at most 256 children a turn). Spawning 10,000
/// trivial children from `smol::block_on` and joining them took 0.74 to
/// 0.94 times as long as `smol::spawn` with a `Vec` of handles over seven
/// runs on a 2-core machine, against 1.3 to 1.5 times when spawned one by
/// one; on async-std, 1.0 to 1.2 times its own spawn with a `Vec`, against
/// 1.1 to 1.4. A group spawning from the executor's own threads, one under
/// [`max_concurrent`](Self::max_concurrent), and one on an executor of your
/// own (`Smol::new`) spawn every child directly.
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
    /// The batch the next children join, and how many have joined it.
    batch: Arc<Batch<T, R>>,
    batched: usize,
    /// What the abort handles of `batch` share, made with the first.
    anchor: Option<Arc<dyn Control>>,
    /// References to `batch` for its next children, made a few at a time:
    /// the count then moves between threads once per few spawns, not at
    /// every spawn while the children drop theirs on the executor.
    spare: Vec<Arc<Batch<T, R>>>,
    /// Reached through `get_mut` (no locking) but in `abort_all` and
    /// `Debug`: the lock only keeps the group `Sync` for any `T: Send`.
    local: Mutex<Local<T, R>>,
    /// Children not yet joined: queued, running, or finished with their
    /// result not yet returned.
    len: usize,
    next_seq: u64,
    /// The group's launcher task on smol's global executor or async-std's,
    /// once started.
    launch: Launch,
    /// Children started while no limit was set (see `Queue::started`).
    started: usize,
}

/// The group's own side of the results and batches.
struct Local<T, R> {
    /// Results taken from `done`, in completion order.
    ready: VecDeque<Finished<T>>,
    /// Every batch made, weakly: one that nothing holds any more (no child
    /// still running, no abort handle) has nobody left to stop. What
    /// `abort_all` and the group's drop reach; pruned as it grows.
    batches: Vec<Weak<Batch<T, R>>>,
    held: Held,
}

/// The executor's handles of the children spawned directly (on smol, tokio
/// and async-std; not those handed to a launcher), by spawn number. A child stops itself when aborted, so
/// they are not needed for that: they are kept so that a finished child's
/// task is freed here, on the joiner's thread, when its result is taken, as
/// with a `Vec` of handles or a `JoinSet`. Freed on the executor's threads
/// instead, every task crossed threads in the allocator: on smol a
/// 10,000-task spawn-and-join took about twice as long as smol's own spawn
/// with a `Vec` of handles, against 1.1 to 1.3 times (from run to run)
/// with them; on async-std, 2.0 to 2.1 times before, 1.0 to 1.2 after.
///
/// Kept in blocks of [`HELD_BLOCK`] numbers rather than one buffer that
/// doubles: 10,000 handles in one buffer made the allocator move and
/// consolidate large chunks on every group (one group in a one-thread
/// executor spent about a tenth of its time there).
struct Held {
    /// The block number (spawn number / [`HELD_BLOCK`]) of `blocks[0]`.
    front: u64,
    blocks: VecDeque<HeldBlock>,
    /// An emptied block, kept for the next one needed.
    spare: Option<Box<[Option<BareTask>; HELD_BLOCK]>>,
}

const HELD_BLOCK: usize = 64;

struct HeldBlock {
    /// The handles filed in `slots`.
    live: usize,
    slots: Box<[Option<BareTask>; HELD_BLOCK]>,
}

impl Held {
    fn new() -> Self {
        Self {
            front: 0,
            blocks: VecDeque::new(),
            spare: None,
        }
    }

    /// Files the handle of child `seq`, the latest spawn number. A child
    /// that runs on keeps the front while those behind it are joined: past
    /// about twice the `unjoined` children, the oldest handles are detached
    /// so that memory follows what is still running.
    #[inline]
    fn push(&mut self, seq: u64, task: Option<BareTask>, unjoined: usize) {
        let number = seq / HELD_BLOCK as u64;
        // A spawn that panicked (its number taken, nothing filed) leaves its
        // slot empty: every handle sits at its own number.
        debug_assert!(number >= self.front, "spawn numbers only grow");
        if self.front + self.blocks.len() as u64 <= number {
            self.grow(number, unjoined);
        }
        if let Some(task) = task {
            let block = &mut self.blocks[(number - self.front) as usize];
            block.slots[seq as usize % HELD_BLOCK] = Some(task);
            block.live += 1;
        }
    }

    /// Adds blocks up to block `number`, then lets go of the front blocks
    /// emptied or, past about twice the `unjoined` children, stuck behind a
    /// child that runs on (detaching their handles).
    #[cold]
    fn grow(&mut self, number: u64, unjoined: usize) {
        while self.front + self.blocks.len() as u64 <= number {
            let slots = self
                .spare
                .take()
                .unwrap_or_else(|| Box::new([const { None }; HELD_BLOCK]));
            self.blocks.push_back(HeldBlock { live: 0, slots });
        }
        self.pop_emptied();
        // Never the block just added: at least two stay.
        let most = unjoined.saturating_mul(2).saturating_add(2 * HELD_BLOCK);
        while self.blocks.len().saturating_mul(HELD_BLOCK) > most {
            if let Some(mut block) = self.blocks.pop_front() {
                for task in block.slots.iter_mut().filter_map(Option::take) {
                    task.detach();
                }
                self.spare = Some(block.slots);
            }
            self.front += 1;
        }
    }

    /// Drops the handle of child `seq`, which has finished.
    fn release(&mut self, seq: u64) {
        let Some(at) = (seq / HELD_BLOCK as u64).checked_sub(self.front) else {
            return; // detached already
        };
        let Some(block) = self.blocks.get_mut(at as usize) else {
            return;
        };
        if block.slots[seq as usize % HELD_BLOCK].take().is_some() {
            block.live -= 1;
            if block.live == 0 && at == 0 {
                self.pop_emptied();
            }
        }
    }

    /// Lets emptied blocks go from the front, all but the last: later
    /// numbers may still be filed there.
    fn pop_emptied(&mut self) {
        while self.blocks.len() > 1 && self.blocks[0].live == 0 {
            if let Some(block) = self.blocks.pop_front() {
                self.spare = Some(block.slots);
            }
            self.front += 1;
        }
    }

    /// The handles held.
    #[cfg(all(test, any(feature = "smol", feature = "tokio", feature = "async-std")))]
    fn live(&self) -> usize {
        self.blocks.iter().map(|block| block.live).sum()
    }

    /// The numbers the held blocks span: what the handles cost in memory.
    #[cfg(all(test, any(feature = "smol", feature = "tokio", feature = "async-std")))]
    fn span(&self) -> usize {
        self.blocks.len() * HELD_BLOCK
    }
}

/// The bits of the first `count` children of a batch.
fn first_bits(count: usize) -> u64 {
    if count >= BATCH {
        u64::MAX
    } else {
        (1 << count) - 1
    }
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
        let queue = Queue {
            waiting: VecDeque::new(),
            started: 0,
            closed: false,
            starting: false,
        };
        let done = Done {
            queue: VecDeque::new(),
            started_reported: 0,
            joiner: None,
            closed: false,
        };
        let shared = Arc::new(Shared {
            queue: Padded(Mutex::new(queue)),
            done: Padded(Mutex::new(done)),
            limited: AtomicBool::new(false),
            limit: AtomicUsize::new(usize::MAX),
            rt,
            token: CancelToken::new(),
        });
        let batch = Arc::new(Batch::new(shared.clone(), 0));
        Self {
            local: Mutex::new(Local {
                ready: VecDeque::new(),
                batches: vec![Arc::downgrade(&batch)],
                held: Held::new(),
            }),
            shared,
            batch,
            batched: 0,
            anchor: None,
            spare: Vec::new(),
            len: 0,
            next_seq: 0,
            launch: Launch::default(),
            started: 0,
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
    pub fn max_concurrent(mut self, limit: usize) -> Self {
        assert!(
            limit > 0,
            "TaskGroup::max_concurrent: `limit` must be at least 1"
        );
        let mut queue = self.shared.queue();
        // From now on the queue counts every child that starts.
        queue.started = queue
            .started
            .wrapping_add(std::mem::take(&mut self.started));
        self.shared.limit.store(limit, Ordering::Release);
        self.shared.limited.store(true, Ordering::Release);
        drop(queue);
        // A raised limit has room for children queued under the old one.
        resume(start_queued(&self.shared));
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
        self.len
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
        let waiting = std::mem::take(&mut self.shared.queue().waiting);
        let local = lock(&self.local);
        let mut panic = None;
        for batch in local.batches.iter().filter_map(Weak::upgrade) {
            keep_first(&mut panic, batch.abort_bits(self.spawned_bits(&batch)));
        }
        drop(local);
        // Handed to a launcher and not spawned yet: they never start. Taken
        // after the bits are set, so that any the launcher spawns meanwhile
        // stop before their first poll.
        let unlaunched = self.launch.take();
        // Dropping a starter drops the never-started future, whose reporter
        // reports the cancellation.
        drop(waiting);
        drop(unlaunched);
        resume(panic);
    }

    /// The bits of the children spawned into `batch` so far.
    fn spawned_bits(&self, batch: &Arc<Batch<T, R>>) -> u64 {
        if Arc::ptr_eq(batch, &self.batch) {
            first_bits(self.batched)
        } else {
            u64::MAX
        }
    }

    /// Starts a new batch for the next children.
    fn next_batch(&mut self) {
        let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        if local.batches.len() == local.batches.capacity() {
            // Before the table grows: forget the batches nothing holds.
            local.batches.retain(|batch| batch.strong_count() > 0);
        }
        self.batch = Arc::new(Batch::new(self.shared.clone(), self.next_seq));
        self.anchor = None;
        self.spare.clear();
        local.batches.push(Arc::downgrade(&self.batch));
        self.batched = 0;
    }

    /// Polls for the next finished child, in completion order, with its
    /// spawn number.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(u64, Result<T, JoinError>)>> {
        let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        if local.ready.is_empty() {
            if self.len == 0 {
                return Poll::Ready(None);
            }
            // Takes every result reported so far, in one go.
            let mut done = self.shared.done();
            if done.queue.is_empty() {
                let stale = match &done.joiner {
                    Some(joiner) if joiner.will_wake(cx.waker()) => None,
                    _ => done.joiner.replace(cx.waker().clone()),
                };
                drop(done);
                drop(stale);
                return Poll::Pending;
            }
            // `ready` is empty: the reporters get its buffer back.
            std::mem::swap(&mut done.queue, &mut local.ready);
        }
        let Some(Finished { seq, result }) = local.ready.pop_front() else {
            unreachable!("checked just above")
        };
        local.held.release(seq);
        self.len -= 1;
        Poll::Ready(Some((seq, result)))
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
        // The batch is chosen before the number is taken: a new batch's
        // `first` is this child's number, and a reporter counts its own
        // number from there. Both move together below, even for a spawn
        // that panics later.
        if self.batched == BATCH {
            self.next_batch();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // Counted before spawning: should the runtime drop the child at
        // once (or panic), its report still arrives and is returned.
        self.len += 1;
        let index = self.batched;
        self.batched += 1;
        let handle = AbortHandle {
            index,
            id: seq,
            group: self
                .anchor
                .get_or_insert_with(|| Arc::new(Anchor(self.batch.clone())))
                .clone(),
        };
        if self.spare.is_empty() {
            const AT_ONCE: usize = 16;
            let count = AT_ONCE.min(BATCH - index);
            self.spare.extend((0..count).map(|_| self.batch.clone()));
        }
        let Some(batch) = self.spare.pop() else {
            unreachable!("filled just above")
        };
        // Built where it is handed over, so that it is written once, in
        // place. Until then nothing must return early or panic: the child
        // is already counted in `len`, and without its reporter no report
        // would come.
        let child = move |started| Child {
            future: Some(future),
            reporter: Reporter {
                batch,
                filed: None,
                // Below `BATCH`, which is 64.
                index: index as u8,
                started,
                reported: false,
            },
        };
        let shared = &*self.shared;
        if shared.limited.load(Ordering::Acquire) {
            let mut queue = shared.queue();
            let limit = shared.limit.load(Ordering::Acquire);
            if !queue.waiting.is_empty() || shared.running(&queue) >= limit {
                let mut child = child(false);
                let starter: Starter<R> = Box::new(move |rt: &R| {
                    child.reporter.started = true;
                    crate::rt::spawn_bare(rt, child)
                });
                queue.waiting.push_back((seq, starter));
                drop(queue);
                let unjoined = self.len;
                let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
                local.held.push(seq, None, unjoined);
                // There may be room after all (the limit was raised since
                // the others queued): start what may start, oldest first.
                resume(start_queued(shared));
                return handle;
            }
            // Counted now, before it can report.
            queue.started = queue.started.wrapping_add(1);
        } else {
            self.started = self.started.wrapping_add(1);
        }
        // Spawned outside the lock: a runtime that is shutting down may drop
        // the child at once, and its reporter takes a lock.
        //
        // Through the launcher only with many children unjoined (a group
        // that spawns and joins one at a time gains nothing from it), and
        // not under a limit: the queued children start directly, and one
        // started later must not overtake one admitted before it.
        let many = self.len > LAUNCH_PAST && !shared.limited.load(Ordering::Relaxed);
        let launch = many.then_some(&mut self.launch);
        let task = crate::rt::spawn_through(&shared.rt, child(true), launch);
        let unjoined = self.len;
        let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        local.held.push(seq, task, unjoined);
        handle
    }

    /// Waits for every child and returns their outputs in spawn order.
    /// Cancelled children are left out: those aborted through an
    /// [`AbortHandle`], and any that a runtime shutting down dropped.
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
    /// once. The token is cancelled and `grace` starts when this is called,
    /// not when the future is first polled; the group's timer measures it.
    ///
    /// # Panics
    ///
    /// When it waits on [`Auto`](crate::rt::Auto)'s timer inside a tokio
    /// runtime built without its time driver: see [`Auto`](crate::rt::Auto#panics).
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
        // Queued children have not started: there is nothing to wait for.
        let starters = std::mem::take(&mut self.shared.queue().waiting);
        drop(starters);
        // After the queue is emptied: should a waiter's waker panic, no
        // queued child starts later.
        self.shared.token.cancel();
        let sleep = Box::pin(self.shared.rt.sleep(grace));
        ShutdownGraceful {
            group: self,
            sleep: Some(sleep),
            taken: Vec::new(),
        }
    }
}

impl<T, R> Drop for TaskGroup<T, R> {
    fn drop(&mut self) {
        let waiting = {
            let mut queue = self.shared.queue();
            queue.closed = true;
            std::mem::take(&mut queue.waiting)
        };
        let results = {
            let mut done = self.shared.done();
            done.closed = true;
            done.joiner = None;
            std::mem::take(&mut done.queue)
        };
        let local = self.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut panic = None;
        for batch in local.batches.iter().filter_map(Weak::upgrade) {
            let bits = if Arc::ptr_eq(&batch, &self.batch) {
                first_bits(self.batched)
            } else {
                u64::MAX
            };
            keep_first(&mut panic, batch.abort_bits(bits));
        }
        // After the bits are set: any child the launcher still spawns stops
        // before its first poll.
        let unlaunched = self.launch.close();
        // After the children are stopped: the token's waiters run the
        // caller's wakers, and should one panic, no child is left behind.
        let cancelled = catch_unwind(AssertUnwindSafe(|| self.shared.token.cancel()));
        keep_first(&mut panic, cancelled.err());
        // Outside the locks: dropping a starter reports, and results run
        // the caller's destructors.
        drop(waiting);
        drop(unlaunched);
        drop(results);
        if let Some(payload) = panic {
            // Not a second panic while one unwinds: that would abort.
            if std::thread::panicking() {
                crate::rt::discard(payload);
            } else {
                resume_unwind(payload);
            }
        }
    }
}

impl<T, R> fmt::Debug for TaskGroup<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (running, queued, reported) = {
            let queue = self.shared.queue();
            let done = self.shared.done();
            let started = queue.started.wrapping_add(self.started);
            let running = started.wrapping_sub(done.started_reported);
            (running, queue.waiting.len(), done.queue.len())
        };
        let taken = lock(&self.local).ready.len();
        f.debug_struct("TaskGroup")
            .field("running", &running)
            .field("queued", &queued)
            .field("finished", &(reported + taken))
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
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
/// Displays as `2 tasks failed, 1 cancelled: <first error>`. As that
/// message already ends with the first error's, its
/// [`source`](std::error::Error::source) is the first error's own source
/// (as with a std `io::Error` that wraps another error), so a printed chain
/// of causes shows each message once.
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

    /// How many children ended cancelled once the first error had come:
    /// those it stopped, and any aborted otherwise (through an
    /// [`AbortHandle`], or by a runtime shutting down) that ended after it.
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
        // Not the first error itself: the message carries it already.
        self.first().source()
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

    /// How many children were cancelled rather than finishing: still
    /// running when the grace period ended, queued and never started,
    /// aborted through their [`AbortHandle`] (before the shutdown or during
    /// it) with that cancellation not yet joined, or dropped by a runtime
    /// shutting down.
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
/// Dropping it loses no result: those it had taken from the group go back,
/// for [`join_next`](TaskGroup::join_next) to return. Children still running
/// go on until the group is dropped or shut down, unless the grace period
/// had ended (they were aborted then); the token stays cancelled.
#[must_use = "futures do nothing unless awaited"]
pub struct ShutdownGraceful<'a, T, R: Timer = Auto> {
    group: &'a mut TaskGroup<T, R>,
    /// The grace period; `None` once it ended and the rest were aborted.
    sleep: Option<Pin<Box<R::Sleep>>>,
    /// Results taken from the group so far, with their spawn numbers: given
    /// back if this is dropped before it is done.
    taken: Vec<(u64, Result<T, JoinError>)>,
}

// Nothing in it is pinned in place: the sleep is boxed.
impl<T, R: Timer> Unpin for ShutdownGraceful<'_, T, R> {}

impl<T, R: Timer> Future for ShutdownGraceful<'_, T, R> {
    type Output = Shutdown<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Shutdown<T>> {
        let this = &mut *self;
        loop {
            match this.group.poll_next(cx) {
                Poll::Ready(Some(taken)) => this.taken.push(taken),
                Poll::Ready(None) => {
                    let mut aborted = 0;
                    let finished = std::mem::take(&mut this.taken)
                        .into_iter()
                        .filter_map(|(_, result)| match result {
                            Err(JoinError::Cancelled) => {
                                aborted += 1;
                                None
                            }
                            result => Some(result),
                        })
                        .collect();
                    return Poll::Ready(Shutdown { finished, aborted });
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

impl<T, R: Timer> Drop for ShutdownGraceful<'_, T, R> {
    fn drop(&mut self) {
        // Dropped before it was done: the results it took go back, in the
        // order they came, ahead of any the group has yet to hand out.
        if self.taken.is_empty() {
            return;
        }
        let count = self.taken.len();
        let local = self
            .group
            .local
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for (seq, result) in self.taken.drain(..).rev() {
            local.ready.push_front(Finished { seq, result });
        }
        self.group.len += count;
    }
}

impl<T, R: Timer> fmt::Debug for ShutdownGraceful<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownGraceful")
            .field("grace_over", &self.sleep.is_none())
            .field("taken", &self.taken.len())
            .finish()
    }
}

/// The executor's handles a group holds, on each runtime that gives one
/// (and `Auto`, which falls back to smol or, without it, async-std).
#[cfg(all(test, any(feature = "smol", feature = "tokio", feature = "async-std")))]
mod held_tests {
    use super::*;

    pub(super) fn held<T, R>(group: &mut TaskGroup<T, R>) -> usize {
        let local = group
            .local
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        local.held.live()
    }

    /// The spawn numbers the group's held blocks span.
    fn span<T, R>(group: &mut TaskGroup<T, R>) -> usize {
        let local = group
            .local
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        local.held.span()
    }

    /// A child that never ends keeps the front of the held handles while
    /// thousands behind it finish and are joined: what the group holds
    /// follows what is unjoined, not everything ever spawned.
    #[cfg(feature = "smol")]
    #[test]
    fn held_handles_follow_the_unjoined_children() {
        smol::block_on(held_handles_follow(crate::rt::Smol::global()));
    }

    /// The same on tokio, whose join handles a group holds too.
    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_handles_are_held_and_follow_the_unjoined_children() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let rt = crate::rt::Tokio::from_handle(runtime.handle().clone());
        runtime.block_on(held_handles_follow(rt));
    }

    /// The same on async-std, whose join handles a group holds too.
    #[cfg(feature = "async-std")]
    #[test]
    fn async_std_handles_are_held_and_follow_the_unjoined_children() {
        async_std::task::block_on(held_handles_follow(crate::rt::AsyncStd));
    }

    /// The same on `Auto` outside tokio: smol, or async-std without smol
    /// (`.ci/run` tests the async-std feature alone for this).
    #[cfg(any(feature = "smol", feature = "async-std"))]
    #[test]
    fn auto_handles_are_held_and_follow_the_unjoined_children() {
        futures_lite::future::block_on(held_handles_follow(Auto));
    }

    /// What smol's global executor threads' names start with.
    #[cfg(feature = "smol")]
    pub(super) const SMOL_THREAD: &str = "smol-";

    /// async-std's executor threads' name.
    #[cfg(feature = "async-std")]
    const ASYNC_STD_THREAD: &str = "async-std/runtime";

    /// From a thread that is not the executor's, a group on smol's global
    /// executor or async-std's hands its children past the 64th to its
    /// launcher, which keeps no handle; all of them run and report all the
    /// same. Dropping the group then ends the launcher, which by then waits
    /// for more.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    async fn launched_past_the_first_64<R: Spawn>(rt: R, executor: &'static str) {
        let group = spawn_and_join_1000(rt, executor, 64).await;
        let launcher = group
            .launch
            .launcher()
            .expect("a launcher past 64 children");
        drop(group);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while Arc::strong_count(&launcher) > 1 {
            assert!(std::time::Instant::now() < deadline, "the launcher runs on");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol_children_past_the_first_64_go_through_a_launcher() {
        smol::block_on(launched_past_the_first_64(
            crate::rt::Smol::global(),
            SMOL_THREAD,
        ));
    }

    #[cfg(feature = "async-std")]
    #[test]
    fn async_std_children_past_the_first_64_go_through_a_launcher() {
        async_std::task::block_on(launched_past_the_first_64(
            crate::rt::AsyncStd,
            ASYNC_STD_THREAD,
        ));
    }

    /// `Auto` outside tokio: smol, or async-std without smol.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    #[test]
    fn auto_children_past_the_first_64_go_through_a_launcher() {
        #[cfg(feature = "smol")]
        let executor = SMOL_THREAD;
        #[cfg(not(feature = "smol"))]
        let executor = ASYNC_STD_THREAD;
        futures_lite::future::block_on(launched_past_the_first_64(Auto, executor));
    }

    /// Spawns 1,000 children into a group on `rt`, checks how many handles
    /// the group holds, then joins them all (within a minute); nothing is
    /// held after. Each child checks that it runs on a thread named
    /// `executor` (a prefix).
    #[cfg(any(feature = "smol", feature = "async-std"))]
    pub(super) async fn spawn_and_join_1000<R: Spawn>(
        rt: R,
        executor: &'static str,
        held_after_spawning: usize,
    ) -> TaskGroup<u32, R> {
        let mut group = TaskGroup::with_runtime(rt);
        for i in 0..1_000_u32 {
            group.spawn(async move {
                let thread = std::thread::current();
                let name = thread.name().unwrap_or_default();
                assert!(name.starts_with(executor), "child {i} ran on {name:?}");
                i
            });
        }
        assert_eq!(held(&mut group), held_after_spawning);
        let joined = async {
            let mut outputs: Vec<u32> = Vec::new();
            while let Some(result) = group.join_next().await {
                outputs.push(result.unwrap());
            }
            Some(outputs)
        };
        let timeout = async {
            crate::rt::IoSleep::after(Duration::from_secs(60)).await;
            None
        };
        let mut outputs = futures_lite::future::or(joined, timeout)
            .await
            .expect("every child reports within a minute");
        outputs.sort_unstable();
        assert_eq!(outputs, (0..1_000).collect::<Vec<_>>());
        assert_eq!(held(&mut group), 0);
        group
    }

    async fn held_handles_follow<R: Spawn>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let stuck = group.spawn(async {
            std::future::pending::<()>().await;
            u64::MAX
        });
        assert_eq!(held(&mut group), 1, "the runtime's handle is held");
        let mut sum = 0;
        for i in 0..10_000 {
            group.spawn(async move { i });
            sum += group.join_next().await.unwrap().unwrap();
            assert!(span(&mut group) <= 2 * (group.len() + 1) + 2 * HELD_BLOCK);
        }
        assert_eq!(sum, 10_000 * 9_999 / 2);
        assert_eq!(group.len(), 1);
        stuck.abort();
        assert!(group.join_next().await.unwrap().unwrap_err().is_cancelled());
        assert_eq!(held(&mut group), 0, "joined children hold nothing");
    }
}

#[cfg(all(test, feature = "smol"))]
mod tests {
    use super::*;
    use crate::rt::Smol;

    use super::held_tests::{SMOL_THREAD, held, spawn_and_join_1000};

    /// What a group adds to each child's task stays at four words: the
    /// batch, the filed waker, and a byte each for the index and the flags.
    /// Spawn numbers past a batch's first are counted from the batch, not
    /// carried (the size test fails if they are: five words).
    #[test]
    fn a_reporter_is_four_words() {
        assert!(std::mem::size_of::<Reporter<u64, Smol>>() <= 4 * std::mem::size_of::<usize>());
    }

    /// Children of later batches report their own spawn numbers, which
    /// `join` puts them in order by.
    #[test]
    fn spawn_numbers_run_on_across_batches() {
        smol::block_on(async {
            let mut group = TaskGroup::with_runtime(Smol::global());
            let count = 3 * BATCH as u64 + 5;
            for i in 0..count {
                group.spawn(async move { i });
            }
            assert_numbered(numbered(&mut group).await, count, &[]);
        });
    }

    /// Every result with its spawn number, in completion order.
    async fn numbered<T, R>(group: &mut TaskGroup<T, R>) -> Vec<(u64, Result<T, JoinError>)> {
        let mut all = Vec::new();
        while let Some(next) = std::future::poll_fn(|cx| group.poll_next(cx)).await {
            all.push(next);
        }
        all
    }

    /// Checks that `count` children reported, each with its own number as
    /// its output, except exactly those in `cancelled`, which report a
    /// cancellation.
    fn assert_numbered(all: Vec<(u64, Result<u64, JoinError>)>, count: u64, cancelled: &[u64]) {
        assert_eq!(all.len() as u64, count);
        let mut seen = Vec::new();
        for (seq, result) in all {
            match result {
                Ok(value) => assert_eq!(value, seq, "child {seq} reported another number"),
                Err(error) => {
                    assert!(error.is_cancelled(), "child {seq}: {error}");
                    seen.push(seq);
                }
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, cancelled);
    }

    /// Smol, refusing (by panicking) the spawns whose numbers it is given,
    /// and holding every child back until `gate` (if any) closes.
    #[derive(Clone, Default)]
    struct Rigged {
        spawns: Arc<AtomicUsize>,
        refuse: &'static [u64],
        gate: Option<async_channel::Receiver<()>>,
    }

    impl Spawn for Rigged {
        fn spawn<F>(&self, future: F) -> crate::rt::JoinHandle<F::Output>
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            let n = self.spawns.fetch_add(1, Ordering::SeqCst) as u64;
            assert!(!self.refuse.contains(&n), "spawn {n} refused");
            let gate = self.gate.clone();
            Smol::global().spawn(async move {
                if let Some(gate) = gate {
                    let _closed = gate.recv().await;
                }
                future.await
            })
        }

        fn spawn_blocking<F, T>(&self, f: F) -> crate::rt::JoinHandle<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            Smol::global().spawn_blocking(f)
        }
    }

    /// A spawn that panics uses up its number and its place in the batch
    /// together: the children after it, in this batch and the next ones,
    /// still report their own numbers, and the refused one reports a
    /// cancellation.
    #[test]
    fn a_refused_spawn_keeps_later_numbers_in_step() {
        const REFUSE: &[u64] = &[0, 62, 63, 64, 65, 127, 128];
        let rt = Rigged {
            refuse: REFUSE,
            ..Rigged::default()
        };
        smol::block_on(async {
            let mut group = TaskGroup::with_runtime(rt);
            for i in 0..197u64 {
                let spawned =
                    catch_unwind(AssertUnwindSafe(|| drop(group.spawn(async move { i }))));
                assert_eq!(spawned.is_err(), REFUSE.contains(&i));
            }
            assert_numbered(numbered(&mut group).await, 197, REFUSE);
        });
    }

    /// A queued child whose start panics (the runtime refuses the spawn)
    /// does not strand the children queued behind it: the refused one
    /// reports a cancellation and the next starts. (From a review: the
    /// refused child's report found the starting still taken and left it,
    /// and nobody started the rest.)
    #[test]
    fn a_refused_start_does_not_strand_the_queue() {
        let (release, gate) = async_channel::bounded::<()>(1);
        let rt = Rigged {
            refuse: &[1], // the second spawn to reach the runtime: child 1
            gate: Some(gate),
            ..Rigged::default()
        };
        smol::block_on(async {
            let mut group = TaskGroup::with_runtime(rt).max_concurrent(1);
            for i in 0..3u64 {
                group.spawn(async move { i });
            }
            // Child 0 runs and reports; its report starts child 1, whose
            // spawn panics (on child 0's task); child 2 starts next.
            drop(release);
            let joined =
                futures_lite::future::or(async { Some(numbered(&mut group).await) }, async {
                    smol::Timer::after(Duration::from_secs(30)).await;
                    None
                })
                .await
                .expect("the queue was stranded");
            assert_numbered(joined, 3, &[1]);
        });
    }

    /// A graceful shutdown dropped part-way (say, losing a select) gives
    /// back the results it had taken: `join_next` returns them. (From a
    /// review: they were dropped with it.)
    #[test]
    fn a_dropped_graceful_shutdown_gives_its_results_back() {
        smol::block_on(async {
            let mut group = TaskGroup::with_runtime(Smol::global());
            let done = group.spawn(async { 0u64 });
            group.spawn(std::future::pending::<u64>());
            while !done.is_finished() {
                futures_lite::future::yield_now().await;
            }
            {
                let mut stopping = group.shutdown_graceful(Duration::from_secs(3600));
                assert!(
                    futures_lite::future::poll_once(&mut stopping)
                        .await
                        .is_none()
                );
            }
            assert_eq!(group.len(), 2);
            group.abort_all();
            assert_numbered(numbered(&mut group).await, 2, &[1]);
        });
    }

    /// Children queued under a limit across batch boundaries keep their
    /// numbers, and aborting queued ones there cancels exactly those.
    #[test]
    fn queued_children_keep_their_numbers_across_batches() {
        const ABORT: &[u64] = &[63, 64, 130, 196];
        smol::block_on(async {
            let gate = Arc::new(async_lock::RwLock::new(()));
            let closed = gate.write().await;
            let mut group = TaskGroup::with_runtime(Smol::global()).max_concurrent(3);
            let mut handles = Vec::new();
            for i in 0..197u64 {
                let gate = gate.clone();
                handles.push(group.spawn(async move {
                    drop(gate.read().await);
                    i
                }));
            }
            for &i in ABORT {
                handles[i as usize].abort();
            }
            drop(closed);
            assert_numbered(numbered(&mut group).await, 197, ABORT);
        });
    }

    /// A spawn number left unfiled (its spawn panicked) does not shift the
    /// handles after it: releasing it, or the one after, drops only its own.
    #[test]
    fn a_gap_in_spawn_numbers_keeps_handles_at_their_numbers() {
        let executor = std::sync::Arc::new(async_executor::Executor::new());
        let pending = || BareTask::Smol(executor.spawn(std::future::pending::<()>()));
        let mut held = Held::new();
        held.push(0, Some(pending()), 1);
        held.push(2, Some(pending()), 3); // number 1 panicked
        assert_eq!(held.live(), 2);
        held.release(1);
        assert!(held.blocks[0].slots[2].is_some(), "number 2 is still held");
        held.release(0);
        assert!(held.blocks[0].slots[0].is_none(), "number 0 is released");
        assert_eq!(held.live(), 1);
        held.release(2);
        assert_eq!(held.live(), 0);
        // Across blocks: an emptied block goes once a later one exists.
        let next = HELD_BLOCK as u64;
        held.push(next, Some(pending()), 1);
        held.push(next + 1, Some(pending()), 2);
        assert_eq!((held.front, held.blocks.len()), (1, 1));
        held.release(next + 1);
        assert!(held.blocks[0].slots[0].is_some(), "its own number only");
    }

    /// Children spawned in a row and joined in a row leave nothing held. On
    /// one of smol's own threads every child is spawned directly.
    #[test]
    fn joined_children_release_their_handles() {
        smol::block_on(smol::spawn(async {
            let group = spawn_and_join_1000(Smol::global(), SMOL_THREAD, 1_000).await;
            assert!(group.launch.launcher().is_none());
        }));
    }

    /// `abort_all` takes back the children the launcher holds: they report
    /// at once, unpolled; those spawned stop at their first poll.
    #[test]
    fn abort_all_takes_back_what_the_launcher_holds() {
        let executor = std::sync::Arc::new(async_executor::Executor::new());
        let polled = std::sync::Arc::new(AtomicUsize::new(0));
        let mut group = TaskGroup::with_runtime(Smol::new(executor.clone()));
        group.launch.test_any_executor = true;
        for _ in 0..100 {
            let polled = polled.clone();
            group.spawn(async move {
                polled.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await
            });
        }
        assert_eq!(held(&mut group), 64);
        group.abort_all();
        let mut next = || {
            let next = futures_lite::future::poll_once(group.join_next());
            futures_lite::future::block_on(next)
        };
        for _ in 0..36 {
            let Some(Some(Err(error))) = next() else {
                panic!("a child handed over did not report at once")
            };
            assert!(error.is_cancelled());
        }
        assert!(next().is_none(), "a spawned child reported before it ran");
        while executor.try_tick() {}
        for _ in 0..64 {
            let Some(Some(Err(error))) = next() else {
                panic!("a spawned child did not report")
            };
            assert!(error.is_cancelled());
        }
        assert!(matches!(next(), Some(None)));
        assert_eq!(polled.load(Ordering::SeqCst), 0, "an aborted child ran");
    }

    /// A group that joins each child as it spawns it never has many
    /// unjoined: it starts no launcher.
    #[test]
    fn a_group_joining_as_it_spawns_starts_no_launcher() {
        smol::block_on(async {
            let mut group = TaskGroup::with_runtime(Smol::global());
            for i in 0..200_u32 {
                group.spawn(async move { i });
                assert_eq!(group.join_next().await.unwrap().unwrap(), i);
            }
            assert!(group.launch.launcher().is_none());
        });
    }

    /// Under a limit every child goes straight to the runtime, as the queued
    /// ones are started: none overtakes another in a launcher.
    #[test]
    fn a_limited_group_starts_no_launcher() {
        smol::block_on(async {
            let mut group = TaskGroup::with_runtime(Smol::global()).max_concurrent(1_000);
            for i in 0..200_u32 {
                group.spawn(async move { i });
            }
            assert!(group.launch.launcher().is_none());
            assert_eq!(group.join().await, (0..200).collect::<Vec<_>>());
        });
    }

    /// A dropped group aborts its children, but a child is finished only
    /// once it has stopped: here, not before the runtime lets it run.
    #[test]
    fn a_child_is_finished_when_it_stops_not_when_its_group_goes() {
        let (release, gate) = async_channel::bounded::<()>(1);
        let mut group = TaskGroup::with_runtime(Rigged {
            gate: Some(gate),
            ..Rigged::default()
        });
        let child = group.spawn(async { 1 });
        drop(group);
        assert!(!child.is_finished(), "finished before it ran");
        drop(release);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !child.is_finished() {
            assert!(std::time::Instant::now() < deadline, "never finished");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// loom models of what the children and the group share: the abort bits
/// against a child filing its waker, the reports against the joiner, and a
/// limit set while a child finishes. Each child runs on a loom thread of its
/// own that nobody joins, so a child or joiner that is never woken shows up
/// as a deadlock. Run with `--cfg portasync_loom` (see `.ci/run`).
#[cfg(all(test, portasync_loom))]
mod loom_models {
    use super::*;
    use crate::rt::JoinHandle;
    use loom::future::block_on;

    /// Runs each task on a loom thread of its own.
    #[derive(Clone)]
    struct Threads;

    impl Spawn for Threads {
        fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            loom::thread::spawn(move || drop(block_on(future)));
            JoinHandle::detached()
        }

        fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            loom::thread::spawn(move || drop(f()));
            JoinHandle::detached()
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// Spawns a child, aborts it at once, and hands its one result to
    /// `check`; its handle then sees it finished, and the group is empty.
    fn abort_at_once<F>(child: fn() -> F, check: fn(Result<u8, JoinError>))
    where
        F: Future<Output = u8> + Send + 'static,
    {
        model(move || {
            let mut group = TaskGroup::with_runtime(Threads);
            let handle = group.spawn(child());
            handle.abort();
            check(block_on(group.join_next()).expect("one child"));
            assert!(handle.is_finished());
            assert!(block_on(group.join_next()).is_none());
        });
    }

    /// A child that waits for ever, aborted while it files its waker: it
    /// either sees the bit or is woken to see it, stops, and the joiner gets
    /// its cancellation.
    #[test]
    fn an_abort_stops_a_waiting_child() {
        abort_at_once(std::future::pending, |result| {
            assert!(result.unwrap_err().is_cancelled());
        });
    }

    /// A child that finishes on its own while it is aborted: one report,
    /// either its output or its cancellation.
    #[test]
    fn an_abort_races_a_finishing_child() {
        abort_at_once(
            || async { 7 },
            |result| match result {
                Ok(output) => assert_eq!(output, 7),
                Err(error) => assert!(error.is_cancelled()),
            },
        );
    }

    /// Two children report while the joiner waits: it gets both, and each
    /// handle sees its child finished.
    #[test]
    fn reports_race_the_joiner() {
        model(|| {
            let mut group = TaskGroup::with_runtime(Threads);
            let first = group.spawn(async { 1u8 });
            let second = group.spawn(async { 2u8 });
            let mut sum = 0;
            while let Some(result) = block_on(group.join_next()) {
                sum += result.unwrap();
            }
            assert_eq!(sum, 3);
            assert!(first.is_finished() && second.is_finished());
        });
    }

    /// A limit set while a child started without one finishes: the next
    /// child, queued behind it or not, still starts.
    #[test]
    fn a_limit_set_while_a_child_finishes_starts_the_next() {
        model(|| {
            let mut group = TaskGroup::with_runtime(Threads);
            group.spawn(async { 1u8 });
            let mut group = group.max_concurrent(1);
            group.spawn(async { 2u8 });
            assert_eq!(block_on(group.join()), [1, 2]);
        });
    }

    /// Children queued while the one running finishes: the spawns and the
    /// reports all try to start the queue; whichever does, the others leave
    /// it the work, and each child starts once (a lost start leaves the
    /// joiner waiting, a deadlock). With three, the report of a child that
    /// the starter has just started can come while the starter looks again.
    #[test]
    fn spawns_and_reports_all_start_the_queue() {
        model(|| {
            let mut group = TaskGroup::with_runtime(Threads).max_concurrent(1);
            for i in 0..3u8 {
                group.spawn(async move { i });
            }
            assert_eq!(block_on(group.join()), [0, 1, 2]);
        });
    }
}
