//! The pure, synchronous stage between reading and running: variant filtering and generated
//! commands. A typed unit in, the unit command to run out.

pub mod commands;
pub mod defaults;
pub mod testplan;
pub mod variants;

use crate::config::discover::ConfigDir;
use crate::config::environment::Environment;
use crate::config::loader::{BaseFile, Loaded, Loader, UnitCommand};
use crate::error::ConfigError;
use crate::secrets::Secrets;
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
    crate::output::add_secrets(|s| s.add_json(env.vars()));
    let loader = Loader { conf, env };
    match loader.load(unit_command, argv, substitutions_only)? {
        Loaded::Unit(raw) => {
            let typed = TypedUnit::from_raw(*raw)?;
            let upgrade = matches!(&typed.raw.base,
                BaseFile::Generated { command, .. } if command == "upgrade");
            let units = if upgrade {
                conf.started_units()
            } else {
                Vec::new()
            };
            let unit = resolve(typed, &units)?;
            crate::output::add_secrets(|s| add_secrets(&unit, s));
            Ok(Ok(unit))
        }
        other => Ok(Err(other)),
    }
}

/// Adds the secrets of `unit` (SPEC "Secrets"): those of its environment (globals
/// included) and the values of its containers' environment variables and build arguments
/// whose names are secrets' names.
pub fn add_secrets(unit: &Unit, secrets: &mut Secrets) {
    secrets.add_json(unit.environment.vars());
    for c in unit.containers.values() {
        let env = c.spec.env.iter();
        let args = c.spec.build.iter().flat_map(|b| b.buildargs.iter());
        secrets.add_named(env.map(|(k, v)| (k.as_str(), v.as_str())));
        secrets.add_named(args.map(|(k, v)| (k.as_str(), v.as_str())));
    }
}

/// Loads, before anything runs, the unit command of every nested `unit` order of `unit`
/// (recursively, each distinct one once) into [`Unit::nested`], so that a nested unit that
/// does not load, or a cycle of them, costs nothing already done. `stack` holds the unit
/// commands above.
pub fn resolve_nested(
    conf: &ConfigDir,
    env: &Environment,
    unit: &mut Unit,
    stack: &mut Vec<String>,
) -> Result<(), ConfigError> {
    use crate::unit::order::Action;
    let mut nested: Vec<crate::unit::NestedUnit> = Vec::new();
    for order in unit.orders() {
        check_host_order(conf, env, order)?;
        let Action::Unit(args) = &order.action else {
            continue;
        };
        if nested.iter().any(|n| n.args == *args) {
            continue;
        }
        let location = order.origin.location();
        let wrap = |source: ConfigError| ConfigError::Nested {
            location: location.clone(),
            unit_command: args.unit.clone(),
            source: Box::new(source),
        };
        let uc = UnitCommand::parse(&args.unit).map_err(wrap)?;
        let key = uc.to_string();
        if uc.command == "test" {
            return Err(order
                .origin
                .invalid("a `unit` order cannot run tests; run `dstart run UNIT/test` instead"));
        }
        if stack.contains(&key) {
            let mut chain = stack.clone();
            chain.push(key);
            return Err(order
                .origin
                .invalid(format!("`unit` orders form a cycle: {}", chain.join(" → "))));
        }
        let Ok(mut child) = load_unit(conf, env, &uc, &args.args, false).map_err(wrap)? else {
            return Err(order
                .origin
                .invalid(format!("`{key}`: its arguments ask for help")));
        };
        stack.push(key);
        resolve_nested(conf, env, &mut child, stack).map_err(wrap)?;
        stack.pop();
        nested.push(crate::unit::NestedUnit {
            args: args.clone(),
            unit: child,
        });
    }
    unit.nested = nested;
    Ok(())
}

/// Checks, before anything runs, that every test run of a `tests` order and the unit of an
/// `upgrade` order load.
fn check_host_order(
    conf: &ConfigDir,
    env: &Environment,
    order: &crate::unit::order::Order,
) -> Result<(), ConfigError> {
    use crate::config::source::{Origin, PathSeg};
    use crate::unit::order::Action;
    // The error names the entry's own line (`tests[1]`, `unit`).
    let wrap = |kind: &'static str, at: Origin, target: String| {
        move |source: ConfigError| ConfigError::HostOrder {
            location: at.location(),
            kind,
            target,
            source: Box::new(source),
        }
    };
    match &order.action {
        Action::Tests(args) => {
            for (i, test) in args.tests.iter().enumerate() {
                let at = order.origin.key("tests").child(PathSeg::Index(i));
                test_run_plan(conf, env, test).map_err(wrap("tests", at, test.to_string()))?;
            }
        }
        Action::Upgrade(args) => {
            let at = order.origin.key("unit");
            load_start(conf, env, &args.unit).map_err(wrap("upgrade", at, args.unit.clone()))?;
        }
        _ => {}
    }
    Ok(())
}

/// The plan of one test run of a `tests` order, read as `dstart run` reads it.
pub fn test_run_plan(
    conf: &ConfigDir,
    env: &Environment,
    test: &crate::unit::order::TestRun,
) -> Result<testplan::TestPlan, ConfigError> {
    let command = UnitCommand::parse(&test.command)?;
    match load_unit(conf, env, &command, &test.args, false)? {
        Ok(unit) => testplan::plan(&unit, false),
        Err(_) => Err(ConfigError::UnitArguments {
            file: None,
            message: format!("the arguments of `{test}` ask for help"),
            hint: None,
        }),
    }
}

/// The containers and start orders of `unit` (its `start` command).
pub fn load_start(conf: &ConfigDir, env: &Environment, unit: &str) -> Result<Unit, ConfigError> {
    let command = UnitCommand::parse(&format!("{unit}/start"))?;
    match load_unit(conf, env, &command, &[], false)? {
        Ok(unit) => Ok(unit),
        Err(_) => Err(ConfigError::UnitArguments {
            file: None,
            message: format!("`{unit}/start` gives no unit without arguments"),
            hint: None,
        }),
    }
}

/// Resolves a typed unit into the unit command to run: checks the requested tokens, filters the
/// orders by variant, and derives generated commands from the start orders. `units` are the
/// units of the configuration directory with a `start` command (what `upgrade` goes through).
pub fn resolve(typed: TypedUnit, units: &[String]) -> Result<Unit, ConfigError> {
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
    variants::check_pending(&raw.pending, &known, &raw.modes, raw.base.path())?;
    let custom_tests: Vec<String> = if is_test {
        raw.pending
            .iter()
            .filter(|t| custom.contains(*t))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let mut containers = containers;
    let mut steps = variants::filter_steps(steps, &raw.active, raw.filtering);
    defaults::apply(&mut containers, &mut steps);
    let purge_test_data =
        matches!(&raw.base, BaseFile::Generated { command, .. } if command == "purge")
            .then(|| testplan::own_test_data(&raw.command.unit, &raw.environment))
            .flatten();
    let steps = match &raw.base {
        BaseFile::Explicit(_) => steps,
        BaseFile::Generated { command, .. } if command == "test" => steps,
        BaseFile::Generated { command, .. } if command == "upgrade" => {
            commands::upgrade(&raw.command.unit, units)?
        }
        BaseFile::Generated { command, .. } => {
            let mut generated = commands::generate(
                command,
                &raw.command.unit,
                &steps,
                &containers,
                &raw.environment,
            )?;
            defaults::apply(&mut containers, &mut generated);
            generated
        }
    };
    Ok(Unit {
        // Before `command` moves: fields are evaluated in written order.
        naming: crate::unit::naming::Naming::plain(&raw.command.unit),
        command: raw.command,
        containers,
        steps,
        environment: raw.environment,
        active: raw.active,
        test_variants: raw.test_variants,
        custom_tests,
        purge_test_data,
        nested: Vec::new(),
    })
}
