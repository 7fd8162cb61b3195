//! A small harness for running the built `dstart` binary on a configuration directory.
//!
//! Every run happens in a fresh temporary directory `ROOT` holding `conf/` (the configuration
//! directory, a copy of a fixture under `tests/fixtures/`) and `home/` (`$HOME`). The binary
//! runs with `ROOT` as its working directory, `-c conf` unless the test says otherwise, a
//! cleared environment (only `PATH`, `HOME` and a `DOCKER_HOST` that points nowhere), so that
//! discovery and `osenv` are deterministic and any attempt to reach the engine would fail.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An engine address that cannot be reached: commands that must not contact the engine are
/// run with it.
pub const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

/// A temporary root with a configuration directory and a home directory.
pub struct Env {
    root: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl Env {
    /// An initialized but empty configuration directory (only `environments/`).
    pub fn empty() -> Self {
        let env = Env::bare();
        std::fs::create_dir_all(env.conf().join("environments")).unwrap();
        env
    }

    /// No configuration directory at all, just an empty home.
    pub fn bare() -> Self {
        let root = tempfile::Builder::new()
            .prefix("dstart-cli")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        Env { root }
    }

    /// `conf/` is a copy of `tests/fixtures/<name>`.
    pub fn fixture(name: &str) -> Self {
        let env = Env::bare();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        copy_dir(&src, &env.conf());
        std::fs::create_dir_all(env.conf().join("environments")).unwrap();
        env
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn conf(&self) -> PathBuf {
        self.root.path().join("conf")
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// Writes `text` to `rel` (relative to the root), creating directories.
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// Writes a unit file `conf/units/<rel>`.
    pub fn unit(&self, rel: &str, text: &str) -> &Self {
        self.write(&format!("conf/units/{rel}"), text)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.path().join(rel)).unwrap()
    }

    /// `dstart -c conf ARGS...`
    pub fn dstart(&self, args: &[&str]) -> Run {
        let mut full = vec!["-c", "conf"];
        full.extend_from_slice(args);
        self.dstart_raw(&full)
    }

    /// `dstart ARGS...` without `-c`.
    pub fn dstart_raw(&self, args: &[&str]) -> Run {
        Run {
            cwd: self.root.path().to_path_buf(),
            args: args.iter().map(ToString::to_string).collect(),
            vars: vec![
                ("HOME".into(), self.home().display().to_string()),
                ("DOCKER_HOST".into(), NO_ENGINE.into()),
            ],
        }
    }

    /// Every relative path below the root, sorted (to see what a command created).
    pub fn tree(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }
}

/// A prepared invocation.
pub struct Run {
    cwd: PathBuf,
    args: Vec<String>,
    vars: Vec<(String, String)>,
}

impl Run {
    /// Sets a variable of the process environment.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.into(), value.into()));
        self
    }

    pub fn output(self) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dstart"));
        cmd.current_dir(&self.cwd).args(&self.args).env_clear();
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run dstart");
        Output {
            args: self.args,
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }

    /// Runs and expects exit status 0 and nothing on stderr; returns stdout.
    pub fn ok(self) -> String {
        let out = self.output();
        out.expect_code(0);
        assert_eq!(out.stderr, "", "unexpected stderr of {:?}", out.args);
        out.stdout
    }

    /// Runs and expects a usage or configuration error (exit 2): one `error: ` message on stderr,
    /// nothing on stdout, no panic. Returns stderr.
    pub fn fails(self) -> String {
        self.output().config_error()
    }
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn expect_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit status of {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
    }

    /// Exit 2 with one `error: ...` message (and its `caused by` / `hint` lines), never a panic
    /// or a backtrace. Returns stderr.
    pub fn config_error(self) -> String {
        self.expect_code(2);
        assert!(
            self.stderr.starts_with("error: "),
            "stderr of {:?} does not start with `error: `:\n{}",
            self.args,
            self.stderr
        );
        assert_eq!(
            self.stderr
                .lines()
                .filter(|l| l.starts_with("error: "))
                .count(),
            1,
            "more than one error message:\n{}",
            self.stderr
        );
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(
                !self.stderr.contains(bad),
                "{bad} in stderr:\n{}",
                self.stderr
            );
        }
        assert_eq!(self.stdout, "", "stdout of a failed {:?}", self.args);
        self.stderr
    }
}

/// Splits `--print-unit` output into its composition and orders documents (a test command
/// prints a third one, its plan, which this ignores).
pub fn documents(text: &str) -> (serde_yaml_ng::Value, serde_yaml_ng::Value) {
    use serde::Deserialize;
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).expect("valid YAML"))
        .collect();
    assert!(
        docs.len() == 2 || docs.len() == 3,
        "expected two YAML documents (three for a test):\n{text}"
    );
    let mut it = docs.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}

/// Parses YAML text (for comparing printed units with expectations written as YAML).
pub fn yaml(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).expect("valid YAML")
}
