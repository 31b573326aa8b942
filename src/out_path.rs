//! Where `export` and `report` may write: never onto the result folders they read, and
//! never into another result folder.
//!
//! A run folder is the only copy of a measurement. `--out` naming one of its files (or, for
//! the multi-file formats, the folder itself) replaced `kernels.csv`, `run.json` or
//! `costs.csv` with a differently shaped file and exited 0, leaving a folder nothing could
//! read. Paths are compared canonicalised, so `./e1/../e1/kernels.csv`, a symlink to the
//! folder, or a file that does not exist yet (resolved through its nearest existing
//! ancestor) are all caught.

use std::path::{Component, Path, PathBuf};

use crate::dataset::RUN_JSON;
use crate::error::{Error, Result};

/// What an `--out` names.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One file.
    File(&'a Path),
    /// A folder that receives several files.
    Folder(&'a Path),
}

/// Refuse `out` when it is, or would write, a file inside one of `inputs` (the run folders
/// being read), or when it writes into a folder that holds a `run.json` (a result folder,
/// read or not).
pub fn refuse_input_overlap<'a>(
    out: Target,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    let (given, folder) = match out {
        Target::File(p) => (p, p.parent().filter(|p| !p.as_os_str().is_empty())),
        Target::Folder(p) => (p, Some(p)),
    };
    let resolved = resolve(given);
    for input in inputs {
        let Ok(run_dir) = input.canonicalize() else {
            continue;
        };
        if resolved.starts_with(&run_dir) {
            return Err(Error::bad_input(
                format!(
                    "--out {} is inside the result folder {}, which this command reads: writing there would replace or mix with the run's own files",
                    given.display(),
                    input.display()
                ),
                "Nothing was written. Pick an --out outside every input folder, e.g. --out exports/.",
            ));
        }
    }
    let folder = folder.unwrap_or(Path::new("."));
    if folder.join(RUN_JSON).is_file() {
        return Err(Error::bad_input(
            format!(
                "--out {} writes into {}, which is a result folder (it holds {RUN_JSON}); its files would be replaced",
                given.display(),
                folder.display()
            ),
            "Nothing was written. Pick an --out outside every result folder, e.g. --out exports/.",
        ));
    }
    Ok(())
}

/// `path` made absolute with symlinks resolved as far as it exists; the components that do
/// not exist yet are appended with `.` and `..` applied by hand (they cannot be symlinks).
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for c in rest.iter().rev() {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    c => out.push(c),
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
            }
            // Nothing of it exists, not even its root: it cannot be inside an input.
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_folder(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(RUN_JSON), "{}").unwrap();
        std::fs::write(dir.join("kernels.csv"), "benchmark\n").unwrap();
    }

    #[test]
    fn files_and_folders_inside_an_input_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("e1");
        run_folder(&run);
        fn refused_by(target: Target, run: &Path) -> bool {
            refuse_input_overlap(target, [run]).is_err()
        }
        let refused = |target: Target| refused_by(target, &run);
        assert!(refused(Target::File(&run.join("kernels.csv"))));
        assert!(refused(Target::File(&run.join("run.json"))));
        assert!(refused(Target::File(&run.join("new.json"))), "a new file");
        assert!(refused(Target::File(&run.join("sub/deeper/x.json"))));
        assert!(refused(Target::File(&t.path().join("x/../e1/./costs.csv"))));
        assert!(refused(Target::Folder(&run)));
        assert!(refused(Target::Folder(&run.join("sheets"))));
        assert!(!refused(Target::File(&t.path().join("e1.csv"))));
        assert!(!refused(Target::File(&t.path().join("out/e1/k.csv"))));
        assert!(!refused(Target::Folder(&t.path().join("sheets"))));
    }

    #[test]
    fn other_result_folders_are_refused_too() {
        let t = tempfile::tempdir().unwrap();
        let (read, other) = (t.path().join("a"), t.path().join("b"));
        run_folder(&read);
        run_folder(&other);
        let inputs = [read.as_path()];
        assert!(refuse_input_overlap(Target::Folder(&other), inputs).is_err());
        assert!(refuse_input_overlap(Target::File(&other.join("run.json")), inputs).is_err());
        // A folder of runs is not itself a result folder.
        assert!(refuse_input_overlap(Target::File(&t.path().join("all.json")), inputs).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_to_an_input_are_seen_through() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("e1");
        run_folder(&run);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&run, &link).unwrap();
        let err = refuse_input_overlap(Target::File(&link.join("k.csv")), [run.as_path()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("inside the result folder") && err.contains("e1"),
            "{err}"
        );
    }
}
