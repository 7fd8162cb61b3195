//! Dispatch of the subcommands: each one a thin wrapper around the stages.

use crate::cli::{
    BuildArgs, Cli, Command, ExportArgs, ExportFormat, Format, HelpArgs, ListArgs, LogsArgs,
    OrchestratorArg, PullWhen, RunArgs, StatusArgs, TableFormat,
};
use crate::config::catalog::{self, find_readme};
use crate::config::discover::{self, ConfigDir};
use crate::config::environment::Environment;
use crate::config::loader::{Loaded, UnitCommand};
use crate::engine;
use crate::error::{ConfigError, Error, Signal, render};
use crate::execute::{self, OrderError, Runtime, UnitRun};
use crate::generate::testplan;
use crate::output::{self, OutputConfig};
use crate::testing::runner;
use crate::unit::Unit;
use crate::unit::container::PullPolicy;
use crate::unit::orchestrator::{ORCHESTRATOR_VAR, Orchestrator};
use std::path::Path;

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
    let result = dispatch(cli);
    // A run whose log file lost lines did not succeed (SPEC: errors are not swallowed).
    match (result, output::log_file_failure()) {
        (Ok(()), Some(why)) => Err(Error::failed(why)),
        (result, _) => result,
    }
}

fn dispatch(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Init => init(cli),
        Command::List(args) => list(cli, args),
        Command::Help(args) => help(cli, args),
        Command::Run(args) => run_unit(cli, args),
        Command::Status(args) => status(cli, args),
        Command::Build(args) => build(cli, args),
        Command::Logs(args) => logs(cli, args),
        Command::Export(args) => export(cli, args),
        Command::Completions { shell } => {
            output::result(crate::completion::script(*shell));
            Ok(())
        }
        Command::WatchHelper { socket, container } => {
            engine::watchdog::watch(socket, container);
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
    output::fatal(err.module(), &render(err));
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
    if args.format == Format::Json {
        let mut out = serde_json::Map::new();
        if let Some(u) = units {
            out.insert("units".into(), u.into());
        }
        if let Some(s) = services {
            out.insert("services".into(), s.into());
        }
        output::result(format!("{}\n", serde_json::Value::Object(out)));
        return Ok(());
    }
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
    } else {
        output::warn(
            "help",
            format!("Could not find a README file in {}", dir.display()),
        );
    }
    if kind == "service" {
        service_api(cli, &conf, &name);
    }
    Ok(())
}

/// Shows the API labels of the images built from a service directory, when the engine can be
/// reached; otherwise says why at debug level. Never fails `help`.
fn service_api(cli: &Cli, conf: &ConfigDir, service: &str) {
    let env = Environment::load(conf, None).ok();
    let Ok((choice, timeout)) = choose_engine(cli, env.as_ref()) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    match runtime.block_on(crate::apidoc::describe_service(
        &choice.address,
        timeout,
        service,
    )) {
        Ok(text) if !text.is_empty() => output::result(text),
        Ok(_) => output::debug(format!(
            "No image built from the service {service} exists yet"
        )),
        Err(e) => output::debug(format!("Not showing the image API of {service}: {e}")),
    }
}

fn run_unit(cli: &Cli, args: &RunArgs) -> Result<(), Error> {
    let unit_command = UnitCommand::parse(args.unit_command())?;
    let conf = config_dir(cli)?;
    let env = Environment::load(&conf, args.environment.as_deref())?;
    let unit = match crate::generate::load_unit(
        &conf,
        &env,
        &unit_command,
        args.unit_args(),
        args.print_substitutions,
    )? {
        Ok(unit) => unit,
        Err(Loaded::Help(text)) => {
            output::result(text);
            return Ok(());
        }
        Err(Loaded::Substitutions(text)) => {
            output::result(if text.ends_with('\n') {
                text
            } else {
                format!("{text}\n")
            });
            return Ok(());
        }
        Err(Loaded::Unit(_)) => unreachable!("load_unit resolves units"),
    };
    if unit.command.command == "test" {
        if args.plan {
            return Err(Error::Usage(format!(
                "--plan applies to unit commands, not to the test run `{}`",
                unit.command
            )));
        }
        return test_unit(cli, args, conf, env, &unit);
    }
    if args.production || args.junit.is_some() {
        let flag = if args.production {
            "--production"
        } else {
            "--junit"
        };
        return Err(Error::Usage(format!(
            "{flag} applies to test runs (`UNIT/test`), not to `{}`",
            unit.command
        )));
    }
    if args.print_unit || args.print_only {
        output::result(unit.to_yaml());
        return Ok(());
    }
    // The whole run is loaded before the first engine call: nested `unit` orders too, and the
    // builds of the configuration directory that its builds may be built from.
    let mut unit = unit;
    let mut stack = vec![unit.command.to_string()];
    crate::generate::resolve_nested(&conf, &env, &mut unit, &mut stack)?;
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failed(format!("cannot read the current directory: {e}")))?;
    let chain = std::sync::Arc::new(execute::chain::Chain::for_run(&conf, &env, &cwd, &unit)?);
    let choices = RunChoices {
        chain: Some(&chain),
        ..RunChoices::of(args)
    };
    if args.plan {
        let format = args.format;
        return with_engine(cli, choices, conf, env, &unit, async |rt| {
            let run = UnitRun::new(rt, &unit, vec![unit.command.to_string()]);
            let lines = execute::preview::plan_steps(&run, &unit.steps)
                .await
                .map_err(|e| order_error(e, rt))?;
            output::result(match format {
                Format::Json => format!("{}\n", serde_json::to_string(&lines).unwrap_or_default()),
                Format::Text => lines.iter().map(|l| l.text() + "\n").collect(),
            });
            Ok(())
        });
    }
    with_engine(cli, choices, conf, env, &unit, async |rt| {
        let run = UnitRun::new(rt, &unit, vec![unit.command.to_string()]);
        // A `pull: never` image that is missing fails the run before any order ran.
        execute::pull::check_never(&run, &unit.steps)
            .await
            .map_err(|e| order_error(e, rt))?;
        Box::pin(run.run_unit())
            .await
            .map_err(|e| order_error(e, rt))
    })
}

/// The containers of `unit` as its `start` command composes them.
fn load_start(conf: &ConfigDir, env: &Environment, unit: &str) -> Result<Unit, Error> {
    Ok(crate::generate::load_start(conf, env, unit)?)
}

/// `dstart status [UNIT...]`.
fn status(cli: &Cli, args: &StatusArgs) -> Result<(), Error> {
    let conf = config_dir(cli)?;
    let env = Environment::load(&conf, None)?;
    let names = if args.units.is_empty() {
        conf.started_units()
    } else {
        args.units.clone()
    };
    let units = names
        .iter()
        .map(|u| load_start(&conf, &env, u))
        .collect::<Result<Vec<Unit>, Error>>()?;
    let Some(first) = units.first() else {
        return Ok(());
    };
    let format = args.format;
    with_engine(cli, RunChoices::default(), conf, env, first, async |rt| {
        let runs: Vec<UnitRun<'_>> = units
            .iter()
            .map(|u| UnitRun::new(rt, u, Vec::new()))
            .collect();
        let all = futures_util::future::join_all(runs.iter().map(execute::preview::status)).await;
        let mut lines = Vec::new();
        for result in all {
            lines.extend(result.map_err(|e| order_error(e, rt))?);
        }
        output::result(match format {
            TableFormat::Json => format!("{}\n", serde_json::to_string(&lines).unwrap_or_default()),
            TableFormat::Table => execute::preview::status_table(&lines),
        });
        Ok(())
    })
}

/// `dstart build [UNIT...]`: the builds of the units and the bases they need, resolved (and
/// checked: templates, `.dockerignore`, `FROM` cycles) before the engine is asked.
fn build(cli: &Cli, args: &BuildArgs) -> Result<(), Error> {
    let conf = config_dir(cli)?;
    let env = Environment::load(&conf, args.environment.as_deref())?;
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failed(format!("cannot read the current directory: {e}")))?;
    let (chain, order) = execute::chain::Chain::for_units(&conf, &env, &cwd, &args.units)?;
    for &i in &order {
        execute::context::Ignore::read(&chain.builds[i].ctx.dir)?;
    }
    let Some(first) = order.first().map(|&i| &chain.units[chain.builds[i].unit]) else {
        output::info("No unit builds an image");
        return Ok(());
    };
    let options = execute::builder::Options {
        push: args.push,
        pull: args.pull.map(pull_policy),
    };
    let unit = first.clone();
    let chain = std::sync::Arc::new(chain);
    let choices = RunChoices {
        pull: None,
        no_cache: args.no_cache,
        environment: args.environment.as_deref(),
        chain: Some(&chain),
    };
    with_engine(cli, choices, conf, env, &unit, async |rt| {
        execute::builder::build_all(rt, &chain, &order, options)
            .await
            .map_err(|e| order_error(e, rt))
    })
}

/// `dstart logs UNIT [CONTAINER...]`.
fn logs(cli: &Cli, args: &LogsArgs) -> Result<(), Error> {
    let since = match &args.since {
        Some(t) => execute::logs::parse_since(t).map_err(Error::Usage)?,
        None => 0,
    };
    let conf = config_dir(cli)?;
    let env = Environment::load(&conf, None)?;
    let unit = load_start(&conf, &env, &args.unit)?;
    let available: Vec<String> = unit.containers.keys().cloned().collect();
    let chosen = if args.containers.is_empty() {
        available.clone()
    } else {
        for c in &args.containers {
            if !unit.containers.contains_key(c) {
                return Err(Error::Usage(format!(
                    "`{c}` is no container of `{}` (it has {})",
                    args.unit,
                    available.join(", ")
                )));
            }
        }
        args.containers.clone()
    };
    let req = execute::logs::LogsRequest {
        containers: chosen.iter().map(|c| (c.clone(), c.clone())).collect(),
        follow: args.follow,
        since,
        tail: args.tail,
        timestamps: args.timestamps,
    };
    with_engine(cli, RunChoices::default(), conf, env, &unit, async |rt| {
        let run = UnitRun::new(rt, &unit, Vec::new());
        execute::logs::logs(&run, &req)
            .await
            .map_err(|e| order_error(e, rt))
    })
}

/// `dstart export UNIT[/COMMAND] [ARGS...]`: the unit command as a Compose file.
fn export(cli: &Cli, args: &ExportArgs) -> Result<(), Error> {
    let conf = config_dir(cli)?;
    let typed = args.command.first().map_or("", String::as_str);
    // `UNIT` alone (also a unit `a/b` in a subdirectory) means its `start` command.
    let (base, tokens) = typed.split_once(':').map_or((typed, ""), |(b, t)| (b, t));
    let text = if !base.contains('/') || conf.unit_names().iter().any(|u| u == base) {
        let tokens = if tokens.is_empty() {
            String::new()
        } else {
            format!(":{tokens}")
        };
        format!("{base}/start{tokens}")
    } else {
        typed.to_string()
    };
    let unit_command = UnitCommand::parse(&text)?;
    let env = Environment::load(&conf, args.environment.as_deref())?;
    let unit = match crate::generate::load_unit(
        &conf,
        &env,
        &unit_command,
        args.command.get(1..).unwrap_or(&[]),
        false,
    )? {
        Ok(unit) => unit,
        Err(Loaded::Help(text)) => {
            output::result(text);
            return Ok(());
        }
        Err(_) => return Err(Error::Usage(format!("`{unit_command}` gives no unit"))),
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failed(format!("cannot read the current directory: {e}")))?;
    let resolved = crate::export::resolve(conf.root(), &cwd, &unit);
    let text = match args.format {
        ExportFormat::Compose => crate::export::compose::compose(&unit, &resolved),
    }
    .map_err(|e| Error::UsageHint {
        hint: e.hint(),
        message: e.to_string(),
    })?;
    // The file holds `${NAME}` references instead of secrets; masking is the last guard.
    let text = output::mask(&text);
    match &args.output {
        None => output::result(text),
        Some(path) => crate::export::write_atomically(path, &text)
            .map_err(|e| Error::failed(format!("cannot write `{}`: {e}", path.display())))?,
    }
    Ok(())
}

/// `UNIT/test[:VARIANTS]`: plan the run, then run it (or print the plan).
fn test_unit(
    cli: &Cli,
    args: &RunArgs,
    conf: ConfigDir,
    env: Environment,
    unit: &Unit,
) -> Result<(), Error> {
    let plan = testplan::plan(unit, args.production)?;
    if args.print_unit || args.print_only {
        output::result(plan.to_yaml());
        return Ok(());
    }
    if orchestrator(cli, unit)? == Orchestrator::Swarm {
        if let Some(why) = plan.selection.swarm_refusal() {
            return Err(Error::UsageHint {
                message: format!("`{}` in swarm mode: {why}", unit.command),
                hint: "run this test on one engine with `--orchestrator engine` (docs/swarm.md)"
                    .into(),
            });
        }
    }
    let junit = args
        .junit
        .clone()
        .unwrap_or_else(|| runner::default_junit_path(&plan));
    with_engine(cli, RunChoices::of(args), conf, env, unit, async |rt| {
        let outcome = Box::pin(runner::run(rt, &plan, &junit)).await;
        if outcome.interrupted {
            Err(interrupted(rt))
        } else if outcome.report.failed() > 0 {
            Err(Error::failed(format!(
                "{} of {} test cases of `{}` failed (report: {})",
                outcome.report.failed(),
                outcome.report.passed() + outcome.report.failed(),
                plan.command,
                outcome.junit.display()
            )))
        } else {
            Ok(())
        }
    })
}

/// What a `run` chose on its command line that the run's [`Runtime`] carries (`status` and
/// `logs` choose none of it).
#[derive(Default, Clone, Copy)]
struct RunChoices<'a> {
    pull: Option<PullWhen>,
    no_cache: bool,
    /// `-e FILE`.
    environment: Option<&'a Path>,
    /// The builds the run's builds may be built from.
    chain: Option<&'a std::sync::Arc<execute::chain::Chain>>,
}

impl<'a> RunChoices<'a> {
    fn of(args: &'a RunArgs) -> RunChoices<'a> {
        RunChoices {
            pull: args.pull,
            no_cache: args.no_cache,
            environment: args.environment.as_deref(),
            chain: None,
        }
    }
}

/// `--pull WHEN` as a pull policy.
fn pull_policy(when: PullWhen) -> PullPolicy {
    match when {
        PullWhen::Always => PullPolicy::Always,
        PullWhen::Missing => PullPolicy::Missing,
        PullWhen::Never => PullPolicy::Never,
    }
}

/// Connects to the engine of `unit` and runs `work` on it, inside the async runtime. `env` is
/// the environment before the unit's globals (for nested `unit` orders).
fn with_engine(
    cli: &Cli,
    choices: RunChoices<'_>,
    conf: ConfigDir,
    env: Environment,
    unit: &Unit,
    work: impl AsyncFnOnce(&Runtime) -> Result<(), Error>,
) -> Result<(), Error> {
    let pull = choices.pull.map(pull_policy);
    let build_keep = execute::retention::build_keep(
        &unit.environment,
        &execute::retention::environment_files(&conf.environments_dir(), choices.environment),
    )?;
    let (choice, timeout) = choose_engine(cli, Some(&unit.environment))?;
    let orchestrator = orchestrator(cli, unit)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failed(format!("cannot read the current directory: {e}")))?;
    execute::context::check_ignores(conf.root(), &cwd, unit)?;
    let result = runtime.block_on(async {
        let interrupt = execute::interrupt::Interrupt::default();
        interrupt.listen();
        output::debug(format!(
            "Using the Docker engine at {} ({})",
            choice.address, choice.why
        ));
        let engine = engine::Engine::connect(&choice.address, timeout)
            .await
            .map_err(|e| Error::Failed {
                hint: e.hint(),
                message: e.to_string(),
                source: None,
            })?;
        output::debug(format!(
            "Connected to the Docker engine at {} (API {})",
            engine.address(),
            engine.api_version()
        ));
        let rt = Runtime {
            engine,
            conf,
            env,
            cwd,
            pull,
            no_cache: choices.no_cache,
            build_keep,
            interrupt,
            refusals: execute::ownership::Refusals::default(),
            chain: choices.chain.cloned().unwrap_or_default(),
            orchestrator,
        };
        if orchestrator == Orchestrator::Swarm {
            execute::swarm::check_manager(&rt)
                .await
                .map_err(|e| order_error(e, &rt))?;
        }
        work(&rt).await?;
        refused(&rt)
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Exit 1 when the run left alone something that dstart did not make for the unit (each was
/// named in a warning when it was met).
fn refused(rt: &Runtime) -> Result<(), Error> {
    let list = rt.refusals.list();
    if list.is_empty() {
        return Ok(());
    }
    Err(Error::Failed {
        message: format!(
            "left alone what dstart did not make for the unit: {}",
            list.join(", ")
        ),
        hint: Some(
            "dstart removes only what it made; remove or rename these by hand (docs/databases.md)"
                .into(),
        ),
        source: None,
    })
}

/// The engine of this run and why (SPEC "Command line"), and `DSTART_HTTP_TIMEOUT`: the
/// process environment, else the environment files (`env`).
fn choose_engine(
    cli: &Cli,
    env: Option<&Environment>,
) -> Result<(engine::resolve::Choice, std::time::Duration), Error> {
    let file = |name: &str| env.and_then(|e| e.get_str(name));
    let choice = engine::resolve::choose(
        cli.host.as_deref(),
        cli.context.as_deref(),
        file("DOCKER_HOST").as_deref(),
    )
    .map_err(|e| match e.hint() {
        Some(hint) => Error::UsageHint {
            message: e.message(),
            hint,
        },
        None => Error::Usage(e.message()),
    })?;
    let timeout_text = std::env::var(engine::HTTP_TIMEOUT_VAR)
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| file(engine::HTTP_TIMEOUT_VAR));
    let timeout = engine::http_timeout(timeout_text.as_deref()).map_err(Error::Usage)?;
    Ok((choice, timeout))
}

/// The orchestrator of a run of `unit`: `--orchestrator`, else `DSTART_ORCHESTRATOR` of the
/// environment files. In swarm mode the unit is checked for what Swarm cannot carry out
/// before anything runs (exit 2, naming the file and line).
fn orchestrator(cli: &Cli, unit: &Unit) -> Result<Orchestrator, Error> {
    let flag = cli.orchestrator.map(|o| match o {
        OrchestratorArg::Engine => Orchestrator::Engine,
        OrchestratorArg::Swarm => Orchestrator::Swarm,
    });
    let chosen = Orchestrator::choose(flag, unit.environment.get_str(ORCHESTRATOR_VAR).as_deref())
        .map_err(Error::Usage)?;
    if chosen == Orchestrator::Swarm {
        crate::unit::orchestrator::check_swarm(unit)?;
    }
    Ok(chosen)
}

/// The top-level error of an interrupted run: which signal it was.
fn interrupted(rt: &Runtime) -> Error {
    Error::Interrupted(rt.interrupt.signal().unwrap_or(Signal::Interrupt))
}

/// The top-level error of a failed order.
fn order_error(err: OrderError, rt: &Runtime) -> Error {
    match err {
        OrderError::Interrupted => interrupted(rt),
        OrderError::Config(c) => Error::Config(c),
        other => Error::Failed {
            hint: other.hint(),
            message: other.to_string(),
            source: None,
        },
    }
}
