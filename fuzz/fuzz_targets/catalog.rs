//! The instance and accelerator catalog readers (first byte: replace/extend and which files; a 0 byte separates the two files).
//! The checks live in `priceperf::fuzzing`, shared with tests/fuzz_mutations.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    priceperf::fuzzing::catalog(data);
});
