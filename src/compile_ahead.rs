//! Compiling a benchmark's variants ahead of its search, in parallel, on helper devices.
//!
//! Why: llvmpipe compiles a kernel on its first dispatch, on the device's one queue thread,
//! so a run with an empty Mesa shader cache compiles one variant at a time on one core (44
//! of the 127 s of a fresh quick run on the 2-core VM) while the other cores wait. Every
//! device has its own queue thread, and what one compiles lands in Mesa's on-disk shader
//! cache, where the run's own device finds it: a variant that a helper device had compiled
//! in 1.6 s took the run's device 0.07 s. So before a benchmark's variants are verified and
//! timed, one helper device per core compiles them, each taking the next variant not yet
//! taken, and the run waits for them: nothing is ever timed while a helper compiles.
//!
//! On by default on llvmpipe only, where it was measured. GPU drivers compile when a
//! pipeline is created and keep shader caches of their own; whether helpers pay there is
//! untried, so `PRICEPERF_COMPILE_AHEAD=on` turns them on for any adapter (to measure it) and
//! `off` turns them off. Off where Mesa's shader cache is disabled
//! (`MESA_SHADER_CACHE_DISABLE`), and for the rest of the run once a benchmark's own
//! compiling shows that no cache carried the helpers' work over (a cache directory that
//! cannot be written, for one): then helpers only add work.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::candidates::Candidate;
use crate::gpu::Gpu;
use crate::measure::prime;

/// At most this many helper devices: each holds one variant's inputs at a time.
const MAX_HELPERS: usize = 8;

/// Helper devices on the run's adapter, and whether they are still worth using.
pub(crate) struct CompileAhead {
    helpers: Vec<Gpu>,
    timeout: Duration,
    on: Cell<bool>,
}

/// What one [`CompileAhead::compile`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Compiled {
    /// Variants the helpers compiled (not counting those that do not apply to the shape or
    /// adapter, which build nothing).
    pub variants: usize,
    /// The helpers' compiling and uploading added up: about what the run's device would have
    /// spent on them one after another.
    pub helper_s: f64,
    /// Wall time, waiting for the helpers included.
    pub wall_s: f64,
}

impl CompileAhead {
    /// One helper device per core (llvmpipe's threads, `LP_NUM_THREADS`, on a CPU adapter;
    /// the host's otherwise), at most [`MAX_HELPERS`], where [`wanted`] says so; `None`
    /// otherwise, or when fewer than two helpers open.
    pub fn open(main: &Gpu, timeout: Duration) -> Option<CompileAhead> {
        let cores = if main.summary.is_cpu() {
            crate::gpu::cpu_adapter_threads()
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let switch = std::env::var("PRICEPERF_COMPILE_AHEAD").ok();
        let cache = std::env::var("MESA_SHADER_CACHE_DISABLE").ok();
        if !wanted(
            switch.as_deref(),
            main.summary.is_llvmpipe(),
            cache.as_deref(),
        ) || cores < 2
        {
            return None;
        }
        let helpers: Vec<Gpu> = (0..cores.min(MAX_HELPERS))
            .map_while(|_| Gpu::on(main.adapter.clone()).ok())
            .collect();
        (helpers.len() >= 2).then(|| CompileAhead {
            helpers,
            timeout,
            on: Cell::new(true),
        })
    }

    /// Compile `candidates` on the helpers and wait for them; `None` (nothing done) when
    /// there are fewer than two or the helpers were turned off. A variant that fails to build
    /// or to dispatch on a helper is let be: the run's own device meets the same failure and
    /// reports it.
    pub fn compile(&self, candidates: &[&Candidate<'_>]) -> Option<Compiled> {
        if !self.on.get() || candidates.len() < 2 {
            return None;
        }
        crate::progress::step(
            &format!("{} variants", candidates.len()),
            &format!("compiling on {} helper devices", self.workers(candidates)),
        );
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let built = AtomicUsize::new(0);
        let helper_s = Mutex::new(0.0);
        let timeout = self.timeout;
        std::thread::scope(|scope| {
            for helper in self.helpers.iter().take(self.workers(candidates)) {
                let (next, built, helper_s) = (&next, &built, &helper_s);
                scope.spawn(move || {
                    while let Some(c) = candidates.get(next.fetch_add(1, Ordering::Relaxed)) {
                        // A lost helper leaves the rest to the others.
                        if helper.is_lost() {
                            break;
                        }
                        let t = Instant::now();
                        if let Ok((program, _check)) = (c.prepare)(helper) {
                            built.fetch_add(1, Ordering::Relaxed);
                            let _ = prime(helper, &program, timeout);
                        }
                        // Its errors would be reported by nobody: the run's device reports
                        // its own.
                        helper.take_errors();
                        *helper_s.lock().unwrap_or_else(|e| e.into_inner()) +=
                            t.elapsed().as_secs_f64();
                    }
                });
            }
        });
        Some(Compiled {
            variants: built.into_inner(),
            helper_s: helper_s.into_inner().unwrap_or_else(|e| e.into_inner()),
            wall_s: started.elapsed().as_secs_f64(),
        })
    }

    /// After the run's device compiled and uploaded the variants the helpers compiled
    /// (`own_s` in all): if that was not well under the helpers' time, no cache carried their
    /// work over, and the helpers are turned off for the rest of the run. Returns the notice
    /// to show when that happens.
    pub fn check_carried(&self, compiled: Compiled, own_s: f64) -> Option<String> {
        if carried(compiled.helper_s, own_s) {
            return None;
        }
        self.on.set(false);
        Some(format!(
            "priceperf: variants compiled ahead on helper devices took this device {own_s:.1} s to compile and upload again (the helpers took {:.1} s): no shader cache carried them over (is Mesa's cache directory writable?), so the rest of the run compiles on this device only",
            compiled.helper_s
        ))
    }

    fn workers(&self, candidates: &[&Candidate<'_>]) -> usize {
        self.helpers.len().min(candidates.len())
    }
}

/// Whether the run's device, `own_s` compiling and uploading what the helpers had compiled in
/// `helper_s`, found their work in a cache: it took well under their time. Below a second of
/// theirs, a hit and a compile are too close to tell apart, and count as carried.
fn carried(helper_s: f64, own_s: f64) -> bool {
    helper_s < 1.0 || own_s < 0.5 * helper_s
}

/// Whether to compile ahead, given `PRICEPERF_COMPILE_AHEAD` (`on`, `off`, or unset: on
/// llvmpipe only) and `MESA_SHADER_CACHE_DISABLE` (a boolean as Mesa reads it: 1, true, yes,
/// y), which leaves the helpers' work nowhere to go.
fn wanted(switch: Option<&str>, llvmpipe: bool, mesa_cache_disable: Option<&str>) -> bool {
    let cache_off = mesa_cache_disable.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "y"
        )
    });
    match switch.map(str::trim) {
        Some("off") => false,
        Some("on") => !(cache_off && llvmpipe),
        _ => llvmpipe && !cache_off,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_whose_work_was_compiled_again_did_not_pay() {
        // Measured on the 2-core VM: 5.9 s on the helpers, 0.0-0.1 s on the run's device.
        assert!(carried(5.9, 0.1));
        assert!(!carried(5.9, 4.0));
        assert!(!carried(2.0, 1.0));
        // Too little to judge.
        assert!(carried(0.4, 0.4));
    }

    #[test]
    fn on_by_default_on_llvmpipe_only_and_never_without_mesas_cache() {
        for (switch, llvmpipe, cache, want) in [
            (None, true, None, true),
            (None, false, None, false),
            (Some("on"), false, None, true),
            (Some("off"), true, None, false),
            // Mesa's switch, read as Mesa reads it.
            (None, true, Some("1"), false),
            (None, true, Some("true"), false),
            (None, true, Some("YES"), false),
            (Some("on"), true, Some("y"), false),
            (None, true, Some("0"), true),
            (None, true, Some("false"), true),
            (None, true, Some(""), true),
            // A GPU driver keeps its own cache.
            (Some("on"), false, Some("1"), true),
        ] {
            assert_eq!(
                wanted(switch, llvmpipe, cache),
                want,
                "{switch:?} {llvmpipe} {cache:?}"
            );
        }
    }
}
