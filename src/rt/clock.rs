//! A cheap reading of the monotonic clock, for the real-time timers (`Smol`,
//! `AsyncStd`, and `Auto` outside tokio).
//!
//! `Instant::now()` costs a vDSO call (about 30 ns on a KVM guest). On x86-64
//! with an invariant time-stamp counter, [`now`] reads the counter instead
//! and converts it with a line fitted to the real clock:
//!
//! - The line is anchored on a real reading every [`REANCHOR_NANOS`] at most,
//!   and its slope is measured between two anchors at least
//!   [`CALIBRATE_NANOS`] apart, so the counter's view never drifts from
//!   `Instant::now()` by more than the slope's error over one anchor period.
//! - An anchor is only taken from a pair of counter reads that bracket the
//!   real reading closely ([`MAX_GAP_TICKS`]); a thread preempted between
//!   them cannot skew the line. The reading is placed at the first of the
//!   two, so the line runs at or a little ahead of the real clock: by the
//!   pair's width at an anchor (about 40 ns, at most about 200 ns), and by
//!   the slope's error (a few parts per million) over a period.
//! - [`now`] never steps back on one thread, nor across threads but for a
//!   rounding nanosecond when a reader of the old line races a re-anchor
//!   (it reads the counter in order, as the kernel does; [`Counter::nanos`],
//!   for the rate limiters, skips that, about 14 ns here, and is ordered
//!   within a thread only). A line found ahead of a new real reading goes on
//!   from where it stood and runs slower until it meets the real clock
//!   ([`slew`]); a reading that falls back to `Instant::now()` is raised to
//!   where the line stood ([`Line::floor`]). Only a line wrong by more than
//!   [`MAX_SLEW_NANOS`] (not a slope error: something broke) is stepped.
//! - Anything odd (a counter reading older than the anchor, a slope that moves
//!   by more than 1%, no invariant counter, Miri, loom) falls back to
//!   `Instant::now()`, so the worst case is today's cost, never a wrong time
//!   (plus, for a reading that catches a writer re-anchoring the line, the
//!   wait until it is done: a few stores, unless the writer is preempted).
//!
//! The anchor is a sequence lock over four atomics: readers never write, so
//! the hot path shares one cache line across cores without contention.

// Without the counter (other targets, Miri, loom) only the loom models and
// unit tests use the line.
#![cfg_attr(
    not(all(target_arch = "x86_64", not(miri), not(portasync_loom))),
    allow(dead_code)
)]

use crate::primitives::{AtomicU64, Ordering, fence};
use std::time::Instant;

/// How far the line may be extrapolated before a fresh real reading.
pub(crate) const REANCHOR_NANOS: u64 = 50_000_000;
/// The shortest span a slope is measured over.
pub(crate) const CALIBRATE_NANOS: u64 = 40_000_000;
/// The widest pair of counter reads around a real reading that may anchor the
/// line: about 200 ns at 2.4 GHz, where a pair is about 100 ticks wide
/// (99.9% of them within 250).
pub(crate) const MAX_GAP_TICKS: u64 = 512;
/// The most a line found ahead of the real clock is slewed back by; a line
/// further off is wrong, and is stepped.
pub(crate) const MAX_SLEW_NANOS: u64 = 100_000;

/// Marks a counter found unusable: every reading falls back for good.
const BROKEN: u64 = 1;

/// The current instant: the counter's view of `Instant::now()` when it can
/// be trusted, `Instant::now()` itself otherwise.
#[inline]
pub(crate) fn now() -> Instant {
    #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
    if let Some(clock) = tsc::clock() {
        // In order: an `Instant` is never earlier than one seen from
        // another thread.
        let ticks = tsc::ordered_ticks();
        return match clock.line.read(ticks) {
            Some(nanos) => clock.base + std::time::Duration::from_nanos(nanos),
            None => clock.slow(ticks),
        };
    }
    Instant::now()
}

/// The counter clock's origin: [`nanos`] counts from it. `None` where there
/// is no counter clock.
pub(crate) fn base() -> Option<Instant> {
    counter().map(Counter::base)
}

/// [`now`] as nanoseconds since [`base`], where there is a counter clock:
/// read in order, as `now` reads it, so that a deadline made from it is
/// never earlier than a reading seen from another thread plus its
/// duration (the limiters' unordered [`Counter::nanos`] could be, by a few
/// hundred nanoseconds; from a review).
#[inline]
pub(crate) fn nanos() -> Option<u64> {
    #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
    if let Some(clock) = tsc::clock() {
        return Some(clock.nanos_at(tsc::ordered_ticks()));
    }
    None
}

/// The counter clock, where there is one: a handle that a rate limiter
/// keeps, so that its readings skip finding the clock.
pub(crate) fn counter() -> Option<Counter> {
    #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
    if let Some(clock) = tsc::clock() {
        return Some(Counter { clock });
    }
    None
}

/// A handle on the counter clock (see [`counter`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counter {
    #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
    clock: &'static tsc::Clock,
    /// Where there is no counter clock, no handle exists.
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(portasync_loom))))]
    never: std::convert::Infallible,
}

impl Counter {
    /// The clock's origin: [`nanos`](Self::nanos) counts from it.
    pub(crate) fn base(self) -> Instant {
        #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
        return self.clock.base;
        #[cfg(not(all(target_arch = "x86_64", not(miri), not(portasync_loom))))]
        match self.never {}
    }

    /// [`now`] as nanoseconds since [`base`](Self::base), without building
    /// an `Instant` (which a caller that works in nanoseconds would only
    /// take apart again), and with the counter read unordered (see
    /// [`tsc::ticks`]): for the rate limiters, which take any reading as a
    /// lower bound, and never admit more for a reading a little early.
    #[inline]
    pub(crate) fn nanos(self) -> u64 {
        #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
        return self.clock.nanos_at(tsc::ticks());
        #[cfg(not(all(target_arch = "x86_64", not(miri), not(portasync_loom))))]
        match self.never {}
    }
}

/// Nanoseconds from `earlier` to `later`, saturating at zero and at
/// `u64::MAX` (584 years).
pub(crate) fn nanos_between(earlier: Instant, later: Instant) -> u64 {
    u64::try_from(later.saturating_duration_since(earlier).as_nanos()).unwrap_or(u64::MAX)
}

/// A line from counter ticks to nanoseconds since a base instant, anchored
/// on real readings and published through a sequence lock.
#[derive(Debug)]
pub(crate) struct Line {
    /// Even when stable, odd while a writer updates the fields below.
    seq: AtomicU64,
    ticks: AtomicU64,
    nanos: AtomicU64,
    /// Nanoseconds per tick in 32.32 fixed point; 0 until measured, [`BROKEN`]
    /// if the counter misbehaved.
    scale: AtomicU64,
    /// How many ticks past its anchor the line may be read: one anchor
    /// period at `scale`, 0 when there is no slope. One comparison of a
    /// reading against it rules out a reading before the anchor, one past
    /// the period, and a line without a slope.
    span: AtomicU64,
    /// The last real reading taken as an anchor, which the next slope is
    /// measured from (the anchor itself may run a little ahead of it, see
    /// [`anchor`](Self::anchor)). Only writers touch these.
    real_ticks: AtomicU64,
    real_nanos: AtomicU64,
}

impl Line {
    pub(crate) fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            scale: AtomicU64::new(0),
            span: AtomicU64::new(0),
            real_ticks: AtomicU64::new(0),
            real_nanos: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the base at counter reading `ticks`, if the line is
    /// measured, stable, and `ticks` is within one anchor period after its
    /// anchor.
    #[inline]
    pub(crate) fn read(&self, ticks: u64) -> Option<u64> {
        let seq = self.seq.load(Ordering::Acquire);
        let anchor = self.ticks.load(Ordering::Relaxed);
        let nanos = self.nanos.load(Ordering::Relaxed);
        let scale = self.scale.load(Ordering::Relaxed);
        let span = self.span.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if seq & 1 == 1 || self.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        // Wrapping: a reading before the anchor comes out huge. Past one
        // period the caller re-anchors.
        let past = ticks.wrapping_sub(anchor);
        if past >= span {
            return None;
        }
        // Within the span, `past * scale` is below `REANCHOR_NANOS << 32`
        // (see `span_of`): the product fits a word, so one multiplication
        // and a shift give the offset exactly. The offset is under one
        // period, and the anchor leaves room for it: no overflow.
        Some(nanos + ((past * scale) >> 32))
    }

    /// Where the line stands at counter reading `ticks`, up to the end of
    /// its period (before its anchor: the anchor itself; past the end: the
    /// end, the furthest any reading of it went); for a line given up, the
    /// last time it stood at. `None` before the first anchor. What a reading
    /// that falls back to the real clock is raised to, so as not to step
    /// back from readings of the line.
    ///
    /// Waits out a writer, however long it holds the lock (a few stores,
    /// unless it is preempted): giving up would leave a reading nothing to
    /// be raised to, and the real clock runs a little behind the line (a
    /// reading stepped back by a few hundred nanoseconds; from a review).
    pub(crate) fn floor(&self, ticks: u64) -> Option<u64> {
        let mut spins: u32 = 0;
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            let anchor = self.ticks.load(Ordering::Relaxed);
            let nanos = self.nanos.load(Ordering::Relaxed);
            let scale = self.scale.load(Ordering::Relaxed);
            let span = self.span.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if seq & 1 == 1 || self.seq.load(Ordering::Relaxed) != seq {
                spins = spins.wrapping_add(1);
                if spins % 64 == 0 {
                    std::thread::yield_now(); // the writer may need this core
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            return match seq {
                0 => None,
                _ if scale <= BROKEN => Some(nanos),
                _ => Some(line_at(anchor, nanos, scale, end_of(anchor, span, ticks))),
            };
        }
    }

    /// Offers the real reading `nanos`, taken between counter readings
    /// `before` and `after`, as a new anchor. A writer already at work, or a
    /// pair too far apart, leaves the line as it is.
    pub(crate) fn anchor(&self, before: u64, nanos: u64, after: u64) {
        // Acquire: `real_nanos` below is then at least as new as `seq`.
        let seq = self.seq.load(Ordering::Acquire);
        // Cheap refusals first, without writing: a busy writer, a wide pair,
        // a given-up counter, or a line anchored too recently to re-measure
        // (which is also every caller racing a fresh anchor).
        if seq & 1 == 1
            || after.wrapping_sub(before) > MAX_GAP_TICKS
            || self.scale.load(Ordering::Relaxed) == BROKEN
            || (seq != 0
                && nanos
                    < self
                        .real_nanos
                        .load(Ordering::Relaxed)
                        .saturating_add(CALIBRATE_NANOS))
        {
            return;
        }
        if self
            .seq
            .compare_exchange(
                seq,
                seq.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let old_ticks = self.ticks.load(Ordering::Relaxed);
        let old_nanos = self.nanos.load(Ordering::Relaxed);
        let old_scale = self.scale.load(Ordering::Relaxed);
        let real_ticks = self.real_ticks.load(Ordering::Relaxed);
        let real_nanos = self.real_nanos.load(Ordering::Relaxed);
        let (start, scale) = if seq == 0 {
            (nanos, 0)
        } else {
            match fit(real_ticks, real_nanos, before, nanos) {
                // A counter that stood still or whose rate jumps is not a
                // clock (the line was off by far more than a slew, so it
                // steps, once).
                None => (nanos, BROKEN),
                Some(new) if old_scale != 0 && new.abs_diff(old_scale) > old_scale / 100 => {
                    (nanos, BROKEN)
                }
                Some(new) => {
                    // Where the old line stood: no further than its end.
                    let old_span = self.span.load(Ordering::Relaxed);
                    let stood = end_of(old_ticks, old_span, before);
                    slew(old_ticks, old_nanos, old_scale, stood, nanos, new)
                }
            }
        };
        self.ticks.store(before, Ordering::Relaxed);
        self.nanos.store(start, Ordering::Relaxed);
        self.scale.store(scale, Ordering::Relaxed);
        self.span.store(span_of(start, scale), Ordering::Relaxed);
        self.real_ticks.store(before, Ordering::Relaxed);
        self.real_nanos.store(nanos, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

/// How many ticks past an anchor at `nanos` a line of `scale` may be read:
/// fewer than reach [`REANCHOR_NANOS`] past it, so that the offset read
/// stays within one period, and none for a line without a slope or one
/// too close to the end of `u64` to add a period to.
fn span_of(nanos: u64, scale: u64) -> u64 {
    if scale <= BROKEN || nanos > u64::MAX - REANCHOR_NANOS {
        return 0;
    }
    // `past < span` gives `past * scale < REANCHOR_NANOS << 32` (which
    // fits a word), so the offset, shifted down, is below REANCHOR_NANOS.
    u64::try_from((u128::from(REANCHOR_NANOS) << 32).div_ceil(u128::from(scale)))
        .unwrap_or(u64::MAX)
}

/// Where the new line starts and how steep it is. Where the old line had run
/// ahead of the real reading, at `ticks` (the new anchor's counter reading,
/// or the old line's end if that came first: see [`end_of`]; its slope can
/// be off by a part per million or so), the new one starts where the old
/// one stood, so readings never step back, and runs slower by just enough
/// to meet the real clock one period later: the gap is slewed away, never
/// stepped. A gap too large to be a slope error (a line that is wrong) is
/// stepped.
fn slew(
    old_ticks: u64,
    old_nanos: u64,
    old_scale: u64,
    ticks: u64,
    nanos: u64,
    measured: u64,
) -> (u64, u64) {
    let start = continued(old_ticks, old_nanos, old_scale, ticks, nanos);
    // `ahead` is at most 0.2% of a period, so this stays positive.
    let ahead = start - nanos;
    let slower = u128::from(measured) * u128::from(ahead) / u128::from(REANCHOR_NANOS);
    (start, measured - slower as u64)
}

/// Where a new line at the real reading `nanos` (counter reading `ticks`)
/// starts so as not to step back: where the old line stood, if that is
/// ahead by no more than [`MAX_SLEW_NANOS`]; else the real reading.
fn continued(old_ticks: u64, old_nanos: u64, old_scale: u64, ticks: u64, nanos: u64) -> u64 {
    if old_scale <= BROKEN || ticks < old_ticks {
        return nanos;
    }
    let old = line_at(old_ticks, old_nanos, old_scale, ticks);
    if old > nanos && old - nanos <= MAX_SLEW_NANOS {
        old
    } else {
        nanos
    }
}

/// `ticks`, or the end of a line's period if that comes first: no reading
/// of the line went past it, and projecting further would carry the
/// slope's error over however long the line was idle (50 µs after 10 s at
/// 5 ppm: readings ahead of the real clock by that; from a review).
fn end_of(anchor: u64, span: u64, ticks: u64) -> u64 {
    ticks.min(anchor.saturating_add(span))
}

/// The line through `(anchor, nanos)` at `scale` (32.32 nanoseconds per
/// tick), read at `ticks`: saturating, and the anchor itself before it.
fn line_at(anchor: u64, nanos: u64, scale: u64, ticks: u64) -> u64 {
    let offset = (u128::from(ticks.saturating_sub(anchor)) * u128::from(scale)) >> 32;
    nanos.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
}

/// The slope, in 32.32 nanoseconds per tick, between two anchors; `None` if
/// the counter did not advance or the slope does not fit.
fn fit(old_ticks: u64, old_nanos: u64, ticks: u64, nanos: u64) -> Option<u64> {
    let span = nanos.checked_sub(old_nanos)?;
    let ticks = ticks.checked_sub(old_ticks).filter(|&t| t > 0)?;
    let scale = (u128::from(span) << 32) / u128::from(ticks);
    u64::try_from(scale).ok().filter(|&s| s > BROKEN)
}

#[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
mod tsc {
    use super::{Line, MAX_SLEW_NANOS};
    use std::sync::OnceLock;
    use std::time::Instant;

    #[derive(Debug)]
    pub(super) struct Clock {
        pub(super) base: Instant,
        pub(super) line: Line,
    }

    impl Clock {
        /// Nanoseconds since `base` at counter reading `ticks`: the line's,
        /// or a real reading where the line cannot answer.
        #[inline(always)]
        pub(super) fn nanos_at(&self, ticks: u64) -> u64 {
            match self.line.read(ticks) {
                Some(nanos) => nanos,
                None => super::nanos_between(self.base, self.slow(ticks)),
            }
        }

        /// A real reading, offered to the line as its next anchor; raised
        /// to where the line stood at `before`, or at its end if that came
        /// first (by no more than
        /// [`MAX_SLEW_NANOS`]), so that it never reads earlier than a
        /// reading of the line made before it.
        #[cold]
        pub(super) fn slow(&self, before: u64) -> Instant {
            let real = Instant::now();
            // In order, after the real reading: the pair brackets it.
            let after = ordered_ticks();
            let nanos = super::nanos_between(self.base, real);
            let floor = self.line.floor(before);
            self.line.anchor(before, nanos, after);
            match floor {
                Some(floor) if floor > nanos && floor - nanos <= MAX_SLEW_NANOS => {
                    self.base + std::time::Duration::from_nanos(floor)
                }
                _ => real,
            }
        }
    }

    /// The counter clock, or `None` if this processor's counter is not
    /// invariant (it may stop or change rate with power states).
    #[inline]
    pub(super) fn clock() -> Option<&'static Clock> {
        static CLOCK: OnceLock<Option<Clock>> = OnceLock::new();
        CLOCK
            .get_or_init(|| {
                invariant().then(|| Clock {
                    base: Instant::now(),
                    line: Line::new(),
                })
            })
            .as_ref()
    }

    /// CPUID leaf 8000_0007h, EDX bit 8: the counter runs at a constant rate
    /// in every power state, and the OS keeps the cores' counters in step.
    fn invariant() -> bool {
        use std::arch::x86_64::__cpuid;
        // Older compilers mark `__cpuid` unsafe; newer ones do not.
        #[allow(unused_unsafe, unsafe_code)]
        // SAFETY: CPUID exists on every x86-64 processor and only reads
        // identification registers.
        let (max, power) = unsafe { (__cpuid(0x8000_0000).eax, __cpuid(0x8000_0007).edx) };
        max >= 0x8000_0007 && power & (1 << 8) != 0
    }

    /// The time-stamp counter, read as soon as the processor likes: the
    /// cheapest reading, in order with this thread's other readings but not
    /// with its loads. So a thread that has seen another's reading (a load)
    /// may read the counter before that load is done, and come out earlier
    /// than what it saw (by up to 2.3 µs on this machine). For readings
    /// that only decide limits, which take any reading as a lower bound.
    #[inline]
    pub(super) fn ticks() -> u64 {
        #[allow(unsafe_code)]
        // SAFETY: RDTSC is part of the x86-64 baseline and only reads the
        // counter; no memory is touched.
        unsafe {
            std::arch::x86_64::_rdtsc()
        }
    }

    /// The time-stamp counter, read after every load before it (as the
    /// kernel's clock reads it): a reading never earlier than one this
    /// thread has seen from another. About 14 ns more than [`ticks`] here.
    #[inline]
    pub(super) fn ordered_ticks() -> u64 {
        #[allow(unsafe_code)]
        // SAFETY: LFENCE and RDTSC are part of the x86-64 baseline (SSE2);
        // one orders loads, the other only reads the counter; no memory is
        // touched.
        unsafe {
            std::arch::x86_64::_mm_lfence();
            std::arch::x86_64::_rdtsc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    /// A counter at 2.5 ticks per nanosecond, anchored at nanos 0 and 40 ms.
    fn measured() -> Line {
        let line = Line::new();
        line.anchor(1_000, 0, 1_100);
        line.anchor(1_000 + 100 * MS, 40 * MS, 1_100 + 100 * MS);
        line
    }

    #[test]
    fn unmeasured_line_reads_nothing() {
        let line = Line::new();
        assert_eq!(line.read(5), None);
        line.anchor(1_000, 0, 1_100);
        assert_eq!(line.read(2_000), None, "one anchor gives no slope");
    }

    #[test]
    fn measured_line_interpolates_exactly_enough() {
        let line = measured();
        // 0.4 ns per tick: 25 ms after the second anchor.
        let at = line.read(1_000 + 100 * MS + 62_500_000).unwrap();
        assert!(at.abs_diff(65 * MS) <= 1, "{at}");
        assert_eq!(line.read(1_000 + 100 * MS), Some(40 * MS));
    }

    #[test]
    fn stale_or_early_ticks_fall_back() {
        let line = measured();
        assert_eq!(line.read(999 + 100 * MS), None, "before the anchor");
        assert_eq!(
            line.read(1_000 + 100 * MS + 126 * MS),
            None,
            "past one period"
        );
        assert_eq!(line.read(u64::MAX), None, "no overflow");
    }

    #[test]
    fn the_span_ends_within_one_period() {
        for scale in [BROKEN + 1, 1 << 31, 3 << 30, 1 << 32, 5 << 32, u64::MAX] {
            let span = span_of(0, scale);
            assert!(span > 0, "{scale}");
            let last = (u128::from(span - 1) * u128::from(scale)) >> 32;
            assert!(last < u128::from(REANCHOR_NANOS), "{scale}: {last}");
            let next = (u128::from(span) * u128::from(scale)) >> 32;
            assert!(next + 1 >= u128::from(REANCHOR_NANOS), "{scale}: {next}");
        }
        assert_eq!(span_of(0, 0), 0, "no slope");
        assert_eq!(span_of(0, BROKEN), 0, "given up");
        assert_eq!(
            span_of(u64::MAX - REANCHOR_NANOS + 1, 1 << 32),
            0,
            "no room"
        );
    }

    /// A reading's one-word product is exact (and does not overflow) up to
    /// the last tick of the span, at any slope.
    #[test]
    fn a_reading_is_exact_to_the_end_of_its_span() {
        for scale in [
            BROKEN + 1,
            3,
            1 << 31,
            3 << 30,
            (1 << 32) + 7,
            5 << 32,
            u64::MAX,
        ] {
            let (anchor, nanos) = (1_000, 5 * MS);
            let line = Line::new();
            let span = span_of(nanos, scale);
            line.ticks.store(anchor, Ordering::Relaxed);
            line.nanos.store(nanos, Ordering::Relaxed);
            line.scale.store(scale, Ordering::Relaxed);
            line.span.store(span, Ordering::Relaxed);
            line.seq.store(2, Ordering::Release);
            for past in [0, 1, span / 2, span - 1]
                .into_iter()
                .filter(|&past| past < span)
            {
                let exact = line_at(anchor, nanos, scale, anchor + past);
                assert_eq!(line.read(anchor + past), Some(exact), "{scale} at {past}");
            }
            assert_eq!(line.read(anchor + span), None, "{scale}: past the span");
        }
    }

    #[test]
    fn wide_pairs_and_early_anchors_are_refused() {
        let line = measured();
        line.anchor(
            1_000 + 200 * MS,
            80 * MS,
            1_000 + 200 * MS + MAX_GAP_TICKS + 1,
        );
        assert_eq!(
            line.read(1_000 + 100 * MS),
            Some(40 * MS),
            "wide pair ignored"
        );
        line.anchor(1_000 + 110 * MS, 44 * MS, 1_000 + 110 * MS);
        assert_eq!(
            line.read(1_000 + 100 * MS),
            Some(40 * MS),
            "too soon to re-measure"
        );
    }

    #[test]
    fn a_line_ahead_of_the_real_clock_is_slewed_not_stepped_back() {
        let line = measured();
        // 50 ms on: the line says 90 ms, the real clock 10 µs less.
        let at = 1_000 + 100 * MS + 125 * MS;
        let says = line.read(at).unwrap();
        assert!(says.abs_diff(90 * MS) <= 1, "{says}");
        line.anchor(at, says - 10_000, at);
        assert_eq!(line.read(at), Some(says), "no step back");
        // The real clock ran 10 µs slow over those 50 ms, so one period on
        // it is expected 20 µs behind the old pace, and the line meets it
        // there (to rounding).
        let later = line.read(at + 125 * MS).unwrap();
        assert!(later.abs_diff(140 * MS - 20_000) <= 2, "{later}");
        // A line behind the real clock catches up at once.
        let behind = at + 125 * MS;
        line.anchor(behind, 140 * MS + 5_000, behind);
        assert_eq!(line.read(behind), Some(140 * MS + 5_000));
    }

    #[test]
    fn the_floor_is_where_the_line_stands() {
        assert_eq!(Line::new().floor(5), None, "never anchored");
        let line = measured();
        // Within the period, past it (where `read` gives up: the line's
        // end, 50 ms on), and before the anchor.
        let within = 1_000 + 100 * MS + 100 * MS;
        assert_eq!(line.floor(within), line.read(within));
        let far = 1_000 + 100 * MS + 250 * MS;
        assert_eq!(line.read(far), None);
        assert!(line.floor(far).unwrap().abs_diff(90 * MS) <= 1);
        assert_eq!(line.floor(0), Some(40 * MS));
        assert_eq!(line.floor(u64::MAX), line.floor(far), "no overflow");
    }

    /// A reading that falls back while a writer holds the lock waits for
    /// it, however long: it gave up after 64 spins, and the real reading it
    /// then returned could be behind one of the line's (from a review).
    #[test]
    fn the_floor_waits_out_a_writer() {
        let line = std::sync::Arc::new(measured());
        let at = 1_000 + 150 * MS;
        let expected = line.floor(at);
        line.seq.fetch_add(1, Ordering::SeqCst); // a writer, preempted
        let (started, starting) = std::sync::mpsc::channel();
        let reader = {
            let line = line.clone();
            std::thread::spawn(move || {
                started.send(()).unwrap();
                line.floor(at)
            })
        };
        // The reader is in `floor`, or about to be, while the lock is held.
        starting.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        line.seq.fetch_add(1, Ordering::SeqCst);
        assert_eq!(reader.join().unwrap(), expected);
    }

    /// A line idle for seconds is not projected past its end: its slope's
    /// error over the whole gap (50 µs after 10 s at 5 ppm) put the
    /// fallback reading, and the next line, that far ahead of the real
    /// clock (from a review).
    #[test]
    fn an_idle_line_is_not_projected_past_its_end() {
        let line = measured();
        // 10 s later by the line, where the real clock is 5 ppm slower.
        let at = 1_000 + 100 * MS + 25_000 * MS;
        let real = 40 * MS + 10_000 * MS - 50_000;
        let floor = line.floor(at).unwrap();
        assert!(floor <= real, "the fallback {} ns ahead", floor - real);
        line.anchor(at, real, at);
        let read = line.read(at).unwrap();
        assert!(read <= real, "the new line {} ns ahead", read - real);
    }

    #[test]
    fn a_jumping_counter_is_given_up() {
        let line = measured();
        // The counter ran twice as fast over the next span: not a clock.
        line.anchor(1_000 + 300 * MS, 80 * MS, 1_000 + 300 * MS);
        assert_eq!(line.read(1_000 + 300 * MS), None);
        // Readings fall back to the real clock, raised to no more than
        // where the line was left.
        assert_eq!(line.floor(u64::MAX), Some(80 * MS));
        line.anchor(1_000 + 400 * MS, 120 * MS, 1_000 + 400 * MS);
        line.anchor(1_000 + 500 * MS, 160 * MS, 1_000 + 500 * MS);
        assert_eq!(line.read(1_000 + 500 * MS), None, "for good");
    }

    /// Spins past several anchor periods (no sleeping: the line is only
    /// re-anchored by readers): no reading is ever earlier than the one
    /// before, across the fallbacks to the real clock that re-anchor it.
    #[test]
    fn now_never_steps_back() {
        let start = Instant::now();
        let mut last = now();
        while start.elapsed() < Duration::from_millis(400) {
            let next = now();
            assert!(next >= last, "stepped back by {:?}", last - next);
            last = next;
        }
    }

    /// Two threads, each reading after it has seen the latest reading
    /// either made: none is earlier than what it saw, but for the rounding
    /// of two lines at a re-anchor (a nanosecond) when a reader of the old
    /// one races it. (Read out of order, the counter came out up to 2.3 µs
    /// earlier, from a review.)
    #[test]
    fn now_never_steps_back_across_threads() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;
        let base = now();
        let (latest, worst) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (latest, worst) = (latest.clone(), worst.clone());
                std::thread::spawn(move || {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(400) {
                        let seen = latest.load(Ordering::SeqCst);
                        let at = nanos_between(base, now());
                        worst.fetch_max(seen.saturating_sub(at), Ordering::SeqCst);
                        latest.fetch_max(at, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let worst = worst.load(Ordering::SeqCst);
        assert!(worst <= 2, "stepped back by {worst} ns");
    }

    /// Spins past two calibration spans (no sleeping: the line is only
    /// re-anchored by readers), then checks that every reading lies between
    /// two real ones, give or take the worst-case error of the line (a few
    /// hundred nanoseconds; a tenfold margin). A thread preempted between
    /// the readings only widens the pair.
    #[test]
    fn now_agrees_with_instant_now() {
        let start = Instant::now();
        let slack = Duration::from_micros(5);
        while start.elapsed() < Duration::from_millis(150) {
            let before = Instant::now();
            let ours = now();
            let after = Instant::now();
            assert!(ours + slack >= before && ours <= after + slack);
        }
        // Where the counter is usable, the readings above went through it.
        #[cfg(all(target_arch = "x86_64", not(miri), not(portasync_loom)))]
        if let Some(clock) = tsc::clock() {
            let mut fast = false;
            for _ in 0..1_000 {
                let _ = now();
                fast |= clock.line.read(tsc::ticks()).is_some();
            }
            assert!(fast, "the counter clock never calibrated");
        }
    }
}

/// Models of the sequence lock, run by `.ci/run` under
/// `--cfg portasync_loom`. Ticks are microseconds here: one tick, 1,000 ns.
#[cfg(all(test, portasync_loom))]
mod loom_models {
    use super::Line;
    use loom::sync::Arc;

    const MS: u64 = 1_000_000;

    /// A line measured at 1,000 ns per tick, last anchored at tick 40,000.
    fn measured() -> Line {
        let line = Line::new();
        line.anchor(0, 0, 0);
        line.anchor(40_000, 40 * MS, 40_000);
        line
    }

    /// A reader racing a re-anchor sees the old line or the new one, never
    /// a mix (a mix would read 45 ms or 125 ms here). The racing work runs on
    /// spawned threads, where loom explores every interleaving.
    #[test]
    fn readers_never_see_a_torn_anchor() {
        loom::model(|| {
            let line = Arc::new(measured());
            let reader = {
                let line = line.clone();
                loom::thread::spawn(move || line.read(85_000))
            };
            line.anchor(80_000, 80 * MS, 80_000);
            let read = reader.join().unwrap();
            assert!(read.is_none() || read == Some(85 * MS), "{read:?}");
            assert_eq!(line.read(85_000), Some(85 * MS));
        });
    }

    /// Two writers at once: one wins, the other leaves the line alone, and
    /// the result is a whole anchor.
    #[test]
    fn racing_writers_leave_one_whole_anchor() {
        loom::model(|| {
            let line = Arc::new(measured());
            let writers: Vec<_> = [80, 90]
                .map(|ms| {
                    let line = line.clone();
                    loom::thread::spawn(move || line.anchor(ms * 1_000, ms * MS, ms * 1_000))
                })
                .into_iter()
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            assert_eq!(line.read(95_000), Some(95 * MS));
        });
    }
}
