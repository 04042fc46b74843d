//! Structured concurrency: task groups that own their tasks, and in-place
//! combinators that run futures concurrently without spawning.

mod group;
mod join;
mod scope;

pub use group::{
    AbortHandle, GroupError, Join, JoinNext, Shutdown, ShutdownAll, ShutdownGraceful, TaskGroup,
    TryJoin,
};
pub use join::{JoinAll, Race, TryJoinAll, join_all, race, try_join_all};
pub use scope::{
    BlockingJoinHandle, BlockingScope, Scope, ScopeBoxedFuture, ScopeFuture, ScopedJoinHandle,
    scope, scope_blocking, scope_boxed,
};
