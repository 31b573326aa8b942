//! A whole result folder (run.json, kernels.csv, tokens.csv, costs.csv, samples.jsonl,
//! separated by 0 bytes), read as compare, merge and export read it; the files must not
//! change. The checks live in `priceperf::fuzzing`, shared with tests/fuzz_mutations.rs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"));
    priceperf::fuzzing::result_folder(data, &dir.path().join("run"));
});
