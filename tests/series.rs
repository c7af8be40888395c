//! Training runs: `mhc-analyze audit CHECKPOINT…` and `analysis::series` on the real HC and mHC
//! checkpoints of experiments/data/training/, against the independent numpy computation in
//! tests/data/make_series_reference.py; steps, ordering, unmoved layers and refusals on small
//! synthetic stacks; the `training` report.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use mhc_analyze::analysis::init::init_distances;
use mhc_analyze::analysis::series::{
    SeriesConfig, StepOrigin, audit_series, last_integer, order_by_step, unmoved_layers,
};
use mhc_analyze::analysis::{AuditConfig, Layer, Stat, Verdict};
use mhc_analyze::load::LoadOptions;
use mhc_analyze::metrics::Metric;
use predicates::prelude::*;
use proptest::prelude::*;
use serde_json::Value;

fn repository(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn training(name: &str) -> PathBuf {
    repository("experiments/data/training").join(name)
}

/// The five checkpoints of a run, deliberately not in step order.
fn run_files(kind: &str) -> Vec<PathBuf> {
    [400, 0, 100, 50, 200]
        .iter()
        .map(|step| training(&format!("{kind}_step{step}.safetensors")))
        .collect()
}

fn reference() -> Value {
    let path = repository("tests/data/reference/series_training.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// The reference is exact to float64 (mpmath at 50 digits from the same float32 parameters), so
/// ours may differ only by our float64 rounding: measured at most 4.4e-16 absolute (the gains
/// near 1) and 6.2e-14 relative for entries of 1e-3 (3.9e-17 absolute).
fn assert_close(what: &str, ours: f64, theirs: f64) {
    let tolerance = 4e-15 + 1e-13 * theirs.abs();
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: ours {ours:e}, reference {theirs:e}"
    );
}

fn audit() -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("mhc-analyze");
    cmd.arg("audit");
    cmd
}

#[test]
fn real_training_runs_match_numpy() {
    let reference = reference();
    for kind in ["hc", "mhc"] {
        let expected = &reference["runs"][kind];
        let config = SeriesConfig::new(AuditConfig::default(), 5e-3).unwrap();
        let series =
            audit_series(&run_files(kind), &LoadOptions::default(), &config, |_| {}).unwrap();
        let checkpoints = expected["checkpoints"].as_array().unwrap();
        assert_eq!(series.checkpoints.len(), checkpoints.len());
        for (ours, theirs) in series.checkpoints.iter().zip(checkpoints) {
            let step = theirs["step"].as_u64().unwrap();
            assert_eq!(ours.step.step, step);
            assert_eq!(ours.step.origin, StepOrigin::MetadataStep);
            assert_eq!(ours.name(), theirs["checkpoint"].as_str().unwrap());
            let at = |what: &str| format!("{kind} step {step} {what}");
            for key in [
                "identity_distance",
                "permutation_distance",
                "init_distance",
                "change_from_first",
            ] {
                assert_eq!(floats(&theirs[key]).len(), 8, "{}", at(key));
            }
            for (metric, key) in [
                (Metric::IdentityDistance, "identity_distance"),
                (Metric::PermutationDistance, "permutation_distance"),
            ] {
                for (layer, value) in Layer::all(8).zip(floats(&theirs[key])) {
                    assert_close(
                        &at(&format!("{key} layer {layer}")),
                        ours.single_layer(layer, metric),
                        value,
                    );
                }
            }
            let init = ours
                .init_distance
                .as_ref()
                .expect("lucidrains states its init");
            assert_eq!((init.len(), ours.change_from_first.len()), (8, 8));
            for (k, value) in floats(&theirs["init_distance"]).into_iter().enumerate() {
                assert_close(&at(&format!("init_distance {k}")), init[k], value);
            }
            for (k, value) in floats(&theirs["change_from_first"]).into_iter().enumerate() {
                assert_close(
                    &at(&format!("change_from_first {k}")),
                    ours.change_from_first[k],
                    value,
                );
            }
            for (metric, stat, key) in [
                (Metric::AmaxForward, Stat::Max, "amax_forward"),
                (Metric::AmaxBackward, Stat::Max, "amax_backward"),
                (Metric::Sigma2, Stat::Mean, "sigma2"),
            ] {
                let theirs = theirs["whole_model"][key].as_f64().unwrap();
                let ours = ours.whole_model(metric, stat);
                if key == "sigma2" {
                    // σ₂ ≪ σ₁ ≈ 1 for mHC: our singular values are accurate relative to σ₁
                    // (measured at most 3.3e-17 absolute).
                    assert!(
                        (ours - theirs).abs() <= 1e-15,
                        "{}: ours {ours:e}, reference {theirs:e}",
                        at(key)
                    );
                } else {
                    assert_close(&at(key), ours, theirs);
                }
            }
        }
        assert_eq!(series.largest_change().len(), 8);
        for (k, value) in floats(&expected["largest_change"]).into_iter().enumerate() {
            assert_close(
                &format!("{kind} largest change {k}"),
                series.largest_change()[k],
                value,
            );
        }
        let changes: Vec<Vec<f64>> = series
            .checkpoints
            .iter()
            .map(|c| c.change_from_first.clone())
            .collect();
        for (tolerance, layers) in expected["unmoved_layers"].as_object().unwrap() {
            let tolerance: f64 = tolerance.parse().unwrap();
            let ours: Vec<u64> = unmoved_layers(&changes, tolerance)
                .iter()
                .map(|l| l.number() as u64)
                .collect();
            let theirs: Vec<u64> = layers
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(ours, theirs, "{kind} unmoved at {tolerance}");
        }
        let theirs_at_config = &expected["unmoved_layers"]["0.005"];
        let ours: Vec<u64> = series
            .unmoved_layers
            .iter()
            .map(|l| l.number() as u64)
            .collect();
        assert_eq!(
            Value::from(ours),
            *theirs_at_config,
            "{kind} unmoved layers of the run"
        );
        let unstable = series
            .checkpoints
            .iter()
            .any(|c| c.result.verdict == Verdict::Unstable);
        assert_eq!(series.verdict == Verdict::Unstable, unstable);
    }
}

#[test]
fn init_distances_of_one_checkpoint() {
    let reference = reference();
    let last = &reference["runs"]["mhc"]["checkpoints"][4];
    assert_eq!(last["step"], 400);
    let ours = init_distances(
        &training("mhc_step400.safetensors"),
        &LoadOptions::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(ours.len(), 8);
    for (k, value) in floats(&last["init_distance"]).into_iter().enumerate() {
        assert_close(&format!("init_distance {k}"), ours[k], value);
    }
    // Before the first update the parameters are the package's initialisation.
    let first = init_distances(&training("hc_step0.safetensors"), &LoadOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(first, vec![0.0; 8]);
    // A single audit carries it too: JSON per layer, one line in the table.
    let output = audit()
        .arg(training("mhc_step400.safetensors"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let from_cli = floats(&json["init_distance"]);
    assert_eq!(from_cli, ours, "the CLI's JSON and the library agree");
    assert!(
        json["definitions"]["init_distance"]
            .as_str()
            .unwrap()
            .contains("lucidrains mHC: Sinkhorn(I)")
    );
    audit()
        .arg(training("mhc_step400.safetensors"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "distance from the layout's initialisation ‖H_l − H_l(init)‖_F: mean over layers 0.02590, largest 0.06498 (layer 6)",
        ));
    let output = audit()
        .arg(repository("tests/data/checkpoints/deepseek_v4.safetensors"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["init_distance"], "unknown");
    // Unknown for DeepSeek-V4 and for finished matrices.
    for (file, options) in [
        ("deepseek_v4.safetensors", LoadOptions::default()),
        ("hres.npy", LoadOptions::default()),
    ] {
        let path = repository("tests/data/checkpoints").join(file);
        assert_eq!(init_distances(&path, &options).unwrap(), None, "{file}");
    }
}

#[test]
fn a_training_run_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    // A directory of checkpoints whose names hold no step: the metadata gives it.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    for (k, step) in [0, 50, 100, 200, 400].iter().enumerate() {
        std::fs::copy(
            training(&format!("mhc_step{step}.safetensors")),
            run.join(format!(
                "checkpoint-{}.safetensors",
                ["a", "b", "c", "d", "e"][4 - k]
            )),
        )
        .unwrap();
    }
    std::fs::write(run.join("notes.txt"), "not a checkpoint").unwrap();
    let out = dir.path().join("out");
    let output = audit()
        .arg(&run)
        .args(["--still-tolerance", "5e-3", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("a training run of 5 checkpoints"),
        "{stdout}"
    );
    assert!(stdout.contains("steps from metadata 'step' (5 checkpoints)"));
    assert!(
        stdout.contains("H_res did not move in layers 1, 4 and 8 of 8"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("checkpoint-") && l.contains("stable"))
        .collect();
    let steps: Vec<&str> = rows
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(steps, ["0", "50", "100", "200", "400"], "{stdout}");
    for file in [
        "series.csv",
        "series.json",
        "series.png",
        "series.svg",
        "series-heatmap.png",
        "series-heatmap.svg",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    assert!(
        std::fs::read(out.join("series.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("series.json")).unwrap()).unwrap();
    let steps: Vec<u64> = json["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [0, 50, 100, 200, 400]);
    assert_eq!(json["unmoved_layers"], serde_json::json!([1, 4, 8]));
    assert_eq!(json["checkpoints"][0]["step_from"], "metadata_step");
    assert_eq!(json["checkpoints"][2]["audit"]["layout"], "lucidrains-mhc");
    assert_eq!(
        json["checkpoints"][2]["audit"]["init_distance"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    let reference = reference();
    let theirs = reference["runs"]["mhc"]["checkpoints"][3]["whole_model"]["sigma2"]
        .as_f64()
        .unwrap();
    let ours = json["checkpoints"][3]["audit"]["whole_model"]["sigma2"]["mean"]
        .as_f64()
        .unwrap();
    assert!((ours - theirs).abs() <= 1e-15);
    let mut reader = csv::Reader::from_path(out.join("series.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "step",
            "checkpoint",
            "composite",
            "layer",
            "metric",
            "stat",
            "value"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // Per checkpoint: 3 composites × 8 layers × every metric × 6 statistics, then per layer
    // change_from_first and init_distance.
    assert_eq!(records.len(), 5 * (3 * 8 * Metric::ALL.len() * 6 + 8 * 2));
    let change = records
        .iter()
        .find(|r| &r[0] == "400" && &r[3] == "6" && &r[4] == "change_from_first")
        .unwrap();
    assert_eq!(&change[5], "value");
    let theirs = reference["runs"]["mhc"]["checkpoints"][4]["change_from_first"][5]
        .as_f64()
        .unwrap();
    assert!((change[6].parse::<f64>().unwrap() - theirs).abs() <= 4e-15);
}

#[test]
fn an_unstable_checkpoint_makes_the_run_unstable() {
    audit()
        .args(run_files("hc"))
        .args(["--format", "markdown"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("— **unstable**"))
        .stdout(predicate::str::contains(
            "- step 50 (hc_step50.safetensors): whole-model amax_backward",
        ));
    let output = audit()
        .args(run_files("mhc"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["verdict"], "stable");
    assert_eq!(json["unmoved_layers"], serde_json::json!([]));
}

#[test]
fn mixed_models_are_refused_naming_the_odd_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    audit()
        .arg(training("mhc_step0.safetensors"))
        .arg(training("hc_step100.safetensors"))
        .arg(training("mhc_step50.safetensors"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hc_step100.safetensors: layout lucidrains-hc differs from lucidrains-mhc of",
        ))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    assert!(!out.exists(), "nothing written");

    // Another stream count, in stacks named by their step.
    let stacks = dir.path().join("stacks");
    std::fs::create_dir(&stacks).unwrap();
    write_stack(&stacks.join("run_step10.npy"), &identity_stack(3, 4, 0.0));
    write_stack(&stacks.join("run_step20.npy"), &identity_stack(3, 3, 0.0));
    write_stack(&stacks.join("run_step30.npy"), &identity_stack(3, 4, 0.0));
    audit()
        .arg(&stacks)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "run_step20.npy: streams n = 3 differs from 4 of",
        ))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    assert!(!out.exists(), "nothing written");
}

/// `layers` matrices of n × n: the identity, plus `bump` in entry [0, 1] of layer 1.
fn identity_stack(layers: usize, n: usize, bump: f64) -> (Vec<usize>, Vec<f64>) {
    let mut values = vec![0.0; layers * n * n];
    for l in 0..layers {
        for i in 0..n {
            values[l * n * n + i * n + i] = 1.0;
        }
    }
    values[1] += bump;
    (vec![layers, n, n], values)
}

fn write_stack(path: &Path, (shape, values): &(Vec<usize>, Vec<f64>)) {
    use ndarray_npy::WriteNpyExt;
    ndarray::ArrayD::from_shape_vec(shape.clone(), values.clone())
        .unwrap()
        .write_npy(std::fs::File::create(path).unwrap())
        .unwrap();
}

#[test]
fn steps_from_names_or_positions_and_unmoved_layers() {
    let dir = tempfile::tempdir().unwrap();
    // Layer 1 moves by 0.3 at step 2000, layers 2 and 3 never move.
    let late = dir.path().join("ckpt_2000.npy");
    let early = dir.path().join("ckpt_900.npy");
    write_stack(&late, &identity_stack(3, 2, 0.3));
    write_stack(&early, &identity_stack(3, 2, 0.0));
    let output = audit()
        .arg(&late)
        .arg(&early)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["checkpoints"][0]["step"], 900);
    assert_eq!(json["checkpoints"][0]["step_from"], "file_name");
    assert_eq!(json["unmoved_layers"], serde_json::json!([2, 3]));
    assert_eq!(json["checkpoints"][1]["change_from_first"][0], 0.3);
    assert_eq!(json["checkpoints"][1]["audit"]["init_distance"], "unknown");
    // A file without a step: every file by its position in the order given.
    let unnamed = dir.path().join("latest.npy");
    write_stack(&unnamed, &identity_stack(3, 2, 0.0));
    audit()
        .arg(&late)
        .arg(&unnamed)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "steps from the position in the order given (2 checkpoints)",
        ))
        .stdout(predicate::str::contains(
            "H_res did not move in layers 2 and 3 of 3",
        ));
    // Two files with one step.
    let twin = dir.path().join("other_900.npy");
    write_stack(&twin, &identity_stack(3, 2, 0.0));
    audit()
        .arg(&early)
        .arg(&twin)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "step 900 (the last integer in the file name) is also the step of",
        ));
    // A directory holding one checkpoint is that checkpoint's audit; one without any is
    // refused.
    let single = dir.path().join("single");
    std::fs::create_dir(&single).unwrap();
    std::fs::copy(&early, single.join("a.npy")).unwrap();
    audit()
        .arg(&single)
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(format!(
            "mhc-analyze audit: {}",
            single.join("a.npy").display()
        )));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    audit()
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "0 checkpoints found, a series needs at least 2",
        ));
    // Per-token output is for one checkpoint.
    audit()
        .arg(&early)
        .arg(&late)
        .args(["--out"])
        .arg(dir.path().join("out"))
        .arg("--per-token")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("apply to one checkpoint"));
    audit()
        .arg(&early)
        .arg(&late)
        .args(["--still-tolerance=-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "still-tolerance must be a finite number ≥ 0",
        ));
}

#[test]
fn the_training_report_is_written_and_cites_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("training");
    cargo_bin_cmd!("mhc-analyze")
        .arg("report")
        .arg(repository("experiments/training-runs.toml"))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .assert()
        .success();
    for file in [
        "report.md",
        "training.png",
        "training.svg",
        "layers.png",
        "layers.svg",
        "table-checkpoints.md",
        "table-checkpoints.tex",
        "table-layers.md",
        "table-layers.tex",
        "training.csv",
        "manifest.json",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("experiments/data/training/README.md"));
    assert!(report.contains("generator = `experiments/data/training/train.py`"));
    assert!(
        report.contains("`hc` is unstable at steps 50, 100 and 200 of 5"),
        "{report}"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 11);
    let reference = reference();
    let mut reader = csv::Reader::from_path(out.join("training.csv")).unwrap();
    let row = reader
        .records()
        .map(Result::unwrap)
        .find(|r| &r[0] == "mhc" && &r[1] == "400" && &r[4] == "6" && &r[5] == "init_distance")
        .unwrap();
    let theirs = reference["runs"]["mhc"]["checkpoints"][4]["init_distance"][5]
        .as_f64()
        .unwrap();
    assert!((row[7].parse::<f64>().unwrap() - theirs).abs() <= 4e-15);
}

#[test]
fn a_training_file_needs_two_checkpoints_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "kind = \"training\"\ntitle = \"t\"\n\n[[run]]\nname = \"a\"\nlabel = \"A\"\ncheckpoints = [\"x.safetensors\"]\n",
    )
    .unwrap();
    cargo_bin_cmd!("mhc-analyze")
        .arg("report")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.toml: line 7: checkpoints must list at least 2 files (a training run), got 1",
        ));
}

proptest! {
    #[test]
    fn ordering_does_not_depend_on_the_order_given(
        steps in prop::collection::hash_set(0u64..1_000_000, 2..12),
        seed in any::<u64>(),
    ) {
        let steps: Vec<u64> = steps.into_iter().collect();
        let found = |order: &[u64]| order
            .iter()
            .map(|s| (PathBuf::from(format!("c{s}")), Some((*s, StepOrigin::FileName))))
            .collect::<Vec<_>>();
        let mut shuffled = steps.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let a = order_by_step(found(&steps)).unwrap();
        let b = order_by_step(found(&shuffled)).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert!(a.windows(2).all(|w| w[0].step < w[1].step));
    }

    #[test]
    fn more_tolerance_never_moves_a_layer(
        changes in prop::collection::vec(prop::collection::vec(0.0f64..1.0, 6), 1..6),
        low in 0.0f64..1.0,
        extra in 0.0f64..1.0,
    ) {
        let strict = unmoved_layers(&changes, low);
        let loose = unmoved_layers(&changes, low + extra);
        prop_assert!(strict.iter().all(|l| loose.contains(l)));
        for layer in &loose {
            prop_assert!(changes.iter().all(|c| c[layer.number() - 1] <= low + extra));
        }
    }

    #[test]
    fn the_last_integer_of_a_name_is_found(
        prefix in "[a-z_\\-]{0,8}[0-9]{0,3}[a-z_\\-]{1,4}",
        step in any::<u64>(),
        suffix in "[a-z_\\-]{0,8}",
    ) {
        prop_assert_eq!(last_integer(&format!("{prefix}{step}{suffix}")), Some(step));
    }
}
