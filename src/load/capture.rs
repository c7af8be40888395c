//! The metadata of a capture written by the PyTorch companion (`python/`, `mhc_capture`): a
//! safetensors file with one tensor `hres [L, T, n, n]` (f32, rows = output streams) whose
//! `__metadata__` names the layout, the orientation, the module behind each layer and the
//! package versions. `audit` reads and shows it, and refuses a capture whose metadata
//! contradicts its tensor.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LoadError;

/// The `format` value of a companion capture.
pub(crate) const CAPTURE_FORMAT: &str = "mhc-capture";
/// The orientation every capture must declare.
pub(crate) const CAPTURE_ORIENTATION: &str = "rows are output streams";

/// One captured layer: the module call it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedModule {
    /// 1-based layer in execution order.
    pub layer: usize,
    /// The module's name in the model (`layers.3`).
    pub name: String,
    /// The module's class (`hyper_connections.ManifoldConstrainedHyperConnections`).
    pub class: String,
    /// Which call of that module this layer is (1 for the first; a module called twice is two
    /// layers).
    pub call: usize,
    /// `hc`, `mhc`, `mhc_v2` or `deepseek_v4`.
    pub kind: String,
    /// `attn` or `ffn`, for modules that wrap both sublayers of a block (DeepSeek-V4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sublayer: Option<String>,
}

/// What a companion capture says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaptureMetadata {
    /// `format_version`.
    pub format_version: String,
    /// One entry per layer, in execution order.
    pub modules: Vec<CapturedModule>,
    /// How tokens are ordered (the flattened leading dimensions of the module input).
    pub token_order: Option<String>,
    /// Package versions (`torch`, `hyper_connections`, `mhc_capture`, `python`).
    pub versions: BTreeMap<String, String>,
}

impl CaptureMetadata {
    /// The kinds of module captured, distinct, in order of first appearance (`["mhc"]`).
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = Vec::new();
        for module in &self.modules {
            if !kinds.contains(&module.kind.as_str()) {
                kinds.push(&module.kind);
            }
        }
        kinds
    }
}

/// The capture metadata of a file, if its `format` is [`CAPTURE_FORMAT`], checked against the
/// tensor `name` of shape `[layers, tokens, n, n]`: a capture whose metadata contradicts its
/// shape, or declares another orientation, is an error naming the key.
pub(crate) fn read_capture_metadata(
    path: &Path,
    name: &str,
    metadata: &BTreeMap<String, String>,
    shape: &[usize],
) -> Result<Option<CaptureMetadata>, LoadError> {
    if metadata.get("format").map(String::as_str) != Some(CAPTURE_FORMAT) {
        return Ok(None);
    }
    let contradiction = |key: &str, said: &str, expected: String| {
        LoadError::tensor(
            path,
            name,
            format!(
                "contradicts the capture metadata: {key} = '{said}', but the tensor {expected} (shape {shape:?})"
            ),
        )
    };
    if let Some(tensor) = metadata.get("tensor")
        && tensor != name
    {
        return Err(contradiction("tensor", tensor, format!("read is '{name}'")));
    }
    let [layers, tokens, rows, _] = match *shape {
        [l, t, r, c] => [l, t, r, c],
        [l, r, c] => [l, 1, r, c],
        _ => {
            return Err(LoadError::tensor(
                path,
                name,
                format!(
                    "is a capture ('format' = '{CAPTURE_FORMAT}') but has shape {shape:?}, expected [layers, tokens, n, n]"
                ),
            ));
        }
    };
    for (key, actual, what) in [
        ("layers", layers, "has"),
        ("tokens", tokens, "has"),
        ("streams", rows, "has"),
    ] {
        if let Some(said) = metadata.get(key)
            && said.trim().parse::<usize>().ok() != Some(actual)
        {
            return Err(contradiction(key, said, format!("{what} {actual} {key}")));
        }
    }
    if let Some(orientation) = metadata.get("orientation")
        && orientation != CAPTURE_ORIENTATION
    {
        return Err(LoadError::tensor(
            path,
            name,
            format!(
                "capture metadata says orientation = '{orientation}', expected '{CAPTURE_ORIENTATION}' (x_next = H @ x)"
            ),
        ));
    }
    let modules: Vec<CapturedModule> = match metadata.get("modules") {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            LoadError::format(
                path,
                format!("capture metadata 'modules' is not a JSON list of modules: {e}"),
            )
        })?,
        None => Vec::new(),
    };
    if !modules.is_empty() {
        if modules.len() != layers {
            return Err(contradiction(
                "modules",
                &format!("{} entries", modules.len()),
                format!("has {layers} layers"),
            ));
        }
        if let Some((k, module)) = modules.iter().enumerate().find(|(k, m)| m.layer != k + 1) {
            return Err(LoadError::format(
                path,
                format!(
                    "capture metadata 'modules' entry {} says layer {}, expected {} (layers in execution order from 1)",
                    k + 1,
                    module.layer,
                    k + 1
                ),
            ));
        }
    }
    let versions = match metadata.get("versions") {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            LoadError::format(
                path,
                format!("capture metadata 'versions' is not a JSON object of strings: {e}"),
            )
        })?,
        None => BTreeMap::new(),
    };
    Ok(Some(CaptureMetadata {
        format_version: metadata
            .get("format_version")
            .cloned()
            .unwrap_or_else(|| "unknown".to_string()),
        modules,
        token_order: metadata.get("token_order").cloned(),
        versions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MODULES: &str = r#"[{"layer": 1, "name": "layers.0", "class": "X", "call": 1, "kind": "mhc"},
                              {"layer": 2, "name": "layers.1", "class": "X", "call": 1, "kind": "hc"}]"#;

    #[test]
    fn a_consistent_capture_is_read() {
        let m = metadata(&[
            ("format", CAPTURE_FORMAT),
            ("format_version", "1"),
            ("layers", "2"),
            ("tokens", "5"),
            ("streams", "4"),
            ("orientation", CAPTURE_ORIENTATION),
            ("modules", MODULES),
            ("versions", r#"{"torch": "2.5"}"#),
        ]);
        let capture = read_capture_metadata(Path::new("c.safetensors"), "hres", &m, &[2, 5, 4, 4])
            .unwrap()
            .unwrap();
        assert_eq!(capture.modules[1].name, "layers.1");
        assert_eq!(capture.kinds(), ["mhc", "hc"]);
        assert_eq!(capture.versions["torch"], "2.5");
    }

    #[test]
    fn other_files_have_no_capture_metadata() {
        let m = metadata(&[("layers", "7")]);
        assert_eq!(
            read_capture_metadata(Path::new("x"), "hres", &m, &[2, 5, 4, 4]).unwrap(),
            None
        );
    }

    #[test]
    fn contradictions_are_named() {
        let base = [("format", CAPTURE_FORMAT), ("modules", MODULES)];
        let check = |extra: (&str, &str), shape: &[usize], expected: &str| {
            let mut m = metadata(&base);
            m.insert(extra.0.to_string(), extra.1.to_string());
            let err = read_capture_metadata(Path::new("c.safetensors"), "hres", &m, shape)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        };
        check(
            ("tokens", "6"),
            &[2, 5, 4, 4],
            "tokens = '6', but the tensor has 5 tokens",
        );
        check(("streams", "3"), &[2, 5, 4, 4], "streams = '3'");
        check(
            ("layers", "2"),
            &[3, 5, 4, 4],
            "layers = '2', but the tensor has 3 layers",
        );
        check(
            ("token_order", "batch-major"),
            &[3, 5, 4, 4],
            "modules = '2 entries', but the tensor has 3 layers",
        );
        check(
            ("orientation", "rows are input streams"),
            &[2, 5, 4, 4],
            "orientation = 'rows are input streams'",
        );
    }
}
