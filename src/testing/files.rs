//! Copying files out of a container through the engine's archive endpoint (works on stopped
//! containers; the image needs no shell and no tar): paths, directories and globs.
//!
//! A relative pattern is relative to the container's working directory and keeps that relative
//! path in the destination; an absolute one keeps its full path. A glob (`*`, `?`, `[...]`,
//! `**`) is matched by reading the directory above its first wildcard, so keep globbed files in
//! a small directory.
//!
//! What a container under test hands over is unpacked with restore's rules (SPEC "Tests",
//! [`crate::backup::archive::check`]): no absolute paths, no `..`, no link that leaves the
//! downloaded directory, nothing below a link of the archive; and, on the host, nothing is
//! written through a link (one an earlier pattern left in the destination included) and no hard
//! link is made.

use std::path::{Component, Path, PathBuf};

use futures_util::StreamExt;
use regex::Regex;
use tokio::io::AsyncWriteExt;

use crate::engine::Engine;
use crate::execute::context::pattern_regex;

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Joins container paths (`/` separated).
fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        rel.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

/// What to download for one pattern.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    /// The container path to download.
    base: String,
    /// A regex over paths relative to `base` (globs only).
    matcher: Option<String>,
    /// Where paths are made relative to for the destination (`/` for absolute patterns).
    root: String,
}

fn request(workdir: &str, pattern: &str) -> Option<Request> {
    let workdir = if workdir.is_empty() { "/" } else { workdir };
    let absolute = pattern.starts_with('/');
    let full = join(workdir, pattern);
    let trimmed = full.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    let root = if absolute {
        "/".to_string()
    } else {
        workdir.to_string()
    };
    if !has_glob(trimmed) {
        return Some(Request {
            base: trimmed.to_string(),
            matcher: None,
            root,
        });
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    let first = parts.iter().position(|p| has_glob(p))?;
    let base = parts[..first].join("/");
    let base = if base.is_empty() {
        "/".to_string()
    } else {
        base
    };
    let rest = parts[first..].join("/");
    Some(Request {
        base,
        matcher: Some(rest),
        root,
    })
}

/// The destination of container path `path` below `dest`, or `None` if it would leave it.
fn destination(dest: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let rel = path
        .strip_prefix(root)
        .filter(|_| root != "/")
        .unwrap_or(path)
        .trim_start_matches('/');
    let rel = Path::new(rel);
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dest.join(rel))
}

/// The first element of the members of the engine's tar of `base`: its last element
/// (`/app/out` → `out`); `None` for `/`.
fn top_of(base: &str) -> Option<&str> {
    base.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
}

fn refused(text: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, text)
}

/// The first path from `dest` (exclusive) to `target` (inclusive) that is a symlink on the host.
fn link_on_the_way(dest: &Path, target: &Path) -> Option<PathBuf> {
    let rel = target.strip_prefix(dest).ok()?;
    let mut at = dest.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}

/// Unpacks the tar of `req.base` (its entries start with the base's last element) into `dest`,
/// keeping what matches; an archive that breaks restore's rules is refused whole (an error).
/// Returns how many entries were written.
fn unpack(
    tar_path: &Path,
    req: &Request,
    matcher: Option<&Regex>,
    dest: &Path,
) -> std::io::Result<usize> {
    if let Some(top) = top_of(&req.base) {
        crate::backup::archive::check(std::fs::File::open(tar_path)?, &[format!("/{top}")])
            .map_err(|r| refused(r.to_string()))?;
    }
    let file = std::fs::File::open(tar_path)?;
    let mut archive = tar::Archive::new(file);
    let parent = match req.base.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((p, _)) => p.to_string(),
    };
    let mut written = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let name = name.trim_start_matches("./");
        if name.is_empty() || name == "." {
            continue;
        }
        let (full, below_base) = if req.base == "/" {
            (format!("/{name}"), name.to_string())
        } else {
            let full = join(&parent, name);
            let below = full
                .strip_prefix(&req.base)
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            (full, below)
        };
        if let Some(re) = matcher {
            // A match on a directory takes what is below it.
            let mut candidate = below_base.as_str();
            let mut matched = false;
            while !candidate.is_empty() {
                if re.is_match(candidate) {
                    matched = true;
                    break;
                }
                candidate = candidate.rsplit_once('/').map_or("", |(p, _)| p);
            }
            if !matched {
                continue;
            }
        }
        let Some(target) = destination(dest, &req.root, &full) else {
            continue;
        };
        if entry.header().entry_type().is_hard_link() {
            return Err(refused(format!("`{full}`: hard links are not kept")));
        }
        if let Some(link) = link_on_the_way(dest, &target) {
            return Err(refused(format!(
                "`{full}` would be written through the link `{}`",
                link.strip_prefix(dest).unwrap_or(&link).display()
            )));
        }
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p)?;
        }
        entry.unpack(&target)?;
        written += 1;
    }
    Ok(written)
}

/// Copies what `patterns` name out of `container` into `dest`. Returns a note for every pattern
/// that found nothing or could not be read (missing files do not fail a test).
pub async fn gather(
    engine: &Engine,
    container: &str,
    workdir: &str,
    patterns: &[String],
    dest: &Path,
) -> Vec<String> {
    let mut notes = Vec::new();
    for pattern in patterns {
        let Some(req) = request(workdir, pattern) else {
            notes.push(format!("`{pattern}`: not a usable path"));
            continue;
        };
        let matcher = match req.matcher.as_deref().map(pattern_regex) {
            Some(None) => {
                notes.push(format!("`{pattern}`: not a valid glob"));
                continue;
            }
            Some(Some(re)) => Some(re),
            None => None,
        };
        let tmp = match tempfile::NamedTempFile::new() {
            Ok(t) => t,
            Err(e) => {
                notes.push(format!("`{pattern}`: no temporary file: {e}"));
                continue;
            }
        };
        let mut stream = engine.download(container, &req.base);
        let mut file = match tokio::fs::File::create(tmp.path()).await {
            Ok(f) => f,
            Err(e) => {
                notes.push(format!("`{pattern}`: {e}"));
                continue;
            }
        };
        let mut failed = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if let Err(e) = file.write_all(&bytes).await {
                        failed = Some(e.to_string());
                        break;
                    }
                }
                Err(e) if e.is_not_found() => {
                    failed = Some(format!("`{}` does not exist in `{container}`", req.base));
                    break;
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        if let Err(e) = file.flush().await {
            failed.get_or_insert(e.to_string());
        }
        drop(file);
        if let Some(why) = failed {
            notes.push(format!("`{pattern}`: {why}"));
            continue;
        }
        let (tar_path, req2, dest2) = (tmp.path().to_path_buf(), req.clone(), dest.to_path_buf());
        let result = tokio::task::spawn_blocking(move || {
            let n = unpack(&tar_path, &req2, matcher.as_ref(), &dest2);
            drop(tmp);
            n
        })
        .await;
        match result {
            Ok(Ok(0)) => notes.push(format!("`{pattern}` matched nothing in `{container}`")),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => notes.push(format!("`{pattern}`: unpacking: {e}")),
            Err(e) => notes.push(format!("`{pattern}`: {e}")),
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_paths_directories_and_globs() {
        assert_eq!(
            request("/app", "coverage_html/"),
            Some(Request {
                base: "/app/coverage_html".into(),
                matcher: None,
                root: "/app".into()
            })
        );
        assert_eq!(
            request("/app", "junit-*.xml"),
            Some(Request {
                base: "/app".into(),
                matcher: Some("junit-*.xml".into()),
                root: "/app".into()
            })
        );
        assert_eq!(
            request("", "/var/log/*/x.log"),
            Some(Request {
                base: "/var/log".into(),
                matcher: Some("*/x.log".into()),
                root: "/".into()
            })
        );
        assert_eq!(
            request("/", "*.txt").unwrap().base,
            "/",
            "a glob at the top reads the whole file system"
        );
    }

    #[test]
    fn destinations_stay_below_dest() {
        let d = Path::new("/dest");
        assert_eq!(
            destination(d, "/app", "/app/out/a.xml"),
            Some(PathBuf::from("/dest/out/a.xml"))
        );
        assert_eq!(
            destination(d, "/", "/var/log/x"),
            Some(PathBuf::from("/dest/var/log/x"))
        );
        assert_eq!(
            destination(d, "/app", "/etc/passwd"),
            Some(PathBuf::from("/dest/etc/passwd"))
        );
        assert_eq!(destination(d, "/app", "/app/../x"), None);
    }

    fn tar_with(entries: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(std::fs::File::create(tmp.path()).unwrap());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_bytes()).unwrap();
        }
        b.finish().unwrap();
        tmp
    }

    /// [`crate::backup::check::raw_tar`] in a file.
    fn raw_tar(members: &[(&str, tar::EntryType, &str)]) -> tempfile::NamedTempFile {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), crate::backup::check::raw_tar(members)).unwrap();
        tmp
    }

    #[test]
    fn unsafe_members_are_refused_and_nothing_is_written_outside() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let outside = tempfile::tempdir().unwrap();
        let host_dir = outside.path().display().to_string();
        let cases: Vec<Vec<(&str, tar::EntryType, &str)>> = vec![
            vec![("out/../escaped", Regular, "")],
            vec![("/out/escaped", Regular, "")],
            vec![("elsewhere/escaped", Regular, "")],
            vec![("out/link", Symlink, &host_dir)],
            vec![("out/link", Symlink, "../../escaped")],
            vec![
                ("out/link", Symlink, "sub"),
                ("out/link/escaped", Regular, ""),
            ],
            vec![("out/hard", Link, "out/x")],
        ];
        let req = request("/", "/out/").unwrap();
        for members in cases {
            let dest = tempfile::tempdir().unwrap();
            let tar = raw_tar(&members);
            let err = unpack(tar.path(), &req, None, dest.path()).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{members:?}");
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        }
        // A link left by an earlier pattern is not written through by a later one.
        let dest = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dest.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.path().join("out/link")).unwrap();
        let tar = raw_tar(&[("link/", Directory, ""), ("link/escaped", Regular, "")]);
        let req = request("/", "/out/link/").unwrap();
        let err = unpack(tar.path(), &req, None, dest.path()).unwrap_err();
        assert!(
            err.to_string().contains("through the link `out/link`"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // Links inside the directory are kept as links.
        let dest = tempfile::tempdir().unwrap();
        let tar = raw_tar(&[("out/a", Regular, ""), ("out/l", Symlink, "a")]);
        let req = request("/", "/out/").unwrap();
        assert_eq!(unpack(tar.path(), &req, None, dest.path()).unwrap(), 2);
        assert!(dest.path().join("out/l").is_symlink());
    }

    #[test]
    fn unpacking_keeps_matches() {
        let tar = tar_with(&[
            ("app/junit-1.xml", "a"),
            ("app/junit-2.xml", "b"),
            ("app/other.txt", "c"),
            ("app/cov/index.html", "d"),
        ]);
        let dest = tempfile::tempdir().unwrap();
        let req = request("/app", "junit-*.xml").unwrap();
        let re = pattern_regex(req.matcher.as_deref().unwrap()).unwrap();
        assert_eq!(unpack(tar.path(), &req, Some(&re), dest.path()).unwrap(), 2);
        assert!(dest.path().join("junit-1.xml").is_file());
        assert!(!dest.path().join("other.txt").exists());

        let req = request("/app", "cov/").unwrap();
        let tar = tar_with(&[("cov/index.html", "d")]);
        assert_eq!(unpack(tar.path(), &req, None, dest.path()).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(dest.path().join("cov/index.html")).unwrap(),
            "d"
        );
    }
}
