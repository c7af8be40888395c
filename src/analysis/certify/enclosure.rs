//! Per-layer enclosures of a Sinkhorn-type H for every logit matrix in a box.
//!
//! Everything here works in the **canonical orientation**: the last normalisation divides the
//! rows, so row sums are the exact side and column sums carry the truncation error. The
//! paper's order (columns, then rows) and DeepSeek-V4's procedure are canonical as they are;
//! rows-then-columns is canonical after transposing the box, because
//! `Sinkhorn_rows-then-columns(K) = Sinkhorn_columns-then-rows(Kᵀ)ᵀ`.
//!
//! Three sound methods, intersected (docs/certificate.md §3–§5 has the proofs):
//! - **interval scalings** (§3): every iterate is `diag(e^α) · K · diag(e^β)`; each
//!   normalisation updates α or β by a log-sum-exp that is monotone in every argument, so
//!   intervals for α and β are exact images of the intervals they come from;
//! - **Hilbert contraction** (§4): the distance (Hilbert's projective metric) between the
//!   inexact marginal and 1 shrinks by Birkhoff's coefficient τ(K) = tanh(Δ(K)/4) per half-step;
//!   a distance d and a total mass T bound the largest sum by T / (1 + (n − 1)e^{−d});
//! - **mean-value form** (§5): ln H(L) ∈ ln H(c) + J(box)·(L − c) with the Jacobian J enclosed
//!   over the whole box by interval forward differentiation; tight for narrow boxes, where
//!   interval scalings grow linearly with the iteration count.
//!
//! The model's own rounding enters as a per-step relative perturbation of the iterate's
//! entries, |ln(computed / exact step)| ≤ η, which acts like a change of the kernel (§6).

use serde::Serialize;

use super::rounding::{
    Interval, down, exp_down, exp_up, ln_1p_up, ln_down, ln_up, lse_down, lse_up, mul_down, mul_up,
    sum_down, sum_up, up,
};

/// Which Sinkhorn-type procedure, in the canonical orientation (rows normalised last).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Procedure {
    /// K = exp(L); `iterations` × (columns, rows), each dividing by the exact sum.
    Exp { iterations: u32 },
    /// K⁰ = softmax over columns of L, + ε to every entry; then rows, then
    /// (iterations − 1) × (columns, rows), each dividing by (sum + ε).
    Deepseek { iterations: u32, eps: f64 },
}

/// How the model rounds (docs/certificate.md §6). All zero / −∞ for exact arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RoundingModel {
    /// Unit roundoff u of the model's arithmetic.
    pub unit_roundoff: f64,
    /// η: bound on |ln(computed entry / exact normalisation of the computed input)| per step.
    pub step: f64,
    /// The max shift and `exp` before the first normalisation, as a perturbation of the logits.
    pub logit_widening: f64,
    /// DeepSeek: |ln(computed softmax entry / exact softmax entry)| from its sum and division.
    pub softmax_relative: f64,
    /// ln of the smallest normal number of the model's format: an iterate entry that may fall
    /// below it voids the relative error model (the layer then gets the structural enclosure).
    pub ln_smallest_normal: f64,
}

impl RoundingModel {
    /// Exact arithmetic.
    pub(crate) const EXACT: RoundingModel = RoundingModel {
        unit_roundoff: 0.0,
        step: 0.0,
        logit_widening: 0.0,
        softmax_relative: 0.0,
        ln_smallest_normal: f64::NEG_INFINITY,
    };

    /// Whether the model rounds at all.
    fn is_exact(&self) -> bool {
        self.unit_roundoff == 0.0
    }

    /// Bound on |ln K̂⁰ − ln K⁰| for the DeepSeek kernel K⁰ = softmax + ε: the logit
    /// perturbation moves ln softmax by at most twice its size, the sum and division by
    /// `softmax_relative`; adding ε only shrinks ratios; an underflowed exp adds at most
    /// TINY/ε; the final + ε rounds once (≤ 2u in ln).
    fn deepseek_kernel_perturbation(&self, eps: f64) -> f64 {
        if self.is_exact() {
            return 0.0;
        }
        let underflow = if eps > 0.0 { up(TINY / eps) } else { 0.0 };
        up(up(up(2.0 * self.logit_widening) + self.softmax_relative)
            + up(up(2.0 * self.unit_roundoff) + underflow))
    }
}

/// What the enclosure found out about one layer (canonical orientation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SinkhornDiagnostics {
    /// Δ: upper bound of the kernel's largest log cross-ratio ln(K_ij K_kl / (K_il K_kj)).
    pub cross_ratio_bound: f64,
    /// τ = tanh(Δ/4): Birkhoff's contraction coefficient bound (1 means no contraction).
    pub contraction: f64,
    /// Hilbert distance of the inexact marginal from 1 after the first normalisation (bound).
    pub initial_distance: f64,
    /// Hilbert distance of the inexact marginal from 1 at the end (bound; ∞ when unknown).
    pub final_distance: f64,
    /// Largest ln(upper / lower) over the entries of the final enclosure (∞ if a lower bound
    /// is 0).
    pub max_entry_log_width: f64,
    /// Whether an iterate entry may have left the model's normal range, so that only the
    /// structural enclosure (entries ≥ 0, exact side ≈ 1) was used.
    pub structural_only: bool,
}

/// Enclosures of H, its row sums and its column sums, valid for every logit matrix in the box
/// (row-major, n×n, in whatever orientation the caller asked for).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Enclosure {
    pub n: usize,
    pub entries: Vec<Interval>,
    pub row_sums: Vec<Interval>,
    pub column_sums: Vec<Interval>,
    pub diagnostics: SinkhornDiagnostics,
}

impl Enclosure {
    /// The same enclosure for Hᵀ.
    pub fn transposed(&self) -> Enclosure {
        let n = self.n;
        Enclosure {
            n,
            entries: transpose(&self.entries, n),
            row_sums: self.column_sums.clone(),
            column_sums: self.row_sums.clone(),
            diagnostics: self.diagnostics.clone(),
        }
    }
}

/// Row-major transpose.
pub(crate) fn transpose<T: Copy>(values: &[T], n: usize) -> Vec<T> {
    (0..n * n).map(|k| values[(k % n) * n + k / n]).collect()
}

/// Largest n for the mean-value form: its Jacobian has n⁴ entries and costs about n⁶ interval
/// operations per iteration (n = 4 in every published model).
const MEAN_VALUE_MAX_STREAMS: usize = 16;

/// An absolute allowance for an underflowed exp in DeepSeek's softmax (+ ε absorbs it).
const TINY: f64 = 1e-300;

/// Which methods an enclosure uses: all three in the certificate, one at a time in tests (an
/// unsound method would otherwise hide wherever another one is tighter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Methods {
    /// Interval scalings: entry enclosures, and interval distances in the Hilbert recursion.
    pub scalings: bool,
    /// The Hilbert recursion for the inexact marginal.
    pub hilbert: bool,
    /// The mean-value form for the entries.
    pub mean_value: bool,
}

impl Methods {
    /// Everything (the certificate).
    pub const ALL: Methods = Methods {
        scalings: true,
        hilbert: true,
        mean_value: true,
    };
}

/// The enclosure of H for every logit matrix in the box [lower, upper] (canonical orientation,
/// row-major n×n), as the model computes it under `rounding`, by the given methods.
pub(crate) fn enclose(
    n: usize,
    lower: &[f64],
    upper: &[f64],
    procedure: Procedure,
    rounding: &RoundingModel,
    methods: Methods,
) -> Enclosure {
    if !(rounding.step.is_finite() && rounding.logit_widening.is_finite()) {
        // The rounding model gives no bound (an astronomically wide box in this crate's log
        // domain): nothing is certified beyond non-negativity.
        let diagnostics = SinkhornDiagnostics {
            cross_ratio_bound: f64::INFINITY,
            contraction: 1.0,
            initial_distance: f64::INFINITY,
            final_distance: f64::INFINITY,
            max_entry_log_width: f64::INFINITY,
            structural_only: true,
        };
        return structural_enclosure(n, 0.0, f64::INFINITY, rounding, diagnostics);
    }
    let mut run = Run::start(n, lower, upper, procedure, rounding);
    run.interval_distances = methods.scalings;
    let eta = rounding.step;
    let two_eta = up(2.0 * eta);
    // The Hilbert state after the first normalisation (Exp: the column step, which is the
    // softmax over columns) or of the kernel itself (DeepSeek: columns sum to 1 + nε).
    let (mut state, first_remaining) = match procedure {
        Procedure::Exp { .. } => {
            let ratios = softmax_ratio_distance(n, lower, upper, rounding.logit_widening);
            run.step(0);
            let state = HilbertState {
                other: up(ratios + two_eta).min(run.interval_distance(true)),
                normalised: two_eta.min(run.interval_distance(false)),
                floor: exp_down(-eta),
            };
            (state, 1)
        }
        Procedure::Deepseek { eps, .. } => {
            let k0 = rounding.deepseek_kernel_perturbation(eps);
            let ratios = softmax_ratio_distance(n, lower, upper, rounding.logit_widening);
            let state = HilbertState {
                other: up(ratios + up(2.0 * k0)).min(run.interval_distance(true)),
                normalised: up(2.0 * k0).min(run.interval_distance(false)),
                floor: down(down(1.0 + n as f64 * eps) * exp_down(-k0)),
            };
            (state, 0)
        }
    };
    let initial_distance = state.other;
    for index in first_remaining..run.steps {
        state = run.hilbert_step(state, index);
    }
    debug_assert!(run.rows_at(run.steps - 1), "the last step normalises rows");
    let final_distance = if methods.hilbert {
        state.other
    } else {
        run.interval_distance(false)
    };
    let diagnostics = SinkhornDiagnostics {
        cross_ratio_bound: run.delta0,
        contraction: tau_up(run.delta0),
        initial_distance,
        final_distance,
        max_entry_log_width: f64::INFINITY,
        structural_only: run.underflow,
    };
    let (row_lo, row_hi) = (state.floor, exp_up(eta));
    if run.underflow {
        return structural_enclosure(n, row_lo, row_hi, rounding, diagnostics);
    }
    let mut entries: Vec<Interval> = if methods.scalings {
        run.log_entries().iter().map(|e| e.exp()).collect()
    } else {
        vec![Interval::new(0.0, f64::INFINITY); n * n]
    };
    if methods.mean_value && n <= MEAN_VALUE_MAX_STREAMS {
        let mean_value = mean_value_entries(n, lower, upper, procedure, rounding, &run);
        for (e, m) in entries.iter_mut().zip(mean_value) {
            *e = e.intersect(m);
        }
    }
    finish_sums(n, entries, row_lo, row_hi, final_distance, diagnostics)
}

/// Intervals of ln K⁰ = ln(softmax over columns of L + ε) as the model computes it.
fn deepseek_kernel(
    n: usize,
    lower: &[f64],
    upper: &[f64],
    eps: f64,
    rounding: &RoundingModel,
) -> Vec<Interval> {
    let softmax = softmax_columns(n, lower, upper, rounding.logit_widening);
    let u = rounding.unit_roundoff;
    let rho = rounding.softmax_relative;
    softmax
        .iter()
        .map(|s| {
            let (lo, hi) = if rounding.is_exact() {
                (s.lo, s.hi)
            } else {
                (
                    down(mul_down(s.lo, exp_down(-rho)) - TINY).max(0.0),
                    up(mul_up(s.hi, exp_up(rho)) + TINY),
                )
            };
            let lo = mul_down(down(lo + eps), down(1.0 - u));
            let hi = mul_up(up(hi + eps), up(1.0 + u));
            Interval::new(ln_down(lo), ln_up(hi))
        })
        .collect()
}

/// Intervals of s_ij = e^{L_ij} / Σ_k e^{L_kj} over the box widened by `widen`:
/// s_ij = 1 / (1 + Σ_{k≠i} e^{L_kj − L_ij}) is increasing in L_ij and decreasing in the other
/// entries of its column, so each end is attained at a corner of the box.
fn softmax_columns(n: usize, lower: &[f64], upper: &[f64], widen: f64) -> Vec<Interval> {
    let lo = |k: usize| down(lower[k] - widen);
    let hi = |k: usize| up(upper[k] + widen);
    let mut out = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            // ln(1 + Σ_k e^{x_k}) = lse(0, x_1, …).
            let mut smallest = vec![0.0];
            let mut largest = vec![0.0];
            for k in (0..n).filter(|&k| k != i) {
                smallest.push(down(lo(k * n + j) - hi(i * n + j)));
                largest.push(up(hi(k * n + j) - lo(i * n + j)));
            }
            let s_lo = exp_down(-lse_up(&largest));
            let s_hi = exp_up(-lse_down(&smallest)).min(1.0).max(s_lo);
            out.push(Interval::new(s_lo, s_hi));
        }
    }
    out
}

/// Upper bound of d_H(r, 1) for the row sums r of softmax_columns(L) + ε, L in the box widened
/// by `widen`, pair by pair from (s_ij + ε)/(s_kj + ε) ≤ max(1, s_ij/s_kj) = max(1, e^{L_ij − L_kj})
/// (the softmax shares each column's normaliser), so r_i / r_k ≤ max(1, max_j e^{L_ij − L_kj}).
fn softmax_ratio_distance(n: usize, lower: &[f64], upper: &[f64], widen: f64) -> f64 {
    let mut d: f64 = 0.0;
    for i in 0..n {
        for k in (0..n).filter(|&k| k != i) {
            for j in 0..n {
                let gap = up(upper[i * n + j] - lower[k * n + j]);
                d = d.max(up(gap + up(2.0 * widen)));
            }
        }
    }
    d
}

/// Upper bound of Birkhoff's τ = tanh(Δ/4) = (1 − q)/(1 + q), q = e^{−Δ/2}, from an upper
/// bound of Δ.
pub(crate) fn tau_up(delta: f64) -> f64 {
    if delta <= 0.0 {
        return 0.0;
    }
    let q = exp_down(down(-0.5 * delta));
    up(up(1.0 - q) / down(1.0 + q)).min(1.0)
}

/// Upper bound of Δ(K) = max over i ≠ k, j ≠ l of ln K_ij + ln K_kl − ln K_il − ln K_kj, from
/// intervals of ln K.
fn cross_ratio_bound(n: usize, log_kernel: &[Interval]) -> f64 {
    let mut delta: f64 = 0.0;
    for i in 0..n {
        for k in (0..n).filter(|&k| k != i) {
            for j in 0..n {
                for l in (0..n).filter(|&l| l != j) {
                    let plus = up(log_kernel[i * n + j].hi + log_kernel[k * n + l].hi);
                    let minus = down(log_kernel[i * n + l].lo + log_kernel[k * n + j].lo);
                    delta = delta.max(up(plus - minus));
                }
            }
        }
    }
    delta
}

/// Upper bound of the Hilbert distance d_H(s, 1) = ln(max s / min s) of a positive vector
/// from intervals of its entries: max over a ≠ b of ln(hi_a / lo_b).
fn hilbert_distance_of(sums: &[Interval]) -> f64 {
    let mut d: f64 = 0.0;
    for (a, sa) in sums.iter().enumerate() {
        for (b, sb) in sums.iter().enumerate() {
            if a != b {
                d = d.max(up(ln_up(sa.hi) - ln_down(sb.lo)));
            }
        }
    }
    d
}

/// Bounds on every member of n positive numbers whose total lies in [t_lo, t_hi] and whose
/// Hilbert distance from 1 is at most d (max/min ≤ e^d): each is at most
/// t_hi / (1 + (n − 1)e^{−d}) and at least t_lo / (1 + (n − 1)e^{d}) (docs/certificate.md,
/// Lemma 4; both attained by (m, m e^{−d}, …)).
pub(crate) fn spread_bounds(n: usize, t_lo: f64, t_hi: f64, d: f64) -> Interval {
    let others = (n - 1) as f64;
    let hi = up(t_hi / down(1.0 + mul_down(others, exp_down(-d))));
    let lo_denominator = up(1.0 + mul_up(others, exp_up(d)));
    let lo = if lo_denominator.is_finite() {
        down(t_lo / lo_denominator).max(0.0)
    } else {
        0.0
    };
    Interval::new(lo, hi.max(lo))
}

/// The Hilbert recursion's state after a step: `other` bounds the distance from 1 of the sums
/// the last step did not normalise, `normalised` of those it did, and `floor` is a lower bound
/// of each sum it normalised.
#[derive(Clone, Copy, Debug)]
struct HilbertState {
    other: f64,
    normalised: f64,
    floor: f64,
}

/// Interval scalings (docs §3) run step by step over a box.
struct Run {
    n: usize,
    /// Intervals of ln K̂ for the model's kernel so far (it drifts by η per step).
    kernel: Vec<Interval>,
    /// Row log-scalings α_i.
    alpha: Vec<Interval>,
    /// Column log-scalings β_j.
    beta: Vec<Interval>,
    eps: f64,
    rounding: RoundingModel,
    /// Whether the first step normalises rows (DeepSeek) or columns (Exp).
    first_rows: bool,
    /// Number of normalisations.
    steps: usize,
    /// The Δ bound of the initial kernel.
    delta0: f64,
    /// Total step perturbation so far.
    drift: f64,
    /// Whether some iterate entry may have left the model's normal range.
    underflow: bool,
    /// Whether the Hilbert recursion may use the distances the intervals show.
    interval_distances: bool,
    /// Intervals of ln of each exact step's output (for the mean-value form).
    iterates: Vec<Vec<Interval>>,
}

impl Run {
    /// The kernel and zero scalings, before any step.
    fn start(
        n: usize,
        lower: &[f64],
        upper: &[f64],
        procedure: Procedure,
        rounding: &RoundingModel,
    ) -> Self {
        let (kernel, eps, first_rows, steps) = match procedure {
            Procedure::Exp { iterations } => {
                let w = rounding.logit_widening;
                let kernel = lower
                    .iter()
                    .zip(upper)
                    .map(|(&l, &h)| Interval::new(l, h).widen(w))
                    .collect();
                (kernel, 0.0, false, 2 * iterations as usize)
            }
            Procedure::Deepseek { iterations, eps } => (
                deepseek_kernel(n, lower, upper, eps, rounding),
                eps,
                true,
                2 * iterations as usize - 1,
            ),
        };
        let delta0 = cross_ratio_bound(n, &kernel);
        // The model's first iterate: exp(L − max L) for Exp, K⁰ itself for DeepSeek.
        let smallest = match procedure {
            Procedure::Exp { .. } => {
                let top = kernel
                    .iter()
                    .map(|k| k.hi)
                    .fold(f64::NEG_INFINITY, f64::max);
                kernel
                    .iter()
                    .map(|k| down(k.lo - top))
                    .fold(f64::INFINITY, f64::min)
            }
            Procedure::Deepseek { .. } => kernel.iter().map(|k| k.lo).fold(f64::INFINITY, f64::min),
        };
        Self {
            n,
            kernel,
            alpha: vec![Interval::point(0.0); n],
            beta: vec![Interval::point(0.0); n],
            eps,
            rounding: *rounding,
            first_rows,
            steps,
            delta0,
            drift: 0.0,
            underflow: smallest < rounding.ln_smallest_normal,
            interval_distances: true,
            iterates: Vec::with_capacity(steps),
        }
    }

    /// Whether step `index` (from 0) normalises rows.
    fn rows_at(&self, index: usize) -> bool {
        index.is_multiple_of(2) == self.first_rows
    }

    /// Intervals of ln of the current iterate's entries: ln K̂_ij + α_i + β_j.
    fn log_entries(&self) -> Vec<Interval> {
        let n = self.n;
        (0..n * n)
            .map(|k| self.kernel[k].add(self.alpha[k / n]).add(self.beta[k % n]))
            .collect()
    }

    /// Intervals of the current iterate's row sums (`rows`) or column sums.
    fn sums(&self, rows: bool) -> Vec<Interval> {
        let n = self.n;
        let entries = self.log_entries();
        (0..n)
            .map(|a| {
                let at = |b: usize| if rows { a * n + b } else { b * n + a };
                Interval::new(
                    sum_down((0..n).map(|b| exp_down(entries[at(b)].lo))),
                    sum_up((0..n).map(|b| exp_up(entries[at(b)].hi))),
                )
            })
            .collect()
    }

    /// The Hilbert distance from 1 of the current row sums (`rows`) or column sums that the
    /// intervals show (+∞ when they are not to be used).
    fn interval_distance(&self, rows: bool) -> f64 {
        if self.interval_distances {
            hilbert_distance_of(&self.sums(rows))
        } else {
            f64::INFINITY
        }
    }

    /// Step `index`: the exact normalisation on the intervals, then the model's perturbation
    /// of its result (the kernel moves by η).
    fn step(&mut self, index: usize) {
        let n = self.n;
        let rows = self.rows_at(index);
        let ln_eps = (self.eps > 0.0).then(|| (ln_down(self.eps), ln_up(self.eps)));
        let mut updated = Vec::with_capacity(n);
        for a in 0..n {
            let at = |b: usize| if rows { a * n + b } else { b * n + a };
            let (own, other) = if rows {
                (self.alpha[a], &self.beta)
            } else {
                (self.beta[a], &self.alpha)
            };
            // new = −ln(Σ_b e^{ℓ_ab + other_b} + ε e^{−own}): decreasing in ℓ and `other`,
            // increasing in `own`, each appearing once.
            let mut low_args: Vec<f64> = (0..n)
                .map(|b| down(self.kernel[at(b)].lo + other[b].lo))
                .collect();
            let mut high_args: Vec<f64> = (0..n)
                .map(|b| up(self.kernel[at(b)].hi + other[b].hi))
                .collect();
            if let Some((eps_lo, eps_hi)) = ln_eps {
                low_args.push(down(eps_lo - own.hi));
                high_args.push(up(eps_hi - own.lo));
            }
            updated.push(Interval::new(-lse_up(&high_args), -lse_down(&low_args)));
        }
        if rows {
            self.alpha = updated;
        } else {
            self.beta = updated;
        }
        let entries = self.log_entries();
        let eta = self.rounding.step;
        if entries
            .iter()
            .any(|e| down(e.lo - eta) < self.rounding.ln_smallest_normal)
        {
            self.underflow = true;
        }
        self.iterates.push(entries);
        if eta > 0.0 {
            for k in &mut self.kernel {
                *k = k.widen(eta);
            }
            self.drift = up(self.drift + eta);
        }
    }

    /// Step `index` with the Hilbert recursion beside it (docs §4, Lemma 3):
    /// other' ≤ normalised + τ·other + π + 2η, normalised' ≤ π + 2η, where π bounds what
    /// DeepSeek's + ε adds ([`epsilon_step_distance`]) and 2η the model's rounding; each also
    /// ≤ what the intervals show.
    fn hilbert_step(&mut self, state: HilbertState, index: usize) -> HilbertState {
        let n = self.n;
        let rows = self.rows_at(index);
        let eta = self.rounding.step;
        let two_eta = up(2.0 * eta);
        // Lower bound of the sums about to be normalised: from the intervals, and from the
        // total mass (≥ n·floor) with the distance `other`.
        let before = self.sums(rows);
        let from_intervals = before.iter().map(|s| s.lo).fold(f64::INFINITY, f64::min);
        let total_lo = mul_down(n as f64, state.floor);
        let from_mass = spread_bounds(n, total_lo, f64::INFINITY, state.other).lo;
        let sum_floor = from_intervals.max(from_mass);
        let pi = epsilon_step_distance(self.eps, sum_floor, state.other);
        let tau = tau_up(up(self.delta0 + up(4.0 * self.drift)));
        self.step(index);
        let perturbation = up(pi + two_eta);
        let other = up(up(state.normalised + mul_up(tau, state.other)) + perturbation)
            .min(self.interval_distance(!rows));
        let normalised = perturbation.min(self.interval_distance(rows));
        let ratio = if self.eps == 0.0 {
            1.0
        } else if sum_floor > 0.0 {
            down(sum_floor / up(sum_floor + self.eps))
        } else {
            0.0
        };
        HilbertState {
            other,
            normalised,
            floor: mul_down(ratio, exp_down(-eta)),
        }
    }
}

/// π: bound on the Hilbert distance d_H(θ, 1) of DeepSeek's extra factors θ_i = s_i/(s_i + ε)
/// (dividing by sum + ε instead of the sum), for sums s with min s ≥ `floor` and
/// max s / min s ≤ e^d: θ is increasing in s, so θ_max/θ_min ≤ ρ(s + ε)/(ρs + ε) with ρ = e^d
/// and s = min s; that is increasing in ρ and decreasing in s, hence evaluated at the bounds.
/// It never exceeds min(d, ln(1 + ε/floor)). Zero without ε.
fn epsilon_step_distance(eps: f64, floor: f64, d: f64) -> f64 {
    if eps == 0.0 {
        return 0.0;
    }
    if floor <= 0.0 {
        return d;
    }
    let crude = ln_1p_up(up(eps / floor));
    let rho = exp_up(d);
    if !rho.is_finite() {
        return crude;
    }
    let numerator = mul_up(rho, up(floor + eps));
    let denominator = down(mul_down(rho, floor) + eps);
    up(ln_up(numerator) - ln_down(denominator))
        .min(crude)
        .min(d)
}

/// Row and column sums from entry intervals, the exact side's known range [row_lo, row_hi]
/// and the Hilbert distance bound on the inexact side.
fn finish_sums(
    n: usize,
    mut entries: Vec<Interval>,
    row_lo: f64,
    row_hi: f64,
    final_distance: f64,
    mut diagnostics: SinkhornDiagnostics,
) -> Enclosure {
    // Entries are non-negative and none exceeds its row's sum.
    for e in &mut entries {
        *e = e.intersect(Interval::new(0.0, row_hi));
    }
    let row_sums: Vec<Interval> = (0..n)
        .map(|i| {
            Interval::new(
                sum_down((0..n).map(|j| entries[i * n + j].lo)),
                sum_up((0..n).map(|j| entries[i * n + j].hi)),
            )
            .intersect(Interval::new(row_lo, row_hi))
        })
        .collect();
    let total_lo = sum_down(row_sums.iter().map(|s| s.lo));
    let total_hi = sum_up(row_sums.iter().map(|s| s.hi));
    let spread = spread_bounds(n, total_lo, total_hi, final_distance);
    let column_sums: Vec<Interval> = (0..n)
        .map(|j| {
            Interval::new(
                sum_down((0..n).map(|i| entries[i * n + j].lo)),
                sum_up((0..n).map(|i| entries[i * n + j].hi)),
            )
            .intersect(spread)
        })
        .collect();
    diagnostics.max_entry_log_width = entries
        .iter()
        .map(|e| {
            if e.lo > 0.0 {
                up(ln_up(e.hi) - ln_down(e.lo))
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max);
    Enclosure {
        n,
        entries,
        row_sums,
        column_sums,
        diagnostics,
    }
}

/// The enclosure from structure alone, for a layer whose iterates may underflow in the model's
/// format: entries in [0, row_hi], rows in [row_lo, row_hi], every column sum at most the total
/// mass, each widened by what underflowed terms can add (each below the subnormal spacing,
/// < e^{ln_min − 20}).
fn structural_enclosure(
    n: usize,
    row_lo: f64,
    row_hi: f64,
    rounding: &RoundingModel,
    mut diagnostics: SinkhornDiagnostics,
) -> Enclosure {
    let slack = mul_up(n as f64, exp_up(up(rounding.ln_smallest_normal - 20.0)));
    let row_hi = up(row_hi + slack);
    let row_lo = down(row_lo - slack).max(0.0);
    let column_hi = mul_up(n as f64, row_hi);
    diagnostics.final_distance = f64::INFINITY;
    Enclosure {
        n,
        entries: vec![Interval::new(0.0, row_hi); n * n],
        row_sums: vec![Interval::new(row_lo, row_hi); n],
        column_sums: vec![Interval::new(0.0, column_hi); n],
        diagnostics,
    }
}

/// Mean-value form (docs §5): entry intervals of the model's H over the box,
/// exp(ln H(c) ± (Σ_v |J_·v|·r_v + ζ)), with c the box's centre, r its radii, J the Jacobian of
/// ln H with respect to the logits enclosed over the whole box, and ζ the model's rounding.
fn mean_value_entries(
    n: usize,
    lower: &[f64],
    upper: &[f64],
    procedure: Procedure,
    rounding: &RoundingModel,
    over_box: &Run,
) -> Vec<Interval> {
    let nn = n * n;
    let (centre, radius): (Vec<f64>, Vec<f64>) = lower
        .iter()
        .zip(upper)
        .map(|(&l, &h)| {
            if l == h {
                (l, 0.0)
            } else {
                let c = (l + 0.5 * (h - l)).clamp(l, h);
                (c, up(c - l).max(up(h - c)))
            }
        })
        .unzip();
    // ln H(c) in exact arithmetic (our own rounding only).
    let mut at_centre = Run::start(n, &centre, &centre, procedure, &RoundingModel::EXACT);
    for index in 0..at_centre.steps {
        at_centre.step(index);
    }
    let log_at_centre = at_centre.log_entries();
    let jacobian = jacobian_over_box(n, lower, upper, procedure, over_box);
    let zeta = rounding_deviation(procedure, rounding, over_box);
    (0..nn)
        .map(|a| {
            let spread = sum_up(
                jacobian[a]
                    .iter()
                    .zip(&radius)
                    .map(|(d, &r)| mul_up(d.mag(), r)),
            );
            let total = up(spread + zeta);
            Interval::new(
                exp_down(down(log_at_centre[a].lo - total)),
                exp_up(up(log_at_centre[a].hi + total)),
            )
        })
        .collect()
}

/// Enclosure over the box of J_(ij),(km) = ∂ ln H_ij / ∂ L_km, by interval forward
/// differentiation of the scalings: a row step gives
/// dα_i' = −Σ_j q_ij (dℓ_ij + dβ_j) + q0_i dα_i with q the step's output (a row of weights) and
/// q0_i = 1 − Σ_j q_ij (DeepSeek's ε; 0 otherwise): a convex combination, so each coefficient
/// also lies in the hull of the combined ones. Columns likewise.
fn jacobian_over_box(
    n: usize,
    lower: &[f64],
    upper: &[f64],
    procedure: Procedure,
    over_box: &Run,
) -> Vec<Vec<Interval>> {
    let nn = n * n;
    let zero = Interval::point(0.0);
    let kernel_derivative: Vec<Vec<Interval>> = match procedure {
        Procedure::Exp { .. } => (0..nn)
            .map(|a| {
                (0..nn)
                    .map(|v| if a == v { Interval::point(1.0) } else { zero })
                    .collect()
            })
            .collect(),
        Procedure::Deepseek { eps, .. } => {
            // ℓ_ij = ln(s_ij + ε): ∂ℓ_ij/∂L_km = [m = j] · s_ij/(s_ij + ε) · (δ_ik − s_kj).
            let s = softmax_columns(n, lower, upper, 0.0);
            (0..nn)
                .map(|a| {
                    let (i, j) = (a / n, a % n);
                    let w = if eps > 0.0 {
                        let hi = s[a].hi;
                        Interval::new(down(s[a].lo / up(s[a].lo + eps)), up(hi / down(hi + eps)))
                    } else {
                        Interval::point(1.0)
                    };
                    (0..nn)
                        .map(|v| {
                            let (k, m) = (v / n, v % n);
                            if m != j {
                                return zero;
                            }
                            let delta = if k == i { 1.0 } else { 0.0 };
                            let s_kj = s[k * n + j];
                            w.mul(Interval::new(down(delta - s_kj.hi), up(delta - s_kj.lo)))
                        })
                        .collect()
                })
                .collect()
        }
    };
    let mut d_alpha = vec![vec![zero; nn]; n];
    let mut d_beta = vec![vec![zero; nn]; n];
    for (index, iterate) in over_box.iterates.iter().enumerate() {
        let rows = over_box.rows_at(index);
        let mut updated = Vec::with_capacity(n);
        for a in 0..n {
            let at = |b: usize| if rows { a * n + b } else { b * n + a };
            let weights: Vec<Interval> = (0..n)
                .map(|b| iterate[at(b)].exp().intersect(Interval::new(0.0, 1.0)))
                .collect();
            let remainder = (over_box.eps > 0.0).then(|| {
                let hi = up(1.0 - sum_down(weights.iter().map(|w| w.lo))).min(1.0);
                let lo = down(1.0 - sum_up(weights.iter().map(|w| w.hi))).clamp(0.0, hi);
                Interval::new(lo, hi)
            });
            let (own, other) = if rows {
                (&d_alpha[a], &d_beta)
            } else {
                (&d_beta[a], &d_alpha)
            };
            let coefficients: Vec<Interval> = (0..nn)
                .map(|v| {
                    let terms: Vec<Interval> = (0..n)
                        .map(|b| kernel_derivative[at(b)][v].add(other[b][v]).neg())
                        .collect();
                    let mut direct = terms
                        .iter()
                        .zip(&weights)
                        .fold(zero, |acc, (t, w)| acc.add(w.mul(*t)));
                    let mut hull = terms[1..].iter().fold(terms[0], |h, t| h.hull(*t));
                    if let Some(q0) = remainder {
                        direct = direct.add(q0.mul(own[v]));
                        hull = hull.hull(own[v]);
                    }
                    direct.intersect(hull)
                })
                .collect();
            updated.push(coefficients);
        }
        if rows {
            d_alpha = updated;
        } else {
            d_beta = updated;
        }
    }
    (0..nn)
        .map(|a| {
            (0..nn)
                .map(|v| {
                    kernel_derivative[a][v]
                        .add(d_alpha[a / n][v])
                        .add(d_beta[a % n][v])
                })
                .collect()
        })
        .collect()
}

/// ζ: bound on |ln(the model's H) − ln(exact H)| for the same logits. The model's iterate is
/// diag(e^α̂)·K̂·diag(e^β̂) with |ln K̂ − ln K| ≤ k (k grows by η per step), and log-sum-exp is
/// 1-Lipschitz in the largest argument change, so a step moves its scaling by at most
/// max(k + deviation of the other scaling, deviation of its own old value when ε > 0).
fn rounding_deviation(procedure: Procedure, rounding: &RoundingModel, run: &Run) -> f64 {
    if rounding.is_exact() {
        return 0.0;
    }
    let (mut k, eps) = match procedure {
        Procedure::Exp { .. } => (rounding.logit_widening, 0.0),
        Procedure::Deepseek { eps, .. } => (rounding.deepseek_kernel_perturbation(eps), eps),
    };
    let (mut alpha, mut beta) = (0.0f64, 0.0f64);
    for index in 0..run.steps {
        if run.rows_at(index) {
            alpha = up(k + beta).max(if eps > 0.0 { alpha } else { 0.0 });
        } else {
            beta = up(k + alpha).max(if eps > 0.0 { beta } else { 0.0 });
        }
        k = up(k + rounding.step);
    }
    up(up(k + alpha) + beta)
}
