// peak_read_texture.wgsl: the streaming-read bandwidth probe through a storage texture, the
// companion of peak_read.wgsl for adapters where texel access is the fast path (lavapipe
// vectorises texel loads but runs a per-lane buffer access as a scalar loop). Bytes = size
// + size / ROWS, as for the buffer probe; the host keeps the better of the two.
//
// What it computes: sums texel (x, r) = Σ_{j < ROWS} src texel (x, j·R + r), with
// R = height / ROWS the sums' height; wrapping u32 adds, checked exactly by the host.
// Bindings (group 0):
//   0 texture_storage_2d<rgba32uint, read>   src, width x height
//   1 texture_storage_2d<rgba32uint, write>  sums, width x R
// Dispatch: (width / 64, R, 1) workgroups of 64 invocations, one column of sums each; the
// host makes width a multiple of 64 and height a multiple of ROWS.
// Tile parameters: ROWS texel loads per invocation, neighbouring lanes on neighbouring
// texels of a row; ROWS = 64 keeps the writes under 2% of the traffic.
// Template fields: ROWS.

@group(0) @binding(0) var src: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(1) var sums: texture_storage_2d<rgba32uint, write>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r_rows = textureDimensions(sums).y;
    var acc = vec4<u32>(0u);
    for (var j = 0u; j < {{ROWS}}u; j++) {
        acc += textureLoad(src, vec2<u32>(gid.x, j * r_rows + gid.y));
    }
    textureStore(sums, gid.xy, acc);
}
