//! The crate's teaching example, run by the test suite so that it cannot rot; it checks its own
//! claims and returns an error otherwise. (`online_ngd.rs` is a benchmark and is not run here.)

#[path = "../examples/ngd_drop_in.rs"]
mod ngd_drop_in;

#[test]
fn ngd_drop_in_example_runs_and_its_claims_hold() {
    ngd_drop_in::main().expect("examples/ngd_drop_in.rs");
}
