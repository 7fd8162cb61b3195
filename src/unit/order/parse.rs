//! Reading orders from the orders document: one `{container: {command: KIND, ...}}` item, or a
//! `parallel:` block of them. Unknown arguments are errors listing the accepted ones.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::host::{RawTests, checked_upgrade, test_runs};
use super::ready::{RawReady, ready_from};
use super::{
    Action, BackupArgs, DEFAULT_PARALLEL, ExecType, ExecuteArgs, HOST, KINDS, Order, PARALLEL,
    Recreate, RestoreArgs, RunCommand, StartArgs, Step, UnitArgs, UpgradeArgs,
};
use crate::config::source::{Origin, PathSeg};
use crate::error::ConfigError;
use crate::unit::forms::StringOrList;
use crate::unit::values::Seconds;

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

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStart {
    restart: Option<bool>,
    attach: Option<bool>,
    timeout: Option<u32>,
    ready: Option<RawReady>,
    recreate: Option<Recreate>,
}

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

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

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

fn parse_wait(value: &Value, origin: &Origin) -> Result<Seconds, ConfigError> {
    match value {
        Value::Bool(true) => Ok(Seconds::from_secs(1)),
        Value::Bool(false) | Value::Null => Ok(Seconds::default()),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| "expected a number of seconds".to_string())
            .and_then(Seconds::new)
            .map_err(|e| origin.invalid(format!("`wait`: {e}"))),
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
fn take_ready(
    args: &mut Mapping,
    here: &Origin,
) -> Result<Option<super::ready::Ready>, ConfigError> {
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
    let mut wait = Seconds::default();
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
                timeout: r.timeout,
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
        "tests" => {
            let raw: RawTests = deserialize_args("tests", container, &args, &here)?;
            Action::Tests(test_runs(&raw, &here)?)
        }
        "upgrade" => {
            let u: UpgradeArgs = deserialize_args("upgrade", container, &args, &here)?;
            Action::Upgrade(checked_upgrade(u, &here)?)
        }
        other => {
            return Err(corigin.invalid_with_hint(
                format!("unknown order `{other}` on `{container}`"),
                format!("orders are {}", KINDS.join(", ")),
            ));
        }
    };
    if container != HOST && matches!(action, Action::Tests(_) | Action::Upgrade(_)) {
        return Err(corigin.invalid_with_hint(
            format!("`{command}` runs on `host`, not on `{container}`"),
            format!("write it as `- host: {{command: {command}, ...}}`"),
        ));
    }
    if container == HOST && !action.runs_on_host() {
        return Err(corigin.invalid_with_hint(
            format!("`{command}` cannot run on `host`"),
            "the `host` pseudo-container takes `execute`, `unit`, `tests` and `upgrade` orders",
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
