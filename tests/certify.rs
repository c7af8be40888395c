//! `audit --probe` and `audit --certify` through the binary: the interval [lower, upper] against
//! real captures of the same checkpoints, DeepSeek-V4 in every container, useless bounds said
//! plainly, and parameters-only options refused on stacks.

use std::path::PathBuf;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// `audit ARGS --format json`: the exit code and the document.
fn audit_json(args: &[&str]) -> (i32, Value) {
    let output = cargo_bin_cmd!("mhc-analyze")
        .arg("audit")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let code = output.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (code, serde_json::from_slice(&output.stdout).unwrap())
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap()
}

/// The largest whole-model gains over a real capture's tokens.
fn captured_max(capture: &str) -> [f64; 2] {
    let (_, json) = audit_json(&[data(capture).to_str().unwrap()]);
    ["amax_forward", "amax_backward"].map(|m| number(&json["whole_model"][m]["max"]))
}

#[test]
fn certificates_cover_the_real_captures_of_the_same_checkpoints() {
    for (checkpoint, capture, expected_code, verdict) in [
        (
            "checkpoints/checkpoint.safetensors",
            "checkpoints/hres.npy",
            0,
            "certified stable",
        ),
        (
            "captures/lucidrains_hc.safetensors",
            "captures/lucidrains_hc_hres.safetensors",
            1,
            "unstable",
        ),
    ] {
        let (code, json) = audit_json(&[
            data(checkpoint).to_str().unwrap(),
            "--certify",
            "--probe",
            "300",
        ]);
        assert_eq!(code, expected_code, "{checkpoint}");
        let certificate = &json["certificate"];
        assert_eq!(certificate["verdict"], verdict, "{checkpoint}");
        let captured = captured_max(capture);
        for (k, metric) in ["amax_forward", "amax_backward"].iter().enumerate() {
            let whole = &certificate["whole_model"][metric];
            let (lower, upper) = (number(&whole["lower"]), number(&whole["upper"]));
            assert!(
                upper >= captured[k],
                "{checkpoint} {metric}: upper {upper} below the capture's {}",
                captured[k]
            );
            assert!(lower <= upper, "{checkpoint} {metric}: {lower} > {upper}");
            // The lower bound is at least what the probe's tokens reached.
            assert!(lower >= number(&json["whole_model"][metric]["max"]));
        }
        // Every layer and composite has its interval.
        let per_layer = certificate["per_layer"].as_array().unwrap();
        assert_eq!(per_layer.len(), 12);
        for layer in per_layer {
            for composite in ["single", "prefix", "suffix"] {
                for metric in ["amax_forward", "amax_backward"] {
                    let g = &layer[composite][metric];
                    assert!(number(&g["lower"]) <= number(&g["upper"]), "{checkpoint}");
                }
            }
        }
        assert!(!certificate["assumptions"].as_array().unwrap().is_empty());
    }
}

#[test]
fn deepseek_v4_gives_the_same_three_answers_in_every_container() {
    let files = [
        "checkpoints/deepseek_v4.safetensors",
        "checkpoints/deepseek_v4_sharded/model.safetensors.index.json",
        "checkpoints/deepseek_v4.gguf",
    ];
    let answers: Vec<[Value; 3]> = files
        .iter()
        .map(|file| {
            let path = data(file);
            let path = path.to_str().unwrap();
            let (_, static_json) = audit_json(&[path]);
            let (_, probe_json) = audit_json(&[path, "--probe", "64", "--probe-seed", "3"]);
            let (_, certified) = audit_json(&[path, "--certify"]);
            assert_eq!(static_json["layout"], "deepseek-v4", "{file}");
            assert_eq!(probe_json["tokens_from"], "probe");
            assert_eq!(probe_json["tokens"], 64);
            [
                static_json["whole_model"].clone(),
                probe_json["whole_model"].clone(),
                certified["certificate"]["whole_model"].clone(),
            ]
        })
        .collect();
    assert_eq!(answers[0], answers[1], "sharded safetensors");
    assert_eq!(answers[0], answers[2], "GGUF");
}

#[test]
fn the_probe_is_seeded_and_says_so() {
    let path = data("checkpoints/checkpoint.safetensors");
    let path = path.to_str().unwrap();
    let run = |threads: &str, seed: &str| {
        let output = cargo_bin_cmd!("mhc-analyze")
            .args(["audit", path, "--probe", "200", "--probe-seed", seed])
            .args(["--threads", threads, "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        output.stdout
    };
    let one = run("1", "7");
    assert_eq!(run("2", "7"), one);
    assert_ne!(run("2", "8"), one);
    let json: Value = serde_json::from_slice(&one).unwrap();
    let notes = json["notes"].to_string();
    assert!(notes.contains("synthetic hidden states") && notes.contains("--probe-seed 7"));
}

#[test]
fn a_useless_upper_bound_is_said_plainly() {
    let output = cargo_bin_cmd!("mhc-analyze")
        .arg("audit")
        .arg(data("checkpoints/mhc_pytorch.safetensors"))
        .arg("--certify")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("USELESS: only the structural cap n"),
        "{table}"
    );
    assert!(
        table.contains("trust the lower bound and the probe"),
        "{table}"
    );
    assert!(
        table.contains("verdict (certificate): not certified"),
        "{table}"
    );
}

#[test]
fn probes_and_certificates_need_parameters() {
    for flag in ["--certify", "--probe"] {
        let mut cmd = cargo_bin_cmd!("mhc-analyze");
        cmd.arg("audit").arg(data("checkpoints/hres.npy")).arg(flag);
        if flag == "--probe" {
            cmd.arg("10");
        }
        let output = cmd.output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1);
        assert!(
            stderr.contains("no parameters to compute per-token H_res from"),
            "{stderr}"
        );
    }
}
