//! Numbers from an independent numpy implementation (`tests/data/make_reference.py`: numpy for
//! the metrics, quadprog's exact QP for the Birkhoff distance, brute force over all
//! permutations for the nearest one), compared with the library.

use std::collections::HashMap;
use std::path::PathBuf;

use mhc_analyze::analysis::gain::{GainConfig, Method, seed_values};
use mhc_analyze::analysis::{Layer, TokenAggregation};
use mhc_analyze::compose::{Composite, ScaledMatrix};
use mhc_analyze::generate::{SinkhornOrder, SinkhornParams, read_logits_npy, sinkhorn_in_place};
use mhc_analyze::metrics::{
    EntropyUndefined, MatrixMetrics, Metric, birkhoff_projection, identity_distance,
    mixing_entropy_checked, nearest_permutation, nearest_permutation_scaled,
};
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

/// `matrix · 2^exponent` as a scaled matrix, by exact products with powers of two times I (the
/// exponent may lie far beyond f64).
fn times_power_of_two(matrix: &[f64], n: usize, exponent: i64) -> ScaledMatrix {
    let mut out = ScaledMatrix::new(n, matrix.to_vec());
    let mut left = exponent;
    while left != 0 {
        let step = left.clamp(-500, 500);
        let mut diagonal = vec![0.0; n * n];
        (0..n).for_each(|i| diagonal[i * n + i] = 2f64.powi(step as i32));
        out = out.matmul(&ScaledMatrix::new(n, diagonal));
        left -= step;
    }
    out
}

/// A distance from the reference: a number, or "inf" where it exceeds f64.
fn distance(value: &Value) -> f64 {
    match value.as_str() {
        Some("inf") => f64::INFINITY,
        Some(other) => panic!("unexpected distance {other}"),
        None => value.as_f64().unwrap(),
    }
}

/// Identity distance, nearest permutation (by numpy brute force over all n!, ties to the
/// lexicographically smallest) and mixing entropy, against numpy with exact rational distances,
/// for plain and scaled matrices (up to 2^1100).
#[test]
fn structure_metrics_match_numpy_brute_force() {
    let cases = json("reference/structure_cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 60);
    let (mut ties, mut scaled, mut undefined) = (0, 0, 0);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let n = case["n"].as_u64().unwrap() as usize;
        let matrix = floats(&case["matrix"]);
        let exponent = case["exponent"].as_i64().unwrap();
        let p = times_power_of_two(&matrix, n, exponent);
        let bundle = MatrixMetrics::of(&p);
        let permutation: Vec<usize> = case["permutation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j.as_u64().unwrap() as usize)
            .collect();
        let (ours, permutation_distance) = nearest_permutation_scaled(&p);
        assert_eq!(ours, permutation, "{name}: permutation");
        let same = |ours: f64, theirs: f64| {
            if theirs.is_infinite() {
                ours == theirs
            } else {
                close(ours, theirs, 1e-12, 1e-15)
            }
        };
        let expected = distance(&case["permutation_distance"]);
        assert!(
            same(permutation_distance, expected),
            "{name}: {permutation_distance} vs {expected}"
        );
        let from_bundle = bundle.get(Metric::PermutationDistance);
        assert_eq!(
            from_bundle.to_bits(),
            permutation_distance.to_bits(),
            "{name}"
        );
        let expected = distance(&case["identity_distance"]);
        let ours = bundle.get(Metric::IdentityDistance);
        assert!(
            same(ours, expected),
            "{name}: identity {ours} vs {expected}"
        );
        if exponent == 0 {
            let (plain, plain_distance) = nearest_permutation(&matrix, n);
            assert_eq!(plain, permutation, "{name}: plain permutation");
            assert!(
                same(plain_distance, distance(&case["permutation_distance"])),
                "{name}"
            );
            assert!(same(identity_distance(&matrix, n), expected), "{name}");
        } else {
            scaled += 1;
        }
        let entropy = bundle.get(Metric::MixingEntropy);
        match case["mixing_entropy"].as_f64() {
            Some(theirs) => {
                assert!(
                    close(entropy, theirs, 1e-12, 1e-15),
                    "{name}: entropy {entropy} vs {theirs}"
                );
            }
            None => {
                assert!(
                    entropy.is_nan(),
                    "{name}: entropy {entropy}, expected absent"
                );
                let reason = match case["entropy_undefined"].as_str().unwrap() {
                    "negative_entry" => EntropyUndefined::NegativeEntry,
                    "zero_row" => EntropyUndefined::ZeroRow,
                    other => panic!("{name}: reason {other}"),
                };
                assert_eq!(mixing_entropy_checked(&matrix, n), Err(reason), "{name}");
                undefined += 1;
            }
        }
        ties += usize::from(case["kind"] == "tie" || case["kind"] == "average");
    }
    assert!(
        ties >= 20 && scaled >= 10 && undefined >= 10,
        "{ties} {scaled} {undefined}"
    );
}
