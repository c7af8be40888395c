//! Analyses built from the metrics: profiles of one stack, statistics over seeds, the `gain`
//! sweep. Everything here returns plain data; exporters and plots consume it.

pub mod audit;
pub mod certify;
pub mod gain;
pub mod profile;
mod select;
pub mod stats;

pub use audit::{AuditConfig, AuditResult, Verdict, audit};
pub use gain::{
    GainConfig, GainLayout, GainResult, GivenDraws, LogitSource, Method, Peak, run_gain,
};
pub use profile::{StackProfile, TokenAggregation, profile_stack};
pub use stats::{SeedStatistics, Stat, Summary};
