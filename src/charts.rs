//! Charts as SVG text, drawn with plotters' SVG backend without font files: text becomes
//! SVG `<text>` elements the viewer lays out (plotters only estimates text sizes for its
//! layout), so nothing here needs fontconfig or a TTF.
//!
//! - [`price_performance`]: $/Mtok against tokens/s per offering, one colour per provider,
//!   the Pareto front (no other offering is both faster and cheaper) ringed and joined.
//! - [`roofline`]: each kernel's FLOP/s against its arithmetic intensity under a compute
//!   and a bandwidth roof: spec-sheet peaks where the accelerator is known, else the peaks
//!   the run measured, else the best achieved in the run (the chart says which).
//! - [`grouped_bars`]: the same measure across runs or machines, side by side.
//! - [`change_bars`]: `compare`'s change per row, coloured by verdict.
//! - [`trend`]: measures over a sequence of result folders.
//!
//! Every function returns a complete `<svg>` element; with no data it returns a small SVG
//! that says so, never an error.

use plotters::prelude::*;

/// Chart size in pixels (the SVG scales with CSS).
pub const WIDTH: u32 = 880;
pub const HEIGHT: u32 = 520;

const FONT: &str = "sans-serif";

/// plotters' SVG backend writes `font-size` as the style's size ÷ 1.24; this is the size
/// that gives `n` CSS pixels.
fn px(n: f64) -> f64 {
    n * 1.24
}

/// Tableau 10: distinct on screen and in print.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The colour of the `i`-th group (provider, kernel, run).
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The colour as CSS `#rrggbb`, for HTML legends next to a chart.
pub fn css_colour(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Width of the legend strip right of each plot.
const LEGEND_W: u32 = 240;

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
enum Mark {
    Dot(RGBColor),
    Hollow(RGBColor),
    Ring,
    Line(RGBColor),
    Square(RGBColor),
    /// Grey explanatory text, wrapped, no mark.
    Note,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a, T> = Result<T, Box<dyn std::error::Error + 'a>>;

/// White background, the title on top, the legend strip on the right; returns the area
/// left for the plot.
fn frame<'a>(root: &Area<'a>, title: &str, legend: &[(Mark, String)]) -> DrawResult<'a, Area<'a>> {
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, px(20.0)))?;
    let (w, _) = body.dim_in_pixel();
    let (plot, side) = body.split_horizontally(w.saturating_sub(LEGEND_W));
    let grey = RGBColor(0x55, 0x55, 0x55);
    let mut y = 24;
    for (mark, text) in legend {
        let x = 12;
        match *mark {
            Mark::Dot(c) => side.draw(&Circle::new((x, y), 5, c.filled()))?,
            Mark::Hollow(c) => side.draw(&Circle::new((x, y), 5, c.stroke_width(2)))?,
            Mark::Ring => side.draw(&Circle::new((x, y), 8, BLACK.stroke_width(2)))?,
            Mark::Line(c) => side.draw(&PathElement::new(
                vec![(x - 9, y), (x + 9, y)],
                c.stroke_width(2),
            ))?,
            Mark::Square(c) => side.draw(&Rectangle::new(
                [(x - 6, y - 6), (x + 6, y + 6)],
                c.filled(),
            ))?,
            Mark::Note => {}
        }
        let (tx, width, colour) = match mark {
            Mark::Note => (4, 38, grey),
            _ => (28, 32, BLACK),
        };
        for line in wrap(text, width) {
            side.draw(&Text::new(
                line,
                (tx, y),
                (FONT, px(12.0)).into_font().color(&colour).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Left,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                ),
            ))?;
            y += 16;
        }
        y += 6;
    }
    Ok(plot)
}

/// Words into lines of at most `width` characters (a longer word gets its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// One offering on the price/performance chart.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferingPoint {
    /// Shown next to Pareto-front points: instance and tier.
    pub label: String,
    /// The colour group (provider).
    pub provider: String,
    pub tokens_per_s: f64,
    pub usd_per_mtok: f64,
}

/// Indices of the Pareto front: the points no other point beats on both axes (more or
/// equal tokens/s and less or equal $/Mtok, strictly better on one). Sorted by tokens/s.
pub fn pareto_front(points: &[OfferingPoint]) -> Vec<usize> {
    let ok = |p: &OfferingPoint| p.tokens_per_s.is_finite() && p.usd_per_mtok.is_finite();
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| ok(&points[i]))
        .filter(|&i| {
            let p = &points[i];
            !points.iter().any(|q| {
                ok(q)
                    && q.tokens_per_s >= p.tokens_per_s
                    && q.usd_per_mtok <= p.usd_per_mtok
                    && (q.tokens_per_s > p.tokens_per_s || q.usd_per_mtok < p.usd_per_mtok)
            })
        })
        .collect();
    front.sort_by(|&a, &b| points[a].tokens_per_s.total_cmp(&points[b].tokens_per_s));
    // Equal points: keep one.
    front.dedup_by(|a, b| {
        points[*a].tokens_per_s == points[*b].tokens_per_s
            && points[*a].usd_per_mtok == points[*b].usd_per_mtok
    });
    front
}

/// The price/performance scatter: x tokens/s, y $/Mtok, both logarithmic; one colour per
/// provider; the Pareto front ringed, joined and labelled.
pub fn price_performance(title: &str, x_label: &str, points: &[OfferingPoint]) -> String {
    let pts: Vec<OfferingPoint> = points
        .iter()
        .filter(|p| p.tokens_per_s > 0.0 && p.usd_per_mtok > 0.0)
        .filter(|p| p.tokens_per_s.is_finite() && p.usd_per_mtok.is_finite())
        .cloned()
        .collect();
    if pts.is_empty() {
        return empty(title, "no priced offerings");
    }
    let xr = log_range(pts.iter().map(|p| p.tokens_per_s));
    let yr = log_range(pts.iter().map(|p| p.usd_per_mtok));
    let providers = distinct(pts.iter().map(|p| p.provider.as_str()));
    let front = pareto_front(&pts);
    let mut legend: Vec<(Mark, String)> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| (Mark::Dot(colour(i)), p.clone()))
        .collect();
    legend.push((
        Mark::Ring,
        "Pareto front: no other offering is both faster and cheaper".into(),
    ));
    legend.push((
        Mark::Note,
        format!("{} offerings; lower right is better.", pts.len()),
    ));
    render(title, HEIGHT, &legend, |plot| {
        let mut chart = ChartBuilder::on(plot)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((xr.0..xr.1).log_scale(), (yr.0..yr.1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("$ per million tokens")
            .x_label_formatter(&|v| number(*v))
            .y_label_formatter(&|v| money(*v))
            .label_style((FONT, px(13.0)))
            .axis_desc_style((FONT, px(14.0)))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        if front.len() > 1 {
            let line: Vec<(f64, f64)> = front
                .iter()
                .map(|&i| (pts[i].tokens_per_s, pts[i].usd_per_mtok))
                .collect();
            chart.draw_series(LineSeries::new(line, BLACK.stroke_width(1)))?;
        }
        for (pi, provider) in providers.iter().enumerate() {
            let c = colour(pi);
            chart.draw_series(
                pts.iter()
                    .filter(|p| &p.provider == provider)
                    .map(|p| Circle::new((p.tokens_per_s, p.usd_per_mtok), 5, c.filled())),
            )?;
        }
        chart.draw_series(front.iter().map(|&i| {
            Circle::new(
                (pts[i].tokens_per_s, pts[i].usd_per_mtok),
                9,
                BLACK.stroke_width(2),
            )
        }))?;
        // Label the front, at most a handful to stay readable.
        chart.draw_series(front.iter().take(6).map(|&i| {
            EmptyElement::at((pts[i].tokens_per_s, pts[i].usd_per_mtok))
                + Text::new(
                    pts[i].label.clone(),
                    (13, -4),
                    (FONT, px(12.0)).into_font().color(&BLACK),
                )
        }))?;
        Ok(())
    })
}

/// A kernel row on the roofline chart.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelPoint {
    /// The op (matmul, attention, ...): the colour group.
    pub kernel: String,
    /// Benchmark and variant.
    pub label: String,
    /// FLOPs per byte of compulsory traffic.
    pub intensity: f64,
    pub gflops: f64,
    /// The chosen (fastest verified) variant of its benchmark: drawn filled.
    pub chosen: bool,
}

/// The two roofs of a roofline chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofs {
    pub compute_gflops: f64,
    pub bandwidth_gbs: f64,
    /// Where they come from, printed in the chart: spec-sheet peaks, or the best achieved.
    pub source: String,
}

impl Roofs {
    /// The practical roofs from (GFLOP/s, GB/s) pairs: the best of each any row achieved.
    /// `None` when no row has both.
    pub fn practical(rows: &[(f64, f64)]) -> Option<Roofs> {
        let best = |f: fn(&(f64, f64)) -> f64| {
            rows.iter()
                .map(f)
                .filter(|v| v.is_finite() && *v > 0.0)
                .fold(f64::NAN, f64::max)
        };
        let (compute, bandwidth) = (best(|r| r.0), best(|r| r.1));
        (compute.is_finite() && bandwidth.is_finite()).then(|| Roofs {
            compute_gflops: compute,
            bandwidth_gbs: bandwidth,
            source: "practical roofs: the best GFLOP/s and the best GB/s achieved in these results (the runs carry no measured peaks)".into(),
        })
    }

    /// Arithmetic intensity where the roofs meet.
    pub fn ridge(&self) -> f64 {
        self.compute_gflops / self.bandwidth_gbs
    }
}

/// The roofline chart: log-log GFLOP/s against FLOP/byte, the roofs as one line, one colour
/// per op, chosen variants filled and the others hollow.
pub fn roofline(title: &str, points: &[KernelPoint], roofs: &Roofs) -> String {
    let pts: Vec<&KernelPoint> = points
        .iter()
        .filter(|p| p.intensity > 0.0 && p.gflops > 0.0)
        .filter(|p| p.intensity.is_finite() && p.gflops.is_finite())
        .collect();
    if pts.is_empty() || !(roofs.compute_gflops > 0.0 && roofs.bandwidth_gbs > 0.0) {
        return empty(title, "no measured kernel rows");
    }
    let ridge = roofs.ridge();
    let xr = log_range(
        pts.iter()
            .map(|p| p.intensity)
            .chain([ridge * 0.5, ridge * 2.0]),
    );
    let yr = log_range(
        pts.iter()
            .map(|p| p.gflops)
            .chain([roofs.compute_gflops * 2.0, roofs.bandwidth_gbs * xr.0]),
    );
    let kernels = distinct(pts.iter().map(|p| p.kernel.as_str()));
    let roof_colour = RGBColor(0x33, 0x33, 0x33);
    let mut legend = vec![(
        Mark::Line(roof_colour),
        format!(
            "roofs: {} GFLOP/s and {} GB/s",
            number(roofs.compute_gflops),
            number(roofs.bandwidth_gbs)
        ),
    )];
    legend.extend(
        kernels
            .iter()
            .enumerate()
            .map(|(i, k)| (Mark::Dot(colour(i)), k.clone())),
    );
    legend.push((
        Mark::Hollow(RGBColor(0x77, 0x77, 0x77)),
        "hollow: a variant not chosen".into(),
    ));
    legend.push((Mark::Note, format!("{}.", capitalise(&roofs.source))));
    render(title, HEIGHT, &legend, |plot| {
        let mut chart = ChartBuilder::on(plot)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((xr.0..xr.1).log_scale(), (yr.0..yr.1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity (FLOP per byte of compulsory traffic)")
            .y_desc("GFLOP/s")
            .x_label_formatter(&|v| number(*v))
            .y_label_formatter(&|v| number(*v))
            .label_style((FONT, px(13.0)))
            .axis_desc_style((FONT, px(14.0)))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        let roof_at = |x: f64| (roofs.bandwidth_gbs * x).min(roofs.compute_gflops);
        let x_ridge = ridge.clamp(xr.0, xr.1);
        chart.draw_series(LineSeries::new(
            [xr.0, x_ridge, xr.1].map(|x| (x, roof_at(x))),
            roof_colour.stroke_width(2),
        ))?;
        for (ki, kernel) in kernels.iter().enumerate() {
            let c = colour(ki);
            chart.draw_series(pts.iter().filter(|p| &p.kernel == kernel).map(|p| {
                let style = if p.chosen {
                    c.filled()
                } else {
                    c.stroke_width(2)
                };
                Circle::new((p.intensity, p.gflops), 5, style)
            }))?;
        }
        Ok(())
    })
}

/// A group of bars: one category (a model and phase, a benchmark) with one value per series
/// (run, machine).
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// Vertical grouped bars, series coloured and named in the legend, on a log axis when the
/// values span more than two decades.
pub fn grouped_bars(title: &str, y_label: &str, series: &[String], groups: &[BarGroup]) -> String {
    let values: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.values.iter().flatten().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if values.is_empty() || series.is_empty() {
        return empty(title, "nothing to compare");
    }
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let log = max / min > 100.0;
    let (n, k) = (groups.len(), series.len());
    let legend: Vec<(Mark, String)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (Mark::Square(colour(i)), s.clone()))
        .collect();
    let labels: Vec<String> = groups.iter().map(|g| shorten(&g.label, 24)).collect();
    let x_fmt = move |v: &f64| {
        let i = v.floor();
        if (v - i - 0.5).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    };
    let bar = |gi: usize, si: usize, y0: f64| -> Option<Rectangle<(f64, f64)>> {
        let v = groups[gi].values.get(si).copied().flatten()?;
        if !(v.is_finite() && v > 0.0) {
            return None;
        }
        let width = 0.8 / k as f64;
        let x0 = gi as f64 + 0.1 + width * si as f64;
        Some(Rectangle::new(
            [(x0, y0), (x0 + width * 0.92, v)],
            colour(si).filled(),
        ))
    };
    render(title, HEIGHT, &legend, |plot| {
        let builder = |plot| {
            let mut b = ChartBuilder::on(plot);
            b.margin(14).x_label_area_size(48).y_label_area_size(72);
            b
        };
        if log {
            let (lo, hi) = log_range(values.iter().copied());
            let mut chart =
                builder(plot).build_cartesian_2d(0.0..n as f64, (lo..hi).log_scale())?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n * 2 + 1)
                .x_label_formatter(&x_fmt)
                .y_desc(y_label)
                .y_label_formatter(&|v| number(*v))
                .label_style((FONT, px(12.0)))
                .axis_desc_style((FONT, px(14.0)))
                .light_line_style(RGBColor(0xee, 0xee, 0xee))
                .draw()?;
            for si in 0..k {
                chart.draw_series((0..n).filter_map(|gi| bar(gi, si, lo)))?;
            }
        } else {
            let mut chart = builder(plot).build_cartesian_2d(0.0..n as f64, 0.0..max * 1.15)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n * 2 + 1)
                .x_label_formatter(&x_fmt)
                .y_desc(y_label)
                .y_label_formatter(&|v| number(*v))
                .label_style((FONT, px(12.0)))
                .axis_desc_style((FONT, px(14.0)))
                .light_line_style(RGBColor(0xee, 0xee, 0xee))
                .draw()?;
            for si in 0..k {
                chart.draw_series((0..n).filter_map(|gi| bar(gi, si, 0.0)))?;
            }
        }
        Ok(())
    })
}

/// One row of a comparison: its label, the change in percent (positive is slower) and its
/// verdict, which picks the colour.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeBar {
    pub label: String,
    pub change_pct: f64,
    pub verdict: String,
}

/// Horizontal bars of `compare`'s changes: red for regressed, green for improved, grey
/// otherwise; the threshold drawn as dashed lines; row labels on the left.
pub fn change_bars(title: &str, rows: &[ChangeBar], threshold_pct: f64) -> String {
    let rows: Vec<&ChangeBar> = rows.iter().filter(|r| r.change_pct.is_finite()).collect();
    if rows.is_empty() {
        return empty(title, "no row was timed on both sides");
    }
    let extent = rows
        .iter()
        .map(|r| r.change_pct.abs())
        .fold(threshold_pct.abs(), f64::max)
        * 1.15;
    let n = rows.len();
    let height = (110 + 22 * n as u32).clamp(220, 1800);
    let red = RGBColor(0xd6, 0x27, 0x28);
    let green = RGBColor(0x2c, 0xa0, 0x2c);
    let grey = RGBColor(0x99, 0x99, 0x99);
    let legend = vec![
        (
            Mark::Square(red),
            "regressed, failed or timed out".to_string(),
        ),
        (Mark::Square(green), "improved or fixed".to_string()),
        (Mark::Square(grey), "within noise or threshold".to_string()),
        (
            Mark::Note,
            format!("Dashed: the ±{threshold_pct}% threshold. Positive is slower."),
        ),
    ];
    render(title, height, &legend, |plot| {
        let (w, _) = plot.dim_in_pixel();
        let label_w = (w / 2).min(330);
        let (left, right) = plot.split_horizontally(label_w);
        let mut chart = ChartBuilder::on(&right)
            .margin(10)
            .x_label_area_size(40)
            .build_cartesian_2d(-extent..extent, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(7)
            .x_desc("change in median time, %")
            .x_label_formatter(&|v| format!("{v:+.0}%"))
            .label_style((FONT, px(12.0)))
            .axis_desc_style((FONT, px(13.0)))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
            let y = (n - 1 - i) as f64;
            let c = match r.verdict.to_lowercase().as_str() {
                "regressed" | "failed" | "timed out" | "timed_out" | "timeout" => red,
                "improved" | "fixed" => green,
                _ => grey,
            };
            Rectangle::new([(0.0, y + 0.15), (r.change_pct, y + 0.85)], c.filled())
        }))?;
        for t in [threshold_pct, -threshold_pct] {
            chart.draw_series(DashedLineSeries::new(
                vec![(t, 0.0), (t, n as f64)],
                4,
                3,
                RGBColor(0x66, 0x66, 0x66).stroke_width(1),
            ))?;
        }
        // Row labels on the left, level with their bars.
        let (_, plot_y) = chart.plotting_area().get_pixel_range();
        let (_, left_y) = left.get_pixel_range();
        let top = (plot_y.start - left_y.start) as f64;
        let step = (plot_y.end - plot_y.start) as f64 / n as f64;
        let max_chars = (label_w as usize / 7).max(12);
        for (i, r) in rows.iter().enumerate() {
            let y = top + step * (i as f64 + 0.5);
            left.draw(&Text::new(
                format!(
                    "{} ({})",
                    shorten_middle(&r.label, max_chars.saturating_sub(r.verdict.len() + 3)),
                    r.verdict.to_lowercase()
                ),
                (label_w as i32 - 8, y as i32),
                (FONT, px(11.0)).into_font().color(&BLACK).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Right,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                ),
            ))?;
        }
        Ok(())
    })
}

/// One line of a trend chart: a value per position of the sequence (None where that
/// result folder lacks it).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendSeries {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Lines over a sequence of result folders (x: the folders in order, labelled), log y
/// when the values span more than two decades.
pub fn trend(title: &str, y_label: &str, x_labels: &[String], series: &[TrendSeries]) -> String {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if values.is_empty() || x_labels.len() < 2 {
        return empty(title, "a trend needs two or more result folders");
    }
    let n = x_labels.len();
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let log = max / min > 100.0;
    let legend: Vec<(Mark, String)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (Mark::Line(colour(i)), s.name.clone()))
        .collect();
    let labels = x_labels.to_vec();
    let x_fmt = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
            shorten(&labels[i as usize], 22)
        } else {
            String::new()
        }
    };
    let lines: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.filter(|v| v.is_finite() && *v > 0.0)
                        .map(|v| (i as f64, v))
                })
                .collect()
        })
        .collect();
    render(title, HEIGHT, &legend, |plot| {
        let builder = |plot| {
            let mut b = ChartBuilder::on(plot);
            b.margin(18).x_label_area_size(48).y_label_area_size(72);
            b
        };
        let xr = -0.3..(n as f64 - 0.7);
        macro_rules! draw_lines {
            ($chart:expr) => {{
                $chart
                    .configure_mesh()
                    .x_labels(n.min(12))
                    .x_label_formatter(&x_fmt)
                    .y_desc(y_label)
                    .y_label_formatter(&|v| number(*v))
                    .label_style((FONT, px(12.0)))
                    .axis_desc_style((FONT, px(14.0)))
                    .light_line_style(RGBColor(0xee, 0xee, 0xee))
                    .draw()?;
                for (si, pts) in lines.iter().enumerate() {
                    let c = colour(si);
                    $chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                    $chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
                }
            }};
        }
        if log {
            let (lo, hi) = log_range(values.iter().copied());
            let mut chart = builder(plot).build_cartesian_2d(xr, (lo..hi).log_scale())?;
            draw_lines!(chart);
        } else {
            let mut chart = builder(plot).build_cartesian_2d(xr, 0.0..max * 1.15)?;
            draw_lines!(chart);
        }
        Ok(())
    })
}

/// Draw a chart: frame (title, legend strip), then `plot` on the area left; the finished
/// SVG, or a placeholder naming the error.
fn render(
    title: &str,
    height: u32,
    legend: &[(Mark, String)],
    plot: impl for<'a, 'b> FnOnce(&'b Area<'a>) -> DrawResult<'a, ()>,
) -> String {
    let mut svg = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let drawn = frame(&root, title, legend)
            .and_then(|area| plot(&area))
            .and_then(|()| root.present().map_err(Into::into));
        drawn.map_err(|e| e.to_string())
    };
    match outcome {
        Ok(()) => finish(svg, title),
        Err(e) => empty(title, &format!("the chart could not be drawn: {e}")),
    }
}

/// A small SVG that says why there is no chart.
pub fn empty(title: &str, why: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"80\" viewBox=\"0 0 {WIDTH} 80\" role=\"img\"><title>{t}</title><rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/><text x=\"16\" y=\"32\" font-family=\"{FONT}\" font-size=\"16\">{t}</text><text x=\"16\" y=\"58\" font-family=\"{FONT}\" font-size=\"13\" fill=\"#666\">{w}</text></svg>",
        t = xml_text(title),
        w = xml_text(why),
    )
}

/// Text for XML character data and attribute values.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Give the SVG an accessible name (`role="img"` and a `<title>`), which also lets a page
/// and its tests find charts by title.
fn finish(svg: String, title: &str) -> String {
    match svg.find('>') {
        Some(end) if svg.starts_with("<svg") => format!(
            "{} role=\"img\" aria-label=\"{t}\"><title>{t}</title>{}",
            &svg[..end],
            &svg[end + 1..],
            t = xml_text(title)
        ),
        _ => svg,
    }
}

/// A logarithmic axis range covering the values with room to spare: whole decades, at
/// least two, so the axis has labelled ticks on both sides of a lone value.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || hi <= 0.0 {
        return (0.1, 10.0);
    }
    let mut a = (lo.log10() - 0.1).floor();
    let mut b = (hi.log10() + 0.1).ceil();
    while b - a < 2.0 {
        // Grow on the side with less room.
        if lo.log10() - a <= b - hi.log10() {
            a -= 1.0;
        } else {
            b += 1.0;
        }
    }
    // A hair wider than the decades, so rounding keeps their ticks inside.
    (10f64.powf(a) * 0.999, 10f64.powf(b) * 1.001)
}

/// Distinct values in first-seen order.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in items {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// Axis numbers: short, with SI suffixes for large values.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn money(v: f64) -> String {
    format!("${}", number(v))
}

/// Three significant digits (whole numbers kept whole), no trailing zeros; exponent
/// notation below 0.001.
fn trim(v: f64) -> String {
    let a = v.abs();
    if a < 0.001 {
        return format!("{v:.1e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `s` with its first letter in upper case (a source line starting a sentence).
pub(crate) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Keep the start and the end (a benchmark's op and its variant), drop the middle.
fn shorten_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 5 {
        return s.to_string();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut t: String = s.chars().take(head).collect();
    t.push('…');
    t.extend(s.chars().skip(n - tail));
    t
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trimmed contents of every `<text>` element.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let start = t.find('>')? + 1;
                let end = t.find("</text>")?;
                Some(t[start..end].trim().to_string())
            })
            .collect()
    }

    fn pt(provider: &str, x: f64, y: f64) -> OfferingPoint {
        OfferingPoint {
            label: format!("{provider}-{x}-{y}"),
            provider: provider.into(),
            tokens_per_s: x,
            usd_per_mtok: y,
        }
    }

    #[test]
    fn pareto_front_keeps_the_undominated() {
        let pts = [
            pt("a", 100.0, 1.0), // front: fastest
            pt("a", 50.0, 0.5),  // front: cheaper
            pt("b", 50.0, 0.8),  // dominated by (50, 0.5)
            pt("b", 10.0, 0.2),  // front: cheapest
            pt("c", 10.0, 2.0),  // dominated
            pt("c", 100.0, 1.0), // duplicate of the first
        ];
        let front = pareto_front(&pts);
        let xs: Vec<(f64, f64)> = front
            .iter()
            .map(|&i| (pts[i].tokens_per_s, pts[i].usd_per_mtok))
            .collect();
        assert_eq!(xs, [(10.0, 0.2), (50.0, 0.5), (100.0, 1.0)]);
    }

    #[test]
    fn scatter_is_an_svg_with_text_not_fonts() {
        let svg = price_performance(
            "gpt2 workload",
            "tokens/s per instance",
            &[
                pt("AWS", 10.0, 3.0),
                pt("GCP", 20.0, 2.0),
                pt("GCP", 5.0, 9.0),
            ],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<title>gpt2 workload</title>"));
        assert!(svg.contains("<text"), "labels are SVG text");
        let t = texts(&svg);
        assert!(
            t.iter().any(|s| s == "AWS") && t.iter().any(|s| s == "GCP"),
            "{t:?}"
        );
        assert!(t.iter().any(|s| s.starts_with("Pareto front")), "{t:?}");
        assert!(svg.contains("font-size=\"12\""), "12 px legend text");
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn roofline_says_where_its_roofs_come_from() {
        let roofs = Roofs::practical(&[(3.2, 0.3), (0.5, 0.9)]).unwrap();
        assert_eq!(roofs.compute_gflops, 3.2);
        assert_eq!(roofs.bandwidth_gbs, 0.9);
        let svg = roofline(
            "roofline",
            &[
                KernelPoint {
                    kernel: "matmul".into(),
                    label: "m".into(),
                    intensity: 10.0,
                    gflops: 3.2,
                    chosen: true,
                },
                KernelPoint {
                    kernel: "gelu".into(),
                    label: "g".into(),
                    intensity: 0.5,
                    gflops: 0.2,
                    chosen: false,
                },
            ],
            &roofs,
        );
        let all = texts(&svg).join(" ");
        assert!(
            all.contains("best GFLOP/s and the best GB/s achieved"),
            "{all}"
        );
        assert!(all.contains("matmul") && all.contains("gelu"), "{all}");
    }

    #[test]
    fn empty_data_gives_a_placeholder() {
        let svg = price_performance("t", "x", &[]);
        assert!(svg.contains("no priced offerings"));
        assert!(trend("t", "y", &["a".into()], &[]).contains("two or more"));
        assert!(grouped_bars("t", "y", &[], &[]).contains("nothing to compare"));
        assert!(change_bars("t", &[], 10.0).contains("no row"));
    }

    #[test]
    fn bars_trend_and_changes_draw() {
        let series = vec!["run a".to_string(), "run b".to_string()];
        let groups = vec![
            BarGroup {
                label: "gpt2 prefill".into(),
                values: vec![Some(2.0), Some(2.5)],
            },
            BarGroup {
                label: "gpt2 decode".into(),
                values: vec![Some(0.2), None],
            },
        ];
        let svg = grouped_bars("tokens/s", "tokens/s", &series, &groups);
        assert!(svg.contains("<rect") && texts(&svg).contains(&"run b".to_string()));
        let svg = trend(
            "trend",
            "tokens/s",
            &["r1".into(), "r2".into(), "r3".into()],
            &[TrendSeries {
                name: "gpt2 decode".into(),
                values: vec![Some(1.0), None, Some(1.5)],
            }],
        );
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        let svg = change_bars(
            "changes",
            &[
                ChangeBar {
                    label: "matmul/naive".into(),
                    change_pct: 25.0,
                    verdict: "regressed".into(),
                },
                ChangeBar {
                    label: "gelu/vec4".into(),
                    change_pct: -3.0,
                    verdict: "unchanged".into(),
                },
            ],
            15.0,
        );
        assert!(
            texts(&svg).contains(&"matmul/naive (regressed)".to_string()),
            "{svg}"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1234.0), "1234");
        assert_eq!(number(12345.0), "12.3k");
        assert_eq!(number(2.5e9), "2.5G");
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(0.2996), "0.3");
        assert_eq!(number(3.19), "3.19");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(0.0001), "1.0e-4");
    }
}
