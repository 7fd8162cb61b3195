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

/// The setup orders of `test:restore`, placed among the start orders.
#[derive(Debug, Default)]
pub(super) struct RestoreSetup {
    /// Per container of the copy: its create and the restore of the newest archive of the
    /// generated backup (named after the live container), not placed yet.
    pending: Vec<(String, Order, Order)>,
    /// Each container's `restore.after`, run in it once the setup started everything.
    after_start: Vec<Order>,
}

impl RestoreSetup {
    /// The orders that go in when `container` is created (its restore) or about to start
    /// (`create` first: its create and its restore), once.
    pub fn take(&mut self, container: &str, create: bool) -> Vec<Order> {
        let Some(i) = self.pending.iter().position(|(c, _, _)| c == container) else {
            return Vec::new();
        };
        let (_, create_order, restore) = self.pending.remove(i);
        if create {
            vec![create_order, restore]
        } else {
            vec![restore]
        }
    }

    /// What is left once the start orders are placed: restores of containers the start orders
    /// never create (with their create), then the `after` hooks.
    pub fn rest(self) -> Vec<Order> {
        self.pending
            .into_iter()
            .flat_map(|(_, c, r)| [c, r])
            .chain(self.after_start)
            .collect()
    }
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
    let creates: Vec<Order> = generate("create")?
        .iter()
        .flat_map(Step::orders)
        .cloned()
        .collect();
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
        let Some(create) = creates.iter().find(|c| c.container == order.container) else {
            continue;
        };
        out.pending
            .push((order.container.clone(), create.clone(), order));
    }
    Ok(out)
}
