//! The attention CPU reference and its check (kernel-anchors §8).
//!
//! The reference is softmax(scale·q·Kᵀ)·V per query row in f64 from the exact inputs the
//! device saw (f16 inputs widen exactly). The tolerance follows FlashAttention's rule: the
//! kernel's largest absolute error may be at most twice that of a naive implementation in
//! the kernel's storage precision (f32 math; scores, probabilities and output rounded to the
//! storage type), with an absolute floor of 1e-5 for f32 and 5e-3 for f16 storage, so
//! the bound is `max(2·naive_error, floor)`. Errors are absolute: outputs are convex
//! combinations of V rows drawn from N(0, 1). A row that sees no key must be exactly 0; any
//! NaN or infinity fails (outputs start as NaN, so an unwritten element is caught).

use crate::kernels::attention::{causal_shift, AttentionInputs};
use crate::kernels::HostTensor;
use crate::shape::{AttentionShape, DType};

use super::{Rng, Verdict};

/// Check every row when the reference costs at most this many multiply-adds; above it, check
/// the edge rows (first and last positions, tile boundaries, first and last heads and batches),
/// random rows, and one random row in every block of packed rows ([`BLOCK_CHECK_MACS`]).
const FULL_CHECK_MACS: u64 = 1 << 24;
const RANDOM_ROWS: u64 = 64;

/// Past the full check, every block of `block` consecutive packed query rows of each batch
/// and KV head has one random row checked: packed row pr = pos·rep + hi is query position pos
/// of query head g·rep + hi, the order in which the fused kernels hand rows to workgroups
/// (attention_flash_row.wgsl: a workgroup takes BR·TQ consecutive packed rows, from a
/// multiple of BR·TQ). `block` is the least power of two that keeps those rows' reference
/// within this many multiply-adds, counted as for [`FULL_CHECK_MACS`] (skv·d a row).
///
/// A fused kernel's workgroup whose rows cover a whole block and are all wrong cannot go
/// unseen, as it could among edge and random rows alone (a 64-row workgroup of one of 32
/// heads at 1024 positions is 0.2% of the rows: 64 random rows miss it 88% of the time); k
/// wrong rows in a block are caught with probability k/block. The GPU quick suite's 32-head
/// 1024-token prefill gets 64-row blocks (512 rows), the size of `flash_wg_r64`'s
/// workgroups. The naive kernel's workgroups run along one head's rows instead, so a block
/// holds part of several of them.
const BLOCK_CHECK_MACS: u64 = 1 << 26;

/// The same for a decode step (at most [`crate::tuning::DECODE_MAX_ROWS`] query rows): its
/// rows are few and long, and a decode kernel gives a workgroup one query head, or a chunk
/// of one head's keys, so only a check of every row sees every workgroup. This checks
/// llama-3.1-8b's 32 heads whole up to a context of 65 536.
const DECODE_BLOCK_CHECK_MACS: u64 = 1 << 28;

/// At most this many block rows, whatever the budget allows: the reference keeps d values
/// of each, and a shape of many short rows (large b·hkv, small skv·d) would otherwise ask
/// for millions.
const MAX_BLOCKS: u64 = 4096;

/// Absolute error floor by storage type.
pub fn floor(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 => 5e-3,
    }
}

/// Round to the storage type (f32 math is done by the caller).
fn round(dtype: DType, x: f32) -> f32 {
    match dtype {
        DType::F32 => x,
        DType::F16 => half::f16::from_f32(x).to_f32(),
    }
}

/// The last key query `i` sees (None: it sees none).
fn last_key(shape: &AttentionShape, i: u32, shift: i32) -> Option<usize> {
    let last = if shape.causal {
        (i as i64 + shift as i64).min(shape.skv as i64 - 1)
    } else {
        shape.skv as i64 - 1
    };
    (last >= 0).then_some(last as usize)
}

fn offsets(shape: &AttentionShape, b: u32, h: u32, i: u32) -> (usize, usize) {
    let d = shape.d as usize;
    let g = h / (shape.hq / shape.hkv);
    let q0 = ((b as usize * shape.hq as usize + h as usize) * shape.sq as usize + i as usize) * d;
    let kv0 = (b as usize * shape.hkv as usize + g as usize) * shape.skv as usize * d;
    (q0, kv0)
}

/// The f64 reference output row for batch `b`, query head `h`, query `i` (zeros when the
/// row sees no key).
pub fn reference_row(
    shape: &AttentionShape,
    inputs: &AttentionInputs,
    b: u32,
    h: u32,
    i: u32,
    shift: i32,
) -> Vec<f64> {
    let d = shape.d as usize;
    let mut out = vec![0.0; d];
    let Some(last) = last_key(shape, i, shift) else {
        return out;
    };
    let (q0, kv0) = offsets(shape, b, h, i);
    let scale = 1.0 / (d as f64).sqrt();
    let scores: Vec<f64> = (0..=last)
        .map(|j| {
            let k0 = kv0 + j * d;
            (0..d)
                .map(|c| inputs.q.get(q0 + c) * inputs.k.get(k0 + c))
                .sum::<f64>()
                * scale
        })
        .collect();
    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (j, s) in scores.iter().enumerate() {
        let e = (s - m).exp();
        sum += e;
        let v0 = kv0 + j * d;
        for (c, o) in out.iter_mut().enumerate() {
            *o += e * inputs.v.get(v0 + c);
        }
    }
    for o in &mut out {
        *o /= sum;
    }
    out
}

/// The same row from a naive implementation in the storage precision: f32 arithmetic, with
/// the scores, the probabilities and the output rounded to `dtype` (FlashAttention's
/// `out_pt`).
pub fn naive_row(
    shape: &AttentionShape,
    dtype: DType,
    inputs: &AttentionInputs,
    b: u32,
    h: u32,
    i: u32,
    shift: i32,
) -> Vec<f64> {
    let d = shape.d as usize;
    let Some(last) = last_key(shape, i, shift) else {
        return vec![0.0; d];
    };
    let (q0, kv0) = offsets(shape, b, h, i);
    let scale = 1.0 / (d as f32).sqrt();
    let scores: Vec<f32> = (0..=last)
        .map(|j| {
            let k0 = kv0 + j * d;
            let mut acc = 0.0f32;
            for c in 0..d {
                acc += inputs.q.get(q0 + c) as f32 * inputs.k.get(k0 + c) as f32;
            }
            round(dtype, acc * scale)
        })
        .collect();
    let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
    let sum: f32 = e.iter().sum();
    let mut out = vec![0.0f32; d];
    for (j, e) in e.iter().enumerate() {
        let p = round(dtype, e / sum);
        let v0 = kv0 + j * d;
        for (c, o) in out.iter_mut().enumerate() {
            *o += p * inputs.v.get(v0 + c) as f32;
        }
    }
    out.into_iter().map(|o| round(dtype, o) as f64).collect()
}

/// The (batch, head, query) rows to compare: all of them for small problems, else the edges
/// (where tail and diagonal handling live) plus seeded random rows.
pub fn rows_to_check(shape: &AttentionShape, seed: u64) -> Vec<(u32, u32, u32)> {
    let (b, hq, sq) = (shape.b, shape.hq, shape.sq);
    let macs = b as u64 * hq as u64 * sq as u64 * shape.skv as u64 * shape.d as u64;
    let mut rows = Vec::new();
    if macs <= FULL_CHECK_MACS {
        for bi in 0..b {
            for h in 0..hq {
                rows.extend((0..sq).map(|i| (bi, h, i)));
            }
        }
        return rows;
    }
    let rep = hq / shape.hkv;
    // Decode has one query row (sq = 1): the tail positions saturate instead of wrapping.
    let tail = [sq.saturating_sub(2), sq - 1];
    let positions = [0, 1, 7, 8, 15, 16, 31, 32, 63, 64, sq / 2, tail[0], tail[1]];
    for bi in [0, b - 1] {
        for h in [0, rep - 1, hq - 1] {
            for &i in &positions {
                if i < sq {
                    rows.push((bi, h, i));
                }
            }
        }
    }
    let mut rng = Rng::new(seed ^ 0xA77E_4710);
    for _ in 0..RANDOM_ROWS {
        rows.push((
            rng.below(b as u64) as u32,
            rng.below(hq as u64) as u32,
            rng.below(sq as u64) as u32,
        ));
    }
    // One random row in every block, in (batch, KV head, packed row) order. Blocks no longer
    // than a group's packed rows stay inside the group; longer ones (many groups, each
    // costly) span whole groups, so that the number of rows stays bounded.
    let block = row_block(shape);
    let packed = rep as u64 * sq as u64;
    let groups = b as u64 * shape.hkv as u64;
    let mut push = |group: u64, pr: u64| {
        let (bi, g) = (group / shape.hkv as u64, group % shape.hkv as u64);
        let (pos, hi) = (pr / rep as u64, pr % rep as u64);
        rows.push((bi as u32, g as u32 * rep + hi as u32, pos as u32));
    };
    if block <= packed {
        for group in 0..groups {
            for start in (0..packed).step_by(block as usize) {
                push(group, start + rng.below(block.min(packed - start)));
            }
        }
    } else {
        let total = groups * packed;
        for start in (0..total).step_by(block as usize) {
            let at = start + rng.below(block.min(total - start));
            push(at / packed, at % packed);
        }
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The packed rows per block for `shape` ([`BLOCK_CHECK_MACS`], or
/// [`DECODE_BLOCK_CHECK_MACS`] for a decode step): the least power of two whose blocks' rows
/// cost at most that much reference, and number at most [`MAX_BLOCKS`].
fn row_block(shape: &AttentionShape) -> u64 {
    let budget = if shape.sq <= crate::tuning::DECODE_MAX_ROWS {
        DECODE_BLOCK_CHECK_MACS
    } else {
        BLOCK_CHECK_MACS
    };
    let packed = (shape.hq / shape.hkv) as u64 * shape.sq as u64;
    let groups = shape.b as u64 * shape.hkv as u64;
    let per_row = shape.skv as u64 * shape.d as u64;
    let most = (budget / per_row).clamp(1, MAX_BLOCKS);
    let blocks = |block: u64| {
        if block <= packed {
            groups * packed.div_ceil(block)
        } else {
            (groups * packed).div_ceil(block)
        }
    };
    let mut block = 1u64;
    while blocks(block) > most {
        block *= 2;
    }
    block
}

/// The reference for the rows to check, computed once per benchmark and shared by every
/// variant's check.
pub struct Reference {
    shape: AttentionShape,
    rows: Vec<(u32, u32, u32)>,
    /// f64 reference rows, D values each, in `rows` order.
    want: Vec<f64>,
    /// The tolerance: max(2 · naive error, floor).
    pub bound: f64,
    /// The naive storage-precision implementation's largest error on the same rows.
    pub naive_error: f64,
}

impl Reference {
    /// The reference for `shape` with queries aligned to the last keys.
    pub fn new(shape: &AttentionShape, dtype: DType, inputs: &AttentionInputs, seed: u64) -> Self {
        Self::with_shift(shape, dtype, inputs, seed, causal_shift(shape))
    }

    /// The reference for an explicit causal diagonal (see
    /// [`AttentionVariant::prepare_with_shift`](crate::kernels::attention::AttentionVariant::prepare_with_shift)).
    pub fn with_shift(
        shape: &AttentionShape,
        dtype: DType,
        inputs: &AttentionInputs,
        seed: u64,
        shift: i32,
    ) -> Self {
        let rows = rows_to_check(shape, seed);
        // Threads for 64 K keys' work at least.
        let per_thread = (1 << 16) / (shape.skv as usize * shape.d as usize).max(1);
        let checked = super::map_on_threads(&rows, per_thread, |&(b, h, i)| {
            let r = reference_row(shape, inputs, b, h, i, shift);
            let n = naive_row(shape, dtype, inputs, b, h, i, shift);
            let error = r
                .iter()
                .zip(&n)
                .fold(0.0f64, |e, (x, y)| e.max((x - y).abs()));
            (r, error)
        });
        let mut want = Vec::with_capacity(rows.len() * shape.d as usize);
        let mut naive_error = 0.0f64;
        for (r, error) in checked {
            naive_error = naive_error.max(error);
            want.extend(r);
        }
        Reference {
            shape: *shape,
            rows,
            want,
            bound: (2.0 * naive_error).max(floor(dtype)),
            naive_error,
        }
    }

    /// Compare a kernel's output with the reference.
    pub fn check(&self, output: &HostTensor) -> Verdict {
        let s = &self.shape;
        let d = s.d as usize;
        let len = s.q_len();
        if output.len() as u64 != len {
            return Verdict::unusable(
                self.bound,
                format!("output has {} elements, expected {len}", output.len()),
            );
        }
        let mut verdict = Verdict::new(self.bound);
        'rows: for (n, &(b, h, i)) in self.rows.iter().enumerate() {
            let base = ((b as usize * s.hq as usize + h as usize) * s.sq as usize + i as usize) * d;
            for c in 0..d {
                let got = output.get(base + c);
                let want = self.want[n * d + c];
                let at = || format!("O[b={b}, h={h}, i={i}, d={c}]");
                if !verdict.record(at, got, want, (got - want).abs(), "error") {
                    break 'rows;
                }
            }
        }
        if let (Some(why), true) = (verdict.failure.as_mut(), verdict.max_err.is_finite()) {
            why.push_str(&format!(
                "; the bound is max(2 x the naive kernel's error {:.3e}, a floor)",
                self.naive_error
            ));
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(spec: &str) -> AttentionShape {
        spec.parse().unwrap()
    }

    /// The whole output from the f64 reference, rounded to f32.
    fn cpu_attention(s: &AttentionShape, inputs: &AttentionInputs, shift: i32) -> HostTensor {
        let mut out = Vec::new();
        for b in 0..s.b {
            for h in 0..s.hq {
                for i in 0..s.sq {
                    out.extend(
                        reference_row(s, inputs, b, h, i, shift)
                            .into_iter()
                            .map(|x| x as f32),
                    );
                }
            }
        }
        HostTensor::F32(out)
    }

    #[test]
    fn reference_matches_a_hand_computed_case() {
        // d=64 with one nonzero component: q = (2, 0, ...), k0 = (0, ...), k1 = (4, 0, ...).
        // Scores (scale 1/8): 0 and 1; weights 1/(1+e) and e/(1+e).
        let s = shape("b=1,hq=1,sq=1,skv=2,d=64");
        let mut q = vec![0.0f32; 64];
        q[0] = 2.0;
        let mut k = vec![0.0f32; 128];
        k[64] = 4.0;
        let mut v = vec![0.0f32; 128];
        v[0] = 1.0;
        v[64] = 3.0;
        let inputs = AttentionInputs {
            q: HostTensor::F32(q),
            k: HostTensor::F32(k),
            v: HostTensor::F32(v),
        };
        let e = std::f64::consts::E;
        let row = reference_row(&s, &inputs, 0, 0, 0, 1);
        assert!((row[0] - (1.0 + 3.0 * e) / (1.0 + e)).abs() < 1e-12);
        assert_eq!(row[1], 0.0);
    }

    #[test]
    fn causal_rows_see_a_prefix_and_gqa_reads_the_shared_head() {
        let s = shape("b=1,hq=4,hkv=2,sq=3,skv=5,d=64,causal=1");
        let inputs = AttentionInputs::random(&s, DType::F32, 3);
        // Query 0 sits at position 2: it sees keys 0..=2, so changing key 3 changes nothing.
        let before = reference_row(&s, &inputs, 0, 1, 0, causal_shift(&s));
        let mut changed = AttentionInputs::random(&s, DType::F32, 3);
        let HostTensor::F32(k) = &mut changed.k else {
            unreachable!()
        };
        k[3 * 64] += 5.0; // KV head 0 (query heads 0 and 1), key 3.
        assert_eq!(
            before,
            reference_row(&s, &changed, 0, 1, 0, causal_shift(&s))
        );
        assert_ne!(
            reference_row(&s, &inputs, 0, 1, 2, causal_shift(&s)),
            reference_row(&s, &changed, 0, 1, 2, causal_shift(&s))
        );
        // Query head 2 reads KV head 1: untouched.
        assert_eq!(
            reference_row(&s, &inputs, 0, 2, 2, causal_shift(&s)),
            reference_row(&s, &changed, 0, 2, 2, causal_shift(&s))
        );
    }

    #[test]
    fn a_correct_output_passes_and_a_wrong_one_fails() {
        let s = shape("b=2,hq=4,hkv=2,sq=9,skv=13,d=64,causal=1");
        let inputs = AttentionInputs::random(&s, DType::F32, 1);
        let reference = Reference::new(&s, DType::F32, &inputs, 0);
        let good = cpu_attention(&s, &inputs, causal_shift(&s));
        let v = reference.check(&good);
        assert!(v.passed, "{v:?}");
        assert!(v.max_err < 1e-6);
        assert_eq!(v.checked, 2 * 4 * 9 * 64);

        let HostTensor::F32(mut bad) = good.clone() else {
            unreachable!()
        };
        let (b, h, i, c) = (1, 3, 8, 5);
        bad[((b * 4 + h) * 9 + i) * 64 + c] += 1e-4;
        let v = reference.check(&HostTensor::F32(bad));
        assert!(!v.passed);
        assert!(v.failure.unwrap().contains("b=1, h=3, i=8, d=5"));

        let HostTensor::F32(mut unwritten) = good else {
            unreachable!()
        };
        unwritten[0] = f32::NAN;
        let v = reference.check(&HostTensor::F32(unwritten));
        assert!(v.failure.unwrap().contains("never wrote"));
    }

    #[test]
    fn fully_masked_rows_are_zero_in_the_reference() {
        let s = shape("b=1,hq=1,sq=4,skv=4,d=64,causal=1");
        let inputs = AttentionInputs::random(&s, DType::F32, 2);
        // shift -2: queries 0 and 1 see no key.
        assert!(reference_row(&s, &inputs, 0, 0, 1, -2)
            .iter()
            .all(|&x| x == 0.0));
        assert!(naive_row(&s, DType::F32, &inputs, 0, 0, 1, -2)
            .iter()
            .all(|&x| x == 0.0));
        assert!(reference_row(&s, &inputs, 0, 0, 2, -2)
            .iter()
            .any(|&x| x != 0.0));
    }

    #[test]
    fn huge_logits_stay_finite_in_the_reference() {
        let s = shape("b=1,hq=2,sq=8,skv=8,d=64");
        let inputs = AttentionInputs::with_logit_scale(&s, DType::F32, 5, 1000.0);
        let r = Reference::new(&s, DType::F32, &inputs, 0);
        assert!(r.want.iter().all(|x| x.is_finite()));
        assert!(r.naive_error.is_finite());
    }

    #[test]
    fn bound_follows_the_naive_error_with_a_floor() {
        let s = shape("b=1,hq=2,sq=16,d=64");
        let inputs = AttentionInputs::random(&s, DType::F16, 4);
        let r = Reference::new(&s, DType::F16, &inputs, 0);
        assert!(r.naive_error > 0.0);
        assert_eq!(r.bound, (2.0 * r.naive_error).max(5e-3));
        let inputs = AttentionInputs::random(&s, DType::F32, 4);
        let r = Reference::new(&s, DType::F32, &inputs, 0);
        assert!(r.naive_error < 1e-5);
        assert_eq!(r.bound, 1e-5);
    }

    /// Every block of packed rows of every batch and KV head holds a checked row, so a
    /// workgroup no larger than a block cannot compute wrong rows unseen.
    fn assert_every_block_checked(s: &AttentionShape, rows: &[(u32, u32, u32)], block: u64) {
        let rep = s.hq / s.hkv;
        let packed = rep as u64 * s.sq as u64;
        for bi in 0..s.b {
            for g in 0..s.hkv {
                for start in (0..packed).step_by(block as usize) {
                    let hit = rows.iter().any(|&(rb, h, i)| {
                        let pr = i as u64 * rep as u64 + (h % rep) as u64;
                        rb == bi && h / rep == g && (start..start + block).contains(&pr)
                    });
                    assert!(hit, "{s}: batch {bi}, KV head {g}, packed rows {start}..");
                }
            }
        }
    }

    #[test]
    fn every_workgroup_sized_block_of_a_prefill_has_a_checked_row() {
        // The GPU quick suite's prefill: 64-row blocks, one row in each, 512 in all.
        let s = shape("b=1,hq=32,hkv=8,sq=1024,skv=1024,d=128,causal=1");
        assert_eq!(row_block(&s), 64);
        let rows = rows_to_check(&s, 7);
        assert_every_block_checked(&s, &rows, 64);
        assert!(rows.len() < 512 + 200, "{} rows", rows.len());
        // lavapipe's largest: smaller blocks still, as its rows cost half as much.
        let s = shape("b=1,hq=8,hkv=8,sq=1024,skv=1024,d=64,causal=1");
        assert!(row_block(&s) <= 64);
        assert_every_block_checked(&s, &rows_to_check(&s, 7), row_block(&s));
        // A decode step is checked whole, to the standard GPU suite's longest context.
        for spec in [
            "b=4,hq=32,hkv=8,sq=1,skv=4096,d=128,causal=1",
            "b=1,hq=32,hkv=8,sq=1,skv=32768,d=128,causal=1",
        ] {
            let s = shape(spec);
            assert_eq!(row_block(&s), 1, "{spec}");
            assert_eq!(rows_to_check(&s, 7).len() as u32, s.b * s.hq, "{spec}");
        }
    }

    #[test]
    fn the_block_rows_stay_bounded_for_many_costly_or_many_short_rows() {
        // A batched long decode: blocks span several (batch, KV head) groups, 64 rows in all
        // (2^28 of reference at 2^22 a row), beside edges and random rows.
        let s = shape("b=64,hq=32,hkv=8,sq=1,skv=32768,d=128,causal=1");
        assert_eq!(row_block(&s), 32);
        assert!(rows_to_check(&s, 7).len() <= 64 + 64 + 6);
        // Millions of short rows: at most MAX_BLOCKS of them, not one per group.
        let s = shape("b=65535,hq=1024,hkv=1024,sq=1,skv=1,d=64,causal=0");
        let rows = rows_to_check(&s, 7);
        assert!(
            rows.len() as u64 <= MAX_BLOCKS + 64 + 6,
            "{} rows",
            rows.len()
        );
        assert!(
            rows.iter().any(|&(b, _, _)| b > 60000),
            "blocks reach the last batches"
        );
    }

    #[test]
    fn big_shapes_are_sampled_with_their_edges() {
        let s = shape("b=2,hq=32,hkv=8,sq=4096,d=128,causal=1");
        let rows = rows_to_check(&s, 3);
        // Blocks grow to keep the reference bounded: 128 of them here.
        assert_eq!(row_block(&s), 2048);
        assert_every_block_checked(&s, &rows, 2048);
        assert!(rows.len() < 350, "{} rows", rows.len());
        for r in [(0, 0, 0), (1, 31, 4095), (0, 3, 64), (1, 0, 2048)] {
            assert!(rows.contains(&r), "{r:?}");
        }
        // A long decode (one query row, too big to check whole): every head's row 0, without
        // the tail positions underflowing (this panicked in debug builds at skv = 8192).
        let s = shape("b=1,hq=32,hkv=8,sq=1,skv=8192,d=128,causal=1");
        let rows = rows_to_check(&s, 3);
        assert!(rows.iter().all(|&(b, h, i)| b == 0 && h < 32 && i == 0));
        for h in [0, 3, 31] {
            assert!(rows.contains(&(0, h, 0)), "head {h}");
        }
    }
}
