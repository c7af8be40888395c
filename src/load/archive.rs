//! A memory-mapped zip archive (shared by the npz and PyTorch readers). Stored (uncompressed)
//! members are borrowed straight from the map; deflated ones are decompressed on demand, never
//! beyond their declared size.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use memmap2::Mmap;
use zip::{CompressionMethod, ZipArchive};

use super::{LoadError, TensorSource, map_file};

/// The mapped file, shareable between the archive reader and direct slices.
#[derive(Clone)]
pub(crate) struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One member of the archive.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The member's name inside the archive.
    pub name: String,
    /// Index for [`ZipArchive::by_index`].
    index: usize,
    /// Offset of the member's data in the file.
    data_start: u64,
    /// Bytes in the file (compressed).
    compressed_size: u64,
    /// Bytes once decompressed.
    pub size: u64,
    /// Stored without compression: readable as a slice of the map.
    stored: bool,
}

impl Entry {
    /// Bytes the member takes in the archive.
    pub(crate) fn compressed_size(&self) -> u64 {
        self.compressed_size
    }
}

pub(crate) struct ZipIndex {
    path: PathBuf,
    map: SharedMap,
    archive: Mutex<ZipArchive<Cursor<SharedMap>>>,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl ZipIndex {
    pub(crate) fn open(path: &Path) -> Result<Self, LoadError> {
        let map = SharedMap(Arc::new(map_file(path)?));
        let zip_error = |e: zip::result::ZipError| {
            LoadError::format(path, format!("truncated or corrupt zip archive: {e}"))
        };
        let mut archive = ZipArchive::new(Cursor::new(map.clone())).map_err(zip_error)?;
        let file_len = map.0.len() as u64;
        let mut entries = Vec::with_capacity(archive.len());
        let mut by_name = HashMap::with_capacity(archive.len());
        for index in 0..archive.len() {
            let member = archive.by_index_raw(index).map_err(zip_error)?;
            if member.is_dir() {
                continue;
            }
            let entry = Entry {
                name: member.name().to_string(),
                index,
                data_start: member.data_start(),
                compressed_size: member.compressed_size(),
                size: member.size(),
                stored: member.compression() == CompressionMethod::Stored && !member.encrypted(),
            };
            let end = entry.data_start.checked_add(entry.compressed_size);
            if end.is_none_or(|end| end > file_len) {
                return Err(LoadError::format(
                    path,
                    format!(
                        "zip member '{}' claims bytes {}..{} but the file has {} bytes (truncated?)",
                        entry.name,
                        entry.data_start,
                        entry.data_start.saturating_add(entry.compressed_size),
                        file_len
                    ),
                ));
            }
            by_name.insert(entry.name.clone(), entries.len());
            entries.push(entry);
        }
        Ok(Self {
            path: path.to_path_buf(),
            map,
            archive: Mutex::new(archive),
            entries,
            by_name,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Where a stored (uncompressed) member's bytes start in the file; `None` if compressed.
    pub(crate) fn stored_data_start(&self, entry: &Entry) -> Option<u64> {
        entry.stored.then_some(entry.data_start)
    }

    /// Decompresses a member into `out`, skipping its first `skip` bytes, through a fixed
    /// buffer: memory stays flat whatever the member's size. An error if the stream ends before
    /// the member's declared size; never more than the declared size is written.
    pub(crate) fn inflate(
        &self,
        entry: &Entry,
        skip: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<(), LoadError> {
        let mut archive = self
            .archive
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let member_error = |e: &dyn std::fmt::Display| {
            LoadError::format(
                &self.path,
                format!("zip member '{}' cannot be decompressed: {e}", entry.name),
            )
        };
        let member = archive
            .by_index(entry.index)
            .map_err(|e| member_error(&e))?;
        let mut reader = member.take(entry.size);
        let mut buffer = vec![0u8; 1 << 20];
        let mut position = 0u64;
        loop {
            let got = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(member_error(&e)),
            };
            let chunk = &buffer[..got];
            let from = skip.saturating_sub(position).min(got as u64) as usize;
            position += got as u64;
            out.write_all(&chunk[from..]).map_err(|e| {
                LoadError::format(
                    &self.path,
                    format!(
                        "zip member '{}': writing its inflated copy failed: {e}",
                        entry.name
                    ),
                )
            })?;
        }
        if position < entry.size {
            return Err(LoadError::format(
                &self.path,
                format!(
                    "zip member '{}' holds {position} bytes, expected {}",
                    entry.name, entry.size
                ),
            ));
        }
        Ok(())
    }

    /// The whole member: a slice of the map if stored, else decompressed (at most `size` bytes,
    /// and an error if the stream holds fewer).
    pub(crate) fn read(&self, entry: &Entry) -> Result<Cow<'_, [u8]>, LoadError> {
        self.read_prefix(entry, entry.size)
    }

    /// The first `limit` bytes of a member (fewer if the member is shorter).
    pub(crate) fn read_prefix(
        &self,
        entry: &Entry,
        limit: u64,
    ) -> Result<Cow<'_, [u8]>, LoadError> {
        let want = limit.min(entry.size);
        if entry.stored {
            // Bounds were checked in `open` (data_start + compressed_size ≤ file length) and a
            // stored member's size equals its compressed size.
            let start = entry.data_start as usize;
            let len = want.min(entry.compressed_size) as usize;
            return Ok(Cow::Borrowed(&self.map.0[start..start + len]));
        }
        let mut archive = self
            .archive
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let member = archive.by_index(entry.index).map_err(|e| {
            LoadError::format(&self.path, format!("zip member '{}': {e}", entry.name))
        })?;
        let mut out = Vec::with_capacity(usize::try_from(want).unwrap_or(0).min(1 << 30));
        member.take(want).read_to_end(&mut out).map_err(|e| {
            LoadError::format(
                &self.path,
                format!("zip member '{}' cannot be decompressed: {e}", entry.name),
            )
        })?;
        if (out.len() as u64) < want {
            return Err(LoadError::format(
                &self.path,
                format!(
                    "zip member '{}' holds {} bytes, expected {}",
                    entry.name,
                    out.len(),
                    want
                ),
            ));
        }
        Ok(Cow::Owned(out))
    }
}

/// Opens a zip as a PyTorch checkpoint (it holds `data.pkl`) or an npz (it holds `.npy` files).
pub(crate) fn open_zip(path: &Path) -> Result<Box<dyn TensorSource>, LoadError> {
    let index = ZipIndex::open(path)?;
    let is_torch = index
        .entries()
        .iter()
        .any(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"));
    if is_torch {
        return Ok(Box::new(super::torch::TorchFile::from_zip(index)?));
    }
    if index.entries().iter().any(|e| e.name.ends_with(".npy")) {
        return Ok(Box::new(super::numpy::NpzFile::from_zip(index)?));
    }
    let names: Vec<&str> = index
        .entries()
        .iter()
        .take(5)
        .map(|e| e.name.as_str())
        .collect();
    Err(LoadError::format(
        path,
        format!(
            "zip archive is neither a PyTorch checkpoint (no data.pkl) nor an npz (no .npy members); it holds {}",
            if names.is_empty() {
                "no files".to_string()
            } else {
                names.join(", ")
            }
        ),
    ))
}
