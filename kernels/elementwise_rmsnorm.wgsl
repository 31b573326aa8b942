// elementwise_rmsnorm.wgsl: RMSNorm per row (Llama and most decoder LMs),
// y[r, c] = x[r, c] / sqrt(mean_c(x[r, c]^2) + eps) * w[c].
//
// One workgroup per row. Invocation li sums the squares of units li, li + WG, ... of the row
// (consecutive invocations read consecutive units, so loads coalesce on GPUs), a workgroup
// reduction (below) totals the WG partial sums, and a second sweep over the row
// (cache-resident for transformer widths) scales and stores it. Any cols; rows over 65535
// use the 2-D grid. The early return for grid surplus is uniform across the workgroup, so
// the barriers stay in uniform control flow.
//
// Bindings (group 0), declarations and dispatch grid: see elementwise_common.wgsl.
//   0 uniform Params (rows, cols, row_units = cols / W, eps)
//   1 storage read  x: array<S>   [rows, cols]
//   2 storage read  w: array<S>   [cols], the norm's gain
//   3 storage rw    y: array<S>   [rows, cols]
// Dispatch: rows workgroups of WG x 1 x 1, laid over the 2-D grid.
// Workgroup size: WG must be a power of two (the tree halves it) and at most
// max_compute_invocations_per_workgroup; the reduction uses WG * 4 bytes of workgroup
// memory. 256 suits GPUs (wide rows, many lanes); on lavapipe, where a barrier splits the
// shader into coroutine steps, a smaller WG does fewer steps (8 measured fastest).
//
// Reduction (template fields REDUCE, SUBGROUP_BUILTINS, IDS from src/kernels/elementwise.rs):
//   tree:     the WG partial sums halve in workgroup memory, log2(WG) + 2 barriers per sum.
//   subgroup: subgroupAdd, then one slot per subgroup and two barriers per sum, or no
//             barrier at all when the workgroup is a single subgroup (WG <= subgroup size:
//             WG 8 on lavapipe, 32 on NVIDIA). Needs the SUBGROUP feature.
// Template field HSUM: the sum of the lanes of v (v itself on the scalar path).
@group(0) @binding(1) var<storage, read> x: array<S>;
@group(0) @binding(2) var<storage, read> w: array<S>;
@group(0) @binding(3) var<storage, read_write> y: array<S>;

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
    var acc = 0.0;
    for (var c = li; c < p.row_units; c += WG) {
        let v = F(x[base + c]);
        acc += hsum(v * v);
    }
    let mean_square = workgroup_sum(ids, acc) / f32(p.cols);
    let r = inverseSqrt(mean_square + p.eps);
    for (var c = li; c < p.row_units; c += WG) {
        y[base + c] = S(F(x[base + c]) * r * F(w[c]));
    }
}
