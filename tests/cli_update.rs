//! `update` and `upgrade` without an engine (seed 003 "Updates"): which units get a generated
//! `upgrade`, what it prints, and the checks of `tests` and `upgrade` orders before any order
//! runs (exit 2 with file and line).

#[allow(dead_code)]
mod common;

use common::Env;

/// Units `web` (with an `update` that runs the tests) and `db`; `tools` has no `start`.
fn units() -> Env {
    let env = Env::empty();
    env.unit(
        "web/start.yaml",
        "web: {image: busybox}\n---\n- web: {command: start, ready: {log: up}}\n",
    )
    .unit(
        "web/update.yaml",
        "web: {image: busybox}\n---\n- host: {command: tests, tests: [web/test:check, db/test]}\n- web: {command: tag, repository: busybox, tag: latest}\n",
    )
    .unit("db/start.yaml", "db: {image: busybox}\n---\n- db: {command: start}\n")
    .unit(
        "tools/clean.yaml",
        "{}\n---\n- host: {command: execute, run: 'true'}\n",
    );
    env
}

#[test]
fn upgrade_is_generated_for_units_with_an_update_only() {
    let env = units();
    let list = env.dstart(&["list"]).ok();
    assert!(list.contains("web/update\nweb/upgrade\n"), "{list}");
    assert!(!list.contains("db/upgrade"), "{list}");
    env.dstart(&["run", "--print-unit", "db/upgrade"])
        .output()
        .config_error();
}

#[test]
fn printed_upgrade_goes_through_every_unit_with_a_start() {
    let env = units();
    let printed = env.dstart(&["run", "--print-unit", "web/upgrade"]).ok();
    assert_eq!(
        printed,
        "web:\n  image: busybox\n  stop_timeout: 10\n---\n- host:\n    command: upgrade\n    unit: db\n- host:\n    command: upgrade\n    unit: web\n"
    );
}

#[test]
fn a_test_run_that_cannot_load_stops_the_update_before_any_order() {
    let env = units();
    // A variant that does not exist: nothing runs, the error names the entry's line.
    env.unit(
        "web/update.yaml",
        "web: {image: busybox}\n---\n- host: {command: execute, run: 'touch ran'}\n- host: {command: tests, tests: [web/test:check, db/test:nosuch]}\n",
    );
    let err = env.dstart(&["run", "web/update"]).output().config_error();
    assert!(
        err.starts_with("error: conf/units/web/update.yaml:4:50: the `tests` order runs `db/test:nosuch`, which cannot run\n"),
        "{err}"
    );
    assert!(err.contains("nosuch"), "{err}");
    assert!(!env.root().join("ran").exists(), "no order ran");
    // Not a test run at all.
    env.unit(
        "web/update.yaml",
        "web: {image: busybox}\n---\n- host: {command: tests, tests: [db/start]}\n",
    );
    let err = env.dstart(&["run", "web/update"]).output().config_error();
    assert!(err.contains("update.yaml:3:"), "{err}");
    assert!(err.contains("`db/start` is not a test run"), "{err}");
}

#[test]
fn an_upgrade_of_a_unit_without_start_is_a_configuration_error() {
    let env = units();
    env.unit(
        "web/upgrade.yaml",
        "{}\n---\n- host: {command: upgrade, unit: tools}\n",
    );
    let err = env.dstart(&["run", "web/upgrade"]).output().config_error();
    assert!(
        err.starts_with("error: conf/units/web/upgrade.yaml:3:28: the `upgrade` order runs `tools`, which cannot run\n"),
        "{err}"
    );
}
