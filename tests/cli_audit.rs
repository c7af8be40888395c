//! `mhc-analyze audit` through the binary: the real mHC fixture, an HC model, the bad corpus.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn audit() -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("mhc-analyze");
    cmd.arg("audit");
    cmd
}

fn read_npy(path: &Path) -> ndarray::ArrayD<f64> {
    // f32 or f64.
    mhc_analyze::generate::read_logits_npy(path).unwrap()
}

#[test]
fn the_real_mhc_checkpoint_is_stable_in_every_format() {
    for (file, extra) in [
        ("checkpoints/checkpoint.safetensors", vec![]),
        ("checkpoints/checkpoint.pt", vec![]),
        ("checkpoints/hres.npy", vec![]),
        ("checkpoints/hres.safetensors", vec!["--key", "hres"]),
    ] {
        let output = audit()
            .arg(data(file))
            .args(&extra)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["verdict"], "stable", "{file}");
        assert_eq!(json["layers"], 12);
        assert_eq!(json["streams"], 4);
        for metric in ["amax_forward", "amax_backward"] {
            let max = json["whole_model"][metric]["max"].as_f64().unwrap();
            assert!((max - 1.0).abs() < 1e-6, "{file} {metric} {max}");
        }
        let expected_tokens = if file.contains("hres") { 32 } else { 1 };
        assert_eq!(json["tokens"], expected_tokens, "{file}");
        assert_eq!(json["per_layer"].as_array().unwrap().len(), 12);
        assert!(json["reasons"].as_array().unwrap().len() >= 2);
    }
}

#[test]
fn reconstructed_static_hres_matches_the_package_and_is_dumped() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("hres.npy");
    let out = dir.path().join("out");
    audit()
        .arg(data("checkpoints/checkpoint.safetensors"))
        .arg("--dump-hres")
        .arg(&dump)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("layout lucidrains-mhc"))
        .stdout(predicate::str::contains("verdict: stable"));
    let ours = read_npy(&dump);
    let package = read_npy(&data("checkpoints/static_hres.npy"));
    assert_eq!(ours.shape(), &[12, 4, 4]);
    let worst = ours
        .iter()
        .zip(package.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-6, "static H_res differs by {worst}");
    for file in [
        "audit.csv",
        "audit.json",
        "audit.md",
        "audit.png",
        "audit.svg",
        "audit-heatmap.png",
        "audit-heatmap.svg",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let csv = std::fs::read_to_string(out.join("audit.csv")).unwrap();
    assert!(csv.starts_with(
        "method,composite,layer,metric,stat,value\nlucidrains-mhc,single,1,amax_forward,mean,"
    ));
}

#[test]
fn a_growing_hc_model_is_unstable() {
    let file = data("checkpoints/lucidrains_hc_24.safetensors");
    audit()
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("layout lucidrains-hc"))
        .stdout(predicate::str::contains("verdict: unstable"));
    // With a threshold above its gain it passes: the exit code follows the verdict.
    let output = audit()
        .arg(&file)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let gain = json["whole_model"]["amax_backward"]["max"]
        .as_f64()
        .unwrap();
    assert!(gain > 10.0);
    audit()
        .arg(&file)
        .args(["--max-gain", &format!("{}", gain * 1.01)])
        .assert()
        .code(0);
    audit()
        .arg(&file)
        .args(["--format", "markdown"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("### mhc-analyze audit:"))
        .stdout(predicate::str::contains("FAIL: whole-model amax_backward"));
}

#[test]
fn forcing_the_wrong_orientation_changes_the_composite() {
    // A non-symmetric HC model read transposed is a different product (docs/theory.md §1.1).
    let file = data("checkpoints/lucidrains_hc_24.safetensors");
    let json = |extra: &[&str]| -> serde_json::Value {
        let output = audit()
            .arg(&file)
            .args(extra)
            .args(["--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let normal = json(&[]);
    let flipped = json(&["--transpose"]);
    let a = normal["whole_model"]["amax_forward"]["mean"]
        .as_f64()
        .unwrap();
    let b = flipped["whole_model"]["amax_backward"]["mean"]
        .as_f64()
        .unwrap();
    // Transposing every layer turns H_L⋯H_1 into (H_1⋯H_L)ᵀ: not the same gains swapped.
    assert!((a - b).abs() > 1e-6 * a, "{a} vs {b}");
}

/// Every file of the bad corpus: exit 2, one line on stderr naming the file, nothing in --out.
#[test]
fn the_bad_corpus_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(data("bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.push(data("bad/does-not-exist.safetensors"));
    assert!(entries.len() >= 15);
    for path in entries {
        let out = dir.path().join("out");
        let output = audit().arg(&path).arg("--out").arg(&out).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}: {stderr}",
            path.display()
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&*name),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"));
        assert!(!out.exists(), "{} left {}", path.display(), out.display());
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn no_hres_names_the_closest_tensors() {
    audit()
        .arg(data("bad/no_hres.safetensors"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: no H_res matrices found in",
        ))
        .stderr(predicate::str::contains("closest names:"));
}

/// The same DeepSeek-V4 model as GGUF and as safetensors: same verdict, same dumped H_res bytes.
#[test]
fn gguf_and_safetensors_deepseek_v4_audit_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut dumps = Vec::new();
    let mut verdicts = Vec::new();
    for file in [
        "checkpoints/deepseek_v4.gguf",
        "checkpoints/deepseek_v4.safetensors",
    ] {
        let dump = dir.path().join(format!("{}.npy", dumps.len()));
        let output = audit()
            .arg(data(file))
            .args(["--format", "json", "--dump-hres"])
            .arg(&dump)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["layout"], "deepseek-v4", "{file}");
        verdicts.push((json["verdict"].clone(), json["whole_model"].clone()));
        dumps.push(std::fs::read(&dump).unwrap());
    }
    assert_eq!(dumps[0], dumps[1]);
    assert_eq!(verdicts[0], verdicts[1]);
}

// ---------------------------------------------------------------------------------------------
// What users read (issue 17): the figure, forced layouts, sublayer order, numbers near 1.

#[test]
fn the_audit_figure_of_values_near_one_shows_their_distance_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    audit()
        .arg(data("checkpoints/hres.safetensors"))
        .args(["--key", "hres", "--out"])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(out.join("audit.svg")).unwrap();
    // The title names the file, not the machine's path.
    assert!(svg.contains("Audit of hres.safetensors"));
    assert!(!svg.contains(env!("CARGO_MANIFEST_DIR")));
    // Gain − 1 on a linear axis, never a log axis whose ticks all read 10⁰.
    assert!(svg.contains("Amax gain − 1"));
    assert!(svg.matches("10⁰").count() < 2, "repeated 10⁰ ticks");
    // The threshold is stated (off the scale of values within 3e-7 of 1).
    assert!(svg.contains("--max-gain 2"));
    // An HC model's figure draws the threshold line on a log axis.
    let hc = dir.path().join("hc");
    audit()
        .arg(data("checkpoints/lucidrains_hc_24.safetensors"))
        .arg("--out")
        .arg(&hc)
        .assert()
        .code(1);
    let svg = std::fs::read_to_string(hc.join("audit.svg")).unwrap();
    assert!(svg.contains("--max-gain 2"));
    assert!(!svg.contains("Amax gain − 1"));
}

#[test]
fn a_layout_the_file_contradicts_is_refused_unless_told_to_ignore_the_evidence() {
    let path = data("checkpoints/lucidrains_hc_24.safetensors");
    let output = audit()
        .arg(&path)
        .args(["--layout", "lucidrains-mhc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1);
    assert!(stderr.contains("dynamic_alpha_scale") && stderr.contains("--ignore-evidence"));
    let output = audit()
        .arg(&path)
        .args([
            "--layout",
            "lucidrains-mhc",
            "--ignore-evidence",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        json["ignored_evidence"]
            .as_str()
            .unwrap()
            .contains("dynamic_alpha_scale")
    );
    let table = audit()
        .arg(&path)
        .args(["--layout", "lucidrains-mhc", "--ignore-evidence"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("forced against the file's evidence with --ignore-evidence"));
}

#[test]
fn two_modules_per_block_need_their_order_stated_or_recorded() {
    let safetensors = data("checkpoints/two_modules.safetensors");
    let output = audit().arg(&safetensors).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--sublayer-order"), "{stderr}");
    let stated = audit()
        .arg(&safetensors)
        .args(["--sublayer-order", "mixer,ffn", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(stated.status.code(), Some(0));
    let recorded = audit()
        .arg(data("checkpoints/two_modules.pt"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(recorded.status.code(), Some(0));
    let [stated, recorded]: [serde_json::Value; 2] =
        [stated, recorded].map(|o| serde_json::from_slice(&o.stdout).unwrap());
    assert_eq!(stated["whole_model"], recorded["whole_model"]);
    assert_eq!(stated["tensors"], recorded["tensors"]);
}

#[test]
fn numbers_near_one_show_their_distance_and_one_token_shows_one_column() {
    let capture = audit()
        .arg(data("checkpoints/hres.safetensors"))
        .args(["--key", "hres"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&capture.stdout);
    assert!(table.contains("1 + 2.6e-7"), "{table}");
    assert!(!table.contains("1.000000"), "{table}");
    let static_h = audit()
        .arg(data("checkpoints/checkpoint.safetensors"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&static_h.stdout);
    assert!(table.contains("value"), "{table}");
    assert!(!table.contains("max over tokens  "), "{table}");
    assert!(table.contains("worst layers by single-layer Amax gain, the larger of"));
}

#[test]
fn a_negative_threshold_is_a_value_not_a_flag() {
    for value in ["-1", "0"] {
        audit()
            .arg(data("checkpoints/checkpoint.safetensors"))
            .args(["--max-gain", value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "max-gain must be a positive finite number, got {value}"
            )));
    }
}

/// A metric that has no value for HC's matrices (mixing entropy of rows with negative entries)
/// is written as "nan" and said so in the notes of every rendering; mHC's audit has no such note.
#[test]
fn an_undefined_metric_is_explained_in_the_notes() {
    let json = audit()
        .arg(data("checkpoints/dynamic_hc.safetensors"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["whole_model"]["mixing_entropy"]["mean"], "nan");
    let notes: Vec<&str> = document["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("mixing_entropy has no value (nan)") && n.contains("negative")),
        "{notes:?}"
    );
    let table = audit()
        .arg(data("checkpoints/dynamic_hc.safetensors"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("note: mixing_entropy has no value"));
    let mhc = audit()
        .arg(data("checkpoints/checkpoint.safetensors"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&mhc.stdout).contains("has no value"));
}
