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

/// The stack tensor and the reason, when `options` and the file resolve to [`Layout::Stack`]
/// (checked like [`load_hres_from`], without reading the tensor); `None` for a parameter layout.
pub(crate) fn resolve_stack(
    source: &dyn TensorSource,
    options: &LoadOptions,
) -> Result<Option<(String, String)>, LoadError> {
    let path = source.path();
    match options.layout {
        Some(Layout::Stack) => {
            let reason = "layout stack was requested".to_string();
            Ok(Some(match &options.key {
                Some(key) => (
                    key.clone(),
                    format!("{reason}; --key '{key}' names the tensor"),
                ),
                None => {
                    let (name, why) = pick_stack_tensor(source)?;
                    (name, format!("{reason}; {why}"))
                }
            }))
        }
        Some(layout) => {
            if options.key.is_some() {
                return Err(LoadError::format(
                    path,
                    format!(
                        "--key selects the tensor of layout stack; it cannot be combined with layout {layout}"
                    ),
                ));
            }
            Ok(None)
        }
        None => match detect(source, options)? {
            (Layout::Stack, reason, Some(key)) => Ok(Some((key, reason))),
            _ => Ok(None),
        },
    }
}

/// Role names (the last components of a tensor name) that mark each family.
const LUCIDRAINS_ROLE: &str = "static_alpha";
const DEEPSEEK_ATTN_ROLE: &str = "hc_attn_base";
const DEEPSEEK_FFN_ROLE: &str = "hc_ffn_base";
const MHC_PYTORCH_ROLE: &str = "phi_res.bias";
/// What "closest names" are measured against.
const HRES_TARGETS: [&str; 3] = ["static_alpha", "hc_attn_base", "phi_res"];

/// lucidrains mHC parameters that its HC class lacks, and the other way round.
const LUCIDRAINS_MHC_SIBLINGS: [&str; 3] = ["residual_scale", "pre_branch_scale", "h_post_scale"];
const LUCIDRAINS_HC_SIBLINGS: [&str; 2] = ["dynamic_alpha_scale", "dynamic_beta_scale"];

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

fn deepseek_prefixes(names: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = [DEEPSEEK_ATTN_ROLE, DEEPSEEK_FFN_ROLE]
        .into_iter()
        .flat_map(|role| [role.to_string(), format!("{role}{GGUF_WEIGHT_SUFFIX}")])
        .flat_map(|role| prefixes(names, &role))
        .collect();
    set.into_iter().collect()
}

/// llama.cpp's GGUF converter appends this to every DeepSeek-V4 parameter's name.
const GGUF_WEIGHT_SUFFIX: &str = ".weight";

/// The name of the DeepSeek-V4 tensor `hc_{sub}_{part}` of the block at `prefix`, as the file
/// spells it: the reference checkpoint's `layers.0.hc_attn_base`, or else llama.cpp GGUF's
/// `blk.0.hc_attn_base.weight` (the same values, f32, same shape once GGUF's innermost-first
/// dimensions are reversed). The reference spelling when neither is present.
fn deepseek_tensor_name(prefix: &str, sub: &str, part: &str, names: &BTreeSet<&str>) -> String {
    let reference = format!("{prefix}hc_{sub}_{part}");
    let gguf = format!("{reference}{GGUF_WEIGHT_SUFFIX}");
    if !names.contains(reference.as_str()) && names.contains(gguf.as_str()) {
        gguf
    } else {
        reference
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

/// Decides between lucidrains HC and mHC from metadata or sibling parameters.
fn lucidrains_flavour(
    source: &dyn TensorSource,
    prefixes: &[String],
) -> Result<(Layout, String), LoadError> {
    let path = source.path();
    let count = prefixes.len();
    if let Some(implementation) = source.metadata().get("implementation") {
        let value = implementation.to_ascii_lowercase();
        let layout = if value.contains("mhc") || value.contains("manifold") {
            Some(Layout::LucidrainsMhc)
        } else if value.contains("hc") || value.contains("hyper") {
            Some(Layout::LucidrainsHc)
        } else {
            None
        };
        if let Some(layout) = layout {
            return Ok((
                layout,
                format!(
                    "{count} '{LUCIDRAINS_ROLE}' tensors, and the file's metadata says implementation = '{implementation}'"
                ),
            ));
        }
    }
    let names: BTreeSet<&str> = source.names().iter().map(String::as_str).collect();
    let with_any = |siblings: &[&str]| {
        prefixes
            .iter()
            .filter(|p| {
                siblings
                    .iter()
                    .any(|s| names.contains(format!("{p}{s}").as_str()))
            })
            .count()
    };
    let mhc = with_any(&LUCIDRAINS_MHC_SIBLINGS);
    let hc = with_any(&LUCIDRAINS_HC_SIBLINGS);
    match (mhc > 0, hc > 0) {
        (true, false) => Ok((
            Layout::LucidrainsMhc,
            format!(
                "{count} '{LUCIDRAINS_ROLE}' tensors, {mhc} of them beside residual_scale / pre_branch_scale / h_post_scale, which only the package's mHC classes have"
            ),
        )),
        (false, true) => Ok((
            Layout::LucidrainsHc,
            format!(
                "{count} '{LUCIDRAINS_ROLE}' tensors, {hc} of them beside dynamic_alpha_scale / dynamic_beta_scale, which only the package's HC class has"
            ),
        )),
        (true, true) => Err(LoadError::format(
            path,
            format!(
                "'{LUCIDRAINS_ROLE}' tensors sit beside both mHC parameters (residual_scale …, {mhc} modules) and HC parameters (dynamic_alpha_scale …, {hc} modules); choose --layout lucidrains-hc or lucidrains-mhc"
            ),
        )),
        (false, false) => Err(LoadError::format(
            path,
            format!(
                "found {count} '{LUCIDRAINS_ROLE}' tensors but cannot tell HC from mHC (no metadata 'implementation', no residual_scale or dynamic_alpha_scale beside them); choose --layout lucidrains-hc or lucidrains-mhc"
            ),
        )),
    }
}

fn is_stack_shaped(info: &TensorInfo) -> bool {
    let s = &info.shape;
    info.dtype.float_size().is_some()
        && (s.len() == 3 || s.len() == 4)
        && s[s.len() - 1] == s[s.len() - 2]
}

/// The tensor to use as a stack when no key is given, and why.
fn pick_stack_tensor(source: &dyn TensorSource) -> Result<(String, String), LoadError> {
    let path = source.path();
    let infos = source.tensors()?;
    if source.format() == Format::Npy {
        let info = &infos[0];
        return Ok((
            info.name.clone(),
            format!(
                "a .npy file holds one array (shape {:?}), used as the stack",
                info.shape
            ),
        ));
    }
    let strict: Vec<&TensorInfo> = infos.iter().filter(|i| is_stack_shaped(i)).collect();
    let loose: Vec<&TensorInfo> = infos
        .iter()
        .filter(|i| i.dtype.float_size().is_some() && (i.shape.len() == 3 || i.shape.len() == 4))
        .collect();
    let chosen = match (strict.as_slice(), loose.as_slice()) {
        ([one], _) => *one,
        ([], [one]) => *one,
        ([], []) => {
            let names = source.names().to_vec();
            return Err(LoadError::NoHres {
                path: path.to_path_buf(),
                closest: closest_names(&names, &HRES_TARGETS, 3),
            });
        }
        (several, _) => {
            let several = if several.is_empty() {
                loose.as_slice()
            } else {
                several
            };
            return Err(LoadError::AmbiguousKey {
                path: path.to_path_buf(),
                candidates: several
                    .iter()
                    .map(|i| format!("{} {:?}", i.name, i.shape))
                    .collect(),
            });
        }
    };
    Ok((
        chosen.name.clone(),
        format!(
            "no model parameters of a known layout; '{}' (shape {:?}) is the only tensor of rank 3 or 4",
            chosen.name, chosen.shape
        ),
    ))
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

fn load_stack(
    source: &dyn TensorSource,
    key: Option<&str>,
    reason: String,
) -> Result<LoadedHres, LoadError> {
    let (name, reason) = match key {
        Some(key) => (key.to_string(), reason),
        None => {
            let (name, why) = pick_stack_tensor(source)?;
            (name, format!("{reason}; {why}"))
        }
    };
    let info = source.info(&name)?;
    let array = source.read_f64(&name)?;
    let stack = LayerStack::from_dynamic(array.view(), &describe(source, &name))?;
    let mut notes = vec![
        "matrices used as stored: rows are taken as output streams (x_{l+1} = H x_l); pass --transpose if the file stores H_resᵀ".to_string(),
    ];
    for key in ["convention", "layout"] {
        if let Some(value) = source.metadata().get(key) {
            notes.push(format!("file metadata {key} = '{value}'"));
        }
    }
    Ok(LoadedHres {
        stack,
        layout: Layout::Stack,
        reason,
        tensors: vec![name],
        source_dtype: info.dtype.to_string(),
        exact_side: None,
        notes,
    })
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

fn load_lucidrains(
    source: &dyn TensorSource,
    layout: Layout,
    reason: String,
) -> Result<LoadedHres, LoadError> {
    let path = source.path();
    let units = prefixes(source.names(), LUCIDRAINS_ROLE);
    if units.is_empty() {
        return Err(no_units(source, layout, "*.static_alpha"));
    }
    let units = order_units(path, units, LUCIDRAINS_ROLE)?;
    let mut dtypes = DtypeSet::default();
    let mut tensors = Vec::with_capacity(units.len());
    let mut matrices = Vec::with_capacity(units.len());
    let mut first: Option<(String, Vec<usize>)> = None;
    let params = SinkhornParams {
        iterations: SINKHORN_ITERATIONS,
        order: SinkhornOrder::RowsThenColumns,
    };
    for prefix in &units {
        let name = format!("{prefix}{LUCIDRAINS_ROLE}");
        let info = source.info(&name)?;
        match &first {
            None => {
                let ok =
                    info.shape.len() == 2 && info.shape[1] > info.shape[0] && info.shape[0] > 0;
                if !ok {
                    return Err(LoadError::tensor(
                        path,
                        &name,
                        shape_error(
                            &info.shape,
                            "[n, p + n] (p ≥ 1 branch-input columns, then the n×n residual mix)",
                        ),
                    ));
                }
                first = Some((name.clone(), info.shape.clone()));
            }
            Some((first_name, shape)) => {
                if &info.shape != shape {
                    return Err(LoadError::tensor(
                        path,
                        &name,
                        format!(
                            "{} (like '{first_name}')",
                            shape_error(&info.shape, &format!("{shape:?}"))
                        ),
                    ));
                }
            }
        }
        dtypes.add(info.dtype.clone());
        let alpha = read_finite(source, &name)?;
        let (n, columns) = (info.shape[0], info.shape[1]);
        let skip = columns - n;
        // alpha[s_in, t_out]: our H[i, j] (output i, input j) = alpha[j, skip + i].
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = alpha[[j, skip + i]];
            }
        }
        if layout == Layout::LucidrainsMhc {
            sinkhorn_in_place(&mut h, n, &params);
        }
        matrices.push(h);
        tensors.push(name);
    }
    let (_, shape) = first.expect("at least one unit");
    let n = shape[0];
    let skip = shape[1] - n;
    let stack = stack_from_matrices(source, layout, n, matrices)?;
    let mut notes = vec![
        "input-independent H_res from static_alpha only (the dynamic_alpha_fn term is zero without hidden states); load a captured [layers, tokens, n, n] tensor for per-token matrices".to_string(),
        format!(
            "stored as alpha[s_in, t_out]: H_res = static_alpha[:, {skip}:] transposed to rows = output streams"
        ),
    ];
    if layout == Layout::LucidrainsMhc {
        notes.push(format!(
            "Sinkhorn as in the package: exp, then {SINKHORN_ITERATIONS} × (rows, then columns) in our orientation; column sums exact, row sums carry the truncation error; computed in f64 (the package uses f32)"
        ));
    } else {
        notes.push("unconstrained HC: no Sinkhorn, entries may be negative".to_string());
    }
    if skip != 1 {
        notes.push(format!(
            "static_alpha has {skip} leading branch-input columns (several input views or fractions); H_res is its last {n} columns"
        ));
    }
    Ok(LoadedHres {
        stack,
        layout,
        reason,
        tensors,
        source_dtype: dtypes.describe(),
        exact_side: layout.exact_side(),
        notes,
    })
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn load_mhc_pytorch(source: &dyn TensorSource, reason: String) -> Result<LoadedHres, LoadError> {
    let layout = Layout::MhcPytorch;
    let path = source.path();
    let units = prefixes(source.names(), MHC_PYTORCH_ROLE);
    if units.is_empty() {
        return Err(no_units(source, layout, "*.phi_res.bias"));
    }
    let units = order_units(path, units, MHC_PYTORCH_ROLE)?;
    let names: BTreeSet<&str> = source.names().iter().map(String::as_str).collect();
    let mut dtypes = DtypeSet::default();
    let mut tensors = Vec::new();
    let mut matrices = Vec::with_capacity(units.len());
    let mut streams: Option<usize> = None;
    let params = SinkhornParams {
        iterations: SINKHORN_ITERATIONS,
        order: SinkhornOrder::RowsThenColumns,
    };
    for prefix in &units {
        let bias_name = format!("{prefix}phi_res.bias");
        let alpha_name = format!("{prefix}alpha_res");
        let b_name = format!("{prefix}b_res");
        let weight_name = format!("{prefix}phi_res.weight");
        for needed in [&alpha_name, &b_name] {
            if !names.contains(needed.as_str()) {
                return Err(LoadError::tensor(
                    path,
                    needed,
                    format!("not found: expected beside '{bias_name}' (mhc-pytorch layout)"),
                ));
            }
        }
        let b_info = source.info(&b_name)?;
        let n = match b_info.shape.as_slice() {
            [rows, cols] if rows == cols && *rows > 0 => *rows,
            other => {
                return Err(LoadError::tensor(
                    path,
                    &b_name,
                    shape_error(other, "[n, n]"),
                ));
            }
        };
        if let Some(expected) = streams
            && expected != n
        {
            return Err(LoadError::tensor(
                path,
                &b_name,
                shape_error(
                    &b_info.shape,
                    &format!("[{expected}, {expected}] like the other modules"),
                ),
            ));
        }
        streams = Some(n);
        let bias_info = source.info(&bias_name)?;
        if bias_info.shape != [n * n] {
            return Err(LoadError::tensor(
                path,
                &bias_name,
                shape_error(
                    &bias_info.shape,
                    &format!("[{}] (n² for b_res [{n}, {n}])", n * n),
                ),
            ));
        }
        let alpha_info = source.info(&alpha_name)?;
        if numel(&alpha_info.shape) != 1 || alpha_info.shape.len() > 1 {
            return Err(LoadError::tensor(
                path,
                &alpha_name,
                shape_error(&alpha_info.shape, "[1]"),
            ));
        }
        if names.contains(weight_name.as_str()) {
            let w = source.info(&weight_name)?;
            if w.shape.len() != 2 || w.shape[0] != n * n || w.shape[1] % n != 0 {
                return Err(LoadError::tensor(
                    path,
                    &weight_name,
                    shape_error(&w.shape, &format!("[{}, {n}·C]", n * n)),
                ));
            }
        }
        let alpha = read_finite(source, &alpha_name)?;
        let alpha = alpha.iter().next().copied().expect("one element");
        let bias = read_finite(source, &bias_name)?;
        let b = read_finite(source, &b_name)?;
        let mut logits: Vec<f64> = bias
            .iter()
            .zip(b.iter())
            .map(|(&bias, &b)| alpha * bias + b)
            .collect();
        if let Some(k) = logits.iter().position(|v| !v.is_finite()) {
            return Err(LoadError::tensor(
                path,
                &bias_name,
                format!(
                    "gives a non-finite logit at entry [{}, {}] (alpha_res · bias + b_res overflows)",
                    k / n,
                    k % n
                ),
            ));
        }
        sinkhorn_in_place(&mut logits, n, &params);
        matrices.push(logits);
        for (name, info) in [
            (&alpha_name, alpha_info),
            (&bias_name, bias_info),
            (&b_name, b_info),
        ] {
            dtypes.add(info.dtype);
            tensors.push(name.clone());
        }
    }
    let n = streams.expect("at least one unit");
    let stack = stack_from_matrices(source, layout, n, matrices)?;
    let notes = vec![
        "input-independent H_res: logits alpha_res · phi_res.bias.view(n, n) + b_res (the phi_res.weight term needs hidden states)".to_string(),
        format!(
            "Sinkhorn as in the package: exp, then {SINKHORN_ITERATIONS} × (rows, then columns), applied as h_res @ x (paper orientation, no transpose); column sums exact"
        ),
        "mhc-pytorch copies each module's input into n streams and merges them on exit, so streams do not persist between modules: only each H_res's row sums act, and a product of its H_res describes no real signal path".to_string(),
    ];
    Ok(LoadedHres {
        stack,
        layout,
        reason,
        tensors,
        source_dtype: dtypes.describe(),
        exact_side: layout.exact_side(),
        notes,
    })
}

/// DeepSeek-V4's Sinkhorn on a row-major n×n comb logit matrix, in the comb orientation
/// (`comb[i, j]`: input stream i → output stream j): softmax over the last dim + ε, divide by
/// column sums + ε, then `iterations − 1` × (rows + ε, columns + ε).
fn deepseek_sinkhorn(comb: &mut [f64], n: usize, iterations: u32, eps: f64) {
    for row in comb.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v = *v / sum + eps;
        }
    }
    let columns = |m: &mut [f64]| {
        for j in 0..n {
            let sum: f64 = (0..n).map(|i| m[i * n + j]).sum();
            for i in 0..n {
                m[i * n + j] /= sum + eps;
            }
        }
    };
    let rows = |m: &mut [f64]| {
        for row in m.chunks_exact_mut(n) {
            let sum: f64 = row.iter().sum();
            for v in row.iter_mut() {
                *v /= sum + eps;
            }
        }
    };
    columns(comb);
    for _ in 1..iterations {
        rows(comb);
        columns(comb);
    }
}

/// n from the base length (2 + n)·n, if it is one.
fn deepseek_streams(len: usize) -> Option<usize> {
    let n = ((1.0 + len as f64).sqrt() - 1.0).round() as usize;
    (n >= 1 && (2 + n) * n == len).then_some(n)
}

fn load_deepseek(source: &dyn TensorSource, reason: String) -> Result<LoadedHres, LoadError> {
    let layout = Layout::DeepseekV4;
    let path = source.path();
    let all = deepseek_prefixes(source.names());
    if all.is_empty() {
        return Err(no_units(source, layout, "*.hc_attn_base / *.hc_ffn_base"));
    }
    let mut notes = Vec::new();
    let (mtp, blocks): (Vec<String>, Vec<String>) = all.into_iter().partition(|p| {
        p.split('.')
            .any(|c| c.to_ascii_lowercase().starts_with("mtp"))
    });
    if !mtp.is_empty() {
        notes.push(format!(
            "ignored {} multi-token-prediction module(s) (e.g. '{}'): not on the main residual path",
            mtp.len(),
            mtp[0]
        ));
    }
    let blocks = order_units(path, blocks, "hc_*_base")?;
    let names: BTreeSet<&str> = source.names().iter().map(String::as_str).collect();
    let mut dtypes = DtypeSet::default();
    let mut tensors = Vec::new();
    let mut matrices = Vec::with_capacity(2 * blocks.len());
    let mut streams: Option<usize> = None;
    for prefix in &blocks {
        for sub in ["attn", "ffn"] {
            let base_name = deepseek_tensor_name(prefix, sub, "base", &names);
            if !names.contains(base_name.as_str()) {
                return Err(LoadError::tensor(
                    path,
                    &base_name,
                    "not found: every DeepSeek-V4 block needs both hc_attn_base and hc_ffn_base",
                ));
            }
            let info = source.info(&base_name)?;
            let expected_n = streams;
            let n = match (info.shape.as_slice(), expected_n) {
                ([len], Some(n)) if *len == (2 + n) * n => n,
                ([len], None) => deepseek_streams(*len).ok_or_else(|| {
                    LoadError::tensor(
                        path,
                        &base_name,
                        shape_error(&info.shape, "[(2 + n)·n] = [pre n | post n | comb n²]"),
                    )
                })?,
                (_, Some(n)) => {
                    return Err(LoadError::tensor(
                        path,
                        &base_name,
                        shape_error(
                            &info.shape,
                            &format!("[{}] (n = {n} like the other blocks)", (2 + n) * n),
                        ),
                    ));
                }
                (_, None) => {
                    return Err(LoadError::tensor(
                        path,
                        &base_name,
                        shape_error(&info.shape, "[(2 + n)·n] = [pre n | post n | comb n²]"),
                    ));
                }
            };
            streams = Some(n);
            let scale_name = deepseek_tensor_name(prefix, sub, "scale", &names);
            if names.contains(scale_name.as_str()) {
                let scale = source.info(&scale_name)?;
                if scale.shape != [3] {
                    return Err(LoadError::tensor(
                        path,
                        &scale_name,
                        shape_error(&scale.shape, "[3]"),
                    ));
                }
            }
            let fn_name = deepseek_tensor_name(prefix, sub, "fn", &names);
            if names.contains(fn_name.as_str()) {
                let f = source.info(&fn_name)?;
                if f.shape.len() != 2 || f.shape[0] != (2 + n) * n || f.shape[1] % n != 0 {
                    return Err(LoadError::tensor(
                        path,
                        &fn_name,
                        shape_error(&f.shape, &format!("[{}, {n}·dim]", (2 + n) * n)),
                    ));
                }
            }
            dtypes.add(info.dtype);
            let base = read_finite(source, &base_name)?;
            let base: Vec<f64> = base.iter().copied().collect();
            let mut comb = base[2 * n..].to_vec();
            deepseek_sinkhorn(&mut comb, n, SINKHORN_ITERATIONS, DEEPSEEK_EPS);
            // H_res = combᵀ.
            let mut h = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] = comb[j * n + i];
                }
            }
            matrices.push(h);
            tensors.push(base_name);
        }
    }
    let n = streams.expect("at least one block");
    let stack = stack_from_matrices(source, layout, n, matrices)?;
    notes.extend([
        "input-independent H_res: the comb part of hc_*_base alone (mixes = 0); per-token H_res needs hidden states".to_string(),
        "block b gives layer 2b−1 (attention) and layer 2b (FFN), in execution order".to_string(),
        format!(
            "Sinkhorn as in the reference code: softmax over the last dim + ε, columns + ε, then {} × (rows + ε, columns + ε), ε = {DEEPSEEK_EPS}; H_res = combᵀ, so row sums are exact to ε; computed in f64 (the reference uses f32)",
            SINKHORN_ITERATIONS - 1
        ),
        "hc_head_* (the stream merge before the output head) is not an H_res and is ignored".to_string(),
    ]);
    Ok(LoadedHres {
        stack,
        layout,
        reason,
        tensors,
        source_dtype: dtypes.describe(),
        exact_side: layout.exact_side(),
        notes,
    })
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

    #[test]
    fn deepseek_stream_count_from_base_length() {
        assert_eq!(deepseek_streams(24), Some(4));
        assert_eq!(deepseek_streams(3), Some(1));
        assert_eq!(deepseek_streams(25), None);
    }

    #[test]
    fn deepseek_sinkhorn_with_zero_eps_matches_the_paper_order() {
        // ε = 0: softmax over comb rows, then columns, then 19 × (rows, columns) in comb
        // orientation equals the paper's 20 × (columns, rows) on H = combᵀ.
        let comb0 = [0.3, -1.2, 2.0, 0.7, 0.1, -0.4, 1.5, -2.2, 0.9];
        let mut comb = comb0.to_vec();
        deepseek_sinkhorn(&mut comb, 3, 20, 0.0);
        let mut h: Vec<f64> = (0..9).map(|k| comb0[(k % 3) * 3 + k / 3]).collect();
        sinkhorn_in_place(
            &mut h,
            3,
            &SinkhornParams {
                iterations: 20,
                order: SinkhornOrder::ColumnsThenRows,
            },
        );
        for i in 0..3 {
            for j in 0..3 {
                assert!((h[i * 3 + j] - comb[j * 3 + i]).abs() < 1e-15);
            }
        }
    }
}
