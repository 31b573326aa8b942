//! The join of measured token rates with the price catalog: which offerings a run is priced
//! on (every instance carrying the matched accelerator, CPU instances of the same vCPU count
//! for software adapters, the user's own instance or quote, owned hardware), plus projected
//! rows for accelerators wgpu cannot reach. The formulas are in [`crate::cost`].

use crate::catalog::{Catalog, Offering};
use crate::cost::{
    price_offerings, price_projected, sort_cost_rows, Basis, CostRow, OwnedHardware, TokensRow,
};
use crate::error::Result;
use crate::gpu::AdapterSummary;
use crate::shape::DType;

/// How the user wants the run priced.
#[derive(Debug, Clone, Default)]
pub struct PricingOptions {
    /// The instance the run is on: price only its offerings.
    pub instance: Option<String>,
    /// A private quote in $/hour for the whole machine the run is on.
    pub price_per_hour: Option<f64>,
    /// Fraction of time the accelerator does useful work, in (0, 1].
    pub utilization: Option<f64>,
    /// Owned-hardware costs, priced as tier `owned`.
    pub owned: Option<OwnedHardware>,
    /// Prices older than this many days are flagged.
    pub max_age_days: u32,
}

/// Cost rows for a run, cheapest first, and notes (what was matched, stale prices).
pub fn price_run(
    catalog: &Catalog,
    adapter: &AdapterSummary,
    vcpus: u32,
    tokens: &[TokensRow],
    dtype: DType,
    opts: &PricingOptions,
) -> Result<(Vec<CostRow>, Vec<String>)> {
    let mut notes = Vec::new();
    let accel = catalog.match_adapter(&adapter.name, adapter.is_cpu());
    let accel_name = accel.map_or_else(|| adapter.name.clone(), |a| a.name.clone());
    match accel {
        Some(a) => notes.push(format!("adapter `{}` matched accelerator `{}`", adapter.name, a.name)),
        None => notes.push(format!(
            "adapter `{}` matches no accelerator in the catalog; give --instance or --price-per-hour to price it",
            adapter.name
        )),
    }
    let mut offerings: Vec<Offering> = if let Some(p) = opts.price_per_hour {
        vec![Offering::custom(&accel_name, p, 1)?]
    } else if let Some(instance) = &opts.instance {
        catalog.offerings_for_instance(instance)?
    } else if adapter.is_cpu() {
        notes.push(format!(
            "software adapter: priced on CPU instances with {vcpus} vCPUs"
        ));
        catalog.cpu_offerings(vcpus)
    } else if accel.is_some() {
        catalog.offerings_for(&accel_name)
    } else {
        Vec::new()
    };
    if let Some(hw) = &opts.owned {
        offerings.push(Offering::owned(&accel_name, hw)?);
    }
    let today = chrono::Utc::now().date_naive();
    let stale: Vec<String> = offerings
        .iter()
        .filter(|o| o.as_of.is_some() && o.is_stale(today, opts.max_age_days))
        .map(|o| {
            format!(
                "{} {} ({})",
                o.provider,
                o.instance,
                o.as_of.map(|d| d.to_string()).unwrap_or_default()
            )
        })
        .collect();
    if !stale.is_empty() {
        notes.push(format!(
            "{} price(s) are older than {} days: {}",
            stale.len(),
            opts.max_age_days,
            stale.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut rows = price_offerings(tokens, &offerings, opts.utilization)?;
    if let (Some(a), None, None) = (accel, &opts.instance, opts.price_per_hour) {
        let projected = price_projected(catalog, tokens, a, dtype, opts.utilization)?;
        // Only where there were token rates to project: a kernel-only run has none, and
        // the note would blame a spec peak the accelerator has.
        let measured = tokens.iter().any(|t| t.basis == Basis::Measured);
        if projected.is_empty() && measured && catalog.unreachable_accelerators().next().is_some() {
            notes.push(format!(
                "no projected rows: `{}` has no spec peak to scale from",
                a.name
            ));
        }
        rows.extend(projected);
        sort_cost_rows(&mut rows);
    }
    Ok((rows, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PhaseKind;

    /// Pricing sees the adapter's name and type only.
    fn h200() -> AdapterSummary {
        AdapterSummary {
            name: "NVIDIA H200".into(),
            ..crate::suite::tests::adapter(false)
        }
    }

    /// A kernel-only run has no token rates to project: no note may blame the spec peak
    /// (the H200 run at 4096³ said "`H200` has no spec peak to scale from"). With a measured
    /// rate, the accelerators wgpu cannot reach get projected rows.
    #[test]
    fn projection_notes_only_where_there_was_something_to_project() {
        let catalog = Catalog::from_files(None, None, false).unwrap();
        let opts = PricingOptions {
            instance: None,
            price_per_hour: None,
            utilization: None,
            owned: None,
            max_age_days: 100_000,
        };
        let price = |tokens: &[TokensRow]| {
            price_run(&catalog, &h200(), 16, tokens, DType::F16, &opts).unwrap()
        };
        let (rows, notes) = price(&[]);
        assert!(rows.is_empty(), "{rows:?}");
        assert!(
            !notes.iter().any(|n| n.contains("no projected rows")),
            "{notes:?}"
        );
        let measured = TokensRow {
            model: "gpt2".into(),
            phase: PhaseKind::Decode,
            batch: 1,
            prompt_len: None,
            context_len: Some(576),
            tokens_per_s: 396.5,
            tokens_per_s_low: None,
            tokens_per_s_high: None,
            basis: Basis::Measured,
        };
        let (rows, _) = price(&[measured]);
        assert!(rows.iter().any(|r| r.basis == Basis::Projected), "{rows:?}");
    }
}
