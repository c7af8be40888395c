//! `mhc-pytorch` (`ManifoldHyperConnections`): `phi_res`, `alpha_res`, `b_res`.

use std::collections::BTreeSet;

use super::*;

pub(super) fn load_mhc_pytorch(
    source: &dyn TensorSource,
    reason: String,
) -> Result<LoadedHres, LoadError> {
    let layout = Layout::MhcPytorch;
    let path = source.path();
    let units = prefixes(source.names(), MHC_PYTORCH_ROLE);
    if units.is_empty() {
        return Err(no_units(source, layout, "*.phi_res.bias"));
    }
    let units = order_units(path, units, MHC_PYTORCH_ROLE)?;
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
    let notes = vec![
        "input-independent H_res: logits alpha_res · phi_res.bias.view(n, n) + b_res (the phi_res.weight term needs hidden states)".to_string(),
        format!(
            "Sinkhorn as in the package: exp, then {SINKHORN_ITERATIONS} × (rows, then columns), applied as h_res @ x (paper orientation, no transpose); column sums exact"
        ),
        "mhc-pytorch copies each module's input into n streams and merges them on exit, so streams do not persist between modules: only each H_res's row sums act, and a product of its H_res describes no real signal path".to_string(),
    ];
    Ok(LoadedHres {
        stack,
        layout,
        reason,
        tensors,
        source_dtype: dtypes.describe(),
        exact_side: layout.exact_side(),
        notes,
    })
}
