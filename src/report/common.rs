//! Helpers shared by the experiment kinds: exact statistics over seeds, the tidy CSV writer
//! with leading grid columns, and number wording for generated prose.

use serde::Serialize;

use crate::analysis::{Layer, Stat, Summary};
use crate::compose::Composite;
use crate::error::Error;
use crate::export::csv::finish_csv;
use crate::export::markdown::format_number;
use crate::generate::SinkhornOrder;
use crate::load::ExactSide;
use crate::metrics::Metric;
use crate::plot::{Panel, Series, SeriesStyle};

/// σ₂ below which a composite's streams count as merged into one mixture: rounding level for
/// products of n×n doubly stochastic matrices is ≈ 1e-16.
pub const COLLAPSED: f64 = 1e-12;

/// Statistics written to the CSVs of curves (figures use the median and the 5–95 % band).
pub(crate) const CURVE_STATS: [Stat; 3] = [Stat::Median, Stat::P05, Stat::P95];

/// One field of a CSV record.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Field {
    /// Text.
    Text(String),
    /// An integer.
    Int(u64),
    /// A number, in the shortest form that reads back as the same f64 (as in gain.csv).
    Float(f64),
}

impl From<&str> for Field {
    fn from(s: &str) -> Self {
        Field::Text(s.to_string())
    }
}
impl From<String> for Field {
    fn from(s: String) -> Self {
        Field::Text(s)
    }
}
impl From<u64> for Field {
    fn from(x: u64) -> Self {
        Field::Int(x)
    }
}
impl From<usize> for Field {
    fn from(x: usize) -> Self {
        Field::Int(x as u64)
    }
}
impl From<u32> for Field {
    fn from(x: u32) -> Self {
        Field::Int(x as u64)
    }
}
impl From<f64> for Field {
    fn from(x: f64) -> Self {
        Field::Float(x)
    }
}

/// A CSV with a fixed header, rows of [`Field`]s.
pub(crate) struct CsvTable {
    writer: csv::Writer<Vec<u8>>,
    width: usize,
}

impl CsvTable {
    /// A CSV with this header.
    pub fn new(header: &[&str]) -> Result<Self, Error> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        writer.write_record(header)?;
        Ok(Self {
            writer,
            width: header.len(),
        })
    }

    /// Appends a record (as long as the header).
    pub fn row(&mut self, fields: Vec<Field>) -> Result<(), Error> {
        debug_assert_eq!(fields.len(), self.width);
        Ok(self.writer.serialize(fields)?)
    }

    /// The bytes.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        finish_csv(self.writer)
    }
}

/// The tidy schema of `gain.csv` (`method,composite,layer,metric,stat,value`) with the grid's
/// parameters as leading columns.
pub(crate) struct TidyCsv {
    table: CsvTable,
    grid: usize,
}

impl TidyCsv {
    /// A tidy CSV whose rows start with the `grid` columns.
    pub fn new(grid: &[&str]) -> Result<Self, Error> {
        let mut header: Vec<&str> = grid.to_vec();
        header.extend(["method", "composite", "layer", "metric", "stat", "value"]);
        Ok(Self {
            table: CsvTable::new(&header)?,
            grid: grid.len(),
        })
    }

    /// One value.
    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &mut self,
        grid: Vec<Field>,
        method: &str,
        composite: Composite,
        layer: Layer,
        metric: Metric,
        stat: Stat,
        value: f64,
    ) -> Result<(), Error> {
        debug_assert_eq!(grid.len(), self.grid);
        let mut fields = grid;
        fields.extend([
            Field::from(method),
            Field::from(composite.name()),
            Field::from(layer.number()),
            Field::from(metric.name()),
            Field::from(stat.name()),
            Field::from(value),
        ]);
        self.table.row(fields)
    }

    /// One value that is not a statistic over draws (a single draw): `value` in the stat column.
    pub(crate) fn single_value(
        &mut self,
        grid: Vec<Field>,
        method: &str,
        composite: Composite,
        layer: Layer,
        metric: Metric,
        value: f64,
    ) -> Result<(), Error> {
        debug_assert_eq!(grid.len(), self.grid);
        let mut fields = grid;
        fields.extend([
            Field::from(method),
            Field::from(composite.name()),
            Field::from(layer.number()),
            Field::from(metric.name()),
            Field::from("value"),
            Field::from(value),
        ]);
        self.table.row(fields)
    }

    /// Every statistic in `stats` of one summary.
    #[allow(clippy::too_many_arguments)]
    pub fn summary(
        &mut self,
        grid: &[Field],
        method: &str,
        composite: Composite,
        layer: Layer,
        metric: Metric,
        stats: &[Stat],
        summary: &Summary,
    ) -> Result<(), Error> {
        for &stat in stats {
            self.row(
                grid.to_vec(),
                method,
                composite,
                layer,
                metric,
                stat,
                summary.get(stat),
            )?;
        }
        Ok(())
    }

    /// The bytes.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        self.table.finish()
    }
}

/// The marginal a Sinkhorn of this order leaves exact: the side of its last step.
pub fn exact_side(order: SinkhornOrder) -> ExactSide {
    match order {
        SinkhornOrder::ColumnsThenRows => ExactSide::Rows,
        SinkhornOrder::RowsThenColumns => ExactSide::Columns,
    }
}

/// A statistic over seeds for prose: the value itself for one seed, else [`spread`].
pub fn over_seeds(summary: &Summary, seeds: u64, digits: usize) -> String {
    if seeds == 1 {
        num(summary.median, digits)
    } else {
        format!("median {}", spread(summary, digits))
    }
}

/// A number for prose: `format_number` with `digits` significant digits.
pub(crate) fn num(x: f64, digits: usize) -> String {
    format_number(x, digits)
}

/// A parameter as written in a file: the shortest decimal that reads back the same (`8`, `0.3`).
pub(crate) fn param(x: f64) -> String {
    format!("{x}")
}

/// `median (5–95 %: p05–p95)` for prose.
pub(crate) fn spread(summary: &Summary, digits: usize) -> String {
    format!(
        "{} (5–95 %: {})",
        num(summary.median, digits),
        range(summary.p05, summary.p95, digits)
    )
}

/// `2.1–7.65`, or `1 + 5.2e-14 to 1 + 2.1e-11` where a number is written as its distance from 1
/// (a dash between two such numbers would read as a minus).
pub fn range(low: f64, high: f64, digits: usize) -> String {
    let (low, high) = (num(low, digits), num(high, digits));
    if low.contains(' ') || high.contains(' ') {
        format!("{low} to {high}")
    } else {
        format!("{low}–{high}")
    }
}

/// Whether positive values span more than a factor 10 (then a log axis reads better).
pub(crate) fn spans_decades(values: impl IntoIterator<Item = f64>) -> bool {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    hi > 10.0 * lo
}

/// The y values of every series and band of a panel.
pub(crate) fn panel_values(panel: &Panel) -> Vec<f64> {
    let mut values = Vec::new();
    for s in &panel.series {
        values.extend(s.points.iter().map(|p| p.1));
        for band in s.band.iter().flatten() {
            values.extend([band.1, band.2]);
        }
    }
    values
}

/// A median line with a 5–95 % band from per-x summaries.
pub(crate) fn band_series(label: &str, style: SeriesStyle, points: &[(f64, Summary)]) -> Series {
    Series::new(
        label,
        style,
        points.iter().map(|(x, s)| (*x, s.median)).collect(),
    )
    .with_band(points.iter().map(|(x, s)| (*x, s.p05, s.p95)).collect())
}

/// Joins phrases as `a, b and c`.
pub(crate) fn and_list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        _ => format!(
            "{} and {}",
            items[..items.len() - 1].join(", "),
            items[items.len() - 1]
        ),
    }
}

/// `1 − 10^(-x)` style deviation from 1 for prose: the largest |v − 1| over `values`.
pub(crate) fn max_deviation_from_one(values: impl IntoIterator<Item = f64>) -> f64 {
    values
        .into_iter()
        .map(|v| (v - 1.0).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_rows_lead_with_the_grid() {
        let mut csv = TidyCsv::new(&["sinkhorn_iters"]).unwrap();
        csv.row(
            vec![Field::from(20u32)],
            "mhc",
            Composite::Prefix,
            Layer::new(60).unwrap(),
            Metric::AmaxBackward,
            Stat::Median,
            1.5,
        )
        .unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "sinkhorn_iters,method,composite,layer,metric,stat,value\n\
             20,mhc,prefix,60,amax_backward,median,1.5\n"
        );
    }

    #[test]
    fn lists_read_naturally() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(and_list(&items), "a, b and c");
        assert_eq!(and_list(&items[..1]), "a");
    }
}
