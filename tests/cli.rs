//! The command line, end to end: the built binary on fixture configuration directories
//! (`tests/fixtures/<name>`, copied to a temporary directory per test), with stdout, stderr and
//! the exit status pinned. Nothing here needs or may reach a Docker engine: every run has
//! `DOCKER_HOST` pointing at a socket that does not exist.

mod common;

use common::{Env, documents, yaml};
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// Discovery and init

fn initialized_at(env: &Env, rel: &str, marker: &str) {
    env.write(&format!("{rel}/environments/mark.yaml"), "");
    env.write(
        &format!("{rel}/units/{marker}/start.yaml"),
        "aa: {image: busybox}\n---\n- aa: {command: start}\n",
    );
}

#[test]
fn discovery_prefers_c_over_dockerstra_conf_over_home() {
    let env = Env::bare();
    initialized_at(&env, "explicit", "from_c");
    initialized_at(&env, "byenv", "from_env");
    initialized_at(&env, "home/.dockerstra", "from_home");
    let byenv = env.root().join("byenv").display().to_string();

    let out = env
        .dstart_raw(&["-c", "explicit", "list", "--units"])
        .env("DOCKERSTRA_CONF", &byenv)
        .ok();
    assert!(out.starts_with("from_c/"), "{out}");

    let out = env
        .dstart_raw(&["list"])
        .env("DOCKERSTRA_CONF", &byenv)
        .ok();
    assert!(out.starts_with("from_env/"), "{out}");

    let out = env.dstart_raw(&["list"]).ok();
    assert!(out.starts_with("from_home/"), "{out}");
}

#[test]
fn discovery_skips_an_uninitialized_home_candidate() {
    let env = Env::bare();
    // `~/.dockerstra` exists but has no environments/: it is not initialized.
    env.write("home/.dockerstra/units/x/start.yaml", "");
    let err = env.dstart_raw(&["list"]).fails();
    assert!(
        err.starts_with("error: could not find an initialized configuration directory\n"),
        "{err}"
    );
    assert!(err.contains("home/.dockerstra`"), "{err}");
    assert!(err.contains("hint: searched "), "{err}");
    assert!(err.contains("dstart init"), "{err}");
}

#[test]
fn a_missing_c_directory_is_an_error() {
    let env = Env::bare();
    let err = env.dstart_raw(&["-c", "nope", "list"]).fails();
    assert_eq!(
        err,
        "error: configuration directory `nope` does not exist\nhint: create it with `dstart -c DIR init`\n"
    );
}

#[test]
fn nothing_but_init_creates_anything() {
    let env = Env::bare();
    let before = env.tree();
    for args in [
        &["list"][..],
        &["list", "--services"],
        &["help", "--unit", "web"],
        &["run", "--print-unit", "web/start"],
        &["run", "--print-only", "web/start"],
        &["run", "--print-substitutions", "web/start"],
    ] {
        env.dstart_raw(args).fails();
    }
    env.dstart_raw(&["completions", "bash"]).ok();
    env.dstart_raw(&["__complete", "run", "we"]).ok();
    assert_eq!(
        env.tree(),
        before,
        "a command other than init created files"
    );
    assert!(!env.home().join(".dockerstra").exists());
}

#[test]
fn init_writes_the_example_and_list_works_on_it() {
    let env = Env::bare();
    let out = env.dstart_raw(&["-c", "fresh", "init"]).output();
    out.expect_code(0);
    assert_eq!(out.stderr, "");
    assert!(
        out.stdout.contains("INFO: Initialized fresh with "),
        "{}",
        out.stdout
    );

    let default = env.read("fresh/environments/default.yaml");
    assert!(
        default.contains("\nDOCKER_HOST: unix:///var/run/docker.sock\n"),
        "{default}"
    );
    let backup = format!("\nBACKUP_DIR: {}/.docker_backup\n", env.home().display());
    assert!(default.contains(&backup), "{default}");

    let list = env.dstart_raw(&["-c", "fresh", "list"]).ok();
    assert!(list.contains("web/start\n"), "{list}");
    assert!(list.contains("web/backup\n"), "{list}");
    let services = env.dstart_raw(&["-c", "fresh", "list", "--services"]).ok();
    assert_eq!(services, "base\nhttpd\n");
    // The example unit renders with the environment init wrote.
    let unit = env
        .dstart_raw(&["-c", "fresh", "run", "--print-unit", "web/start"])
        .ok();
    documents(&unit);
    let help = env
        .dstart_raw(&["-c", "fresh", "help", "--unit", "web"])
        .ok();
    assert!(help.starts_with("web\n===\n"), "{help}");
}

#[test]
fn init_without_c_writes_to_home() {
    let env = Env::bare();
    env.dstart_raw(&["init"]).output().expect_code(0);
    assert!(
        env.home()
            .join(".dockerstra/environments/default.yaml")
            .is_file()
    );
    assert!(
        env.home()
            .join(".dockerstra/units/web/start.yaml")
            .is_file()
    );
    env.dstart_raw(&["list"]).ok();
}

#[test]
fn init_refuses_an_initialized_directory() {
    let env = Env::empty();
    env.write("conf/environments/default.yaml", "KEEP: me\n");
    let err = env.dstart(&["init"]).fails();
    assert_eq!(
        err,
        "error: configuration directory `conf` is already initialized\n"
    );
    assert_eq!(env.read("conf/environments/default.yaml"), "KEEP: me\n");
}

// ---------------------------------------------------------------------------------------------
// Log files (-i, -l)

/// `2026-05-25 10:31:00,123: LEVEL: ` at the start of a log record (ORIGINAL §7.2).
fn starts_with_log_time(line: &str, level: &str) -> bool {
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: ").unwrap();
    re.is_match(line) && line[25..].starts_with(&format!("{level}: "))
}

#[test]
fn infofile_takes_the_info_and_debug_lines() {
    let env = Env::fixture("basic");
    for _ in 0..2 {
        let out = env.dstart(&["-d", "-i", "info.log", "list"]).output();
        out.expect_code(0);
        // The listing is a result: it stays on stdout, without a timestamp.
        assert_eq!(out.stdout, BASIC_UNITS);
        assert_eq!(out.stderr, "");
    }
    let out = env
        .dstart_raw(&["-c", "fresh", "-i", "info.log", "init"])
        .output();
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    let log = env.read("info.log");
    let lines: Vec<&str> = log.lines().collect();
    // Appended: two runs of `list -d`, then `init`.
    assert_eq!(lines.len(), 3, "{log}");
    for line in &lines[..2] {
        assert!(starts_with_log_time(line, "DEBUG"), "{line}");
        assert!(
            line.ends_with("DEBUG: Using configuration directory conf"),
            "{line}"
        );
    }
    assert!(starts_with_log_time(lines[2], "INFO"), "{log}");
    assert!(lines[2].contains("INFO: Initialized fresh with "), "{log}");
}

#[test]
fn errfile_takes_a_configuration_error_as_one_record() {
    let env = Env::empty();
    env.unit(
        "bad/start.yaml",
        "aa:\n  image: busybox\n---\n- aa: {command: start, restrat: true}\n",
    );
    for _ in 0..2 {
        let out = env
            .dstart(&["-l", "errors.log", "run", "--print-unit", "bad/start"])
            .output();
        out.expect_code(2);
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr, "", "the error went to the file");
    }
    let log = env.read("errors.log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "two records of two lines each:\n{log}");
    for record in lines.chunks(2) {
        assert!(starts_with_log_time(record[0], "ERROR"), "{log}");
        assert_eq!(
            &record[0][25..],
            "ERROR: config: conf/units/bad/start.yaml:4:24: order `start` on `aa`: `restrat`: unknown key `restrat`"
        );
        assert_eq!(
            record[1],
            "hint: `start` accepts `restart`, `attach`, `timeout`, `ready`, `recreate`, `wait`, `variants`"
        );
    }
    assert!(!log.contains("error: "), "no second prefix: {log}");
}

#[test]
fn a_log_file_that_cannot_be_written_is_said_once_and_fails_the_run() {
    // /dev/full takes the open and refuses every write (no space left on device).
    let env = Env::fixture("basic");
    let out = env.dstart(&["-d", "-i", "/dev/full", "list"]).output();
    out.expect_code(1);
    assert_eq!(out.stdout, BASIC_UNITS, "the result itself is not lost");
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("cannot write to the log file `/dev/full`"))
        .collect();
    assert_eq!(
        said.len(),
        2,
        "once when it happened, once as the run's error:\n{}",
        out.stderr
    );
    assert!(starts_with_log_time(said[0], "ERROR"), "{}", out.stderr);
    assert!(said[1].starts_with("error: "), "{}", out.stderr);

    // The -l file: the warnings and the final error it cannot take reach stderr.
    let out = env
        .dstart(&["-l", "/dev/full", "run", "--print-unit", "nosuch/start"])
        .output();
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("cannot write to the log file `/dev/full`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: "),
        "the error itself: {}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// list and help

const BASIC_UNITS: &str = "\
flat/backup
flat/build
flat/cleanup
flat/create
flat/purge
flat/restart
flat/restore
flat/start
flat/stop
flat/test
gen/backup
gen/build
gen/cleanup
gen/create
gen/purge
gen/restart
gen/restore
gen/start
gen/stop
gen/test
over/backup
over/build
over/cleanup
over/create
over/purge
over/restart
over/restore
over/start
over/stop
over/test
tools/shell
";

#[test]
fn list_defaults_to_units_sorted_with_generated_commands() {
    let env = Env::fixture("basic");
    assert_eq!(env.dstart(&["list"]).ok(), BASIC_UNITS);
    assert_eq!(env.dstart(&["list", "--units"]).ok(), BASIC_UNITS);
}

#[test]
fn list_services_needs_a_dockerfile_or_template() {
    let env = Env::fixture("basic");
    assert_eq!(env.dstart(&["list", "--services"]).ok(), "cgit\ntmpl\n");
}

#[test]
fn list_both_uses_titled_blocks() {
    let env = Env::fixture("basic");
    let expected = format!(
        "Available units:\n================\n{BASIC_UNITS}\nAvailable services:\n===================\ncgit\ntmpl\n\n"
    );
    assert_eq!(
        env.dstart(&["list", "--units", "--services"]).ok(),
        expected
    );
}

#[test]
fn list_json_parses_and_holds_the_same_names() {
    let env = Env::fixture("basic");
    let out = env
        .dstart(&["list", "--units", "--services", "--format", "json"])
        .ok();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let units: Vec<String> = BASIC_UNITS.lines().map(str::to_string).collect();
    assert_eq!(
        json,
        serde_json::json!({"units": units, "services": ["cgit", "tmpl"]})
    );
}

#[test]
fn plan_status_and_logs_refuse_bad_input_before_the_engine() {
    let env = Env::fixture("basic");
    let err = env.dstart(&["run", "--plan", "over/test"]).fails();
    assert!(err.contains("--plan applies to unit commands"), "{err}");
    let err = env.dstart(&["logs", "--since", "soon", "over"]).fails();
    assert!(err.contains("`--since soon`"), "{err}");
    let err = env.dstart(&["logs", "over", "nope"]).fails();
    assert!(err.contains("`nope` is no container of `over`"), "{err}");
    let err = env.dstart(&["status", "missing-unit"]).fails();
    assert!(err.contains("missing-unit"), "{err}");
    let err = env
        .dstart(&["run", "--plan", "--format", "yaml", "over/start"])
        .fails();
    assert!(err.contains("yaml"), "{err}");
}

#[test]
fn list_of_an_empty_directory_is_empty() {
    let env = Env::empty();
    assert_eq!(env.dstart(&["list"]).ok(), "\n");
}

#[test]
fn nested_unit_directories_are_listed_completed_and_helped() {
    let env = Env::empty();
    env.unit(
        "apps/blog/start.yaml",
        "blog-web: {image: busybox}\n---\n- blog-web: {command: start}\n",
    );
    env.unit("apps/blog/README.md", "The blog.\n");
    env.unit("apps/blog/notes.txt", "not a unit\n");
    env.unit(
        "apps/shop/db/start.yaml",
        "shop-db: {image: busybox}\n---\n- shop-db: {command: start}\n",
    );
    env.unit("common/ports.tera", "not a unit either\n");
    let generated = |unit: &str| {
        [
            "backup", "build", "cleanup", "create", "purge", "restart", "restore", "start", "stop",
            "test",
        ]
        .iter()
        .fold(String::new(), |acc, c| acc + unit + "/" + c + "\n")
    };
    let all = generated("apps/blog") + &generated("apps/shop/db");
    assert_eq!(env.dstart(&["list"]).ok(), all);
    assert_eq!(complete(&env, &["-c", "conf", "run", ""]), all);
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "apps/shop/db/st"]),
        "apps/shop/db/start\napps/shop/db/stop\n"
    );
    assert_eq!(
        complete(&env, &["-c", "conf", "help", "--unit", "apps/"]),
        "apps/blog\napps/shop/db\n"
    );
    assert_eq!(
        env.dstart(&["help", "--unit", "apps/blog"]).ok(),
        "The blog.\n"
    );
    assert_eq!(
        orders_of(&env, "apps/shop/db/stop"),
        yaml("[{shop-db: {command: stop, timeout: 10}}]")
    );
}

#[test]
fn help_prints_the_readme_of_a_unit_or_service() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["help", "--unit", "gen"]).ok(),
        "gen\n===\n\nThe unit of ORIGINAL §4.\n"
    );
    assert_eq!(
        env.dstart(&["help", "--service", "cgit"]).ok(),
        "# cgit\n\nA git web interface.\n"
    );
}

#[test]
fn help_service_without_an_engine_prints_the_readme_and_exits_0() {
    // DOCKER_HOST points at a socket that does not exist: the image API labels cannot be read.
    let env = Env::fixture("basic");
    let out = env.dstart(&["-d", "help", "--service", "cgit"]).output();
    out.expect_code(0);
    assert_eq!(out.stderr, "");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[1..4],
        ["# cgit", "", "A git web interface."],
        "{}",
        out.stdout
    );
    assert!(
        lines[4].ends_with(
            ": DEBUG: Not showing the image API of cgit: cannot reach the Docker engine at `unix:///nonexistent/docker.sock`: the socket does not exist"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 5, "{}", out.stdout);
}

#[test]
fn help_without_a_readme_warns() {
    let env = Env::fixture("basic");
    let out = env.dstart(&["help", "--unit", "flat"]).output();
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .ends_with(": WARNING: help: Could not find a README file in conf/units/flat\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_of_an_unknown_unit_or_service_is_an_error() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["help", "--unit", "nope"]).fails(),
        "error: no unit `nope`\nhint: available: flat, gen, over, tools\n"
    );
    assert_eq!(
        env.dstart(&["help", "--service", "nodockerfile"]).fails(),
        "error: no service `nodockerfile`\nhint: available: cgit, tmpl\n"
    );
}

#[test]
fn help_needs_exactly_one_of_unit_and_service() {
    let env = Env::fixture("basic");
    for args in [
        &["help"][..],
        &["help", "--unit"],
        &["help", "--unit", "gen", "--service", "cgit"],
    ] {
        let err = env.dstart(args).fails();
        assert!(err.contains("--unit"), "{err}");
    }
}

#[test]
fn top_level_help_and_version_exit_0() {
    let env = Env::bare();
    let out = env.dstart_raw(&["--help"]).ok();
    for cmd in ["init", "list", "help", "run", "completions"] {
        assert!(out.contains(&format!("\n  {cmd} ")), "{out}");
    }
    assert!(!out.contains("__complete"), "{out}");
    let out = env.dstart_raw(&["--version"]).ok();
    assert!(out.starts_with("dstart "), "{out}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let env = Env::bare();
    let err = env.dstart_raw(&["frob"]).fails();
    assert!(
        err.starts_with("error: unrecognized subcommand 'frob'"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Generated commands (ORIGINAL §4)

fn orders_of(env: &Env, unit_command: &str) -> serde_yaml_ng::Value {
    let out = env.dstart(&["run", "--print-unit", unit_command]).ok();
    documents(&out).1
}

const GEN_COMPOSITION: &str = "\
x1_without_build:
  image: busybox
  stop_timeout: 10
x2_with_build:
  build:
    path: services/cgit
    tag: test
  stop_timeout: 10
";

#[test]
fn generated_stop_prints_exactly() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "gen/stop"]).ok(),
        format!("{GEN_COMPOSITION}---\n- x2_with_build:\n    command: stop\n    timeout: 10\n")
    );
}

#[test]
fn generated_stops_show_each_stop_timeout_and_restart_waits_for_ready() {
    let env = Env::empty();
    env.unit(
        "db/start.yaml",
        "db-pg: {image: postgres, stop_timeout: 60}\ndb-app: {image: busybox}\n---\n- db-pg: {command: start, ready: {log: ready to accept, timeout: 30}}\n- db-app: {command: start}\n",
    );
    assert_eq!(
        orders_of(&env, "db/stop"),
        yaml("[{db-app: {command: stop, timeout: 10}}, {db-pg: {command: stop, timeout: 60}}]")
    );
    assert_eq!(
        orders_of(&env, "db/restart"),
        yaml(
            "[{db-pg: {command: start, restart: true, timeout: 60, ready: {log: ready to accept, timeout: 30}}},
              {db-app: {command: start, restart: true, timeout: 10}}]"
        )
    );
}

#[test]
fn generated_order_lists_of_original_section_4() {
    let env = Env::fixture("basic");
    let expected = [
        ("stop", "[{x2_with_build: {command: stop, timeout: 10}}]"),
        (
            "cleanup",
            "[{x2_with_build: {command: stop, timeout: 10}},
              {x2_with_build: {command: remove, v: false, timeout: 10}},
              {x1_without_build: {command: remove, v: false, timeout: 10}}]",
        ),
        (
            "purge",
            "[{x2_with_build: {command: stop, timeout: 10}},
              {x2_with_build: {command: remove, v: true, timeout: 10}},
              {x1_without_build: {command: remove, v: true, timeout: 10}},
              {x2_with_build: {command: remove_image}}]",
        ),
        (
            "restart",
            "[{x2_with_build: {command: start, restart: true, timeout: 10}}]",
        ),
        ("build", "[{x2_with_build: {command: build}}]"),
        (
            "create",
            "[{x1_without_build: {command: create}}, {x2_with_build: {command: create}}]",
        ),
        (
            "backup",
            "[{x1_without_build: {command: backup, backup_dir: BACKUPDIR, backup_name: x1_without_build, timestamp: true, keep: 7}},
              {x2_with_build:    {command: backup, backup_dir: BACKUPDIR, backup_name: x2_with_build, timestamp: true, keep: 7}}]",
        ),
        (
            "restore",
            "[{x1_without_build: {command: restore, restore_dir: BACKUPDIR, restore_name: x1_without_build, stop: true, timeout: 10}},
              {x2_with_build:    {command: restore, restore_dir: BACKUPDIR, restore_name: x2_with_build, stop: true, timeout: 10}}]",
        ),
    ];
    for (command, orders) in expected {
        assert_eq!(
            orders_of(&env, &format!("gen/{command}")),
            yaml(orders),
            "gen/{command}"
        );
    }
}

#[test]
fn generated_commands_keep_the_start_composition() {
    let env = Env::fixture("basic");
    for command in ["start", "stop", "purge", "backup"] {
        let out = env
            .dstart(&["run", "--print-unit", &format!("gen/{command}")])
            .ok();
        assert!(out.starts_with(GEN_COMPOSITION), "gen/{command}:\n{out}");
    }
}

/// `text` with the test pseudoname suffix `_<tempid>` of `unit_command` removed.
fn without_tempid(text: &str, unit_command: &str) -> String {
    use md5::Digest as _;
    let digest = md5::Md5::digest(unit_command.as_bytes());
    let hex = digest.iter().fold(String::new(), |mut acc, b| {
        use std::fmt::Write as _;
        let _ = write!(acc, "{b:02x}");
        acc
    });
    text.replace(&format!("_{}", &hex[..10]), "")
}

#[test]
fn test_without_variants_sets_up_the_start_orders_under_pseudonames() {
    let env = Env::fixture("basic");
    let test = env.dstart(&["run", "--print-unit", "gen/test"]).ok();
    let (composition, orders) = documents(&without_tempid(&test, "gen/test"));
    let (start_composition, start_orders) =
        documents(&env.dstart(&["run", "--print-unit", "gen/start"]).ok());
    assert_eq!(
        orders, start_orders,
        "the setup orders are the start orders:\n{test}"
    );
    assert_eq!(
        composition, start_composition,
        "the containers are the start containers:\n{test}"
    );
    assert_ne!(
        without_tempid(&test, "gen/test"),
        test,
        "every container is renamed:\n{test}"
    );
}

#[test]
fn an_explicit_file_overrides_a_generated_command() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "over/stop"]).ok(),
        "web:\n  image: busybox\n  stop_timeout: 10\n---\n- web:\n    command: stop\n    timeout: 30\n"
    );
    // Without the file, stop would have stopped web and db in reverse order.
    assert_eq!(
        orders_of(&env, "over/cleanup"),
        yaml(
            "[{web: {command: stop, timeout: 10}}, {db: {command: stop, timeout: 10}},
              {web: {command: remove, v: false, timeout: 10}}, {db: {command: remove, v: false, timeout: 10}}]"
        )
    );
}

#[test]
fn a_flat_unit_file_runs_with_generated_commands() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "flat/start"]).ok(),
        "app:\n  image: busybox\n  stop_timeout: 10\n---\n- app:\n    command: start\n"
    );
    assert_eq!(
        orders_of(&env, "flat/purge"),
        yaml(
            "[{app: {command: stop, timeout: 10}}, {app: {command: remove, v: true, timeout: 10}}]"
        )
    );
}

#[test]
fn a_unit_without_start_has_no_generated_commands() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "tools/stop"]).fails(),
        "error: no unit command `tools/stop`\nhint: available: shell\n"
    );
}

#[test]
fn stop_follows_reverse_order_of_dependence() {
    let env = Env::empty();
    env.unit(
        "dep/start.yaml",
        "data: {image: busybox, volumes: [/data]}
app: {image: busybox, startup: {volumes_from: data}}
web: {image: busybox, startup: {links: {app: backend}}}
---
- data: {command: create}
- app: {command: start}
- web: {command: start}
",
    );
    assert_eq!(
        orders_of(&env, "dep/purge"),
        yaml(
            "[{web: {command: stop, timeout: 10}}, {app: {command: stop, timeout: 10}},
              {web: {command: remove, v: true, timeout: 10}}, {app: {command: remove, v: true, timeout: 10}},
              {data: {command: remove, v: true, timeout: 10}}]"
        )
    );
    assert_eq!(
        orders_of(&env, "dep/create"),
        yaml("[{data: {command: create}}, {app: {command: create}}, {web: {command: create}}]")
    );
}

#[test]
fn generated_backup_falls_back_to_backup_dir_then_dot() {
    let env = Env::empty();
    env.unit(
        "u/start.yaml",
        "cc: {image: busybox}\n---\n- cc: {command: create}\n",
    );
    assert_eq!(
        orders_of(&env, "u/backup"),
        yaml("[{cc: {command: backup, backup_dir: ., backup_name: cc, timestamp: true, keep: 7}}]")
    );
    env.write(
        "conf/environments/default.yaml",
        "BACKUP_DIR: /srv/backup\nBACKUP_KEEP: 3\n",
    );
    assert_eq!(
        orders_of(&env, "u/backup"),
        yaml(
            "[{cc: {command: backup, backup_dir: /srv/backup, backup_name: cc, timestamp: true, keep: 3}}]"
        )
    );
    assert_eq!(
        orders_of(&env, "u/restore"),
        yaml(
            "[{cc: {command: restore, restore_dir: /srv/backup, restore_name: cc, stop: true, timeout: 10}}]"
        )
    );
    env.write("conf/environments/z.yaml", "BACKUPDIR: /wins\n");
    assert_eq!(
        orders_of(&env, "u/restore"),
        yaml(
            "[{cc: {command: restore, restore_dir: /wins, restore_name: cc, stop: true, timeout: 10}}]"
        )
    );
}

#[test]
fn a_bad_backup_keep_is_an_error() {
    let env = Env::empty();
    env.unit(
        "u/start.yaml",
        "cc: {image: busybox}\n---\n- cc: {command: create}\n",
    );
    env.write("conf/environments/default.yaml", "BACKUP_KEEP: none\n");
    let err = env.dstart(&["run", "--print-unit", "u/backup"]).fails();
    assert!(
        err.contains("`BACKUP_KEEP` is `\"none\"`") && err.contains("hint: a number of archives"),
        "{err}"
    );
    env.write("conf/environments/default.yaml", "BACKUP_KEEP: 0\n");
    let err = env.dstart(&["run", "--print-unit", "u/backup"]).fails();
    assert!(err.contains("`keep` must be at least 1"), "{err}");
    env.write(
        "conf/environments/default.yaml",
        "BACKUP_KEEP: {dayly: 7}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "u/backup"]).fails();
    assert!(err.contains("unknown field `dayly`"), "{err}");
    // Both forms of a policy print as a mapping.
    for keep in ["{daily: 7, weekly: 4}", "'daily=7 weekly=4'"] {
        env.write(
            "conf/environments/default.yaml",
            &format!("BACKUP_KEEP: {keep}\n"),
        );
        assert_eq!(
            orders_of(&env, "u/backup"),
            yaml(
                "[{cc: {command: backup, backup_dir: ., backup_name: cc, timestamp: true, keep: {daily: 7, weekly: 4}}}]"
            )
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Imports (ORIGINAL §1.5, §1.7)

#[test]
fn import_as_string_own_file_wins() {
    let env = Env::fixture("imports");
    assert_eq!(
        env.dstart(&["run", "--print-only", "test/other"]).ok(),
        "x1:\n  image: jkl\n  stop_timeout: 10\nx2:\n  image: def\n  stop_timeout: 10\n---\n- x1:\n    command: backup\n"
    );
}

#[test]
fn import_as_list_of_an_import_only_file() {
    let env = Env::fixture("imports");
    assert_eq!(
        env.dstart(&["run", "--print-only", "test/test3"]).ok(),
        "x1:\n  image: abc\n  stop_timeout: 10\nx3:\n  image: ghi\n  stop_timeout: 10\n---\n- x1:\n    command: backup\n"
    );
}

#[test]
fn imports_merge_shallowly_later_wins() {
    let env = Env::fixture("imports");
    let (composition, _) = documents(&env.dstart(&["run", "--print-unit", "test/later"]).ok());
    assert_eq!(
        composition,
        yaml("x1: {image: later, env: {FROM: x1_full}, stop_timeout: 10}")
    );
    // The importing file replaces the whole container mapping: no `env` survives.
    let (composition, orders) = documents(&env.dstart(&["run", "--print-unit", "test/own"]).ok());
    assert_eq!(composition, yaml("x1: {image: own, stop_timeout: 10}"));
    assert_eq!(orders, yaml("[{x1: {command: start}}]"));
}

#[test]
fn import_with_unit_arguments_and_macroloader_path() {
    // ORIGINAL §1.7 part 4, with tera's `{% import %}` first and a macro for the name.
    let env = Env::fixture("import_args");
    assert_eq!(
        env.dstart(&[
            "run",
            "--print-only",
            "test/test4",
            "test/start",
            "test/test31"
        ])
        .ok(),
        "x1:\n  image: abc\n  stop_timeout: 10\nx3:\n  image: ghi\n  stop_timeout: 10\n---\n- x1:\n    command: backup\n"
    );
}

#[test]
fn an_import_cycle_names_the_cycle_and_the_file() {
    let env = Env::fixture("imports");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "cyc_a/start"]).fails(),
        "error: conf/units/cyc_b/start.yaml:2:10: `cyc_a/start` imports `cyc_b/start`, which imports `cyc_a/start` (cycle)\n"
    );
    // A generated command reads the same start file.
    let err = env.dstart(&["run", "--print-unit", "cyc_a/stop"]).fails();
    assert!(err.contains("(cycle)"), "{err}");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "self/start"]).fails(),
        "error: conf/units/self/start.yaml:1:1: `self/start` imports `self/start` (cycle)\n"
    );
}

#[test]
fn a_cycle_of_nested_unit_orders_names_the_cycle_before_the_engine() {
    let env = Env::empty();
    env.unit(
        "a/start.yaml",
        "{}\n---\n- host: {command: unit, unit: b/start}\n",
    );
    env.unit(
        "b/start.yaml",
        "{}\n---\n- host: {command: execute, run: [touch, ran]}\n- host: {command: unit, unit: a/start}\n",
    );
    let err = env.dstart(&["run", "a/start"]).output().config_error();
    assert!(
        err.contains("`unit` orders form a cycle: a/start → b/start → a/start"),
        "{err}"
    );
    assert!(err.contains("conf/units/a/start.yaml:3"), "{err}");
    assert!(err.contains("conf/units/b/start.yaml:4"), "{err}");
    assert!(!env.conf().join("ran").exists(), "nothing ran");
}

#[test]
fn a_nested_unit_with_a_bad_value_names_its_file_and_line() {
    let env = Env::empty();
    env.unit(
        "outer/start.yaml",
        "{}\n---\n- host: {command: execute, run: [touch, ran]}\n- host: {command: unit, unit: inner/start}\n",
    );
    env.unit(
        "inner/start.yaml",
        "ii:\n  image: busybox\n  stop_timeout: -1\n---\n- ii: {command: start}\n",
    );
    let err = env.dstart(&["run", "outer/start"]).output().config_error();
    assert!(err.contains("conf/units/outer/start.yaml:4"), "{err}");
    assert!(err.contains("conf/units/inner/start.yaml:3"), "{err}");
    assert!(err.contains("stop_timeout"), "{err}");
    assert!(!env.conf().join("ran").exists(), "nothing ran");
}

#[test]
fn a_missing_import_is_an_error() {
    let env = Env::empty();
    env.unit(
        "a/start.yaml",
        "aa: {image: busybox}\nimport: [a/nope]\n---\n- aa: {command: start}\n",
    );
    assert_eq!(
        env.dstart(&["run", "--print-unit", "a/start"]).fails(),
        "error: conf/units/a/start.yaml:2:10: `import: a/nope`: no unit command `a/nope`\nhint: available: backup, build, cleanup, create, purge, restart, restore, start, stop, test\n"
    );
    env.unit(
        "b/start.yaml",
        "import: ghost/start\nbb: {image: busybox}\n---\n- bb: {command: start}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "b/start"]).fails();
    assert!(
        err.starts_with(
            "error: conf/units/b/start.yaml:1:1: `import: ghost/start`: no unit `ghost`\n"
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Template variables and their precedence (ORIGINAL §1.6)

#[test]
fn every_variable_source_in_order_of_precedence() {
    let env = Env::fixture("precedence");
    let out = env
        .dstart(&[
            "run",
            "--print-unit",
            "-e",
            "conf/extra.yaml",
            "p/start",
            "--value",
            "cli",
        ])
        .env("DSTART_TEST_MARK", "from-process")
        .ok();
    let uid = id_of("-u");
    let (composition, _) = documents(&out);
    assert_eq!(
        composition,
        yaml(&format!(
            r#"
pp:
  image: busybox
  env:
    NESTED: '{{"w":"e"}}'     # -e replaces the merged mapping (shallow)
    LAYER: b                  # b.yaml after a.yaml
    E_LAYER: e                # -e over environments/
    G_LAYER: globals          # globals.yaml environment over everything
    GREETING: hello-a         # globals.yaml is rendered with the environment
    FROM_C: c                 # .yml files are read too
    CONF: conf                # DOCKERSTRA_CONF as given
    UID: '{uid}'
    GID: from-b               # a file may override a built-in
    OS_MARK: from-process
    OS_FROM_FILE: unset       # but not osenv
    VALUE: cli
    MODES: ''
  stop_timeout: 10            # the effective default
"#
        ))
    );
}

fn id_of(flag: &str) -> String {
    let out = std::process::Command::new("id").arg(flag).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn environment_files_deep_merge_in_name_order() {
    let env = Env::fixture("precedence");
    let out = env.dstart(&["run", "--print-unit", "p/start"]).ok();
    let (composition, _) = documents(&out);
    let vars = &composition["pp"]["env"];
    assert_eq!(vars["NESTED"], yaml(r#"'{"x":"b","z":"a","y":"b"}'"#));
    assert_eq!(vars["E_LAYER"], yaml("b"));
    assert_eq!(vars["G_LAYER"], yaml("globals"));
    assert_eq!(vars["VALUE"], yaml("from-args"));
    assert_eq!(vars["OS_MARK"], yaml("unset"));
}

#[test]
fn args_and_modes_have_the_lowest_precedence() {
    let env = Env::fixture("precedence");
    env.write(
        "conf/environments/z.yaml",
        "args: {value: from-file}\nmodes: [from-file]\n",
    );
    let out = env
        .dstart(&["run", "--print-unit", "p/start", "--value", "cli"])
        .ok();
    let (composition, _) = documents(&out);
    assert_eq!(composition["pp"]["env"]["VALUE"], yaml("from-file"));
    assert_eq!(composition["pp"]["env"]["MODES"], yaml("from-file"));
}

#[test]
fn globals_cannot_use_args() {
    let env = Env::empty();
    env.unit("g/globals.yaml", "environment: {X: '{{ args.x }}'}\n");
    env.unit(
        "g/start.yaml",
        "gg: {image: busybox}\n---\n- gg: {command: start}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "g/start"]).fails();
    assert!(
        err.starts_with("error: conf/units/g/globals.yaml:1: undefined variable `args.x`\n"),
        "{err}"
    );
}

#[test]
fn an_undefined_variable_names_variable_file_and_line() {
    let env = Env::empty();
    env.unit(
        "u/start.yaml",
        "# {{ DEFINED }}\nuu:\n  image: busybox\n  env:\n    A: '{{ NOT_DEFINED }}'\n---\n- uu: {command: start}\n",
    );
    env.write("conf/environments/default.yaml", "DEFINED: 1\n");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "u/start"]).fails(),
        "error: conf/units/u/start.yaml:5: undefined variable `NOT_DEFINED`\nhint: define it in an environment file, or make it optional with `| default(value=...)`\n"
    );
}

#[test]
fn default_filter_makes_a_variable_optional() {
    let env = Env::empty();
    env.unit(
        "u/start.yaml",
        "uu:\n  image: '{{ IMAGE | default(value=\"busybox\") }}'\n---\n- uu: {command: start}\n",
    );
    assert!(
        env.dstart(&["run", "--print-unit", "u/start"])
            .ok()
            .starts_with("uu:\n  image: busybox\n")
    );
}

#[test]
fn an_undefined_variable_is_false_in_if_for_optional_flags() {
    let env = Env::empty();
    env.unit(
        "u/start.yaml",
        "uu:\n  image: busybox\n{% if DEBUG %}  env: {DEBUG: '1'}\n{% endif %}---\n- uu: {command: start}\n",
    );
    let (composition, _) = documents(&env.dstart(&["run", "--print-unit", "u/start"]).ok());
    assert_eq!(composition, yaml("uu: {image: busybox, stop_timeout: 10}"));
    env.write("conf/environments/debug.yaml", "DEBUG: true\n");
    let (composition, _) = documents(&env.dstart(&["run", "--print-unit", "u/start"]).ok());
    assert_eq!(
        composition,
        yaml("uu: {image: busybox, env: {DEBUG: '1'}, stop_timeout: 10}")
    );
    // Printed, the same variable is an error.
    env.unit(
        "u/start.yaml",
        "uu:\n  image: busybox\n  env: {LEVEL: '{{ LEVEL }}'}\n---\n- uu: {command: start}\n",
    );
    assert!(
        env.dstart(&["run", "--print-unit", "u/start"])
            .fails()
            .starts_with("error: conf/units/u/start.yaml:3: undefined variable `LEVEL`\n")
    );
}

#[test]
fn runtime_placeholders_are_not_template_syntax() {
    // ORIGINAL §1.6, test_environment_substitution, with a valid container name and a
    // `build.tag`: dstart refuses a `start` it could not create an image for.
    let env = Env::empty();
    env.write(
        "conf/environments/env.yaml",
        "BASEDIR: /conf\nCOMMAND: 'start'\nabc: hello world\n",
    );
    env.unit(
        "test/start.yaml",
        r#"{{osenv.HOSTNAME}}-cgit:
    build:
        path: {{BASEDIR}}/services/{{abc}}/cgit
        tag: cgit
    startup:
        binds:
            ${CONFIG_DIR}/test:
                bind: /var/test
                ro: False
---
-
    {{osenv.HOSTNAME}}-cgit:
        command: {{COMMAND}}  # this does not make sense!
-
    host:
        command: execute
        run:
            - my_script
            - "[[.NetworkSettings.IPAddress]]({{osenv.HOSTNAME}}-cgit)"
"#,
    );
    let out = env
        .dstart(&["run", "--print-only", "test/start"])
        .env("HOSTNAME", "dummy")
        .ok();
    let (composition, orders) = documents(&out);
    assert_eq!(
        composition,
        yaml(
            r#"
dummy-cgit:
  build: {path: "/conf/services/hello world/cgit", tag: cgit}
  startup: {binds: {"${CONFIG_DIR}/test": {bind: /var/test, ro: false}}}
  stop_timeout: 10
"#
        )
    );
    assert_eq!(
        orders,
        yaml(
            r#"
- dummy-cgit: {command: start}
- host: {command: execute, run: [my_script, "[[.NetworkSettings.IPAddress]](dummy-cgit)"]}
"#
        )
    );
}

#[test]
fn print_substitutions_prints_the_rendered_text() {
    let env = Env::empty();
    env.write("conf/environments/default.yaml", "IMAGE: busybox\n");
    let text = "# {{ IMAGE }} comment\nuu: {image: '{{ IMAGE }}'}   # kept as written\n---\n- uu: {command: start}\n";
    env.unit("u/start.yaml", text);
    let rendered = "# busybox comment\nuu: {image: 'busybox'}   # kept as written\n---\n- uu: {command: start}\n";
    assert_eq!(
        env.dstart(&["run", "--print-substitutions", "u/start"])
            .ok(),
        rendered
    );
    // For a generated command: the rendered start file (ORIGINAL §8.25).
    assert_eq!(
        env.dstart(&["run", "--print-substitutions", "u/stop"]).ok(),
        rendered
    );
    // It beats --print-unit.
    assert_eq!(
        env.dstart(&["run", "--print-unit", "--print-substitutions", "u/start"])
            .ok(),
        rendered
    );
}

#[test]
fn yaml_1_2_booleans_and_integer_keys() {
    let env = Env::empty();
    env.unit(
        "u/start.yaml",
        "uu:\n  image: busybox\n  env: {A: yes, B: on, C: true}\n  startup: {port_bindings: {80: 8080}}\n---\n- uu: {command: start}\n",
    );
    let (composition, _) = documents(&env.dstart(&["run", "--print-unit", "u/start"]).ok());
    // `yes` and `on` are strings in YAML 1.2.
    assert_eq!(
        composition["uu"]["env"],
        yaml("{A: 'yes', B: 'on', C: true}")
    );
}

// ---------------------------------------------------------------------------------------------
// The unit's argument parser (ORIGINAL §1.7, §1.8)

fn unit_env(env: &Env, args: &[&str]) -> serde_yaml_ng::Value {
    let mut full = vec!["run", "--print-unit"];
    full.extend_from_slice(args);
    let (composition, _) = documents(&env.dstart(&full).ok());
    composition["vv"].clone()
}

#[test]
fn unit_arguments_defaults() {
    let env = Env::fixture("parser");
    assert_eq!(
        unit_env(&env, &["v/start"]),
        yaml(
            "{image: busybox, command: [], env: {FLAVOUR: plain, COUNT: 1, RATIO: 0.5, DEBUG: false}, stop_timeout: 10}"
        )
    );
}

#[test]
fn unit_arguments_short_long_typed_and_remainder() {
    let env = Env::fixture("parser");
    assert_eq!(
        unit_env(
            &env,
            &[
                "v/start",
                "-f",
                "fancy",
                "--count",
                "3",
                "--ratio",
                "2.5",
                "--debug-mode",
                "a",
                "-b",
                "--c"
            ]
        ),
        yaml(
            "{image: busybox, command: [a, '-b', '--c'], env: {FLAVOUR: fancy, COUNT: 3, RATIO: 2.5, DEBUG: true}, stop_timeout: 10}"
        )
    );
    assert_eq!(
        unit_env(&env, &["v/start", "--flavour", "fancy"])["env"]["FLAVOUR"],
        yaml("fancy")
    );
}

#[test]
fn generated_commands_use_the_start_and_global_arguments() {
    let env = Env::fixture("parser");
    let out = env
        .dstart(&[
            "run",
            "--print-unit",
            "v/stop",
            "--debug-mode",
            "-f",
            "fancy",
        ])
        .ok();
    assert!(out.contains("FLAVOUR: fancy"), "{out}");
    assert!(
        out.ends_with("---\n- vv:\n    command: stop\n    timeout: 10\n"),
        "{out}"
    );
}

#[test]
fn a_positional_argument_of_one_command() {
    let env = Env::fixture("parser");
    assert_eq!(
        unit_env(&env, &["v/shell", "db"])["env"],
        yaml("{TARGET: db, FLAVOUR: plain}")
    );
    let err = env.dstart(&["run", "--print-unit", "v/shell"]).fails();
    assert!(err.contains("<target>"), "{err}");
    // `--debug-mode` belongs to `start` only.
    let err = env
        .dstart(&["run", "--print-unit", "v/shell", "db", "--debug-mode"])
        .fails();
    assert!(err.contains("--debug-mode"), "{err}");
}

#[test]
fn unit_help_prints_usage_and_exits_0() {
    let env = Env::fixture("parser");
    let out = env.dstart(&["run", "--print-unit", "v/start", "-h"]).ok();
    assert!(
        out.starts_with("Usage: dstart run v/start [OPTIONS] [rest]...\n"),
        "{out}"
    );
    assert!(out.contains("-f, --flavour <flavour>"), "{out}");
    assert!(
        out.contains("flavour of the container [default: plain] [possible values: plain, fancy]"),
        "{out}"
    );
    assert!(out.contains("--debug-mode"), "{out}");
    assert!(!out.contains("vv:"), "{out}");
}

#[test]
fn a_bad_choice_is_a_usage_error() {
    let env = Env::fixture("parser");
    let err = env
        .dstart(&["run", "--print-unit", "v/start", "-f", "wrong"])
        .fails();
    assert!(
        err.starts_with(
            "error: conf/units/v/globals.yaml: invalid value 'wrong' for '--flavour <flavour>'\n"
        ),
        "{err}"
    );
    assert!(err.contains("[possible values: plain, fancy]"), "{err}");
    assert!(
        err.ends_with("\nhint: `dstart run v/start -h` shows the unit's arguments\n"),
        "{err}"
    );
    assert!(!err.contains("try '--help'"), "{err}");
}

#[test]
fn an_argument_error_names_the_third_document_file() {
    let env = Env::fixture("parser");
    let err = env
        .dstart(&["run", "--print-unit", "v3/start", "--bogus"])
        .fails();
    assert!(
        err.starts_with("error: conf/units/v3/start.yaml: unexpected argument '--bogus' found\n"),
        "{err}"
    );
}

#[test]
fn an_argument_error_of_an_imported_unit_names_both_files() {
    let env = Env::empty();
    env.unit(
        "app/start.yaml",
        "import: lib/start\naa: {image: busybox}\n---\n- aa: {command: start}\n",
    );
    env.unit(
        "lib/start.yaml",
        "ll: {image: busybox}\n---\n- ll: {command: start}\n",
    );
    env.unit(
        "lib/globals.yaml",
        "parser:\n  global:\n    - argument: {name: target}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "app/start"]).fails();
    assert!(
        err.starts_with(
            "error: conf/units/app/start.yaml:1:1: `app/start` imports `lib/start`, whose arguments cannot be read\ncaused by: conf/units/lib/globals.yaml: the following required arguments were not provided:\n"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("hint: an import reads `lib/start` with the defaults of its arguments; give each of them a default\n"),
        "{err}"
    );
    // A bad declaration in the imported unit's globals.yaml: the same wrapping, no hint.
    env.unit(
        "lib/globals.yaml",
        "parser:\n  global:\n    - argument: {name: '--x', type: list}\n",
    );
    assert_eq!(
        env.dstart(&["run", "--print-unit", "app/start"]).fails(),
        "error: conf/units/app/start.yaml:1:1: `app/start` imports `lib/start`, whose arguments cannot be read\ncaused by: conf/units/lib/globals.yaml:3: argument `--x`: unknown `type: list` (accepted: str, int, float)\n"
    );
}

#[test]
fn a_bad_int_or_float_is_a_usage_error() {
    let env = Env::fixture("parser");
    let err = env
        .dstart(&["run", "--print-unit", "v/start", "--count", "many"])
        .fails();
    assert!(
        err.contains("argument `--count`: invalid int value: `many`"),
        "{err}"
    );
    let err = env
        .dstart(&["run", "--print-unit", "v/start", "--ratio", "x"])
        .fails();
    assert!(err.contains("invalid float value: `x`"), "{err}");
}

#[test]
fn an_unknown_unit_option_is_a_usage_error() {
    let env = Env::fixture("parser");
    // REMAINDER takes everything after the first positional, but not an unknown flag first.
    let err = env
        .dstart(&["run", "--print-unit", "v/shell", "--nope", "db"])
        .fails();
    assert!(err.contains("unexpected argument '--nope'"), "{err}");
}

#[test]
fn a_unit_without_a_parser_takes_no_arguments() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "gen/start", "extra"])
            .fails(),
        "error: `gen/start` takes no arguments, but got `extra`\nhint: a unit declares its arguments under `parser` in `units/gen/globals.yaml`\n"
    );
}

#[test]
fn a_positional_after_a_remainder_is_a_configuration_error() {
    let env = Env::fixture("parser");
    env.unit(
        "v/globals.yaml",
        "parser:\n  global:\n    - argument: {name: rest, nargs: argparse.REMAINDER}\n  shell:\n    - argument: {name: target}\n",
    );
    assert_eq!(
        env.dstart(&["run", "--print-unit", "v/shell", "db"])
            .fails(),
        "error: conf/units/v/globals.yaml:3: argument `rest`: only the last positional argument may have a `default` or an `nargs` (arguments of `global` come before those of the command)\n"
    );
}

#[test]
fn a_reserved_or_duplicate_flag_is_a_configuration_error() {
    let env = Env::fixture("parser");
    env.unit(
        "v/globals.yaml",
        "parser:\n  global:\n    - argument: {name: '--host', short: '-h'}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "v/start"]).fails();
    assert!(
        err.contains("`-h`, `--help` and the name `help` are reserved"),
        "{err}"
    );
    env.unit(
        "v/globals.yaml",
        "parser:\n  global:\n    - argument: {name: '--x', short: '-f'}\n  start:\n    - argument: {name: '--y', short: '-f'}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "v/start"]).fails();
    assert!(
        err.contains("argument `--y`: `-f` is defined twice"),
        "{err}"
    );
}

#[test]
fn the_third_document_declares_arguments() {
    let env = Env::fixture("parser");
    assert_eq!(
        unit_env(&env, &["v3/start"]),
        yaml("{image: 'busybox:latest', env: {FORCE: false}, stop_timeout: 10}")
    );
    assert_eq!(
        unit_env(&env, &["v3/start", "-t", "1.36", "--force"]),
        yaml("{image: 'busybox:1.36', env: {FORCE: true}, stop_timeout: 10}")
    );
    let out = env
        .dstart(&["run", "--print-unit", "v3/start", "--help"])
        .ok();
    assert!(
        out.contains("-t, --tag <tag>  image tag [default: latest]"),
        "{out}"
    );
}

#[test]
fn run_options_go_before_unit_command() {
    // Everything after UNIT/COMMAND belongs to the unit: `--print-unit` here is a unit argument.
    let env = Env::fixture("basic");
    let err = env.dstart(&["run", "gen/start", "--print-unit"]).fails();
    assert!(
        err.contains("takes no arguments, but got `--print-unit`"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Modes, groups and variants (ORIGINAL §5)

fn active_modes(env: &Env, unit_command: &str) -> Result<String, String> {
    let out = env.dstart(&["run", "--print-unit", unit_command]).output();
    if out.code != Some(0) {
        return Err(out.config_error());
    }
    let (composition, _) = documents(&out.stdout);
    // The only container, `mm` (`mm_<tempid>` in a test run).
    let (_, mm) = composition.as_mapping().unwrap().iter().next().unwrap();
    Ok(mm["env"]["MODES"].as_str().unwrap().to_string())
}

#[test]
fn test_modes_of_original_section_5() {
    let env = Env::fixture("modes");
    // command test: atoms {ga, gb, ta, tb}, groups {GG, GT}
    assert_eq!(active_modes(&env, "m/test:GT:ta").unwrap(), "ga,ta,tb");
    assert_eq!(active_modes(&env, "m/test:GG:GT").unwrap(), "ga,gb,tb");
    assert_eq!(
        active_modes(&env, "m/test:ta:tb:ga:gb").unwrap(),
        "ga,gb,ta,tb"
    );
    // command other2: only the global section applies
    assert_eq!(active_modes(&env, "m/other2:GG:ga").unwrap(), "ga,gb");
    // command test2: atoms {ga, gb}, groups {GG}
    assert_eq!(active_modes(&env, "m/test2:GG").unwrap(), "ga,gb");
    assert_eq!(
        active_modes(&env, "m/test2:ta").unwrap_err(),
        "error: conf/units/m/globals.yaml: invalid mode selected: `ta`\nhint: valid tokens: GG, ga, gb\n"
    );
    assert_eq!(
        active_modes(&env, "m/test:tc").unwrap_err(),
        "error: conf/units/m/globals.yaml: invalid mode selected: `tc`\nhint: valid tokens: GG, GT, ga, gb, ta, tb\n"
    );
    // command other: a group references an undefined atom
    assert_eq!(
        active_modes(&env, "m/other").unwrap_err(),
        "error: conf/units/m/globals.yaml:3: the mode group references undefined mode atoms `unknown`\n"
    );
    // no tokens, no modes
    assert_eq!(active_modes(&env, "m/start").unwrap(), "");
}

#[test]
fn test_variants_are_not_mode_tokens() {
    let env = Env::fixture("modes");
    assert_eq!(active_modes(&env, "m/test:check:GG").unwrap(), "ga,gb");
    assert_eq!(active_modes(&env, "m/test:full").unwrap(), "");
    // ... but only for `test`.
    let err = active_modes(&env, "m/start:check").unwrap_err();
    assert!(
        err.starts_with("error: conf/units/m/globals.yaml: invalid mode selected: `check`\n"),
        "{err}"
    );
}

#[test]
fn without_tokens_every_order_is_kept_and_variants_are_not_printed() {
    let env = Env::fixture("modes");
    let out = env.dstart(&["run", "--print-unit", "web/start"]).ok();
    assert!(!out.contains("variants"), "{out}");
    assert_eq!(
        documents(&out).1,
        yaml(
            "[{db: {command: start}}, {cache: {command: start}}, {web: {command: start}},
              {admin: {command: start}}]"
        )
    );
}

#[test]
fn a_variant_keeps_untagged_orders_and_its_tagged_ones() {
    let env = Env::fixture("modes");
    assert_eq!(
        orders_of(&env, "web/start:minimal"),
        yaml("[{db: {command: start}}, {web: {command: start}}]")
    );
    assert_eq!(
        orders_of(&env, "web/start:full"),
        orders_of(&env, "web/start"),
    );
}

#[test]
fn generated_commands_derive_from_the_filtered_start_orders() {
    let env = Env::fixture("modes");
    assert_eq!(
        orders_of(&env, "web/stop:minimal"),
        yaml("[{web: {command: stop, timeout: 10}}, {db: {command: stop, timeout: 10}}]")
    );
    assert_eq!(
        orders_of(&env, "web/stop"),
        yaml(
            "[{admin: {command: stop, timeout: 10}}, {web: {command: stop, timeout: 10}},
              {cache: {command: stop, timeout: 10}}, {db: {command: stop, timeout: 10}}]"
        )
    );
}

#[test]
fn modes_reach_the_template_and_groups_expand() {
    let env = Env::fixture("modes");
    for (command, level) in [
        ("web/start", "info"),
        ("web/start:debug", "debug"),
        ("web/start:everything", "debug"),
    ] {
        let (composition, _) = documents(&env.dstart(&["run", "--print-unit", command]).ok());
        assert_eq!(
            composition["web"]["env"]["LOG_LEVEL"],
            yaml(level),
            "{command}"
        );
    }
    // A mode alone keeps only the untagged orders.
    assert_eq!(
        orders_of(&env, "web/start:debug"),
        yaml("[{db: {command: start}}]")
    );
}

#[test]
fn an_invalid_token_is_a_usage_error() {
    let env = Env::fixture("modes");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "web/start:nope"])
            .fails(),
        "error: conf/units/web/globals.yaml: invalid mode selected: `nope`\nhint: valid tokens: debug, everything, full, minimal\n"
    );
    // Without modes in a globals.yaml, the tokens are the `variants` tags of the unit file.
    assert_eq!(
        env.dstart(&["run", "--print-unit", "ct/start:slow"])
            .fails(),
        "error: conf/units/ct/start.yaml: invalid mode selected: `slow`\nhint: valid tokens: quick\n"
    );
    let err = env.dstart(&["run", "--print-unit", "web/start:"]).fails();
    assert!(
        err.starts_with("error: invalid mode selected: ``\n"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// --print-unit round trip

#[test]
fn print_unit_parses_back_to_the_same_data() {
    let env = Env::empty();
    let text = r#"web:
  image: busybox
  command: [httpd, -f, -p, "80"]
  env: {MODE: prod, PORT: 80}
  ports: ["127.0.0.1:8080:80"]
  volumes: ["site:/var/www:ro", /cache]
  startup:
    restart_policy: {Name: always}
data:
  creation:
    image: busybox
    volumes: [/data]
---
- data: {command: create}
- parallel:
    max: 2
    orders:
      - web: {command: start, ready: {http: "http://127.0.0.1:[[port 80]](web)/", status: 200}}
- host: {command: execute, run: "echo done", wait: 1}
"#;
    env.unit("u/start.yaml", text);
    let out = env.dstart(&["run", "--print-unit", "u/start"]).ok();
    let (composition, orders) = documents(&out);
    let mut written = serde_yaml_ng::Deserializer::from_str(text);
    let mut first = serde_yaml_ng::Value::deserialize(written.next().unwrap()).unwrap();
    let mut second = serde_yaml_ng::Value::deserialize(written.next().unwrap()).unwrap();
    // What was written, with the effective defaults: each container's `stop_timeout` and the
    // `ready` timeout.
    for (_, c) in first.as_mapping_mut().unwrap() {
        c.as_mapping_mut()
            .unwrap()
            .insert("stop_timeout".into(), 10.into());
    }
    second[1]["parallel"]["orders"][0]["web"]["ready"]
        .as_mapping_mut()
        .unwrap()
        .insert("timeout".into(), 60.into());
    assert_eq!(composition, first);
    assert_eq!(orders, second);
    // Mapping order is kept.
    let keys: Vec<&str> = composition
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["web", "data"]);
    // And the printed unit is itself a valid unit file.
    env.unit("u/again.yaml", &out);
    assert_eq!(env.dstart(&["run", "--print-unit", "u/again"]).ok(), out);
}

#[test]
fn print_only_and_print_unit_are_the_same() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-only", "gen/purge"]).ok(),
        env.dstart(&["run", "--print-unit", "gen/purge"]).ok()
    );
}

#[test]
fn print_options_never_contact_the_engine() {
    let env = Env::fixture("basic");
    for option in ["--print-unit", "--print-only", "--print-substitutions"] {
        env.dstart(&["-H", "tcp://127.0.0.1:1", "run", option, "gen/start"])
            .ok();
    }
}

#[test]
fn every_order_accepts_timeout_and_wait_as_in_the_original() {
    let env = Env::empty();
    env.unit(
        "orig/start.yaml",
        "data:\n  image: busybox\nweb:\n  image: busybox\n---\n- data: {command: create, timeout: 5, wait: 1}\n- web: {command: start, timeout: 5}\n- web: {command: execute, run: [ls], timeout: 5}\n",
    );
    assert_eq!(
        orders_of(&env, "orig/start"),
        yaml(
            "[{data: {command: create, timeout: 5, wait: 1}}, {web: {command: start, timeout: 5}}, {web: {command: execute, run: [ls], timeout: 5}}]"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input: one clear error, exit 2, never a panic

fn bad_unit(text: &str) -> String {
    let env = Env::empty();
    env.unit("bad/start.yaml", text);
    env.dstart(&["run", "--print-unit", "bad/start"]).fails()
}

/// Each unit text fails with exactly `error: conf/units/bad/start.yaml:EXPECTED`, never naming a
/// Rust type.
fn bad_units_fail_with(cases: &[(String, &str)]) {
    for (text, expected) in cases {
        let err = bad_unit(text);
        assert_eq!(
            err,
            format!("error: conf/units/bad/start.yaml:{expected}\n"),
            "for:\n{text}"
        );
        for rust in ["untagged", "enum", "struct", "Value", "u16", "i64"] {
            assert!(!err.contains(rust), "`{rust}` in: {err}");
        }
    }
}

#[test]
fn bad_yaml_syntax() {
    assert_eq!(
        bad_unit("aa: [1, 2\nbb: 3\n---\n- aa: {command: start}\n"),
        "error: conf/units/bad/start.yaml:2:3: did not find expected ',' or ']'\n"
    );
}

#[test]
fn bad_yaml_tab_indentation() {
    let err = bad_unit("aa:\n\timage: busybox\n---\n");
    assert!(
        err.starts_with("error: conf/units/bad/start.yaml:2:1: "),
        "{err}"
    );
}

#[test]
fn bad_duplicate_container_at_its_own_line() {
    assert_eq!(
        bad_unit("aa: {image: x}\nbb: {image: z}\naa: {image: y}\n---\n"),
        "error: conf/units/bad/start.yaml:3:1: duplicate key `aa`, first given at line 1\n"
    );
    assert_eq!(
        bad_unit("aa:\n  image: x\n  user: '1'\n  image: y\n---\n"),
        "error: conf/units/bad/start.yaml:4:3: `aa`: duplicate key `image`, first given at line 2\n"
    );
}

#[test]
fn bad_template_syntax() {
    let err = bad_unit("aa: {image: '{{ IMAGE '}\n---\n- aa: {command: start}\n");
    assert!(
        err.starts_with("error: conf/units/bad/start.yaml:1:"),
        "{err}"
    );
    assert!(err.contains("template syntax error"), "{err}");
}

#[test]
fn bad_type_of_a_key() {
    assert_eq!(
        bad_unit(
            "aa:\n  image: busybox\n  creation: {tty: sometimes}\n---\n- aa: {command: start}\n"
        ),
        "error: conf/units/bad/start.yaml:3:14: container `aa`: `creation.tty`: expected a boolean, found `sometimes`\n"
    );
}

/// A value of the wrong form, for each key that takes more than one form: the key, the accepted
/// forms and what was found, at the key's own line and column; an unknown key inside such a
/// form is named with the keys accepted there. Never a Rust type name.
#[test]
fn bad_form_of_a_value_says_which_forms_the_key_takes() {
    let container = |lines: &str| format!("aa:\n  image: busybox\n{lines}---\n");
    let order = |order: &str| format!("aa:\n  image: busybox\n---\n- aa: {order}\n");
    let cases = [
        (
            order("{command: start, ready: {http: 'http://x', tiemout: 5}}"),
            "4:50: order `start` on `aa`: `ready.tiemout`: unknown key `tiemout`, expected one of `http`, `log`, `healthy`, `status`, `match`, `re.match`, `cert`, `timeout`",
        ),
        (
            order("{command: start, ready: {http: 'http://x', status: ok}}"),
            "4:50: order `start` on `aa`: `ready.status`: expected an HTTP status code from 100 to 599, like `200`, found `ok`",
        ),
        (
            order("{command: start, ready: ok}"),
            "4:24: order `start` on `aa`: `ready`: expected `healthy`, or a mapping with `http` (and `status`, `match`, `cert`), `log` or `healthy: true`, each with an optional `timeout`, found `ok`",
        ),
        (
            order("{command: start, recreate: [never]}"),
            "4:24: order `start` on `aa`: `recreate`: expected one of `auto`, `never`, `always`, found a list",
        ),
        (
            container("  startup: {binds: {/a: {bind: /b, rw: true}}}\n"),
            "3:36: container `aa`: `startup.binds./a.rw`: unknown key `rw`, expected one of `bind`, `ro`, `mode`",
        ),
        (
            container("  startup: {binds: 5}\n"),
            "3:13: container `aa`: `startup.binds`: expected a mapping of host paths to `{bind: /container/path, ro: true}` (or just the container path), or a list of `/host:/container[:ro]` strings, found the number `5`",
        ),
        (
            container("  ports: [{a: 1}]\n"),
            "3:12: container `aa`: `ports[0]`: expected a port like `80`, `8080:80` or `127.0.0.1:8080:80/udp`, found a mapping",
        ),
        (
            container("  user: [1]\n"),
            "3:3: container `aa`: `user`: expected a user name or id, optionally with a group, like `1000` or `www-data:www-data`, found a list",
        ),
        (
            container("  command: {a: 1}\n"),
            "3:3: container `aa`: `command`: expected a string or a list of strings, found a mapping",
        ),
        (
            container("  env: {A: [1, 2]}\n"),
            "3:9: container `aa`: `env.A`: expected a single value (a string, a number or `true`/`false`), found a list",
        ),
        (
            container("  env: 5\n"),
            "3:3: container `aa`: `env`: expected a mapping of `NAME: value`, or a list of `NAME=value` strings, found the number `5`",
        ),
        (
            container("  labels: {a: [1]}\n"),
            "3:12: container `aa`: `labels.a`: expected a single value (a string, a number or `true`/`false`), found a list",
        ),
        (
            container("  startup: {port_bindings: {80: {a: 1}}}\n"),
            "3:29: container `aa`: `startup.port_bindings.80`: expected a host port: a number, `IP:PORT`, `[IP, PORT]`, a list of ports, or nothing for a port the engine picks, found a mapping",
        ),
        (
            order("{command: backup, source: 5}"),
            "4:25: order `backup` on `aa`: `source`: expected a string or a list of strings, found the number `5`",
        ),
        (
            order("{command: execute, run: {a: 1}}"),
            "4:26: order `execute` on `aa`: `run`: expected a string or a list of strings, found a mapping",
        ),
        (
            order("{command: execute, run: ls, type: [x]}"),
            "4:35: order `execute` on `aa`: `type`: expected one of `file_system`, `temporary`, `in_running`, `host`, found a list",
        ),
        (
            container("  build: 5\n"),
            "3:3: container `aa`: `build`: expected a mapping, found the number `5`",
        ),
        (
            container("  stop_timeout: -1\n"),
            "3:3: container `aa`: `stop_timeout`: expected a non-negative number of seconds, found `-1`\nhint: the grace period between the stop signal and SIGKILL, such as `30`",
        ),
        (
            container("  stop_timeout: soon\n"),
            "3:3: container `aa`: `stop_timeout`: expected a number, found `soon`",
        ),
    ];
    bad_units_fail_with(&cases);
}

/// Values that passed loading and then panicked (exit 101) or failed late: durations, sizes,
/// regexes, methods and URLs are checked while the unit loads, at their key's line.
#[test]
fn bad_values_are_errors_at_load_never_panics() {
    let container = |lines: &str| format!("aa:\n  image: busybox\n{lines}---\n");
    let order = |order: &str| format!("aa:\n  image: busybox\n---\n- aa: {order}\n");
    let cases = [
        (
            order("{command: start, ready: {log: x, timeout: -1}}"),
            "4:40: order `start` on `aa`: `ready.timeout`: expected a number of seconds, 0 or more, found -1",
        ),
        (
            order("{command: start, ready: {log: x, timeout: .nan}}"),
            "4:40: order `start` on `aa`: `ready.timeout`: expected a number of seconds, found NaN",
        ),
        (
            order("{command: start, ready: {healthy: true, timeout: .inf}}"),
            "4:47: order `start` on `aa`: `ready.timeout`: expected at most 31536000 seconds (a year), found inf",
        ),
        (
            order("{command: start, wait: -1}"),
            "4:24: `wait`: expected a number of seconds, 0 or more, found -1",
        ),
        (
            order("{command: backup, lock_timeout: .nan}"),
            "4:25: order `backup` on `aa`: `lock_timeout`: expected a number of seconds, found NaN",
        ),
        (
            order("{command: restore, lock_timeout: -5}"),
            "4:26: order `restore` on `aa`: `lock_timeout`: expected a number of seconds, 0 or more, found -5",
        ),
        (
            order("{command: start, ready: {log: '(['}}"),
            "4:32: order `start` on `aa`: `ready.log`: invalid regex: unclosed character class",
        ),
        (
            order("{command: start, ready: {http: 'localhost:80'}}"),
            "4:32: order `start` on `aa`: `ready.http`: `localhost:80` is not an `http://` or `https://` URL",
        ),
        (
            container(
                "  creation: {mem_limit: 99999999999g}
",
            ),
            "3:14: `mem_limit`: size `99999999999g` is too large",
        ),
        (
            container(
                "  daemon: {home: {url: 'http://x/', match: '(['}}
",
            ),
            "3:37: container `aa`: `daemon.home.match`: invalid regex: unclosed character class",
        ),
        (
            container(
                "  daemon: {home: {url: 'http://x/', timeout: -1}}
",
            ),
            "3:37: container `aa`: `daemon.home.timeout`: expected a number of seconds, 0 or more, found -1",
        ),
        (
            container(
                "  daemon: {home: {url: 'http://x/', type: FETCH}}
",
            ),
            "3:37: container `aa`: `daemon.home.type`: unknown method `FETCH` (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)",
        ),
        (
            container(
                "  daemon: [{FETCH: {url: 'http://x/'}}]
",
            ),
            "3:13: container `aa`: `daemon[0]`: unknown method `FETCH` (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)",
        ),
        (
            container(
                "  daemon: {home: {url: 'ht tp://x'}}
",
            ),
            "3:19: container `aa`: `daemon.home.url`: `ht tp://x` is not a URL: invalid uri character",
        ),
        (
            container(
                "  job: {logs: ['(a'], timeout: 5}
",
            ),
            "3:16: container `aa`: `job.logs[0]`: invalid regex: unclosed group",
        ),
        (
            container(
                "  jobs: {once: {args: [x], timeout: .inf}}
",
            ),
            "3:28: container `aa`: `jobs.once.timeout`: expected at most 31536000 seconds (a year), found inf",
        ),
        (
            container(
                "  creation: {healthcheck: {test: 'true', interval: -1}}
",
            ),
            "3:42: container `aa`: `creation.healthcheck.interval`: expected a number of seconds, 0 or more, found -1",
        ),
    ];
    bad_units_fail_with(&cases);
}

/// Input that exhausted memory or time (an abort, a minute of parsing) fails fast, and every
/// such error has a line; long values are clipped in messages.
#[test]
fn bad_input_is_bounded_and_located() {
    let deep = format!(
        "aa:\n  image: busybox\n  labels: {{x: {}{}}}\n---\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let long = "x".repeat(4 << 20);
    let cases = [
        (
            "aa: {image: '{{ range(end=100000000) | length }}'}\n---\n".to_string(),
            "1: Function call 'range' failed: Function `range` would make 100000000 items, more than 100000",
        ),
        (
            format!(
                "aa: {{image: busybox}}\n# {{% for i in range(end=100000) %}}{{% for j in range(end=100000) %}}{}{{% endfor %}}{{% endfor %}}\n---\n",
                "x".repeat(1000)
            ),
            "2: the rendered text is larger than 16 MiB",
        ),
        (
            "aa: {image: busybox}\n\nbb: {image: '{{ 1 | nosuchfilter }}'}\n---\n".to_string(),
            "3: Filter 'nosuchfilter' not found",
        ),
        (deep, "3:269: lists and mappings nest deeper than 64 levels"),
        (
            format!("aa: {{image: busybox}}\n---\n{}x\n", "- ".repeat(100_000)),
            "3:129: lists and mappings nest deeper than 64 levels",
        ),
        (
            "base: &b [1]\naa:\n  <<: *b\n  image: busybox\n---\n".to_string(),
            "3:3: `<<` merges a mapping or a list of mappings, found a list holding something other than mappings",
        ),
        (
            format!("aa: {{image: busybox, env: ['{long}']}}\n---\n"),
            &*format!(
                "1:28: `env`: `{}… ({} more bytes)` is not KEY=VALUE",
                "x".repeat(120),
                (4 << 20) - 120
            ),
        ),
    ];
    for (text, expected) in &cases {
        let started = std::time::Instant::now();
        let err = bad_unit(text);
        assert_eq!(
            err,
            format!("error: conf/units/bad/start.yaml:{expected}\n"),
            "for:\n{}",
            &text[..text.len().min(200)]
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{expected}"
        );
    }
}

/// Mistakes in a unit's `globals.yaml` (its arguments, its mode groups) name their line.
#[test]
fn bad_globals_name_their_line() {
    let cases = [
        (
            "parser:\n  global:\n    - argument: {name: '--n', type: int}\n    - argument: {name: '--f', default: x, choices: [a, b]}\n",
            "conf/units/g/globals.yaml:4: argument `--f`: `default`: `x` is not one of its `choices`",
        ),
        (
            "parser:\n  global:\n    - argument:\n        name: '--n'\n        type: int\n        default: .nan\n",
            "conf/units/g/globals.yaml:4: argument `--n`: `default`: invalid int value: `.nan`",
        ),
        (
            "modes:\n  global: [a, b]\ngroups:\n  global:\n    ab: [a, b]\n    ac: [a, c]\n",
            "conf/units/g/globals.yaml:6: the mode group references undefined mode atoms `c`",
        ),
        (
            "modes: {global: [a]}\n---\nx: 1\n",
            "conf/units/g/globals.yaml:3: globals.yaml holds one YAML document, found more",
        ),
    ];
    for (globals, expected) in cases {
        let env = Env::empty();
        env.unit(
            "g/start.yaml",
            "aa: {image: busybox}\n---\n- aa: {command: start}\n",
        );
        env.unit("g/globals.yaml", globals);
        let err = env.dstart(&["run", "--print-unit", "g/start"]).fails();
        assert_eq!(
            err.lines().next(),
            Some(&*format!("error: {expected}")),
            "{globals}"
        );
    }
}

#[test]
fn bad_utf8_names_the_line_of_the_first_bad_byte() {
    let env = Env::empty();
    let path = env.conf().join("units/bad/start.yaml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        b"aa: {image: busybox}\n---\n- aa: {command: st\xffart}\n",
    )
    .unwrap();
    assert_eq!(
        env.dstart(&["run", "--print-unit", "bad/start"]).fails(),
        "error: conf/units/bad/start.yaml:3:19: invalid UTF-8: byte 0xff\nhint: unit files, templates and environment files are UTF-8 text\n"
    );
}

#[test]
fn bad_unknown_key_in_a_container_lists_accepted_keys() {
    assert_eq!(
        bad_unit("aa:\n  image: busybox\n  imgae: x\n---\n- aa: {command: start}\n"),
        "error: conf/units/bad/start.yaml:3:3: container `aa`: `imgae`: unknown key `imgae`, expected one of `build`, `creation`, `startup`, `image`, `command`, `entrypoint`, `env`, `ports`, `volumes`, `labels`, `working_dir`, `user`, `pull`, `stop_timeout`, `daemon`, `job`, `jobs`, `tests`, `backup`, `restore`, `deploy`, `secrets`\n"
    );
}

#[test]
fn bad_unknown_nested_key_in_a_container() {
    let err =
        bad_unit("aa:\n  image: busybox\n  startup:\n    restrat_policy: {Name: always}\n---\n");
    assert!(
        err.starts_with(
            "error: conf/units/bad/start.yaml:4:5: container `aa`: `startup.restrat_policy`: unknown key `restrat_policy`, expected one of "
        ),
        "{err}"
    );
    assert!(err.contains("`restart_policy`"), "{err}");
}

#[test]
fn bad_unknown_key_in_an_order_lists_accepted_keys() {
    assert_eq!(
        bad_unit("aa:\n  image: busybox\n---\n- aa: {command: start, restrat: true}\n"),
        "error: conf/units/bad/start.yaml:4:24: order `start` on `aa`: `restrat`: unknown key `restrat`\nhint: `start` accepts `restart`, `attach`, `timeout`, `ready`, `recreate`, `wait`, `variants`\n"
    );
}

#[test]
fn bad_unknown_order_kind() {
    assert_eq!(
        bad_unit("aa:\n  image: busybox\n---\n- aa: {command: strat}\n"),
        "error: conf/units/bad/start.yaml:4:8: unknown order `strat` on `aa`\nhint: orders are build, create, start, stop, remove, remove_image, backup, restore, execute, tag, commit, push, unit, tests, upgrade\n"
    );
}

#[test]
fn bad_order_without_command() {
    let err = bad_unit("aa:\n  image: busybox\n---\n- aa: {restart: true}\n");
    assert!(
        err.starts_with("error: conf/units/bad/start.yaml:4:3: order on `aa` has no `command`\n"),
        "{err}"
    );
}

#[test]
fn bad_order_on_a_container_without_spec() {
    assert_eq!(
        bad_unit("aa:\n  image: busybox\n---\n- bb: {command: start}\n"),
        "error: conf/units/bad/start.yaml:4:3: order `start` on `bb`, which has no spec in the composition document\nhint: containers of this unit: aa\n"
    );
}

#[test]
fn bad_start_without_image() {
    assert_eq!(
        bad_unit("aa:\n  env: {A: 1}\n---\n- aa: {command: start}\n"),
        "error: conf/units/bad/start.yaml:4:3: order `start` on `aa`: the container has no image\nhint: give it `image: NAME`, or `build: {path: DIR, tag: NAME}`\n"
    );
}

#[test]
fn bad_conflicting_keys() {
    let err = bad_unit("aa:\n  image: a\n  creation: {image: b}\n---\n");
    assert!(
        err.starts_with("error: conf/units/bad/start.yaml:"),
        "{err}"
    );
    assert!(
        err.contains("both `image` and `creation.image` are given"),
        "{err}"
    );
}

#[test]
fn bad_missing_orders_document() {
    assert_eq!(
        bad_unit("aa:\n  image: busybox\n"),
        "error: conf/units/bad/start.yaml:2: this unit file has no orders document\nhint: after the containers, add a line `---` and the list of orders, like `- web: {command: start}`\n"
    );
}

#[test]
fn bad_orders_document_shape() {
    let err = bad_unit("aa: {image: x}\n---\naa: {command: start}\n");
    assert!(
        err.starts_with("error: conf/units/bad/start.yaml:3:"),
        "{err}"
    );
    assert!(
        err.contains(": the orders document (the second one) must be a list of orders, found a mapping\nhint: write each order as a list item: `- web: {command: start}`\n"),
        "{err}"
    );
}

#[test]
fn bad_composition_document_shape() {
    let err = bad_unit("- aa\n---\n- aa: {command: start}\n");
    assert!(
        err.starts_with("error: conf/units/bad/start.yaml:1:1: the composition document (the first one) must be a mapping of containers, found a list\n"),
        "{err}"
    );
}

#[test]
fn bad_invalid_container_name() {
    let err = bad_unit("a/b: {image: x}\n---\n");
    assert!(
        err.starts_with(
            "error: conf/units/bad/start.yaml:1:1: `a/b` is not a valid container name\n"
        ),
        "{err}"
    );
}

#[test]
fn bad_reserved_container_name() {
    assert_eq!(
        bad_unit("host: {image: x}\n---\n"),
        "error: conf/units/bad/start.yaml:1:1: `host` is reserved and cannot name a container\n"
    );
}

#[test]
fn bad_late_order_means_nothing_runs() {
    let env = Env::empty();
    env.unit(
        "bad/start.yaml",
        "aa:\n  image: busybox\n---\n- aa: {command: start}\n- aa: {command: stop}\n- aa: {command: frob}\n",
    );
    // Not even the generated commands, which do not contain the bad order.
    for command in ["bad/start", "bad/stop"] {
        let err = env.dstart(&["run", "--print-unit", command]).fails();
        assert!(
            err.starts_with("error: conf/units/bad/start.yaml:6:8: unknown order `frob` on `aa`\n"),
            "{err}"
        );
    }
    // Without a print option the run is refused before any engine work, with the same error.
    let err = env.dstart(&["run", "bad/start"]).fails();
    assert!(err.contains("unknown order `frob`"), "{err}");
}

#[test]
fn bad_missing_include() {
    let err = bad_unit("{% include \"common/nope.yaml\" %}\naa: {image: x}\n---\n");
    assert_eq!(
        err,
        "error: conf/units/bad/start.yaml:1: template `common/nope.yaml` was not found (looked in `conf/units`)\n"
    );
}

#[test]
fn bad_unit_command_without_command() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "gen"]).fails(),
        "error: expected UNIT/COMMAND, got `gen`\nhint: write the unit and the command, for example `web/start`\n"
    );
}

#[test]
fn bad_unknown_unit() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "nope/start"]).fails(),
        "error: no unit `nope`\nhint: available: flat, gen, over, tools\n"
    );
}

#[test]
fn bad_unknown_command() {
    let env = Env::fixture("basic");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "gen/frob"]).fails(),
        "error: no unit command `gen/frob`\nhint: available: backup, build, cleanup, create, purge, restart, restore, start, stop, test\n"
    );
}

#[test]
fn bad_environment_file_that_is_not_a_mapping() {
    let env = Env::fixture("basic");
    env.write("conf/environments/list.yaml", "- a\n- b\n");
    assert_eq!(
        env.dstart(&["run", "--print-unit", "gen/start"]).fails(),
        "error: conf/environments/list.yaml:1:1: an environment file must be a mapping of variables, found a list\n"
    );
}

#[test]
fn bad_environment_file_syntax() {
    let env = Env::fixture("basic");
    env.write("conf/environments/broken.yaml", "A: [1\n");
    let err = env.dstart(&["run", "--print-unit", "gen/start"]).fails();
    assert!(
        err.starts_with("error: conf/environments/broken.yaml:"),
        "{err}"
    );
}

#[test]
fn bad_extra_environment_file() {
    let env = Env::fixture("basic");
    let err = env
        .dstart(&["run", "--print-unit", "-e", "missing.yaml", "gen/start"])
        .fails();
    assert!(
        err.starts_with("error: cannot read `missing.yaml`\ncaused by: "),
        "{err}"
    );
    env.write("scalar.yaml", "just text\n");
    let err = env
        .dstart(&["run", "--print-unit", "-e", "scalar.yaml", "gen/start"])
        .fails();
    assert!(
        err.starts_with("error: scalar.yaml:1:1: an environment file must be a mapping of variables, found a string\n"),
        "{err}"
    );
}

#[test]
fn an_empty_environment_file_is_fine() {
    let env = Env::fixture("basic");
    env.write("conf/environments/empty.yaml", "");
    env.dstart(&["run", "--print-unit", "gen/start"]).ok();
}

#[test]
fn bad_globals_file() {
    let env = Env::empty();
    env.unit(
        "g/start.yaml",
        "gg: {image: busybox}\n---\n- gg: {command: start}\n",
    );
    env.unit(
        "g/globals.yaml",
        "parser:\n  global:\n    - argument: {name: '--x', kind: int}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "g/start"]).fails();
    assert!(
        err.starts_with("error: conf/units/g/globals.yaml:3:"),
        "{err}"
    );
    assert!(err.contains("unknown key `kind`"), "{err}");
    env.unit("g/globals.yaml", "parsr: {}\n");
    let err = env.dstart(&["run", "--print-unit", "g/start"]).fails();
    assert!(
        err.starts_with("error: conf/units/g/globals.yaml:1:1: "),
        "{err}"
    );
    assert!(err.contains("unknown key `parsr`, expected one of `parser`, `modes`, `groups`, `environment`, `jinja`"), "{err}");
}

#[test]
fn bad_argument_spec_in_globals() {
    let env = Env::empty();
    env.unit(
        "g/start.yaml",
        "gg: {image: busybox}\n---\n- gg: {command: start}\n",
    );
    env.unit(
        "g/globals.yaml",
        "parser:\n  global:\n    - argument: {name: '--x', type: list}\n",
    );
    let err = env.dstart(&["run", "--print-unit", "g/start"]).fails();
    assert_eq!(
        err,
        "error: conf/units/g/globals.yaml:3: argument `--x`: unknown `type: list` (accepted: str, int, float)\n"
    );
}

#[test]
fn bad_variants_value() {
    let err = bad_unit("aa: {image: x}\n---\n- aa: {command: start, variants: {a: 1}}\n");
    assert!(err.contains("`variants` must be a list of tags"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Shell completion

fn complete(env: &Env, words: &[&str]) -> String {
    let mut full = vec!["__complete", "--"];
    full.extend_from_slice(words);
    env.dstart_raw(&full).ok()
}

#[test]
fn complete_unit_commands_from_c_typed_earlier() {
    let env = Env::fixture("basic");
    assert_eq!(complete(&env, &["-c", "conf", "run", ""]), BASIC_UNITS);
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "gen/s"]),
        "gen/start\ngen/stop\n"
    );
    assert_eq!(
        complete(&env, &["run", "--configdir=conf", "--print-unit", "fl"])
            .lines()
            .count(),
        10
    );
}

#[test]
fn complete_unit_commands_from_dockerstra_conf_and_home() {
    let env = Env::fixture("basic");
    let conf = env.conf().display().to_string();
    let out = env
        .dstart_raw(&["__complete", "--", "run", "tools/"])
        .env("DOCKERSTRA_CONF", &conf)
        .ok();
    assert_eq!(out, "tools/shell\n");
    env.write("home/.dockerstra/environments/default.yaml", "");
    env.write(
        "home/.dockerstra/units/mine/start.yaml",
        "aa: {image: busybox}\n---\n",
    );
    assert_eq!(complete(&env, &["run", "mine/sta"]), "mine/start\n");
}

#[test]
fn complete_modes_groups_and_variant_tags() {
    let env = Env::fixture("modes");
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "web/start:"]),
        "web/start:debug\nweb/start:everything\nweb/start:full\nweb/start:minimal\n"
    );
    // Tokens already typed are not offered again; the partial token filters.
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "web/stop:full:"]),
        "web/stop:full:debug\nweb/stop:full:everything\nweb/stop:full:minimal\n"
    );
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "web/start:full:e"]),
        "web/start:full:everything\n"
    );
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "m/test:"]),
        "m/test:GG\nm/test:GT\nm/test:check\nm/test:default\nm/test:full\nm/test:ga\nm/test:gb\nm/test:production\nm/test:restore\nm/test:ta\nm/test:tb\n"
    );
}

#[test]
fn complete_test_variants_and_custom_tests() {
    let env = Env::fixture("modes");
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "ct/test:"]),
        "ct/test:check\nct/test:default\nct/test:full\nct/test:lint\nct/test:production\nct/test:pytests\nct/test:quick\nct/test:restore\n"
    );
    // Custom tests and test variants are tokens of `test` only.
    assert_eq!(
        complete(&env, &["-c", "conf", "run", "ct/start:"]),
        "ct/start:quick\n"
    );
}

#[test]
fn complete_help_names() {
    let env = Env::fixture("basic");
    assert_eq!(
        complete(&env, &["-c", "conf", "help", "--unit", ""]),
        "flat\ngen\nover\ntools\n"
    );
    assert_eq!(
        complete(&env, &["-c", "conf", "help", "--service", "c"]),
        "cgit\n"
    );
    assert_eq!(
        complete(&env, &["-c", "conf", "help", "--unit=o"]),
        "--unit=over\n"
    );
}

#[test]
fn complete_leaves_flags_subcommands_and_unit_arguments_to_the_script() {
    let env = Env::fixture("basic");
    for words in [
        &[""][..],
        &["li"],
        &["-c", ""],
        &["-c", "conf", "run", "--print"],
        &["-c", "conf", "run", "-e", ""],
        &["-c", "conf", "run", "gen/start", ""],
        &["-c", "conf", "run", "gen/start", "-c", "conf", ""],
        &["-c", "conf", "list", ""],
        &["-c", "conf", "completions", ""],
    ] {
        assert_eq!(complete(&env, words), "", "{words:?}");
    }
}

#[test]
fn complete_never_fails_loudly() {
    let env = Env::bare();
    // No configuration directory at all.
    assert_eq!(complete(&env, &["run", ""]), "");
    assert_eq!(complete(&env, &["-c", "missing", "help", "--unit", ""]), "");
    // A broken unit: names still complete, its tokens do not.
    let env = Env::empty();
    env.unit("bad/start.yaml", "aa: [\n---\n");
    env.unit("bad/globals.yaml", "modes: {global: [x]\n");
    assert!(complete(&env, &["-c", "conf", "run", "ba"]).contains("bad/start\n"));
    assert_eq!(complete(&env, &["-c", "conf", "run", "bad/start:"]), "");
    assert_eq!(complete(&env, &["-c", "conf", "run", "nope/start:"]), "");
    assert_eq!(complete(&env, &["-c", "conf", "run", "nope:"]), "");
}

#[test]
fn completion_scripts_are_printed_for_each_shell() {
    let env = Env::bare();
    let bash = env.dstart_raw(&["completions", "bash"]).ok();
    assert!(bash.contains("complete -F _dstart_dynamic"), "{bash}");
    let zsh = env.dstart_raw(&["completions", "zsh"]).ok();
    assert!(zsh.starts_with("#compdef dstart\n"), "{zsh}");
    assert!(zsh.contains("__complete --"), "{zsh}");
    let fish = env.dstart_raw(&["completions", "fish"]).ok();
    assert!(fish.contains("__complete --"), "{fish}");
    for script in [&bash, &zsh, &fish] {
        assert!(!script.contains(" __complete\""), "hidden command offered");
    }
    let err = env.dstart_raw(&["completions", "tcsh"]).fails();
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

fn run_bash(env: &Env, script: &str) -> String {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(env.root())
        .env("HOME", env.home())
        .env("DOCKER_HOST", common::NO_ENGINE)
        .env_remove("DOCKERSTRA_CONF")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_script_passes_bash_n() {
    let env = Env::bare();
    let script = env.dstart_raw(&["completions", "bash"]).ok();
    env.write("dstart.bash", &script);
    run_bash(&env, "bash -n dstart.bash");
}

#[test]
fn bash_script_completes_words_with_colons() {
    let env = Env::fixture("modes");
    let script = env.dstart_raw(&["completions", "bash"]).ok();
    env.write("dstart.bash", &script);
    let bin = env!("CARGO_BIN_EXE_dstart");
    // What bash does before calling the function: COMP_LINE/COMP_POINT, and COMP_WORDS split
    // at COMP_WORDBREAKS (which holds `:` and `=`), so the word bash replaces is the part
    // after the last `:`.
    let driver = format!(
        r#"source dstart.bash
COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'
t() {{
    COMP_LINE="$1"; COMP_POINT=${{#COMP_LINE}}
    COMP_WORDS=({bin} "${{@:2}}"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
    COMPREPLY=()
    _dstart_dynamic "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
    echo "${{COMPREPLY[*]}}"
}}
t "{bin} -c conf run web/start:" -c conf run web/start :
t "{bin} -c conf run web/start:mi" -c conf run web/start : mi
t "{bin} -c conf run web/start:full:e" -c conf run web/start : full : e
t "{bin} -c conf run web/st" -c conf run web/st
t "{bin} -c conf help --unit=w" -c conf help --unit = w
t "{bin} -c conf li" -c conf li
"#
    );
    assert_eq!(
        run_bash(&env, &driver),
        "debug everything full minimal\nminimal\neverything\nweb/start web/stop\nweb\nlist\n"
    );
}

// ---------------------------------------------------------------------------------------------
// docs/units.md: every ```yaml block that starts with `# file: PATH` is written into one
// configuration directory, and every unit command it defines (and the generated commands of
// each `start`) prints with `--print-unit`.

const UNITS_MD: &str = include_str!("../docs/units.md");

/// (first line, body) of every fenced `yaml` block.
fn yaml_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() != "```yaml" {
            continue;
        }
        let mut body: Vec<&str> = Vec::new();
        for l in lines.by_ref() {
            if l.trim_end() == "```" {
                break;
            }
            body.push(l);
        }
        let first = body.first().copied().unwrap_or_default().to_string();
        let rest = body.get(1..).unwrap_or(&[]).join("\n");
        out.push((first, format!("{rest}\n")));
    }
    out
}

fn example_env() -> (Env, Vec<String>) {
    let env = Env::empty();
    let mut files = Vec::new();
    for (first, body) in yaml_blocks(UNITS_MD) {
        if let Some(path) = first.strip_prefix("# file: ") {
            env.write(&format!("conf/{path}"), &body);
            files.push(path.to_string());
        }
    }
    (env, files)
}

/// `units/a/b.yaml` → `a/b`, `units/a.yaml` → `a/start`; `None` for globals and fragments.
fn unit_command(path: &str) -> Option<String> {
    let rel = path.strip_prefix("units/")?.strip_suffix(".yaml")?;
    if rel.ends_with("/globals") {
        return None;
    }
    Some(if rel.contains('/') {
        rel.to_string()
    } else {
        format!("{rel}/start")
    })
}

#[test]
fn every_example_unit_prints() {
    let (env, files) = example_env();
    assert!(files.len() > 10, "examples not found: {files:?}");
    let mut checked = 0;
    for path in &files {
        let Some(uc) = unit_command(path) else {
            continue;
        };
        let mut commands = vec![uc.clone()];
        if let Some(unit) = uc.strip_suffix("/start") {
            for g in [
                "stop", "cleanup", "purge", "restart", "build", "create", "backup", "restore",
                "test",
            ] {
                commands.push(format!("{unit}/{g}"));
            }
        }
        for c in commands {
            let out = env.dstart(&["run", "--print-unit", &c]).output();
            assert_eq!(
                out.code,
                Some(0),
                "docs/units.md example `{c}` ({path}) fails:\n{}",
                out.stderr
            );
            documents(&out.stdout);
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn printed_example_is_what_dstart_prints() {
    let (env, _) = example_env();
    let (first, body) = yaml_blocks(UNITS_MD)
        .into_iter()
        .find(|(first, _)| first.starts_with("# printed by: "))
        .expect("a printed example");
    assert!(first.contains("hello/purge"), "{first}");
    let out = env.dstart(&["run", "--print-unit", "hello/purge"]).ok();
    assert_eq!(documents(&out).1, yaml(&body));
}

#[test]
fn variant_table_is_what_dstart_prints() {
    let (env, _) = example_env();
    let orders = |c: &str| documents(&env.dstart(&["run", "--print-unit", c]).ok()).1;
    assert_eq!(
        orders("site/start"),
        yaml(
            "[{site-db: {command: start}}, {site-cache: {command: start}}, {site-web: {command: start}}]"
        )
    );
    assert_eq!(
        orders("site/start:minimal"),
        yaml("[{site-db: {command: start}}, {site-web: {command: start}}]")
    );
    assert_eq!(
        orders("site/stop:minimal"),
        yaml("[{site-web: {command: stop, timeout: 10}}, {site-db: {command: stop, timeout: 10}}]")
    );
}

#[test]
fn environment_example_merges_as_documented() {
    let (env, _) = example_env();
    env.unit(
        "envcheck/start.yaml",
        "envcheck: {image: busybox, env: {SITE: '{{ SITE | json_encode() }}'}}\n---\n",
    );
    let (composition, _) = documents(&env.dstart(&["run", "--print-unit", "envcheck/start"]).ok());
    assert_eq!(
        composition["envcheck"]["env"]["SITE"],
        yaml(r#"'{"name":"example","port":8081}'"#)
    );
    env.write("extra.yaml", "SITE: {port: 9000}\n");
    let (composition, _) = documents(
        &env.dstart(&["run", "--print-unit", "-e", "extra.yaml", "envcheck/start"])
            .ok(),
    );
    assert_eq!(
        composition["envcheck"]["env"]["SITE"],
        yaml(r#"'{"port":9000}'"#)
    );
}

#[test]
fn argument_examples_parse() {
    let (env, _) = example_env();
    let out = env
        .dstart(&[
            "run",
            "--print-unit",
            "shop/start:dev:seed",
            "-f",
            "fancy",
            "--replicas",
            "3",
        ])
        .ok();
    let (composition, orders) = documents(&out);
    assert_eq!(composition["shop-db"]["env"]["FLAVOUR"], yaml("fancy"));
    assert_eq!(composition["shop-db"]["env"]["NAME"], yaml("shop-example"));
    assert_eq!(composition["shop-web"]["env"]["REPLICAS"], yaml("'3'"));
    assert_eq!(composition["shop-web"]["env"]["LOG_LEVEL"], yaml("debug"));
    assert_eq!(orders.as_sequence().unwrap().len(), 3);
    let out = env
        .dstart(&["run", "--print-unit", "tool/start", "-t", "1.36"])
        .ok();
    assert!(
        out.starts_with("tool-runner:\n  image: busybox:1.36\n"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// Build chains (no engine: these fail before it is asked)

/// Units `a` and `b`, each building one image from a Dockerfile in `services/<unit>` whose
/// `FROM` is given.
fn two_builds(env: &Env, a_from: &str, b_from: &str) {
    for (unit, from) in [("a", a_from), ("b", b_from)] {
        env.write(
            &format!("conf/services/{unit}/Dockerfile"),
            &format!("# {unit}\nFROM {from}\n"),
        );
        env.unit(
            &format!("{unit}/start.yaml"),
            &format!(
                "{unit}-img:\n  build: {{path: services/{unit}, tag: 'me/{unit}:1'}}\n---\n- {unit}-img: {{command: start}}\n"
            ),
        );
    }
}

#[test]
fn a_from_cycle_is_a_configuration_error_naming_it() {
    let env = Env::empty();
    two_builds(&env, "me/b:1", "me/a:1");
    for args in [
        &["build", "a"][..],
        &["build"],
        &["run", "a/start"],
        &["run", "--plan", "b/start"],
    ] {
        let err = env.dstart(args).fails();
        assert!(
            err.contains("the `FROM` lines of the builds form a cycle: me/")
                && (err.contains("me/a:1 → me/b:1 → me/a:1")
                    || err.contains("me/b:1 → me/a:1 → me/b:1")),
            "{args:?}: {err}"
        );
        assert!(err.contains("/Dockerfile:2: "), "{args:?}: {err}");
        assert!(
            err.contains("services/a/Dockerfile") && err.contains("services/b/Dockerfile"),
            "{args:?}: {err}"
        );
    }
    // Without the cycle, the same configuration needs the engine (which is not there).
    two_builds(&env, "me/b:1", "scratch");
    let out = env.dstart(&["build", "a"]).output();
    out.expect_code(1);
}

#[test]
fn dstart_build_refuses_bad_input_before_the_engine() {
    let env = Env::empty();
    two_builds(&env, "me/b:1", "scratch");
    let err = env.dstart(&["build", "nope"]).fails();
    assert!(err.contains("nope"), "{err}");
    let err = env.dstart(&["build", "--pull", "sometimes"]).fails();
    assert!(err.contains("sometimes"), "{err}");
    // A Dockerfile template error names the template's file and line before anything runs.
    env.write(
        "conf/services/b/Dockerfile.tera",
        "FROM scratch\nLABEL a={{ nope }}\n",
    );
    std::fs::remove_file(env.conf().join("services/b/Dockerfile")).unwrap();
    for args in [&["build", "b"][..], &["run", "b/start"]] {
        let err = env.dstart(args).fails();
        assert!(
            err.contains("services/b/Dockerfile.tera:2"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_broken_unit_that_is_not_asked_for_does_not_stop_a_build() {
    let env = Env::empty();
    two_builds(&env, "scratch", "scratch");
    env.write(
        "conf/services/b/Dockerfile.tera",
        "FROM scratch\nLABEL a={{ nope }}\n",
    );
    std::fs::remove_file(env.conf().join("services/b/Dockerfile")).unwrap();
    // `a` alone: b's template error is no concern of it; the run goes on to the engine
    // (which is not there: exit 1, not 2).
    let out = env.dstart(&["-d", "build", "a"]).output();
    out.expect_code(1);
    assert!(
        out.stdout
            .contains("Not looking at a build of b/start for build chains"),
        "{}",
        out.stdout
    );
    // Without units, b is asked for.
    let err = env.dstart(&["build"]).fails();
    assert!(err.contains("services/b/Dockerfile.tera:2"), "{err}");
}
