//! The texture-fed decode matmul (`gemv_stex_*`): A of at most [`MAX_M`] rows times Bᵀ,
//! B staged once (the weights) into an rgba32uint storage texture that each lane reads row
//! by row. See the header of `kernels/matmul_gemv_texture.wgsl` for why and how.

use std::fmt::Write as _;

use super::gemv::skinny_refusal;
use super::texel_layout::TexelLayout;
use super::{
    bind_resources, check_workgroups, compile, enable_line, output_buffer, render, uniform_buffer,
    uniform_readable, unpack_halves, weights, Dispatch, HostTensor, PrepareError, Program,
};
use crate::gpu::Gpu;
use crate::shape::{DType, MatmulShape};

const TEMPLATE: &str = include_str!("../../kernels/matmul_gemv_texture.wgsl");

/// The most rows of A: each is unrolled, TN accumulators a row. Timed in turns on lavapipe
/// (f16, n = k = 2048), `gemv_stex_t4_x4` ran 1.54x the best GEMM tile at m = 8 (15.4 vs
/// 10.0 GFLOP/s) and 0.86x at m = 16 (16.5 vs 19.2), so batched decode up to 8 sequences
/// comes here and prefill goes to the GEMM kernels. (gemv_ubo stops at [`super::gemv::GEMV_MAX_M`].)
pub const MAX_M: u32 = 8;

/// The bytes of one texel: rgba32uint.
const TEXEL_BYTES: u32 = 16;

/// A's uniform binding: 64 KiB, WebGPU's default (and least) max uniform binding size. The
/// shader declares the whole binding, whatever the shape, so that every shape with the same
/// rows of A, dtype and B folding shares one compiled kernel (lavapipe compiles each
/// distinct shader, 1-2 s for the gemv_ubo kernels, which are built per shape).
const MAX_A_BYTES: u64 = 1 << 16;

/// Output columns per lane and 8-lane groups per workgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemvTexTile {
    pub tn: u32,
    pub nsg: u32,
}

impl GemvTexTile {
    pub fn invocations(&self) -> u32 {
        8 * self.nsg
    }

    /// Output columns per workgroup.
    pub fn columns(&self) -> u32 {
        8 * self.nsg * self.tn
    }

    pub fn workgroups(&self, shape: &MatmulShape) -> [u32; 3] {
        [shape.n.div_ceil(self.columns()), 1, 1]
    }
}

/// B's texel layout for `shape` in `dtype`, in textures of at most `max_texture` texels a
/// side, or why the kernel does not take the shape.
pub fn layout(
    shape: &MatmulShape,
    dtype: DType,
    max_texture: u32,
) -> Result<TexelLayout, PrepareError> {
    let refuse = |why: String| Err(PrepareError::Unsupported(why));
    if let Some(why) = skinny_refusal(shape, MAX_M) {
        return refuse(why);
    }
    let per_texel = TEXEL_BYTES / dtype.size() as u32;
    if !shape.k.is_multiple_of(per_texel) {
        return refuse(format!(
            "needs k a multiple of {per_texel} in {dtype}, whole 16-byte texels (k={})",
            shape.k
        ));
    }
    let a_bytes = shape.a_len() * dtype.size();
    if a_bytes > MAX_A_BYTES {
        return refuse(format!(
            "A ({a_bytes} bytes) must fit one {MAX_A_BYTES}-byte uniform binding"
        ));
    }
    TexelLayout::new("B", shape.k / per_texel, shape.n, max_texture)
}

/// Statements turning the 16-byte texel `{t}u` (a WGSL `vec4<u32>`) into `vec4<f32>`s, and
/// its elements as f32 expressions in k order: 8 halves (`{t}0`, `{t}1`, unpacked as the
/// uniform-window kernels unpack theirs) or 4 f32 bit patterns (`{t}0`).
fn elements(t: &str, dtype: DType) -> (String, Vec<String>) {
    let (unpack, vectors) = match dtype {
        DType::F16 => (unpack_halves(t), 2),
        DType::F32 => (format!("let {t}0 = bitcast<vec4<f32>>({t}u);"), 1),
    };
    let names = (0..vectors)
        .flat_map(|v| ["x", "y", "z", "w"].map(|c| format!("{t}{v}.{c}")))
        .collect();
    (unpack, names)
}

/// The WGSL for `shape` in `dtype` with `tile`, B laid out as `layout`.
pub fn source(
    shape: &MatmulShape,
    dtype: DType,
    tile: GemvTexTile,
    layout: &TexelLayout,
) -> String {
    let (m, tn) = (shape.m, tile.tn);
    let mut declare = String::new();
    for j in 0..tn {
        let _ = writeln!(
            declare,
            "    let col{j} = base + {}u;\n    let row{j} = min(col{j}, last);",
            8 * j
        );
        for r in 0..m {
            let _ = writeln!(declare, "    var acc{r}_{j} = 0.0;");
        }
    }
    let mut step = String::new();
    let ind = "        ";
    let mut a_elems = Vec::new();
    for r in 0..m {
        let _ = writeln!(step, "{ind}let ta{r}u = aw[{r}u * p.kt + t];");
        let (unpack, names) = elements(&format!("ta{r}"), dtype);
        let _ = writeln!(step, "{ind}{unpack}");
        a_elems.push(names);
    }
    for j in 0..tn {
        let _ = writeln!(
            step,
            "{ind}let tb{j}u = textureLoad(b_tex, b_texel(t, row{j}));"
        );
        let (unpack, b) = elements(&format!("tb{j}"), dtype);
        let _ = writeln!(step, "{ind}{unpack}");
        for (r, a) in a_elems.iter().enumerate() {
            let mut sum = format!("acc{r}_{j}");
            for (x, y) in a.iter().zip(&b) {
                sum = format!("fma({x}, {y}, {sum})");
            }
            let _ = writeln!(step, "{ind}acc{r}_{j} = {sum};");
        }
    }
    let mut store = String::new();
    for j in 0..tn {
        for r in 0..m {
            let _ = writeln!(
                store,
                "    if (col{j} < p.n) {{\n        c[{r}u * p.n + col{j}] = E(acc{r}_{j});\n    }}"
            );
        }
    }
    render(
        TEMPLATE,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().to_string()),
            ("AV", (MAX_A_BYTES / u64::from(TEXEL_BYTES)).to_string()),
            ("B_TEXEL", layout.wgsl("b_texel")),
            ("WG", tile.invocations().to_string()),
            ("COLS", tile.columns().to_string()),
            ("GROUP_COLS", (8 * tn).to_string()),
            ("DECLARE", declare.trim_end().to_string()),
            ("STEP", step.trim_end().to_string()),
            ("STORE", store.trim_end().to_string()),
        ],
    )
}

/// Build the program: B staged once into its texture (the weights), A into a uniform
/// buffer, one dispatch.
pub fn prepare(
    gpu: &Gpu,
    shape: &MatmulShape,
    dtype: DType,
    a: &HostTensor,
    b: &HostTensor,
    tile: GemvTexTile,
    label: &str,
) -> Result<Program, PrepareError> {
    let layout = layout(shape, dtype, gpu.limits().max_texture_dimension_2d)?;
    let workgroups = tile.workgroups(shape);
    check_workgroups(gpu, workgroups)?;
    let pipeline = compile(gpu, label, &source(shape, dtype, tile, &layout), "main")?;

    let params: [u32; 4] = [shape.n, layout.width, 0, 0];
    let params = uniform_buffer(gpu, "gemv params", bytemuck::bytes_of(&params));
    // Padded to the binding the shader declares.
    let a_buf = uniform_readable(gpu, "A", a.bytes(), MAX_A_BYTES - a.bytes().len() as u64);
    let c = output_buffer(gpu, "C", dtype, shape.c_len());
    // Copies of B, the weights, for the timing to cycle through (see `weights`).
    let textures = weights::textures(
        gpu,
        &layout,
        "B texels",
        wgpu::TextureFormat::Rgba32Uint,
        wgpu::TextureUsages::STORAGE_BINDING,
        b.bytes(),
        TEXEL_BYTES,
    );
    let bind_groups = textures
        .iter()
        .map(|texture| {
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let resources = vec![
                params.as_entire_binding(),
                a_buf.as_entire_binding(),
                wgpu::BindingResource::TextureView(&view),
                c.as_entire_binding(),
            ];
            bind_resources(gpu, &pipeline, Some(label), resources)
        })
        .collect();
    Ok(Program::single(
        Dispatch::cycling(pipeline, bind_groups, workgroups),
        c,
        dtype,
        shape.c_len(),
        vec![params, a_buf],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_decode_shapes_and_refuses_the_rest() {
        let lm_head = MatmulShape::new(1, 50257, 768).transposed_b();
        // 96 texels of 8 halves a row; 50257 rows fold into 4 blocks of 16384.
        let l = layout(&lm_head, DType::F16, 16384).unwrap();
        assert_eq!((l.width, l.height, l.blocks()), (96, 50257, 4));
        let l = layout(&lm_head, DType::F32, 16384).unwrap();
        assert_eq!(l.width, 192);
        for (shape, dtype) in [
            (MatmulShape::new(9, 64, 64).transposed_b(), DType::F32),
            (MatmulShape::new(1, 64, 64), DType::F32),
            (
                MatmulShape::new(1, 64, 64).transposed_b().batched(2),
                DType::F32,
            ),
            // Half a texel of k.
            (MatmulShape::new(1, 64, 12).transposed_b(), DType::F16),
            (MatmulShape::new(1, 64, 6).transposed_b(), DType::F32),
            // A over one uniform binding.
            (MatmulShape::new(4, 64, 8192).transposed_b(), DType::F32),
        ] {
            assert!(layout(&shape, dtype, 16384).is_err(), "{shape} {dtype}");
        }
    }

    #[test]
    fn renders_every_row_and_column_for_both_dtypes() {
        for dtype in [DType::F16, DType::F32] {
            let shape = MatmulShape::new(3, 40, 64).transposed_b();
            let tile = GemvTexTile { tn: 2, nsg: 4 };
            let src = source(&shape, dtype, tile, &layout(&shape, dtype, 16384).unwrap());
            for (r, j) in [(0, 0), (2, 1)] {
                assert!(src.contains(&format!("c[{r}u * p.n + col{j}]")), "{src}");
            }
            assert!(!src.contains("acc3_0") && !src.contains("col2"), "{src}");
            assert!(src.contains("@workgroup_size(32, 1, 1)"));
        }
    }

    #[test]
    fn the_workgroups_cover_every_column() {
        let tile = GemvTexTile { tn: 4, nsg: 4 };
        for n in [1, 127, 128, 129, 50257] {
            let [x, y, z] = tile.workgroups(&MatmulShape::new(1, n, 64).transposed_b());
            assert!(
                x * tile.columns() >= n && (x - 1) * tile.columns() < n,
                "{n}"
            );
            assert_eq!((y, z), (1, 1));
        }
    }
}
