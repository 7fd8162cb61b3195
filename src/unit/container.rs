//! A container spec: the raw YAML shapes (docker-py names of ORIGINAL §2 and the compose-like
//! keys of seed 000) and the engine-neutral [`ContainerSpec`] they normalize into.
//!
//! Two keys that say the same thing (`image` and `creation.image`, `env` and
//! `creation.environment`, ...) may not both be given: dstart does not guess which one wins.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::checks::{CustomTest, DaemonChecks, JobCheck, JobRun};
pub use crate::unit::forms::{
    BindFull, BindTarget, BindsValue, EnvValue, ExtraHostsValue, HostPortValue, LabelsValue,
    LinksValue, PortText, Scalar, Size, StrKey, StringOrList, TmpfsValue, UserText,
};

// ---------------------------------------------------------------------------------------------
// Raw shapes

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    /// The build context, relative to the configuration directory (or absolute).
    pub path: Option<String>,
    /// The image name to build.
    pub tag: Option<String>,
    /// The Dockerfile inside the context (default `Dockerfile`, or a rendered
    /// `Dockerfile.tera` / `Dockerfile.j2`).
    pub dockerfile: Option<String>,
    pub rm: Option<bool>,
    pub nocache: Option<bool>,
    pub pull: Option<bool>,
    pub forcerm: Option<bool>,
    pub buildargs: Option<IndexMap<String, Scalar>>,
    pub labels: Option<IndexMap<String, Scalar>>,
    pub target: Option<String>,
    pub network_mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicyValue {
    #[serde(alias = "name")]
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(alias = "maximum_retry_count")]
    #[serde(rename = "MaximumRetryCount")]
    pub maximum_retry_count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UlimitValue {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfigValue {
    #[serde(rename = "type")]
    pub driver: String,
    #[serde(default)]
    pub config: IndexMap<String, Scalar>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckValue {
    pub test: StringOrList,
    pub interval: Option<f64>,
    pub timeout: Option<f64>,
    pub retries: Option<i64>,
    pub start_period: Option<f64>,
}

/// docker-py `create_container` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreation {
    pub image: Option<String>,
    /// The tag of `image` (docker-py's pull tag).
    pub tag: Option<String>,
    pub name: Option<String>,
    pub command: Option<StringOrList>,
    pub entrypoint: Option<StringOrList>,
    pub environment: Option<EnvValue>,
    /// Container paths: anonymous volumes (or targets of `startup.binds`).
    pub volumes: Option<Vec<String>>,
    pub ports: Option<Vec<PortText>>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub user: Option<UserText>,
    pub working_dir: Option<String>,
    pub labels: Option<LabelsValue>,
    pub tty: Option<bool>,
    pub stdin_open: Option<bool>,
    pub detach: Option<bool>,
    pub mem_limit: Option<Size>,
    pub memswap_limit: Option<Size>,
    pub cpu_shares: Option<i64>,
    pub cpuset: Option<String>,
    pub volumes_from: Option<StringOrList>,
    pub dns: Option<StringOrList>,
    pub network_disabled: Option<bool>,
    pub mac_address: Option<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthcheckValue>,
}

/// docker-py `start` arguments (host configuration).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStartup {
    pub binds: Option<BindsValue>,
    pub port_bindings: Option<IndexMap<StrKey, HostPortValue>>,
    pub publish_all_ports: Option<bool>,
    pub links: Option<LinksValue>,
    pub privileged: Option<bool>,
    pub dns: Option<StringOrList>,
    pub dns_search: Option<StringOrList>,
    pub volumes_from: Option<StringOrList>,
    pub network_mode: Option<String>,
    pub restart_policy: Option<RestartPolicyValue>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub devices: Option<Vec<String>>,
    pub extra_hosts: Option<ExtraHostsValue>,
    pub read_only: Option<bool>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub security_opt: Option<Vec<String>>,
    pub ulimits: Option<Vec<UlimitValue>>,
    pub tmpfs: Option<TmpfsValue>,
    pub sysctls: Option<IndexMap<String, Scalar>>,
    pub shm_size: Option<Size>,
    pub mem_limit: Option<Size>,
    pub memswap_limit: Option<Size>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub group_add: Option<Vec<Scalar>>,
    pub init: Option<bool>,
    pub log_config: Option<LogConfigValue>,
    pub oom_kill_disable: Option<bool>,
    pub userns_mode: Option<String>,
}

/// A container spec as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContainer {
    pub build: Option<RawBuild>,
    pub creation: Option<RawCreation>,
    pub startup: Option<RawStartup>,
    pub image: Option<String>,
    pub command: Option<StringOrList>,
    pub entrypoint: Option<StringOrList>,
    pub env: Option<EnvValue>,
    pub ports: Option<Vec<PortText>>,
    pub volumes: Option<Vec<String>>,
    pub labels: Option<LabelsValue>,
    pub working_dir: Option<String>,
    pub user: Option<UserText>,
    pub daemon: Option<DaemonChecks>,
    pub job: Option<JobCheck>,
    pub jobs: Option<IndexMap<String, JobRun>>,
    pub tests: Option<IndexMap<String, CustomTest>>,
    pub backup: Option<crate::unit::backup::BackupSpec>,
    pub restore: Option<crate::unit::backup::RestoreSpec>,
}

// ---------------------------------------------------------------------------------------------
// Normalized spec

/// How to build the image of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    /// The context directory as written (resolved against the configuration directory when
    /// the build runs).
    pub path: String,
    pub tag: Option<String>,
    pub dockerfile: Option<String>,
    pub rm: bool,
    pub nocache: bool,
    pub pull: bool,
    pub forcerm: bool,
    pub buildargs: IndexMap<String, String>,
    pub labels: IndexMap<String, String>,
    pub target: Option<String>,
    pub network_mode: Option<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: Option<String>,
    /// `None`: an ephemeral port chosen by the engine.
    pub host_port: Option<u16>,
}

impl PortSpec {
    /// `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

/// A mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host path (may hold `${CONFIG_DIR}` / `${PWD}`; relative paths are against the
    /// configuration directory).
    Bind {
        host: String,
        container: String,
        read_only: bool,
    },
    /// A named volume.
    Named {
        name: String,
        container: String,
        read_only: bool,
    },
    /// An anonymous volume (the container's own).
    Anonymous { container: String },
}

impl MountSpec {
    pub fn container_path(&self) -> &str {
        match self {
            MountSpec::Bind { container, .. }
            | MountSpec::Named { container, .. }
            | MountSpec::Anonymous { container } => container,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval_ns: Option<i64>,
    pub timeout_ns: Option<i64>,
    pub retries: Option<i64>,
    pub start_period_ns: Option<i64>,
}

/// Host configuration options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSpec {
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub read_only: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub devices: Vec<String>,
    pub network_mode: Option<String>,
    pub network_disabled: bool,
    pub restart_policy: Option<RestartPolicy>,
    /// (container, alias)
    pub links: Vec<(String, String)>,
    /// Container names, each with an optional `:ro`/`:rw` suffix.
    pub volumes_from: Vec<String>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub security_opt: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub tmpfs: IndexMap<String, String>,
    pub sysctls: IndexMap<String, String>,
    pub shm_size: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub group_add: Vec<String>,
    pub init: Option<bool>,
    pub log_config: Option<(String, IndexMap<String, String>)>,
    pub oom_kill_disable: Option<bool>,
    pub userns_mode: Option<String>,
}

/// Test metadata of a container (SPEC "Tests").
#[derive(Debug, Clone, Default)]
pub struct TestSpec {
    pub daemon: Option<DaemonChecks>,
    pub job: Option<JobCheck>,
    pub jobs: IndexMap<String, JobRun>,
    pub tests: IndexMap<String, CustomTest>,
}

/// A container, ready to be turned into engine requests.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The key in the composition document: the Docker container name.
    pub name: String,
    pub build: Option<BuildSpec>,
    /// The image to create from: `build.tag`, else `image` / `creation.image`.
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<PortSpec>,
    pub mounts: Vec<MountSpec>,
    pub labels: IndexMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub tty: bool,
    pub stdin_open: bool,
    pub stop_signal: Option<String>,
    pub mac_address: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub host: HostSpec,
    pub tests: TestSpec,
    /// How the generated backup archives it (`backup:`).
    pub backup: Option<crate::unit::backup::BackupSpec>,
    /// What the generated restore runs around the unpacking (`restore:`).
    pub restore: Option<crate::unit::backup::RestoreSpec>,
}

impl ContainerSpec {
    /// The containers this one needs to exist first (`volumes_from`, `links`,
    /// `network_mode: container:X`).
    pub fn dependencies(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |n: &str| {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        };
        for v in &self.host.volumes_from {
            push(strip_mode(v));
        }
        for (name, _) in &self.host.links {
            push(name);
        }
        if let Some(other) = self
            .host
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            push(other);
        }
        out
    }

    /// Container paths of the container's own volumes (anonymous and named).
    pub fn volume_paths(&self) -> Vec<String> {
        self.mounts
            .iter()
            .filter(|m| !matches!(m, MountSpec::Bind { .. }))
            .map(|m| m.container_path().to_string())
            .collect()
    }

    /// Whether the container joins the unit network (no explicit `network_mode`).
    pub fn on_unit_network(&self) -> bool {
        self.host.network_mode.is_none() && !self.host.network_disabled
    }
}

/// `web:ro` → `web`.
pub fn strip_mode(volumes_from: &str) -> &str {
    volumes_from
        .strip_suffix(":ro")
        .or_else(|| volumes_from.strip_suffix(":rw"))
        .unwrap_or(volumes_from)
}

/// Adds `:latest` to an image name without a tag (`registry:5000/img` has no tag).
pub fn with_default_tag(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Splits `repo:tag` (`registry:5000/img:1` → (`registry:5000/img`, `1`)).
pub fn split_image(image: &str) -> (String, String) {
    let full = with_default_tag(image);
    let slash = full.rfind('/').map_or(0, |i| i + 1);
    match full[slash..].rfind(':') {
        Some(i) => (
            full[..slash + i].to_string(),
            full[slash + i + 1..].to_string(),
        ),
        None => (full, "latest".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Normalization

/// Whether `name` can be a Docker container name.
pub fn valid_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn parse_size(origin: &Origin, key: &str, size: &Size) -> Result<i64, ConfigError> {
    match size {
        Size::Bytes(b) => Ok(*b),
        Size::Text(t) => {
            let t = t.trim().to_ascii_lowercase();
            let t = t.strip_suffix('b').unwrap_or(&t);
            let (num, mult) = match t.chars().last() {
                Some('k') => (&t[..t.len() - 1], 1i64 << 10),
                Some('m') => (&t[..t.len() - 1], 1i64 << 20),
                Some('g') => (&t[..t.len() - 1], 1i64 << 30),
                _ => (t, 1),
            };
            num.trim().parse::<i64>().map(|n| n * mult).map_err(|_| {
                origin.key(key).invalid(format!(
                    "`{key}`: invalid size `{t}` (use bytes or a number with k, m or g)"
                ))
            })
        }
    }
}

/// Splits a command string like a POSIX shell would (quotes, backslashes).
pub fn split_command(
    origin: &Origin,
    key: &str,
    cmd: &StringOrList,
) -> Result<Vec<String>, ConfigError> {
    match cmd {
        StringOrList::Many(v) => Ok(v.clone()),
        StringOrList::One(s) => shlex::split(s).ok_or_else(|| {
            origin
                .key(key)
                .invalid(format!("`{key}`: unbalanced quotes in `{s}`"))
        }),
    }
}

fn env_pairs(
    origin: &Origin,
    key: &str,
    env: &EnvValue,
) -> Result<Vec<(String, String)>, ConfigError> {
    match env {
        EnvValue::Map(m) => Ok(m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map(Scalar::as_string).unwrap_or_default(),
                )
            })
            .collect()),
        EnvValue::List(list) => list
            .iter()
            .enumerate()
            .map(|(i, item)| match item.split_once('=') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(origin
                    .key(key)
                    .child(crate::config::source::PathSeg::Index(i))
                    .invalid(format!("`{key}`: `{item}` is not KEY=VALUE"))),
            })
            .collect(),
    }
}

fn label_pairs(
    origin: &Origin,
    key: &str,
    labels: &LabelsValue,
) -> Result<IndexMap<String, String>, ConfigError> {
    let pairs: Vec<(String, String)> = match labels {
        LabelsValue::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.as_string())).collect(),
        LabelsValue::List(list) => list
            .iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (item.clone(), String::new()),
            })
            .collect(),
    };
    let mut out = IndexMap::new();
    for (k, v) in pairs {
        if k.starts_with("dstart.") {
            return Err(origin.key(key).invalid(format!(
                "`{key}`: the label `{k}` is reserved: dstart sets `dstart.*` labels itself"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Parses a compose-style port: `6379`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
/// with an optional `/udp`.
pub fn parse_port(text: &str) -> Result<PortSpec, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol `{protocol}` (tcp, udp or sctp)"));
    }
    let port = |s: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{s}` is not a port number"))
    };
    // An IPv6 host address is written in brackets: [::1]:8080:80
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        match r.split_once("]:") {
            Some((ip, rest)) => (Some(ip.to_string()), rest),
            None => return Err("unclosed `[` in the host address".into()),
        }
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host_port, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => (Some((*ip).to_string()), Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => return Err("expected PORT, HOST:PORT or IP:HOST:PORT".into()),
    };
    Ok(PortSpec {
        container_port: port(container)?,
        protocol,
        host_ip: host_ip.filter(|s| !s.is_empty()),
        host_port: match host_port {
            None | Some("") => None,
            Some(h) => Some(port(h)?),
        },
    })
}

/// Whether the host side of a volume string is a path (bind) rather than a volume name.
fn is_host_path(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with('.')
        || s.starts_with('~')
        || s.starts_with("${")
        || s.contains('/')
}

/// Parses a compose-style volume: `/host:/ctr[:ro]`, `name:/ctr[:ro]` or `/ctr`.
pub fn parse_volume(text: &str) -> Result<MountSpec, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let mode_ro = |m: &str| -> Result<bool, String> {
        match m {
            "ro" => Ok(true),
            "rw" => Ok(false),
            other => Err(format!("unknown mode `{other}` (ro or rw)")),
        }
    };
    let check_ctr = |c: &str| -> Result<(), String> {
        if c.starts_with('/') {
            Ok(())
        } else {
            Err(format!("the container path `{c}` must be absolute"))
        }
    };
    match parts.as_slice() {
        [c] => {
            check_ctr(c)?;
            Ok(MountSpec::Anonymous {
                container: (*c).to_string(),
            })
        }
        [h, c] | [h, c, _] => {
            check_ctr(c)?;
            let read_only = match parts.get(2) {
                Some(m) => mode_ro(m)?,
                None => false,
            };
            if h.is_empty() {
                return Err("empty host side".into());
            }
            if is_host_path(h) {
                Ok(MountSpec::Bind {
                    host: (*h).to_string(),
                    container: (*c).to_string(),
                    read_only,
                })
            } else {
                Ok(MountSpec::Named {
                    name: (*h).to_string(),
                    container: (*c).to_string(),
                    read_only,
                })
            }
        }
        _ => Err("expected /ctr, NAME:/ctr[:ro] or /host:/ctr[:ro]".into()),
    }
}

fn conflict(origin: &Origin, a: &str, b: &str) -> ConfigError {
    origin.key(b).invalid_with_hint(
        format!("both `{a}` and `{b}` are given, and they mean the same thing"),
        format!("keep one of `{a}` and `{b}`"),
    )
}

fn pick<T>(
    origin: &Origin,
    a: (&str, Option<T>),
    b: (&str, Option<T>),
) -> Result<Option<T>, ConfigError> {
    match (a.1, b.1) {
        (Some(_), Some(_)) => Err(conflict(origin, a.0, b.0)),
        (x, None) => Ok(x),
        (None, y) => Ok(y),
    }
}

impl RawContainer {
    /// Normalizes the raw spec of container `name` (read at `origin`).
    pub fn normalize(self, name: &str, origin: &Origin) -> Result<ContainerSpec, ConfigError> {
        if !valid_container_name(name) {
            return Err(origin.invalid_with_hint(
                format!("`{name}` is not a valid container name"),
                "container names use letters, digits, `_`, `.` and `-`, and start with a letter or digit",
            ));
        }
        let creation = self.creation.unwrap_or_default();
        let startup = self.startup.unwrap_or_default();
        let corigin = origin.key("creation");
        let sorigin = origin.key("startup");

        if let Some(n) = &creation.name {
            if n != name {
                return Err(corigin.key("name").invalid(format!(
                    "`creation.name` is `{n}` but the container key is `{name}`; the key is the container name"
                )));
            }
        }

        let build = match self.build {
            None => None,
            Some(b) => {
                let path = b.path.clone().ok_or_else(|| {
                    origin
                        .key("build")
                        .invalid("`build` needs a `path` (the build context)")
                })?;
                Some(BuildSpec {
                    path,
                    tag: b.tag.clone(),
                    dockerfile: b.dockerfile.clone(),
                    rm: b.rm.unwrap_or(true),
                    nocache: b.nocache.unwrap_or(false),
                    pull: b.pull.unwrap_or(false),
                    // A failed build leaves its intermediate containers behind unless forcerm is on.
                    forcerm: b.forcerm.unwrap_or(true),
                    buildargs: b
                        .buildargs
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_string()))
                        .collect(),
                    labels: b
                        .labels
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_string()))
                        .collect(),
                    target: b.target.clone(),
                    network_mode: b.network_mode,
                })
            }
        };

        let creation_image = match (&creation.image, &creation.tag) {
            (Some(i), Some(t)) => Some(format!("{i}:{t}")),
            (Some(i), None) => Some(i.clone()),
            (None, Some(_)) => {
                return Err(corigin
                    .key("tag")
                    .invalid("`creation.tag` needs `creation.image`"));
            }
            (None, None) => None,
        };
        let plain_image = pick(
            origin,
            ("image", self.image.clone()),
            ("creation.image", creation_image),
        )?;
        let image = match (build.as_ref().and_then(|b| b.tag.clone()), plain_image) {
            (Some(tag), Some(img)) if with_default_tag(&tag) != with_default_tag(&img) => {
                return Err(origin.key("build").invalid_with_hint(
                    format!("`build.tag` is `{tag}` but the image is `{img}`"),
                    "the image built by `build` is the image the container is created from; give it once",
                ));
            }
            (Some(tag), _) => Some(tag),
            (None, img) => img,
        };

        let command = pick(
            origin,
            ("command", self.command.clone()),
            ("creation.command", creation.command.clone()),
        )?
        .map(|c| split_command(origin, "command", &c))
        .transpose()?;
        let entrypoint = pick(
            origin,
            ("entrypoint", self.entrypoint.clone()),
            ("creation.entrypoint", creation.entrypoint.clone()),
        )?
        .map(|c| split_command(origin, "entrypoint", &c))
        .transpose()?;
        let env = match pick(
            origin,
            ("env", self.env.clone()),
            ("creation.environment", creation.environment.clone()),
        )? {
            Some(e) => env_pairs(origin, "env", &e)?,
            None => Vec::new(),
        };
        let labels = match pick(
            origin,
            ("labels", self.labels.clone()),
            ("creation.labels", creation.labels.clone()),
        )? {
            Some(l) => label_pairs(origin, "labels", &l)?,
            None => IndexMap::new(),
        };
        let working_dir = pick(
            origin,
            ("working_dir", self.working_dir.clone()),
            ("creation.working_dir", creation.working_dir.clone()),
        )?;
        let user = pick(
            origin,
            ("user", self.user.clone()),
            ("creation.user", creation.user.clone()),
        )?
        .map(|u| u.0);

        // Ports: compose strings, docker-py `creation.ports` (exposed) and `startup.port_bindings`.
        let mut ports: Vec<PortSpec> = Vec::new();
        for (i, p) in self.ports.iter().flatten().enumerate() {
            let spec = parse_port(&p.0).map_err(|e| {
                origin
                    .key("ports")
                    .child(crate::config::source::PathSeg::Index(i))
                    .invalid(format!("`ports`: `{}`: {e}", p.0))
            })?;
            ports.push(spec);
        }
        let compose_ports: Vec<String> = ports.iter().map(PortSpec::key).collect();
        for (StrKey(ctr), host) in startup.port_bindings.iter().flatten() {
            let here = sorigin.key("port_bindings").key(ctr);
            let target = parse_port(ctr)
                .map_err(|e| here.invalid(format!("`startup.port_bindings`: `{ctr}`: {e}")))?;
            if target.host_port.is_some() || target.host_ip.is_some() {
                return Err(here.invalid(format!(
                    "`startup.port_bindings`: the key `{ctr}` is the container port; the host side is its value"
                )));
            }
            if compose_ports.contains(&target.key()) {
                return Err(here.invalid_with_hint(
                    format!(
                        "port `{}` is published by both `ports` and `startup.port_bindings`",
                        target.key()
                    ),
                    "keep one of them",
                ));
            }
            let bindings: Vec<(Option<String>, Option<u16>)> = match host {
                HostPortValue::None => vec![(None, None)],
                HostPortValue::Port(p) => vec![(None, Some(*p))],
                HostPortValue::Text(t) => {
                    let (ip, port) = match t.rsplit_once(':') {
                        Some((ip, port)) => (Some(ip.to_string()), port),
                        None => (None, t.as_str()),
                    };
                    let port = if port.is_empty() {
                        None
                    } else {
                        Some(port.parse::<u16>().map_err(|_| {
                            here.invalid(format!(
                                "`startup.port_bindings`: `{t}` is not PORT or IP:PORT"
                            ))
                        })?)
                    };
                    vec![(ip, port)]
                }
                HostPortValue::List(items) => {
                    // [ip, port] (a docker-py tuple) or a list of ports.
                    let is_tuple = items.len() == 2
                        && matches!(items[0], Scalar::Str(ref s) if s.parse::<u16>().is_err());
                    if is_tuple {
                        let port = items[1].as_string().parse::<u16>().map_err(|_| {
                            here.invalid("`startup.port_bindings`: expected [IP, PORT]")
                        })?;
                        vec![(Some(items[0].as_string()), Some(port))]
                    } else {
                        items
                            .iter()
                            .map(|p| {
                                p.as_string()
                                    .parse::<u16>()
                                    .map(|n| (None, Some(n)))
                                    .map_err(|_| {
                                        here.invalid(format!(
                                            "`startup.port_bindings`: `{}` is not a port",
                                            p.as_string()
                                        ))
                                    })
                            })
                            .collect::<Result<_, _>>()?
                    }
                }
            };
            for (ip, port) in bindings {
                ports.push(PortSpec {
                    container_port: target.container_port,
                    protocol: target.protocol.clone(),
                    host_ip: ip,
                    host_port: port,
                });
            }
        }
        let mut exposed_only: Vec<PortSpec> = Vec::new();
        for (i, p) in creation.ports.iter().flatten().enumerate() {
            let spec = parse_port(&p.0).map_err(|e| {
                corigin
                    .key("ports")
                    .child(crate::config::source::PathSeg::Index(i))
                    .invalid(format!("`creation.ports`: `{}`: {e}", p.0))
            })?;
            if !ports.iter().any(|q| q.key() == spec.key()) {
                exposed_only.push(spec);
            }
        }

        // Mounts: compose `volumes`, `startup.binds`, `creation.volumes`.
        let mut mounts: Vec<MountSpec> = Vec::new();
        for (i, v) in self.volumes.iter().flatten().enumerate() {
            let m = parse_volume(v).map_err(|e| {
                origin
                    .key("volumes")
                    .child(crate::config::source::PathSeg::Index(i))
                    .invalid(format!("`volumes`: `{v}`: {e}"))
            })?;
            mounts.push(m);
        }
        match &startup.binds {
            None => {}
            Some(BindsValue::Map(map)) => {
                for (host, target) in map {
                    let (container, read_only) = match target {
                        BindTarget::Path(p) => (p.clone(), false),
                        BindTarget::Full(f) => {
                            let ro = match (&f.ro, f.mode.as_deref()) {
                                (Some(_), Some(_)) => {
                                    return Err(sorigin
                                        .key("binds")
                                        .key(host)
                                        .invalid("`ro` and `mode` both given"));
                                }
                                (Some(ro), None) => *ro,
                                (None, Some("ro")) => true,
                                (None, Some("rw") | None) => false,
                                (None, Some(other)) => {
                                    return Err(sorigin
                                        .key("binds")
                                        .key(host)
                                        .invalid(format!("unknown mode `{other}` (ro or rw)")));
                                }
                            };
                            (f.bind.clone(), ro)
                        }
                    };
                    mounts.push(MountSpec::Bind {
                        host: host.clone(),
                        container,
                        read_only,
                    });
                }
            }
            Some(BindsValue::List(list)) => {
                for (i, item) in list.iter().enumerate() {
                    match parse_volume(item) {
                        Ok(m @ MountSpec::Bind { .. }) => mounts.push(m),
                        Ok(_) | Err(_) => {
                            return Err(sorigin
                                .key("binds")
                                .child(crate::config::source::PathSeg::Index(i))
                                .invalid(format!(
                                    "`startup.binds`: `{item}` is not /host:/container[:ro]"
                                )));
                        }
                    }
                }
            }
        }
        for (i, path) in creation.volumes.iter().flatten().enumerate() {
            if !path.starts_with('/') {
                return Err(corigin
                    .key("volumes")
                    .child(crate::config::source::PathSeg::Index(i))
                    .invalid(format!(
                        "`creation.volumes`: `{path}` must be an absolute container path"
                    )));
            }
            // docker-py listed bind targets here too; those are not anonymous volumes.
            if !mounts.iter().any(|m| m.container_path() == path) {
                mounts.push(MountSpec::Anonymous {
                    container: path.clone(),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for m in &mounts {
            if !seen.insert(m.container_path().to_string()) {
                return Err(origin.invalid(format!(
                    "the container path `{}` is mounted twice",
                    m.container_path()
                )));
            }
        }

        let volumes_from = pick(
            origin,
            ("creation.volumes_from", creation.volumes_from.clone()),
            ("startup.volumes_from", startup.volumes_from.clone()),
        )?
        .map(|v| v.to_vec())
        .unwrap_or_default();
        let dns = pick(
            origin,
            ("creation.dns", creation.dns.clone()),
            ("startup.dns", startup.dns.clone()),
        )?
        .map(|v| v.to_vec())
        .unwrap_or_default();

        let links = match &startup.links {
            None => Vec::new(),
            Some(LinksValue::Map(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| k.clone())))
                .collect(),
            Some(LinksValue::List(list)) => list
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let v = item.to_vec();
                    match v.as_slice() {
                        [one] => Ok(match one.split_once(':') {
                            Some((n, a)) => (n.to_string(), a.to_string()),
                            None => (one.clone(), one.clone()),
                        }),
                        [n, a] => Ok((n.clone(), a.clone())),
                        _ => Err(sorigin
                            .key("links")
                            .child(crate::config::source::PathSeg::Index(i))
                            .invalid(
                                "`startup.links`: expected NAME, NAME:ALIAS or [NAME, ALIAS]",
                            )),
                    }
                })
                .collect::<Result<_, _>>()?,
        };

        let memory = pick(
            origin,
            ("creation.mem_limit", creation.mem_limit.clone()),
            ("startup.mem_limit", startup.mem_limit.clone()),
        )?
        .map(|s| parse_size(origin, "mem_limit", &s))
        .transpose()?;
        let memory_swap = pick(
            origin,
            ("creation.memswap_limit", creation.memswap_limit.clone()),
            ("startup.memswap_limit", startup.memswap_limit.clone()),
        )?
        .map(|s| parse_size(origin, "memswap_limit", &s))
        .transpose()?;
        let cpu_shares = pick(
            origin,
            ("creation.cpu_shares", creation.cpu_shares),
            ("startup.cpu_shares", startup.cpu_shares),
        )?;
        let cpuset_cpus = pick(
            origin,
            ("creation.cpuset", creation.cpuset.clone()),
            ("startup.cpuset_cpus", startup.cpuset_cpus.clone()),
        )?;
        #[allow(clippy::cast_possible_truncation)]
        let seconds_ns = |s: Option<f64>| s.map(|v| (v * 1e9).round() as i64);
        let healthcheck = creation.healthcheck.as_ref().map(|h| Healthcheck {
            test: match &h.test {
                StringOrList::One(s) => vec!["CMD-SHELL".into(), s.clone()],
                StringOrList::Many(v) => v.clone(),
            },
            interval_ns: seconds_ns(h.interval),
            timeout_ns: seconds_ns(h.timeout),
            retries: h.retries,
            start_period_ns: seconds_ns(h.start_period),
        });

        let host = HostSpec {
            privileged: startup.privileged.unwrap_or(false),
            publish_all_ports: startup.publish_all_ports.unwrap_or(false),
            read_only: startup.read_only.unwrap_or(false),
            dns,
            dns_search: startup.dns_search.map(|v| v.to_vec()).unwrap_or_default(),
            extra_hosts: match startup.extra_hosts {
                None => Vec::new(),
                Some(ExtraHostsValue::Map(m)) => {
                    m.iter().map(|(h, ip)| format!("{h}:{ip}")).collect()
                }
                Some(ExtraHostsValue::List(l)) => l,
            },
            cap_add: startup.cap_add.unwrap_or_default(),
            cap_drop: startup.cap_drop.unwrap_or_default(),
            devices: startup.devices.unwrap_or_default(),
            network_mode: startup.network_mode,
            network_disabled: creation.network_disabled.unwrap_or(false),
            restart_policy: startup.restart_policy.map(|r| RestartPolicy {
                name: r.name,
                maximum_retry_count: r.maximum_retry_count,
            }),
            links,
            volumes_from,
            pid_mode: startup.pid_mode,
            ipc_mode: startup.ipc_mode,
            security_opt: startup.security_opt.unwrap_or_default(),
            ulimits: startup
                .ulimits
                .unwrap_or_default()
                .into_iter()
                .map(|u| Ulimit {
                    name: u.name,
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
            tmpfs: match startup.tmpfs {
                None => IndexMap::new(),
                Some(TmpfsValue::Map(m)) => m
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect(),
                Some(TmpfsValue::List(l)) => l.into_iter().map(|k| (k, String::new())).collect(),
            },
            sysctls: startup
                .sysctls
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.as_string()))
                .collect(),
            shm_size: startup
                .shm_size
                .map(|s| parse_size(&sorigin, "shm_size", &s))
                .transpose()?,
            memory,
            memory_swap,
            cpu_shares,
            cpuset_cpus,
            group_add: startup
                .group_add
                .unwrap_or_default()
                .iter()
                .map(Scalar::as_string)
                .collect(),
            init: startup.init,
            log_config: startup.log_config.map(|l| {
                (
                    l.driver,
                    l.config
                        .into_iter()
                        .map(|(k, v)| (k, v.as_string()))
                        .collect(),
                )
            }),
            oom_kill_disable: startup.oom_kill_disable,
            userns_mode: startup.userns_mode,
        };

        // Exposed-only ports (docker-py `creation.ports` without a binding) are exposed, not
        // published: keep them as ports without a host side only when publish_all_ports says so.
        for p in exposed_only {
            ports.push(PortSpec {
                host_port: None,
                host_ip: Some(String::new()),
                ..p
            });
        }

        Ok(ContainerSpec {
            name: name.to_string(),
            build,
            image,
            command,
            entrypoint,
            env,
            ports,
            mounts,
            labels,
            working_dir,
            user,
            hostname: creation.hostname,
            domainname: creation.domainname,
            tty: creation.tty.unwrap_or(false),
            stdin_open: creation.stdin_open.unwrap_or(false),
            stop_signal: creation.stop_signal,
            mac_address: creation.mac_address,
            healthcheck,
            host,
            tests: TestSpec {
                daemon: self.daemon,
                job: self.job,
                jobs: self.jobs.unwrap_or_default(),
                tests: self.tests.unwrap_or_default(),
            },
            backup: self.backup,
            restore: self.restore,
        })
    }
}

impl PortSpec {
    /// A port that is only exposed (docker-py `creation.ports` without a binding).
    pub fn is_expose_only(&self) -> bool {
        self.host_port.is_none() && self.host_ip.as_deref() == Some("")
    }
}

/// Reads and normalizes the spec of container `name` from `value`.
pub fn container_from_value(
    name: &str,
    value: &Value,
    origin: &Origin,
) -> Result<ContainerSpec, ConfigError> {
    let raw: RawContainer = if value.is_null() {
        RawContainer::default()
    } else {
        if !value.is_mapping() {
            return Err(origin.invalid(format!(
                "container `{name}`: a container spec is a mapping (build, creation, startup, image, ...)"
            )));
        }
        origin.deserialize(value, &format!("container `{name}`"))?
    };
    raw.normalize(name, origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::sync::Arc;

    use crate::config::source::Source;

    fn spec(yaml: &str) -> Result<ContainerSpec, ConfigError> {
        let text = format!(
            "web:\n{}",
            yaml.lines().fold(String::new(), |mut acc, l| {
                let _ = writeln!(acc, "  {l}");
                acc
            })
        );
        let source = Arc::new(Source::new("units/t/start.yaml", text));
        let docs = source.documents().unwrap();
        let value = docs[0].get("web").unwrap().clone();
        let origin = Origin::new(
            source,
            0,
            vec![crate::config::source::PathSeg::Key("web".into())],
        );
        container_from_value("web", &value, &origin)
    }

    #[test]
    fn compose_keys_normalize() {
        let s = spec(
            "image: busybox\ncommand: httpd -f -p 80\nenv: {A: 1, B: x}\nports: ['6379', '8080:80', '127.0.0.1:8081:81/udp']\nvolumes: ['/opt:/data:ro', 'named:/n', '/anon', './rel:/rel']\nlabels: {a: b}\nworking_dir: /w\nuser: 1000\n",
        )
        .unwrap();
        assert_eq!(s.image.as_deref(), Some("busybox"));
        assert_eq!(s.command.as_ref().unwrap(), &["httpd", "-f", "-p", "80"]);
        assert_eq!(
            s.env,
            vec![("A".into(), "1".into()), ("B".into(), "x".into())]
        );
        assert_eq!(s.ports[0].host_port, None);
        assert_eq!(s.ports[1].host_port, Some(8080));
        assert_eq!(s.ports[2].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.ports[2].protocol, "udp");
        assert_eq!(
            s.mounts,
            vec![
                MountSpec::Bind {
                    host: "/opt".into(),
                    container: "/data".into(),
                    read_only: true
                },
                MountSpec::Named {
                    name: "named".into(),
                    container: "/n".into(),
                    read_only: false
                },
                MountSpec::Anonymous {
                    container: "/anon".into()
                },
                MountSpec::Bind {
                    host: "./rel".into(),
                    container: "/rel".into(),
                    read_only: false
                },
            ]
        );
        assert_eq!(s.user.as_deref(), Some("1000"));
    }

    #[test]
    fn docker_py_keys_normalize() {
        let s = spec(
            "build: {path: services/web, tag: me/web}\ncreation:\n  volumes: [/home/git/.ssh, /data]\n  environment: [A=1]\nstartup:\n  volumes_from: git_repos\n  port_bindings: {22: 2022, '80': null}\n  binds:\n    ${CONFIG_DIR}/etc: {bind: /data, ro: false}\n  links: {db: database}\n  restart_policy: {Name: always}\n",
        )
        .unwrap();
        assert_eq!(s.image.as_deref(), Some("me/web"));
        assert!(s.build.as_ref().unwrap().rm);
        assert_eq!(s.ports.len(), 2);
        assert_eq!(s.ports[0].container_port, 22);
        assert_eq!(s.ports[0].host_port, Some(2022));
        assert_eq!(s.ports[1].host_port, None);
        // /data is a bind target, so only /home/git/.ssh is an anonymous volume.
        assert_eq!(s.volume_paths(), vec!["/home/git/.ssh".to_string()]);
        assert_eq!(s.host.volumes_from, vec!["git_repos".to_string()]);
        assert_eq!(
            s.dependencies(),
            vec!["git_repos".to_string(), "db".to_string()]
        );
        assert_eq!(s.env, vec![("A".into(), "1".into())]);
    }

    #[test]
    fn unknown_key_names_key_line_and_accepted_keys() {
        let err = spec("image: busybox\nstartup:\n  restrat_policy: {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("units/t/start.yaml:4:5:"), "{err}");
        assert!(
            err.contains("`startup.restrat_policy`: unknown key `restrat_policy`"),
            "{err}"
        );
        assert!(err.contains("restart_policy"), "{err}");
    }

    #[test]
    fn conflicting_keys_are_errors() {
        let err = spec("image: a\ncreation: {image: b}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("both `image` and `creation.image`"), "{err}");
        let err = spec("build: {path: x, tag: a}\nimage: b\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`build.tag` is `a` but the image is `b`"),
            "{err}"
        );
        let err = spec("image: a\nports: ['80']\nstartup: {port_bindings: {80: 1}}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("published by both"), "{err}");
    }

    #[test]
    fn wrong_type_names_key() {
        let err = spec("image: a\ncreation: {tty: sometimes}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`creation.tty`"), "{err}");
        assert!(err.starts_with("units/t/start.yaml:3:"), "{err}");
    }

    #[test]
    fn reserved_labels_and_bad_ports() {
        assert!(
            spec("image: a\nlabels: {dstart.unit: x}\n")
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
        assert!(
            spec("image: a\nports: ['99999']\n")
                .unwrap_err()
                .to_string()
                .contains("not a port number")
        );
        assert!(
            spec("image: a\nvolumes: ['data']\n")
                .unwrap_err()
                .to_string()
                .contains("must be absolute")
        );
    }

    #[test]
    fn port_and_image_helpers() {
        assert_eq!(parse_port("127.0.0.1::80").unwrap().host_port, None);
        assert_eq!(
            with_default_tag("registry:5000/img"),
            "registry:5000/img:latest"
        );
        assert_eq!(with_default_tag("img:1"), "img:1");
        assert_eq!(
            split_image("registry:5000/img"),
            ("registry:5000/img".into(), "latest".into())
        );
        assert_eq!(split_image("a/b:2"), ("a/b".into(), "2".into()));
        assert!(valid_container_name("web_1.a-b"));
        assert!(!valid_container_name("dummy/cgit"));
    }
}
