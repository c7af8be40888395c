//! # mhc_analyze
//!
//! Signal propagation through the residual-mixing matrices H_res of Hyper-Connections (HC) and
//! Manifold-Constrained Hyper-Connections (mHC, arXiv 2512.24880).
//!
//! ## Conventions
//! - `x_{l+1} = H_l x_l`: **rows are output streams, columns are input streams**.
//! - Layers are numbered l = 1 … L in every output.
//! - `prefix(l) = H_l ⋯ H_1` (forward), `suffix(l) = H_L ⋯ H_l` (backward); `prefix(L) = suffix(1)`
//!   is the whole-model composite.
//! - All arithmetic is f64, whatever the input dtype.
//!
//! Data flows generate or load → [`compose`] → [`metrics`] → [`analysis`] → export / plot.
//!
//! ```
//! use mhc_analyze::metrics::{amax_forward, birkhoff_distance};
//! // HC's Figure 8 layer 30 (rounded entries): forward gain 0.95, far from doubly stochastic.
//! let h30 = [0.94, -0.07, -0.05, 0.02, -0.08, 0.89, -0.07, -0.07,
//!            -0.10, -0.14, 0.81, -0.07, 0.06, 0.05, -0.03, 0.87];
//! assert!((amax_forward(&h30, 4) - 0.95).abs() < 1e-12);
//! assert!(birkhoff_distance(&h30, 4) > 0.3);
//! ```

pub mod analysis;
pub mod compose;
mod cpu;
pub mod error;
pub mod export;
pub mod generate;
mod lanes;
pub mod load;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod stack;

pub use error::{ConfigError, Error, StackError, one_line};
pub use stack::LayerStack;
