//! compare's thresholds file.
//! The checks live in `priceperf::fuzzing`, shared with tests/fuzz_mutations.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    priceperf::fuzzing::thresholds(data);
});
