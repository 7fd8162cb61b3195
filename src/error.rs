//! Errors of every stage, and how the binary turns them into a message and an exit status.
//!
//! Exit status: 0 success, 1 an order or a test failed, 2 usage or configuration error,
//! 130 interrupted by SIGINT, 143 by SIGTERM.

use std::fmt;
use std::fmt::Write as _;
use std::path::PathBuf;

use thiserror::Error;

/// A place in a configuration file. Line and column are 1-based and refer to the rendered text
/// (what `--print-substitutions` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Location {
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Location {
            file: file.into(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// Errors while finding and reading the configuration directory and its unit files.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration directory `{}` does not exist", path.display())]
    DirMissing { path: PathBuf },
    #[error("could not find an initialized configuration directory")]
    NotInitialized { searched: Vec<PathBuf> },
    #[error("configuration directory `{}` is already initialized", path.display())]
    AlreadyInitialized { path: PathBuf },
    #[error(
        "no writable place for a configuration directory (tried {})",
        join_paths(tried)
    )]
    NoWritableDir { tried: Vec<PathBuf> },
    #[error("{location}: {message}")]
    Yaml { location: Location, message: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{location}: {message}")]
    Invalid {
        location: Location,
        message: String,
        hint: Option<String>,
    },
    #[error("expected UNIT/COMMAND, got `{given}`")]
    ExpectedUnitCommand { given: String },
    #[error("no unit command `{unit}/{command}`")]
    UnknownCommand {
        unit: String,
        command: String,
        available: Vec<String>,
    },
    #[error("no unit `{unit}`")]
    UnknownUnit {
        unit: String,
        available: Vec<String>,
    },
    #[error("no service `{service}`")]
    UnknownService {
        service: String,
        available: Vec<String>,
    },
    #[error("{location}: {}", cycle_message(chain))]
    ImportCycle {
        /// The `import` that closes the cycle.
        location: Location,
        chain: Vec<String>,
    },
    /// A `:TOKEN` that is no mode atom, group or variant tag of the unit command. `file` is
    /// where its tokens are defined (the unit's globals.yaml, else the unit file).
    #[error("{}invalid mode selected: `{token}`", file_prefix(file.as_deref()))]
    InvalidMode {
        file: Option<PathBuf>,
        token: String,
        valid: Vec<String>,
    },
    #[error(
        "{context}: the mode group references undefined mode atoms {}",
        quoted_list(atoms)
    )]
    UndefinedAtoms { context: String, atoms: Vec<String> },
    /// The unit's own arguments do not parse. `file` declares them.
    #[error("{}{message}", file_prefix(file.as_deref()))]
    UnitArguments {
        file: Option<PathBuf>,
        message: String,
        hint: Option<String>,
    },
    /// The declaration of a unit's argument (in `parser`) is wrong.
    #[error("{location}: {message}")]
    ArgumentSpec { location: Location, message: String },
    /// An imported unit command's arguments do not parse.
    #[error("{location}: `{importer}` imports `{target}`, whose arguments cannot be read")]
    ImportArguments {
        /// The `import` entry.
        location: Location,
        importer: String,
        target: String,
        #[source]
        source: Box<ConfigError>,
    },
    #[error("{location}: the `unit` order runs `{unit_command}`, which cannot run")]
    Nested {
        location: Location,
        unit_command: String,
        #[source]
        source: Box<ConfigError>,
    },
    /// A `tests` or `upgrade` order names a test run or a unit that does not load.
    #[error("{location}: the `{kind}` order runs `{target}`, which cannot run")]
    HostOrder {
        location: Location,
        kind: &'static str,
        target: String,
        #[source]
        source: Box<ConfigError>,
    },
    /// Test variants that cannot go together.
    #[error("{message}")]
    TestSelection { message: String },
}

fn file_prefix(file: Option<&std::path::Path>) -> String {
    file.map(|f| format!("{}: ", f.display()))
        .unwrap_or_default()
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cycle_message(chain: &[String]) -> String {
    // chain = [a, b, c, a]: "unit `a` imports `b`, which imports `c`, which imports `a` (cycle)"
    let mut out = String::new();
    for (i, item) in chain.iter().enumerate() {
        match i {
            0 => {
                let _ = write!(out, "`{item}` imports");
            }
            1 => {
                let _ = write!(out, " `{item}`");
            }
            _ => {
                let _ = write!(out, ", which imports `{item}`");
            }
        }
    }
    out.push_str(" (cycle)");
    out
}

/// Errors of the template stage (tera).
#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("{location}: undefined variable `{variable}`")]
    UndefinedVariable {
        location: Location,
        variable: String,
    },
    #[error("{location}: {message}")]
    Syntax { location: Location, message: String },
    #[error("{location}: {message}")]
    Render { location: Location, message: String },
    #[error(
        "{location}: template `{name}` was not found (looked in {})",
        join_paths(searched)
    )]
    MissingInclude {
        location: Location,
        name: String,
        searched: Vec<PathBuf>,
    },
}

impl ConfigError {
    /// A hint shown under the message, when one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::NotInitialized { searched } => Some(format!(
                "searched {}; create one with `dstart init` or point to one with `-c DIR`",
                join_paths(searched)
            )),
            ConfigError::DirMissing { .. } => {
                Some("create it with `dstart -c DIR init`".to_string())
            }
            ConfigError::ExpectedUnitCommand { .. } => {
                Some("write the unit and the command, for example `web/start`".to_string())
            }
            ConfigError::UnknownCommand { available, .. }
            | ConfigError::UnknownUnit { available, .. }
            | ConfigError::UnknownService { available, .. } => {
                if available.is_empty() {
                    None
                } else {
                    Some(format!("available: {}", available.join(", ")))
                }
            }
            ConfigError::InvalidMode { valid, .. } => {
                if valid.is_empty() {
                    Some("this unit command defines no modes or variants".to_string())
                } else {
                    Some(format!("valid tokens: {}", valid.join(", ")))
                }
            }
            ConfigError::Invalid { hint, .. } | ConfigError::UnitArguments { hint, .. } => {
                hint.clone()
            }
            // A parse failure (it has a hint), not a bad declaration: the import gave no values.
            ConfigError::ImportArguments { target, source, .. }
                if matches!(**source, ConfigError::UnitArguments { hint: Some(_), .. }) =>
            {
                Some(format!(
                    "an import reads `{target}` with the defaults of its arguments; give each of them a default"
                ))
            }
            ConfigError::Template(TemplateError::UndefinedVariable { .. }) => Some(
                "define it in an environment file, or make it optional with `| default(value=...)`"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// The top-level error of a `dstart` invocation.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    /// A usage error with a `hint:` line.
    #[error("{message}")]
    UsageHint { message: String, hint: String },
    #[error("{message}")]
    Failed {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
        hint: Option<String>,
    },
    #[error("interrupted by {0}")]
    Interrupted(Signal),
}

/// The signal that interrupted a run (SPEC "Signals").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, `systemctl stop`, `docker stop`).
    Terminate,
}

impl Signal {
    /// 128 + the signal number, as a shell reports a command the signal ended.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
            source: None,
            hint: None,
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) | Error::UsageHint { .. } => 2,
            Error::Failed { .. } => 1,
            Error::Interrupted(signal) => signal.exit_code(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(c) => c.hint(),
            Error::Failed { hint, .. } => hint.clone(),
            Error::UsageHint { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }

    /// The stage that failed, as the module name of a log record (ORIGINAL §7.2).
    pub fn module(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Usage(_) | Error::UsageHint { .. } => "cli",
            Error::Failed { .. } | Error::Interrupted(_) => "run",
        }
    }
}

/// Renders an error as `error: ...`, its causes as `caused by: ...` and a `hint: ...` line.
pub fn render(err: &Error) -> String {
    use std::error::Error as _;
    let mut out = format!("error: {err}\n");
    let mut source = err.source();
    // `transparent` variants repeat their inner message as the first source; skip repeats.
    let mut last = err.to_string();
    while let Some(cause) = source {
        let text = cause.to_string();
        if text != last {
            let _ = writeln!(out, "caused by: {text}");
        }
        last = text;
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        let _ = writeln!(out, "hint: {hint}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_display() {
        let mut loc = Location::file("units/web/start.yaml");
        assert_eq!(loc.to_string(), "units/web/start.yaml");
        loc.line = Some(3);
        assert_eq!(loc.to_string(), "units/web/start.yaml:3");
        loc.column = Some(7);
        assert_eq!(loc.to_string(), "units/web/start.yaml:3:7");
    }

    #[test]
    fn cycle_message_names_the_cycle() {
        let e = ConfigError::ImportCycle {
            location: Location {
                file: "units/db/start.yaml".into(),
                line: Some(1),
                column: Some(9),
            },
            chain: vec!["web/start".into(), "db/start".into(), "web/start".into()],
        };
        assert_eq!(
            e.to_string(),
            "units/db/start.yaml:1:9: `web/start` imports `db/start`, which imports `web/start` (cycle)"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::failed("x").exit_code(), 1);
        assert_eq!(Error::Interrupted(Signal::Interrupt).exit_code(), 130);
        assert_eq!(Error::Interrupted(Signal::Terminate).exit_code(), 143);
        assert_eq!(
            Error::Interrupted(Signal::Terminate).to_string(),
            "interrupted by SIGTERM"
        );
    }

    #[test]
    fn render_includes_causes_and_hint() {
        let err = Error::Config(ConfigError::Io {
            path: "x".into(),
            source: std::io::Error::other("boom"),
        });
        assert_eq!(render(&err), "error: cannot read `x`\ncaused by: boom\n");
    }
}
