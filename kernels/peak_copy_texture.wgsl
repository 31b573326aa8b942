// peak_copy_texture.wgsl: the streaming-copy bandwidth probe through storage textures, the
// companion of peak_copy.wgsl for adapters where texel access is the fast path (lavapipe
// vectorises texel loads and stores but runs a per-lane buffer access as a scalar loop).
// Bytes = 2 · size, as for the buffer copy; the host keeps the better of the two.
//
// What it computes: dst texel (x, y) = src texel (x, y), rgba32uint (16 bytes a texel).
// Bindings (group 0):
//   0 texture_storage_2d<rgba32uint, read>   src
//   1 texture_storage_2d<rgba32uint, write>  dst
// Dispatch: (width / 64, height, 1) workgroups of 64 invocations, one texel each; the host
// makes width a multiple of 64 (2048) and height = size / (16 · width).
// Tile parameters: one texel per invocation, rows along x so neighbouring lanes touch
// neighbouring texels.
// Template fields: none.

@group(0) @binding(0) var src: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(1) var dst: texture_storage_2d<rgba32uint, write>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.xy;
    textureStore(dst, p, textureLoad(src, p));
}
