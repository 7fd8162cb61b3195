//! The validated unit: typed containers and orders, with no YAML or engine types in its
//! contracts. Everything is checked here, before the first order runs.

pub mod backup;
pub mod checks;
pub mod container;
pub mod forms;
pub mod naming;
pub mod orchestrator;
pub mod order;
pub mod values;

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use crate::config::environment::Environment;
use crate::config::loader::{BaseFile, RawUnit, UnitCommand};
use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::container::{ContainerSpec, container_from_value};
use crate::unit::order::{
    Action, ExecType, HOST, Order, Step, UnitArgs, step_from_value, steps_to_value,
};

/// A container of the composition.
#[derive(Debug, Clone)]
pub struct Container {
    pub spec: ContainerSpec,
    /// The spec as written (what `--print-unit` shows).
    pub raw: Value,
    pub origin: Origin,
}

/// A unit command, ready to run.
#[derive(Debug, Clone)]
pub struct Unit {
    pub command: UnitCommand,
    pub containers: IndexMap<String, Container>,
    pub steps: Vec<Step>,
    pub environment: Environment,
    /// Active mode atoms and variant tags.
    pub active: BTreeSet<String>,
    /// Built-in test variants requested (`test` only).
    pub test_variants: Vec<String>,
    /// Custom test variants requested (`test` only).
    pub custom_tests: Vec<String>,
    /// The unit's own test data container, which the generated `purge` removes last.
    pub purge_test_data: Option<String>,
    /// The unit commands its `unit` orders run, loaded with it before the first engine call
    /// (`generate::resolve_nested`); empty until then.
    pub nested: Vec<NestedUnit>,
    /// What its objects are called on the engine, decided while loading (a test copy's by its
    /// renaming).
    pub naming: naming::Naming,
}

/// The unit command a `unit` order runs, resolved.
#[derive(Debug, Clone)]
pub struct NestedUnit {
    /// The order's arguments (the same arguments run the same unit).
    pub args: UnitArgs,
    pub unit: Unit,
}

impl Unit {
    /// The resolved unit command of a `unit` order with `args`.
    pub fn nested_unit(&self, args: &UnitArgs) -> Option<&Unit> {
        self.nested
            .iter()
            .find(|n| n.args == *args)
            .map(|n| &n.unit)
    }
}

/// A unit as read from its base file: typed, not yet filtered or generated.
#[derive(Debug)]
pub struct TypedUnit {
    pub raw: RawUnit,
    pub containers: IndexMap<String, Container>,
    pub steps: Vec<Step>,
}

impl TypedUnit {
    /// Types every container and order of `raw` and checks that the orders fit the containers.
    pub fn from_raw(raw: RawUnit) -> Result<Self, ConfigError> {
        if matches!(raw.base, BaseFile::Explicit(_)) && !raw.has_orders_document {
            // The orders would follow the last line.
            let last = raw.source.text.trim_end().lines().count().max(1);
            return Err(ConfigError::Invalid {
                location: crate::error::Location {
                    file: raw.base.path().to_path_buf(),
                    line: Some(last),
                    column: None,
                },
                message: "this unit file has no orders document".into(),
                hint: Some("after the containers, add a line `---` and the list of orders, like `- web: {command: start}`".into()),
            });
        }
        let mut containers = IndexMap::new();
        for (name, (value, origin)) in &raw.composition {
            if name == HOST || name == order::PARALLEL {
                return Err(
                    origin.invalid(format!("`{name}` is reserved and cannot name a container"))
                );
            }
            let spec = container_from_value(name, value, origin)?;
            containers.insert(
                name.clone(),
                Container {
                    spec,
                    raw: value.clone(),
                    origin: origin.clone(),
                },
            );
        }
        let mut steps = Vec::new();
        for (value, origin) in &raw.orders {
            steps.push(step_from_value(value, origin)?);
        }
        for order in steps.iter().flat_map(Step::orders) {
            check_order(order, &containers)?;
        }
        Ok(TypedUnit {
            raw,
            containers,
            steps,
        })
    }

    /// Names of the custom test variants (`tests:` keys of any container).
    pub fn custom_test_names(&self) -> BTreeSet<String> {
        self.containers
            .values()
            .flat_map(|c| c.spec.tests.tests.keys().cloned())
            .collect()
    }
}

/// Checks that `order` can run against the containers of its unit.
pub fn check_order(
    order: &Order,
    containers: &IndexMap<String, Container>,
) -> Result<(), ConfigError> {
    if order.container == HOST {
        return Ok(());
    }
    let Some(c) = containers.get(&order.container) else {
        let known: Vec<String> = containers.keys().cloned().collect();
        return Err(order.origin.invalid_with_hint(
            format!(
                "order `{}` on `{}`, which has no spec in the composition document",
                order.action.kind(),
                order.container
            ),
            if known.is_empty() {
                "the composition document (before `---`) defines no containers".to_string()
            } else {
                format!("containers of this unit: {}", known.join(", "))
            },
        ));
    };
    let spec = &c.spec;
    let no_image = |what: &str| {
        order.origin.invalid_with_hint(
            format!(
                "order `{what}` on `{}`: the container has no image",
                order.container
            ),
            "give it `image: NAME`, or `build: {path: DIR, tag: NAME}`",
        )
    };
    match &order.action {
        Action::Create | Action::Start(_) | Action::RemoveImage(_) | Action::Tag(_)
            if spec.image.is_none() =>
        {
            return Err(no_image(order.action.kind()));
        }
        Action::Build if spec.image.is_none() && spec.build.is_none() => {
            return Err(no_image("build"));
        }
        Action::Push(p) if spec.image.is_none() && p.repository.is_none() => {
            return Err(no_image("push"));
        }
        Action::Execute(e)
            if matches!(e.exec_type, Some(ExecType::Temporary)) && spec.image.is_none() =>
        {
            return Err(no_image("execute"));
        }
        _ => {}
    }
    Ok(())
}

impl Unit {
    /// The resolved unit as two YAML documents: composition, then orders.
    pub fn to_yaml(&self) -> String {
        let mut composition = Mapping::new();
        for (name, c) in &self.containers {
            composition.insert(Value::String(name.clone()), c.raw.clone());
        }
        // Secrets as `***` (SPEC "Secrets"), in a document that stays valid YAML.
        let first = crate::output::masked_yaml(&Value::Mapping(composition));
        let second = crate::output::masked_yaml(&steps_to_value(&self.steps));
        format!("{first}---\n{second}")
    }

    /// All orders, in written order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.steps.iter().flat_map(Step::orders)
    }
}

/// The typed containers and steps of a unit file's text (`units/u/start.yaml`), for the tests
/// of later stages. Panics on anything invalid.
#[cfg(test)]
pub(crate) fn typed_for_tests(text: &str) -> (IndexMap<String, Container>, Vec<Step>) {
    use std::sync::Arc;

    use crate::config::source::{PathSeg, Source};

    let source = Arc::new(Source::new("units/u/start.yaml", text));
    let docs = source.documents().unwrap();
    let mut containers = IndexMap::new();
    for (k, v) in docs[0].as_mapping().unwrap() {
        let name = k.as_str().unwrap().to_string();
        let origin = Origin::new(Arc::clone(&source), 0, vec![PathSeg::Key(name.clone())]);
        let spec = container_from_value(&name, v, &origin).unwrap();
        containers.insert(
            name,
            Container {
                spec,
                raw: v.clone(),
                origin,
            },
        );
    }
    let steps = docs[1]
        .as_sequence()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let origin = Origin::new(Arc::clone(&source), 1, vec![PathSeg::Index(i)]);
            step_from_value(item, &origin).unwrap()
        })
        .collect();
    (containers, steps)
}
