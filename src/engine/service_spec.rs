//! A container spec → the service spec of swarm mode (pure, so it is tested here), the way
//! `convert.rs` makes a container's create request.
//!
//! The service runs the image by its ID: the engine pulls a tag before every task it starts
//! (and a registry that cannot be reached costs each start its timeouts), but never an image
//! named by its ID. The reference the unit wrote is kept in the label `dstart.image`.
//!
//! The service carries `dstart.unit`, `dstart.container`, `dstart.config-hash` and
//! `dstart.config-keys` like a container; the hash covers the whole spec without them, the
//! replica count included, so an unchanged unit is a no-op and a changed one an update.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, Limit, Mount, MountTmpfsOptions, MountType, MountVolumeOptions,
    NetworkAttachmentConfig, ResourceObject, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets,
    TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::convert::{
    LABEL_CONTAINER, LABEL_HASH, LABEL_KEYS, LABEL_UNIT, ResolvedBind, config_hash, key_digests,
    opt_vec, ulimits,
};
use crate::unit::container::deploy::{DeploySpec, FailureAction, Resources, UpdateOrder};
use crate::unit::container::{ContainerSpec, MountSpec};
use crate::unit::values::{ByteSize, Cpus};

/// The reference the unit names the image by (the service runs its ID).
pub const LABEL_IMAGE: &str = "dstart.image";
/// The replica count of a service that `stop` scaled to 0, for `start` to scale back to.
pub const LABEL_REPLICAS: &str = "dstart.replicas";

/// Everything besides the spec that shapes the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceInput {
    /// The unit (label `dstart.unit`).
    pub unit: String,
    /// The unit's overlay network.
    pub network: String,
    /// Another name the service answers to on the network (a test copy keeps its key).
    pub alias: Option<String>,
    /// The image ID the reference of the spec names now.
    pub image_id: String,
    /// Binds of the spec, in order, with resolved host paths.
    pub binds: Vec<ResolvedBind>,
    /// The Swarm secrets of the spec's `secrets:`.
    pub secrets: Vec<ServiceSecret>,
    /// A test copy's services run on this node (an ID: the manager dstart talks to) and
    /// publish their ports there in host mode on ephemeral ports: its checks are made from
    /// this host, which reaches neither the overlay network nor (without IPVS) the routing
    /// mesh, and its ports must not take the live unit's.
    pub test_node: Option<String>,
}

/// A secret of the spec as the swarm holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSecret {
    /// The name in the spec: the file `/run/secrets/<name>` in the container.
    pub name: String,
    /// The secret's name on the swarm (a new content has a new name).
    pub swarm_name: String,
    /// Its ID (empty when it does not exist yet: `run --plan`).
    pub id: String,
}

/// A service spec and its configuration hash, for [`Engine::create_service`](super::Engine).
#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub(super) spec: ServiceSpec,
    pub hash: String,
    /// The digest of each configuration key (see [`LABEL_KEYS`]).
    pub keys: BTreeMap<String, String>,
    pub replicas: u64,
}

impl ServiceRequest {
    pub fn name(&self) -> &str {
        self.spec.name.as_deref().unwrap_or_default()
    }

    /// The same service with `replicas` tasks (the hash keeps the unit's count).
    #[must_use]
    pub fn with_replicas(mut self, replicas: u64) -> ServiceRequest {
        self.spec.mode = Some(mode(replicas));
        self.replicas = replicas;
        self
    }
}

fn mode(replicas: u64) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
        }),
        ..Default::default()
    }
}

fn nanos(seconds: f64) -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    let n = (seconds * 1e9).round() as i64;
    n
}

fn limit(r: Resources) -> Option<Limit> {
    (r.cpus.is_some() || r.memory.is_some()).then(|| Limit {
        nano_cpus: r.cpus.map(Cpus::nano),
        memory_bytes: r.memory.map(ByteSize::get),
        pids: None,
    })
}

fn reservation(r: Resources) -> Option<ResourceObject> {
    (r.cpus.is_some() || r.memory.is_some()).then(|| ResourceObject {
        nano_cpus: r.cpus.map(Cpus::nano),
        memory_bytes: r.memory.map(ByteSize::get),
        generic_resources: None,
    })
}

/// The labels dstart puts on a named volume that a task creates.
fn volume_labels(unit: &str, container: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_UNIT.to_string(), unit.to_string()),
        (LABEL_CONTAINER.to_string(), container.to_string()),
    ])
}

fn mounts(spec: &ContainerSpec, input: &ServiceInput) -> Vec<Mount> {
    let mut binds = input.binds.iter();
    let mut out = Vec::new();
    for m in &spec.mounts {
        match m {
            MountSpec::Bind {
                container,
                read_only,
                ..
            } => {
                let host = binds
                    .next()
                    .filter(|b| b.container == *container)
                    .map(|b| b.host.clone());
                if spec.is_secret_path(container) {
                    // A Swarm secret instead (see `secrets`).
                    continue;
                }
                out.push(Mount {
                    target: Some(container.clone()),
                    source: host,
                    typ: Some(MountType::BIND),
                    read_only: Some(*read_only),
                    ..Default::default()
                });
            }
            MountSpec::Named {
                name,
                container,
                read_only,
            } => out.push(Mount {
                target: Some(container.clone()),
                source: Some(name.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(*read_only),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(volume_labels(&input.unit, &spec.name)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            MountSpec::Anonymous { container } => out.push(Mount {
                target: Some(container.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }),
        }
    }
    for (path, options) in &spec.host.tmpfs {
        out.push(Mount {
            target: Some(path.clone()),
            typ: Some(MountType::TMPFS),
            tmpfs_options: (!options.is_empty()).then(MountTmpfsOptions::default),
            ..Default::default()
        });
    }
    out
}

fn ports(spec: &ContainerSpec, host_mode: bool) -> Vec<EndpointPortConfig> {
    spec.ports
        .iter()
        .filter(|p| !p.is_expose_only())
        .map(|p| EndpointPortConfig {
            name: None,
            protocol: Some(match p.protocol.as_str() {
                "udp" => EndpointPortConfigProtocolEnum::UDP,
                "sctp" => EndpointPortConfigProtocolEnum::SCTP,
                _ => EndpointPortConfigProtocolEnum::TCP,
            }),
            target_port: Some(i64::from(p.container_port)),
            published_port: p.host_port.filter(|_| !host_mode).map(i64::from),
            publish_mode: Some(if host_mode {
                EndpointPortConfigPublishModeEnum::HOST
            } else {
                EndpointPortConfigPublishModeEnum::INGRESS
            }),
        })
        .collect()
}

/// `host:ip` (the engine's extra hosts) → `ip host` (a service's hosts file lines).
fn hosts_line(extra: &str) -> String {
    match extra.split_once(':') {
        Some((host, ip)) => format!("{ip} {host}"),
        None => extra.to_string(),
    }
}

fn restart_policy(spec: &ContainerSpec) -> TaskSpecRestartPolicy {
    let condition = match spec.host.restart_policy.as_ref().map(|r| r.name.as_str()) {
        Some("no") => TaskSpecRestartPolicyConditionEnum::NONE,
        Some("on-failure") => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        _ => TaskSpecRestartPolicyConditionEnum::ANY,
    };
    TaskSpecRestartPolicy {
        condition: Some(condition),
        max_attempts: spec
            .host
            .restart_policy
            .as_ref()
            .and_then(|r| r.maximum_retry_count),
        ..Default::default()
    }
}

/// The placement constraints of `deploy`, and for a test copy the node it runs on.
fn placement(d: &DeploySpec, test_node: Option<&str>) -> Option<TaskSpecPlacement> {
    let mut constraints: Vec<String> = d
        .constraints
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    if let Some(node) = test_node {
        constraints.push(format!("node.id == {node}"));
    }
    (!constraints.is_empty()).then(|| TaskSpecPlacement {
        constraints: Some(constraints),
        ..Default::default()
    })
}

/// Builds the service spec of `spec`.
pub fn service_request(spec: &ContainerSpec, input: &ServiceInput) -> ServiceRequest {
    let d = &spec.deploy;
    let h = &spec.host;
    // A service's `Command` replaces the image's entrypoint and `Args` its command.
    let container = TaskSpecContainerSpec {
        image: Some(input.image_id.clone()),
        labels: (!spec.labels.is_empty()).then(|| {
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        command: spec.entrypoint.clone(),
        args: spec.command.clone(),
        hostname: spec.hostname.clone(),
        env: opt_vec(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        groups: opt_vec(h.group_add.clone()),
        tty: spec.tty.then_some(true),
        open_stdin: spec.stdin_open.then_some(true),
        read_only: h.read_only.then_some(true),
        mounts: opt_vec(mounts(spec, input)),
        stop_signal: spec.stop_signal.clone(),
        stop_grace_period: Some(i64::from(spec.stop_timeout) * 1_000_000_000),
        health_check: super::convert::health_config(spec),
        hosts: opt_vec(h.extra_hosts.iter().map(|e| hosts_line(e)).collect()),
        dns_config: (!h.dns.is_empty() || !h.dns_search.is_empty()).then(|| {
            TaskSpecContainerSpecDnsConfig {
                nameservers: opt_vec(h.dns.clone()),
                search: opt_vec(h.dns_search.clone()),
                options: None,
            }
        }),
        init: h.init,
        sysctls: (!h.sysctls.is_empty()).then(|| {
            h.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        capability_add: opt_vec(h.cap_add.clone()),
        capability_drop: opt_vec(h.cap_drop.clone()),
        ulimits: ulimits(h),
        secrets: opt_vec(
            input
                .secrets
                .iter()
                .map(|sec| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(sec.name.clone()),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o444),
                    }),
                    secret_id: Some(sec.id.clone()),
                    secret_name: Some(sec.swarm_name.clone()),
                })
                .collect(),
        ),
        ..Default::default()
    };
    let resources = TaskSpecResources {
        limits: limit(d.limits),
        reservations: reservation(d.reservations),
        ..Default::default()
    };
    let mut aliases = vec![spec.name.clone()];
    if let Some(a) = &input.alias {
        if *a != spec.name {
            aliases.push(a.clone());
        }
    }
    let mut service = ServiceSpec {
        name: Some(spec.name.clone()),
        labels: None,
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(resources),
            restart_policy: Some(restart_policy(spec)),
            placement: placement(d, input.test_node.as_deref()),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(input.network.clone()),
                aliases: Some(aliases),
                driver_opts: None,
            }]),
            log_driver: h
                .log_config
                .as_ref()
                .map(|(driver, options)| TaskSpecLogDriver {
                    name: Some(driver.clone()),
                    options: Some(
                        options
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                }),
            ..Default::default()
        }),
        mode: Some(mode(d.replicas)),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(i64::try_from(d.update.parallelism).unwrap_or(i64::MAX)),
            delay: Some(nanos(d.update.delay.get())),
            failure_action: Some(match d.update.failure_action {
                FailureAction::Pause => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
                FailureAction::Continue => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
                FailureAction::Rollback => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
            }),
            order: Some(match d.update.order {
                UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
                UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: None,
            ports: opt_vec(ports(spec, input.test_node.is_some())),
        }),
        ..Default::default()
    };
    let hash = config_hash(&service);
    let keys = service_keys(&service);
    let mut labels = volume_labels(&input.unit, &spec.name);
    labels.insert(LABEL_HASH.into(), hash.clone());
    labels.insert(
        LABEL_KEYS.into(),
        serde_json::to_string(&keys).unwrap_or_default(),
    );
    if let Some(image) = &spec.image {
        labels.insert(LABEL_IMAGE.into(), image.clone());
    }
    service.labels = Some(labels);
    ServiceRequest {
        spec: service,
        hash,
        keys,
        replicas: d.replicas,
    }
}

/// A named volume a helper task mounts: its name on the engine, the path, read only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperVolume {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

/// A one-off helper service (`sleep`, no restarts) pinned to the node `node` (an ID) with the
/// volumes mounted: the task holds them on the node that has them while dstart works on them.
pub fn helper_request(
    name: &str,
    unit: &str,
    image_id: &str,
    node: &str,
    volumes: &[HelperVolume],
) -> ServiceRequest {
    let spec = ServiceSpec {
        name: Some(name.to_string()),
        labels: Some(HashMap::from([
            (LABEL_UNIT.to_string(), unit.to_string()),
            (LABEL_CONTAINER.to_string(), name.to_string()),
        ])),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image_id.to_string()),
                command: Some(vec!["sleep".into(), "86400".into()]),
                mounts: Some(
                    volumes
                        .iter()
                        .map(|v| Mount {
                            target: Some(v.path.clone()),
                            source: Some(v.volume.clone()),
                            typ: Some(MountType::VOLUME),
                            read_only: Some(v.read_only),
                            ..Default::default()
                        })
                        .collect(),
                ),
                stop_grace_period: Some(0),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec![format!("node.id == {node}")]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(mode(1)),
        ..Default::default()
    };
    ServiceRequest {
        hash: config_hash(&spec),
        keys: BTreeMap::new(),
        replicas: 1,
        spec,
    }
}

/// The configuration keys of a service: those of its container (`env.NAME`, `image`, `args`,
/// `mounts`, ...) as for a container, and `replicas`, `resources`, `placement`, `ports`,
/// `update_config`, `restart_policy`, `networks`, `log_driver`.
fn service_keys(service: &ServiceSpec) -> BTreeMap<String, String> {
    let task = service.task_template.clone().unwrap_or_default();
    let mut keys = key_digests(&task.container_spec.unwrap_or_default());
    let extra = [
        ("replicas", serde_json::to_value(&service.mode)),
        ("resources", serde_json::to_value(&task.resources)),
        ("placement", serde_json::to_value(&task.placement)),
        ("restart_policy", serde_json::to_value(&task.restart_policy)),
        ("networks", serde_json::to_value(&task.networks)),
        ("log_driver", serde_json::to_value(&task.log_driver)),
        (
            "update_config",
            serde_json::to_value(&service.update_config),
        ),
        ("ports", serde_json::to_value(&service.endpoint_spec)),
    ];
    for (key, value) in extra {
        let value = value.unwrap_or_default();
        if !value.is_null() {
            keys.insert(key.to_string(), config_hash(&value)[..16].to_string());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::convert::tests::spec;

    fn input() -> ServiceInput {
        ServiceInput {
            unit: "site".into(),
            network: "dstart-site".into(),
            alias: None,
            image_id: "sha256:abc".into(),
            binds: vec![ResolvedBind {
                host: "/srv/www".into(),
                container: "/www".into(),
                read_only: true,
            }],
            secrets: Vec::new(),
            test_node: None,
        }
    }

    #[test]
    fn a_container_spec_becomes_a_service() {
        let s = spec(
            "image: me/web:1\nentrypoint: [httpd]\ncommand: -f -p 80\nenv: {A: '1'}\nports: ['8080:80', '9000/udp']\nvolumes: ['/srv/www:/www:ro', 'data:/data', '/cache']\nstop_timeout: 30\ndeploy:\n  replicas: 2\n  placement: {constraints: ['node.role == manager']}\n  resources: {limits: {cpus: 0.5, memory: 64m}}\n  update_config: {parallelism: 1, delay: 2, order: stop-first}\n",
        );
        let req = service_request(&s, &input());
        let json = serde_json::to_value(&req.spec).unwrap();
        let c = &json["TaskTemplate"]["ContainerSpec"];
        assert_eq!(c["Image"], "sha256:abc");
        assert_eq!(c["Command"], serde_json::json!(["httpd"]));
        assert_eq!(c["Args"], serde_json::json!(["-f", "-p", "80"]));
        assert_eq!(c["Env"], serde_json::json!(["A=1"]));
        assert_eq!(c["StopGracePeriod"], 30_000_000_000_i64);
        assert_eq!(c["Mounts"][0]["Type"], "bind");
        assert_eq!(c["Mounts"][0]["Source"], "/srv/www");
        assert_eq!(c["Mounts"][0]["ReadOnly"], true);
        assert_eq!(c["Mounts"][1]["Source"], "data");
        assert_eq!(
            c["Mounts"][1]["VolumeOptions"]["Labels"]["dstart.unit"],
            "site"
        );
        assert!(c["Mounts"][2].get("Source").is_none());
        assert_eq!(json["Mode"]["Replicated"]["Replicas"], 2);
        assert_eq!(
            json["TaskTemplate"]["Placement"]["Constraints"][0],
            "node.role == manager"
        );
        assert_eq!(
            json["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"],
            500_000_000
        );
        assert_eq!(json["UpdateConfig"]["Order"], "stop-first");
        assert_eq!(json["UpdateConfig"]["Delay"], 2_000_000_000_i64);
        assert_eq!(json["TaskTemplate"]["Networks"][0]["Target"], "dstart-site");
        assert_eq!(
            json["TaskTemplate"]["Networks"][0]["Aliases"],
            serde_json::json!(["web"])
        );
        let ports = &json["EndpointSpec"]["Ports"];
        assert_eq!(ports[0]["PublishedPort"], 8080);
        assert_eq!(ports[0]["TargetPort"], 80);
        assert!(ports[1].get("PublishedPort").is_none());
        assert_eq!(ports[1]["Protocol"], "udp");
        assert_eq!(json["Labels"]["dstart.image"], "me/web:1");
        assert_eq!(json["Labels"]["dstart.config-hash"], req.hash.as_str());
        assert_eq!(req.replicas, 2);
    }

    #[test]
    fn a_test_copy_publishes_on_its_node_in_host_mode() {
        let s = spec(
            "image: x\nports: ['8080:80', '9000/udp']\ndeploy:\n  placement: {constraints: ['node.role == manager']}\n",
        );
        let mut i = input();
        i.test_node = Some("node1".into());
        let json = serde_json::to_value(&service_request(&s, &i).spec).unwrap();
        let ports = &json["EndpointSpec"]["Ports"];
        for p in [&ports[0], &ports[1]] {
            assert_eq!(p["PublishMode"], "host", "{p}");
            assert!(p.get("PublishedPort").is_none(), "an ephemeral port: {p}");
        }
        assert_eq!(ports[0]["TargetPort"], 80);
        assert_eq!(
            json["TaskTemplate"]["Placement"]["Constraints"],
            serde_json::json!(["node.role == manager", "node.id == node1"])
        );
        let live = serde_json::to_value(&service_request(&s, &input()).spec).unwrap();
        assert_eq!(live["EndpointSpec"]["Ports"][0]["PublishMode"], "ingress");
        assert_eq!(live["EndpointSpec"]["Ports"][0]["PublishedPort"], 8080);
    }

    #[test]
    fn secrets_are_swarm_secrets_not_binds() {
        let s = spec("image: x\nsecrets: {db_password: secrets/db.txt}\n");
        let mut i = input();
        i.binds = vec![ResolvedBind {
            host: "/conf/secrets/db.txt".into(),
            container: "/run/secrets/db_password".into(),
            read_only: true,
        }];
        i.secrets = vec![ServiceSecret {
            name: "db_password".into(),
            swarm_name: "site_db_password_0123".into(),
            id: "sid".into(),
        }];
        let json = serde_json::to_value(&service_request(&s, &i).spec).unwrap();
        let c = &json["TaskTemplate"]["ContainerSpec"];
        assert!(c.get("Mounts").is_none(), "{c}");
        assert_eq!(c["Secrets"][0]["SecretName"], "site_db_password_0123");
        assert_eq!(c["Secrets"][0]["SecretID"], "sid");
        assert_eq!(c["Secrets"][0]["File"]["Name"], "db_password");
    }

    #[test]
    fn defaults_are_one_replica_and_start_first() {
        let req = service_request(&spec("image: x\n"), &input());
        let json = serde_json::to_value(&req.spec).unwrap();
        assert_eq!(json["Mode"]["Replicated"]["Replicas"], 1);
        assert_eq!(json["UpdateConfig"]["Order"], "start-first");
        assert_eq!(json["UpdateConfig"]["Parallelism"], 1);
    }

    #[test]
    fn the_hash_names_what_changed() {
        let base = service_request(&spec("image: x\nenv: {A: '1', B: '2'}\n"), &input());
        let same = service_request(&spec("image: x\nenv: {A: '1', B: '2'}\n"), &input());
        assert_eq!(base.hash, same.hash);
        let changed = service_request(
            &spec("image: x\nenv: {A: '1', B: '3'}\ndeploy: {replicas: 3}\n"),
            &input(),
        );
        assert_ne!(base.hash, changed.hash);
        assert_eq!(
            crate::plan::changed_keys(&base.keys, &changed.keys),
            ["env.B", "replicas"]
        );
        let mut other = input();
        other.image_id = "sha256:def".into();
        let rebuilt = service_request(&spec("image: x\nenv: {A: '1', B: '2'}\n"), &other);
        assert_eq!(
            crate::plan::changed_keys(&base.keys, &rebuilt.keys),
            ["image"]
        );
        // Scaling keeps the hash: `stop` scales to 0 without changing the configuration.
        assert_eq!(base.clone().with_replicas(0).hash, base.hash);
    }
}
