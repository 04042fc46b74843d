//! `Quota`: how many, per how long, with what burst.

use std::time::Duration;

/// A rate: `count` cells per `period`, with bursts of up to `burst` cells
/// (by default `count`).
///
/// A [`RateLimiter`](crate::RateLimiter) with this quota allows `burst`
/// cells at once when it has been idle, then one every `period / count`
/// (kept exactly, as a fraction of a nanosecond where it does not divide).
/// `Quota::per_second(10)` is aiolimiter's `AsyncLimiter(10, 1)` and
/// governor's `Quota::per_second(nonzero!(10u32))`.
///
/// # Examples
///
/// ```
/// use portasync::Quota;
/// use std::time::Duration;
///
/// let quota = Quota::per_minute(600).burst(20);
/// assert_eq!(quota.count(), 600);
/// assert_eq!(quota.period(), Duration::from_secs(60));
/// assert_eq!(quota.burst_size(), 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period: Duration,
    burst: u32,
}

/// The error of [`Quota::try_new`] and [`Quota::try_burst`]: a value that
/// makes no rate.
///
/// # Examples
///
/// ```
/// use portasync::{Quota, QuotaError};
/// use std::time::Duration;
///
/// assert_eq!(Quota::try_new(0, Duration::from_secs(1)), Err(QuotaError::ZeroCount));
/// assert_eq!(QuotaError::ZeroCount.to_string(), "quota count must be greater than zero");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The count was zero: nothing would ever be allowed.
    #[error("quota count must be greater than zero")]
    ZeroCount,
    /// The period was zero: no finite rate.
    #[error("quota period must be greater than zero")]
    ZeroPeriod,
    /// The burst was zero: nothing would ever be allowed.
    #[error("quota burst must be greater than zero")]
    ZeroBurst,
}

impl Quota {
    /// `n` per second.
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    ///
    /// assert_eq!(Quota::per_second(5).burst_size(), 5);
    /// ```
    #[track_caller]
    pub fn per_second(n: u32) -> Self {
        Self::checked(n, Duration::from_secs(1), "Quota::per_second")
    }

    /// `n` per minute.
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Quota::per_minute(30).period(), Duration::from_secs(60));
    /// ```
    #[track_caller]
    pub fn per_minute(n: u32) -> Self {
        Self::checked(n, Duration::from_secs(60), "Quota::per_minute")
    }

    /// `n` per hour.
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Quota::per_hour(1).period(), Duration::from_secs(3600));
    /// ```
    #[track_caller]
    pub fn per_hour(n: u32) -> Self {
        Self::checked(n, Duration::from_secs(3600), "Quota::per_hour")
    }

    /// `n` per `period`, any period from a nanosecond to `Duration::MAX`.
    /// For values read at run time, see [`try_new`](Self::try_new).
    ///
    /// # Panics
    ///
    /// If `n` or `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    /// use std::time::Duration;
    ///
    /// let quota = Quota::new(3, Duration::from_millis(100));
    /// assert_eq!(quota.count(), 3);
    /// ```
    #[track_caller]
    pub fn new(n: u32, period: Duration) -> Self {
        Self::checked(n, period, "Quota::new")
    }

    /// `n` per `period`, for values that come from run-time input.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ZeroCount`] if `n` is zero, [`QuotaError::ZeroPeriod`]
    /// if `period` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, QuotaError};
    /// use std::time::Duration;
    ///
    /// let per_second: u32 = "20".parse().unwrap();
    /// assert!(Quota::try_new(per_second, Duration::from_secs(1)).is_ok());
    /// assert_eq!(Quota::try_new(1, Duration::ZERO), Err(QuotaError::ZeroPeriod));
    /// ```
    pub fn try_new(n: u32, period: Duration) -> Result<Self, QuotaError> {
        if n == 0 {
            Err(QuotaError::ZeroCount)
        } else if period.is_zero() {
            Err(QuotaError::ZeroPeriod)
        } else {
            Ok(Self {
                count: n,
                period,
                burst: n,
            })
        }
    }

    #[track_caller]
    fn checked(n: u32, period: Duration, name: &str) -> Self {
        match Self::try_new(n, period) {
            Ok(quota) => quota,
            Err(QuotaError::ZeroPeriod) => panic!("{name}: `period` must be greater than zero"),
            Err(_) => panic!("{name}: `n` must be greater than zero"),
        }
    }

    /// The same rate, allowing up to `b` cells at once after an idle spell
    /// (the bucket's size). A burst of 1 spaces every cell evenly.
    ///
    /// # Panics
    ///
    /// If `b` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(Quota::per_second(100).burst(1));
    /// assert!(limiter.check().is_ok());
    /// assert!(limiter.check().is_err()); // the next one is 10 ms away
    /// ```
    #[must_use = "`burst` returns a new quota"]
    #[track_caller]
    pub fn burst(self, b: u32) -> Self {
        match self.try_burst(b) {
            Ok(quota) => quota,
            Err(_) => panic!("Quota::burst: `b` must be greater than zero"),
        }
    }

    /// [`burst`](Self::burst) for a value that comes from run-time input.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ZeroBurst`] if `b` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Quota, QuotaError};
    ///
    /// assert_eq!(Quota::per_second(1).try_burst(0), Err(QuotaError::ZeroBurst));
    /// assert_eq!(Quota::per_second(1).try_burst(4).unwrap().burst_size(), 4);
    /// ```
    pub fn try_burst(self, b: u32) -> Result<Self, QuotaError> {
        if b == 0 {
            Err(QuotaError::ZeroBurst)
        } else {
            Ok(Self { burst: b, ..self })
        }
    }

    /// Cells per [`period`](Self::period).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    ///
    /// assert_eq!(Quota::per_hour(7).count(), 7);
    /// ```
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period over which [`count`](Self::count) cells are allowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Quota::per_second(7).period(), Duration::from_secs(1));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The most cells allowed at once (the bucket's size).
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Quota;
    ///
    /// assert_eq!(Quota::per_second(7).burst_size(), 7);
    /// assert_eq!(Quota::per_second(7).burst(1).burst_size(), 1);
    /// ```
    pub fn burst_size(&self) -> u32 {
        self.burst
    }
}
