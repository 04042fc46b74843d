//! Extension traits, to import with `use portasync::prelude::*;`.
//!
//! They add methods only: importing them brings no names into scope. To
//! name a trait (in a bound, or to call a method in its long form), use its
//! path at the crate root, such as [`portasync::FutureExt`](crate::FutureExt).

pub use crate::ext::FutureExt as _;
