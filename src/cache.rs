//! What priceperf keeps between runs on one machine: measured peaks and tuning choices, one
//! JSON file each in the cache folder, keyed by adapter and driver (and, for a CPU adapter,
//! processor and threads) so another adapter, machine or driver update never reuses them.
//!
//! The folder is `$PRICEPERF_CACHE_DIR`, else `$XDG_CACHE_HOME/priceperf`, else
//! `~/.cache/priceperf`. Writes are atomic. A cache file that cannot be read or parsed is
//! ignored with a warning and rewritten: the cache only saves time, it never decides a
//! result.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use crate::error::Result;
use crate::gpu::AdapterSummary;

/// The cache folder (not created until something is written).
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PRICEPERF_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("priceperf");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("priceperf"),
        None => std::env::temp_dir().join("priceperf-cache"),
    }
}

/// The identity cached entries are keyed by: the adapter and its driver, exactly, and for a
/// CPU adapter also the processor and the threads it runs on. A GPU's name says which chip
/// it is; llvmpipe's is the same on every machine, so without them a cache carried to
/// another machine (a copied home folder, a CI cache, a container image) or a run with
/// another `LP_NUM_THREADS` would reuse peaks and tuning choices measured elsewhere.
pub fn adapter_key(a: &AdapterSummary) -> String {
    let key = format!(
        "{} | {} | {} | {}",
        a.name, a.backend, a.driver, a.driver_info
    );
    if a.is_cpu() {
        with_host(
            key,
            crate::gpu::host_cpu_model().as_deref(),
            crate::gpu::cpu_adapter_threads(),
        )
    } else {
        key
    }
}

/// `key` with the host's processor model and thread count.
fn with_host(key: String, cpu_model: Option<&str>, threads: usize) -> String {
    format!(
        "{key} | {} | {threads} thread{}",
        cpu_model.unwrap_or("unknown processor"),
        if threads == 1 { "" } else { "s" }
    )
}

/// Read a cache file's entries; a missing file is empty, an unreadable one is empty with a
/// warning on stderr.
pub fn load<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            crate::progress::notice(&format!(
                "priceperf: warning: ignoring the cache file {} ({e}); it will be rewritten",
                path.display()
            ));
            return Vec::new();
        }
    };
    match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            crate::progress::notice(&format!(
                "priceperf: warning: ignoring the cache file {} (not valid: {e}); it will be rewritten",
                path.display()
            ));
            Vec::new()
        }
    }
}

/// Write a cache file's entries atomically, creating the folder.
pub fn store<T: Serialize>(path: &Path, entries: &[T]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| crate::error::Error::io("create", parent, e))?;
    }
    let text = serde_json::to_vec_pretty(entries)
        .map_err(|e| crate::error::Error::Gpu(format!("serialising {}: {e}", path.display())))?;
    crate::results::write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Entry {
        key: String,
        value: f64,
    }

    #[test]
    fn cpu_adapters_are_keyed_by_processor_and_threads() {
        let gpu = crate::suite::tests::adapter(false);
        assert_eq!(
            adapter_key(&gpu),
            format!(
                "{} | {} | {} | {}",
                gpu.name, gpu.backend, gpu.driver, gpu.driver_info
            ),
            "a GPU's key stays as it was, so its caches stay valid"
        );
        let cpu = crate::suite::tests::adapter(true);
        let base = format!(
            "{} | {} | {} | {}",
            cpu.name, cpu.backend, cpu.driver, cpu.driver_info
        );
        assert_eq!(
            adapter_key(&cpu),
            with_host(
                base.clone(),
                crate::gpu::host_cpu_model().as_deref(),
                crate::gpu::cpu_adapter_threads()
            )
        );
        let two = with_host(base.clone(), Some("AMD EPYC 7B13"), 2);
        assert_ne!(two, with_host(base.clone(), Some("AMD EPYC 7B13"), 1));
        assert_ne!(two, with_host(base.clone(), Some("Intel Xeon 8375C"), 2));
        assert_ne!(two, with_host(base.clone(), None, 2));
        assert!(with_host(base, None, 1).ends_with("| unknown processor | 1 thread"));
    }

    #[test]
    fn entries_round_trip_and_bad_files_read_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub").join("c.json");
        assert!(load::<Entry>(&path).is_empty());
        let entries = vec![Entry {
            key: "a".into(),
            value: 1.5,
        }];
        store(&path, &entries).unwrap();
        assert_eq!(load::<Entry>(&path), entries);
        std::fs::write(&path, "{ not json").unwrap();
        assert!(load::<Entry>(&path).is_empty());
    }
}
