//! The library's error type. Every message names the thing that was wrong and what was expected,
//! in one line, so the binary can print it as is.

use std::path::PathBuf;

/// Any error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option or experiment parameter is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A stack of matrices has the wrong shape or holds non-finite values.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// A file could not be read as tensors or as H_res (names the file and tensor).
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    /// A model named in an experiment file could not be read.
    #[error("{}: model '{model}': {source}", crate::load::shown(experiment))]
    ExperimentModel {
        /// The experiment file.
        experiment: PathBuf,
        /// The model's name in it.
        model: String,
        /// Why its file could not be read (boxed: it is large and rare).
        #[source]
        source: Box<crate::load::LoadError>,
    },
    /// A training run named in an experiment file could not be audited as a series.
    #[error("{}: run '{run}': {source}", crate::load::shown(experiment))]
    ExperimentRun {
        /// The experiment file.
        experiment: PathBuf,
        /// The run's name in it.
        run: String,
        /// Why (boxed: a series error can hold any error of the crate).
        #[source]
        source: Box<crate::analysis::series::SeriesError>,
    },
    /// A certificate could not be built from a model's parameters.
    #[error("{}: {source}", path.display())]
    Certify {
        /// The model file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: crate::analysis::certify::CertifyError,
    },
    /// A figure could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// Writing an output file or directory failed.
    #[error("{}: {source}", crate::load::shown(path))]
    Write {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// An output directory was asked for where a file (or something else) already exists.
    #[error("{}: exists and is not a directory", crate::load::shown(path))]
    NotADirectory {
        /// The path given as output directory.
        path: PathBuf,
    },
    /// Encoding a CSV table failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Re-encoding a PNG failed.
    #[error("writing PNG: {0}")]
    PngEncode(#[from] png::EncodingError),
    /// A PNG the tool drew could not be decoded for recompression.
    #[error("reading back PNG: {0}")]
    PngDecode(#[from] png::DecodingError),
}

/// A parameter that fails validation; built once, when a config is constructed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A count that must be at least `minimum`.
    #[error("{name} must be at least {minimum}, got {value}")]
    TooSmall {
        /// The option's name as the user typed it (`--layers`, `layers`).
        name: &'static str,
        /// The smallest allowed value.
        minimum: u64,
        /// What was given.
        value: u64,
    },
    /// A count above what the tool accepts.
    #[error("{name} must be at most {maximum}, got {value}")]
    TooLarge {
        /// The option's name.
        name: &'static str,
        /// The largest allowed value.
        maximum: u64,
        /// What was given.
        value: u64,
    },
    /// A real-valued parameter that must be finite (and possibly non-negative).
    #[error("{name} must be a finite number{}, got {value}", if *.non_negative { " ≥ 0" } else { "" })]
    BadReal {
        /// The option's name.
        name: &'static str,
        /// Whether negative values are rejected too.
        non_negative: bool,
        /// What was given.
        value: f64,
    },
    /// A real-valued parameter that must be positive and finite.
    #[error("{name} must be a positive finite number, got {value}")]
    NotPositive {
        /// The option's name.
        name: &'static str,
        /// What was given.
        value: f64,
    },
    /// Two options that cannot be combined.
    #[error("{0}")]
    Conflict(String),
}

/// A stack of H_res matrices that cannot be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StackError {
    /// No layers, no tokens, or no streams.
    #[error(
        "{what} is empty: expected at least one layer, one token and one stream, got shape {shape:?}"
    )]
    Empty {
        /// What was being built (a file and tensor name, or "generated logits").
        what: String,
        /// The shape that was given, `[layers, tokens, rows, cols]`.
        shape: [usize; 4],
    },
    /// The matrices are not square.
    #[error("{what}: matrices must be square, got {rows}×{cols}")]
    NotSquare {
        /// What was being built.
        what: String,
        /// Rows of each matrix.
        rows: usize,
        /// Columns of each matrix.
        cols: usize,
    },
    /// The array has a rank the tool does not understand.
    #[error(
        "{what}: expected shape [layers, n, n] or [layers, tokens, n, n]{extra}, got rank {rank} {shape:?}"
    )]
    WrongRank {
        /// What was being built.
        what: String,
        /// The rank that was given.
        rank: usize,
        /// The full shape.
        shape: Vec<usize>,
        /// Further accepted shapes, if any (e.g. ", or [draws, layers, tokens, n, n]").
        extra: String,
    },
    /// NaN or ±Inf in the input.
    #[error(
        "{what}: non-finite value {value} at layer {layer}, token {token}, entry [{row}, {col}]"
    )]
    NonFinite {
        /// What was being built.
        what: String,
        /// 1-based layer.
        layer: usize,
        /// 0-based token.
        token: usize,
        /// 0-based row (output stream).
        row: usize,
        /// 0-based column (input stream).
        col: usize,
        /// The offending value.
        value: f64,
    },
}

/// Messages from other crates sometimes span lines; ours never do. Line breaks become spaces,
/// other control characters are escaped (see [`printable`]). The one rule for every message the
/// tool prints: the library's errors and the binary's chain of causes alike.
pub fn one_line(message: &str) -> String {
    let joined = if message.contains(['\n', '\r']) {
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        message.to_string()
    };
    printable(&joined)
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): tensor names and paths come from
/// files and must not break the one-line messages.
pub(crate) fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    }
}
