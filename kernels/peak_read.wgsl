// peak_read.wgsl: the streaming-read bandwidth probe, the ceiling for kernels that mostly
// read (decode matmuls streaming their weights, decode attention streaming its KV cache),
// which a copy's read-and-write traffic understates. Bytes = size + size / ROWS (every byte
// read once, plus the sums written).
//
// What it computes: sums[i] = Σ_{j < ROWS} src[j·n + i] for i < n = arrayLength(&sums),
// wrapping u32 adds (integers: exact, so the host checks every sum in closed form).
// Bindings (group 0):
//   0 storage read  src: array<vec4<u32>>, ROWS · n of them
//   1 storage rw    sums: array<vec4<u32>>, n
// Dispatch: (X, Y, 1) workgroups of 256 invocations, flattened as i = (y·X + x)·256 + lane
// so that n / 256 workgroups fit the 65535-per-dimension limit; the tail is guarded.
// Tile parameters: ROWS reads per invocation, each step reading n consecutive vec4s across
// the invocations (coalesced on GPUs); ROWS = 64 keeps the writes under 2% of the traffic.
// Template fields: ROWS.

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> sums: array<vec4<u32>>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = (wg.y * groups.x + wg.x) * 256u + lane;
    let n = arrayLength(&sums);
    if (i < n) {
        var acc = vec4<u32>(0u);
        for (var j = 0u; j < {{ROWS}}u; j++) {
            acc += src[j * n + i];
        }
        sums[i] = acc;
    }
}
