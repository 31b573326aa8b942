//! Raw samples, the history a run keeps beyond its summary: `samples.jsonl` in the run
//! folder, one JSON line per measured (benchmark, variant) with its natural key and every
//! per-iteration time criterion sampled, in nanoseconds.
//!
//! `kernels.csv` holds the median and its 95% bootstrap interval; the samples let `compare`
//! run a rank test, and let anyone recompute other statistics later. Lines are appended
//! whole as each benchmark finishes (like `kernels.csv`), so an interrupted run keeps the
//! samples of every row it wrote; a torn last line is ignored when reading.
//!
//! Committed baselines (`results/baselines/<adapter slug>/`) are ordinary run folders
//! copied there, samples included; see [`baseline_dir`].

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{NaturalKey, SAMPLES_JSONL};
use crate::error::{Error, Result};
use crate::measure::TimingMethod;
use crate::results::{KernelRow, RunInfo};

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleLine {
    #[serde(flatten)]
    pub key: NaturalKey,
    /// How the samples were timed (device timestamps or wall clock).
    #[serde(default)]
    pub timing: Option<TimingMethod>,
    /// Per-iteration times in nanoseconds, in the order criterion took them. Only finite
    /// values are written.
    pub samples_ns: Vec<f64>,
}

impl SampleLine {
    pub fn new(row: &KernelRow, samples_ns: &[f64]) -> SampleLine {
        SampleLine {
            key: NaturalKey::of(row),
            timing: row.timing,
            samples_ns: samples_ns
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect(),
        }
    }
}

/// Append the samples of measured rows to `dir/samples.jsonl`: one line per row that has
/// at least one finite sample, in one write followed by a sync (the runner calls this right
/// after appending the same rows to `kernels.csv`).
pub fn append_samples(dir: &Path, rows_with_samples: &[(KernelRow, Vec<f64>)]) -> Result<()> {
    let lines: Vec<SampleLine> = rows_with_samples
        .iter()
        .map(|(row, s)| SampleLine::new(row, s))
        .filter(|l| !l.samples_ns.is_empty())
        .collect();
    append_sample_lines(&dir.join(SAMPLES_JSONL), &lines)
}

/// Append already-built lines to a `samples.jsonl` file.
pub fn append_sample_lines(path: &Path, lines: &[SampleLine]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for l in lines {
        text.push_str(&serde_json::to_string(l).expect("sample lines serialise"));
        text.push('\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    // A run killed mid-append left a torn last line, which reads as ignorable only while it
    // is last: cut it before appending after it (what it held is measured again). The last
    // byte says whether there is one; the file is read whole only then.
    let len = f.metadata().map_err(|e| Error::io("read", path, e))?.len();
    let mut last = [b'\n'];
    if len > 0 {
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| Error::io("read", path, e))?;
    }
    if last != [b'\n'] {
        let existing = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let whole = existing
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        f.set_len(whole as u64)
            .map_err(|e| Error::io("cut the torn last line of", path, e))?;
    }
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io("append to", path, e))?;
    f.sync_data().map_err(|e| Error::io("sync", path, e))
}

/// Read `samples.jsonl`. A later line for the same key replaces an earlier one (a resumed
/// run re-measures); an unterminated last line (a run killed mid-write) is ignored; any
/// other malformed line is an error naming its line and column.
pub fn read_samples(path: &Path) -> Result<Vec<SampleLine>> {
    let text = crate::results::read_text(path)?;
    let mut out: Vec<SampleLine> = Vec::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SampleLine>(line) {
            Ok(s) => {
                if let Some(old) = out.iter_mut().find(|o| o.key == s.key) {
                    *old = s;
                } else {
                    out.push(s);
                }
            }
            Err(_) if !complete && i + 1 == lines.len() => {}
            Err(e) => {
                return Err(Error::BadFile {
                    path: path.to_path_buf(),
                    line: i as u64 + 1,
                    column: (e.column() as u64).max(1),
                    what: format!("not a samples line: {e}"),
                    fix: "Each line is written by priceperf as one JSON object with the natural key and `samples_ns`; delete the broken line (compare then falls back to the intervals in kernels.csv)".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Where the committed baseline of a run's adapter lives: `root/<adapter slug>`, e.g.
/// `results/baselines/llvmpipe-llvm-15-0-6-256-bits-vulkan`.
pub fn baseline_dir(root: &Path, run: &RunInfo) -> PathBuf {
    root.join(run.adapter.slug())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;
    use crate::shape::DType;
    use std::fs;

    fn row(variant: &str) -> KernelRow {
        KernelRow {
            benchmark: "matmul/f32/m=8,n=8,k=8".into(),
            kernel: "matmul".into(),
            variant: variant.into(),
            dtype: DType::F32,
            shape: "m=8,n=8,k=8".into(),
            adapter: "llvmpipe".into(),
            backend: "vulkan".into(),
            driver: "Mesa".into(),
            timing: Some(TimingMethod::Device),
            samples: Some(3),
            median_ns: None,
            ci_low_ns: None,
            ci_high_ns: None,
            flops: 1024,
            bytes: 768,
            gflops: None,
            gbps: None,
            pct_of_peak: None,
            verified: true,
            max_rel_err: None,
            status: Status::Ok,
            chosen: false,
            note: String::new(),
            pct_of_measured_flops: None,
            pct_of_measured_bw: None,
        }
        .with_time(2.0, 1.0, 3.0)
    }

    #[test]
    fn samples_round_trip_and_skip_empty_rows() {
        let dir = tempfile::tempdir().unwrap();
        append_samples(
            dir.path(),
            &[
                (row("a"), vec![1.0, 2.0, f64::NAN, 3.0]),
                (row("b"), vec![]),
            ],
        )
        .unwrap();
        append_samples(dir.path(), &[(row("c"), vec![4.0])]).unwrap();
        let read = read_samples(&dir.path().join(SAMPLES_JSONL)).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].key.variant, "a");
        assert_eq!(read[0].samples_ns, [1.0, 2.0, 3.0], "NaN dropped");
        assert_eq!(read[0].timing, Some(TimingMethod::Device));
        assert_eq!(read[1].key.variant, "c");
    }

    #[test]
    fn a_torn_last_line_is_ignored_but_a_broken_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        append_samples(dir.path(), &[(row("a"), vec![1.0])]).unwrap();
        let path = dir.path().join(SAMPLES_JSONL);
        let good = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{good}{{\"benchmark\":\"mat")).unwrap();
        assert_eq!(read_samples(&path).unwrap().len(), 1);
        // A resumed run appends after it: the torn line is cut first, not left mid-file.
        append_samples(dir.path(), &[(row("b"), vec![2.0])]).unwrap();
        assert_eq!(read_samples(&path).unwrap().len(), 2);
        fs::write(&path, format!("{{oops\n{good}")).unwrap();
        let err = read_samples(&path).unwrap_err().to_string();
        assert!(err.contains("samples.jsonl:1:"), "{err}");
    }

    #[test]
    fn later_lines_replace_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        append_samples(dir.path(), &[(row("a"), vec![1.0])]).unwrap();
        append_samples(dir.path(), &[(row("a"), vec![9.0])]).unwrap();
        let read = read_samples(&dir.path().join(SAMPLES_JSONL)).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].samples_ns, [9.0]);
    }
}
