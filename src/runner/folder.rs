//! The result folder of a run: the lock that keeps two runs out of one folder, `run.json`
//! written and read back, and moving a finished folder aside.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::results::{self, RunInfo};

/// Removes the folder's lock file when the run ends, however it ends.
pub(super) struct FolderLock(PathBuf);

impl FolderLock {
    pub(super) fn take(dir: &Path) -> Result<FolderLock> {
        let path = dir.join(".lock");
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                Ok(FolderLock(path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pid = fs::read_to_string(&path).unwrap_or_default();
                let alive = !pid.trim().is_empty() && Path::new("/proc").join(pid.trim()).exists();
                if alive || !Path::new("/proc").exists() {
                    return Err(Error::bad_input(
                        format!(
                            "{} is being written by another run (process {})",
                            dir.display(),
                            pid.trim()
                        ),
                        format!(
                            "Wait for it to finish, or remove {} if that process is gone.",
                            path.display()
                        ),
                    ));
                }
                // The process that held it is gone: a crashed run. Take the lock over.
                fs::remove_file(&path).map_err(|e| Error::io("remove stale lock", &path, e))?;
                FolderLock::take(dir)
            }
            Err(e) => Err(Error::io("create", &path, e)),
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

pub(super) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Gpu(format!("serialising {}: {e}", path.display())))?;
    results::write_atomic(path, &text)
}

/// Read a result folder's `run.json`.
pub fn read_run_info(path: &Path) -> Result<RunInfo> {
    parse_run_info(path, &results::read_text(path)?)
}

/// Parse the text of a `run.json`; `path` is only used in error messages.
pub fn parse_run_info(path: &Path, text: &str) -> Result<RunInfo> {
    let info: RunInfo = serde_json::from_str(text).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        line: (e.line() as u64).max(1),
        column: (e.column() as u64).max(1),
        what: format!("not a priceperf run.json: {e}"),
        fix: "Point at a folder written by `priceperf run` or `cargo bench`".into(),
    })?;
    // A newer schema may mean columns this version reads wrongly, not just ones it ignores.
    if !(1..=results::SCHEMA_VERSION).contains(&info.schema_version) {
        let line = text
            .lines()
            .position(|l| l.contains("\"schema_version\""))
            .map_or(1, |i| i as u64 + 1);
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            line,
            column: 1,
            what: format!(
                "schema_version {} is not one this priceperf reads (1 to {})",
                info.schema_version,
                results::SCHEMA_VERSION
            ),
            fix: "Read it with the priceperf version that wrote it, or a newer one".into(),
        });
    }
    Ok(info)
}

/// Move a finished result folder aside to `results/runs/<its run id>` so a new run can use
/// its path without losing anything.
pub fn archive_folder(dir: &Path) -> Result<PathBuf> {
    let id = read_run_info(&dir.join("run.json"))
        .map(|i| i.run_id)
        .unwrap_or_else(|_| format!("archived-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    // The id comes from a file: keep it one plain folder name (no `/`, `..` or absolute path
    // that would move the folder somewhere else).
    let mut id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect();
    if id.is_empty() || id.starts_with('.') {
        id.insert(0, 'x');
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    let runs = parent.join("runs");
    fs::create_dir_all(&runs).map_err(|e| Error::io("create", &runs, e))?;
    let mut target = runs.join(&id);
    let mut n = 2;
    while target.exists() {
        target = runs.join(format!("{id}-{n}"));
        n += 1;
    }
    fs::rename(dir, &target).map_err(|e| Error::io("move aside", dir, e))?;
    eprintln!(
        "priceperf: moved the previous {} to {}",
        dir.display(),
        target.display()
    );
    Ok(target)
}
