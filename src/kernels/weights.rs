//! Weight operands as the timing sees them: several copies on the device, one per execution
//! in turn, so that every execution reads its weights from memory.
//!
//! A kernel timed over and over with one copy of its weights reads them from a cache that
//! the previous execution filled, which a forward pass never does: every layer has its own
//! weights, and a model's weights are far larger than any cache. So the programs of the
//! matmul kernels bind [`weight_copies`] copies of B, [`super::Dispatch::cycling`] through
//! them; decode attention cycles copies of its KV cache the same way
//! ([`super::attention::kv_copies`]). The copies are made on the device from one upload (a
//! copy per copy is cheaper than an upload per copy, on lavapipe as on GPUs), once per
//! benchmark: its variants that lay an operand out alike bind the same copies ([`Staged`]).

use std::sync::{Mutex, MutexGuard};

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

/// The copies staged on one device for the benchmark it is running, for the benchmark's
/// other variants to bind instead of staging their own: a benchmark's variants read the same
/// weights, and those that lay them out alike (most of a search's tiles) would stage the
/// same bytes again, up to 128 MiB of copies each. The run empties it between benchmarks
/// ([`Staged::clear`]), so in a run it holds one benchmark's operands at most: each staging
/// until the benchmark ends (where a variant's own copies went with it after its screen),
/// and a host copy of its bytes, to compare. Programs sharing copies cycle through them as
/// one ([`Gpu::next_execution`]). Helper devices ([`Gpu::compiles_only`]) stage one copy
/// and keep none.
#[derive(Default)]
pub struct Staged {
    buffers: Shelf<BufferStaging>,
    textures: Shelf<TextureStaging>,
}

impl Staged {
    /// Forget every staged copy (programs that bind them keep them alive).
    pub fn clear(&self) {
        self.buffers.lock().clear();
        self.textures.lock().clear();
    }
}

/// How an operand is staged: two stagings that are equal, from equal bytes, are the same
/// copies.
trait Staging: PartialEq {
    type Copy: Clone;
    /// The copies of `bytes`: one upload, copied on the device.
    fn stage(&self, gpu: &Gpu, bytes: &[u8]) -> Vec<Self::Copy>;
}

/// `copies` buffers of `usage`, `len` bytes each (the bytes zero-padded).
#[derive(Debug, PartialEq)]
struct BufferStaging {
    label: String,
    len: u64,
    usage: wgpu::BufferUsages,
    copies: usize,
}

/// `copies` textures laid out as `layout` in `format`, for `usage`, `texel_bytes` per
/// texel.
#[derive(Debug, PartialEq)]
struct TextureStaging {
    label: String,
    layout: TexelLayout,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
    texel_bytes: u32,
    copies: usize,
}

/// Staged copies of one kind: buffers or textures.
struct Shelf<S: Staging>(Mutex<Vec<Shelved<S>>>);

/// Copies with how they were staged and from which bytes (compared in full: a match must be
/// the same weights).
struct Shelved<S: Staging> {
    staging: S,
    bytes: Vec<u8>,
    copies: Vec<S::Copy>,
}

impl<S: Staging> Default for Shelf<S> {
    fn default() -> Self {
        Shelf(Mutex::new(Vec::new()))
    }
}

impl<S: Staging> Shelf<S> {
    fn lock(&self) -> MutexGuard<'_, Vec<Shelved<S>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The copies staged as `staging` from `bytes`, staged now if there are none yet; on a
    /// device that only compiles, always staged now and kept nowhere.
    fn get_or_stage(&self, gpu: &Gpu, staging: S, bytes: &[u8]) -> Vec<S::Copy> {
        if gpu.compiles_only() {
            return staging.stage(gpu, bytes);
        }
        let found = self
            .lock()
            .iter()
            .find(|s| s.staging == staging && s.bytes == bytes)
            .map(|s| s.copies.clone());
        if let Some(copies) = found {
            return copies;
        }
        let copies = staging.stage(gpu, bytes);
        self.lock().push(Shelved {
            staging,
            bytes: bytes.to_vec(),
            copies: copies.clone(),
        });
        copies
    }
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
/// One on a device that only compiles ([`Gpu::compiles_only`]).
pub fn buffer_copies(
    gpu: &Gpu,
    label: &str,
    bytes: &[u8],
    len: u64,
    usage: wgpu::BufferUsages,
    copies: usize,
) -> Vec<wgpu::Buffer> {
    let staging = BufferStaging {
        label: label.into(),
        // The length staged, so that requests that stage the same buffer match.
        len: len.max(bytes.len() as u64).next_multiple_of(4),
        usage,
        copies: copies_on(gpu, copies),
    };
    gpu.staged.buffers.get_or_stage(gpu, staging, bytes)
}

impl Staging for BufferStaging {
    type Copy = wgpu::Buffer;

    fn stage(&self, gpu: &Gpu, bytes: &[u8]) -> Vec<wgpu::Buffer> {
        let label = self.label.as_str();
        let mut padded = bytes.to_vec();
        padded.resize(self.len as usize, 0);
        let first = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &padded,
                usage: self.usage | wgpu::BufferUsages::COPY_SRC,
            });
        copied_on_device(gpu, first, self.copies, |encoder, first| {
            let copy = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: self.len,
                usage: self.usage | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_buffer_to_buffer(first, 0, &copy, 0, self.len);
            copy
        })
    }
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
/// One on a device that only compiles ([`Gpu::compiles_only`]).
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
    let staging = TextureStaging {
        label: label.into(),
        layout: *layout,
        format,
        usage,
        texel_bytes,
        copies: copies_on(gpu, copies),
    };
    gpu.staged.textures.get_or_stage(gpu, staging, bytes)
}

impl Staging for TextureStaging {
    type Copy = wgpu::Texture;

    fn stage(&self, gpu: &Gpu, bytes: &[u8]) -> Vec<wgpu::Texture> {
        let (label, layout) = (self.label.as_str(), &self.layout);
        let (format, usage) = (self.format, self.usage);
        let first = layout.texture(
            gpu,
            label,
            format,
            usage | wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::COPY_DST,
        );
        layout.write(gpu, &first, bytes, self.texel_bytes);
        let (width, height) = layout.size();
        let extent = wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        };
        copied_on_device(gpu, first, self.copies, |encoder, first| {
            let copy = layout.texture(gpu, label, format, usage | wgpu::TextureUsages::COPY_DST);
            encoder.copy_texture_to_texture(first.as_image_copy(), copy.as_image_copy(), extent);
            copy
        })
    }
}

/// `first` (uploaded) and `copies - 1` more made from it on the device by `copy`, which
/// creates one and records its copy into the encoder: a copy per copy is cheaper than an
/// upload per copy. The copies are submitted together.
fn copied_on_device<T>(
    gpu: &Gpu,
    first: T,
    copies: usize,
    copy: impl Fn(&mut wgpu::CommandEncoder, &T) -> T,
) -> Vec<T> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let mut all = vec![first];
    for _ in 1..copies {
        let next = copy(&mut encoder, &all[0]);
        all.push(next);
    }
    gpu.queue.submit([encoder.finish()]);
    all
}

/// The copies to make on `gpu`: `copies`, or one where programs are only compiled (a
/// helper's: a fresh quick run's helpers had made up to 128 MiB of copies for every matmul
/// variant they compiled, which the driver's compile never reads).
fn copies_on(gpu: &Gpu, copies: usize) -> usize {
    if gpu.compiles_only() {
        1
    } else {
        copies
    }
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

    #[test]
    fn a_benchmarks_variants_share_copies_of_the_same_bytes_and_helpers_make_one() {
        let Ok(gpu) = Gpu::open(std::env::var("PRICEPERF_ADAPTER").ok().as_deref()) else {
            eprintln!("skipping GPU test: no adapter");
            return;
        };
        let layout = TexelLayout::new("B", 4, 3, 8192).expect("fits");
        let format = wgpu::TextureFormat::Rgba32Float;
        let usage = wgpu::TextureUsages::TEXTURE_BINDING;
        let (w1, w2) = (vec![1u8; 4 * 3 * 16], vec![2u8; 4 * 3 * 16]);
        let tex = |gpu: &Gpu, bytes: &[u8], copies| {
            texture_copies(gpu, &layout, "B", format, usage, bytes, 16, copies)
        };
        let a = tex(&gpu, &w1, 3);
        assert_eq!(a.len(), 3);
        assert!(
            tex(&gpu, &w1, 3) == a,
            "the same bytes, staged alike: shared"
        );
        assert!(tex(&gpu, &w2, 3) != a, "other bytes: staged anew");
        assert!(
            tex(&gpu, &w1, 2) != a,
            "another number of copies: staged anew"
        );
        let buf =
            |bytes: &[u8]| buffer_copies(&gpu, "K", bytes, 64, wgpu::BufferUsages::STORAGE, 2);
        let k = buf(&w1);
        assert!(buf(&w1) == k && buf(&w2) != k);
        gpu.staged.clear();
        assert!(tex(&gpu, &w1, 3) != a, "a new benchmark stages its own");

        let helper = Gpu::helper(gpu.adapter.clone()).expect("a second device opens");
        let h = tex(&helper, &w1, 3);
        assert_eq!(h.len(), 1, "a helper only compiles: one copy");
        assert!(tex(&helper, &w1, 3) != h, "and keeps none");
    }
}
