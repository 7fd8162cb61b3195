//! Which orchestrator carries a unit out (SPEC "Beyond one machine: Docker Swarm"): the engine
//! itself (containers, the default) or Docker Swarm (services), and what a unit may not say in
//! swarm mode. Both are decided before the first engine call, so a key with no Swarm meaning
//! costs nothing already deployed.

use serde_yaml_ng::Value;

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::Unit;
use crate::unit::container::ContainerSpec;
use crate::unit::order::{Action, ExecType, HOST, Order, Step};

/// The variable of the environment files that chooses the orchestrator.
pub const ORCHESTRATOR_VAR: &str = "DSTART_ORCHESTRATOR";

/// Who runs the unit's containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Orchestrator {
    /// Containers on one engine.
    #[default]
    Engine,
    /// Services on the swarm the engine manages.
    Swarm,
}

impl Orchestrator {
    /// `swarm` or `engine`.
    pub fn parse(word: &str) -> Result<Orchestrator, String> {
        match word.trim() {
            "engine" => Ok(Orchestrator::Engine),
            "swarm" => Ok(Orchestrator::Swarm),
            other => Err(format!(
                "unknown orchestrator `{}` (expected `engine` or `swarm`)",
                crate::config::source::clip(other, 40)
            )),
        }
    }

    /// `--orchestrator` wins over `DSTART_ORCHESTRATOR` of the environment files; the engine
    /// when neither says.
    pub fn choose(flag: Option<Orchestrator>, env: Option<&str>) -> Result<Orchestrator, String> {
        match (flag, env) {
            (Some(o), _) => Ok(o),
            (None, Some(word)) if !word.trim().is_empty() => Orchestrator::parse(word)
                .map_err(|e| format!("{ORCHESTRATOR_VAR} of the environment files: {e}")),
            (None, _) => Ok(Orchestrator::Engine),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Orchestrator::Engine => "engine",
            Orchestrator::Swarm => "swarm",
        }
    }
}

/// Refuses, before anything is deployed, a unit that swarm mode cannot carry out: a container
/// key with no Swarm meaning, or an order that needs a container of its own.
pub fn check_swarm(unit: &Unit) -> Result<(), ConfigError> {
    for container in unit.containers.values() {
        swarm_refusal(&container.spec, &container.raw, &container.origin)?;
    }
    check_steps(&unit.steps)
}

fn check_steps(steps: &[Step]) -> Result<(), ConfigError> {
    for step in steps {
        match step {
            Step::Order(order) => check_order(order)?,
            Step::Parallel { orders, .. } => {
                for order in orders {
                    check_order(order)?;
                }
            }
        }
    }
    Ok(())
}

/// The orders swarm mode carries out: images (`build`, `tag`, `push`, `remove_image`), services
/// (start, stop, remove), backups and restores without hooks, host commands and nested
/// units.
fn check_order(order: &Order) -> Result<(), ConfigError> {
    let refused = match &order.action {
        Action::Start(args) if args.attach => Some("`attach`"),
        Action::Backup(args) if args.before.is_some() || args.after.is_some() => {
            Some("a backup with `before` or `after`")
        }
        Action::Restore(args) if args.before.is_some() || args.after.is_some() => {
            Some("a restore with `before` or `after`")
        }
        Action::Backup(_)
        | Action::Restore(_)
        | Action::Build
        | Action::Start(_)
        | Action::Stop(_)
        | Action::Remove(_)
        | Action::RemoveImage(_)
        | Action::Tag(_)
        | Action::Push(_)
        | Action::Unit(_) => None,
        Action::Execute(args)
            if order.container == HOST || args.exec_type == Some(ExecType::Host) =>
        {
            None
        }
        Action::Create => Some("`create`"),
        Action::Commit(_) => Some("`commit`"),
        Action::Execute(_) => Some("`execute` in a container"),
        Action::Tests(_) => Some("a `tests` order (test runs)"),
        Action::Upgrade(_) => Some("`upgrade` (it recreates containers)"),
    };
    match refused {
        None => Ok(()),
        Some(what) => Err(order.origin.invalid_with_hint(
            format!(
                "{what} on `{}` is not carried out in swarm mode",
                order.container
            ),
            "start, stop, restart, cleanup and purge deploy and remove services; run this command with `--orchestrator engine`",
        )),
    }
}

/// A key of a container spec that has no meaning on a swarm: where it may be written, and why.
struct Unsupported {
    /// The key paths that say it, as they may be written.
    keys: &'static [&'static str],
    why: &'static str,
}

/// The first key of `spec` that has no Swarm meaning, as an error at the line that writes it
/// (`raw`: the spec as written, `origin`: the container's).
pub fn swarm_refusal(
    spec: &ContainerSpec,
    raw: &Value,
    origin: &Origin,
) -> Result<(), ConfigError> {
    let h = &spec.host;
    let host_ip = spec
        .ports
        .iter()
        .any(|p| p.host_ip.as_deref().is_some_and(|ip| !ip.is_empty()));
    let checks = [
        (
            !h.links.is_empty(),
            Unsupported {
                keys: &["startup.links"],
                why: "services reach each other by name on the unit's overlay network; drop `links`",
            },
        ),
        (
            !h.volumes_from.is_empty(),
            Unsupported {
                keys: &["creation.volumes_from", "startup.volumes_from"],
                why: "a service cannot mount another container's volumes; mount the named volume itself",
            },
        ),
        (
            h.privileged,
            Unsupported {
                keys: &["startup.privileged"],
                why: "Swarm services cannot run privileged",
            },
        ),
        (
            h.ipc_mode.is_some(),
            Unsupported {
                keys: &["startup.ipc_mode"],
                why: "Swarm services cannot share an IPC namespace",
            },
        ),
        (
            h.pid_mode.is_some(),
            Unsupported {
                keys: &["startup.pid_mode"],
                why: "Swarm services cannot share a PID namespace",
            },
        ),
        (
            !h.devices.is_empty(),
            Unsupported {
                keys: &["startup.devices"],
                why: "Swarm services cannot map devices",
            },
        ),
        (
            h.network_mode.is_some() || h.network_disabled,
            Unsupported {
                keys: &["startup.network_mode", "creation.network_disabled"],
                why: "every service joins the unit's overlay network",
            },
        ),
        (
            h.publish_all_ports,
            Unsupported {
                keys: &["startup.publish_all_ports"],
                why: "publish each port under `ports`",
            },
        ),
        (
            host_ip,
            Unsupported {
                keys: &["ports", "creation.ports", "startup.port_bindings"],
                why: "a service's published port listens on every node's addresses (the routing mesh); drop the host address",
            },
        ),
        (
            spec.mac_address.is_some(),
            Unsupported {
                keys: &["creation.mac_address"],
                why: "tasks get their addresses from the overlay network",
            },
        ),
        (
            h.memory_swap.is_some() || h.oom_kill_disable.is_some() || h.cpuset_cpus.is_some(),
            Unsupported {
                keys: &[
                    "creation.memswap_limit",
                    "startup.memswap_limit",
                    "startup.oom_kill_disable",
                    "creation.cpuset",
                    "startup.cpuset_cpus",
                ],
                why: "set `deploy.resources` instead",
            },
        ),
        (
            h.memory.is_some() || h.cpu_shares.is_some(),
            Unsupported {
                keys: &[
                    "creation.mem_limit",
                    "startup.mem_limit",
                    "creation.cpu_shares",
                    "startup.cpu_shares",
                ],
                why: "set `deploy.resources` instead",
            },
        ),
        (
            spec.domainname.is_some(),
            Unsupported {
                keys: &["creation.domainname"],
                why: "a task's name comes from the orchestrator",
            },
        ),
        (
            !h.security_opt.is_empty() || h.shm_size.is_some(),
            Unsupported {
                keys: &["startup.security_opt", "startup.shm_size"],
                why: "Swarm services (API 1.41) take neither",
            },
        ),
        (
            h.userns_mode.is_some(),
            Unsupported {
                keys: &["startup.userns_mode"],
                why: "Swarm services run in the engine's user namespace",
            },
        ),
    ];
    for (found, u) in checks {
        if !found {
            continue;
        }
        let key = u
            .keys
            .iter()
            .find(|k| written(raw, k))
            .copied()
            .unwrap_or(u.keys[0]);
        let mut at = origin.clone();
        for part in key.split('.') {
            at = at.key(part);
        }
        return Err(at.invalid_with_hint(
            format!(
                "container `{}`: `{key}` has no meaning in swarm mode",
                spec.name
            ),
            format!("{}; or run this unit with `--orchestrator engine`", u.why),
        ));
    }
    Ok(())
}

/// Whether the spec as written has the dotted key path.
fn written(raw: &Value, path: &str) -> bool {
    let mut v = raw;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::container::tests::spec_with_raw;

    #[test]
    fn the_flag_wins_over_the_environment() {
        for (flag, env, want) in [
            (None, None, Ok(Orchestrator::Engine)),
            (None, Some(""), Ok(Orchestrator::Engine)),
            (None, Some("swarm"), Ok(Orchestrator::Swarm)),
            (None, Some(" engine "), Ok(Orchestrator::Engine)),
            (
                Some(Orchestrator::Engine),
                Some("swarm"),
                Ok(Orchestrator::Engine),
            ),
            (
                Some(Orchestrator::Swarm),
                Some("nonsense"),
                Ok(Orchestrator::Swarm),
            ),
            (
                None,
                Some("kubernetes"),
                Err(
                    "DSTART_ORCHESTRATOR of the environment files: unknown orchestrator `kubernetes`",
                ),
            ),
        ] {
            match (Orchestrator::choose(flag, env), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{flag:?} {env:?}"),
                (Err(e), Err(want)) => assert!(e.starts_with(want), "{e}"),
                (got, want) => panic!("{flag:?} {env:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn keys_without_swarm_meaning_are_refused_at_their_line() {
        for (yaml, line, key) in [
            ("startup: {links: [db]}\n", 3, "startup.links"),
            (
                "creation: {volumes_from: [db]}\n",
                3,
                "creation.volumes_from",
            ),
            ("startup:\n  privileged: true\n", 4, "startup.privileged"),
            ("startup: {ipc_mode: host}\n", 3, "startup.ipc_mode"),
            (
                "startup: {pid_mode: 'container:db'}\n",
                3,
                "startup.pid_mode",
            ),
            ("startup: {devices: ['/dev/fuse']}\n", 3, "startup.devices"),
            ("startup: {network_mode: host}\n", 3, "startup.network_mode"),
            ("ports: ['127.0.0.1:8080:80']\n", 3, "ports"),
            ("creation: {mem_limit: 1g}\n", 3, "creation.mem_limit"),
        ] {
            let (s, raw, origin) = spec_with_raw(&format!("image: x\n{yaml}")).unwrap();
            let err = swarm_refusal(&s, &raw, &origin)
                .err()
                .unwrap_or_else(|| panic!("{yaml}: accepted"));
            let text = crate::error::render(&err.into());
            assert!(
                text.contains(&format!("`{key}` has no meaning in swarm mode")),
                "{yaml}: {text}"
            );
            assert!(
                text.contains(&format!("units/t/start.yaml:{line}")),
                "{yaml}: {text}"
            );
        }
        for yaml in [
            "ports: ['8080:80', '9000']\nvolumes: ['data:/data', '/anon']\n",
            "startup: {restart_policy: {Name: always}}\ndeploy: {replicas: 2}\n",
        ] {
            let (s, raw, origin) = spec_with_raw(&format!("image: x\n{yaml}")).unwrap();
            assert!(swarm_refusal(&s, &raw, &origin).is_ok(), "{yaml}");
        }
    }
}
