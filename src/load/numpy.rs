//! NumPy `.npy` (memory-mapped) and `.npz` (a zip of `.npy` members, stored or deflated).
//!
//! Headers are parsed with `ndarray-npy`'s parser after checking that the declared header
//! length lies inside the file; data are converted here so that f16 (`<f2`) and big-endian
//! arrays work too. Fortran-order arrays come back in C order. An `.npy` holds one tensor,
//! named `array`; an npz member `key.npy` is the tensor `key`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndarray_npy::npy::header::Header;

use super::archive::ZipIndex;
use super::{
    Dtype, Format, LoadError, TensorInfo, TensorLocation, TensorSource, TensorStorage,
    checked_numel, decode_floats, float_size_or_err, map_file, not_found, read_exact_at,
};

/// The name given to the single array of an `.npy` file.
pub(crate) const NPY_TENSOR_NAME: &str = "array";

const MAGIC: &[u8] = b"\x93NUMPY";

/// What an `.npy` header says.
#[derive(Clone, Debug)]
struct NpyLayout {
    shape: Vec<usize>,
    dtype: Dtype,
    fortran: bool,
    big_endian: bool,
    /// Offset of the first data byte (= total header length).
    data_offset: usize,
}

/// Bytes needed to know the total header length: magic (6), version (2), length (2 or 4).
const PREAMBLE: usize = 12;

/// The total header length (preamble + dictionary) from the first bytes of an `.npy`.
fn header_total_len(bytes: &[u8]) -> Result<usize, String> {
    if !bytes.starts_with(MAGIC) {
        return Err(format!(
            "not an .npy array (expected magic \\x93NUMPY, got {})",
            super::hex_bytes(&bytes[..bytes.len().min(6)])
        ));
    }
    let version = bytes.get(6..8).ok_or("truncated .npy header")?;
    match version[0] {
        1 => {
            let len = bytes.get(8..10).ok_or("truncated .npy header")?;
            Ok(10 + usize::from(u16::from_le_bytes([len[0], len[1]])))
        }
        2 | 3 => {
            let len = bytes.get(8..12).ok_or("truncated .npy header")?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes"));
            Ok(12 + len as usize)
        }
        major => Err(format!(
            "unsupported .npy format version {major}.{}, expected 1.0, 2.0 or 3.0",
            version[1]
        )),
    }
}

/// Parses the header in `bytes` (which must hold at least the whole header); `available` is the
/// total size of the array's bytes (file or member), for the bounds check.
fn parse_header(bytes: &[u8], available: u64) -> Result<NpyLayout, String> {
    let total = header_total_len(bytes)?;
    if total as u64 > available || total > bytes.len() {
        return Err(format!(
            "corrupt .npy header: header length {total} exceeds the {available} bytes available"
        ));
    }
    let mut reader = &bytes[..total];
    let header =
        Header::from_reader(&mut reader).map_err(|e| format!("corrupt .npy header: {e}"))?;
    let (dtype, big_endian) = match header.type_descriptor.as_string() {
        Some(descr) => parse_descr(descr),
        None => (Dtype::Other("structured".to_string()), false),
    };
    Ok(NpyLayout {
        shape: header.shape,
        dtype,
        fortran: header.layout.is_fortran(),
        big_endian,
        data_offset: total,
    })
}

/// `'<f4'` → (F32, little endian). Unknown kinds become [`Dtype::Other`] with numpy's code.
fn parse_descr(descr: &str) -> (Dtype, bool) {
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let dtype = match code {
        "f2" | "e" => Dtype::F16,
        "f4" | "f" => Dtype::F32,
        "f8" | "d" => Dtype::F64,
        other => Dtype::Other(other.to_string()),
    };
    (dtype, big_endian)
}

/// The number of data bytes the header declares (shape × dtype size), checked against the
/// `available` bytes after the header: a truncated file is an error naming both.
fn data_bytes_needed(
    path: &Path,
    info: &TensorInfo,
    layout: &NpyLayout,
    available: u64,
) -> Result<usize, LoadError> {
    let size = float_size_or_err(path, info)?;
    let overflow = || LoadError::tensor(path, &info.name, "has a shape whose size overflows");
    let need = checked_numel(&layout.shape)
        .ok_or_else(overflow)?
        .checked_mul(size)
        .ok_or_else(overflow)?;
    if available < need as u64 {
        return Err(LoadError::tensor(
            path,
            &info.name,
            format!(
                "holds {available} data bytes, expected {need} for shape {:?} and dtype {} (truncated file?)",
                layout.shape, info.dtype
            ),
        ));
    }
    Ok(need)
}

/// Converts the data bytes after the header into an f64 array in C order.
fn decode_array(
    path: &Path,
    info: &TensorInfo,
    layout: &NpyLayout,
    data: &[u8],
) -> Result<ArrayD<f64>, LoadError> {
    let need = data_bytes_needed(path, info, layout, data.len() as u64)?;
    let values = decode_floats(&data[..need], &info.dtype, layout.big_endian);
    let shape = IxDyn(&layout.shape);
    let array = if layout.fortran {
        ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(shape, values)
    };
    array.map_err(|e| LoadError::tensor(path, &info.name, format!("cannot be shaped: {e}")))
}

/// One `.npy` file, memory-mapped.
pub(crate) struct NpyFile {
    path: PathBuf,
    map: Mmap,
    layout: NpyLayout,
    info: TensorInfo,
    names: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl NpyFile {
    /// Maps the file and parses its header.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let map = map_file(path)?;
        let layout =
            parse_header(&map, map.len() as u64).map_err(|m| LoadError::format(path, m))?;
        let info = TensorInfo {
            name: NPY_TENSOR_NAME.to_string(),
            shape: layout.shape.clone(),
            dtype: layout.dtype.clone(),
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
            layout,
            info,
            names: vec![NPY_TENSOR_NAME.to_string()],
            metadata: BTreeMap::new(),
        })
    }
}

impl TensorSource for NpyFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> Format {
        Format::Npy
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn info(&self, name: &str) -> Result<TensorInfo, LoadError> {
        if name == NPY_TENSOR_NAME {
            Ok(self.info.clone())
        } else {
            Err(not_found(&self.path, name, &self.names))
        }
    }

    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError> {
        let info = self.info(name)?;
        decode_array(
            &self.path,
            &info,
            &self.layout,
            &self.map[self.layout.data_offset..],
        )
    }

    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        let info = self.info(name)?;
        let available = (self.map.len() - self.layout.data_offset) as u64;
        data_bytes_needed(&self.path, &info, &self.layout, available)?;
        Ok(TensorStorage::Contiguous(TensorLocation {
            file: self.path.clone(),
            offset: self.layout.data_offset as u64,
            info,
            big_endian: self.layout.big_endian,
            fortran_order: self.layout.fortran,
        }))
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

/// The blocks along the first axis of a C-order `.npy` file (block i is `array[i]`), read one
/// at a time with positional reads: a file of any size streams through a small buffer, and the
/// process never holds more than the blocks it is working on.
#[derive(Clone, Debug)]
pub struct NpyBlocks {
    path: PathBuf,
    file: Arc<File>,
    layout: NpyLayout,
    /// Elements per block (the product of the shape after the first axis).
    block_len: usize,
    /// Bytes per element.
    element_size: usize,
}

impl NpyBlocks {
    /// Reads the header of `path` and checks that the file holds every data byte it declares.
    /// `Ok(None)` when the array cannot be read by blocks: Fortran order (a block is not
    /// contiguous) or rank 0.
    pub fn open(path: &Path) -> Result<Option<Self>, LoadError> {
        let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
        let metadata = file.metadata().map_err(|e| LoadError::io(path, e))?;
        if metadata.is_dir() {
            return Err(LoadError::format(
                path,
                "is a directory, expected a .npy file",
            ));
        }
        let file_len = metadata.len();
        let mut preamble = [0u8; PREAMBLE];
        let preamble_len = (PREAMBLE as u64).min(file_len) as usize;
        read_exact_at(&file, &mut preamble[..preamble_len], 0)
            .map_err(|e| LoadError::io(path, e))?;
        let total =
            header_total_len(&preamble[..preamble_len]).map_err(|m| LoadError::format(path, m))?;
        if total as u64 > file_len {
            return Err(LoadError::format(
                path,
                format!(
                    "corrupt .npy header: header length {total} exceeds the {file_len} bytes available"
                ),
            ));
        }
        let mut header = vec![0u8; total];
        read_exact_at(&file, &mut header, 0).map_err(|e| LoadError::io(path, e))?;
        let layout = parse_header(&header, file_len).map_err(|m| LoadError::format(path, m))?;
        let info = TensorInfo {
            name: NPY_TENSOR_NAME.to_string(),
            shape: layout.shape.clone(),
            dtype: layout.dtype.clone(),
        };
        data_bytes_needed(path, &info, &layout, file_len - total as u64)?;
        if layout.fortran || layout.shape.is_empty() {
            return Ok(None);
        }
        let element_size = info
            .dtype
            .float_size()
            .expect("data_bytes_needed accepted the dtype");
        Ok(Some(Self {
            path: path.to_path_buf(),
            file: Arc::new(file),
            block_len: layout.shape[1..].iter().product(),
            element_size,
            layout,
        }))
    }

    /// The array's shape (the first axis counts the blocks).
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Number of blocks (the first axis).
    pub fn blocks(&self) -> usize {
        self.layout.shape[0]
    }

    /// Block `index` as f64 (shape `shape()[1..]`, C order).
    pub(crate) fn read_block(&self, index: usize) -> Result<Vec<f64>, LoadError> {
        assert!(
            index < self.blocks(),
            "read_block: block {index} out of range"
        );
        let bytes_per_block = self.block_len * self.element_size;
        let offset = self.layout.data_offset as u64 + (index * bytes_per_block) as u64;
        let mut bytes = vec![0u8; bytes_per_block];
        read_exact_at(&self.file, &mut bytes, offset).map_err(|e| {
            LoadError::format(
                &self.path,
                format!("cannot read block {index} of the .npy data ({e}); was the file changed?"),
            )
        })?;
        Ok(decode_floats(
            &bytes,
            &self.layout.dtype,
            self.layout.big_endian,
        ))
    }
}

/// A `.npz` archive: every `key.npy` member is the tensor `key`.
pub(crate) struct NpzFile {
    zip: ZipIndex,
    tensors: BTreeMap<String, (String, NpyLayout, TensorInfo)>,
    names: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl NpzFile {
    pub(crate) fn from_zip(zip: ZipIndex) -> Result<Self, LoadError> {
        let path = zip.path().to_path_buf();
        let mut tensors = BTreeMap::new();
        for entry in zip.entries() {
            let Some(key) = entry.name.strip_suffix(".npy") else {
                continue;
            };
            let member_error =
                |m: String| LoadError::format(&path, format!("npz member '{}': {m}", entry.name));
            let preamble = zip.read_prefix(entry, PREAMBLE as u64)?;
            let total = header_total_len(&preamble).map_err(member_error)?;
            let head = zip.read_prefix(entry, total as u64)?;
            let layout = parse_header(&head, entry.size).map_err(member_error)?;
            let info = TensorInfo {
                name: key.to_string(),
                shape: layout.shape.clone(),
                dtype: layout.dtype.clone(),
            };
            tensors.insert(key.to_string(), (entry.name.clone(), layout, info));
        }
        let names = tensors.keys().cloned().collect();
        Ok(Self {
            zip,
            tensors,
            names,
            metadata: BTreeMap::new(),
        })
    }
}

impl TensorSource for NpzFile {
    fn path(&self) -> &Path {
        self.zip.path()
    }

    fn format(&self) -> Format {
        Format::Npz
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn info(&self, name: &str) -> Result<TensorInfo, LoadError> {
        self.tensors
            .get(name)
            .map(|(_, _, info)| info.clone())
            .ok_or_else(|| not_found(self.path(), name, &self.names))
    }

    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError> {
        let (member, layout, info) = self
            .tensors
            .get(name)
            .ok_or_else(|| not_found(self.path(), name, &self.names))?;
        float_size_or_err(self.path(), info)?;
        let entry = self
            .zip
            .entry(member)
            .expect("member listed when the archive was opened");
        let bytes = self.zip.read(entry)?;
        let data = bytes.get(layout.data_offset..).unwrap_or(&[]);
        decode_array(self.path(), info, layout, data)
    }

    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        let (member, layout, info) = self
            .tensors
            .get(name)
            .ok_or_else(|| not_found(self.path(), name, &self.names))?;
        let entry = self
            .zip
            .entry(member)
            .expect("member listed when the archive was opened");
        let available = entry.size.saturating_sub(layout.data_offset as u64);
        data_bytes_needed(self.path(), info, layout, available)?;
        let location = |file: PathBuf, offset: u64| TensorLocation {
            file,
            offset,
            info: info.clone(),
            big_endian: layout.big_endian,
            fortran_order: layout.fortran,
        };
        Ok(match self.zip.stored_data_start(entry) {
            Some(start) => TensorStorage::Contiguous(location(
                self.path().to_path_buf(),
                start + layout.data_offset as u64,
            )),
            None => TensorStorage::Compressed {
                layout: location(self.path().to_path_buf(), 0),
                inflated_bytes: available,
                compressed_bytes: entry.compressed_size(),
            },
        })
    }

    fn inflate_elements(&self, name: &str, out: &mut dyn std::io::Write) -> Result<(), LoadError> {
        let (member, layout, _) = self
            .tensors
            .get(name)
            .ok_or_else(|| not_found(self.path(), name, &self.names))?;
        let entry = self
            .zip
            .entry(member)
            .expect("member listed when the archive was opened");
        self.zip.inflate(entry, layout.data_offset as u64, out)
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descr_codes() {
        assert_eq!(parse_descr("<f2"), (Dtype::F16, false));
        assert_eq!(parse_descr(">f8"), (Dtype::F64, true));
        assert_eq!(parse_descr("<i8"), (Dtype::Other("i8".into()), false));
    }

    #[test]
    fn header_longer_than_the_file_is_an_error_not_an_allocation() {
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(b"{'descr'");
        let err = parse_header(&bytes, bytes.len() as u64).unwrap_err();
        assert!(err.contains("exceeds"), "{err}");
    }
}
