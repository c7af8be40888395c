//! Model layouts: which tensors hold H_res, how they become matrices, and in which orientation.
//!
//! Every layout ends in this crate's convention, `x_{l+1} = H x_l` with **rows = output
//! streams**, layers in execution order. Where a layout stores the transpose, the transpose is
//! applied here (and said so in each variant's doc). [`LoadOptions::transpose`] flips the
//! final result once more, for files that do not follow their layout's usual orientation.
//!
//! Model layouts yield the **input-independent** H_res (the static logits alone, i.e. the
//! dynamic, token-dependent part set to zero): one token per layer. Per-token matrices need
//! hidden states; capture them in the model and load the capture with [`Layout::Stack`].
//!
//! # Layer order
//! Each H_res-bearing module is identified by the prefix before its tensor's role name
//! (`model.layers.3.` in `model.layers.3.static_alpha`). Modules are ordered by the integers
//! in that prefix, numerically (`layers.10.` after `layers.9.`), whatever the surrounding names
//! (`blocks.3.`, `h.3.`, `layers.3.0.` …). Two modules with the same integers are ordered
//! only when one is an attention and the other an FFN sublayer (attention first); otherwise the
//! tie is an error. The first integer of every module must run over consecutive values starting
//! at 0 or 1: a gap is an error (a missing shard or a renamed layer).
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
//!    with a precise shape error; a lone `.npy` array is always taken). Several candidates: an
//!    error listing them. None: `no H_res matrices found in PATH; closest names: …`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ndarray::{Array3, ArrayD, Dimension};
use serde::{Deserialize, Serialize};

use super::{
    Dtype, Format, LoadError, TensorInfo, TensorSource, closest_names, open, printable, shown,
};
use crate::generate::{SinkhornOrder, SinkhornParams, sinkhorn_in_place};
use crate::stack::LayerStack;

mod deepseek;
mod lucidrains;
mod mhc_pytorch;
mod stack;

use deepseek::{deepseek_prefixes, load_deepseek};
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
    /// is not an H_res and is ignored.
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

    /// Which marginal of the loaded H_res the layout's Sinkhorn leaves exact (`"rows"` or
    /// `"columns"`, in our orientation, before any `--transpose`); `None` without a Sinkhorn.
    pub fn exact_side(self) -> Option<&'static str> {
        match self {
            Self::Stack | Self::LucidrainsHc => None,
            Self::LucidrainsMhc | Self::MhcPytorch => Some("columns"),
            Self::DeepseekV4 => Some("rows"),
        }
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
    /// `"rows"` or `"columns"`: the marginal the layout's Sinkhorn leaves exact, in the loaded
    /// orientation (swapped by `transpose`); `None` when no Sinkhorn is involved.
    pub exact_side: Option<&'static str>,
    /// Caveats for the report (static part only, merged streams, transposes applied …).
    pub notes: Vec<String>,
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
    let (layout, reason, key) = match options.layout {
        Some(layout) => (
            layout,
            format!("layout {layout} was requested"),
            options.key.clone(),
        ),
        None => detect(source, options)?,
    };
    let mut loaded = match layout {
        Layout::Stack => load_stack(source, key.as_deref(), reason)?,
        Layout::LucidrainsHc | Layout::LucidrainsMhc => load_lucidrains(source, layout, reason)?,
        Layout::MhcPytorch => load_mhc_pytorch(source, reason)?,
        Layout::DeepseekV4 => load_deepseek(source, reason)?,
    };
    if options.transpose {
        loaded.stack = loaded.stack.transposed();
        loaded.exact_side = loaded.exact_side.map(|side| match side {
            "rows" => "columns",
            _ => "rows",
        });
        loaded.notes.push(format!(
            "every matrix transposed on request (--transpose), after the {layout} layout's own orientation handling"
        ));
    }
    Ok(loaded)
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
fn describe(source: &dyn TensorSource, name: &str) -> String {
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

/// Orders module prefixes by the integers in their names (see the module docs).
fn order_units(path: &Path, prefixes: Vec<String>, role: &str) -> Result<Vec<String>, LoadError> {
    if prefixes.len() <= 1 {
        return Ok(prefixes);
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
    units.sort_by(|a, b| {
        a.indices
            .cmp(&b.indices)
            .then_with(|| sublayer_rank(&a.prefix).cmp(&sublayer_rank(&b.prefix)))
    });
    for pair in units.windows(2) {
        if pair[0].indices == pair[1].indices {
            let (ra, rb) = (
                sublayer_rank(&pair[0].prefix),
                sublayer_rank(&pair[1].prefix),
            );
            if ra.is_none() || rb.is_none() || ra == rb {
                return Err(LoadError::format(
                    path,
                    format!(
                        "'{}{role}' and '{}{role}' have the same layer index {:?}; cannot tell which comes first",
                        pair[0].prefix, pair[1].prefix, pair[0].indices
                    ),
                ));
            }
        }
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
    Ok(units.into_iter().map(|u| u.prefix).collect())
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
        )
        .unwrap();
        assert_eq!(got[9], "layers.9.");
        assert_eq!(got[10], "layers.10.");
        let got = order_units(
            path,
            vec![
                "b.1.ffn.".into(),
                "b.1.attn.".into(),
                "b.0.mlp.".into(),
                "b.0.self_attn.".into(),
            ],
            "x",
        )
        .unwrap();
        assert_eq!(got, ["b.0.self_attn.", "b.0.mlp.", "b.1.attn.", "b.1.ffn."]);
        let err = order_units(path, vec!["a.1.".into(), "b.1.".into()], "x").unwrap_err();
        assert!(err.to_string().contains("same layer index"), "{err}");
        let err =
            order_units(path, vec!["l.0.".into(), "l.1.".into(), "l.3.".into()], "x").unwrap_err();
        assert!(err.to_string().contains("jump from 1 to 3"), "{err}");
    }
}
