//! Timeouts, deadlines and intervals.
//!
//! Every timing rule is checked on `ManualClock`, poll by poll. Real time is
//! used only to check that real timers fire on each runtime (`suite`), with
//! exact lower bounds and generous upper ones.

mod common;

#[cfg(feature = "test-util")]
mod manual {
    use futures_lite::future::block_on;
    use portasync::prelude::*;
    use portasync::rt::{ManualClock, Timer};
    use portasync::{Deadline, Elapsed, interval_with, timeout_with};
    use std::future::{Future, pending, ready};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    use crate::common::{counter, poll};

    /// A future that is pending until `value` is set, and counts its drops.
    struct Slot<T> {
        value: Arc<Mutex<Option<T>>>,
        drops: Arc<AtomicUsize>,
    }

    impl<T> Future for Slot<T> {
        type Output = T;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
            match self.value.lock().unwrap().take() {
                Some(value) => Poll::Ready(value),
                None => {
                    cx.waker().wake_by_ref(); // never waits on a waker: the tests poll by hand
                    Poll::Pending
                }
            }
        }
    }

    impl<T> Drop for Slot<T> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[allow(clippy::type_complexity)]
    fn slot<T>() -> (Slot<T>, Arc<Mutex<Option<T>>>, Arc<AtomicUsize>) {
        let value = Arc::new(Mutex::new(None));
        let drops = Arc::new(AtomicUsize::new(0));
        (
            Slot {
                value: value.clone(),
                drops: drops.clone(),
            },
            value,
            drops,
        )
    }

    #[test]
    fn a_ready_result_is_never_thrown_away() {
        let clock = ManualClock::new();
        let (inner, value, _) = slot();
        let mut guarded = Box::pin(timeout_with(&clock, SEC, inner));
        assert!(poll(&mut guarded, Waker::noop()).is_pending());
        *value.lock().unwrap() = Some(5);
        clock.advance(2 * SEC); // the deadline passed, but the value is ready
        assert_eq!(poll(&mut guarded, Waker::noop()), Poll::Ready(Ok(5)));
    }

    #[test]
    fn no_timer_for_a_future_ready_at_once() {
        let clock = ManualClock::new();
        let mut guarded = Box::pin(timeout_with(&clock, SEC, ready(1)));
        assert_eq!(poll(&mut guarded, Waker::noop()), Poll::Ready(Ok(1)));
        assert_eq!(clock.sleepers(), 0);

        let mut pending_once = Box::pin(timeout_with(&clock, SEC, pending::<()>()));
        assert!(poll(&mut pending_once, Waker::noop()).is_pending());
        assert_eq!(
            clock.sleepers(),
            1,
            "a pending future arms exactly one timer"
        );
        assert!(poll(&mut pending_once, Waker::noop()).is_pending());
        assert_eq!(clock.sleepers(), 1);
    }

    #[test]
    fn zero_fails_a_pending_future_on_first_poll() {
        let clock = ManualClock::new();
        let mut guarded = Box::pin(timeout_with(&clock, Duration::ZERO, pending::<()>()));
        assert_eq!(
            poll(&mut guarded, Waker::noop()),
            Poll::Ready(Err(elapsed()))
        );
        assert_eq!(clock.sleepers(), 0);
    }

    fn elapsed() -> Elapsed {
        block_on(portasync::timeout(Duration::ZERO, pending::<()>())).unwrap_err()
    }

    #[test]
    fn endless_durations_never_fire_and_never_panic() {
        let clock = ManualClock::new();
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        for duration in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_secs(u64::MAX / 2),
        ] {
            let mut guarded = Box::pin(timeout_with(&clock, duration, pending::<()>()));
            assert!(guarded.deadline().is_none());
            assert!(poll(&mut guarded, Waker::noop()).is_pending());
            clock.advance(century);
            assert!(poll(&mut guarded, Waker::noop()).is_pending());
        }
        assert_eq!(
            clock.sleepers(),
            0,
            "no timer for a deadline that never comes"
        );

        // A far but representable deadline is kept, and does not fire early.
        let far = clock.now() + century;
        let mut guarded = Box::pin(portasync::timeout_at(far, pending::<()>()));
        assert_eq!(guarded.deadline(), Some(far));
        assert!(poll(&mut guarded, Waker::noop()).is_pending());
    }

    #[test]
    fn the_deadline_is_fixed_when_timeout_is_called() {
        let clock = ManualClock::new();
        let mut guarded = Box::pin(timeout_with(&clock, 10 * SEC, pending::<()>()));
        clock.advance(6 * SEC); // before the first poll
        assert!(poll(&mut guarded, Waker::noop()).is_pending());
        clock.advance(4 * SEC);
        assert!(poll(&mut guarded, Waker::noop()).is_ready());
    }

    #[test]
    fn fires_at_the_deadline_and_not_before() {
        let clock = ManualClock::new();
        let (woken, waker) = counter();
        let mut guarded = Box::pin(timeout_with(&clock, SEC, pending::<()>()));
        assert!(poll(&mut guarded, &waker).is_pending());
        clock.advance(SEC - MS);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        assert!(poll(&mut guarded, &waker).is_pending());
        clock.advance(MS);
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the deadline woke the task once"
        );
        assert!(poll(&mut guarded, &waker).is_ready());
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn dropping_a_timeout_drops_the_inner_future_once_and_its_timer() {
        let clock = ManualClock::new();
        let (inner, _, drops) = slot::<()>();
        let mut guarded = Box::pin(timeout_with(&clock, SEC, inner));
        assert!(poll(&mut guarded, Waker::noop()).is_pending());
        assert_eq!(clock.sleepers(), 1);
        drop(guarded);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn extension_methods() {
        let mut guarded = Box::pin(pending::<()>().timeout_at(Instant::now()));
        assert!(poll(&mut guarded, Waker::noop()).is_ready());
        assert_eq!(block_on(async { 3 }.timeout(SEC)), Ok(3));
    }

    /// A future polled with a new waker wakes that one, not the first, when
    /// its time comes.
    #[test]
    fn the_latest_waker_is_woken() {
        let clock = ManualClock::new();
        let (first_woken, first) = counter();
        let (latest_woken, latest) = counter();
        let woken = || {
            (
                first_woken.0.load(Ordering::SeqCst),
                latest_woken.0.load(Ordering::SeqCst),
            )
        };

        let mut guarded = Box::pin(timeout_with(&clock, SEC, pending::<()>()));
        assert!(poll(&mut guarded, &first).is_pending());
        assert!(poll(&mut guarded, &latest).is_pending());
        clock.advance(SEC);
        assert_eq!(woken(), (0, 1), "timeout");

        let deadline = deadline_in(&clock, SEC);
        let mut run = Box::pin(deadline.run(pending::<()>()));
        assert!(poll(&mut run, &first).is_pending());
        assert!(poll(&mut run, &latest).is_pending());
        clock.advance(SEC);
        assert_eq!(woken(), (0, 2), "deadline");

        let mut ticks = interval_with(&clock, SEC);
        block_on(ticks.tick());
        let mut next = Box::pin(ticks.tick());
        assert!(poll(&mut next, &first).is_pending());
        assert!(poll(&mut next, &latest).is_pending());
        clock.advance(SEC);
        assert_eq!(woken(), (0, 3), "interval");
    }

    #[test]
    fn elapsed_is_an_io_timeout() {
        let err = elapsed();
        assert_eq!(err, err.clone());
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(io.to_string(), "deadline has elapsed");
    }

    // Deadline

    fn deadline_in(clock: &ManualClock, after: Duration) -> Deadline<ManualClock> {
        Deadline::with_timer(clock.clone(), Some(clock.now() + after))
    }

    #[test]
    fn deadline_moved_later_while_running() {
        let clock = ManualClock::new();
        let deadline = deadline_in(&clock, 10 * SEC);
        let mut run = Box::pin(deadline.run(pending::<()>()));
        assert!(poll(&mut run, Waker::noop()).is_pending());
        deadline.reschedule(Some(clock.now() + 20 * SEC));
        clock.advance(15 * SEC);
        assert!(
            poll(&mut run, Waker::noop()).is_pending(),
            "fired at the old deadline"
        );
        assert!(!deadline.expired());
        clock.advance(5 * SEC);
        assert!(deadline.expired());
        assert!(poll(&mut run, Waker::noop()).is_ready());
    }

    #[test]
    fn deadline_moved_earlier_wakes_the_run() {
        let clock = ManualClock::new();
        let deadline = deadline_in(&clock, 60 * SEC);
        let (woken, waker) = counter();
        let mut run = Box::pin(deadline.run(pending::<()>()));
        assert!(poll(&mut run, &waker).is_pending());
        deadline.reschedule(Some(clock.now()));
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the reschedule woke the run"
        );
        assert!(poll(&mut run, &waker).is_ready());
    }

    /// A run whose waker panics leaves no other run of a rescheduled
    /// deadline unwoken (which would never see its time pass). The runs are
    /// kept in no fixed order, so the case is tried with many deadlines,
    /// each ordering its runs afresh.
    #[test]
    fn a_reschedule_wakes_every_run_past_a_waker_that_panics() {
        for _ in 0..20 {
            let clock = ManualClock::new();
            let deadline = deadline_in(&clock, 60 * SEC);
            let (bad_wakes, bad) = crate::common::panicking();
            let mut failing = Box::pin(deadline.run(pending::<()>()));
            assert!(poll(&mut failing, &bad).is_pending());
            let mut others: Vec<_> = (0..8)
                .map(|_| (Box::pin(deadline.run(pending::<()>())), counter()))
                .collect();
            for (run, (_, waker)) in &mut others {
                assert!(poll(run, waker).is_pending());
            }
            let moved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                deadline.reschedule(Some(clock.now()))
            }));
            assert!(moved.is_err(), "the waker's panic goes on to the caller");
            assert_eq!(bad_wakes.0.load(Ordering::SeqCst), 1);
            for (run, (woken, waker)) in &mut others {
                assert_eq!(woken.0.load(Ordering::SeqCst), 1);
                assert_eq!(poll(run, waker), Poll::Ready(Err(elapsed())));
            }
        }
    }

    /// `advance` wakes every sleep that came due, also past one whose waker
    /// panics.
    #[test]
    fn advance_wakes_every_due_sleep_past_a_waker_that_panics() {
        let clock = ManualClock::new();
        let (bad_wakes, bad) = crate::common::panicking();
        let (woken, waker) = counter();
        let mut first = Box::pin(clock.sleep(SEC));
        let mut second = Box::pin(clock.sleep(2 * SEC));
        assert!(poll(&mut first, &bad).is_pending());
        assert!(poll(&mut second, &waker).is_pending());
        let advanced =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| clock.advance(3 * SEC)));
        assert!(advanced.is_err(), "the waker's panic goes on to the caller");
        assert_eq!(bad_wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut second, &waker).is_ready());
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn deadline_removed_never_fires() {
        let clock = ManualClock::new();
        let deadline = deadline_in(&clock, SEC);
        let mut run = Box::pin(deadline.run(pending::<()>()));
        assert!(poll(&mut run, Waker::noop()).is_pending());
        deadline.reschedule(None);
        assert!(poll(&mut run, Waker::noop()).is_pending());
        assert_eq!(clock.sleepers(), 0, "the old timer was dropped");
        clock.advance(3600 * SEC);
        assert!(poll(&mut run, Waker::noop()).is_pending());
        assert_eq!(deadline.when(), None);
    }

    #[test]
    fn clones_share_one_deadline() {
        let clock = ManualClock::new();
        let deadline = deadline_in(&clock, SEC);
        let other = deadline.clone();
        let mut a = Box::pin(deadline.run(pending::<()>()));
        let mut b = Box::pin(other.run(pending::<()>()));
        assert!(poll(&mut a, Waker::noop()).is_pending());
        assert!(poll(&mut b, Waker::noop()).is_pending());
        other.reschedule(Some(clock.now() + 2 * SEC));
        assert_eq!(deadline.when(), Some(clock.now() + 2 * SEC));
        clock.advance(2 * SEC);
        assert!(poll(&mut a, Waker::noop()).is_ready());
        assert!(poll(&mut b, Waker::noop()).is_ready());
    }

    #[test]
    fn dropping_a_run_leaves_nothing_behind() {
        let clock = ManualClock::new();
        let deadline = deadline_in(&clock, SEC);
        let (inner, _, drops) = slot::<()>();
        let mut run = Box::pin(deadline.run(inner));
        assert!(poll(&mut run, Waker::noop()).is_pending());
        assert_eq!(clock.sleepers(), 1);
        drop(run);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(clock.sleepers(), 0);
        // A reschedule after the drop has nobody to wake and nothing to fail.
        deadline.reschedule(Some(clock.now()));
    }

    #[test]
    fn reschedule_from_another_thread_reaches_a_blocked_run() {
        let clock = ManualClock::new();
        let deadline = deadline_in(&clock, 3600 * SEC);
        let runner = {
            let deadline = deadline.clone();
            std::thread::spawn(move || block_on(deadline.run(pending::<()>())))
        };
        while clock.sleepers() == 0 {
            std::thread::yield_now();
        }
        deadline.reschedule(Some(clock.now() + SEC));
        clock.advance(SEC);
        assert!(runner.join().unwrap().is_err());
    }

    #[test]
    fn deadline_constructors() {
        assert!(Deadline::never().when().is_none());
        assert!(Deadline::after(Duration::MAX).when().is_none());
        assert!(Deadline::after(Duration::ZERO).expired());
        let at = Instant::now() + SEC;
        assert_eq!(Deadline::at(at).when(), Some(at));
        assert_eq!(block_on(Deadline::never().run(async { 4 })), Ok(4));
    }

    // interval

    #[test]
    fn interval_ticks_on_schedule_and_skips_missed_ticks() {
        let clock = ManualClock::new();
        let start = clock.now();
        let period = 10 * MS;
        let mut ticks = interval_with(&clock, period);
        assert_eq!(block_on(ticks.tick()), start, "the first tick is immediate");

        let mut next = Box::pin(ticks.tick());
        assert!(poll(&mut next, Waker::noop()).is_pending());
        clock.advance(period - MS);
        assert!(poll(&mut next, Waker::noop()).is_pending());
        clock.advance(MS);
        assert_eq!(poll(&mut next, Waker::noop()), Poll::Ready(start + period));
        drop(next);

        // A consumer 3.5 periods late gets the missed tick once, at once,
        // then the schedule resumes at start + 5 periods (no burst).
        clock.advance(period * 7 / 2);
        assert_eq!(block_on(ticks.tick()), start + 2 * period);
        let mut next = Box::pin(ticks.tick());
        assert!(poll(&mut next, Waker::noop()).is_pending());
        clock.advance(period / 2);
        assert_eq!(
            poll(&mut next, Waker::noop()),
            Poll::Ready(start + 5 * period)
        );
    }

    #[test]
    fn a_dropped_tick_loses_nothing() {
        let clock = ManualClock::new();
        let start = clock.now();
        let mut ticks = interval_with(&clock, SEC);
        block_on(ticks.tick());
        let mut next = Box::pin(ticks.tick());
        assert!(poll(&mut next, Waker::noop()).is_pending());
        drop(next);
        clock.advance(SEC);
        assert_eq!(block_on(ticks.tick()), start + SEC);
    }

    #[test]
    fn interval_is_a_stream() {
        use futures_lite::StreamExt;
        let clock = ManualClock::new();
        let start = clock.now();
        let mut ticks = interval_with(&clock, SEC);
        assert_eq!(block_on(ticks.next()), Some(start));
        clock.advance(SEC);
        assert_eq!(block_on(ticks.next()), Some(start + SEC));
    }

    #[test]
    #[should_panic(expected = "`period` must be non-zero")]
    fn zero_period_panics() {
        let _ = interval_with(&ManualClock::new(), Duration::ZERO);
    }

    #[test]
    fn endless_period_ticks_once() {
        let clock = ManualClock::new();
        let mut ticks = interval_with(&clock, Duration::MAX);
        block_on(ticks.tick());
        let mut next = Box::pin(ticks.tick());
        clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
        assert!(poll(&mut next, Waker::noop()).is_pending());
    }
}

/// Real timers really fire, on every runtime.
#[allow(dead_code)]
mod suite {
    use crate::common::within;
    use portasync::rt::Runtime;
    use portasync::{CancelToken, Deadline, interval_with, timeout, timeout_with};
    use std::future::pending;
    use std::time::{Duration, Instant};

    const MS: Duration = Duration::from_millis(1);

    pub(crate) async fn timeout_fires<R: Runtime>(rt: R) {
        let wall = Instant::now();
        let start = rt.now();
        assert!(
            within(timeout_with(&rt, 30 * MS, pending::<()>()))
                .await
                .is_err()
        );
        assert!(rt.now() - start >= 30 * MS);
        assert!(wall.elapsed() >= 30 * MS);
        // Through `Auto` as well.
        let wall = Instant::now();
        assert!(within(timeout(20 * MS, pending::<()>())).await.is_err());
        assert!(wall.elapsed() >= 20 * MS);
    }

    pub(crate) async fn timeout_passes_the_value<R: Runtime>(rt: R) {
        let sleeper = rt.clone();
        let work = async move {
            sleeper.sleep(5 * MS).await;
            9
        };
        assert_eq!(
            within(timeout_with(&rt, Duration::from_secs(30), work)).await,
            Ok(9)
        );
    }

    pub(crate) async fn deadline_moved_from_another_task<R: Runtime>(rt: R) {
        let deadline = Deadline::with_timer(rt.clone(), Some(rt.now() + Duration::from_secs(3600)));
        let run = {
            let deadline = deadline.clone();
            rt.spawn(async move { deadline.run(pending::<()>()).await })
        };
        rt.sleep(5 * MS).await;
        let wall = Instant::now();
        deadline.reschedule(Some(rt.now() + 20 * MS));
        assert!(within(run).await.unwrap().is_err());
        assert!(wall.elapsed() >= 15 * MS, "fired before the new deadline");
    }

    pub(crate) async fn interval_ticks<R: Runtime>(rt: R) {
        let wall = Instant::now();
        let mut ticks = interval_with(&rt, 10 * MS);
        // Due at once: ready on its first poll, with no timer armed.
        let first = futures_lite::future::poll_once(ticks.tick())
            .await
            .expect("the first tick is immediate");
        within(ticks.tick()).await;
        let third = within(ticks.tick()).await;
        // On the schedule, two periods on at least: more if this machine
        // was too busy to take the second tick in time, since a late
        // consumer skips missed ticks (that rule is tested exactly on
        // `ManualClock`). Asserting exactly two periods failed once in CI.
        let apart = third - first;
        assert!(apart >= 20 * MS, "{apart:?}");
        assert_eq!(apart.as_nanos() % (10 * MS).as_nanos(), 0, "{apart:?}");
        assert!(wall.elapsed() >= 20 * MS);
    }

    /// The last instant the clock can hold, found by steps that halve once
    /// they no longer fit.
    fn end_of_clock(from: Instant) -> Instant {
        let mut end = from;
        let mut step = Duration::from_secs(u64::MAX);
        while !step.is_zero() {
            match end.checked_add(step) {
                Some(later) => end = later,
                None => step /= 2,
            }
        }
        end
    }

    /// Deadlines in the clock's last millisecond (where tokio's rounding up
    /// to a millisecond used to overflow) wait, and panic nowhere.
    pub(crate) async fn deadlines_at_the_end_of_the_clock_wait<R: Runtime>(rt: R) {
        use futures_lite::future::poll_once;
        use std::pin::pin;

        let now = rt.now();
        let end = end_of_clock(now);
        let almost = end - now - Duration::from_micros(500);
        assert!(poll_once(pin!(rt.sleep_until(end))).await.is_none());
        assert!(poll_once(pin!(rt.sleep(almost))).await.is_none());
        assert!(poll_once(pin!(rt.sleep(Duration::MAX))).await.is_none());
        let guarded = pin!(timeout_with(&rt, almost, pending::<()>()));
        assert!(poll_once(guarded).await.is_none());
        assert!(
            poll_once(pin!(portasync::timeout_at(end, pending::<()>())))
                .await
                .is_none()
        );
        let deadline = Deadline::with_timer(rt.clone(), Some(end));
        assert!(
            poll_once(pin!(deadline.run(pending::<()>())))
                .await
                .is_none()
        );
        let mut ticks = interval_with(&rt, almost);
        poll_once(ticks.tick())
            .await
            .expect("the first tick is immediate");
        assert!(poll_once(ticks.tick()).await.is_none());
    }

    pub(crate) async fn cancel_reaches_other_tasks<R: Runtime>(rt: R) {
        let token = CancelToken::new();
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let token = if i % 2 == 0 {
                    token.clone()
                } else {
                    token.child()
                };
                rt.spawn(async move { token.run(pending::<()>()).await })
            })
            .collect();
        rt.sleep(5 * MS).await;
        token.cancel();
        for waiter in waiters {
            assert!(within(waiter).await.unwrap().is_err());
        }
    }
}

#[cfg_attr(
    not(any(feature = "smol", feature = "tokio", feature = "async-std")),
    allow(unused_macros)
)]
macro_rules! time_suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use crate::common::Harness;
            time_suite!(@tests $harness; timeout_fires, timeout_passes_the_value,
                deadline_moved_from_another_task, interval_ticks, cancel_reaches_other_tasks,
                deadlines_at_the_end_of_the_clock_wait);
        }
    };
    (@tests $harness:ty; $($test:ident),*) => {
        $( #[test] fn $test() { <$harness>::run(crate::suite::$test); } )*
    };
}

#[cfg(feature = "smol")]
time_suite!(smol, crate::common::SmolGlobal);
#[cfg(feature = "tokio")]
time_suite!(tokio, crate::common::Tokio);
#[cfg(feature = "async-std")]
time_suite!(async_std, crate::common::AsyncStd);
#[cfg(feature = "tokio")]
time_suite!(auto_in_tokio, crate::common::AutoInTokio);

/// tokio issue 4314: a future that spends tokio's whole cooperative budget
/// on every poll must still time out.
#[cfg(feature = "tokio")]
mod tokio_budget {
    use crate::common::{tokio_runtime, within};
    use portasync::rt::Tokio;
    use portasync::{timeout, timeout_with};
    use std::time::{Duration, Instant};

    async fn spend_the_budget_forever() {
        loop {
            tokio::task::coop::consume_budget().await;
        }
    }

    #[test]
    fn timeout_fires_when_the_inner_future_spends_the_budget() {
        tokio_runtime().block_on(async {
            let wall = Instant::now();
            let rt = Tokio::current();
            let guarded = timeout_with(&rt, Duration::from_millis(30), spend_the_budget_forever());
            assert!(within(guarded).await.is_err());
            assert!(
                within(timeout(
                    Duration::from_millis(30),
                    spend_the_budget_forever()
                ))
                .await
                .is_err()
            );
            assert!(wall.elapsed() >= Duration::from_millis(60));
        });
    }

    /// On a paused runtime the clock jumps: an hour's timeout passes at once.
    #[test]
    fn timeout_follows_paused_time() {
        crate::common::paused_tokio_runtime().block_on(async {
            let wall = Instant::now();
            assert!(
                timeout(Duration::from_secs(3600), std::future::pending::<()>())
                    .await
                    .is_err()
            );
            assert!(wall.elapsed() < Duration::from_secs(60));
        });
    }
}

/// On the real clock a timeout's deadline is kept in the counter clock's
/// nanoseconds until needed: it is still fixed at the call, reads the same
/// every time, and is where `Auto.now() + duration` says.
#[test]
fn real_clock_deadline_is_fixed_at_the_call() {
    use portasync::rt::{Auto, Timer};
    use std::time::Duration;

    let limit = Duration::from_secs(5);
    let before = Auto.now();
    let guarded = portasync::timeout(limit, std::future::pending::<()>());
    let after = Auto.now();
    let deadline = guarded.deadline().expect("five seconds is representable");
    // The counter clock's readings agree with each other to a microsecond.
    let slack = Duration::from_micros(1);
    assert!(
        deadline + slack >= before + limit,
        "{deadline:?} < {before:?} + 5 s"
    );
    assert!(
        deadline <= after + limit + slack,
        "{deadline:?} > {after:?} + 5 s"
    );
    let _ = Auto.now();
    assert_eq!(guarded.deadline(), Some(deadline), "it moved");
    let far = portasync::timeout(Duration::from_secs(u64::MAX), std::future::pending::<()>());
    assert!(far.deadline().is_none());
}

/// An unarmed timeout carries its deadline and a one-word slot for the
/// timer's sleep, not the sleep itself, so it stays small to move.
#[test]
fn a_timeout_adds_a_deadline_and_a_word_to_its_future() {
    use std::future::Ready;
    use std::mem::size_of;
    use std::time::Instant;

    let inner = size_of::<Ready<u64>>();
    let most = inner + size_of::<Instant>() + size_of::<usize>();
    assert!(size_of::<portasync::Timeout<Ready<u64>>>() <= most);
    #[cfg(feature = "tokio")]
    assert!(
        size_of::<portasync::Timeout<Ready<u64>, portasync::rt::Tokio>>()
            <= most + size_of::<portasync::rt::Tokio>()
    );
    // Against the sleep it would otherwise carry: tokio's is over a hundred bytes.
    assert!(size_of::<portasync::Sleep>() > size_of::<Instant>() + size_of::<usize>());
}
