//! Compile-fail tests: what the scopes' lifetimes and bounds must reject.
//!
//! The expected errors are rustc's own and change with its versions; after a
//! toolchain upgrade, regenerate them with `TRYBUILD=overwrite cargo test
//! --test compile_fail` and review the diff.

#[test]
fn scope_misuse_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/scope_*.rs");
    // Names `rt::Smol`.
    #[cfg(feature = "smol")]
    cases.compile_fail("tests/ui/blocking_*.rs");
}
