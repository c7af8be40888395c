//! Figure rendering: layout of line figures and heat maps into a [`Scene`], then the one
//! generic renderer draws it as PNG (bitmap backend, 2× supersampled) or SVG.

use plotters::style::{RGBAColor, RGBColor};

use super::PlotError;
use super::axis::{Axis, build_axis, format_value, to_axis};
use super::figure::{
    AxisScale, ColorScale, HeatmapFigure, HeatmapPanel, LineFigure, Panel, Series, ValueFormat,
};
use super::scene::{
    HAlign, Scene, VAlign, fit_text, line_height, scene_to_png, scene_to_svg, text_width,
};
use super::style::*;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Renders a line figure to PNG bytes (size: [`line_figure_size`]).
pub fn line_figure_png(fig: &LineFigure) -> Result<Vec<u8>, PlotError> {
    scene_to_png(&line_scene(fig)?)
}

/// Renders a line figure to an SVG document (same layout and size as the PNG).
pub fn line_figure_svg(fig: &LineFigure) -> Result<String, PlotError> {
    scene_to_svg(&line_scene(fig)?)
}

/// Renders a heat-map figure to PNG bytes.
pub fn heatmap_figure_png(fig: &HeatmapFigure) -> Result<Vec<u8>, PlotError> {
    scene_to_png(&heatmap_scene(fig)?)
}

/// Renders a heat-map figure to an SVG document (same layout and size as the PNG).
pub fn heatmap_figure_svg(fig: &HeatmapFigure) -> Result<String, PlotError> {
    scene_to_svg(&heatmap_scene(fig)?)
}

/// (columns, rows) of the panel grid of a line figure with `n` panels.
pub fn line_figure_grid(n: usize) -> (usize, usize) {
    let cols = if n <= 3 { n.max(1) } else { 2 };
    (cols, n.div_ceil(cols).max(1))
}

/// Pixel size (width, height) of the PNG/SVG of a line figure: 900 × 700 per panel plus a
/// header for the title and subtitle.
pub fn line_figure_size(fig: &LineFigure) -> (u32, u32) {
    let (cols, rows) = line_figure_grid(fig.panels.len());
    let header = header_height(&fig.title, fig.subtitle.as_deref());
    (
        (cols as f64 * PANEL_W) as u32,
        (header + rows as f64 * PANEL_H).round() as u32,
    )
}

// ---------------------------------------------------------------------------------------------
// Figure header (title + subtitle)
// ---------------------------------------------------------------------------------------------

const HEADER_TOP: f64 = 18.0;

fn has_text(s: Option<&str>) -> bool {
    s.is_some_and(|s| !s.trim().is_empty())
}

fn header_height(title: &str, subtitle: Option<&str>) -> f64 {
    let (t, s) = (has_text(Some(title)), has_text(subtitle));
    let mut h = HEADER_TOP;
    if t {
        h += line_height(FIG_TITLE_SIZE) + 4.0;
    }
    if s {
        h += line_height(FIG_SUBTITLE_SIZE) + 4.0;
    }
    if t || s { h + 8.0 } else { 4.0 }
}

fn draw_header(
    scene: &mut Scene,
    title: &str,
    subtitle: Option<&str>,
    width: f64,
) -> Result<(), PlotError> {
    let mut y = HEADER_TOP;
    let max_w = width - 60.0;
    if has_text(Some(title)) {
        let (size, text) = fit_text(title.trim(), FIG_TITLE_SIZE, MIN_TEXT_SIZE, max_w)?;
        let y_text = y + (line_height(FIG_TITLE_SIZE) - line_height(size)) / 2.0;
        scene.text(
            text,
            width / 2.0,
            y_text,
            size,
            INK,
            HAlign::Center,
            VAlign::Top,
        );
        y += line_height(FIG_TITLE_SIZE) + 4.0;
    }
    if let Some(sub) = subtitle.filter(|s| !s.trim().is_empty()) {
        let (size, text) = fit_text(sub.trim(), FIG_SUBTITLE_SIZE, MIN_TEXT_SIZE, max_w)?;
        let y_text = y + (line_height(FIG_SUBTITLE_SIZE) - line_height(size)) / 2.0;
        scene.text(
            text,
            width / 2.0,
            y_text,
            size,
            INK_SOFT,
            HAlign::Center,
            VAlign::Top,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Line figures
// ---------------------------------------------------------------------------------------------

/// A series reduced to what can be drawn, in axis space.
struct PreparedSeries<'a> {
    series: &'a Series,
    color: RGBColor,
    /// Runs of consecutive drawable points (a skipped point breaks the line).
    runs: Vec<Vec<(f64, f64)>>,
    /// Runs of consecutive drawable (x, low, high) band entries.
    bands: Vec<Vec<(f64, f64, f64)>>,
}

struct PreparedPanel<'a> {
    panel: &'a Panel,
    series: Vec<PreparedSeries<'a>>,
    x: Axis,
    y: Axis,
    /// Reference line at this y (axis space), with its label.
    reference: Option<(f64, &'a str)>,
    /// Threshold line at this y (axis space), with its label.
    threshold: Option<(f64, &'a str)>,
}

fn prepare_panel<'a>(panel: &'a Panel) -> Result<PreparedPanel<'a>, PlotError> {
    let (xs, ys) = (panel.x_scale, panel.y_scale);
    let mut xv = Vec::new();
    let mut yv = Vec::new();
    let mut integer_x = true;
    let mut series = Vec::new();
    for s in &panel.series {
        let mut runs = Vec::new();
        let mut cur = Vec::new();
        for &(x, y) in &s.points {
            match (to_axis(xs, x), to_axis(ys, y)) {
                (Some(ax), Some(ay)) => {
                    cur.push((ax, ay));
                    xv.push(ax);
                    yv.push(ay);
                    integer_x &= x.fract() == 0.0;
                }
                _ => {
                    if !cur.is_empty() {
                        runs.push(std::mem::take(&mut cur));
                    }
                }
            }
        }
        if !cur.is_empty() {
            runs.push(cur);
        }
        let mut bands = Vec::new();
        let mut cur = Vec::new();
        for &(x, lo, hi) in s.band.iter().flatten() {
            match (to_axis(xs, x), to_axis(ys, lo), to_axis(ys, hi)) {
                (Some(ax), Some(al), Some(ah)) => {
                    cur.push((ax, al.min(ah), al.max(ah)));
                    xv.push(ax);
                    yv.extend([al, ah]);
                    integer_x &= x.fract() == 0.0;
                }
                _ => {
                    if !cur.is_empty() {
                        bands.push(std::mem::take(&mut cur));
                    }
                }
            }
        }
        if !cur.is_empty() {
            bands.push(cur);
        }
        series.push(PreparedSeries {
            series: s,
            color: series_color(&s.style.color),
            runs,
            bands,
        });
    }
    if xv.is_empty() {
        return Err(PlotError::NoData(panel.title.clone()));
    }
    let mut horizontal = |line: Option<&'a (f64, String)>| {
        line.and_then(|(v, label)| {
            let t = to_axis(ys, *v)?;
            yv.push(t);
            Some((t, label.as_str()))
        })
    };
    let reference = horizontal(panel.reference_line.as_ref());
    let threshold = horizontal(panel.threshold_line.as_ref());
    let x = build_axis(xs, &xv, 0.02, integer_x && xs == AxisScale::Linear);
    let y_margin = if ys == AxisScale::Log10 { 0.04 } else { 0.05 };
    let y = build_axis(ys, &yv, y_margin, false);
    Ok(PreparedPanel {
        panel,
        series,
        x,
        y,
        reference,
        threshold,
    })
}

#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn w(&self) -> f64 {
        self.x1 - self.x0
    }
    fn h(&self) -> f64 {
        self.y1 - self.y0
    }
    fn contains(&self, (x, y): (f64, f64), pad: f64) -> bool {
        x >= self.x0 - pad && x <= self.x1 + pad && y >= self.y0 - pad && y <= self.y1 + pad
    }
}

/// Axis space → pixels inside the plot frame.
struct Mapper<'a> {
    frame: Rect,
    x: &'a Axis,
    y: &'a Axis,
}

impl Mapper<'_> {
    fn px(&self, x: f64) -> f64 {
        self.frame.x0 + self.x.frac(x) * self.frame.w()
    }
    fn py(&self, y: f64) -> f64 {
        self.frame.y1 - self.y.frac(y) * self.frame.h()
    }
    fn p(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (self.px(x), self.py(y))
    }
}

struct LegendEntry {
    label: String,
    color: RGBAColor,
    width: f64,
    dash: Option<(f64, f64)>,
    marker: bool,
    band: bool,
}

struct LegendBox {
    entries: Vec<LegendEntry>,
    size: f64,
    w: f64,
    h: f64,
}

const LEGEND_PAD: f64 = 12.0;
const LEGEND_SAMPLE: f64 = 46.0;
const LEGEND_GAP: f64 = 10.0;
const LEGEND_INSET: f64 = 12.0;

impl LegendBox {
    fn row_h(&self) -> f64 {
        self.size * 1.45
    }

    fn build(p: &PreparedPanel<'_>, max_w: f64) -> Result<Option<LegendBox>, PlotError> {
        let mut entries = Vec::new();
        for s in &p.series {
            if s.series.label.trim().is_empty() {
                continue;
            }
            entries.push(LegendEntry {
                label: s.series.label.trim().to_string(),
                color: rgba(s.color, 1.0),
                width: LINE_WIDTH,
                dash: s.series.style.dashed.then_some(SERIES_DASH),
                marker: s.series.style.markers,
                band: !s.bands.is_empty(),
            });
        }
        for (line, color, dash) in [
            (p.reference, REFERENCE_LINE, REFERENCE_DASH),
            (p.threshold, THRESHOLD_LINE, THRESHOLD_DASH),
        ] {
            if let Some((_, label)) = line
                && !label.trim().is_empty()
            {
                entries.push(LegendEntry {
                    label: label.trim().to_string(),
                    color,
                    width: REFERENCE_WIDTH,
                    dash: Some(dash),
                    marker: false,
                    band: false,
                });
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let fixed = 2.0 * LEGEND_PAD + LEGEND_SAMPLE + LEGEND_GAP;
        let text_max = (max_w - fixed).max(40.0);
        let mut widest = 0.0f64;
        for e in &entries {
            widest = widest.max(text_width(&e.label, LEGEND_SIZE)?);
        }
        let mut size = LEGEND_SIZE;
        if widest > text_max {
            size = (LEGEND_SIZE * text_max / widest).max(14.0).floor();
            widest = 0.0;
            for e in &mut entries {
                let (_, t) = fit_text(&e.label, size, size, text_max)?;
                e.label = t;
                widest = widest.max(text_width(&e.label, size)?);
            }
        }
        let mut lb = LegendBox {
            entries,
            size,
            w: fixed + widest,
            h: 0.0,
        };
        lb.h = 2.0 * (LEGEND_PAD - 4.0) + lb.entries.len() as f64 * lb.row_h();
        Ok(Some(lb))
    }

    fn draw(&self, scene: &mut Scene, x: f64, y: f64) {
        scene.rect(x, y, x + self.w, y + self.h, LEGEND_BG);
        scene.rect_outline(x, y, x + self.w, y + self.h, LEGEND_BORDER, 1.0);
        let row_h = self.row_h();
        for (i, e) in self.entries.iter().enumerate() {
            let cy = y + LEGEND_PAD - 4.0 + (i as f64 + 0.5) * row_h;
            let (sx0, sx1) = (x + LEGEND_PAD, x + LEGEND_PAD + LEGEND_SAMPLE);
            if e.band {
                let half = (row_h * 0.32).min(11.0);
                let c = RGBAColor(e.color.0, e.color.1, e.color.2, BAND_ALPHA);
                scene.rect(sx0, cy - half, sx1, cy + half, c);
            }
            let pts = [(sx0 + 2.0, cy), (sx1 - 2.0, cy)];
            match e.dash {
                Some(d) => {
                    // Centre the dash pattern in the sample.
                    let len = pts[1].0 - pts[0].0;
                    let n = ((len + d.1) / (d.0 + d.1)).floor().max(1.0);
                    let on = (len - (n - 1.0) * d.1) / n;
                    scene.dashed_line(&pts, e.color, e.width, (on, d.1));
                }
                None => scene.line(pts.to_vec(), e.color, e.width),
            }
            if e.marker {
                scene.circle((sx0 + sx1) / 2.0, cy, MARKER_RADIUS, e.color);
            }
            scene.text(
                e.label.clone(),
                sx1 + LEGEND_GAP,
                cy,
                self.size,
                INK,
                HAlign::Left,
                VAlign::Middle,
            );
        }
    }
}

/// Sample points (pixels) of everything drawn in the plot, with weights, used to find the
/// legend position that hides the least.
fn occupancy(p: &PreparedPanel<'_>, m: &Mapper<'_>) -> Vec<((f64, f64), f64)> {
    let mut out = Vec::new();
    for s in &p.series {
        for run in &s.runs {
            if run.len() == 1 {
                out.push((m.p(run[0]), 1.0));
            }
            for w in run.windows(2) {
                let (a, b) = (m.p(w[0]), m.p(w[1]));
                let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
                let n = (len / 3.0).ceil().max(1.0) as usize;
                for i in 0..=n {
                    let t = i as f64 / n as f64;
                    out.push(((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t), 1.0));
                }
            }
        }
        for band in &s.bands {
            for &(x, lo, hi) in band {
                let (px, plo, phi) = (m.px(x), m.py(lo), m.py(hi));
                let n = ((plo - phi).abs() / 6.0).ceil().max(1.0) as usize;
                for i in 0..=n {
                    out.push(((px, phi + (plo - phi) * i as f64 / n as f64), 0.15));
                }
            }
        }
    }
    for (y, _) in p.reference.iter().chain(&p.threshold) {
        let py = m.py(*y);
        let mut x = m.frame.x0;
        while x <= m.frame.x1 {
            out.push(((x, py), 0.3));
            x += 6.0;
        }
    }
    out
}

struct PanelLayout {
    frame: Rect,
    legend: Option<(LegendBox, f64, f64)>,
}

const PANEL_PAD: f64 = 18.0;

fn layout_panel(
    p: &PreparedPanel<'_>,
    bx: f64,
    by: f64,
    bw: f64,
    bh: f64,
) -> Result<PanelLayout, PlotError> {
    let panel = p.panel;
    let title_bottom = if panel.title.trim().is_empty() {
        by + 6.0
    } else {
        by + PANEL_PAD + line_height(PANEL_TITLE_SIZE)
    };
    let mut ytick_w = 0.0f64;
    for t in &p.y.ticks {
        ytick_w = ytick_w.max(text_width(&t.label, TICK_SIZE)?);
    }
    let last_xtick_w = match p.x.ticks.last() {
        Some(t) => text_width(&t.label, TICK_SIZE)?,
        None => 0.0,
    };
    let y_label_w = if panel.y_label.trim().is_empty() {
        0.0
    } else {
        line_height(AXIS_LABEL_SIZE) + 10.0
    };
    let x_label_h = if panel.x_label.trim().is_empty() {
        0.0
    } else {
        line_height(AXIS_LABEL_SIZE) + 6.0
    };
    let base = Rect {
        x0: bx + PANEL_PAD + y_label_w + ytick_w + 8.0 + TICK_LEN,
        y0: title_bottom + 18.0,
        x1: bx + bw - (last_xtick_w / 2.0 + 12.0).max(32.0),
        y1: by + bh - PANEL_PAD - x_label_h - line_height(TICK_SIZE) - 6.0 - TICK_LEN,
    };
    let legend = LegendBox::build(p, base.w() * 0.6)?;
    let Some(legend) = legend else {
        return Ok(PanelLayout {
            frame: base,
            legend: None,
        });
    };
    // Inside the frame, where it covers least.
    let m = Mapper {
        frame: base,
        x: &p.x,
        y: &p.y,
    };
    let occ = occupancy(p, &m);
    let (w, h, f, i) = (legend.w, legend.h, base, LEGEND_INSET);
    let candidates = [
        (f.x0 + i, f.y0 + i),                    // upper left
        (f.x1 - i - w, f.y0 + i),                // upper right
        (f.x1 - i - w, f.y1 - i - h),            // lower right
        (f.x0 + i, f.y1 - i - h),                // lower left
        ((f.x0 + f.x1 - w) / 2.0, f.y0 + i),     // upper centre
        ((f.x0 + f.x1 - w) / 2.0, f.y1 - i - h), // lower centre
    ];
    let mut best = (f64::INFINITY, candidates[0]);
    for &(lx, ly) in &candidates {
        let r = Rect {
            x0: lx,
            y0: ly,
            x1: lx + w,
            y1: ly + h,
        };
        let cost: f64 = occ
            .iter()
            .filter(|(q, _)| r.contains(*q, 4.0))
            .map(|(_, w)| w)
            .sum();
        if cost < best.0 - 1e-9 {
            best = (cost, (lx, ly));
        }
    }
    let fits_inside = h <= base.h() - 2.0 * i && w <= base.w() - 2.0 * i;
    if best.0 < 1.0 && fits_inside {
        let (lx, ly) = best.1;
        return Ok(PanelLayout {
            frame: base,
            legend: Some((legend, lx, ly)),
        });
    }
    // Everywhere inside hides data: put the legend right of the frame.
    let outside_w = (bw * 0.38).min(legend.w.max(120.0));
    let legend = match LegendBox::build(p, outside_w)? {
        Some(l) => l,
        None => legend,
    };
    let frame = Rect {
        x1: bx + bw - PANEL_PAD - legend.w - 16.0,
        ..base
    };
    let (lx, ly) = (frame.x1 + 16.0, frame.y0);
    Ok(PanelLayout {
        frame,
        legend: Some((legend, lx, ly)),
    })
}

fn draw_line_panel(
    scene: &mut Scene,
    p: &PreparedPanel<'_>,
    bx: f64,
    by: f64,
    bw: f64,
    bh: f64,
) -> Result<(), PlotError> {
    let panel = p.panel;
    let layout = layout_panel(p, bx, by, bw, bh)?;
    let f = layout.frame;
    let m = Mapper {
        frame: f,
        x: &p.x,
        y: &p.y,
    };

    // Grid.
    for &t in &p.y.minor {
        let y = m.py(t);
        scene.line(vec![(f.x0, y), (f.x1, y)], GRID_MINOR, GRID_WIDTH);
    }
    for &t in &p.x.minor {
        let x = m.px(t);
        scene.line(vec![(x, f.y0), (x, f.y1)], GRID_MINOR, GRID_WIDTH);
    }
    for t in &p.y.ticks {
        let y = m.py(t.pos);
        scene.line(vec![(f.x0, y), (f.x1, y)], GRID_MAJOR, GRID_WIDTH);
    }
    for t in &p.x.ticks {
        let x = m.px(t.pos);
        scene.line(vec![(x, f.y0), (x, f.y1)], GRID_MAJOR, GRID_WIDTH);
    }

    // Reference and threshold lines.
    for (line, color, dash) in [
        (p.reference, REFERENCE_LINE, REFERENCE_DASH),
        (p.threshold, THRESHOLD_LINE, THRESHOLD_DASH),
    ] {
        if let Some((y, _)) = line {
            let y = m.py(y);
            scene.dashed_line(&[(f.x0, y), (f.x1, y)], color, REFERENCE_WIDTH, dash);
        }
    }

    // Bands, then lines, then markers.
    for s in &p.series {
        let c = rgba(s.color, BAND_ALPHA);
        for band in s.bands.iter().filter(|b| b.len() >= 2) {
            let mut pts: Vec<(f64, f64)> = band.iter().map(|&(x, lo, _)| m.p((x, lo))).collect();
            pts.extend(band.iter().rev().map(|&(x, _, hi)| m.p((x, hi))));
            scene.polygon(pts, c);
        }
    }
    for s in &p.series {
        let c = rgba(s.color, 1.0);
        for run in &s.runs {
            let pts: Vec<(f64, f64)> = run.iter().map(|&q| m.p(q)).collect();
            if pts.len() == 1 {
                scene.circle(pts[0].0, pts[0].1, LINE_WIDTH, c);
            } else if s.series.style.dashed {
                scene.dashed_line(&pts, c, LINE_WIDTH, SERIES_DASH);
            } else {
                scene.line(pts, c, LINE_WIDTH);
            }
        }
    }
    for s in p.series.iter().filter(|s| s.series.style.markers) {
        let c = rgba(s.color, 1.0);
        for &q in s.runs.iter().flatten() {
            let (x, y) = m.p(q);
            scene.circle(x, y, MARKER_RADIUS, c);
        }
    }

    // Frame, ticks, tick labels.
    scene.rect_outline(f.x0, f.y0, f.x1, f.y1, INK, FRAME_WIDTH);
    let tw = FRAME_WIDTH / 2.0;
    for t in &p.y.ticks {
        let y = m.py(t.pos);
        scene.rect(f.x0 - TICK_LEN, y - tw, f.x0, y + tw, INK);
        scene.text(
            &t.label,
            f.x0 - TICK_LEN - 6.0,
            y,
            TICK_SIZE,
            INK,
            HAlign::Right,
            VAlign::Middle,
        );
    }
    for &t in &p.y.minor {
        let y = m.py(t);
        scene.rect(f.x0 - MINOR_TICK_LEN, y - 0.5, f.x0, y + 0.5, INK);
    }
    for t in &p.x.ticks {
        let x = m.px(t.pos);
        scene.rect(x - tw, f.y1, x + tw, f.y1 + TICK_LEN, INK);
        scene.text(
            &t.label,
            x,
            f.y1 + TICK_LEN + 6.0,
            TICK_SIZE,
            INK,
            HAlign::Center,
            VAlign::Top,
        );
    }
    for &t in &p.x.minor {
        let x = m.px(t);
        scene.rect(x - 0.5, f.y1, x + 0.5, f.y1 + MINOR_TICK_LEN, INK);
    }

    // Axis labels.
    if !panel.x_label.trim().is_empty() {
        let (size, text) = fit_text(
            panel.x_label.trim(),
            AXIS_LABEL_SIZE,
            MIN_TEXT_SIZE,
            bw - 40.0,
        )?;
        let cx = centred_within(
            (f.x0 + f.x1) / 2.0,
            text_width(&text, size)?,
            bx + 10.0,
            bx + bw - 10.0,
        );
        scene.text(
            text,
            cx,
            by + bh - PANEL_PAD,
            size,
            INK,
            HAlign::Center,
            VAlign::Bottom,
        );
    }
    if !panel.y_label.trim().is_empty() {
        let (size, text) = fit_text(
            panel.y_label.trim(),
            AXIS_LABEL_SIZE,
            MIN_TEXT_SIZE,
            bh - 40.0,
        )?;
        let cy = centred_within(
            (f.y0 + f.y1) / 2.0,
            text_width(&text, size)?,
            by + 10.0,
            by + bh - 10.0,
        );
        scene.vertical_text(
            text,
            bx + PANEL_PAD,
            cy,
            size,
            INK,
            HAlign::Center,
            VAlign::Top,
        );
    }

    // Panel title, centred over the frame when it fits there.
    if !panel.title.trim().is_empty() {
        let (size, text) = fit_text(
            panel.title.trim(),
            PANEL_TITLE_SIZE,
            MIN_TEXT_SIZE,
            bw - 36.0,
        )?;
        let cx = centred_within(
            (f.x0 + f.x1) / 2.0,
            text_width(&text, size)?,
            bx + 18.0,
            bx + bw - 18.0,
        );
        let y = by + PANEL_PAD + (line_height(PANEL_TITLE_SIZE) - line_height(size)) / 2.0;
        scene.text(text, cx, y, size, INK, HAlign::Center, VAlign::Top);
    }

    if let Some((legend, lx, ly)) = &layout.legend {
        legend.draw(scene, *lx, *ly);
    }
    Ok(())
}

/// Centre `c` moved as little as possible so that [c − w/2, c + w/2] lies inside [lo, hi].
fn centred_within(c: f64, w: f64, lo: f64, hi: f64) -> f64 {
    if w >= hi - lo {
        return (lo + hi) / 2.0;
    }
    c.clamp(lo + w / 2.0, hi - w / 2.0)
}

pub(crate) fn line_scene(fig: &LineFigure) -> Result<Scene, PlotError> {
    ensure_font()?;
    if fig.panels.is_empty() {
        return Err(PlotError::Invalid("line figure has no panels".into()));
    }
    let prepared = fig
        .panels
        .iter()
        .map(prepare_panel)
        .collect::<Result<Vec<_>, _>>()?;
    let (w, h) = line_figure_size(fig);
    let (cols, _) = line_figure_grid(fig.panels.len());
    let header = header_height(&fig.title, fig.subtitle.as_deref());
    let mut scene = Scene::new(w, h);
    draw_header(&mut scene, &fig.title, fig.subtitle.as_deref(), w as f64)?;
    for (i, p) in prepared.iter().enumerate() {
        let (col, row) = (i % cols, i / cols);
        let (bx, by) = (col as f64 * PANEL_W, header + row as f64 * PANEL_H);
        draw_line_panel(&mut scene, p, bx, by, PANEL_W, PANEL_H)?;
    }
    Ok(scene)
}

// ---------------------------------------------------------------------------------------------
// Heat maps
// ---------------------------------------------------------------------------------------------

/// Sizes of one heat-map panel. Panels with equally large matrices get identical sizes.
struct HeatDims {
    rows: usize,
    cols: usize,
    cell: f64,
    value_size: f64,
    label_size: f64,
    row_label_w: f64,
    col_label_size: f64,
    row_annot_w: f64,
    col_annot_size: f64,
    has_col_annot: bool,
    cbar_label_w: f64,
}

const HEAT_PAD: f64 = 20.0;
const CBAR_W: f64 = 18.0;
const CBAR_GAP: f64 = 26.0;

fn matrix_dims(p: &HeatmapPanel) -> Result<(usize, usize), PlotError> {
    let rows = p.matrix.len();
    let cols = p.matrix.first().map_or(0, |r| r.len());
    if rows == 0 || cols == 0 || p.matrix.iter().any(|r| r.len() != cols) {
        return Err(PlotError::Invalid(format!(
            "heat-map panel '{}': the matrix must be non-empty and rectangular",
            p.title
        )));
    }
    Ok((rows, cols))
}

fn max_abs(p: &HeatmapPanel) -> f64 {
    let m = p
        .matrix
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    if m > 0.0 { m } else { 1.0 }
}

/// The smallest and largest finite values of a panel ((0, 0) when there is none).
fn finite_range(p: &HeatmapPanel) -> (f64, f64) {
    let (lo, hi) = p
        .matrix
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo <= hi { (lo, hi) } else { (0.0, 0.0) }
}

/// The position of `v` on the colour map ([`diverging`]'s argument): v / max|v| for a
/// diverging panel; (v − min)/(max − min) in [0, 1] for a sequential one (0.5 when every value
/// is equal).
fn color_position(p: &HeatmapPanel, v: f64) -> f64 {
    match p.color_scale {
        ColorScale::Diverging => v / max_abs(p),
        ColorScale::Sequential => {
            let (lo, hi) = finite_range(p);
            if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
        }
    }
}

/// Top, middle and bottom labels of the colour bar.
fn colorbar_labels(p: &HeatmapPanel) -> [String; 3] {
    let f = match p.value_format {
        ValueFormat::Fixed(d) => ValueFormat::Fixed(d),
        ValueFormat::Significant(n) => ValueFormat::Significant(n.min(3)),
    };
    match p.color_scale {
        ColorScale::Diverging => {
            let m = max_abs(p);
            [format_value(m, f), "0".to_string(), format_value(-m, f)]
        }
        ColorScale::Sequential => {
            let (lo, hi) = finite_range(p);
            [
                format_value(hi, f),
                format_value(lo + (hi - lo) / 2.0, f),
                format_value(lo, f),
            ]
        }
    }
}

fn row_label(p: &HeatmapPanel, i: usize) -> String {
    p.row_labels
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("out {}", i + 1))
}

fn col_label(p: &HeatmapPanel, j: usize) -> String {
    p.col_labels
        .get(j)
        .cloned()
        .unwrap_or_else(|| format!("in {}", j + 1))
}

/// Cell edge length for a matrix whose larger dimension is `n`.
fn cell_size(n: usize) -> f64 {
    match n {
        0..=4 => 120.0,
        5..=6 => 100.0,
        7..=8 => 84.0,
        9..=12 => 68.0,
        _ => 60.0,
    }
}

/// Largest size ≤ `size` at which every text fits in `max_w` (never below `min`).
fn common_fit<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    mut size: f64,
    max_w: f64,
    min: f64,
) -> Result<f64, PlotError> {
    for t in texts {
        let w = text_width(t, size)?;
        if w > max_w {
            size = ((size * max_w / w) * 2.0).floor() / 2.0;
        }
    }
    Ok(size.max(min))
}

fn heat_dims(fig: &HeatmapFigure) -> Result<Vec<HeatDims>, PlotError> {
    let mut dims = Vec::with_capacity(fig.panels.len());
    for p in &fig.panels {
        let (rows, cols) = matrix_dims(p)?;
        let cell = cell_size(rows.max(cols));
        let values: Vec<String> = p
            .matrix
            .iter()
            .flatten()
            .map(|&v| format_value(v, p.value_format))
            .collect();
        let value_size = common_fit(
            values.iter().map(String::as_str),
            HEAT_VALUE_SIZE.min(cell * 0.3),
            cell - 12.0,
            8.0,
        )?;
        let label_size = HEAT_LABEL_SIZE.min(cell * 0.4);
        let col_labels: Vec<String> = (0..cols).map(|j| col_label(p, j)).collect();
        let col_label_size = common_fit(
            col_labels.iter().map(String::as_str),
            label_size,
            cell - 8.0,
            8.0,
        )?;
        let col_annot_size = common_fit(
            p.col_annotations.iter().map(String::as_str),
            label_size,
            cell - 8.0,
            10.0,
        )?;
        dims.push(HeatDims {
            rows,
            cols,
            cell,
            value_size,
            label_size,
            row_label_w: 0.0,
            col_label_size,
            row_annot_w: 0.0,
            col_annot_size,
            has_col_annot: p.col_annotations.iter().any(|a| !a.is_empty()),
            cbar_label_w: 0.0,
        });
    }
    // Same cell size → same font sizes, so that equally large matrices look alike.
    for i in 0..dims.len() {
        let same = |d: &HeatDims| d.cell == dims[i].cell;
        let v = dims
            .iter()
            .filter(|d| same(d))
            .map(|d| d.value_size)
            .fold(f64::INFINITY, f64::min);
        let c = dims
            .iter()
            .filter(|d| same(d))
            .map(|d| d.col_label_size)
            .fold(f64::INFINITY, f64::min);
        let a = dims
            .iter()
            .filter(|d| same(d))
            .map(|d| d.col_annot_size)
            .fold(f64::INFINITY, f64::min);
        (
            dims[i].value_size,
            dims[i].col_label_size,
            dims[i].col_annot_size,
        ) = (v, c, a);
    }
    for (p, d) in fig.panels.iter().zip(&mut dims) {
        for i in 0..d.rows {
            d.row_label_w = d
                .row_label_w
                .max(text_width(&row_label(p, i), d.label_size)?);
        }
        for a in &p.row_annotations {
            d.row_annot_w = d.row_annot_w.max(text_width(a, d.label_size)?);
        }
        for l in colorbar_labels(p) {
            d.cbar_label_w = d.cbar_label_w.max(text_width(&l, COLORBAR_LABEL_SIZE)?);
        }
    }
    // ... and the same widths, so that their grids line up in the figure.
    for i in 0..dims.len() {
        let same = |d: &&HeatDims| d.cell == dims[i].cell && d.cols == dims[i].cols;
        let max = |f: fn(&HeatDims) -> f64| dims.iter().filter(same).map(f).fold(0.0, f64::max);
        let row_label_w = max(|d| d.row_label_w);
        let row_annot_w = max(|d| d.row_annot_w);
        let cbar_label_w = max(|d| d.cbar_label_w);
        let has_col_annot = dims.iter().filter(same).any(|d| d.has_col_annot);
        let d = &mut dims[i];
        d.row_label_w = row_label_w;
        d.row_annot_w = row_annot_w;
        d.cbar_label_w = cbar_label_w;
        d.has_col_annot = has_col_annot;
    }
    Ok(dims)
}

impl HeatDims {
    /// Width of the panel's content: row labels, grid, annotations, colour bar.
    fn content_w(&self) -> f64 {
        HEAT_PAD
            + self.row_label_w
            + 10.0
            + self.cols as f64 * self.cell
            + if self.row_annot_w > 0.0 {
                12.0 + self.row_annot_w
            } else {
                0.0
            }
            + CBAR_GAP
            + CBAR_W
            + 10.0
            + self.cbar_label_w
            + HEAT_PAD
    }

    /// Offset of the top of the grid from the top of the panel.
    fn grid_top(&self) -> f64 {
        14.0 + line_height(PANEL_TITLE_SIZE) + 12.0 + line_height(self.col_label_size) + 6.0
    }

    fn content_h(&self) -> f64 {
        self.grid_top()
            + self.rows as f64 * self.cell
            + if self.has_col_annot {
                10.0 + line_height(self.col_annot_size)
            } else {
                0.0
            }
            + HEAT_PAD * 1.5
    }
}

fn draw_heat_panel(
    scene: &mut Scene,
    p: &HeatmapPanel,
    d: &HeatDims,
    bx: f64,
    by: f64,
    box_w: f64,
) -> Result<(), PlotError> {
    let (rows, cols, cell) = (d.rows, d.cols, d.cell);
    let left = bx + (box_w - d.content_w()) / 2.0;
    let gx0 = left + HEAT_PAD + d.row_label_w + 10.0;
    let gy0 = by + d.grid_top();
    let (gx1, gy1) = (gx0 + cols as f64 * cell, gy0 + rows as f64 * cell);

    // Title.
    if !p.title.trim().is_empty() {
        let (size, text) = fit_text(
            p.title.trim(),
            PANEL_TITLE_SIZE,
            MIN_TEXT_SIZE,
            box_w - 24.0,
        )?;
        let cx = centred_within(
            bx + box_w / 2.0,
            text_width(&text, size)?,
            bx + 12.0,
            bx + box_w - 12.0,
        );
        let y = by + 14.0 + (line_height(PANEL_TITLE_SIZE) - line_height(size)) / 2.0;
        scene.text(text, cx, y, size, INK, HAlign::Center, VAlign::Top);
    }

    // Cells with values.
    for (r, row) in p.matrix.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let (x, y) = (gx0 + c as f64 * cell, gy0 + r as f64 * cell);
            let bg = if v.is_finite() {
                diverging(color_position(p, v))
            } else {
                RGBColor(CELL_NAN.0, CELL_NAN.1, CELL_NAN.2)
            };
            scene.rect(x, y, x + cell, y + cell, rgba(bg, 1.0));
            scene.text(
                format_value(v, p.value_format),
                x + cell / 2.0,
                y + cell / 2.0,
                d.value_size,
                text_on(bg),
                HAlign::Center,
                VAlign::Middle,
            );
        }
    }
    for r in 1..rows {
        let y = gy0 + r as f64 * cell;
        scene.line(vec![(gx0, y), (gx1, y)], CELL_SEPARATOR, 1.0);
    }
    for c in 1..cols {
        let x = gx0 + c as f64 * cell;
        scene.line(vec![(x, gy0), (x, gy1)], CELL_SEPARATOR, 1.0);
    }
    scene.rect_outline(gx0, gy0, gx1, gy1, CELL_FRAME, 1.0);

    // Row and column labels, annotations.
    for r in 0..rows {
        let cy = gy0 + (r as f64 + 0.5) * cell;
        scene.text(
            row_label(p, r),
            gx0 - 10.0,
            cy,
            d.label_size,
            INK_SOFT,
            HAlign::Right,
            VAlign::Middle,
        );
        if let Some(a) = p.row_annotations.get(r) {
            scene.text(
                a,
                gx1 + 12.0,
                cy,
                d.label_size,
                INK,
                HAlign::Left,
                VAlign::Middle,
            );
        }
    }
    for c in 0..cols {
        let cx = gx0 + (c as f64 + 0.5) * cell;
        scene.text(
            col_label(p, c),
            cx,
            gy0 - 6.0,
            d.col_label_size,
            INK_SOFT,
            HAlign::Center,
            VAlign::Bottom,
        );
        if let Some(a) = p.col_annotations.get(c) {
            let (size, text) = fit_text(a, d.col_annot_size, d.col_annot_size, cell - 4.0)?;
            scene.text(text, cx, gy1 + 10.0, size, INK, HAlign::Center, VAlign::Top);
        }
    }

    // Colour bar: +max at the top, 0 in the middle, −max at the bottom (sequential: the
    // largest value at the top, the smallest at the bottom).
    let cx0 =
        gx1 + if d.row_annot_w > 0.0 {
            12.0 + d.row_annot_w
        } else {
            0.0
        } + CBAR_GAP;
    let cx1 = cx0 + CBAR_W;
    let steps = 96;
    let step_h = (gy1 - gy0) / steps as f64;
    for i in 0..steps {
        let t = match p.color_scale {
            ColorScale::Diverging => 1.0 - 2.0 * (i as f64 + 0.5) / steps as f64,
            ColorScale::Sequential => 1.0 - (i as f64 + 0.5) / steps as f64,
        };
        let y = gy0 + i as f64 * step_h;
        let y1 = if i + 1 == steps {
            gy1
        } else {
            y + step_h + 0.5
        };
        scene.rect(cx0, y, cx1, y1, rgba(diverging(t), 1.0));
    }
    scene.rect_outline(cx0, gy0, cx1, gy1, CELL_FRAME, 1.0);
    for (label, y) in colorbar_labels(p)
        .into_iter()
        .zip([gy0, (gy0 + gy1) / 2.0, gy1])
    {
        scene.rect(cx1, y - 0.5, cx1 + 4.0, y + 0.5, CELL_FRAME);
        scene.text(
            label,
            cx1 + 10.0,
            y,
            COLORBAR_LABEL_SIZE,
            INK_SOFT,
            HAlign::Left,
            VAlign::Middle,
        );
    }
    Ok(())
}

pub(crate) fn heatmap_scene(fig: &HeatmapFigure) -> Result<Scene, PlotError> {
    ensure_font()?;
    let n = fig.panels.len();
    if n == 0 {
        return Err(PlotError::Invalid("heat-map figure has no panels".into()));
    }
    let dims = heat_dims(fig)?;
    let box_w = dims.iter().map(HeatDims::content_w).fold(420.0, f64::max);
    let box_h = dims.iter().map(HeatDims::content_h).fold(0.0, f64::max);
    let cols = if fig.columns == 0 {
        n.min(3)
    } else {
        fig.columns.min(n)
    };
    let rows = n.div_ceil(cols);
    let header = header_height(&fig.title, fig.subtitle.as_deref());
    let width = (cols as f64 * box_w).ceil();
    let height = (header + rows as f64 * box_h).ceil();
    let mut scene = Scene::new(width as u32, height as u32);
    draw_header(&mut scene, &fig.title, fig.subtitle.as_deref(), width)?;
    for (i, (p, d)) in fig.panels.iter().zip(&dims).enumerate() {
        let (col, row) = (i % cols, i / cols);
        draw_heat_panel(
            &mut scene,
            p,
            d,
            col as f64 * box_w,
            header + row as f64 * box_h,
            box_w,
        )?;
    }
    Ok(scene)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::figure::SeriesStyle;

    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = dec.read_info().expect("decodable PNG");
        (reader.info().width, reader.info().height)
    }

    fn small_figure() -> LineFigure {
        let hc: Vec<(f64, f64)> = (1..=8).map(|l| (l as f64, 1.5f64.powi(l))).collect();
        let mhc: Vec<(f64, f64)> = (1..=8).map(|l| (l as f64, 1.0 + 0.02 * l as f64)).collect();
        let band: Vec<(f64, f64, f64)> = hc.iter().map(|&(x, y)| (x, y * 0.8, y * 1.2)).collect();
        let left = Panel::new("Forward", "layer", "amax")
            .log_y()
            .with_series(Series::new("HC", SeriesStyle::hc(), hc.clone()).with_band(band))
            .with_series(Series::new("mHC", SeriesStyle::mhc(), mhc.clone()))
            .with_reference_line(1.0, "ideal");
        let right = Panel::new("Backward", "layer", "amax").with_series(Series::new(
            "mHC backward",
            SeriesStyle::mhc().dashed().with_markers(),
            mhc,
        ));
        LineFigure::new("Small test figure", vec![left, right]).with_subtitle("subtitle")
    }

    #[test]
    fn plot_line_png_has_signature_and_size() {
        let fig = small_figure();
        let png = line_figure_png(&fig).unwrap();
        let (w, h) = png_size(&png);
        assert_eq!((w, h), line_figure_size(&fig));
        assert_eq!(w, 2 * PANEL_W as u32);
        assert!(h > PANEL_H as u32);
    }

    /// Contents of the `<text>` elements of an SVG document.
    fn svg_texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn plot_line_svg_contains_title_and_labels() {
        let fig = small_figure();
        let svg = line_figure_svg(&fig).unwrap();
        let (w, h) = line_figure_size(&fig);
        assert!(
            svg.starts_with(&format!("<svg width=\"{w}\" height=\"{h}\"")),
            "{}",
            &svg[..80]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        let texts = svg_texts(&svg);
        for needle in [
            "Small test figure",
            "subtitle",
            "Forward",
            "Backward",
            "HC",
            "mHC",
            "mHC backward",
            "ideal",
            "layer",
            "amax",
        ] {
            assert!(
                texts.iter().any(|t| t == needle),
                "SVG lacks text {needle}: {texts:?}"
            );
        }
    }

    #[test]
    fn plot_log_axis_spanning_four_decades() {
        let pts: Vec<(f64, f64)> = (0..=40)
            .map(|i| (i as f64, 10f64.powf(i as f64 / 10.0)))
            .collect();
        let fig = LineFigure::new(
            "",
            vec![Panel::new("p", "x", "y").log_y().with_series(Series::new(
                "s",
                SeriesStyle::other(0),
                pts,
            ))],
        );
        let scene = line_scene(&fig).unwrap();
        let texts = scene.texts();
        for t in ["10⁰", "10¹", "10²", "10³", "10⁴"] {
            assert!(texts.contains(&t), "missing tick {t}: {texts:?}");
        }
        let (w, h) = png_size(&line_figure_png(&fig).unwrap());
        assert_eq!((w, h), line_figure_size(&fig));
    }

    #[test]
    fn plot_only_nan_is_no_data() {
        let pts = vec![(1.0, f64::NAN), (f64::NAN, 2.0), (3.0, f64::INFINITY)];
        let fig = LineFigure::new(
            "t",
            vec![Panel::new("all NaN", "x", "y").with_series(Series::new(
                "s",
                SeriesStyle::hc(),
                pts,
            ))],
        );
        assert!(matches!(line_figure_png(&fig), Err(PlotError::NoData(t)) if t == "all NaN"));
        assert!(matches!(line_figure_svg(&fig), Err(PlotError::NoData(_))));
        // Non-positive values cannot be drawn on a log axis.
        let neg = vec![(1.0, -1.0), (2.0, 0.0)];
        let fig = LineFigure::new(
            "t",
            vec![Panel::new("neg", "x", "y").log_y().with_series(Series::new(
                "s",
                SeriesStyle::hc(),
                neg,
            ))],
        );
        assert!(matches!(line_figure_png(&fig), Err(PlotError::NoData(_))));
        let empty = LineFigure::new("t", vec![]);
        assert!(matches!(
            line_figure_svg(&empty),
            Err(PlotError::Invalid(_))
        ));
    }

    #[test]
    fn plot_flat_series_works_on_both_scales() {
        let flat: Vec<(f64, f64)> = (1..=10).map(|l| (l as f64, 1.0)).collect();
        for panel in [
            Panel::new("lin", "x", "y"),
            Panel::new("log", "x", "y").log_y(),
        ] {
            let fig = LineFigure::new(
                "flat",
                vec![panel.with_series(Series::new("flat", SeriesStyle::mhc(), flat.clone()))],
            );
            let png = line_figure_png(&fig).unwrap();
            assert_eq!(png_size(&png), line_figure_size(&fig));
        }
        // A single point, too.
        let fig = LineFigure::new(
            "",
            vec![Panel::new("one", "x", "y").with_series(Series::new(
                "one",
                SeriesStyle::hc(),
                vec![(3.0, 2.0)],
            ))],
        );
        assert!(line_figure_svg(&fig).is_ok());
    }

    #[test]
    fn plot_grid_of_five_panels_with_log_x() {
        let pts: Vec<(f64, f64)> = (1..=50)
            .map(|i| (i as f64 * 0.37, (i as f64).sqrt()))
            .collect();
        let mut panel = Panel::new("log x", "x", "y").with_series(Series::new(
            "sqrt",
            SeriesStyle::other(2),
            pts,
        ));
        panel.x_scale = AxisScale::Log10;
        let fig = LineFigure::new("five", vec![panel; 5]);
        assert_eq!(line_figure_grid(5), (2, 3));
        let (w, h) = line_figure_size(&fig);
        assert_eq!(w, 2 * PANEL_W as u32);
        assert!(h as f64 > 3.0 * PANEL_H);
        let scene = line_scene(&fig).unwrap();
        assert_eq!((scene.width, scene.height), (w, h));
        assert!(line_figure_svg(&fig).is_ok());
    }

    #[test]
    fn plot_heatmap_with_negatives() {
        let m = vec![
            vec![5.43, 4.43, 4.43, 4.43],
            vec![-4.07, -3.07, -4.07, -4.07],
            vec![-3.95, -3.95, -2.95, -3.95],
            vec![-4.22, -4.22, -4.22, -3.22],
        ];
        let rows: Vec<String> = m
            .iter()
            .map(|r| format!("Σ {:.2}", r.iter().sum::<f64>()))
            .collect();
        let panel = HeatmapPanel::new("HC H1", m)
            .with_row_annotations(rows)
            .with_col_annotations(vec!["a".into(); 4]);
        let fig = HeatmapFigure::new(
            "Heat",
            vec![
                panel.clone(),
                panel.with_value_format(ValueFormat::Significant(2)),
            ],
            2,
        );
        let scene = heatmap_scene(&fig).unwrap();
        assert!(scene.texts().contains(&"−4.07"));
        let png = heatmap_figure_png(&fig).unwrap();
        assert_eq!(png_size(&png), (scene.width, scene.height));
        let svg = heatmap_figure_svg(&fig).unwrap();
        assert!(svg.contains("HC H1") && svg.contains("out 4") && svg.contains("in 4"));
        let ragged = HeatmapFigure::new(
            "r",
            vec![HeatmapPanel::new("r", vec![vec![1.0, 2.0], vec![1.0]])],
            1,
        );
        assert!(matches!(
            heatmap_figure_png(&ragged),
            Err(PlotError::Invalid(_))
        ));
    }
}
