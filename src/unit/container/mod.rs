//! A container spec: the raw YAML shapes (docker-py names of ORIGINAL §2 and the compose-like
//! keys of seed 000) and the engine-neutral [`ContainerSpec`] they normalize into.
//!
//! Two keys that say the same thing (`image` and `creation.image`, `env` and
//! `creation.environment`, ...) may not both be given: dstart does not guess which one wins.

pub mod deploy;
mod mounts;
mod normalize;
mod ports;
mod print;
mod raw;
#[cfg(test)]
pub(crate) mod tests;

use indexmap::IndexMap;
use serde_yaml_ng::Value;

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::checks::{CustomTest, DaemonChecks, JobCheck, JobRun};
pub use crate::unit::forms::{
    BindFull, BindTarget, BindsValue, EnvValue, ExtraHostsValue, HostPortValue, LabelsValue,
    LinksValue, PortText, Scalar, Size, StrKey, StringOrList, TmpfsValue, UserText,
};
pub use mounts::{MountSpec, parse_volume};
pub use normalize::split_command;
pub use ports::{PortSpec, parse_port};
pub use print::{mount_text, port_text, spec_to_mapping};
pub use raw::{
    HealthcheckValue, LogConfigValue, PullPolicy, RawBuild, RawContainer, RawCreation, RawStartup,
    RestartPolicyValue, UlimitValue,
};

/// The engine's own grace period between SIGTERM and SIGKILL, dstart's default `stop_timeout`.
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;

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
    /// When the image is pulled (an image that `build` makes is built, never pulled).
    pub pull: PullPolicy,
    /// Seconds between SIGTERM and SIGKILL in every stop dstart makes (`stop_timeout`; an
    /// order's explicit `timeout` wins).
    pub stop_timeout: u32,
    /// How the generated backup archives it (`backup:`).
    pub backup: Option<crate::unit::backup::BackupSpec>,
    /// What the generated restore runs around the unpacking (`restore:`).
    pub restore: Option<crate::unit::backup::RestoreSpec>,
    /// How swarm mode deploys it (`deploy:`, defaults applied).
    pub deploy: deploy::DeploySpec,
    /// Secret files (`secrets:`): Swarm secrets in swarm mode, read-only binds (also in
    /// [`mounts`](Self::mounts)) on one engine; at `/run/secrets/<name>` either way.
    pub secrets: Vec<SecretFile>,
}

/// A secret of a container: its name and the file that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub name: String,
    /// As written (resolved like a bind's host path when the order runs).
    pub file: String,
}

impl SecretFile {
    /// Where the container reads it.
    pub fn target(&self) -> String {
        format!("/run/secrets/{}", self.name)
    }
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

    /// Whether a bind mount is a secret's (swarm mode mounts those as Swarm secrets).
    pub fn is_secret_path(&self, container_path: &str) -> bool {
        self.secrets.iter().any(|s| s.target() == container_path)
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
