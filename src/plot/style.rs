//! The one visual style shared by every figure: palette, font sizes, line widths,
//! the diverging colour map of the heat maps, and the bundled font.

use std::sync::OnceLock;

use ab_glyph::FontRef;
use plotters::style::{FontStyle, RGBAColor, RGBColor, register_font};

use super::PlotError;
use super::figure::SeriesColor;

/// Font family name under which the bundled DejaVu Sans is registered with plotters.
///
/// The name doubles as the SVG `font-family` attribute, so an SVG viewer uses DejaVu Sans
/// when it is installed (the text was laid out with its metrics) and a close sans-serif
/// otherwise.
pub(crate) const FONT_FAMILY: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();

/// The bundled font. On first use it is also registered with plotters (exactly once,
/// thread-safe) under [`FONT_FAMILY`].
///
/// Bitmap text is laid out and rasterised with this font directly (plotters' own ab_glyph
/// text path ignores glyph side bearings, which gives visibly uneven letter spacing); SVG text
/// is written as `<text>` by plotters and laid out with the same metrics.
pub(crate) fn font() -> Result<&'static FontRef<'static>, PlotError> {
    FONT.get_or_init(|| {
        let font = FontRef::try_from_slice(FONT_BYTES).ok()?;
        register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).ok()?;
        Some(font)
    })
    .as_ref()
    .ok_or(PlotError::Font)
}

/// Makes sure the font is available before a figure is laid out.
pub(crate) fn ensure_font() -> Result<(), PlotError> {
    font().map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Palette (Okabe–Ito, colour-blind safe)
// ---------------------------------------------------------------------------------------------

/// HC: Okabe–Ito vermillion.
pub(crate) const HC_COLOR: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// mHC: Okabe–Ito blue.
pub(crate) const MHC_COLOR: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Colours of `SeriesColor::Other(i)`, cycled: the remaining Okabe–Ito colours in order.
pub(crate) const OTHER_COLORS: [RGBColor; 6] = [
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0xF0, 0xE4, 0x42), // yellow
    RGBColor(0x00, 0x00, 0x00), // black
];

/// The colour of a series.
pub(crate) fn series_color(c: &SeriesColor) -> RGBColor {
    match c {
        SeriesColor::Hc => HC_COLOR,
        SeriesColor::Mhc => MHC_COLOR,
        SeriesColor::Other(i) => OTHER_COLORS[i % OTHER_COLORS.len()],
    }
}

pub(crate) const fn rgba(c: RGBColor, a: f64) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, a)
}

pub(crate) const fn gray(v: u8) -> RGBAColor {
    RGBAColor(v, v, v, 1.0)
}

pub(crate) const WHITE: RGBAColor = RGBAColor(255, 255, 255, 1.0);
/// Text, axes, frame.
pub(crate) const INK: RGBAColor = gray(0x22);
/// Subtitles and secondary text.
pub(crate) const INK_SOFT: RGBAColor = gray(0x55);
pub(crate) const GRID_MAJOR: RGBAColor = gray(0xE3);
pub(crate) const GRID_MINOR: RGBAColor = gray(0xF1);
pub(crate) const REFERENCE_LINE: RGBAColor = gray(0x80);
pub(crate) const LEGEND_BG: RGBAColor = RGBAColor(255, 255, 255, 0.88);
pub(crate) const LEGEND_BORDER: RGBAColor = gray(0xB0);
pub(crate) const CELL_SEPARATOR: RGBAColor = gray(0xD4);
pub(crate) const CELL_FRAME: RGBAColor = gray(0x70);
pub(crate) const CELL_NAN: RGBAColor = gray(0xC8);

/// Alpha of the min–max bands.
pub(crate) const BAND_ALPHA: f64 = 0.2;

// ---------------------------------------------------------------------------------------------
// Sizes (logical pixels; the PNG is rendered at exactly these pixel sizes). Font sizes are
// em sizes: a line of text is 1.164 × the size high (DejaVu ascent + descent).
// ---------------------------------------------------------------------------------------------

/// Size of one line-plot panel.
pub(crate) const PANEL_W: f64 = 900.0;
pub(crate) const PANEL_H: f64 = 700.0;

pub(crate) const FIG_TITLE_SIZE: f64 = 34.0;
pub(crate) const FIG_SUBTITLE_SIZE: f64 = 24.0;
pub(crate) const PANEL_TITLE_SIZE: f64 = 28.0;
pub(crate) const AXIS_LABEL_SIZE: f64 = 28.0;
pub(crate) const TICK_SIZE: f64 = 23.0;
pub(crate) const LEGEND_SIZE: f64 = 23.0;
pub(crate) const HEAT_VALUE_SIZE: f64 = 27.0;
pub(crate) const HEAT_LABEL_SIZE: f64 = 22.0;
pub(crate) const COLORBAR_LABEL_SIZE: f64 = 19.0;
/// Smallest size a title or label is shrunk to before it is shortened with an ellipsis.
pub(crate) const MIN_TEXT_SIZE: f64 = 16.0;

pub(crate) const LINE_WIDTH: f64 = 3.0;
pub(crate) const REFERENCE_WIDTH: f64 = 2.0;
pub(crate) const FRAME_WIDTH: f64 = 1.5;
pub(crate) const GRID_WIDTH: f64 = 1.0;
pub(crate) const TICK_LEN: f64 = 7.0;
pub(crate) const MINOR_TICK_LEN: f64 = 4.0;
pub(crate) const MARKER_RADIUS: f64 = 4.5;
/// Dash pattern (on, off) of dashed series.
pub(crate) const SERIES_DASH: (f64, f64) = (14.0, 8.0);
/// Dash pattern (on, off) of the reference line.
pub(crate) const REFERENCE_DASH: (f64, f64) = (10.0, 7.0);
/// Threshold lines (a limit the data are judged against): near-black, short dashes.
pub(crate) const THRESHOLD_LINE: RGBAColor = gray(0x20);
/// Dash pattern of threshold lines (on, off), in pixels at full scale.
pub(crate) const THRESHOLD_DASH: (f64, f64) = (4.0, 4.0);

// ---------------------------------------------------------------------------------------------
// Diverging colour map
// ---------------------------------------------------------------------------------------------

/// ColorBrewer RdBu (reversed so that positive is red), with pure white at 0.
const DIVERGING: [(u8, u8, u8); 9] = [
    (0x21, 0x66, 0xAC), // -1
    (0x43, 0x93, 0xC3),
    (0x92, 0xC5, 0xDE),
    (0xD1, 0xE5, 0xF0),
    (0xFF, 0xFF, 0xFF), // 0
    (0xFD, 0xDB, 0xC7),
    (0xF4, 0xA5, 0x82),
    (0xD6, 0x60, 0x4D),
    (0xB2, 0x18, 0x2B), // +1
];

/// Colour for `t` in [-1, 1]: blue (negative) → white (0) → red (positive). Clamped.
pub(crate) fn diverging(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let pos = (t + 1.0) * 0.5 * (DIVERGING.len() - 1) as f64;
    let i = (pos.floor() as usize).min(DIVERGING.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (DIVERGING[i], DIVERGING[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Relative luminance (sRGB, 0 = black, 1 = white).
pub(crate) fn luminance(c: RGBColor) -> f64 {
    let lin = |v: u8| {
        let v = v as f64 / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

/// Black or white, whichever reads better on `background`.
pub(crate) fn text_on(background: RGBColor) -> RGBAColor {
    if luminance(background) < 0.30 {
        WHITE
    } else {
        INK
    }
}
