//! What a restore refuses (SPEC "Backup and restore"): members outside the container's
//! volumes, absolute paths and `..`, links that leave their volume or pass through another
//! link of the archive, and damage; and how text from an archive is printed.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Component, Path};

use super::archive::{Counts, as_path};

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

/// A tar of `(name, type, link target)` members with empty contents, names written into the
/// header by hand: the tar crate refuses `..` itself (tests of unsafe archives).
#[cfg(test)]
pub(crate) fn raw_tar(members: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link) in members {
        let mut h = tar::Header::new_gnu();
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

#[cfg(test)]
mod tests {
    use super::*;
    use tar::EntryType;

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

    use super::raw_tar;

    /// A member of [`raw_tar`]: name, type, link target.
    type Raw<'a> = (&'a str, EntryType, &'a str);

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
}
