//! In-place combinators: `join_all`, `try_join_all`, `race`.
//!
//! They run their futures concurrently inside their own future, with no
//! spawning. Each future is polled once at first; any still pending is then
//! given a waker of its own, so that a wake-up re-polls that future alone
//! and a large set never degrades into polling everything on every wake.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::ops::ControlFlow;
use std::pin::Pin;
// loom's under `--cfg portasync_loom` (`tests/loom.rs`).
use crate::primitives::{AtomicBool, Mutex, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Which futures woke since the last poll, and whom to tell.
#[derive(Default)]
struct WakeQueue {
    ready: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

impl WakeQueue {
    fn set_parent(&self, waker: &Waker) {
        let mut parent = self.parent.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *parent {
            Some(current) if current.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    fn take_ready(&self) -> Vec<usize> {
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One future's waker: queues its index (once until it is polled) and wakes
/// the combinator.
struct ChildWaker {
    index: usize,
    queued: AtomicBool,
    queue: Arc<WakeQueue>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.index);
        }
        let parent = self
            .queue
            .parent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(parent) = parent {
            parent.wake();
        }
    }
}

/// A set of futures polled in place, reporting each output once.
struct Set<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    remaining: usize,
    queue: Arc<WakeQueue>,
    /// Each pending future's own waker, made when first needed.
    wakers: Vec<Option<(Arc<ChildWaker>, Waker)>>,
    /// 0: never polled; 1: polled once with the combinator's waker, so the
    /// pending ones must be polled again with their own; 2: precise.
    phase: u8,
}

impl<F: Future> Set<F> {
    fn new(futures: impl IntoIterator<Item = F>) -> Self {
        let futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
        Self {
            remaining: futures.len(),
            futures,
            queue: Arc::default(),
            wakers: Vec::new(),
            phase: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Drops every future still running.
    fn clear(&mut self) {
        self.futures.clear();
        self.remaining = 0;
    }

    fn poll_one<B>(
        &mut self,
        index: usize,
        cx: &mut Context<'_>,
        on_ready: &mut impl FnMut(usize, F::Output) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        let Some(future) = self.futures.get_mut(index).and_then(Option::as_mut) else {
            return ControlFlow::Continue(());
        };
        match future.as_mut().poll(cx) {
            Poll::Pending => ControlFlow::Continue(()),
            Poll::Ready(output) => {
                self.futures[index] = None;
                self.remaining -= 1;
                on_ready(index, output)
            }
        }
    }

    fn child_waker(&mut self, index: usize) -> Waker {
        if self.wakers.is_empty() {
            self.wakers.resize_with(self.futures.len(), || None);
        }
        let (child, waker) = self.wakers[index].get_or_insert_with(|| {
            let child = Arc::new(ChildWaker {
                index,
                queued: AtomicBool::new(false),
                queue: self.queue.clone(),
            });
            (child.clone(), Waker::from(child))
        });
        // A read-modify-write, not a store: a wake since this future was
        // taken from the ready queue saw it still queued and left it to the
        // poll that follows, which must see what that waker published
        // (reading its write acquires it; a store may not).
        child.queued.swap(false, Ordering::AcqRel);
        waker.clone()
    }

    /// Polls what needs polling, handing each output to `on_ready`.
    /// `Ready(Continue)` once every future finished; `Ready(Break)` as soon
    /// as `on_ready` breaks.
    fn poll_drive<B>(
        &mut self,
        cx: &mut Context<'_>,
        mut on_ready: impl FnMut(usize, F::Output) -> ControlFlow<B>,
    ) -> Poll<ControlFlow<B>> {
        self.queue.set_parent(cx.waker());
        let indices: Vec<usize> = match self.phase {
            0 => {
                self.phase = 1;
                for index in 0..self.futures.len() {
                    if let ControlFlow::Break(b) = self.poll_one(index, cx, &mut on_ready) {
                        return Poll::Ready(ControlFlow::Break(b));
                    }
                }
                Vec::new()
            }
            1 => {
                self.phase = 2;
                (0..self.futures.len())
                    .filter(|&i| self.futures[i].is_some())
                    .collect()
            }
            _ => self.queue.take_ready(),
        };
        for index in indices {
            if self.futures[index].is_none() {
                continue;
            }
            let waker = self.child_waker(index);
            if let ControlFlow::Break(b) =
                self.poll_one(index, &mut Context::from_waker(&waker), &mut on_ready)
            {
                return Poll::Ready(ControlFlow::Break(b));
            }
        }
        if self.is_empty() {
            Poll::Ready(ControlFlow::Continue(()))
        } else {
            Poll::Pending
        }
    }
}

/// Runs every future concurrently, in place, and returns their outputs in
/// the order given, like asyncio's `gather` (`futures::future::join_all`).
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let doubled = portasync::join_all((1..=3).map(|x| async move { x * 2 })).await;
/// assert_eq!(doubled, [2, 4, 6]);
/// # });
/// ```
pub fn join_all<I>(futures: I) -> JoinAll<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let set = Set::new(futures.into_iter().map(IntoFuture::into_future));
    let outputs = std::iter::repeat_with(|| None)
        .take(set.futures.len())
        .collect();
    JoinAll { set, outputs }
}

/// The future of [`join_all`].
///
/// # Examples
///
/// ```
/// let all: portasync::JoinAll<std::future::Ready<u8>> = portasync::join_all([std::future::ready(1)]);
/// assert_eq!(futures_lite::future::block_on(all), [1]);
/// ```
///
/// # Cancel safety
///
/// Dropping it drops every future still running; outputs already produced
/// are dropped with it.
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAll<F: Future> {
    set: Set<F>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let this = &mut *self;
        let outputs = &mut this.outputs;
        let _all_done: ControlFlow<()> =
            std::task::ready!(this.set.poll_drive(cx, |index, output| {
                outputs[index] = Some(output);
                ControlFlow::Continue(())
            }));
        let outputs = std::mem::take(&mut this.outputs);
        Poll::Ready(
            outputs
                .into_iter()
                .map(|o| o.expect("every future finished"))
                .collect(),
        )
    }
}

// Nothing in it is pinned in place: the futures are boxed.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("remaining", &self.set.remaining)
            .finish()
    }
}

/// Runs every fallible future concurrently, in place: all outputs in order,
/// or the first error, at which point the others are dropped at once.
///
/// # Errors
///
/// The first `Err` any future returns (in completion order).
///
/// # Examples
///
/// ```
/// async fn check(x: u32) -> Result<u32, String> {
///     if x < 10 { Ok(x) } else { Err(format!("{x} is too big")) }
/// }
///
/// # futures_lite::future::block_on(async {
/// let ok = portasync::try_join_all([1, 2, 3].map(check)).await;
/// assert_eq!(ok, Ok(vec![1, 2, 3]));
/// let err = portasync::try_join_all([1, 20, 3].map(check)).await;
/// assert_eq!(err, Err("20 is too big".to_owned()));
/// # });
/// ```
pub fn try_join_all<I, T, E>(futures: I) -> TryJoinAll<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
{
    let set = Set::new(futures.into_iter().map(IntoFuture::into_future));
    let outputs = std::iter::repeat_with(|| None)
        .take(set.futures.len())
        .collect();
    TryJoinAll { set, outputs }
}

/// The future of [`try_join_all`].
///
/// # Examples
///
/// ```
/// let all = portasync::try_join_all([std::future::ready(Ok::<u8, ()>(1))]);
/// assert_eq!(futures_lite::future::block_on(all), Ok(vec![1]));
/// ```
///
/// # Cancel safety
///
/// Dropping it drops every future still running.
#[must_use = "futures do nothing unless awaited"]
pub struct TryJoinAll<F: Future> {
    set: Set<F>,
    outputs: Vec<Option<F::Output>>,
}

impl<F, T, E> Future for TryJoinAll<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<Vec<T>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let outputs = &mut this.outputs;
        let flow = std::task::ready!(this.set.poll_drive(cx, |index, output| match output {
            Ok(value) => {
                outputs[index] = Some(Ok(value));
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(error),
        }));
        if let ControlFlow::Break(error) = flow {
            this.set.clear();
            this.outputs.clear();
            return Poll::Ready(Err(error));
        }
        let outputs = std::mem::take(&mut this.outputs);
        Poll::Ready(Ok(outputs
            .into_iter()
            .map(|o| match o {
                Some(Ok(value)) => value,
                _ => unreachable!("every future finished with Ok"),
            })
            .collect()))
    }
}

// Nothing in it is pinned in place: the futures are boxed.
impl<F: Future> Unpin for TryJoinAll<F> {}

impl<F: Future> fmt::Debug for TryJoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoinAll")
            .field("remaining", &self.set.remaining)
            .finish()
    }
}

/// Runs the futures concurrently, in place, and returns the first to finish
/// with its index; the rest are dropped at once (asyncio's `wait` with
/// `FIRST_COMPLETED`, then cancelling the rest).
///
/// # Panics
///
/// If `futures` is empty: there would be no winner to wait for.
///
/// # Examples
///
/// ```
/// use std::future::{pending, ready};
///
/// # futures_lite::future::block_on(async {
/// let slow = Box::pin(pending::<&str>());
/// let fast = Box::pin(ready("fast"));
/// let futures: Vec<std::pin::Pin<Box<dyn Future<Output = &str>>>> = vec![slow, fast];
/// assert_eq!(portasync::race(futures).await, (1, "fast"));
/// # });
/// ```
#[track_caller]
pub fn race<I>(futures: I) -> Race<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let set = Set::new(futures.into_iter().map(IntoFuture::into_future));
    assert!(
        !set.is_empty(),
        "race: `futures` is empty, so nothing can win"
    );
    Race { set }
}

/// The future of [`race`].
///
/// # Examples
///
/// ```
/// let first = portasync::race([std::future::ready(7)]);
/// assert_eq!(futures_lite::future::block_on(first), (0, 7));
/// ```
///
/// # Cancel safety
///
/// Dropping it drops every future still running.
#[must_use = "futures do nothing unless awaited"]
pub struct Race<F: Future> {
    set: Set<F>,
}

impl<F: Future> Future for Race<F> {
    type Output = (usize, F::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match std::task::ready!(
            this.set
                .poll_drive(cx, |index, output| ControlFlow::Break((index, output)))
        ) {
            ControlFlow::Break(winner) => {
                this.set.clear();
                Poll::Ready(winner)
            }
            ControlFlow::Continue(()) => panic!("Race polled after it completed"),
        }
    }
}

impl<F: Future> fmt::Debug for Race<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("remaining", &self.set.remaining)
            .finish()
    }
}
