//! Bounds on the gains of products of layers, from per-layer enclosures (docs §7).
//!
//! A product's forward gain is ‖P·1‖_∞ and its backward gain ‖Pᵀ·1‖_∞, so both are bounds on a
//! vector pushed through the layers: v ← H_l v from v = 1 (forward) or w ← H_lᵀ w (backward).
//! Each layer's H ranges over its enclosure independently of the others, so an enclosure of
//! the vector after each layer bounds every reachable product.
//!
//! - Non-negative layers (Sinkhorn maps): interval vectors v ≥ 0 with a mass interval
//!   T ∋ Σ v, tightened each step by the layer's sums: (Hv)_i ≤ r_i·max v, Σ(Hv) = Σ_j c_j v_j,
//!   and v_i ≤ T − Σ_{k≠i} v_k.
//! - Signed layers (HC): interval vectors with outward-rounded interval arithmetic, kept as a
//!   mantissa with a power-of-two exponent so that products far beyond f64 stay finite.
//!
//! Beside the vectors, two simpler bounds: the product of the layers' own bounds (the induced
//! ∞- or 1-norms for HC, the largest sum for Sinkhorn maps), and for Sinkhorn maps the mass cap
//! n·Π(largest exact-side sum). The certificate reports the smallest.

use super::rounding::{Interval, Scaled, down, gamma_up, mul_down, mul_up, sum_down, sum_up, up};
use super::{BoundMethod, Direction};
use crate::compose::{binary_exponent, scale_by_power_of_two};

/// One layer in the orientation of the propagation (v' = E v): entry intervals of E, its
/// out-sums (Σ_j E_ij) and its in-sums (Σ_i E_ij).
#[derive(Clone, Debug)]
pub(crate) struct OrientedLayer {
    pub n: usize,
    pub entries: Vec<Interval>,
    pub out_sums: Vec<Interval>,
    pub in_sums: Vec<Interval>,
}

/// A composite's bound before it is dressed for output: the value, and which method gave it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawBound {
    pub value: Scaled,
    pub method: BoundMethod,
}

/// The unit roundoff of this crate's f64 composition and metrics.
const MEASUREMENT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// Bounds of every single, prefix and suffix composite in one direction, for layers given in
/// the propagation's orientation (`layers[l]` is layer l + 1; for the backward direction the
/// caller passes transposed layers). Returns `(single, prefix, suffix)`, each indexed by
/// layer − 1.
pub(crate) fn composite_bounds<P: Propagator>(
    propagator: &P,
    direction: Direction,
) -> (Vec<RawBound>, Vec<RawBound>, Vec<RawBound>) {
    let layers = propagator.layers();
    let through = |order: &mut dyn Iterator<Item = usize>| -> Vec<RawBound> {
        let mut state = propagator.start();
        order
            .map(|l| {
                propagator.step(&mut state, l);
                propagator.bound(&state)
            })
            .collect()
    };
    let last = |order: &mut dyn Iterator<Item = usize>| -> RawBound {
        *through(order).last().expect("at least one layer")
    };
    let single: Vec<RawBound> = (0..layers).map(|l| last(&mut (l..=l))).collect();
    // Forward: prefix(l) = H_l⋯H_1 applies H_1 first; suffix(l) = H_L⋯H_l applies H_l first.
    // Backward: the transposes apply in the opposite order.
    let (prefix, suffix) = match direction {
        Direction::Forward => {
            let prefix = through(&mut (0..layers));
            let suffix = (0..layers).map(|l| last(&mut (l..layers))).collect();
            (prefix, suffix)
        }
        Direction::Backward => {
            let prefix = (0..layers).map(|l| last(&mut (0..=l).rev())).collect();
            let mut suffix = through(&mut (0..layers).rev());
            suffix.reverse();
            (prefix, suffix)
        }
    };
    (single, prefix, suffix)
}

/// A way of pushing bounds through layers.
pub(crate) trait Propagator {
    /// The running state.
    type State;
    /// Number of layers.
    fn layers(&self) -> usize;
    /// The state for the all-ones start vector.
    fn start(&self) -> Self::State;
    /// Applies layer `l` (0-based).
    fn step(&self, state: &mut Self::State, l: usize);
    /// The bound on the composite of the layers applied so far.
    fn bound(&self, state: &Self::State) -> RawBound;
}

/// Non-negative layers (Sinkhorn maps).
pub(crate) struct NonNegative<'a> {
    pub layers: &'a [OrientedLayer],
    /// Whether the out-sums are the exact side (then the product of their maxima is reported
    /// as [`BoundMethod::ExactSide`]).
    pub out_sums_exact: bool,
}

/// State of a non-negative propagation.
pub(crate) struct NonNegativeState {
    vector: Vec<Interval>,
    mass: Interval,
    layer_product: f64,
    mass_cap: f64,
    depth: usize,
}

impl Propagator for NonNegative<'_> {
    type State = NonNegativeState;

    fn layers(&self) -> usize {
        self.layers.len()
    }

    fn start(&self) -> NonNegativeState {
        let n = self.layers[0].n;
        NonNegativeState {
            vector: vec![Interval::point(1.0); n],
            mass: Interval::point(n as f64),
            layer_product: 1.0,
            mass_cap: n as f64,
            depth: 0,
        }
    }

    fn step(&self, state: &mut NonNegativeState, l: usize) {
        let layer = &self.layers[l];
        let n = layer.n;
        let v = &state.vector;
        let v_max = v.iter().map(|x| x.hi).fold(0.0, f64::max);
        let v_min = v.iter().map(|x| x.lo).fold(f64::INFINITY, f64::min);
        let mut next: Vec<Interval> = (0..n)
            .map(|i| {
                let row = &layer.entries[i * n..(i + 1) * n];
                let hi = sum_up(row.iter().zip(v).map(|(e, x)| mul_up(e.hi, x.hi)))
                    .min(mul_up(layer.out_sums[i].hi, v_max));
                let lo = sum_down(row.iter().zip(v).map(|(e, x)| mul_down(e.lo, x.lo)))
                    .max(mul_down(layer.out_sums[i].lo, v_min));
                Interval::new(lo, hi.max(lo))
            })
            .collect();
        // Σ_i (Ev)_i = Σ_j c_j v_j with c the in-sums.
        let in_max = layer.in_sums.iter().map(|c| c.hi).fold(0.0, f64::max);
        let in_min = layer
            .in_sums
            .iter()
            .map(|c| c.lo)
            .fold(f64::INFINITY, f64::min);
        let mass_hi = sum_up(layer.in_sums.iter().zip(v).map(|(c, x)| mul_up(c.hi, x.hi)))
            .min(mul_up(in_max, state.mass.hi))
            .min(sum_up(next.iter().map(|x| x.hi)));
        let mass_lo = sum_down(
            layer
                .in_sums
                .iter()
                .zip(v)
                .map(|(c, x)| mul_down(c.lo, x.lo)),
        )
        .max(mul_down(in_min, state.mass.lo))
        .max(sum_down(next.iter().map(|x| x.lo)));
        let mass = Interval::new(mass_lo.min(mass_hi), mass_hi);
        // Each component is the mass minus the others.
        let lows = sum_down(next.iter().map(|x| x.lo));
        let highs = sum_up(next.iter().map(|x| x.hi));
        for x in &mut next {
            let others_lo = down(lows - x.lo).max(0.0);
            let others_hi = up(highs - x.hi);
            let hi = x.hi.min(up(mass.hi - others_lo));
            let lo = x.lo.max(down(mass.lo - others_hi)).max(0.0);
            *x = Interval::new(lo.min(hi), hi);
        }
        let out_max = layer.out_sums.iter().map(|r| r.hi).fold(0.0, f64::max);
        state.layer_product = mul_up(state.layer_product, out_max);
        state.mass_cap = mul_up(state.mass_cap, in_max);
        state.vector = next;
        state.mass = mass;
        state.depth += 1;
    }

    fn bound(&self, state: &NonNegativeState) -> RawBound {
        let n = self.layers[0].n;
        let measured = up(1.0 + gamma_up((n * (state.depth + 1)) as f64, MEASUREMENT_ROUNDOFF));
        let vector = state.vector.iter().map(|x| x.hi).fold(0.0, f64::max);
        let layer_method = if self.out_sums_exact {
            BoundMethod::ExactSide
        } else {
            BoundMethod::LayerProduct
        };
        // Simplest first: a later candidate must be strictly smaller to win.
        let mut best = (state.layer_product, layer_method);
        if !self.out_sums_exact && state.mass_cap < best.0 {
            best = (state.mass_cap, BoundMethod::MassCap);
        }
        if vector < best.0 * (1.0 - 1e-12) {
            best = (vector, BoundMethod::IntervalPropagation);
        }
        RawBound {
            value: Scaled::from_f64(mul_up(best.0, measured)),
            method: best.1,
        }
    }
}

/// Signed layers (HC): the entries are the logit box itself.
pub(crate) struct Signed<'a> {
    pub layers: &'a [OrientedLayer],
}

/// State of a signed propagation: v = mantissas · 2^exponent.
pub(crate) struct SignedState {
    vector: Vec<Interval>,
    exponent: i64,
    norm_product: Scaled,
    depth: usize,
}

impl Propagator for Signed<'_> {
    type State = SignedState;

    fn layers(&self) -> usize {
        self.layers.len()
    }

    fn start(&self) -> SignedState {
        SignedState {
            vector: vec![Interval::point(1.0); self.layers[0].n],
            exponent: 0,
            norm_product: Scaled::from_f64(1.0),
            depth: 0,
        }
    }

    fn step(&self, state: &mut SignedState, l: usize) {
        let layer = &self.layers[l];
        let n = layer.n;
        let mut next: Vec<Interval> = (0..n)
            .map(|i| {
                layer.entries[i * n..(i + 1) * n]
                    .iter()
                    .zip(&state.vector)
                    .fold(Interval::point(0.0), |acc, (e, x)| acc.add(e.mul(*x)))
            })
            .collect();
        // Rescale by a power of two so the largest magnitude lies in [1, 2); exact unless a
        // component becomes subnormal, which is then widened by one step.
        let largest = next.iter().map(|x| x.mag()).fold(0.0, f64::max);
        if largest > 0.0 && largest.is_finite() {
            let shift = binary_exponent(largest);
            for x in &mut next {
                *x = Interval::new(
                    scale_exactly_or_outward(x.lo, -shift, false),
                    scale_exactly_or_outward(x.hi, -shift, true),
                );
            }
            state.exponent += shift;
        }
        let norm = (0..n)
            .map(|i| sum_up(layer.entries[i * n..(i + 1) * n].iter().map(|e| e.mag())))
            .fold(0.0, f64::max);
        state.norm_product = state.norm_product.mul_up(Scaled::from_f64(norm));
        state.vector = next;
        state.depth += 1;
    }

    fn bound(&self, state: &SignedState) -> RawBound {
        let n = self.layers[0].n;
        let largest = state.vector.iter().map(|x| x.mag()).fold(0.0, f64::max);
        let vector = Scaled::from_parts_up(largest, state.exponent);
        let (best, method) = if vector.less_than(state.norm_product) {
            (vector, BoundMethod::IntervalPropagation)
        } else {
            (state.norm_product, BoundMethod::LayerProduct)
        };
        // This crate's f64 products and sums differ from the exact ones by at most
        // γ_{n(k+1)} · ‖|H_k|⋯|H_1|‖, and ‖|H_k|⋯|H_1|‖ ≤ the norm product.
        let gamma = gamma_up((n * (state.depth + 1)) as f64, MEASUREMENT_ROUNDOFF);
        let allowance = state.norm_product.mul_up(Scaled::from_f64(gamma));
        RawBound {
            value: best.add_up(allowance),
            method,
        }
    }
}

/// x · 2^e, rounded outward (towards +∞ if `upward`) when the scaling is inexact.
fn scale_exactly_or_outward(x: f64, e: i64, upward: bool) -> f64 {
    let scaled = scale_by_power_of_two(x, e);
    if scaled == 0.0 && x == 0.0 || scale_by_power_of_two(scaled, -e) == x {
        scaled
    } else if upward {
        up(scaled)
    } else {
        down(scaled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: usize, values: &[f64]) -> OrientedLayer {
        let entries: Vec<Interval> = values.iter().map(|&x| Interval::point(x)).collect();
        let sums = |rows: bool| -> Vec<Interval> {
            (0..n)
                .map(|a| {
                    let s: f64 = (0..n)
                        .map(|b| {
                            if rows {
                                values[a * n + b]
                            } else {
                                values[b * n + a]
                            }
                        })
                        .sum();
                    Interval::new(down(s), up(s))
                })
                .collect()
        };
        OrientedLayer {
            n,
            entries,
            out_sums: sums(true),
            in_sums: sums(false),
        }
    }

    #[test]
    fn signed_points_reproduce_the_product_row_sums() {
        // A = [[1, −2], [3, 0.5]]: A·1 = (−1, 3.5); A·A·1 = (−8, −1.25).
        let a = layer(2, &[1.0, -2.0, 3.0, 0.5]);
        let layers = vec![a.clone(), a];
        let propagator = Signed { layers: &layers };
        let (single, prefix, _) = composite_bounds(&propagator, Direction::Forward);
        let value = |b: RawBound| b.value.to_f64_up();
        assert!((value(single[0]) - 3.5).abs() < 1e-12);
        assert!((value(prefix[1]) - 8.0).abs() < 1e-12);
        assert!(value(prefix[1]) >= 8.0);
        assert_eq!(prefix[1].method, BoundMethod::IntervalPropagation);
    }

    #[test]
    fn signed_products_beyond_f64_stay_finite_in_log10() {
        // 1e3·I over 200 layers: gain 1e600.
        let big = layer(2, &[1e3, 0.0, 0.0, 1e3]);
        let layers = vec![big; 200];
        let propagator = Signed { layers: &layers };
        let (_, prefix, suffix) = composite_bounds(&propagator, Direction::Forward);
        let log10 = prefix[199].value.log10_up();
        assert!((600.0..600.0 + 1e-9).contains(&log10), "{log10}");
        assert_eq!(prefix[199].value.to_f64_up(), f64::INFINITY);
        assert!((suffix[100].value.log10_up() - 300.0).abs() < 1e-9);
    }

    #[test]
    fn mass_conservation_caps_column_stochastic_products() {
        // Columns sum to 1, rows do not: forward gain of any product ≤ n = 2.
        let h = layer(2, &[0.9, 0.8, 0.1, 0.2]);
        let layers = vec![h; 30];
        let propagator = NonNegative {
            layers: &layers,
            out_sums_exact: false,
        };
        let (_, prefix, _) = composite_bounds(&propagator, Direction::Forward);
        // The product converges to the rank-one limit with rows (16/9, 2/9)·… ; its largest
        // row sum is 2·8/9 = 1.777…, the Perron vector scaled to mass 2.
        let value = prefix[29].value.to_f64_up();
        assert!(value <= 2.0 * (1.0 + 1e-12), "{value}");
        assert!(value >= 16.0 / 9.0, "{value}");
        assert!((value - 16.0 / 9.0).abs() < 1e-6, "{value}");
    }
}
