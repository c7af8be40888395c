//! The typed results of every analysis: statistics over draws (the seeds of `gain`, the tokens
//! of `audit`) of every metric of every composite at every layer, per series.
//!
//! A *draw* is one independent realisation of a stack of H_res: a seed of the `gain` generator
//! (with its tokens averaged, see [`super::TokenAggregation`]) or one token of an audited stack.
//! Each draw is measured into a *row* of values laid out by a [`RowLayout`]:
//! `[series][composite][layer][metric]`, then `[series][peak]`. Rows are folded into statistics
//! by one summariser ([`super::stats::DrawStatistics`]); [`Results`] holds its summaries and is
//! read by typed keys only: a series (`Method` for `gain`, [`Audited`] for `audit`), a
//! [`Composite`], a 1-based [`Layer`], a [`Metric`] and a [`Stat`]. Nothing outside this module
//! computes a position in a row.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::compose::Composite;
use crate::metrics::Metric;

/// A layer number, **1-based**: layer 1 is the first H_res a signal passes (`x_2 = H_1 x_1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Layer(NonZeroUsize);

impl Layer {
    /// Layer 1.
    pub(crate) const FIRST: Layer = Layer(NonZeroUsize::MIN);

    /// Layer `number` (1-based); `None` for 0.
    pub fn new(number: usize) -> Option<Layer> {
        NonZeroUsize::new(number).map(Layer)
    }

    /// The layer of a 0-based position in layer order.
    pub(crate) fn from_index(index: usize) -> Layer {
        Layer(NonZeroUsize::MIN.saturating_add(index))
    }

    /// The 1-based number, as written in every output.
    pub fn number(self) -> usize {
        self.0.get()
    }

    /// The 0-based position in layer order.
    pub(crate) fn index(self) -> usize {
        self.0.get() - 1
    }

    /// Layers 1 … `layers`, in order.
    pub fn all(layers: usize) -> impl DoubleEndedIterator<Item = Layer> + ExactSizeIterator {
        (0..layers).map(Layer::from_index)
    }

    /// The last of `layers` layers (the whole-model composite is prefix(L) = suffix(1)).
    ///
    /// # Panics
    /// When `layers` is 0 (every stack has at least one layer).
    pub fn last(layers: usize) -> Layer {
        Layer::new(layers).expect("a stack has at least one layer")
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A statistic over draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Arithmetic mean, summed in draw order.
    Mean,
    /// 50th percentile.
    Median,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// 5th percentile.
    P05,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
}

impl Stat {
    /// Every statistic.
    pub const ALL: [Stat; 8] = [
        Stat::Mean,
        Stat::Median,
        Stat::Min,
        Stat::Max,
        Stat::P05,
        Stat::P90,
        Stat::P95,
        Stat::P99,
    ];

    /// The statistics reported over seeds (`gain`), in output order.
    pub(crate) const OVER_SEEDS: [Stat; 6] = [
        Stat::Mean,
        Stat::Median,
        Stat::Min,
        Stat::Max,
        Stat::P05,
        Stat::P95,
    ];

    /// The statistics reported over tokens (`audit`), in output order.
    pub const OVER_TOKENS: [Stat; 6] = [
        Stat::Mean,
        Stat::Min,
        Stat::Median,
        Stat::P90,
        Stat::P99,
        Stat::Max,
    ];

    /// The CSV/JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Median => "median",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::P05 => "p05",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
        }
    }
}

/// Every [`Stat`] of one value over draws. A value that is NaN in any draw (an absent metric,
/// such as `mixing_entropy` of a matrix with negative entries) has NaN for every statistic.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Summary {
    /// One statistic.
    pub fn get(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Mean => self.mean,
            Stat::Median => self.median,
            Stat::Min => self.min,
            Stat::Max => self.max,
            Stat::P05 => self.p05,
            Stat::P90 => self.p90,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
        }
    }

    /// NaN everywhere (no draws, or an absent value).
    pub fn nan() -> Self {
        Self::constant(f64::NAN)
    }

    /// Every statistic equal to `value` (one draw, or one repeated value).
    pub(crate) fn constant(value: f64) -> Self {
        Summary {
            mean: value,
            median: value,
            min: value,
            max: value,
            p05: value,
            p90: value,
            p95: value,
            p99: value,
        }
    }
}

/// One series of draws in a row: the methods of `gain`, the single stack of `audit`.
pub trait Series: Copy + Eq + fmt::Debug + 'static {
    /// Every series, in row order.
    const ALL: &'static [Self];
    /// Position in [`Series::ALL`].
    fn position(self) -> usize;
    /// The CSV/JSON name.
    fn name(self) -> &'static str;
}

/// The one series of an audit: the matrices as loaded (captured, probed or rebuilt from
/// parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audited {
    /// The audited stack.
    Stack,
}

impl Series for Audited {
    const ALL: &'static [Self] = &[Audited::Stack];
    fn position(self) -> usize {
        0
    }
    fn name(self) -> &'static str {
        "stack"
    }
}

/// Per-draw maxima over layers, kept beside the per-layer values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peak {
    /// max_l amax_forward(H_l).
    SingleAmaxForward,
    /// max_l amax_backward(H_l).
    SingleAmaxBackward,
    /// max_l amax_forward(prefix(l)): the peak of the paper's forward curve.
    PrefixAmaxForward,
    /// max_l amax_backward(suffix(l)): the peak of the paper's backward curve.
    SuffixAmaxBackward,
    /// max_l max(amax_forward(H_l), amax_backward(H_l)): the largest single-layer gain in
    /// either direction.
    SingleAmaxLarger,
    /// max_l max(amax_forward(prefix(l)), amax_backward(suffix(l))): the peak of the larger of
    /// the paper's two composite curves.
    CompositeAmaxLarger,
}

impl Peak {
    /// All peaks in output order.
    pub const ALL: [Peak; 6] = [
        Peak::SingleAmaxForward,
        Peak::SingleAmaxBackward,
        Peak::PrefixAmaxForward,
        Peak::SuffixAmaxBackward,
        Peak::SingleAmaxLarger,
        Peak::CompositeAmaxLarger,
    ];

    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Peak::SingleAmaxForward => "single_amax_forward",
            Peak::SingleAmaxBackward => "single_amax_backward",
            Peak::PrefixAmaxForward => "prefix_amax_forward",
            Peak::SuffixAmaxBackward => "suffix_amax_backward",
            Peak::SingleAmaxLarger => "single_amax_larger",
            Peak::CompositeAmaxLarger => "composite_amax_larger",
        }
    }

    /// The (composite, metric) curves the peak is the per-draw maximum over layers of.
    pub fn sources(self) -> &'static [(Composite, Metric)] {
        match self {
            Peak::SingleAmaxForward => &[(Composite::Single, Metric::AmaxForward)],
            Peak::SingleAmaxBackward => &[(Composite::Single, Metric::AmaxBackward)],
            Peak::PrefixAmaxForward => &[(Composite::Prefix, Metric::AmaxForward)],
            Peak::SuffixAmaxBackward => &[(Composite::Suffix, Metric::AmaxBackward)],
            Peak::SingleAmaxLarger => &[
                (Composite::Single, Metric::AmaxForward),
                (Composite::Single, Metric::AmaxBackward),
            ],
            Peak::CompositeAmaxLarger => &[
                (Composite::Prefix, Metric::AmaxForward),
                (Composite::Suffix, Metric::AmaxBackward),
            ],
        }
    }
}

/// Which metrics a run measures (in [`Metric::ALL`] order); every composite and layer is always
/// measured. Fewer metrics cost less: the singular values and the Birkhoff projection are
/// computed only when a selected metric needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSelection {
    metrics: Vec<Metric>,
    position: [Option<u16>; Metric::ALL.len()],
}

impl MetricSelection {
    /// Every metric.
    pub fn all() -> Self {
        Self::of(&Metric::ALL)
    }

    /// The given metrics (duplicates ignored), kept in [`Metric::ALL`] order.
    pub fn of(metrics: &[Metric]) -> Self {
        let mut position = [None; Metric::ALL.len()];
        let mut chosen = Vec::new();
        for metric in Metric::ALL {
            if metrics.contains(&metric) {
                position[metric.index()] = Some(chosen.len() as u16);
                chosen.push(metric);
            }
        }
        Self {
            metrics: chosen,
            position,
        }
    }

    /// The selected metrics, in [`Metric::ALL`] order.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// Whether `metric` is measured.
    pub fn contains(&self, metric: Metric) -> bool {
        self.position[metric.index()].is_some()
    }

    /// Position of `metric` among the selected ones.
    pub(crate) fn position(&self, metric: Metric) -> Option<usize> {
        self.position[metric.index()].map(usize::from)
    }

    /// Number of selected metrics.
    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

/// Which layers of one composite a run measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSelection {
    /// Every layer 1 … L.
    Every,
    /// These layers (sorted, without duplicates, each ≤ L).
    Only(Vec<Layer>),
}

/// What a run measures of each draw: the metrics, and for each composite the layers (or none).
/// The default measures everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The metrics measured of every selected matrix.
    pub metrics: MetricSelection,
    /// Per composite (in [`Composite::ALL`] order), the layers measured; `None` skips it.
    pub composites: [Option<LayerSelection>; 3],
}

impl Default for Selection {
    fn default() -> Self {
        Self::all()
    }
}

impl Selection {
    /// Every metric of every composite at every layer.
    pub fn all() -> Self {
        Self::metrics(MetricSelection::all())
    }

    /// `metrics` of every composite at every layer.
    pub fn metrics(metrics: MetricSelection) -> Self {
        Self {
            metrics,
            composites: [
                Some(LayerSelection::Every),
                Some(LayerSelection::Every),
                Some(LayerSelection::Every),
            ],
        }
    }

    /// The same selection with `composite` measured at `layers` only (`None`: not at all).
    pub(crate) fn with_composite(
        mut self,
        composite: Composite,
        layers: Option<LayerSelection>,
    ) -> Self {
        self.composites[composite_position(composite)] = layers.map(|layers| match layers {
            LayerSelection::Only(mut only) => {
                only.sort();
                only.dedup();
                LayerSelection::Only(only)
            }
            every => every,
        });
        self
    }
}

/// The measured layers of one composite in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CompositeBlock {
    /// First position of the block within a series' profile.
    start: usize,
    /// Measured layers, in order.
    layers: Vec<Layer>,
    /// Per layer (0-based), its position among `layers`.
    position: Vec<Option<u32>>,
    /// Every layer is measured.
    every: bool,
}

/// Where each value of a draw's row lives: for each series, the selected composites' selected
/// layers × the selected metrics (`[series][composite][layer][metric]`), then `[series][peak]`
/// (a peak is kept when its composite is measured at every layer with its metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowLayout {
    series: usize,
    layers: usize,
    metrics: MetricSelection,
    blocks: [Option<CompositeBlock>; 3],
    profile_width: usize,
    peaks: Vec<Peak>,
}

impl RowLayout {
    /// The layout of `series` series of stacks of `layers` layers, measuring `selection`.
    ///
    /// # Panics
    /// When a selected layer lies beyond `layers` (configurations check this when built).
    pub(crate) fn new(series: usize, layers: usize, selection: Selection) -> Self {
        let Selection {
            metrics,
            composites,
        } = selection;
        let mut start = 0;
        let blocks = composites.map(|chosen| {
            let chosen = chosen?;
            let (every, chosen) = match chosen {
                LayerSelection::Every => (true, Layer::all(layers).collect::<Vec<_>>()),
                LayerSelection::Only(only) => (only.len() == layers, only),
            };
            let mut position = vec![None; layers];
            for (k, layer) in chosen.iter().enumerate() {
                assert!(
                    layer.index() < layers,
                    "layer {layer} beyond {layers} layers"
                );
                position[layer.index()] = Some(k as u32);
            }
            let block = CompositeBlock {
                start,
                layers: chosen,
                position,
                every,
            };
            start += block.layers.len() * metrics.len();
            Some(block)
        });
        let peaks = Peak::ALL
            .into_iter()
            .filter(|peak| {
                peak.sources().iter().all(|&(composite, metric)| {
                    metrics.contains(metric)
                        && blocks[composite_position(composite)]
                            .as_ref()
                            .is_some_and(|b| b.every)
                })
            })
            .collect();
        Self {
            series,
            layers,
            metrics,
            blocks,
            profile_width: start,
            peaks,
        }
    }

    /// Number of layers L of the stacks measured.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The measured metrics.
    pub fn metrics(&self) -> &MetricSelection {
        &self.metrics
    }

    /// The measured layers of `composite` (empty when it is not measured).
    pub(crate) fn measured_layers(&self, composite: Composite) -> &[Layer] {
        self.blocks[composite_position(composite)]
            .as_ref()
            .map_or(&[], |b| b.layers.as_slice())
    }

    /// The peaks kept (see the type's docs).
    pub(crate) fn peaks(&self) -> &[Peak] {
        &self.peaks
    }

    /// Values of one series' per-layer part.
    pub(crate) fn profile_width(&self) -> usize {
        self.profile_width
    }

    /// Values per draw.
    pub(crate) fn width(&self) -> usize {
        self.series * (self.profile_width + self.peaks.len())
    }

    /// Position of a per-layer value in a series' profile; `None` when it is not measured.
    pub(crate) fn profile_position(
        &self,
        composite: Composite,
        layer: Layer,
        metric: Metric,
    ) -> Option<usize> {
        let metric = self.metrics.position(metric)?;
        let block = self.blocks[composite_position(composite)].as_ref()?;
        let k = (*block.position.get(layer.index())?)? as usize;
        Some(block.start + k * self.metrics.len() + metric)
    }

    /// Position of a per-layer value of series number `series` in a row.
    pub(crate) fn position(
        &self,
        series: usize,
        composite: Composite,
        layer: Layer,
        metric: Metric,
    ) -> Option<usize> {
        self.profile_position(composite, layer, metric)
            .map(|p| series * self.profile_width + p)
    }

    /// The value of `metric` of `composite` at `layer` for `series` in a draw's `row` (as handed
    /// to per-draw callbacks); `None` when it is not measured.
    pub fn read<S: Series>(
        &self,
        row: &[f64],
        series: S,
        composite: Composite,
        layer: Layer,
        metric: Metric,
    ) -> Option<f64> {
        self.position(series.position(), composite, layer, metric)
            .map(|position| row[position])
    }

    /// A peak's value for `series` in a draw's `row`; `None` when it is not kept.
    pub(crate) fn read_peak<S: Series>(&self, row: &[f64], series: S, peak: Peak) -> Option<f64> {
        self.peak_position(series.position(), peak)
            .map(|position| row[position])
    }

    /// Position of a peak of series number `series` in a row.
    pub(crate) fn peak_position(&self, series: usize, peak: Peak) -> Option<usize> {
        let k = self.peaks.iter().position(|p| *p == peak)?;
        Some(self.series * self.profile_width + series * self.peaks.len() + k)
    }

    /// Per value of a row, the point the sketch measures distances from (see
    /// [`super::stats`]): [`sketch_reference`] of its metric.
    pub(crate) fn sketch_references(&self) -> Vec<f64> {
        let cells = self.profile_width / self.metrics.len().max(1);
        let mut references = Vec::with_capacity(self.width());
        for _ in 0..self.series {
            for _ in 0..cells {
                references.extend(self.metrics.metrics().iter().map(|&m| sketch_reference(m)));
            }
        }
        for _ in 0..self.series {
            references.extend(
                self.peaks
                    .iter()
                    .map(|p| sketch_reference(p.sources()[0].1)),
            );
        }
        references
    }

    /// Writes the peaks of series `series` into `row`, from its per-layer values.
    pub(crate) fn fill_peaks(&self, series: usize, row: &mut [f64]) {
        for &peak in &self.peaks {
            let value = peak
                .sources()
                .iter()
                .flat_map(|&(composite, metric)| {
                    Layer::all(self.layers).map(move |layer| (composite, layer, metric))
                })
                .map(|(composite, layer, metric)| {
                    row[self
                        .position(series, composite, layer, metric)
                        .expect("a kept peak's values are measured")]
                })
                .fold(f64::NEG_INFINITY, f64::max);
            let slot = self
                .peak_position(series, peak)
                .expect("the peak was just listed");
            row[slot] = value;
        }
    }
}

/// The reference point of a metric's sketch: 1 for the metrics that equal 1 on every doubly
/// stochastic matrix (the gains, norms and marginal sums), so that an mHC value's drift from 1
/// is what the sketch resolves; 0 for the others (distances, errors, σ₂, logarithms).
pub(crate) fn sketch_reference(metric: Metric) -> f64 {
    match metric {
        Metric::AmaxForward
        | Metric::AmaxBackward
        | Metric::AmaxLarger
        | Metric::InfNorm
        | Metric::OneNorm
        | Metric::SpectralNorm
        | Metric::RowSumMin
        | Metric::RowSumMax
        | Metric::ColSumMin
        | Metric::ColSumMax => 1.0,
        _ => 0.0,
    }
}

/// Position of a composite in row order ([`Composite::ALL`]).
pub(crate) fn composite_position(composite: Composite) -> usize {
    match composite {
        Composite::Single => 0,
        Composite::Prefix => 1,
        Composite::Suffix => 2,
    }
}

/// How the quantiles of a [`Results`] were computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Quantiles {
    /// From every stored value, with numpy's linear interpolation.
    Exact,
    /// From a log-bucketed sketch of each value's distance to its metric's reference point
    /// (see [`super::stats`]): |q̂ − q| ≤ `relative_accuracy`·|q − reference|.
    Sketched {
        /// The guaranteed relative accuracy.
        relative_accuracy: f64,
    },
}

/// Statistics over draws of every value of a [`RowLayout`], read by typed keys.
#[derive(Clone, Debug)]
pub struct Results<S: Series> {
    layout: RowLayout,
    summaries: Vec<Summary>,
    draws: u64,
    quantiles: Quantiles,
    series: PhantomData<S>,
}

impl<S: Series> Results<S> {
    /// Wraps the summaries of a fold over rows laid out by `layout`.
    pub(crate) fn new(
        layout: RowLayout,
        summaries: Vec<Summary>,
        draws: u64,
        quantiles: Quantiles,
    ) -> Self {
        debug_assert_eq!(summaries.len(), layout.width());
        debug_assert_eq!(layout.series, S::ALL.len());
        Self {
            layout,
            summaries,
            draws,
            quantiles,
            series: PhantomData,
        }
    }

    /// The row layout (layers, measured metrics, peaks).
    pub fn layout(&self) -> &RowLayout {
        &self.layout
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.layout.layers
    }

    /// The last layer L.
    pub(crate) fn last_layer(&self) -> Layer {
        Layer::last(self.layout.layers)
    }

    /// Number of draws folded (seeds or tokens).
    pub fn draws(&self) -> u64 {
        self.draws
    }

    /// How the quantiles were computed.
    pub fn quantiles(&self) -> Quantiles {
        self.quantiles
    }

    /// Statistics over draws of `metric` of `composite` at `layer`.
    ///
    /// # Panics
    /// When `metric` was not measured (see [`RowLayout::metrics`]) or `layer` is beyond L.
    pub fn summary(
        &self,
        series: S,
        composite: Composite,
        layer: Layer,
        metric: Metric,
    ) -> &Summary {
        let position = self
            .layout
            .position(series.position(), composite, layer, metric)
            .unwrap_or_else(|| panic!("metric {} was not measured in this run", metric.name()));
        &self.summaries[position]
    }

    /// One statistic of one value.
    pub fn get(
        &self,
        series: S,
        composite: Composite,
        layer: Layer,
        metric: Metric,
        stat: Stat,
    ) -> f64 {
        self.summary(series, composite, layer, metric).get(stat)
    }

    /// Statistics of the whole-model composite prefix(L) = H_L ⋯ H_1.
    pub fn whole_model(&self, series: S, metric: Metric) -> &Summary {
        self.summary(series, Composite::Prefix, self.last_layer(), metric)
    }

    /// Statistics over draws of a per-draw peak over layers.
    ///
    /// # Panics
    /// When the peak's metric was not measured.
    pub(crate) fn peak(&self, series: S, peak: Peak) -> &Summary {
        let position = self
            .layout
            .peak_position(series.position(), peak)
            .unwrap_or_else(|| panic!("peak {} was not measured in this run", peak.name()));
        &self.summaries[position]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_one_based() {
        assert_eq!(Layer::new(0), None);
        assert_eq!(Layer::FIRST.number(), 1);
        assert_eq!(Layer::from_index(9).number(), 10);
        assert_eq!(Layer::new(10).unwrap().index(), 9);
        let all: Vec<usize> = Layer::all(3).map(Layer::number).collect();
        assert_eq!(all, [1, 2, 3]);
        assert_eq!(Layer::last(7).to_string(), "7");
        assert_eq!(serde_json::to_string(&Layer::FIRST).unwrap(), "1");
    }

    #[test]
    fn every_position_of_a_row_is_used_once() {
        let metrics = MetricSelection::of(&[Metric::Sigma2, Metric::AmaxForward]);
        assert_eq!(metrics.metrics(), [Metric::AmaxForward, Metric::Sigma2]);
        let layout = RowLayout::new(2, 5, Selection::metrics(metrics));
        // Only the forward peaks survive: their metric is measured, amax_backward is not.
        assert_eq!(
            layout.peaks(),
            [Peak::SingleAmaxForward, Peak::PrefixAmaxForward]
        );
        let mut seen = vec![0; layout.width()];
        for series in 0..2 {
            for composite in Composite::ALL {
                for layer in Layer::all(5) {
                    for metric in [Metric::AmaxForward, Metric::Sigma2] {
                        seen[layout.position(series, composite, layer, metric).unwrap()] += 1;
                    }
                    assert_eq!(
                        layout.position(series, composite, layer, Metric::InfNorm),
                        None
                    );
                }
            }
            for &peak in layout.peaks() {
                seen[layout.peak_position(series, peak).unwrap()] += 1;
            }
        }
        assert!(seen.iter().all(|&count| count == 1), "{seen:?}");
    }

    #[test]
    fn peaks_are_maxima_over_layers() {
        let layout = RowLayout::new(
            1,
            3,
            Selection::metrics(MetricSelection::of(&[Metric::AmaxForward])),
        );
        let mut row = vec![0.0; layout.width()];
        for (k, layer) in Layer::all(3).enumerate() {
            let at = layout
                .position(0, Composite::Prefix, layer, Metric::AmaxForward)
                .unwrap();
            row[at] = [2.0, 5.0, 3.0][k];
        }
        layout.fill_peaks(0, &mut row);
        let peak = layout.peak_position(0, Peak::PrefixAmaxForward).unwrap();
        assert_eq!(row[peak], 5.0);
    }
}
