// elementwise_silu_mul.wgsl: SwiGLU's gating, y = silu(gate) * up with
// silu(g) = g / (1 + exp(-g)), over [rows, cols] activations (cols = intermediate size).
//
// For g below about -88, exp(-g) overflows to +inf and the quotient is -0, the correctly
// rounded result; nothing else overflows. One storage unit (one element or a vec4) per
// invocation over the flattened tensor; any rows and cols.
//
// Bindings (group 0), declarations and dispatch grid: see elementwise_common.wgsl.
//   0 uniform Params (units = rows * cols / W)
//   1 storage read  gate: array<S>   [rows, cols]
//   2 storage read  up:   array<S>   [rows, cols]
//   3 storage rw    y:    array<S>   [rows, cols]
// Dispatch: ceil(units / WG) workgroups of WG x 1 x 1, laid over the 2-D grid.
// Workgroup size: only max_compute_invocations_per_workgroup constrains WG.
@group(0) @binding(1) var<storage, read> gate: array<S>;
@group(0) @binding(2) var<storage, read> up: array<S>;
@group(0) @binding(3) var<storage, read_write> y: array<S>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = group_id(wid, nwg) * WG + li;
    if (i >= p.units) {
        return;
    }
    let g = F(gate[i]);
    y[i] = S(g / (1.0 + exp(-g)) * F(up[i]));
}
