// matmul_subgroup.wgsl: C = A·B (or A·Bᵀ) as outer products within a subgroup, without
// workgroup memory or barriers.
//
// Designed for CPU adapters (lavapipe), where a subgroup is one SIMD register of lanes and
// every load whose address differs per lane becomes a scalar loop over the lanes, while
// subgroupBroadcast is a register shuffle. So each lane loads only A rows nobody else
// loads, shares them by broadcast, and reuses every loaded B vec4 for R rows:
//   per k-step of 4: a lane loads RA vec4s of A (its rows) and 4·TN4 vec4s of B (its
//   columns), then for each of the R = S·RA rows adds TN4 products of a 4x4 block of B
//   with the row's vec4 of A into its accumulators, one add into each. With f16 packed
//   8 per texel (KSTEP 8), each load is a mat2x4 of two such k-quarters, so a k-step of 8
//   takes the loads of a k-step of 4.
// A subgroup computes R rows x (S·4·TN4) columns; lane l owns columns
// col0 + (j·S + l)·4 .. +4 for j < TN4.
//
// Where the time goes on lavapipe (perf samples of x2_t16x8, f32 1024³, Mesa 22.3 on a
// 2-core AVX2 host at 25 GFLOP/s): 37% on the products (llvmpipe emits vmulps + vaddps,
// not FMA), about 35% on texel loads (per lane an address extract, a 16-byte load, then an
// 8x4 transpose and bounds masks), 11% on spill moves (32 accumulator vec4s are 128 of the
// 16 AVX2 registers) and 7% in the pack dispatch (a scalar loop per lane). Two texels per
// k-step (half the spill traffic per product) and B laid out panel by panel along k were
// each timed in alternating runs and gained nothing. Lanes owning rows, with B read at
// lane-uniform addresses, would not gain either: a lane's vec4 is four registers whichever
// lanes own it, and B through uniform windows ran no faster than texels (see the README).
// What did pay: one add into each accumulator per k-step (a 4x4 block times a vec4),
// where a chain of four fma read and wrote each spilled accumulator four times: 1.23x at
// 1024³ and 1.30x at 2048³ (x2_t16x8 f32, in turns, 2-core Intel Xeon host); then taller
// tiles (t24x8, t32x8) and B staged as Bᵀ. Profiled after that (stexbt x2_t24x8, 2048³,
// about 60 GFLOP/s against a 105 GFLOP/s FMA probe), samples fall about 23% on the
// multiplies and adds, 27% on spill moves and 45% on the texel-load sequences (address
// extracts, loads, transposes): the loads, not the products, are now the larger share
// (sample skid makes these shares approximate).
//
// Bindings and operand access: see matmul_common.wgsl (prepended by the host).
// Dispatch: (ceil(n / (S·4·TN4)), ceil(m / (NSG·R)), batch) workgroups of S·NSG invocations,
// renumbered so that consecutive workgroups take consecutive row blocks of one column panel:
// B's panel (BN columns by k) is then read from cache by every row block in turn. Timed in
// turns against the dispatch order (x2_t16x8, f32, lavapipe): 1.03-1.10x at 1024³ and
// 2048³, 1.00x at 256³ and at m = 64.
// Tile parameters (text-substituted):
//   S    the adapter's subgroup size, which must be fixed (min = max); the host only offers
//        this kernel when it is. Lane l of subgroup g is local invocation g·S + l.
//   NSG  subgroups per workgroup; S·NSG <= max_compute_invocations_per_workgroup.
//   RA   A vec4s per lane per k-step (R = S·RA rows per subgroup).
//   TN4  vec4 columns per lane. Accumulators are R·TN4 vec4s per lane.
//   KSTEP  k per loaded texel: 4, or 8 for packed halves (rgba32uint texels).
// Requires Features::SUBGROUP. Control flow stays uniform (no early return) because every
// lane must take part in the broadcasts; rows and columns past the edge are clamped on
// load and skipped on store.

@compute @workgroup_size({{WG}}, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let batch = wg.z;
    // Row blocks first within a column panel: workgroups taken in turn (lavapipe's threads
    // take them in linear order) share B's panel, which stays in cache, and stream A.
    let lin = wg.y * nwg.x + wg.x;
    let by = lin % nwg.y;
    let bx = lin / nwg.y;
    let row0 = (by * {{NSG}}u + sg) * {{R}}u;
    let col0 = bx * {{BN}}u;
    let last_row = p.m - 1u;
{{DECLARE}}
    for (var k = 0u; k < p.k; k += {{KSTEP}}u) {
{{STEP}}
    }
{{STORE}}
}
