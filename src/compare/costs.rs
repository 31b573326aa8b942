//! The costs of two result sets side by side (`costs.csv`): for each rate both sides priced,
//! the cheapest dollars per million tokens on each side; and the offerings whose hourly
//! price differs between the sides. Informational only: a cost is its offering's price over
//! its token rate, the rate is judged through the kernel rows ([`super::tokens`] lists it)
//! and the price is what each side's catalog said, so this says which of the two moved a
//! cost.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::tokens::TokenKey;
use crate::cost::CostRow;
use crate::dataset::Run;
use crate::error::Result;
use crate::results::csv_cells::CsvRow;

/// An offering, as `costs.csv` names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OfferingKey {
    pub accelerator: String,
    pub provider: String,
    pub instance: String,
    pub region: String,
    pub tier: String,
}

/// `provider instance region tier (accelerator)`, leaving out empty fields (owned hardware
/// has no region).
impl std::fmt::Display for OfferingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = [&self.provider, &self.instance, &self.region, &self.tier];
        let named: Vec<&str> = fields
            .iter()
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .collect();
        write!(f, "{} ({})", named.join(" "), self.accelerator)
    }
}

/// The cheapest offering for a rate on one side.
#[derive(Debug, Clone, Serialize)]
pub struct Cheapest {
    pub usd_per_mtok: f64,
    pub offering: OfferingKey,
}

/// One rate's cheapest cost on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct CostChange {
    pub key: TokenKey,
    pub base: Cheapest,
    pub head: Cheapest,
    /// `(head / base - 1)·100`: positive costs more.
    pub change_pct: f64,
}

/// An offering's price on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Price {
    pub usd_per_hour: f64,
    /// ISO date of the price (the latest, where rows of one side give several); None where
    /// the catalog gives none.
    pub as_of: Option<String>,
}

/// An offering priced on both sides at different hourly prices.
#[derive(Debug, Clone, Serialize)]
pub struct PriceChange {
    pub offering: OfferingKey,
    pub base: Price,
    pub head: Price,
    /// `(head / base - 1)·100`.
    pub change_pct: f64,
}

/// Everything the cost comparison found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CostChanges {
    /// Whether both sides hold a `costs.csv` with the columns: the rest is empty otherwise.
    pub both_sides: bool,
    /// Rates both sides priced, in key order.
    pub cheapest: Vec<CostChange>,
    /// Offerings priced on both sides whose hourly price differs, in offering order.
    pub prices: Vec<PriceChange>,
    /// Offerings priced on both sides (changed or not; those at two prices on a side
    /// included, though left out of `prices`).
    pub offerings_on_both: usize,
    pub offerings_only_in_base: usize,
    pub offerings_only_in_head: usize,
}

/// The costs both sides hold, and warnings about those that could not be compared (a run
/// without the columns, one offering at two prices on one side).
pub fn cost_changes(base: &[Run], head: &[Run]) -> Result<(CostChanges, Vec<String>)> {
    let mut warnings = Vec::new();
    let b = side("BASE", base, &mut warnings)?;
    let h = side("HEAD", head, &mut warnings)?;
    if !(b.has_costs && h.has_costs) {
        return Ok((CostChanges::default(), warnings));
    }
    let cheapest = b
        .cheapest
        .iter()
        .filter_map(|(key, base)| {
            let head = h.cheapest.get(key)?;
            Some(CostChange {
                key: key.clone(),
                base: base.clone(),
                head: head.clone(),
                change_pct: (head.usd_per_mtok / base.usd_per_mtok - 1.0) * 100.0,
            })
        })
        .collect();
    let mut prices = Vec::new();
    for (offering, base) in &b.prices {
        let Some(head) = h.prices.get(offering) else {
            continue;
        };
        if head.usd_per_hour != base.usd_per_hour {
            prices.push(PriceChange {
                offering: offering.clone(),
                base: base.clone(),
                head: head.clone(),
                change_pct: (head.usd_per_hour / base.usd_per_hour - 1.0) * 100.0,
            });
        }
    }
    let only = |of: &Side, other: &Side| of.priced.difference(&other.priced).count();
    Ok((
        CostChanges {
            both_sides: true,
            cheapest,
            prices,
            offerings_on_both: b.priced.intersection(&h.priced).count(),
            offerings_only_in_base: only(&b, &h),
            offerings_only_in_head: only(&h, &b),
        },
        warnings,
    ))
}

/// One side's cheapest cost per rate and price per offering.
#[derive(Default)]
struct Side {
    /// Whether a run of the side has a `costs.csv` with the columns.
    has_costs: bool,
    cheapest: BTreeMap<TokenKey, Cheapest>,
    /// Every offering with a price, including those at two prices.
    priced: BTreeSet<OfferingKey>,
    /// The offerings with one price.
    prices: BTreeMap<OfferingKey, Price>,
}

fn side(name: &str, runs: &[Run], warnings: &mut Vec<String>) -> Result<Side> {
    let mut out = Side::default();
    let mut two_prices = BTreeSet::new();
    for run in runs {
        let Some(table) = &run.costs else { continue };
        // The columns `priceperf run` writes; an older or foreign layout is not guessed at.
        if let Some(missing) = CostRow::header().iter().find(|c| table.column(c).is_none()) {
            warnings.push(format!(
                "{name} {}: no `{missing}` column, so its costs are not compared",
                table.path.display()
            ));
            continue;
        }
        out.has_costs = true;
        for row in &table.rows {
            let offering = OfferingKey {
                accelerator: table.text(row, "accelerator").to_string(),
                provider: table.text(row, "provider").to_string(),
                instance: table.text(row, "instance").to_string(),
                region: table.text(row, "region").to_string(),
                tier: table.text(row, "tier").to_string(),
            };
            // A price of zero or less prices nothing (and would make any change infinite).
            if let Some(usd_per_hour) = table.number(row, "usd_per_hour")?.filter(|p| *p > 0.0) {
                let as_of =
                    Some(table.text(row, "price_as_of").to_string()).filter(|d| !d.is_empty());
                out.priced.insert(offering.clone());
                match out.prices.get_mut(&offering) {
                    Some(seen) if seen.usd_per_hour != usd_per_hour => {
                        two_prices.insert(offering.clone());
                    }
                    // The same price dated twice: the later date (ISO dates sort as text).
                    Some(seen) => seen.as_of = seen.as_of.take().max(as_of),
                    None => {
                        out.prices.insert(
                            offering.clone(),
                            Price {
                                usd_per_hour,
                                as_of,
                            },
                        );
                    }
                }
            }
            let Some(usd_per_mtok) = table
                .number(row, "usd_per_mtok")?
                .filter(|c| c.is_finite() && *c > 0.0)
            else {
                continue;
            };
            let key = TokenKey::of(run, table, row);
            let cheaper = out
                .cheapest
                .get(&key)
                .is_none_or(|c| usd_per_mtok < c.usd_per_mtok);
            if cheaper {
                out.cheapest.insert(
                    key,
                    Cheapest {
                        usd_per_mtok,
                        offering,
                    },
                );
            }
        }
    }
    // Runs merged from several catalogs can price one offering twice; neither price is the
    // side's, so the offering is left out of the price comparison.
    if let Some(first) = two_prices.first() {
        warnings.push(format!(
            "{} offering(s) have more than one price in {name} (runs priced with different catalogs), so their prices are not compared: first {first}",
            two_prices.len()
        ));
        for offering in &two_prices {
            out.prices.remove(offering);
        }
    }
    Ok(out)
}
