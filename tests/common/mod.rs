//! Helpers shared by the integration tests: one harness per runtime, a
//! real-time guard so a broken feature fails instead of hanging, and probes.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::Once;
use std::time::Duration;

/// How long any real-time wait in a test may take before it counts as a
/// hang. Generous: the machine is small and shared.
pub const HANG: Duration = Duration::from_secs(60);

/// Awaits `future`, failing the test if it takes longer than [`HANG`].
/// async-io's timer works under every executor.
pub async fn within<F: std::future::IntoFuture>(future: F) -> F::Output {
    futures_lite::future::or(future.into_future(), async {
        async_io::Timer::after(HANG).await;
        panic!("no progress within {HANG:?}: the feature under test hung");
    })
    .await
}

/// Makes panics whose message starts with "expected panic" silent, so test
/// output shows only real failures.
pub fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !message.starts_with("expected panic") {
                default(info);
            }
        }));
    });
}

/// A value to move into a future, and a way to learn that it was dropped.
pub fn drop_probe() -> (DropGuard, Dropped) {
    let (tx, rx) = async_channel::bounded::<()>(1);
    (DropGuard(tx), Dropped(rx))
}

pub struct DropGuard(async_channel::Sender<()>);

pub struct Dropped(async_channel::Receiver<()>);

impl Dropped {
    /// Whether the guard has been dropped already.
    pub fn now(&self) -> bool {
        self.0.is_closed()
    }

    /// Waits until the guard is dropped.
    pub async fn wait(&self) {
        assert!(
            self.0.recv().await.is_err(),
            "nothing is ever sent on a drop probe"
        );
    }
}

/// Runs a test body on one runtime, given that runtime's handle.
pub trait Harness {
    type Rt: portasync::rt::Runtime;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output;
}

/// A current-thread tokio runtime whose clock starts paused (and jumps to
/// the next timer whenever the runtime is idle).
pub fn paused_tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused tokio runtime")
}

pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[cfg(feature = "smol")]
pub struct SmolGlobal;

#[cfg(feature = "smol")]
impl Harness for SmolGlobal {
    type Rt = portasync::rt::Smol;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output {
        smol::block_on(body(portasync::rt::Smol::global()))
    }
}

/// smol with an executor of the test's own, run by two threads.
#[cfg(feature = "smol")]
pub struct SmolOwn;

#[cfg(feature = "smol")]
impl Harness for SmolOwn {
    type Rt = portasync::rt::Smol;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output {
        use std::sync::Arc;
        let executor = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                std::thread::spawn(move || smol::block_on(executor.run(stopped.recv())))
            })
            .collect();
        let output = smol::block_on(body(portasync::rt::Smol::new(executor)));
        drop(stop);
        for thread in threads {
            let _stopped = thread
                .join()
                .expect("an executor thread survived every test task");
        }
        output
    }
}

#[cfg(feature = "tokio")]
pub struct Tokio;

#[cfg(feature = "tokio")]
impl Harness for Tokio {
    type Rt = portasync::rt::Tokio;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output {
        let runtime = tokio_runtime();
        let rt = portasync::rt::Tokio::from_handle(runtime.handle().clone());
        runtime.block_on(body(rt))
    }
}

#[cfg(feature = "async-std")]
pub struct AsyncStd;

#[cfg(feature = "async-std")]
impl Harness for AsyncStd {
    type Rt = portasync::rt::AsyncStd;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output {
        async_std::task::block_on(body(portasync::rt::AsyncStd))
    }
}

/// `Auto` outside any tokio runtime: smol with the default features.
#[cfg(any(feature = "smol", feature = "async-std"))]
pub struct AutoOutsideTokio;

#[cfg(any(feature = "smol", feature = "async-std"))]
impl Harness for AutoOutsideTokio {
    type Rt = portasync::rt::Auto;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output {
        futures_lite::future::block_on(body(portasync::rt::Auto))
    }
}

/// `Auto` inside a tokio runtime: tokio.
#[cfg(feature = "tokio")]
pub struct AutoInTokio;

#[cfg(feature = "tokio")]
impl Harness for AutoInTokio {
    type Rt = portasync::rt::Auto;
    fn run<F: Future>(body: impl FnOnce(Self::Rt) -> F) -> F::Output {
        tokio_runtime().block_on(body(portasync::rt::Auto))
    }
}

/// A runtime that spawns on a real executor but keeps time on a
/// `ManualClock`: for timing logic of patterns that also spawn.
#[cfg(feature = "test-util")]
#[derive(Clone)]
pub struct ManualTime<S> {
    pub spawner: S,
    pub clock: portasync::rt::ManualClock,
}

#[cfg(feature = "test-util")]
impl<S: portasync::rt::Spawn> portasync::rt::Spawn for ManualTime<S> {
    fn spawn<F>(&self, future: F) -> portasync::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawner.spawn(future)
    }

    fn spawn_blocking<F, T>(&self, f: F) -> portasync::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawner.spawn_blocking(f)
    }
}

#[cfg(feature = "test-util")]
impl<S: Clone + Send + Sync + 'static> portasync::rt::Timer for ManualTime<S> {
    type Sleep = portasync::rt::ManualSleep;

    fn now(&self) -> std::time::Instant {
        self.clock.now()
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Self::Sleep {
        self.clock.sleep_until(deadline)
    }
}

/// A waker that counts its wake-ups, for poll-level tests.
#[derive(Default)]
pub struct Counter(pub std::sync::atomic::AtomicUsize);

impl std::task::Wake for Counter {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A counting waker and its counter.
pub fn counter() -> (std::sync::Arc<Counter>, std::task::Waker) {
    let counter = std::sync::Arc::new(Counter::default());
    (counter.clone(), std::task::Waker::from(counter))
}

/// Counts its wakes, then panics ("expected panic: in a waker"): a caller's
/// waker that fails, for state that must stay whole when one does.
#[derive(Default)]
pub struct Panicking(pub std::sync::atomic::AtomicUsize);

impl std::task::Wake for Panicking {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("expected panic: in a waker");
    }
}

/// A waker that panics when woken, and the count of its wakes.
pub fn panicking() -> (std::sync::Arc<Panicking>, std::task::Waker) {
    quiet_expected_panics();
    let panicking = std::sync::Arc::new(Panicking::default());
    (panicking.clone(), std::task::Waker::from(panicking))
}

/// Polls a boxed future once with `waker`.
pub fn poll<F: Future>(
    future: &mut std::pin::Pin<Box<F>>,
    waker: &std::task::Waker,
) -> std::task::Poll<F::Output> {
    future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
}

/// A global allocator that counts, per thread, the bytes held and the
/// allocations made, so that a test's own work is measured and other
/// tests' threads do not count. A test binary opts in with
/// `#[global_allocator] static ALLOCATOR: common::Counting = common::Counting;`.
pub struct Counting;

thread_local! {
    static HELD: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    static MADE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Counting {
    /// Net bytes allocated by this thread.
    pub fn held() -> isize {
        HELD.with(std::cell::Cell::get)
    }

    /// Allocations made by this thread.
    pub fn made() -> usize {
        MADE.with(std::cell::Cell::get)
    }
}

#[allow(unsafe_code)] // a counting allocator cannot be written without it
// SAFETY: every call is forwarded unchanged to the system allocator; the
// thread-local counters have no destructor and never allocate.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = HELD.try_with(|held| held.set(held.get() + layout.size() as isize));
        let _ = MADE.try_with(|made| made.set(made.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        let _ = HELD.try_with(|held| held.set(held.get() - layout.size() as isize));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// An error whose message is its first field and whose source is a second
/// error with the message of the second: for chains of causes.
#[derive(Debug)]
pub struct WithCause(pub &'static str, pub Cause);

/// The cause in a [`WithCause`].
#[derive(Debug)]
pub struct Cause(pub &'static str);

impl std::fmt::Display for WithCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WithCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.1)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Cause {}

/// The messages of `error` and of its chain of sources, outermost first.
pub fn chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut messages = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        messages.push(error.to_string());
        next = error.source();
    }
    messages
}

/// A waker that does nothing, and whose `clone` panics while `armed` is set:
/// for state that must stay whole when a waker's `clone` panics.
#[allow(unsafe_code)] // a waker with a `clone` of its own needs a raw vtable
pub fn clone_panics(armed: &'static std::sync::atomic::AtomicBool) -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable};
    fn clone(data: *const ()) -> RawWaker {
        // SAFETY: every `data` of this table is the `&'static AtomicBool`
        // given below.
        let armed = unsafe { &*data.cast::<std::sync::atomic::AtomicBool>() };
        assert!(
            !armed.load(std::sync::atomic::Ordering::SeqCst),
            "expected panic: in a waker's clone"
        );
        RawWaker::new(data, &VTABLE)
    }
    fn ignore(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, ignore, ignore, ignore);
    let data = std::ptr::from_ref(armed).cast::<()>();
    // SAFETY: the table's functions only read `data`, a `&'static
    // AtomicBool` that outlives every clone, and are safe to call from any
    // thread.
    unsafe { std::task::Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}
