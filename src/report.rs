//! Terminal output: the per-row progress line and the end-of-run tables, wrapped to the
//! terminal's width when stdout is one.

use crate::catalog::PriceRow;
use crate::cost::{CostRow, TokensRow};
use crate::gpu::AdapterSummary;
use crate::results::{KernelRow, Status};
use crate::runner::RunOutcome;

/// Cost rows shown at the end of a run; the full list is in costs.csv.
const COST_ROWS_SHOWN: usize = 20;

/// Everything printed at the end of a run: kernels, token rates, the ranked cost table,
/// notes, and where the files are.
pub fn run_summary(outcome: &RunOutcome) -> String {
    let mut out = kernel_table(&outcome.rows);
    if !outcome.tokens.is_empty() {
        out.push_str("\nToken rates (per accelerator; workload = prompt then generation, tokens counted in and out)\n");
        out.push_str(&tokens_table(&outcome.tokens));
    }
    if !outcome.costs.is_empty() {
        out.push_str(&format!(
            "\nCost per million tokens, cheapest first (top {} of {}; all in costs.csv)\n",
            COST_ROWS_SHOWN.min(outcome.costs.len()),
            outcome.costs.len()
        ));
        out.push_str(&cost_table(&outcome.costs, COST_ROWS_SHOWN));
    }
    for n in &outcome.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    if let Some(p) = &outcome.info.peaks {
        // Probed in this run where the run spent time probing; otherwise from the cache.
        let cached = outcome.info.time.as_ref().is_none_or(|t| t.peaks_s == 0.0);
        out.push_str(&format!("{}\n", p.describe(cached)));
    }
    if let Some(t) = &outcome.info.time {
        out.push_str(&format!("{}\n", t.describe()));
    }
    out.push_str(&format!("\nresults: {}\n", outcome.dir.display()));
    out
}

/// tokens.csv as a table.
pub fn tokens_table(rows: &[TokensRow]) -> String {
    let headers = [
        "model", "phase", "batch", "prompt", "context", "tokens/s", "low", "high", "basis",
    ];
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|t| {
            [
                t.model.clone(),
                t.phase.to_string(),
                t.batch.to_string(),
                opt(t.prompt_len),
                opt(t.context_len),
                format!("{:.2}", t.tokens_per_s),
                t.tokens_per_s_low.map_or("-".into(), |v| format!("{v:.2}")),
                t.tokens_per_s_high
                    .map_or("-".into(), |v| format!("{v:.2}")),
                t.basis.as_str().into(),
            ]
        })
        .collect();
    table(&headers, &cells)
}

/// The ranked cost table (rows already sorted cheapest first), at most `limit` rows.
pub fn cost_table(rows: &[CostRow], limit: usize) -> String {
    let headers = [
        "model",
        "phase",
        "batch",
        "tokens",
        "accelerator",
        "provider",
        "instance",
        "region",
        "tier",
        "$/acc-h",
        "tokens/s",
        "$/Mtok",
        "$/Mtok 95% CI",
        "price as of",
        "basis",
    ];
    let cells: Vec<[String; 15]> = rows
        .iter()
        .take(limit)
        .map(|c| {
            [
                c.model.clone(),
                c.phase.to_string(),
                c.batch.to_string(),
                c.case().tokens_text(),
                c.accelerator.clone(),
                c.provider.clone(),
                c.instance.clone(),
                c.region.clone(),
                c.tier.as_str().into(),
                format!("{:.4}", c.usd_per_accelerator_hour),
                format!("{:.2}", c.tokens_per_s),
                money(c.usd_per_mtok),
                mtok_ci(c),
                c.price_as_of.clone().unwrap_or_else(|| "-".into()),
                c.basis.as_str().into(),
            ]
        })
        .collect();
    table(&headers, &cells)
}

/// Dollars (a $/Mtok figure) as every printer shows them: whole dollars from 100, cents from
/// 1, four decimals below that, and below $0.01 at least three significant digits, so a
/// cheap row (0.000870) is not rounded to 0.0009 or 0.0000 and still ranks against its
/// neighbours by eye. Below a millionth of a dollar, exponent notation keeps the digits
/// without a run of zeros.
pub fn money(v: f64) -> String {
    let a = v.abs();
    if !a.is_finite() || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.4}")
    } else if a >= 1e-6 {
        // 2 - floor(log10) decimals is three significant digits: 0.000870 has 6.
        let decimals = (2 - a.log10().floor() as i32) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

/// The $/Mtok 95% interval as `low..high`, or `-` where the row has none.
pub fn mtok_ci(c: &CostRow) -> String {
    match (c.usd_per_mtok_low, c.usd_per_mtok_high) {
        (Some(l), Some(h)) => format!("{}..{}", money(l), money(h)),
        _ => "-".into(),
    }
}

/// `priceperf prices` as a table.
pub fn prices_table(rows: &[PriceRow]) -> String {
    let headers = [
        "accelerator",
        "provider",
        "instance",
        "region",
        "count",
        "vCPUs",
        "on-demand $/h",
        "spot $/h",
        "on-demand $/acc-h",
        "as of",
        "spot as of",
    ];
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                r.accelerator.clone(),
                r.provider.clone(),
                r.instance.clone(),
                r.region.clone(),
                r.accelerators_per_instance.to_string(),
                r.vcpus.map_or("-".into(), |v| v.to_string()),
                opt(r.usd_per_hour_on_demand),
                opt(r.usd_per_hour_spot),
                opt(r.usd_per_accelerator_hour_on_demand),
                r.as_of.clone().unwrap_or_else(|| "undated".into()),
                match (r.usd_per_hour_spot, &r.spot_as_of) {
                    (None, _) => "-".into(),
                    (Some(_), d) => d.clone().unwrap_or_else(|| "undated".into()),
                },
            ]
        })
        .collect();
    table(&headers, &cells)
}

/// `priceperf prices --format csv`, spreadsheet-safe.
pub fn prices_csv(rows: &[PriceRow]) -> String {
    use crate::results::csv_cells::{escape_text, Cell};
    let mut out = String::from("accelerator,provider,instance,region,accelerators_per_instance,vcpus,usd_per_hour_on_demand,usd_per_hour_spot,usd_per_accelerator_hour_on_demand,usd_per_accelerator_hour_spot,as_of,spot_as_of,source\n");
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        let cells = [
            escape_text(&r.accelerator),
            escape_text(&r.provider),
            escape_text(&r.instance),
            escape_text(&r.region),
            r.accelerators_per_instance.to_string(),
            Cell::Int(r.vcpus.map(u64::from)).encode(),
            Cell::Num(r.usd_per_hour_on_demand).encode(),
            Cell::Num(r.usd_per_hour_spot).encode(),
            Cell::Num(r.usd_per_accelerator_hour_on_demand).encode(),
            Cell::Num(r.usd_per_accelerator_hour_spot).encode(),
            r.as_of.clone().unwrap_or_default(),
            r.spot_as_of.clone().unwrap_or_default(),
            escape_text(&r.source),
        ];
        w.write_record(&cells).expect("writing to memory");
    }
    out.push_str(&String::from_utf8(w.into_inner().expect("flush")).expect("utf-8"));
    out
}

/// One line per (benchmark, variant) while a run progresses.
pub fn kernel_line(r: &KernelRow) -> String {
    let speed = match (r.status, r.gflops) {
        (Status::Ok, Some(g)) => format!("{g:9.2} GFLOP/s {:8.2} GB/s", r.gbps.unwrap_or(0.0)),
        _ => format!("{:>26}", ""),
    };
    let mark = if r.chosen { " *chosen*" } else { "" };
    let note = if r.note.is_empty() {
        String::new()
    } else {
        format!("  ({})", r.note)
    };
    format!(
        "{:<24} {speed}  {:<7}{mark}{note}",
        r.variant,
        r.status.as_str()
    )
}

/// The kernel table printed at the end of a run: benchmark, variant, GFLOP/s, % of spec
/// peak where the accelerator is known, % of the measured FMA peak and streaming bandwidth,
/// verified.
pub fn kernel_table(rows: &[KernelRow]) -> String {
    let headers = [
        "benchmark",
        "variant",
        "GFLOP/s",
        "GB/s",
        "% peak",
        "% meas. FLOP/s",
        "% meas. GB/s",
        "verified",
        "status",
        "",
    ];
    let pct = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.1}"));
    let mut cells: Vec<[String; 10]> = Vec::new();
    for r in rows {
        cells.push([
            r.benchmark.clone(),
            r.variant.clone(),
            r.gflops.map_or("-".into(), |g| format!("{g:.2}")),
            r.gbps.map_or("-".into(), |g| format!("{g:.2}")),
            pct(r.pct_of_peak),
            pct(r.pct_of_measured_flops),
            pct(r.pct_of_measured_bw),
            if r.verified { "yes" } else { "no" }.into(),
            r.status.to_string(),
            if r.chosen {
                "chosen".into()
            } else {
                String::new()
            },
        ]);
    }
    table(&headers, &cells)
}

/// `priceperf devices` as a table.
pub fn devices_table(adapters: &[AdapterSummary]) -> String {
    let headers = [
        "#",
        "name",
        "backend",
        "type",
        "driver",
        "timestamps",
        "f16",
        "subgroups",
        "wg storage",
        "max binding",
        "max buffer",
    ];
    let cells: Vec<[String; 11]> = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| {
            [
                i.to_string(),
                a.name.clone(),
                a.backend.clone(),
                a.device_type.clone(),
                format!("{} {}", a.driver, a.driver_info).trim().to_string(),
                yes(a.timestamps),
                yes(a.f16),
                if a.subgroups {
                    format!("{}..{}", a.subgroup_min_size, a.subgroup_max_size)
                } else {
                    "no".into()
                },
                bytes(a.max_workgroup_storage_bytes as u64),
                bytes(a.max_storage_binding_bytes),
                bytes(a.max_buffer_bytes),
            ]
        })
        .collect();
    table(&headers, &cells)
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Binary units, as limits are powers of two.
fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Left-aligned columns separated by two spaces. When stdout is a terminal narrower than
/// the table, the cells wrap to fit its width ([`fitted_table`]); pipes and files always get
/// the unwrapped layout, one line per row, for grep and diff.
pub fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let plain = plain_table(headers, rows);
    match terminal_width() {
        Some(width) if plain.lines().any(|l| l.chars().count() > width as usize) => {
            fitted_table(headers, rows, width)
        }
        _ => plain,
    }
}

/// Cells at most this wide are never wrapped by [`fitted_table`].
const SHORT_CELL: usize = 14;

/// The width of the terminal stdout writes to, if it is one.
pub fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_rows, cols)| cols)
        .filter(|c| *c >= 20)
}

/// The table wrapped to `width` columns by comfy-table: the same look (two-space gaps, a
/// dashed rule under the header), long cells wrapped onto more lines.
pub fn fitted_table<const N: usize>(
    headers: &[&str; N],
    rows: &[[String; N]],
    width: u16,
) -> String {
    use comfy_table::ColumnConstraint;
    use comfy_table::{ContentArrangement, Table};
    // Numbers, dates and other short cells are never wrapped; only long text (instance
    // names, benchmark ids, notes) is. When the short columns alone do not fit, wrapping
    // would only shred them: keep the plain layout and let the terminal fold the lines.
    let widest: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let short = |w: usize| w <= SHORT_CELL;
    let fixed: usize = widest.iter().filter(|w| short(**w)).map(|w| w + 2).sum();
    let wrapped = widest.iter().filter(|w| !short(**w)).count();
    if fixed + wrapped * (SHORT_CELL + 2) > width as usize {
        return plain_table(headers, rows);
    }
    let mut t = Table::new();
    // Only the header rule: left, right, top, bottom borders and verticals blank.
    t.load_preset("     -             ")
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(headers.iter().copied());
    for r in rows {
        t.add_row(r.iter().map(String::as_str));
    }
    for (c, w) in t.column_iter_mut().zip(&widest) {
        c.set_padding((0, 2));
        if short(*w) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    let mut out = t.trim_fmt();
    out.push('\n');
    out
}

/// Left-aligned columns separated by two spaces, never wrapped.
pub fn plain_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_three_significant_digits_below_a_cent() {
        // 0.94 $/h at 300000 tokens/s: 0.94 / (300000 * 3600) * 1e6 = 0.000870...
        assert_eq!(money(0.94 / (300_000.0 * 3600.0) * 1e6), "0.000870");
        assert_eq!(money(0.00999), "0.00999");
        assert_eq!(money(0.0123), "0.0123");
        assert_eq!(money(0.3611), "0.3611");
        assert_eq!(money(1.0611), "1.06");
        assert_eq!(money(1234.4), "1234");
        assert_eq!(money(0.0), "0.0000");
        assert_eq!(money(1.2345e-7), "1.23e-7");
        assert_eq!(money(1e-300 / 3600.0), "2.78e-304");
    }

    #[test]
    fn the_cost_table_tells_batches_and_token_counts_apart() {
        let tokens = |batch: u32, tokens_per_s: f64| crate::cost::TokensRow {
            model: "llama-3.1-8b".into(),
            phase: crate::model::PhaseKind::Decode,
            batch,
            prompt_len: None,
            context_len: Some(576),
            tokens_per_s,
            tokens_per_s_low: None,
            tokens_per_s_high: None,
            basis: crate::cost::Basis::Measured,
        };
        let offer = crate::catalog::Offering::custom("H100 SXM", 2.0, 1).unwrap();
        let rows =
            crate::cost::price_offerings(&[tokens(1, 30.0), tokens(16, 480.0)], &[offer], None)
                .unwrap();
        let t = cost_table(&rows, 10);
        let lines: Vec<&str> = t.lines().collect();
        let cells = |line: &str| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(&cells(lines[0])[..4], ["model", "phase", "batch", "tokens"]);
        // Cheapest first: batch 16, then batch 1, each saying which it is.
        assert_eq!(
            &cells(lines[2])[..5],
            ["llama-3.1-8b", "decode", "16", "context", "576"]
        );
        assert_eq!(
            &cells(lines[3])[..5],
            ["llama-3.1-8b", "decode", "1", "context", "576"]
        );
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["a", "bb"], &[["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\n---  --\nxxx  y\n");
    }

    #[test]
    fn fitted_tables_wrap_to_the_width() {
        let long = "a-rather-long-instance-name-that-does-not-fit".to_string();
        let rows = [[long.clone(), "1.25".to_string()], ["b".into(), "2".into()]];
        let t = fitted_table(&["instance", "$/Mtok"], &rows, 30);
        assert!(t.lines().all(|l| l.chars().count() <= 30), "{t}");
        assert!(
            t.contains("$/Mtok") && t.contains("1.25") && t.contains("---"),
            "{t}"
        );
        // Too narrow for the short columns: the plain layout, unwrapped.
        let many = [[
            long.clone(),
            "0.0093".into(),
            "2026-07-30".into(),
            "measured".into(),
        ]];
        let t = fitted_table(&["instance", "$/acc-h", "as of", "basis"], &many, 30);
        assert!(t.contains(&long), "{t}");
        // Without a terminal, the plain layout.
        assert_eq!(
            table(&["instance", "$/Mtok"], &rows),
            plain_table(&["instance", "$/Mtok"], &rows)
        );
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(32768), "32 KiB");
        assert_eq!(bytes(134217728), "128 MiB");
        assert_eq!(bytes(2147483647), "2.0 GiB");
    }
}
