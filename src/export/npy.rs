//! `.npy` output: the analysed matrices of an audit (`--dump-hres`), streamed.

use std::ops::Range;
use std::path::Path;

use super::atomic::StagedFile;
use crate::analysis::TokenSource;
use crate::error::Error;

/// The `.npy` v1.0 header of a little-endian f64 C-order array of `shape`, padded with spaces
/// so that the data start on a multiple of 64 bytes.
pub(crate) fn npy_header(shape: &[u64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dictionary = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + length (2) + dictionary + '\n' ≡ 0 (mod 64)
    let unpadded = 10 + dictionary.len() + 1;
    dictionary.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dictionary.push('\n');
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&(dictionary.len() as u16).to_le_bytes());
    header.extend_from_slice(dictionary.as_bytes());
    header
}

/// Writes every matrix of `source` to `path` as an f64 `.npy` of shape `[L, n, n]` (one token)
/// or `[L, T, n, n]`, rows = output streams, reading `chunk_tokens` tokens at a time (memory
/// does not grow with T) and writing each layer's run in place; the file appears only when
/// complete.
pub fn dump_stack(source: &dyn TokenSource, path: &Path, chunk_tokens: usize) -> Result<(), Error> {
    let (layers, tokens, n) = (source.layers(), source.tokens(), source.streams());
    let n2 = n * n;
    let shape: Vec<u64> = if tokens == 1 {
        vec![layers as u64, n as u64, n as u64]
    } else {
        vec![layers as u64, tokens, n as u64, n as u64]
    };
    let header = npy_header(&shape);
    let mut staged = StagedFile::create(path)?;
    let io = |e: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let file = staged.positioned()?;
    write_all_at(file, &header, 0).map_err(io)?;
    let chunk = chunk_tokens.max(1) as u64;
    let mut matrices = vec![0.0; chunk as usize * layers * n2];
    let mut bytes = Vec::new();
    let mut first = 0;
    while first < tokens {
        let range: Range<u64> = first..(first + chunk).min(tokens);
        let count = (range.end - range.start) as usize;
        let values = &mut matrices[..count * layers * n2];
        source.read_tokens(range.clone(), values)?;
        for layer in 0..layers {
            bytes.clear();
            for k in 0..count {
                let start = (k * layers + layer) * n2;
                for x in &values[start..start + n2] {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
            }
            let offset =
                header.len() as u64 + (layer as u64 * tokens + range.start) * n2 as u64 * 8;
            write_all_at(file, &bytes, offset).map_err(io)?;
        }
        first = range.end;
    }
    staged.commit()
}

/// Writes `bytes` at `offset` of `file` (positional: the file's cursor does not matter).
#[cfg(unix)]
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// Writes `bytes` at `offset` of `file` (Windows: `seek_write` until done).
#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, bytes, offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayerStack;
    use ndarray::Array4;
    use ndarray_npy::ReadNpyExt;

    #[test]
    fn a_dumped_stack_reads_back_whole_for_any_chunk_size() {
        let data = Array4::from_shape_fn((3, 5, 2, 2), |(l, t, i, j)| {
            (l * 1000 + t * 100 + i * 10 + j) as f64 + 0.5
        });
        let stack = LayerStack::new(data.clone(), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        for chunk in [1, 2, 5, 64] {
            let path = dir.path().join(format!("dump{chunk}.npy"));
            dump_stack(&stack, &path, chunk).unwrap();
            let back = Array4::<f64>::read_npy(std::fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(back, data);
        }
        assert_eq!(npy_header(&[3, 5, 2, 2]).len() % 64, 0);
    }
}
