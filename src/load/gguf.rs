//! GGUF files, llama.cpp's format ([`GgufFile`]): versions 2 and 3, either byte order.
//!
//! Layout (ggml `docs/gguf.md`): the magic `GGUF`; u32 version; u64 tensor count; u64 metadata
//! count; the metadata key–value pairs (a string key, a u32 value type, the value; arrays carry
//! their element type and a u64 length, and may nest); one info per tensor (name, u32 rank, the
//! u64 dimensions **innermost first**, u32 ggml type, u64 offset); padding to the alignment
//! (`general.alignment`, a power of two, default 32); the data section. A tensor's offset counts
//! from the start of the data section and is a multiple of the alignment. Strings are a u64
//! length and that many UTF-8 bytes. A big-endian file keeps the magic as the bytes `GGUF` and
//! stores every other number, tensor data included, big-endian; it is recognised, as ggml does,
//! by a version whose low 16 bits read little-endian are zero.
//!
//! ggml's `ne[0]` is the fastest-varying axis, so a tensor stored with dimensions
//! `[ne0, ne1, ne2]` has the C-order shape `[ne2, ne1, ne0]`: [`TensorInfo::shape`] is the
//! reverse of the stored list, and the data need no reordering. llama.cpp's converter writes a
//! PyTorch tensor of shape `[a, b]` as `ne = [b, a]`, so names and shapes read here are the
//! PyTorch ones.
//!
//! The file is memory-mapped and its whole header parsed and checked at [`GgufFile::open`]:
//! every length, count and offset is bounded by the bytes actually present before anything is
//! allocated for it (a count that lies cannot cost more than the file's size), tensor names are
//! unique, sizes follow from shape × type (ggml's block sizes), every tensor lies inside the data
//! section at an aligned offset, and no two overlap. f32, f16, bf16 and f64 tensors are read as
//! f64; quantised (`q8_0`, `q4_k`, `mxfp4` …) and integer tensors are listed with their names,
//! shapes and types ([`Dtype::Other`]) but [`TensorSource::read_f64`] refuses them.
//!
//! [`TensorSource::metadata`] gives every key–value pair as text: scalars as their value
//! (`4`, `1e-6`, `true`, a string as is), arrays as JSON (`[4,128,0]`, nested arrays nested).
//! Arrays longer than [`MAX_ARRAY_SHOWN`] elements (a tokenizer's vocabulary) are summarised as
//! `(array of N TYPE values, not shown)` rather than copied.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ndarray::{ArrayD, IxDyn};

use super::{
    Dtype, Format, LoadError, TensorInfo, TensorLocation, TensorSource, TensorStorage,
    decode_floats, map_file, not_found,
};

/// The first four bytes of every GGUF file.
const MAGIC: &[u8; 4] = b"GGUF";
/// The data alignment when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that sets the data alignment.
const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml's `GGML_MAX_DIMS`: a tensor has at most this many dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays nested deeper than this are refused (each level costs a file only 12 bytes, and the
/// reader recurses once per level).
const MAX_ARRAY_DEPTH: usize = 16;
/// Arrays with more elements than this appear in [`TensorSource::metadata`] as a one-line
/// summary instead of JSON.
pub(crate) const MAX_ARRAY_SHOWN: u64 = 4096;
/// The fewest bytes one metadata pair takes: an empty key (8), a value type (4), a 1-byte value.
const MIN_KV_BYTES: u64 = 13;
/// The fewest bytes one tensor info takes: an empty name (8), a rank of 0 (4), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 24;

/// A ggml element type as stored in a tensor info: a block of `block` elements takes `bytes`
/// bytes (1 and the element size for the plain types).
#[derive(Clone, Copy, Debug)]
struct GgmlType {
    name: &'static str,
    block: u64,
    bytes: u64,
}

impl GgmlType {
    /// The type with id `id` (`enum ggml_type` in ggml.h); block sizes from ggml-common.h.
    /// `Err` holds the name of a type that existed once but was removed from GGUF files.
    fn from_id(id: u32) -> Option<Result<Self, &'static str>> {
        let (name, block, bytes) = match id {
            0 => ("f32", 1, 4),
            1 => ("f16", 1, 2),
            2 => ("q4_0", 32, 18),
            3 => ("q4_1", 32, 20),
            4 => return Some(Err("q4_2")),
            5 => return Some(Err("q4_3")),
            6 => ("q5_0", 32, 22),
            7 => ("q5_1", 32, 24),
            8 => ("q8_0", 32, 34),
            9 => ("q8_1", 32, 36),
            10 => ("q2_k", 256, 84),
            11 => ("q3_k", 256, 110),
            12 => ("q4_k", 256, 144),
            13 => ("q5_k", 256, 176),
            14 => ("q6_k", 256, 210),
            15 => ("q8_k", 256, 292),
            16 => ("iq2_xxs", 256, 66),
            17 => ("iq2_xs", 256, 74),
            18 => ("iq3_xxs", 256, 98),
            19 => ("iq1_s", 256, 50),
            20 => ("iq4_nl", 32, 18),
            21 => ("iq3_s", 256, 110),
            22 => ("iq2_s", 256, 82),
            23 => ("iq4_xs", 256, 136),
            24 => ("i8", 1, 1),
            25 => ("i16", 1, 2),
            26 => ("i32", 1, 4),
            27 => ("i64", 1, 8),
            28 => ("f64", 1, 8),
            29 => ("iq1_m", 256, 56),
            30 => ("bf16", 1, 2),
            31 => return Some(Err("q4_0_4_4")),
            32 => return Some(Err("q4_0_4_8")),
            33 => return Some(Err("q4_0_8_8")),
            34 => ("tq1_0", 256, 54),
            35 => ("tq2_0", 256, 66),
            36 => return Some(Err("iq4_nl_4_4")),
            37 => return Some(Err("iq4_nl_4_8")),
            38 => return Some(Err("iq4_nl_8_8")),
            39 => ("mxfp4", 32, 17),
            40 => ("nvfp4", 64, 36),
            41 => ("q1_0", 128, 18),
            42 => ("q2_0", 64, 18),
            _ => return None,
        };
        Some(Ok(Self { name, block, bytes }))
    }

    fn dtype(self) -> Dtype {
        match self.name {
            "f32" => Dtype::F32,
            "f16" => Dtype::F16,
            "bf16" => Dtype::Bf16,
            "f64" => Dtype::F64,
            other => Dtype::Other(other.to_string()),
        }
    }
}

/// The type of a metadata value (`gguf_metadata_value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F64 => "float64",
        }
    }

    /// The fewest bytes a value of this type takes: a string its length, an array its element
    /// type and length.
    fn min_bytes(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

/// A scalar metadata value.
#[derive(Clone, Copy, Debug)]
enum Scalar {
    Unsigned(u64),
    Signed(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
}

impl Scalar {
    /// The value as text: integers in decimal, floats in Rust's shortest round-trip form
    /// (`1e-6`, `0.5`, `NaN`, `inf`), booleans as `true` / `false`.
    fn text(self) -> String {
        match self {
            Self::Unsigned(v) => v.to_string(),
            Self::Signed(v) => v.to_string(),
            Self::F32(v) => format!("{v:?}"),
            Self::F64(v) => format!("{v:?}"),
            Self::Bool(v) => v.to_string(),
        }
    }

    /// The value as a JSON number or boolean; a non-finite float (which JSON cannot hold)
    /// becomes `null`.
    fn json(self) -> String {
        match self {
            Self::F32(v) if !v.is_finite() => "null".to_string(),
            Self::F64(v) if !v.is_finite() => "null".to_string(),
            other => other.text(),
        }
    }
}

/// What is wrong with a GGUF file, and the tensor concerned if there is one.
#[derive(Debug)]
struct Problem {
    tensor: Option<String>,
    message: String,
}

impl Problem {
    fn file(message: impl Into<String>) -> Self {
        Self {
            tensor: None,
            message: message.into(),
        }
    }

    fn tensor(name: &str, message: impl Into<String>) -> Self {
        Self {
            tensor: Some(name.to_string()),
            message: message.into(),
        }
    }

    fn into_error(self, path: &Path) -> LoadError {
        match self.tensor {
            Some(name) => LoadError::tensor(path, &name, self.message),
            None => LoadError::format(path, self.message),
        }
    }
}

/// A bounds-checked cursor over the header bytes in the file's byte order.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// The next `n` bytes; `what` names them for the message if the file ends first.
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], Problem> {
        if n > self.remaining() {
            return Err(Problem::file(format!(
                "truncated GGUF file: {} needs {n} bytes at byte {}, but the file ends at byte {}",
                what(),
                self.pos,
                self.bytes.len()
            )));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], Problem> {
        let bytes = self.take(N as u64, what)?;
        Ok(bytes.try_into().expect("N bytes"))
    }

    fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8, Problem> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16, Problem> {
        let b = self.array(what)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, Problem> {
        let b = self.array(what)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, Problem> {
        let b = self.array(what)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A GGUF string's bytes (u64 length, then the bytes).
    fn string_bytes(&mut self, what: &dyn Fn() -> String) -> Result<&'a [u8], Problem> {
        let len = self.u64(&|| format!("the length of {}", what()))?;
        self.take(len, what)
    }

    /// A GGUF string that must be UTF-8 (keys and tensor names).
    fn utf8(&mut self, what: &dyn Fn() -> String) -> Result<&'a str, Problem> {
        let bytes = self.string_bytes(what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Problem::file(format!("{} is not valid UTF-8", what())))
    }

    fn scalar(&mut self, kind: ValueType, what: &dyn Fn() -> String) -> Result<Scalar, Problem> {
        Ok(match kind {
            ValueType::U8 => Scalar::Unsigned(u64::from(self.u8(what)?)),
            ValueType::I8 => Scalar::Signed(i64::from(self.u8(what)? as i8)),
            ValueType::U16 => Scalar::Unsigned(u64::from(self.u16(what)?)),
            ValueType::I16 => Scalar::Signed(i64::from(self.u16(what)? as i16)),
            ValueType::U32 => Scalar::Unsigned(u64::from(self.u32(what)?)),
            ValueType::I32 => Scalar::Signed(i64::from(self.u32(what)? as i32)),
            ValueType::U64 => Scalar::Unsigned(self.u64(what)?),
            ValueType::I64 => Scalar::Signed(self.u64(what)? as i64),
            ValueType::F32 => Scalar::F32(f32::from_bits(self.u32(what)?)),
            ValueType::F64 => Scalar::F64(f64::from_bits(self.u64(what)?)),
            ValueType::Bool => match self.u8(what)? {
                0 => Scalar::Bool(false),
                1 => Scalar::Bool(true),
                other => {
                    return Err(Problem::file(format!(
                        "{} is a bool stored as {other}, expected 0 or 1",
                        what()
                    )));
                }
            },
            ValueType::String | ValueType::Array => unreachable!("not a scalar type"),
        })
    }

    /// An array value (element type, length, elements). With `out`, its JSON is appended there
    /// (or, above [`MAX_ARRAY_SHOWN`] elements, a summary: plain text at the top level, a JSON
    /// string inside another array); without, it is only stepped over.
    fn array_value(
        &mut self,
        key: &str,
        depth: usize,
        out: Option<&mut String>,
    ) -> Result<(), Problem> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(Problem::file(format!(
                "metadata '{key}' nests arrays deeper than {MAX_ARRAY_DEPTH} levels"
            )));
        }
        let type_id = self.u32(&|| format!("the element type of metadata '{key}'"))?;
        let kind = ValueType::from_id(type_id).ok_or_else(|| {
            Problem::file(format!(
                "metadata '{key}' is an array of unknown value type {type_id} (expected 0 to 12)"
            ))
        })?;
        let len = self.u64(&|| format!("the length of metadata array '{key}'"))?;
        if len > self.remaining() / kind.min_bytes() {
            return Err(Problem::file(format!(
                "metadata '{key}' claims an array of {len} {} values, which cannot fit in the {} bytes left in the file",
                kind.name(),
                self.remaining()
            )));
        }
        let mut out = match out {
            Some(out) if len > MAX_ARRAY_SHOWN => {
                let summary = format!("(array of {len} {} values, not shown)", kind.name());
                if depth == 1 {
                    out.push_str(&summary);
                } else {
                    out.push_str(&json_string(&summary));
                }
                None
            }
            other => other,
        };
        let what = || format!("an element of metadata array '{key}'");
        if out.is_none() && kind != ValueType::String && kind != ValueType::Array {
            // Fixed-size elements: step over them at once (the length was checked above).
            self.take(len * kind.min_bytes(), &what)?;
            return Ok(());
        }
        if let Some(out) = out.as_deref_mut() {
            out.push('[');
        }
        for index in 0..len {
            if index > 0
                && let Some(out) = out.as_deref_mut()
            {
                out.push(',');
            }
            match kind {
                ValueType::String => {
                    let bytes = self.string_bytes(&what)?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push_str(&json_string(&String::from_utf8_lossy(bytes)));
                    }
                }
                ValueType::Array => self.array_value(key, depth + 1, out.as_deref_mut())?,
                scalar => {
                    let value = self.scalar(scalar, &what)?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push_str(&value.json());
                    }
                }
            }
        }
        if let Some(out) = out {
            out.push(']');
        }
        Ok(())
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// Where one tensor's bytes lie, relative to the start of the data section.
#[derive(Clone, Debug)]
struct Stored {
    info: TensorInfo,
    start: usize,
    len: usize,
}

/// Everything the header says.
#[derive(Debug)]
struct Header {
    version: u32,
    big_endian: bool,
    alignment: u64,
    data_start: usize,
    tensors: Vec<Stored>,
    metadata: BTreeMap<String, String>,
}

/// `offset` rounded up to a multiple of `alignment` (a power of two), if that fits.
fn align_up(offset: u64, alignment: u64) -> Option<u64> {
    offset
        .checked_add(alignment - 1)
        .map(|v| v / alignment * alignment)
}

/// Parses and checks the whole header of a GGUF file held in `bytes`.
fn parse(bytes: &[u8]) -> Result<Header, Problem> {
    if !bytes.starts_with(MAGIC) {
        return Err(Problem::file(format!(
            "not a GGUF file (expected the magic bytes 47 47 55 46 'GGUF', got {})",
            super::hex_bytes(&bytes[..bytes.len().min(4)])
        )));
    }
    let mut reader = Reader {
        bytes,
        pos: MAGIC.len(),
        big_endian: false,
    };
    let raw = reader.array::<4>(&|| "the GGUF version".to_string())?;
    // A version read in the wrong byte order has its low 16 bits zero (ggml's test).
    let (version, big_endian) = match (u32::from_le_bytes(raw), u32::from_be_bytes(raw)) {
        (le, _) if le & 0xFFFF != 0 => (le, false),
        (_, be) if be & 0xFFFF != 0 => (be, true),
        _ => (0, false),
    };
    reader.big_endian = big_endian;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Problem::file(
                "GGUF version 1 is not supported (it stores 32-bit counts and lengths); convert the model again with a current llama.cpp, which writes version 3",
            ));
        }
        other => {
            return Err(Problem::file(format!(
                "unsupported GGUF version {other} (version bytes {}), expected 2 or 3",
                super::hex_bytes(&raw)
            )));
        }
    }
    let tensor_count = reader.u64(&|| "the tensor count".to_string())?;
    let kv_count = reader.u64(&|| "the metadata count".to_string())?;
    if kv_count > reader.remaining() / MIN_KV_BYTES {
        return Err(Problem::file(format!(
            "the header claims {kv_count} metadata key-value pairs, which cannot fit in the {} bytes of the file (each takes at least {MIN_KV_BYTES})",
            bytes.len()
        )));
    }
    if tensor_count > reader.remaining() / MIN_TENSOR_INFO_BYTES {
        return Err(Problem::file(format!(
            "the header claims {tensor_count} tensors, whose infos cannot fit in the {} bytes of the file (each takes at least {MIN_TENSOR_INFO_BYTES})",
            bytes.len()
        )));
    }

    let mut metadata = BTreeMap::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for index in 0..kv_count {
        let key = reader
            .utf8(&|| format!("metadata key {index}"))?
            .to_string();
        let type_id = reader.u32(&|| format!("the value type of metadata '{key}'"))?;
        let kind = ValueType::from_id(type_id).ok_or_else(|| {
            Problem::file(format!(
                "metadata '{key}' has unknown value type {type_id} (expected 0 to 12)"
            ))
        })?;
        if key == ALIGNMENT_KEY && kind != ValueType::U32 {
            return Err(Problem::file(format!(
                "{ALIGNMENT_KEY} has type {}, expected uint32",
                kind.name()
            )));
        }
        let what = || format!("the value of metadata '{key}'");
        let text = match kind {
            ValueType::String => String::from_utf8_lossy(reader.string_bytes(&what)?).into_owned(),
            ValueType::Array => {
                let mut text = String::new();
                reader.array_value(&key, 1, Some(&mut text))?;
                text
            }
            scalar => {
                let value = reader.scalar(scalar, &what)?;
                if key == ALIGNMENT_KEY {
                    alignment = match value {
                        Scalar::Unsigned(a) if a.is_power_of_two() => a,
                        _ => {
                            return Err(Problem::file(format!(
                                "{ALIGNMENT_KEY} = {}, expected a power of two",
                                value.text()
                            )));
                        }
                    };
                }
                value.text()
            }
        };
        if metadata.insert(key.clone(), text).is_some() {
            return Err(Problem::file(format!("metadata key '{key}' appears twice")));
        }
    }

    let capacity = usize::try_from(tensor_count).unwrap_or(usize::MAX);
    let mut infos: Vec<(TensorInfo, u64, u64)> = Vec::with_capacity(capacity);
    let mut seen: HashMap<String, u64> = HashMap::with_capacity(capacity);
    for index in 0..tensor_count {
        let name = reader
            .utf8(&|| format!("the name of tensor {index}"))?
            .to_string();
        if let Some(first) = seen.insert(name.clone(), index) {
            return Err(Problem::tensor(
                &name,
                format!(
                    "appears twice among the tensor infos (tensors {first} and {index}); names must be unique"
                ),
            ));
        }
        let tensor_problem = |message: String| Problem::tensor(&name, message);
        let rank = reader.u32(&|| format!("the rank of tensor '{name}'"))?;
        if rank > MAX_DIMS {
            return Err(tensor_problem(format!(
                "has {rank} dimensions, GGUF allows at most {MAX_DIMS}"
            )));
        }
        let mut dims = Vec::with_capacity(rank as usize);
        for axis in 0..rank {
            dims.push(reader.u64(&|| format!("dimension {axis} of tensor '{name}'"))?);
        }
        let type_id = reader.u32(&|| format!("the type of tensor '{name}'"))?;
        let offset = reader.u64(&|| format!("the data offset of tensor '{name}'"))?;
        let ggml = match GgmlType::from_id(type_id) {
            Some(Ok(ggml)) => ggml,
            Some(Err(removed)) => {
                return Err(tensor_problem(format!(
                    "has ggml type {type_id} ({removed}), which was removed from GGUF; quantise the model again with a current llama.cpp"
                )));
            }
            None => {
                return Err(tensor_problem(format!(
                    "has unknown ggml type id {type_id} (known: 0 to 42)"
                )));
            }
        };
        let numel = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let bytes = numel.and_then(|n| (n / ggml.block).checked_mul(ggml.bytes));
        let (Some(_), Some(bytes)) = (numel, bytes) else {
            return Err(tensor_problem(format!(
                "has dimensions {dims:?} (innermost first) whose size overflows"
            )));
        };
        let row = dims.first().copied().unwrap_or(1);
        if !row.is_multiple_of(ggml.block) {
            return Err(tensor_problem(format!(
                "has {row} elements per row, not a multiple of the {} block size {}",
                ggml.name, ggml.block
            )));
        }
        if !offset.is_multiple_of(alignment) {
            return Err(tensor_problem(format!(
                "has data offset {offset}, not a multiple of the alignment {alignment}"
            )));
        }
        let shape: Option<Vec<usize>> = dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        let Some(shape) = shape else {
            return Err(tensor_problem(format!(
                "has dimensions {dims:?} too large for this machine"
            )));
        };
        let info = TensorInfo {
            name: name.clone(),
            shape,
            dtype: ggml.dtype(),
        };
        infos.push((info, offset, bytes));
    }

    let file_len = bytes.len() as u64;
    let data_start = align_up(reader.pos as u64, alignment).unwrap_or(u64::MAX);
    if !infos.is_empty() && data_start > file_len {
        return Err(Problem::file(format!(
            "truncated GGUF file: the data section should start at byte {data_start} (after the tensor infos, aligned to {alignment}), but the file has {file_len} bytes"
        )));
    }
    let data_start = data_start.min(file_len);
    let data_len = file_len - data_start;
    let mut tensors = Vec::with_capacity(infos.len());
    for (info, offset, len) in infos {
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > data_len) {
            return Err(Problem::tensor(
                &info.name,
                format!(
                    "has {len} data bytes at offset {offset}, beyond the data section of {data_len} bytes (truncated file or wrong offset)"
                ),
            ));
        }
        // Both fit in the file, hence in usize.
        tensors.push(Stored {
            info,
            start: offset as usize,
            len: len as usize,
        });
    }
    let mut spans: Vec<&Stored> = tensors.iter().filter(|t| t.len > 0).collect();
    spans.sort_by_key(|t| t.start);
    for pair in spans.windows(2) {
        if pair[1].start < pair[0].start + pair[0].len {
            return Err(Problem::file(format!(
                "tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap in the data section",
                pair[0].info.name,
                pair[0].start,
                pair[0].start + pair[0].len,
                pair[1].info.name,
                pair[1].start,
                pair[1].start + pair[1].len
            )));
        }
    }
    Ok(Header {
        version,
        big_endian,
        alignment,
        data_start: data_start as usize,
        tensors,
        metadata,
    })
}

/// One memory-mapped GGUF file.
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    big_endian: bool,
    alignment: u64,
    data_start: usize,
    tensors: HashMap<String, Stored>,
    names: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl GgufFile {
    /// Maps the file and parses and checks its whole header; reads no tensor data.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let map = map_file(path)?;
        let header = parse(&map).map_err(|problem| problem.into_error(path))?;
        let mut names: Vec<String> = header.tensors.iter().map(|t| t.info.name.clone()).collect();
        names.sort();
        let tensors = header
            .tensors
            .into_iter()
            .map(|t| (t.info.name.clone(), t))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            map,
            version: header.version,
            big_endian: header.big_endian,
            alignment: header.alignment,
            data_start: header.data_start,
            tensors,
            names,
            metadata: header.metadata,
        })
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether the file stores its numbers big-endian.
    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// The data alignment in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    fn stored(&self, name: &str) -> Result<&Stored, LoadError> {
        self.tensors
            .get(name)
            .ok_or_else(|| not_found(&self.path, name, &self.names))
    }
}

impl TensorSource for GgufFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> Format {
        Format::Gguf
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn info(&self, name: &str) -> Result<TensorInfo, LoadError> {
        Ok(self.stored(name)?.info.clone())
    }

    fn read_f64(&self, name: &str) -> Result<ArrayD<f64>, LoadError> {
        let stored = self.stored(name)?;
        if stored.info.dtype.float_size().is_none() {
            return Err(LoadError::tensor(
                &self.path,
                name,
                format!(
                    "has ggml type {}, expected f32, f16, bf16 or f64 (quantised and integer GGUF tensors are listed but not decoded)",
                    stored.info.dtype
                ),
            ));
        }
        // parse() checked that the bytes lie inside the data section and match shape × type.
        let start = self.data_start + stored.start;
        let bytes = &self.map[start..start + stored.len];
        let values = decode_floats(bytes, &stored.info.dtype, self.big_endian);
        ArrayD::from_shape_vec(IxDyn(&stored.info.shape), values)
            .map_err(|e| LoadError::tensor(&self.path, name, format!("cannot be shaped: {e}")))
    }

    fn storage(&self, name: &str) -> Result<TensorStorage, LoadError> {
        let stored = self.stored(name)?;
        if stored.info.dtype.float_size().is_none() {
            return Ok(TensorStorage::Other);
        }
        Ok(TensorStorage::Contiguous(TensorLocation {
            file: self.path.clone(),
            offset: (self.data_start + stored.start) as u64,
            info: stored.info.clone(),
            big_endian: self.big_endian,
            fortran_order: false,
        }))
    }

    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes GGUF bytes by hand, independently of the reader, in either byte order.
    struct Writer {
        bytes: Vec<u8>,
        big_endian: bool,
    }

    impl Writer {
        fn new(version: u32, tensors: u64, kvs: u64, big_endian: bool) -> Self {
            let mut w = Self {
                bytes: MAGIC.to_vec(),
                big_endian,
            };
            w.u32(version);
            w.u64(tensors);
            w.u64(kvs);
            w
        }

        fn u32(&mut self, v: u32) -> &mut Self {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
            self
        }

        fn u64(&mut self, v: u64) -> &mut Self {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
            self
        }

        fn string(&mut self, s: &str) -> &mut Self {
            self.u64(s.len() as u64);
            self.bytes.extend_from_slice(s.as_bytes());
            self
        }

        fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
            self.string(key).u32(4).u32(v)
        }

        /// A tensor info with dimensions given innermost first, as stored.
        fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> &mut Self {
            self.string(name).u32(dims.len() as u32);
            for &d in dims {
                self.u64(d);
            }
            self.u32(type_id).u64(offset)
        }

        fn pad_to(&mut self, alignment: usize) -> &mut Self {
            while !self.bytes.len().is_multiple_of(alignment) {
                self.bytes.push(0);
            }
            self
        }

        fn f32s(&mut self, values: &[f32]) -> &mut Self {
            for v in values {
                let b = if self.big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                self.bytes.extend_from_slice(&b);
            }
            self
        }
    }

    /// A valid file: metadata of several types, a 2×3 f32 tensor stored as ne = [3, 2] and a
    /// q8_0 tensor of one block.
    fn sample(big_endian: bool) -> Vec<u8> {
        let mut w = Writer::new(3, 2, 4, big_endian);
        w.string("general.architecture").u32(8).string("deepseek4");
        w.kv_u32("deepseek4.hyper_connection.count", 4);
        w.string("deepseek4.hyper_connection.epsilon")
            .u32(6)
            .u32(1e-6f32.to_bits());
        // [[1, 2], [3]] as an array of arrays of int32.
        w.string("nested").u32(9).u32(9).u64(2);
        w.u32(5).u64(2).u32(1).u32(2);
        w.u32(5).u64(1).u32((-3i32) as u32);
        w.tensor("m", &[3, 2], 0, 0);
        w.tensor("q", &[32], 8, 32);
        w.pad_to(32);
        w.f32s(&[0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
        w.pad_to(32);
        w.bytes.extend_from_slice(&[0u8; 34]);
        w.bytes
    }

    #[test]
    fn reads_metadata_shapes_and_values_in_both_byte_orders() {
        for big_endian in [false, true] {
            let bytes = sample(big_endian);
            let header = parse(&bytes).unwrap();
            assert_eq!(header.big_endian, big_endian);
            assert_eq!(header.version, 3);
            assert_eq!(header.alignment, 32);
            let m = &header.metadata;
            assert_eq!(m["general.architecture"], "deepseek4");
            assert_eq!(m["deepseek4.hyper_connection.count"], "4");
            assert_eq!(m["deepseek4.hyper_connection.epsilon"], "1e-6");
            assert_eq!(m["nested"], "[[1,2],[-3]]");
            let t = &header.tensors[0];
            assert_eq!(t.info.shape, [2, 3]);
            assert_eq!(t.info.dtype, Dtype::F32);
            let data = &bytes[header.data_start + t.start..][..t.len];
            let values = decode_floats(data, &t.info.dtype, big_endian);
            // Row-major [2, 3]: element [i, j] = 10 i + j.
            assert_eq!(values, [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
            let q = &header.tensors[1];
            assert_eq!(q.info.dtype, Dtype::Other("q8_0".into()));
            assert_eq!((q.info.shape.as_slice(), q.len), ([32].as_slice(), 34));
        }
    }

    fn problem(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(_) => panic!("parsed but should fail"),
            Err(p) => format!("{:?}: {}", p.tensor, p.message),
        }
    }

    #[test]
    fn refuses_versions_and_lying_counts() {
        let mut v1 = sample(false);
        v1[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(problem(&v1).contains("GGUF version 1 is not supported"));
        let mut v4 = sample(false);
        v4[4..8].copy_from_slice(&4u32.to_le_bytes());
        assert!(problem(&v4).contains("unsupported GGUF version 4"));
        let mut kvs = sample(false);
        kvs[16..24].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(problem(&kvs).contains("claims 4611686018427387904 metadata key-value pairs"));
        let mut tensors = sample(false);
        tensors[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(problem(&tensors).contains("claims 18446744073709551615 tensors"));
    }

    #[test]
    fn refuses_a_lying_array_length_before_allocating() {
        let mut w = Writer::new(3, 0, 1, false);
        w.string("tokens").u32(9).u32(8).u64(u64::MAX / 2);
        let message = problem(&w.bytes);
        assert!(
            message.contains("claims an array of 9223372036854775807 string values"),
            "{message}"
        );
    }

    #[test]
    fn refuses_deep_nesting_bad_types_and_bad_alignment() {
        let mut w = Writer::new(3, 0, 1, false);
        w.string("deep");
        w.u32(9);
        for _ in 0..40 {
            w.u32(9).u64(1);
        }
        w.u32(4).u64(1).u32(7);
        assert!(problem(&w.bytes).contains("nests arrays deeper than 16 levels"));

        let mut w = Writer::new(3, 0, 1, false);
        w.string("x").u32(13).u32(0);
        assert!(problem(&w.bytes).contains("metadata 'x' has unknown value type 13"));

        let mut w = Writer::new(3, 0, 1, false);
        w.string("b").u32(7);
        w.bytes.push(2);
        assert!(problem(&w.bytes).contains("bool stored as 2"));

        let mut w = Writer::new(3, 0, 1, false);
        w.kv_u32(ALIGNMENT_KEY, 48);
        assert!(problem(&w.bytes).contains("general.alignment = 48, expected a power of two"));

        let mut w = Writer::new(3, 0, 1, false);
        w.string(ALIGNMENT_KEY).u32(10).u64(64);
        assert!(problem(&w.bytes).contains("general.alignment has type uint64, expected uint32"));

        let mut w = Writer::new(3, 0, 2, false);
        w.kv_u32("k", 1).kv_u32("k", 2);
        assert!(problem(&w.bytes).contains("metadata key 'k' appears twice"));
    }

    #[test]
    fn honours_a_custom_alignment() {
        let mut w = Writer::new(3, 2, 1, false);
        w.kv_u32(ALIGNMENT_KEY, 64);
        w.tensor("a", &[1], 0, 0).tensor("b", &[2], 0, 64);
        w.pad_to(64);
        w.f32s(&[5.0]).pad_to(64).f32s(&[6.0, 7.0]);
        let bytes = w.bytes.clone();
        let header = parse(&bytes).unwrap();
        assert_eq!(header.alignment, 64);
        assert!(header.data_start.is_multiple_of(64));
        let b = &header.tensors[1];
        let data = &bytes[header.data_start + b.start..][..b.len];
        assert_eq!(decode_floats(data, &Dtype::F32, false), [6.0, 7.0]);
        // With the default alignment of 32 the same offsets point elsewhere: offset 64 is still
        // aligned, but the data section starts 32 bytes earlier or later.
        let mut w = Writer::new(3, 1, 0, false);
        w.tensor("a", &[1], 0, 48);
        assert!(
            problem(&w.bytes).contains("has data offset 48, not a multiple of the alignment 32")
        );
    }

    #[test]
    fn refuses_bad_tensor_infos() {
        let cases: [(&[u64], u32, u64, &str); 6] = [
            (
                &[4, 1, 1, 1, 1],
                0,
                0,
                "has 5 dimensions, GGUF allows at most 4",
            ),
            (&[4], 99, 0, "has unknown ggml type id 99"),
            (
                &[4],
                31,
                0,
                "has ggml type 31 (q4_0_4_4), which was removed",
            ),
            (
                &[48],
                8,
                0,
                "has 48 elements per row, not a multiple of the q8_0 block size 32",
            ),
            (&[u64::MAX, 3], 0, 0, "whose size overflows"),
            (
                &[4],
                0,
                4096,
                "has 16 data bytes at offset 4096, beyond the data section",
            ),
        ];
        for (dims, type_id, offset, expected) in cases {
            let mut w = Writer::new(3, 1, 0, false);
            w.tensor("t", dims, type_id, offset).pad_to(32);
            w.bytes.extend_from_slice(&[0; 64]);
            let message = problem(&w.bytes);
            assert!(message.starts_with("Some(\"t\")"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        let mut w = Writer::new(3, 2, 0, false);
        w.tensor("t", &[4], 0, 0).tensor("t", &[4], 0, 32);
        assert!(
            problem(&w.bytes).contains("appears twice among the tensor infos (tensors 0 and 1)")
        );
        let mut w = Writer::new(3, 2, 0, false);
        w.tensor("a", &[16], 0, 0)
            .tensor("b", &[4], 0, 32)
            .pad_to(32);
        w.bytes.extend_from_slice(&[0; 64]);
        assert!(
            problem(&w.bytes).contains("tensors 'a' (bytes 0..64) and 'b' (bytes 32..48) overlap")
        );
    }

    #[test]
    fn every_truncation_of_a_valid_file_is_an_error() {
        for big_endian in [false, true] {
            let bytes = sample(big_endian);
            for len in 0..bytes.len() - 34 {
                // Cutting inside the q8_0 data (the last 34 bytes) is caught too, but by the
                // range check rather than the header reader.
                assert!(parse(&bytes[..len]).is_err(), "length {len} parsed");
            }
            for len in bytes.len() - 34..bytes.len() {
                let message = problem(&bytes[..len]);
                assert!(
                    message.contains("'q'") || message.contains("\"q\""),
                    "{message}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Corrupting any bytes of a valid file never panics, and whatever still parses lies
        /// inside the file.
        #[test]
        fn corrupted_files_never_panic(
            edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..6),
            big_endian in any::<bool>(),
        ) {
            let mut bytes = sample(big_endian);
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Ok(header) = parse(&bytes) {
                for t in &header.tensors {
                    prop_assert!(header.data_start + t.start + t.len <= bytes.len());
                    let numel = t.info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                    if let (Some(numel), Some(size)) = (numel, t.info.dtype.float_size()) {
                        prop_assert_eq!(numel * size, t.len);
                    }
                }
            }
        }

        /// Arbitrary bytes after the magic never panic.
        #[test]
        fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            let _ = parse(&bytes);
        }
    }
}
