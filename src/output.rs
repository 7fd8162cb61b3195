//! Every line the user sees goes through here: log lines (ORIGINAL §7.2), Docker and process
//! output gated by `-v` (§7.3), results printed to stdout, and progress on a terminal.
//!
//! Info and debug lines go to stdout (or the `-i` file), warnings and errors to stderr (or the
//! `-l` file). `-q` keeps only errors; `-d` adds debug lines (skips and automatic decisions).
//! Every secret value registered with [`add_secrets`] is shown as `***` (SPEC "Secrets").

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use crate::secrets::Secrets;

/// How chatty the output is, from the global flags.
#[derive(Debug, Clone, Default)]
pub struct OutputConfig {
    pub verbose: u8,
    pub debug: bool,
    pub quiet: bool,
    pub errfile: Option<PathBuf>,
    pub infofile: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

struct Output {
    config: OutputConfig,
    info_file: Option<LogFile>,
    err_file: Option<LogFile>,
    capture: Mutex<Option<Vec<String>>>,
    /// While capturing a test case, log lines go only to the capture (unless `-v`).
    capture_only: AtomicBool,
}

static OUTPUT: OnceLock<Output> = OnceLock::new();

/// The secret values of this run, masked in everything written.
static SECRETS: RwLock<Secrets> = RwLock::new(Secrets::new());

/// Registers secrets: from now on they are shown as `***`.
pub fn add_secrets(update: impl FnOnce(&mut Secrets)) {
    if let Ok(mut secrets) = SECRETS.write() {
        update(&mut secrets);
    }
}

/// `text` with the registered secrets masked.
pub fn mask(text: &str) -> String {
    match SECRETS.read() {
        Ok(secrets) => secrets.mask(text).into_owned(),
        Err(_) => text.to_string(),
    }
}

/// `value` as YAML text with the registered secrets masked, valid YAML still.
pub fn masked_yaml<T: serde::Serialize>(value: &T) -> String {
    match SECRETS.read() {
        Ok(secrets) => secrets.yaml(value),
        Err(_) => String::new(),
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A `-l` or `-i` file.
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(open_append(path)?),
        })
    }

    /// Appends `text`; the first failure of the run is said on stderr at once and kept for
    /// the exit status ([`log_file_failure`]): a cron run on a full disk must not lose its only
    /// error record silently.
    fn write(&self, text: &str) -> bool {
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(text.as_bytes()),
            Err(_) => Err(std::io::Error::other("the log file's lock is poisoned")),
        };
        match written {
            Ok(()) => true,
            Err(e) => {
                let message = format!(
                    "cannot write to the log file `{}`: {e}",
                    self.path.display()
                );
                if let Ok(mut first) = LOG_FILE_FAILURE.lock() {
                    if first.is_none() {
                        let _ = std::io::stderr().lock().write_all(
                            format!("{}: ERROR: output: {message}\n", timestamp()).as_bytes(),
                        );
                        *first = Some(message);
                    }
                }
                false
            }
        }
    }
}

/// The first failed write to a `-l` or `-i` file.
static LOG_FILE_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Why a write to a `-l` or `-i` file failed, if one did: the run then exits 1.
pub fn log_file_failure() -> Option<String> {
    LOG_FILE_FAILURE.lock().ok().and_then(|f| f.clone())
}

/// Sets up the output once per process. Later calls are ignored.
pub fn init(config: OutputConfig) -> std::io::Result<()> {
    let info_file = match &config.infofile {
        Some(p) => Some(LogFile::open(p)?),
        None => None,
    };
    let err_file = match &config.errfile {
        Some(p) => Some(LogFile::open(p)?),
        None => None,
    };
    let _ = OUTPUT.set(Output {
        config,
        info_file,
        err_file,
        capture: Mutex::new(None),
        capture_only: AtomicBool::new(false),
    });
    Ok(())
}

fn get() -> &'static Output {
    OUTPUT.get_or_init(|| Output {
        config: OutputConfig::default(),
        info_file: None,
        err_file: None,
        capture: Mutex::new(None),
        capture_only: AtomicBool::new(false),
    })
}

fn timestamp() -> String {
    chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S,%3f")
        .to_string()
}

fn enabled(out: &Output, level: Level) -> bool {
    match level {
        Level::Debug => out.config.debug && !out.config.quiet,
        Level::Info | Level::Warning => !out.config.quiet,
        Level::Error => true,
    }
}

fn emit(level: Level, module: Option<&str>, message: &str) {
    let out = get();
    let message = mask(message);
    let message = message.trim();
    if message.is_empty() {
        return;
    }
    if let Ok(mut cap) = out.capture.lock() {
        if let Some(buf) = cap.as_mut() {
            buf.push(format!("{}: {message}", level.name()));
        }
    }
    if !enabled(out, level) || (out.capture_only.load(Ordering::SeqCst) && out.config.verbose == 0)
    {
        return;
    }
    let line = match (level >= Level::Warning, module) {
        (true, Some(m)) => format!("{}: {}: {m}: {message}\n", timestamp(), level.name()),
        _ => format!("{}: {}: {message}\n", timestamp(), level.name()),
    };
    if level >= Level::Warning {
        match &out.err_file {
            Some(f) => {
                f.write(&line);
            }
            None => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    } else {
        match &out.info_file {
            Some(f) => {
                f.write(&line);
            }
            None => {
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            }
        }
    }
}

/// A skipped step or an automatic decision (shown with `-d`).
pub fn debug(message: impl AsRef<str>) {
    emit(Level::Debug, None, message.as_ref());
}

/// What was done.
pub fn info(message: impl AsRef<str>) {
    emit(Level::Info, None, message.as_ref());
}

/// Something the user should know about; the run goes on.
pub fn warn(module: &str, message: impl AsRef<str>) {
    emit(Level::Warning, Some(module), message.as_ref());
}

/// What failed.
pub fn error(module: &str, message: impl AsRef<str>) {
    emit(Level::Error, Some(module), message.as_ref());
}

/// Docker or process output, shown from verbosity `level` on (`-v` = 1, `-vv` = 2).
pub fn output(level: u8, message: impl AsRef<str>) {
    let out = get();
    let message = &mask(message.as_ref());
    if let Ok(mut cap) = out.capture.lock() {
        if let Some(buf) = cap.as_mut() {
            for line in message.lines() {
                buf.push(format!("OUTPUT: {line}"));
            }
        }
    }
    if out.config.verbose >= level {
        for line in message.lines() {
            emit_uncaptured(Level::Info, line);
        }
    }
}

/// How many repeats of a pull or push status pass for one shown at `-vv`.
const PROGRESS_REPEAT_EVERY: u32 = 20;

/// Pull and push progress (ORIGINAL §7.3): every line at `-v`, except that a status repeated
/// from the previous line is dropped there and shown every 20th time at `-vv`.
#[derive(Debug, Default)]
pub struct ProgressLog {
    last: Option<String>,
    repeats: u32,
}

impl ProgressLog {
    /// The verbosity from which a line with status `key` is shown; `None`: never.
    pub fn level(&mut self, key: &str) -> Option<u8> {
        if self.last.as_deref() == Some(key) {
            self.repeats += 1;
            return (self.repeats % PROGRESS_REPEAT_EVERY == 0).then_some(2);
        }
        self.last = Some(key.to_string());
        self.repeats = 0;
        Some(1)
    }

    /// Shows `line` (whose status is `key`) as Docker output, if its verbosity says so.
    pub fn show(&mut self, key: &str, line: &str) {
        if let Some(level) = self.level(key) {
            output(level, line);
        }
    }
}

fn emit_uncaptured(level: Level, message: &str) {
    let out = get();
    if !enabled(out, level) || message.trim().is_empty() {
        return;
    }
    let line = format!(
        "{}: {}: {}\n",
        timestamp(),
        level.name(),
        message.trim_end()
    );
    match &out.info_file {
        Some(f) => {
            f.write(&line);
        }
        None => {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

/// The verbosity given with `-v`.
pub fn verbosity() -> u8 {
    get().config.verbose
}

/// True when `-q` was given.
pub fn quiet() -> bool {
    get().config.quiet
}

/// A result (listing, printed unit, report line) on stdout, never filtered or timestamped.
pub fn result(text: impl AsRef<str>) {
    let text = mask(text.as_ref());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Whether progress bars should be drawn: stderr is a terminal and output is not quieted.
pub fn show_progress() -> bool {
    !get().config.quiet && std::io::stderr().is_terminal()
}

/// Starts collecting every log line (for a test case's report). With `only`, the lines are not
/// shown on the console unless `-v` was given. Returns what a previous capture collected, if any.
pub fn start_capture(only: bool) -> Option<Vec<String>> {
    let out = get();
    out.capture_only.store(only, Ordering::SeqCst);
    out.capture
        .lock()
        .ok()
        .and_then(|mut c| c.replace(Vec::new()))
}

/// Stops collecting and returns the collected lines.
pub fn stop_capture() -> Vec<String> {
    let out = get();
    out.capture_only.store(false, Ordering::SeqCst);
    out.capture
        .lock()
        .ok()
        .and_then(|mut c| c.take())
        .unwrap_or_default()
}

/// The final error of a run (`render`ed: `error: …` and its `caused by:` and `hint:` lines):
/// appended to the `-l` file as one log record of `module` in the format of ORIGINAL §7.2,
/// `<time>: ERROR: <module>: <message>`, the further lines following as they are; else written
/// to stderr unchanged.
pub fn fatal(module: &str, text: &str) {
    let out = get();
    let text = &mask(text);
    // Where the `-l` file cannot take it, the error goes to stderr after all.
    let written = out
        .err_file
        .as_ref()
        .is_some_and(|f| f.write(&fatal_record(&timestamp(), module, text)));
    if !written {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

fn fatal_record(time: &str, module: &str, text: &str) -> String {
    let message = text.strip_prefix("error: ").unwrap_or(text).trim_end();
    format!("{time}: ERROR: {module}: {message}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_error_is_one_record_without_a_second_prefix() {
        assert_eq!(
            fatal_record(
                "2026-01-02 03:04:05,678",
                "config",
                "error: conf/units/a/start.yaml:1:1: bad\nhint: do this\n"
            ),
            "2026-01-02 03:04:05,678: ERROR: config: conf/units/a/start.yaml:1:1: bad\nhint: do this\n"
        );
    }

    #[test]
    fn repeated_progress_is_dropped_at_v_and_sampled_at_vv() {
        let mut log = ProgressLog::default();
        assert_eq!(log.level("(a) Downloading"), Some(1));
        let repeats: Vec<Option<u8>> = (1..=40).map(|_| log.level("(a) Downloading")).collect();
        for (i, level) in repeats.iter().enumerate() {
            let n = i + 1;
            let expected = (n % 20 == 0).then_some(2);
            assert_eq!(*level, expected, "repeat {n}");
        }
        assert_eq!(log.level("(a) Download complete"), Some(1));
        assert_eq!(log.level("(b) Downloading"), Some(1));
        assert_eq!(
            log.level("(a) Downloading"),
            Some(1),
            "not the previous line"
        );
    }
}
