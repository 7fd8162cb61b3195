//! `dstart export` against the real engine: the Compose file of a unit deploys on a one-node
//! swarm (`docker stack deploy`) and starts with docker-compose 1.29, and what docker-compose
//! starts is what `dstart run UNIT/start` starts.
//!
//! The unit: a one-shot job that writes a page into a named volume (with a plain and a secret
//! environment variable), and busybox httpd serving that volume on a published port.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Sandbox, Swarm, base_image, docker, docker_output};

/// The secret of the environment file: the export writes `${API_TOKEN}`, and whoever deploys
/// sets it.
const TOKEN: &str = "tok-of-the-files";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes the unit `<id>` with the containers `<prefix>init` and `<prefix>web` (`web_extra`:
/// more keys of web, indented by two) and exports it to `<conf>/export.yml`; returns the file
/// and the port.
fn exported_unit(sb: &Sandbox, prefix: &str, web_extra: &str) -> (PathBuf, u16) {
    let id = &sb.id;
    let port = free_port();
    sb.write(
        "environments/default.yaml",
        &format!("API_TOKEN: {TOKEN}\nGREETING: from-{id}\n"),
    );
    sb.unit(
        id,
        "start",
        &format!(
            r#"{prefix}init:
  image: {base}
  command: ["sh", "-c", "echo \"hello $GREETING token=$API_TOKEN\" > /www/index.html"]
  env:
    GREETING: "{{{{ GREETING }}}}"
    API_TOKEN: "{{{{ API_TOKEN }}}}"
  volumes: ["{id}-site:/www"]
{prefix}web:
  image: {base}
  command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
  ports: ["127.0.0.1:{port}:8080"]
  volumes: ["{id}-site:/www:ro"]
  stop_timeout: 2
{web_extra}---
- {prefix}init: {{command: start, attach: true}}
- {prefix}web: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let file = sb.conf().join("export.yml");
    sb.ok(&["export", "-o", file.to_str().unwrap(), id]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(TOKEN), "a secret in the export:\n{text}");
    assert!(text.contains("${API_TOKEN}"), "{text}");
    (file, port)
}

/// The body of `GET http://127.0.0.1:<port>/`, once it holds `want` (at most `secs` seconds).
fn page(port: u16, want: &str, secs: u64) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < until {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{port}/"),
            ])
            .output()
            .expect("curl runs");
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if last.contains(want) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("port {port} did not answer `{want}` within {secs} s; last answer: {last:?}");
}

/// Runs `program args` with `API_TOKEN` in its environment (the export refers to it); panics
/// with its output unless it succeeds.
fn run(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("API_TOKEN", TOKEN)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The states of the tasks of service `service`, newest first.
fn task_states(service: &str) -> Vec<String> {
    let out = docker_output(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.CurrentState}}",
        service,
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{what} within {secs} s");
}

#[test]
fn stack_deploy_of_an_export_runs_and_answers() {
    let sb = Sandbox::new("export-stack");
    // A swarm service is `<stack>_<container>` in at most 63 characters: short container names
    // (they name no container here; the services and tasks carry the sandbox's prefix).
    // Two replicas on a manager, a rolling update of 2 s delay in dstart's default order
    // (start-first, which is not Compose's), and a secret file.
    sb.write("site.key", "key-of-the-site\n");
    let (file, port) = exported_unit(
        &sb,
        "",
        "  deploy:\n    replicas: 2\n    placement: {constraints: ['node.role == manager']}\n    update_config: {delay: 2}\n  secrets: {site_key: site.key}\n",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("key-of-the-site"),
        "a secret file's content:\n{text}"
    );
    // Dropped before the sandbox: services and networks go, then the sandbox's volumes.
    let _swarm = Swarm::join(&sb.id);
    let id = &sb.id;
    let stack = sb.id.clone();
    run(
        "docker",
        &[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            file.to_str().unwrap(),
            &stack,
        ],
        sb.conf(),
    );
    let web = format!("{stack}_web");
    let init = format!("{stack}_init");
    // The service is deployed as the unit says, dstart's defaults included.
    let inspect = |format: &str| docker(&["service", "inspect", "-f", format, &web]);
    assert_eq!(inspect("{{.Spec.Mode.Replicated.Replicas}}"), "2");
    assert_eq!(
        inspect("{{json .Spec.TaskTemplate.Placement.Constraints}}"),
        r#"["node.role == manager"]"#
    );
    assert_eq!(
        inspect(
            "{{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.Delay}}"
        ),
        "start-first 1 2s"
    );
    assert_eq!(
        inspect("{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.File.Name}} {{end}}"),
        "site_key"
    );
    wait_for("both web tasks running", 90, || {
        task_states(&web)
            .iter()
            .filter(|s| s.starts_with("Running"))
            .count()
            == 2
    });
    // The task answers with the page the job wrote, its secret filled in from the deploying
    // environment. (Asked from inside the task: the routing mesh that publishes a swarm's
    // ports needs the kernel's IPVS, which this machine lacks.)
    let want = format!("hello from-{id} token={TOKEN}");
    let filter = format!("label=com.docker.swarm.service.name={web}");
    let mut last = String::new();
    wait_for("the web task answering", 60, || {
        let task = docker(&["ps", "-q", "--filter", &filter]);
        let Some(task) = task.lines().next() else {
            return false;
        };
        let out = docker_output(&["exec", task, "wget", "-q", "-O-", "http://127.0.0.1:8080/"]);
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        last.contains(&want)
    });
    assert!(last.starts_with("hello"), "{last}");
    // The secret file, where dstart mounts it.
    let task = docker(&["ps", "-q", "--filter", &filter]);
    let task = task.lines().next().unwrap();
    assert_eq!(
        docker(&["exec", task, "cat", "/run/secrets/site_key"]),
        "key-of-the-site"
    );
    // The port is published (on every address: a swarm keeps no host address).
    let ports = docker(&["service", "inspect", "-f", "{{json .Endpoint.Ports}}", &web]);
    assert!(
        ports.contains(&format!("\"PublishedPort\":{port}"))
            && ports.contains("\"TargetPort\":8080"),
        "{ports}"
    );
    // The one-shot job ran once and was not restarted (`restart_policy: none`).
    wait_for("the job complete", 30, || {
        task_states(&init)
            .first()
            .is_some_and(|s| s.starts_with("Complete"))
    });
    assert_eq!(task_states(&init).len(), 1, "{:?}", task_states(&init));
    // The unit network under its own name, an overlay network of the swarm.
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{.Driver}}",
            &format!("dstart-{id}")
        ]),
        "overlay"
    );
    // The services carry the unit's labels on their containers.
    let labels = docker(&[
        "service",
        "inspect",
        "-f",
        "{{json .Spec.TaskTemplate.ContainerSpec.Labels}}",
        &web,
    ]);
    assert!(
        labels.contains(&format!("\"dstart.unit\":\"{id}\"")),
        "{labels}"
    );
    run("docker", &["stack", "rm", &stack], sb.conf());
    wait_for("the stack's services gone", 60, || {
        docker(&["service", "ls", "-q", "--filter", &format!("name={stack}_")]).is_empty()
    });
}

/// What makes a container the same container: image, command, environment, ports, mounts,
/// networks, restart policy (none given reads `no`, as `no` does) and the dstart labels.
fn shape(name: &str) -> String {
    let shape = docker(&[
        "inspect",
        "-f",
        "{{.Config.Image}}|{{json .Config.Cmd}}|{{json .Config.Env}}|{{with .HostConfig.PortBindings}}{{json .}}{{else}}{}{{end}}|{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}}:{{.RW}} {{end}}|{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}|{{with .HostConfig.RestartPolicy.Name}}{{.}}{{else}}no{{end}}|{{index .Config.Labels \"dstart.unit\"}}|{{index .Config.Labels \"dstart.container\"}}",
        name,
    ]);
    // The engine lists mounts in no fixed order: compare them as a set.
    let mut fields: Vec<String> = shape.split('|').map(str::to_string).collect();
    if let Some(mounts) = fields.get_mut(4) {
        let mut list: Vec<&str> = mounts.split_whitespace().collect();
        list.sort_unstable();
        *mounts = list.join(" ");
    }
    fields.join("|")
}

#[test]
fn compose_up_of_an_export_starts_what_start_starts() {
    let sb = Sandbox::new("export-compose");
    // Not while the stack test of this binary joins or leaves the swarm: its ports would go.
    let _swarm = Swarm::hold(&sb.id);
    sb.write("site.key", "key-of-the-site\n");
    let (file, port) = exported_unit(
        &sb,
        &format!("{}-", sb.id),
        "  secrets: {site_key: site.key}\n",
    );
    let id = &sb.id;
    let web = format!("{id}-web");
    let file = file.to_str().unwrap();
    let project = ["-p", id.as_str(), "-f", file];
    let up: Vec<&str> = project.iter().copied().chain(["up", "-d"]).collect();
    run("docker-compose", &up, sb.conf());
    let down: Vec<&str> = project.iter().copied().chain(["down", "-v"]).collect();
    let body = page(port, &format!("hello from-{id} token={TOKEN}"), 60);
    assert!(body.starts_with("hello"), "{body}");
    // The secret file, where dstart mounts it (read-only: `shape` compares the mounts).
    assert_eq!(
        docker(&["exec", &web, "cat", "/run/secrets/site_key"]),
        "key-of-the-site"
    );
    let by_compose = shape(&web);
    let init_by_compose = shape(&format!("{id}-init"));
    run("docker-compose", &down, sb.conf());
    assert!(!sb.exists(&web), "docker-compose down removed it");
    assert!(
        !docker_output(&["volume", "inspect", &format!("{id}-site")])
            .status
            .success(),
        "down -v removed the named volume"
    );

    sb.ok(&["run", &format!("{id}/start")]);
    page(port, &format!("hello from-{id} token={TOKEN}"), 30);
    assert_eq!(shape(&web), by_compose);
    assert_eq!(shape(&format!("{id}-init")), init_by_compose);
    sb.ok(&["run", &format!("{id}/purge")]);
}
