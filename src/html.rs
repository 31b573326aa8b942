//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the runs' provenance, the ranked cost tables, the charts, the token rates and the
//! kernel table with verification status, and a link to criterion's own HTML report where
//! a run has one.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::charts::xml_text as esc;
use crate::report;
use crate::report_cmd::{self, Report, RunKernel, RunView};
use crate::results::Status;

const CSS: &str = r#"
:root { --fg:#1d2430; --muted:#5b6573; --line:#dde2e8; --bg:#ffffff; --band:#f6f8fa; --accent:#4e79a7;
        --ok:#2c7a3f; --bad:#c62828; --skip:#8a6d00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 20px 32px 12px; border-bottom: 1px solid var(--line); background: var(--band); }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
nav { margin-top: 10px; display: flex; gap: 16px; flex-wrap: wrap; }
nav a { color: var(--accent); text-decoration: none; font-weight: 600; }
main { padding: 8px 32px 40px; max-width: 1500px; }
section { margin-top: 28px; }
h2 { font-size: 19px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.cards { display: flex; gap: 14px; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 220px; background: var(--band); }
.card .big { font-size: 22px; font-weight: 700; }
.card .what { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 10px; }
table.data { width: 100%; font-variant-numeric: tabular-nums; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
table.data th { background: var(--band); position: sticky; top: 0; font-weight: 600; white-space: nowrap; }
table.data td.num, table.data th.num { text-align: right; }
table.data td { white-space: nowrap; }
table.data td.wrap { white-space: normal; min-width: 18em; }
table.data tbody tr:hover { background: #eef3f8; }
table.kv th { text-align: left; color: var(--muted); font-weight: 600; padding: 2px 14px 2px 0; vertical-align: top; }
table.kv td { padding: 2px 0; }
.scroll { overflow-x: auto; }
.status { font-weight: 700; }
.status-ok { color: var(--ok); } .status-failed, .status-timeout { color: var(--bad); } .status-skipped { color: var(--skip); }
tr.row-failed, tr.row-timeout { background: #fdecec; }
tr.front td:first-child { border-left: 3px solid var(--fg); }
.star { font-weight: 700; }
.chosen { font-weight: 700; color: var(--accent); }
figure { margin: 18px 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px; background: #fff; }
figure svg { width: 100%; max-width: 1100px; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.note { color: var(--muted); }
ul.notes { margin: 4px 0 0 18px; padding: 0; color: var(--muted); }
details summary { cursor: pointer; color: var(--accent); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
footer { color: var(--muted); padding: 16px 32px; border-top: 1px solid var(--line); font-size: 12px; }
@media print { nav { display: none; } table.data th { position: static; } }
"#;

/// The page. `top` cost rows per model and phase are shown, the rest folded; links to
/// files (criterion's report) are relative to `link_base`, the folder the page is written to.
pub fn page(rep: &Report, top: usize, link_base: &Path) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let title = match rep.runs.as_slice() {
        [one] => format!("priceperf report: {}", one.info.adapter.name),
        runs => format!("priceperf report: {} runs", runs.len()),
    };
    let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"priceperf {}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>",
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    );
    let figures = rep.figures();
    let _ = writeln!(
        h,
        "<header>\n<h1>{}</h1>\n<p>What a token costs on the measured hardware, and on every instance that carries it. Generated {generated} by priceperf {} from {}.</p>\n<nav><a href=\"#summary\">Summary</a><a href=\"#provenance\">Provenance</a><a href=\"#costs\">Costs</a><a href=\"#charts\">Charts</a><a href=\"#tokens\">Token rates</a><a href=\"#kernels\">Kernels</a></nav>\n</header>\n<main>",
        esc(&title),
        env!("CARGO_PKG_VERSION"),
        esc(&rep
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")),
    );
    summary(&mut h, rep);
    provenance(&mut h, rep, link_base);
    costs(&mut h, rep, top);
    h.push_str("<section id=\"charts\">\n<h2>Charts</h2>\n");
    if figures.is_empty() {
        h.push_str("<p class=\"note\">No chart: the folders hold no measured kernel rows and no costs.</p>\n");
    }
    for f in &figures {
        let _ = writeln!(
            h,
            "<figure id=\"{}\" class=\"chart\">\n{}\n<figcaption><strong>{}.</strong> {}</figcaption>\n</figure>",
            esc(&f.id),
            f.svg,
            esc(&f.title),
            esc(&f.caption)
        );
    }
    h.push_str("</section>\n");
    tokens(&mut h, rep);
    kernels(&mut h, rep);
    h.push_str("</main>\n<footer>Formulas: price per accelerator-hour = instance $/h ÷ accelerators; $/Mtok = $/accelerator-hour ÷ (tokens/s × 3600) × 10⁶ (÷ utilisation when given); intervals from the kernels' 95% bootstrap confidence intervals. Token rates are per accelerator; every kernel variant was checked against an f64 CPU reference before it was timed, and failed rows are never priced. See the priceperf README.</footer>\n</body>\n</html>\n");
    h
}

fn summary(h: &mut String, rep: &Report) {
    h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n");
    // One card per model and batch: its first group, the workload where there is one.
    let mut seen: Vec<(String, u32)> = Vec::new();
    for (case, rows) in rep.cost_groups() {
        let key = (case.model.clone(), case.batch);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        if let Some(best) = rows.first() {
            let r = &best.row;
            let _ = writeln!(
                h,
                "<div class=\"card\"><div class=\"what\">cheapest {}</div><div class=\"big\">${} / Mtok</div><div>{} {} ({}, {}) at {:.2} tokens/s per accelerator</div></div>",
                esc(&case.label()),
                report::money(r.usd_per_mtok),
                esc(&r.provider),
                esc(&r.instance),
                esc(&r.region),
                r.tier.as_str(),
                r.tokens_per_s
            );
        }
    }
    let (ok, failed, skipped, verified) = rep.kernel_counts();
    let _ = writeln!(
        h,
        "<div class=\"card\"><div class=\"what\">kernel rows</div><div class=\"big\">{ok} measured</div><div>{verified} verified · <span class=\"status-failed\">{failed} failed</span> · <span class=\"status-skipped\">{skipped} skipped</span></div></div>"
    );
    h.push_str("</div>\n</section>\n");
}

fn provenance(h: &mut String, rep: &Report, link_base: &Path) {
    h.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n");
    for r in &rep.runs {
        let _ = writeln!(
            h,
            "<h3>Run <code>{}</code></h3>\n<table class=\"kv\">",
            esc(&r.info.run_id)
        );
        for (k, v) in report_cmd::provenance(r) {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
        }
        let _ = writeln!(
            h,
            "<tr><th>criterion</th><td>{}</td></tr>",
            criterion_link(r, link_base)
        );
        h.push_str("</table>\n");
        if !r.notes.is_empty() {
            h.push_str("<ul class=\"notes\">\n");
            for n in &r.notes {
                let _ = writeln!(h, "<li>{}</li>", esc(n));
            }
            h.push_str("</ul>\n");
        }
    }
    h.push_str("</section>\n");
}

fn criterion_link(r: &RunView, link_base: &Path) -> String {
    match &r.criterion_report {
        Some(p) => {
            let href = relative_href(p, link_base);
            format!(
                "<a href=\"{}\">criterion's HTML report</a> (its plots and statistics per benchmark)",
                esc(&href)
            )
        }
        None => "no HTML report in this folder (<code>priceperf run</code> turns criterion's plots off; <code>cargo bench</code> writes them to <code>criterion/report/</code>)".into(),
    }
}

fn costs(h: &mut String, rep: &Report, top: usize) {
    h.push_str("<section id=\"costs\">\n<h2>Cost per million tokens</h2>\n");
    let groups = rep.cost_groups();
    if groups.is_empty() {
        h.push_str("<p class=\"note\">No cost rows: the runs priced no model (run with <code>--model NAME</code>).</p>\n");
    }
    let multi = rep.runs.len() > 1;
    for (case, rows) in groups {
        let _ = writeln!(
            h,
            "<h3>{} <span class=\"note\">({} offerings, cheapest first; ★ on the Pareto front)</span></h3>",
            esc(&case.label()),
            rows.len()
        );
        let mut head = String::from("<tr><th class=\"num\">#</th>");
        if multi {
            head.push_str("<th>run</th>");
        }
        head.push_str("<th>accelerator</th><th>provider</th><th>instance</th><th>region</th><th>tier</th><th class=\"num\">$/h</th><th class=\"num\">acc.</th><th class=\"num\">$/acc-h</th><th class=\"num\">tokens/s</th><th class=\"num\">$/Mtok</th><th class=\"num\">95% CI</th><th>price as of</th><th>basis</th><th>front</th></tr>");
        let row_html = |c: &report_cmd::RankedCost| {
            let r = &c.row;
            let mut s = format!(
                "<tr class=\"{}\"><td class=\"num\">{}</td>",
                if c.pareto_front { "front" } else { "" },
                c.rank
            );
            if multi {
                let _ = write!(s, "<td>{}</td>", esc(&rep.runs[c.run].label()));
            }
            let _ = writeln!(
                s,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.2}</td><td class=\"num\"><strong>{}</strong></td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"star\">{}</td></tr>",
                esc(&r.accelerator),
                esc(&r.provider),
                esc(&r.instance),
                esc(&r.region),
                r.tier.as_str(),
                r.usd_per_hour,
                r.accelerators_per_instance,
                r.usd_per_accelerator_hour,
                r.tokens_per_s,
                report::money(r.usd_per_mtok),
                report::mtok_ci(r),
                esc(r.price_as_of.as_deref().unwrap_or("undated")),
                r.basis.as_str(),
                if c.pareto_front { "★" } else { "" }
            );
            s
        };
        let _ = writeln!(
            h,
            "<div class=\"scroll\"><table class=\"data costs\" id=\"costs-{}\">\n<thead>{head}</thead>\n<tbody>",
            report_cmd::slug(&case.label())
        );
        for c in rows.iter().take(top) {
            h.push_str(&row_html(c));
        }
        h.push_str("</tbody></table></div>\n");
        if rows.len() > top {
            let _ = writeln!(
                h,
                "<details><summary>the other {} offerings</summary>\n<div class=\"scroll\"><table class=\"data costs\">\n<thead>{head}</thead>\n<tbody>",
                rows.len() - top
            );
            for c in rows.iter().skip(top) {
                h.push_str(&row_html(c));
            }
            h.push_str("</tbody></table></div>\n</details>\n");
        }
    }
    h.push_str("</section>\n");
}

fn tokens(h: &mut String, rep: &Report) {
    h.push_str("<section id=\"tokens\">\n<h2>Token rates</h2>\n");
    if rep.tokens.is_empty() {
        h.push_str(
            "<p class=\"note\">No token rates: the runs composed no model.</p>\n</section>\n",
        );
        return;
    }
    h.push_str("<p class=\"note\">Per accelerator. Prefill: batch × prompt ÷ forward-pass time; decode: batch ÷ step time at the average context; workload: prompt then generation, input and output tokens counted.</p>\n");
    h.push_str("<div class=\"scroll\"><table class=\"data\" id=\"tokens-table\">\n<thead><tr><th>run</th><th>model</th><th>phase</th><th class=\"num\">batch</th><th class=\"num\">prompt</th><th class=\"num\">context</th><th class=\"num\">tokens/s</th><th class=\"num\">95% CI</th><th>basis</th></tr></thead>\n<tbody>\n");
    for t in &rep.tokens {
        let r = &t.row;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\"><strong>{:.2}</strong></td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&rep.runs[t.run].label()),
            esc(&r.model),
            r.phase,
            r.batch,
            r.prompt_len.map_or("-".into(), |v| v.to_string()),
            r.context_len.map_or("-".into(), |v| v.to_string()),
            r.tokens_per_s,
            match (r.tokens_per_s_low, r.tokens_per_s_high) {
                (Some(l), Some(hi)) => format!("{l:.2}..{hi:.2}"),
                _ => "-".into(),
            },
            r.basis.as_str()
        );
    }
    h.push_str("</tbody></table></div>\n</section>\n");
}

fn kernels(h: &mut String, rep: &Report) {
    h.push_str("<section id=\"kernels\">\n<h2>Kernels</h2>\n");
    let (ok, failed, skipped, verified) = rep.kernel_counts();
    let _ = writeln!(
        h,
        "<p class=\"note\">{} rows: {ok} measured, {verified} verified against the f64 reference, {failed} failed, {skipped} skipped. The chosen variant (fastest verified) of each benchmark is the one the costs use.</p>",
        rep.kernels.len()
    );
    let multi = rep.runs.len() > 1;
    h.push_str("<div class=\"scroll\"><table class=\"data\" id=\"kernels-table\">\n<thead><tr>");
    if multi {
        h.push_str("<th>run</th>");
    }
    h.push_str("<th>benchmark</th><th>variant</th><th>status</th><th>verified</th><th class=\"num\">max rel err</th><th>timing</th><th class=\"num\">median</th><th class=\"num\">95% CI</th><th class=\"num\">GFLOP/s</th><th class=\"num\">GB/s</th><th class=\"num\">% peak</th><th>chosen</th><th>note</th></tr></thead>\n<tbody>\n");
    for k in &rep.kernels {
        let run = multi.then(|| rep.runs[k.run].label());
        kernel_row(h, k, run.as_deref());
    }
    h.push_str("</tbody></table></div>\n</section>\n");
}

fn kernel_row(h: &mut String, k: &RunKernel, run: Option<&str>) {
    let r = &k.row;
    let status = r.status.as_str();
    let _ = write!(h, "<tr class=\"row-{status}\">");
    if let Some(run) = run {
        let _ = write!(h, "<td>{}</td>", esc(run));
    }
    let ns = |v: Option<f64>| v.map_or("-".into(), crate::compare::fmt_ns);
    let _ = writeln!(
        h,
        "<td><code>{}</code></td><td>{}</td><td class=\"status status-{status}\">{status}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"chosen\">{}</td><td class=\"wrap\">{}</td></tr>",
        esc(&r.benchmark),
        esc(&r.variant),
        if r.verified {
            "<span class=\"status-ok\">✓ yes</span>"
        } else if r.status == Status::Failed {
            "<span class=\"status-failed\">✗ no</span>"
        } else {
            "no"
        },
        r.max_rel_err.map_or("-".into(), |e| format!("{e:.1e}")),
        r.timing.map_or("-".to_string(), |t| t.to_string()),
        ns(r.median_ns),
        match (r.ci_low_ns, r.ci_high_ns) {
            (Some(l), Some(hi)) => format!("{}..{}", crate::compare::fmt_ns(l), crate::compare::fmt_ns(hi)),
            _ => "-".into(),
        },
        r.gflops.map_or("-".into(), |g| format!("{g:.2}")),
        r.gbps.map_or("-".into(), |g| format!("{g:.2}")),
        r.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}")),
        if r.chosen { "chosen" } else { "" },
        esc(&r.note)
    );
}

/// A relative URL from `base` (a folder) to `target`, for a page that may be moved along
/// with its result folders; an absolute `file://` URL when no relative path exists.
pub fn relative_href(target: &Path, base: &Path) -> String {
    let abs = |p: &Path| -> PathBuf {
        p.canonicalize().unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<Component> = t.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return format!("file://{}", url_path(&t.to_string_lossy()));
    }
    let mut parts: Vec<String> = vec!["..".to_string(); bc.len() - common];
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    url_path(&parts.join("/"))
}

/// Percent-encode what a URL path must not contain raw.
fn url_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for ch in p.chars() {
        match ch {
            ' ' => out.push_str("%20"),
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            '"' => out.push_str("%22"),
            '\\' => out.push('/'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_walk_up_and_down() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/r 1/criterion/report");
        std::fs::create_dir_all(&run).unwrap();
        let target = run.join("index.html");
        std::fs::write(&target, "x").unwrap();
        let out = dir.path().join("site");
        std::fs::create_dir_all(&out).unwrap();
        assert_eq!(
            relative_href(&target, &out),
            "../runs/r%201/criterion/report/index.html"
        );
    }
}
