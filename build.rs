//! Build script: a hash of every kernel source (the WGSL templates in kernels/ and the Rust
//! that generates and dispatches them in src/kernels/), so the tuning cache knows when a
//! cached choice was made with other kernels than these (`src/tuning.rs`); and the commit
//! the binary is built from, for `run.json`. Whole-line comments are left out of the hash:
//! a documentation edit changes no kernel, and would otherwise send every user's next run
//! back to searching every variant.

use std::path::Path;
use std::process::Command;

fn main() {
    git_commit();
    let mut files = Vec::new();
    for dir in ["kernels", "src/kernels"] {
        println!("cargo:rerun-if-changed={dir}");
        collect(Path::new(dir), &mut files);
    }
    files.sort();
    // FNV-1a, 64 bits: stable across Rust versions, unlike DefaultHasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        let text = std::fs::read(f).unwrap_or_default();
        let code = text
            .split(|&b| b == b'\n')
            .filter(|line| !line.trim_ascii_start().starts_with(b"//"))
            .flat_map(|line| line.iter().copied().chain([b'\n']));
        for b in f.to_string_lossy().bytes().chain(code) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=PRICEPERF_KERNELS_HASH={hash:016x}");
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// `PRICEPERF_GIT_COMMIT`: HEAD's short hash, with `+dirty` where the sources built differ
/// from it. Taken at build time, because a binary is often run elsewhere (a device machine,
/// a copied folder) where the working directory's git, if any, says nothing about it. Not
/// set outside a git checkout of this crate (a crate unpacked inside some other repository
/// must not take that repository's commit).
fn git_commit() {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let ours = |top: &str| {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        let canon = |p: &str| std::fs::canonicalize(p).ok();
        canon(top).is_some() && canon(top) == canon(&manifest)
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    if !git(&["rev-parse", "--show-toplevel"]).is_some_and(|t| ours(&t)) {
        return;
    }
    // Rerun after a commit, checkout, reset or amend, and when a built source changes (the
    // crate recompiles then anyway). Git appends to logs/HEAD on every move of HEAD, in a
    // linked worktree too, where the branch refs live in the common directory instead; the
    // refs are watched as well for repositories that keep no reflog.
    for p in ["src", "kernels", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let mut watched: Vec<String> = ["HEAD", "logs/HEAD"]
        .iter()
        .filter_map(|p| git(&["rev-parse", "--git-path", p]))
        .collect();
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        let common = Path::new(&common);
        for p in ["packed-refs", "refs/heads"] {
            watched.push(common.join(p).display().to_string());
        }
    }
    for p in watched.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={p}");
    }
    let sources = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "src",
        "kernels",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
    ];
    let dirty = git(&sources).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "+dirty" } else { "" };
    println!("cargo:rustc-env=PRICEPERF_GIT_COMMIT={head}{suffix}");
}
