//! DeepSeek-V4 reference code: `hc_attn_*` / `hc_ffn_*` per block.

use std::collections::BTreeSet;

use super::*;
use crate::generate::map::deepseek_sinkhorn;

/// Role names of the DeepSeek-V4 static parameters.
const DEEPSEEK_ATTN_ROLE: &str = "hc_attn_base";
const DEEPSEEK_FFN_ROLE: &str = "hc_ffn_base";

/// The block prefixes (`layers.3.`) of every DeepSeek-V4 H_res parameter in `names`, sorted.
/// All DeepSeek-V4 name matching goes through this one function.
pub(super) fn deepseek_prefixes(names: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = [DEEPSEEK_ATTN_ROLE, DEEPSEEK_FFN_ROLE]
        .into_iter()
        .flat_map(|role| [role.to_string(), format!("{role}{GGUF_WEIGHT_SUFFIX}")])
        .flat_map(|role| prefixes(names, &role))
        .collect();
    set.into_iter().collect()
}

/// llama.cpp's GGUF converter appends this to every DeepSeek-V4 parameter's name.
const GGUF_WEIGHT_SUFFIX: &str = ".weight";

/// The name of the DeepSeek-V4 tensor `hc_{sub}_{part}` of the block at `prefix`, as the file
/// spells it: the reference checkpoint's `layers.0.hc_attn_base`, or else llama.cpp GGUF's
/// `blk.0.hc_attn_base.weight` (the same values, f32, same shape once GGUF's innermost-first
/// dimensions are reversed). The reference spelling when neither is present.
fn deepseek_tensor_name(source: &dyn TensorSource, prefix: &str, sub: &str, part: &str) -> String {
    let reference = format!("{prefix}hc_{sub}_{part}");
    let gguf = format!("{reference}{GGUF_WEIGHT_SUFFIX}");
    let has = |name: &str| {
        source
            .names()
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    };
    if !has(&reference) && has(&gguf) {
        gguf
    } else {
        reference
    }
}

/// n from the base length (2 + n)·n, if it is one.
fn deepseek_streams(len: usize) -> Option<usize> {
    let n = ((1.0 + len as f64).sqrt() - 1.0).round() as usize;
    (n >= 1 && (2 + n) * n == len).then_some(n)
}

/// The DeepSeek-V4 block prefixes in execution order, with notes (multi-token-prediction
/// modules are left out: they are not on the main residual path).
pub(super) fn deepseek_blocks(
    source: &dyn TensorSource,
    tie: &TieBreak<'_>,
) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let all = deepseek_prefixes(source.names());
    if all.is_empty() {
        return Err(no_units(
            source,
            Layout::DeepseekV4,
            "*.hc_attn_base / *.hc_ffn_base",
        ));
    }
    let mut notes = Vec::new();
    let (mtp, blocks): (Vec<String>, Vec<String>) = all.into_iter().partition(|p| {
        p.split('.')
            .any(|c| c.to_ascii_lowercase().starts_with("mtp"))
    });
    if !mtp.is_empty() {
        notes.push(format!(
            "ignored {} multi-token-prediction module(s) (e.g. '{}'): not on the main residual path",
            mtp.len(),
            mtp[0]
        ));
    }
    let ordered = order_units(source.path(), blocks, "hc_*_base", tie)?;
    notes.extend(ordered.notes);
    Ok((ordered.prefixes, notes))
}

pub(super) fn load_deepseek(
    source: &dyn TensorSource,
    reason: String,
    tie: &TieBreak<'_>,
) -> Result<LoadedHres, LoadError> {
    let layout = Layout::DeepseekV4;
    let path = source.path();
    let (blocks, mut notes) = deepseek_blocks(source, tie)?;
    let names: BTreeSet<&str> = source.names().iter().map(String::as_str).collect();
    let mut dtypes = DtypeSet::default();
    let mut tensors = Vec::new();
    let mut matrices = Vec::with_capacity(2 * blocks.len());
    let mut streams: Option<usize> = None;
    for prefix in &blocks {
        for sub in ["attn", "ffn"] {
            let base_name = deepseek_tensor_name(source, prefix, sub, "base");
            if !names.contains(base_name.as_str()) {
                return Err(LoadError::tensor(
                    path,
                    &base_name,
                    "not found: every DeepSeek-V4 block needs both hc_attn_base and hc_ffn_base",
                ));
            }
            let info = source.info(&base_name)?;
            let expected_n = streams;
            let n = match (info.shape.as_slice(), expected_n) {
                ([len], Some(n)) if *len == (2 + n) * n => n,
                ([len], None) => deepseek_streams(*len).ok_or_else(|| {
                    LoadError::tensor(
                        path,
                        &base_name,
                        shape_error(&info.shape, "[(2 + n)·n] = [pre n | post n | comb n²]"),
                    )
                })?,
                (_, Some(n)) => {
                    return Err(LoadError::tensor(
                        path,
                        &base_name,
                        shape_error(
                            &info.shape,
                            &format!("[{}] (n = {n} like the other blocks)", (2 + n) * n),
                        ),
                    ));
                }
                (_, None) => {
                    return Err(LoadError::tensor(
                        path,
                        &base_name,
                        shape_error(&info.shape, "[(2 + n)·n] = [pre n | post n | comb n²]"),
                    ));
                }
            };
            streams = Some(n);
            let scale_name = deepseek_tensor_name(source, prefix, sub, "scale");
            if names.contains(scale_name.as_str()) {
                let scale = source.info(&scale_name)?;
                if scale.shape != [3] {
                    return Err(LoadError::tensor(
                        path,
                        &scale_name,
                        shape_error(&scale.shape, "[3]"),
                    ));
                }
            }
            let fn_name = deepseek_tensor_name(source, prefix, sub, "fn");
            if names.contains(fn_name.as_str()) {
                let f = source.info(&fn_name)?;
                if f.shape.len() != 2 || f.shape[0] != (2 + n) * n || f.shape[1] % n != 0 {
                    return Err(LoadError::tensor(
                        path,
                        &fn_name,
                        shape_error(&f.shape, &format!("[{}, {n}·dim]", (2 + n) * n)),
                    ));
                }
            }
            dtypes.add(info.dtype);
            let base = read_finite(source, &base_name)?;
            let base: Vec<f64> = base.iter().copied().collect();
            let mut comb = base[2 * n..].to_vec();
            deepseek_sinkhorn(&mut comb, n, SINKHORN_ITERATIONS, DEEPSEEK_EPS);
            // H_res = combᵀ.
            let mut h = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] = comb[j * n + i];
                }
            }
            matrices.push(h);
            tensors.push(base_name);
        }
    }
    let n = streams.expect("at least one block");
    let stack = stack_from_matrices(source, layout, n, matrices)?;
    notes.extend([
        "input-independent H_res: the comb part of hc_*_base alone (mixes = 0); per-token H_res needs hidden states".to_string(),
        "block b gives layer 2b−1 (attention) and layer 2b (FFN), in execution order".to_string(),
        format!(
            "Sinkhorn as in the reference code: softmax over the last dim + ε, columns + ε, then {} × (rows + ε, columns + ε), ε = {DEEPSEEK_EPS}; H_res = combᵀ, so row sums are exact to ε; computed in f64 (the reference uses f32)",
            SINKHORN_ITERATIONS - 1
        ),
        "hc_head_* (the stream merge before the output head) is not an H_res and is ignored".to_string(),
    ]);
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

/// One DeepSeek-V4 sublayer's H_res parameters (the comb part of `hc_{attn,ffn}_{fn,base,scale}`).
///
/// The reference code (`Block.hc_pre` and `hc_split_sinkhorn` in the model's inference code):
/// x = the n streams flattened (n·dim); `mixes = (fn @ x) · rsqrt(mean(x²) + norm_eps)` (no
/// norm weight); `comb[j, k] = mixes[2n + j·n + k] · scale[2] + base[2n + j·n + k]`, then the
/// ε-Sinkhorn ([`HresMap::DeepseekSinkhorn`]), and `hc_post` gives output stream k
/// `Σ_j comb[j, k] x_j`: H_res = combᵀ, so our logits are `L[i, j] = comb_logit[j, i]`
/// (**transposed**). Only the n² comb rows of `fn` are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepseekDynamic {
    /// n (`hc_mult`).
    pub streams: usize,
    /// Hidden size per stream.
    pub dim: usize,
    /// The comb rows of `fn`, `[n², n·dim]` row-major, in comb order (row j·n + k).
    pub comb_fn: Vec<f64>,
    /// `scale[2]`.
    pub comb_scale: f64,
    /// `base[2n:]`, `[n²]` in comb order.
    pub comb_base: Vec<f64>,
    /// `norm_eps`.
    pub norm_eps: f64,
    /// `hc_eps`.
    pub hc_eps: f64,
}

impl DeepseekDynamic {
    pub(super) fn read(
        source: &dyn TensorSource,
        prefix: &str,
        sub: &str,
        options: &DynamicOptions,
    ) -> Result<Self, LoadError> {
        let path = source.path();
        let base_name = deepseek_tensor_name(source, prefix, sub, "base");
        let base_shape = shape_of(source, &base_name, &format!("{prefix}hc_{sub}_*"))?;
        let n = match base_shape.as_slice() {
            [len] => deepseek_streams(*len),
            _ => None,
        }
        .ok_or_else(|| {
            LoadError::tensor(
                path,
                &base_name,
                shape_error(&base_shape, "[(2 + n)·n] = [pre n | post n | comb n²]"),
            )
        })?;
        let mix = (2 + n) * n;
        let base = read_shaped(source, &base_name, &base_shape, &[mix], "")?;
        let scale_name = deepseek_tensor_name(source, prefix, sub, "scale");
        let scale_shape = shape_of(source, &scale_name, &base_name)?;
        let scale = read_shaped(source, &scale_name, &scale_shape, &[3], "[3]")?;
        let fn_name = deepseek_tensor_name(source, prefix, sub, "fn");
        let fn_shape = shape_of(source, &fn_name, &base_name)?;
        let dim = match fn_shape.as_slice() {
            [rows, cols] if *rows == mix && cols % n == 0 && *cols > 0 => cols / n,
            other => {
                return Err(LoadError::tensor(
                    path,
                    &fn_name,
                    shape_error(other, &format!("[{mix}, {n}·dim]")),
                ));
            }
        };
        let full = read_finite(source, &fn_name)?;
        let comb_fn: Vec<f64> = full.iter().skip(2 * n * n * dim).copied().collect();
        Ok(Self {
            streams: n,
            dim,
            comb_fn,
            comb_scale: scale[2],
            comb_base: base[2 * n..].to_vec(),
            norm_eps: options.deepseek_norm_eps,
            hc_eps: DEEPSEEK_EPS,
        })
    }

    pub(crate) fn hres_map(&self) -> HresMap {
        HresMap::DeepseekSinkhorn {
            iterations: SINKHORN_ITERATIONS,
            eps: self.hc_eps,
        }
    }

    pub(crate) fn logits(&self, x: &[f64], out: &mut [f64]) {
        let n = self.streams;
        let width = n * self.dim;
        let mean_square = x.iter().map(|v| v * v).sum::<f64>() / width as f64;
        let inverse_rms = 1.0 / (mean_square + self.norm_eps).sqrt();
        for j in 0..n {
            for k in 0..n {
                let c = j * n + k;
                let row = &self.comb_fn[c * width..(c + 1) * width];
                let mix: f64 = row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() * inverse_rms;
                out[k * n + j] = mix * self.comb_scale + self.comb_base[c];
            }
        }
    }

    /// `L[k, j] ∈ base[2n + j·n + k] ± |scale[2]|·√(n·dim)·‖fn[2n + j·n + k]‖₂`: the flattened,
    /// RMS-normalised input has ‖x̂‖₂ < √(n·dim); approached (not reached, because of ε) by
    /// x ∥ that row as ‖x‖ grows. All n² logits share one input.
    pub(crate) fn logit_box(&self) -> Result<LogitBox, CertifyError> {
        let n = self.streams;
        let width = n * self.dim;
        let root_width = (width as f64).sqrt();
        let mut center = vec![0.0; n * n];
        let mut radius = vec![0.0; n * n];
        for j in 0..n {
            for k in 0..n {
                let c = j * n + k;
                let row = &self.comb_fn[c * width..(c + 1) * width];
                center[k * n + j] = self.comb_base[c];
                radius[k * n + j] = self.comb_scale.abs()
                    * root_width
                    * row.iter().map(|v| v * v).sum::<f64>().sqrt();
            }
        }
        LogitBox::around(n, &center, &radius, width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepseek_stream_count_from_base_length() {
        assert_eq!(deepseek_streams(24), Some(4));
        assert_eq!(deepseek_streams(3), Some(1));
        assert_eq!(deepseek_streams(25), None);
    }

    #[test]
    fn deepseek_sinkhorn_with_zero_eps_matches_the_paper_order() {
        // ε = 0: softmax over comb rows, then columns, then 19 × (rows, columns) in comb
        // orientation equals the paper's 20 × (columns, rows) on H = combᵀ.
        let comb0 = [0.3, -1.2, 2.0, 0.7, 0.1, -0.4, 1.5, -2.2, 0.9];
        let mut comb = comb0.to_vec();
        deepseek_sinkhorn(&mut comb, 3, 20, 0.0);
        let mut h: Vec<f64> = (0..9).map(|k| comb0[(k % 3) * 3 + k / 3]).collect();
        sinkhorn_in_place(
            &mut h,
            3,
            &SinkhornParams {
                iterations: 20,
                order: SinkhornOrder::ColumnsThenRows,
            },
        );
        for i in 0..3 {
            for j in 0..3 {
                assert!((h[i * 3 + j] - comb[j * 3 + i]).abs() < 1e-15);
            }
        }
    }
}
