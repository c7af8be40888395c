//! lucidrains `hyper-connections`: `static_alpha` (HC and the mHC classes).

use std::collections::BTreeSet;

use super::*;

/// lucidrains mHC parameters that its HC class lacks, and the other way round.
const LUCIDRAINS_MHC_SIBLINGS: [&str; 3] = ["residual_scale", "pre_branch_scale", "h_post_scale"];
const LUCIDRAINS_HC_SIBLINGS: [&str; 2] = ["dynamic_alpha_scale", "dynamic_beta_scale"];
/// Decides between lucidrains HC and mHC from metadata or sibling parameters.
pub(super) fn lucidrains_flavour(
    source: &dyn TensorSource,
    prefixes: &[String],
) -> Result<(Layout, String), LoadError> {
    let path = source.path();
    let count = prefixes.len();
    if let Some(implementation) = source.metadata().get("implementation") {
        let value = implementation.to_ascii_lowercase();
        let layout = if value.contains("mhc") || value.contains("manifold") {
            Some(Layout::LucidrainsMhc)
        } else if value.contains("hc") || value.contains("hyper") {
            Some(Layout::LucidrainsHc)
        } else {
            None
        };
        if let Some(layout) = layout {
            return Ok((
                layout,
                format!(
                    "{count} '{LUCIDRAINS_ROLE}' tensors, and the file's metadata says implementation = '{implementation}'"
                ),
            ));
        }
    }
    let names: BTreeSet<&str> = source.names().iter().map(String::as_str).collect();
    let with_any = |siblings: &[&str]| {
        prefixes
            .iter()
            .filter(|p| {
                siblings
                    .iter()
                    .any(|s| names.contains(format!("{p}{s}").as_str()))
            })
            .count()
    };
    let mhc = with_any(&LUCIDRAINS_MHC_SIBLINGS);
    let hc = with_any(&LUCIDRAINS_HC_SIBLINGS);
    match (mhc > 0, hc > 0) {
        (true, false) => Ok((
            Layout::LucidrainsMhc,
            format!(
                "{count} '{LUCIDRAINS_ROLE}' tensors, {mhc} of them beside residual_scale / pre_branch_scale / h_post_scale, which only the package's mHC classes have"
            ),
        )),
        (false, true) => Ok((
            Layout::LucidrainsHc,
            format!(
                "{count} '{LUCIDRAINS_ROLE}' tensors, {hc} of them beside dynamic_alpha_scale / dynamic_beta_scale, which only the package's HC class has"
            ),
        )),
        (true, true) => Err(LoadError::format(
            path,
            format!(
                "'{LUCIDRAINS_ROLE}' tensors sit beside both mHC parameters (residual_scale …, {mhc} modules) and HC parameters (dynamic_alpha_scale …, {hc} modules); choose --layout lucidrains-hc or lucidrains-mhc"
            ),
        )),
        (false, false) => Err(LoadError::format(
            path,
            format!(
                "found {count} '{LUCIDRAINS_ROLE}' tensors but cannot tell HC from mHC (no metadata 'implementation', no residual_scale or dynamic_alpha_scale beside them); choose --layout lucidrains-hc or lucidrains-mhc"
            ),
        )),
    }
}

pub(super) fn load_lucidrains(
    source: &dyn TensorSource,
    layout: Layout,
    reason: String,
) -> Result<LoadedHres, LoadError> {
    let path = source.path();
    let units = prefixes(source.names(), LUCIDRAINS_ROLE);
    if units.is_empty() {
        return Err(no_units(source, layout, "*.static_alpha"));
    }
    let units = order_units(path, units, LUCIDRAINS_ROLE)?;
    let mut dtypes = DtypeSet::default();
    let mut tensors = Vec::with_capacity(units.len());
    let mut matrices = Vec::with_capacity(units.len());
    let mut first: Option<(String, Vec<usize>)> = None;
    let params = SinkhornParams {
        iterations: SINKHORN_ITERATIONS,
        order: SinkhornOrder::RowsThenColumns,
    };
    for prefix in &units {
        let name = format!("{prefix}{LUCIDRAINS_ROLE}");
        let info = source.info(&name)?;
        match &first {
            None => {
                let ok =
                    info.shape.len() == 2 && info.shape[1] > info.shape[0] && info.shape[0] > 0;
                if !ok {
                    return Err(LoadError::tensor(
                        path,
                        &name,
                        shape_error(
                            &info.shape,
                            "[n, p + n] (p ≥ 1 branch-input columns, then the n×n residual mix)",
                        ),
                    ));
                }
                first = Some((name.clone(), info.shape.clone()));
            }
            Some((first_name, shape)) => {
                if &info.shape != shape {
                    return Err(LoadError::tensor(
                        path,
                        &name,
                        format!(
                            "{} (like '{first_name}')",
                            shape_error(&info.shape, &format!("{shape:?}"))
                        ),
                    ));
                }
            }
        }
        dtypes.add(info.dtype.clone());
        let alpha = read_finite(source, &name)?;
        let (n, columns) = (info.shape[0], info.shape[1]);
        let skip = columns - n;
        // alpha[s_in, t_out]: our H[i, j] (output i, input j) = alpha[j, skip + i].
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = alpha[[j, skip + i]];
            }
        }
        if layout == Layout::LucidrainsMhc {
            sinkhorn_in_place(&mut h, n, &params);
        }
        matrices.push(h);
        tensors.push(name);
    }
    let (_, shape) = first.expect("at least one unit");
    let n = shape[0];
    let skip = shape[1] - n;
    let stack = stack_from_matrices(source, layout, n, matrices)?;
    let mut notes = vec![
        "input-independent H_res from static_alpha only (the dynamic_alpha_fn term is zero without hidden states); load a captured [layers, tokens, n, n] tensor for per-token matrices".to_string(),
        format!(
            "stored as alpha[s_in, t_out]: H_res = static_alpha[:, {skip}:] transposed to rows = output streams"
        ),
    ];
    if layout == Layout::LucidrainsMhc {
        notes.push(format!(
            "Sinkhorn as in the package: exp, then {SINKHORN_ITERATIONS} × (rows, then columns) in our orientation; column sums exact, row sums carry the truncation error; computed in f64 (the package uses f32)"
        ));
    } else {
        notes.push("unconstrained HC: no Sinkhorn, entries may be negative".to_string());
    }
    if skip != 1 {
        notes.push(format!(
            "static_alpha has {skip} leading branch-input columns (several input views or fractions); H_res is its last {n} columns"
        ));
    }
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
