//! The native CPU baseline: the same matmul on the same cores with a well-kept Rust GEMM
//! (`matrixmultiply`, multithreaded), so a software adapter's numbers can be read against
//! what the CPU does without a GPU API in between. Only offered on CPU adapters, for f32.
//! Its rows are never `chosen` and never priced: they are a yardstick, not a kernel.

use std::time::{Duration, Instant};

use crate::kernels::matmul::MatmulInputs;
use crate::kernels::HostTensor;
use crate::shape::MatmulShape;

/// The `variant` name of native rows.
pub const VARIANT: &str = "native_cpu_matrixmultiply";

/// Use `threads` worker threads (matrixmultiply supports 1 to 4). Must be called before the
/// first native GEMM; later calls have no effect.
pub fn set_threads(threads: usize) {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    }
}

/// A prepared native GEMM: f32 operands and an output buffer.
pub struct NativeGemm {
    shape: MatmulShape,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl NativeGemm {
    /// None for f16 inputs (matrixmultiply has no f16 GEMM).
    pub fn new(shape: &MatmulShape, inputs: &MatmulInputs) -> Option<NativeGemm> {
        let (HostTensor::F32(a), HostTensor::F32(b)) = (&inputs.a, &inputs.b) else {
            return None;
        };
        Some(NativeGemm {
            shape: *shape,
            a: a.clone(),
            b: b.clone(),
            c: vec![f32::NAN; shape.c_len() as usize],
        })
    }

    /// One C = A·B (or A·Bᵀ, through strides) for every batch.
    pub fn run(&mut self) {
        let s = self.shape;
        let (m, n, k) = (s.m as usize, s.n as usize, s.k as usize);
        // Row-major A [m, k]; B [k, n] or Bᵀ stored [n, k] (read through swapped strides).
        let (rsb, csb) = if s.transpose_b {
            (1, k as isize)
        } else {
            (n as isize, 1)
        };
        for batch in 0..s.batch as usize {
            let a = &self.a[batch * m * k..];
            let b = &self.b[batch * k * n..];
            let c = &mut self.c[batch * m * n..];
            // SAFETY: the slices hold m·k, k·n and m·n elements from their starts, and the
            // strides address exactly those row-major (or transposed) layouts.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        }
    }

    /// Time `iters` runs.
    pub fn time(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.run();
        }
        start.elapsed()
    }

    pub fn output(&self) -> HostTensor {
        HostTensor::F32(self.c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::DType;

    #[test]
    fn native_gemm_matches_the_reference_exactly_on_integers() {
        for shape in [
            MatmulShape::new(13, 7, 9).batched(2),
            MatmulShape::new(5, 6, 7).transposed_b(),
        ] {
            let inputs = MatmulInputs::exact(&shape, DType::F32, 3);
            let mut g = NativeGemm::new(&shape, &inputs).unwrap();
            g.run();
            let v = crate::verify::matmul::check_exact(&shape, &inputs, &g.output());
            assert!(v.passed, "{shape}: {:?}", v.failure);
        }
    }

    #[test]
    fn f16_has_no_native_baseline() {
        let shape = MatmulShape::new(2, 2, 2);
        assert!(NativeGemm::new(&shape, &MatmulInputs::random(&shape, DType::F16, 1)).is_none());
    }
}
