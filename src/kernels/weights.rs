//! Weight operands as the timing sees them: several copies on the device, one per execution
//! in turn, so that every execution reads its weights from memory.
//!
//! A kernel timed over and over with one copy of its weights reads them from a cache that
//! the previous execution filled, which a forward pass never does: every layer has its own
//! weights, and a model's weights are far larger than any cache. So the programs of the
//! matmul kernels bind [`weight_copies`] copies of B, [`super::Dispatch::cycling`] through
//! them; decode attention cycles copies of its KV cache the same way
//! ([`super::attention::kv_copies`]). The copies are made on the device from one upload (a
//! copy per copy is cheaper than an upload per copy, on lavapipe as on GPUs).

use wgpu::util::DeviceExt;

use super::texel_layout::TexelLayout;
use crate::gpu::Gpu;

/// Bytes of weights the timing cycles through: at least twice the last-level cache of the
/// CPUs and GPUs this has run on (four times the 32 MB L3 of the 2-core EPYC VM, 2.7 times
/// the 50 MB L2 of an H100), so that a cache keeps none of them from one pass over the
/// copies to the next, and they come from memory, as in a forward pass. Adapters with more
/// cache than that (a 256 MB Infinity Cache, a CPU with stacked L3) still keep part of
/// small weights, and their decode rows stay somewhat optimistic. Each copy costs memory
/// and staging time (a device-side copy per copy), so this is no larger than it needs to be.
pub const COLD_WEIGHT_BYTES: u64 = 128 << 20;

/// At most this many copies of one operand (small matrices: 64 of gpt2's 1.2 MB is 75 MB).
pub const MAX_WEIGHT_COPIES: u64 = 64;

/// How many copies of a weight operand of `bytes` the timing cycles through: enough for
/// [`COLD_WEIGHT_BYTES`], at most [`MAX_WEIGHT_COPIES`], at least 1.
pub fn weight_copies(bytes: u64) -> usize {
    COLD_WEIGHT_BYTES
        .div_ceil(bytes.max(1))
        .clamp(1, MAX_WEIGHT_COPIES) as usize
}

/// [`weight_copies`] buffers of `usage` holding `bytes` (zero-padded to `len` bytes, at least
/// its own length rounded up to 4).
pub fn buffers(
    gpu: &Gpu,
    label: &str,
    bytes: &[u8],
    len: u64,
    usage: wgpu::BufferUsages,
) -> Vec<wgpu::Buffer> {
    buffer_copies(
        gpu,
        label,
        bytes,
        len,
        usage,
        weight_copies(bytes.len() as u64),
    )
}

/// [`buffers`], `copies` of them (at least one): for operands cycled together (K and V).
pub fn buffer_copies(
    gpu: &Gpu,
    label: &str,
    bytes: &[u8],
    len: u64,
    usage: wgpu::BufferUsages,
    copies: usize,
) -> Vec<wgpu::Buffer> {
    let mut padded = bytes.to_vec();
    padded.resize(len.max(bytes.len() as u64).next_multiple_of(4) as usize, 0);
    let first = gpu
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &padded,
            usage: usage | wgpu::BufferUsages::COPY_SRC,
        });
    let size = padded.len() as u64;
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let mut all = vec![first];
    for _ in 1..copies {
        let copy = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(&all[0], 0, &copy, 0, size);
        all.push(copy);
    }
    gpu.queue.submit([encoder.finish()]);
    all
}

/// [`weight_copies`] textures laid out as `layout` in `format`, for `usage`, each holding
/// `bytes` (the logical rows one after another, `texel_bytes` per texel; see
/// [`TexelLayout::write`]).
pub fn textures(
    gpu: &Gpu,
    layout: &TexelLayout,
    label: &str,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
    bytes: &[u8],
    texel_bytes: u32,
) -> Vec<wgpu::Texture> {
    let copies = weight_copies(bytes.len() as u64);
    texture_copies(
        gpu,
        layout,
        label,
        format,
        usage,
        bytes,
        texel_bytes,
        copies,
    )
}

/// [`textures`], `copies` of them (at least one): for operands cycled together (K and V).
#[allow(clippy::too_many_arguments)]
pub fn texture_copies(
    gpu: &Gpu,
    layout: &TexelLayout,
    label: &str,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
    bytes: &[u8],
    texel_bytes: u32,
    copies: usize,
) -> Vec<wgpu::Texture> {
    let first = layout.texture(
        gpu,
        label,
        format,
        usage | wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::COPY_DST,
    );
    layout.write(gpu, &first, bytes, texel_bytes);
    let (width, height) = layout.size();
    let extent = wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    };
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let mut all = vec![first];
    for _ in 1..copies {
        let copy = layout.texture(gpu, label, format, usage | wgpu::TextureUsages::COPY_DST);
        encoder.copy_texture_to_texture(all[0].as_image_copy(), copy.as_image_copy(), extent);
        all.push(copy);
    }
    gpu.queue.submit([encoder.finish()]);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_copies_reach_the_cold_size_within_the_cap() {
        // gpt2's 768 x 768 f16 (1.2 MB): capped at 64 copies, 75 MB.
        assert_eq!(weight_copies(768 * 768 * 2), 64);
        // 768 x 3072 f16 (4.7 MB): 29 copies, just past 128 MiB.
        let (bytes, copies) = (768 * 3072 * 2, weight_copies(768 * 3072 * 2));
        assert_eq!(copies, 29);
        assert!(copies as u64 * bytes >= COLD_WEIGHT_BYTES);
        assert!((copies as u64 - 1) * bytes < COLD_WEIGHT_BYTES);
        // Near or past the cold size on its own (a 77 MB LM head needs 2; 256 MB needs 1).
        assert_eq!(weight_copies(50257 * 768 * 2), 2);
        assert_eq!(weight_copies(256 << 20), 1);
        assert_eq!(weight_copies(0), 64);
    }
}
