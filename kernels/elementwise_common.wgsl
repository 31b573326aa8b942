// elementwise_common.wgsl: shared declarations for the elementwise kernels
// (elementwise_add/silu_mul/gelu/rmsnorm/layernorm/rope.wgsl). Not a kernel on its own:
// src/kernels/elementwise.rs prepends it to a kernel body.
//
// Memory layout: activations are [rows, cols] row-major and densely packed, rows = tokens.
// Storage is f32 or f16 (E); all arithmetic is f32. Each kernel reads its tensors as arrays
// of storage units S: a scalar E (scalar path, any shape) or vec4<E> (vec4 path: 16-byte
// loads for f32, 8-byte for f16; needs cols % 4 == 0, and head_dim % 8 == 0 for RoPE).
// F is the matching f32 math type (f32 or vec4<f32>).
//
// Binding 0 of every kernel is the uniform Params below; the inputs follow, the output
// comes last.
//
// Dispatch geometry: workgroups are numbered linearly over a 2-D grid, because one
// dimension holds at most 65535 workgroups (the WebGPU default limit) and a prefill's
// elementwise op can need millions. The host dispatches (gx, gy, 1) with
// gx = min(total, 65535) and gy = ceil(total / gx); the linear id is wid.y * gx + wid.x, and
// the few ids past the total return at once.
//
// Template fields: ENABLE_F16, ELEM (f32 | f16), UNIT (E | vec4<E>), MATH (f32 | vec4<f32>),
// WIDTH (1 | 4 elements per unit) and WG (invocations per workgroup).
{{ENABLE_F16}}
alias E = {{ELEM}};
alias S = {{UNIT}};
alias F = {{MATH}};

// Elements per storage unit.
const W: u32 = {{WIDTH}}u;
// Invocations per workgroup.
const WG: u32 = {{WG}}u;

struct Params {
    // Activation rows (tokens) and columns (features).
    rows: u32,
    cols: u32,
    // Work items in the whole dispatch: storage units (add, silu_mul, gelu) or RoPE pairs of
    // units; unused by the row kernels.
    units: u32,
    // Storage units per row: cols / W.
    row_units: u32,
    // RoPE: elements per head; position of row r = start_pos + r % seq_len.
    head_dim: u32,
    start_pos: u32,
    seq_len: u32,
    // Norms: the epsilon added to the variance (or mean square).
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

// The linear workgroup id over the 2-D grid.
fn group_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}
