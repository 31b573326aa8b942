//! Build script: a hash of every kernel source (the WGSL templates in kernels/ and the Rust
//! that generates and dispatches them in src/kernels/), so the tuning cache knows when a
//! cached choice was made with other kernels than these (`src/tuning.rs`); and the commit
//! the binary is built from, for `run.json`.

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
        let bytes = std::fs::read(f).unwrap_or_default();
        for b in f.to_string_lossy().bytes().chain(bytes) {
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
/// set outside a git checkout.
fn git_commit() {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    // Rerun after a commit or checkout, and when a built source changes (the crate
    // recompiles then anyway).
    for p in ["src", "kernels", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        let mut watched = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(dir.join(r));
        }
        for p in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
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
