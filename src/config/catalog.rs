//! What a configuration directory offers: unit commands, unit names, services and READMEs
//! (ORIGINAL §1.4, §7.1). Reads directory listings only; renders nothing.

use std::path::{Path, PathBuf};

use crate::config::discover::ConfigDir;

/// The commands generated from a unit's `start` orders (ORIGINAL §4), in listing order.
pub const GENERATED: [&str; 9] = [
    "stop", "restart", "cleanup", "purge", "test", "build", "create", "backup", "restore",
];

/// Generated for a unit that has an `update` command (seed 003 "Updates").
pub const UPGRADE: &str = "upgrade";
/// The command that makes a unit's `upgrade` generated.
pub const UPDATE: &str = "update";

/// README names tried by `help`, in order.
pub const README_NAMES: [&str; 5] = [
    "README.rst",
    "readme.rst",
    "README",
    "README.md",
    "readme.md",
];

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    out.sort();
    out
}

fn yaml_stem(path: &Path) -> Option<String> {
    let ext = path.extension()?;
    if ext != "yaml" {
        return None;
    }
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

/// Every directory below `dir`, at any depth, as (name relative to `dir` with `/`, path),
/// sorted; hidden directories are skipped, and a directory reached twice through links is read
/// once.
fn unit_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(
        dir: &Path,
        prefix: &str,
        seen: &mut std::collections::HashSet<PathBuf>,
        out: &mut Vec<(String, PathBuf)>,
    ) {
        for path in sorted_entries(dir) {
            if is_hidden(&path) || !path.is_dir() {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !seen.insert(std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone())) {
                continue;
            }
            let rel = format!("{prefix}{name}");
            out.push((rel.clone(), path.clone()));
            walk(&path, &format!("{rel}/"), seen, out);
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut std::collections::HashSet::new(), &mut out);
    out
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The command names of a unit directory: its `.yaml` files, without `globals`.
fn commands_in(dir: &Path) -> Vec<String> {
    sorted_entries(dir)
        .iter()
        .filter(|p| p.is_file() && !is_hidden(p))
        .filter_map(|p| yaml_stem(p))
        .filter(|c| c != "globals")
        .collect()
}

/// The flat unit files `units/<unit>.yaml` (top level only: a `.yaml` file in a unit directory
/// is a command of that unit).
fn flat_units(units: &Path) -> Vec<String> {
    sorted_entries(units)
        .iter()
        .filter(|p| p.is_file() && !is_hidden(p))
        .filter_map(|p| yaml_stem(p))
        .collect()
}

impl ConfigDir {
    /// Every `UNIT/COMMAND`, sorted: explicit files, plus the generated commands of units with
    /// a `start` (a directory's `start.yaml` or a flat `units/<unit>.yaml`). Unit directories
    /// nest (`units/apps/blog/start.yaml` is `apps/blog/start`).
    pub fn unit_commands(&self) -> Vec<String> {
        let units = self.units_dir();
        let mut out = Vec::new();
        for (name, path) in unit_dirs(&units) {
            let mut commands = commands_in(&path);
            if commands.iter().any(|c| c == UPDATE) && !commands.iter().any(|c| c == UPGRADE) {
                commands.push(UPGRADE.into());
            }
            if commands.iter().any(|c| c == "start") || units.join(format!("{name}.yaml")).is_file()
            {
                for g in GENERATED {
                    if !commands.iter().any(|c| c == g) {
                        commands.push(g.to_string());
                    }
                }
                if !commands.iter().any(|c| c == "start") {
                    commands.push("start".into());
                }
            }
            out.extend(commands.into_iter().map(|c| format!("{name}/{c}")));
        }
        for stem in flat_units(&units) {
            if units.join(&stem).is_dir() {
                continue; // listed with its directory
            }
            out.push(format!("{stem}/start"));
            out.extend(GENERATED.iter().map(|g| format!("{stem}/{g}")));
        }
        out.sort();
        out.dedup();
        out
    }

    /// The units with a `start` command, sorted: those whose containers `status` shows and
    /// the generated `upgrade` goes through.
    pub fn started_units(&self) -> Vec<String> {
        self.unit_commands()
            .iter()
            .filter_map(|c| c.strip_suffix("/start").map(str::to_string))
            .collect()
    }

    /// Unit names: directories (at any depth) holding a `.yaml` file, and flat
    /// `units/<unit>.yaml` files.
    pub fn unit_names(&self) -> Vec<String> {
        let units = self.units_dir();
        let mut out: Vec<String> = unit_dirs(&units)
            .into_iter()
            .filter(|(_, path)| {
                sorted_entries(path)
                    .iter()
                    .any(|p| p.is_file() && yaml_stem(p).is_some())
            })
            .map(|(name, _)| name)
            .collect();
        out.extend(flat_units(&units));
        out.sort();
        out.dedup();
        out
    }

    /// Directories under `services/` (and `data/`) that hold a `Dockerfile` or a template of one.
    pub fn services(&self) -> Vec<String> {
        let mut out: Vec<String> = sorted_entries(&self.services_dir())
            .into_iter()
            .filter(|p| has_dockerfile(p))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        out.sort();
        out
    }

    /// The explicit file of `unit/command`, if one exists.
    pub fn explicit_file(&self, unit: &str, command: &str) -> Option<PathBuf> {
        let p = self.units_dir().join(unit).join(format!("{command}.yaml"));
        p.is_file().then_some(p)
    }

    /// The start file of `unit`: `units/<unit>/start.yaml`, else the flat `units/<unit>.yaml`.
    pub fn start_file(&self, unit: &str) -> Option<PathBuf> {
        self.explicit_file(unit, "start").or_else(|| {
            let flat = self.units_dir().join(format!("{unit}.yaml"));
            flat.is_file().then_some(flat)
        })
    }

    /// `units/<unit>/globals.yaml`, if it exists.
    pub fn globals_file(&self, unit: &str) -> Option<PathBuf> {
        let p = self.units_dir().join(unit).join("globals.yaml");
        p.is_file().then_some(p)
    }

    /// The commands available for `unit` (for error hints).
    pub fn commands_of(&self, unit: &str) -> Vec<String> {
        let prefix = format!("{unit}/");
        self.unit_commands()
            .into_iter()
            .filter_map(|c| c.strip_prefix(&prefix).map(str::to_string))
            .filter(|c| !c.contains('/'))
            .collect()
    }
}

pub fn has_dockerfile(dir: &Path) -> bool {
    ["Dockerfile", "Dockerfile.tera", "Dockerfile.j2"]
        .iter()
        .any(|n| dir.join(n).is_file())
}

/// The first README in `dir`.
pub fn find_readme(dir: &Path) -> Option<PathBuf> {
    README_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// `list` output (ORIGINAL §7.1): plain lines, or titled blocks when both kinds are asked for.
pub fn format_listing(units: Option<&[String]>, services: Option<&[String]>) -> String {
    fn block(title: &str, items: &[String]) -> String {
        let mut out = format!("{title}\n{}\n", "=".repeat(title.len()));
        for i in items {
            out.push_str(i);
            out.push('\n');
        }
        out.push('\n');
        out
    }
    match (units, services) {
        (Some(u), Some(s)) => block("Available units:", u) + &block("Available services:", s),
        (Some(items), None) | (None, Some(items)) => {
            let mut out = items.join("\n");
            out.push('\n');
            out
        }
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(files: &[&str]) -> (tempfile::TempDir, ConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("environments")).unwrap();
        for f in files {
            let p = tmp.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        let c = ConfigDir::at(tmp.path());
        (tmp, c)
    }

    #[test]
    fn lists_explicit_generated_and_flat_units_sorted() {
        let (_t, c) = conf(&[
            "units/web/start.yaml",
            "units/web/stop.yaml",
            "units/web/globals.yaml",
            "units/web/README.rst",
            "units/tools/shell.yaml",
            "units/gitlab.yaml",
            "units/notes.txt",
        ]);
        let list = c.unit_commands();
        assert!(list.contains(&"web/start".to_string()));
        assert_eq!(list.iter().filter(|c| *c == "web/stop").count(), 1);
        assert!(list.contains(&"web/purge".to_string()));
        assert!(list.contains(&"web/test".to_string()));
        assert!(!list.iter().any(|c| c == "web/globals"));
        assert!(list.contains(&"tools/shell".to_string()));
        assert!(!list.contains(&"tools/stop".to_string()));
        assert!(list.contains(&"gitlab/start".to_string()));
        assert!(list.contains(&"gitlab/backup".to_string()));
        let mut sorted = list.clone();
        sorted.sort();
        assert_eq!(list, sorted);
        assert_eq!(c.unit_names(), ["gitlab", "tools", "web"]);
    }

    #[test]
    fn nested_unit_directories_are_listed_at_any_depth() {
        let (_t, c) = conf(&[
            "units/apps/blog/start.yaml",
            "units/apps/blog/globals.yaml",
            "units/apps/blog/README.md",
            "units/apps/blog/notes.txt",
            "units/apps/shop/db/start.yaml",
            "units/apps/tool.yaml",
            "units/.hidden/x/start.yaml",
            "units/web/start.yaml",
        ]);
        let list = c.unit_commands();
        for expected in [
            "apps/blog/start",
            "apps/blog/stop",
            "apps/blog/restore",
            "apps/shop/db/start",
            "apps/shop/db/purge",
            "apps/tool",
            "web/start",
        ] {
            assert!(list.iter().any(|c| c == expected), "{expected}: {list:?}");
        }
        assert!(
            !list
                .iter()
                .any(|c| c.contains("globals") || c.contains("notes"))
        );
        assert!(!list.iter().any(|c| c.contains("hidden")), "{list:?}");
        // `apps` holds only `tool.yaml`: a command, with no generated ones.
        assert!(!list.iter().any(|c| c == "apps/stop"), "{list:?}");
        let mut sorted = list.clone();
        sorted.sort();
        assert_eq!(list, sorted);
        assert_eq!(c.unit_names(), ["apps", "apps/blog", "apps/shop/db", "web"]);
        assert_eq!(
            c.commands_of("apps/blog"),
            [
                "backup", "build", "cleanup", "create", "purge", "restart", "restore", "start",
                "stop", "test"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_link_loop_is_read_once() {
        let (t, c) = conf(&["units/a/start.yaml"]);
        std::os::unix::fs::symlink(t.path().join("units/a"), t.path().join("units/a/again"))
            .unwrap();
        assert_eq!(c.unit_names(), ["a"]);
    }

    #[test]
    fn services_need_a_dockerfile() {
        let (_t, c) = conf(&["services/cgit/Dockerfile", "services/empty/README"]);
        assert_eq!(c.services(), ["cgit"]);
    }

    #[test]
    fn listing_format_with_both_blocks() {
        let text = format_listing(Some(&["a/start".into()]), Some(&["cgit".into()]));
        assert_eq!(
            text,
            "Available units:\n================\na/start\n\nAvailable services:\n===================\ncgit\n\n"
        );
        assert_eq!(
            format_listing(Some(&["a".into(), "b".into()]), None),
            "a\nb\n"
        );
    }
}
