//! Model layouts: which tensors hold H_res, how they become matrices, and in which orientation.
//!
//! Every layout ends in this crate's convention, `x_{l+1} = H x_l` with **rows = output
//! streams**, layers in execution order. Where a layout stores the transpose, the transpose is
//! applied here (and said so in each variant's doc). [`LoadOptions::transpose`] flips the
//! final result once more, for files that do not follow their layout's usual orientation.
//!
//! Model layouts yield the **input-independent** H_res (the static logits alone, i.e. the
//! dynamic, token-dependent part set to zero): one token per layer. Per-token matrices need
//! hidden states: capture them in the model and load the capture with [`Layout::Stack`], or
//! compute them from the parameters for given inputs with
//! [`DynamicModel`](crate::load::DynamicModel) (each layout's typed parameters are
//! [`LucidrainsDynamic`], [`MhcPytorchDynamic`] and [`DeepseekDynamic`], defined beside their
//! static loaders).
//!
//! # Layer order
//! Each H_res-bearing module is identified by the prefix before its tensor's role name
//! (`model.layers.3.` in `model.layers.3.static_alpha`). Modules are ordered by the integers
//! in that prefix, numerically (`layers.10.` after `layers.9.`), whatever the surrounding names
//! (`blocks.3.`, `h.3.`, `layers.3.0.` …). Modules with the same integers (two hyper-connection
//! modules per block, `blocks.0.mixer.` and `blocks.0.ffn.`) are ordered, in this order of
//! precedence, by [`LoadOptions::sublayer_order`] (`--sublayer-order mixer,ffn`: a list of name
//! components, each module matched by one of its components); else attention before FFN when the
//! names say which is which; else by the order the file records ([`TensorSource::recorded_order`]:
//! a `.pt` state dict keeps module registration order, which is execution order in every common
//! model, and a note says it was used). Safetensors records no such order (its serialisers sort
//! the header by name), so there the tie is an error that asks for `--sublayer-order`; names are
//! never ordered alphabetically. The first integer of every module must run over consecutive
//! values starting at 0 or 1: a gap is an error (a missing shard or a renamed layer).
//!
//! # Forced layouts
//! [`LoadOptions::layout`] skips detection, but not the evidence: when the file's metadata or
//! sibling parameters name the other lucidrains flavour (HC-only `dynamic_alpha_scale` beside
//! `static_alpha` under `--layout lucidrains-mhc`, say), loading fails with one line naming that
//! evidence, unless [`LoadOptions::ignore_evidence`] is set; then [`LoadedHres::ignored_evidence`]
//! and a note record what was overruled.
//!
//! # Auto-detection ([`LoadOptions::layout`] = `None`)
//! 1. `--key` given: [`Layout::Stack`].
//! 2. Role names: `*static_alpha` → the lucidrains family; `*hc_attn_base`/`*hc_ffn_base` →
//!    [`Layout::DeepseekV4`]; `*phi_res.bias` → [`Layout::MhcPytorch`]. Two families at once is
//!    an error asking for `--layout`.
//! 3. lucidrains HC versus mHC (same `static_alpha` layout, different meaning): first the
//!    safetensors metadata `implementation` (a value containing `mhc` or `manifold` → mHC,
//!    otherwise containing `hc` or `hyper` → HC); else the parameters beside `static_alpha`:
//!    the package's mHC classes have `residual_scale`, `pre_branch_scale` and `h_post_scale`,
//!    its HC class has `dynamic_alpha_scale` and `dynamic_beta_scale`. Without evidence, or with
//!    conflicting evidence, it is an error: the tool does not guess between a Sinkhorn and no
//!    Sinkhorn.
//! 4. Otherwise [`Layout::Stack`] if exactly one floating-point tensor has rank 3 or 4 with
//!    square trailing dimensions (or, failing that, exactly one of rank 3 or 4, which then fails
//!    with a precise shape error; a lone `.npy` array is always taken). Several square
//!    candidates: an error listing them (only the square ones, in numeric order). None: `no H_res matrices found in PATH; closest names: …`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ndarray::{Array3, ArrayD, Dimension};
use serde::{Deserialize, Serialize};

use super::{
    Dtype, Format, LoadError, TensorInfo, TensorSource, closest_names, natural_key, open,
    printable, shown,
};
use crate::generate::{SinkhornOrder, SinkhornParams, sinkhorn_in_place};
use crate::stack::LayerStack;

mod deepseek;
mod lucidrains;
mod mhc_pytorch;
mod stack;

pub use deepseek::DeepseekDynamic;
pub use lucidrains::LucidrainsDynamic;
pub use mhc_pytorch::MhcPytorchDynamic;

use super::dynamic::{DynamicLayer, DynamicOptions, HresMap, LayerSite, LogitBox};
use crate::analysis::certify::CertifyError;
use deepseek::{deepseek_blocks, deepseek_prefixes, load_deepseek};
use lucidrains::{load_lucidrains, lucidrains_flavour};
use mhc_pytorch::load_mhc_pytorch;
use stack::{load_stack, pick_stack_tensor};

/// How the H_res matrices are stored in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Layout {
    /// One tensor `[L, n, n]` or `[L, T, n, n]` of finished matrices (for example captured in
    /// a forward pass), used as stored: rows are output streams. No transpose unless asked.
    Stack,
    /// lucidrains `hyper-connections`, unconstrained HC (`HyperConnections`): per layer
    /// `*.static_alpha [n, n+1]` stored as `alpha[s_in, t_out]`, column 0 the H_pre weight.
    /// H_res = `static_alpha[:, 1:]ᵀ` (**transposed** here), no Sinkhorn.
    LucidrainsHc,
    /// lucidrains `hyper-connections`, mHC (`ManifoldConstrainedHyperConnections`, mHCv2): the
    /// same tensors; H_res = (the package's Sinkhorn of `static_alpha[:, 1:]`)ᵀ. In our
    /// orientation: `sinkhorn(static_alpha[:, 1:]ᵀ)` with 20 iterations of rows, then columns,
    /// so column sums are exact. **Transposed** here.
    LucidrainsMhc,
    /// `mhc-pytorch` (`ManifoldHyperConnections`): per module `phi_res.weight [n², n·C]`,
    /// `phi_res.bias [n²]`, `alpha_res [1]`, `b_res [n, n]`. Static logits
    /// `alpha_res · bias.view(n, n) + b_res` (row-major), exp, 20 × (rows, then columns). Paper
    /// orientation already: **no transpose**; column sums exact.
    MhcPytorch,
    /// DeepSeek-V4 reference code: per block `hc_attn_{fn,base,scale}` and `hc_ffn_{fn,base,scale}`,
    /// base `[(2+n)·n]` split `[pre n | post n | comb n²]`. Static comb = `base[2n:]` as n×n
    /// (row-major), softmax over the last dim + ε, divide by column sums + ε, then 19 × (rows +
    /// ε, columns + ε), ε = 1e-6. H_res = combᵀ (**transposed** here); row sums exact to ε.
    /// Block b gives layers 2b−1 (attention) and 2b (FFN). `hc_head_*` (the final stream merge)
    /// is not an H_res and is ignored. llama.cpp's GGUF names the same tensors
    /// `blk.N.hc_attn_base.weight` …, read alike.
    DeepseekV4,
}

impl Layout {
    /// Every layout, in documentation order.
    pub const ALL: [Layout; 5] = [
        Self::Stack,
        Self::LucidrainsHc,
        Self::LucidrainsMhc,
        Self::MhcPytorch,
        Self::DeepseekV4,
    ];

    /// The kebab-case name used on the command line, in JSON and in CSV.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stack => "stack",
            Self::LucidrainsHc => "lucidrains-hc",
            Self::LucidrainsMhc => "lucidrains-mhc",
            Self::MhcPytorch => "mhc-pytorch",
            Self::DeepseekV4 => "deepseek-v4",
        }
    }

    /// Which marginal of the loaded H_res the layout's Sinkhorn leaves exact, in our orientation
    /// (rows = output streams) before any `--transpose`; `None` without a Sinkhorn.
    pub fn exact_side(self) -> Option<ExactSide> {
        match self {
            Self::Stack | Self::LucidrainsHc => None,
            Self::LucidrainsMhc | Self::MhcPytorch => Some(ExactSide::Columns),
            Self::DeepseekV4 => Some(ExactSide::Rows),
        }
    }

    /// The static H_res of one layer as the layout's package initialises it (row-major n×n,
    /// our orientation before any `--transpose`), or `None` where the layout does not say:
    ///
    /// - lucidrains (`hyper-connections` 0.4.11): `static_alpha[:, skip:] = I` and the dynamic
    ///   part 0 in every class, so HC gives H_res = I and the mHC classes Sinkhorn(I): diagonal
    ///   e/(e + n − 1), every other entry 1/(e + n − 1);
    /// - mhc-pytorch: `b_res = 0`, `alpha_res = 1`; with the projection term left out that is
    ///   Sinkhorn(0) = J/n. (`phi_res` itself starts from `nn.Linear`'s random initialisation,
    ///   so a freshly built module's H_res scatters around J/n; J/n is the deterministic part.)
    /// - DeepSeek-V4 (the reference code does not initialise its `hc_*` parameters) and stacks
    ///   of finished matrices: `None`.
    pub(crate) fn initial_hres(self, n: usize) -> Option<Vec<f64>> {
        let sinkhorn = HresMap::Sinkhorn(SinkhornParams {
            iterations: SINKHORN_ITERATIONS,
            order: SinkhornOrder::RowsThenColumns,
        });
        let mut h = vec![0.0; n * n];
        match self {
            Self::Stack | Self::DeepseekV4 => return None,
            Self::LucidrainsHc | Self::LucidrainsMhc => {
                for i in 0..n {
                    h[i * n + i] = 1.0;
                }
                if self == Self::LucidrainsMhc {
                    sinkhorn.apply(&mut h, n);
                }
            }
            Self::MhcPytorch => sinkhorn.apply(&mut h, n),
        }
        Some(h)
    }
}

/// The marginal of an H_res that a Sinkhorn–Knopp normalisation leaves exact: the side of its
/// last step. In our orientation (rows = output streams, x_{l+1} = H_l x_l), exact rows
/// (H𝟏 = 𝟏) make the forward Amax gain 1, exact columns (Hᵀ𝟏 = 𝟏) the backward gain.
/// Serialised as `"rows"` or `"columns"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExactSide {
    /// Row sums exact: the last step normalises rows (the paper's order, DeepSeek-V4).
    Rows,
    /// Column sums exact: the last step normalises columns (lucidrains, mhc-pytorch).
    Columns,
}

impl ExactSide {
    /// `"rows"` or `"columns"`, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rows => "rows",
            Self::Columns => "columns",
        }
    }

    /// `"row"` or `"column"`, for prose such as "row sums exact".
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Self::Rows => "row",
            Self::Columns => "column",
        }
    }

    /// The exact side of the transposed matrix: the rows of Hᵀ are the columns of H.
    pub fn transposed(self) -> Self {
        match self {
            Self::Rows => Self::Columns,
            Self::Columns => Self::Rows,
        }
    }
}

impl fmt::Display for ExactSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|layout| layout.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|l| l.name()).collect();
                format!("unknown layout '{s}', expected one of {}", names.join(", "))
            })
    }
}

/// What to load from a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// The layout; `None` detects it (see the module docs).
    pub layout: Option<Layout>,
    /// For [`Layout::Stack`]: the tensor to use. Needed when several tensors qualify.
    pub key: Option<String>,
    /// Transpose every matrix after the layout's own orientation handling.
    pub transpose: bool,
    /// Use [`LoadOptions::layout`] even where the file's own evidence (metadata, sibling
    /// parameters) names another layout; without it such a contradiction is an error. The
    /// result records what was overruled ([`LoadedHres::ignored_evidence`]).
    pub ignore_evidence: bool,
    /// The execution order of H_res modules that share a block's layer index, by a name
    /// component of each (`["mixer", "ffn"]` for `blocks.0.mixer.*` before `blocks.0.ffn.*`).
    /// Overrides every other way of ordering such ties (see the module docs).
    pub sublayer_order: Option<Vec<String>>,
}

/// H_res matrices loaded from a file, with the provenance a report needs.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedHres {
    /// The matrices, `[layers, tokens, n, n]`, rows = output streams.
    pub stack: LayerStack,
    /// The layout used.
    pub layout: Layout,
    /// Why that layout (the option given, or the evidence auto-detection found).
    pub reason: String,
    /// Every tensor read, grouped by layer in layer order.
    pub tensors: Vec<String>,
    /// The stored dtype(s) of those tensors, e.g. `f32` (several joined with `+`).
    pub source_dtype: String,
    /// The marginal the layout's Sinkhorn leaves exact, in the loaded orientation (swapped by
    /// `transpose`); `None` when no Sinkhorn is involved.
    pub exact_side: Option<ExactSide>,
    /// Caveats for the report (static part only, merged streams, transposes applied …).
    pub notes: Vec<String>,
    /// The file's evidence for another layout, overruled by [`LoadOptions::ignore_evidence`]
    /// (`None` when nothing contradicted the layout used).
    pub ignored_evidence: Option<String>,
}

/// Opens `path` and loads its H_res stack (see the module docs for layouts and detection).
pub fn load_hres(path: &Path, options: &LoadOptions) -> Result<LoadedHres, LoadError> {
    let source = open(path)?;
    load_hres_from(source.as_ref(), options)
}

/// [`load_hres`] on an already opened source.
pub fn load_hres_from(
    source: &dyn TensorSource,
    options: &LoadOptions,
) -> Result<LoadedHres, LoadError> {
    let path = source.path();
    if let Some(layout) = options.layout.filter(|l| *l != Layout::Stack)
        && options.key.is_some()
    {
        return Err(LoadError::format(
            path,
            format!(
                "--key selects the tensor of layout stack; it cannot be combined with layout {layout}"
            ),
        ));
    }
    let Resolved {
        layout,
        reason,
        key,
        contradiction,
    } = resolve(source, options)?;
    let tie = TieBreak::new(source, options);
    let mut loaded = match layout {
        Layout::Stack => load_stack(source, key.as_deref(), reason)?,
        Layout::LucidrainsHc | Layout::LucidrainsMhc => {
            load_lucidrains(source, layout, reason, &tie)?
        }
        Layout::MhcPytorch => load_mhc_pytorch(source, reason, &tie)?,
        Layout::DeepseekV4 => load_deepseek(source, reason, &tie)?,
    };
    if let Some(evidence) = contradiction {
        loaded.notes.push(format!(
            "layout {layout} used against the file's evidence on request (--ignore-evidence): {evidence}"
        ));
        loaded.ignored_evidence = Some(evidence);
    }
    if options.transpose {
        loaded.stack = loaded.stack.transposed();
        loaded.exact_side = loaded.exact_side.map(ExactSide::transposed);
        loaded.notes.push(format!(
            "every matrix transposed on request (--transpose), after the {layout} layout's own orientation handling"
        ));
    }
    Ok(loaded)
}

/// The stack tensor and the reason, when `options` and the file resolve to [`Layout::Stack`]
/// (checked like [`load_hres_from`], evidence included, without reading the tensor); `None` for
/// a parameter layout.
pub(crate) fn resolve_stack(
    source: &dyn TensorSource,
    options: &LoadOptions,
) -> Result<Option<(String, String)>, LoadError> {
    if let Some(layout) = options.layout.filter(|l| *l != Layout::Stack)
        && options.key.is_some()
    {
        return Err(LoadError::format(
            source.path(),
            format!(
                "--key selects the tensor of layout stack; it cannot be combined with layout {layout}"
            ),
        ));
    }
    let Resolved {
        layout,
        reason,
        key,
        ..
    } = resolve(source, options)?;
    if layout != Layout::Stack {
        return Ok(None);
    }
    Ok(Some(match key {
        Some(key) => (key, reason),
        None => {
            let (name, why) = pick_stack_tensor(source)?;
            (name, format!("{reason}; {why}"))
        }
    }))
}

/// Role names (the last components of a tensor name) that mark the lucidrains and mhc-pytorch
/// families (the DeepSeek-V4 roles live in [`deepseek`]).
const LUCIDRAINS_ROLE: &str = "static_alpha";
const MHC_PYTORCH_ROLE: &str = "phi_res.bias";
/// What "closest names" are measured against.
const HRES_TARGETS: [&str; 3] = ["static_alpha", "hc_attn_base", "phi_res"];

/// Sinkhorn iterations of every published implementation (paper Table 5).
const SINKHORN_ITERATIONS: u32 = 20;
/// DeepSeek-V4's `hc_eps`.
const DEEPSEEK_EPS: f64 = 1e-6;

/// The prefix of `name` before `role` (with its trailing dot), if `name` ends in that role.
fn strip_role<'a>(name: &'a str, role: &str) -> Option<&'a str> {
    if name == role {
        return Some("");
    }
    let prefix = name.strip_suffix(role)?;
    prefix.ends_with('.').then_some(prefix)
}

fn prefixes(names: &[String], role: &str) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| strip_role(n, role))
        .map(str::to_string)
        .collect()
}

/// The layout to use, why, the stack tensor (if any) and the evidence overruled (if any).
struct Resolved {
    layout: Layout,
    reason: String,
    key: Option<String>,
    contradiction: Option<String>,
}

/// Detects or checks the layout: a forced layout that the file's evidence contradicts is an
/// error unless [`LoadOptions::ignore_evidence`] is set.
fn resolve(source: &dyn TensorSource, options: &LoadOptions) -> Result<Resolved, LoadError> {
    let (layout, reason, key) = match options.layout {
        Some(layout) => (
            layout,
            format!("layout {layout} was requested"),
            options.key.clone(),
        ),
        None => detect(source, options)?,
    };
    let contradiction = match options.layout {
        Some(forced) => contradicting_evidence(source, forced),
        None => None,
    };
    if let Some(evidence) = &contradiction
        && !options.ignore_evidence
    {
        return Err(LoadError::format(
            source.path(),
            format!(
                "--layout {layout} contradicts the file: {evidence}; pass --ignore-evidence to use {layout} anyway"
            ),
        ));
    }
    Ok(Resolved {
        layout,
        reason,
        key,
        contradiction,
    })
}

/// The H_res layers of a model layout, in execution order, for [`crate::load::dynamic`].
pub(crate) struct DynamicSites {
    pub(crate) layout: Layout,
    pub(crate) reason: String,
    pub(crate) sites: Vec<LayerSite>,
    pub(crate) notes: Vec<String>,
    pub(crate) ignored_evidence: Option<String>,
}

/// Detects the layout and lists its H_res layers (the same detection, evidence check and
/// layer order as [`load_hres_from`]), reading no tensor data.
pub(crate) fn find_dynamic_sites(
    source: &dyn TensorSource,
    options: &LoadOptions,
) -> Result<DynamicSites, LoadError> {
    let path = source.path();
    if options.transpose {
        return Err(LoadError::format(
            path,
            "--transpose applies to stored matrices; per-token H_res is computed in the layout's own orientation",
        ));
    }
    let resolved = resolve(source, options)?;
    let layout = resolved.layout;
    let tie = TieBreak::new(source, options);
    let (sites, mut notes) = match layout {
        Layout::Stack => {
            return Err(LoadError::format(
                path,
                "layout stack holds finished matrices: there are no parameters to compute per-token H_res from",
            ));
        }
        Layout::LucidrainsHc | Layout::LucidrainsMhc => {
            let units = prefixes(source.names(), LUCIDRAINS_ROLE);
            if units.is_empty() {
                return Err(no_units(source, layout, "*.static_alpha"));
            }
            let ordered = order_units(path, units, LUCIDRAINS_ROLE, &tie)?;
            let sites = ordered.prefixes.into_iter().map(LayerSite::Module);
            (sites.collect(), ordered.notes)
        }
        Layout::MhcPytorch => {
            let units = prefixes(source.names(), MHC_PYTORCH_ROLE);
            if units.is_empty() {
                return Err(no_units(source, layout, "*.phi_res.bias"));
            }
            let ordered = order_units(path, units, MHC_PYTORCH_ROLE, &tie)?;
            let sites = ordered.prefixes.into_iter().map(LayerSite::Module);
            (sites.collect(), ordered.notes)
        }
        Layout::DeepseekV4 => {
            let (blocks, notes) = deepseek_blocks(source, &tie)?;
            let sites = blocks.into_iter().flat_map(|block| {
                ["attn", "ffn"].map(|sub| LayerSite::DeepseekSublayer(block.clone(), sub))
            });
            (sites.collect(), notes)
        }
    };
    if let Some(evidence) = &resolved.contradiction {
        notes.push(format!(
            "layout {layout} used against the file's evidence on request (--ignore-evidence): {evidence}"
        ));
    }
    Ok(DynamicSites {
        layout,
        reason: resolved.reason,
        sites,
        notes,
        ignored_evidence: resolved.contradiction,
    })
}

/// Reads one H_res layer's parameters.
pub(crate) fn read_dynamic_layer(
    source: &dyn TensorSource,
    layout: Layout,
    site: &LayerSite,
    options: &DynamicOptions,
) -> Result<DynamicLayer, LoadError> {
    match (layout, site) {
        (Layout::LucidrainsHc | Layout::LucidrainsMhc, LayerSite::Module(prefix)) => {
            LucidrainsDynamic::read(source, layout, prefix, options).map(DynamicLayer::Lucidrains)
        }
        (Layout::MhcPytorch, LayerSite::Module(prefix)) => {
            MhcPytorchDynamic::read(source, prefix).map(DynamicLayer::MhcPytorch)
        }
        (Layout::DeepseekV4, LayerSite::DeepseekSublayer(prefix, sub)) => {
            DeepseekDynamic::read(source, prefix, sub, options).map(DynamicLayer::Deepseek)
        }
        _ => Err(LoadError::format(
            source.path(),
            format!("layout {layout} has no parameters at {site:?}"),
        )),
    }
}

/// Evidence in the file for a layout other than `forced`, in words; `None` if nothing
/// contradicts it. Only the lucidrains flavours can be told apart this way (the other layouts
/// fail on missing tensors instead): metadata or sibling parameters naming the other flavour.
fn contradicting_evidence(source: &dyn TensorSource, forced: Layout) -> Option<String> {
    if !matches!(forced, Layout::LucidrainsHc | Layout::LucidrainsMhc) {
        return None;
    }
    let units = prefixes(source.names(), LUCIDRAINS_ROLE);
    if units.is_empty() {
        return None;
    }
    match lucidrains_flavour(source, &units) {
        Ok((found, why)) if found != forced => Some(format!("{why} (that is {found})")),
        _ => None,
    }
}

/// The layout, why, and (for an automatically chosen stack) the tensor.
fn detect(
    source: &dyn TensorSource,
    options: &LoadOptions,
) -> Result<(Layout, String, Option<String>), LoadError> {
    let path = source.path();
    if let Some(key) = &options.key {
        return Ok((
            Layout::Stack,
            format!("--key '{key}' names the stack tensor"),
            Some(key.clone()),
        ));
    }
    let names = source.names();
    let lucid = prefixes(names, LUCIDRAINS_ROLE);
    let deepseek = deepseek_prefixes(names);
    let mhc_pytorch = prefixes(names, MHC_PYTORCH_ROLE);
    let mut families = Vec::new();
    if !lucid.is_empty() {
        families.push(format!("'{}{LUCIDRAINS_ROLE}' (lucidrains)", lucid[0]));
    }
    if !deepseek.is_empty() {
        families.push(format!("'{}hc_*_base' (deepseek-v4)", deepseek[0]));
    }
    if !mhc_pytorch.is_empty() {
        families.push(format!(
            "'{}{MHC_PYTORCH_ROLE}' (mhc-pytorch)",
            mhc_pytorch[0]
        ));
    }
    if families.len() > 1 {
        return Err(LoadError::format(
            path,
            format!(
                "holds tensors of several layouts ({}); choose one with --layout",
                families.join(", ")
            ),
        ));
    }
    if !lucid.is_empty() {
        let (layout, reason) = lucidrains_flavour(source, &lucid)?;
        return Ok((layout, reason, None));
    }
    if !deepseek.is_empty() {
        return Ok((
            Layout::DeepseekV4,
            format!(
                "found hc_attn_base / hc_ffn_base tensors in {} blocks (DeepSeek-V4 names)",
                deepseek.len()
            ),
            None,
        ));
    }
    if !mhc_pytorch.is_empty() {
        return Ok((
            Layout::MhcPytorch,
            format!(
                "found phi_res.bias tensors in {} modules (mhc-pytorch names)",
                mhc_pytorch.len()
            ),
            None,
        ));
    }
    let (key, reason) = pick_stack_tensor(source)?;
    Ok((Layout::Stack, reason, Some(key)))
}

/// `what` for messages: the file, and the tensor unless the file holds a single unnamed array.
pub(crate) fn describe(source: &dyn TensorSource, name: &str) -> String {
    if source.format() == Format::Npy {
        shown(source.path())
    } else {
        format!("{}: tensor '{}'", shown(source.path()), printable(name))
    }
}

/// Reads a tensor and rejects NaN and ±Inf, naming the tensor and the index.
fn read_finite(source: &dyn TensorSource, name: &str) -> Result<ArrayD<f64>, LoadError> {
    let array = source.read_f64(name)?;
    if let Some((index, value)) = array.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(LoadError::tensor(
            source.path(),
            name,
            format!(
                "holds non-finite value {value} at index {:?}",
                index.slice()
            ),
        ));
    }
    Ok(array)
}

/// A tensor's shape, or an error naming it when it is absent.
fn shape_of(source: &dyn TensorSource, name: &str, beside: &str) -> Result<Vec<usize>, LoadError> {
    if !source.names().iter().any(|n| n == name) {
        return Err(LoadError::tensor(
            source.path(),
            name,
            format!("not found: per-token H_res needs it beside '{beside}'"),
        ));
    }
    Ok(source.info(name)?.shape)
}

/// Reads a finite tensor whose shape must be `expected` (`wanted` says it in words), flat in C
/// order.
fn read_shaped(
    source: &dyn TensorSource,
    name: &str,
    shape: &[usize],
    expected: &[usize],
    wanted: &str,
) -> Result<Vec<f64>, LoadError> {
    if shape != expected {
        return Err(LoadError::tensor(
            source.path(),
            name,
            shape_error(shape, wanted),
        ));
    }
    Ok(read_finite(source, name)?.iter().copied().collect())
}

/// Collects the distinct dtypes of the tensors read.
#[derive(Default)]
struct DtypeSet(Vec<Dtype>);

impl DtypeSet {
    fn add(&mut self, dtype: Dtype) {
        if !self.0.contains(&dtype) {
            self.0.push(dtype);
        }
    }

    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// A module (H_res-bearing prefix) with its sort key.
struct Unit {
    prefix: String,
    indices: Vec<u64>,
}

fn is_attention(component: &str) -> bool {
    let c = component.to_ascii_lowercase();
    c.contains("attn") || c.contains("attention")
}

fn is_ffn(component: &str) -> bool {
    let c = component.to_ascii_lowercase();
    c.contains("ffn") || c.contains("mlp") || c.contains("feed_forward") || c == "ff"
}

/// Sublayer rank within a block: 0 attention, 1 FFN, `None` if the prefix says neither.
fn sublayer_rank(prefix: &str) -> Option<u8> {
    let parts: Vec<&str> = prefix.split('.').collect();
    let attention = parts.iter().any(|p| is_attention(p));
    let ffn = parts.iter().any(|p| is_ffn(p));
    match (attention, ffn) {
        (true, false) => Some(0),
        (false, true) => Some(1),
        _ => None,
    }
}

/// What decides the order of modules that share their layer indices.
pub(super) struct TieBreak<'a> {
    /// [`LoadOptions::sublayer_order`].
    pub(super) sublayer_order: Option<&'a [String]>,
    /// The file's own tensor order, where the format keeps it ([`TensorSource::recorded_order`]).
    pub(super) recorded: Option<&'a [String]>,
    /// The container format, for the message when nothing decides.
    pub(super) format: Format,
}

impl<'a> TieBreak<'a> {
    pub(super) fn new(source: &'a dyn TensorSource, options: &'a LoadOptions) -> Self {
        Self {
            sublayer_order: options.sublayer_order.as_deref(),
            recorded: source.recorded_order(),
            format: source.format(),
        }
    }
}

/// Module prefixes in execution order, and how ties were broken (notes for the report).
pub(super) struct Ordered {
    pub(super) prefixes: Vec<String>,
    pub(super) notes: Vec<String>,
}

/// Which rule ordered modules with the same layer indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TieRule {
    /// [`LoadOptions::sublayer_order`].
    SublayerOrder,
    /// Attention before FFN, by their names.
    AttentionFirst,
    /// The order the file records.
    Recorded,
}

/// The first component in which two prefixes differ (`mixer` and `ffn` for `blocks.0.mixer.`
/// and `blocks.0.ffn.`), for suggesting `--sublayer-order`.
fn distinguishing_components(a: &str, b: &str) -> (String, String) {
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    let at = pa.iter().zip(&pb).position(|(x, y)| x != y).unwrap_or(0);
    let pick = |p: &[&str]| {
        p.get(at)
            .filter(|c| !c.is_empty())
            .unwrap_or(&"(block)")
            .to_string()
    };
    (pick(&pa), pick(&pb))
}

/// Rank of `prefix` in `order`: the position of the first entry equal to one of its components.
fn sublayer_position(prefix: &str, order: &[String]) -> Option<usize> {
    order
        .iter()
        .position(|entry| prefix.split('.').any(|c| c == entry))
}

/// Orders module prefixes by the integers in their names; modules with the same integers by
/// `--sublayer-order`, else attention before FFN by name, else the order the file records
/// (see the module docs). `role` completes a prefix to a tensor name.
fn order_units(
    path: &Path,
    prefixes: Vec<String>,
    role: &str,
    tie: &TieBreak<'_>,
) -> Result<Ordered, LoadError> {
    if prefixes.len() <= 1 {
        return Ok(Ordered {
            prefixes,
            notes: Vec::new(),
        });
    }
    let mut units: Vec<Unit> = prefixes
        .into_iter()
        .map(|prefix| {
            let indices = prefix
                .split('.')
                .filter_map(|p| p.parse::<u64>().ok())
                .collect();
            Unit { prefix, indices }
        })
        .collect();
    if let Some(unit) = units.iter().find(|u| u.indices.is_empty()) {
        return Err(LoadError::format(
            path,
            format!(
                "cannot order {} H_res modules: '{}{role}' has no layer index in its name",
                units.len(),
                unit.prefix
            ),
        ));
    }
    units.sort_by(|a, b| a.indices.cmp(&b.indices));
    let recorded_position = |prefix: &str| {
        let name = format!("{prefix}{role}");
        tie.recorded
            .and_then(|order| order.iter().position(|n| *n == name))
    };
    let mut rules = BTreeSet::new();
    let mut start = 0;
    while start < units.len() {
        let end = start
            + units[start..]
                .iter()
                .take_while(|u| u.indices == units[start].indices)
                .count();
        let group = &mut units[start..end];
        if group.len() > 1 {
            let keys: Vec<Option<usize>> = if let Some(order) = tie.sublayer_order {
                rules.insert(TieRule::SublayerOrder);
                group
                    .iter()
                    .map(|u| sublayer_position(&u.prefix, order))
                    .collect()
            } else if group.len() == 2
                && sublayer_rank(&group[0].prefix).is_some()
                && sublayer_rank(&group[1].prefix).is_some()
                && sublayer_rank(&group[0].prefix) != sublayer_rank(&group[1].prefix)
            {
                rules.insert(TieRule::AttentionFirst);
                group
                    .iter()
                    .map(|u| sublayer_rank(&u.prefix).map(usize::from))
                    .collect()
            } else {
                rules.insert(TieRule::Recorded);
                group.iter().map(|u| recorded_position(&u.prefix)).collect()
            };
            let distinct: BTreeSet<usize> = keys.iter().flatten().copied().collect();
            if distinct.len() != group.len() {
                let (a, b) = (&group[0].prefix, &group[1].prefix);
                let (ca, cb) = distinguishing_components(a, b);
                let why = match tie.sublayer_order {
                    Some(order) => format!(
                        "--sublayer-order {} does not tell them apart (each module needs its own entry, matching a component of its name)",
                        order.join(",")
                    ),
                    None if tie.recorded.is_some() => {
                        "the file's recorded tensor order does not list them".to_string()
                    }
                    None => format!(
                        "{} does not record module order (its header lists tensors sorted by name); state it with --sublayer-order {ca},{cb} (or {cb},{ca})",
                        tie.format
                    ),
                };
                return Err(LoadError::format(
                    path,
                    format!(
                        "'{a}{role}' and '{b}{role}' have the same layer index {:?}; cannot tell which comes first: {why}",
                        group[0].indices
                    ),
                ));
            }
            let mut keyed: Vec<(usize, Unit)> = keys
                .into_iter()
                .map(|k| k.expect("all keys distinct and present"))
                .zip(group.iter_mut().map(|u| Unit {
                    prefix: std::mem::take(&mut u.prefix),
                    indices: std::mem::take(&mut u.indices),
                }))
                .collect();
            keyed.sort_by_key(|(k, _)| *k);
            for (slot, (_, unit)) in group.iter_mut().zip(keyed) {
                *slot = unit;
            }
        }
        start = end;
    }
    let firsts: BTreeSet<u64> = units.iter().map(|u| u.indices[0]).collect();
    let lowest = *firsts.first().expect("at least two units");
    if lowest > 1 {
        return Err(LoadError::format(
            path,
            format!(
                "H_res layer indices start at {lowest} ('{}{role}'), expected 0 or 1: are layers missing?",
                units[0].prefix
            ),
        ));
    }
    let firsts: Vec<u64> = firsts.into_iter().collect();
    for pair in firsts.windows(2) {
        if pair[1] != pair[0] + 1 {
            let after = units
                .iter()
                .find(|u| u.indices[0] == pair[1])
                .expect("index taken from units");
            let missing = if pair[1] - pair[0] == 2 {
                format!("layer {} is missing", pair[0] + 1)
            } else {
                format!("layers {} to {} are missing", pair[0] + 1, pair[1] - 1)
            };
            return Err(LoadError::format(
                path,
                format!(
                    "H_res layer indices jump from {} to {} (at '{}{role}'): {missing}",
                    pair[0], pair[1], after.prefix
                ),
            ));
        }
    }
    let notes = rules
        .into_iter()
        .map(|rule| match rule {
            TieRule::SublayerOrder => format!(
                "modules that share a layer index ordered by --sublayer-order {}",
                tie.sublayer_order.unwrap_or_default().join(",")
            ),
            TieRule::Recorded => format!(
                "modules that share a layer index ordered as the file records them (a {} file keeps the state dict's insertion order, which is module registration order and the execution order of every common model)",
                tie.format
            ),
            // The documented name rule, as before: no note.
            TieRule::AttentionFirst => String::new(),
        })
        .filter(|note| !note.is_empty())
        .collect();
    Ok(Ordered {
        prefixes: units.into_iter().map(|u| u.prefix).collect(),
        notes,
    })
}

/// Builds the stack `[layers, 1, n, n]` from per-layer row-major matrices.
fn stack_from_matrices(
    source: &dyn TensorSource,
    layout: Layout,
    n: usize,
    matrices: Vec<Vec<f64>>,
) -> Result<LayerStack, LoadError> {
    let layers = matrices.len();
    let flat: Vec<f64> = matrices.into_iter().flatten().collect();
    let array = Array3::from_shape_vec((layers, n, n), flat).map_err(|e| {
        LoadError::format(source.path(), format!("cannot assemble H_res stack: {e}"))
    })?;
    let what = format!("{}: {layout} H_res", shown(source.path()));
    Ok(LayerStack::from_layers(array, &what)?)
}

fn no_units(source: &dyn TensorSource, layout: Layout, roles: &str) -> LoadError {
    let names = source.names().to_vec();
    let closest = closest_names(&names, &HRES_TARGETS, 3);
    LoadError::format(
        source.path(),
        format!(
            "layout {layout} needs '{roles}' tensors, found none; closest names: {}",
            if closest.is_empty() {
                "(the file holds no tensors)".to_string()
            } else {
                closest.join(", ")
            }
        ),
    )
}

fn shape_error(actual: &[usize], expected: &str) -> String {
    format!("has shape {actual:?}, expected {expected}")
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_round_trip() {
        for layout in Layout::ALL {
            assert_eq!(layout.name().parse::<Layout>().unwrap(), layout);
            let json = serde_json::to_string(&layout).unwrap();
            assert_eq!(json, format!("\"{}\"", layout.name()));
            let value = <Layout as clap::ValueEnum>::to_possible_value(&layout).unwrap();
            assert_eq!(value.get_name(), layout.name());
        }
        assert!("hc".parse::<Layout>().is_err());
    }

    #[test]
    fn strip_role_needs_a_component_boundary() {
        assert_eq!(
            strip_role("layers.3.static_alpha", "static_alpha"),
            Some("layers.3.")
        );
        assert_eq!(strip_role("static_alpha", "static_alpha"), Some(""));
        assert_eq!(strip_role("layers.3.my_static_alpha", "static_alpha"), None);
    }

    /// No ordering help: neither `--sublayer-order` nor a recorded order.
    const NO_HELP: TieBreak<'static> = TieBreak {
        sublayer_order: None,
        recorded: None,
        format: Format::Safetensors,
    };

    fn order(prefixes: &[&str], tie: &TieBreak<'_>) -> Result<Vec<String>, LoadError> {
        let prefixes = prefixes.iter().map(|p| p.to_string()).collect();
        order_units(Path::new("m.safetensors"), prefixes, "x", tie).map(|o| o.prefixes)
    }

    #[test]
    fn units_order_numerically_and_attention_first() {
        let path = Path::new("m.safetensors");
        let got = order_units(
            path,
            vec!["layers.10.".into(), "layers.9.".into(), "layers.0.".into()]
                .into_iter()
                .chain((1..9).map(|i| format!("layers.{i}.")))
                .collect(),
            "x",
            &NO_HELP,
        )
        .unwrap();
        assert_eq!(got.prefixes[9], "layers.9.");
        assert_eq!(got.prefixes[10], "layers.10.");
        assert!(got.notes.is_empty());
        let got = order(
            &["b.1.ffn.", "b.1.attn.", "b.0.mlp.", "b.0.self_attn."],
            &NO_HELP,
        );
        assert_eq!(
            got.unwrap(),
            ["b.0.self_attn.", "b.0.mlp.", "b.1.attn.", "b.1.ffn."]
        );
        let err = order(&["a.1.", "b.1."], &NO_HELP).unwrap_err();
        assert!(err.to_string().contains("same layer index"), "{err}");
        let err = order(&["l.0.", "l.1.", "l.3."], &NO_HELP).unwrap_err();
        assert!(err.to_string().contains("jump from 1 to 3"), "{err}");
    }

    #[test]
    fn ties_follow_sublayer_order_then_the_recorded_order_never_the_alphabet() {
        let blocks = [
            "blocks.1.mixer.",
            "blocks.0.mixer.",
            "blocks.0.ffn.",
            "blocks.1.ffn.",
        ];
        // Without help: an error that names the flag and the two components.
        let err = order(&blocks, &NO_HELP).unwrap_err().to_string();
        for part in [
            "same layer index [0]",
            "--sublayer-order mixer,ffn",
            "sorted by name",
        ] {
            assert!(err.contains(part), "'{part}' missing from: {err}");
        }
        // --sublayer-order decides, whichever way round (so not alphabetically).
        for list in [["mixer", "ffn"], ["ffn", "mixer"]] {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            let tie = TieBreak {
                sublayer_order: Some(&list),
                ..NO_HELP
            };
            let got = order(&blocks, &tie).unwrap();
            let expected: Vec<String> = (0..2)
                .flat_map(|b| list.iter().map(move |c| format!("blocks.{b}.{c}.")))
                .collect();
            assert_eq!(got, expected);
        }
        // A list that names only one of them is an error, not a guess.
        let list = vec!["mixer".to_string()];
        let tie = TieBreak {
            sublayer_order: Some(&list),
            ..NO_HELP
        };
        let err = order(&blocks, &tie).unwrap_err().to_string();
        assert!(
            err.contains("--sublayer-order mixer does not tell them apart"),
            "{err}"
        );
        // The recorded order decides when the file keeps one (ffn recorded first here).
        let recorded: Vec<String> = [
            "blocks.0.ffn.x",
            "blocks.0.mixer.x",
            "blocks.1.mixer.x",
            "blocks.1.ffn.x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let tie = TieBreak {
            recorded: Some(&recorded),
            format: Format::TorchZip,
            ..NO_HELP
        };
        let got = order_units(
            Path::new("m.pt"),
            blocks.iter().map(|s| s.to_string()).collect(),
            "x",
            &tie,
        )
        .unwrap();
        assert_eq!(
            got.prefixes,
            [
                "blocks.0.ffn.",
                "blocks.0.mixer.",
                "blocks.1.mixer.",
                "blocks.1.ffn."
            ]
        );
        assert_eq!(got.notes.len(), 1);
        assert!(
            got.notes[0].contains("as the file records them"),
            "{:?}",
            got.notes
        );
    }
}
