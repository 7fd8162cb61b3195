//! The typed arguments of each order kind, as the executor receives them.

use serde::Deserialize;

use super::ready::Ready;
use crate::unit::forms::StringOrList;
use crate::unit::values::Seconds;

/// What `start` does with an existing container whose configuration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recreate {
    /// Recreate when the configuration hash or the image changed (the default).
    #[default]
    Auto,
    /// Keep the existing container.
    Never,
    /// Always create a new container.
    Always,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StartArgs {
    pub restart: bool,
    pub attach: bool,
    /// Seconds a restart or recreate waits for the old run to stop (else `stop_timeout`).
    pub timeout: Option<u32>,
    pub ready: Option<Ready>,
    pub recreate: Recreate,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StopArgs {
    pub timeout: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoveArgs {
    #[serde(default)]
    pub v: bool,
    #[serde(default)]
    pub force: bool,
    pub timeout: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoveImageArgs {
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub noprune: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// The archive extension: `tar.gz`, `tar.zst` or `tar`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
            Compression::None => "tar",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupArgs {
    /// Directory of the archives (default `.`; may hold `${PWD}` / `${CONFIG_DIR}`).
    pub backup_dir: Option<String>,
    /// Archive name without extension (default `backup`).
    pub backup_name: Option<String>,
    /// Container paths to back up (default: all the container's own volumes).
    pub source: Option<StringOrList>,
    #[serde(default)]
    pub overwrite: bool,
    pub compression: Option<Compression>,
    /// Write `<name>-<UTC timestamp>.<ext>` and point `<name>.<ext>` at the newest.
    #[serde(default)]
    pub timestamp: bool,
    /// Which timestamped archives of this name stay: the newest N, or a restic-`forget` policy.
    pub keep: Option<crate::unit::backup::Keep>,
    /// Stop the container during the backup (started again only if it was running).
    #[serde(default)]
    pub stop: bool,
    /// Seconds to wait for another run holding the lock (default 600).
    pub lock_timeout: Option<Seconds>,
    /// Seconds the stop of `stop: true` may take (default 10).
    pub timeout: Option<u32>,
    /// Globs of members left out of the archive.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Run in the running container before the archive is made; its failure fails the backup.
    pub before: Option<crate::unit::backup::Hook>,
    /// Run in the running container afterwards, also when the archive failed.
    pub after: Option<crate::unit::backup::Hook>,
    /// Encrypt the archive for these age recipients.
    pub encrypt: Option<crate::unit::backup::Encrypt>,
    /// What the start after `stop: true` waits for (generated: the start order's `ready:`).
    #[serde(skip)]
    pub ready: Option<Ready>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestoreArgs {
    pub restore_dir: Option<String>,
    /// Archive name without extension (default `backup`): the newest archive of that name.
    pub restore_name: Option<String>,
    /// An exact archive file (instead of the newest by name).
    pub archive: Option<String>,
    /// Empty the target paths before unpacking.
    #[serde(default)]
    pub clean: bool,
    /// Stop the container during the restore (started again only if it was running).
    #[serde(default)]
    pub stop: bool,
    /// Seconds to wait for another run holding the lock (default 600).
    pub lock_timeout: Option<Seconds>,
    /// Seconds the stop of `stop: true` may take (default 10).
    pub timeout: Option<u32>,
    /// Run in the running container before the restore.
    pub before: Option<crate::unit::backup::Hook>,
    /// Run in the running container after the restore (started again if it was stopped).
    pub after: Option<crate::unit::backup::Hook>,
    /// The age identity file that decrypts an encrypted archive.
    pub identity: Option<String>,
    /// What the start after `stop: true` waits for (generated: the start order's `ready:`).
    #[serde(skip)]
    pub ready: Option<Ready>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecType {
    /// A helper container with `volumes_from` the container.
    FileSystem,
    /// A new container from the container's image and spec, removed afterwards.
    Temporary,
    /// `docker exec` in the running container (falls back to `temporary`).
    InRunning,
    /// A process on the host.
    Host,
}

/// Deserializes a word enum from the list of its words, in variant order.
macro_rules! word_enum {
    ($name:ident { $($word:literal => $variant:ident),+ $(,)? }) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const WORDS: &[&str] = &[$($word),+];
                const VARIANTS: &[$name] = &[$($name::$variant),+];
                crate::unit::forms::one_word(d, WORDS).map(|i| VARIANTS[i])
            }
        }
    };
}

word_enum!(Recreate { "auto" => Auto, "never" => Never, "always" => Always });
word_enum!(Compression { "gzip" => Gzip, "zstd" => Zstd, "none" => None });
word_enum!(ExecType {
    "file_system" => FileSystem,
    "temporary" => Temporary,
    "in_running" => InRunning,
    "host" => Host,
});

/// The command of an `execute` order.
#[derive(Debug, Clone, PartialEq)]
pub enum RunCommand {
    /// Executed directly.
    Argv(Vec<String>),
    /// Executed with `sh -c`, further items becoming `$0`, `$1`, ...
    Shell(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteArgs {
    pub run: RunCommand,
    /// Extra bind mounts for `file_system` / `temporary` runs: (host, container, read only).
    pub binds: Vec<(String, String, bool)>,
    pub exec_type: Option<ExecType>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TagArgs {
    pub repository: String,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommitArgs {
    pub repository: String,
    pub tag: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PushArgs {
    /// Default: the container's image.
    pub repository: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnitArgs {
    /// `UNIT/COMMAND[:TOKEN...]`
    pub unit: String,
    #[serde(default)]
    pub args: Vec<String>,
}

/// `tests` on `host` (seed 003 "Updates"): the test runs an `update` must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct TestsArgs {
    /// Each as `dstart run` takes it: `UNIT/test[:VARIANT...]`, then the unit's own
    /// arguments.
    pub tests: Vec<TestRun>,
}

/// One test run of a `tests` order: `web/test:check --flag`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRun {
    /// `UNIT/test[:VARIANT...]`.
    pub command: String,
    /// The unit's arguments (its `globals.yaml` parser).
    pub args: Vec<String>,
}

impl std::fmt::Display for TestRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.command)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// `upgrade` on `host` (the generated `UNIT/upgrade`): re-creates the running containers of
/// `unit` whose image reference now names another image.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpgradeArgs {
    /// A unit with a `start` command.
    pub unit: String,
}
