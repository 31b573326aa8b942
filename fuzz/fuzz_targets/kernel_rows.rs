//! kernels.csv: read, write back and read again unchanged, compose, export spreadsheet-safe.
//! The checks live in `priceperf::fuzzing`, shared with tests/fuzz_mutations.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    priceperf::fuzzing::kernel_rows(data);
});
