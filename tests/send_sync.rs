//! The auto traits the API promises, checked at compile time.

use portasync::rt::{Auto, IoSleep};
use portasync::{
    CancelGuard, CancelOn, CancelToken, Cancelled, Deadline, DeadlineRun, Elapsed, Interval,
    JoinError, JoinHandle, Sleep, Timeout, WaitForCancel, WaitForCancelOwned,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
fn error<T: std::error::Error + Send + Sync + 'static>() {}

/// A type that is `Send` but neither `Sync` nor `Unpin`.
struct SendOnly(
    std::marker::PhantomData<std::cell::Cell<u8>>,
    std::marker::PhantomPinned,
);

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

type Ready = std::future::Ready<u8>;

#[test]
fn time_and_cancel() {
    error::<Elapsed>();
    error::<Cancelled>();
    send::<Timeout<Ready>>();
    sync::<Timeout<Ready>>();
    send::<Deadline>();
    sync::<Deadline>();
    send::<DeadlineRun<Ready>>();
    send::<Interval>();
    send::<CancelToken>();
    sync::<CancelToken>();
    unpin::<CancelToken>();
    send::<WaitForCancel<'static>>();
    sync::<WaitForCancel<'static>>();
    send::<WaitForCancelOwned>();
    unpin::<WaitForCancelOwned>();
    send::<CancelOn<Ready>>();
    send::<CancelGuard>();
    sync::<CancelGuard>();
    #[cfg(feature = "test-util")]
    {
        send::<Timeout<Ready, portasync::rt::ManualClock>>();
        send::<DeadlineRun<Ready, portasync::rt::ManualClock>>();
    }
}

#[test]
fn retry_types() {
    use portasync::{Backoff, Delays, RetryBudget, RetryError, RetryPolicy, StopReason};
    use std::future::IntoFuture;
    error::<RetryError<std::io::Error>>();
    send::<RetryPolicy>();
    sync::<RetryPolicy>();
    send::<RetryBudget>();
    sync::<RetryBudget>();
    send::<Backoff>();
    sync::<Backoff>();
    send::<Delays>();
    send::<StopReason>();
    // A retry of a Send operation is a Send future, so it can be spawned.
    fn send_value<T: Send>(_: &T) {}
    let running = portasync::retry(|| async { Ok::<_, std::io::Error>(1) }).into_future();
    send_value(&running);
}

#[test]
fn task_types() {
    use portasync::{AbortHandle, GroupError, JoinAll, Race, Shutdown, TaskGroup, TryJoinAll};
    type Ready = std::future::Ready<u8>;
    send::<TaskGroup<u8>>();
    sync::<TaskGroup<u8>>();
    unpin::<TaskGroup<u8>>();
    send::<AbortHandle>();
    sync::<AbortHandle>();
    error::<GroupError<std::io::Error>>();
    send::<Shutdown<u8>>();
    send::<JoinAll<Ready>>();
    send::<TryJoinAll<std::future::Ready<Result<u8, ()>>>>();
    send::<Race<Ready>>();
    unpin::<JoinAll<Ready>>();
}
