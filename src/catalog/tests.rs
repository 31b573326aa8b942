use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;

use super::*;
use crate::error::Error;

const INST_HEADER: &str = "provider,instance,accelerator,accelerator_count,accelerator_memory_gb,vcpus,host_cpu,region,usd_per_hour_on_demand,usd_per_hour_spot,as_of,source\n";
const GOOD_INST: &str =
    "AWS,p5.48xlarge,H100 SXM,8,80,192,,us-east-1,55.04,20.9934,2026-01-21,test\n";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn parse_instances(text: &str) -> Result<Catalog> {
    Catalog::from_sources(
        Some(Source {
            path: Path::new("user/instances.csv"),
            bytes: text.as_bytes(),
        }),
        None,
        true,
    )
}

fn parse_accelerators(text: &str) -> Result<Catalog> {
    // Instances replaced by an empty-bodied file so only the accelerators are under test.
    Catalog::from_sources(
        Some(Source {
            path: Path::new("user/instances.csv"),
            bytes: INST_HEADER.as_bytes(),
        }),
        Some(Source {
            path: Path::new("user/accelerators.csv"),
            bytes: text.as_bytes(),
        }),
        true,
    )
}

/// Asserts a BadFile error at (line, column) whose message contains `needle`.
fn assert_bad_file(r: Result<Catalog>, line: u64, column: u64, needle: &str) {
    match r {
        Err(Error::BadFile {
            path,
            line: l,
            column: c,
            what,
            fix,
        }) => {
            let msg = format!("{what}. {fix}");
            assert!(
                path.to_string_lossy().starts_with("user/"),
                "{}",
                path.display()
            );
            assert_eq!((l, c), (line, column), "wrong place for `{needle}`: {msg}");
            assert!(msg.contains(needle), "`{needle}` not in: {msg}");
            assert!(!fix.is_empty());
        }
        Err(other) => panic!("expected BadFile for `{needle}`, got {other}"),
        Ok(_) => panic!("expected BadFile for `{needle}`, got Ok"),
    }
}

#[test]
fn defaults_load_and_are_consistent() {
    let c = Catalog::load_default().unwrap();
    assert!(c.instances().len() >= 70, "{}", c.instances().len());
    assert!(c.accelerators().len() >= 27);
    for i in c.instances() {
        assert!(
            c.find_accelerator(&i.accelerator).is_some(),
            "{}",
            i.accelerator
        );
        for p in [i.usd_per_hour_on_demand, i.usd_per_hour_spot]
            .into_iter()
            .flatten()
        {
            assert!(p.is_finite() && p > 0.0);
        }
    }
    // Every provider the research covers is present.
    for p in [
        "AWS",
        "GCP",
        "Azure",
        "Lambda",
        "RunPod",
        "CoreWeave",
        "Nebius",
        "Vast.ai",
    ] {
        assert!(c.instances().iter().any(|i| i.provider == p), "{p}");
    }
    let unreachable: Vec<&str> = c
        .unreachable_accelerators()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(unreachable, ["Trainium1", "Trainium2", "Inferentia2"]);
}

#[test]
fn p5_after_the_2025_price_cut() {
    let c = Catalog::load_default().unwrap();
    let p5 = c.offerings_for_instance("P5.48XLARGE").unwrap();
    let od = p5.iter().find(|o| o.tier == Tier::OnDemand).unwrap();
    assert_eq!(od.usd_per_hour, 55.04);
    assert_eq!(od.accelerators_per_instance, 8);
    assert!((od.usd_per_accelerator_hour - 6.88).abs() < 1e-12);
    assert_eq!(od.as_of, Some(date("2026-01-21")));
    let spot = p5.iter().find(|o| o.tier == Tier::Spot).unwrap();
    assert!((spot.usd_per_accelerator_hour - 20.9934 / 8.0).abs() < 1e-12);
    // p5en: on-demand and spot from the newer dstack fact.
    let p5en = c.offerings_for_instance("p5en.48xlarge").unwrap();
    assert!(p5en
        .iter()
        .any(|o| o.tier == Tier::Spot && o.usd_per_hour == 27.1988));
    // p5e has no public price: listed, but no offering.
    let e = c.offerings_for_instance("p5e.48xlarge").unwrap_err();
    assert!(e.to_string().contains("no on-demand or spot price"), "{e}");
}

#[test]
fn offerings_for_an_accelerator_are_cheapest_first() {
    let c = Catalog::load_default().unwrap();
    let offers = c.offerings_for("h100 sxm");
    assert!(offers.len() >= 10);
    assert!(offers
        .windows(2)
        .all(|w| w[0].usd_per_accelerator_hour <= w[1].usd_per_accelerator_hour));
    assert!(offers.iter().all(|o| o.accelerator == "H100 SXM"));
    assert!(offers
        .iter()
        .any(|o| o.provider == "GCP" && o.instance == "a3-highgpu-8g"));
    assert!(c.offerings_for("no such chip").is_empty());
}

#[test]
fn adapter_names_match_the_right_accelerator() {
    let c = Catalog::load_default().unwrap();
    let m = |name: &str, cpu: bool| c.match_adapter(name, cpu).map(|a| a.name.as_str());
    assert_eq!(m("NVIDIA H100 80GB HBM3", false), Some("H100 SXM"));
    assert_eq!(m("NVIDIA H100 PCIe", false), Some("H100 PCIe"));
    assert_eq!(m("NVIDIA A10G", false), Some("A10G"));
    assert_eq!(m("NVIDIA A10", false), Some("A10"));
    assert_eq!(m("NVIDIA A100-SXM4-40GB", false), Some("A100 SXM4 40GB"));
    assert_eq!(m("Tesla T4", false), Some("T4"));
    assert_eq!(m("NVIDIA GeForce RTX 4090", false), Some("RTX 4090"));
    assert_eq!(m("AMD Instinct MI300X VF", false), Some("MI300X"));
    // An MI250X adapter is one of the board's two GCDs: its row holds per-GCD figures, half
    // the board's, or its % of peak, fit and projections would be off by 2x.
    assert_eq!(m("AMD Instinct MI250X", false), Some("MI250X"));
    let mi250x = c.accelerator("MI250X").unwrap();
    assert_eq!(
        (mi250x.memory_gb, mi250x.memory_bandwidth_gbs),
        (Some(64.0), Some(1640.0))
    );
    assert_eq!(
        m("Intel(R) Arc(tm) A770 Graphics (DG2)", false),
        Some("Arc A770")
    );
    assert_eq!(m("Apple M1", false), Some("Apple M1"));
    // Unknown variants stay unknown rather than borrowing the base chip's specs.
    assert_eq!(m("Apple M1 Max", false), None);
    assert_eq!(m("AMD Radeon RX 7900 XTX (RADV NAVI31)", false), None);
    // A listed name followed by more words is another board (the laptop 4090 has 16 GB at
    // 576 GB/s, the H200 NVL a lower power cap, the 4090 D fewer cores): the whole name must
    // match, or it would be priced and projected as the base chip.
    assert_eq!(m("NVIDIA GeForce RTX 4090 Laptop GPU", false), None);
    assert_eq!(m("NVIDIA GeForce RTX 4090 D", false), None);
    assert_eq!(m("NVIDIA H200 NVL", false), None);
    assert_eq!(m("NVIDIA GeForce RTX 3090 Ti", false), None);
    assert_eq!(m("Tesla V100-SXM2-16GB-LS", false), None);
    // Names as drivers report them (NVML, Vulkan deviceName, rocminfo, Mesa with its suffix).
    assert_eq!(m("NVIDIA H200", false), Some("H200"));
    assert_eq!(m("NVIDIA H100 NVL", false), Some("H100 NVL"));
    assert_eq!(m("NVIDIA A100 80GB PCIe", false), Some("A100 PCIe 80GB"));
    assert_eq!(m("AMD Instinct MI300X", false), Some("MI300X"));
    assert_eq!(
        m("AMD Instinct MI300X (RADV GFX942)", false),
        Some("MI300X")
    );
    assert_eq!(m("Intel(R) Arc(TM) A770 Graphics", false), Some("Arc A770"));
    assert_eq!(m("Microsoft Basic Render Driver", false), Some("CPU"));
    assert_eq!(m("SwiftShader Device (Subzero)", false), Some("CPU"));
    // CPU adapters: lavapipe by name, and any CPU-type adapter falls back to the CPU row.
    assert_eq!(m("llvmpipe (LLVM 15.0.6, 256 bits)", true), Some("CPU"));
    assert_eq!(m("llvmpipe (LLVM 15.0.6, 256 bits)", false), Some("CPU"));
    assert_eq!(m("Some Future Software Rasterizer", true), Some("CPU"));
    // A CPU adapter never matches a GPU row.
    assert_eq!(m("NVIDIA H100 80GB HBM3", true), Some("CPU"));
    let h100 = c.accelerator("H100 SXM").unwrap();
    assert!(h100.matches_adapter("nvidia h100 80gb hbm3"));
    assert!(!h100.matches_adapter("NVIDIA H100 PCIe"));
    assert_eq!(
        normalize_adapter_name("Intel(R) Arc(TM)  A770 Graphics (DG2)"),
        "intel arc a770 graphics"
    );
}

#[test]
fn cpu_offerings_by_vcpu_count() {
    let c = Catalog::load_default().unwrap();
    // Exactly listed: c7a.2xlarge has 8 vCPU.
    let eight = c.cpu_offerings(8);
    let c7a = eight.iter().find(|o| o.instance == "c7a.2xlarge").unwrap();
    assert_eq!(
        (
            c7a.usd_per_hour,
            c7a.accelerators_per_instance,
            c7a.note.as_deref()
        ),
        (0.41056, 1, None)
    );
    // c7g lists 2 and 4 vCPU: 8 vCPU is 2x c7g.xlarge at 0.145/h.
    let c7g = eight
        .iter()
        .find(|o| o.instance == "2x c7g.xlarge")
        .unwrap();
    assert!((c7g.usd_per_hour - 0.29).abs() < 1e-12);
    assert!(c7g.note.as_deref().unwrap().contains("per-vCPU"));
    // One row per family and tier: no c7a.large x4 next to c7a.2xlarge.
    assert!(!eight.iter().any(|o| o.instance.contains("c7a.large")));
    assert!(eight
        .windows(2)
        .all(|w| w[0].usd_per_accelerator_hour <= w[1].usd_per_accelerator_hour));
    // Spot rows appear where the catalog has spot prices (GCP, Azure).
    assert!(eight
        .iter()
        .any(|o| o.tier == Tier::Spot && o.provider == "GCP"));
    // 3 vCPU is not a multiple of any size: priced per vCPU from the closest size below.
    let three = c.cpu_offerings(3);
    let c7a3 = three
        .iter()
        .find(|o| o.instance.starts_with("c7a.large"))
        .unwrap();
    assert_eq!(c7a3.instance, "c7a.large (scaled to 3 vCPU)");
    assert!((c7a3.usd_per_hour - 0.10264 / 2.0 * 3.0).abs() < 1e-12);
    assert!(c.cpu_offerings(0).is_empty());
    // Every CPU instance is one accelerator.
    assert!(c
        .offerings_for("CPU")
        .iter()
        .all(|o| o.accelerators_per_instance == 1));
}

#[test]
fn instance_families() {
    assert_eq!(instance_family("c7a.2xlarge"), "c7a");
    assert_eq!(instance_family("c3-standard-4"), "c3-standard");
    assert_eq!(instance_family("Standard_D2as_v5"), "standard_d#as_v5");
    assert_eq!(instance_family("Standard_D4as_v5"), "standard_d#as_v5");
    assert_eq!(instance_family("Standard_F2s_v2"), "standard_f#s_v2");
}

#[test]
fn unknown_names_get_suggestions() {
    let c = Catalog::load_default().unwrap();
    let e = c.offerings_for_instance("p5.48xlarg").unwrap_err();
    assert!(e.to_string().contains("Did you mean `p5.48xlarge`?"), "{e}");
    assert_eq!(e.exit_code(), crate::error::EXIT_BAD_INPUT);
    let e = c.accelerator("H100 SMX").unwrap_err();
    assert!(e.to_string().contains("Did you mean `H100 SXM`?"), "{e}");
    let e = c.prices(None, Some("Lamda")).unwrap_err();
    assert!(e.to_string().contains("Did you mean `Lambda`?"), "{e}");
    assert_eq!(c.accelerator("h100-sxm").unwrap().name, "H100 SXM");
}

#[test]
fn prices_listing() {
    let c = Catalog::load_default().unwrap();
    let rows = c.prices(Some("H100 SXM"), None).unwrap();
    assert!(rows.iter().all(|r| r.accelerator == "H100 SXM"));
    let od: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.usd_per_accelerator_hour_on_demand)
        .collect();
    assert!(od.windows(2).all(|w| w[0] <= w[1]));
    let p5 = rows.iter().find(|r| r.instance == "p5.48xlarge").unwrap();
    assert_eq!(p5.usd_per_accelerator_hour_on_demand, Some(6.88));
    assert_eq!(p5.as_of.as_deref(), Some("2026-01-21"));
    let aws = c.prices(None, Some("aws")).unwrap();
    assert!(!aws.is_empty() && aws.iter().all(|r| r.provider == "AWS"));
    // Missing prices stay missing (p5e), never 0.
    let all = c.prices(None, None).unwrap();
    let p5e = all.iter().find(|r| r.instance == "p5e.48xlarge").unwrap();
    assert_eq!(
        (p5e.usd_per_hour_on_demand, p5e.usd_per_hour_spot),
        (None, None)
    );
    assert_eq!(all.len(), c.instances().len());
}

#[test]
fn staleness() {
    let today = date("2026-11-26");
    assert!(stale(Some(date("2026-01-21")), today, 180));
    assert!(!stale(Some(date("2026-01-21")), today, 365));
    assert!(!stale(Some(date("2026-05-30")), today, 180)); // exactly 180 days
    assert!(stale(Some(date("2026-05-29")), today, 180));
    assert!(stale(None, today, 10_000), "undated is always stale");
    assert!(
        !stale(Some(date("2027-01-01")), today, 0),
        "future dates are not stale"
    );
    let c = Catalog::load_default().unwrap();
    // On-demand prices: p5's spot price is undated, so stale.
    let stale_here = |instance: &str| {
        c.offerings_for_instance(instance)
            .unwrap()
            .iter()
            .any(|o| o.tier == Tier::OnDemand && o.is_stale(today, 365))
    };
    assert!(stale_here("Standard_NC4as_T4_v3")); // undated
    assert!(!stale_here("p5.48xlarge"));
    let o = Offering::custom("H100 SXM", 2.0, 1).unwrap();
    assert!(
        !o.is_stale(today, 1),
        "custom prices are not catalog prices"
    );
}

#[test]
fn malformed_instance_files_say_where_and_what() {
    let row = |cells: &str| format!("{INST_HEADER}{GOOD_INST}{cells}\n");
    let cases: Vec<(String, u64, u64, &str)> = vec![
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,-1,,2026-01-21,s"), 3, 9, "not above 0"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,0,,2026-01-21,s"), 3, 9, "not above 0"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,NaN,,2026-01-21,s"), 3, 9, "not a finite number"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,1,inf,2026-01-21,s"), 3, 10, "not a finite number"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,$1.30,,2026-01-21,s"), 3, 9, "not a number"),
        (row("AWS,x1,H100 SXM,0,80,192,,us-east-1,1,,2026-01-21,s"), 3, 4, "below 1"),
        (row("AWS,x1,H100 SXM,2.5,80,192,,us-east-1,1,,2026-01-21,s"), 3, 4, "not a whole number"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,1,,2026-13-01,s"), 3, 11, "not a date"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,1,,Jan 2026,s"), 3, 11, "YYYY-MM-DD"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,1,,2026-1-5,s"), 3, 11, "not a date"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,1,,2026-01-21,"), 3, 12, "`source` is empty"),
        (row("AWS,x1,H100 SMX,8,80,192,,us-east-1,1,,2026-01-21,s"), 3, 3, "Did you mean `H100 SXM`?"),
        (row("AWS,x1,H100 SXM,8,80,192,,us-east-1,1,,2026-01-21"), 3, 12, "has 11 cells but the header has 12"),
        (row("aws,P5.48XLARGE,H100 SXM,8,80,192,,US-EAST-1,1,,2026-01-21,s"), 3, 2, "listed twice (first on line 2)"),
        (row("AWS,c9.large,CPU,1,,,,us-east-1,1,,2026-01-21,s"), 3, 6, "no vCPU count"),
        (
            format!("{}price_usd\n", INST_HEADER.trim_end().to_owned() + ","),
            1,
            13,
            "unknown column `price_usd`",
        ),
        (
            "provider,instance,accelerator,accelerator_count,region,usd_per_hour_on_demand,usd_per_hour_spot,source\n".into(),
            1,
            9,
            "no `as_of` column",
        ),
        (
            "provider,instance,accelerator,accelerator_count,region,usd_per_hour_on_demand,usd_per_hour_spot,as_of,source,Region\n".into(),
            1,
            10,
            "appears twice",
        ),
        (String::new(), 1, 1, "empty"),
    ];
    for (text, line, column, needle) in cases {
        assert_bad_file(parse_instances(&text), line, column, needle);
    }
    // A column name typo gets a suggestion.
    let typo = INST_HEADER.replace("as_of", "asof");
    match parse_instances(&typo) {
        Err(e) => assert!(e.to_string().contains("Did you mean `as_of`?"), "{e}"),
        Ok(_) => panic!("typo accepted"),
    }
    // Optional columns may be left out, comments and blank lines are skipped, quoting works.
    let minimal = "# my prices\nprovider,instance,accelerator,accelerator_count,region,usd_per_hour_on_demand,usd_per_hour_spot,as_of,source\n\n\
                   Acme,\"box, large\",H100 SXM,2,eu,10,,,\"contract, 2026\"\n";
    let c = parse_instances(minimal).unwrap();
    assert_eq!(c.instances().len(), 1);
    assert_eq!(c.instances()[0].instance, "box, large");
    assert_eq!(c.offerings_for("H100 SXM")[0].usd_per_accelerator_hour, 5.0);
}

#[test]
fn malformed_accelerator_files_say_where_and_what() {
    let header = "accelerator,vendor,kind,adapter_name_patterns,fp32_tflops,fp16_tensor_tflops,bf16_tensor_tflops,memory_gb,memory_bandwidth_gbs,tdp_w,reachable_by_wgpu,source\n";
    let good = "X1,Acme,gpu,Acme X1,10,100,100,80,1000,300,true,s\n";
    let row = |cells: &str| format!("{header}{good}{cells}\n");
    let cases: Vec<(String, u64, u64, &str)> = vec![
        (
            row("X2,Acme,fpga,Acme X2,10,,,80,1000,300,true,s"),
            3,
            3,
            "allowed values",
        ),
        (
            row("X2,Acme,gpu,re:Acme (X2,10,,,80,1000,300,true,s"),
            3,
            4,
            "not a valid regex",
        ),
        (
            row("X2,Acme,gpu,Acme X2,10,,,80,1000,300,yes,s"),
            3,
            11,
            "not true or false",
        ),
        (
            row("X2,Acme,gpu,Acme X2,-10,,,80,1000,300,true,s"),
            3,
            5,
            "not above 0",
        ),
        (
            row("X2,Acme,gpu,Acme X2,10,,,80,1000,NaN,true,s"),
            3,
            10,
            "not a finite number",
        ),
        (
            row("x1,Acme,gpu,Acme X2,10,,,80,1000,300,true,s"),
            3,
            1,
            "listed twice",
        ),
        (
            row("X2,Acme,gpu,(TM),10,,,80,1000,300,true,s"),
            3,
            4,
            "is empty once",
        ),
    ];
    for (text, line, column, needle) in cases {
        assert_bad_file(parse_accelerators(&text), line, column, needle);
    }
    let c = parse_accelerators(&format!("{header}{good}")).unwrap();
    assert_eq!(
        c.match_adapter("Acme X1 (driver 5)", false).unwrap().name,
        "X1"
    );
}

#[test]
fn default_instances_against_replaced_accelerators_point_at_the_builtin_file() {
    let header = "accelerator,vendor,kind,adapter_name_patterns,fp32_tflops,fp16_tensor_tflops,bf16_tensor_tflops,memory_gb,memory_bandwidth_gbs,tdp_w,reachable_by_wgpu,source\n";
    let r = Catalog::from_sources(
        None,
        Some(Source {
            path: Path::new("user/accelerators.csv"),
            bytes: format!("{header}X1,Acme,gpu,Acme X1,10,,,80,1000,300,true,s\n").as_bytes(),
        }),
        true,
    );
    match r {
        Err(Error::BadFile {
            path, line, column, ..
        }) => {
            assert_eq!(path, Path::new(DEFAULT_INSTANCES_LABEL));
            assert_eq!((line, column), (2, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_files_extend_or_replace_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join("instances.csv");
    let acc = dir.path().join("accelerators.csv");
    let mut f = std::fs::File::create(&inst).unwrap();
    write!(
        f,
        "{INST_HEADER}AWS,p5.48xlarge,H100 SXM,8,80,192,,us-east-1,40,,2026-11-01,our discount\n\
         Acme,x1.big,X1,4,80,64,,eu-1,20,,2026-11-01,quote\n"
    )
    .unwrap();
    std::fs::write(
        &acc,
        "accelerator,vendor,kind,adapter_name_patterns,fp32_tflops,fp16_tensor_tflops,bf16_tensor_tflops,memory_gb,memory_bandwidth_gbs,tdp_w,reachable_by_wgpu,source\n\
         X1,Acme,gpu,Acme X1,10,100,100,80,1000,300,true,datasheet\n",
    )
    .unwrap();

    // Extend: the user's p5 row overrides the default one; everything else stays.
    let c = Catalog::from_files(Some(&inst), Some(&acc), false).unwrap();
    let d = Catalog::load_default().unwrap();
    assert_eq!(c.instances().len(), d.instances().len() + 1);
    assert_eq!(c.accelerators().len(), d.accelerators().len() + 1);
    let p5 = c.offerings_for_instance("p5.48xlarge").unwrap();
    assert_eq!((p5.len(), p5[0].usd_per_accelerator_hour), (1, 5.0));
    assert_eq!(c.offerings_for("X1")[0].usd_per_accelerator_hour, 5.0);

    // Replace: only the user's rows (the p5 row needs H100 SXM, which the replaced
    // accelerator file lacks, so replace the instances with the Acme row only).
    std::fs::write(
        &inst,
        format!("{INST_HEADER}Acme,x1.big,X1,4,80,64,,eu-1,20,,2026-11-01,quote\n"),
    )
    .unwrap();
    let r = Catalog::from_files(Some(&inst), Some(&acc), true).unwrap();
    assert_eq!((r.instances().len(), r.accelerators().len()), (1, 1));

    // A missing file is an I/O error naming the path.
    let missing = dir.path().join("nope.csv");
    let e = Catalog::from_files(Some(&missing), None, false).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("nope.csv"),
        "{e}"
    );

    // Errors in a user file name that file.
    std::fs::write(
        &inst,
        format!("{INST_HEADER}Acme,x1.big,X1,4,80,64,,eu-1,-3,,2026-11-01,quote\n"),
    )
    .unwrap();
    let e = Catalog::from_files(Some(&inst), Some(&acc), false).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:9:", inst.display())),
        "{e}"
    );
}

#[test]
fn non_utf8_is_a_bad_file_not_a_panic() {
    let mut bytes = INST_HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"AWS,x\xff,H100 SXM,8,80,192,,us-east-1,1,,2026-01-21,s\n");
    let r = Catalog::from_sources(
        Some(Source {
            path: Path::new("user/instances.csv"),
            bytes: &bytes,
        }),
        None,
        true,
    );
    assert_bad_file(r, 2, 2, "cannot read");
}

/// A spot price often comes from another source than the on-demand one, and carries its
/// own date: p5.48xlarge's spot price is an undated pre-June-2025 sample, while its
/// on-demand price is dated 2026-01-21. A file without the column dates both alike; a bad
/// date in it is refused at its cell.
#[test]
fn spot_prices_carry_their_own_date() {
    let c = Catalog::load_default().unwrap();
    let p5 = c.offerings_for_instance("p5.48xlarge").unwrap();
    let date_of = |tier: Tier| p5.iter().find(|o| o.tier == tier).unwrap().as_of;
    assert_eq!(date_of(Tier::OnDemand), Some(date("2026-01-21")));
    assert_eq!(date_of(Tier::Spot), None);

    let c = parse_instances(&format!("{INST_HEADER}{GOOD_INST}")).unwrap();
    let o = c.offerings_for_instance("p5.48xlarge").unwrap();
    assert!(
        o.iter().all(|o| o.as_of == Some(date("2026-01-21"))),
        "{o:?}"
    );

    let header = INST_HEADER.replace("as_of,", "as_of,spot_as_of,");
    let row = GOOD_INST.replace("2026-01-21,", "2026-01-21,2025-05-01,");
    let c = parse_instances(&format!("{header}{row}")).unwrap();
    let o = c.offerings_for_instance("p5.48xlarge").unwrap();
    let spot = o.iter().find(|o| o.tier == Tier::Spot).unwrap();
    assert_eq!(spot.as_of, Some(date("2025-05-01")));
    let bad = GOOD_INST.replace("2026-01-21,", "2026-01-21,soon,");
    assert_bad_file(
        parse_instances(&format!("{header}{bad}")),
        2,
        12,
        "spot_as_of",
    );
}
