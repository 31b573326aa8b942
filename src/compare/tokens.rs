//! The token rates of two result sets side by side (`tokens.csv`): what the kernel rows'
//! changes come to per model and phase. Informational only: the rates are composed from
//! each benchmark's chosen kernel row, which [`super::compare`] judges and gates, so a
//! regression there is already caught; this says what it costs in tokens/s.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cost::TokensRow;
use crate::dataset::{Run, Table, TableRow};
use crate::error::Result;
use crate::results::csv_cells::CsvRow;

/// Which rate a row is: where it ran (adapter and driver, as kernel rows are matched), the
/// model ops' dtype (`run.json` settings; empty for runs before it was recorded) and the
/// row's workload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TokenKey {
    pub adapter: String,
    pub driver: String,
    pub model_dtype: String,
    pub model: String,
    pub phase: String,
    pub batch: String,
    pub prompt_len: String,
    pub context_len: String,
    /// `measured`, or how the rate was derived otherwise: rates are compared only with
    /// rates of the same basis.
    pub basis: String,
}

impl TokenKey {
    /// The key of `row`, a row of `table` (`tokens.csv` or `costs.csv`, which share the
    /// workload columns) in `run`.
    pub(super) fn of(run: &Run, table: &Table, row: &TableRow) -> TokenKey {
        let adapter = &run.info.adapter;
        TokenKey {
            adapter: adapter.name.clone(),
            driver: format!("{} {}", adapter.driver, adapter.driver_info)
                .trim()
                .to_string(),
            model_dtype: run
                .info
                .settings
                .get("model_dtype")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            model: table.text(row, "model").to_string(),
            phase: table.text(row, "phase").to_string(),
            batch: table.text(row, "batch").to_string(),
            prompt_len: table.text(row, "prompt_len").to_string(),
            context_len: table.text(row, "context_len").to_string(),
            basis: table.text(row, "basis").to_string(),
        }
    }
}

/// One rate on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct TokenChange {
    pub key: TokenKey,
    pub base: Rate,
    pub head: Rate,
    /// `(head / base - 1)·100`: negative is slower.
    pub change_pct: f64,
    /// Whether the two 95% intervals overlap (either side without one counts as
    /// overlapping): a change whose intervals overlap may be noise.
    pub intervals_overlap: bool,
}

/// A rate and its 95% interval, where the run wrote one.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub tokens_per_s: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Rate {
    fn overlaps(&self, other: &Rate) -> bool {
        match (self.low, self.high, other.low, other.high) {
            (Some(lo), Some(hi), Some(olo), Some(ohi)) => lo <= ohi && olo <= hi,
            _ => true,
        }
    }
}

/// Every rate both sides hold, in key order, and warnings about the rates that could not
/// be compared (a run without the columns, a rate in two runs of one side).
pub fn token_changes(base: &[Run], head: &[Run]) -> Result<(Vec<TokenChange>, Vec<String>)> {
    let mut warnings = Vec::new();
    let (b, bw) = rates("BASE", base)?;
    let (h, hw) = rates("HEAD", head)?;
    warnings.extend(bw);
    warnings.extend(hw);
    let changes = b
        .iter()
        .filter_map(|(key, base)| {
            let head = *h.get(key)?;
            Some(TokenChange {
                key: key.clone(),
                base: *base,
                head,
                change_pct: (head.tokens_per_s / base.tokens_per_s - 1.0) * 100.0,
                intervals_overlap: base.overlaps(&head),
            })
        })
        .collect();
    Ok((changes, warnings))
}

/// One side's rates by key. A key found twice on a side is ambiguous and left out, as are
/// runs whose `tokens.csv` lacks a column; both with a warning.
type Rates = BTreeMap<TokenKey, Rate>;

fn rates(side: &str, runs: &[Run]) -> Result<(Rates, Vec<String>)> {
    let mut rates = Rates::new();
    let mut twice = BTreeSet::new();
    let mut warnings = Vec::new();
    for run in runs {
        let Some(table) = &run.tokens else { continue };
        // The columns `priceperf run` writes; an older or foreign layout is not guessed at.
        let columns = TokensRow::header();
        if let Some(missing) = columns.iter().find(|c| table.column(c).is_none()) {
            warnings.push(format!(
                "{side} {}: no `{missing}` column, so its token rates are not compared",
                table.path.display()
            ));
            continue;
        }
        for row in &table.rows {
            let Some(tokens_per_s) = table.number(row, "tokens_per_s")?.filter(|r| *r > 0.0) else {
                continue;
            };
            let rate = Rate {
                tokens_per_s,
                low: table.number(row, "tokens_per_s_low")?,
                high: table.number(row, "tokens_per_s_high")?,
            };
            let key = TokenKey::of(run, table, row);
            if rates.insert(key.clone(), rate).is_some() {
                twice.insert(key);
            }
        }
    }
    if let Some(first) = twice.first() {
        warnings.push(format!(
            "{} token rate(s) appear more than once in {side} (the same adapter, driver, model dtype, model, phase, workload and basis), so they are not compared: first {} {} on {}",
            twice.len(),
            first.model,
            first.phase,
            first.adapter
        ));
        for key in &twice {
            rates.remove(key);
        }
    }
    Ok((rates, warnings))
}
