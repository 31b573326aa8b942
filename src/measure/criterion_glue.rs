//! The criterion glue: one measuring engine for `cargo bench` and `priceperf run`.
//!
//! Criterion decides warm-up and how many iterations each sample runs, prints its own
//! analysis, and keeps its baselines (`--save-baseline`, `--baseline`). Each sample's time
//! comes from our [`Timer`](super::Timer) through `iter_custom`, and we keep the samples to
//! compute the row's median and interval, because criterion's analysis is not public API.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};

use super::DeviceTrouble;

/// What a sample reports once the device has failed (see [`measure`]).
const TROUBLE_PAUSE: Duration = Duration::from_millis(20);

/// Sampling settings for a run.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Samples per benchmark (criterion requires at least 10).
    pub sample_size: usize,
    pub warm_up: Duration,
    pub measurement: Duration,
}

impl Sampling {
    /// Defaults by suite and adapter: software adapters are slow, so their samples are fewer
    /// and shorter, and the quick suite halves the measuring time again.
    pub fn for_run(quick: bool, is_cpu: bool) -> Sampling {
        let mut s = Sampling::for_adapter(is_cpu);
        if quick {
            s.warm_up /= 2;
            s.measurement /= 2;
        }
        s
    }

    /// Defaults by adapter: software adapters are slow, so their samples are fewer and
    /// shorter; GPUs get criterion-like settings.
    pub fn for_adapter(is_cpu: bool) -> Sampling {
        if is_cpu {
            Sampling {
                sample_size: 10,
                warm_up: Duration::from_millis(300),
                measurement: Duration::from_secs(2),
            }
        } else {
            Sampling {
                sample_size: 20,
                warm_up: Duration::from_millis(500),
                measurement: Duration::from_secs(2),
            }
        }
    }
}

/// Bootstrap resamples of criterion's own analysis (its estimates and baseline comparisons;
/// the rows' intervals are priceperf's, from 2,000). Criterion's default of 100,000 made its
/// analysis 35-40 ms per measurement on the 2-core lavapipe VM (1.4-1.7 s of a fresh quick
/// run, 0.2 s with this); 10,000 keeps the Monte Carlo error of a 95% bound a small
/// fraction of what 10 or 20 samples leave uncertain anyway.
pub const NRESAMPLES: usize = 10_000;

/// A criterion instance for `priceperf run`: its files go to `output` (the run's folder),
/// plots off (they cost seconds per benchmark on small machines).
pub fn criterion_for_run(output: PathBuf) -> Criterion {
    Criterion::default()
        .output_directory(&output)
        .without_plots()
        .nresamples(NRESAMPLES)
        .with_output_color(false)
}

/// A criterion instance of its own, for measuring a benchmark id a second time in one run
/// (the repeat of a wide measurement), so the run's instance sees every id once: it would
/// name a second measurement `<id>_2`, and `cargo bench -- --baseline X` panics on an id
/// with no saved baseline. Its files go to a scratch folder, removed when it is dropped.
pub struct ScratchCriterion {
    pub criterion: Criterion,
    dir: PathBuf,
}

impl ScratchCriterion {
    pub fn in_temp_dir() -> ScratchCriterion {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "priceperf-criterion-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        ScratchCriterion {
            criterion: criterion_for_run(dir.clone()),
            dir,
        }
    }
}

impl Drop for ScratchCriterion {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The outcome of measuring one program.
pub enum Measured {
    /// Per-iteration times of criterion's samples, in nanoseconds.
    Samples(Vec<f64>),
    /// Criterion did not run it (filtered out on the criterion command line, `--list`, or
    /// test mode with one iteration).
    NotRun,
    /// The device failed while measuring.
    Trouble(DeviceTrouble),
}

/// Let criterion sample `time_iters` (which runs the program `iters` times and returns the
/// total) as benchmark `group/id`, with `flops` of work per iteration. Also returns the wall
/// time spent in `time_iters` (criterion's warm-up and samples: running the kernel); the
/// rest of the call is criterion's statistics and reports, which is not measuring.
pub fn measure(
    c: &mut Criterion,
    group: &str,
    id: &str,
    flops: u64,
    sampling: &Sampling,
    mut time_iters: impl FnMut(u64) -> Result<Duration, DeviceTrouble>,
) -> (Measured, Duration) {
    let calls: RefCell<Vec<(u64, Duration)>> = RefCell::new(Vec::new());
    let trouble: RefCell<Option<DeviceTrouble>> = RefCell::new(None);
    let running: Cell<Duration> = Cell::new(Duration::ZERO);
    let measured = {
        let mut g = c.benchmark_group(group);
        g.sample_size(sampling.sample_size.max(10))
            .warm_up_time(sampling.warm_up)
            .measurement_time(sampling.measurement)
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(flops));
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                if trouble.borrow().is_some() {
                    // The device already failed. Criterion plans by wall time, so spend a
                    // little to let its warm-up and sampling end soon, doing no GPU work.
                    std::thread::sleep(TROUBLE_PAUSE);
                    return TROUBLE_PAUSE;
                }
                let started = Instant::now();
                let timed = time_iters(iters);
                running.set(running.get() + started.elapsed());
                match timed {
                    Ok(d) => {
                        calls.borrow_mut().push((iters, d));
                        d.max(Duration::from_nanos(1))
                    }
                    Err(e) => {
                        *trouble.borrow_mut() = Some(e);
                        TROUBLE_PAUSE
                    }
                }
            })
        });
        g.finish();
        samples(trouble.into_inner(), calls.into_inner(), sampling)
    };
    (measured, running.get())
}

/// What the calls criterion made add up to: device trouble if any, else the samples (the
/// last `sample_size` calls), else nothing run.
fn samples(
    trouble: Option<DeviceTrouble>,
    calls: Vec<(u64, Duration)>,
    sampling: &Sampling,
) -> Measured {
    if let Some(t) = trouble {
        return Measured::Trouble(t);
    }
    let n = sampling.sample_size.max(10);
    if calls.len() < n {
        return Measured::NotRun;
    }
    // Criterion calls the routine for warm-up first and then once per sample, in order.
    Measured::Samples(
        calls[calls.len() - n..]
            .iter()
            .map(|(iters, d)| d.as_nanos() as f64 / *iters as f64)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_criterions_last_calls() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = criterion_for_run(dir.path().to_path_buf());
        let sampling = Sampling {
            sample_size: 10,
            warm_up: Duration::from_millis(10),
            measurement: Duration::from_millis(50),
        };
        // A fake device: 1 µs per iteration, exactly.
        let mut slept = Duration::ZERO;
        let started = Instant::now();
        let (out, running) = measure(&mut c, "glue", "fake", 1000, &sampling, |iters| {
            std::thread::sleep(Duration::from_micros(iters));
            slept += Duration::from_micros(iters);
            Ok(Duration::from_micros(iters))
        });
        let whole = started.elapsed();
        let Measured::Samples(s) = out else {
            panic!("not measured")
        };
        assert_eq!(s.len(), 10);
        assert!(s.iter().all(|v| (*v - 1000.0).abs() < 1e-9), "{s:?}");
        // The running time is the routine's, not criterion's analysis around it.
        assert!(
            running >= slept && running < whole,
            "{running:?} {slept:?} {whole:?}"
        );
    }

    #[test]
    fn device_trouble_is_reported_not_measured() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = criterion_for_run(dir.path().to_path_buf());
        let sampling = Sampling {
            sample_size: 10,
            warm_up: Duration::from_millis(10),
            measurement: Duration::from_millis(20),
        };
        let (out, _) = measure(&mut c, "glue", "lost", 1, &sampling, |_| {
            Err(DeviceTrouble::Timeout("hung".into()))
        });
        assert!(matches!(out, Measured::Trouble(DeviceTrouble::Timeout(_))));
    }

    /// A repeat through a scratch instance leaves the run's criterion folder with one
    /// measurement of the id (no `<id>_2` for `--baseline` to panic on), and leaves no
    /// scratch folder behind.
    #[test]
    fn a_repeat_goes_through_a_scratch_criterion() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = criterion_for_run(dir.path().to_path_buf());
        let sampling = Sampling {
            sample_size: 10,
            warm_up: Duration::from_millis(5),
            measurement: Duration::from_millis(20),
        };
        let fake = |iters: u64| {
            std::thread::sleep(Duration::from_micros(iters));
            Ok(Duration::from_micros(iters))
        };
        assert!(matches!(
            measure(&mut c, "glue", "twice", 1, &sampling, fake).0,
            Measured::Samples(_)
        ));
        let scratch = ScratchCriterion::in_temp_dir();
        let scratch_dir = scratch.dir.clone();
        let mut scratch = scratch;
        assert!(matches!(
            measure(&mut scratch.criterion, "glue", "twice", 1, &sampling, fake).0,
            Measured::Samples(_)
        ));
        assert!(scratch_dir.join("glue").exists());
        drop(scratch);
        assert!(!scratch_dir.exists());
        let ids = || {
            let mut ids: Vec<String> = std::fs::read_dir(dir.path().join("glue"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(), ["twice"]);
        // What the scratch instance avoids: the run's own would file the repeat apart.
        measure(&mut c, "glue", "twice", 1, &sampling, fake);
        assert_eq!(ids(), ["twice", "twice_2"]);
    }
}
