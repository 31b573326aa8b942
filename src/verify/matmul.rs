//! The matmul CPU reference and its check.

use crate::kernels::matmul::MatmulInputs;
use crate::kernels::HostTensor;
use crate::shape::{DType, MatmulShape};

use super::{atol, output_rounding, Rng, Verdict};

/// Check every element when the reference costs at most this many multiply-adds; above it,
/// check full first/last rows and columns plus random elements.
const FULL_CHECK_MACS: u64 = 1 << 26;
const RANDOM_SAMPLES: u64 = 1024;

/// The f64 reference value and Σ|a||b| for C[batch, row, col], from A and B widened to f64.
fn reference_element(
    shape: &MatmulShape,
    a: &[f64],
    b: &[f64],
    batch: u32,
    row: u32,
    col: u32,
) -> (f64, f64) {
    let (m, n, k) = (shape.m as usize, shape.n as usize, shape.k as usize);
    let (batch, row, col) = (batch as usize, row as usize, col as usize);
    let a_row = &a[(batch * m + row) * k..][..k];
    let mut sum = 0.0;
    let mut mag = 0.0;
    for (i, &av) in a_row.iter().enumerate() {
        let bv = if shape.transpose_b {
            b[(batch * n + col) * k + i]
        } else {
            b[(batch * k + i) * n + col]
        };
        sum += av * bv;
        mag += (av * bv).abs();
    }
    (sum, mag)
}

/// Every element of `t`, widened to f64 (exactly).
fn widen(t: &HostTensor) -> Vec<f64> {
    (0..t.len()).map(|i| t.get(i)).collect()
}

/// The tolerance bound, relative to Σ|a||b|, for `k` terms accumulated in f32: the error
/// left after the output's own rounding ([`output_rounding`]) is taken off.
pub fn bound(k: u32) -> f64 {
    8.0 * (k as f64).sqrt() * 2f64.powi(-24)
}

/// Elements to compare: all of them for small problems, else the edges of the first and
/// last batch (where tail handling lives) plus seeded random picks.
pub fn elements_to_check(shape: &MatmulShape, seed: u64) -> Vec<(u32, u32, u32)> {
    let (b, m, n) = (shape.batch, shape.m, shape.n);
    if shape.c_len() * shape.k as u64 <= FULL_CHECK_MACS {
        let mut all = Vec::with_capacity(shape.c_len() as usize);
        for bi in 0..b {
            for r in 0..m {
                for c in 0..n {
                    all.push((bi, r, c));
                }
            }
        }
        return all;
    }
    let mut picks = Vec::new();
    for bi in [0, b - 1] {
        for r in [0, m - 1] {
            picks.extend((0..n).map(|c| (bi, r, c)));
        }
        for c in [0, n - 1] {
            picks.extend((0..m).map(|r| (bi, r, c)));
        }
    }
    let mut rng = Rng::new(seed);
    for _ in 0..RANDOM_SAMPLES {
        picks.push((
            rng.below(b as u64) as u32,
            rng.below(m as u64) as u32,
            rng.below(n as u64) as u32,
        ));
    }
    picks.sort_unstable();
    picks.dedup();
    picks
}

/// The f64 reference values of the elements [`elements_to_check`] picks, computed once per
/// benchmark and compared with every variant's output: the tuning search checks a dozen
/// variants of each shape, and recomputing the reference for each (f16 inputs widened one
/// element at a time) cost 0.4 s per variant at 64x768x768.
pub struct Reference {
    shape: MatmulShape,
    limit: f64,
    /// [`output_rounding`] of the output type; 0 for exact comparisons.
    rounding: f64,
    /// The output type's smallest normal, allowed absolutely (GPUs may flush f16
    /// subnormals); 0 for exact comparisons.
    atol: f64,
    /// (batch, row, col, value, Σ|a||b|) per checked element.
    expected: Vec<(u32, u32, u32, f64, f64)>,
}

impl Reference {
    /// The reference for `inputs`, held to [`bound`] after `dtype`'s [`output_rounding`].
    pub fn new(shape: &MatmulShape, dtype: DType, inputs: &MatmulInputs, seed: u64) -> Self {
        let (limit, rounding) = (bound(shape.k), output_rounding(dtype));
        Self::with_limit(shape, inputs, seed, limit, rounding, atol(dtype))
    }

    /// Exact comparison, for inputs from [`MatmulInputs::exact`] with f32 output: any
    /// difference is an indexing bug.
    pub fn exact(shape: &MatmulShape, inputs: &MatmulInputs) -> Self {
        Self::with_limit(shape, inputs, 0, 0.0, 0.0, 0.0)
    }

    fn with_limit(
        shape: &MatmulShape,
        inputs: &MatmulInputs,
        seed: u64,
        limit: f64,
        rounding: f64,
        atol: f64,
    ) -> Self {
        let (a, b) = (widen(&inputs.a), widen(&inputs.b));
        let expected = elements_to_check(shape, seed)
            .into_iter()
            .map(|(bi, r, c)| {
                let (sum, mag) = reference_element(shape, &a, &b, bi, r, c);
                (bi, r, c, sum, mag)
            })
            .collect();
        Reference {
            shape: *shape,
            limit,
            rounding,
            atol,
            expected,
        }
    }

    /// Compare a kernel's output with the reference.
    pub fn check(&self, output: &HostTensor) -> Verdict {
        let shape = &self.shape;
        if output.len() as u64 != shape.c_len() {
            return Verdict::unusable(
                self.limit,
                format!(
                    "output has {} elements, expected {}",
                    output.len(),
                    shape.c_len()
                ),
            );
        }
        let mut verdict = Verdict::new(self.limit);
        for &(b, r, c, want, mag) in &self.expected {
            let idx = ((b as u64 * shape.m as u64 + r as u64) * shape.n as u64 + c as u64) as usize;
            let got = output.get(idx);
            // What the output's rounding cannot explain, relative to Σ|a||b|.
            let beyond = (got - want).abs() - self.rounding * want.abs() - self.atol;
            let err = if got == want || beyond <= 0.0 {
                0.0
            } else {
                beyond / mag.max(f64::MIN_POSITIVE)
            };
            let at = || format!("C[batch={b}, row={r}, col={c}]");
            if !verdict.record(at, got, want, err, "normalised error") {
                break;
            }
        }
        verdict
    }
}

/// Compare a kernel's output with the f64 reference under [`bound`] (one-off; a benchmark
/// checking several variants builds one [`Reference`]).
pub fn check(
    shape: &MatmulShape,
    dtype: DType,
    inputs: &MatmulInputs,
    output: &HostTensor,
    seed: u64,
) -> Verdict {
    Reference::new(shape, dtype, inputs, seed).check(output)
}

/// Exact comparison (see [`Reference::exact`]).
pub fn check_exact(shape: &MatmulShape, inputs: &MatmulInputs, output: &HostTensor) -> Verdict {
    Reference::exact(shape, inputs).check(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_matmul(shape: &MatmulShape, inputs: &MatmulInputs) -> HostTensor {
        let (a, b) = (widen(&inputs.a), widen(&inputs.b));
        let mut out = Vec::new();
        for bi in 0..shape.batch {
            for r in 0..shape.m {
                for c in 0..shape.n {
                    out.push(reference_element(shape, &a, &b, bi, r, c).0 as f32);
                }
            }
        }
        HostTensor::F32(out)
    }

    #[test]
    fn reference_matches_a_hand_computed_case() {
        // A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]] -> C = [[19, 22], [43, 50]].
        let shape = MatmulShape::new(2, 2, 2);
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
        assert_eq!(reference_element(&shape, &a, &b, 0, 1, 0).0, 43.0);
        // Bᵀ stored [n, k]: the same numbers read transposed give A·Bᵀ.
        let t = shape.transposed_b();
        assert_eq!(
            reference_element(&t, &a, &b, 0, 0, 1).0,
            1.0 * 7.0 + 2.0 * 8.0
        );
    }

    #[test]
    fn a_correct_output_passes_and_a_wrong_one_fails() {
        let shape = MatmulShape::new(5, 7, 9).batched(2);
        let inputs = MatmulInputs::random(&shape, DType::F32, 1);
        let good = cpu_matmul(&shape, &inputs);
        assert!(check(&shape, DType::F32, &inputs, &good, 0).passed);

        let HostTensor::F32(mut bad) = good.clone() else {
            unreachable!()
        };
        bad[37] += 1e-3;
        let v = check(&shape, DType::F32, &inputs, &HostTensor::F32(bad), 0);
        assert!(!v.passed);
        assert!(v.failure.unwrap().contains("batch=1"));

        let HostTensor::F32(mut unwritten) = good else {
            unreachable!()
        };
        unwritten[0] = f32::NAN;
        let v = check(&shape, DType::F32, &inputs, &HostTensor::F32(unwritten), 0);
        assert!(v.failure.unwrap().contains("never wrote"));
    }

    #[test]
    fn bound_scales_with_k_and_output_rounding_with_dtype() {
        assert!(bound(4096) > bound(16));
        assert!(bound(4096) < 5e-5);
        assert!(output_rounding(DType::F16) > 1000.0 * output_rounding(DType::F32));
    }

    /// f16 output is allowed its own rounding (an ulp of |c|), not a share of Σ|a||b|: a
    /// correctly rounded result passes, one 0.4% off (an input rounded to bf16, an output
    /// scaled by 1.004) fails, at K = 4096 where Σ|a||b| is about 50x |c|.
    #[test]
    fn f16_output_is_held_to_its_own_rounding() {
        let shape = MatmulShape::new(4, 4, 4096);
        let inputs = MatmulInputs::random(&shape, DType::F16, 5);
        let HostTensor::F32(exact) = cpu_matmul(&shape, &inputs) else {
            unreachable!()
        };
        let stored = |scale: f32| {
            let c = exact.iter().map(|&c| half::f16::from_f32(c * scale));
            check(
                &shape,
                DType::F16,
                &inputs,
                &HostTensor::F16(c.collect()),
                0,
            )
        };
        let right = stored(1.0);
        assert!(right.passed, "{right:?}");
        let off = stored(1.004);
        assert!(!off.passed, "{off:?}");
    }

    #[test]
    fn big_shapes_are_sampled_with_their_edges() {
        let shape = MatmulShape::new(1024, 1024, 1024);
        let picks = elements_to_check(&shape, 3);
        assert!(picks.len() < 10_000);
        assert!(picks.contains(&(0, 1023, 1023)));
        assert!(picks.contains(&(0, 512, 0)));
    }
}
