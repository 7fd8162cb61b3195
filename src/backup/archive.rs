//! The tar inside an archive: writing it from the engine's archive streams, and checking one
//! before a restore.
//!
//! Members are named relative to the container's root, as `tar cf - -C / data` names them
//! (`data/`, `data/file`, `var/lib/x/...`), whichever way the archive was made. The engine names
//! the members of `GET /containers/{id}/archive?path=/var/lib/x` `x/...`; [`append_source`]
//! puts `var/lib/` in front of them (and of hard link targets), keeping every header field and
//! PAX record (ownership, modes, times, extended attributes).

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path};

use tar::{Builder, EntryType, Header};

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

fn as_path(bytes: &[u8]) -> &Path {
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

/// Why a restore refuses an archive.
#[derive(Debug)]
pub enum Refusal {
    /// The archive cannot be read to its end.
    Damaged(io::Error),
    /// A member that would write outside the container's volumes.
    Unsafe { member: String, why: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Damaged(e) => {
                write!(f, "the archive is damaged: {}", printable(&e.to_string()))
            }
            Refusal::Unsafe { member, why } => write!(
                f,
                "unsafe member `{}`: {}",
                printable(member),
                printable(why)
            ),
        }
    }
}

/// Text that came out of an archive (member names, the tar reader's messages, which quote
/// header bytes), made safe to print: control characters escaped (no terminal escape
/// sequence from a damaged file reaches the screen or a log), at most 200 characters.
pub fn printable(text: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() || c == '\u{fffd}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What [`check`] found in an archive that may be restored.
#[derive(Debug, Default)]
pub struct Checked {
    pub counts: Counts,
    /// The volume roots (`data`, `var/lib/x`) the archive writes into, in order of appearance.
    pub roots: Vec<String>,
}

/// Normal components of a member path; `None` if it is absolute or has `..`.
fn components(path: &Path) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => return None,
        }
    }
    Some(out)
}

/// The root (of `roots`, each a list of components) that `parts` lies in.
fn root_of<'r>(roots: &'r [Vec<String>], parts: &[String]) -> Option<&'r Vec<String>> {
    roots
        .iter()
        .filter(|r| parts.len() >= r.len() && parts[..r.len()] == r[..])
        .max_by_key(|r| r.len())
}

/// The places a symlink at `member` (components) pointing at `target` passes, from the container
/// root, one after each component of `target`; the last is where it leads. `None` if it climbs
/// above the root. Resolved on the text alone: [`check`] refuses what text cannot tell (a step
/// through another symlink, a walk outside the volume).
fn link_steps(member: &[String], target: &Path) -> Option<Vec<Vec<String>>> {
    let mut at: Vec<String> = if target.is_absolute() {
        Vec::new()
    } else {
        member[..member.len().saturating_sub(1)].to_vec()
    };
    let mut steps = Vec::new();
    for c in target.components() {
        match c {
            Component::Normal(s) => at.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                at.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => continue,
        }
        steps.push(at.clone());
    }
    if steps.is_empty() {
        // `.`: the link's own directory.
        steps.push(at);
    }
    Some(steps)
}

/// Whether `parts` lies in (or is) `root`.
fn within(root: &[String], parts: &[String]) -> bool {
    parts.len() >= root.len() && parts[..root.len()] == root[..]
}

/// The symlink of the archive (in `links`) that `parts` lies below, if any.
fn below_link<'p>(links: &HashSet<Vec<String>>, parts: &'p [String]) -> Option<&'p [String]> {
    if links.is_empty() {
        return None;
    }
    (1..parts.len())
        .map(|n| &parts[..n])
        .find(|prefix| links.contains(*prefix))
}

/// A symlink of the archive, checked once the archive has been read: whether its target passes
/// through another symlink depends on members that may come after it.
struct Symlink {
    member: Vec<u8>,
    target: Vec<u8>,
    steps: Vec<Vec<String>>,
}

/// Reads a whole tar stream and checks that every member lies inside one of `volumes`
/// (container paths such as `/data`) and that no link leads out of the volume it is in.
///
/// Links are judged on the text of their paths, so whatever text cannot tell is refused: a
/// member below a symlink of the archive (`data/d -> /data`, then `data/d/l`), a hard link whose
/// target lies below one, and a symlink whose target passes through another symlink of the
/// archive (`data/t -> s/..`) or walks outside its volume other than along the volume's own
/// path (`/data/x` is fine, `/etc/../data/x` is not). Archives made from a file system never
/// have the first two, and seldom the last.
pub fn check(input: impl Read, volumes: &[String]) -> Result<Checked, Refusal> {
    let roots: Vec<Vec<String>> = volumes
        .iter()
        .filter_map(|v| components(Path::new(v.trim_start_matches('/'))))
        .filter(|r| !r.is_empty())
        .collect();
    let mut checked = Checked::default();
    let mut links: HashSet<Vec<String>> = HashSet::new();
    let mut symlinks: Vec<Symlink> = Vec::new();
    let mut archive = tar::Archive::new(input);
    let unsafe_member = |member: &[u8], why: String| Refusal::Unsafe {
        member: String::from_utf8_lossy(member).into_owned(),
        why,
    };
    for entry in archive.entries().map_err(Refusal::Damaged)? {
        let mut entry = entry.map_err(Refusal::Damaged)?;
        let name = entry.path_bytes().into_owned();
        let parts = components(as_path(&name))
            .ok_or_else(|| unsafe_member(&name, "absolute paths and `..` are refused".into()))?;
        let root = root_of(&roots, &parts).ok_or_else(|| {
            unsafe_member(
                &name,
                format!(
                    "it is not inside a volume of the container ({})",
                    volumes.join(", ")
                ),
            )
        })?;
        let root_text = root.join("/");
        if !checked.roots.contains(&root_text) {
            checked.roots.push(root_text.clone());
        }
        if let Some(link) = below_link(&links, &parts) {
            return Err(unsafe_member(
                &name,
                format!(
                    "it lies below `{}`, a symlink of the archive, and would be written wherever that link points",
                    link.join("/")
                ),
            ));
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() || kind.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            let leaves = || {
                unsafe_member(
                    &name,
                    format!(
                        "its link to `{}` leaves the volume /{root_text}",
                        String::from_utf8_lossy(&target)
                    ),
                )
            };
            if kind.is_hard_link() {
                let to = components(as_path(&target))
                    .filter(|t| within(root, t))
                    .ok_or_else(leaves)?;
                if let Some(link) = below_link(&links, &to) {
                    return Err(unsafe_member(
                        &name,
                        format!(
                            "its link to `{}` goes through `{}`, a symlink of the archive",
                            String::from_utf8_lossy(&target),
                            link.join("/")
                        ),
                    ));
                }
            } else {
                // Every step stays in the volume, or on the volume's own path from the root
                // (`/`, `/var`, `/var/lib` for `/var/lib/x`), where text and file system agree.
                let steps = link_steps(&parts, as_path(&target))
                    .filter(|steps| {
                        steps.iter().all(|at| within(root, at) || within(at, root))
                            && steps.last().is_some_and(|end| within(root, end))
                    })
                    .ok_or_else(leaves)?;
                links.insert(parts.clone());
                symlinks.push(Symlink {
                    member: name.clone(),
                    target,
                    steps,
                });
            }
        }
        checked.counts.bytes += io::copy(&mut entry, &mut io::sink()).map_err(Refusal::Damaged)?;
        checked.counts.entries += 1;
    }
    // Read on to the end of the file: the compressor's own check (gzip's CRC, zstd's frame
    // checksum) comes after the tar's end and is what catches damage inside stored data.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(Refusal::Damaged)?;
    for link in &symlinks {
        let passes = link.steps[..link.steps.len() - 1]
            .iter()
            .find(|at| links.contains(*at));
        if let Some(other) = passes {
            return Err(unsafe_member(
                &link.member,
                format!(
                    "its link to `{}` goes through `{}`, a symlink of the archive",
                    String::from_utf8_lossy(&link.target),
                    other.join("/")
                ),
            ));
        }
    }
    Ok(checked)
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
    fn archive_text_is_printed_safely() {
        assert_eq!(printable("data/a\u{1b}[2Jb"), "data/a\\u{1b}[2Jb");
        assert_eq!(printable("ok"), "ok");
        assert_eq!(printable(&"x".repeat(300)).chars().count(), 201);
        let r = Refusal::Unsafe {
            member: "data/\u{7}bell".into(),
            why: "w".into(),
        };
        assert!(!r.to_string().contains('\u{7}'));
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

    /// A member of [`raw_tar`]: name, type, link target.
    type Raw<'a> = (&'a str, EntryType, &'a str);

    fn raw_tar(members: &[Raw]) -> Vec<u8> {
        // Names are written into the header by hand: the tar crate refuses `..` itself.
        let mut out = Vec::new();
        for (name, kind, link) in members {
            let mut h = Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(0);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn unsafe_members_are_refused() {
        let vols = ["/data".to_string()];
        let cases = [
            ("data/../etc/passwd", EntryType::Regular, ""),
            ("/data/x", EntryType::Regular, ""),
            ("etc/passwd", EntryType::Regular, ""),
            ("data/l", EntryType::Symlink, "../etc"),
            ("data/l", EntryType::Symlink, "/etc/passwd"),
            ("data/h", EntryType::Link, "etc/passwd"),
        ];
        for (name, kind, link) in cases {
            let tar = raw_tar(&[(name, kind, link)]);
            match check(tar.as_slice(), &vols) {
                Err(Refusal::Unsafe { member, .. }) => assert_eq!(member, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let fine = raw_tar(&[
            ("data/", EntryType::Directory, ""),
            ("data/a/l", EntryType::Symlink, "../b"),
            ("data/abs", EntryType::Symlink, "/data/b"),
            ("data/h", EntryType::Link, "data/a/l"),
            ("data/here", EntryType::Symlink, "."),
            ("data/to-link", EntryType::Symlink, "here"),
            ("data/around", EntryType::Symlink, "../data/b"),
        ]);
        assert_eq!(check(fine.as_slice(), &vols).unwrap().counts.entries, 7);
    }

    #[test]
    fn links_through_symlinks_of_the_archive_are_refused() {
        use EntryType::{Link, Regular, Symlink};
        // (members, the member refused); every link alone stays in the volume on its text.
        let cases: &[(&[Raw], &str)] = &[
            // data/d is /data, so data/d/l is /data/l and points at /etc.
            (
                &[
                    ("data/d", Symlink, "/data"),
                    ("data/d/l", Symlink, "../etc"),
                ],
                "data/d/l",
            ),
            (
                &[("data/d", Symlink, "sub"), ("data/d/x", Regular, "")],
                "data/d/x",
            ),
            (
                &[("data/s", Symlink, "sub"), ("data/h", Link, "data/s/f")],
                "data/h",
            ),
            // data/s is data, so s/.. is / (in either order of the members).
            (
                &[("data/s", Symlink, "."), ("data/t", Symlink, "s/..")],
                "data/t",
            ),
            (
                &[("data/t", Symlink, "s/.."), ("data/s", Symlink, ".")],
                "data/t",
            ),
            (&[("data/l", Symlink, "l/x")], "data/l"),
            // /etc may itself be a link: its `..` is not necessarily /.
            (&[("data/x", Symlink, "/etc/../data/y")], "data/x"),
        ];
        for (members, refused) in cases {
            let tar = raw_tar(members);
            match check(tar.as_slice(), &["/data".to_string()]) {
                Err(Refusal::Unsafe { member, why }) => {
                    assert_eq!(member, *refused, "{members:?}: {why}");
                }
                other => panic!("{members:?}: {other:?}"),
            }
        }
        // Along the volume's own path from the root, text and file system agree.
        let vols = ["/var/lib/x".to_string()];
        let fine = raw_tar(&[
            ("var/lib/x/l", Symlink, "../x/y"),
            ("var/lib/x/m", Symlink, "../../lib/x/y"),
        ]);
        assert_eq!(check(fine.as_slice(), &vols).unwrap().counts.entries, 2);
        let out = raw_tar(&[("var/lib/x/l", Symlink, "../other")]);
        assert!(matches!(
            check(out.as_slice(), &vols),
            Err(Refusal::Unsafe { .. })
        ));
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
