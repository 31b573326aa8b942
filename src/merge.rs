//! One result set from many machines (`priceperf merge DIR... --out DIR`).
//!
//! Every run found in the inputs (run folders, folders of runs, earlier merges) is placed
//! in `OUT/runs/<run id>/` as an ordinary run folder, and `OUT/merged.json` records where
//! each came from, what was deduplicated and what conflicted. `compare`, `export` and
//! `merge` itself read the result like any folder.
//!
//! Rows are deduplicated by natural key plus run id: copies of the same run (same run id,
//! host and start time; e.g. a folder uploaded twice, or a resumed run copied before and
//! after) are unioned row by row, as are rows repeated within one folder. Identical rows
//! count as duplicates; rows that differ are conflicts: the copy given first is kept, and
//! the conflict is reported with the columns that differ (`--strict` refuses to write
//! instead). Two different runs that happen to share a run id (two machines started in the
//! same second), or whose ids make the same folder name, are both kept, the later one
//! renamed `<run id>-<host>`, and the renaming is reported.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::dataset::{
    self, NaturalKey, Run, COSTS_CSV, KERNELS_CSV, RESULTS_JSON, RUN_JSON, SAMPLES_JSONL,
    TOKENS_CSV,
};
use crate::error::{Error, Result};
use crate::history::{self, SampleLine};
use crate::results::csv_cells::CsvRow;
use crate::results::{self, KernelRow, RunInfo};

/// The report file at the top of a merged folder.
pub const MERGED_JSON: &str = "merged.json";

/// A conflicting duplicate: the same row (or file) of the same run, with different content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub run_id: String,
    /// `kernels.csv`, `samples.jsonl`, `tokens.csv` or `costs.csv`.
    pub file: String,
    /// The row's natural key (kernel rows and samples).
    pub key: Option<NaturalKey>,
    /// Columns whose values differ (kernel rows).
    pub differs_in: Vec<String>,
    /// Folder whose version was kept, and the one dropped.
    pub kept: String,
    pub dropped: String,
}

/// A run id shared by two different runs; the later was renamed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Renamed {
    pub run_id: String,
    pub new_run_id: String,
    pub host: String,
    pub source: String,
}

/// One run of the merged set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedRun {
    pub run_id: String,
    pub host: String,
    pub adapter: String,
    pub kernel_rows: usize,
    /// Every folder that held a copy of it.
    pub sources: Vec<String>,
}

/// What `merge` did: also written as `merged.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeReport {
    pub schema_version: u32,
    pub merged_at: String,
    pub priceperf_version: String,
    pub inputs: Vec<String>,
    pub runs: Vec<MergedRun>,
    /// Rows (kernel rows and sample lines) that were exact copies and were dropped.
    pub duplicates: usize,
    pub conflicts: Vec<Conflict>,
    pub renamed: Vec<Renamed>,
}

impl MergeReport {
    /// A few lines for the terminal.
    pub fn summary(&self, out: &Path) -> String {
        let adapters: std::collections::BTreeSet<&str> =
            self.runs.iter().map(|r| r.adapter.as_str()).collect();
        let rows: usize = self.runs.iter().map(|r| r.kernel_rows).sum();
        let mut s = format!(
            "merged {} runs ({} adapters, {} kernel rows) from {} inputs into {}; {} duplicate rows dropped",
            self.runs.len(),
            adapters.len(),
            rows,
            self.inputs.len(),
            out.display(),
            self.duplicates
        );
        for r in &self.renamed {
            let clash = if self.runs.iter().any(|m| m.run_id == r.run_id) {
                "is shared by two different runs"
            } else {
                "names the same folder as another run's id"
            };
            s.push_str(&format!(
                "\nrun id {} {clash}; the one from {} (host {}) is kept as {}",
                r.run_id, r.source, r.host, r.new_run_id
            ));
        }
        for c in &self.conflicts {
            s.push_str(&format!(
                "\nconflict in run {} {}{}{}: kept {}, dropped {}",
                c.run_id,
                c.file,
                c.key
                    .as_ref()
                    .map(|k| format!(" row {}/{}", k.benchmark, k.variant))
                    .unwrap_or_default(),
                if c.differs_in.is_empty() {
                    String::new()
                } else {
                    format!(" (differs in {})", c.differs_in.join(", "))
                },
                c.kept,
                c.dropped
            ));
        }
        s
    }
}

/// A run being assembled from its copies.
struct Group {
    run: Run,
    /// Where each kernel row and sample came from.
    row_source: BTreeMap<NaturalKey, PathBuf>,
    sample_source: BTreeMap<NaturalKey, PathBuf>,
    tokens_from: Option<PathBuf>,
    costs_from: Option<PathBuf>,
    results_json_from: Option<PathBuf>,
    sources: Vec<PathBuf>,
}

/// The merged runs and the report, before anything is written.
pub struct Plan {
    groups: Vec<Group>,
    pub report: MergeReport,
}

/// Merge runs (in the order given: on conflict the earlier copy wins).
pub fn plan(inputs: &[PathBuf], runs: Vec<Run>) -> Plan {
    let mut groups: Vec<Group> = Vec::new();
    let mut duplicates = 0;
    let mut conflicts = Vec::new();
    let mut renamed = Vec::new();
    for mut run in runs {
        // The rows travel apart from the run, so that the first copy's go through the same
        // union as every later copy's: a kernels.csv that holds one row twice (a resume
        // that measured a benchmark again, a hand-made concatenation) was kept as it was,
        // reported as "0 duplicate rows dropped", and then refused by compare.
        let kernels = std::mem::take(&mut run.kernels);
        let samples = std::mem::take(&mut run.samples);
        let (tokens, costs) = (run.tokens.take(), run.costs.take());
        let same = groups.iter().position(|g| is_copy(&g.run.info, &run.info));
        let gi = match same {
            Some(gi) => {
                groups[gi].sources.push(run.dir.clone());
                gi
            }
            None => {
                // Each run is written to `runs/<slug of its id>/`, so two ids that slug to
                // the same name (`r 1` and `r-1`, or `R1` and `r1` on a case-insensitive
                // disk) are as much a collision as one id shared: unchecked, the second
                // run's run.json replaced the first's and its rows were appended to the
                // first's kernels.csv.
                // One id shared is one folder name shared too.
                let taken = |id: &str| {
                    groups
                        .iter()
                        .any(|g| folder_key(&g.run.info.run_id) == folder_key(id))
                };
                if taken(&run.info.run_id) {
                    let base = format!("{}-{}", run.info.run_id, slug(&run.info.host));
                    let mut id = base.clone();
                    let mut n = 2;
                    while taken(&id) {
                        id = format!("{base}-{n}");
                        n += 1;
                    }
                    renamed.push(Renamed {
                        run_id: run.info.run_id.clone(),
                        new_run_id: id.clone(),
                        host: run.info.host.clone(),
                        source: run.dir.display().to_string(),
                    });
                    run.info.run_id = id;
                }
                groups.push(new_group(run.clone()));
                groups.len() - 1
            }
        };
        let g = &mut groups[gi];
        let run_id = g.run.info.run_id.clone();
        // A copy of the finished run over one taken before it finished (an interrupted run,
        // later resumed): its run info (finished, time, peaks, speed check) and its token and
        // cost tables are the run's, not the early copy's. Keeping the early `interrupted`
        // made every compare against the merged folder refuse it as incomplete.
        let completes = complete(&run.info) && !complete(&g.run.info);
        if completes {
            g.run.info = RunInfo {
                run_id: run_id.clone(),
                ..run.info.clone()
            };
        }
        for row in kernels {
            let key = NaturalKey::of(&row);
            match g.run.kernels.iter().find(|r| NaturalKey::of(r) == key) {
                None => {
                    g.row_source.insert(key, run.dir.clone());
                    g.run.kernels.push(row);
                }
                Some(kept) if *kept == row => duplicates += 1,
                Some(kept) => conflicts.push(Conflict {
                    run_id: run_id.clone(),
                    file: KERNELS_CSV.into(),
                    differs_in: differing_columns(kept, &row),
                    kept: g.row_source[&key].display().to_string(),
                    dropped: run.dir.display().to_string(),
                    key: Some(key),
                }),
            }
        }
        for (key, line) in samples {
            match g.run.samples.get(&key) {
                None => {
                    g.sample_source.insert(key.clone(), run.dir.clone());
                    g.run.samples.insert(key, line);
                }
                Some(kept) if *kept == line => duplicates += 1,
                Some(_) => conflicts.push(Conflict {
                    run_id: run_id.clone(),
                    file: SAMPLES_JSONL.into(),
                    differs_in: vec!["samples_ns".into()],
                    kept: g.sample_source[&key].display().to_string(),
                    dropped: run.dir.display().to_string(),
                    key: Some(key),
                }),
            }
        }
        for (file, mine, theirs, from) in [
            (TOKENS_CSV, &mut g.run.tokens, tokens, &mut g.tokens_from),
            (COSTS_CSV, &mut g.run.costs, costs, &mut g.costs_from),
        ] {
            match (mine.as_ref(), theirs) {
                (_, None) => {}
                (None, Some(t)) => {
                    *from = Some(run.dir.clone());
                    *mine = Some(t);
                }
                (Some(_), Some(t)) if completes => {
                    *from = Some(run.dir.clone());
                    *mine = Some(t);
                }
                (Some(a), Some(b)) if a.header == b.header && cells(a) == cells(&b) => {}
                (Some(_), Some(_)) => conflicts.push(Conflict {
                    run_id: run_id.clone(),
                    file: file.into(),
                    key: None,
                    differs_in: Vec::new(),
                    kept: from
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    dropped: run.dir.display().to_string(),
                }),
            }
        }
        if g.results_json_from.is_none() && run.dir.join(RESULTS_JSON).is_file() {
            g.results_json_from = Some(run.dir.clone());
        }
    }
    let report = MergeReport {
        schema_version: results::SCHEMA_VERSION,
        merged_at: chrono::Utc::now().to_rfc3339(),
        priceperf_version: env!("CARGO_PKG_VERSION").into(),
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        runs: groups
            .iter()
            .map(|g| MergedRun {
                run_id: g.run.info.run_id.clone(),
                host: g.run.info.host.clone(),
                adapter: g.run.info.adapter.name.clone(),
                kernel_rows: g.run.kernels.len(),
                sources: g.sources.iter().map(|p| p.display().to_string()).collect(),
            })
            .collect(),
        duplicates,
        conflicts,
        renamed,
    };
    Plan { groups, report }
}

/// Whether `b` is a copy of the run `a`: same host, start time and run id, where a run id
/// that merge renamed (`<run id>-<host>`, `<run id>-<host>-<n>`) still names its run. The
/// group of a renamed run carries the new id, and an earlier merge holds it under that id,
/// so without this a further copy of such a run would be kept as one more run.
/// Whether a copy of a run was taken after it finished: `finished` set and not stopped early.
fn complete(info: &RunInfo) -> bool {
    info.finished.is_some() && !info.interrupted
}

fn is_copy(a: &RunInfo, b: &RunInfo) -> bool {
    a.host == b.host
        && a.started == b.started
        && unrenamed(&a.run_id, &a.host) == unrenamed(&b.run_id, &b.host)
}

/// A run id without the `-<host>` or `-<host>-<n>` suffix that renaming adds.
fn unrenamed<'a>(run_id: &'a str, host: &str) -> &'a str {
    let suffix = format!("-{}", slug(host));
    let numbered = run_id
        .rsplit_once('-')
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(head, _)| head);
    // The plain suffix first: a host name may itself end in `-<digits>`.
    [Some(run_id), numbered]
        .into_iter()
        .flatten()
        .find_map(|id| id.strip_suffix(suffix.as_str()).filter(|b| !b.is_empty()))
        .unwrap_or(run_id)
}

/// The group of a run seen for the first time, holding none of its rows or tables yet:
/// [`plan`] adds them as it adds every later copy's.
fn new_group(run: Run) -> Group {
    debug_assert!(run.kernels.is_empty() && run.samples.is_empty());
    debug_assert!(run.tokens.is_none() && run.costs.is_none());
    Group {
        row_source: BTreeMap::new(),
        sample_source: BTreeMap::new(),
        tokens_from: None,
        costs_from: None,
        results_json_from: None,
        sources: vec![run.dir.clone()],
        run,
    }
}

fn cells(t: &dataset::Table) -> Vec<&Vec<String>> {
    t.rows.iter().map(|r| &r.cells).collect()
}

fn differing_columns(a: &KernelRow, b: &KernelRow) -> Vec<String> {
    KernelRow::header()
        .iter()
        .zip(a.cells().iter().zip(b.cells()))
        .filter(|(_, (x, y))| x.encode() != y.encode())
        .map(|(h, _)| h.to_string())
        .collect()
}

/// The name of a run's folder as a case-insensitive file system sees it.
fn folder_key(run_id: &str) -> String {
    slug(run_id).to_ascii_lowercase()
}

/// A file-name-safe version of a host name or run id.
fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, 'x');
    }
    out
}

/// Write the merged set to `out`, which must not exist or be an empty folder. The folder
/// is assembled beside `out` and renamed into place, so `out` is either complete or absent.
pub fn write(plan: &Plan, out: &Path) -> Result<()> {
    if out.exists() {
        let empty = fs::read_dir(out)
            .map_err(|e| Error::io("list", out, e))?
            .next()
            .is_none();
        if !empty {
            return Err(Error::bad_input(
                format!("--out {} already exists and is not empty", out.display()),
                "Merge into a new folder; to add runs to an earlier merge, pass that merge as one of the inputs.",
            ));
        }
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "merged".into());
    let staging = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| Error::io("remove", &staging, e))?;
    }
    let result = write_into(plan, &staging);
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
        return result;
    }
    if out.exists() {
        fs::remove_dir(out).map_err(|e| Error::io("replace", out, e))?;
    }
    fs::rename(&staging, out).map_err(|e| Error::io("move into place", out, e))
}

fn write_into(plan: &Plan, root: &Path) -> Result<()> {
    let runs_dir = root.join("runs");
    fs::create_dir_all(&runs_dir).map_err(|e| Error::io("create", &runs_dir, e))?;
    for g in &plan.groups {
        let dir = runs_dir.join(slug(&g.run.info.run_id));
        // `create_dir`, not `create_dir_all`: reusing a folder would mix two runs' files.
        // `plan` renames every run whose folder would collide, so this is a safety net.
        fs::create_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::bad_input(
                format!(
                    "two merged runs would share the folder {} (the second is run {})",
                    dir.display(),
                    g.run.info.run_id
                ),
                "Nothing was written. This is a priceperf bug; please report it with the run ids of the inputs.",
            ),
            _ => Error::io("create", &dir, e),
        })?;
        write_json(&dir.join(RUN_JSON), &g.run.info)?;
        if !g.run.kernels.is_empty() {
            results::append_rows(&dir.join(KERNELS_CSV), &g.run.kernels)?;
        }
        if !g.run.samples.is_empty() {
            let lines: Vec<SampleLine> = g.run.samples.values().cloned().collect();
            history::append_sample_lines(&dir.join(SAMPLES_JSONL), &lines)?;
        }
        for (file, from) in [(TOKENS_CSV, &g.tokens_from), (COSTS_CSV, &g.costs_from)] {
            if let Some(src) = from {
                let (a, b) = (src.join(file), dir.join(file));
                fs::copy(&a, &b).map_err(|e| Error::io("copy", &a, e))?;
            }
        }
        // results.json: the source's document (it may carry more than the kernel rows),
        // with the merged run info and kernel rows.
        let mut doc = g
            .results_json_from
            .as_ref()
            .and_then(|d| fs::read_to_string(d.join(RESULTS_JSON)).ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()));
        doc["run"] = serde_json::to_value(&g.run.info).expect("run info serialises");
        doc["kernels"] = serde_json::to_value(&g.run.kernels).expect("kernel rows serialise");
        write_json(&dir.join(RESULTS_JSON), &doc)?;
    }
    write_json(&root.join(MERGED_JSON), &plan.report)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).expect("merge output serialises");
    results::write_atomic(path, &text)
}

/// Load the inputs, merge, and (unless `strict` finds conflicts) write `out`.
pub fn merge(inputs: &[PathBuf], out: &Path, strict: bool) -> Result<MergeReport> {
    if inputs.is_empty() {
        return Err(Error::bad_input(
            "merge needs at least one input folder",
            "Pass the result folders to merge, e.g. priceperf merge fleet/* --out merged.",
        ));
    }
    let runs = dataset::load_all(inputs)?;
    let plan = plan(inputs, runs);
    if strict && !plan.report.conflicts.is_empty() {
        return Err(Error::bad_input(
            format!(
                "{} conflicting duplicates (--strict):\n{}",
                plan.report.conflicts.len(),
                plan.report
                    .summary(out)
                    .lines()
                    .filter(|l| l.starts_with("conflict"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            "Nothing was written. Remove the copy you do not trust from the inputs, or drop --strict to keep the first copy of each conflicting row.",
        ));
    }
    write(&plan, out)?;
    Ok(plan.report)
}

/// `priceperf merge`: merge, write, print the summary (conflicts included) to stderr.
pub fn execute(args: &crate::cli::MergeArgs) -> Result<i32> {
    let report = merge(&args.dirs, &args.out, args.strict)?;
    eprintln!("priceperf: {}", report.summary(&args.out));
    Ok(crate::error::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_run_ids_name_their_run() {
        assert_eq!(unrenamed("r1-node-2", "node-2"), "r1");
        assert_eq!(unrenamed("r1-node-2-3", "node-2"), "r1");
        assert_eq!(unrenamed("r1-h2", "h2"), "r1");
        assert_eq!(unrenamed("r1-h2-2", "h2"), "r1");
        assert_eq!(unrenamed("r1", "h2"), "r1");
        assert_eq!(unrenamed("r1-2", "h2"), "r1-2");
        assert_eq!(unrenamed("-h2", "h2"), "-h2", "never empty");
        assert_eq!(unrenamed("r1-my-host", "my host"), "r1", "slugged host");
    }
}
