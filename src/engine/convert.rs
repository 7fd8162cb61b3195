//! A container spec → the engine's create request (docker-py's `create_container` and `start`
//! arguments merged into one request, `HostConfig` at create time). Pure, so it is tested here.
//!
//! The request carries the labels `dstart.unit`, `dstart.container` and `dstart.config-hash`;
//! the hash is taken over the canonical JSON of the request without it, so `start` can tell
//! whether an existing container was created from the same configuration. The create requests
//! of the unit network and of named volumes carry the same three labels.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use sha2::{Digest, Sha256};

use crate::unit::container::{ContainerSpec, MountSpec};

pub const LABEL_UNIT: &str = "dstart.unit";
pub const LABEL_CONTAINER: &str = "dstart.container";
pub const LABEL_HASH: &str = "dstart.config-hash";
/// A JSON object of short digests per configuration key (`env.NAME`, `ports`, `image`, ...),
/// so that a changed configuration can be named key by key. Digests only: no value in clear.
pub const LABEL_KEYS: &str = "dstart.config-keys";

/// A bind with its host path resolved (absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBind {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

/// Everything besides the spec that shapes the request.
#[derive(Debug, Clone, Default)]
pub struct ConvertInput {
    /// The unit the container belongs to (label `dstart.unit`).
    pub unit: String,
    /// The unit network to join, with the container's key as alias.
    pub network: Option<String>,
    /// Binds of the spec, in order, with resolved host paths.
    pub binds: Vec<ResolvedBind>,
    /// Anonymous volumes of an older container to mount again (container path → volume name).
    pub carried_volumes: HashMap<String, String>,
    /// Another name the container answers to on the unit network (a test's pseudonamed
    /// container keeps its key, so `redis-cli -h redis` still works).
    pub alias: Option<String>,
}

/// A create request and its configuration hash. The body is the engine's own type, so only
/// `engine` reads it: callers hand the request to [`Engine::create_container`](super::Engine).
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub(super) body: ContainerCreateBody,
    pub hash: String,
    /// The digest of each configuration key (see [`LABEL_KEYS`]).
    pub keys: BTreeMap<String, String>,
}

/// The create request of a unit network, for [`Engine::ensure_network`](super::Engine).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRequest(pub(super) NetworkCreateRequest);

impl NetworkRequest {
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

/// The create request of a named volume, for [`Engine::ensure_volume`](super::Engine).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeRequest(pub(super) VolumeCreateRequest);

impl VolumeRequest {
    pub fn name(&self) -> &str {
        self.0.name.as_deref().unwrap_or_default()
    }
}

/// The engine's ulimits of a container spec (`None` without any).
pub(super) fn ulimits(host: &crate::unit::container::HostSpec) -> Option<Vec<ResourcesUlimits>> {
    opt_vec(
        host.ulimits
            .iter()
            .map(|u| ResourcesUlimits {
                name: Some(u.name.clone()),
                soft: Some(u.soft),
                hard: Some(u.hard),
            })
            .collect(),
    )
}

/// The spec's `healthcheck` as the engine takes it, for a container and for a service alike.
pub(super) fn health_config(spec: &ContainerSpec) -> Option<HealthConfig> {
    spec.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: h.interval_ns,
        timeout: h.timeout_ns,
        retries: h.retries,
        start_period: h.start_period_ns,
        ..Default::default()
    })
}

pub(super) fn opt_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() { None } else { Some(v) }
}

fn opt_map<K, V>(m: HashMap<K, V>) -> Option<HashMap<K, V>> {
    if m.is_empty() { None } else { Some(m) }
}

fn restart_policy(name: &str, retries: Option<i64>) -> RestartPolicy {
    let name = match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        "no" | "" => RestartPolicyNameEnum::NO,
        _ => RestartPolicyNameEnum::EMPTY,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    }
}

fn device(spec: &str) -> DeviceMapping {
    let mut parts = spec.split(':');
    let host = parts.next().unwrap_or_default().to_string();
    let ctr = parts.next().map_or_else(|| host.clone(), str::to_string);
    let perms = parts.next().unwrap_or("rwm").to_string();
    DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(ctr),
        cgroup_permissions: Some(perms),
    }
}

/// Builds the create request of `spec`.
pub fn create_request(spec: &ContainerSpec, input: &ConvertInput) -> CreateRequest {
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for p in &spec.ports {
        let key = p.key();
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        if p.is_expose_only() {
            continue;
        }
        bindings.entry(key).or_default().push(PortBinding {
            host_ip: Some(p.host_ip.clone().unwrap_or_default()),
            host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
        });
    }

    let mut binds: Vec<String> = Vec::new();
    let mut anonymous: Vec<String> = Vec::new();
    let mut resolved = input.binds.iter();
    for m in &spec.mounts {
        match m {
            MountSpec::Bind { .. } => {
                if let Some(b) = resolved.next() {
                    binds.push(format!(
                        "{}:{}{}",
                        b.host,
                        b.container,
                        if b.read_only { ":ro" } else { "" }
                    ));
                }
            }
            MountSpec::Named {
                name,
                container,
                read_only,
            } => {
                binds.push(format!(
                    "{name}:{container}{}",
                    if *read_only { ":ro" } else { "" }
                ));
            }
            MountSpec::Anonymous { container } => anonymous.push(container.clone()),
        }
    }

    let host = &spec.host;
    let network_mode = host.network_mode.clone().or_else(|| input.network.clone());
    let links: Vec<String> = host.links.iter().map(|(n, a)| format!("{n}:{a}")).collect();
    // On a user-defined network the engine ignores the legacy `HostConfig.Links`: a link's
    // alias resolves only when it is given with the network's endpoint (as `docker run
    // --network N --link` does).
    let mut legacy_links = opt_vec(links.clone());
    let networking_config = match (&input.network, &host.network_mode) {
        (Some(net), None) if !host.network_disabled => {
            let mut endpoints = HashMap::new();
            endpoints.insert(
                net.clone(),
                EndpointSettings {
                    aliases: Some(
                        std::iter::once(spec.name.clone())
                            .chain(input.alias.iter().filter(|a| **a != spec.name).cloned())
                            .collect(),
                    ),
                    links: legacy_links.take(),
                    ..Default::default()
                },
            );
            Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            })
        }
        _ => None,
    };

    let host_config = HostConfig {
        binds: None,
        port_bindings: None,
        publish_all_ports: host.publish_all_ports.then_some(true),
        privileged: host.privileged.then_some(true),
        readonly_rootfs: host.read_only.then_some(true),
        dns: opt_vec(host.dns.clone()),
        dns_search: opt_vec(host.dns_search.clone()),
        extra_hosts: opt_vec(host.extra_hosts.clone()),
        cap_add: opt_vec(host.cap_add.clone()),
        cap_drop: opt_vec(host.cap_drop.clone()),
        devices: opt_vec(host.devices.iter().map(|d| device(d)).collect()),
        network_mode: if host.network_disabled {
            None
        } else {
            network_mode
        },
        restart_policy: host
            .restart_policy
            .as_ref()
            .map(|r| restart_policy(&r.name, r.maximum_retry_count)),
        links: legacy_links,
        volumes_from: opt_vec(host.volumes_from.clone()),
        pid_mode: host.pid_mode.clone(),
        ipc_mode: host.ipc_mode.clone(),
        security_opt: opt_vec(host.security_opt.clone()),
        ulimits: ulimits(host),
        tmpfs: opt_map(
            host.tmpfs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        sysctls: opt_map(
            host.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        shm_size: host.shm_size,
        memory: host.memory,
        memory_swap: host.memory_swap,
        cpu_shares: host.cpu_shares,
        cpuset_cpus: host.cpuset_cpus.clone(),
        group_add: opt_vec(host.group_add.clone()),
        init: host.init,
        log_config: host.log_config.as_ref().map(|(t, c)| HostConfigLogConfig {
            typ: Some(t.clone()),
            config: Some(c.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }),
        oom_kill_disable: host.oom_kill_disable,
        userns_mode: host.userns_mode.clone(),
        ..Default::default()
    };

    let mut body = ContainerCreateBody {
        image: spec.image.clone(),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: opt_vec(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        exposed_ports: opt_vec(exposed),
        volumes: opt_vec(anonymous.clone()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        domainname: spec.domainname.clone(),
        tty: spec.tty.then_some(true),
        open_stdin: spec.stdin_open.then_some(true),
        stop_signal: spec.stop_signal.clone(),
        network_disabled: host.network_disabled.then_some(true),
        healthcheck: health_config(spec),
        labels: None,
        host_config: Some(HostConfig {
            binds: opt_vec(binds.clone()),
            port_bindings: if bindings.is_empty() {
                None
            } else {
                Some(
                    bindings
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect(),
                )
            },
            ..host_config
        }),
        networking_config,
        ..Default::default()
    };

    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_CONTAINER.into(), spec.name.clone());
    body.labels = Some(labels.clone());

    // The hash covers the container's own configuration, not which unit runs it: a container
    // imported into a second unit is the same container there (it joins that unit's network
    // as well instead of being recreated).
    let (hash, keys) = {
        let mut own = body.clone();
        if input.network.is_some() && host.network_mode.is_none() {
            // Links are the container's own: they stay, under a fixed network name. (Containers
            // made when links went to `HostConfig.Links`, where the engine ignored them, get
            // another hash and are recreated once.)
            let endpoint_links = body
                .networking_config
                .as_ref()
                .and_then(|n| n.endpoints_config.as_ref())
                .and_then(|e| e.values().next())
                .and_then(|ep| ep.links.clone());
            own.networking_config = endpoint_links.map(|links| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    "unit network".to_string(),
                    EndpointSettings {
                        links: Some(links),
                        ..Default::default()
                    },
                )])),
            });
            if let Some(h) = own.host_config.as_mut() {
                h.network_mode = None;
            }
        }
        (config_hash(&own), key_digests(&own))
    };
    // A container of no unit (the test data container) carries no unit label.
    if !input.unit.is_empty() {
        labels.insert(LABEL_UNIT.into(), input.unit.clone());
    }

    // Anonymous volumes of a replaced container are mounted again by name; this is not part of
    // the configuration, so it comes after the hash.
    if !input.carried_volumes.is_empty() {
        let mut carried: Vec<(&String, &String)> = input.carried_volumes.iter().collect();
        carried.sort();
        let host_config = body.host_config.get_or_insert_with(HostConfig::default);
        let binds = host_config.binds.get_or_insert_with(Vec::new);
        for (path, volume) in carried {
            if !binds
                .iter()
                .any(|b| b.split(':').nth(1) == Some(path.as_str()))
            {
                binds.push(format!("{volume}:{path}"));
            }
        }
    }
    labels.insert(LABEL_HASH.into(), hash.clone());
    labels.insert(
        LABEL_KEYS.into(),
        serde_json::to_string(&keys).unwrap_or_default(),
    );
    body.labels = Some(labels);
    CreateRequest { body, hash, keys }
}

/// The configuration keys of a create request and a short digest of each value: `env.NAME`
/// per variable, `labels.NAME` per label, `ports` (exposed and published), `image`, and the
/// other fields of the request and of its host config in snake case (`cmd`, `restart_policy`).
/// The digest is 16 hex digits of a SHA-256, so no value (a password) is readable from it.
pub(super) fn key_digests(own: &impl serde::Serialize) -> BTreeMap<String, String> {
    let value = serde_json::to_value(own).unwrap_or(serde_json::Value::Null);
    let mut parts: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut add =
        |key: String, v: &serde_json::Value| parts.entry(key).or_default().push(v.clone());
    let fields = value.as_object().cloned().unwrap_or_default();
    for (field, v) in &fields {
        match field.as_str() {
            "Env" => {
                for item in v.as_array().into_iter().flatten() {
                    let text = item.as_str().unwrap_or_default();
                    let name = text.split_once('=').map_or(text, |(k, _)| k);
                    add(format!("env.{name}"), item);
                }
            }
            "Labels" => {
                for (k, l) in v.as_object().into_iter().flatten() {
                    add(format!("labels.{k}"), l);
                }
            }
            "HostConfig" => {
                for (k, h) in v.as_object().into_iter().flatten() {
                    let key = match k.as_str() {
                        "PortBindings" | "PublishAllPorts" => "ports".to_string(),
                        other => snake_case(other),
                    };
                    add(key, h);
                }
            }
            "ExposedPorts" => add("ports".into(), v),
            other => add(snake_case(other), v),
        }
    }
    parts
        .into_iter()
        .map(|(key, values)| {
            let text = serde_json::to_string(&canonicalize(&serde_json::Value::Array(values)))
                .unwrap_or_default();
            let digest = Sha256::digest(format!("{key}\0{text}").as_bytes());
            (key, crate::text::hex(&digest)[..16].to_string())
        })
        .collect()
}

/// `RestartPolicy` → `restart_policy`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The labels dstart puts on a network or volume it creates. The hash covers the request
/// without dstart's own labels, as it does for containers.
fn object_labels(unit: &str, container: &str, hash: String) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_UNIT.to_string(), unit.to_string()),
        (LABEL_CONTAINER.to_string(), container.to_string()),
        (LABEL_HASH.to_string(), hash),
    ])
}

/// The create request of the network of `unit`. It belongs to the unit, not to one of its
/// containers: `dstart.container` is empty.
pub fn network_request(name: &str, unit: &str) -> NetworkRequest {
    let mut req = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        ..Default::default()
    };
    req.labels = Some(object_labels(unit, "", config_hash(&req)));
    NetworkRequest(req)
}

/// The create request of the overlay network of `unit` in swarm mode: attachable, so that
/// helper containers and tests can join the services on it.
pub fn overlay_network_request(name: &str, unit: &str) -> NetworkRequest {
    let mut req = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("overlay".to_string()),
        attachable: Some(true),
        ..Default::default()
    };
    req.labels = Some(object_labels(unit, "", config_hash(&req)));
    NetworkRequest(req)
}

/// The create request of a named volume of `unit`, declared by the spec of `container`.
pub fn volume_request(name: &str, unit: &str, container: &str) -> VolumeRequest {
    let mut req = VolumeCreateRequest {
        name: Some(name.to_string()),
        ..Default::default()
    };
    req.labels = Some(object_labels(unit, container, config_hash(&req)));
    VolumeRequest(req)
}

/// The SHA-256 of the canonical JSON (keys sorted) of a create request.
pub fn config_hash(body: &impl serde::Serialize) -> String {
    let value = serde_json::to_value(body).unwrap_or(serde_json::Value::Null);
    let canonical = canonicalize(&value);
    let text = serde_json::to_string(&canonical).unwrap_or_default();
    crate::text::hex(&Sha256::digest(text.as_bytes()))
}

fn canonicalize(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, serde_json::Value> =
                map.iter().map(|(k, v)| (k, canonicalize(v))).collect();
            let mut out = serde_json::Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(canonicalize).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::config::source::{Origin, PathSeg, Source};
    use crate::unit::container::container_from_value;

    pub(in crate::engine) fn spec(yaml: &str) -> ContainerSpec {
        let source = Arc::new(Source::new(
            "t.yaml",
            format!(
                "c:\n{}",
                yaml.lines().fold(String::new(), |mut acc, l| {
                    use std::fmt::Write as _;
                    let _ = writeln!(acc, "  {l}");
                    acc
                })
            ),
        ));
        let docs = source.documents().unwrap();
        let v = docs[0].get("c").unwrap().clone();
        container_from_value(
            "web",
            &v,
            &Origin::new(source, 0, vec![PathSeg::Key("c".into())]),
        )
        .unwrap()
    }

    fn input() -> ConvertInput {
        ConvertInput {
            unit: "site".into(),
            network: Some("dstart-site".into()),
            ..Default::default()
        }
    }

    #[test]
    fn compose_keys_become_one_create_request() {
        let s = spec(
            "image: busybox\ncommand: [httpd, -f]\nenv: {A: b}\nports: ['6379', '127.0.0.1:8080:80']\nvolumes: ['named:/n:ro', '/anon']\nlabels: {team: ops}\nstartup: {restart_policy: {Name: always}}\n",
        );
        let r = create_request(&s, &input());
        let b = &r.body;
        assert_eq!(b.image.as_deref(), Some("busybox"));
        assert_eq!(b.cmd.as_ref().unwrap(), &["httpd", "-f"]);
        assert_eq!(b.env.as_ref().unwrap(), &["A=b"]);
        assert_eq!(b.exposed_ports.as_ref().unwrap(), &["6379/tcp", "80/tcp"]);
        assert_eq!(b.volumes.as_ref().unwrap(), &["/anon"]);
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(h.binds.as_ref().unwrap(), &["named:/n:ro"]);
        let pb = h.port_bindings.as_ref().unwrap();
        assert_eq!(
            pb["6379/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert_eq!(
            pb["80/tcp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(h.network_mode.as_deref(), Some("dstart-site"));
        let ep = &b
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap()["dstart-site"];
        assert_eq!(ep.aliases.as_ref().unwrap(), &["web"]);
        let labels = b.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_UNIT], "site");
        assert_eq!(labels[LABEL_CONTAINER], "web");
        assert_eq!(labels[LABEL_HASH], r.hash);
        assert_eq!(labels["team"], "ops");
    }

    #[test]
    fn hash_is_stable_and_changes_with_the_spec() {
        let a = create_request(
            &spec("image: busybox\nenv: {A: '1', B: '2'}\nlabels: {x: '1', y: '2'}\n"),
            &input(),
        );
        let b = create_request(
            &spec("image: busybox\nenv: {A: '1', B: '2'}\nlabels: {x: '1', y: '2'}\n"),
            &input(),
        );
        assert_eq!(a.hash, b.hash);
        let c = create_request(
            &spec("image: busybox\nenv: {A: '1', B: '3'}\nlabels: {x: '1', y: '2'}\n"),
            &input(),
        );
        assert_ne!(a.hash, c.hash);
        assert_eq!(a.hash.len(), 64);
    }

    #[test]
    fn key_digests_name_what_changed_and_hide_values() {
        let changed = |a: &str, b: &str| -> Vec<String> {
            let (a, b) = (
                create_request(&spec(a), &input()).keys,
                create_request(&spec(b), &input()).keys,
            );
            let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
            keys.sort();
            keys.dedup();
            keys.retain(|k| a.get(k) != b.get(k));
            keys
        };
        let base = "image: busybox\nenv: {A: '1', SECRET_TOKEN: hunter2}\nports: ['8080:80']\n";
        assert!(changed(base, base).is_empty());
        assert_eq!(
            changed(
                base,
                "image: busybox\nenv: {A: '2', SECRET_TOKEN: hunter2}\nports: ['8081:80']\n"
            ),
            ["env.A", "ports"]
        );
        assert_eq!(
            changed(base, "image: other\nenv: {A: '1'}\nports: ['8080:80']\n"),
            ["env.SECRET_TOKEN", "image"]
        );
        let r = create_request(&spec(base), &input());
        let label = &r.body.labels.unwrap()[LABEL_KEYS];
        assert!(!label.contains("hunter2"), "{label}");
        assert!(label.contains("\"env.SECRET_TOKEN\":"), "{label}");
    }

    #[test]
    fn the_unit_running_a_container_is_not_part_of_its_hash() {
        let s = spec("image: busybox\n");
        let a = create_request(&s, &input());
        let other = ConvertInput {
            unit: "other".into(),
            network: Some("dstart-other".into()),
            ..Default::default()
        };
        let b = create_request(&s, &other);
        assert_eq!(a.hash, b.hash);
        assert_eq!(b.body.labels.unwrap()[LABEL_UNIT], "other");
    }

    #[test]
    fn carried_volumes_do_not_change_the_hash() {
        let s = spec("image: busybox\nvolumes: ['/data']\n");
        let plain = create_request(&s, &input());
        let mut carried = input();
        carried
            .carried_volumes
            .insert("/data".into(), "f".repeat(64));
        let again = create_request(&s, &carried);
        assert_eq!(plain.hash, again.hash);
        assert_eq!(
            again.body.host_config.unwrap().binds.unwrap(),
            vec![format!("{}:/data", "f".repeat(64))]
        );
    }

    #[test]
    fn a_pseudonamed_container_keeps_its_key_as_alias() {
        let s = spec("image: busybox\n");
        let mut i = input();
        i.alias = Some("redis".into());
        let r = create_request(&s, &i);
        let ep = &r.body.networking_config.unwrap().endpoints_config.unwrap()["dstart-site"];
        assert_eq!(ep.aliases.as_ref().unwrap(), &["web", "redis"]);
    }

    #[test]
    fn links_go_with_the_unit_network_endpoint() {
        let s = spec("image: busybox\nstartup: {links: {db: database}}\n");
        let r = create_request(&s, &input());
        let ep = &r.body.networking_config.unwrap().endpoints_config.unwrap()["dstart-site"];
        assert_eq!(ep.links.as_ref().unwrap(), &["db:database"]);
        assert!(r.body.host_config.unwrap().links.is_none());

        let own_network = spec("image: busybox\nstartup: {links: [db], network_mode: bridge}\n");
        let r = create_request(&own_network, &input());
        assert!(r.body.networking_config.is_none());
        assert_eq!(r.body.host_config.unwrap().links.unwrap(), ["db:db"]);
    }

    #[test]
    fn links_are_part_of_the_hash_but_not_the_units_network() {
        let linked = spec("image: busybox\nstartup: {links: {db: database}}\n");
        let plain = create_request(&spec("image: busybox\n"), &input());
        let a = create_request(&linked, &input());
        assert_ne!(plain.hash, a.hash);
        let other = ConvertInput {
            unit: "other".into(),
            network: Some("dstart-other".into()),
            ..Default::default()
        };
        assert_eq!(a.hash, create_request(&linked, &other).hash);
    }

    #[test]
    fn a_container_of_no_unit_has_no_unit_label() {
        let s = spec("image: busybox\n");
        let r = create_request(
            &s,
            &ConvertInput {
                network: None,
                ..Default::default()
            },
        );
        assert!(!r.body.labels.unwrap().contains_key(LABEL_UNIT));
    }

    #[test]
    fn explicit_network_mode_skips_the_unit_network() {
        let r = create_request(
            &spec("image: busybox\nstartup: {network_mode: host}\n"),
            &input(),
        );
        assert_eq!(
            r.body.host_config.unwrap().network_mode.as_deref(),
            Some("host")
        );
        assert!(r.body.networking_config.is_none());
    }

    #[test]
    fn networks_and_volumes_carry_the_three_labels() {
        let net = network_request("dstart-site", "site").0;
        assert_eq!(network_request("dstart-site", "site").name(), "dstart-site");
        let labels = net.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_UNIT], "site");
        assert_eq!(
            labels[LABEL_CONTAINER], "",
            "the network belongs to the unit"
        );
        assert_eq!(labels[LABEL_HASH].len(), 64);
        assert_eq!(net.driver.as_deref(), Some("bridge"));

        let vol = volume_request("site-data", "site", "db").0;
        assert_eq!(
            volume_request("site-data", "site", "db").name(),
            "site-data"
        );
        let labels = vol.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_UNIT], "site");
        assert_eq!(labels[LABEL_CONTAINER], "db");
        assert_eq!(
            labels[LABEL_HASH],
            volume_request("site-data", "other", "web")
                .0
                .labels
                .unwrap()[LABEL_HASH],
            "who declared the volume is not part of its configuration"
        );
        assert_ne!(
            labels[LABEL_HASH],
            volume_request("site-logs", "site", "db").0.labels.unwrap()[LABEL_HASH]
        );
    }

    #[test]
    fn binds_use_resolved_paths() {
        let s = spec("image: busybox\nvolumes: ['./rel:/rel:ro']\n");
        let mut i = input();
        i.binds.push(ResolvedBind {
            host: "/conf/rel".into(),
            container: "/rel".into(),
            read_only: true,
        });
        let r = create_request(&s, &i);
        assert_eq!(
            r.body.host_config.unwrap().binds.unwrap(),
            vec!["/conf/rel:/rel:ro".to_string()]
        );
    }
}
