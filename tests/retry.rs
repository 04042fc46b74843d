//! `retry`: schedules, stop reasons, hints, budgets, cancellation.
//!
//! Timing is checked on `ManualClock`, poll by poll: the operation must not
//! be called a millisecond before its delay is over, and must be called
//! once it is. Real time only checks that a retry completes on each runtime.

mod common;

#[cfg(feature = "test-util")]
mod manual {
    use crate::common::quiet_expected_panics;
    use futures_lite::future::block_on;
    use portasync::rt::{ManualClock, Timer};
    use portasync::{Backoff, Jitter, RetryBudget, RetryError, RetryPolicy, StopReason, retry};
    use std::cell::RefCell;
    use std::future::{Future, IntoFuture};
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    /// One attempt that sleeps `delay` on `clock`, then gives `output`.
    fn slow_attempt<T, E>(
        clock: &ManualClock,
        delay: Duration,
        output: Result<T, E>,
    ) -> impl Future<Output = Result<T, E>> + use<T, E> {
        let clock = clock.clone();
        async move {
            clock.sleep(delay).await;
            output
        }
    }

    fn poll<F: Future>(future: &mut Pin<Box<F>>) -> Poll<F::Output> {
        future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }

    /// An operation that fails `failures` times, then succeeds, recording
    /// when (on the clock) it was called.
    #[derive(Clone)]
    struct Flaky {
        clock: ManualClock,
        calls: Rc<RefCell<Vec<Duration>>>,
        failures: usize,
    }

    impl Flaky {
        fn new(clock: &ManualClock, failures: usize) -> Self {
            Self {
                clock: clock.clone(),
                calls: Rc::default(),
                failures,
            }
        }

        fn call(&self) -> impl Future<Output = Result<usize, String>> + use<> {
            let mut calls = self.calls.borrow_mut();
            calls.push(self.clock.elapsed());
            let n = calls.len();
            let fail = n <= self.failures;
            async move {
                if fail {
                    Err(format!("failure {n}"))
                } else {
                    Ok(n)
                }
            }
        }

        fn count(&self) -> usize {
            self.calls.borrow().len()
        }
    }

    /// Polls, then for each delay checks the next call comes exactly when
    /// the delay is over; returns the last poll's result.
    fn expect_calls_after<F: Future>(
        clock: &ManualClock,
        future: &mut Pin<Box<F>>,
        flaky: &Flaky,
        delays: &[Duration],
    ) -> Poll<F::Output> {
        let mut last = Poll::Pending;
        for delay in delays {
            assert!(poll(future).is_pending());
            let before = flaky.count();
            clock.advance(*delay - MS);
            assert!(poll(future).is_pending());
            assert_eq!(
                flaky.count(),
                before,
                "called again before its {delay:?} delay was over"
            );
            clock.advance(MS);
            last = poll(future);
            assert_eq!(
                flaky.count(),
                before + 1,
                "not called again after its {delay:?} delay"
            );
        }
        last
    }

    #[test]
    fn exponential_schedule_exactly() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let op = flaky.clone();
        let backoff = Backoff::exponential(100 * MS).max_delay(Duration::from_secs(1));
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(backoff)
                .max_attempts(6)
                .timer(clock.clone())
                .into_future(),
        );
        let last = expect_calls_after(
            &clock,
            &mut future,
            &flaky,
            &[100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS],
        );
        let Poll::Ready(Err(err)) = last else {
            panic!("expected to give up")
        };
        assert_eq!((err.attempts(), err.reason()), (6, StopReason::MaxAttempts));
        assert_eq!(err.error(), "failure 6");
        assert_eq!(
            err.to_string(),
            "gave up after 6 attempts (max attempts): failure 6"
        );
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn default_policy_is_three_attempts_from_100ms() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let op = flaky.clone();
        let mut future = Box::pin(retry(move || op.call()).timer(clock.clone()).into_future());
        let last = expect_calls_after(&clock, &mut future, &flaky, &[100 * MS, 200 * MS]);
        let Poll::Ready(Err(err)) = last else {
            panic!("expected to give up")
        };
        assert_eq!(err.attempts(), 3);
    }

    #[test]
    fn success_after_failures_returns_the_value() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, 2);
        let op = flaky.clone();
        let backoff = Backoff::fibonacci(10 * MS);
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(backoff)
                .timer(clock.clone())
                .into_future(),
        );
        let last = expect_calls_after(&clock, &mut future, &flaky, &[10 * MS, 10 * MS]);
        assert_eq!(last, Poll::Ready(Ok(3)));
    }

    #[test]
    fn not_retryable_stops_at_once_without_sleeping() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let op = flaky.clone();
        let mut future = Box::pin(
            retry(move || op.call())
                .when(|e: &String| e != "failure 1")
                .timer(clock.clone())
                .into_future(),
        );
        let Poll::Ready(Err(err)) = poll(&mut future) else {
            panic!("expected to stop")
        };
        assert_eq!(
            (err.attempts(), err.reason()),
            (1, StopReason::NotRetryable)
        );
        assert_eq!(
            err.to_string(),
            "gave up after 1 attempt (not retryable): failure 1"
        );
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn notify_comes_once_before_each_sleep_with_error_and_delay() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, 2);
        let op = flaky.clone();
        let log = Rc::new(RefCell::new(Vec::new()));
        let sink = log.clone();
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(Backoff::exponential(10 * MS))
                .notify(move |e: &String, delay| sink.borrow_mut().push((e.clone(), delay)))
                .timer(clock.clone())
                .into_future(),
        );
        assert!(poll(&mut future).is_pending());
        assert_eq!(
            *log.borrow(),
            [("failure 1".to_owned(), 10 * MS)],
            "notified before sleeping"
        );
        clock.advance(10 * MS);
        assert!(poll(&mut future).is_pending());
        assert_eq!(log.borrow().len(), 2);
        assert_eq!(log.borrow()[1], ("failure 2".to_owned(), 20 * MS));
        clock.advance(20 * MS);
        assert_eq!(poll(&mut future), Poll::Ready(Ok(3)));
        assert_eq!(log.borrow().len(), 2, "no notification after success");
    }

    #[test]
    fn hint_wins_uncapped_and_without_jitter() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, 1);
        let op = flaky.clone();
        let backoff = Backoff::exponential(100 * MS)
            .max_delay(Duration::from_secs(1))
            .jitter(Jitter::Full)
            .seed(1);
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(backoff)
                .hint(|_: &String| Some(Duration::from_secs(5)))
                .timer(clock.clone())
                .into_future(),
        );
        let last = expect_calls_after(&clock, &mut future, &flaky, &[Duration::from_secs(5)]);
        assert_eq!(last, Poll::Ready(Ok(2)));
    }

    /// Once the server stops sending hints, the backoff goes on from the
    /// attempt it reached, not from its first delay.
    #[test]
    fn the_schedule_moves_on_under_hints() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let op = flaky.clone();
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(Backoff::exponential(100 * MS))
                .max_attempts(6)
                .hint(|e: &String| {
                    let n: u32 = e["failure ".len()..].parse().unwrap();
                    (n <= 3).then_some(Duration::from_secs(1))
                })
                .timer(clock.clone())
                .into_future(),
        );
        let second = Duration::from_secs(1);
        let delays = [second, second, second, 800 * MS, 1600 * MS];
        let last = expect_calls_after(&clock, &mut future, &flaky, &delays);
        assert!(matches!(last, Poll::Ready(Err(_))));
    }

    /// The hint is asked only about an error that will be retried.
    #[test]
    fn the_hint_is_asked_only_when_its_answer_is_used() {
        for (retryable, expected) in [(true, 2), (false, 0)] {
            let asked = Rc::new(RefCell::new(0));
            let counter = asked.clone();
            let err = block_on(
                retry(|| async { Err::<(), _>("down") })
                    .backoff(Backoff::constant(Duration::ZERO))
                    .max_attempts(3)
                    .when(move |_| retryable)
                    .hint(move |_| {
                        *counter.borrow_mut() += 1;
                        None
                    })
                    .timer(ManualClock::new())
                    .into_future(),
            )
            .unwrap_err();
            assert_eq!(err.attempts(), if retryable { 3 } else { 1 });
            assert_eq!(*asked.borrow(), expected, "retryable: {retryable}");
        }
    }

    #[test]
    fn max_elapsed_never_starts_a_sleep_past_it() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let op = flaky.clone();
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(Backoff::constant(Duration::from_secs(1)))
                .max_attempts(u32::MAX)
                .max_elapsed(Duration::from_millis(2500))
                .timer(clock.clone())
                .into_future(),
        );
        let last = expect_calls_after(
            &clock,
            &mut future,
            &flaky,
            &[Duration::from_secs(1), Duration::from_secs(1)],
        );
        // At 2 s the next sleep would end at 3 s, past 2.5 s: give up now.
        let Poll::Ready(Err(err)) = last else {
            panic!("expected to give up")
        };
        assert_eq!((err.attempts(), err.reason()), (3, StopReason::MaxElapsed));
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
    }

    /// A `notify` that takes time does not move the next attempt past
    /// `max_elapsed`: the sleep is made before it runs (it was made after,
    /// and a callback taking a second started the next attempt at 2 s
    /// against a limit of 1.5 s; from a review).
    #[test]
    fn a_slow_notify_does_not_push_an_attempt_past_max_elapsed() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let (op, slow) = (flaky.clone(), clock.clone());
        let mut future = Box::pin(
            retry(move || op.call())
                .backoff(Backoff::constant(Duration::from_secs(1)))
                .max_attempts(u32::MAX)
                .max_elapsed(Duration::from_millis(1500))
                .notify(move |_: &String, _| slow.advance(Duration::from_secs(1)))
                .timer(clock.clone())
                .into_future(),
        );
        // The first attempt fails at 0 s; the callback takes a second, and
        // the sleep made before it is over by then.
        assert!(poll(&mut future).is_pending());
        assert_eq!(clock.elapsed(), Duration::from_secs(1));
        let Poll::Ready(Err(err)) = poll(&mut future) else {
            panic!("expected to give up after the second attempt")
        };
        assert_eq!((err.attempts(), err.reason()), (2, StopReason::MaxElapsed));
        assert_eq!(
            *flaky.calls.borrow(),
            [Duration::ZERO, Duration::from_secs(1)]
        );
    }

    /// A constant exponential schedule (`factor(1.0)`) stays constant at
    /// delays above 2^53 ns, where its float rounds (it came back a
    /// nanosecond shorter; from a review).
    #[test]
    fn an_exponential_schedule_of_factor_one_is_constant_at_any_size() {
        let initial = Duration::new(17_280_000, 1); // 200 days and a nanosecond
        let delays: Vec<_> = Backoff::exponential(initial)
            .factor(1.0)
            .delays()
            .take(3)
            .collect();
        assert_eq!(delays, [initial; 3]);
    }

    #[test]
    fn max_elapsed_never_cuts_a_running_attempt() {
        let clock = ManualClock::new();
        let sleeper = clock.clone();
        let mut future = Box::pin(
            retry(move || slow_attempt(&sleeper, 10 * SEC, Ok::<_, String>("slow but fine")))
                .max_elapsed(Duration::from_secs(1))
                .timer(clock.clone())
                .into_future(),
        );
        assert!(poll(&mut future).is_pending());
        clock.advance(Duration::from_secs(10));
        assert_eq!(poll(&mut future), Poll::Ready(Ok("slow but fine")));
    }

    #[test]
    fn budget_stops_retries_and_successes_refill_it() {
        let clock = ManualClock::new();
        // No floor; each success earns half a retry.
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5);
        let run = |failures: usize| {
            let flaky = Flaky::new(&clock, failures);
            let op = flaky.clone();
            let mut future = Box::pin(
                retry(move || op.call())
                    .backoff(Backoff::constant(MS))
                    .max_attempts(5)
                    .budget(budget.clone())
                    .timer(clock.clone())
                    .into_future(),
            );
            loop {
                if let Poll::Ready(result) = poll(&mut future) {
                    return result.map_err(|e: RetryError<String>| (e.attempts(), e.reason()));
                }
                clock.advance(MS);
            }
        };
        assert_eq!(run(usize::MAX), Err((1, StopReason::BudgetExhausted)));
        assert_eq!(run(0), Ok(1));
        assert_eq!(run(0), Ok(1)); // two successes: one retry earned
        assert_eq!(run(usize::MAX), Err((2, StopReason::BudgetExhausted)));
    }

    /// The floor counts a window shorter than a millisecond, or a fraction
    /// of one: 10,000 retries a second over 500 µs is five.
    #[test]
    fn budget_floor_counts_sub_millisecond_windows() {
        let clock = ManualClock::new();
        let budget = RetryBudget::new(Duration::from_micros(500), 10_000, 0.0);
        let err = block_on(
            retry(|| async { Err::<(), _>("down") })
                .backoff(Backoff::constant(Duration::ZERO))
                .max_attempts(100)
                .budget(budget)
                .timer(clock.clone())
                .into_future(),
        )
        .unwrap_err();
        assert_eq!(
            (err.attempts(), err.reason()),
            (6, StopReason::BudgetExhausted)
        );
    }

    /// A retry whose attempts fail at once, behind delays that are over at
    /// once, starts one attempt per poll and yields in between (woken at
    /// once), so an enclosing timeout gets to look: here each attempt
    /// takes a virtual second, and a 5 s timeout stops the run.
    #[test]
    fn instant_retries_yield_between_attempts() {
        let clock = ManualClock::new();
        let calls = std::cell::Cell::new(0u32);
        let op = || {
            calls.set(calls.get() + 1);
            clock.advance(Duration::from_secs(1));
            async { Err::<(), _>("down") }
        };
        let run = retry(op)
            .backoff(Backoff::constant(Duration::ZERO))
            .max_attempts(100_000)
            .timer(clock.clone())
            .into_future();
        let mut guarded = Box::pin(portasync::timeout_with(&clock, Duration::from_secs(5), run));
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let waker = Waker::from(std::sync::Arc::new(Count(woken.clone())));
        let mut polls = 0;
        let outcome = loop {
            polls += 1;
            if let Poll::Ready(outcome) = guarded.as_mut().poll(&mut Context::from_waker(&waker)) {
                break outcome;
            }
            assert_eq!(
                woken.swap(0, std::sync::atomic::Ordering::SeqCst),
                1,
                "woken to go on"
            );
        };
        assert!(outcome.is_err(), "the timeout, not the retry's own error");
        assert!(calls.get() <= 6, "{} attempts", calls.get());
        assert_eq!(polls, calls.get(), "one attempt per poll");
    }

    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn budget_floor_refills_with_time() {
        let clock = ManualClock::new();
        let budget = RetryBudget::new(Duration::from_secs(1), 1, 0.0);
        let policy = RetryPolicy::default()
            .backoff(Backoff::constant(Duration::ZERO))
            .max_attempts(10)
            .budget(budget);
        let attempts = || {
            let err = block_on(
                retry(|| async { Err::<(), _>("down") })
                    .policy(policy.clone())
                    .timer(clock.clone())
                    .into_future(),
            )
            .unwrap_err();
            (err.attempts(), err.reason())
        };
        assert_eq!(
            attempts(),
            (2, StopReason::BudgetExhausted),
            "the floor allows one retry per second"
        );
        assert_eq!(attempts(), (1, StopReason::BudgetExhausted));
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            attempts(),
            (2, StopReason::BudgetExhausted),
            "a new window, a new retry"
        );
    }

    #[test]
    fn dropped_during_a_sleep_the_operation_is_never_called_again() {
        let clock = ManualClock::new();
        let flaky = Flaky::new(&clock, usize::MAX);
        let op = flaky.clone();
        let mut future = Box::pin(
            retry(move || op.call())
                .max_attempts(10)
                .timer(clock.clone())
                .into_future(),
        );
        assert!(poll(&mut future).is_pending());
        assert_eq!(clock.sleepers(), 1);
        drop(future);
        assert_eq!(clock.sleepers(), 0);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(flaky.count(), 1);
    }

    #[test]
    fn a_panic_in_the_operation_propagates_unretried() {
        quiet_expected_panics();
        let calls = Rc::new(RefCell::new(0));
        let counter = calls.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            block_on(
                retry(move || {
                    *counter.borrow_mut() += 1;
                    async {
                        if true {
                            panic!("expected panic: op")
                        } else {
                            Ok::<(), ()>(())
                        }
                    }
                })
                .into_future(),
            )
        }));
        assert!(result.is_err());
        assert_eq!(*calls.borrow(), 1);
    }

    #[test]
    fn attempt_timeout_turns_a_hang_into_a_retried_error() {
        let clock = ManualClock::new();
        let calls = Rc::new(RefCell::new(0));
        let counter = calls.clone();
        let sleeper = clock.clone();
        let mut future = Box::pin(
            retry(move || {
                *counter.borrow_mut() += 1;
                slow_attempt(&sleeper, Duration::MAX, Ok::<(), std::io::Error>(()))
            })
            .attempt_timeout(Duration::from_secs(1))
            .backoff(Backoff::constant(Duration::ZERO))
            .max_attempts(2)
            .timer(clock.clone())
            .into_future(),
        );
        assert!(poll(&mut future).is_pending());
        clock.advance(Duration::from_secs(1));
        assert!(poll(&mut future).is_pending());
        assert_eq!(*calls.borrow(), 2, "the timed-out attempt was retried");
        clock.advance(Duration::from_secs(1));
        let Poll::Ready(Err(err)) = poll(&mut future) else {
            panic!("expected to give up")
        };
        assert_eq!(err.error().kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(err.attempts(), 2);
    }

    /// A successful attempt lets go of its timeout's timer at once, not
    /// when the future is dropped.
    #[test]
    fn attempt_timeout_timer_is_released_on_success() {
        let clock = ManualClock::new();
        let sleeper = clock.clone();
        let mut future = Box::pin(
            retry(move || slow_attempt(&sleeper, SEC, Ok::<_, std::io::Error>(7)))
                .attempt_timeout(Duration::from_secs(60))
                .timer(clock.clone())
                .into_future(),
        );
        assert!(poll(&mut future).is_pending());
        assert_eq!(clock.sleepers(), 2, "the attempt's sleep and its timeout");
        clock.advance(Duration::from_secs(1));
        assert!(matches!(poll(&mut future), Poll::Ready(Ok(7))));
        assert_eq!(clock.sleepers(), 0);
    }

    /// The message ends with the last error's, so the chain of causes goes
    /// on from that error's own source: each message is printed once.
    #[test]
    fn the_error_chain_repeats_no_message() {
        use crate::common::{Cause, WithCause, chain};
        let err = block_on(
            retry(|| async {
                Err::<(), _>(WithCause(
                    "service unavailable",
                    Cause("connection refused"),
                ))
            })
            .max_attempts(1)
            .timer(ManualClock::new())
            .into_future(),
        )
        .unwrap_err();
        assert_eq!(
            chain(&err),
            [
                "gave up after 1 attempt (max attempts): service unavailable",
                "connection refused"
            ]
        );
    }

    #[test]
    fn setters_after_a_policy_override_it() {
        let policy = RetryPolicy::default().max_attempts(5);
        let err = block_on(
            retry(|| async { Err::<(), _>("down") })
                .policy(policy)
                .backoff(Backoff::constant(Duration::ZERO))
                .max_attempts(2)
                .timer(ManualClock::new())
                .into_future(),
        )
        .unwrap_err();
        assert_eq!(err.attempts(), 2);
    }

    #[test]
    #[should_panic(expected = "RetryFuture polled after it completed")]
    fn polling_after_completion_panics_instead_of_calling_again() {
        let mut future = Box::pin(retry(|| async { Ok::<_, ()>(1) }).into_future());
        assert_eq!(poll(&mut future), Poll::Ready(Ok(1)));
        let _ = poll(&mut future);
    }

    #[test]
    #[should_panic(expected = "`max_attempts` must be at least 1")]
    fn zero_attempts_panics() {
        let _ = RetryPolicy::default().max_attempts(0);
    }

    #[test]
    #[should_panic(expected = "`factor` must be finite")]
    fn nan_factor_panics() {
        let _ = Backoff::exponential(MS).factor(f64::NAN);
    }

    #[test]
    #[should_panic(expected = "`factor` must be finite")]
    fn negative_factor_panics() {
        let _ = Backoff::exponential(MS).factor(-1.0);
    }

    #[test]
    #[should_panic(expected = "`retry_ratio` must be between 0 and 1000")]
    fn bad_ratio_panics() {
        let _ = RetryBudget::new(Duration::from_secs(1), 1, f64::INFINITY);
    }
}

/// The delay iterator, by property.
mod delays {
    use portasync::{Backoff, Jitter};
    use proptest::prelude::*;
    use std::time::Duration;

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ]
    }

    fn shape(initial: Duration, which: u8, factor: f64) -> Backoff {
        match which % 3 {
            0 => Backoff::exponential(initial).factor(factor),
            1 => Backoff::constant(initial),
            _ => Backoff::fibonacci(initial),
        }
    }

    proptest! {
        #[test]
        fn never_above_the_cap(
            initial in 0u64..10_000_000_000, cap in 0u64..100_000_000_000, factor in 0.0f64..20.0,
            which in 0u8..3, jitter in jitter(), seed in any::<u64>(),
        ) {
            let cap = Duration::from_nanos(cap);
            let backoff = shape(Duration::from_nanos(initial), which, factor).max_delay(cap).jitter(jitter).seed(seed);
            for delay in backoff.delays().take(200) {
                prop_assert!(delay <= cap);
            }
        }

        /// Initial delays up to 584 years: above 2^53 ns the exponential
        /// schedule's float shrank a delay (from a review).
        #[test]
        fn without_jitter_growing_schedules_never_shrink(
            initial in prop_oneof![0u64..10_000_000_000, any::<u64>()], factor in 1.0f64..20.0, which in 0u8..3,
        ) {
            let delays: Vec<_> = shape(Duration::from_nanos(initial), which, factor).delays().take(300).collect();
            prop_assert_eq!(delays[0], Duration::from_nanos(initial));
            for pair in delays.windows(2) {
                prop_assert!(pair[0] <= pair[1], "{:?} then {:?}", pair[0], pair[1]);
            }
        }

        #[test]
        fn jitter_stays_in_its_band(
            initial in 1u64..10_000_000_000, cap in 1u64..100_000_000_000, which in 0u8..3, seed in any::<u64>(),
        ) {
            let (initial, cap) = (Duration::from_nanos(initial), Duration::from_nanos(cap));
            let plain: Vec<_> = shape(initial, which, 2.0).max_delay(cap).delays().take(100).collect();
            let full: Vec<_> = shape(initial, which, 2.0).max_delay(cap).jitter(Jitter::Full).seed(seed).delays().take(100).collect();
            let equal: Vec<_> = shape(initial, which, 2.0).max_delay(cap).jitter(Jitter::Equal).seed(seed).delays().take(100).collect();
            for i in 0..100 {
                prop_assert!(full[i] <= plain[i]);
                prop_assert!(equal[i] >= plain[i] / 2 && equal[i] <= plain[i]);
            }
            let decorrelated: Vec<_> =
                shape(initial, which, 2.0).max_delay(cap).jitter(Jitter::Decorrelated).seed(seed).delays().take(100).collect();
            let floor = initial.min(cap);
            let mut previous = floor;
            for delay in decorrelated {
                prop_assert!(delay >= floor && delay <= cap);
                prop_assert!(delay <= previous.saturating_mul(3).max(floor));
                previous = delay;
            }
        }

        #[test]
        fn a_seed_makes_it_reproducible(
            initial in 0u64..10_000_000_000, which in 0u8..3, jitter in jitter(), seed in any::<u64>(),
        ) {
            let backoff = shape(Duration::from_nanos(initial), which, 2.0).jitter(jitter).seed(seed);
            let once: Vec<_> = backoff.delays().take(50).collect();
            let again: Vec<_> = backoff.clone().delays().take(50).collect();
            prop_assert_eq!(once, again);
        }
    }

    #[test]
    fn no_overflow_at_any_attempt_count() {
        for backoff in [
            Backoff::exponential(Duration::MAX).factor(1e300),
            Backoff::exponential(Duration::from_nanos(1)).factor(0.5),
            Backoff::fibonacci(Duration::from_secs(u64::MAX)),
            Backoff::exponential(Duration::from_secs(1)).jitter(Jitter::Decorrelated),
            Backoff::fibonacci(Duration::from_secs(1)).jitter(Jitter::Equal),
        ] {
            let mut delays = backoff.delays();
            let _ = delays.nth(100_000);
            let _ = delays.next();
        }
        assert_eq!(
            Backoff::exponential(Duration::from_secs(1))
                .delays()
                .nth(5_000),
            Some(Duration::MAX)
        );
        assert_eq!(
            Backoff::exponential(Duration::from_secs(10))
                .max_delay(Duration::from_secs(1))
                .delays()
                .next(),
            Some(Duration::from_secs(1)),
            "an initial delay above the cap is clamped"
        );
        let shrinking: Vec<_> = Backoff::exponential(Duration::from_secs(8))
            .factor(0.5)
            .delays()
            .take(4)
            .collect();
        assert_eq!(shrinking, [8, 4, 2, 1].map(Duration::from_secs));
    }
}

/// Real timers: a retry with millisecond delays completes on each runtime.
#[allow(dead_code)]
mod suite {
    use crate::common::within;
    use portasync::rt::Runtime;
    use portasync::{Backoff, retry};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    pub(crate) async fn retries_complete<R: Runtime>(rt: R) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let wall = Instant::now();
        let value = within(
            retry(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move { if n < 3 { Err("not yet") } else { Ok(n) } }
            })
            .backoff(Backoff::exponential(Duration::from_millis(2)))
            .timer(rt),
        )
        .await;
        assert_eq!(value.unwrap(), 3);
        assert!(
            wall.elapsed() >= Duration::from_millis(6),
            "slept 2 ms then 4 ms"
        );
    }
}

#[cfg_attr(
    not(any(feature = "smol", feature = "tokio", feature = "async-std")),
    allow(unused_macros)
)]
macro_rules! retry_suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use crate::common::Harness;
            #[test]
            fn retries_complete() {
                <$harness>::run(crate::suite::retries_complete);
            }
        }
    };
}

#[cfg(feature = "smol")]
retry_suite!(smol, crate::common::SmolGlobal);
#[cfg(feature = "tokio")]
retry_suite!(tokio, crate::common::Tokio);
#[cfg(feature = "async-std")]
retry_suite!(async_std, crate::common::AsyncStd);
#[cfg(feature = "tokio")]
retry_suite!(auto_in_tokio, crate::common::AutoInTokio);
