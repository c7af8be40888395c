//! Experiment files: the TOML schema, parsed strictly and validated by the library's own
//! constructors ([`GainParams::validate`], [`LogitGenerator::new`], [`AuditConfig::new`]), so a
//! file accepts exactly what the command-line flags accept.
//!
//! Every file names its `kind` ([`ExperimentKind`]) and a `title`; the other keys depend on the
//! kind (see `experiments/*.toml` for one file of each). Keys are the `gain` flags with `_` for
//! `-` (`logit_std`, `sinkhorn_iters`, …); a grid lists values under `[grid]`. Every key that is
//! also a `gain` flag is optional and takes `gain`'s default ([`GainParams::default`],
//! [`LogitGenerator::default`], [`SinkhornParams::default`]). Required, besides `kind` and
//! `title`:
//!
//! | kind | required keys |
//! |---|---|
//! | `gain` | none |
//! | `sinkhorn-sweep` | `grid.sinkhorn_iters`, `grid.logit_scale`; `shared_per_layer_fraction` when `grid.correlation` lists `"shared"` |
//! | `depth-sweep` | `grid.layers` (at least two depths), `grid.streams` |
//! | `heatmaps` | `single` or `products` (at least one matrix to show) |
//! | `checkpoint-audit` | at least one `[[model]]` with `name`, `label` and `path` |
//! | `training` | at least one `[[run]]` with `name`, `label` and `checkpoints` (at least two) |
//!
//! In a sweep, `grid.identity_weight` defaults to `[1]` and `grid.correlation` to
//! `["independent"]` (the `gain` generator: no shared part). Unknown keys, wrong types and
//! out-of-range values are errors that name the file, the line and the key:
//!
//! ```text
//! experiments/x.toml: line 3: unknown field 'layerz', expected one of 'kind', 'title', …
//! experiments/x.toml: line 5: layers must be at least 1, got 0
//! ```

use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use crate::ConfigError;
use crate::analysis::series::SeriesConfig;
use crate::analysis::{AuditConfig, GainConfig, GainParams, TokenAggregation};
use crate::error::Error;
use crate::generate::{LogitGenerator, SinkhornOrder, SinkhornParams};
use crate::load::{Layout, LoadError, LoadOptions};

/// The kinds of experiment, as written in `kind = "…"` (kebab-case). Each kind has its own
/// parser and its own [`Spec`] variant; the matches over this enum have no catch-all arm, so a
/// new kind does not compile until it has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExperimentKind {
    /// HC vs mHC over seeds at one depth: `kind = "gain"`.
    Gain,
    /// mHC against Sinkhorn iterations, logit scale and layer correlation.
    SinkhornSweep,
    /// HC growth and mHC stream collapse against depth and stream count.
    DepthSweep,
    /// Heat maps of single and composite H_res.
    Heatmaps,
    /// Audits of checkpoints side by side.
    CheckpointAudit,
    /// Training runs: each a series of checkpoints audited against the step.
    Training,
}

impl ExperimentKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [ExperimentKind; 6] = [
        Self::Gain,
        Self::SinkhornSweep,
        Self::DepthSweep,
        Self::Heatmaps,
        Self::CheckpointAudit,
        Self::Training,
    ];

    /// The spelling in `kind = "…"`, in the manifest and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gain => "gain",
            Self::SinkhornSweep => "sinkhorn-sweep",
            Self::DepthSweep => "depth-sweep",
            Self::Heatmaps => "heatmaps",
            Self::CheckpointAudit => "checkpoint-audit",
            Self::Training => "training",
        }
    }

    /// The kind spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for ExperimentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed, validated experiment file.
#[derive(Clone, Debug)]
pub struct Experiment {
    path: PathBuf,
    name: String,
    text: String,
    sha256: String,
    title: String,
    spec: Spec,
}

/// What an experiment runs, by kind; every configuration inside is validated.
#[derive(Clone, Debug)]
pub enum Spec {
    /// HC vs mHC over seeds at one depth (`kind = "gain"`).
    Gain(GainSpec),
    /// mHC against Sinkhorn iterations, logit scale and layer correlation.
    SinkhornSweep(SinkhornSpec),
    /// HC growth and mHC stream collapse against depth and stream count.
    DepthSweep(DepthSpec),
    /// Heat maps of single and composite H_res of one draw, and of the paper's Figure 8.
    Heatmaps(HeatmapSpec),
    /// Audits of checkpoints.
    CheckpointAudit(CheckpointSpec),
    /// Training runs: series of checkpoints against the step.
    Training(TrainingSpec),
}

impl Spec {
    /// The kind this specification runs.
    pub fn kind(&self) -> ExperimentKind {
        match self {
            Spec::Gain(_) => ExperimentKind::Gain,
            Spec::SinkhornSweep(_) => ExperimentKind::SinkhornSweep,
            Spec::DepthSweep(_) => ExperimentKind::DepthSweep,
            Spec::Heatmaps(_) => ExperimentKind::Heatmaps,
            Spec::CheckpointAudit(_) => ExperimentKind::CheckpointAudit,
            Spec::Training(_) => ExperimentKind::Training,
        }
    }
}

/// `kind = "gain"`.
#[derive(Clone, Debug)]
pub struct GainSpec {
    /// The sweep, exactly as `mhc-analyze gain` would run it.
    pub config: GainConfig,
}

/// How the layers of a draw are correlated in the Sinkhorn sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correlation {
    /// Every layer draws its own logits: `logit_std = scale`, `shared_std = 0`.
    Independent,
    /// One base drawn per seed and shared by all layers, plus a small per-layer part:
    /// `shared_std = scale`, `logit_std = shared_per_layer_fraction · scale`.
    Shared,
}

impl Correlation {
    /// The name in files and CSV.
    pub fn name(self) -> &'static str {
        match self {
            Correlation::Independent => "independent",
            Correlation::Shared => "shared",
        }
    }
}

/// One point of the Sinkhorn grid.
#[derive(Clone, Debug)]
pub struct SinkhornPoint {
    /// t_max.
    pub iterations: u32,
    /// Weight w of the identity in the logits.
    pub identity_weight: f64,
    /// The logit scale s.
    pub scale: f64,
    /// Layer correlation.
    pub correlation: Correlation,
    /// The validated sweep of this point.
    pub config: GainConfig,
}

/// `kind = "sinkhorn-sweep"`.
#[derive(Clone, Debug)]
pub struct SinkhornSpec {
    /// t_max values, as listed.
    pub iterations: Vec<u32>,
    /// Identity weights, as listed.
    pub identity_weights: Vec<f64>,
    /// Logit scales, as listed.
    pub scales: Vec<f64>,
    /// Correlations, as listed.
    pub correlations: Vec<Correlation>,
    /// Per-layer std as a fraction of the scale for shared layers.
    pub shared_per_layer_fraction: f64,
    /// Every grid point (identity weight, then correlation, then scale, then t_max).
    pub points: Vec<SinkhornPoint>,
}

/// `kind = "depth-sweep"`.
#[derive(Clone, Debug)]
pub struct DepthSpec {
    /// Depths L, strictly increasing.
    pub depths: Vec<usize>,
    /// Stream counts n, strictly increasing.
    pub streams: Vec<usize>,
    /// One sweep per stream count, at the largest depth (prefix(L) of its first L layers is
    /// exactly the L-layer model of the same draw).
    pub configs: Vec<GainConfig>,
}

/// `kind = "heatmaps"`.
#[derive(Clone, Debug)]
pub struct HeatmapSpec {
    /// One draw (`seeds = 1`) of the generator.
    pub config: GainConfig,
    /// Single layers to show (1-based).
    pub single: Vec<usize>,
    /// Products `[a, b]` = H_b ⋯ H_a to show.
    pub products: Vec<[usize; 2]>,
    /// The paper's printed matrices, as written in the file and resolved.
    pub paper_data: Option<InputPath>,
}

/// A file named by an experiment: as written (relative to the experiment file) and resolved.
#[derive(Clone, Debug)]
pub struct InputPath {
    /// As written in the experiment file.
    pub written: String,
    /// Resolved against the experiment file's directory.
    pub resolved: PathBuf,
}

/// One model of a checkpoint audit.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// A short identifier (CSV, table, heat-map titles).
    pub name: String,
    /// A descriptive label (legends, prose).
    pub label: String,
    /// The checkpoint.
    pub path: InputPath,
    /// How to load it.
    pub options: LoadOptions,
}

/// `kind = "checkpoint-audit"`.
#[derive(Clone, Debug)]
pub struct CheckpointSpec {
    /// Thresholds and token aggregation.
    pub config: AuditConfig,
    /// The models, in order.
    pub models: Vec<ModelSpec>,
}

impl Experiment {
    /// Reads and validates an experiment file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::io(path, source))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            LoadError::format(
                path,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        Self::parse(path, &text)
    }

    /// Validates the TOML `text` of the experiment file at `path` (the path names the file in
    /// messages, gives the report its name, and anchors relative paths inside the file).
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let source = Source { path, text };
        let document = DeTable::parse(text).map_err(|e| source.toml_error(&e))?;
        let kind = match find(document.get_ref(), &[Seg::Key(Key::Kind)]) {
            None => return Err(source.error(None, missing_kind())),
            Some(value) => match value.get_ref().as_str() {
                Some(name) => ExperimentKind::from_name(name).ok_or_else(|| {
                    source.error(
                        Some(value.span()),
                        format!("unknown kind '{name}', expected one of {}", kind_names()),
                    )
                })?,
                None => {
                    return Err(source.error(
                        Some(value.span()),
                        format!(
                            "kind must be a string, one of {}, got {}",
                            kind_names(),
                            value.get_ref().type_str()
                        ),
                    ));
                }
            },
        };
        let check = Checker {
            source: &source,
            document: document.get_ref(),
        };
        let (title, spec) = match kind {
            ExperimentKind::Gain => {
                let file: GainFile = source.deserialize()?;
                (file.title.clone(), Spec::Gain(file.validate(&check)?))
            }
            ExperimentKind::SinkhornSweep => {
                let file: SinkhornFile = source.deserialize()?;
                (
                    file.title.clone(),
                    Spec::SinkhornSweep(file.validate(&check)?),
                )
            }
            ExperimentKind::DepthSweep => {
                let file: DepthFile = source.deserialize()?;
                (file.title.clone(), Spec::DepthSweep(file.validate(&check)?))
            }
            ExperimentKind::Heatmaps => {
                let file: HeatmapFile = source.deserialize()?;
                (file.title.clone(), Spec::Heatmaps(file.validate(&check)?))
            }
            ExperimentKind::CheckpointAudit => {
                let file: CheckpointFile = source.deserialize()?;
                (
                    file.title.clone(),
                    Spec::CheckpointAudit(file.validate(&check)?),
                )
            }
            ExperimentKind::Training => {
                let file: TrainingFile = source.deserialize()?;
                (file.title.clone(), Spec::Training(file.validate(&check)?))
            }
        };
        debug_assert_eq!(spec.kind(), kind, "each kind has its own parser");
        if title.trim().is_empty() {
            return Err(check.error(&[Seg::Key(Key::Title)], "title must not be empty".into()));
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".to_string());
        Ok(Self {
            path: path.to_path_buf(),
            name,
            text: text.to_string(),
            sha256: hex(&Sha256::digest(text.as_bytes())),
            title: title.trim().to_string(),
            spec,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file stem: the report's folder name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The file's text, verbatim.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// SHA-256 of the file's bytes, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// The kind, as named by `kind = "…"`.
    pub fn kind(&self) -> ExperimentKind {
        self.spec.kind()
    }
    /// What to run.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Units of work for a progress bar (seeds × grid points; one per model or matrix).
    pub fn work_units(&self) -> u64 {
        match &self.spec {
            Spec::Gain(g) => g.config.seeds(),
            Spec::SinkhornSweep(s) => s.points.iter().map(|p| p.config.seeds()).sum(),
            Spec::DepthSweep(d) => d.configs.iter().map(|c| c.seeds()).sum(),
            Spec::Heatmaps(_) => 1,
            Spec::CheckpointAudit(c) => c.models.len() as u64,
            Spec::Training(t) => t.runs.iter().map(|r| r.checkpoints.len() as u64).sum(),
        }
    }
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `'gain', 'sinkhorn-sweep', …`.
fn kind_names() -> String {
    ExperimentKind::ALL
        .iter()
        .map(|kind| format!("'{kind}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_kind() -> String {
    format!("missing field 'kind', expected one of {}", kind_names())
}

// ---------------------------------------------------------------------------------------------
// Errors with lines
// ---------------------------------------------------------------------------------------------

struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    /// 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Option<std::ops::Range<usize>>, message: String) -> Error {
        let message = message.replace(['\n', '\r'], " ").replace('`', "'");
        let message = message.trim().to_string();
        let message = match span {
            Some(span) => format!("line {}: {message}", self.line(span.start)),
            None => message,
        };
        LoadError::format(self.path, message).into()
    }

    /// The key of the `key = value` line holding `offset`, if that line is one.
    fn key_at(&self, offset: usize) -> Option<&'a str> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |k| k + 1);
        let line = self.text[start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        let bare = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        bare.then_some(key)
    }

    fn toml_error(&self, e: &toml::de::Error) -> Error {
        let message = e.message().trim();
        let message = match e.span().and_then(|span| self.key_at(span.start)) {
            // serde's type and value errors do not name the key; its field errors do.
            Some(key)
                if message.starts_with("invalid") || message.starts_with("unknown variant") =>
            {
                format!("key '{key}': {message}")
            }
            _ => message.to_string(),
        };
        self.error(e.span(), message)
    }

    fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        toml::from_str(self.text).map_err(|e| self.toml_error(&e))
    }
}

/// The keys of experiment files (top level, `[grid]` and `[[model]]`), each with its one
/// spelling. Error messages and line lookups go through this type, never through a bare string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Kind,
    Title,
    Layers,
    Streams,
    Tokens,
    Seeds,
    Seed,
    IdentityWeight,
    LogitStd,
    SharedStd,
    SinkhornIters,
    SinkhornOrder,
    TokenAggregation,
    MaxGain,
    SharedPerLayerFraction,
    Grid,
    LogitScale,
    Correlation,
    Single,
    Products,
    PaperData,
    Model,
    Name,
    Label,
    Path,
    Layout,
    /// `key` of a `[[model]]`: the tensor of a stack.
    Tensor,
    Transpose,
    StillTolerance,
    Provenance,
    Run,
    Checkpoints,
}

impl Key {
    const ALL: [Key; 32] = [
        Key::Kind,
        Key::Title,
        Key::Layers,
        Key::Streams,
        Key::Tokens,
        Key::Seeds,
        Key::Seed,
        Key::IdentityWeight,
        Key::LogitStd,
        Key::SharedStd,
        Key::SinkhornIters,
        Key::SinkhornOrder,
        Key::TokenAggregation,
        Key::MaxGain,
        Key::SharedPerLayerFraction,
        Key::Grid,
        Key::LogitScale,
        Key::Correlation,
        Key::Single,
        Key::Products,
        Key::PaperData,
        Key::Model,
        Key::Name,
        Key::Label,
        Key::Path,
        Key::Layout,
        Key::Tensor,
        Key::Transpose,
        Key::StillTolerance,
        Key::Provenance,
        Key::Run,
        Key::Checkpoints,
    ];

    /// As written in the file.
    fn name(self) -> &'static str {
        match self {
            Key::Kind => "kind",
            Key::Title => "title",
            Key::Layers => "layers",
            Key::Streams => "streams",
            Key::Tokens => "tokens",
            Key::Seeds => "seeds",
            Key::Seed => "seed",
            Key::IdentityWeight => "identity_weight",
            Key::LogitStd => "logit_std",
            Key::SharedStd => "shared_std",
            Key::SinkhornIters => "sinkhorn_iters",
            Key::SinkhornOrder => "sinkhorn_order",
            Key::TokenAggregation => "token_aggregation",
            Key::MaxGain => "max_gain",
            Key::SharedPerLayerFraction => "shared_per_layer_fraction",
            Key::Grid => "grid",
            Key::LogitScale => "logit_scale",
            Key::Correlation => "correlation",
            Key::Single => "single",
            Key::Products => "products",
            Key::PaperData => "paper_data",
            Key::Model => "model",
            Key::Name => "name",
            Key::Label => "label",
            Key::Path => "path",
            Key::Layout => "layout",
            Key::Tensor => "key",
            Key::Transpose => "transpose",
            Key::StillTolerance => "still_tolerance",
            Key::Provenance => "provenance",
            Key::Run => "run",
            Key::Checkpoints => "checkpoints",
        }
    }

    /// The key that sets the library parameter `name` of a [`ConfigError`] (the command-line
    /// flag without `--`; a key is the flag with `_` for `-`); `None` for a parameter no
    /// experiment file sets.
    fn of_parameter(name: &str) -> Option<Key> {
        let spelled = name.replace('-', "_");
        Key::ALL.into_iter().find(|key| key.name() == spelled)
    }
}

/// A step in a key path: a table key or an array index.
#[derive(Clone, Copy, Debug)]
enum Seg {
    Key(Key),
    Index(usize),
}

fn find<'d, 'i>(table: &'d DeTable<'i>, path: &[Seg]) -> Option<&'d toml::Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(key) = first else {
        return None;
    };
    let value = table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key.name())
        .map(|(_, v)| v)?;
    descend(value, rest)
}

fn descend<'d, 'i>(
    value: &'d toml::Spanned<DeValue<'i>>,
    path: &[Seg],
) -> Option<&'d toml::Spanned<DeValue<'i>>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    match (first, value.get_ref()) {
        (Seg::Key(_), DeValue::Table(table)) => find(table, path),
        (Seg::Index(i), DeValue::Array(array)) => descend(array.get(*i)?, rest),
        _ => None,
    }
}

/// Where each of the library's parameters sits in a file of one kind.
type KeyPath<'a> = &'a dyn Fn(Key) -> Vec<Seg>;

/// A top-level key.
fn flat(key: Key) -> Vec<Seg> {
    vec![Seg::Key(key)]
}

/// A key under `[grid]`.
fn in_grid(key: Key) -> Vec<Seg> {
    vec![Seg::Key(Key::Grid), Seg::Key(key)]
}

/// Validation errors pointing at the key that holds the bad value.
struct Checker<'a, 'i> {
    source: &'a Source<'a>,
    document: &'a DeTable<'i>,
}

impl Checker<'_, '_> {
    /// The span of the deepest part of `path` found in the file (the key's value, or an
    /// enclosing table when the key was left out and a default applies).
    fn span(&self, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        (1..=path.len())
            .rev()
            .find_map(|k| find(self.document, &path[..k]).map(|v| v.span()))
    }

    fn error(&self, path: &[Seg], message: String) -> Error {
        self.source.error(self.span(path), message)
    }

    /// A [`ConfigError`] re-worded with the file's key name, at that key's line.
    fn config(&self, path: &[Seg], key: Key, err: ConfigError) -> Error {
        let key = key.name();
        let message = match err {
            ConfigError::TooSmall { minimum, value, .. } => {
                format!("{key} must be at least {minimum}, got {value}")
            }
            ConfigError::TooLarge { maximum, value, .. } => {
                format!("{key} must be at most {maximum}, got {value}")
            }
            ConfigError::BadReal {
                non_negative,
                value,
                ..
            } => format!(
                "{key} must be a finite number{}, got {value}",
                if non_negative { " ≥ 0" } else { "" }
            ),
            ConfigError::NotPositive { value, .. } => {
                format!("{key} must be a positive finite number, got {value}")
            }
            ConfigError::Conflict(text) => text,
        };
        self.error(path, message)
    }

    /// Maps an error of [`GainParams::validate`], [`LogitGenerator::new`] or
    /// [`AuditConfig::new`] to the key that sets the parameter; `keys` says where each key sits
    /// in this kind of file. An error of a parameter no key sets names no line (rather than a
    /// wrong one).
    fn gain_error(&self, err: ConfigError, keys: KeyPath<'_>) -> Error {
        let name = match &err {
            ConfigError::TooSmall { name, .. }
            | ConfigError::TooLarge { name, .. }
            | ConfigError::BadReal { name, .. }
            | ConfigError::NotPositive { name, .. } => *name,
            ConfigError::Conflict(_) => "",
        };
        if name.contains('×') {
            // The per-draw size limit is a product of parameters: point at the depth.
            return self.error(&keys(Key::Layers), err.to_string());
        }
        match Key::of_parameter(name) {
            Some(key) => {
                let path = keys(key);
                let shown = path
                    .iter()
                    .rev()
                    .find_map(|s| match s {
                        Seg::Key(k) => Some(*k),
                        Seg::Index(_) => None,
                    })
                    .unwrap_or(key);
                self.config(&path, shown, err)
            }
            None => self.source.error(None, err.to_string()),
        }
    }
}

fn generator(
    check: &Checker<'_, '_>,
    identity_weight: Option<f64>,
    logit_std: Option<f64>,
    shared_std: Option<f64>,
    keys: KeyPath<'_>,
) -> Result<LogitGenerator, Error> {
    let default = LogitGenerator::default();
    LogitGenerator::new(
        identity_weight.unwrap_or(default.identity_weight()),
        logit_std.unwrap_or(default.logit_std()),
        shared_std.unwrap_or(default.shared_std()),
    )
    .map_err(|e| check.gain_error(e, keys))
}

fn sinkhorn(iterations: Option<u32>, order: Option<SinkhornOrder>) -> SinkhornParams {
    let default = SinkhornParams::default();
    SinkhornParams {
        iterations: iterations.unwrap_or(default.iterations),
        order: order.unwrap_or(default.order),
    }
}

/// Rejects an empty or not strictly increasing list.
fn increasing<T: PartialOrd + Copy + std::fmt::Display>(
    check: &Checker<'_, '_>,
    path: &[Seg],
    key: Key,
    values: &[T],
) -> Result<(), Error> {
    let key = key.name();
    if values.is_empty() {
        return Err(check.error(path, format!("{key} must list at least one value")));
    }
    if let Some(pair) = values.windows(2).find(|w| w[0] >= w[1]) {
        return Err(check.error(
            path,
            format!(
                "{key} must be strictly increasing, got {} before {}",
                pair[0], pair[1]
            ),
        ));
    }
    Ok(())
}

fn resolve(experiment: &Path, written: &str) -> InputPath {
    let base = experiment.parent().unwrap_or(Path::new(""));
    InputPath {
        written: written.to_string(),
        resolved: base.join(written),
    }
}

// ---------------------------------------------------------------------------------------------
// kind = "gain"
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GainFile {
    #[allow(dead_code)]
    kind: IgnoredAny,
    title: String,
    layers: Option<usize>,
    streams: Option<usize>,
    seeds: Option<u64>,
    seed: Option<u64>,
    tokens: Option<usize>,
    identity_weight: Option<f64>,
    logit_std: Option<f64>,
    shared_std: Option<f64>,
    sinkhorn_iters: Option<u32>,
    sinkhorn_order: Option<SinkhornOrder>,
    token_aggregation: Option<TokenAggregation>,
}

impl GainFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<GainSpec, Error> {
        let generator = generator(
            check,
            self.identity_weight,
            self.logit_std,
            self.shared_std,
            &flat,
        )?;
        let defaults = GainParams::default();
        let config = GainParams {
            layers: self.layers.unwrap_or(defaults.layers),
            streams: self.streams.unwrap_or(defaults.streams),
            tokens: self.tokens.unwrap_or(defaults.tokens),
            seeds: self.seeds.unwrap_or(defaults.seeds),
            seed: self.seed.unwrap_or(defaults.seed),
            generator,
            sinkhorn: sinkhorn(self.sinkhorn_iters, self.sinkhorn_order),
            token_aggregation: self.token_aggregation.unwrap_or(defaults.token_aggregation),
        }
        .validate()
        .map_err(|e| check.gain_error(e, &flat))?;
        Ok(GainSpec { config })
    }
}

// ---------------------------------------------------------------------------------------------
// kind = "sinkhorn-sweep"
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkhornFile {
    #[allow(dead_code)]
    kind: IgnoredAny,
    title: String,
    layers: Option<usize>,
    streams: Option<usize>,
    seeds: Option<u64>,
    seed: Option<u64>,
    sinkhorn_order: Option<SinkhornOrder>,
    shared_per_layer_fraction: Option<f64>,
    grid: SinkhornGrid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkhornGrid {
    sinkhorn_iters: Vec<u32>,
    identity_weight: Option<Vec<f64>>,
    logit_scale: Vec<f64>,
    correlation: Option<Vec<Correlation>>,
}

impl SinkhornFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<SinkhornSpec, Error> {
        let defaults = GainParams::default();
        let iterations = self.grid.sinkhorn_iters;
        let scales = self.grid.logit_scale;
        let identity_weights = self
            .grid
            .identity_weight
            .unwrap_or_else(|| vec![LogitGenerator::default().identity_weight()]);
        let correlations = self
            .grid
            .correlation
            .unwrap_or_else(|| vec![Correlation::Independent]);
        increasing(
            check,
            &in_grid(Key::SinkhornIters),
            Key::SinkhornIters,
            &iterations,
        )?;
        increasing(check, &in_grid(Key::LogitScale), Key::LogitScale, &scales)?;
        increasing(
            check,
            &in_grid(Key::IdentityWeight),
            Key::IdentityWeight,
            &identity_weights,
        )?;
        let c_path = in_grid(Key::Correlation);
        if correlations.is_empty() {
            return Err(check.error(&c_path, "correlation must list at least one value".into()));
        }
        for (k, c) in correlations.iter().enumerate() {
            if correlations[..k].contains(c) {
                return Err(check.error(&c_path, format!("correlation lists '{}' twice", c.name())));
            }
        }
        let fraction_path = flat(Key::SharedPerLayerFraction);
        let fraction = match self.shared_per_layer_fraction {
            Some(fraction) => fraction,
            None if correlations.contains(&Correlation::Shared) => {
                return Err(check.error(
                    &c_path,
                    "shared_per_layer_fraction is required when correlation lists 'shared' (the per-layer noise as a fraction of the shared scale)".into(),
                ));
            }
            // Unused without shared layers.
            None => 0.0,
        };
        if !(fraction.is_finite() && fraction >= 0.0) {
            return Err(check.config(
                &fraction_path,
                Key::SharedPerLayerFraction,
                ConfigError::BadReal {
                    name: "shared_per_layer_fraction",
                    non_negative: true,
                    value: fraction,
                },
            ));
        }
        let keys = |key: Key| match key {
            Key::LogitStd | Key::SharedStd => in_grid(Key::LogitScale),
            Key::IdentityWeight | Key::SinkhornIters => in_grid(key),
            other => flat(other),
        };
        let mut points = Vec::new();
        for &identity_weight in &identity_weights {
            for &correlation in &correlations {
                for &scale in &scales {
                    let (logit_std, shared_std) = match correlation {
                        Correlation::Independent => (scale, 0.0),
                        Correlation::Shared => (fraction * scale, scale),
                    };
                    let generator = generator(
                        check,
                        Some(identity_weight),
                        Some(logit_std),
                        Some(shared_std),
                        &keys,
                    )?;
                    for &t_max in &iterations {
                        let config = GainParams {
                            layers: self.layers.unwrap_or(defaults.layers),
                            streams: self.streams.unwrap_or(defaults.streams),
                            tokens: 1,
                            seeds: self.seeds.unwrap_or(defaults.seeds),
                            seed: self.seed.unwrap_or(defaults.seed),
                            generator: generator.clone(),
                            sinkhorn: sinkhorn(Some(t_max), self.sinkhorn_order),
                            token_aggregation: TokenAggregation::MeanOfMetrics,
                        }
                        .validate()
                        .map_err(|e| check.gain_error(e, &keys))?;
                        points.push(SinkhornPoint {
                            iterations: t_max,
                            identity_weight,
                            scale,
                            correlation,
                            config,
                        });
                    }
                }
            }
        }
        Ok(SinkhornSpec {
            iterations,
            identity_weights,
            scales,
            correlations,
            shared_per_layer_fraction: fraction,
            points,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// kind = "depth-sweep"
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepthFile {
    #[allow(dead_code)]
    kind: IgnoredAny,
    title: String,
    seeds: Option<u64>,
    seed: Option<u64>,
    identity_weight: Option<f64>,
    logit_std: Option<f64>,
    shared_std: Option<f64>,
    sinkhorn_iters: Option<u32>,
    sinkhorn_order: Option<SinkhornOrder>,
    grid: DepthGrid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepthGrid {
    layers: Vec<usize>,
    streams: Vec<usize>,
}

impl DepthFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<DepthSpec, Error> {
        let keys = |key: Key| match key {
            Key::Layers | Key::Streams => in_grid(key),
            other => flat(other),
        };
        increasing(check, &keys(Key::Layers), Key::Layers, &self.grid.layers)?;
        increasing(check, &keys(Key::Streams), Key::Streams, &self.grid.streams)?;
        if self.grid.layers.len() < 2 {
            return Err(check.error(
                &keys(Key::Layers),
                "layers must list at least two depths (the growth rate is a fitted slope)".into(),
            ));
        }
        let generator = generator(
            check,
            self.identity_weight,
            self.logit_std,
            self.shared_std,
            &keys,
        )?;
        let sinkhorn = sinkhorn(self.sinkhorn_iters, self.sinkhorn_order);
        let defaults = GainParams::default();
        let mut configs = Vec::new();
        for &streams in &self.grid.streams {
            // Every depth goes through the constructor, the largest one is what runs.
            for &layers in &self.grid.layers {
                let config = GainParams {
                    layers,
                    streams,
                    tokens: 1,
                    seeds: self.seeds.unwrap_or(defaults.seeds),
                    seed: self.seed.unwrap_or(defaults.seed),
                    generator: generator.clone(),
                    sinkhorn,
                    token_aggregation: TokenAggregation::MeanOfMetrics,
                }
                .validate()
                .map_err(|e| check.gain_error(e, &keys))?;
                if Some(&layers) == self.grid.layers.last() {
                    configs.push(config);
                }
            }
        }
        Ok(DepthSpec {
            depths: self.grid.layers,
            streams: self.grid.streams,
            configs,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// kind = "heatmaps"
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeatmapFile {
    #[allow(dead_code)]
    kind: IgnoredAny,
    title: String,
    layers: Option<usize>,
    streams: Option<usize>,
    seed: Option<u64>,
    identity_weight: Option<f64>,
    logit_std: Option<f64>,
    shared_std: Option<f64>,
    sinkhorn_iters: Option<u32>,
    sinkhorn_order: Option<SinkhornOrder>,
    #[serde(default)]
    single: Vec<usize>,
    #[serde(default)]
    products: Vec<[usize; 2]>,
    paper_data: Option<String>,
}

impl HeatmapFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<HeatmapSpec, Error> {
        let generator = generator(
            check,
            self.identity_weight,
            self.logit_std,
            self.shared_std,
            &flat,
        )?;
        let defaults = GainParams::default();
        let layers = self.layers.unwrap_or(defaults.layers);
        let config = GainParams {
            layers,
            streams: self.streams.unwrap_or(defaults.streams),
            tokens: 1,
            seeds: 1,
            seed: self.seed.unwrap_or(defaults.seed),
            generator,
            sinkhorn: sinkhorn(self.sinkhorn_iters, self.sinkhorn_order),
            token_aggregation: TokenAggregation::MeanOfMetrics,
        }
        .validate()
        .map_err(|e| check.gain_error(e, &flat))?;
        if self.single.is_empty() && self.products.is_empty() {
            return Err(check.error(
                &flat(Key::Single),
                "single and products are both empty or missing: nothing to show".into(),
            ));
        }
        for (k, &layer) in self.single.iter().enumerate() {
            if !(1..=layers).contains(&layer) {
                return Err(check.error(
                    &[Seg::Key(Key::Single), Seg::Index(k)],
                    format!("single lists layer {layer}, expected 1 to {layers} (layers)"),
                ));
            }
        }
        for (k, &[a, b]) in self.products.iter().enumerate() {
            if !(1 <= a && a <= b && b <= layers && (a == 1 || b == layers)) {
                return Err(check.error(
                    &[Seg::Key(Key::Products), Seg::Index(k)],
                    format!(
                        "products lists [{a}, {b}], expected a prefix [1, b] or a suffix [a, {layers}] (the product H_b⋯H_a, 1 ≤ a ≤ b ≤ layers)"
                    ),
                ));
            }
        }
        let paper_data = self
            .paper_data
            .as_deref()
            .map(|written| resolve(check.source.path, written));
        Ok(HeatmapSpec {
            config,
            single: self.single,
            products: self.products,
            paper_data,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// kind = "checkpoint-audit"
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    #[allow(dead_code)]
    kind: IgnoredAny,
    title: String,
    max_gain: Option<f64>,
    token_aggregation: Option<TokenAggregation>,
    model: Vec<ModelFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    name: String,
    label: String,
    path: String,
    layout: Option<String>,
    key: Option<String>,
    transpose: Option<bool>,
}

impl CheckpointFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<CheckpointSpec, Error> {
        let config = AuditConfig::new(
            self.max_gain.unwrap_or(AuditConfig::default().max_gain()),
            None,
            self.token_aggregation.unwrap_or_default(),
        )
        .map_err(|e| check.gain_error(e, &flat))?;
        if self.model.is_empty() {
            return Err(check.error(
                &flat(Key::Model),
                "model must list at least one [[model]]".into(),
            ));
        }
        let mut models = Vec::new();
        for (k, model) in self.model.into_iter().enumerate() {
            let at = |key: Key| [Seg::Key(Key::Model), Seg::Index(k), Seg::Key(key)];
            let layout = match model.layout.as_deref() {
                None | Some("auto") => None,
                Some(name) => Some(
                    name.parse::<Layout>()
                        .map_err(|e| check.error(&at(Key::Layout), format!("{e}, or auto")))?,
                ),
            };
            if model.label.trim().is_empty() {
                return Err(check.error(&at(Key::Label), "label must not be empty".into()));
            }
            let name = model.name.trim().to_string();
            if name.is_empty() || name.contains([',', '"', '\n']) {
                return Err(check.error(
                    &at(Key::Name),
                    "name must be a short identifier (not empty, no commas or quotes)".into(),
                ));
            }
            if models.iter().any(|m: &ModelSpec| m.name == name) {
                return Err(check.error(&at(Key::Name), format!("name '{name}' is used twice")));
            }
            models.push(ModelSpec {
                name,
                label: model.label.trim().to_string(),
                path: resolve(check.source.path, &model.path),
                options: LoadOptions {
                    layout,
                    key: model.key,
                    transpose: model.transpose.unwrap_or(false),
                    ..LoadOptions::default()
                },
            });
        }
        Ok(CheckpointSpec { config, models })
    }
}

// kind = "training"
// ---------------------------------------------------------------------------------------------

/// One training run of a `training` experiment: its checkpoints, in any order (they are sorted
/// by step, see [`crate::analysis::series`]).
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// A short identifier (CSV file names, legends, tables).
    pub name: String,
    /// A descriptive label (prose).
    pub label: String,
    /// The checkpoint files (at least two).
    pub checkpoints: Vec<InputPath>,
    /// How to load them.
    pub options: LoadOptions,
}

/// `kind = "training"`.
#[derive(Clone, Debug)]
pub struct TrainingSpec {
    /// Each checkpoint's audit and the tolerance of "unmoved".
    pub config: SeriesConfig,
    /// The runs, in order.
    pub runs: Vec<RunSpec>,
    /// A file documenting how the checkpoints were made (cited and hashed).
    pub provenance: Option<InputPath>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingFile {
    #[allow(dead_code)]
    kind: IgnoredAny,
    title: String,
    max_gain: Option<f64>,
    token_aggregation: Option<TokenAggregation>,
    still_tolerance: Option<f64>,
    provenance: Option<String>,
    run: Vec<RunFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    name: String,
    label: String,
    checkpoints: Vec<String>,
    layout: Option<String>,
    key: Option<String>,
    transpose: Option<bool>,
}

impl TrainingFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<TrainingSpec, Error> {
        let audit = AuditConfig::new(
            self.max_gain.unwrap_or(AuditConfig::default().max_gain()),
            None,
            self.token_aggregation.unwrap_or_default(),
        )
        .map_err(|e| check.gain_error(e, &flat))?;
        let config = SeriesConfig::new(
            audit,
            self.still_tolerance
                .unwrap_or(SeriesConfig::DEFAULT_STILL_TOLERANCE),
        )
        .map_err(|e| check.config(&flat(Key::StillTolerance), Key::StillTolerance, e))?;
        if self.run.is_empty() {
            return Err(check.error(&flat(Key::Run), "run must list at least one [[run]]".into()));
        }
        let mut runs: Vec<RunSpec> = Vec::new();
        for (k, run) in self.run.into_iter().enumerate() {
            let at = |key: Key| [Seg::Key(Key::Run), Seg::Index(k), Seg::Key(key)];
            let layout = match run.layout.as_deref() {
                None | Some("auto") => None,
                Some(name) => Some(
                    name.parse::<Layout>()
                        .map_err(|e| check.error(&at(Key::Layout), format!("{e}, or auto")))?,
                ),
            };
            let name = run.name.trim().to_string();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            {
                return Err(check.error(
                    &at(Key::Name),
                    "name must be a short identifier (letters, digits, - and _; it names a CSV file)"
                        .into(),
                ));
            }
            if runs.iter().any(|r| r.name == name) {
                return Err(check.error(&at(Key::Name), format!("name '{name}' is used twice")));
            }
            if run.label.trim().is_empty() {
                return Err(check.error(&at(Key::Label), "label must not be empty".into()));
            }
            if run.checkpoints.len() < 2 {
                return Err(check.error(
                    &at(Key::Checkpoints),
                    format!(
                        "checkpoints must list at least 2 files (a training run), got {}",
                        run.checkpoints.len()
                    ),
                ));
            }
            runs.push(RunSpec {
                name,
                label: run.label.trim().to_string(),
                checkpoints: run
                    .checkpoints
                    .iter()
                    .map(|written| resolve(check.source.path, written))
                    .collect(),
                options: LoadOptions {
                    layout,
                    key: run.key,
                    transpose: run.transpose.unwrap_or(false),
                    ..LoadOptions::default()
                },
            });
        }
        Ok(TrainingSpec {
            config,
            runs,
            provenance: self
                .provenance
                .as_deref()
                .map(|written| resolve(check.source.path, written)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Experiment, String> {
        Experiment::parse(Path::new("x.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_is_named_by_its_own_spelling() {
        for kind in ExperimentKind::ALL {
            assert_eq!(ExperimentKind::from_name(kind.name()), Some(kind));
            let quoted = format!("\"{}\"", kind.name());
            let parsed: ExperimentKind = serde_json::from_str(&quoted).unwrap();
            assert_eq!(parsed, kind, "serde and name() agree");
        }
        assert_eq!(ExperimentKind::from_name("gainz"), None);
    }

    #[test]
    fn every_key_is_spelled_once() {
        for (k, key) in Key::ALL.iter().enumerate() {
            assert!(
                Key::ALL[..k].iter().all(|other| other.name() != key.name()),
                "{} twice",
                key.name()
            );
        }
        assert_eq!(Key::of_parameter("logit-std"), Some(Key::LogitStd));
        assert_eq!(Key::of_parameter("max-gain"), Some(Key::MaxGain));
        assert_eq!(Key::of_parameter("max-distance"), None);
    }

    /// An error of a parameter that no key sets must not point at some other key's line (it
    /// used to name `kind`'s).
    #[test]
    fn a_parameter_no_key_sets_names_no_line() {
        let text = "kind = \"checkpoint-audit\"\ntitle = \"t\"\n";
        let source = Source {
            path: Path::new("x.toml"),
            text,
        };
        let document = DeTable::parse(text).unwrap();
        let check = Checker {
            source: &source,
            document: document.get_ref(),
        };
        let message = check
            .gain_error(
                ConfigError::NotPositive {
                    name: "max-distance",
                    value: 0.0,
                },
                &flat,
            )
            .to_string();
        assert_eq!(
            message,
            "x.toml: max-distance must be a positive finite number, got 0"
        );
        let conflict = check
            .gain_error(ConfigError::Conflict("a and b conflict".into()), &flat)
            .to_string();
        assert_eq!(conflict, "x.toml: a and b conflict");
    }

    /// Every parameter the library's constructors reject is reported at the line of the key
    /// that sets it, under the key's name.
    #[test]
    fn every_rejected_parameter_names_its_own_line() {
        let gain = "kind = \"gain\"\ntitle = \"t\"\nlayers = 80\nstreams = 4\ntokens = 1\nseeds = 2\nsinkhorn_iters = 20\nidentity_weight = 1.0\nlogit_std = 0.3\nshared_std = 0.0\n";
        let sweep = "kind = \"sinkhorn-sweep\"\ntitle = \"t\"\nlayers = 4\n[grid]\nsinkhorn_iters = [1, 2]\nlogit_scale = [0.5]\nidentity_weight = [1.0]\n";
        let depth =
            "kind = \"depth-sweep\"\ntitle = \"t\"\n[grid]\nlayers = [2, 4]\nstreams = [2, 3]\n";
        let audit = "kind = \"checkpoint-audit\"\ntitle = \"t\"\nmax_gain = 2.0\n[[model]]\nname = \"a\"\nlabel = \"A\"\npath = \"a.safetensors\"\n";
        let cases = [
            (
                gain,
                "layers = 80",
                "layers = 0",
                "line 3: layers must be at least 1",
            ),
            (
                gain,
                "streams = 4",
                "streams = 1",
                "line 4: streams must be at least 2",
            ),
            (
                gain,
                "tokens = 1",
                "tokens = 0",
                "line 5: tokens must be at least 1",
            ),
            (
                gain,
                "seeds = 2",
                "seeds = 0",
                "line 6: seeds must be at least 1",
            ),
            (
                gain,
                "sinkhorn_iters = 20",
                "sinkhorn_iters = 0",
                "line 7: sinkhorn_iters must be at least 1",
            ),
            (
                gain,
                "identity_weight = 1.0",
                "identity_weight = nan",
                "line 8: identity_weight must be a finite number",
            ),
            (
                gain,
                "logit_std = 0.3",
                "logit_std = -1.0",
                "line 9: logit_std must be a finite number ≥ 0",
            ),
            (
                gain,
                "shared_std = 0.0",
                "shared_std = inf",
                "line 10: shared_std must be a finite number ≥ 0",
            ),
            (
                gain,
                "tokens = 1",
                "tokens = 100000",
                "line 3: layers × tokens × streams² (values per seed) must be at most",
            ),
            (
                sweep,
                "logit_scale = [0.5]",
                "logit_scale = [-0.5]",
                "line 6: logit_scale must be a finite number ≥ 0",
            ),
            (
                sweep,
                "sinkhorn_iters = [1, 2]",
                "sinkhorn_iters = [0, 2]",
                "line 5: sinkhorn_iters must be at least 1",
            ),
            (
                sweep,
                "identity_weight = [1.0]",
                "identity_weight = [nan]",
                "line 7: identity_weight must be a finite number",
            ),
            (
                sweep,
                "layers = 4",
                "layers = 0",
                "line 3: layers must be at least 1",
            ),
            (
                depth,
                "streams = [2, 3]",
                "streams = [1, 3]",
                "line 5: streams must be at least 2",
            ),
            (
                audit,
                "max_gain = 2.0",
                "max_gain = 0.0",
                "line 3: max_gain must be a positive finite number",
            ),
        ];
        for (text, from, to, expected) in cases {
            assert!(text.contains(from), "{from}");
            let message = parse(&text.replace(from, to)).expect_err(expected);
            assert!(
                message.starts_with(&format!("x.toml: {expected}")),
                "expected '{expected}' in: {message}"
            );
        }
    }

    #[test]
    fn shared_layers_need_their_per_layer_fraction() {
        let text = "kind = \"sinkhorn-sweep\"\ntitle = \"t\"\n[grid]\nsinkhorn_iters = [1]\nlogit_scale = [0.5]\ncorrelation = [\"independent\", \"shared\"]\n";
        let message = parse(text).unwrap_err();
        assert!(
            message.starts_with("x.toml: line 6: shared_per_layer_fraction is required"),
            "{message}"
        );
        let fixed = text.replace(
            "title = \"t\"\n",
            "title = \"t\"\nshared_per_layer_fraction = 0.1\n",
        );
        let experiment = parse(&fixed).unwrap();
        let Spec::SinkhornSweep(spec) = experiment.spec() else {
            panic!("parsed as {}", experiment.kind());
        };
        assert_eq!(spec.shared_per_layer_fraction, 0.1);
        assert_eq!(
            spec.identity_weights,
            [1.0],
            "gain's default identity weight"
        );
    }
}
