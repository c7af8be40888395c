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
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file could be read but its content is not what was expected.
    #[error("{}: {message}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What was wrong, and what was expected.
        message: String,
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
    /// Serialising output (CSV, JSON) failed.
    #[error("writing {what}: {message}")]
    Output {
        /// The output that could not be produced.
        what: String,
        /// The underlying error.
        message: String,
    },
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
