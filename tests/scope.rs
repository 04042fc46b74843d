//! Scoped spawn: `scope`, `scope_boxed` and `scope_blocking`.
//!
//! `suite` holds the tests that depend on a runtime (timers, spawning, the
//! runtime's threads), instantiated per runtime by `per_runtime!`. `core`
//! holds the runtime-free tests of the scope's own machinery, and `miri` the
//! `scope_blocking` tests on an executor of the test's own: both avoid
//! async-io's reactor so that Miri can run them (see the command in
//! `miri`'s doc).

mod common;

use std::panic::AssertUnwindSafe;

/// The message of a panic payload, for assertions.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs `f`, expecting it to panic; returns the panic's message.
fn panic_message<T>(f: impl FnOnce() -> T) -> String {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("it was expected to panic"),
        Err(payload) => message(&*payload),
    }
}

/// Silences panics whose message starts with "expected panic" (the common
/// module's hook needs async-io, which Miri cannot run).
fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !message(info.payload()).starts_with("expected panic") {
                default(info);
            }
        }));
    });
}

/// Awaits `future`, expecting it to panic; returns the panic's message.
async fn panic_message_async<F: std::future::Future>(future: F) -> String {
    use futures_lite::FutureExt as _;
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(_) => panic!("it was expected to panic"),
        Err(payload) => message(&*payload),
    }
}

/// Children that poll a shared count: each yields until the count is right.
#[cfg(not(miri))]
#[allow(dead_code)]
mod suite {
    use crate::common::{drop_probe, quiet_expected_panics, within};
    use crate::{panic_message, panic_message_async};
    use futures_lite::future;
    use portasync::rt::Runtime;
    use portasync::{BlockingScope, scope, scope_blocking, scope_boxed};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    /// The body returns before its children finish; the scope still waits
    /// for every child.
    pub(crate) async fn completes_after_body_and_every_child<R: Runtime>(rt: R) {
        let done = AtomicUsize::new(0);
        let body_done = AtomicUsize::new(0);
        let (go_tx, go) = async_channel::bounded::<()>(1);
        let output = within(scope(async |s| {
            for _ in 0..4 {
                s.spawn(async {
                    // Closed when the body ends: the children outlive it.
                    assert!(go.recv().await.is_err());
                    rt.sleep(Duration::from_millis(1)).await;
                    assert_eq!(body_done.load(Ordering::SeqCst), 1);
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .detach();
            }
            future::yield_now().await;
            drop(go_tx);
            body_done.store(1, Ordering::SeqCst);
            "body"
        }))
        .await;
        assert_eq!(output, "body");
        assert_eq!(done.load(Ordering::SeqCst), 4);
    }

    /// Children borrow (shared and exclusive) what lives outside the scope.
    pub(crate) async fn children_borrow_from_outside<R: Runtime>(rt: R) {
        let greeting = String::from("hello");
        let mut numbers = vec![1, 2, 3, 4, 5, 6];
        within(scope(async |s| {
            for chunk in numbers.chunks_mut(2) {
                s.spawn(async {
                    rt.sleep(Duration::from_millis(1)).await;
                    for n in chunk {
                        *n *= greeting.len();
                    }
                })
                .detach();
            }
        }))
        .await;
        assert_eq!(numbers, [5, 10, 15, 20, 25, 30]);
    }

    pub(crate) async fn handles_await_outputs<R: Runtime>(rt: R) {
        let outputs = within(scope(async |s| {
            let handles: Vec<_> = (0..8u64)
                .map(|i| {
                    let rt = &rt;
                    s.spawn(async move {
                        // Later children finish first.
                        rt.sleep(Duration::from_millis(8 - i)).await;
                        i * 10
                    })
                })
                .collect();
            let mut outputs = Vec::new();
            for handle in handles {
                outputs.push(handle.await);
            }
            outputs
        }))
        .await;
        assert_eq!(outputs, [0, 10, 20, 30, 40, 50, 60, 70]);
    }

    /// Children spawn siblings through the scope they borrow.
    pub(crate) async fn children_spawn_siblings<R: Runtime>(rt: R) {
        let count = AtomicUsize::new(0);
        within(scope(async |s| {
            s.spawn(async {
                rt.sleep(Duration::from_millis(1)).await;
                let inner = s.spawn(async {
                    count.fetch_add(1, Ordering::SeqCst);
                    2
                });
                count.fetch_add(inner.await, Ordering::SeqCst);
            })
            .detach();
        }))
        .await;
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    /// A child whose handle is dropped still runs to its end.
    pub(crate) async fn dropped_handles_do_not_cancel<R: Runtime>(rt: R) {
        let finished = AtomicUsize::new(0);
        let (go_tx, go) = async_channel::bounded::<()>(1);
        within(scope(async |s| {
            let handle = s.spawn(async {
                go.recv().await.unwrap();
                rt.sleep(Duration::from_millis(1)).await;
                finished.store(1, Ordering::SeqCst);
            });
            drop(handle);
            go_tx.send(()).await.unwrap();
        }))
        .await;
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    /// A child's panic drops its siblings (and the body) before the scope
    /// resumes it.
    pub(crate) async fn child_panic_drops_siblings_then_resumes<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let (sibling_guard, sibling_dropped) = drop_probe();
        let (body_guard, body_dropped) = drop_probe();
        let (started_tx, started) = async_channel::bounded::<()>(1);
        let message = panic_message_async(within(scope(async |s| {
            let _guard = body_guard;
            s.spawn(async {
                let _guard = sibling_guard;
                started_tx.send(()).await.unwrap();
                future::pending::<()>().await
            })
            .detach();
            s.spawn(async {
                started.recv().await.unwrap();
                rt.sleep(Duration::from_millis(1)).await;
                panic!("expected panic: child");
            })
            .detach();
            future::pending::<()>().await
        })))
        .await;
        assert_eq!(message, "expected panic: child");
        assert!(
            sibling_dropped.now(),
            "the sibling was dropped before the panic resumed"
        );
        assert!(
            body_dropped.now(),
            "the body was dropped before the panic resumed"
        );
    }

    pub(crate) async fn body_panic_drops_children_then_resumes<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let (guard, dropped) = drop_probe();
        let message = panic_message_async(within(scope(async |s| {
            s.spawn(async {
                let _guard = guard;
                future::pending::<()>().await
            })
            .detach();
            rt.sleep(Duration::from_millis(1)).await;
            panic!("expected panic: body");
        })))
        .await;
        assert_eq!(message, "expected panic: body");
        assert!(dropped.now());
    }

    /// `scope_boxed`'s future is `Send`: it runs as a spawned task.
    pub(crate) async fn scope_boxed_runs_in_a_spawned_task<R: Runtime>(rt: R) {
        let data = Arc::new(vec![1u64, 2, 3, 4, 5, 6, 7, 8]);
        let rt2 = rt.clone();
        let task = rt.spawn(async move {
            let data = &data;
            let rt = &rt2;
            scope_boxed(|s| {
                Box::pin(async move {
                    let handles: Vec<_> = data
                        .chunks(2)
                        .map(|chunk| {
                            s.spawn(async move {
                                rt.sleep(Duration::from_millis(1)).await;
                                chunk.iter().sum::<u64>()
                            })
                        })
                        .collect();
                    let mut total = 0;
                    for handle in handles {
                        total += handle.await;
                    }
                    total
                })
            })
            .await
        });
        assert_eq!(within(task).await.unwrap(), 36);
    }

    /// A child's panic inside a spawned `scope_boxed` reaches the task's
    /// handle, after the siblings were dropped.
    pub(crate) async fn scope_boxed_panic_reaches_the_task_handle<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let (guard, dropped) = drop_probe();
        let task = rt.spawn(async move {
            scope_boxed(|s| {
                Box::pin(async move {
                    s.spawn(async move {
                        let _guard = guard;
                        future::pending::<()>().await
                    })
                    .detach();
                    s.spawn(async { panic!("expected panic: boxed") }).await
                })
            })
            .await
        });
        let err = within(task).await.unwrap_err();
        assert_eq!(err.to_string(), "task panicked: expected panic: boxed");
        assert!(dropped.now());
    }

    /// A barrier with a time limit: `false` if the others never came.
    struct Meet {
        arrived: Mutex<usize>,
        all: Condvar,
        parties: usize,
    }

    impl Meet {
        fn new(parties: usize) -> Self {
            Self {
                arrived: Mutex::new(0),
                all: Condvar::new(),
                parties,
            }
        }

        /// Blocks (the thread) until every party arrived, or the hang limit.
        fn wait(&self) -> bool {
            let mut arrived = self.arrived.lock().unwrap();
            *arrived += 1;
            self.all.notify_all();
            let (arrived, timeout) = self
                .all
                .wait_timeout_while(arrived, crate::common::HANG, |n| *n < self.parties)
                .unwrap();
            drop(arrived);
            !timeout.timed_out()
        }
    }

    /// Held by every test whose children block runtime worker threads. The
    /// pools are shared by all the tests of this binary (async-std's has one
    /// thread per core), so two such tests at once could each hold a thread
    /// the other needs, and both would wait out the hang limit.
    fn blocking_workers() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Two children that block their threads until both have arrived: run
    /// one after the other, they could never meet.
    pub(crate) async fn scope_blocking_runs_children_in_parallel<R: Runtime>(rt: R) {
        let _exclusive = blocking_workers();
        let meet = Meet::new(2);
        let met = scope_blocking(&rt, |s| {
            let a = s.spawn(async { meet.wait() });
            let b = s.spawn(async { meet.wait() });
            (a.join(), b.join())
        });
        assert_eq!(met, (true, true), "the children did not run in parallel");
    }

    /// Children borrow the caller's stack, exclusively, and run on the
    /// runtime's threads.
    pub(crate) async fn scope_blocking_borrows_the_callers_stack<R: Runtime>(rt: R) {
        let mut data: Vec<u64> = (1..=400).collect();
        let here = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        let sum = scope_blocking(&rt, |s| {
            let handles: Vec<_> = data
                .chunks_mut(100)
                .map(|chunk| {
                    let elsewhere = &elsewhere;
                    s.spawn(async move {
                        if std::thread::current().id() != here {
                            elsewhere.fetch_add(1, Ordering::SeqCst);
                        }
                        for n in chunk.iter_mut() {
                            *n *= 2;
                        }
                        chunk.iter().sum::<u64>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).sum::<u64>()
        });
        assert_eq!(sum, 400 * 401);
        assert_eq!(data[399], 800);
        assert_eq!(
            elsewhere.load(Ordering::SeqCst),
            4,
            "children ran on the caller's thread"
        );
    }

    /// Spawns a child that blocks its runtime thread (so it cannot be
    /// cancelled) until the returned sender is dropped, then sets
    /// `finished`; returns once the child is running.
    fn spawn_blocked_child<'scope, R: Runtime>(
        s: &'scope BlockingScope<'scope, '_, R>,
        finished: &'scope AtomicUsize,
    ) -> std::sync::mpsc::Sender<()> {
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (go_tx, go) = std::sync::mpsc::channel::<()>();
        s.spawn(async move {
            started_tx.send(()).unwrap();
            assert!(go.recv().is_err());
            finished.store(1, Ordering::SeqCst);
        })
        .detach();
        started.recv().unwrap();
        go_tx
    }

    /// The body joins a child whose handle it polled once before, with a
    /// waker that panics when the child finishes: the body's thread is
    /// unparked all the same (it once waited for good), and the waker's
    /// panic reaches the caller as the child's. The gate opens from another
    /// thread a little later, so that the join has usually parked by then;
    /// the call runs on a thread of its own, so that a hang fails the test.
    pub(crate) async fn scope_blocking_joins_past_a_waker_that_panics<R: Runtime>(rt: R) {
        let (_, bad) = crate::common::panicking();
        let (sent, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let message = panic_message(|| {
                scope_blocking(&rt, |s| {
                    let (open, gate) = async_channel::bounded::<()>(1);
                    let mut child = s.spawn(async move {
                        let _ = gate.recv().await;
                        5
                    });
                    let mut cx = std::task::Context::from_waker(&bad);
                    let polled = std::pin::Pin::new(&mut child).poll(&mut cx);
                    assert!(polled.is_pending());
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(20));
                        drop(open);
                    });
                    child.join()
                })
            });
            sent.send(message).unwrap();
        });
        let message = outcome
            .recv_timeout(crate::common::HANG)
            .expect("the joining body was never unparked");
        assert_eq!(message, "expected panic: in a waker");
    }

    /// The body panics while a child is blocked: the call waits for the
    /// child before it resumes the body's panic.
    pub(crate) async fn scope_blocking_waits_when_the_body_panics<R: Runtime>(rt: R) {
        let _exclusive = blocking_workers();
        quiet_expected_panics();
        let finished = AtomicUsize::new(0);
        let message = panic_message(|| {
            scope_blocking(&rt, |s| {
                let _go = spawn_blocked_child(s, &finished);
                panic!("expected panic: blocking body");
            })
        });
        assert_eq!(message, "expected panic: blocking body");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "returned before the child finished"
        );
    }

    /// A child panics while a sibling is blocked: the sibling finishes first,
    /// then the child's panic (not the body's, from `join`) resumes.
    pub(crate) async fn scope_blocking_resumes_a_child_panic_after_the_rest<R: Runtime>(rt: R) {
        let _exclusive = blocking_workers();
        quiet_expected_panics();
        let finished = AtomicUsize::new(0);
        let message = panic_message(|| {
            scope_blocking(&rt, |s| {
                let _go = spawn_blocked_child(s, &finished);
                s.spawn(async { panic!("expected panic: blocking child") })
                    .join()
            })
        });
        assert_eq!(message, "expected panic: blocking child");
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    /// A child's panic with the body already returned: the body's output,
    /// whose destructor panics, is dropped where that cannot unwind, and
    /// the child's panic is the one resumed. (From a review: the output was
    /// dropped during the unwind and the process aborted, as the async
    /// scope's once did.)
    pub(crate) async fn scope_blocking_drops_the_output_before_a_child_panic<R: Runtime>(rt: R) {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("expected panic: the output's destructor");
            }
        }
        quiet_expected_panics();
        let message = panic_message(|| {
            scope_blocking(&rt, |s| {
                s.spawn(async { panic!("expected panic: blocking child") })
                    .detach();
                PanicOnDrop
            })
        });
        assert_eq!(message, "expected panic: blocking child");
    }

    /// A child of `scope_blocking` that calls it again would block a
    /// runtime thread: refused with a clear panic, on every runtime.
    pub(crate) async fn scope_blocking_refuses_nesting_in_a_child<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let message = panic_message(|| {
            scope_blocking(&rt, |s| {
                s.spawn(async { scope_blocking(&rt, |_| ()) }).join()
            })
        });
        assert!(
            message.contains("scope_blocking called inside a child of another scope_blocking"),
            "{message}"
        );
    }

    /// Called from a task on the runtime's own executor threads, it panics
    /// instead of deadlocking (smol's global executor, tokio, async-std).
    pub(crate) async fn scope_blocking_refuses_executor_threads<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let rt2 = rt.clone();
        let err = within(rt.spawn(async move { scope_blocking(&rt2, |_| ()) }))
            .await
            .unwrap_err();
        let message = err.into_panic();
        let message = crate::message(&*message);
        assert!(
            message.starts_with("portasync::scope_blocking called "),
            "{message}"
        );
        assert!(message.contains("deadlock"), "{message}");
    }

    /// From the runtime's blocking pool (smol and async-std), it is allowed.
    pub(crate) async fn scope_blocking_works_from_spawn_blocking<R: Runtime>(rt: R) {
        let rt2 = rt.clone();
        let sum = within(rt.spawn_blocking(move || {
            let data = [1, 2, 3];
            scope_blocking(&rt2, |s| s.spawn(async { data.iter().sum::<i32>() }).join())
        }))
        .await
        .unwrap();
        assert_eq!(sum, 6);
    }
}

/// Instantiates the named tests of `suite` for one harness.
#[cfg(all(
    not(miri),
    any(feature = "smol", feature = "tokio", feature = "async-std")
))]
macro_rules! per_runtime {
    ($module:ident, $harness:ty; $($test:ident),* $(,)?) => {
        mod $module {
            use crate::common::Harness;
            $(
                #[test]
                fn $test() {
                    <$harness>::run(crate::suite::$test);
                }
            )*
        }
    };
}

/// What every runtime runs.
#[cfg(all(
    not(miri),
    any(feature = "smol", feature = "tokio", feature = "async-std")
))]
macro_rules! every_runtime {
    ($module:ident, $harness:ty; $($extra:ident),* $(,)?) => {
        per_runtime!($module, $harness;
            completes_after_body_and_every_child,
            children_borrow_from_outside,
            handles_await_outputs,
            children_spawn_siblings,
            dropped_handles_do_not_cancel,
            child_panic_drops_siblings_then_resumes,
            body_panic_drops_children_then_resumes,
            scope_boxed_runs_in_a_spawned_task,
            scope_boxed_panic_reaches_the_task_handle,
            scope_blocking_borrows_the_callers_stack,
            scope_blocking_waits_when_the_body_panics,
            scope_blocking_refuses_nesting_in_a_child,
            scope_blocking_drops_the_output_before_a_child_panic,
            scope_blocking_joins_past_a_waker_that_panics,
            $($extra),*
        );
    };
}

// smol's global executor runs one thread unless SMOL_THREADS says more: the
// tests where one child blocks a thread while another must run use the
// two-thread executor of `SmolOwn` instead.
#[cfg(all(feature = "smol", not(miri)))]
every_runtime!(smol_global, crate::common::SmolGlobal;
    scope_blocking_refuses_executor_threads,
    scope_blocking_works_from_spawn_blocking,
);
#[cfg(all(feature = "smol", not(miri)))]
every_runtime!(smol_own_executor, crate::common::SmolOwn;
    scope_blocking_runs_children_in_parallel,
    scope_blocking_resumes_a_child_panic_after_the_rest,
    scope_blocking_works_from_spawn_blocking,
);
#[cfg(all(feature = "tokio", not(miri)))]
every_runtime!(tokio, crate::common::Tokio;
    scope_blocking_runs_children_in_parallel,
    scope_blocking_resumes_a_child_panic_after_the_rest,
    scope_blocking_refuses_executor_threads,
);
#[cfg(all(feature = "async-std", not(miri)))]
every_runtime!(async_std, crate::common::AsyncStd;
    scope_blocking_runs_children_in_parallel,
    scope_blocking_resumes_a_child_panic_after_the_rest,
    scope_blocking_refuses_executor_threads,
    scope_blocking_works_from_spawn_blocking,
);

/// A current-thread tokio runtime can only run the children on the thread
/// that would block: refused even outside a task.
#[cfg(all(feature = "tokio", not(miri)))]
#[test]
fn scope_blocking_refuses_a_current_thread_tokio_runtime() {
    common::quiet_expected_panics();
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let rt = portasync::rt::Tokio::from_handle(runtime.handle().clone());
    let message =
        runtime.block_on(async { panic_message(|| portasync::scope_blocking(&rt, |_| ())) });
    assert!(
        message.contains("current-thread tokio runtime"),
        "{message}"
    );
}

/// The scope's own machinery, with no runtime: `futures_lite`'s `block_on`
/// and hand-made wakers. Miri runs these.
mod core {
    use crate::{panic_message, panic_message_async, quiet};
    use futures_lite::future::{self, block_on, poll_once, yield_now};
    use portasync::{scope, scope_boxed};
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// Counts its drops.
    struct Probe<'a>(&'a AtomicUsize);

    impl Drop for Probe<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn children_run_concurrently_with_the_body() {
        // The child can only finish once the body has sent, and the body
        // only once the child has answered: they must interleave.
        let (to_child, child_rx) = async_channel::bounded::<u32>(1);
        let (to_body, body_rx) = async_channel::bounded::<u32>(1);
        let answer = block_on(scope(async |s| {
            s.spawn(async {
                let x = child_rx.recv().await.unwrap();
                to_body.send(x + 1).await.unwrap();
            })
            .detach();
            to_child.send(41).await.unwrap();
            body_rx.recv().await.unwrap()
        }));
        assert_eq!(answer, 42);
    }

    #[test]
    fn many_children_and_nested_spawns() {
        let total = AtomicUsize::new(0);
        block_on(scope(async |s| {
            for i in 0..200 {
                let total = &total;
                s.spawn(async move {
                    yield_now().await;
                    if i % 10 == 0 {
                        s.spawn(async move {
                            total.fetch_add(1000, Ordering::SeqCst);
                        })
                        .detach();
                    }
                    total.fetch_add(1, Ordering::SeqCst);
                })
                .detach();
            }
        }));
        assert_eq!(total.load(Ordering::SeqCst), 200 + 20 * 1000);
    }

    #[test]
    fn handle_outputs_and_is_finished() {
        let text = String::from("scoped");
        block_on(scope(async |s| {
            let len = s.spawn(async { text.len() });
            let slow = s.spawn(async {
                yield_now().await;
                yield_now().await;
                'x'
            });
            assert!(!len.is_finished());
            yield_now().await;
            assert!(len.is_finished());
            assert_eq!(len.await, 6);
            assert_eq!(slow.await, 'x');
        }));
    }

    #[test]
    fn dropped_handles_do_not_cancel() {
        let ran = AtomicUsize::new(0);
        block_on(scope(async |s| {
            drop(s.spawn(async {
                for _ in 0..5 {
                    yield_now().await;
                }
                ran.fetch_add(1, Ordering::SeqCst);
            }));
        }));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn child_panic_drops_siblings_and_body_then_resumes() {
        quiet();
        let dropped = AtomicUsize::new(0);
        let message = block_on(panic_message_async(scope(async |s| {
            let _body_probe = Probe(&dropped);
            for _ in 0..3 {
                holds_a_probe(s, &dropped);
            }
            panics_after_a_yield(s);
            future::pending::<()>().await
        })));
        assert_eq!(message, "expected panic: core child");
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn body_panic_drops_children_then_resumes() {
        quiet();
        let dropped = AtomicUsize::new(0);
        let message = block_on(panic_message_async(scope(async |s| {
            holds(s, Probe(&dropped));
            yield_now().await;
            panic!("expected panic: core body");
        })));
        assert_eq!(message, "expected panic: core body");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    /// A panic payload whose own destructor panics.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("expected panic: the payload's destructor");
        }
    }

    /// Panics with a [`Bomb`] when dropped.
    struct PanicsABombOnDrop;

    impl Drop for PanicsABombOnDrop {
        fn drop(&mut self) {
            std::panic::panic_any(Bomb);
        }
    }

    /// The body's destructor panics with a payload whose destructor panics
    /// too, as the scope tears down after a child's panic: the child's
    /// panic is still the one resumed (the payload's replaced it).
    #[test]
    fn a_destructor_payload_never_replaces_the_childs_panic() {
        quiet();
        let message = block_on(panic_message_async(scope(async |s| {
            let _guard = PanicsABombOnDrop;
            panics_after_a_yield(s);
            future::pending::<()>().await
        })));
        assert_eq!(message, "expected panic: core child");
    }

    /// A child whose destructor panics as the scope drops it still finishes
    /// its handle: a sibling's destructor that looks at the handle sees it
    /// finished (it stayed pending for good).
    #[test]
    fn a_child_whose_destructor_panics_finishes_its_handle() {
        struct Peek<'a>(
            Option<portasync::ScopedJoinHandle<'a, ()>>,
            &'a std::sync::Mutex<Option<bool>>,
        );
        impl Drop for Peek<'_> {
            fn drop(&mut self) {
                if let Some(handle) = &self.0 {
                    *self.1.lock().unwrap() = Some(handle.is_finished());
                }
            }
        }
        quiet();
        let seen = std::sync::Mutex::new(None);
        let message = panic_message(|| {
            block_on(scope(async |s| {
                let doomed = s.spawn(async {
                    let _guard = PanicOnDrop;
                    future::pending::<()>().await
                });
                yield_now().await; // `doomed` runs up to its await
                // Spawned after `doomed`, so dropped after it.
                holds(s, Peek(Some(doomed), &seen));
                yield_now().await;
                panic!("expected panic: core body");
            }))
        });
        assert_eq!(message, "expected panic: core body");
        assert_eq!(*seen.lock().unwrap(), Some(true));
    }

    /// Spawns a child holding a probe when dropped.
    struct SpawnOnDrop<'s, 'env> {
        scope: &'s portasync::Scope<'s, 'env>,
        dropped: &'env AtomicUsize,
    }

    impl Drop for SpawnOnDrop<'_, '_> {
        fn drop(&mut self) {
            // Never polled: the probe must be in it from the start.
            holds(self.scope, Probe(self.dropped));
        }
    }

    /// Panics when dropped.
    struct PanicOnDrop;

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("expected panic: destructor");
        }
    }

    /// A child whose destructor panics, once the scope is dropped while it
    /// runs.
    fn panics_when_dropped<'s>(s: &'s portasync::Scope<'s, '_>) {
        s.spawn(async {
            let _guard = PanicOnDrop;
            future::pending::<()>().await
        })
        .detach();
    }

    /// A child that holds `value` from the start (polled or not) until it
    /// is dropped.
    fn holds<'s, V: Send + 's>(s: &'s portasync::Scope<'s, '_>, value: V) {
        s.spawn(async move {
            let _value = value;
            future::pending::<()>().await
        })
        .detach();
    }

    /// A child that holds a probe until it is dropped.
    fn holds_a_probe<'s, 'env>(s: &'s portasync::Scope<'s, 'env>, dropped: &'env AtomicUsize) {
        s.spawn(async move {
            let _probe = Probe(dropped);
            future::pending::<()>().await
        })
        .detach();
    }

    /// A child that panics on its second poll.
    fn panics_after_a_yield<'s>(s: &'s portasync::Scope<'s, '_>) {
        s.spawn(async {
            yield_now().await;
            panic!("expected panic: core child");
        })
        .detach();
    }

    /// Dropping a half-run scope drops every child (and the body) before the
    /// drop returns, including a child spawned by another child's destructor.
    #[test]
    fn dropping_the_scope_drops_every_child_before_returning() {
        let dropped = AtomicUsize::new(0);
        let mut running = Box::pin(scope(async |s| {
            let _body_probe = Probe(&dropped);
            for _ in 0..10 {
                holds_a_probe(s, &dropped);
            }
            s.spawn(async {
                let _late = SpawnOnDrop {
                    scope: s,
                    dropped: &dropped,
                };
                future::pending::<()>().await
            })
            .detach();
            future::pending::<()>().await
        }));
        assert!(block_on(poll_once(running.as_mut())).is_none());
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(running);
        // 10 children, the body, and the child spawned while dropping.
        assert_eq!(dropped.load(Ordering::SeqCst), 12);
    }

    /// A destructor that panics while a scope is dropped stops no other
    /// drop: the child the body's destructor spawns is still dropped (and
    /// freed), and the panic then reaches the one dropping the scope. (From
    /// a review: the late child was leaked.)
    #[test]
    fn a_destructor_panic_while_dropping_a_scope_drops_the_rest() {
        quiet();
        let dropped = AtomicUsize::new(0);
        let mut running = Box::pin(scope(async |s| {
            let _late = SpawnOnDrop {
                scope: s,
                dropped: &dropped,
            };
            panics_when_dropped(s);
            holds_a_probe(s, &dropped);
            future::pending::<()>().await
        }));
        assert!(block_on(poll_once(running.as_mut())).is_none());
        let message = panic_message(|| drop(running));
        assert_eq!(message, "expected panic: destructor");
        // The child after the panicking one, and the late child.
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }

    /// A child's panic is the one the scope resumes, even when a sibling's
    /// destructor panics as the scope drops it on the way. (From a review:
    /// the destructor's panic took its place.)
    #[test]
    fn a_child_panic_outlives_a_sibling_destructor_panic() {
        quiet();
        let dropped = AtomicUsize::new(0);
        let message = block_on(panic_message_async(scope(async |s| {
            panics_when_dropped(s);
            holds_a_probe(s, &dropped);
            panics_after_a_yield(s);
            future::pending::<()>().await
        })));
        assert_eq!(message, "expected panic: core child");
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the sibling after it");
    }

    /// A child's panic with the body already finished, its output held:
    /// the output's destructor panics as it is dropped, and the child's
    /// panic is still the one resumed. (From a review: the output was
    /// dropped while unwinding, and the process aborted.)
    #[test]
    fn a_child_panic_after_the_body_finished_with_an_output() {
        quiet();
        let message = block_on(panic_message_async(scope(async |s| {
            panics_after_a_yield(s);
            PanicOnDrop
        })));
        assert_eq!(message, "expected panic: core child");
    }

    /// A waker that counts its wakes.
    fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
        struct Count(Arc<AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(AtomicUsize::new(0));
        (Waker::from(Arc::new(Count(count.clone()))), count)
    }

    /// `Box::leak` of a half-polled scope whose children borrow a buffer
    /// that is then freed: nothing runs after, nothing reads the freed
    /// buffer (Miri checks the second), and waking the leaked children only
    /// wakes the leaked scope's waker.
    #[test]
    fn leaking_a_half_polled_scope_stops_its_children() {
        let reads = Arc::new(AtomicUsize::new(0));
        let (wake_tx, wake_rx) = async_channel::unbounded::<()>();
        let (waker, wakes) = counting_waker();
        {
            let buffer = vec![1u8, 2, 3];
            let reads_in = reads.clone();
            let buffer_ref = &buffer;
            let wake_rx = &wake_rx;
            let running = Box::new(scope(async move |s| {
                for _ in 0..3 {
                    let reads = reads_in.clone();
                    s.spawn(async move {
                        loop {
                            reads.fetch_add(usize::from(buffer_ref[0]), Ordering::SeqCst);
                            if wake_rx.recv().await.is_err() {
                                return;
                            }
                        }
                    })
                    .detach();
                }
                future::pending::<()>().await
            }));
            let running = Box::leak(running);
            let mut cx = Context::from_waker(&waker);
            assert!(Future::poll(std::pin::Pin::new(running), &mut cx).is_pending());
            assert_eq!(reads.load(Ordering::SeqCst), 3);
            // `buffer` is freed here, with the leaked scope still borrowing it.
        }
        for _ in 0..3 {
            wake_tx.try_send(()).unwrap();
        }
        drop(wake_tx);
        assert_eq!(reads.load(Ordering::SeqCst), 3, "a leaked child ran");
        assert!(
            wakes.load(Ordering::SeqCst) >= 1,
            "the children's wakers reach the scope's"
        );
    }

    /// A child's waker kept past the child's end (a stale waker) wakes
    /// nothing, not even the child that reuses its place; the new child
    /// runs on its own wakes.
    #[test]
    fn stale_wakers_are_harmless() {
        let kept: Mutex<Option<Waker>> = Mutex::new(None);
        let own: Mutex<Option<Waker>> = Mutex::new(None);
        let polls = AtomicUsize::new(0);
        block_on(scope(async |s| {
            s.spawn(future::poll_fn(|cx| {
                *kept.lock().unwrap() = Some(cx.waker().clone());
                Poll::Ready(())
            }))
            .await;
            let next = s.spawn(future::poll_fn(|cx| {
                if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                    kept.lock().unwrap().take().unwrap().wake();
                    *own.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }));
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(polls.load(Ordering::SeqCst), 1, "a stale wake polled it");
            own.lock().unwrap().take().unwrap().wake();
            next.await;
        }));
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn scope_boxed_is_the_same_scope_and_send() {
        fn send<T: Send>(value: T) -> T {
            value
        }
        let data = [1, 2, 3];
        let data = &data;
        let total = block_on(send(scope_boxed(|s| {
            Box::pin(async move {
                let a = s.spawn(async { data[0] + data[1] });
                let b = s.spawn(async { data[2] });
                a.await + b.await
            })
        })));
        assert_eq!(total, 6);
    }

    /// Scopes nest, and an inner scope's children may borrow the outer
    /// scope (to spawn into it).
    #[test]
    fn nested_scopes() {
        let count = AtomicUsize::new(0);
        block_on(scope(async |outer| {
            scope(async |inner| {
                inner
                    .spawn(async {
                        outer
                            .spawn(async {
                                count.fetch_add(1, Ordering::SeqCst);
                            })
                            .detach();
                        count.fetch_add(1, Ordering::SeqCst);
                    })
                    .detach();
            })
            .await;
        }));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    /// The body's future is dropped once it completes, not kept until the
    /// children end.
    #[test]
    fn body_output_waits_for_children() {
        let order = Mutex::new(Vec::new());
        let local = Cell::new(0);
        let output = block_on(scope(async |s| {
            s.spawn(async {
                yield_now().await;
                order.lock().unwrap().push("child");
            })
            .detach();
            order.lock().unwrap().push("body");
            local.set(1);
            "done"
        }));
        assert_eq!(output, "done");
        assert_eq!(*order.lock().unwrap(), ["body", "child"]);
        assert_eq!(local.get(), 1);
    }

    #[test]
    fn polling_a_finished_scope_panics_clearly_not_unsoundly() {
        quiet();
        let mut done = pin!(scope(async |_| 1));
        assert_eq!(block_on(done.as_mut()), 1);
        let message = panic_message(|| block_on(poll_once(done.as_mut())));
        assert!(!message.is_empty());
    }

    /// Counts its drops, and reads what it borrows when dropped (so Miri
    /// sees a drop that comes too late).
    struct Loud<'a>(&'a AtomicUsize, &'a String);

    impl Drop for Loud<'_> {
        fn drop(&mut self) {
            assert_eq!(self.1.len(), 4);
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wakers of finished and of dropped children, kept past the end of the
    /// scope and of everything the children borrowed, then woken (by
    /// reference and by value) and dropped: they reach nothing that is
    /// gone.
    #[test]
    fn wakers_outliving_the_scope_are_harmless() {
        quiet();
        let kept: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
        let drops = AtomicUsize::new(0);
        {
            let text = String::from("text");
            let text = &text;
            let kept = &kept;
            let drops = &drops;
            block_on(scope(async |s| {
                // Finishes, with a clone of its waker kept outside.
                s.spawn(async move {
                    let _loud = Loud(drops, text);
                    future::poll_fn(|cx| {
                        kept.lock().unwrap().push(cx.waker().clone());
                        Poll::Ready(())
                    })
                    .await;
                })
                .detach();
                yield_now().await;
            }));
            // Dropped unfinished when the body panics.
            let message = block_on(panic_message_async(scope(async |s| {
                s.spawn(async move {
                    let _loud = Loud(drops, text);
                    future::poll_fn(|cx| {
                        kept.lock().unwrap().push(cx.waker().clone());
                        Poll::<()>::Pending
                    })
                    .await;
                })
                .detach();
                yield_now().await;
                panic!("expected panic: outliving wakers");
            })));
            assert_eq!(message, "expected panic: outliving wakers");
            assert_eq!(drops.load(Ordering::SeqCst), 2);
            // `text` is freed here.
        }
        let wakers = std::mem::take(&mut *kept.lock().unwrap());
        assert_eq!(wakers.len(), 2);
        for waker in wakers {
            let clone = waker.clone();
            waker.wake_by_ref();
            clone.wake();
            drop(waker);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    /// An output nobody takes is dropped within the scope: when the handle
    /// is dropped first, as soon as the child makes it; otherwise with the
    /// handle.
    #[test]
    fn untaken_outputs_are_dropped_within_the_scope() {
        let drops = AtomicUsize::new(0);
        let text = String::from("text");
        block_on(scope(async |s| {
            let early = s.spawn(async {
                yield_now().await;
                Loud(&drops, &text)
            });
            drop(early);
            let late = s.spawn(async { Loud(&drops, &text) });
            yield_now().await;
            yield_now().await;
            assert!(late.is_finished());
            assert_eq!(drops.load(Ordering::SeqCst), 1, "the detached output");
            drop(late);
            assert_eq!(drops.load(Ordering::SeqCst), 2, "the untaken output");
            let taken = s.spawn(async { Loud(&drops, &text) }).await;
            assert_eq!(drops.load(Ordering::SeqCst), 2);
            drop(taken);
        }));
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    }

    /// A child woken from another thread (its waker cloned and sent there)
    /// runs on, and the scope's own waker is woken.
    #[test]
    fn wakes_from_another_thread() {
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let got = std::thread::scope(|threads| {
            block_on(scope(async |s| {
                let handle = s.spawn(async { rx.recv().await.unwrap() + 1 });
                yield_now().await; // the child waits on the channel
                threads.spawn(move || {
                    tx.send_blocking(41).unwrap();
                });
                handle.await
            }))
        });
        assert_eq!(got, 42);
    }

    /// A leaked handle keeps its finished output forever and never drops
    /// it (run under Miri with leak checks off, as leaks are the point).
    #[test]
    fn leaking_a_handle_never_drops_its_output() {
        let drops = AtomicUsize::new(0);
        {
            let text = String::from("text");
            block_on(scope(async |s| {
                let handle = s.spawn(async { Loud(&drops, &text) });
                yield_now().await;
                assert!(handle.is_finished());
                std::mem::forget(handle);
            }));
            // `text` is freed here, with the output still borrowing it.
        }
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }
}

/// `scope_blocking` on a smol executor of the test's own, driven by two
/// plain threads with `futures_lite`'s `block_on` (no async-io reactor), so
/// that Miri can run it:
///
/// ```text
/// cargo +nightly miri test --test scope --no-default-features --features smol -- core:: miri:: --skip leaking
/// MIRIFLAGS=-Zmiri-ignore-leaks cargo +nightly miri test --test scope --no-default-features --features smol -- core::leaking
/// ```
///
/// (The leak test leaks on purpose, so Miri's leak check is off for it
/// alone; use-after-free and data races are still checked.)
#[cfg(feature = "smol")]
mod miri {
    use crate::{panic_message, quiet};
    use futures_lite::future::{self, block_on};
    use portasync::rt::Smol;
    use portasync::scope_blocking;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs `test` with a two-thread executor, then stops the threads.
    fn with_executor<T>(test: impl FnOnce(&Smol) -> T) -> T {
        let executor = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                std::thread::spawn(move || block_on(executor.run(stopped.recv())))
            })
            .collect();
        let output = test(&Smol::new(executor));
        drop(stop);
        for thread in threads {
            let _ = thread.join().unwrap();
        }
        output
    }

    #[test]
    fn children_borrow_and_mutate_the_stack() {
        let mut data = vec![1u32; 64];
        let sum = with_executor(|rt| {
            scope_blocking(rt, |s| {
                let handles: Vec<_> = data
                    .chunks_mut(16)
                    .map(|chunk| {
                        s.spawn(async move {
                            future::yield_now().await;
                            for n in chunk.iter_mut() {
                                *n += 1;
                            }
                            chunk.iter().sum::<u32>()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join()).sum::<u32>()
            })
        });
        assert_eq!(sum, 128);
        assert!(data.iter().all(|&n| n == 2));
    }

    /// A `scope_blocking` with four detached children, each counting in
    /// `done` after a few yields: it returns once all four have.
    fn four_detached_children(rt: &Smol, done: &AtomicUsize) {
        scope_blocking(rt, |s| {
            for _ in 0..4 {
                s.spawn(async {
                    for _ in 0..3 {
                        future::yield_now().await;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .detach();
            }
        });
    }

    #[test]
    fn a_dropped_handle_is_still_waited_for() {
        let done = AtomicUsize::new(0);
        with_executor(|rt| four_detached_children(rt, &done));
        assert_eq!(done.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn siblings_await_each_other() {
        let value = 20;
        let got = with_executor(|rt| {
            scope_blocking(rt, |s| {
                let first = s.spawn(async { value });
                s.spawn(async move { first.await + 1 }).join()
            })
        });
        assert_eq!(got, 21);
    }

    /// A child panics; its sibling is cancelled (dropped at its await) and
    /// the call returns only after that, resuming the child's panic.
    #[test]
    fn a_child_panic_cancels_the_rest_then_resumes() {
        let dropped = AtomicUsize::new(0);
        struct Probe<'a>(&'a AtomicUsize);
        impl Drop for Probe<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        quiet();
        let message = with_executor(|rt| {
            panic_message(|| {
                scope_blocking(rt, |s| {
                    // Made here, not in the child: the child may be dropped
                    // before its first poll.
                    let probe = Probe(&dropped);
                    s.spawn(async move {
                        let _probe = probe;
                        future::pending::<()>().await
                    })
                    .detach();
                    s.spawn(async { panic!("expected panic: miri child") })
                        .join()
                })
            })
        });
        assert_eq!(message, "expected panic: miri child");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    /// Called from a destructor while another panic unwinds, the scope
    /// returns normally: its detached children run to their end, not
    /// cancelled as if it were unwinding itself.
    #[test]
    fn children_run_when_called_during_an_unwind() {
        struct RunsAScope<'a>(&'a Smol, &'a AtomicUsize);
        impl Drop for RunsAScope<'_> {
            fn drop(&mut self) {
                four_detached_children(self.0, self.1);
            }
        }
        quiet();
        let done = AtomicUsize::new(0);
        with_executor(|rt| {
            let message = panic_message(|| {
                let _guard = RunsAScope(rt, &done);
                panic!("expected panic: outside the scope");
            });
            assert_eq!(message, "expected panic: outside the scope");
        });
        assert_eq!(done.load(Ordering::SeqCst), 4, "children cancelled");
    }

    /// A one-shot gate between threads.
    #[derive(Default)]
    struct Gate(std::sync::Mutex<bool>, std::sync::Condvar);

    impl Gate {
        fn open(&self) {
            *self.0.lock().unwrap() = true;
            self.1.notify_all();
        }

        fn wait(&self) {
            let mut open = self.0.lock().unwrap();
            while !*open {
                open = self.1.wait(open).unwrap();
            }
        }
    }

    /// The body panics after a child did, with a payload whose destructor
    /// panics too: the call still waits for a child that is running (it
    /// unwound at once, and the child read the caller's freed stack).
    #[test]
    fn a_panicking_payload_still_waits_for_the_children() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("expected panic: the payload's destructor");
            }
        }
        quiet();
        let (started, release) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
        let running = Arc::new(AtomicUsize::new(0));
        let (message, sum) = with_executor(|rt| {
            // Lets the reader go a while after it started: with the wait,
            // after the call would have unwound without it.
            let releaser = {
                let (started, release) = (started.clone(), release.clone());
                std::thread::spawn(move || {
                    started.wait();
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    release.open();
                })
            };
            let data = vec![7u32; 16];
            let sum = AtomicUsize::new(0);
            let message = panic_message(|| {
                scope_blocking(rt, |s| {
                    let (data, sum, running) = (&data, &sum, running.clone());
                    let (start, go) = (started.clone(), release.clone());
                    s.spawn(async move {
                        running.store(1, Ordering::SeqCst);
                        start.open();
                        go.wait(); // blocks its executor thread
                        let total: u32 = data.iter().sum();
                        sum.store(total as usize, Ordering::SeqCst);
                        running.store(0, Ordering::SeqCst);
                    })
                    .detach();
                    started.wait();
                    let first = s.spawn(async { panic!("expected panic: the first child") });
                    while !first.is_finished() {
                        std::thread::yield_now();
                    }
                    drop(first);
                    std::panic::panic_any(Bomb);
                })
            });
            assert_eq!(
                running.load(Ordering::SeqCst),
                0,
                "returned while a child ran"
            );
            releaser.join().unwrap();
            (message, sum.load(Ordering::SeqCst))
        });
        assert_eq!(message, "expected panic: the first child");
        assert_eq!(sum, 7 * 16);
    }
}

/// tokio runs `spawn_blocking` closures as tasks and cannot tell them from
/// its workers, so `scope_blocking` refuses them too (as documented); a
/// thread that merely entered the runtime's context is fine.
#[cfg(all(feature = "tokio", not(miri)))]
#[test]
fn scope_blocking_under_tokio_runs_from_plain_threads_only() {
    common::quiet_expected_panics();
    let runtime = common::tokio_runtime();
    let rt = portasync::rt::Tokio::from_handle(runtime.handle().clone());
    let rt2 = rt.clone();
    let err = runtime
        .block_on(runtime.spawn_blocking(move || portasync::scope_blocking(&rt2, |_| ())))
        .unwrap_err();
    let payload = err.into_panic();
    assert!(
        message(&*payload).contains("inside a tokio task"),
        "{}",
        message(&*payload)
    );

    // The test thread, with the runtime's context entered but in no task.
    let _entered = runtime.enter();
    let data = [1, 2, 3];
    let sum =
        portasync::scope_blocking(&rt, |s| s.spawn(async { data.iter().sum::<i32>() }).join());
    assert_eq!(sum, 6);
}
