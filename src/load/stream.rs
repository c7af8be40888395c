//! A stack of per-token H_res `[L, T, n, n]` (or `[L, n, n]`) read from its file in chunks of
//! tokens, with positional reads: memory does not grow with T, and no page of the file is mapped,
//! so a capture of millions of tokens audits in the memory of one chunk.
//!
//! A C-order tensor is layer-major: tokens `t0..t1` of layer l are one contiguous run, so a chunk
//! is L reads. A Fortran-order tensor (numpy's `order='F'`) keeps, for each entry (i, j), the
//! layers and tokens of a chunk contiguous, so a chunk is n² reads. A tensor inside a compressed
//! archive member (`numpy.savez_compressed`) cannot be read out of order: it is inflated once, in
//! a fixed buffer, into an anonymous temporary file (removed when the stack is dropped) and read
//! from there; members that would inflate beyond [`MAX_INFLATED_BYTES`] are refused up front.

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use super::{
    Dtype, LoadError, TensorSource, TensorStorage, decode_floats_into, printable, read_exact_at,
    shown,
};
use crate::analysis::TokenSource;
use crate::error::{Error, StackError};
use crate::stack::wrong_rank;

/// The largest compressed member inflated into a temporary file: 4 GiB (a 60-layer capture of a
/// million tokens in f32 is 3.84 GB). Larger members are refused with the reason.
pub(crate) const MAX_INFLATED_BYTES: u64 = 4 << 30;

/// A stack of H_res in a file, read by chunks of tokens (see the module docs).
#[derive(Debug)]
pub(crate) struct StackFile {
    /// `FILE: tensor 'NAME'` (or just the file for a lone `.npy`), for messages.
    what: String,
    file: File,
    offset: u64,
    dtype: Dtype,
    element_size: usize,
    big_endian: bool,
    fortran_order: bool,
    layers: usize,
    tokens: u64,
    streams: usize,
    transpose: bool,
    /// Whether the elements came from a compressed member (inflated into `file`).
    inflated: bool,
}

impl StackFile {
    /// Opens tensor `name` of `source` as a stack; `what` names it in messages. With
    /// `transpose`, every matrix is transposed as it is read (for files that store H_resᵀ).
    pub fn open(
        source: &dyn TensorSource,
        name: &str,
        what: &str,
        transpose: bool,
    ) -> Result<Self, LoadError> {
        Self::open_inflating_at_most(source, name, what, transpose, MAX_INFLATED_BYTES)
    }

    /// [`Self::open`] with another limit on the bytes a compressed tensor may inflate to.
    fn open_inflating_at_most(
        source: &dyn TensorSource,
        name: &str,
        what: &str,
        transpose: bool,
        limit: u64,
    ) -> Result<Self, LoadError> {
        let path = source.path();
        let info = source.info(name)?;
        super::float_size_or_err(path, &info)?;
        let (layers, tokens, streams) = stack_shape(&info.shape, what)?;
        let (location, file, inflated) = match source.storage(name)? {
            TensorStorage::Contiguous(location) => {
                let file =
                    File::open(&location.file).map_err(|e| LoadError::io(&location.file, e))?;
                (location, file, false)
            }
            TensorStorage::Compressed {
                layout,
                inflated_bytes,
                compressed_bytes,
            } => {
                let file = inflate(source, name, inflated_bytes, compressed_bytes, limit)?;
                (layout, file, true)
            }
            TensorStorage::Other => {
                return Err(LoadError::tensor(
                    path,
                    name,
                    "is a strided view that cannot be read by chunks of tokens; save a contiguous copy (tensor.contiguous()) or use safetensors or .npy",
                ));
            }
        };
        let element_size = location
            .info
            .dtype
            .float_size()
            .expect("a float dtype was checked above");
        let needed = (layers as u64) * tokens * (streams * streams) as u64 * element_size as u64;
        let file_len = file
            .metadata()
            .map_err(|e| LoadError::io(&location.file, e))?
            .len();
        if location.offset.saturating_add(needed) > file_len {
            return Err(LoadError::tensor(
                path,
                name,
                format!(
                    "needs {needed} data bytes from offset {} but {}{} holds {file_len} bytes (truncated file?)",
                    location.offset,
                    shown(&location.file),
                    if inflated { " (inflated)" } else { "" }
                ),
            ));
        }
        Ok(Self {
            what: what.to_string(),
            file,
            offset: location.offset,
            dtype: location.info.dtype,
            element_size,
            big_endian: location.big_endian,
            fortran_order: location.fortran_order,
            layers,
            tokens,
            streams,
            transpose,
            inflated,
        })
    }

    /// The stored dtype.
    pub fn dtype(&self) -> &Dtype {
        &self.dtype
    }

    /// Whether the elements were inflated from a compressed member into a temporary file.
    pub(crate) fn inflated(&self) -> bool {
        self.inflated
    }

    /// Reads `bytes.len()` bytes at element index `element` of the stored order.
    fn read_at(&self, element: u64, bytes: &mut [u8]) -> Result<(), Error> {
        let at = self.offset + element * self.element_size as u64;
        read_exact_at(&self.file, bytes, at).map_err(|e| {
            Error::Load(LoadError::format(
                Path::new(&self.what),
                format!("cannot read bytes at offset {at}: {e} (was the file changed?)"),
            ))
        })
    }

    /// The error for a non-finite value at stored position (layer, token, row, col).
    fn non_finite(&self, layer: usize, token: u64, row: usize, col: usize, value: f64) -> Error {
        StackError::NonFinite {
            what: self.what.clone(),
            layer: layer + 1,
            token: token as usize,
            row,
            col,
            value,
        }
        .into()
    }
}

impl TokenSource for StackFile {
    fn layers(&self) -> usize {
        self.layers
    }

    fn streams(&self) -> usize {
        self.streams
    }

    fn tokens(&self) -> u64 {
        self.tokens
    }

    fn read_tokens(&self, tokens: Range<u64>, out: &mut [f64]) -> Result<(), Error> {
        let (layers, n) = (self.layers, self.streams);
        let n2 = n * n;
        let count = (tokens.end - tokens.start) as usize;
        debug_assert_eq!(out.len(), count * layers * n2);
        // Destination of stored entry (layer, k-th token, row, col): token-major, transposed on
        // request.
        let destination = |layer: usize, k: usize, row: usize, col: usize| {
            let (i, j) = if self.transpose {
                (col, row)
            } else {
                (row, col)
            };
            (k * layers + layer) * n2 + i * n + j
        };
        if self.fortran_order {
            // Element (l, t, i, j) at l + L·(t + T·(i + n·j)): for each (i, j), the layers and
            // tokens of the chunk are one run.
            let run = layers * count;
            let mut bytes = vec![0u8; run * self.element_size];
            let mut values = vec![0.0; run];
            for j in 0..n {
                for i in 0..n {
                    let start = layers as u64 * (tokens.start + self.tokens * (i + n * j) as u64);
                    self.read_at(start, &mut bytes)?;
                    decode_floats_into(&bytes, &self.dtype, self.big_endian, &mut values);
                    for (index, &value) in values.iter().enumerate() {
                        let (k, layer) = (index / layers, index % layers);
                        if !value.is_finite() {
                            return Err(self.non_finite(
                                layer,
                                tokens.start + k as u64,
                                i,
                                j,
                                value,
                            ));
                        }
                        out[destination(layer, k, i, j)] = value;
                    }
                }
            }
            return Ok(());
        }
        // C order: element (l, t, i, j) at ((l·T + t)·n + i)·n + j; tokens t0..t1 of a layer are
        // one run.
        let run = count * n2;
        let mut bytes = vec![0u8; run * self.element_size];
        let mut values = vec![0.0; run];
        for layer in 0..layers {
            let start = (layer as u64 * self.tokens + tokens.start) * n2 as u64;
            self.read_at(start, &mut bytes)?;
            decode_floats_into(&bytes, &self.dtype, self.big_endian, &mut values);
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                let (k, entry) = (bad / n2, bad % n2);
                let token = tokens.start + k as u64;
                return Err(self.non_finite(layer, token, entry / n, entry % n, values[bad]));
            }
            for (k, matrix) in values.chunks_exact(n2).enumerate() {
                if self.transpose {
                    for (entry, &value) in matrix.iter().enumerate() {
                        out[destination(layer, k, entry / n, entry % n)] = value;
                    }
                } else {
                    let at = destination(layer, k, 0, 0);
                    out[at..at + n2].copy_from_slice(matrix);
                }
            }
        }
        Ok(())
    }
}

/// `(layers, tokens, streams)` of a `[L, n, n]` or `[L, T, n, n]` shape: non-empty, square.
fn stack_shape(shape: &[usize], what: &str) -> Result<(usize, u64, usize), LoadError> {
    let (layers, tokens, rows, cols) = match *shape {
        [l, r, c] => (l, 1, r, c),
        [l, t, r, c] => (l, t, r, c),
        _ => return Err(wrong_rank(what, shape, "").into()),
    };
    let full = [layers, tokens, rows, cols];
    if full.contains(&0) {
        return Err(StackError::Empty {
            what: what.to_string(),
            shape: full,
        }
        .into());
    }
    if rows != cols {
        return Err(StackError::NotSquare {
            what: what.to_string(),
            rows,
            cols,
        }
        .into());
    }
    Ok((layers, tokens as u64, rows))
}

/// Inflates a compressed tensor into an anonymous temporary file (flat memory; disk = the
/// inflated size; the file disappears when the returned handle is dropped), refusing members
/// that would inflate beyond `limit` bytes.
fn inflate(
    source: &dyn TensorSource,
    name: &str,
    inflated_bytes: u64,
    compressed_bytes: u64,
    limit: u64,
) -> Result<File, LoadError> {
    let path = source.path();
    if inflated_bytes > limit {
        return Err(LoadError::tensor(
            path,
            name,
            format!(
                "is compressed: {} would inflate to {} ({:.0}:1), more than the {} a temporary copy may take (compressed data cannot be read by chunks of tokens); save it uncompressed (numpy.save or numpy.savez, or safetensors)",
                human_bytes(compressed_bytes),
                human_bytes(inflated_bytes),
                inflated_bytes as f64 / compressed_bytes.max(1) as f64,
                human_bytes(limit)
            ),
        ));
    }
    let temporary = tempfile::tempfile().map_err(|e| {
        LoadError::format(
            path,
            format!(
                "cannot create a temporary file to inflate tensor '{}' into: {e}",
                printable(name)
            ),
        )
    })?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, temporary);
    source.inflate_elements(name, &mut writer)?;
    writer.into_inner().map_err(|e| {
        LoadError::format(
            path,
            format!(
                "writing the inflated copy of tensor '{}' failed: {}",
                printable(name),
                e.error()
            ),
        )
    })
}

/// `1.5 GB`-style sizes (powers of 1000, as `ls -h --si`).
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;
    use ndarray_npy::NpzWriter;

    fn deflated_stack(dir: &Path) -> (std::path::PathBuf, Array4<f32>) {
        let array = Array4::from_shape_fn((3, 50, 2, 2), |(l, t, i, j)| {
            (l * 1000 + t * 10 + i * 2 + j) as f32 * 0.001
        });
        let path = dir.join("stack.npz");
        let mut npz = NpzWriter::new_compressed(File::create(&path).unwrap());
        npz.add_array("hres", &array).unwrap();
        npz.finish().unwrap();
        (path, array)
    }

    #[test]
    fn a_deflated_member_is_inflated_once_and_read_by_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (path, array) = deflated_stack(dir.path());
        let source = crate::load::open(&path).unwrap();
        let stack = StackFile::open(source.as_ref(), "hres", "stack.npz", false).unwrap();
        assert!(stack.inflated());
        let mut out = vec![0.0; 7 * 3 * 4];
        stack.read_tokens(20..27, &mut out).unwrap();
        for k in 0..7 {
            for l in 0..3 {
                for e in 0..4 {
                    let expected = f64::from(array[[l, 20 + k, e / 2, e % 2]]);
                    assert_eq!(out[(k * 3 + l) * 4 + e], expected);
                }
            }
        }
    }

    #[test]
    fn a_member_that_would_inflate_beyond_the_limit_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = deflated_stack(dir.path());
        let source = crate::load::open(&path).unwrap();
        // 3 × 50 × 4 f32 = 2400 bytes of elements.
        let err = StackFile::open_inflating_at_most(source.as_ref(), "hres", "x", false, 2399)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor 'hres' is compressed"), "{err}");
        assert!(err.contains("would inflate to 2.4 kB"), "{err}");
        assert!(
            StackFile::open_inflating_at_most(source.as_ref(), "hres", "x", false, 2400).is_ok()
        );
    }
}
