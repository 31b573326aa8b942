//! Interrupted runs lose nothing: a run killed with SIGKILL mid-way leaves a valid folder
//! that `--resume` completes without duplicate rows; a first SIGINT finishes the current
//! benchmark and writes everything. A timed-out kernel's wait is accounted where it
//! happened.

mod result_fixtures;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use priceperf::results::read_kernel_rows;

const ARGS: &[&str] = &[
    "run",
    "--suite",
    "quick",
    "--filter",
    "^matmul/f32/m=(256|97)",
    "--variant",
    "^(naive|texture_w8x8_t8x8)$",
    "--sample-size",
    "10",
    "--measurement-time",
    "0.3",
];

fn priceperf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_priceperf"));
    result_fixtures::isolated(&mut c);
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn has_adapter() -> bool {
    let ok = priceperf()
        .args(["devices"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: no adapter");
    }
    ok
}

/// Wait until the first benchmark's rows are on disk (or the child exits).
fn wait_for_rows(child: &mut Child, csv: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(300) {
        if let Ok(rows) = read_kernel_rows(csv) {
            if !rows.is_empty() {
                return true;
            }
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn killed_run_resumes_without_losing_or_duplicating_rows() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let csv = out.join("kernels.csv");
    let mut child = priceperf()
        .args(ARGS)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let saw_rows = wait_for_rows(&mut child, &csv);
    signal(&child, "-KILL");
    let _ = child.wait();
    assert!(saw_rows, "the first benchmark never finished");
    let before = read_kernel_rows(&csv).expect("a killed run leaves a readable kernels.csv");
    assert!(out.join(".lock").exists(), "SIGKILL leaves the lock behind");

    let resumed = priceperf()
        .args(ARGS)
        .arg("--resume")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = read_kernel_rows(&csv).unwrap();
    // Everything from before is still there, unchanged, and in front.
    assert_eq!(&after[..before.len()], &before[..]);
    let mut keys: Vec<(String, String)> = after
        .iter()
        .map(|r| (r.benchmark.clone(), r.variant.clone()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate rows after resume");
    let benchmarks: std::collections::BTreeSet<&str> =
        after.iter().map(|r| r.benchmark.as_str()).collect();
    assert_eq!(benchmarks.len(), 2, "{benchmarks:?}");
    assert!(
        !out.join(".lock").exists(),
        "the resumed run released the lock"
    );
    assert!(out.join("results.json").exists());
}

#[test]
fn first_interrupt_finishes_the_benchmark_and_writes() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let csv = out.join("kernels.csv");
    let mut child = priceperf()
        .args(ARGS)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Interrupt once the first benchmark has started.
    let mut log = Vec::new();
    for line in rx.iter() {
        let started = line.starts_with("[1/2]");
        log.push(line);
        if started {
            signal(&child, "-INT");
            break;
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(rx.try_iter());
    let log = log.join("\n");
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("finishing the current benchmark"), "{log}");
    assert!(log.contains("stopped after 1 of 2"), "{log}");
    // The benchmark in progress was finished and written, both variants; the run's files
    // are complete.
    let rows = read_kernel_rows(&csv).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(out.join("results.json").exists());
    let info = priceperf::runner::read_run_info(&out.join("run.json")).unwrap();
    // Finished, and marked as stopped early, so compare knows rows are missing.
    assert!(info.finished.is_some() && info.interrupted);
}

#[test]
fn a_second_run_into_a_locked_folder_is_refused() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    // A live process holds the lock: this test's own.
    std::fs::write(out.join(".lock"), std::process::id().to_string()).unwrap();
    let second = priceperf()
        .args(ARGS)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another run"));
    assert!(!out.join("kernels.csv").exists());
}

/// A verification run that times out is counted as verification in the run's time line,
/// not left to the "setup" remainder (a 2048³ search on lavapipe, whose naive kernel ran
/// into the 60 s timeout, reported 60 s of setup); one that times out while measuring, as
/// measuring. Where the adapter is fast enough that nothing times out there is nothing to
/// check.
#[test]
fn a_timed_out_verification_counts_as_verification() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let timeout = 0.3;
    let run = priceperf()
        .args(["run", "--kernel", "matmul", "--shape", "m=512,n=512,k=512"])
        .args(["--dtype", "f32", "--variant", "^naive$"])
        .args(["--timeout", &timeout.to_string(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let rows = read_kernel_rows(&out.join("kernels.csv")).unwrap();
    assert_eq!(rows.len(), 1, "{stderr}");
    if rows[0].status != priceperf::results::Status::Timeout {
        return;
    }
    let info = priceperf::runner::read_run_info(&out.join("run.json")).unwrap();
    let time = info.time.expect("time in run.json");
    // A host fast enough to verify within the timeout (naive 512³ in 0.27 s on a 2-core
    // Xeon) times out while measuring instead: then the wait is measuring's.
    let waited = if rows[0].verified {
        time.measure_search_s + time.measure_chosen_s
    } else {
        time.verify_s
    };
    assert!(
        waited >= timeout && time.setup_s < timeout,
        "{time:?} {stderr}"
    );
}
