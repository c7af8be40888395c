//! `mhc-analyze gain` through the binary: exit codes, files, determinism, bad options.

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

fn gain() -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("mhc-analyze");
    cmd.arg("gain");
    cmd
}

fn write_npy_f64(path: &Path, shape: &[usize], values: &[f64]) {
    use ndarray_npy::WriteNpyExt;
    let array = ndarray::ArrayD::from_shape_vec(shape.to_vec(), values.to_vec()).unwrap();
    array
        .write_npy(std::fs::File::create(path).unwrap())
        .unwrap();
}

#[test]
fn default_run_prints_a_table_with_hc_above_mhc() {
    gain()
        .args(["--layers", "64", "--streams", "4"])
        .assert()
        .success()
        .stdout(predicate::str::contains("whole-model composite H_64⋯H_1"))
        .stdout(predicate::str::contains("amax_forward"))
        .stderr("");
}

#[test]
fn out_directory_gets_every_file_and_whole_model_gains_separate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    gain()
        .args(["--layers", "64", "--streams", "4", "--seeds", "8", "--out"])
        .arg(&out)
        .assert()
        .success();
    for file in ["gain.csv", "summary.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let hc = summary["methods"]["hc"]["whole_model"]["amax_forward"]["median"]
        .as_f64()
        .unwrap();
    let mhc = &summary["methods"]["mhc"]["whole_model"]["amax_forward"];
    assert!(hc > 10.0, "HC whole-model gain {hc}");
    for stat in ["min", "max"] {
        let value = mhc[stat].as_f64().unwrap();
        assert!((0.5..=2.0).contains(&value), "mHC {stat} {value}");
    }
    assert_eq!(summary["parameters"]["layers"], 64);
    assert_eq!(summary["parameters"]["version"], env!("CARGO_PKG_VERSION"));
    // Tidy CSV: exact header, 2 methods × 3 composites × 64 layers × metrics × 6 stats.
    let csv = std::fs::read_to_string(out.join("gain.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("method,composite,layer,metric,stat,value")
    );
    let metrics = mhc_analyze::metrics::Metric::ALL.len();
    assert_eq!(lines.count(), 2 * 3 * 64 * metrics * 6);
    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn same_seed_same_bytes_any_thread_count_other_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str, threads: &str| {
        let out = dir.path().join(name);
        // 150 seeds: more than two chunks of 64, so the work really is split.
        gain()
            .args([
                "--layers", "12", "--seeds", "150", "--tokens", "2", "--seed", seed,
            ])
            .args(["--threads", threads, "--per-seed", "--out"])
            .arg(&out)
            .assert()
            .success();
        (
            std::fs::read(out.join("gain.csv")).unwrap(),
            std::fs::read(out.join("gain_per_seed.csv")).unwrap(),
            std::fs::read(out.join("summary.json")).unwrap(),
        )
    };
    let one = run("a", "7", "1");
    let four = run("b", "7", "4");
    let other = run("c", "8", "4");
    assert!(one == four, "1 and 4 threads differ");
    assert!(one.0 != other.0, "seeds 7 and 8 agree");
    let per_seed = String::from_utf8(one.1).unwrap();
    assert!(
        per_seed
            .starts_with("seed,method,composite,layer,metric,value\n0,hc,single,1,amax_forward,")
    );
}

#[test]
fn machine_formats_on_stdout_parse() {
    let output = gain()
        .args(["--layers", "8", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["methods"]["mhc"]["whole_model"]["birkhoff_distance"]["mean"].is_number());
    let output = gain()
        .args(["--layers", "8", "--format", "csv"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("method,composite,layer,metric,stat,value\n"));
}

#[test]
fn bad_options_are_usage_errors() {
    for (args, message) in [
        (vec!["--layers", "0"], "layers must be at least 1, got 0"),
        (vec!["--streams", "1"], "streams must be at least 2, got 1"),
        (vec!["--seeds", "0"], "seeds must be at least 1, got 0"),
        (
            vec!["--seeds", "4294967296"],
            "seeds must be at most 4294967295, got 4294967296",
        ),
        (
            vec!["--sinkhorn-iters", "0"],
            "sinkhorn-iters must be at least 1",
        ),
        (
            vec!["--logit-std=-1"],
            "logit-std must be a finite number ≥ 0",
        ),
        (vec!["--layers", "ten"], "invalid value 'ten'"),
        (vec!["--threads", "0"], "--threads must be at least 1"),
        (vec!["--per-seed"], "--out"),
    ] {
        gain()
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(message));
    }
}

#[test]
fn bad_logits_files_are_rejected_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let rank2 = dir.path().join("rank2.npy");
    write_npy_f64(&rank2, &[4, 4], &[0.0; 16]);
    let rectangular = dir.path().join("rect.npy");
    write_npy_f64(&rectangular, &[2, 3, 4], &[0.0; 24]);
    let nan = dir.path().join("nan.npy");
    let mut values = vec![0.0; 3 * 2 * 2];
    values[4 + 3] = f64::NAN; // layer 2, entry [1, 1]
    write_npy_f64(&nan, &[3, 2, 2], &values);
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not a numpy file").unwrap();
    let missing = dir.path().join("missing.npy");
    let out = dir.path().join("out");
    for (path, message) in [
        (
            &rank2,
            "expected shape [layers, n, n] or [layers, tokens, n, n]",
        ),
        (&rectangular, "matrices must be square, got 3×4"),
        (
            &nan,
            "non-finite value NaN at layer 2, token 0, entry [1, 1]",
        ),
        (&garbage, "garbage.npy"),
        (&missing, "missing.npy"),
    ] {
        let assert = gain()
            .arg("--logits")
            .arg(path)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(2);
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
    }
    gain()
        .args(["--layers", "4", "--logits"])
        .arg(&rank2)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn closed_stdout_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("mhc-analyze"))
        .args(["gain", "--layers", "32", "--seeds", "4", "--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stderr, "");
}

/// `gain --logits` on the 64-layer numpy reference case (HC composite ≥ 1e4), through the binary.
#[test]
fn logits_file_agrees_with_numpy_through_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference");
    let output = gain()
        .arg("--logits")
        .arg(root.join("logits_hc64.npy"))
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let ours: std::collections::HashMap<(String, String, String, String), f64> =
        csv::Reader::from_reader(output.stdout.as_slice())
            .records()
            .map(|r| r.unwrap())
            .filter(|r| &r[4] == "mean")
            .map(|r| {
                (
                    (r[0].into(), r[1].into(), r[2].into(), r[3].into()),
                    r[5].parse().unwrap(),
                )
            })
            .collect();
    let mut reference = csv::Reader::from_path(root.join("gain_reference_hc64.csv")).unwrap();
    let mut compared = 0;
    for record in reference.records() {
        let r = record.unwrap();
        let theirs: f64 = r[4].parse().unwrap();
        let key = (
            r[0].to_string(),
            r[1].to_string(),
            r[2].to_string(),
            r[3].to_string(),
        );
        let value = ours[&key];
        let relative = if &r[3] == "birkhoff_distance" {
            1e-6
        } else {
            1e-9
        };
        assert!(
            (value - theirs).abs() <= relative * theirs.abs() + 1e-13,
            "{key:?}: {value} vs {theirs}"
        );
        compared += 1;
    }
    assert!(compared > 5000);
}

// ---------------------------------------------------------------------------------------------
// What users read (issue 17 §7): counts, the generator, the seed, per-seed metrics.

#[test]
fn one_layer_reads_as_one_layer() {
    let output = gain().args(["--layers", "1"]).output().unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("1 layer, 4 streams, 1 token;"), "{table}");
    assert!(table.contains("whole-model composite H_1 "), "{table}");
    assert!(
        !table.contains("1 layers") && !table.contains("H_1⋯H_1"),
        "{table}"
    );
}

#[test]
fn help_names_the_shared_term_of_the_generator() {
    let output = gain().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("w·I + S + σ·G"), "{help}");
    assert!(help.contains("S = s·G_shared"), "{help}");
}

#[test]
fn the_figure_names_the_master_seed_and_per_seed_metrics_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    gain()
        .args([
            "--layers",
            "6",
            "--seeds",
            "3",
            "--seed",
            "42",
            "--per-seed",
        ])
        .args([
            "--per-seed-metrics",
            "amax_forward,amax_backward",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(out.join("gain.svg")).unwrap();
    assert!(
        svg.contains("master seed 42"),
        "the subtitle names the seed"
    );
    let per_seed = std::fs::read_to_string(out.join("gain_per_seed.csv")).unwrap();
    // 3 seeds × 2 methods × 3 composites × 6 layers × 2 metrics, and the header.
    assert_eq!(per_seed.lines().count(), 1 + 3 * 2 * 3 * 6 * 2);
    assert!(per_seed.lines().skip(1).all(|l| l.contains(",amax_")));
    gain()
        .args(["--per-seed", "--per-seed-metrics", "amax_sideways", "--out"])
        .arg(dir.path().join("other"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown metric 'amax_sideways'"));
}
