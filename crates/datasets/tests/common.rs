//! Helpers shared by the data-layer tests.
#![allow(dead_code)]

use std::io::Write;

#[allow(unused_imports)]
pub use slt_datasets::testing::real_data_dir;

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
