//! The command line (clap derive only). Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Start, stop, back up, restore and test groups of Docker containers described in YAML unit
/// files.
#[derive(Debug, Parser)]
#[command(
    name = "dstart",
    version,
    about,
    max_term_width = 100,
    disable_help_subcommand = true
)]
pub struct Cli {
    // `help` rather than a doc comment: the text names environment variables, which
    // clippy::doc_markdown would have in backticks, and clap would print the backticks.
    #[arg(
        short = 'c',
        long = "configdir",
        value_name = "DIR",
        global = true,
        help = "Configuration directory (default: $DOCKERSTRA_CONF, ~/.dockerstra, <prefix>/etc/dockerstra, /etc/dockerstra)"
    )]
    pub config_dir: Option<PathBuf>,

    #[arg(
        short = 'H',
        long = "host",
        value_name = "HOST",
        global = true,
        help = "Docker engine address (unix:///path, tcp://host:port, ssh://[user@]host[:port]); default: $DOCKER_HOST, $DOCKER_CONTEXT, DOCKER_HOST of the environment files, the Docker CLI's current context, the local socket"
    )]
    pub host: Option<String>,

    #[arg(
        long = "context",
        value_name = "NAME",
        global = true,
        conflicts_with = "host",
        help = "Docker context to use (as `docker context ls` lists them; `default`: the local socket)"
    )]
    pub context: Option<String>,

    #[arg(
        long = "orchestrator",
        value_name = "NAME",
        value_enum,
        global = true,
        help = "Who runs the containers: `engine` (containers, the default) or `swarm` (services on the swarm the engine manages); default: DSTART_ORCHESTRATOR of the environment files"
    )]
    pub orchestrator: Option<OrchestratorArg>,

    /// Show Docker and process output (-vv: more of it)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Also log skipped steps and automatic decisions
    #[arg(short, long, global = true)]
    pub debug: bool,

    /// Print only errors (for cron)
    #[arg(short, long, global = true, conflicts_with = "debug")]
    pub quiet: bool,

    /// Append warnings and errors to FILE instead of stderr
    #[arg(short = 'l', long = "errfile", value_name = "FILE", global = true)]
    pub errfile: Option<PathBuf>,

    /// Append info and debug lines to FILE instead of stdout
    #[arg(short = 'i', long = "infofile", value_name = "FILE", global = true)]
    pub infofile: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--orchestrator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrchestratorArg {
    Engine,
    Swarm,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the example configuration into the configuration directory
    Init,
    /// List unit commands or services
    List(ListArgs),
    /// Show the README of a unit or a service
    Help(HelpArgs),
    /// Run a unit command: UNIT/COMMAND[:TOKEN...] [ARGS...]
    Run(RunArgs),
    /// Show the containers of units: state, health, image, ports and drift from their specs
    Status(StatusArgs),
    /// Build the images of units (default: every unit), bases first: one line per image
    Build(BuildArgs),
    /// Show the output of a unit's containers, each line prefixed with its container
    Logs(LogsArgs),
    /// Write a unit command as a Compose file: the containers its start orders start
    Export(ExportArgs),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Removes a helper container when the dstart that runs it dies (started by dstart itself)
    #[command(name = "__watch-helper", hide = true)]
    WatchHelper {
        /// The engine's unix socket
        socket: PathBuf,
        /// The helper container
        container: String,
    },
    /// Completion candidates for the words typed so far (used by the completion scripts)
    #[command(name = "__complete", hide = true)]
    Complete {
        /// The words typed after `dstart`, the last one being completed (after `--`)
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        words: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List the unit commands (the default)
    #[arg(long)]
    pub units: bool,
    /// List the services (directories under services/ with a Dockerfile)
    #[arg(long)]
    pub services: bool,
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub format: Format,
}

/// `--format` of `run --plan` and `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--format` of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    pub format: TableFormat,
    /// The units (default: every unit with a `start` command)
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Extra environment file (YAML mapping), merged over the environment files
    #[arg(short = 'e', long = "environment", value_name = "FILE")]
    pub environment: Option<PathBuf>,
    /// Push every image that was built
    #[arg(long)]
    pub push: bool,
    /// Pull the FROM images that no build of the configuration directory makes: always (the
    /// default of a bare --pull), missing, or never
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "always"
    )]
    pub pull: Option<PullWhen>,
    /// Rebuild every image, without the engine's build cache
    #[arg(long)]
    pub no_cache: bool,
    /// The units (default: every unit)
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow new output
    #[arg(short, long)]
    pub follow: bool,
    /// Only output since this time (RFC 3339, or a UNIX time in seconds)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only the last N lines of each container
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Keep the engine's timestamp at the start of each line
    #[arg(short, long)]
    pub timestamps: bool,
    /// The unit
    #[arg(value_name = "UNIT")]
    pub unit: String,
    /// Its containers (default: all of them)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file format
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "compose")]
    pub format: ExportFormat,

    /// Write to FILE (replaced whole, never half-written) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Extra environment file (YAML mapping), merged over the environment files
    #[arg(short = 'e', long = "environment", value_name = "FILE")]
    pub environment: Option<PathBuf>,

    /// UNIT[/COMMAND[:TOKEN...]] (default command: `start`), then the arguments for the unit's
    /// own parser
    #[arg(
        value_name = "UNIT[/COMMAND] [ARGS]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 1..
    )]
    pub command: Vec<String>,
}

/// `export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A Compose file (spec 3.8) for docker-compose and `docker stack deploy`
    Compose,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct HelpArgs {
    /// A unit name
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,
    /// A service name
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Extra environment file (YAML mapping), merged over the environment files
    #[arg(short = 'e', long = "environment", value_name = "FILE")]
    pub environment: Option<PathBuf>,

    /// Print the resolved unit (composition and orders) as two YAML documents and exit
    #[arg(long)]
    pub print_unit: bool,

    /// The same as --print-unit (the original's name)
    #[arg(long)]
    pub print_only: bool,

    /// Print the unit file after template substitution and exit
    #[arg(long)]
    pub print_substitutions: bool,

    /// Print what the orders would do and why, asking the engine only (it changes nothing)
    #[arg(long)]
    pub plan: bool,

    /// Output format of --plan
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub format: Format,

    /// Run tests against the live containers (same as the `:production` token)
    #[arg(long)]
    pub production: bool,

    #[arg(
        long,
        value_name = "PATH",
        help = "Where to write the JUnit report of a test run"
    )]
    pub junit: Option<PathBuf>,

    /// Pull images always, when missing, or never, for every container of this run (instead
    /// of each container's `pull:`)
    #[arg(long, value_enum, value_name = "WHEN")]
    pub pull: Option<PullWhen>,

    /// Rebuild every image this run builds, without the engine's build cache
    #[arg(long)]
    pub no_cache: bool,

    /// UNIT/COMMAND[:TOKEN...], then the arguments for the unit's own parser (globals.yaml
    /// `parser`); options of `run` go before UNIT/COMMAND
    #[arg(
        value_name = "UNIT/COMMAND [ARGS]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 1..
    )]
    pub command: Vec<String>,
}

impl RunArgs {
    /// `UNIT/COMMAND[:TOKEN...]` as typed.
    pub fn unit_command(&self) -> &str {
        self.command.first().map_or("", String::as_str)
    }

    /// Everything after `UNIT/COMMAND`.
    pub fn unit_args(&self) -> &[String] {
        self.command.get(1..).unwrap_or(&[])
    }
}

/// `run --pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullWhen {
    Always,
    Missing,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn everything_after_unit_command_goes_to_args() {
        let cli = Cli::try_parse_from([
            "dstart",
            "run",
            "-H",
            "172.17.42.1:4243",
            "--print-only",
            "unit/start",
            "rest",
            "-c",
            "-v",
        ])
        .unwrap();
        assert_eq!(cli.host.as_deref(), Some("172.17.42.1:4243"));
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert!(run.print_only);
        assert_eq!(run.unit_command(), "unit/start");
        assert_eq!(run.unit_args(), ["rest", "-c", "-v"]);
        assert_eq!(cli.verbose, 0);
    }

    #[test]
    fn help_needs_exactly_one_option() {
        assert!(Cli::try_parse_from(["dstart", "help"]).is_err());
        assert!(Cli::try_parse_from(["dstart", "help", "--unit"]).is_err());
        assert!(Cli::try_parse_from(["dstart", "help", "--unit", "u", "--service", "s"]).is_err());
        assert!(Cli::try_parse_from(["dstart", "help", "--unit", "u"]).is_ok());
    }

    #[test]
    fn unit_help_flag_goes_to_unit_parser() {
        let cli = Cli::try_parse_from(["dstart", "run", "v/start", "-h"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.unit_args(), ["-h"]);
    }
}
