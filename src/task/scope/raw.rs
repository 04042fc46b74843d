//! A child of [`scope`](super::scope) as one allocation: its future, its
//! output and the state its wakers need, shared by the scope's driver (the
//! one owner of the future, through [`Child`]), the child's handle (the one
//! taker of the output, through [`Handle`]) and the child's wakers. This is
//! the layout of a `FuturesUnordered` task, with the output added.
//!
//! The one module of `scope` with `unsafe`. Nothing safe can put these in
//! one allocation:
//!
//! - The future is pinned inside an `Arc`, where no safe API reaches it
//!   mutably. It sits in an `UnsafeCell` that only [`Child`] touches, and
//!   `Child` is unique and needs `&mut self`, so it is the lock.
//! - The output is handed from the `Child` to the [`Handle`] through an
//!   `UnsafeCell` whose owner an atomic state decides (see [`Output`]), so
//!   that taking a finished output costs no lock.
//! - A waker must be `'static` (`std::task::Wake` demands it), but the
//!   allocation's type borrows for `'scope`. The waker's vtable is written
//!   by hand over the same `Arc`. It also counts the scope's ready queue
//!   only in wakers that are cloned, so a child that only yields pays no
//!   count for it.
//!
//! Why a waker that outlives the scope is sound: it touches only the
//! [`Header`] (`'static` data: a state, an index and the ready queue, which
//! the waker holds a count of). And when the last reference goes, perhaps a
//! waker's long after the scope ended, the allocation holds neither future
//! nor output any more, so freeing it runs no code of the child's: the
//! future was dropped in place by `Child` (which the scope drops, or is
//! dropped with, while `'scope` lasts), and the output by the handle (also
//! within `'scope`) or, once the handle is gone, as soon as it was made.
//! Leaking takes references along: a leaked scope's futures, or a leaked
//! handle's output, are never freed nor dropped, and never touched again
//! (pinned memory is never reused).
//!
//! The module also holds [`Erased`], the one unsafe step of
//! [`scope_blocking`](super::scope_blocking): erasing a child's lifetime so
//! that a runtime can spawn it.
//!
//! Miri runs over all of it: `tests/scope.rs`, modules `core` and `miri`
//! (a step of `.ci/run`).

use super::ReadyQueue;
use super::blocking::{BlockingScope, InsideChild, Live};
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
// loom's under `--cfg portasync_loom` (the models at the end of this file);
// the reference counts stay std's, which the waker's vtable and the trait
// objects need.
use crate::primitives::{self, AtomicU8, AtomicUsize, Mutex, MutexGuard, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// Woken and not polled since: in a ready list, or about to be put in one
/// by the driver (if woken while `RUNNING`). Set for good once the child
/// finished or was dropped, so that stale wakers do nothing.
const QUEUED: u8 = 1;
/// Being polled by the driver.
const RUNNING: u8 = 2;

/// What a child's waker needs: `'static`, unlike the rest of the task.
struct Header {
    /// `QUEUED` and `RUNNING`.
    state: AtomicU8,
    /// The child's place among the scope's children, set once before its
    /// first poll (so before any waker of it exists).
    index: AtomicUsize,
    /// The scope's ready queue, from `Arc::as_ptr`: counted not by the task
    /// but by whoever may wake it. The driver's `Arc` keeps it alive while
    /// the waker lent to a poll exists, and each waker of the task's own (a
    /// clone) holds a count of it: a child that never clones its waker (a
    /// yield) costs no count.
    queue: QueueRef,
}

/// A pointer to the scope's ready queue.
struct QueueRef(NonNull<ReadyQueue>);

// SAFETY: it stands for a shared `&ReadyQueue`, which is `Send` and `Sync`
// because `ReadyQueue` is `Sync`; when it may be used is `Header`'s rule.
unsafe impl Send for QueueRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for QueueRef {}

impl Header {
    /// # Safety
    ///
    /// The queue must be alive: called by a waker of the task's own (which
    /// holds a count of it) or the waker lent to a poll (the driver holds
    /// one meanwhile).
    unsafe fn wake(&self) {
        // While it runs, the driver requeues it afterwards, without the
        // queue's lock: a child that wakes itself (a yield) costs less.
        if self.state.fetch_or(QUEUED, Ordering::AcqRel) & (QUEUED | RUNNING) == 0 {
            // SAFETY: the caller keeps the queue alive.
            let queue = unsafe { self.queue.0.as_ref() };
            queue.push(self.index.load(Ordering::Acquire));
        }
    }
}

struct Task<F: Future> {
    header: Header,
    output: Output<F::Output>,
    /// Touched only through this task's one [`Child`]; `None` once the
    /// future finished or was dropped.
    future: UnsafeCell<Option<F>>,
}

// SAFETY: the parts that are not `Sync` by themselves are `future`, which
// only the task's one `Child` reaches (through `&mut Child`), and the
// output's `value`, which `Output`'s protocol hands from the `Child` to the
// one `Handle` (see there). A shared `&Task` (a waker's) touches neither, so
// sharing the task across threads shares no access to `F` or its output;
// moving the `Child` or the `Handle` moves that access, which `F: Send` and
// `F::Output: Send` allow.
unsafe impl<F: Future + Send> Sync for Task<F> where F::Output: Send {}

/// The child finished (its output is in `value` until taken), or was
/// dropped unfinished (`value` stays `None`).
const DONE: u8 = 1;
/// The handle is gone: whoever sets the second of `DONE` and `DETACHED`
/// drops the output.
const DETACHED: u8 = 2;
/// The handle stored a waker in `waker`.
const WAKER: u8 = 4;

/// A child's output on its way to its handle.
///
/// `value` has one owner at a time, decided by `state`: the `Child` writes
/// it before it sets `DONE`; from then on it is the `Handle`'s, or, if
/// `DETACHED` was set first, the `Child` drops it right after. No one else
/// touches it.
struct Output<T> {
    state: AtomicU8,
    value: primitives::UnsafeCell<Option<T>>,
    waker: Mutex<Option<Waker>>,
}

impl<T> Output<T> {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(0),
            value: primitives::UnsafeCell::new(None),
            waker: Mutex::new(None),
        }
    }

    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        // No user code runs under the lock: the state is consistent either
        // way.
        self.waker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the end of the child: `Some(output)`, or `None` if it was
    /// dropped unfinished; wakes the handle. Once only, by the `Child`.
    fn finish(&self, value: Option<T>) {
        if let Some(value) = value {
            // SAFETY: `DONE` is not set yet, so `value` is the `Child`'s
            // alone (the caller), and it is written only here, once.
            self.value.with_mut(|slot| unsafe { *slot = Some(value) });
        }
        let state = self.state.fetch_or(DONE, Ordering::AcqRel);
        if state & DETACHED != 0 {
            // SAFETY: the handle left before `DONE`, so it never touches
            // `value`: it stays the `Child`'s, which drops it now.
            drop(self.value.with_mut(|slot| unsafe { (*slot).take() }));
        }
        if state & WAKER != 0 {
            let waker = self.waker().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    /// For the `Handle`: the output once `DONE`, else stores the waker.
    fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if !self.is_done() {
            {
                let mut waker = self.waker();
                match &mut *waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    waker => *waker = Some(cx.waker().clone()),
                }
            }
            // After the store: either `finish` sees `WAKER` and wakes the
            // stored waker, or this sees `DONE`.
            if self.state.fetch_or(WAKER, Ordering::AcqRel) & DONE == 0 {
                return Poll::Pending;
            }
        }
        // SAFETY: `DONE` is set and `DETACHED` is not (the one handle calls
        // this, and sets `DETACHED` only when dropped), so `value` is the
        // handle's, borrowed mutably by the caller.
        Poll::Ready(self.value.with_mut(|slot| unsafe { (*slot).take() }))
    }

    /// For the `Handle`, when dropped.
    fn detach(&self) {
        if self.state.fetch_or(DETACHED, Ordering::AcqRel) & DONE != 0 {
            // SAFETY: `DONE` was set first, so `value` is the handle's
            // (the caller, being dropped): the `Child` is done with it.
            drop(self.value.with_mut(|slot| unsafe { (*slot).take() }));
        }
    }
}

impl<F: Future> Task<F> {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        Self::clone_waker,
        Self::wake,
        Self::wake_by_ref,
        Self::drop_waker,
    );

    // The waker's functions. Each waker holds one strong count of the task's
    // `Arc` and one of the scope's ready queue (the one `Child::poll` lends
    // holds neither and is never dropped); its data pointer is the task's
    // address, from `Arc::as_ptr`.

    unsafe fn clone_waker(data: *const ()) -> RawWaker {
        // SAFETY: `data` comes from `Arc::as_ptr` of a live `Arc<Task<F>>`
        // (the waker being cloned holds or borrows a count), so adding one
        // more count is allowed; the new waker owns it.
        unsafe { Arc::increment_strong_count(data.cast::<Self>()) };
        // SAFETY: the queue is alive (the waker being cloned holds a count,
        // or is the lent one, while the driver holds one), and its pointer
        // is `Arc::as_ptr` of an `Arc<ReadyQueue>`; the new waker owns the
        // count.
        unsafe {
            let queue = (*data.cast::<Self>()).header.queue.0.as_ptr();
            Arc::increment_strong_count(queue.cast_const());
        }
        RawWaker::new(data, &Self::VTABLE)
    }

    unsafe fn wake(data: *const ()) {
        // SAFETY: a waker woken by value gives up the counts it holds: the
        // `Arc`s take them over (after the wake, which needs the queue).
        // Dropping the task's last frees a task whose future and output are
        // gone (see the module doc).
        unsafe {
            let task = Arc::from_raw(data.cast::<Self>());
            task.header.wake();
            drop(Arc::from_raw(task.header.queue.0.as_ptr().cast_const()));
        }
    }

    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: the waker holds (or borrows) a count of the task and the
        // queue, so both are alive; only the task's `'static`, `Sync`
        // header is read, never `F`.
        unsafe { (*data.cast::<Self>()).header.wake() };
    }

    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: the waker gives up the counts it holds, as in `wake`.
        unsafe {
            let task = Arc::from_raw(data.cast::<Self>());
            drop(Arc::from_raw(task.header.queue.0.as_ptr().cast_const()));
        }
    }
}

/// The scope's side of a task, without its type.
trait ScopeSide: Send + Sync {
    fn header(&self) -> &Header;

    /// Polls the future with the task's own waker, if the future is still
    /// there.
    ///
    /// # Safety
    ///
    /// Only through the task's one [`Child`], which is borrowed mutably
    /// meanwhile; `data` is `Arc::as_ptr` of the `Child`'s `Arc`.
    unsafe fn poll(&self, data: *const ()) -> Polled;

    /// Drops the future in place, if it is still there; the handle then
    /// finds the child dropped unfinished.
    ///
    /// # Safety
    ///
    /// As for [`poll`](Self::poll).
    unsafe fn drop_future(&self);
}

impl<F> ScopeSide for Task<F>
where
    F: Future + Send,
    F::Output: Send,
{
    fn header(&self) -> &Header {
        &self.header
    }

    unsafe fn poll(&self, data: *const ()) -> Polled {
        // SAFETY: the caller is the one `Child`, borrowed mutably for this
        // call, so no other reference to the future exists; the future's
        // own poll cannot reach its `Child` (the driver holds it).
        let slot = unsafe { &mut *self.future.get() };
        let Some(future) = slot.as_mut() else {
            return Polled::Finished;
        };
        // SAFETY: the future stays where it is until it is dropped: the
        // `Arc` never moves its contents, the future is never moved out of
        // `slot`, and it is dropped in place (`*slot = None`) before the
        // memory is freed or reused; a leaked task is never freed.
        let future = unsafe { Pin::new_unchecked(future) };
        // SAFETY: `data` is the address of this task (`Arc::as_ptr`, so
        // with the whole allocation's provenance, not `&self`'s) and the
        // vtable is this type's. The waker borrows the `Child`'s count, so
        // it is wrapped in `ManuallyDrop` (never dropped) and does not
        // outlive this call; its clones take counts of their own.
        let waker =
            ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &Self::VTABLE)) });
        let mut cx = Context::from_waker(&waker);
        // A read-modify-write, not a store: a wake that came after this
        // child was taken from the ready queue saw `QUEUED` and left the
        // child to this poll, so the poll must see what that waker
        // published. Reading its write (acquire) is what makes it so; a
        // plain store may land before the wake's and acquire nothing, and
        // the poll could miss the news and the wake both (found by review;
        // a stress test lost tens of wakes per million on this machine).
        self.header.state.swap(RUNNING, Ordering::AcqRel);
        let Poll::Ready(value) = future.poll(&mut cx) else {
            let state = self.header.state.fetch_and(!RUNNING, Ordering::AcqRel);
            return if state & QUEUED != 0 {
                Polled::Woken
            } else {
                Polled::Pending
            };
        };
        // Finished: its wakers do nothing from now on.
        self.header.state.store(QUEUED, Ordering::Release);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| *slot = None)) {
            // Its destructor panicked: the child panicked after all. Its
            // handle is finished without a value, as for any panic, and
            // the panic goes on to the scope.
            crate::rt::discard(value);
            self.output.finish(None);
            resume_unwind(payload);
        }
        self.output.finish(Some(value));
        Polled::Finished
    }

    unsafe fn drop_future(&self) {
        // SAFETY: as in `poll`: the one `Child`, borrowed mutably.
        let slot = unsafe { &mut *self.future.get() };
        // Stale wakers do nothing from now on.
        self.header.state.store(QUEUED, Ordering::Release);
        // In place, as pinning demands; if the drop panics, the assignment
        // still leaves `None` behind, and the handle is finished before the
        // panic goes on.
        let dropped = catch_unwind(AssertUnwindSafe(|| *slot = None));
        if !self.output.is_done() {
            self.output.finish(None);
        }
        if let Err(payload) = dropped {
            resume_unwind(payload);
        }
    }
}

/// What a poll of a child came to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Polled {
    /// Finished (or dropped): its wakers do nothing from now on.
    Finished,
    /// Waits for a wake, which will queue it.
    Pending,
    /// Woken while it ran: the driver must queue it again itself.
    Woken,
}

/// The one owner of a task's future, kept by the scope's driver: polls it,
/// and drops it when dropped.
pub(super) struct Child<'scope> {
    task: Arc<dyn ScopeSide + 'scope>,
}

impl<'scope> Child<'scope> {
    /// A task for `future` that wakes into `queue`: the child's side and
    /// the handle's. The driver must hold a count of `queue` as long as it
    /// may poll the child.
    pub(super) fn new<F>(future: F, queue: &Arc<ReadyQueue>) -> (Self, Handle<'scope, F::Output>)
    where
        F: Future + Send + 'scope,
        F::Output: Send + 'scope,
    {
        let task = Arc::new(Task {
            header: Header {
                // In the ready list from the start: the driver polls every
                // new child once.
                state: AtomicU8::new(QUEUED),
                index: AtomicUsize::new(usize::MAX),
                // `as_ptr`, not a reference: the waker's functions reach the
                // `Arc`'s counts through it.
                queue: QueueRef(
                    NonNull::new(Arc::as_ptr(queue).cast_mut()).expect("an `Arc` is not null"),
                ),
            },
            output: Output::new(),
            future: UnsafeCell::new(Some(future)),
        });
        let handle = Handle {
            task: task.clone(),
            taken: false,
        };
        (Self { task }, handle)
    }

    /// Gives the child its place among the scope's children, which its
    /// wakers report; before its first poll.
    pub(super) fn set_index(&mut self, index: usize) {
        self.task.header().index.store(index, Ordering::Release);
    }

    /// Polls the child with its own waker.
    pub(super) fn poll(&mut self) -> Polled {
        let data = Arc::as_ptr(&self.task).cast::<()>();
        // SAFETY: this is the task's one `Child`, borrowed mutably, and
        // `data` is its `Arc`'s pointer.
        unsafe { self.task.poll(data) }
    }
}

impl Drop for Child<'_> {
    fn drop(&mut self) {
        // SAFETY: this is the task's one `Child`, borrowed mutably. Dropping
        // the future here, while `'scope` lasts, is what lets the task
        // outlive the scope in a waker (see the module doc).
        unsafe { self.task.drop_future() };
    }
}

/// The handle's side of a task, without the future's type.
trait HasOutput<T>: Send + Sync {
    fn output(&self) -> &Output<T>;
}

impl<F> HasOutput<F::Output> for Task<F>
where
    F: Future + Send,
    F::Output: Send,
{
    fn output(&self) -> &Output<F::Output> {
        &self.output
    }
}

/// The one taker of a task's output. Dropping it drops an output not
/// taken, and has a later one dropped as soon as it is made.
pub(super) struct Handle<'scope, T> {
    task: Arc<dyn HasOutput<T> + 'scope>,
    /// Took the output (or found none): nothing is left for `drop` to do.
    taken: bool,
}

impl<T> Handle<'_, T> {
    /// `Ready(None)`: the child was dropped unfinished, or the output was
    /// taken already.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let poll = self.task.output().poll(cx);
        self.taken |= poll.is_ready();
        poll
    }

    pub(super) fn is_finished(&self) -> bool {
        self.task.output().is_done()
    }
}

impl<T> Drop for Handle<'_, T> {
    fn drop(&mut self) {
        if !self.taken {
            self.task.output().detach();
        }
    }
}

/// A `scope_blocking` child's future with its lifetime erased, as the
/// runtime runs it.
pub(super) struct Erased {
    // Declared first: dropped before `live` counts it down.
    future: Option<Pin<Box<dyn Future<Output = ()> + Send + 'static>>>,
    live: Live,
}

impl Erased {
    /// Counts `child` among `scope`'s children, which `scope_blocking`
    /// waits for, and erases its lifetime.
    pub(super) fn new<'scope, R>(
        scope: &'scope BlockingScope<'scope, '_, R>,
        child: Pin<Box<dyn Future<Output = ()> + Send + 'scope>>,
    ) -> Self {
        // Counted before it can be dropped, so the count never misses it.
        let live = scope.shared.count_one();
        // SAFETY: this only widens the trait object's lifetime bound; the
        // layout is the same. The future borrows for `'scope`, which lasts
        // until `scope_blocking` returns or unwinds (`'scope` is chosen by
        // `scope_blocking`'s higher-ranked bound, so the body cannot shrink
        // it to one of its locals, and `BlockingScope` is invariant in it;
        // only `scope_blocking` makes a `BlockingScope`). `Erased` owns the
        // future and counts it down from `live` only after dropping it, and
        // `scope_blocking` waits for `scope.shared`'s count to reach zero on
        // every path out of it before returning or resuming a panic: a
        // guard made before the body runs waits when dropped, so an unwind
        // from anywhere after it (a panic payload's destructor, say) waits
        // too. Whatever the executor does with the task (run it, cancel it,
        // shut down), the future is dropped before its borrows end, or never
        // touched again if the executor leaks it (then the wait never ends).
        let future: Pin<Box<dyn Future<Output = ()> + Send + 'static>> =
            unsafe { std::mem::transmute(child) };
        Self {
            future: Some(future),
            live,
        }
    }
}

impl Future for Erased {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(future) = self.future.as_mut() else {
            return Poll::Ready(());
        };
        let polled = {
            let _inside = InsideChild::enter();
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => {
                self.future = None;
                Poll::Ready(())
            }
            Err(payload) => {
                // Recorded before the future (and its handle's sender) is
                // dropped, so that a body woken by the drop finds this
                // panic already first.
                self.live.panicked(payload);
                self.future = None;
                Poll::Ready(())
            }
        }
    }
}

/// loom models of a task's two hand-offs: a wake racing the poll it lands
/// in, and the output racing its handle (waiting for it, or leaving). The
/// output's `value` is in loom's `UnsafeCell` under the cfg, so an access
/// outside the protocol fails a model as a race, and a lost wake-up fails it
/// as a deadlock. Run with `--cfg portasync_loom` (see `.ci/run`).
#[cfg(all(test, portasync_loom))]
mod loom_models {
    use super::*;
    use loom::future::block_on;
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    fn take<T>(handle: &mut Handle<'_, T>) -> Option<T> {
        block_on(std::future::poll_fn(|cx| handle.poll(cx)))
    }

    /// A child finishing on one thread while its handle waits on another:
    /// the handle gets the output.
    #[test]
    fn an_output_reaches_a_waiting_handle() {
        model(|| {
            let queue = Arc::new(ReadyQueue::default());
            let (mut child, mut handle) = Child::new(std::future::ready(7u8), &queue);
            let driver = thread::spawn(move || assert_eq!(child.poll(), Polled::Finished));
            assert_eq!(take(&mut handle), Some(7));
            driver.join().unwrap();
        });
    }

    /// A child dropped unfinished on one thread while its handle waits: the
    /// handle finds no output.
    #[test]
    fn a_dropped_child_reaches_a_waiting_handle() {
        model(|| {
            let queue = Arc::new(ReadyQueue::default());
            let (child, mut handle) = Child::new(std::future::pending::<u8>(), &queue);
            let driver = thread::spawn(move || drop(child));
            assert_eq!(take(&mut handle), None);
            driver.join().unwrap();
        });
    }

    /// A child finishing while its handle is dropped: the output is dropped
    /// once, by whichever side comes second.
    #[test]
    fn an_output_made_as_its_handle_leaves_is_dropped_once() {
        model(|| {
            let queue = Arc::new(ReadyQueue::default());
            let witness = Arc::new(());
            let (mut child, handle) = Child::new(std::future::ready(witness.clone()), &queue);
            let driver = thread::spawn(move || assert_eq!(child.poll(), Polled::Finished));
            drop(handle);
            driver.join().unwrap();
            assert_eq!(Arc::strong_count(&witness), 1, "the output was dropped");
        });
    }

    /// Pending on its first poll, after handing its waker to a new thread
    /// that wakes it; ready on the second.
    struct WokenElsewhere {
        waker: Arc<std::sync::Mutex<Option<thread::JoinHandle<()>>>>,
        polled: bool,
    }

    impl Future for WokenElsewhere {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.polled {
                return Poll::Ready(());
            }
            self.polled = true;
            let waker = cx.waker().clone();
            let thread = thread::spawn(move || waker.wake());
            *self.waker.lock().unwrap() = Some(thread);
            Poll::Pending
        }
    }

    /// A wake from another thread while the child is polled, or after:
    /// exactly one of the two ways back to the driver, the poll reporting
    /// `Woken` or the child's index in the ready queue.
    #[test]
    fn a_wake_racing_its_poll_is_seen_once() {
        model(|| {
            let queue = Arc::new(ReadyQueue::default());
            let waker = Arc::new(std::sync::Mutex::new(None));
            let future = WokenElsewhere {
                waker: waker.clone(),
                polled: false,
            };
            let (mut child, mut handle) = Child::new(future, &queue);
            child.set_index(3);
            let polled = child.poll();
            let thread = waker
                .lock()
                .unwrap()
                .take()
                .expect("the first poll spawns it");
            thread.join().unwrap();
            let ready = std::mem::take(&mut queue.lock().ready);
            match polled {
                Polled::Woken => assert_eq!(ready, []),
                Polled::Pending => assert_eq!(ready, [3]),
                Polled::Finished => panic!("pending on its first poll"),
            }
            assert_eq!(child.poll(), Polled::Finished);
            assert_eq!(take(&mut handle), Some(()));
        });
    }

    /// A child woken again after the driver took it from the ready queue
    /// and before its poll: that wake leaves it to the poll (it is still
    /// marked queued), so the poll sees what the waker published, or the
    /// child is queued again. A plain store marking it running let the poll
    /// miss both (from a review; fails on that code).
    #[test]
    fn a_wake_just_before_its_poll_is_not_lost() {
        model(|| {
            let queue = Arc::new(ReadyQueue::default());
            let flag = Arc::new(crate::primitives::AtomicBool::new(false));
            let slot: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
            let (seen, filed) = (flag.clone(), slot.clone());
            let future = std::future::poll_fn(move |cx| {
                if seen.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                *filed.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            });
            let (mut child, _handle) = Child::new(future, &queue);
            child.set_index(3);
            assert_eq!(child.poll(), Polled::Pending);
            let waker = slot.lock().unwrap().take().unwrap();
            // A first wake queues it, and the driver takes it.
            waker.wake_by_ref();
            assert_eq!(std::mem::take(&mut queue.lock().ready), [3]);
            // Another thread publishes and wakes it as the driver polls.
            let (publish, wake) = (flag.clone(), waker.clone());
            let other = thread::spawn(move || {
                publish.store(true, Ordering::Release);
                wake.wake();
            });
            let polled = child.poll();
            other.join().unwrap();
            let ready = std::mem::take(&mut queue.lock().ready);
            drop(waker);
            drop(slot.lock().unwrap().take());
            assert!(
                polled != Polled::Pending || ready == [3],
                "lost wake: the poll returned {polled:?} and the ready queue is {ready:?}"
            );
        });
    }
}
