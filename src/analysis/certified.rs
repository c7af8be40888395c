//! `audit --certify`: an interval `[lower, upper]` on the Amax gains of every composite over
//! every input the layers can receive, from a model's parameters alone.
//!
//! - **Upper**: the sound bound of [`certify`] over each layer's reachable logit box
//!   ([`crate::load::DynamicLayer::logit_set`]).
//! - **Lower**: the largest gain of inputs actually exhibited: the audited tokens themselves (the
//!   input-independent matrices, which the zero hidden state gives, or the probe's synthetic
//!   tokens), then a deterministic local search in input space that perturbs one layer's hidden
//!   state at a time and keeps what raises the whole-model gain. Every lower value is the gain
//!   of a real input, computed with the layout's own norm, projection and Sinkhorn.
//!
//! The verdict: *certified stable* when both whole-model upper bounds are within the threshold,
//! *unstable* when a lower bound exceeds it, *not certified* otherwise.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::AuditResult;
use super::certify::{Arithmetic, Bound, Certificate, CertifyError, LogitBox, certify};
use super::results::{Audited, Layer, Stat};
use crate::compose::{Composite, prefix_composites, suffix_composites};
use crate::error::Error;
use crate::generate::HresMap;
use crate::generate::probe::draw_input;
use crate::load::{DynamicLayer, DynamicModel};
use crate::metrics::{Metric, amax_backward, amax_forward};

/// The certificate's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertifiedVerdict {
    /// Both whole-model upper bounds are within the threshold: stable for every input.
    CertifiedStable,
    /// A whole-model lower bound (an exhibited input) exceeds the threshold.
    Unstable,
    /// Neither: the upper bound exceeds the threshold, no input found does.
    NotCertified,
}

impl CertifiedVerdict {
    /// `certified stable`, `unstable`, `not certified`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CertifiedStable => "certified stable",
            Self::Unstable => "unstable",
            Self::NotCertified => "not certified",
        }
    }
}

/// Where a lower bound was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LowerSource {
    /// One of the audited tokens (the zero input's static matrices, or a probe token).
    AuditedTokens,
    /// The local search in input space.
    LocalSearch,
}

/// `[lower, upper]` on one gain of one composite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GainInterval {
    /// The largest gain exhibited by an admissible input.
    pub lower: f64,
    /// Where it was found.
    pub lower_source: LowerSource,
    /// The sound upper bound.
    pub upper: Bound,
}

impl GainInterval {
    /// upper / lower: how tight the interval is (1 = exact); +inf when lower is 0.
    pub(crate) fn ratio(&self) -> f64 {
        self.upper.upper / self.lower
    }
}

/// Both gains of one composite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CompositeInterval {
    /// amax_forward.
    pub forward: GainInterval,
    /// amax_backward.
    pub backward: GainInterval,
}

/// Settings of the lower bound's local search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SearchParams {
    /// Sweeps over the layers.
    pub sweeps: u32,
    /// Perturbations tried per layer and sweep.
    pub tries: u32,
    /// Seed of the perturbations (and of the start when no probe ran).
    pub seed: u64,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            sweeps: 12,
            tries: 4,
            seed: 0,
        }
    }
}

/// The certificate with its lower bounds and verdict.
#[derive(Clone, Debug, Serialize)]
pub struct CertifiedAudit {
    /// The upper bounds and what they rest on.
    pub certificate: Certificate,
    /// Per layer l (index l − 1): single(l), prefix(l), suffix(l).
    pub single: Vec<CompositeInterval>,
    /// See [`Self::single`].
    pub prefix: Vec<CompositeInterval>,
    /// See [`Self::single`].
    pub suffix: Vec<CompositeInterval>,
    /// The threshold judged against.
    pub max_gain: f64,
    /// The verdict.
    pub verdict: CertifiedVerdict,
    /// The search that refined the whole-model lower bounds.
    pub search: SearchParams,
    /// The probe the audited tokens came from, if any: (tokens, seed).
    pub probe: Option<(u64, u64)>,
}

impl CertifiedAudit {
    /// The whole-model composite prefix(L).
    pub fn whole_model(&self) -> &CompositeInterval {
        self.prefix.last().expect("at least one layer")
    }
}

/// Certifies `model`: the upper bounds of [`certify`] on its layers' logit boxes, the lower
/// bounds from `audited` (the audit of the same model's static matrices or of its probe, whose
/// inputs the probe's `(tokens, seed)` regenerate) and a local search; judged against
/// `max_gain`.
pub fn certify_model(
    model: &DynamicModel,
    audited: &AuditResult,
    probe: Option<(u64, u64)>,
    arithmetic: Arithmetic,
    search: SearchParams,
    max_gain: f64,
) -> Result<CertifiedAudit, Error> {
    let layers: Vec<DynamicLayer> = (0..model.layers())
        .map(|l| model.layer(l))
        .collect::<Result<_, _>>()?;
    let mut boxes: Vec<LogitBox> = Vec::with_capacity(layers.len());
    let mut map: Option<HresMap> = None;
    let failed = |source: CertifyError| Error::Certify {
        path: model.path().to_path_buf(),
        source,
    };
    for (index, layer) in layers.iter().enumerate() {
        let set = layer
            .logit_set()
            .map_err(|e| failed(e.at_layer(index + 1)))?;
        if set.proposals.len() != 1 {
            return Err(failed(CertifyError::Proposals {
                layer: index + 1,
                proposals: set.proposals.len(),
            }));
        }
        match map {
            None => map = Some(set.map),
            Some(first) if first != set.map => {
                return Err(failed(CertifyError::MixedMaps { layer: index + 1 }));
            }
            Some(_) => {}
        }
        boxes.extend(set.proposals);
    }
    let map = map.ok_or_else(|| failed(CertifyError::NoLayers))?;
    let certificate = certify(&boxes, map, arithmetic).map_err(failed)?;

    // Lower bounds from the audited tokens (max over tokens of each composite's gains).
    let results = audited.results();
    let exhibited = |composite: Composite, layer: Layer, metric: Metric| {
        results.get(Audited::Stack, composite, layer, metric, Stat::Max)
    };
    let interval = |lower: f64, upper: Bound| GainInterval {
        lower,
        lower_source: LowerSource::AuditedTokens,
        upper,
    };
    let side = |composite: Composite, bounds: &[super::certify::GainBounds]| {
        Layer::all(layers.len())
            .zip(bounds)
            .map(|(layer, b)| CompositeInterval {
                forward: interval(exhibited(composite, layer, Metric::AmaxForward), b.forward),
                backward: interval(
                    exhibited(composite, layer, Metric::AmaxBackward),
                    b.backward,
                ),
            })
            .collect::<Vec<_>>()
    };
    let single = side(Composite::Single, &certificate.single);
    let mut prefix = side(Composite::Prefix, &certificate.prefix);
    let suffix = side(Composite::Suffix, &certificate.suffix);

    // Refine the whole-model lower bounds by a local search in input space.
    for (metric, forward) in [(Metric::AmaxForward, true), (Metric::AmaxBackward, false)] {
        let start = start_inputs(&layers, audited, probe, metric, search.seed);
        let found = local_search(&layers, start, forward, search);
        let whole = prefix.last_mut().expect("at least one layer");
        let target = if forward {
            &mut whole.forward
        } else {
            &mut whole.backward
        };
        if found > target.lower {
            target.lower = found;
            target.lower_source = LowerSource::LocalSearch;
        }
    }
    let whole = prefix.last().expect("at least one layer");
    let verdict = if whole.forward.upper.upper <= max_gain && whole.backward.upper.upper <= max_gain
    {
        CertifiedVerdict::CertifiedStable
    } else if whole.forward.lower > max_gain || whole.backward.lower > max_gain {
        CertifiedVerdict::Unstable
    } else {
        CertifiedVerdict::NotCertified
    };
    Ok(CertifiedAudit {
        certificate,
        single,
        prefix,
        suffix,
        max_gain,
        verdict,
        search,
        probe,
    })
}

/// One hidden state per layer to start the search from: the audited token with the largest
/// whole-model gain (a probe token's inputs, regenerated from its seed), or the zero input (the
/// static matrices) when the audit had one token.
fn start_inputs(
    layers: &[DynamicLayer],
    audited: &AuditResult,
    probe: Option<(u64, u64)>,
    metric: Metric,
    seed: u64,
) -> Vec<Vec<f64>> {
    let worst = audited
        .tokens
        .worst_tokens
        .iter()
        .find(|w| w.metric == metric)
        .and_then(|w| w.tokens.first())
        .map(|&(token, _)| token);
    layers
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            let [rows, dim] = layer.input_shape();
            let mut x = vec![0.0; rows * dim];
            match (probe, worst) {
                (Some((_, probe_seed)), Some(token)) => {
                    draw_input(probe_seed, index, token, &mut x)
                }
                // No probe: start near the zero input (the static matrices), off the exact zero
                // so that perturbations of every direction change the normalised input.
                _ => {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(index as u64);
                    for v in &mut x {
                        *v = 1e-3 * (rng.random::<f64>() - 0.5);
                    }
                }
            }
            x
        })
        .collect()
}

/// The whole-model gain (forward: amax_forward of H_L⋯H_1; backward: amax_backward) of the
/// given H_res.
fn whole_model_gain(matrices: &[Vec<f64>], n: usize, forward: bool) -> f64 {
    let slices: Vec<&[f64]> = matrices.iter().map(Vec::as_slice).collect();
    let whole = if forward {
        prefix_composites(&slices, n).pop()
    } else {
        suffix_composites(&slices, n).into_iter().next()
    }
    .expect("at least one layer");
    let mantissa_gain = if forward {
        amax_forward(whole.mantissa(), n)
    } else {
        amax_backward(whole.mantissa(), n)
    };
    whole.scale_value(mantissa_gain)
}

/// Coordinate ascent in input space: each sweep visits every layer and tries `tries` random
/// perturbations of its hidden state (Gaussian, relative size halving every sweep), keeping one
/// only if the whole-model gain rises. Deterministic for a seed.
fn local_search(
    layers: &[DynamicLayer],
    mut inputs: Vec<Vec<f64>>,
    forward: bool,
    search: SearchParams,
) -> f64 {
    let n = layers[0].streams();
    let mut matrices: Vec<Vec<f64>> = layers
        .iter()
        .zip(&inputs)
        .map(|(layer, x)| layer.hres(x))
        .collect();
    let mut best = whole_model_gain(&matrices, n, forward);
    let mut rng = ChaCha8Rng::seed_from_u64(search.seed);
    rng.set_stream(if forward { 1 } else { 2 });
    let mut step = 1.0;
    for _ in 0..search.sweeps {
        for (index, layer) in layers.iter().enumerate() {
            let norm = inputs[index].iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = step * norm.max(1.0) / (inputs[index].len() as f64).sqrt();
            for _ in 0..search.tries {
                let trial: Vec<f64> = inputs[index]
                    .iter()
                    .map(|v| v + scale * standard_normal(&mut rng))
                    .collect();
                let previous = std::mem::replace(&mut matrices[index], layer.hres(&trial));
                let gain = whole_model_gain(&matrices, n, forward);
                if gain > best {
                    best = gain;
                    inputs[index] = trial;
                } else {
                    matrices[index] = previous;
                }
            }
        }
        step *= 0.5;
    }
    best
}

/// A standard normal draw (Box–Muller on two uniform draws).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
