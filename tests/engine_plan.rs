//! `run --plan`, `status` and `logs` against the real engine: the plan names what `start`
//! would do and why, and changes nothing (the engine's events prove it).

mod support;

use support::{Sandbox, base_image};

/// A unit with one long-running container `{id}-web` with `GREETING` and a published port.
fn write_web(sb: &Sandbox, greeting: &str, port: &str) -> String {
    let id = &sb.id;
    let web = format!("{id}-web");
    sb.unit(
        id,
        "start",
        &format!(
            "{web}:\n  image: {base}\n  command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n  env: {{GREETING: {greeting}, API_TOKEN: s3cret-{id}}}\n  ports: ['127.0.0.1::{port}']\n---\n- {web}: {{command: start}}\n",
            base = base_image()
        ),
    );
    web
}

/// Runs `dstart ARGS` and returns its output with the engine events about the sandbox's
/// objects that happened meanwhile.
fn watched(sb: &Sandbox, args: &[&str]) -> (String, Vec<String>) {
    let since = support::epoch_now();
    let out = sb.ok(args);
    let until = support::epoch_now() + 0.5;
    std::thread::sleep(std::time::Duration::from_millis(600));
    let ours = support::events(
        since,
        until,
        &[],
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    )
    .into_iter()
    .filter(|l| l.contains(&sb.id))
    .collect();
    (out, ours)
}

/// `run --plan`, with the proof that it changed nothing.
fn plan(sb: &Sandbox, format: &str) -> String {
    let command = format!("{}/start", sb.id);
    let (out, events) = watched(sb, &["run", "--plan", "--format", format, &command]);
    assert!(events.is_empty(), "--plan touched the engine: {events:#?}");
    out
}

#[test]
fn plan_names_what_start_would_do_and_changes_nothing() {
    let sb = Sandbox::new("plan");
    let web = write_web(&sb, "hello", "80");

    assert_eq!(plan(&sb, "text"), format!("create {web} (absent)\n"));
    assert!(!sb.exists(&web), "the plan created nothing");

    sb.ok(&["run", &format!("{}/start", sb.id)]);
    assert_eq!(
        plan(&sb, "text"),
        format!("keep {web} (running, unchanged)\n")
    );

    web_changed(&sb, &web);

    support::docker(&["stop", "-t", "1", &web]);
    write_web(&sb, "changed", "81");
    assert_eq!(
        plan(&sb, "text"),
        format!("start {web} (not running, unchanged)\n")
    );
    let json: serde_json::Value = serde_json::from_str(&plan(&sb, "json")).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "order": "start",
            "container": web,
            "action": "start",
            "reasons": ["not running", "unchanged"],
        }])
    );
}

#[test]
fn plan_follows_nested_unit_orders_and_names_their_unit() {
    let sb = Sandbox::new("plannest");
    let id = sb.id.clone();
    let db = format!("{id}-db");
    sb.unit(
        &db,
        "start",
        &format!(
            "{db}:\n  image: {base}\n  command: [sleep, '600']\n---\n- {db}: {{command: start}}\n",
            base = base_image()
        ),
    );
    let web = write_web(&sb, "hello", "80");
    sb.unit(
        &id,
        "all",
        &format!("{{}}\n---\n- host: {{command: unit, unit: '{db}/start'}}\n- host: {{command: unit, unit: '{id}/start'}}\n"),
    );
    let command = format!("{id}/all");
    let (out, events) = watched(&sb, &["run", "--plan", &command]);
    assert!(events.is_empty(), "--plan touched the engine: {events:#?}");
    assert_eq!(
        out,
        format!(
            "unit {db}/start\n{db}/start: create {db} (absent)\nunit {id}/start\n{id}/start: create {web} (absent)\n"
        )
    );
    let (out, _) = watched(&sb, &["run", "--plan", "--format", "json", &command]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json[1],
        serde_json::json!({
            "order": "start",
            "container": db,
            "action": "create",
            "reasons": ["absent"],
            "unit": format!("{db}/start"),
        })
    );
    assert!(json[0].get("unit").is_none(), "{json}");
}

/// Changed env and ports name their keys; the values (a token) never show.
fn web_changed(sb: &Sandbox, web: &str) {
    write_web(sb, "changed", "80");
    assert_eq!(
        plan(sb, "text"),
        format!("recreate {web} (configuration changed: env.GREETING)\n")
    );
    write_web(sb, "changed", "81");
    let out = plan(sb, "json");
    assert!(!out.contains("s3cret"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "order": "start",
            "container": web,
            "action": "recreate",
            "reasons": ["configuration changed: env.GREETING, ports"],
        }])
    );
    // `start` carries the same decision out and says why.
    let (out, events) = watched(sb, &["run", &format!("{}/start", sb.id)]);
    assert!(
        out.contains(&format!(
            "Recreated container {web} because its configuration changed (env.GREETING, ports)"
        )),
        "{out}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("container create")),
        "the engine saw the recreate: {events:#?}"
    );
    assert_eq!(
        plan(sb, "text"),
        format!("keep {web} (running, unchanged)\n")
    );
}

#[test]
fn plan_and_status_show_a_foreign_container() {
    let sb = Sandbox::new("planf");
    let id = sb.id.clone();
    let other = format!("{id}-other");
    support::docker(&[
        "run",
        "-d",
        "--name",
        &other,
        base_image(),
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    sb.unit(
        &id,
        "start",
        &format!(
            "{other}:\n  image: {base}\n---\n- {other}: {{command: start}}\n- {other}: {{command: stop}}\n",
            base = base_image()
        ),
    );
    assert_eq!(
        plan(&sb, "text"),
        format!("keep {other} (running, not created by dstart)\nstop {other} (running)\n")
    );
    let (out, _) = watched(&sb, &["status", &id]);
    assert!(out.contains("not created by dstart"), "{out}");
    assert!(sb.running(&other));
}

#[test]
fn status_shows_state_ports_and_drift_as_a_table_and_json() {
    let sb = Sandbox::new("status");
    let id = sb.id.clone();
    let web = write_web(&sb, "hello", "80");
    let (table, events) = watched(&sb, &["status", &id]);
    assert!(events.is_empty(), "{events:#?}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("UNIT"), "{table}");
    assert!(
        lines[1].contains(&web) && lines[1].contains("absent"),
        "{table}"
    );

    sb.ok(&["run", &format!("{id}/start")]);
    write_web(&sb, "changed", "80");
    let port = sb
        .inspect(
            &web,
            "{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}",
        )
        .unwrap();
    let (table, events) = watched(&sb, &["status", &id]);
    assert!(events.is_empty(), "{events:#?}");
    assert!(table.contains("running"), "{table}");
    assert!(
        table.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "{table}"
    );
    assert!(
        table.contains("configuration changed: env.GREETING"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["status", "--format", "json", &id])).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "unit": id,
            "container": web,
            "state": "running",
            "health": null,
            "image": base_image(),
            "ports": [format!("127.0.0.1:{port}->80/tcp")],
            "drift": ["configuration changed: env.GREETING"],
        }])
    );
}

#[test]
fn logs_interleave_the_containers_in_time_order() {
    let sb = Sandbox::new("logs");
    let id = sb.id.clone();
    let (a, b) = (format!("{id}-a"), format!("{id}-b"));
    sb.unit(
        &id,
        "start",
        &format!(
            "{a}:\n  image: {base}\n  command: [sh, -c, 'echo a1; sleep 2; echo a2; sleep 60']\n{b}:\n  image: {base}\n  command: [sh, -c, 'sleep 1; echo b1; sleep 2; echo b2; sleep 60']\n---\n- {a}: {{command: start}}\n- {b}: {{command: start}}\n",
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    // b starts less than a second after a: a1 < b1 < a2 < b2.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let out = sb.ok(&["logs", &id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{a} | a1"),
            format!("{b} | b1"),
            format!("{a} | a2"),
            format!("{b} | b2"),
        ],
        "{}",
        sb.ok(&["logs", "-t", &id])
    );
    let out = sb.ok(&["logs", "--tail", "1", "-t", &id, &b]);
    assert!(out.starts_with(&format!("{b} | 20")), "{out}");
    assert!(out.trim_end().ends_with(" b2"), "{out}");
    let (_, err) = sb.fails(&["logs", &id, "nope"], 2);
    assert!(err.contains("`nope` is no container"), "{err}");
}

#[test]
fn logs_follow_until_the_containers_stop() {
    let sb = Sandbox::new("logsf");
    let id = sb.id.clone();
    let job = format!("{id}-job");
    sb.unit(
        &id,
        "start",
        &format!(
            "{job}:\n  image: {base}\n  command: [sh, -c, 'sleep 1; for i in 1 2 3; do echo x$i; sleep 0.3; done']\n---\n- {job}: {{command: start}}\n",
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let out = sb.ok(&["logs", "-f", &id]);
    assert_eq!(
        out,
        format!("{job} | x1\n{job} | x2\n{job} | x3\n"),
        "-f printed the lines as they came and ended with the container"
    );
}
