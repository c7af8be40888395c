//! Axis ranges, tick positions and tick labels. Pure arithmetic, no drawing.

use super::figure::{AxisScale, ValueFormat};

/// A labelled tick, at `pos` in axis space (log10 of the value on a log axis).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tick {
    pub pos: f64,
    pub label: String,
}

/// A finished axis: range and ticks, all in axis space.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<Tick>,
    /// Unlabelled minor ticks (log axes).
    pub minor: Vec<f64>,
}

impl Axis {
    /// Position of `t` (axis space) as a fraction of the axis length.
    pub(crate) fn frac(&self, t: f64) -> f64 {
        (t - self.lo) / (self.hi - self.lo)
    }
}

/// Maps a data value to axis space; `None` if it cannot be drawn on this scale.
pub(crate) fn to_axis(scale: AxisScale, v: f64) -> Option<f64> {
    match scale {
        AxisScale::Linear => v.is_finite().then_some(v),
        AxisScale::Log10 => (v.is_finite() && v > 0.0).then(|| v.log10()),
    }
}

/// Builds an axis covering `values` (axis space, finite, non-empty) plus a margin of
/// `margin` × span on both sides. `integer_data`: the values are integers (e.g. layer
/// indices), so ticks are too.
pub(crate) fn build_axis(
    scale: AxisScale,
    values: &[f64],
    margin: f64,
    integer_data: bool,
) -> Axis {
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        // Callers guarantee finite non-empty input; stay valid anyway.
        (lo, hi) = (0.0, 1.0);
    }
    match scale {
        AxisScale::Linear => linear_axis(lo, hi, margin, integer_data),
        AxisScale::Log10 => log_axis(lo, hi, margin),
    }
}

fn linear_axis(lo: f64, hi: f64, margin: f64, integer_data: bool) -> Axis {
    let span = hi - lo;
    let scale = lo.abs().max(hi.abs());
    let (lo, hi) = if span <= 1e-9 * scale || span == 0.0 {
        // Flat data: pad symmetrically.
        let mut pad = if scale == 0.0 { 1.0 } else { 0.05 * scale };
        if integer_data {
            pad = pad.max(1.0);
        }
        (lo - pad, hi + pad)
    } else {
        let m = margin * span;
        (lo - m, hi + m)
    };
    let step = if integer_data {
        // Integer data get integer ticks: no 2.5 steps, nothing below 1.
        nice_step((hi - lo) / 6.0, false).max(1.0)
    } else {
        nice_step((hi - lo) / 6.0, true)
    };
    let ticks = linear_ticks(lo, hi, step)
        .into_iter()
        .map(|v| Tick {
            pos: v,
            label: format_step(v, step),
        })
        .collect();
    Axis {
        lo,
        hi,
        ticks,
        minor: Vec::new(),
    }
}

fn log_axis(lmin: f64, lmax: f64, margin: f64) -> Axis {
    let span = lmax - lmin;
    let (mut lo, mut hi) = if span < 1e-9 {
        (lmin - 0.05, lmax + 0.05)
    } else {
        let m = (margin * span).max(0.01);
        (lmin - m, lmax + m)
    };
    if span > 1.0 {
        // More than a decade: snap the limits outward to round values (1, 2 or 5 × 10^k),
        // which keeps a clean frame without wasting most of a decade when the data start at
        // a power of ten.
        lo = snap_down_125(lo);
        hi = snap_up_125(hi);
    }
    let d_lo = (lo - 1e-9).ceil() as i32;
    let d_hi = (hi + 1e-9).floor() as i32;
    let decades = d_hi - d_lo + 1;
    let mut ticks = Vec::new();
    let mut minor = Vec::new();
    if decades >= 3 {
        let stride = ((decades as f64) / 7.0).ceil().max(1.0) as i32;
        for d in d_lo..=d_hi {
            if d.rem_euclid(stride) == 0 {
                ticks.push(Tick {
                    pos: d as f64,
                    label: power_of_ten(d),
                });
            } else {
                minor.push(d as f64);
            }
        }
        if stride == 1 {
            for e in lo.floor() as i32..=hi.ceil() as i32 {
                for m in 2..=9 {
                    let p = e as f64 + (m as f64).log10();
                    if p >= lo && p <= hi {
                        minor.push(p);
                    }
                }
            }
        }
    } else {
        // 1-2-5 ticks with plain labels, if there are enough of them.
        let mut t125 = Vec::new();
        let mut other = Vec::new();
        for e in (lo.floor() as i32 - 1)..=(hi.ceil() as i32) {
            for m in 1..=9 {
                let p = e as f64 + (m as f64).log10();
                if p >= lo - 1e-12 && p <= hi + 1e-12 {
                    if matches!(m, 1 | 2 | 5) {
                        t125.push(p);
                    } else {
                        other.push(p);
                    }
                }
            }
        }
        if t125.len() >= 3 {
            ticks = t125
                .into_iter()
                .map(|p| Tick {
                    pos: p,
                    label: format_plain(10f64.powf(p)),
                })
                .collect();
            minor = other;
        } else {
            // Less than about half a decade: linear ticks in value space.
            let (vlo, vhi) = (10f64.powf(lo), 10f64.powf(hi));
            let step = nice_step((vhi - vlo) / 6.0, true);
            ticks = linear_ticks(vlo, vhi, step)
                .into_iter()
                .filter(|v| *v > 0.0)
                .map(|v| Tick {
                    pos: v.log10(),
                    label: format_step(v, step),
                })
                .collect();
        }
    }
    Axis {
        lo,
        hi,
        ticks,
        minor,
    }
}

fn snap_down_125(l: f64) -> f64 {
    let e = l.floor();
    [e + 5f64.log10(), e + 2f64.log10(), e]
        .into_iter()
        .find(|&c| c <= l + 1e-12)
        .unwrap_or(e)
}

fn snap_up_125(l: f64) -> f64 {
    let e = l.floor();
    [e, e + 2f64.log10(), e + 5f64.log10(), e + 1.0]
        .into_iter()
        .find(|&c| c >= l - 1e-12)
        .unwrap_or(e + 1.0)
}

/// The smallest of 1, 2, (2.5,) 5 × 10^k that is at least `raw`.
pub(crate) fn nice_step(raw: f64, allow_2_5: bool) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .filter(|&m| allow_2_5 || m != 2.5)
        .find(|&m| m >= norm - 1e-9)
        .unwrap_or(10.0);
    m * mag
}

fn linear_ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).take(100).map(|i| i as f64 * step).collect()
}

const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

fn superscript(n: i32) -> String {
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for c in n.unsigned_abs().to_string().chars() {
        s.push(SUPERSCRIPT[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

/// `10³`, `10⁻²`, …
pub(crate) fn power_of_ten(d: i32) -> String {
    format!("10{}", superscript(d))
}

/// Replaces an ASCII leading minus with the typographic minus sign and drops "-0".
fn typographic(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        Some(rest) => format!("−{rest}"),
        None => s,
    }
}

/// `m×10ⁿ` with `decimals` decimals in the mantissa.
fn format_sci(v: f64, decimals: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let e = v.abs().log10().floor() as i32;
    let mut m = v / 10f64.powi(e);
    let mut e = e;
    // Rounding can carry into the next power (9.99 → 10.0).
    let r = 10f64.powi(decimals as i32);
    if (m.abs() * r).round() / r >= 10.0 {
        m /= 10.0;
        e += 1;
    }
    let ms = typographic(format!("{:.*}", decimals, m));
    if ms == "1" {
        power_of_ten(e)
    } else if ms == "−1" {
        format!("−{}", power_of_ten(e))
    } else {
        format!("{ms}×{}", power_of_ten(e))
    }
}

/// Label of a tick on a linear scale with spacing `step`.
pub(crate) fn format_step(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    let big = v.abs() >= 1e6 || (step < 1e-4 && v != 0.0);
    if big {
        let e = v.abs().log10().floor();
        return format_sci(v, decimals_of(step / 10f64.powf(e)));
    }
    typographic(format!("{:.*}", decimals_of(step), v))
}

/// Number of decimals needed to write multiples of `step` exactly (at most 8).
fn decimals_of(step: f64) -> usize {
    (0..8)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(8)
}

/// Shortest plain label of a round number (1-2-5 ticks).
pub(crate) fn format_plain(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        return format_sci(v, 0);
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    typographic(s)
}

/// A heat-map cell value (or colour-bar label).
pub(crate) fn format_value(v: f64, f: ValueFormat) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "∞".to_string()
        } else {
            "−∞".to_string()
        };
    }
    match f {
        ValueFormat::Fixed(d) => typographic(format!("{:.*}", d.min(12), v)),
        ValueFormat::Significant(n) => {
            let n = n.clamp(1, 12);
            if v == 0.0 {
                return "0".to_string();
            }
            let e = v.abs().log10().floor() as i32;
            if e < -4 || e >= (n as i32).max(5) {
                return format_sci(v, n - 1);
            }
            let decimals = (n as i32 - 1 - e).max(0) as usize;
            typographic(format!("{:.*}", decimals, v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &Axis) -> Vec<&str> {
        a.ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn plot_axis_log_many_decades_uses_powers_of_ten() {
        let vals: Vec<f64> = [1.0f64, 3000.0].iter().map(|v| v.log10()).collect();
        let a = build_axis(AxisScale::Log10, &vals, 0.04, false);
        assert_eq!(labels(&a), ["10⁰", "10¹", "10²", "10³"]);
        assert!(a.lo < 0.0 && a.hi > 3000f64.log10());
        assert!(!a.minor.is_empty());
    }

    #[test]
    fn plot_axis_log_small_range_is_plain() {
        let vals: Vec<f64> = [1.0f64, 1.6].iter().map(|v| v.log10()).collect();
        let a = build_axis(AxisScale::Log10, &vals, 0.04, false);
        assert!(a.ticks.len() >= 3, "{:?}", a.ticks);
        assert!(a.ticks.iter().all(|t| !t.label.contains('⁰')));
        let flat = build_axis(AxisScale::Log10, &[0.0], 0.04, false);
        assert!(flat.lo < 0.0 && flat.hi > 0.0 && flat.ticks.len() >= 2);
    }

    #[test]
    fn plot_axis_linear_flat_and_integer() {
        let a = build_axis(AxisScale::Linear, &[1.0, 1.0], 0.05, false);
        assert!(a.lo < 1.0 && a.hi > 1.0 && a.ticks.len() >= 2);
        let x = build_axis(AxisScale::Linear, &[1.0, 64.0], 0.02, true);
        assert_eq!(labels(&x), ["0", "20", "40", "60"]);
        let few = build_axis(AxisScale::Linear, &[1.0, 4.0], 0.02, true);
        assert!(
            few.ticks.iter().all(|t| t.pos.fract() == 0.0),
            "{:?}",
            few.ticks
        );
        let z = build_axis(AxisScale::Linear, &[0.0, 0.0], 0.05, false);
        assert!(z.lo < 0.0 && z.hi > 0.0);
    }

    #[test]
    fn plot_axis_number_formats() {
        assert_eq!(format_value(-4.07, ValueFormat::Fixed(2)), "−4.07");
        assert_eq!(format_value(-0.001, ValueFormat::Fixed(2)), "0.00");
        assert_eq!(
            format_value(0.012345, ValueFormat::Significant(3)),
            "0.0123"
        );
        assert_eq!(
            format_value(123456.0, ValueFormat::Significant(3)),
            "1.23×10⁵"
        );
        assert_eq!(format_plain(0.5), "0.5");
        assert_eq!(format_plain(20.0), "20");
        assert_eq!(format_step(-0.2, 0.1), "−0.2");
        assert_eq!(format_step(2.0e6, 1.0e6), "2×10⁶");
        assert_eq!(format_step(0.975, 0.025), "0.975");
        assert_eq!(format_step(1.0, 0.025), "1.000");
        assert_eq!(power_of_ten(-3), "10⁻³");
    }
}
