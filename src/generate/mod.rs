//! The pure, synchronous stage between reading and running: variant filtering and generated
//! commands. A typed unit in, the unit command to run out.

pub mod commands;
pub mod testplan;
pub mod variants;

use crate::config::discover::ConfigDir;
use crate::config::environment::Environment;
use crate::config::loader::{BaseFile, Loaded, Loader, UnitCommand};
use crate::error::ConfigError;
use crate::unit::{TypedUnit, Unit};

/// Reads, validates and resolves a unit command: the whole pipeline up to the unit to run.
/// `Err(loaded)` inside is a help text or substitutions instead of a unit.
pub fn load_unit(
    conf: &ConfigDir,
    env: &Environment,
    unit_command: &UnitCommand,
    argv: &[String],
    substitutions_only: bool,
) -> Result<Result<Unit, Loaded>, ConfigError> {
    let loader = Loader { conf, env };
    match loader.load(unit_command, argv, substitutions_only)? {
        Loaded::Unit(raw) => {
            let typed = TypedUnit::from_raw(*raw)?;
            resolve(typed).map(Ok)
        }
        other => Ok(Err(other)),
    }
}

/// Resolves a typed unit into the unit command to run: checks the requested tokens, filters the
/// orders by variant, and derives generated commands from the start orders.
pub fn resolve(typed: TypedUnit) -> Result<Unit, ConfigError> {
    let TypedUnit {
        raw,
        containers,
        steps,
    } = typed;
    let mut known = variants::variant_tags(&steps);
    let custom: std::collections::BTreeSet<String> = containers
        .values()
        .flat_map(|c| c.spec.tests.tests.keys().cloned())
        .collect();
    let is_test = raw.command.command == "test";
    if is_test {
        known.extend(custom.iter().cloned());
    }
    variants::check_pending(&raw.pending, &known, &raw.modes)?;
    let custom_tests: Vec<String> = if is_test {
        raw.pending
            .iter()
            .filter(|t| custom.contains(*t))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let steps = variants::filter_steps(steps, &raw.active, raw.filtering);
    let steps = match &raw.base {
        BaseFile::Explicit(_) => steps,
        BaseFile::Generated { command, .. } if command == "test" => steps,
        BaseFile::Generated { command, .. } => commands::generate(
            command,
            &raw.command.unit,
            &steps,
            &containers,
            &raw.environment,
        )?,
    };
    Ok(Unit {
        command: raw.command,
        containers,
        steps,
        environment: raw.environment,
        active: raw.active,
        test_variants: raw.test_variants,
        custom_tests,
    })
}
