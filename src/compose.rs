//! Model composition: the kernel rows measured at a model's exact shapes become token
//! rates (`tokens.csv`).
//!
//! A forward pass is `num_layers x (one layer) + head`. Every layer has the same shapes, so
//! one measured layer (the sum of its ops' chosen-variant medians) times the layer count is
//! exact up to noise. Bounds sum the ops' interval bounds, which is conservative: the true
//! 95% interval of a sum is narrower.

use std::collections::HashMap;

use crate::cost::{Basis, TokensRow};
use crate::error::{Error, Result};
use crate::model::{
    head_ops, kv_cache_bytes, layer_ops, weight_bytes, ModelPreset, ModelPresets, Op, Phase,
    PhaseKind,
};
use crate::results::{KernelRow, Status};
use crate::shape::{DType, MatmulShape};
use crate::suite::{self, Benchmark, SuiteName};

/// One model to price: a preset at a batch, prompt length and generation length.
#[derive(Debug, Clone)]
pub struct ModelRun {
    pub preset: ModelPreset,
    pub batch: u32,
    pub prompt_len: u32,
    pub gen_len: u32,
    pub dtype: DType,
    /// The adapter's largest storage binding in bytes: a matmul operand beyond it is
    /// measured in column slices (see [`measured`]).
    pub max_binding_bytes: u64,
}

impl ModelRun {
    /// Prefill over the prompt, and decode at the average context of the generation
    /// (prompt + gen/2), which is what a workload's decode steps cost on average.
    pub fn phases(&self) -> [Phase; 2] {
        [
            Phase::Prefill {
                batch: self.batch,
                prompt_len: self.prompt_len,
            },
            Phase::Decode {
                batch: self.batch,
                context_len: self.decode_context(),
            },
        ]
    }

    pub fn decode_context(&self) -> u32 {
        decode_context(self.prompt_len, self.gen_len)
    }

    /// The label used in tables: model and batch.
    pub fn label(&self) -> String {
        self.preset.name.clone()
    }

    /// Bytes the model needs resident: weights plus the KV cache at the end of generation.
    pub fn memory_bytes(&self) -> u64 {
        weight_bytes(&self.preset, self.dtype).saturating_add(kv_cache_bytes(
            &self.preset,
            self.batch,
            self.prompt_len.saturating_add(self.gen_len),
            self.dtype,
        ))
    }
}

/// The context a decode step is measured at: the average over a generation of `gen_len`
/// tokens after a `prompt_len` prompt (prompt + gen/2, at least one generated token).
pub fn decode_context(prompt_len: u32, gen_len: u32) -> u32 {
    prompt_len.saturating_add((gen_len / 2).max(1))
}

/// Which models a suite prices by default, as (preset, batch, prompt, generate). Software
/// adapters get small models and short prompts so the quick suite ends in minutes; GPUs get
/// the defaults users recognise (prompt 512, generate 128) at batch 1 and a larger batch.
pub fn suite_models(suite: SuiteName, is_cpu: bool) -> Vec<(&'static str, u32, u32, u32)> {
    match (suite, is_cpu) {
        (SuiteName::Quick, true) => vec![("gpt2", 1, 64, 32), ("llama-3.2-1b", 1, 16, 16)],
        (SuiteName::Standard, true) => vec![
            ("gpt2", 1, 128, 64),
            ("gpt2", 4, 128, 64),
            ("tinyllama-1.1b", 1, 64, 32),
            ("llama-3.2-1b", 1, 64, 32),
        ],
        (SuiteName::Full, true) => vec![
            ("gpt2", 1, 512, 128),
            ("tinyllama-1.1b", 1, 128, 64),
            ("llama-3.2-1b", 1, 128, 64),
            ("llama-3.2-3b", 1, 64, 32),
        ],
        (SuiteName::Quick, false) => vec![("gpt2", 1, 512, 128), ("llama-3.1-8b", 1, 512, 128)],
        (SuiteName::Standard, false) => vec![
            ("llama-3.1-8b", 1, 512, 128),
            ("llama-3.1-8b", 16, 512, 128),
            ("llama-3.2-1b", 1, 512, 128),
            ("llama-3.2-3b", 1, 512, 128),
            ("mistral-7b", 1, 512, 128),
            ("qwen2.5-7b", 1, 512, 128),
            ("gpt2", 1, 512, 128),
        ],
        (SuiteName::Full, false) => vec![
            ("llama-3.1-8b", 1, 512, 128),
            ("llama-3.1-8b", 16, 512, 128),
            ("llama-3.1-70b", 1, 512, 128),
            ("llama-3.2-1b", 1, 512, 128),
            ("llama-3.2-3b", 1, 512, 128),
            ("mistral-7b", 1, 512, 128),
            ("qwen2.5-7b", 1, 512, 128),
            ("tinyllama-1.1b", 1, 512, 128),
            ("gpt2", 1, 512, 128),
            ("gpt2", 16, 512, 128),
        ],
    }
}

/// Resolve model specs against the presets. Models whose weights and KV cache do not fit
/// `memory_bytes` (when known) are left out with a note, never run.
pub fn model_runs(
    presets: &ModelPresets,
    specs: &[(String, u32, u32, u32)],
    dtype: DType,
    memory_bytes: Option<u64>,
) -> Result<(Vec<ModelRun>, Vec<String>)> {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for (name, batch, prompt_len, gen_len) in specs {
        let run = ModelRun {
            preset: presets.get(name)?.clone(),
            batch: *batch,
            prompt_len: *prompt_len,
            gen_len: *gen_len,
            dtype,
            max_binding_bytes: u64::MAX,
        };
        for phase in run.phases() {
            phase.check(&run.preset)?;
        }
        // The KV cache at the end of generation holds prompt + gen tokens (one decode step
        // at least, as the decode phase measures one).
        let end = u64::from(*prompt_len) + u64::from((*gen_len).max(1));
        if end > u64::from(run.preset.max_context) {
            return Err(Error::bad_input(
                format!(
                    "{name}: --prompt-len {prompt_len} + --gen-len {gen_len} is {end} tokens, longer than {}'s context of {} tokens",
                    run.preset.name, run.preset.max_context
                ),
                format!(
                    "Use a prompt and generation of at most {} tokens together (at least one generated)",
                    run.preset.max_context
                ),
            ));
        }
        if let Some(mem) = memory_bytes {
            if run.memory_bytes() > mem {
                notes.push(format!(
                    "{} (batch {batch}) needs {:.1} GB for {dtype} weights and KV cache; the adapter has {:.1} GB: not run",
                    run.preset.name,
                    run.memory_bytes() as f64 / 1e9,
                    mem as f64 / 1e9
                ));
                continue;
            }
        }
        runs.push(run);
    }
    Ok((runs, notes))
}

/// The op lists of one forward pass: the layer's ops and the head's.
fn pass_ops(run: &ModelRun, phase: Phase) -> Result<(Vec<Op>, Vec<Op>)> {
    Ok((
        layer_ops(&run.preset, phase)?,
        head_ops(&run.preset, phase)?,
    ))
}

/// The op as it is measured, and how many times its time counts. A matmul whose B or C is
/// larger than the adapter's largest storage binding (a 128k-vocabulary LM head is 525 MB
/// in f16; lavapipe binds at most 128 MiB) is measured as one of `c` column slices of
/// ceil(n / c) columns, which run one after another on a real device and together do at
/// least the whole op's work (a slight overestimate when c does not divide n). Everything
/// else is measured as it is, once.
pub fn measured(op: &Op, run: &ModelRun) -> (Op, u32) {
    if let Op::Matmul { name, shape } = *op {
        let bytes = |s: &MatmulShape| s.b_len().max(s.c_len()) * run.dtype.size();
        if bytes(&shape) > run.max_binding_bytes {
            let mut c = bytes(&shape).div_ceil(run.max_binding_bytes.max(1)).max(2);
            loop {
                let slice = MatmulShape {
                    n: shape.n.div_ceil(c as u32),
                    ..shape
                };
                if bytes(&slice) <= run.max_binding_bytes || slice.n == 1 {
                    return (Op::Matmul { name, shape: slice }, c as u32);
                }
                c += 1;
            }
        }
    }
    (*op, 1)
}

/// The benchmarks these models need, each shape once: every run's layer ops in first-use
/// order, then the heads. A head's vocabulary-wide matmul is a small model's largest op, and
/// a cold tuning search prunes it only with evidence from the smaller shapes of its kind
/// ([`crate::tuning::ScreenHistory`]): on lavapipe, losers verified first at gpt2's head
/// took 17 s.
pub fn benchmarks(runs: &[ModelRun]) -> Result<Vec<Benchmark>> {
    let mut layers: Vec<Benchmark> = Vec::new();
    let mut heads: Vec<Benchmark> = Vec::new();
    for run in runs {
        for phase in run.phases() {
            let (layer, head) = pass_ops(run, phase)?;
            for (ops, list) in [(&layer, &mut layers), (&head, &mut heads)] {
                for op in ops {
                    let (op, _) = measured(op, run);
                    let b = Benchmark::new(suite::Op::from_model(&op), run.dtype);
                    if !list.contains(&b) {
                        list.push(b);
                    }
                }
            }
        }
    }
    heads.retain(|b| !layers.contains(b));
    layers.extend(heads);
    Ok(layers)
}

/// Seconds of one forward pass (or of a request), composed from op times.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PassTime {
    median: f64,
    /// The sum of the ops' 95% interval bounds (low, high); `None` when an op's chosen row
    /// holds only a tuning screen's few timings, whose interval is no confidence interval
    /// (one timing gives one of zero width), so the sum would look more precise than it is.
    bounds: Option<(f64, f64)>,
}

impl PassTime {
    /// `self` then `n` times `other` (a request: prefill, then the decode steps).
    fn then(self, n: f64, other: PassTime) -> PassTime {
        PassTime {
            median: self.median + n * other.median,
            bounds: match (self.bounds, other.bounds) {
                (Some(a), Some(b)) => Some((a.0 + n * b.0, a.1 + n * b.1)),
                _ => None,
            },
        }
    }
}

/// Seconds of one forward pass, or why it cannot be composed.
fn pass_seconds(
    run: &ModelRun,
    phase: Phase,
    chosen: &HashMap<String, &KernelRow>,
) -> std::result::Result<PassTime, String> {
    let (layer, head) = pass_ops(run, phase).map_err(|e| e.to_string())?;
    let mut in_full = true;
    let mut sum = |ops: &[Op]| -> std::result::Result<(f64, f64, f64), String> {
        let mut t = (0.0, 0.0, 0.0);
        for op in ops {
            let (op, times) = measured(op, run);
            let id = Benchmark::new(suite::Op::from_model(&op), run.dtype).id();
            let row = chosen
                .get(&id)
                .ok_or_else(|| format!("no verified measurement of {} ({id})", op.name()))?;
            let med = row.median_ns.ok_or_else(|| format!("{id} has no time"))?;
            in_full &= row.measured_in_full();
            let n = times as f64;
            t.0 += n * med;
            t.1 += n * row.ci_low_ns.unwrap_or(med);
            t.2 += n * row.ci_high_ns.unwrap_or(med);
        }
        Ok(t)
    };
    let l = sum(&layer)?;
    let h = sum(&head)?;
    let layers = run.preset.num_layers as f64;
    Ok(PassTime {
        median: (layers * l.0 + h.0) * 1e-9,
        bounds: in_full.then_some(((layers * l.1 + h.1) * 1e-9, (layers * l.2 + h.2) * 1e-9)),
    })
}

/// Token rates of every model run from the chosen kernel rows, plus notes for runs that
/// could not be composed (an op failed or was skipped).
pub fn token_rates(runs: &[ModelRun], rows: &[KernelRow]) -> (Vec<TokensRow>, Vec<String>) {
    let chosen: HashMap<String, &KernelRow> = rows
        .iter()
        .filter(|r| r.chosen && r.status == Status::Ok)
        .map(|r| (r.benchmark.clone(), r))
        .collect();
    let mut tokens = Vec::new();
    let mut notes = Vec::new();
    for run in runs {
        let [prefill, decode] = run.phases();
        let times = (
            pass_seconds(run, prefill, &chosen),
            pass_seconds(run, decode, &chosen),
        );
        let batch = run.batch as f64;
        let row =
            |phase: PhaseKind, prompt: Option<u32>, ctx: Option<u32>, tokens: f64, t: PassTime| {
                TokensRow {
                    model: run.label(),
                    phase,
                    batch: run.batch,
                    prompt_len: prompt,
                    context_len: ctx,
                    tokens_per_s: tokens / t.median,
                    tokens_per_s_low: t.bounds.map(|(_, high)| tokens / high),
                    tokens_per_s_high: t.bounds.map(|(low, _)| tokens / low),
                    basis: Basis::Measured,
                }
            };
        match &times.0 {
            Ok(t) => tokens.push(row(
                PhaseKind::Prefill,
                Some(run.prompt_len),
                None,
                batch * run.prompt_len as f64,
                *t,
            )),
            Err(why) => notes.push(format!("{} prefill not priced: {why}", run.label())),
        }
        match &times.1 {
            Ok(t) => tokens.push(row(
                PhaseKind::Decode,
                None,
                Some(run.decode_context()),
                batch,
                *t,
            )),
            Err(why) => notes.push(format!("{} decode not priced: {why}", run.label())),
        }
        if let (Ok(p), Ok(d)) = times {
            // A request: prefill the prompt, then gen_len decode steps at the average context.
            let g = run.gen_len as f64;
            let request = p.then(g, d);
            let n = batch * (run.prompt_len as f64 + g);
            tokens.push(row(
                PhaseKind::Workload,
                Some(run.prompt_len),
                Some(run.prompt_len.saturating_add(run.gen_len)),
                n,
                request,
            ));
        }
    }
    (tokens, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::TimingMethod;

    fn run(name: &str) -> ModelRun {
        let presets = ModelPresets::load_default().unwrap();
        ModelRun {
            preset: presets.get(name).unwrap().clone(),
            batch: 2,
            prompt_len: 8,
            gen_len: 4,
            dtype: DType::F32,
            max_binding_bytes: u64::MAX,
        }
    }

    #[test]
    fn an_lm_head_beyond_the_binding_limit_is_measured_in_column_slices() {
        let mut r = run("llama-3.2-1b");
        r.dtype = DType::F16;
        r.max_binding_bytes = 128 << 20;
        let head = head_ops(&r.preset, r.phases()[1]).unwrap();
        let lm = head.iter().find(|o| o.name() == "lm_head").unwrap();
        let (slice, c) = measured(lm, &r);
        let (Op::Matmul { shape: whole, .. }, Op::Matmul { shape: part, .. }) = (lm, slice) else {
            panic!("a matmul stays a matmul")
        };
        assert!(
            c >= 4,
            "525 MB of f16 weights need at least 4 slices of 128 MiB: {c}"
        );
        assert!(part.b_len() * 2 <= 128 << 20, "{part:?}");
        assert!(
            c as u64 * part.n as u64 >= whole.n as u64,
            "the slices cover every column"
        );
        assert_eq!((part.m, part.k), (whole.m, whole.k));
        // Everything that fits is measured as it is.
        let norm = head.iter().find(|o| o.name() == "final_norm").unwrap();
        assert_eq!(measured(norm, &r), (*norm, 1));
    }

    /// The whole generation must fit the model's context: gpt2 has 1024 positions.
    #[test]
    fn prompt_and_generation_together_fit_the_context() {
        let presets = ModelPresets::load_default().unwrap();
        let runs = |prompt: u32, gen: u32| {
            model_runs(
                &presets,
                &[("gpt2".into(), 1, prompt, gen)],
                DType::F32,
                None,
            )
            .map(|(runs, _)| runs.len())
        };
        assert_eq!(runs(960, 64).unwrap(), 1);
        assert_eq!(runs(1023, 1).unwrap(), 1);
        let err = runs(960, 100).unwrap_err().to_string();
        assert!(err.contains("1060 tokens") && err.contains("1024"), "{err}");
        // No generation still measures one decode step, which needs one more position.
        assert!(runs(1023, 0).is_ok() && runs(1024, 0).is_err());
    }

    fn chosen_row(b: &Benchmark, ns: f64) -> KernelRow {
        KernelRow {
            benchmark: b.id(),
            kernel: b.op.kernel().into(),
            variant: "v".into(),
            dtype: b.dtype,
            shape: b.op.shape(),
            adapter: "a".into(),
            backend: "vulkan".into(),
            driver: String::new(),
            timing: Some(TimingMethod::Device),
            samples: Some(10),
            median_ns: None,
            ci_low_ns: None,
            ci_high_ns: None,
            flops: b.op.flops(),
            bytes: 0,
            gflops: None,
            gbps: None,
            pct_of_peak: None,
            verified: true,
            max_rel_err: Some(0.0),
            status: Status::Ok,
            chosen: true,
            note: String::new(),
            pct_of_measured_flops: None,
            pct_of_measured_bw: None,
        }
        .with_time(ns, ns * 0.9, ns * 1.1)
    }

    #[test]
    fn pass_time_is_layers_times_layer_plus_head() {
        let r = run("gpt2");
        let benches = benchmarks(std::slice::from_ref(&r)).unwrap();
        // Every op costs 1 µs: a pass is (ops per layer x 12 + head ops) µs.
        let rows: Vec<KernelRow> = benches.iter().map(|b| chosen_row(b, 1000.0)).collect();
        let (tokens, notes) = token_rates(std::slice::from_ref(&r), &rows);
        assert!(notes.is_empty(), "{notes:?}");
        let [prefill, decode] = r.phases();
        let ops = |p| {
            (
                layer_ops(&r.preset, p).unwrap().len(),
                head_ops(&r.preset, p).unwrap().len(),
            )
        };
        let (l, h) = ops(prefill);
        let pass_s = (12 * l + h) as f64 * 1e-6;
        let p = tokens
            .iter()
            .find(|t| t.phase == PhaseKind::Prefill)
            .unwrap();
        assert!((p.tokens_per_s - 2.0 * 8.0 / pass_s).abs() < 1e-6 * p.tokens_per_s);
        assert!(
            p.tokens_per_s_low.unwrap() < p.tokens_per_s
                && p.tokens_per_s < p.tokens_per_s_high.unwrap()
        );
        let (l, h) = ops(decode);
        let d = tokens
            .iter()
            .find(|t| t.phase == PhaseKind::Decode)
            .unwrap();
        let step_s = (12 * l + h) as f64 * 1e-6;
        assert!((d.tokens_per_s - 2.0 / step_s).abs() < 1e-6 * d.tokens_per_s);
        assert_eq!(d.context_len, Some(8 + 2));
        // Workload: prefill + 4 decode steps for 2 x (8 + 4) tokens.
        let w = tokens
            .iter()
            .find(|t| t.phase == PhaseKind::Workload)
            .unwrap();
        assert!((w.tokens_per_s - 24.0 / (pass_s + 4.0 * step_s)).abs() < 1e-6 * w.tokens_per_s);
    }

    #[test]
    fn a_screen_only_op_leaves_the_phase_without_an_interval() {
        // A chosen row holding one screening timing has an interval of zero width: summed in,
        // it would make the token rate (and its price) look precise. The decode ops are
        // measured in full; one prefill-only op was only screened.
        let r = run("gpt2");
        let benches = benchmarks(std::slice::from_ref(&r)).unwrap();
        let [_, decode] = r.phases();
        let decode_ids: Vec<String> = pass_ops(&r, decode)
            .map(|(l, h)| {
                l.iter()
                    .chain(&h)
                    .map(|op| {
                        let (op, _) = measured(op, &r);
                        Benchmark::new(suite::Op::from_model(&op), r.dtype).id()
                    })
                    .collect()
            })
            .unwrap();
        let mut screened_one = false;
        let rows: Vec<KernelRow> = benches
            .iter()
            .map(|b| {
                let mut row = chosen_row(b, 1000.0);
                if !screened_one && !decode_ids.contains(&b.id()) {
                    row.samples = Some(1);
                    screened_one = true;
                }
                row
            })
            .collect();
        assert!(screened_one);
        let (tokens, _) = token_rates(std::slice::from_ref(&r), &rows);
        let of = |phase| tokens.iter().find(|t| t.phase == phase).unwrap();
        for phase in [PhaseKind::Prefill, PhaseKind::Workload] {
            let t = of(phase);
            assert!(t.tokens_per_s > 0.0);
            assert_eq!(
                (t.tokens_per_s_low, t.tokens_per_s_high),
                (None, None),
                "{phase}"
            );
        }
        let d = of(PhaseKind::Decode);
        assert!(d.tokens_per_s_low.is_some() && d.tokens_per_s_high.is_some());
    }

    #[test]
    fn a_missing_op_leaves_the_phase_unpriced_with_a_note() {
        let r = run("llama-3.2-1b");
        let benches = benchmarks(std::slice::from_ref(&r)).unwrap();
        let rows: Vec<KernelRow> = benches
            .iter()
            .skip(1)
            .map(|b| chosen_row(b, 1000.0))
            .collect();
        let (tokens, notes) = token_rates(std::slice::from_ref(&r), &rows);
        assert!(tokens.iter().all(|t| t.phase != PhaseKind::Workload));
        assert!(notes.iter().any(|n| n.contains("not priced")), "{notes:?}");
    }

    #[test]
    fn models_that_do_not_fit_are_not_run() {
        let presets = ModelPresets::load_default().unwrap();
        let specs = vec![
            ("llama-3.1-70b".to_string(), 1, 512, 128),
            ("gpt2".to_string(), 1, 512, 128),
        ];
        let (runs, notes) = model_runs(&presets, &specs, DType::F16, Some(24_000_000_000)).unwrap();
        assert_eq!(runs.len(), 1);
        assert!(
            notes[0].contains("llama-3.1-70b") && notes[0].contains("not run"),
            "{notes:?}"
        );
    }
}
