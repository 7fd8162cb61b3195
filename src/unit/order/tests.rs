//! Orders of every kind read from YAML, with their defaults, checks and errors.

use super::*;
use std::sync::Arc;

use crate::config::source::{PathSeg, Source};
use crate::error::ConfigError;

fn steps(yaml: &str) -> Result<Vec<Step>, ConfigError> {
    let text = format!("{{}}\n---\n{yaml}");
    let source = Arc::new(Source::new("units/t/start.yaml", text));
    let docs = source.documents().unwrap();
    let seq = docs[1].as_sequence().unwrap().clone();
    seq.iter()
        .enumerate()
        .map(|(i, item)| {
            step_from_value(
                item,
                &Origin::new(Arc::clone(&source), 1, vec![PathSeg::Index(i)]),
            )
        })
        .collect()
}

fn one(yaml: &str) -> Order {
    match steps(yaml).unwrap().remove(0) {
        Step::Order(o) => *o,
        Step::Parallel { .. } => panic!("parallel"),
    }
}

#[test]
fn start_defaults_and_arguments() {
    let o = one("- web: {command: start}\n");
    assert_eq!(
        o.action,
        Action::Start(StartArgs {
            restart: false,
            attach: false,
            timeout: None,
            ready: None,
            recreate: Recreate::Auto
        })
    );
    let o = one(
        "- web: {command: start, restart: true, timeout: 0, wait: 2, recreate: never, ready: {http: 'http://x/', status: 204}}\n",
    );
    let Action::Start(s) = &o.action else {
        panic!()
    };
    assert!(s.restart);
    assert_eq!(s.recreate, Recreate::Never);
    assert!((o.wait.get() - 2.0).abs() < f64::EPSILON);
    assert!(matches!(&s.ready, Some(Ready::Http { status: 204, .. })));
    let o = one("- web: {command: start, ready: healthy}\n");
    let Action::Start(s) = &o.action else {
        panic!()
    };
    assert!(matches!(s.ready, Some(Ready::Healthy { .. })));
}

#[test]
fn unknown_argument_lists_accepted_keys() {
    let err = steps("- web: {command: start, restrat: true}\n").unwrap_err();
    let ConfigError::Invalid {
        location,
        message,
        hint,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(location.to_string(), "units/t/start.yaml:3:25");
    assert!(
        message.ends_with("`restrat`: unknown key `restrat`"),
        "{message}"
    );
    let hint = hint.clone().unwrap();
    assert!(
        hint.contains("`restart`") && hint.contains("`wait`"),
        "{hint}"
    );
}

#[test]
fn every_order_accepts_timeout() {
    for order in [
        "{command: build, timeout: 5}",
        "{command: create, timeout: 5}",
        "{command: remove_image, timeout: 5}",
        "{command: execute, run: ls, timeout: 5}",
        "{command: tag, repository: r, timeout: 5}",
        "{command: commit, repository: r, timeout: 5}",
        "{command: push, timeout: 5}",
    ] {
        let o = one(&format!("- web: {order}\n"));
        // Printed back as written.
        assert!(o.raw.contains_key("timeout"), "{order}");
    }
    let o = one("- host: {command: unit, unit: a/start, timeout: 5}\n");
    assert!(matches!(o.action, Action::Unit(_)));
    let Action::Backup(b) = one("- web: {command: backup, stop: true, timeout: 3}\n").action else {
        panic!()
    };
    assert_eq!(b.timeout, Some(3));
    let Action::Restore(r) = one("- web: {command: restore, timeout: 3}\n").action else {
        panic!()
    };
    assert_eq!(r.timeout, Some(3));
    let Action::Stop(s) = one("- web: {command: stop}\n").action else {
        panic!()
    };
    assert_eq!(s.timeout, None);
}

#[test]
fn an_unused_timeout_is_still_checked() {
    let err = steps("- web: {command: create, timeout: soon}\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "units/t/start.yaml:3:26: order `create` on `web`: `timeout`: expected a whole number, 0 or more, found `soon`"
    );
    let err = steps("- web: {command: create, timout: 5}\n").unwrap_err();
    assert_eq!(
        err.hint().unwrap(),
        "`create` accepts `timeout`, `wait`, `variants`"
    );
}

#[test]
fn unknown_command_and_missing_command() {
    let err = steps("- web: {command: strat}\n").unwrap_err().to_string();
    assert!(err.contains("unknown order `strat` on `web`"), "{err}");
    let err = steps("- web: {restart: true}\n").unwrap_err().to_string();
    assert!(err.contains("has no `command`"), "{err}");
    let err = steps("- web: {command: start}\n  db: {command: start}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("names 2"), "{err}");
}

#[test]
fn execute_forms_and_host() {
    let o = one("- host: {command: execute, run: 'echo hi'}\n");
    let Action::Execute(e) = &o.action else {
        panic!()
    };
    assert_eq!(e.run, RunCommand::Shell(vec!["echo hi".into()]));
    assert_eq!(e.exec_type, Some(ExecType::Host));
    let o = one("- web: {command: execute, run: [ls, /], type: in_running}\n");
    let Action::Execute(e) = &o.action else {
        panic!()
    };
    assert_eq!(e.run, RunCommand::Argv(vec!["ls".into(), "/".into()]));
    let err = steps("- host: {command: start}\n").unwrap_err().to_string();
    assert!(err.contains("cannot run on `host`"), "{err}");
}

#[test]
fn backup_checks() {
    let err = steps("- web: {command: backup, keep: 3}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`timestamp` is not set"), "{err}");
    let err = steps("- web: {command: backup, compression: lz4}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("lz4"), "{err}");
    let o = one(
        "- web: {command: backup, timestamp: true, keep: 3, compression: zstd, variants: [nightly]}\n",
    );
    assert_eq!(o.variants, vec!["nightly".to_string()]);
    assert!(!o.raw.contains_key("variants"));
}

#[test]
fn parallel_blocks() {
    let s = steps("- parallel:\n  - a: {command: start}\n  - b: {command: start}\n- parallel: {max: 2, orders: [{c: {command: stop}}]}\n").unwrap();
    assert!(
        matches!(&s[0], Step::Parallel { max: DEFAULT_PARALLEL, orders, .. } if orders.len() == 2)
    );
    assert!(matches!(
        &s[1],
        Step::Parallel {
            max: 2,
            max_given: true,
            ..
        }
    ));
    let printed = serde_yaml_ng::to_string(&steps_to_value(&s)).unwrap();
    assert!(printed.contains("max: 2"), "{printed}");
    let err = steps("- parallel: {orders: [], limit: 2}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown key `limit`"), "{err}");
}

#[test]
fn tests_and_upgrade_orders_run_on_host() {
    let Action::Tests(t) =
        one("- host: {command: tests, tests: [\"web/test:check\", \"db/test --size big\"]}\n")
            .action
    else {
        panic!()
    };
    let shown: Vec<String> = t.tests.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["web/test:check", "db/test --size big"]);
    assert_eq!(t.tests[1].command, "db/test");
    assert_eq!(t.tests[1].args, ["--size", "big"]);
    let Action::Upgrade(u) = one("- host: {command: upgrade, unit: db}\n").action else {
        panic!()
    };
    assert_eq!(u.unit, "db");
    // (order, error)
    let cases = [
        (
            "- host: {command: tests, tests: [web/start]}\n",
            "units/t/start.yaml:3:34: `web/start` is not a test run",
        ),
        (
            "- host: {command: tests, tests: []}\n",
            "units/t/start.yaml:3:26: `tests` lists no test run",
        ),
        (
            "- web: {command: tests, tests: [web/test]}\n",
            "units/t/start.yaml:3:9: `tests` runs on `host`, not on `web`",
        ),
        (
            "- web: {command: upgrade, unit: web}\n",
            "units/t/start.yaml:3:9: `upgrade` runs on `host`, not on `web`",
        ),
        (
            "- host: {command: upgrade, unit: 'web:x'}\n",
            "units/t/start.yaml:3:28: `unit: web:x` is not a unit name",
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(steps(yaml).unwrap_err().to_string(), expected, "{yaml}");
    }
}
