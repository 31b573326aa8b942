//! Adapters and devices: discovery on every backend, selection, device creation with the
//! adapter's own limits and only the features kernels use, and the adapter facts that go
//! into every result row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Features a kernel may use. Anything else the adapter offers is left off, so a result
/// never depends on a feature the harness does not know about.
const WANTED_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::SUBGROUP);

/// The threads a CPU adapter (llvmpipe) runs workgroups on: `LP_NUM_THREADS` where set
/// (0, llvmpipe's no-thread mode, counts as one), else every hardware thread, llvmpipe's
/// default.
pub fn cpu_adapter_threads() -> usize {
    std::env::var("LP_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(|n| n.max(1))
        .unwrap_or_else(host_threads)
}

/// The host's hardware threads (one where the system does not say): what the run's own
/// CPU work (references, inputs, compiling ahead) can spread over.
pub fn host_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The host processor's model name (Linux: `/proc/cpuinfo`); `None` where the system does
/// not say. A CPU adapter's name and driver do not tell one processor from another.
pub fn host_cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// What a result row needs to know about an adapter: identity, driver and the limits that
/// decide which shapes run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor_id: u32,
    pub device_id: u32,
    pub timestamps: bool,
    pub f16: bool,
    pub subgroups: bool,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    pub max_workgroup_storage_bytes: u32,
    pub max_invocations_per_workgroup: u32,
    pub max_workgroups_per_dimension: u32,
    pub max_storage_binding_bytes: u64,
    pub max_buffer_bytes: u64,
}

impl AdapterSummary {
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let features = adapter.features();
        let limits = adapter.limits();
        AdapterSummary {
            name: info.name,
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: device_type_name(info.device_type).to_string(),
            driver: info.driver,
            driver_info: info.driver_info,
            vendor_id: info.vendor,
            device_id: info.device,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            subgroup_min_size: info.subgroup_min_size,
            subgroup_max_size: info.subgroup_max_size,
            max_workgroup_storage_bytes: limits.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_storage_binding_bytes: limits.max_storage_buffer_binding_size,
            max_buffer_bytes: limits.max_buffer_size,
        }
    }

    /// A software rasteriser (lavapipe, WARP, SwiftShader): sized down and priced by vCPU.
    pub fn is_cpu(&self) -> bool {
        self.device_type == "cpu"
    }

    /// Mesa's llvmpipe (lavapipe on Vulkan, or GL): a storage-buffer load at per-lane
    /// addresses is a scalar loop over the SIMD lanes there.
    pub fn is_llvmpipe(&self) -> bool {
        self.name.to_ascii_lowercase().contains("llvmpipe")
    }

    /// A short, file-name-safe label for result folder names.
    pub fn slug(&self) -> String {
        let mut slug = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_matches('-');
        let slug: String = slug.chars().take(40).collect();
        format!("{}-{}", slug.trim_end_matches('-'), self.backend)
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Higher is preferred: discrete over integrated over virtual over CPU, and native APIs over
/// GL (the GL llvmpipe adapter has fewer features than the Vulkan one of the same name).
fn preference(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, backend)
}

fn instance() -> wgpu::Instance {
    // Reads WGPU_BACKEND and the other wgpu environment variables.
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter on every backend, most preferred first.
pub fn enumerate() -> Vec<wgpu::Adapter> {
    let instance = instance();
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| std::cmp::Reverse(preference(&a.get_info())));
    adapters
}

/// How to get an adapter where there is none.
pub const NO_ADAPTER_HELP: &str =
    "No GPU adapter was found (no Vulkan, Metal, DX12 or GL driver). \
    On Debian or Ubuntu without a GPU, install Mesa's CPU Vulkan driver with \
    `sudo apt-get install mesa-vulkan-drivers` (lavapipe); with an NVIDIA GPU, install the \
    driver's Vulkan ICD (in containers, mount nvidia_icd.json and set VK_DRIVER_FILES). \
    `priceperf devices` lists what wgpu can see.";

/// Pick an adapter: the first whose name contains `substr` (case-insensitive; `backend:name`
/// also matches on backend, e.g. `vulkan:llvmpipe`, and a bare backend name such as `gl`
/// picks that backend's first adapter when no name contains it), else the most capable one.
pub fn select(adapters: Vec<wgpu::Adapter>, substr: Option<&str>) -> Result<wgpu::Adapter> {
    if adapters.is_empty() {
        return Err(Error::NoAdapter(NO_ADAPTER_HELP.into()));
    }
    let Some(wanted) = substr.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(adapters.into_iter().next().expect("checked non-empty"));
    };
    let named: Vec<(String, String)> = adapters
        .iter()
        .map(|a| {
            let s = AdapterSummary::of(a);
            (s.name, s.backend)
        })
        .collect();
    match pick(&named, wanted) {
        Some(i) => Ok(adapters.into_iter().nth(i).expect("index from the same list")),
        None => Err(Error::NoAdapter(format!(
            "no adapter matches `{wanted}`; available: {}. Pass part of one of these names to --adapter (or PRICEPERF_ADAPTER), a backend name, or both as in `vulkan:llvmpipe`.",
            named
                .iter()
                .map(|(name, backend)| format!("{name} ({backend})"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The index in `adapters` (name, backend) that `wanted` picks; see [`select`].
fn pick(adapters: &[(String, String)], wanted: &str) -> Option<usize> {
    let wanted = wanted.to_lowercase();
    let (backend, name) = match wanted.split_once(':') {
        Some((b, n)) => (Some(b), n),
        None => (None, wanted.as_str()),
    };
    let by_name = adapters.iter().position(|(n, b)| {
        n.to_lowercase().contains(name) && backend.is_none_or(|want| b.starts_with(want))
    });
    by_name.or_else(|| {
        backend
            .is_none()
            .then(|| adapters.iter().position(|(_, b)| b.as_str() == name))
            .flatten()
    })
}

/// An open device on the selected adapter, with what went wrong on it so far.
pub struct Gpu {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub summary: AdapterSummary,
    lost: Arc<AtomicBool>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Pipelines built on this device, by entry point and WGSL source, for
    /// [`crate::kernels::compile`] to reuse; `None` on a helper device (see
    /// [`Gpu::helper`]). Many benchmarks share a kernel's source (the shape comes in a
    /// uniform), and building it again costs the shader front end and the driver's cache
    /// lookup every time: 0.1-0.3 s a variant on lavapipe.
    pub(crate) pipelines: Option<Mutex<HashMap<(String, String), wgpu::ComputePipeline>>>,
    /// Nanoseconds this device has spent building pipelines (the shader front end, and the
    /// compiling of drivers that compile there rather than on the first dispatch).
    build_ns: AtomicU64,
    /// When work run through [`crate::measure::Timer`] (a screen, a final, a measurement, a
    /// warm-up, a peak probe: all of it back to back) last finished on this device; `None`
    /// before any. A GPU lowers its clocks when idle, so
    /// the tuning search warms it up after a pause ([`crate::tuning::GPU_WARM_UP`]).
    timed_at: Mutex<Option<std::time::Instant>>,
    /// Whether this is a helper device ([`Gpu::helper`]), whose programs are built and
    /// dispatched once, with no workgroups, for the driver to compile them, and never run
    /// or timed: see [`Gpu::compiles_only`].
    compiles_only: bool,
    /// Weight copies staged for the benchmark being run, which its variants share.
    pub(crate) staged: crate::kernels::weights::Staged,
    /// Program executions encoded on this device so far ([`Gpu::next_execution`]).
    executions: AtomicU64,
}

impl Gpu {
    /// Open a device on the adapter chosen by `substr` (see [`select`]).
    pub fn open(substr: Option<&str>) -> Result<Gpu> {
        Gpu::on(select(enumerate(), substr)?)
    }

    /// Open a device on this adapter: its own limits (not WebGPU's defaults, which cap
    /// workgroup storage at 16 KiB and bindings at 128 MiB) and only `WANTED_FEATURES`.
    pub fn on(adapter: wgpu::Adapter) -> Result<Gpu> {
        Gpu::open_on(adapter, "device", false)
    }

    /// A device that compiles for the run's own (`compile_ahead`). A loss is
    /// reported as a helper's, so it is not taken for the run's device. It builds every
    /// pipeline afresh: its work reaches the run's device through the driver's disk cache
    /// only, and a variant that llvmpipe compiled for a reused pipeline (on a helper that had
    /// built the same source for an earlier shape) did not reach it there: the run's device
    /// compiled it again (1.5 s for one matmul variant, measured).
    pub fn helper(adapter: wgpu::Adapter) -> Result<Gpu> {
        Gpu::open_on(adapter, "helper device", true)
    }

    fn open_on(adapter: wgpu::Adapter, name: &'static str, helper: bool) -> Result<Gpu> {
        let summary = AdapterSummary::of(&adapter);
        let desc = wgpu::DeviceDescriptor {
            label: Some("priceperf"),
            required_features: adapter.features() & WANTED_FEATURES,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            Error::Gpu(format!(
                "cannot open a device on `{}` ({}): {e}. Try another adapter with --adapter.",
                summary.name, summary.backend
            ))
        })?;
        let lost = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, msg| {
                if reason != wgpu::DeviceLostReason::Destroyed {
                    eprintln!("priceperf: {name} lost: {msg}");
                }
                lost.store(true, Ordering::SeqCst);
            });
        }
        {
            // wgpu's default handler panics; record instead, and let the caller turn the
            // error into a failed row.
            let errors = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                if let Ok(mut v) = errors.lock() {
                    v.push(e.to_string());
                }
            }));
        }
        Ok(Gpu {
            adapter,
            device,
            queue,
            summary,
            lost,
            errors,
            pipelines: (!helper).then(|| Mutex::new(HashMap::new())),
            build_ns: AtomicU64::new(0),
            timed_at: Mutex::new(None),
            compiles_only: helper,
            staged: Default::default(),
            executions: AtomicU64::new(0),
        })
    }

    /// Whether programs built here are only compiled, never run: a helper device's. Their
    /// operands need no copies for a timing to cycle through ([`crate::kernels::weights`]):
    /// one is enough for the driver to compile the kernel, which the copies do not change.
    pub fn compiles_only(&self) -> bool {
        self.compiles_only
    }

    /// The number of the next program execution on this device, which picks the copy of the
    /// weights it binds ([`crate::kernels::Program::encode`]): counted across programs, so
    /// that those sharing staged copies cycle through them as one.
    pub fn next_execution(&self) -> usize {
        self.executions.fetch_add(1, Ordering::Relaxed) as usize
    }

    /// Seconds this device has spent building pipelines so far.
    pub fn build_s(&self) -> f64 {
        self.build_ns.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Count `d` of pipeline building ([`crate::kernels::compile`]).
    pub(crate) fn add_build_time(&self, d: std::time::Duration) {
        self.build_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Note that work run through [`crate::measure::Timer`] has just finished.
    pub(crate) fn mark_timed(&self) {
        *self.timed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// How long since timed work last finished on this device: `None` if none has yet,
    /// which is as good as idle for ever.
    pub fn idle_for(&self) -> Option<std::time::Duration> {
        self.timed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// Whether the device has been lost (driver reset, TDR, out of memory).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Errors that no error scope caught since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    pub fn has_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            && self.queue.get_timestamp_period() > 0.0
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_file_name_safe() {
        let s = AdapterSummary {
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            driver: String::new(),
            driver_info: String::new(),
            vendor_id: 0,
            device_id: 0,
            timestamps: true,
            f16: true,
            subgroups: true,
            subgroup_min_size: 8,
            subgroup_max_size: 8,
            max_workgroup_storage_bytes: 32768,
            max_invocations_per_workgroup: 1024,
            max_workgroups_per_dimension: 65535,
            max_storage_binding_bytes: 1 << 27,
            max_buffer_bytes: 1 << 31,
        };
        assert_eq!(s.slug(), "llvmpipe-llvm-15-0-6-256-bits-vulkan");
        assert!(s.is_cpu());
    }

    #[test]
    fn adapters_are_picked_by_name_then_backend() {
        let list: Vec<(String, String)> = [
            ("NVIDIA H100 80GB HBM3", "vulkan"),
            ("llvmpipe (LLVM 15.0.6, 256 bits)", "vulkan"),
            ("llvmpipe (LLVM 15.0.6, 256 bits)", "gl"),
        ]
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_string()))
        .collect();
        assert_eq!(pick(&list, "h100"), Some(0));
        assert_eq!(pick(&list, "LLVMpipe"), Some(1));
        assert_eq!(pick(&list, "gl:llvmpipe"), Some(2));
        assert_eq!(pick(&list, "vulkan:"), Some(0));
        // A bare backend name picks that backend's first adapter.
        assert_eq!(pick(&list, "gl"), Some(2));
        assert_eq!(pick(&list, "vulkan"), Some(0));
        assert_eq!(pick(&list, "metal"), None);
        assert_eq!(pick(&list, "dx12:llvmpipe"), None);
    }

    #[test]
    fn no_adapter_is_exit_3_with_a_fix() {
        let err = select(Vec::new(), None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_NO_ADAPTER);
        assert!(err.to_string().contains("mesa-vulkan-drivers"));
    }
}
