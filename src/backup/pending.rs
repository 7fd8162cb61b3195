//! A new file in the backup directory that gets its final name only once it is whole and on
//! disk: [`Pending`] (unnamed `O_TMPFILE`, else `.<name>.dstart-tmp-<pid>`), [`Staged`] (synced
//! under a temporary name) and [`commit_archive`] (archive and `.sha256` renamed into place).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::store::{TEMP_MARK, sync_dir};

/// A file being written in a directory, invisible (or under a temporary name) until
/// [`Pending::commit`]. Dropping it without committing leaves nothing behind.
#[derive(Debug)]
pub struct Pending {
    file: File,
    dir: PathBuf,
    /// The temporary name, when the file system has no unnamed files.
    temp: Option<PathBuf>,
    /// Bytes written, and how many of them were handed to the kernel's write-back.
    written: u64,
    written_back: u64,
}

/// Bytes after which a pending file's new data is handed to write-back.
pub const WRITE_BACK: u64 = 8 << 20;

/// Starts writing `len` bytes of `file` from `from` to disk, without waiting, and lets the page
/// cache drop them once written: the fsync before the rename then has little left to do, and a
/// nightly backup does not push the services' files out of the cache. (`POSIX_FADV_DONTNEED`
/// starts write-back of dirty pages on Linux.) Only a hint: a file system that does not take it
/// still gets the fsync.
pub fn start_write_back(file: &File, from: u64, len: u64) {
    if let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) {
        let _ = nix::fcntl::posix_fadvise(
            file,
            from,
            len,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
}

impl Pending {
    /// A new file (mode 0600) that will be called `final_name` in `dir`.
    pub fn create(dir: &Path, final_name: &str) -> io::Result<Pending> {
        use nix::fcntl::OFlag;
        use nix::sys::stat::Mode;
        let unnamed = nix::fcntl::open(
            dir,
            OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        );
        if let Ok(fd) = unnamed {
            return Ok(Pending {
                file: File::from(fd),
                dir: dir.to_path_buf(),
                temp: None,
                written: 0,
                written_back: 0,
            });
        }
        Self::create_named(dir, final_name)
    }

    /// A new file (mode 0600) under a temporary name in `dir`, for a writer that needs a path
    /// (a helper container's `tar`). Dropped uncommitted, it is removed; a killed run leaves
    /// it behind for the next run to remove.
    pub fn create_named(dir: &Path, final_name: &str) -> io::Result<Pending> {
        let temp = dir.join(temp_name(final_name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        Ok(Pending {
            file,
            dir: dir.to_path_buf(),
            temp: Some(temp),
            written: 0,
            written_back: 0,
        })
    }

    /// The temporary name of a file made by [`Pending::create_named`].
    pub fn temp_path(&self) -> Option<&Path> {
        self.temp.as_deref()
    }

    fn write_back(&mut self) {
        if self.written - self.written_back < WRITE_BACK {
            return;
        }
        start_write_back(
            &self.file,
            self.written_back,
            self.written - self.written_back,
        );
        self.written_back = self.written;
    }

    /// Syncs the file to disk and gives it its name (replacing a file of that name atomically).
    pub fn commit(self, final_name: &str) -> io::Result<PathBuf> {
        let dir = self.dir.clone();
        let target = self.stage(final_name)?.rename()?;
        sync_dir(&dir)?;
        Ok(target)
    }

    /// Syncs the file to disk under a temporary name in its directory, for [`Staged::rename`].
    pub fn stage(mut self, final_name: &str) -> io::Result<Staged> {
        self.file.flush()?;
        self.file.sync_all()?;
        let temp = if let Some(t) = self.temp.take() {
            t
        } else {
            // The unnamed file gets a temporary name first: linkat does not replace.
            use std::os::fd::AsRawFd;
            let linked = self.dir.join(temp_name(final_name));
            let proc_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
            nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                proc_path.as_str(),
                nix::fcntl::AT_FDCWD,
                &linked,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            )
            .map_err(io::Error::from)?;
            linked
        };
        Ok(Staged {
            temp: Some(temp),
            target: self.dir.join(final_name),
        })
    }
}

/// A whole file on disk under a temporary name, waiting for [`Staged::rename`]. Dropped before
/// that, it is removed.
#[derive(Debug)]
pub struct Staged {
    temp: Option<PathBuf>,
    target: PathBuf,
}

impl Staged {
    /// Gives the file its name, replacing a file of that name atomically. The directory is not
    /// synced: the caller does that once for all its renames.
    pub fn rename(mut self) -> io::Result<PathBuf> {
        if let Some(temp) = self.temp.take() {
            if let Err(e) = fs::rename(&temp, &self.target) {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            let _ = fs::remove_file(t);
        }
    }
}

/// Puts a new archive and its `.sha256` (the format of `sha256sum`, mode 0600) into place. Both
/// are written and synced under temporary names first and then renamed one right after the
/// other, so that an archive replaced with `overwrite` and its checksum disagree only between
/// two renames. (A restore refuses a pair that disagrees.)
pub fn commit_archive(archive: Pending, final_name: &str, hex: &str) -> io::Result<PathBuf> {
    commit_pair(archive, final_name, hex).map_err(OutputError::wrap)
}

fn commit_pair(archive: Pending, final_name: &str, hex: &str) -> io::Result<PathBuf> {
    let dir = archive.dir.clone();
    let sum_name = format!("{final_name}.sha256");
    let mut sum = Pending::create(&dir, &sum_name)?;
    writeln!(sum, "{hex}  {final_name}")?;
    let sum = sum.stage(&sum_name)?;
    let path = archive.stage(final_name)?.rename()?;
    sum.rename()?;
    sync_dir(&dir)?;
    Ok(path)
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf).map_err(OutputError::wrap)?;
        self.written += n as u64;
        self.write_back();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().map_err(OutputError::wrap)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            let _ = fs::remove_file(t);
        }
    }
}

pub(super) fn temp_name(final_name: &str) -> String {
    temp_name_for(final_name, std::process::id())
}

/// `.<final name>.dstart-tmp-<pid>`: the temporary name of a file of process `pid`.
pub fn temp_name_for(final_name: &str, pid: u32) -> String {
    format!(".{final_name}{TEMP_MARK}{pid}")
}

/// An error of the file system the archive is written to (not of what is read into it): a
/// full disk is named as such, whichever stage noticed it.
#[derive(Debug)]
pub struct OutputError(pub io::Error);

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl OutputError {
    /// Tags `e` as an error of the archive's file system.
    pub fn wrap(e: io::Error) -> io::Error {
        if e.get_ref()
            .is_some_and(<dyn std::error::Error + Send + Sync>::is::<OutputError>)
        {
            return e;
        }
        io::Error::new(e.kind(), OutputError(e))
    }

    /// The file-system error in `e`, if it is one.
    pub fn of(e: &io::Error) -> Option<&io::Error> {
        e.get_ref()?.downcast_ref::<OutputError>().map(|o| &o.0)
    }

    /// Whether `e` is a full file system (or quota).
    pub fn is_full(e: &io::Error) -> bool {
        let e = Self::of(e).unwrap_or(e);
        matches!(
            e.raw_os_error(),
            Some(code) if code == nix::errno::Errno::ENOSPC as i32
                || code == nix::errno::Errno::EDQUOT as i32
        ) || matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::store::{checksum_path, point_link, read_checksum};
    use std::os::unix::fs::PermissionsExt;

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), name).unwrap();
    }

    #[test]
    fn pending_files_appear_only_when_committed() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut p = Pending::create(d.path(), "a.tar").unwrap();
            p.write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        let mut p = Pending::create(d.path(), "a.tar").unwrap();
        p.write_all(b"whole").unwrap();
        let path = p.commit("a.tar").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn checksum_files_and_links() {
        let d = tempfile::tempdir().unwrap();
        let mut pending = Pending::create(d.path(), "web-20260101T000000Z.tar.gz").unwrap();
        pending.write_all(b"archive").unwrap();
        let archive = commit_archive(pending, "web-20260101T000000Z.tar.gz", "abc").unwrap();
        assert_eq!(fs::read(&archive).unwrap(), b"archive");
        assert_eq!(
            fs::metadata(checksum_path(&archive))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_to_string(checksum_path(&archive)).unwrap(),
            "abc  web-20260101T000000Z.tar.gz\n"
        );
        assert_eq!(read_checksum(&archive).unwrap().as_deref(), Some("abc"));
        assert!(point_link(d.path(), "web.tar.gz", "web-20260101T000000Z.tar.gz").unwrap());
        assert_eq!(
            fs::read_link(d.path().join("web.tar.gz")).unwrap(),
            Path::new("web-20260101T000000Z.tar.gz")
        );
        assert_eq!(
            read_checksum(&d.path().join("web.tar.gz"))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        touch(d.path(), "db.tar.gz");
        assert!(!point_link(d.path(), "db.tar.gz", "web-20260101T000000Z.tar.gz").unwrap());
        assert_eq!(fs::read(d.path().join("db.tar.gz")).unwrap(), b"db.tar.gz");
    }

    #[test]
    fn an_archive_and_its_checksum_replace_the_old_pair() {
        let d = tempfile::tempdir().unwrap();
        for (content, hex) in [("old", "111"), ("new", "222")] {
            let mut pending = Pending::create_named(d.path(), "a.tar").unwrap();
            pending.write_all(content.as_bytes()).unwrap();
            commit_archive(pending, "a.tar", hex).unwrap();
        }
        assert_eq!(fs::read(d.path().join("a.tar")).unwrap(), b"new");
        assert_eq!(
            read_checksum(&d.path().join("a.tar")).unwrap().as_deref(),
            Some("222")
        );
        let mut names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.tar", "a.tar.sha256"], "no temporary file stays");
    }
}
