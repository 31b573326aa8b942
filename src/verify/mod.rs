//! Verification: CPU references accumulating in f64, the tolerance rules, and the seeded
//! generator every input comes from. A kernel that fails here is never timed or priced.
//!
//! Matmul error is measured per element relative to the magnitude accumulation rounding
//! follows: what the output's own rounding cannot explain, `(|c - ref| - u_out·|ref| -
//! atol) / Σ_k |a_ik|·|b_kj|`, must stay under `8·√K·u_acc`, where `u_acc` is the f32 unit
//! round-off (2⁻²⁴), `u_out` an ulp of the output type relative to the value (f16: 2⁻¹⁰)
//! and `atol` its smallest normal (f16: 2⁻¹⁴, as GPUs may flush subnormals). Scaling the
//! accumulation term by Σ|a||b| instead of |c| keeps cancellation from failing correct
//! kernels; the output's rounding scales with |c|, so a wrong f16 result cannot hide in it.

pub mod attention;
pub mod elementwise;
pub mod matmul;

use crate::shape::DType;

/// The rounding of a result stored as `dtype`, relative to the result itself: an ulp (f16:
/// 2⁻¹⁰, since the conversion may round either way; f32: 2⁻²⁴). Matmul holds its output to
/// this times |c|, not times Σ|a||b|: there f16 allowed about 2.5% of a typical element at
/// K = 4096, enough for a kernel that rounded its inputs to bf16, or scaled its output by
/// 1.004, to pass.
pub fn output_rounding(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 2f64.powi(-24),
        DType::F16 => 2f64.powi(-10),
    }
}

/// The absolute error always allowed: the smallest normal of the output type (GPUs may
/// flush f16 subnormals).
pub fn atol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 2f64.powi(-126),
        DType::F16 => 2f64.powi(-14),
    }
}

/// `f` of every item, in order, on the host's cores: a reference is built while the device
/// waits for it, so one thread left the others idle. Lists of at most `min_per_thread`
/// items (what is worth starting a thread for) stay on this thread.
pub fn map_on_threads<T: Sync, U: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> U + Sync,
) -> Vec<U> {
    let threads = crate::gpu::host_threads();
    let chunk = items.len().div_ceil(threads).max(min_per_thread.max(1));
    if items.len() <= chunk {
        return items.iter().map(f).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<U>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a reference thread panicked"))
            .collect()
    })
}

/// SplitMix64: small, fast, seeded, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The generator as it will be `n` draws from now, without drawing them: SplitMix64's
    /// state only counts, so parts of one stream can be drawn apart, on other threads.
    pub fn ahead(&self, n: u64) -> Rng {
        Rng(self.0.wrapping_add(n.wrapping_mul(Self::GAMMA)))
    }

    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
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

impl Verdict {
    /// A passing verdict held to `bound`, nothing checked yet.
    pub fn new(bound: f64) -> Verdict {
        Verdict {
            passed: true,
            max_err: 0.0,
            bound,
            checked: 0,
            failure: None,
        }
    }

    /// A failed verdict for an output that cannot be compared at all (wrong length, inputs
    /// that do not fit the shape).
    pub fn unusable(bound: f64, why: String) -> Verdict {
        Verdict {
            passed: false,
            failure: Some(why),
            ..Verdict::new(bound)
        }
    }

    /// Fail for a reason found outside one element's comparison (a whole row's check),
    /// keeping an earlier failure's message. The largest error is then unknown (infinite,
    /// left blank in kernels.csv), not the smaller one the compared elements showed.
    pub fn fail(&mut self, why: String) {
        self.passed = false;
        self.max_err = f64::INFINITY;
        self.failure.get_or_insert(why);
    }

    /// Record one compared element: `got` against the reference's `want`, `err` its error in
    /// the checker's measure (named by `measure` in the message, e.g. "normalised error"),
    /// `at` naming the element (e.g. `C[batch=0, row=1, col=2]`), called only for a message.
    /// The first element over the bound is the failure; a non-finite one ends the check
    /// (returns false: stop comparing).
    pub fn record(
        &mut self,
        at: impl FnOnce() -> String,
        got: f64,
        want: f64,
        err: f64,
        measure: &str,
    ) -> bool {
        self.checked += 1;
        if !got.is_finite() {
            self.passed = false;
            self.max_err = f64::INFINITY;
            self.failure = Some(format!(
                "{} is {got} (expected {want:.6}); the output starts as NaN, so the kernel never wrote it or computed a NaN or infinity",
                at()
            ));
            return false;
        }
        self.max_err = self.max_err.max(err);
        if err > self.bound && self.failure.is_none() {
            self.passed = false;
            self.failure = Some(format!(
                "{} = {got} but the f64 reference is {want} ({measure} {err:.3e} > bound {:.3e})",
                at(),
                self.bound
            ));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_keep_the_first_failure_and_stop_at_non_finite_output() {
        let mut v = Verdict::new(1e-3);
        assert!(v.record(|| "y[0]".into(), 1.0, 1.0, 0.0, "error"));
        assert!(v.record(|| "y[1]".into(), 2.0, 1.0, 0.5, "error"));
        assert!(v.record(|| "y[2]".into(), 3.0, 1.0, 2.0, "error"));
        assert!(!v.passed && v.checked == 3 && v.max_err == 2.0);
        let why = v.failure.clone().unwrap();
        assert!(
            why.starts_with("y[1] = 2 but") && why.contains("error 5.000e-1 > bound 1.000e-3"),
            "{why}"
        );
        assert!(!v.record(|| "y[3]".into(), f64::NAN, 1.0, 0.0, "error"));
        assert!(v.max_err.is_infinite() && v.failure.unwrap().contains("y[3] is NaN"));
        let u = Verdict::unusable(1.0, "output has 3 elements, expected 4".into());
        assert!(!u.passed && u.checked == 0);
    }

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

    #[test]
    fn ahead_skips_exactly_that_many_draws() {
        let mut a = Rng::new(11);
        let b = a.ahead(37);
        for _ in 0..37 {
            a.next_u64();
        }
        assert_eq!(a.next_u64(), b.clone().next_u64());
        assert_eq!(Rng::new(3).ahead(0).next_u64(), Rng::new(3).next_u64());
    }

    /// Any split over threads gives the items' results in order, the short list included.
    #[test]
    fn threads_map_in_order() {
        let items: Vec<u64> = (0..10_001).collect();
        for min in [1, 100, 20_000] {
            let got = map_on_threads(&items, min, |&i| i * i);
            assert!(got.iter().enumerate().all(|(i, &v)| v == (i * i) as u64));
        }
        assert!(map_on_threads(&[] as &[u64], 1, |&i| i).is_empty());
    }
}
