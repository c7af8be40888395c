//! Logits from a `.npy` file (f32 or f64), for `gain --logits`.

use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadNpyExt};

use crate::error::Error;
use crate::load::LoadError;

/// Reads an f64 or f32 `.npy` array of any rank as f64.
pub fn read_logits_npy(path: &Path) -> Result<ArrayD<f64>, Error> {
    let format_error = |message: String| -> Error { LoadError::format(path, message).into() };
    if path.is_dir() {
        return Err(format_error("is a directory, expected a .npy file".into()));
    }
    let open = || std::fs::File::open(path).map_err(|source| LoadError::io(path, source));
    match ArrayD::<f64>::read_npy(open()?) {
        Ok(array) => Ok(array),
        Err(ReadNpyError::WrongDescriptor(_)) => match ArrayD::<f32>::read_npy(open()?) {
            Ok(array) => Ok(array.mapv(f64::from)),
            Err(ReadNpyError::WrongDescriptor(descriptor)) => Err(format_error(format!(
                "unsupported dtype {descriptor}, expected float32 or float64"
            ))),
            Err(e) => Err(format_error(npy_message(e))),
        },
        Err(e) => Err(format_error(npy_message(e))),
    }
}

fn npy_message(error: ReadNpyError) -> String {
    match error {
        ReadNpyError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated .npy file (fewer data bytes than its header promises)".to_string()
        }
        ReadNpyError::ParseHeader(e) => format!("not a valid .npy file ({e})"),
        other => format!("cannot read .npy: {other}"),
    }
}
