// elementwise_gelu.wgsl: GELU in GPT-2's tanh form,
// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), over [rows, cols] activations.
//
// The tanh argument is clamped to [-10, 10]: tanh(10) is 1 in f32 already, and some drivers
// build tanh from exp(2z) and return NaN once that overflows (|z| > 44). One storage unit
// (one element or a vec4) per invocation over the flattened tensor; any rows and cols.
//
// Bindings (group 0), declarations and dispatch grid: see elementwise_common.wgsl.
//   0 uniform Params (units = rows * cols / W)
//   1 storage read  x: array<S>   [rows, cols]
//   2 storage rw    y: array<S>   [rows, cols]
// Dispatch: ceil(units / WG) workgroups of WG x 1 x 1, laid over the 2-D grid.
// Workgroup size: only max_compute_invocations_per_workgroup constrains WG.
@group(0) @binding(1) var<storage, read> x: array<S>;
@group(0) @binding(2) var<storage, read_write> y: array<S>;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

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
    let v = F(x[i]);
    let z = clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), F(-10.0), F(10.0));
    y[i] = S(0.5 * v * (1.0 + tanh(z)));
}
