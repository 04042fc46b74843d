//! The one place that pairs a feature gate with its docs.rs badge (STYLE.md rule 5).

/// Items that exist only with the named feature, badged on docs.rs.
macro_rules! cfg_feature {
    ($feature:literal => $($item:item)*) => {
        $(
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            $item
        )*
    };
}

/// Items that need an executor to spawn on: any one of the runtime features.
macro_rules! cfg_any_runtime {
    ($($item:item)*) => {
        $(
            #[cfg(any(feature = "smol", feature = "tokio", feature = "async-std"))]
            #[cfg_attr(
                docsrs,
                doc(cfg(any(feature = "smol", feature = "tokio", feature = "async-std")))
            )]
            $item
        )*
    };
}
