//! The executor-neutral layer every pattern stands on.
//!
//! Two traits say what a pattern needs from an executor: [`Timer`] (read the
//! clock, sleep) and [`Spawn`] (run a task, run a blocking closure).
//! [`Runtime`] is both. Adapters implement them for [`Smol`] (feature `smol`,
//! the default), [`Tokio`] (feature `tokio`) and [`AsyncStd`] (feature
//! `async-std`); [`ManualClock`] (feature `test-util`) is a virtual clock for
//! tests. [`Auto`] picks one per call, so application code never names a
//! runtime.
//!
//! Every runtime hands back the same [`JoinHandle`], with the same rules:
//! dropping it cancels the task, [`JoinHandle::detach`] lets it run, a panic
//! arrives as [`JoinError::Panicked`] and never takes down an executor thread.
//!
//! # Examples
//!
//! A library function generic over the runtime, called with [`Auto`]:
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use portasync::rt::{Auto, Runtime};
//! use std::time::Duration;
//!
//! async fn double_later<R: Runtime>(rt: &R, x: u32) -> u32 {
//!     let task = rt.spawn(async move { x * 2 });
//!     rt.sleep(Duration::from_millis(1)).await;
//!     task.await.expect("the task neither panicked nor was cancelled")
//! }
//!
//! assert_eq!(smol::block_on(double_later(&Auto, 21)), 42);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub(crate) mod clock;
mod io;
mod join;
#[cfg(any(feature = "smol", feature = "async-std"))]
mod launch;

pub use io::IoSleep;
pub use join::{JoinError, JoinHandle, PanicPayload};
pub(crate) use join::{discard, drop_in_place};

cfg_feature! { "smol" =>
    mod smol;
    pub use self::smol::Smol;
}
cfg_feature! { "tokio" =>
    mod tokio;
    pub use self::tokio::{Tokio, TokioSleep};
}
cfg_feature! { "async-std" =>
    mod async_std;
    pub use self::async_std::AsyncStd;
}
cfg_feature! { "test-util" =>
    mod manual;
    pub use self::manual::{ManualClock, ManualSleep};
}

/// A clock and a way to sleep on it.
///
/// Each runtime has its own (tokio's can be paused; [`ManualClock`] moves
/// only when told), so patterns read time through this trait, never through
/// `Instant::now()`.
///
/// # Examples
///
/// ```
/// use portasync::rt::{Auto, Timer};
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let start = Auto.now();
/// Auto.sleep(Duration::from_millis(2)).await;
/// assert!(Auto.now() - start >= Duration::from_millis(2));
/// # });
/// ```
pub trait Timer: Clone + Send + Sync + 'static {
    /// The future [`sleep_until`](Self::sleep_until) and
    /// [`sleep`](Self::sleep) return.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// The clock's current reading.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{Auto, Timer};
    ///
    /// let (first, second) = (Auto.now(), Auto.now());
    /// assert!(second >= first);
    /// ```
    fn now(&self) -> Instant;

    /// A future that completes once the clock reaches `deadline` (at once if
    /// it already has).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{Auto, Timer};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let deadline = Auto.now() + Duration::from_millis(2);
    /// Auto.sleep_until(deadline).await;
    /// assert!(Auto.now() >= deadline);
    /// # });
    /// ```
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// A future that completes `duration` after now. A duration too long to
    /// add to the clock (up to `Duration::MAX`) never overflows: it sleeps
    /// 30 years, which is for ever on a real clock (a paused tokio clock
    /// jumps to the next timer when idle, and so gets there at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::rt::{Auto, Timer};
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let start = Auto.now();
    /// Auto.sleep(Duration::from_millis(2)).await;
    /// assert!(Auto.now() - start >= Duration::from_millis(2));
    /// # });
    /// ```
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        let now = self.now();
        self.sleep_until(deadline_after(now, duration))
    }
}

/// `timer`'s reading as nanoseconds since [`clock::base`], read without an
/// `Instant`, when `timer` reads the counter clock in this context (see
/// [`reads_counter`]); `None` for every other timer, which callers read
/// through [`Timer::now`].
#[inline]
pub(crate) fn real_nanos<T: Timer>(timer: &T) -> Option<u64> {
    if reads_counter(timer) {
        clock::nanos()
    } else {
        None
    }
}

/// Whether `timer` reads the counter clock in this context: `Smol`,
/// `AsyncStd`, and `Auto` outside a tokio runtime that can pause time.
///
/// The type test is on `'static` types, so it is decided at compile time.
#[inline]
pub(crate) fn reads_counter<T: Timer>(_timer: &T) -> bool {
    use std::any::TypeId;
    let timer = TypeId::of::<T>();
    #[cfg(feature = "smol")]
    if TypeId::of::<Smol>() == timer {
        return true;
    }
    #[cfg(feature = "async-std")]
    if TypeId::of::<AsyncStd>() == timer {
        return true;
    }
    TypeId::of::<Auto>() == timer && !auto_reads_tokio()
}

/// Whether `Auto` reads tokio's clock here: inside a tokio runtime that can
/// pause time (any but a multi-thread one). Asked on every reading: no
/// cheaper question to tokio tells whether the current runtime changed.
#[inline]
fn auto_reads_tokio() -> bool {
    #[cfg(feature = "tokio")]
    if let Ok(handle) = ::tokio::runtime::Handle::try_current() {
        return handle.runtime_flavor() != ::tokio::runtime::RuntimeFlavor::MultiThread;
    }
    false
}

/// `now + duration`, or, when that overflows the clock, a deadline 30 years
/// away, or as far as the clock goes if even that overflows.
pub(crate) fn deadline_after(now: Instant, duration: Duration) -> Instant {
    const YEAR: u64 = 365 * 24 * 60 * 60;
    let decades = Duration::from_secs(30 * YEAR);
    if let Some(deadline) = now
        .checked_add(duration)
        .or_else(|| now.checked_add(decades))
    {
        return deadline;
    }
    // The end of the clock, less than 30 years on: steps that halve once
    // they no longer fit, each taken once at most (about 120 rounds).
    let mut deadline = now;
    let mut step = decades;
    while !step.is_zero() {
        match deadline.checked_add(step) {
            Some(later) => deadline = later,
            None => step /= 2,
        }
    }
    deadline
}

/// A way to run tasks: futures on the executor, blocking closures on its
/// blocking pool.
///
/// Both return the one [`JoinHandle`] type, with the same semantics on every
/// runtime. The adapters in this module are the implementations; a
/// [`JoinHandle`] can only be made by them.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use portasync::rt::{Auto, Spawn};
///
/// smol::block_on(async {
///     let sum = Auto.spawn_blocking(|| (1..=10u32).sum::<u32>());
///     assert_eq!(sum.await.unwrap(), 55);
/// });
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot spawn tasks: no executor is enabled",
    label = "needs an executor to spawn on",
    note = "enable one of portasync's runtime features (`smol`, `tokio` or `async-std`), \
            or use a runtime type such as `portasync::rt::Smol`"
)]
pub trait Spawn: Clone + Send + Sync + 'static {
    /// Runs `future` as a task on the executor.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     use portasync::rt::{Smol, Spawn};
    ///     let task = Smol::global().spawn(async { 6 * 7 });
    ///     assert_eq!(task.await.unwrap(), 42);
    /// });
    /// ```
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Runs `f` on the executor's pool for blocking work, off its async
    /// threads.
    ///
    /// # Blocking
    ///
    /// This is the place for blocking work; a closure that is already running
    /// cannot be cancelled (see [`JoinHandle`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")]
    /// smol::block_on(async {
    ///     use portasync::rt::{Smol, Spawn};
    ///     let sum = Smol::global().spawn_blocking(|| (1..=10u32).sum::<u32>());
    ///     assert_eq!(sum.await.unwrap(), 55);
    /// });
    /// ```
    fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;
}

/// An executor with a clock: what most patterns take as `R: Runtime`.
///
/// Implemented for every type that is both [`Spawn`] and [`Timer`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use portasync::rt::Runtime;
///
/// async fn anywhere<R: Runtime>(rt: &R) -> u32 {
///     rt.spawn(async { 1 }).await.unwrap()
/// }
/// assert_eq!(smol::block_on(anywhere(&portasync::rt::Smol::global())), 1);
/// # }
/// ```
pub trait Runtime: Spawn + Timer {}

impl<R: Spawn + Timer> Runtime for R {}

/// The runtime that decides per call: the default of every pattern.
///
/// - Inside a tokio runtime (feature `tokio`): tokio, including its clock, so
///   paused time governs it (a multi-thread runtime, which cannot pause,
///   reads the real clock the way `Smol` does).
/// - Otherwise smol's global executor (feature `smol`), else async-std
///   (feature `async-std`).
/// - Its timer works with no runtime feature at all, through async-io.
///
/// It implements [`Spawn`] only when some runtime feature is enabled: with
/// none, spawning through it is a compile error ([`spawn`](crate::spawn)
/// and an `R: Runtime` bound name the features to enable; a method such as
/// `TaskGroup::spawn` reports that `Auto: Spawn` is not satisfied).
/// With only `tokio` enabled, spawning outside a tokio runtime panics.
///
/// The choice is made when a task is spawned or a sleep is made, not when
/// the sleep is polled: a sleep made inside a tokio runtime runs on that
/// runtime's timer, and must be awaited while the runtime runs (as tokio's
/// own sleep must); one made outside runs on the real clock, even if it is
/// then awaited in a runtime whose time is paused.
///
/// # Panics
///
/// Inside a tokio runtime built without its time driver (neither
/// `enable_time` nor `enable_all` on the builder), a sleep panics when it
/// is made, with tokio's message: `Auto` sleeps on tokio's timer there, so
/// that paused time governs it, and tokio offers no way to tell that the
/// driver is missing short of that panic.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use portasync::rt::{Auto, Spawn};
///
/// smol::block_on(async {
///     // Outside tokio, with the default features: smol.
///     assert_eq!(Auto.spawn(async { 1 }).await.unwrap(), 1);
/// });
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Auto;

impl Timer for Auto {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        #[cfg(feature = "tokio")]
        if auto_reads_tokio() {
            return self::tokio::tokio_now();
        }
        clock::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        #[cfg(feature = "tokio")]
        if in_tokio() {
            return Sleep {
                inner: SleepInner::Tokio {
                    sleep: TokioSleep::until(deadline),
                },
            };
        }
        Sleep {
            inner: SleepInner::Io {
                sleep: IoSleep::at(deadline),
            },
        }
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        #[cfg(feature = "tokio")]
        if in_tokio() {
            return Sleep {
                inner: SleepInner::Tokio {
                    sleep: TokioSleep::after(duration),
                },
            };
        }
        Sleep {
            inner: SleepInner::Io {
                sleep: IoSleep::after(duration),
            },
        }
    }
}

#[cfg(feature = "tokio")]
fn in_tokio() -> bool {
    ::tokio::runtime::Handle::try_current().is_ok()
}

cfg_any_runtime! {
    impl Spawn for Auto {
        #[track_caller]
        fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            #[cfg(feature = "tokio")]
            if let Ok(rt) = Tokio::try_current() {
                return rt.spawn(future);
            }
            fallback().spawn(future)
        }

        #[track_caller]
        fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            #[cfg(feature = "tokio")]
            if let Ok(rt) = Tokio::try_current() {
                return rt.spawn_blocking(f);
            }
            fallback().spawn_blocking(f)
        }
    }
}

/// The executor's own handle of a task spawned by [`spawn_bare`]: smol's
/// task (dropping it cancels the task), or tokio's or async-std's join
/// handle (dropping it detaches the task). Holding it lets the task's
/// memory be freed where the handle is dropped.
#[derive(Debug)]
pub(crate) enum BareTask {
    #[cfg(feature = "smol")]
    Smol(async_task::Task<()>),
    #[cfg(feature = "tokio")]
    Tokio(::tokio::task::JoinHandle<()>),
    /// Boxed: async-std's handle is three words, and a task group keeps one
    /// of these per unjoined child, so the others would pay for its size
    /// (with every runtime feature on, a smol group's 10,000 handles took
    /// twice the memory, and the group 6 % more time in one measurement).
    #[cfg(feature = "async-std")]
    AsyncStd(Box<::async_std::task::JoinHandle<()>>),
}

impl BareTask {
    /// Lets the task run on unheld.
    pub(crate) fn detach(self) {
        match self {
            #[cfg(feature = "smol")]
            Self::Smol(task) => task.detach(),
            // Tokio and async-std tasks run on when their handle is dropped.
            #[cfg(feature = "tokio")]
            Self::Tokio(handle) => drop(handle),
            #[cfg(feature = "async-std")]
            Self::AsyncStd(handle) => drop(handle),
        }
    }
}

/// Spawns `future` on `rt` for a caller that catches its panics and reports
/// its end itself (task groups). On smol, tokio and async-std (and `Auto`,
/// which is one of them) it goes straight onto the executor, without the
/// panic catching (and on smol the lock, on async-std the abort flag) that
/// [`JoinHandle`] adds, and the executor's own handle is returned.
/// Elsewhere (a runtime of the caller's own) the task is detached and
/// `None` returned.
///
/// The type tests are on `'static` types, so they are decided at compile
/// time.
pub(crate) fn spawn_bare<R: Spawn, F>(rt: &R, future: F) -> Option<BareTask>
where
    F: Future<Output = ()> + Send + 'static,
{
    spawn_through(rt, future, None)
}

/// [`spawn_bare`], or on smol's global executor or async-std's through
/// `launch` when that is the faster way (see [`Launch`]); `None` then too.
pub(crate) fn spawn_through<R: Spawn, F>(
    rt: &R,
    future: F,
    launch: Option<&mut Launch>,
) -> Option<BareTask>
where
    F: Future<Output = ()> + Send + 'static,
{
    #[cfg(any(feature = "smol", feature = "tokio", feature = "async-std"))]
    {
        let any: &dyn std::any::Any = rt;
        #[cfg(feature = "smol")]
        if let Some(smol) = any.downcast_ref::<Smol>() {
            return Launch::smol(launch, smol, future);
        }
        #[cfg(feature = "tokio")]
        if let Some(tokio) = any.downcast_ref::<Tokio>() {
            return Some(BareTask::Tokio(tokio.handle().spawn(future)));
        }
        #[cfg(feature = "async-std")]
        if any.is::<AsyncStd>() {
            return Launch::async_std(launch, future);
        }
        // Asked only for `Auto`: the other runtimes' groups would pay
        // tokio's context lookup on every spawn for nothing.
        if any.is::<Auto>() {
            #[cfg(feature = "tokio")]
            if let Ok(handle) = ::tokio::runtime::Handle::try_current() {
                return Some(BareTask::Tokio(handle.spawn(future)));
            }
            #[cfg(feature = "smol")]
            return Launch::smol(launch, &fallback(), future);
            #[cfg(all(feature = "async-std", not(feature = "smol")))]
            return Launch::async_std(launch, future);
        }
    }
    let _ = launch;
    rt.spawn(future).detach();
    None
}

/// A future handed over to be spawned later: see [`Launch`].
pub(crate) type Launched = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A task group's launcher on smol's global executor or async-std's: the
/// group passes its `Launch` to [`spawn_through`] when a spawn may go
/// through it (many children unjoined, and no limit set).
///
/// A child spawned from one of that executor's own threads is spawned
/// directly. One from a thread of another kind (`smol::block_on`'s, say)
/// goes through a launcher task of the group's own on the executor, which
/// spawns it there in bulk with the others: see [`launch::Launcher`] for
/// why and what it costs. A group spawning from outside the executor then
/// no longer fights it for its task registry.
///
/// tokio, and smol executors of the caller's own (whose threads cannot be
/// told apart), always spawn directly.
#[derive(Default)]
pub(crate) struct Launch {
    #[cfg(any(feature = "smol", feature = "async-std"))]
    launcher: Option<std::sync::Arc<launch::Launcher>>,
    /// Tests: launch on any smol executor, from any thread.
    #[cfg(all(test, feature = "smol"))]
    pub(crate) test_any_executor: bool,
}

impl Launch {
    /// Hands `future` to the launcher (started on `target` if need be) when
    /// `launch` is given and `outside` (the spawning thread is not one of
    /// the executor's) holds; otherwise gives it back, to be spawned
    /// directly.
    #[cfg(any(feature = "smol", feature = "async-std"))]
    fn hand<F>(
        launch: Option<&mut Self>,
        future: F,
        outside: impl FnOnce() -> bool,
        target: impl FnOnce() -> launch::Target,
    ) -> Result<(), F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(launch) = launch.filter(|_| outside()) else {
            return Err(future);
        };
        let launcher = launch
            .launcher
            .get_or_insert_with(|| launch::Launcher::start(target()));
        if let Err(future) = launcher.hand(Box::pin(future)) {
            // Closed: only by the group's drop, which spawns no more.
            launcher.spawn(future);
        }
        Ok(())
    }

    #[cfg(feature = "smol")]
    fn smol<F>(launch: Option<&mut Self>, smol: &Smol, future: F) -> Option<BareTask>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        #[cfg(test)]
        let any_executor = launch
            .as_ref()
            .is_some_and(|launch| launch.test_any_executor);
        #[cfg(not(test))]
        let any_executor = false;
        let outside = || any_executor || smol.is_global() && !smol::on_global_thread();
        let target = || launch::Target::Smol(smol.clone());
        match Self::hand(launch, future, outside, target) {
            Ok(()) => None,
            Err(future) => Some(BareTask::Smol(smol.spawn_bare(future))),
        }
    }

    #[cfg(feature = "async-std")]
    fn async_std<F>(launch: Option<&mut Self>, future: F) -> Option<BareTask>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let outside = || !async_std::on_runtime_thread();
        match Self::hand(launch, future, outside, || launch::Target::AsyncStd) {
            Ok(()) => None,
            Err(future) => Some(BareTask::AsyncStd(Box::new(::async_std::task::spawn(
                future,
            )))),
        }
    }

    /// The children handed over and not spawned yet, taken back: dropping
    /// them drops their futures unpolled.
    pub(crate) fn take(&self) -> Vec<Launched> {
        #[cfg(any(feature = "smol", feature = "async-std"))]
        if let Some(launcher) = &self.launcher {
            return launcher.take();
        }
        Vec::new()
    }

    /// The launcher, once started.
    #[cfg(all(test, any(feature = "smol", feature = "async-std")))]
    pub(crate) fn launcher(&self) -> Option<std::sync::Arc<launch::Launcher>> {
        self.launcher.clone()
    }

    /// Ends the launcher's task; returns what it had not spawned yet, as
    /// [`take`](Self::take) does.
    pub(crate) fn close(&self) -> Vec<Launched> {
        #[cfg(any(feature = "smol", feature = "async-std"))]
        if let Some(launcher) = &self.launcher {
            return launcher.close();
        }
        Vec::new()
    }
}

/// Where [`Auto`] spawns outside a tokio runtime.
#[cfg(feature = "smol")]
fn fallback() -> Smol {
    Smol::global()
}

#[cfg(all(feature = "async-std", not(feature = "smol")))]
fn fallback() -> AsyncStd {
    AsyncStd
}

#[cfg(all(feature = "tokio", not(any(feature = "smol", feature = "async-std"))))]
#[track_caller]
fn fallback() -> Tokio {
    panic!(
        "portasync::rt::Auto: spawn called outside a tokio runtime, and only the `tokio` \
         runtime feature is enabled (enable `smol` to spawn anywhere, or spawn from inside tokio)"
    )
}

pin_project_lite::pin_project! {
    /// The sleep future of [`Auto`] and of [`crate::sleep`]: tokio's timer
    /// inside a tokio runtime, async-io's otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// futures_lite::future::block_on(portasync::sleep(Duration::from_millis(1)));
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping it deregisters the timer; nothing else happens.
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Sleep {
        #[pin]
        inner: SleepInner,
    }
}

pin_project_lite::pin_project! {
    #[project = SleepProj]
    #[derive(Debug)]
    enum SleepInner {
        Io { sleep: IoSleep },
        Tokio { #[pin] sleep: TokioSlot },
    }
}

/// pin-project-lite cannot gate a variant on a feature, so without tokio the
/// variant holds a type with no values.
#[cfg(feature = "tokio")]
type TokioSlot = TokioSleep;
#[cfg(not(feature = "tokio"))]
type TokioSlot = NoTokio;

#[cfg(not(feature = "tokio"))]
#[derive(Debug)]
enum NoTokio {}

#[cfg(not(feature = "tokio"))]
impl Future for NoTokio {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        match *self {}
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().inner.project() {
            SleepProj::Io { sleep } => Pin::new(sleep).poll(cx),
            SleepProj::Tokio { sleep } => sleep.poll(cx),
        }
    }
}
