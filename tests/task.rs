//! Task groups on every runtime, and the in-place combinators.

mod common;

#[allow(dead_code)]
mod suite {
    use crate::common::{drop_probe, quiet_expected_panics, within};
    use futures_lite::FutureExt as _;
    use futures_lite::future;
    use portasync::rt::Runtime;
    use portasync::{JoinError, TaskGroup};
    use std::future::Future;
    use std::panic::AssertUnwindSafe;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::Duration;

    /// `n` gates: a child waits on its gate; the test opens them one by one.
    fn gates(
        n: usize,
    ) -> (
        Vec<async_channel::Sender<()>>,
        Vec<async_channel::Receiver<()>>,
    ) {
        (0..n).map(|_| async_channel::bounded(1)).unzip()
    }

    pub(crate) async fn join_next_yields_in_completion_order<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let (open, wait) = gates(3);
        for (i, gate) in wait.into_iter().enumerate() {
            group.spawn(async move {
                gate.recv().await.unwrap();
                i
            });
        }
        assert_eq!(group.len(), 3);
        for i in [2, 0, 1] {
            open[i].send(()).await.unwrap();
            assert_eq!(within(group.join_next()).await.unwrap().unwrap(), i);
        }
        assert!(within(group.join_next()).await.is_none());
        assert!(group.is_empty());
    }

    pub(crate) async fn join_returns_spawn_order<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let (open, wait) = gates(4);
        for (i, gate) in wait.into_iter().enumerate() {
            group.spawn(async move {
                gate.recv().await.unwrap();
                i * 10
            });
        }
        for gate in open.iter().rev() {
            gate.send(()).await.unwrap();
        }
        assert_eq!(within(group.join()).await, [0, 10, 20, 30]);
    }

    pub(crate) async fn try_join_fails_fast_and_waits_for_cancelled_siblings<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let (guard, dropped) = drop_probe();
        group.spawn(async move {
            let _guard = guard;
            future::pending::<Result<u32, String>>().await
        });
        // The error waits until the `Ok` sibling is in its last poll, so that
        // only the pending one can be cancelled (on a multi-threaded runtime
        // the error could otherwise come first and cancel both).
        let (ok_sent, ok_seen) = async_channel::bounded(1);
        group.spawn(async move {
            ok_sent.send(()).await.unwrap();
            Ok(1)
        });
        group.spawn(async move {
            ok_seen.recv().await.unwrap();
            Err("broken".to_owned())
        });
        let err = within(group.try_join()).await.unwrap_err();
        assert_eq!(err.errors(), ["broken".to_owned()]);
        assert_eq!(err.cancelled(), 1);
        assert!(
            dropped.now(),
            "try_join returned before the cancelled sibling was dropped"
        );
    }

    pub(crate) async fn try_join_collects_every_error_that_completed<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let handles: Vec<_> = (0..3)
            .map(|i| group.spawn(async move { Err::<(), _>(i) }))
            .collect();
        // All three have failed before anyone joins: all three are reported.
        within(async {
            while !handles.iter().all(|h| h.is_finished()) {
                future::yield_now().await;
            }
        })
        .await;
        let mut errors = within(group.try_join()).await.unwrap_err().into_errors();
        errors.sort();
        assert_eq!(errors, [0, 1, 2]);
    }

    pub(crate) async fn try_join_all_ok_in_spawn_order<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        for i in 0..5u32 {
            group.spawn(async move {
                future::yield_now().await;
                Ok::<_, ()>(i)
            });
        }
        assert_eq!(within(group.try_join()).await, Ok(vec![0, 1, 2, 3, 4]));
    }

    pub(crate) async fn a_child_panic_cancels_the_rest_then_reaches_the_joiner<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let mut group = TaskGroup::with_runtime(rt);
        let (guard, dropped) = drop_probe();
        group.spawn(async move {
            let _guard = guard;
            future::pending::<u32>().await
        });
        group.spawn(async { panic!("expected panic: child") });
        let result = within(AssertUnwindSafe(group.join()).catch_unwind()).await;
        let payload = result.unwrap_err();
        assert_eq!(
            *payload.downcast::<&str>().unwrap(),
            "expected panic: child"
        );
        assert!(
            dropped.now(),
            "the sibling was not cancelled before the panic was resumed"
        );
    }

    pub(crate) async fn dropping_the_group_cancels_every_task<R: Runtime>(rt: R) {
        let (guard, dropped) = drop_probe();
        let (started_tx, started) = async_channel::bounded(1);
        let mut group = TaskGroup::with_runtime(rt);
        group.spawn(async move {
            let _guard = guard;
            started_tx.send(()).await.unwrap();
            future::pending::<()>().await
        });
        within(started.recv()).await.unwrap();
        drop(group);
        within(dropped.wait()).await;
    }

    /// The group's token has a waiter whose waker panics: dropping the
    /// group still stops the running child and drops the queued one
    /// unstarted (the cancel came first, and its panic skipped the rest), then
    /// the panic goes on.
    pub(crate) async fn dropping_the_group_stops_every_child_past_a_waker_that_panics<
        R: Runtime,
    >(
        rt: R,
    ) {
        let (running_guard, running_dropped) = drop_probe();
        let (queued_guard, queued_dropped) = drop_probe();
        let (started_tx, started) = async_channel::bounded(1);
        let (ran_tx, ran) = async_channel::bounded(1);
        let mut group = TaskGroup::with_runtime(rt).max_concurrent(1);
        group.spawn(async move {
            let _guard = running_guard;
            started_tx.send(()).await.unwrap();
            future::pending::<()>().await
        });
        group.spawn(async move {
            let _guard = queued_guard;
            ran_tx.send(()).await.unwrap();
        });
        within(started.recv()).await.unwrap();
        let token = group.token();
        let (_, bad) = crate::common::panicking();
        let mut waiting = Box::pin(token.cancelled());
        assert!(crate::common::poll(&mut waiting, &bad).is_pending());
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(group)));
        assert!(dropped.is_err(), "the waker's panic goes on from the drop");
        assert!(token.is_cancelled());
        within(running_dropped.wait()).await;
        within(queued_dropped.wait()).await;
        assert!(
            ran.try_recv().is_err(),
            "a queued child started after the drop"
        );
    }

    /// The joiner waits with a waker that panics: the finishing child's
    /// report still starts the queued child (its start once came after the
    /// wake, which panicked), and `join_next` then gets both results.
    pub(crate) async fn a_queued_child_starts_past_a_joiner_waker_that_panics<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt).max_concurrent(1);
        let (open, mut wait) = gates(1);
        let gate = wait.remove(0);
        let (started_tx, started) = async_channel::bounded(1);
        group.spawn(async move {
            gate.recv().await.unwrap();
            1
        });
        group.spawn(async move {
            started_tx.send(()).await.unwrap();
            2
        });
        let (_, bad) = crate::common::panicking();
        {
            // Filed as the joiner's waker; dropping the future leaves it filed.
            let mut next = Box::pin(group.join_next());
            assert!(crate::common::poll(&mut next, &bad).is_pending());
        }
        open[0].send(()).await.unwrap();
        within(started.recv()).await.unwrap();
        let mut outputs = Vec::new();
        while let Some(result) = within(group.join_next()).await {
            outputs.push(result.unwrap());
        }
        outputs.sort_unstable();
        assert_eq!(outputs, [1, 2]);
    }

    /// Returns at once, but keeps what it holds until it is dropped (as a
    /// hand-written or combinator future may).
    struct ReadyHolding<T, G> {
        value: Option<T>,
        _held: G,
    }

    impl<T: Unpin, G: Unpin> Future for ReadyHolding<T, G> {
        type Output = T;

        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
            Poll::Ready(self.value.take().expect("polled after it returned"))
        }
    }

    /// Says when its drop begins, then holds it until `release` closes: a
    /// result that comes meanwhile came before the child's destructors.
    struct HeldInDrop {
        entered: async_channel::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    }

    impl Drop for HeldInDrop {
        fn drop(&mut self) {
            let _ = self.entered.try_send(());
            let _closed = self.release.recv();
        }
    }

    pub(crate) async fn a_result_comes_after_the_childs_destructors<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let (entered_tx, entered) = async_channel::bounded(1);
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        group.spawn(ReadyHolding {
            value: Some(Err::<(), _>("broken")),
            _held: HeldInDrop {
                entered: entered_tx,
                release: release_rx,
            },
        });
        let mut joined = Box::pin(group.try_join());
        // The child has returned and its future is being dropped, on a
        // runtime thread: the result must not be out yet.
        within(entered.recv()).await.unwrap();
        assert!(
            future::poll_once(&mut joined).await.is_none(),
            "try_join returned while the failed child's future was still being dropped"
        );
        drop(release);
        let err = within(joined).await.unwrap_err();
        assert_eq!(err.errors(), ["broken"]);
    }

    /// Panics when dropped.
    struct PanicsWhenDropped;

    impl Drop for PanicsWhenDropped {
        fn drop(&mut self) {
            panic!("expected panic: in a destructor");
        }
    }

    pub(crate) async fn a_panicking_destructor_is_the_childs_panic<R: Runtime>(rt: R) {
        quiet_expected_panics();
        let mut group = TaskGroup::with_runtime(rt);
        // Dropped after the child returned.
        group.spawn(ReadyHolding {
            value: Some(1),
            _held: PanicsWhenDropped,
        });
        let finished = within(group.join_next()).await.unwrap();
        assert!(finished.unwrap_err().is_panic());
        // Dropped when the child is aborted.
        let bomb = PanicsWhenDropped;
        let stuck = group.spawn(async move {
            let _bomb = bomb;
            future::pending::<i32>().await
        });
        stuck.abort();
        let aborted = within(group.join_next()).await.unwrap();
        assert!(aborted.unwrap_err().is_panic());
        assert!(stuck.is_finished());
    }

    /// Waits until `done` holds.
    async fn until(done: impl Fn() -> bool) {
        within(async {
            while !done() {
                future::yield_now().await;
            }
        })
        .await;
    }

    pub(crate) async fn raising_the_limit_starts_queued_children<R: Runtime>(rt: R) {
        let started = Arc::new(AtomicUsize::new(0));
        let mut group = TaskGroup::with_runtime(rt).max_concurrent(1);
        for _ in 0..3 {
            let started = started.clone();
            group.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                future::pending::<()>().await
            });
        }
        until(|| started.load(Ordering::SeqCst) == 1).await;
        // No child finishes and none is spawned: the new limit alone starts them.
        let mut group = group.max_concurrent(3);
        until(|| started.load(Ordering::SeqCst) == 3).await;
        within(group.shutdown()).await;
    }

    pub(crate) async fn dropping_the_group_drops_queued_children_unstarted<R: Runtime>(rt: R) {
        let started = Arc::new(AtomicUsize::new(0));
        let mut group = TaskGroup::with_runtime(rt).max_concurrent(1);
        let probes: Vec<_> = (0..20)
            .map(|_| {
                let (guard, dropped) = drop_probe();
                let started = started.clone();
                group.spawn(async move {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    future::pending::<()>().await
                });
                dropped
            })
            .collect();
        until(|| started.load(Ordering::SeqCst) == 1).await;
        drop(group);
        for probe in &probes {
            within(probe.wait()).await;
        }
        assert_eq!(started.load(Ordering::SeqCst), 1, "a queued child started");
    }

    pub(crate) async fn shutdown_waits_until_all_stopped<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let probes: Vec<_> = (0..3)
            .map(|_| {
                let (guard, dropped) = drop_probe();
                group.spawn(async move {
                    let _guard = guard;
                    future::pending::<()>().await
                });
                dropped
            })
            .collect();
        within(group.shutdown()).await;
        assert!(probes.iter().all(|p| p.now()));
        assert!(group.is_empty());
    }

    pub(crate) async fn max_concurrent_starts_queued_tasks_in_fifo_order<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt).max_concurrent(2);
        let started = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (open, wait) = gates(6);
        for (i, gate) in wait.into_iter().enumerate() {
            let (started, running, peak) = (started.clone(), running.clone(), peak.clone());
            group.spawn(async move {
                started.lock().unwrap().push(i);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.recv().await.unwrap();
                running.fetch_sub(1, Ordering::SeqCst);
                i
            });
        }
        let wait_started = |n: usize| {
            let started = started.clone();
            within(async move {
                while started.lock().unwrap().len() < n {
                    future::yield_now().await;
                }
            })
        };
        wait_started(2).await;
        // Finish them out of order: queued children still start in spawn order.
        // After k children finished, exactly min(2 + k, 6) have started.
        let mut finished = 0;
        for i in [1usize, 0, 2, 3, 4, 5] {
            open[i].send(()).await.unwrap();
            assert_eq!(within(group.join_next()).await.unwrap().unwrap(), i);
            finished += 1;
            wait_started((2 + finished).min(6)).await;
            assert_eq!(started.lock().unwrap().len(), (2 + finished).min(6));
        }
        // The first two start at once, on any worker thread, in either order;
        // the queued four start in spawn order.
        let mut started = started.lock().unwrap().clone();
        started[..2].sort_unstable();
        assert_eq!(started, [0, 1, 2, 3, 4, 5]);
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    pub(crate) async fn join_next_loses_nothing_in_a_select<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt.clone());
        for i in 0..20u32 {
            let rt = rt.clone();
            group.spawn(async move {
                rt.sleep(Duration::from_millis(u64::from(i % 5))).await;
                i
            });
        }
        let mut seen = Vec::new();
        within(async {
            while seen.len() < 20 {
                // The timer often wins: the result must then come next time.
                let next = future::or(async { Some(group.join_next().await) }, async {
                    future::yield_now().await;
                    None
                })
                .await;
                if let Some(Some(result)) = next {
                    seen.push(result.unwrap());
                }
            }
        })
        .await;
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }

    pub(crate) async fn aborting_one_child_leaves_the_others<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let (guard, dropped) = drop_probe();
        let stuck = group.spawn(async move {
            let _guard = guard;
            future::pending::<u32>().await
        });
        group.spawn(async { 7 });
        assert!(!stuck.is_finished());
        stuck.abort();
        let mut cancelled = 0;
        let mut values = Vec::new();
        while let Some(result) = within(group.join_next()).await {
            match result {
                Ok(value) => values.push(value),
                Err(JoinError::Cancelled) => cancelled += 1,
                Err(err) => panic!("unexpected {err}"),
            }
        }
        assert_eq!((values, cancelled), (vec![7], 1));
        assert!(stuck.is_finished() && dropped.now());
    }

    pub(crate) async fn aborting_a_queued_child_keeps_it_from_starting<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt).max_concurrent(1);
        let (open, wait) = gates(1);
        let gate = wait.into_iter().next().unwrap();
        group.spawn(async move {
            gate.recv().await.unwrap();
            "first"
        });
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let queued = group.spawn(async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "queued"
        });
        queued.abort();
        assert!(queued.is_finished());
        open[0].send(()).await.unwrap();
        let results: Vec<_> = within(async {
            let mut results = Vec::new();
            while let Some(result) = group.join_next().await {
                results.push(result.map_err(|e| e.is_cancelled()));
            }
            results
        })
        .await;
        assert!(results.contains(&Ok("first")) && results.contains(&Err(true)));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    pub(crate) async fn a_stale_abort_handle_leaves_a_later_child_alone<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let first = group.spawn(async { 1 });
        assert_eq!(within(group.join_next()).await.unwrap().unwrap(), 1);
        // The next child may take the place the first one left.
        let (open, wait) = gates(1);
        let gate = wait.into_iter().next().unwrap();
        let second = group.spawn(async move {
            gate.recv().await.unwrap();
            2
        });
        first.abort();
        assert!(first.is_finished());
        assert!(!second.is_finished());
        open[0].send(()).await.unwrap();
        assert_eq!(within(group.join_next()).await.unwrap().unwrap(), 2);
        assert!(second.is_finished());
    }

    pub(crate) async fn aborting_a_finished_child_keeps_its_output<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let child = group.spawn(async { 5 });
        within(async {
            while !child.is_finished() {
                future::yield_now().await;
            }
        })
        .await;
        child.abort();
        group.abort_all();
        assert_eq!(within(group.join_next()).await.unwrap().unwrap(), 5);
        assert!(within(group.join_next()).await.is_none());
    }

    pub(crate) async fn many_children_in_waves_keep_spawn_order<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        for i in 0..150u32 {
            group.spawn(async move {
                if i % 7 == 0 {
                    future::yield_now().await;
                }
                i
            });
        }
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen.push(within(group.join_next()).await.unwrap().unwrap());
        }
        // The second wave reuses what the first one left behind.
        for i in 150..300u32 {
            group.spawn(async move { i });
        }
        assert_eq!(group.len(), 200);
        let rest = within(group.join()).await;
        assert!(rest.windows(2).all(|pair| pair[0] < pair[1]), "{rest:?}");
        seen.extend(rest);
        seen.sort();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
    }

    /// Past its first 64 children a group on smol's global executor hands
    /// them to a launcher task when spawning from outside the executor:
    /// one aborted through its handle, the rest dropped with the group, each
    /// stops wherever it is (handed over, spawned, or waiting).
    pub(crate) async fn a_large_group_stops_children_by_handle_and_on_drop<R: Runtime>(rt: R) {
        const CHILDREN: usize = 300;
        let mut group = TaskGroup::with_runtime(rt);
        let (probes, handles): (Vec<_>, Vec<_>) = (0..CHILDREN)
            .map(|_| {
                let (guard, dropped) = drop_probe();
                let handle = group.spawn(async move {
                    let _guard = guard;
                    future::pending::<()>().await
                });
                (dropped, handle)
            })
            .unzip();
        let late = CHILDREN - 10;
        handles[late].abort();
        let first = within(group.join_next()).await.unwrap();
        assert!(first.unwrap_err().is_cancelled());
        within(probes[late].wait()).await;
        assert!(handles[late].is_finished());
        assert!(!handles[late - 1].is_finished(), "a neighbour stopped too");
        drop(group);
        for probe in &probes {
            within(probe.wait()).await;
        }
        until(|| handles.iter().all(|handle| handle.is_finished())).await;
    }

    pub(crate) async fn abort_all_stops_children_wherever_they_are<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let probes: Vec<_> = (0..200u32)
            .map(|i| {
                let (guard, dropped) = drop_probe();
                group.spawn(async move {
                    let _guard = guard;
                    for _ in 0..i % 5 {
                        future::yield_now().await;
                    }
                    if i % 2 == 0 {
                        // Never finishes on its own: only the abort stops it.
                        future::pending::<()>().await;
                    }
                    i
                });
                dropped
            })
            .collect();
        future::yield_now().await;
        group.abort_all();
        let (mut finished, mut cancelled) = (0, 0);
        while let Some(result) = within(group.join_next()).await {
            match result {
                Ok(i) => {
                    assert_eq!(i % 2, 1, "child {i} should never have finished");
                    finished += 1;
                }
                Err(err) => {
                    assert!(err.is_cancelled(), "{err}");
                    cancelled += 1;
                }
            }
        }
        assert_eq!(finished + cancelled, 200);
        assert!(cancelled >= 100);
        assert!(probes.iter().all(|probe| probe.now()));
    }

    pub(crate) async fn graceful_shutdown_on_real_time<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let token = group.token();
        group.spawn(async move {
            token.cancelled().await;
            1
        });
        group.spawn(future::pending::<u32>());
        let report = within(group.shutdown_graceful(Duration::from_millis(20))).await;
        let finished: Vec<_> = report
            .finished()
            .iter()
            .map(|r| *r.as_ref().unwrap())
            .collect();
        assert_eq!((finished, report.aborted()), (vec![1], 1));
    }

    /// A graceful shutdown dropped part-way (it lost a race) gives back the
    /// results it had taken: `join_next` returns them.
    pub(crate) async fn a_dropped_graceful_shutdown_loses_no_result<R: Runtime>(rt: R) {
        let mut group = TaskGroup::with_runtime(rt);
        let (done, finished) = drop_probe();
        group.spawn(async move {
            drop(done);
            7u32
        });
        group.spawn(future::pending::<u32>());
        within(finished.wait()).await;
        {
            let mut stopping = group.shutdown_graceful(Duration::from_secs(3600));
            // Polled until it has taken the finished child's result (its
            // debug output counts them); the other child never finishes.
            within(async {
                loop {
                    assert!(future::poll_once(&mut stopping).await.is_none());
                    if format!("{stopping:?}").contains("taken: 1") {
                        break;
                    }
                    future::yield_now().await;
                }
            })
            .await;
        }
        assert_eq!(group.len(), 2, "the taken result is counted again");
        group.abort_all();
        let mut outputs = Vec::new();
        while let Some(result) = within(group.join_next()).await {
            outputs.push(result.map_err(|e| e.is_cancelled()));
        }
        outputs.sort_unstable();
        assert_eq!(outputs, [Ok(7), Err(true)]);
    }
}

#[cfg_attr(
    not(any(feature = "smol", feature = "tokio", feature = "async-std")),
    allow(unused_macros)
)]
macro_rules! task_suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use crate::common::Harness;
            task_suite!(@tests $harness;
                join_next_yields_in_completion_order,
                join_returns_spawn_order,
                try_join_fails_fast_and_waits_for_cancelled_siblings,
                try_join_collects_every_error_that_completed,
                try_join_all_ok_in_spawn_order,
                a_child_panic_cancels_the_rest_then_reaches_the_joiner,
                dropping_the_group_cancels_every_task,
                a_result_comes_after_the_childs_destructors,
                a_panicking_destructor_is_the_childs_panic,
                raising_the_limit_starts_queued_children,
                dropping_the_group_drops_queued_children_unstarted,
                shutdown_waits_until_all_stopped,
                max_concurrent_starts_queued_tasks_in_fifo_order,
                join_next_loses_nothing_in_a_select,
                aborting_one_child_leaves_the_others,
                aborting_a_queued_child_keeps_it_from_starting,
                a_stale_abort_handle_leaves_a_later_child_alone,
                aborting_a_finished_child_keeps_its_output,
                many_children_in_waves_keep_spawn_order,
                abort_all_stops_children_wherever_they_are,
                a_large_group_stops_children_by_handle_and_on_drop,
                graceful_shutdown_on_real_time,
                a_dropped_graceful_shutdown_loses_no_result,
                dropping_the_group_stops_every_child_past_a_waker_that_panics,
                a_queued_child_starts_past_a_joiner_waker_that_panics,
            );
        }
    };
    (@tests $harness:ty; $($test:ident),* $(,)?) => {
        $( #[test] fn $test() { <$harness>::run(crate::suite::$test); } )*
    };
}

#[cfg(feature = "smol")]
task_suite!(smol, crate::common::SmolGlobal);
#[cfg(feature = "smol")]
task_suite!(smol_own_executor, crate::common::SmolOwn);
#[cfg(feature = "tokio")]
task_suite!(tokio, crate::common::Tokio);
#[cfg(feature = "async-std")]
task_suite!(async_std, crate::common::AsyncStd);
#[cfg(any(feature = "smol", feature = "async-std"))]
task_suite!(auto_outside_tokio, crate::common::AutoOutsideTokio);
#[cfg(feature = "tokio")]
task_suite!(auto_in_tokio, crate::common::AutoInTokio);

/// A `GroupError`'s message ends with the first error's, so its chain of
/// causes goes on from that error's own source: each message once.
#[cfg(feature = "smol")]
#[test]
fn group_error_chain_repeats_no_message() {
    use common::{Cause, WithCause, chain};
    let err = futures_lite::future::block_on(async {
        let mut group = portasync::TaskGroup::with_runtime(portasync::rt::Smol::global());
        group.spawn(async { Err::<(), _>(WithCause("could not save", Cause("disk full"))) });
        group.try_join().await.unwrap_err()
    });
    assert_eq!(
        chain(&err),
        ["1 task failed, 0 cancelled: could not save", "disk full"]
    );
}

/// The grace period, on a virtual clock: nothing is aborted a moment early.
#[cfg(all(feature = "test-util", feature = "smol"))]
mod graceful_on_manual_clock {
    use crate::common::{ManualTime, drop_probe, within};
    use futures_lite::future::{self, block_on, poll_once};
    use portasync::TaskGroup;
    use portasync::rt::{ManualClock, Smol};
    use std::time::Duration;

    #[test]
    fn aborts_exactly_when_the_grace_period_ends() {
        let clock = ManualClock::new();
        let rt = ManualTime {
            spawner: Smol::global(),
            clock: clock.clone(),
        };
        block_on(async {
            let mut group = TaskGroup::with_runtime(rt);
            let token = group.token();
            let (listener_done_tx, listener_done) = async_channel::bounded(1);
            group.spawn(async move {
                token.cancelled().await;
                listener_done_tx.send(()).await.unwrap();
                "listened"
            });
            let (guard, dropped) = drop_probe();
            group.spawn(async move {
                let _guard = guard;
                future::pending::<&str>().await
            });
            let mut shutdown = Box::pin(group.shutdown_graceful(Duration::from_secs(10)));
            assert!(poll_once(&mut shutdown).await.is_none());
            within(listener_done.recv()).await.unwrap();
            clock.advance(Duration::from_secs(10) - Duration::from_millis(1));
            assert!(poll_once(&mut shutdown).await.is_none());
            assert!(!dropped.now(), "aborted before the grace period ended");
            clock.advance(Duration::from_millis(1));
            let report = within(shutdown).await;
            assert_eq!(report.aborted(), 1);
            assert_eq!(report.finished().len(), 1);
            assert!(dropped.now());
        });
    }
}

/// A child aborted through its handle before a graceful shutdown, with that
/// cancellation not yet joined, is counted among the aborted.
#[cfg(all(feature = "test-util", feature = "smol"))]
#[test]
fn a_child_aborted_by_its_handle_counts_as_aborted() {
    use crate::common::{ManualTime, within};
    use futures_lite::future;
    let rt = ManualTime {
        spawner: portasync::rt::Smol::global(),
        clock: portasync::rt::ManualClock::new(),
    };
    future::block_on(async {
        let mut group = portasync::TaskGroup::with_runtime(rt);
        let handle = group.spawn(future::pending::<()>());
        handle.abort();
        within(async {
            while !handle.is_finished() {
                future::yield_now().await;
            }
        })
        .await;
        let grace = std::time::Duration::from_secs(10);
        let report = within(group.shutdown_graceful(grace)).await;
        assert_eq!(report.aborted(), 1);
        assert!(report.finished().is_empty());
    });
}

/// Only tokio's runtimes shut down under a living group: what is spawned
/// on one that has is dropped at once, inside the spawn.
#[cfg(feature = "tokio")]
mod runtime_shutdown {
    use crate::common::tokio_runtime;
    use futures_lite::future::{self, block_on};
    use portasync::TaskGroup;
    use portasync::rt::Tokio;

    /// Each queued child is then started and dropped in turn: one after
    /// another, not each from inside the last one's report (that recursion
    /// overflowed the stack at about a thousand queued children).
    #[test]
    fn a_long_queue_is_cancelled_child_by_child() {
        const CHILDREN: usize = 20_000;
        let runtime = tokio_runtime();
        let mut group =
            TaskGroup::with_runtime(Tokio::from_handle(runtime.handle().clone())).max_concurrent(1);
        for _ in 0..CHILDREN {
            group.spawn(future::pending::<()>());
        }
        drop(runtime);
        let mut cancelled = 0;
        while let Some(result) = block_on(group.join_next()) {
            assert!(result.unwrap_err().is_cancelled());
            cancelled += 1;
        }
        assert_eq!(cancelled, CHILDREN);
    }
}

/// The in-place combinators: no runtime involved.
mod combinators {
    use crate::common::drop_probe;
    use futures_lite::future::block_on;
    use portasync::{join_all, race, try_join_all};
    use std::future::{Future, pending, ready};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    #[test]
    fn join_all_keeps_input_order() {
        let futures = (0..100u32).map(|i| async move {
            if i % 3 == 0 {
                futures_lite::future::yield_now().await;
            }
            i
        });
        assert_eq!(block_on(join_all(futures)), (0..100).collect::<Vec<_>>());
        assert!(block_on(join_all(Vec::<std::future::Ready<u8>>::new())).is_empty());
    }

    #[test]
    fn try_join_all_drops_the_rest_on_the_first_error() {
        let (guard, dropped) = drop_probe();
        let slow: Pin<Box<dyn Future<Output = Result<u8, &str>>>> = Box::pin(async move {
            let _guard = guard;
            pending().await
        });
        let failing: Pin<Box<dyn Future<Output = Result<u8, &str>>>> = Box::pin(ready(Err("bad")));
        assert_eq!(block_on(try_join_all(vec![slow, failing])), Err("bad"));
        assert!(dropped.now());
    }

    #[test]
    fn race_returns_the_first_and_drops_the_rest() {
        let (guard, dropped) = drop_probe();
        let slow: Pin<Box<dyn Future<Output = &str>>> = Box::pin(async move {
            let _guard = guard;
            pending().await
        });
        let fast: Pin<Box<dyn Future<Output = &str>>> = Box::pin(async {
            futures_lite::future::yield_now().await;
            "fast"
        });
        assert_eq!(block_on(race(vec![slow, fast])), (1, "fast"));
        assert!(dropped.now());
    }

    #[test]
    #[should_panic(expected = "`futures` is empty")]
    fn race_of_nothing_panics() {
        drop(race(Vec::<std::future::Ready<u8>>::new()));
    }

    /// Pending until its flag is set; counts its polls; wakes by its waker.
    struct Gate {
        open: Arc<AtomicUsize>,
        index: usize,
        polls: Arc<AtomicUsize>,
        waker: Arc<std::sync::Mutex<Vec<Option<Waker>>>>,
    }

    impl Future for Gate {
        type Output = usize;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.open.load(Ordering::SeqCst) > self.index {
                Poll::Ready(self.index)
            } else {
                self.waker.lock().unwrap()[self.index] = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// 1,000 pending futures woken one at a time: each wake polls only the
    /// future that woke (about 3 polls each), not all of them (n^2).
    #[test]
    fn wakes_are_precise_for_large_sets() {
        const N: usize = 1_000;
        let open = Arc::new(AtomicUsize::new(0));
        let polls = Arc::new(AtomicUsize::new(0));
        let wakers = Arc::new(std::sync::Mutex::new(vec![None; N]));
        let futures: Vec<_> = (0..N)
            .map(|index| Gate {
                open: open.clone(),
                index,
                polls: polls.clone(),
                waker: wakers.clone(),
            })
            .collect();
        let mut all = Box::pin(join_all(futures));
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(all.as_mut().poll(&mut cx).is_pending());
        assert!(all.as_mut().poll(&mut cx).is_pending()); // now each has its own waker
        for i in 0..N {
            open.store(i + 1, Ordering::SeqCst);
            let waker = wakers.lock().unwrap()[i].take().expect("registered");
            waker.wake();
            let done = all.as_mut().poll(&mut cx);
            assert_eq!(done.is_ready(), i + 1 == N);
        }
        let total = polls.load(Ordering::SeqCst);
        assert!(total <= 4 * N, "{total} polls for {N} futures");
    }
}
