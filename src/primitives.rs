//! std's synchronization primitives, or loom's under `--cfg portasync_loom`, so that
//! the lock-free paths can be model-checked (`tests/loom.rs`, and the crate's
//! `loom_models` unit tests for what is crate-private).

#[cfg(portasync_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(not(portasync_loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};

/// An `UnsafeCell` behind loom's closure API: std's, or loom's under
/// `--cfg portasync_loom`, which fails a model whose accesses race.
#[cfg(portasync_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// An `UnsafeCell` behind loom's closure API: std's, or loom's under
/// `--cfg portasync_loom`, which fails a model whose accesses race.
#[cfg(not(portasync_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(portasync_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` on a pointer to the contents; the caller's protocol must
    /// make that access exclusive.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
