// elementwise_layernorm.wgsl: LayerNorm per row (GPT-2),
// y[r, c] = (x[r, c] - mean) / sqrt(var + eps) * w[c] + b[c], with the mean and the
// (biased) variance taken over the row's cols.
//
// One workgroup per row, three sweeps over the row (cache-resident for transformer widths):
// sum -> mean, sum of (x - mean)^2 -> variance, then normalise and store. The two-pass
// variance avoids the cancellation of E[x^2] - mean^2 when |mean| >> std. Each sum is
// strided over the invocations (consecutive invocations read consecutive units) and totalled
// by a workgroup reduction (below). Any cols; rows over 65535 use the 2-D grid. The
// early return for grid surplus is uniform across the workgroup, so the barriers stay in
// uniform control flow.
//
// Bindings (group 0), declarations and dispatch grid: see elementwise_common.wgsl.
//   0 uniform Params (rows, cols, row_units = cols / W, eps)
//   1 storage read  x: array<S>   [rows, cols]
//   2 storage read  w: array<S>   [cols], gain
//   3 storage read  b: array<S>   [cols], bias
//   4 storage rw    y: array<S>   [rows, cols]
// Dispatch: rows workgroups of WG x 1 x 1, laid over the 2-D grid.
// Workgroup size: WG must be a power of two (the tree halves it) and at most
// max_compute_invocations_per_workgroup; the reduction uses WG * 4 bytes of workgroup
// memory. 256 suits GPUs; on lavapipe a smaller WG does fewer barrier steps.
//
// Reduction (template fields REDUCE, SUBGROUP_BUILTINS, IDS from src/kernels/elementwise.rs):
//   tree:     the WG partial sums halve in workgroup memory, log2(WG) + 2 barriers per sum.
//   subgroup: subgroupAdd, then one slot per subgroup and two barriers per sum, or no
//             barrier at all when the workgroup is a single subgroup (WG <= subgroup size:
//             WG 8 on lavapipe, 32 on NVIDIA). Needs the SUBGROUP feature.
// Template field HSUM: the sum of the lanes of v (v itself on the scalar path).
@group(0) @binding(1) var<storage, read> x: array<S>;
@group(0) @binding(2) var<storage, read> w: array<S>;
@group(0) @binding(3) var<storage, read> b: array<S>;
@group(0) @binding(4) var<storage, read_write> y: array<S>;

// Tree: one slot per invocation. Subgroup: one per subgroup (at most WG).
var<workgroup> red: array<f32, WG>;

// Invocation ids the reduction needs; the subgroup ones are 0, 0, 1 for the tree form.
struct Ids {
    li: u32,
    sg_lane: u32,
    sg_id: u32,
    n_sg: u32,
}

fn hsum(v: F) -> f32 {
    return {{HSUM}};
}

// workgroup_sum(ids, v): the sum of v over the workgroup, returned to every invocation
// (must be called in uniform control flow). Generated: the tree or the subgroup form.
{{REDUCE}}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,{{SUBGROUP_BUILTINS}}
) {
    let ids = {{IDS}};
    let row = group_id(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.row_units;
    let n = f32(p.cols);
    var acc = 0.0;
    for (var c = li; c < p.row_units; c += WG) {
        acc += hsum(F(x[base + c]));
    }
    let mean = workgroup_sum(ids, acc) / n;
    acc = 0.0;
    for (var c = li; c < p.row_units; c += WG) {
        let d = F(x[base + c]) - mean;
        acc += hsum(d * d);
    }
    let r = inverseSqrt(workgroup_sum(ids, acc) / n + p.eps);
    for (var c = li; c < p.row_units; c += WG) {
        y[base + c] = S((F(x[base + c]) - mean) * r * F(w[c]) + F(b[c]));
    }
}
