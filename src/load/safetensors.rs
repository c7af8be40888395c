//! safetensors files, single ([`SafetensorsFile`]) or sharded ([`ShardedSafetensors`]).
//!
//! A file is memory-mapped and its header parsed and validated by the `safetensors` crate
//! (header inside the file, tensor offsets contiguous, in range and matching shape × dtype, data
//! section fully covered). When the crate rejects a file, the header is inspected again here to
//! name the offending tensor in the message. Only the tensors asked for are ever touched, so
//! reading a few small tensors of a multi-GB checkpoint costs a header parse and a few pages.
//!
//! A sharded model is opened through its `*.safetensors.index.json`
//! (`{"weight_map": {tensor: shard_file}}`): the index gives the names; a shard is mapped only
//! when one of its tensors is needed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use memmap2::Mmap;
use ndarray::{ArrayD, IxDyn};
use safetensors::SafeTensors;

use super::{
    Dtype, Format, LoadError, TensorInfo, TensorLocation, TensorSource, TensorStorage,
    checked_numel, decode_floats, float_size_or_err, map_file, natural_key, not_found,
};

/// Where one tensor's bytes lie, relative to the start of the data section.
#[derive(Clone, Debug)]
struct Stored {
    info: TensorInfo,
    start: usize,
    end: usize,
}

/// One memory-mapped `.safetensors` file.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    tensors: HashMap<String, Stored>,
    names: Vec<String>,
    metadata: BTreeMap<String, String>,
}

fn convert_dtype(dtype: safetensors::Dtype) -> Dtype {
    match dtype {
        safetensors::Dtype::F16 => Dtype::F16,
        safetensors::Dtype::BF16 => Dtype::Bf16,
        safetensors::Dtype::F32 => Dtype::F32,
        safetensors::Dtype::F64 => Dtype::F64,
        other => Dtype::Other(format!("{other:?}").to_ascii_lowercase()),
    }
}

impl SafetensorsFile {
    /// Maps the file and validates its header; reads no tensor data.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let map = map_file(path)?;
        let file_len = map.len();
        if file_len < 8 {
            return Err(LoadError::format(
                path,
                format!(
                    "truncated safetensors file: {file_len} bytes, expected at least the 8-byte header length"
                ),
            ));
        }
        let n = u64::from_le_bytes(map[..8].try_into().expect("8 bytes"));
        if n > (file_len - 8) as u64 && map.get(8) != Some(&b'{') {
            return Err(LoadError::format(
                path,
                format!(
                    "not a safetensors file (first bytes {})",
                    super::hex_bytes(&map[..file_len.min(8)])
                ),
            ));
        }
        if n > (file_len - 8) as u64 {
            return Err(LoadError::format(
                path,
                format!("header length {n} exceeds file size {file_len}"),
            ));
        }
        let n = n as usize;
        let (_, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| diagnose(path, &map, n, &e))?;
        let mut tensors = HashMap::new();
        for (name, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            let stored = Stored {
                info: TensorInfo {
                    name: name.clone(),
                    shape: info.shape.clone(),
                    dtype: convert_dtype(info.dtype),
                },
                start,
                end,
            };
            tensors.insert(name, stored);
        }
        let mut names: Vec<String> = tensors.keys().cloned().collect();
        names.sort();
        let metadata = metadata
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Self {
            path: path.to_path_buf(),
            map,
            data_start: 8 + n,
            tensors,
            names,
            metadata,
        })
    }

    fn stored(&self, name: &str) -> Result<&Stored, LoadError> {
        self.tensors
            .get(name)
            .ok_or_else(|| not_found(&self.path, name, &self.names))
    }
}

impl TensorSource for SafetensorsFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> Format {
        Format::Safetensors
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn info(&self, name: &str) -> Result<TensorInfo, LoadError> {
        Ok(self.stored(name)?.info.clone())
    }

    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError> {
        let stored = self.stored(name)?;
        float_size_or_err(&self.path, &stored.info)?;
        // The crate checked that offsets are in range and match shape × dtype.
        let bytes = &self.map[self.data_start + stored.start..self.data_start + stored.end];
        let values = decode_floats(bytes, &stored.info.dtype, false);
        ArrayD::from_shape_vec(IxDyn(&stored.info.shape), values)
            .map_err(|e| LoadError::tensor(&self.path, name, format!("cannot be shaped: {e}")))
    }

    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        let stored = self.stored(name)?;
        Ok(TensorStorage::Contiguous(TensorLocation {
            file: self.path.clone(),
            offset: (self.data_start + stored.start) as u64,
            info: stored.info.clone(),
            big_endian: false,
            fortran_order: false,
        }))
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

/// Turns the crate's rejection into a message naming the tensor at fault.
fn diagnose(path: &Path, map: &[u8], n: usize, error: &safetensors::SafeTensorError) -> LoadError {
    use safetensors::SafeTensorError as E;
    let header = &map[8..8 + n];
    match error {
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) | E::JsonError(_) => {
            return LoadError::format(
                path,
                format!("safetensors header ({n} bytes) is not valid JSON: {error}"),
            );
        }
        E::HeaderTooLarge => {
            return LoadError::format(
                path,
                format!("safetensors header length {n} exceeds the 100 MB limit"),
            );
        }
        _ => {}
    }
    let data_len = map.len() - 8 - n;
    let fallback = || LoadError::format(path, format!("invalid safetensors header: {error}"));
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice(header) else {
        return fallback();
    };
    let mut spans: Vec<(usize, usize, &str)> = Vec::new();
    let mut sorted: Vec<(&String, &serde_json::Value)> = entries
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    sorted.sort_by_key(|(k, _)| natural_key(k));
    for (name, entry) in sorted {
        let offsets = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| match o.as_slice() {
                [s, e] => Some((s.as_u64()?, e.as_u64()?)),
                _ => None,
            });
        let Some((start, end)) = offsets else {
            return LoadError::tensor(path, name, "has no valid data_offsets [start, end]");
        };
        if end < start {
            return LoadError::tensor(
                path,
                name,
                format!("has data offsets [{start}, {end}] that end before they start"),
            );
        }
        if end > data_len as u64 {
            return LoadError::tensor(
                path,
                name,
                format!(
                    "has data offsets [{start}, {end}] beyond the data section of {data_len} bytes (truncated file or wrong header)"
                ),
            );
        }
        let dtype = entry.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
        let shape: Option<Vec<usize>> = entry.get("shape").and_then(|s| {
            s.as_array()?
                .iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect()
        });
        let bits = serde_json::from_value::<safetensors::Dtype>(serde_json::Value::String(
            dtype.to_string(),
        ))
        .map(|d| d.bitsize())
        .ok();
        if let (Some(shape), Some(bits)) = (&shape, bits) {
            let expected = checked_numel(shape)
                .and_then(|numel| numel.checked_mul(bits))
                .map(|b| b.div_ceil(8));
            if expected != Some((end - start) as usize) {
                return LoadError::tensor(
                    path,
                    name,
                    format!(
                        "has {} data bytes for dtype {dtype} and shape {shape:?}, expected {}",
                        end - start,
                        expected.map_or("an overflowing size".to_string(), |e| e.to_string())
                    ),
                );
            }
        }
        spans.push((start as usize, end as usize, name));
    }
    spans.sort();
    for pair in spans.windows(2) {
        if pair[1].0 < pair[0].1 {
            return LoadError::format(
                path,
                format!(
                    "tensors '{}' and '{}' have overlapping data offsets",
                    pair[0].2, pair[1].2
                ),
            );
        }
    }
    let covered: usize = spans.iter().map(|(s, e, _)| e - s).sum();
    if covered != data_len {
        return LoadError::format(
            path,
            format!(
                "tensors cover {covered} bytes but the data section has {data_len} bytes (gaps or trailing bytes)"
            ),
        );
    }
    fallback()
}

/// A model split over several safetensors files, opened through its index JSON.
pub struct ShardedSafetensors {
    path: PathBuf,
    names: Vec<String>,
    shard_of: HashMap<String, usize>,
    shard_files: Vec<PathBuf>,
    shards: Mutex<Vec<Option<Arc<SafetensorsFile>>>>,
    metadata: BTreeMap<String, String>,
}

/// Index files are small; refuse anything absurd rather than read it into memory.
const MAX_INDEX_BYTES: u64 = 256 << 20;

impl ShardedSafetensors {
    /// Reads the index and checks that every shard it names exists; maps no shard.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let len = std::fs::metadata(path)
            .map_err(|e| LoadError::io(path, e))?
            .len();
        if len > MAX_INDEX_BYTES {
            return Err(LoadError::format(
                path,
                format!("JSON file of {len} bytes is too large for a safetensors index"),
            ));
        }
        let text = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
        let index: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| LoadError::format(path, format!("not valid JSON: {e}")))?;
        let Some(weight_map) = index.get("weight_map").and_then(|w| w.as_object()) else {
            return Err(LoadError::format(
                path,
                "JSON file is not a safetensors index: expected an object with a \"weight_map\" of tensor name → shard file",
            ));
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut shard_files: Vec<PathBuf> = Vec::new();
        let mut shard_index: HashMap<&str, usize> = HashMap::new();
        let mut shard_of = HashMap::with_capacity(weight_map.len());
        for (name, file) in weight_map {
            let Some(file) = file.as_str() else {
                return Err(LoadError::format(
                    path,
                    format!("weight_map entry '{name}' is not a file name string"),
                ));
            };
            let id = match shard_index.get(file) {
                Some(&id) => id,
                None => {
                    let relative = Path::new(file);
                    if !relative
                        .components()
                        .all(|c| matches!(c, Component::Normal(_)))
                    {
                        return Err(LoadError::format(
                            path,
                            format!("shard '{file}' must be a plain file name next to the index"),
                        ));
                    }
                    let shard_path = dir.join(relative);
                    if !shard_path.is_file() {
                        return Err(LoadError::format(
                            path,
                            format!(
                                "index names shard '{file}' (for tensor '{name}'), which does not exist"
                            ),
                        ));
                    }
                    shard_files.push(shard_path);
                    shard_index.insert(file, shard_files.len() - 1);
                    shard_files.len() - 1
                }
            };
            shard_of.insert(name.clone(), id);
        }
        let mut names: Vec<String> = shard_of.keys().cloned().collect();
        names.sort();
        let metadata = index
            .get("metadata")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let shards = Mutex::new(vec![None; shard_files.len()]);
        Ok(Self {
            path: path.to_path_buf(),
            names,
            shard_of,
            shard_files,
            shards,
            metadata,
        })
    }

    /// The shard holding `name`, mapped on first use.
    fn shard(&self, name: &str) -> Result<Arc<SafetensorsFile>, LoadError> {
        let &id = self
            .shard_of
            .get(name)
            .ok_or_else(|| not_found(&self.path, name, &self.names))?;
        let mut shards = self
            .shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(shard) = &shards[id] {
            return Ok(Arc::clone(shard));
        }
        let shard = Arc::new(SafetensorsFile::open(&self.shard_files[id])?);
        shards[id] = Some(Arc::clone(&shard));
        Ok(shard)
    }

    /// How many shards have been mapped so far (for the test of the lazy opening).
    #[cfg(test)]
    fn opened_shards(&self) -> usize {
        self.shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|s| s.is_some())
            .count()
    }

    fn missing_in_shard(&self, name: &str, shard: &SafetensorsFile) -> LoadError {
        LoadError::tensor(
            &self.path,
            name,
            format!(
                "is mapped to shard '{}' by the index, but that shard does not hold it",
                shard.path().display()
            ),
        )
    }
}

impl TensorSource for ShardedSafetensors {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> Format {
        Format::ShardedSafetensors
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn info(&self, name: &str) -> Result<TensorInfo, LoadError> {
        let shard = self.shard(name)?;
        if !shard.tensors.contains_key(name) {
            return Err(self.missing_in_shard(name, &shard));
        }
        shard.info(name)
    }

    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError> {
        let shard = self.shard(name)?;
        if !shard.tensors.contains_key(name) {
            return Err(self.missing_in_shard(name, &shard));
        }
        shard.read_f64(name)
    }

    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        let shard = self.shard(name)?;
        if !shard.tensors.contains_key(name) {
            return Err(self.missing_in_shard(name, &shard));
        }
        shard.storage(name)
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::layouts::{LoadOptions, load_hres_from};

    /// Opening the index maps no shard; loading H_res maps only the two shards that hold it,
    /// never the third (which is garbage in the fixture).
    #[test]
    fn sharded_model_opens_only_the_shards_it_needs() {
        let index = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/checkpoints/sharded/model.safetensors.index.json");
        let source = ShardedSafetensors::open(&index).unwrap();
        assert_eq!(source.opened_shards(), 0);
        load_hres_from(&source, &LoadOptions::default()).unwrap();
        assert_eq!(source.opened_shards(), 2);
    }
}
