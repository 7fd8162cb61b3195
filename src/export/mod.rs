//! `dstart export`: a resolved unit command written for another tool, beside `execute` in the
//! pipeline (a unit in, a file out, no engine). [`resolve`] reads what the file system says
//! (bind paths made absolute, which Dockerfile a build uses) the way `start` does; the formats
//! themselves (`compose`) are pure.

pub mod compose;
mod refs;
pub mod yaml;

use std::collections::HashMap;
use std::path::Path;

use crate::execute::{build_path, host_path, network_name};
use crate::unit::Unit;
use crate::unit::container::MountSpec;

/// Why a unit command cannot be exported at all.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("`{command}` starts no container, so there is nothing to export")]
    NothingStarted { command: String },
    #[error("`{command}` is a test run, which has no Compose form")]
    TestRun { command: String },
}

impl ExportError {
    pub fn hint(&self) -> String {
        match self {
            ExportError::NothingStarted { .. } => {
                "export the unit's `start` command (`dstart export UNIT`), or a command with `start` orders".into()
            }
            ExportError::TestRun { .. } => {
                "export the command the test starts from (`dstart export UNIT/start`)".into()
            }
        }
    }
}

/// Which Dockerfile a build uses, as `start` would find it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dockerfile {
    /// A Dockerfile as it is (`None`: the default `Dockerfile`).
    Plain(Option<String>),
    /// A template dstart renders before the build (`Dockerfile.tera`).
    Template(String),
    /// No usable Dockerfile, and why.
    Missing(String),
}

/// The build of a container: its context directory, absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInput {
    pub context: String,
    pub dockerfile: Dockerfile,
}

/// What the file system says about one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerInput {
    /// The host paths of its binds, absolute, in the order of its mounts.
    pub binds: Vec<String>,
    pub build: Option<BuildInput>,
}

/// Everything besides the unit that an export needs.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// The unit network, as `start` names it.
    pub network: String,
    pub containers: HashMap<String, ContainerInput>,
    /// Secret values of the environment files, with the keys that lead to each.
    pub environment_secrets: Vec<(Vec<String>, String)>,
}

fn is_template(file: &str) -> bool {
    Path::new(file)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tera") || e.eq_ignore_ascii_case("j2"))
}

/// The Dockerfile of the build directory `dir` (see `execute::image`).
fn dockerfile(dir: &Path, explicit: Option<&str>) -> Dockerfile {
    if !dir.is_dir() {
        return Dockerfile::Missing(format!(
            "the build directory `{}` does not exist",
            dir.display()
        ));
    }
    if let Some(file) = explicit {
        return if !dir.join(file).is_file() {
            Dockerfile::Missing(format!("the Dockerfile `{file}` does not exist"))
        } else if is_template(file) {
            Dockerfile::Template(file.to_string())
        } else {
            Dockerfile::Plain(Some(file.to_string()))
        };
    }
    let templates: Vec<&str> = ["Dockerfile.tera", "Dockerfile.j2"]
        .into_iter()
        .filter(|t| dir.join(t).is_file())
        .collect();
    match (templates.as_slice(), dir.join("Dockerfile").is_file()) {
        ([], true) => Dockerfile::Plain(None),
        ([t], false) => Dockerfile::Template((*t).to_string()),
        ([], false) => Dockerfile::Missing(format!("`{}` has no Dockerfile", dir.display())),
        _ => Dockerfile::Missing(format!("`{}` has more than one Dockerfile", dir.display())),
    }
}

/// Resolves the paths of `unit` against the configuration directory `conf` and the current
/// directory `cwd`, as `start` would.
pub fn resolve(conf: &Path, cwd: &Path, unit: &Unit) -> Resolved {
    // Compose reads relative paths against the file's directory, not ours: all absolute.
    let conf = &cwd.join(conf);
    let mut containers = HashMap::new();
    for (name, c) in &unit.containers {
        let spec = &c.spec;
        let build_dir = spec.build.as_ref().map(|b| b.path.as_str());
        let binds = spec
            .mounts
            .iter()
            .filter_map(|m| match m {
                MountSpec::Bind { host, .. } => {
                    Some(host_path(conf, cwd, build_dir, host).display().to_string())
                }
                _ => None,
            })
            .collect();
        let build = spec.build.as_ref().map(|b| {
            let dir = build_path(conf, cwd, &b.path);
            BuildInput {
                context: dir.display().to_string(),
                dockerfile: dockerfile(&dir, b.dockerfile.as_deref()),
            }
        });
        containers.insert(name.clone(), ContainerInput { binds, build });
    }
    Resolved {
        network: network_name(&unit.command.unit),
        containers,
        environment_secrets: crate::secrets::secret_scalars(unit.environment.vars()),
    }
}

/// Writes `text` to `path` whole or not at all: a temporary file beside it, renamed over it.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // A temporary file is private (0600); the file keeps the mode it had, else gets 0644 like
    // any file a shell redirection writes.
    let mode = std::fs::metadata(path).map_or_else(
        |_| std::fs::Permissions::from_mode(0o644),
        |m| m.permissions(),
    );
    tmp.as_file().set_permissions(mode)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
