//! Rate limits: GCRA, keyed, sliding window, throttle.
//!
//! Every rule is checked on `ManualClock`, to the nanosecond. Real time is
//! used only to check that waiting really waits on each runtime (`suite`),
//! with exact lower bounds and generous upper ones.

mod common;

#[cfg(feature = "test-util")]
mod manual {
    use futures_lite::StreamExt;
    use portasync::rt::{ManualClock, Timer};
    use portasync::{
        InsufficientCapacity, KeyedRateLimiter, NotUntil, Quota, QuotaError, RateLimited,
        RateLimiter, SlidingWindow, WindowAcquire, throttle,
    };
    use proptest::prelude::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);
    const NS: Duration = Duration::from_nanos(1);
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    /// Counts its wake-ups and records, in a shared log, the order in which
    /// waiters were woken.
    struct Counter {
        index: usize,
        wakes: AtomicUsize,
        log: Arc<Mutex<Vec<usize>>>,
    }

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.log.lock().unwrap().push(self.index);
        }
    }

    /// The order in which waiters were woken, by index.
    type WakeLog = Arc<Mutex<Vec<usize>>>;

    fn counters(n: usize) -> (Vec<Arc<Counter>>, Vec<Waker>, WakeLog) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let counters: Vec<_> = (0..n)
            .map(|index| {
                Arc::new(Counter {
                    index,
                    wakes: AtomicUsize::new(0),
                    log: log.clone(),
                })
            })
            .collect();
        let wakers = counters
            .iter()
            .map(|counter| Waker::from(counter.clone()))
            .collect();
        (counters, wakers, log)
    }

    fn poll<F: Future + ?Sized>(future: &mut Pin<Box<F>>, waker: &Waker) -> Poll<F::Output> {
        future.as_mut().poll(&mut Context::from_waker(waker))
    }

    /// The next item if the stream has one ready now.
    fn next<S: futures_lite::Stream + Unpin>(stream: &mut S) -> Option<Option<S::Item>> {
        futures_lite::future::block_on(futures_lite::future::poll_once(stream.next()))
    }

    fn wait_of(result: Result<(), NotUntil>) -> Duration {
        result
            .expect_err("the check should have been refused")
            .wait_time()
    }

    // Quota

    #[test]
    fn quota_constructors_and_errors() {
        assert_eq!(Quota::per_second(5).period(), SEC);
        assert_eq!(Quota::per_minute(5).period(), 60 * SEC);
        assert_eq!(Quota::per_hour(5).period(), 3600 * SEC);
        assert_eq!(Quota::new(7, MS).count(), 7);
        assert_eq!(Quota::per_second(5).burst_size(), 5);
        assert_eq!(Quota::per_second(5).burst(2).burst_size(), 2);
        assert_eq!(Quota::try_new(0, SEC), Err(QuotaError::ZeroCount));
        assert_eq!(
            Quota::try_new(1, Duration::ZERO),
            Err(QuotaError::ZeroPeriod)
        );
        assert_eq!(
            Quota::per_second(1).try_burst(0),
            Err(QuotaError::ZeroBurst)
        );
        assert_eq!(
            QuotaError::ZeroPeriod.to_string(),
            "quota period must be greater than zero"
        );
        fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
        is_error::<QuotaError>();
        is_error::<NotUntil>();
        is_error::<RateLimited>();
        is_error::<InsufficientCapacity>();
    }

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("it should have panicked");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap()
    }

    #[test]
    fn zero_arguments_panic_naming_the_argument() {
        assert!(
            panic_message(|| {
                let _ = Quota::per_second(0);
            })
            .contains("`n`")
        );
        assert!(
            panic_message(|| {
                let _ = Quota::per_minute(0);
            })
            .contains("`n`")
        );
        assert!(
            panic_message(|| {
                let _ = Quota::per_hour(0);
            })
            .contains("`n`")
        );
        assert!(
            panic_message(|| {
                let _ = Quota::new(1, Duration::ZERO);
            })
            .contains("`period`")
        );
        assert!(
            panic_message(|| {
                let _ = Quota::per_second(1).burst(0);
            })
            .contains("`b`")
        );
        assert!(
            panic_message(|| {
                let _ = SlidingWindow::new(0, SEC);
            })
            .contains("`n`")
        );
        assert!(
            panic_message(|| {
                let _ = SlidingWindow::new(1, Duration::ZERO);
            })
            .contains("`period`")
        );
    }

    // RateLimiter: the arithmetic

    #[test]
    fn burst_then_steady_rate() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10).burst(5), clock.clone());
        for _ in 0..5 {
            limiter.check().unwrap();
        }
        assert_eq!(wait_of(limiter.check()), 100 * MS);
        for _ in 0..50 {
            clock.advance(100 * MS - NS);
            assert_eq!(wait_of(limiter.check()), NS);
            clock.advance(NS);
            limiter.check().unwrap();
            assert_eq!(
                wait_of(limiter.check()),
                100 * MS,
                "one cell per interval, no more"
            );
        }
        // An idle spell refills the burst, and no more than the burst.
        clock.advance(10 * SEC);
        assert!(limiter.check_n(5).is_ok());
        assert!(limiter.check().is_err());
    }

    #[test]
    fn check_n_is_all_or_nothing() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10), clock.clone());
        limiter.check_n(7).unwrap();
        match limiter.check_n(4) {
            Err(RateLimited::NotUntil(not_until)) => assert_eq!(not_until.wait_time(), 100 * MS),
            other => panic!("expected NotUntil, got {other:?}"),
        }
        limiter.check_n(3).unwrap(); // the refused 4 took nothing
        assert_eq!(
            limiter.check_n(11),
            Err(RateLimited::InsufficientCapacity(10))
        );
        assert_eq!(limiter.check_n(0), Ok(()));
        let err = RateLimited::InsufficientCapacity(10);
        assert_eq!(
            err.to_string(),
            "request exceeds the limiter's capacity of 10"
        );
    }

    #[test]
    fn earliest_is_the_check_reading_plus_wait_time() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(3), clock.clone());
        limiter.check_n(3).unwrap();
        clock.advance(MS);
        let refused = limiter.check().unwrap_err();
        assert_eq!(refused.earliest(), clock.now() + refused.wait_time());
        assert_eq!(refused.wait_time(), Duration::from_nanos(333_333_334) - MS);
    }

    /// 3 per second does not divide a second into nanoseconds: a limiter
    /// that rounded the interval would drift by a millisecond per million
    /// cells.
    #[test]
    fn no_drift_over_a_million_cells() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(3).burst(1), clock.clone());
        limiter.check().unwrap();
        let cells: u64 = 1_000_000;
        for _ in 1..cells {
            let wait = wait_of(limiter.check());
            clock.advance(wait);
            limiter.check().unwrap();
        }
        // The last cell came exactly (cells - 1) / 3 seconds after the first,
        // rounded up to the nanosecond.
        let exact_nanos = ((cells - 1) * 1_000_000_000).div_ceil(3);
        assert_eq!(clock.elapsed(), Duration::from_nanos(exact_nanos));

        // Whole seconds: exactly 7 cells refill in each, never 6, never 8.
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(7), clock.clone());
        for second in 0..1_000_000 {
            assert!(limiter.check_n(7).is_ok(), "7 cells refused at {second} s");
            assert!(
                limiter.check().is_err(),
                "an 8th cell allowed at {second} s"
            );
            clock.advance(SEC);
        }
    }

    #[test]
    fn huge_rates_never_have_a_zero_interval() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(u32::MAX).burst(1), clock.clone());
        limiter.check().unwrap();
        assert_eq!(
            wait_of(limiter.check()),
            NS,
            "a fraction of a nanosecond, rounded up"
        );
        clock.advance(NS);
        for _ in 0..4 {
            limiter.check().unwrap(); // 4.29 cells per nanosecond, even at burst 1
        }
        assert!(limiter.check().is_err());

        // u32::MAX per second with the full burst: 4.29 cells per nanosecond.
        let limiter = RateLimiter::with_timer(Quota::per_second(u32::MAX), clock.clone());
        limiter.check_n(u32::MAX).unwrap();
        assert_eq!(wait_of(limiter.check()), NS);
        clock.advance(NS);
        limiter.check_n(4).unwrap();
        assert!(
            limiter.check().is_err(),
            "4.29 cells refilled in 1 ns, not 5"
        );
        clock.advance(SEC);
        limiter.check_n(u32::MAX).unwrap();
    }

    #[test]
    fn tiny_rates_and_century_periods() {
        let clock = ManualClock::new();
        let hourly = RateLimiter::with_timer(Quota::per_hour(1), clock.clone());
        hourly.check().unwrap();
        assert_eq!(wait_of(hourly.check()), 3600 * SEC);

        let century = 100 * YEAR;
        let limiter = RateLimiter::with_timer(Quota::new(1, century), clock.clone());
        limiter.check().unwrap();
        assert_eq!(wait_of(limiter.check()), century);
        clock.advance(century - NS);
        assert_eq!(wait_of(limiter.check()), NS);
        clock.advance(NS);
        limiter.check().unwrap();

        // u32::MAX cells per century, all at once, then the exact refill.
        let limiter =
            RateLimiter::with_timer(Quota::new(u32::MAX, century).burst(u32::MAX), clock.clone());
        limiter.check_n(u32::MAX).unwrap();
        let per_cell = century.as_nanos().div_ceil(u128::from(u32::MAX));
        assert_eq!(wait_of(limiter.check()).as_nanos(), per_cell);

        // A burst far larger than the count over the longest period.
        let limiter =
            RateLimiter::with_timer(Quota::new(1, Duration::MAX).burst(u32::MAX), clock.clone());
        limiter.check_n(u32::MAX).unwrap();
        let refused = limiter.check().unwrap_err();
        assert_eq!(refused.wait_time(), Duration::MAX);
        assert!(
            refused.earliest() > clock.now() + 20 * YEAR,
            "decades away, and no panic"
        );
        let mut waiter = Box::pin(limiter.acquire());
        assert!(poll(&mut waiter, Waker::noop()).is_pending());
        clock.advance(century);
        assert!(poll(&mut waiter, Waker::noop()).is_pending());
    }

    /// A quota, a burst and a list of (advance, n) steps.
    fn scenario() -> impl Strategy<Value = (u32, u64, u32, Vec<(u64, u32)>)> {
        let count = prop_oneof![
            1..=10u32,
            1..=1_000_000u32,
            Just(u32::MAX),
            any::<u32>().prop_map(|n| n.max(1))
        ];
        let period = prop_oneof![
            1..=1_000u64,
            1..=10_000_000_000u64,
            Just(3_600_000_000_000u64)
        ];
        (count, period, 1..=20u32).prop_flat_map(|(count, period, burst)| {
            let steps =
                proptest::collection::vec((0..=period.saturating_mul(2), 1..=burst + 1), 1..60);
            (Just(count), Just(period), Just(burst), steps)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A refused check's wait time is exact: the same request is refused
        /// one nanosecond before it and allowed at it; and the admissions
        /// never exceed burst + rate × elapsed.
        #[test]
        fn wait_time_is_exact((count, period, burst, steps) in scenario()) {
            let clock = ManualClock::new();
            let quota = Quota::new(count, Duration::from_nanos(period)).burst(burst);
            let limiter = RateLimiter::with_timer(quota, clock.clone());
            let mut admitted: u128 = 0;
            for (advance, n) in steps {
                clock.advance(Duration::from_nanos(advance));
                match limiter.check_n(n) {
                    Ok(()) => admitted += u128::from(n),
                    Err(RateLimited::InsufficientCapacity(capacity)) => {
                        prop_assert_eq!(capacity, burst);
                        prop_assert!(n > burst);
                    }
                    Err(RateLimited::NotUntil(refused)) => {
                        let wait = refused.wait_time();
                        prop_assert!(wait > Duration::ZERO);
                        prop_assert_eq!(refused.earliest(), clock.now() + wait);
                        clock.advance(wait - NS);
                        prop_assert!(limiter.check_n(n).is_err(), "allowed before wait_time");
                        clock.advance(NS);
                        prop_assert!(limiter.check_n(n).is_ok(), "refused at wait_time");
                        admitted += u128::from(n);
                    }
                }
                // burst + count × elapsed / period
                let bound = u128::from(burst) + clock.elapsed().as_nanos() * u128::from(count) / u128::from(period);
                prop_assert!(admitted <= bound, "{} admitted, bound {}", admitted, bound);
            }
        }

        /// The sliding window's wait time is exact too.
        #[test]
        fn window_wait_time_is_exact(limit in 1..=10u32, period in 1..=1_000u64, steps in proptest::collection::vec((0..=2_000u64, 1..=11u32), 1..60)) {
            let clock = ManualClock::new();
            let window = SlidingWindow::with_timer(limit, Duration::from_nanos(period), clock.clone());
            for (advance, n) in steps {
                clock.advance(Duration::from_nanos(advance));
                match window.check_n(n) {
                    Ok(()) | Err(RateLimited::InsufficientCapacity(_)) => {}
                    Err(RateLimited::NotUntil(refused)) => {
                        let wait = refused.wait_time();
                        clock.advance(wait - NS);
                        prop_assert!(window.check_n(n).is_err(), "allowed before wait_time");
                        clock.advance(NS);
                        prop_assert!(window.check_n(n).is_ok(), "refused at wait_time");
                    }
                }
            }
        }
    }

    /// The GCRA of `RateLimiter`'s docs, in plain `u128` ticks of `1 / count`
    /// ns (count and period in lowest terms): the reference the limiter's
    /// one-word fast path must match, answer for answer.
    struct Model {
        per_nano: u128,
        interval: u128,
        tau: u128,
        burst: u32,
        tat: u128,
    }

    impl Model {
        fn new(quota: Quota) -> Self {
            fn gcd(mut a: u128, mut b: u128) -> u128 {
                while b != 0 {
                    (a, b) = (b, a % b);
                }
                a
            }
            let (count, period) = (u128::from(quota.count()), quota.period().as_nanos());
            let common = gcd(count, period);
            let interval = period / common;
            Self {
                per_nano: count / common,
                interval,
                tau: interval.saturating_mul(u128::from(quota.burst_size())),
                burst: quota.burst_size(),
                tat: 0,
            }
        }

        /// `n` cells (1 to the burst) at `now` ticks: `Ok(new tat)`, or
        /// `Err((when allowed, tat once booked))`; commits nothing.
        fn test(&self, now: u128, n: u32) -> Result<u128, (u128, u128)> {
            let start = if self.tat < now && now - self.tat < self.per_nano {
                self.tat
            } else {
                self.tat.max(now)
            };
            let new = start.saturating_add(u128::from(n) * self.interval);
            let earliest = new.saturating_sub(self.tau);
            if earliest <= now {
                Ok(new)
            } else {
                Err((earliest, new))
            }
        }

        /// `ticks` of this model in the ticks of `to`, rounded up or down.
        fn rescale(&self, ticks: u128, to: &Self, up: bool) -> u128 {
            if self.per_nano == to.per_nano {
                return ticks;
            }
            let (whole, part) = (ticks / self.per_nano, ticks % self.per_nano * to.per_nano);
            let part = if up {
                part.div_ceil(self.per_nano)
            } else {
                part / self.per_nano
            };
            whole.saturating_mul(to.per_nano).saturating_add(part)
        }

        /// `Ok` or the exact wait in nanoseconds; `None` above the burst.
        fn check_n(&mut self, nanos: u128, n: u32) -> Option<Result<(), u128>> {
            if n > self.burst {
                return None;
            }
            if n == 0 {
                return Some(Ok(()));
            }
            Some(match self.test(nanos * self.per_nano, n) {
                Ok(tat) => {
                    self.tat = tat;
                    Ok(())
                }
                Err((earliest, _)) => Err(earliest.div_ceil(self.per_nano) - nanos),
            })
        }

        /// `set_quota`: `tat` rescaled to the new ticks, rounded up.
        fn set_quota(&mut self, quota: Quota) {
            let old = std::mem::replace(self, Self::new(quota));
            self.tat = old.rescale(old.tat, self, true);
        }
    }

    /// Checks the limiter's answer to `check_n(n)` against the model's at
    /// `nanos` (which the model commits); `burst` is the current one.
    fn matches_model(
        answer: Result<(), RateLimited>,
        model: &mut Model,
        nanos: u128,
        n: u32,
        burst: u32,
    ) -> Result<(), TestCaseError> {
        match (answer, model.check_n(nanos, n)) {
            (Ok(()), Some(Ok(()))) => {}
            (Err(RateLimited::NotUntil(refused)), Some(Err(wait))) => {
                // A time at or past the limiter's clock's end (2^64 - 1 ns)
                // never comes.
                let past_the_end = nanos + wait >= u128::from(u64::MAX);
                let expected = if past_the_end { u128::MAX } else { wait };
                prop_assert_eq!(
                    refused.wait_time().as_nanos(),
                    expected.min(Duration::MAX.as_nanos())
                );
            }
            (Err(RateLimited::InsufficientCapacity(capacity)), None) => {
                prop_assert_eq!(capacity, burst);
            }
            (got, expected) => {
                prop_assert!(false, "{:?} for {}, expected {:?}", got, n, expected)
            }
        }
        Ok(())
    }

    /// The limiters' reading of `clock`: nanoseconds since it was made, up to
    /// a nanosecond short of their clock's end.
    fn limiter_nanos(clock: &ManualClock) -> u128 {
        clock.elapsed().as_nanos().min(u128::from(u64::MAX - 1))
    }

    /// A fraction (in 1/256) of `burst` cells: 0 to just over the burst.
    fn cells(burst: u32, fraction: u32) -> u32 {
        let cells = (u64::from(burst) * u64::from(fraction)).div_ceil(256);
        u32::try_from(cells).unwrap_or(u32::MAX)
    }

    /// How far the clock moves before a step: often not at all or a little,
    /// now and then by years (up to 2.3), rarely by centuries, to and past
    /// the 584 years the limiter counts (its clock's end).
    fn advances() -> impl Strategy<Value = u64> + Clone {
        prop_oneof![
            8 => Just(0u64),
            8 => 0..=1_000u64,
            6 => 0..=10_000_000_000u64,
            2 => 0..=(1u64 << 56),
            1 => prop_oneof![Just(u64::MAX / 3), any::<u64>()],
        ]
    }

    /// Quotas whose numbers stress the one-word path: whole nanoseconds,
    /// billions of ticks per nanosecond, buckets far beyond 64 bits.
    fn wide_quota() -> impl Strategy<Value = Quota> {
        let count = prop_oneof![
            1..=10u32,
            Just(1_000_000_000u32),
            Just(u32::MAX),
            Just(u32::MAX - 1),
            any::<u32>().prop_map(|n| n.max(1))
        ];
        // Also intervals and bucket sizes at and past 2^59 and 2^64 ticks
        // (where the one-word paths clamp), up to `Duration::MAX`.
        let max = Duration::MAX.as_nanos();
        let near = |bits: u32, most: u128| {
            (-4i128..=4, 1..=most).prop_map(move |(d, k)| ((1i128 << bits) + d) as u128 * k)
        };
        let period = prop_oneof![
            6 => Just(1u128),
            6 => 1..=1_000u128,
            6 => Just(1_000_000_000u128),
            6 => Just(3_600_000_000_000u128),
            6 => Just(100 * 365 * 24 * 3_600_000_000_000u128),
            2 => (0..1_000u128).prop_map(move |d| max - d),
            2 => 1..=max,
            2 => near(64, 8),
            2 => near(59, 8),
            2 => near(64, 1 << 32),
            2 => near(59, 1 << 32),
        ];
        let burst = prop_oneof![
            1..=20u32,
            Just(1_000_000u32),
            Just(u32::MAX),
            any::<u32>().prop_map(|b| b.max(1))
        ];
        (count, period, burst).prop_map(|(count, period, burst)| {
            let (secs, nanos) = (period / 1_000_000_000, period % 1_000_000_000);
            let period = Duration::new(secs as u64, nanos as u32);
            Quota::new(count, period).burst(burst)
        })
    }

    /// One step: how far the clock moves, then what is done.
    #[derive(Clone, Debug)]
    enum Step {
        /// `check_n` for this many cells (a fraction of the burst, in 1/256).
        Check(u64, u32),
        /// A new `acquire_n`, polled once and kept if it has to wait.
        Wait(u64, u32),
        /// An `acquire_n` polled once and dropped: it takes the cells if
        /// allowed, otherwise books them and gives them back at once.
        AcquireDropped(u64, u32),
        /// Every kept waiter polled, oldest first.
        PollAll(u64),
        /// The kept waiter at this index (modulo their number) dropped.
        Drop(u64, usize),
        /// `set_quota` to the same quota: the state goes through the lock.
        SameQuota(u64),
        /// `set_quota` to the other quota of the case, or back.
        OtherQuota(u64),
    }

    impl Step {
        fn advance(&self) -> u64 {
            match *self {
                Self::Check(a, _)
                | Self::Wait(a, _)
                | Self::AcquireDropped(a, _)
                | Self::PollAll(a)
                | Self::Drop(a, _)
                | Self::SameQuota(a)
                | Self::OtherQuota(a) => a,
            }
        }
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let advance = advances();
        let step = prop_oneof![
            5 => (advance.clone(), 0..=260u32).prop_map(|(a, n)| Step::Check(a, n)),
            3 => (advance.clone(), 1..=256u32).prop_map(|(a, n)| Step::Wait(a, n)),
            2 => (advance.clone(), 0..=260u32).prop_map(|(a, n)| Step::AcquireDropped(a, n)),
            2 => advance.clone().prop_map(Step::PollAll),
            2 => (advance.clone(), any::<usize>()).prop_map(|(a, i)| Step::Drop(a, i)),
            1 => advance.clone().prop_map(Step::SameQuota),
            1 => advance.prop_map(Step::OtherQuota),
        ];
        proptest::collection::vec(step, 1..100)
    }

    /// A queued waiter of the model: when it is served, and how far it
    /// moved `tat` (what it gives back if dropped before then).
    #[derive(Clone, Copy, Debug)]
    struct Booked {
        at: u128,
        size: u128,
    }

    /// A boxed `acquire_n` of any limiter.
    type Acquiring<'a> = Pin<Box<dyn Future<Output = Result<(), InsufficientCapacity>> + 'a>>;

    /// A limiter the model runs against: a `RateLimiter`, or one key of a
    /// `KeyedRateLimiter`.
    trait Limiter<T>: Clone + Send + Sync + 'static {
        fn new(quota: Quota, timer: T) -> Self;
        fn check_n(&self, n: u32) -> Result<(), RateLimited>;
        fn acquire_n(&self, n: u32) -> Acquiring<'_>;
        /// Changes the quota to `quota`, if the limiter can: true if it did.
        fn set_quota(&self, quota: Quota) -> bool;
    }

    impl<T: Timer> Limiter<T> for RateLimiter<T> {
        fn new(quota: Quota, timer: T) -> Self {
            RateLimiter::with_timer(quota, timer)
        }

        fn check_n(&self, n: u32) -> Result<(), RateLimited> {
            RateLimiter::check_n(self, n)
        }

        fn acquire_n(&self, n: u32) -> Acquiring<'_> {
            Box::pin(RateLimiter::acquire_n(self, n))
        }

        fn set_quota(&self, quota: Quota) -> bool {
            RateLimiter::set_quota(self, quota);
            true
        }
    }

    /// Key 1 of a keyed limiter, whose other keys are busy too.
    impl<T: Timer> Limiter<T> for KeyedRateLimiter<u32, T> {
        fn new(quota: Quota, timer: T) -> Self {
            KeyedRateLimiter::with_timer(quota, timer)
        }

        fn check_n(&self, n: u32) -> Result<(), RateLimited> {
            let _ = KeyedRateLimiter::check_n(self, &2, n);
            KeyedRateLimiter::check_n(self, &1, n)
        }

        fn acquire_n(&self, n: u32) -> Acquiring<'_> {
            Box::pin(KeyedRateLimiter::acquire_n(self, &1, n))
        }

        /// It has no quota change: it drops its full keys instead, which
        /// changes no answer.
        fn set_quota(&self, _: Quota) -> bool {
            self.retain_recent();
            false
        }
    }

    /// Runs `steps` against `L` and the model: every answer and every
    /// waiter's readiness must match.
    fn matches_the_plain_gcra<L: Limiter<ManualClock>>(
        quota: Quota,
        other: Quota,
        steps: Vec<Step>,
    ) -> Result<(), TestCaseError> {
        let clock = ManualClock::new();
        let limiter = L::new(quota, clock.clone());
        let mut model = Model::new(quota);
        let mut booked: Vec<Booked> = Vec::new();
        let mut waiters = Vec::new();
        let (mut current, mut next) = (quota, other);
        for step in steps {
            clock.advance(Duration::from_nanos(step.advance()));
            let nanos = limiter_nanos(&clock);
            let now = nanos * model.per_nano;
            let burst = current.burst_size();
            match step {
                Step::Check(_, fraction) => {
                    let n = cells(burst, fraction);
                    matches_model(limiter.check_n(n), &mut model, nanos, n, burst)?;
                }
                Step::Wait(_, fraction) => {
                    let n = cells(burst, fraction).max(1);
                    let mut acquire = Box::pin(limiter.acquire_n(n));
                    let ready = poll(&mut acquire, Waker::noop()).is_ready();
                    match model.test(now, n) {
                        Ok(tat) => {
                            prop_assert!(ready, "booked {} cells the model allows now", n);
                            model.tat = tat;
                        }
                        Err((at, tat)) => {
                            prop_assert!(!ready, "took {} cells the model books", n);
                            booked.push(Booked {
                                at,
                                size: tat - model.tat,
                            });
                            model.tat = tat;
                            waiters.push(acquire);
                        }
                    }
                }
                Step::AcquireDropped(_, fraction) => {
                    let n = cells(burst, fraction);
                    let before = model.tat;
                    let expected = model.check_n(nanos, n);
                    let mut acquire = Box::pin(limiter.acquire_n(n));
                    let ready = poll(&mut acquire, Waker::noop()).is_ready();
                    drop(acquire);
                    prop_assert_eq!(ready, !matches!(expected, Some(Err(_))));
                    if matches!(expected, Some(Err(_))) {
                        model.tat = before; // booked last, then given back
                    }
                }
                Step::PollAll(_) => {
                    let mut index = 0;
                    while index < waiters.len() {
                        let ready = poll(&mut waiters[index], Waker::noop()).is_ready();
                        prop_assert_eq!(
                            ready,
                            booked[index].at <= now,
                            "waiter {} of {}",
                            index,
                            waiters.len()
                        );
                        if ready {
                            drop(waiters.remove(index));
                            booked.remove(index);
                        } else {
                            index += 1;
                        }
                    }
                }
                Step::Drop(_, index) => {
                    if waiters.is_empty() {
                        continue;
                    }
                    let index = index % waiters.len();
                    drop(waiters.remove(index));
                    let gone = booked.remove(index);
                    if now < gone.at {
                        model.tat = model.tat.saturating_sub(gone.size);
                        for later in &mut booked[index..] {
                            later.at = later.at.saturating_sub(gone.size);
                        }
                    }
                }
                Step::SameQuota(_) => {
                    limiter.set_quota(current);
                }
                Step::OtherQuota(_) => {
                    if !limiter.set_quota(next) {
                        continue;
                    }
                    std::mem::swap(&mut current, &mut next);
                    let new = Model::new(current);
                    for waiter in &mut booked {
                        waiter.at = model.rescale(waiter.at, &new, true);
                        waiter.size = model.rescale(waiter.size, &new, false);
                    }
                    model.set_quota(current);
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The limiter (its lock-free word, its locked `u128` state, and the
        /// moves between them) answers exactly as the plain GCRA, for quotas
        /// from a cell per nanosecond to a cell per century, bursts up to
        /// `u32::MAX`, and jumps of the clock up to a century; with several
        /// waiters queued at once, each is ready exactly when its booked time
        /// comes, one dropped before its time moves `tat` and every later
        /// booking earlier by its share, and `set_quota` rescales them all.
        #[test]
        fn every_answer_matches_the_plain_gcra(quota in wide_quota(), other in wide_quota(), steps in steps()) {
            matches_the_plain_gcra::<RateLimiter<ManualClock>>(quota, other, steps)?;
        }

        /// The same for one key of a keyed limiter, waiters and give-backs
        /// included, while another key is checked alongside it.
        #[test]
        fn every_keyed_waiter_matches_the_plain_gcra(quota in wide_quota(), steps in steps()) {
            matches_the_plain_gcra::<KeyedRateLimiter<u32, ManualClock>>(quota, quota, steps)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Each key of a keyed limiter answers exactly as its own plain GCRA,
        /// through the one-word path, the `u128` one and the widening.
        #[test]
        fn every_keyed_answer_matches_the_plain_gcra(
            quota in wide_quota(),
            steps in proptest::collection::vec((advances(), 0..=260u32, 0..3usize), 1..80),
        ) {
            let clock = ManualClock::new();
            let limiter = KeyedRateLimiter::with_timer(quota, clock.clone());
            let mut models: Vec<Model> = (0..3).map(|_| Model::new(quota)).collect();
            let burst = quota.burst_size();
            for (advance, fraction, key) in steps {
                clock.advance(Duration::from_nanos(advance));
                let n = cells(burst, fraction);
                let nanos = limiter_nanos(&clock);
                matches_model(limiter.check_n(&key, n), &mut models[key], nanos, n, burst)?;
            }
        }
    }

    /// Times that saturate at the end of `u128` (a period of `Duration::MAX`
    /// and a burst of `u32::MAX`), with give-backs in between: nothing
    /// overflows, and nobody is served early.
    #[test]
    fn waiters_at_the_end_of_time_never_overflow() {
        fn run<L: Limiter<ManualClock>>() {
            let clock = ManualClock::new();
            let limiter = L::new(Quota::new(1, Duration::MAX).burst(u32::MAX), clock.clone());
            limiter.check_n(u32::MAX).unwrap();
            let mut turns: Vec<_> = [u32::MAX, 1, u32::MAX, u32::MAX, u32::MAX]
                .into_iter()
                .map(|n| limiter.acquire_n(n))
                .collect();
            for turn in &mut turns {
                assert!(poll(turn, Waker::noop()).is_pending());
            }
            drop(turns.drain(..2)); // the oldest first: the ones ahead are lifted
            turns.extend([limiter.acquire_n(u32::MAX), limiter.acquire_n(u32::MAX)]);
            clock.advance(YEAR);
            for turn in &mut turns {
                assert!(poll(turn, Waker::noop()).is_pending(), "served early");
            }
            // Give-backs near the end, where lifting those ahead would not fit.
            for index in [1, 1, 0] {
                drop(turns.remove(index));
                for turn in &mut turns {
                    assert!(poll(turn, Waker::noop()).is_pending(), "served early");
                }
            }
        }
        run::<RateLimiter<ManualClock>>();
        run::<KeyedRateLimiter<u32, ManualClock>>();
    }

    #[test]
    fn set_quota_keeps_the_state() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(1), clock.clone());
        limiter.check().unwrap();
        limiter.set_quota(Quota::per_second(10));
        assert_eq!(limiter.quota(), Quota::per_second(10));
        // One second is booked; the new burst is one second: one interval to wait.
        assert_eq!(wait_of(limiter.check()), 100 * MS);
        clock.advance(100 * MS);
        limiter.check().unwrap();

        // Slower: what was used stays used.
        let limiter = RateLimiter::with_timer(Quota::per_second(10), clock.clone());
        limiter.check_n(10).unwrap(); // one second booked
        limiter.set_quota(Quota::per_second(3).burst(1)); // a third of a second of burst
        // Allowed when booked-until + 1/3 s - 1/3 s is reached: in one second.
        assert_eq!(wait_of(limiter.check()), SEC);
        clock.advance(SEC);
        limiter.check().unwrap();
        assert_eq!(wait_of(limiter.check()), Duration::from_nanos(333_333_334));

        // A changed count (the internal unit) keeps a waiter's booked time.
        let limiter = RateLimiter::with_timer(Quota::per_second(7).burst(1), clock.clone());
        limiter.check().unwrap();
        let mut waiter = Box::pin(limiter.acquire());
        assert!(poll(&mut waiter, Waker::noop()).is_pending());
        limiter.set_quota(Quota::per_second(1000).burst(1));
        clock.advance(Duration::from_nanos(142_857_142));
        assert!(
            poll(&mut waiter, Waker::noop()).is_pending(),
            "booked at 1/7 s, not earlier"
        );
        clock.advance(NS);
        assert!(poll(&mut waiter, Waker::noop()).is_ready());
        // Its booking still counts: booked through 2/7 s, burst 1 ms, so the
        // next cell is at 2/7 s.
        assert_eq!(
            wait_of(limiter.check()),
            Duration::from_nanos(285_714_286 - 142_857_143)
        );
    }

    // RateLimiter: waiting

    /// Polls every waiter woken since the last call, in the order they were
    /// woken, and returns those that completed.
    fn run_woken(
        waiters: &mut [Option<Pin<Box<portasync::RateAcquire<'_, ManualClock>>>>],
        wakers: &[Waker],
        log: &Mutex<Vec<usize>>,
    ) -> Vec<usize> {
        let mut done = Vec::new();
        loop {
            let woken: Vec<usize> = std::mem::take(&mut *log.lock().unwrap());
            if woken.is_empty() {
                return done;
            }
            for index in woken {
                if let Some(waiter) = &mut waiters[index] {
                    if poll(waiter, &wakers[index]).is_ready() {
                        waiters[index] = None;
                        done.push(index);
                    }
                }
            }
        }
    }

    #[test]
    fn a_thousand_waiters_are_served_in_order_each_woken_once() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10), clock.clone());
        let (counters, wakers, log) = counters(1000);
        let mut waiters: Vec<_> = (0..1000)
            .map(|_| Some(Box::pin(limiter.acquire())))
            .collect();
        let mut order = Vec::new();
        for (index, waiter) in waiters.iter_mut().enumerate() {
            if poll(waiter.as_mut().unwrap(), &wakers[index]).is_ready() {
                *waiter = None;
                order.push(index);
            }
        }
        assert_eq!(
            order,
            (0..10).collect::<Vec<_>>(),
            "the burst is served at once"
        );
        assert_eq!(limiter.waiters(), 990);
        assert!(
            limiter.check().is_err(),
            "check never takes a waiter's turn"
        );

        // Time moves in uneven steps; each due waiter is woken by its own timer.
        let mut elapsed = Duration::ZERO;
        let steps = [
            100 * MS,
            50 * MS,
            50 * MS,
            1 * SEC,
            7 * SEC + 3 * MS,
            90 * SEC,
        ];
        let mut step = 0;
        while order.len() < 1000 {
            let advance = steps[step % steps.len()];
            step += 1;
            clock.advance(advance);
            elapsed += advance;
            order.extend(run_woken(&mut waiters, &wakers, &log));
            // Served so far: the burst plus one per 100 ms, never more.
            let due = (10 + elapsed.as_millis() / 100).min(1000) as usize;
            assert_eq!(order.len(), due, "after {elapsed:?}");
        }
        assert_eq!(order, (0..1000).collect::<Vec<_>>(), "FIFO");
        for counter in &counters[10..] {
            assert_eq!(
                counter.wakes.load(Ordering::SeqCst),
                1,
                "waiter {} woken more than once",
                counter.index
            );
        }
        assert_eq!(limiter.waiters(), 0);
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn acquire_n_keeps_fifo_order_for_mixed_sizes() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10), clock.clone());
        limiter.check_n(10).unwrap();
        let (_counters, wakers, log) = counters(3);
        let mut big = Box::pin(limiter.acquire_n(10));
        let mut small = Box::pin(limiter.acquire_n(1));
        assert!(poll(&mut big, &wakers[0]).is_pending());
        assert!(poll(&mut small, &wakers[1]).is_pending());
        clock.advance(999 * MS);
        assert!(
            log.lock().unwrap().is_empty(),
            "the small one waits behind the big one"
        );
        clock.advance(MS);
        assert_eq!(*log.lock().unwrap(), [0]);
        assert!(poll(&mut big, &wakers[0]).is_ready());
        clock.advance(100 * MS);
        assert!(poll(&mut small, &wakers[1]).is_ready());
        let mut too_big = Box::pin(limiter.acquire_n(11));
        assert_eq!(
            poll(&mut too_big, &wakers[2]).map(|r| r.map_err(|e| (e.requested(), e.capacity()))),
            Poll::Ready(Err((11, 10)))
        );
    }

    #[test]
    fn a_dropped_waiter_gives_back_its_cells() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10).burst(1), clock.clone());
        limiter.check().unwrap();
        let (counters, wakers, log) = counters(3);
        let mut a = Box::pin(limiter.acquire()); // at 100 ms
        let mut b = Box::pin(limiter.acquire()); // at 200 ms
        let mut c = Box::pin(limiter.acquire()); // at 300 ms
        for (waiter, waker) in [&mut a, &mut b, &mut c].into_iter().zip(&wakers) {
            assert!(poll(waiter, waker).is_pending());
        }
        assert_eq!(clock.sleepers(), 3);

        // The middle one gives up: the last moves up to 200 ms.
        drop(b);
        assert_eq!(limiter.waiters(), 2);
        assert_eq!(clock.sleepers(), 2);
        assert!(
            log.lock().unwrap().is_empty(),
            "nobody is woken while the one ahead still waits"
        );

        clock.advance(100 * MS);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [0]);
        assert!(poll(&mut a, &wakers[0]).is_ready());
        // Serving `a` wakes `c` once, to move its sleep earlier.
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [2]);
        assert!(poll(&mut c, &wakers[2]).is_pending());
        clock.advance(100 * MS);
        assert!(
            poll(&mut c, &wakers[2]).is_ready(),
            "served at 200 ms, in b's place"
        );
        assert_eq!(counters[2].wakes.load(Ordering::SeqCst), 2);

        // The last waiter dropped: its cell goes back to `check`.
        let mut d = Box::pin(limiter.acquire()); // at 300 ms
        assert!(poll(&mut d, &wakers[0]).is_pending());
        drop(d);
        clock.advance(100 * MS);
        limiter.check().unwrap();
        assert_eq!(limiter.waiters(), 0);
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn dropping_the_first_waiter_wakes_the_next_at_once() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10).burst(1), clock.clone());
        limiter.check().unwrap();
        let (_counters, wakers, log) = counters(2);
        let mut a = Box::pin(limiter.acquire());
        let mut b = Box::pin(limiter.acquire());
        assert!(poll(&mut a, &wakers[0]).is_pending());
        assert!(poll(&mut b, &wakers[1]).is_pending());
        drop(a);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [1]);
        assert!(poll(&mut b, &wakers[1]).is_pending());
        clock.advance(100 * MS);
        assert!(poll(&mut b, &wakers[1]).is_ready());
    }

    /// A waiter that is leaked while pending holds its own turn and nothing
    /// else: there is no leader to stall on.
    #[test]
    fn a_leaked_waiter_stalls_nobody() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10).burst(1), clock.clone());
        limiter.check().unwrap();
        let (_counters, wakers, _log) = counters(3);
        let mut leaked = Box::pin(limiter.acquire());
        assert!(poll(&mut leaked, &wakers[0]).is_pending());
        std::mem::forget(leaked);
        let mut next = Box::pin(limiter.acquire());
        assert!(poll(&mut next, &wakers[1]).is_pending());
        clock.advance(200 * MS);
        assert!(
            poll(&mut next, &wakers[1]).is_ready(),
            "served at its own time"
        );
        clock.advance(100 * MS);
        limiter.check().unwrap();
    }

    #[test]
    fn acquire_is_immediate_when_allowed_and_registers_no_timer() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(2), clock.clone());
        let mut first = Box::pin(limiter.acquire());
        assert!(poll(&mut first, Waker::noop()).is_ready());
        assert_eq!(clock.sleepers(), 0);
        let mut zero = Box::pin(limiter.acquire_n(0));
        assert!(poll(&mut zero, Waker::noop()).is_ready());
    }

    /// Two threads, a million checks each, the clock moved by the workers
    /// themselves: never more than burst + rate × elapsed.
    #[test]
    fn two_threads_never_exceed_the_rate() {
        let clock = ManualClock::new();
        let (rate, burst) = (1000u64, 50u32);
        let limiter =
            RateLimiter::with_timer(Quota::per_second(rate as u32).burst(burst), clock.clone());
        let admitted = Arc::new(AtomicU64::new(0));
        let over = Arc::new(AtomicBool::new(false));
        std::thread::scope(|scope| {
            for worker in 0..2u64 {
                let (clock, limiter, admitted, over) = (&clock, &limiter, &admitted, &over);
                scope.spawn(move || {
                    for i in 0..1_000_000u64 {
                        if (i + worker) % 97 == 0 {
                            clock.advance(Duration::from_micros(300));
                        }
                        if limiter.check().is_ok() {
                            let total = admitted.fetch_add(1, Ordering::SeqCst) + 1;
                            // Elapsed read after the admission: a looser bound, still a bound.
                            let elapsed = clock.elapsed().as_nanos() as u64;
                            if total > u64::from(burst) + elapsed * rate / 1_000_000_000 {
                                over.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        let total = admitted.load(Ordering::SeqCst);
        let elapsed = clock.elapsed().as_nanos() as u64;
        let bound = u64::from(burst) + elapsed * rate / 1_000_000_000;
        assert!(
            !over.load(Ordering::SeqCst),
            "some prefix exceeded the rate"
        );
        assert!(total <= bound, "{total} admitted, bound {bound}");
        assert!(
            total >= bound - 2,
            "{total} admitted, {bound} allowed: checks that should pass were refused"
        );
    }

    /// As above with 2^32 ticks per nanosecond (a prime count over a period
    /// it does not divide), so that the lock-free word's base has to move
    /// every 67 ms or so of the clock while both threads check.
    #[test]
    fn two_threads_never_exceed_the_rate_across_base_moves() {
        let clock = ManualClock::new();
        let count: u32 = 4_294_967_291; // prime
        let period = u64::from(count) * 1_000_000 + 1; // ns: about one cell per ms
        let burst = 50u32;
        let quota = Quota::new(count, Duration::from_nanos(period)).burst(burst);
        let limiter = RateLimiter::with_timer(quota, clock.clone());
        let admitted = AtomicU64::new(0);
        let bound = || {
            let elapsed = clock.elapsed().as_nanos();
            u128::from(burst) + elapsed * u128::from(count) / u128::from(period)
        };
        std::thread::scope(|scope| {
            for worker in 0..2u64 {
                let (clock, limiter, admitted, bound) = (&clock, &limiter, &admitted, &bound);
                scope.spawn(move || {
                    for i in 0..500_000u64 {
                        if (i + worker) % 97 == 0 {
                            clock.advance(Duration::from_micros(300));
                        }
                        if limiter.check().is_ok() {
                            let total = admitted.fetch_add(1, Ordering::SeqCst) + 1;
                            let bound = bound();
                            assert!(
                                u128::from(total) <= bound,
                                "{total} admitted, bound {bound}"
                            );
                        }
                    }
                });
            }
        });
        let (total, bound) = (u128::from(admitted.load(Ordering::SeqCst)), bound());
        assert!(
            clock.elapsed() > Duration::from_secs(1),
            "the base moved many times"
        );
        assert!(total <= bound, "{total} admitted, bound {bound}");
        assert!(
            total + 2 >= bound,
            "{total} admitted, {bound} allowed: checks that should pass were refused"
        );
    }

    /// A [`ManualClock`] that can run a hook right after taking a reading,
    /// before the reader uses it: what a reader descheduled at that point
    /// would see.
    #[derive(Clone)]
    struct Hooked {
        clock: ManualClock,
        hook: Arc<Mutex<Option<Hook>>>,
    }

    type Hook = Box<dyn FnOnce() + Send>;

    impl Timer for Hooked {
        type Sleep = portasync::rt::ManualSleep;

        fn now(&self) -> std::time::Instant {
            let reading = self.clock.now();
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
            reading
        }

        fn sleep_until(&self, deadline: std::time::Instant) -> Self::Sleep {
            self.clock.sleep_until(deadline)
        }
    }

    /// A waiter dropped before its turn gives its cells back only if they
    /// are still booked. Here its turn passes and a check on another thread
    /// finds the bucket full (so the booking is spent) between the drop's
    /// clock reading and its use: the cells must not come back, or the next
    /// check would get a second cell at once with a burst of one.
    #[test]
    fn a_give_back_never_returns_cells_already_spent() {
        fn check<L: Limiter<Hooked>>(limiter: &L) -> bool {
            limiter.check_n(1).is_ok()
        }
        fn acquire<L: Limiter<Hooked>>(limiter: &L) -> bool {
            poll(&mut limiter.acquire_n(1), Waker::noop()).is_ready()
        }
        give_back_after_spending::<RateLimiter<Hooked>>(check);
        give_back_after_spending::<RateLimiter<Hooked>>(acquire);
        give_back_after_spending::<KeyedRateLimiter<u32, Hooked>>(check);
        give_back_after_spending::<KeyedRateLimiter<u32, Hooked>>(acquire);
    }

    /// `spend` takes a cell on another thread, between the drop's reading
    /// and its use; true if it got one.
    fn give_back_after_spending<L: Limiter<Hooked>>(spend: fn(&L) -> bool) {
        let clock = ManualClock::new();
        let timer = Hooked {
            clock: clock.clone(),
            hook: Arc::new(Mutex::new(None)),
        };
        let ms = Duration::from_millis(1);
        let limiter = L::new(Quota::per_second(1000).burst(1), timer.clone());
        assert!(limiter.check_n(1).is_ok());
        let mut waiter = limiter.acquire_n(1);
        assert!(
            poll(&mut waiter, Waker::noop()).is_pending(),
            "booked for 1 ms"
        );
        let (other, other_clock) = (limiter.clone(), clock.clone());
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let helper: Arc<Mutex<Option<std::thread::JoinHandle<()>>>> = Arc::default();
        let spawned = helper.clone();
        *timer.hook.lock().unwrap() = Some(Box::new(move || {
            // On another thread, as a concurrent check would be, while the
            // drop waits between its reading and its use of it. Should the
            // limiter ever read the clock under its lock instead, the check
            // waits for the drop to finish, and so does not happen between:
            // the wait then times out, and the test still checks the rest.
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            *spawned.lock().unwrap() = Some(std::thread::spawn(move || {
                other_clock.advance(3 * ms);
                taken_tx.send(spend(&other)).unwrap();
                let _ = done_tx.send(()); // the drop may have stopped waiting
            }));
            let _ = done_rx.recv_timeout(Duration::from_millis(250));
        }));
        drop(waiter);
        let helper = helper.lock().unwrap().take();
        helper.expect("the drop read the clock").join().unwrap();
        assert!(taken_rx.recv().unwrap(), "the bucket was full at 3 ms");
        assert_eq!(clock.elapsed(), 3 * ms);
        assert!(
            limiter.check_n(1).is_err(),
            "a second cell at 3 ms with a burst of one"
        );
    }

    /// Checks on two threads while a third keeps taking the lock without
    /// changing the quota (bookings given back, the same quota set again),
    /// so that the lock-free word keeps being taken out and put back under
    /// the same generation: never more than burst + rate × elapsed.
    #[test]
    fn lock_holders_between_checks_never_exceed_the_rate() {
        let clock = ManualClock::new();
        let (rate, burst) = (1000u64, 20u32);
        let quota = Quota::per_second(rate as u32).burst(burst);
        let limiter = RateLimiter::with_timer(quota, clock.clone());
        let admitted = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        // The count first, the clock after: every cell counted was taken at
        // a reading no later than this one. (Read the other way round, a
        // cell taken after the clock was read could be counted against it.)
        let bound = |admitted: &AtomicU64| {
            let total = admitted.load(Ordering::SeqCst);
            let elapsed = clock.elapsed().as_nanos() as u64;
            (total, u64::from(burst) + elapsed * rate / 1_000_000_000)
        };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut rounds = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let mut acquire = Box::pin(limiter.acquire_n(3));
                    if poll(&mut acquire, Waker::noop()).is_ready() {
                        admitted.fetch_add(3, Ordering::SeqCst);
                    }
                    drop(acquire); // gives the cells back if it booked them
                    if rounds % 8 == 0 {
                        limiter.set_quota(quota);
                    }
                    rounds += 1;
                }
                assert!(rounds > 0);
            });
            // Stops the lock holder even if a worker's assertion fails.
            struct Stop<'a>(&'a AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _stop = Stop(&done);
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        for i in 0..300_000u64 {
                            if i % 64 == 0 {
                                clock.advance(Duration::from_micros(700));
                            }
                            if limiter.check().is_ok() {
                                admitted.fetch_add(1, Ordering::SeqCst);
                                let (total, bound) = bound(&admitted);
                                assert!(total <= bound, "{total} admitted, bound {bound}");
                            }
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let (total, bound) = bound(&admitted);
        assert!(total <= bound, "{total} admitted, bound {bound}");
        assert!(
            total > bound / 2,
            "{total} admitted of {bound}: the limiter stopped admitting"
        );
    }

    /// Checks on two threads while a third keeps switching the quota (and so
    /// the limiter's unit of time): never more than the largest burst plus
    /// the fastest rate × elapsed.
    #[test]
    fn quota_changes_during_checks_never_exceed_the_fastest_rate() {
        let clock = ManualClock::new();
        let fast = Quota::per_second(7).burst(20);
        let slow = Quota::per_second(3).burst(5);
        let limiter = RateLimiter::with_timer(fast, clock.clone());
        let admitted = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut switches = 0u64;
                while !done.load(Ordering::SeqCst) {
                    limiter.set_quota(if switches % 2 == 0 { slow } else { fast });
                    switches += 1;
                    std::thread::yield_now();
                }
                assert!(switches > 0);
            });
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        for i in 0..200_000u64 {
                            if i % 50 == 0 {
                                clock.advance(Duration::from_millis(3));
                            }
                            if limiter.check().is_ok() {
                                admitted.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let total = admitted.load(Ordering::SeqCst);
        let bound = 21 + clock.elapsed().as_nanos() as u64 * 7 / 1_000_000_000;
        assert!(total <= bound, "{total} admitted, bound {bound}");
        assert!(
            total > bound / 4,
            "{total} admitted of {bound}: the limiter stopped admitting"
        );
    }

    #[test]
    fn throttle_yields_at_the_allowed_times() {
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(10).burst(2), clock.clone());
        let mut paced = Box::pin(throttle(futures_lite::stream::iter(0..5), &limiter));
        assert_eq!(next(&mut paced), Some(Some(0)));
        assert_eq!(next(&mut paced), Some(Some(1)));
        assert_eq!(next(&mut paced), None);
        assert!(
            limiter.check().is_err(),
            "the held item booked the next cell"
        );
        clock.advance(100 * MS - NS);
        assert_eq!(next(&mut paced), None);
        clock.advance(NS);
        assert_eq!(next(&mut paced), Some(Some(2)));
        clock.advance(100 * MS);
        assert_eq!(next(&mut paced), Some(Some(3)), "one cell has refilled");
        assert_eq!(next(&mut paced), None, "but not two");
        clock.advance(100 * MS);
        assert_eq!(next(&mut paced), Some(Some(4)));
        assert_eq!(next(&mut paced), Some(None), "the end takes no cell");

        // Dropped while an item waits: its cell goes back.
        let limiter = RateLimiter::with_timer(Quota::per_second(10).burst(1), clock.clone());
        let mut paced = Box::pin(throttle(futures_lite::stream::iter(0..5), &limiter));
        assert_eq!(next(&mut paced), Some(Some(0)));
        assert_eq!(next(&mut paced), None);
        drop(paced);
        clock.advance(100 * MS);
        limiter.check().unwrap();
        assert!(limiter.check().is_err());
    }

    // KeyedRateLimiter

    #[test]
    fn keys_are_independent_and_exact() {
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::with_timer(Quota::per_second(3).burst(1), clock.clone());
        limiter.check(&"a").unwrap();
        assert_eq!(
            wait_of(limiter.check(&"a")),
            Duration::from_nanos(333_333_334)
        );
        limiter.check(&"b").unwrap();
        assert_eq!(
            limiter.check_n(&"c", 2),
            Err(RateLimited::InsufficientCapacity(1))
        );
        assert_eq!(limiter.check_n(&"c", 0), Ok(()));
        assert_eq!(limiter.len(), 2);
        clock.advance(Duration::from_nanos(333_333_334));
        limiter.check(&"a").unwrap();
    }

    /// Per-key state starts in 8 bytes and moves to 16 when the tick count
    /// outgrows 64 bits (after 8.6 s at 2^31 ticks per nanosecond, which is
    /// `u32::MAX - 1` per second in lowest terms), with no
    /// change in any answer.
    #[test]
    fn keyed_state_widens_without_changing_answers() {
        let clock = ManualClock::new();
        let limiter =
            KeyedRateLimiter::with_timer(Quota::per_second(u32::MAX - 1).burst(1), clock.clone());
        limiter.check(&1).unwrap();
        assert_eq!(wait_of(limiter.check(&1)), NS);
        clock.advance(60 * SEC);
        limiter.check(&1).unwrap();
        assert_eq!(wait_of(limiter.check(&1)), NS);
        limiter.check(&2).unwrap();
        assert_eq!(limiter.len(), 2);
        clock.advance(NS);
        for _ in 0..4 {
            limiter.check(&1).unwrap(); // 4.29 cells per nanosecond
        }
        assert!(limiter.check(&1).is_err());
        clock.advance(SEC);
        limiter.retain_recent();
        assert!(limiter.is_empty());
    }

    /// A key whose `Hash` panics while the keyed state widens to 16 bytes
    /// leaves every key's state as it was: the widening once moved the keys
    /// out of the narrow map first, and a panic midway lost them all, so
    /// limited keys were let through again (from a review).
    #[test]
    fn a_hash_that_panics_while_the_state_widens_loses_no_key() {
        /// The key whose hash panics, while set.
        static TOUCHY: AtomicUsize = AtomicUsize::new(usize::MAX);
        #[derive(Clone, PartialEq, Eq)]
        struct Key(usize);
        impl std::hash::Hash for Key {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                assert_ne!(
                    TOUCHY.load(Ordering::SeqCst),
                    self.0,
                    "expected panic: in a key's hash"
                );
                self.0.hash(state);
            }
        }
        crate::common::quiet_expected_panics();
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::with_timer(Quota::per_minute(1), clock.clone());
        // Near the clock's end, where a full bucket needs more than 8 bytes.
        clock.advance(Duration::from_nanos(u64::MAX) - 70 * SEC);
        let limited = Key(1);
        limiter.check(&limited).unwrap();
        assert!(limiter.check(&limited).is_err());
        clock.advance(40 * SEC);
        TOUCHY.store(1, Ordering::SeqCst);
        let widened = std::panic::catch_unwind(|| limiter.check(&Key(2)));
        assert!(widened.is_err(), "the key's panic goes on to the caller");
        TOUCHY.store(usize::MAX, Ordering::SeqCst);
        assert_eq!(wait_of(limiter.check(&limited)), 20 * SEC);
        assert_eq!(limiter.len(), 1);
        limiter.check(&Key(2)).unwrap();
        assert_eq!(limiter.len(), 2);
    }

    /// An interval past 2^64 ticks (25 s a cell, in ticks of 1/4e9 ns),
    /// checked first at the limiter's first nanosecond: the keyed limiter's
    /// one-word path took the interval, clamped to a word, as exact, and let
    /// the second cell through after 4.6 s (from a review).
    #[test]
    fn keyed_intervals_past_a_word_are_exact_from_the_first_nanosecond() {
        let quota = Quota::new(4_000_000_000, Duration::new(100_000_000_000, 1)).burst(1);
        let clock = ManualClock::new();
        let direct = RateLimiter::with_timer(quota, clock.clone());
        let keyed = KeyedRateLimiter::with_timer(quota, clock.clone());
        direct.check().unwrap();
        keyed.check(&0).unwrap();
        let cell = Duration::new(25, 1);
        assert_eq!(wait_of(direct.check()), cell);
        assert_eq!(wait_of(keyed.check(&0)), cell);
        clock.advance(cell - NS);
        assert!(keyed.check(&0).is_err());
        clock.advance(NS);
        keyed.check(&0).unwrap();
        // A cell past the clock's end (584 years): the second never comes.
        let never = Quota::new(3, Duration::from_nanos(u64::MAX) * 4).burst(1);
        let clock = ManualClock::new();
        let keyed = KeyedRateLimiter::with_timer(never, clock.clone());
        keyed.check(&0).unwrap();
        assert_eq!(wait_of(keyed.check(&0)), Duration::MAX);
    }

    #[test]
    fn keyed_waiters_are_fifo_per_key_and_give_back() {
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::with_timer(Quota::per_second(10).burst(1), clock.clone());
        limiter.check(&1).unwrap();
        let (counters, wakers, log) = counters(4);
        let mut a = Box::pin(limiter.acquire(&1));
        let mut b = Box::pin(limiter.acquire(&1));
        let mut c = Box::pin(limiter.acquire(&1));
        assert!(poll(&mut a, &wakers[0]).is_pending());
        assert!(poll(&mut b, &wakers[1]).is_pending());
        assert!(poll(&mut c, &wakers[2]).is_pending());
        let mut other = Box::pin(limiter.acquire(&2));
        assert!(
            poll(&mut other, &wakers[3]).is_ready(),
            "another key does not wait"
        );
        drop(a); // the first of three: b and c move up 100 ms
        assert_eq!(
            std::mem::take(&mut *log.lock().unwrap()),
            [1],
            "b is woken at once to re-arm"
        );
        assert!(poll(&mut b, &wakers[1]).is_pending());
        clock.advance(100 * MS);
        assert!(poll(&mut b, &wakers[1]).is_ready(), "b took a's turn");
        assert!(poll(&mut c, &wakers[2]).is_pending());
        drop(b);
        clock.advance(100 * MS);
        assert!(poll(&mut c, &wakers[2]).is_ready(), "c took b's turn");
        assert!(limiter.check(&1).is_err(), "c took the cell");
        clock.advance(100 * MS);
        limiter.check(&1).unwrap();
        limiter.retain_recent();
        assert_eq!(
            limiter.len(),
            1,
            "key 1 is booked ahead, key 2 is full again"
        );
        let wakes: Vec<usize> = counters
            .iter()
            .map(|c| c.wakes.load(Ordering::SeqCst))
            .collect();
        assert_eq!(
            wakes,
            [0, 2, 2, 0],
            "b and c each woken once to re-arm, then once by its timer"
        );
    }

    #[global_allocator]
    static ALLOCATOR: crate::common::Counting = crate::common::Counting;

    /// Net bytes allocated by this thread: other tests' threads do not count.
    fn held() -> isize {
        crate::common::Counting::held()
    }

    #[test]
    fn a_million_keys_and_their_queues_retained_away_leave_nothing_behind() {
        let clock = ManualClock::new();
        let limiter = KeyedRateLimiter::with_timer(Quota::per_second(10), clock.clone());
        let baseline = held();
        for key in 0..1_000_000u64 {
            limiter.check(&key).unwrap();
        }
        let full = held() - baseline;
        assert_eq!(limiter.len(), 1_000_000);
        assert!(full < 64 * 1_000_000, "{full} bytes for a million keys");

        // Half of them used again: those stay, the rest go.
        clock.advance(50 * MS);
        for key in 0..500_000u64 {
            limiter.check(&key).unwrap();
        }
        clock.advance(60 * MS);
        limiter.retain_recent();
        assert_eq!(limiter.len(), 500_000);

        // Waiters on 100,000 of them, each key with a queue: half dropped
        // before their turn, half served.
        let mut turns: Vec<_> = (0..100_000u64)
            .map(|key| Box::pin(limiter.acquire_n(&key, 10)))
            .collect();
        for turn in &mut turns {
            assert!(poll(turn, Waker::noop()).is_pending());
        }
        let mut served: Vec<_> = turns.into_iter().step_by(2).collect();
        clock.advance(SEC);
        for turn in &mut served {
            assert!(poll(turn, Waker::noop()).is_ready());
        }
        drop(served);

        clock.advance(SEC);
        limiter.retain_recent();
        assert_eq!(limiter.len(), 0);
        let left = held() - baseline;
        assert!(
            left < 4096,
            "{left} bytes held after every key was retained away"
        );
    }

    // SlidingWindow

    #[test]
    fn window_allows_n_in_any_window() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(3, 10 * SEC, clock.clone());
        window.check().unwrap(); // 0 s
        clock.advance(4 * SEC);
        window.check_n(2).unwrap(); // 4 s
        assert_eq!(wait_of(window.check()), 6 * SEC);
        clock.advance(6 * SEC - NS);
        assert!(window.check().is_err());
        clock.advance(NS); // 10 s: the first left the window
        window.check().unwrap();
        assert_eq!(
            wait_of(window.check()),
            4 * SEC,
            "the pair at 4 s leaves at 14 s"
        );
        match window.check_n(3) {
            Err(RateLimited::NotUntil(refused)) => assert_eq!(refused.wait_time(), 10 * SEC),
            other => panic!("expected NotUntil, got {other:?}"),
        }
        assert_eq!(window.check_n(4), Err(RateLimited::InsufficientCapacity(3)));
    }

    /// A long random run, checked over every window: at most `limit` events
    /// in any window of `period`, and no refusal that was not needed.
    #[test]
    fn window_is_strict_over_every_window() {
        let clock = ManualClock::new();
        let (limit, period) = (5u32, 1_000u64);
        let window = SlidingWindow::with_timer(limit, Duration::from_nanos(period), clock.clone());
        let mut rng = fastrand::Rng::with_seed(7);
        let mut events: Vec<u64> = Vec::new();
        for _ in 0..200_000 {
            clock.advance(Duration::from_nanos(rng.u64(0..=300)));
            let n = rng.u32(1..=limit);
            let now = clock.elapsed().as_nanos() as u64;
            let in_window = events
                .iter()
                .rev()
                .take_while(|&&at| at + period > now)
                .count() as u32;
            match window.check_n(n) {
                Ok(()) => events.extend(std::iter::repeat_n(now, n as usize)),
                Err(_) => assert!(
                    in_window + n > limit,
                    "refused with {in_window} in the window, asking {n}"
                ),
            }
        }
        assert!(
            events.len() > 10_000,
            "the run admitted {} events",
            events.len()
        );
        assert_strict(&events, limit, period);
    }

    /// At most `limit` of the sorted `events` in any window of `period`.
    fn assert_strict(events: &[u64], limit: u32, period: u64) {
        let mut end = 0;
        for (start, &at) in events.iter().enumerate() {
            while end < events.len() && events[end] < at.saturating_add(period) {
                end += 1;
            }
            assert!(
                end - start <= limit as usize,
                "{} events in [{at}, {})",
                end - start,
                at.saturating_add(period)
            );
        }
    }

    /// The same with waiters: some booked, some dropped before their time
    /// (giving their events back, and the waiters behind them moving up),
    /// the rest polled every nanosecond so that each is seen served at its
    /// booked time; checks in between. Every answer and every booked time
    /// matches the rule applied to a plain list of the events and bookings,
    /// with every waiter behind a dropped one booked again in turn, so a
    /// give-back that frees too little fails too, not only one that frees
    /// too much, and so does a waiter left behind that could have moved.
    #[test]
    fn window_with_waiters_is_strict_over_every_window() {
        for seed in 0..200 {
            let (mut rng, limit, period, clock, window) = seeded(seed, 1..=6, 1..=120);
            // When each event went ahead, for the strictness check.
            let mut events: Vec<u64> = Vec::new();
            // The model: the times of the admitted events less than a
            // period old, and each waiter's booked time and size, in the
            // order they booked.
            let mut admitted: Vec<u64> = Vec::new();
            let mut waiters: Vec<(u64, u32, Acquiring<'_>)> = Vec::new();
            let earliest = |kept: &[u64], now: u64, n: u32| fits(limit, period, kept, now, n);
            let kept = |admitted: &[u64], waiters: &[(u64, u32, Acquiring<'_>)]| {
                let mut kept = admitted.to_vec();
                for (at, n, _) in waiters {
                    kept.extend(std::iter::repeat_n(*at, *n as usize));
                }
                kept
            };
            for _ in 0..400 {
                for _ in 0..rng.u64(0..=period / 2 + 1) {
                    clock.advance(NS);
                    let now = clock.elapsed().as_nanos() as u64;
                    admitted.retain(|&at| at + period > now);
                    for (at, n, waiter) in &mut waiters {
                        let ready = poll(waiter, Waker::noop()).is_ready();
                        assert_eq!(
                            ready,
                            *at <= now,
                            "seed {seed}: a waiter booked at {at}, at {now}"
                        );
                        if ready {
                            events.extend(std::iter::repeat_n(now, *n as usize));
                            admitted.extend(std::iter::repeat_n(now, *n as usize));
                        }
                    }
                    waiters.retain(|(at, _, _)| *at > now);
                }
                let now = clock.elapsed().as_nanos() as u64;
                let n = rng.u32(1..=limit);
                let at = earliest(&kept(&admitted, &waiters), now, n);
                match rng.u32(0..3) {
                    0 => {
                        let allowed = window.check_n(n).is_ok();
                        assert_eq!(allowed, at == now, "seed {seed}: {n} at {now}, model {at}");
                        if allowed {
                            events.extend(std::iter::repeat_n(now, n as usize));
                            admitted.extend(std::iter::repeat_n(now, n as usize));
                        }
                    }
                    1 => {
                        let mut waiter = Box::pin(window.acquire_n(n));
                        let ready = poll(&mut waiter, Waker::noop()).is_ready();
                        assert_eq!(ready, at == now, "seed {seed}: {n} at {now}, model {at}");
                        if ready {
                            events.extend(std::iter::repeat_n(now, n as usize));
                            admitted.extend(std::iter::repeat_n(now, n as usize));
                        } else {
                            waiters.push((at, n, waiter));
                        }
                    }
                    _ => {
                        if !waiters.is_empty() {
                            // Not served yet (those are gone): given back.
                            drop(waiters.remove(rng.usize(0..waiters.len())));
                            // Every waiter behind it books again, in turn,
                            // when polled; the model books them all again,
                            // as those the give-back cannot reach keep
                            // their times either way.
                            let mut ahead: Vec<u64> = admitted.clone();
                            for (at, n, waiter) in &mut waiters {
                                let moved = earliest(&ahead, now, *n);
                                assert!(moved <= *at, "seed {seed}: a waiter moved back");
                                *at = moved;
                                ahead.extend(std::iter::repeat_n(moved, *n as usize));
                                let ready = poll(waiter, Waker::noop()).is_ready();
                                assert_eq!(
                                    ready,
                                    moved <= now,
                                    "seed {seed}: a waiter moved up to {moved}, at {now}"
                                );
                                if ready {
                                    events.extend(std::iter::repeat_n(now, *n as usize));
                                    admitted.extend(std::iter::repeat_n(now, *n as usize));
                                }
                            }
                            waiters.retain(|(at, _, _)| *at > now);
                        }
                    }
                }
            }
            events.sort_unstable();
            assert!(events.len() > 20, "seed {seed}: {} events", events.len());
            assert_strict(&events, limit, period);
        }
    }

    /// A window model test's random start: a generator, a limit in
    /// `limits`, a period in `periods` nanoseconds, a manual clock and a
    /// window on it.
    fn seeded(
        seed: u64,
        limits: std::ops::RangeInclusive<u32>,
        periods: std::ops::RangeInclusive<u64>,
    ) -> (
        fastrand::Rng,
        u32,
        u64,
        ManualClock,
        SlidingWindow<ManualClock>,
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (limit, period) = (rng.u32(limits), rng.u64(periods));
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(limit, Duration::from_nanos(period), clock.clone());
        (rng, limit, period, clock, window)
    }

    /// The window's rule on a plain list: the first time at or after `now`
    /// (and every event in `kept`) that `n` more events fit behind `kept`;
    /// `u64::MAX` (the clock's end, which never comes) if none before it.
    fn fits(limit: u32, period: u64, kept: &[u64], now: u64, n: u32) -> u64 {
        let newest = kept.iter().copied().fold(now, u64::max);
        let must_pass = (limit - n) as usize; // the index of the (limit - n + 1)-th newest
        let mut newest_first = kept.to_vec();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        newest_first
            .get(must_pass)
            .map_or(newest, |&event| newest.max(event.saturating_add(period)))
    }

    /// A clock that moves 8 ns at every reading, whose sleeps are done
    /// once it reads their deadline: a booking can come due between the
    /// reading it was made at and the first poll of its sleep.
    #[derive(Clone)]
    struct Ticking {
        base: std::time::Instant,
        reads: Arc<AtomicU64>,
    }

    struct TickingSleep {
        timer: Ticking,
        deadline: std::time::Instant,
    }

    impl Future for TickingSleep {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.timer.now() >= self.deadline {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl Timer for Ticking {
        type Sleep = TickingSleep;

        fn now(&self) -> std::time::Instant {
            self.base + Duration::from_nanos(8 * self.reads.fetch_add(1, Ordering::SeqCst))
        }

        fn sleep_until(&self, deadline: std::time::Instant) -> TickingSleep {
            TickingSleep {
                timer: self.clone(),
                deadline,
            }
        }
    }

    /// A waiter whose sleep is due at its first poll is served there (it
    /// deadlocked on the window's own lock, from a review).
    #[test]
    fn window_waiter_due_at_its_first_poll_is_served() {
        // On a thread of its own, so that a deadlock fails the test.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let clock = Ticking {
                base: std::time::Instant::now(),
                reads: Arc::new(AtomicU64::new(0)),
            };
            for period in [10, 16, 17, 40] {
                let window =
                    SlidingWindow::with_timer(1, Duration::from_nanos(period), clock.clone());
                window.check().unwrap();
                let mut waiter = Box::pin(window.acquire());
                let mut polls = 0;
                while poll(&mut waiter, Waker::noop()).is_pending() {
                    polls += 1;
                    assert!(polls < 100, "period {period}: never served");
                }
            }
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("served, not deadlocked");
    }

    /// One waiter per waker, each booked behind the one before.
    fn queued<'a>(
        window: &'a SlidingWindow<ManualClock>,
        wakers: &[Waker],
    ) -> Vec<Pin<Box<WindowAcquire<'a, ManualClock>>>> {
        let mut waiters: Vec<_> = wakers.iter().map(|_| Box::pin(window.acquire())).collect();
        for (waiter, waker) in waiters.iter_mut().zip(wakers) {
            assert!(poll(waiter, waker).is_pending());
        }
        waiters
    }

    /// Waiters that poll late, or not at all for a while: drops made while
    /// the re-booking of an earlier one has not reached them, drops of the
    /// waiter due to re-book next, new waiters booking meanwhile. Once every
    /// woken waiter has polled, each waiter's time is the one the rule
    /// gives when every waiter books again in order; then time runs on and
    /// each is served exactly then.
    #[test]
    fn window_waiters_move_up_however_late_they_poll() {
        for seed in 0..300 {
            lazy_waiters_model(seed, false);
        }
    }

    /// The same from just before the clock's end, with periods that end
    /// past it, right at it or well before it: times past the end never
    /// come, and only give-backs move the waiters booked there.
    #[test]
    fn window_waiters_at_the_clocks_end_move_up_however_late_they_poll() {
        for seed in 0..300 {
            lazy_waiters_model(seed, true);
        }
    }

    /// One run of the lazy-waiter model, from the origin or from a little
    /// before the clock's end.
    fn lazy_waiters_model(seed: u64, near_the_end: bool) {
        struct Lazy<'a> {
            n: u32,
            waiter: Acquiring<'a>,
            counter: Arc<Counter>,
            waker: Waker,
            seen: usize,
        }
        let (mut rng, limit, mut period, clock, mut window) = seeded(seed, 1..=5, 1..=60);
        if near_the_end {
            period = match rng.u32(0..3) {
                0 => period,
                1 => u64::MAX,
                _ => u64::MAX - rng.u64(0..=120),
            };
            window = SlidingWindow::with_timer(limit, Duration::from_nanos(period), clock.clone());
            clock.advance(Duration::from_nanos(u64::MAX - 1 - rng.u64(0..=120)));
        }
        // The window's clock stops a nanosecond short of its end.
        let read = || clock.elapsed().as_nanos().min(u128::from(u64::MAX - 1)) as u64;
        let earliest = |kept: &[u64], now: u64, n: u32| fits(limit, period, kept, now, n);
        let (mut events, mut admitted) = (Vec::new(), Vec::new());
        let mut waiters: Vec<Lazy<'_>> = Vec::new();
        let mut made = 0;
        for _ in 0..30 {
            let now = read();
            admitted.retain(|&at: &u64| at.saturating_add(period) > now);
            // Polls waiter `index`; whether it was served (now).
            let mut serve = |waiter: &mut Lazy<'_>| {
                waiter.seen = waiter.counter.wakes.load(Ordering::SeqCst);
                let ready = poll(&mut waiter.waiter, &waiter.waker).is_ready();
                if ready {
                    events.extend(std::iter::repeat_n(now, waiter.n as usize));
                    admitted.extend(std::iter::repeat_n(now, waiter.n as usize));
                }
                ready
            };
            for _ in 0..rng.usize(1..12) {
                match rng.u32(0..3) {
                    0 => {
                        let n = rng.u32(1..=limit);
                        let (counters, wakers, _) = counters(1);
                        let mut waiter = Lazy {
                            n,
                            waiter: Box::pin(window.acquire_n(n)),
                            counter: counters[0].clone(),
                            waker: wakers[0].clone(),
                            seen: 0,
                        };
                        made += 1;
                        if !serve(&mut waiter) {
                            waiters.push(waiter);
                        }
                    }
                    1 if !waiters.is_empty() => {
                        drop(waiters.remove(rng.usize(0..waiters.len())));
                    }
                    _ => {
                        // Some woken waiter polls, or none does.
                        let woken: Vec<usize> = (0..waiters.len())
                            .filter(|&i| {
                                waiters[i].counter.wakes.load(Ordering::SeqCst) > waiters[i].seen
                            })
                            .collect();
                        if !woken.is_empty() && rng.bool() {
                            let index = woken[rng.usize(0..woken.len())];
                            if serve(&mut waiters[index]) {
                                waiters.remove(index);
                            }
                        }
                    }
                }
            }
            // Every woken waiter polls, until none is woken.
            loop {
                let woken = (0..waiters.len())
                    .find(|&i| waiters[i].counter.wakes.load(Ordering::SeqCst) > waiters[i].seen);
                let Some(index) = woken else { break };
                if serve(&mut waiters[index]) {
                    waiters.remove(index);
                }
            }
            // The times the rule gives, every waiter booking again.
            let mut ahead = admitted.clone();
            let mut times = Vec::new();
            for waiter in &waiters {
                let at = earliest(&ahead, now, waiter.n);
                ahead.extend(std::iter::repeat_n(at, waiter.n as usize));
                times.push(at);
            }
            // Time runs on; a few of them are served, each exactly at
            // its time.
            for _ in 0..rng.u64(0..=period.min(120)) {
                clock.advance(NS);
                let now = read();
                let mut index = 0;
                while index < waiters.len() {
                    let waiter = &mut waiters[index];
                    let ready = poll(&mut waiter.waiter, &waiter.waker).is_ready();
                    waiter.seen = waiter.counter.wakes.load(Ordering::SeqCst);
                    assert_eq!(
                        ready,
                        times[index] <= now,
                        "seed {seed}: a waiter due at {}, at {now}",
                        times[index]
                    );
                    if ready {
                        events.extend(std::iter::repeat_n(now, waiter.n as usize));
                        admitted.extend(std::iter::repeat_n(now, waiter.n as usize));
                        waiters.remove(index);
                        times.remove(index);
                    } else {
                        index += 1;
                    }
                }
            }
        }
        assert!(made > 20, "seed {seed}: {made} waiters");
        events.sort_unstable();
        assert_strict(&events, limit, period);
    }

    /// A waiter due to re-book whose time comes before it polls is served
    /// at its old time, and passes the re-booking on: with two events per
    /// 10 s, one dropped at 10 s lets the one behind a served waiter move
    /// from 20 s to 10 s.
    #[test]
    fn window_rebooking_passes_a_waiter_served_late() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(2, 10 * SEC, clock.clone());
        window.check_n(2).unwrap();
        let (counters, wakers, log) = counters(4);
        let mut waiters = queued(&window, &wakers[..4]);
        // Booked at 10, 10, 20 and 20 s. The first is dropped: the second
        // is woken to re-book, but does not poll before its time.
        drop(waiters.remove(0));
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [1]);
        clock.advance(10 * SEC);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [1], "its timer");
        assert!(poll(&mut waiters[0], &wakers[1]).is_ready());
        // Served at 10 s, it woke the next, which now fits at 10 s too.
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [2]);
        assert!(poll(&mut waiters[1], &wakers[2]).is_ready());
        // The last stays at 20 s: two events at 10 s fill its window.
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [3]);
        assert!(poll(&mut waiters[2], &wakers[3]).is_pending());
        clock.advance(10 * SEC - NS);
        assert!(poll(&mut waiters[2], &wakers[3]).is_pending());
        clock.advance(NS);
        assert!(poll(&mut waiters[2], &wakers[3]).is_ready());
        assert_eq!(
            counters[3].wakes.load(Ordering::SeqCst),
            2,
            "re-book, then its timer"
        );
    }

    /// Each waiter behind a dropped one moves up, woken once to re-book and
    /// once by its timer; new bookings go behind the moved ones.
    #[test]
    fn window_waiters_move_up_behind_a_dropped_one() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(1, SEC, clock.clone());
        window.check().unwrap();
        let (counters, wakers, log) = counters(4);
        let mut waiters = queued(&window, &wakers[..3]);
        // Booked at 1, 2 and 3 s.
        drop(waiters.remove(0));
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [1]);
        assert!(poll(&mut waiters[0], &wakers[1]).is_pending());
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [2]);
        assert!(poll(&mut waiters[1], &wakers[2]).is_pending());
        assert!(log.lock().unwrap().is_empty(), "nobody behind the last");
        let mut late = Box::pin(window.acquire());
        assert!(poll(&mut late, &wakers[3]).is_pending());
        // Now at 1, 2 and 3 s: each is served then, not a second later.
        let mut pending: Vec<_> = waiters.into_iter().zip(&wakers[1..3]).collect();
        pending.push((late, &wakers[3]));
        for second in 1..=3 {
            clock.advance(SEC - NS);
            for (waiter, waker) in &mut pending {
                assert!(poll(waiter, waker).is_pending(), "before {second} s");
            }
            clock.advance(NS);
            let (mut first, waker) = pending.remove(0);
            assert!(poll(&mut first, waker).is_ready(), "at {second} s");
        }
        for counter in &counters[1..3] {
            assert_eq!(counter.wakes.load(Ordering::SeqCst), 2);
        }
        assert_eq!(counters[3].wakes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn window_waiters_are_fifo_and_give_back() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(2, SEC, clock.clone());
        window.check_n(2).unwrap();
        let (counters, wakers, log) = counters(4);
        let mut waiters = queued(&window, &wakers[..4]);
        assert!(
            window.check().is_err(),
            "check never takes a waiter's place"
        );
        clock.advance(SEC);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [0, 1]);
        for index in [0, 1] {
            assert!(poll(&mut waiters[index], &wakers[index]).is_ready());
        }
        // The last one gives up: its place goes back to `check` at 2 s.
        drop(waiters.pop());
        clock.advance(SEC);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [2]);
        assert!(poll(&mut waiters[2], &wakers[2]).is_ready());
        window.check().unwrap();
        assert!(window.check().is_err());
        for counter in &counters[..3] {
            assert_eq!(counter.wakes.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn window_throttle() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(2, SEC, clock.clone());
        let mut paced = Box::pin(throttle(futures_lite::stream::iter(0..3), &window));
        assert_eq!(next(&mut paced), Some(Some(0)));
        assert_eq!(next(&mut paced), Some(Some(1)));
        assert_eq!(next(&mut paced), None);
        clock.advance(SEC);
        assert_eq!(next(&mut paced), Some(Some(2)));
    }

    #[test]
    fn window_with_huge_limits_and_periods() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(u32::MAX, Duration::MAX, clock.clone());
        window.check_n(u32::MAX).unwrap();
        let refused = window.check().unwrap_err();
        assert!(refused.wait_time() > 500 * YEAR);
        clock.advance(100 * YEAR);
        assert!(window.check().is_err());
    }

    /// A waiter booked before the clock's end for a time past it is never
    /// served, however far the timer goes: the time never comes for the
    /// limiter. One booked before the end is served.
    #[test]
    fn a_booking_past_the_clocks_end_is_never_served() {
        let clock = ManualClock::new();
        let quota = Quota::new(1, 400 * YEAR).burst(1);
        let direct = RateLimiter::with_timer(quota, clock.clone());
        let keyed = KeyedRateLimiter::with_timer(quota, clock.clone());
        direct.check().unwrap();
        keyed.check(&1).unwrap();
        let (_, wakers, _) = counters(1);
        // Booked at 400 years, and at 800: past the end.
        let mut turns: Vec<Pin<Box<dyn Future<Output = ()>>>> = vec![
            Box::pin(direct.acquire()),
            Box::pin(direct.acquire()),
            Box::pin(keyed.acquire(&1)),
            Box::pin(keyed.acquire(&1)),
        ];
        for turn in &mut turns {
            assert!(poll(turn, &wakers[0]).is_pending());
        }
        clock.advance(900 * YEAR);
        let ready: Vec<bool> = turns
            .iter_mut()
            .map(|turn| poll(turn, &wakers[0]).is_ready())
            .collect();
        assert_eq!(ready, [true, false, true, false]);
    }

    /// A waker whose `clone` panics as a waiter books leaves no booking
    /// behind: the cells stay free (they stayed taken with nobody waiting
    /// for them, and dropping the future gave nothing back; from a review).
    #[test]
    fn a_waker_whose_clone_panics_books_nothing() {
        static ARMED: AtomicBool = AtomicBool::new(false);
        crate::common::quiet_expected_panics();
        let waker = crate::common::clone_panics(&ARMED);
        let clock = ManualClock::new();
        let quota = Quota::per_second(10).burst(1);
        let direct = RateLimiter::with_timer(quota, clock.clone());
        let keyed = KeyedRateLimiter::with_timer(quota, clock.clone());
        direct.check().unwrap();
        keyed.check(&1).unwrap();
        ARMED.store(true, Ordering::SeqCst);
        let mut one = Box::pin(direct.acquire());
        let mut other = Box::pin(keyed.acquire(&1));
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll(&mut one, &waker)));
        assert!(polled.is_err());
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll(&mut other, &waker)));
        assert!(polled.is_err());
        ARMED.store(false, Ordering::SeqCst);
        drop((one, other));
        clock.advance(100 * MS);
        assert!(
            direct.check().is_ok(),
            "a booking with no waiter kept the cell"
        );
        assert!(
            keyed.check(&1).is_ok(),
            "a keyed booking with no waiter kept the cell"
        );
    }

    /// The window's clock ends 584 years after it was made: time then
    /// stands still, and nothing past the limit is admitted however far
    /// the timer moves on. (Every check was admitted there: the saturated
    /// reading passed every saturated period end; from a review.)
    #[test]
    fn window_at_the_clocks_end_admits_no_more_than_its_limit() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(1, SEC, clock.clone());
        clock.advance(600 * YEAR);
        window.check().unwrap();
        assert_eq!(wait_of(window.check()), Duration::MAX, "refused for good");
        clock.advance(YEAR);
        assert!(window.check().is_err());
    }

    /// The GCRA limiters' clock ends 584 years after they were made, too:
    /// time stands still there. A waiter is not served because its timer
    /// fired (every sleep past the end fires at once, and every acquire
    /// was admitted), and a refusal is for good (its `wait_time` said a
    /// second, and the check made a second later was refused; from a
    /// review).
    #[test]
    fn limiters_at_the_clocks_end_admit_no_more_than_the_burst() {
        let clock = ManualClock::new();
        let direct = RateLimiter::with_timer(Quota::per_second(1), clock.clone());
        let keyed = KeyedRateLimiter::with_timer(Quota::per_second(1), clock.clone());
        clock.advance(600 * YEAR);
        let (_, wakers, _) = counters(2);
        let mut admitted = 0;
        let mut waiting = Vec::new();
        for _ in 0..100 {
            let mut one: Pin<Box<dyn Future<Output = ()>>> = Box::pin(direct.acquire());
            let mut other: Pin<Box<dyn Future<Output = ()>>> = Box::pin(keyed.acquire(&1));
            admitted += usize::from(poll(&mut one, &wakers[0]).is_ready());
            admitted += usize::from(poll(&mut other, &wakers[1]).is_ready());
            waiting.extend([one, other]);
        }
        assert_eq!(admitted, 2, "one each: the burst");
        clock.advance(YEAR);
        for (index, waiter) in waiting.iter_mut().enumerate() {
            assert!(poll(waiter, &wakers[index % 2]).is_pending());
        }
        assert_eq!(wait_of(direct.check()), Duration::MAX);
        assert_eq!(keyed.check(&1).unwrap_err().wait_time(), Duration::MAX);
    }

    /// A period that ends past the clock's end never ends: a waiter for it
    /// is not served when the timer moves centuries on, and a `wait_time`
    /// that would end there is `Duration::MAX` (it said 584 years; from a
    /// review), while one before the end is exact.
    #[test]
    fn window_periods_past_the_clocks_end() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(1, Duration::MAX, clock.clone());
        window.check().unwrap();
        let (_, wakers, _) = counters(1);
        let mut waiter = Box::pin(window.acquire());
        assert!(poll(&mut waiter, &wakers[0]).is_pending());
        clock.advance(600 * YEAR);
        assert!(poll(&mut waiter, &wakers[0]).is_pending());
        assert!(window.check().is_err());
        assert_eq!(wait_of(window.check()), Duration::MAX);

        let window = SlidingWindow::with_timer(1, 584 * YEAR, clock.clone());
        window.check().unwrap();
        assert_eq!(wait_of(window.check()), 584 * YEAR, "exact before the end");
        let window = SlidingWindow::with_timer(1, 585 * YEAR, clock.clone());
        window.check().unwrap();
        assert_eq!(wait_of(window.check()), Duration::MAX, "never past the end");
    }

    /// A waiter booked past the clock's end moves up when the one ahead of
    /// it gives way.
    #[test]
    fn window_booking_past_the_end_moves_up_when_one_ahead_leaves() {
        let clock = ManualClock::new();
        let window = SlidingWindow::with_timer(2, Duration::MAX, clock.clone());
        window.check().unwrap();
        let (counters, wakers, _) = counters(2);
        let mut both = Box::pin(window.acquire_n(2));
        assert!(poll(&mut both, &wakers[0]).is_pending());
        let mut one = Box::pin(window.acquire());
        assert!(poll(&mut one, &wakers[1]).is_pending());
        drop(both);
        assert_eq!(counters[1].wakes.load(Ordering::SeqCst), 1);
        assert!(matches!(poll(&mut one, &wakers[1]), Poll::Ready(())));
        assert!(window.check().is_err());
    }

    #[test]
    fn handles_are_send_sync_and_clones_share() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let clock = ManualClock::new();
        let limiter = RateLimiter::with_timer(Quota::per_second(1), clock.clone());
        let keyed = KeyedRateLimiter::<String, _>::with_timer(Quota::per_second(1), clock.clone());
        let window = SlidingWindow::with_timer(1, SEC, clock.clone());
        send_sync(&limiter);
        send_sync(&keyed);
        send_sync(&window);
        send(&limiter.acquire());
        send(&keyed.acquire(&String::new()));
        send(&window.acquire());
        send(&throttle(futures_lite::stream::iter([1]), &limiter));
        let clone = limiter.clone();
        clone.check().unwrap();
        assert!(limiter.check().is_err(), "clones share one limit");
        assert!(format!("{limiter:?}").contains("RateLimiter"));
    }
}

/// Real time, on every runtime: waiting really waits, and completes.
#[allow(dead_code)]
mod suite {
    use crate::common::within;
    use futures_lite::StreamExt as _;
    use futures_lite::future;
    use portasync::rt::Runtime;
    use portasync::{KeyedRateLimiter, Quota, RateLimiter, SlidingWindow, throttle};
    use std::time::{Duration, Instant};

    pub(crate) async fn acquire_waits_for_the_rate<R: Runtime>(rt: R) {
        let wall = Instant::now();
        let limiter = RateLimiter::with_timer(Quota::per_second(50).burst(1), rt.clone());
        for _ in 0..4 {
            within(limiter.acquire()).await;
        }
        assert!(
            wall.elapsed() >= Duration::from_millis(60),
            "4 cells at 50/s take 60 ms"
        );

        let wall = Instant::now();
        let window = SlidingWindow::with_timer(2, Duration::from_millis(30), rt);
        for _ in 0..4 {
            within(window.acquire()).await;
        }
        assert!(wall.elapsed() >= Duration::from_millis(30));
    }

    pub(crate) async fn waiters_on_other_tasks_all_complete<R: Runtime>(rt: R) {
        let wall = Instant::now();
        let limiter = RateLimiter::with_timer(Quota::per_second(200).burst(1), rt.clone());
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let limiter = limiter.clone();
                rt.spawn(async move { limiter.acquire().await })
            })
            .collect();
        for task in tasks {
            within(task).await.unwrap();
        }
        assert!(
            wall.elapsed() >= Duration::from_millis(45),
            "10 cells at 200/s take 45 ms"
        );
        assert_eq!(limiter.waiters(), 0);
    }

    pub(crate) async fn a_dropped_waiter_lets_the_next_one_move_up<R: Runtime>(rt: R) {
        let limiter = RateLimiter::with_timer(Quota::per_second(4).burst(1), rt.clone());
        limiter.check().unwrap();
        next_moves_up(|| limiter.acquire(), || Some(limiter.waiters())).await;
        assert_eq!(limiter.waiters(), 0);
        let keyed = KeyedRateLimiter::with_timer(Quota::per_second(4).burst(1), rt.clone());
        keyed.check(&1).unwrap();
        next_moves_up(|| keyed.acquire(&1), || None).await;
        let window = SlidingWindow::with_timer(1, Duration::from_millis(250), rt);
        window.check().unwrap();
        next_moves_up(|| window.acquire(), || None).await;
    }

    /// With a bucket just emptied at 4 per second: the first waiter books
    /// 250 ms ahead and is dropped; the second, booked at 500 ms, is woken
    /// to re-arm its sleep on this runtime's timer, and is served from
    /// 250 ms on. `waiters` counts the queue, where the limiter can.
    async fn next_moves_up<F: std::future::Future<Output = ()>>(
        acquire: impl Fn() -> F,
        waiters: impl Fn() -> Option<usize>,
    ) {
        let wall = Instant::now();
        let first = future::poll_once(acquire()).await;
        let mut second = Box::pin(acquire());
        let second_waits = future::poll_once(&mut second).await.is_none();
        let waiting = waiters();
        // Unless this thread stalled for most of that (a loaded machine),
        // the bookings stand as made.
        if wall.elapsed() < Duration::from_millis(200) {
            assert!(first.is_none());
            assert!(second_waits);
            assert!(waiting.is_none_or(|waiting| waiting == 1));
        }
        within(second).await;
        assert!(wall.elapsed() >= Duration::from_millis(250));
    }

    pub(crate) async fn keyed_and_throttled_waits_complete<R: Runtime>(rt: R) {
        let wall = Instant::now();
        let keyed = KeyedRateLimiter::with_timer(Quota::per_second(50).burst(1), rt.clone());
        for _ in 0..3 {
            within(keyed.acquire(&"key")).await;
        }
        assert!(
            wall.elapsed() >= Duration::from_millis(40),
            "3 cells of one key at 50/s take 40 ms"
        );

        let wall = Instant::now();
        let limiter = RateLimiter::with_timer(Quota::per_second(50).burst(1), rt);
        let items: Vec<u8> =
            within(throttle(futures_lite::stream::iter(0..3), &limiter).collect()).await;
        assert_eq!(items, [0, 1, 2]);
        assert!(
            wall.elapsed() >= Duration::from_millis(40),
            "3 items at 50/s take 40 ms"
        );
    }
}

#[allow(unused_macros)] // with no runtime feature there is nothing to run it on
macro_rules! rate_suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use crate::common::Harness;
            rate_suite!(@tests $harness;
                acquire_waits_for_the_rate,
                waiters_on_other_tasks_all_complete,
                a_dropped_waiter_lets_the_next_one_move_up,
                keyed_and_throttled_waits_complete
            );
        }
    };
    (@tests $harness:ty; $($test:ident),*) => {
        $( #[test] fn $test() { <$harness>::run(crate::suite::$test); } )*
    };
}

#[cfg(feature = "smol")]
rate_suite!(smol, crate::common::SmolGlobal);
#[cfg(feature = "tokio")]
rate_suite!(tokio, crate::common::Tokio);
#[cfg(feature = "async-std")]
rate_suite!(async_std, crate::common::AsyncStd);
#[cfg(any(feature = "smol", feature = "async-std"))]
rate_suite!(auto_outside_tokio, crate::common::AutoOutsideTokio);
#[cfg(feature = "tokio")]
rate_suite!(auto_in_tokio, crate::common::AutoInTokio);

/// `Auto` on a tokio runtime that can pause time reads tokio's clock: the
/// limiters follow it, and an hour's wait passes at once.
#[cfg(feature = "tokio")]
#[test]
fn auto_limiters_follow_paused_tokio_time() {
    use crate::common::within;
    use portasync::{Quota, RateLimiter, SlidingWindow};
    use std::time::{Duration, Instant};

    crate::common::paused_tokio_runtime().block_on(async {
        let wall = Instant::now();
        let start = ::tokio::time::Instant::now();
        let limiter = RateLimiter::new(Quota::per_hour(1));
        within(limiter.acquire()).await;
        within(limiter.acquire()).await;
        let window = SlidingWindow::new(1, Duration::from_secs(3600));
        within(window.acquire()).await;
        within(window.acquire()).await;
        assert!(start.elapsed() >= Duration::from_secs(3600));
        assert!(wall.elapsed() < Duration::from_secs(60));
    });
}
