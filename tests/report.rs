//! `mhc-analyze report`: experiment files (good and bad), the LaTeX and Markdown table writers
//! (insta snapshots), and small experiments end to end through the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use mhc_analyze::analysis::{GainConfig, Layer, Method, run_gain};
use mhc_analyze::compose::Composite;
use mhc_analyze::export::latex::table_latex;
use mhc_analyze::export::markdown::{Align, Cell, Table, cell_markdown, table_markdown};
use mhc_analyze::export::table::format_significant;
use mhc_analyze::metrics::Metric;
use mhc_analyze::report::{Experiment, ExperimentKind, FigureData, Report, Spec};
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
            .stdout(predicate::str::contains("HC's whole-model Amax gain"));
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

/// Every piece of text a report shows above its "Reproduce" section: headline, paragraphs,
/// figure titles, labels and captions, table captions, headers, cells and notes, data notes.
fn report_text(report: &Report) -> String {
    let mut parts = vec![report.headline.clone()];
    parts.extend(report.summary.iter().cloned());
    for figure in &report.figures {
        parts.push(figure.caption.clone());
        if let FigureData::Line(line) = &figure.figure {
            parts.push(line.title.clone());
            parts.extend(line.subtitle.iter().cloned());
            for panel in &line.panels {
                parts.extend([
                    panel.title.clone(),
                    panel.x_label.clone(),
                    panel.y_label.clone(),
                ]);
                parts.extend(panel.series.iter().map(|s| s.label.clone()));
            }
        }
    }
    for table in &report.tables {
        let table = &table.table;
        parts.push(table.caption.clone());
        parts.extend(table.header.iter().cloned());
        parts.extend(table.rows.iter().flatten().map(cell_markdown));
        parts.extend(table.notes.iter().cloned());
    }
    parts.extend(report.data.iter().map(|d| d.description.clone()));
    parts.join("\n")
}

/// The numbers written in `text` as tokens: maximal runs of digits and dots.
fn number_tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The row of `table` whose first cell is `label`.
fn row<'a>(report: &'a Report, table: &str, label: &str) -> &'a [Cell] {
    let table = &report
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("no {table}"))
        .table;
    table
        .rows
        .iter()
        .find(|r| r[0] == Cell::text(label))
        .unwrap_or_else(|| panic!("no row '{label}' in {}", table.caption))
}

/// The centre (median) of an interval cell.
fn centre(cell: &Cell) -> f64 {
    match cell {
        Cell::Interval { centre, .. } => *centre,
        other => panic!("not an interval: {other:?}"),
    }
}

fn run_report(text: &str) -> (Experiment, Report) {
    let experiment = parse(text).unwrap();
    let report = mhc_analyze::report::run(&experiment, &mut |_| {}).unwrap();
    (experiment, report)
}

/// What a report of an experiment that does not have the paper's shape must not say: the
/// paper's depth (60 H_res, Π1..60, 30 blocks × 2), its 27B model or its headline values.
fn assert_no_paper_shape(report: &Report) {
    let shown = report_text(report);
    assert_citations_resolve(&shown);
    for banned in [
        "Π1..",
        "27B",
        "blocks × 2",
        "≈ 3000",
        "≈ 1.6",
        "paper's depth",
    ] {
        assert!(!shown.contains(banned), "'{banned}' in:\n{shown}");
    }
    for token in number_tokens(&shown) {
        assert!(!["60", "3000"].contains(&token), "{token} in:\n{shown}");
    }
}

/// The section numbers of docs/theory.md: "5" from "## 5. Title", "5.1" from "### 5.1 Title".
fn theory_sections() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/theory.md");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("## ").or(line.strip_prefix("### ")))
        .filter_map(|title| title.split_whitespace().next())
        .map(|number| number.trim_end_matches('.').to_string())
        .filter(|number| number.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

/// Every citation in `shown` resolves inside the repository: each `docs/…` file it names exists,
/// and each `§` cites a section of docs/theory.md that exists, right after the file's name
/// ("docs/theory.md §2.3") or in a list that starts there ("docs/theory.md §3.4, §5.3"). A section
/// of a document the repository does not carry (no file named, or another one) fails.
fn assert_citations_resolve(shown: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (at, _) in shown.match_indices("docs/") {
        let name: String = shown[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "_-./".contains(*c))
            .collect();
        let name = name.trim_end_matches('.');
        assert!(
            root.join(name).is_file(),
            "{name} is not in the repository:\n{shown}"
        );
    }
    let sections = theory_sections();
    // Where the previous cited section ended, if it was one of docs/theory.md's.
    let mut list_end = None;
    for (at, mark) in shown.match_indices('§') {
        let before = &shown[..at];
        let in_theory = before.ends_with("docs/theory.md ")
            || list_end.is_some_and(|end| &shown[end..at] == ", ");
        let number: String = shown[at + mark.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        assert!(
            in_theory && sections.iter().any(|s| s == number),
            "§{number} does not cite a section of docs/theory.md:\n{shown}"
        );
        list_end = Some(at + mark.len() + number.len());
    }
}

#[test]
fn the_committed_reports_cite_only_what_the_repository_carries() {
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut checked = 0;
    for entry in std::fs::read_dir(&reports).unwrap() {
        let report = entry.unwrap().path().join("report.md");
        if report.is_file() {
            assert_citations_resolve(&std::fs::read_to_string(&report).unwrap());
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "{checked} reports found in {}",
        reports.display()
    );
}

/// `median 407 (5–95 %: 11.3–9829)`: an interval cell as the prose writes it.
fn spread_text(cell: &Cell) -> String {
    match cell {
        Cell::Interval {
            centre, low, high, ..
        } => format!(
            "median {} (5–95 %: {}–{})",
            format_significant(*centre, 3),
            format_significant(*low, 3),
            format_significant(*high, 3)
        ),
        other => panic!("not an interval: {other:?}"),
    }
}

/// The value of a number cell.
fn value(cell: &Cell) -> f64 {
    match cell {
        Cell::Number { value, .. } => *value,
        other => panic!("not a number: {other:?}"),
    }
}

/// The table named `name`.
fn table<'a>(report: &'a Report, name: &str) -> &'a Table {
    &report
        .tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .table
}

/// The column of `table` whose header is `header`.
fn column(table: &Table, header: &str) -> usize {
    table
        .header
        .iter()
        .position(|h| h == header)
        .unwrap_or_else(|| panic!("no column '{header}' in {:?}", table.header))
}

/// The text after `prefix` in `text` up to the next `end`.
fn between<'a>(text: &'a str, prefix: &str, end: &str) -> &'a str {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no '{prefix}' in: {text}"))
        + prefix.len();
    let rest = &text[start..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// Issue 17.2: a small, non-default `gain` experiment speaks only of its own parameters and
/// numbers (no 60 layers, Π1..60 or 27B model), and its sentences quote its tables.
#[test]
fn a_small_gain_report_says_only_what_its_own_numbers_say() {
    let text = gain_experiment(5, "")
        .replace("layers = 12", "layers = 8")
        .replace("logit_std = 0.3", "logit_std = 0.5");
    let (_, report) = run_report(&text);
    assert_no_paper_shape(&report);
    assert!(
        !report.tables.iter().any(|t| t.name == "table-paper"),
        "no paper comparison at another shape"
    );
    let shown = report_text(&report);
    assert!(shown.contains("8-layer stacks") && shown.contains("logits I + 0.5·G (master seed 7)"));
    assert!(
        !shown.contains("logits logits"),
        "the generator is described once: {shown}"
    );
    // The headline and the paragraph quote Table 1, row by row.
    let whole_larger = row(
        &report,
        "table-summary",
        "whole model: larger of amax_forward and amax_backward, per seed",
    );
    assert!(
        report
            .headline
            .contains(&format!("has {}", spread_text(&whole_larger[1]))),
        "{}",
        report.headline
    );
    let paragraph = &report.summary[0];
    for (label, before) in [
        ("whole model: amax_forward", "forward Amax gain "),
        ("whole model: amax_backward", "backward gain "),
        (
            "whole model: larger of amax_forward and amax_backward, per seed",
            "per seed the larger of the two has ",
        ),
        (
            "peak over l: larger of the two composite curves, per seed",
            "amax_backward(H_L⋯H_l), has ",
        ),
        (
            "peak over l: larger single-layer gain, per seed",
            "in either direction has ",
        ),
    ] {
        let quoted = format!(
            "{before}{}",
            spread_text(&row(&report, "table-summary", label)[1])
        );
        assert!(paragraph.contains(&quoted), "'{quoted}' in: {paragraph}");
    }
}

/// Issue 17.2 for one seed: no percentiles, no "for every seed", and the value itself quoted.
#[test]
fn a_one_seed_gain_report_quotes_its_one_value() {
    let text = gain_experiment(1, "").replace("layers = 12", "layers = 3");
    let (_, report) = run_report(&text);
    assert_no_paper_shape(&report);
    let shown = report_text(&report);
    assert!(
        !shown.contains("every seed") && !shown.contains("1 seeds"),
        "{shown}"
    );
    assert!(report.headline.starts_with("For one 3-layer stack (n = 4)"));
    let whole = row(
        &report,
        "table-summary",
        "whole model: larger of amax_forward and amax_backward, per seed",
    );
    let quoted = format!(
        "per seed the larger of forward and backward, has {};",
        format_significant(centre(&whole[1]), 3)
    );
    assert!(report.headline.contains(&quoted), "{}", report.headline);
}

/// Each seed's largest value over layers of `curves`, read from the per-layer values of a run
/// (independent of the peaks the library keeps), then the per-seed larger of the curves.
fn per_seed_larger(config: &GainConfig, curves: &[(Composite, Metric)]) -> Vec<f64> {
    let layout = config.row_layout();
    let layers = config.layers();
    let mut larger = Vec::new();
    run_gain(
        config,
        |_, values| {
            let mut best = f64::NEG_INFINITY;
            for &(composite, metric) in curves {
                for layer in Layer::all(layers) {
                    let v = layout
                        .read(values, Method::Hc, composite, layer, metric)
                        .unwrap();
                    best = best.max(v);
                }
            }
            larger.push(best);
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    larger
}

fn median_of_odd(mut values: Vec<f64>) -> f64 {
    assert!(values.len() % 2 == 1);
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Issue 17.3: "the larger of the forward and backward value" is a statistic over seeds of each
/// seed's maximum, in Table 1 and in the paper table of an experiment of the paper's shape; the
/// forward-only statistic the paper table used to show differs from it here.
#[test]
fn the_larger_of_forward_and_backward_is_a_per_seed_maximum() {
    let text = gain_experiment(5, "")
        .replace("layers = 12", "layers = 60")
        .replace("seed = 7", "seed = 3");
    let (experiment, report) = run_report(&text);
    let Spec::Gain(spec) = experiment.spec() else {
        panic!("a gain experiment")
    };
    let composite = [
        (Composite::Prefix, Metric::AmaxForward),
        (Composite::Suffix, Metric::AmaxBackward),
    ];
    let expected = median_of_odd(per_seed_larger(&spec.config, &composite));
    let forward_only = median_of_odd(per_seed_larger(&spec.config, &composite[..1]));
    let shown = |x: f64| format_significant(x, 3);
    assert_ne!(
        shown(expected),
        shown(forward_only),
        "the test needs seeds where the two definitions differ"
    );
    let table_1 = row(
        &report,
        "table-summary",
        "peak over l: larger of the two composite curves, per seed",
    );
    let table_2 = row(
        &report,
        "table-paper",
        "composite, peak over depth (Figs. 3b, 7b)",
    );
    for (name, cell) in [("Table 1", &table_1[1]), ("Table 2", &table_2[2])] {
        assert_eq!(shown(centre(cell)), shown(expected), "{name}");
    }
    // The whole model: per seed the larger of amax_forward and amax_backward of H_L⋯H_1.
    let whole = [
        (Composite::Prefix, Metric::AmaxForward),
        (Composite::Prefix, Metric::AmaxBackward),
    ];
    let layers = spec.config.layers();
    let whole_larger: Vec<f64> = {
        let layout = spec.config.row_layout();
        let mut values_per_seed = Vec::new();
        run_gain(
            &spec.config,
            |_, values| {
                let last = Layer::last(layers);
                values_per_seed.push(
                    whole
                        .iter()
                        .map(|&(c, m)| layout.read(values, Method::Hc, c, last, m).unwrap())
                        .fold(f64::NEG_INFINITY, f64::max),
                );
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        values_per_seed
    };
    let whole_row = row(
        &report,
        "table-paper",
        &format!("whole model H_{layers}⋯H_1 (Fig. 8: Π1..60)"),
    );
    assert_eq!(
        shown(centre(&whole_row[2])),
        shown(median_of_odd(whole_larger))
    );
    // The count of seeds that reach the paper's 3000 is of the same per-seed quantity.
    let peaks = per_seed_larger(&spec.config, &composite);
    let reaching = peaks.iter().filter(|&&x| x >= 3000.0).count();
    let forward_reaching = per_seed_larger(&spec.config, &composite[..1])
        .iter()
        .filter(|&&x| x >= 3000.0)
        .count();
    let claim = format!("; {reaching} of the 5 seeds (");
    assert!(
        report.summary[1].contains(&claim),
        "'{claim}' (forward only: {forward_reaching}) in: {}",
        report.summary[1]
    );
}

/// Issue 17.2: at the paper's shape the comparison with the paper's 3000 is computed from the
/// numbers: "within an order of magnitude" exactly when the median is within a factor 10.
#[test]
fn the_paper_comparison_agrees_with_the_table() {
    let text = gain_experiment(5, "").replace("layers = 12", "layers = 60");
    let (_, report) = run_report(&text);
    let peak = centre(
        &row(
            &report,
            "table-paper",
            "composite, peak over depth (Figs. 3b, 7b)",
        )[2],
    );
    let compare = &report.summary[1];
    let within = (3000.0 / peak).log10().abs() < 1.0;
    assert_eq!(
        compare.contains("within an order of magnitude"),
        within,
        "median {peak}: {compare}"
    );
    assert!(compare.contains(&format!("the median ({})", format_significant(peak, 3))));
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

/// The rows of a Sinkhorn table: ((w, correlation, scale cell text), value per t_max column).
fn sinkhorn_rows(table: &Table) -> Vec<((String, String, String), Vec<f64>)> {
    table
        .rows
        .iter()
        .map(|r| {
            (
                (
                    cell_markdown(&r[0]),
                    cell_markdown(&r[1]),
                    cell_markdown(&r[2]),
                ),
                r[3..].iter().map(value).collect(),
            )
        })
        .collect()
}

/// Issue 17.2 for `sinkhorn-sweep`: a small grid of another shape (6 layers, n = 3, no
/// t_max = 20) says nothing of the paper's model, and every comparative sentence — the largest
/// peak, the largest gain per identity weight, how many curves drift, shared against
/// independent — agrees with Tables 1 and 2.
#[test]
fn a_small_sinkhorn_sweep_report_agrees_with_its_tables() {
    let text = r#"kind = "sinkhorn-sweep"
title = "A small Sinkhorn sweep"
layers = 6
streams = 3
seeds = 3
seed = 2
sinkhorn_order = "columns-then-rows"
shared_per_layer_fraction = 0.1

[grid]
sinkhorn_iters = [1, 4, 30]
identity_weight = [1.0, 4.0]
logit_scale = [0.5, 3.0]
correlation = ["independent", "shared"]
"#;
    let (_, report) = run_report(text);
    assert_no_paper_shape(&report);
    let shown = report_text(&report);
    assert!(
        !shown.contains("paper's trained deep layers"),
        "the paper's n = 4 diagonal beside n = 3: {shown}"
    );
    // The grid has no t_max = 20: the prose reads the middle value, t_max = 4.
    let gains = table(&report, "table-gain");
    let peaks = table(&report, "table-peak");
    let t_ref = column(gains, "t_max = 4") - 3;
    let t_last = column(gains, "t_max = 30") - 3;
    let gain_rows = sinkhorn_rows(gains);
    let peak_rows = sinkhorn_rows(peaks);

    // Headline: the curve with the largest median peak at t_max = 4, and its value at 30.
    let (key, values) = peak_rows
        .iter()
        .max_by(|a, b| a.1[t_ref].total_cmp(&b.1[t_ref]))
        .unwrap();
    let headline = &report.headline;
    assert!(
        headline.starts_with("At t_max = 4, the peak over depth of mHC's backward composite gain over 6 layers is largest for"),
        "{headline}"
    );
    let (w, correlation, _) = key;
    assert!(
        headline.contains(&format!("for w = {w}, {correlation}, s = ")),
        "largest peak {key:?}: {headline}"
    );
    assert!(
        headline.contains(&format!(
            ": median {}",
            format_significant(values[t_ref], 3)
        )),
        "{headline}"
    );
    assert!(
        headline.ends_with(&format!(
            "at t_max = 30 it is {}.",
            format_significant(values[t_last], 3)
        )),
        "{headline}"
    );

    // "at most G with w = …": the largest median whole-model gain of each weight's rows.
    let compare = &report.summary[1];
    for w in ["1", "4"] {
        let largest = gain_rows
            .iter()
            .filter(|(k, _)| k.0 == w)
            .map(|(_, v)| v[t_ref])
            .fold(f64::NEG_INFINITY, f64::max);
        let claim = format!("at most {} with w = {w} ", format_significant(largest, 3));
        assert!(compare.contains(&claim), "'{claim}' in: {compare}");
    }
    // How many curves drift more than 1 % from 1 at t_max = 4.
    let drifting = gain_rows
        .iter()
        .filter(|(_, v)| (v[t_ref] - 1.0).abs() >= 0.01)
        .count();
    if drifting == 0 {
        assert!(
            compare.contains("already lies within 1 % of 1"),
            "{compare}"
        );
    } else {
        let claim = format!(
            "{drifting} of the {} curves have a whole-model gain more than 1 % off 1 at t_max = 4.",
            gain_rows.len()
        );
        assert!(compare.contains(&claim), "'{claim}' in: {compare}");
    }
    // Shared against independent logits, pair by pair.
    let larger = gain_rows
        .iter()
        .filter(|(k, _)| k.1 == "shared")
        .filter(|(k, v)| {
            let independent = gain_rows
                .iter()
                .find(|(j, _)| j.0 == k.0 && j.1 == "independent" && j.2 == k.2)
                .unwrap();
            v[t_ref] > independent.1[t_ref]
        })
        .count();
    let claim =
        format!("exceeds the one with independent logits for {larger} of the 4 (w, s) pairs");
    assert!(
        report.summary[0].contains(&claim),
        "'{claim}' in: {}",
        report.summary[0]
    );
}

/// Issue 17.2 for `depth-sweep`: depths 2–12 with n = 4 among the stream counts say nothing of
/// the paper's 60-layer composite, and the growth rates, mHC's distance from 1 and the collapse
/// depths in the prose are those of Tables 1 and 2.
#[test]
fn a_small_depth_sweep_report_agrees_with_its_tables() {
    let text = r#"kind = "depth-sweep"
title = "A small depth sweep"
seeds = 3
seed = 1
logit_std = 0.5

[grid]
layers = [2, 6, 12]
streams = [2, 4]
"#;
    let (_, report) = run_report(text);
    assert_no_paper_shape(&report);
    let growth = table(&report, "table-growth");
    let collapse = table(&report, "table-collapse");
    let run = &report.summary[0];
    let slope_column = column(growth, "HC slope (decades/layer)");
    let factor_column = column(growth, "HC gain per layer");
    let mut worst = 0.0f64;
    for r in &growth.rows {
        let n = cell_markdown(&r[0]);
        let factor = format!(
            "×{} (n = {n})",
            format_significant(value(&r[factor_column]), 4)
        );
        assert!(run.contains(&factor), "'{factor}' in: {run}");
        // A median rising by more than a decade over L = 2..12 is said to grow, at its slope.
        let slope = value(&r[slope_column]);
        let grows = format!("{} (n = {n})", format_significant(slope, 3));
        if slope * 10.0 > 1.0 {
            assert!(
                between(&report.headline, "grows", "decades per layer").contains(&grows),
                "'{grows}' in: {}",
                report.headline
            );
        } else {
            assert!(
                !between(&report.headline, "gain ", ", while").contains(&grows),
                "{}",
                report.headline
            );
        }
        worst = worst.max(value(&r[column(growth, "mHC max |gain − 1|")]));
    }
    let within = format!(
        "mHC's gains stay within {} of 1 up to L = 12",
        format_significant(worst.max(f64::MIN_POSITIVE), 2)
    );
    assert!(
        report.headline.contains(&within),
        "'{within}' in: {}",
        report.headline
    );
    // Collapse: the first depth whose median σ₂ is below 1e-12, per n, or none.
    for r in &collapse.rows {
        let n = cell_markdown(&r[0]);
        let first = r[1..]
            .iter()
            .position(|c| value(c) < 1e-12)
            .map(|k| &collapse.header[k + 1]);
        match first {
            Some(depth) => {
                let claim = format!("{depth} for n = {n}");
                assert!(
                    report.headline.contains(&claim),
                    "'{claim}': {}",
                    report.headline
                );
            }
            None => assert!(
                between(
                    &report.headline,
                    "keep median σ₂ ≥ 1e-12 up to L = 12 for ",
                    "."
                )
                .contains(&n),
                "n = {n} not collapsed: {}",
                report.headline
            ),
        }
    }
}

/// A depth sweep with n = 4 and depths around 60 sets the paper's σ₂ = 0.037 beside its own
/// medians at the depths on either side, with the factor computed from Table 2.
#[test]
fn a_depth_sweep_around_the_papers_depth_compares_with_its_sigma2() {
    let text = r#"kind = "depth-sweep"
title = "Around 60"
seeds = 3

[grid]
layers = [8, 48, 64]
streams = [4]
"#;
    let (_, report) = run_report(text);
    let collapse = table(&report, "table-collapse");
    let text = &report.summary[1];
    for (k, depth) in [(2, 48), (3, 64)] {
        let here = value(&collapse.rows[0][k]);
        let ratio = 0.037 / here;
        let claim = format!(
            "{} at L = {depth} (a factor {} below the paper's)",
            format_significant(here, 2),
            format_significant(ratio, 2)
        );
        assert!(ratio > 1.0 && text.contains(&claim), "'{claim}' in: {text}");
    }
}

/// Issue 17.2 for `heatmaps`: 5 layers, n = 3, no paper data — no word of the paper's model, and
/// the prose quotes the table of the matrices shown.
#[test]
fn a_small_heatmaps_report_agrees_with_its_table() {
    let text = r#"kind = "heatmaps"
title = "Small heat maps"
layers = 5
streams = 3
seed = 4
logit_std = 0.5
single = [1, 5]
products = [[1, 3], [1, 5]]
"#;
    let (_, report) = run_report(text);
    assert_no_paper_shape(&report);
    let synthetic = table(&report, "table-synthetic");
    let get = |method: &str, matrix: &str, header: &str| {
        let r = synthetic
            .rows
            .iter()
            .find(|r| cell_markdown(&r[0]) == method && cell_markdown(&r[1]) == matrix)
            .unwrap_or_else(|| panic!("no {method} {matrix}"));
        value(&r[column(synthetic, header)])
    };
    let run = &report.summary[0];
    let claim = format!(
        "HC's whole-model product H_5⋯H_1 has Amax {} forward and {} backward",
        format_significant(get("HC", "H_5⋯H_1", "Amax fwd"), 3),
        format_significant(get("HC", "H_5⋯H_1", "Amax bwd"), 3)
    );
    assert!(run.contains(&claim), "'{claim}' in: {run}");
    let single = ["H_1", "H_5"]
        .iter()
        .flat_map(|m| [get("HC", m, "Amax fwd"), get("HC", m, "Amax bwd")])
        .fold(f64::NEG_INFINITY, f64::max);
    let claim = format!(
        "the single layers shown have Amax at most {}",
        format_significant(single, 3)
    );
    assert!(run.contains(&claim), "'{claim}' in: {run}");
    let sigma2 = get("mHC", "H_5⋯H_1", "σ₂");
    assert!(
        run.contains(&format!("σ₂ = {}", format_significant(sigma2, 2))),
        "{run}"
    );
    assert_eq!(
        run.contains("collapsed to J/n") || run.contains("have merged"),
        sigma2 < 1e-12,
        "σ₂ = {sigma2}: {run}"
    );
    assert!(
        report.headline.starts_with(&format!(
            "One draw of 5 layers gives HC a whole-model forward Amax of {}",
            format_significant(get("HC", "H_5⋯H_1", "Amax fwd"), 3)
        )),
        "{}",
        report.headline
    );
}

/// Issue 17.2 for `checkpoint-audit`: a trained mHC capture and the HC fixture — the prose's
/// verdicts, σ₂ trends and "merged" list agree with the audit table and audit.csv.
#[test]
fn a_checkpoint_audit_report_agrees_with_its_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join("small-audit.toml");
    let text = r#"kind = "checkpoint-audit"
title = "Two models"
max_gain = 2.0

[[model]]
name = "init"
label = "mHC at initialisation"
path = "../tests/data/checkpoints/hres.safetensors"
layout = "stack"
key = "hres_init"

[[model]]
name = "hc"
label = "HC fixture"
path = "../tests/data/checkpoints/lucidrains_hc_24.safetensors"
"#;
    let experiment = Experiment::parse(&path, text).unwrap();
    let report = mhc_analyze::report::run(&experiment, &mut |_| {}).unwrap();
    let shown = report_text(&report);
    assert_citations_resolve(&shown);
    let audit = table(&report, "table-audit");
    let csv = String::from_utf8(
        report
            .data
            .iter()
            .find(|d| d.name == "audit.csv")
            .unwrap()
            .bytes
            .clone(),
    )
    .unwrap();
    let sigma2_at_1 = |model: &str| -> f64 {
        // model,method,composite,layer,metric,stat,value
        csv.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[0] == model && f[2..6] == ["prefix", "1", "sigma2", "mean"])
            .unwrap_or_else(|| panic!("no σ₂ of {model} at layer 1"))[6]
            .parse()
            .unwrap()
    };
    let mut stable = Vec::new();
    let mut unstable = Vec::new();
    for r in &audit.rows {
        let name = cell_markdown(&r[0]);
        let layers = cell_markdown(&r[2]);
        let last = value(&r[column(audit, "σ₂")]);
        let first = sigma2_at_1(&name);
        let trend = format!(
            "{name}'s {} from {} at layer 1 to {} at layer {layers}",
            if last < first { "falls" } else { "grows" },
            format_significant(first, 2),
            format_significant(last, 2)
        );
        assert!(
            report.summary[1].contains(&trend),
            "'{trend}' in: {}",
            report.summary[1]
        );
        let merged = between(&report.summary[1], ". ", " with σ₂ below 1e-6");
        assert_eq!(merged.contains(&name), last < 1e-6, "{name}: {merged}");
        match cell_markdown(&r[column(audit, "verdict")]).as_str() {
            "stable" => stable.push(name),
            "unstable" => unstable.push(name),
            other => panic!("verdict {other}"),
        }
    }
    assert_eq!((stable.len(), unstable.len()), (1, 1), "one of each");
    assert_eq!(
        report.headline,
        format!(
            "Stable: {}. Unstable (whole-model Amax above 2.00): {}.",
            stable[0], unstable[0]
        )
    );
}
