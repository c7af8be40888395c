//! Numbers from an independent numpy implementation (`tests/data/make_reference.py`: numpy for
//! the metrics, quadprog's exact QP for the Birkhoff distance), compared with the library.

use std::collections::HashMap;
use std::path::PathBuf;

use mhc_analyze::analysis::gain::{GainConfig, Method, seed_values};
use mhc_analyze::analysis::{Layer, TokenAggregation};
use mhc_analyze::compose::Composite;
use mhc_analyze::generate::{SinkhornOrder, SinkhornParams, read_logits_npy, sinkhorn_in_place};
use mhc_analyze::metrics::{MatrixMetrics, Metric, birkhoff_projection};
use serde_json::Value;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn json(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(data(path)).unwrap()).unwrap()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|x| match x {
            Value::Array(_) => floats(x),
            _ => vec![x.as_f64().unwrap()],
        })
        .collect()
}

fn close(ours: f64, theirs: f64, relative: f64, absolute: f64) -> bool {
    (ours - theirs).abs() <= relative * theirs.abs() + absolute
}

/// The 64-layer case whose HC composite reaches 1e4: every metric of every single, prefix and
/// suffix matrix, HC and mHC.
#[test]
fn gain_matches_numpy_on_a_64_layer_case() {
    let logits = read_logits_npy(&data("reference/logits_hc64.npy")).unwrap();
    let config = GainConfig::from_logits(
        logits,
        "logits_hc64.npy",
        SinkhornParams::default(),
        TokenAggregation::MeanOfMetrics,
    )
    .unwrap();
    let values = seed_values(&config, 0).unwrap();
    let layout = config.row_layout();
    let mut reader = csv::Reader::from_path(data("reference/gain_reference_hc64.csv")).unwrap();
    let mut compared = HashMap::new();
    let mut peak_hc: f64 = 0.0;
    for record in reader.records() {
        let record = record.unwrap();
        let method = match &record[0] {
            "hc" => Method::Hc,
            "mhc" => Method::Mhc,
            other => panic!("method {other}"),
        };
        let composite = match &record[1] {
            "single" => Composite::Single,
            "prefix" => Composite::Prefix,
            "suffix" => Composite::Suffix,
            other => panic!("composite {other}"),
        };
        let layer: usize = record[2].parse().unwrap();
        let metric = Metric::from_name(&record[3]).unwrap();
        let theirs: f64 = record[4].parse().unwrap();
        let ours = layout
            .read(
                &values,
                method,
                composite,
                Layer::new(layer).unwrap(),
                metric,
            )
            .unwrap();
        // Amax, norms and sums to 1e-9 relative; the Birkhoff distance against the QP to 1e-6.
        // Quantities at rounding level (mHC's σ₂ of a collapsed composite, marginal errors)
        // only agree in absolute terms.
        let (relative, absolute) = match metric {
            Metric::BirkhoffDistance => (1e-6, 1e-12),
            _ => (1e-9, 1e-13),
        };
        assert!(
            close(ours, theirs, relative, absolute),
            "{method:?} {composite:?} layer {layer} {metric:?}: ours {ours}, numpy {theirs}"
        );
        if method == Method::Hc && metric == Metric::AmaxForward {
            peak_hc = peak_hc.max(theirs);
        }
        *compared.entry(metric).or_insert(0) += 1;
    }
    assert!(peak_hc >= 1e4, "the case must reach 1e4, got {peak_hc}");
    assert!(compared.len() >= 15, "{compared:?}");
    assert!(compared.values().all(|&count| count == 2 * 3 * 64));
}

#[test]
fn birkhoff_distance_matches_the_exact_qp() {
    let cases = json("reference/birkhoff_cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 50);
    for case in cases {
        let n = case["n"].as_u64().unwrap() as usize;
        let m = floats(&case["matrix"]);
        let expected = case["distance"].as_f64().unwrap();
        let ours = birkhoff_projection(&m, n);
        let scale = m.iter().fold(1.0f64, |s, x| s.max(x.abs()));
        assert!(
            close(ours.distance, expected, 1e-9, 1e-12 * scale),
            "{}: ours {}, QP {expected}",
            case["name"],
            ours.distance
        );
        let projection = floats(&case["projection"]);
        for (a, b) in ours.projection.iter().zip(&projection) {
            assert!((a - b).abs() <= 1e-8 * scale, "{}", case["name"]);
        }
    }
}

#[test]
fn sinkhorn_matches_numpy_in_both_orders() {
    let cases = json("reference/sinkhorn_cases.json");
    for case in cases["cases"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let iterations = case["iterations"].as_u64().unwrap() as u32;
        for (order, key) in [
            (SinkhornOrder::ColumnsThenRows, "paper_cols_then_rows"),
            (SinkhornOrder::RowsThenColumns, "rows_then_cols"),
        ] {
            let mut h = floats(&case["logits"]);
            sinkhorn_in_place(&mut h, n, &SinkhornParams { iterations, order });
            for (a, b) in h.iter().zip(floats(&case[key])) {
                assert!((a - b).abs() <= 1e-13, "n={n} {key}: {a} vs {b}");
            }
        }
    }
}

/// The paper's own printed Figure 8 matrices: our metrics of the printed entries agree with
/// numpy's, and with the labels the paper printed (to their rounding).
#[test]
fn paper_figure8_metrics() {
    let figure = json("paper_figure8.json");
    let mut checked = 0;
    for model in ["hc", "mhc"] {
        for (name, entry) in figure["models"][model].as_object().unwrap() {
            if !entry.is_object() || entry.get("entries").is_none() {
                continue;
            }
            let m = floats(&entry["entries"]);
            let metrics = MatrixMetrics::of_matrix(&m, 4);
            let reference = &entry["metrics_from_printed_entries"];
            for metric in Metric::ALL {
                let Some(theirs) = reference.get(metric.name()).and_then(Value::as_f64) else {
                    continue;
                };
                let tolerance = if metric == Metric::BirkhoffDistance {
                    1e-6
                } else {
                    1e-9
                };
                assert!(
                    close(metrics.get(metric), theirs, tolerance, 1e-12),
                    "{model} {name} {metric:?}: {} vs {theirs}",
                    metrics.get(metric)
                );
                checked += 1;
            }
            // The printed labels are signed sums taken before rounding.
            let allowed = entry["label_deviation"]["allowed"].as_f64().unwrap();
            let rows = mhc_analyze::metrics::row_sums(&m, 4);
            for (ours, printed) in rows.iter().zip(floats(&entry["printed_row_labels"])) {
                assert!((ours - printed).abs() <= allowed + 1e-9, "{model} {name}");
            }
        }
    }
    assert!(checked > 100, "{checked}");
}
