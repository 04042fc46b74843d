//! The runtime conformance suite: written once, run on every runtime.
//!
//! Each test is a generic async fn in `suite`; `conformance!` instantiates all
//! of them for one harness. Real time appears only where a real timer must
//! fire, with a lower bound that is exact and an upper bound (`within`) that
//! only catches hangs.

mod common;

#[allow(dead_code)]
mod suite {
    use crate::common::{Dropped, counter, drop_probe, quiet_expected_panics, within};
    use futures_lite::future;
    use portasync::rt::{JoinHandle, Runtime};
    use std::pin::Pin;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// Polls a handle once with `waker`.
    fn poll<T>(
        handle: &mut JoinHandle<T>,
        waker: &std::task::Waker,
    ) -> std::task::Poll<Result<T, portasync::rt::JoinError>> {
        use std::future::Future;
        Pin::new(handle).poll(&mut std::task::Context::from_waker(waker))
    }

    pub(crate) async fn output_arrives<R: Runtime>(rt: R) {
        let handle = rt.spawn(async { 6 * 7 });
        assert_eq!(within(handle).await.unwrap(), 42);
    }

    pub(crate) async fn panic_arrives_as_join_error<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let err = within(rt.spawn(async { panic!("expected panic: boom") }))
            .await
            .unwrap_err();
        assert!(err.is_panic() && !err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked: expected panic: boom");
        assert_eq!(
            *err.into_panic().downcast::<&str>().unwrap(),
            "expected panic: boom"
        );
    }

    /// smol's global executor has one thread by default, and each test
    /// harness has two at most: if a panic killed a worker, the tasks after
    /// the panics would never run and `within` would fail.
    pub(crate) async fn panics_leave_workers_alive<R: Runtime>(rt: R) {
        quiet_expected_panics();
        for _ in 0..8 {
            let handle = rt.spawn(async { panic!("expected panic: worker") });
            assert!(within(handle).await.unwrap_err().is_panic());
        }
        let handles: Vec<_> = (0..16)
            .map(|i| {
                rt.spawn(async move {
                    future::yield_now().await;
                    i
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(within(handle).await.unwrap(), i);
        }
    }

    /// Spawns a task that starts, then waits forever holding a drop probe;
    /// returns once it has started.
    async fn spawn_parked<R: Runtime>(rt: &R) -> (JoinHandle<()>, Dropped) {
        let (guard, dropped) = drop_probe();
        let (started_tx, started) = async_channel::bounded(1);
        let handle = rt.spawn(async move {
            let _guard = guard;
            started_tx.send(()).await.unwrap();
            future::pending::<()>().await
        });
        within(started.recv()).await.unwrap();
        (handle, dropped)
    }

    pub(crate) async fn dropping_the_handle_cancels<R: Runtime>(rt: R) {
        let (handle, dropped) = spawn_parked(&rt).await;
        drop(handle);
        within(dropped.wait()).await;
    }

    pub(crate) async fn dropping_before_first_poll_cancels<R: Runtime>(rt: R) {
        let (guard, dropped) = drop_probe();
        let (ran_tx, ran) = async_channel::bounded::<()>(1);
        drop(rt.spawn(async move {
            let _guard = guard;
            let _ = ran_tx.send(()).await;
            future::pending::<()>().await
        }));
        within(dropped.wait()).await;
        // Whether or not it got to run before the drop, its other captures go
        // too (dropped in the same destructor, maybe a moment later, maybe on
        // another thread: so wait for them rather than race them).
        within(async {
            while !ran.is_closed() {
                future::yield_now().await;
            }
        })
        .await;
    }

    pub(crate) async fn detach_keeps_it_running<R: Runtime>(rt: R) {
        let (go_tx, go) = async_channel::bounded::<()>(1);
        let (out_tx, out) = async_channel::bounded(1);
        rt.spawn(async move {
            go.recv().await.unwrap();
            out_tx.send(5).await.unwrap();
        })
        .detach();
        go_tx.send(()).await.unwrap();
        assert_eq!(within(out.recv()).await.unwrap(), 5);
    }

    pub(crate) async fn abort_resolves_cancelled_after_drop<R: Runtime>(rt: R) {
        let (handle, dropped) = spawn_parked(&rt).await;
        handle.abort();
        handle.abort(); // twice is harmless
        let err = within(handle).await.unwrap_err();
        assert!(err.is_cancelled());
        // The handle resolves only after the task's future was dropped.
        assert!(dropped.now());
    }

    /// An aborted task turns finished once its future is gone, on every
    /// runtime (async-std's used to stay unfinished for good).
    pub(crate) async fn aborted_task_turns_finished_after_drop<R: Runtime>(rt: R) {
        let (handle, dropped) = spawn_parked(&rt).await;
        assert!(!handle.is_finished());
        handle.abort();
        within(async {
            while !handle.is_finished() {
                future::yield_now().await;
            }
        })
        .await;
        assert!(dropped.now(), "finished before the future was dropped");
        assert!(within(handle).await.unwrap_err().is_cancelled());
    }

    pub(crate) async fn abort_before_first_poll<R: Runtime>(rt: R) {
        let handle = rt.spawn(future::pending::<()>());
        handle.abort();
        assert!(within(handle).await.unwrap_err().is_cancelled());
    }

    pub(crate) async fn abort_after_finish_keeps_the_output<R: Runtime>(rt: R) {
        let handle = rt.spawn(async { 9 });
        within(async {
            while !handle.is_finished() {
                future::yield_now().await;
            }
        })
        .await;
        handle.abort();
        assert_eq!(within(handle).await.unwrap(), 9);
    }

    pub(crate) async fn is_finished_follows_the_task<R: Runtime>(rt: R) {
        let (go_tx, go) = async_channel::bounded::<()>(1);
        let handle = rt.spawn(async move { go.recv().await.unwrap() });
        assert!(!handle.is_finished());
        rt.sleep(Duration::from_millis(5)).await;
        assert!(!handle.is_finished(), "finished while still waiting");
        go_tx.send(()).await.unwrap();
        within(async {
            while !handle.is_finished() {
                future::yield_now().await;
            }
        })
        .await;
        within(handle).await.unwrap();
    }

    pub(crate) async fn spawn_blocking_runs_off_thread<R: Runtime>(rt: R) {
        let here = std::thread::current().id();
        let there = within(rt.spawn_blocking(move || std::thread::current().id()))
            .await
            .unwrap();
        assert_ne!(here, there);
        assert_eq!(within(rt.spawn_blocking(|| 7)).await.unwrap(), 7);
    }

    pub(crate) async fn spawn_blocking_panic_arrives<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let handle = rt.spawn_blocking(|| -> u8 { panic!("expected panic: blocking") });
        let err = within(handle).await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "task panicked: expected panic: blocking");
    }

    /// A running closure cannot be stopped; its aborted handle resolves at
    /// once instead of waiting for it.
    pub(crate) async fn spawn_blocking_abort_while_running<R: Runtime>(rt: R) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = async_channel::bounded(1);
        let (finished_tx, finished) = async_channel::bounded(1);
        let handle = rt.spawn_blocking(move || {
            started_tx.send_blocking(()).unwrap();
            hold.recv().unwrap();
            finished_tx.send_blocking(()).unwrap();
            1
        });
        within(started.recv()).await.unwrap();
        handle.abort();
        assert!(within(handle).await.unwrap_err().is_cancelled());
        // The closure was still blocked when the handle resolved.
        assert!(finished.is_empty());
        release.send(()).unwrap();
        within(finished.recv()).await.unwrap();
    }

    /// An abort that lands while a blocking closure runs gives the closure
    /// up, however late the handle is awaited: on tokio it resolved to the
    /// closure's output once the closure had ended (from a review).
    pub(crate) async fn spawn_blocking_abort_is_final<R: Runtime>(rt: R) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = async_channel::bounded(1);
        let (guard, closure_gone) = drop_probe();
        let handle = rt.spawn_blocking(move || {
            let _guard = guard;
            started_tx.send_blocking(()).unwrap();
            hold.recv().unwrap();
            1
        });
        within(started.recv()).await.unwrap();
        handle.abort();
        assert!(handle.is_finished());
        release.send(()).unwrap();
        within(closure_gone.wait()).await;
        // Time for the runtime to mark the closure's task done (on the old
        // code, the output then came through).
        async_io::Timer::after(Duration::from_millis(50)).await;
        let output = within(handle).await;
        assert!(
            matches!(&output, Err(e) if e.is_cancelled()),
            "an aborted blocking handle resolved to {output:?}"
        );
    }

    /// An abort that lands while the task is being polled, in the poll
    /// that finishes it, still cancels: on tokio and async-std the output
    /// came through, on smol not (from a review).
    pub(crate) async fn abort_during_the_last_poll_cancels<R: Runtime>(rt: R) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = async_channel::bounded(1);
        let handle = rt.spawn(future::poll_fn(move |_| {
            started_tx.send_blocking(()).unwrap();
            hold.recv().unwrap();
            std::task::Poll::Ready(5)
        }));
        within(started.recv()).await.unwrap();
        handle.abort();
        release.send(()).unwrap();
        let output = within(handle).await;
        assert!(
            matches!(&output, Err(e) if e.is_cancelled()),
            "a handle aborted before its task finished resolved to {output:?}"
        );
    }

    /// A look at an aborted handle between its polls (`is_finished`, or its
    /// `Debug`) keeps the waker of the last poll: whoever awaits the handle
    /// is woken once the task has stopped. On smol the look filed a no-op
    /// waker in its place, and the awaiting task waited for good (from a
    /// review).
    pub(crate) async fn a_look_between_polls_keeps_the_waker<R: Runtime>(rt: R) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = async_channel::bounded(1);
        // Its one poll holds the executor until released, so that the
        // cancel cannot complete before the look.
        let mut handle = rt.spawn(future::poll_fn(move |_| {
            started_tx.send_blocking(()).unwrap();
            hold.recv().unwrap();
            std::task::Poll::<()>::Pending
        }));
        within(started.recv()).await.unwrap();
        handle.abort();
        let (woken, waker) = counter();
        assert!(poll(&mut handle, &waker).is_pending());
        assert!(!handle.is_finished());
        assert!(format!("{handle:?}").contains("JoinHandle"));
        release.send(()).unwrap();
        within(async {
            while woken.0.load(Ordering::SeqCst) == 0 {
                future::yield_now().await;
            }
        })
        .await;
        let output = poll(&mut handle, &waker);
        assert!(matches!(output, std::task::Poll::Ready(Err(e)) if e.is_cancelled()));
    }

    /// Panics when dropped.
    struct PanicOnDrop;

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("expected panic: in drop");
        }
    }

    /// A destructor that panics as a finished task's future is dropped (an
    /// unfinished branch it raced) arrives as the task's panic; on smol
    /// and async-std it aborted the process (from a review).
    pub(crate) async fn a_destructor_panic_arrives<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let bomb = PanicOnDrop;
        let handle = rt.spawn(future::or(async { 1 }, async move {
            let _bomb = bomb;
            future::pending::<i32>().await
        }));
        let err = within(handle).await.unwrap_err();
        assert_eq!(err.to_string(), "task panicked: expected panic: in drop");
    }

    /// A destructor that panics as an aborted task stops: the handle
    /// resolves to `Cancelled`, and the process lives on (it aborted on
    /// smol and async-std; tokio reported the panic).
    pub(crate) async fn a_destructor_panic_while_aborting_cancels<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let (started_tx, started) = async_channel::bounded(1);
        let bomb = PanicOnDrop;
        let handle = rt.spawn(async move {
            let _bomb = bomb;
            started_tx.send(()).await.unwrap();
            future::pending::<()>().await
        });
        within(started.recv()).await.unwrap();
        handle.abort();
        assert!(within(handle).await.unwrap_err().is_cancelled());
        // The executor's threads are still there.
        assert_eq!(within(rt.spawn(async { 2 })).await.unwrap(), 2);
    }

    /// An abort that lands in the last poll of a task whose output panics
    /// when dropped: the handle resolves to `Cancelled`, the output is
    /// dropped where its panic is caught, and the executor lives on. (From
    /// a review: smol aborted the process, and tokio unwound into the one
    /// awaiting the handle.)
    pub(crate) async fn an_aborted_output_that_panics_when_dropped<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = async_channel::bounded(1);
        let handle = rt.spawn(future::poll_fn(move |_| {
            started_tx.send_blocking(()).unwrap();
            hold.recv().unwrap();
            std::task::Poll::Ready(PanicOnDrop)
        }));
        within(started.recv()).await.unwrap();
        handle.abort();
        release.send(()).unwrap();
        let output =
            futures_lite::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(within(handle)))
                .await
                .expect("dropping the aborted output unwound into the awaiter");
        assert!(matches!(&output, Err(e) if e.is_cancelled()));
        assert_eq!(within(rt.spawn(async { 2 })).await.unwrap(), 2);
    }

    /// A detached task whose output panics when dropped: the executor lives
    /// on (from a review: smol and async-std aborted the process).
    pub(crate) async fn a_detached_output_that_panics_when_dropped<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let (dropping_tx, dropping) = async_channel::bounded::<()>(1);
        rt.spawn(async move {
            let _signal = dropping_tx;
            PanicOnDrop
        })
        .detach();
        // The task's future, and with it the sender, is gone once it ends;
        // its output is dropped right after.
        assert!(within(dropping.recv()).await.is_err());
        for _ in 0..8 {
            assert_eq!(within(rt.spawn(async { 2 })).await.unwrap(), 2);
        }
    }

    /// `is_finished` means that awaiting resolves at once: on async-std it
    /// turned true before the output was stored (from a review).
    pub(crate) async fn is_finished_means_ready<R: Runtime>(rt: R) {
        within(async {
            for round in 0..2_000 {
                if round % 32 == 0 {
                    // Back to the executor now and then: tokio's
                    // cooperative budget (128 polls of its handles and
                    // timers in a row) would otherwise make a ready handle
                    // answer `Pending` once.
                    future::yield_now().await;
                }
                let mut handle = rt.spawn(async { 1u8 });
                while !handle.is_finished() {
                    future::yield_now().await;
                }
                let output = future::poll_once(&mut handle).await;
                assert_eq!(output.map(Result::unwrap), Some(1), "in round {round}");
            }
        })
        .await;
    }

    pub(crate) async fn sleep_waits_at_least_its_duration<R: Runtime>(rt: R) {
        let wall = Instant::now();
        let start = rt.now();
        within(rt.sleep(Duration::from_millis(30))).await;
        assert!(rt.now() - start >= Duration::from_millis(30));
        assert!(wall.elapsed() >= Duration::from_millis(30));

        let deadline = rt.now() + Duration::from_millis(20);
        within(rt.sleep_until(deadline)).await;
        assert!(rt.now() >= deadline);
    }

    pub(crate) async fn sleep_until_the_past_is_ready<R: Runtime>(rt: R) {
        let past = rt.now();
        rt.sleep(Duration::from_millis(1)).await;
        within(rt.sleep_until(past)).await;
        within(rt.sleep(Duration::ZERO)).await;
    }

    pub(crate) async fn endless_sleeps_neither_panic_nor_fire<R: Runtime>(rt: R) {
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let mut max = Box::pin(rt.sleep(Duration::MAX));
        let mut far = Box::pin(rt.sleep_until(rt.now() + century));
        let mut secs = Box::pin(rt.sleep(Duration::from_secs(u64::MAX)));
        assert!(future::poll_once(&mut max).await.is_none());
        assert!(future::poll_once(&mut far).await.is_none());
        assert!(future::poll_once(&mut secs).await.is_none());
        let first = within(future::or(
            future::or(
                future::or(
                    async {
                        (&mut max).await;
                        "max"
                    },
                    async {
                        (&mut far).await;
                        "far"
                    },
                ),
                async {
                    (&mut secs).await;
                    "secs"
                },
            ),
            async {
                rt.sleep(Duration::from_millis(20)).await;
                "short"
            },
        ))
        .await;
        assert_eq!(first, "short");
    }
}

#[cfg_attr(
    not(any(feature = "smol", feature = "tokio", feature = "async-std")),
    allow(unused_macros)
)]
/// Instantiates every test in `suite` for one harness.
macro_rules! conformance {
    ($module:ident, $harness:ty) => {
        mod $module {
            use crate::common::Harness;

            conformance!(@tests $harness;
                output_arrives,
                panic_arrives_as_join_error,
                panics_leave_workers_alive,
                dropping_the_handle_cancels,
                dropping_before_first_poll_cancels,
                detach_keeps_it_running,
                abort_resolves_cancelled_after_drop,
                abort_before_first_poll,
                aborted_task_turns_finished_after_drop,
                abort_after_finish_keeps_the_output,
                is_finished_follows_the_task,
                spawn_blocking_runs_off_thread,
                spawn_blocking_panic_arrives,
                spawn_blocking_abort_while_running,
                spawn_blocking_abort_is_final,
                abort_during_the_last_poll_cancels,
                a_look_between_polls_keeps_the_waker,
                a_destructor_panic_arrives,
                a_destructor_panic_while_aborting_cancels,
                is_finished_means_ready,
                an_aborted_output_that_panics_when_dropped,
                a_detached_output_that_panics_when_dropped,
                sleep_waits_at_least_its_duration,
                sleep_until_the_past_is_ready,
                endless_sleeps_neither_panic_nor_fire,
            );
        }
    };
    (@tests $harness:ty; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                <$harness>::run(crate::suite::$test);
            }
        )*
    };
}

#[cfg(feature = "smol")]
conformance!(smol_global, crate::common::SmolGlobal);
#[cfg(feature = "smol")]
conformance!(smol_own_executor, crate::common::SmolOwn);
#[cfg(feature = "tokio")]
conformance!(tokio, crate::common::Tokio);
#[cfg(feature = "async-std")]
conformance!(async_std, crate::common::AsyncStd);
#[cfg(any(feature = "smol", feature = "async-std"))]
conformance!(auto_outside_tokio, crate::common::AutoOutsideTokio);
#[cfg(feature = "tokio")]
conformance!(auto_in_tokio, crate::common::AutoInTokio);

/// `Auto` follows the executor it is called from.
#[cfg(feature = "tokio")]
mod auto_choice {
    use crate::common::{tokio_runtime, within};
    use portasync::rt::{Auto, Spawn, Timer, Tokio};
    use std::time::{Duration, Instant};

    #[test]
    fn spawns_on_tokio_inside_tokio() {
        let on_tokio = tokio_runtime().block_on(async {
            Auto.spawn(async { tokio::runtime::Handle::try_current().is_ok() })
                .await
                .unwrap()
        });
        assert!(on_tokio);
    }

    #[cfg(feature = "smol")]
    #[test]
    fn spawns_on_smol_outside_tokio() {
        let on_tokio = smol::block_on(async {
            within(Auto.spawn(async { tokio::runtime::Handle::try_current().is_ok() }))
                .await
                .unwrap()
        });
        assert!(!on_tokio);
    }

    fn paused_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    }

    /// An hour on tokio's paused clock passes at once: both `Auto` and `Tokio`
    /// read and sleep on tokio's clock, not the wall clock.
    #[test]
    fn paused_tokio_clock_governs_auto_and_tokio() {
        paused_runtime().block_on(async {
            let wall = Instant::now();
            let rt = Tokio::current();
            let start = Auto.now();
            Auto.sleep(Duration::from_secs(3600)).await;
            assert!(Auto.now() - start >= Duration::from_secs(3600));
            rt.sleep(Duration::from_secs(3600)).await;
            assert!(rt.now() - start >= Duration::from_secs(7200));
            rt.sleep_until(rt.now() + Duration::from_secs(60)).await;
            assert!(
                wall.elapsed() < Duration::from_secs(60),
                "slept on the wall clock"
            );
        });
    }

    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Whether `at` is within 30 s of the wall clock.
    fn near_wall(at: Instant) -> bool {
        let wall = Instant::now();
        at.max(wall) - at.min(wall) < Duration::from_secs(30)
    }

    /// How far `Auto`'s clock moves while an hour passes on a paused
    /// runtime's clock, read in its `block_on`.
    fn hour_on_a_paused_block_on() -> Duration {
        paused_runtime().block_on(async {
            let start = Auto.now();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Auto.now() - start
        })
    }

    /// `Auto` asks on every reading which runtime it is in, so a thread that
    /// moves between runtimes reads each one's clock: a multi-thread worker
    /// that runs a paused runtime's task, or its `block_on`, inside
    /// `block_in_place`, reads the paused clock there, and the real clock
    /// again in its own task.
    #[test]
    fn auto_asks_again_when_a_worker_runs_another_runtime() {
        one_worker().block_on(async {
            within(tokio::spawn(async {
                assert!(
                    near_wall(Auto.now()),
                    "a multi-thread runtime's time is real"
                );
                let passed = tokio::task::block_in_place(hour_on_a_paused_block_on);
                assert!(
                    passed >= Duration::from_secs(3600),
                    "in block_on: {passed:?}"
                );
                let passed = tokio::task::block_in_place(|| {
                    paused_runtime().block_on(async {
                        tokio::spawn(async {
                            let start = Auto.now();
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            Auto.now() - start
                        })
                        .await
                        .unwrap()
                    })
                });
                assert!(passed >= Duration::from_secs(3600), "in a task: {passed:?}");
                assert!(near_wall(Auto.now()), "back on the worker's own task");
            }))
            .await
            .unwrap();
        });
    }

    /// The same from a blocking task, and for a `RateLimiter` on `Auto`.
    #[test]
    fn auto_asks_again_in_a_blocking_task() {
        one_worker().block_on(async {
            let passed = within(tokio::task::spawn_blocking(|| {
                assert!(near_wall(Auto.now()));
                hour_on_a_paused_block_on()
            }))
            .await
            .unwrap();
            assert!(passed >= Duration::from_secs(3600), "{passed:?}");
            within(tokio::task::spawn_blocking(|| {
                let _ = Auto.now();
                paused_runtime().block_on(async {
                    let limiter = portasync::RateLimiter::new(portasync::Quota::per_hour(1));
                    limiter.check().unwrap();
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    assert!(
                        limiter.check().is_ok(),
                        "an hour passed on the paused clock"
                    );
                });
            }))
            .await
            .unwrap();
        });
    }

    /// A `LocalSet` driven by one runtime and then another: its task reads
    /// each one's clock in turn.
    #[test]
    fn a_local_set_on_two_runtimes_reads_each_clock() {
        let local = tokio::task::LocalSet::new();
        let (ask, mut asked) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (answer, mut answers) = tokio::sync::mpsc::unbounded_channel::<(Instant, Instant)>();
        local.spawn_local(async move {
            while asked.recv().await.is_some() {
                let tokio_now = tokio::time::Instant::now().into_std();
                let _ = answer.send((Auto.now(), tokio_now));
            }
        });
        let close = |(auto, tokio): (Instant, Instant)| {
            auto.max(tokio) - auto.min(tokio) < Duration::from_secs(30)
        };
        ask.send(()).unwrap();
        let read = local.block_on(&one_worker(), async { answers.recv().await.unwrap() });
        assert!(close(read), "{read:?}");
        let read = local.block_on(&paused_runtime(), async {
            tokio::time::advance(Duration::from_secs(3600)).await;
            ask.send(()).unwrap();
            answers.recv().await.unwrap()
        });
        assert!(close(read), "Auto against the paused clock: {read:?}");
    }

    /// In a task spawned on a paused runtime too, and a `RateLimiter` on
    /// `Auto` waits on that clock.
    #[test]
    fn paused_tokio_clock_governs_auto_in_a_task() {
        let rt = paused_runtime();
        let passed = rt.block_on(async {
            tokio::spawn(async {
                let start = Auto.now();
                Auto.sleep(Duration::from_secs(3600)).await;
                Auto.now() - start
            })
            .await
            .unwrap()
        });
        assert!(passed >= Duration::from_secs(3600), "{passed:?}");
        let limiter_waited = rt.block_on(async {
            tokio::spawn(async {
                let limiter = portasync::RateLimiter::new(portasync::Quota::per_hour(1));
                limiter.check().unwrap();
                let start = tokio::time::Instant::now();
                limiter.acquire().await;
                start.elapsed()
            })
            .await
            .unwrap()
        });
        assert!(
            limiter_waited >= Duration::from_secs(3599),
            "{limiter_waited:?}"
        );
    }

    #[test]
    fn auto_timer_works_with_no_runtime() {
        futures_lite::future::block_on(async {
            let start = Auto.now();
            within(portasync::sleep(Duration::from_millis(10))).await;
            assert!(Auto.now() - start >= Duration::from_millis(10));
        });
    }
}

/// smol specifics: a custom executor's tasks run only while it is driven.
/// The timers on the counter clock (smol's, async-std's, and `Auto`'s
/// outside tokio): a sleep until the clock's own `now()`, and an interval's
/// first tick, are ready on their first poll, every time. (async-io's
/// timer goes by `Instant::now()`, which the counter clock may lead by a
/// little; a third of such sleeps waited for a reactor round trip.)
#[cfg(any(feature = "smol", feature = "async-std"))]
mod counter_clock {
    use portasync::rt::{Auto, Timer};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    use std::time::Duration;

    /// Long enough for the counter clock to calibrate (two anchors at least
    /// 40 ms apart) and re-anchor a few times.
    fn due_now_is_ready<T: Timer>(timer: &T) {
        let cx = &mut Context::from_waker(Waker::noop());
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            let sleep = pin!(timer.sleep_until(timer.now()));
            assert!(sleep.poll(cx).is_ready());
            let mut every = portasync::interval_with(timer, Duration::from_secs(1));
            assert!(pin!(every.tick()).poll(cx).is_ready());
        }
    }

    /// After a sleep, the clock reads its deadline or later. (async-io's
    /// timer fires by `Instant::now()`, which the counter clock may trail
    /// by a little.)
    fn after_a_sleep_now_is_past_its_deadline<T: Timer>(timer: &T) {
        futures_lite::future::block_on(async {
            for step in 0..2_000u64 {
                let deadline = timer.now() + Duration::from_nanos(step * 37 % 20_000);
                timer.sleep_until(deadline).await;
                let now = timer.now();
                assert!(now >= deadline, "{:?} early", deadline - now);
            }
        });
    }

    #[test]
    fn auto() {
        due_now_is_ready(&Auto);
        after_a_sleep_now_is_past_its_deadline(&Auto);
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol() {
        due_now_is_ready(&portasync::rt::Smol::global());
        after_a_sleep_now_is_past_its_deadline(&portasync::rt::Smol::global());
    }

    #[cfg(feature = "async-std")]
    #[test]
    fn async_std() {
        due_now_is_ready(&portasync::rt::AsyncStd);
        after_a_sleep_now_is_past_its_deadline(&portasync::rt::AsyncStd);
    }
}

#[cfg(feature = "smol")]
mod smol_specific {
    use portasync::rt::{Smol, Spawn};
    use std::sync::Arc;

    #[test]
    fn custom_executor_runs_when_driven() {
        let executor = Arc::new(async_executor::Executor::new());
        let rt = Smol::new(executor.clone());
        let handle = rt.spawn(async { 3 });
        assert!(!handle.is_finished());
        assert_eq!(smol::block_on(executor.run(handle)).unwrap(), 3);
    }

    /// Dropping the executor drops its tasks; their handles report it.
    #[test]
    fn dropped_executor_cancels_its_tasks() {
        let executor = Arc::new(async_executor::Executor::new());
        let handle = Smol::new(executor.clone()).spawn(std::future::pending::<()>());
        drop(executor);
        assert!(smol::block_on(handle).unwrap_err().is_cancelled());
    }
}
