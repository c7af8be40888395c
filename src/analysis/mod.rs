//! Analyses built from the metrics: one draw measured ([`measure`]), statistics over draws
//! ([`stats`], the one summariser), read through typed keys ([`results`]); the `gain` sweep over
//! seeds, the token fold over a stack's tokens, and the `audit` verdict. Everything here returns
//! plain data; exporters and plots consume it.

pub mod audit;
pub mod audit_figure;
pub mod certified;
pub mod certify;
pub mod gain;
pub mod gain_figure;
pub mod init;
pub mod measure;
pub mod results;
mod select;
pub mod series;
pub mod series_figure;
pub mod stats;
pub mod tokens;

pub use audit::{AuditConfig, AuditResult, Verdict, audit, audit_stack};
pub use gain::{GainConfig, GainParams, GainResult, GivenDraws, LogitSource, Method, run_gain};
pub use measure::TokenAggregation;
pub use results::{
    Audited, Layer, LayerSelection, MetricSelection, Peak, Quantiles, Results, RowLayout,
    Selection, Series, Stat, Summary,
};
pub use stats::DrawStatistics;
pub use tokens::{TokenFoldOptions, TokenSource, TokenStatistics, WorstTokens, fold_tokens};
