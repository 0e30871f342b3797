#![warn(missing_docs)]
//! What a run of the reproduction is and what it leaves behind, shared by the code that runs
//! experiments (`slt-experiments`) and the code that judges them (`slt-report`):
//!
//! * [`config`]: a run's configuration ([`config::TrainConfig`]) and its stable id;
//! * [`profile`]: a profile (the scale of every suite, the arms, the pre-registered analysis)
//!   and the runs it plans;
//! * [`measure`]: what is measured at a point of a run, and the settings that say how;
//! * [`records`]: a run folder's metrics, summary and seal, read back as a [`records::RunRecord`];
//! * [`store`]: atomic writes of JSON and text.
//!
//! These are the application's data model, so errors are `anyhow` with the file named.

pub mod config;
pub mod measure;
pub mod profile;
pub mod records;
pub mod store;
