//! Safe with a real stateful service (issue 17): `PostgreSQL` 15 (`support::postgres_image()`,
//! STOPSIGNAL SIGINT) in a unit with an application container. The generated stop shuts it
//! down cleanly, the generated restart waits for it before the application asks, and a
//! container that dstart did not make survives `purge` with its data.

mod support;

use support::{Sandbox, base_image, docker, docker_output};

const READY: &str = "database system is ready to accept connections";

/// `units/<id>/start.yaml`: `<id>-db` (`PostgreSQL`, `stop_timeout: 30`, ready when it logs so)
/// then `<id>-app`, a client from the same image that asks the database once when it starts
/// (`first request: ok` or `first request: failed` in its log), then idles until it is stopped
/// (SIGINT, the image's STOPSIGNAL).
fn db_and_app(sb: &Sandbox) -> (String, String) {
    let id = &sb.id;
    let db = format!("{id}-db");
    let app = format!("{id}-app");
    let image = support::postgres_image();
    sb.unit(
        id,
        "start",
        &format!(
            r#"{db}:
  image: {image}
  env: {{POSTGRES_PASSWORD: pw}}
  volumes: ['{id}-data:/var/lib/postgresql/data']
  stop_timeout: 30
{app}:
  image: {image}
  command: [sh, -c, "trap 'exit 0' TERM INT; if psql postgresql://postgres:pw@{db}/postgres -tAc 'SELECT 1' >/dev/null 2>&1; then echo 'first request: ok'; else echo 'first request: failed'; fi; while true; do sleep 1; done"]
---
- {db}: {{command: start, ready: {{log: {READY}, timeout: 60}}}}
- {app}: {{command: start, ready: {{log: 'first request', timeout: 30}}}}
"#
        ),
    );
    (db, app)
}

/// The output of the container's current run.
fn current_log(container: &str) -> String {
    let since = docker(&["inspect", "-f", "{{.State.StartedAt}}", container]);
    let out = docker_output(&["logs", "--since", &since, container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The files of a volume, read through a throwaway container.
fn read_volume(volume: &str, files: &[&str]) -> String {
    let mount = format!("{volume}:/v");
    let paths: Vec<String> = files.iter().map(|f| format!("/v/{f}")).collect();
    let mut args = vec!["run", "--rm", "-v", &mount, base_image(), "cat"];
    args.extend(paths.iter().map(String::as_str));
    docker(&args)
}

#[test]
fn generated_stop_shuts_postgresql_down_cleanly() {
    let sb = Sandbox::new("sfstop");
    let id = sb.id.clone();
    let (db, app) = db_and_app(&sb);
    sb.ok(&["run", &format!("{id}/start")]);
    assert!(current_log(&app).contains("first request: ok"));

    sb.ok(&["run", &format!("{id}/stop")]);
    assert!(!sb.running(&db));
    // SIGINT and the time to use it: a clean shutdown, not a kill (137).
    assert_eq!(sb.inspect(&db, "{{.State.ExitCode}}").as_deref(), Some("0"));
    assert_eq!(
        sb.inspect(&app, "{{.State.ExitCode}}").as_deref(),
        Some("0")
    );

    sb.ok(&["run", &format!("{id}/start")]);
    let log = current_log(&db);
    assert!(log.contains(READY), "{log}");
    for recovery in ["not properly shut down", "automatic recovery"] {
        assert!(
            !log.contains(recovery),
            "`{recovery}` after a clean stop:\n{log}"
        );
    }
    sb.ok(&["run", &format!("{id}/purge")]);
}

#[test]
fn generated_restart_waits_for_postgresql_before_the_app_asks() {
    let sb = Sandbox::new("sfrestart");
    let id = sb.id.clone();
    let (db, app) = db_and_app(&sb);
    sb.ok(&["run", &format!("{id}/start")]);

    let printed = sb.ok(&["run", "--print-unit", &format!("{id}/restart")]);
    assert!(printed.contains("timeout: 30"), "{printed}");
    assert!(printed.contains(READY), "{printed}");

    sb.ok(&["run", &format!("{id}/restart")]);
    // The database was ready before the application started again: its first request of the
    // new run succeeded.
    let log = current_log(&app);
    assert!(log.contains("first request: ok"), "{log}");
    assert!(current_log(&db).contains(READY));
    sb.ok(&["run", &format!("{id}/purge")]);
}

#[test]
fn purge_leaves_a_foreign_container_of_the_units_name_and_its_volume() {
    let sb = Sandbox::new("sfforeign");
    let id = sb.id.clone();
    let (db, app) = db_and_app(&sb);
    // Someone's own database, made by hand under the unit's name: its data is in the image's
    // anonymous volume, with a file of theirs beside it.
    docker(&[
        "run",
        "-d",
        "--name",
        &db,
        "-e",
        "POSTGRES_PASSWORD=pw",
        support::postgres_image(),
    ]);
    let volume = docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &db]);
    assert!(!volume.is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !current_log(&db).contains(READY) {
        assert!(std::time::Instant::now() < deadline, "{}", current_log(&db));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    docker(&[
        "exec",
        &db,
        "sh",
        "-c",
        "echo precious > /var/lib/postgresql/data/theirs",
    ]);

    // Started as it is, with a warning: it cannot be kept in line with the unit.
    let out = sb.dstart(&["run", &format!("{id}/start")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot be kept in line"), "{stderr}");
    assert!(current_log(&app).contains("first request: ok"));

    // The rest is torn down; the foreign container and its volume stay, and the run says so.
    let (_, stderr) = sb.fails(&["run", &format!("{id}/purge")], 1);
    assert!(stderr.contains(&format!("container {db}")), "{stderr}");
    assert!(stderr.contains("dstart.unit"), "{stderr}");
    assert!(sb.exists(&db), "the foreign container is still there");
    assert!(!sb.exists(&app), "the unit's own container is removed");
    let kept = read_volume(&volume, &["theirs", "PG_VERSION"]);
    assert_eq!(kept, "precious\n15");
    docker(&["rm", "-f", "-v", &db]);
}

/// The engine takes only absolute bind paths: a relative one (`./site`) resolves against the
/// configuration directory made absolute, whatever the form of `-c`.
#[test]
fn relative_bind_paths_are_absolute_for_any_form_of_the_configuration_directory() {
    let sb = Sandbox::new("sfbind");
    let id = sb.id.clone();
    let web = format!("{id}-web");
    sb.write("site/index.html", "the bound page\n");
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}:\n  image: {}\n  command: [sh, -c, \"cat /site/index.html; trap 'exit 0' TERM; while true; do sleep 1; done\"]\n  volumes: ['./site:/site:ro']\n---\n- {web}: {{command: start, ready: {{log: the bound page, timeout: 10}}}}\n",
            base_image()
        ),
    );
    let conf = std::fs::canonicalize(sb.conf()).unwrap();
    let dir_name = conf.file_name().unwrap().to_string_lossy().into_owned();
    let parent = conf.parent().unwrap().to_path_buf();
    for (cwd, c) in [
        (parent.clone(), dir_name.clone()),
        (parent.clone(), format!("./{dir_name}")),
        (conf.join("units"), format!("../../{dir_name}")),
    ] {
        for command in ["start", "purge"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_dstart"))
                .args(["-c", &c, "run", &format!("{id}/{command}")])
                .env_remove("DOCKERSTRA_CONF")
                .current_dir(&cwd)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "-c {c} {command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if command == "start" {
                let source = sb.inspect(&web, "{{range .Mounts}}{{.Source}}{{end}}");
                assert_eq!(
                    source.as_deref(),
                    Some(conf.join("site").to_str().unwrap()),
                    "-c {c}"
                );
            }
        }
    }
}

/// Data migrated into a named volume made by hand: the unit uses it, `purge` removes the
/// unit's container but not the volume, and says so.
#[test]
fn purge_leaves_a_named_volume_made_by_hand() {
    let sb = Sandbox::new("sfvolume");
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let volume = format!("{id}-vol");
    docker(&["volume", "create", &volume]);
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        base_image(),
        "sh",
        "-c",
        "echo migrated > /v/data",
    ]);
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}:\n  image: {}\n  command: [sh, -c, \"cat /data/data; trap 'exit 0' TERM; while true; do sleep 1; done\"]\n  volumes: ['{volume}:/data']\n---\n- {web}: {{command: start, ready: {{log: migrated, timeout: 10}}}}\n",
            base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let (_, stderr) = sb.fails(&["run", &format!("{id}/purge")], 1);
    assert!(stderr.contains(&format!("volume {volume}")), "{stderr}");
    assert!(!sb.exists(&web), "the unit's container is removed");
    let kept = read_volume(&volume, &["data"]);
    assert_eq!(kept, "migrated");
}
