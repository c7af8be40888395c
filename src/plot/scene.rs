//! A backend-independent display list in logical pixels, and the one renderer (generic
//! over plotters' `DrawingBackend`) that draws it into a bitmap or an SVG.
//!
//! Laying out first and drawing second means every size is measured before anything is
//! drawn (so nothing collides or gets cut off) and the PNG and the SVG come from the very
//! same geometry.

use ab_glyph::{Font, FontRef, Glyph, GlyphId, PxScale, ScaleFont, point};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, FontTransform, RGBAColor};

use super::PlotError;
use super::style::{FONT_FAMILY, WHITE, font};

/// Horizontal alignment of text relative to its anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HAlign {
    Left,
    Center,
    Right,
}

/// Vertical alignment of text relative to its anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VAlign {
    /// Top of the ascenders at the anchor.
    Top,
    /// Middle of the capitals/digits at the anchor (for tick labels).
    Middle,
    /// Bottom of the descenders at the anchor.
    Bottom,
}

/// One drawing primitive, in logical pixels.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    /// Polyline with round joins.
    Line {
        pts: Vec<(f64, f64)>,
        color: RGBAColor,
        width: f64,
    },
    /// Filled polygon (may be translucent).
    Polygon {
        pts: Vec<(f64, f64)>,
        color: RGBAColor,
    },
    /// Filled axis-aligned rectangle.
    Rect {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        color: RGBAColor,
    },
    /// Filled circle.
    Circle {
        x: f64,
        y: f64,
        r: f64,
        color: RGBAColor,
    },
    /// Text; `vertical` text reads bottom to top (rotated 90° counter-clockwise) and its
    /// alignment refers to its own frame.
    Text {
        text: String,
        x: f64,
        y: f64,
        size: f64,
        color: RGBAColor,
        h: HAlign,
        v: VAlign,
        vertical: bool,
    },
}

/// A figure as a list of primitives.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scene {
    pub width: u32,
    pub height: u32,
    pub items: Vec<Item>,
}

impl Scene {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            items: Vec::new(),
        }
    }

    pub fn line(&mut self, pts: Vec<(f64, f64)>, color: RGBAColor, width: f64) {
        if pts.len() >= 2 {
            self.items.push(Item::Line { pts, color, width });
        }
    }

    /// A dashed polyline; the dash pattern runs on continuously across vertices.
    pub(crate) fn dashed_line(
        &mut self,
        pts: &[(f64, f64)],
        color: RGBAColor,
        width: f64,
        dash: (f64, f64),
    ) {
        for d in split_dashes(pts, dash.0, dash.1) {
            self.line(d, color, width);
        }
    }

    pub(crate) fn polygon(&mut self, pts: Vec<(f64, f64)>, color: RGBAColor) {
        if pts.len() >= 3 {
            self.items.push(Item::Polygon { pts, color });
        }
    }

    pub fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: RGBAColor) {
        self.items.push(Item::Rect {
            x0: x0.min(x1),
            y0: y0.min(y1),
            x1: x0.max(x1),
            y1: y0.max(y1),
            color,
        });
    }

    /// Rectangle outline of stroke width `w`, drawn inside-centred on the given edges.
    pub(crate) fn rect_outline(
        &mut self,
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        color: RGBAColor,
        w: f64,
    ) {
        let h = w / 2.0;
        self.rect(x0 - h, y0 - h, x1 + h, y0 + h, color);
        self.rect(x0 - h, y1 - h, x1 + h, y1 + h, color);
        self.rect(x0 - h, y0 + h, x0 + h, y1 - h, color);
        self.rect(x1 - h, y0 + h, x1 + h, y1 - h, color);
    }

    pub(crate) fn circle(&mut self, x: f64, y: f64, r: f64, color: RGBAColor) {
        self.items.push(Item::Circle { x, y, r, color });
    }

    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        text: impl Into<String>,
        x: f64,
        y: f64,
        size: f64,
        color: RGBAColor,
        h: HAlign,
        v: VAlign,
    ) {
        self.push_text(text.into(), [x, y, size], color, h, v, false);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vertical_text(
        &mut self,
        text: impl Into<String>,
        x: f64,
        y: f64,
        size: f64,
        color: RGBAColor,
        h: HAlign,
        v: VAlign,
    ) {
        self.push_text(text.into(), [x, y, size], color, h, v, true);
    }

    /// Adds a text item at (x, y) of the given size; empty text adds nothing.
    fn push_text(
        &mut self,
        text: String,
        [x, y, size]: [f64; 3],
        color: RGBAColor,
        h: HAlign,
        v: VAlign,
        vertical: bool,
    ) {
        if !text.is_empty() {
            self.items.push(Item::Text {
                text,
                x,
                y,
                size,
                color,
                h,
                v,
                vertical,
            });
        }
    }

    /// All text items (for tests).
    #[cfg(test)]
    pub(crate) fn texts(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Text metrics
// ---------------------------------------------------------------------------------------------

/// DejaVu Sans metrics, in em.
const ASCENT: f64 = 0.928;
const DESCENT: f64 = 0.236;
const CAP_HEIGHT: f64 = 0.729;
/// plotters' SVG backend writes `font-size = size / 1.24`.
const SVG_SIZE_PER_EM: f64 = 1.24;

/// Height of a line of text of em size `size` (ascender top to descender bottom).
pub(crate) fn line_height(size: f64) -> f64 {
    size * (ASCENT + DESCENT)
}

/// ab_glyph's scale is the ascent-to-descent height; ours is the em.
fn px_scale(size: f64) -> PxScale {
    PxScale::from((size * (ASCENT + DESCENT)) as f32)
}

/// Glyphs of `text` laid out on a baseline at y = 0 starting at x = 0, and the advance width.
fn layout_glyphs(font: &FontRef<'static>, text: &str, size: f64) -> (Vec<Glyph>, f64) {
    let scale = px_scale(size);
    let sf = font.as_scaled(scale);
    let mut x = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let id = font.glyph_id(ch);
        if let Some(p) = prev {
            x += sf.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(x, 0.0)));
        x += sf.h_advance(id);
        prev = Some(id);
    }
    (glyphs, x as f64)
}

/// Advance width of `text` at em size `size`, in logical pixels.
pub(crate) fn text_width(text: &str, size: f64) -> Result<f64, PlotError> {
    if text.is_empty() {
        return Ok(0.0);
    }
    Ok(layout_glyphs(font()?, text, size).1)
}

/// Largest size ≤ `size` (and ≥ `min`) at which `text` fits in `max_w`; if it does not fit
/// even at `min`, the text is shortened with an ellipsis. Returns (size, text).
pub(crate) fn fit_text(
    text: &str,
    size: f64,
    min: f64,
    max_w: f64,
) -> Result<(f64, String), PlotError> {
    let w = text_width(text, size)?;
    if w <= max_w {
        return Ok((size, text.to_string()));
    }
    let scaled = ((size * max_w / w) * 2.0).floor() / 2.0;
    if scaled >= min && text_width(text, scaled)? <= max_w {
        return Ok((scaled, text.to_string()));
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if text_width(&s, min)? <= max_w {
            return Ok((min, s));
        }
    }
    Ok((min, String::new()))
}

// ---------------------------------------------------------------------------------------------
// Geometry helpers
// ---------------------------------------------------------------------------------------------

/// Splits a polyline into dashes of length `on` separated by gaps of length `off`.
pub(crate) fn split_dashes(pts: &[(f64, f64)], on: f64, off: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    if pts.len() < 2 || on <= 0.0 {
        if pts.len() >= 2 {
            out.push(pts.to_vec());
        }
        return out;
    }
    let off = off.max(0.0);
    let mut drawing = true;
    let mut left = on; // length left in the current dash or gap
    let mut cur = vec![pts[0]];
    for w in pts.windows(2) {
        let (mut a, b) = (w[0], w[1]);
        let mut seg = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        while seg > left {
            let t = left / seg;
            let p = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            if drawing {
                cur.push(p);
                out.push(std::mem::take(&mut cur));
                left = off;
            } else {
                cur = vec![p];
                left = on;
            }
            drawing = !drawing;
            seg -= ((p.0 - a.0).powi(2) + (p.1 - a.1).powi(2)).sqrt();
            a = p;
            if left <= 0.0 {
                // Zero-length gap: continue drawing immediately.
                left = on;
                drawing = true;
                cur = vec![a];
            }
        }
        left -= seg;
        if drawing {
            cur.push(b);
        }
    }
    if drawing && cur.len() >= 2 {
        out.push(cur);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// What the backend is; text placement and stroke drawing differ slightly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Raster,
    Svg,
}

fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Draws `scene` onto `area`, scaling logical pixels by `k`.
pub(crate) fn render<DB: DrawingBackend>(
    scene: &Scene,
    area: &DrawingArea<DB, Shift>,
    k: f64,
    target: Target,
) -> Result<(), PlotError> {
    let p = |(x, y): (f64, f64)| ((x * k).round() as i32, (y * k).round() as i32);
    // A bitmap starts white (`scene_to_rgb`); filling it again would cost a pass over it.
    if target == Target::Svg {
        area.fill(&WHITE).map_err(draw_err)?;
    }
    for item in &scene.items {
        match item {
            Item::Line { pts, color, width } => {
                let w = width * k;
                match target {
                    Target::Svg => {
                        let style = color.stroke_width(w.round().max(1.0) as u32);
                        area.draw(&PathElement::new(
                            pts.iter().map(|&q| p(q)).collect::<Vec<_>>(),
                            style,
                        ))
                        .map_err(draw_err)?;
                    }
                    Target::Raster if w < 1.5 => {
                        let style = color.stroke_width(1);
                        let points: Vec<_> = pts.iter().map(|&q| p(q)).collect();
                        area.draw(&PathElement::new(points, style))
                            .map_err(draw_err)?;
                    }
                    Target::Raster => {
                        // Each segment as a quad, plus round joins and caps: robust for any
                        // polyline (no self-intersecting outline polygons).
                        let h = w / 2.0;
                        for s in pts.windows(2) {
                            let (a, b) = ((s[0].0 * k, s[0].1 * k), (s[1].0 * k, s[1].1 * k));
                            let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
                            if len < 1e-9 {
                                continue;
                            }
                            let (nx, ny) = (-(b.1 - a.1) / len * h, (b.0 - a.0) / len * h);
                            let quad = [
                                (a.0 + nx, a.1 + ny),
                                (b.0 + nx, b.1 + ny),
                                (b.0 - nx, b.1 - ny),
                                (a.0 - nx, a.1 - ny),
                            ]
                            .map(|(x, y)| (x.round() as i32, y.round() as i32));
                            area.draw(&Polygon::new(quad.to_vec(), color.filled()))
                                .map_err(draw_err)?;
                        }
                        if w >= 3.0 {
                            let r = (h - 0.5).round().max(1.0) as i32;
                            for &q in pts {
                                area.draw(&Circle::new(p(q), r, color.filled()))
                                    .map_err(draw_err)?;
                            }
                        }
                    }
                }
            }
            Item::Polygon { pts, color } => {
                let points: Vec<_> = pts.iter().map(|&q| p(q)).collect();
                area.draw(&Polygon::new(points, color.filled()))
                    .map_err(draw_err)?;
            }
            Item::Rect {
                x0,
                y0,
                x1,
                y1,
                color,
            } => {
                let (a, mut b) = (p((*x0, *y0)), p((*x1, *y1)));
                if target == Target::Raster {
                    // The bitmap fills both corner pixels inclusively.
                    b = ((b.0 - 1).max(a.0), (b.1 - 1).max(a.1));
                }
                area.draw(&Rectangle::new([a, b], color.filled()))
                    .map_err(draw_err)?;
            }
            Item::Circle { x, y, r, color } => {
                let r = (r * k).round().max(1.0) as i32;
                area.draw(&Circle::new(p((*x, *y)), r, color.filled()))
                    .map_err(draw_err)?;
            }
            Item::Text {
                text,
                x,
                y,
                size,
                color,
                h,
                v,
                vertical,
            } => match target {
                Target::Raster => raster_text(
                    area,
                    text,
                    (x * k, y * k),
                    size * k,
                    *color,
                    (*h, *v),
                    *vertical,
                )?,
                Target::Svg => svg_text(
                    area,
                    text,
                    (x * k, y * k),
                    size * k,
                    *color,
                    *h,
                    *v,
                    *vertical,
                )?,
            },
        }
    }
    Ok(())
}

/// Downward offset (in the text's own frame) from the anchor to the baseline.
fn baseline_offset(v: VAlign, em: f64) -> f64 {
    match v {
        VAlign::Top => ASCENT * em,
        VAlign::Middle => CAP_HEIGHT * em / 2.0,
        VAlign::Bottom => -DESCENT * em,
    }
}

/// Rasterises text with ab_glyph (sub-pixel glyph positions, proper side bearings) and
/// blends it pixel by pixel, so it stays in drawing order with everything else.
#[allow(clippy::too_many_arguments)]
fn raster_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (ax, ay): (f64, f64),
    size: f64,
    color: RGBAColor,
    (h, v): (HAlign, VAlign),
    vertical: bool,
) -> Result<(), PlotError> {
    let font = font()?;
    let (glyphs, width) = layout_glyphs(font, text, size);
    let start = match h {
        HAlign::Left => 0.0,
        HAlign::Center => -width / 2.0,
        HAlign::Right => -width,
    };
    let down = baseline_offset(v, size);
    // Work relative to the rounded anchor so that rotation maps pixels onto pixels.
    let (ox, oy) = (ax.round(), ay.round());
    let (fx, fy) = if vertical {
        (oy - ay, ax - ox)
    } else {
        (ax - ox, ay - oy)
    };
    let (sx, sy) = ((start + fx) as f32, (down + fy) as f32);
    let (ox, oy) = (ox as i32, oy as i32);
    let mut result = Ok(());
    for mut g in glyphs {
        g.position = point(g.position.x + sx, g.position.y + sy);
        let Some(outline) = font.outline_glyph(g) else {
            continue;
        };
        let b = outline.px_bounds();
        let (bx, by) = (b.min.x as i32, b.min.y as i32);
        outline.draw(|px, py, c| {
            if result.is_err() || c <= 0.0 {
                return;
            }
            let (lx, ly) = (bx + px as i32, by + py as i32);
            let pos = if vertical {
                (ox + ly, oy - lx - 1)
            } else {
                (ox + lx, oy + ly)
            };
            let pc = RGBAColor(color.0, color.1, color.2, color.3 * c.min(1.0) as f64);
            if let Err(e) = area.draw_pixel(pos, &pc) {
                result = Err(draw_err(e));
            }
        });
        result.clone()?;
    }
    result
}

/// Writes text as an SVG `<text>` element (through plotters), positioned with the same
/// metrics as the bitmap.
#[allow(clippy::too_many_arguments)]
fn svg_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (ax, ay): (f64, f64),
    size: f64,
    color: RGBAColor,
    h: HAlign,
    v: VAlign,
    vertical: bool,
) -> Result<(), PlotError> {
    // plotters' SVG backend puts the baseline of top-anchored text 0.76 em below the anchor.
    let down = baseline_offset(v, size) - 0.76 * size;
    let hpos = match h {
        HAlign::Left => HPos::Left,
        HAlign::Center => HPos::Center,
        HAlign::Right => HPos::Right,
    };
    let mut font = FontDesc::new(
        FontFamily::Name(FONT_FAMILY),
        size * SVG_SIZE_PER_EM,
        FontStyle::Normal,
    );
    let pos = if vertical {
        // Reading bottom to top: the text's "down" is the screen's +x.
        font = font.transform(FontTransform::Rotate270);
        (ax + down, ay)
    } else {
        (ax, ay + down)
    };
    let style = font.color(&color).pos(Pos::new(hpos, VPos::Top));
    area.draw_text(text, &style, (pos.0.round() as i32, pos.1.round() as i32))
        .map_err(draw_err)
}

/// Supersampling factor of the bitmap (anti-aliases lines and polygons).
const SUPERSAMPLE: u32 = 2;
/// Above this many pixels the bitmap is drawn without supersampling (memory).
const SUPERSAMPLE_MAX_PIXELS: u64 = 16_000_000;
/// Largest bitmap drawn at all.
const MAX_PIXELS: u64 = 120_000_000;
/// Resolution written into the PNG header.
const PNG_DPI: f64 = 150.0;

/// Renders `scene` to PNG bytes at `scene.width × scene.height` pixels.
pub(crate) fn scene_to_png(scene: &Scene) -> Result<Vec<u8>, PlotError> {
    let rgb = scene_to_rgb(scene)?;
    encode_png(&rgb, scene.width, scene.height)
}

/// The RGB pixels of `scene` (row-major), drawn at `SUPERSAMPLE`× with plotters'
/// `BitMapBackend` on one canvas and box-filtered down. (Drawing the canvas in horizontal
/// strips in parallel, with a copy of plotters' polygon fill, was measured and removed: no
/// measurable change in the wall time of `gain`, `audit` or `report --all`; see
/// `bench/README.md`.)
fn scene_to_rgb(scene: &Scene) -> Result<Vec<u8>, PlotError> {
    let (w, h) = (scene.width, scene.height);
    let s = supersampling(w, h)?;
    let (bw, bh) = (w * s, h * s);
    let mut canvas = vec![255u8; bw as usize * bh as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut canvas, (bw, bh)).into_drawing_area();
        render(scene, &root, s as f64, Target::Raster)?;
        root.present().map_err(draw_err)?;
    }
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    downsample_into(&canvas, bw as usize, bh as usize, s as usize, &mut rgb);
    Ok(rgb)
}

/// The supersampling factor for a `w × h` bitmap, or an error if it is empty or too large.
fn supersampling(w: u32, h: u32) -> Result<u32, PlotError> {
    let pixels = w as u64 * h as u64;
    if pixels == 0 || pixels > MAX_PIXELS {
        return Err(PlotError::Invalid(format!(
            "a {w} × {h} pixel image is too large to draw"
        )));
    }
    Ok(if pixels <= SUPERSAMPLE_MAX_PIXELS {
        SUPERSAMPLE
    } else {
        1
    })
}

/// Renders `scene` to an SVG document of `scene.width × scene.height` pixels.
pub(crate) fn scene_to_svg(scene: &Scene) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (scene.width, scene.height)).into_drawing_area();
        render(scene, &root, 1.0, Target::Svg)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

/// Box-filter downsampling of an RGB buffer by an integer factor into `out` (bw/s × bh/s
/// pixels): each output pixel is the rounded mean of an s×s block. The s rows of a block are
/// first added column by column (a loop the compiler vectorises), then groups of s pixels are
/// added.
fn downsample_into(buf: &[u8], bw: usize, bh: usize, s: usize, out: &mut [u8]) {
    match s {
        1 => out.copy_from_slice(buf),
        // The factor as a constant, so that the block sums unroll: the gain figure's PNG took
        // 44 ms with a variable factor, 36 ms with this.
        SUPERSAMPLE_USIZE => downsample_by(buf, bw, bh, SUPERSAMPLE_USIZE, out),
        _ => downsample_by(buf, bw, bh, s, out),
    }
}

const SUPERSAMPLE_USIZE: usize = SUPERSAMPLE as usize;

#[inline(always)]
fn downsample_by(buf: &[u8], bw: usize, bh: usize, s: usize, out: &mut [u8]) {
    let (w, h) = (bw / s, bh / s);
    let n = (s * s) as u32;
    let mut column_sums = vec![0u32; bw * 3];
    for (out_row, block) in out
        .chunks_exact_mut(w * 3)
        .zip(buf.chunks_exact(bw * 3 * s).take(h))
    {
        column_sums.fill(0);
        for row in block.chunks_exact(bw * 3) {
            for (sum, &value) in column_sums.iter_mut().zip(row) {
                *sum += u32::from(value);
            }
        }
        for (pixel, sums) in out_row
            .chunks_exact_mut(3)
            .zip(column_sums.chunks_exact(3 * s))
        {
            for (channel, value) in pixel.iter_mut().enumerate() {
                let sum: u32 = sums.iter().skip(channel).step_by(3).sum();
                *value = ((sum + n / 2) / n) as u8;
            }
        }
    }
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, PlotError> {
    let enc_err = |e: png::EncodingError| PlotError::Encode(e.to_string());
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let ppm = (PNG_DPI / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut writer = enc.write_header().map_err(enc_err)?;
        writer.write_image_data(rgb).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_each_block_with_rounding() {
        // A 4×2 RGB image (two 2×2 blocks): block means worked out by hand.
        #[rustfmt::skip]
        let image: [u8; 24] = [
            0, 10, 255,   1, 20, 255,     7, 0, 100,   8, 0, 101,
            2, 30, 255,   2, 41, 254,     9, 0, 102,  10, 1, 103,
        ];
        // (0+1+2+2)/4 = 1.25 → 1; (10+20+30+41)/4 = 25.25 → 25; (255·3+254)/4 = 254.75 → 255;
        // (7+8+9+10)/4 = 8.5 → 9 (half up); 1/4 → 0; (100+101+102+103)/4 = 101.5 → 102.
        let downsample = |s: usize| {
            let mut out = vec![0; 24 / (s * s)];
            downsample_into(&image, 4, 2, s, &mut out);
            out
        };
        assert_eq!(downsample(2), vec![1, 25, 255, 9, 0, 102]);
        assert_eq!(downsample(1), image.to_vec());
    }

    #[test]
    fn plot_dashes_cover_path_with_gaps() {
        let d = split_dashes(&[(0.0, 0.0), (10.0, 0.0), (30.0, 0.0)], 5.0, 5.0);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], vec![(0.0, 0.0), (5.0, 0.0)]);
        assert_eq!(d[1], vec![(10.0, 0.0), (15.0, 0.0)]);
        assert_eq!(d[2], vec![(20.0, 0.0), (25.0, 0.0)]);
    }

    #[test]
    fn plot_fit_text_shrinks_then_ellipsizes() {
        super::super::style::ensure_font().unwrap();
        let (s, t) = fit_text("short", 30.0, 16.0, 1000.0).unwrap();
        assert_eq!((s, t.as_str()), (30.0, "short"));
        let long = "a very long title ".repeat(10);
        let (s, t) = fit_text(&long, 30.0, 16.0, 300.0).unwrap();
        assert_eq!(s, 16.0);
        assert!(t.ends_with('…'));
        assert!(text_width(&t, s).unwrap() <= 300.0);
    }
}
