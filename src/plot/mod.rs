//! Figure rendering: plain data in ([`LineFigure`], [`HeatmapFigure`]), PNG bytes or an SVG
//! string out. This module never computes analysis results and never touches the file system.
//!
//! All figures share one style (Okabe–Ito palette with HC in vermillion and mHC in blue,
//! DejaVu Sans bundled and registered with plotters on first use, fixed font sizes). Layout
//! is computed once, backend-independently, so the PNG and the SVG of a figure are identical
//! in geometry and size.
//!
//! ```
//! use mhc_analyze::plot::{LineFigure, Panel, Series, SeriesStyle, line_figure_png, line_figure_svg};
//!
//! let hc: Vec<(f64, f64)> = (1..=8).map(|l| (l as f64, 2f64.powi(l))).collect();
//! let mhc: Vec<(f64, f64)> = (1..=8).map(|l| (l as f64, 1.0 + 0.01 * l as f64)).collect();
//! let panel = Panel::new("Forward gain", "layer l", "amax gain")
//!     .log_y()
//!     .with_series(Series::new("HC", SeriesStyle::hc(), hc))
//!     .with_series(Series::new("mHC", SeriesStyle::mhc(), mhc))
//!     .with_reference_line(1.0, "ideal");
//! let fig = LineFigure::new("Composite gain", vec![panel]);
//! let png: Vec<u8> = line_figure_png(&fig)?;
//! let svg: String = line_figure_svg(&fig)?;
//! assert!(png.starts_with(b"\x89PNG") && svg.contains("Composite gain"));
//! # Ok::<(), mhc_analyze::plot::PlotError>(())
//! ```

mod axis;
pub mod draw;
pub mod figure;
mod scene;
pub mod style;

pub use draw::{
    heatmap_figure_png, heatmap_figure_svg, line_figure_grid, line_figure_png, line_figure_size,
    line_figure_svg,
};
pub use figure::{
    AxisScale, ColorScale, HeatmapFigure, HeatmapPanel, LineFigure, Panel, Series, SeriesColor,
    SeriesStyle, ValueFormat,
};

/// Why a figure could not be rendered.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PlotError {
    /// The drawing backend failed.
    #[error("plot: {0}")]
    Draw(String),
    /// A panel has no point that can be drawn (all non-finite, or non-positive on a log axis).
    #[error("plot: no finite data to draw in panel '{0}'")]
    NoData(String),
    /// The figure description is unusable (no panels, ragged matrix, …).
    #[error("plot: invalid figure: {0}")]
    Invalid(String),
    /// The bundled font could not be loaded.
    #[error("plot: the bundled font could not be loaded")]
    Font,
    /// PNG encoding failed.
    #[error("plot: PNG encoding failed: {0}")]
    Encode(String),
}
