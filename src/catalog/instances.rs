//! Instance price rows (`data/instances.csv`): one row per (provider, instance, region) with
//! its on-demand and spot price per instance-hour and the date of the newest fact used.

use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use crate::catalog::accelerators::{Accelerator, AcceleratorKind};
use crate::catalog::names;
use crate::catalog::table::{self, Schema, Source};
use crate::error::Result;

/// One rentable instance in one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub provider: String,
    pub instance: String,
    /// Catalog key of the accelerator (`CPU` for CPU-only instances).
    pub accelerator: String,
    /// Accelerators in one instance; a CPU-only instance counts as one (DESIGN.md).
    pub accelerator_count: u32,
    /// Memory of ONE accelerator, as in the research data.
    pub accelerator_memory_gb: Option<f64>,
    pub vcpus: Option<u32>,
    /// CPU family of CPU-only instances, as the provider labels it.
    pub host_cpu: Option<String>,
    pub region: String,
    pub usd_per_hour_on_demand: Option<f64>,
    pub usd_per_hour_spot: Option<f64>,
    /// Date of the newest dated fact used for this row; None when the source is undated.
    #[serde(serialize_with = "serialize_date")]
    pub as_of: Option<NaiveDate>,
    /// Date of the spot price, which often comes from another source than the on-demand
    /// one: the `spot_as_of` column where the file has it (blank: undated), else `as_of`.
    #[serde(serialize_with = "serialize_date")]
    pub spot_as_of: Option<NaiveDate>,
    pub source: String,
}

impl Instance {
    /// The natural key, folded for case-insensitive comparison.
    pub(crate) fn key(&self) -> (String, String, String) {
        (
            self.provider.to_lowercase(),
            self.instance.to_lowercase(),
            self.region.to_lowercase(),
        )
    }
}

pub(crate) fn serialize_date<S: Serializer>(
    d: &Option<NaiveDate>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.format("%Y-%m-%d").to_string()),
        None => s.serialize_none(),
    }
}

const SCHEMA: Schema = Schema {
    required: &[
        "provider",
        "instance",
        "accelerator",
        "accelerator_count",
        "region",
        "usd_per_hour_on_demand",
        "usd_per_hour_spot",
        "as_of",
        "source",
    ],
    optional: &["accelerator_memory_gb", "vcpus", "host_cpu", "spot_as_of"],
    what: "instance price file",
};

/// Parses an instances file. Every accelerator named must be in `accelerators`; a
/// (provider, instance, region) key may appear once per file.
pub(crate) fn parse(src: Source<'_>, accelerators: &[Accelerator]) -> Result<Vec<Instance>> {
    let mut out: Vec<Instance> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for rec in table::read(src, &SCHEMA)? {
        let accelerator = rec.required(
            "accelerator",
            "the accelerator name from the accelerator spec file",
        )?;
        let Some(acc) = accelerators
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&accelerator))
        else {
            return Err(rec.error(
                "accelerator",
                format!("accelerator `{accelerator}` is not in the accelerator spec file"),
                format!(
                    "Use an accelerator name from the spec file, or add a row for it there (use `CPU` for CPU-only instances). {}",
                    names::suggestion(&accelerator, accelerators.iter().map(|a| a.name.as_str()))
                ),
            ));
        };
        let as_of = rec.opt_date("as_of")?;
        let inst = Instance {
            provider: rec.required("provider", "the provider, e.g. AWS")?,
            instance: rec.required("instance", "the instance type, e.g. p5.48xlarge")?,
            // Store the spec file's spelling so later lookups need no case folding.
            accelerator: acc.name.clone(),
            accelerator_count: rec.u32(
                "accelerator_count",
                1,
                "the number of accelerators per instance (1 for per-GPU rates and CPU-only instances)",
            )?,
            accelerator_memory_gb: rec.positive_f64("accelerator_memory_gb", "the memory of one accelerator in GB")?,
            vcpus: rec.opt_u32("vcpus", 1, "the vCPU count")?,
            host_cpu: rec.optional_text("host_cpu"),
            region: rec.required("region", "the region, e.g. us-east-1 (or `unspecified`)")?,
            usd_per_hour_on_demand: rec.positive_f64("usd_per_hour_on_demand", "the on-demand price in USD per instance-hour")?,
            usd_per_hour_spot: rec.positive_f64("usd_per_hour_spot", "the spot price in USD per instance-hour")?,
            as_of,
            spot_as_of: if rec.has("spot_as_of") {
                rec.opt_date("spot_as_of")?
            } else {
                as_of
            },
            source: rec.required("source", "where the price comes from (URL, file and commit, or contract)")?,
        };
        if acc.kind == AcceleratorKind::Cpu && inst.vcpus.is_none() {
            return Err(rec.error(
                "vcpus",
                format!("CPU-only instance `{}` has no vCPU count", inst.instance),
                "CPU instances are matched to CPU adapters by vCPU count; fill in `vcpus`",
            ));
        }
        if let Some(prev) = out.iter().position(|o| o.key() == inst.key()) {
            return Err(rec.error(
                "instance",
                format!(
                    "{} `{}` in region `{}` is listed twice (first on line {})",
                    inst.provider, inst.instance, inst.region, lines[prev]
                ),
                "Keep one row per provider, instance and region, with the newest prices",
            ));
        }
        lines.push(rec.line());
        out.push(inst);
    }
    Ok(out)
}
