//! A unit command as a Compose file (spec 3.8), pure: the containers its start orders start,
//! with the names, labels, network and volumes `start` gives them, in a form that both
//! docker-compose 1.29 and `docker stack deploy` accept. What Compose cannot say is listed in a
//! comment at the top, per container and key; nothing is dropped without a line there.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::refs::SecretRefs;
use super::yaml::{MapBuilder, Node, to_string};
use super::{BuildInput, Dockerfile, ExportError, Resolved};
use crate::engine::convert::{LABEL_CONTAINER, LABEL_UNIT};
use crate::secrets::is_secret_name;
use crate::unit::container::deploy::{Constraint, DeploySpec, Resources};
use crate::unit::container::{
    ContainerSpec, DEFAULT_STOP_TIMEOUT, Healthcheck, MountSpec, PortSpec, PullPolicy,
};
use crate::unit::order::{Action, HOST, Order, Ready, Recreate, StartArgs};
use crate::unit::values::ByteSize;
use crate::unit::{Container, Unit};

/// A container that the command starts, and the containers started by the step before.
struct Started<'a> {
    container: &'a Container,
    after: Vec<String>,
}

/// What the file cannot say, by section (`orders`, a container, `ports`), in order.
#[derive(Default)]
struct Notes(IndexMap<String, Vec<String>>);

impl Notes {
    fn add(&mut self, section: &str, line: impl Into<String>) {
        self.0
            .entry(section.to_string())
            .or_default()
            .push(line.into());
    }
}

/// An order as written, on one line.
fn order_text(order: &Order) -> String {
    let args = serde_json::to_string(&order.raw).unwrap_or_default();
    format!("`{}: {args}`", order.container)
}

fn ready_text(ready: &Ready) -> String {
    match ready {
        Ready::Http { url, status, .. } => format!("an HTTP answer {status} from {url}"),
        Ready::Log { pattern, .. } => format!("a log line matching `{}`", pattern.as_str()),
        Ready::Healthy { .. } => "the healthcheck passing".into(),
    }
}

/// What a start order says besides "start it".
fn start_notes(name: &str, args: &StartArgs, notes: &mut Notes) {
    if let Some(ready) = &args.ready {
        notes.add(
            name,
            format!(
                "`ready:` start waits for {} (at most {} s): Compose does not wait",
                ready_text(ready),
                ready.timeout()
            ),
        );
    }
    if args.attach {
        notes.add(
            name,
            "`attach: true`: start waits until it exits and fails unless it exits 0; Compose starts it and goes on",
        );
    }
    if args.restart {
        notes.add(
            name,
            "`restart: true` of the start order: Compose leaves a running container alone",
        );
    }
    match args.recreate {
        Recreate::Auto => {}
        Recreate::Never => notes.add(
            name,
            "`recreate: never`: Compose recreates a changed service",
        ),
        Recreate::Always => notes.add(
            name,
            "`recreate: always`: use `docker-compose up --force-recreate`",
        ),
    }
    if let Some(t) = args.timeout {
        notes.add(
            name,
            format!("`timeout: {t}` of the start order (a recreate's stop)"),
        );
    }
}

/// The containers the steps start (first start of each), and notes on every other order.
fn started<'a>(unit: &'a Unit, notes: &mut Notes) -> Vec<Started<'a>> {
    let mut out: Vec<Started<'a>> = Vec::new();
    let mut previous: Vec<String> = Vec::new();
    for step in &unit.steps {
        let mut here = Vec::new();
        for order in step.orders() {
            let container = unit.containers.get(&order.container);
            match (&order.action, container) {
                (Action::Start(args), Some(c)) if order.container != HOST => {
                    start_notes(&order.container, args, notes);
                    if !out.iter().any(|s| s.container.spec.name == order.container) {
                        out.push(Started {
                            container: c,
                            after: previous.clone(),
                        });
                        here.push(order.container.clone());
                    }
                }
                (Action::Unit(u), _) => notes.add(
                    "orders",
                    format!(
                        "{}: another unit command; export it on its own (`dstart export {}`)",
                        order_text(order),
                        u.unit
                    ),
                ),
                (Action::Build, _) => notes.add(
                    "orders",
                    format!(
                        "{}: dstart builds this image; build it before deploying",
                        order_text(order)
                    ),
                ),
                (Action::Create, _) => notes.add(
                    "orders",
                    format!(
                        "{}: created, never started, so not a service here",
                        order_text(order)
                    ),
                ),
                _ => notes.add(
                    "orders",
                    format!(
                        "{}: an order, which Compose has no place for",
                        order_text(order)
                    ),
                ),
            }
        }
        if !here.is_empty() {
            previous = here;
        }
    }
    out
}

/// `1500000000` → `1500ms`: the shortest exact duration Compose and Go both read.
fn duration(ns: i64) -> String {
    for (unit, size) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

fn healthcheck(h: &Healthcheck, refs: &mut SecretRefs) -> Node {
    let mut m = MapBuilder::default();
    m.put(
        "test",
        Node::Seq(h.test.iter().map(|t| Node::Str(refs.text(t))).collect()),
    );
    for (key, value) in [
        ("interval", h.interval_ns),
        ("timeout", h.timeout_ns),
        ("start_period", h.start_period_ns),
    ] {
        if let Some(ns) = value {
            m.put(key, Node::str(duration(ns)));
        }
    }
    if let Some(r) = h.retries {
        m.put("retries", Node::Int(r));
    }
    m.build()
}

/// Environment variables or build arguments of container `name`: the value of a secret's
/// name is a `${NAME}` reference (`${NAME}` of another container's different value is
/// `${CONTAINER_NAME}`).
fn variables<'a>(
    name: &str,
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
    refs: &mut SecretRefs,
) -> Node {
    let mut out = MapBuilder::default();
    for (k, v) in pairs {
        let value = if is_secret_name(k) {
            refs.reference(k, &format!("{name}_{k}"), v)
        } else {
            refs.text(v)
        };
        out.put(k.clone(), Node::Str(value));
    }
    out.build()
}

/// A size as both Compose and the Docker CLI read it: `64m` (binary units), else bytes.
fn bytes(size: i64) -> String {
    for (unit, factor) in [("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if size != 0 && size % factor == 0 {
            return format!("{}{unit}", size / factor);
        }
    }
    format!("{size}b")
}

/// A port in the short syntax: `[IP:][HOST:]CONTAINER/PROTOCOL`.
fn port(p: &PortSpec) -> String {
    let target = format!("{}/{}", p.container_port, p.protocol);
    let host = p.host_port.map(|h| h.to_string()).unwrap_or_default();
    match p.host_ip.as_deref() {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{host}:{target}"),
        Some(ip) => format!("{ip}:{host}:{target}"),
        None if host.is_empty() => target,
        None => format!("{host}:{target}"),
    }
}

/// A volume: the short syntax, or the long one where a path holds a `:`.
fn volume(kind: &str, source: Option<&str>, target: &str, read_only: bool) -> Node {
    let colon = source.is_some_and(|s| s.contains(':')) || target.contains(':');
    if !colon {
        let mut text = source.map(|s| format!("{s}:")).unwrap_or_default();
        text.push_str(target);
        if read_only {
            text.push_str(":ro");
        }
        return Node::Str(text.replace('$', "$$"));
    }
    let mut m = MapBuilder::default();
    m.put("type", Node::str(kind));
    if let Some(s) = source {
        m.put("source", Node::Str(s.replace('$', "$$")));
    }
    m.put("target", Node::Str(target.replace('$', "$$")));
    if read_only {
        m.put("read_only", Node::Bool(true));
    }
    m.build()
}

/// `restart:` for docker-compose and `deploy.restart_policy` for a swarm, whose default
/// (`any`) would restart a one-shot job forever.
fn restart(spec: &ContainerSpec) -> (Option<String>, Node) {
    let (name, retries) = spec
        .host
        .restart_policy
        .as_ref()
        .map_or(("no", None), |r| (r.name.as_str(), r.maximum_retry_count));
    let mut policy = MapBuilder::default();
    let compose = match name {
        "always" | "unless-stopped" => {
            policy.put("condition", Node::str("any"));
            Some(name.to_string())
        }
        "on-failure" => {
            policy.put("condition", Node::str("on-failure"));
            match retries.filter(|r| *r > 0) {
                Some(r) => {
                    policy.put("max_attempts", Node::Int(r));
                    Some(format!("on-failure:{r}"))
                }
                None => Some("on-failure".into()),
            }
        }
        _ => {
            policy.put("condition", Node::str("none"));
            None
        }
    };
    (compose, policy.build())
}

fn build(
    name: &str,
    spec: &ContainerSpec,
    input: Option<&BuildInput>,
    refs: &mut SecretRefs,
    notes: &mut Notes,
) -> Option<Node> {
    let b = spec.build.as_ref()?;
    let input = input?;
    match &input.dockerfile {
        Dockerfile::Template(t) => {
            notes.add(
                name,
                format!(
                    "`build`: `{}/{t}` is a dstart template that Compose cannot render: build the image with dstart first",
                    b.path
                ),
            );
            return None;
        }
        Dockerfile::Missing(why) => {
            notes.add(
                name,
                format!("`build`: {why}; the image must exist before deploying"),
            );
            return None;
        }
        Dockerfile::Plain(_) => {}
    }
    let mut m = MapBuilder::default();
    m.put("context", Node::Str(input.context.replace('$', "$$")));
    if let Dockerfile::Plain(Some(file)) = &input.dockerfile {
        m.put("dockerfile", Node::Str(file.replace('$', "$$")));
    }
    m.put_nonempty("args", variables(name, &b.buildargs, refs));
    let labels: Vec<(String, Node)> = b
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Node::Str(refs.text(v))))
        .collect();
    m.put_nonempty("labels", Node::Map(labels));
    if let Some(t) = &b.target {
        m.put("target", Node::Str(refs.text(t)));
    }
    if let Some(n) = &b.network_mode {
        m.put("network", Node::Str(refs.text(n)));
    }
    for (on, what) in [
        (
            b.nocache,
            "`build.nocache`: use `docker-compose build --no-cache`",
        ),
        (b.pull, "`build.pull`: use `docker-compose build --pull`"),
        (
            !b.rm,
            "`build.rm: false`: Compose removes intermediate containers",
        ),
    ] {
        if on {
            notes.add(name, what);
        }
    }
    Some(m.build())
}

/// The keys of `spec` that have no Compose 3.8 key `docker stack deploy` also accepts.
fn unexpressed(unit: &str, spec: &ContainerSpec, exported: &HashSet<&str>, notes: &mut Notes) {
    let name = spec.name.as_str();
    let h = &spec.host;
    for v in &h.volumes_from {
        notes.add(
            name,
            format!(
                "`volumes_from: {v}`: Compose 3 has no volumes_from; share a named volume instead"
            ),
        );
    }
    if h.publish_all_ports {
        notes.add(name, "`publish_all_ports`: list the ports instead");
    }
    for (key, given) in [
        ("cpu_shares", h.cpu_shares.is_some()),
        ("cpuset_cpus", h.cpuset_cpus.is_some()),
        ("memswap_limit", h.memory_swap.is_some()),
        ("group_add", !h.group_add.is_empty()),
        ("oom_kill_disable", h.oom_kill_disable.is_some()),
    ] {
        if given {
            notes.add(
                name,
                format!(
                    "`{key}`: no Compose 3 key (`docker stack deploy` refuses the Compose 2 one)"
                ),
            );
        }
    }
    for (target, _) in &h.links {
        if !exported.contains(target.as_str()) {
            notes.add(
                name,
                format!("`links: {target}`: `{target}` is not started by this command"),
            );
        }
    }
    match spec.pull {
        PullPolicy::Missing => {}
        PullPolicy::Always => notes.add(name, "`pull: always`: use `docker-compose pull` first"),
        PullPolicy::Never => notes.add(name, "`pull: never`: deploy with `--resolve-image never`"),
    }
    let tests = &spec.tests;
    for (key, given) in [
        ("daemon", tests.daemon.is_some()),
        ("job", tests.job.is_some()),
        ("jobs", !tests.jobs.is_empty()),
        ("tests", !tests.tests.is_empty()),
    ] {
        if given {
            notes.add(
                name,
                format!("`{key}`: test checks, run by `dstart run {unit}/test`"),
            );
        }
    }
    if spec.backup.is_some() {
        notes.add(
            name,
            format!("`backup`: archives are made by `dstart run {unit}/backup`"),
        );
    }
    if spec.restore.is_some() {
        notes.add(
            name,
            format!("`restore`: hooks of `dstart run {unit}/restore`"),
        );
    }
}

/// `500000000` → `0.5`: CPUs as Compose writes them (a string, which both readers take).
fn cpus(nano: i64) -> String {
    let (whole, part) = (nano / 1_000_000_000, nano % 1_000_000_000);
    if part == 0 {
        return whole.to_string();
    }
    let fraction = format!("{part:09}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// `limits` or `reservations` of `deploy.resources`.
fn resources(r: Resources) -> Node {
    let mut m = MapBuilder::default();
    if let Some(c) = r.cpus {
        m.put("cpus", Node::Str(cpus(c.nano())));
    }
    if let Some(b) = r.memory {
        m.put("memory", Node::Str(bytes(b.get())));
    }
    m.build()
}

/// `deploy`: what swarm mode would deploy, its defaults written out where Compose's differ
/// (so that `docker stack deploy` of the file runs the same); `mem_limit` as the memory limit
/// unless `deploy.resources.limits.memory` is given.
fn deploy(
    name: &str,
    mem_limit: Option<i64>,
    d: &DeploySpec,
    restart_policy: Node,
    notes: &mut Notes,
) -> Node {
    let mut m = MapBuilder::default();
    m.put(
        "replicas",
        Node::Int(i64::try_from(d.replicas).unwrap_or(i64::MAX)),
    );
    let constraints: Vec<&str> = d.constraints.iter().map(Constraint::as_str).collect();
    if !constraints.is_empty() {
        let mut placement = MapBuilder::default();
        placement.put("constraints", Node::strings(&constraints));
        m.put("placement", placement.build());
    }
    let mut limits = d.limits;
    match (mem_limit, limits.memory) {
        (Some(_), Some(_)) => notes.add(
            name,
            "`mem_limit`: not written, `deploy.resources.limits.memory` is the memory limit",
        ),
        (Some(bytes), None) => {
            limits.memory = ByteSize::new(bytes).ok();
            notes.add(
                name,
                "`mem_limit`: as `deploy.resources.limits.memory`, which docker-compose applies only with `--compatibility`",
            );
        }
        _ => {}
    }
    let mut r = MapBuilder::default();
    r.put_nonempty("limits", resources(limits));
    r.put_nonempty("reservations", resources(d.reservations));
    m.put_nonempty("resources", r.build());
    m.put("restart_policy", restart_policy);
    let u = &d.update;
    let mut update = MapBuilder::default();
    update.put(
        "parallelism",
        Node::Int(i64::try_from(u.parallelism).unwrap_or(i64::MAX)),
    );
    let delay = i64::try_from(u.delay.duration().as_nanos()).unwrap_or(i64::MAX);
    update.put("delay", Node::Str(duration(delay)));
    update.put("order", Node::str(u.order.as_str()));
    update.put("failure_action", Node::str(u.failure_action.as_str()));
    m.put("update_config", update.build());
    m.build()
}

/// The secret files of the services: a top-level Compose secret each (by the secret's name,
/// or `NAME_CONTAINER` where containers hold different files under one name), by its path.
#[derive(Default)]
struct SecretFiles(IndexMap<String, String>);

impl SecretFiles {
    /// The service's reference to the secret `secret` of container `container` in `file`,
    /// mounted at `/run/secrets/<secret>` as dstart mounts it.
    fn service(&mut self, container: &str, secret: &str, file: &str) -> Node {
        let key = match self.0.get(secret) {
            Some(f) if f != file => format!("{secret}_{container}"),
            _ => secret.to_string(),
        };
        self.0.insert(key.clone(), file.to_string());
        let mut m = MapBuilder::default();
        m.put("source", Node::Str(key));
        m.put("target", Node::str(secret));
        m.build()
    }

    fn top(&self) -> Node {
        let mut m = MapBuilder::default();
        for (key, file) in &self.0 {
            let mut s = MapBuilder::default();
            s.put("file", Node::Str(file.replace('$', "$$")));
            m.put(key.clone(), s.build());
        }
        m.build()
    }
}

/// The service of one started container.
fn service(
    unit: &str,
    started: &Started<'_>,
    resolved: &Resolved,
    exported: &HashSet<&str>,
    refs: &mut SecretRefs,
    secrets: &mut SecretFiles,
    notes: &mut Notes,
) -> Node {
    let spec = &started.container.spec;
    let name = spec.name.as_str();
    let text = |refs: &mut SecretRefs, s: &str| Node::Str(refs.text(s));
    let mut m = MapBuilder::default();
    if let Some(image) = &spec.image {
        m.put("image", text(refs, image));
    }
    let input = resolved.containers.get(name);
    if let Some(b) = build(
        name,
        spec,
        input.and_then(|i| i.build.as_ref()),
        refs,
        notes,
    ) {
        m.put("build", b);
    }
    m.put("container_name", Node::str(name));
    if let Some(c) = &spec.command {
        m.put(
            "command",
            Node::Seq(c.iter().map(|a| text(refs, a)).collect()),
        );
    }
    if let Some(e) = &spec.entrypoint {
        m.put(
            "entrypoint",
            Node::Seq(e.iter().map(|a| text(refs, a)).collect()),
        );
    }
    m.put_nonempty(
        "environment",
        variables(name, spec.env.iter().map(|(k, v)| (k, v)), refs),
    );

    let published: Vec<&PortSpec> = spec.ports.iter().filter(|p| !p.is_expose_only()).collect();
    m.put_nonempty(
        "ports",
        Node::Seq(published.iter().map(|p| Node::Str(port(p))).collect()),
    );
    for p in published.iter().filter(|p| p.host_ip.is_some()) {
        notes.add(
            "ports",
            format!(
                "`{}` of `{name}`: `docker stack deploy` publishes it on every address of every node (a swarm keeps no host address)",
                port(p)
            ),
        );
    }
    let exposed: Vec<String> = spec
        .ports
        .iter()
        .filter(|p| p.is_expose_only())
        .map(|p| format!("{}/{}", p.container_port, p.protocol))
        .collect();
    m.put_nonempty("expose", Node::strings(&exposed));

    let mut binds = input.map(|i| i.binds.iter()).into_iter().flatten();
    let mut service_secrets = Vec::new();
    let volumes: Vec<Node> = spec
        .mounts
        .iter()
        .filter_map(|mount| match mount {
            MountSpec::Bind {
                container,
                read_only,
                ..
            } => {
                let host = binds.next().map_or("", String::as_str);
                if let Some(s) = spec.secrets.iter().find(|s| s.target() == *container) {
                    service_secrets.push(secrets.service(name, &s.name, host));
                    return None;
                }
                Some(volume("bind", Some(host), container, *read_only))
            }
            MountSpec::Named {
                name: volume_name,
                container,
                read_only,
            } => Some(volume("volume", Some(volume_name), container, *read_only)),
            MountSpec::Anonymous { container } => Some(volume("volume", None, container, false)),
        })
        .collect();
    m.put_nonempty("volumes", Node::Seq(volumes));

    let h = &spec.host;
    if h.network_disabled {
        m.put("network_mode", Node::str("none"));
    } else if let Some(mode) = &h.network_mode {
        m.put("network_mode", text(refs, mode));
    } else {
        let mut endpoint = MapBuilder::default();
        endpoint.put("aliases", Node::strings(&[name]));
        let mut nets = MapBuilder::default();
        nets.put(resolved.network.clone(), endpoint.build());
        m.put("networks", nets.build());
    }
    let links: Vec<String> = h
        .links
        .iter()
        .filter(|(t, _)| exported.contains(t.as_str()))
        .map(|(t, a)| format!("{t}:{a}"))
        .collect();
    m.put_nonempty("links", Node::strings(&links));
    if let Some(hc) = &spec.healthcheck {
        m.put("healthcheck", healthcheck(hc, refs));
    }
    let mut labels = MapBuilder::default();
    for (k, v) in &spec.labels {
        labels.put(k.clone(), text(refs, v));
    }
    labels.put(LABEL_UNIT, Node::str(unit));
    labels.put(LABEL_CONTAINER, Node::str(name));
    m.put("labels", labels.build());
    for (key, value) in [
        ("user", &spec.user),
        ("working_dir", &spec.working_dir),
        ("hostname", &spec.hostname),
        ("domainname", &spec.domainname),
        ("mac_address", &spec.mac_address),
    ] {
        if let Some(v) = value {
            m.put(key, text(refs, v));
        }
    }
    if spec.tty {
        m.put("tty", Node::Bool(true));
    }
    if spec.stdin_open {
        m.put("stdin_open", Node::Bool(true));
    }
    let (compose_restart, swarm_restart) = restart(spec);
    if let Some(r) = compose_restart {
        m.put("restart", Node::Str(r));
    }
    if spec.stop_timeout != DEFAULT_STOP_TIMEOUT {
        m.put(
            "stop_grace_period",
            Node::Str(format!("{}s", spec.stop_timeout)),
        );
    }
    if let Some(s) = &spec.stop_signal {
        m.put("stop_signal", text(refs, s));
    }
    if let Some(i) = h.init {
        m.put("init", Node::Bool(i));
    }
    for (key, list) in [
        ("cap_add", &h.cap_add),
        ("cap_drop", &h.cap_drop),
        ("extra_hosts", &h.extra_hosts),
        ("dns", &h.dns),
        ("dns_search", &h.dns_search),
        ("devices", &h.devices),
        ("security_opt", &h.security_opt),
    ] {
        m.put_nonempty(key, Node::Seq(list.iter().map(|v| text(refs, v)).collect()));
    }
    if h.privileged {
        m.put("privileged", Node::Bool(true));
    }
    if h.read_only {
        m.put("read_only", Node::Bool(true));
    }
    for (key, value) in [
        ("pid", &h.pid_mode),
        ("ipc", &h.ipc_mode),
        ("userns_mode", &h.userns_mode),
    ] {
        if let Some(v) = value {
            m.put(key, text(refs, v));
        }
    }
    let mut ulimits = MapBuilder::default();
    for u in &h.ulimits {
        let mut l = MapBuilder::default();
        l.put("soft", Node::Int(u.soft));
        l.put("hard", Node::Int(u.hard));
        ulimits.put(u.name.clone(), l.build());
    }
    m.put_nonempty("ulimits", ulimits.build());
    let tmpfs: Vec<String> = h
        .tmpfs
        .iter()
        .map(|(path, opts)| {
            if opts.is_empty() {
                path.clone()
            } else {
                format!("{path}:{opts}")
            }
        })
        .collect();
    m.put_nonempty(
        "tmpfs",
        Node::Seq(tmpfs.iter().map(|t| text(refs, t)).collect()),
    );
    let sysctls: Vec<(String, Node)> = h
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), text(refs, v)))
        .collect();
    m.put_nonempty("sysctls", Node::Map(sysctls));
    if let Some(s) = h.shm_size {
        m.put("shm_size", Node::Str(bytes(s)));
    }
    if let Some((driver, options)) = &h.log_config {
        let mut l = MapBuilder::default();
        l.put("driver", text(refs, driver));
        let opts: Vec<(String, Node)> = options
            .iter()
            .map(|(k, v)| (k.clone(), text(refs, v)))
            .collect();
        l.put_nonempty("options", Node::Map(opts));
        m.put("logging", l.build());
    }
    let mut depends: Vec<String> = started.after.clone();
    for d in spec.dependencies() {
        if exported.contains(d.as_str()) && d != name && !depends.contains(&d) {
            depends.push(d);
        }
    }
    m.put_nonempty("depends_on", Node::strings(&depends));
    m.put_nonempty("secrets", Node::Seq(service_secrets));
    m.put(
        "deploy",
        deploy(name, spec.host.memory, &spec.deploy, swarm_restart, notes),
    );
    unexpressed(unit, spec, exported, notes);
    m.build()
}

/// The comment at the top: what the file is, how to deploy it, and what it leaves out.
fn header(unit: &Unit, notes: &Notes, refs: &SecretRefs, files: &SecretFiles) -> String {
    let mut lines = vec![
        format!("Compose file of the dstart unit command `{}`, written by `dstart export`.", unit.command),
        "Deploy it with `docker-compose -f FILE up -d`, or on a swarm with".into(),
        "`docker stack deploy --resolve-image never -c FILE STACK` (images must exist on the nodes).".into(),
        String::new(),
    ];
    let secrets: Vec<&str> = refs.names().collect();
    if secrets.is_empty() {
        lines.push("Secrets: none in this unit.".into());
    } else {
        lines.push(
            "Secrets are not written here: set these in the environment of docker-compose".into(),
        );
        lines.push(format!("or docker stack deploy: {}", secrets.join(", ")));
    }
    if !files.0.is_empty() {
        let keys: Vec<&str> = files.0.keys().map(String::as_str).collect();
        lines.push(format!(
            "Secret files are Compose secrets, read from their files when deployed: {}",
            keys.join(", ")
        ));
    }
    lines.push(
        "deploy: as dstart's swarm mode deploys each container: its `deploy:` keys, dstart's defaults"
            .into(),
    );
    lines.push(
        "written out (1 replica, updates start-first one task at a time), restart_policy from its restart policy."
            .into(),
    );
    if notes.0.is_empty() {
        lines.push("Nothing of the unit command is left out.".into());
    } else {
        lines.push(String::new());
        lines.push("Not in this file (a Compose file cannot say it):".into());
        // Orders first, then the containers, then what concerns a swarm only.
        let mut sections: Vec<(&String, &Vec<String>)> = notes.0.iter().collect();
        sections.sort_by_key(|(s, _)| match s.as_str() {
            "orders" => 0,
            "ports" => 2,
            _ => 1,
        });
        for (section, items) in sections {
            lines.push(format!("  {section}:"));
            for item in items {
                lines.push(format!("    - {item}"));
            }
        }
    }
    lines
        .iter()
        .map(|l| {
            let one = l.replace(['\n', '\r'], " ");
            if one.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {one}\n")
            }
        })
        .collect()
}

/// The Compose file of `unit`: the containers its start orders start.
pub fn compose(unit: &Unit, resolved: &Resolved) -> Result<String, ExportError> {
    if unit.command.command == "test" {
        return Err(ExportError::TestRun {
            command: unit.command.to_string(),
        });
    }
    let mut notes = Notes::default();
    let started = started(unit, &mut notes);
    if started.is_empty() {
        return Err(ExportError::NothingStarted {
            command: unit.command.to_string(),
        });
    }
    let mut refs = SecretRefs::default();
    for (path, value) in &resolved.environment_secrets {
        let name = if path.first().is_some_and(|p| p == "osenv") {
            &path[1..]
        } else {
            &path[..]
        };
        refs.name_for(&name.join("_"), &path.join("_"), value);
    }
    let exported: HashSet<&str> = started
        .iter()
        .map(|s| s.container.spec.name.as_str())
        .collect();
    let mut services = MapBuilder::default();
    let mut secrets = SecretFiles::default();
    for s in &started {
        let node = service(
            &unit.command.unit,
            s,
            resolved,
            &exported,
            &mut refs,
            &mut secrets,
            &mut notes,
        );
        services.put(s.container.spec.name.clone(), node);
    }
    let mut volumes = MapBuilder::default();
    let mut seen = HashSet::new();
    let mut on_network = false;
    for s in &started {
        on_network |= s.container.spec.on_unit_network();
        for mount in &s.container.spec.mounts {
            if let MountSpec::Named { name, .. } = mount {
                if seen.insert(name.clone()) {
                    let mut v = MapBuilder::default();
                    v.put("name", Node::str(name));
                    volumes.put(name.clone(), v.build());
                }
            }
        }
    }
    let mut top = MapBuilder::default();
    top.put("version", Node::str("3.8"));
    top.put("services", services.build());
    top.put_nonempty("volumes", volumes.build());
    top.put_nonempty("secrets", secrets.top());
    if on_network {
        let mut n = MapBuilder::default();
        n.put("name", Node::str(&resolved.network));
        let mut networks = MapBuilder::default();
        networks.put(resolved.network.clone(), n.build());
        top.put("networks", networks.build());
    }
    let body = to_string(&top.build());
    Ok(format!("{}\n{body}", header(unit, &notes, &refs, &secrets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_ports() {
        assert_eq!(duration(2_000_000_000), "2s");
        assert_eq!(duration(1_500_000_000), "1500ms");
        assert_eq!(duration(1_500), "1500ns");
        assert_eq!(duration(3_000), "3us");
        assert_eq!(bytes(64 << 20), "64m");
        assert_eq!(bytes(1 << 30), "1g");
        assert_eq!(bytes(1000), "1000b");
        assert_eq!(cpus(500_000_000), "0.5");
        assert_eq!(cpus(2_000_000_000), "2");
        assert_eq!(cpus(1_250_000_000), "1.25");
        assert_eq!(cpus(1), "0.000000001");
        let p = |text: &str| port(&crate::unit::container::parse_port(text).unwrap());
        assert_eq!(p("80"), "80/tcp");
        assert_eq!(p("8080:80/udp"), "8080:80/udp");
        assert_eq!(p("127.0.0.1:8080:80"), "127.0.0.1:8080:80/tcp");
        assert_eq!(p("127.0.0.1::80"), "127.0.0.1::80/tcp");
        assert_eq!(p("[::1]:8080:80"), "[::1]:8080:80/tcp");
    }

    #[test]
    fn volumes_with_a_colon_in_a_path_use_the_long_syntax() {
        assert_eq!(
            volume("volume", Some("v"), "/data", true),
            Node::str("v:/data:ro")
        );
        assert_eq!(volume("volume", None, "/data", false), Node::str("/data"));
        let long = volume("bind", Some("/srv/a:b"), "/data", false);
        assert_eq!(
            long,
            Node::Map(vec![
                ("type".into(), Node::str("bind")),
                ("source".into(), Node::str("/srv/a:b")),
                ("target".into(), Node::str("/data")),
            ])
        );
    }
}
