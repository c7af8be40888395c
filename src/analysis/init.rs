//! Distance from initialisation: how far a checkpoint's H_res has moved from the H_res its
//! layout's package starts from.
//!
//! For layer l, `init_distance_l = ‖H̄_l − H_l(init)‖_F`, where H̄_l is the analysed H_res (for a
//! parameter checkpoint the static, input-independent H_res) and H_l(init) the static H_res the
//! layer has when its package initialises it:
//!
//! - lucidrains HC and mHC (`hyper-connections` 0.4.11): `static_alpha[:, skip:] = I` and the
//!   dynamic part 0, so HC starts from H = I and the mHC classes from Sinkhorn(I) (diagonal
//!   e/(e + n − 1), every other entry 1/(e + n − 1));
//! - mhc-pytorch: `b_res = 0`, `alpha_res = 1`, projection term left out: Sinkhorn(0) = J/n;
//! - DeepSeek-V4 and finished matrices (layout stack): unknown (`None`).
//!
//! H(init) depends on the layout and n only, so nothing is read from the file twice.
//! Orientation: rows = output streams, `x_{l+1} = H_l x_l`; with `--transpose` H(init) is
//! transposed like the loaded matrices.

use std::path::Path;

use crate::load::input::TokenOrigin;
use crate::load::layouts::load_hres_from;
use crate::load::{Layout, LoadError, LoadOptions, open};
use crate::metrics::frobenius_distance;

/// The `init_distance` of an audited file: per layer `‖H̄_l − H_l(init)‖_F`, with `analysed`
/// the audit's token-mean matrices H̄_l (row-major n×n, layer 1 first) and `layout` the layout
/// they were loaded with. `None` unless the matrices were rebuilt from the parameters
/// ([`TokenOrigin::StaticParameters`]) of a layout whose initialisation is known: stored
/// per-token matrices have no parameters, and a probe's token mean mixes in its own synthetic
/// inputs.
pub fn audited_init_distance(
    layout: Layout,
    origin: TokenOrigin,
    transposed: bool,
    analysed: &[Vec<f64>],
) -> Option<Vec<f64>> {
    match origin {
        TokenOrigin::StaticParameters => analysed
            .iter()
            .map(|h| {
                let n = streams_of(h);
                let mut initial = layout.initial_hres(n)?;
                if transposed {
                    transpose_in_place(&mut initial, n);
                }
                Some(frobenius_distance(h, &initial))
            })
            .collect(),
        TokenOrigin::Stored | TokenOrigin::Probe => None,
    }
}

/// Per layer, `‖H_l − H_l(init)‖_F` of the input-independent H_res the parameter checkpoint at
/// `path` gives ([`load_hres_from`]); `None` where the initialisation is unknown (DeepSeek-V4)
/// or the file holds finished matrices.
pub fn init_distances(path: &Path, options: &LoadOptions) -> Result<Option<Vec<f64>>, LoadError> {
    let source = open(path)?;
    if crate::load::layouts::resolve_stack(source.as_ref(), options)?.is_some() {
        return Ok(None);
    }
    let loaded = load_hres_from(source.as_ref(), options)?;
    Ok(audited_init_distance(
        loaded.layout,
        TokenOrigin::StaticParameters,
        options.transpose,
        &loaded.stack.token_mean_matrices(),
    ))
}

/// n of a row-major n×n matrix.
fn streams_of(h: &[f64]) -> usize {
    let n = h.len().isqrt();
    assert_eq!(n * n, h.len(), "an H_res is square");
    n
}

fn transpose_in_place(m: &mut [f64], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            m.swap(i * n + j, j * n + i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_initialisation_is_at_distance_zero_from_itself() {
        for layout in Layout::ALL {
            for n in [2, 3, 4] {
                let Some(initial) = layout.initial_hres(n) else {
                    assert!(matches!(layout, Layout::Stack | Layout::DeepseekV4));
                    continue;
                };
                let analysed = vec![initial.clone(), initial];
                let distances =
                    audited_init_distance(layout, TokenOrigin::StaticParameters, false, &analysed);
                assert_eq!(distances, Some(vec![0.0, 0.0]), "{layout:?} n = {n}");
            }
        }
    }

    #[test]
    fn the_distance_is_the_frobenius_norm_of_the_difference() {
        // lucidrains HC starts from I: ‖H − I‖_F.
        let h = vec![0.5, 0.5, 0.25, 1.0];
        let expected = (0.25f64 + 0.25 + 0.0625).sqrt();
        let got = audited_init_distance(
            Layout::LucidrainsHc,
            TokenOrigin::StaticParameters,
            false,
            std::slice::from_ref(&h),
        )
        .unwrap();
        assert!((got[0] - expected).abs() <= 1e-15, "{got:?}");
        // mhc-pytorch starts from J/n; a transpose changes nothing there but is applied.
        let got = audited_init_distance(
            Layout::MhcPytorch,
            TokenOrigin::StaticParameters,
            true,
            std::slice::from_ref(&h),
        )
        .unwrap();
        let expected = (0.0625f64 + 0.25).sqrt();
        assert!((got[0] - expected).abs() <= 1e-15, "{got:?}");
        for origin in [TokenOrigin::Stored, TokenOrigin::Probe] {
            assert_eq!(
                audited_init_distance(
                    Layout::LucidrainsHc,
                    origin,
                    false,
                    std::slice::from_ref(&h)
                ),
                None
            );
        }
    }
}
