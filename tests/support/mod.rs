//! Support for tests that talk to the real Docker engine.
//!
//! Every test gets a [`Sandbox`]: a configuration directory in a temp dir and a unique prefix
//! (`dstart-it-<test>-<pid>`) for its unit, containers, volumes and images. The sandbox
//! removes everything carrying its prefix or its unit label before the test and when dropped,
//! also when the test fails. Images come from [`base_image`], a static busybox built locally
//! once (no registry can be reached). An unreachable engine fails the test; it never skips.
//!
//! Shared fixtures for real services: [`postgres_image`] (a database image from Debian
//! packages), [`Registry`] (with or without htpasswd auth), [`Sshd`] (an `ssh://` engine) and
//! [`Swarm`] (a one-node swarm, one test at a time, left again on drop).

#![allow(dead_code, clippy::unused_self)]

mod registry;
mod sshd;
mod swarm;

// Each test binary uses some of the fixtures.
#[allow(unused_imports)]
pub use registry::{Registry, Tags};
#[allow(unused_imports)]
pub use sshd::Sshd;
#[allow(unused_imports)]
pub use swarm::{Swarm, swarm_state};

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;

/// Spawns `cmd` with its stdout piped (stderr dropped) and reads its lines until the first
/// `PASS … :start (` (the test copy started). Returns the child, the reader of the rest, and
/// the lines read.
pub fn spawn_until_started(mut cmd: Command) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dstart starts");
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).expect("stdout reads") > 0 {
        seen.push_str(&line);
        let started = line.starts_with("PASS ") && line.contains(":start (");
        line.clear();
        if started {
            break;
        }
    }
    assert!(seen.contains(":start ("), "{seen}");
    (child, reader, seen)
}

/// The locally built base image every engine test uses.
pub const BASE_IMAGE: &str = "dstart-test/busybox:latest";

/// Runs a docker CLI command and returns its stdout; panics with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Seconds since the epoch, with fractions: what `docker events --since/--until` take.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

/// The engine's events between `since` and `until` (seconds since the epoch), with the
/// `--filter`s given, one line per event in the Go template `format`.
pub fn events(since: f64, until: f64, filters: &[&str], format: &str) -> Vec<String> {
    let (since, until) = (format!("{since:.6}"), format!("{until:.6}"));
    let mut args = vec![
        "events", "--since", &since, "--until", &until, "--format", format,
    ];
    for f in filters {
        args.extend(["--filter", f]);
    }
    docker(&args).lines().map(str::to_string).collect()
}

/// Runs a docker CLI command, returning its output whatever the status.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// Builds [`BASE_IMAGE`] once per machine (from the host's static busybox), under a file lock
/// so that parallel test binaries do not race.
pub fn base_image() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let lock_path = std::env::temp_dir().join("dstart-test-base-image.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .expect("lock file");
        let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("lock");
        let exists = docker_output(&["image", "inspect", BASE_IMAGE]).status.success();
        if !exists {
            let busybox = which("busybox").expect(
                "a static busybox on the host (Debian: apt-get install busybox-static)",
            );
            let ctx = tempfile::tempdir().expect("tempdir");
            std::fs::copy(&busybox, ctx.path().join("busybox")).expect("copy busybox");
            std::fs::write(
                ctx.path().join("Dockerfile"),
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/tmp\", \"/etc\", \"/var/www\"]\nENV PATH=/bin\nCMD [\"sh\"]\n",
            )
            .expect("Dockerfile");
            docker(&["build", "-q", "-t", BASE_IMAGE, &ctx.path().display().to_string()]);
        }
    });
    BASE_IMAGE
}

/// The database test image (Debian packages: `postgres`, `psql`, `pg_dump`, `pg_restore`,
/// `python3`, `nginx`; `scripts/test-images`), built once per machine and found by its recipe's
/// label. The script holds a file lock while it checks and builds, so parallel test binaries
/// and benchmarks build it once; this process asks it once.
pub fn postgres_image() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-images");
        let out = Command::new(&script)
            .arg("postgres")
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("scripts/test-images runs");
        assert!(out.status.success(), "scripts/test-images postgres failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// A test's own configuration directory and names on the engine.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// Unique prefix: use it for the unit, container, volume and image names.
    pub id: String,
}

impl Sandbox {
    /// A sandbox for test `test` (a short name; it becomes part of engine object names).
    pub fn new(test: &str) -> Sandbox {
        base_image();
        let id = format!("dstart-it-{test}-{}", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("environments")).expect("environments");
        std::fs::create_dir_all(dir.path().join("units")).expect("units");
        let sandbox = Sandbox { dir, id };
        sandbox.clean();
        sandbox
    }

    pub fn conf(&self) -> &Path {
        self.dir.path()
    }

    /// A name under this sandbox's prefix: `<id>-<suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.id)
    }

    /// Writes a file below the configuration directory.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.conf().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Writes `units/<unit>/<command>.yaml`.
    pub fn unit(&self, unit: &str, command: &str, text: &str) -> PathBuf {
        self.write(&format!("units/{unit}/{command}.yaml"), text)
    }

    /// Runs `dstart -c <conf> ARGS` and returns its output.
    pub fn dstart(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("dstart runs")
    }

    /// The `dstart -c <conf> ARGS` command, to adjust before running.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dstart"));
        cmd.arg("-c").arg(self.conf()).args(args);
        cmd.env_remove("DOCKERSTRA_CONF");
        // The build-hash cache stays with the sandbox, not in the user's ~/.cache.
        cmd.env("XDG_CACHE_HOME", self.conf().join(".cache"));
        cmd.current_dir(self.conf());
        cmd
    }

    /// Runs dstart and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(self.conf(), args)
    }

    /// Runs dstart with the working directory `cwd` and asserts success; returns stdout.
    pub fn ok_in(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self
            .command(args)
            .current_dir(cwd)
            .output()
            .expect("dstart runs");
        assert!(
            out.status.success(),
            "dstart {} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs dstart, asserts the exit code and returns (stdout, stderr).
    pub fn fails(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.dstart(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "dstart {} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Removes every container, volume, network and image of this sandbox.
    pub fn clean(&self) {
        let by_label = format!("label=dstart.unit={}", self.id);
        let by_prefix = format!("name={}", self.id);
        let mut containers: Vec<String> = Vec::new();
        for filter in [&by_label, &by_prefix] {
            let out = docker_output(&["ps", "-aq", "--filter", filter]);
            containers.extend(
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_string),
            );
        }
        // Units of this sandbox may carry suffixes (test pseudonames): match labels by prefix.
        let out = docker_output(&["ps", "-a", "--format", "{{.ID}} {{.Label \"dstart.unit\"}}"]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((id, unit)) = line.split_once(' ') {
                if unit.starts_with(&self.id) {
                    containers.push(id.to_string());
                }
            }
        }
        containers.sort();
        containers.dedup();
        if !containers.is_empty() {
            // An anonymous volume a recreate carried over is mounted by name: `rm -v` keeps it.
            let mut args = vec![
                "inspect",
                "-f",
                "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
            ];
            args.extend(containers.iter().map(String::as_str));
            let out = docker_output(&args);
            let anonymous: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string)
                .collect();
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(containers.iter().map(String::as_str));
            let _ = docker_output(&args);
            for volume in &anonymous {
                let _ = docker_output(&["volume", "rm", volume]);
            }
        }
        let out = docker_output(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Label \"dstart.unit\"}}",
        ]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut parts = line.split(' ');
            let name = parts.next().unwrap_or_default();
            let unit = parts.next().unwrap_or_default();
            if name.starts_with(&self.id) || unit.starts_with(&self.id) {
                let _ = docker_output(&["volume", "rm", "-f", name]);
            }
        }
        let out = docker_output(&[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Label \"dstart.unit\"}}",
        ]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut parts = line.split(' ');
            let name = parts.next().unwrap_or_default();
            let unit = parts.next().unwrap_or_default();
            if name.contains(&self.id) || unit.starts_with(&self.id) {
                let _ = docker_output(&["network", "rm", name]);
            }
        }
        let out = docker_output(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        for image in String::from_utf8_lossy(&out.stdout).lines() {
            if image.starts_with(&self.id) {
                let _ = docker_output(&["rmi", "-f", image]);
            }
        }
        // Builds that lost their tag to a rebuild keep the repository in a label.
        let out = docker_output(&["images", "-q", "--filter", "label=dstart.build-repository"]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec![
                "image",
                "inspect",
                "-f",
                "{{.Id}} {{index .Config.Labels \"dstart.build-repository\"}}",
            ];
            args.extend(ids.iter().map(String::as_str));
            let out = docker_output(&args);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((id, repo)) = line.split_once(' ') {
                    if repo.starts_with(&self.id) {
                        let _ = docker_output(&["rmi", "-f", id]);
                    }
                }
            }
        }
    }

    /// `docker inspect -f FORMAT NAME`, or `None` if it does not exist.
    pub fn inspect(&self, name: &str, format: &str) -> Option<String> {
        let out = docker_output(&["inspect", "-f", format, name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn exists(&self, name: &str) -> bool {
        docker_output(&["inspect", name]).status.success()
    }

    pub fn running(&self, name: &str) -> bool {
        self.inspect(name, "{{.State.Running}}").as_deref() == Some("true")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.clean();
    }
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA in `dir`: `ca.pem` and its key `ca-key.pem`.
pub fn make_ca(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=dstart test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
}

/// A certificate signed by the CA of `dir`: `<cert>` and `<key>`, for `subject`, with the
/// openssl extensions `ext` (e.g. `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth`).
pub fn make_cert(dir: &Path, cert: &str, key: &str, subject: &str, ext: &str) {
    let csr = format!("{cert}.csr");
    let extfile = format!("{cert}.ext");
    std::fs::write(dir.join(&extfile), format!("{ext}\n")).expect("extfile");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", key, "-out", &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            cert,
        ],
    );
}

/// The engine's events about some containers, streamed live from [`ContainerEvents::watch`] to
/// [`ContainerEvents::stop`]. `docker events --since … --until …` reads the engine's in-memory
/// log, which keeps only the last 256 events: on a busy engine (the other tests of the binary)
/// older ones are gone. A live stream loses nothing; a marker container created at the start
/// and removed at the end proves that the stream was listening before, and has delivered
/// everything up to, the end.
pub struct ContainerEvents {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    marker: String,
}

impl ContainerEvents {
    /// Starts streaming `TYPE ACTION NAME` lines of the containers whose names START with one
    /// of `names` (the engine's filter matches prefixes). Returns once the stream listens.
    pub fn watch(names: &[String]) -> ContainerEvents {
        use std::io::BufRead;
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let marker = format!(
            "dstart-it-events-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut cmd = Command::new("docker");
        cmd.args([
            "events",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ]);
        for n in names.iter().chain(std::iter::once(&marker)) {
            cmd.args(["--filter", &format!("container={n}")]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("docker events runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let events = ContainerEvents {
            child,
            lines,
            marker,
        };
        // The stream subscribes asynchronously: create the marker until its event arrives.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let _ = docker_output(&["rm", "-f", &events.marker]);
            docker(&["create", "--name", &events.marker, base_image(), "true"]);
            if events
                .until_marker("create", std::time::Duration::from_secs(2))
                .is_some()
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "docker events never delivered the marker's create"
            );
        }
        events
    }

    /// The lines received until the marker's `ACTION` event, or `None` after `wait`.
    fn until_marker(&self, action: &str, wait: std::time::Duration) -> Option<Vec<String>> {
        let end = format!("container {action} {}", self.marker);
        let deadline = std::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if line == end {
                return Some(seen);
            }
            if !line.ends_with(&self.marker) {
                seen.push(line);
            }
        }
    }

    /// Ends the watch: every event of the watched containers since [`watch`](Self::watch).
    pub fn stop(mut self) -> Vec<String> {
        docker(&["rm", "-f", &self.marker]);
        let seen = self
            .until_marker("destroy", std::time::Duration::from_secs(60))
            .expect("docker events delivered the marker's destroy");
        let _ = self.child.kill();
        let _ = self.child.wait();
        seen
    }
}

impl Drop for ContainerEvents {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = docker_output(&["rm", "-f", &self.marker]);
    }
}
