//! Every example of this crate, run as part of the test suite so that none rots; each checks
//! its own claims (against the dense matrix) and fails with an error otherwise. One test, so
//! that the examples' use of the backend's global RNG cannot interleave.

#[path = "../examples/burn_nn_model.rs"]
mod burn_nn_model;
#[path = "../examples/curvature_of_your_model.rs"]
mod curvature_of_your_model;
#[path = "../examples/fisher_spectrum.rs"]
mod fisher_spectrum;

#[test]
fn examples_run_and_their_claims_hold() {
    burn_nn_model::main().expect("examples/burn_nn_model.rs");
    curvature_of_your_model::main().expect("examples/curvature_of_your_model.rs");
    fisher_spectrum::main().expect("examples/fisher_spectrum.rs");
}
