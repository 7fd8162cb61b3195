//! Orders (ORIGINAL §3, SPEC "Orders"): `{container: {command: KIND, ...arguments}}`, typed per
//! kind, and `parallel:` blocks of orders that may run concurrently.
//!
//! Every order also accepts `wait` (seconds to sleep after it succeeded) and `variants` (the
//! tags that select it, ORIGINAL §5). Unknown arguments are errors listing the accepted ones.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::config::source::{Origin, PathSeg};
use crate::error::ConfigError;
use crate::unit::forms::{HttpStatus, StringOrList};

/// The virtual container for orders that run on the host.
pub const HOST: &str = "host";
/// The key of a block of orders that may run concurrently.
pub const PARALLEL: &str = "parallel";
/// How many orders of a `parallel` block run at once unless it says `max`.
pub const DEFAULT_PARALLEL: usize = 4;

/// Keys every order accepts.
const COMMON_KEYS: [&str; 4] = ["command", "timeout", "wait", "variants"];

/// The orders that use `timeout` (seconds a stop may take before the container is killed):
/// `start` (a restart, and the stop before a recreate), `stop`, `remove`, and `backup` and
/// `restore` with `stop: true`. The others accept it, as every order of the original did
/// (ORIGINAL §3 step 3), and have no use for it.
const TIMEOUT_KINDS: [&str; 5] = ["start", "stop", "remove", "backup", "restore"];

/// The `timeout` of an order that does not use it: still checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnusedTimeout {
    #[allow(dead_code)]
    timeout: u32,
}

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

/// When `start` considers a container ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    Http {
        url: String,
        status: u16,
        body_match: Option<String>,
        cert: Option<String>,
        timeout: f64,
    },
    Log {
        pattern: String,
        timeout: f64,
    },
    Healthy {
        timeout: f64,
    },
}

impl Ready {
    pub fn timeout(&self) -> f64 {
        match self {
            Ready::Http { timeout, .. }
            | Ready::Log { timeout, .. }
            | Ready::Healthy { timeout } => *timeout,
        }
    }
}

const DEFAULT_READY_TIMEOUT: f64 = 60.0;

/// `ready:` as written: the word `healthy`, or a mapping.
#[derive(Debug, Clone)]
enum RawReady {
    Healthy,
    Full(RawReadyFull),
}

impl<'de> Deserialize<'de> for RawReady {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawReady;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "`healthy`, or a mapping with `http` (and `status`, `match`, `cert`), `log` or `healthy: true`, each with an optional `timeout`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawReady, E> {
                if v == "healthy" {
                    Ok(RawReady::Healthy)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawReady, A::Error> {
                RawReadyFull::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawReady::Full)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReadyFull {
    http: Option<String>,
    log: Option<String>,
    healthy: Option<bool>,
    status: Option<HttpStatus>,
    #[serde(rename = "match", alias = "re.match")]
    body_match: Option<String>,
    cert: Option<String>,
    timeout: Option<f64>,
}

fn ready_from(origin: &Origin, raw: RawReady) -> Result<Ready, ConfigError> {
    let here = origin.key("ready");
    match raw {
        RawReady::Healthy => Ok(Ready::Healthy {
            timeout: DEFAULT_READY_TIMEOUT,
        }),
        RawReady::Full(f) => {
            let timeout = f.timeout.unwrap_or(DEFAULT_READY_TIMEOUT);
            let kinds = usize::from(f.http.is_some())
                + usize::from(f.log.is_some())
                + usize::from(f.healthy == Some(true));
            if kinds != 1 {
                return Err(here.invalid_with_hint(
                    "`ready` needs exactly one of `http`, `log` and `healthy: true`",
                    "for example `ready: {http: 'http://[[ip]](web):80/', status: 200}`",
                ));
            }
            if f.log.is_some() && (f.status.is_some() || f.body_match.is_some() || f.cert.is_some())
            {
                return Err(
                    here.invalid("`status`, `match` and `cert` belong to `ready: {http: ...}`")
                );
            }
            if let Some(p) = &f.log {
                regex::Regex::new(p).map_err(|e| {
                    here.key("log")
                        .invalid(format!("`ready.log`: invalid regex: {e}"))
                })?;
            }
            if let Some(p) = &f.body_match {
                regex::Regex::new(p).map_err(|e| {
                    here.key("match")
                        .invalid(format!("`ready.match`: invalid regex: {e}"))
                })?;
            }
            Ok(match (f.http, f.log) {
                (Some(url), _) => Ready::Http {
                    url,
                    status: f.status.map_or(200, |s| s.0),
                    body_match: f.body_match,
                    cert: f.cert,
                    timeout,
                },
                (None, Some(pattern)) => Ready::Log { pattern, timeout },
                (None, None) => Ready::Healthy { timeout },
            })
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStart {
    restart: Option<bool>,
    attach: Option<bool>,
    timeout: Option<u32>,
    ready: Option<RawReady>,
    recreate: Option<Recreate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StartArgs {
    pub restart: bool,
    pub attach: bool,
    pub timeout: u32,
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
    pub lock_timeout: Option<f64>,
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
    pub lock_timeout: Option<f64>,
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawExecute {
    run: StringOrList,
    #[serde(default)]
    shell: bool,
    binds: Option<Value>,
    #[serde(rename = "type")]
    exec_type: Option<ExecType>,
    #[serde(default)]
    env: indexmap::IndexMap<String, crate::unit::container::Scalar>,
    user: Option<String>,
    working_dir: Option<String>,
}

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

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// What an order does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Build,
    Create,
    Start(StartArgs),
    Stop(StopArgs),
    Remove(RemoveArgs),
    RemoveImage(RemoveImageArgs),
    Backup(BackupArgs),
    Restore(RestoreArgs),
    Execute(ExecuteArgs),
    Tag(TagArgs),
    Commit(CommitArgs),
    Push(PushArgs),
    Unit(UnitArgs),
}

/// Every order kind, for messages.
pub const KINDS: [&str; 13] = [
    "build",
    "create",
    "start",
    "stop",
    "remove",
    "remove_image",
    "backup",
    "restore",
    "execute",
    "tag",
    "commit",
    "push",
    "unit",
];

impl Action {
    /// The `command` word of this action.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Build => "build",
            Action::Create => "create",
            Action::Start(_) => "start",
            Action::Stop(_) => "stop",
            Action::Remove(_) => "remove",
            Action::RemoveImage(_) => "remove_image",
            Action::Backup(_) => "backup",
            Action::Restore(_) => "restore",
            Action::Execute(_) => "execute",
            Action::Tag(_) => "tag",
            Action::Commit(_) => "commit",
            Action::Push(_) => "push",
            Action::Unit(_) => "unit",
        }
    }

    /// Whether this action runs on the host rather than on a container.
    pub fn runs_on_host(&self) -> bool {
        match self {
            Action::Unit(_) => true,
            Action::Execute(e) => e.exec_type == Some(ExecType::Host),
            _ => false,
        }
    }
}

/// One order.
#[derive(Debug, Clone)]
pub struct Order {
    pub container: String,
    pub action: Action,
    /// Seconds to sleep after the order succeeded.
    pub wait: f64,
    /// Tags selecting this order (ORIGINAL §5); empty = always.
    pub variants: Vec<String>,
    /// The arguments as written, without `variants` (what `--print-unit` shows).
    pub raw: Mapping,
    pub origin: Origin,
    /// dstart generated this order (ORIGINAL §4); a generated backup skips containers without
    /// volumes instead of failing.
    pub generated: bool,
}

/// A step of a unit command: one order, or a block of orders that may run concurrently.
#[derive(Debug, Clone)]
pub enum Step {
    Order(Box<Order>),
    Parallel {
        /// How many run at once.
        max: usize,
        /// Whether the unit said `max` (printed back only then).
        max_given: bool,
        orders: Vec<Order>,
        /// dstart made this block (generated teardown); printed as plain orders.
        generated: bool,
    },
}

impl Step {
    /// The orders of this step, in written order.
    pub fn orders(&self) -> &[Order] {
        match self {
            Step::Order(o) => std::slice::from_ref(o.as_ref()),
            Step::Parallel { orders, .. } => orders,
        }
    }
}

/// The keys `kind` accepts: its own (`own`) plus the keys every order accepts.
fn accepted_keys(kind: &str, own: &[String]) -> String {
    let mut keys: Vec<&str> = own.iter().map(String::as_str).collect();
    for k in COMMON_KEYS {
        if k != "command" && !keys.contains(&k) {
            keys.push(k);
        }
    }
    let list = keys
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("`{kind}` accepts {list}")
}

fn deserialize_args<T: for<'de> Deserialize<'de>>(
    kind: &str,
    container: &str,
    args: &Mapping,
    origin: &Origin,
) -> Result<T, ConfigError> {
    let what = format!("order `{kind}` on `{container}`");
    origin
        .read::<T>(&Value::Mapping(args.clone()))
        .map_err(|mut e| match e.unknown_key.take() {
            // An unknown argument of the order itself: the hint lists the order's arguments. An
            // unknown key deeper down (in `ready`) keeps the list of its own mapping.
            Some((key, own)) if e.rel.len() == 1 => {
                e.message = format!("unknown key `{key}`");
                (*e).into_config_error(&what, Some(accepted_keys(kind, &own)))
            }
            _ => (*e).into_config_error(&what, None),
        })
}

fn parse_wait(value: &Value, origin: &Origin) -> Result<f64, ConfigError> {
    match value {
        Value::Bool(true) => Ok(1.0),
        Value::Bool(false) | Value::Null => Ok(0.0),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| *f >= 0.0)
            .ok_or_else(|| origin.invalid("`wait` must be a number of seconds")),
        _ => Err(origin.invalid("`wait` must be a number of seconds")),
    }
}

fn parse_binds(value: &Value, origin: &Origin) -> Result<Vec<(String, String, bool)>, ConfigError> {
    let binds: crate::unit::container::BindsValue = origin.deserialize(value, "`binds`")?;
    let mut out = Vec::new();
    match binds {
        crate::unit::container::BindsValue::Map(m) => {
            for (host, target) in m {
                match target {
                    crate::unit::container::BindTarget::Path(p) => out.push((host, p, false)),
                    crate::unit::container::BindTarget::Full(f) => {
                        let ro = f.ro.unwrap_or(f.mode.as_deref() == Some("ro"));
                        out.push((host, f.bind, ro));
                    }
                }
            }
        }
        crate::unit::container::BindsValue::List(l) => {
            for item in l {
                match crate::unit::container::parse_volume(&item) {
                    Ok(crate::unit::container::MountSpec::Bind {
                        host,
                        container,
                        read_only,
                    }) => {
                        out.push((host, container, read_only));
                    }
                    _ => {
                        return Err(origin
                            .invalid(format!("`binds`: `{item}` is not /host:/container[:ro]")));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Takes `ready:` out of the arguments of a backup or restore (the start after `stop: true`).
fn take_ready(args: &mut Mapping, here: &Origin) -> Result<Option<Ready>, ConfigError> {
    let Some(v) = args.remove("ready") else {
        return Ok(None);
    };
    let raw: RawReady = here.key("ready").deserialize(&v, "`ready`")?;
    ready_from(here, raw).map(Some)
}

/// Reads the order `{container: args}` at `origin` (the list item).
pub fn order_from_value(
    container: &str,
    value: &Value,
    origin: &Origin,
) -> Result<Order, ConfigError> {
    let here = origin.key(container);
    let Value::Mapping(map) = value else {
        return Err(here.invalid_with_hint(
            format!("order on `{container}`: expected a mapping with `command`"),
            "write an order as `- web: {command: start}`",
        ));
    };
    let mut args = Mapping::new();
    let mut command = None;
    let mut wait = 0.0;
    let mut variants = Vec::new();
    let mut raw = Mapping::new();
    for (k, v) in map {
        let key = crate::config::source::key_string(k).unwrap_or_default();
        match key.as_str() {
            "command" => {
                command = Some(
                    v.as_str()
                        .ok_or_else(|| {
                            here.key("command")
                                .invalid("`command` must be a word like `start`")
                        })?
                        .to_string(),
                );
                raw.insert(k.clone(), v.clone());
            }
            "wait" => {
                wait = parse_wait(v, &here.key("wait"))?;
                raw.insert(k.clone(), v.clone());
            }
            "variants" => {
                variants = here
                    .deserialize::<StringOrList>(v, "`variants`")
                    .map_err(|_| {
                        here.key("variants")
                            .invalid("`variants` must be a list of tags")
                    })?
                    .to_vec();
            }
            _ => {
                args.insert(k.clone(), v.clone());
                raw.insert(k.clone(), v.clone());
            }
        }
    }
    let Some(command) = command else {
        return Err(here.invalid_with_hint(
            format!("order on `{container}` has no `command`"),
            format!("one of {}", KINDS.join(", ")),
        ));
    };
    let corigin = here.key("command");
    if !TIMEOUT_KINDS.contains(&command.as_str()) {
        if let Some(timeout) = args.remove("timeout") {
            let mut only = Mapping::new();
            only.insert("timeout".into(), timeout);
            deserialize_args::<UnusedTimeout>(&command, container, &only, &here)?;
        }
    }
    let action = match command.as_str() {
        "build" => {
            deserialize_args::<NoArgs>("build", container, &args, &here)?;
            Action::Build
        }
        "create" => {
            deserialize_args::<NoArgs>("create", container, &args, &here)?;
            Action::Create
        }
        "start" => {
            let r: RawStart = deserialize_args("start", container, &args, &here)?;
            Action::Start(StartArgs {
                restart: r.restart.unwrap_or(false),
                attach: r.attach.unwrap_or(false),
                timeout: r.timeout.unwrap_or(10),
                ready: r.ready.map(|x| ready_from(&here, x)).transpose()?,
                recreate: r.recreate.unwrap_or_default(),
            })
        }
        "stop" => Action::Stop(deserialize_args("stop", container, &args, &here)?),
        "remove" => Action::Remove(deserialize_args("remove", container, &args, &here)?),
        "remove_image" => {
            Action::RemoveImage(deserialize_args("remove_image", container, &args, &here)?)
        }
        "backup" => {
            let ready = take_ready(&mut args, &here)?;
            let mut b: BackupArgs = deserialize_args("backup", container, &args, &here)?;
            b.ready = ready;
            if b.keep.is_some() && !b.timestamp {
                return Err(here.key("keep").invalid_with_hint(
                    "`keep` prunes timestamped archives, but `timestamp` is not set",
                    "add `timestamp: true`",
                ));
            }
            if let Some(problem) = b.keep.as_ref().and_then(crate::unit::backup::Keep::problem) {
                return Err(here.key("keep").invalid(problem));
            }
            if b.overwrite && b.timestamp {
                return Err(here.key("overwrite").invalid(
                    "`overwrite` is for fixed names; a timestamped backup never overwrites",
                ));
            }
            if let Some(n) = &b.backup_name {
                check_archive_name(n, &here.key("backup_name"))?;
            }
            Action::Backup(b)
        }
        "restore" => {
            let ready = take_ready(&mut args, &here)?;
            let mut r: RestoreArgs = deserialize_args("restore", container, &args, &here)?;
            r.ready = ready;
            if r.archive.is_some() && r.restore_name.is_some() {
                return Err(here
                    .key("archive")
                    .invalid("give either `archive` or `restore_name`"));
            }
            if let Some(n) = &r.restore_name {
                check_archive_name(n, &here.key("restore_name"))?;
            }
            Action::Restore(r)
        }
        "execute" => {
            let r: RawExecute = deserialize_args("execute", container, &args, &here)?;
            let run = match (r.run, r.shell) {
                (StringOrList::One(s), _) => RunCommand::Shell(vec![s]),
                (StringOrList::Many(v), true) => RunCommand::Shell(v),
                (StringOrList::Many(v), false) => RunCommand::Argv(v),
            };
            let empty = match &run {
                RunCommand::Argv(v) | RunCommand::Shell(v) => v.is_empty(),
            };
            if empty {
                return Err(here.key("run").invalid("`run` is empty"));
            }
            let binds = match &r.binds {
                Some(b) => parse_binds(b, &here.key("binds"))?,
                None => Vec::new(),
            };
            let exec_type = if container == HOST {
                match r.exec_type {
                    None | Some(ExecType::Host) => Some(ExecType::Host),
                    Some(_) => {
                        return Err(here
                            .key("type")
                            .invalid("the `host` pseudo-container only takes `type: host`"));
                    }
                }
            } else {
                r.exec_type
            };
            Action::Execute(ExecuteArgs {
                run,
                binds,
                exec_type,
                env: r.env.into_iter().map(|(k, v)| (k, v.as_string())).collect(),
                user: r.user,
                working_dir: r.working_dir,
            })
        }
        "tag" => Action::Tag(deserialize_args("tag", container, &args, &here)?),
        "commit" => Action::Commit(deserialize_args("commit", container, &args, &here)?),
        "push" => Action::Push(deserialize_args("push", container, &args, &here)?),
        "unit" => {
            let u: UnitArgs = deserialize_args("unit", container, &args, &here)?;
            if !u.unit.contains('/') {
                return Err(here
                    .key("unit")
                    .invalid(format!("`unit: {}` is not UNIT/COMMAND", u.unit)));
            }
            Action::Unit(u)
        }
        other => {
            return Err(corigin.invalid_with_hint(
                format!("unknown order `{other}` on `{container}`"),
                format!("orders are {}", KINDS.join(", ")),
            ));
        }
    };
    if container == HOST && !action.runs_on_host() {
        return Err(corigin.invalid_with_hint(
            format!("`{command}` cannot run on `host`"),
            "the `host` pseudo-container takes `execute` and `unit` orders",
        ));
    }
    Ok(Order {
        container: container.to_string(),
        action,
        wait,
        variants,
        raw,
        origin: here,
        generated: false,
    })
}

fn check_archive_name(name: &str, origin: &Origin) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(origin.invalid(format!(
            "`{name}` is not a plain file name (no `/`, not starting with `.`)"
        )));
    }
    Ok(())
}

/// Reads one item of the orders document.
pub fn step_from_value(item: &Value, origin: &Origin) -> Result<Step, ConfigError> {
    let Value::Mapping(map) = item else {
        return Err(origin.invalid_with_hint(
            "an order is a one-key mapping `{container: {command: ...}}`",
            "write an order as `- web: {command: start}`",
        ));
    };
    if map.len() != 1 {
        let keys: Vec<String> = map
            .keys()
            .filter_map(crate::config::source::key_string)
            .collect();
        return Err(origin.invalid_with_hint(
            format!(
                "an order names one container, this one names {}: {}",
                map.len(),
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "put each container's order in its own list item",
        ));
    }
    let (k, v) = map.iter().next().expect("one entry");
    let Some(name) = crate::config::source::key_string(k) else {
        return Err(origin.invalid("an order's key must be a container name"));
    };
    if name == PARALLEL {
        return parallel_from_value(v, &origin.key(PARALLEL));
    }
    order_from_value(&name, v, origin).map(|o| Step::Order(Box::new(o)))
}

fn parallel_from_value(value: &Value, origin: &Origin) -> Result<Step, ConfigError> {
    let (items, max, max_given, items_origin) = match value {
        Value::Sequence(items) => (items.clone(), DEFAULT_PARALLEL, false, origin.clone()),
        Value::Mapping(map) => {
            let mut items = None;
            let mut max = None;
            for (k, v) in map {
                match crate::config::source::key_string(k).as_deref() {
                    Some("orders") => {
                        items = Some(
                            v.as_sequence()
                                .ok_or_else(|| {
                                    origin
                                        .key("orders")
                                        .invalid("`parallel.orders` must be a list of orders")
                                })?
                                .clone(),
                        );
                    }
                    Some("max") => {
                        let n = v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                            origin
                                .key("max")
                                .invalid("`parallel.max` must be a number of at least 1")
                        })?;
                        max = Some(usize::try_from(n).unwrap_or(usize::MAX));
                    }
                    other => {
                        return Err(origin.key(other.unwrap_or("?")).invalid_with_hint(
                            format!("unknown key `{}` in `parallel`", other.unwrap_or("?")),
                            "`parallel` accepts `orders` and `max`",
                        ));
                    }
                }
            }
            let items = items.ok_or_else(|| origin.invalid("`parallel` needs `orders`"))?;
            (
                items,
                max.unwrap_or(DEFAULT_PARALLEL),
                max.is_some(),
                origin.key("orders"),
            )
        }
        _ => {
            return Err(origin.invalid_with_hint(
                "`parallel` takes a list of orders",
                "- parallel:\n      - web1: {command: start}\n      - web2: {command: start}",
            ));
        }
    };
    let mut orders = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_origin = items_origin.child(PathSeg::Index(i));
        match step_from_value(item, &item_origin)? {
            Step::Order(o) => orders.push(*o),
            Step::Parallel { .. } => {
                return Err(item_origin.invalid("a `parallel` block cannot hold another one"));
            }
        }
    }
    Ok(Step::Parallel {
        max,
        max_given,
        orders,
        generated: false,
    })
}

/// The printed form of an order: `{container: {command: ..., args...}}`.
pub fn order_to_value(order: &Order) -> Value {
    let mut m = Mapping::new();
    m.insert(
        Value::String(order.container.clone()),
        Value::Mapping(order.raw.clone()),
    );
    Value::Mapping(m)
}

/// The printed form of a list of steps.
pub fn steps_to_value(steps: &[Step]) -> Value {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Order(o) => out.push(order_to_value(o)),
            Step::Parallel {
                generated: true,
                orders,
                ..
            } => out.extend(orders.iter().map(order_to_value)),
            Step::Parallel {
                max,
                max_given,
                orders,
                ..
            } => {
                let list = Value::Sequence(orders.iter().map(order_to_value).collect());
                let body = if *max_given {
                    let mut m = Mapping::new();
                    m.insert("max".into(), Value::from(*max as u64));
                    m.insert("orders".into(), list);
                    Value::Mapping(m)
                } else {
                    list
                };
                let mut m = Mapping::new();
                m.insert(PARALLEL.into(), body);
                out.push(Value::Mapping(m));
            }
        }
    }
    Value::Sequence(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::config::source::Source;

    fn steps(yaml: &str) -> Result<Vec<Step>, ConfigError> {
        let text = format!("{{}}\n---\n{yaml}");
        let source = Arc::new(Source::new("units/t/start.yaml", text));
        let docs = source.documents().unwrap();
        let seq = docs[1].as_sequence().unwrap().clone();
        seq.iter()
            .enumerate()
            .map(|(i, item)| {
                step_from_value(
                    item,
                    &Origin::new(Arc::clone(&source), 1, vec![PathSeg::Index(i)]),
                )
            })
            .collect()
    }

    fn one(yaml: &str) -> Order {
        match steps(yaml).unwrap().remove(0) {
            Step::Order(o) => *o,
            Step::Parallel { .. } => panic!("parallel"),
        }
    }

    #[test]
    fn start_defaults_and_arguments() {
        let o = one("- web: {command: start}\n");
        assert_eq!(
            o.action,
            Action::Start(StartArgs {
                restart: false,
                attach: false,
                timeout: 10,
                ready: None,
                recreate: Recreate::Auto
            })
        );
        let o = one(
            "- web: {command: start, restart: true, timeout: 0, wait: 2, recreate: never, ready: {http: 'http://x/', status: 204}}\n",
        );
        let Action::Start(s) = &o.action else {
            panic!()
        };
        assert!(s.restart);
        assert_eq!(s.recreate, Recreate::Never);
        assert!((o.wait - 2.0).abs() < f64::EPSILON);
        assert!(matches!(&s.ready, Some(Ready::Http { status: 204, .. })));
        let o = one("- web: {command: start, ready: healthy}\n");
        let Action::Start(s) = &o.action else {
            panic!()
        };
        assert!(matches!(s.ready, Some(Ready::Healthy { .. })));
    }

    #[test]
    fn unknown_argument_lists_accepted_keys() {
        let err = steps("- web: {command: start, restrat: true}\n").unwrap_err();
        let ConfigError::Invalid {
            location,
            message,
            hint,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(location.to_string(), "units/t/start.yaml:3:25");
        assert!(
            message.ends_with("`restrat`: unknown key `restrat`"),
            "{message}"
        );
        let hint = hint.clone().unwrap();
        assert!(
            hint.contains("`restart`") && hint.contains("`wait`"),
            "{hint}"
        );
    }

    #[test]
    fn every_order_accepts_timeout() {
        for order in [
            "{command: build, timeout: 5}",
            "{command: create, timeout: 5}",
            "{command: remove_image, timeout: 5}",
            "{command: execute, run: ls, timeout: 5}",
            "{command: tag, repository: r, timeout: 5}",
            "{command: commit, repository: r, timeout: 5}",
            "{command: push, timeout: 5}",
        ] {
            let o = one(&format!("- web: {order}\n"));
            // Printed back as written.
            assert!(o.raw.contains_key("timeout"), "{order}");
        }
        let o = one("- host: {command: unit, unit: a/start, timeout: 5}\n");
        assert!(matches!(o.action, Action::Unit(_)));
        let Action::Backup(b) = one("- web: {command: backup, stop: true, timeout: 3}\n").action
        else {
            panic!()
        };
        assert_eq!(b.timeout, Some(3));
        let Action::Restore(r) = one("- web: {command: restore, timeout: 3}\n").action else {
            panic!()
        };
        assert_eq!(r.timeout, Some(3));
        let Action::Stop(s) = one("- web: {command: stop}\n").action else {
            panic!()
        };
        assert_eq!(s.timeout, None);
    }

    #[test]
    fn an_unused_timeout_is_still_checked() {
        let err = steps("- web: {command: create, timeout: soon}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "units/t/start.yaml:3:26: order `create` on `web`: `timeout`: expected a whole number, 0 or more, found `soon`"
        );
        let err = steps("- web: {command: create, timout: 5}\n").unwrap_err();
        assert_eq!(
            err.hint().unwrap(),
            "`create` accepts `timeout`, `wait`, `variants`"
        );
    }

    #[test]
    fn unknown_command_and_missing_command() {
        let err = steps("- web: {command: strat}\n").unwrap_err().to_string();
        assert!(err.contains("unknown order `strat` on `web`"), "{err}");
        let err = steps("- web: {restart: true}\n").unwrap_err().to_string();
        assert!(err.contains("has no `command`"), "{err}");
        let err = steps("- web: {command: start}\n  db: {command: start}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("names 2"), "{err}");
    }

    #[test]
    fn execute_forms_and_host() {
        let o = one("- host: {command: execute, run: 'echo hi'}\n");
        let Action::Execute(e) = &o.action else {
            panic!()
        };
        assert_eq!(e.run, RunCommand::Shell(vec!["echo hi".into()]));
        assert_eq!(e.exec_type, Some(ExecType::Host));
        let o = one("- web: {command: execute, run: [ls, /], type: in_running}\n");
        let Action::Execute(e) = &o.action else {
            panic!()
        };
        assert_eq!(e.run, RunCommand::Argv(vec!["ls".into(), "/".into()]));
        let err = steps("- host: {command: start}\n").unwrap_err().to_string();
        assert!(err.contains("cannot run on `host`"), "{err}");
    }

    #[test]
    fn backup_checks() {
        let err = steps("- web: {command: backup, keep: 3}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`timestamp` is not set"), "{err}");
        let err = steps("- web: {command: backup, compression: lz4}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lz4"), "{err}");
        let o = one(
            "- web: {command: backup, timestamp: true, keep: 3, compression: zstd, variants: [nightly]}\n",
        );
        assert_eq!(o.variants, vec!["nightly".to_string()]);
        assert!(!o.raw.contains_key("variants"));
    }

    #[test]
    fn parallel_blocks() {
        let s = steps("- parallel:\n  - a: {command: start}\n  - b: {command: start}\n- parallel: {max: 2, orders: [{c: {command: stop}}]}\n").unwrap();
        assert!(
            matches!(&s[0], Step::Parallel { max: DEFAULT_PARALLEL, orders, .. } if orders.len() == 2)
        );
        assert!(matches!(
            &s[1],
            Step::Parallel {
                max: 2,
                max_given: true,
                ..
            }
        ));
        let printed = serde_yaml_ng::to_string(&steps_to_value(&s)).unwrap();
        assert!(printed.contains("max: 2"), "{printed}");
        let err = steps("- parallel: {orders: [], limit: 2}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `limit`"), "{err}");
    }
}
