//! Order features against the real engine: `ready`, `parallel` blocks, nested `unit` orders,
//! mandatory API environment labels and `help --service`.

mod support;

use std::fmt::Write as _;
use std::time::Instant;

use support::{Sandbox, base_image};

#[test]
fn ready_waits_for_a_log_line_and_for_health() {
    let sb = Sandbox::new("ready");
    let id = sb.id.clone();
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{id}-slow:
  image: {base}
  command: ["sh", "-c", "sleep 1; echo 'service is up'; touch /tmp/ok; trap 'exit 0' TERM; while true; do sleep 1; done"]
  creation:
    healthcheck: {{test: "test -e /tmp/ok", interval: 0.5, retries: 2}}
---
- {id}-slow: {{command: start, ready: {{log: "is up$", timeout: 20}}}}
- {id}-slow: {{command: start, ready: {{healthy: true, timeout: 20}}}}
"#,
            base = base_image()
        ),
    );
    let out = sb.ok(&["run", &format!("{id}/start")]);
    assert!(
        out.contains("is ready (its output matched `is up$`)"),
        "{out}"
    );
    assert!(out.contains("is healthy"), "{out}");
    assert_eq!(
        sb.inspect(&format!("{id}-slow"), "{{.State.Health.Status}}")
            .as_deref(),
        Some("healthy")
    );
}

#[test]
fn ready_log_after_a_restart_waits_for_the_line_of_the_new_run() {
    let sb = Sandbox::new("readyrun");
    let id = sb.id.clone();
    let spec = format!(
        "{id}-svc:\n  image: {base}\n  command: [\"sh\", \"-c\", \"sleep 3; echo 'service is up'; trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
        base = base_image()
    );
    sb.unit(
        &id,
        "start",
        &format!(
            "{spec}---\n- {id}-svc: {{command: start, ready: {{log: 'is up$', timeout: 30}}}}\n"
        ),
    );
    sb.unit(
        &id,
        "again",
        &format!("{spec}---\n- {id}-svc: {{command: start, restart: true, ready: {{log: 'is up$', timeout: 30}}}}\n"),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let first = sb.inspect(&format!("{id}-svc"), "{{.State.StartedAt}}");
    let started = Instant::now();
    let out = sb.ok(&["run", &format!("{id}/again")]);
    let took = started.elapsed().as_secs_f64();
    assert_ne!(
        sb.inspect(&format!("{id}-svc"), "{{.State.StartedAt}}"),
        first,
        "restarted"
    );
    assert!(out.contains("is ready (its output matched"), "{out}");
    assert!(
        took >= 3.0,
        "the line of the previous run does not count: ready after {took:.1}s, the new run prints it after 3 s"
    );
}

/// A container that prints a line and exits with 2 a second after it starts, waited for with
/// `ready` (a 60 s timeout): the order fails at once and shows the last log lines.
fn ready_fails_fast(test: &str, ready: &str, extra: &str) {
    let sb = Sandbox::new(test);
    let id = sb.id.clone();
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-crash:\n  image: {base}\n  command: [\"sh\", \"-c\", \"sleep 1; echo cannot bind port; exit 2\"]\n{extra}---\n- {id}-crash: {{command: start, ready: {ready}}}\n",
            base = base_image()
        ),
    );
    let started = Instant::now();
    let (_, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
    assert!(
        started.elapsed().as_secs() < 30,
        "fails fast, not after the 60 s timeout"
    );
    assert!(stderr.contains("exited with code 2"), "{stderr}");
    assert!(
        stderr.contains("cannot bind port"),
        "its last log lines are shown: {stderr}"
    );
}

#[test]
fn ready_http_fails_at_once_when_the_container_exits() {
    ready_fails_fast(
        "readyhttp",
        "{http: 'http://127.0.0.1:9/', timeout: 60}",
        "  ports: ['80']\n",
    );
}

#[test]
fn ready_log_fails_at_once_when_the_container_exits() {
    ready_fails_fast("readylog", "{log: 'never printed', timeout: 60}", "");
}

#[test]
fn ready_healthy_fails_at_once_when_the_container_exits() {
    ready_fails_fast(
        "readyhealth",
        "{healthy: true, timeout: 60}",
        "  creation:\n    healthcheck: {test: 'false', interval: 0.5, retries: 100}\n",
    );
}

/// A container whose main process ignores SIGTERM (a PID 1 without a handler does), so a
/// stop takes the whole timeout, and a unit command `again` with `order` on it.
fn stubborn(sb: &Sandbox, order: &str) -> String {
    let id = &sb.id;
    let name = format!("{id}-svc");
    let spec = format!(
        "{name}:\n  image: {base}\n  command: [\"sleep\", \"1000\"]\n",
        base = base_image()
    );
    sb.unit(
        id,
        "start",
        &format!("{spec}---\n- {name}: {{command: start}}\n"),
    );
    sb.unit(id, "again", &format!("{spec}---\n- {name}: {order}\n"));
    name
}

#[test]
fn start_with_restart_restarts_a_running_container() {
    let sb = Sandbox::new("restart");
    let id = sb.id.clone();
    let name = stubborn(&sb, "{command: start, restart: true, timeout: 0}");
    sb.ok(&["run", &format!("{id}/start")]);
    let first = sb.inspect(&name, "{{.Id}} {{.State.StartedAt}}").unwrap();
    let out = sb.ok(&["run", &format!("{id}/again")]);
    assert!(out.contains(&format!("Started container {name}")), "{out}");
    assert!(sb.running(&name));
    let second = sb.inspect(&name, "{{.Id}} {{.State.StartedAt}}").unwrap();
    assert_ne!(first, second, "a new StartedAt");
    assert_eq!(
        first.split(' ').next(),
        second.split(' ').next(),
        "the same container"
    );
}

#[test]
fn start_restart_gives_the_container_the_orders_timeout_to_stop() {
    let sb = Sandbox::new("restartto");
    let id = sb.id.clone();
    stubborn(&sb, "{command: start, restart: true, timeout: 3}");
    sb.ok(&["run", &format!("{id}/start")]);
    let started = Instant::now();
    sb.ok(&["run", &format!("{id}/again")]);
    let took = started.elapsed().as_secs_f64();
    assert!(
        (3.0..8.0).contains(&took),
        "SIGTERM is ignored, so the stop takes the 3 s timeout (not 0, not 10): {took:.1}s"
    );
}

/// The time of the first log line that contains `text`.
fn logged_at(out: &str, text: &str) -> chrono::NaiveDateTime {
    let line = out
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with `{text}`: {out}"));
    let stamp = line.split(": ").next().unwrap();
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S,%3f").unwrap()
}

#[test]
fn wait_sleeps_after_the_order() {
    let sb = Sandbox::new("wait");
    let id = sb.id.clone();
    let name = format!("{id}-w");
    sb.unit(
        &id,
        "start",
        &format!(
            "{name}:\n  image: {base}\n  command: [\"sleep\", \"1000\"]\n---\n- {name}: {{command: start, wait: 2}}\n- host: {{command: execute, run: ['true']}}\n",
            base = base_image()
        ),
    );
    let out = sb.ok(&["run", &format!("{id}/start")]);
    let slept = logged_at(&out, "Executing step execute on host")
        - logged_at(&out, &format!("Started container {name}"));
    assert!(
        slept >= chrono::Duration::milliseconds(2000),
        "the next order starts 2 s later: {slept}"
    );
}

#[test]
fn parallel_block_runs_orders_concurrently() {
    let sb = Sandbox::new("par");
    let id = sb.id.clone();
    let mut containers = String::new();
    let mut orders = String::new();
    for i in 0..4 {
        let _ = writeln!(
            containers,
            "{id}-j{i}:\n  image: {base}\n  command: [\"sh\", \"-c\", \"sleep 2\"]",
            base = base_image()
        );
        let _ = writeln!(orders, "    - {id}-j{i}: {{command: start, attach: true}}");
    }
    sb.unit(
        &id,
        "start",
        &format!("{containers}---\n- parallel:\n{orders}"),
    );
    let started = Instant::now();
    sb.ok(&["run", &format!("{id}/start")]);
    let took = started.elapsed().as_secs_f64();
    assert!(took < 7.0, "four 2 s jobs at once took {took:.1}s");
    // A failure in the block fails the run, after the others finished.
    sb.unit(
        &id,
        "start",
        &format!(
            "{containers}{id}-bad:\n  image: {base}\n  command: [\"sh\", \"-c\", \"exit 9\"]\n---\n- parallel:\n{orders}    - {id}-bad: {{command: start, attach: true}}\n- host: {{command: execute, run: [echo, after]}}\n",
            base = base_image()
        ),
    );
    let (stdout, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
    assert!(stderr.contains("exit code 9"), "{stderr}");
    assert!(
        !stdout.contains("Executing step execute on host"),
        "{stdout}"
    );
}

#[test]
fn unit_order_runs_another_unit_command() {
    let sb = Sandbox::new("nested");
    let id = sb.id.clone();
    sb.unit(
        &format!("{id}-db"),
        "start",
        &format!(
            "{id}-db:\n  image: {}\n  command: [\"true\"]\n---\n- {id}-db: {{command: create}}\n",
            base_image()
        ),
    );
    sb.unit(
        &id,
        "start",
        &format!("{{}}\n---\n- host: {{command: unit, unit: '{id}-db/start'}}\n"),
    );
    let out = sb.ok(&["run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!("Running unit command {id}-db/start")),
        "{out}"
    );
    assert!(sb.exists(&format!("{id}-db")));
    // A cycle of unit orders, or a nested unit that cannot load, is refused before anything
    // runs (configuration errors, exit 2).
    sb.unit(
        &id,
        "loop",
        &format!("{{}}\n---\n- host: {{command: execute, run: [touch, ran]}}\n- host: {{command: unit, unit: '{id}/loop'}}\n"),
    );
    let (_, stderr) = sb.fails(&["run", &format!("{id}/loop")], 2);
    assert!(stderr.contains("form a cycle"), "{stderr}");
    assert!(!sb.conf().join("ran").exists(), "nothing ran");
    sb.unit(
        &id,
        "broken",
        &format!("{{}}\n---\n- host: {{command: unit, unit: '{id}-db/nope'}}\n"),
    );
    let (_, stderr) = sb.fails(&["run", &format!("{id}/broken")], 2);
    assert!(stderr.contains("the `unit` order runs"), "{stderr}");
    assert!(stderr.contains("caused by: no unit command"), "{stderr}");
}

#[test]
fn a_bad_nested_unit_fails_the_run_before_the_first_engine_call() {
    let sb = Sandbox::new("nestbad");
    let id = sb.id.clone();
    let base = base_image();
    // The nested unit's third line holds a bad value: only a run loads it.
    sb.unit(
        &format!("{id}-db"),
        "start",
        &format!(
            "{id}-db:\n  image: {base}\n  stop_timeout: -1\n---\n- {id}-db: {{command: create}}\n"
        ),
    );
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-web:\n  image: {base}\n  command: [\"true\"]\n---\n- {id}-web: {{command: create}}\n- host: {{command: unit, unit: '{id}-db/start'}}\n"
        ),
    );
    let since = support::epoch_now();
    let (_, stderr) = sb.fails(&["run", &format!("{id}/start")], 2);
    let until = support::epoch_now() + 0.5;
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(
        stderr.contains(&format!("units/{id}-db/start.yaml:3")),
        "{stderr}"
    );
    assert!(stderr.contains("stop_timeout"), "{stderr}");
    let ours: Vec<String> = support::events(
        since,
        until,
        &[],
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    )
    .into_iter()
    .filter(|l| l.contains(&id))
    .collect();
    assert!(ours.is_empty(), "the first order ran: {ours:#?}");
    assert!(!sb.exists(&format!("{id}-web")));
}

#[test]
fn mandatory_environment_labels_block_create() {
    let sb = Sandbox::new("mand");
    let id = sb.id.clone();
    sb.write(
        "services/api/Dockerfile",
        &format!(
            "FROM {}\nLABEL api.ENV.API_KEY=\"\" api.ENV.API_KEY.description=\"key for the upstream API\" api.ENV.API_KEY.mandatory=\"true\"\nEXPOSE 8080\nVOLUME /state\n",
            base_image()
        ),
    );
    sb.write(
        "services/api/README.md",
        "# api\n\nA service with a documented API.\n",
    );
    let unit = |env: &str| {
        format!(
            "{id}-api:\n  build: {{path: services/api, tag: '{id}/api'}}\n  command: [\"true\"]\n{env}---\n- {id}-api: {{command: create}}\n"
        )
    };
    sb.unit(&id, "start", &unit(""));
    let (_, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
    assert!(
        stderr.contains("needs the environment variable `API_KEY` (key for the upstream API)"),
        "{stderr}"
    );
    assert!(!sb.exists(&format!("{id}-api")), "nothing was created");
    sb.unit(&id, "start", &unit("  env: {API_KEY: secret}\n"));
    sb.ok(&["run", &format!("{id}/start")]);
    assert!(sb.exists(&format!("{id}-api")));

    let help = sb.ok(&["help", "--service", "api"]);
    assert!(help.starts_with("# api\n"), "{help}");
    assert!(help.contains(&format!("Image: {id}/api:latest")), "{help}");
    assert!(help.contains("API_KEY: key for the upstream API"), "{help}");
    assert!(help.contains("Ports: 8080/tcp"), "{help}");
    assert!(help.contains("Volumes: /state"), "{help}");
}

#[test]
fn a_container_imported_into_another_unit_is_shared_not_recreated() {
    let sb = Sandbox::new("shared");
    let id = sb.id.clone();
    let db = format!("{id}-db");
    sb.write("www/index.html", "from-the-shared-db\n");
    sb.unit(
        &format!("{id}-a"),
        "start",
        &format!(
            "{db}:\n  image: {base}\n  command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n  volumes: ['./www:/www:ro']\n---\n- {db}: {{command: start}}\n",
            base = base_image()
        ),
    );
    sb.unit(
        &format!("{id}-b"),
        "start",
        &format!(
            "import: {id}-a/start\n{id}-client:\n  image: {base}\n  command: [\"wget\", \"-q\", \"-O-\", \"http://{db}/\"]\n---\n- {db}: {{command: start}}\n- {id}-client: {{command: start, attach: true}}\n",
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}-a/start")]);
    let first = sb.inspect(&db, "{{.Id}}").unwrap();
    let out = sb.ok(&["-v", "run", &format!("{id}-b/start")]);
    assert!(
        out.contains("from-the-shared-db"),
        "the client of unit b reaches the shared container by its key: {out}"
    );
    assert_eq!(
        sb.inspect(&db, "{{.Id}}").unwrap(),
        first,
        "not recreated by the second unit"
    );
    sb.ok(&["run", &format!("{id}-a/start")]);
    assert_eq!(
        sb.inspect(&db, "{{.Id}}").unwrap(),
        first,
        "nor by the first one again"
    );
    let networks = sb
        .inspect(
            &db,
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        )
        .unwrap();
    assert!(
        networks.contains(&format!("dstart-{id}-a"))
            && networks.contains(&format!("dstart-{id}-b")),
        "{networks}"
    );
}

#[test]
fn ready_http_fails_when_the_container_exits_while_a_request_hangs() {
    let sb = Sandbox::new("readyhang");
    let id = sb.id.clone();
    // `sink` accepts the connection and never answers; `app` exits while the request waits.
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{id}-sink:
  image: {base}
  command: ["sh", "-c", "sleep 3600 | nc -l -p 80"]
  ports: ["127.0.0.1::80"]
{id}-app:
  image: {base}
  command: ["sh", "-c", "sleep 3; echo giving up; exit 3"]
---
- {id}-sink: {{command: start}}
- {id}-app: {{command: start, ready: {{http: "http://127.0.0.1:[[port 80]]({id}-sink)/", timeout: 60}}}}
"#,
            base = base_image()
        ),
    );
    let started = Instant::now();
    let (_, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
    let took = started.elapsed().as_secs_f64();
    assert!(
        took < 15.0,
        "the exit ends the wait, not the request's 30 s limit ({took}s): {stderr}"
    );
    assert!(stderr.contains("exited with code 3"), "{stderr}");
    assert!(stderr.contains("giving up"), "{stderr}");
}
