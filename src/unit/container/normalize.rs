//! From the raw shapes to a [`ContainerSpec`]: two keys that say the same thing may not both be
//! given, sizes, commands, environment and labels are parsed, and every error names its key.

use indexmap::IndexMap;

use super::mounts::mounts;
use super::ports::ports;
use super::raw::RawContainer;
use super::{
    BuildSpec, ContainerSpec, DEFAULT_STOP_TIMEOUT, Healthcheck, HostSpec, RestartPolicy, TestSpec,
    Ulimit, with_default_tag,
};
use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::text::valid_container_name;
use crate::unit::forms::{
    EnvValue, ExtraHostsValue, LabelsValue, LinksValue, Scalar, Size, StringOrList, TmpfsValue,
};
use crate::unit::values::{Seconds, size_bytes};

fn parse_size(origin: &Origin, key: &str, size: &Size) -> Result<i64, ConfigError> {
    match size {
        Size::Bytes(b) => Ok(*b),
        Size::Text(t) => {
            size_bytes(t).map_err(|e| origin.key(key).invalid(format!("`{key}`: {e}")))
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

/// `stop_timeout`: a non-negative finite number of seconds, rounded up to whole seconds (the
/// engine stops in whole seconds); the engine's default when unset.
fn stop_timeout(origin: &Origin, name: &str, seconds: Option<f64>) -> Result<u32, ConfigError> {
    match seconds {
        None => Ok(DEFAULT_STOP_TIMEOUT),
        Some(s) if s.is_finite() && s >= 0.0 => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(s.ceil().min(f64::from(u32::MAX)) as u32)
        }
        Some(s) => Err(origin.key("stop_timeout").invalid_with_hint(
            format!("container `{name}`: `stop_timeout`: expected a non-negative number of seconds, found `{s}`"),
            "the grace period between the stop signal and SIGKILL, such as `30`",
        )),
    }
}

/// `secrets:`: names the engine accepts in a secret's name and a path, files given.
fn secret_files(
    origin: &Origin,
    written: Option<&IndexMap<String, String>>,
) -> Result<Vec<super::SecretFile>, ConfigError> {
    let mut out = Vec::new();
    for (name, file) in written.into_iter().flatten() {
        let at = origin.key("secrets").key(name);
        if name.is_empty()
            || name.len() > 40
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(at.invalid_with_hint(
                format!("`secrets`: `{name}` is not a secret name"),
                "use letters, digits, `_`, `-` and `.` (up to 40, starting with a letter or digit), such as `db_password`",
            ));
        }
        if file.trim().is_empty() {
            return Err(at.invalid(format!("`secrets.{name}`: the file is empty")));
        }
        out.push(super::SecretFile {
            name: name.clone(),
            file: file.clone(),
        });
    }
    Ok(out)
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

        let ports = ports(
            origin,
            self.ports.as_deref(),
            startup.port_bindings.as_ref(),
            creation.ports.as_deref(),
        )?;
        let mut mounts = mounts(
            origin,
            self.volumes.as_deref(),
            startup.binds.as_ref(),
            creation.volumes.as_deref(),
        )?;
        let secrets = secret_files(origin, self.secrets.as_ref())?;
        for secret in &secrets {
            if mounts.iter().any(|m| m.container_path() == secret.target()) {
                return Err(origin.key("secrets").key(&secret.name).invalid(format!(
                    "`secrets`: `{}` is mounted at `{}` already",
                    secret.name,
                    secret.target()
                )));
            }
            mounts.push(super::MountSpec::Bind {
                host: secret.file.clone(),
                container: secret.target(),
                read_only: true,
            });
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

        // A size given in `creation` or `startup` (not both), parsed at the key that gave it.
        let size = |key: &str, c: &Option<Size>, s: &Option<Size>| {
            let at = if c.is_some() { &corigin } else { &sorigin };
            pick(
                origin,
                (&format!("creation.{key}"), c.clone()),
                (&format!("startup.{key}"), s.clone()),
            )?
            .map(|v| parse_size(at, key, &v))
            .transpose()
        };
        let memory = size("mem_limit", &creation.mem_limit, &startup.mem_limit)?;
        let memory_swap = size(
            "memswap_limit",
            &creation.memswap_limit,
            &startup.memswap_limit,
        )?;
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
        let seconds_ns = |s: Option<Seconds>| s.map(|v| (v.get() * 1e9).round() as i64);
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
            pull: self.pull.unwrap_or_default(),
            stop_timeout: stop_timeout(origin, name, self.stop_timeout)?,
            backup: self.backup,
            restore: self.restore,
            deploy: self.deploy.unwrap_or_default().normalize(origin)?,
            secrets,
        })
    }
}
