//! `priceperf merge`: many machines into one set; duplicates dropped, conflicts reported,
//! run-id collisions kept apart; the result reads back like any folder.

mod result_fixtures;

use std::path::{Path, PathBuf};

use priceperf::dataset;
use priceperf::merge::{self, MERGED_JSON};
use result_fixtures::*;

fn rows(adapter_name: &str, seed: u64) -> Vec<priceperf::results::KernelRow> {
    ["naive", "tiled", "reg"]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            measured(
                128,
                v,
                adapter_name,
                &samples(1e5 * (i as f64 + 1.0), 0.02, 10, seed + i as u64),
            )
        })
        .collect()
}

fn write(
    dir: &Path,
    run_id: &str,
    host: &str,
    adapter_name: &str,
    rows: &[priceperf::results::KernelRow],
) {
    let kept: Vec<(usize, Vec<f64>)> = (0..rows.len())
        .map(|i| (i, vec![1.0, 2.0, 3.0 + i as f64]))
        .collect();
    write_run(dir, &info(run_id, host, adapter_name), rows, &kept);
}

#[test]
fn runs_from_many_machines_become_one_set() {
    let (_t, root) = tmp();
    write(
        &root.join("m1"),
        "r1",
        "host-a",
        LAVAPIPE,
        &rows(LAVAPIPE, 1),
    );
    write(
        &root.join("m2"),
        "r2",
        "host-b",
        "NVIDIA A10G",
        &rows("NVIDIA A10G", 2),
    );
    add_token_and_cost_tables(&root.join("m2"));
    let out = root.join("merged");
    let report = merge::merge(&[root.join("m1"), root.join("m2")], &out, false).unwrap();
    assert_eq!(report.runs.len(), 2);
    assert_eq!(report.duplicates, 0);
    assert!(report.conflicts.is_empty() && report.renamed.is_empty());
    assert!(out.join(MERGED_JSON).is_file());
    let runs = dataset::load(&out).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].kernels, rows(LAVAPIPE, 1));
    assert_eq!(runs[0].samples.len(), 3, "samples travel with their run");
    assert!(runs[1].tokens.is_some() && runs[1].costs.is_some());
    assert!(runs[0].tokens.is_none());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("runs/r2/results.json")).unwrap())
            .unwrap();
    assert_eq!(results["run"]["run_id"], "r2");
    assert_eq!(results["kernels"].as_array().unwrap().len(), 3);

    // Merging a merge with one more machine adds it, and re-merging is idempotent.
    write(
        &root.join("m3"),
        "r3",
        "host-c",
        "Apple M2",
        &rows("Apple M2", 3),
    );
    let again = root.join("merged2");
    let report = merge::merge(
        &[out.clone(), root.join("m3"), root.join("m1")],
        &again,
        false,
    )
    .unwrap();
    assert_eq!(report.runs.len(), 3);
    assert_eq!(
        report.duplicates, 6,
        "3 rows and 3 sample lines of m1 again"
    );
    assert!(report.conflicts.is_empty());
}

#[test]
fn copies_of_a_run_are_unioned_and_conflicts_reported() {
    let (_t, root) = tmp();
    let all = rows(LAVAPIPE, 1);
    // An early copy of a resumed run (two rows) and the final one (three rows).
    write(&root.join("early"), "r1", "host-a", LAVAPIPE, &all[..2]);
    write(&root.join("final"), "r1", "host-a", LAVAPIPE, &all);
    // A copy whose `tiled` row was edited.
    let mut edited = all.clone();
    edited[1] = edited[1].clone().with_time(9e9, 8e9, 1e10);
    write(&root.join("edited"), "r1", "host-a", LAVAPIPE, &edited);

    let inputs: Vec<PathBuf> = ["early", "final", "edited"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let out = root.join("out");
    let report = merge::merge(&inputs, &out, false).unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].kernel_rows, 3);
    assert_eq!(report.runs[0].sources.len(), 3);
    assert_eq!(report.conflicts.len(), 1, "{:#?}", report.conflicts);
    let c = &report.conflicts[0];
    assert_eq!(c.key.as_ref().unwrap().variant, "tiled");
    assert!(
        c.differs_in.contains(&"median_ns".to_string()),
        "{:?}",
        c.differs_in
    );
    assert!(
        c.kept.ends_with("early") && c.dropped.ends_with("edited"),
        "{c:?}"
    );
    let merged = dataset::load(&out).unwrap();
    assert_eq!(merged[0].kernels, all, "the first copy wins");
    assert!(report
        .summary(&out)
        .contains("conflict in run r1 kernels.csv row"));

    // --strict refuses and writes nothing; the binary exits 2.
    let strict_out = root.join("strict");
    let (code, _, err) = priceperf(&[
        "merge",
        path_str(&inputs[0]),
        path_str(&inputs[1]),
        path_str(&inputs[2]),
        "--out",
        path_str(&strict_out),
        "--strict",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("conflicting duplicates"), "{err}");
    assert!(!strict_out.exists());

    // Without --strict the binary reports the conflict and succeeds.
    let (code, _, err) = priceperf(&[
        "merge",
        path_str(&inputs[0]),
        path_str(&inputs[2]),
        "--out",
        path_str(&root.join("lenient")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("conflict in run r1"), "{err}");
}

#[test]
fn one_run_id_on_two_hosts_is_two_runs() {
    let (_t, root) = tmp();
    write(
        &root.join("a"),
        "20250101T000000Z-a10g",
        "node-1",
        "NVIDIA A10G",
        &rows("NVIDIA A10G", 1),
    );
    write(
        &root.join("b"),
        "20250101T000000Z-a10g",
        "node-2",
        "NVIDIA A10G",
        &rows("NVIDIA A10G", 5),
    );
    let out = root.join("out");
    let report = merge::merge(&[root.join("a"), root.join("b")], &out, false).unwrap();
    assert_eq!(report.runs.len(), 2);
    assert_eq!(report.renamed.len(), 1);
    assert_eq!(report.renamed[0].new_run_id, "20250101T000000Z-a10g-node-2");
    assert!(report.conflicts.is_empty());
    let runs = dataset::load(&out).unwrap();
    assert_eq!(runs[1].info.run_id, "20250101T000000Z-a10g-node-2");
}

/// Run ids that differ but make the same folder name (`r 1` and `r-1` both slug to
/// `r-1`; `R-1` is the same folder on a case-insensitive disk) went into one folder: the
/// later run.json replaced the earlier and the rows of both landed in one kernels.csv.
#[test]
fn run_ids_with_the_same_folder_name_are_kept_apart() {
    let (_t, root) = tmp();
    write(&root.join("a"), "r 1", "h", LAVAPIPE, &rows(LAVAPIPE, 1));
    write(&root.join("b"), "r-1", "h", GPU, &rows(GPU, 5));
    write(&root.join("c"), "R-1", "h", GPU, &rows(GPU, 9));
    let out = root.join("out");
    let inputs = [root.join("a"), root.join("b"), root.join("c")];
    let report = merge::merge(&inputs, &out, false).unwrap();
    let ids: Vec<&str> = report.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["r 1", "r-1-h", "R-1-h-2"]);
    assert_eq!(report.renamed.len(), 2);
    assert!(report
        .summary(&out)
        .contains("run id r-1 names the same folder as another run's id"));
    let runs = dataset::load(&out).unwrap();
    assert_eq!(runs.len(), 3);
    let mut read: Vec<(&str, usize)> = runs
        .iter()
        .map(|r| (r.info.run_id.as_str(), r.kernels.len()))
        .collect();
    read.sort();
    assert_eq!(
        read,
        [("R-1-h-2", 3), ("r 1", 3), ("r-1-h", 3)],
        "each its own rows"
    );
}

/// A single input whose kernels.csv holds a row twice: the first copy's rows were kept as
/// they were ("0 duplicate rows dropped") and compare then refused the merged folder.
/// They go through the same dedup as later copies: the exact copy is dropped, the
/// differing one reported as a conflict, the first kept.
#[test]
fn rows_repeated_within_one_input_are_deduplicated() {
    let (_t, root) = tmp();
    let mut rows = rows(LAVAPIPE, 1);
    rows.push(rows[0].clone());
    let mut differs = rows[1].clone();
    differs.median_ns = differs.median_ns.map(|m| m * 2.0);
    rows.push(differs);
    write(&root.join("a"), "r1", "h", LAVAPIPE, &rows);
    let out = root.join("out");
    let report = merge::merge(&[root.join("a")], &out, false).unwrap();
    assert_eq!(report.duplicates, 1, "{report:#?}");
    assert_eq!(report.conflicts.len(), 1, "{:#?}", report.conflicts);
    assert_eq!(report.conflicts[0].differs_in, ["median_ns"]);
    assert_eq!(report.runs[0].kernel_rows, 3);
    let merged = dataset::load(&out).unwrap();
    assert_eq!(merged[0].kernels, rows[..3], "the first copy of each row");
    let (code, _, err) = priceperf(&["compare", path_str(&out), path_str(&out)]);
    assert_eq!(code, 0, "compare reads the merged folder: {err}");
}

#[test]
fn merge_refuses_bad_outputs_and_inputs() {
    let (_t, root) = tmp();
    write(&root.join("a"), "r1", "h", LAVAPIPE, &rows(LAVAPIPE, 1));
    std::fs::create_dir_all(root.join("full")).unwrap();
    std::fs::write(root.join("full/keep.txt"), "x").unwrap();
    let (code, _, err) = priceperf(&[
        "merge",
        path_str(&root.join("a")),
        "--out",
        path_str(&root.join("full")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not empty"), "{err}");
    let (code, _, err) = priceperf(&[
        "merge",
        path_str(&root.join("missing")),
        "--out",
        path_str(&root.join("o")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, _) = priceperf(&["merge", "--out", path_str(&root.join("o"))]);
    assert_eq!(code, 2, "no inputs is a usage error");
    // An existing empty folder is fine.
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let (code, _, err) = priceperf(&[
        "merge",
        path_str(&root.join("a")),
        "--out",
        path_str(&root.join("empty")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(root.join("empty/runs/r1/kernels.csv").is_file());
}

/// A run id that two hosts share in the renamed-copy test.
const COPIED_RUN_ID: &str = "20250101T000000Z-a10g";

/// Run COPIED_RUN_ID of three variants on `host`.
fn write_copied(dir: &Path, host: &str, seed: u64) {
    let rows = rows(GPU, seed);
    let kept: Vec<(usize, Vec<f64>)> = (0..rows.len())
        .map(|i| (i, vec![1.0, 2.0, 3.0 + i as f64]))
        .collect();
    write_run(dir, &info(COPIED_RUN_ID, host, GPU), &rows, &kept);
}

/// A further copy of a run that merge renamed is still a copy of it, also when an earlier
/// merge holds the run under its new id.
#[test]
fn another_copy_of_a_renamed_run_is_a_duplicate() {
    let (_t, root) = tmp();
    write_copied(&root.join("a"), "node-1", 1);
    write_copied(&root.join("b"), "node-2", 5);
    write_copied(&root.join("b-copy"), "node-2", 5);

    let out = root.join("out");
    let inputs = [root.join("a"), root.join("b"), root.join("b-copy")];
    let report = merge::merge(&inputs, &out, false).unwrap();
    assert_eq!(report.runs.len(), 2, "{:#?}", report.runs);
    assert_eq!(report.duplicates, 6, "3 rows and 3 sample lines of b again");
    assert!(report.conflicts.is_empty(), "{:#?}", report.conflicts);
    assert_eq!(report.renamed.len(), 1);
    let renamed = format!("{COPIED_RUN_ID}-node-2");
    assert_eq!(report.runs[1].run_id, renamed);
    assert_eq!(report.runs[1].sources.len(), 2);
    assert_eq!(dataset::load(&out).unwrap().len(), 2);

    // An earlier merge holds the run under its new id; a raw copy is still the same run.
    let again = root.join("again");
    let report = merge::merge(&[out.clone(), root.join("b-copy")], &again, false).unwrap();
    assert_eq!(report.runs.len(), 2, "{:#?}", report.runs);
    assert_eq!(report.duplicates, 6);
    assert!(report.renamed.is_empty() && report.conflicts.is_empty());
    assert_eq!(report.runs[1].run_id, renamed);
}

#[test]
fn the_finished_copy_of_a_resumed_run_gives_the_run_info() {
    // A copy taken when the run was stopped (Ctrl-C), then one after `--resume` finished it:
    // the merged run is finished, not interrupted, whichever copy comes first, so compare
    // does not refuse it as incomplete forever.
    let (_t, root) = tmp();
    let all = rows(LAVAPIPE, 1);
    let mut stopped = info("r1", "host-a", LAVAPIPE);
    stopped.interrupted = true;
    stopped.finished = None;
    write_run(&root.join("early"), &stopped, &all[..2], &[]);
    std::fs::write(
        root.join("early/tokens.csv"),
        "model,phase,tokens_per_s\nm,decode,1\n",
    )
    .unwrap();
    write(&root.join("final"), "r1", "host-a", LAVAPIPE, &all);
    std::fs::write(
        root.join("final/tokens.csv"),
        "model,phase,tokens_per_s\nm,decode,2\n",
    )
    .unwrap();
    let out = root.join("out");
    let inputs = [root.join("early"), root.join("final")];
    let report = merge::merge(&inputs, &out, false).unwrap();
    assert!(report.conflicts.is_empty(), "{:#?}", report.conflicts);
    let merged = dataset::load(&out).unwrap();
    assert_eq!(merged.len(), 1);
    let info = &merged[0].info;
    assert!(info.finished.is_some() && !info.interrupted, "{info:?}");
    assert_eq!(merged[0].kernels.len(), 3);
    let tokens = std::fs::read_to_string(merged[0].dir.join("tokens.csv")).unwrap();
    assert!(tokens.contains("m,decode,2"), "{tokens}");
}
