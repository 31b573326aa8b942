//! The kernel registry's shared machinery: WGSL templates, pipeline compilation, device
//! buffers, and [`Program`], a ready-to-dispatch kernel with its inputs uploaded.
//!
//! Each op has its own module ([`matmul`]) that lists its variants, renders their WGSL from
//! the files in `kernels/`, computes dispatch geometry and checks device limits.

pub mod attention;
pub mod attention_decode;
pub mod elementwise;
pub mod gemv;
pub mod gemv_coop;
pub mod gemv_texture;
pub mod matmul;
pub mod texel_layout;
pub mod weights;

use half::f16;
use half::slice::HalfFloatSliceExt;
use wgpu::util::DeviceExt;

use crate::gpu::Gpu;
use crate::shape::DType;
use crate::verify::Rng;

/// Why a variant did not produce a program.
#[derive(Debug, Clone, PartialEq)]
pub enum PrepareError {
    /// The adapter cannot run it (a limit or a feature): recorded as `status=skipped`.
    Unsupported(String),
    /// Compilation or pipeline creation failed: recorded as `status=failed`.
    Failed(String),
}

/// `Unsupported` unless the adapter has `Features::SUBGROUP` with subgroups of at least
/// `lanes` invocations, so that a workgroup of `lanes` is one subgroup; `why` says what the
/// kernel uses them for.
pub fn require_subgroups(gpu: &Gpu, lanes: u32, why: &str) -> Result<(), PrepareError> {
    let s = &gpu.summary;
    if gpu.device.features().contains(wgpu::Features::SUBGROUP) && s.subgroup_min_size >= lanes {
        return Ok(());
    }
    Err(PrepareError::Unsupported(format!(
        "{why}: needs subgroups of at least {lanes} lanes; the adapter has {}",
        if s.subgroups {
            format!("{}..{}", s.subgroup_min_size, s.subgroup_max_size)
        } else {
            "none".into()
        }
    )))
}

/// A buffer readable as uniform windows (and storage): `bytes` followed by `pad` zero bytes,
/// so a window bound at the last row stays in bounds, rounded up to 16 bytes.
pub fn uniform_readable(gpu: &Gpu, label: &str, bytes: &[u8], pad: u64) -> wgpu::Buffer {
    let mut padded = bytes.to_vec();
    padded.resize((bytes.len() as u64 + pad).next_multiple_of(16) as usize, 0);
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &padded,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
        })
}

/// WGSL statements unpacking `{name}u` (a `vec4<u32>` of 8 halves, as f16 data is read from
/// uniform arrays, whose elements need a 16-byte stride) into `vec4<f32>`s `{name}0` and
/// `{name}1`.
pub fn unpack_halves(name: &str) -> String {
    format!(
        "let {name}0 = vec4<f32>(unpack2x16float({name}u.x), unpack2x16float({name}u.y)); let {name}1 = vec4<f32>(unpack2x16float({name}u.z), unpack2x16float({name}u.w));"
    )
}

/// A WGSL `switch` over `nw` window slots on `selector`: `body(i)` is the code for slot i
/// (WGSL cannot index bindings, so kernels that bind several uniform windows repeat their
/// loop per slot). The last slot is the `default`, so every path runs a body.
pub fn slot_switch(selector: &str, nw: u32, body: impl Fn(u32) -> String) -> String {
    let mut out = format!("    switch {selector} {{\n");
    for i in 0..nw {
        let case = if i + 1 == nw {
            "default".to_string()
        } else {
            format!("case {i}u")
        };
        out.push_str(&format!(
            "        {case}: {{\n{}\n        }}\n",
            body(i).trim_end()
        ));
    }
    out.push_str("    }");
    out
}

/// Fill `{{NAME}}` fields of a WGSL template. Every field must be given and used, so a typo
/// fails the unit tests instead of producing a shader that does not compile.
pub fn render(template: &str, fields: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in fields {
        let key = format!("{{{{{name}}}}}");
        assert!(out.contains(&key), "template has no field {key}");
        out = out.replace(&key, value);
    }
    assert!(!out.contains("{{"), "unfilled template field in:\n{out}");
    out
}

/// `enable f16;` where the storage type needs it.
pub fn enable_line(dtype: DType) -> String {
    match dtype {
        DType::F16 => "enable f16;".into(),
        DType::F32 => String::new(),
    }
}

/// Whether shaders are compiled with wgpu's runtime checks (bounds checks, loop bounding).
/// Benchmarks use unchecked shaders, as production inference does; every kernel is verified
/// before it is timed either way. `PRICEPERF_CHECKED_SHADERS=1` turns checks on.
pub fn checked_shaders() -> bool {
    std::env::var("PRICEPERF_CHECKED_SHADERS").is_ok_and(|v| v == "1")
}

/// Compile `source` and build a compute pipeline for `entry`; WGSL and validation errors come
/// back as text instead of reaching wgpu's panicking default handler. A source the device
/// has built before is not built again: its pipeline is reused (see `Gpu::pipelines`).
/// Every source is first written out where `PRICEPERF_DUMP_WGSL` asks
/// (`src/wgsl_dump.rs`), reused or not, so each label has its file and a kernel that
/// fails to build can be read too.
pub fn compile(
    gpu: &Gpu,
    label: &str,
    source: &str,
    entry: &str,
) -> Result<wgpu::ComputePipeline, PrepareError> {
    crate::wgsl_dump::source(label, source);
    let Some(pipelines) = &gpu.pipelines else {
        return build(gpu, label, source, entry);
    };
    let key = (entry.to_string(), source.to_string());
    let built = pipelines.lock().ok().and_then(|p| p.get(&key).cloned());
    if let Some(pipeline) = built {
        return Ok(pipeline);
    }
    let pipeline = build(gpu, label, source, entry)?;
    if let Ok(mut p) = pipelines.lock() {
        p.insert(key, pipeline.clone());
    }
    Ok(pipeline)
}

/// [`compile`] without the device's pipeline cache; the time counts in [`Gpu::build_s`].
fn build(
    gpu: &Gpu,
    label: &str,
    source: &str,
    entry: &str,
) -> Result<wgpu::ComputePipeline, PrepareError> {
    let started = std::time::Instant::now();
    let built = build_uncounted(gpu, label, source, entry);
    gpu.add_build_time(started.elapsed());
    built
}

fn build_uncounted(
    gpu: &Gpu,
    label: &str,
    source: &str,
    entry: &str,
) -> Result<wgpu::ComputePipeline, PrepareError> {
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    let module = if checked_shaders() {
        gpu.device.create_shader_module(desc)
    } else {
        // SAFETY: every kernel bounds its own indices (rows and columns are clamped, loads
        // past k are guarded), and each program is verified on the device before timing.
        unsafe {
            gpu.device
                .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
        }
    };
    let pipeline = gpu
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                // Kernels write workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(PrepareError::Failed(format!("{label}: {e}"))),
        None => Ok(pipeline),
    }
}

/// One compute dispatch: pipeline, bindings and workgroup counts.
pub struct Dispatch {
    pub pipeline: wgpu::ComputePipeline,
    /// Taken in turn, one per execution of the program: one per copy of the weights where
    /// they are cycled (see [`weights`]), else just one. Never empty.
    pub bind_groups: Vec<wgpu::BindGroup>,
    pub workgroups: [u32; 3],
}

impl Dispatch {
    pub fn new(
        pipeline: wgpu::ComputePipeline,
        bind_group: wgpu::BindGroup,
        workgroups: [u32; 3],
    ) -> Self {
        Dispatch::cycling(pipeline, vec![bind_group], workgroups)
    }

    /// A dispatch that takes each of `bind_groups` in turn, one per execution of its
    /// program (one bind group per copy of the weights; at least one).
    pub fn cycling(
        pipeline: wgpu::ComputePipeline,
        bind_groups: Vec<wgpu::BindGroup>,
        workgroups: [u32; 3],
    ) -> Self {
        assert!(!bind_groups.is_empty(), "a dispatch needs a bind group");
        Dispatch {
            pipeline,
            bind_groups,
            workgroups,
        }
    }
}

/// A kernel ready to run: its dispatches (in order), with inputs on the device and the output
/// buffer pre-filled with NaN so unwritten elements fail verification.
pub struct Program {
    pub dispatches: Vec<Dispatch>,
    pub output: wgpu::Buffer,
    pub output_dtype: DType,
    pub output_len: u64,
    /// Buffers the program keeps alive (inputs, uniforms).
    pub _keep: Vec<wgpu::Buffer>,
}

impl Program {
    pub fn new(
        dispatches: Vec<Dispatch>,
        output: wgpu::Buffer,
        output_dtype: DType,
        output_len: u64,
        keep: Vec<wgpu::Buffer>,
    ) -> Self {
        Program {
            dispatches,
            output,
            output_dtype,
            output_len,
            _keep: keep,
        }
    }

    /// A program of one dispatch.
    pub fn single(
        dispatch: Dispatch,
        output: wgpu::Buffer,
        output_dtype: DType,
        output_len: u64,
        keep: Vec<wgpu::Buffer>,
    ) -> Self {
        Program::new(vec![dispatch], output, output_dtype, output_len, keep)
    }

    /// How many copies of its weights the program cycles through (1: none).
    pub fn copies(&self) -> usize {
        self.dispatches
            .iter()
            .map(|d| d.bind_groups.len())
            .max()
            .unwrap_or(1)
    }

    /// Record one execution of the program on `gpu`, the device it was built on, into a
    /// compute pass: the next copy of the weights where they are cycled. The executions are
    /// counted per device ([`Gpu::next_execution`]), not per program: programs that bind the
    /// same staged copies ([`weights::Staged`]) then take up where the last one left off,
    /// and each execution reads the copy read least recently, as with copies of its own.
    pub fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.encode_sized(pass, gpu.next_execution(), |d| d.workgroups);
    }

    /// Every pipeline bound and dispatched with no workgroups: no invocation runs and no
    /// buffer changes, but a driver that compiles a kernel on its first dispatch (lavapipe,
    /// with nothing in Mesa's shader cache: seconds to minutes for big unrolled kernels)
    /// compiles it here, so the next real dispatch times the kernel alone.
    pub fn encode_empty(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.encode_sized(pass, 0, |_| [0; 3]);
    }

    /// Every dispatch in order, bound for execution number `execution`, with the workgroup
    /// counts `size` gives it.
    fn encode_sized(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        execution: usize,
        size: impl Fn(&Dispatch) -> [u32; 3],
    ) {
        for d in &self.dispatches {
            let [x, y, z] = size(d);
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_groups[execution % d.bind_groups.len()], &[]);
            pass.dispatch_workgroups(x, y, z);
        }
    }
}

/// `len` values of `value` (`draws` draws each) from the stream that starts at `start`, each
/// block of them `store`d (converted) into the output: in up to `parts` parts on threads of
/// their own, each part from its own point of the stream.
fn draw<T: bytemuck::Zeroable + Copy + Send>(
    len: usize,
    parts: usize,
    start: &Rng,
    draws: u64,
    value: impl Fn(&mut Rng) -> f32 + Sync,
    store: impl Fn(&[f32], &mut [T]) + Sync,
) -> Vec<T> {
    const BLOCK: usize = 1024;
    // Below this a thread costs more than it saves.
    const MIN_PART: usize = 1 << 16;
    let fill = |part: &mut [T], mut rng: Rng| {
        let mut block = [0.0f32; BLOCK];
        for out in part.chunks_mut(BLOCK) {
            let values = &mut block[..out.len()];
            for v in values.iter_mut() {
                *v = value(&mut rng);
            }
            store(values, out);
        }
    };
    // Zeroed pages, written first by the parts' own threads.
    let mut out: Vec<T> = bytemuck::allocation::zeroed_vec(len);
    let part_len = len.div_ceil(parts.max(1)).max(MIN_PART);
    if len <= part_len {
        fill(&mut out, start.clone());
        return out;
    }
    std::thread::scope(|scope| {
        for (i, part) in out.chunks_mut(part_len).enumerate() {
            let rng = start.ahead((i * part_len) as u64 * draws);
            let fill = &fill;
            scope.spawn(move || fill(part, rng));
        }
    });
    out
}

/// A tensor on the host in the kernel's storage type.
#[derive(Debug, Clone)]
pub enum HostTensor {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl HostTensor {
    /// Deterministic values from `gen` (called once per element), stored as `dtype`.
    pub fn generate(dtype: DType, len: u64, mut gen: impl FnMut() -> f32) -> Self {
        match dtype {
            DType::F32 => HostTensor::F32((0..len).map(|_| gen()).collect()),
            DType::F16 => HostTensor::F16((0..len).map(|_| f16::from_f32(gen())).collect()),
        }
    }

    /// `len` draws of `rng.uniform()` stored as `dtype`, leaving `rng` past them: what
    /// `generate(dtype, len, || rng.uniform())` gives, drawn on the host's cores
    /// ([`drawn`](Self::drawn)).
    pub fn uniform(dtype: DType, len: u64, rng: &mut Rng) -> Self {
        Self::drawn(dtype, len, rng, 1, Rng::uniform)
    }

    /// `len` values of `value`, which takes `draws` draws of `rng` each, stored as `dtype`
    /// and leaving `rng` past them: what `generate(dtype, len, || value(&mut rng))` gives,
    /// drawn in one part per core, each from its own point of the stream ([`Rng::ahead`]).
    /// The quick suite's matmul inputs (260 M values) took 0.43 s on one thread, and the
    /// standard suite's decode KV cache (17 M normal values) 0.47 s.
    pub fn drawn(
        dtype: DType,
        len: u64,
        rng: &mut Rng,
        draws: u64,
        value: impl Fn(&mut Rng) -> f32 + Sync,
    ) -> Self {
        let start = rng.clone();
        *rng = rng.ahead(len * draws);
        let (len, cores) = (len as usize, crate::gpu::host_threads());
        match dtype {
            DType::F32 => HostTensor::F32(draw(len, cores, &start, draws, value, |x, out| {
                out.copy_from_slice(x)
            })),
            DType::F16 => HostTensor::F16(draw(len, cores, &start, draws, value, |x, out| {
                out.convert_from_f32_slice(x)
            })),
        }
    }

    /// A tensor of `len` zeros, allocated without generating anything: inputs whose values
    /// never matter (those of the compile-ahead helpers, which only compile).
    pub fn zeros(dtype: DType, len: u64) -> Self {
        match dtype {
            DType::F32 => HostTensor::F32(vec![0.0; len as usize]),
            // Allocated zeroed (pages the OS zeroes as they are first touched); `vec!` of
            // f16 zeros writes every element.
            DType::F16 => HostTensor::F16(bytemuck::allocation::zeroed_vec(len as usize)),
        }
    }

    /// A tensor of `len` NaNs: the initial content of every output buffer.
    pub fn nan(dtype: DType, len: u64) -> Self {
        HostTensor::generate(dtype, len, || f32::NAN)
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            HostTensor::F32(v) => bytemuck::cast_slice(v),
            HostTensor::F16(v) => bytemuck::cast_slice(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HostTensor::F32(v) => v.len(),
            HostTensor::F16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` widened to f64 (exactly: both f32 and f16 are subsets of f64).
    pub fn get(&self, i: usize) -> f64 {
        match self {
            HostTensor::F32(v) => v[i] as f64,
            HostTensor::F16(v) => v[i].to_f64(),
        }
    }

    /// Decode a device readback of `dtype` elements.
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Self {
        match dtype {
            DType::F32 => HostTensor::F32(bytemuck::pod_collect_to_vec(bytes)),
            DType::F16 => HostTensor::F16(bytemuck::pod_collect_to_vec(bytes)),
        }
    }
}

/// A kernel's output buffer of `len` elements of `dtype`, filled with NaN
/// ([`HostTensor::nan`]) so that an element the kernel never writes fails verification.
pub fn output_buffer(gpu: &Gpu, label: &str, dtype: DType, len: u64) -> wgpu::Buffer {
    storage_buffer(gpu, label, HostTensor::nan(dtype, len).bytes(), true)
}

/// Upload a storage buffer. wgpu rounds its size up to a multiple of 4 bytes, zero-padded,
/// but makes an empty one empty, which cannot be bound: that gets 4 zero bytes.
pub fn storage_buffer(gpu: &Gpu, label: &str, data: &[u8], output: bool) -> wgpu::Buffer {
    let contents = if data.is_empty() { &[0; 4] } else { data };
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: storage_usage(output),
        })
}

/// A storage buffer of `bytes` zeros (wgpu zeroes every new buffer), uploading nothing: the
/// peak probes' 64 MiB outputs had cost a host buffer of zeros and its upload each.
pub fn zeroed_buffer(gpu: &Gpu, label: &str, bytes: u64, output: bool) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.next_multiple_of(4).max(4),
        usage: storage_usage(output),
        mapped_at_creation: false,
    })
}

fn storage_usage(output: bool) -> wgpu::BufferUsages {
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    if output {
        usage | wgpu::BufferUsages::COPY_SRC
    } else {
        usage
    }
}

/// A uniform buffer holding `data`.
pub fn uniform_buffer(gpu: &Gpu, label: &str, data: &[u8]) -> wgpu::Buffer {
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: data,
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// Bind `buffers` to bindings 0.. of the pipeline's group 0.
pub fn bind(
    gpu: &Gpu,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let resources = buffers.iter().map(|b| b.as_entire_binding()).collect();
    bind_resources(gpu, pipeline, None, resources)
}

/// Bind `resources` (buffer ranges, texture views) to bindings 0.. of the pipeline's
/// group 0, in order.
pub fn bind_resources(
    gpu: &Gpu,
    pipeline: &wgpu::ComputePipeline,
    label: Option<&str>,
    resources: Vec<wgpu::BindingResource<'_>>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .into_iter()
        .enumerate()
        .map(|(i, resource)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource,
        })
        .collect();
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Check a buffer size against the binding and buffer limits.
pub fn check_buffer(gpu: &Gpu, what: &str, bytes: u64) -> Result<(), PrepareError> {
    let s = &gpu.summary;
    if bytes > s.max_storage_binding_bytes {
        return Err(PrepareError::Unsupported(format!(
            "{what} needs {bytes} bytes, over the adapter's max storage binding of {} bytes",
            s.max_storage_binding_bytes
        )));
    }
    if bytes > s.max_buffer_bytes {
        return Err(PrepareError::Unsupported(format!(
            "{what} needs {bytes} bytes, over the adapter's max buffer size of {} bytes",
            s.max_buffer_bytes
        )));
    }
    Ok(())
}

/// Check a workgroup's invocations and its workgroup memory (`bytes`, described by `what`,
/// e.g. " for d=128", or "") against the adapter's limits.
pub fn check_workgroup(
    gpu: &Gpu,
    invocations: u32,
    bytes: u32,
    what: &str,
) -> Result<(), PrepareError> {
    let s = &gpu.summary;
    if invocations > s.max_invocations_per_workgroup {
        return Err(PrepareError::Unsupported(format!(
            "{invocations} invocations per workgroup, over the adapter's {}",
            s.max_invocations_per_workgroup
        )));
    }
    if bytes > s.max_workgroup_storage_bytes {
        return Err(PrepareError::Unsupported(format!(
            "{bytes} bytes of workgroup memory{what}, over the adapter's {}",
            s.max_workgroup_storage_bytes
        )));
    }
    Ok(())
}

/// Check a dispatch's workgroup counts against the per-dimension limit.
pub fn check_workgroups(gpu: &Gpu, workgroups: [u32; 3]) -> Result<(), PrepareError> {
    let max = gpu.summary.max_workgroups_per_dimension;
    if workgroups.iter().any(|&w| w > max) {
        return Err(PrepareError::Unsupported(format!(
            "dispatch of {workgroups:?} workgroups exceeds the adapter's {max} per dimension"
        )));
    }
    Ok(())
}

/// Parse and validate `src` with naga (what wgpu runs before any driver sees a shader),
/// panicking with `what` and the error: catches WGSL errors in tests without an adapter.
#[cfg(test)]
pub fn validate_wgsl(what: &str, src: &str) {
    use wgpu::naga;
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(src)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drawn in parts, on threads, the values are the one-thread stream's, in both storage
    /// types, and the generator ends where the draws did.
    #[test]
    fn drawn_parts_continue_one_stream() {
        let normalish = |r: &mut Rng| r.uniform() + 0.5 * r.uniform();
        for dtype in [DType::F32, DType::F16] {
            let len = 200_003u64;
            let mut one = Rng::new(5);
            let want = HostTensor::generate(dtype, len, || normalish(&mut one));
            let mut rng = Rng::new(5);
            let got = HostTensor::drawn(dtype, len, &mut rng, 2, normalish);
            assert_eq!(got.bytes(), want.bytes(), "{dtype}");
            assert_eq!(rng.next_u64(), one.next_u64());
            // Three parts whatever the host's cores, and the remainder of the last.
            let start = Rng::new(5);
            let parts: Vec<f32> = draw(len as usize, 3, &start, 2, normalish, |x, out| {
                out.copy_from_slice(x)
            });
            let mut one = Rng::new(5);
            assert!(parts.iter().all(|&v| v == normalish(&mut one)));
        }
    }

    #[test]
    fn render_fills_fields() {
        let s = render(
            "a {{X}} b {{Y}} {{X}}",
            &[("X", "1".into()), ("Y", "2".into())],
        );
        assert_eq!(s, "a 1 b 2 1");
    }

    #[test]
    #[should_panic(expected = "unfilled template field")]
    fn render_refuses_unfilled_fields() {
        render("a {{X}} b {{Y}}", &[("X", "1".into())]);
    }

    #[test]
    fn a_device_builds_each_source_once_and_a_helper_every_time() {
        let Ok(gpu) = Gpu::open(std::env::var("PRICEPERF_ADAPTER").ok().as_deref()) else {
            eprintln!("skipping GPU test: no adapter");
            return;
        };
        let source = |x: u32| {
            format!("@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn main() {{ o[0] = {x}u; }}")
        };
        let a = compile(&gpu, "a", &source(1), "main").expect("compiles");
        let again = compile(&gpu, "a again", &source(1), "main").expect("compiles");
        let other = compile(&gpu, "b", &source(2), "main").expect("compiles");
        assert!(a == again, "the same source is built once");
        assert!(a != other, "another source is built anew");
        // A failed build is not kept: the next try reports the error again.
        for _ in 0..2 {
            assert!(matches!(
                compile(&gpu, "bad", "fn main( {", "main"),
                Err(PrepareError::Failed(_))
            ));
        }
        let helper = Gpu::helper(gpu.adapter.clone()).expect("a second device opens");
        let h1 = compile(&helper, "a", &source(1), "main").expect("compiles");
        let h2 = compile(&helper, "a", &source(1), "main").expect("compiles");
        assert!(h1 != h2, "a helper device builds every time");
    }

    #[test]
    fn host_tensor_round_trips_bytes() {
        let t = HostTensor::generate(DType::F16, 3, || 1.5);
        let back = HostTensor::from_bytes(DType::F16, t.bytes());
        assert_eq!(back.get(2), 1.5);
        assert!(HostTensor::nan(DType::F32, 2).get(1).is_nan());
    }
}
