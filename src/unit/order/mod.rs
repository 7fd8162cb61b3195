//! Orders (ORIGINAL §3, SPEC "Orders"): `{container: {command: KIND, ...arguments}}`, typed per
//! kind, and `parallel:` blocks of orders that may run concurrently.
//!
//! Every order also accepts `wait` (seconds to sleep after it succeeded) and `variants` (the
//! tags that select it, ORIGINAL §5). Unknown arguments are errors listing the accepted ones.

mod args;
mod host;
mod parse;
mod ready;
#[cfg(test)]
mod tests;

use serde_yaml_ng::{Mapping, Value};

use crate::config::source::Origin;
use crate::unit::values::Seconds;

pub use args::{
    BackupArgs, CommitArgs, Compression, ExecType, ExecuteArgs, PushArgs, Recreate, RemoveArgs,
    RemoveImageArgs, RestoreArgs, RunCommand, StartArgs, StopArgs, TagArgs, TestRun, TestsArgs,
    UnitArgs, UpgradeArgs,
};
pub use parse::{order_from_value, step_from_value};
pub use ready::Ready;

/// The virtual container for orders that run on the host.
pub const HOST: &str = "host";
/// The key of a block of orders that may run concurrently.
pub const PARALLEL: &str = "parallel";
/// How many orders of a `parallel` block run at once unless it says `max`.
pub const DEFAULT_PARALLEL: usize = 4;

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
    /// On `host`: test runs that must pass (seed 003 "Updates").
    Tests(TestsArgs),
    /// On `host`: re-create a unit's running containers whose image moved.
    Upgrade(UpgradeArgs),
}

/// Every order kind, for messages.
pub const KINDS: [&str; 15] = [
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
    "tests",
    "upgrade",
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
            Action::Tests(_) => "tests",
            Action::Upgrade(_) => "upgrade",
        }
    }

    /// Whether this action runs on the host rather than on a container.
    pub fn runs_on_host(&self) -> bool {
        match self {
            Action::Unit(_) | Action::Tests(_) | Action::Upgrade(_) => true,
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
    pub wait: Seconds,
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
