//! A horizontal strip of a bitmap, drawn as if it were the whole bitmap.
//!
//! [`Strip`] tells plotters that it is the full `width × height` canvas, so every rasteriser
//! computes exactly the pixels it would for the whole bitmap; only the pixels of rows
//! `top..top + rows` are kept, written into a [`BitMapBackend`] of that strip shifted up by
//! `top`. Rendering a scene strip by strip (in parallel, `scene_to_png`) therefore gives the
//! same bytes as rendering it in one buffer, whatever the number of strips; a test checks it.
//!
//! The axis-aligned fast paths of [`BitMapBackend`] (rectangles and one-pixel horizontal or
//! vertical lines, which clip to the buffer) receive shifted coordinates directly; everything
//! else goes through plotters' pixel rasterisers on the full canvas (polygons through the
//! faster copy in module `polygon`) and ends in [`Strip::draw_pixel`].

use plotters::prelude::{BitMapBackend, DrawingBackend};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, DrawingErrorKind, rasterizer};

use super::polygon::{self, PolygonScratch};

type Error = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

/// Rows `top..top + rows` of a `width × height` canvas (see the module docs).
pub(crate) struct Strip<'a> {
    inner: BitMapBackend<'a>,
    canvas: (u32, u32),
    top: i32,
    rows: i32,
    /// Buffers reused by every polygon the strip fills.
    polygon: PolygonScratch,
    vertices: Vec<BackendCoord>,
}

impl<'a> Strip<'a> {
    /// The strip of `buffer.len() / (3·width)` rows starting at row `top` of a `canvas`
    /// (width, height) bitmap, drawn into `buffer` (RGB, row-major).
    pub(crate) fn new(buffer: &'a mut [u8], canvas: (u32, u32), top: u32) -> Self {
        let rows = (buffer.len() / (3 * canvas.0 as usize)) as u32;
        Self {
            inner: BitMapBackend::with_buffer(buffer, (canvas.0, rows)),
            canvas,
            top: top as i32,
            rows: rows as i32,
            polygon: PolygonScratch::default(),
            vertices: Vec::new(),
        }
    }

    /// `point` in the strip's own coordinates.
    fn shifted(&self, (x, y): BackendCoord) -> BackendCoord {
        (x, y - self.top)
    }

    /// Whether rows `first..=last` (either order) miss the strip.
    fn misses(&self, first: i32, last: i32) -> bool {
        first.max(last) < self.top || first.min(last) >= self.top + self.rows
    }
}

impl DrawingBackend for Strip<'_> {
    type ErrorType = Error;

    fn get_size(&self) -> (u32, u32) {
        self.canvas
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Error>> {
        if self.misses(point.1, point.1) {
            return Ok(());
        }
        self.inner.draw_pixel(self.shifted(point), color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        let axis_aligned = from.0 == to.0 || from.1 == to.1;
        if axis_aligned && style.stroke_width() == 1 {
            // BitMapBackend fills these as clipped rectangles: shifting commutes with that.
            if self.misses(from.1, to.1) {
                return Ok(());
            }
            return self
                .inner
                .draw_line(self.shifted(from), self.shifted(to), style);
        }
        rasterizer::draw_line(self, from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        if fill {
            // A clipped rectangle fill in BitMapBackend, like the full-canvas one.
            if self.misses(upper_left.1, bottom_right.1) {
                return Ok(());
            }
            return self.inner.draw_rect(
                self.shifted(upper_left),
                self.shifted(bottom_right),
                style,
                fill,
            );
        }
        rasterizer::draw_rect(self, upper_left, bottom_right, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        // plotters' rasteriser with its allocations and repeated divisions taken out (module
        // `polygon`); the same drawing calls, so the same pixels.
        let mut points = std::mem::take(&mut self.vertices);
        let mut scratch = std::mem::take(&mut self.polygon);
        points.clear();
        points.extend(vertices);
        let result = polygon::fill_polygon(self, &points, style, &mut scratch);
        self.vertices = points;
        self.polygon = scratch;
        result
    }
}
