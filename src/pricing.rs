//! The join of measured token rates with the price catalog: which offerings a run is priced
//! on (every instance carrying the matched accelerator, CPU instances of the same vCPU count
//! for software adapters, the user's own instance or quote, owned hardware), plus projected
//! rows for accelerators wgpu cannot reach. The formulas are in [`crate::cost`].

use crate::catalog::{AcceleratorKind, Catalog, Offering};
use crate::cost::{
    price_offerings, price_projected, sort_cost_rows, Basis, CostRow, OwnedHardware, TokensRow,
};
use crate::error::Result;
use crate::gpu::AdapterSummary;
use crate::shape::DType;
use chrono::NaiveDate;

/// How the user wants the run priced.
#[derive(Debug, Clone)]
pub struct PricingOptions {
    /// The instance the run is on: price only its offerings.
    pub instance: Option<String>,
    /// A private quote in $/hour for the whole machine the run is on ...
    pub price_per_hour: Option<f64>,
    /// ... shared among this many accelerators.
    pub accelerators_per_machine: u32,
    /// Fraction of time the accelerator does useful work, in (0, 1].
    pub utilization: Option<f64>,
    /// Owned-hardware costs, priced as tier `owned`.
    pub owned: Option<OwnedHardware>,
    /// Prices older than this many days are flagged.
    pub max_age_days: u32,
}

/// Catalog prices older than this many days are flagged unless `--max-price-age-days` says
/// otherwise.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 180;

impl Default for PricingOptions {
    /// The catalog's offerings as they are, prices older than [`DEFAULT_MAX_AGE_DAYS`]
    /// flagged (the CLI's defaults).
    fn default() -> Self {
        PricingOptions {
            instance: None,
            price_per_hour: None,
            accelerators_per_machine: 1,
            utilization: None,
            owned: None,
            max_age_days: DEFAULT_MAX_AGE_DAYS,
        }
    }
}

/// What an accelerator the catalog lists but prices nowhere (no instance carrying it has an
/// on-demand or spot price) lacks; `cost` errors with it, `run` notes it.
pub fn no_priced_offering(accelerator: &str) -> String {
    format!("no priced offering for {accelerator} in the catalog")
}

/// The flags that price such an accelerator.
pub const PRICE_IT: &str = "Give --price-per-hour (or --capex with --watts) to price it";

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
        vec![Offering::custom(
            &accel_name,
            p,
            opts.accelerators_per_machine,
        )?]
    } else if let Some(instance) = &opts.instance {
        catalog.offerings_for_instance(instance)?
    } else if adapter.is_cpu() || accel.is_some_and(|a| a.kind == AcceleratorKind::Cpu) {
        // By the matched row as well as wgpu's type: a software rasteriser that a driver does
        // not type as a CPU still runs on the host's cores, and the CPU row's instances
        // listed as they are (2 vCPUs for a 16-vCPU host) would price it 8x too cheap.
        notes.push(format!(
            "software adapter: priced on CPU instances with {vcpus} vCPUs"
        ));
        catalog.cpu_offerings(vcpus)
    } else if accel.is_some() {
        let own = catalog.offerings_for(&accel_name);
        // Otherwise the table holds only other chips' projected rows, and nothing says why
        // the measured accelerator is missing from it.
        if own.is_empty() && opts.owned.is_none() {
            notes.push(format!(
                "{}, so its own rows have no price. {}",
                no_priced_offering(&accel_name),
                PRICE_IT
            ));
        }
        own
    } else {
        Vec::new()
    };
    if let Some(hw) = &opts.owned {
        offerings.push(Offering::owned(&accel_name, hw)?);
    }
    let mut rows = price_offerings(tokens, &offerings, opts.utilization)?;
    // The prices every row stands on, for the age note: the projected rows' too.
    let mut priced = offerings;
    if let (Some(a), None, None) = (accel, &opts.instance, opts.price_per_hour) {
        let (projected, projected_on) =
            price_projected(catalog, tokens, a, dtype, opts.utilization)?;
        priced.extend(projected_on);
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
    let today = chrono::Utc::now().date_naive();
    notes.extend(age_note(&priced, today, opts.max_age_days));
    Ok((rows, notes))
}

/// A note naming the catalog prices (on-demand and spot) older than `max_age_days` or with
/// no as-of date at all, which nobody can say are current; `None` when every price is
/// dated and recent. Custom quotes and owned hardware carry no date and need none.
pub fn age_note(offerings: &[Offering], today: NaiveDate, max_age_days: u32) -> Option<String> {
    let name = |o: &Offering| format!("{} {} {}", o.provider, o.instance, o.tier.as_str());
    let stale: Vec<&Offering> = offerings
        .iter()
        .filter(|o| o.is_stale(today, max_age_days))
        .collect();
    let (dated, undated): (Vec<&Offering>, Vec<&Offering>) =
        stale.into_iter().partition(|o| o.as_of.is_some());
    let list = |v: &[&Offering], show_date: bool| {
        let mut names: Vec<String> = v
            .iter()
            .take(5)
            .map(|o| match (show_date, o.as_of) {
                (true, Some(d)) => format!("{} ({d})", name(o)),
                _ => name(o),
            })
            .collect();
        if v.len() > 5 {
            names.push(format!("and {} more", v.len() - 5));
        }
        names.join(", ")
    };
    let mut parts = Vec::new();
    if !dated.is_empty() {
        parts.push(format!(
            "{} price(s) are older than {max_age_days} days: {}",
            dated.len(),
            list(&dated, true)
        ));
    }
    if !undated.is_empty() {
        parts.push(format!(
            "{} price(s) have no as-of date, so nothing says they are current: {}",
            undated.len(),
            list(&undated, false)
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{}; check them with the provider before relying on their rows",
            parts.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PhaseKind;

    /// Old and undated catalog prices are named; custom quotes carry no date and need none.
    #[test]
    fn old_and_undated_prices_are_flagged() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let catalog = Catalog::from_files(None, None, false).unwrap();
        let mut offerings = catalog.offerings_for("H100 SXM");
        assert!(!offerings.is_empty());
        for o in &mut offerings {
            o.as_of = Some(today);
        }
        assert_eq!(age_note(&offerings, today, 0), None);
        offerings[0].as_of = None;
        let note = age_note(&offerings, today, 100_000).unwrap();
        assert!(note.contains("1 price(s) have no as-of date"), "{note}");
        offerings[0].as_of = NaiveDate::from_ymd_opt(2025, 1, 1);
        let note = age_note(&offerings, today, 180).unwrap();
        assert!(
            note.contains("older than 180 days") && note.contains("(2025-01-01)"),
            "{note}"
        );
        let quote = [Offering::custom("H100 SXM", 55.04, 8).unwrap()];
        assert_eq!(age_note(&quote, today, 0), None);
        // The quote is shared by the machine's accelerators.
        assert!((quote[0].usd_per_accelerator_hour - 6.88).abs() < 1e-9);
    }

    /// An adapter matching an accelerator the catalog prices nowhere says its own rows have
    /// no price: before, the cost table held only other chips' projected rows, unexplained.
    #[test]
    fn an_unpriced_accelerator_is_noted() {
        let catalog = Catalog::from_files(None, None, false).unwrap();
        assert!(catalog.offerings_for("MI300X").is_empty());
        let mi300x = AdapterSummary {
            name: "AMD Instinct MI300X".into(),
            ..crate::suite::tests::adapter(false)
        };
        let opts = any_age();
        let (rows, notes) = price_run(&catalog, &mi300x, 16, &[], DType::F16, &opts).unwrap();
        assert!(rows.is_empty(), "{rows:?}");
        assert!(
            notes.iter().any(
                |n| n.contains("no priced offering for MI300X in the catalog")
                    && n.contains("--price-per-hour")
            ),
            "{notes:?}"
        );
        // A priced accelerator, a quote or owned hardware: no such note.
        let quoted = PricingOptions {
            price_per_hour: Some(3.0),
            ..opts.clone()
        };
        for (adapter, opts) in [(&h200(), &opts), (&mi300x, &quoted)] {
            let (_, notes) = price_run(&catalog, adapter, 16, &[], DType::F16, opts).unwrap();
            assert!(
                !notes.iter().any(|n| n.contains("no priced offering")),
                "{notes:?}"
            );
        }
    }

    /// A software adapter that the driver does not type as a CPU (llvmpipe reported as
    /// "other") is still priced as the host's vCPUs: before, it took the CPU instances as
    /// listed, a 2-vCPU instance for a 16-vCPU host.
    #[test]
    fn a_cpu_row_is_priced_per_vcpu_whatever_the_adapter_type() {
        let catalog = Catalog::from_files(None, None, false).unwrap();
        let opts = any_age();
        let tokens = [TokensRow {
            model: "gpt2".into(),
            phase: PhaseKind::Decode,
            batch: 1,
            prompt_len: None,
            context_len: Some(576),
            tokens_per_s: 20.0,
            tokens_per_s_low: None,
            tokens_per_s_high: None,
            basis: Basis::Measured,
        }];
        let price = |cpu: bool| {
            let adapter = AdapterSummary {
                name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
                ..crate::suite::tests::adapter(cpu)
            };
            let (rows, notes) =
                price_run(&catalog, &adapter, 16, &tokens, DType::F16, &opts).unwrap();
            assert!(notes.iter().any(|n| n.contains("16 vCPUs")), "{notes:?}");
            rows.into_iter()
                .filter(|r| r.basis == Basis::Measured)
                .map(|r| (r.instance, r.usd_per_accelerator_hour))
                .collect::<Vec<_>>()
        };
        let typed = price(true);
        assert!(!typed.is_empty());
        assert_eq!(price(false), typed);
    }

    /// Default options that call no catalog price stale, so the notes under test stand out.
    fn any_age() -> PricingOptions {
        PricingOptions {
            max_age_days: 100_000,
            ..PricingOptions::default()
        }
    }

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
        let opts = any_age();
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
        let (rows, _) = price(std::slice::from_ref(&measured));
        assert!(rows.iter().any(|r| r.basis == Basis::Projected), "{rows:?}");
        // The projected rows' prices are dated too: an old Trainium or Inferentia price is
        // named like a measured accelerator's (it went unflagged).
        let strict = PricingOptions {
            max_age_days: 1,
            ..PricingOptions::default()
        };
        let (rows, notes) =
            price_run(&catalog, &h200(), 16, &[measured], DType::F16, &strict).unwrap();
        let own = catalog.offerings_for("H200").len();
        let projected = rows.iter().filter(|r| r.basis == Basis::Projected).count();
        assert!(projected > 0);
        let stale: usize = notes
            .iter()
            .find_map(|n| n.split_once(" price(s) are older"))
            .and_then(|(n, _)| n.parse().ok())
            .expect("an age note");
        assert!(
            stale > own,
            "{stale} stale prices of {own} H200 ones: {notes:?}"
        );
    }
}
