//! Archives on the host: their names, checksum files, the link to the newest archive, pruning,
//! stale temporary files and choosing the archive a restore reads. Writing a new one without
//! ever leaving a partial file under a final name is [`super::pending`].

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::unit::order::Compression;

use super::pending::temp_name;
pub use super::pending::{Pending, Staged, WRITE_BACK, commit_archive, start_write_back};

/// Every compression, in the order restore looks for archives.
pub const ALL_COMPRESSIONS: [Compression; 3] =
    [Compression::Gzip, Compression::Zstd, Compression::None];

pub(super) const TEMP_MARK: &str = ".dstart-tmp-";

/// `yyyymmddTHHMMSSZ` (UTC), the timestamp of archive names.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// How an archive file is made: its compression, and whether it is age-encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    pub compression: Compression,
    pub encrypted: bool,
}

impl Format {
    pub fn plain(compression: Compression) -> Format {
        Format {
            compression,
            encrypted: false,
        }
    }

    /// `tar.gz`, `tar.zst`, `tar`, each with `.age` when encrypted.
    pub fn extension(self) -> String {
        let ext = self.compression.extension();
        if self.encrypted {
            format!("{ext}.age")
        } else {
            ext.to_string()
        }
    }
}

/// Every format, in the order restore looks for archives.
pub const ALL_FORMATS: [Format; 6] = [
    Format {
        compression: Compression::Gzip,
        encrypted: false,
    },
    Format {
        compression: Compression::Zstd,
        encrypted: false,
    },
    Format {
        compression: Compression::None,
        encrypted: false,
    },
    Format {
        compression: Compression::Gzip,
        encrypted: true,
    },
    Format {
        compression: Compression::Zstd,
        encrypted: true,
    },
    Format {
        compression: Compression::None,
        encrypted: true,
    },
];

/// `<name>.<ext>`.
pub fn fixed_name(name: &str, format: impl Into<Format>) -> String {
    format!("{name}.{}", format.into().extension())
}

/// `<name>-<stamp>.<ext>`.
pub fn stamped_name(name: &str, stamp: &str, format: impl Into<Format>) -> String {
    format!("{name}-{stamp}.{}", format.into().extension())
}

impl From<Compression> for Format {
    fn from(c: Compression) -> Format {
        Format::plain(c)
    }
}

/// The time of a stamp in an archive name.
pub fn parse_stamp(stamp: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()
}

/// The checksum file of an archive: `<archive>.sha256`.
pub fn checksum_path(archive: &Path) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// An archive of a name found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub file_name: String,
    /// The timestamp of a timestamped archive.
    pub stamp: Option<String>,
    pub format: Format,
    /// A fixed name that is a symlink (to the newest timestamped archive).
    pub link: bool,
}

/// The archives called `name` in `dir`: timestamped ones (any format), and fixed-name ones that
/// are files (a fixed name that is a link points at a timestamped one).
pub fn list(dir: &Path, name: &str) -> io::Result<Vec<Found>> {
    let mut found = list_all(dir, name)?;
    found.retain(|f| !f.link);
    Ok(found)
}

/// [`list`], with the fixed names that are links.
pub fn list_all(dir: &Path, name: &str) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        for format in ALL_FORMATS {
            let Some(base) = file_name.strip_suffix(&format!(".{}", format.extension())) else {
                continue;
            };
            if base == name {
                found.push(Found {
                    path: entry.path(),
                    file_name: file_name.clone(),
                    stamp: None,
                    format,
                    link: entry.file_type()?.is_symlink(),
                });
            } else if let Some(s) = base
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('-'))
                .filter(|s| is_stamp(s))
            {
                found.push(Found {
                    path: entry.path(),
                    file_name: file_name.clone(),
                    stamp: Some(s.to_string()),
                    format,
                    link: false,
                });
            }
            break;
        }
    }
    found.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(found)
}

/// The archive of `name` in `dir` a restore takes: the newest timestamp in a file name
/// (`<name>-<stamp>.<ext>`, any compression), which the link `<name>.<ext>` points at anyway;
/// only when there is none, the fixed-name file `<name>.<ext>`. Ties (two compressions in one
/// second, fixed names in two compressions) go to the file modified last.
pub fn newest(dir: &Path, name: &str) -> io::Result<Option<Found>> {
    let mut best: Option<(bool, Option<String>, std::time::SystemTime, Found)> = None;
    for f in list(dir, name)? {
        let modified = fs::metadata(&f.path)?.modified()?;
        let key = (f.stamp.is_some(), f.stamp.clone(), modified);
        if best
            .as_ref()
            .is_none_or(|(s, t, m, _)| key > (*s, t.clone(), *m))
        {
            best = Some((key.0, key.1, key.2, f));
        }
    }
    Ok(best.map(|(_, _, _, f)| f))
}

/// The fixed names `<name>.tar.gz`, `<name>.tar.zst`, `<name>.tar` that exist in `dir` (as
/// files or links).
pub fn fixed_archives(dir: &Path, name: &str) -> Vec<String> {
    ALL_FORMATS
        .iter()
        .map(|f| fixed_name(name, *f))
        .filter(|f| fs::symlink_metadata(dir.join(f)).is_ok())
        .collect()
}

/// Removes the fixed-name archives of `name` other than `kept` (a file name), with their
/// checksum files. Returns the removed archive names.
pub fn remove_fixed_except(dir: &Path, name: &str, kept: &str) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for other in fixed_archives(dir, name) {
        if other != kept {
            let path = dir.join(&other);
            remove_if_exists(&checksum_path(&path))?;
            remove_if_exists(&path)?;
            removed.push(other);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Removes the archives `files` (file names in `dir`) with their checksum files; returns those
/// that were there.
pub fn remove_archives(dir: &Path, files: &[String]) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for file in files {
        let path = dir.join(file);
        remove_if_exists(&checksum_path(&path))?;
        if fs::symlink_metadata(&path).is_ok() {
            remove_if_exists(&path)?;
            removed.push(file.clone());
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes temporary files that dstart processes which no longer run left in `dir`.
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(pid) = file_name
            .rsplit_once(TEMP_MARK)
            .filter(|(head, _)| head.starts_with('.'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if i64::from(pid) != i64::from(std::process::id()) && !process_alive(pid) {
            remove_if_exists(&entry.path())?;
            removed.push(file_name);
        }
    }
    Ok(removed)
}

fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != Errno::ESRCH,
    }
}

/// fsyncs a directory, so that a rename or removal in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (mode 0700) with its parents if it does not exist.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}
/// The checksum a `.sha256` file records (its first word), if the file exists.
pub fn read_checksum(archive: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(checksum_path(archive)) {
        Ok(text) => Ok(text.split_whitespace().next().map(str::to_ascii_lowercase)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Points `<dir>/<link_name>` (and its `.sha256`) at `target` (a file name in `dir`),
/// atomically. A regular file of that name is an archive of its own and stays: returns false.
pub fn point_link(dir: &Path, link_name: &str, target: &str) -> io::Result<bool> {
    for (link, to) in [
        (link_name.to_string(), target.to_string()),
        (format!("{link_name}.sha256"), format!("{target}.sha256")),
    ] {
        let path = dir.join(&link);
        match fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_symlink() => return Ok(false),
            _ => {}
        }
        let temp = dir.join(temp_name(&link));
        let _ = fs::remove_file(&temp);
        std::os::unix::fs::symlink(&to, &temp)?;
        if let Err(e) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
    }
    sync_dir(dir)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), name).unwrap();
    }

    #[test]
    fn stamps_and_names() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(stamp(at), "20261122T030405Z");
        assert!(is_stamp("20261122T030405Z"));
        assert!(!is_stamp("20261122T03040Z5"));
        assert_eq!(
            stamped_name("web", "20261122T030405Z", Compression::Zstd),
            "web-20261122T030405Z.tar.zst"
        );
        assert_eq!(fixed_name("web", Compression::None), "web.tar");
    }

    #[test]
    fn lists_only_archives_of_exactly_that_name() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "web-20260101T000000Z.tar.gz",
            "web-20260102T000000Z.tar.zst",
            "web-data-20260103T000000Z.tar.gz",
            "web.tar",
            "web-20260101T000000Z.tar.gz.sha256",
            "web-latest.tar.gz",
            "other.tar.gz",
        ] {
            touch(d.path(), n);
        }
        let names: Vec<String> = list(d.path(), "web")
            .unwrap()
            .into_iter()
            .map(|f| f.file_name)
            .collect();
        assert_eq!(
            names,
            [
                "web-20260101T000000Z.tar.gz",
                "web-20260102T000000Z.tar.zst",
                "web.tar"
            ]
        );
        let removed = remove_archives(
            d.path(),
            &["web-20260101T000000Z.tar.gz".into(), "gone.tar".into()],
        )
        .unwrap();
        assert_eq!(removed, ["web-20260101T000000Z.tar.gz"]);
        assert!(!d.path().join("web-20260101T000000Z.tar.gz.sha256").exists());
        assert!(d.path().join("web-data-20260103T000000Z.tar.gz").exists());
        assert!(d.path().join("web.tar").exists());
    }

    #[test]
    fn the_newest_timestamp_wins_whatever_the_file_times() {
        let d = tempfile::tempdir().unwrap();
        let at = |name: &str, secs: u64| {
            touch(d.path(), name);
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            File::options()
                .write(true)
                .open(d.path().join(name))
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        let newest_name = || newest(d.path(), "web").unwrap().map(|f| f.file_name);
        assert_eq!(newest_name(), None);
        at("web.tar.gz", 1_000);
        assert_eq!(newest_name().as_deref(), Some("web.tar.gz"));
        at("web.tar.zst", 2_000);
        assert_eq!(
            newest_name().as_deref(),
            Some("web.tar.zst"),
            "by file time"
        );
        // A timestamp in the name beats any fixed name, and the newest timestamp wins even
        // when its file is older (copied back from elsewhere).
        at("web-20260102T000000Z.tar.gz", 500);
        at("web-20260101T000000Z.tar.zst", 3_000);
        assert_eq!(
            newest_name().as_deref(),
            Some("web-20260102T000000Z.tar.gz")
        );
        at("web-20260102T000000Z.tar", 600);
        assert_eq!(
            newest_name().as_deref(),
            Some("web-20260102T000000Z.tar"),
            "the same second: the file written last"
        );
    }

    #[test]
    fn fixed_names_in_every_compression() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "web.tar",
            "web.tar.zst",
            "web.tar.zst.sha256",
            "web-data.tar.gz",
        ] {
            touch(d.path(), n);
        }
        assert_eq!(fixed_archives(d.path(), "web"), ["web.tar.zst", "web.tar"]);
        assert!(fixed_archives(d.path(), "we").is_empty());
        let removed = remove_fixed_except(d.path(), "web", "web.tar").unwrap();
        assert_eq!(removed, ["web.tar.zst"]);
        assert_eq!(fixed_archives(d.path(), "web"), ["web.tar"]);
        assert!(!d.path().join("web.tar.zst.sha256").exists());
        assert!(d.path().join("web-data.tar.gz").exists());
    }
    #[test]
    fn stale_temporaries_of_dead_processes_go() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), ".web.tar.gz.dstart-tmp-999999999");
        let mine = format!(".web.tar.gz.dstart-tmp-{}", std::process::id());
        touch(d.path(), &mine);
        touch(d.path(), "keep.dstart-tmp-1");
        let removed = remove_stale_temporaries(d.path()).unwrap();
        assert_eq!(removed, [".web.tar.gz.dstart-tmp-999999999"]);
        assert!(d.path().join(mine).exists());
        assert!(d.path().join("keep.dstart-tmp-1").exists());
    }
}
