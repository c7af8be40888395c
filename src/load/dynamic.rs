//! The token-dependent H_res of a model: each layer's parameters, read one layer at a time, and
//! the map from one token's hidden state to the H_res that layer applies to it.
//!
//! [`load_hres`](super::load_hres) rebuilds the input-independent part only (the hidden state set
//! to zero). A [`DynamicModel`] knows, for every parameter layout, everything that shapes H_res:
//! the norm (its formula, weight and ε), the projection, whether a `tanh` bounds it, the scale,
//! the static logits and the Sinkhorn variant. It gives
//! - [`DynamicLayer::hres`]: the H_res for one input, in this crate's orientation
//!   (`x_{l+1} = H x_l`, **rows = output streams**), as the layout's own code computes it
//!   (tested against the packages' forward passes in `tests/data/make_dynamic.py`);
//! - [`DynamicLayer::logit_set`]: entry-wise bounds on the logits over **every** input the
//!   layer can receive, and how logits become H_res ([`HresMap`]): the input of a certificate;
//! - [`DynamicLayer::initial_hres`]: the H_res of the layout's own initialisation, where known.
//!
//! The synthetic-input probe built on this is [`crate::generate::probe`]. This module draws
//! nothing: it is a pure function of parameters and inputs, so that the certificate and the
//! probe share it.
//!
//! # Inputs
//! One token's input is a row-major `[rows, dim]` slice ([`DynamicLayer::input_shape`]): the n
//! residual streams (`rows = n`) for the lucidrains layouts and DeepSeek-V4 (flattened stream by
//! stream, as DeepSeek's `x.flatten(2)` does), and the module's single input vector (`rows = 1`)
//! for mhc-pytorch, whose module copies it into n identical streams itself.
//!
//! # Bounds
//! Every layout normalises its input before projecting it: an RMS-normalised vector has
//! ‖x̂‖₂ ≤ √dim (√(n·dim) for DeepSeek's flattened norm; an ε in the denominator only shrinks
//! it), so with the norm weight γ folded into each projection row, φ'_k = γ∘φ_k,
//! |⟨x̂, φ'_k⟩| ≤ √dim·‖φ'_k‖₂ (Cauchy–Schwarz, equality for x̂ ∥ φ'_k). A logit is
//! `static + scale·act(⟨x̂, φ'_k⟩)` with act = tanh or the identity, so it lies in
//! `static ± |scale|·act(√dim·‖φ'_k‖₂)`. Logits that share an input are bounded separately:
//! the box is sound, not jointly tight.

use std::path::Path;

use serde::Serialize;

use super::layouts::{
    self, DeepseekDynamic, Layout, LoadOptions, LucidrainsDynamic, MhcPytorchDynamic,
};
use super::{LoadError, TensorSource, open};
pub use crate::analysis::certify::LogitBox;
pub use crate::generate::HresMap;

/// Everything a certificate needs about one layer: H_res = mean over proposals p of
/// `map(L_p)`, with each `L_p` in `proposals[p]` (one proposal except for lucidrains mHC
/// modules built with `num_dynamic_alpha_proposals > 1`, which average their Sinkhorn outputs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogitSet {
    /// How each proposal's logits become a matrix.
    pub map: HresMap,
    /// One box per proposal.
    pub proposals: Vec<LogitBox>,
}

/// One layer's parameters, typed by layout family.
#[derive(Clone, Debug, PartialEq)]
pub enum DynamicLayer {
    /// lucidrains `hyper-connections` (HC, mHC, mHCv2).
    Lucidrains(LucidrainsDynamic),
    /// mhc-pytorch `ManifoldHyperConnections`.
    MhcPytorch(MhcPytorchDynamic),
    /// DeepSeek-V4 (one sublayer: attention or FFN of a block).
    Deepseek(DeepseekDynamic),
}

impl DynamicLayer {
    /// Number of residual streams n.
    pub fn streams(&self) -> usize {
        match self {
            Self::Lucidrains(p) => p.streams,
            Self::MhcPytorch(p) => p.streams,
            Self::Deepseek(p) => p.streams,
        }
    }

    /// `[rows, dim]` of one token's input (see the module docs).
    pub fn input_shape(&self) -> [usize; 2] {
        match self {
            Self::Lucidrains(p) => [p.streams, p.dim],
            Self::MhcPytorch(p) => [1, p.dim],
            Self::Deepseek(p) => [p.streams, p.dim],
        }
    }

    /// Number of logit matrices per token (see [`LogitSet`]).
    pub fn proposals(&self) -> usize {
        match self {
            Self::Lucidrains(p) => p.proposals,
            Self::MhcPytorch(_) | Self::Deepseek(_) => 1,
        }
    }

    /// How logits become H_res.
    pub fn hres_map(&self) -> HresMap {
        match self {
            Self::Lucidrains(p) => p.hres_map(),
            Self::MhcPytorch(p) => p.hres_map(),
            Self::Deepseek(p) => p.hres_map(),
        }
    }

    /// The logits of every proposal for input `x` (`[rows, dim]` row-major), our orientation:
    /// `out` holds `proposals() · n²` values, proposal after proposal.
    pub fn logits(&self, x: &[f64], out: &mut [f64]) {
        let [rows, dim] = self.input_shape();
        assert_eq!(x.len(), rows * dim, "input must be [rows, dim]");
        assert_eq!(out.len(), self.proposals() * self.streams().pow(2));
        match self {
            Self::Lucidrains(p) => p.logits(x, out),
            Self::MhcPytorch(p) => p.logits(x, out),
            Self::Deepseek(p) => p.logits(x, out),
        }
    }

    /// The H_res this layer applies to input `x`, row-major n×n into `out`; `scratch` holds
    /// `proposals() · n²` values (see [`DynamicLayer::scratch_len`]).
    pub(crate) fn hres_with(&self, x: &[f64], out: &mut [f64], scratch: &mut [f64]) {
        let n = self.streams();
        let proposals = self.proposals();
        self.logits(x, scratch);
        let map = self.hres_map();
        for logits in scratch.chunks_exact_mut(n * n) {
            map.apply(logits, n);
        }
        if proposals == 1 {
            out.copy_from_slice(scratch);
        } else {
            out.fill(0.0);
            for h in scratch.chunks_exact(n * n) {
                for (o, v) in out.iter_mut().zip(h) {
                    *o += v;
                }
            }
            let count = proposals as f64;
            out.iter_mut().for_each(|o| *o /= count);
        }
    }

    /// [`DynamicLayer::hres_with`] with a scratch buffer of its own.
    pub fn hres(&self, x: &[f64]) -> Vec<f64> {
        let n = self.streams();
        let mut out = vec![0.0; n * n];
        let mut scratch = vec![0.0; self.scratch_len()];
        self.hres_with(x, &mut out, &mut scratch);
        out
    }

    /// Length of the scratch buffer [`DynamicLayer::hres_with`] needs.
    pub fn scratch_len(&self) -> usize {
        self.proposals() * self.streams().pow(2)
    }

    /// Bounds on the logits over every input (see the module docs for the derivation). An
    /// error when a bound is not a finite number within [`crate::analysis::certify`]'s range.
    pub fn logit_set(&self) -> Result<LogitSet, crate::analysis::certify::CertifyError> {
        let proposals = match self {
            Self::Lucidrains(p) => p.logit_boxes()?,
            Self::MhcPytorch(p) => vec![p.logit_box()?],
            Self::Deepseek(p) => vec![p.logit_box()?],
        };
        Ok(LogitSet {
            map: self.hres_map(),
            proposals,
        })
    }

    /// The H_res of the layout's own initialisation (row-major n×n, our orientation), or
    /// `None` where the layout's code does not say; see each layout's `initial_hres`.
    pub fn initial_hres(&self) -> Option<Vec<f64>> {
        match self {
            Self::Lucidrains(p) => Some(p.initial_hres()),
            Self::MhcPytorch(p) => Some(p.initial_hres()),
            Self::Deepseek(_) => None,
        }
    }
}

/// Settings the files do not record.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DynamicOptions {
    /// lucidrains HC only: whether the module applies `tanh` to the projection
    /// (`HyperConnections(tanh=True)`, the package default). A constructor argument, not a
    /// parameter, so no checkpoint says; the mHC classes never apply it.
    pub lucidrains_hc_tanh: bool,
    /// DeepSeek-V4's `norm_eps` (`rms_norm_eps` in its config.json; 1e-6 in every published
    /// config).
    pub deepseek_norm_eps: f64,
}

impl Default for DynamicOptions {
    fn default() -> Self {
        Self {
            lucidrains_hc_tanh: true,
            deepseek_norm_eps: 1e-6,
        }
    }
}

/// Where one H_res layer's parameters live in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LayerSite {
    /// A lucidrains or mhc-pytorch module: the prefix of its tensors (`layers.3.`).
    Module(String),
    /// A DeepSeek-V4 sublayer: the block prefix and `attn` or `ffn`.
    DeepseekSublayer(String, &'static str),
}

/// A model whose layers' parameters are read on demand, one layer at a time (the file stays
/// memory-mapped; nothing but the listing is read when it is opened).
pub struct DynamicModel {
    source: Box<dyn TensorSource>,
    layout: Layout,
    reason: String,
    sites: Vec<LayerSite>,
    options: DynamicOptions,
    notes: Vec<String>,
    ignored_evidence: Option<String>,
}

impl DynamicModel {
    /// Opens `path` and finds its H_res layers in execution order (the same detection,
    /// evidence checks and layer order as [`load_hres`](super::load_hres); see
    /// [`layouts`]). The stack layout holds finished matrices and has no parameters, so it is
    /// refused, as is `transpose` (the layouts' own orientation handling is exact).
    pub fn open(
        path: &Path,
        load: &LoadOptions,
        options: DynamicOptions,
    ) -> Result<Self, LoadError> {
        Self::from_source(open(path)?, load, options)
    }

    /// [`DynamicModel::open`] on an opened source.
    pub(crate) fn from_source(
        source: Box<dyn TensorSource>,
        load: &LoadOptions,
        options: DynamicOptions,
    ) -> Result<Self, LoadError> {
        let found = layouts::find_dynamic_sites(source.as_ref(), load)?;
        let mut notes = found.notes;
        if found.layout == Layout::LucidrainsHc {
            notes.push(format!(
                "tanh {} on the dynamic projection (HyperConnections(tanh=…) is not recorded in the file; the package default is tanh=True)",
                if options.lucidrains_hc_tanh { "applied" } else { "not applied" }
            ));
        }
        Ok(Self {
            source,
            layout: found.layout,
            reason: found.reason,
            sites: found.sites,
            options,
            notes,
            ignored_evidence: found.ignored_evidence,
        })
    }

    /// The file (for a sharded model, the index).
    pub fn path(&self) -> &Path {
        self.source.path()
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Why that layout.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Number of H_res layers.
    pub fn layers(&self) -> usize {
        self.sites.len()
    }

    /// Caveats for a report (layer order, settings the file does not record, evidence
    /// overruled).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The file's evidence for another layout, overruled on request.
    pub fn ignored_evidence(&self) -> Option<&str> {
        self.ignored_evidence.as_deref()
    }

    /// The tensor-name prefix of layer `layer_index` (0-based), for messages
    /// (`layers.3.`, or `layers.3.hc_attn` for a DeepSeek-V4 sublayer).
    pub(crate) fn layer_name(&self, layer_index: usize) -> String {
        match &self.sites[layer_index] {
            LayerSite::Module(prefix) => prefix.clone(),
            LayerSite::DeepseekSublayer(prefix, sub) => format!("{prefix}hc_{sub}"),
        }
    }

    /// Reads the parameters of layer `layer_index` (0-based, execution order). Only this
    /// layer's tensors are read (for DeepSeek-V4, one `[(2+n)n, n·dim]` projection).
    pub fn layer(&self, layer_index: usize) -> Result<DynamicLayer, LoadError> {
        let site = self.sites.get(layer_index).ok_or_else(|| {
            LoadError::format(
                self.source.path(),
                format!(
                    "layer index {layer_index} out of range: the model has {} H_res layers",
                    self.sites.len()
                ),
            )
        })?;
        layouts::read_dynamic_layer(self.source.as_ref(), self.layout, site, &self.options)
    }
}
