//! Shared helpers of the workspace tests.
#![allow(dead_code)]

pub use slt_datasets::testing::real_data_dir as data_dir;
