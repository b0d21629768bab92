//! Misuses of #[derive(Avatar)] fail to compile with a message that says
//! what to do. The expected compiler output is in tests/ui/*.stderr;
//! refresh it with TRYBUILD=overwrite after an intended change.

#[test]
fn derive_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
