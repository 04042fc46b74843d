//! Backoff schedules and jitter.

use std::fmt;
use std::time::Duration;

/// How a delay is randomised, after the AWS Architecture Blog's
/// "Exponential Backoff And Jitter" (`d` is the schedule's delay, `cap` is
/// [`Backoff::max_delay`]):
///
/// | variant | delay |
/// |---|---|
/// | `None` | `d` |
/// | `Full` | uniform in `[0, d]` |
/// | `Equal` | `d / 2` + uniform in `[0, d / 2]` |
/// | `Decorrelated` | `min(cap, uniform in [initial, 3 × previous delay])`, starting from `initial` |
///
/// The default is `None`, as in backon and tenacity. **Use `Full` for a
/// fleet of clients** retrying the same service: it spreads their retries
/// out and does the least work overall. Whatever the jitter, a delay never
/// exceeds `max_delay`.
///
/// # Examples
///
/// ```
/// use portasync::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::Full).seed(7);
/// for delay in backoff.delays().take(5) {
///     assert!(delay <= Duration::from_millis(1600));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Jitter {
    /// The schedule's delays as they are.
    #[default]
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// `d / 2` plus uniform in `[0, d / 2]`.
    Equal,
    /// Uniform in `[initial, 3 × previous delay]`, capped; ignores the
    /// schedule's shape.
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Exponential { factor: f64 },
    Constant,
    Fibonacci,
}

/// A schedule of delays between attempts: exponential, constant or
/// Fibonacci, with an optional cap, jitter and seed.
///
/// Delays are computed without overflow or panic at any attempt count: a
/// delay that would exceed [`max_delay`](Self::max_delay) (by default
/// `Duration::MAX`, no cap) is the cap, and a growing schedule stays there.
/// An initial delay above the cap is clamped to it, and a shrinking
/// exponential schedule (a factor below 1) shrinks from the clamped delay.
///
/// # Examples
///
/// ```
/// use portasync::Backoff;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let delays: Vec<_> = Backoff::exponential(ms(100)).max_delay(ms(500)).delays().take(5).collect();
/// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
/// ```
#[derive(Clone, PartialEq)]
pub struct Backoff {
    shape: Shape,
    initial: Duration,
    max_delay: Duration,
    jitter: Jitter,
    seed: Option<u64>,
}

impl Backoff {
    /// `initial`, then each delay `factor` (default 2) times the last.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Backoff;
    /// use std::time::Duration;
    ///
    /// let s = Duration::from_secs;
    /// let delays: Vec<_> = Backoff::exponential(s(1)).factor(3.0).delays().take(3).collect();
    /// assert_eq!(delays, [s(1), s(3), s(9)]);
    /// ```
    pub fn exponential(initial: Duration) -> Self {
        Self::with_shape(Shape::Exponential { factor: 2.0 }, initial)
    }

    /// The same delay every time.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Backoff;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis(250);
    /// assert!(Backoff::constant(ms).delays().take(4).all(|d| d == ms));
    /// ```
    pub fn constant(delay: Duration) -> Self {
        Self::with_shape(Shape::Constant, delay)
    }

    /// `initial`, `initial`, then each delay the sum of the two before it:
    /// gentler growth than exponential.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Backoff;
    /// use std::time::Duration;
    ///
    /// let s = Duration::from_secs;
    /// let delays: Vec<_> = Backoff::fibonacci(s(1)).delays().take(6).collect();
    /// assert_eq!(delays, [s(1), s(1), s(2), s(3), s(5), s(8)]);
    /// ```
    pub fn fibonacci(initial: Duration) -> Self {
        Self::with_shape(Shape::Fibonacci, initial)
    }

    fn with_shape(shape: Shape, initial: Duration) -> Self {
        Self {
            shape,
            initial,
            max_delay: Duration::MAX,
            jitter: Jitter::None,
            seed: None,
        }
    }

    /// The growth factor of an exponential backoff (ignored by the others).
    /// A factor below 1 shrinks the delays; 0 makes every delay after the
    /// first zero.
    ///
    /// # Panics
    ///
    /// If `factor` is NaN, infinite or negative.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(10)).factor(1.5);
    /// assert_eq!(backoff.delays().nth(2), Some(Duration::from_micros(22_500)));
    /// ```
    #[track_caller]
    pub fn factor(mut self, factor: f64) -> Self {
        assert!(
            factor.is_finite() && factor >= 0.0,
            "Backoff::factor: `factor` must be finite and not negative, got {factor}"
        );
        if let Shape::Exponential { factor: current } = &mut self.shape {
            *current = factor;
        }
        self
    }

    /// The largest delay, jitter included: a hard cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, Jitter};
    /// use std::time::Duration;
    ///
    /// let cap = Duration::from_secs(2);
    /// let backoff = Backoff::exponential(Duration::from_secs(1)).max_delay(cap).jitter(Jitter::Equal);
    /// assert!(backoff.delays().take(50).all(|d| d <= cap));
    /// ```
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// How delays are randomised; see [`Jitter`].
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, Jitter};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::constant(Duration::from_secs(1)).jitter(Jitter::Full);
    /// assert!(backoff.delays().take(20).all(|d| d <= Duration::from_secs(1)));
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Seeds the jitter, so the same schedule comes out every time (for
    /// tests and reproducible runs). Without a seed each schedule draws its
    /// own.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::{Backoff, Jitter};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::Full).seed(42);
    /// let once: Vec<_> = backoff.delays().take(5).collect();
    /// let again: Vec<_> = backoff.delays().take(5).collect();
    /// assert_eq!(once, again);
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The delays, endlessly: the first is the delay before the second
    /// attempt. Never overflows or panics, never exceeds `max_delay`.
    ///
    /// # Examples
    ///
    /// ```
    /// use portasync::Backoff;
    /// use std::time::Duration;
    ///
    /// let mut delays = Backoff::exponential(Duration::from_secs(1)).delays();
    /// assert_eq!(delays.nth(10_000), Some(Duration::MAX)); // saturated, no panic
    /// ```
    pub fn delays(&self) -> Delays {
        let initial = self.initial.min(self.max_delay);
        let rng = match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Delays {
            shape: self.shape,
            max_delay: self.max_delay,
            jitter: self.jitter,
            initial,
            next: initial,
            fib_after: initial,
            exp_nanos: initial.as_nanos() as f64,
            previous_jittered: initial,
            rng,
        }
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Backoff");
        match self.shape {
            Shape::Exponential { factor } => {
                s.field("shape", &"exponential").field("factor", &factor)
            }
            Shape::Constant => s.field("shape", &"constant"),
            Shape::Fibonacci => s.field("shape", &"fibonacci"),
        };
        s.field("initial", &self.initial)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("seed", &self.seed)
            .finish()
    }
}

/// The endless iterator of a [`Backoff`]'s delays, from
/// [`Backoff::delays`].
///
/// # Examples
///
/// ```
/// use portasync::Backoff;
/// use std::time::Duration;
///
/// let mut delays = Backoff::constant(Duration::from_secs(1)).delays();
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// ```
#[derive(Clone)]
pub struct Delays {
    shape: Shape,
    max_delay: Duration,
    jitter: Jitter,
    initial: Duration,
    /// The schedule's next delay before jitter, already capped.
    next: Duration,
    /// For Fibonacci: the delay after `next`.
    fib_after: Duration,
    /// The exponential schedule in nanoseconds, kept as a float so a factor
    /// like 1.5 compounds exactly; saturates at infinity, harmlessly.
    exp_nanos: f64,
    /// For decorrelated jitter: the last delay handed out.
    previous_jittered: Duration,
    rng: fastrand::Rng,
}

impl Delays {
    fn advance(&mut self) {
        self.next = match self.shape {
            Shape::Constant => self.next,
            Shape::Fibonacci => {
                let after = self.next.saturating_add(self.fib_after).min(self.max_delay);
                std::mem::replace(&mut self.fib_after, after)
            }
            Shape::Exponential { factor } => {
                self.exp_nanos *= factor;
                // The float keeps 53 bits: above 2^53 ns (104 days) a
                // delay read back from it can come out a little off, so it
                // is held to the factor's direction (a growing schedule
                // shrank by a nanosecond, up to minutes near the top of
                // `Duration`; from a review).
                let grown = nanos_to_duration(self.exp_nanos);
                let grown = if factor > 1.0 {
                    grown.max(self.next)
                } else if factor < 1.0 {
                    grown.min(self.next)
                } else {
                    self.next
                };
                grown.min(self.max_delay)
            }
        };
    }

    fn uniform(&mut self, low: Duration, high: Duration) -> Duration {
        if high <= low {
            return low;
        }
        let nanos = self.rng.u128(low.as_nanos()..=high.as_nanos());
        from_nanos(nanos)
    }
}

/// A float number of nanoseconds as a duration, saturating (NaN is zero).
fn nanos_to_duration(nanos: f64) -> Duration {
    if nanos.is_nan() || nanos <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(nanos / 1e9).unwrap_or(Duration::MAX)
    }
}

/// Nanoseconds as a duration; the value always came from a `Duration`, so
/// it fits.
fn from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

// By hand: the generator's state is no business of a log.
impl fmt::Debug for Delays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delays")
            .field("shape", &self.shape)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.advance();
        let jittered = match self.jitter {
            Jitter::None => delay,
            Jitter::Full => self.uniform(Duration::ZERO, delay),
            Jitter::Equal => {
                let half = delay / 2;
                half.saturating_add(self.uniform(Duration::ZERO, delay - half))
            }
            Jitter::Decorrelated => {
                let high = self.previous_jittered.saturating_mul(3);
                let low = self.initial;
                self.uniform(low, high)
            }
        }
        .min(self.max_delay);
        self.previous_jittered = jittered;
        Some(jittered)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}
