//! Synthetic result folders for the compare, merge and export tests: run.json, kernels.csv,
//! samples.jsonl and (optionally) tokens.csv and costs.csv, written through priceperf's
//! own writers so they look exactly like a real run's. Also the spawn helper every test that
//! runs the binary uses ([`isolated`]).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use priceperf::gpu::AdapterSummary;
use priceperf::history;
use priceperf::measure::{Stats, TimingMethod};
use priceperf::results::{self, KernelRow, RunInfo, Status};
use priceperf::shape::DType;

pub const LAVAPIPE: &str = "llvmpipe (LLVM 15.0.6, 256 bits)";
/// A GPU adapter: its timing is gated by default (lavapipe's is not).
pub const GPU: &str = "NVIDIA L4";

pub fn adapter(name: &str) -> AdapterSummary {
    AdapterSummary {
        name: name.into(),
        backend: "vulkan".into(),
        device_type: if name.contains("llvmpipe") {
            "cpu"
        } else {
            "discrete"
        }
        .into(),
        driver: "llvmpipe".into(),
        driver_info: "Mesa 22.3.6 (LLVM 15.0.6)".into(),
        vendor_id: 0x10005,
        device_id: 0,
        timestamps: true,
        f16: true,
        subgroups: true,
        subgroup_min_size: 8,
        subgroup_max_size: 8,
        max_workgroup_storage_bytes: 32768,
        max_invocations_per_workgroup: 1024,
        max_workgroups_per_dimension: 65535,
        max_storage_binding_bytes: 134217728,
        max_buffer_bytes: 2147483647,
    }
}

pub fn info(run_id: &str, host: &str, adapter_name: &str) -> RunInfo {
    RunInfo {
        schema_version: results::SCHEMA_VERSION,
        run_id: run_id.into(),
        started: "2025-01-01T00:00:00+00:00".into(),
        finished: Some("2025-01-01T00:05:00+00:00".into()),
        interrupted: false,
        git_commit: Some("abc123".into()),
        host: host.into(),
        os: "linux x86_64".into(),
        cpu_threads: 2,
        priceperf_version: "0.1.0".into(),
        wgpu_version: "30".into(),
        adapter: adapter(adapter_name),
        settings: serde_json::json!({ "suite": "quick" }),
        peaks: None,
        speed_check: None,
        time: None,
    }
}

/// Deterministic noise in [-1, 1].
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// `n` samples around `center` ns, spread +-`noise` (a fraction).
pub fn samples(center: f64, noise: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|_| center * (1.0 + noise * rng.next()))
        .collect()
}

/// A measured, verified kernel row whose median and interval come from `samples`.
pub fn measured(m: u32, variant: &str, adapter_name: &str, samples: &[f64]) -> KernelRow {
    let s = Stats::of(samples).expect("samples");
    let mut r = blank(m, variant, adapter_name);
    r.timing = Some(TimingMethod::Device);
    r.samples = Some(s.samples as u64);
    r.verified = true;
    r.max_rel_err = Some(1e-6);
    r.status = Status::Ok;
    r.with_time(s.median_ns, s.ci_low_ns, s.ci_high_ns)
}

/// A row of matmul m x m x m that was neither verified nor timed (status skipped).
pub fn blank(m: u32, variant: &str, adapter_name: &str) -> KernelRow {
    let shape = format!("m={m},n={m},k={m}");
    KernelRow {
        benchmark: format!("matmul/f32/{shape}"),
        kernel: "matmul".into(),
        variant: variant.into(),
        dtype: DType::F32,
        shape,
        adapter: adapter_name.into(),
        backend: "vulkan".into(),
        driver: "llvmpipe Mesa 22.3.6 (LLVM 15.0.6)".into(),
        timing: None,
        samples: None,
        median_ns: None,
        ci_low_ns: None,
        ci_high_ns: None,
        flops: 2 * (m as u64).pow(3),
        bytes: 12 * (m as u64).pow(2),
        gflops: None,
        gbps: None,
        pct_of_peak: None,
        verified: false,
        max_rel_err: None,
        status: Status::Skipped,
        chosen: false,
        note: String::new(),
        pct_of_measured_flops: None,
        pct_of_measured_bw: None,
    }
}

/// A row that failed verification.
pub fn failed(m: u32, variant: &str, adapter_name: &str) -> KernelRow {
    let mut r = blank(m, variant, adapter_name);
    r.status = Status::Failed;
    r.max_rel_err = Some(0.5);
    r.note = "verification: 12 of 4096 elements differ (worst 0.5 at [3, 7])".into();
    r
}

/// Write a run folder; `samples` are stored for rows that have an entry.
pub fn write_run(dir: &Path, info: &RunInfo, rows: &[KernelRow], samples: &[(usize, Vec<f64>)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(info).unwrap(),
    )
    .unwrap();
    results::append_rows(&dir.join("kernels.csv"), rows).unwrap();
    let with: Vec<(KernelRow, Vec<f64>)> = samples
        .iter()
        .map(|(i, s)| (rows[*i].clone(), s.clone()))
        .collect();
    history::append_samples(dir, &with).unwrap();
}

pub const TOKENS_CSV: &str = "\
model,phase,batch,prompt_len,context_len,tokens_per_s,tokens_per_s_low,tokens_per_s_high,basis
llama-3.1-8b,prefill,1,1000,,5234.5,5100.25,5301,measured
llama-3.1-8b,decode,1,,1000,41.5,40.9,42.25,measured
";

pub const COSTS_CSV: &str = "\
model,phase,accelerator,provider,instance,region,tier,usd_per_hour,accelerators_per_instance,usd_per_accelerator_hour,tokens_per_s,usd_per_mtok,usd_per_mtok_low,usd_per_mtok_high,price_as_of,basis
llama-3.1-8b,decode,NVIDIA A10G,aws,g5.xlarge,us-east-1,on_demand,1.006,1,1.006,41.5,6.734,6.614,6.833,2025-01-15,measured
llama-3.1-8b,decode,NVIDIA A10G,'=evil,'@SUM(A1),'-eu,spot,0.4,1,0.4,41.5,2.677,2.63,2.717,,measured
";

/// Add tokens.csv and costs.csv (the layout DESIGN.md gives) to a run folder.
pub fn add_token_and_cost_tables(dir: &Path) {
    std::fs::write(dir.join("tokens.csv"), TOKENS_CSV).unwrap();
    std::fs::write(dir.join("costs.csv"), COSTS_CSV).unwrap();
}

/// Run the priceperf binary; returns (exit code, stdout, stderr).
pub fn priceperf(args: &[&str]) -> (i32, String, String) {
    let out = isolated(&mut Command::new(env!("CARGO_BIN_EXE_priceperf")))
        .args(args)
        .output()
        .expect("run priceperf");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn tmp() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().to_path_buf();
    (t, p)
}

/// A cache folder of its own for every spawned run, so no run sees another's tuning choices
/// (tests/tuning in cli.rs tests the cache on purpose), and no peak probes (seconds each).
pub fn isolated(c: &mut Command) -> &mut Command {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    c.env(
        "PRICEPERF_CACHE_DIR",
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cache-{}-{n}", std::process::id())),
    )
    .env("PRICEPERF_PEAKS", "skip")
}
