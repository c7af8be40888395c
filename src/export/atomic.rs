//! Every file the tool writes goes through here: into a temporary file in the target's
//! directory, flushed and synced, then renamed over the target. A failure leaves the previous
//! state (or nothing), never half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::Error;

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A file being written: bytes go to a temporary file beside `target`; [`StagedFile::commit`]
/// renames it into place, dropping it without commit removes it.
pub struct StagedFile {
    target: PathBuf,
    file: std::io::BufWriter<NamedTempFile>,
}

impl StagedFile {
    /// Starts writing `target` (its directory must exist).
    pub fn create(target: &Path) -> Result<Self, Error> {
        let directory = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".mhc-analyze-").suffix(".tmp");
        // tempfile creates 0600 files; outputs are ordinary files (0666 less the umask).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let file = builder
            .tempfile_in(directory)
            .map_err(|e| io_error(target, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            file: std::io::BufWriter::new(file),
        })
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the bytes written so far and syncs them to disk (the file stays staged): the slow
    /// part of [`Self::commit`], which can then overlap other work.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.file.flush().map_err(|e| io_error(&self.target, e))?;
        self.file
            .get_ref()
            .as_file()
            .sync_all()
            .map_err(|e| io_error(&self.target, e))
    }

    /// The temporary file, with every buffered byte written, for positional writes.
    pub(crate) fn positioned(&mut self) -> Result<&std::fs::File, Error> {
        self.file.flush().map_err(|e| io_error(&self.target, e))?;
        Ok(self.file.get_ref().as_file())
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> Result<(), Error> {
        let target = self.target;
        let file = self
            .file
            .into_inner()
            .map_err(|e| io_error(&target, e.into_error()))?;
        file.as_file()
            .sync_all()
            .map_err(|e| io_error(&target, e))?;
        file.persist(&target)
            .map_err(|e| io_error(&target, e.error))?;
        Ok(())
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut staged = StagedFile::create(path)?;
    staged.write_all(bytes).map_err(|e| io_error(path, e))?;
    staged.commit()
}

/// Writes every `(path, bytes)` pair: all are staged first, then renamed in order, so a failure
/// while staging (a full disk, say) leaves every target untouched.
pub fn write_all_atomic(files: Vec<(PathBuf, Vec<u8>)>) -> Result<(), Error> {
    commit_all(stage_all(files)?)
}

/// Stages every `(path, bytes)` pair, written and synced to disk but not yet in place: commit
/// them with [`commit_all`] (dropped, they leave nothing).
pub fn stage_all(files: Vec<(PathBuf, Vec<u8>)>) -> Result<Vec<StagedFile>, Error> {
    files
        .into_iter()
        .map(|(path, bytes)| {
            let mut file = StagedFile::create(&path)?;
            file.write_all(&bytes).map_err(|e| io_error(&path, e))?;
            file.sync()?;
            Ok(file)
        })
        .collect()
}

/// Commits staged files in order.
pub fn commit_all(staged: Vec<StagedFile>) -> Result<(), Error> {
    staged.into_iter().try_for_each(StagedFile::commit)
}

/// An output directory checked before a run: if the run fails, a directory it created (and
/// left empty) is removed again when this guard is dropped, so a failed run leaves nothing.
#[must_use = "the directory is removed again when the guard is dropped before `keep`"]
pub struct OutputDirectory {
    path: PathBuf,
    created: bool,
    kept: bool,
}

impl OutputDirectory {
    /// Creates `directory` if needed and checks that a file can be created in it.
    pub fn prepare(directory: &Path) -> Result<Self, Error> {
        let created = !directory.exists();
        prepare_output_directory(directory)?;
        Ok(Self {
            path: directory.to_path_buf(),
            created,
            kept: false,
        })
    }

    /// The run succeeded: keep the directory.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for OutputDirectory {
    fn drop(&mut self) {
        if self.created && !self.kept {
            // Only an empty directory is removed; anything inside stays.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Creates `directory` if needed and checks that a file can be created in it, before any
/// computation starts.
pub fn prepare_output_directory(directory: &Path) -> Result<(), Error> {
    if directory.exists() && !directory.is_dir() {
        return Err(Error::NotADirectory {
            path: directory.to_path_buf(),
        });
    }
    std::fs::create_dir_all(directory).map_err(|e| io_error(directory, e))?;
    tempfile::Builder::new()
        .prefix(".mhc-analyze-check-")
        .tempfile_in(directory)
        .map_err(|e| io_error(directory, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_files_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.csv");
        {
            let mut staged = StagedFile::create(&target).unwrap();
            staged.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&target, b"done").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"done");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.png"));
        let files = || vec![(a.clone(), b"aa".to_vec()), (b.clone(), b"bbb".to_vec())];
        // Staged (synced) but dropped: nothing, not even temporaries.
        drop(stage_all(files()).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let staged = stage_all(files()).unwrap();
        assert!(!a.exists() && !b.exists());
        commit_all(staged).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"aa");
        assert_eq!(std::fs::read(&b).unwrap(), b"bbb");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
