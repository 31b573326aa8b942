//! One benchmark of a run: every variant compiled (ahead, on helper devices, where that
//! pays), verified against the CPU reference and, in a tuning search, screened and run in a
//! final before the winner is measured in full; the chosen mark; the native CPU GEMM beside
//! it on CPU adapters; and where the benchmark's time went. Also which variants a benchmark
//! builds, for the helpers to compile the rest of the suite's ahead in one pool.

use std::time::{Duration, Instant};

use criterion::Criterion;

use crate::candidates::{BenchInputs, Candidate};
use crate::compile_ahead::{CompileAhead, Compiled, SuiteCompiled};
use crate::gpu::Gpu;
use crate::kernels::matmul::MatmulInputs;
use crate::kernels::{PrepareError, Program};
use crate::measure::criterion_glue::{measure, Measured, Sampling, ScratchCriterion};
use crate::measure::{prime, run_timed_and_read, DeviceTrouble, Stats, Timer, TimingMethod};
use crate::native;
use crate::results::{self, KernelRow, Status};
use crate::suite::{Benchmark, Op};
use crate::tuning::ScreenHistory;
use crate::verify;

use super::RunConfig;

/// Every variant of one benchmark (or `only` the cached tuning choice), then the chosen mark
/// on the fastest verified one. On CPU adapters a matmul also gets the native GEMM row.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_benchmark(
    gpu: &mut Gpu,
    criterion: &mut Criterion,
    sampling: &Sampling,
    config: &RunConfig,
    budget_s: Option<f64>,
    bench: &Benchmark,
    only: Option<&str>,
    history: Option<&mut ScreenHistory>,
    ahead: Option<&CompileAhead>,
    out: &mut Collected,
) -> Vec<KernelRow> {
    let inputs = BenchInputs::random(bench, config.seed);
    // Variants share the weights they stage, within this benchmark only.
    gpu.staged.clear();
    let mut rows = run_candidates(
        gpu,
        criterion,
        sampling,
        config,
        budget_s,
        bench,
        inputs.candidates(&kept(config, only)),
        only,
        history,
        ahead,
        out,
    );
    gpu.staged.clear();
    // The native GEMM yardstick, on CPU adapters (its reference is the matmul's own).
    if gpu.summary.is_cpu() && wanted(config, native::VARIANT) {
        if let (Op::Matmul(shape), Some((matmul_inputs, reference))) = (bench.op, inputs.matmul()) {
            let t = Instant::now();
            rows.extend(run_native(
                gpu,
                criterion,
                sampling,
                budget_s,
                bench,
                &shape,
                matmul_inputs,
                reference,
                out,
            ));
            out.native_s += t.elapsed().as_secs_f64();
        }
    }
    rows
}

/// Verify and measure `candidates`. A tuning search (nothing cached, no `--variant`) screens
/// every verified variant with a few short timings; the finalists
/// ([`crate::tuning::finalists`]) take turns in a final ([`take_turns`]), and the one with
/// the lowest median is measured in full and chosen. The other rows keep their screening or
/// final timings, with a note saying so.
#[allow(clippy::too_many_arguments)]
fn run_candidates(
    gpu: &mut Gpu,
    criterion: &mut Criterion,
    sampling: &Sampling,
    config: &RunConfig,
    budget_s: Option<f64>,
    bench: &Benchmark,
    candidates: Vec<Candidate<'_>>,
    only: Option<&str>,
    history: Option<&mut ScreenHistory>,
    ahead: Option<&CompileAhead>,
    out: &mut Collected,
) -> Vec<KernelRow> {
    use crate::tuning::{
        finalists, screen_plan, verification_is_screen, verification_opens_screen, warm_up_runs,
        MAX_FINALISTS, SCREEN_CUTOFF, SCREEN_SAMPLE,
    };
    // Criterion takes at least one iteration per sample plus warm-up.
    let full_iterations = sampling.sample_size as f64 + 1.0;
    let screening = searching(config, only, candidates.len());
    if !screening {
        let ahead = compile_ahead(gpu, ahead, bench, candidates.iter().collect(), out);
        let mut rows = Vec::with_capacity(candidates.len());
        for c in &candidates {
            let row = match verify_candidate(gpu, config, bench, c, out) {
                Ok(v) => match over_budget(v.first_run_s * full_iterations, budget_s, bench) {
                    Some(why) => skipped(v.row, why),
                    None => measure_verified(gpu, criterion, sampling, config, v, out),
                },
                Err(row) => *row,
            };
            rows.push(row);
        }
        mark_chosen(&mut rows, |_| true);
        check_carried(gpu, ahead, out);
        return rows;
    }
    // Screen, last variant first: the list runs from the simplest kernels to the most
    // specialised, so the fast ones set the cutoff before the slow ones are timed. Rows stay
    // in list order. `screened` holds (row index, fastest screening time, timings) of every
    // screened variant, `kept` the verified programs of the fastest few, for the final
    // measurement.
    let mut rows: Vec<Option<KernelRow>> = vec![None; candidates.len()];
    let mut screened: Vec<(usize, f64, Vec<f64>)> = Vec::new();
    // Rows whose screen is their verification run ([`verification_is_screen`]).
    let mut screened_by_verification: Vec<usize> = Vec::new();
    let mut kept: Vec<(usize, f64, Verified)> = Vec::new();
    // Programs belong to a device: when device trouble replaces it, the kept ones are gone.
    let mut device = gpu.device.clone();
    let mut forget_lost = |gpu: &Gpu, kept: &mut Vec<(usize, f64, Verified)>| {
        if gpu.device != device {
            kept.clear();
            device = gpu.device.clone();
        }
    };
    // Variants that kept losing widely on earlier benchmarks of this regime are left out,
    // as are, on llvmpipe, the ones built on per-lane storage loads and the ones a sibling
    // always beat there, and on GPUs the lavapipe designs that read operands through
    // uniform windows; unless nothing else verifies.
    let left_out = left_out_on(&gpu.summary);
    let prune = pruned(&gpu.summary, history.as_deref(), bench, &candidates);
    let mut order = search_order(&prune);
    let (mut screen_rounds, mut finalist_margin) = screen_plan(order.len());
    let mut ahead = compile_ahead(
        gpu,
        ahead,
        bench,
        order.iter().map(|&i| &candidates[i]).collect(),
        out,
    );
    let mut next = 0;
    // Whether any variant verified: if one did but was over the budget, the pruned ones,
    // slower still, would be too.
    let mut verified_any = false;
    loop {
        if next == order.len() {
            if verified_any || order.len() == candidates.len() {
                break;
            }
            crate::progress::notice(&format!(
                "priceperf: no unpruned variant of {} verified; trying the pruned ones",
                bench.id()
            ));
            // The helpers compiled none of those: judge them by what they did compile.
            check_carried(gpu, ahead.take(), out);
            order.extend((0..candidates.len()).rev().filter(|&i| prune[i].is_some()));
            (screen_rounds, finalist_margin) = screen_plan(order.len() - next);
            continue;
        }
        let idx = order[next];
        next += 1;
        let c = &candidates[idx];
        forget_lost(gpu, &mut kept);
        let v = match verify_candidate(gpu, config, bench, c, out) {
            Ok(v) => v,
            Err(row) => {
                rows[idx] = Some(*row);
                continue;
            }
        };
        verified_any = true;
        // A slow kernel's screen is at most three single iterations, after a warm-up.
        let screen_runs = 3.0 + warm_up_runs(gpu.summary.is_cpu());
        if let Some(why) = over_budget(v.first_run_s * screen_runs, budget_s, bench) {
            rows[idx] = Some(skipped(v.row, why));
            continue;
        }
        let fastest = screened.iter().map(|s| s.1).min_by(f64::total_cmp);
        let first_ns = v.first_run_s * 1e9;
        let first_run = Duration::from_secs_f64(v.first_run_s);
        if verification_is_screen(gpu.summary.is_cpu(), first_run, fastest) {
            if let Some(stats) = Stats::of(&[first_ns]) {
                let mut row = v.row.clone().measured(&stats);
                row.timing = Some(TimingMethod::Wall);
                rows[idx] = Some(row);
                screened.push((idx, first_ns, vec![first_ns]));
                screened_by_verification.push(idx);
                continue;
            }
        }
        crate::progress::step(&c.variant, "screening");
        let timer = Timer::new(gpu, config.timeout);
        let wall = timer.method() == TimingMethod::Wall;
        let once =
            verification_opens_screen(gpu.summary.is_cpu(), wall, first_run).then_some(first_run);
        let t = Instant::now();
        let result = warm_up(gpu, &timer, &v.program, out).and_then(|()| {
            timer.screen(
                gpu,
                &v.program,
                once,
                screen_rounds,
                SCREEN_SAMPLE,
                fastest.map(|f| f * SCREEN_CUTOFF),
            )
        });
        out.screen_s += t.elapsed().as_secs_f64();
        match result {
            Ok(samples) => {
                let best = samples.iter().copied().fold(f64::INFINITY, f64::min);
                let mut row = v.row.clone();
                row.timing = Some(timer.method());
                if let Some(stats) = Stats::of(&samples) {
                    row = row.measured(&stats);
                    screened.push((idx, best, samples));
                    kept.push((idx, best, v));
                    kept.sort_by(|a, b| a.1.total_cmp(&b.1));
                    kept.truncate(MAX_FINALISTS);
                } else {
                    row.status = Status::Failed;
                    row.note = "every screening timing was zero or not finite; the timer is unusable (try PRICEPERF_TIMING=wall)".into();
                }
                rows[idx] = Some(row);
            }
            Err(trouble) => rows[idx] = Some(device_trouble(gpu, v.row, trouble)),
        }
    }
    forget_lost(gpu, &mut kept);
    check_carried(gpu, ahead, out);
    let mut rows: Vec<KernelRow> = rows
        .into_iter()
        .zip(candidates.iter().zip(prune))
        .map(|(row, (c, why))| match (row, why) {
            (Some(row), _) => row,
            (None, Some(why)) => {
                match left_out(c) {
                    Some(reason) => out.left_out.push(reason),
                    None => out.pruned += 1,
                }
                skipped(blank_row(gpu, bench, &c.variant), why)
            }
            (None, None) => unreachable!("every unpruned candidate got a row"),
        })
        .collect();
    let finals = finalists(
        &screened.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
        finalist_margin,
    );
    let fastest = screened.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    if let Some(h) = history {
        // Every screen's fastest timing is amortised over many dispatches, or is a single
        // dispatch of SINGLE_TIMING_MIN (1 ms) or more, whose submission costs (0.1-0.2 ms
        // on lavapipe) are small against the prune ratio: all are evidence, the one-timing
        // screens of searches that fit in the final included.
        for (idx, best, _) in &screened {
            h.record(bench, &rows[*idx].variant, best / fastest);
        }
    }
    let mut finalist_notes = Vec::new();
    // Fastest screen first, as `kept` is.
    let mut contenders: Vec<(usize, f64, Verified)> = Vec::new();
    for (idx, best, v) in kept {
        if !finals.contains(&idx) {
            continue;
        }
        // Criterion's iterations, plus at most three single-iteration turns in the final,
        // after a warm-up.
        let final_runs = 3.0 + warm_up_runs(gpu.summary.is_cpu());
        match over_budget(
            best * 1e-9 * (full_iterations + final_runs),
            budget_s,
            bench,
        ) {
            Some(why) => finalist_notes.push((idx, why)),
            None => contenders.push((idx, best, v)),
        }
    }
    // The final: the contenders take turns; the one with the lowest median is measured in
    // full, the others keep their turns' timings.
    let mut finished = Vec::new();
    if contenders.len() > 1 {
        let device = gpu.device.clone();
        let t = Instant::now();
        let turns = take_turns(gpu, config, &contenders, out);
        out.screen_s += t.elapsed().as_secs_f64();
        match turns {
            Ok(Final { turns, active }) => {
                let medians: Vec<f64> = turns
                    .iter()
                    .map(|t| Stats::of(t).map_or(f64::INFINITY, |s| s.median_ns))
                    .collect();
                // The winner is among those still in the final at its end.
                let w = (0..medians.len())
                    .filter(|&i| active[i])
                    .min_by(|&a, &b| medians[a].total_cmp(&medians[b]))
                    .expect("one contender stays in the final");
                for (i, ((idx, _, v), samples)) in contenders.iter().zip(turns).enumerate() {
                    if i == w {
                        continue;
                    }
                    // Unusable timings leave the row as the screen made it.
                    let Some(stats) = Stats::of(&samples) else {
                        continue;
                    };
                    let mut row = v.row.clone().measured(&stats);
                    row.timing = rows[*idx].timing;
                    let left = if !active[i] {
                        " (each slower than every timing of the leader's but its slowest, so it left the final early)"
                    } else {
                        ""
                    };
                    row.note = format!(
                        "tuning final only: {} timings taken in turns with the other finalists{left}, median {:.2}x the winner's in the final; measure it in full with --variant '^{}$'",
                        samples.len(),
                        medians[i] / medians[w],
                        row.variant
                    );
                    out.samples.push((row.variant.clone(), samples));
                    rows[*idx] = row;
                    finished.push(*idx);
                }
                let winner = contenders.swap_remove(w);
                contenders = vec![winner];
            }
            Err((i, trouble, mut active)) => {
                let (idx, _, v) = contenders.remove(i);
                active.remove(i);
                rows[idx] = device_trouble(gpu, v.row, trouble);
                finished.push(idx);
                if gpu.device != device {
                    // The other programs belonged to the lost device.
                    contenders.clear();
                }
                // Otherwise the fastest screen of those still in the final goes on (those
                // outpaced keep their screens' rows).
                let mut still_in = active.into_iter();
                contenders.retain(|_| still_in.next().unwrap_or(false));
                contenders.truncate(1);
            }
        }
    }
    let mut measured = Vec::new();
    for (idx, _, v) in contenders {
        rows[idx] = measure_verified(gpu, criterion, sampling, config, v, out);
        measured.push(idx);
    }
    for (idx, best, samples) in screened {
        if measured.contains(&idx) || finished.contains(&idx) {
            continue;
        }
        let row = &mut rows[idx];
        let ratio = best / fastest;
        let timings = match samples.len() {
            _ if screened_by_verification.contains(&idx) => {
                "its verification run (one dispatch, wall clock)".to_string()
            }
            1 => "1 short timing".to_string(),
            n => format!("{n} short timings"),
        };
        row.note = format!(
            "tuning screen only: {timings}, {ratio:.2}x the fastest screen; measure it in full with --variant '^{}$'",
            row.variant
        );
        if let Some((_, why)) = finalist_notes.iter().find(|(i, _)| *i == idx) {
            row.note = format!("{}; a finalist, {why}", row.note);
        }
        out.samples.push((row.variant.clone(), samples));
    }
    // Among the rows measured in full; if none of them got a time (device trouble, unusable
    // samples), among the screened and final ones.
    let timed = |r: &KernelRow| r.status == Status::Ok && r.median_ns.is_some();
    let any_measured = measured.iter().any(|&i| timed(&rows[i]));
    mark_chosen(&mut rows, |i| !any_measured || measured.contains(&i));
    rows
}

/// Why the search leaves each of `candidates` out, if it does: on llvmpipe or on GPUs for
/// how it loads its operands ([`left_out_on`]), or for losing widely on earlier benchmarks
/// ([`ScreenHistory`]); none of them without a history (pruning turned off).
fn pruned(
    adapter: &crate::gpu::AdapterSummary,
    history: Option<&ScreenHistory>,
    bench: &Benchmark,
    candidates: &[Candidate<'_>],
) -> Vec<Option<String>> {
    let left_out = left_out_on(adapter);
    candidates
        .iter()
        .map(|c| {
            let h = history?;
            if let Some(why) = left_out(c) {
                return Some(crate::tuning::left_out_note(&c.variant, why));
            }
            h.pruned(bench, &c.variant)
        })
        .collect()
}

/// The order a search takes the candidates not `pruned` in: the last first. The list runs
/// from the simplest kernels to the most specialised, so the fast ones set the screen's
/// cutoff before the slow ones are timed.
fn search_order(pruned: &[Option<String>]) -> Vec<usize> {
    (0..pruned.len())
        .rev()
        .filter(|&i| pruned[i].is_none())
        .collect()
}

/// Inputs of the benchmarks one [`compile_suite_ahead`] covers, at most: each helper holds
/// one variant's at a time, but the candidates of every covered benchmark borrow theirs
/// until the helpers are done.
const SUITE_INPUT_BYTES: u64 = 1 << 30;

/// The variants a benchmark measures: those `--variant` selects, and of them `only` the
/// cached tuning choice if there is one.
fn kept<'a>(config: &'a RunConfig, only: Option<&'a str>) -> impl Fn(&str) -> bool + 'a {
    move |name: &str| wanted(config, name) && only.is_none_or(|o| o == name)
}

/// Whether a benchmark's `candidates` candidates are searched (screened, the fastest few
/// run in a final, the winner measured in full) rather than each measured in full: with
/// no cached choice and no `--variant`. Even two or three variants are screened and
/// finalled: one full measurement instead of three saved about 10 s of a cold quick run.
fn searching(config: &RunConfig, only: Option<&str>, candidates: usize) -> bool {
    only.is_none() && config.variants.is_none() && candidates > 1
}

/// Compile ahead, pooled on the helper devices ([`CompileAhead::suite`]), what the first
/// of `benches` and those after it will build, as [`run_benchmark`] picks it ([`kept`],
/// [`searching`], [`pruned`]), with `cached` giving each one's cached tuning choice: as
/// many benchmarks as keep their inputs within [`SUITE_INPUT_BYTES`], one at least.
/// Returns how many it covered (none before the helpers are proven), what the helpers did
/// (`None` if nothing), and the seconds it took, making the inputs included.
///
/// Planned now, the pool cannot know what the benchmarks it covers will change: a variant
/// pruned after the pool was compiled for nothing, and so was the search of a shape class
/// that an earlier benchmark's search then cached a choice for. [`CompileAhead::compile`]
/// counts only what a benchmark asks for.
pub(super) fn compile_suite_ahead(
    gpu: &Gpu,
    config: &RunConfig,
    benches: &[Benchmark],
    cached: &dyn Fn(&Benchmark) -> Option<String>,
    history: Option<&ScreenHistory>,
    helpers: &CompileAhead,
) -> (usize, Option<SuiteCompiled>, f64) {
    if !helpers.proven() {
        return (0, None, 0.0);
    }
    let started = Instant::now();
    let mut bytes = 0;
    let covered = benches
        .iter()
        .take_while(|b| {
            bytes += b.op.bytes(b.dtype);
            bytes <= SUITE_INPUT_BYTES
        })
        .count()
        .clamp(1, benches.len());
    let benches = &benches[..covered];
    // The helpers only compile: zeros will do.
    let inputs: Vec<BenchInputs> = benches
        .iter()
        .map(|b| BenchInputs::zeros(b, config.seed))
        .collect();
    let candidates: Vec<(Vec<Candidate<'_>>, Option<String>)> = benches
        .iter()
        .zip(&inputs)
        .map(|(b, inputs)| {
            let only = cached(b);
            let candidates = inputs.candidates(&kept(config, only.as_deref()));
            (candidates, only)
        })
        .collect();
    let work: Vec<(String, Vec<&Candidate<'_>>)> = benches
        .iter()
        .zip(&candidates)
        .map(|(b, (cs, only))| {
            let order = if searching(config, only.as_deref(), cs.len()) {
                search_order(&pruned(&gpu.summary, history, b, cs))
            } else {
                (0..cs.len()).collect()
            };
            (b.id(), order.into_iter().map(|i| &cs[i]).collect())
        })
        .collect();
    let done = helpers.suite(&work);
    (covered, done, started.elapsed().as_secs_f64())
}

/// What [`compile_ahead`] did for a benchmark, to check afterwards that it paid.
struct Ahead<'h> {
    helpers: &'h CompileAhead,
    compiled: Compiled,
    /// The run's device's compiling before ([`CompileAhead::compiling_s`]): what comes
    /// after is of variants the helpers compiled.
    compiling_before_s: f64,
}

/// Compile `these` on the helper devices, if there are any ([`crate::compile_ahead`]); the
/// wait counts as compiling.
fn compile_ahead<'h>(
    gpu: &Gpu,
    helpers: Option<&'h CompileAhead>,
    bench: &Benchmark,
    these: Vec<&Candidate<'_>>,
    out: &mut Collected,
) -> Option<Ahead<'h>> {
    let helpers = helpers?;
    let compiled = helpers.compile(&bench.id(), &these)?;
    out.compile_s += compiled.wall_s;
    out.ahead = Some(compiled);
    Some(Ahead {
        helpers,
        compiled,
        compiling_before_s: helpers.compiling_s(gpu, out.first_dispatch_s),
    })
}

/// Turn the helpers off, with a notice, when this device's building and first dispatches
/// of what they compiled were not cache hits ([`CompileAhead::check_carried`]).
fn check_carried(gpu: &Gpu, ahead: Option<Ahead<'_>>, out: &Collected) {
    let Some(a) = ahead else { return };
    let own_s = a.helpers.compiling_s(gpu, out.first_dispatch_s) - a.compiling_before_s;
    if let Some(notice) = a.helpers.check_carried(a.compiled, own_s) {
        crate::progress::notice(&notice);
    }
}

/// The tuning final ([`crate::tuning::FINAL_ROUNDS`]): each contender (index, fastest
/// screen in ns, program) runs about [`crate::tuning::SCREEN_SAMPLE`] per turn, in turns
/// whose order reverses every other round ([`crate::tuning::turn_order`]), until one is
/// left of those not outpaced ([`crate::tuning::outpaced`]) or the rounds are done;
/// nanoseconds per iteration of each, or the contender that ran into device trouble (with
/// which contenders were still in the final then).
fn take_turns(
    gpu: &Gpu,
    config: &RunConfig,
    contenders: &[(usize, f64, Verified)],
    out: &mut Collected,
) -> std::result::Result<Final, (usize, DeviceTrouble, Vec<bool>)> {
    use crate::tuning::{turn_order, FINAL_ROUNDS, SCREEN_SAMPLE};
    let timer = Timer::new(gpu, config.timeout);
    // The first turn's contender warms an idle GPU for all of them.
    // Contenders still in the final: one outpaced by the leader leaves it, and the final
    // ends when one is left.
    let mut active = vec![true; contenders.len()];
    if let Some((_, _, v)) = contenders.first() {
        crate::progress::step(&v.row.variant, "final");
        warm_up(gpu, &timer, &v.program, out).map_err(|e| (0, e, active.clone()))?;
    }
    // Sized and capped as the screen's timings are ([`crate::measure::iters_for`]): a kernel
    // under about 3.7 µs runs 4096 dispatches a turn, shorter than SCREEN_SAMPLE, as in its
    // screen, and a screen of a few nanoseconds (a timer gone wrong) cannot make a turn run
    // millions of dispatches.
    let iters: Vec<u64> = contenders
        .iter()
        .map(|(_, best, _)| crate::measure::iters_for(SCREEN_SAMPLE, best * 1e-9))
        .collect();
    // A kernel slower than a turn runs three single iterations, as in the screen: the final
    // must not cost more than measuring it.
    let rounds = if iters.contains(&1) { 3 } else { FINAL_ROUNDS };
    let mut turns = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds {
        for i in turn_order(round, contenders.len()) {
            if !active[i] {
                continue;
            }
            let v = &contenders[i].2;
            crate::progress::step(&v.row.variant, "final");
            let d = timer
                .time(gpu, &v.program, iters[i])
                .map_err(|e| (i, e, active.clone()))?;
            turns[i].push(d.as_nanos() as f64 / iters[i] as f64);
        }
        // After the last round there is nothing left to save, and a contender dropped then
        // would be said to have left early.
        if round + 1 == rounds {
            break;
        }
        for (i, gone) in crate::tuning::outpaced(&turns, &active)
            .into_iter()
            .enumerate()
        {
            active[i] &= !gone;
        }
        if active.iter().filter(|a| **a).count() == 1 {
            break;
        }
    }
    Ok(Final { turns, active })
}

/// What a final did: each contender's timings (nanoseconds per iteration), and which
/// contenders were still in it at its end (the others left it outpaced).
struct Final {
    turns: Vec<Vec<f64>>,
    active: Vec<bool>,
}

/// Run `program` untimed first when the device is a GPU that has run no timed work for
/// long enough to lower its clocks ([`Gpu::idle_for`],
/// [`crate::tuning::warm_up_before_timing`]): compiling, a verification's single dispatch
/// and the host's check of it all leave it idle. The seconds count in `out.warm_up_s`.
fn warm_up(
    gpu: &Gpu,
    timer: &Timer,
    program: &Program,
    out: &mut Collected,
) -> Result<(), DeviceTrouble> {
    use crate::tuning::{warm_up_before_timing, SCREEN_SAMPLE};
    let Some(span) = warm_up_before_timing(gpu.summary.is_cpu(), gpu.idle_for()) else {
        return Ok(());
    };
    let t = Instant::now();
    let warmed = timer.warm(gpu, program, span, SCREEN_SAMPLE);
    out.warm_up_s += t.elapsed().as_secs_f64();
    warmed.map(|_| ())
}

/// Mark the fastest measured row among those `eligible` (by index) as chosen.
fn mark_chosen(rows: &mut [KernelRow], eligible: impl Fn(usize) -> bool) {
    if let Some((_, best)) = rows
        .iter_mut()
        .enumerate()
        .filter(|(i, r)| eligible(*i) && r.status == Status::Ok && r.median_ns.is_some())
        .min_by(|(_, a), (_, b)| {
            a.median_ns
                .unwrap_or(f64::MAX)
                .total_cmp(&b.median_ns.unwrap_or(f64::MAX))
        })
    {
        best.chosen = true;
    }
}

/// The native CPU GEMM on the same shape (CPU adapters, f32): verified, then measured by the
/// same criterion engine with wall-clock time. Never chosen, never priced.
#[allow(clippy::too_many_arguments)]
fn run_native(
    gpu: &Gpu,
    criterion: &mut Criterion,
    sampling: &Sampling,
    budget_s: Option<f64>,
    bench: &Benchmark,
    shape: &crate::shape::MatmulShape,
    inputs: &MatmulInputs,
    reference: &verify::matmul::Reference,
    out: &mut Collected,
) -> Option<KernelRow> {
    let mut gemm = native::NativeGemm::new(shape, inputs)?;
    crate::progress::step(native::VARIANT, "verifying");
    let mut row = blank_row(gpu, bench, native::VARIANT);
    row.backend = "native-cpu".into();
    row.driver = "matrixmultiply 0.3".into();
    let first = gemm.time(1).as_secs_f64();
    let verdict = reference.check(&gemm.output());
    row.max_rel_err = Some(verdict.max_err).filter(|e| e.is_finite());
    if !verdict.passed {
        row.status = Status::Failed;
        row.note = format!("verification: {}", verdict.failure.unwrap_or_default());
        return Some(row);
    }
    row.verified = true;
    if budget_s.is_some_and(|b| first * (sampling.sample_size as f64 + 1.0) > b) {
        row.note = "verified; over the suite's time budget".into();
        return Some(row);
    }
    row.timing = Some(crate::measure::TimingMethod::Wall);
    row.note = "native CPU GEMM on the same cores, for comparison; never priced".into();
    // All of it counts as the yardstick's time (`native_s`), criterion's analysis included.
    match measure(
        criterion,
        &row.benchmark,
        &row.variant,
        bench.op.flops(),
        sampling,
        |iters| Ok(gemm.time(iters)),
    )
    .0
    {
        Measured::Samples(samples) => {
            let stats = Stats::of(&samples)?;
            out.samples.push((row.variant.clone(), samples.clone()));
            Some(row.measured(&stats))
        }
        _ => {
            row.note = "verified; not measured".into();
            Some(row)
        }
    }
}

/// What measuring one benchmark collects besides its rows: the raw samples (for compare's
/// rank test) and where the time went.
#[derive(Default)]
pub(super) struct Collected {
    pub(super) samples: Vec<(String, Vec<f64>)>,
    pub(super) compile_s: f64,
    /// The part of `compile_s` spent in each variant's first dispatch, where drivers that
    /// compile lazily (llvmpipe) do their work.
    first_dispatch_s: f64,
    /// The variants compiled ahead on helper devices, if they were: the part of
    /// `compile_s` spent waiting for them is its `wall_s`.
    ahead: Option<Compiled>,
    pub(super) verify_s: f64,
    /// Seconds measuring each variant: running it for criterion's warm-up and samples.
    pub(super) measure_s: Vec<(String, f64)>,
    /// Seconds of criterion's statistics and reports around those measurements: outside
    /// measured kernels.
    pub(super) analysis_s: f64,
    /// The variants measured a second time for a wide interval, and the seconds that took
    /// (also in `measure_s`).
    pub(super) repeat_s: Vec<(String, f64)>,
    /// Seconds of the tuning search's screening timings and final.
    pub(super) screen_s: f64,
    /// The part of `screen_s` spent warming an idle GPU up before timing it.
    pub(super) warm_up_s: f64,
    /// Variants the search left out for their screens on earlier benchmarks
    /// ([`ScreenHistory`]) ...
    pub(super) pruned: u32,
    /// ... and, on llvmpipe or on GPUs, for how they load their operands: why each was
    /// ([`crate::tuning::left_out_note`]).
    pub(super) left_out: Vec<crate::tuning::LeftOut>,
    pub(super) native_s: f64,
}

impl Collected {
    /// Where one benchmark's `total_s` went, for the progress lines: a first run's cost
    /// is mostly compilation, and this shows which benchmarks pay it.
    pub(super) fn describe(&self, total_s: f64) -> String {
        let measuring: f64 = self.measure_s.iter().map(|(_, s)| s).sum();
        let ahead = self.ahead.map_or(String::new(), |a| {
            let pooled = match a.pooled {
                0 => String::new(),
                n if n == a.variants => "all with the suite's; ".into(),
                n => format!("{n} with the suite's; "),
            };
            let noun = if a.variants == 1 {
                "variant"
            } else {
                "variants"
            };
            format!(
                "{} {noun} compiled ahead {:.1} ({pooled}helper devices' own time {:.1}), ",
                a.variants, a.wall_s, a.helper_s
            )
        });
        let mut line = format!(
            "time: {total_s:.1} s: compile and upload {:.1} ({ahead}first dispatches {:.1}), verify {:.1}, screening {:.1}{}, measuring {measuring:.1}",
            self.compile_s,
            self.first_dispatch_s,
            self.verify_s,
            self.screen_s,
            if self.warm_up_s > 0.0 {
                format!(" (warming the GPU up {:.1})", self.warm_up_s)
            } else {
                String::new()
            }
        );
        if self.analysis_s >= 0.05 {
            line.push_str(&format!(", criterion's analysis {:.1}", self.analysis_s));
        }
        if self.native_s > 0.0 {
            line.push_str(&format!(", native GEMM {:.1}", self.native_s));
        }
        line
    }
}

/// Why a suite's search on `adapter` leaves a candidate out, if it does: llvmpipe has its
/// list, GPUs theirs, other CPU adapters none.
fn left_out_on(
    adapter: &crate::gpu::AdapterSummary,
) -> impl Fn(&Candidate<'_>) -> Option<crate::tuning::LeftOut> {
    let (llvmpipe, gpu) = (adapter.is_llvmpipe(), !adapter.is_cpu());
    move |c: &Candidate<'_>| {
        if llvmpipe {
            c.llvmpipe_left_out
        } else if gpu {
            c.gpu_left_out
        } else {
            None
        }
    }
}

/// Whether `--variant` selects this variant.
fn wanted(config: &RunConfig, variant: &str) -> bool {
    config
        .variants
        .as_ref()
        .is_none_or(|re| re.is_match(variant))
}

fn blank_row(gpu: &Gpu, bench: &Benchmark, variant: &str) -> KernelRow {
    KernelRow {
        benchmark: bench.id(),
        kernel: bench.op.kernel().into(),
        variant: variant.into(),
        dtype: bench.dtype,
        shape: bench.op.shape(),
        adapter: gpu.summary.name.clone(),
        backend: gpu.summary.backend.clone(),
        driver: format!("{} {}", gpu.summary.driver, gpu.summary.driver_info)
            .trim()
            .to_string(),
        timing: None,
        samples: None,
        median_ns: None,
        ci_low_ns: None,
        ci_high_ns: None,
        flops: bench.op.flops(),
        bytes: bench.op.bytes(bench.dtype),
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

/// A variant that compiled and passed verification, ready to time.
struct Verified {
    row: KernelRow,
    program: Program,
    /// The verification run's wall time from submit to the end of the wait (no readback):
    /// one iteration plus the driver's first-dispatch costs.
    first_run_s: f64,
}

/// Compile `candidate` and check one run's output against the reference. Anything short of
/// a verified program comes back as the finished row (skipped, failed, device trouble),
/// boxed: a row is large and the verified path is the common one.
fn verify_candidate(
    gpu: &mut Gpu,
    config: &RunConfig,
    bench: &Benchmark,
    candidate: &Candidate<'_>,
    out: &mut Collected,
) -> std::result::Result<Verified, Box<KernelRow>> {
    crate::progress::step(&candidate.variant, "compiling");
    let mut row = blank_row(gpu, bench, &candidate.variant);
    let t = Instant::now();
    let prepared = (candidate.prepare)(gpu);
    out.compile_s += t.elapsed().as_secs_f64();
    let (program, check) = match prepared {
        Ok(p) => p,
        Err(PrepareError::Unsupported(why)) => {
            row.status = Status::Skipped;
            row.note = why;
            return Err(Box::new(row));
        }
        Err(PrepareError::Failed(why)) => {
            row.status = Status::Failed;
            row.note = format!("compile: {why}");
            return Err(Box::new(row));
        }
    };
    // The driver's first-dispatch compilation counts as compiling, not as the kernel's time.
    let t = Instant::now();
    let primed = prime(gpu, &program, config.timeout);
    let first_dispatch_s = t.elapsed().as_secs_f64();
    out.compile_s += first_dispatch_s;
    out.first_dispatch_s += first_dispatch_s;
    if let Err(trouble) = primed {
        let mut row = device_trouble(gpu, row, trouble);
        if row.status == Status::Timeout {
            row.add_note("while the driver compiled the kernel on its first dispatch (lavapipe took over a minute for head dim 256 kernels with an empty Mesa shader cache): rerun with a larger --timeout");
        }
        return Err(Box::new(row));
    }
    crate::progress::step(&row.variant, "verifying");
    let t0 = Instant::now();
    let (output, ran) = match run_timed_and_read(gpu, &program, config.timeout) {
        Ok(o) => o,
        Err(trouble) => {
            // A verification run that timed out still took the time (up to --timeout),
            // and so does recreating a lost device: verification's, not setup's.
            let row = device_trouble(gpu, row, trouble);
            out.verify_s += t0.elapsed().as_secs_f64();
            return Err(Box::new(row));
        }
    };
    let first_run_s = ran.as_secs_f64();
    let verdict = check(&output);
    out.verify_s += t0.elapsed().as_secs_f64();
    row.max_rel_err = Some(verdict.max_err).filter(|e| e.is_finite());
    if !verdict.passed {
        row.status = Status::Failed;
        row.note = format!("verification: {}", verdict.failure.unwrap_or_default());
        return Err(Box::new(row));
    }
    row.verified = true;
    Ok(Verified {
        row,
        program,
        first_run_s,
    })
}

/// Why a variant is not measured when that would take about `estimate_s`, over the suite's
/// per-variant budget; `None` within it (or with no budget).
fn over_budget(estimate_s: f64, budget_s: Option<f64>, bench: &Benchmark) -> Option<String> {
    let budget = budget_s?;
    (estimate_s > budget).then(|| {
        format!(
            "verified, but measuring would take about {estimate_s:.0} s, over the suite's {budget:.0} s per variant; run --suite full or --kernel {} --shape {} to measure it",
            bench.op.kernel(),
            bench.op.shape()
        )
    })
}

/// `row`, skipped for `why`.
fn skipped(mut row: KernelRow, why: String) -> KernelRow {
    row.status = Status::Skipped;
    row.note = why;
    row
}

/// Measure a verified variant with criterion. A measurement whose interval is wider than
/// [`results::NOISY_SPREAD`] (the machine's speed changed while it ran) is taken once more
/// and the row holds both measurements' samples pooled ([`pooled`]): more samples where
/// the time varied, and no choice between the two, since on the shared lavapipe VM the
/// narrower of two was as often the slower as the faster (0.6-1.4x each other). Criterion's
/// own report and baselines keep the first measurement. Device trouble during the repeat
/// fails the row as it would during the first: a kernel that hung once is not priced.
fn measure_verified(
    gpu: &mut Gpu,
    criterion: &mut Criterion,
    sampling: &Sampling,
    config: &RunConfig,
    v: Verified,
    out: &mut Collected,
) -> KernelRow {
    let Verified {
        mut row, program, ..
    } = v;
    crate::progress::step(&row.variant, "measuring");
    let timer = Timer::new(gpu, config.timeout);
    row.timing = Some(timer.method());
    let gpu_ref: &Gpu = gpu;
    let (flops, benchmark, variant) = (row.flops, row.benchmark.clone(), row.variant.clone());
    // Measures once, and returns what it measured, the seconds spent running the kernel
    // (criterion's warm-up and samples) and those of criterion's analysis around them.
    let take = |criterion: &mut Criterion| {
        let t = Instant::now();
        let (measured, running) =
            measure(criterion, &benchmark, &variant, flops, sampling, |iters| {
                timer.time(gpu_ref, &program, iters)
            });
        let running_s = running.as_secs_f64();
        let analysis_s = (t.elapsed().as_secs_f64() - running_s).max(0.0);
        (measured, (variant.clone(), running_s), analysis_s)
    };
    let (first, secs, analysis_s) = take(criterion);
    out.measure_s.push(secs);
    out.analysis_s += analysis_s;
    let first = match first {
        Measured::Samples(samples) => match Stats::of(&samples) {
            Some(stats) => (samples, stats),
            None => {
                row.status = Status::Failed;
                row.note = "every sample was zero or not finite; the timer is unusable (try PRICEPERF_TIMING=wall)".into();
                return row;
            }
        },
        Measured::NotRun => {
            row.status = Status::Skipped;
            row.note =
                "verified; not measured (filtered out by criterion's command line or test mode)"
                    .into();
            return row;
        }
        Measured::Trouble(t) => return device_trouble(gpu, row, t),
    };
    let (samples, stats) = if first.1.spread() > results::NOISY_SPREAD {
        crate::progress::step(&row.variant, "measuring again");
        // Through a criterion of its own: the run's would name a second measurement of the
        // id `<id>_2`, and `cargo bench -- --baseline X` panics on an id with no baseline.
        let mut scratch = ScratchCriterion::in_temp_dir();
        let (second, secs, analysis_s) = take(&mut scratch.criterion);
        out.analysis_s += analysis_s;
        out.measure_s.push(secs.clone());
        out.repeat_s.push(secs);
        let second = match second {
            Measured::Samples(samples) => Stats::of(&samples).map(|stats| (samples, stats)),
            Measured::NotRun => None,
            Measured::Trouble(t) => return device_trouble(gpu, row, t),
        };
        let (pooled, note) = pooled(first, second);
        if let Some(note) = note {
            row.add_note(&note);
        }
        pooled
    } else {
        first
    };
    out.samples.push((row.variant.clone(), samples));
    row.measured(&stats)
}

/// A wide measurement and the one taken after it (none when it gave no usable samples) as
/// one: their samples pooled, and the note that gives each one's interval and the ratio of
/// their medians.
fn pooled(
    first: (Vec<f64>, Stats),
    second: Option<(Vec<f64>, Stats)>,
) -> ((Vec<f64>, Stats), Option<String>) {
    let Some(second) = second else {
        return (first, None);
    };
    let mut samples = first.0;
    samples.extend(second.0);
    // Both had usable samples, so the pool has too.
    let stats = Stats::of(&samples).unwrap_or(first.1);
    let note = format!(
        "measured twice, as the first measurement's interval (±{:.1}% of the median) was wider than ±{:.0}%: the second's was ±{:.1}%, its median {:.2}x the first's; the row pools their {} samples",
        100.0 * first.1.spread(),
        100.0 * results::NOISY_SPREAD,
        100.0 * second.1.spread(),
        second.1.median_ns / first.1.median_ns,
        stats.samples
    );
    ((samples, stats), Some(note))
}

/// Record device trouble in the row and, if the device is gone, open a fresh one so the run
/// continues with the next variant.
fn device_trouble(gpu: &mut Gpu, mut row: KernelRow, trouble: DeviceTrouble) -> KernelRow {
    row.status = match trouble {
        DeviceTrouble::Timeout(_) => Status::Timeout,
        DeviceTrouble::Lost(_) => Status::Failed,
    };
    row.note = format!("device: {trouble}");
    if matches!(trouble, DeviceTrouble::Lost(_)) || gpu.is_lost() {
        match Gpu::on(gpu.adapter.clone()) {
            Ok(fresh) => {
                // The run's building so far stays counted (compile_ahead's check).
                fresh.add_build_time(std::time::Duration::from_secs_f64(gpu.build_s()));
                *gpu = fresh;
                row.note.push_str(" (device recreated)");
            }
            Err(e) => row
                .note
                .push_str(&format!(" (could not recreate the device: {e})")),
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten samples spread evenly over median ± half_width.
    fn measurement(median: f64, half_width: f64) -> (Vec<f64>, Stats) {
        let samples: Vec<f64> = (0..10)
            .map(|i| median - half_width + 2.0 * half_width * i as f64 / 9.0)
            .collect();
        let stats = Stats::of(&samples).unwrap();
        (samples, stats)
    }

    /// A wide measurement and its repeat are pooled, whichever is narrower; a repeat that
    /// gave nothing leaves the first as it was.
    #[test]
    fn a_repeated_measurement_is_pooled_with_the_first() {
        let (first, second) = (measurement(120.0, 30.0), measurement(100.0, 3.0));
        let (first_spread, second_spread) = (first.1.spread(), second.1.spread());
        let ((samples, stats), note) = pooled(first, Some(second));
        assert_eq!(samples.len(), 20);
        assert_eq!(stats.samples, 20);
        assert!(
            stats.median_ns > 100.0 && stats.median_ns < 120.0,
            "{stats:?}"
        );
        let note = note.unwrap();
        assert!(
            note.contains(&format!("interval (±{:.1}% of", 100.0 * first_spread))
                && note.contains(&format!("second's was ±{:.1}%", 100.0 * second_spread))
                && note.contains("0.83x the first's")
                && note.contains("pools their 20 samples"),
            "{note}"
        );

        let ((samples, stats), note) = pooled(measurement(100.0, 15.0), None);
        assert!(samples.len() == 10 && stats.median_ns == 100.0 && note.is_none());
    }
}
