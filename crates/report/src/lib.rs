#![warn(missing_docs)]
//! The verdicts and `report.md` of the reproduction, from run records only:
//!
//! * [`verdict`]: the verdict engine, a pure function of the records and the profile's
//!   pre-registered analysis (one primary test per claim, three outcomes, Holm-corrected
//!   secondaries), unit-tested on synthetic records that reach every outcome;
//! * [`report`]: the Markdown report and its figures.

pub mod report;
pub mod verdict;

pub use report::{write, ReportContext};
