//! The cooperative decode matmul (`gemv_coop_*`): A of at most [`MAX_M`] rows times Bᵀ, each
//! workgroup's lanes striding together along a few B rows, then adding their partial sums.
//! The GPU design; see the header of `kernels/matmul_gemv_coop.wgsl` for why.

use super::gemv::skinny_refusal;
use super::gemv_texture::MAX_M;
use super::{
    bind, check_buffer, check_workgroup, check_workgroups, compile, enable_line, output_buffer,
    render, storage_buffer, uniform_buffer, unpack_halves, weights, Dispatch, HostTensor,
    PrepareError, Program,
};
use crate::gpu::Gpu;
use crate::shape::{DType, MatmulShape};

const TEMPLATE: &str = include_str!("../../kernels/matmul_gemv_coop.wgsl");

/// The bytes of the unit a lane loads: a `vec4<u32>`.
const UNIT_BYTES: u64 = 16;

/// WebGPU's cap on each dimension of a dispatch, and the row of the 2-D grid.
const GRID_X_MAX: u32 = 65_535;

/// B rows per workgroup and lanes per workgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemvCoopTile {
    pub r: u32,
    pub wg: u32,
}

impl GemvCoopTile {
    /// Workgroups for `shape` on the 2-D grid: `ceil(n / r)` of them in rows of at most
    /// 65535, as even as they divide (a full first row would leave llama-3.1-8b's LM head
    /// 2814 spare workgroups, each running the whole k loop to store nothing).
    pub fn workgroups(&self, shape: &MatmulShape) -> [u32; 3] {
        let total = shape.n.div_ceil(self.r).max(1);
        let x = total.div_ceil(total.div_ceil(GRID_X_MAX));
        [x, total.div_ceil(x), 1]
    }

    /// Workgroup memory: one f32 per lane and accumulator.
    pub fn workgroup_bytes(&self, m: u32) -> u32 {
        self.wg * m * self.r * 4
    }
}

/// Why the kernel does not take `shape` in `dtype` with `tile`, if it does not.
pub fn refusal(shape: &MatmulShape, dtype: DType, tile: GemvCoopTile) -> Option<String> {
    if let Some(why) = skinny_refusal(shape, MAX_M) {
        return Some(why);
    }
    let per_unit = UNIT_BYTES / dtype.size();
    if !u64::from(shape.k).is_multiple_of(per_unit) {
        return Some(format!(
            "needs k a multiple of {per_unit} in {dtype}, whole 16-byte loads (k={})",
            shape.k
        ));
    }
    // Lanes 0 .. m·r store the results.
    (shape.m * tile.r > tile.wg).then(|| {
        format!(
            "{} rows of A times {} B rows are more results than the {} lanes that store them",
            shape.m, tile.r, tile.wg
        )
    })
}

/// The WGSL for `shape` (its rows of A) in `dtype` with `tile`.
pub fn source(shape: &MatmulShape, dtype: DType, tile: GemvCoopTile) -> String {
    assert!(tile.wg.is_power_of_two(), "the tree needs a power of two");
    let dot = match dtype {
        DType::F16 => format!(
            "    {}\n    {}\n    return dot(x0, y0) + dot(x1, y1);",
            unpack_halves("x"),
            unpack_halves("y")
        ),
        DType::F32 => "    return dot(bitcast<vec4<f32>>(xu), bitcast<vec4<f32>>(yu));".into(),
    };
    render(
        TEMPLATE,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().to_string()),
            ("M", shape.m.to_string()),
            ("R", tile.r.to_string()),
            ("WG", tile.wg.to_string()),
            ("DOT", dot),
        ],
    )
}

/// Build the program: B staged once (the weights, in copies for the timing to cycle
/// through), A as it is, one dispatch.
pub fn prepare(
    gpu: &Gpu,
    shape: &MatmulShape,
    dtype: DType,
    a: &HostTensor,
    b: &HostTensor,
    tile: GemvCoopTile,
    label: &str,
) -> Result<Program, PrepareError> {
    if let Some(why) = refusal(shape, dtype, tile) {
        return Err(PrepareError::Unsupported(why));
    }
    check_workgroup(gpu, tile.wg, tile.workgroup_bytes(shape.m), "")?;
    check_buffer(gpu, "A", a.bytes().len() as u64)?;
    check_buffer(gpu, "B", b.bytes().len() as u64)?;
    let workgroups = tile.workgroups(shape);
    check_workgroups(gpu, workgroups)?;
    let pipeline = compile(gpu, label, &source(shape, dtype, tile), "main")?;

    let kv = (u64::from(shape.k) * dtype.size() / UNIT_BYTES) as u32;
    let params: [u32; 4] = [shape.n, kv, workgroups[0], 0];
    let params = uniform_buffer(gpu, "gemv params", bytemuck::bytes_of(&params));
    let a_buf = storage_buffer(gpu, "A", a.bytes(), false);
    let c = output_buffer(gpu, "C", dtype, shape.c_len());
    // Copies of B, the weights, for the timing to cycle through (see `weights`).
    let b_bufs = weights::buffers(
        gpu,
        "B",
        b.bytes(),
        b.bytes().len() as u64,
        wgpu::BufferUsages::STORAGE,
    );
    let bind_groups = b_bufs
        .iter()
        .map(|b_buf| bind(gpu, &pipeline, &[&params, &a_buf, b_buf, &c]))
        .collect();
    let mut keep = vec![params, a_buf];
    keep.extend(b_bufs);
    Ok(Program::single(
        Dispatch::cycling(pipeline, bind_groups, workgroups),
        c,
        dtype,
        shape.c_len(),
        keep,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_covers_every_row_within_the_dimension_cap() {
        let tile = GemvCoopTile { r: 2, wg: 64 };
        for n in [1, 2, 3, 4096, 131_070, 131_071, 128_256 * 2] {
            let [x, y, z] = tile.workgroups(&MatmulShape::new(1, n, 64).transposed_b());
            assert!(x <= GRID_X_MAX && y <= GRID_X_MAX && z == 1, "{n}");
            let rows = u64::from(x) * u64::from(y) * u64::from(tile.r);
            assert!(rows >= u64::from(n), "{n}: {x}x{y}");
            // No whole grid row is spare, and less than a row's worth of workgroups is.
            assert!(u64::from(x) * u64::from(y - 1) * u64::from(tile.r) < u64::from(n));
            let total = u64::from(n).div_ceil(u64::from(tile.r));
            assert!(
                u64::from(x) * u64::from(y) - total < u64::from(y),
                "{n}: {x}x{y}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let tile = GemvCoopTile { r: 4, wg: 16 };
        let ok = MatmulShape::new(4, 100, 64).transposed_b();
        assert_eq!(refusal(&ok, DType::F16, tile), None);
        for (shape, dtype) in [
            // Five rows of A by four B rows: 20 results, 16 lanes.
            (MatmulShape::new(5, 100, 64).transposed_b(), DType::F32),
            (MatmulShape::new(9, 100, 64).transposed_b(), DType::F32),
            (MatmulShape::new(1, 100, 64), DType::F32),
            (MatmulShape::new(1, 100, 12).transposed_b(), DType::F16),
            (MatmulShape::new(1, 100, 6).transposed_b(), DType::F32),
        ] {
            assert!(refusal(&shape, dtype, tile).is_some(), "{shape} {dtype}");
        }
    }

    #[test]
    fn renders_both_dtypes_with_every_field() {
        let shape = MatmulShape::new(3, 40, 64).transposed_b();
        let tile = GemvCoopTile { r: 2, wg: 64 };
        let f16 = source(&shape, DType::F16, tile);
        assert!(f16.contains("enable f16;") && f16.contains("unpack2x16float(xu.x)"));
        assert!(f16.contains("const M: u32 = 3u;") && f16.contains("@workgroup_size(64, 1, 1)"));
        let f32 = source(&shape, DType::F32, tile);
        assert!(f32.contains("bitcast<vec4<f32>>(xu)") && !f32.contains("enable f16"));
    }
}
