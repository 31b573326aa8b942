// matmul_texture_common.wgsl: operand access for matmul kernels that read A and B from
// textures instead of storage buffers. Not a kernel on its own: src/kernels/matmul.rs
// prepends it to a kernel body (matmul_regblock.wgsl or matmul_subgroup.wgsl), whose
// load_a/load_b/store_c calls it serves.
//
// Why: on lavapipe a storage-buffer load whose address differs per lane is compiled to a
// scalar loop over the SIMD lanes, while a texel fetch is vectorised (the rasteriser's own
// sampling path), and a read-only storage-texture load skips the sampler machinery and is
// cheaper still. On GPUs the texture cache serves the same reuse as L1.
//
// Layout (zero-padded, rgba32float or rgba16float texels of 4 consecutive elements, or
// rgba32uint texels of 8 consecutive halves along k, the packed-halves operands, which need
// f16 and transposed B: read "4" below as 8 along k for them; B is
// staged once by the host before timing, A is written by matmul_pack.wgsl inside the timed
// program):
//   A  texture width kp/4, height batch·m:   texel (k/4, batch·m + row)
//   B  row-major: width np/4, height batch·kp: texel (col/4, batch·kp + k)
//      transposed (Bᵀ stored [n, k]): width kp/4, height batch·n: texel (k/4, batch·n + col)
//   kp, np are k and n rounded up to multiples of 4; the padding is zero, so k-steps past k
//   add nothing. Those are logical texels: a_texel and b_texel place them in the texture,
//   the identity unless the operand is taller than max_texture_dimension_2d, in which case
//   it is folded (src/kernels/texel_layout.rs): rows past a power-of-two block height
//   continue in the next block of columns.
// Bindings (group 0):
//   0 uniform Params { m, n, k, batch, kp, np }
//   1 A, 2 B: texture_2d<f32> (sampled; textureLoad with level 0) or
//         texture_storage_2d<rgba32float|rgba16float|rgba32uint, read> (read-only storage
//         texture)
//   3 storage rw C[batch, m, n] row-major, as array<vec4<E>> when n % 4 == 0, else array<E>
// Limits: the width, times the blocks when folded, must fit max_texture_dimension_2d.
// Template fields: ENABLE_F16 ELEM OPERAND ARRAY TEX_TYPE TEXELS LOAD_A LOAD_B STORE_C.
{{ENABLE_F16}}
alias E = {{ELEM}};
// What load_a and load_b return: vec4<f32>, or mat2x4<f32> for packed halves.
alias Operand = {{OPERAND}};

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    kp: u32,
    np: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var a_tex: {{TEX_TYPE}};
@group(0) @binding(2) var b_tex: {{TEX_TYPE}};
@group(0) @binding(3) var<storage, read_write> c: array<{{ARRAY}}>;

{{TEXELS}}

// Eight halves (the bits of an rgba32uint texel) as k .. k+4 and k+4 .. k+8.
fn unpack8(t: vec4<u32>) -> mat2x4<f32> {
    return mat2x4<f32>(
        vec4<f32>(unpack2x16float(t.x), unpack2x16float(t.y)),
        vec4<f32>(unpack2x16float(t.z), unpack2x16float(t.w)),
    );
}

// A[batch, row, k .. k+KT]; row < m, k % KT == 0, k < kp (KT = 4, or 8 packed).
fn load_a(batch: u32, row: u32, k: u32) -> Operand {
{{LOAD_A}}
}

// Row-major: B[batch, k, col .. col+4]. Transposed: Bᵀ[batch, col, k .. k+KT].
fn load_b(batch: u32, k: u32, col: u32) -> Operand {
{{LOAD_B}}
}

// C[batch, row, col .. col+4] = v, skipping anything past m or n.
fn store_c(batch: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    let base = (batch * p.m + row) * p.n + col;
{{STORE_C}}
}
