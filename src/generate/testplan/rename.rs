//! Pseudonames (ORIGINAL §6.2): a test copy's containers, volumes and built images renamed with
//! the tempid, and every reference to them rewritten to match, field by field on the typed unit
//! ([`rename_spec`], [`rename_order`]); the copy's [`Naming`] ([`Renames::naming`]).

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_yaml_ng::{Mapping, Value};

use crate::unit::container::{
    ContainerSpec, MountSpec, StringOrList, split_image, strip_mode, with_default_tag,
};
use crate::unit::naming::{Naming, network_name};
use crate::unit::order::{Action, HOST, Order, Ready, RunCommand, Step};
use crate::unit::{Container, Unit};

/// What a test run calls things on the engine.
#[derive(Debug, Clone, Default)]
pub struct Renames {
    pub tempid: String,
    /// Container key → container name.
    pub containers: IndexMap<String, String>,
    /// Named volume → volume name.
    pub volumes: IndexMap<String, String>,
    /// Built image (with its tag) → pseudo-tagged image (`full` only).
    pub images: IndexMap<String, String>,
}

impl Renames {
    /// No renaming (production).
    pub fn identity(tempid: &str) -> Self {
        Renames {
            tempid: tempid.to_string(),
            ..Renames::default()
        }
    }

    /// The pseudonames of `unit`'s containers and named volumes (and built images for `full`).
    pub fn new(unit: &Unit, tempid: &str, full: bool) -> Self {
        let mut r = Renames::identity(tempid);
        for (key, c) in &unit.containers {
            r.containers.insert(key.clone(), r.pseudo(key));
            for m in &c.spec.mounts {
                if let MountSpec::Named { name, .. } = m {
                    r.volumes.insert(name.clone(), r.pseudo(name));
                }
            }
            if full {
                if let Some(tag) = c.spec.build.as_ref().and_then(|b| b.tag.as_deref()) {
                    r.images
                        .insert(with_default_tag(tag), pseudo_image(tag, tempid));
                }
            }
        }
        r
    }

    fn suffix(&self) -> String {
        format!("_{}", self.tempid)
    }

    /// `name_<tempid>`, unless `name` already ends with it.
    fn pseudo(&self, name: &str) -> String {
        if name.ends_with(&self.suffix()) {
            name.to_string()
        } else {
            format!("{name}{}", self.suffix())
        }
    }

    /// What the test copy of `unit` is called on the engine: `<unit>_<tempid>` as its label and
    /// in its network's name, each container answering to its key, the built images' pseudo
    /// tags.
    pub fn naming(&self, unit: &str) -> Naming {
        let label = format!("{unit}_{}", self.tempid);
        Naming {
            network: network_name(&label),
            unit_label: label,
            display: self
                .containers
                .iter()
                .map(|(key, name)| (name.clone(), key.clone()))
                .collect(),
            images: self
                .images
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The engine name of container `key`.
    pub fn container<'a>(&'a self, key: &'a str) -> &'a str {
        self.containers.get(key).map_or(key, String::as_str)
    }
}

/// `repo:tag` → `repo:tag_<tempid>` (`repo` → `repo:latest_<tempid>`): the tag carries the
/// tempid, so the teardown's image rule ("the tag ends with the tempid") holds.
pub fn pseudo_image(image: &str, tempid: &str) -> String {
    let (repo, tag) = split_image(image);
    if tag.ends_with(tempid) {
        format!("{repo}:{tag}")
    } else {
        format!("{repo}:{tag}_{tempid}")
    }
}

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[([^\]]+)\]\]\(([^)]*)\)").expect("valid regex"));

impl Renames {
    /// `text` with `[[...]](K)` rewritten to `[[...]](K_<tempid>)`.
    pub fn placeholders(&self, text: &str) -> String {
        if !text.contains("[[") {
            return text.to_string();
        }
        PLACEHOLDER
            .replace_all(text, |caps: &regex::Captures<'_>| {
                format!("[[{}]]({})", &caps[1], self.container(&caps[2]))
            })
            .into_owned()
    }

    fn placeholders_in(&self, list: &mut [String]) {
        for s in list {
            *s = self.placeholders(s);
        }
    }

    /// `web:ro` → `web_<tempid>:ro`.
    fn volumes_from(&self, item: &str) -> String {
        let base = strip_mode(item);
        let mode = &item[base.len()..];
        format!("{}{mode}", self.container(base))
    }

    /// A built image (`full`): its pseudo-tagged name, else the image itself.
    fn image(&self, image: &str) -> String {
        self.images
            .get(&with_default_tag(image))
            .cloned()
            .unwrap_or_else(|| image.to_string())
    }
}

/// The test copy of a container: every field of the typed spec that names a container, a
/// volume, a network or a built image, rewritten to its pseudoname; fixed host ports made
/// ephemeral (a copy runs beside production) and no terminal (ORIGINAL §6.3). This is the one
/// place that knows which fields name things: the copy runs what it returns.
pub fn rename_spec(spec: &mut ContainerSpec, r: &Renames) {
    spec.name = r.container(&spec.name).to_string();
    let host = &mut spec.host;
    for v in &mut host.volumes_from {
        *v = r.volumes_from(v);
    }
    // The alias stays the key the other container knows it by.
    for (name, _alias) in &mut host.links {
        *name = r.container(name).to_string();
    }
    if let Some(mode) = &mut host.network_mode {
        if let Some(other) = mode.strip_prefix("container:") {
            *mode = format!("container:{}", r.container(other));
        }
    }
    for m in &mut spec.mounts {
        if let MountSpec::Named { name, .. } = m {
            if let Some(new) = r.volumes.get(name.as_str()) {
                name.clone_from(new);
            }
        }
    }
    for p in &mut spec.ports {
        if !p.is_expose_only() {
            p.host_port = None;
        }
    }
    if let Some(image) = &mut spec.image {
        *image = r.image(image);
    }
    if let Some(tag) = spec.build.as_mut().and_then(|b| b.tag.as_mut()) {
        *tag = r.image(tag);
    }
    spec.tty = false;
    spec.stdin_open = false;
    // `[[...]](K)` is looked up where it is used: daemon URLs, `jobs:` arguments, custom tests.
    let tests = &mut spec.tests;
    if let Some(daemon) = &mut tests.daemon {
        for (_, _, check) in &mut daemon.checks {
            check.url = check.url.map_text(|u| r.placeholders(u));
        }
    }
    for run in tests.jobs.values_mut() {
        r.placeholders_in(&mut run.args);
    }
    for test in tests.tests.values_mut() {
        test.execute = match &test.execute {
            StringOrList::One(s) => StringOrList::One(r.placeholders(s)),
            StringOrList::Many(v) => {
                StringOrList::Many(v.iter().map(|s| r.placeholders(s)).collect())
            }
        };
    }
}

/// An order of the test copy: its container and every argument that names one (`[[...]](K)`
/// in `execute` commands and `ready` URLs), with the printed arguments to match.
pub fn rename_order(order: &mut Order, r: &Renames) {
    if order.container != HOST {
        order.container = r.container(&order.container).to_string();
    }
    let ready = match &mut order.action {
        Action::Start(s) => s.ready.as_mut(),
        Action::Backup(b) => b.ready.as_mut(),
        Action::Restore(b) => b.ready.as_mut(),
        Action::Execute(e) => {
            match &mut e.run {
                RunCommand::Argv(v) | RunCommand::Shell(v) => r.placeholders_in(v),
            }
            for (_, value) in &mut e.env {
                *value = r.placeholders(value);
            }
            None
        }
        _ => None,
    };
    if let Some(Ready::Http { url, .. }) = ready {
        *url = r.placeholders(url);
    }
    // What `--print-unit` shows of the arguments follows (placeholders are text).
    rename_printed(&mut order.raw, r);
}

/// Rewrites `[[...]](K)` in every string of the printed arguments of an order.
fn rename_printed(map: &mut Mapping, r: &Renames) {
    fn walk(value: &mut Value, r: &Renames) {
        match value {
            Value::String(s) => *s = r.placeholders(s),
            Value::Sequence(items) => items.iter_mut().for_each(|v| walk(v, r)),
            Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| walk(v, r)),
            Value::Tagged(t) => walk(&mut t.value, r),
            _ => {}
        }
    }
    for (_, v) in map.iter_mut() {
        walk(v, r);
    }
}

fn rename_steps(steps: &mut [Step], r: &Renames) {
    for step in steps {
        match step {
            Step::Order(o) => rename_order(o, r),
            Step::Parallel { orders, .. } => orders.iter_mut().for_each(|o| rename_order(o, r)),
        }
    }
}

/// The unit under its pseudonames, renamed field by field on the typed unit ([`rename_spec`],
/// [`rename_order`]); what `--print-unit` shows of a container is printed from the renamed spec.
pub fn rename_unit(unit: &Unit, r: &Renames) -> Unit {
    let mut containers = IndexMap::new();
    for c in unit.containers.values() {
        let mut spec = c.spec.clone();
        rename_spec(&mut spec, r);
        let raw = printed_copy(&spec, &c.raw, r);
        containers.insert(
            spec.name.clone(),
            Container {
                spec,
                raw,
                origin: c.origin.clone(),
            },
        );
    }
    let mut steps = unit.steps.clone();
    rename_steps(&mut steps, r);
    Unit {
        containers,
        steps,
        naming: r.naming(&unit.command.unit),
        ..unit.clone()
    }
}

/// The printed form of a renamed container: its spec, and the test and backup sections as
/// written (they name containers only in `[[...]](K)`).
fn printed_copy(spec: &ContainerSpec, written: &Value, r: &Renames) -> Value {
    let mut out = crate::unit::container::spec_to_mapping(spec);
    if let Value::Mapping(w) = written {
        for key in ["daemon", "job", "jobs", "tests", "backup", "restore"] {
            if let Some(v) = w.get(key) {
                let mut m = Mapping::new();
                m.insert(key.into(), v.clone());
                rename_printed(&mut m, r);
                out.extend(m);
            }
        }
    }
    Value::Mapping(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789";

    fn n(key: &str) -> String {
        format!("{key}_{T}")
    }

    const UNIT: &str = r#"
db:
  image: busybox
  volumes: ["dbvol:/var/lib/db:ro", "/cache", "/srv/host:/host:ro"]
web:
  build: {path: web, tag: "me/web:1.0"}
  command: ["serve", "[[ip]](db)"]
  ports: ["127.0.0.1:8080:80", "9090:90/udp", "7070"]
  creation: {tty: true, stdin_open: true, ports: [81]}
  startup:
    volumes_from: ["db:ro", db]
    links: {db: null, other: alias}
  daemon:
    - GET: {url: "http://127.0.0.1:[[port 80]](web)/x?h=[[ip]](db)"}
  jobs:
    migrate: {args: [migrate, "--db=[[ip]](db)"]}
  tests:
    shell: {execute: "ping [[ip]](db)"}
    argv: {execute: [ping, "[[ip]](db)"]}
side:
  image: me/web:1.0
  startup: {network_mode: "container:web"}
other:
  image: busybox
  startup: {network_mode: host}
---
- web: {command: start, ready: {http: "http://[[ip]](web):80/"}}
- host: {command: execute, run: ["echo", "[[.Id]](db)"], env: {DB: "[[ip]](db)"}}
- db: {command: execute, run: "echo [[ip]](web)"}
- db: {command: backup}
- host: {command: unit, unit: other/start}
"#;

    fn renamed(key: &str) -> ContainerSpec {
        let u = crate::generate::testplan::tests::unit("u/test:full", UNIT);
        let r = Renames::new(&u, T, true);
        let mut spec = u.containers[key].spec.clone();
        rename_spec(&mut spec, &r);
        spec
    }

    #[test]
    fn rename_spec_rewrites_every_field_that_names_something() {
        let (web, db, side, other) = (
            renamed("web"),
            renamed("db"),
            renamed("side"),
            renamed("other"),
        );
        let daemon = &web.tests.daemon.as_ref().unwrap().checks[0].2;
        let ports: Vec<String> = web
            .ports
            .iter()
            .map(crate::unit::container::port_text)
            .collect();
        let mounts: Vec<String> = db
            .mounts
            .iter()
            .map(crate::unit::container::mount_text)
            .collect();
        let pseudo_web = format!("me/web:1.0_{T}");
        for (field, got, want) in [
            ("name", web.name.clone(), n("web")),
            (
                "volumes_from",
                web.host.volumes_from.join(" "),
                format!("{} {}", n("db") + ":ro", n("db")),
            ),
            (
                "links keep the written key as the alias",
                format!("{:?}", web.host.links),
                format!("{:?}", [(n("db"), "db"), (n("other"), "alias")]),
            ),
            (
                "network_mode container:",
                side.host.network_mode.clone().unwrap(),
                format!("container:{}", n("web")),
            ),
            (
                "network_mode host",
                other.host.network_mode.clone().unwrap(),
                "host".into(),
            ),
            (
                "named volumes; anonymous volumes and binds stay",
                mounts.join(" "),
                format!("{}:/var/lib/db:ro /cache /srv/host:/host:ro", n("dbvol")),
            ),
            (
                "fixed host ports become ephemeral, exposed ones stay",
                ports.join(" "),
                "127.0.0.1::80 90/udp 7070 81".into(),
            ),
            (
                "build.tag (full)",
                web.build.as_ref().unwrap().tag.clone().unwrap(),
                pseudo_web.clone(),
            ),
            (
                "image of the build",
                web.image.clone().unwrap(),
                pseudo_web.clone(),
            ),
            (
                "image built by another container",
                side.image.clone().unwrap(),
                pseudo_web,
            ),
            (
                "a pulled image stays",
                db.image.clone().unwrap(),
                "busybox".into(),
            ),
            (
                "tty and stdin_open",
                format!("{} {}", web.tty, web.stdin_open),
                "false false".into(),
            ),
            (
                "daemon URL",
                daemon.url.to_string(),
                format!(
                    "http://127.0.0.1:[[port 80]]({})/x?h=[[ip]]({})",
                    n("web"),
                    n("db")
                ),
            ),
            (
                "jobs args",
                web.tests.jobs["migrate"].args.join(" "),
                format!("migrate --db=[[ip]]({})", n("db")),
            ),
            (
                "custom test (shell)",
                web.tests.tests["shell"].execute.to_vec().join(" "),
                format!("ping [[ip]]({})", n("db")),
            ),
            (
                "custom test (argv)",
                web.tests.tests["argv"].execute.to_vec().join(" "),
                format!("ping [[ip]]({})", n("db")),
            ),
            (
                "the command is the container's own: placeholders there are not looked up",
                web.command.clone().unwrap().join(" "),
                "serve [[ip]](db)".into(),
            ),
        ] {
            assert_eq!(got, want, "{field}");
        }
    }

    #[test]
    fn rename_order_rewrites_containers_and_placeholders() {
        let u = crate::generate::testplan::tests::unit("u/test", UNIT);
        let r = Renames::new(&u, T, false);
        let mut orders: Vec<Order> = u.orders().cloned().collect();
        for o in &mut orders {
            rename_order(o, &r);
        }
        let printed =
            |o: &Order| serde_yaml_ng::to_string(&crate::unit::order::order_to_value(o)).unwrap();
        let Action::Start(start) = &orders[0].action else {
            panic!()
        };
        let Some(Ready::Http { url, .. }) = &start.ready else {
            panic!()
        };
        let Action::Execute(host) = &orders[1].action else {
            panic!()
        };
        let Action::Execute(db) = &orders[2].action else {
            panic!()
        };
        for (field, got, want) in [
            ("container", orders[0].container.clone(), n("web")),
            (
                "ready URL",
                url.clone(),
                format!("http://[[ip]]({}):80/", n("web")),
            ),
            (
                "printed ready URL",
                printed(&orders[0]),
                format!(
                    "{}:\n  command: start\n  ready:\n    http: http://[[ip]]({}):80/\n",
                    n("web"),
                    n("web")
                ),
            ),
            (
                "host stays host",
                orders[1].container.clone(),
                "host".into(),
            ),
            (
                "execute argv",
                format!("{:?}", host.run),
                format!(
                    "{:?}",
                    RunCommand::Argv(vec!["echo".into(), format!("[[.Id]]({})", n("db"))])
                ),
            ),
            (
                "execute env",
                format!("{:?}", host.env),
                format!("{:?}", [("DB", format!("[[ip]]({})", n("db")))]),
            ),
            (
                "execute shell",
                format!("{:?}", db.run),
                format!(
                    "{:?}",
                    RunCommand::Shell(vec![format!("echo [[ip]]({})", n("web"))])
                ),
            ),
            ("backup", orders[3].container.clone(), n("db")),
            (
                "unit orders run on the host",
                orders[4].container.clone(),
                "host".into(),
            ),
        ] {
            assert_eq!(got, want, "{field}");
        }
    }

    #[test]
    fn production_names_are_left_alone_by_an_identity_renaming() {
        let u = crate::generate::testplan::tests::unit("u/test", UNIT);
        let r = Renames::identity(T);
        let mut spec = u.containers["web"].spec.clone();
        rename_spec(&mut spec, &r);
        assert_eq!(spec.name, "web");
        assert_eq!(spec.host.volumes_from, ["db:ro", "db"]);
        assert_eq!(spec.image.as_deref(), Some("me/web:1.0"));
    }

    #[test]
    fn a_test_copy_is_labelled_and_networked_under_its_tempid() {
        let u = crate::generate::testplan::tests::unit("shop/test:full", UNIT);
        let naming = Renames::new(&u, T, true).naming("shop/x");
        assert_eq!(naming.unit_label, format!("shop/x_{T}"));
        assert_eq!(naming.network, format!("dstart-shop-x_{T}"));
        assert_eq!(naming.display(&n("web")), "web");
        assert_eq!(naming.display("other"), "other");
        assert_eq!(naming.images["me/web:1.0"], format!("me/web:1.0_{T}"));
    }

    #[test]
    fn pseudonames_are_not_doubled() {
        let t = "0123456789";
        let text = format!("web_{t}:\n  image: x\n---\n- web_{t}: {{command: start}}\n");
        let u = crate::generate::testplan::tests::unit("u/test", &text);
        let r = Renames::new(&u, t, true);
        assert_eq!(r.container(&format!("web_{t}")), format!("web_{t}"));
        assert_eq!(
            pseudo_image("repo:latest_0123456789", t),
            "repo:latest_0123456789"
        );
        assert_eq!(
            pseudo_image("registry:5000/repo", t),
            "registry:5000/repo:latest_0123456789"
        );
    }
}
