// matmul_common.wgsl: shared declarations and operand access for the blocked matmul kernels
// (matmul_regblock.wgsl, matmul_tiled.wgsl). Not a kernel on its own: src/kernels/matmul.rs
// prepends it to a kernel body.
//
// Bindings (group 0):
//   0 uniform Params { m, n, k, batch }
//   1 storage read   a   A[batch, m, k] row-major
//   2 storage read   b   B[batch, k, n] row-major, or Bᵀ stored [batch, n, k] when transposed
//   3 storage rw     c   C[batch, m, n] row-major
// Two access paths, chosen per shape by the host:
//   aligned: buffers bound as array<vec4<E>> for 16-byte (8 for f16) loads; needs k % 4 == 0
//            and, for row-major B and for C, n % 4 == 0.
//   general: buffers bound as array<E> with a bounds check per element; any m, n, k.
// Every loader returns zeros past k, so partial k-steps add nothing. Rows past m and columns
// past n are clamped (loaded from valid memory, never stored).
//
// Template fields: ENABLE_F16, ELEM (f32|f16), ARRAY (vec4<E> | E) and the
// loader bodies LOAD_A, LOAD_B, STORE_C generated for the access path.
{{ENABLE_F16}}
alias E = {{ELEM}};

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<{{ARRAY}}>;
@group(0) @binding(2) var<storage, read> b: array<{{ARRAY}}>;
@group(0) @binding(3) var<storage, read_write> c: array<{{ARRAY}}>;

// A[batch, row, k .. k+4] as f32; row < m, k % 4 == 0.
fn load_a(batch: u32, row: u32, k: u32) -> vec4<f32> {
    let base = (batch * p.m + row) * p.k + k;
{{LOAD_A}}
}

// Four consecutive B values as f32. Row-major B: B[batch, k, col .. col+4] (col % 4 == 0).
// Transposed B: Bᵀ[batch, col, k .. k+4] (k % 4 == 0).
fn load_b(batch: u32, k: u32, col: u32) -> vec4<f32> {
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
