//! The output directory: files are written under hidden temporary names and renamed into place
//! only when the run has succeeded; `manifest.json` is written last. An interrupted run therefore
//! never leaves an output that looks complete, and a failed one removes its temporary files.

use super::checksum::{self, RunningSum};
use super::manifest::FileInfo;
use crate::setting::{Setting, SettingError};
use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const MANIFEST: &str = "manifest.json";
/// The lock file of an output directory (hidden: it does not make a directory non-empty).
pub const LOCK: &str = ".utk.lock";

/// A file being written into the output directory, buffered.
pub type Staged = BufWriter<StagedFile>;

/// Bytes written between two requests to the kernel to start writing them to disk.
const WRITEBACK_EVERY: u64 = 16 << 20;

/// An output file that asks the kernel to start writing its data to disk as it goes (Linux), so
/// the `fsync` that makes the output durable at the end has little left to wait for, and a long
/// run does not fill the page cache with dirty pages.
pub struct StagedFile {
    file: File,
    /// The final path, named in write errors.
    name: PathBuf,
    written: u64,
    requested: u64,
    /// Where the next write goes, and the checksum of every byte written (shared with the
    /// [`OutputDir`], which records it in the manifest).
    pos: u64,
    sum: Arc<Mutex<RunningSum>>,
}

impl StagedFile {
    pub fn metadata(&self) -> std::io::Result<fs::Metadata> {
        self.file.metadata()
    }

    /// Appends the rest of `src` (from its current position): `utk merge`. The bytes pass
    /// through this process (not the kernel's `copy_file_range`) so that the checksum sees them;
    /// CRC-32C in hardware keeps that close to the speed of a copy. Flush the buffer in front of
    /// this file first.
    pub fn append_rest_of(&mut self, src: &mut File) -> std::io::Result<u64> {
        std::io::copy(&mut std::io::BufReader::with_capacity(1 << 20, src), self)
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: `sync_file_range` only reads its integer arguments; the descriptor belongs to
        // `self.file`, open for the whole call. SYNC_FILE_RANGE_WRITE starts writeback of dirty
        // pages in the range without waiting for it. A failure only means the final fsync has
        // more to do, so the result is ignored.
        unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                self.requested as libc::off64_t,
                (self.written - self.requested) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.requested = self.written;
    }

    #[cfg(not(target_os = "linux"))]
    fn start_writeback(&mut self) {}
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A full disk or a file-size limit shows here: say which file.
        let n = self.file.write(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot write {}: {e}", self.name.display()),
            )
        })?;
        self.record(&buf[..n])?;
        self.written += n as u64;
        if self.written - self.requested >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl std::io::Seek for StagedFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = self.file.seek(pos)?;
        Ok(self.pos)
    }
}

impl StagedFile {
    /// Feeds bytes just written at `self.pos` to the checksum.
    fn record(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut sum = self.sum.lock().unwrap_or_else(|e| e.into_inner());
        sum.write_at(self.pos, bytes)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", self.name.display())))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// A temporary file in the output directory, removed on drop (see [`OutputDir::scratch`]).
pub struct Scratch {
    pub file: File,
    pub path: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

pub struct OutputDir {
    root: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
    /// The checksum of each file created, by name.
    sums: Vec<(String, Arc<Mutex<RunningSum>>)>,
    committed: bool,
    /// Held for the whole run: one writer per directory (see [`lock`]); removed when done.
    lock: (PathBuf, File),
}

fn partial_name(name: &str) -> String {
    format!(".{name}.partial")
}

impl OutputDir {
    /// Creates `root` (or reuses it when empty). A directory that already holds files is refused
    /// unless `force`, which removes the previous manifest first and then the files it lists (see
    /// [`remove_previous`]).
    pub fn prepare(root: &Path, force: bool, names: &[&str]) -> Result<OutputDir> {
        let root = &resolve(root)?;
        if root.exists() && !root.is_dir() {
            let what = format!("{} exists and is not a directory", root.display());
            return Err(SettingError::about(Setting::Output, what).into());
        }
        fs::create_dir_all(root)
            .with_context(|| format!("cannot create the output directory {}", root.display()))?;
        let lock = (root.join(LOCK), lock(&root.join(LOCK), root)?);
        let existing: Vec<String> = fs::read_dir(root)
            .with_context(|| format!("cannot list the output directory {}", root.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        if !existing.is_empty() {
            if !force {
                let what = if existing.iter().any(|n| n == MANIFEST) {
                    "already holds a utk output"
                } else {
                    "is not empty"
                };
                return Err(SettingError::about(
                    Setting::Output,
                    format!(
                        "{} {what}; choose another directory or pass ",
                        root.display()
                    ),
                )
                .setting(Setting::Force)
                .text(" to overwrite")
                .into());
            }
            remove_previous(root, names)?;
        }
        Ok(OutputDir {
            root: root.to_path_buf(),
            staged: Vec::new(),
            sums: Vec::new(),
            committed: false,
            lock,
        })
    }

    /// Like [`OutputDir::prepare`] for outputs that share a directory with other files (`utk
    /// tokenize`'s `PREFIX.*`): only `names` are checked, refused when present unless `force`.
    pub fn prepare_files(root: &Path, force: bool, names: &[&str]) -> Result<OutputDir> {
        let root = &resolve(root)?;
        fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        let first = root.join(names.first().copied().unwrap_or("output"));
        let path = root.join(format!(".{}.lock", file_name(&first)));
        let lock = (path.clone(), lock(&path, &first)?);
        for name in names {
            let path = root.join(name);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if !force {
                return Err(SettingError::new()
                    .text(format!(
                        "{} exists; choose another output prefix or pass ",
                        path.display()
                    ))
                    .setting(Setting::Force)
                    .text(" to overwrite")
                    .into());
            }
            if meta.is_dir() {
                bail!(
                    "{} is a directory; choose another output prefix",
                    path.display()
                );
            }
            // A file or a symlink: the entry goes, whatever a symlink points to stays.
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(OutputDir {
            root: root.to_path_buf(),
            staged: Vec::new(),
            sums: Vec::new(),
            committed: false,
            lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch file for the run's own use (read back, never part of the output): created like
    /// a staged file under a hidden temporary name, removed when the [`Scratch`] is dropped.
    pub fn scratch(&self, name: &str) -> Result<Scratch> {
        let path = self.root.join(partial_name(name));
        let file = create_new(&path)?;
        Ok(Scratch { file, path })
    }

    /// Creates `name` under its temporary name.
    pub fn create(&mut self, name: &str) -> Result<Staged> {
        let tmp = self.root.join(partial_name(name));
        let file = create_new(&tmp)?;
        self.staged.push((tmp, self.root.join(name)));
        let sum = Arc::new(Mutex::new(RunningSum::default()));
        self.sums.push((name.to_string(), sum.clone()));
        // Small writes are gathered; a window's tokens (512 KiB at 128K uint32) are larger than
        // the buffer and go to the file directly, without a copy.
        let file = StagedFile {
            file,
            name: self.root.join(name),
            written: 0,
            requested: 0,
            pos: 0,
            sum,
        };
        Ok(BufWriter::with_capacity(256 << 10, file))
    }

    /// Records in `files` the checksum of each one this directory wrote (see [`checksum`]). Each
    /// must be complete, its buffer flushed: its recorded size must be what was written.
    pub fn record_checksums(&self, files: &mut [FileInfo]) -> Result<()> {
        for f in files {
            let Some((_, sum)) = self.sums.iter().find(|(n, _)| *n == f.path) else {
                continue;
            };
            let sum = sum.lock().unwrap_or_else(|e| e.into_inner());
            if sum.len() != f.bytes {
                bail!(
                    "internal error: {} is listed with {} bytes but {} were written",
                    f.path,
                    f.bytes,
                    sum.len()
                );
            }
            f.crc32c = Some(checksum::hex(sum.value()));
        }
        Ok(())
    }

    /// Renames every staged file into place, then writes the manifest (also via a temporary name).
    pub fn commit(self, manifest: &[u8]) -> Result<()> {
        self.commit_as(MANIFEST, manifest)
    }

    /// [`OutputDir::commit`] with the manifest under another name.
    pub fn commit_as(mut self, manifest_name: &str, manifest: &[u8]) -> Result<()> {
        // Every file durable before any is renamed; the syncs run side by side.
        std::thread::scope(|scope| {
            let syncs: Vec<_> = self
                .staged
                .iter()
                .map(|(tmp, _)| {
                    scope.spawn(move || {
                        File::open(tmp)
                            .and_then(|f| f.sync_all())
                            .with_context(|| format!("cannot sync {}", tmp.display()))
                    })
                })
                .collect();
            syncs.into_iter().try_for_each(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a sync thread panicked"))?
            })
        })?;
        for (tmp, fin) in &self.staged {
            fs::rename(tmp, fin)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), fin.display()))?;
        }
        let tmp = self.root.join(partial_name(manifest_name));
        self.staged
            .push((tmp.clone(), self.root.join(manifest_name)));
        let mut f = create_new(&tmp)?;
        let fin = self.root.join(manifest_name);
        f.write_all(manifest)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::rename(&tmp, &fin))
            .with_context(|| format!("cannot write {}", fin.display()))?;
        self.committed = true;
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Takes the exclusive lock of `path` for this process, writing its id there: a second run into
/// the same output is refused at once, naming the holder, before it removes or writes anything.
/// The lock is the kernel's (`flock`): it goes with the process, so a killed run leaves no lock
/// behind (its file stays, unlocked, and the next run takes it).
fn lock(path: &Path, what: &Path) -> Result<File> {
    loop {
        let mut file = open_lock_file(path)?;
        if !try_lock(&file, path, what)? {
            continue;
        }
        file.set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        return Ok(file);
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// Locks `file` (opened at `path`); false when the file was removed or replaced meanwhile by a
/// run that finished (the lock is then on a file nobody else will find: try again).
#[cfg(unix)]
fn try_lock(file: &File, path: &Path, what: &Path) -> Result<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    // SAFETY: `flock` only reads its integer arguments; the descriptor belongs to `file`, open
    // for the whole call.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let holder = fs::read_to_string(path).unwrap_or_default();
            bail!(
                "{} is being written by another utk run (process {}); wait for it to finish or \
                 choose another output",
                what.display(),
                holder.trim()
            );
        }
        return Err(err).with_context(|| format!("cannot lock {}", path.display()));
    }
    let ours = file.metadata()?.ino();
    Ok(fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ours))
}

#[cfg(not(unix))]
fn try_lock(_file: &File, _path: &Path, _what: &Path) -> Result<bool> {
    Ok(true)
}

/// The output directory as written to: a symlink is resolved once, here, so that what it points
/// to cannot change under a running job (the summary reports the resolved path).
fn resolve(root: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(root) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(root)
            .with_context(|| format!("{} is a symlink that cannot be resolved", root.display())),
        _ => Ok(root.to_path_buf()),
    }
}

/// `--force`: removes the previous manifest first (from then on the directory no longer claims
/// to be complete), then the files it lists that are among `names` (the files this run may
/// write) and are regular files directly in `root`. Nothing else is touched: no symlink is
/// followed, no file the manifest does not list, nothing outside the directory.
fn remove_previous(root: &Path, names: &[&str]) -> Result<()> {
    let manifest = root.join(MANIFEST);
    let listed = previous_files(&manifest);
    remove_regular(&manifest)?;
    for name in listed.iter().filter(|n| names.contains(&n.as_str())) {
        remove_regular(&root.join(name))?;
    }
    Ok(())
}

/// The `files[].path` of a previous manifest (none if it is not a regular, readable manifest).
fn previous_files(manifest: &Path) -> Vec<String> {
    let regular = fs::symlink_metadata(manifest).is_ok_and(|m| m.file_type().is_file());
    let json: Option<serde_json::Value> = regular
        .then(|| fs::read(manifest).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(files) = json.as_ref().and_then(|j| j["files"].as_array()) else {
        return Vec::new();
    };
    files
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect()
}

/// Removes `path` if it is a regular file (not a symlink, not a directory).
fn remove_regular(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {
            fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Creates `path` as a new file. A stale entry of that name (a temporary file left by a killed
/// run, or a planted symlink) is removed first — the entry, never what a symlink points to —
/// and the file is then created exclusively without following symlinks, so a symlink planted
/// in between makes the creation fail instead of writing through it.
fn create_new(path: &Path) -> Result<File> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => bail!("{} is a directory; remove it", path.display()),
        Ok(_) => fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale {}", path.display()))?,
        Err(_) => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.staged {
                let _ = fs::remove_file(tmp);
            }
        }
        // Removed while still held (the file closes after this), so no run waits on it.
        let _ = fs::remove_file(&self.lock.0);
    }
}
