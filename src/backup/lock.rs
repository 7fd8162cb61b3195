//! One lock per unit and backup directory (`<dir>/.dstart-<unit>.lock`, an `flock`): a second
//! run (cron firing twice, a restore during the nightly backup) waits for the first, up to a
//! timeout, and then fails naming the holder. The kernel releases the lock when the holder
//! exits, however it ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// A held lock; dropping it releases it (and removes its file, for a lock taken with
/// `remove: true`).
#[derive(Debug)]
pub struct DirLock {
    _file: Flock<File>,
    pub path: PathBuf,
    remove: bool,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Removed while still held: whoever waits on the old file notices (its inode is no
        // longer the path's) and takes a new one.
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    Io(io::Error),
    /// Still held by another run after the timeout; what it wrote about itself.
    Busy {
        holder: String,
        waited: Duration,
    },
    Interrupted,
}

/// Takes the lock at `path`, polling until `timeout`; `interrupted` ends the wait early.
/// `about` (what this run is) is written into the file for whoever waits next.
pub async fn acquire(
    path: &Path,
    about: &str,
    timeout: Duration,
    interrupted: impl Fn() -> bool,
) -> Result<DirLock, LockError> {
    acquire_file(path, about, timeout, interrupted, false).await
}

/// [`acquire`] for a lock whose file goes when it is released (one of many, that would
/// otherwise pile up in the directory).
pub async fn acquire_removed(
    path: &Path,
    about: &str,
    timeout: Duration,
    interrupted: impl Fn() -> bool,
) -> Result<DirLock, LockError> {
    acquire_file(path, about, timeout, interrupted, true).await
}

async fn acquire_file(
    path: &Path,
    about: &str,
    timeout: Duration,
    interrupted: impl Fn() -> bool,
    remove: bool,
) -> Result<DirLock, LockError> {
    use std::os::unix::fs::MetadataExt;
    let started = Instant::now();
    let mut said_waiting = false;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(LockError::Io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut held) => {
                // The file may have been removed by the holder that released it: a lock on
                // it would lock nothing.
                let mine = held.metadata().map_err(LockError::Io)?;
                let same = std::fs::metadata(path)
                    .is_ok_and(|m| m.ino() == mine.ino() && m.dev() == mine.dev());
                if !same {
                    continue;
                }
                held.set_len(0).map_err(LockError::Io)?;
                held.rewind().map_err(LockError::Io)?;
                writeln!(held, "{about}").map_err(LockError::Io)?;
                return Ok(DirLock {
                    _file: held,
                    path: path.to_path_buf(),
                    remove,
                });
            }
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let waited = started.elapsed();
                if waited >= timeout {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(LockError::Busy {
                        holder: holder.trim().to_string(),
                        waited,
                    });
                }
                if !said_waiting {
                    said_waiting = true;
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    crate::output::info(format!(
                        "Waiting for the lock {} (held by {}), for up to {} s",
                        path.display(),
                        holder.trim(),
                        timeout.as_secs()
                    ));
                }
            }
            Err((_, e)) => return Err(LockError::Io(io::Error::from(e))),
        }
        if interrupted() {
            return Err(LockError::Interrupted);
        }
        let left = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_millis(200))).await;
    }
}

/// What a run writes into the lock file about itself.
pub fn describe_self(command: &str) -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "pid {} on {host}, `dstart run {command}`, since {}",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_waits_then_fails_naming_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".dstart-web.lock");
        let first = acquire(&path, "pid 1 first", Duration::from_secs(1), || false)
            .await
            .unwrap();
        let started = Instant::now();
        match acquire(&path, "second", Duration::from_millis(500), || false).await {
            Err(LockError::Busy { holder, .. }) => assert_eq!(holder, "pid 1 first"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(500));
        drop(first);
        acquire(&path, "third", Duration::from_secs(1), || false)
            .await
            .unwrap();
    }
}
