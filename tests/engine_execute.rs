//! `execute` orders in each type, and SIGINT in the middle of a unit.

mod support;

use std::time::{Duration, Instant};

use support::{Sandbox, base_image};

/// A data container with a file in its volume, a running server, and `execute` orders.
fn unit(sb: &Sandbox, orders: &str) {
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-data:
  image: {base}
  command: ["true"]
  volumes: ['/data']
{id}-srv:
  image: {base}
  command: ["sh", "-c", "echo in-srv > /tmp/marker; trap 'exit 0' TERM; while true; do sleep 1; done"]
---
- {id}-data: {{command: create}}
- {id}-srv: {{command: start}}
{orders}"#,
            base = base_image()
        ),
    );
}

#[test]
fn execute_on_the_file_system_of_a_stopped_container() {
    let sb = Sandbox::new("exfs");
    let id = sb.id.clone();
    unit(
        &sb,
        &format!(
            "- {id}-data: {{command: execute, run: 'echo stored > /data/f'}}\n- {id}-data: {{command: execute, run: [cat, /data/f]}}\n"
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(out.contains("on file system of container"), "{out}");
    assert!(out.contains("stored"), "{out}");
    assert_eq!(
        sb.inspect(&format!("{id}-data"), "{{.State.Status}}")
            .as_deref(),
        Some("created")
    );
    let helpers = support::docker(&["ps", "-aq", "--filter", &format!("name={id}-data_exec")]);
    assert_eq!(helpers, "", "helper containers are removed");
}

#[test]
fn execute_in_running_temporary_and_host() {
    let sb = Sandbox::new("exrun");
    let id = sb.id.clone();
    unit(
        &sb,
        &format!(
            "- {id}-srv: {{command: execute, type: in_running, run: [cat, /tmp/marker]}}\n- {id}-srv: {{command: execute, type: temporary, run: 'test ! -e /tmp/marker && echo fresh-container'}}\n- host: {{command: execute, run: [echo, on-the-host]}}\n"
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(
        out.contains("in-srv"),
        "exec ran in the running container: {out}"
    );
    assert!(
        out.contains("fresh-container"),
        "temporary ran in a new container: {out}"
    );
    assert!(out.contains("on-the-host"), "{out}");
    let temps = support::docker(&["ps", "-aq", "--filter", &format!("name={id}-srv_tmp")]);
    assert_eq!(temps, "", "temporary containers are removed");
}

#[test]
fn in_running_falls_back_to_temporary_when_stopped() {
    let sb = Sandbox::new("exfb");
    let id = sb.id.clone();
    unit(
        &sb,
        &format!(
            "- {id}-srv: {{command: stop}}\n- {id}-srv: {{command: execute, type: in_running, run: [echo, fallback-ran]}}\n"
        ),
    );
    let out = sb.ok(&["-v", "-d", "run", &format!("{id}/start")]);
    assert!(
        out.contains("executing in a temporary container instead"),
        "{out}"
    );
    assert!(out.contains("fallback-ran"), "{out}");
}

#[test]
fn failing_execute_reports_its_exit_code_in_every_type() {
    let sb = Sandbox::new("exfail");
    let id = sb.id.clone();
    for (i, order) in [
        format!("- {id}-data: {{command: execute, run: 'echo oops-fs; exit 4'}}"),
        format!(
            "- {id}-srv: {{command: execute, type: in_running, run: 'echo oops-exec; exit 5'}}"
        ),
        format!("- {id}-srv: {{command: execute, type: temporary, run: 'echo oops-tmp; exit 6'}}"),
        "- host: {command: execute, run: 'echo oops-host; exit 7'}".to_string(),
    ]
    .iter()
    .enumerate()
    {
        unit(&sb, &format!("{order}\n"));
        let (_, stderr) = sb.fails(&["run", &format!("{id}/start")], 1);
        let code = 4 + i;
        assert!(
            stderr.contains(&format!("exit code {code}"))
                || stderr.contains(&format!("error code {code}")),
            "{stderr}"
        );
        let word = ["oops-fs", "oops-exec", "oops-tmp", "oops-host"][i];
        assert!(
            stderr.contains(word),
            "the last lines of output are shown: {stderr}"
        );
    }
}

/// Sends `signal` to dstart while a helper container of its second order runs: no new order
/// starts, the helper is removed, dstart exits with 128 + the signal's number.
fn interrupted_mid_unit(test: &str, signal: nix::sys::signal::Signal) {
    let sb = Sandbox::new(test);
    let id = sb.id.clone();
    unit(
        &sb,
        &format!(
            "- {id}-data: {{command: execute, run: 'echo started; sleep 60'}}\n- {id}-srv: {{command: stop}}\n"
        ),
    );
    let mut child = sb
        .command(&["run", &format!("{id}/start")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dstart runs");
    // Wait until the helper container runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let helpers = support::docker(&["ps", "-q", "--filter", &format!("name={id}-data_exec")]);
        if !helpers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the helper never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        signal,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + signal as i32));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        !out.contains(&format!("Executing step stop on {id}-srv")),
        "no new order starts: {out}"
    );
    assert_eq!(
        support::docker(&["ps", "-aq", "--filter", &format!("name={id}-data_exec")]),
        "",
        "the helper is removed"
    );
    assert!(
        sb.running(&format!("{id}-srv")),
        "the order after the interrupt did not run"
    );
}

#[test]
fn sigint_stops_the_unit_and_removes_temporary_containers() {
    interrupted_mid_unit("sigint", nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_stops_the_unit_and_removes_temporary_containers() {
    interrupted_mid_unit("sigterm", nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn ip_and_inspect_paths_are_substituted_at_run_time() {
    let sb = Sandbox::new("subst");
    let id = sb.id.clone();
    let srv = format!("{id}-srv");
    unit(
        &sb,
        &format!(
            "- host: {{command: execute, run: [echo, 'ip=[[ip]]({srv})', 'image=[[.Config.Image]]({srv})', 'base=[[.Id]](image://{base})']}}\n",
            base = base_image()
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    let ip = sb
        .inspect(
            &srv,
            &format!("{{{{(index .NetworkSettings.Networks \"dstart-{id}\").IPAddress}}}}"),
        )
        .unwrap();
    assert!(!ip.is_empty());
    let image_id = support::docker(&["image", "inspect", "-f", "{{.Id}}", base_image()]);
    assert!(
        out.contains(&format!("ip={ip} image={} base={image_id}", base_image())),
        "{out}"
    );
}
