//! The setup of `UNIT/test:restore` (issue 18): the copy's containers created, the newest
//! archives of the unit's generated backup restored into them before they start, and each
//! container's `restore.after` run once it runs.

use std::collections::HashMap;

use serde_yaml_ng::{Mapping, Value};

use super::rename::Renames;
use crate::error::ConfigError;
use crate::generate::commands;
use crate::unit::Unit;
use crate::unit::order::{Action, Order, Step, order_from_value};

/// The setup orders of `test:restore` around the start orders.
#[derive(Debug, Default)]
pub(super) struct RestoreSetup {
    /// The copy's containers created, and the newest archives of the generated backup (named
    /// after the live containers) restored into them.
    pub before_start: Vec<Order>,
    /// Each container's `restore.after`, run in it once it runs.
    pub after_start: Vec<Order>,
}

/// The orders that restore the backup of `unit` into its test copy `renamed` before it starts.
pub(super) fn setup(unit: &Unit, renamed: &Unit, r: &Renames) -> Result<RestoreSetup, ConfigError> {
    let generate = |what: &str| {
        commands::generate(
            what,
            &unit.command.unit,
            &renamed.steps,
            &renamed.containers,
            &renamed.environment,
        )
    };
    let mut out = RestoreSetup::default();
    out.before_start
        .extend(generate("create")?.iter().flat_map(Step::orders).cloned());
    let live: HashMap<&str, &str> = r
        .containers
        .iter()
        .map(|(k, v)| (v.as_str(), k.as_str()))
        .collect();
    for order in generate("restore")?.iter().flat_map(Step::orders) {
        let mut order = order.clone();
        let original = live
            .get(order.container.as_str())
            .map_or(order.container.clone(), |k| (*k).to_string());
        if let Action::Restore(args) = &mut order.action {
            // The archives are the live containers'; the `after` hook needs the container
            // running, so it runs after the start orders.
            args.restore_name = Some(original.clone());
            if let Some(after) = args.after.take() {
                let mut m = Mapping::new();
                m.insert("command".into(), "execute".into());
                m.insert("type".into(), "in_running".into());
                m.insert("run".into(), after.to_value());
                let mut exec =
                    order_from_value(&order.container, &Value::Mapping(m), &order.origin)?;
                exec.generated = true;
                out.after_start.push(exec);
            }
            order.raw.insert("restore_name".into(), original.into());
            order.raw.remove("after");
        }
        out.before_start.push(order);
    }
    Ok(out)
}
