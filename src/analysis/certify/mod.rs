//! A sound certificate on the Amax gains of every composite, over every input the layers can
//! receive (docs/certificate.md has the derivation).
//!
//! Input: for each layer l = 1 … L a box of logit matrices [lower, upper] (entrywise, **our
//! orientation**: rows = output streams, x_{l+1} = H_l x_l) and the map from logits to H_l.
//! Output: for every single H_l, prefix(l) = H_l⋯H_1 and suffix(l) = H_L⋯H_l, upper bounds U
//! on amax_forward(P) = ‖P·1‖_∞ and amax_backward(P) = ‖Pᵀ·1‖_∞ that hold for **every** choice
//! of logits L_1 ∈ box_1, …, L_L ∈ box_L, chosen independently per layer.
//!
//! ```
//! use mhc_analyze::analysis::certify::{certify, Arithmetic, HresMap, LogitBox};
//! use mhc_analyze::generate::SinkhornParams;
//! // Two layers whose logits lie within ±0.5 of 0: Sinkhorn with 20 iterations, paper order
//! // (rows exact). Forward gains are ≤ 1 + rounding; backward gains barely above 1.
//! let layer = LogitBox::new(2, vec![-0.5; 4], vec![0.5; 4]).unwrap();
//! let map = HresMap::Sinkhorn(SinkhornParams::default()); // 20 × (columns, then rows)
//! let certificate = certify(&[layer.clone(), layer], map, Arithmetic::Exact).unwrap();
//! let whole = certificate.whole_model();
//! assert!(whole.forward.upper < 1.0 + 1e-12);
//! assert!(whole.backward.upper < 1.0 + 1e-6);
//! ```

mod depth;
mod enclosure;
mod rounding;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use enclosure::SinkhornDiagnostics;

use depth::{NonNegative, OrientedLayer, RawBound, Signed, composite_bounds};
use enclosure::{Enclosure, Methods, Procedure, RoundingModel, enclose, transpose};
use rounding::{Interval, gamma_up, ln_1p_down, up};

pub use crate::generate::HresMap;
use crate::generate::sinkhorn::LOG_DOMAIN_RANGE;
use crate::generate::{SinkhornOrder, SinkhornParams};

/// Largest |logit bound| accepted: keeps every intermediate of the bound finite.
pub(crate) const MAX_LOGIT_MAGNITUDE: f64 = 1e100;

/// A box of n×n logit matrices: every L with lower ≤ L ≤ upper entrywise (row-major, our
/// orientation). Checked once, when built.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogitBox {
    n: usize,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl LogitBox {
    /// The box [lower, upper] of n×n matrices (row-major). Both must have n² finite entries of
    /// magnitude at most [`MAX_LOGIT_MAGNITUDE`], with lower ≤ upper.
    pub fn new(n: usize, lower: Vec<f64>, upper: Vec<f64>) -> Result<Self, CertifyError> {
        let expected = n * n;
        if n == 0 || lower.len() != expected || upper.len() != expected {
            return Err(CertifyError::Shape {
                n,
                lower: lower.len(),
                upper: upper.len(),
            });
        }
        for (k, (&lo, &hi)) in lower.iter().zip(&upper).enumerate() {
            for value in [lo, hi] {
                if !value.is_finite() || value.abs() > MAX_LOGIT_MAGNITUDE {
                    return Err(CertifyError::BadValue {
                        layer: 0,
                        row: k / n,
                        col: k % n,
                        value,
                    });
                }
            }
            if lo > hi {
                return Err(CertifyError::Inverted {
                    layer: 0,
                    row: k / n,
                    col: k % n,
                    lower: lo,
                    upper: hi,
                });
            }
        }
        Ok(Self { n, lower, upper })
    }

    /// The box `center ± radius`, entrywise, widened by the rounding of an f64 evaluation with
    /// dot products of `terms` products: `4·(terms + 2)·ε·(|center| + radius)`, so that an f64
    /// evaluation of the logits never leaves it (the bound is attained exactly by some inputs,
    /// where rounding can land either side). The rounding of a model running in float32 is the
    /// certificate's [`Arithmetic`], not part of the box.
    pub(crate) fn around(
        n: usize,
        center: &[f64],
        radius: &[f64],
        terms: usize,
    ) -> Result<Self, CertifyError> {
        let relative = 4.0 * (terms + 2) as f64 * f64::EPSILON;
        let widened: Vec<f64> = center
            .iter()
            .zip(radius)
            .map(|(c, r)| r + relative * (c.abs() + r))
            .collect();
        Self::new(
            n,
            center.iter().zip(&widened).map(|(c, r)| c - r).collect(),
            center.iter().zip(&widened).map(|(c, r)| c + r).collect(),
        )
    }

    /// Whether `logits` (row-major n×n) lie in the box.
    pub fn contains(&self, logits: &[f64]) -> bool {
        logits.len() == self.n * self.n
            && logits
                .iter()
                .zip(self.lower.iter().zip(&self.upper))
                .all(|(v, (lo, hi))| lo <= v && v <= hi)
    }

    /// The zero-width box holding only `values`.
    pub fn point(n: usize, values: Vec<f64>) -> Result<Self, CertifyError> {
        Self::new(n, values.clone(), values)
    }

    /// Number of streams n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Entrywise lower bounds (row-major).
    pub fn lower(&self) -> &[f64] {
        &self.lower
    }

    /// Entrywise upper bounds (row-major).
    pub fn upper(&self) -> &[f64] {
        &self.upper
    }

    /// max(upper) − min(lower): the range every logit matrix of the box stays within.
    pub fn range(&self) -> f64 {
        let top = self.upper.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let bottom = self.lower.iter().copied().fold(f64::INFINITY, f64::min);
        up(top - bottom)
    }

    /// The largest entry width, max(upper − lower).
    pub fn width(&self) -> f64 {
        self.lower
            .iter()
            .zip(&self.upper)
            .map(|(l, h)| up(h - l))
            .fold(0.0, f64::max)
    }

    fn transposed(&self) -> (Vec<f64>, Vec<f64>) {
        (
            transpose(&self.lower, self.n),
            transpose(&self.upper, self.n),
        )
    }
}

/// The arithmetic the model used to compute each H from its logits (docs §6): the
/// certificate covers the matrices as computed, rounding included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arithmetic {
    /// Exact real arithmetic: the mathematical map, no allowance.
    Exact,
    /// IEEE binary64 with round-to-nearest, as this crate's own Sinkhorn computes.
    F64,
    /// IEEE binary32 with round-to-nearest, as the reference models (lucidrains, DeepSeek-V4)
    /// compute.
    #[default]
    F32,
}

impl Arithmetic {
    /// The unit roundoff u (half the machine epsilon; 0 for exact arithmetic).
    pub(crate) fn unit_roundoff(self) -> f64 {
        match self {
            Self::Exact => 0.0,
            Self::F64 => f64::EPSILON / 2.0,
            Self::F32 => f64::from(f32::EPSILON) / 2.0,
        }
    }

    /// ln of the smallest normal number, rounded towards zero (−∞ for exact arithmetic).
    fn ln_smallest_normal(self) -> f64 {
        match self {
            Self::Exact => f64::NEG_INFINITY,
            // ln 2^-1022 = −708.396…, ln 2^-126 = −87.336…
            Self::F64 => -708.39,
            Self::F32 => -87.33,
        }
    }
}

/// Which direction of gain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Direction {
    /// amax_forward = ‖P·1‖_∞ (row sums).
    Forward,
    /// amax_backward = ‖Pᵀ·1‖_∞ (column sums).
    Backward,
}

/// Which argument gave a bound (the smallest of the candidates; docs §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundMethod {
    /// The exact side of a Sinkhorn map: the product of the per-layer bounds on its sums
    /// (1 plus the rounding allowance).
    ExactSide,
    /// Total mass: a non-negative product's sums on the inexact side add up to the sums on
    /// the exact side, so none exceeds n·Π(largest exact-side sum).
    MassCap,
    /// The product of per-layer bounds: induced ∞-/1-norms (HC) or the largest inexact-side
    /// sum from the Hilbert contraction and entry enclosures (Sinkhorn maps).
    LayerProduct,
    /// Interval vectors pushed through the layers' enclosures.
    IntervalPropagation,
}

/// How much a bound says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// The exact side of a Sinkhorn map: 1 up to the rounding allowance.
    ExactSide,
    /// Tighter than what structure alone gives.
    Informative,
    /// Only the mass cap n·(1 + allowance)^k: the boxes are too wide for the analysis to add
    /// anything to "non-negative with one exact side" (docs §8: useless).
    StructuralCapOnly,
    /// HC: the bound exceeds f64 (`upper` is +∞; `log10_upper` is finite).
    BeyondF64,
}

/// An upper bound on one gain of one composite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bound {
    /// The bound (+∞ only when it exceeds f64; never NaN).
    pub upper: f64,
    /// An upper bound of log10 of the bound (finite even where `upper` is +∞).
    pub log10_upper: f64,
    /// The argument that gave it.
    pub method: BoundMethod,
    /// What it says.
    pub strength: Strength,
}

/// Upper bounds on both gains of one composite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GainBounds {
    /// Bound on amax_forward.
    pub forward: Bound,
    /// Bound on amax_backward.
    pub backward: Bound,
}

/// What the certificate found about one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    /// 1-based layer.
    pub layer: usize,
    /// max(upper) − min(lower) of the layer's box.
    pub logit_range: f64,
    /// max(upper − lower) of the layer's box.
    pub box_width: f64,
    /// For Sinkhorn maps: the contraction analysis (in the orientation where rows are exact).
    pub sinkhorn: Option<SinkhornDiagnostics>,
}

/// An assumption the certificate rests on (docs §2); [`Assumption::describe`] says it in
/// words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assumption {
    /// Each layer's logits lie anywhere in its box, independently of the other layers.
    IndependentLayers,
    /// The boxes contain the logits as the model computed them, in its own precision.
    BoxesContainModelLogits,
    /// Each normalisation divides by the plain sum (+ ε for DeepSeek), without a floor.
    NoNormalisationFloor,
    /// The model rounds as [`Arithmetic`] says: IEEE round-to-nearest, a normalisation is at
    /// most n − 1 additions, one + ε, one division or reciprocal and product; its exp is
    /// within 2 ulp; a layer whose iterates may underflow gets the structural bound only.
    ModelRounding(Arithmetic),
    /// This crate's exp and ln are within 2 ulp (glibc: < 1 ulp); everything else in the
    /// bound's own evaluation is rounded outward.
    LibmAccuracy,
    /// The bound also covers this crate's f64 composition and metrics (relative allowance
    /// γ_{n(k+1)} for a product of k layers).
    MeasuredWithThisCrate,
}

impl Assumption {
    /// The assumption in one sentence.
    pub(crate) fn describe(self) -> String {
        match self {
            Self::IndependentLayers => "each layer's logits lie anywhere in its box, independently of the other layers (the reachable products are all products of members of the boxes)".into(),
            Self::BoxesContainModelLogits => "each box contains the logits exactly as the model computed them, in its own precision".into(),
            Self::NoNormalisationFloor => "each normalisation divides by the plain sum (+ ε for DeepSeek), with no clamping floor such as F.normalize's 1e-12".into(),
            Self::ModelRounding(Arithmetic::Exact) => "the model's H is the exact mathematical map of its logits (no rounding allowance)".into(),
            Self::ModelRounding(arithmetic) => format!(
                "the model computes H in {} with round-to-nearest (u = {:e}): each normalisation is at most n − 1 additions, one + ε, and one division or reciprocal and product; exp errs by < 2 ulp; a layer whose iterates may leave the normal range gets the structural bound only",
                match arithmetic { Arithmetic::F64 => "binary64", _ => "binary32" },
                arithmetic.unit_roundoff()
            ),
            Self::LibmAccuracy => "the platform's exp, ln and ln_1p err by < 2 ulp (glibc: < 1 ulp); every other operation of the bound's evaluation is rounded outward".into(),
            Self::MeasuredWithThisCrate => "the bound also covers this crate's f64 products and sums (relative allowance γ_{n(k+1)} for k layers)".into(),
        }
    }
}

/// The certificate: bounds for every composite, with what they rest on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Certificate {
    /// Number of streams n.
    pub streams: usize,
    /// The map from logits to H.
    pub map: HresMap,
    /// The model arithmetic the bounds allow for.
    pub arithmetic: Arithmetic,
    /// single(l) = H_l, index l − 1.
    pub single: Vec<GainBounds>,
    /// prefix(l) = H_l⋯H_1, index l − 1.
    pub prefix: Vec<GainBounds>,
    /// suffix(l) = H_L⋯H_l, index l − 1.
    pub suffix: Vec<GainBounds>,
    /// Per-layer diagnostics.
    pub layers: Vec<LayerReport>,
    /// What the bounds rest on.
    pub assumptions: Vec<Assumption>,
}

impl Certificate {
    /// The whole-model composite prefix(L) = suffix(1) = H_L⋯H_1.
    pub fn whole_model(&self) -> &GainBounds {
        self.prefix.last().expect("at least one layer")
    }
}

/// Why a certificate cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CertifyError {
    /// No boxes.
    #[error("certificate: no layers given, expected at least one logit box")]
    NoLayers,
    /// A box's arrays do not hold n² values.
    #[error("logit box: expected n² = {} lower and upper bounds for n = {n}, got {lower} and {upper}", n * n)]
    Shape {
        /// Streams.
        n: usize,
        /// Lower bounds given.
        lower: usize,
        /// Upper bounds given.
        upper: usize,
    },
    /// Layers with different n.
    #[error("logit box of layer {layer}: {got} streams, expected {expected} as in layer 1")]
    StreamMismatch {
        /// 1-based layer.
        layer: usize,
        /// n of layer 1.
        expected: usize,
        /// n of this layer.
        got: usize,
    },
    /// A bound that is not finite or too large.
    #[error("logit box{}: entry [{row}, {col}] is {value}, expected a finite number of magnitude at most {MAX_LOGIT_MAGNITUDE:e}", layer_text(*.layer))]
    BadValue {
        /// 1-based layer (0 when not known yet).
        layer: usize,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// The value.
        value: f64,
    },
    /// lower > upper.
    #[error("logit box{}: entry [{row}, {col}] has lower bound {lower} above upper bound {upper}", layer_text(*.layer))]
    Inverted {
        /// 1-based layer (0 when not known yet).
        layer: usize,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// Zero Sinkhorn iterations.
    #[error("Sinkhorn map: iterations must be at least 1, got 0")]
    NoIterations,
    /// A bad ε.
    #[error("DeepSeek Sinkhorn map: eps must be a finite number ≥ 0, got {0}")]
    BadEps(f64),
    /// A layer whose H_res averages several proposals (lucidrains mHC with
    /// `num_dynamic_alpha_proposals > 1`): the certificate covers one map per layer.
    #[error(
        "layer {layer} averages {proposals} dynamic-alpha proposals; the certificate covers one proposal per layer"
    )]
    Proposals {
        /// 1-based layer.
        layer: usize,
        /// Proposals of that layer.
        proposals: usize,
    },
    /// Layers whose logits become H_res by different maps.
    #[error(
        "layer {layer} maps its logits differently from layer 1; the certificate needs one map for every layer"
    )]
    MixedMaps {
        /// 1-based layer.
        layer: usize,
    },
}

impl CertifyError {
    /// The same error, naming 1-based `layer` where it did not know it yet.
    pub(crate) fn at_layer(self, layer: usize) -> Self {
        match self {
            Self::BadValue {
                layer: 0,
                row,
                col,
                value,
            } => Self::BadValue {
                layer,
                row,
                col,
                value,
            },
            Self::Inverted {
                layer: 0,
                row,
                col,
                lower,
                upper,
            } => Self::Inverted {
                layer,
                row,
                col,
                lower,
                upper,
            },
            other => other,
        }
    }
}

fn layer_text(layer: usize) -> String {
    if layer == 0 {
        String::new()
    } else {
        format!(" of layer {layer}")
    }
}

/// The certificate for layers with logit boxes `boxes` (layer l = `boxes[l − 1]`), all mapped
/// to H by `map`, for a model that computes in `arithmetic`.
pub fn certify(
    boxes: &[LogitBox],
    map: HresMap,
    arithmetic: Arithmetic,
) -> Result<Certificate, CertifyError> {
    certify_with(boxes, map, arithmetic, Methods::ALL)
}

/// [`certify`] with a choice of per-layer methods (tests check each one alone).
pub(crate) fn certify_with(
    boxes: &[LogitBox],
    map: HresMap,
    arithmetic: Arithmetic,
    methods: Methods,
) -> Result<Certificate, CertifyError> {
    let n = boxes.first().ok_or(CertifyError::NoLayers)?.n;
    for (index, b) in boxes.iter().enumerate() {
        if b.n != n {
            return Err(CertifyError::StreamMismatch {
                layer: index + 1,
                expected: n,
                got: b.n,
            });
        }
    }
    match map {
        HresMap::Identity => {}
        HresMap::Sinkhorn(SinkhornParams { iterations, .. })
        | HresMap::DeepseekSinkhorn { iterations, .. }
            if iterations == 0 =>
        {
            return Err(CertifyError::NoIterations);
        }
        HresMap::DeepseekSinkhorn { eps, .. } if !(eps.is_finite() && eps >= 0.0) => {
            return Err(CertifyError::BadEps(eps));
        }
        _ => {}
    }
    let mut reports: Vec<LayerReport> = boxes
        .iter()
        .enumerate()
        .map(|(index, b)| LayerReport {
            layer: index + 1,
            logit_range: b.range(),
            box_width: b.width(),
            sinkhorn: None,
        })
        .collect();
    let mut assumptions = vec![
        Assumption::IndependentLayers,
        Assumption::BoxesContainModelLogits,
    ];
    let (forward, backward) = match map {
        HresMap::Identity => {
            let layers: Vec<OrientedLayer> = boxes.iter().map(box_layer).collect();
            let transposed: Vec<OrientedLayer> = layers.iter().map(transposed_layer).collect();
            (
                composite_bounds(&Signed { layers: &layers }, Direction::Forward),
                composite_bounds(
                    &Signed {
                        layers: &transposed,
                    },
                    Direction::Backward,
                ),
            )
        }
        _ => {
            assumptions.push(Assumption::NoNormalisationFloor);
            assumptions.push(Assumption::ModelRounding(arithmetic));
            let rows_exact = !matches!(
                map,
                HresMap::Sinkhorn(SinkhornParams {
                    order: SinkhornOrder::RowsThenColumns,
                    ..
                })
            );
            let enclosures: Vec<Enclosure> = boxes
                .iter()
                .map(|b| layer_enclosure(b, map, arithmetic, methods))
                .collect();
            for (report, e) in reports.iter_mut().zip(&enclosures) {
                report.sinkhorn = Some(e.diagnostics.clone());
            }
            let layers: Vec<OrientedLayer> = enclosures.iter().map(enclosure_layer).collect();
            let transposed: Vec<OrientedLayer> = enclosures
                .iter()
                .map(|e| enclosure_layer(&e.transposed()))
                .collect();
            (
                composite_bounds(
                    &NonNegative {
                        layers: &layers,
                        out_sums_exact: rows_exact,
                    },
                    Direction::Forward,
                ),
                composite_bounds(
                    &NonNegative {
                        layers: &transposed,
                        out_sums_exact: !rows_exact,
                    },
                    Direction::Backward,
                ),
            )
        }
    };
    assumptions.push(Assumption::LibmAccuracy);
    assumptions.push(Assumption::MeasuredWithThisCrate);
    let sinkhorn = !matches!(map, HresMap::Identity);
    let pair = |f: &[RawBound], b: &[RawBound]| -> Vec<GainBounds> {
        f.iter()
            .zip(b)
            .map(|(&f, &b)| GainBounds {
                forward: dress(f, sinkhorn),
                backward: dress(b, sinkhorn),
            })
            .collect()
    };
    Ok(Certificate {
        streams: n,
        map,
        arithmetic,
        single: pair(&forward.0, &backward.0),
        prefix: pair(&forward.1, &backward.1),
        suffix: pair(&forward.2, &backward.2),
        layers: reports,
        assumptions,
    })
}

/// A raw bound with its value, log10 and strength.
fn dress(raw: RawBound, sinkhorn: bool) -> Bound {
    let upper = raw.value.to_f64_up();
    let strength = match (sinkhorn, raw.method) {
        (true, BoundMethod::ExactSide) => Strength::ExactSide,
        (true, BoundMethod::MassCap) => Strength::StructuralCapOnly,
        (false, _) if upper.is_infinite() => Strength::BeyondF64,
        _ => Strength::Informative,
    };
    Bound {
        upper,
        log10_upper: raw.value.log10_up(),
        method: raw.method,
        strength,
    }
}

/// The enclosure of one Sinkhorn-type layer in our orientation.
fn layer_enclosure(
    b: &LogitBox,
    map: HresMap,
    arithmetic: Arithmetic,
    methods: Methods,
) -> Enclosure {
    let n = b.n;
    let (procedure, transpose_box) = match map {
        HresMap::Sinkhorn(SinkhornParams { order, iterations }) => (
            Procedure::Exp { iterations },
            order == SinkhornOrder::RowsThenColumns,
        ),
        HresMap::DeepseekSinkhorn { iterations, eps } => {
            (Procedure::Deepseek { iterations, eps }, false)
        }
        HresMap::Identity => unreachable!("Identity has no enclosure"),
    };
    let rounding = rounding_model(arithmetic, n, b.range(), procedure);
    if transpose_box {
        let (lower, upper) = b.transposed();
        enclose(n, &lower, &upper, procedure, &rounding, methods).transposed()
    } else {
        enclose(n, &b.lower, &b.upper, procedure, &rounding, methods)
    }
}

/// The model's rounding as perturbations (docs §6), for a box of logit range `range`.
fn rounding_model(
    arithmetic: Arithmetic,
    n: usize,
    range: f64,
    procedure: Procedure,
) -> RoundingModel {
    let u = arithmetic.unit_roundoff();
    if u == 0.0 {
        return RoundingModel::EXACT;
    }
    let nf = n as f64;
    // |ln(1 + θ)| ≤ −ln(1 − γ) for |θ| ≤ γ < 1.
    let log_of = |gamma: f64| {
        if gamma < 1.0 {
            -ln_1p_down(-gamma)
        } else {
            f64::INFINITY
        }
    };
    // n − 1 additions, + ε, reciprocal (or division) and product.
    let mut step = log_of(gamma_up(nf + 2.0, u));
    // The max shift L − max L (absolute error ≤ u·range) and exp (< 2 ulp ≤ 4u).
    let logit_widening = up(u * up(range + 4.0));
    if arithmetic == Arithmetic::F64
        && matches!(procedure, Procedure::Exp { .. })
        && range > LOG_DOMAIN_RANGE
    {
        // This crate's log-domain iteration (docs §6): per step an absolute error in the
        // log-entries of at most u(6B + 2n + 6 ln n + 16), B = 2·range + ln n + 1 bounding
        // every log-entry and shift; valid while the total drift stays below 1.
        let ln_n = up(nf.ln());
        let b = up(up(2.0 * range) + up(ln_n + 1.0));
        let log_step = up(u * up(up(6.0 * b) + up(2.0 * nf + up(6.0 * ln_n + 16.0))));
        step = step.max(log_step);
    }
    let iterations = match procedure {
        Procedure::Exp { iterations } | Procedure::Deepseek { iterations, .. } => iterations,
    };
    if up(2.0 * f64::from(iterations) * step) >= 1.0 {
        step = f64::INFINITY;
    }
    RoundingModel {
        unit_roundoff: u,
        step,
        logit_widening,
        softmax_relative: log_of(gamma_up(nf + 1.0, u)),
        ln_smallest_normal: arithmetic.ln_smallest_normal(),
    }
}

/// A logit box as an interval layer (HC), forward orientation.
fn box_layer(b: &LogitBox) -> OrientedLayer {
    let n = b.n;
    let entries: Vec<Interval> = b
        .lower
        .iter()
        .zip(&b.upper)
        .map(|(&l, &h)| Interval::new(l, h))
        .collect();
    oriented(n, entries)
}

/// The transposed layer (for the backward direction).
fn transposed_layer(layer: &OrientedLayer) -> OrientedLayer {
    oriented(layer.n, transpose(&layer.entries, layer.n))
}

/// An interval layer with its sums computed from the entries.
fn oriented(n: usize, entries: Vec<Interval>) -> OrientedLayer {
    let sum = |at: &dyn Fn(usize) -> usize| {
        (0..n).fold(Interval::point(0.0), |acc, b| acc.add(entries[at(b)]))
    };
    let out_sums = (0..n).map(|i| sum(&|j| i * n + j)).collect();
    let in_sums = (0..n).map(|j| sum(&|i| i * n + j)).collect();
    OrientedLayer {
        n,
        entries,
        out_sums,
        in_sums,
    }
}

/// A Sinkhorn enclosure as a layer for forward propagation.
fn enclosure_layer(e: &Enclosure) -> OrientedLayer {
    OrientedLayer {
        n: e.n,
        entries: e.entries.clone(),
        out_sums: e.row_sums.clone(),
        in_sums: e.column_sums.clone(),
    }
}
