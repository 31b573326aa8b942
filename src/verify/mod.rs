//! Verification: CPU references accumulating in f64, the tolerance rules, and the seeded
//! generator every input comes from. A kernel that fails here is never timed or priced.
//!
//! Matmul error is measured per element relative to the magnitude rounding actually follows,
//! `|c - ref| / Σ_k |a_ik|·|b_kj|`, and must stay under `8·√K·u_acc + u_out` where `u_acc` is
//! the f32 unit round-off (2⁻²⁴) and `u_out` the output type's (f16: 2⁻¹¹). Scaling by
//! Σ|a||b| instead of |c| keeps cancellation from failing correct kernels.

pub mod attention;
pub mod elementwise;
pub mod matmul;

/// SplitMix64: small, fast, seeded, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The result of checking one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// Largest normalised error seen (see the module doc).
    pub max_err: f64,
    /// The bound it was held to.
    pub bound: f64,
    /// Elements compared.
    pub checked: u64,
    /// Why it failed, naming the first bad element.
    pub failure: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.uniform();
            assert_eq!(x, b.uniform());
            assert!((-1.0..1.0).contains(&x));
        }
        assert!((0..100).all(|_| a.below(5) < 5));
    }
}
