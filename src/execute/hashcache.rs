//! The SHA-256 of a build context's files, remembered between runs (as git's index remembers
//! them), so that deciding "unchanged" for a large context costs a `stat` per file instead of
//! reading every byte. An entry is used only when the file's size, modification time, change
//! time (both in nanoseconds), inode and device are all the same as when it was read. The
//! change time cannot be set back by a user (`touch` sets it to now), so a content change goes
//! unnoticed only if the clock itself was turned back. A file changed within the last
//! [`RACY`] of a run is not remembered (a write in the same clock tick would keep its
//! times): it is read again next time. The cache is one JSON file per context directory under
//! `$XDG_CACHE_HOME/dstart/contexts/` (else `~/.cache/…`); it holds paths, times and digests,
//! never contents. Any error reading or writing it only means reading the files. A file not
//! written for [`FORGET`] is removed.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How recent a file's times may be for its digest to be remembered.
pub const RACY: Duration = Duration::from_secs(2);

/// What a file's digest is remembered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// Whether either time is later than `now_ns` minus `window`.
    fn recent(&self, now_ns: i128, window: Duration) -> bool {
        let limit = now_ns - i128::try_from(window.as_nanos()).unwrap_or(i128::MAX);
        self.mtime_ns > limit || self.ctime_ns > limit
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    /// Hex SHA-256 of the content.
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// Relative path in the context → its digest.
    files: HashMap<String, Entry>,
}

const VERSION: u32 = 1;

/// The remembered digests of one context directory.
#[derive(Debug, Default)]
pub struct HashCache {
    path: Option<PathBuf>,
    stored: Stored,
    dirty: bool,
    window: Duration,
}

/// Where the caches live: `$XDG_CACHE_HOME/dstart/contexts`, else `~/.cache/dstart/contexts`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("dstart").join("contexts"))
}

impl HashCache {
    /// The cache of the context `context` kept in `dir` (none: nothing is remembered).
    pub fn open(dir: Option<&Path>, context: &Path) -> HashCache {
        let Some(dir) = dir else {
            return HashCache::default();
        };
        let key = Sha256::digest(context.as_os_str().as_encoded_bytes());
        let path = dir.join(format!("{}.json", &crate::text::hex(&key)[..32]));
        let stored = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
            .filter(|s| s.version == VERSION)
            .unwrap_or_default();
        HashCache {
            path: Some(path),
            stored,
            dirty: false,
            window: RACY,
        }
    }

    /// The same with another [`RACY`] window (tests).
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> HashCache {
        self.window = window;
        self
    }

    /// The remembered digest of `rel`, if its stamp is still `stamp`.
    pub fn get(&self, rel: &str, stamp: &Stamp) -> Option<[u8; 32]> {
        let entry = self.stored.files.get(rel)?;
        if entry.stamp != *stamp {
            return None;
        }
        let mut out = [0u8; 32];
        let bytes = (0..32)
            .map(|i| u8::from_str_radix(entry.sha256.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        out.copy_from_slice(&bytes);
        Some(out)
    }

    /// Remembers `digest` for `rel` (unless its times are too recent, see [`RACY`]).
    pub fn put(&mut self, rel: &str, stamp: Stamp, digest: &[u8; 32]) {
        if self.path.is_none() || stamp.recent(now_ns(), self.window) {
            return;
        }
        self.stored.files.insert(
            rel.to_string(),
            Entry {
                stamp,
                sha256: crate::text::hex(digest),
            },
        );
        self.dirty = true;
    }

    /// Forgets the paths not in `keep` (files that left the context).
    pub fn retain(&mut self, keep: &std::collections::HashSet<&str>) {
        let before = self.stored.files.len();
        self.stored.files.retain(|k, _| keep.contains(k.as_str()));
        self.dirty |= self.stored.files.len() != before;
    }

    /// Writes the cache when it changed (a whole new file, renamed into place); errors are
    /// ignored: the next run reads the files again.
    pub fn save(mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        if !self.dirty {
            return;
        }
        self.stored.version = VERSION;
        let Some(dir) = path.parent() else {
            return;
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            serde_json::to_writer(std::io::BufWriter::new(tmp.as_file()), &self.stored)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            crate::output::debug(format!(
                "Not remembering the build context's digests in {}: {e}",
                path.display()
            ));
        }
        prune(dir, FORGET);
    }
}

/// How long the digests of a context that no run changed are kept.
pub const FORGET: Duration = Duration::from_secs(30 * 24 * 3600);

/// Removes the cache files in `dir` not written for `age` (contexts gone, or unchanged for so
/// long that reading them once more costs nothing worth keeping a file for).
fn prune(dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|e| e > age);
        if old && path.extension().is_some_and(|e| e == "json") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// Writes `text` into `path` and sets its modification time back to what it was (what a
/// cache keyed by size and mtime alone would miss).
#[cfg(test)]
pub fn rewrite_keeping_mtime(path: &Path, text: &str) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(path: &Path) -> Stamp {
        Stamp::of(&std::fs::symlink_metadata(path).unwrap())
    }

    #[test]
    fn a_digest_is_used_only_while_the_stamp_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        let file = ctx.join("a");
        std::fs::write(&file, "one").unwrap();
        let cache_dir = tmp.path().join("cache");
        let digest = [7u8; 32];

        let mut c = HashCache::open(Some(&cache_dir), &ctx).with_window(Duration::ZERO);
        let s = stamp(&file);
        assert_eq!(c.get("a", &s), None);
        c.put("a", s, &digest);
        c.save();
        let c = HashCache::open(Some(&cache_dir), &ctx);
        assert_eq!(c.get("a", &s), Some(digest));

        // Same size, mtime set back: the change time still moved, the digest is not used.
        std::thread::sleep(Duration::from_millis(20));
        rewrite_keeping_mtime(&file, "two");
        let now = stamp(&file);
        assert_eq!(now.size, s.size);
        assert_eq!(now.mtime_ns, s.mtime_ns);
        assert_eq!(c.get("a", &now), None);
    }

    #[test]
    fn old_cache_files_are_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("old.json");
        let new = tmp.path().join("new.json");
        let other = tmp.path().join("other.txt");
        for p in [&old, &new, &other] {
            std::fs::write(p, "{}").unwrap();
        }
        let month_ago = std::time::SystemTime::now() - FORGET - Duration::from_secs(60);
        for p in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(month_ago)
                .unwrap();
        }
        prune(tmp.path(), FORGET);
        assert!(!old.exists() && new.exists() && other.exists());
    }

    #[test]
    fn recent_files_and_no_directory_remember_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a");
        std::fs::write(&file, "one").unwrap();
        let s = stamp(&file);
        let mut c = HashCache::open(Some(&tmp.path().join("cache")), tmp.path());
        c.put("a", s, &[1; 32]);
        assert_eq!(c.get("a", &s), None, "written just now: racy");
        let mut none = HashCache::open(None, tmp.path()).with_window(Duration::ZERO);
        none.put("a", s, &[1; 32]);
        assert_eq!(none.get("a", &s), None);
        // A broken cache file is an empty cache.
        let dir = tmp.path().join("broken");
        std::fs::create_dir(&dir).unwrap();
        let c = HashCache::open(Some(&dir), tmp.path());
        let path = c.path.clone().unwrap();
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(HashCache::open(Some(&dir), tmp.path()).get("a", &s), None);
    }
}
