//! A local registry for push and pull tests: Debian's `docker-registry` on a free loopback
//! port, with or without htpasswd auth, stopped on drop. The engine talks plain HTTP to
//! registries on 127.0.0.1, so no TLS is needed.

use std::fmt::Write as _;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{docker_output, which};

/// A running `docker-registry serve`, its storage in a temp dir; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    credentials: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// A registry that takes pushes from anyone.
    pub fn start() -> Registry {
        Registry::spawn(None)
    }

    /// A registry that answers only `user` with `password` (htpasswd, bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::spawn(Some((user.to_string(), password.to_string())))
    }

    fn spawn(credentials: Option<(String, String)>) -> Registry {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = &credentials {
            let htpasswd = dir.path().join("htpasswd");
            write_htpasswd(&htpasswd, user, password);
            let _ = write!(
                config,
                "auth:\n  htpasswd:\n    realm: dstart-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let registry = which("docker-registry")
            .expect("docker-registry on the host (Debian: apt-get install docker-registry)");
        let child = Command::new(registry)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the registry starts");
        // Dropped (and so killed) if it never listens.
        let registry = Registry {
            child,
            port,
            credentials,
            _dir: dir,
        };
        wait_for_port(port, "the registry");
        registry
    }

    /// `127.0.0.1:PORT`, the registry part of image names pushed here.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The user and password of [`Registry::start_with_auth`].
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// GET a path of the registry's HTTP API (with the credentials, if any); the body, or
    /// an empty string when the registry refuses.
    pub fn get(&self, path: &str) -> String {
        let auth = self
            .credentials()
            .map(|(u, p)| format!("{u}:{p}@"))
            .unwrap_or_default();
        let out = Command::new("busybox")
            .args([
                "wget",
                "-q",
                "-O-",
                &format!("http://{auth}127.0.0.1:{}{path}", self.port),
            ])
            .output()
            .expect("busybox wget runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker login` to this registry with the Docker CLI configuration directory `config`
    /// (a temp dir: the user's own `~/.docker` is never touched); returns its output.
    pub fn login(&self, config: &Path, user: &str, password: &str) -> Output {
        let mut cmd = Command::new("docker");
        cmd.arg("--config").arg(config).args([
            "login",
            "--username",
            user,
            "--password-stdin",
            &self.address(),
        ]);
        output_with_stdin(&mut cmd, password)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Image names outside a sandbox's prefix (`127.0.0.1:PORT/...`) that a test makes; removed
/// on drop, also when the test fails.
pub struct Tags(pub Vec<String>);

impl Drop for Tags {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = docker_output(&["rmi", tag]);
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits until something listens on 127.0.0.1:`port` (20 s at most).
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `htpasswd -B` (bcrypt, the only scheme the registry takes), the password on stdin so it
/// never shows in a process list.
fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let out = output_with_stdin(
        Command::new("htpasswd")
            .args(["-B", "-c", "-i"])
            .arg(path)
            .arg(user),
        password,
    );
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` with `input` on its stdin (a password: never on a command line); its output.
fn output_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not run (scripts/setup installs it): {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("stdin");
    drop(stdin);
    child.wait_with_output().expect("the command's output")
}
