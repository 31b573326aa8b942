//! The matrix-vector matmul for decode on lavapipe (`gemv_ubo_*`): A with at most
//! [`GEMV_MAX_M`] rows times Bᵀ, B streamed through uniform-buffer windows. See the header of
//! `kernels/matmul_gemv_ubo.wgsl` for why; [`super::matmul::MatmulVariant::Gemv`] offers it.

use std::fmt::Write as _;

use super::slot_switch;
use super::{bind_resources, check_workgroups, compile, enable_line, render, require_subgroups};
use super::{output_buffer, uniform_buffer, uniform_readable, unpack_halves};
use super::{weights, Dispatch, HostTensor, PrepareError, Program};
use crate::gpu::Gpu;
use crate::shape::{DType, MatmulShape};

const GEMV: &str = include_str!("../../kernels/matmul_gemv_ubo.wgsl");

/// The most A rows the kernel unrolls (decode batch sizes).
pub const GEMV_MAX_M: u32 = 4;

/// The most B windows one dispatch binds (uniform bindings: the table, A and these).
pub const GEMV_MAX_WINDOWS: u32 = 12;

/// A variant's tile: `tr` B rows per block (unrolled) and `rb` blocks per workgroup (a
/// loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemvTile {
    pub tr: u32,
    pub rb: u32,
}

/// How B is cut into uniform windows of whole rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemvPlan {
    /// Bytes bound per window (<= 64 KiB).
    pub window_bytes: u64,
    /// B rows per window.
    pub rows: u32,
    /// Windows covering all n rows.
    pub windows: u32,
    /// B rows per block: the variant's, or fewer when a window holds fewer.
    pub tr: u32,
    /// Blocks per workgroup: the variant's, or fewer when a window holds fewer.
    pub rb: u32,
}

impl GemvPlan {
    /// Workgroups per window.
    pub fn workgroups_per_window(&self) -> u32 {
        self.rows.div_ceil(self.tr * self.rb)
    }
}

/// Vec4s per row: `vec4<f32>` for f32, `vec4<u32>` (8 halves) for f16.
fn row_vec4s(k: u32, dtype: DType) -> u32 {
    match dtype {
        DType::F32 => k / 4,
        DType::F16 => k / 8,
    }
}

/// Why a matrix-vector kernel for at most `max_m` rows of A does not take `shape`, if it
/// does not: the decode matmuls read whole B rows (B stored `[n, k]`), of one batch.
pub fn skinny_refusal(shape: &MatmulShape, max_m: u32) -> Option<String> {
    if !shape.transpose_b {
        return Some("reads B rows, so needs B stored [n, k] (transpose_b=1)".into());
    }
    if shape.batch != 1 {
        return Some(format!(
            "for batch 1 (this shape has batch={})",
            shape.batch
        ));
    }
    (shape.m > max_m).then(|| {
        format!(
            "for at most {max_m} rows of A (decode); this shape has m={}",
            shape.m
        )
    })
}

/// The window plan for `shape` with the adapter's uniform binding size and offset alignment,
/// or why the kernel does not apply.
pub fn plan(
    shape: &MatmulShape,
    dtype: DType,
    GemvTile { tr, rb }: GemvTile,
    max_binding: u64,
    align: u64,
) -> Result<GemvPlan, String> {
    if let Some(why) = skinny_refusal(shape, GEMV_MAX_M) {
        return Err(why);
    }
    let unit = if dtype == DType::F16 { 8 } else { 4 };
    if !shape.k.is_multiple_of(unit) {
        return Err(format!(
            "needs k a multiple of {unit} in {dtype} (k={})",
            shape.k
        ));
    }
    let window_bytes = max_binding.min(1 << 16) / 16 * 16;
    let row_bytes = shape.k as u64 * dtype.size();
    let a_bytes = shape.m as u64 * row_bytes;
    if a_bytes > window_bytes {
        return Err(format!(
            "A ({a_bytes} bytes) must fit one {window_bytes}-byte uniform binding"
        ));
    }
    // Binding offsets are aligned down, so a window may start align - 16 bytes early.
    let rows = window_bytes.saturating_sub(align.max(16) - 16) / row_bytes;
    if rows == 0 {
        return Err(format!(
            "a row of k={} does not fit a {window_bytes}-byte uniform window",
            shape.k
        ));
    }
    let rows = rows.min(shape.n as u64) as u32;
    let tr = tr.min(rows);
    Ok(GemvPlan {
        window_bytes,
        rows,
        windows: shape.n.div_ceil(rows),
        tr,
        rb: rb.min(rows.div_ceil(tr)),
    })
}

/// The WGSL for `shape` in `dtype` under `plan`, with `nw` windows per dispatch.
pub fn source(shape: &MatmulShape, dtype: DType, plan: &GemvPlan, nw: u32) -> String {
    let f16 = dtype == DType::F16;
    let kv = row_vec4s(shape.k, dtype);
    let kw = if f16 { "u32" } else { "f32" };
    let (m, tr) = (shape.m, plan.tr);
    let mut declare = String::new();
    for t in 0..tr {
        let _ = writeln!(
            declare,
            "                let wb{t} = slot.z + min(first + {t}u, slot.y - 1u) * KV;"
        );
        for r in 0..m {
            let _ = writeln!(declare, "                var acc{r}_{t} = 0.0;");
        }
    }
    // The loop body over this lane's vec4s, with the window binding written as `@B`.
    let mut step = String::new();
    let ind = "                    ";
    for r in 0..m {
        if f16 {
            let _ = writeln!(
                step,
                "{ind}let a{r}u = aw[{r}u * KV + cv]; {}",
                unpack_halves(&format!("a{r}"))
            );
        } else {
            let _ = writeln!(step, "{ind}let a{r} = aw[{r}u * KV + cv];");
        }
    }
    for t in 0..tr {
        if f16 {
            let _ = writeln!(
                step,
                "{ind}let b{t}u = @B[wb{t} + cv]; {}",
                unpack_halves(&format!("b{t}"))
            );
            for r in 0..m {
                let _ = writeln!(
                    step,
                    "{ind}acc{r}_{t} += dot(a{r}0, b{t}0) + dot(a{r}1, b{t}1);"
                );
            }
        } else {
            let _ = writeln!(step, "{ind}let b{t} = @B[wb{t} + cv];");
            for r in 0..m {
                let _ = writeln!(step, "{ind}acc{r}_{t} += dot(a{r}, b{t});");
            }
        }
    }
    let mut bindings = String::new();
    for i in 0..nw {
        let _ = writeln!(
            bindings,
            "@group(0) @binding({}) var<uniform> bw{i}: array<vec4<{kw}>, {}>;",
            2 + i,
            plan.window_bytes / 16
        );
    }
    let mut store = String::new();
    for t in 0..tr {
        for r in 0..m {
            let _ = writeln!(
                store,
                "                let s{r}_{t} = subgroupAdd(acc{r}_{t});"
            );
        }
        let _ = writeln!(
            store,
            "                if (lane == 0u && first + {t}u < slot.y) {{"
        );
        for r in 0..m {
            let _ = writeln!(
                store,
                "                    c[{r}u * N + slot.x + first + {t}u] = E(s{r}_{t});"
            );
        }
        let _ = writeln!(store, "                }}");
    }
    let windows = slot_switch("wid.y", nw, |i| {
        format!(
            "            for (var rb = 0u; rb < RB; rb++) {{
                let first = (wid.x * RB + rb) * TR;
                if (first >= slot.y) {{
                    break;
                }}
{}
                for (var cv = lane; cv < KV; cv += 8u) {{
{}
                }}
{}
            }}",
            declare.trim_end(),
            step.replace("@B", &format!("bw{i}")).trim_end(),
            store.trim_end()
        )
    });
    render(
        GEMV,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("KW", kw.into()),
            ("M", m.to_string()),
            ("N", shape.n.to_string()),
            ("KV", kv.to_string()),
            ("TR", tr.to_string()),
            ("RB", plan.rb.to_string()),
            ("NW", nw.to_string()),
            ("AV", (m * kv).to_string()),
            ("B_BINDINGS", bindings.trim_end().to_string()),
            ("C_BINDING", (2 + nw).to_string()),
            ("WINDOWS", windows),
        ],
    )
}

/// The uniform-binding offset alignment of `gpu` (at least 16 bytes, a vec4).
fn uniform_align(gpu: &Gpu) -> u64 {
    (gpu.limits().min_uniform_buffer_offset_alignment as u64).max(16)
}

/// The window plan for `shape` on `gpu`'s limits and the windows one dispatch binds, or why
/// the kernel cannot run it there (subgroups, uniform bindings, the shape).
fn adapter_plan(
    gpu: &Gpu,
    shape: &MatmulShape,
    dtype: DType,
    tile: GemvTile,
) -> Result<(GemvPlan, u32), PrepareError> {
    require_subgroups(gpu, 8, "sums each row's lanes with subgroupAdd")?;
    let limits = gpu.limits();
    let plan = plan(
        shape,
        dtype,
        tile,
        limits.max_uniform_buffer_binding_size,
        uniform_align(gpu),
    )
    .map_err(PrepareError::Unsupported)?;
    let nw = limits
        .max_uniform_buffers_per_shader_stage
        .saturating_sub(2)
        .min(GEMV_MAX_WINDOWS)
        .min(plan.windows);
    if nw == 0 {
        return Err(PrepareError::Unsupported(format!(
            "needs 3 uniform buffers per shader stage (adapter: {})",
            limits.max_uniform_buffers_per_shader_stage
        )));
    }
    Ok((plan, nw))
}

/// Whether this kernel takes `shape` in `dtype` on `gpu` (`adapter_plan`).
pub fn applies(gpu: &Gpu, shape: &MatmulShape, dtype: DType) -> bool {
    adapter_plan(gpu, shape, dtype, GemvTile { tr: 4, rb: 1 }).is_ok()
}

/// Build the program: B staged once into a uniform-readable buffer (the weights), A bound
/// as it is, one dispatch per `nw` windows.
pub fn prepare(
    gpu: &Gpu,
    shape: &MatmulShape,
    dtype: DType,
    a: &HostTensor,
    b: &HostTensor,
    tile: GemvTile,
    label: &str,
) -> Result<Program, PrepareError> {
    let (plan, nw) = adapter_plan(gpu, shape, dtype, tile)?;
    let align = uniform_align(gpu);
    let per_window = plan.workgroups_per_window();
    check_workgroups(gpu, [per_window, nw, 1])?;
    let pipeline = compile(gpu, label, &source(shape, dtype, &plan, nw), "main")?;

    let a_vec4s = (shape.m * row_vec4s(shape.k, dtype)) as u64;
    // Padded so a whole window bound at the last row stays in bounds.
    let a_buf = uniform_readable(gpu, "A", a.bytes(), 0);
    // Copies of B, the weights, for the timing to cycle through (see `weights`).
    let b_bufs = weights::buffers(
        gpu,
        "B",
        b.bytes(),
        (b.bytes().len() as u64 + plan.window_bytes).next_multiple_of(16),
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
    );
    let c = output_buffer(gpu, "C", dtype, shape.c_len());

    // One table entry per dispatch: nw slots of (row0, rows, w_off, 0).
    let table_bytes = 16 * nw as u64;
    let entry = table_bytes.next_multiple_of(align);
    let row_bytes = shape.k as u64 * dtype.size();
    let mut table: Vec<u8> = Vec::new();
    let mut groups: Vec<(u64, Vec<u64>, u32)> = Vec::new();
    let all: Vec<u32> = (0..plan.windows).collect();
    for chunk in all.chunks(nw as usize) {
        let mut words: Vec<u32> = Vec::with_capacity(4 * nw as usize);
        let mut starts = Vec::with_capacity(chunk.len());
        for &wi in chunk {
            let row0 = wi * plan.rows;
            let first = row0 as u64 * row_bytes;
            let start = first / align * align;
            words.extend_from_slice(&[
                row0,
                plan.rows.min(shape.n - row0),
                ((first - start) / 16) as u32,
                0,
            ]);
            starts.push(start);
        }
        words.resize(4 * nw as usize, 0);
        groups.push((table.len() as u64, starts, chunk.len() as u32));
        table.extend_from_slice(bytemuck::cast_slice(&words));
        table.resize((table.len() as u64).next_multiple_of(entry) as usize, 0);
    }
    let table_buf = uniform_buffer(gpu, "gemv windows", &table);
    fn binding(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset,
            size: std::num::NonZeroU64::new(size),
        })
    }
    let mut dispatches = Vec::with_capacity(groups.len());
    for (table_at, starts, used) in groups {
        let bind_groups = b_bufs
            .iter()
            .map(|b_buf| {
                let mut resources = vec![
                    binding(&table_buf, table_at, table_bytes),
                    binding(&a_buf, 0, a_vec4s * 16),
                ];
                for i in 0..nw as usize {
                    // Unused slots repeat the first window; no workgroup reads them.
                    let start = starts.get(i).copied().unwrap_or(starts[0]);
                    resources.push(binding(b_buf, start, plan.window_bytes));
                }
                resources.push(c.as_entire_binding());
                bind_resources(gpu, &pipeline, Some(label), resources)
            })
            .collect();
        let workgroups = [per_window, used, 1];
        dispatches.push(Dispatch::cycling(pipeline.clone(), bind_groups, workgroups));
    }
    let mut keep = vec![table_buf, a_buf];
    keep.extend(b_bufs);
    Ok(Program::new(dispatches, c, dtype, shape.c_len(), keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_whole_rows_per_window_and_refuses_what_does_not_fit() {
        let s = MatmulShape::new(1, 50257, 768).transposed_b();
        let p = plan(&s, DType::F16, GemvTile { tr: 4, rb: 4 }, 1 << 16, 256).unwrap();
        // 1536-byte rows: 42 per 64 KiB window after the 240-byte alignment slack, in 3
        // workgroups of up to 4 blocks of 4 rows.
        assert_eq!(
            (p.rows, p.windows, p.tr, p.rb),
            (42, 50257usize.div_ceil(42) as u32, 4, 4)
        );
        assert_eq!(p.workgroups_per_window(), 3);
        // k=8192 f16 rows are 16 KiB: 3 per window, and the block shrinks to 3 rows, one
        // block per workgroup.
        let s = MatmulShape::new(1, 2048, 8192).transposed_b();
        let p = plan(&s, DType::F16, GemvTile { tr: 4, rb: 8 }, 1 << 16, 256).unwrap();
        assert_eq!(
            (p.rows, p.tr, p.rb, p.workgroups_per_window()),
            (3, 3, 1, 1)
        );
        for (shape, dtype) in [
            (MatmulShape::new(5, 64, 64).transposed_b(), DType::F32),
            (MatmulShape::new(1, 64, 64), DType::F32),
            (
                MatmulShape::new(1, 64, 64).transposed_b().batched(2),
                DType::F32,
            ),
            (MatmulShape::new(1, 64, 12).transposed_b(), DType::F16),
            (MatmulShape::new(1, 64, 20000).transposed_b(), DType::F32),
        ] {
            assert!(
                plan(&shape, dtype, GemvTile { tr: 4, rb: 4 }, 1 << 16, 256).is_err(),
                "{shape} {dtype}"
            );
        }
    }

    #[test]
    fn renders_for_both_dtypes_and_tails() {
        for (shape, dtype) in [
            (MatmulShape::new(1, 100, 64).transposed_b(), DType::F32),
            (MatmulShape::new(3, 7, 24).transposed_b(), DType::F16),
        ] {
            let p = plan(&shape, dtype, GemvTile { tr: 4, rb: 4 }, 1 << 16, 256).unwrap();
            let src = source(&shape, dtype, &p, 3);
            assert!(!src.contains("{{") && !src.contains("@B"), "{src}");
            assert_eq!(src.matches("for (var rb").count(), 3);
            assert_eq!(src.matches("for (var cv").count(), 3);
        }
    }
}
