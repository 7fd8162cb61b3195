//! The plan of a unit with every kind of reference, as each variant sees it.

#![allow(clippy::many_single_char_names)]

use super::*;
use crate::config::environment::Environment;
use crate::config::loader::UnitCommand;
use crate::unit::container::MountSpec;

/// A resolved unit from a unit file's text, as `UNIT/test[:tokens]` would see it.
pub(super) fn unit(command: &str, text: &str) -> Unit {
    let (containers, steps) = crate::unit::typed_for_tests(text);
    let command = UnitCommand::parse(command).unwrap();
    let builtins: Vec<String> = command
        .tokens
        .iter()
        .filter(|t| crate::config::loader::TEST_VARIANTS.contains(&t.as_str()))
        .cloned()
        .collect();
    let custom: Vec<String> = command
        .tokens
        .iter()
        .filter(|t| !builtins.contains(t))
        .cloned()
        .collect();
    let naming = crate::unit::naming::Naming::plain(&command.unit);
    Unit {
        command,
        containers,
        steps,
        environment: Environment::default(),
        active: std::collections::BTreeSet::new(),
        test_variants: builtins,
        custom_tests: custom,
        purge_test_data: None,
        nested: Vec::new(),
        naming,
    }
}

const UNIT: &str = r#"
data:
  build: {path: data, tag: "me/data"}
  creation: {volumes: [/data], tty: true}
db:
  image: busybox
  volumes: ["dbvol:/var/lib/db:ro", "/cache"]
  ports: ["127.0.0.1:5432:5432", "6379", "8080:80/udp"]
web:
  build: {path: web, tag: "me/web:1.0"}
  startup:
    volumes_from: ["data:ro", db]
    links: {db: null, data: d}
    port_bindings: {443: 8443, 444: "127.0.0.1:9443"}
  daemon:
    - GET: {url: "http://127.0.0.1:[[port 80]](web)/x?h=[[ip]](db)", status: 200}
  jobs:
    migrate: {args: [migrate, --all], exit_code: 0}
  tests:
    unit:
      execute: make test
      overwrites: {volumes_from: db}
      extra: {binds: {/up: {bind: /uploads, ro: false}}, env: {A: "1"}}
      files: [out/]
side:
  image: busybox
  startup: {network_mode: "container:web", links: ["db", "data:alias", [web]]}
  job: {exit_code: 0, logs: [{re.match: ok}]}
user:
  image: me/web:1.0
---
- data: {command: create}
- db: {command: start}
- web: {command: start, ready: {http: "http://[[ip]](web):80/", status: 200}}
- side: {command: start, attach: true}
- host: {command: execute, run: ["echo", "[[.Id]](db)"]}
- db: {command: stop}
- host: {command: unit, unit: other/start}
"#;

#[test]
fn renaming_rewrites_every_reference() {
    let u = unit("u/test:check", UNIT);
    let t = tempid("u/test:check");
    let p = plan(&u, false).unwrap();
    let n = |k: &str| format!("{k}_{t}");
    assert_eq!(
        p.unit.containers.keys().cloned().collect::<Vec<_>>(),
        ["data", "db", "web", "side", "user"].map(n)
    );
    let web = &p.unit.containers[&n("web")].spec;
    assert_eq!(
        web.host.volumes_from,
        vec![format!("{}:ro", n("data")), n("db")]
    );
    assert_eq!(
        web.host.links,
        vec![(n("db"), "db".to_string()), (n("data"), "d".to_string())]
    );
    assert_eq!(
        web.image.as_deref(),
        Some("me/web:1.0"),
        "images keep their names"
    );
    assert!(
        web.ports.iter().all(|p| p.host_port.is_none()),
        "{:?}",
        web.ports
    );
    assert_eq!(web.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
    let daemon = &web.tests.daemon.as_ref().unwrap().checks[0].2;
    assert_eq!(
        daemon.url.as_str(),
        format!(
            "http://127.0.0.1:[[port 80]]({})/x?h=[[ip]]({})",
            n("web"),
            n("db")
        )
    );
    let side = &p.unit.containers[&n("side")].spec;
    assert_eq!(
        side.host.network_mode.as_deref(),
        Some(format!("container:{}", n("web")).as_str())
    );
    assert_eq!(
        side.host.links,
        vec![
            (n("db"), "db".to_string()),
            (n("data"), "alias".to_string()),
            (n("web"), "web".to_string())
        ]
    );
    let db = &p.unit.containers[&n("db")].spec;
    assert_eq!(
        db.mounts[0],
        MountSpec::Named {
            name: n("dbvol"),
            container: "/var/lib/db".into(),
            read_only: true
        }
    );
    assert_eq!(
        db.mounts[1],
        MountSpec::Anonymous {
            container: "/cache".into()
        }
    );
    let ports: Vec<(Option<String>, Option<u16>, u16)> = db
        .ports
        .iter()
        .map(|p| (p.host_ip.clone(), p.host_port, p.container_port))
        .collect();
    assert_eq!(
        ports,
        vec![
            (Some("127.0.0.1".into()), None, 5432),
            (None, None, 6379),
            (None, None, 80)
        ]
    );
    assert_eq!(db.ports[2].protocol, "udp");
    let data = &p.unit.containers[&n("data")];
    assert!(!data.spec.tty);
    assert_eq!(
        data.raw.get("creation").and_then(|c| c.get("tty")),
        None,
        "the printed copy has no terminal either"
    );

    // Orders: containers and placeholders.
    let setup: Vec<String> = p.setup.cases.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        setup,
        [
            "data:create",
            "db:start",
            "web:start",
            "side:start",
            "host:execute"
        ]
    );
    assert_eq!(p.setup.cases[2].order.container, n("web"));
    let Action::Start(s) = &p.setup.cases[2].order.action else {
        panic!()
    };
    assert!(
        matches!(&s.ready, Some(crate::unit::order::Ready::Http { url, .. }) if *url == format!("http://[[ip]]({}):80/", n("web")))
    );
    let Action::Execute(e) = &p.setup.cases[4].order.action else {
        panic!()
    };
    assert_eq!(
        e.run,
        crate::unit::order::RunCommand::Argv(vec!["echo".into(), format!("[[.Id]]({})", n("db"))])
    );
    assert_eq!(p.skipped.len(), 1, "the `unit` order is not run by tests");
    assert_eq!(p.unit.naming.unit_label, format!("u_{t}"));
    assert_eq!(p.unit.naming.network, format!("dstart-u_{t}"));
    assert_eq!(p.unit.naming.display(&n("web")), "web");
}

#[test]
fn full_renames_built_images_and_their_users() {
    let u = unit("u/test:full", UNIT);
    let t = tempid("u/test:full");
    let p = plan(&u, false).unwrap();
    let spec = |k: &str| &p.unit.containers[&format!("{k}_{t}")].spec;
    assert_eq!(
        spec("web").image.as_deref(),
        Some(format!("me/web:1.0_{t}").as_str())
    );
    assert_eq!(
        spec("data").image.as_deref(),
        Some(format!("me/data:latest_{t}").as_str())
    );
    assert_eq!(
        spec("user").image.as_deref(),
        Some(format!("me/web:1.0_{t}").as_str()),
        "a container using a built image follows its pseudo tag"
    );
    assert_eq!(
        spec("db").image.as_deref(),
        Some("busybox"),
        "pulled images stay"
    );
    let removed: Vec<String> = p
        .teardown
        .cases
        .iter()
        .filter(|c| c.order.action.kind() == "remove_image")
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(removed, ["web:remove_image", "data:remove_image"]);
}

#[test]
fn production_renames_nothing_and_has_no_lifecycle() {
    let u = unit("u/test:production", UNIT);
    let p = plan(&u, false).unwrap();
    assert!(p.unit.containers.contains_key("web"));
    assert!(p.setup.cases.is_empty() && p.stop.cases.is_empty() && p.teardown.cases.is_empty());
    assert_eq!(p.daemon.len(), 1);
    assert_eq!(p.unit.naming, crate::unit::naming::Naming::plain("u"));
    let JobKind::Run { spec, .. } = &p.jobs[0].cases[0].kind else {
        panic!()
    };
    assert_eq!(spec.name, format!("web_migrate_{}", p.tempid));
    assert_eq!(
        spec.host.volumes_from,
        vec!["data:ro".to_string(), "db".to_string()]
    );
}

#[test]
fn suites_follow_the_variants() {
    let p = plan(&unit("u/test", UNIT), false).unwrap();
    assert!(p.daemon.is_empty() && p.jobs.is_empty() && p.custom.is_empty());
    assert_eq!(p.setup.name, "u/test");

    let p = plan(&unit("u/test:check:unit", UNIT), false).unwrap();
    let t = &p.tempid;
    assert_eq!(p.daemon[0].name, "web_daemon");
    assert_eq!(
        p.daemon[0].cases[0].name,
        "0:GET http://127.0.0.1:[[port 80]](web)/x?h=[[ip]](db)"
    );
    let jobs: Vec<(String, Vec<String>)> = p
        .jobs
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.cases.iter().map(|c| c.name.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        vec![
            ("web_jobs".to_string(), vec!["web:migrate".to_string()]),
            ("side_jobs".to_string(), vec!["side:job".to_string()])
        ]
    );
    let JobKind::Run { spec, .. } = &p.jobs[0].cases[0].kind else {
        panic!()
    };
    assert_eq!(spec.name, format!("web_migrate_{t}"));
    assert_eq!(spec.command.as_ref().unwrap(), &["migrate", "--all"]);
    assert!(spec.ports.is_empty());

    let custom = &p.custom[0];
    assert_eq!(
        (custom.name.as_str(), custom.classname.as_str()),
        ("web_unit", "unit")
    );
    let case = &custom.cases[0];
    assert_eq!(case.container, format!("web_{t}"));
    assert_eq!(case.temporary.name, format!("web_unit_{t}"));
    assert_eq!(
        case.temporary.host.volumes_from,
        vec![format!("db_{t}")],
        "overwrites replace, with references renamed"
    );
    assert_eq!(case.temporary.env, vec![("A".to_string(), "1".to_string())]);
    assert!(
        case.temporary
            .mounts
            .iter()
            .any(|m| matches!(m, MountSpec::Bind { container, .. } if container == "/uploads"))
    );
}

#[test]
fn teardown_only_touches_the_tempid() {
    let u = unit("u/test", UNIT);
    let p = plan(&u, false).unwrap();
    let t = &p.tempid;
    let names: Vec<String> = p.teardown.cases.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        ["side:remove", "web:remove", "db:remove", "data:remove"],
        "default keeps the images"
    );
    assert!(
        p.teardown
            .cases
            .iter()
            .all(|c| c.order.container.ends_with(&format!("_{t}")))
    );
    assert_eq!(p.stop.cases.len(), 3);

    // The filter itself: production names and production images never pass.
    let plain = plan(&unit("u/test:production", UNIT), false).unwrap();
    let purge = commands::generate(
        "purge",
        "u",
        &plain.unit.steps,
        &plain.unit.containers,
        &Environment::default(),
    )
    .unwrap();
    let orders: Vec<Order> = purge.iter().flat_map(Step::orders).cloned().collect();
    assert_eq!(orders.len(), 9);
    assert!(safe_teardown(orders.clone(), t, &plain.unit.containers).is_empty());
    let full = plan(&unit("u/test:full", UNIT), false).unwrap();
    let renamed_purge = commands::generate(
        "purge",
        "u",
        &full.unit.steps,
        &full.unit.containers,
        &Environment::default(),
    )
    .unwrap();
    let kept = safe_teardown(
        renamed_purge
            .iter()
            .flat_map(Step::orders)
            .cloned()
            .collect(),
        &full.tempid,
        &full.unit.containers,
    );
    assert_eq!(kept.len(), 9, "everything of a full run carries the tempid");
    assert_eq!(
        full.teardown.cases.len(),
        6,
        "4 removes and 2 images, no stops"
    );
    let default = plan(&unit("u/test", UNIT), false).unwrap();
    let renamed_purge = commands::generate(
        "purge",
        "u",
        &default.unit.steps,
        &default.unit.containers,
        &Environment::default(),
    )
    .unwrap();
    let kept = safe_teardown(
        renamed_purge
            .iter()
            .flat_map(Step::orders)
            .cloned()
            .collect(),
        &default.tempid,
        &default.unit.containers,
    );
    assert_eq!(kept.len(), 7, "images without a pseudo tag are not removed");
}

#[test]
fn plan_prints_as_three_documents() {
    let p = plan(&unit("u/test:check", UNIT), false).unwrap();
    let text = p.to_yaml();
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(docs.len(), 3, "{text}");
    assert!(docs[0].contains(&format!("web_{}:", p.tempid)), "{text}");
    assert!(docs[1].contains(&format!("- web_{}:", p.tempid)), "{text}");
    assert!(docs[2].contains("suite: web_daemon"), "{text}");
    assert!(docs[2].contains("answers 200"), "{text}");
}

#[test]
fn production_false_checks_are_skipped_only_against_the_live_unit() {
    for (production_run, check_production, skipped) in [
        (true, false, true),
        (true, true, false),
        (false, false, false),
        (false, true, false),
    ] {
        assert_eq!(
            skip_reason(production_run, check_production).is_some(),
            skipped,
            "{production_run} {check_production}"
        );
    }
    let text = r#"
web:
  image: me/web
  daemon:
    - POST: {url: "http://x/", production: false}
    - GET: {url: "http://x/"}
  job: {production: false}
  jobs:
    write: {args: [w], production: false}
    read: {args: [r]}
---
- web: {command: start}
"#;
    for (command, flag, skips) in [
        ("u/test:production", false, [true, false, true, true, false]),
        ("u/test:check", true, [true, false, true, true, false]),
        ("u/test:check", false, [false; 5]),
    ] {
        let p = plan(&unit(command, text), flag).unwrap();
        let got: Vec<bool> = p.daemon[0]
            .cases
            .iter()
            .map(|c| c.skip.is_some())
            .chain(p.jobs[0].cases.iter().map(|c| c.skip.is_some()))
            .collect();
        assert_eq!(got, skips, "{command} --production={flag}");
    }
    let printed = plan(&unit("u/test:production", text), false)
        .unwrap()
        .to_yaml();
    assert!(
        printed.contains(
            "- 0:POST http://x/: 'skipped (`production: false`: not run against the live unit)'"
        ),
        "{printed}"
    );
}

#[test]
fn every_unit_has_its_own_test_data_container_unless_one_is_named() {
    let env = |named: Option<&str>| {
        let mut e = Environment::default();
        if let Some(n) = named {
            e.set("TEST_DATA_CONTAINER", serde_json::Value::String(n.into()));
        }
        e
    };
    for (unit, named, name, own) in [
        ("web", None, "web_test_data", Some("web_test_data")),
        ("db", None, "db_test_data", Some("db_test_data")),
        ("web", Some(""), "web_test_data", Some("web_test_data")),
        ("web", Some("shared"), "shared", None),
    ] {
        let e = env(named);
        assert_eq!(test_data_name(unit, &e), name, "{unit} {named:?}");
        assert_eq!(own_test_data(unit, &e).as_deref(), own, "{unit} {named:?}");
    }
}
