//! Timing kernels: GPU timestamp queries where the adapter has them, wall clock around
//! submit-and-wait otherwise; per-sample statistics (median and a bootstrap confidence
//! interval). The criterion glue that decides how many samples and iterations to take is in
//! [`criterion_glue`].

pub mod criterion_glue;
pub mod peaks;

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::gpu::Gpu;
use crate::kernels::{HostTensor, Program};

/// How a row's time was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingMethod {
    /// GPU timestamps at the start and end of the compute pass.
    Device,
    /// Host clock around submit and a full device wait.
    Wall,
}

impl fmt::Display for TimingMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimingMethod::Device => "device",
            TimingMethod::Wall => "wall",
        })
    }
}

/// Why running a program on the device did not give a result.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceTrouble {
    /// The work did not finish within the limit.
    Timeout(String),
    /// The device was lost or a submission failed.
    Lost(String),
}

impl fmt::Display for DeviceTrouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceTrouble::Timeout(m) | DeviceTrouble::Lost(m) => f.write_str(m),
        }
    }
}

/// Dispatches per submission: keeps command buffers small and a hang detectable early.
/// Also the most one timing of the screen, the final or the warm-up runs ([`iters_for`]).
const MAX_ITERS_PER_SUBMIT: u64 = 4096;

/// A timing of one dispatch carries the submission's fixed cost (a submit and a full wait,
/// 0.1-0.2 ms on lavapipe) that a timing of many dispatches spreads thin, so it says how a
/// kernel compares with amortised timings only from about this long. Shorter ones cut a
/// screen off at [`crate::tuning::SCREEN_CUTOFF`] unfairly: in three fresh quick runs on
/// lavapipe, 51 of 83 screens stopped after one timing stopped on one under 1 ms (one-row
/// layernorm variants at 0.13-0.24 ms against the fastest's amortised 0.035 ms, say).
pub const SINGLE_TIMING_MIN: Duration = Duration::from_millis(1);

/// Whether a screen stops at its first timing, one dispatch of `once`: past `cutoff_ns`,
/// and long enough to tell ([`SINGLE_TIMING_MIN`]).
fn cut_at_once(once: Duration, cutoff_ns: Option<f64>) -> bool {
    once >= SINGLE_TIMING_MIN && cutoff_ns.is_some_and(|c| once.as_nanos() as f64 > c)
}

/// Iterations that take about `sample` at `per_iter_s` seconds each: one at least, at most
/// `MAX_ITERS_PER_SUBMIT` (the screen's, the final's and the warm-up's timings).
pub(crate) fn iters_for(sample: Duration, per_iter_s: f64) -> u64 {
    ((sample.as_secs_f64() / per_iter_s.max(1e-9)).ceil() as u64).clamp(1, MAX_ITERS_PER_SUBMIT)
}

/// Submit `encoder`'s work and wait for it, at most `timeout`.
pub fn submit_wait(
    gpu: &Gpu,
    encoder: wgpu::CommandEncoder,
    timeout: Duration,
) -> Result<(), DeviceTrouble> {
    let index = gpu.queue.submit([encoder.finish()]);
    let result = gpu.device.poll(wgpu::PollType::Wait {
        submission_index: Some(index),
        timeout: Some(timeout),
    });
    if gpu.is_lost() {
        return Err(DeviceTrouble::Lost(
            "the device was lost during the submission".into(),
        ));
    }
    let errors = gpu.take_errors();
    if !errors.is_empty() {
        return Err(DeviceTrouble::Lost(errors.join("; ")));
    }
    match result {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(DeviceTrouble::Timeout(format!(
            "the GPU did not finish within {:.0} s",
            timeout.as_secs_f64()
        ))),
        Err(e) => Err(DeviceTrouble::Lost(e.to_string())),
    }
}

/// Copy a buffer back to the host.
pub fn read_buffer(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    bytes: u64,
    timeout: Duration,
) -> Result<Vec<u8>, DeviceTrouble> {
    let size = bytes.next_multiple_of(4).max(4);
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    submit_wait(gpu, encoder, timeout)?;
    let slice = staging.slice(..);
    slice.map_async(wgpu::MapMode::Read, |_| {});
    gpu.device
        .poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(timeout),
        })
        .map_err(|e| DeviceTrouble::Lost(format!("mapping the readback buffer: {e}")))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| DeviceTrouble::Lost(format!("mapping the readback buffer: {e}")))?;
    let out = view[..bytes as usize].to_vec();
    drop(view);
    staging.unmap();
    Ok(out)
}

/// Run the program once and read its output.
pub fn run_and_read(
    gpu: &Gpu,
    program: &Program,
    timeout: Duration,
) -> Result<HostTensor, DeviceTrouble> {
    run_timed_and_read(gpu, program, timeout).map(|(output, _)| output)
}

/// Dispatch every pipeline of the program with no workgroups and wait: the driver's
/// first-dispatch work ([`Program::encode_empty`]) without running the kernel.
pub fn prime(gpu: &Gpu, program: &Program, timeout: Duration) -> Result<(), DeviceTrouble> {
    submit_pass(gpu, timeout, |pass| program.encode_empty(pass)).map(drop)
}

/// Run the program once and read its output, with the wall time from submit to the end of
/// the device wait (the readback not included): what a single-iteration wall-clock timing
/// would measure, plus whatever the driver does on a program's first dispatch (see
/// [`prime`]).
pub fn run_timed_and_read(
    gpu: &Gpu,
    program: &Program,
    timeout: Duration,
) -> Result<(HostTensor, Duration), DeviceTrouble> {
    let ran = run(gpu, program, timeout)?;
    Ok((read_output(gpu, program, timeout)?, ran))
}

/// Run the program once and wait, reading nothing back: the wall time from submit to the
/// end of the wait.
pub fn run(gpu: &Gpu, program: &Program, timeout: Duration) -> Result<Duration, DeviceTrouble> {
    submit_pass(gpu, timeout, |pass| program.encode(gpu, pass))
}

/// The program's output buffer as it is now.
pub fn read_output(
    gpu: &Gpu,
    program: &Program,
    timeout: Duration,
) -> Result<HostTensor, DeviceTrouble> {
    let bytes = program.output_len * program.output_dtype.size();
    let raw = read_buffer(gpu, &program.output, bytes, timeout)?;
    Ok(HostTensor::from_bytes(program.output_dtype, &raw))
}

/// Record one compute pass with `encode`, submit it and wait: the wall time from submit to
/// the end of the wait.
fn submit_pass(
    gpu: &Gpu,
    timeout: Duration,
    encode: impl FnOnce(&mut wgpu::ComputePass<'_>),
) -> Result<Duration, DeviceTrouble> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        encode(&mut pass);
    }
    let start = Instant::now();
    submit_wait(gpu, encoder, timeout)?;
    Ok(start.elapsed())
}

/// Times `iters` back-to-back executions of a program.
pub struct Timer {
    method: TimingMethod,
    queries: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer)>,
    /// Longest a single submission may take before it counts as hung.
    pub timeout: Duration,
}

impl Timer {
    /// Device timestamps where available (unless `PRICEPERF_TIMING=wall`), else wall clock.
    /// CPU adapters always use the wall clock: their "device" clock is the same host clock,
    /// so timestamps add nothing, and lavapipe's were seen to bracket a fraction of the work
    /// (0.1 ms for a 140 ms dispatch after other workloads) where the wall clock was right.
    /// `PRICEPERF_TIMING=device` forces timestamps anyway.
    pub fn new(gpu: &Gpu, timeout: Duration) -> Timer {
        let forced = std::env::var("PRICEPERF_TIMING").ok();
        let wall = match forced.as_deref() {
            Some("wall") => true,
            Some("device") => false,
            _ => gpu.summary.is_cpu(),
        };
        if wall || !gpu.has_timestamps() {
            return Timer {
                method: TimingMethod::Wall,
                queries: None,
                timeout,
            };
        }
        let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let read = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp read"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Timer {
            method: TimingMethod::Device,
            queries: Some((set, resolve, read)),
            timeout,
        }
    }

    pub fn method(&self) -> TimingMethod {
        self.method
    }

    /// Total time of `iters` executions, in submissions sized to about half a second each
    /// (at most `MAX_ITERS_PER_SUBMIT` dispatches), so slow adapters never queue more work in
    /// one submission than the hang timeout allows.
    pub fn time(
        &self,
        gpu: &Gpu,
        program: &Program,
        iters: u64,
    ) -> Result<Duration, DeviceTrouble> {
        let mut total = Duration::ZERO;
        let mut left = iters.max(1);
        let mut chunk = left.min(8);
        while left > 0 {
            let n = left.min(chunk);
            let t = self.time_chunk(gpu, program, n)?;
            total += t;
            left -= n;
            let per_iter = t.as_secs_f64() / n as f64;
            chunk = ((0.5 / per_iter.max(1e-9)) as u64).clamp(1, MAX_ITERS_PER_SUBMIT);
        }
        Ok(total)
    }

    /// Run `program` back to back, untimed, for at least `span` of wall time, in
    /// runs of about `sample` each (one iteration at least, so a kernel slower than the
    /// span runs once); how many runs that took. A GPU that sat idle has lowered its
    /// clocks, and timings taken before they are up again would rank kernels by how much
    /// the clock slows each ([`crate::tuning::GPU_WARM_UP`]).
    pub fn warm(
        &self,
        gpu: &Gpu,
        program: &Program,
        span: Duration,
        sample: Duration,
    ) -> Result<u32, DeviceTrouble> {
        let start = Instant::now();
        let mut iters = 1;
        let mut runs = 0;
        while start.elapsed() < span {
            let t = self.time(gpu, program, iters)?.as_secs_f64() / iters as f64;
            runs += 1;
            iters = iters_for(sample, t);
        }
        Ok(runs)
    }

    /// The tuning search's screen of one program (already run once, for verification): one
    /// timing of a single iteration to size the rest (`once`, where the caller has one
    /// already), then `rounds` timings of about `sample` each, as nanoseconds per
    /// iteration. A program whose single iteration outlasts a sample stops at three timings
    /// (the first one included), or at `rounds`: screening a kernel that takes seconds must
    /// not cost more than measuring it. A program already slower than `cutoff_ns` stops at
    /// once, with the timings it has (its single-dispatch timing counts for that only from
    /// [`SINGLE_TIMING_MIN`], and only where the screen took it itself).
    pub fn screen(
        &self,
        gpu: &Gpu,
        program: &Program,
        once: Option<Duration>,
        rounds: usize,
        sample: Duration,
        cutoff_ns: Option<f64>,
    ) -> Result<Vec<f64>, DeviceTrouble> {
        let past_cutoff = |ns: f64| cutoff_ns.is_some_and(|c| ns > c);
        let (once_d, timed_here) = match once {
            Some(once) => (once, false),
            None => (self.time(gpu, program, 1)?, true),
        };
        let once = once_d.as_secs_f64().max(1e-9);
        let once_ns = once * 1e9;
        // A timing the caller brought (a verification run) does not cut the screen short:
        // what its first dispatch still cost could make up the gap.
        if timed_here && cut_at_once(once_d, cutoff_ns) {
            return Ok(vec![once_ns]);
        }
        let iters = iters_for(sample, once);
        let slow = iters == 1;
        let wanted = if slow { rounds.min(3) } else { rounds };
        let mut per_iter_ns = Vec::with_capacity(wanted);
        if slow {
            per_iter_ns.push(once_ns);
        }
        while per_iter_ns.len() < wanted {
            let ns = self.time(gpu, program, iters)?.as_nanos() as f64 / iters as f64;
            per_iter_ns.push(ns);
            if past_cutoff(ns) {
                break;
            }
        }
        Ok(per_iter_ns)
    }

    fn time_chunk(&self, gpu: &Gpu, program: &Program, n: u64) -> Result<Duration, DeviceTrouble> {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let timestamp_writes =
                self.queries
                    .as_ref()
                    .map(|(set, _, _)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed"),
                timestamp_writes,
            });
            for _ in 0..n {
                program.encode(gpu, &mut pass);
            }
        }
        let Some((set, resolve, read)) = &self.queries else {
            let start = Instant::now();
            submit_wait(gpu, encoder, self.timeout)?;
            let took = start.elapsed();
            gpu.mark_timed();
            return Ok(took);
        };
        encoder.resolve_query_set(set, 0..2, resolve, 0);
        encoder.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
        let wall_start = Instant::now();
        submit_wait(gpu, encoder, self.timeout)?;
        let wall = wall_start.elapsed();
        gpu.mark_timed();
        let slice = read.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        gpu.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(self.timeout),
            })
            .map_err(|e| DeviceTrouble::Lost(format!("reading timestamps: {e}")))?;
        let ticks: [u64; 2] = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| DeviceTrouble::Lost(format!("reading timestamps: {e}")))?;
            bytemuck::pod_read_unaligned(&view[..16])
        };
        read.unmap();
        let period = gpu.queue.get_timestamp_period() as f64;
        // Counters can wrap or reset (seen on Intel); a negative delta is not a time.
        let delta = ticks[1].wrapping_sub(ticks[0]);
        if ticks[1] < ticks[0] {
            return Err(DeviceTrouble::Lost(format!(
                "timestamp counter went backwards ({} -> {}); rerun with PRICEPERF_TIMING=wall",
                ticks[0], ticks[1]
            )));
        }
        let device = Duration::from_nanos((delta as f64 * period).round() as u64);
        // The timestamps must bracket the work: a chunk that kept the host waiting 20 ms or
        // more cannot have taken under a quarter of that on the device (submission overhead
        // is far below 15 ms). Otherwise the row would report an impossible speed.
        if wall >= Duration::from_millis(20) && device < wall / 4 {
            return Err(DeviceTrouble::Lost(format!(
                "device timestamps say {:.3} ms for work the host waited {:.3} ms for; they do not bracket the work on this adapter: rerun with PRICEPERF_TIMING=wall",
                device.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3
            )));
        }
        Ok(device)
    }
}

/// Summary statistics of per-iteration times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub samples: usize,
    pub median_ns: f64,
    pub ci_low_ns: f64,
    pub ci_high_ns: f64,
}

impl Stats {
    /// The interval's half-width as a fraction of the median (`KernelRow::spread` too).
    pub fn spread(&self) -> f64 {
        (self.ci_high_ns - self.ci_low_ns) / 2.0 / self.median_ns
    }

    /// Median with a 95% percentile-bootstrap confidence interval (2,000 resamples, fixed
    /// seed so the same samples always give the same interval).
    pub fn of(samples_ns: &[f64]) -> Option<Stats> {
        let clean: Vec<f64> = samples_ns
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if clean.is_empty() {
            return None;
        }
        let median_ns = median(&mut clean.clone());
        let mut rng = crate::verify::Rng::new(0x5eed);
        let mut medians = Vec::with_capacity(2000);
        let mut resample = vec![0.0; clean.len()];
        for _ in 0..2000 {
            for slot in resample.iter_mut() {
                *slot = clean[rng.below(clean.len() as u64) as usize];
            }
            medians.push(median(&mut resample));
        }
        medians.sort_by(f64::total_cmp);
        let at = |q: f64| medians[((medians.len() - 1) as f64 * q).round() as usize];
        Some(Stats {
            samples: clean.len(),
            median_ns,
            ci_low_ns: at(0.025),
            ci_high_ns: at(0.975),
        })
    }
}

/// The median of `v` (sorted in place); `v` must not be empty.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_interval_bracket_the_data() {
        let samples: Vec<f64> = (1..=21).map(|i| i as f64 * 10.0).collect();
        let s = Stats::of(&samples).unwrap();
        assert_eq!(s.samples, 21);
        assert_eq!(s.median_ns, 110.0);
        assert!(s.ci_low_ns <= 110.0 && s.ci_high_ns >= 110.0);
        assert!(s.ci_low_ns >= 10.0 && s.ci_high_ns <= 210.0);
        assert!(s.ci_high_ns - s.ci_low_ns < 200.0);
    }

    #[test]
    fn a_screen_stops_at_one_dispatch_only_when_it_is_long_enough_to_tell() {
        let cutoff = Some(300_000.0); // 3x a fastest screen of 0.1 ms
        assert!(cut_at_once(Duration::from_millis(2), cutoff));
        // Past the cutoff, but a single dispatch under 1 ms is mostly the submission.
        assert!(!cut_at_once(Duration::from_micros(500), cutoff));
        assert!(!cut_at_once(Duration::from_millis(2), Some(3e6)));
        assert!(!cut_at_once(Duration::from_millis(2), None));
    }

    #[test]
    fn timings_are_sized_to_the_sample_and_capped() {
        let ms = Duration::from_millis(15);
        assert_eq!(iters_for(ms, 1e-3), 15);
        // A kernel slower than the sample runs once.
        assert_eq!(iters_for(ms, 0.1), 1);
        // A timing of nanoseconds, or none at all (a timer gone wrong), is capped.
        assert_eq!(iters_for(ms, 2e-9), MAX_ITERS_PER_SUBMIT);
        assert_eq!(iters_for(ms, 0.0), MAX_ITERS_PER_SUBMIT);
    }

    #[test]
    fn identical_samples_have_a_zero_width_interval() {
        let s = Stats::of(&[5.0; 10]).unwrap();
        assert_eq!((s.median_ns, s.ci_low_ns, s.ci_high_ns), (5.0, 5.0, 5.0));
    }

    #[test]
    fn bad_samples_are_dropped() {
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[f64::NAN, 0.0]).is_none());
        assert_eq!(Stats::of(&[f64::NAN, 4.0, 6.0]).unwrap().median_ns, 5.0);
    }
}
