//! The single integration-test binary (one link step): each module covers one area.

mod certify;
mod cli_audit;
mod cli_gain;
mod load;
mod properties;
mod reference;
mod report;
mod series;
mod tokens;
