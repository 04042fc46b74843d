//! The auto traits the API promises, checked at compile time.

use portasync::rt::{Auto, IoSleep};
use portasync::{JoinError, JoinHandle, Sleep};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
fn error<T: std::error::Error + Send + Sync + 'static>() {}

/// A type that is `Send` but neither `Sync` nor `Unpin`.
struct SendOnly(std::marker::PhantomData<std::cell::Cell<u8>>, std::marker::PhantomPinned);

#[test]
fn join_handle_and_error() {
    send::<JoinHandle<i32>>();
    sync::<JoinHandle<i32>>();
    unpin::<JoinHandle<i32>>();
    // Unpin whatever the output; Send for any Send output.
    send::<JoinHandle<SendOnly>>();
    unpin::<JoinHandle<SendOnly>>();
    error::<JoinError>();
}

#[test]
fn runtimes_and_sleeps() {
    send::<Auto>();
    sync::<Auto>();
    send::<Sleep>();
    sync::<Sleep>();
    send::<IoSleep>();
    unpin::<IoSleep>();
    #[cfg(feature = "smol")]
    {
        send::<portasync::rt::Smol>();
        sync::<portasync::rt::Smol>();
    }
    #[cfg(feature = "tokio")]
    {
        send::<portasync::rt::Tokio>();
        sync::<portasync::rt::Tokio>();
        send::<portasync::rt::TokioSleep>();
    }
    #[cfg(feature = "async-std")]
    {
        send::<portasync::rt::AsyncStd>();
        sync::<portasync::rt::AsyncStd>();
    }
    #[cfg(feature = "test-util")]
    {
        send::<portasync::rt::ManualClock>();
        sync::<portasync::rt::ManualClock>();
        send::<portasync::rt::ManualSleep>();
        sync::<portasync::rt::ManualSleep>();
        unpin::<portasync::rt::ManualSleep>();
    }
}
