// peak_copy.wgsl: the streaming-copy bandwidth probe. Measures the adapter's practical memory
// bandwidth, the ceiling memory-bound kernels (decode attention, elementwise ops) are
// compared against. Bytes = 2 · size (each byte read once and written once), as STREAM's
// copy counts them.
//
// What it computes: dst[i] = src[i] for i < n vec4<u32>s (integers: a float copy may flush
// denormal bit patterns to zero, as lavapipe does).
// Bindings (group 0):
//   0 storage read  src: array<vec4<u32>>
//   1 storage rw    dst: array<vec4<u32>>
// Dispatch: (X, Y, 1) workgroups of 256 invocations, flattened as i = (y·X + x)·256 + lane
// so that n / 256 workgroups fit the 65535-per-dimension limit; the tail is guarded.
// Tile parameters: one vec4 per invocation, the common coalesced pattern on GPUs. The host
// sizes the buffers well past the last-level cache (256 MiB where the limits allow).
// Template fields: none.

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = (wg.y * groups.x + wg.x) * 256u + lane;
    if (i < arrayLength(&dst)) {
        dst[i] = src[i];
    }
}
