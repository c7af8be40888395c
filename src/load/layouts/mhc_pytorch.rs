//! `mhc-pytorch` (`ManifoldHyperConnections`): `phi_res`, `alpha_res`, `b_res`.

use std::collections::BTreeSet;

use super::*;

pub(super) fn load_mhc_pytorch(
    source: &dyn TensorSource,
    reason: String,
    tie: &TieBreak<'_>,
) -> Result<LoadedHres, LoadError> {
    let layout = Layout::MhcPytorch;
    let path = source.path();
    let units = prefixes(source.names(), MHC_PYTORCH_ROLE);
    if units.is_empty() {
        return Err(no_units(source, layout, "*.phi_res.bias"));
    }
    let ordered = order_units(path, units, MHC_PYTORCH_ROLE, tie)?;
    let units = ordered.prefixes;
    let names: BTreeSet<&str> = source.names().iter().map(String::as_str).collect();
    let mut dtypes = DtypeSet::default();
    let mut tensors = Vec::new();
    let mut matrices = Vec::with_capacity(units.len());
    let mut streams: Option<usize> = None;
    let params = SinkhornParams {
        iterations: SINKHORN_ITERATIONS,
        order: SinkhornOrder::RowsThenColumns,
    };
    for prefix in &units {
        let bias_name = format!("{prefix}phi_res.bias");
        let alpha_name = format!("{prefix}alpha_res");
        let b_name = format!("{prefix}b_res");
        let weight_name = format!("{prefix}phi_res.weight");
        for needed in [&alpha_name, &b_name] {
            if !names.contains(needed.as_str()) {
                return Err(LoadError::tensor(
                    path,
                    needed,
                    format!("not found: expected beside '{bias_name}' (mhc-pytorch layout)"),
                ));
            }
        }
        let b_info = source.info(&b_name)?;
        let n = match b_info.shape.as_slice() {
            [rows, cols] if rows == cols && *rows > 0 => *rows,
            other => {
                return Err(LoadError::tensor(
                    path,
                    &b_name,
                    shape_error(other, "[n, n]"),
                ));
            }
        };
        if let Some(expected) = streams
            && expected != n
        {
            return Err(LoadError::tensor(
                path,
                &b_name,
                shape_error(
                    &b_info.shape,
                    &format!("[{expected}, {expected}] like the other modules"),
                ),
            ));
        }
        streams = Some(n);
        let bias_info = source.info(&bias_name)?;
        if bias_info.shape != [n * n] {
            return Err(LoadError::tensor(
                path,
                &bias_name,
                shape_error(
                    &bias_info.shape,
                    &format!("[{}] (n² for b_res [{n}, {n}])", n * n),
                ),
            ));
        }
        let alpha_info = source.info(&alpha_name)?;
        if numel(&alpha_info.shape) != 1 || alpha_info.shape.len() > 1 {
            return Err(LoadError::tensor(
                path,
                &alpha_name,
                shape_error(&alpha_info.shape, "[1]"),
            ));
        }
        if names.contains(weight_name.as_str()) {
            let w = source.info(&weight_name)?;
            if w.shape.len() != 2 || w.shape[0] != n * n || w.shape[1] % n != 0 {
                return Err(LoadError::tensor(
                    path,
                    &weight_name,
                    shape_error(&w.shape, &format!("[{}, {n}·C]", n * n)),
                ));
            }
        }
        let alpha = read_finite(source, &alpha_name)?;
        let alpha = alpha.iter().next().copied().expect("one element");
        let bias = read_finite(source, &bias_name)?;
        let b = read_finite(source, &b_name)?;
        let mut logits: Vec<f64> = bias
            .iter()
            .zip(b.iter())
            .map(|(&bias, &b)| alpha * bias + b)
            .collect();
        if let Some(k) = logits.iter().position(|v| !v.is_finite()) {
            return Err(LoadError::tensor(
                path,
                &bias_name,
                format!(
                    "gives a non-finite logit at entry [{}, {}] (alpha_res · bias + b_res overflows)",
                    k / n,
                    k % n
                ),
            ));
        }
        sinkhorn_in_place(&mut logits, n, &params);
        matrices.push(logits);
        for (name, info) in [
            (&alpha_name, alpha_info),
            (&bias_name, bias_info),
            (&b_name, b_info),
        ] {
            dtypes.add(info.dtype);
            tensors.push(name.clone());
        }
    }
    let n = streams.expect("at least one unit");
    let stack = stack_from_matrices(source, layout, n, matrices)?;
    let mut notes = vec![
        "input-independent H_res: logits alpha_res · phi_res.bias.view(n, n) + b_res (the phi_res.weight term needs hidden states)".to_string(),
        format!(
            "Sinkhorn as in the package: exp, then {SINKHORN_ITERATIONS} × (rows, then columns), applied as h_res @ x (paper orientation, no transpose); column sums exact"
        ),
        "mhc-pytorch copies each module's input into n streams and merges them on exit, so streams do not persist between modules: only each H_res's row sums act, and a product of its H_res describes no real signal path".to_string(),
    ];
    notes.extend(ordered.notes);
    Ok(LoadedHres {
        stack,
        layout,
        reason,
        tensors,
        source_dtype: dtypes.describe(),
        exact_side: layout.exact_side(),
        notes,
        ignored_evidence: None,
    })
}

/// One mhc-pytorch 0.2.3 `ManifoldHyperConnections` module's H_res parameters.
///
/// The package's forward pass (`mhc/hyper_connection.py`), for the module's input x ∈ R^C:
/// `x_vec` = n copies of x, flattened (n·C); `x̂ = x_vec / √(mean(x_vec²) + ε)`
/// (`F.rms_norm` without weight; ε = `torch.finfo(dtype).eps`, taken here from the stored dtype
/// of `phi_res.weight`: 2⁻²³ for f32; the module's own `norm` is never called);
/// `logits = alpha_res · (phi_res.weight @ x̂ + phi_res.bias).view(n, n) + b_res`;
/// H_res = 20 × (rows, then columns) of exp(logits) (`mhc/sinkhorn_knopp.py`), applied as
/// `h_res @ x_l`: already our orientation, **no transpose**. Since the n copies are equal,
/// `phi_res.weight @ x̂ = W_eff @ x / √(mean(x²) + ε)` with `W_eff[k, c] = Σ_s W[k, s·C + c]`,
/// which is what is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct MhcPytorchDynamic {
    /// n.
    pub streams: usize,
    /// C, the module's input dimension.
    pub dim: usize,
    /// `W_eff`, `[n², C]` row-major (the n stream blocks of `phi_res.weight` summed).
    pub weight: Vec<f64>,
    /// `phi_res.bias`, `[n²]`.
    pub bias: Vec<f64>,
    /// `alpha_res`.
    pub alpha: f64,
    /// `b_res`, `[n, n]` row-major.
    pub b_res: Vec<f64>,
    /// The RMS norm's ε.
    pub norm_eps: f64,
}

impl MhcPytorchDynamic {
    pub(super) fn read(source: &dyn TensorSource, prefix: &str) -> Result<Self, LoadError> {
        let path = source.path();
        let bias_name = format!("{prefix}{MHC_PYTORCH_ROLE}");
        let b_name = format!("{prefix}b_res");
        let b_shape = shape_of(source, &b_name, &bias_name)?;
        let n = match b_shape.as_slice() {
            [r, c] if r == c && *r > 0 => *r,
            other => {
                return Err(LoadError::tensor(
                    path,
                    &b_name,
                    shape_error(other, "[n, n]"),
                ));
            }
        };
        let weight_name = format!("{prefix}phi_res.weight");
        let weight_info = source.info(&weight_name).map_err(|_| {
            LoadError::tensor(
                path,
                &weight_name,
                format!("not found: per-token H_res needs it beside '{bias_name}'"),
            )
        })?;
        let dim = match weight_info.shape.as_slice() {
            [k, nc] if *k == n * n && nc % n == 0 && *nc > 0 => nc / n,
            other => {
                return Err(LoadError::tensor(
                    path,
                    &weight_name,
                    shape_error(other, &format!("[{}, {n}·C]", n * n)),
                ));
            }
        };
        let norm_eps = match weight_info.dtype {
            Dtype::F16 => f64::from(half::f16::EPSILON),
            Dtype::Bf16 => f64::from(half::bf16::EPSILON),
            Dtype::F64 => f64::EPSILON,
            _ => f64::from(f32::EPSILON),
        };
        let full = read_finite(source, &weight_name)?;
        let full: Vec<f64> = full.iter().copied().collect();
        let mut weight = vec![0.0; n * n * dim];
        for k in 0..n * n {
            for s in 0..n {
                let row = &full[k * n * dim + s * dim..k * n * dim + (s + 1) * dim];
                for (w, v) in weight[k * dim..(k + 1) * dim].iter_mut().zip(row) {
                    *w += v;
                }
            }
        }
        let bias_shape = source.info(&bias_name)?.shape;
        let bias = read_shaped(
            source,
            &bias_name,
            &bias_shape,
            &[n * n],
            &format!("[{}]", n * n),
        )?;
        let alpha_name = format!("{prefix}alpha_res");
        let alpha_shape = shape_of(source, &alpha_name, &bias_name)?;
        if numel(&alpha_shape) != 1 || alpha_shape.len() > 1 {
            return Err(LoadError::tensor(
                path,
                &alpha_name,
                shape_error(&alpha_shape, "[1]"),
            ));
        }
        let alpha = read_finite(source, &alpha_name)?
            .iter()
            .copied()
            .next()
            .expect("one element");
        let b_res = read_shaped(source, &b_name, &b_shape, &b_shape, "")?;
        Ok(Self {
            streams: n,
            dim,
            weight,
            bias,
            alpha,
            b_res,
            norm_eps,
        })
    }

    pub(crate) fn hres_map(&self) -> HresMap {
        HresMap::Sinkhorn(SinkhornParams {
            iterations: SINKHORN_ITERATIONS,
            order: SinkhornOrder::RowsThenColumns,
        })
    }

    pub(crate) fn logits(&self, x: &[f64], out: &mut [f64]) {
        let dim = self.dim;
        let mean_square = x.iter().map(|v| v * v).sum::<f64>() / dim as f64;
        let inverse_rms = 1.0 / (mean_square + self.norm_eps).sqrt();
        for (k, o) in out.iter_mut().enumerate() {
            let z: f64 = self.weight[k * dim..(k + 1) * dim]
                .iter()
                .zip(x)
                .map(|(w, v)| w * v)
                .sum();
            *o = self.alpha * (z * inverse_rms + self.bias[k]) + self.b_res[k];
        }
    }

    /// `L[k] ∈ alpha_res·bias[k] + b_res[k] ± |alpha_res|·√C·‖W_eff[k]‖₂`: ‖x/rms‖₂ < √C for
    /// the module's input x; approached (not reached, because of ε) by x ∥ W_eff[k] as ‖x‖ grows.
    pub(crate) fn logit_box(&self) -> Result<LogitBox, CertifyError> {
        let n = self.streams;
        let root_dim = (self.dim as f64).sqrt();
        let center: Vec<f64> = (0..n * n)
            .map(|k| self.alpha * self.bias[k] + self.b_res[k])
            .collect();
        let radius: Vec<f64> = (0..n * n)
            .map(|k| {
                let row = &self.weight[k * self.dim..(k + 1) * self.dim];
                self.alpha.abs() * root_dim * row.iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .collect();
        LogitBox::around(n, &center, &radius, self.dim)
    }

    /// The package initialises `b_res = 0` and `alpha_res = 1`; with the projection term left
    /// out, that is Sinkhorn(0) = J/n ([`Layout::initial_hres`]). (`phi_res` itself starts from
    /// `nn.Linear`'s random initialisation, uniform in ±1/√(n·C), so a freshly built module's
    /// H_res scatters around J/n; J/n is the deterministic part.)
    pub(crate) fn initial_hres(&self) -> Vec<f64> {
        Layout::MhcPytorch
            .initial_hres(self.streams)
            .expect("mhc-pytorch states its initialisation")
    }
}
