//! Renders sample figures with the plot module into /tmp/plot_demo/ (or the directory given
//! as the first argument): a two-panel amax figure and a 2 × 3 grid of heat maps, each as PNG
//! and SVG.
//!
//! `cargo run --example plot_demo [-- [OUT_DIR] [--gallery]]`; `--gallery` adds edge cases.

use mhc_analyze::plot::{
    self, HeatmapFigure, HeatmapPanel, LineFigure, Panel, Series, SeriesStyle, ValueFormat,
};

/// Deterministic pseudo-noise in [-1, 1].
fn noise(i: usize, salt: u64) -> f64 {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % 20_001) as f64 / 10_000.0 - 1.0
}

fn amax_figure() -> LineFigure {
    let layers = 64;
    let l = |i: usize| i as f64;
    // HC: grows roughly geometrically from ~1 to ~3000, wiggly; band = min–max over seeds.
    let hc = |i: usize, salt: u64| {
        let t = (i - 1) as f64 / (layers - 1) as f64;
        10f64.powf(3.48 * t + 0.08 * noise(i, salt))
    };
    let mhc = |i: usize, salt: u64| {
        let t = (i - 1) as f64 / (layers - 1) as f64;
        1.0 + 0.35 * t.sqrt() + 0.06 * noise(i, salt).abs()
    };
    let make = |title: &str, y_label: &str, salt: u64| {
        let hc_pts: Vec<(f64, f64)> = (1..=layers).map(|i| (l(i), hc(i, salt))).collect();
        let hc_band: Vec<(f64, f64, f64)> = (1..=layers)
            .map(|i| {
                let c = hc(i, salt);
                let s = 1.0 + 0.9 * (i as f64 / layers as f64);
                (l(i), c / s, c * s * 1.1)
            })
            .collect();
        let mhc_pts: Vec<(f64, f64)> = (1..=layers).map(|i| (l(i), mhc(i, salt + 1))).collect();
        let mhc_band: Vec<(f64, f64, f64)> = (1..=layers)
            .map(|i| {
                let c = mhc(i, salt + 1);
                (
                    l(i),
                    (c - 0.08).max(1.0),
                    c + 0.12 * (i as f64 / layers as f64) + 0.05,
                )
            })
            .collect();
        Panel::new(title, "layer l", y_label)
            .log_y()
            .with_series(Series::new("HC", SeriesStyle::hc(), hc_pts).with_band(hc_band))
            .with_series(Series::new("mHC", SeriesStyle::mhc(), mhc_pts).with_band(mhc_band))
            .with_reference_line(1.0, "ideal (gain 1)")
    };
    LineFigure::new(
        "Composite gain of the residual mixing matrices",
        vec![
            make(
                "Forward: amax_forward of prefix H_l⋯H_1",
                "amax gain (max abs row sum)",
                11,
            ),
            make(
                "Backward: amax_backward of suffix H_L⋯H_l",
                "amax gain (max abs column sum)",
                23,
            ),
        ],
    )
    .with_subtitle("27B model, 64 layers, n = 4 streams; shaded: min–max over 8 seeds")
}

fn sums(m: &[Vec<f64>]) -> (Vec<String>, Vec<String>) {
    let fmt = |v: f64| format!("Σ {v:.2}").replace('-', "−");
    let rows = m.iter().map(|r| fmt(r.iter().sum())).collect();
    let cols = (0..m[0].len())
        .map(|j| fmt(m.iter().map(|r| r[j]).sum()))
        .collect();
    (rows, cols)
}

fn heat_panel(title: &str, m: Vec<Vec<f64>>) -> HeatmapPanel {
    let (r, c) = sums(&m);
    HeatmapPanel::new(title, m)
        .with_row_annotations(r)
        .with_col_annotations(c)
}

fn heatmap_figure() -> HeatmapFigure {
    let hc_h1 = vec![
        vec![5.43, 4.43, 4.43, 4.43],
        vec![-4.07, -3.07, -4.07, -4.07],
        vec![-3.95, -3.95, -2.95, -3.95],
        vec![-4.22, -4.22, -4.22, -3.22],
    ];
    let mhc_h1 = vec![
        vec![0.67, 0.09, 0.03, 0.22],
        vec![0.26, 0.48, 0.26, 0.00],
        vec![0.03, 0.24, 0.00, 0.73],
        vec![0.03, 0.20, 0.69, 0.09],
    ];
    let hc_h30 = vec![
        vec![0.94, -0.07, -0.05, 0.02],
        vec![-0.08, 0.89, -0.07, -0.07],
        vec![-0.10, -0.14, 0.81, -0.07],
        vec![0.06, 0.05, -0.03, 0.87],
    ];
    let mhc_h30 = vec![
        vec![0.91, 0.03, 0.02, 0.04],
        vec![0.02, 0.88, 0.06, 0.04],
        vec![0.05, 0.04, 0.85, 0.06],
        vec![0.02, 0.05, 0.07, 0.86],
    ];
    let hc_prod = vec![
        vec![812.0, -655.3, 120.4, -277.1],
        vec![-1290.5, 1033.2, -198.7, 455.0],
        vec![340.2, -270.8, 52.3, -118.9],
        vec![139.1, -108.5, 27.0, -60.2],
    ];
    let mhc_prod = vec![
        vec![0.27, 0.24, 0.25, 0.24],
        vec![0.25, 0.26, 0.24, 0.25],
        vec![0.24, 0.25, 0.26, 0.25],
        vec![0.24, 0.25, 0.25, 0.26],
    ];
    HeatmapFigure::new(
        "Residual mixing matrices H_l (rows: output stream, columns: input stream)",
        vec![
            heat_panel("HC H_1", hc_h1),
            heat_panel("HC H_30", hc_h30),
            heat_panel("HC composite H_64⋯H_1", hc_prod)
                .with_value_format(ValueFormat::Significant(3)),
            heat_panel("mHC H_1", mhc_h1),
            heat_panel("mHC H_30", mhc_h30),
            heat_panel("mHC composite H_64⋯H_1", mhc_prod),
        ],
        3,
    )
    .with_subtitle("Colour scale per panel: blue < 0 < red, symmetric in the largest |entry|")
}

/// Edge cases: legend placement, linear axes near 1, flat lines, long titles, big matrices.
fn gallery(out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let layers: Vec<f64> = (1..=64).map(f64::from).collect();
    // Decaying curves fill the upper left, so the legend must go elsewhere.
    let decay = Panel::new(
        "Decaying gain (legend must avoid the upper left)",
        "layer",
        "gain",
    )
    .log_y()
    .with_series(Series::new(
        "HC",
        SeriesStyle::hc(),
        layers
            .iter()
            .map(|&l| (l, 3000.0 * 0.88f64.powf(l)))
            .collect(),
    ))
    .with_series(Series::new(
        "mHC",
        SeriesStyle::mhc().dashed(),
        layers
            .iter()
            .map(|&l| (l, 1.0 + 0.5 * (-l / 10.0).exp()))
            .collect(),
    ))
    .with_reference_line(1.0, "ideal");
    // mHC only, linear axis with values close to 1.
    let near_one = Panel::new("mHC only, linear axis", "layer", "amax gain")
        .with_series(
            Series::new(
                "mHC forward",
                SeriesStyle::mhc().with_markers(),
                layers
                    .iter()
                    .take(16)
                    .map(|&l| (l, 1.0 + 0.004 * l + 0.01 * noise(l as usize, 3)))
                    .collect(),
            )
            .with_band(
                layers
                    .iter()
                    .take(16)
                    .map(|&l| (l, 0.97 + 0.004 * l, 1.02 + 0.005 * l))
                    .collect(),
            ),
        )
        .with_series(Series::new(
            "mHC backward",
            SeriesStyle::mhc().dashed(),
            layers
                .iter()
                .take(16)
                .map(|&l| (l, 1.0 - 0.002 * l))
                .collect(),
        ))
        .with_reference_line(1.0, "ideal");
    // Flat line at 1 plus some palette colours and NaN gaps.
    let flat = Panel::new("Flat series, gaps, palette", "step", "value")
        .with_series(Series::new(
            "flat at 1",
            SeriesStyle::other(5),
            layers.iter().map(|&l| (l, 1.0)).collect(),
        ))
        .with_series(Series::new(
            "with NaN gap",
            SeriesStyle::other(0),
            layers
                .iter()
                .map(|&l| {
                    (
                        l,
                        if (20.0..30.0).contains(&l) {
                            f64::NAN
                        } else {
                            1.0 + (l / 9.0).sin() * 0.02
                        },
                    )
                })
                .collect(),
        ))
        .with_series(Series::new(
            "other 1",
            SeriesStyle::other(1),
            layers.iter().map(|&l| (l, 0.99 + l * 0.0003)).collect(),
        ))
        .with_series(Series::new(
            "other 2",
            SeriesStyle::other(2).dashed(),
            layers.iter().map(|&l| (l, 1.01 - l * 0.0003)).collect(),
        ));
    // Everything everywhere: the legend has to go outside.
    let busy = Panel::new("A very long panel title that certainly does not fit into the width of a single panel at full size", "an equally long x axis label that goes on and on and on and on", "y")
        .with_series(Series::new("noise A with a long label", SeriesStyle::hc(), (0..200).map(|i| (i as f64, noise(i, 1))).collect()))
        .with_series(Series::new("noise B", SeriesStyle::mhc(), (0..200).map(|i| (i as f64, noise(i, 2))).collect()));
    let fig = LineFigure::new(
        "Gallery of edge cases for the plot module",
        vec![decay, near_one, flat, busy],
    );
    std::fs::write(
        format!("{out}/gallery_lines.png"),
        plot::line_figure_png(&fig)?,
    )?;
    std::fs::write(
        format!("{out}/gallery_lines.svg"),
        plot::line_figure_svg(&fig)?,
    )?;

    let big: Vec<Vec<f64>> = (0..16)
        .map(|i| {
            (0..16)
                .map(|j| {
                    if i == j {
                        0.9
                    } else {
                        0.1 * noise(i * 16 + j, 7)
                    }
                })
                .collect()
        })
        .collect();
    let mid: Vec<Vec<f64>> = (0..8)
        .map(|i| (0..8).map(|j| 1000.0 * noise(i * 8 + j, 9)).collect())
        .collect();
    let mut nan = vec![vec![1.0, -2.0], vec![f64::NAN, 0.5]];
    nan[0][0] = f64::INFINITY;
    let heat = HeatmapFigure::new(
        "Heat maps of several sizes",
        vec![
            HeatmapPanel::new("16 × 16", big),
            HeatmapPanel::new("8 × 8, three significant digits", mid)
                .with_value_format(ValueFormat::Significant(3)),
            HeatmapPanel::new("2 × 2 with non-finite values", nan)
                .with_row_annotations(vec!["first row".into(), "second".into()]),
        ],
        0,
    );
    std::fs::write(
        format!("{out}/gallery_heat.png"),
        plot::heatmap_figure_png(&heat)?,
    )?;
    std::fs::write(
        format!("{out}/gallery_heat.svg"),
        plot::heatmap_figure_svg(&heat)?,
    )?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_gallery = args.iter().any(|a| a == "--gallery");
    let out = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "/tmp/plot_demo".to_string());
    std::fs::create_dir_all(&out)?;
    if with_gallery {
        gallery(&out)?;
    }
    let t = std::time::Instant::now();
    let line = amax_figure();
    std::fs::write(format!("{out}/amax.png"), plot::line_figure_png(&line)?)?;
    std::fs::write(format!("{out}/amax.svg"), plot::line_figure_svg(&line)?)?;
    let heat = heatmap_figure();
    std::fs::write(
        format!("{out}/heatmaps.png"),
        plot::heatmap_figure_png(&heat)?,
    )?;
    std::fs::write(
        format!("{out}/heatmaps.svg"),
        plot::heatmap_figure_svg(&heat)?,
    )?;
    println!(
        "wrote {out}/amax.{{png,svg}} and {out}/heatmaps.{{png,svg}} in {:?}",
        t.elapsed()
    );
    Ok(())
}
