//! Synchronization primitives: a fair, weighted, resizable semaphore and
//! cancel tokens.
//!
//! Mutex, RwLock, Barrier, Event and channels are not rewritten here: they
//! are [async-lock](https://docs.rs/async-lock) (`Mutex`, `RwLock`,
//! `Barrier`), [event-listener](https://docs.rs/event-listener) (`Event`)
//! and [async-channel](https://docs.rs/async-channel) (bounded and unbounded
//! MPMC channels, asyncio's `Queue`), all executor-neutral already.

mod cancel;
mod semaphore;

pub use cancel::{
    CancelGuard, CancelOn, CancelToken, Cancelled, WaitForCancel, WaitForCancelOwned,
};
pub use semaphore::{
    Acquire, AcquireError, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
    TryAcquireError,
};
