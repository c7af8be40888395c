//! Experiment files: the TOML schema, parsed strictly and validated by the library's own
//! constructors ([`GainParams::validate`], [`LogitGenerator::new`], [`AuditConfig::new`]), so a
//! file accepts exactly what the command-line flags accept.
//!
//! Every file names its `kind` and a `title`; the other keys depend on the kind (see
//! `experiments/*.toml` for one file of each). Keys are the `gain` flags with `_` for `-`
//! (`logit_std`, `sinkhorn_iters`, …); a grid lists values under `[grid]`. Unknown keys, wrong
//! types and out-of-range values are errors that name the file, the line and the key:
//!
//! ```text
//! experiments/x.toml: line 3: unknown field 'layerz', expected one of 'kind', 'title', …
//! experiments/x.toml: line 5: layers must be at least 1, got 0
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use crate::ConfigError;
use crate::analysis::series::SeriesConfig;
use crate::analysis::{AuditConfig, GainConfig, GainParams, TokenAggregation};
use crate::error::Error;
use crate::generate::{LogitGenerator, SinkhornOrder, SinkhornParams};
use crate::load::{Layout, LoadOptions};

/// The kinds of experiment, as written in `kind = "…"`.
pub const KINDS: [&str; 6] = [
    "gain",
    "sinkhorn-sweep",
    "depth-sweep",
    "heatmaps",
    "checkpoint-audit",
    "training",
];

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

/// `kind = "gain"`.
#[derive(Clone, Debug)]
pub struct GainSpec {
    /// The sweep, exactly as `mhc-analyze gain` would run it.
    pub config: GainConfig,
}

/// How the layers of a draw are correlated in the Sinkhorn sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
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
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        Self::parse(path, &text)
    }

    /// Validates the TOML `text` of the experiment file at `path` (the path names the file in
    /// messages, gives the report its name, and anchors relative paths inside the file).
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let source = Source { path, text };
        let document = DeTable::parse(text).map_err(|e| source.toml_error(&e))?;
        let kind = match find(document.get_ref(), &[Seg::Key("kind")]) {
            None => return Err(source.error(None, missing_kind())),
            Some(value) => match value.get_ref().as_str() {
                Some(kind) if KINDS.contains(&kind) => kind.to_string(),
                Some(other) => {
                    return Err(source.error(
                        Some(value.span()),
                        format!("unknown kind '{other}', expected one of {}", quoted(&KINDS)),
                    ));
                }
                None => {
                    return Err(source.error(
                        Some(value.span()),
                        format!(
                            "kind must be a string, one of {}, got {}",
                            quoted(&KINDS),
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
        let (title, spec) = match kind.as_str() {
            "gain" => {
                let file: GainFile = source.deserialize()?;
                (file.title.clone(), Spec::Gain(file.validate(&check)?))
            }
            "sinkhorn-sweep" => {
                let file: SinkhornFile = source.deserialize()?;
                (
                    file.title.clone(),
                    Spec::SinkhornSweep(file.validate(&check)?),
                )
            }
            "depth-sweep" => {
                let file: DepthFile = source.deserialize()?;
                (file.title.clone(), Spec::DepthSweep(file.validate(&check)?))
            }
            "heatmaps" => {
                let file: HeatmapFile = source.deserialize()?;
                (file.title.clone(), Spec::Heatmaps(file.validate(&check)?))
            }
            "training" => {
                let file: TrainingFile = source.deserialize()?;
                (file.title.clone(), Spec::Training(file.validate(&check)?))
            }
            _ => {
                let file: CheckpointFile = source.deserialize()?;
                (
                    file.title.clone(),
                    Spec::CheckpointAudit(file.validate(&check)?),
                )
            }
        };
        if title.trim().is_empty() {
            return Err(check.error(&[Seg::Key("title")], "title must not be empty".into()));
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
    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self.spec {
            Spec::Gain(_) => KINDS[0],
            Spec::SinkhornSweep(_) => KINDS[1],
            Spec::DepthSweep(_) => KINDS[2],
            Spec::Heatmaps(_) => KINDS[3],
            Spec::CheckpointAudit(_) => KINDS[4],
            Spec::Training(_) => KINDS[5],
        }
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

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_kind() -> String {
    format!("missing field 'kind', expected one of {}", quoted(&KINDS))
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
        Error::Format {
            path: self.path.to_path_buf(),
            message: match span {
                Some(span) => format!("line {}: {message}", self.line(span.start)),
                None => message,
            },
        }
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

/// A step in a key path: a table key or an array index.
#[derive(Clone, Copy, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn find<'d, 'i>(
    table: &'d DeTable<'i>,
    path: &[Seg<'_>],
) -> Option<&'d toml::Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(key) = first else {
        return None;
    };
    let value = table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == *key)
        .map(|(_, v)| v)?;
    descend(value, rest)
}

fn descend<'d, 'i>(
    value: &'d toml::Spanned<DeValue<'i>>,
    path: &[Seg<'_>],
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

/// Validation errors pointing at the key that holds the bad value.
struct Checker<'a, 'i> {
    source: &'a Source<'a>,
    document: &'a DeTable<'i>,
}

impl Checker<'_, '_> {
    /// The span of the deepest part of `path` found in the file (the key's value, or an
    /// enclosing table when the key was left out and a default applies).
    fn span(&self, path: &[Seg<'_>]) -> Option<std::ops::Range<usize>> {
        (1..=path.len())
            .rev()
            .find_map(|k| find(self.document, &path[..k]).map(|v| v.span()))
    }

    fn error(&self, path: &[Seg<'_>], message: String) -> Error {
        self.source.error(self.span(path), message)
    }

    /// A [`ConfigError`] re-worded with the file's key name, at that key's line.
    fn config(&self, path: &[Seg<'_>], key: &str, err: ConfigError) -> Error {
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

    /// Maps an error of [`GainParams::validate`] or [`LogitGenerator::new`] to the file's key.
    /// `keys` translates the library's parameter names (`layers`, `logit-std`, …) to paths
    /// in this file.
    fn gain_error(&self, err: ConfigError, keys: &dyn Fn(&str) -> Vec<Seg<'static>>) -> Error {
        let name = match &err {
            ConfigError::TooSmall { name, .. }
            | ConfigError::TooLarge { name, .. }
            | ConfigError::BadReal { name, .. }
            | ConfigError::NotPositive { name, .. } => *name,
            ConfigError::Conflict(_) => "",
        };
        if name.contains('×') {
            // The per-draw size limit is a product of parameters: point at the depth.
            return self.error(&keys("layers"), err.to_string());
        }
        let path = keys(name);
        let key = path
            .iter()
            .rev()
            .find_map(|s| match s {
                Seg::Key(k) => Some(*k),
                Seg::Index(_) => None,
            })
            .unwrap_or(name);
        self.config(&path, key, err)
    }
}

/// Keys of the flat (non-grid) generator and size parameters: the library's name with `_`.
fn flat_key(name: &str) -> Vec<Seg<'static>> {
    vec![Seg::Key(match name {
        "layers" => "layers",
        "streams" => "streams",
        "tokens" => "tokens",
        "seeds" => "seeds",
        "sinkhorn-iters" => "sinkhorn_iters",
        "identity-weight" => "identity_weight",
        "logit-std" => "logit_std",
        "shared-std" => "shared_std",
        "max-gain" => "max_gain",
        _ => "kind",
    })]
}

fn generator(
    check: &Checker<'_, '_>,
    identity_weight: Option<f64>,
    logit_std: Option<f64>,
    shared_std: Option<f64>,
    keys: &dyn Fn(&str) -> Vec<Seg<'static>>,
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
    path: &[Seg<'_>],
    key: &str,
    values: &[T],
) -> Result<(), Error> {
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
    kind: String,
    title: String,
    layers: usize,
    streams: usize,
    seeds: u64,
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
            &flat_key,
        )?;
        let config = GainParams {
            layers: self.layers,
            streams: self.streams,
            tokens: self.tokens.unwrap_or(1),
            seeds: self.seeds,
            seed: self.seed.unwrap_or(0),
            generator,
            sinkhorn: sinkhorn(self.sinkhorn_iters, self.sinkhorn_order),
            token_aggregation: self.token_aggregation.unwrap_or_default(),
        }
        .validate()
        .map_err(|e| check.gain_error(e, &flat_key))?;
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
    kind: String,
    title: String,
    layers: usize,
    streams: usize,
    seeds: u64,
    seed: Option<u64>,
    sinkhorn_order: Option<SinkhornOrder>,
    shared_per_layer_fraction: f64,
    grid: SinkhornGrid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkhornGrid {
    sinkhorn_iters: Vec<u32>,
    identity_weight: Vec<f64>,
    logit_scale: Vec<f64>,
    correlation: Vec<Correlation>,
}

impl SinkhornFile {
    fn validate(self, check: &Checker<'_, '_>) -> Result<SinkhornSpec, Error> {
        let grid = |key: &'static str| vec![Seg::Key("grid"), Seg::Key(key)];
        let t_path = grid("sinkhorn_iters");
        increasing(check, &t_path, "sinkhorn_iters", &self.grid.sinkhorn_iters)?;
        let s_path = grid("logit_scale");
        increasing(check, &s_path, "logit_scale", &self.grid.logit_scale)?;
        let w_path = grid("identity_weight");
        increasing(
            check,
            &w_path,
            "identity_weight",
            &self.grid.identity_weight,
        )?;
        let c_path = grid("correlation");
        if self.grid.correlation.is_empty() {
            return Err(check.error(&c_path, "correlation must list at least one value".into()));
        }
        for (k, c) in self.grid.correlation.iter().enumerate() {
            if self.grid.correlation[..k].contains(c) {
                return Err(check.error(&c_path, format!("correlation lists '{}' twice", c.name())));
            }
        }
        let fraction = self.shared_per_layer_fraction;
        if !(fraction.is_finite() && fraction >= 0.0) {
            return Err(check.config(
                &[Seg::Key("shared_per_layer_fraction")],
                "shared_per_layer_fraction",
                ConfigError::BadReal {
                    name: "shared_per_layer_fraction",
                    non_negative: true,
                    value: fraction,
                },
            ));
        }
        let mut points = Vec::new();
        for &identity_weight in &self.grid.identity_weight {
            for &correlation in &self.grid.correlation {
                for &scale in &self.grid.logit_scale {
                    let (logit_std, shared_std) = match correlation {
                        Correlation::Independent => (scale, 0.0),
                        Correlation::Shared => (fraction * scale, scale),
                    };
                    let keys = |name: &str| match name {
                        "logit-std" | "shared-std" => grid("logit_scale"),
                        "identity-weight" => grid("identity_weight"),
                        "sinkhorn-iters" => grid("sinkhorn_iters"),
                        other => flat_key(other),
                    };
                    let generator = generator(
                        check,
                        Some(identity_weight),
                        Some(logit_std),
                        Some(shared_std),
                        &keys,
                    )?;
                    for &iterations in &self.grid.sinkhorn_iters {
                        let config = GainParams {
                            layers: self.layers,
                            streams: self.streams,
                            tokens: 1,
                            seeds: self.seeds,
                            seed: self.seed.unwrap_or(0),
                            generator: generator.clone(),
                            sinkhorn: sinkhorn(Some(iterations), self.sinkhorn_order),
                            token_aggregation: TokenAggregation::MeanOfMetrics,
                        }
                        .validate()
                        .map_err(|e| check.gain_error(e, &keys))?;
                        points.push(SinkhornPoint {
                            iterations,
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
            iterations: self.grid.sinkhorn_iters,
            identity_weights: self.grid.identity_weight,
            scales: self.grid.logit_scale,
            correlations: self.grid.correlation,
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
    kind: String,
    title: String,
    seeds: u64,
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
        let keys = |name: &str| match name {
            "layers" => vec![Seg::Key("grid"), Seg::Key("layers")],
            "streams" => vec![Seg::Key("grid"), Seg::Key("streams")],
            other => flat_key(other),
        };
        increasing(check, &keys("layers"), "layers", &self.grid.layers)?;
        increasing(check, &keys("streams"), "streams", &self.grid.streams)?;
        if self.grid.layers.len() < 2 {
            return Err(check.error(
                &keys("layers"),
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
        let mut configs = Vec::new();
        for &streams in &self.grid.streams {
            // Every depth goes through the constructor, the largest one is what runs.
            for &layers in &self.grid.layers {
                let config = GainParams {
                    layers,
                    streams,
                    tokens: 1,
                    seeds: self.seeds,
                    seed: self.seed.unwrap_or(0),
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
    kind: String,
    title: String,
    layers: usize,
    streams: usize,
    seed: Option<u64>,
    identity_weight: Option<f64>,
    logit_std: Option<f64>,
    shared_std: Option<f64>,
    sinkhorn_iters: Option<u32>,
    sinkhorn_order: Option<SinkhornOrder>,
    single: Vec<usize>,
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
            &flat_key,
        )?;
        let config = GainParams {
            layers: self.layers,
            streams: self.streams,
            tokens: 1,
            seeds: 1,
            seed: self.seed.unwrap_or(0),
            generator,
            sinkhorn: sinkhorn(self.sinkhorn_iters, self.sinkhorn_order),
            token_aggregation: TokenAggregation::MeanOfMetrics,
        }
        .validate()
        .map_err(|e| check.gain_error(e, &flat_key))?;
        if self.single.is_empty() && self.products.is_empty() {
            return Err(check.error(
                &[Seg::Key("single")],
                "single and products are both empty: nothing to show".into(),
            ));
        }
        for (k, &layer) in self.single.iter().enumerate() {
            if !(1..=self.layers).contains(&layer) {
                return Err(check.error(
                    &[Seg::Key("single"), Seg::Index(k)],
                    format!(
                        "single lists layer {layer}, expected 1 to {} (layers)",
                        self.layers
                    ),
                ));
            }
        }
        for (k, &[a, b]) in self.products.iter().enumerate() {
            if !(1 <= a && a <= b && b <= self.layers && (a == 1 || b == self.layers)) {
                return Err(check.error(
                    &[Seg::Key("products"), Seg::Index(k)],
                    format!(
                        "products lists [{a}, {b}], expected a prefix [1, b] or a suffix [a, {}] (the product H_b⋯H_a, 1 ≤ a ≤ b ≤ layers)",
                        self.layers
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
    kind: String,
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
        .map_err(|e| check.gain_error(e, &flat_key))?;
        if self.model.is_empty() {
            return Err(check.error(
                &[Seg::Key("model")],
                "model must list at least one [[model]]".into(),
            ));
        }
        let mut models = Vec::new();
        for (k, model) in self.model.into_iter().enumerate() {
            let at = |key: &'static str| [Seg::Key("model"), Seg::Index(k), Seg::Key(key)];
            let layout = match model.layout.as_deref() {
                None | Some("auto") => None,
                Some(name) => Some(
                    name.parse::<Layout>()
                        .map_err(|e| check.error(&at("layout"), format!("{e}, or auto")))?,
                ),
            };
            if model.label.trim().is_empty() {
                return Err(check.error(&at("label"), "label must not be empty".into()));
            }
            let name = model.name.trim().to_string();
            if name.is_empty() || name.contains([',', '"', '\n']) {
                return Err(check.error(
                    &at("name"),
                    "name must be a short identifier (not empty, no commas or quotes)".into(),
                ));
            }
            if models.iter().any(|m: &ModelSpec| m.name == name) {
                return Err(check.error(&at("name"), format!("name '{name}' is used twice")));
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

// ---------------------------------------------------------------------------------------------
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
    /// How the checkpoints were made, in the experimenter's words (shown verbatim).
    pub about: Option<String>,
    /// A file documenting how the checkpoints were made (cited and hashed).
    pub provenance: Option<InputPath>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingFile {
    #[allow(dead_code)]
    kind: String,
    title: String,
    max_gain: Option<f64>,
    token_aggregation: Option<TokenAggregation>,
    still_tolerance: Option<f64>,
    about: Option<String>,
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
        .map_err(|e| check.gain_error(e, &flat_key))?;
        let config = SeriesConfig::new(
            audit,
            self.still_tolerance
                .unwrap_or(SeriesConfig::DEFAULT_STILL_TOLERANCE),
        )
        .map_err(|e| check.config(&[Seg::Key("still_tolerance")], "still_tolerance", e))?;
        if self.run.is_empty() {
            return Err(check.error(
                &[Seg::Key("run")],
                "run must list at least one [[run]]".into(),
            ));
        }
        let mut runs: Vec<RunSpec> = Vec::new();
        for (k, run) in self.run.into_iter().enumerate() {
            let at = |key: &'static str| [Seg::Key("run"), Seg::Index(k), Seg::Key(key)];
            let layout = match run.layout.as_deref() {
                None | Some("auto") => None,
                Some(name) => Some(
                    name.parse::<Layout>()
                        .map_err(|e| check.error(&at("layout"), format!("{e}, or auto")))?,
                ),
            };
            let name = run.name.trim().to_string();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            {
                return Err(check.error(
                    &at("name"),
                    "name must be a short identifier (letters, digits, - and _; it names a CSV file)"
                        .into(),
                ));
            }
            if runs.iter().any(|r| r.name == name) {
                return Err(check.error(&at("name"), format!("name '{name}' is used twice")));
            }
            if run.label.trim().is_empty() {
                return Err(check.error(&at("label"), "label must not be empty".into()));
            }
            if run.checkpoints.len() < 2 {
                return Err(check.error(
                    &at("checkpoints"),
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
            about: self
                .about
                .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|text| !text.is_empty()),
            provenance: self
                .provenance
                .as_deref()
                .map(|written| resolve(check.source.path, written)),
        })
    }
}
