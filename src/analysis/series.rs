//! A training run: several checkpoints of one model audited as a series.
//!
//! Each checkpoint is audited exactly as `mhc-analyze audit FILE` would ([`audit`] of
//! [`open_audit_input`]); its input is released before the next one is opened, so a series of
//! multi-GB checkpoints runs in the memory of one. What the series adds:
//!
//! - **Steps.** A checkpoint's training step is the first of the metadata keys
//!   `step`, `global_step`, `iteration` that holds a non-negative integer (safetensors `__metadata__`, GGUF
//!   key–value pairs); else the last integer in its file name (extension removed:
//!   `hc_step400.safetensors` → 400); else, when every checkpoint of the series lies in a
//!   directory of its own, the last integer in that directory's name
//!   (`checkpoint-500/model.safetensors` → 500). When some file has none of these, every file
//!   takes its position in the order given instead (0, 1, …), since positions and real steps
//!   cannot be sorted together. Checkpoints are sorted by step; two with the same step are
//!   refused. [`StepOrigin`] says what was used.
//! - **One model.** Every checkpoint must have the first one's layout, number of streams n and
//!   number of layers L; the first that does not is refused with one line naming it.
//! - **Change from the first checkpoint.** For layer l and checkpoint k,
//!   `change_from_first = max_ij |H̄_l(k)_ij − H̄_l(first)_ij|`, where H̄_l is the analysed
//!   H_res: the token-mean matrix (1/T)·Σ_t H_l(t) (for a parameter checkpoint, the static,
//!   input-independent H_res). Layer l is **unmoved** when this stays within
//!   [`SeriesConfig::still_tolerance`] at every checkpoint.
//! - **Distance from initialisation.** For parameter layouts whose package states its
//!   initialisation ([`super::init`]): `init_distance = ‖H̄_l − H_l(init)‖_F`; `None`
//!   ("unknown") for DeepSeek-V4 and for stacks.
//! - **Verdict.** The worst checkpoint verdict: unstable when any checkpoint is.
//!
//! Orientation throughout: rows = output streams, `x_{l+1} = H_l x_l`, layers numbered from 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::audit::{AuditConfig, AuditResult, Verdict, audit};
use super::init::audited_init_distance;
use super::results::{Audited, Layer, Stat};
use crate::compose::Composite;
use crate::error::{ConfigError, Error};
use crate::load::input::{Provenance, open_audit_input};
use crate::load::{Layout, LoadError, LoadOptions, natural_key, open};
use crate::metrics::Metric;

/// Metadata keys holding a checkpoint's training step, in order of precedence.
pub(crate) const STEP_METADATA_KEYS: [&str; 3] = ["step", "global_step", "iteration"];

/// File-name endings of the checkpoint files a directory contributes to a series.
pub(crate) const CHECKPOINT_EXTENSIONS: [&str; 9] = [
    ".safetensors.index.json",
    ".safetensors",
    ".npy",
    ".npz",
    ".pt",
    ".pth",
    ".bin",
    ".gguf",
    ".ckpt",
];

/// Where a checkpoint's step came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOrigin {
    /// The metadata key `step`.
    MetadataStep,
    /// The metadata key `global_step`.
    MetadataGlobalStep,
    /// The metadata key `iteration`.
    MetadataIteration,
    /// The last integer in the file name (extension removed).
    FileName,
    /// The last integer in the name of the file's directory (one checkpoint per directory).
    DirectoryName,
    /// The position in the order given (0-based): some file had no step.
    Position,
}

impl StepOrigin {
    /// In words, for tables: `metadata 'step'`, `file name`, …
    pub fn describe(self) -> &'static str {
        match self {
            Self::MetadataStep => "metadata 'step'",
            Self::MetadataGlobalStep => "metadata 'global_step'",
            Self::MetadataIteration => "metadata 'iteration'",
            Self::FileName => "the last integer in the file name",
            Self::DirectoryName => "the last integer in the directory name",
            Self::Position => "the position in the order given",
        }
    }

    fn of_metadata_key(key: &str) -> Self {
        match key {
            "global_step" => Self::MetadataGlobalStep,
            "iteration" => Self::MetadataIteration,
            _ => Self::MetadataStep,
        }
    }
}

/// A checkpoint of a series and its step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointStep {
    /// The file, as given (or as listed from a directory).
    pub path: PathBuf,
    /// The training step.
    pub step: u64,
    /// Where the step came from.
    pub origin: StepOrigin,
}

/// Why a series could not be audited. `Display` is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// A checkpoint has another layout, stream count or depth than the series' first.
    #[error(
        "{}: {quantity} {value} differs from {first_value} of {} (the first checkpoint): a series holds checkpoints of one model",
        path.display(),
        first.display()
    )]
    Mismatch {
        /// The odd file.
        path: PathBuf,
        /// `layout`, `streams` or `layers`.
        quantity: &'static str,
        /// Its value in the odd file.
        value: String,
        /// The first checkpoint (in step order).
        first: PathBuf,
        /// Its value there.
        first_value: String,
    },
    /// Two checkpoints have the same step.
    #[error(
        "{}: step {step} ({}) is also the step of {}: a series holds one checkpoint per step",
        path.display(),
        origin.describe(),
        other.display()
    )]
    RepeatedStep {
        /// The second file with that step.
        path: PathBuf,
        /// The step.
        step: u64,
        /// Where it came from.
        origin: StepOrigin,
        /// The first file with that step.
        other: PathBuf,
    },
    /// Too few checkpoints to compare.
    #[error("{}: {found} checkpoint{} found, a series needs at least 2{hint}", path.display(), if *found == 1 { "" } else { "s" })]
    TooFew {
        /// The directory (or first file) given.
        path: PathBuf,
        /// How many checkpoints were found.
        found: usize,
        /// What to do instead.
        hint: &'static str,
    },
    /// Loading or auditing one checkpoint failed (the message names the file).
    #[error(transparent)]
    Checkpoint(#[from] Error),
}

impl From<LoadError> for SeriesError {
    fn from(e: LoadError) -> Self {
        Self::Checkpoint(Error::Load(e))
    }
}

/// How a series is audited: each checkpoint's audit, and the tolerance of "unmoved".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesConfig {
    audit: AuditConfig,
    still_tolerance: f64,
}

impl SeriesConfig {
    /// The default tolerance of "unmoved": 1e-4 in every entry of H_res.
    pub const DEFAULT_STILL_TOLERANCE: f64 = 1e-4;

    /// Each checkpoint audited with `audit`; a layer is unmoved when no entry of its analysed
    /// H_res differs from the first checkpoint's by more than `still_tolerance` (finite, ≥ 0).
    pub fn new(audit: AuditConfig, still_tolerance: f64) -> Result<Self, ConfigError> {
        if !(still_tolerance.is_finite() && still_tolerance >= 0.0) {
            return Err(ConfigError::BadReal {
                name: "still-tolerance",
                non_negative: true,
                value: still_tolerance,
            });
        }
        Ok(Self {
            audit,
            still_tolerance,
        })
    }

    /// The audit of each checkpoint.
    pub fn audit(&self) -> &AuditConfig {
        &self.audit
    }

    /// The largest entry change that still counts as "unmoved".
    pub fn still_tolerance(&self) -> f64 {
        self.still_tolerance
    }
}

/// One audited checkpoint of a series.
#[derive(Clone, Debug)]
pub struct CheckpointAudit {
    /// The file and its step.
    pub step: CheckpointStep,
    /// The file's string metadata (safetensors `__metadata__`, GGUF key–value pairs; empty for
    /// other formats).
    pub metadata: BTreeMap<String, String>,
    /// Where its matrices came from.
    pub provenance: Provenance,
    /// Its audit.
    pub result: AuditResult,
    /// Per layer (index 0 = layer 1), `‖H̄_l − H_l(init)‖_F`; `None` where the layout's
    /// initialisation is unknown (DeepSeek-V4) or the file holds finished matrices.
    pub init_distance: Option<Vec<f64>>,
    /// Per layer, `max_ij |H̄_l − H̄_l(first)|` (0 for the first checkpoint).
    pub change_from_first: Vec<f64>,
}

impl CheckpointAudit {
    /// The file name (figures and tables name checkpoints by it, not by the machine's path).
    pub fn name(&self) -> String {
        file_name(&self.step.path)
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.result.results().layers()
    }

    /// A statistic over tokens of a whole-model metric (prefix(L) = H_L⋯H_1).
    pub fn whole_model(&self, metric: Metric, stat: Stat) -> f64 {
        self.result
            .results()
            .whole_model(Audited::Stack, metric)
            .get(stat)
    }

    /// The mean over tokens of `metric` of the single layer H_l.
    pub fn single_layer(&self, layer: Layer, metric: Metric) -> f64 {
        self.result
            .results()
            .get(Audited::Stack, Composite::Single, layer, metric, Stat::Mean)
    }

    /// `(1/L)·Σ_l` [`Self::single_layer`]: the layer average of a single-layer metric.
    pub fn mean_over_layers(&self, metric: Metric) -> f64 {
        let layers = self.layers();
        Layer::all(layers)
            .map(|l| self.single_layer(l, metric))
            .sum::<f64>()
            / layers as f64
    }
}

/// A series of audited checkpoints, sorted by step.
#[derive(Clone, Debug)]
pub struct SeriesResult {
    /// The configuration used.
    pub config: SeriesConfig,
    /// The checkpoints, sorted by step.
    pub checkpoints: Vec<CheckpointAudit>,
    /// Layers whose analysed H_res never moved more than the tolerance from the first
    /// checkpoint's, in any entry.
    pub unmoved_layers: Vec<Layer>,
    /// The worst verdict of the checkpoints.
    pub verdict: Verdict,
}

impl SeriesResult {
    /// The first checkpoint (the reference of every change).
    pub fn first(&self) -> &CheckpointAudit {
        &self.checkpoints[0]
    }

    /// The layout of every checkpoint.
    pub fn layout(&self) -> Layout {
        self.first().provenance.layout
    }

    /// Number of layers L of every checkpoint.
    pub fn layers(&self) -> usize {
        self.first().layers()
    }

    /// Number of streams n of every checkpoint.
    pub fn streams(&self) -> usize {
        self.first().result.tokens.streams
    }

    /// Per layer, the largest [`CheckpointAudit::change_from_first`] over the series.
    pub fn largest_change(&self) -> Vec<f64> {
        largest_change(
            &self
                .checkpoints
                .iter()
                .map(|c| c.change_from_first.clone())
                .collect::<Vec<_>>(),
        )
    }

    /// How many checkpoints took their step from each origin, in order of first appearance.
    pub fn step_origins(&self) -> Vec<(StepOrigin, usize)> {
        let mut counts: Vec<(StepOrigin, usize)> = Vec::new();
        for c in &self.checkpoints {
            match counts.iter_mut().find(|(o, _)| *o == c.step.origin) {
                Some((_, count)) => *count += 1,
                None => counts.push((c.step.origin, 1)),
            }
        }
        counts
    }
}

/// The file name of `path`, or the whole path when it has none.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `name` without a checkpoint extension ([`CHECKPOINT_EXTENSIONS`]).
fn strip_extension(name: &str) -> &str {
    CHECKPOINT_EXTENSIONS
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name)
}

/// The last maximal run of ASCII digits in `text`, as an integer (`None` if there is none or it
/// exceeds u64).
pub fn last_integer(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let start = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |k| k + 1);
    text[start..end].parse().ok()
}

/// The step a file records itself: the first [`STEP_METADATA_KEYS`] entry of `metadata` that
/// is a non-negative integer; else the last integer in the file name (extension removed).
/// `None` when there is none ([`order_by_step`] then looks at directory names).
pub(crate) fn recorded_step(
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> Option<(u64, StepOrigin)> {
    for key in STEP_METADATA_KEYS {
        if let Some(step) = metadata.get(key).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some((step, StepOrigin::of_metadata_key(key)));
        }
    }
    let name = path.file_name()?.to_string_lossy();
    last_integer(strip_extension(&name)).map(|step| (step, StepOrigin::FileName))
}

/// The last integer in the name of `path`'s directory.
fn directory_step(path: &Path) -> Option<u64> {
    let directory = path.parent()?.file_name()?.to_string_lossy();
    last_integer(&directory)
}

/// Orders checkpoints by step. `found` holds each file (in the order given) with the step it
/// records (`recorded_step`). Files without one take the last integer of their directory's
/// name when every file lies in a directory of its own (`checkpoint-500/model.safetensors`);
/// when a file still has no step, every file takes its position instead. Equal steps are
/// refused.
pub fn order_by_step(
    mut found: Vec<(PathBuf, Option<(u64, StepOrigin)>)>,
) -> Result<Vec<CheckpointStep>, SeriesError> {
    let directories: Vec<Option<&Path>> = found.iter().map(|(path, _)| path.parent()).collect();
    let one_per_directory = directories
        .iter()
        .enumerate()
        .all(|(a, d)| d.is_some() && !directories[..a].contains(d));
    if one_per_directory {
        for (path, step) in &mut found {
            if step.is_none() {
                *step = directory_step(path).map(|s| (s, StepOrigin::DirectoryName));
            }
        }
    }
    let positional = found.iter().any(|(_, step)| step.is_none());
    let mut steps: Vec<CheckpointStep> = found
        .into_iter()
        .enumerate()
        .map(|(k, (path, step))| {
            let (step, origin) = match step {
                Some(recorded) if !positional => recorded,
                _ => (k as u64, StepOrigin::Position),
            };
            CheckpointStep { path, step, origin }
        })
        .collect();
    steps.sort_by_key(|c| c.step);
    if let Some(pair) = steps.windows(2).find(|w| w[0].step == w[1].step) {
        return Err(SeriesError::RepeatedStep {
            path: pair[1].path.clone(),
            step: pair[1].step,
            origin: pair[1].origin,
            other: pair[0].path.clone(),
        });
    }
    Ok(steps)
}

/// The checkpoint files of `directory` (not its subdirectories): every file whose name ends in
/// `.safetensors`, `.safetensors.index.json`, `.npy`, `.npz`, `.pt`, `.pth`, `.bin`, `.gguf` or
/// `.ckpt`, in natural name order (`step9` before `step10`), without the shards a
/// `*.safetensors.index.json` beside them names.
pub fn checkpoint_files(directory: &Path) -> Result<Vec<PathBuf>, SeriesError> {
    let io = |source| SeriesError::from(LoadError::io(directory, source));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = std::fs::metadata(entry.path())
            .map(|m| m.is_file())
            .unwrap_or(false);
        if is_file && CHECKPOINT_EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
            files.push(name);
        }
    }
    let mut shards = Vec::new();
    for name in files
        .iter()
        .filter(|n| n.ends_with(".safetensors.index.json"))
    {
        shards.extend(index_shards(&directory.join(name)));
    }
    files.retain(|name| !shards.contains(name));
    files.sort_by_key(|name| natural_key(name));
    Ok(files.into_iter().map(|name| directory.join(name)).collect())
}

/// The shard file names a safetensors index names (empty when it cannot be read: the loader
/// then reports the index itself).
fn index_shards(index: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(index) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    value["weight_map"]
        .as_object()
        .map(|map| {
            map.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The files of a series: each path that is a directory is replaced by its
/// [`checkpoint_files`]; files are kept as given, in order.
pub fn series_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SeriesError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(checkpoint_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    if files.len() < 2 {
        return Err(SeriesError::TooFew {
            path: paths.first().cloned().unwrap_or_default(),
            found: files.len(),
            hint: if files.len() == 1 {
                "; audit the one file alone"
            } else {
                ""
            },
        });
    }
    Ok(files)
}

/// `max_ij |a_ij − b_ij|` (NaN when an entry is NaN, so that it never counts as unmoved).
pub(crate) fn max_entry_change(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "max_entry_change: shapes differ");
    a.iter().zip(b).fold(0.0f64, |worst, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() || worst.is_nan() {
            f64::NAN
        } else {
            worst.max(d)
        }
    })
}

/// Per layer, the largest of `changes[k][l]` over checkpoints k (NaN if any is NaN).
pub(crate) fn largest_change(changes: &[Vec<f64>]) -> Vec<f64> {
    let layers = changes.first().map_or(0, Vec::len);
    (0..layers)
        .map(|l| {
            changes.iter().fold(0.0f64, |worst, c| {
                if c[l].is_nan() || worst.is_nan() {
                    f64::NAN
                } else {
                    worst.max(c[l])
                }
            })
        })
        .collect()
}

/// The layers whose change from the first checkpoint (`changes[k][l]`, k over checkpoints)
/// never exceeds `tolerance`; a NaN change counts as moved.
pub fn unmoved_layers(changes: &[Vec<f64>], tolerance: f64) -> Vec<Layer> {
    largest_change(changes)
        .into_iter()
        .enumerate()
        .filter(|(_, change)| *change <= tolerance)
        .map(|(index, _)| Layer::from_index(index))
        .collect()
}

/// What is compared between checkpoints (see [`SeriesError::Mismatch`]).
struct Shape {
    layout: Layout,
    streams: usize,
    layers: usize,
}

fn check_shape(
    path: &Path,
    shape: &Shape,
    first: Option<(&Path, &Shape)>,
) -> Result<(), SeriesError> {
    let Some((first_path, first)) = first else {
        return Ok(());
    };
    let mismatch = |quantity: &'static str, value: String, first_value: String| {
        Err(SeriesError::Mismatch {
            path: path.to_path_buf(),
            quantity,
            value,
            first: first_path.to_path_buf(),
            first_value,
        })
    };
    if shape.layout != first.layout {
        return mismatch(
            "layout",
            shape.layout.name().to_string(),
            first.layout.name().to_string(),
        );
    }
    if shape.streams != first.streams {
        return mismatch(
            "streams n =",
            shape.streams.to_string(),
            first.streams.to_string(),
        );
    }
    if shape.layers != first.layers {
        return mismatch(
            "layers L =",
            shape.layers.to_string(),
            first.layers.to_string(),
        );
    }
    Ok(())
}

/// Audits the checkpoint files `files` (at least two; directories already expanded, see
/// [`series_files`]) as one training run: steps read from each file's header
/// (`recorded_step`), sorted ([`order_by_step`]), then each checkpoint opened, checked
/// against the first, audited and released before the next. `on_checkpoint(done)` follows the
/// checkpoints.
pub fn audit_series(
    files: &[PathBuf],
    load: &LoadOptions,
    config: &SeriesConfig,
    mut on_checkpoint: impl FnMut(usize),
) -> Result<SeriesResult, SeriesError> {
    let mut found = Vec::with_capacity(files.len());
    let mut metadata = BTreeMap::new();
    for path in files {
        // Headers only: names, shapes and metadata; the tensors stay on disk.
        let source = open(path)?;
        found.push((path.clone(), recorded_step(path, source.metadata())));
        metadata.insert(path.clone(), source.metadata().clone());
    }
    let steps = order_by_step(found)?;
    let mut checkpoints: Vec<CheckpointAudit> = Vec::with_capacity(steps.len());
    let mut first_shape: Option<Shape> = None;
    for (done, step) in steps.into_iter().enumerate() {
        let input = open_audit_input(&step.path, load)?;
        let shape = Shape {
            layout: input.provenance.layout,
            streams: input.tokens.streams(),
            layers: input.tokens.layers(),
        };
        check_shape(
            &step.path,
            &shape,
            checkpoints
                .first()
                .map(|c| c.step.path.as_path())
                .zip(first_shape.as_ref()),
        )?;
        let result = audit(input.tokens.as_ref(), config.audit(), |_| Ok(()), |_| {})?;
        let provenance = input.provenance;
        drop(input.tokens); // released before the next checkpoint is opened
        let analysed = result
            .tokens
            .mean_matrices
            .as_deref()
            .expect("audits keep the token-mean matrices");
        let init_distance = audited_init_distance(
            provenance.layout,
            provenance.origin,
            load.transpose,
            analysed,
        );
        let change_from_first = match checkpoints.first() {
            None => vec![0.0; analysed.len()],
            Some(first) => analysed
                .iter()
                .zip(first_matrices(first))
                .map(|(a, b)| max_entry_change(a, b))
                .collect(),
        };
        checkpoints.push(CheckpointAudit {
            metadata: metadata.remove(&step.path).unwrap_or_default(),
            step,
            provenance,
            result,
            init_distance,
            change_from_first,
        });
        first_shape.get_or_insert(shape);
        on_checkpoint(done + 1);
    }
    let changes: Vec<Vec<f64>> = checkpoints
        .iter()
        .map(|c| c.change_from_first.clone())
        .collect();
    let unmoved_layers = unmoved_layers(&changes, config.still_tolerance());
    let verdict = if checkpoints
        .iter()
        .any(|c| c.result.verdict == Verdict::Unstable)
    {
        Verdict::Unstable
    } else {
        Verdict::Stable
    };
    Ok(SeriesResult {
        config: config.clone(),
        checkpoints,
        unmoved_layers,
        verdict,
    })
}

fn first_matrices(first: &CheckpointAudit) -> &[Vec<f64>] {
    first
        .result
        .tokens
        .mean_matrices
        .as_deref()
        .expect("audits keep the token-mean matrices")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_last_integer_of_a_name() {
        assert_eq!(last_integer("hc_step400"), Some(400));
        assert_eq!(last_integer("ckpt-1e-3-step0050"), Some(50));
        assert_eq!(last_integer("model"), None);
        assert_eq!(last_integer("7"), Some(7));
        assert_eq!(last_integer("x99999999999999999999999"), None);
    }

    #[test]
    fn steps_come_from_metadata_then_name_then_directory() {
        let path = Path::new("run/checkpoint-500/model_v2.safetensors");
        let none = BTreeMap::new();
        assert_eq!(
            recorded_step(
                path,
                &metadata(&[("global_step", "12"), ("iteration", "3")])
            ),
            Some((12, StepOrigin::MetadataGlobalStep))
        );
        assert_eq!(
            recorded_step(path, &metadata(&[("step", "final"), ("iteration", "3")])),
            Some((3, StepOrigin::MetadataIteration))
        );
        assert_eq!(recorded_step(path, &none), Some((2, StepOrigin::FileName)));
        assert_eq!(
            recorded_step(Path::new("run/checkpoint-500/model.safetensors"), &none),
            None
        );
        // The extension's digits are not a step.
        assert_eq!(recorded_step(Path::new("weights.gguf"), &none), None);
        assert_eq!(
            recorded_step(Path::new("a/b/step_7.safetensors.index.json"), &none),
            Some((7, StepOrigin::FileName))
        );
    }

    #[test]
    fn checkpoints_are_sorted_by_step_or_by_position() {
        let at = |name: &str, step: Option<u64>| {
            (PathBuf::from(name), step.map(|s| (s, StepOrigin::FileName)))
        };
        let sorted = order_by_step(vec![
            at("c", Some(200)),
            at("a", Some(0)),
            at("b", Some(50)),
        ])
        .unwrap();
        let names: Vec<_> = sorted.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        // One file without a step: every file by position, in the order given.
        let positional =
            order_by_step(vec![at("c", Some(200)), at("a", None), at("b", Some(50))]).unwrap();
        let got: Vec<_> = positional
            .iter()
            .map(|c| (c.path.to_str().unwrap(), c.step, c.origin))
            .collect();
        assert_eq!(
            got,
            [
                ("c", 0, StepOrigin::Position),
                ("a", 1, StepOrigin::Position),
                ("b", 2, StepOrigin::Position)
            ]
        );
        // One checkpoint per directory: the directories' names give the steps.
        let trainer = order_by_step(vec![
            at("run/checkpoint-1000/model.safetensors", None),
            at("run/checkpoint-500/model.safetensors", None),
        ])
        .unwrap();
        assert_eq!(
            (trainer[0].step, trainer[0].origin),
            (500, StepOrigin::DirectoryName)
        );
        // Files sharing a directory: its number is not a step.
        let shared = order_by_step(vec![
            at("run7/b.pt", None),
            at("run7/a.pt", None),
            at("run7/c_3.pt", Some(3)),
        ])
        .unwrap();
        assert!(shared.iter().all(|c| c.origin == StepOrigin::Position));
        let repeated = order_by_step(vec![at("x", Some(5)), at("y", Some(5))]).unwrap_err();
        assert_eq!(
            repeated.to_string(),
            "y: step 5 (the last integer in the file name) is also the step of x: a series holds one checkpoint per step"
        );
    }

    #[test]
    fn unmoved_layers_never_exceed_the_tolerance() {
        let changes = vec![
            vec![0.0, 0.0, 0.0],
            vec![1e-6, 0.2, f64::NAN],
            vec![5e-5, 0.1, 0.0],
        ];
        assert_eq!(largest_change(&changes)[..2], [5e-5, 0.2]);
        assert!(largest_change(&changes)[2].is_nan());
        let unmoved: Vec<usize> = unmoved_layers(&changes, 1e-4)
            .into_iter()
            .map(Layer::number)
            .collect();
        assert_eq!(unmoved, [1]);
        assert_eq!(unmoved_layers(&changes, 1e-5), []);
        assert_eq!(max_entry_change(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
        assert!(max_entry_change(&[f64::NAN, 2.0], &[1.5, 1.0]).is_nan());
    }

    #[test]
    fn the_tolerance_is_checked() {
        let audit = AuditConfig::default();
        assert!(SeriesConfig::new(audit.clone(), -1e-3).is_err());
        assert!(SeriesConfig::new(audit.clone(), f64::NAN).is_err());
        assert_eq!(
            SeriesConfig::new(audit, 0.0).unwrap().still_tolerance(),
            0.0
        );
    }
}
