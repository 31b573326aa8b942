//! The token rates of two result sets side by side (`tokens.csv`): what the kernel rows'
//! changes come to per model and phase. Informational only: the rates are composed from
//! each benchmark's chosen kernel row, which [`super::compare`] judges and gates, so a
//! regression there is already caught; this says what it costs in tokens/s.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dataset::Run;
use crate::error::Result;

/// The columns a `tokens.csv` needs for its rates to be compared.
const COLUMNS: [&str; 7] = [
    "model",
    "phase",
    "batch",
    "prompt_len",
    "context_len",
    "tokens_per_s",
    "basis",
];

/// Which rate a row is: the adapter it ran on and the row's workload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TokenKey {
    pub adapter: String,
    pub model: String,
    pub phase: String,
    pub batch: String,
    pub prompt_len: String,
    pub context_len: String,
    /// `measured`, or how the rate was derived otherwise: rates are compared only with
    /// rates of the same basis.
    pub basis: String,
}

/// One rate on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct TokenChange {
    pub key: TokenKey,
    pub base_tokens_per_s: f64,
    pub head_tokens_per_s: f64,
    /// `(head / base - 1)·100`: negative is slower.
    pub change_pct: f64,
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
        .filter_map(|(key, &base_rate)| {
            let head_rate = *h.get(key)?;
            Some(TokenChange {
                key: key.clone(),
                base_tokens_per_s: base_rate,
                head_tokens_per_s: head_rate,
                change_pct: (head_rate / base_rate - 1.0) * 100.0,
            })
        })
        .collect();
    Ok((changes, warnings))
}

/// One side's rates by key. A key in two of its runs is ambiguous and left out, as are
/// runs whose `tokens.csv` lacks a column; both with a warning.
type Rates = BTreeMap<TokenKey, f64>;

fn rates(side: &str, runs: &[Run]) -> Result<(Rates, Vec<String>)> {
    let mut rates = Rates::new();
    let mut twice = Vec::new();
    let mut warnings = Vec::new();
    for run in runs {
        let Some(table) = &run.tokens else { continue };
        if let Some(missing) = COLUMNS.iter().find(|c| table.column(c).is_none()) {
            warnings.push(format!(
                "{side} {}: no `{missing}` column, so its token rates are not compared",
                table.path.display()
            ));
            continue;
        }
        for row in &table.rows {
            let Some(rate) = table.number(row, "tokens_per_s")?.filter(|r| *r > 0.0) else {
                continue;
            };
            let key = TokenKey {
                adapter: run.info.adapter.name.clone(),
                model: table.text(row, "model").to_string(),
                phase: table.text(row, "phase").to_string(),
                batch: table.text(row, "batch").to_string(),
                prompt_len: table.text(row, "prompt_len").to_string(),
                context_len: table.text(row, "context_len").to_string(),
                basis: table.text(row, "basis").to_string(),
            };
            if rates.insert(key.clone(), rate).is_some() {
                twice.push(key);
            }
        }
    }
    if !twice.is_empty() {
        warnings.push(format!(
            "{} token rate(s) appear in more than one run of {side} (the same model, phase and adapter), so they are not compared: first {} {} on {}",
            twice.len(),
            twice[0].model,
            twice[0].phase,
            twice[0].adapter
        ));
        for key in twice {
            rates.remove(&key);
        }
    }
    Ok((rates, warnings))
}
