//! Reaching the engine: unreachable addresses, the precedence of -H and `DOCKER_HOST`, tcp,
//! and tcp with TLS (client certificates), through forwarders to the engine socket (socat for
//! tcp, `tests/fixtures/tls_proxy.py` for TLS); Docker contexts made with the real `docker
//! context create` (tcp, TLS material, `SkipTLSVerify`), `currentContext`, `DOCKER_CONTEXT`
//! and unknown contexts; `ssh://` engines through a real sshd on 127.0.0.1.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Sandbox, Sshd, base_image};

fn tiny_unit(sb: &Sandbox) {
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            "{id}-c:\n  image: {}\n  command: [\"true\"]\n---\n- {id}-c: {{command: create}}\n",
            base_image()
        ),
    );
}

#[test]
fn unreachable_engine_is_one_clear_message() {
    let sb = Sandbox::new("unreach");
    tiny_unit(&sb);
    let id = sb.id.clone();
    let (stdout, stderr) = sb.fails(
        &[
            "-H",
            "unix:///nonexistent/docker.sock",
            "run",
            &format!("{id}/start"),
        ],
        1,
    );
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: cannot reach the Docker engine at `unix:///nonexistent/docker.sock`: the socket does not exist\n"
    );
    let out = sb
        .command(&["-H", "tcp://127.0.0.1:1", "run", &format!("{id}/start")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot reach the Docker engine at `tcp://127.0.0.1:1`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn flag_beats_process_environment_beats_environment_files() {
    let sb = Sandbox::new("prec");
    tiny_unit(&sb);
    let id = sb.id.clone();
    let unit = format!("{id}/start");
    sb.write(
        "environments/host.yaml",
        "DOCKER_HOST: unix:///from/env/file.sock\n",
    );
    // Only the environment file: it is used.
    let out = sb
        .command(&["run", &unit])
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unix:///from/env/file.sock"));
    // The process environment beats the file.
    let out = sb
        .command(&["run", &unit])
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // -H beats both.
    let out = sb
        .command(&["-H", "unix:///from/flag.sock", "run", &unit])
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unix:///from/flag.sock"));
}

/// socat forwarding a loopback port to the engine socket; killed on drop.
struct Forwarder(Child);

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn forward(listen: &str, port: u16) -> Forwarder {
    let socat = support::which("socat").expect("socat on the host (Debian: apt-get install socat)");
    let child = Command::new(socat)
        .args([listen, "UNIX-CONNECT:/var/run/docker.sock"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    Forwarder(child)
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "socat did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tcp_engine() {
    let sb = Sandbox::new("tcp");
    tiny_unit(&sb);
    let id = sb.id.clone();
    let port = free_port();
    let _fwd = forward(
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
        port,
    );
    let out = sb
        .command(&[
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "run",
            &format!("{id}/start"),
        ])
        .env_remove("DOCKER_TLS_VERIFY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sb.exists(&format!("{id}-c")));
}

#[test]
fn tls_engine_with_client_certificates() {
    let sb = Sandbox::new("tls");
    tiny_unit(&sb);
    let id = sb.id.clone();
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    let (_proxy, port) = tls_proxy(d);
    let run = |cert_path: &Path| {
        sb.command(&["run", &format!("{id}/start")])
            .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_path)
            .output()
            .unwrap()
    };
    let out = run(d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sb.exists(&format!("{id}-c")));
    // Without the certificates: one clear message.
    let empty = tempfile::tempdir().unwrap();
    let out = run(empty.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS is on (DOCKER_TLS_VERIFY)"), "{stderr}");
}

/// The TLS proxy of `tests/fixtures` in front of the engine, with a server certificate for
/// 127.0.0.1 signed by the CA in `certs`, asking for client certificates of that CA.
fn tls_proxy(certs: &Path) -> (Forwarder, u16) {
    support::make_ca(certs);
    support::make_cert(
        certs,
        "server-cert.pem",
        "server-key.pem",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    support::make_cert(
        certs,
        "cert.pem",
        "key.pem",
        "/CN=client",
        "extendedKeyUsage=clientAuth",
    );
    let port = free_port();
    let child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls_proxy.py"))
        .arg(port.to_string())
        .arg(certs.join("server-cert.pem"))
        .arg(certs.join("server-key.pem"))
        .arg(certs.join("ca.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let fwd = Forwarder(child);
    wait_listening(port);
    (fwd, port)
}

/// A Docker CLI configuration directory of the test's own (never the user's `~/.docker`).
struct DockerConfig(tempfile::TempDir);

impl DockerConfig {
    fn new() -> DockerConfig {
        DockerConfig(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// `docker --config DIR ARGS`, asserting success.
    fn docker(&self, args: &[&str]) {
        let out = Command::new("docker")
            .arg("--config")
            .arg(self.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `dstart -c CONF ARGS` with `DOCKER_CONFIG` and no engine variables of the caller's.
fn dstart(sb: &Sandbox, config: &DockerConfig, args: &[&str]) -> Command {
    let mut cmd = sb.command(args);
    cmd.env("DOCKER_CONFIG", config.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn contexts_are_read_as_the_docker_cli_writes_them() {
    let sb = Sandbox::new("ctx");
    tiny_unit(&sb);
    let id = sb.id.clone();
    let unit = format!("{id}/start");
    let port = free_port();
    let _fwd = forward(
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
        port,
    );
    let config = DockerConfig::new();
    let host = format!("tcp://127.0.0.1:{port}");
    config.docker(&[
        "context",
        "create",
        "remote",
        "--docker",
        &format!("host={host}"),
    ]);
    config.docker(&[
        "context",
        "create",
        "nowhere",
        "--docker",
        "host=tcp://127.0.0.1:1",
    ]);

    // DOCKER_CONTEXT names it; -d says which engine and why.
    let out = dstart(&sb, &config, &["-d", "run", &unit])
        .env("DOCKER_CONTEXT", "remote")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "Using the Docker engine at {host} (context `remote` from DOCKER_CONTEXT)"
        )),
        "{}",
        text(&out)
    );
    assert!(sb.exists(&format!("{id}-c")));

    // The process's DOCKER_HOST beats DOCKER_CONTEXT.
    let out = dstart(&sb, &config, &["run", &unit])
        .env("DOCKER_CONTEXT", "remote")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unix:///nonexistent/docker.sock"));

    // `docker context use` writes currentContext; DOCKER_CONTEXT beats it, --context beats both.
    config.docker(&["context", "use", "nowhere"]);
    let out = dstart(&sb, &config, &["run", &unit]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "error: cannot reach the Docker engine at `tcp://127.0.0.1:1`: the connection was refused"
        ),
        "{}",
        text(&out)
    );
    let out = dstart(&sb, &config, &["-d", "run", &unit])
        .env("DOCKER_CONTEXT", "remote")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = dstart(&sb, &config, &["-d", "--context", "default", "run", &unit])
        .env("DOCKER_CONTEXT", "nowhere")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "Using the Docker engine at unix:///var/run/docker.sock (context `default` from --context)"
        ),
        "{}",
        text(&out)
    );

    // An unknown context is a usage error that lists the known ones.
    let out = dstart(&sb, &config, &["run", &unit])
        .env("DOCKER_CONTEXT", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no Docker context `nope` (named by DOCKER_CONTEXT)\nhint: known contexts: default, nowhere, remote (`docker context ls`)\n"
    );
    // -H and --context together: exit 2.
    let out = dstart(
        &sb,
        &config,
        &["-H", &host, "--context", "remote", "run", &unit],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_context_brings_its_tls_material_and_skip_verify() {
    let sb = Sandbox::new("ctxtls");
    tiny_unit(&sb);
    let unit = format!("{}/start", sb.id);
    let certs = tempfile::tempdir().unwrap();
    let (_proxy, port) = tls_proxy(certs.path());
    let file = |f: &str| -> PathBuf { certs.path().join(f) };
    let config = DockerConfig::new();
    let host = format!("host=tcp://127.0.0.1:{port}");
    let client = format!(
        "cert={},key={}",
        file("cert.pem").display(),
        file("key.pem").display()
    );
    // The CA and a client certificate: the server is verified.
    config.docker(&[
        "context",
        "create",
        "verified",
        "--docker",
        &format!("{host},ca={},{client}", file("ca.pem").display()),
    ]);
    // No CA: verification against the system's roots fails ...
    config.docker(&[
        "context",
        "create",
        "noca",
        "--docker",
        &format!("{host},{client}"),
    ]);
    // ... unless the context skips it.
    config.docker(&[
        "context",
        "create",
        "skipped",
        "--docker",
        &format!("{host},{client},skip-tls-verify=true"),
    ]);
    // The material lives in the context store: the originals may go.
    for f in ["cert.pem", "key.pem"] {
        std::fs::remove_file(file(f)).unwrap();
    }
    for ctx in ["verified", "skipped"] {
        let out = dstart(&sb, &config, &["--context", ctx, "run", &unit])
            .output()
            .unwrap();
        assert!(out.status.success(), "{ctx}: {}", text(&out));
    }
    let out = dstart(&sb, &config, &["--context", "noca", "run", &unit])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach the Docker engine at `tcp://127.0.0.1:{port}`: "
        )) && stderr.contains("certificate"),
        "{stderr}"
    );
}

#[test]
fn ssh_engines_work_as_with_the_docker_cli() {
    let sb = Sandbox::new("ssh");
    tiny_unit(&sb);
    let id = sb.id.clone();
    let unit = format!("{id}/start");
    let sshd = Sshd::start();
    let config = DockerConfig::new();
    // The same address the Docker CLI takes, as -H and as a context.
    let out = dstart(&sb, &config, &["-d", "-H", &sshd.url(), "run", &unit])
        .env("PATH", sshd.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(sb.exists(&format!("{id}-c")));
    assert!(
        text(&out).contains(&format!("Connected to the Docker engine at {}", sshd.url())),
        "{}",
        text(&out)
    );
    config.docker(&[
        "context",
        "create",
        "over-ssh",
        "--docker",
        &format!("host={}", sshd.url()),
    ]);
    let out = dstart(&sb, &config, &["run", &unit])
        .env("PATH", sshd.path())
        .env("DOCKER_CONTEXT", "over-ssh")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // A user the server refuses: ssh's own words, exit 1.
    let refused = format!(
        "ssh://nobody-{}@127.0.0.1:{}",
        std::process::id(),
        sshd.port
    );
    let out = dstart(&sb, &config, &["-H", &refused, "run", &unit])
        .env("PATH", sshd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach the Docker engine at `{refused}`: `ssh "
        )) && stderr.contains("Permission denied"),
        "{stderr}"
    );
}
