//! The raw shapes of a container spec as written: docker-py names of ORIGINAL §2 (`build`,
//! `creation`, `startup`) and the compose-like keys of seed 000. Unknown keys are errors.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::unit::checks::{CustomTest, DaemonChecks, JobCheck, JobRun};
use crate::unit::forms::{
    BindsValue, EnvValue, ExtraHostsValue, HostPortValue, LabelsValue, LinksValue, PortText,
    Scalar, Size, StrKey, StringOrList, TmpfsValue, UserText,
};
use crate::unit::values::Seconds;

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
    pub interval: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub retries: Option<i64>,
    pub start_period: Option<Seconds>,
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
    pub pull: Option<PullPolicy>,
    /// Seconds between SIGTERM and SIGKILL in every stop dstart makes.
    pub stop_timeout: Option<f64>,
    pub daemon: Option<DaemonChecks>,
    pub job: Option<JobCheck>,
    pub jobs: Option<IndexMap<String, JobRun>>,
    pub tests: Option<IndexMap<String, CustomTest>>,
    pub backup: Option<crate::unit::backup::BackupSpec>,
    pub restore: Option<crate::unit::backup::RestoreSpec>,
    /// How swarm mode deploys it (`replicas`, `placement`, `resources`, `update_config`).
    pub deploy: Option<super::deploy::RawDeploy>,
    /// Secret files: name → file (relative to the configuration directory), read by the
    /// container at `/run/secrets/<name>`.
    pub secrets: Option<IndexMap<String, String>>,
}

/// When the image of a container is pulled (`pull:`; `run --pull` overrides it for one run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the image is not on the engine.
    #[default]
    Missing,
    /// Before every create and start; a start then recreates a container whose image changed.
    Always,
    /// Never: a missing image fails the run before any order runs.
    Never,
}
