// elementwise_add.wgsl: residual add, y = a + b, over [rows, cols] activations.
//
// Also GPT-2's position-embedding add. One storage unit (one element, or a vec4 of them) per
// invocation over the flattened tensor, so any rows and cols work; the last workgroup's
// surplus invocations return.
//
// Bindings (group 0), declarations and dispatch grid: see elementwise_common.wgsl.
//   0 uniform Params (units = rows * cols / W)
//   1 storage read  a: array<S>   [rows, cols]
//   2 storage read  b: array<S>   [rows, cols]
//   3 storage rw    y: array<S>   [rows, cols]
// Dispatch: ceil(units / WG) workgroups of WG x 1 x 1, laid over the 2-D grid.
// Workgroup size: WG has no constraint beyond max_compute_invocations_per_workgroup (no
// workgroup memory, no barriers); 256 fills any GPU's SIMD lanes and lavapipe's 8-wide ones.
@group(0) @binding(1) var<storage, read> a: array<S>;
@group(0) @binding(2) var<storage, read> b: array<S>;
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
    y[i] = S(F(a[i]) + F(b[i]));
}
