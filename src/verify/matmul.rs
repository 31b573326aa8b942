//! The matmul CPU reference and its check: every element of small products; above
//! `FULL_CHECK_MACS`, the edges and random elements one by one, and every row as a whole
//! by Freivalds' method (`RowSums`).

use std::borrow::Cow;

use half::slice::HalfFloatSliceExt;

use crate::kernels::matmul::MatmulInputs;
use crate::kernels::HostTensor;
use crate::shape::{DType, MatmulShape};

use super::{atol, output_rounding, Rng, Verdict};

/// Check every element when the reference costs at most this many multiply-adds; above it,
/// check full first/last rows and columns plus random elements, and every row's sums.
const FULL_CHECK_MACS: u64 = 1 << 26;
const RANDOM_SAMPLES: u64 = 1024;

/// Random sign vectors of the row-sum check: a wrong row that one vector's sum misses (its
/// errors cancelling) is caught by the next with a fresh draw.
const ROW_SUM_PROBES: usize = 2;

/// How far a row sum may stray, in standard deviations of what honest rounding allows: a
/// correct kernel fails one row's test with probability at most 2·exp(-Z²/2), about 3e-14
/// (Hoeffding's inequality), so even a run checking a million rows never fails one wrongly.
const ROW_SUM_Z: f64 = 8.0;

/// A and B as f32 (exactly: f32 holds every f16), with B's columns contiguous, so that
/// every element of C is the dot of two contiguous rows: B stored [batch, n, k] is borrowed
/// or widened as it is, B stored [batch, k, n] is transposed once. Reading a row-major B's
/// columns with a stride of n instead kept the reference scalar.
struct Operands<'a> {
    a: Cow<'a, [f32]>,
    /// B as [batch, n, k].
    bt: Cow<'a, [f32]>,
    m: usize,
    n: usize,
    k: usize,
}

impl<'a> Operands<'a> {
    fn of(shape: &MatmulShape, inputs: &'a MatmulInputs) -> Self {
        let (m, n, k) = (shape.m as usize, shape.n as usize, shape.k as usize);
        let b = as_f32(&inputs.b);
        let bt = if shape.transpose_b {
            b
        } else {
            let mut bt = vec![0.0f32; b.len()];
            for (stored, columns) in b.chunks_exact(k * n).zip(bt.chunks_exact_mut(k * n)) {
                for (i, row) in stored.chunks_exact(n).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        columns[j * k + i] = v;
                    }
                }
            }
            Cow::Owned(bt)
        };
        Operands {
            a: as_f32(&inputs.a),
            bt,
            m,
            n,
            k,
        }
    }

    fn a_row(&self, batch: usize, row: usize) -> &[f32] {
        &self.a[(batch * self.m + row) * self.k..][..self.k]
    }

    fn b_column(&self, batch: usize, col: usize) -> &[f32] {
        &self.bt[(batch * self.n + col) * self.k..][..self.k]
    }

    /// The f64 reference value and Σ|a||b| of C[batch, row, col].
    fn element(&self, batch: u32, row: u32, col: u32) -> (f64, f64) {
        let (batch, row, col) = (batch as usize, row as usize, col as usize);
        dot_and_reach(self.a_row(batch, row), self.b_column(batch, col))
    }
}

/// Σ a·b and Σ |a·b| in f64, each product exact (two f32 significands fit in f64's). Eight
/// partial sums each, so the compiler can vectorise them: one running sum is a chain of
/// dependent adds, and the quick suite's references took 1.2 s that way. Summing in another
/// order moves the f64 result by about k·2⁻⁵³ of Σ|a·b|, far under the f32 tolerance, and
/// not at all where every partial sum is exact (`MatmulInputs::exact`).
fn dot_and_reach(a: &[f32], b: &[f32]) -> (f64, f64) {
    const LANES: usize = 8;
    const BLOCK: usize = 256;
    let (mut sum, mut reach) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut products = [0.0f64; BLOCK];
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        // Products first, in a loop of their own that the compiler vectorises.
        let products = &mut products[..a.len()];
        for ((p, &a), &b) in products.iter_mut().zip(a).zip(b) {
            *p = f64::from(a) * f64::from(b);
        }
        let chunks = products.chunks_exact(LANES);
        let tail = chunks.remainder();
        for p in chunks {
            for l in 0..LANES {
                sum[l] += p[l];
                reach[l] += p[l].abs();
            }
        }
        for (l, &p) in tail.iter().enumerate() {
            sum[l] += p;
            reach[l] += p.abs();
        }
    }
    (sum.iter().sum(), reach.iter().sum())
}

/// Every element of `t` as f32, exactly (f32 holds every f16): borrowed when it is f32.
/// Widening whole operands to f64 instead (a 525 MB copy of B at the quick suite's
/// 1x32064x2048 f16 head) made that reference take 0.45 s to build, against 0.24 s then.
fn as_f32(t: &HostTensor) -> Cow<'_, [f32]> {
    match t {
        HostTensor::F32(v) => Cow::Borrowed(v),
        HostTensor::F16(v) => {
            let mut wide = vec![0.0f32; v.len()];
            v.convert_to_f32_slice(&mut wide);
            Cow::Owned(wide)
        }
    }
}

/// The tolerance bound, relative to Σ|a||b|, for `k` terms accumulated in f32: the error
/// left after the output's own rounding ([`output_rounding`]) is taken off.
pub fn bound(k: u32) -> f64 {
    8.0 * (k as f64).sqrt() * 2f64.powi(-24)
}

/// Elements to compare: all of them for small problems, else the edges of the first and
/// last batch (where tail handling lives) plus seeded random picks.
pub fn elements_to_check(shape: &MatmulShape, seed: u64) -> Vec<(u32, u32, u32)> {
    picks(shape, seed, FULL_CHECK_MACS)
}

/// Whether a product is too big to check element by element (more multiply-adds than
/// `full_check_macs`).
fn sampled(shape: &MatmulShape, full_check_macs: u64) -> bool {
    shape.c_len() * shape.k as u64 > full_check_macs
}

/// [`elements_to_check`] with the size limit given (tests lower it to sample small shapes).
fn picks(shape: &MatmulShape, seed: u64, full_check_macs: u64) -> Vec<(u32, u32, u32)> {
    let (b, m, n) = (shape.batch, shape.m, shape.n);
    if !sampled(shape, full_check_macs) {
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

/// What a matmul output element may differ from the f64 reference by (see the module doc of
/// `verify`): `rounding`·|ref| + `atol` + `limit`·Σ|a||b|.
#[derive(Debug, Clone, Copy)]
struct Tolerance {
    /// [`bound`]; 0 for exact comparisons.
    limit: f64,
    /// [`output_rounding`] of the output type; 0 for exact comparisons.
    rounding: f64,
    /// The output type's smallest normal, allowed absolutely (GPUs may flush f16
    /// subnormals); 0 for exact comparisons.
    atol: f64,
}

impl Tolerance {
    /// Any difference fails: for exact inputs, whose products and sums f32 holds exactly.
    const EXACT: Tolerance = Tolerance {
        limit: 0.0,
        rounding: 0.0,
        atol: 0.0,
    };

    /// [`bound`] for `k` terms after the output `dtype`'s own rounding.
    fn of(k: u32, dtype: DType) -> Tolerance {
        Tolerance {
            limit: bound(k),
            rounding: output_rounding(dtype),
            atol: atol(dtype),
        }
    }

    /// The most an element may be off when its Σ|a||b| is at most `reach` and the kernel
    /// returned `got`. The reference is unknown here, so its rounding term is bounded from
    /// `got`: a passing element has |ref| ≤ (|got| + limit·reach + atol) / (1 - rounding).
    fn at_most(&self, got: f64, reach: f64) -> f64 {
        let within = self.limit * reach + self.atol;
        within + self.rounding * (got.abs() + within) / (1.0 - self.rounding)
    }
}

/// Freivalds' check of whole rows, for products too big to compare element by element: for
/// random signs x (±1 per column), row r of C·x must match row r of A·(B·x), both summed in
/// f64, at O(M·K + K·N + M·N) cost instead of the product's O(M·N·K). Signs chosen
/// independently of the kernel turn each row's error into a sum of terms of random sign:
/// if every element of the row is within its tolerance t_j, Hoeffding's inequality keeps
/// |Σ_j e_j·x_j| under [`ROW_SUM_Z`]·√(Σ_j t_j²) but with negligible probability, while a
/// wrong block of the row (a tile computed from the wrong indices, never written, or NaN)
/// moves the sum by about √(width)·|c| and fails. It cannot see an error that stays near
/// the tolerance in a few elements; the sampled elements are checked one by one for that.
struct RowSums {
    /// Per probe, the sign of each column.
    signs: Vec<Vec<f64>>,
    /// Per probe, A·(B·x) per (batch, row).
    want: Vec<Vec<f64>>,
    /// Σ_i |a_ri|·max_j |b_ij| per (batch, row): at least Σ|a||b| of every element of the
    /// row, so the tolerance of each can be bounded without the product.
    reach: Vec<f64>,
}

impl RowSums {
    fn new(shape: &MatmulShape, ops: &Operands<'_>, seed: u64) -> Self {
        let (batches, m, n, k) = (shape.batch as usize, ops.m, ops.n, ops.k);
        let mut rng = Rng::new(seed ^ 0x5157_5F52_4F57_5355);
        let signs: Vec<Vec<f64>> = (0..ROW_SUM_PROBES)
            .map(|_| {
                (0..n)
                    .map(|_| if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 })
                    .collect()
            })
            .collect();
        let mut want: Vec<Vec<f64>> = (0..ROW_SUM_PROBES)
            .map(|_| Vec::with_capacity(batches * m))
            .collect();
        let mut reach = Vec::with_capacity(batches * m);
        for bi in 0..batches {
            // Per probe B·x, and max_j |b_ij|: k values each, B read column by column.
            let mut bx = vec![vec![0.0; k]; ROW_SUM_PROBES];
            let mut b_max = vec![0.0f64; k];
            for j in 0..n {
                let column = ops.b_column(bi, j);
                for (bx, x) in bx.iter_mut().zip(&signs) {
                    for (acc, &v) in bx.iter_mut().zip(column) {
                        *acc += f64::from(v) * x[j];
                    }
                }
                for (top, &v) in b_max.iter_mut().zip(column) {
                    *top = top.max(f64::from(v).abs());
                }
            }
            for (want, bx) in want.iter_mut().zip(&bx) {
                want.extend((0..m).map(|r| dot_wide(ops.a_row(bi, r), bx)));
            }
            reach.extend((0..m).map(|r| {
                ops.a_row(bi, r)
                    .iter()
                    .zip(&b_max)
                    .map(|(&a, b)| f64::from(a).abs() * b)
                    .sum::<f64>()
            }));
        }
        RowSums { signs, want, reach }
    }

    /// Check every row of `output` (already known to have the product's length), recording
    /// the first bad row in `verdict`.
    fn check(
        &self,
        shape: &MatmulShape,
        tol: &Tolerance,
        output: &HostTensor,
        verdict: &mut Verdict,
    ) {
        let (m, n, k) = (shape.m as usize, shape.n as usize, shape.k as usize);
        let mut got = vec![0.0; n];
        for (row, &reach) in self.reach.iter().enumerate() {
            let (b, r) = (row / m, row % m);
            let (mut spread, mut size) = (0.0, 0.0);
            for (j, got) in got.iter_mut().enumerate() {
                *got = output.get(row * n + j);
                // A NaN would pass unseen into the sums' comparison, and an infinity makes
                // its own allowance infinite.
                if !got.is_finite() {
                    verdict.fail(format!(
                        "C[batch={b}, row={r}, col={j}] is {got}; the output starts as NaN, so the kernel never wrote it or computed a NaN or infinity"
                    ));
                    return;
                }
                spread += tol.at_most(*got, reach).powi(2);
                size += got.abs();
            }
            // The f64 sums' own rounding: n + k terms each, none larger than these.
            let slack = (n + k) as f64 * 2f64.powi(-53) * (size + n as f64 * reach);
            let allowed = ROW_SUM_Z * spread.sqrt() + slack;
            for (x, want) in self.signs.iter().zip(&self.want) {
                let sum = dot(&got, x);
                let off = (sum - want[row]).abs();
                if off > allowed {
                    verdict.fail(format!(
                        "row C[batch={b}, row={r}, *] is wrong: its sum under random signs is {sum} where A·(B·x) in f64 gives {} (off by {off:.3e}, where elements each within tolerance stay under {allowed:.3e} but with probability below 1e-13); at this size elements are compared one by one only on the edges and at {RANDOM_SAMPLES} random places, so the wrong elements lie elsewhere in the row",
                        want[row]
                    ));
                    return;
                }
            }
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// [`dot`] of f32 values with f64 ones, in f64.
fn dot_wide(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(&a, b)| f64::from(a) * b).sum()
}

/// The f64 reference values of the elements [`elements_to_check`] picks, computed once per
/// benchmark and compared with every variant's output: the tuning search checks a dozen
/// variants of each shape, and recomputing the reference for each (f16 inputs widened one
/// element at a time) cost 0.4 s per variant at 64x768x768. Above `FULL_CHECK_MACS` it
/// also holds the `RowSums` every row is checked with.
pub struct Reference {
    shape: MatmulShape,
    tol: Tolerance,
    /// (batch, row, col, value, Σ|a||b|) per checked element.
    expected: Vec<(u32, u32, u32, f64, f64)>,
    rows: Option<RowSums>,
}

impl Reference {
    /// The reference for `inputs`, held to [`bound`] after `dtype`'s [`output_rounding`].
    pub fn new(shape: &MatmulShape, dtype: DType, inputs: &MatmulInputs, seed: u64) -> Self {
        Self::build(
            shape,
            inputs,
            seed,
            Tolerance::of(shape.k, dtype),
            FULL_CHECK_MACS,
        )
    }

    /// Exact comparison, for inputs from [`MatmulInputs::exact`] with f32 output: any
    /// difference is an indexing bug.
    pub fn exact(shape: &MatmulShape, inputs: &MatmulInputs) -> Self {
        Self::build(shape, inputs, 0, Tolerance::EXACT, FULL_CHECK_MACS)
    }

    fn build(
        shape: &MatmulShape,
        inputs: &MatmulInputs,
        seed: u64,
        tol: Tolerance,
        full_check_macs: u64,
    ) -> Self {
        let ops = Operands::of(shape, inputs);
        // Threads for 64 K multiply-adds at least.
        let per_thread = (1 << 16) / shape.k.max(1) as usize;
        let picks = picks(shape, seed, full_check_macs);
        let expected = super::map_on_threads(&picks, per_thread, |&(bi, r, c)| {
            let (sum, mag) = ops.element(bi, r, c);
            (bi, r, c, sum, mag)
        });
        let rows = sampled(shape, full_check_macs).then(|| RowSums::new(shape, &ops, seed));
        Reference {
            shape: *shape,
            tol,
            expected,
            rows,
        }
    }

    /// Compare a kernel's output with the reference.
    pub fn check(&self, output: &HostTensor) -> Verdict {
        let (shape, tol) = (&self.shape, &self.tol);
        if output.len() as u64 != shape.c_len() {
            return Verdict::unusable(
                tol.limit,
                format!(
                    "output has {} elements, expected {}",
                    output.len(),
                    shape.c_len()
                ),
            );
        }
        let mut verdict = Verdict::new(tol.limit);
        for &(b, r, c, want, mag) in &self.expected {
            let idx = ((b as u64 * shape.m as u64 + r as u64) * shape.n as u64 + c as u64) as usize;
            let got = output.get(idx);
            // What the output's rounding cannot explain, relative to Σ|a||b|.
            let beyond = (got - want).abs() - tol.rounding * want.abs() - tol.atol;
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
        if let (true, Some(rows)) = (verdict.passed, &self.rows) {
            rows.check(shape, tol, output, &mut verdict);
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
        let ops = Operands::of(shape, inputs);
        let mut out = Vec::new();
        for bi in 0..shape.batch {
            for r in 0..shape.m {
                for c in 0..shape.n {
                    out.push(ops.element(bi, r, c).0 as f32);
                }
            }
        }
        HostTensor::F32(out)
    }

    #[test]
    fn reference_matches_a_hand_computed_case() {
        // A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]] -> C = [[19, 22], [43, 50]].
        let shape = MatmulShape::new(2, 2, 2);
        let inputs = MatmulInputs {
            a: HostTensor::F32(vec![1.0, 2.0, 3.0, 4.0]),
            b: HostTensor::F32(vec![5.0, 6.0, 7.0, -8.0]),
        };
        assert_eq!(Operands::of(&shape, &inputs).element(0, 1, 0), (43.0, 43.0));
        assert_eq!(
            Operands::of(&shape, &inputs).element(0, 1, 1),
            (-14.0, 50.0)
        );
        // Bᵀ stored [n, k]: the same numbers read transposed give A·Bᵀ.
        let t = shape.transposed_b();
        assert_eq!(
            Operands::of(&t, &inputs).element(0, 0, 1),
            (1.0 * 7.0 - 2.0 * 8.0, 1.0 * 7.0 + 2.0 * 8.0)
        );
    }

    /// The eight partial sums and the blocks add up every product, the tails included.
    #[test]
    fn dot_and_reach_sum_every_product() {
        for k in [1, 7, 8, 9, 255, 256, 257, 1000] {
            let a: Vec<f32> = (0..k).map(|i| (i % 5) as f32 - 2.0).collect();
            let b: Vec<f32> = (0..k).map(|i| (i % 3) as f32 * 0.5).collect();
            let want: f64 = a.iter().zip(&b).map(|(&x, &y)| f64::from(x * y)).sum();
            let reach: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from((x * y).abs()))
                .sum();
            assert_eq!(dot_and_reach(&a, &b), (want, reach), "k = {k}");
        }
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

    /// A reference that samples (and checks row sums) even at these small test shapes.
    fn sampling(shape: &MatmulShape, dtype: DType, inputs: &MatmulInputs) -> Reference {
        let tol = Tolerance::of(shape.k, dtype);
        Reference::build(shape, inputs, 9, tol, 1)
    }

    fn f32s(t: HostTensor) -> Vec<f32> {
        match t {
            HostTensor::F32(v) => v,
            HostTensor::F16(_) => unreachable!(),
        }
    }

    /// An element none of the samples looks at: before the row sums, a wrong value there
    /// passed.
    #[test]
    fn row_sums_catch_what_the_sampled_elements_miss() {
        let shape = MatmulShape::new(96, 80, 64).batched(2);
        let inputs = MatmulInputs::random(&shape, DType::F32, 4);
        let reference = sampling(&shape, DType::F32, &inputs);
        let good = f32s(cpu_matmul(&shape, &inputs));
        assert!(reference.check(&HostTensor::F32(good.clone())).passed);

        let picked = picks(&shape, 9, 1);
        let (b, r) = (1, 50);
        let c = (1..79).find(|&c| !picked.contains(&(b, r, c))).unwrap();
        let at = ((b * 96 + r) * 80 + c) as usize;
        for wrong in [good[at] + 0.5, f32::NAN, f32::INFINITY, 0.0] {
            let mut bad = good.clone();
            bad[at] = wrong;
            let v = reference.check(&HostTensor::F32(bad));
            let why = v.failure.clone().unwrap_or_default();
            let named = if wrong.is_finite() {
                "row C[batch=1, row=50, *] is wrong".to_string()
            } else {
                format!("C[batch=1, row=50, col={c}] is {wrong}")
            };
            assert!(why.starts_with(&named), "{wrong}: {why}");
            assert!(!v.passed && v.max_err.is_infinite(), "{v:?}");
        }
    }

    /// An 8x8 block computed from the wrong rows of A (a tile-indexing bug) that none of the
    /// sampled elements falls in fails.
    #[test]
    fn row_sums_catch_a_misplaced_tile() {
        let shape = MatmulShape::new(256, 128, 32);
        let inputs = MatmulInputs::random(&shape, DType::F32, 6);
        let reference = sampling(&shape, DType::F32, &inputs);
        let good = f32s(cpu_matmul(&shape, &inputs));
        let picked = picks(&shape, 9, 1);
        let unsampled = |r0: u32, c0: u32| {
            !picked
                .iter()
                .any(|&(_, r, c)| (r0..r0 + 8).contains(&r) && (c0..c0 + 8).contains(&c))
        };
        let tiles = (1..31).flat_map(|tr| (1..15).map(move |tc| (tr * 8, tc * 8)));
        let (r0, c0) = tiles.into_iter().find(|&(r, c)| unsampled(r, c)).unwrap();
        let mut bad = good.clone();
        for r in r0..r0 + 8 {
            for c in c0..c0 + 8 {
                bad[(r * 128 + c) as usize] = good[((r + 8) * 128 + c) as usize];
            }
        }
        let why = reference.check(&HostTensor::F32(bad)).failure.unwrap();
        assert!(why.contains(&format!("row={r0}, *]")), "{why}");
    }

    /// Outputs that are right up to their rounding pass the row sums: f16 at K = 4096, where
    /// each element may be off by an f16 ulp, and the exact check's exact sums.
    #[test]
    fn row_sums_pass_correctly_rounded_outputs() {
        let shape = MatmulShape::new(24, 40, 4096);
        for seed in 0..4 {
            let inputs = MatmulInputs::random(&shape, DType::F16, seed);
            let exact = f32s(cpu_matmul(&shape, &inputs));
            let stored = HostTensor::F16(exact.iter().map(|&c| half::f16::from_f32(c)).collect());
            let v = sampling(&shape, DType::F16, &inputs).check(&stored);
            assert!(v.passed, "seed {seed}: {v:?}");
        }

        let shape = MatmulShape::new(40, 24, 64).transposed_b();
        let inputs = MatmulInputs::exact(&shape, DType::F32, 2);
        let tol = Tolerance::EXACT;
        let exact = Reference::build(&shape, &inputs, 0, tol, 1);
        let good = f32s(cpu_matmul(&shape, &inputs));
        assert!(exact.check(&HostTensor::F32(good.clone())).passed);
        // Two unequal elements of one row that no sample looks at, swapped (an indexing
        // bug): only the row sums can see it.
        let picked = picks(&shape, 0, 1);
        let free: Vec<u32> = (0..24).filter(|&c| !picked.contains(&(0, 17, c))).collect();
        let (c0, c1) = free
            .iter()
            .flat_map(|&a| free.iter().map(move |&b| (a, b)))
            .find(|&(a, b)| a < b && good[17 * 24 + a as usize] != good[17 * 24 + b as usize])
            .unwrap();
        let mut swapped = good;
        swapped.swap(17 * 24 + c0 as usize, 17 * 24 + c1 as usize);
        let why = exact.check(&HostTensor::F32(swapped)).failure.unwrap();
        assert!(why.starts_with("row C[batch=0, row=17, *]"), "{why}");
    }
}
