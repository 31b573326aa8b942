//! The adapter's practical peaks, measured by probe kernels: FMA throughput per storage type
//! (`kernels/peak_fma.wgsl`), streaming-copy bandwidth (`kernels/peak_copy*.wgsl`) and
//! streaming-read bandwidth (`kernels/peak_read*.wgsl`). Every kernel row reports its % of
//! these next to its % of the spec-sheet peak: the spec says what was bought, the probe what
//! this adapter and driver can actually deliver.
//!
//! Peaks are cached per adapter, driver and probe version (`cache.rs`), so a run measures
//! them once per machine; `--retune` measures them again.
//!
//! The f32 FMA probe also runs at the start and the end of every run ([`SpeedCheck`]): on a
//! shared host the same kernel can run 1.6x faster or slower minutes apart, and a run whose
//! rows straddle such a change says so.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::gpu::Gpu;
use crate::kernels::{
    bind_resources, compile, enable_line, render, storage_buffer, zeroed_buffer, Dispatch, Program,
};
use crate::measure::{run_and_read, DeviceTrouble, Timer};
use crate::shape::DType;

const FMA: &str = include_str!("../../kernels/peak_fma.wgsl");
const COPY: &str = include_str!("../../kernels/peak_copy.wgsl");
const COPY_TEXTURE: &str = include_str!("../../kernels/peak_copy_texture.wgsl");
const READ: &str = include_str!("../../kernels/peak_read.wgsl");
const READ_TEXTURE: &str = include_str!("../../kernels/peak_read_texture.wgsl");

/// Bump when a probe changes what it measures, so cached peaks are measured again.
pub const PROBE_VERSION: u32 = 4;

/// Loop iterations, unroll and chains of the FMA probe: 512 · 4 · 4 · 8 FLOPs per
/// invocation. Measured on lavapipe (2 cores, AVX2): unroll 4 reaches 95 GFLOP/s, unroll 1
/// 51-62, unroll 32 35 (code size); 2 or 4 chains the same.
const FMA_ITERS: u32 = 512;
const FMA_UNROLL: u32 = 4;
const FMA_CHAINS: u32 = 4;
/// The FMA probe's addend: every chain a = a·a + C converges to the fixed point
/// (1 - sqrt(1 - 4C)) / 2, about 0.1127, from its start in [0, 0.585] (the invocation's
/// 0-0.255 plus a lane's 0-0.3 and a chain's 0-0.03).
const FMA_C: f64 = 0.1;
/// Workgroups of the FMA probe: 262 144 invocations fill the largest GPUs.
const FMA_GROUPS: u32 = 4096;
/// Workgroups of the FMA probe's sizing dispatch on CPU adapters: a multiple of 64 (what
/// [`scaled_groups`] keeps), one for each of up to 64 threads.
const FMA_CALIBRATE_GROUPS: u32 = 64;
/// Bytes each copy buffer holds where the limits allow: past any last-level cache.
const COPY_BYTES: u64 = 256 << 20;
/// Loads summed per invocation of the read probes: their writes stay under 2% of the bytes.
const READ_ROWS: u64 = 64;
/// Timed samples per probe (the median is kept) and the time each aims for.
const SAMPLES: usize = 5;
const SAMPLE_TARGET: Duration = Duration::from_millis(50);

/// Measured peaks of one adapter and driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// `cache::adapter_key` of the adapter measured.
    pub adapter: String,
    pub probe_version: u32,
    /// RFC 3339 time of the measurement.
    pub measured_at: String,
    pub fma_f32_gflops: Option<f64>,
    /// `None` where the adapter lacks `SHADER_F16`.
    pub fma_f16_gflops: Option<f64>,
    pub copy_gbps: Option<f64>,
    /// Which copy probe gave `copy_gbps`: `buffers` or `textures`.
    #[serde(default)]
    pub copy_via: String,
    /// Streaming-read bandwidth (bytes read, and the probe's few writes, per second).
    #[serde(default)]
    pub read_gbps: Option<f64>,
    /// Which read probe gave `read_gbps`: `buffers` or `textures`.
    #[serde(default)]
    pub read_via: String,
    /// Wall time the probes took, compilation included.
    pub probe_seconds: f64,
}

impl Peaks {
    /// The arithmetic ceiling for kernels storing `dtype`. f16 kernels accumulate in f32, so
    /// theirs is the higher of the f32 and f16 peaks (on lavapipe f16 arithmetic is emulated
    /// and slower than f32; on GPUs it is usually faster).
    pub fn gflops(&self, dtype: DType) -> Option<f64> {
        match dtype {
            DType::F32 => self.fma_f32_gflops,
            DType::F16 => match (self.fma_f16_gflops, self.fma_f32_gflops) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Sanity against the spec sheet: an FMA probe cannot beat the chip, so an f32 rate more
    /// than 5% above the matched accelerator's spec FP32 peak (`spec_tflops`; the 5% allows
    /// for boost clocks) means the driver folded the probe's arithmetic. Both FMA peaks (one
    /// probe design) are then dropped, leaving `pct_of_measured_flops` empty rather than
    /// wrong, and the note says why. Only f32 is checked: the catalog's f16 figure is the
    /// tensor-core peak, which no WGSL kernel reaches, so it bounds nothing here.
    pub fn drop_fma_beyond_spec(&mut self, accelerator: &str, spec_tflops: f64) -> Option<String> {
        let measured = self.fma_f32_gflops?;
        let spec = spec_tflops * 1000.0;
        if spec.is_nan() || spec <= 0.0 || measured <= 1.05 * spec {
            return None;
        }
        self.fma_f32_gflops = None;
        self.fma_f16_gflops = None;
        Some(format!(
            "the f32 FMA probe measured {measured:.0} GFLOP/s, {:.0}% of the {accelerator}'s spec FP32 peak ({spec_tflops} TFLOP/s); a probe cannot beat the chip, so the driver must have folded its arithmetic: the measured FMA peaks are left out and % of measured FLOP/s is empty (% of spec peak stands)",
            100.0 * measured / spec
        ))
    }

    /// The bandwidth ceiling of memory-bound rows and what gave it (`streaming read via
    /// textures`): the better of the streaming copy and the streaming read. A copy writes as
    /// much as it reads, so kernels that mostly read (a decode step streams its weights)
    /// outran it; on the 2-core lavapipe VM every decode matmul of a quick run did, by
    /// 1.1-1.5x.
    pub fn bandwidth(&self) -> Option<(f64, String)> {
        let copy = self
            .copy_gbps
            .map(|g| (g, "streaming copy", &self.copy_via));
        let read = self
            .read_gbps
            .map(|g| (g, "streaming read", &self.read_via));
        // The copy where the two tie.
        let (g, what, via) = [read, copy]
            .into_iter()
            .flatten()
            .max_by(|a, b| a.0.total_cmp(&b.0))?;
        let via = if via.is_empty() {
            String::new()
        } else {
            format!(" via {via}")
        };
        Some((g, format!("{what}{via}")))
    }

    /// One line for the terminal.
    pub fn describe(&self, cached: bool) -> String {
        let show = |v: Option<f64>, unit: &str| {
            v.map_or("not measured".to_string(), |v| format!("{v:.1} {unit}"))
        };
        let via = |v: &str| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        format!(
            "measured peaks: FMA f32 {}, f16 {}, copy {} via {}, read {} via {} ({})",
            show(self.fma_f32_gflops, "GFLOP/s"),
            show(self.fma_f16_gflops, "GFLOP/s"),
            show(self.copy_gbps, "GB/s"),
            via(&self.copy_via),
            show(self.read_gbps, "GB/s"),
            via(&self.read_via),
            if cached {
                format!("cached from {}", self.measured_at)
            } else {
                format!("probes took {:.1} s", self.probe_seconds)
            }
        )
    }
}

/// The cached peaks of `gpu`'s adapter, or freshly measured ones (then cached) when there are
/// none or `remeasure` is set. Returns the peaks and whether they came from the cache.
pub fn cached_or_measured(gpu: &Gpu, remeasure: bool, timeout: Duration) -> (Peaks, bool) {
    let key = crate::cache::adapter_key(&gpu.summary);
    let path = crate::cache::dir().join("peaks.json");
    let mut entries: Vec<Peaks> = crate::cache::load(&path);
    if !remeasure {
        if let Some(p) = entries
            .iter()
            .find(|p| p.adapter == key && p.probe_version == PROBE_VERSION)
        {
            return (p.clone(), true);
        }
    }
    let peaks = measure(gpu, timeout);
    entries.retain(|p| p.adapter != key);
    entries.push(peaks.clone());
    if let Err(e) = crate::cache::store(&path, &entries) {
        crate::progress::notice(&format!(
            "priceperf: warning: measured peaks not cached ({e})"
        ));
    }
    (peaks, false)
}

/// Run every probe. A probe that fails (compile, verification, device trouble) leaves its
/// peak `None` with a warning; the run goes on without that percentage.
pub fn measure(gpu: &Gpu, timeout: Duration) -> Peaks {
    let t0 = Instant::now();
    let warn = |what: &str, e: String| {
        crate::progress::notice(&format!("priceperf: warning: {what} probe: {e}"));
        None
    };
    let fma = |dtype: DType| match fma_gflops(gpu, dtype, timeout) {
        Ok(v) => Some(v),
        Err(e) => warn(&format!("FMA {dtype}"), e),
    };
    let fma_f32_gflops = fma(DType::F32);
    let fma_f16_gflops = if gpu.has_f16() { fma(DType::F16) } else { None };
    let (copy_gbps, copy_via) = match copy_gbps(gpu, timeout) {
        Ok((v, via)) => (Some(v), via.to_string()),
        Err(e) => (warn("copy", e), String::new()),
    };
    let (read_gbps, read_via) = match read_gbps(gpu, timeout) {
        Ok((v, via)) => (Some(v), via.to_string()),
        Err(e) => (warn("read", e), String::new()),
    };
    Peaks {
        adapter: crate::cache::adapter_key(&gpu.summary),
        probe_version: PROBE_VERSION,
        measured_at: chrono::Utc::now().to_rfc3339(),
        fma_f32_gflops,
        fma_f16_gflops,
        copy_gbps,
        copy_via,
        read_gbps,
        read_via,
        probe_seconds: t0.elapsed().as_secs_f64(),
    }
}

/// The machine's speed at the start and the end of a run: the f32 FMA probe, twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedCheck {
    pub start_gflops: f64,
    pub end_gflops: f64,
}

/// How far the two probes may differ before the run says its rows are not comparable.
/// Back to back on the 2-core lavapipe VM the probe repeated within about 10% (81.6-89.5
/// GFLOP/s), while the host's slow and fast states differed by about 1.6x (59 against 94
/// at the two ends of one 9-second run).
pub const SPEED_CHANGE_LIMIT: f64 = 0.2;

impl SpeedCheck {
    /// The f32 FMA probe once (the run's start or end), compile included (cached by then).
    pub fn probe(gpu: &Gpu, timeout: Duration) -> Result<f64, String> {
        fma_gflops(gpu, DType::F32, timeout)
    }

    /// The end's change over the start, as a fraction (-0.4: 40% slower at the end).
    pub fn change(&self) -> f64 {
        self.end_gflops / self.start_gflops - 1.0
    }

    /// Whether the change passes [`SPEED_CHANGE_LIMIT`] (or cannot be computed).
    pub fn changed(&self) -> bool {
        let change = self.change();
        change.abs() > SPEED_CHANGE_LIMIT || !change.is_finite()
    }

    /// A run note when the speed [`changed`](Self::changed), else `None`.
    pub fn note(&self) -> Option<String> {
        let change = self.change();
        self.changed().then(|| {
            format!(
                "the machine's speed changed during this run: the f32 FMA probe ran at {:.1} GFLOP/s when it started and {:.1} when it ended ({:+.0}%; a shared host, other load, clock changes), so rows measured at different times, and the token rates and prices built from them, are not comparable; rerun on an idle machine (the probe runs at the start and the end only, so a change that came and went is not seen here)",
                self.start_gflops,
                self.end_gflops,
                change * 100.0
            )
        })
    }
}

/// The FMA probe's WGSL for `dtype`.
pub fn fma_source(dtype: DType) -> String {
    let chains = FMA_CHAINS;
    let mut declare = String::new();
    let mut body = String::new();
    for a in 0..chains {
        declare.push_str(&format!(
            "    var a{a} = vec4<E>(s) + vec4<E>(E(0.0), E(0.1), E(0.2), E(0.3)) + vec4<E>(E({}));\n",
            a as f32 * 0.01
        ));
    }
    for _ in 0..FMA_UNROLL {
        for a in 0..chains {
            body.push_str(&format!("        a{a} = fma(a{a}, a{a}, c);\n"));
        }
    }
    let sum = (0..chains)
        .map(|a| format!("a{a}"))
        .collect::<Vec<_>>()
        .join(" + ");
    render(
        FMA,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("C", format!("{FMA_C:?}")),
            ("DECLARE", declare.trim_end().to_string()),
            ("ITERS", FMA_ITERS.to_string()),
            ("BODY", body.trim_end().to_string()),
            ("SUM", sum),
        ],
    )
}

fn fma_gflops(gpu: &Gpu, dtype: DType, timeout: Duration) -> Result<f64, String> {
    let pipeline = compile(
        gpu,
        &format!("peak fma {dtype}"),
        &fma_source(dtype),
        "main",
    )
    .map_err(|e| format!("{e:?}"))?;
    let max_invocations = FMA_GROUPS as u64 * 64;
    let out = crate::kernels::output_buffer(gpu, "peak fma out", DType::F32, max_invocations * 4);
    let bind_group = crate::kernels::bind(gpu, &pipeline, &[&out]);
    let program = |groups: u32| {
        Program::single(
            Dispatch::new(pipeline.clone(), bind_group.clone(), [groups, 1, 1]),
            out.clone(),
            DType::F32,
            groups as u64 * 64 * 4,
            vec![],
        )
    };
    // On CPU adapters, fewer workgroups where the full dispatch would be slow: the rate is
    // the same once every core is busy, and the probe stays short. Sized from a small
    // dispatch, compiled first so that its time is the kernel's (running the full dispatch
    // to size it took 0.9 s of f16 on the 2-core lavapipe VM). GPUs run the full dispatch in
    // well under a sample, and a small one would time mostly the submission.
    let groups = if gpu.summary.is_cpu() {
        crate::measure::prime(gpu, &program(FMA_CALIBRATE_GROUPS), timeout).map_err(trouble)?;
        let small_s = crate::measure::run(gpu, &program(FMA_CALIBRATE_GROUPS), timeout)
            .map_err(trouble)?
            .as_secs_f64();
        scaled_groups(
            FMA_GROUPS,
            small_s * f64::from(FMA_GROUPS / FMA_CALIBRATE_GROUPS),
        )
    } else {
        FMA_GROUPS
    };
    // Verified like every kernel, at the size that is timed: every chain ran to its fixed
    // point, so each output is CHAINS of them (a dropped or diverged chain is off by a
    // whole fixed point, a quarter of the sum, against the 1% allowed).
    let got = run_and_read(gpu, &program(groups), timeout).map_err(trouble)?;
    let want = FMA_CHAINS as f64 * fma_fixed_point();
    if let Some(i) = (0..got.len()).find(|&i| {
        let off = (got.get(i) - want).abs();
        off.is_nan() || off >= 0.01 * want
    }) {
        return Err(format!(
            "output {i} is {} where the chains sum to {want:.4}; not counted",
            got.get(i),
        ));
    }
    let flops = groups as f64 * 64.0 * (FMA_ITERS * FMA_UNROLL * FMA_CHAINS) as f64 * 8.0;
    let seconds = median_seconds(gpu, &program(groups), timeout, None)?;
    Ok(flops / seconds / 1e9)
}

/// Where every chain of the FMA probe ends: p = p² + C.
fn fma_fixed_point() -> f64 {
    (1.0 - (1.0 - 4.0 * FMA_C).sqrt()) / 2.0
}

/// `full` workgroups scaled down so one execution takes about [`SAMPLE_TARGET`] when
/// `full_s` seconds is longer, keeping a multiple of 64 workgroups.
fn scaled_groups(full: u32, full_s: f64) -> u32 {
    let target = SAMPLE_TARGET.as_secs_f64();
    if full_s <= target {
        return full;
    }
    (((full as f64 * target / full_s) as u32) / 64 * 64).clamp(64, full)
}

/// The streaming-copy bandwidth: the better of a storage-buffer copy and a storage-texture
/// copy (on lavapipe a per-lane buffer access is a scalar loop while texel access is
/// vectorised, so the two differ several times; on GPUs they are close).
fn copy_gbps(gpu: &Gpu, timeout: Duration) -> Result<(f64, &'static str), String> {
    let texture = texture_copy_gbps(gpu, timeout);
    let beat = texture.as_ref().ok().copied();
    better_of("copy", buffer_copy_gbps(gpu, timeout, beat), texture)
}

/// The streaming-read bandwidth, the better of a storage-buffer and a storage-texture read,
/// for the same reason as [`copy_gbps`].
fn read_gbps(gpu: &Gpu, timeout: Duration) -> Result<(f64, &'static str), String> {
    let texture = texture_read_gbps(gpu, timeout);
    let beat = texture.as_ref().ok().copied();
    better_of("read", buffer_read_gbps(gpu, timeout, beat), texture)
}

/// A buffer probe whose first timed execution is this many times slower than the texture
/// probe's median (in GB/s) is almost surely not the better of the two, and is not timed
/// further: its rate is that one execution's, used only to pick the better. On lavapipe
/// the buffer probes ran 1.3-3 s of a fresh run's peaks, several times behind the texture
/// ones; on GPUs the two are close and both are timed in full.
const PROBE_CUTOFF: f64 = 3.0;

/// The time past which a buffer probe moving `bytes` cannot beat `beat` GB/s
/// ([`PROBE_CUTOFF`]).
fn give_up_after(bytes: f64, beat: Option<f64>) -> Option<f64> {
    beat.filter(|g| *g > 0.0)
        .map(|gbps| PROBE_CUTOFF * bytes / (gbps * 1e9))
}

/// The faster of a probe through buffers and through textures, named; one that failed is
/// noted and the other kept.
fn better_of(
    probe: &str,
    buffer: Result<f64, String>,
    texture: Result<f64, String>,
) -> Result<(f64, &'static str), String> {
    match (
        buffer.map(|v| (v, "buffers")),
        texture.map(|v| (v, "textures")),
    ) {
        (Ok(a), Ok(b)) => Ok(if a.0 >= b.0 { a } else { b }),
        (Ok(a), Err(e)) | (Err(e), Ok(a)) => {
            crate::progress::notice(&format!("priceperf: note: one {probe} probe failed: {e}"));
            Ok(a)
        }
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

/// Bytes per copy buffer for this adapter: [`COPY_BYTES`] on GPUs, a quarter of it on CPU
/// adapters (still past their last-level cache, and four times quicker to probe), within
/// the binding limits.
fn copy_bytes(gpu: &Gpu) -> u64 {
    let s = &gpu.summary;
    let want = if s.is_cpu() {
        COPY_BYTES / 4
    } else {
        COPY_BYTES
    };
    want.min(s.max_storage_binding_bytes)
        .min(s.max_buffer_bytes)
        / (256 * 16)
        * (256 * 16)
}

fn buffer_copy_gbps(gpu: &Gpu, timeout: Duration, beat: Option<f64>) -> Result<f64, String> {
    let bytes = copy_bytes(gpu);
    if bytes == 0 {
        return Err("the adapter's storage binding limit is below 4 KiB".into());
    }
    let seconds = buffer_probe(
        gpu,
        "peak copy",
        COPY,
        [bytes / 16, bytes / 16],
        |got, src| check_copied(got, bytemuck::cast_slice(src)),
        timeout,
        give_up_after(2.0 * bytes as f64, beat),
    )
    .map_err(|e| format!("buffer copy: {e}"))?;
    Ok(2.0 * bytes as f64 / seconds / 1e9)
}

/// The copy as texel loads from a read-only storage texture and stores to a write-only one
/// ([`texture_probe`]).
fn texture_copy_gbps(gpu: &Gpu, timeout: Duration) -> Result<f64, String> {
    let bytes = copy_bytes(gpu);
    let max = gpu.limits().max_texture_dimension_2d;
    let width = 2048u32.min(max);
    let height = (bytes / (16 * width as u64)) as u32;
    if height == 0 || height > max {
        return Err(format!(
            "a {} MiB texture does not fit the adapter's texture limits",
            bytes >> 20
        ));
    }
    let bytes = 16 * width as u64 * height as u64;
    let seconds = texture_probe(
        gpu,
        "peak texture copy",
        COPY_TEXTURE,
        [width, height, height],
        [width / 64, height, 1],
        |got, src| check_copied(got, bytemuck::cast_slice(src)),
        timeout,
    )
    .map_err(|e| format!("texture copy: {e}"))?;
    Ok(2.0 * bytes as f64 / seconds / 1e9)
}

fn buffer_read_gbps(gpu: &Gpu, timeout: Duration, beat: Option<f64>) -> Result<f64, String> {
    let bytes = copy_bytes(gpu) / (16 * READ_ROWS) * (16 * READ_ROWS);
    let n = bytes / 16 / READ_ROWS;
    if n == 0 {
        return Err("the adapter's storage binding limit is below 4 KiB".into());
    }
    let source = render(READ, &[("ROWS", READ_ROWS.to_string())]);
    let seconds = buffer_probe(
        gpu,
        "peak read",
        &source,
        [bytes / 16, n],
        |got, _| check_sums(got, n),
        timeout,
        give_up_after((bytes + 16 * n) as f64, beat),
    )
    .map_err(|e| format!("buffer read: {e}"))?;
    Ok((bytes + 16 * n) as f64 / seconds / 1e9)
}

/// What the buffer probes share: a `src` storage buffer of `src_vec4s` `vec4<u32>`s, each u32
/// holding its own index (distinct values, so a wrong index shows), read by the kernel
/// `source` (bindings: `src` read, `dst` read_write) into `dst_vec4s` `vec4<u32>`s, one
/// invocation each in workgroups of 256 (flattened over x and y past the per-dimension
/// limit). It runs once, `dst` is read back and `check`ed (given those bytes and the source
/// data), and then it is timed: returns seconds per execution ([`median_seconds`], which
/// stops at one execution that took longer than `give_up` seconds).
fn buffer_probe(
    gpu: &Gpu,
    label: &str,
    source: &str,
    [src_vec4s, dst_vec4s]: [u64; 2],
    check: impl Fn(&[u8], &[u32]) -> Result<(), String>,
    timeout: Duration,
    give_up: Option<f64>,
) -> Result<f64, String> {
    let pipeline = compile(gpu, label, source, "main").map_err(|e| format!("{e:?}"))?;
    let src_data: Vec<u32> = (0..4 * src_vec4s).map(|k| k as u32).collect();
    let src = storage_buffer(gpu, "peak src", bytemuck::cast_slice(&src_data), false);
    let dst = zeroed_buffer(gpu, "peak dst", 16 * dst_vec4s, true);
    let bind_group = crate::kernels::bind(gpu, &pipeline, &[&src, &dst]);
    let groups = dst_vec4s.div_ceil(256) as u32;
    let x = groups.min(32768);
    let program = Program::single(
        Dispatch::new(pipeline, bind_group, [x, groups.div_ceil(x), 1]),
        dst,
        DType::F32,
        4 * dst_vec4s,
        vec![src],
    );
    let got = run_and_read(gpu, &program, timeout).map_err(trouble)?;
    check(got.bytes(), &src_data)?;
    median_seconds(gpu, &program, timeout, give_up)
}

/// The read as texel loads from a read-only storage texture, sums stored to a write-only
/// one ([`texture_probe`]).
fn texture_read_gbps(gpu: &Gpu, timeout: Duration) -> Result<f64, String> {
    let bytes = copy_bytes(gpu);
    let max = gpu.limits().max_texture_dimension_2d;
    let width = 2048u32.min(max) / 64 * 64;
    let rows = READ_ROWS as u32;
    let height = (bytes / (16 * width.max(1) as u64)).min(max as u64) as u32 / rows * rows;
    if width == 0 || height == 0 {
        return Err(format!(
            "a {} MiB texture does not fit the adapter's texture limits",
            bytes >> 20
        ));
    }
    let sum_rows = height / rows;
    let n = width as u64 * sum_rows as u64;
    let source = render(READ_TEXTURE, &[("ROWS", READ_ROWS.to_string())]);
    let seconds = texture_probe(
        gpu,
        "peak texture read",
        &source,
        [width, height, sum_rows],
        [width / 64, sum_rows, 1],
        |got, _| check_sums(got, n),
        timeout,
    )
    .map_err(|e| format!("texture read: {e}"))?;
    Ok(16.0 * (width as u64 * height as u64 + n) as f64 / seconds / 1e9)
}

/// What the texture probes share: an rgba32uint `src` texture of `width` x `height` texels,
/// each holding its own u32 component indices, read by the kernel `source` (bindings: `src`
/// read, `dst` write) into a `dst` texture of `width` x `dst_height`, dispatched as `groups`.
/// It runs once, `dst` is copied into a buffer and `check`ed (given those bytes and the
/// source data), and then it is timed: returns seconds per execution ([`median_seconds`]).
fn texture_probe(
    gpu: &Gpu,
    label: &str,
    source: &str,
    [width, height, dst_height]: [u32; 3],
    groups: [u32; 3],
    check: impl Fn(&[u8], &[u32]) -> Result<(), String>,
    timeout: Duration,
) -> Result<f64, String> {
    let texture = |label: &str, height: u32, usage: wgpu::TextureUsages| {
        gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Uint,
            usage,
            view_formats: &[],
        })
    };
    let layout = |rows: u32| wgpu::TexelCopyBufferLayout {
        offset: 0,
        bytes_per_row: Some(16 * width),
        rows_per_image: Some(rows),
    };
    let src = texture(
        "peak src texture",
        height,
        wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
    );
    let dst = texture(
        "peak dst texture",
        dst_height,
        wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_SRC,
    );
    let src_data: Vec<u32> = (0..4 * width as u64 * height as u64)
        .map(|k| k as u32)
        .collect();
    gpu.queue.write_texture(
        src.as_image_copy(),
        bytemuck::cast_slice(&src_data),
        layout(height),
        src.size(),
    );
    let pipeline = compile(gpu, label, source, "main").map_err(|e| format!("{e:?}"))?;
    let (src_view, dst_view) = (
        src.create_view(&Default::default()),
        dst.create_view(&Default::default()),
    );
    let bind_group = bind_resources(
        gpu,
        &pipeline,
        Some(label),
        vec![
            wgpu::BindingResource::TextureView(&src_view),
            wgpu::BindingResource::TextureView(&dst_view),
        ],
    );
    let dst_bytes = 16 * width as u64 * dst_height as u64;
    let readback = zeroed_buffer(gpu, "peak readback", dst_bytes, true);
    let program = Program::single(
        Dispatch::new(pipeline, bind_group, groups),
        readback.clone(),
        DType::F32,
        dst_bytes / 4,
        vec![],
    );
    // Run once, then bring the texture into the buffer to check it.
    crate::measure::run(gpu, &program, timeout).map_err(trouble)?;
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_texture_to_buffer(
        dst.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: layout(dst_height),
        },
        dst.size(),
    );
    crate::measure::submit_wait(gpu, encoder, timeout).map_err(trouble)?;
    let got = crate::measure::read_output(gpu, &program, timeout).map_err(trouble)?;
    check(got.bytes(), &src_data)?;
    median_seconds(gpu, &program, timeout, None)
}

/// Check every sum of a read probe: with the source holding its own u32 index k at each
/// component, sum i's component c is Σ_{j < ROWS} 4·(j·n + i) + c, wrapping, which is
/// 4n·ROWS(ROWS-1)/2 + ROWS·(4i + c) mod 2³². (The texture probe's texel (x, j·R + r) is
/// index j·(R·width) + (r·width + x), so the same form holds with n = R·width.)
fn check_sums(got: &[u8], n: u64) -> Result<(), String> {
    let got: &[u32] = bytemuck::cast_slice(got);
    let base = 4 * n * READ_ROWS * (READ_ROWS - 1) / 2;
    for (k, &g) in got.iter().enumerate().take(4 * n as usize) {
        let want = (base + READ_ROWS * k as u64) as u32;
        if g != want {
            return Err(format!(
                "sum {} component {} is {g}, not {want}; not counted",
                k / 4,
                k % 4
            ));
        }
    }
    if got.len() < 4 * n as usize {
        return Err(format!("{} of {} sums came back", got.len() / 4, n));
    }
    Ok(())
}

/// Compare a copy's output bytes with its source at spread-out bytes.
fn check_copied(got: &[u8], want: &[u8]) -> Result<(), String> {
    if let Some(i) = (0..want.len())
        .step_by(4093)
        .find(|&i| got.get(i) != Some(&want[i]))
    {
        return Err(format!(
            "byte {i} of the copy is {:?}, the source's is {}; not counted",
            got.get(i),
            want[i]
        ));
    }
    Ok(())
}

/// Median seconds per execution over [`SAMPLES`] samples, each of enough executions to last
/// about [`SAMPLE_TARGET`], after one warm-up sample on GPUs; or the first single
/// execution's seconds when that took longer than `give_up`.
fn median_seconds(
    gpu: &Gpu,
    program: &Program,
    timeout: Duration,
    give_up: Option<f64>,
) -> Result<f64, String> {
    let timer = Timer::new(gpu, timeout);
    let one = timer.time(gpu, program, 1).map_err(trouble)?.as_secs_f64();
    if give_up.is_some_and(|limit| one > limit) {
        return Ok(one);
    }
    // The nearest whole number of executions: rounding up had made lavapipe's samples
    // 52-74 ms long (one execution of the copy probe 24 ms: three), for no steadier medians.
    let iters = ((SAMPLE_TARGET.as_secs_f64() / one.max(1e-9)).round() as u64).clamp(1, 10_000);
    // A GPU idle while the probe was set up and checked runs at lowered clocks for a while
    // (`crate::tuning::GPU_WARM_UP`); a CPU adapter runs on host cores and is not warmed, as
    // in the search. On the 2-core lavapipe VM four fresh peak measurements each way read
    // the same rates (FMA f32 111-124 GFLOP/s, copy 8.5-9.2 GB/s) and took 3.2-3.5 s
    // against 3.5-4.0 s.
    if !gpu.summary.is_cpu() {
        timer.time(gpu, program, iters).map_err(trouble)?;
    }
    let mut per_iter: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            timer
                .time(gpu, program, iters)
                .map(|d| d.as_secs_f64() / iters as f64)
                .map_err(trouble)
        })
        .collect::<Result<_, _>>()?;
    per_iter.sort_by(f64::total_cmp);
    let median = per_iter[SAMPLES / 2];
    if median > 0.0 && median.is_finite() {
        Ok(median)
    } else {
        Err(format!("the timer measured {median} s per execution"))
    }
}

fn trouble(t: DeviceTrouble) -> String {
    format!("{t:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_speed_change_past_the_limit_is_noted() {
        let check = |start, end| SpeedCheck {
            start_gflops: start,
            end_gflops: end,
        };
        assert!(check(88.5, 85.0).note().is_none(), "4% is noise");
        assert!(
            check(88.5, 72.0).note().is_none(),
            "19% is within the limit"
        );
        let slower = check(88.5, 52.0).note().unwrap();
        assert!(
            slower.contains("88.5 GFLOP/s when it started and 52.0 when it ended (-41%"),
            "{slower}"
        );
        let faster = check(52.0, 88.5).note().unwrap();
        assert!(faster.contains("(+70%"), "{faster}");
        assert!(
            check(0.0, 50.0).note().is_some(),
            "a broken start is not hidden"
        );
    }

    #[test]
    fn fma_probe_source_has_every_chain_unrolled() {
        let src = fma_source(DType::F32);
        assert_eq!(
            src.matches("= fma(").count() as u32,
            FMA_CHAINS * FMA_UNROLL,
            "the FLOP count assumes CHAINS x UNROLL fma per iteration"
        );
        // Each step squares its own chain: no constant multiplier a compiler could fold.
        // Every lane of every chain starts from the invocation's `s`: a lane that started
        // from constants would be folded whole at compile time.
        assert_eq!(
            src.matches("= vec4<E>(s) + ").count() as u32,
            FMA_CHAINS,
            "{src}"
        );
        assert_eq!(
            src.matches("a0 = fma(a0, a0, c);").count() as u32,
            FMA_UNROLL
        );
        assert!(fma_source(DType::F16).contains("\nenable f16;"));
    }

    /// The host's check expects every chain at its fixed point: from each start the shader
    /// uses, ITERS · UNROLL steps get there, in f32 and at f16's precision alike.
    #[test]
    fn fma_probe_chains_reach_the_fixed_point() {
        let p = fma_fixed_point();
        assert!((p - 0.1127).abs() < 1e-4, "{p}");
        for start in [0.1f32, 0.35, 0.6] {
            let mut a = start;
            for _ in 0..FMA_ITERS * FMA_UNROLL {
                a = a.mul_add(a, FMA_C as f32);
                // Coarser than f16 near the fixed point (f16 keeps 11 significant bits,
                // 2⁻¹⁴ apart at 0.11; this rounds to 2⁻¹¹).
                a = (a * 2048.0).round() / 2048.0;
            }
            assert!((a as f64 - p).abs() < 1e-3, "{start} -> {a}");
        }
    }

    #[test]
    fn an_fma_peak_above_the_spec_sheet_is_dropped() {
        let mut p = Peaks {
            adapter: "x".into(),
            probe_version: PROBE_VERSION,
            measured_at: String::new(),
            fma_f32_gflops: Some(184_164.4),
            fma_f16_gflops: Some(246_376.2),
            copy_gbps: Some(4198.1),
            copy_via: "buffers".into(),
            read_gbps: None,
            read_via: String::new(),
            probe_seconds: 1.0,
        };
        let mut fine = p.clone();
        fine.fma_f32_gflops = Some(60_000.0);
        assert_eq!(fine.drop_fma_beyond_spec("H200", 66.9), None);
        assert_eq!(fine.fma_f32_gflops, Some(60_000.0));
        let note = p.drop_fma_beyond_spec("H200", 66.9).unwrap();
        assert!(note.contains("184164 GFLOP/s, 275%"), "{note}");
        assert_eq!((p.gflops(DType::F32), p.gflops(DType::F16)), (None, None));
        assert_eq!(p.copy_gbps, Some(4198.1), "the copy probe stands");
    }

    #[test]
    fn f16_falls_back_to_the_f32_peak() {
        let p = Peaks {
            adapter: "x".into(),
            probe_version: PROBE_VERSION,
            measured_at: String::new(),
            fma_f32_gflops: Some(10.0),
            fma_f16_gflops: None,
            copy_gbps: Some(5.0),
            copy_via: "buffers".into(),
            read_gbps: None,
            read_via: String::new(),
            probe_seconds: 1.0,
        };
        assert_eq!(p.gflops(DType::F16), Some(10.0));
        let slow_f16 = Peaks {
            fma_f16_gflops: Some(2.0),
            ..p.clone()
        };
        assert_eq!(
            slow_f16.gflops(DType::F16),
            Some(10.0),
            "f16 kernels accumulate in f32"
        );
        assert!(p.describe(true).contains("cached"));
    }

    /// A buffer probe stops after one execution only when that one cannot come within
    /// PROBE_CUTOFF of the texture probe, and is timed in full when there is nothing to beat.
    #[test]
    fn a_buffer_probe_gives_up_only_when_it_cannot_win() {
        // 128 MB moved, the texture probe at 4 GB/s (32 ms): past 96 ms it cannot win.
        let limit = give_up_after(128e6, Some(4.0)).unwrap();
        assert!((limit - 0.096).abs() < 1e-12, "{limit}");
        assert_eq!(give_up_after(128e6, None), None);
        assert_eq!(give_up_after(128e6, Some(0.0)), None);
    }

    /// The bandwidth ceiling is the better of the copy and the read probe, named; either
    /// alone stands in for both.
    #[test]
    fn bandwidth_is_the_better_of_copy_and_read() {
        let p = |copy: Option<f64>, read: Option<f64>| Peaks {
            adapter: "x".into(),
            probe_version: PROBE_VERSION,
            measured_at: String::new(),
            fma_f32_gflops: None,
            fma_f16_gflops: None,
            copy_gbps: copy,
            copy_via: "textures".into(),
            read_gbps: read,
            read_via: "buffers".into(),
            probe_seconds: 1.0,
        };
        let bw = |copy, read| p(copy, read).bandwidth();
        assert_eq!(
            bw(Some(4.2), Some(6.5)),
            Some((6.5, "streaming read via buffers".to_string()))
        );
        assert_eq!(
            bw(Some(4.2), Some(3.0)),
            Some((4.2, "streaming copy via textures".to_string()))
        );
        assert_eq!(bw(None, Some(3.0)).unwrap().0, 3.0);
        assert_eq!(bw(Some(4.2), None).unwrap().0, 4.2);
        assert_eq!(bw(None, None), None);
        let line = p(Some(4.2), Some(6.5)).describe(false);
        assert!(
            line.contains("copy 4.2 GB/s via textures, read 6.5 GB/s via buffers"),
            "{line}"
        );
    }

    /// The read probes' check: the closed form matches a direct sum, and one wrong
    /// component fails.
    #[test]
    fn read_probe_sums_are_checked_exactly() {
        let n = 5u64;
        let src: Vec<u32> = (0..4 * n * READ_ROWS).map(|k| k as u32).collect();
        let sums: Vec<u32> = (0..4 * n as usize)
            .map(|k| {
                let (i, c) = (k / 4, k % 4);
                (0..READ_ROWS as usize)
                    .map(|j| src[(j * n as usize + i) * 4 + c])
                    .fold(0u32, u32::wrapping_add)
            })
            .collect();
        assert_eq!(check_sums(bytemuck::cast_slice(&sums), n), Ok(()));
        let mut wrong = sums.clone();
        wrong[13] += 1;
        let e = check_sums(bytemuck::cast_slice(&wrong), n).unwrap_err();
        assert!(e.contains("sum 3 component 1"), "{e}");
        assert!(check_sums(bytemuck::cast_slice(&sums[..8]), n).is_err());
    }
}
