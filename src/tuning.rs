//! Tuning: which variants a benchmark measures. With nothing cached, every variant (each a
//! kernel family with its tile parameters) is verified and screened with a few short
//! timings (one, where all of them fit in the final: [`screen_plan`]); the few closest to
//! the fastest screen ([`finalists`]) then take turns in a final of at most
//! [`FINAL_ROUNDS`] rounds, and the one with the lowest median is measured in full and
//! chosen: that is the search. The choice is cached per adapter and driver, kernel version
//! (a hash of the kernel sources, from build.rs) and shape class, and later runs measure
//! only the cached choice, which keeps a quick run's time on kernels rather than on
//! searching. Within a suite's time budget, a variant that screened at least
//! [`PRUNE_RATIO`] times the fastest on every earlier benchmark of its [`regime`] in the run
//! is left out of later searches, with a note in its row ([`ScreenHistory`]); `--suite full`
//! tries everything. `--retune` searches again (pruning as the suite does); `--variant`
//! picks variants by hand, bypasses the cache and measures each of them in full. A cached
//! variant that no longer verifies or runs triggers a full search.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::gpu::AdapterSummary;
use crate::suite::Benchmark;

/// Short timings per variant in the search's screen. Five, so that compare's rank test
/// can use a screened row's samples; one in a search that fits in the final
/// ([`screen_plan`]), whose rows get the final's timings instead.
pub const SCREEN_ROUNDS: usize = 5;

/// About how long each screening timing runs: long enough that a timing spans many
/// dispatches on a GPU and several lavapipe scheduling quanta, short against criterion's
/// one to two seconds per variant. 15 ms instead of 25 took a tuning-cold quick run's search
/// on lavapipe from 21-22 to 14-15 s, with choices that agreed with the 25 ms ones as often
/// as two 25 ms runs agreed with each other (see the README's Peaks and tuning).
pub const SCREEN_SAMPLE: Duration = Duration::from_millis(15);

/// A variant whose first screening timing is this many times the fastest screen so far is
/// not timed again: it cannot become a finalist.
pub const SCREEN_CUTOFF: f64 = 3.0;

/// A GPU that ran no timed work for longer than this (compiling the next variant, or the
/// host checking the last one's output) is run busy for [`GPU_WARM_UP`] before the search
/// times it again ([`warm_up_before_timing`]). Not measured: the pauses seen to lower the
/// H200's clocks were about 0.45 s, and 100 ms errs towards warming.
pub const GPU_IDLE_LIMIT: Duration = Duration::from_millis(100);

/// How long an idle GPU runs the kernel about to be screened (or the final's first
/// contender) before its timings count. GPUs lower their clocks when idle and raise them
/// only after some time under load, and a screen's five timings last well under that. On
/// a fresh H200 (results/nvidia-h200-vulkan-2026-11-28-warm-up/), screens that followed
/// about 0.45 s of host-side verification of a 4096³ product ran 1.5-5.7x slower than the
/// same kernels' best times in four runs, steadily over some 150 ms of timings. Kernels
/// slowed by different factors, so the search chose the 128x128x8 tile (49.5% of the FP32
/// spec) over the 128x128x16 one (54%). The clocks were up again after about 200-250 ms
/// of load, and after criterion's 250 ms warm-up in the quick suite the chosen tile read
/// 4.13-4.16 ms in every one of its 20 samples. With this warm-up, 226 of 229 timed rows
/// came within 10% of their best in four runs, against 171 without; it cost about 25 s of
/// a fresh quick run there.
pub const GPU_WARM_UP: Duration = Duration::from_millis(250);

/// How long to run a kernel untimed before the search times it, after the device ran no
/// timed work for `idle` (`None`: none yet): [`GPU_WARM_UP`] on a GPU idle longer than
/// [`GPU_IDLE_LIMIT`], else nothing.
/// CPU adapters (lavapipe) are never warmed: their threads run on host cores, whose clocks
/// a governor raises within milliseconds, and there a verification run and a screen timing
/// of the same kernel agree within about 5% ([`VERIFIED_SCREEN_MIN`]).
pub fn warm_up_before_timing(is_cpu: bool, idle: Option<Duration>) -> Option<Duration> {
    (!is_cpu && idle.is_none_or(|idle| idle > GPU_IDLE_LIMIT)).then_some(GPU_WARM_UP)
}

/// Iterations a warm-up may add to a screen or a final, for the budget: on a GPU one at
/// least ([`GPU_WARM_UP`], or one iteration of a kernel slower than that), none on a CPU
/// adapter.
pub fn warm_up_runs(is_cpu: bool) -> f64 {
    if is_cpu {
        0.0
    } else {
        1.0
    }
}

/// A variant whose verification run alone took [`SCREEN_CUTOFF`] times the fastest screen
/// so far, and at least this long, is not screened at all: that run is its screen's one
/// timing. The driver's compilation on first use is done before it (`measure::prime`);
/// the floor keeps what first-dispatch costs remain (pages touched for the first time,
/// submission) small against the kernel, so they cannot make a contender look three times
/// slower. On lavapipe, where such a run and a screen timing of the same kernel agree
/// within about 5%, this halves the cost of the slowest variants of a search.
pub const VERIFIED_SCREEN_MIN: Duration = Duration::from_millis(250);

/// Whether a verification run of `first_run` is already a variant's whole screen: on a
/// CPU adapter, it was at least [`VERIFIED_SCREEN_MIN`] and [`SCREEN_CUTOFF`] times the
/// fastest screen so far (`fastest_ns`, none before the first screen). Never on a GPU: the
/// verification run follows compiling, at clocks lowered while idle ([`GPU_WARM_UP`]),
/// which can make a kernel look several times slower than it is.
pub fn verification_is_screen(is_cpu: bool, first_run: Duration, fastest_ns: Option<f64>) -> bool {
    is_cpu
        && first_run >= VERIFIED_SCREEN_MIN
        && fastest_ns.is_some_and(|f| first_run.as_nanos() as f64 >= f * SCREEN_CUTOFF)
}

/// Whether a verification run of `first_run` opens the variant's screen as its first
/// single-iteration timing, where the screen would take one to size its timings: on a CPU
/// adapter timed by wall clock (`wall`), for a kernel of [`SCREEN_SAMPLE`] or longer, whose
/// screen timings are single iterations too. The run is then the first of the three
/// timings such a screen takes (the only one, where the search screens once), instead of a
/// dispatch before them. Whatever the first dispatch still costs only makes that timing
/// slower, and a screen keeps its fastest; nor does that timing alone cut the screen short
/// at [`SCREEN_CUTOFF`] (below [`VERIFIED_SCREEN_MIN`] what first-dispatch costs remain
/// could add up to that). Not on GPUs, for the reason [`verification_is_screen`] gives.
pub fn verification_opens_screen(is_cpu: bool, wall: bool, first_run: Duration) -> bool {
    is_cpu && wall && first_run >= SCREEN_SAMPLE
}

/// Finalists are within this factor of the fastest screen. Back-to-back timings of one
/// variant on the shared lavapipe machine move by up to about 10%, so 1.2 keeps a variant
/// that noise put behind.
pub const FINALIST_MARGIN: f64 = 1.2;

/// At most this many finalists take part in the final.
pub const MAX_FINALISTS: usize = 3;

/// Rounds of the final at most, in which the finalists take turns running for about
/// [`SCREEN_SAMPLE`] each, so a change in the machine's speed falls on all of them alike
/// (three single iterations each when one of them is slower than that).
/// The one with the lowest median is measured in full by criterion and chosen. Finals that
/// go the distance are between kernels within a few percent of each other; seven rounds
/// instead of five made their choices no more consistent between fresh quick runs on
/// lavapipe (another run's choice more than 1.1x behind in 3.8 of 40 benchmarks either way),
/// and cost 0.3-0.7 s of a run.
pub const FINAL_ROUNDS: usize = 5;

/// Rounds after which a finalist whose every timing was slower than every timing of the
/// leader (the lowest median) but the leader's slowest leaves the final ([`outpaced`]); the
/// final ends when one is left. The leader's slowest is set aside because a turn can only
/// be slowed by noise, never sped up: in two fresh quick runs on lavapipe 6 finals went all
/// seven rounds (as many as there were then) with a contender 1.33-1.82x behind on its
/// median, kept in by one slow timing of the leader's. With two identical kernels the rule
/// drops one in 10 of the 70 equally likely orders of four timings each (one in seven),
/// which costs nothing (either is as fast); a contender that is clearly slower no longer
/// spends the last round confirming it.
pub const FINAL_DECIDED_AFTER: usize = 4;

/// Which of the contenders still in the final (`active`) are outpaced: each has
/// [`FINAL_DECIDED_AFTER`] timings or more in `turns` (nanoseconds per iteration, one list
/// per contender), and its fastest is slower than the leader's second slowest (the leader
/// is the active contender with the lowest median). Never the leader; none before the
/// rounds are in. Timings that are zero or not finite (a broken timer) are left out, as the
/// final's medians leave them out.
pub fn outpaced(turns: &[Vec<f64>], active: &[bool]) -> Vec<bool> {
    let turns: Vec<Vec<f64>> = turns
        .iter()
        .map(|t| {
            t.iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect()
        })
        .collect();
    let mut out = vec![false; turns.len()];
    let median = |t: &Vec<f64>| {
        if t.is_empty() {
            f64::INFINITY
        } else {
            crate::measure::median(&mut t.clone())
        }
    };
    let Some(leader) = (0..turns.len())
        .filter(|&i| active[i])
        .min_by(|&a, &b| median(&turns[a]).total_cmp(&median(&turns[b])))
    else {
        return out;
    };
    let decided = |t: &Vec<f64>| t.len() >= FINAL_DECIDED_AFTER;
    if !decided(&turns[leader]) {
        return out;
    }
    let mut leader_turns = turns[leader].clone();
    leader_turns.sort_by(f64::total_cmp);
    let second_slowest = leader_turns[leader_turns.len() - 2];
    for (i, t) in turns.iter().enumerate() {
        out[i] = i != leader
            && active[i]
            && decided(t)
            && t.iter().copied().fold(f64::INFINITY, f64::min) > second_slowest;
    }
    out
}

/// The order in which `n` contenders take their turns in round `round` (from 0): first to
/// last in even rounds, last to first in odd ones. A turn's place in its round can favour
/// it: an A/A run on lavapipe (three identical programs, 1024³ f32, 12 rounds, twice) put
/// the second and third 1.3-3.1% ahead of the first. Reversing every other round gives
/// each contender the early and the late places alike; three A/A runs with it read
/// 0.99-1.035, so a few percent between contenders is still noise there.
pub fn turn_order(round: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| {
        if round.is_multiple_of(2) {
            i
        } else {
            n - 1 - i
        }
    })
}

/// Timings in each variant's screen, and how far behind the fastest screen a finalist may
/// be, in a search over `searched` variants. Where every variant fits in the final
/// ([`MAX_FINALISTS`]), the screen has little left to decide: one timing sizes a variant's
/// turns and drops it when it is [`SCREEN_CUTOFF`] times behind, and the final, whose turns
/// are interleaved and which drops the plainly slower after [`FINAL_DECIDED_AFTER`] rounds,
/// decides among the rest. In fresh quick runs on lavapipe 27 of 40 searches were of two
/// or three variants, and their five-timing screens came before a final that most of
/// them went to anyway.
pub fn screen_plan(searched: usize) -> (usize, f64) {
    if searched <= MAX_FINALISTS {
        (1, SCREEN_CUTOFF)
    } else {
        (SCREEN_ROUNDS, FINALIST_MARGIN)
    }
}

/// The finalists among `screened` (an id and the fastest screening time of each variant):
/// the fastest, and the next fastest within `margin` of it ([`screen_plan`]), at most
/// [`MAX_FINALISTS`], fastest first.
pub fn finalists<T: Copy>(screened: &[(T, f64)], margin: f64) -> Vec<T> {
    let mut order: Vec<&(T, f64)> = screened.iter().filter(|(_, t)| t.is_finite()).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let Some(&&(_, best)) = order.first() else {
        return Vec::new();
    };
    order
        .into_iter()
        .take_while(|(_, t)| *t <= best * margin)
        .take(MAX_FINALISTS)
        .map(|(id, _)| *id)
        .collect()
}

/// A variant whose screens were at least this many times the fastest on every earlier
/// benchmark of the same [`regime`] in a run is pruned from later searches in that run.
/// Far outside the screen's noise (about 10%) and the finalist margin: on lavapipe the
/// generic kernels screen 10-80x behind the subgroup ones, shape after shape.
pub const PRUNE_RATIO: f64 = 10.0;

/// ... and only once it has lost that badly on this many benchmarks of the regime.
pub const PRUNE_AFTER: usize = 2;

/// Rows (matmul m, attention query tokens, elementwise rows) up to which an op is a decode
/// step rather than bulk work.
pub const DECODE_MAX_ROWS: u32 = 4;

/// The benchmarks a variant's ranking carries over between: the kernel and its layout
/// (transposed B, head dim, causal) without the sizes or the dtype, plus whether the op
/// works on at most four rows or query tokens (decode), where other kernels (gemv, split-K
/// attention) apply and the ranking changes. The dtype is left out because f16 and f32 run
/// the same tiling (f16 storage, f32 arithmetic): on lavapipe the generic matmuls screened
/// 14-44x behind at f16 1024 as at f32 (15-29x), so f32 evidence prunes f16 searches too.
pub fn regime(bench: &Benchmark) -> String {
    let head = bench.op.kernel();
    let spec = bench.op.shape();
    let mut decode = false;
    let kept: Vec<&str> = spec
        .split(',')
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if SIZE_KEYS.contains(&k) => {
                if ["m", "sq", "rows"].contains(&k) {
                    decode |= v
                        .parse::<u64>()
                        .is_ok_and(|n| n <= u64::from(DECODE_MAX_ROWS));
                }
                false
            }
            _ => true,
        })
        .collect();
    let kind = if decode { "decode" } else { "bulk" };
    if kept.is_empty() {
        format!("{head} ({kind})")
    } else {
        format!("{head}/{} ({kind})", kept.join(","))
    }
}

/// How far behind the fastest screen each variant was, per [`regime`], over one run's
/// searches: the evidence for pruning a variant that keeps losing by a wide margin, so a
/// cold run stops compiling, verifying and screening kernels that cannot win here.
#[derive(Debug)]
pub struct ScreenHistory {
    /// Prune at this ratio ([`PRUNE_RATIO`] by default, `--prune-ratio`).
    prune_ratio: f64,
    /// (regime, variant) -> screen time / fastest screen time, one per benchmark.
    ratios: std::collections::HashMap<(String, String), Vec<f64>>,
}

impl ScreenHistory {
    pub fn new(prune_ratio: f64) -> Self {
        ScreenHistory {
            prune_ratio,
            ratios: Default::default(),
        }
    }

    /// Remember that `variant` screened `ratio` times the fastest on `bench`.
    pub fn record(&mut self, bench: &Benchmark, variant: &str, ratio: f64) {
        if ratio.is_finite() {
            self.ratios
                .entry((regime(bench), variant.to_string()))
                .or_default()
                .push(ratio);
        }
    }

    /// Why `variant` is left out of the search on `bench`, or `None` to try it: it was
    /// screened on at least [`PRUNE_AFTER`] earlier benchmarks of the regime and was at
    /// least the prune ratio times the fastest on every one.
    pub fn pruned(&self, bench: &Benchmark, variant: &str) -> Option<String> {
        let regime = regime(bench);
        let ratios = self.ratios.get(&(regime.clone(), variant.to_string()))?;
        if ratios.len() < PRUNE_AFTER || ratios.iter().any(|r| *r < self.prune_ratio) {
            return None;
        }
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        let figure = |r: f64| {
            if r < 2.0 {
                format!("{r:.1}")
            } else {
                format!("{r:.0}")
            }
        };
        let range = if figure(low) == figure(high) {
            figure(low)
        } else {
            format!("{}-{}", figure(low), figure(high))
        };
        Some(format!(
            "pruned from the tuning search: its screen was {range}x the fastest on each of the {} earlier {regime} benchmarks of this run where it was screened; measure it with --variant '^{variant}$'",
            ratios.len()
        ))
    }
}

/// Why a suite's search leaves a variant out on llvmpipe (`llvmpipe_left_out` on the matmul
/// and attention variants) or on GPUs (`gpu_left_out`), from what earlier runs there
/// measured. The search still tries such variants when nothing else verifies; `--variant`
/// and `--suite full` measure them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// The kernel reads its operands from storage buffers at per-lane addresses, which
    /// llvmpipe compiles to scalar loops over the SIMD lanes: those variants never came
    /// within 2x of the texture and uniform-window kernels on any quick-suite shape, and
    /// the attention ones cost minutes of compiling with an empty Mesa shader cache.
    StoragePerLane,
    /// A sibling variant (`by`) ran faster on every quick-suite shape of the kind at hand (in
    /// f16, or at m = 1, for some) in every recorded llvmpipe run: searching this one only
    /// lengthens a run, a first run most (compiling takes 0.3-1 s per matmul variant and
    /// 5-27 s per attention variant there with an empty Mesa shader cache).
    Superseded { by: &'static str },
    /// It was never chosen, nor close to the fastest variant, on any shape of its kind in
    /// the recorded llvmpipe runs, though no one sibling beat it every time (the evidence:
    /// `MatmulVariant::trails_on_llvmpipe`).
    Trailing,
    /// On GPUs: the kernel reads its operands through uniform-buffer windows at per-lane
    /// addresses, a lavapipe design (llvmpipe vectorises those gathers). A GPU's uniform
    /// (constant) cache serves one address a load at full speed, and these kernels unroll
    /// their loop once per window, the largest shaders of the suite: on the H200
    /// (2026-11-28 fresh quick run) `gemv_ubo`, `flash_ubo`/`flash_ubs` and `decode_ubo`
    /// screened 18-11 000x behind the chosen kernel at every quick-suite shape, while the
    /// six attention benchmarks spent 105 s compiling.
    UniformPerLane,
}

impl LeftOut {
    /// The adapters this reason applies to, for notes.
    pub fn on(self) -> &'static str {
        match self {
            LeftOut::StoragePerLane | LeftOut::Superseded { .. } | LeftOut::Trailing => "llvmpipe",
            LeftOut::UniformPerLane => "GPUs",
        }
    }
}

/// The note of a row that `why` left out of a search.
pub fn left_out_note(variant: &str, why: LeftOut) -> String {
    let reason = match why {
        LeftOut::StoragePerLane => "this kernel reads its operands from storage buffers at per-lane addresses, which llvmpipe compiles to a scalar loop over the SIMD lanes (2-100x behind the texture and uniform-window kernels on every quick-suite shape)".to_string(),
        LeftOut::Superseded { by } => format!("{by} ran faster on every quick-suite shape of this kind in every recorded llvmpipe run, so searching this kernel there only lengthens the run"),
        LeftOut::Trailing => "it was never chosen, nor close to the fastest variant, on any shape of this kind in the recorded llvmpipe runs, so searching it there only lengthens the run".to_string(),
        LeftOut::UniformPerLane => "this kernel reads its operands through uniform-buffer windows at per-lane addresses, a lavapipe design (18-11000x behind the chosen kernel at every quick-suite shape on an H200, and among the slowest to compile)".to_string(),
    };
    format!(
        "not searched on {}: {reason}; measure it with --variant '^{variant}$' or --suite full",
        why.on()
    )
}

/// The kernels these choices were made with: a hash of kernels/ and src/kernels/.
pub const KERNEL_VERSION: &str = env!("PRICEPERF_KERNELS_HASH");

/// One cached choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// `cache::adapter_key`.
    pub adapter: String,
    pub kernel_version: String,
    /// [`class`] of the benchmarks it serves.
    pub class: String,
    pub variant: String,
    /// RFC 3339 time of the search.
    pub searched_at: String,
    /// Wall time of the search (compile, verify and screen every variant, run the final,
    /// measure the winner).
    pub search_seconds: f64,
    pub variants_tried: u32,
}

/// The shape fields that only scale the work: [`class`] rounds them, [`regime`] drops them.
const SIZE_KEYS: [&str; 7] = ["m", "n", "k", "sq", "skv", "rows", "cols"];

/// The shape class of a benchmark: its id with the sizes that only scale the work (m, n, k,
/// sq, skv, rows, cols) rounded up to powers of two. What changes the kernel's code or its
/// parallelism shape (head dim, heads, causal, transposition, batch, Sq = 1 decode) stays
/// exact.
pub fn class(bench: &Benchmark) -> String {
    let id = bench.id();
    let Some((head, spec)) = id.rsplit_once('/') else {
        return id;
    };
    let spec: Vec<String> = spec
        .split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if SIZE_KEYS.contains(&k) => match v.parse::<u64>() {
                Ok(n) => format!("{k}<={}", n.max(1).next_power_of_two()),
                Err(_) => kv.to_string(),
            },
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}/{}", spec.join(","))
}

/// The tuning cache of one adapter, loaded once per run.
pub struct Tuning {
    path: std::path::PathBuf,
    adapter: String,
    entries: Vec<Choice>,
}

impl Tuning {
    pub fn load(adapter: &AdapterSummary) -> Tuning {
        let path = crate::cache::dir().join("tuning.json");
        Tuning {
            entries: crate::cache::load(&path),
            adapter: crate::cache::adapter_key(adapter),
            path,
        }
    }

    /// The cached choice for `bench` on this adapter with these kernels.
    pub fn cached(&self, bench: &Benchmark) -> Option<&Choice> {
        let class = class(bench);
        self.entries.iter().find(|c| {
            c.adapter == self.adapter && c.kernel_version == KERNEL_VERSION && c.class == class
        })
    }

    /// Remember the winner of a search over `tried` variants that took `seconds`, replacing
    /// any earlier choice for the class, and write the cache (a failure to write is a
    /// warning: the cache only saves time).
    pub fn record(&mut self, bench: &Benchmark, variant: &str, seconds: f64, tried: u32) {
        let class = class(bench);
        self.entries
            .retain(|c| !(c.adapter == self.adapter && c.class == class));
        self.entries.push(Choice {
            adapter: self.adapter.clone(),
            kernel_version: KERNEL_VERSION.into(),
            class,
            variant: variant.into(),
            searched_at: chrono::Utc::now().to_rfc3339(),
            search_seconds: seconds,
            variants_tried: tried,
        });
        if let Err(e) = crate::cache::store(&self.path, &self.entries) {
            crate::progress::notice(&format!(
                "priceperf: warning: tuning choice not cached ({e})"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::DType;
    use crate::suite::Op;

    #[test]
    fn only_a_gpu_idle_past_the_limit_is_warmed_up() {
        let long = Some(GPU_IDLE_LIMIT * 4);
        assert_eq!(warm_up_before_timing(false, long), Some(GPU_WARM_UP));
        // No timed work yet: as idle as can be.
        assert_eq!(warm_up_before_timing(false, None), Some(GPU_WARM_UP));
        assert_eq!(warm_up_before_timing(false, Some(GPU_IDLE_LIMIT)), None);
        assert_eq!(warm_up_before_timing(false, Some(Duration::ZERO)), None);
        // Software adapters run on host cores: never warmed, however long they idled.
        assert_eq!(warm_up_before_timing(true, long), None);
        assert_eq!(warm_up_before_timing(true, None), None);
        // The budget counts the warm-up as an iteration where there is one.
        assert_eq!((warm_up_runs(false), warm_up_runs(true)), (1.0, 0.0));
    }

    fn bench(kernel: &str, spec: &str) -> Benchmark {
        Benchmark::new(Op::parse(kernel, spec).unwrap(), DType::F32)
    }

    #[test]
    fn turns_alternate_their_order_round_by_round() {
        let rounds: Vec<Vec<usize>> = (0..4).map(|r| turn_order(r, 3).collect()).collect();
        assert_eq!(rounds, [[0, 1, 2], [2, 1, 0], [0, 1, 2], [2, 1, 0]]);
        // Over two rounds every contender's places add up to the same.
        for n in 1..6 {
            let mut place_sum = vec![0; n];
            for r in 0..2 {
                for (place, i) in turn_order(r, n).enumerate() {
                    place_sum[i] += place;
                }
            }
            assert!(place_sum.iter().all(|&p| p == n - 1), "{place_sum:?}");
        }
    }

    #[test]
    fn finalists_are_the_fastest_few_within_the_margin() {
        let m = FINALIST_MARGIN;
        assert_eq!(finalists::<u32>(&[], m), Vec::<u32>::new());
        assert_eq!(finalists(&[(7, 5.0)], m), vec![7]);
        // Sorted by time; 1.25x is out, 1.2x is in.
        let screened = [(0, 12.5), (1, 10.0), (2, 12.0), (3, 30.0), (4, f64::NAN)];
        assert_eq!(finalists(&screened, m), vec![1, 2]);
        // Never more than MAX_FINALISTS, however close.
        let close: Vec<(usize, f64)> = (0..10).map(|i| (i, 10.0 + i as f64 * 0.01)).collect();
        assert_eq!(finalists(&close, m), vec![0, 1, 2]);
    }

    /// A search that fits in the final screens each variant once and sends every one not
    /// three times behind to the final; a bigger one screens five times and keeps the
    /// margin.
    #[test]
    fn a_search_that_fits_in_the_final_screens_once() {
        let (rounds, margin) = screen_plan(MAX_FINALISTS);
        assert_eq!(rounds, 1);
        let screened = [(0, 10.0), (1, 29.0), (2, 31.0)];
        assert_eq!(finalists(&screened, margin), vec![0, 1]);
        let (rounds, margin) = screen_plan(MAX_FINALISTS + 1);
        assert_eq!((rounds, margin), (SCREEN_ROUNDS, FINALIST_MARGIN));
        assert_eq!(finalists(&screened, margin), vec![0]);
    }

    #[test]
    fn a_finalist_leaves_only_when_every_timing_is_behind_all_but_one_of_the_leaders() {
        let all = [true, true, true];
        // Three rounds: too early, however far apart.
        let early = vec![vec![10.0; 3], vec![20.0; 3], vec![30.0; 3]];
        assert_eq!(outpaced(&early, &all), vec![false; 3]);
        // Four rounds: the leader (lowest median, here the second) stays; the third, whose
        // fastest (10.3) is behind the leader's second slowest (10.1), leaves, although the
        // leader's slowest (14.0, a turn slowed by noise) is slower still; the first, whose
        // fastest (10.05) is not, stays.
        let turns = vec![
            vec![11.0, 10.05, 12.0, 11.5],
            vec![10.0, 14.0, 9.8, 10.1],
            vec![10.3, 13.0, 12.0, 11.0],
        ];
        assert_eq!(outpaced(&turns, &all), vec![false, false, true]);
        // One that has already left is neither counted as the leader (the first, fastest)
        // nor dropped again (the last, slowest).
        let gone = vec![vec![1.0; 4], vec![10.0; 4], vec![11.0; 4], vec![20.0; 4]];
        assert_eq!(
            outpaced(&gone, &[false, true, true, false]),
            vec![false, false, true, false]
        );
        // Unusable timings are not counted: zeros do not make a leader.
        let broken = vec![vec![0.0; 4], vec![10.0; 4], vec![11.0; 4]];
        assert_eq!(outpaced(&broken, &all), vec![false, false, true]);
        // Equal timings are not behind: a tie stays in.
        let tie = vec![vec![10.0; 4], vec![10.0, 10.0, 10.0, 10.0]];
        assert_eq!(outpaced(&tie, &[true, true]), vec![false, false]);
    }

    #[test]
    fn only_a_slow_kernel_timed_by_wall_on_a_cpu_adapter_opens_its_screen_with_verification() {
        let slow = SCREEN_SAMPLE;
        assert!(verification_opens_screen(true, true, slow));
        assert!(!verification_opens_screen(true, true, slow / 2));
        assert!(!verification_opens_screen(true, false, slow));
        assert!(!verification_opens_screen(false, true, slow * 10));
    }

    #[test]
    fn a_slow_verification_run_is_the_screen_only_past_the_cutoff_and_the_floor() {
        let ms = Duration::from_millis;
        // 300 ms against a 50 ms fastest screen: 6x, over the floor.
        assert!(verification_is_screen(true, ms(300), Some(50e6)));
        // Under the cutoff, or before any screen: screened as usual.
        assert!(!verification_is_screen(true, ms(300), Some(150e6)));
        assert!(!verification_is_screen(true, ms(300), None));
        // Under the floor, first-dispatch costs could make up the gap.
        assert!(!verification_is_screen(true, ms(200), Some(1e6)));
        // On a GPU the verification run may have run at idle clocks: always screened.
        assert!(!verification_is_screen(false, ms(300), Some(50e6)));
    }

    #[test]
    fn regimes_drop_sizes_and_split_decode_from_bulk() {
        let a = regime(&bench("matmul", "m=64,n=768,k=3072,transpose_b=1"));
        assert_eq!(
            a,
            regime(&bench("matmul", "m=16,n=2048,k=2048,transpose_b=1"))
        );
        assert_ne!(
            a,
            regime(&bench("matmul", "m=1,n=2048,k=2048,transpose_b=1"))
        );
        assert_ne!(a, regime(&bench("matmul", "m=64,n=768,k=3072")));
        let decode = regime(&bench(
            "attention",
            "b=1,hq=8,hkv=8,sq=1,skv=1000,d=64,causal=1",
        ));
        assert!(
            decode.ends_with(" (decode)") && decode.contains("d=64"),
            "{decode}"
        );
        assert_eq!(
            regime(&bench("matmul", "m=1024,n=1024,k=1024")),
            "matmul (bulk)"
        );
        let f16 = Benchmark::new(Op::parse("matmul", "m=64,n=64,k=64").unwrap(), DType::F16);
        assert_eq!(regime(&f16), "matmul (bulk)");
    }

    #[test]
    fn left_out_notes_say_why_and_how_to_measure_the_variant() {
        let storage = left_out_note("flash_row_r32_q1_c8", LeftOut::StoragePerLane);
        assert!(storage.contains("per-lane addresses"), "{storage}");
        assert!(
            storage.contains("--variant '^flash_row_r32_q1_c8$'"),
            "{storage}"
        );
        let superseded = left_out_note(
            "decode_ubo_l8_t2_s2",
            LeftOut::Superseded {
                by: "decode_ubo_l8_t1",
            },
        );
        assert!(superseded.starts_with("not searched on llvmpipe: decode_ubo_l8_t1 ran faster"));
        assert!(
            superseded.contains("--variant '^decode_ubo_l8_t2_s2$'"),
            "{superseded}"
        );
    }

    #[test]
    fn a_variant_is_pruned_only_after_losing_widely_every_time() {
        let (b1, b2, b3) = (
            bench("matmul", "m=256,n=256,k=256"),
            bench("matmul", "m=512,n=512,k=512"),
            bench("matmul", "m=1024,n=1024,k=1024"),
        );
        let mut h = ScreenHistory::new(PRUNE_RATIO);
        h.record(&b1, "naive", 40.0);
        // One loss is not enough.
        assert_eq!(h.pruned(&b3, "naive"), None);
        h.record(&b2, "naive", 12.0);
        let why = h
            .pruned(&b3, "naive")
            .expect("pruned after two wide losses");
        assert!(
            why.contains("12-40x") && why.contains("--variant '^naive$'"),
            "{why}"
        );
        let mut close = ScreenHistory::new(1.001);
        close.record(&b1, "reg", 1.04);
        close.record(&b2, "reg", 1.02);
        let why = close
            .pruned(&b3, "reg")
            .expect("pruned at a ratio just above 1");
        assert!(
            why.contains("was 1.0x the fastest on each of the 2 earlier"),
            "{why}"
        );
        // Another regime (transposed B) starts afresh.
        assert_eq!(
            h.pruned(
                &bench("matmul", "m=1024,n=1024,k=1024,transpose_b=1"),
                "naive"
            ),
            None
        );
        // A single showing inside the ratio keeps it in.
        h.record(&b2, "tiled", 30.0);
        h.record(&b2, "tiled", 9.0);
        h.record(&b2, "tiled", 50.0);
        assert_eq!(h.pruned(&b3, "tiled"), None);
        // Infinite ratios (nothing to compare against) are not evidence.
        h.record(&b1, "reg", f64::INFINITY);
        h.record(&b2, "reg", f64::INFINITY);
        assert_eq!(h.pruned(&b3, "reg"), None);
    }

    #[test]
    fn classes_round_sizes_and_keep_what_changes_the_kernel() {
        let a = class(&bench("matmul", "m=1000,n=1024,k=700"));
        assert_eq!(a, class(&bench("matmul", "m=1024,n=600,k=1024")));
        assert!(a.contains("m<=1024") && a.contains("k<=1024"), "{a}");
        assert_ne!(a, class(&bench("matmul", "m=1025,n=1024,k=1024")));
        assert_ne!(
            a,
            class(&bench("matmul", "m=1000,n=1024,k=700,transpose_b=1"))
        );
        let prefill = class(&bench(
            "attention",
            "b=1,hq=8,hkv=8,sq=1000,skv=1000,d=64,causal=1",
        ));
        let decode = class(&bench(
            "attention",
            "b=1,hq=8,hkv=8,sq=1,skv=1000,d=64,causal=1",
        ));
        let d128 = class(&bench(
            "attention",
            "b=1,hq=8,hkv=8,sq=1000,skv=1000,d=128,causal=1",
        ));
        assert!(
            prefill != decode && prefill != d128,
            "{prefill} {decode} {d128}"
        );
    }
}
