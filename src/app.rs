//! Dispatch of the subcommands: each one a thin wrapper around the stages.

use crate::cli::{Cli, Command, HelpArgs, ListArgs, RunArgs};
use crate::config::catalog::{self, find_readme};
use crate::config::discover::{self, ConfigDir};
use crate::config::environment::Environment;
use crate::config::loader::{Loaded, Loader, UnitCommand};
use crate::error::{ConfigError, Error, render};
use crate::output::{self, OutputConfig};
use crate::unit::{TypedUnit, Unit};

/// Runs one `dstart` invocation.
pub fn run(cli: &Cli) -> Result<(), Error> {
    output::init(OutputConfig {
        verbose: cli.verbose,
        debug: cli.debug,
        quiet: cli.quiet,
        errfile: cli.errfile.clone(),
        infofile: cli.infofile.clone(),
    })
    .map_err(|e| Error::Usage(format!("cannot open a log file: {e}")))?;
    match &cli.command {
        Command::Init => init(cli),
        Command::List(args) => list(cli, args),
        Command::Help(args) => help(cli, args),
        Command::Run(args) => run_unit(cli, args),
        Command::Completions { shell } => {
            output::result(crate::completion::script(*shell));
            Ok(())
        }
        Command::Complete { words } => {
            output::result(crate::completion::complete(words));
            Ok(())
        }
    }
}

/// Prints the final error: to the `-l` file if one was given, else to stderr.
pub fn report_error(err: &Error) {
    let text = render(err);
    output::fatal(&text);
}

fn init(cli: &Cli) -> Result<(), Error> {
    let dir = discover::init_target(cli.config_dir.as_deref())?;
    let files = discover::init(&dir)?;
    output::debug(format!(
        "Wrote initial data to config directory: {}",
        dir.display()
    ));
    output::info(format!(
        "Initialized {} with {} files; try `dstart -c {} list`",
        dir.display(),
        files.len(),
        dir.display()
    ));
    Ok(())
}

fn config_dir(cli: &Cli) -> Result<ConfigDir, Error> {
    let conf = discover::discover(cli.config_dir.as_deref())?;
    output::debug(format!(
        "Using configuration directory {}",
        conf.root().display()
    ));
    Ok(conf)
}

fn list(cli: &Cli, args: &ListArgs) -> Result<(), Error> {
    let conf = config_dir(cli)?;
    let want_units = args.units || !args.services;
    let units = want_units.then(|| conf.unit_commands());
    let services = args.services.then(|| conf.services());
    output::result(catalog::format_listing(
        units.as_deref(),
        services.as_deref(),
    ));
    Ok(())
}

fn help(cli: &Cli, args: &HelpArgs) -> Result<(), Error> {
    let conf = config_dir(cli)?;
    let (kind, name, dir, available) = match (&args.unit, &args.service) {
        (Some(u), _) => (
            "unit",
            u.clone(),
            conf.units_dir().join(u),
            conf.unit_names(),
        ),
        (None, Some(s)) => (
            "service",
            s.clone(),
            conf.services_dir().join(s),
            conf.services(),
        ),
        (None, None) => return Err(Error::Usage("give --unit or --service".into())),
    };
    if !available.contains(&name) {
        return Err(match kind {
            "unit" => ConfigError::UnknownUnit {
                unit: name,
                available,
            },
            _ => ConfigError::UnknownService {
                service: name,
                available,
            },
        }
        .into());
    }
    if let Some(path) = find_readme(&dir) {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        output::result(format!("{}\n", text.trim_end_matches('\n')));
        Ok(())
    } else {
        output::warn(
            "help",
            format!("Could not find a README file in {}", dir.display()),
        );
        Ok(())
    }
}

/// Reads, validates and resolves a unit command.
pub fn resolve_unit(
    conf: &ConfigDir,
    env: &Environment,
    unit_command: &UnitCommand,
    argv: &[String],
) -> Result<Result<Unit, Loaded>, ConfigError> {
    let loader = Loader { conf, env };
    match loader.load(unit_command, argv, false)? {
        Loaded::Unit(raw) => {
            let typed = TypedUnit::from_raw(*raw)?;
            crate::generate::resolve(typed).map(Ok)
        }
        other => Ok(Err(other)),
    }
}

fn run_unit(cli: &Cli, args: &RunArgs) -> Result<(), Error> {
    let unit_command = UnitCommand::parse(args.unit_command())?;
    let conf = config_dir(cli)?;
    let env = Environment::load(&conf, args.environment.as_deref())?;
    let loader = Loader {
        conf: &conf,
        env: &env,
    };
    let loaded = loader.load(&unit_command, args.unit_args(), args.print_substitutions)?;
    let raw = match loaded {
        Loaded::Help(text) => {
            output::result(text);
            return Ok(());
        }
        Loaded::Substitutions(text) => {
            output::result(if text.ends_with('\n') {
                text
            } else {
                format!("{text}\n")
            });
            return Ok(());
        }
        Loaded::Unit(raw) => raw,
    };
    let typed = TypedUnit::from_raw(*raw)?;
    let unit = crate::generate::resolve(typed)?;
    if args.print_unit || args.print_only {
        output::result(unit.to_yaml());
        return Ok(());
    }
    Err(Error::failed(format!(
        "running `{unit_command}` against the engine is not implemented yet"
    )))
}
