//! `RetryBudget`: a cap on retries as a share of successes, after Finagle's
//! and tower's retry budgets.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tokens are counted in billionths: a ratio is kept to nine decimal
/// places (in thousandths, 0.0015 counted as 0.002 and 0.0004 as nothing).
const SCALE: i64 = 1_000_000_000;
/// The window is kept as this many buckets, each `ttl / BUCKETS` long.
const BUCKETS: usize = 10;

/// A budget that keeps retries to a share of recent successes, so a failing
/// dependency cannot turn into a retry storm.
///
/// Each success deposits `retry_ratio` tokens; each retry withdraws one; a
/// retry with no token left is refused and the call gives up with
/// [`StopReason::BudgetExhausted`](crate::StopReason::BudgetExhausted).
/// Tokens count for about `ttl`: the window is kept in ten buckets of
/// `ttl / 10`, so a deposit or withdrawal is forgotten between nine tenths
/// of `ttl` and `ttl` after it was made (tower's budget does the same).
/// The floor, `min_per_sec`, allows `min_per_sec` times `ttl` in seconds
/// retries per window even with no successes at all, so a quiet service
/// can still retry; it is an allowance per window, which may be spent in
/// one burst, not a rate. With a ratio of 0.1, retries add at most 10% to
/// the load (plus the floor), however many callers share the budget.
///
/// Clones share one budget: make one per dependency and hand it to every
/// call site, directly or through a [`RetryPolicy`](crate::RetryPolicy).
/// The clock is the one of the retry that uses it.
///
/// # Examples
///
/// ```
/// use portasync::{RetryBudget, RetryPolicy};
/// use std::time::Duration;
///
/// let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.2);
/// let policy = RetryPolicy::default().max_attempts(4).budget(budget);
/// # let _ = policy;
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

struct Shared {
    ttl: Duration,
    deposit: i64,
    /// The floor, in tokens per window.
    reserve: i64,
    window: Mutex<Window>,
}

struct Window {
    /// Net tokens per bucket: deposits minus withdrawals.
    buckets: [i64; BUCKETS],
    current: usize,
    /// When the current bucket started; `None` until first used.
    started: Option<Instant>,
}

impl RetryBudget {
    /// A budget where each success earns `retry_ratio` retries (kept to nine
    /// decimal places), tokens last `ttl`, and `min_per_sec` retries per
    /// second are always allowed.
    ///
    /// # Panics
    ///
    /// If `ttl` is zero, or `retry_ratio` is negative, NaN or above 1000.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::RetryBudget;
    /// use std::time::Duration;
    ///
    /// // At most 10% extra load from retries, plus one retry a second.
    /// let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.1);
    /// # let _ = budget;
    /// ```
    #[track_caller]
    pub fn new(ttl: Duration, min_per_sec: u32, retry_ratio: f64) -> Self {
        assert!(!ttl.is_zero(), "RetryBudget::new: `ttl` must be non-zero");
        assert!(
            (0.0..=1000.0).contains(&retry_ratio),
            "RetryBudget::new: `retry_ratio` must be between 0 and 1000, got {retry_ratio}"
        );
        let deposit = (retry_ratio * SCALE as f64).round() as i64;
        // The floor over one window, in billionths of a retry: per second
        // times the window in nanoseconds (u32::MAX per second over
        // `Duration::MAX` fits a u128), saturating below.
        let reserve = u128::from(min_per_sec) * ttl.as_nanos();
        let reserve = i64::try_from(reserve).unwrap_or(i64::MAX);
        let window = Window {
            buckets: [0; BUCKETS],
            current: 0,
            started: None,
        };
        Self {
            shared: Arc::new(Shared {
                ttl,
                deposit,
                reserve,
                window: Mutex::new(window),
            }),
        }
    }

    fn window(&self, now: Instant) -> MutexGuard<'_, Window> {
        let mut window = self
            .shared
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        window.rotate(now, self.shared.ttl / BUCKETS as u32);
        window
    }

    /// Records a success.
    pub(crate) fn deposit(&self, now: Instant) {
        let mut window = self.window(now);
        let current = window.current;
        window.buckets[current] = window.buckets[current].saturating_add(self.shared.deposit);
    }

    /// Takes one retry's token, if there is one.
    pub(crate) fn withdraw(&self, now: Instant) -> bool {
        let mut window = self.window(now);
        let balance = window
            .buckets
            .iter()
            .fold(self.shared.reserve, |sum, bucket| {
                sum.saturating_add(*bucket)
            });
        if balance < SCALE {
            return false;
        }
        let current = window.current;
        window.buckets[current] = window.buckets[current].saturating_sub(SCALE);
        true
    }
}

impl Window {
    /// Moves the window forward to `now`, forgetting buckets that aged out.
    fn rotate(&mut self, now: Instant, width: Duration) {
        let Some(started) = self.started else {
            self.started = Some(now);
            return;
        };
        let width = width.max(Duration::from_nanos(1));
        let elapsed = now.saturating_duration_since(started);
        let steps = elapsed.as_nanos() / width.as_nanos();
        if steps == 0 {
            return;
        }
        if steps >= BUCKETS as u128 {
            self.buckets = [0; BUCKETS];
        } else {
            for _ in 0..steps {
                self.current = (self.current + 1) % BUCKETS;
                self.buckets[self.current] = 0;
            }
        }
        // The bucket containing `now` starts a whole number of widths after
        // the old start (or at `now` when that does not fit an Instant).
        let advanced = u32::try_from(steps)
            .ok()
            .and_then(|steps| width.checked_mul(steps));
        self.started = Some(
            advanced
                .and_then(|by| started.checked_add(by))
                .unwrap_or(now),
        );
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ttl", &self.shared.ttl)
            .field("retry_ratio", &(self.shared.deposit as f64 / SCALE as f64))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::RetryBudget;
    use std::time::{Duration, Instant};

    #[test]
    fn floor_refills_per_window_and_deposits_earn_retries() {
        let start = Instant::now();
        let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.5);
        // The floor: 1 per second over a 10 s window.
        assert!((0..10).all(|_| budget.withdraw(start)));
        assert!(!budget.withdraw(start));
        // Two successes earn one retry.
        budget.deposit(start);
        assert!(!budget.withdraw(start));
        budget.deposit(start);
        assert!(budget.withdraw(start));
        assert!(!budget.withdraw(start));
        // Once the window has passed, the withdrawals are forgotten.
        let later = start + Duration::from_secs(10);
        assert!((0..10).all(|_| budget.withdraw(later)));
        assert!(!budget.withdraw(later));
    }

    /// A ratio is not rounded to thousandths: 0.0015 earned a retry per
    /// 500 successes instead of per 667, and 0.0004 none at all (from a
    /// review).
    #[test]
    fn small_ratios_are_kept() {
        let now = Instant::now();
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.0015);
        (0..1000).for_each(|_| budget.deposit(now));
        assert!(budget.withdraw(now), "1.5 tokens");
        assert!(!budget.withdraw(now), "half a token");
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.0004);
        (0..2499).for_each(|_| budget.deposit(now));
        assert!(!budget.withdraw(now), "just short of a token");
        budget.deposit(now);
        assert!(budget.withdraw(now));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let now = Instant::now();
        let budget = RetryBudget::new(Duration::MAX, u32::MAX, 1000.0);
        assert!(budget.withdraw(now));
        budget.deposit(now);
        let tiny = RetryBudget::new(Duration::from_nanos(1), 0, 0.0);
        assert!(!tiny.withdraw(now));
        assert!(!tiny.withdraw(now + Duration::from_secs(1_000_000_000)));
    }
}
