//! The shared fixtures work as the tests of other areas rely on: the database image
//! (initialises, serves over the network with a password, stops cleanly), the registry with
//! htpasswd auth, and the sshd that reaches this engine with `docker system dial-stdio`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{Registry, Sandbox, Sshd, Tags, base_image, docker, docker_output, postgres_image};

/// Waits until the container's log holds `text` `times` times (30 s at most).
fn wait_for_log(name: &str, text: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = docker_output(&["logs", name]);
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if log.matches(text).count() >= times {
            return log;
        }
        assert!(Instant::now() < deadline, "no `{text}` in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn postgres_image_serves_with_a_password_and_stops_cleanly() {
    let image = postgres_image();
    let sb = Sandbox::new("postgres");
    let db = sb.name("db");
    docker(&[
        "run",
        "-d",
        "--name",
        &db,
        "-e",
        "POSTGRES_PASSWORD=fixture-pw",
        image,
    ]);
    wait_for_log(&db, "database system is ready to accept connections", 1);
    docker(&[
        "exec",
        &db,
        "psql",
        "-U",
        "postgres",
        "-qc",
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')",
    ]);

    // Over the network, from another container of the same image: the password is needed.
    let ip = sb
        .inspect(&db, "{{.NetworkSettings.IPAddress}}")
        .expect("the database's address");
    let query = |password: &str| {
        docker_output(&[
            "run",
            "--rm",
            "-e",
            &format!("PGPASSWORD={password}"),
            image,
            "psql",
            "-h",
            &ip,
            "-U",
            "postgres",
            "-tAc",
            "SELECT v FROM t",
        ])
    };
    let out = query("fixture-pw");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "kept",
        "{out:?}"
    );
    let out = query("wrong");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
        "{out:?}"
    );

    // SIGINT (fast shutdown) from the image's STOPSIGNAL: exit 0, and no recovery next time.
    docker(&["stop", &db]);
    assert_eq!(sb.inspect(&db, "{{.State.ExitCode}}").as_deref(), Some("0"));
    docker(&["start", &db]);
    let log = wait_for_log(&db, "database system is ready to accept connections", 2);
    assert!(!log.contains("automatic recovery"), "{log}");
    assert!(log.contains("database system was shut down at"), "{log}");

    let tools = docker(&[
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "for c in pg_dump pg_restore psql python3 nginx; do command -v $c; done",
    ]);
    assert_eq!(tools.lines().count(), 5, "{tools}");
}

#[test]
fn registry_with_auth_refuses_anonymous_pushes_and_takes_logged_in_ones() {
    let registry = Registry::start_with_auth("fixture-user", "fixture-pw");
    let sb = Sandbox::new("regauth");
    let remote = format!("{}/{}/auth:1", registry.address(), sb.id);
    let _tags = Tags(vec![remote.clone()]);
    docker(&["tag", base_image(), &remote]);
    let config = tempfile::tempdir().unwrap();
    let push = || {
        Command::new("docker")
            .arg("--config")
            .arg(config.path())
            .args(["push", &remote])
            .output()
            .unwrap()
    };

    let out = push();
    assert!(!out.status.success(), "an anonymous push is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no basic auth credentials"), "{stderr}");
    let out = registry.login(config.path(), "fixture-user", "wrong");
    assert!(
        !out.status.success(),
        "a wrong password is refused: {out:?}"
    );

    let out = registry.login(config.path(), "fixture-user", "fixture-pw");
    assert!(out.status.success(), "{out:?}");
    let out = push();
    assert!(out.status.success(), "{out:?}");
    let tags = registry.get(&format!("/v2/{}/auth/tags/list", sb.id));
    assert!(tags.contains("\"1\""), "{tags}");
}

#[test]
fn sshd_reaches_this_engine_through_the_docker_cli() {
    let sshd = Sshd::start();
    let out = Command::new("docker")
        .args([
            "-H",
            &sshd.url(),
            "version",
            "--format",
            "{{.Server.APIVersion}}",
        ])
        .env("PATH", sshd.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let local = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), local);

    // Key auth only: without the fixture's key, the same user is refused.
    let out = Command::new("/usr/bin/ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityFile=/dev/null",
            "-p",
            &sshd.port.to_string(),
            &format!("{}@127.0.0.1", sshd.user()),
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
}
