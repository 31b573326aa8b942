//! `PRICEPERF_DUMP_WGSL=DIR`: the WGSL of every kernel a run builds, written to DIR, for
//! whoever works on the kernels. The files in `kernels/` are templates; what a device
//! compiles is that text filled in for one variant, shape, dtype and adapter (tile sizes,
//! unrolled loops, texture layouts, window sizes), and this is the only place to read it.
//!
//! One file per label and source, named `<label>-<hash>.wgsl`: the label says which kernel
//! and shape, and the hash (FNV-1a of the text, the same in every run) tells apart sources
//! that share a label, such as a kernel rendered for two adapters. Every build request
//! writes its file, also where the device reuses a pipeline built for another shape, so the
//! files are those of the variants the run built: with a cached tuning choice, only the
//! chosen ones (`--retune` or `--variant` build the rest). A file is written under a
//! temporary name no other thread or process uses and then renamed, so writers of the same
//! source (helper devices, runs sharing a directory) never leave a torn file. A directory
//! that cannot be written is named once in a warning and the run goes on: dumping is a
//! debugging aid, never a reason to stop a measurement. Kept out of `src/kernels/`, whose
//! text is the kernel version that tuning choices are cached under.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The directory `PRICEPERF_DUMP_WGSL` names, if it is set and not empty.
fn dir() -> Option<PathBuf> {
    std::env::var_os("PRICEPERF_DUMP_WGSL")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Write `source`, built as `label`, where `PRICEPERF_DUMP_WGSL` asks; nothing when unset.
pub(crate) fn source(label: &str, source: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(dir) = dir() else { return };
    if let Err(e) = write(&dir, label, source) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            crate::progress::notice(&format!(
                "priceperf: warning: PRICEPERF_DUMP_WGSL: could not write kernel sources to {} ({e}); the run goes on, with some or all of them missing there",
                dir.display()
            ));
        }
    }
}

/// Write `source` into `dir` (made if missing) as [`file_name`]; the path written. A file of
/// that name already there holds the same text (the name hashes it) and is left as it is.
fn write(dir: &Path, label: &str, source: &str) -> std::io::Result<PathBuf> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(label, source));
    if path.exists() {
        return Ok(path);
    }
    // Never another writer's: this process's id, its count of writes, and the clock's
    // nanoseconds (containers may all run as the same pid); create_new refuses a name in use.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}-{}-{nanos}.wgsl.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(source.as_bytes())
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // Another writer got there first (a rename onto a file held open fails on
            // Windows): its file holds the same text.
            if path.exists() {
                Ok(path)
            } else {
                Err(e)
            }
        }
    }
}

/// `<label>-<hash>.wgsl`, the label kept to characters every file system takes (letters,
/// digits, `.`, `_`, `-`, `=`, `,`; anything else becomes `_`).
fn file_name(label: &str, source: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{label}-{:016x}.wgsl", fnv1a(source.as_bytes()))
}

/// 64-bit FNV-1a: stable across runs and Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_label_readable_and_tell_sources_apart() {
        let a = file_name(
            "matmul tiled_64x64x16_t4x4 m=97,n=61,k=131 f32",
            "fn main() {}",
        );
        assert!(
            a.starts_with("matmul_tiled_64x64x16_t4x4_m=97,n=61,k=131_f32-")
                && a.ends_with(".wgsl"),
            "{a}"
        );
        // Path separators and other odd characters never reach the file system.
        let b = file_name("a/b\\c:d*e", "x");
        assert!(b.starts_with("a_b_c_d_e-"), "{b}");
        // The same label with another source gets another file; the same source the same.
        assert_ne!(file_name("k", "x"), file_name("k", "y"));
        assert_eq!(file_name("k", "x"), file_name("k", "x"));
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_source_is_written_once_whole_and_a_bad_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("wgsl");
        let path = write(&out, "peak fma f32", "fn main() {}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fn main() {}\n");
        // Again: the same file, nothing else left behind (no temporaries).
        assert_eq!(write(&out, "peak fma f32", "fn main() {}\n").unwrap(), path);
        let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert_eq!(files.len(), 1);
        // Threads writing the same and other sources at once: every file whole, and no
        // temporary left.
        std::thread::scope(|s| {
            for t in 0..8 {
                let out = &out;
                s.spawn(move || {
                    for i in 0..20 {
                        let text = format!("// {}\n{}", i % 4, "x".repeat(10_000 + t % 2));
                        let path = write(out, "k", &text).unwrap();
                        assert_eq!(std::fs::read_to_string(path).unwrap(), text);
                    }
                });
            }
        });
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1 + 8, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".wgsl")), "{names:?}");
        // A file where the directory should be.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        assert!(write(&blocked, "k", "x").is_err());
    }
}
