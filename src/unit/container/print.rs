//! A [`ContainerSpec`] printed back as a container spec (compose-like keys at the top,
//! docker-py's `creation` and `startup` for the rest): what a test copy runs, as
//! `--print-unit` shows it. Effective values: `stop_timeout` is always there.

use serde_yaml_ng::{Mapping, Value};

use super::{ContainerSpec, Healthcheck, HostSpec, MountSpec, PortSpec, PullPolicy};

fn strings(list: &[String]) -> Value {
    Value::Sequence(list.iter().map(|s| Value::from(s.as_str())).collect())
}

fn pairs<'a>(items: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Mapping(
        items
            .into_iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect(),
    )
}

/// Seconds from nanoseconds, whole ones as integers.
fn seconds(ns: i64) -> Value {
    if ns % 1_000_000_000 == 0 {
        Value::from(ns / 1_000_000_000)
    } else {
        #[allow(clippy::cast_precision_loss)]
        Value::from(ns as f64 / 1e9)
    }
}

/// `127.0.0.1:8080:80/udp`, `127.0.0.1::80`, `8080:80`, `80`.
pub fn port_text(p: &PortSpec) -> String {
    let proto = if p.protocol == "tcp" {
        String::new()
    } else {
        format!("/{}", p.protocol)
    };
    let host_port = p.host_port.map(|h| h.to_string()).unwrap_or_default();
    match p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{host_port}:{}{proto}", p.container_port),
        Some(ip) => format!("{ip}:{host_port}:{}{proto}", p.container_port),
        None if p.host_port.is_some() => format!("{host_port}:{}{proto}", p.container_port),
        None => format!("{}{proto}", p.container_port),
    }
}

/// `name:/path:ro`, `/host:/path`, `/path`.
pub fn mount_text(m: &MountSpec) -> String {
    let ro = |r: bool| if r { ":ro" } else { "" };
    match m {
        MountSpec::Bind {
            host,
            container,
            read_only,
        } => format!("{host}:{container}{}", ro(*read_only)),
        MountSpec::Named {
            name,
            container,
            read_only,
        } => format!("{name}:{container}{}", ro(*read_only)),
        MountSpec::Anonymous { container } => container.clone(),
    }
}

fn healthcheck(h: &Healthcheck) -> Value {
    let mut m = Mapping::new();
    m.insert("test".into(), strings(&h.test));
    for (key, ns) in [
        ("interval", h.interval_ns),
        ("timeout", h.timeout_ns),
        ("start_period", h.start_period_ns),
    ] {
        if let Some(ns) = ns {
            m.insert(key.into(), seconds(ns));
        }
    }
    if let Some(r) = h.retries {
        m.insert("retries".into(), r.into());
    }
    Value::Mapping(m)
}

/// Inserts `key: value` unless `value` is empty (a list, mapping or `None`).
fn put(m: &mut Mapping, key: &str, value: Option<Value>) {
    let Some(value) = value else { return };
    let empty = match &value {
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(x) => x.is_empty(),
        _ => false,
    };
    if !empty {
        m.insert(key.into(), value);
    }
}

fn flag(m: &mut Mapping, key: &str, on: bool) {
    if on {
        m.insert(key.into(), Value::Bool(true));
    }
}

fn text(s: Option<&String>) -> Option<Value> {
    s.map(|s| Value::from(s.as_str()))
}

fn startup(h: &HostSpec) -> Mapping {
    let mut m = Mapping::new();
    flag(&mut m, "privileged", h.privileged);
    flag(&mut m, "publish_all_ports", h.publish_all_ports);
    flag(&mut m, "read_only", h.read_only);
    put(&mut m, "dns", Some(strings(&h.dns)));
    put(&mut m, "dns_search", Some(strings(&h.dns_search)));
    put(&mut m, "extra_hosts", Some(strings(&h.extra_hosts)));
    put(&mut m, "cap_add", Some(strings(&h.cap_add)));
    put(&mut m, "cap_drop", Some(strings(&h.cap_drop)));
    put(&mut m, "devices", Some(strings(&h.devices)));
    put(&mut m, "network_mode", text(h.network_mode.as_ref()));
    if let Some(r) = &h.restart_policy {
        let mut p = Mapping::new();
        p.insert("Name".into(), r.name.as_str().into());
        if let Some(n) = r.maximum_retry_count {
            p.insert("MaximumRetryCount".into(), n.into());
        }
        m.insert("restart_policy".into(), Value::Mapping(p));
    }
    let links: Vec<Value> = h
        .links
        .iter()
        .map(|(name, alias)| Value::from(format!("{name}:{alias}")))
        .collect();
    put(&mut m, "links", Some(Value::Sequence(links)));
    put(&mut m, "volumes_from", Some(strings(&h.volumes_from)));
    put(&mut m, "pid_mode", text(h.pid_mode.as_ref()));
    put(&mut m, "ipc_mode", text(h.ipc_mode.as_ref()));
    put(&mut m, "security_opt", Some(strings(&h.security_opt)));
    let ulimits: Vec<Value> = h
        .ulimits
        .iter()
        .map(|u| {
            let mut x = Mapping::new();
            x.insert("name".into(), u.name.as_str().into());
            x.insert("soft".into(), u.soft.into());
            x.insert("hard".into(), u.hard.into());
            Value::Mapping(x)
        })
        .collect();
    put(&mut m, "ulimits", Some(Value::Sequence(ulimits)));
    put(&mut m, "tmpfs", Some(pairs(&h.tmpfs)));
    put(&mut m, "sysctls", Some(pairs(&h.sysctls)));
    put(&mut m, "shm_size", h.shm_size.map(Value::from));
    put(&mut m, "mem_limit", h.memory.map(Value::from));
    put(&mut m, "memswap_limit", h.memory_swap.map(Value::from));
    put(&mut m, "cpu_shares", h.cpu_shares.map(Value::from));
    put(&mut m, "cpuset_cpus", text(h.cpuset_cpus.as_ref()));
    put(&mut m, "group_add", Some(strings(&h.group_add)));
    put(&mut m, "init", h.init.map(Value::Bool));
    if let Some((driver, config)) = &h.log_config {
        let mut l = Mapping::new();
        l.insert("type".into(), driver.as_str().into());
        put(&mut l, "config", Some(pairs(config)));
        m.insert("log_config".into(), Value::Mapping(l));
    }
    put(
        &mut m,
        "oom_kill_disable",
        h.oom_kill_disable.map(Value::Bool),
    );
    put(&mut m, "userns_mode", text(h.userns_mode.as_ref()));
    m
}

/// The spec's own keys (no `daemon`, `job`, `jobs`, `tests`, `backup`, `restore`).
pub fn spec_to_mapping(spec: &ContainerSpec) -> Mapping {
    let mut m = Mapping::new();
    if let Some(b) = &spec.build {
        let mut x = Mapping::new();
        x.insert("path".into(), b.path.as_str().into());
        put(&mut x, "tag", text(b.tag.as_ref()));
        put(&mut x, "dockerfile", text(b.dockerfile.as_ref()));
        if !b.rm {
            x.insert("rm".into(), Value::Bool(false));
        }
        flag(&mut x, "nocache", b.nocache);
        flag(&mut x, "pull", b.pull);
        if !b.forcerm {
            x.insert("forcerm".into(), Value::Bool(false));
        }
        put(&mut x, "buildargs", Some(pairs(&b.buildargs)));
        put(&mut x, "labels", Some(pairs(&b.labels)));
        put(&mut x, "target", text(b.target.as_ref()));
        put(&mut x, "network_mode", text(b.network_mode.as_ref()));
        m.insert("build".into(), Value::Mapping(x));
    }
    // The image of a build is its tag.
    if spec.build.as_ref().is_none_or(|b| b.tag.is_none()) {
        put(&mut m, "image", text(spec.image.as_ref()));
    }
    put(&mut m, "command", spec.command.as_deref().map(strings));
    if let Some(e) = &spec.entrypoint {
        // An empty entrypoint is one: it clears the image's.
        m.insert("entrypoint".into(), strings(e));
    }
    put(
        &mut m,
        "env",
        Some(pairs(spec.env.iter().map(|(k, v)| (k, v)))),
    );
    let published: Vec<Value> = spec
        .ports
        .iter()
        .filter(|p| !p.is_expose_only())
        .map(|p| Value::from(port_text(p)))
        .collect();
    put(&mut m, "ports", Some(Value::Sequence(published)));
    let volumes: Vec<Value> = spec
        .mounts
        .iter()
        .map(|v| Value::from(mount_text(v)))
        .collect();
    put(&mut m, "volumes", Some(Value::Sequence(volumes)));
    put(&mut m, "labels", Some(pairs(&spec.labels)));
    put(&mut m, "working_dir", text(spec.working_dir.as_ref()));
    put(&mut m, "user", text(spec.user.as_ref()));
    let pull = match spec.pull {
        PullPolicy::Missing => None,
        PullPolicy::Always => Some("always"),
        PullPolicy::Never => Some("never"),
    };
    put(&mut m, "pull", pull.map(Value::from));
    m.insert("stop_timeout".into(), spec.stop_timeout.into());

    let mut creation = Mapping::new();
    put(&mut creation, "hostname", text(spec.hostname.as_ref()));
    put(&mut creation, "domainname", text(spec.domainname.as_ref()));
    flag(&mut creation, "tty", spec.tty);
    flag(&mut creation, "stdin_open", spec.stdin_open);
    put(
        &mut creation,
        "stop_signal",
        text(spec.stop_signal.as_ref()),
    );
    put(
        &mut creation,
        "mac_address",
        text(spec.mac_address.as_ref()),
    );
    flag(
        &mut creation,
        "network_disabled",
        spec.host.network_disabled,
    );
    let exposed: Vec<Value> = spec
        .ports
        .iter()
        .filter(|p| p.is_expose_only())
        .map(|p| Value::from(port_text(p)))
        .collect();
    put(&mut creation, "ports", Some(Value::Sequence(exposed)));
    put(
        &mut creation,
        "healthcheck",
        spec.healthcheck.as_ref().map(healthcheck),
    );
    put(&mut m, "creation", Some(Value::Mapping(creation)));
    put(&mut m, "startup", Some(Value::Mapping(startup(&spec.host))));
    m
}
