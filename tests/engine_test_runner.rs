//! `UNIT/test[:VARIANTS]` against the real engine: checks that pass and fail, HTTPS with a
//! private CA, jobs, custom variants keeping files in the test data container, production
//! mode, teardown after a failed setup and after an interrupt, and the promise that a test run
//! never touches the production containers of its unit.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use dstart::generate::testplan::tempid;
use support::{Sandbox, base_image, docker, docker_output};

/// A sandbox whose test runs keep their files in its own test data container
/// (`<id>-testdata`, removed with the sandbox) instead of the machine's `test_data`.
fn sandbox(test: &str) -> Sandbox {
    let sb = Sandbox::new(test);
    sb.write(
        "environments/test-data.yaml",
        &format!("TEST_DATA_CONTAINER: {}\n", sb.name("testdata")),
    );
    sb
}

/// Names of containers, volumes and networks that carry `tempid`.
fn leftovers(tempid: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, args) in [
        ("container", ["ps", "-a", "--format", "{{.Names}}"]),
        ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
        ("network", ["network", "ls", "--format", "{{.Name}}"]),
    ] {
        for name in docker(&args).lines() {
            if name.contains(tempid) {
                out.push(format!("{kind} {name}"));
            }
        }
    }
    out
}

/// Asserts that a `JUnit` report validates against `tests/fixtures/junit.xsd` and has the
/// promised shape.
fn validate_junit(path: &Path) {
    let xml = std::fs::read_to_string(path).expect("the JUnit report exists");
    for needle in [
        "<testsuites ",
        "<testsuite name=",
        " timestamp=\"",
        " hostname=\"",
        " id=\"",
        "<testcase name=",
        " classname=\"",
    ] {
        assert!(xml.contains(needle), "`{needle}` missing in:\n{xml}");
    }
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd");
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "the JUnit report does not validate:\n{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!(
            "note: xmllint not available ({e}); only the structure was checked (apt-get install libxml2-utils)"
        ),
    }
}

/// A busybox httpd serving `text` as its index page on an ephemeral port of 127.0.0.1.
fn httpd(text: &str) -> String {
    format!(
        "  image: {base}\n  command: [\"sh\", \"-c\", \"mkdir -p /www && echo '{text}' > /www/index.html && exec httpd -f -p 80 -h /www\"]\n  ports: [\"127.0.0.1::80\"]\n",
        base = base_image()
    )
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn daemon_checks_pass_and_fail_with_reasons_and_a_valid_junit_report() {
    let sb = sandbox("tdaemon");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-web:
{web}  daemon:
    home: {{url: "http://127.0.0.1:[[port 80]]({id}-web)/", status: 200, match: "hello from"}}
    wrong_status: {{url: "http://127.0.0.1:[[port 80]]({id}-web)/missing.html", status: 200, timeout: 1}}
    wrong_body: {{url: "http://127.0.0.1:[[port 80]]({id}-web)/", match: "goodbye", timeout: 1}}
{id}-dies:
  image: {base}
  command: ["sh", "-c", "echo dying on purpose; sleep 1; exit 5"]
  daemon:
    up: {{url: "http://127.0.0.1:1/", timeout: 60}}
---
- {id}-web: {{command: start}}
- {id}-dies: {{command: start}}
"#,
            web = httpd("hello from the test"),
            base = base_image()
        ),
    );
    let junit = sb.conf().join("out/report.xml");
    let (stdout, _) = sb.fails(
        &[
            "run",
            "--junit",
            &junit.display().to_string(),
            &format!("{id}/test:check"),
        ],
        1,
    );
    let t = tempid(&format!("{id}/test:check"));
    assert!(
        stdout.contains(&format!("PASS {id}/test:check {id}-web:start (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {id}-web_daemon home (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("FAIL {id}-web_daemon wrong_status (")),
        "{stdout}"
    );
    assert!(
        stdout.contains("/missing.html: expected status 200, got 404"),
        "the status mismatch says what was expected and what came back: {stdout}"
    );
    assert!(
        stdout.contains(&format!("FAIL {id}-web_daemon wrong_body (")),
        "{stdout}"
    );
    assert!(
        stdout.contains("expected the body to match `goodbye`, got: hello from the test"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS teardown {id}-web:remove (")),
        "{stdout}"
    );
    let dies = stdout
        .split(&format!("FAIL {id}-dies_daemon up ("))
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    let secs: f64 = dies.split('s').next().unwrap().parse().unwrap();
    assert!(
        secs < 30.0,
        "an exited container fails its check at once: {stdout}"
    );
    assert!(
        dies.contains(&format!(
            "container `{id}-dies_{t}` exited with code 5 while it was checked"
        )),
        "{stdout}"
    );
    assert!(
        dies.contains("dying on purpose"),
        "with its last lines: {stdout}"
    );
    assert!(stdout.ends_with("8 passed, 3 failed\n"), "{stdout}");
    validate_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            "<testsuite name=\"{id}-web_daemon\" tests=\"3\" failures=\"2\""
        )),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"GET http://127.0.0.1:"),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("id=\"{id}/test:check_{t}_1\"")),
        "{xml}"
    );
    assert_eq!(leftovers(&t), Vec::<String>::new());
}

/// A TLS server on the host (`openssl s_server`), killed when dropped.
struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA (`ca.pem`) and a server certificate for localhost/127.0.0.1 signed by it, and
/// `openssl s_server -WWW` serving `dir` over HTTPS with it.
fn tls_server(dir: &Path, index: &str) -> TlsServer {
    support::make_ca(dir);
    support::make_cert(
        dir,
        "server.pem",
        "server.key",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth",
    );
    std::fs::write(dir.join("index.html"), index).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let server = TlsServer { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("openssl s_server did not listen on {port}");
}

#[test]
fn https_daemon_check_trusts_the_ca_given_as_cert() {
    let sb = sandbox("ttls");
    let id = &sb.id;
    // busybox httpd has no TLS, and no registry can be reached for an image that has: the
    // HTTPS side is `openssl s_server` on the host, with a CA made here. A daemon check is a
    // request from the host, so where the server runs does not matter to it.
    let server = tls_server(&sb.conf().join("certs"), "secure hello\n");
    let port = server.port;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-app:
  image: {base}
  command: ["sleep", "300"]
  daemon:
    trusted: {{url: "https://localhost:{port}/index.html", cert: "certs/ca.pem", match: "secure hello"}}
    config_dir: {{url: "https://127.0.0.1:{port}/index.html", cert: "${{CONFIG_DIR}}/certs/ca.pem", status: 200}}
    untrusted: {{url: "https://localhost:{port}/index.html", error_match: "(?i)certificate|issuer", timeout: 3}}
---
- {id}-app: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let out = sb.dstart(&["run", &format!("{id}/test:check")]);
    let stdout = stdout_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for case in ["trusted", "config_dir", "untrusted"] {
        assert!(
            stdout.contains(&format!("PASS {id}-app_daemon {case} (")),
            "{stdout}"
        );
    }
    drop(server);
}

#[test]
fn job_checks_compare_exit_codes_and_logs() {
    let sb = sandbox("tjob");
    let id = &sb.id;
    let base = base_image();
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-good:
  image: {base}
  command: ["sh", "-c", "echo Success; exit 0"]
  job: {{exit_code: 0, logs: [{{re.match: "Success"}}], timeout: 20}}
{id}-bad:
  image: {base}
  command: ["sh", "-c", "echo Oops; exit 3"]
  job: {{exit_code: 0, logs: [{{re.match: "Success"}}], timeout: 20}}
{id}-tool:
  image: {base}
  command: ["true"]
  jobs:
    greet: {{args: ["sh", "-c", "echo hi from the job"], match: "hi from the job"}}
    fails: {{args: ["sh", "-c", "echo nope; exit 2"], exit_code: 0}}
---
- {id}-good: {{command: start}}
- {id}-bad: {{command: start}}
"#
        ),
    );
    let (stdout, _) = sb.fails(&["run", &format!("{id}/test:check")], 1);
    let t = tempid(&format!("{id}/test:check"));
    assert!(
        stdout.contains(&format!("PASS {id}-good_jobs {id}-good:job (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("FAIL {id}-bad_jobs {id}-bad:job (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "    expected exit code 0, got 3; expected the output to match `Success`, it does not"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("    last lines of output:\n      Oops"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {id}-tool_jobs {id}-tool:greet (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("FAIL {id}-tool_jobs {id}-tool:fails (")),
        "{stdout}"
    );
    assert!(stdout.contains("expected exit code 0, got 2"), "{stdout}");
    assert_eq!(leftovers(&t), Vec::<String>::new());
}

/// Runs `args` in a throw-away container that shares the volumes of the test data container
/// (so `/tests/...` symlinks resolve as they would for a user) and returns its output.
fn in_test_data(sb: &Sandbox, test_data: &str, args: &[&str]) -> String {
    let name = sb.name("reader");
    let mut all = vec![
        "run",
        "--rm",
        "--name",
        &name,
        "--volumes-from",
        test_data,
        base_image(),
    ];
    all.extend_from_slice(args);
    let out = docker_output(&all);
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_of(&out)
}

/// Reads a file of the test data container.
fn read_test_data(sb: &Sandbox, test_data: &str, path: &str) -> String {
    in_test_data(sb, test_data, &["cat", path])
}

#[test]
fn custom_variant_keeps_files_logs_and_environment_in_test_data() {
    let sb = sandbox("tcustom");
    let id = &sb.id;
    let base = base_image();
    let test_data = sb.name("testdata");
    sb.write("environments/greeting.yaml", "GREETING: hello\n");
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-svc:
  image: {base}
  command: ["sleep", "300"]
  working_dir: /work
  tests:
    report:
      execute: "mkdir -p /work/out && echo svc-report > /work/out/a.txt && echo skip > /work/out/b.log && echo ran in svc"
      files: ["out/*.txt"]
      capture_logs: true
{id}-tool:
  image: {base}
  command: ["true"]
  tests:
    report:
      execute: ["sh", "-c", "mkdir -p /res && echo $WHO > /res/who.txt && echo tool done"]
      extra: {{env: {{WHO: tester}}}}
      files: ["/res/"]
      capture_logs: true
---
- {id}-svc: {{command: start}}
"#
        ),
    );
    let out = sb.dstart(&["run", &format!("{id}/test:report")]);
    let stdout = stdout_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("PASS {id}-svc_report {id}-svc:report (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {id}-tool_report {id}-tool:report (")),
        "{stdout}"
    );
    let t = tempid(&format!("{id}/test:report"));

    let svc = format!("/tests/report/{id}-svc");
    assert_eq!(
        read_test_data(&sb, &test_data, &format!("{svc}/out/a.txt")),
        "svc-report\n"
    );
    assert!(
        read_test_data(&sb, &test_data, &format!("{svc}/logs.txt")).contains("ran in svc"),
        "the running container ran the test (exec)"
    );
    let junit = read_test_data(&sb, &test_data, &format!("{svc}/junit.xml"));
    assert!(junit.contains(&format!("{id}-svc:report")), "{junit}");
    let env = read_test_data(&sb, &test_data, &format!("{svc}/environment.yaml"));
    assert!(env.contains("GREETING: hello"), "{env}");
    assert!(env.contains(&format!("tempid: {t}")), "{env}");
    assert!(!env.contains("osenv"), "{env}");
    let listing = docker_output(&[
        "run",
        "--rm",
        "--name",
        &sb.name("lister"),
        "--volumes-from",
        &test_data,
        base_image(),
        "find",
        "/archives/report",
    ]);
    let listing = stdout_of(&listing);
    assert!(
        !listing.contains("b.log"),
        "only the globbed files: {listing}"
    );

    let tool = format!("/tests/report/{id}-tool");
    assert_eq!(
        read_test_data(&sb, &test_data, &format!("{tool}/res/who.txt")),
        "tester\n",
        "the temporary container got `extra`"
    );
    assert!(read_test_data(&sb, &test_data, &format!("{tool}/logs.txt")).contains("tool done"));
    assert!(
        !sb.exists(&format!("{id}-tool_report_{t}")),
        "the temporary test container is removed"
    );
    assert_eq!(leftovers(&t), Vec::<String>::new());
    assert!(sb.exists(&test_data), "teardown keeps the test data");
}

fn id_and_start(sb: &Sandbox, name: &str) -> Option<String> {
    sb.inspect(name, "{{.Id}} {{.State.StartedAt}} {{.State.Running}}")
}

#[test]
fn production_mode_checks_the_live_containers_and_leaves_them_running() {
    let sb = sandbox("tprod");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-web:
{web}  daemon:
    home: {{url: "http://127.0.0.1:[[port 80]]({id}-web)/", match: "live site"}}
{id}-once:
  image: {base}
  command: ["sh", "-c", "echo Success"]
  job: {{logs: [Success]}}
---
- {id}-once: {{command: start, attach: true}}
- {id}-web: {{command: start}}
"#,
            web = httpd("live site"),
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let web = format!("{id}-web");
    let before = id_and_start(&sb, &web);

    let printed = sb.ok(&["run", "--print-unit", &format!("{id}/test:production")]);
    assert!(printed.contains("production: true"), "{printed}");
    let t = tempid(&format!("{id}/test:production"));
    assert!(
        !printed.contains(&format!("_{t}")),
        "no pseudonames: {printed}"
    );

    let stdout = sb.ok(&["run", "--production", &format!("{id}/test")]);
    assert!(
        stdout.contains(&format!("PASS {web}_daemon home (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {id}-once_jobs {id}-once:job (")),
        "{stdout}"
    );
    assert!(!stdout.contains(":start ("), "no setup: {stdout}");
    assert!(!stdout.contains("teardown"), "no teardown: {stdout}");
    assert!(stdout.ends_with("2 passed, 0 failed\n"), "{stdout}");
    assert_eq!(id_and_start(&sb, &web), before, "left running as it was");
    assert!(sb.running(&web));
}

#[test]
fn a_failed_setup_fails_the_checks_and_the_teardown_leaves_nothing() {
    let sb = sandbox("tsetup");
    let id = &sb.id;
    let base = base_image();
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-data:
  image: {base}
  command: ["true"]
  volumes: ["{id}-vol:/data", "/anon"]
{id}-web:
  image: {base}
  command: ["sleep", "300"]
  startup: {{volumes_from: {id}-data}}
  daemon:
    home: {{url: "http://127.0.0.1:1/", timeout: 1}}
{id}-broken:
  image: {base}
  command: ["sh", "-c", "echo broken on purpose; exit 4"]
---
- {id}-data: {{command: create}}
- {id}-web: {{command: start}}
- {id}-broken: {{command: start, attach: true}}
- {id}-web: {{command: start, restart: true}}
"#
        ),
    );
    let (stdout, _) = sb.fails(&["run", &format!("{id}/test:check")], 1);
    let t = tempid(&format!("{id}/test:check"));
    assert!(
        stdout.contains(&format!("FAIL {id}/test:check {id}-broken:start (")),
        "{stdout}"
    );
    assert!(stdout.contains("exit code 4"), "{stdout}");
    assert!(stdout.contains("broken on purpose"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAIL {id}/test:check {id}-web:start (0.00s)\n    setup failed\n"
        )),
        "setup cases after the failure do not run: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "FAIL {id}-web_daemon home (0.00s)\n    setup failed\n"
        )),
        "{stdout}"
    );
    for removed in [
        format!("PASS teardown {id}-web:remove ("),
        format!("PASS teardown {id}-data:remove ("),
        "PASS teardown leftovers (".to_string(),
    ] {
        assert!(stdout.contains(&removed), "{stdout}");
    }
    assert_eq!(leftovers(&t), Vec::<String>::new(), "{stdout}");
    assert!(
        !sb.exists(&format!("{id}-vol")),
        "nothing under production names either"
    );
}

#[test]
fn a_test_run_never_touches_the_production_containers() {
    let sb = sandbox("tsafe");
    let id = &sb.id;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-data:
  image: {base}
  command: ["true"]
  volumes: ["{id}-vol:/data"]
{id}-web:
  image: {base}
  command: ["sh", "-c", "mkdir -p /www && echo prod-or-test > /www/index.html && exec httpd -f -p 80 -h /www"]
  ports: ["127.0.0.1:{port}:80"]
  startup: {{volumes_from: {id}-data}}
  daemon:
    home: {{url: "http://127.0.0.1:[[port 80]]({id}-web)/", match: "prod-or-test"}}
---
- {id}-data: {{command: create}}
- {id}-web: {{command: start}}
"#,
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let names = [format!("{id}-data"), format!("{id}-web")];
    let before: Vec<Option<String>> = names.iter().map(|n| id_and_start(&sb, n)).collect();
    let watch = support::ContainerEvents::watch(&names);

    let stdout = sb.ok(&["run", &format!("{id}/test:check")]);
    let t = tempid(&format!("{id}/test:check"));
    assert!(
        stdout.contains(&format!("PASS {id}-web_daemon home (")),
        "the test copy runs beside production (its host port is ephemeral): {stdout}"
    );

    let events = watch.stop().join("\n");
    let after: Vec<Option<String>> = names.iter().map(|n| id_and_start(&sb, n)).collect();
    assert_eq!(before, after, "same containers, not restarted");
    assert!(sb.running(&names[1]));
    let touched: Vec<&str> = events
        .lines()
        .filter(|l| names.iter().any(|n| l.ends_with(&format!(" {n}"))))
        .collect();
    assert_eq!(
        touched,
        Vec::<&str>::new(),
        "no event on a production container"
    );
    assert!(
        events.contains(&format!("container create {id}-web_{t}")),
        "the events are seen at all: {events}"
    );
    assert!(
        sb.exists(&format!("{id}-vol")),
        "the production volume stays"
    );
    assert!(
        sb.inspect(&format!("dstart-{id}"), "{{.Name}}").is_some(),
        "the production network stays"
    );
    assert_eq!(leftovers(&t), Vec::<String>::new(), "{stdout}");
}

#[test]
fn an_interrupted_test_run_tears_down_and_exits_130() {
    let sb = sandbox("tint");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-web:
  image: {base}
  command: ["sleep", "300"]
  daemon:
    never: {{url: "http://127.0.0.1:1/", timeout: 120}}
---
- {id}-web: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let (mut child, mut reader, seen) =
        support::spawn_until_started(sb.command(&["run", &format!("{id}/test:check")]));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let pid = i32::try_from(child.id()).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains(&format!("PASS teardown {id}-web:remove (")),
        "{seen}{rest}"
    );
    let t = tempid(&format!("{id}/test:check"));
    assert_eq!(leftovers(&t), Vec::<String>::new(), "{seen}{rest}");
}

/// SIGTERM while the test copy's `start` waits on its `ready:`: the wait ends at once, the
/// teardown removes the test copy, and dstart exits with 143 (SIGINT: 130, above).
#[test]
fn sigterm_while_waiting_on_ready_tears_down_and_exits_143() {
    let sb = sandbox("tterm");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-web:
  image: {base}
  command: ["sleep", "300"]
---
- {id}-web: {{command: start, ready: {{log: "never printed", timeout: 120}}}}
"#,
            base = base_image()
        ),
    );
    let t = tempid(&format!("{id}/test"));
    let copy = format!("{id}-web_{t}");
    let child = sb
        .command(&["run", &format!("{id}/test")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dstart starts");
    // Once the test copy runs, dstart waits for a line it never prints.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while docker(&["ps", "-q", "--filter", &format!("name=^{copy}$")]).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the test copy never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(143), "{stdout}{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the wait for `ready:` (120 s) ended on the signal: {stdout}{stderr}"
    );
    for line in [
        format!("FAIL {id}/test {id}-web:start ("),
        format!("PASS teardown {id}-web:remove ("),
    ] {
        assert!(stdout.contains(&line), "{line}: {stdout}{stderr}");
    }
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(leftovers(&t), Vec::<String>::new(), "{stdout}{stderr}");
}

#[test]
fn full_builds_pseudo_tagged_images_and_removes_them() {
    let sb = sandbox("tfull");
    let id = &sb.id;
    sb.write(
        "img/base/Dockerfile",
        &format!("FROM {}\nRUN echo base > /base.txt\n", base_image()),
    );
    sb.write(
        "img/app/Dockerfile",
        &format!("FROM {id}/base\nCMD [\"sh\", \"-c\", \"cat /base.txt; echo app ok\"]\n"),
    );
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-base:
  build: {{path: img/base, tag: "{id}/base"}}
{id}-app:
  build: {{path: img/app, tag: "{id}/app:1"}}
  job: {{logs: ["base", "app ok"]}}
---
- {id}-base: {{command: build}}
- {id}-app: {{command: start, attach: true}}
"#
        ),
    );
    let stdout = sb.ok(&["run", &format!("{id}/test:full:check")]);
    let t = tempid(&format!("{id}/test:full:check"));
    assert!(
        stdout.contains(&format!("PASS {id}-app_jobs {id}-app:job (")),
        "the app image was built FROM the test's base image: {stdout}"
    );
    for removed in ["app", "base"] {
        assert!(
            stdout.contains(&format!("PASS teardown {id}-{removed}:remove_image (")),
            "{stdout}"
        );
    }
    let images = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let ours: Vec<&str> = images
        .lines()
        .filter(|i| i.starts_with(id.as_str()))
        .collect();
    assert!(
        ours.iter().all(|i| !i.contains(&t)),
        "no pseudo-tagged image is left: {ours:?}"
    );
    assert!(
        !ours.contains(&format!("{id}/base:latest").as_str())
            && !ours.contains(&format!("{id}/app:1").as_str()),
        "a full test never builds the production tags: {ours:?}"
    );
    assert_eq!(leftovers(&t), Vec::<String>::new());
}

/// The seconds a case took, from its `PASS|FAIL <suite> <case> (<secs>s)` line.
fn case_secs(stdout: &str, line_start: &str) -> f64 {
    let rest = stdout
        .split(line_start)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{line_start}` in:\n{stdout}"));
    rest.trim_start_matches(" (")
        .split("s)")
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time after `{line_start}` in:\n{stdout}"))
}

/// The lines under a case's `PASS|FAIL` line: its failure reason.
fn reason(stdout: &str, line_start: &str) -> String {
    let rest = stdout
        .split(line_start)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{line_start}` in:\n{stdout}"));
    rest.lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A CGI script for busybox httpd that answers with what it got: method, the `X-Token`
/// header, the content type and the body.
const ECHO_CGI: &str = r#"#!/bin/sh
echo "Content-Type: text/plain"
echo ""
echo "method=$REQUEST_METHOD"
echo "token=$HTTP_X_TOKEN"
echo "type=$CONTENT_TYPE"
printf 'body='
head -c "${CONTENT_LENGTH:-${HTTP_CONTENT_LENGTH:-0}}"
echo
"#;

#[test]
fn daemon_list_form_sends_method_headers_and_body() {
    use std::os::unix::fs::PermissionsExt;
    let sb = sandbox("tlist");
    let id = &sb.id;
    sb.write("www/index.html", "the echo server\n");
    let cgi = sb.write("www/cgi-bin/echo", ECHO_CGI);
    std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = format!("http://127.0.0.1:[[port 80]]({id}-echo)");
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-echo:
  image: {base}
  command: ["httpd", "-f", "-p", "80", "-h", "/www"]
  volumes: ["./www:/www:ro"]
  ports: ["127.0.0.1::80"]
  daemon:
    - GET: {{url: "{url}/", re.match: "the echo server"}}
    - POST:
        url: "{url}/cgi-bin/echo"
        headers: {{X-Token: secret-42, Content-Type: application/json}}
        body: '{{"ping": true}}'
        re.match: '(?s)method=POST.*token=secret-42.*type=application/json.*body=\{{"ping": true\}}'
    - PUT: {{url: "{url}/cgi-bin/echo", body: "put body", re.match: '(?s)method=PUT.*body=put body'}}
    - DELETE: {{url: "{url}/cgi-bin/echo", headers: {{X-Token: gone}}, re.match: '(?s)method=DELETE.*token=gone'}}
    - GET: {{url: "{url}/cgi-bin/echo", headers: {{X-Token: wrong}}, re.match: "token=secret-42", timeout: 1}}
    - GET: {{url: "{url}/missing.html", timeout: 1}}
---
- {id}-echo: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let (stdout, _) = sb.fails(&["run", &format!("{id}/test:check")], 1);
    let suite = format!("{id}-echo_daemon");
    for case in [
        "0:GET {url}/",
        "1:POST {url}/cgi-bin/echo",
        "2:PUT {url}/cgi-bin/echo",
        "3:DELETE {url}/cgi-bin/echo",
    ] {
        let case = case.replace("{url}", &url);
        assert!(
            stdout.contains(&format!("PASS {suite} {case} (")),
            "`{case}` passes: {stdout}"
        );
    }
    let wrong = reason(&stdout, &format!("FAIL {suite} 4:GET {url}/cgi-bin/echo"));
    assert!(
        wrong.contains(
            "expected the body to match `token=secret-42`, got: method=GET token=wrong type= body="
        ),
        "the server got the header and answered what it got: {stdout}"
    );
    let missing = reason(&stdout, &format!("FAIL {suite} 5:GET {url}/missing.html"));
    assert!(
        missing.contains("/missing.html: expected status 200, got 404"),
        "{stdout}"
    );
    assert!(stdout.ends_with("8 passed, 2 failed\n"), "{stdout}");
    assert_eq!(
        leftovers(&tempid(&format!("{id}/test:check"))),
        Vec::<String>::new()
    );
}

#[test]
fn daemon_checks_retry_until_a_late_server_answers() {
    let sb = sandbox("tlate");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-late:
  image: {base}
  command: ["sh", "-c", "sleep 2; mkdir -p /www && echo finally up > /www/index.html && exec httpd -f -p 80 -h /www"]
  ports: ["127.0.0.1::80"]
  daemon:
    late: {{url: "http://127.0.0.1:[[port 80]]({id}-late)/", match: "finally up", timeout: 20}}
    missing: {{url: "http://127.0.0.1:[[port 80]]({id}-late)/missing.html", timeout: 2}}
---
- {id}-late: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let junit = sb.conf().join("report.xml");
    let (stdout, _) = sb.fails(
        &[
            "run",
            "--junit",
            &junit.display().to_string(),
            &format!("{id}/test:check"),
        ],
        1,
    );
    let late = case_secs(&stdout, &format!("PASS {id}-late_daemon late"));
    assert!(
        late > 1.0,
        "the check kept trying until the server was up ({late}s): {stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("attempt 1: GET http://127.0.0.1:"),
        "the first attempts failed: {xml}"
    );
    assert!(xml.contains(" passed (attempt "), "{xml}");

    let missing = reason(&stdout, &format!("FAIL {id}-late_daemon missing"));
    let mut lines = missing.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("    GET http://127.0.0.1:")
            && first.contains("/missing.html: expected status 200, got 404; body: "),
        "{stdout}"
    );
    let last = lines.next().unwrap_or_default();
    let attempts: u32 = last
        .strip_prefix("    (still failing after 2s and ")
        .and_then(|l| l.strip_suffix(" attempts)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{last}` is no retry summary: {stdout}"));
    // Every half second, within 2 s: 5 attempts, fewer only on a very busy machine.
    assert!((3..=5).contains(&attempts), "{stdout}");
    let secs = case_secs(&stdout, &format!("FAIL {id}-late_daemon missing"));
    assert!((2.0..4.0).contains(&secs), "{stdout}");
}

#[test]
fn a_hanging_server_costs_a_check_its_timeout_and_an_exit_ends_the_wait() {
    let sb = sandbox("thang");
    let id = &sb.id;
    // `nc -l` accepts a connection and never answers (its input never ends). `quits` is
    // checked through `sink`, which hangs too, and exits while its request waits: the exit
    // must end the case, not the request's limit (30 s) or the check's timeout.
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-hang:
  image: {base}
  command: ["sh", "-c", "sleep 3600 | nc -l -p 80"]
  ports: ["127.0.0.1::80"]
  daemon:
    hangs: {{url: "http://127.0.0.1:[[port 80]]({id}-hang)/", timeout: 1}}
{id}-sink:
  image: {base}
  command: ["sh", "-c", "sleep 3600 | nc -l -p 80"]
  ports: ["127.0.0.1::80"]
{id}-quits:
  image: {base}
  command: ["sh", "-c", "sleep 4; echo quitting now; exit 7"]
  daemon:
    quits: {{url: "http://127.0.0.1:[[port 80]]({id}-sink)/", timeout: 60}}
---
- {id}-hang: {{command: start}}
- {id}-sink: {{command: start}}
- {id}-quits: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let (stdout, _) = sb.fails(&["run", &format!("{id}/test:check")], 1);
    let hangs = case_secs(&stdout, &format!("FAIL {id}-hang_daemon hangs"));
    assert!(
        hangs < 2.5,
        "a request is bounded by the check's timeout ({hangs}s): {stdout}"
    );
    let why = reason(&stdout, &format!("FAIL {id}-hang_daemon hangs"));
    assert!(why.contains(": no answer within "), "{stdout}");
    assert!(
        why.ends_with("(still failing after 1s and 1 attempt)"),
        "{stdout}"
    );
    let quits = case_secs(&stdout, &format!("FAIL {id}-quits_daemon quits"));
    assert!(quits < 8.0, "{quits}s: {stdout}");
    let why = reason(&stdout, &format!("FAIL {id}-quits_daemon quits"));
    let t = tempid(&format!("{id}/test:check"));
    assert!(
        why.contains(&format!(
            "container `{id}-quits_{t}` exited with code 7 while it was checked"
        )) && why.contains("quitting now"),
        "{stdout}"
    );
    assert_eq!(leftovers(&t), Vec::<String>::new());
}

#[test]
fn a_job_that_does_not_exit_in_time_fails_and_jobs_keep_their_files() {
    let sb = sandbox("tjobt");
    let id = &sb.id;
    let test_data = sb.name("testdata");
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-slow:
  image: {base}
  command: ["sh", "-c", "echo still busy; sleep 300"]
  job: {{timeout: 1}}
{id}-tool:
  image: {base}
  command: ["true"]
  jobs:
    report: {{args: ["sh", "-c", "mkdir -p /out/sub && echo kept > /out/sub/a.txt && echo report done"], match: "report done", files: ["/out/"]}}
    stuck: {{args: ["sh", "-c", "echo stuck here; sleep 300"], timeout: 1}}
---
- {id}-slow: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let (stdout, _) = sb.fails(&["run", &format!("{id}/test:check")], 1);
    let t = tempid(&format!("{id}/test:check"));
    let slow = format!("FAIL {id}-slow_jobs {id}-slow:job");
    assert!(case_secs(&stdout, &slow) < 5.0, "{stdout}");
    let why = reason(&stdout, &slow);
    assert!(
        why.contains(&format!("container `{id}-slow_{t}` did not exit within 1s"))
            && why.contains("still busy"),
        "{stdout}"
    );
    let stuck = format!("FAIL {id}-tool_jobs {id}-tool:stuck");
    assert!(case_secs(&stdout, &stuck) < 5.0, "{stdout}");
    let why = reason(&stdout, &stuck);
    assert!(
        why.contains(&format!("`{id}-tool_stuck_{t}` did not finish within 1s"))
            && why.contains("stuck here"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {id}-tool_jobs {id}-tool:report (")),
        "{stdout}"
    );
    assert_eq!(
        read_test_data(
            &sb,
            &test_data,
            &format!("/tests/check/{id}-tool/out/sub/a.txt")
        ),
        "kept\n",
        "the files of a `jobs` run are kept in test_data"
    );
    assert!(stdout.ends_with("5 passed, 2 failed\n"), "{stdout}");
    assert_eq!(leftovers(&t), Vec::<String>::new());
}

#[test]
fn custom_variant_overwrites_replace_keys_with_references_renamed() {
    let sb = sandbox("tover");
    let id = &sb.id;
    let test_data = sb.name("testdata");
    // `tool` takes its volumes from `other`, which the unit never creates: only a
    // `volumes_from` replaced (not merged) by the renamed `data` lets its container start.
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-data:
  image: {base}
  command: ["sh", "-c", "echo from the data container > /data/marker"]
  volumes: ["/data"]
{id}-other:
  image: {base}
  command: ["true"]
  volumes: ["/data"]
{id}-tool:
  image: {base}
  command: ["true"]
  env: {{MODE: production, KEEP: "yes"}}
  startup: {{volumes_from: ["{id}-other"]}}
  tests:
    over:
      execute: 'echo "MODE=$MODE KEEP=$KEEP"; cat /data/marker; test "$MODE" = test && test -z "$KEEP"'
      overwrites: {{env: {{MODE: test}}, volumes_from: ["{id}-data"]}}
      capture_logs: true
---
- {id}-data: {{command: start, attach: true}}
"#,
            base = base_image()
        ),
    );
    let stdout = sb.ok(&["run", &format!("{id}/test:over")]);
    assert!(
        stdout.contains(&format!("PASS {id}-tool_over {id}-tool:over (")),
        "{stdout}"
    );
    assert_eq!(
        read_test_data(&sb, &test_data, &format!("/tests/over/{id}-tool/logs.txt")),
        "MODE=test KEEP=\nfrom the data container\n"
    );
    assert_eq!(
        leftovers(&tempid(&format!("{id}/test:over"))),
        Vec::<String>::new()
    );
}

#[test]
fn a_test_copy_reaches_its_containers_by_key_and_by_link() {
    let sb = sandbox("tnet");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-srv:
  image: {base}
  command: ["sh", "-c", "mkdir -p /www && echo served by srv > /www/index.html && exec httpd -f -p 80 -h /www"]
{id}-cli:
  image: {base}
  command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://{id}-srv/ && break; sleep 0.5; done; wget -q -O- http://www/ | sed 's/^/by link: /'"]
  startup: {{links: ["{id}-srv:www"]}}
  job: {{logs: ["(?m)^served by srv$", "by link: served by srv"], timeout: 30}}
---
- {id}-srv: {{command: start}}
- {id}-cli: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let stdout = sb.ok(&["run", &format!("{id}/test:check")]);
    assert!(
        stdout.contains(&format!("PASS {id}-cli_jobs {id}-cli:job (")),
        "`{id}-cli_<tempid>` got the page of `{id}-srv_<tempid>` by the key `{id}-srv` and by the link alias `www`: {stdout}"
    );
    assert_eq!(
        leftovers(&tempid(&format!("{id}/test:check"))),
        Vec::<String>::new()
    );
}

#[test]
fn the_junit_report_goes_to_results_by_default() {
    let sb = sandbox("tjunit");
    let id = &sb.id;
    // A unit below a directory (`<id>/app`): its `/` becomes `_` in the file name.
    job_unit(&sb, &format!("{id}/app"));
    let command = format!("{id}/app/test:check");
    let stdout = sb.ok(&["run", &command]);
    let t = tempid(&command);
    let junit = sb.conf().join(format!("results/{id}_app_{t}.xml"));
    assert!(
        stdout.contains(&format!("Wrote the JUnit report results/{id}_app_{t}.xml")),
        "{stdout}"
    );
    validate_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!("{id}-app:job")), "{xml}");
    assert_eq!(leftovers(&t), Vec::<String>::new());
}

/// The runs archived in `dir` (`/archives/<variant>/<container>`), sorted.
fn archived_runs(sb: &Sandbox, test_data: &str, dir: &str) -> Vec<String> {
    let mut runs: Vec<String> = in_test_data(sb, test_data, &["ls", "-1", dir])
        .lines()
        .map(str::to_string)
        .collect();
    runs.sort();
    runs
}

/// A unit `unit` whose one container `<id>-app` is a job that succeeds.
fn job_unit(sb: &Sandbox, unit: &str) {
    let id = &sb.id;
    sb.unit(
        unit,
        "start",
        &format!(
            r#"{id}-app:
  image: {base}
  command: ["sh", "-c", "echo Success"]
  job: {{logs: [Success]}}
---
- {id}-app: {{command: start}}
"#,
            base = base_image()
        ),
    );
}

#[test]
fn every_run_is_archived_and_tests_points_at_the_newest() {
    let sb = sandbox("tarch");
    let id = &sb.id;
    let test_data = sb.name("testdata");
    job_unit(&sb, id);
    let runs_dir = format!("/archives/check/{id}-app");
    let link = format!("/tests/check/{id}-app");
    sb.ok(&["run", &format!("{id}/test:check")]);
    let first = archived_runs(&sb, &test_data, &runs_dir);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        in_test_data(&sb, &test_data, &["readlink", &link]).trim(),
        format!("../../archives/check/{id}-app/{}", first[0])
    );
    // Run directories are named to the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.ok(&["run", &format!("{id}/test:check")]);
    let both = archived_runs(&sb, &test_data, &runs_dir);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], first[0], "the first run is kept");
    for run in &both {
        let (date, time) = run.split_once('-').unwrap_or_default();
        assert!(
            date.len() == 8
                && time.len() == 6
                && run.chars().filter(char::is_ascii_digit).count() == 14,
            "`{run}` is no YYYYmmdd-HHMMSS"
        );
        for file in ["junit.xml", "environment.yaml"] {
            assert!(
                !read_test_data(&sb, &test_data, &format!("{runs_dir}/{run}/{file}")).is_empty(),
                "{run}/{file}"
            );
        }
    }
    assert_eq!(
        in_test_data(&sb, &test_data, &["readlink", &link]).trim(),
        format!("../../archives/check/{id}-app/{}", both[1]),
        "the link moved to the newest run"
    );
    assert!(
        read_test_data(&sb, &test_data, &format!("{link}/junit.xml"))
            .contains(&format!("{id}-app:job")),
        "the link resolves"
    );
}
