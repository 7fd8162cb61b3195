//! `run --print-unit UNIT/test[:...]` needs no engine: the plan of a test run (pseudonames,
//! suites, teardown) is printed from the configuration alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dstart::generate::testplan::tempid;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of `conf-example` in a temp dir.
fn example() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("conf-example"),
        &conf,
    );
    (tmp, conf)
}

fn dstart(conf: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dstart"))
        .arg("-c")
        .arg(conf)
        .args(args)
        .env_remove("DOCKERSTRA_CONF")
        // No engine: a printed plan must not need one.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .current_dir(conf)
        .output()
        .unwrap()
}

fn ok(conf: &Path, args: &[&str]) -> String {
    let out = dstart(conf, args);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn printed_test_plan_of_the_example() {
    let (_tmp, conf) = example();
    let printed = ok(&conf, &["run", "--print-unit", "web/test:check"]);
    let printed = printed.replace(&conf.display().to_string(), "<CONF>");
    insta::assert_snapshot!(printed);
}

#[test]
fn tempid_is_a_template_variable_of_test_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path();
    std::fs::create_dir_all(conf.join("environments")).unwrap();
    std::fs::create_dir_all(conf.join("units/u")).unwrap();
    std::fs::write(
        conf.join("units/u/start.yaml"),
        "app:\n  image: busybox\n  env: {RUN_ID: \"{{ tempid | default(value='none') }}\"}\n---\n- app: {command: start}\n",
    )
    .unwrap();
    let t = tempid("u/test:check");
    let printed = ok(conf, &["run", "--print-unit", "u/test:check"]);
    assert!(printed.contains(&format!("RUN_ID: {t}")), "{printed}");
    assert!(printed.contains(&format!("app_{t}:")), "{printed}");
    let plain = ok(conf, &["run", "--print-unit", "u/start"]);
    assert!(plain.contains("RUN_ID: none"), "{plain}");
}

#[test]
fn production_is_only_for_tests_and_not_with_full() {
    let (_tmp, conf) = example();
    let out = dstart(&conf, &["run", "--production", "web/start"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--production applies to test runs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dstart(&conf, &["run", "--junit", "r.xml", "web/start"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--junit applies to test runs (`UNIT/test`), not to `web/start`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dstart(&conf, &["run", "--print-unit", "web/test:production:full"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be combined with `full`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dstart(&conf, &["run", "--print-unit", "web/test:nosuchvariant"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn order_variants_filter_the_setup_of_a_test() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path();
    std::fs::create_dir_all(conf.join("environments")).unwrap();
    std::fs::create_dir_all(conf.join("units/u")).unwrap();
    std::fs::write(
        conf.join("units/u/start.yaml"),
        "db:\n  image: busybox\nweb:\n  image: busybox\nextra:\n  image: busybox\n---\n- db: {command: start}\n- web: {command: start, variants: [minimal, full_stack]}\n- extra: {command: start, variants: [full_stack]}\n",
    )
    .unwrap();
    let t = tempid("u/test:check:minimal");
    let printed = ok(conf, &["run", "--print-unit", "u/test:check:minimal"]);
    let setup = printed.split("---\n").nth(1).unwrap();
    assert!(setup.contains(&format!("- db_{t}:")), "{printed}");
    assert!(setup.contains(&format!("- web_{t}:")), "{printed}");
    assert!(!setup.contains("extra_"), "{printed}");
    assert!(printed.contains("variant: check"), "{printed}");
}
