//! The output file: checked before recording starts, written to a temporary
//! file in the same directory and renamed into place, so no reader ever sees
//! a half-written file and an interrupted run leaves nothing behind.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::NamedTempFile;

pub struct OutputFile {
    path: PathBuf,
    tmp: NamedTempFile,
}

impl OutputFile {
    /// Validates `path` and creates the temporary file next to it. Fails if
    /// the directory is missing or unwritable, if `path` is a directory, or if
    /// it is a symlink while running as root (pystrobe would otherwise write
    /// wherever an unprivileged user pointed it).
    pub fn create(path: &Path) -> Result<OutputFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bail!("output directory {} does not exist", dir.display());
        }
        if let Ok(meta) = fs::symlink_metadata(path) {
            if meta.file_type().is_symlink() && is_root() {
                bail!(
                    "refusing to write {}: it is a symlink and pystrobe runs as root",
                    path.display()
                );
            }
            if meta.is_dir() {
                bail!("output path {} is a directory", path.display());
            }
        }
        // NamedTempFile opens with O_CREAT|O_EXCL and a random name: it never
        // follows an existing link.
        let tmp = tempfile::Builder::new()
            .prefix(".pystrobe-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot write to output directory {}", dir.display()))?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the contents with `fill` and renames the file into place,
    /// owned by `owner` (uid, gid) when given: the user who ran sudo.
    pub fn commit(
        self,
        mode: u32,
        owner: Option<(u32, u32)>,
        fill: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        {
            let mut w = BufWriter::new(self.tmp.as_file());
            fill(&mut w)?;
            w.flush()
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        self.tmp
            .as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .ok();
        if let Some((uid, gid)) = owner {
            // On the open descriptor, before the rename: never a path that
            // could be swapped for a link meanwhile.
            std::os::unix::fs::fchown(self.tmp.as_file(), Some(uid), Some(gid))
                .with_context(|| format!("giving {} to uid {uid}", self.path.display()))?;
        }
        self.tmp
            .persist(&self.path)
            .with_context(|| format!("moving the output into place at {}", self.path.display()))?;
        Ok(())
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
