//! Reaching the engine: unreachable addresses, the precedence of -H and `DOCKER_HOST`, tcp,
//! and tcp with TLS (client certificates), through forwarders to the engine socket (socat for
//! tcp, `tests/fixtures/tls_proxy.py` for TLS).

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Sandbox, base_image};

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
    support::make_ca(d);
    support::make_cert(
        d,
        "server-cert.pem",
        "server-key.pem",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    support::make_cert(
        d,
        "cert.pem",
        "key.pem",
        "/CN=client",
        "extendedKeyUsage=clientAuth",
    );
    let port = free_port();
    let proxy = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls_proxy.py"))
        .arg(port.to_string())
        .arg(d.join("server-cert.pem"))
        .arg(d.join("server-key.pem"))
        .arg(d.join("ca.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let _proxy = Forwarder(proxy);
    wait_listening(port);
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
