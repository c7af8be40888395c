//! Per-token audits: statistics over the tokens of a captured stack against an independent numpy
//! computation, results independent of chunking and threads, streamed formats, and bad captures.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use mhc_analyze::analysis::{AuditConfig, Audited, Layer, Stat, audit};
use mhc_analyze::compose::Composite;
use mhc_analyze::load::LoadOptions;
use mhc_analyze::load::input::{TokenOrigin, open_audit_input};
use mhc_analyze::metrics::Metric;
use serde_json::Value;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn audit_cmd() -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("mhc-analyze");
    cmd.arg("audit");
    cmd
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-12 * theirs.abs() + 1e-14
}

/// Every statistic over tokens of 11 metrics of every single, prefix and suffix composite of a
/// real HC capture, and the worst tokens, against `tests/data/make_reference.py` (numpy,
/// `numpy.percentile` linear; section 6).
#[test]
fn token_statistics_match_numpy() {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(data("reference/token_statistics.json")).unwrap())
            .unwrap();
    let path = data(reference["capture"].as_str().unwrap());
    let input = open_audit_input(&path, &LoadOptions::default()).unwrap();
    assert_eq!(input.provenance.origin, TokenOrigin::Stored);
    let capture = input
        .provenance
        .capture
        .as_ref()
        .expect("companion metadata");
    assert_eq!(capture.modules.len(), 12);
    let result = audit(
        input.tokens.as_ref(),
        &AuditConfig::default(),
        |_| Ok(()),
        |_| {},
    )
    .unwrap();
    let results = result.results();
    assert_eq!(results.draws(), 32);
    let mut compared = 0;
    for cell in reference["cells"].as_array().unwrap() {
        let composite = match cell["composite"].as_str().unwrap() {
            "single" => Composite::Single,
            "prefix" => Composite::Prefix,
            _ => Composite::Suffix,
        };
        let layer = Layer::new(cell["layer"].as_u64().unwrap() as usize).unwrap();
        let metric = Metric::from_name(cell["metric"].as_str().unwrap()).unwrap();
        for stat in Stat::OVER_TOKENS {
            let theirs = cell[stat.name()].as_f64().unwrap();
            let ours = results.get(Audited::Stack, composite, layer, metric, stat);
            assert!(
                close(ours, theirs),
                "{composite:?} {layer} {metric:?} {stat:?}: ours {ours}, numpy {theirs}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 12 * 3 * 11 * 6);
    for worst in &result.tokens.worst_tokens {
        let expected = &reference["worst_tokens"][worst.metric.name()];
        let expected: Vec<(u64, f64)> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["token"].as_u64().unwrap(), e["value"].as_f64().unwrap()))
            .collect();
        assert_eq!(worst.tokens.len(), expected.len());
        for ((token, value), (t, v)) in worst.tokens.iter().zip(&expected) {
            assert_eq!(token, t, "{:?}", worst.metric);
            assert!(close(*value, *v));
        }
    }
    // HC grows: the capture is unstable at the default threshold.
    assert_eq!(result.verdict, mhc_analyze::analysis::Verdict::Unstable);
}

fn audit_json(path: &Path, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let status = audit_cmd()
        .arg(path)
        .args(["--out", out.to_str().unwrap(), "--per-token", "-q"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        matches!(status.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let json = std::fs::read(out.join("audit.json")).unwrap();
    let per_token = std::fs::read(out.join("audit_per_token.csv")).unwrap();
    [json, per_token].concat()
}

#[test]
fn audit_json_is_the_same_for_any_chunk_size_and_thread_count() {
    let path = data("captures/lucidrains_hc_hres.safetensors");
    let reference = audit_json(&path, &["--threads", "1"]);
    for extra in [
        &["--chunk-tokens", "1", "--threads", "2"][..],
        &["--chunk-tokens", "5", "--threads", "3"],
        &["--chunk-tokens", "32"],
        &["--chunk-tokens", "1000", "--threads", "2"],
    ] {
        assert!(audit_json(&path, extra) == reference, "{extra:?}");
    }
}

/// The same capture as a C-order `.npy`, a Fortran-order `.npy`, a stored and a deflated `.npz`
/// member and a safetensors file: the same statistics (the stack is streamed from each).
#[test]
fn every_container_streams_the_same_tokens() {
    use ndarray_npy::{NpzWriter, WriteNpyExt};
    let array = mhc_analyze::generate::read_logits_npy(&data("checkpoints/hres.npy"))
        .unwrap()
        .into_dimensionality::<ndarray::Ix4>()
        .unwrap()
        .mapv(|x| x as f32);
    let dir = tempfile::tempdir().unwrap();
    let c_order = dir.path().join("c.npy");
    array
        .write_npy(std::fs::File::create(&c_order).unwrap())
        .unwrap();
    let fortran = dir.path().join("f.npy");
    array
        .t()
        .as_standard_layout()
        .reversed_axes()
        .write_npy(std::fs::File::create(&fortran).unwrap())
        .unwrap();
    let stored = dir.path().join("stored.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&stored).unwrap());
    npz.add_array("hres", &array).unwrap();
    npz.finish().unwrap();
    let deflated = dir.path().join("deflated.npz");
    let mut npz = NpzWriter::new_compressed(std::fs::File::create(&deflated).unwrap());
    npz.add_array("hres", &array).unwrap();
    npz.finish().unwrap();
    let whole_model = |path: &Path, extra: &[&str]| -> Value {
        let output = audit_cmd()
            .arg(path)
            .args(["--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["tokens"], 32);
        json["whole_model"].clone()
    };
    let reference = whole_model(&c_order, &[]);
    assert_eq!(whole_model(&fortran, &[]), reference);
    assert_eq!(whole_model(&stored, &[]), reference);
    assert_eq!(whole_model(&deflated, &[]), reference);
    assert_eq!(
        whole_model(&data("checkpoints/hres.safetensors"), &["--key", "hres"]),
        reference
    );
}

fn fails_with(path: &Path, extra: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = audit_cmd()
        .arg(path)
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", path.display());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "expected '{part}' in {stderr}");
    }
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn bad_captures_fail_with_one_line_and_leave_nothing() {
    // NaN at token 5 of layer 3 (found while streaming, after the output directory was checked).
    fails_with(
        &data("bad/nan_layer3_token5.npy"),
        &[],
        &["nan_layer3_token5.npy", "layer 3, token 5"],
    );
    let dir = tempfile::tempdir().unwrap();
    // A truncated capture: the header promises more than the file holds.
    let bytes = std::fs::read(data("checkpoints/hres.npy")).unwrap();
    let truncated = dir.path().join("truncated.npy");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    fails_with(&truncated, &[], &["truncated.npy", "truncated file?"]);
    // Companion metadata that contradicts the tensor.
    let capture = data("captures/lucidrains_hc_hres.safetensors");
    let source = mhc_analyze::load::open(&capture).unwrap();
    let values = source.read_f64("hres").unwrap().mapv(|x| x as f32);
    let mut metadata = source.metadata().clone();
    metadata.insert("tokens".to_string(), "33".to_string());
    let raw: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        values.shape().to_vec(),
        &raw,
    )
    .unwrap();
    let bytes =
        safetensors::serialize([("hres", view)], Some(metadata.into_iter().collect())).unwrap();
    let lying = dir.path().join("lying.safetensors");
    std::fs::write(&lying, bytes).unwrap();
    fails_with(
        &lying,
        &[],
        &[
            "lying.safetensors",
            "tokens = '33', but the tensor has 32 tokens",
        ],
    );
}

#[test]
fn a_capture_needs_no_flags_and_shows_its_modules() {
    let output = audit_cmd()
        .arg(data("captures/lucidrains_mhc_fixture_hres.safetensors"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("32 tokens"), "{table}");
    assert!(table.contains("captured by mhc_capture"), "{table}");
    assert!(
        table.contains("worst tokens by whole-model amax_backward"),
        "{table}"
    );
    for stat in ["median over tokens", "p99 over tokens", "max over tokens"] {
        assert!(table.contains(stat), "{table}");
    }
}
