//! Compiling a benchmark's variants ahead of its search, in parallel, on helper devices.
//!
//! Why: llvmpipe compiles a kernel on its first dispatch, on the device's one queue thread,
//! so a run with an empty Mesa shader cache compiles one variant at a time on one core
//! (34-39 of the 114-124 s of a fresh quick run on the 2-core VM, without helpers; 27-33 of
//! 109-118 s with them) while the other cores wait. Every
//! device has its own queue thread, and what one compiles lands in Mesa's on-disk shader
//! cache, where the run's own device finds it: a variant that a helper device had compiled
//! in 1.6 s took the run's device 0.07 s. So before a benchmark's variants are verified and
//! timed, one helper device per core compiles them, each taking the next variant not yet
//! taken, and the run waits for them: nothing is ever timed while a helper compiles.
//!
//! One benchmark at a time, a helper sits idle while the other finishes the benchmark's
//! longest compile. So once a benchmark has shown that the driver's cache carries the
//! helpers' work over ([`CompileAhead::proven`]), the helpers compile the variants of all
//! the benchmarks left ([`CompileAhead::suite`], as many as keep their inputs within a
//! bound) in one pool, and each benchmark then finds its variants compiled. The same variant
//! name in neighbouring benchmarks is often the same kernel: it is never compiled by two
//! helpers at once ([`Queue`]), so the second loads it from the cache.
//!
//! On by default on Vulkan's llvmpipe (lavapipe) only, where it was measured. GPU drivers
//! compile when a pipeline is created, with shader caches of their own (Mesa's GPU drivers
//! use Mesa's); whether helpers pay there is untried, so `PRICEPERF_COMPILE_AHEAD=on` turns
//! them on for any Vulkan, Metal or DX12 adapter (to measure it) and `off` turns them off.
//! Never on GL, whose devices share one context and its lock. Off on a Mesa driver whose
//! shader cache is disabled (`MESA_SHADER_CACHE_DISABLE`), and for the rest of the run once
//! the run's own compiling of what the helpers compiled shows that no cache carried their
//! work over (a cache directory that cannot be written, for one), or once a helper's
//! compile ran past `--timeout`: then helpers only add work, or might still be compiling
//! while kernels are timed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::candidates::Candidate;
use crate::gpu::Gpu;
use crate::measure::prime;

/// At most this many helper devices: each holds one variant's inputs at a time.
const MAX_HELPERS: usize = 8;

/// Helper devices on the run's adapter, opened on first use; none once turned off.
pub(crate) struct CompileAhead {
    adapter: wgpu::Adapter,
    count: usize,
    timeout: Duration,
    /// `None` until they are first needed; then the helpers, an empty list once they are
    /// turned off.
    helpers: RefCell<Option<Vec<Gpu>>>,
    /// Whether the driver compiles on a pipeline's first dispatch (llvmpipe) rather than
    /// when the pipeline is built ([`CompileAhead::compiling_s`]).
    compiles_on_dispatch: bool,
    /// Seconds of compiling of what the helpers compiled since the last verdict
    /// ([`CompileAhead::check_carried`]): theirs, and the run's device's for the same
    /// variants.
    compiling: Cell<Tally>,
    /// Whether a verdict has found their work carried over ([`CompileAhead::proven`]).
    proven: Cell<bool>,
    /// What [`CompileAhead::suite`] did for each variant, by benchmark id and variant, until
    /// [`CompileAhead::compile`] collects the benchmark's.
    pooled: RefCell<HashMap<String, HashMap<String, Sums>>>,
}

/// What one [`CompileAhead::compile`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Compiled {
    /// Variants built on the helpers (those that do not apply to the shape or adapter build
    /// nothing), each then dispatched once, which is when llvmpipe compiles.
    pub variants: usize,
    /// The helpers' preparing (building, uploading) and first dispatches added up: about
    /// what the run's device would have spent on them one after another.
    pub helper_s: f64,
    /// The part of `helper_s` spent where the driver compiles
    /// ([`CompileAhead::compiling_s`]): what the run's device repeats when no cache carried
    /// it over.
    pub compiling_s: f64,
    /// Wall time, waiting for the helpers included (not the pool's: [`SuiteCompiled`]).
    pub wall_s: f64,
    /// How many of `variants` [`CompileAhead::suite`] had compiled, before the benchmark
    /// began.
    pub pooled: usize,
}

/// What one [`CompileAhead::suite`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SuiteCompiled {
    pub variants: usize,
    pub benchmarks: usize,
    /// The helpers' own time, added up ([`Compiled::helper_s`]).
    pub helper_s: f64,
    /// Wall time, waiting for the helpers included.
    pub wall_s: f64,
}

/// What the helpers did for one variant, or added up for several.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    /// Variants built (one that fails to build counts in the times only).
    built: usize,
    helper_s: f64,
    compiling_s: f64,
}

impl std::ops::AddAssign for Sums {
    fn add_assign(&mut self, o: Sums) {
        self.built += o.built;
        self.helper_s += o.helper_s;
        self.compiling_s += o.compiling_s;
    }
}

impl CompileAhead {
    /// Helpers for the run's device, where [`wanted`] says so and there are two cores or
    /// more for them (llvmpipe's threads, `LP_NUM_THREADS`, capped by the host's cores on a
    /// CPU adapter; the host's cores otherwise), at most [`MAX_HELPERS`]. Opens nothing yet.
    /// An unknown `PRICEPERF_COMPILE_AHEAD` value is named in a notice.
    pub fn new(main: &Gpu, timeout: Duration) -> Option<CompileAhead> {
        let host = crate::gpu::host_threads();
        let cores = if main.summary.is_cpu() {
            crate::gpu::cpu_adapter_threads().min(host)
        } else {
            host
        };
        let switch = match std::env::var("PRICEPERF_COMPILE_AHEAD") {
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => {
                    crate::progress::notice(&format!(
                        "priceperf: PRICEPERF_COMPILE_AHEAD={v:?} is neither `on` nor `off`; ignored"
                    ));
                    None
                }
            },
            Err(_) => None,
        };
        let s = &main.summary;
        let adapter = Adapter {
            lavapipe: s.is_llvmpipe() && s.backend.eq_ignore_ascii_case("vulkan"),
            gl: s.backend.eq_ignore_ascii_case("gl"),
            mesa: s.driver_info.contains("Mesa"),
        };
        let cache = std::env::var("MESA_SHADER_CACHE_DISABLE").ok();
        (wanted(switch, adapter, cache.as_deref()) && cores >= 2).then(|| CompileAhead {
            adapter: main.adapter.clone(),
            count: cores.min(MAX_HELPERS),
            timeout,
            helpers: RefCell::new(None),
            compiles_on_dispatch: s.is_llvmpipe(),
            compiling: Cell::new(Tally::default()),
            proven: Cell::new(false),
            pooled: RefCell::new(HashMap::new()),
        })
    }

    /// Compile `candidates`, the variants `bench` (a benchmark id) builds, on the helpers
    /// and wait for them. Those that [`CompileAhead::suite`] compiled for `bench` are not
    /// compiled again: what the pool did for them is added in, with no wall time, and the
    /// others are compiled now. `None` (nothing done) when nothing was pooled and there are
    /// fewer than two candidates, or when the helpers are off. A variant that fails to build
    /// or to dispatch on a helper is let be: the run's own device meets the same failure and
    /// reports it.
    pub fn compile(&self, bench: &str, candidates: &[&Candidate<'_>]) -> Option<Compiled> {
        let pooled = self.pooled.borrow_mut().remove(bench);
        let mut sums = Sums::default();
        let mut rest = Vec::new();
        for c in candidates {
            match pooled.as_ref().and_then(|p| p.get(&c.variant)) {
                Some(s) => sums += *s,
                None => rest.push(*c),
            }
        }
        let from_pool = candidates.len() - rest.len();
        let pooled_built = sums.built;
        // One variant alone gains nothing from helpers, unless the others were pooled: then
        // the helpers compile it too, so that what the run's device compiles afterwards
        // still judges their work alone (`check_carried`).
        let mut wall_s = 0.0;
        let ran = (rest.len() >= 2 || (from_pool > 0 && !rest.is_empty()))
            .then(|| self.run(&rest, &format!("{} variants", rest.len())))
            .flatten();
        match ran {
            Some((done, wall)) => {
                done.into_iter().for_each(|d| sums += d.unwrap_or_default());
                wall_s = wall;
            }
            // Nothing pooled and nothing compiled now (too few, or the helpers are off).
            None if from_pool == 0 => return None,
            None => {}
        }
        Some(Compiled {
            variants: sums.built,
            helper_s: sums.helper_s,
            compiling_s: sums.compiling_s,
            wall_s,
            pooled: pooled_built,
        })
    }

    /// Compile the variants of many benchmarks (`(benchmark id, its variants)`, in run
    /// order) in one go, for [`CompileAhead::compile`] to find later. One benchmark at a time
    /// leaves a helper idle whenever the other still compiles the benchmark's last big
    /// kernel (a fused attention's `flash_ubs_r8_q4_c4` took 2.9 s beside 1.0 s of the other
    /// variant); pooled, the helpers are busy until the last variant. Only once
    /// [`CompileAhead::proven`]: until then a suite's worth of compiling could be work the
    /// run's device does again. `None` when nothing was done.
    pub fn suite(&self, benches: &[(String, Vec<&Candidate<'_>>)]) -> Option<SuiteCompiled> {
        if !self.proven() {
            return None;
        }
        let items: Vec<&Candidate<'_>> = benches
            .iter()
            .flat_map(|(_, cs)| cs.iter().copied())
            .collect();
        if items.len() < 2 {
            return None;
        }
        let what = format!("{} variants of {} benchmarks", items.len(), benches.len());
        let (done, wall_s) = self.run(&items, &what)?;
        let mut total = SuiteCompiled {
            variants: 0,
            benchmarks: benches.len(),
            helper_s: 0.0,
            wall_s,
        };
        let mut pooled = self.pooled.borrow_mut();
        let mut done = done.into_iter();
        for (id, cs) in benches {
            let mine = pooled.entry(id.clone()).or_default();
            // Variants left undone (a stop request) are not entered: compile() does them.
            for (c, d) in cs.iter().zip(done.by_ref()) {
                if let Some(d) = d {
                    total.variants += d.built;
                    total.helper_s += d.helper_s;
                    mine.insert(c.variant.clone(), d);
                }
            }
        }
        Some(total)
    }

    /// Whether a verdict has found the helpers' work carried over to the run's device
    /// ([`CompileAhead::check_carried`]) and the helpers are not turned off.
    pub fn proven(&self) -> bool {
        self.proven.get() && self.helpers.borrow().as_ref().is_none_or(|h| h.len() >= 2)
    }

    /// Compile `items` on the helpers ([`Queue`]) and wait for them: what was done for each
    /// item (`None` for one left undone: a stop request (Ctrl-C) ends it after the variants
    /// being compiled, a helper that failed leaves the rest to the others), and the wall
    /// time. `None` when fewer than two helpers are open.
    fn run(&self, items: &[&Candidate<'_>], what: &str) -> Option<(Vec<Option<Sums>>, f64)> {
        let mut opened = self.helpers.borrow_mut();
        let helpers = opened.get_or_insert_with(|| {
            let opened: Vec<Gpu> = (0..self.count)
                .map_while(|_| Gpu::helper(self.adapter.clone()).ok())
                .collect();
            if opened.len() < 2 {
                Vec::new()
            } else {
                opened
            }
        });
        if helpers.len() < 2 || items.is_empty() {
            return None;
        }
        let workers = helpers.len().min(items.len());
        crate::progress::step(what, &format!("compiling on {workers} helper devices"));
        let started = Instant::now();
        let queue = Queue::new(items.iter().map(|c| c.variant.as_str()).collect());
        let stuck = AtomicBool::new(false);
        let done = Mutex::new(vec![None; items.len()]);
        let timeout = self.timeout;
        let on_dispatch = self.compiles_on_dispatch;
        std::thread::scope(|scope| {
            for helper in helpers.iter().take(workers) {
                let (queue, stuck, done) = (&queue, &stuck, &done);
                scope.spawn(move || {
                    while let Some(taken) = queue.take() {
                        let c = items[taken.item];
                        if crate::runner::stop_requested() {
                            break;
                        }
                        let t = Instant::now();
                        let before = compiling(on_dispatch, helper, 0.0);
                        let mut primed_ok = true;
                        let mut built = 0;
                        let mut primed_s = 0.0;
                        if let Ok((program, _check)) = (c.prepare)(helper) {
                            built = 1;
                            let primed = Instant::now();
                            primed_ok = prime(helper, &program, timeout).is_ok();
                            primed_s = primed.elapsed().as_secs_f64();
                        }
                        // A build that failed counts too: the run's device repeats it.
                        let compiling_s = compiling(on_dispatch, helper, primed_s) - before;
                        // Its errors would be reported by nobody: the run's device reports
                        // its own.
                        helper.take_errors();
                        done.lock().unwrap_or_else(|e| e.into_inner())[taken.item] = Some(Sums {
                            built,
                            helper_s: t.elapsed().as_secs_f64(),
                            compiling_s,
                        });
                        if !primed_ok {
                            // Lost, or past the timeout: leave the rest to the others, and
                            // wait once more for what it may still be compiling, so that
                            // nothing is timed beside it.
                            let drained = helper.device.poll(wgpu::PollType::Wait {
                                submission_index: None,
                                timeout: Some(timeout),
                            });
                            if drained.is_err() || helper.is_lost() {
                                stuck.store(true, Ordering::Relaxed);
                            }
                            break;
                        }
                    }
                });
            }
        });
        if stuck.into_inner() {
            crate::progress::notice(&format!(
                "priceperf: a helper device was lost or still compiling after twice --timeout ({:.0} s); the rest of the run compiles on this device only",
                timeout.as_secs_f64()
            ));
            helpers.clear();
            // What they pooled may never have reached the cache: the run's device compiles
            // it, with no helper time to judge against.
            self.pooled.borrow_mut().clear();
        }
        Some((
            done.into_inner().unwrap_or_else(|e| e.into_inner()),
            started.elapsed().as_secs_f64(),
        ))
    }

    /// Seconds `gpu` has spent where this driver compiles, given `first_dispatch_s` of its
    /// first dispatches: those alone on llvmpipe, which compiles on the first dispatch (its
    /// pipeline building runs the shader front end, which every device repeats and no cache
    /// saves: counting it made a hit of small kernels look like a miss, 1.5 s of the
    /// helpers' 2.1); pipeline building too elsewhere, where drivers compile when building.
    /// Uploading inputs never counts: every device repeats it.
    pub fn compiling_s(&self, gpu: &Gpu, first_dispatch_s: f64) -> f64 {
        compiling(self.compiles_on_dispatch, gpu, first_dispatch_s)
    }

    /// After the run's device compiled the variants the helpers compiled
    /// (`own_compiling_s` in all, [`CompileAhead::compiling_s`]): once the helpers have
    /// compiled for [`JUDGE_AFTER_S`] since the last verdict, this device's share is judged
    /// ([`carried`]); after [`MISSES_TO_STOP`] misses in a row no cache carries their work
    /// over, and the helpers are closed for the rest of the run. Returns the notice to show
    /// when that happens.
    pub fn check_carried(&self, compiled: Compiled, own_compiling_s: f64) -> Option<String> {
        let mut tally = self.compiling.get();
        let verdict = tally.add(compiled.compiling_s, own_compiling_s);
        self.compiling.set(tally);
        // A miss unproves them too: the next pool waits for the cache to carry again.
        if let Some(v) = verdict {
            self.proven.set(v.carried);
        }
        let Some(Verdict {
            carried: false,
            helper_s,
            own_s,
        }) = verdict
        else {
            return None;
        };
        if tally.misses < MISSES_TO_STOP {
            return None;
        }
        *self.helpers.borrow_mut() = Some(Vec::new());
        self.pooled.borrow_mut().clear();
        Some(format!(
            "priceperf: variants compiled ahead on helper devices took this device {own_s:.1} s to compile again (the helpers {helper_s:.1} s): no shader cache carried them over (is Mesa's cache directory writable?), so the rest of the run compiles on this device only",
        ))
    }
}

/// The items of one [`CompileAhead::run`], handed out in order, except that one whose
/// variant a helper is compiling waits until that helper is done with it, while the next
/// items go ahead. Neighbouring benchmarks often build the same kernel under one variant
/// name (a fused attention's prefill and decode shapes), and two helpers compiling it side
/// by side both paid for it in full (2.9 s each, measured), where the second, after the
/// first, loads it from the driver's cache. By name alone, so variants that share a name
/// but not a kernel (f32 and f16) wait their turn too: a little order lost, no work.
struct Queue<'a> {
    variants: Vec<&'a str>,
    state: Mutex<QueueState<'a>>,
    changed: Condvar,
}

struct QueueState<'a> {
    /// The first item not yet handed out or waiting.
    next: usize,
    waiting: Vec<usize>,
    /// The variants being compiled now.
    busy: Vec<&'a str>,
}

/// An item of a [`Queue`] being compiled; dropping it frees its variant.
struct Taken<'q, 'a> {
    item: usize,
    queue: &'q Queue<'a>,
}

impl Drop for Taken<'_, '_> {
    fn drop(&mut self) {
        let mut s = self.queue.lock();
        let variant = self.queue.variants[self.item];
        if let Some(at) = s.busy.iter().position(|v| *v == variant) {
            s.busy.swap_remove(at);
        }
        drop(s);
        self.queue.changed.notify_all();
    }
}

impl<'a> Queue<'a> {
    fn new(variants: Vec<&'a str>) -> Queue<'a> {
        Queue {
            variants,
            state: Mutex::new(QueueState {
                next: 0,
                waiting: Vec::new(),
                busy: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<'a>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next item to compile: a waiting one whose variant is free, else the next in
    /// order whose variant is free (those that are not wait); blocks while only waiting
    /// items are left, all busy; `None` once every item has been handed out.
    fn take(&self) -> Option<Taken<'_, 'a>> {
        let mut s = self.lock();
        loop {
            let free = |s: &QueueState<'a>, i: usize| !s.busy.contains(&self.variants[i]);
            let pick = match s.waiting.iter().position(|&i| free(&s, i)) {
                Some(at) => Some(s.waiting.remove(at)),
                None => {
                    let mut pick = None;
                    while s.next < self.variants.len() {
                        let i = s.next;
                        s.next += 1;
                        if free(&s, i) {
                            pick = Some(i);
                            break;
                        }
                        s.waiting.push(i);
                    }
                    pick
                }
            };
            if let Some(i) = pick {
                s.busy.push(self.variants[i]);
                return Some(Taken {
                    item: i,
                    queue: self,
                });
            }
            if s.waiting.is_empty() {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// [`CompileAhead::compiling_s`], for the helper threads.
fn compiling(on_dispatch: bool, gpu: &Gpu, first_dispatch_s: f64) -> f64 {
    if on_dispatch {
        first_dispatch_s
    } else {
        first_dispatch_s + gpu.build_s()
    }
}

/// Helper compiling summed before [`CompileAhead::check_carried`] judges: below it, a cache
/// hit and a compile are too close to tell apart. A hit still loads the compiled kernel
/// from Mesa's disk cache: one gemv's two variants took the run's device 0.6 s against the
/// helpers' 1.1 (a whole fresh quick run: 5.1 s of first dispatches against 47.7 s of
/// helper time), where a miss repeats the whole compile (2.6 s against 3.1 in first
/// dispatches with the cache made unusable).
const JUDGE_AFTER_S: f64 = 2.0;

/// Verdicts of "not carried" in a row that turn the helpers off: a real miss repeats at
/// every verdict, a slow cache load among small kernels hardly twice.
const MISSES_TO_STOP: u32 = 2;

/// Compiling seconds of what the helpers compiled, since the last verdict, and the misses
/// in a row so far.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    helper_s: f64,
    own_s: f64,
    misses: u32,
}

/// A judgement of [`Tally::add`]: whether the run's device found the helpers' work in a
/// cache ([`carried`]), over these seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Verdict {
    carried: bool,
    helper_s: f64,
    own_s: f64,
}

impl Tally {
    /// Add one benchmark's compiling, the helpers' and the run device's (never below zero);
    /// once the helpers' reaches [`JUDGE_AFTER_S`], judge and start afresh, so that a cache
    /// that stops working late in a run (a full disk, Mesa's size cap) is seen as soon as
    /// one that never worked, however many hits came before.
    fn add(&mut self, helper_s: f64, own_s: f64) -> Option<Verdict> {
        self.helper_s += helper_s;
        self.own_s += own_s.max(0.0);
        if self.helper_s < JUDGE_AFTER_S {
            return None;
        }
        let verdict = Verdict {
            carried: carried(self.helper_s, self.own_s),
            helper_s: self.helper_s,
            own_s: self.own_s,
        };
        *self = Tally {
            misses: if verdict.carried { 0 } else { self.misses + 1 },
            ..Tally::default()
        };
        Some(verdict)
    }
}

/// Whether the run's device, `own_s` compiling what the helpers had compiled in `helper_s`
/// (at least [`JUDGE_AFTER_S`], both as [`CompileAhead::compiling_s`] counts them), found
/// their work in a cache: it took well under their time.
///
/// Compiling only: uploading inputs is repeated by every device, and comparing
/// compiling-and-uploading turned the helpers off on a hit
/// (the 1024³ matmul on a slow host: 1.1 s on the run's device against the helpers' 2.0,
/// 0.0 s of it in first dispatches): that fresh quick run compiled for 41 s, two on the
/// same slow host that kept their helpers for 35 and 36.
fn carried(helper_s: f64, own_s: f64) -> bool {
    own_s < 0.6 * helper_s
}

/// What [`wanted`] needs to know of the run's adapter.
#[derive(Debug, Clone, Copy)]
struct Adapter {
    /// llvmpipe on Vulkan: compiles on the first dispatch, one queue thread per device.
    lavapipe: bool,
    /// A GL adapter: its devices share one context, locked by each in turn.
    gl: bool,
    /// A Mesa driver, whose shader cache `MESA_SHADER_CACHE_DISABLE` turns off.
    mesa: bool,
}

/// Whether to compile ahead, given `PRICEPERF_COMPILE_AHEAD` (`switch`: on, off, or unset:
/// on lavapipe only) and `MESA_SHADER_CACHE_DISABLE` (a boolean as Mesa reads it: 1, true,
/// yes, y, t), which leaves a Mesa driver nowhere to put the helpers' work. Never on GL.
fn wanted(switch: Option<bool>, adapter: Adapter, mesa_cache_disable: Option<&str>) -> bool {
    let cache_off = adapter.mesa
        && mesa_cache_disable.is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "y" | "t"
            )
        });
    !adapter.gl && !cache_off && switch.unwrap_or(adapter.lavapipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_pool_compiles_for_each_benchmark_and_hands_over_what_it_asks_for() {
        use crate::candidates::BenchInputs;
        use crate::shape::DType;
        use crate::suite::{Benchmark, Op};
        let Ok(gpu) = Gpu::open(std::env::var("PRICEPERF_ADAPTER").ok().as_deref()) else {
            eprintln!("skipping GPU test: no adapter");
            return;
        };
        let Some(ahead) = CompileAhead::new(&gpu, Duration::from_secs(60)) else {
            eprintln!("skipping: no helper devices on this adapter or with one core");
            return;
        };
        assert!(!ahead.proven(), "no verdict yet");
        let benches: Vec<Benchmark> = ["m=24,n=16,k=8", "m=5,n=7,k=9"]
            .iter()
            .map(|s| Benchmark::new(Op::parse("matmul", s).unwrap(), DType::F32))
            .collect();
        let inputs: Vec<BenchInputs> = benches.iter().map(|b| BenchInputs::random(b, 7)).collect();
        // Cheap variants that build on any adapter: three for the first benchmark, one for
        // the second, so that what is handed over shows whose it is.
        let cheap = ["naive", "tiled_64x64x16_t4x4", "reg_w8x8_t4x4"];
        let candidates: Vec<Vec<Candidate<'_>>> = inputs
            .iter()
            .map(|i| i.candidates(&|v: &str| cheap.contains(&v)))
            .collect();
        let ids: Vec<String> = benches.iter().map(Benchmark::id).collect();
        let work = vec![
            (ids[0].clone(), candidates[0].iter().collect::<Vec<_>>()),
            (ids[1].clone(), candidates[1].iter().take(1).collect()),
        ];
        assert_eq!((work[0].1.len(), work[1].1.len()), (3, 1));
        assert!(ahead.suite(&work).is_none(), "not before a verdict");
        ahead.proven.set(true);
        let done = ahead.suite(&work).expect("pooled");
        assert_eq!((done.benchmarks, done.variants), (2, 4));
        assert!(done.helper_s > 0.0, "{done:?}");
        // The first asks for two of its three: only those count.
        let mine = ahead.compile(&ids[0], &work[0].1[..2]).expect("pooled");
        assert_eq!((mine.variants, mine.pooled, mine.wall_s), (2, 2, 0.0));
        // The second asks for one more than the pool compiled: that one is compiled now.
        let asked: Vec<&Candidate<'_>> = candidates[1].iter().take(2).collect();
        let mine = ahead.compile(&ids[1], &asked).expect("pooled");
        assert_eq!((mine.variants, mine.pooled), (2, 1));
        assert!(mine.wall_s > 0.0, "{mine:?}");
        // Handed over once: asked again, a lone variant is left to the run's device.
        assert!(ahead.compile(&ids[1], &asked[..1]).is_none());
        // With the helpers turned off, nothing is done and nothing claims to be.
        *ahead.helpers.borrow_mut() = Some(Vec::new());
        assert!(ahead.compile(&ids[0], &work[0].1).is_none());
        assert!(!ahead.proven());
    }

    #[test]
    fn the_queue_holds_back_a_variant_being_compiled_and_lets_the_rest_go_ahead() {
        let q = Queue::new(vec!["a", "b", "a", "c", "a"]);
        let first = q.take().unwrap();
        let second = q.take().unwrap();
        assert_eq!((first.item, second.item), (0, 1));
        // Item 2 is "a" again, which item 0 is compiling: "c" goes first.
        let third = q.take().unwrap();
        assert_eq!(third.item, 3);
        drop(first);
        // "a" is free: the waiting item 2, before anything later.
        let fourth = q.take().unwrap();
        assert_eq!(fourth.item, 2);
        drop((second, third, fourth));
        assert_eq!(q.take().map(|t| t.item), Some(4));
        assert!(q.take().is_none());
    }

    #[test]
    fn helper_threads_take_every_item_once_and_never_one_variant_twice_at_once() {
        // Fewer names than threads: most takes find their next variant busy and wait.
        let variants: Vec<String> = (0..60).map(|i| format!("v{}", i % 2)).collect();
        let q = Queue::new(variants.iter().map(String::as_str).collect());
        let taken = Mutex::new(Vec::new());
        let busy = Mutex::new(Vec::<usize>::new());
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    while let Some(t) = q.take() {
                        let variant = &variants[t.item];
                        {
                            let mut b = busy.lock().unwrap();
                            assert!(
                                b.iter().all(|&i| variants[i] != *variant),
                                "{variant} compiled twice at once"
                            );
                            b.push(t.item);
                        }
                        std::thread::sleep(Duration::from_micros(200));
                        busy.lock().unwrap().retain(|&i| i != t.item);
                        taken.lock().unwrap().push(t.item);
                    }
                });
            }
        });
        let mut taken = taken.into_inner().unwrap();
        taken.sort_unstable();
        assert_eq!(taken, (0..60).collect::<Vec<_>>());
    }

    #[test]
    fn a_helper_waiting_for_a_busy_variant_takes_it_once_it_is_free() {
        let q = Queue::new(vec!["a", "a"]);
        let first = q.take().unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| q.take().map(|t| t.item));
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !waiter.is_finished(),
                "took a variant that was being compiled"
            );
            drop(first);
            assert_eq!(waiter.join().unwrap(), Some(1));
        });
        assert!(q.take().is_none());
    }

    #[test]
    fn helpers_whose_work_was_compiled_again_did_not_pay() {
        // Measured on the 2-core VM: 5.9 s on the helpers, 0.0-0.1 s on the run's device.
        assert!(carried(5.9, 0.1));
        // A run's hits, which still load from Mesa's disk cache.
        assert!(carried(8.0, 1.5));
        // Compiled again: with the cache made unusable, 2.6 s of the helpers' 3.1.
        assert!(!carried(3.1, 2.6));
        assert!(!carried(2.0, 1.7));
        assert!(!carried(5.9, 4.5));
    }

    #[test]
    fn verdicts_come_every_two_seconds_of_helper_compiling_and_start_afresh() {
        let mut tally = Tally::default();
        // One gemv's hit: too little to judge.
        assert_eq!(tally.add(1.1, 0.6), None);
        // With the next benchmark's hit it is judged carried.
        let v = tally.add(2.0, 0.0).unwrap();
        assert!(v.carried && (v.helper_s - 3.1).abs() < 1e-9, "{v:?}");
        // Many hits, then the cache stops working: the miss is judged on its own.
        for _ in 0..20 {
            assert!(tally.add(2.5, 0.2).unwrap().carried);
        }
        assert!(!tally.add(2.0, 1.7).unwrap().carried);
        assert_eq!(tally.misses, 1);
        // A recreated device's count never makes a negative share.
        assert_eq!(tally.add(0.5, -3.0), None);
        assert!(!tally.add(1.5, 1.6).unwrap().carried);
        assert_eq!(tally.misses, 2);
        // A hit in between starts the count again.
        assert!(tally.add(2.0, 0.1).unwrap().carried);
        assert_eq!(tally.misses, 0);
    }

    #[test]
    fn on_by_default_on_lavapipe_only_never_on_gl_nor_without_mesas_cache() {
        let lavapipe = Adapter {
            lavapipe: true,
            gl: false,
            mesa: true,
        };
        let gl_llvmpipe = Adapter {
            lavapipe: false,
            gl: true,
            mesa: true,
        };
        let nvidia = Adapter {
            lavapipe: false,
            gl: false,
            mesa: false,
        };
        let radv = Adapter {
            lavapipe: false,
            gl: false,
            mesa: true,
        };
        for (switch, adapter, cache, want) in [
            (None, lavapipe, None, true),
            (None, nvidia, None, false),
            (None, radv, None, false),
            (Some(true), nvidia, None, true),
            (Some(true), radv, None, true),
            (Some(false), lavapipe, None, false),
            (None, gl_llvmpipe, None, false),
            (Some(true), gl_llvmpipe, None, false),
            // Mesa's switch, read as Mesa reads it, for Mesa's drivers only.
            (None, lavapipe, Some("1"), false),
            (None, lavapipe, Some("true"), false),
            (None, lavapipe, Some("YES"), false),
            (None, lavapipe, Some("t"), false),
            (Some(true), lavapipe, Some("y"), false),
            (Some(true), radv, Some("1"), false),
            (None, lavapipe, Some("0"), true),
            (None, lavapipe, Some("false"), true),
            (None, lavapipe, Some(""), true),
            (Some(true), nvidia, Some("1"), true),
        ] {
            assert_eq!(
                wanted(switch, adapter, cache),
                want,
                "{switch:?} {adapter:?} {cache:?}"
            );
        }
    }
}
