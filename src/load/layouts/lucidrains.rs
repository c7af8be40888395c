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
    tie: &TieBreak<'_>,
) -> Result<LoadedHres, LoadError> {
    let path = source.path();
    let units = prefixes(source.names(), LUCIDRAINS_ROLE);
    if units.is_empty() {
        return Err(no_units(source, layout, "*.static_alpha"));
    }
    let ordered = order_units(path, units, LUCIDRAINS_ROLE, tie)?;
    let units = ordered.prefixes;
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

/// One lucidrains `hyper-connections` 0.4.11 module's H_res parameters (`num_fracs = 1`).
///
/// The package's width connection, for input streams x_s ∈ R^dim (s = 0 … n−1):
/// `u_s = x_s` (mHCv2 with `mix_streams_before_norm`: `u_s = Σ_r W[s, r] x_r`, W the 1×1
/// convolution `maybe_mix_streams.weight`); the norm `x̂_s = u_s / max(‖u_s‖₂, 1e-12) · √dim ·
/// (γ + 1)` (its `RMSNorm`: `F.normalize`, γ = `norm.gamma`, initialised to 0);
/// `alpha_p[s, t] = static_alpha[s, t] + scale · act(⟨x̂_s, fn_p[:, t]⟩)` with
/// act = tanh (HC with `tanh=True`, the default) or the identity (HC with `tanh=False`, and the
/// mHC classes, which have no tanh), scale = `dynamic_alpha_scale` (HC) or `residual_scale`
/// (mHC: the H_res columns' scale; `pre_branch_scale` scales column 0, which is not H_res).
/// The stream mix is `out_t = Σ_s alpha[s, skip + t] · x_s`: row s of alpha belongs to input
/// stream s, i.e. to **column** s of our H_res, and our logits are
/// `L_p[t, s] = alpha_p[s, skip + t]` (**transposed**). HC: H_res = L; mHC: H_res = mean over
/// proposals p of Sinkhorn(L_p) (the package's `sinkhorn_knopps`, 20 × (its dim −2, then −1),
/// which is rows, then columns, in our orientation).
#[derive(Clone, Debug, PartialEq)]
pub struct LucidrainsDynamic {
    /// [`Layout::LucidrainsHc`] or [`Layout::LucidrainsMhc`].
    pub layout: Layout,
    /// n.
    pub streams: usize,
    /// Branch-input columns before the H_res block of `static_alpha` (`num_input_views`).
    pub skip: usize,
    /// Feature dimension of one stream.
    pub dim: usize,
    /// `static_alpha`, `[n, skip + n]` row-major, as stored.
    pub static_alpha: Vec<f64>,
    /// Number of dynamic-alpha proposals P (1 for HC and for `dynamic_alpha_fn` of rank 2).
    pub proposals: usize,
    /// `dynamic_alpha_fn`, `[P, dim, skip + n]` row-major.
    pub dynamic_alpha_fn: Vec<f64>,
    /// `dynamic_alpha_scale` (HC) or `residual_scale` (mHC).
    pub scale: f64,
    /// The norm's effective weight `norm.gamma + 1`, `[dim]`.
    pub norm_weight: Vec<f64>,
    /// mHCv2's `maybe_mix_streams.weight` as `[n, n]` (output stream, input stream), if present.
    pub stream_mix: Option<Vec<f64>>,
    /// Whether `tanh` bounds the projection.
    pub tanh: bool,
}

/// `F.normalize`'s ε.
const NORMALIZE_EPS: f64 = 1e-12;

impl LucidrainsDynamic {
    pub(super) fn read(
        source: &dyn TensorSource,
        layout: Layout,
        prefix: &str,
        options: &DynamicOptions,
    ) -> Result<Self, LoadError> {
        let path = source.path();
        let alpha_name = format!("{prefix}{LUCIDRAINS_ROLE}");
        let alpha_shape = source.info(&alpha_name)?.shape;
        let (n, columns) = match alpha_shape.as_slice() {
            [n, c] if c > n && *n > 0 => (*n, *c),
            other => {
                return Err(LoadError::tensor(
                    path,
                    &alpha_name,
                    shape_error(other, "[n, p + n]"),
                ));
            }
        };
        let skip = columns - n;
        let static_alpha = read_shaped(source, &alpha_name, &alpha_shape, &alpha_shape, "")?;
        let fn_name = format!("{prefix}dynamic_alpha_fn");
        let fn_shape = shape_of(source, &fn_name, &alpha_name)?;
        let (proposals, dim) = match (layout, fn_shape.as_slice()) {
            (_, [dim, c]) if *c == columns && *dim > 0 => (1, *dim),
            (Layout::LucidrainsMhc, [p, dim, c]) if *c == columns && *p > 0 && *dim > 0 => {
                (*p, *dim)
            }
            (_, other) => {
                let wanted = if layout == Layout::LucidrainsMhc {
                    format!("[dim, {columns}] or [proposals, dim, {columns}]")
                } else {
                    format!("[dim, {columns}]")
                };
                return Err(LoadError::tensor(
                    path,
                    &fn_name,
                    shape_error(other, &wanted),
                ));
            }
        };
        let dynamic_alpha_fn = read_shaped(source, &fn_name, &fn_shape, &fn_shape, "")?;
        let scale_role = match layout {
            Layout::LucidrainsHc => "dynamic_alpha_scale",
            _ => "residual_scale",
        };
        let scale_name = format!("{prefix}{scale_role}");
        let scale_shape = shape_of(source, &scale_name, &alpha_name)?;
        if scale_shape.iter().product::<usize>() != 1 || scale_shape.len() > 1 {
            return Err(LoadError::tensor(
                path,
                &scale_name,
                shape_error(&scale_shape, "[] or [1]"),
            ));
        }
        let scale = read_finite(source, &scale_name)?
            .iter()
            .copied()
            .next()
            .expect("one element");
        let gamma_name = format!("{prefix}norm.gamma");
        let gamma_shape = shape_of(source, &gamma_name, &alpha_name)?;
        let gamma = read_shaped(
            source,
            &gamma_name,
            &gamma_shape,
            &[dim],
            &format!("[{dim}] (dim of dynamic_alpha_fn)"),
        )?;
        let mix_name = format!("{prefix}maybe_mix_streams.weight");
        let stream_mix = if source.names().contains(&mix_name) {
            let shape = source.info(&mix_name)?.shape;
            Some(read_shaped(
                source,
                &mix_name,
                &shape,
                &[n, n, 1, 1],
                &format!("[{n}, {n}, 1, 1]"),
            )?)
        } else {
            None
        };
        Ok(Self {
            layout,
            streams: n,
            skip,
            dim,
            static_alpha,
            proposals,
            dynamic_alpha_fn,
            scale,
            norm_weight: gamma.iter().map(|g| g + 1.0).collect(),
            stream_mix,
            tanh: layout == Layout::LucidrainsHc && options.lucidrains_hc_tanh,
        })
    }

    pub(crate) fn hres_map(&self) -> HresMap {
        match self.layout {
            Layout::LucidrainsHc => HresMap::Identity,
            _ => HresMap::Sinkhorn(SinkhornParams {
                iterations: SINKHORN_ITERATIONS,
                order: SinkhornOrder::RowsThenColumns,
            }),
        }
    }

    fn columns(&self) -> usize {
        self.skip + self.streams
    }

    /// `fn_p[:, skip + t]` with the norm weight folded in, as one vector of length dim.
    fn folded_column(&self, proposal: usize, t: usize) -> impl Iterator<Item = f64> + '_ {
        let columns = self.columns();
        let base = proposal * self.dim * columns + self.skip + t;
        (0..self.dim).map(move |d| self.norm_weight[d] * self.dynamic_alpha_fn[base + d * columns])
    }

    pub(crate) fn logits(&self, x: &[f64], out: &mut [f64]) {
        let (n, dim) = (self.streams, self.dim);
        let columns = self.columns();
        let root_dim = (dim as f64).sqrt();
        let mut u = vec![0.0; dim];
        let mut normed = vec![0.0; dim];
        for s in 0..n {
            match &self.stream_mix {
                Some(w) => {
                    u.fill(0.0);
                    for r in 0..n {
                        let weight = w[s * n + r];
                        for (acc, v) in u.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
                            *acc += weight * v;
                        }
                    }
                }
                None => u.copy_from_slice(&x[s * dim..(s + 1) * dim]),
            }
            let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
            let divisor = norm.max(NORMALIZE_EPS);
            for ((o, v), g) in normed.iter_mut().zip(&u).zip(&self.norm_weight) {
                *o = v / divisor * root_dim * g;
            }
            for p in 0..self.proposals {
                let fn_p = &self.dynamic_alpha_fn[p * dim * columns..(p + 1) * dim * columns];
                for t in 0..n {
                    let z: f64 = (0..dim)
                        .map(|d| normed[d] * fn_p[d * columns + self.skip + t])
                        .sum();
                    let act = if self.tanh { z.tanh() } else { z };
                    out[p * n * n + t * n + s] =
                        self.static_alpha[s * columns + self.skip + t] + self.scale * act;
                }
            }
        }
    }

    /// One box per proposal: `L_p[t, s] ∈ static_alpha[s, skip + t] ± |scale|·act(√dim·‖(γ+1)∘fn_p[:, skip + t]‖₂)`.
    /// Attained (up to rounding) by a stream s whose normalised input is parallel to
    /// `(γ+1)∘fn_p[:, skip + t]`; without a stream mix, each column s of our H depends on
    /// stream s alone.
    pub(crate) fn logit_boxes(&self) -> Result<Vec<LogitBox>, CertifyError> {
        let n = self.streams;
        let columns = self.columns();
        let root_dim = (self.dim as f64).sqrt();
        (0..self.proposals)
            .map(|p| {
                let mut center = vec![0.0; n * n];
                let mut radius = vec![0.0; n * n];
                for t in 0..n {
                    let reach =
                        root_dim * self.folded_column(p, t).map(|v| v * v).sum::<f64>().sqrt();
                    let act = if self.tanh { reach.tanh() } else { reach };
                    for s in 0..n {
                        center[t * n + s] = self.static_alpha[s * columns + self.skip + t];
                        radius[t * n + s] = self.scale.abs() * act;
                    }
                }
                LogitBox::around(n, &center, &radius, self.dim)
            })
            .collect()
    }

    /// The package's initialisation ([`Layout::initial_hres`]): HC gives H_res = I, the mHC
    /// classes Sinkhorn(I).
    pub(crate) fn initial_hres(&self) -> Vec<f64> {
        self.layout
            .initial_hres(self.streams)
            .expect("both lucidrains layouts state their initialisation")
    }
}
