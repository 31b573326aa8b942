//! The money and energy formulas, in one place: price per accelerator-hour, $/Mtok (with
//! utilization and confidence bounds), owned-hardware $/h, modelled energy per token, and
//! projections to accelerators wgpu cannot reach. Also the
//! `tokens.csv` and `costs.csv` row types ([`TokensRow`], [`CostRow`]).
//!
//! Formulas (DESIGN.md, stated again in the README):
//! - $/accelerator-hour = instance $/h / accelerators per instance (a CPU-only instance is one).
//! - $/Mtok = $/accelerator-hour / (tokens/s x 3600) x 1e6, divided by utilization when given.
//!   The low $/Mtok bound comes from the HIGH tokens/s bound and vice versa.
//! - Owned $/h = capex / (life_years x 8760) + watts / 1000 x PUE x $/kWh.
//! - Energy J/token = watts / tokens/s (modelled when the watts are a TDP, not a measurement).
//! - Workload: time per request = prefill time + output_tokens x decode step time; its token
//!   rate is composed with the others (`compose::token_rates`) and priced by the $/Mtok rule.
//!
//! Every function refuses zero, negative and non-finite inputs (and a utilization outside
//! (0, 1]) with a bad-input error saying what to give instead, so no NaN or infinity ever
//! reaches a table.

use std::fmt;

use serde::Serialize;

use crate::catalog::{Accelerator, Catalog, Offering};
use crate::error::{Error, Result};
use crate::model::PhaseKind;
use crate::shape::DType;

/// Hours in a (non-leap) year, for amortising capex.
pub const HOURS_PER_YEAR: f64 = 8760.0;

/// How the price was obtained: the `tier` column of costs.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    OnDemand,
    Spot,
    Owned,
    Custom,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::OnDemand => "on_demand",
            Tier::Spot => "spot",
            Tier::Owned => "owned",
            Tier::Custom => "custom",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a token rate was measured on this machine or projected from another accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    Measured,
    Projected,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Measured => "measured",
            Basis::Projected => "projected",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn check_positive(value: f64, what: &str, fix: &str) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::bad_input(
            format!("{what} is {value}, not a finite number above 0"),
            fix,
        ))
    }
}

fn check_non_negative(value: f64, what: &str, fix: &str) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::bad_input(
            format!("{what} is {value}, not a finite number of 0 or more"),
            fix,
        ))
    }
}

/// Checks a utilization: None, or a fraction in (0, 1].
pub fn check_utilization(utilization: Option<f64>) -> Result<Option<f64>> {
    match utilization {
        None => Ok(None),
        Some(u) if u.is_finite() && u > 0.0 && u <= 1.0 => Ok(Some(u)),
        Some(u) => Err(Error::bad_input(
            format!("utilization {u} is outside (0, 1]"),
            "Give the busy fraction of paid time as a number above 0 and at most 1, e.g. 0.6 for 60%",
        )),
    }
}

/// Price per accelerator-hour = instance $/h / accelerators in the instance.
pub fn usd_per_accelerator_hour(
    instance_usd_per_hour: f64,
    accelerators_per_instance: u32,
) -> Result<f64> {
    check_positive(
        instance_usd_per_hour,
        "the instance price in $/h",
        "Give the instance's hourly price in USD, e.g. 55.04",
    )?;
    if accelerators_per_instance == 0 {
        return Err(Error::bad_input(
            "the instance has 0 accelerators",
            "Give the number of accelerators per instance (1 for CPU-only instances and per-GPU rates)",
        ));
    }
    Ok(instance_usd_per_hour / f64::from(accelerators_per_instance))
}

/// $/Mtok = $/accelerator-hour / (tokens/s x 3600) x 1e6, divided by `utilization` when given
/// (paying for idle time raises the price of each token produced).
pub fn usd_per_mtok(
    usd_per_accel_hour: f64,
    tokens_per_s: f64,
    utilization: Option<f64>,
) -> Result<f64> {
    check_positive(
        usd_per_accel_hour,
        "the price per accelerator-hour",
        "Give a price in USD per accelerator-hour above 0",
    )?;
    check_positive(
        tokens_per_s,
        "the token rate",
        "Give tokens per second above 0 (a failed or unmeasured benchmark has no cost)",
    )?;
    let u = check_utilization(utilization)?.unwrap_or(1.0);
    Ok(usd_per_accel_hour / (tokens_per_s * 3600.0) * 1e6 / u)
}

/// The $/Mtok interval from a tokens/s interval: `(low, high)` where the LOW price comes from
/// the HIGH token rate. A missing bound stays missing.
pub fn usd_per_mtok_bounds(
    usd_per_accel_hour: f64,
    tokens_per_s_low: Option<f64>,
    tokens_per_s_high: Option<f64>,
    utilization: Option<f64>,
) -> Result<(Option<f64>, Option<f64>)> {
    if let (Some(lo), Some(hi)) = (tokens_per_s_low, tokens_per_s_high) {
        if lo > hi {
            return Err(Error::bad_input(
                format!("the token-rate interval is reversed: low {lo} > high {hi}"),
                "Give the low bound first",
            ));
        }
    }
    let low = tokens_per_s_high
        .map(|t| usd_per_mtok(usd_per_accel_hour, t, utilization))
        .transpose()?;
    let high = tokens_per_s_low
        .map(|t| usd_per_mtok(usd_per_accel_hour, t, utilization))
        .transpose()?;
    Ok((low, high))
}

/// Owned hardware, amortised: the inputs of the owned-hardware $/h formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OwnedHardware {
    /// Purchase price of one accelerator's share of the machine.
    pub capex_usd: f64,
    pub life_years: f64,
    /// Power drawn at the wall per accelerator (before PUE).
    pub watts: f64,
    /// Power usage effectiveness of the facility (1.0 = no overhead).
    pub pue: f64,
    pub usd_per_kwh: f64,
}

impl OwnedHardware {
    /// $/h = capex / (life_years x 8760) + watts / 1000 x PUE x $/kWh.
    pub fn usd_per_hour(&self) -> Result<f64> {
        check_non_negative(
            self.capex_usd,
            "capex",
            "Give the purchase price in USD (0 if already paid off)",
        )?;
        check_positive(
            self.life_years,
            "the service life",
            "Give the depreciation period in years, e.g. 4",
        )?;
        check_non_negative(
            self.watts,
            "the power draw",
            "Give the power in watts, e.g. the TDP",
        )?;
        if !(self.pue.is_finite() && self.pue >= 1.0) {
            return Err(Error::bad_input(
                format!("PUE {} is below 1 or not finite", self.pue),
                "Give the facility's power usage effectiveness, 1.0 or more (e.g. 1.2)",
            ));
        }
        check_non_negative(
            self.usd_per_kwh,
            "the electricity price",
            "Give the price in USD per kWh, e.g. 0.10",
        )?;
        let usd = self.capex_usd / (self.life_years * HOURS_PER_YEAR)
            + self.watts / 1000.0 * self.pue * self.usd_per_kwh;
        // capex 0 and watts 0 would make every token free, which no table should show.
        check_positive(
            usd,
            "the owned-hardware price per hour",
            "Give a capex or a power draw above 0",
        )
    }

    /// One line for the `source` of an owned offering.
    pub fn describe(&self) -> String {
        format!(
            "owned: ${} capex over {} years + {} W x PUE {} at ${}/kWh",
            self.capex_usd, self.life_years, self.watts, self.pue, self.usd_per_kwh
        )
    }
}

/// Energy per token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnergyPerToken {
    pub joules_per_token: f64,
    /// True when the watts are a spec figure (TDP), not a measurement: label the number
    /// "modelled" wherever it is shown.
    pub modelled: bool,
}

/// J/token = watts / tokens/s. Pass `modelled = true` when `watts` is a TDP.
pub fn joules_per_token(watts: f64, tokens_per_s: f64, modelled: bool) -> Result<EnergyPerToken> {
    check_positive(
        watts,
        "the power",
        "Give the power in watts above 0 (the TDP when not measured)",
    )?;
    check_positive(
        tokens_per_s,
        "the token rate",
        "Give tokens per second above 0",
    )?;
    Ok(EnergyPerToken {
        joules_per_token: watts / tokens_per_s,
        modelled,
    })
}

/// A row of `tokens.csv`: the token rate of one model and phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokensRow {
    pub model: String,
    pub phase: PhaseKind,
    pub batch: u32,
    /// Prompt tokens per sequence (prefill; input tokens for a workload).
    pub prompt_len: Option<u32>,
    /// Keys each new token attends to (decode; input + output for a workload).
    pub context_len: Option<u32>,
    pub tokens_per_s: f64,
    pub tokens_per_s_low: Option<f64>,
    pub tokens_per_s_high: Option<f64>,
    pub basis: Basis,
}

impl TokensRow {
    pub fn case(&self) -> Case {
        Case {
            model: self.model.clone(),
            phase: self.phase,
            batch: self.batch,
            prompt_len: self.prompt_len,
            context_len: self.context_len,
        }
    }
}

/// What a token rate is the rate of: one model's phase at one batch, prompt and context
/// length. Rows of the same model and phase at other batches are other cases (a decode step
/// at batch 16 streams the same weights as at batch 1, so its tokens cost about a sixteenth),
/// so tables, ranks and charts group by the whole case, never by model and phase alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Case {
    pub model: String,
    pub phase: PhaseKind,
    pub batch: u32,
    pub prompt_len: Option<u32>,
    pub context_len: Option<u32>,
}

impl Case {
    /// The token counts the rate was measured at, for a table cell: `prompt 512`, `context
    /// 576`, or for a workload its input:output weights, `512:128 in:out`.
    pub fn tokens_text(&self) -> String {
        self.tokens().unwrap_or_else(|| "-".into())
    }

    /// [`Case::tokens_text`], `None` where the row gives no token counts.
    fn tokens(&self) -> Option<String> {
        Some(match (self.phase, self.prompt_len, self.context_len) {
            (PhaseKind::Workload, Some(p), Some(c)) => {
                format!("{p}:{} in:out", c.saturating_sub(p))
            }
            (_, Some(p), None) => format!("prompt {p}"),
            (_, None, Some(c)) => format!("context {c}"),
            (_, Some(p), Some(c)) => format!("prompt {p}, context {c}"),
            (_, None, None) => return None,
        })
    }

    /// `llama-3.1-8b decode, batch 16, context 576`: a heading for the case's tables.
    pub fn label(&self) -> String {
        let tokens = self.tokens().map_or(String::new(), |t| format!(", {t}"));
        format!(
            "{} {}, batch {}{tokens}",
            self.model, self.phase, self.batch
        )
    }
}

/// A row of `costs.csv`: one model and phase, at one batch, prompt and context length (the
/// token row's), on one offering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRow {
    pub model: String,
    pub phase: PhaseKind,
    pub batch: u32,
    /// As in [`TokensRow`]: prompt tokens (prefill; input tokens for a workload).
    pub prompt_len: Option<u32>,
    /// As in [`TokensRow`]: keys each new token attends to (decode; input + output for a
    /// workload).
    pub context_len: Option<u32>,
    pub accelerator: String,
    pub provider: String,
    pub instance: String,
    pub region: String,
    pub tier: Tier,
    pub usd_per_hour: f64,
    pub accelerators_per_instance: u32,
    pub usd_per_accelerator_hour: f64,
    pub tokens_per_s: f64,
    pub usd_per_mtok: f64,
    pub usd_per_mtok_low: Option<f64>,
    pub usd_per_mtok_high: Option<f64>,
    /// ISO date of the price; None for undated, owned and custom prices.
    pub price_as_of: Option<String>,
    pub basis: Basis,
}

/// Prices every token row on every offering, cheapest $/Mtok first. The rows' token rates
/// are per accelerator, so the offerings should be those of the accelerator the rates belong
/// to (measured on it, or projected to it).
pub fn price_offerings(
    tokens: &[TokensRow],
    offerings: &[Offering],
    utilization: Option<f64>,
) -> Result<Vec<CostRow>> {
    check_utilization(utilization)?;
    let mut out = Vec::with_capacity(tokens.len() * offerings.len());
    for t in tokens {
        let ctx = |e: Error| match e {
            Error::BadInput { what, fix } => {
                Error::bad_input(format!("{} {}: {what}", t.model, t.phase), fix)
            }
            other => other,
        };
        for o in offerings {
            let usd_per_mtok =
                usd_per_mtok(o.usd_per_accelerator_hour, t.tokens_per_s, utilization)
                    .map_err(ctx)?;
            let (low, high) = usd_per_mtok_bounds(
                o.usd_per_accelerator_hour,
                t.tokens_per_s_low,
                t.tokens_per_s_high,
                utilization,
            )
            .map_err(ctx)?;
            out.push(CostRow {
                model: t.model.clone(),
                phase: t.phase,
                batch: t.batch,
                prompt_len: t.prompt_len,
                context_len: t.context_len,
                accelerator: o.accelerator.clone(),
                provider: o.provider.clone(),
                instance: o.instance.clone(),
                region: o.region.clone(),
                tier: o.tier,
                usd_per_hour: o.usd_per_hour,
                accelerators_per_instance: o.accelerators_per_instance,
                usd_per_accelerator_hour: o.usd_per_accelerator_hour,
                tokens_per_s: t.tokens_per_s,
                usd_per_mtok,
                usd_per_mtok_low: low,
                usd_per_mtok_high: high,
                price_as_of: o.as_of.map(|d| d.format("%Y-%m-%d").to_string()),
                basis: t.basis,
            });
        }
    }
    sort_cost_rows(&mut out);
    Ok(out)
}

impl CostRow {
    pub fn case(&self) -> Case {
        Case {
            model: self.model.clone(),
            phase: self.phase,
            batch: self.batch,
            prompt_len: self.prompt_len,
            context_len: self.context_len,
        }
    }
}

/// Cheapest $/Mtok first; ties in a stable, readable order.
pub fn sort_cost_rows(rows: &mut [CostRow]) {
    rows.sort_by(|a, b| {
        a.usd_per_mtok
            .total_cmp(&b.usd_per_mtok)
            .then_with(|| a.model.cmp(&b.model))
            .then_with(|| a.phase.cmp(&b.phase))
            .then_with(|| a.batch.cmp(&b.batch))
            .then_with(|| a.provider.cmp(&b.provider))
            .then_with(|| a.instance.cmp(&b.instance))
            .then_with(|| a.tier.cmp(&b.tier))
    });
}

/// The spec peak that bounds a phase: FLOP/s for prefill (compute-bound), memory bandwidth
/// for decode (each step streams the weights and the KV cache). None for workload rows, which
/// mix both; project their prefill and decode rows and recompose instead.
fn limiting_peak(acc: &Accelerator, phase: PhaseKind, dtype: DType) -> Option<f64> {
    match phase {
        PhaseKind::Prefill => acc.peak_tflops(dtype),
        PhaseKind::Decode => acc.memory_bandwidth_gbs,
        PhaseKind::Workload => None,
    }
}

/// Projects token rates measured on `measured_on` to `target`: the fraction of peak achieved
/// here (the efficiency) times the target's spec peak, i.e. tokens/s x target peak / measured
/// peak, with the peak that bounds the phase (FLOP/s of `dtype` for
/// prefill, memory bandwidth for decode). A workload row, which mixes both, is recomposed
/// from the projected prefill and decode rows of its run (`project_workload`). Rows for
/// which either peak is unknown (e.g. measured on a CPU, which has no peak in the catalog)
/// are left out. The result's basis is `projected`.
pub fn project_tokens(
    tokens: &[TokensRow],
    measured_on: &Accelerator,
    target: &Accelerator,
    dtype: DType,
) -> Vec<TokensRow> {
    let phases: Vec<TokensRow> = tokens
        .iter()
        .filter_map(|t| {
            let from = limiting_peak(measured_on, t.phase, dtype)?;
            let to = limiting_peak(target, t.phase, dtype)?;
            let r = to / from;
            Some(TokensRow {
                tokens_per_s: t.tokens_per_s * r,
                tokens_per_s_low: t.tokens_per_s_low.map(|x| x * r),
                tokens_per_s_high: t.tokens_per_s_high.map(|x| x * r),
                basis: Basis::Projected,
                ..t.clone()
            })
        })
        .collect();
    let workloads: Vec<TokensRow> = tokens
        .iter()
        .filter(|t| t.phase == PhaseKind::Workload)
        .filter_map(|w| project_workload(w, &phases))
        .collect();
    phases.into_iter().chain(workloads).collect()
}

/// A workload row (a request: prefill the prompt, then `gen` decode steps, composed as in
/// [`crate::compose::token_rates`]) from the projected prefill and decode rows of the same
/// model, batch and lengths: per sequence, time = prompt / prefill rate + gen / decode rate
/// (both rates count the batch's tokens), tokens/s = (prompt + gen) / time. `None` when
/// either phase was not projected. Bounds pair the low rates and the high ones.
fn project_workload(w: &TokensRow, projected: &[TokensRow]) -> Option<TokensRow> {
    let (prompt, context) = (w.prompt_len?, w.context_len?);
    let gen = context.checked_sub(prompt)?;
    let of = |phase: PhaseKind, prompt_len: Option<u32>, context_len: Option<u32>| {
        projected.iter().find(|t| {
            t.model == w.model
                && t.batch == w.batch
                && t.phase == phase
                && t.prompt_len == prompt_len
                && t.context_len == context_len
        })
    };
    let prefill = of(PhaseKind::Prefill, Some(prompt), None)?;
    let decode = of(
        PhaseKind::Decode,
        None,
        Some(crate::compose::decode_context(prompt, gen)),
    )?;
    let (p, g) = (f64::from(prompt), f64::from(gen));
    // Per sequence; the batch cancels out of both times and the tokens.
    let rate = |prefill_tps: f64, decode_tps: f64| (p + g) / (p / prefill_tps + g / decode_tps);
    let bound = |a: Option<f64>, b: Option<f64>| Some(rate(a?, b?));
    Some(TokensRow {
        tokens_per_s: rate(prefill.tokens_per_s, decode.tokens_per_s),
        tokens_per_s_low: bound(prefill.tokens_per_s_low, decode.tokens_per_s_low),
        tokens_per_s_high: bound(prefill.tokens_per_s_high, decode.tokens_per_s_high),
        basis: Basis::Projected,
        ..w.clone()
    })
}

/// Projected cost rows for every accelerator wgpu cannot reach (Trainium, Inferentia...),
/// from token rates measured on `measured_on` (see [`project_tokens`]), priced on each of
/// their catalog offerings, and the offerings that priced a row (for the price-age note).
/// Only measured rows are projected (projecting a projection would compound the error).
pub fn price_projected(
    catalog: &Catalog,
    tokens: &[TokensRow],
    measured_on: &Accelerator,
    dtype: DType,
    utilization: Option<f64>,
) -> Result<(Vec<CostRow>, Vec<Offering>)> {
    let measured: Vec<TokensRow> = tokens
        .iter()
        .filter(|t| t.basis == Basis::Measured)
        .cloned()
        .collect();
    let mut out = Vec::new();
    let mut priced = Vec::new();
    for target in catalog.unreachable_accelerators() {
        let projected = project_tokens(&measured, measured_on, target, dtype);
        let offerings = catalog.offerings_for(&target.name);
        let rows = price_offerings(&projected, &offerings, utilization)?;
        if !rows.is_empty() {
            out.extend(rows);
            priced.extend(offerings);
        }
    }
    sort_cost_rows(&mut out);
    Ok((out, priced))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-12)
    }

    #[test]
    fn thousand_tokens_per_s_at_1_30_is_0_3611_per_mtok() {
        // 1.30 / (1000 x 3600) x 1e6 = 0.36111...
        let v = usd_per_mtok(1.30, 1000.0, None).unwrap();
        assert!(close(v, 0.361_111_111, 1e-9), "{v}");
        assert_eq!(format!("{v:.4}"), "0.3611");
    }

    #[test]
    fn p5_per_gpu_hour() {
        // p5.48xlarge: $55.04/h, 8 x H100 -> $6.88 per GPU-hour.
        let v = usd_per_accelerator_hour(55.04, 8).unwrap();
        assert!(close(v, 6.88, 1e-12), "{v}");
    }

    #[test]
    fn utilization_divides() {
        // 50% busy: every token carries twice the paid time.
        let full = usd_per_mtok(1.30, 1000.0, None).unwrap();
        let half = usd_per_mtok(1.30, 1000.0, Some(0.5)).unwrap();
        assert!(close(half, 2.0 * full, 1e-12));
        assert!(close(
            usd_per_mtok(1.30, 1000.0, Some(1.0)).unwrap(),
            full,
            1e-12
        ));
    }

    #[test]
    fn bounds_come_from_the_opposite_rate_bound() {
        // low $ from 1100 tok/s: 1.30/(1100*3600)*1e6 = 0.328283; high $ from 900: 0.401235.
        let (lo, hi) = usd_per_mtok_bounds(1.30, Some(900.0), Some(1100.0), None).unwrap();
        assert!(close(lo.unwrap(), 0.328_282_828, 1e-8));
        assert!(close(hi.unwrap(), 0.401_234_568, 1e-8));
        assert_eq!(
            usd_per_mtok_bounds(1.30, None, None, None).unwrap(),
            (None, None)
        );
        assert!(usd_per_mtok_bounds(1.30, Some(2.0), Some(1.0), None).is_err());
    }

    #[test]
    fn owned_hardware_by_hand() {
        // 30000 / (4 x 8760) = 0.856164 ; 700 W / 1000 x 1.2 x 0.10 = 0.084 ; sum 0.940164 $/h
        let hw = OwnedHardware {
            capex_usd: 30_000.0,
            life_years: 4.0,
            watts: 700.0,
            pue: 1.2,
            usd_per_kwh: 0.10,
        };
        let v = hw.usd_per_hour().unwrap();
        assert!(close(v, 30_000.0 / 35_040.0 + 0.084, 1e-12), "{v}");
        assert!(close(v, 0.940_164, 1e-6));
        // ...and it divides by utilization like a rented price: 0.940164/(1000*3600)*1e6/0.5
        let m = usd_per_mtok(v, 1000.0, Some(0.5)).unwrap();
        assert!(close(m, 0.522_313_4, 1e-6), "{m}");
        let o = Offering::owned("H100 SXM", &hw).unwrap();
        assert_eq!((o.tier, o.accelerators_per_instance), (Tier::Owned, 1));
    }

    #[test]
    fn owned_hardware_refuses_nonsense() {
        let ok = OwnedHardware {
            capex_usd: 1.0,
            life_years: 1.0,
            watts: 1.0,
            pue: 1.0,
            usd_per_kwh: 1.0,
        };
        for bad in [
            OwnedHardware {
                life_years: 0.0,
                ..ok
            },
            OwnedHardware { pue: 0.9, ..ok },
            OwnedHardware {
                capex_usd: -1.0,
                ..ok
            },
            OwnedHardware {
                watts: f64::NAN,
                ..ok
            },
            OwnedHardware {
                capex_usd: 0.0,
                watts: 0.0,
                ..ok
            },
        ] {
            let e = bad.usd_per_hour().unwrap_err();
            assert!(matches!(e, Error::BadInput { .. }), "{e}");
        }
    }

    #[test]
    fn energy_by_hand() {
        // 700 W at 1000 tok/s = 0.7 J/token, modelled from TDP.
        let e = joules_per_token(700.0, 1000.0, true).unwrap();
        assert!(close(e.joules_per_token, 0.7, 1e-12));
        assert!(e.modelled);
        assert!(joules_per_token(700.0, 0.0, true).is_err());
    }

    #[test]
    fn invalid_numbers_are_bad_input_with_a_fix() {
        for r in [
            usd_per_mtok(1.3, 0.0, None),
            usd_per_mtok(1.3, -5.0, None),
            usd_per_mtok(1.3, f64::NAN, None),
            usd_per_mtok(1.3, f64::INFINITY, None),
            usd_per_mtok(0.0, 1000.0, None),
            usd_per_mtok(-1.0, 1000.0, None),
            usd_per_mtok(1.3, 1000.0, Some(0.0)),
            usd_per_mtok(1.3, 1000.0, Some(1.5)),
            usd_per_mtok(1.3, 1000.0, Some(f64::NAN)),
            usd_per_accelerator_hour(55.04, 0),
            usd_per_accelerator_hour(f64::NAN, 8),
        ] {
            match r {
                Err(Error::BadInput { what, fix }) => assert!(!fix.is_empty() && !what.is_empty()),
                other => panic!("expected bad input, got {other:?}"),
            }
        }
    }

    fn tokens(tps: f64) -> TokensRow {
        TokensRow {
            model: "llama-3.1-8b".into(),
            phase: PhaseKind::Decode,
            batch: 1,
            prompt_len: None,
            context_len: Some(1024),
            tokens_per_s: tps,
            tokens_per_s_low: Some(tps * 0.9),
            tokens_per_s_high: Some(tps * 1.1),
            basis: Basis::Measured,
        }
    }

    #[test]
    fn price_offerings_sorts_cheapest_first_and_fills_columns() {
        let catalog = Catalog::load_default().unwrap();
        let offers = catalog.offerings_for("H100 SXM");
        assert!(offers.len() > 5);
        let rows = price_offerings(&[tokens(1000.0)], &offers, None).unwrap();
        assert_eq!(rows.len(), offers.len());
        assert!(rows
            .windows(2)
            .all(|w| w[0].usd_per_mtok <= w[1].usd_per_mtok));
        let p5 = rows
            .iter()
            .find(|r| r.instance == "p5.48xlarge" && r.tier == Tier::OnDemand)
            .unwrap();
        assert_eq!(p5.accelerators_per_instance, 8);
        assert!(close(p5.usd_per_hour, 55.04, 1e-12));
        assert!(close(p5.usd_per_accelerator_hour, 6.88, 1e-12));
        // 6.88 / (1000 x 3600) x 1e6 = 1.91111
        assert!(close(p5.usd_per_mtok, 1.911_111_1, 1e-7));
        assert!(
            p5.usd_per_mtok_low.unwrap() < p5.usd_per_mtok
                && p5.usd_per_mtok < p5.usd_per_mtok_high.unwrap()
        );
        assert_eq!(p5.price_as_of.as_deref(), Some("2026-01-21"));
        assert_eq!(p5.basis, Basis::Measured);
        assert!(price_offerings(&[tokens(0.0)], &offers, None).is_err());
        assert!(price_offerings(&[tokens(1000.0)], &offers, Some(2.0)).is_err());
    }

    #[test]
    fn cost_row_serializes_to_the_design_columns() {
        let offer = Offering::custom("H100 SXM", 2.0, 1).unwrap();
        let rows = price_offerings(&[tokens(1000.0)], &[offer], None).unwrap();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&rows[0]).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let header = text.lines().next().unwrap();
        assert_eq!(
            header,
            "model,phase,batch,prompt_len,context_len,accelerator,provider,instance,region,tier,usd_per_hour,\
             accelerators_per_instance,usd_per_accelerator_hour,tokens_per_s,usd_per_mtok,usd_per_mtok_low,\
             usd_per_mtok_high,price_as_of,basis"
        );
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .contains(",decode,1,,1024,H100 SXM,custom,custom,,custom,2.0,1,2.0,1000.0,"));
        // The CSV the run writes has the same columns in the same order.
        assert_eq!(
            <CostRow as crate::results::csv_cells::CsvRow>::header().join(","),
            header
        );
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(tokens(5.0)).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "model,phase,batch,prompt_len,context_len,tokens_per_s,tokens_per_s_low,tokens_per_s_high,basis"
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "llama-3.1-8b,decode,1,,1024,5.0,4.5,5.5,measured"
        );
    }

    #[test]
    fn projection_scales_by_the_limiting_peak() {
        let catalog = Catalog::load_default().unwrap();
        let h100 = catalog.accelerator("H100 SXM").unwrap();
        let trn1 = catalog.accelerator("Trainium1").unwrap();
        let mut prefill = tokens(10_000.0);
        prefill.phase = PhaseKind::Prefill;
        let decode = tokens(100.0);
        let p = project_tokens(&[prefill, decode], h100, trn1, DType::F16);
        assert_eq!(p.len(), 2);
        // Prefill by FP16 tensor peak: 10000 x 190 / 989.4.
        assert!(close(p[0].tokens_per_s, 10_000.0 * 190.0 / 989.4, 1e-12));
        // Decode by bandwidth: 100 x 820 / 3350.
        assert!(close(p[1].tokens_per_s, 100.0 * 820.0 / 3350.0, 1e-12));
        assert!(p.iter().all(|t| t.basis == Basis::Projected));
        // A workload (prompt 1000, generate 200) is recomposed from the projected phases,
        // its decode measured at the average context, 1000 + 100.
        let mut prefill = tokens(10_000.0);
        prefill.phase = PhaseKind::Prefill;
        (prefill.prompt_len, prefill.context_len) = (Some(1000), None);
        let mut decode = tokens(100.0);
        decode.context_len = Some(1100);
        let mut workload = tokens(450.0);
        workload.phase = PhaseKind::Workload;
        (workload.prompt_len, workload.context_len) = (Some(1000), Some(1200));
        let p = project_tokens(&[prefill, decode, workload], h100, trn1, DType::F16);
        assert_eq!(p.len(), 3);
        let w = p.iter().find(|t| t.phase == PhaseKind::Workload).unwrap();
        let (pf, dc) = (10_000.0 * 190.0 / 989.4, 100.0 * 820.0 / 3350.0);
        assert!(close(
            w.tokens_per_s,
            1200.0 / (1000.0 / pf + 200.0 / dc),
            1e-12
        ));
        assert!(w.tokens_per_s_low.unwrap() < w.tokens_per_s);
        assert!(w.tokens_per_s < w.tokens_per_s_high.unwrap());
        assert_eq!(w.basis, Basis::Projected);
        // Without a projected decode row at its context, no workload row.
        let mut other = tokens(100.0);
        other.context_len = Some(1024);
        assert!(
            project_tokens(&[p[0].clone(), other, w.clone()], h100, trn1, DType::F16)
                .iter()
                .all(|t| t.phase != PhaseKind::Workload)
        );
        // A CPU has no peak: nothing is projected from it.
        let cpu = catalog
            .match_adapter("llvmpipe (LLVM 15.0.6, 256 bits)", true)
            .unwrap();
        assert!(project_tokens(&[tokens(5.0)], cpu, trn1, DType::F32).is_empty());

        let (rows, _) =
            price_projected(&catalog, &[tokens(100.0)], h100, DType::F16, None).unwrap();
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r.basis == Basis::Projected));
        assert!(rows.iter().any(|r| r.instance == "trn1.32xlarge"));
        assert!(rows.iter().any(|r| r.instance == "inf2.xlarge"));
        // trn2.48xlarge has no listed price, so no row.
        assert!(!rows.iter().any(|r| r.instance == "trn2.48xlarge"));
    }
}
