//! A unit's lifecycle against the real engine: build, create, start, stop, cleanup, purge.

mod support;

use support::{Sandbox, base_image, docker_output};

/// A unit with a data container built from a local Dockerfile and a web server using its volume.
fn web_unit(sb: &Sandbox) {
    let id = &sb.id;
    sb.write(
        "img/data/Dockerfile",
        &format!(
            "FROM {}\nRUN mkdir -p /var/www && echo hello-{id} > /var/www/index.html\nVOLUME /var/www\nCMD [\"true\"]\n",
            base_image()
        ),
    );
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-data:
  build: {{path: img/data, tag: "{id}/data:latest"}}
{id}-web:
  image: {base}
  command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
  startup: {{volumes_from: {id}-data}}
---
- {id}-data: {{command: create}}
- {id}-web: {{command: start}}
"#,
            base = base_image()
        ),
    );
}

#[test]
fn lifecycle_from_build_to_purge() {
    let sb = Sandbox::new("life");
    web_unit(&sb);
    let id = sb.id.clone();
    let data = format!("{id}-data");
    let web = format!("{id}-web");

    let out = sb.ok(&["run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!("Successfully built the image {id}/data:latest")),
        "{out}"
    );
    assert!(sb.exists(&data));
    assert!(sb.running(&web));
    assert_eq!(
        sb.inspect(&web, "{{.Config.Labels}}")
            .map(|l| l.contains(&format!("dstart.unit:{id}"))),
        Some(true)
    );
    assert!(
        sb.inspect(&format!("dstart-{id}"), "{{.Name}}").is_some(),
        "the unit network exists"
    );

    sb.ok(&["run", &format!("{id}/stop")]);
    assert!(!sb.running(&web));

    let out = sb.ok(&["run", &format!("{id}/cleanup")]);
    assert!(!sb.exists(&web), "cleanup removes the web server");
    assert!(sb.exists(&data), "cleanup keeps the data container: {out}");
    assert!(
        out.contains(&format!(
            "Not removing container {data} as it has volumes attached to it."
        )),
        "{out}"
    );

    sb.ok(&["run", &format!("{id}/purge")]);
    assert!(!sb.exists(&data));
    assert!(
        !docker_output(&["image", "inspect", &format!("{id}/data:latest")])
            .status
            .success(),
        "purge removes built images"
    );
    assert!(
        sb.inspect(&format!("dstart-{id}"), "{{.Name}}").is_none(),
        "purge removes the unit network"
    );
}

#[test]
fn second_start_changes_nothing() {
    let sb = Sandbox::new("idem");
    web_unit(&sb);
    let id = sb.id.clone();
    sb.ok(&["run", &format!("{id}/start")]);
    let before = sb.inspect(&format!("{id}-web"), "{{.Id}} {{.State.StartedAt}}");
    let out = sb.ok(&["-d", "run", &format!("{id}/start")]);
    assert!(!out.contains("Started container"), "{out}");
    assert!(!out.contains("Successfully created"), "{out}");
    assert!(out.contains("is already started. (skipped)"), "{out}");
    assert_eq!(
        sb.inspect(&format!("{id}-web"), "{{.Id}} {{.State.StartedAt}}"),
        before
    );
}

#[test]
fn changed_spec_recreates_and_keeps_anonymous_volume_data() {
    let sb = Sandbox::new("recr");
    let id = sb.id.clone();
    let name = format!("{id}-db");
    let unit = |greeting: &str| {
        format!(
            "{name}:\n  image: {base}\n  command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n  env: {{GREETING: {greeting}}}\n  volumes: ['/data']\n---\n- {name}: {{command: start}}\n",
            base = base_image()
        )
    };
    sb.unit(&id, "start", &unit("hello"));
    sb.ok(&["run", &format!("{id}/start")]);
    let first = sb.inspect(&name, "{{.Id}}").unwrap();
    support::docker(&["exec", &name, "sh", "-c", "echo precious > /data/file"]);

    sb.unit(&id, "start", &unit("changed"));
    let out = sb.ok(&["run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!(
            "Recreated container {name} because its configuration changed (env.GREETING)"
        )),
        "{out}"
    );
    let second = sb.inspect(&name, "{{.Id}}").unwrap();
    assert_ne!(first, second, "a new container");
    assert!(sb.running(&name));
    assert_eq!(
        support::docker(&["exec", &name, "cat", "/data/file"]),
        "precious"
    );
    assert_eq!(
        support::docker(&["exec", &name, "sh", "-c", "echo $GREETING"]),
        "changed"
    );
    assert_eq!(
        support::docker(&["ps", "-aq", "--filter", &format!("name={name}_dstart_old")]),
        "",
        "the old container is gone"
    );

    // `recreate: never` keeps the container although the spec changed again.
    sb.unit(
        &id,
        "start",
        &unit("again").replace("{command: start}", "{command: start, recreate: never}"),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    assert_eq!(sb.inspect(&name, "{{.Id}}").unwrap(), second);

    // `purge` (remove with v: true) also removes the carried volume, which the engine only
    // knows as a volume mounted by name.
    let volume = sb
        .inspect(&name, "{{range .Mounts}}{{.Name}}{{end}}")
        .unwrap();
    assert_eq!(volume.len(), 64, "an anonymous volume: {volume}");
    sb.ok(&["run", &format!("{id}/purge")]);
    assert!(!sb.exists(&name));
    assert!(
        !support::docker_output(&["volume", "inspect", &volume])
            .status
            .success(),
        "the volume is gone"
    );
}

#[test]
fn containers_reach_each_other_by_key_and_by_link() {
    let sb = Sandbox::new("dns");
    let id = sb.id.clone();
    sb.write("www/index.html", &format!("page-{id}\n"));
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{id}-web:
  image: {base}
  command: ["httpd", "-f", "-p", "80", "-h", "/www"]
  volumes: ['./www:/www:ro']
{id}-client:
  image: {base}
  command: ["sh", "-c", "wget -q -O- http://{id}-web/index.html && wget -q -O- http://www/index.html | sed 's/^/by link: /'"]
  startup: {{links: {{{id}-web: www}}}}
---
- {id}-web: {{command: start}}
- {id}-client: {{command: start, attach: true}}
"#,
            base = base_image()
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!("page-{id}")),
        "the client printed the page: {out}"
    );
    assert!(
        out.contains(&format!("by link: page-{id}")),
        "and got it by the link's alias: {out}"
    );
}

#[test]
fn host_execute_reaches_an_ephemeral_port() {
    let sb = Sandbox::new("port");
    let id = sb.id.clone();
    sb.write("www/index.html", "ephemeral-ok\n");
    let key: String = format!("{id}-web")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    sb.unit(
        &id,
        "start",
        &format!(
            r#"{id}-web:
  image: {base}
  command: ["httpd", "-f", "-p", "80", "-h", "/www"]
  volumes: ['./www:/www:ro']
  ports: ["80"]
---
- {id}-web: {{command: start, ready: {{http: "http://127.0.0.1:[[port 80]]({id}-web)/", timeout: 20}}}}
- host: {{command: execute, run: 'busybox wget -q -O- "http://127.0.0.1:${{DSTART_SERVICES_{key}_PORTS_80}}/"'}}
"#,
            base = base_image()
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(out.contains("ephemeral-ok"), "{out}");
    let host_port = sb
        .inspect(
            &format!("{id}-web"),
            "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        )
        .unwrap();
    assert_ne!(host_port, "80");
    assert!(host_port.parse::<u16>().is_ok());
}

#[test]
fn attach_returns_the_exit_code() {
    let sb = Sandbox::new("attach");
    let id = sb.id.clone();
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-job:\n  image: {base}\n  command: [\"sh\", \"-c\", \"echo working; echo broken >&2; exit 3\"]\n---\n- {id}-job: {{command: start, attach: true}}\n- {id}-job: {{command: stop}}\n",
            base = base_image()
        ),
    );
    let (stdout, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(
        stderr.contains("broken"),
        "the last lines are shown: {stderr}"
    );
    assert!(
        !stdout.contains("Executing step stop"),
        "nothing runs after a failure: {stdout}"
    );

    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-job:\n  image: {base}\n  command: [\"sh\", \"-c\", \"echo fine\"]\n---\n- {id}-job: {{command: start, attach: true}}\n",
            base = base_image()
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(out.contains("fine"), "{out}");
    assert!(out.contains("finished with exit code 0"), "{out}");
}

#[test]
fn build_failure_fails_the_order_and_leaves_no_containers() {
    let sb = Sandbox::new("badbuild");
    let id = sb.id.clone();
    sb.write(
        "img/Dockerfile",
        &format!(
            "FROM {}\nRUN echo about to fail {id} && exit 7\n",
            base_image()
        ),
    );
    sb.unit(
        &id,
        "start",
        &format!("{id}-x:\n  build: {{path: img, tag: '{id}/x'}}\n---\n- {id}-x: {{command: build}}\n- {id}-x: {{command: start}}\n"),
    );
    let (stdout, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
    assert!(stderr.contains("returned a non-zero code: 7"), "{stderr}");
    assert!(
        stderr.contains("about to fail"),
        "the build's last lines are shown: {stderr}"
    );
    assert!(!stdout.contains("Successfully built"), "{stdout}");
    assert!(!stdout.contains("Executing step start"), "{stdout}");
    let commands = support::docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(
        !commands.contains(&id),
        "the failed build's intermediate container is removed: {commands}"
    );
}

#[test]
fn a_run_that_removes_the_last_container_can_start_it_again() {
    let sb = Sandbox::new("again");
    let id = sb.id.clone();
    let web = format!("{id}-web");
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}:\n  image: {base}\n  command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n---\n- {web}: {{command: start}}\n",
            base = base_image()
        ),
    );
    // Removing the last container removes the unit network; the start after it, in the same
    // run, must create the network again.
    sb.unit(
        &id,
        "again",
        &format!(
            "import: {id}/start\n---\n- {web}: {{command: stop, timeout: 1}}\n- {web}: {{command: remove}}\n- {web}: {{command: start}}\n"
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let out = sb.ok(&["-d", "run", &format!("{id}/again")]);
    assert!(
        out.contains(&format!("Removed network dstart-{id}")),
        "{out}"
    );
    assert!(sb.running(&web), "{out}");
    assert!(
        sb.inspect(&format!("dstart-{id}"), "{{.Name}}").is_some(),
        "the unit network exists again"
    );
}

#[test]
fn containers_networks_and_volumes_carry_the_three_labels() {
    let sb = Sandbox::new("labels");
    let id = sb.id.clone();
    let db = format!("{id}-db");
    let volume = format!("{id}-vol");
    sb.unit(
        &id,
        "start",
        &format!(
            "{db}:\n  image: {base}\n  command: [\"true\"]\n  volumes: ['{volume}:/data']\n---\n- {db}: {{command: create}}\n",
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let labels = |kind: &str, name: &str| {
        let format = "{{index .Labels \"dstart.unit\"}}|{{index .Labels \"dstart.container\"}}|{{index .Labels \"dstart.config-hash\"}}";
        let format = if kind == "container" {
            format.replace(".Labels", ".Config.Labels")
        } else {
            format.to_string()
        };
        let text = support::docker(&[kind, "inspect", "-f", &format, name]);
        let parts: Vec<String> = text.split('|').map(str::to_string).collect();
        assert_eq!(parts.len(), 3, "{kind} {name}: {text}");
        assert_eq!(
            parts[2].len(),
            64,
            "{kind} {name} has a config hash: {text}"
        );
        (parts[0].clone(), parts[1].clone())
    };
    assert_eq!(labels("container", &db), (id.clone(), db.clone()));
    assert_eq!(
        labels("network", &format!("dstart-{id}")),
        (id.clone(), String::new()),
        "the network belongs to the unit, not to a container"
    );
    assert_eq!(
        labels("volume", &volume),
        (id.clone(), db.clone()),
        "the volume names the container that declared it"
    );
}

#[test]
fn create_result_and_warnings_show_at_v_and_initialized_at_d() {
    let sb = Sandbox::new("vlines");
    let id = sb.id.clone();
    let job = format!("{id}-job");
    // A published port on the host network: the engine creates the container and warns.
    sb.unit(
        &id,
        "start",
        &format!(
            "{job}:\n  image: {base}\n  command: [\"true\"]\n  ports: ['80']\n  startup: {{network_mode: host}}\n---\n- {job}: {{command: create}}\n",
            base = base_image()
        ),
    );
    let out = sb.dstart(&["run", &format!("{id}/start")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("Created container"),
        "only at -v: {stdout}"
    );
    assert!(
        !stdout.contains("Initialized docker container"),
        "only at -d: {stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "WARNING: engine: creating container {job}: Published ports are discarded when using host network mode"
        )),
        "the engine's warning is a warning: {stderr}"
    );

    support::docker(&["rm", &job]);
    let out = sb.ok(&["-v", "-d", "run", &format!("{id}/start")]);
    let container_id = sb.inspect(&job, "{{.Id}}").unwrap();
    assert!(
        out.contains(&format!(
            "INFO: Created container {job} with Id {container_id}"
        )),
        "{out}"
    );
    let initialized = out
        .find(&format!("DEBUG: Initialized docker container {job}"))
        .expect(&out);
    let step = out
        .find(&format!("INFO: Executing step create on {job}"))
        .expect(&out);
    assert!(initialized < step, "{out}");
}

/// A container whose main process ignores SIGTERM (a PID 1 without a handler does), so a
/// stop takes the whole timeout.
fn stubborn(sb: &Sandbox, name: &str, greeting: &str, order: &str) {
    sb.unit(
        &sb.id,
        "start",
        &format!(
            "{name}:\n  image: {base}\n  command: [\"sleep\", \"1000\"]\n  env: {{GREETING: {greeting}}}\n---\n- {name}: {order}\n",
            base = base_image()
        ),
    );
}

#[test]
fn recreate_gives_the_old_container_the_orders_timeout() {
    let sb = Sandbox::new("recrto");
    let id = sb.id.clone();
    let name = format!("{id}-stubborn");
    stubborn(&sb, &name, "hello", "{command: start}");
    sb.ok(&["run", &format!("{id}/start")]);
    stubborn(&sb, &name, "changed", "{command: start, timeout: 1}");
    let started = std::time::Instant::now();
    let out = sb.ok(&["run", &format!("{id}/start")]);
    let took = started.elapsed().as_secs_f64();
    assert!(out.contains("Recreated container"), "{out}");
    assert!(
        took < 7.0,
        "stopped after the order's 1 s, not the default 10 s: {took:.1}s"
    );
}

#[test]
fn teardown_warns_about_a_network_another_container_holds_and_carries_on() {
    let sb = Sandbox::new("endpoint");
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let image = format!("{id}/web:latest");
    let network = format!("dstart-{id}");
    sb.write(
        "img/web/Dockerfile",
        &format!(
            "FROM {}\nCMD [\"httpd\", \"-f\", \"-p\", \"80\"]\n",
            base_image()
        ),
    );
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}:\n  build: {{path: img/web, tag: '{image}'}}\n---\n- {web}: {{command: start}}\n"
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    // A container dstart did not create, attached to the unit network.
    support::docker(&[
        "run",
        "-d",
        "--name",
        &format!("{id}-intruder"),
        "--network",
        &network,
        base_image(),
        "sleep",
        "1000",
    ]);

    for command in ["cleanup", "purge"] {
        sb.ok(&["run", &format!("{id}/start")]);
        let (stdout, stderr) = sb.fails(&["run", &format!("{id}/{command}")], 0);
        assert!(
            stderr.contains(&format!("WARNING: lifecycle: could not remove network {network}, which {id}-intruder still uses (carrying on)")),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("has active endpoints"), "{stderr}");
        assert!(
            !sb.exists(&web),
            "{command} removed the web server: {stdout}"
        );
        assert!(
            sb.exists(&network),
            "the network stays while the other container uses it"
        );
    }
    assert!(
        !docker_output(&["image", "inspect", &image])
            .status
            .success(),
        "purge went on to remove the image"
    );
}

#[test]
fn build_path_and_relative_bind_resolve_against_the_config_dir_from_another_cwd() {
    let sb = Sandbox::new("cwd");
    let id = sb.id.clone();
    sb.write(
        "img/Dockerfile",
        &format!("FROM {}\nRUN echo built-{id} > /built\n", base_image()),
    );
    sb.write("www/page", &format!("page-{id}\n"));
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-c:\n  build: {{path: img, tag: '{id}/c'}}\n  command: [\"cat\", \"/built\", \"/www/page\"]\n  volumes: ['./www:/www:ro']\n---\n- {id}-c: {{command: start, attach: true}}\n"
        ),
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let stdout = sb.ok_in(elsewhere.path(), &["-v", "run", &format!("{id}/start")]);
    assert!(stdout.contains(&format!("built-{id}")), "{stdout}");
    assert!(stdout.contains(&format!("page-{id}")), "{stdout}");
}

#[test]
fn config_dir_and_pwd_placeholders_resolve_in_binds() {
    let sb = Sandbox::new("placeh");
    let id = sb.id.clone();
    sb.write(
        "services/app/Dockerfile",
        &format!("FROM {}\n", base_image()),
    );
    sb.write("services/app/etc/conf", "from-the-build-dir\n");
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cwd.path().join("data")).unwrap();
    std::fs::write(cwd.path().join("data/file"), "from-the-cwd\n").unwrap();
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-app:\n  build: {{path: services/app, tag: '{id}/app'}}\n  command: [\"cat\", \"/etc-app/conf\", \"/data/file\"]\n  volumes: ['${{PWD}}/data:/data:ro']\n  startup:\n    binds:\n      ${{CONFIG_DIR}}/etc: {{bind: /etc-app, ro: true}}\n---\n- {id}-app: {{command: start, attach: true}}\n"
        ),
    );
    let stdout = sb.ok_in(cwd.path(), &["-v", "run", &format!("{id}/start")]);
    assert!(stdout.contains("from-the-build-dir"), "{stdout}");
    assert!(stdout.contains("from-the-cwd"), "{stdout}");
    let binds = sb
        .inspect(&format!("{id}-app"), "{{json .HostConfig.Binds}}")
        .unwrap();
    assert!(
        binds.contains(&format!(
            "{}/services/app/etc:/etc-app:ro",
            sb.conf().display()
        )),
        "{binds}"
    );
    assert!(
        binds.contains(&format!("{}/data:/data:ro", cwd.path().display())),
        "{binds}"
    );
}

#[test]
fn fixed_host_ports_and_udp_are_published_as_asked() {
    let sb = Sandbox::new("ports");
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sb.write("www/index.html", &format!("fixed-{id}\n"));
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}:\n  image: {base}\n  command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n  volumes: ['./www:/www:ro']\n  ports: ['127.0.0.1:{tcp}:80', '127.0.0.1:{udp}:53/udp']\n---\n- {web}: {{command: start, ready: {{http: 'http://127.0.0.1:{tcp}/', timeout: 20}}}}\n",
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let binding = |key: &str| {
        sb.inspect(
            &web,
            &format!(
                "{{{{range (index .NetworkSettings.Ports \"{key}\")}}}}{{{{.HostIp}}}}:{{{{.HostPort}}}}{{{{end}}}}"
            ),
        )
        .unwrap()
    };
    assert_eq!(binding("80/tcp"), format!("127.0.0.1:{tcp}"));
    assert_eq!(binding("53/udp"), format!("127.0.0.1:{udp}"));
    let page = std::process::Command::new("busybox")
        .args(["wget", "-q", "-O-", &format!("http://127.0.0.1:{tcp}/")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&page.stdout),
        format!("fixed-{id}\n")
    );
}

#[test]
fn generated_build_builds_the_images_and_creates_nothing() {
    let sb = Sandbox::new("genbuild");
    web_unit(&sb);
    let id = sb.id.clone();
    let out = sb.ok(&["run", &format!("{id}/build")]);
    assert!(
        out.contains(&format!("Executing step build on {id}-data")),
        "{out}"
    );
    assert!(
        !out.contains(&format!("on {id}-web")),
        "an image-only container is not built: {out}"
    );
    assert!(
        docker_output(&["image", "inspect", &format!("{id}/data:latest")])
            .status
            .success()
    );
    assert!(!sb.exists(&format!("{id}-data")));
    assert!(!sb.exists(&format!("{id}-web")));
}

#[test]
fn generated_create_creates_the_containers_without_starting_them() {
    let sb = Sandbox::new("gencreate");
    web_unit(&sb);
    let id = sb.id.clone();
    sb.ok(&["run", &format!("{id}/create")]);
    for name in [format!("{id}-data"), format!("{id}-web")] {
        assert_eq!(
            sb.inspect(&name, "{{.State.Status}}").as_deref(),
            Some("created"),
            "{name}"
        );
    }
}

#[test]
fn generated_restart_restarts_the_started_containers_only() {
    let sb = Sandbox::new("genrestart");
    web_unit(&sb);
    let id = sb.id.clone();
    let web = format!("{id}-web");
    let data = format!("{id}-data");
    sb.ok(&["run", &format!("{id}/start")]);
    let before = sb.inspect(&web, "{{.State.StartedAt}}").unwrap();
    let out = sb.ok(&["run", &format!("{id}/restart")]);
    assert!(out.contains(&format!("Started container {web}")), "{out}");
    assert!(sb.running(&web));
    assert_ne!(
        sb.inspect(&web, "{{.State.StartedAt}}").unwrap(),
        before,
        "restarted"
    );
    assert_eq!(
        sb.inspect(&data, "{{.State.Status}}").as_deref(),
        Some("created"),
        "a container that start only creates is not started: {out}"
    );
}

#[test]
fn purge_removes_the_data_containers_anonymous_volume() {
    let sb = Sandbox::new("purgevol");
    web_unit(&sb);
    let id = sb.id.clone();
    sb.ok(&["run", &format!("{id}/start")]);
    let volume = sb
        .inspect(&format!("{id}-data"), "{{range .Mounts}}{{.Name}}{{end}}")
        .unwrap();
    assert_eq!(volume.len(), 64, "the image's VOLUME: {volume}");
    sb.ok(&["run", &format!("{id}/cleanup")]);
    assert!(
        docker_output(&["volume", "inspect", &volume])
            .status
            .success(),
        "cleanup keeps it"
    );
    sb.ok(&["run", &format!("{id}/purge")]);
    assert!(
        !docker_output(&["volume", "inspect", &volume])
            .status
            .success(),
        "purge removes it"
    );
}
