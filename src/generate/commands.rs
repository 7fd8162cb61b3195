//! Generated commands (ORIGINAL §4): `stop`, `cleanup`, `purge`, `restart`, `build`, `create`,
//! `backup` and `restore`, derived from a unit's (filtered) start orders.
//!
//! Order rule: forward (first appearance) for build, create, restart, backup and restore;
//! reverse for stop and remove, and reverse order of dependence (`volumes_from`, `links`,
//! `network_mode: container:X`) first. Independent containers of a teardown stop and are
//! removed concurrently, in waves; `--print-unit` shows them as one flat list.

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use crate::config::environment::Environment;
use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::Container;
use crate::unit::backup::{Hook, Keep};
use crate::unit::container::DEFAULT_STOP_TIMEOUT;
use crate::unit::order::{Action, DEFAULT_PARALLEL, HOST, Order, Step, order_from_value};

/// How many containers a generated teardown stops and removes at once. Measured with 30
/// containers (bench/start.sh, docs/performance.md): 8 at a time is 12 % faster than 4; 32 is
/// slower again (the engine serializes much of a stop).
pub const TEARDOWN_PARALLEL: usize = 8;

/// The default number of timestamped archives a generated backup keeps.
pub const DEFAULT_BACKUP_KEEP: u32 = 7;

/// Containers with `start`, with `start` or `create`, and with a tagged build, in order of first
/// appearance.
struct Sets {
    starts: Vec<String>,
    creations: Vec<String>,
    builds: Vec<String>,
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}

fn sets(steps: &[Step], containers: &IndexMap<String, Container>) -> Sets {
    let mut s = Sets {
        starts: Vec::new(),
        creations: Vec::new(),
        builds: Vec::new(),
    };
    for order in steps.iter().flat_map(Step::orders) {
        let name = order.container.as_str();
        let tagged = containers
            .get(name)
            .and_then(|c| c.spec.build.as_ref())
            .is_some_and(|b| b.tag.as_deref().is_some_and(|t| !t.is_empty()));
        match order.action {
            Action::Start(_) => {
                push_unique(&mut s.starts, name);
                push_unique(&mut s.creations, name);
                if tagged {
                    push_unique(&mut s.builds, name);
                }
            }
            Action::Create => {
                push_unique(&mut s.creations, name);
                if tagged {
                    push_unique(&mut s.builds, name);
                }
            }
            Action::Build if tagged => {
                push_unique(&mut s.builds, name);
            }
            _ => {}
        }
    }
    s
}

/// The containers a unit's start orders create or start, in order of first appearance: the
/// order in which the generated `upgrade` goes through them.
pub fn creations(start: &[Step], containers: &IndexMap<String, Container>) -> Vec<String> {
    sets(start, containers).creations
}

/// The generated `upgrade` of a unit with an `update` command: one `upgrade` order on `host`
/// for every unit of the configuration directory that has a `start` command (`units`, in name
/// order).
pub fn upgrade(unit: &str, units: &[String]) -> Result<Vec<Step>, ConfigError> {
    let origin = Origin::generated(&format!("generated {unit}/upgrade"));
    units
        .iter()
        .map(|u| {
            let args = [("command", "upgrade".into()), ("unit", u.as_str().into())];
            make(HOST, &args, &origin).map(|o| Step::Order(Box::new(o)))
        })
        .collect()
}

/// Builds a generated order from its printed form, through the same reader as written orders.
fn make(container: &str, args: &[(&str, Value)], origin: &Origin) -> Result<Order, ConfigError> {
    let mut m = Mapping::new();
    for (k, v) in args {
        m.insert(Value::String((*k).to_string()), v.clone());
    }
    let mut order = order_from_value(container, &Value::Mapping(m), origin)?;
    order.generated = true;
    Ok(order)
}

/// Splits `names` (already in reverse order) into waves: each wave holds the containers no
/// remaining container depends on, so dependents go first.
fn waves(names: &[String], containers: &IndexMap<String, Container>) -> Vec<Vec<String>> {
    let deps = |n: &str| -> Vec<String> {
        containers
            .get(n)
            .map(|c| c.spec.dependencies())
            .unwrap_or_default()
    };
    let mut remaining: Vec<String> = names.to_vec();
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let wave: Vec<String> = remaining
            .iter()
            .filter(|n| {
                !remaining
                    .iter()
                    .any(|other| other != *n && deps(other).iter().any(|d| d == *n))
            })
            .cloned()
            .collect();
        // A dependency cycle: fall back to one at a time in the given order.
        let wave = if wave.is_empty() {
            vec![remaining[0].clone()]
        } else {
            wave
        };
        remaining.retain(|n| !wave.contains(n));
        out.push(wave);
    }
    out
}

fn wave_steps(
    names: &[String],
    containers: &IndexMap<String, Container>,
    mut order_for: impl FnMut(&str) -> Result<Order, ConfigError>,
) -> Result<Vec<Step>, ConfigError> {
    let mut steps = Vec::new();
    for wave in waves(names, containers) {
        let mut orders = Vec::new();
        for n in &wave {
            orders.push(order_for(n)?);
        }
        if orders.len() == 1 {
            steps.push(Step::Order(Box::new(orders.remove(0))));
        } else {
            steps.push(Step::Parallel {
                max: TEARDOWN_PARALLEL,
                max_given: false,
                orders,
                generated: true,
            });
        }
    }
    Ok(steps)
}

/// The `ready:` of the first start order of `name` that has one, as written: what a generated restart, and a
/// generated backup or restore that stops the container, wait for when they start it again.
fn start_ready(start: &[Step], name: &str) -> Option<Value> {
    start
        .iter()
        .flat_map(Step::orders)
        .filter(|o| o.container == name && matches!(o.action, Action::Start(_)))
        .find_map(|o| o.raw.get("ready").cloned())
}

fn strings(list: &[String]) -> Value {
    Value::Sequence(list.iter().map(|s| Value::from(s.as_str())).collect())
}

fn hooks(args: &mut Vec<(&str, Value)>, before: Option<&Hook>, after: Option<&Hook>) {
    if let Some(h) = before {
        args.push(("before", h.to_value()));
    }
    if let Some(h) = after {
        args.push(("after", h.to_value()));
    }
}

fn reversed(list: &[String]) -> Vec<String> {
    list.iter().rev().cloned().collect()
}

/// The backup directory of generated backup and restore orders: `BACKUPDIR`, else `BACKUP_DIR`,
/// else `.`.
pub fn backup_dir(env: &Environment) -> String {
    env.get_str("BACKUPDIR")
        .or_else(|| env.get_str("BACKUP_DIR"))
        .unwrap_or_else(|| ".".to_string())
}

/// `BACKUP_KEEP`: a number, a policy mapping (`{daily: 7, weekly: 4}`) or the same as text
/// (`daily=7 weekly=4`); 7 when unset.
fn backup_keep(env: &Environment, origin: &Origin) -> Result<Keep, ConfigError> {
    let Some(v) = env.get("BACKUP_KEEP") else {
        return Ok(Keep::Last(DEFAULT_BACKUP_KEEP));
    };
    let keep = serde_json::from_value::<Keep>(v.clone()).map_err(|e| e.to_string());
    match keep.and_then(|k| k.problem().map_or(Ok(k), |p| Err(p.to_string()))) {
        Ok(k) => Ok(k),
        Err(why) => Err(origin.invalid_with_hint(
            format!("`BACKUP_KEEP` is `{v}`: {why}"),
            "a number of archives (`7`), or a policy such as `{daily: 7, weekly: 4, monthly: 12}`",
        )),
    }
}

/// `BACKUP_AGE_RECIPIENTS`: a list, or one recipient a line (or separated by commas).
pub fn age_recipients(env: &Environment) -> Vec<String> {
    match env.get("BACKUP_AGE_RECIPIENTS") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::trim).map(str::to_string))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(serde_json::Value::String(s)) => s
            .split(['\n', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The seconds a generated stop gives container `name` (its `stop_timeout`).
fn stop_timeout(containers: &IndexMap<String, Container>, name: &str) -> u32 {
    containers
        .get(name)
        .map_or(DEFAULT_STOP_TIMEOUT, |c| c.spec.stop_timeout)
}

/// The orders of generated command `command` from the start steps (`upgrade`: [`upgrade`]).
pub fn generate(
    command: &str,
    unit: &str,
    start: &[Step],
    containers: &IndexMap<String, Container>,
    env: &Environment,
) -> Result<Vec<Step>, ConfigError> {
    let origin = Origin::generated(&format!("generated {unit}/{command}"));
    let s = sets(start, containers);
    let stop = |n: &str| {
        make(
            n,
            &[
                ("command", "stop".into()),
                ("timeout", stop_timeout(containers, n).into()),
            ],
            &origin,
        )
    };
    let remove = |v: bool| {
        let origin = origin.clone();
        move |n: &str| make(n, &[("command", "remove".into()), ("v", v.into())], &origin)
    };
    let forward = |names: &[String],
                   f: &dyn Fn(&str) -> Result<Order, ConfigError>|
     -> Result<Vec<Step>, ConfigError> {
        names
            .iter()
            .map(|n| f(n).map(|o| Step::Order(Box::new(o))))
            .collect()
    };
    match command {
        "stop" => wave_steps(&reversed(&s.starts), containers, stop),
        "cleanup" | "purge" => {
            let purge = command == "purge";
            let mut steps = wave_steps(&reversed(&s.starts), containers, stop)?;
            let removes = wave_steps(&reversed(&s.creations), containers, remove(purge))?;
            // Without dependencies between the containers, each container is removed as soon
            // as it is stopped, while the others are still stopping: one block whose orders
            // on a container run in order (printed the same: the stops, then the removes).
            match (steps.as_mut_slice(), removes.as_slice()) {
                ([Step::Parallel { orders, .. }], [Step::Parallel { orders: more, .. }]) => {
                    orders.extend(more.iter().cloned());
                }
                _ => steps.extend(removes),
            }
            if purge {
                let images = reversed(&s.builds);
                let mut orders = Vec::new();
                for n in &images {
                    orders.push(make(n, &[("command", "remove_image".into())], &origin)?);
                }
                if orders.len() == 1 {
                    steps.push(Step::Order(Box::new(orders.remove(0))));
                } else if !orders.is_empty() {
                    steps.push(Step::Parallel {
                        max: DEFAULT_PARALLEL,
                        max_given: false,
                        orders,
                        generated: true,
                    });
                }
            }
            Ok(steps)
        }
        "restart" => forward(&s.starts, &|n| {
            let mut args: Vec<(&str, Value)> = vec![
                ("command", "start".into()),
                ("restart", true.into()),
                ("timeout", stop_timeout(containers, n).into()),
            ];
            // Every start waits for `ready:`: a restart as long as the start orders say.
            if let Some(r) = start_ready(start, n) {
                args.push(("ready", r));
            }
            make(n, &args, &origin)
        }),
        "build" => forward(&s.builds, &|n| {
            make(n, &[("command", "build".into())], &origin)
        }),
        "create" => forward(&s.creations, &|n| {
            make(n, &[("command", "create".into())], &origin)
        }),
        "backup" => {
            let dir = backup_dir(env);
            let keep = backup_keep(env, &origin)?.to_value();
            let recipients = age_recipients(env);
            forward(&s.creations, &|n| {
                let mut args: Vec<(&str, Value)> = vec![
                    ("command", "backup".into()),
                    ("backup_dir", dir.clone().into()),
                    ("backup_name", n.into()),
                    ("timestamp", true.into()),
                    ("keep", keep.clone()),
                ];
                if let Some(b) = containers.get(n).and_then(|c| c.spec.backup.as_ref()) {
                    if let Some(paths) = &b.paths {
                        args.push(("source", strings(&paths.to_vec())));
                    }
                    if !b.exclude.is_empty() {
                        args.push(("exclude", strings(&b.exclude)));
                    }
                    if b.stop {
                        args.push(("stop", true.into()));
                        args.push(("timeout", stop_timeout(containers, n).into()));
                        if let Some(r) = start_ready(start, n) {
                            args.push(("ready", r));
                        }
                    }
                    hooks(&mut args, b.before.as_ref(), b.after.as_ref());
                }
                if !recipients.is_empty() {
                    let mut e = Mapping::new();
                    e.insert("recipients".into(), strings(&recipients));
                    args.push(("encrypt", Value::Mapping(e)));
                }
                make(n, &args, &origin)
            })
        }
        "restore" => {
            let dir = backup_dir(env);
            // A restore stops what it writes into and starts again what was running.
            forward(&s.creations, &|n| {
                let mut args: Vec<(&str, Value)> = vec![
                    ("command", "restore".into()),
                    ("restore_dir", dir.clone().into()),
                    ("restore_name", n.into()),
                    ("stop", true.into()),
                    ("timeout", stop_timeout(containers, n).into()),
                ];
                if let Some(r) = start_ready(start, n) {
                    args.push(("ready", r));
                }
                if let Some(r) = containers.get(n).and_then(|c| c.spec.restore.as_ref()) {
                    hooks(&mut args, r.before.as_ref(), r.after.as_ref());
                }
                make(n, &args, &origin)
            })
        }
        other => unreachable!("`{other}` is not a generated command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::typed_for_tests as unit;

    /// The generated steps of `command`, one string a step: `container:kind`, the orders of a
    /// concurrent wave joined by ` | `.
    fn generated(text: &str, command: &str) -> Vec<String> {
        let (containers, steps) = unit(text);
        let mut env = Environment::from_map(serde_json::Map::new());
        env.set("BACKUPDIR", "/b".into());
        generate(command, "u", &steps, &containers, &env)
            .unwrap()
            .iter()
            .map(|step| {
                step.orders()
                    .iter()
                    .map(|o| format!("{}:{}", o.container, o.action.kind()))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect()
    }

    /// ORIGINAL §4's `test_modify_order_list`: x1 has a build order but no `build.tag`.
    const SECTION_4: &str = "\
x1_without_build: {image: busybox}
x2_with_build: {build: {path: ., tag: test}}
---
- x1_without_build: {command: build}
- x2_with_build: {command: build}
- x1_without_build: {command: create}
- x2_with_build: {command: start}
";

    #[test]
    fn original_section_4_order_rule() {
        let cases: [(&str, &[&str]); 8] = [
            ("stop", &["x2_with_build:stop"]),
            (
                "cleanup",
                &[
                    "x2_with_build:stop",
                    "x2_with_build:remove | x1_without_build:remove",
                ],
            ),
            (
                "purge",
                &[
                    "x2_with_build:stop",
                    "x2_with_build:remove | x1_without_build:remove",
                    "x2_with_build:remove_image",
                ],
            ),
            ("restart", &["x2_with_build:start"]),
            ("build", &["x2_with_build:build"]),
            (
                "create",
                &["x1_without_build:create", "x2_with_build:create"],
            ),
            (
                "backup",
                &["x1_without_build:backup", "x2_with_build:backup"],
            ),
            (
                "restore",
                &["x1_without_build:restore", "x2_with_build:restore"],
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(generated(SECTION_4, command), expected, "{command}");
        }
    }

    #[test]
    fn forward_commands_follow_first_appearance_once() {
        let text = "\
bb: {image: busybox}
aa: {image: busybox}
cc: {image: busybox}
---
- cc: {command: create}
- aa: {command: start}
- cc: {command: start}
- bb: {command: start}
- aa: {command: start, restart: true}
";
        assert_eq!(
            generated(text, "restart"),
            ["aa:start", "cc:start", "bb:start"]
        );
        assert_eq!(
            generated(text, "create"),
            ["cc:create", "aa:create", "bb:create"]
        );
        // Independent containers stop together, listed in reverse order of appearance.
        assert_eq!(generated(text, "stop"), ["bb:stop | cc:stop | aa:stop"]);
    }

    #[test]
    fn stop_and_remove_go_in_reverse_order_of_dependence() {
        // web is started first, but it uses data's volumes and links db: it stops first,
        // whatever the written order.
        let text = "\
web:
  image: busybox
  startup: {volumes_from: data, links: {db: database}}
db: {image: busybox}
data: {image: busybox, volumes: [/data]}
---
- web: {command: start}
- db: {command: start}
- data: {command: create}
";
        assert_eq!(generated(text, "stop"), ["web:stop", "db:stop"]);
        assert_eq!(
            generated(text, "cleanup"),
            [
                "web:stop",
                "db:stop",
                "web:remove",
                "data:remove | db:remove"
            ]
        );
    }

    #[test]
    fn generated_orders_carry_the_original_arguments() {
        let (containers, steps) = unit(SECTION_4);
        let env = Environment::from_map(serde_json::Map::new());
        let printed = |command: &str| {
            let steps = generate(command, "u", &steps, &containers, &env).unwrap();
            serde_yaml_ng::to_string(&crate::unit::order::steps_to_value(&steps)).unwrap()
        };
        assert_eq!(
            printed("stop"),
            "- x2_with_build:\n    command: stop\n    timeout: 10\n"
        );
        assert!(printed("purge").contains("command: remove\n    v: true\n"));
        // Without BACKUPDIR or BACKUP_DIR, backups go to `.`, timestamped, keeping 7.
        assert_eq!(
            printed("backup").lines().take(6).collect::<Vec<_>>(),
            [
                "- x1_without_build:",
                "    command: backup",
                "    backup_dir: .",
                "    backup_name: x1_without_build",
                "    timestamp: true",
                "    keep: 7",
            ]
        );
    }

    #[test]
    fn generated_stops_give_each_container_its_stop_timeout() {
        let text = "\
db: {image: postgres, stop_timeout: 60}
app: {image: busybox, stop_timeout: 2.5}
web: {image: busybox}
---
- db: {command: start, ready: {log: ready to accept, timeout: 30}}
- app: {command: start}
- web: {command: start, ready: {http: http://localhost:80/}}
";
        let (containers, steps) = unit(text);
        let env = Environment::from_map(serde_json::Map::new());
        let timeouts = |command: &str| -> Vec<String> {
            generate(command, "u", &steps, &containers, &env)
                .unwrap()
                .iter()
                .flat_map(Step::orders)
                .filter_map(|o| {
                    let t = o.raw.get("timeout")?.as_u64()?;
                    Some(format!("{}:{}:{t}", o.container, o.action.kind()))
                })
                .collect()
        };
        // Rounded up to whole seconds; the engine's 10 s when unset.
        let stops = ["web:stop:10", "app:stop:3", "db:stop:60"];
        assert_eq!(timeouts("stop"), stops);
        assert_eq!(timeouts("cleanup"), stops);
        assert_eq!(timeouts("purge"), stops);
        assert_eq!(
            timeouts("restart"),
            ["db:start:60", "app:start:3", "web:start:10"]
        );
        assert_eq!(
            timeouts("restore"),
            ["db:restore:60", "app:restore:3", "web:restore:10"]
        );
        // A restart waits for the start orders' `ready:`.
        let restart = generate("restart", "u", &steps, &containers, &env).unwrap();
        let ready: Vec<bool> = restart
            .iter()
            .flat_map(Step::orders)
            .map(|o| o.raw.get("ready").is_some())
            .collect();
        assert_eq!(ready, [true, false, true]);
    }

    #[test]
    fn upgrade_goes_through_every_started_unit() {
        let steps = upgrade("web", &["db".into(), "web".into()]).unwrap();
        let printed =
            serde_yaml_ng::to_string(&crate::unit::order::steps_to_value(&steps)).unwrap();
        assert_eq!(
            printed,
            "- host:\n    command: upgrade\n    unit: db\n- host:\n    command: upgrade\n    unit: web\n"
        );
        let (containers, start) = unit(SECTION_4);
        assert_eq!(
            creations(&start, &containers),
            ["x1_without_build", "x2_with_build"]
        );
    }
}
