//! The single integration-test binary (one link step): each module covers one area.

mod cli_gain;
mod properties;
mod reference;
