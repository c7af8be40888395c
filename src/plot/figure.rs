//! Plain-data description of the figures. Nothing here draws; see [`super::draw`].

/// Scale of an axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AxisScale {
    #[default]
    Linear,
    /// Base-10 logarithmic; non-positive values are skipped.
    Log10,
}

/// Colour of a series: HC and mHC have fixed colours, everything else takes palette entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesColor {
    Hc,
    Mhc,
    /// Index into the remaining palette colours (cycled).
    Other(usize),
}

/// How a series is drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesStyle {
    pub color: SeriesColor,
    pub dashed: bool,
    pub markers: bool,
}

impl SeriesStyle {
    /// Solid line in the given colour, no markers.
    pub(crate) fn solid(color: SeriesColor) -> Self {
        Self {
            color,
            dashed: false,
            markers: false,
        }
    }
    /// Solid HC (vermillion) line.
    pub fn hc() -> Self {
        Self::solid(SeriesColor::Hc)
    }
    /// Solid mHC (blue) line.
    pub fn mhc() -> Self {
        Self::solid(SeriesColor::Mhc)
    }
    /// Solid line in palette colour `i`.
    pub fn other(i: usize) -> Self {
        Self::solid(SeriesColor::Other(i))
    }
    /// The same style, dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    /// The same style, with a marker at every point.
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// One line (with an optional shaded band) in a panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub style: SeriesStyle,
    /// (x, y); non-finite points (and non-positive ones on a log axis) are skipped and break
    /// the line.
    pub points: Vec<(f64, f64)>,
    /// (x, low, high): shaded band in the series colour, ~20 % alpha.
    pub band: Option<Vec<(f64, f64, f64)>>,
}

impl Series {
    pub fn new(label: impl Into<String>, style: SeriesStyle, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            style,
            points,
            band: None,
        }
    }
    /// The same series with a shaded (x, low, high) band.
    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = Some(band);
        self
    }
}

/// One plot panel (axes box).
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_scale: AxisScale,
    pub x_scale: AxisScale,
    pub series: Vec<Series>,
    /// Horizontal dashed grey line at this y, with a legend label (e.g. `(1.0, "ideal")`).
    pub reference_line: Option<(f64, String)>,
    /// Horizontal dotted black line at a limit the data are judged against (e.g. a
    /// `--max-gain`), with a legend label.
    pub threshold_line: Option<(f64, String)>,
}

impl Panel {
    /// Empty panel with linear axes.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            y_scale: AxisScale::Linear,
            x_scale: AxisScale::Linear,
            series: Vec::new(),
            reference_line: None,
            threshold_line: None,
        }
    }
    /// The same panel with a log10 y axis.
    pub fn log_y(mut self) -> Self {
        self.y_scale = AxisScale::Log10;
        self
    }
    /// The same panel with one more series.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
    /// The same panel with a horizontal reference line.
    pub fn with_reference_line(mut self, y: f64, label: impl Into<String>) -> Self {
        self.reference_line = Some((y, label.into()));
        self
    }
    /// The same panel with a horizontal threshold line (always inside the y range).
    pub(crate) fn with_threshold_line(mut self, y: f64, label: impl Into<String>) -> Self {
        self.threshold_line = Some((y, label.into()));
        self
    }
}

/// Line figure: 1–3 panels side by side, or a 2-column grid for more.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFigure {
    pub title: String,
    pub subtitle: Option<String>,
    pub panels: Vec<Panel>,
}

impl LineFigure {
    pub fn new(title: impl Into<String>, panels: Vec<Panel>) -> Self {
        Self {
            title: title.into(),
            subtitle: None,
            panels,
        }
    }
    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }
}

/// How heat-map cell values are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFormat {
    /// Fixed number of decimals, e.g. `Fixed(2)` → `0.67`, `−4.07`.
    Fixed(usize),
    /// Number of significant digits, e.g. `Significant(3)` → `0.0123`, `12.3`, `1.23e5`.
    Significant(usize),
}

impl Default for ValueFormat {
    fn default() -> Self {
        ValueFormat::Fixed(2)
    }
}

/// How a heat map's cell values map to colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorScale {
    /// Symmetric about 0: blue for −max|v|, white for 0, red for +max|v| (signed matrices).
    #[default]
    Diverging,
    /// From the smallest value (white) to the largest (red), for non-negative quantities
    /// whose differences matter more than their sign.
    Sequential,
}

/// One matrix shown as a heat map.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapPanel {
    pub title: String,
    /// rows × cols (2..=16 each is the intended range; larger works with small text).
    pub matrix: Vec<Vec<f64>>,
    /// Printed right of each row (e.g. row sums); may be empty.
    pub row_annotations: Vec<String>,
    /// Printed under each column (e.g. column sums); may be empty.
    pub col_annotations: Vec<String>,
    /// Printed left of each row; empty: `out 1`, `out 2`, … (rows = output streams).
    pub row_labels: Vec<String>,
    /// Printed above each column; empty: `in 1`, `in 2`, … (columns = input streams).
    pub col_labels: Vec<String>,
    pub value_format: ValueFormat,
    /// How values map to colours.
    pub color_scale: ColorScale,
}

impl HeatmapPanel {
    /// Panel without annotations, values printed with two decimals.
    pub fn new(title: impl Into<String>, matrix: Vec<Vec<f64>>) -> Self {
        Self {
            title: title.into(),
            matrix,
            row_annotations: Vec::new(),
            col_annotations: Vec::new(),
            row_labels: Vec::new(),
            col_labels: Vec::new(),
            value_format: ValueFormat::default(),
            color_scale: ColorScale::default(),
        }
    }
    pub fn with_row_annotations(mut self, a: Vec<String>) -> Self {
        self.row_annotations = a;
        self
    }
    pub fn with_col_annotations(mut self, a: Vec<String>) -> Self {
        self.col_annotations = a;
        self
    }
    /// The same panel with its own row and column labels (for a table that is not a matrix
    /// of streams, e.g. layers × checkpoints).
    pub fn with_axis_labels(mut self, rows: Vec<String>, cols: Vec<String>) -> Self {
        self.row_labels = rows;
        self.col_labels = cols;
        self
    }
    pub fn with_value_format(mut self, f: ValueFormat) -> Self {
        self.value_format = f;
        self
    }
    /// The same panel coloured from its smallest value (white) to its largest (red).
    pub fn sequential(mut self) -> Self {
        self.color_scale = ColorScale::Sequential;
        self
    }
}

/// Grid of heat maps, `columns` per row (0 means "choose": up to 3).
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapFigure {
    pub title: String,
    pub subtitle: Option<String>,
    pub panels: Vec<HeatmapPanel>,
    pub columns: usize,
}

impl HeatmapFigure {
    pub fn new(title: impl Into<String>, panels: Vec<HeatmapPanel>, columns: usize) -> Self {
        Self {
            title: title.into(),
            subtitle: None,
            panels,
            columns,
        }
    }
    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_builders_fill_the_plain_fields() {
        let s = Series::new(
            "HC",
            SeriesStyle::hc().dashed().with_markers(),
            vec![(1.0, 2.0)],
        )
        .with_band(vec![(1.0, 1.5, 2.5)]);
        assert_eq!(
            s.style,
            SeriesStyle {
                color: SeriesColor::Hc,
                dashed: true,
                markers: true
            }
        );
        let p = Panel::new("t", "x", "y")
            .log_y()
            .with_series(s)
            .with_reference_line(1.0, "ideal");
        assert_eq!(
            (p.x_scale, p.y_scale),
            (AxisScale::Linear, AxisScale::Log10)
        );
        assert_eq!(p.reference_line, Some((1.0, "ideal".to_string())));
        let h = HeatmapPanel::new("H", vec![vec![1.0; 2]; 2]);
        assert_eq!(h.value_format, ValueFormat::Fixed(2));
        assert!(h.row_annotations.is_empty() && h.col_annotations.is_empty());
        let f = HeatmapFigure::new("F", vec![h], 0).with_subtitle("s");
        assert_eq!(f.subtitle.as_deref(), Some("s"));
    }
}
