//! Issue 17's promises about test runs and output, against the real engine: secrets shown as
//! `***` everywhere dstart writes, `production: false` checks skipped against the live unit,
//! one test data container per unit, removed by its purge, and files gathered from a
//! container never written outside their directory.

mod support;

use std::path::Path;

use support::{Sandbox, base_image, docker_output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads `path` of the volumes of `test_data` (through a busybox container).
fn read_test_data(sb: &Sandbox, test_data: &str, path: &str) -> String {
    let out = docker_output(&[
        "run",
        "--rm",
        "--name",
        &sb.name("reader"),
        "--volumes-from",
        test_data,
        base_image(),
        "cat",
        path,
    ]);
    assert!(out.status.success(), "cat {path}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn secrets_are_masked_in_every_output() {
    let sb = Sandbox::new("tsecret");
    let id = &sb.id;
    let test_data = sb.name("testdata");
    let file_secret = "Pw-0f-the-env-file";
    let given_secret = "Tok-given-in-env";
    sb.write(
        "environments/db.yaml",
        &format!("DB_PASSWORD: {file_secret}\nTEST_DATA_CONTAINER: {test_data}\n"),
    );
    let unit = r#"ID-job:
  image: BASE
  env: {DB_PASSWORD: "{{ DB_PASSWORD }}", API_TOKEN: GIVEN, DB_USER: admin}
  command: ["sh", "-c", "echo password $DB_PASSWORD token $API_TOKEN user $DB_USER"]
  job: {logs: ["never printed"]}
---
- ID-job: {command: start, attach: true}
"#
    .replace("ID", id)
    .replace("BASE", base_image())
    .replace("GIVEN", given_secret);
    sb.unit(id, "start", &unit);
    let leaks = |what: &str, out: &str| {
        for secret in [file_secret, given_secret] {
            assert!(!out.contains(secret), "{what} shows `{secret}`:\n{out}");
        }
    };

    for print in ["--print-unit", "--print-only"] {
        for command in ["start", "test"] {
            let printed = sb.ok(&["run", print, &format!("{id}/{command}")]);
            leaks(print, &printed);
            let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&printed)
                .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
                .collect();
            let job = docs[0]
                .as_mapping()
                .and_then(|m| m.values().next())
                .expect("a container");
            assert_eq!(job["env"]["DB_PASSWORD"], "***", "{printed}");
            assert_eq!(job["env"]["API_TOKEN"], "***", "{printed}");
            assert_eq!(job["env"]["DB_USER"], "admin", "{printed}");
        }
    }

    let logs = tempfile::tempdir().expect("tempdir");
    let (err, info) = (logs.path().join("err.log"), logs.path().join("info.log"));
    let out = sb.dstart(&["-v", "-d", "run", &format!("{id}/start")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("password *** token *** user admin"),
        "{stdout}"
    );
    leaks("-v -d stdout", &stdout);
    leaks("-v -d stderr", &text(&out.stderr));

    let junit = logs.path().join("junit.xml");
    let args = [
        "-v",
        "-d",
        "-l",
        err.to_str().unwrap(),
        "-i",
        info.to_str().unwrap(),
        "run",
        "--junit",
        junit.to_str().unwrap(),
        &format!("{id}/test:check"),
    ];
    let out = sb.dstart(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the job check fails:\n{}",
        text(&out.stdout)
    );
    leaks("test stdout", &text(&out.stdout));
    leaks("test stderr", &text(&out.stderr));
    let info_log = std::fs::read_to_string(&info).expect("-i file");
    assert!(info_log.contains("password *** token ***"), "{info_log}");
    leaks("-i file", &info_log);
    leaks("-l file", &std::fs::read_to_string(&err).expect("-l file"));
    let report = std::fs::read_to_string(&junit).expect("junit");
    assert!(report.contains("password *** token ***"), "{report}");
    leaks("JUnit", &report);
    let archived = read_test_data(
        &sb,
        &test_data,
        &format!("/tests/check/{id}-job/environment.yaml"),
    );
    assert!(archived.contains("DB_PASSWORD: '***'"), "{archived}");
    leaks("environment.yaml", &archived);
    let archived_junit =
        read_test_data(&sb, &test_data, &format!("/tests/check/{id}-job/junit.xml"));
    leaks("archived junit.xml", &archived_junit);
    assert!(Path::new(&junit).exists());
}

/// `psql -tAc SQL` in the database container `db`.
fn psql(db: &str, sql: &str) -> String {
    support::docker(&["exec", db, "psql", "-U", "postgres", "-tAc", sql])
}

#[test]
fn production_false_checks_never_write_into_the_live_database() {
    let image = support::postgres_image();
    let sb = Sandbox::new("tprodfalse");
    let id = &sb.id;
    let db = sb.name("db");
    sb.write(
        "environments/test-data.yaml",
        &format!("TEST_DATA_CONTAINER: {}\n", sb.name("testdata")),
    );
    let url = format!("postgresql://postgres:pw@{db}/postgres");
    sb.unit(
        id,
        "start",
        &format!(
            r#"{db}:
  image: {image}
  env: {{POSTGRES_PASSWORD: pw}}
  volumes: ['{id}-data:/var/lib/postgresql/data']
  jobs:
    insert:
      args: [psql, '{url}', -c, "CREATE TABLE IF NOT EXISTS t (v text); INSERT INTO t VALUES ('from-test')"]
      production: false
    count: {{args: [psql, '{url}', -tAc, 'SELECT count(*) FROM t'], match: '^1\s*$'}}
---
- {db}: {{command: start, ready: {{log: database system is ready to accept connections, timeout: 60}}}}
"#
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    psql(
        &db,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('live')",
    );

    let junit = sb.conf().join("production.xml");
    let stdout = sb.ok(&[
        "run",
        "--production",
        "--junit",
        junit.to_str().unwrap(),
        &format!("{id}/test"),
    ]);
    assert!(
        stdout.contains(&format!("SKIP {db}_jobs {db}:insert (`production: false`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {db}_jobs {db}:count (")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("1 passed, 0 failed, 1 skipped\n"),
        "{stdout}"
    );
    assert_eq!(psql(&db, "SELECT string_agg(v, ',') FROM t"), "live");
    let report = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        report.contains("<skipped message=\"`production: false`"),
        "{report}"
    );

    // Against a test copy the check runs: the copy's empty database gets the row.
    let stdout = sb.ok(&["run", &format!("{id}/test:check")]);
    assert!(
        stdout.contains(&format!("PASS {db}_jobs {db}:insert (")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {db}_jobs {db}:count (")),
        "{stdout}"
    );
    assert_eq!(psql(&db, "SELECT string_agg(v, ',') FROM t"), "live");
}

/// A unit `unit` whose job container prints `Success`.
fn job_unit(sb: &Sandbox, unit: &str) {
    sb.unit(
        unit,
        "start",
        &format!(
            "{unit}-job:\n  image: {}\n  command: [echo, Success]\n  job: {{logs: [Success]}}\n---\n- {unit}-job: {{command: start}}\n",
            base_image()
        ),
    );
}

#[test]
fn each_unit_has_its_own_test_data_container_and_its_purge_removes_it() {
    let sb = Sandbox::new("ttdata");
    let (a, b) = (sb.id.clone(), sb.name("b"));
    job_unit(&sb, &a);
    job_unit(&sb, &b);
    sb.ok(&["run", &format!("{a}/test:check")]);
    sb.ok(&["run", &format!("{b}/test:check")]);
    let (data_a, data_b) = (format!("{a}_test_data"), format!("{b}_test_data"));
    for (unit, data) in [(&a, &data_a), (&b, &data_b)] {
        assert_eq!(
            sb.inspect(
                data,
                "{{.Config.Image}} {{index .Config.Labels \"dstart.test-data\"}}"
            ),
            Some(format!("dstart/test-data:1 {unit}")),
            "its own container, from dstart's image, labelled"
        );
        assert!(
            read_test_data(&sb, data, &format!("/tests/check/{unit}-job/junit.xml"))
                .contains("testsuite")
        );
    }
    assert_eq!(
        support::docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.Volumes}}",
            "dstart/test-data:1"
        ]),
        "map[]",
        "no volume of the image's own"
    );
    let volumes = sb
        .inspect(&data_a, "{{range .Mounts}}{{.Name}} {{end}}")
        .expect("mounts");
    let volumes: Vec<&str> = volumes.split_whitespace().collect();
    assert_eq!(volumes.len(), 2, "/archives and /tests only: {volumes:?}");

    let stdout = sb.ok(&["run", &format!("{a}/purge")]);
    assert!(
        stdout.contains(&format!("Removed the test data container {data_a}")),
        "{stdout}"
    );
    assert!(!sb.exists(&data_a));
    for v in volumes {
        assert!(
            !docker_output(&["volume", "inspect", v]).status.success(),
            "volume {v} is removed with it"
        );
    }
    assert!(sb.exists(&data_b), "the other unit's stays");

    // A container of someone else under the name is neither removed nor written into.
    sb.ok(&["run", &format!("{b}/purge")]);
    support::docker(&["create", "--name", &data_b, base_image(), "true"]);
    let out = sb.dstart(&["run", &format!("{b}/purge")]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("kept the container {data_b}")),
        "{}",
        text(&out.stderr)
    );
    assert!(sb.exists(&data_b));
    let out = sb.dstart(&["run", &format!("{b}/test:check")]);
    assert!(
        text(&out.stderr).contains("is no test data container"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn files_gathered_from_a_job_are_never_written_through_its_links() {
    let sb = Sandbox::new("tlinks");
    let id = &sb.id;
    let host = tempfile::tempdir().expect("tempdir");
    let host_dir = host.path().display().to_string();
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-app:
  image: {base}
  command: ["true"]
  jobs:
    links:
      args: [sh, -c, "mkdir -p /out {host_dir} && echo inside > {host_dir}/f && ln -s {host_dir} /out/link && ln -s /etc /out/etc && echo kept > /out/plain.txt"]
      files: ["/out/", "/out/link/", "/out/link/f", "/out/plain.txt"]
---
- {id}-app: {{command: create}}
"#,
            base = base_image()
        ),
    );
    // `-v`: the notes of a case reach the console too.
    let out = sb.dstart(&["-v", "run", &format!("{id}/test:check")]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    assert!(stderr.contains("leaves the volume"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(host.path()).expect("host dir").count(),
        0,
        "nothing written into the host directory the link names"
    );
    let data = format!("{id}_test_data");
    assert_eq!(
        read_test_data(&sb, &data, &format!("/tests/check/{id}-app/out/plain.txt")),
        "kept\n",
        "a safe pattern is kept"
    );
}

#[test]
fn a_job_whose_logs_cannot_be_read_fails_with_the_reason() {
    let sb = Sandbox::new("tlogerr");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-quiet:
  image: {base}
  command: [sh, -c, "echo Success"]
  startup: {{log_config: {{type: none}}}}
  job: {{logs: [Success]}}
{id}-code:
  image: {base}
  command: [sh, -c, "echo Success"]
  startup: {{log_config: {{type: none}}}}
  job: {{exit_code: 0}}
---
- {id}-quiet: {{command: start}}
- {id}-code: {{command: start}}
"#,
            base = base_image()
        ),
    );
    let (stdout, _) = sb.fails(&["run", &format!("{id}/test:check")], 1);
    let quiet = format!("FAIL {id}-quiet_jobs {id}-quiet:job (");
    let at = stdout.find(&quiet).unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        stdout[at..]
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("could not be read to its end")),
        "the reason, not a mismatch of empty output:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {id}-code_jobs {id}-code:job (")),
        "only the exit code is judged there: {stdout}"
    );
}

#[test]
fn an_invalid_dockerignore_pattern_is_a_configuration_error() {
    let sb = Sandbox::new("tignore");
    let id = &sb.id;
    sb.write("img/Dockerfile", &format!("FROM {}\n", base_image()));
    sb.write("img/.dockerignore", "*.log\nsecrets/[\n");
    sb.unit(
        id,
        "start",
        &format!("{id}-app:\n  build: {{path: img, tag: \"{id}/app\"}}\n---\n- {id}-app: {{command: start}}\n"),
    );
    let (_, stderr) = sb.fails(&["run", &format!("{id}/build")], 2);
    assert!(
        stderr.contains("img/.dockerignore:2: invalid pattern `secrets/[`"),
        "{stderr}"
    );
    assert!(!sb.exists(&format!("{id}/app")), "nothing was built");
}

#[test]
fn quiet_test_runs_print_only_failures() {
    let sb = Sandbox::new("tquiet");
    let (good, bad) = (sb.id.clone(), sb.name("bad"));
    job_unit(&sb, &good);
    sb.unit(
        &bad,
        "start",
        &format!(
            "{bad}-job:\n  image: {}\n  command: [echo, Success]\n  job: {{logs: [Nope]}}\n---\n- {bad}-job: {{command: start}}\n",
            base_image()
        ),
    );
    let out = sb.dstart(&["-q", "run", &format!("{good}/test:check")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "", "a successful run prints nothing");
    assert_eq!(text(&out.stderr), "");

    let (stdout, _) = sb.fails(&["-q", "run", &format!("{bad}/test:check")], 1);
    assert!(!stdout.contains("PASS"), "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL {bad}-job_jobs {bad}-job:job (")),
        "{stdout}"
    );
    assert!(stdout.ends_with(" passed, 1 failed\n"), "{stdout}");
}
