//! The model preset reader, then every op list, size and composition derived from an accepted preset.
//! The checks live in `priceperf::fuzzing`, shared with tests/fuzz_mutations.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    priceperf::fuzzing::models(data);
});
