//! The human-readable table printed by `gain`.

use std::fmt::Write;

use crate::analysis::Peak;
use crate::analysis::Summary;
use crate::analysis::gain::{GainConfig, GainResult, LogitSource, Method};
use crate::metrics::Metric;

/// `1 layer`, `64 layers`: a count with its noun, singular for one.
pub(crate) fn count_of(count: impl Into<u64>, noun: &str) -> String {
    let count = count.into();
    format!("{count} {}", noun_for(count, noun))
}

/// `layer` for a count of one, `layers` otherwise: the noun [`count_of`] writes after the count.
pub(crate) fn noun_for(count: impl Into<u64>, noun: &str) -> String {
    if count.into() == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// The one number format of every table, prose sentence and figure label: `x` rounded to
/// `digits` significant digits, in fixed notation when the rounded magnitude lies in
/// [10⁻³, 10^digits) and scientific otherwise (`1.235e5`, `2.5e-7`). A value that rounds to 1 but
/// is not 1 is written as its distance from 1 — `1 + 3.6e-7`, `1 − 2.1e-8` (two significant
/// digits of the distance) — so the drift of an mHC gain stays visible; `inf`, `-inf` and `nan`
/// are spelled out.
pub fn format_significant(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    // Decide on the rounded value, so that 9999.6 is 1.000e4, not "10000", and 0.99999 is not
    // "1.0000".
    let scientific = format!("{:.*e}", digits - 1, x);
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's {:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if x != 1.0 && exponent == 0 && mantissa.parse::<f64>() == Ok(1.0) {
        let distance = x - 1.0;
        let sign = if distance > 0.0 { '+' } else { '−' };
        return format!("1 {sign} {:.1e}", distance.abs());
    }
    if (-3..digits as i32).contains(&exponent) {
        let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        scientific
    }
}

fn cell(summary: &Summary, seeds: u64) -> String {
    if seeds > 1 {
        format!(
            "{} [{}, {}]",
            format_significant(summary.median, 4),
            format_significant(summary.min, 3),
            format_significant(summary.max, 3)
        )
    } else {
        format_significant(summary.mean, 4)
    }
}

/// The table comparing HC and mHC: whole-model composite and peaks over layers.
pub fn gain_table(config: &GainConfig, result: &GainResult) -> String {
    let mut out = String::new();
    let source = match config.source() {
        LogitSource::Random(generator) => format!(
            "logits {} (seed {}{})",
            generator.describe(),
            config.seed(),
            if config.seeds() > 1 {
                format!(", {} seeds", config.seeds())
            } else {
                String::new()
            }
        ),
        LogitSource::Given { origin, .. } => {
            format!("logits from {origin} ({} draw(s))", config.seeds())
        }
    };
    let _ = writeln!(
        out,
        "mhc-analyze gain: {}, {}, {}; {source}",
        count_of(config.layers() as u64, "layer"),
        count_of(config.streams() as u64, "stream"),
        count_of(config.tokens() as u64, "token")
    );
    let _ = writeln!(
        out,
        "mHC = Sinkhorn, {} iterations ({}); tokens: {}",
        config.sinkhorn().iterations,
        config.sinkhorn().order.describe(),
        config.token_aggregation().name()
    );
    if config.seeds() > 1 {
        let _ = writeln!(out, "cells: median [min, max] over seeds");
    }
    let mut rows: Vec<(String, Summary, Summary)> = Vec::new();
    for metric in [
        Metric::AmaxForward,
        Metric::AmaxBackward,
        Metric::SpectralNorm,
        Metric::BirkhoffDistance,
        Metric::Sigma2,
    ] {
        let [hc, mhc] = Method::ALL.map(|m| *result.whole_model(m, metric));
        rows.push((format!("  {}", metric.name()), hc, mhc));
    }
    for peak in [Peak::PrefixAmaxForward, Peak::SuffixAmaxBackward] {
        let [hc, mhc] = Method::ALL.map(|m| *result.peak(m, peak));
        rows.push((format!("  {}", peak.name()), hc, mhc));
    }
    let cells: Vec<(String, String, String)> = rows
        .iter()
        .map(|(label, hc, mhc)| {
            (
                label.clone(),
                cell(hc, config.seeds()),
                cell(mhc, config.seeds()),
            )
        })
        .collect();
    let label_width = cells
        .iter()
        .map(|c| c.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(32);
    let hc_width = cells.iter().map(|c| c.1.len()).max().unwrap_or(0).max(10);
    let mhc_width = cells.iter().map(|c| c.2.len()).max().unwrap_or(0).max(10);
    let _ = writeln!(out);
    let header = format!(
        "whole-model composite {}",
        super::audit::whole_model_name(config.layers())
    );
    let _ = writeln!(
        out,
        "{header:<label_width$}  {:>hc_width$}  {:>mhc_width$}",
        "HC", "mHC"
    );
    for (k, (label, hc, mhc)) in cells.iter().enumerate() {
        if k == 5 {
            let _ = writeln!(out, "peak over layers");
        }
        let _ = writeln!(
            out,
            "{label:<label_width$}  {hc:>hc_width$}  {mhc:>mhc_width$}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(format_significant(1.0, 4), "1.000");
        assert_eq!(format_significant(3123.456, 4), "3123");
        assert_eq!(format_significant(0.0123456, 3), "0.0123");
        assert_eq!(format_significant(123456.0, 4), "1.235e5");
        assert_eq!(format_significant(2.5e-7, 2), "2.5e-7");
        assert_eq!(format_significant(f64::INFINITY, 4), "inf");
        // Rounding that carries into the next power of ten keeps the digit count.
        assert_eq!(format_significant(9999.6, 4), "1.000e4");
        assert_eq!(format_significant(99.996, 4), "100.0");
        assert_eq!(format_significant(-0.0012345, 3), "-0.00123");
    }

    #[test]
    fn values_near_one_show_their_distance_from_one() {
        assert_eq!(format_significant(1.0, 4), "1.000");
        assert_eq!(format_significant(1.0 + 3.6e-7, 4), "1 + 3.6e-7");
        assert_eq!(format_significant(1.0 - 2.1e-8, 7), "1 − 2.1e-8");
        // Just below 1 at 4 digits: not "1.0000" beside "1.000".
        assert_eq!(format_significant(0.99999, 4), "1 − 1.0e-5");
        assert_eq!(format_significant(1.0004, 4), "1 + 4.0e-4");
        assert_eq!(format_significant(1.00049, 4), "1 + 4.9e-4");
        assert_eq!(format_significant(1.0006, 4), "1.001");
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count_of(1u64, "layer"), "1 layer");
        assert_eq!(count_of(64u64, "layer"), "64 layers");
    }
}
