//! Which orchestrator carries a unit out (SPEC "Beyond one machine: Docker Swarm"): the engine
//! itself (containers, the default) or Docker Swarm (services), and what a unit may not say in
//! swarm mode. Both are decided before the first engine call, so a key with no Swarm meaning
//! costs nothing already deployed.

use crate::error::ConfigError;
use crate::unit::Unit;
use crate::unit::container::deploy::swarm_refusal;
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
/// (start, stop, remove), host commands and nested units.
fn check_order(order: &Order) -> Result<(), ConfigError> {
    let refused = match &order.action {
        Action::Start(args) if args.attach => Some("`attach`"),
        Action::Build
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
        Action::Backup(_) => Some("`backup`"),
        Action::Restore(_) => Some("`restore`"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
