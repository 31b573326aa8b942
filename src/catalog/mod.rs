//! The price catalog and accelerator specs: loading and validating `data/instances.csv` and
//! `data/accelerators.csv` (embedded defaults, optionally replaced or extended by user files),
//! matching a wgpu adapter to an accelerator, and listing the offerings (instance x pricing
//! tier) that carry an accelerator, priced per accelerator-hour.
//!
//! The formulas themselves live in [`crate::cost`]; this module only looks prices up.

mod accelerators;
mod instances;
pub mod names;
pub(crate) mod table;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

pub use accelerators::{normalize_adapter_name, Accelerator, AcceleratorKind};
pub use instances::Instance;
pub use names::{closest_name, edit_distance};

use crate::cost::{self, OwnedHardware, Tier};
use crate::error::{Error, Result};
use table::Source;

/// The embedded default instance prices.
pub const DEFAULT_INSTANCES_CSV: &str = include_str!("../../data/instances.csv");
/// The embedded default accelerator specs.
pub const DEFAULT_ACCELERATORS_CSV: &str = include_str!("../../data/accelerators.csv");
/// How errors name the embedded files (they are not on the user's disk).
pub const DEFAULT_INSTANCES_LABEL: &str = "<built-in> data/instances.csv";
pub const DEFAULT_ACCELERATORS_LABEL: &str = "<built-in> data/accelerators.csv";

/// Instance prices and accelerator specs, validated and cross-checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    instances: Vec<Instance>,
    accelerators: Vec<Accelerator>,
}

/// One way to pay for an accelerator: an instance at one pricing tier, or owned/custom hardware.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offering {
    pub accelerator: String,
    pub provider: String,
    pub instance: String,
    pub region: String,
    pub tier: Tier,
    /// Price of the whole instance (or of the owned/custom unit) per hour.
    pub usd_per_hour: f64,
    pub accelerators_per_instance: u32,
    /// `usd_per_hour / accelerators_per_instance`, from [`cost::usd_per_accelerator_hour`].
    pub usd_per_accelerator_hour: f64,
    pub vcpus: Option<u32>,
    #[serde(serialize_with = "instances::serialize_date")]
    pub as_of: Option<NaiveDate>,
    pub source: String,
    /// Why the row differs from the catalog row, e.g. a CPU price scaled to the vCPUs measured.
    pub note: Option<String>,
}

impl Offering {
    /// A user-given price ("what if we paid $P per hour?"): tier `custom`.
    pub fn custom(
        accelerator: &str,
        usd_per_hour: f64,
        accelerators_per_instance: u32,
    ) -> Result<Self> {
        Ok(Offering {
            accelerator: accelerator.to_string(),
            provider: "custom".into(),
            instance: "custom".into(),
            region: String::new(),
            tier: Tier::Custom,
            usd_per_hour,
            accelerators_per_instance,
            usd_per_accelerator_hour: cost::usd_per_accelerator_hour(
                usd_per_hour,
                accelerators_per_instance,
            )?,
            vcpus: None,
            as_of: None,
            source: "given on the command line".into(),
            note: None,
        })
    }

    /// Owned hardware priced by [`OwnedHardware::usd_per_hour`]: tier `owned`, one accelerator.
    pub fn owned(accelerator: &str, hw: &OwnedHardware) -> Result<Self> {
        let usd_per_hour = hw.usd_per_hour()?;
        Ok(Offering {
            accelerator: accelerator.to_string(),
            provider: "owned".into(),
            instance: "owned".into(),
            region: String::new(),
            tier: Tier::Owned,
            usd_per_hour,
            accelerators_per_instance: 1,
            usd_per_accelerator_hour: usd_per_hour,
            vcpus: None,
            as_of: None,
            source: hw.describe(),
            note: None,
        })
    }

    /// True when the price is older than `max_age_days` on `today`, or undated.
    pub fn is_stale(&self, today: NaiveDate, max_age_days: u32) -> bool {
        matches!(self.tier, Tier::OnDemand | Tier::Spot) && stale(self.as_of, today, max_age_days)
    }
}

/// One row of the `prices` listing: an instance with both tiers and per-accelerator prices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceRow {
    pub accelerator: String,
    pub provider: String,
    pub instance: String,
    pub region: String,
    pub accelerators_per_instance: u32,
    pub vcpus: Option<u32>,
    pub usd_per_hour_on_demand: Option<f64>,
    pub usd_per_hour_spot: Option<f64>,
    pub usd_per_accelerator_hour_on_demand: Option<f64>,
    pub usd_per_accelerator_hour_spot: Option<f64>,
    /// ISO date, None when the source is undated.
    pub as_of: Option<String>,
    /// ISO date of the spot price, None when undated.
    pub spot_as_of: Option<String>,
    pub source: String,
}

/// True when a price dated `as_of` is more than `max_age_days` old on `today`. An undated price
/// (`None`) is always stale: nothing says it is current. A date after `today` is not stale.
pub fn stale(as_of: Option<NaiveDate>, today: NaiveDate, max_age_days: u32) -> bool {
    match as_of {
        None => true,
        Some(d) => (today - d).num_days() > i64::from(max_age_days),
    }
}

impl Catalog {
    /// The embedded defaults.
    pub fn load_default() -> Result<Self> {
        Self::from_files(None, None, false)
    }

    /// The defaults with user files applied. With `replace`, a given file replaces the default
    /// of its kind; without, its rows extend the defaults and a row with the same key
    /// (accelerator name; provider + instance + region) overrides the default row.
    pub fn from_files(
        instances: Option<&Path>,
        accelerators: Option<&Path>,
        replace: bool,
    ) -> Result<Self> {
        let inst = instances
            .map(|p| read_file(p).map(|b| (p.to_path_buf(), b)))
            .transpose()?;
        let acc = accelerators
            .map(|p| read_file(p).map(|b| (p.to_path_buf(), b)))
            .transpose()?;
        Self::from_sources(
            inst.as_ref().map(|(p, b)| Source { path: p, bytes: b }),
            acc.as_ref().map(|(p, b)| Source { path: p, bytes: b }),
            replace,
        )
    }

    pub(crate) fn from_sources(
        user_instances: Option<Source<'_>>,
        user_accelerators: Option<Source<'_>>,
        replace: bool,
    ) -> Result<Self> {
        let default_acc = Source {
            path: Path::new(DEFAULT_ACCELERATORS_LABEL),
            bytes: DEFAULT_ACCELERATORS_CSV.as_bytes(),
        };
        let default_inst = Source {
            path: Path::new(DEFAULT_INSTANCES_LABEL),
            bytes: DEFAULT_INSTANCES_CSV.as_bytes(),
        };

        // Accelerators first: instance rows are checked against the final accelerator list.
        let accelerators = match user_accelerators {
            Some(src) if replace => accelerators::parse(src)?,
            Some(src) => {
                let user = accelerators::parse(src)?;
                let mut base = accelerators::parse(default_acc)?;
                base.retain(|a| !user.iter().any(|u| u.name.eq_ignore_ascii_case(&a.name)));
                base.extend(user);
                base
            }
            None => accelerators::parse(default_acc)?,
        };
        let instances = match user_instances {
            Some(src) if replace => instances::parse(src, &accelerators)?,
            Some(src) => {
                let user = instances::parse(src, &accelerators)?;
                let mut base = instances::parse(default_inst, &accelerators)?;
                base.retain(|i| !user.iter().any(|u| u.key() == i.key()));
                base.extend(user);
                base
            }
            None => instances::parse(default_inst, &accelerators)?,
        };
        Ok(Catalog {
            instances,
            accelerators,
        })
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn accelerators(&self) -> &[Accelerator] {
        &self.accelerators
    }

    /// Accelerators wgpu cannot drive (Trainium, Inferentia): priced through projections.
    pub fn unreachable_accelerators(&self) -> impl Iterator<Item = &Accelerator> {
        self.accelerators.iter().filter(|a| !a.reachable_by_wgpu)
    }

    /// The accelerator with this name (case- and punctuation-insensitive), if any.
    pub fn find_accelerator(&self, name: &str) -> Option<&Accelerator> {
        let f = names::fold(name);
        self.accelerators.iter().find(|a| names::fold(&a.name) == f)
    }

    /// The accelerator with this name, or a bad-input error suggesting the closest name.
    pub fn accelerator(&self, name: &str) -> Result<&Accelerator> {
        self.find_accelerator(name).ok_or_else(|| {
            Error::bad_input(
                format!("unknown accelerator `{name}`"),
                format!(
                    "{} (`priceperf prices` lists them)",
                    names::suggestion(name, self.accelerators.iter().map(|a| a.name.as_str()))
                ),
            )
        })
    }

    /// The accelerator a wgpu adapter is, by its name. For a CPU adapter (`is_cpu`, i.e. wgpu's
    /// `DeviceType::Cpu`) only CPU rows are considered and the first CPU row is the fallback, so
    /// lavapipe, SwiftShader and WARP all price as CPU instances. Otherwise the most specific
    /// (longest) matching pattern wins; None when nothing matches, so an unknown variant stays
    /// unknown instead of borrowing a sibling's specs.
    pub fn match_adapter(&self, name: &str, is_cpu: bool) -> Option<&Accelerator> {
        let normalized = normalize_adapter_name(name);
        let candidates = self
            .accelerators
            .iter()
            .filter(|a| !is_cpu || a.kind == AcceleratorKind::Cpu);
        let best = candidates
            .filter_map(|a| a.match_len(&normalized).map(|len| (len, a)))
            .fold(None::<(usize, &Accelerator)>, |best, (len, a)| match best {
                Some((b, _)) if b >= len => best,
                _ => Some((len, a)),
            })
            .map(|(_, a)| a);
        if best.is_none() && is_cpu {
            return self
                .accelerators
                .iter()
                .find(|a| a.kind == AcceleratorKind::Cpu);
        }
        best
    }

    /// Every priced offering carrying `accelerator` (name as in the spec file, any case):
    /// one per instance and tier with a price, cheapest per accelerator-hour first. CPU-only
    /// instances count as one accelerator; for a CPU measured at a known vCPU count use
    /// [`Catalog::cpu_offerings`] instead.
    pub fn offerings_for(&self, accelerator: &str) -> Vec<Offering> {
        let f = names::fold(accelerator);
        let mut out: Vec<Offering> = self
            .instances
            .iter()
            .filter(|i| names::fold(&i.accelerator) == f)
            .flat_map(|i| instance_offerings(i, None))
            .collect();
        sort_offerings(&mut out);
        out
    }

    /// All offerings of every instance with this instance name (any provider and region),
    /// or a bad-input error suggesting the closest instance name.
    pub fn offerings_for_instance(&self, instance: &str) -> Result<Vec<Offering>> {
        let matches: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| i.instance.eq_ignore_ascii_case(instance.trim()))
            .collect();
        if matches.is_empty() {
            return Err(Error::bad_input(
                format!("unknown instance `{instance}`"),
                format!(
                    "{} (`priceperf prices` lists them)",
                    names::suggestion(instance, self.instances.iter().map(|i| i.instance.as_str()))
                ),
            ));
        }
        let mut out: Vec<Offering> = matches
            .into_iter()
            .flat_map(|i| instance_offerings(i, None))
            .collect();
        if out.is_empty() {
            return Err(Error::bad_input(
                format!("instance `{instance}` has no on-demand or spot price in the catalog"),
                "Give a price with --price-per-hour, or add one in a user instances file",
            ));
        }
        sort_offerings(&mut out);
        Ok(out)
    }

    /// CPU-instance offerings for a CPU adapter measured with `vcpus` vCPUs.
    ///
    /// A CPU instance with exactly `vcpus` vCPUs is priced as listed. Otherwise each instance
    /// family (e.g. AWS `c7a`, GCP `c3-standard`, Azure `Standard_D#as_v5`) is priced at its
    /// per-vCPU rate times `vcpus`, from the listed size closest to `vcpus`; cloud CPU prices
    /// are linear in vCPUs within a family, so this is the price of renting that many vCPUs.
    /// Such rows are named e.g. `4x c7a.large` (or `c7a.large (scaled to 6 vCPU)`) and carry a
    /// note. Cheapest first.
    pub fn cpu_offerings(&self, vcpus: u32) -> Vec<Offering> {
        if vcpus == 0 {
            return Vec::new();
        }
        let cpu_names: Vec<&str> = self
            .accelerators
            .iter()
            .filter(|a| a.kind == AcceleratorKind::Cpu)
            .map(|a| a.name.as_str())
            .collect();
        // The closest listed size per (provider, family, region).
        let mut chosen: Vec<&Instance> = Vec::new();
        let rank = |i: &Instance| {
            let v = i.vcpus.unwrap_or(0);
            (v != vcpus, v > vcpus, v.abs_diff(vcpus))
        };
        for inst in self
            .instances
            .iter()
            .filter(|i| cpu_names.contains(&i.accelerator.as_str()) && i.vcpus.is_some())
        {
            let key = (
                inst.provider.to_lowercase(),
                instance_family(&inst.instance),
                inst.region.to_lowercase(),
            );
            match chosen.iter_mut().find(|c| {
                (
                    c.provider.to_lowercase(),
                    instance_family(&c.instance),
                    c.region.to_lowercase(),
                ) == key
            }) {
                Some(c) if rank(inst) < rank(c) => *c = inst,
                Some(_) => {}
                None => chosen.push(inst),
            }
        }
        let mut out: Vec<Offering> = chosen
            .into_iter()
            .flat_map(|i| instance_offerings(i, Some(vcpus)))
            .collect();
        sort_offerings(&mut out);
        out
    }

    /// The catalog as table rows, optionally filtered by accelerator and provider (names
    /// checked, with a suggestion when unknown). Sorted by accelerator, then by on-demand price
    /// per accelerator-hour.
    pub fn prices(
        &self,
        accelerator: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Vec<PriceRow>> {
        let acc = accelerator.map(|a| self.accelerator(a)).transpose()?;
        if let Some(p) = provider {
            if !self
                .instances
                .iter()
                .any(|i| i.provider.eq_ignore_ascii_case(p.trim()))
            {
                return Err(Error::bad_input(
                    format!("unknown provider `{p}`"),
                    names::suggestion(p, self.instances.iter().map(|i| i.provider.as_str())),
                ));
            }
        }
        let per_acc = |price: Option<f64>, n: u32| {
            price.and_then(|p| cost::usd_per_accelerator_hour(p, n).ok())
        };
        let mut rows: Vec<PriceRow> = self
            .instances
            .iter()
            .filter(|i| acc.is_none_or(|a| a.name == i.accelerator))
            .filter(|i| provider.is_none_or(|p| i.provider.eq_ignore_ascii_case(p.trim())))
            .map(|i| PriceRow {
                accelerator: i.accelerator.clone(),
                provider: i.provider.clone(),
                instance: i.instance.clone(),
                region: i.region.clone(),
                accelerators_per_instance: i.accelerator_count,
                vcpus: i.vcpus,
                usd_per_hour_on_demand: i.usd_per_hour_on_demand,
                usd_per_hour_spot: i.usd_per_hour_spot,
                usd_per_accelerator_hour_on_demand: per_acc(
                    i.usd_per_hour_on_demand,
                    i.accelerator_count,
                ),
                usd_per_accelerator_hour_spot: per_acc(i.usd_per_hour_spot, i.accelerator_count),
                as_of: i.as_of.map(|d| d.format("%Y-%m-%d").to_string()),
                spot_as_of: i.spot_as_of.map(|d| d.format("%Y-%m-%d").to_string()),
                source: i.source.clone(),
            })
            .collect();
        rows.sort_by(|a, b| {
            a.accelerator
                .cmp(&b.accelerator)
                .then(
                    a.usd_per_accelerator_hour_on_demand
                        .unwrap_or(f64::INFINITY)
                        .total_cmp(
                            &b.usd_per_accelerator_hour_on_demand
                                .unwrap_or(f64::INFINITY),
                        ),
                )
                .then(a.provider.cmp(&b.provider))
                .then(a.instance.cmp(&b.instance))
        });
        Ok(rows)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", PathBuf::from(path), e))
}

/// The offerings of one instance row, one per priced tier. With `scale_to_vcpus`, a CPU
/// instance is priced at its per-vCPU rate for that many vCPUs.
fn instance_offerings(i: &Instance, scale_to_vcpus: Option<u32>) -> Vec<Offering> {
    let mut out = Vec::new();
    for (tier, price) in [
        (Tier::OnDemand, i.usd_per_hour_on_demand),
        (Tier::Spot, i.usd_per_hour_spot),
    ] {
        let Some(listed) = price else { continue };
        let (instance, usd_per_hour, vcpus, note) = match (scale_to_vcpus, i.vcpus) {
            (Some(want), Some(have)) if want != have => {
                let name = if want.is_multiple_of(have) {
                    format!("{}x {}", want / have, i.instance)
                } else {
                    format!("{} (scaled to {want} vCPU)", i.instance)
                };
                let note = format!(
                    "{} lists {have} vCPU at ${listed}/h; priced at its per-vCPU rate for the {want} vCPU measured",
                    i.instance
                );
                (
                    name,
                    listed / f64::from(have) * f64::from(want),
                    Some(want),
                    Some(note),
                )
            }
            _ => (i.instance.clone(), listed, i.vcpus, None),
        };
        // Catalog prices and counts were validated above 0 at load, so this cannot fail; a
        // failure would mean a bug, and skipping the offering is safer than a panic.
        let Ok(per_acc) = cost::usd_per_accelerator_hour(usd_per_hour, i.accelerator_count) else {
            continue;
        };
        out.push(Offering {
            accelerator: i.accelerator.clone(),
            provider: i.provider.clone(),
            instance,
            region: i.region.clone(),
            tier,
            usd_per_hour,
            accelerators_per_instance: i.accelerator_count,
            usd_per_accelerator_hour: per_acc,
            vcpus,
            as_of: match tier {
                Tier::Spot => i.spot_as_of,
                _ => i.as_of,
            },
            source: i.source.clone(),
            note,
        });
    }
    out
}

fn sort_offerings(v: &mut [Offering]) {
    v.sort_by(|a, b| {
        a.usd_per_accelerator_hour
            .total_cmp(&b.usd_per_accelerator_hour)
            .then_with(|| a.provider.cmp(&b.provider))
            .then_with(|| a.instance.cmp(&b.instance))
            .then_with(|| a.region.cmp(&b.region))
    });
}

/// The size-independent part of an instance name: AWS `c7a.large` -> `c7a`, GCP
/// `c3-standard-4` -> `c3-standard`, Azure `Standard_D2as_v5` -> `standard_d#as_v5`.
fn instance_family(name: &str) -> String {
    let lower = name.to_lowercase();
    if let Some((fam, _)) = lower.split_once('.') {
        return fam.to_string();
    }
    if let Some((fam, size)) = lower.rsplit_once('-') {
        if !size.is_empty() && size.chars().all(|c| c.is_ascii_digit()) {
            return fam.to_string();
        }
    }
    // Replace the first run of digits (the size) with '#'.
    let mut out = String::with_capacity(lower.len());
    let mut replaced = false;
    let mut in_digits = false;
    for c in lower.chars() {
        if c.is_ascii_digit() && !replaced {
            if !in_digits {
                out.push('#');
                in_digits = true;
            }
            continue;
        }
        if in_digits {
            replaced = true;
            in_digits = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
