//! Tidy CSV: one value per row. The row structs are the schema.
//!
//! `gain.csv` and `audit.csv`: `method,composite,layer,metric,stat,value`;
//! `gain_per_seed.csv`: `seed,method,composite,layer,metric,value`. Values are written in the
//! shortest form that round-trips to the same f64; `inf`/`-inf` where a value exceeds f64.

use serde::Serialize;

use crate::analysis::{GainResult, Method, StackProfile, Stat};
use crate::compose::Composite;
use crate::error::Error;
use crate::metrics::Metric;

/// One row of `gain.csv` / `audit.csv`.
#[derive(Debug, Serialize)]
pub struct TidyRow<'a> {
    /// `hc`, `mhc`, or a checkpoint layout name.
    pub method: &'a str,
    /// `single`, `prefix` or `suffix`.
    pub composite: Composite,
    /// 1-based layer.
    pub layer: usize,
    /// Metric name.
    pub metric: Metric,
    /// Statistic over seeds (gain) or tokens (audit).
    pub stat: Stat,
    /// The value.
    pub value: f64,
}

/// One row of `gain_per_seed.csv`.
#[derive(Debug, Serialize)]
pub struct PerSeedRow<'a> {
    /// 0-based seed index (the generator stream, see `task_rng`).
    pub seed: u64,
    /// `hc` or `mhc`.
    pub method: &'a str,
    /// Composite.
    pub composite: Composite,
    /// 1-based layer.
    pub layer: usize,
    /// Metric.
    pub metric: Metric,
    /// The seed's value (a mean over tokens).
    pub value: f64,
}

fn csv_error(e: impl std::fmt::Display) -> Error {
    Error::Output {
        what: "CSV".to_string(),
        message: e.to_string(),
    }
}

/// `gain.csv`: every method, composite, layer, metric and statistic over seeds.
pub fn gain_csv(result: &GainResult) -> Result<Vec<u8>, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for method in Method::ALL {
        for composite in Composite::ALL {
            for layer in 1..=result.layout().layers() {
                for metric in Metric::ALL {
                    let summary = result.summary(method, composite, layer, metric);
                    for stat in Stat::ALL {
                        writer
                            .serialize(TidyRow {
                                method: method.name(),
                                composite,
                                layer,
                                metric,
                                stat,
                                value: summary.get(stat),
                            })
                            .map_err(csv_error)?;
                    }
                }
            }
        }
    }
    writer.into_inner().map_err(csv_error)
}

/// A profile's rows under `method` (a layout name): `mean` = token aggregate, `max` = max over
/// tokens.
pub fn profile_csv(profile: &StackProfile, method: &str) -> Result<Vec<u8>, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for composite in Composite::ALL {
        for layer in 1..=profile.layers() {
            for metric in Metric::ALL {
                for (stat, value) in [
                    (Stat::Mean, profile.get(composite, layer, metric)),
                    (Stat::Max, profile.token_max(composite, layer, metric)),
                ] {
                    writer
                        .serialize(TidyRow {
                            method,
                            composite,
                            layer,
                            metric,
                            stat,
                            value,
                        })
                        .map_err(csv_error)?;
                }
            }
        }
    }
    writer.into_inner().map_err(csv_error)
}

/// Streams `gain_per_seed.csv` rows to any writer.
pub struct PerSeedWriter<W: std::io::Write> {
    writer: csv::Writer<W>,
    layers: usize,
}

impl<W: std::io::Write> PerSeedWriter<W> {
    /// A writer for a sweep over `layers` layers (the header comes with the first row).
    pub fn new(inner: W, layers: usize) -> Self {
        Self {
            writer: csv::Writer::from_writer(inner),
            layers,
        }
    }

    /// Writes one seed's values (laid out as [`crate::analysis::GainLayout`]).
    pub fn write_seed(&mut self, seed: u64, values: &[f64]) -> Result<(), Error> {
        let layout = crate::analysis::GainLayout::new(self.layers);
        for method in Method::ALL {
            for composite in Composite::ALL {
                for layer in 1..=self.layers {
                    for metric in Metric::ALL {
                        self.writer
                            .serialize(PerSeedRow {
                                seed,
                                method: method.name(),
                                composite,
                                layer,
                                metric,
                                value: values[layout.index(method, composite, layer, metric)],
                            })
                            .map_err(csv_error)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> Result<W, Error> {
        self.writer.into_inner().map_err(csv_error)
    }
}
