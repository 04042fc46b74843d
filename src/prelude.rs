//! Extension traits, to import with `use portasync::prelude::*;`.
//!
//! They add methods only; importing them brings no names into scope.

pub use crate::ext::FutureExt as _;

/// The traits themselves, to name them (in bounds, or to call a method in
/// its long form).
pub mod traits {
    pub use crate::ext::FutureExt;
}
