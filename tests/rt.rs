//! The runtime layer apart from executors: `ManualClock`, `JoinError`.
//! (Executor behaviour is in tests/runtimes.rs, run on every runtime.)

use portasync::JoinError;

#[test]
fn join_error_display_and_accessors() {
    let cancelled = JoinError::Cancelled;
    assert_eq!(cancelled.to_string(), "task was cancelled");
    assert_eq!(format!("{cancelled:?}"), "Cancelled");
    assert!(cancelled.try_into_panic().unwrap_err().is_cancelled());
    let io: std::io::Error = JoinError::Cancelled.into();
    assert_eq!(io.to_string(), "task was cancelled");
}

#[test]
#[should_panic(expected = "into_panic called on a cancelled task")]
fn into_panic_of_cancelled_panics() {
    let _ = JoinError::Cancelled.into_panic();
}

#[cfg(feature = "test-util")]
mod manual_clock {
    use futures_lite::future::{self, block_on};
    use portasync::rt::{ManualClock, ManualSleep, Timer};
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};
    use std::thread;
    use std::time::Duration;

    /// A waker that records its label in a shared log each time it is woken.
    struct Recorder {
        label: &'static str,
        log: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.log.lock().unwrap().push(self.label);
        }
    }

    fn recorder(label: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> Waker {
        Waker::from(Arc::new(Recorder {
            label,
            log: log.clone(),
        }))
    }

    fn poll(sleep: &mut Pin<Box<ManualSleep>>, waker: &Waker) -> Poll<()> {
        sleep.as_mut().poll(&mut Context::from_waker(waker))
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn advance_wakes_due_sleepers_in_deadline_order() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut sleeps: Vec<_> = [
            ("thirty", 30),
            ("ten", 10),
            ("twenty", 20),
            ("ten-again", 10),
        ]
        .into_iter()
        .map(|(label, ms)| (label, Box::pin(clock.sleep(ms * MS))))
        .collect();
        for (label, sleep) in &mut sleeps {
            assert!(poll(sleep, &recorder(label, &log)).is_pending());
        }
        assert_eq!(clock.sleepers(), 4);

        clock.advance(25 * MS);
        // Earliest deadline first; equal deadlines in the order they slept.
        assert_eq!(*log.lock().unwrap(), ["ten", "ten-again", "twenty"]);
        assert_eq!(clock.sleepers(), 1);

        clock.advance(4 * MS);
        assert_eq!(log.lock().unwrap().len(), 3, "woke before its deadline");
        clock.advance(MS);
        assert_eq!(
            *log.lock().unwrap(),
            ["ten", "ten-again", "twenty", "thirty"]
        );
        assert_eq!(clock.sleepers(), 0);

        let noop = Waker::noop();
        for (_, sleep) in &mut sleeps {
            assert!(poll(sleep, noop).is_ready());
        }
    }

    #[test]
    fn time_moves_only_when_advanced() {
        let clock = ManualClock::new();
        let start = clock.now();
        thread::sleep(5 * MS);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - start, Duration::from_secs(90));
        assert_eq!(clock.elapsed(), Duration::from_secs(90));
        // Clones share the clock.
        clock.clone().advance(Duration::from_secs(10));
        assert_eq!(clock.elapsed(), Duration::from_secs(100));
    }

    #[test]
    fn deadline_already_reached_is_ready_without_registering() {
        let clock = ManualClock::new();
        let mut now = Box::pin(clock.sleep_until(clock.now()));
        let mut zero = Box::pin(clock.sleep(Duration::ZERO));
        assert!(poll(&mut now, Waker::noop()).is_ready());
        assert!(poll(&mut zero, Waker::noop()).is_ready());
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn dropping_a_sleep_deregisters_it() {
        let clock = ManualClock::new();
        let mut sleep = Box::pin(clock.sleep(Duration::from_secs(1)));
        assert_eq!(clock.sleepers(), 0, "counted before it was polled");
        assert!(poll(&mut sleep, Waker::noop()).is_pending());
        assert_eq!(clock.sleepers(), 1);
        drop(sleep);
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut sleep = Box::pin(clock.sleep(MS));
        assert!(poll(&mut sleep, &recorder("old", &log)).is_pending());
        assert!(poll(&mut sleep, &recorder("new", &log)).is_pending());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(MS);
        assert_eq!(*log.lock().unwrap(), ["new"]);
    }

    #[test]
    fn endless_sleeps_never_fire() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut max = Box::pin(clock.sleep(Duration::MAX));
        assert!(poll(&mut max, &recorder("max", &log)).is_pending());
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        clock.advance(century);
        clock.advance(century);
        assert!(log.lock().unwrap().is_empty());
        assert!(poll(&mut max, Waker::noop()).is_pending());
        assert_eq!(clock.sleepers(), 1);
    }

    #[test]
    #[should_panic(expected = "`duration` moves the clock past the largest Instant")]
    fn advancing_past_the_end_of_time_panics_clearly() {
        ManualClock::new().advance(Duration::MAX);
    }

    /// A waker that calls back into the clock when woken and when dropped.
    struct Hostile {
        clock: ManualClock,
    }

    impl Wake for Hostile {
        fn wake(self: Arc<Self>) {
            let _ = self.clock.sleepers();
            self.clock.advance(Duration::ZERO);
        }
    }

    impl Drop for Hostile {
        fn drop(&mut self) {
            let _ = self.clock.now();
        }
    }

    #[test]
    fn wakers_may_call_back_into_the_clock() {
        let clock = ManualClock::new();
        let hostile = || {
            Waker::from(Arc::new(Hostile {
                clock: clock.clone(),
            }))
        };
        let mut sleep = Box::pin(clock.sleep(MS));
        assert!(poll(&mut sleep, &hostile()).is_pending());
        assert!(poll(&mut sleep, &hostile()).is_pending()); // drops the first waker
        clock.advance(MS); // wakes the second
        assert!(poll(&mut sleep, &hostile()).is_ready());
        let mut other = Box::pin(clock.sleep(MS));
        assert!(poll(&mut other, &hostile()).is_pending());
        drop(other); // drops a hostile waker
        assert_eq!(clock.sleepers(), 0);
    }

    /// Four threads sleep on one clock while the main thread advances it:
    /// every sleeper wakes, none before its deadline.
    #[test]
    fn shared_across_threads() {
        let clock = ManualClock::new();
        let start = clock.now();
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let clock = clock.clone();
                thread::spawn(move || {
                    for i in 0..50u32 {
                        let deadline = start + (i * 4 + t) * MS;
                        block_on(clock.sleep_until(deadline));
                        assert!(clock.now() >= deadline, "woke before its deadline");
                    }
                })
            })
            .collect();
        // Advance in small steps until every thread is done; bounded, since
        // past the last deadline every sleep is ready at once.
        let mut steps = 0;
        while !threads.iter().all(|t| t.is_finished()) {
            clock.advance(MS);
            steps += 1;
            assert!(steps < 1_000_000, "sleepers never finished");
            thread::yield_now();
        }
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn works_under_any_executor() {
        let clock = ManualClock::new();
        let sleeper = {
            let clock = clock.clone();
            thread::spawn(move || {
                async_std::task::block_on(async {
                    future::zip(clock.sleep(MS), clock.sleep(2 * MS)).await;
                })
            })
        };
        while clock.sleepers() < 2 {
            thread::yield_now();
        }
        clock.advance(2 * MS);
        sleeper.join().unwrap();
    }

    /// A timer that keeps the provided `sleep`, near the end of `Instant`:
    /// a sleep of `Duration::MAX` still sleeps (it completed at once: the
    /// fallback deadline 30 years on did not fit either, and `now` was
    /// taken; from a review).
    #[test]
    fn provided_sleep_near_the_end_of_time_never_fires() {
        use std::time::Instant;

        #[derive(Clone)]
        struct Provided(ManualClock);

        impl Timer for Provided {
            type Sleep = ManualSleep;

            fn now(&self) -> Instant {
                self.0.now()
            }

            fn sleep_until(&self, deadline: Instant) -> ManualSleep {
                self.0.sleep_until(deadline)
            }
        }

        let clock = ManualClock::new();
        // Within a year of the end of the clock.
        let year = Duration::from_secs(365 * 24 * 60 * 60);
        let mut step = Duration::from_secs(u64::MAX / 2);
        while step >= year {
            if clock.now().checked_add(step).is_some() {
                clock.advance(step);
            } else {
                step /= 2;
            }
        }
        assert!(clock.now().checked_add(30 * year).is_none());
        let timer = Provided(clock.clone());
        let mut forever = Box::pin(timer.sleep(Duration::MAX));
        assert!(block_on(future::poll_once(&mut forever)).is_none());
        // It is due at the end of the clock.
        let mut left = Duration::from_secs(u64::MAX / 2);
        while !left.is_zero() {
            if clock.now().checked_add(left).is_some() {
                clock.advance(left);
            } else {
                left /= 2;
            }
        }
        assert!(block_on(future::poll_once(&mut forever)).is_some());
    }
}

/// `Tokio::now` reads the clock its sleeps use, from any context: outside a
/// paused runtime it read the caller's (real) clock, so `sleep_until(now +
/// 10 s)` made there was due at once on the runtime's clock, an hour on
/// (from a review).
#[cfg(feature = "tokio")]
#[test]
fn tokio_now_and_sleeps_read_one_clock_outside_the_context() {
    use portasync::rt::{Timer, Tokio};
    use std::time::Duration;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let rt = Tokio::from_handle(runtime.handle().clone());
    runtime.block_on(tokio::time::advance(Duration::from_secs(3600)));
    let inside = runtime.block_on(async { rt.now() });
    assert_eq!(rt.now(), inside, "the same paused clock from outside");
    let sleep = rt.sleep_until(rt.now() + Duration::from_secs(10));
    let slept = runtime.block_on(async {
        let start = tokio::time::Instant::now();
        sleep.await;
        start.elapsed()
    });
    assert!(
        slept >= Duration::from_secs(10),
        "slept {slept:?} of virtual time"
    );
}
