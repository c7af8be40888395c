//! Layout `stack`: one tensor of finished matrices.

use super::*;

fn is_stack_shaped(info: &TensorInfo) -> bool {
    let s = &info.shape;
    info.dtype.float_size().is_some()
        && (s.len() == 3 || s.len() == 4)
        && s[s.len() - 1] == s[s.len() - 2]
}

/// The tensor to use as a stack when no key is given, and why.
pub(super) fn pick_stack_tensor(source: &dyn TensorSource) -> Result<(String, String), LoadError> {
    let path = source.path();
    let infos = source.tensors()?;
    if source.format() == Format::Npy {
        let info = &infos[0];
        return Ok((
            info.name.clone(),
            format!(
                "a .npy file holds one array (shape {:?}), used as the stack",
                info.shape
            ),
        ));
    }
    let strict: Vec<&TensorInfo> = infos.iter().filter(|i| is_stack_shaped(i)).collect();
    let loose: Vec<&TensorInfo> = infos
        .iter()
        .filter(|i| i.dtype.float_size().is_some() && (i.shape.len() == 3 || i.shape.len() == 4))
        .collect();
    let chosen = match (strict.as_slice(), loose.as_slice()) {
        ([one], _) => *one,
        ([], [one]) => *one,
        ([], _) => {
            // No tensor of rank 3 or 4, or several and none with square matrices: nothing to
            // suggest, since only a square candidate could be a stack.
            let names = source.names().to_vec();
            return Err(LoadError::NoHres {
                path: path.to_path_buf(),
                closest: closest_names(&names, &HRES_TARGETS, 3),
            });
        }
        (several, _) => {
            // Only square candidates, in numeric order (`layers.10` after `layers.2`).
            let mut several = several.to_vec();
            several.sort_by_cached_key(|i| natural_key(&i.name));
            return Err(LoadError::AmbiguousKey {
                path: path.to_path_buf(),
                candidates: several
                    .iter()
                    .map(|i| format!("{} {:?}", i.name, i.shape))
                    .collect(),
            });
        }
    };
    Ok((
        chosen.name.clone(),
        format!(
            "no model parameters of a known layout; '{}' (shape {:?}) is the only tensor of rank 3 or 4",
            chosen.name, chosen.shape
        ),
    ))
}

pub(super) fn load_stack(
    source: &dyn TensorSource,
    key: Option<&str>,
    reason: String,
) -> Result<LoadedHres, LoadError> {
    let (name, reason) = match key {
        Some(key) => (key.to_string(), reason),
        None => {
            let (name, why) = pick_stack_tensor(source)?;
            (name, format!("{reason}; {why}"))
        }
    };
    let info = source.info(&name)?;
    let array = source.read_f64(&name)?;
    let stack = LayerStack::from_dynamic(array.view(), &describe(source, &name))?;
    let mut notes = vec![
        "matrices used as stored: rows are taken as output streams (x_{l+1} = H x_l); pass --transpose if the file stores H_resᵀ".to_string(),
    ];
    for key in ["convention", "layout"] {
        if let Some(value) = source.metadata().get(key) {
            notes.push(format!("file metadata {key} = '{value}'"));
        }
    }
    Ok(LoadedHres {
        stack,
        layout: Layout::Stack,
        reason,
        tensors: vec![name],
        source_dtype: info.dtype.to_string(),
        exact_side: None,
        notes,
        ignored_evidence: None,
    })
}
