//! Tidy CSV: one value per row. The row structs are the schema.
//!
//! `gain.csv` and `audit.csv`: `method,composite,layer,metric,stat,value`;
//! `gain_per_seed.csv`: `seed,method,composite,layer,metric,value`. Values are written in the
//! shortest form that round-trips to the same f64; `inf`/`-inf` where a value exceeds f64.

use serde::Serialize;

use crate::analysis::results::RowLayout;
use crate::analysis::tokens::TokenChunk;
use crate::analysis::{Layer, Method, Results, Series, Stat};
use crate::compose::Composite;
use crate::error::Error;
use crate::metrics::Metric;

/// One row of `gain.csv` / `audit.csv`.
#[derive(Debug, Serialize)]
pub(crate) struct TidyRow<'a> {
    /// `hc`, `mhc`, or a checkpoint layout name.
    pub method: &'a str,
    /// `single`, `prefix` or `suffix`.
    pub composite: Composite,
    /// 1-based layer.
    pub layer: Layer,
    /// Metric name.
    pub metric: Metric,
    /// Statistic over seeds (gain) or tokens (audit).
    pub stat: Stat,
    /// The value.
    pub value: f64,
}

/// One row of `gain_per_seed.csv`.
#[derive(Debug, Serialize)]
pub(crate) struct PerSeedRow<'a> {
    /// 0-based seed index (the generator stream, see `task_rng`).
    pub seed: u64,
    /// `hc` or `mhc`.
    pub method: &'a str,
    /// Composite.
    pub composite: Composite,
    /// 1-based layer.
    pub layer: Layer,
    /// Metric.
    pub metric: Metric,
    /// The seed's value (a mean over tokens).
    pub value: f64,
}

/// The inner writer of a finished CSV, after flushing what is buffered.
pub(crate) fn finish_csv<W: std::io::Write>(writer: csv::Writer<W>) -> Result<W, Error> {
    writer
        .into_inner()
        .map_err(|e| Error::Csv(csv::Error::from(e.into_error())))
}

/// The tidy rows of `results`: every series, composite, layer, measured metric and each of
/// `stats`; `label` names each series in the `method` column.
pub(crate) fn results_csv<S: Series>(
    results: &Results<S>,
    stats: &[Stat],
    label: impl Fn(S) -> String,
) -> Result<Vec<u8>, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for &series in S::ALL {
        let method = label(series);
        for composite in Composite::ALL {
            for layer in Layer::all(results.layers()) {
                for &metric in results.layout().metrics().metrics() {
                    let summary = results.summary(series, composite, layer, metric);
                    for &stat in stats {
                        writer.serialize(TidyRow {
                            method: &method,
                            composite,
                            layer,
                            metric,
                            stat,
                            value: summary.get(stat),
                        })?;
                    }
                }
            }
        }
    }
    finish_csv(writer)
}

/// `gain.csv`: every method, composite, layer, metric and statistic over seeds.
pub fn gain_csv(result: &Results<Method>) -> Result<Vec<u8>, Error> {
    results_csv(result, &Stat::OVER_SEEDS, |method| {
        method.name().to_string()
    })
}

/// One row of `audit_per_token.csv`.
#[derive(Debug, Serialize)]
pub(crate) struct PerTokenRow {
    /// 0-based token index (the source's order: batch-major, then sequence, for a capture).
    pub token: u64,
    /// Metric (of the whole-model composite prefix(L)).
    pub metric: Metric,
    /// The token's value.
    pub value: f64,
}

/// Streams `audit_per_token.csv` rows (`token,metric,value` of the whole-model composite) to
/// any writer, chunk by chunk as the token fold measures them.
pub struct PerTokenWriter<W: std::io::Write> {
    writer: csv::Writer<W>,
    metrics: Vec<Metric>,
}

impl<W: std::io::Write> PerTokenWriter<W> {
    /// A writer of `metrics` (in [`Metric::ALL`] order; the header comes with the first row).
    pub fn new(inner: W, metrics: &[Metric]) -> Self {
        Self {
            writer: csv::Writer::from_writer(inner),
            metrics: Metric::ALL
                .into_iter()
                .filter(|m| metrics.contains(m))
                .collect(),
        }
    }

    /// Writes every token of a measured chunk.
    pub fn write_chunk(&mut self, chunk: &TokenChunk<'_>) -> Result<(), Error> {
        for row in chunk.tokens() {
            for &metric in &self.metrics {
                let Some(value) = row.whole_model(metric) else {
                    continue;
                };
                self.writer.serialize(PerTokenRow {
                    token: row.token(),
                    metric,
                    value,
                })?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> Result<W, Error> {
        finish_csv(self.writer)
    }
}

/// Streams `gain_per_seed.csv` rows to any writer.
pub struct PerSeedWriter<W: std::io::Write> {
    writer: csv::Writer<W>,
    layout: RowLayout,
    metrics: Vec<Metric>,
}

impl<W: std::io::Write> PerSeedWriter<W> {
    /// A writer for seeds' rows laid out as `layout` (the header comes with the first row),
    /// writing `metrics` (those of them the layout measures, in [`Metric::ALL`] order).
    pub fn new(inner: W, layout: RowLayout, metrics: &[Metric]) -> Self {
        let metrics = layout
            .metrics()
            .metrics()
            .iter()
            .copied()
            .filter(|m| metrics.contains(m))
            .collect();
        Self {
            writer: csv::Writer::from_writer(inner),
            layout,
            metrics,
        }
    }

    /// Writes one seed's row.
    pub fn write_seed(&mut self, seed: u64, values: &[f64]) -> Result<(), Error> {
        for method in Method::ALL {
            for composite in Composite::ALL {
                for layer in Layer::all(self.layout.layers()) {
                    for &metric in &self.metrics {
                        let position = self
                            .layout
                            .position(method.position(), composite, layer, metric)
                            .expect("only measured metrics are written");
                        self.writer.serialize(PerSeedRow {
                            seed,
                            method: method.name(),
                            composite,
                            layer,
                            metric,
                            value: values[position],
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> Result<W, Error> {
        finish_csv(self.writer)
    }
}
