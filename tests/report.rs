//! `mhc-analyze report`: experiment files (good and bad), the LaTeX and Markdown table writers
//! (insta snapshots), and small experiments end to end through the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use mhc_analyze::export::latex::table_latex;
use mhc_analyze::export::markdown::{Align, Cell, Table, table_markdown};
use mhc_analyze::report::{Experiment, ExperimentKind, Spec};
use predicates::prelude::*;

/// A complete `gain` experiment; `extra` is appended (TOML lines).
fn gain_experiment(seeds: u64, extra: &str) -> String {
    format!(
        r#"kind = "gain"
title = "A small HC vs mHC run"
layers = 12
streams = 4
tokens = 1
seeds = {seeds}
seed = 7
identity_weight = 1.0
logit_std = 0.3
shared_std = 0.0
sinkhorn_iters = 20
sinkhorn_order = "columns-then-rows"
token_aggregation = "mean-of-metrics"
{extra}"#
    )
}

fn parse(text: &str) -> Result<Experiment, String> {
    Experiment::parse(Path::new("experiments/small.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn shipped_experiment_files_parse() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let experiment =
                Experiment::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            kinds.push(experiment.kind());
        }
    }
    kinds.sort();
    // One shipped file of each kind.
    assert_eq!(kinds, ExperimentKind::ALL);
}

/// The smallest file of each kind: `kind`, `title` and the keys the kind requires, nothing
/// else. The match has no catch-all arm, so a new kind needs one here too.
fn minimal_experiment(kind: ExperimentKind) -> String {
    let body = match kind {
        ExperimentKind::Gain => "",
        ExperimentKind::SinkhornSweep => "[grid]\nsinkhorn_iters = [1, 20]\nlogit_scale = [1.0]\n",
        ExperimentKind::DepthSweep => "[grid]\nlayers = [1, 3]\nstreams = [2]\n",
        ExperimentKind::Heatmaps => "single = [2]\n",
        ExperimentKind::CheckpointAudit => {
            "[[model]]\nname = \"m\"\nlabel = \"M\"\npath = \"../tests/data/checkpoints/checkpoint.safetensors\"\n"
        }
        ExperimentKind::Training => {
            "[[run]]\nname = \"r\"\nlabel = \"R\"\ncheckpoints = [\"data/training/hc_step0.safetensors\", \"data/training/hc_step50.safetensors\"]\n"
        }
    };
    format!("kind = \"{kind}\"\ntitle = \"Minimal {kind}\"\n{body}")
}

/// Issue 16 §4 and 17.7: every kind has its own parser (a file of one kind never parses as
/// another), and a file with only the required keys runs: every other key takes `gain`'s
/// default, as the README says.
#[test]
fn a_minimal_file_of_every_kind_parses_as_that_kind_and_runs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join("minimal.toml");
    for kind in ExperimentKind::ALL {
        let text = minimal_experiment(kind);
        let experiment =
            Experiment::parse(&path, &text).unwrap_or_else(|e| panic!("{kind}: {e}\n{text}"));
        assert_eq!(experiment.kind(), kind, "parsed by its own parser");
        let report = mhc_analyze::report::run(&experiment, &mut |_| {})
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(!report.headline.is_empty() && !report.figures.is_empty());
        let bundle = mhc_analyze::report::render(
            &experiment,
            &report,
            "mhc-analyze report minimal.toml",
            std::time::Instant::now(),
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(bundle.files.iter().any(|(name, _)| name == "report.md"));
        if kind == ExperimentKind::Gain {
            let Spec::Gain(spec) = experiment.spec() else {
                unreachable!()
            };
            let defaults = mhc_analyze::analysis::GainParams::default();
            assert_eq!(
                (
                    spec.config.layers(),
                    spec.config.streams(),
                    spec.config.seeds()
                ),
                (defaults.layers, defaults.streams, defaults.seeds),
                "gain's defaults"
            );
        }
    }
}

#[test]
fn a_good_gain_file_gives_its_parameters() {
    let experiment = parse(&gain_experiment(5, "")).unwrap();
    assert_eq!(experiment.name(), "small");
    assert_eq!(experiment.title(), "A small HC vs mHC run");
    assert_eq!(experiment.work_units(), 5);
    let Spec::Gain(spec) = experiment.spec() else {
        panic!("kind gain parsed as {}", experiment.kind());
    };
    assert_eq!(spec.config.layers(), 12);
    assert_eq!(spec.config.streams(), 4);
    assert_eq!(spec.config.seeds(), 5);
    assert_eq!(spec.config.seed(), 7);
}

#[test]
fn bad_files_name_the_line_and_the_key() {
    let cases: [(String, &str); 7] = [
        (
            gain_experiment(5, "bogus = 1\n"),
            "line 14: unknown field 'bogus'",
        ),
        (
            gain_experiment(5, "").replace("layers = 12", "layers = \"x\""),
            "line 3: key 'layers': invalid type",
        ),
        (
            gain_experiment(5, "").replace("layers = 12", "layers = 0"),
            "line 3: layers must be at least 1, got 0",
        ),
        (
            gain_experiment(5, "").replace("logit_std = 0.3", "logit_std = -1.0"),
            "line 9: logit_std must be a finite number ≥ 0, got -1",
        ),
        (
            gain_experiment(5, "").replace("\"columns-then-rows\"", "\"rows\""),
            "line 12: key 'sinkhorn_order': unknown variant 'rows'",
        ),
        (
            gain_experiment(5, "").replace("title = \"A small HC vs mHC run\"\n", ""),
            "missing field 'title'",
        ),
        (
            gain_experiment(5, "").replace("kind = \"gain\"", "kind = \"gainz\""),
            "line 1: unknown kind 'gainz'",
        ),
    ];
    for (text, expected) in cases {
        let message = parse(&text).expect_err(expected);
        assert!(
            message.contains("small.toml") && message.contains(expected),
            "expected '{expected}' in: {message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn a_file_without_kind_or_with_broken_toml_is_rejected() {
    let message = parse("title = \"t\"\n").unwrap_err();
    assert!(message.contains("kind"), "{message}");
    let message = parse("kind = \"gain\"\n[[\n").unwrap_err();
    assert!(message.contains("line 2"), "{message}");
}

/// A table that exercises every cell kind, alignment, a rule and LaTeX specials.
fn sample_table() -> Table {
    let mut table = Table::new(
        "Gains of H_L⋯H_1 over 1000 seeds: median [5 %, 95 %] & σ₂",
        "sample-gains",
        vec!["quantity".into(), "HC".into(), "mHC".into(), "note".into()],
    );
    table.align = vec![Align::Left, Align::Right, Align::Right, Align::Center];
    table.push_row(vec![
        Cell::text("amax_forward"),
        Cell::interval(407.3, 11.31, 9829.4, 3),
        Cell::interval(1.0, 1.0, 1.0, 3),
        Cell::text("x_{l+1} = H x_l"),
    ]);
    table.push_rule();
    table.push_row(vec![
        Cell::text("σ₂ (stream collapse)"),
        Cell::number(2.6871, 3),
        Cell::number(5.92e-17, 3),
        Cell::Empty,
    ]);
    table.push_row(vec![
        Cell::text("overflow | 100% # $"),
        Cell::number(f64::INFINITY, 3),
        Cell::number(21_000.0, 2),
        Cell::text("a_b"),
    ]);
    table
        .notes
        .push("Percentiles are numpy's linear ones.".into());
    table
}

#[test]
fn markdown_table_snapshot() {
    insta::assert_snapshot!(table_markdown(&sample_table()));
}

#[test]
fn latex_table_snapshot() {
    let latex = table_latex(&sample_table());
    assert!(latex.contains("\\toprule") && latex.contains("\\midrule"));
    assert!(latex.contains("\\bottomrule"));
    insta::assert_snapshot!(latex);
}

fn report() -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("mhc-analyze");
    cmd.arg("report");
    cmd
}

/// Every file of `folder` with its bytes.
fn folder_bytes(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// manifest.json without its wall time, the one value allowed to differ between runs.
fn manifest_without_wall_time(bytes: &[u8]) -> serde_json::Value {
    let mut manifest: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let object = manifest.as_object_mut().unwrap();
    assert!(
        object.remove("wall_time_seconds").is_some(),
        "manifest has wall_time_seconds"
    );
    manifest
}

fn write_experiment(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_small_gain_experiment_end_to_end_is_reproducible_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small.toml", &gain_experiment(6, ""));
    // Regenerate into the same folder (the command in report.md names it), 1 then 2 threads.
    let out = dir.path().join("small");
    let mut runs = Vec::new();
    for threads in ["1", "2"] {
        report()
            .arg(&file)
            .args(["--threads", threads, "--quiet", "--out"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains("HC's whole-model forward gain"));
        runs.push(folder_bytes(&out));
    }
    let (a, b) = (&runs[0], &runs[1]);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same files"
    );
    for expected in [
        "report.md",
        "manifest.json",
        "gain.csv",
        "amax.png",
        "amax.svg",
        "table-summary.tex",
        "table-summary.md",
    ] {
        assert!(
            a.contains_key(expected),
            "{expected} missing: {:?}",
            a.keys()
        );
    }
    assert!(
        !a.keys().any(|name| name.ends_with(".tmp")),
        "temporary files left"
    );
    for (name, bytes) in a {
        if name == "manifest.json" {
            assert_eq!(
                manifest_without_wall_time(bytes),
                manifest_without_wall_time(&b[name])
            );
        } else {
            assert!(bytes == &b[name], "{name} differs between 1 and 2 threads");
        }
    }
    let markdown = String::from_utf8(a["report.md"].clone()).unwrap();
    assert!(markdown.contains("![Figure 1"), "figure embedded");
    assert!(markdown.contains("| quantity"), "table embedded");
    assert!(
        markdown.contains("mhc-analyze report"),
        "command to regenerate"
    );
    let csv = String::from_utf8(a["gain.csv"].clone()).unwrap();
    assert!(csv.starts_with("method,composite,layer,metric,stat,value\n"));
    let manifest: serde_json::Value = serde_json::from_slice(&a["manifest.json"]).unwrap();
    assert_eq!(
        manifest["experiment"]["sha256"],
        mhc_analyze::report::experiment::sha256_hex(&std::fs::read(&file).unwrap())
    );
    let tex = String::from_utf8(a["table-summary.tex"].clone()).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"));
}

#[test]
fn report_all_indexes_every_experiment_with_a_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = dir.path().join("experiments");
    std::fs::create_dir(&experiments).unwrap();
    write_experiment(&experiments, "one.toml", &gain_experiment(3, ""));
    write_experiment(
        &experiments,
        "two.toml",
        &gain_experiment(2, "").replace("layers = 12", "layers = 6"),
    );
    let out = dir.path().join("reports");
    report()
        .args(["--all", "--quiet", "--experiments"])
        .arg(&experiments)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let index = std::fs::read_to_string(out.join("README.md")).unwrap();
    for name in ["one", "two"] {
        assert!(out.join(name).join("report.md").is_file());
        assert!(
            index.contains(&format!("{name}/report.md"))
                && index.contains(&format!("{name}/amax.png")),
            "index links {name}: {index}"
        );
    }
}

#[test]
fn a_bad_experiment_is_a_usage_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(
        dir.path(),
        "bad.toml",
        &gain_experiment(3, "").replace("seeds = 3", "seeds = 0"),
    );
    let out = dir.path().join("out");
    report()
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.toml: line 6: seeds must be at least 1",
        ))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    assert!(!out.exists(), "nothing written");
    report()
        .arg(dir.path().join("missing.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}

/// Issue 17.7: `report --all` outside the repository says how to name the experiments folder.
#[test]
fn report_all_outside_the_repository_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    report()
        .current_dir(dir.path())
        .args(["--all", "--quiet"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("experiments: no such folder"))
        .stderr(predicate::str::contains("pass --experiments DIR"));
}
