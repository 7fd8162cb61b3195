//! Finding the configuration directory (ORIGINAL §1.1, SPEC "Configuration directory") and
//! `init`, the only command that creates anything.
//!
//! Order: `-c DIR` > `$DOCKERSTRA_CONF` > `$HOME/.dockerstra` > `<prefix>/etc/dockerstra` >
//! `/etc/dockerstra`, where `<prefix>` is the parent of the directory holding the binary.
//! A directory is initialized when it has an `environments/` subdirectory.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// An initialized configuration directory.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    root: PathBuf,
}

impl ConfigDir {
    /// Uses `root` as given, without checks (tests and `init`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ConfigDir { root: root.into() }
    }

    /// The directory as given (this string is `DOCKERSTRA_CONF` in templates).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn units_dir(&self) -> PathBuf {
        self.root.join("units")
    }

    pub fn environments_dir(&self) -> PathBuf {
        self.root.join("environments")
    }

    pub fn services_dir(&self) -> PathBuf {
        self.root.join("services")
    }

    pub fn is_initialized(path: &Path) -> bool {
        path.join("environments").is_dir()
    }
}

/// The default candidates, in order.
fn default_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => out.push(PathBuf::from(home).join(".dockerstra")),
        _ => out.push(PathBuf::from("/invalidchoice/.dockerstra")),
    }
    if let Some(prefix) = install_prefix() {
        let candidate = prefix.join("etc").join("dockerstra");
        if candidate != Path::new("/etc/dockerstra") {
            out.push(candidate);
        }
    }
    out.push(PathBuf::from("/etc/dockerstra"));
    out
}

/// The parent of the `bin/` directory the binary lives in.
fn install_prefix() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    Some(bin.parent()?.to_path_buf())
}

fn explicit_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    match std::env::var_os("DOCKERSTRA_CONF") {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => None,
    }
}

/// Finds the initialized configuration directory. Creates nothing.
pub fn discover(explicit: Option<&Path>) -> Result<ConfigDir, ConfigError> {
    if let Some(dir) = explicit_dir(explicit) {
        if !dir.is_dir() {
            return Err(ConfigError::DirMissing { path: dir });
        }
        if !ConfigDir::is_initialized(&dir) {
            return Err(ConfigError::NotInitialized {
                searched: vec![dir],
            });
        }
        return Ok(ConfigDir::at(dir));
    }
    let candidates = default_candidates();
    for c in &candidates {
        if ConfigDir::is_initialized(c) {
            return Ok(ConfigDir::at(c.clone()));
        }
    }
    Err(ConfigError::NotInitialized {
        searched: candidates,
    })
}

/// Where `init` writes: `-c DIR` or `$DOCKERSTRA_CONF` if given, else the first default
/// candidate that exists or whose parent is writable.
pub fn init_target(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = explicit_dir(explicit) {
        return Ok(dir);
    }
    let candidates = default_candidates();
    for c in &candidates {
        if c.is_dir() || c.parent().is_some_and(is_writable_dir) {
            return Ok(c.clone());
        }
    }
    Err(ConfigError::NoWritableDir { tried: candidates })
}

fn is_writable_dir(path: &Path) -> bool {
    path.is_dir()
        && tempfile::Builder::new()
            .prefix(".dstart-probe")
            .tempfile_in(path)
            .is_ok()
}

/// The files of the example configuration (`conf-example/`), embedded at build time.
mod example {
    include!(concat!(env!("OUT_DIR"), "/example_files.rs"));
}

/// The environment file `init` writes: the example's `environments/default.yaml` (the example
/// units need its variables), with the backup directory in `$HOME` (ORIGINAL §1.3), so that a
/// cron job finds the archives wherever it runs.
fn default_environment(example: Option<&[u8]>) -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_string());
    let backup_dir = format!("BACKUP_DIR: {home}/.docker_backup");
    let Some(text) = example.map(String::from_utf8_lossy) else {
        return format!(
            "# Variables for the unit files of this configuration directory.\n\
             # Every *.yaml file in this directory is read in name order and deep-merged.\n\n\
             DOCKER_HOST: unix:///var/run/docker.sock\n\
             {backup_dir}\n"
        );
    };
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("BACKUP_DIR:") {
            out.push_str(&backup_dir);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Writes the example configuration into `dir` (created if needed). Refuses an initialized
/// directory. Returns the files written, relative to `dir`.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if ConfigDir::is_initialized(dir) {
        return Err(ConfigError::AlreadyInitialized {
            path: dir.to_path_buf(),
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigError::Io { path, source }
    };
    let mut written = Vec::new();
    let mut example_env = None;
    for (rel, bytes) in example::FILES {
        let rel = Path::new(rel);
        if rel == Path::new("environments/default.yaml") {
            example_env = Some(*bytes);
            continue;
        }
        let target = dir.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&target, bytes).map_err(io(&target))?;
        written.push(rel.to_path_buf());
    }
    let env_dir = dir.join("environments");
    fs::create_dir_all(&env_dir).map_err(io(&env_dir))?;
    let env_file = env_dir.join("default.yaml");
    fs::write(&env_file, default_environment(example_env)).map_err(io(&env_file))?;
    written.push(PathBuf::from("environments/default.yaml"));
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_must_exist_and_be_initialized() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(matches!(
            discover(Some(&missing)),
            Err(ConfigError::DirMissing { .. })
        ));
        assert!(matches!(
            discover(Some(tmp.path())),
            Err(ConfigError::NotInitialized { .. })
        ));
        fs::create_dir(tmp.path().join("environments")).unwrap();
        assert_eq!(discover(Some(tmp.path())).unwrap().root(), tmp.path());
    }

    #[test]
    fn init_writes_example_and_refuses_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("conf");
        let files = init(&dir).unwrap();
        assert!(files.contains(&PathBuf::from("environments/default.yaml")));
        let env = fs::read_to_string(dir.join("environments/default.yaml")).unwrap();
        assert!(env.contains("DOCKER_HOST: "));
        assert!(env.contains("BACKUP_DIR: "));
        // The example unit's variables are there too.
        assert!(env.contains("\nWEB_PORT: "), "{env}");
        assert!(dir.join("units").is_dir());
        assert!(matches!(
            init(&dir),
            Err(ConfigError::AlreadyInitialized { .. })
        ));
    }
}
