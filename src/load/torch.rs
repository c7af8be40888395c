//! PyTorch checkpoints written by `torch.save` (the zip format, torch ≥ 1.6).
//!
//! The archive holds `<root>/data.pkl` (a pickle of the saved object, decoded by the
//! allow-listed decoder in `pickle`, which executes nothing), `<root>/data/<key>`
//! (one raw little-endian storage per key, usually stored uncompressed and 64-byte aligned), and
//! `<root>/byteorder`. Tensors are views into storages: element offset, size and stride are
//! honoured (non-contiguous views are gathered element by element), and every index is checked
//! against the storage before it is read. Nested containers are flattened into dotted names
//! (`{'model': {'w': t}}` → `model.w`), so `{'state_dict': ...}` checkpoints work too.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use super::archive::ZipIndex;
use super::pickle::{self, PickleError, TensorRef};
use super::{
    Format, LoadError, TensorInfo, TensorLocation, TensorSource, TensorStorage, checked_numel,
    decode_floats, float_size_or_err, not_found,
};

/// One tensor of the checkpoint: where its storage lives and how to view it (counts in
/// elements).
#[derive(Clone, Debug)]
struct TorchTensor {
    info: TensorInfo,
    view: View,
}

#[derive(Clone, Debug)]
struct View {
    /// The storage's key: member `<root>data/<key>`.
    key: String,
    /// Elements in the storage.
    storage_numel: u64,
    offset: u64,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl From<&TensorRef> for View {
    fn from(t: &TensorRef) -> Self {
        Self {
            key: t.storage.key.clone(),
            storage_numel: t.storage.numel,
            offset: t.offset,
            shape: t.shape.clone(),
            stride: t.stride.clone(),
        }
    }
}

/// A `torch.save` zip archive, memory-mapped.
pub(crate) struct TorchFile {
    zip: ZipIndex,
    /// The archive's root directory, with a trailing `/` (empty if members sit at the top).
    root: String,
    big_endian: bool,
    tensors: BTreeMap<String, TorchTensor>,
    names: Vec<String>,
    /// The names in pickle order (the state dict's insertion order).
    recorded: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl TorchFile {
    pub(crate) fn from_zip(zip: ZipIndex) -> Result<Self, LoadError> {
        let path = zip.path().to_path_buf();
        let pickles: Vec<&str> = zip
            .entries()
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
            .collect();
        let member = match pickles.as_slice() {
            [one] => one.to_string(),
            _ => {
                return Err(LoadError::format(
                    &path,
                    format!(
                        "expected one data.pkl in the PyTorch archive, found {}: {}",
                        pickles.len(),
                        pickles.join(", ")
                    ),
                ));
            }
        };
        let root = member[..member.len() - "data.pkl".len()].to_string();
        let big_endian = match zip.entry(&format!("{root}byteorder")) {
            Some(entry) => {
                let order = zip.read(entry)?;
                match order.trim_ascii() {
                    b"little" => false,
                    b"big" => true,
                    other => {
                        return Err(LoadError::format(
                            &path,
                            format!(
                                "{root}byteorder says '{}', expected 'little' or 'big'",
                                String::from_utf8_lossy(other)
                            ),
                        ));
                    }
                }
            }
            None => false,
        };
        let pickle_entry = zip.entry(&member).expect("listed above");
        let bytes = zip.read(pickle_entry)?;
        let found = pickle::read_tensors(&bytes).map_err(|e| match e {
            PickleError::Opcode { opcode, offset } => LoadError::PickleOpcode {
                path: path.clone(),
                member: member.clone(),
                opcode,
                offset,
            },
            PickleError::Forbidden { symbol, offset } => LoadError::PickleForbidden {
                path: path.clone(),
                member: member.clone(),
                symbol,
                offset,
            },
            PickleError::Malformed { message, offset } => LoadError::format(
                &path,
                format!("malformed pickle in {member} at byte {offset}: {message}"),
            ),
            PickleError::TooDeep => LoadError::format(
                &path,
                format!(
                    "pickle in {member} nests containers more than {} levels deep",
                    pickle::MAX_DEPTH
                ),
            ),
        })?;
        let mut tensors = BTreeMap::new();
        let recorded = found.iter().map(|(name, _)| name.clone()).collect();
        for (name, view) in found {
            let info = TensorInfo {
                name: name.clone(),
                shape: view.shape.clone(),
                dtype: view.storage.dtype.clone(),
            };
            let tensor = TorchTensor {
                info,
                view: View::from(&*view),
            };
            if tensors.insert(name.clone(), tensor).is_some() {
                return Err(LoadError::format(
                    &path,
                    format!("two tensors flatten to the same name '{name}'"),
                ));
            }
        }
        let names = tensors.keys().cloned().collect();
        Ok(Self {
            zip,
            root,
            big_endian,
            tensors,
            names,
            recorded,
            metadata: BTreeMap::new(),
        })
    }
}

/// A tensor whose view was checked against its storage.
struct CheckedView<'a> {
    tensor: &'a TorchTensor,
    entry: &'a super::archive::Entry,
    /// Bytes per element.
    size: usize,
    numel: usize,
    storage_bytes: u64,
    /// The view is C-contiguous (every stride of a dimension longer than 1 is the product of
    /// the later dimensions).
    contiguous: bool,
}

impl TorchFile {
    /// The tensor `name`, its storage member, and the checks every read needs: a float dtype,
    /// sizes that do not overflow, and a view inside its storage.
    fn checked_view(&self, name: &str) -> Result<CheckedView<'_>, LoadError> {
        let path = self.path();
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| not_found(path, name, &self.names))?;
        let size = float_size_or_err(path, &tensor.info)?;
        let view = &tensor.view;
        let bad = |message: String| LoadError::tensor(path, name, message);
        let member = format!("{}data/{}", self.root, view.key);
        let entry = self.zip.entry(&member).ok_or_else(|| {
            bad(format!(
                "needs storage '{member}', which is not in the archive"
            ))
        })?;
        let storage_bytes = view
            .storage_numel
            .checked_mul(size as u64)
            .ok_or_else(|| bad("has a storage whose size overflows".into()))?;
        let numel = checked_numel(&view.shape)
            .ok_or_else(|| bad("has a shape whose size overflows".into()))?;
        // Largest element index the view touches: offset + Σ (size_k − 1)·stride_k.
        let mut last = view.offset;
        if numel > 0 {
            for (&dim, &stride) in view.shape.iter().zip(&view.stride) {
                last = (dim as u64 - 1)
                    .checked_mul(stride as u64)
                    .and_then(|x| x.checked_add(last))
                    .ok_or_else(|| bad("has strides whose extent overflows".into()))?;
            }
            if last >= view.storage_numel {
                return Err(bad(format!(
                    "views elements up to {last} (offset {}, shape {:?}, stride {:?}) but its storage has {} elements",
                    view.offset, view.shape, view.stride, view.storage_numel
                )));
            }
        }
        let mut expected = 1usize;
        let mut contiguous = true;
        for (&dim, &stride) in view.shape.iter().zip(&view.stride).rev() {
            contiguous &= dim == 1 || stride == expected;
            expected = expected.saturating_mul(dim);
        }
        Ok(CheckedView {
            tensor,
            entry,
            size,
            numel,
            storage_bytes,
            contiguous,
        })
    }
}

impl TensorSource for TorchFile {
    fn path(&self) -> &Path {
        self.zip.path()
    }

    fn format(&self) -> Format {
        Format::TorchZip
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn recorded_order(&self) -> Option<&[String]> {
        Some(&self.recorded)
    }

    fn info(&self, name: &str) -> Result<TensorInfo, LoadError> {
        self.tensors
            .get(name)
            .map(|t| t.info.clone())
            .ok_or_else(|| not_found(self.path(), name, &self.names))
    }

    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError> {
        let checked = self.checked_view(name)?;
        let (tensor, view, size) = (checked.tensor, &checked.tensor.view, checked.size);
        let bad = |message: String| LoadError::tensor(self.path(), name, message);
        let bytes = self.zip.read(checked.entry)?;
        if (bytes.len() as u64) < checked.storage_bytes {
            return Err(bad(format!(
                "has a storage of {} elements ({} bytes) but '{}' holds {} bytes",
                view.storage_numel,
                checked.storage_bytes,
                checked.entry.name,
                bytes.len()
            )));
        }
        let numel = checked.numel;
        let values = if numel == 0 {
            Vec::new()
        } else if checked.contiguous {
            let start = view.offset as usize * size;
            decode_floats(
                &bytes[start..start + numel * size],
                &tensor.info.dtype,
                self.big_endian,
            )
        } else {
            let mut out = Vec::with_capacity(numel);
            let mut index = vec![0usize; view.shape.len()];
            for _ in 0..numel {
                let element = view.offset as usize
                    + index
                        .iter()
                        .zip(&view.stride)
                        .map(|(&i, &s)| i * s)
                        .sum::<usize>();
                let at = element * size;
                out.extend(decode_floats(
                    &bytes[at..at + size],
                    &tensor.info.dtype,
                    self.big_endian,
                ));
                for k in (0..index.len()).rev() {
                    index[k] += 1;
                    if index[k] < view.shape[k] {
                        break;
                    }
                    index[k] = 0;
                }
            }
            out
        };
        ArrayD::from_shape_vec(IxDyn(&view.shape), values)
            .map_err(|e| bad(format!("cannot be shaped: {e}")))
    }

    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        let checked = self.checked_view(name)?;
        let start = match self.zip.stored_data_start(checked.entry) {
            Some(start) if checked.contiguous => start,
            _ => return Ok(TensorStorage::Other),
        };
        if checked.entry.size < checked.storage_bytes {
            return Err(LoadError::tensor(
                self.path(),
                name,
                format!(
                    "has a storage of {} bytes but '{}' holds {} bytes",
                    checked.storage_bytes, checked.entry.name, checked.entry.size
                ),
            ));
        }
        Ok(TensorStorage::Contiguous(TensorLocation {
            file: self.path().to_path_buf(),
            offset: start + checked.tensor.view.offset * checked.size as u64,
            info: checked.tensor.info.clone(),
            big_endian: self.big_endian,
            fortran_order: false,
        }))
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}
