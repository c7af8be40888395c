//! What `audit` reads from a file: per-token H_res as a [`TokenSource`] and where they came from.
//!
//! A stack of finished matrices (`[L, T, n, n]`, e.g. a capture) is streamed from the file by
//! chunks of tokens ([`StackFile`]); a model's parameters give the input-independent H_res of
//! each layer, one token ([`load_hres_from`]).

use std::path::Path;

use serde::Serialize;

use super::capture::{CaptureMetadata, read_capture_metadata};
use super::dynamic::{DynamicModel, DynamicOptions};
use super::layouts::{
    ExactSide, Layout, LoadOptions, LoadedHres, describe, load_hres_from, resolve_stack,
};
use super::stream::StackFile;
use super::{LoadError, open};
use crate::analysis::TokenSource;
use crate::error::Error;
use crate::generate::probe::{ProbeConfig, probe_stack};

/// Where the audited tokens come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenOrigin {
    /// Finished per-token matrices stored in the file (a capture of a forward pass).
    Stored,
    /// Rebuilt from a model's parameters with the token-dependent part set to zero: one
    /// "token", which no real token receives.
    StaticParameters,
    /// Synthetic hidden states drawn by the tool and pushed through the layout's own norm and
    /// projection.
    Probe,
}

impl TokenOrigin {
    /// Words for tables.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TokenOrigin::Stored => "per-token matrices stored in the file",
            TokenOrigin::StaticParameters => {
                "input-independent H_res rebuilt from the parameters (no real token's matrix)"
            }
            TokenOrigin::Probe => "synthetic inputs through the layout's own norm and projection",
        }
    }
}

/// Where a stack of H_res came from: everything a report says about its input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Provenance {
    /// The layout used.
    pub layout: Layout,
    /// Why that layout (the option given, or the evidence auto-detection found).
    pub reason: String,
    /// Every tensor read, grouped by layer in layer order.
    pub tensors: Vec<String>,
    /// The stored dtype(s) of those tensors, e.g. `f32` (several joined with `+`).
    pub source_dtype: String,
    /// The marginal the layout's Sinkhorn leaves exact, in the loaded orientation; `None` when
    /// no Sinkhorn is involved.
    pub exact_side: Option<ExactSide>,
    /// Caveats for the report.
    pub notes: Vec<String>,
    /// What the tokens are.
    pub origin: TokenOrigin,
    /// The capture companion's metadata, for a capture it wrote.
    pub capture: Option<CaptureMetadata>,
    /// The file's evidence for another layout, overruled with `--ignore-evidence`.
    pub ignored_evidence: Option<String>,
}

impl Provenance {
    /// The provenance of matrices rebuilt from parameters.
    pub(crate) fn of_loaded(loaded: &LoadedHres) -> Self {
        Self {
            layout: loaded.layout,
            reason: loaded.reason.clone(),
            tensors: loaded.tensors.clone(),
            source_dtype: loaded.source_dtype.clone(),
            exact_side: loaded.exact_side,
            notes: loaded.notes.clone(),
            origin: if loaded.layout == Layout::Stack {
                TokenOrigin::Stored
            } else {
                TokenOrigin::StaticParameters
            },
            capture: None,
            ignored_evidence: loaded.ignored_evidence.clone(),
        }
    }
}

/// The tokens to audit and their provenance.
pub struct AuditInput {
    /// Per-token matrices, read in chunks.
    pub tokens: Box<dyn TokenSource + Send>,
    /// Where they came from.
    pub provenance: Provenance,
}

/// Opens `path` for an audit: a stack tensor is streamed by chunks of tokens (memory does not
/// grow with the number of tokens), a model's parameters are rebuilt into the input-independent
/// H_res ([`load_hres_from`]). Layout choice and errors are those of [`load_hres_from`].
pub fn open_audit_input(path: &Path, options: &LoadOptions) -> Result<AuditInput, LoadError> {
    let source = open(path)?;
    let Some((name, reason)) = resolve_stack(source.as_ref(), options)? else {
        let loaded = load_hres_from(source.as_ref(), options)?;
        let provenance = Provenance::of_loaded(&loaded);
        return Ok(AuditInput {
            tokens: Box::new(loaded.stack),
            provenance,
        });
    };
    let info = source.info(&name)?;
    let what = describe(source.as_ref(), &name);
    let capture = read_capture_metadata(path, &name, source.metadata(), &info.shape)?;
    let stack = StackFile::open(source.as_ref(), &name, &what, options.transpose)?;
    let mut notes = Vec::new();
    if options.transpose {
        notes.push(
            "every matrix transposed on request (--transpose): the file stores H_resᵀ".to_string(),
        );
    } else {
        notes.push(
            "matrices used as stored: rows are taken as output streams (x_{l+1} = H x_l); pass --transpose if the file stores H_resᵀ"
                .to_string(),
        );
    }
    match &capture {
        Some(capture) => {
            let versions: Vec<String> = capture
                .versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            notes.push(format!(
                "captured by mhc_capture (format {}) from {} module call(s) of kind {}{}",
                capture.format_version,
                capture.modules.len(),
                capture.kinds().join(", "),
                if versions.is_empty() {
                    String::new()
                } else {
                    format!("; {}", versions.join(", "))
                }
            ));
            if let Some(order) = &capture.token_order {
                notes.push(format!("tokens in the order of the {order}"));
            }
        }
        None => {
            for key in ["convention", "layout"] {
                if let Some(value) = source.metadata().get(key) {
                    notes.push(format!("file metadata {key} = '{value}'"));
                }
            }
        }
    }
    if stack.inflated() {
        notes.push(
            "the tensor is stored compressed: it was inflated once into a temporary file and read from there"
                .to_string(),
        );
    }
    let provenance = Provenance {
        layout: Layout::Stack,
        reason,
        tensors: vec![name],
        source_dtype: stack.dtype().to_string(),
        exact_side: None,
        notes,
        origin: TokenOrigin::Stored,
        capture,
        ignored_evidence: None,
    };
    Ok(AuditInput {
        tokens: Box::new(stack),
        provenance,
    })
}

/// A probe of a model's parameters for an audit: `probe.tokens()` synthetic hidden states per
/// layer, each an independent standard-normal input pushed through the layout's own norm,
/// projection and Sinkhorn ([`crate::generate::probe`]), as a stack of per-token H_res.
pub fn open_probe_input(
    path: &Path,
    options: &LoadOptions,
    probe: ProbeConfig,
    dynamic: DynamicOptions,
) -> Result<AuditInput, Error> {
    let model = DynamicModel::open(path, options, dynamic)?;
    let stack = probe_stack(&model, &probe)?;
    let first = model.layer(0)?;
    let [rows, dim] = first.input_shape();
    let mut notes = vec![format!(
        "probe: {} synthetic hidden states per layer, each x ∈ R^({rows}×{dim}) with independent standard-normal entries (ChaCha8 seeded with --probe-seed {}, stream = layer, Box–Muller), through the layout's own norm, projection and Sinkhorn; not the distribution of a trained model's real hidden states",
        probe.tokens(),
        probe.seed()
    )];
    notes.extend(model.notes().iter().cloned());
    let tensors = (0..model.layers()).map(|l| model.layer_name(l)).collect();
    let layout = model.layout();
    let provenance = Provenance {
        layout,
        reason: model.reason().to_string(),
        tensors,
        source_dtype: "f64 (computed)".to_string(),
        exact_side: layout.exact_side(),
        notes,
        origin: TokenOrigin::Probe,
        capture: None,
        ignored_evidence: model.ignored_evidence().map(str::to_string),
    };
    Ok(AuditInput {
        tokens: Box::new(stack),
        provenance,
    })
}
