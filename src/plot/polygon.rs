//! plotters' polygon fill (`plotters_backend::rasterizer::fill_polygon`, 0.3.7), rewritten to
//! make the same drawing calls with less work.
//!
//! The rasteriser sweeps a line across the polygon's longer side, one pixel at a time. At each
//! sweep line it keeps the edges that cross it, sorts them by where they cross (a stable sort,
//! so edges that cross at the same point keep their order from the previous line), pairs them
//! up and draws the span between each pair, plus one anti-aliased pixel at either end. The
//! original allocates a new edge list at every sweep line and recomputes each crossing (an
//! integer product and a division) at every comparison of its sort; the band of the gain figure
//! is swept over a few thousand lines, once per strip. Here the lists are reused and each
//! crossing is computed once per line. Everything that decides a pixel (which edges are active,
//! their order, the crossings, the pairing, the drawing calls and their order) is the
//! original's, so the pixels are too: the strip test draws polygons both ways and compares.

use plotters_backend::{BackendCoord, BackendStyle, DrawingBackend, DrawingErrorKind};

/// An edge in sweep coordinates: it crosses sweep lines `start..=start + length`, at `begin`
/// on the first and `end` on the last (the original's `Edge`, with `epoch` = line − start).
#[derive(Clone, Copy)]
struct Edge {
    start: i32,
    length: u32,
    begin: i32,
    end: i32,
}

impl Edge {
    /// The edge from `from` to `to` given as (sweep, cross) coordinates; None when it lies
    /// along a sweep line.
    fn new(mut from: (i32, i32), mut to: (i32, i32)) -> Option<Edge> {
        if from.0 == to.0 {
            return None;
        }
        if from.0 > to.0 {
            std::mem::swap(&mut from, &mut to);
        }
        Some(Edge {
            start: from.0,
            length: (to.0 - from.0) as u32,
            begin: from.1,
            end: to.1,
        })
    }

    /// Sweep lines left after `line` (the original's master position).
    fn remaining(&self, line: i32) -> u32 {
        self.length - (line - self.start) as u32
    }

    /// Where the edge crosses `line` (the original's slave position, same arithmetic).
    fn crossing(&self, line: i32) -> f64 {
        let epoch = (line - self.start) as u32;
        f64::from(self.begin)
            + (i64::from(self.end - self.begin) * i64::from(epoch)) as f64 / f64::from(self.length)
    }
}

/// Reusable buffers of [`fill_polygon`].
#[derive(Default)]
pub(crate) struct PolygonScratch {
    segments: Vec<(BackendCoord, BackendCoord)>,
    /// Active edges with their crossing of the current line.
    active: Vec<(Edge, f64)>,
}

/// Fills the polygon `vertices` on `back` exactly as plotters' `fill_polygon` does (see the
/// module docs).
pub(crate) fn fill_polygon<DB: DrawingBackend, S: BackendStyle>(
    back: &mut DB,
    vertices: &[BackendCoord],
    style: &S,
    scratch: &mut PolygonScratch,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    let Some(&first) = vertices.first() else {
        return Ok(());
    };
    let (mut x_span, mut y_span) = ((first.0, first.0), (first.1, first.1));
    for &(x, y) in vertices {
        x_span = (x_span.0.min(x), x_span.1.max(x));
        y_span = (y_span.0.min(y), y_span.1.max(y));
    }
    // All points on one vertical or horizontal line.
    if x_span.0 == x_span.1 || y_span.0 == y_span.1 {
        return back.draw_line((x_span.0, y_span.0), (x_span.1, y_span.1), style);
    }
    let horizontal_sweep = x_span.1 - x_span.0 > y_span.1 - y_span.0;
    // (sweep, cross) coordinates of a point.
    let along = |(x, y): BackendCoord| if horizontal_sweep { (x, y) } else { (y, x) };

    let segments = &mut scratch.segments;
    segments.clear();
    segments.extend(vertices.windows(2).map(|pair| (pair[0], pair[1])));
    segments.push((vertices[vertices.len() - 1], vertices[0]));
    // Stable, by the smaller sweep coordinate, as the original's `sort_by_key`.
    segments.sort_by_key(|&(a, b)| along(a).0.min(along(b).0));
    for segment in segments.iter_mut() {
        if along(segment.0).0 > along(segment.1).0 {
            std::mem::swap(&mut segment.0, &mut segment.1);
        }
    }

    let (low, high) = if horizontal_sweep { x_span } else { y_span };
    let color = style.color();
    let active = &mut scratch.active;
    active.clear();
    let mut next = 0;
    for line in low..=high {
        // Edges still crossing this line, in their order from the previous line.
        active.retain(|(edge, _)| edge.remaining(line - 1) > 0);
        while let Some(&(a, b)) = segments.get(next) {
            if along(a).0 > line {
                break;
            }
            if let Some(edge) = Edge::new(along(a), along(b)) {
                active.push((edge, 0.0));
            }
            next += 1;
        }
        for (edge, crossing) in active.iter_mut() {
            *crossing = edge.crossing(line);
        }
        // Stable insertion sort by crossing (few edges; `sort` in the original, also stable).
        for i in 1..active.len() {
            let mut j = i;
            while j > 0 && active[j - 1].1 > active[j].1 {
                active.swap(j - 1, j);
                j -= 1;
            }
        }

        let mut pending: Option<(Edge, f64)> = None;
        for &(edge, crossing) in active.iter() {
            let Some((a, from)) = pending else {
                pending = Some((edge, crossing));
                continue;
            };
            let (b, to) = (edge, crossing);
            let (a_ends, b_ends) = (a.remaining(line) == 0, b.remaining(line) == 0);
            if a_ends && !b_ends {
                pending = Some((b, to));
                continue;
            }
            if !a_ends && b_ends {
                continue;
            }
            pending = None;
            if a_ends && b_ends && to - from > 1.0 {
                continue;
            }
            if horizontal_sweep {
                back.draw_line(
                    (line, from.ceil() as i32),
                    (line, to.floor() as i32),
                    &color,
                )?;
                back.draw_pixel((line, from.floor() as i32), color.mix(from.ceil() - from))?;
                back.draw_pixel((line, to.ceil() as i32), color.mix(to - to.floor()))?;
            } else {
                back.draw_line(
                    (from.ceil() as i32, line),
                    (to.floor() as i32, line),
                    &color,
                )?;
                back.draw_pixel((from.floor() as i32, line), color.mix(from.ceil() - from))?;
                back.draw_pixel((to.ceil() as i32, line), color.mix(to.floor() - to))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::BitMapBackend;
    use plotters_backend::{BackendColor, rasterizer};

    /// Fills `vertices` on a fresh `w × h` white bitmap with plotters' rasteriser or this one.
    fn draw(vertices: &[BackendCoord], (w, h): (u32, u32), ours: bool) -> Vec<u8> {
        let mut buffer = vec![255u8; (w * h * 3) as usize];
        {
            let mut back = BitMapBackend::with_buffer(&mut buffer, (w, h));
            let color = BackendColor {
                alpha: 0.35,
                rgb: (200, 40, 90),
            };
            if ours {
                let mut scratch = PolygonScratch::default();
                fill_polygon(&mut back, vertices, &color, &mut scratch).unwrap();
                // Twice with the same scratch: nothing may leak from one polygon to the next.
                fill_polygon(&mut back, vertices, &color, &mut scratch).unwrap();
            } else {
                rasterizer::fill_polygon(&mut back, vertices, &color).unwrap();
                rasterizer::fill_polygon(&mut back, vertices, &color).unwrap();
            }
        }
        buffer
    }

    #[test]
    fn same_pixels_as_plotters_on_assorted_polygons() {
        let size = (64, 48);
        let mut fixed: Vec<Vec<BackendCoord>> = vec![
            vec![],
            vec![(5, 5)],
            vec![(3, 7), (40, 7), (20, 7)],
            vec![(9, 2), (9, 40)],
            vec![(2, 2), (60, 2), (60, 40), (2, 40)],
            // A band between two polylines, a bow tie, a tall spike, shared vertices.
            vec![
                (0, 20),
                (20, 10),
                (40, 12),
                (63, 2),
                (63, 30),
                (40, 28),
                (20, 35),
                (0, 26),
            ],
            vec![(5, 5), (50, 40), (50, 5), (5, 40)],
            vec![(30, -5), (34, 60), (26, 30)],
            vec![(10, 10), (30, 10), (30, 10), (10, 30), (10, 10)],
            vec![(-20, -20), (100, 10), (20, 90)],
        ];
        // Pseudo-random polygons of 3 to 12 vertices, partly outside the bitmap.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |range: i32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % range as u64) as i32
        };
        for _ in 0..300 {
            let count = 3 + next(10) as usize;
            fixed.push((0..count).map(|_| (next(84) - 10, next(68) - 10)).collect());
        }
        for vertices in &fixed {
            assert!(
                draw(vertices, size, true) == draw(vertices, size, false),
                "pixels differ for {vertices:?}"
            );
        }
    }
}
