// matmul_naive.wgsl: C = A·B (or A·Bᵀ), one output element per invocation.
//
// The correctness baseline and the lower bound every other variant is compared with.
// Computes C[b, m, n] = sum_k A[b, m, k] * B[b, k, n] in f32, with
// B read as B[b, n, k] when transpose_b is set. Works for any M, N, K, batch.
//
// Bindings (group 0):
//   0 uniform Params { m, n, k, batch }
//   1 storage read   a: array<E>   A[batch, m, k], row-major
//   2 storage read   b: array<E>   B[batch, k, n] (or [batch, n, k] transposed), row-major
//   3 storage rw     c: array<E>   C[batch, m, n], row-major
// Dispatch: (ceil(n / 16), ceil(m / 16), batch) workgroups of 16 x 16 invocations.
// Tile parameters: none; the 16 x 16 workgroup only has to fit the 256-invocation WebGPU
// default limit.
//
// Template fields (written as double-braced names in the text), filled by src/kernels/matmul.rs:
//   ENABLE_F16 `enable f16;` for f16 storage, else empty
//   ELEM       storage type, f32 or f16 (accumulation is always f32)
//   B_INDEX    index of B(k = i, n = col) for the chosen layout
{{ENABLE_F16}}
alias E = {{ELEM}};

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<E>;
@group(0) @binding(2) var<storage, read> b: array<E>;
@group(0) @binding(3) var<storage, read_write> c: array<E>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    let batch = gid.z;
    if (row >= p.m || col >= p.n) {
        return;
    }
    let a0 = batch * p.m * p.k + row * p.k;
    let b0 = batch * p.k * p.n;
    var acc = 0.0;
    for (var i = 0u; i < p.k; i++) {
        acc = fma(f32(a[a0 + i]), f32(b[{{B_INDEX}}]), acc);
    }
    c[batch * p.m * p.n + row * p.n + col] = E(acc);
}
