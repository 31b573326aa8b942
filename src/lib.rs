//! priceperf: what does a token cost on this accelerator, and on every instance with it?
//!
//! Data flow: [`gpu`] picks an adapter -> [`suite`] lists benchmarks -> [`runner`] verifies
//! ([`verify`]) then times ([`measure`]) each kernel variant from [`kernels`] -> [`results`]
//! writes rows. The cost side ([`model`], [`catalog`], [`cost`]) turns kernel times into
//! tokens per second and dollars per million tokens. Result folders are read back by
//! [`dataset`] (raw samples: [`history`]) for [`compare`] (CI regression gate), [`merge`]
//! (many machines, one set) and [`export`] (spreadsheets and regression trackers).

pub mod cache;
mod candidates;
pub mod catalog;
pub mod charts;
pub mod cli;
pub mod compare;
mod compile_ahead;
pub mod compose;
pub mod cost;
pub mod dataset;
pub mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod gpu;
pub mod history;
pub mod html;
pub mod kernels;
pub mod measure;
pub mod merge;
pub mod model;
pub mod native;
pub mod out_path;
pub mod pricing;
pub mod progress;
pub mod report;
pub mod report_cmd;
pub mod results;
pub mod runner;
pub mod shape;
pub mod suite;
pub mod tuning;
pub mod verify;
mod wgsl_dump;

pub use error::{Error, Result};
