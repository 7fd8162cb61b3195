//! Swarm mode against the real engine (issue 20): a one-node swarm that each test joins
//! through `support::Swarm` (a machine-wide lock; left again when the test ends, also when it
//! fails).

mod support;

use support::{Sandbox, Swarm, base_image, docker, docker_output, swarm_state};

/// A unit of one web server as a service: a named volume, a health check, `deploy:` keys.
/// `greeting` changes its configuration.
fn web_unit(sb: &Sandbox, greeting: &str) {
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-web:
  image: {base}
  command: ["sh", "-c", "echo $GREETING > /www/index.html && exec httpd -f -p 80 -h /www"]
  env: {{GREETING: {greeting}}}
  volumes: ["{id}-data:/www"]
  stop_timeout: 1
  creation:
    healthcheck: {{test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"], interval: 1, timeout: 2, retries: 30}}
  deploy:
    replicas: 2
    resources: {{limits: {{cpus: 0.5, memory: 64m}}}}
    update_config: {{parallelism: 1, delay: 0}}
---
- {id}-web: {{command: start, ready: {{healthy: true, timeout: 90}}}}
"#,
            base = base_image()
        ),
    );
}

fn service(name: &str, format: &str) -> String {
    docker(&["service", "inspect", name, "--format", format])
}

fn service_exists(name: &str) -> bool {
    docker_output(&["service", "inspect", name])
        .status
        .success()
}

/// `(id, desired state, state, status timestamp)` of the tasks of a service (a task that the
/// engine prunes between the listing and its inspect is left out).
fn tasks(name: &str) -> Vec<(String, String, String, String)> {
    let ids = docker(&["service", "ps", "-q", "--no-trunc", name]);
    ids.split_whitespace()
        .filter_map(|id| {
            let out = docker_output(&[
                "inspect",
                id,
                "--format",
                "{{.DesiredState}} {{.Status.State}} {{.Status.Timestamp}}",
            ]);
            if !out.status.success() {
                return None;
            }
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let mut parts = line.split_whitespace();
            Some((
                id.to_string(),
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn running_tasks(name: &str) -> Vec<String> {
    tasks(name)
        .into_iter()
        .filter(|(_, desired, state, _)| desired == "running" && state == "running")
        .map(|(id, ..)| id)
        .collect()
}

#[test]
fn keys_without_swarm_meaning_are_refused_before_anything_is_deployed() {
    let sb = Sandbox::new("swref");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            "{id}-db:\n  image: {base}\n  command: [sleep, '600']\n{id}-web:\n  image: {base}\n  command: [sleep, '600']\n  startup:\n    links: [{id}-db]\n---\n- {id}-db: {{command: start}}\n- {id}-web: {{command: start}}\n",
            base = base_image()
        ),
    );
    let (_, err) = sb.fails(
        &["--orchestrator", "swarm", "run", &format!("{id}/start")],
        2,
    );
    assert!(
        err.contains(&format!("units/{id}/start.yaml:8")),
        "names the file and line: {err}"
    );
    assert!(
        err.contains("`startup.links` has no meaning in swarm mode"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(!sb.exists(&format!("{id}-db")), "nothing was deployed");
    // The environment files choose swarm mode as well.
    sb.write("environments/00-swarm.yaml", "DSTART_ORCHESTRATOR: swarm\n");
    let (_, err) = sb.fails(&["run", &format!("{id}/start")], 2);
    assert!(err.contains("`startup.links`"), "{err}");
    // `--orchestrator engine` wins over the environment files: the unit starts as containers.
    sb.ok(&["--orchestrator", "engine", "run", &format!("{id}/start")]);
    assert!(sb.running(&format!("{id}-web")));
    // A test run checks the unit as swarm mode would deploy it, before any call.
    let (_, err) = sb.fails(&["run", &format!("{id}/test:check")], 2);
    assert!(err.contains("`startup.links`"), "{err}");
}

#[test]
fn swarm_mode_needs_a_swarm_manager() {
    let sb = Sandbox::new("swnomgr");
    let _lock = Swarm::outside(&sb.id);
    assert_eq!(swarm_state(), "inactive");
    web_unit(&sb, "hi");
    let (_, err) = sb.fails(
        &[
            "--orchestrator",
            "swarm",
            "run",
            &format!("{}/start", sb.id),
        ],
        1,
    );
    assert!(err.contains("is not in a swarm"), "{err}");
    assert!(err.contains("docker swarm init"), "{err}");
    assert!(err.contains("--context"), "{err}");
}

#[test]
fn start_deploys_services_and_is_a_noop_when_unchanged() {
    let sb = Sandbox::new("swstart");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    web_unit(&sb, "hi");
    let start = ["--orchestrator", "swarm", "run", &format!("{id}/start")];

    let out = sb.ok(&start);
    assert!(out.contains(&format!("Created service {web}")), "{out}");
    assert!(out.contains(&format!("Service {web} is ready")), "{out}");
    assert_eq!(
        running_tasks(&web).len(),
        2,
        "two replicas run and are healthy"
    );
    let labels = service(&web, "{{json .Spec.Labels}}");
    assert!(
        labels.contains(&format!("\"dstart.unit\":\"{id}\"")),
        "{labels}"
    );
    assert!(
        labels.contains(&format!("\"dstart.container\":\"{web}\"")),
        "{labels}"
    );
    assert!(labels.contains("\"dstart.config-hash\""), "{labels}");
    // The local image by its ID: the engine never tries a registry for it.
    let image = service(&web, "{{.Spec.TaskTemplate.ContainerSpec.Image}}");
    assert!(image.starts_with("sha256:"), "{image}");
    assert_eq!(
        service(&web, "{{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}}"),
        "500000000"
    );
    assert_eq!(service(&web, "{{.Spec.UpdateConfig.Order}}"), "start-first");
    let net = format!("dstart-{id}");
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            &net,
            "--format",
            "{{.Driver}} {{.Attachable}} {{index .Labels \"dstart.unit\"}}"
        ]),
        format!("overlay true {id}")
    );
    assert_eq!(
        docker(&[
            "volume",
            "inspect",
            &format!("{id}-data"),
            "--format",
            "{{index .Labels \"dstart.unit\"}}"
        ]),
        id
    );

    let version = service(&web, "{{.Version.Index}}");
    let before = running_tasks(&web);
    let out = sb.ok(&start);
    assert!(!out.contains("Updated service"), "{out}");
    assert_eq!(
        service(&web, "{{.Version.Index}}"),
        version,
        "no update call"
    );
    assert_eq!(running_tasks(&web), before, "the same tasks run");

    // A no-op start with the global flag in the environment files instead.
    sb.write("environments/00-swarm.yaml", "DSTART_ORCHESTRATOR: swarm\n");
    sb.ok(&["run", &format!("{id}/start")]);
    assert_eq!(service(&web, "{{.Version.Index}}"), version);
}

#[test]
fn a_changed_spec_is_a_rolling_update_that_keeps_old_tasks_until_new_ones_run() {
    let sb = Sandbox::new("swupdate");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let start = ["--orchestrator", "swarm", "run", &format!("{id}/start")];
    web_unit(&sb, "hi");
    sb.ok(&start);
    let old = running_tasks(&web);
    let version: u64 = service(&web, "{{.Version.Index}}").parse().unwrap();

    web_unit(&sb, "changed");
    let out = sb.ok(&start);
    assert!(
        out.contains(&format!(
            "Updated service {web} (configuration changed: env.GREETING)"
        )),
        "{out}"
    );
    let new = running_tasks(&web);
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(
        new.iter().all(|t| !old.contains(t)),
        "every task was replaced"
    );
    assert!(service(&web, "{{.Version.Index}}").parse::<u64>().unwrap() > version);
    assert_eq!(
        service(&web, "{{index .Spec.TaskTemplate.ContainerSpec.Env 0}}"),
        "GREETING=changed"
    );
    // start-first: each old task shut down only after a new one ran.
    let all = tasks(&web);
    let first_new_running = all
        .iter()
        .filter(|(t, ..)| new.contains(t))
        .map(|(.., ts)| ts.clone())
        .min()
        .unwrap();
    for (task, desired, _, ts) in all.iter().filter(|(t, ..)| old.contains(t)) {
        assert_eq!(desired, "shutdown", "{task}");
        assert!(
            *ts >= first_new_running,
            "old task {task} shut down at {ts}, before a new one ran ({first_new_running})"
        );
    }
}

#[test]
fn stop_scales_to_zero_start_scales_back_and_restart_replaces_tasks() {
    let sb = Sandbox::new("swstop");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let run = |cmd: &str| sb.ok(&["--orchestrator", "swarm", "run", &format!("{id}/{cmd}")]);
    web_unit(&sb, "hi");
    run("start");
    // Scaled by hand: stop and start keep the count.
    docker(&["service", "scale", "--detach", &format!("{web}=3")]);

    let out = run("stop");
    assert!(
        out.contains(&format!("Successfully stopped service {web}")),
        "{out}"
    );
    assert_eq!(service(&web, "{{.Spec.Mode.Replicated.Replicas}}"), "0");
    assert_eq!(
        service(&web, "{{index .Spec.Labels \"dstart.replicas\"}}"),
        "3"
    );
    assert!(running_tasks(&web).is_empty());

    let out = run("start");
    assert!(
        out.contains(&format!("Started service {web} (3 replicas)")),
        "{out}"
    );
    assert_eq!(running_tasks(&web).len(), 3);
    assert_eq!(
        service(&web, "{{index .Spec.Labels \"dstart.replicas\"}}"),
        ""
    );

    let before = running_tasks(&web);
    let out = run("restart");
    assert!(
        out.contains(&format!("Restarted the tasks of service {web}")),
        "{out}"
    );
    assert_eq!(service(&web, "{{.Spec.TaskTemplate.ForceUpdate}}"), "1");
    let after = running_tasks(&web);
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|t| !before.contains(t)), "new tasks");
}

#[test]
fn cleanup_keeps_volumes_and_purge_removes_the_units_own() {
    let sb = Sandbox::new("swpurge");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let data = format!("{id}-data");
    let run = |cmd: &str| sb.ok(&["--orchestrator", "swarm", "run", &format!("{id}/{cmd}")]);
    let volume_exists = || {
        docker_output(&["volume", "inspect", &data])
            .status
            .success()
    };
    web_unit(&sb, "hi");
    run("start");

    let out = run("cleanup");
    assert!(
        out.contains(&format!("Successfully removed service {web}")),
        "{out}"
    );
    assert!(!service_exists(&web));
    assert!(
        !docker_output(&["network", "inspect", &format!("dstart-{id}")])
            .status
            .success(),
        "the overlay network went with the last service"
    );
    assert!(volume_exists(), "cleanup keeps the volume");

    run("start");
    let out = run("purge");
    assert!(
        out.contains(&format!("Successfully removed volume {data}")),
        "{out}"
    );
    assert!(!volume_exists());
    assert!(!service_exists(&web));
}

#[test]
fn plan_and_status_read_the_swarm_without_changing_it() {
    let sb = Sandbox::new("swplan");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let swarm = |args: &[&str]| {
        let mut all = vec!["--orchestrator", "swarm"];
        all.extend_from_slice(args);
        sb.ok(&all)
    };
    web_unit(&sb, "hi");
    assert_eq!(
        swarm(&["run", "--plan", &format!("{id}/start")]),
        format!("create {web} (absent)\n")
    );
    assert!(!service_exists(&web), "--plan deploys nothing");
    swarm(&["run", &format!("{id}/start")]);
    assert_eq!(
        swarm(&["run", "--plan", &format!("{id}/start")]),
        format!("keep {web} (running, unchanged)\n")
    );

    web_unit(&sb, "changed");
    let version = service(&web, "{{.Version.Index}}");
    assert_eq!(
        swarm(&["run", "--plan", &format!("{id}/start")]),
        format!("update {web} (configuration changed: env.GREETING)\n")
    );
    assert_eq!(
        swarm(&["run", "--plan", &format!("{id}/purge")]),
        format!(
            "stop {web} (scale 2 to 0)\nremove {web} (the service, the unit's named volumes)\n"
        )
    );
    let json = swarm(&["status", &id, "--format", "json"]);
    let host = docker(&["info", "--format", "{{.Name}}"]);
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let line = &status[0];
    assert_eq!(line["container"], web.as_str(), "{json}");
    assert_eq!(line["state"], "2/2 running", "{json}");
    assert_eq!(line["nodes"][&host], 2, "tasks per node: {json}");
    assert_eq!(line["image"], base_image(), "{json}");
    assert_eq!(
        line["drift"],
        serde_json::json!(["configuration changed: env.GREETING"]),
        "{json}"
    );
    let table = swarm(&["status", &id]);
    assert!(
        table.contains(&format!("2/2 running ({host}: 2)")),
        "{table}"
    );
    assert_eq!(
        service(&web, "{{.Version.Index}}"),
        version,
        "plan and status changed nothing"
    );
}

#[test]
fn secrets_are_swarm_secrets_rolled_out_on_change_and_never_printed() {
    let sb = Sandbox::new("swsecret");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let app = format!("{id}-app");
    let value = format!("s3cr3t-{id}");
    sb.write("secrets/pw.txt", &value);
    sb.unit(
        &id,
        "start",
        &format!(
            "{app}:\n  image: {base}\n  command: [sleep, '600']\n  stop_timeout: 1\n  secrets: {{pw: secrets/pw.txt}}\n---\n- {app}: {{command: start, ready: {{healthy: true, timeout: 60}}}}\n",
            base = base_image()
        ),
    );
    let run = |orchestrator: &str, cmd: &str| {
        let out = sb.dstart(&[
            "-v",
            "-d",
            "--orchestrator",
            orchestrator,
            "run",
            &format!("{id}/{cmd}"),
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cmd}: {text}");
        assert!(
            !text.contains("s3cr3t"),
            "the secret is never printed: {text}"
        );
        text
    };
    let read_secret = || {
        let task = running_tasks(&app);
        let container = docker(&[
            "inspect",
            &task[0],
            "--format",
            "{{.Status.ContainerStatus.ContainerID}}",
        ]);
        docker(&["exec", &container, "cat", "/run/secrets/pw"])
    };
    let labelled = || {
        docker(&[
            "secret",
            "ls",
            "--filter",
            &format!("label=dstart.unit={id}"),
            "--format",
            "{{.Name}}",
        ])
    };

    run("swarm", "start");
    assert_eq!(read_secret(), value);
    assert_eq!(labelled().lines().count(), 1, "{}", labelled());

    let changed = format!("n3w-s3cr3t-{id}");
    sb.write("secrets/pw.txt", &changed);
    let out = run("swarm", "start");
    assert!(
        out.contains(&format!(
            "Updated service {app} (configuration changed: secrets)"
        )),
        "{out}"
    );
    assert_eq!(read_secret(), changed);

    run("swarm", "cleanup");
    assert_eq!(labelled(), "", "cleanup removes the unit's secrets");

    // On one engine, the same file is a read-only bind at the same path (the image has no
    // health check for `ready: healthy` there).
    sb.unit(
        &id,
        "start",
        &format!(
            "{app}:\n  image: {base}\n  command: [sleep, '600']\n  secrets: {{pw: secrets/pw.txt}}\n---\n- {app}: {{command: start}}\n",
            base = base_image()
        ),
    );
    run("engine", "start");
    assert_eq!(docker(&["exec", &app, "cat", "/run/secrets/pw"]), changed);
}

#[test]
fn host_orders_get_the_published_ports_of_services() {
    let sb = Sandbox::new("swport");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{web}:
  image: {base}
  command: ["sh", "-c", "mkdir -p /www && echo hello-{id} > /www/index.html && exec httpd -f -p 80 -h /www"]
  ports: ["80"]
  stop_timeout: 1
---
- {web}: {{command: start, ready: {{healthy: true, timeout: 60}}}}
- host:
    command: execute
    run: 'port=$(env | sed -n "s/^DSTART_SERVICES_.*_WEB_PORTS_80=//p"); echo "port $port"'
"#,
            base = base_image()
        ),
    );
    let out = sb.ok(&[
        "-v",
        "--orchestrator",
        "swarm",
        "run",
        &format!("{id}/start"),
    ]);
    let published = service(&web, "{{(index .Endpoint.Ports 0).PublishedPort}}");
    assert!(
        published.parse::<u16>().is_ok_and(|p| p >= 30000),
        "{published}"
    );
    // Not fetched: on this machine the swarm's routing mesh does not answer on a published
    // port (a port published in host mode does; docs/swarm.md).
    assert!(out.contains(&format!("port {published}\n")), "{out}");
}

#[test]
fn backup_and_restore_go_through_a_helper_task_on_the_volumes_node() {
    let sb = Sandbox::new("swbackup");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    web_unit(&sb, "backed-up");
    sb.unit(
        &id,
        "snap",
        &format!(
            "import: {id}/start\n---\n- {web}: {{command: backup, backup_dir: out, backup_name: snap, stop: true, ready: {{healthy: true, timeout: 90}}}}\n"
        ),
    );
    let run = |cmd: &str| sb.ok(&["--orchestrator", "swarm", "run", &format!("{id}/{cmd}")]);
    let in_task = |script: &str| {
        let task = running_tasks(&web);
        let container = docker(&[
            "inspect",
            &task[0],
            "--format",
            "{{.Status.ContainerStatus.ContainerID}}",
        ]);
        docker(&["exec", &container, "sh", "-c", script])
    };
    run("start");
    in_task(&format!("echo keep-{id} > /www/keep.txt"));

    // The generated backup: the service keeps running.
    let before = running_tasks(&web);
    let out = run("backup");
    assert!(
        out.contains(&format!("Backup of container {web}")) || out.contains("Backup of container"),
        "{out}"
    );
    let archive = sb.conf().join(format!("{web}.tar.gz"));
    assert!(archive.exists(), "{out}");
    let listing = std::process::Command::new("tar")
        .arg("xzOf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("backed-up"),
        "the archive holds the volume's file"
    );
    assert_eq!(running_tasks(&web), before, "the tasks kept running");
    assert!(
        !service_exists(&format!("{web}-dstart-backup")),
        "the helper service is gone"
    );

    // `stop: true`: scaled to 0 for the archive, and back to 2 (ready) afterwards.
    let out = run("snap");
    assert!(
        out.contains(&format!("Successfully stopped service {web}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Started service {web} again (2 replicas)")),
        "{out}"
    );
    assert!(sb.conf().join("out/snap.tar.gz").exists(), "{out}");
    assert_eq!(running_tasks(&web).len(), 2);

    // The generated restore (stop: true) puts the volume back as the backup found it.
    in_task("rm /www/keep.txt");
    let out = run("restore");
    assert!(
        out.contains(&format!("Successfully stopped service {web}")),
        "{out}"
    );
    assert_eq!(in_task("cat /www/keep.txt"), format!("keep-{id}"), "{out}");
    assert!(!service_exists(&format!("{web}-dstart-restore")));
}

/// `dstart --orchestrator swarm run CMD`'s arguments.
fn swarm(cmd: &str) -> [&str; 4] {
    ["--orchestrator", "swarm", "run", cmd]
}

/// Names (`docker KIND ls`) under the sandbox's prefix other than `live`.
fn leftovers(kind: &str, id: &str, live: &[&str]) -> Vec<String> {
    let out = docker(&[kind, "ls", "--format", "{{.Name}}"]);
    out.lines()
        .filter(|n| n.contains(id) && !live.contains(n))
        .map(str::to_string)
        .collect()
}

#[test]
fn test_check_deploys_the_test_copy_as_services_and_tears_it_down() {
    let sb = Sandbox::new("swtest");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let job = format!("{id}-job");
    let data = format!("{id}-data");
    let net = format!("dstart-{id}");
    sb.write("environments/00-expect.yaml", "EXPECT: job-done\n");
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{web}:
  image: {base}
  command: ["sh", "-c", "mkdir -p /www && echo hello-{id} > /www/index.html && exec httpd -f -p 80 -h /www"]
  ports: ["80"]
  volumes: ["{data}:/www"]
  stop_timeout: 1
  daemon:
    - GET: {{url: "http://127.0.0.1:[[port 80]]({web})/", status: 200, re.match: "hello-{id}", timeout: 60}}
    - GET: {{url: "http://127.0.0.1:[[port 80]]({web})/missing.html", status: 404, timeout: 60}}
  jobs:
    count: {{args: ["sh", "-c", "ls /www; exit 3"], exit_code: 3, match: "index.html", timeout: 60}}
  tests:
    smoke: {{execute: "grep -q hello-{id} /www/index.html && touch /tmp/smoked", files: ["/tmp/smoked"]}}
{job}:
  image: {base}
  command: ["sh", "-c", "echo job-done"]
  stop_timeout: 1
  startup: {{restart_policy: {{Name: "no"}}}}
  job: {{exit_code: 0, logs: [{{re.match: "{{{{ EXPECT }}}}"}}], timeout: 60}}
  tests:
    again: {{execute: "echo again-$((40 + 2))", exit_code: 0, capture_logs: true}}
---
- {web}: {{command: start}}
- {job}: {{command: start}}
"#,
            base = base_image()
        ),
    );
    sb.ok(&swarm(&format!("{id}/start")));
    let version = service(&web, "{{.Version.Index}}");
    let live_services = [web.as_str(), job.as_str()];

    // `smoke` runs in the running task of the web service, `again` (the job has ended) in a
    // one-off service.
    let out = sb.ok(&swarm(&format!("{id}/test:check:smoke:again")));
    for case in [
        format!("PASS {web}_daemon 0:GET"),
        format!("PASS {web}_daemon 1:GET"),
        format!("PASS {web}_jobs {web}:count"),
        format!("PASS {job}_jobs {job}:job"),
        format!("PASS {web}_smoke {web}:smoke"),
        format!("PASS {job}_again {job}:again"),
    ] {
        assert!(out.contains(&case), "{case}:\n{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    assert_eq!(
        leftovers("service", &id, &live_services),
        Vec::<String>::new()
    );
    assert_eq!(leftovers("network", &id, &[&net]), Vec::<String>::new());
    assert_eq!(leftovers("volume", &id, &[&data]), Vec::<String>::new());
    assert_eq!(
        service(&web, "{{.Version.Index}}"),
        version,
        "the live service is untouched"
    );
    assert_eq!(running_tasks(&web).len(), 1);

    // A failing check fails the run (exit 1); the teardown still removes the whole copy.
    sb.write("environments/00-expect.yaml", "EXPECT: never-printed\n");
    let (out, _) = sb.fails(&swarm(&format!("{id}/test:check")), 1);
    assert!(out.contains(&format!("FAIL {job}_jobs {job}:job")), "{out}");
    assert!(out.contains(&format!("PASS {web}_daemon 0:GET")), "{out}");
    assert_eq!(
        leftovers("service", &id, &live_services),
        Vec::<String>::new()
    );
    assert_eq!(leftovers("network", &id, &[&net]), Vec::<String>::new());
    assert_eq!(leftovers("volume", &id, &[&data]), Vec::<String>::new());
    assert_eq!(
        service(&web, "{{.Version.Index}}"),
        version,
        "the live service is untouched"
    );

    // What swarm mode does not carry out is refused before any engine call (exit 2).
    let (_, err) = sb.fails(&swarm(&format!("{id}/test:production")), 2);
    assert!(err.contains("the variant `production`"), "{err}");
    assert_eq!(service(&web, "{{.Version.Index}}"), version);
}

#[test]
fn an_interrupted_test_run_on_a_swarm_tears_the_copy_down() {
    use std::io::Read;
    let sb = Sandbox::new("swtint");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{web}:
  image: {base}
  command: ["sleep", "300"]
  volumes: ["{id}-data:/data"]
  stop_timeout: 1
  daemon:
    never: {{url: "http://127.0.0.1:1/", timeout: 120}}
---
- {web}: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let (mut child, mut reader, seen) =
        support::spawn_until_started(sb.command(&swarm(&format!("{id}/test:check"))));
    // The copy's task runs (and holds its volume) when the signal comes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while leftovers("volume", &id, &[]).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the copy never ran");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(leftovers("service", &id, &[]).len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains(&format!("PASS teardown {web}:remove (")),
        "{seen}{rest}"
    );
    assert_eq!(leftovers("service", &id, &[]), Vec::<String>::new());
    assert_eq!(leftovers("network", &id, &[]), Vec::<String>::new());
    assert_eq!(leftovers("volume", &id, &[]), Vec::<String>::new());
}

#[test]
fn test_full_check_builds_pseudo_tagged_images_for_the_services_and_removes_them() {
    let sb = Sandbox::new("swtfull");
    let _swarm = Swarm::join(&sb.id);
    let id = sb.id.clone();
    sb.write(
        "img/app/Dockerfile",
        &format!(
            "FROM {}\nCMD [\"sh\", \"-c\", \"echo app ok\"]\n",
            base_image()
        ),
    );
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{id}-app:
  build: {{path: img/app, tag: "{id}/app:1"}}
  startup: {{restart_policy: {{Name: "no"}}}}
  job: {{logs: ["app ok"], timeout: 60}}
---
- {id}-app: {{command: start}}
"#
        ),
    );
    let out = sb.ok(&swarm(&format!("{id}/test:full:check")));
    for case in [
        format!("PASS {id}-app_jobs {id}-app:job ("),
        format!("PASS teardown {id}-app:remove ("),
        format!("PASS teardown {id}-app:remove_image ("),
    ] {
        assert!(out.contains(&case), "{case}:\n{out}");
    }
    let images = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let ours: Vec<&str> = images
        .lines()
        .filter(|i| i.starts_with(id.as_str()))
        .collect();
    assert_eq!(ours, Vec::<&str>::new(), "no image of the test is left");
    assert_eq!(leftovers("service", &id, &[]), Vec::<String>::new());
    assert_eq!(leftovers("network", &id, &[]), Vec::<String>::new());
}
