//! Terminal output: the per-row progress line and the end-of-run tables.

use crate::gpu::AdapterSummary;
use crate::results::{KernelRow, Status};

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
/// peak where the accelerator is known, verified.
pub fn kernel_table(rows: &[KernelRow]) -> String {
    let headers = [
        "benchmark",
        "variant",
        "GFLOP/s",
        "GB/s",
        "% peak",
        "verified",
        "status",
        "",
    ];
    let mut cells: Vec<[String; 8]> = Vec::new();
    for r in rows {
        cells.push([
            r.benchmark.clone(),
            r.variant.clone(),
            r.gflops.map_or("-".into(), |g| format!("{g:.2}")),
            r.gbps.map_or("-".into(), |g| format!("{g:.2}")),
            r.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}")),
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

/// Left-aligned columns separated by two spaces.
pub fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
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
    fn table_aligns_columns() {
        let t = table(&["a", "bb"], &[["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\n---  --\nxxx  y\n");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(32768), "32 KiB");
        assert_eq!(bytes(134217728), "128 MiB");
        assert_eq!(bytes(2147483647), "2.0 GiB");
    }
}
