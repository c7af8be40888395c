//! Reading H_res matrices from files: tensor containers ([`open`]) and model layouts
//! ([`load_hres`]).
//!
//! Two levels:
//! - **Formats** (one file each): safetensors, single or sharded through a
//!   `*.safetensors.index.json` ([`safetensors`]); `.npy` and `.npz`
//!   ([`numpy`]); PyTorch zip checkpoints written by `torch.save`
//!   ([`torch`], with a small, allow-listed pickle decoder in `pickle`
//!   that never executes anything); llama.cpp's GGUF ([`gguf`]). [`open`] recognises the format by its magic bytes, not by
//!   the extension, and returns a [`TensorSource`]: names, shapes and dtypes up front, tensor data
//!   only when asked for (memory-mapped, so a multi-GB checkpoint costs milliseconds).
//! - **Layouts** ([`layouts`]): which tensors of a model hold H_res, in which orientation, and
//!   how they become matrices (Sinkhorn variants). The result is a [`LayerStack`] in this crate's
//!   convention, `x_{l+1} = H x_l` with **rows = output streams**, layers in execution order.
//!
//! Every dtype (f16, bf16, f32, f64) is converted to f64 at this boundary. Every error is a
//! [`LoadError`] whose message is one line naming the file (and the tensor, where one is
//! involved) and what was expected.
//!
//! [`LayerStack`]: crate::LayerStack

mod archive;
pub mod capture;
pub mod dynamic;
pub mod gguf;
pub mod input;
pub mod layouts;
pub mod numpy;
mod pickle;
pub mod safetensors;
pub mod stream;
pub mod torch;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::error::StackError;
pub(crate) use crate::error::{one_line, printable};

pub use dynamic::{DynamicLayer, DynamicModel, DynamicOptions, HresMap, LogitBox, LogitSet};
pub use layouts::{ExactSide, Layout, LoadOptions, LoadedHres, load_hres};

/// Element type of a stored tensor. Only the floating-point types can be read as f64; the
/// others are listed (so that names and shapes are complete) but refused by
/// [`TensorSource::read_f64`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dtype {
    /// IEEE half precision.
    F16,
    /// bfloat16 (the upper half of an f32).
    Bf16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Anything else (integers, booleans, fp8 …), by its lower-case name in the file
    /// (`i64`, `bool`, `f8_e4m3` …).
    Other(String),
}

impl Dtype {
    /// Bytes per element for the floating-point types, `None` for [`Dtype::Other`].
    pub(crate) fn float_size(&self) -> Option<usize> {
        match self {
            Self::F16 | Self::Bf16 => Some(2),
            Self::F32 => Some(4),
            Self::F64 => Some(8),
            Self::Other(_) => None,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F16 => f.write_str("f16"),
            Self::Bf16 => f.write_str("bf16"),
            Self::F32 => f.write_str("f32"),
            Self::F64 => f.write_str("f64"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// The container format of a file, as recognised by [`open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// One `.safetensors` file.
    Safetensors,
    /// A `*.safetensors.index.json` and the shards it names.
    ShardedSafetensors,
    /// One NumPy `.npy` array.
    Npy,
    /// A NumPy `.npz` archive (zip of `.npy` files; stored or deflated).
    Npz,
    /// A `torch.save` zip archive (`*/data.pkl` + `*/data/N` storages).
    TorchZip,
    /// llama.cpp's GGUF (version 2 or 3, either byte order).
    Gguf,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Safetensors => "safetensors",
            Self::ShardedSafetensors => "sharded safetensors",
            Self::Npy => "npy",
            Self::Npz => "npz",
            Self::TorchZip => "PyTorch zip",
            Self::Gguf => "GGUF",
        })
    }
}

/// Name, shape and element type of one stored tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// The tensor's name in the file (`layers.3.static_alpha`; the key without `.npy` in an
    /// npz; `array` for a lone `.npy`; nested dictionary keys joined with `.` in a `.pt`).
    pub name: String,
    /// Shape, outermost dimension first (C order).
    pub shape: Vec<usize>,
    /// Element type as stored.
    pub dtype: Dtype,
}

/// A file of named tensors. Listing is cheap; data is read (and converted to f64) only for the
/// tensors asked for.
pub trait TensorSource: Send + Sync {
    /// The file this source was opened from (for a sharded model, the index file).
    fn path(&self) -> &Path;

    /// The container format.
    fn format(&self) -> Format;

    /// Every tensor name, sorted (byte order). Cheap: for a sharded model it comes from the
    /// index and opens no shard.
    fn names(&self) -> &[String];

    /// Shape and dtype of one tensor. For a sharded model this opens (memory-maps and parses the
    /// header of) the one shard that holds it.
    fn info(&self, name: &str) -> Result<TensorInfo, LoadError>;

    /// The tensor's values as f64 in C order (strides and Fortran order already applied).
    /// Errors for unknown names, non-float dtypes and data outside the file.
    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError>;

    /// File-level string metadata: safetensors `__metadata__` (for a sharded model, the index's
    /// `metadata` object); GGUF's key–value pairs (scalars as text, arrays as JSON, see
    /// [`gguf`]); empty for the other formats.
    fn metadata(&self) -> &BTreeMap<String, String>;

    /// Every tensor name in the order the file itself records, where that order is evidence of
    /// the model's module order: a `torch.save` pickle keeps its state dict's insertion order
    /// (module registration order, which is execution order in every common model). `None`
    /// where the format's order says nothing: safetensors headers are sorted by name by the
    /// usual serialisers (the JSON object's order is the writer's, not the model's), and npz /
    /// npy hold arrays, not modules.
    fn recorded_order(&self) -> Option<&[String]> {
        None
    }

    /// [`TensorSource::info`] for every tensor, in [`TensorSource::names`] order (opens every
    /// shard of a sharded model).
    fn tensors(&self) -> Result<Vec<TensorInfo>, LoadError> {
        self.names().iter().map(|name| self.info(name)).collect()
    }

    /// How a tensor's elements are stored, for reading parts of it without reading it whole
    /// (a captured stack of a million tokens). The default, [`TensorStorage::Other`], means
    /// "only [`TensorSource::read_f64`]".
    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        self.info(name)?;
        Ok(TensorStorage::Other)
    }

    /// For a [`TensorStorage::Compressed`] tensor: writes its element bytes (in storage order,
    /// from element 0) to `out` as they are decompressed, never holding the tensor in memory.
    fn inflate_elements(&self, name: &str, out: &mut dyn std::io::Write) -> Result<(), LoadError> {
        let _ = out;
        Err(LoadError::tensor(
            self.path(),
            name,
            "is not stored compressed (nothing to inflate)",
        ))
    }
}

/// Where and how a tensor's elements lie in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorStorage {
    /// Uncompressed, every element in one contiguous block of one file.
    Contiguous(TensorLocation),
    /// In a compressed archive member: [`TensorSource::inflate_elements`] streams its elements,
    /// laid out as `layout` describes once inflated (offset 0).
    Compressed {
        /// The layout of the inflated elements (its `file` is the archive, `offset` 0).
        layout: TensorLocation,
        /// Bytes the member declares it inflates to (what a temporary copy would take).
        inflated_bytes: u64,
        /// Bytes the member takes in the archive.
        compressed_bytes: u64,
    },
    /// Anything else (a strided view): readable whole only.
    Other,
}

/// The elements of a tensor stored contiguously and uncompressed in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorLocation {
    /// The file holding the elements (a shard, for a sharded model).
    pub file: PathBuf,
    /// Byte offset of element 0 in `file`.
    pub offset: u64,
    /// Name, shape (C order) and dtype.
    pub info: TensorInfo,
    /// Elements are big-endian.
    pub big_endian: bool,
    /// Elements are stored in Fortran (column-major) order; `info.shape` is still the logical
    /// (C order) shape.
    pub fortran_order: bool,
}

/// Why a file could not be read as tensors or as H_res. `Display` is one line that starts with
/// the file's path (except [`LoadError::Stack`], whose `what` already holds it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The operating system refused (not found, permission, I/O error).
    #[error("{}: {source}", shown(path))]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not what was expected (wrong format, corrupt header, truncated data,
    /// unknown layout …).
    #[error("{}: {message}", shown(path))]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong and what was expected.
        message: String,
    },
    /// One tensor is missing or has the wrong shape, dtype or data.
    #[error("{}: tensor '{}' {message}", shown(path), printable(tensor))]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What was wrong, e.g. `has shape [4, 6], expected [4, 5]`.
        message: String,
    },
    /// The pickle of a `.pt` file uses an opcode outside the subset torch writes.
    #[error(
        "{}: unsupported pickle opcode 0x{opcode:02x} at byte {offset} of {}",
        shown(path),
        printable(member)
    )]
    PickleOpcode {
        /// The file.
        path: PathBuf,
        /// The archive member holding the pickle (`archive/data.pkl`).
        member: String,
        /// The opcode byte.
        opcode: u8,
        /// Its offset in the pickle stream.
        offset: usize,
    },
    /// The pickle names a Python callable or class that is not a known tensor-rebuild symbol.
    /// Nothing is ever executed; the file is refused.
    #[error(
        "{}: pickle refers to '{}' at byte {offset} of {}; only torch tensor and storage symbols and collections.OrderedDict are allowed (nothing was executed)",
        shown(path),
        printable(symbol),
        printable(member)
    )]
    PickleForbidden {
        /// The file.
        path: PathBuf,
        /// The archive member holding the pickle.
        member: String,
        /// `module.name` as written in the pickle.
        symbol: String,
        /// Offset of the GLOBAL / STACK_GLOBAL opcode.
        offset: usize,
    },
    /// No tensor in the file matches any layout.
    #[error(
        "no H_res matrices found in {}; closest names: {}",
        shown(path),
        if closest.is_empty() { "(the file holds no tensors)".to_string() } else { printable(&closest.join(", ")) }
    )]
    NoHres {
        /// The file.
        path: PathBuf,
        /// Up to three tensor names closest to the names the layouts look for.
        closest: Vec<String>,
    },
    /// Several tensors could be the stack: the caller must name one.
    #[error(
        "{}: {} tensors could hold an H_res stack, choose one with --key: {}",
        shown(path),
        candidates.len(),
        printable(&candidates.join(", "))
    )]
    AmbiguousKey {
        /// The file.
        path: PathBuf,
        /// Each candidate as `name [shape]`.
        candidates: Vec<String>,
    },
    /// The matrices were read but are not a valid stack (shape, rank, non-finite values);
    /// the message starts with the file and tensor.
    #[error(transparent)]
    Stack(#[from] StackError),
}

impl LoadError {
    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            message: one_line(&message.into()),
        }
    }

    pub(crate) fn tensor(path: &Path, tensor: &str, message: impl Into<String>) -> Self {
        Self::Tensor {
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
            message: one_line(&message.into()),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A path for messages, as given, with control characters escaped.
pub(crate) fn shown(path: &Path) -> String {
    printable(&path.display().to_string())
}

/// Opens a tensor file, recognising the format by its first bytes:
/// `\x93NUMPY` → npy; a zip → PyTorch (if it holds `*/data.pkl`) or npz (if it holds `*.npy`);
/// `GGUF` → GGUF; an 8-byte little-endian length followed by `{` → safetensors; a JSON object
/// with a `weight_map` → sharded safetensors index. Nothing but headers is read here.
pub fn open(path: &Path) -> Result<Box<dyn TensorSource>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    if meta.is_dir() {
        return Err(LoadError::format(
            path,
            "is a directory, expected a .safetensors, .safetensors.index.json, .npy, .npz, .pt or .gguf file",
        ));
    }
    if meta.len() == 0 {
        return Err(LoadError::format(path, "empty file"));
    }
    let mut head = [0u8; 16];
    let got = read_prefix(path, &mut head)?;
    let head = &head[..got];
    let named_safetensors = path.to_string_lossy().ends_with(".safetensors");
    match sniff(head, named_safetensors) {
        Some(Sniffed::Npy) => Ok(Box::new(numpy::NpyFile::open(path)?)),
        Some(Sniffed::Zip) => archive::open_zip(path),
        Some(Sniffed::Safetensors) => Ok(Box::new(safetensors::SafetensorsFile::open(path)?)),
        Some(Sniffed::Json) => Ok(Box::new(safetensors::ShardedSafetensors::open(path)?)),
        Some(Sniffed::Gguf) => Ok(Box::new(gguf::GgufFile::open(path)?)),
        Some(Sniffed::LegacyGgml) => Err(LoadError::format(
            path,
            format!(
                "legacy llama.cpp file (GGML/GGMF/GGJT, first bytes {}), from before GGUF; convert it to GGUF with llama.cpp",
                hex_bytes(&head[..4])
            ),
        )),
        Some(Sniffed::LegacyTorch) => Err(LoadError::format(
            path,
            "legacy (pre-1.6, non-zip) PyTorch file; re-save it with a current torch.save, or convert it to safetensors",
        )),
        None => {
            if named_safetensors && head.len() < 9 {
                return Err(LoadError::format(
                    path,
                    format!(
                        "truncated safetensors file: {} bytes, expected an 8-byte header length and a JSON header",
                        meta.len()
                    ),
                ));
            }
            Err(LoadError::format(
                path,
                format!(
                    "not a safetensors, npy, npz, PyTorch zip or GGUF file (first bytes {})",
                    hex_bytes(&head[..head.len().min(8)])
                ),
            ))
        }
    }
}

enum Sniffed {
    Npy,
    Zip,
    Safetensors,
    Json,
    LegacyTorch,
    Gguf,
    LegacyGgml,
}

/// The format from the first bytes; `named_safetensors` (the file name ends in `.safetensors`)
/// lets an absurd header length through, so that the reader can say what is wrong with it.
fn sniff(head: &[u8], named_safetensors: bool) -> Option<Sniffed> {
    if head.starts_with(b"GGUF") {
        return Some(Sniffed::Gguf);
    }
    // GGUF's predecessors: the u32 magics 'ggml', 'ggmf', 'ggjt' written little-endian.
    if [b"lmgg", b"fmgg", b"tjgg"]
        .iter()
        .any(|m| head.starts_with(*m))
    {
        return Some(Sniffed::LegacyGgml);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Some(Sniffed::Npy);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Sniffed::Zip);
    }
    if head.len() >= 9 && head[8] == b'{' {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        // A JSON text would give an enormous "length" here (8 ASCII bytes ≥ 2^61).
        if n < (1 << 40) || named_safetensors {
            return Some(Sniffed::Safetensors);
        }
    }
    // torch's legacy format starts with a pickled magic number: PROTO 2, LONG1 10 bytes.
    if head.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
        return Some(Sniffed::LegacyTorch);
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Some(Sniffed::Json);
    }
    None
}

fn read_prefix(path: &Path, buf: &mut [u8]) -> Result<usize, LoadError> {
    let mut file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LoadError::io(path, e)),
        }
    }
    Ok(filled)
}

pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fills `buffer` from `file` at `offset` without moving a shared cursor (threads may read
/// different blocks at once).
#[cfg(unix)]
pub(crate) fn read_exact_at(
    file: &std::fs::File,
    buffer: &mut [u8],
    offset: u64,
) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

/// Fills `buffer` from `file` at `offset` (Windows: `seek_read` until full).
#[cfg(windows)]
pub(crate) fn read_exact_at(
    file: &std::fs::File,
    mut buffer: &mut [u8],
    mut offset: u64,
) -> std::io::Result<()> {
    while !buffer.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buffer, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buffer = &mut buffer[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Memory-maps a whole file (read-only). The file must not be empty.
pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
    // SAFETY: the map is read-only and private to this process. If another process truncates
    // the file while it is mapped, reads could fault (SIGBUS); that is the documented price of
    // memory-mapping and the same trade-off safetensors' own loaders make.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| LoadError::io(path, e))
}

/// Number of elements of `shape`, or `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Decodes `bytes` (exactly `numel × size` of them) of a floating-point dtype into f64.
pub(crate) fn decode_floats(bytes: &[u8], dtype: &Dtype, big_endian: bool) -> Vec<f64> {
    let mut out = vec![0.0; dtype.float_size().map_or(0, |size| bytes.len() / size)];
    decode_floats_into(bytes, dtype, big_endian, &mut out);
    out
}

/// [`decode_floats`] into `out` (one value per element of `bytes`), without allocating.
pub(crate) fn decode_floats_into(bytes: &[u8], dtype: &Dtype, big_endian: bool, out: &mut [f64]) {
    fn convert<const N: usize>(bytes: &[u8], out: &mut [f64], f: impl Fn([u8; N]) -> f64) {
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(N)) {
            *o = f(c.try_into().expect("chunk of N bytes"));
        }
    }
    match (dtype, big_endian) {
        (Dtype::F64, false) => convert(bytes, out, f64::from_le_bytes),
        (Dtype::F64, true) => convert(bytes, out, f64::from_be_bytes),
        (Dtype::F32, false) => convert(bytes, out, |b| f64::from(f32::from_le_bytes(b))),
        (Dtype::F32, true) => convert(bytes, out, |b| f64::from(f32::from_be_bytes(b))),
        (Dtype::F16, false) => convert(bytes, out, |b| half::f16::from_le_bytes(b).to_f64()),
        (Dtype::F16, true) => convert(bytes, out, |b| half::f16::from_be_bytes(b).to_f64()),
        (Dtype::Bf16, false) => convert(bytes, out, |b| half::bf16::from_le_bytes(b).to_f64()),
        (Dtype::Bf16, true) => convert(bytes, out, |b| half::bf16::from_be_bytes(b).to_f64()),
        (Dtype::Other(_), _) => {}
    }
}

/// Checks that a tensor's dtype can be read as f64 and returns its element size.
pub(crate) fn float_size_or_err(path: &Path, info: &TensorInfo) -> Result<usize, LoadError> {
    info.dtype.float_size().ok_or_else(|| {
        LoadError::tensor(
            path,
            &info.name,
            format!(
                "has dtype {}, expected a floating-point type (f16, bf16, f32 or f64)",
                info.dtype
            ),
        )
    })
}

/// The "tensor not found" error, with the closest names as a hint.
pub(crate) fn not_found(path: &Path, name: &str, names: &[String]) -> LoadError {
    let hints = closest_names(names, &[name], 3);
    let hint = if hints.is_empty() {
        " (the file holds no tensors)".to_string()
    } else {
        format!("; closest names: {}", hints.join(", "))
    };
    LoadError::tensor(path, name, format!("not found{hint}"))
}

/// Up to `count` names from `names` most similar to any of `targets`: names are compared by
/// their last `.`-separated components (as many as the target has), with an edit distance
/// normalised by length; a name that contains a target scores best. Names that differ only in
/// their numbers (`layers.0.x`, `layers.1.x`) count once, shown by their first example.
pub(crate) fn closest_names(names: &[String], targets: &[&str], count: usize) -> Vec<String> {
    let mut scored: Vec<(f64, String, &String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let pattern: String = name
            .split('.')
            .map(|p| {
                if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                    "#"
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        if !seen.insert(pattern) {
            continue;
        }
        let score = targets
            .iter()
            .map(|target| name_distance(name, target))
            .fold(f64::INFINITY, f64::min);
        scored.push((score, natural_key(name), name));
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(count)
        .map(|(_, _, name)| name.clone())
        .collect()
}

fn name_distance(name: &str, target: &str) -> f64 {
    let lower = name.to_ascii_lowercase();
    if lower.contains(target) {
        return 0.0;
    }
    let parts = target.split('.').count();
    let tail: Vec<&str> = lower.rsplit('.').take(parts).collect();
    let tail: String = tail.into_iter().rev().collect::<Vec<_>>().join(".");
    let d = levenshtein(&tail, target) as f64;
    d / tail.len().max(target.len()).max(1) as f64
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// A sort key that orders embedded numbers numerically (`layers.9` before `layers.10`).
pub(crate) fn natural_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len() + 16);
    let mut digits = String::new();
    let flush = |digits: &mut String, key: &mut String| {
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
            key.push_str(&format!("{:0>20}", trimmed));
            digits.clear();
        }
    };
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut key);
            key.push(c);
        }
    }
    flush(&mut digits, &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_prefer_similar_suffixes_and_collapse_layers() {
        let names: Vec<String> = [
            "layers.0.mlp.weight",
            "layers.1.mlp.weight",
            "layers.0.static_beta",
            "layers.0.alpha",
            "emb.weight",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = closest_names(&names, &["static_alpha", "hc_attn_base", "phi_res"], 3);
        assert_eq!(got[0], "layers.0.static_beta");
        assert_eq!(got.len(), 3);
        assert!(!got.contains(&"layers.1.mlp.weight".to_string()));
    }

    #[test]
    fn natural_key_orders_numbers_numerically() {
        let mut names = vec!["layers.10.a", "layers.9.a", "layers.1.a"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["layers.1.a", "layers.9.a", "layers.10.a"]);
    }

    #[test]
    fn decodes_every_float_dtype() {
        let x = 1.5f64;
        assert_eq!(
            decode_floats(&(x as f32).to_le_bytes(), &Dtype::F32, false),
            [x]
        );
        assert_eq!(decode_floats(&x.to_be_bytes(), &Dtype::F64, true), [x]);
        let h = half::f16::from_f64(x).to_le_bytes();
        assert_eq!(decode_floats(&h, &Dtype::F16, false), [x]);
        let b = half::bf16::from_f64(x).to_le_bytes();
        assert_eq!(decode_floats(&b, &Dtype::Bf16, false), [x]);
    }
}
