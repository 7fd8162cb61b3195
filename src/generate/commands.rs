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
use crate::unit::order::{Action, DEFAULT_PARALLEL, Order, Step, order_from_value};

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

/// Builds a generated order from its printed form, through the same reader as written orders.
fn make(container: &str, args: &[(&str, Value)], origin: &Origin) -> Result<Order, ConfigError> {
    let mut m = Mapping::new();
    for (k, v) in args {
        m.insert(Value::String((*k).to_string()), v.clone());
    }
    let mut item = Mapping::new();
    item.insert(
        Value::String(container.to_string()),
        Value::Mapping(m.clone()),
    );
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
                max: DEFAULT_PARALLEL,
                max_given: false,
                orders,
                generated: true,
            });
        }
    }
    Ok(steps)
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

fn backup_keep(env: &Environment, origin: &Origin) -> Result<u32, ConfigError> {
    match env.get("BACKUP_KEEP") {
        None => Ok(DEFAULT_BACKUP_KEEP),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                origin.invalid(format!(
                    "`BACKUP_KEEP` must be a number of at least 1, found {v}"
                ))
            }),
    }
}

/// The orders of generated command `command` from the start steps.
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
            &[("command", "stop".into()), ("timeout", 0.into())],
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
            make(
                n,
                &[
                    ("command", "start".into()),
                    ("restart", true.into()),
                    ("timeout", 0.into()),
                ],
                &origin,
            )
        }),
        "build" => forward(&s.builds, &|n| {
            make(n, &[("command", "build".into())], &origin)
        }),
        "create" => forward(&s.creations, &|n| {
            make(n, &[("command", "create".into())], &origin)
        }),
        "backup" => {
            let dir = backup_dir(env);
            let keep = backup_keep(env, &origin)?;
            forward(&s.creations, &|n| {
                make(
                    n,
                    &[
                        ("command", "backup".into()),
                        ("backup_dir", dir.clone().into()),
                        ("backup_name", n.into()),
                        ("timestamp", true.into()),
                        ("keep", u64::from(keep).into()),
                    ],
                    &origin,
                )
            })
        }
        "restore" => {
            let dir = backup_dir(env);
            forward(&s.creations, &|n| {
                make(
                    n,
                    &[
                        ("command", "restore".into()),
                        ("restore_dir", dir.clone().into()),
                        ("restore_name", n.into()),
                    ],
                    &origin,
                )
            })
        }
        other => unreachable!("`{other}` is not a generated command"),
    }
}
