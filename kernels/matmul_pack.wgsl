// matmul_pack.wgsl: copies A[batch, m, k] from a storage buffer into the A operand texture of
// the texture-fed matmul kernels (layout in matmul_texture_common.wgsl), zero-padding k up
// to kp. It runs inside the timed program, before the matmul: A is an activation that the
// previous op leaves in a buffer, so its repacking is part of the cost. (B, the weights, is
// staged once at load time, outside the timing, as inference engines repack weights.)
//
// Bindings (group 0):
//   0 uniform Params { m, n, k, batch, kp, np } (the matmul's own)
//   1 storage read  a: A[batch, m, k] row-major, as array<vec4<E>> when k % KT == 0 (one
//     16-byte load per texel; array<vec4<u32>>, the bits, for packed halves), else
//     array<E> with a bounds check per element
//   2 texture_storage_2d<FORMAT, write> A texture: logically width kp/KT, height batch·m,
//     placed by a_texel (folded into blocks side by side when batch·m is too tall)
// KT is the elements per texel: 4 (rgba32float, rgba16float), or 8 halves (rgba32uint, two
// per u32 as pack2x16float lays them out).
// Dispatch: (ceil(kp / KT / 64), batch·m, 1) workgroups of 64; invocation (x, y) writes
// logical texel (x, y), the KT elements A[y][KT·x .. KT·x + KT] (zero past k), where a_texel
// places it (folded when batch·m passes max_texture_dimension_2d).
// Tile parameters: none; 64 invocations keep the 8-lane SIMD of lavapipe and 32- or 64-lane
// GPU subgroups full. Limit: batch·m <= max_compute_workgroups_per_dimension (checked by
// the host).
// Template fields: ENABLE_F16 ELEM FORMAT KT ARRAY LOAD A_TEXEL.
{{ENABLE_F16}}
alias E = {{ELEM}};

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    kp: u32,
    np: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<{{ARRAY}}>;
@group(0) @binding(2) var a_tex: texture_storage_2d<{{FORMAT}}, write>;

{{A_TEXEL}}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k0 = gid.x * {{KT}}u;
    if (k0 >= p.kp) {
        return;
    }
    let base = gid.y * p.k + k0;
{{LOAD}}
    textureStore(a_tex, a_texel(gid.x, gid.y), v);
}
