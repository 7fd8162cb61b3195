//! The tar inside an archive, written from the engine's archive streams (what a restore
//! refuses is [`super::check`]).
//!
//! Members are named relative to the container's root, as `tar cf - -C / data` names them
//! (`data/`, `data/file`, `var/lib/x/...`), whichever way the archive was made. The engine names
//! the members of `GET /containers/{id}/archive?path=/var/lib/x` `x/...`; [`append_source`]
//! puts `var/lib/` in front of them (and of hard link targets), keeping every header field and
//! PAX record (ownership, modes, times, extended attributes).

use std::io::{self, Read, Write};
use std::path::Path;

use tar::{Builder, EntryType, Header};

pub use super::check::{Checked, Refusal, check, printable};

/// How many entries and data bytes went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub entries: u64,
    pub bytes: u64,
}

/// The part of a container path the engine leaves out of member names: `var/lib/` for
/// `/var/lib/x`, nothing for `/data`.
pub fn member_prefix(source: &str) -> String {
    let trimmed = source.trim_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/"),
        None => String::new(),
    }
}

fn prefixed(prefix: &str, name: &[u8]) -> Vec<u8> {
    let name = name.strip_prefix(b"./").unwrap_or(name);
    let mut out = prefix.as_bytes().to_vec();
    out.extend_from_slice(name);
    out
}

pub(super) fn as_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// Members left out of an archive (`exclude:`): globs matched against the member's path from
/// the container's root (`/var/lib/x/*.pid`; the leading `/` is optional), or, for a glob
/// without `/`, against each name along the path (`*.tmp`, `cache`). A directory left out
/// takes everything below it along.
#[derive(Debug)]
pub struct Exclude {
    set: globset::GlobSet,
}

impl Exclude {
    /// `None` for no globs; the error names the glob that cannot be read.
    pub fn new(globs: &[String]) -> Result<Option<Exclude>, String> {
        if globs.is_empty() {
            return Ok(None);
        }
        let mut set = globset::GlobSetBuilder::new();
        for g in globs {
            let pattern = g.trim_start_matches('/').trim_end_matches('/');
            let pattern = if pattern.contains('/') {
                pattern.to_string()
            } else {
                format!("**/{pattern}")
            };
            let glob = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("`exclude: {g}`: {e}"))?;
            set.add(glob);
        }
        set.build()
            .map(|set| Some(Exclude { set }))
            .map_err(|e| format!("`exclude`: {e}"))
    }

    /// Whether the member `path` (from the root, `data/x/y`) or a directory above it is left
    /// out.
    pub fn excludes(&self, path: &[u8]) -> bool {
        let text = String::from_utf8_lossy(path);
        let text = text.trim_start_matches("./").trim_end_matches('/');
        text.char_indices()
            .any(|(i, c)| c == '/' && self.set.is_match(&text[..i]))
            || self.set.is_match(text)
    }
}

/// Appends every entry of the engine's tar stream `input` to `out`, with `prefix` in front of
/// member names and hard link targets, leaving out what `exclude` names.
pub fn append_source<W: Write>(
    out: &mut Builder<W>,
    input: impl Read,
    prefix: &str,
    exclude: Option<&Exclude>,
) -> io::Result<Counts> {
    let mut counts = Counts::default();
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if let Some(x) = exclude {
            if x.excludes(&prefixed(prefix, &entry.path_bytes())) {
                continue;
            }
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                if !matches!(ext.key_bytes(), b"path" | b"linkpath") {
                    records.push((ext.key_bytes().to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        if !records.is_empty() {
            append_pax(out, &records)?;
        }
        let path = prefixed(prefix, &entry.path_bytes());
        let mut header = entry.header().clone();
        header.set_size(entry.size());
        match header.entry_type() {
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target = prefixed(prefix, &target);
                out.append_link(&mut header, as_path(&path), as_path(&target))?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                out.append_link(&mut header, as_path(&path), as_path(&target))?;
            }
            _ => {
                counts.bytes += entry.size();
                out.append_data(&mut header, as_path(&path), &mut entry)?;
            }
        }
        counts.entries += 1;
    }
    Ok(counts)
}

/// A PAX extended header (`x`) with `records`, for the entry that follows.
fn append_pax<W: Write>(out: &mut Builder<W>, records: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    let mut data = Vec::new();
    for (k, v) in records {
        // "<len> <key>=<value>\n", where <len> counts itself.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() != rest.to_string().len() {
            len = rest + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} ").as_bytes());
        data.extend_from_slice(k);
        data.push(b'=');
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::XHeader);
    header.set_path("././@PaxHeader")?;
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    out.append(&header, data.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    /// A tar as the engine makes it for `/var/lib/x`: members `x/...`.
    fn engine_tar() -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        let mut h = header(EntryType::Directory, 0o750, 0);
        h.set_uid(1234);
        h.set_gid(5678);
        b.append_data(&mut h, "x/", io::empty()).unwrap();
        let mut h = header(EntryType::Regular, 0o640, 5);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, "x/file", &b"hello"[..]).unwrap();
        let long = format!("x/{}", "n".repeat(150));
        let mut h = header(EntryType::Regular, 0, 1);
        b.append_data(&mut h, &long, &b"!"[..]).unwrap();
        let mut h = header(EntryType::Link, 0, 0);
        b.append_link(&mut h, "x/hard", "x/file").unwrap();
        let mut h = header(EntryType::Symlink, 0, 0);
        b.append_link(&mut h, "x/soft", "file").unwrap();
        b.into_inner().unwrap()
    }

    fn rewrite(prefix: &str) -> Vec<u8> {
        let mut out = Builder::new(Vec::new());
        let counts = append_source(&mut out, engine_tar().as_slice(), prefix, None).unwrap();
        assert_eq!(counts.entries, 5);
        assert_eq!(counts.bytes, 6);
        out.into_inner().unwrap()
    }

    #[test]
    fn excluded_members_never_reach_the_archive() {
        let x = Exclude::new(&["/var/lib/x/file".into(), "*.pid".into(), "cache".into()])
            .unwrap()
            .unwrap();
        for (path, out) in [
            ("var/lib/x/file", true),
            ("var/lib/x/file2", false),
            ("var/lib/x/sub/postmaster.pid", true),
            ("var/lib/x/cache/", true),
            ("var/lib/x/cache/deep/f", true),
            ("var/lib/x/cached", false),
            ("var/lib/x/", false),
        ] {
            assert_eq!(x.excludes(path.as_bytes()), out, "{path}");
        }
        let mut out = Builder::new(Vec::new());
        let x = Exclude::new(&["x/file".into()]).unwrap().unwrap();
        let c = append_source(&mut out, engine_tar().as_slice(), "", Some(&x)).unwrap();
        assert_eq!(c.entries, 4);
        assert!(Exclude::new(&["[".into()]).is_err());
        assert!(Exclude::new(&[]).unwrap().is_none());
    }

    #[test]
    fn prefixes_follow_the_container_path() {
        assert_eq!(member_prefix("/data"), "");
        assert_eq!(member_prefix("/var/lib/x/"), "var/lib/");
    }

    #[test]
    fn members_get_the_path_from_the_root_and_keep_their_metadata() {
        let tar = rewrite("var/lib/");
        let mut a = tar::Archive::new(tar.as_slice());
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            seen.push(format!(
                "{} {:o} {} {} {:?}",
                e.path().unwrap().display(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
                e.link_name().unwrap().map(|l| l.display().to_string())
            ));
        }
        assert_eq!(seen[0], "var/lib/x/ 750 1234 0 None");
        assert_eq!(seen[1], "var/lib/x/file 640 0 1600000000 None");
        assert_eq!(seen[2], format!("var/lib/x/{} 0 0 0 None", "n".repeat(150)));
        assert!(seen[3].ends_with("Some(\"var/lib/x/file\")"), "{}", seen[3]);
        assert!(seen[4].ends_with("Some(\"file\")"), "{}", seen[4]);
        let checked = check(tar.as_slice(), &["/var/lib/x".into()]).unwrap();
        assert_eq!(checked.roots, ["var/lib/x"]);
        assert_eq!(checked.counts.entries, 5);
    }

    #[test]
    fn pax_records_are_kept() {
        let mut src = Builder::new(Vec::new());
        append_pax(
            &mut src,
            &[(b"SCHILY.xattr.user.k".to_vec(), b"v".to_vec())],
        )
        .unwrap();
        let mut h = Header::new_ustar();
        h.set_size(2);
        src.append_data(&mut h, "data/a", &b"ab"[..]).unwrap();
        let src = src.into_inner().unwrap();
        let mut out = Builder::new(Vec::new());
        append_source(&mut out, src.as_slice(), "", None).unwrap();
        let out = out.into_inner().unwrap();
        let mut a = tar::Archive::new(out.as_slice());
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let exts: Vec<String> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| {
                let x = x.unwrap();
                format!("{}={}", x.key().unwrap(), x.value().unwrap())
            })
            .collect();
        assert_eq!(exts, ["SCHILY.xattr.user.k=v"]);
        assert_eq!(e.path().unwrap(), Path::new("data/a"));
    }

    #[test]
    fn a_truncated_archive_is_damaged() {
        let tar = rewrite("");
        let cut = &tar[..1100];
        assert!(matches!(
            check(cut, &["/x".into()]),
            Err(Refusal::Damaged(_))
        ));
    }
}
