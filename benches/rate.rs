//! portasync's rate limiters beside governor's, in the same run.
//!
//! - `direct_check`: one `check()` that is allowed, on each crate's default
//!   clock (ours: the runtime timer's `Instant`; governor's: quanta's TSC
//!   clock), then on the same std `Instant` clock, then on a clock that
//!   costs nothing to read (the limiter alone).
//! - `direct_refused`: one `check()` that is refused (the error is built).
//! - `direct_check_two_tokio_workers`: the same allowed `check()` in tokio
//!   tasks on two workers at once, each on its own limiter.
//! - `keyed_check_10k`: `check(&key)` cycling over 10,000 live keys, on
//!   each crate's default clock, then on clocks that cost nothing to read.
//! - `clock_read`: one reading of each default clock, which is most of the
//!   difference between the two crates' defaults, and what our limiters
//!   pay on top to turn a reading into nanoseconds since their origin.
//!
//! Before the benchmarks it prints the memory each crate's keyed limiter
//! holds per key, counted by a global allocator.
//!
//! `cargo bench --bench rate -- --warm-up-time 1 --measurement-time 3`

// A counting global allocator cannot be written without `unsafe`; it only
// forwards to the system allocator.
#![allow(unsafe_code)]
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use criterion::{BenchmarkId, Criterion, criterion_group};
use portasync::rt::{Auto, Timer};
use portasync::{KeyedRateLimiter, Quota, RateLimiter};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts the bytes held, to report memory per key.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only arithmetic on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYS: u64 = 10_000;
const BILLION: u32 = 1_000_000_000;

/// A clock that never moves and costs nothing to read: measures the
/// limiter alone, like governor's `FakeRelativeClock`.
#[derive(Clone, Debug)]
struct Frozen(Instant);

impl Timer for Frozen {
    type Sleep = portasync::Sleep;

    fn now(&self) -> Instant {
        self.0
    }

    fn sleep_until(&self, deadline: Instant) -> portasync::Sleep {
        Auto.sleep_until(deadline)
    }
}

fn governor_quota(n: u32) -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(n).expect("nonzero"))
}

fn direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("direct_check");
    // A billion per second never runs dry at one check per few nanoseconds:
    // every check is allowed.
    let ours = RateLimiter::new(Quota::per_second(BILLION));
    group.bench_function(BenchmarkId::new("portasync", "default clock"), |b| {
        b.iter(|| black_box(ours.check()))
    });
    let theirs = governor::RateLimiter::direct(governor_quota(BILLION));
    group.bench_function(BenchmarkId::new("governor", "default clock"), |b| {
        b.iter(|| black_box(theirs.check()))
    });
    // The same counter clock as `Auto`'s outside tokio, without asking
    // tokio on every read (with the `tokio` feature on) whether this thread
    // is in a runtime whose time can pause: what `Auto` costs with the
    // default features.
    #[cfg(feature = "smol")]
    {
        let ours_smol =
            RateLimiter::with_timer(Quota::per_second(BILLION), portasync::rt::Smol::global());
        group.bench_function(BenchmarkId::new("portasync", "Smol timer"), |b| {
            b.iter(|| black_box(ours_smol.check()))
        });
    }
    let theirs_std = governor::RateLimiter::direct_with_clock(
        governor_quota(u32::MAX),
        governor::clock::MonotonicClock,
    );
    group.bench_function(BenchmarkId::new("governor", "std Instant"), |b| {
        b.iter(|| black_box(theirs_std.check()))
    });
    let ours_frozen = RateLimiter::with_timer(
        Quota::per_second(u32::MAX).burst(u32::MAX),
        Frozen(Instant::now()),
    );
    group.bench_function(BenchmarkId::new("portasync", "free clock"), |b| {
        b.iter(|| black_box(ours_frozen.check()))
    });
    // Frozen clocks: a burst of u32::MAX outlasts every iteration criterion runs.
    let theirs_fake = governor::RateLimiter::direct_with_clock(
        governor_quota(BILLION).allow_burst(NonZeroU32::MAX),
        governor::clock::FakeRelativeClock::default(),
    );
    group.bench_function(BenchmarkId::new("governor", "free clock"), |b| {
        b.iter(|| black_box(theirs_fake.check()))
    });
    group.finish();

    let mut group = c.benchmark_group("direct_refused");
    let ours = RateLimiter::new(Quota::per_hour(1));
    let _ = ours.check();
    group.bench_function(BenchmarkId::new("portasync", "default clock"), |b| {
        b.iter(|| black_box(ours.check()))
    });
    let theirs = governor::RateLimiter::direct(governor::Quota::per_hour(NonZeroU32::MIN));
    let _ = theirs.check();
    group.bench_function(BenchmarkId::new("governor", "default clock"), |b| {
        b.iter(|| black_box(theirs.check()))
    });
    group.finish();
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_check_10k");
    let ours = KeyedRateLimiter::new(Quota::per_second(BILLION));
    let theirs = governor::RateLimiter::keyed(governor_quota(BILLION));
    for key in 0..KEYS {
        ours.check(&key).expect("a new key has a full bucket");
        theirs.check_key(&key).expect("a new key has a full bucket");
    }
    let mut key = 0;
    group.bench_function(BenchmarkId::new("portasync", "default clock"), |b| {
        b.iter(|| {
            key = (key + 1) % KEYS;
            black_box(ours.check(&key))
        })
    });
    let mut key = 0;
    group.bench_function(BenchmarkId::new("governor", "default clock"), |b| {
        b.iter(|| {
            key = (key + 1) % KEYS;
            black_box(theirs.check_key(&key))
        })
    });
    // The same on clocks that cost nothing to read: the limiters alone.
    let ours = KeyedRateLimiter::with_timer(Quota::per_second(BILLION), Frozen(Instant::now()));
    let theirs = governor::RateLimiter::dashmap_with_clock(
        governor_quota(BILLION),
        governor::clock::FakeRelativeClock::default(),
    );
    for key in 0..KEYS {
        ours.check(&key).expect("a new key has a full bucket");
        theirs.check_key(&key).expect("a new key has a full bucket");
    }
    let mut key = 0;
    group.bench_function(BenchmarkId::new("portasync", "free clock"), |b| {
        b.iter(|| {
            key = (key + 1) % KEYS;
            black_box(ours.check(&key))
        })
    });
    let mut key = 0;
    group.bench_function(BenchmarkId::new("governor", "free clock"), |b| {
        b.iter(|| {
            key = (key + 1) % KEYS;
            black_box(theirs.check_key(&key))
        })
    });
    group.finish();
}

/// `iters` allowed checks on each of two tokio workers at once, each on its
/// own limiter (made by `make`, inside the worker's task): the wall time,
/// so that a shared write on the clock path shows as it bounces between
/// the cores.
fn on_two_workers<L: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    iters: u64,
    make: fn() -> L,
    check: fn(&L) -> bool,
) -> std::time::Duration {
    runtime.block_on(async {
        let start = Instant::now();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async move {
                    let limiter = make();
                    for _ in 0..iters {
                        black_box(check(&limiter));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("a worker finishes");
        }
        start.elapsed()
    })
}

/// `check()` in tokio tasks on two workers, each with its own limiter.
fn tokio_workers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("direct_check_two_tokio_workers");
    group.bench_function(BenchmarkId::new("portasync", "default clock"), |b| {
        b.iter_custom(|iters| {
            on_two_workers(
                &runtime,
                iters,
                || RateLimiter::new(Quota::per_second(BILLION)),
                |limiter| limiter.check().is_ok(),
            )
        })
    });
    group.bench_function(BenchmarkId::new("governor", "default clock"), |b| {
        b.iter_custom(|iters| {
            on_two_workers(
                &runtime,
                iters,
                || governor::RateLimiter::direct(governor_quota(BILLION)),
                |limiter| limiter.check().is_ok(),
            )
        })
    });
    group.finish();
}

/// Bytes held per key by each keyed limiter, after `keys` keys.
fn memory_per_key(keys: u64) {
    let before = HELD.load(Ordering::Relaxed);
    let ours = KeyedRateLimiter::new(Quota::per_second(10));
    for key in 0..keys {
        let _ = ours.check(&key);
    }
    let ours_bytes = HELD.load(Ordering::Relaxed) - before;

    let before = HELD.load(Ordering::Relaxed);
    let theirs = governor::RateLimiter::keyed(governor_quota(10));
    for key in 0..keys {
        let _ = theirs.check_key(&key);
    }
    let theirs_bytes = HELD.load(Ordering::Relaxed) - before;

    println!(
        "memory per u64 key after {keys} keys: portasync {:.1} B, governor {:.1} B",
        ours_bytes as f64 / keys as f64,
        theirs_bytes as f64 / keys as f64,
    );
    drop((ours, theirs));
}

/// What one clock reading costs: most of a check, on either side.
fn clocks(c: &mut Criterion) {
    use governor::clock::Clock as _;
    let mut group = c.benchmark_group("clock_read");
    group.bench_function("portasync Auto.now() (std Instant)", |b| {
        b.iter(|| black_box(Auto.now()))
    });
    let quanta = governor::clock::QuantaClock::default();
    group.bench_function("governor QuantaClock.now() (TSC)", |b| {
        b.iter(|| black_box(quanta.now()))
    });
    // What a limiter pays to turn a reading into nanoseconds since its origin.
    let (origin, later) = (Instant::now(), Instant::now());
    group.bench_function("Instant to nanoseconds since an origin", |b| {
        b.iter(|| {
            let since = black_box(later).saturating_duration_since(black_box(origin));
            black_box(since.as_secs() * 1_000_000_000 + u64::from(since.subsec_nanos()))
        })
    });
    group.finish();
}

criterion_group!(benches, direct, tokio_workers, keyed, clocks);

fn main() {
    memory_per_key(10_000);
    memory_per_key(1_000_000);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
