// matmul_gemv_ubo.wgsl: C = A·Bᵀ for skinny A (M <= 4 rows: decode), B stored [n, k] (the
// weights, one row per output column), on lavapipe: every B row streams through a
// uniform-buffer window once, at memory speed.
//
// Why: at M = 1 a matmul is a matrix-vector product bound by reading B. The GEMM kernels
// tile 8 to 16 rows of A per subgroup, so at M = 1 they load each B element for 8 or more
// lanes of padding rows, and their storage-texture loads run at a tenth of the copy
// bandwidth. Here the 8 lanes of a workgroup split the k dimension of a B row: lane l reads
// vec4s l, l + 8, l + 16, ... of the row (8 different vec4s per 8-lane gather, all useful),
// multiplies them with the same vec4s of each A row, and subgroupAdd sums the lanes. A
// workgroup does TR B rows at a time, so each loaded A vec4 serves TR rows, and RB such
// blocks one after another: llvmpipe pays a fixed cost per workgroup that at gpt2's
// 1536-byte rows (k = 768, f16) was as large as a block's loads, and unrolling more rows
// instead spills (r8, r16 were no faster than r4). On gpt2's LM head, 4 blocks of 4 rows
// read 2.0 GB/s where 1 block read 1.15; 16 blocks of 1 row, which walk B in address
// order at the price of reloading A per row, read 2.1-2.9 where 4 x 4 read 1.8-2.2.
//
// Memory layout: A [M, K] and B [N, K] row-major, C [M, N] row-major, in the storage type E.
// Rows are read as KV vec4s: vec4<f32> for f32, vec4<u32> of 8 halves (unpack2x16float)
// for f16, so K must be a multiple of 4 (f32) or 8 (f16); the host checks.
// Window: the host binds windows of B (<= 64 KiB each, binding offsets aligned down) holding
// whole rows; slot i of the table says the window's first row (row0), its rows, and the vec4
// offset of row0 in the window (w_off).
//
// Bindings (group 0):
//   0 uniform  Table { slot[NW] = (row0, rows, w_off, _) }
//   1 uniform  aw: array<vec4<KW>, AV>  (all of A)
//   2 + i      uniform  bw{i}: array<vec4<KW>, NV>  (window of slot i; unused slots repeat
//              a used window and get no workgroups)
//   2 + NW     storage read_write  c: array<E>
// Dispatch: one per NW consecutive windows, (ceil(window rows / (TR·RB)), slots used, 1)
// workgroups of 8 invocations. Needs SUBGROUP with subgroups of at least 8 lanes, so that
// the workgroup is one subgroup.
// Tile parameters (text-substituted): M (A rows, unrolled), TR (B rows per block, unrolled;
// at most the rows a window holds), RB (blocks per workgroup, a loop; at most the window's
// blocks), NW (windows per dispatch: 2 + NW uniform bindings, the table, A and the windows,
// must fit the per-stage limit, 15 on lavapipe; the host caps NW at 12), KV, AV, NV sizes.
// Template fields: ENABLE_F16 ELEM KW M N KV TR RB NW AV B_BINDINGS C_BINDING WINDOWS.
{{ENABLE_F16}}
alias E = {{ELEM}};

const M: u32 = {{M}}u;
const N: u32 = {{N}}u;
const KV: u32 = {{KV}}u;
const TR: u32 = {{TR}}u;
const RB: u32 = {{RB}}u;

struct Table {
    slot: array<vec4<u32>, {{NW}}>,
}

@group(0) @binding(0) var<uniform> tab: Table;
@group(0) @binding(1) var<uniform> aw: array<vec4<{{KW}}>, {{AV}}>;
{{B_BINDINGS}}
@group(0) @binding({{C_BINDING}}) var<storage, read_write> c: array<E>;

@compute @workgroup_size(8, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let slot = tab.slot[wid.y];
    // One loop per window slot (WGSL cannot index bindings), each over the workgroup's RB
    // blocks: from the block's first B row (output column) `first`, the window row of each
    // of its TR rows (clamped to the window's last row; the clamped ones are not stored),
    // the lanes' k loop, then the sums.
{{WINDOWS}}
}
