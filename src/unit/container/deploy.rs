//! `deploy:` of a container spec (SPEC "Beyond one machine: Docker Swarm"): replicas,
//! placement constraints, resources and the rolling update, as Compose files write them.
//! Read and checked while the unit loads; only swarm mode uses them (the engine orchestrator
//! ignores them, as `docker-compose up` does).

use serde::Deserialize;

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::values::{ByteSize, Cpus, Seconds};

/// `deploy:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    pub replicas: Option<u64>,
    pub placement: Option<RawPlacement>,
    pub resources: Option<RawResources>,
    pub update_config: Option<RawUpdateConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    #[serde(default)]
    pub constraints: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    pub limits: Option<Resources>,
    pub reservations: Option<Resources>,
}

/// CPUs and memory of a limit or a reservation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpus: Option<Cpus>,
    pub memory: Option<ByteSize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<Seconds>,
    pub order: Option<UpdateOrder>,
    pub failure_action: Option<FailureAction>,
}

/// Whether a rolling update starts the new task before it stops the old one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// The new task first: the old one keeps serving until the new one runs (dstart's default).
    #[default]
    StartFirst,
    /// The old task first (a service that cannot run twice, such as one holding a lock).
    StopFirst,
}

/// What the orchestrator does when an updated task fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    #[default]
    Pause,
    Continue,
    Rollback,
}

impl UpdateOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOrder::StartFirst => "start-first",
            UpdateOrder::StopFirst => "stop-first",
        }
    }
}

impl FailureAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureAction::Pause => "pause",
            FailureAction::Continue => "continue",
            FailureAction::Rollback => "rollback",
        }
    }
}

/// A rolling update: `parallelism` tasks at a time (0: all), `delay` between batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateConfig {
    pub parallelism: u64,
    pub delay: Seconds,
    pub order: UpdateOrder,
    pub failure_action: FailureAction,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            parallelism: 1,
            delay: Seconds::default(),
            order: UpdateOrder::StartFirst,
            failure_action: FailureAction::Pause,
        }
    }
}

/// A placement constraint: `node.role == manager`, `node.labels.zone != b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint(String);

impl Constraint {
    /// The constraint, or why the orchestrator would refuse it.
    pub fn new(text: &str) -> Result<Constraint, String> {
        let ok = ["==", "!="].iter().any(|op| {
            text.split_once(op)
                .is_some_and(|(l, r)| !l.trim().is_empty() && !r.trim().is_empty())
        });
        if ok {
            Ok(Constraint(text.trim().to_string()))
        } else {
            Err(format!(
                "`{text}` is no placement constraint (ATTRIBUTE == VALUE or ATTRIBUTE != VALUE, such as `node.role == manager`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The checked `deploy:` of a container (defaults applied, so `--print-unit` and the service
/// agree).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySpec {
    pub replicas: u64,
    pub constraints: Vec<Constraint>,
    pub limits: Resources,
    pub reservations: Resources,
    pub update: UpdateConfig,
}

impl Default for DeploySpec {
    fn default() -> Self {
        DeploySpec {
            replicas: 1,
            constraints: Vec::new(),
            limits: Resources::default(),
            reservations: Resources::default(),
            update: UpdateConfig::default(),
        }
    }
}

impl RawDeploy {
    /// Checks the written `deploy:` (read at `origin`, the container's).
    #[allow(clippy::cast_precision_loss)]
    pub fn normalize(self, origin: &Origin) -> Result<DeploySpec, ConfigError> {
        let at = origin.key("deploy");
        let mut constraints = Vec::new();
        for (i, c) in self
            .placement
            .unwrap_or_default()
            .constraints
            .iter()
            .enumerate()
        {
            constraints.push(Constraint::new(c).map_err(|e| {
                at.key("placement")
                    .key("constraints")
                    .child(crate::config::source::PathSeg::Index(i))
                    .invalid(format!("`deploy.placement.constraints`: {e}"))
            })?);
        }
        let resources = self.resources.unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        let reservations = resources.reservations.unwrap_or_default();
        for (key, limit, reserved) in [
            (
                "cpus",
                limits.cpus.map(Cpus::get),
                reservations.cpus.map(Cpus::get),
            ),
            (
                "memory",
                limits.memory.map(|m| m.get() as f64),
                reservations.memory.map(|m| m.get() as f64),
            ),
        ] {
            if let (Some(l), Some(r)) = (limit, reserved) {
                if r > l {
                    return Err(at.key("resources").key("reservations").key(key).invalid(
                        format!(
                            "`deploy.resources.reservations.{key}` is above `deploy.resources.limits.{key}`"
                        ),
                    ));
                }
            }
        }
        let update = self.update_config.unwrap_or_default();
        let defaults = UpdateConfig::default();
        Ok(DeploySpec {
            replicas: self.replicas.unwrap_or(1),
            constraints,
            limits,
            reservations,
            update: UpdateConfig {
                parallelism: update.parallelism.unwrap_or(defaults.parallelism),
                delay: update.delay.unwrap_or(defaults.delay),
                order: update.order.unwrap_or(defaults.order),
                failure_action: update.failure_action.unwrap_or(defaults.failure_action),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::container::tests::spec_with_raw;

    #[test]
    fn deploy_reads_with_defaults() {
        let (s, _, _) = spec_with_raw("image: x\n").unwrap();
        assert_eq!(s.deploy, DeploySpec::default());
        assert_eq!(s.deploy.replicas, 1);
        assert_eq!(s.deploy.update.order, UpdateOrder::StartFirst);
        let (s, _, _) = spec_with_raw(
            "image: x\ndeploy:\n  replicas: 3\n  placement: {constraints: ['node.role == manager']}\n  resources:\n    limits: {cpus: '0.5', memory: 64m}\n    reservations: {cpus: 0.25, memory: 1048576}\n  update_config: {parallelism: 2, delay: 1.5, order: stop-first, failure_action: rollback}\n",
        )
        .unwrap();
        assert_eq!(s.deploy.replicas, 3);
        assert_eq!(s.deploy.constraints[0].as_str(), "node.role == manager");
        assert_eq!(s.deploy.limits.cpus.unwrap().nano(), 500_000_000);
        assert_eq!(s.deploy.limits.memory.unwrap().get(), 64 << 20);
        assert_eq!(s.deploy.reservations.memory.unwrap().get(), 1 << 20);
        assert_eq!(s.deploy.update.parallelism, 2);
        assert!((s.deploy.update.delay.get() - 1.5).abs() < f64::EPSILON);
        assert_eq!(s.deploy.update.order, UpdateOrder::StopFirst);
        assert_eq!(s.deploy.update.failure_action, FailureAction::Rollback);
    }

    #[test]
    fn bad_deploy_values_name_their_line_and_key() {
        for (yaml, line, want) in [
            ("deploy:\n  replicas: -1\n", 4, "replicas"),
            ("deploy:\n  replica: 2\n", 4, "replica"),
            ("deploy:\n  resources: {limits: {cpus: 0}}\n", 4, "above 0"),
            ("deploy:\n  resources: {limits: {cpus: 'x'}}\n", 4, "`x`"),
            (
                "deploy:\n  resources: {limits: {memory: 10q}}\n",
                4,
                "invalid size",
            ),
            (
                "deploy:\n  resources:\n    limits: {memory: 1m}\n    reservations: {memory: 2m}\n",
                6,
                "above `deploy.resources.limits.memory`",
            ),
            (
                "deploy:\n  placement:\n    constraints: ['node.role']\n",
                5,
                "no placement constraint",
            ),
            (
                "deploy:\n  update_config: {order: sideways}\n",
                4,
                "sideways",
            ),
            ("deploy:\n  update_config: {delay: -1}\n", 4, "0 or more"),
        ] {
            let err = spec_with_raw(&format!("image: x\n{yaml}"))
                .err()
                .unwrap_or_else(|| panic!("{yaml}: accepted"));
            let text = crate::error::render(&err.into());
            assert!(text.contains(want), "{yaml}: {text}");
            assert!(
                text.contains(&format!("units/t/start.yaml:{line}")),
                "{yaml}: {text}"
            );
        }
    }
}
